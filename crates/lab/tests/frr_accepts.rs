//! FRR accepts the controller's rendered configs line by line: a leaf with host ports (IPv4
//! and IPv6 assignments, BFD) and a spine, applied through vtysh to a live zebra, bgpd and bfdd in a
//! namespace. Needs root and FRR.

use std::time::Duration;

use clos_controller::render::{PortView, SwitchView, frr::render};
use clos_lab::{frr, sys};
use clos_model::{BfdTimers, SwitchRole};

/// A namespace removed with everything inside when dropped.
struct Ns(String);

impl Ns {
    fn new(tag: &str) -> Ns {
        let name = format!("closlab-frrtest{}-{tag}", std::process::id());
        sys::ip(&["netns", "add", &name]).unwrap();
        sys::ip_n(&name, &["link", "set", "lo", "up"]).unwrap();
        Ns(name)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = sys::remove_netns(&self.0, Duration::from_millis(200));
    }
}

fn apply_and_read_back(view: &SwitchView) -> String {
    let ns = Ns::new(&view.name);
    // The ports must exist for `neighbor PORT interface`: veths to a scratch namespace.
    let other = Ns::new(&format!("{}-peer", view.name));
    for (i, p) in view.ports.iter().enumerate() {
        sys::ip(&[
            "link",
            "add",
            p.name(),
            "netns",
            &ns.0,
            "type",
            "veth",
            "peer",
            "name",
            &format!("p{i}"),
            "netns",
            &other.0,
        ])
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut perm = std::fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(dir.path(), perm).unwrap();
    let fdir = dir.path().join("frr");
    let config = render(view);
    // `frr::start` fails on any line vtysh or a daemon rejects.
    let pids = frr::start(&ns.0, &fdir, &config)
        .unwrap_or_else(|e| panic!("FRR rejected the rendered config: {e}\n{config}"));
    assert_eq!(pids.len(), frr::DAEMONS.len());
    frr::vtysh(&fdir, "show running-config").unwrap()
}

#[test]
fn frr_accepts_a_rendered_leaf_and_spine() {
    let leaf = SwitchView {
        name: "l1".into(),
        role: SwitchRole::Leaf,
        rack: Some("r1".into()),
        asn: 4_200_000_001,
        router_id: Some("10.254.0.3".parse().unwrap()),
        fabric: vec!["10.0.0.0/16".parse().unwrap(), "fd00::/48".parse().unwrap()],
        ports: vec![
            PortView::Fabric {
                name: "swp1".into(),
            },
            PortView::Fabric {
                name: "swp2".into(),
            },
            PortView::Host {
                name: "swp3".into(),
                node: "r1-h1".into(),
                asn: 4_200_010_000,
                prefixes: vec![
                    "10.0.0.0/28".parse().unwrap(),
                    "10.0.1.9/32".parse().unwrap(),
                    "fd00::40/122".parse().unwrap(),
                ],
            },
            PortView::Host {
                name: "swp4".into(),
                node: "r1-h2".into(),
                asn: 4_200_010_001,
                prefixes: vec![],
            },
        ],
        bfd: Some(BfdTimers {
            interval_ms: 100,
            multiplier: 3,
        }),
    };
    let running = apply_and_read_back(&leaf);
    for want in [
        "router bgp 4200000001",
        "bgp bestpath as-path multipath-relax",
        "neighbor swp3 interface remote-as 4200010000",
        "neighbor swp1 interface peer-group CLOS-FABRIC",
        "ip prefix-list CLOS-HOST-r1-h1 seq 5 permit 10.0.0.0/28",
        "ipv6 prefix-list CLOS-HOST6-r1-h1 seq 5 permit fd00::40/122",
        "neighbor swp3 route-map CLOS-FROM-r1-h1 in",
        "neighbor swp3 maximum-prefix 18 force",
        "maximum-paths 64",
        "profile clos",
        "transmit-interval 100",
        "neighbor swp3 bfd profile clos",
        "neighbor CLOS-FABRIC bfd profile clos",
    ] {
        assert!(
            running.contains(want),
            "FRR's running config lacks {want:?}:\n{running}"
        );
    }
    // FRR shows `bgp ebgp-requires-policy` only when it differs from the profile's default
    // (off in the datacenter profile): it must be on, so `no bgp ebgp-requires-policy` must
    // not appear.
    assert!(
        !running.contains("no bgp ebgp-requires-policy"),
        "{running}"
    );

    let spine = SwitchView {
        name: "s1".into(),
        role: SwitchRole::Spine,
        rack: None,
        asn: 4_200_000_000,
        router_id: None,
        fabric: vec!["10.0.0.0/16".parse().unwrap()],
        ports: vec![
            PortView::Fabric {
                name: "swp1".into(),
            },
            PortView::Fabric {
                name: "swp2".into(),
            },
        ],
        bfd: None,
    };
    let running = apply_and_read_back(&spine);
    assert!(running.contains("router bgp 4200000000"), "{running}");
    assert!(
        running.contains("neighbor swp2 interface peer-group CLOS-FABRIC"),
        "{running}"
    );
}

/// The check above is not vacuous: a line FRR does not know fails the start.
#[test]
fn a_rejected_line_fails_the_start() {
    let ns = Ns::new("bad");
    let dir = tempfile::tempdir().unwrap();
    let mut perm = std::fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(dir.path(), perm).unwrap();
    let err = frr::start(
        &ns.0,
        &dir.path().join("frr"),
        "router bgp 65000\n neighbor swp1 interface remote-as externall\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("externall"), "{err}");
}
