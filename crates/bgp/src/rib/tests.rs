//! Tests of the RIB through its public API.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU16;
use std::time::Instant;

use super::*;
use crate::iana::Origin;
use crate::wire::{AsPath, AsSegment, MpReach, Nlri, PeerKind};

const LOCAL_AS: u32 = 65000;

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn ebgp(n: u8, asn: u32) -> PeerInfo {
    PeerInfo {
        address: IpAddr::from([192, 0, 2, n]),
        remote_as: asn,
        router_id: Ipv4Addr::new(10, 0, 0, n),
        kind: PeerKind::External,
        local_as: LOCAL_AS,
        weight: 0,
        max_prefixes: None,
        max_prefixes_count: PrefixCount::Accepted,
    }
}

fn ibgp(n: u8) -> PeerInfo {
    PeerInfo {
        kind: PeerKind::Internal,
        ..ebgp(n, LOCAL_AS)
    }
}

fn path(asns: &[u32]) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(asns.iter().copied())),
        ..Default::default()
    }
}

fn nh(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, n)
}

/// A classic IPv4 announcement.
fn announce(prefixes: &[&str], attrs: PathAttributes, next_hop: Ipv4Addr) -> Update {
    Update {
        attrs: PathAttributes {
            next_hop: Some(next_hop),
            ..attrs
        },
        nlri: Nlri::from_prefixes(crate::iana::Afi::Ipv4, prefixes.iter().map(|s| p(s))).unwrap(),
        ..Update::default()
    }
}

fn announce_mp(prefixes: &[&str], attrs: PathAttributes, next_hop: NextHop) -> Update {
    let ps: Vec<Prefix> = prefixes.iter().map(|s| p(s)).collect();
    let afi = ps.first().map_or(crate::iana::Afi::Ipv4, Prefix::afi);
    Update {
        attrs,
        mp_reach: Some(MpReach {
            next_hop,
            nlri: Nlri::from_prefixes(afi, ps).unwrap(),
        }),
        ..Update::default()
    }
}

fn withdraw(prefixes: &[&str]) -> Update {
    let v4 = prefixes
        .iter()
        .map(|s| p(s))
        .filter(|p| p.afi() == crate::iana::Afi::Ipv4);
    let v6: Vec<Prefix> = prefixes
        .iter()
        .map(|s| p(s))
        .filter(|p| p.afi() == crate::iana::Afi::Ipv6)
        .collect();
    Update {
        withdrawn: Nlri::from_prefixes(crate::iana::Afi::Ipv4, v4).unwrap(),
        mp_unreach: (!v6.is_empty()).then(|| crate::wire::MpUnreach {
            withdrawn: Nlri::from_prefixes(crate::iana::Afi::Ipv6, v6).unwrap(),
        }),
        ..Update::default()
    }
}

fn apply(rib: &mut Rib, peer: PeerId, u: &Update) -> ApplyReport {
    rib.apply_update(peer, u, &mut AcceptAll).unwrap()
}

fn best_peer(rib: &Rib, prefix: &str) -> Option<PeerId> {
    rib.best(&p(prefix)).map(|e| e.best.peer)
}

fn mp_peers(rib: &Rib, prefix: &str) -> Vec<PeerId> {
    rib.best(&p(prefix))
        .map(|e| e.multipath.iter().map(|r| r.peer).collect())
        .unwrap_or_default()
}

fn multipath(relax: bool, max: u16) -> RibConfig {
    RibConfig {
        max_paths: NonZeroU16::new(max).unwrap(),
        multipath_relax: relax,
        ..RibConfig::default()
    }
}

// ----- best path: one table row per tie-breaker -----

struct Side {
    info: PeerInfo,
    attrs: PathAttributes,
}

struct Case {
    name: &'static str,
    config: RibConfig,
    a: Side,
    b: Side,
    a_wins: bool,
}

fn side(info: PeerInfo, attrs: PathAttributes) -> Side {
    Side { info, attrs }
}

fn with(mut attrs: PathAttributes, f: impl FnOnce(&mut PathAttributes)) -> PathAttributes {
    f(&mut attrs);
    attrs
}

