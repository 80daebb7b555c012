//! The checker finds injected corruption, and repair leaves a healthy state whose records match
//! the store after applying the repair's changes.

use crate::check::{Action, Issue};
use crate::record::{AddressRecord, Record, RecordKey};
use crate::state::AllocData;
use crate::tests::{Kv, alloc, fabric, ip, net, subnet, vm};
use crate::{AllocRequest, Ipam, Owner, OwnerKind, Reserve, SubnetCidr, SubnetSpec};

/// n1 has 3 addresses, n2 has 1 plus a fixed held one; subnet 10.0.0.0/24.
fn setup() -> (Ipam, Kv) {
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
    for i in 0..3 {
        alloc(
            &mut ipam,
            &mut kv,
            AllocRequest::new("web", "n1", vm(&format!("a{i}"))),
        );
    }
    alloc(&mut ipam, &mut kv, AllocRequest::new("web", "n2", vm("b0")));
    alloc(
        &mut ipam,
        &mut kv,
        AllocRequest::new("web", "n2", vm("sts-0")).fixed(),
    );
    kv.apply(&ipam.release("web", "sts-0").unwrap());
    assert!(ipam.check().is_healthy());
    (ipam, kv)
}

fn bid_of(ipam: &Ipam, addr: &str) -> (u32, u32) {
    let aid = ipam.alloc_at(ip(addr)).unwrap();
    let a = ipam.data.allocs.get(aid).unwrap();
    (a.block, a.offset)
}

/// Repairs, applies the changes to the store, and asserts everything is healthy again.
fn repair_heals(ipam: &mut Ipam, kv: &mut Kv) -> crate::RepairReport {
    let report = ipam.repair();
    assert!(!report.found.is_empty());
    assert_eq!(report.remaining, vec![]);
    kv.apply(&report.changes);
    assert_eq!(ipam.check().issues, vec![]);
    assert_eq!(kv.records(), ipam.records());
    // The report is what the controller logs and returns: it must serialize.
    let json = serde_json::to_string(&report).unwrap();
    assert_eq!(
        serde_json::from_str::<crate::RepairReport>(&json).unwrap(),
        report
    );
    report
}

#[test]
fn bitmap_disagreement_is_found_and_reindexed() {
    let (mut ipam, mut kv) = setup();
    let (bid, off) = bid_of(&ipam, "10.0.0.1");
    ipam.ix.blocks[bid as usize]
        .as_mut()
        .unwrap()
        .used
        .clear(off);
    let issues = ipam.check().issues;
    assert!(
        issues
            .iter()
            .any(|i| matches!(i, Issue::BitmapMismatch { block, detail }
            if *block == net("10.0.0.0/26") && detail.contains("offset 1"))),
        "{issues:?}"
    );
    let report = repair_heals(&mut ipam, &mut kv);
    assert!(
        report
            .actions
            .iter()
            .any(|a| matches!(a, Action::Reindexed { .. }))
    );
    // The address is not handed out again.
    let (next, _) = alloc(&mut ipam, &mut kv, AllocRequest::new("web", "n1", vm("a3")));
    assert_eq!(next, ip("10.0.0.3"));
}

#[test]
fn block_in_two_nodes_is_found() {
    let (mut ipam, mut kv) = setup();
    let (bid, _) = bid_of(&ipam, "10.0.0.0");
    let n2 = ipam.node_id("n2").unwrap();
    let sid = ipam.subnet_id("web").unwrap();
    ipam.ix.nodes[n2 as usize]
        .subnets
        .get_mut(&sid)
        .unwrap()
        .blocks
        .insert((0, bid));
    let issues = ipam.check().issues;
    assert!(
        issues.contains(&Issue::BlockOwnedTwice {
            block: net("10.0.0.0/26"),
            nodes: vec!["n1".into(), "n2".into()],
        }),
        "{issues:?}"
    );
    repair_heals(&mut ipam, &mut kv);
}

#[test]
fn duplicate_block_entries_are_merged() {
    let (mut ipam, mut kv) = setup();
    let (bid, _) = bid_of(&ipam, "10.0.0.0");
    let mut dup = ipam.data.blocks.get(bid).unwrap().clone();
    dup.owner = Some(ipam.node_id("n3").unwrap());
    ipam.data.blocks.insert(dup);
    let issues = ipam.check().issues;
    assert!(
        issues.contains(&Issue::BlockOwnedTwice {
            block: net("10.0.0.0/26"),
            nodes: vec!["n1".into(), "n3".into()],
        }),
        "{issues:?}"
    );
    let report = repair_heals(&mut ipam, &mut kv);
    assert!(
        report
            .actions
            .iter()
            .any(|a| matches!(a, Action::MergedBlock { kept_node, .. } if kept_node == "n1"))
    );
}

