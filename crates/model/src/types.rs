//! The resource types of the API. See the crate docs for the contracts they share.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Error;
use crate::problem::Problem;
use crate::validate::{validate_asn, validate_name, validate_text};

/// First and last private 4-byte AS numbers (RFC 6996).
pub const PRIVATE_ASN_4B: (u32, u32) = (4_200_000_000, 4_294_967_294);

/// A named, versioned resource kept by the controller.
pub trait Resource: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Singular kind, as used in messages and the CLI (`tenant`).
    const KIND: &'static str;
    /// Plural, as used in paths (`/v1/tenants`) and store keys.
    const PLURAL: &'static str;
    fn name(&self) -> &str;
    fn resource_version(&self) -> u64;
    fn set_resource_version(&mut self, version: u64);
    /// Checks the resource on its own, naming the field at fault.
    fn validate(&self) -> Result<(), Error>;
}

macro_rules! resource {
    ($t:ty, $kind:literal, $plural:literal) => {
        impl Resource for $t {
            const KIND: &'static str = $kind;
            const PLURAL: &'static str = $plural;
            fn name(&self) -> &str {
                &self.name
            }
            fn resource_version(&self) -> u64 {
                self.resource_version
            }
            fn set_resource_version(&mut self, version: u64) {
                self.resource_version = version;
            }
            fn validate(&self) -> Result<(), Error> {
                self.check()
            }
        }
    };
}

/// One page of a list. Pass `next` as `?after=` to get the following page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The cursor of the next page, absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Site, racks, switches

/// The site: one controller manages one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub name: String,
    pub asn_plan: AsnPlan,
    /// The address ranges of the site; when set, every pool must lie inside one of them.
    #[serde(default)]
    #[schema(value_type = Vec<String>, example = json!(["10.0.0.0/8", "fd00::/48"]))]
    pub address_ranges: Vec<IpNet>,
    /// BFD on every BGP session of the fabric's switches (host ports and fabric ports) in the
    /// rendered switch configs; hosts enable it in their agent's config (`bgp.bfd`). Absent:
    /// no BFD, failures are found by the BGP hold timer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<BfdTimers>,
    #[serde(default)]
    pub resource_version: u64,
}

/// BFD timers (RFC 5880): a packet every `interval_ms` both ways, and a neighbour silent for
/// `interval_ms` x `multiplier` is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BfdTimers {
    /// Milliseconds between packets, 10 to 60000 (FRR's range); 300 if absent.
    #[serde(default = "default_bfd_interval")]
    #[schema(minimum = 10, maximum = 60000)]
    pub interval_ms: u32,
    /// Packets missed before the neighbour is down, 2 to 255; 3 if absent.
    #[serde(default = "default_bfd_multiplier")]
    #[schema(minimum = 2, maximum = 255)]
    pub multiplier: u8,
}

fn default_bfd_interval() -> u32 {
    300
}
fn default_bfd_multiplier() -> u8 {
    3
}

impl BfdTimers {
    fn check(&self, field: &str) -> Result<(), Error> {
        if !(10..=60_000).contains(&self.interval_ms) {
            return Err(Error::invalid(
                format!("{field}.interval_ms"),
                format!("{} is outside 10 to 60000 milliseconds", self.interval_ms),
            ));
        }
        // FRR accepts 2 to 255.
        if self.multiplier < 2 {
            return Err(Error::invalid(
                format!("{field}.multiplier"),
                format!("{} is below 2: use 3", self.multiplier),
            ));
        }
        Ok(())
    }
}

/// AS numbering after RFC 7938 section 5.2: one ASN for all spines, one per rack (its leaf
/// pair), and one private 4-byte ASN per host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AsnPlan {
    pub spine_asn: u32,
    /// Rack ASNs are handed out from this range unless a rack names its own.
    pub rack_asn_first: u32,
    pub rack_asn_last: u32,
    /// Host ASNs are handed out from this range (private 4-byte, 4200000000-4294967294).
    pub host_asn_first: u32,
    pub host_asn_last: u32,
}

impl Default for AsnPlan {
    fn default() -> Self {
        AsnPlan {
            spine_asn: 4_200_000_000,
            rack_asn_first: 4_200_000_001,
            rack_asn_last: 4_200_009_999,
            host_asn_first: 4_200_010_000,
            host_asn_last: PRIVATE_ASN_4B.1,
        }
    }
}

