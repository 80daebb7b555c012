//! Graceful restart (RFC 4724), helper side: when FRR's bgpd dies without a NOTIFICATION, we
//! keep its routes (stale) for its restart time, keep them through its return until its
//! End-of-RIB, and drop them if it does not come back in time.

mod common;

use common::{ip, run_speaker, status};

use std::net::SocketAddr;
use std::time::Duration;

use clos_bgp::driver::{PeerPolicy, PeerSpec, SpeakerHandle, SpeakerSpec, SpeakerStatus};
use clos_bgp::session::{RemoteAs, SessionConfig};
use clos_testkit::peers::Frr;
use clos_testkit::{NeighborSpec, Netns, PeerDaemon, SpeakerSpec as DaemonSpec, wait_until_with};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Waits until our view of FRR matches `pred`.
fn wait_status(clos: &SpeakerHandle, frr: &Frr, what: &str, pred: impl Fn(&SpeakerStatus) -> bool) {
    wait_until_with(TIMEOUT, what, &[frr], || {
        let s = status(clos);
        if pred(&s) {
            Ok(())
        } else {
            Err(format!("{s:?}").into())
        }
    })
    .unwrap();
}

struct Setup {
    _left: Netns,
    right: Netns,
    frr: Frr,
    clos: SpeakerHandle,
}

fn setup(restart_time: u16) -> Setup {
    let (left, right) = common::linked_pair("10.0.0.1/30", "10.0.0.2/30");
    let frr = Frr::start(
        &right,
        &DaemonSpec::new(65002, "10.0.0.2".parse().unwrap())
            .neighbor(NeighborSpec::new(ip("10.0.0.1"), 65001))
            .network("198.51.100.0/24".parse().unwrap())
            .graceful_restart(restart_time),
    )
    .unwrap();
    let mut peer = PeerSpec::new(
        ip("10.0.0.2"),
        SessionConfig::new(65001, "10.0.0.1".parse().unwrap(), RemoteAs::Exact(65002)),
    );
    peer.policy = PeerPolicy::accept_all();
    let clos = run_speaker(
        &left,
        SpeakerSpec {
            listen: vec![SocketAddr::new(ip("10.0.0.1"), 179)],
            peers: vec![peer],
            listen_ranges: Vec::new(),
            originate: vec![],
            multipath: Default::default(),
        },
    );
    wait_status(&clos, &frr, "FRR's route, not stale", |s| {
        s.peers[0].state == "Established" && s.peers[0].received == 1 && s.peers[0].stale == 0
    });
    Setup {
        _left: left,
        right,
        frr,
        clos,
    }
}

fn kill_bgpd(frr: &Frr) {
    let bgpd = frr.daemons().iter().find(|d| d.name() == "bgpd").unwrap();
    bgpd.kill();
}

#[test]
fn routes_of_a_dead_peer_are_kept_stale_then_expire() {
    let s = setup(6);
    let mut changes = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(s.clos.subscribe())
        .unwrap();
    let _snapshot = changes.try_recv().unwrap();
    kill_bgpd(&s.frr);
    wait_status(&s.clos, &s.frr, "the route kept as stale", |st| {
        st.peers[0].state != "Established" && st.peers[0].received == 1 && st.peers[0].stale == 1
    });
    // While stale, the FIB saw no withdrawal.
    assert!(
        changes.try_recv().is_err(),
        "a change reached the FIB during the stale period"
    );
    // FRR does not come back: after its restart time (6 s) the route goes.
    wait_status(
        &s.clos,
        &s.frr,
        "stale route removed after the restart time",
        |st| st.peers[0].received == 0 && st.peers[0].stale == 0,
    );
    let withdrawn = changes.try_recv().expect("the FIB hears of the removal");
    assert!(withdrawn.iter().any(|c| c.best.is_none()), "{withdrawn:?}");
}

#[test]
fn a_peer_back_in_time_refreshes_its_stale_routes() {
    let s = setup(60);
    kill_bgpd(&s.frr);
    wait_status(&s.clos, &s.frr, "the route kept as stale", |st| {
        st.peers[0].stale == 1
    });
    // A fresh FRR with the same identity and address comes back within the restart time.
    drop(s.frr);
    let frr = Frr::start(
        &s.right,
        &DaemonSpec::new(65002, "10.0.0.2".parse().unwrap())
            .neighbor(NeighborSpec::new(ip("10.0.0.1"), 65001))
            .network("198.51.100.0/24".parse().unwrap())
            .graceful_restart(60),
    )
    .unwrap();
    wait_status(
        &s.clos,
        &frr,
        "the route refreshed by the returning peer",
        |st| {
            st.peers[0].state == "Established"
                && st.peers[0].received == 1
                && st.peers[0].stale == 0
        },
    );
    frr.wait_established(ip("10.0.0.1"), TIMEOUT).unwrap();
}