#[test]
fn address_allocated_twice_keeps_the_older_owner() {
    let (mut ipam, mut kv) = setup();
    let aid = ipam.alloc_at(ip("10.0.0.2")).unwrap();
    let mut twin: AllocData = ipam.data.allocs.get(aid).unwrap().clone();
    twin.owner = "intruder".into();
    ipam.data.allocs.insert(twin);
    let issues = ipam.check().issues;
    assert!(
        issues.contains(&Issue::DuplicateAddress {
            ip: ip("10.0.0.2"),
            owners: vec!["a2".into(), "intruder".into()],
        }),
        "{issues:?}"
    );
    let report = repair_heals(&mut ipam, &mut kv);
    assert!(
        report
            .actions
            .iter()
            .any(|a| matches!(a, Action::DroppedAllocation { owner, .. } if owner == "intruder"))
    );
    assert_eq!(ipam.lookup(ip("10.0.0.2")).unwrap().owner.id, "a2");
}

#[test]
fn allocation_outside_any_block_is_dropped() {
    let (mut ipam, mut kv) = setup();
    let aid = ipam.alloc_at(ip("10.0.0.1")).unwrap();
    let mut stray = ipam.data.allocs.get(aid).unwrap().clone();
    stray.owner = "stray".into();
    stray.block = 999;
    ipam.data.allocs.insert(stray);
    let issues = ipam.check().issues;
    assert!(
        issues
            .iter()
            .any(|i| matches!(i, Issue::AllocationOutsideBlock { owner, .. } if owner == "stray")),
        "{issues:?}"
    );
    repair_heals(&mut ipam, &mut kv);
}

#[test]
fn index_drift_is_found() {
    type Corrupt = fn(&mut Ipam);
    let cases: [(&str, Corrupt); 5] = [
        ("subnet blocks with space", |ipam| {
            let sid = ipam.subnet_id("web").unwrap();
            ipam.ix.subnets[sid as usize].with_space.clear();
        }),
        ("subnet free blocks", |ipam| {
            let sid = ipam.subnet_id("web").unwrap();
            ipam.ix.subnets[sid as usize].free_blocks.remove(3);
        }),
        ("owners", |ipam| {
            let sid = ipam.subnet_id("web").unwrap();
            let data = &ipam.data;
            ipam.ix
                .owners
                .remove(sid, "a1", |id| data.alloc_is(id, sid, "a1"));
        }),
        ("node counters", |ipam| {
            let n1 = ipam.node_id("n1").unwrap();
            ipam.ix.nodes[n1 as usize].active += 1;
        }),
        ("node host routes", |ipam| {
            let n1 = ipam.node_id("n1").unwrap();
            ipam.ix.nodes[n1 as usize].foreign.insert(0);
        }),
    ];
    for (index, corrupt) in cases {
        let (mut ipam, mut kv) = setup();
        corrupt(&mut ipam);
        let issues = ipam.check().issues;
        assert!(
            issues
                .iter()
                .any(|i| matches!(i, Issue::IndexMismatch { index: got, .. } if got == index)),
            "{index}: {issues:?}"
        );
        repair_heals(&mut ipam, &mut kv);
    }
}

#[test]
fn addresses_on_vanished_nodes_are_released_or_held() {
    let (mut ipam, mut kv) = setup();
    // n2 got a fixed address back, then its node record vanished from the store.
    alloc(
        &mut ipam,
        &mut kv,
        AllocRequest::new("web", "n2", vm("sts-0")).fixed(),
    );
    kv.0.remove(&RecordKey::Node("n2".into()));
    let mut loaded = Ipam::from_records(kv.records()).unwrap();
    let issues = loaded.check().issues;
    assert!(
        issues.contains(&Issue::AllocationOnUnknownNode {
            ip: ip("10.0.0.64"),
            owner: "b0".into(),
            node: "n2".into(),
        }),
        "{issues:?}"
    );
    assert!(issues.contains(&Issue::BlockOnUnknownNode {
        block: net("10.0.0.64/26"),
        node: "n2".into()
    }));
    let report = repair_heals(&mut loaded, &mut kv);
    assert!(report.actions.contains(&Action::ReleasedAllocation {
        ip: ip("10.0.0.64"),
        owner: "b0".into(),
        held: false,
        reason: "node is not registered".into(),
    }));
    assert!(
        report
            .actions
            .contains(&Action::ForgotNode { node: "n2".into() })
    );
    // The fixed owner keeps its address, now held.
    let sts = loaded.allocation("web", "sts-0").unwrap();
    assert!(sts.held);
    // Its block is unowned now but still holds the held address.
    assert!(loaded.records().iter().any(
        |r| matches!(r, Record::Block(b) if b.cidr == net("10.0.0.64/26") && b.node.is_none())
    ));
}