fn tie_breaker_cases() -> Vec<Case> {
    let d = RibConfig::default();
    let lp = |v| with(path(&[]), |a| a.local_pref = Some(v));
    let med = |asns: &[u32], v| with(path(asns), |a| a.med = Some(v));
    vec![
        Case {
            name: "higher weight beats higher LOCAL_PREF",
            config: d,
            a: side(
                PeerInfo {
                    weight: 10,
                    ..ibgp(1)
                },
                lp(100),
            ),
            b: side(ibgp(2), lp(200)),
            a_wins: true,
        },
        Case {
            name: "higher LOCAL_PREF",
            config: d,
            a: side(ibgp(2), lp(200)),
            b: side(ibgp(1), lp(100)),
            a_wins: true,
        },
        Case {
            name: "missing LOCAL_PREF counts as 100",
            config: d,
            a: side(ibgp(2), path(&[])),
            b: side(ibgp(1), lp(99)),
            a_wins: true,
        },
        Case {
            name: "shorter AS_PATH",
            config: d,
            a: side(ebgp(2, 65002), path(&[65002])),
            b: side(ebgp(1, 65001), path(&[65001, 65100])),
            a_wins: true,
        },
        Case {
            name: "AS_SET counts one",
            config: d,
            a: side(
                ebgp(2, 65002),
                with(path(&[65002]), |a| {
                    if let Some(p) = a.as_path.as_mut() {
                        p.segments.push(AsSegment::set([1, 2, 3, 4]));
                    }
                }),
            ),
            b: side(ebgp(1, 65001), path(&[65001, 65100, 65200])),
            a_wins: true,
        },
        Case {
            name: "lower ORIGIN",
            config: d,
            a: side(ebgp(2, 65002), path(&[65002])),
            b: side(
                ebgp(1, 65001),
                with(path(&[65001]), |a| a.origin = Some(Origin::Incomplete)),
            ),
            a_wins: true,
        },
        Case {
            name: "lower MED from the same neighbour AS",
            config: d,
            a: side(ebgp(2, 65001), med(&[65001], 5)),
            b: side(ebgp(1, 65001), med(&[65001], 10)),
            a_wins: true,
        },
        Case {
            name: "missing MED is lowest",
            config: d,
            a: side(ebgp(2, 65001), path(&[65001])),
            b: side(ebgp(1, 65001), med(&[65001], 1)),
            a_wins: true,
        },
        Case {
            name: "MED not compared across neighbour ASes: router id decides",
            config: d,
            a: side(ebgp(1, 65001), med(&[65001], 10)),
            b: side(ebgp(2, 65002), med(&[65002], 5)),
            a_wins: true,
        },
        Case {
            name: "always-compare-med compares across neighbour ASes",
            config: RibConfig {
                always_compare_med: true,
                ..d
            },
            a: side(ebgp(2, 65002), med(&[65002], 5)),
            b: side(ebgp(1, 65001), med(&[65001], 10)),
            a_wins: true,
        },
        Case {
            name: "eBGP over iBGP",
            config: d,
            a: side(ebgp(2, 65001), path(&[65001])),
            b: side(ibgp(1), path(&[65001])),
            a_wins: true,
        },
        Case {
            name: "lower router id",
            config: d,
            a: side(ebgp(1, 65001), path(&[65001])),
            b: side(ebgp(2, 65002), path(&[65002])),
            a_wins: true,
        },
        Case {
            name: "ORIGINATOR_ID replaces the router id",
            config: d,
            a: side(
                ibgp(2),
                with(path(&[]), |a| {
                    a.originator_id = Some(Ipv4Addr::new(1, 1, 1, 1))
                }),
            ),
            b: side(ibgp(1), path(&[])),
            a_wins: true,
        },
        Case {
            name: "shorter CLUSTER_LIST",
            config: d,
            a: side(
                PeerInfo {
                    router_id: Ipv4Addr::new(10, 0, 0, 9),
                    ..ibgp(2)
                },
                with(path(&[]), |a| {
                    a.cluster_list = vec![Ipv4Addr::new(1, 1, 1, 1)]
                }),
            ),
            b: side(
                PeerInfo {
                    router_id: Ipv4Addr::new(10, 0, 0, 9),
                    ..ibgp(1)
                },
                with(path(&[]), |a| {
                    a.cluster_list = vec![Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2)]
                }),
            ),
            a_wins: true,
        },
        Case {
            name: "lower peer address (one router over two links)",
            config: d,
            a: side(
                PeerInfo {
                    router_id: Ipv4Addr::new(10, 0, 0, 9),
                    ..ebgp(1, 65001)
                },
                path(&[65001]),
            ),
            b: side(
                PeerInfo {
                    router_id: Ipv4Addr::new(10, 0, 0, 9),
                    ..ebgp(2, 65001)
                },
                path(&[65001]),
            ),
            a_wins: true,
        },
    ]
}

#[test]
fn each_tie_breaker_decides_in_either_arrival_order() {
    for case in tie_breaker_cases() {
        for a_first in [true, false] {
            let mut rib = Rib::new(case.config);
            let a = rib.add_peer(case.a.info.clone());
            let b = rib.add_peer(case.b.info.clone());
            let ua = announce(&["10.0.0.0/24"], case.a.attrs.clone(), nh(1));
            let ub = announce(&["10.0.0.0/24"], case.b.attrs.clone(), nh(2));
            if a_first {
                apply(&mut rib, a, &ua);
                apply(&mut rib, b, &ub);
            } else {
                apply(&mut rib, b, &ub);
                apply(&mut rib, a, &ua);
            }
            let want = if case.a_wins { a } else { b };
            assert_eq!(
                best_peer(&rib, "10.0.0.0/24"),
                Some(want),
                "{} (a first: {a_first})",
                case.name
            );
            let changes = rib.drain_changes();
            assert_eq!(changes.len(), 1, "{}", case.name);
            assert_eq!(changes[0].best.as_ref().map(|r| r.peer), Some(want));
        }
    }
}

#[test]
fn locally_originated_wins_and_installs_nothing() {
    let mut rib = Rib::default();
    let a = rib.add_peer(ebgp(1, 65001));
    apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24"], path(&[65001]), nh(1)),
    );
    rib.originate(p("10.0.0.0/24"), path(&[]));
    let c = rib.drain_changes();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].best.as_ref().unwrap().peer, PeerId::LOCAL);
    assert!(c[0].multipath.is_empty());
    assert_eq!(rib.local_routes().count(), 1);

    assert!(rib.withdraw_local(p("10.0.0.0/24")));
    assert!(!rib.withdraw_local(p("10.0.0.0/24")));
    let c = rib.drain_changes();
    assert_eq!(c[0].best.as_ref().unwrap().peer, a);
    assert_eq!(
        *c[0].multipath,
        [NextHopEntry {
            peer: a,
            next_hop: NextHop::V4(nh(1))
        }]
    );
}

