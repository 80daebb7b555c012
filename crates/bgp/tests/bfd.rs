//! BFD under BGP: a session with FRR, whose BFD runs at 100 ms x 3. When nftables in FRR's
//! namespace silently drops every BFD packet (the link stays up, and BGP's own keepalives
//! still flow, so the hold timer never fires), our BFD declares FRR down, our speaker closes
//! the BGP session with Cease/BFD Down and FRR's route leaves the Loc-RIB; once the drop
//! goes, all comes back.
//!
//! A side's detection time is the other side's multiplier times the interval: FRR's 3 makes
//! ours 300 ms, and our multiplier of 10 gives FRR 1 s, so it is our speaker, not FRR's BFD,
//! that closes the session.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use clos_bgp::driver::{PeerPolicy, PeerSpec, SpeakerSpec};
use clos_bgp::session::{RemoteAs, SessionConfig};
use clos_bgp::wire::Prefix;
use clos_testkit::peers::Frr;
use clos_testkit::{NeighborSpec, PeerDaemon, SpeakerSpec as DaemonSpec, wait_until_with};
use common::{block_on, ip, linked_pair, run_speaker};

const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn bfd_down_closes_the_session_and_withdraws_routes() {
    let (left, right) = linked_pair("10.0.0.1/30", "10.0.0.2/30");
    let frr = Frr::start(
        &right,
        &DaemonSpec::new(65002, "10.0.0.2".parse().unwrap())
            .neighbor(
                NeighborSpec::new(ip("10.0.0.1"), 65001)
                    .local_address(ip("10.0.0.2"))
                    .bfd(100, 3),
            )
            .network("198.51.100.0/24".parse().unwrap()),
    )
    .unwrap();
    let peer = PeerSpec {
        local_address: Some(ip("10.0.0.1")),
        policy: PeerPolicy::accept_all(),
        bfd: Some(clos_bfd::Config::new(Duration::from_millis(100), 10)),
        ..PeerSpec::new(
            ip("10.0.0.2"),
            SessionConfig::new(65001, "10.0.0.1".parse().unwrap(), RemoteAs::Exact(65002)),
        )
    };
    let clos = run_speaker(
        &left,
        SpeakerSpec {
            listen: vec![SocketAddr::new(ip("10.0.0.1"), 179)],
            peers: vec![peer],
            listen_ranges: Vec::new(),
            originate: Vec::new(),
            multipath: Default::default(),
        },
    );
    let theirs: Prefix = "198.51.100.0/24".parse().unwrap();
    let status = || block_on(clos.status()).map_err(|e| e.to_string());
    // FRR's bgpd installs its BFD session again, now with the interface, once the BGP session
    // is up (the old one goes down, which may close that first BGP session): wait until our
    // BFD runs with that final session.
    let frr_bfd_id = || -> Option<u64> {
        let out = frr.vtysh("show bfd peers json").ok()?;
        let peers: serde_json::Value = serde_json::from_str(&out).ok()?;
        peers.as_array()?.iter().find_map(|p| {
            let ours = p.get("peer")?.as_str()? == "10.0.0.1"
                && p.get("interface").is_some()
                && p.get("status")?.as_str()? == "up";
            ours.then(|| p.get("id")?.as_u64()).flatten()
        })
    };
    let up = |what: &str| {
        wait_until_with(TIMEOUT, what, &[frr.as_diagnose()], || {
            let p = status()?.peers.remove(0);
            let bfd = p.bfd.clone().ok_or("no BFD status")?;
            let settled = frr_bfd_id() == Some(u64::from(bfd.remote_discr));
            if p.state == "Established" && p.received == 1 && bfd.state == "Up" && settled {
                Ok(bfd)
            } else {
                Err(format!("{p:?}").into())
            }
        })
        .unwrap()
    };
    let before = up("the session with FRR's route, and BFD Up");
    let bfd_notifications = || {
        let log = std::fs::read_to_string(frr.dir().join("bgpd.log")).unwrap_or_default();
        log.matches("received from neighbor 10.0.0.1 6/10 (Cease/BFD Down)")
            .count()
    };
    let notifications_before = bfd_notifications();
    let mut changes = block_on(clos.subscribe()).unwrap();
    // BFD goes silent both ways.
    right
        .exec(
            "nft",
            &["add table inet clos_test; \
               add chain inet clos_test in { type filter hook input priority 0; }; \
               add chain inet clos_test out { type filter hook output priority 0; }; \
               add rule inet clos_test in udp dport 3784 drop; \
               add rule inet clos_test out udp dport 3784 drop"],
        )
        .unwrap();
    wait_until_with(
        TIMEOUT,
        "FRR's route to be withdrawn from the Loc-RIB",
        &[frr.as_diagnose()],
        || {
            while let Ok(batch) = changes.try_recv() {
                if batch.iter().any(|c| c.prefix == theirs && c.best.is_none()) {
                    return Ok(());
                }
            }
            Err(format!("{:?}", status()?.peers[0]).into())
        },
    )
    .unwrap();
    let p = status().unwrap().peers.remove(0);
    let bfd = p.bfd.clone().unwrap();
    assert_eq!(bfd.downs, before.downs + 1, "{p:?}");
    assert_eq!(bfd.diag, "control detection time expired", "{p:?}");
    assert_ne!(p.state, "Established", "{p:?}");
    // Our speaker closed the session because of BFD, and told FRR why.
    assert_eq!(bfd.resets, before.resets + 1, "{p:?}");
    wait_until_with(
        TIMEOUT,
        "FRR to log our Cease/BFD Down",
        &[frr.as_diagnose()],
        || {
            if bfd_notifications() > notifications_before {
                Ok(())
            } else {
                Err("none yet".into())
            }
        },
    )
    .unwrap();
    right.exec("nft", &["delete table inet clos_test"]).unwrap();
    up("the session and FRR's route back");
    frr.check_running().unwrap();
}