impl AsnPlan {
    pub fn validate(&self, field: &str) -> Result<(), Error> {
        let f = |n: &str| format!("{field}.{n}");
        validate_asn(&f("spine_asn"), self.spine_asn)?;
        if self.host_asn_first < PRIVATE_ASN_4B.0 {
            return Err(Error::invalid(
                f("host_asn_first"),
                "host ASNs must be private 4-byte ASNs (4200000000-4294967294)",
            ));
        }
        for (name, first, last) in [
            ("rack_asn", self.rack_asn_first, self.rack_asn_last),
            ("host_asn", self.host_asn_first, self.host_asn_last),
        ] {
            validate_asn(&f(&format!("{name}_first")), first)?;
            validate_asn(&f(&format!("{name}_last")), last)?;
            if first > last {
                return Err(Error::invalid(
                    f(&format!("{name}_last")),
                    format!("{last} is below {name}_first {first}"),
                ));
            }
            if (first..=last).contains(&self.spine_asn) {
                return Err(Error::invalid(
                    f("spine_asn"),
                    format!("inside the {name} range {first}-{last}: pick disjoint ranges"),
                ));
            }
        }
        if self.rack_asn_first <= self.host_asn_last && self.host_asn_first <= self.rack_asn_last {
            return Err(Error::invalid(
                f("host_asn_first"),
                "the host and rack ASN ranges overlap: pick disjoint ranges",
            ));
        }
        Ok(())
    }
}

impl Site {
    fn check(&self) -> Result<(), Error> {
        validate_name("name", &self.name)?;
        self.asn_plan.validate("asn_plan")?;
        canonical_all("address_ranges", &self.address_ranges)?;
        if let Some(b) = &self.bfd {
            b.check("bfd")?;
        }
        for (i, a) in self.address_ranges.iter().enumerate() {
            for b in &self.address_ranges[i + 1..] {
                if a.contains(b) || b.contains(a) {
                    return Err(Error::invalid(
                        "address_ranges",
                        format!("{a} and {b} overlap"),
                    ));
                }
            }
        }
        Ok(())
    }
}
resource!(Site, "site", "site");

/// A rack: its top-of-rack leaf pair and its ASN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rack {
    pub name: String,
    /// The rack's ASN (shared by its leaves); assigned from the site plan when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// Names of the rack's leaf switches (usually two).
    #[serde(default)]
    pub leaves: Vec<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub resource_version: u64,
}

impl Rack {
    fn check(&self) -> Result<(), Error> {
        validate_name("name", &self.name)?;
        if let Some(asn) = self.asn {
            validate_asn("asn", asn)?;
        }
        names("leaves", &self.leaves)?;
        validate_text("description", &self.description, 1024)
    }
}
resource!(Rack, "rack", "racks");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SwitchRole {
    Leaf,
    Spine,
}

/// A fabric switch and the ports that face hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    pub name: String,
    pub role: SwitchRole,
    /// The rack of a leaf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub loopback: Option<IpAddr>,
    #[serde(default)]
    pub ports: Vec<SwitchPort>,
    #[serde(default)]
    pub resource_version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchPort {
    pub name: String,
    /// The node on the other end, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl Switch {
    fn check(&self) -> Result<(), Error> {
        validate_name("name", &self.name)?;
        if let Some(r) = &self.rack {
            validate_name("rack", r)?;
        }
        if self.role == SwitchRole::Spine && self.rack.is_some() {
            return Err(Error::invalid("rack", "a spine belongs to no rack"));
        }
        if let Some(asn) = self.asn {
            validate_asn("asn", asn)?;
        }
        for (i, p) in self.ports.iter().enumerate() {
            validate_text(&format!("ports[{i}].name"), &p.name, 64)?;
            if p.name.is_empty() {
                return Err(Error::invalid(
                    format!("ports[{i}].name"),
                    "must not be empty",
                ));
            }
            if let Some(n) = &p.node {
                validate_name(&format!("ports[{i}].node"), n)?;
            }
            if self.ports[..i].iter().any(|q| q.name == p.name) {
                return Err(Error::invalid(
                    format!("ports[{i}].name"),
                    format!("port {} is listed twice", p.name),
                ));
            }
        }
        Ok(())
    }
}
resource!(Switch, "switch", "switches");

