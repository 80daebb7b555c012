//! Public request and result types.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::record::Change;

/// What a pool's addresses are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    /// Tenant subnets are carved from the pool; nodes get blocks of the subnets.
    TenantSubnets,
    /// Floating IPs (1:1 NAT), allocated straight from the pool by owner.
    FloatingIps,
    /// Anycast service IPs, allocated straight from the pool by owner.
    AnycastServices,
}

impl PoolKind {
    /// Whether addresses come straight from the pool (no subnets, no node blocks).
    pub fn is_direct(self) -> bool {
        !matches!(self, PoolKind::TenantSubnets)
    }
}

/// What holds an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerKind {
    Host,
    Vm,
    Container,
    /// A service: the holder of a floating or anycast IP.
    Service,
}

/// The holder of an address. `id` is unique within a subnet (or a direct pool); a fixed
/// address is keyed by it, so it must be stable across restarts (e.g. `namespace/pod-0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub kind: OwnerKind,
    pub id: String,
}

impl Owner {
    pub fn new(kind: OwnerKind, id: impl Into<String>) -> Owner {
        Owner {
            kind,
            id: id.into(),
        }
    }
}

/// A pool to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    pub name: String,
    pub cidr: IpNet,
    pub kind: PoolKind,
    /// Prefix length of a node block; defaults to /26 (IPv4) or /122 (IPv6), or the whole pool
    /// if that is smaller. A block holds at most 2^16 addresses.
    #[serde(default)]
    pub block_prefix_len: Option<u8>,
}

impl PoolSpec {
    pub fn new(name: impl Into<String>, cidr: IpNet, kind: PoolKind) -> PoolSpec {
        PoolSpec {
            name: name.into(),
            cidr,
            kind,
            block_prefix_len: None,
        }
    }

    pub fn block_prefix_len(mut self, len: u8) -> PoolSpec {
        self.block_prefix_len = Some(len);
        self
    }
}

/// Default block prefix length: /26 for IPv4, /122 for IPv6 (64 addresses either way).
pub fn default_block_prefix_len(cidr: &IpNet) -> u8 {
    match cidr {
        IpNet::V4(_) => 26,
        IpNet::V6(_) => 122,
    }
}

/// Where a new subnet goes in its pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubnetCidr {
    Explicit(IpNet),
    /// The lowest free, aligned prefix of this length in the pool.
    NextFree {
        prefix_len: u8,
    },
}

/// Addresses of a subnet that are never handed out. All off by default: on a routed fabric
/// every address is a host route and nothing needs a network, broadcast or gateway address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reserve {
    /// The first address of the subnet.
    #[serde(default)]
    pub network: bool,
    /// The last address of the subnet (IPv4 broadcast; for IPv6 simply the last address).
    #[serde(default)]
    pub broadcast: bool,
    /// A gateway address inside the subnet.
    #[serde(default)]
    pub gateway: Option<IpAddr>,
}

impl Reserve {
    /// Classic L2-style subnet: network, broadcast and the given gateway.
    pub fn classic(gateway: Option<IpAddr>) -> Reserve {
        Reserve {
            network: true,
            broadcast: true,
            gateway,
        }
    }
}

/// What a node does when its blocks are full and the subnet has no free block left.
///
/// Borrowing takes one address from another node's block (or an unowned block) and the
/// borrowing node advertises it as a /32 or /128 host route, as Calico does. The lender keeps
/// advertising its whole block; the longer host route wins. Borrowing costs one extra route,
/// so it is only a last resort: own blocks first, then a new block, then a borrow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BorrowPolicy {
    /// Fail with [`crate::Error::NoFreeBlock`] instead of borrowing.
    Never,
    /// Borrow a single address when nothing else is left.
    #[default]
    LastResort,
}

/// A tenant subnet to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetSpec {
    pub name: String,
    pub tenant: String,
    pub pool: String,
    pub cidr: SubnetCidr,
    #[serde(default)]
    pub reserve: Reserve,
    #[serde(default)]
    pub borrow: BorrowPolicy,
}

impl SubnetSpec {
    pub fn new(
        name: impl Into<String>,
        tenant: impl Into<String>,
        pool: impl Into<String>,
        cidr: SubnetCidr,
    ) -> SubnetSpec {
        SubnetSpec {
            name: name.into(),
            tenant: tenant.into(),
            pool: pool.into(),
            cidr,
            reserve: Reserve::default(),
            borrow: BorrowPolicy::default(),
        }
    }

    pub fn reserve(mut self, reserve: Reserve) -> SubnetSpec {
        self.reserve = reserve;
        self
    }

    pub fn borrow(mut self, borrow: BorrowPolicy) -> SubnetSpec {
        self.borrow = borrow;
        self
    }
}

/// An address request in a tenant subnet for an owner on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocRequest {
    pub subnet: String,
    pub node: String,
    pub owner: Owner,
    /// A static address instead of the next free one.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// Fixed: on release the address stays reserved for `owner.id`, and the next request with
    /// the same owner id gets it back, on whatever node (StatefulSets).
    #[serde(default)]
    pub fixed: bool,
}

impl AllocRequest {
    pub fn new(subnet: impl Into<String>, node: impl Into<String>, owner: Owner) -> AllocRequest {
        AllocRequest {
            subnet: subnet.into(),
            node: node.into(),
            owner,
            ip: None,
            fixed: false,
        }
    }

    pub fn at(mut self, ip: IpAddr) -> AllocRequest {
        self.ip = Some(ip);
        self
    }

    pub fn fixed(mut self) -> AllocRequest {
        self.fixed = true;
        self
    }
}

/// How an address is reached, i.e. what its node must advertise for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "placement")]
pub enum Placement {
    /// Inside a block the node owns; covered by the node's block advertisement.
    Block { block: IpNet },
    /// Outside the node's blocks (borrowed, or a fixed address that moved): the node
    /// advertises `route`, a /32 or /128.
    HostRoute { block: IpNet, route: IpNet },
    /// Not on any node: held for a fixed owner, or a floating/anycast address.
    Unplaced,
}

/// Result of a successful allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocated {
    pub ip: IpAddr,
    pub placement: Placement,
    /// What to persist; empty when the request was already satisfied (idempotent retry).
    pub changes: Vec<Change>,
}

/// A read-only view of one allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationInfo {
    pub ip: IpAddr,
    pub pool: String,
    /// `None` for addresses allocated straight from a floating or anycast pool.
    pub subnet: Option<String>,
    pub owner: Owner,
    pub node: Option<String>,
    pub fixed: bool,
    /// Released but kept for its fixed owner.
    pub held: bool,
    pub placement: Placement,
}

/// Occupancy of a subnet or direct pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Addresses in the prefix.
    pub size: u128,
    /// Addresses never handed out (network, broadcast, gateway).
    pub reserved: u128,
    /// Allocations, including those held for fixed owners.
    pub allocated: u64,
    /// Of `allocated`, those held for fixed owners.
    pub held: u64,
    /// Blocks in use (claimed by nodes, or unowned but holding addresses).
    pub blocks: u64,
}

impl Usage {
    /// Addresses still available.
    pub fn free(&self) -> u128 {
        self.size - self.reserved - u128::from(self.allocated)
    }
}