#[test]
fn missing_block_record_is_rewritten() {
    let (_, mut kv) = setup();
    kv.0.remove(&RecordKey::Block(net("10.0.0.0/26")));
    let mut loaded = Ipam::from_records(kv.records()).unwrap();
    assert_eq!(
        loaded.check().issues,
        vec![Issue::MissingBlockRecord {
            block: net("10.0.0.0/26")
        }]
    );
    let report = repair_heals(&mut loaded, &mut kv);
    assert!(report.actions.contains(&Action::RecordedBlock {
        block: net("10.0.0.0/26")
    }));
    // Unowned now: n1 advertises its addresses there as host routes.
    assert_eq!(
        loaded.advertisements("n1").unwrap(),
        vec![net("10.0.0.0/32"), net("10.0.0.1/32"), net("10.0.0.2/32")]
    );
}

#[test]
fn owner_with_two_addresses_keeps_the_first() {
    let (_, mut kv) = setup();
    let twin = AddressRecord {
        ip: ip("10.0.0.10"),
        owner: vm("a0"),
        node: Some("n1".into()),
        fixed: false,
        held: false,
    };
    kv.0.insert(RecordKey::Address(twin.ip), Record::Address(twin));
    let mut loaded = Ipam::from_records(kv.records()).unwrap();
    let issues = loaded.check().issues;
    assert!(
        issues
            .iter()
            .any(|i| matches!(i, Issue::DuplicateOwner { owner, ips, .. }
            if owner == "a0" && *ips == vec![ip("10.0.0.0"), ip("10.0.0.10")])),
        "{issues:?}"
    );
    repair_heals(&mut loaded, &mut kv);
    assert_eq!(loaded.allocation("web", "a0").unwrap().ip, ip("10.0.0.0"));
    assert!(loaded.lookup(ip("10.0.0.10")).is_none());
}

#[test]
fn reserved_address_in_use_is_reported_not_touched() {
    let mut kv = Kv::default();
    let mut ipam = fabric(&mut kv);
    subnet(
        &mut ipam,
        &mut kv,
        SubnetSpec::new(
            "lan",
            "acme",
            "tenants",
            SubnetCidr::NextFree { prefix_len: 24 },
        )
        .reserve(Reserve::classic(None)),
    );
    alloc(&mut ipam, &mut kv, AllocRequest::new("lan", "n1", vm("a")));
    let squatter = AddressRecord {
        ip: ip("10.0.0.0"),
        owner: Owner::new(OwnerKind::Host, "legacy"),
        node: Some("n1".into()),
        fixed: false,
        held: false,
    };
    kv.0.insert(RecordKey::Address(squatter.ip), Record::Address(squatter));
    let mut loaded = Ipam::from_records(kv.records()).unwrap();
    let want = Issue::ReservedAddressAllocated {
        ip: ip("10.0.0.0"),
        owner: "legacy".into(),
    };
    assert_eq!(loaded.check().issues, vec![want.clone()]);
    let report = loaded.repair();
    assert_eq!(report.remaining, vec![want]);
    assert!(report.changes.is_empty());
}

#[test]
fn invalid_records_are_rejected_with_their_key() {
    let (_, kv) = setup();
    let mut records = kv.records();
    records.push(Record::Address(AddressRecord {
        ip: ip("172.16.0.1"),
        owner: vm("x"),
        node: None,
        fixed: false,
        held: false,
    }));
    let err = Ipam::from_records(records).unwrap_err();
    assert!(err.to_string().contains("addresses/172.16.0.1"), "{err}");
    let mut records = kv.records();
    records.push(Record::Block(crate::BlockRecord {
        cidr: net("10.0.0.128/25"),
        node: None,
    }));
    let err = Ipam::from_records(records).unwrap_err();
    assert!(
        err.to_string().contains("not a /26 block of subnet web"),
        "{err}"
    );
}
