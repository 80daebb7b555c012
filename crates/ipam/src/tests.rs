//! Scenario tests of the public operations. Corruption tests are in `tests_check.rs`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::record::{Change, Record, RecordKey};
use crate::{
    AllocRequest, BorrowPolicy, Error, Ipam, Owner, OwnerKind, Placement, PoolKind, PoolSpec,
    Reserve, SubnetCidr, SubnetSpec,
};

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(crate) fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub(crate) fn vm(id: &str) -> Owner {
    Owner::new(OwnerKind::Vm, id)
}

/// A fake store: applies changes the way the controller would.
#[derive(Default)]
pub(crate) struct Kv(pub(crate) BTreeMap<RecordKey, Record>);

impl Kv {
    pub(crate) fn apply(&mut self, changes: &[Change]) {
        for c in changes {
            match c {
                Change::Put { record } => {
                    self.0.insert(record.key(), record.clone());
                }
                Change::Delete { key } => {
                    assert!(self.0.remove(key).is_some(), "delete of absent {key}");
                }
            }
        }
    }

    pub(crate) fn records(&self) -> Vec<Record> {
        self.0.values().cloned().collect()
    }
}

/// Pool 10.0.0.0/16 (/26 blocks), nodes n1..n3, and `kv` in step.
pub(crate) fn fabric(kv: &mut Kv) -> Ipam {
    let mut ipam = Ipam::new();
    kv.apply(
        &ipam
            .create_pool(&PoolSpec::new(
                "tenants",
                net("10.0.0.0/16"),
                PoolKind::TenantSubnets,
            ))
            .unwrap(),
    );
    for n in ["n1", "n2", "n3"] {
        kv.apply(&ipam.add_node(n).unwrap());
    }
    ipam
}

pub(crate) fn subnet(ipam: &mut Ipam, kv: &mut Kv, spec: SubnetSpec) -> IpNet {
    let (cidr, changes) = ipam.create_subnet(&spec).unwrap();
    kv.apply(&changes);
    cidr
}

pub(crate) fn alloc(ipam: &mut Ipam, kv: &mut Kv, req: AllocRequest) -> (IpAddr, Placement) {
    let a = ipam.allocate(&req).unwrap();
    kv.apply(&a.changes);
    (a.ip, a.placement)
}

/// The store and the allocator agree, a rebuild agrees, and the checker is happy.
pub(crate) fn assert_consistent(ipam: &Ipam, kv: &Kv) {
    assert_eq!(ipam.check().issues, vec![]);
    assert_eq!(kv.records(), ipam.records());
    let rebuilt = Ipam::from_records(kv.records()).unwrap();
    assert_eq!(rebuilt.check().issues, vec![]);
    assert_eq!(rebuilt.records(), ipam.records());
}

#[test]
fn allocates_from_own_block_and_aggregates() {
    let mut kv = Kv::default();
    let mut ipam = fabric(&mut kv);
    let cidr = subnet(
        &mut ipam,
        &mut kv,
        SubnetSpec::new(
            "web",
            "acme",
            "tenants",
            SubnetCidr::NextFree { prefix_len: 22 },
        ),
    );
    assert_eq!(cidr, net("10.0.0.0/22"));
    let mut ips = Vec::new();
    for i in 0..100 {
        let (a, p) = alloc(
            &mut ipam,
            &mut kv,
            AllocRequest::new("web", "n1", vm(&format!("vm{i}"))),
        );
        assert!(matches!(p, Placement::Block { .. }), "{p:?}");
        ips.push(a);
    }
    assert_eq!(ips[0], ip("10.0.0.0"));
    assert_eq!(ips[99], ip("10.0.0.99"));
    assert_eq!(
        ipam.node_blocks("n1").unwrap(),
        vec![net("10.0.0.0/26"), net("10.0.0.64/26")]
    );
    // Two contiguous /26 blocks are one /25 route.
    assert_eq!(ipam.advertisements("n1").unwrap(), vec![net("10.0.0.0/25")]);
    // Another node gets its own block, not an address in n1's.
    let (a, p) = alloc(
        &mut ipam,
        &mut kv,
        AllocRequest::new("web", "n2", vm("other")),
    );
    assert_eq!(a, ip("10.0.0.128"));
    assert_eq!(
        p,
        Placement::Block {
            block: net("10.0.0.128/26")
        }
    );
    // What each node's agent is told to serve: its own addresses, none of the other's.
    let n1 = ipam.node_addresses("n1").unwrap();
    assert_eq!(n1.len(), 100);
    assert_eq!((n1[0].ip, n1[99].ip), (ip("10.0.0.0"), ip("10.0.0.99")));
    let n2 = ipam.node_addresses("n2").unwrap();
    assert_eq!(n2.iter().map(|a| a.ip).collect::<Vec<_>>(), vec![a]);
    assert_eq!(n2[0].owner, vm("other"));
    kv.apply(&ipam.release("web", "vm0").unwrap());
    assert_eq!(ipam.node_addresses("n1").unwrap().len(), 99);
    assert!(ipam.node_addresses("nope").is_err());
    assert_consistent(&ipam, &kv);
}