#[test]
fn higher_local_pref_beats_local_origination() {
    let mut rib = Rib::default();
    let a = rib.add_peer(ibgp(1));
    let mut attrs = path(&[]);
    attrs.local_pref = Some(200);
    apply(&mut rib, a, &announce(&["10.0.0.0/24"], attrs, nh(1)));
    rib.originate(p("10.0.0.0/24"), path(&[]));
    assert_eq!(best_peer(&rib, "10.0.0.0/24"), Some(a));
}

// ----- multipath -----

/// Two ToRs with their own ASes, as RFC 7938 numbers them.
fn two_tors(config: RibConfig) -> (Rib, PeerId, PeerId) {
    let mut rib = Rib::new(config);
    let a = rib.add_peer(ebgp(1, 65001));
    let b = rib.add_peer(ebgp(2, 65002));
    apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24"], path(&[65001, 65100]), nh(1)),
    );
    apply(
        &mut rib,
        b,
        &announce(&["10.0.0.0/24"], path(&[65002, 65100]), nh(2)),
    );
    (rib, a, b)
}

#[test]
fn multipath_needs_relax_across_neighbour_ases() {
    let (rib, a, _) = two_tors(multipath(false, 8));
    assert_eq!(mp_peers(&rib, "10.0.0.0/24"), vec![a]);
    let (mut rib, a, b) = two_tors(multipath(true, 8));
    assert_eq!(mp_peers(&rib, "10.0.0.0/24"), vec![a, b]);
    let c = rib.drain_changes();
    assert_eq!(
        *c[0].multipath,
        [
            NextHopEntry {
                peer: a,
                next_hop: NextHop::V4(nh(1))
            },
            NextHopEntry {
                peer: b,
                next_hop: NextHop::V4(nh(2))
            }
        ]
    );
}

#[test]
fn multipath_without_relax_takes_identical_as_paths() {
    let mut rib = Rib::new(multipath(false, 8));
    let a = rib.add_peer(ebgp(1, 65001));
    let b = rib.add_peer(ebgp(2, 65001));
    let c = rib.add_peer(ebgp(3, 65001));
    apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24"], path(&[65001, 65100]), nh(1)),
    );
    apply(
        &mut rib,
        b,
        &announce(&["10.0.0.0/24"], path(&[65001, 65100]), nh(2)),
    );
    apply(
        &mut rib,
        c,
        &announce(&["10.0.0.0/24"], path(&[65001, 65101]), nh(3)),
    );
    assert_eq!(mp_peers(&rib, "10.0.0.0/24"), vec![a, b]);
}

#[test]
fn multipath_respects_max_paths_and_keeps_the_lowest_router_ids() {
    let (rib, a, _) = two_tors(multipath(true, 1));
    assert_eq!(mp_peers(&rib, "10.0.0.0/24"), vec![a]);

    let mut rib = Rib::new(multipath(true, 2));
    let peers: Vec<PeerId> = (1..=4)
        .map(|n| rib.add_peer(ebgp(n, 65000 + u32::from(n))))
        .collect();
    // Arrive highest router id first.
    for (i, &peer) in peers.iter().enumerate().rev() {
        let asn = 65001 + i as u32;
        let u = announce(&["10.0.0.0/24"], path(&[asn, 65100]), nh(i as u8 + 1));
        apply(&mut rib, peer, &u);
    }
    assert_eq!(mp_peers(&rib, "10.0.0.0/24"), vec![peers[0], peers[1]]);
}

#[test]
fn multipath_excludes_worse_paths_and_mixes_no_ibgp() {
    let mut rib = Rib::new(multipath(true, 8));
    let a = rib.add_peer(ebgp(1, 65001));
    let b = rib.add_peer(ebgp(2, 65002));
    let i = rib.add_peer(ibgp(3));
    apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24"], path(&[65001, 65100]), nh(1)),
    );
    // Longer path: not equal.
    apply(
        &mut rib,
        b,
        &announce(&["10.0.0.0/24"], path(&[65002, 65002, 65100]), nh(2)),
    );
    // Same length, but iBGP.
    apply(
        &mut rib,
        i,
        &announce(&["10.0.0.0/24"], path(&[65003, 65100]), nh(3)),
    );
    assert_eq!(mp_peers(&rib, "10.0.0.0/24"), vec![a]);
    // Different MEDs from different neighbour ASes do not break relaxed multipath.
    let mut attrs = path(&[65002, 65100]);
    attrs.med = Some(50);
    apply(&mut rib, b, &announce(&["10.0.0.0/24"], attrs, nh(2)));
    assert_eq!(mp_peers(&rib, "10.0.0.0/24"), vec![a, b]);
}

#[test]
fn ipv4_over_ipv6_next_hops_reach_the_fib_with_their_peer() {
    let mut rib = Rib::new(multipath(true, 2));
    let a = rib.add_peer(ebgp(1, 65001));
    let b = rib.add_peer(ebgp(2, 65002));
    let ll = |n| NextHop::V6 {
        global: Ipv6Addr::UNSPECIFIED,
        link_local: Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, n)),
    };
    apply(
        &mut rib,
        a,
        &announce_mp(&["10.0.0.0/24"], path(&[65001]), ll(1)),
    );
    apply(
        &mut rib,
        b,
        &announce_mp(&["10.0.0.0/24"], path(&[65002]), ll(2)),
    );
    apply(
        &mut rib,
        a,
        &announce_mp(&["2001:db8::/64"], path(&[65001]), ll(1)),
    );
    let c = rib.drain_changes();
    assert_eq!(c.len(), 2);
    let v4 = c.iter().find(|c| c.prefix == p("10.0.0.0/24")).unwrap();
    assert_eq!(
        *v4.multipath,
        [
            NextHopEntry {
                peer: a,
                next_hop: ll(1)
            },
            NextHopEntry {
                peer: b,
                next_hop: ll(2)
            }
        ]
    );
    // MP_UNREACH_NLRI withdraws the IPv6 one.
    apply(&mut rib, a, &withdraw(&["2001:db8::/64"]));
    let c = rib.drain_changes();
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].prefix, c[0].best.is_none()),
        (p("2001:db8::/64"), true)
    );
}

