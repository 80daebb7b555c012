//! Dynamic neighbours: a "ToR" namespace runs our speaker with a listen range and no peer
//! addresses; "host" namespaces with BIRD, FRR and GoBGP connect to it. Hosts inside the range
//! get sessions and exchange routes through the ToR, a host outside it is refused, a host that
//! dies is removed with its routes (after its graceful-restart time when it had one), and the
//! range's limit refuses neighbours beyond it until a slot frees up.

mod common;

use common::{ip, run_speaker, status};

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use clos_bgp::config::SpeakerConfig;
use clos_bgp::driver::{SpeakerHandle, SpeakerSpec, SpeakerStatus};
use clos_testkit::peers::{Bird, Frr, Gobgp};
use clos_testkit::{
    Diagnose, NeighborSpec, Netns, PeerDaemon, SessionState, SpeakerSpec as DaemonSpec,
    wait_until_with,
};

const TIMEOUT: Duration = Duration::from_secs(60);
const RANGE: &str = "10.0.0.0/16";
const BIRD_PREFIX: &str = "198.51.100.0/24";
const FRR_PREFIX: &str = "203.0.113.0/24";

/// The ToR's config: one listen range, no peers. Hold time 6 s, so a hung host goes fast.
fn tor_spec(limit: Option<u32>) -> SpeakerSpec {
    let limit = limit.map(|l| format!(", limit: {l}")).unwrap_or_default();
    let yaml = format!(
        "asn: 65001\n\
         router_id: 10.0.1.1\n\
         listen: ['0.0.0.0:179']\n\
         hold_time: 6\n\
         policy:\n  policies:\n    all: {{ default: accept }}\n\
         listen_ranges:\n\
         \x20 - {{ prefix: {RANGE}, remote_as: external, import: all, export: all{limit} }}\n"
    );
    let config: SpeakerConfig = serde_yaml_ng::from_str(&yaml).unwrap();
    config.validate().unwrap()
}

/// Waits until the ToR's status satisfies `pred`.
fn wait_status(
    clos: &SpeakerHandle,
    daemons: &[&dyn Diagnose],
    what: &str,
    pred: impl Fn(&SpeakerStatus) -> bool,
) -> SpeakerStatus {
    wait_until_with(TIMEOUT, what, daemons, || {
        let s = status(clos);
        if pred(&s) {
            Ok(s)
        } else {
            Err(format!("{s:?}").into())
        }
    })
    .unwrap()
}

/// The addresses of the ToR's peers.
fn addresses(s: &SpeakerStatus) -> BTreeSet<IpAddr> {
    s.peers.iter().map(|p| p.address).collect()
}

/// Whether peer `address` is Established at the ToR with at least `received` routes.
fn established(s: &SpeakerStatus, address: &str, received: usize) -> bool {
    s.peers
        .iter()
        .any(|p| p.address == ip(address) && p.state == "Established" && p.received >= received)
}

/// A ToR and a host namespace joined by a veth: the ToR gets `.1`, the host `.2` of `net`
/// (`"10.0.1"`).
fn attach(tor: &Netns, net: &str) -> Netns {
    let host = Netns::new().unwrap();
    let link = tor.link_to(&host).unwrap();
    tor.add_addr(&link.local, &format!("{net}.1/24")).unwrap();
    host.add_addr(&link.remote, &format!("{net}.2/24")).unwrap();
    host
}

/// A host daemon's config: AS `asn` at `net.2`, connecting to the ToR at `net.1`.
fn host(asn: u32, net: &str, prefix: &str) -> DaemonSpec {
    let (tor, me) = (ip(&format!("{net}.1")), ip(&format!("{net}.2")));
    DaemonSpec::new(asn, format!("{net}.2").parse().unwrap())
        .neighbor(NeighborSpec::new(tor, 65001).local_address(me))
        .network(prefix.parse().unwrap())
}

