//! The test kit's own proof: real daemons peer across a veth between two namespaces, and
//! nothing is left behind when a test panics or its process is killed.

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use clos_testkit::peers::{Bird, Frr};
use clos_testkit::{BgpSpeaker, NeighborSpec, Netns, PeerDaemon, SpeakerSpec};
use ipnet::IpNet;

const TIMEOUT: Duration = Duration::from_secs(60);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Two namespaces joined by a veth, 10.0.0.1/30 on the left and 10.0.0.2/30 on the right.
fn pair() -> (Netns, Netns) {
    let left = Netns::new().unwrap();
    let right = Netns::new().unwrap();
    let link = left.link_to(&right).unwrap();
    left.add_addr(&link.local, "10.0.0.1/30").unwrap();
    right.add_addr(&link.remote, "10.0.0.2/30").unwrap();
    (left, right)
}

fn spec(asn: u32, me: &str, peer: &str, peer_as: u32, network: &str) -> SpeakerSpec {
    SpeakerSpec::new(asn, me.parse().unwrap())
        .neighbor(NeighborSpec::new(ip(peer), peer_as).local_address(ip(me)))
        .network(net(network))
}

/// Starts `left_kind` and `right_kind` on a veth pair and checks both sessions come up and each
/// side receives the other's prefix.
fn peer_and_exchange(left_kind: BgpSpeaker, right_kind: BgpSpeaker) {
    let (left_ns, right_ns) = pair();
    let left = left_kind
        .start(
            &left_ns,
            &spec(65001, "10.0.0.1", "10.0.0.2", 65002, "192.0.2.0/24"),
        )
        .unwrap();
    let right = right_kind
        .start(
            &right_ns,
            &spec(65002, "10.0.0.2", "10.0.0.1", 65001, "198.51.100.0/24"),
        )
        .unwrap();

    left.wait_established(ip("10.0.0.2"), TIMEOUT).unwrap();
    right.wait_established(ip("10.0.0.1"), TIMEOUT).unwrap();
    let got = right
        .wait_received(ip("10.0.0.1"), &[net("192.0.2.0/24")], TIMEOUT)
        .unwrap();
    assert!(
        !got.contains(&net("198.51.100.0/24")),
        "own prefix echoed back: {got:?}"
    );
    left.wait_received(ip("10.0.0.2"), &[net("198.51.100.0/24")], TIMEOUT)
        .unwrap();
}

#[test]
fn bird_and_gobgp_exchange_prefixes() {
    peer_and_exchange(BgpSpeaker::Bird, BgpSpeaker::Gobgp);
}

#[test]
fn frr_and_bird_exchange_prefixes() {
    peer_and_exchange(BgpSpeaker::Frr, BgpSpeaker::Bird);
}

#[test]
fn openbgpd_and_frr_exchange_prefixes() {
    peer_and_exchange(BgpSpeaker::Openbgpd, BgpSpeaker::Frr);
}

#[test]
fn exabgp_and_bird_exchange_prefixes() {
    peer_and_exchange(BgpSpeaker::Exabgp, BgpSpeaker::Bird);
}

#[test]
fn a_failed_wait_shows_state_and_log() {
    let (left_ns, _right_ns) = pair();
    // Nobody listens on the right, so the session can never come up.
    let bird = BgpSpeaker::Bird
        .start(
            &left_ns,
            &spec(65001, "10.0.0.1", "10.0.0.2", 65002, "192.0.2.0/24"),
        )
        .unwrap();
    let err = bird
        .wait_established(ip("10.0.0.2"), Duration::from_secs(2))
        .unwrap_err()
        .to_string();
    assert!(err.contains("timed out after 2s"), "{err}");
    assert!(err.contains("last observed state"), "{err}");
    assert!(
        err.contains("state Active") || err.contains("state Connect"),
        "{err}"
    );
    assert!(err.contains("birdc show protocols"), "{err}");
    assert!(err.contains("log of bird"), "{err}");
}

fn netns_exists(name: &str) -> bool {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

/// Alive and not a zombie: an orphan killed by the sweep may wait for init to reap it.
fn process_exists(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
            != Some("Z")
    })
}

#[test]
fn panicking_test_leaves_nothing_behind() {
    let mut seen = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (left, right) = pair();
        let frr = Frr::start(
            &left,
            &spec(65001, "10.0.0.1", "10.0.0.2", 65002, "192.0.2.0/24"),
        )
        .unwrap();
        let bird = Bird::start(
            &right,
            &spec(65002, "10.0.0.2", "10.0.0.1", 65001, "198.51.100.0/24"),
        )
        .unwrap();
        let pids: Vec<u32> = frr
            .daemons()
            .iter()
            .chain(bird.daemons())
            .filter_map(|d| d.pid())
            .collect();
        assert_eq!(pids.len(), 4, "zebra, bgpd, bfdd and bird");
        let dir = frr.dir().to_owned();
        seen = Some((left.name().to_owned(), right.name().to_owned(), pids, dir));
        panic!("deliberate failure inside a namespace test");
    }));
    assert!(result.is_err());
    let (left, right, pids, dir) = seen.unwrap();
    assert!(!netns_exists(&left), "{left} left behind");
    assert!(!netns_exists(&right), "{right} left behind");
    for pid in pids {
        assert!(!process_exists(pid), "daemon {pid} left running");
    }
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn killed_run_is_swept() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clos-testkit"))
        .arg("hold")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let mut parts = line.split_whitespace();
    let ns = parts.next().unwrap().to_owned();
    let sleeper: u32 = parts.next().unwrap().parse().unwrap();
    assert!(
        netns_exists(&ns) && process_exists(sleeper),
        "hold did not set up: {line}"
    );

    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    assert!(
        netns_exists(&ns),
        "namespace should survive a SIGKILL of its owner"
    );

    let swept = clos_testkit::sweep::sweep();
    assert!(swept.namespaces.contains(&ns), "{swept:?}");
    assert!(!netns_exists(&ns));
    assert!(
        !process_exists(sleeper),
        "process inside the leaked namespace survived the sweep"
    );
}