#[test]
fn classic_next_hop_does_not_leak_into_mp_routes() {
    let mut rib = Rib::default();
    let a = rib.add_peer(ebgp(1, 65001));
    let v6 = NextHop::V6 {
        global: "2001:db8::1".parse().unwrap(),
        link_local: None,
    };
    let mut u = announce(&["10.0.0.0/24"], path(&[65001]), nh(1));
    u.mp_reach = Some(MpReach {
        next_hop: v6,
        nlri: Nlri::from_prefixes(crate::iana::Afi::Ipv6, [p("2001:db8:1::/48")]).unwrap(),
    });
    apply(&mut rib, a, &u);
    let e = rib.best(&p("2001:db8:1::/48")).unwrap();
    assert_eq!(e.best.attrs.next_hop(), Some(v6));
    assert_eq!(e.best.attrs.attrs().next_hop, None);
    let e = rib.best(&p("10.0.0.0/24")).unwrap();
    assert_eq!(e.best.attrs.next_hop(), Some(NextHop::V4(nh(1))));
}

// ----- input handling -----

#[test]
fn as_path_loops_are_dropped_and_withdraw_the_earlier_route() {
    let mut rib = Rib::default();
    let a = rib.add_peer(ebgp(1, 65001));
    apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24"], path(&[65001]), nh(1)),
    );
    let r = apply(
        &mut rib,
        a,
        &announce(
            &["10.0.0.0/24", "10.0.1.0/24"],
            path(&[65001, LOCAL_AS, 65100]),
            nh(1),
        ),
    );
    assert_eq!((r.looped, r.accepted), (2, 0));
    assert!(rib.best(&p("10.0.0.0/24")).is_none());
    let c = rib.peer_counters(a).unwrap();
    assert_eq!((c.received, c.looped, c.accepted), (3, 2, 0));
}

#[test]
fn import_policy_rejects_modifies_and_shares_unchanged_attributes() {
    let mut rib = Rib::default();
    let a = rib.add_peer(ebgp(1, 65001));
    let mut policy = |prefix: &Prefix, attrs: &PathAttributes| -> Option<PathAttributes> {
        match prefix.prefix_len() {
            32 => None,
            16 => Some(PathAttributes {
                local_pref: Some(300),
                ..attrs.clone()
            }),
            _ => Some(attrs.clone()),
        }
    };
    let u = announce(
        &[
            "10.0.0.0/24",
            "10.1.0.0/24",
            "10.2.0.0/16",
            "10.3.0.0/16",
            "10.4.0.1/32",
        ],
        path(&[65001]),
        nh(1),
    );
    let r = rib.apply_update(a, &u, &mut policy).unwrap();
    assert_eq!((r.accepted, r.rejected), (4, 1));
    let get = |s: &str| rib.best(&p(s)).unwrap().best.attrs;
    assert!(Arc::ptr_eq(&get("10.0.0.0/24"), &get("10.1.0.0/24")));
    assert!(Arc::ptr_eq(&get("10.2.0.0/16"), &get("10.3.0.0/16")));
    assert_eq!(get("10.2.0.0/16").local_pref(), 300);
    assert_eq!(rib.memory().attribute_sets, 2);
    assert_eq!(rib.peer_counters(a).unwrap().rejected, 1);
}

#[test]
fn import_policy_can_set_the_next_hop_of_mp_routes() {
    let mut rib = Rib::default();
    let a = rib.add_peer(ebgp(1, 65001));
    let mut policy = |_: &Prefix, attrs: &PathAttributes| {
        Some(PathAttributes {
            next_hop: Some(Ipv4Addr::new(203, 0, 113, 1)),
            ..attrs.clone()
        })
    };
    let u = announce_mp(&["10.0.0.0/24"], path(&[65001]), NextHop::V4(nh(1)));
    rib.apply_update(a, &u, &mut policy).unwrap();
    let e = rib.best(&p("10.0.0.0/24")).unwrap();
    assert_eq!(
        e.best.attrs.next_hop(),
        Some(NextHop::V4(Ipv4Addr::new(203, 0, 113, 1)))
    );
}

#[test]
fn equal_attributes_share_one_arc_across_peers_and_prefixes() {
    let mut rib = Rib::default();
    let a = rib.add_peer(ebgp(1, 65001));
    let b = rib.add_peer(ebgp(2, 65002));
    let attrs = path(&[65100]);
    apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24", "10.0.1.0/24"], attrs.clone(), nh(9)),
    );
    apply(&mut rib, b, &announce(&["10.0.0.0/24"], attrs, nh(9)));
    let routes: Vec<Route> = rib
        .adj_rib_in(a)
        .chain(rib.adj_rib_in(b))
        .map(|(_, r)| r)
        .collect();
    assert_eq!(routes.len(), 3);
    assert!(
        routes
            .iter()
            .all(|r| Arc::ptr_eq(&r.attrs, &routes[0].attrs))
    );
    assert_eq!(rib.memory().attribute_sets, 1);
    drop(routes);
    // The last route going releases the set.
    apply(&mut rib, a, &withdraw(&["10.0.0.0/24", "10.0.1.0/24"]));
    apply(&mut rib, b, &withdraw(&["10.0.0.0/24"]));
    assert_eq!(rib.memory().attribute_sets, 0);
}

