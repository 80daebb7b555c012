//! State-machine property test: random operations against the allocator and a simple model
//! (a map of allocated addresses), asserting after every step:
//! - no address is handed out twice, and every address lies in its subnet, off its reserved
//!   addresses;
//! - an address is in its node's block unless it is a host route, and host routes only appear
//!   when the node's blocks are full and no block was free (never with `BorrowPolicy::Never`);
//! - every active address is covered by its node's advertisements, and the advertisements cover
//!   exactly the node's blocks plus its host routes;
//! - release frees (or holds a fixed address), a fixed owner gets the same address back;
//! - "exhausted" is only reported when the model says the subnet is really full (no leaks);
//! - `check()` finds nothing, and the store replayed from the returned changes equals the
//!   allocator's records and rebuilds into the same state.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use clos_ipam::{
    AllocRequest, BorrowPolicy, Change, Error, Ipam, Owner, OwnerKind, Placement, PoolKind,
    PoolSpec, Record, RecordKey, Reserve, SubnetCidr, SubnetSpec,
};
use ipnet::IpNet;
use proptest::prelude::*;

const NODES: usize = 4;
const OWNERS: usize = 24;

struct SubnetDef {
    name: &'static str,
    cidr: &'static str,
    reserve: Reserve,
    borrow: BorrowPolicy,
}