#[test]
fn retry_is_idempotent_and_owner_is_unique_per_subnet() {
    let mut kv = Kv::default();
    let mut ipam = fabric(&mut kv);
    subnet(
        &mut ipam,
        &mut kv,
        SubnetSpec::new(
            "web",
            "acme",
            "tenants",
            SubnetCidr::NextFree { prefix_len: 24 },
        ),
    );
    let first = ipam
        .allocate(&AllocRequest::new("web", "n1", vm("a")))
        .unwrap();
    kv.apply(&first.changes);
    let again = ipam
        .allocate(&AllocRequest::new("web", "n1", vm("a")))
        .unwrap();
    assert_eq!(again.ip, first.ip);
    assert!(again.changes.is_empty());
    let err = ipam
        .allocate(&AllocRequest::new("web", "n2", vm("a")))
        .unwrap_err();
    assert!(
        matches!(err, Error::OwnerOnOtherNode { ref node, .. } if node == "n1"),
        "{err}"
    );
    assert!(err.to_string().contains("release it there first"));
    assert_consistent(&ipam, &kv);
}

/// /28 subnet with /30 blocks: 4 blocks of 4.
fn tiny(borrow: BorrowPolicy) -> (Ipam, Kv) {
    let mut kv = Kv::default();
    let mut ipam = Ipam::new();
    kv.apply(
        &ipam
            .create_pool(
                &PoolSpec::new("p", net("10.1.0.0/24"), PoolKind::TenantSubnets)
                    .block_prefix_len(30),
            )
            .unwrap(),
    );
    for n in ["a", "b"] {
        kv.apply(&ipam.add_node(n).unwrap());
    }
    subnet(
        &mut ipam,
        &mut kv,
        SubnetSpec::new("s", "t", "p", SubnetCidr::Explicit(net("10.1.0.0/28"))).borrow(borrow),
    );
    (ipam, kv)
}

#[test]
fn borrows_a_host_route_only_as_last_resort() {
    let (mut ipam, mut kv) = tiny(BorrowPolicy::LastResort);
    for i in 0..12 {
        let (_, p) = alloc(
            &mut ipam,
            &mut kv,
            AllocRequest::new("s", "a", vm(&format!("a{i}"))),
        );
        assert!(matches!(p, Placement::Block { .. }));
    }
    let (b0, _) = alloc(&mut ipam, &mut kv, AllocRequest::new("s", "b", vm("b0")));
    assert_eq!(b0, ip("10.1.0.12"));
    // a's blocks are full and no block is free: borrow from b's block.
    let (a12, p) = alloc(&mut ipam, &mut kv, AllocRequest::new("s", "a", vm("a12")));
    assert_eq!(a12, ip("10.1.0.13"));
    assert_eq!(
        p,
        Placement::HostRoute {
            block: net("10.1.0.12/30"),
            route: net("10.1.0.13/32")
        }
    );
    assert_eq!(
        ipam.advertisements("a").unwrap(),
        vec![net("10.1.0.0/29"), net("10.1.0.8/30"), net("10.1.0.13/32")]
    );
    assert_eq!(ipam.advertisements("b").unwrap(), vec![net("10.1.0.12/30")]);
    // Releasing one of a's own addresses means the next one comes from its block again.
    kv.apply(&ipam.release("s", "a3").unwrap());
    let (again, p) = alloc(&mut ipam, &mut kv, AllocRequest::new("s", "a", vm("a13")));
    assert_eq!(again, ip("10.1.0.3"));
    assert!(matches!(p, Placement::Block { .. }));
    for i in 14..16 {
        alloc(
            &mut ipam,
            &mut kv,
            AllocRequest::new("s", "a", vm(&format!("a{i}"))),
        );
    }
    let err = ipam
        .allocate(&AllocRequest::new("s", "b", vm("b1")))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Exhausted {
                allocated: 16,
                held: 0,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("create another subnet"), "{err}");
    assert_consistent(&ipam, &kv);
}