#[test]
fn attribute_sets_held_by_drained_changes_are_collected_later() {
    let mut rib = Rib::default();
    let a = rib.add_peer(ebgp(1, 65001));
    apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24"], path(&[65001]), nh(1)),
    );
    let changes = rib.drain_changes();
    apply(&mut rib, a, &withdraw(&["10.0.0.0/24"]));
    assert_eq!(rib.memory().attribute_sets, 1, "still held by `changes`");
    drop(changes);
    rib.collect_garbage();
    assert_eq!(rib.memory().attribute_sets, 0);
}

#[test]
fn treat_as_withdraw_withdraws_and_is_no_end_of_rib() {
    let mut rib = Rib::default();
    let a = rib.add_peer(ebgp(1, 65001));
    apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24", "10.0.1.0/24"], path(&[65001]), nh(1)),
    );
    rib.peer_down(a, true, Instant::now()).unwrap();
    apply(
        &mut rib,
        a,
        &announce(&["10.0.1.0/24"], path(&[65001]), nh(1)),
    );
    let taw = |u: Update| UpdateOutcome::TreatAsWithdraw {
        withdrawals: u,
        reason: crate::Error::MalformedAttributeList { reason: "test" },
        discarded: vec![],
    };
    // No prefixes at all: must not sweep the stale route like an End-of-RIB would.
    let r = rib
        .apply_outcome(a, &taw(Update::default()), &mut AcceptAll)
        .unwrap();
    assert_eq!(r.end_of_rib, None);
    assert!(rib.best(&p("10.0.0.0/24")).is_some());
    let r = rib
        .apply_outcome(a, &taw(withdraw(&["10.0.1.0/24"])), &mut AcceptAll)
        .unwrap();
    assert_eq!(r.withdrawn, 1);
    assert!(rib.best(&p("10.0.1.0/24")).is_none());
}

#[test]
fn attribute_discard_applies_the_cleaned_update() {
    let mut rib = Rib::default();
    let a = rib.add_peer(ebgp(1, 65001));
    let o = UpdateOutcome::AttributeDiscard {
        update: announce(&["10.0.0.0/24"], path(&[65001]), nh(1)),
        discarded: vec![],
    };
    assert_eq!(
        rib.apply_outcome(a, &o, &mut AcceptAll).unwrap().accepted,
        1
    );
    assert!(rib.apply_outcome(PeerId(7), &o, &mut AcceptAll).is_none());
}

#[test]
fn decoded_updates_from_the_packer_are_applied() {
    use crate::wire::{DecodeContext, UpdatePacker};
    let ctx = DecodeContext::modern(PeerKind::External);
    let mut packer = UpdatePacker::new(ctx);
    let prefixes: Vec<Prefix> = (0..2000u32)
        .map(|i| Prefix::new(IpAddr::from((0x0a00_0000 | (i << 8)).to_be_bytes()), 24).unwrap())
        .collect();
    let ll = NextHop::V6 {
        global: Ipv6Addr::UNSPECIFIED,
        link_local: Some("fe80::1".parse().unwrap()),
    };
    packer.announce(&path(&[65001]), ll, &prefixes).unwrap();
    packer
        .announce(&path(&[65001]), NextHop::V4(nh(1)), &[p("192.0.2.0/24")])
        .unwrap();
    packer
        .end_of_rib(crate::wire::Family::IPV4_UNICAST)
        .unwrap();
    let mut rib = Rib::default();
    let a = rib.add_peer(ebgp(1, 65001));
    let mut eor = None;
    for m in packer.finish() {
        let o = Update::decode(m.slice(crate::iana::HEADER_LEN..), &ctx);
        let r = rib.apply_outcome(a, &o, &mut AcceptAll).unwrap();
        eor = eor.or(r.end_of_rib);
    }
    assert_eq!(eor, Some(crate::wire::Family::IPV4_UNICAST));
    assert_eq!(rib.len(), 2001);
    assert_eq!(rib.memory().attribute_sets, 2);
    assert_eq!(rib.drain_changes().len(), 2001);
}

#[test]
fn max_prefix_is_reported_and_routes_are_kept() {
    let mut rib = Rib::default();
    let a = rib.add_peer(PeerInfo {
        max_prefixes: Some(2),
        ..ebgp(1, 65001)
    });
    let r = apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24", "10.0.1.0/24"], path(&[65001]), nh(1)),
    );
    assert_eq!(r.max_prefix, None);
    let r = apply(
        &mut rib,
        a,
        &announce(&["10.0.2.0/24"], path(&[65001]), nh(1)),
    );
    assert_eq!(
        r.max_prefix,
        Some(MaxPrefixExceeded {
            peer: a,
            limit: 2,
            count: 3
        })
    );
    assert_eq!(rib.adj_rib_in(a).count(), 3);
    // Replacing an existing route does not count twice.
    let r = apply(&mut rib, a, &withdraw(&["10.0.2.0/24"]));
    assert_eq!(r.max_prefix, None);
    let r = apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24"], path(&[65001, 65001]), nh(1)),
    );
    assert_eq!(r.max_prefix, None);
}