// ---------------------------------------------------------------------------------------------
// Nodes

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    #[default]
    Compute,
    Gateway,
}

/// One of a node's links to its top-of-rack switches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Uplink {
    /// The host's interface, e.g. `eth0`.
    pub interface: String,
    pub switch: String,
    #[serde(default)]
    pub port: String,
}

/// What the node's agent last reported (read-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentStatus {
    /// Seconds since the Unix epoch, on the controller's clock.
    pub last_heartbeat_unix: u64,
    pub version: String,
    /// The desired-state revision the agent has applied.
    pub applied_revision: u64,
}

/// A host running the Clos agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    #[serde(default)]
    pub role: NodeRole,
    #[serde(default)]
    pub uplinks: Vec<Uplink>,
    /// The host's private ASN; assigned from the site's host range when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub underlay_addresses: Vec<IpAddr>,
    /// Read-only: the agent's last heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AgentStatus>,
    #[serde(default)]
    pub resource_version: u64,
}

impl Node {
    pub fn new(name: impl Into<String>) -> Node {
        Node {
            name: name.into(),
            rack: None,
            role: NodeRole::Compute,
            uplinks: Vec::new(),
            asn: None,
            underlay_addresses: Vec::new(),
            status: None,
            resource_version: 0,
        }
    }

    fn check(&self) -> Result<(), Error> {
        validate_name("name", &self.name)?;
        if let Some(r) = &self.rack {
            validate_name("rack", r)?;
        }
        if let Some(asn) = self.asn {
            validate_asn("asn", asn)?;
        }
        for (i, u) in self.uplinks.iter().enumerate() {
            if u.interface.is_empty() || u.interface.len() > 15 || u.interface.contains('/') {
                return Err(Error::invalid(
                    format!("uplinks[{i}].interface"),
                    "use a Linux interface name of 1-15 characters",
                ));
            }
            validate_name(&format!("uplinks[{i}].switch"), &u.switch)?;
            validate_text(&format!("uplinks[{i}].port"), &u.port, 64)?;
        }
        Ok(())
    }
}
resource!(Node, "node", "nodes");

/// An agent's periodic report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub version: String,
    #[serde(default)]
    pub applied_revision: u64,
}

/// What a node must do: the prefixes to advertise (its aggregated blocks plus host routes),
/// its ASN, and later its peers and policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DesiredState {
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[schema(value_type = Vec<String>)]
    pub advertisements: Vec<IpNet>,
    /// The addresses allocated on the node, by address. A `host` owner's address goes on the
    /// host itself; a VM's or container's is an endpoint, routed to its interface.
    #[serde(default)]
    pub addresses: Vec<NodeAddress>,
}

/// One address a node serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeAddress {
    #[schema(value_type = String)]
    pub ip: IpAddr,
    pub owner: Owner,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
}

impl NodeAddress {
    /// Whether the address belongs on the host itself rather than behind an endpoint
    /// interface.
    pub fn is_host(&self) -> bool {
        self.owner.kind == OwnerKind::Host
    }
}

/// The host-side interface name the agent expects for an endpoint owner (a VM's tap or a
/// container's veth), as Calico derives `cali…` names: `clos` and 11 hex digits of a hash of
/// the owner, so the CNI plugin or hypervisor hook and the agent agree without talking. The
/// hash is FNV-1a 64, fixed forever: changing it would orphan every running endpoint.
pub fn endpoint_interface(owner: &Owner) -> String {
    let kind = match owner.kind {
        OwnerKind::Host => "host",
        OwnerKind::Vm => "vm",
        OwnerKind::Container => "container",
        OwnerKind::Service => "service",
    };
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind.bytes().chain([b'/']).chain(owner.id.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("clos{:011x}", hash >> 20)
}

/// A node's desired state at a store revision. `revision` is what a watcher passes back (plus
/// one) as `from_revision` to resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DesiredStateAt {
    pub revision: u64,
    pub state: DesiredState,
}