#[test]
fn never_borrow_fails_without_side_effects() {
    let (mut ipam, mut kv) = tiny(BorrowPolicy::Never);
    for i in 0..12 {
        alloc(
            &mut ipam,
            &mut kv,
            AllocRequest::new("s", "a", vm(&format!("a{i}"))),
        );
    }
    alloc(&mut ipam, &mut kv, AllocRequest::new("s", "b", vm("b0")));
    let before = ipam.records();
    let err = ipam
        .allocate(&AllocRequest::new("s", "a", vm("a12")))
        .unwrap_err();
    assert!(
        matches!(err, Error::NoFreeBlock { ref node, .. } if node == "a"),
        "{err}"
    );
    assert!(err.to_string().contains("allow borrowing"), "{err}");
    assert_eq!(ipam.records(), before);
    // Freeing b's block lets a claim it.
    kv.apply(&ipam.release("s", "b0").unwrap());
    kv.apply(&ipam.release_empty_blocks("b").unwrap());
    let (_, p) = alloc(&mut ipam, &mut kv, AllocRequest::new("s", "a", vm("a12")));
    assert_eq!(
        p,
        Placement::Block {
            block: net("10.1.0.12/30")
        }
    );
    assert_eq!(ipam.advertisements("a").unwrap(), vec![net("10.1.0.0/28")]);
    assert_consistent(&ipam, &kv);
}

#[test]
fn fixed_address_survives_release_and_moves_nodes() {
    let mut kv = Kv::default();
    let mut ipam = fabric(&mut kv);
    subnet(
        &mut ipam,
        &mut kv,
        SubnetSpec::new(
            "db",
            "acme",
            "tenants",
            SubnetCidr::NextFree { prefix_len: 24 },
        ),
    );
    let owner = Owner::new(OwnerKind::Container, "prod/db-0");
    let (first, _) = alloc(
        &mut ipam,
        &mut kv,
        AllocRequest::new("db", "n1", owner.clone()).fixed(),
    );
    kv.apply(&ipam.release("db", "prod/db-0").unwrap());
    let held = ipam.lookup(first).unwrap();
    assert!(held.held && held.node.is_none());
    assert_eq!(held.placement, Placement::Unplaced);
    assert_eq!(ipam.subnet_usage("db").unwrap().held, 1);
    // Nobody else gets it meanwhile.
    let (other, _) = alloc(&mut ipam, &mut kv, AllocRequest::new("db", "n1", vm("x")));
    assert_ne!(other, first);
    // The pod comes back on another node: same address, as a host route there.
    let (again, p) = alloc(
        &mut ipam,
        &mut kv,
        AllocRequest::new("db", "n2", owner.clone()).fixed(),
    );
    assert_eq!(again, first);
    assert_eq!(
        p,
        Placement::HostRoute {
            block: net("10.0.0.0/26"),
            route: net("10.0.0.0/32")
        }
    );
    assert!(
        ipam.advertisements("n2")
            .unwrap()
            .contains(&net("10.0.0.0/32"))
    );
    assert_consistent(&ipam, &kv);
    // Forgetting a held fixed address frees it.
    kv.apply(&ipam.release("db", "prod/db-0").unwrap());
    kv.apply(&ipam.forget_fixed("db", "prod/db-0").unwrap());
    assert!(ipam.lookup(first).is_none());
    assert_eq!(ipam.subnet_usage("db").unwrap().held, 0);
    assert_consistent(&ipam, &kv);
}