#[test]
fn max_prefix_of_received_counts_what_policy_drops_until_withdrawn() {
    // Only /24s pass: a peer with a limit of 3 that floods /32s.
    let mut only_24 = |prefix: &Prefix, attrs: &PathAttributes| {
        (prefix.prefix_len() == 24).then(|| attrs.clone())
    };
    let mut rib = Rib::default();
    let counting = |count| PeerInfo {
        max_prefixes: Some(3),
        max_prefixes_count: count,
        ..ebgp(1, 65001)
    };
    let a = rib.add_peer(counting(PrefixCount::Received));
    let b = rib.add_peer(PeerInfo {
        address: IpAddr::from([192, 0, 2, 2]),
        ..counting(PrefixCount::Accepted)
    });
    let flood = announce(
        &["10.0.0.0/24", "10.9.0.1/32", "10.9.0.2/32"],
        path(&[65001]),
        nh(1),
    );
    for peer in [a, b] {
        let r = rib.apply_update(peer, &flood, &mut only_24).unwrap();
        assert_eq!((r.accepted, r.rejected, r.max_prefix), (1, 2, None));
    }
    // The same prefix again is not counted twice.
    let r = rib.apply_update(a, &flood, &mut only_24).unwrap();
    assert_eq!(r.max_prefix, None);
    // One more dropped prefix: 1 accepted + 3 dropped > 3 for the peer counting received.
    let more = announce(&["10.9.0.3/32"], path(&[65001]), nh(1));
    let r = rib.apply_update(a, &more, &mut only_24).unwrap();
    assert_eq!(
        r.max_prefix,
        Some(MaxPrefixExceeded {
            peer: a,
            limit: 3,
            count: 4
        })
    );
    let r = rib.apply_update(b, &more, &mut only_24).unwrap();
    assert_eq!(r.max_prefix, None, "accepted routes only: 1 of 3");
    // Withdrawn dropped prefixes no longer count.
    rib.apply_update(a, &withdraw(&["10.9.0.1/32", "10.9.0.2/32"]), &mut only_24)
        .unwrap();
    let r = rib.apply_update(a, &more, &mut only_24).unwrap();
    assert_eq!(r.max_prefix, None);
    // A dropped prefix that is later accepted moves from one count to the other.
    let mut all = AcceptAll;
    let r = rib.apply_update(a, &more, &mut all).unwrap();
    assert_eq!(r.max_prefix, None, "2 accepted, 0 dropped");
    // A session that goes down forgets them.
    let again = announce(&["10.9.0.5/32", "10.9.0.6/32"], path(&[65001]), nh(1));
    rib.apply_update(a, &again, &mut only_24).unwrap();
    rib.peer_down(a, false, Instant::now());
    let r = rib.apply_update(a, &again, &mut only_24).unwrap();
    assert_eq!(r.max_prefix, None);
}

// ----- change stream -----

#[test]
fn many_updates_to_one_prefix_give_one_change() {
    let mut rib = Rib::new(multipath(true, 2));
    let a = rib.add_peer(ebgp(1, 65001));
    let b = rib.add_peer(ebgp(2, 65002));
    for i in 0..10 {
        apply(
            &mut rib,
            a,
            &announce(&["10.0.0.0/24"], path(&[65001, 65100 + i]), nh(1)),
        );
        apply(
            &mut rib,
            b,
            &announce(&["10.0.0.0/24"], path(&[65002, 65100 + i]), nh(2)),
        );
    }
    let c = rib.drain_changes();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].multipath.len(), 2);
    assert!(rib.drain_changes().is_empty());
    assert!(!rib.has_pending_changes());
}

#[test]
fn updates_that_end_where_they_started_give_no_change() {
    let mut rib = Rib::default();
    let a = rib.add_peer(ebgp(1, 65001));
    let b = rib.add_peer(ebgp(2, 65002));
    apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24"], path(&[65001]), nh(1)),
    );
    rib.drain_changes();
    // A worse path comes and goes; a duplicate announcement changes nothing.
    apply(
        &mut rib,
        b,
        &announce(&["10.0.0.0/24"], path(&[65002, 65002]), nh(2)),
    );
    apply(&mut rib, b, &withdraw(&["10.0.0.0/24"]));
    apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24"], path(&[65001]), nh(1)),
    );
    assert!(rib.drain_changes().is_empty());
    // A prefix announced and withdrawn between drains was never reported.
    apply(
        &mut rib,
        a,
        &announce(&["10.9.0.0/24"], path(&[65001]), nh(1)),
    );
    apply(&mut rib, a, &withdraw(&["10.9.0.0/24"]));
    assert!(rib.drain_changes().is_empty());
    assert_eq!(rib.len(), 1);
}

#[test]
fn replacing_the_best_path_with_new_attributes_is_a_change() {
    let mut rib = Rib::default();
    let a = rib.add_peer(ebgp(1, 65001));
    apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24"], path(&[65001]), nh(1)),
    );
    rib.drain_changes();
    apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24"], path(&[65001]), nh(3)),
    );
    let c = rib.drain_changes();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].multipath[0].next_hop, NextHop::V4(nh(3)));
    apply(&mut rib, a, &withdraw(&["10.0.0.0/24"]));
    let c = rib.drain_changes();
    assert_eq!((c.len(), c[0].best.is_none()), (1, true));
    assert!(c[0].multipath.is_empty());
    assert!(rib.is_empty());
}

#[test]
fn prefixes_with_the_same_next_hops_share_one_set() {
    let mut rib = Rib::new(multipath(true, 2));
    let a = rib.add_peer(ebgp(1, 65001));
    let b = rib.add_peer(ebgp(2, 65002));
    let prefixes = ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"];
    apply(
        &mut rib,
        a,
        &announce(&prefixes, path(&[65001, 65100]), nh(1)),
    );
    apply(
        &mut rib,
        b,
        &announce(&prefixes, path(&[65002, 65200]), nh(2)),
    );
    let c = rib.drain_changes();
    assert_eq!(c.len(), 3);
    assert_eq!(c[0].multipath.len(), 2);
    assert!(c.iter().all(|x| Arc::ptr_eq(&x.multipath, &c[0].multipath)));
}

