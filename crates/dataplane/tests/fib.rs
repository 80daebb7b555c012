//! The FIB programmer against a real kernel: every test builds its own namespaces with the test
//! kit (so tests run in parallel), programs routes with a `Fib` opened inside, and checks the
//! result with iproute2's JSON output. Needs root.

use std::collections::BTreeSet;
use std::net::IpAddr;

use clos_dataplane::fib::CLOS_PROTOCOL;
use clos_dataplane::{Change, Error, Fib, FibConfig, Nexthop, NexthopMode, Route};
use clos_testkit::Netns;
use ipnet::IpNet;
use serde_json::Value;

/// A host namespace with two uplinks to a "switch" namespace:
/// `up[0]` 10.0.1.1/24, 2001:db8:1::1/64 and `up[1]` 10.0.2.1/24, 2001:db8:2::1/64; the switch
/// ends are .2 / ::2.
struct Host {
    ns: Netns,
    _switch: Netns,
    up: [String; 2],
    ifindex: [u32; 2],
}

fn host() -> Host {
    let ns = Netns::new().unwrap();
    let switch = Netns::new().unwrap();
    let mut up = Vec::new();
    let mut ifindex = Vec::new();
    for i in 1..=2 {
        let link = ns.link_to(&switch).unwrap();
        ns.add_addr(&link.local, &format!("10.0.{i}.1/24")).unwrap();
        ns.add_addr(&link.local, &format!("2001:db8:{i}::1/64"))
            .unwrap();
        switch
            .add_addr(&link.remote, &format!("10.0.{i}.2/24"))
            .unwrap();
        switch
            .add_addr(&link.remote, &format!("2001:db8:{i}::2/64"))
            .unwrap();
        ifindex.push(index_of(&ns, &link.local));
        up.push(link.local);
    }
    Host {
        ns,
        _switch: switch,
        up: [up[0].clone(), up[1].clone()],
        ifindex: [ifindex[0], ifindex[1]],
    }
}

fn json(ns: &Netns, args: &[&str]) -> Value {
    let mut all = vec!["-j"];
    all.extend_from_slice(args);
    let out = ns.ip(&all).unwrap();
    if out.trim().is_empty() {
        return Value::Array(Vec::new());
    }
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip {args:?}: {e}: {out}"))
}

fn index_of(ns: &Netns, dev: &str) -> u32 {
    json(ns, &["link", "show", "dev", dev])[0]["ifindex"]
        .as_u64()
        .unwrap() as u32
}

/// iproute2 keeps its namespaces here (`ip netns add`).
fn netns_path(ns: &Netns) -> String {
    format!("/var/run/netns/{}", ns.name())
}