/// One line of a desired-state watch (newline-delimited JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WatchEvent {
    /// The node's whole desired state as of `revision`.
    State { revision: u64, state: DesiredState },
    /// The node was removed at `revision`.
    Deleted { revision: u64 },
    /// The watch cannot go on (e.g. the revision was compacted); the stream ends.
    Error { problem: Problem },
}

// ---------------------------------------------------------------------------------------------
// Tenants, pools, subnets, addresses

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub resource_version: u64,
}

impl Tenant {
    pub fn new(name: impl Into<String>) -> Tenant {
        Tenant {
            name: name.into(),
            description: String::new(),
            resource_version: 0,
        }
    }

    fn check(&self) -> Result<(), Error> {
        validate_name("name", &self.name)?;
        validate_text("description", &self.description, 1024)
    }
}
resource!(Tenant, "tenant", "tenants");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    /// Tenant subnets are carved from the pool.
    TenantSubnets,
    /// Floating IPs, allocated straight from the pool.
    FloatingIps,
    /// Anycast service IPs, allocated straight from the pool.
    AnycastServices,
}

/// Occupancy of a pool or subnet (read-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Addresses in the prefix (saturated at 2^64 - 1).
    pub size: u64,
    pub reserved: u64,
    pub allocated: u64,
    pub held: u64,
    pub blocks: u64,
}

/// An address pool: a prefix that subnets, floating IPs or anycast IPs come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub name: String,
    #[schema(value_type = String, example = "10.0.0.0/16")]
    pub cidr: IpNet,
    pub kind: PoolKind,
    /// Prefix length of a node block: default /26 (IPv4) or /122 (IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_prefix_len: Option<u8>,
    /// Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default)]
    pub resource_version: u64,
}

impl Pool {
    pub fn new(name: impl Into<String>, cidr: IpNet, kind: PoolKind) -> Pool {
        Pool {
            name: name.into(),
            cidr,
            kind,
            block_prefix_len: None,
            usage: None,
            resource_version: 0,
        }
    }

    fn check(&self) -> Result<(), Error> {
        validate_name("name", &self.name)?;
        canonical("cidr", &self.cidr)?;
        if let Some(len) = self.block_prefix_len {
            let (min, max) = (self.cidr.prefix_len(), self.cidr.max_prefix_len());
            if len < min || len > max || max - len > 16 {
                return Err(Error::invalid(
                    "block_prefix_len",
                    format!(
                        "/{len} does not fit {}: use /{} to /{max}",
                        self.cidr,
                        min.max(max.saturating_sub(16))
                    ),
                ));
            }
        }
        Ok(())
    }
}
resource!(Pool, "pool", "pools");

/// Addresses of a subnet never handed out; all off by default (every address is a host route).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reserve {
    #[serde(default)]
    pub network: bool,
    #[serde(default)]
    pub broadcast: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub gateway: Option<IpAddr>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BorrowPolicy {
    Never,
    #[default]
    LastResort,
}

/// The IPv6 part of a dual-stack subnet: its own pool and prefix (explicit `cidr`, or the next
/// free `prefix_len` of the pool) and its own reserved addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubnetFamily {
    pub pool: String,
    /// Always set in answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "fd00:0:0:1::/64")]
    pub cidr: Option<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_len: Option<u8>,
    #[serde(default)]
    pub reserve: Reserve,
    /// Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl SubnetFamily {
    /// The next free `/prefix_len` of `pool`.
    pub fn next_free(pool: impl Into<String>, prefix_len: u8) -> SubnetFamily {
        SubnetFamily {
            pool: pool.into(),
            cidr: None,
            prefix_len: Some(prefix_len),
            reserve: Reserve::default(),
            usage: None,
        }
    }
}

/// A tenant subnet, carved from a tenant pool; it spans racks (its addresses are host routes
/// and node blocks). A single-family subnet is `pool` with `cidr` or `prefix_len`, of either
/// family. A dual-stack subnet also has `ipv6`: then `pool`/`cidr`/`prefix_len`/`reserve` are
/// its IPv4 part, and every owner gets one address of each family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub name: String,
    pub tenant: String,
    pub pool: String,
    /// An explicit prefix inside the pool; or leave it out and give `prefix_len` for the next
    /// free one. Always set in answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "10.0.1.0/24")]
    pub cidr: Option<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_len: Option<u8>,
    #[serde(default)]
    pub reserve: Reserve,
    #[serde(default)]
    pub borrow: BorrowPolicy,
    /// The IPv6 part of a dual-stack subnet (the fields above are then its IPv4 part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<SubnetFamily>,
    /// Read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default)]
    pub resource_version: u64,
}