/// The AS path of `prefix` at FRR.
fn frr_as_path(frr: &Frr, prefix: &str) -> String {
    let out = frr
        .vtysh(&format!("show bgp ipv4 unicast {prefix} json"))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["paths"][0]["aspath"]["string"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until `daemon` no longer has `prefix` from `neighbor`.
fn wait_withdrawn(daemon: &dyn PeerDaemon, neighbor: &str, prefix: &str) {
    wait_until_with(
        TIMEOUT,
        &format!("{} to lose {prefix}", daemon.kind()),
        &[daemon.as_diagnose()],
        || {
            let got = daemon
                .received_prefixes(ip(neighbor))
                .map_err(|e| e.to_string())?;
            if got.contains(&prefix.parse().unwrap()) {
                Err(format!("still has {got:?}").into())
            } else {
                Ok(())
            }
        },
    )
    .unwrap();
}

#[test]
fn hosts_in_the_range_peer_without_being_configured_and_leave_with_their_routes() {
    let tor = Netns::new().unwrap();
    let bird_ns = attach(&tor, "10.0.1");
    let frr_ns = attach(&tor, "10.0.2");
    let outside_ns = attach(&tor, "192.168.9");
    let bird = Bird::start(&bird_ns, &host(65002, "10.0.1", BIRD_PREFIX)).unwrap();
    let frr = Frr::start(
        &frr_ns,
        &host(65003, "10.0.2", FRR_PREFIX).graceful_restart(6),
    )
    .unwrap();
    let outside = Gobgp::start(&outside_ns, &host(65004, "192.168.9", "192.0.2.0/24")).unwrap();
    let clos = run_speaker(&tor, tor_spec(None));
    let daemons: [&dyn Diagnose; 3] = [&bird, &frr, &outside];

    // Both sessions come up although the ToR knows neither address.
    let s = wait_status(&clos, &daemons, "both hosts Established", |s| {
        established(s, "10.0.1.2", 1) && established(s, "10.0.2.2", 1)
    });
    for (address, asn) in [("10.0.1.2", 65002), ("10.0.2.2", 65003)] {
        let p = s.peers.iter().find(|p| p.address == ip(address)).unwrap();
        assert_eq!(p.remote_as, Some(asn), "{s:?}");
        assert_eq!(p.listen_range, Some(RANGE.parse().unwrap()), "{s:?}");
    }

    // Routes pass from host to host through the ToR, with its AS on the path.
    frr.wait_received(ip("10.0.2.1"), &[BIRD_PREFIX.parse().unwrap()], TIMEOUT)
        .unwrap();
    assert_eq!(frr_as_path(&frr, BIRD_PREFIX), "65001 65002");
    bird.wait_received(ip("10.0.1.1"), &[FRR_PREFIX.parse().unwrap()], TIMEOUT)
        .unwrap();

    // The host outside the range keeps trying (every 2 s) and is refused every time.
    std::thread::sleep(Duration::from_secs(6));
    let state = outside.session_state(ip("192.168.9.1")).unwrap();
    assert_ne!(state, SessionState::Established);
    let s = status(&clos);
    assert_eq!(
        addresses(&s),
        BTreeSet::from([ip("10.0.1.2"), ip("10.0.2.2")]),
        "{s:?}"
    );

    // BIRD hangs: no FIN, no keepalives. After the hold time its peer and routes are gone,
    // and FRR hears the withdrawal.
    let pid = bird.daemons()[0].pid().unwrap().to_string();
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap();
    assert!(stopped.success());
    // (birdc would hang on a stopped BIRD: no diagnostics from it.)
    wait_status(
        &clos,
        &[&frr, &outside],
        "BIRD's dynamic peer removed",
        |s| !addresses(s).contains(&ip("10.0.1.2")),
    );
    wait_withdrawn(&frr, "10.0.2.1", BIRD_PREFIX);
    bird.daemons()[0].kill();

    // FRR's bgpd dies with graceful restart (6 s): its route stays, stale, then goes with
    // the peer once the restart time is over.
    frr.daemons()
        .iter()
        .find(|d| d.name() == "bgpd")
        .unwrap()
        .kill();
    wait_status(&clos, &daemons, "FRR's route kept stale", |s| {
        s.peers
            .iter()
            .any(|p| p.address == ip("10.0.2.2") && p.state != "Established" && p.stale == 1)
    });
    let s = wait_status(&clos, &daemons, "FRR's dynamic peer removed", |s| {
        s.peers.is_empty()
    });
    assert_eq!(s.loc_rib, 0, "{s:?}");
}

#[test]
fn the_limit_refuses_neighbours_beyond_it_until_one_leaves() {
    let tor = Netns::new().unwrap();
    let bird_ns = attach(&tor, "10.0.1");
    let frr_ns = attach(&tor, "10.0.2");
    let clos = run_speaker(&tor, tor_spec(Some(1)));
    let bird = Bird::start(&bird_ns, &host(65002, "10.0.1", BIRD_PREFIX)).unwrap();
    wait_status(&clos, &[&bird], "BIRD Established", |s| {
        established(s, "10.0.1.2", 1)
    });

    // The range is full: FRR is told Cease/Connection Rejected.
    let frr = Frr::start(&frr_ns, &host(65003, "10.0.2", FRR_PREFIX)).unwrap();
    // FRR answers a NOTIFICATION in OpenSent with an FSM error of its own, which then shows as
    // its last reset: its log has what it received.
    let bgpd = frr.daemons().iter().find(|d| d.name() == "bgpd").unwrap();
    wait_until_with(TIMEOUT, "FRR to be refused", &[&frr], || {
        let log = bgpd.log_tail(100);
        if log.contains("received from neighbor 10.0.2.1 6/5 (Cease/Connection Rejected)") {
            Ok(())
        } else {
            Err(log.into())
        }
    })
    .unwrap();
    let s = status(&clos);
    assert_eq!(addresses(&s), BTreeSet::from([ip("10.0.1.2")]), "{s:?}");

    // BIRD dies (FIN, no graceful restart): its slot goes to FRR, and its route went with it.
    bird.daemons()[0].kill();
    let s = wait_status(&clos, &[&frr], "FRR Established in BIRD's place", |s| {
        established(s, "10.0.2.2", 1)
    });
    assert_eq!(addresses(&s), BTreeSet::from([ip("10.0.2.2")]), "{s:?}");
    frr.wait_established(ip("10.0.2.1"), TIMEOUT).unwrap();
    assert!(
        frr.received_prefixes(ip("10.0.2.1"))
            .unwrap()
            .iter()
            .all(|p| p.to_string() != BIRD_PREFIX)
    );
}
