//! The speaker against real BGP daemons, each in its own network namespace: sessions come up,
//! our prefix reaches the daemon and the daemon's prefix reaches us.

mod common;

use common::{block_on, ip, run_speaker};

use std::net::SocketAddr;
use std::time::Duration;

use clos_bgp::driver::{PeerPolicy, PeerSpec, SpeakerSpec};
use clos_bgp::session::{RemoteAs, SessionConfig};
use clos_bgp::wire::Prefix;
use clos_testkit::{
    BgpSpeaker, NeighborSpec, Netns, PeerDaemon, SpeakerSpec as DaemonSpec, wait_until_with,
};

const TIMEOUT: Duration = Duration::from_secs(60);

fn clos_spec() -> SpeakerSpec {
    SpeakerSpec {
        listen: vec![SocketAddr::new(ip("10.0.0.1"), 179)],
        peers: vec![PeerSpec {
            address: ip("10.0.0.2").into(),
            port: 179,
            local_address: Some(ip("10.0.0.1")),
            password: None,
            ttl_security: false,
            policy: PeerPolicy::accept_all(),
            session: SessionConfig::new(65001, "10.0.0.1".parse().unwrap(), RemoteAs::Exact(65002)),
            bfd: None,
        }],
        listen_ranges: Vec::new(),
        originate: vec!["192.0.2.0/24".parse::<Prefix>().unwrap()],
        multipath: Default::default(),
    }
}

fn interop(kind: BgpSpeaker) {
    interop_with(kind, None, None);
}

/// Both sides run GTSM: the session comes up over a direct link.
fn gtsm(kind: BgpSpeaker) {
    let (left, right) = common::linked_pair("10.0.0.1/30", "10.0.0.2/30");
    let neighbor = NeighborSpec::new(ip("10.0.0.1"), 65001)
        .local_address(ip("10.0.0.2"))
        .ttl_security();
    let daemon = kind
        .start(
            &right,
            &DaemonSpec::new(65002, "10.0.0.2".parse().unwrap()).neighbor(neighbor),
        )
        .unwrap();
    let mut spec = clos_spec();
    spec.peers[0].ttl_security = true;
    let _clos = run_speaker(&left, spec);
    daemon.wait_established(ip("10.0.0.1"), TIMEOUT).unwrap();
    daemon
        .wait_received(ip("10.0.0.1"), &["192.0.2.0/24".parse().unwrap()], TIMEOUT)
        .unwrap();
}

/// `ours` and `theirs` are the TCP-MD5 keys each side uses (`None`: no key).
fn interop_with(kind: BgpSpeaker, ours: Option<&str>, theirs: Option<&str>) {
    let (left, right) = common::linked_pair("10.0.0.1/30", "10.0.0.2/30");

    let mut neighbor = NeighborSpec::new(ip("10.0.0.1"), 65001).local_address(ip("10.0.0.2"));
    if let Some(key) = theirs {
        neighbor = neighbor.password(key);
    }
    let daemon = kind
        .start(
            &right,
            &DaemonSpec::new(65002, "10.0.0.2".parse().unwrap())
                .neighbor(neighbor)
                .network("198.51.100.0/24".parse().unwrap()),
        )
        .unwrap();
    let mut spec = clos_spec();
    spec.peers[0].password = ours.map(str::to_owned);
    let clos = run_speaker(&left, spec);

    if ours != theirs {
        // Mismatched or missing keys: the kernel drops every segment, nothing comes up.
        let err = daemon.wait_established(ip("10.0.0.1"), Duration::from_secs(8));
        assert!(err.is_err(), "session came up with mismatched TCP-MD5 keys");
        let status = block_on(clos.status()).unwrap();
        assert_ne!(status.peers[0].state, "Established");
        return;
    }

    daemon.wait_established(ip("10.0.0.1"), TIMEOUT).unwrap();
    daemon
        .wait_received(ip("10.0.0.1"), &["192.0.2.0/24".parse().unwrap()], TIMEOUT)
        .unwrap();
    let status = wait_until_with(
        TIMEOUT,
        "clos to receive the daemon's prefix",
        &[daemon.as_diagnose()],
        || {
            let status = block_on(clos.status()).map_err(|e| {
                clos_testkit::Retry::Fail(clos_testkit::Error::Unsupported(e.to_string()))
            })?;
            let peer = &status.peers[0];
            if peer.state == "Established" && peer.received >= 1 {
                Ok(status)
            } else {
                Err(format!("{status:?}").into())
            }
        },
    )
    .unwrap();
    assert_eq!(status.peers[0].remote_as, Some(65002));

    // Withdrawing our prefix removes it from the daemon.
    clos.withdraw(vec!["192.0.2.0/24".parse().unwrap()])
        .unwrap();
    wait_until_with(
        TIMEOUT,
        "the daemon to drop our withdrawn prefix",
        &[daemon.as_diagnose()],
        || {
            let got = daemon
                .received_prefixes(ip("10.0.0.1"))
                .map_err(|e| e.to_string())?;
            if got.is_empty() {
                Ok(())
            } else {
                Err(format!("still has {got:?}").into())
            }
        },
    )
    .unwrap();
    block_on(clos.shutdown()).unwrap();
}