/// Longest name of a dual-stack subnet (its IPv6 part is stored under a longer internal name).
pub const MAX_DUAL_STACK_NAME: usize = 249;

impl Subnet {
    pub fn new(
        name: impl Into<String>,
        tenant: impl Into<String>,
        pool: impl Into<String>,
        cidr: IpNet,
    ) -> Subnet {
        Subnet {
            name: name.into(),
            tenant: tenant.into(),
            pool: pool.into(),
            cidr: Some(cidr),
            prefix_len: None,
            reserve: Reserve::default(),
            borrow: BorrowPolicy::default(),
            ipv6: None,
            usage: None,
            resource_version: 0,
        }
    }

    /// Makes this a dual-stack subnet with `ipv6` as its IPv6 part.
    pub fn with_ipv6(mut self, ipv6: SubnetFamily) -> Subnet {
        self.ipv6 = Some(ipv6);
        self
    }

    fn check(&self) -> Result<(), Error> {
        validate_name("name", &self.name)?;
        validate_name("tenant", &self.tenant)?;
        validate_name("pool", &self.pool)?;
        match (&self.cidr, self.prefix_len) {
            (Some(c), _) => canonical("cidr", c)?,
            (None, Some(len)) if len <= 128 => {}
            (None, Some(_)) => return Err(Error::invalid("prefix_len", "use 0-128")),
            (None, None) => {
                return Err(Error::invalid(
                    "cidr",
                    "give either cidr or prefix_len (for the next free prefix)",
                ));
            }
        }
        if let (Some(gw), Some(c)) = (self.reserve.gateway, self.cidr)
            && !c.contains(&gw)
        {
            return Err(Error::invalid(
                "reserve.gateway",
                format!("{gw} is outside {c}"),
            ));
        }
        if let Some(v6) = &self.ipv6 {
            if self.name.len() > MAX_DUAL_STACK_NAME {
                return Err(Error::invalid(
                    "name",
                    format!("a dual-stack subnet's name has 1-{MAX_DUAL_STACK_NAME} characters"),
                ));
            }
            if let Some(c) = self.cidr
                && !c.addr().is_ipv4()
            {
                return Err(Error::invalid(
                    "cidr",
                    format!(
                        "{c} is IPv6: in a dual-stack subnet, cidr is the IPv4 part and ipv6.cidr the IPv6 part"
                    ),
                ));
            }
            if self.prefix_len.is_some_and(|l| l > 32) && self.cidr.is_none() {
                return Err(Error::invalid(
                    "prefix_len",
                    "the IPv4 part of a dual-stack subnet takes 0-32",
                ));
            }
            validate_name("ipv6.pool", &v6.pool)?;
            match (&v6.cidr, v6.prefix_len) {
                (Some(c), _) if c.addr().is_ipv4() => {
                    return Err(Error::invalid(
                        "ipv6.cidr",
                        format!("{c} is IPv4: give an IPv6 prefix"),
                    ));
                }
                (Some(c), _) => canonical("ipv6.cidr", c)?,
                (None, Some(len)) if len <= 128 => {}
                (None, Some(_)) => return Err(Error::invalid("ipv6.prefix_len", "use 0-128")),
                (None, None) => {
                    return Err(Error::invalid(
                        "ipv6.cidr",
                        "give either ipv6.cidr or ipv6.prefix_len (for the next free prefix)",
                    ));
                }
            }
            if let Some(gw) = v6.reserve.gateway {
                if !gw.is_ipv6() {
                    return Err(Error::invalid(
                        "ipv6.reserve.gateway",
                        format!("{gw} is not an IPv6 address"),
                    ));
                }
                if let Some(c) = v6.cidr
                    && !c.contains(&gw)
                {
                    return Err(Error::invalid(
                        "ipv6.reserve.gateway",
                        format!("{gw} is outside {c}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether this subnet has an IPv4 and an IPv6 part.
    pub fn is_dual_stack(&self) -> bool {
        self.ipv6.is_some()
    }
}
resource!(Subnet, "subnet", "subnets");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OwnerKind {
    Host,
    Vm,
    Container,
    Service,
}

/// The holder of an address. `id` is unique within a subnet or pool; a fixed address is kept
/// for it, so it must be stable (e.g. `namespace/pod-0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
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

/// An allocated address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// In a dual-stack subnet, the IPv4 address of the pair.
    #[schema(value_type = String)]
    pub ip: IpAddr,
    /// In a dual-stack subnet, the IPv6 address of the pair (same owner, node and lifetime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub ip6: Option<IpAddr>,
    pub pool: String,
    /// Absent for floating and anycast addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub owner: Owner,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Kept for its owner id across release.
    #[serde(default)]
    pub fixed: bool,
    /// Released, but held for its fixed owner.
    #[serde(default)]
    pub held: bool,
    #[serde(default)]
    pub resource_version: u64,
}

/// Request to allocate an address in a subnet (`node` required) or a floating/anycast pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocateAddress {
    pub owner: Owner,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// A static address instead of the next free one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub ip: Option<IpAddr>,
    /// Keep the address for `owner.id` after release.
    #[serde(default)]
    pub fixed: bool,
}

impl AllocateAddress {
    pub fn validate(&self) -> Result<(), Error> {
        if self.owner.id.is_empty() || self.owner.id.len() > 1024 {
            return Err(Error::invalid("owner.id", "use 1-1024 characters"));
        }
        if self.owner.id.chars().any(char::is_control) {
            return Err(Error::invalid(
                "owner.id",
                "control characters are not allowed",
            ));
        }
        if let Some(n) = &self.node {
            validate_name("node", n)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens and maintenance

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenRole {
    /// Everything.
    Admin,
    /// The subnets and addresses of `tenants`.
    Tenant,
    /// An agent: its own node's registration, heartbeat and desired state.
    Node,
}

/// An API token (the secret itself is shown only once, at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Token {
    pub id: String,
    pub role: TokenRole,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub resource_version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub role: TokenRole,
    #[serde(default)]
    pub tenants: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default)]
    pub description: String,
}

impl CreateToken {
    pub fn validate(&self) -> Result<(), Error> {
        names("tenants", &self.tenants)?;
        validate_text("description", &self.description, 1024)?;
        match self.role {
            TokenRole::Admin if !self.tenants.is_empty() || self.node.is_some() => Err(
                Error::invalid("role", "an admin token takes no tenants and no node"),
            ),
            TokenRole::Tenant if self.tenants.is_empty() || self.node.is_some() => {
                Err(Error::invalid(
                    "tenants",
                    "a tenant token names one or more tenants, no node",
                ))
            }
            TokenRole::Node => match &self.node {
                Some(n) if self.tenants.is_empty() => validate_name("node", n),
                _ => Err(Error::invalid(
                    "node",
                    "a node token names exactly one node and no tenants",
                )),
            },
            _ => Ok(()),
        }
    }
}

/// A new token with its secret, which is not stored and cannot be shown again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCreated {
    pub token: Token,
    /// Send as `Authorization: Bearer <secret>`.
    pub secret: String,
}

/// The result of an IPAM audit (and repair).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IpamCheck {
    pub healthy: bool,
    #[schema(value_type = Vec<Object>)]
    pub issues: Vec<serde_json::Value>,
    /// What repair did (empty for a check).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub actions: Vec<serde_json::Value>,
    /// What is still wrong after repair.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub remaining: Vec<serde_json::Value>,
}

// ---------------------------------------------------------------------------------------------

fn canonical(field: &str, net: &IpNet) -> Result<(), Error> {
    if net.trunc() != *net {
        return Err(Error::invalid(
            field,
            format!("{net} has host bits set: write it as {}", net.trunc()),
        ));
    }
    Ok(())
}

fn canonical_all(field: &str, nets: &[IpNet]) -> Result<(), Error> {
    for (i, n) in nets.iter().enumerate() {
        canonical(&format!("{field}[{i}]"), n)?;
    }
    Ok(())
}

fn names(field: &str, list: &[String]) -> Result<(), Error> {
    for (i, n) in list.iter().enumerate() {
        validate_name(&format!("{field}[{i}]"), n)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_interfaces_are_valid_stable_and_distinct() {
        let a = endpoint_interface(&Owner::new(OwnerKind::Container, "default/web-0"));
        let b = endpoint_interface(&Owner::new(OwnerKind::Container, "default/web-1"));
        let c = endpoint_interface(&Owner::new(OwnerKind::Vm, "default/web-0"));
        assert_eq!(a.len(), 15, "{a}");
        assert!(a.starts_with("clos"));
        assert!(a != b && a != c && b != c);
        // Fixed forever: running endpoints are found by this name after an upgrade.
        assert_eq!(
            a,
            endpoint_interface(&Owner::new(OwnerKind::Container, "default/web-0"))
        );
        assert_eq!(
            endpoint_interface(&Owner::new(OwnerKind::Vm, "x")),
            "clos1fe38b00d97"
        );
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name() {
        let e = serde_json::from_str::<Tenant>(r#"{"name":"a","colour":"red"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `colour`"), "{e}");
        let e = serde_json::from_str::<Pool>(
            r#"{"name":"p","cidr":"10.0.0.0/8","kind":"tenant_subnets","x":1}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("`x`"), "{e}");
    }

    #[test]
    fn validation_names_the_field() {
        let mut p = Pool::new("p", "10.0.0.1/8".parse().unwrap(), PoolKind::TenantSubnets);
        assert!(matches!(p.validate(), Err(Error::Invalid { field, .. }) if field == "cidr"));
        p.cidr = "10.0.0.0/8".parse().unwrap();
        p.validate().unwrap();
        p.block_prefix_len = Some(7);
        assert!(
            matches!(p.validate(), Err(Error::Invalid { field, .. }) if field == "block_prefix_len")
        );

        let mut plan = AsnPlan::default();
        plan.validate("asn_plan").unwrap();
        plan.host_asn_first = 65000;
        assert!(
            matches!(plan.validate("asn_plan"), Err(Error::Invalid { field, .. }) if field == "asn_plan.host_asn_first")
        );

        let mut site: Site =
            serde_json::from_str(r#"{"name": "s", "asn_plan": {"spine_asn": 4200000000, "rack_asn_first": 4200000001, "rack_asn_last": 4200000099, "host_asn_first": 4200010000, "host_asn_last": 4200019999}, "bfd": {"interval_ms": 100}}"#).unwrap();
        assert_eq!(site.bfd.map(|b| b.multiplier), Some(3));
        site.validate().unwrap();
        site.bfd = Some(BfdTimers {
            interval_ms: 5,
            multiplier: 3,
        });
        assert!(
            matches!(site.validate(), Err(Error::Invalid { field, .. }) if field == "bfd.interval_ms")
        );
        site.bfd = Some(BfdTimers {
            interval_ms: 100,
            multiplier: 1,
        });
        assert!(
            matches!(site.validate(), Err(Error::Invalid { field, .. }) if field == "bfd.multiplier")
        );

        let s = Subnet {
            cidr: None,
            ..Subnet::new("s", "t", "p", "10.0.0.0/24".parse().unwrap())
        };
        assert!(matches!(s.validate(), Err(Error::Invalid { field, .. }) if field == "cidr"));

        let t = CreateToken {
            role: TokenRole::Tenant,
            tenants: vec![],
            node: None,
            description: String::new(),
        };
        assert!(t.validate().is_err());
    }

    #[test]
    fn watch_event_shape() {
        let e = WatchEvent::State {
            revision: 7,
            state: DesiredState {
                node: "n1".into(),
                asn: Some(4_200_010_000),
                advertisements: vec!["10.0.0.0/26".parse().unwrap()],
                addresses: vec![NodeAddress {
                    ip: "10.0.0.1".parse().unwrap(),
                    owner: Owner::new(OwnerKind::Host, "n1"),
                    subnet: None,
                }],
            },
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"type":"state","revision":7,"state":{"node":"n1","asn":4200010000,"advertisements":["10.0.0.0/26"],"addresses":[{"ip":"10.0.0.1","owner":{"kind":"host","id":"n1"}}]}}"#
        );
        assert_eq!(serde_json::from_str::<WatchEvent>(&json).unwrap(), e);
    }
}