fn open(h: &Host, mode: NexthopMode) -> Fib {
    let config = FibConfig {
        mode,
        ..FibConfig::default()
    };
    Fib::open_in_netns(netns_path(&h.ns), config).unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

impl Host {
    /// ECMP over both uplinks, with the switch's global addresses.
    fn ecmp(&self, v6: bool) -> Vec<Nexthop> {
        (0..2)
            .map(|i| {
                let gw = if v6 {
                    ip(&format!("2001:db8:{}::2", i + 1))
                } else {
                    ip(&format!("10.0.{}.2", i + 1))
                };
                Nexthop::via(gw, self.ifindex[i])
            })
            .collect()
    }

    /// Unnumbered ECMP: a link-local gateway on each uplink.
    fn unnumbered(&self) -> Vec<Nexthop> {
        vec![
            Nexthop::via(ip("fe80::2"), self.ifindex[0]),
            Nexthop::via(ip("fe80::3"), self.ifindex[1]),
        ]
    }

    fn routes(&self, family: &str) -> Vec<Value> {
        let v = json(
            &self.ns,
            &[family, "route", "show", "table", "all", "proto", "198"],
        );
        v.as_array().unwrap().clone()
    }

    fn route(&self, family: &str, dst: &str) -> Value {
        self.routes(family)
            .into_iter()
            .find(|r| r["dst"] == dst)
            .unwrap_or_else(|| panic!("no route {dst} in {:#?}", self.routes(family)))
    }

    fn nexthops(&self) -> Vec<Value> {
        json(&self.ns, &["nexthop", "show"])
            .as_array()
            .unwrap()
            .clone()
    }

    /// The (gateway, dev) pairs a route forwards over, as iproute2 shows them.
    fn paths(route: &Value) -> BTreeSet<(String, String)> {
        let hops = match route["nexthops"].as_array() {
            Some(hops) => hops.clone(),
            None => vec![route.clone()],
        };
        hops.iter()
            .map(|h| {
                let gw = h["gateway"]
                    .as_str()
                    .or_else(|| h["via"]["host"].as_str())
                    .unwrap_or("")
                    .to_owned();
                (gw, h["dev"].as_str().unwrap_or("").to_owned())
            })
            .collect()
    }

    fn pairs(&self, gws: &[&str]) -> BTreeSet<(String, String)> {
        gws.iter()
            .zip(&self.up)
            .map(|(g, d)| (g.to_string(), d.clone()))
            .collect()
    }
}

#[test]
fn ecmp_v4_and_v6_through_nexthop_groups() {
    let h = host();
    let mut fib = open(&h, NexthopMode::Objects);
    assert!(fib.uses_nexthop_objects());
    let report = fib
        .reconcile([
            Route::new(net("10.10.0.0/24"), h.ecmp(false)),
            Route::new(net("10.10.1.0/24"), h.ecmp(false)),
            Route::new(net("2001:db8:10::/64"), h.ecmp(true)),
        ])
        .unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(report.added, 3);
    // Two v4 nexthops and their group, shared by both v4 routes; the same for v6.
    assert_eq!(report.nexthops_added, 6);

    let r4 = h.route("-4", "10.10.0.0/24");
    let r4b = h.route("-4", "10.10.1.0/24");
    let shown = json(&h.ns, &["route", "show", "10.10.0.0/24"]);
    assert_eq!(shown[0]["protocol"], "198", "{shown}");
    assert!(r4["nhid"].is_u64(), "{r4}");
    assert_eq!(
        r4["nhid"], r4b["nhid"],
        "routes with one nexthop set share a group"
    );
    assert_eq!(Host::paths(&r4), h.pairs(&["10.0.1.2", "10.0.2.2"]));

    let r6 = h.route("-6", "2001:db8:10::/64");
    assert!(r6["nhid"].is_u64(), "{r6}");
    assert_eq!(
        Host::paths(&r6),
        h.pairs(&["2001:db8:1::2", "2001:db8:2::2"])
    );

    let nhs = h.nexthops();
    assert_eq!(nhs.len(), 6, "{nhs:#?}");
    assert!(nhs.iter().all(|n| n["protocol"] == "198"), "{nhs:#?}");
    let group = nhs.iter().find(|n| n["id"] == r4["nhid"]).unwrap();
    assert_eq!(group["group"].as_array().unwrap().len(), 2);
    let first = *FibConfig::default().nexthop_ids.start() as u64;
    assert!(nhs.iter().all(|n| n["id"].as_u64().unwrap() >= first));
}

#[test]
fn ipv4_routes_via_ipv6_link_local_gateways() {
    for mode in [NexthopMode::Objects, NexthopMode::Multipath] {
        let h = host();
        let mut fib = open(&h, mode);
        let report = fib
            .reconcile([
                Route::new(net("10.20.0.0/24"), h.unnumbered()),
                Route::new(net("10.21.0.0/24"), h.unnumbered()[..1].to_vec()),
            ])
            .unwrap();
        assert!(report.is_ok(), "{mode:?}: {:?}", report.errors);
        let ecmp = h.route("-4", "10.20.0.0/24");
        assert_eq!(
            Host::paths(&ecmp),
            h.pairs(&["fe80::2", "fe80::3"]),
            "{mode:?}: {ecmp}"
        );
        let single = h.route("-4", "10.21.0.0/24");
        assert_eq!(
            Host::paths(&single),
            h.pairs(&["fe80::2"]),
            "{mode:?}: {single}"
        );
        let text = h.ns.ip(&["route", "show", "10.20.0.0/24"]).unwrap();
        assert!(text.contains("via inet6 fe80::2"), "{mode:?}: {text}");
        // And it is adopted as is.
        let again = fib
            .reconcile([
                Route::new(net("10.20.0.0/24"), h.unnumbered()),
                Route::new(net("10.21.0.0/24"), h.unnumbered()[..1].to_vec()),
            ])
            .unwrap();
        assert_eq!((again.unchanged, again.requests), (2, 0), "{mode:?}");
    }
}

#[test]
fn reconcile_removes_stale_tagged_routes_and_leaves_foreign_ones() {
    let h = host();
    let (a, b) = (&h.up[0], &h.up[1]);
    let mut fib = open(&h, NexthopMode::Auto);
    fib.reconcile([
        Route::new(net("10.30.0.0/24"), h.ecmp(false)),
        Route::new(net("10.30.1.0/24"), h.ecmp(false)),
        Route::new(net("2001:db8:30::/64"), h.ecmp(true)),
    ])
    .unwrap();
    // Others' routes and objects: by hand, by "another daemon", a stale one of ours, and one
    // of ours at another metric.
    for cmd in [
        format!("route add 10.40.0.0/24 via 10.0.1.2 dev {a} proto static"),
        format!("route add 10.41.0.0/24 via 10.0.2.2 dev {b} proto bgp"),
        format!("route add 10.42.0.0/24 via 10.0.2.2 dev {b}"),
        format!("route add 10.43.0.0/24 via 10.0.2.2 dev {b} proto 198"),
        format!("route add 10.30.0.0/24 via 10.0.2.2 dev {b} proto 198 metric 50"),
        format!("nexthop add id 42 via 10.0.1.2 dev {a}"),
        "route add 10.44.0.0/24 nhid 42 proto static".to_owned(),
        // A foreign route on a key we want.
        format!("route add 10.30.2.0/24 via 10.0.1.2 dev {a} proto static"),
    ] {
        h.ns.ip(&cmd.split_whitespace().collect::<Vec<_>>())
            .unwrap();
    }

    let report = fib
        .reconcile([
            Route::new(net("10.30.0.0/24"), h.ecmp(false)),
            Route::new(net("10.30.2.0/24"), h.ecmp(false)),
        ])
        .unwrap();
    // 10.30.1.0/24, 2001:db8:30::/64, the hand-made "proto 198" routes go; the v6 group and
    // its nexthops are collected.
    assert_eq!(
        (report.deleted, report.unchanged, report.added),
        (4, 1, 0),
        "{report:?}"
    );
    assert_eq!(report.nexthops_deleted, 3);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        matches!(&report.errors[0], Error::ForeignRoute { prefix, .. } if *prefix == net("10.30.2.0/24")),
        "{}",
        report.errors[0]
    );
    assert!(report.errors[0].to_string().contains("not ours"));

    let ours: Vec<_> = h
        .routes("-4")
        .iter()
        .map(|r| r["dst"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ours, ["10.30.0.0/24"]);
    assert!(h.routes("-6").is_empty());
    let all = json(&h.ns, &["route", "show"]).to_string();
    for foreign in [
        "10.40.0.0/24",
        "10.41.0.0/24",
        "10.42.0.0/24",
        "10.44.0.0/24",
        "10.30.2.0/24",
    ] {
        assert!(all.contains(foreign), "{foreign} was touched: {all}");
    }
    let static_route = h.ns.ip(&["route", "show", "10.30.2.0/24"]).unwrap();
    assert!(static_route.contains("proto static"), "{static_route}");
    assert!(
        h.nexthops().iter().any(|n| n["id"] == 42),
        "foreign nexthop object deleted"
    );
}

#[test]
fn a_new_fib_adopts_installed_routes_without_writing() {
    for mode in [NexthopMode::Objects, NexthopMode::Multipath] {
        let h = host();
        let desired: Vec<Route> = (0..200u32)
            .map(|i| {
                let nhs = match i % 3 {
                    0 => h.ecmp(false),
                    1 => h.ecmp(false)[1..].to_vec(),
                    _ => h.unnumbered(),
                };
                Route::new(net(&format!("10.50.{}.{}/32", i / 256, i % 256)), nhs)
            })
            .chain([Route::new(net("2001:db8:50::/64"), h.ecmp(true)).in_table(1000)])
            .collect();
        let first = open(&h, mode).reconcile(desired.clone()).unwrap();
        assert!(first.is_ok(), "{:?}", first.errors);
        assert_eq!(first.added, 201);
        let objects_before = h.nexthops();

        // "Restart": a new Fib on the same namespace.
        let mut fib = open(&h, mode);
        assert_eq!(fib.installed(), 201);
        let report = fib.reconcile(desired.clone()).unwrap();
        assert!(report.is_ok(), "{:?}", report.errors);
        assert_eq!(report.unchanged, 201, "{mode:?}: {report:?}");
        assert_eq!(
            (
                report.added,
                report.replaced,
                report.deleted,
                report.requests
            ),
            (0, 0, 0, 0),
            "{mode:?}: {report:?}"
        );
        assert_eq!(h.nexthops(), objects_before, "{mode:?}");
        // Upserting what is there costs nothing either.
        let report = fib.apply(desired.into_iter().map(Change::Upsert)).unwrap();
        assert_eq!((report.unchanged, report.requests), (201, 0));
    }
}

#[test]
fn multipath_mode_uses_no_nexthop_objects() {
    let h = host();
    let mut fib = open(&h, NexthopMode::Multipath);
    assert!(!fib.uses_nexthop_objects());
    let report = fib
        .reconcile([
            Route::new(net("10.60.0.0/24"), h.ecmp(false)),
            Route::new(net("10.60.1.0/24"), h.ecmp(false)[..1].to_vec()),
            Route::new(net("10.60.2.0/24"), vec![Nexthop::dev(h.ifindex[1])]),
            Route::new(net("2001:db8:60::/64"), h.ecmp(true)),
        ])
        .unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!((report.added, report.nexthops_added), (4, 0));
    assert!(h.nexthops().is_empty());
    let r4 = h.route("-4", "10.60.0.0/24");
    assert!(r4.get("nhid").is_none(), "{r4}");
    assert_eq!(Host::paths(&r4), h.pairs(&["10.0.1.2", "10.0.2.2"]));
    assert_eq!(
        Host::paths(&h.route("-4", "10.60.1.0/24")),
        h.pairs(&["10.0.1.2"])
    );
    let dev_only = h.route("-4", "10.60.2.0/24");
    assert_eq!(dev_only["scope"], "link", "{dev_only}");
    let r6 = h.route("-6", "2001:db8:60::/64");
    assert_eq!(
        Host::paths(&r6),
        h.pairs(&["2001:db8:1::2", "2001:db8:2::2"])
    );

    // Switching the same kernel to objects later replaces each route once, atomically.
    let mut objects = open(&h, NexthopMode::Objects);
    let report = objects
        .reconcile([Route::new(net("10.60.0.0/24"), h.ecmp(false))])
        .unwrap();
    assert_eq!((report.replaced, report.deleted), (1, 3), "{report:?}");
    assert!(h.route("-4", "10.60.0.0/24")["nhid"].is_u64());

    // And back: the route is rewritten once more and our objects are collected.
    let report = open(&h, NexthopMode::Multipath)
        .reconcile([Route::new(net("10.60.0.0/24"), h.ecmp(false))])
        .unwrap();
    assert_eq!(
        (report.replaced, report.nexthops_deleted),
        (1, 3),
        "{report:?}"
    );
    assert!(h.nexthops().is_empty());
    assert!(h.route("-4", "10.60.0.0/24").get("nhid").is_none());
}

#[test]
fn apply_changes_incrementally_and_collects_unused_groups() {
    let h = host();
    let mut fib = open(&h, NexthopMode::Objects);
    let a = Route::new(net("10.70.0.0/24"), h.ecmp(false));
    let b = Route::new(net("10.70.1.0/24"), h.ecmp(false));
    let report = fib
        .apply([Change::Upsert(a.clone()), Change::Upsert(b.clone())])
        .unwrap();
    assert_eq!((report.added, report.nexthops_added), (2, 3));

    // One uplink lost for `a`: the shared group stays for `b`.
    let a1 = Route::new(a.prefix, h.ecmp(false)[..1].to_vec());
    let report = fib.apply([Change::Upsert(a1.clone())]).unwrap();
    assert_eq!(
        (
            report.replaced,
            report.nexthops_added,
            report.nexthops_deleted
        ),
        (1, 0, 0)
    );
    assert_eq!(
        Host::paths(&h.route("-4", "10.70.0.0/24")),
        h.pairs(&["10.0.1.2"])
    );
    assert_eq!(h.nexthops().len(), 3);

    // `b` goes too: the group and the second nexthop are no longer used.
    let report = fib.apply([Change::Remove(b.key())]).unwrap();
    assert_eq!(
        (report.deleted, report.nexthops_deleted),
        (1, 2),
        "{report:?}"
    );
    let nhs = h.nexthops();
    assert_eq!(nhs.len(), 1, "{nhs:#?}");
    assert_eq!(nhs[0]["gateway"], "10.0.1.2");

    // Removing what is not there is a no-op.
    let report = fib.apply([Change::Remove(b.key())]).unwrap();
    assert_eq!((report.deleted, report.requests), (0, 0));
    assert_eq!(fib.installed(), 1);
}

#[test]
fn refused_routes_are_reported_with_their_prefix_and_the_rest_installed() {
    for mode in [NexthopMode::Objects, NexthopMode::Multipath] {
        let h = host();
        h.ns.ip(&["link", "set", &h.up[1], "down"]).unwrap();
        let mut fib = open(&h, mode);
        let report = fib
            .reconcile([
                Route::new(net("10.80.0.0/24"), h.ecmp(false)[..1].to_vec()),
                // No such subnet on the first uplink.
                Route::new(
                    net("10.80.1.0/24"),
                    vec![Nexthop::via(ip("10.99.0.1"), h.ifindex[0])],
                ),
                // The second uplink is down.
                Route::new(net("10.80.2.0/24"), h.ecmp(false)[1..].to_vec()),
                Route::new(net("10.80.3.0/24"), vec![Nexthop::dev(9999)]),
                Route::new(net("10.80.4.1/24"), h.ecmp(false)),
            ])
            .unwrap();
        assert_eq!(report.added, 1, "{mode:?}: {report:?}");
        let by_prefix = |p: &str| {
            report
                .errors
                .iter()
                .find(|e| e.prefix() == Some(net(p)))
                .unwrap_or_else(|| panic!("{mode:?}: no error for {p}: {:?}", report.errors))
        };
        let unreachable = by_prefix("10.80.1.0/24").to_string();
        assert!(
            unreachable.contains(&format!(
                "nexthop gateway 10.99.0.1 unreachable via dev {}: is the interface up",
                h.up[0]
            )),
            "{mode:?}: {unreachable}"
        );
        let down = by_prefix("10.80.2.0/24");
        assert!(
            matches!(down, Error::InterfaceDown { .. }),
            "{mode:?}: {down}"
        );
        assert!(
            down.to_string()
                .contains(&format!("ip link set {} up", h.up[1])),
            "{down}"
        );
        let missing = by_prefix("10.80.3.0/24");
        assert!(
            matches!(missing, Error::NoSuchInterface { ifindex: 9999, .. }),
            "{mode:?}: {missing}"
        );
        assert!(matches!(
            by_prefix("10.80.4.1/24"),
            Error::InvalidRoute { .. }
        ));
        assert_eq!(report.errors.len(), 4, "{mode:?}: {:?}", report.errors);
        let ours: Vec<_> = h
            .routes("-4")
            .iter()
            .map(|r| r["dst"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ours, ["10.80.0.0/24"], "{mode:?}");
        // Nothing half-made is left behind.
        if mode == NexthopMode::Objects {
            assert_eq!(h.nexthops().len(), 1, "{mode:?}: {:#?}", h.nexthops());
        }
    }
}

#[test]
fn reconcile_repairs_what_a_link_flap_flushed() {
    let h = host();
    let mut fib = open(&h, NexthopMode::Objects);
    let desired: Vec<Route> = (0..100u32)
        .map(|i| Route::new(net(&format!("10.90.0.{i}/32")), h.ecmp(false)))
        .collect();
    fib.reconcile(desired.clone()).unwrap();
    // The kernel deletes nexthop objects on a link that goes down, shrinking the group.
    h.ns.ip(&["link", "set", &h.up[1], "down"]).unwrap();
    h.ns.ip(&["link", "set", &h.up[1], "up"]).unwrap();
    let shrunk = h.route("-4", "10.90.0.7");
    assert_eq!(Host::paths(&shrunk), h.pairs(&["10.0.1.2"]), "{shrunk}");

    let report = fib.reconcile(desired).unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    // The shrunken group is changed back in place: a new nexthop and one group replace.
    assert_eq!((report.replaced, report.requests), (100, 2), "{report:?}");
    for r in h.routes("-4") {
        assert_eq!(Host::paths(&r), h.pairs(&["10.0.1.2", "10.0.2.2"]), "{r}");
    }
    assert_eq!(h.nexthops().len(), 3, "{:#?}", h.nexthops());
}

#[test]
fn losing_an_uplink_moves_every_route_with_one_group_change() {
    let h = host();
    let mut fib = open(&h, NexthopMode::Objects);
    let routes = |nhs: Vec<Nexthop>| -> Vec<Change> {
        (0..1000u32)
            .map(|i| {
                Change::Upsert(Route::new(
                    net(&format!("10.95.{}.{}/32", i / 256, i % 256)),
                    nhs.clone(),
                ))
            })
            .collect()
    };
    fib.apply(routes(h.ecmp(false))).unwrap();
    let nhid = h.route("-4", "10.95.0.1")["nhid"].clone();

    let report = fib.apply(routes(h.ecmp(false)[..1].to_vec())).unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    // The group changes in place, and the lost nexthop is deleted.
    assert_eq!(
        (report.replaced, report.requests, report.nexthops_deleted),
        (1000, 2, 1),
        "{report:?}"
    );
    for r in h.routes("-4") {
        assert_eq!(r["nhid"], nhid, "{r}");
        assert_eq!(Host::paths(&r), h.pairs(&["10.0.1.2"]), "{r}");
    }

    let report = fib.apply(routes(h.ecmp(false))).unwrap();
    assert_eq!(
        (report.replaced, report.requests, report.nexthops_added),
        (1000, 2, 1),
        "{report:?}"
    );
    for r in h.routes("-4") {
        assert_eq!(Host::paths(&r), h.pairs(&["10.0.1.2", "10.0.2.2"]), "{r}");
    }
    // And a restarted Fib adopts the changed group as is.
    let again = open(&h, NexthopMode::Objects)
        .apply(routes(h.ecmp(false)))
        .unwrap();
    assert_eq!((again.unchanged, again.requests), (1000, 0));
}

#[test]
fn ten_thousand_routes_in_one_batch() {
    let h = host();
    let mut fib = open(&h, NexthopMode::Auto);
    let desired: Vec<Route> = (0..10_000u32)
        .map(|i| {
            let prefix = if i % 10 == 9 {
                net(&format!("2001:db8:100::{:x}/128", i))
            } else {
                net(&format!(
                    "10.{}.{}.{}/32",
                    100 + i / 65536,
                    (i / 256) % 256,
                    i % 256
                ))
            };
            let nhs = if i % 10 == 9 {
                h.ecmp(true)
            } else {
                h.ecmp(false)
            };
            Route::new(prefix, nhs)
        })
        .collect();
    let report = fib.reconcile(desired.clone()).unwrap();
    assert!(
        report.is_ok(),
        "{:?}",
        &report.errors[..report.errors.len().min(5)]
    );
    assert_eq!(report.added, 10_000);
    assert_eq!(h.routes("-4").len(), 9_000);
    assert_eq!(h.routes("-6").len(), 1_000);
    assert_eq!(fib.installed(), 10_000);

    // Half of them go in one reconcile, the other half stay untouched.
    let report = fib.reconcile(desired.into_iter().step_by(2)).unwrap();
    assert_eq!(
        (report.deleted, report.unchanged, report.added),
        (5_000, 5_000, 0)
    );
    assert_eq!(h.routes("-4").len() + h.routes("-6").len(), 5_000);
    let _ = CLOS_PROTOCOL;
}

#[test]
fn thousands_of_refusals_in_one_batch_are_all_reported() {
    // Every request of a full window failing must not overrun the receive buffer: each route
    // gets its own error, none is "lost".
    for mode in [NexthopMode::Objects, NexthopMode::Multipath] {
        let h = host();
        let mut fib = open(&h, mode);
        let bad = vec![Nexthop::via(ip("10.99.0.1"), h.ifindex[0])];
        let desired: Vec<Route> = (0..6000u32)
            .map(|i| {
                Route::new(
                    net(&format!("10.96.{}.{}/32", i / 256, i % 256)),
                    bad.clone(),
                )
            })
            .chain([Route::new(net("10.97.0.0/24"), h.ecmp(false))])
            .collect();
        let report = fib.reconcile(desired).unwrap();
        assert_eq!(report.added, 1, "{mode:?}");
        assert_eq!(report.errors.len(), 6000, "{mode:?}");
        assert!(
            report
                .errors
                .iter()
                .all(|e| matches!(e, Error::GatewayUnreachable { .. })),
            "{mode:?}: {:?}",
            report
                .errors
                .iter()
                .find(|e| !matches!(e, Error::GatewayUnreachable { .. }))
        );
        assert_eq!(h.routes("-4").len(), 1);
    }
}

#[test]
fn a_fib_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<Fib>();
}
