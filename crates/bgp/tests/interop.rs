//! The speaker against real BGP daemons, each in its own network namespace: sessions come up,
//! our prefix reaches the daemon and the daemon's prefix reaches us.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clos_bgp::driver::{PeerSpec, Speaker, SpeakerHandle, SpeakerSpec};
use clos_bgp::session::{RemoteAs, SessionConfig};
use clos_bgp::wire::Prefix;
use clos_testkit::{BgpSpeaker, NeighborSpec, Netns, SpeakerSpec as DaemonSpec, wait_until_with};

const TIMEOUT: Duration = Duration::from_secs(60);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Runs a speaker inside `ns` on a thread of its own; the handle works from any thread.
fn run_speaker(ns: &Netns, spec: SpeakerSpec) -> SpeakerHandle {
    let (tx, rx) = std::sync::mpsc::channel();
    ns.spawn_thread(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let handle = Speaker::spawn(spec).await;
            let keep = handle.as_ref().ok().cloned();
            tx.send(handle).unwrap();
            // Keep the runtime (and so the speaker) alive until the test process exits.
            if keep.is_some() {
                std::future::pending::<()>().await;
            }
        });
    })
    .unwrap();
    rx.recv().unwrap().unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn clos_spec() -> SpeakerSpec {
    SpeakerSpec {
        listen: vec![SocketAddr::new(ip("10.0.0.1"), 179)],
        peers: vec![PeerSpec {
            address: ip("10.0.0.2").into(),
            port: 179,
            local_address: Some(ip("10.0.0.1")),
            password: None,
            ttl_security: false,
            session: SessionConfig::new(65001, "10.0.0.1".parse().unwrap(), RemoteAs::Exact(65002)),
        }],
        originate: vec!["192.0.2.0/24".parse::<Prefix>().unwrap()],
    }
}

fn interop(kind: BgpSpeaker) {
    interop_with(kind, None, None);
}

/// Both sides run GTSM: the session comes up over a direct link.
fn gtsm(kind: BgpSpeaker) {
    let left = Netns::new().unwrap();
    let right = Netns::new().unwrap();
    let link = left.link_to(&right).unwrap();
    left.add_addr(&link.local, "10.0.0.1/30").unwrap();
    right.add_addr(&link.remote, "10.0.0.2/30").unwrap();
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
    let left = Netns::new().unwrap();
    let right = Netns::new().unwrap();
    let link = left.link_to(&right).unwrap();
    left.add_addr(&link.local, "10.0.0.1/30").unwrap();
    right.add_addr(&link.remote, "10.0.0.2/30").unwrap();

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
