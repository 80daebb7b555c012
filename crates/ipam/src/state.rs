//! In-memory state, split in two:
//!
//! * [`Data`]: the authoritative facts, one-to-one with the persisted records (pools, subnets,
//!   nodes, blocks with their owner, allocations).
//! * [`Index`]: everything derived from `Data` to make operations fast (name maps, range maps,
//!   per-block bitmaps and slot arrays, free-block sets, per-node block sets, the owner index).
//!
//! Operations update both incrementally. [`Index::build`] recomputes the index from `Data` from
//! scratch; the checker compares the two, and repair replaces the index with a fresh one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::addr::{Family, Key, host_bits, low_ones, make_net, net_range, to_ip};
use crate::bitmap::Bitmap;
use crate::error::{Error, Scope};
use crate::owners::OwnerIndex;
use crate::rangeset::RangeSet;
use crate::slab::Slab;
use crate::types::{BorrowPolicy, OwnerKind, PoolKind, Reserve};

/// Slot value of a free address.
pub(crate) const FREE: u32 = u32::MAX;
/// Slot value of a reserved address (network, broadcast, gateway).
pub(crate) const RESERVED: u32 = u32::MAX - 1;

#[derive(Debug, Clone)]
pub(crate) struct PoolData {
    pub(crate) name: Box<str>,
    pub(crate) cidr: IpNet,
    pub(crate) kind: PoolKind,
    pub(crate) block_prefix_len: u8,
    /// For floating/anycast pools: the implicit subnet that spans the whole pool.
    pub(crate) direct: Option<u32>,
}

#[derive(Debug, Clone)]
pub(crate) struct SubnetData {
    /// Subnet name; for a direct pool's implicit subnet, the pool name.
    pub(crate) name: Box<str>,
    pub(crate) tenant: Box<str>,
    pub(crate) pool: u32,
    pub(crate) cidr: IpNet,
    pub(crate) reserve: Reserve,
    pub(crate) borrow: BorrowPolicy,
    /// The implicit subnet of a floating/anycast pool.
    pub(crate) direct: bool,
    /// Host bits of one block: the pool's block size, or the whole subnet if it is smaller.
    pub(crate) block_bits: u32,
}

impl SubnetData {
    pub(crate) fn scope(&self) -> Scope {
        if self.direct {
            Scope::Pool(self.name.to_string())
        } else {
            Scope::Subnet(self.name.to_string())
        }
    }

    pub(crate) fn family(&self) -> Family {
        Family::of_net(&self.cidr)
    }

    pub(crate) fn start(&self) -> u128 {
        net_range(&self.cidr).0
    }

    /// Largest block number (blocks are numbered from 0 at the subnet start).
    pub(crate) fn max_block(&self) -> u128 {
        low_ones(host_bits(&self.cidr) - self.block_bits)
    }

    pub(crate) fn block_size(&self) -> u32 {
        1u32 << self.block_bits
    }

    pub(crate) fn block_start(&self, num: u128) -> u128 {
        self.start() + (num << self.block_bits)
    }

    pub(crate) fn block_net(&self, num: u128) -> IpNet {
        let len = self.family().bits() - self.block_bits as u8;
        make_net(self.family(), self.block_start(num), len)
    }

    pub(crate) fn ip(&self, num: u128, offset: u32) -> IpAddr {
        to_ip(self.family(), self.block_start(num) + u128::from(offset))
    }

    /// (block number, offset) of an address, or `None` if outside the subnet.
    pub(crate) fn locate(&self, ip: IpAddr) -> Option<(u128, u32)> {
        let key = Key::of(ip);
        let (start, end) = net_range(&self.cidr);
        if key.family != self.family() || key.value < start || key.value > end {
            return None;
        }
        let rel = key.value - start;
        Some((
            rel >> self.block_bits,
            (rel & low_ones(self.block_bits)) as u32,
        ))
    }