#[test]
fn interop_with_bird() {
    interop(BgpSpeaker::Bird);
}

#[test]
fn interop_with_frr() {
    interop(BgpSpeaker::Frr);
}

#[test]
fn interop_with_gobgp() {
    interop(BgpSpeaker::Gobgp);
}

#[test]
fn interop_with_openbgpd() {
    interop(BgpSpeaker::Openbgpd);
}

#[test]
fn tcp_md5_with_frr() {
    interop_with(BgpSpeaker::Frr, Some("s3cret"), Some("s3cret"));
}

#[test]
fn tcp_md5_with_bird() {
    interop_with(BgpSpeaker::Bird, Some("s3cret"), Some("s3cret"));
}

#[test]
fn tcp_md5_mismatch_keeps_the_session_down() {
    interop_with(BgpSpeaker::Bird, Some("s3cret"), Some("other"));
}

#[test]
fn tcp_md5_missing_on_our_side_keeps_the_session_down() {
    interop_with(BgpSpeaker::Frr, None, Some("s3cret"));
}

#[test]
fn gtsm_with_frr() {
    gtsm(BgpSpeaker::Frr);
}

#[test]
fn gtsm_with_bird() {
    gtsm(BgpSpeaker::Bird);
}

/// No import or export policy on an eBGP session: nothing in, nothing out (RFC 8212).
#[test]
fn rfc8212_without_policy_nothing_passes() {
    let (left, right) = common::linked_pair("10.0.0.1/30", "10.0.0.2/30");
    let daemon = BgpSpeaker::Frr
        .start(
            &right,
            &DaemonSpec::new(65002, "10.0.0.2".parse().unwrap())
                .neighbor(NeighborSpec::new(ip("10.0.0.1"), 65001))
                .network("198.51.100.0/24".parse().unwrap()),
        )
        .unwrap();
    let mut spec = clos_spec();
    spec.peers[0].policy = PeerPolicy::default();
    let clos = run_speaker(&left, spec);
    daemon.wait_established(ip("10.0.0.1"), TIMEOUT).unwrap();
    // FRR sends its prefix and End-of-RIB right away; give both sides time to act on them.
    std::thread::sleep(Duration::from_secs(3));
    let status = block_on(clos.status()).unwrap();
    assert_eq!(status.peers[0].state, "Established");
    assert_eq!(status.peers[0].received, 0, "{status:?}");
    assert_eq!(status.peers[0].advertised, 0, "{status:?}");
    assert!(daemon.received_prefixes(ip("10.0.0.1")).unwrap().is_empty());
}