fn subnets() -> Vec<SubnetDef> {
    vec![
        SubnetDef {
            name: "a",
            cidr: "10.0.0.0/28",
            reserve: Reserve::classic(Some("10.0.0.1".parse().unwrap())),
            borrow: BorrowPolicy::LastResort,
        },
        SubnetDef {
            name: "b",
            cidr: "10.0.0.16/28",
            reserve: Reserve::default(),
            borrow: BorrowPolicy::Never,
        },
        SubnetDef {
            name: "c",
            cidr: "fd00::/124",
            reserve: Reserve::default(),
            borrow: BorrowPolicy::LastResort,
        },
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Alloc {
        subnet: usize,
        node: usize,
        owner: usize,
        fixed: bool,
        at: Option<u8>,
    },
    Release {
        subnet: usize,
        owner: usize,
    },
    ReleaseIp {
        subnet: usize,
        offset: u8,
    },
    Forget {
        subnet: usize,
        owner: usize,
    },
    ReleaseNode {
        node: usize,
    },
    RemoveNode {
        node: usize,
    },
    AddNode {
        node: usize,
    },
    ReleaseEmptyBlocks {
        node: usize,
    },
    Floating {
        owner: usize,
        release: bool,
    },
    Rebuild,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // Mostly on the owner's "home" node, sometimes elsewhere (moves and conflicts).
        14 => (0..3usize, prop::option::weighted(0.2, 0..NODES), 0..OWNERS, any::<bool>(), prop::option::weighted(0.15, any::<u8>()))
            .prop_map(|(subnet, away, owner, fixed, at)| {
                let node = away.unwrap_or(owner % NODES);
                Op::Alloc { subnet, node, owner, fixed, at }
            }),
        5 => (0..3usize, 0..OWNERS).prop_map(|(subnet, owner)| Op::Release { subnet, owner }),
        2 => (0..3usize, any::<u8>()).prop_map(|(subnet, offset)| Op::ReleaseIp { subnet, offset }),
        1 => (0..3usize, 0..OWNERS).prop_map(|(subnet, owner)| Op::Forget { subnet, owner }),
        1 => (0..NODES).prop_map(|node| Op::ReleaseNode { node }),
        1 => (0..NODES).prop_map(|node| Op::RemoveNode { node }),
        1 => (0..NODES).prop_map(|node| Op::AddNode { node }),
        1 => (0..NODES).prop_map(|node| Op::ReleaseEmptyBlocks { node }),
        2 => (0..8usize, any::<bool>()).prop_map(|(owner, release)| Op::Floating { owner, release }),
        1 => Just(Op::Rebuild),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct Held {
    subnet: usize,
    owner: String,
    node: Option<usize>,
    fixed: bool,
    held: bool,
}

struct World {
    ipam: Ipam,
    kv: BTreeMap<RecordKey, Record>,
    defs: Vec<SubnetDef>,
    /// The model: address -> who holds it.
    addrs: BTreeMap<IpAddr, Held>,
    nodes: BTreeSet<usize>,
    floating: BTreeMap<String, IpAddr>,
}

fn node(n: usize) -> String {
    format!("n{n}")
}

fn owner(o: usize) -> String {
    format!("ns/pod-{o}")
}

fn contains(net: &IpNet, ip: IpAddr) -> bool {
    net.contains(&ip)
}

fn nth(net: &IpNet, i: u8) -> IpAddr {
    let hosts = 1u128 << (net.max_prefix_len() - net.prefix_len());
    let off = u128::from(i) % hosts;
    match net {
        IpNet::V4(n) => IpAddr::V4((u32::from(n.network()) + off as u32).into()),
        IpNet::V6(n) => IpAddr::V6((u128::from(n.network()) + off).into()),
    }
}

fn size(net: &IpNet) -> u128 {
    1u128 << (net.max_prefix_len() - net.prefix_len())
}

impl World {
    fn new() -> World {
        let mut w = World {
            ipam: Ipam::new(),
            kv: BTreeMap::new(),
            defs: subnets(),
            addrs: BTreeMap::new(),
            nodes: BTreeSet::new(),
            floating: BTreeMap::new(),
        };
        let pools = [
            PoolSpec::new(
                "v4",
                "10.0.0.0/24".parse().unwrap(),
                PoolKind::TenantSubnets,
            )
            .block_prefix_len(30),
            PoolSpec::new("v6", "fd00::/120".parse().unwrap(), PoolKind::TenantSubnets)
                .block_prefix_len(126),
            PoolSpec::new(
                "fip",
                "192.0.2.0/29".parse().unwrap(),
                PoolKind::FloatingIps,
            ),
        ];
        for p in pools {
            let c = w.ipam.create_pool(&p).unwrap();
            w.apply(&c);
        }
        for d in subnets() {
            let pool = if d.cidr.contains(':') { "v6" } else { "v4" };
            let spec = SubnetSpec::new(
                d.name,
                "t",
                pool,
                SubnetCidr::Explicit(d.cidr.parse().unwrap()),
            )
            .reserve(d.reserve)
            .borrow(d.borrow);
            let (_, c) = w.ipam.create_subnet(&spec).unwrap();
            w.apply(&c);
        }
        for n in 0..NODES {
            let c = w.ipam.add_node(&node(n)).unwrap();
            w.apply(&c);
            w.nodes.insert(n);
        }
        w
    }

    fn apply(&mut self, changes: &[Change]) {
        for c in changes {
            match c {
                Change::Put { record } => {
                    self.kv.insert(record.key(), record.clone());
                }
                Change::Delete { key } => {
                    assert!(self.kv.remove(key).is_some(), "delete of absent {key}");
                }
            }
        }
    }

    fn cidr(&self, s: usize) -> IpNet {
        self.defs[s].cidr.parse().unwrap()
    }

    fn reserved(&self, s: usize) -> BTreeSet<IpAddr> {
        let cidr = self.cidr(s);
        let r = self.defs[s].reserve;
        let mut out = BTreeSet::new();
        if r.network {
            out.insert(cidr.network());
        }
        if r.broadcast {
            out.insert(cidr.broadcast());
        }
        out.extend(r.gateway);
        out
    }

    fn in_subnet(&self, s: usize) -> usize {
        self.addrs.values().filter(|h| h.subnet == s).count()
    }

    fn find(&self, s: usize, o: &str) -> Option<(IpAddr, Held)> {
        self.addrs
            .iter()
            .find(|(_, h)| h.subnet == s && h.owner == o)
            .map(|(ip, h)| (*ip, h.clone()))
    }

    /// Every address of `block` is allocated or reserved, per the model.
    fn block_full(&self, s: usize, block: &IpNet) -> bool {
        let used = self.addrs.keys().filter(|ip| contains(block, **ip)).count()
            + self
                .reserved(s)
                .iter()
                .filter(|ip| contains(block, **ip))
                .count();
        used as u128 == size(block)
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Alloc {
                subnet: s,
                node: n,
                owner: o,
                fixed,
                at,
            } => self.alloc(s, n, o, fixed, at)?,
            Op::Release {
                subnet: s,
                owner: o,
            } => {
                let name = self.defs[s].name;
                let res = self.ipam.release(name, &owner(o));
                match self.find(s, &owner(o)) {
                    None => prop_assert!(matches!(res, Err(Error::UnknownOwner { .. })), "{res:?}"),
                    Some((ip, h)) => {
                        let c = res.unwrap();
                        self.apply(&c);
                        self.model_release(ip, h);
                    }
                }
            }
            Op::ReleaseIp { subnet: s, offset } => {
                let ip = nth(&self.cidr(s), offset);
                let res = self.ipam.release_ip(ip);
                match self.addrs.get(&ip).cloned() {
                    None => {
                        prop_assert!(matches!(res, Err(Error::UnknownAddress { .. })), "{res:?}")
                    }
                    Some(h) => {
                        let c = res.unwrap();
                        self.apply(&c);
                        self.model_release(ip, h);
                    }
                }
            }
            Op::Forget {
                subnet: s,
                owner: o,
            } => {
                let res = self.ipam.forget_fixed(self.defs[s].name, &owner(o));
                match self.find(s, &owner(o)) {
                    None => prop_assert!(res.is_err()),
                    Some((ip, h)) => {
                        let c = res.unwrap();
                        self.apply(&c);
                        if h.held {
                            self.addrs.remove(&ip);
                        } else if let Some(h) = self.addrs.get_mut(&ip) {
                            h.fixed = false;
                        }
                    }
                }
            }
            Op::ReleaseNode { node: n } => {
                let res = self.ipam.release_node(&node(n));
                if !self.nodes.contains(&n) {
                    prop_assert!(matches!(res, Err(Error::UnknownNode { .. })), "{:?}", res);
                    return Ok(());
                }
                let c = res.unwrap();
                self.apply(&c);
                let on: Vec<(IpAddr, Held)> = self
                    .addrs
                    .iter()
                    .filter(|(_, h)| h.node == Some(n))
                    .map(|(ip, h)| (*ip, h.clone()))
                    .collect();
                for (ip, h) in on {
                    self.model_release(ip, h);
                }
            }
            Op::RemoveNode { node: n } => {
                let res = self.ipam.remove_node(&node(n));
                let active = self.addrs.values().filter(|h| h.node == Some(n)).count();
                if !self.nodes.contains(&n) {
                    prop_assert!(matches!(res, Err(Error::UnknownNode { .. })), "{:?}", res);
                } else if active > 0 {
                    prop_assert!(
                        matches!(res, Err(Error::NodeInUse { addresses, .. }) if addresses == active as u64),
                        "{res:?}"
                    );
                } else {
                    let c = res.unwrap();
                    self.apply(&c);
                    self.nodes.remove(&n);
                }
            }
            Op::AddNode { node: n } => {
                let res = self.ipam.add_node(&node(n));
                if self.nodes.insert(n) {
                    let c = res.unwrap();
                    self.apply(&c);
                } else {
                    prop_assert!(matches!(res, Err(Error::NodeExists { .. })), "{:?}", res);
                }
            }
            Op::ReleaseEmptyBlocks { node: n } => {
                if let Ok(c) = self.ipam.release_empty_blocks(&node(n)) {
                    self.apply(&c);
                }
            }
            Op::Floating { owner: o, release } => {
                let name = owner(o);
                if release {
                    let res = self.ipam.release_direct("fip", &name);
                    match self.floating.remove(&name) {
                        Some(_) => self.apply(&res.unwrap()),
                        None => prop_assert!(res.is_err()),
                    }
                } else {
                    let res = self.ipam.allocate_direct(
                        "fip",
                        &Owner::new(OwnerKind::Service, &name),
                        None,
                    );
                    let a = res.unwrap();
                    self.apply(&a.changes);
                    if let Some(prev) = self.floating.get(&name) {
                        prop_assert_eq!(*prev, a.ip);
                    } else {
                        prop_assert!(
                            !self.floating.values().any(|ip| *ip == a.ip),
                            "floating IP handed out twice"
                        );
                        self.floating.insert(name, a.ip);
                    }
                }
            }
            Op::Rebuild => {
                let rebuilt = Ipam::from_records(self.kv.values().cloned()).unwrap();
                prop_assert_eq!(rebuilt.records(), self.ipam.records());
                self.ipam = rebuilt;
            }
        }
        Ok(())
    }

    fn model_release(&mut self, ip: IpAddr, h: Held) {
        if h.held {
            return;
        }
        if h.fixed {
            let e = self.addrs.get_mut(&ip).unwrap();
            e.held = true;
            e.node = None;
        } else {
            self.addrs.remove(&ip);
        }
    }

    fn alloc(
        &mut self,
        s: usize,
        n: usize,
        o: usize,
        fixed: bool,
        at: Option<u8>,
    ) -> Result<(), TestCaseError> {
        let cidr = self.cidr(s);
        let name = self.defs[s].name;
        let mut req = AllocRequest::new(name, node(n), Owner::new(OwnerKind::Container, owner(o)));
        req.fixed = fixed;
        let at_ip = at.map(|i| nth(&cidr, i));
        req.ip = at_ip;
        let blocks_before = self.ipam.node_blocks(&node(n)).unwrap_or_default();
        let usage_before = self.ipam.subnet_usage(name).unwrap();
        let res = self.ipam.allocate(&req);
        let existing = self.find(s, &owner(o));
        let capacity = size(&cidr) - self.reserved(s).len() as u128;
        let a = match res {
            Ok(a) => a,
            Err(e) => {
                match &e {
                    Error::UnknownNode { .. } => prop_assert!(!self.nodes.contains(&n)),
                    Error::Exhausted { .. } => {
                        prop_assert!(existing.is_none() && at_ip.is_none());
                        prop_assert_eq!(
                            self.in_subnet(s) as u128,
                            capacity,
                            "exhausted with free addresses: a leak"
                        );
                    }
                    Error::NoFreeBlock { .. } => {
                        prop_assert_eq!(self.defs[s].borrow, BorrowPolicy::Never);
                        prop_assert!((self.in_subnet(s) as u128) < capacity);
                    }
                    Error::OwnerOnOtherNode { .. } => {
                        let (_, h) = existing.unwrap();
                        prop_assert!(!h.held && h.node != Some(n));
                    }
                    Error::OwnerHasOtherAddress { ip, requested, .. } => {
                        prop_assert_eq!(Some(*requested), at_ip);
                        prop_assert_eq!(Some(*ip), existing.map(|(ip, _)| ip));
                    }
                    Error::AddressInUse { ip, .. } => prop_assert!(self.addrs.contains_key(ip)),
                    Error::AddressReserved { ip, .. } => {
                        prop_assert!(self.reserved(s).contains(ip))
                    }
                    other => prop_assert!(false, "unexpected error {other}"),
                }
                return Ok(());
            }
        };
        prop_assert!(self.nodes.contains(&n));
        self.apply(&a.changes);
        prop_assert!(contains(&cidr, a.ip), "{} outside {cidr}", a.ip);
        prop_assert!(
            !self.reserved(s).contains(&a.ip),
            "reserved {} handed out",
            a.ip
        );
        if let Some(want) = at_ip {
            prop_assert_eq!(a.ip, want);
        }
        match existing {
            Some((ip, h)) => {
                // Same owner: same address (idempotent retry, or a fixed owner coming back).
                prop_assert_eq!(ip, a.ip);
                prop_assert!(h.held || h.node == Some(n));
                // A plain retry changes nothing; coming back from held or upgrading to fixed does.
                if !h.held && (!fixed || h.fixed) {
                    prop_assert!(a.changes.is_empty());
                }
                let e = self.addrs.get_mut(&ip).unwrap();
                e.node = Some(n);
                e.held = false;
                e.fixed |= fixed;
            }
            None => {
                prop_assert!(!self.addrs.contains_key(&a.ip), "{} allocated twice", a.ip);
                if let (Placement::HostRoute { .. }, None) = (a.placement, at_ip) {
                    // A borrow: only as a last resort.
                    prop_assert_eq!(self.defs[s].borrow, BorrowPolicy::LastResort);
                    let total_blocks = size(&cidr) / 4;
                    prop_assert_eq!(
                        u128::from(usage_before.blocks),
                        total_blocks,
                        "borrowed while a block was free"
                    );
                    for b in blocks_before.iter().filter(|b| cidr.contains(*b)) {
                        prop_assert!(
                            self.block_full(s, b),
                            "borrowed while own block {b} had space"
                        );
                    }
                }
                self.addrs.insert(
                    a.ip,
                    Held {
                        subnet: s,
                        owner: owner(o),
                        node: Some(n),
                        fixed,
                        held: false,
                    },
                );
            }
        }
        // Placement agrees with the node's blocks.
        let blocks = self.ipam.node_blocks(&node(n)).unwrap();
        let in_own = blocks.iter().any(|b| b.contains(&a.ip));
        match a.placement {
            Placement::Block { block } => {
                prop_assert!(in_own && blocks.contains(&block) && block.contains(&a.ip));
            }
            Placement::HostRoute { route, .. } => {
                prop_assert!(!in_own);
                prop_assert_eq!(route, IpNet::from(a.ip));
            }
            Placement::Unplaced => prop_assert!(false, "active address unplaced"),
        }
        Ok(())
    }

    /// Invariants that hold after every step.
    fn invariants(&self) -> Result<(), TestCaseError> {
        prop_assert_eq!(self.ipam.len(), self.addrs.len() + self.floating.len());
        for (ip, h) in &self.addrs {
            let info = self.ipam.lookup(*ip);
            prop_assert!(info.is_some(), "{ip} lost");
            let info = info.unwrap();
            prop_assert_eq!(&info.owner.id, &h.owner);
            prop_assert_eq!(info.node, h.node.map(node));
            prop_assert_eq!((info.fixed, info.held), (h.fixed, h.held));
        }
        for &n in &self.nodes {
            let adv = self.ipam.advertisements(&node(n)).unwrap();
            let blocks = self.ipam.node_blocks(&node(n)).unwrap();
            for (ip, h) in self.addrs.iter().filter(|(_, h)| h.node == Some(n)) {
                prop_assert!(
                    adv.iter().any(|p| p.contains(ip)),
                    "{ip} of {:?} not advertised",
                    h
                );
            }
            // Aggregates cover exactly the blocks: same address count, every block inside.
            let host_routes: Vec<&IpNet> = adv
                .iter()
                .filter(|p| !blocks.iter().any(|b| p.contains(b)))
                .collect();
            for r in &host_routes {
                prop_assert_eq!(r.prefix_len(), r.max_prefix_len());
            }
            let covered: u128 = adv
                .iter()
                .filter(|p| !host_routes.contains(p))
                .map(size)
                .sum();
            let owned: u128 = blocks.iter().map(size).sum();
            prop_assert_eq!(covered, owned);
        }
        let report = self.ipam.check();
        prop_assert!(report.is_healthy(), "{:?}", report.issues);
        let stored: Vec<Record> = self.kv.values().cloned().collect();
        prop_assert_eq!(stored, self.ipam.records());
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn allocator_matches_model(ops in prop::collection::vec(op(), 1..200)) {
        let mut w = World::new();
        for op in &ops {
            w.step(op)?;
            w.invariants()?;
        }
        let rebuilt = Ipam::from_records(w.kv.values().cloned()).unwrap();
        prop_assert!(rebuilt.check().is_healthy());
        prop_assert_eq!(rebuilt.records(), w.ipam.records());
    }
}
