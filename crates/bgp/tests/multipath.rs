//! The `multipath` section of the speaker's config: BIRD (AS 65002) and FRR (AS 65003) both
//! announce one anycast prefix to our speaker. By default (relax on, up to 8 paths) both are
//! next hops; `max_paths: 1` keeps one; `relax: false` keeps one too, since the two AS_PATHs
//! differ.

mod common;

use common::{block_on, ip, run_speaker, status};

use std::time::Duration;

use clos_bgp::config::SpeakerConfig;
use clos_testkit::peers::{Bird, Frr};
use clos_testkit::{NeighborSpec, Netns, SpeakerSpec as DaemonSpec, wait_until_with};

const TIMEOUT: Duration = Duration::from_secs(60);
const ANYCAST: &str = "203.0.113.0/24";

/// The next hops of the anycast prefix in our Loc-RIB once both neighbours sent it.
fn anycast_next_hops(multipath: &str) -> Vec<String> {
    let mid = Netns::new().unwrap();
    let bird_ns = Netns::new().unwrap();
    let frr_ns = Netns::new().unwrap();
    let a = mid.link_to(&bird_ns).unwrap();
    let b = mid.link_to(&frr_ns).unwrap();
    mid.add_addr(&a.local, "10.0.1.1/30").unwrap();
    bird_ns.add_addr(&a.remote, "10.0.1.2/30").unwrap();
    mid.add_addr(&b.local, "10.0.2.1/30").unwrap();
    frr_ns.add_addr(&b.remote, "10.0.2.2/30").unwrap();
    let bird = Bird::start(
        &bird_ns,
        &DaemonSpec::new(65002, "10.0.1.2".parse().unwrap())
            .neighbor(NeighborSpec::new(ip("10.0.1.1"), 65001))
            .network(ANYCAST.parse().unwrap()),
    )
    .unwrap();
    let frr = Frr::start(
        &frr_ns,
        &DaemonSpec::new(65003, "10.0.2.2".parse().unwrap())
            .neighbor(NeighborSpec::new(ip("10.0.2.1"), 65001))
            .network(ANYCAST.parse().unwrap()),
    )
    .unwrap();
    let yaml = format!(
        "asn: 65001\nrouter_id: 10.0.1.1\nlisten: []\n{multipath}\
         policy:\n  policies:\n    all: {{ default: accept }}\n\
         peers:\n\
         \x20 - {{ address: 10.0.1.2, remote_as: 65002, import: all, export: all }}\n\
         \x20 - {{ address: 10.0.2.2, remote_as: 65003, import: all, export: all }}\n"
    );
    let cfg: SpeakerConfig = serde_yaml_ng::from_str(&yaml).unwrap();
    let clos = run_speaker(&mid, cfg.validate().unwrap());
    // Both paths are in the RIB, whatever the Loc-RIB makes of them.
    wait_until_with(
        TIMEOUT,
        "the anycast prefix from both neighbours",
        &[&bird, &frr],
        || {
            let s = status(&clos);
            if s.peers.iter().all(|p| p.received == 1) {
                Ok(())
            } else {
                Err(format!("{s:?}").into())
            }
        },
    )
    .unwrap();
    let routes = block_on(clos.routes(None)).unwrap().unwrap();
    let route = routes
        .iter()
        .find(|r| r.prefix == ANYCAST)
        .unwrap_or_else(|| panic!("{routes:?}"));
    let mut hops = route.next_hops.clone();
    hops.sort();
    hops
}

#[test]
fn multipath_by_default_uses_both_neighbours() {
    assert_eq!(anycast_next_hops(""), vec!["10.0.1.2", "10.0.2.2"]);
}

#[test]
fn multipath_max_paths_1_keeps_one_next_hop() {
    let hops = anycast_next_hops("multipath: { max_paths: 1 }\n");
    assert_eq!(hops.len(), 1, "{hops:?}");
}

#[test]
fn multipath_without_relax_needs_equal_as_paths() {
    let hops = anycast_next_hops("multipath: { relax: false }\n");
    assert_eq!(hops.len(), 1, "{hops:?}");
}