/// BIRD and FRR on two sides of our speaker: routes pass through with our AS prepended, and
/// a prefix both announce gets both next hops in the Loc-RIB (multipath, as a host with two
/// ToRs needs).
#[test]
fn transit_and_multipath_between_bird_and_frr() {
    let mid = Netns::new().unwrap();
    let bird_ns = Netns::new().unwrap();
    let frr_ns = Netns::new().unwrap();
    let a = mid.link_to(&bird_ns).unwrap();
    let b = mid.link_to(&frr_ns).unwrap();
    mid.add_addr(&a.local, "10.0.1.1/30").unwrap();
    bird_ns.add_addr(&a.remote, "10.0.1.2/30").unwrap();
    mid.add_addr(&b.local, "10.0.2.1/30").unwrap();
    frr_ns.add_addr(&b.remote, "10.0.2.2/30").unwrap();
    let anycast = "203.0.113.0/24";
    let bird = BgpSpeaker::Bird
        .start(
            &bird_ns,
            &DaemonSpec::new(65002, "10.0.1.2".parse().unwrap())
                .neighbor(NeighborSpec::new(ip("10.0.1.1"), 65001))
                .network("198.51.100.0/24".parse().unwrap())
                .network(anycast.parse().unwrap()),
        )
        .unwrap();
    let frr = clos_testkit::peers::Frr::start(
        &frr_ns,
        &DaemonSpec::new(65003, "10.0.2.2".parse().unwrap())
            .neighbor(NeighborSpec::new(ip("10.0.2.1"), 65001))
            .network(anycast.parse().unwrap()),
    )
    .unwrap();
    let session = || SessionConfig::new(65001, "10.0.1.1".parse().unwrap(), RemoteAs::External);
    let mut to_bird = PeerSpec::new(ip("10.0.1.2"), session());
    to_bird.policy = PeerPolicy::accept_all();
    let mut to_frr = PeerSpec::new(ip("10.0.2.2"), session());
    to_frr.policy = PeerPolicy::accept_all();
    let clos = run_speaker(
        &mid,
        SpeakerSpec {
            listen: vec![],
            peers: vec![to_bird, to_frr],
            listen_ranges: Vec::new(),
            originate: vec![],
            multipath: Default::default(),
        },
    );

    frr.wait_received(
        ip("10.0.2.1"),
        &["198.51.100.0/24".parse().unwrap()],
        TIMEOUT,
    )
    .unwrap();
    let path = frr
        .vtysh("show bgp ipv4 unicast 198.51.100.0/24 json")
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&path).unwrap();
    let as_path = v["paths"][0]["aspath"]["string"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(as_path, "65001 65002", "{path}");
    // Split horizon: BIRD does not get its own prefix back, but gets nothing it sent either.
    let back = bird.received_prefixes(ip("10.0.1.1")).unwrap();
    assert!(
        !back.contains(&"198.51.100.0/24".parse().unwrap()),
        "{back:?}"
    );

    // Each subscription starts with the whole Loc-RIB: poll with fresh ones.
    let nexthops = wait_until_with(TIMEOUT, "two next hops for the anycast prefix", &[], || {
        let mut changes = block_on(clos.subscribe()).map_err(|e| e.to_string())?;
        let snapshot = block_on(changes.recv()).ok_or("subscription closed")?;
        match snapshot.iter().find(|c| c.prefix.to_string() == anycast) {
            Some(c) if c.multipath.len() == 2 => Ok(c.multipath.clone()),
            other => Err(format!("{other:?}").into()),
        }
    })
    .unwrap();
    let mut hops: Vec<String> = nexthops
        .iter()
        .map(|h| format!("{:?}", h.next_hop))
        .collect();
    hops.sort();
    assert_eq!(hops, vec!["10.0.1.2", "10.0.2.2"]);
}

/// More routes than the peer's maximum: we reset the session with Cease/Maximum Number of
/// Prefixes Reached, and FRR hears exactly that.
#[test]
fn max_prefix_resets_the_session_with_cease() {
    let (left, right) = common::linked_pair("10.0.0.1/30", "10.0.0.2/30");
    let mut daemon = DaemonSpec::new(65002, "10.0.0.2".parse().unwrap())
        .neighbor(NeighborSpec::new(ip("10.0.0.1"), 65001));
    for i in 0..3 {
        daemon = daemon.network(format!("198.51.{i}.0/24").parse().unwrap());
    }
    let frr = clos_testkit::peers::Frr::start(&right, &daemon).unwrap();
    let mut spec = clos_spec();
    spec.peers[0].policy.max_prefixes = Some(2);
    spec.peers[0].policy.max_prefix_restart = Duration::from_secs(30);
    let clos = run_speaker(&left, spec);
    wait_until_with(TIMEOUT, "FRR to receive our Cease", &[&frr], || {
        let out = frr
            .vtysh("show bgp neighbors 10.0.0.1")
            .map_err(|e| e.to_string())?;
        if out.contains("Maximum Number of Prefixes Reached") {
            Ok(())
        } else {
            Err(out.into())
        }
    })
    .unwrap();
    // We stay down for the restart time instead of flapping.
    let status = block_on(clos.status()).unwrap();
    assert_eq!(status.peers[0].state, "Idle", "{status:?}");
    assert_eq!(
        status.peers[0].received, 0,
        "routes of a reset peer are dropped"
    );
}