#[test]
fn static_addresses_and_reservations() {
    let mut kv = Kv::default();
    let mut ipam = fabric(&mut kv);
    subnet(
        &mut ipam,
        &mut kv,
        SubnetSpec::new(
            "lan",
            "acme",
            "tenants",
            SubnetCidr::Explicit(net("10.0.5.0/24")),
        )
        .reserve(Reserve::classic(Some(ip("10.0.5.1")))),
    );
    let usage = ipam.subnet_usage("lan").unwrap();
    assert_eq!((usage.size, usage.reserved, usage.free()), (256, 3, 253));
    // Dynamic allocation skips network and gateway.
    let (a, _) = alloc(&mut ipam, &mut kv, AllocRequest::new("lan", "n1", vm("a")));
    assert_eq!(a, ip("10.0.5.2"));
    // A static address in a free block claims that block for the node.
    let (s, p) = alloc(
        &mut ipam,
        &mut kv,
        AllocRequest::new("lan", "n2", vm("s")).at(ip("10.0.5.200")),
    );
    assert_eq!(s, ip("10.0.5.200"));
    assert_eq!(
        p,
        Placement::Block {
            block: net("10.0.5.192/26")
        }
    );
    for (addr, want) in [
        ("10.0.5.0", "reserved"),
        ("10.0.5.1", "reserved"),
        ("10.0.5.255", "reserved"),
        ("10.0.5.200", "already allocated to s"),
        ("10.0.6.1", "outside subnet lan"),
    ] {
        let err = ipam
            .allocate(&AllocRequest::new("lan", "n1", vm("z")).at(ip(addr)))
            .unwrap_err();
        assert!(err.to_string().contains(want), "{addr}: {err}");
    }
    // Broadcast block: a static address next to it is fine.
    alloc(
        &mut ipam,
        &mut kv,
        AllocRequest::new("lan", "n1", vm("b")).at(ip("10.0.5.254")),
    );
    let err = ipam
        .allocate(&AllocRequest::new("lan", "n1", vm("s")).at(ip("10.0.5.9")))
        .unwrap_err();
    assert!(matches!(err, Error::OwnerHasOtherAddress { .. }), "{err}");
    assert_consistent(&ipam, &kv);
}

#[test]
fn reservations_fill_the_subnet_exactly() {
    let mut kv = Kv::default();
    let mut ipam = fabric(&mut kv);
    subnet(
        &mut ipam,
        &mut kv,
        SubnetSpec::new(
            "small",
            "acme",
            "tenants",
            SubnetCidr::NextFree { prefix_len: 29 },
        )
        .reserve(Reserve::classic(Some(ip("10.0.0.1")))),
    );
    let mut got = Vec::new();
    for i in 0..5 {
        got.push(
            alloc(
                &mut ipam,
                &mut kv,
                AllocRequest::new("small", "n1", vm(&format!("v{i}"))),
            )
            .0,
        );
    }
    assert_eq!(
        got,
        ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"].map(ip)
    );
    assert!(matches!(
        ipam.allocate(&AllocRequest::new("small", "n2", vm("x"))),
        Err(Error::Exhausted { allocated: 5, .. })
    ));
    assert_consistent(&ipam, &kv);
}

#[test]
fn single_address_blocks_skip_reserved_blocks() {
    // /32 blocks: the network and broadcast blocks are entirely reserved.
    let mut kv = Kv::default();
    let mut ipam = Ipam::new();
    kv.apply(
        &ipam
            .create_pool(
                &PoolSpec::new("p", net("10.9.0.0/29"), PoolKind::TenantSubnets)
                    .block_prefix_len(32),
            )
            .unwrap(),
    );
    kv.apply(&ipam.add_node("n").unwrap());
    subnet(
        &mut ipam,
        &mut kv,
        SubnetSpec::new("s", "t", "p", SubnetCidr::NextFree { prefix_len: 30 })
            .reserve(Reserve::classic(None)),
    );
    let a = alloc(&mut ipam, &mut kv, AllocRequest::new("s", "n", vm("a"))).0;
    let b = alloc(&mut ipam, &mut kv, AllocRequest::new("s", "n", vm("b"))).0;
    assert_eq!((a, b), (ip("10.9.0.1"), ip("10.9.0.2")));
    assert!(matches!(
        ipam.allocate(&AllocRequest::new("s", "n", vm("c"))),
        Err(Error::Exhausted { .. })
    ));
    assert_eq!(
        ipam.advertisements("n").unwrap(),
        vec![net("10.9.0.1/32"), net("10.9.0.2/32")]
    );
    assert_consistent(&ipam, &kv);
}

