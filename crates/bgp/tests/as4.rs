//! A neighbour without the 4-octet AS capability (RFC 6793): ExaBGP with `asn4 disable`. With a
//! 4-octet local ASN our OPEN carries AS_TRANS (ExaBGP only accepts the session expecting
//! 23456), and the paths we send carry the real numbers in AS4_PATH, which ExaBGP merges back;
//! a path ExaBGP sends with a 4-octet ASN (AS_TRANS plus AS4_PATH) is reconciled on import.

mod common;

use common::{block_on, ip, run_speaker, status};

use std::net::SocketAddr;
use std::time::Duration;

use clos_bgp::driver::{PeerPolicy, PeerSpec, SpeakerSpec};
use clos_bgp::session::{RemoteAs, SessionConfig};
use clos_testkit::peers::Exabgp;
use clos_testkit::{NeighborSpec, PeerDaemon, SpeakerSpec as DaemonSpec, wait_until_with};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);
const OURS: &str = "192.0.2.0/24";
const THEIRS: &str = "198.51.100.0/24";

/// The AS path ExaBGP holds for `prefix` (from the latest UPDATE announcing it).
fn exabgp_as_path(exa: &Exabgp, prefix: &str) -> Option<Vec<u64>> {
    exa.events().into_iter().rev().find_map(|e| {
        let update = e.pointer("/neighbor/message/update")?;
        let announced = update
            .get("announce")?
            .as_object()?
            .values()
            .filter_map(Value::as_object)
            .flat_map(|by_nh| by_nh.values().filter_map(Value::as_array).flatten())
            .any(|n| n["nlri"] == prefix);
        if !announced {
            return None;
        }
        let path = update.pointer("/attribute/as-path")?.as_array()?;
        Some(path.iter().filter_map(Value::as_u64).collect())
    })
}

fn two_octet_peer(local_as: u32) {
    let (left, right) = common::linked_pair("10.0.0.1/30", "10.0.0.2/30");
    // A 2-octet speaker knows a 4-octet neighbour as AS_TRANS.
    let seen_as = u16::try_from(local_as).map_or(23456, u32::from);
    let exa = Exabgp::start_with(
        &right,
        &DaemonSpec::new(65002, "10.0.0.2".parse().unwrap())
            .neighbor(NeighborSpec::new(ip("10.0.0.1"), seen_as).local_address(ip("10.0.0.2"))),
        "capability { asn4 disable; }",
    )
    .unwrap();
    let mut peer = PeerSpec::new(
        ip("10.0.0.2"),
        SessionConfig::new(
            local_as,
            "10.0.0.1".parse().unwrap(),
            RemoteAs::Exact(65002),
        ),
    );
    peer.policy = PeerPolicy::accept_all();
    let clos = run_speaker(
        &left,
        SpeakerSpec {
            listen: vec![SocketAddr::new(ip("10.0.0.1"), 179)],
            peers: vec![peer],
            listen_ranges: Vec::new(),
            originate: vec![OURS.parse().unwrap()],
            multipath: Default::default(),
        },
    );
    exa.wait_established(ip("10.0.0.1"), TIMEOUT).unwrap();

    // What ExaBGP sees of our route: our real AS, whatever the size.
    let path = wait_until_with(TIMEOUT, "ExaBGP to receive our route", &[&exa], || {
        exabgp_as_path(&exa, OURS).ok_or_else(|| "not yet".into())
    })
    .unwrap();
    assert_eq!(path, vec![u64::from(local_as)]);

    // What we learn from ExaBGP: a path through a 4-octet AS, sent as AS_TRANS in AS_PATH and
    // the real number in AS4_PATH.
    exa.command(&format!(
        "neighbor 10.0.0.1 announce route {THEIRS} next-hop 10.0.0.2 as-path [ 65002 4200000099 ]"
    ))
    .unwrap();
    let learned = wait_until_with(TIMEOUT, "ExaBGP's route", &[&exa], || {
        let routes = block_on(clos.routes(None))
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        routes
            .into_iter()
            .find(|r| r.prefix == THEIRS)
            .ok_or_else(|| "not yet".into())
    })
    .unwrap();
    assert_eq!(learned.as_path, "65002 4200000099", "{learned:?}");
    let s = status(&clos);
    assert_eq!(s.peers[0].remote_as, Some(65002), "{s:?}");
    assert_eq!(s.peers[0].state, "Established", "{s:?}");
}

#[test]
fn two_octet_peer_with_a_two_octet_local_as() {
    two_octet_peer(65001);
}

#[test]
fn two_octet_peer_with_a_four_octet_local_as() {
    two_octet_peer(4_200_000_001);
}