/// An IPv6 session: IPv6 prefixes both ways (MP_REACH_NLRI with IPv6 next hops).
#[test]
fn ipv6_session_with_frr() {
    let (left, right) = common::linked_pair("2001:db8:1::1/64", "2001:db8:1::2/64");
    let frr = BgpSpeaker::Frr
        .start(
            &right,
            &DaemonSpec::new(65002, "10.0.0.2".parse().unwrap())
                .neighbor(NeighborSpec::new(ip("2001:db8:1::1"), 65001))
                .network("2001:db8:ff::/48".parse().unwrap()),
        )
        .unwrap();
    let mut peer = PeerSpec::new(
        ip("2001:db8:1::2"),
        SessionConfig::new(65001, "10.0.0.1".parse().unwrap(), RemoteAs::Exact(65002)),
    );
    peer.policy = PeerPolicy::accept_all();
    let clos = run_speaker(
        &left,
        SpeakerSpec {
            listen: vec![SocketAddr::new(ip("2001:db8:1::1"), 179)],
            peers: vec![peer],
            listen_ranges: Vec::new(),
            originate: vec!["2001:db8:aa::/48".parse().unwrap()],
            multipath: Default::default(),
        },
    );
    frr.wait_received(
        ip("2001:db8:1::1"),
        &["2001:db8:aa::/48".parse().unwrap()],
        TIMEOUT,
    )
    .unwrap();
    let routes = wait_until_with(TIMEOUT, "FRR's IPv6 prefix", &[frr.as_diagnose()], || {
        let routes = block_on(clos.routes(None))
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        if routes.iter().any(|r| r.prefix == "2001:db8:ff::/48") {
            Ok(routes)
        } else {
            Err(format!("{routes:?}").into())
        }
    })
    .unwrap();
    let r = routes
        .iter()
        .find(|r| r.prefix == "2001:db8:ff::/48")
        .unwrap();
    // FRR sends its global address and, on a shared link, its link-local one (RFC 2545).
    assert_eq!(r.next_hops.len(), 1, "{r:?}");
    assert!(r.next_hops[0].starts_with("2001:db8:1::2 (fe80::"), "{r:?}");
}

/// Keepalives silently dropped (nftables, the link stays up): the hold timer expires, the
/// session goes down with Hold Timer Expired and the peer's routes leave the RIB.
#[test]
fn hold_timer_expires_when_keepalives_are_dropped() {
    let (left, right) = common::linked_pair("10.0.0.1/30", "10.0.0.2/30");
    let frr = BgpSpeaker::Frr
        .start(
            &right,
            &DaemonSpec::new(65002, "10.0.0.2".parse().unwrap())
                .neighbor(NeighborSpec::new(ip("10.0.0.1"), 65001))
                .network("198.51.100.0/24".parse().unwrap()),
        )
        .unwrap();
    let clos = run_speaker(&left, clos_spec());
    wait_until_with(
        TIMEOUT,
        "the session with FRR's route",
        &[frr.as_diagnose()],
        || {
            let s = block_on(clos.status()).map_err(|e| e.to_string())?;
            if s.peers[0].state == "Established" && s.peers[0].received == 1 {
                Ok(())
            } else {
                Err(format!("{s:?}").into())
            }
        },
    )
    .unwrap();
    left.exec(
        "nft",
        &["add table inet clos_test; \
             add chain inet clos_test in { type filter hook input priority 0; }; \
             add rule inet clos_test in tcp sport 179 drop; \
             add rule inet clos_test in tcp dport 179 drop"],
    )
    .unwrap();
    let start = std::time::Instant::now();
    wait_until_with(
        TIMEOUT,
        "the hold timer to expire",
        &[frr.as_diagnose()],
        || {
            let s = block_on(clos.status()).map_err(|e| e.to_string())?;
            if s.peers[0].state != "Established" && s.peers[0].received == 0 {
                Ok(())
            } else {
                Err(format!("{s:?}").into())
            }
        },
    )
    .unwrap();
    // Hold time 9 s (FRR's datacenter profile and ours): not before, and not much after.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(5),
        "went down after {took:?}, before the hold time"
    );
}