#[test]
fn small_churn_on_a_large_table_is_drained_by_lookup() {
    // Few queued prefixes in a big table take the per-prefix path of the drain, not the
    // sweep; both must report the same way.
    let mut rib = Rib::default();
    let a = rib.add_peer(ebgp(1, 65001));
    let all: Vec<String> = (0..200).map(|i| format!("10.0.{i}.0/24")).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    apply(&mut rib, a, &announce(&all, path(&[65001]), nh(1)));
    assert_eq!(rib.drain_changes().len(), 200);
    apply(&mut rib, a, &withdraw(&["10.0.7.0/24"]));
    apply(
        &mut rib,
        a,
        &announce(&["10.0.9.0/24"], path(&[65001]), nh(2)),
    );
    apply(
        &mut rib,
        a,
        &announce(&["10.0.11.0/24"], path(&[65001]), nh(1)),
    );
    let mut c = rib.drain_changes();
    c.sort_by_key(|c| c.prefix);
    assert_eq!(c.len(), 2);
    assert_eq!((c[0].prefix, c[0].best.is_none()), (p("10.0.7.0/24"), true));
    assert_eq!(c[1].multipath[0].next_hop, NextHop::V4(nh(2)));
    assert_eq!(rib.len(), 199);
}

#[test]
fn losing_a_multipath_member_is_a_change() {
    let (mut rib, a, b) = two_tors(multipath(true, 2));
    rib.drain_changes();
    apply(&mut rib, b, &withdraw(&["10.0.0.0/24"]));
    let c = rib.drain_changes();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].best.as_ref().unwrap().peer, a);
    assert_eq!(c[0].multipath.len(), 1);
}

#[test]
fn peer_changes_rerun_selection() {
    let mut rib = Rib::default();
    let a = rib.add_peer(ebgp(1, 65001));
    let b = rib.add_peer(ebgp(2, 65002));
    apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24"], path(&[65001]), nh(1)),
    );
    apply(
        &mut rib,
        b,
        &announce(&["10.0.0.0/24"], path(&[65002]), nh(2)),
    );
    rib.drain_changes();
    assert!(rib.update_peer(
        a,
        PeerInfo {
            weight: 0,
            router_id: Ipv4Addr::new(10, 0, 0, 99),
            ..ebgp(1, 65001)
        }
    ));
    let c = rib.drain_changes();
    assert_eq!(c[0].best.as_ref().unwrap().peer, b);
    assert!(rib.remove_peer(b));
    assert!(!rib.remove_peer(b));
    let c = rib.drain_changes();
    assert_eq!(c[0].best.as_ref().unwrap().peer, a);
}

// ----- graceful restart -----

#[test]
fn graceful_down_keeps_stale_routes_until_end_of_rib() {
    let mut rib = Rib::default();
    let a = rib.add_peer(ebgp(1, 65001));
    apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24", "10.0.1.0/24"], path(&[65001]), nh(1)),
    );
    apply(
        &mut rib,
        a,
        &announce_mp(
            &["2001:db8::/64"],
            path(&[65001]),
            NextHop::V6 {
                global: "2001:db8::1".parse().unwrap(),
                link_local: None,
            },
        ),
    );
    rib.drain_changes();
    let now = Instant::now();
    assert_eq!(rib.peer_down(a, true, now), Some(3));
    // Still forwarding: no change, routes marked stale.
    assert!(rib.drain_changes().is_empty());
    assert!(rib.best(&p("10.0.0.0/24")).unwrap().best.stale);
    let c = rib.peer_counters(a).unwrap();
    assert_eq!((c.accepted, c.stale, c.stale_since), (3, 3, Some(now)));

    // After the restart the peer re-announces one prefix, then sends End-of-RIB for IPv4.
    apply(
        &mut rib,
        a,
        &announce(&["10.0.0.0/24"], path(&[65001]), nh(1)),
    );
    assert!(!rib.best(&p("10.0.0.0/24")).unwrap().best.stale);
    assert_eq!(rib.peer_counters(a).unwrap().stale, 2);
    let r = apply(
        &mut rib,
        a,
        &Update::end_of_rib(crate::wire::Family::IPV4_UNICAST).unwrap(),
    );
    assert_eq!(
        (r.end_of_rib, r.stale_removed),
        (Some(crate::wire::Family::IPV4_UNICAST), 1)
    );
    let c = rib.drain_changes();
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].prefix, c[0].best.is_none()), (p("10.0.1.0/24"), true));
    // The IPv6 route stays stale until its own End-of-RIB or the timer.
    assert!(rib.best(&p("2001:db8::/64")).unwrap().best.stale);
    assert_eq!(rib.stale_expired(a), Some(1));
    assert!(rib.best(&p("2001:db8::/64")).is_none());
    let c = rib.peer_counters(a).unwrap();
    assert_eq!((c.accepted, c.stale, c.stale_since), (1, 0, None));
}

#[test]
fn restart_timer_removes_everything_still_stale() {
    let (mut rib, a, b) = two_tors(multipath(true, 2));
    rib.drain_changes();
    rib.peer_down(a, true, Instant::now());
    assert_eq!(mp_peers(&rib, "10.0.0.0/24"), vec![a, b]);
    assert_eq!(rib.stale_expired(a), Some(1));
    let c = rib.drain_changes();
    assert_eq!(c[0].multipath.len(), 1);
    assert_eq!(c[0].best.as_ref().unwrap().peer, b);
}

