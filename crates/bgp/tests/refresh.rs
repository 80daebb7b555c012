//! Route refresh (RFC 2918) with FRR, both ways. FRR runs with `bgp route-map delay-timer 0`,
//! so changing its route-maps sends and asks for nothing by itself: only a ROUTE-REFRESH makes
//! the changed policy show.

mod common;

use common::{block_on, ip, run_speaker};

use std::net::SocketAddr;
use std::time::Duration;

use clos_bgp::driver::{PeerPolicy, PeerSpec, SpeakerHandle, SpeakerSpec};
use clos_bgp::session::{RemoteAs, SessionConfig};
use clos_testkit::peers::Frr;
use clos_testkit::{PeerDaemon, wait_until_with};

const TIMEOUT: Duration = Duration::from_secs(60);

/// FRR at 10.0.0.2 (AS 65002) peering with us at 10.0.0.1; `policy` goes first (prefix lists,
/// route-maps), `neighbor` lines go into its IPv4 unicast family.
fn frr_config(policy: &str, neighbor: &str) -> String {
    format!(
        "frr defaults datacenter
{policy}
router bgp 65002
 bgp router-id 10.0.0.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp route-map delay-timer 0
 neighbor 10.0.0.1 remote-as 65001
 neighbor 10.0.0.1 timers connect 2
 address-family ipv4 unicast
  network 198.51.100.0/24
  {neighbor}
 exit-address-family
"
    )
}

fn clos(ns: &clos_testkit::Netns, originate: &[&str]) -> SpeakerHandle {
    let mut peer = PeerSpec::new(
        ip("10.0.0.2"),
        SessionConfig::new(65001, "10.0.0.1".parse().unwrap(), RemoteAs::Exact(65002)),
    );
    peer.policy = PeerPolicy::accept_all();
    run_speaker(
        ns,
        SpeakerSpec {
            listen: vec![SocketAddr::new(ip("10.0.0.1"), 179)],
            peers: vec![peer],
            listen_ranges: Vec::new(),
            originate: originate.iter().map(|p| p.parse().unwrap()).collect(),
            multipath: Default::default(),
        },
    )
}

/// Runs configuration commands in FRR (`configure terminal` first).
fn configure(frr: &Frr, ns: &clos_testkit::Netns, commands: &[&str]) {
    let dir = frr.dir().display().to_string();
    let mut args = vec!["--vty_socket", &dir, "-c", "configure terminal"];
    for c in commands {
        args.extend(["-c", c]);
    }
    ns.exec("vtysh", &args).unwrap();
}

/// FRR's message counter `name` for its session with us (`routeRefreshSent`, ...).
fn frr_counter(frr: &Frr, name: &str) -> u64 {
    let out = frr.vtysh("show bgp neighbors 10.0.0.1 json").unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["10.0.0.1"]["messageStats"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {out}"))
}

/// FRR asks us for a refresh after letting a prefix in that it used to deny: we send our
/// routes again and it gets the prefix.
#[test]
fn frr_asks_us_for_a_refresh() {
    let (left, right) = common::linked_pair("10.0.0.1/30", "10.0.0.2/30");
    let frr = Frr::start_config(
        &right,
        &frr_config(
            "ip prefix-list from-clos seq 5 deny 192.0.2.0/24\n\
             ip prefix-list from-clos seq 10 permit 0.0.0.0/0 le 32\n\
             route-map from-clos permit 10\n match ip address prefix-list from-clos",
            "neighbor 10.0.0.1 route-map from-clos in",
        ),
    )
    .unwrap();
    let _clos = clos(&left, &["192.0.2.0/24", "203.0.113.0/24"]);
    // Our table arrived (the UPDATEs go out in one burst): one prefix passed, one was denied.
    let got = frr
        .wait_received(
            ip("10.0.0.1"),
            &["203.0.113.0/24".parse().unwrap()],
            TIMEOUT,
        )
        .unwrap();
    assert!(!got.contains(&"192.0.2.0/24".parse().unwrap()), "{got:?}");
    assert_eq!(frr_counter(&frr, "routeRefreshSent"), 0);

    configure(
        &frr,
        &right,
        &["ip prefix-list from-clos seq 5 permit 192.0.2.0/24"],
    );
    frr.vtysh("clear bgp ipv4 unicast 10.0.0.1 soft in")
        .unwrap();
    frr.wait_received(ip("10.0.0.1"), &["192.0.2.0/24".parse().unwrap()], TIMEOUT)
        .unwrap();
    assert!(frr_counter(&frr, "routeRefreshSent") >= 1);
}

/// We ask FRR for a refresh after its export policy changed: it sends its route again, with
/// the new MED.
#[test]
fn we_ask_frr_for_a_refresh() {
    let (left, right) = common::linked_pair("10.0.0.1/30", "10.0.0.2/30");
    let frr = Frr::start_config(
        &right,
        &frr_config(
            "route-map to-clos permit 10\n set metric 10",
            "neighbor 10.0.0.1 route-map to-clos out",
        ),
    )
    .unwrap();
    let clos = clos(&left, &[]);
    let med = || -> Result<Option<u32>, String> {
        let routes = block_on(clos.routes(None))
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let r = routes.iter().find(|r| r.prefix == "198.51.100.0/24");
        Ok(r.and_then(|r| r.med))
    };
    let wait_med = |want: u32| {
        wait_until_with(
            TIMEOUT,
            &format!("FRR's route with MED {want}"),
            &[&frr],
            || match med()? {
                Some(m) if m == want => Ok(()),
                other => Err(format!("MED {other:?}").into()),
            },
        )
        .unwrap()
    };
    wait_med(10);
    assert_eq!(frr_counter(&frr, "routeRefreshRecv"), 0);

    configure(
        &frr,
        &right,
        &["route-map to-clos permit 10", "set metric 20"],
    );
    let families = block_on(clos.refresh(ip("10.0.0.2"))).unwrap();
    assert!(!families.is_empty());
    wait_med(20);
    assert_eq!(frr_counter(&frr, "routeRefreshRecv"), families.len() as u64);

    // A peer we do not have, or one whose session is not up, is an error that says so.
    let err = block_on(clos.refresh(ip("10.0.0.9"))).unwrap_err();
    assert!(err.to_string().contains("no such peer"), "{err}");
}