#[test]
fn ipv6_subnets_use_122_blocks() {
    let mut kv = Kv::default();
    let mut ipam = fabric(&mut kv);
    kv.apply(
        &ipam
            .create_pool(&PoolSpec::new(
                "v6",
                net("fd00::/48"),
                PoolKind::TenantSubnets,
            ))
            .unwrap(),
    );
    let cidr = subnet(
        &mut ipam,
        &mut kv,
        SubnetSpec::new(
            "web6",
            "acme",
            "v6",
            SubnetCidr::NextFree { prefix_len: 64 },
        ),
    );
    assert_eq!(cidr, net("fd00::/64"));
    for i in 0..65 {
        alloc(
            &mut ipam,
            &mut kv,
            AllocRequest::new("web6", "n3", vm(&format!("v{i}"))),
        );
    }
    assert_eq!(ipam.advertisements("n3").unwrap(), vec![net("fd00::/121")]);
    assert_eq!(ipam.lookup(ip("fd00::40")).unwrap().owner.id, "v64");
    assert_eq!(ipam.subnet_usage("web6").unwrap().size, 1 << 64);
    assert_consistent(&ipam, &kv);
}

#[test]
fn subnet_carving_and_errors() {
    let mut kv = Kv::default();
    let mut ipam = fabric(&mut kv);
    subnet(
        &mut ipam,
        &mut kv,
        SubnetSpec::new(
            "a",
            "t",
            "tenants",
            SubnetCidr::Explicit(net("10.0.1.0/24")),
        ),
    );
    // Next free /23 skips the used /24's /23.
    let b = subnet(
        &mut ipam,
        &mut kv,
        SubnetSpec::new("b", "t", "tenants", SubnetCidr::NextFree { prefix_len: 23 }),
    );
    assert_eq!(b, net("10.0.2.0/23"));
    let c = subnet(
        &mut ipam,
        &mut kv,
        SubnetSpec::new("c", "t", "tenants", SubnetCidr::NextFree { prefix_len: 24 }),
    );
    assert_eq!(c, net("10.0.0.0/24"));
    let err = ipam
        .create_subnet(&SubnetSpec::new(
            "d",
            "t",
            "tenants",
            SubnetCidr::Explicit(net("10.0.0.0/23")),
        ))
        .unwrap_err();
    assert!(
        matches!(err, Error::SubnetOverlap { ref other, .. } if other == "c"),
        "{err}"
    );
    let err = ipam
        .create_subnet(&SubnetSpec::new(
            "d",
            "t",
            "tenants",
            SubnetCidr::Explicit(net("10.1.0.0/24")),
        ))
        .unwrap_err();
    assert!(matches!(err, Error::SubnetOutsidePool { .. }), "{err}");
    let err = ipam
        .create_subnet(&SubnetSpec::new(
            "d",
            "t",
            "tenants",
            SubnetCidr::Explicit(net("10.0.9.1/24")),
        ))
        .unwrap_err();
    assert!(err.to_string().contains("write it as 10.0.9.0/24"), "{err}");
    let err = ipam
        .create_subnet(&SubnetSpec::new(
            "d",
            "t",
            "tenants",
            SubnetCidr::NextFree { prefix_len: 16 },
        ))
        .unwrap_err();
    assert!(
        matches!(err, Error::PoolExhausted { prefix_len: 16, .. }),
        "{err}"
    );
    assert!(matches!(
        ipam.create_subnet(&SubnetSpec::new(
            "a",
            "t",
            "tenants",
            SubnetCidr::NextFree { prefix_len: 24 }
        )),
        Err(Error::SubnetExists { .. })
    ));
    assert!(matches!(
        ipam.create_subnet(&SubnetSpec::new(
            "bad/name",
            "t",
            "tenants",
            SubnetCidr::NextFree { prefix_len: 24 }
        )),
        Err(Error::InvalidName { .. })
    ));
    // A subnet in use cannot go; an empty one returns its space.
    alloc(&mut ipam, &mut kv, AllocRequest::new("c", "n1", vm("v")));
    assert!(matches!(
        ipam.delete_subnet("c"),
        Err(Error::ScopeInUse { addresses: 1, .. })
    ));
    kv.apply(&ipam.release("c", "v").unwrap());
    kv.apply(&ipam.delete_subnet("c").unwrap());
    assert!(matches!(
        ipam.delete_pool("tenants"),
        Err(Error::PoolInUse { subnets: 2, .. })
    ));
    let again = subnet(
        &mut ipam,
        &mut kv,
        SubnetSpec::new(
            "c2",
            "t",
            "tenants",
            SubnetCidr::NextFree { prefix_len: 24 },
        ),
    );
    assert_eq!(again, net("10.0.0.0/24"));
    assert_consistent(&ipam, &kv);
}