#[test]
fn non_graceful_down_removes_routes_at_once() {
    let (mut rib, a, b) = two_tors(multipath(true, 2));
    rib.drain_changes();
    assert_eq!(rib.peer_down(b, false, Instant::now()), Some(1));
    assert_eq!(mp_peers(&rib, "10.0.0.0/24"), vec![a]);
    assert_eq!(rib.peer_counters(b).unwrap().accepted, 0);
    assert_eq!(rib.peer_down(PeerId(9), false, Instant::now()), None);
    assert_eq!(rib.drain_changes().len(), 1);
}

#[test]
fn listings_show_routes_and_selection() {
    let (rib, a, b) = two_tors(multipath(true, 2));
    let got: Vec<(Prefix, PeerId)> = rib.adj_rib_in(b).map(|(p, r)| (p, r.peer)).collect();
    assert_eq!(got, vec![(p("10.0.0.0/24"), b)]);
    let loc: Vec<LocRibEntry> = rib.loc_rib().collect();
    assert_eq!(loc.len(), 1);
    assert_eq!(loc[0].best.peer, a);
    assert_eq!(loc[0].multipath.len(), 2);
    let peers: Vec<PeerId> = rib.peers().map(|(id, _, _)| id).collect();
    assert_eq!(peers, vec![a, b]);
    let m = rib.memory();
    assert_eq!((m.prefixes, m.routes, m.attribute_sets), (1, 2, 2));
    assert!(m.bytes > 0);
}

#[test]
fn many_paths_spill_and_come_back() {
    let mut rib = Rib::new(multipath(true, 16));
    let peers: Vec<PeerId> = (1..=10)
        .map(|n| rib.add_peer(ebgp(n, 65000 + u32::from(n))))
        .collect();
    for (i, &peer) in peers.iter().enumerate() {
        let asn = 65001 + i as u32;
        apply(
            &mut rib,
            peer,
            &announce(&["10.0.0.0/24"], path(&[asn]), nh(i as u8 + 1)),
        );
    }
    assert_eq!(mp_peers(&rib, "10.0.0.0/24"), peers);
    for &peer in peers.iter().step_by(2) {
        rib.peer_down(peer, false, Instant::now());
    }
    let odd: Vec<PeerId> = peers.iter().skip(1).step_by(2).copied().collect();
    assert_eq!(mp_peers(&rib, "10.0.0.0/24"), odd);
    let c = rib.drain_changes();
    assert_eq!(c[0].multipath.len(), 5);
}

// ----- order independence -----

mod order {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    struct Arrival {
        internal: bool,
        router_id: u8,
        weight: u32,
        local_pref: Option<u32>,
        neighbor_as: u32,
        path_len: usize,
        origin: u8,
        med: Option<u32>,
    }

    fn arrival() -> impl Strategy<Value = Arrival> {
        (
            any::<bool>(),
            1u8..4,
            prop_oneof![3 => Just(0u32), 1 => Just(5u32)],
            prop_oneof![Just(None), Just(Some(100u32)), Just(Some(200u32))],
            65001u32..65004,
            1usize..3,
            0u8..3,
            prop_oneof![Just(None), (0u32..3).prop_map(Some)],
        )
            .prop_map(
                |(internal, router_id, weight, local_pref, neighbor_as, path_len, origin, med)| {
                    Arrival {
                        internal,
                        router_id,
                        weight,
                        local_pref,
                        neighbor_as,
                        path_len,
                        origin,
                        med,
                    }
                },
            )
    }

    /// Registers one peer per arrival (in arrival-index order, so ids do not depend on the
    /// permutation), then applies the announcements in `order`.
    fn run(
        config: RibConfig,
        arrivals: &[Arrival],
        order: &[usize],
    ) -> (Option<LocRibEntry>, Vec<Change>) {
        let mut rib = Rib::new(config);
        let ids: Vec<PeerId> = arrivals
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let n = i as u8 + 1;
                rib.add_peer(PeerInfo {
                    router_id: Ipv4Addr::new(10, 0, 0, a.router_id),
                    weight: a.weight,
                    ..if a.internal {
                        ibgp(n)
                    } else {
                        ebgp(n, a.neighbor_as)
                    }
                })
            })
            .collect();
        for &i in order {
            let a = &arrivals[i];
            let mut asns = vec![a.neighbor_as];
            asns.extend(std::iter::repeat_n(65100, a.path_len - 1));
            let attrs = PathAttributes {
                origin: Some(Origin::from(a.origin)),
                local_pref: a.local_pref,
                med: a.med,
                ..path(&asns)
            };
            apply(
                &mut rib,
                ids[i],
                &announce(&["10.0.0.0/24"], attrs, nh(i as u8 + 1)),
            );
        }
        (rib.best(&p("10.0.0.0/24")), rib.drain_changes())
    }

    proptest! {
        #[test]
        fn arrival_order_does_not_change_the_selection(
            (arrivals, order) in proptest::collection::vec(arrival(), 1..7).prop_flat_map(|v| {
                let n = v.len();
                (Just(v), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
            }),
            relax in any::<bool>(),
            always_compare_med in any::<bool>(),
            max_paths in 1u16..5,
        ) {
            let config = RibConfig {
                max_paths: NonZeroU16::new(max_paths).unwrap(),
                multipath_relax: relax,
                always_compare_med,
                ..RibConfig::default()
            };
            let in_order: Vec<usize> = (0..arrivals.len()).collect();
            let (best_a, changes_a) = run(config, &arrivals, &in_order);
            let (best_b, changes_b) = run(config, &arrivals, &order);
            prop_assert!(best_a.is_some());
            prop_assert_eq!(best_a, best_b);
            prop_assert_eq!(changes_a, changes_b);
        }
    }
}