    /// Reserved addresses as integers (at most three, deduplicated).
    pub(crate) fn reserved(&self) -> Vec<u128> {
        let (start, end) = net_range(&self.cidr);
        let mut v = Vec::with_capacity(3);
        if self.reserve.network {
            v.push(start);
        }
        if self.reserve.broadcast {
            v.push(end);
        }
        if let Some(gw) = self.reserve.gateway {
            let k = Key::of(gw);
            if k.family == self.family() && (start..=end).contains(&k.value) {
                v.push(k.value);
            }
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Offsets reserved inside block `num`.
    pub(crate) fn reserved_offsets(&self, num: u128) -> Vec<u32> {
        let bs = self.block_start(num);
        let be = bs + low_ones(self.block_bits);
        self.reserved()
            .into_iter()
            .filter(|a| (bs..=be).contains(a))
            .map(|a| (a - bs) as u32)
            .collect()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct NodeData {
    pub(crate) name: Box<str>,
    /// Referenced by a record but never registered; only the checker creates these (on load).
    pub(crate) ghost: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct BlockData {
    pub(crate) subnet: u32,
    pub(crate) num: u128,
    pub(crate) owner: Option<u32>,
}

/// One allocation. 40 bytes plus the owner string: this is the per-address memory cost.
#[derive(Debug, Clone)]
pub(crate) struct AllocData {
    pub(crate) owner: Box<str>,
    pub(crate) subnet: u32,
    pub(crate) block: u32,
    pub(crate) offset: u32,
    pub(crate) node: Option<u32>,
    pub(crate) kind: OwnerKind,
    pub(crate) fixed: bool,
    pub(crate) held: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Data {
    pub(crate) pools: Slab<PoolData>,
    pub(crate) subnets: Slab<SubnetData>,
    pub(crate) nodes: Slab<NodeData>,
    pub(crate) blocks: Slab<BlockData>,
    pub(crate) allocs: Slab<AllocData>,
}

impl Data {
    /// Whether allocation `id` has the owner key (subnet, owner).
    pub(crate) fn alloc_is(&self, id: u32, subnet: u32, owner: &str) -> bool {
        self.allocs
            .get(id)
            .is_some_and(|a| a.subnet == subnet && &*a.owner == owner)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PoolIx {
    /// Addresses of the pool not covered by a subnet.
    pub(crate) free: RangeSet,
    pub(crate) subnets: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SubnetIx {
    /// Block number -> block id, for address lookups.
    pub(crate) blocks: HashMap<u128, u32>,
    /// Block numbers not claimed by anyone.
    pub(crate) free_blocks: RangeSet,
    /// Every block of the subnet with a free address (for borrowing and direct pools).
    pub(crate) with_space: BTreeSet<(u128, u32)>,
    pub(crate) allocs: u64,
    pub(crate) held: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodeSubnetIx {
    /// Blocks the node owns in the subnet, by block number.
    pub(crate) blocks: BTreeSet<(u128, u32)>,
    /// Of those, the ones with a free address.
    pub(crate) with_space: BTreeSet<(u128, u32)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodeIx {
    pub(crate) subnets: HashMap<u32, NodeSubnetIx>,
    /// Active allocations of this node outside its own blocks (advertised as host routes).
    pub(crate) foreign: BTreeSet<u32>,
    /// Active allocations on this node.
    pub(crate) active: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockIx {
    /// 1 = allocated or reserved.
    pub(crate) used: Bitmap,
    /// Allocation id per offset, or FREE / RESERVED.
    pub(crate) slots: Box<[u32]>,
    pub(crate) reserved: u32,
}

impl BlockIx {
    pub(crate) fn new(size: u32, reserved: &[u32]) -> BlockIx {
        let mut b = BlockIx {
            used: Bitmap::new(size),
            slots: vec![FREE; size as usize].into_boxed_slice(),
            reserved: 0,
        };
        for &o in reserved {
            if b.used.set(o) {
                b.slots[o as usize] = RESERVED;
                b.reserved += 1;
            }
        }
        b
    }

    /// Allocations in the block (reserved addresses excluded).
    pub(crate) fn allocs(&self) -> u32 {
        self.used.count_ones() - self.reserved
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    pub(crate) pool_by_name: HashMap<Box<str>, u32>,
    /// Tenant subnets only; direct pools are found through their pool.
    pub(crate) subnet_by_name: HashMap<Box<str>, u32>,
    pub(crate) node_by_name: HashMap<Box<str>, u32>,
    /// First address -> pool id.
    pub(crate) pool_ranges: BTreeMap<Key, u32>,
    /// First address -> subnet id (tenant and implicit subnets).
    pub(crate) subnet_ranges: BTreeMap<Key, u32>,
    pub(crate) pools: Vec<PoolIx>,
    pub(crate) subnets: Vec<SubnetIx>,
    pub(crate) nodes: Vec<NodeIx>,
    pub(crate) blocks: Vec<Option<BlockIx>>,
    pub(crate) owners: OwnerIndex,
}

/// Grows a parallel index vector so that `id` is addressable.
pub(crate) fn at<T: Default>(v: &mut Vec<T>, id: u32) -> &mut T {
    let i = id as usize;
    if v.len() <= i {
        v.resize_with(i + 1, T::default);
    }
    &mut v[i]
}

/// Names end up in store keys and log lines: keep them boring.
pub(crate) fn validate_name(what: &'static str, name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what,
            name: name.to_string(),
        })
    }
}

pub(crate) fn validate_owner(owner: &str) -> Result<(), Error> {
    if owner.is_empty() || owner.len() > 1024 {
        return Err(Error::InvalidOwner {
            owner: owner.to_string(),
        });
    }
    Ok(())
}

/// The entry of an ordered range map whose prefix contains `key`.
pub(crate) fn range_lookup(
    map: &BTreeMap<Key, u32>,
    key: Key,
    end_of: impl Fn(u32) -> Option<Key>,
) -> Option<u32> {
    let (_, &id) = map.range(..=key).next_back()?;
    let end = end_of(id)?;
    (key <= end).then_some(id)
}