#[test]
fn pool_errors() {
    let mut kv = Kv::default();
    let mut ipam = fabric(&mut kv);
    let err = ipam
        .create_pool(&PoolSpec::new(
            "x",
            net("10.0.128.0/17"),
            PoolKind::TenantSubnets,
        ))
        .unwrap_err();
    assert!(
        matches!(err, Error::PoolOverlap { ref other, .. } if other == "tenants"),
        "{err}"
    );
    let err = ipam
        .create_pool(&PoolSpec::new(
            "x",
            net("8.0.0.0/6"),
            PoolKind::TenantSubnets,
        ))
        .unwrap_err();
    assert!(matches!(err, Error::PoolOverlap { .. }), "{err}");
    let err = ipam
        .create_pool(
            &PoolSpec::new("x", net("11.0.0.0/24"), PoolKind::TenantSubnets).block_prefix_len(8),
        )
        .unwrap_err();
    assert!(err.to_string().contains("from /24 to /32"), "{err}");
    let err = ipam
        .create_pool(
            &PoolSpec::new("x", net("11.0.0.0/8"), PoolKind::TenantSubnets).block_prefix_len(12),
        )
        .unwrap_err();
    assert!(err.to_string().contains("from /16 to /32"), "{err}");
    assert!(matches!(
        ipam.create_pool(&PoolSpec::new(
            "tenants",
            net("12.0.0.0/8"),
            PoolKind::TenantSubnets
        )),
        Err(Error::PoolExists { .. })
    ));
    assert!(matches!(
        ipam.allocate_direct("tenants", &vm("a"), None),
        Err(Error::WrongPoolKind { .. })
    ));
    assert_consistent(&ipam, &kv);
}

#[test]
fn floating_and_anycast_pools() {
    let mut kv = Kv::default();
    let mut ipam = fabric(&mut kv);
    kv.apply(
        &ipam
            .create_pool(&PoolSpec::new(
                "fip",
                net("192.0.2.0/30"),
                PoolKind::FloatingIps,
            ))
            .unwrap(),
    );
    kv.apply(
        &ipam
            .create_pool(&PoolSpec::new(
                "anycast",
                net("2001:db8::/120"),
                PoolKind::AnycastServices,
            ))
            .unwrap(),
    );
    let svc = Owner::new(OwnerKind::Service, "dns");
    let a = ipam.allocate_direct("anycast", &svc, None).unwrap();
    assert_eq!((a.ip, a.placement), (ip("2001:db8::"), Placement::Unplaced));
    kv.apply(&a.changes);
    assert!(
        ipam.allocate_direct("anycast", &svc, None)
            .unwrap()
            .changes
            .is_empty()
    );
    let mut fips = Vec::new();
    for i in 0..4 {
        let a = ipam
            .allocate_direct("fip", &vm(&format!("vm{i}")), None)
            .unwrap();
        kv.apply(&a.changes);
        fips.push(a.ip);
    }
    assert_eq!(fips[3], ip("192.0.2.3"));
    let err = ipam.allocate_direct("fip", &vm("late"), None).unwrap_err();
    assert!(
        matches!(err, Error::Exhausted { scope: crate::Scope::Pool(ref p), .. } if p == "fip"),
        "{err}"
    );
    assert!(matches!(
        ipam.create_subnet(&SubnetSpec::new(
            "s",
            "t",
            "fip",
            SubnetCidr::NextFree { prefix_len: 31 }
        )),
        Err(Error::WrongPoolKind { .. })
    ));
    kv.apply(&ipam.release_direct("fip", "vm1").unwrap());
    let a = ipam
        .allocate_direct("fip", &vm("late"), Some(ip("192.0.2.1")))
        .unwrap();
    kv.apply(&a.changes);
    assert_eq!(
        ipam.allocation_direct("fip", "late").unwrap().ip,
        ip("192.0.2.1")
    );
    assert_eq!(ipam.pool_usage("fip").unwrap().allocated, 4);
    assert_consistent(&ipam, &kv);
    for i in [0, 2, 3] {
        kv.apply(&ipam.release_direct("fip", &format!("vm{i}")).unwrap());
    }
    kv.apply(&ipam.release_ip(ip("192.0.2.1")).unwrap());
    // Unowned blocks vanish with their last address.
    assert_eq!(ipam.pool_usage("fip").unwrap().blocks, 0);
    kv.apply(&ipam.delete_pool("fip").unwrap());
    assert!(matches!(
        ipam.delete_pool("anycast"),
        Err(Error::PoolInUse { addresses: 1, .. })
    ));
    assert_consistent(&ipam, &kv);
}

#[test]
fn node_removal_releases_or_disowns_blocks() {
    let (mut ipam, mut kv) = tiny(BorrowPolicy::LastResort);
    for i in 0..13 {
        alloc(
            &mut ipam,
            &mut kv,
            AllocRequest::new("s", "a", vm(&format!("a{i}"))),
        );
    }
    // No block is left for b: it borrows from a's last block.
    alloc(&mut ipam, &mut kv, AllocRequest::new("s", "b", vm("b0")));
    assert_eq!(
        ipam.lookup(ip("10.1.0.13")).unwrap().placement,
        Placement::HostRoute {
            block: net("10.1.0.12/30"),
            route: net("10.1.0.13/32")
        }
    );
    let err = ipam.remove_node("a").unwrap_err();
    assert!(
        matches!(err, Error::NodeInUse { addresses: 13, .. }),
        "{err}"
    );
    kv.apply(&ipam.release_node("a").unwrap());
    assert_eq!(ipam.advertisements("b").unwrap(), vec![net("10.1.0.13/32")]);
    // a's last block still holds b0, so it stays, unowned; the others are freed.
    kv.apply(&ipam.remove_node("a").unwrap());
    assert_eq!(ipam.subnet_usage("s").unwrap().blocks, 1);
    assert_eq!(ipam.advertisements("b").unwrap(), vec![net("10.1.0.13/32")]);
    assert_consistent(&ipam, &kv);
    kv.apply(&ipam.release("s", "b0").unwrap());
    assert_eq!(ipam.subnet_usage("s").unwrap().blocks, 0);
    assert!(matches!(
        ipam.allocate(&AllocRequest::new("s", "a", vm("x"))),
        Err(Error::UnknownNode { .. })
    ));
    assert_consistent(&ipam, &kv);
}

#[test]
fn owner_fingerprint_collisions_are_harmless() {
    let mut kv = Kv::default();
    let mut ipam = Ipam::new();
    ipam.ix.owners = crate::owners::OwnerIndex::with_mask(0b1);
    kv.apply(
        &ipam
            .create_pool(&PoolSpec::new(
                "p",
                net("10.0.0.0/16"),
                PoolKind::TenantSubnets,
            ))
            .unwrap(),
    );
    kv.apply(&ipam.add_node("n").unwrap());
    subnet(
        &mut ipam,
        &mut kv,
        SubnetSpec::new("s", "t", "p", SubnetCidr::NextFree { prefix_len: 24 }),
    );
    let mut ips = BTreeMap::new();
    for i in 0..40 {
        let (a, _) = alloc(
            &mut ipam,
            &mut kv,
            AllocRequest::new("s", "n", vm(&format!("o{i}"))).fixed(),
        );
        ips.insert(i, a);
    }
    for i in (0..40).step_by(3) {
        kv.apply(&ipam.release("s", &format!("o{i}")).unwrap());
    }
    for i in 0..40 {
        let (a, _) = alloc(
            &mut ipam,
            &mut kv,
            AllocRequest::new("s", "n", vm(&format!("o{i}"))),
        );
        assert_eq!(a, ips[&i]);
    }
    assert_eq!(ipam.check().issues, vec![]);
    assert_eq!(kv.records(), ipam.records());
}
