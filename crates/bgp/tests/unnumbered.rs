//! Unnumbered peering against FRR: two namespaces joined by a veth that has no configured
//! address at all, only the kernel's IPv6 link-local ones. FRR runs `neighbor IFNAME interface
//! remote-as external`; our speaker has an interface peer. Each side finds the other through
//! Router Advertisements, the session comes up between the link-local addresses, and IPv4
//! routes travel with IPv6 link-local next hops (RFC 8950).

mod common;

use common::{block_on, run_speaker};

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use clos_bgp::driver::{
    PeerAddress, PeerPolicy, PeerSpec, Speaker, SpeakerHandle, SpeakerSpec, SpeakerStatus,
};
use clos_bgp::session::{RemoteAs, SessionConfig};
use clos_bgp::wire::Prefix;
use clos_testkit::peers::Frr;
use clos_testkit::{Link, Netns, PeerDaemon, Retry, wait_until, wait_until_with};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);
const OURS_V4: &str = "192.0.2.0/24";
const OURS_V6: &str = "2001:db8:1::/48";
const FRRS_V4: &str = "198.51.100.0/24";
const FRRS_V6: &str = "2001:db8:100::/48";

/// The kernel's link-local address on `dev`, once duplicate address detection is done.
fn link_local(ns: &Netns, dev: &str) -> Ipv6Addr {
    wait_until(
        TIMEOUT,
        &format!("a usable link-local address on {dev}"),
        || {
            let out = ns
                .ip(&["-6", "-o", "addr", "show", "dev", dev, "scope", "link"])
                .map_err(|e| e.to_string())?;
            let line = out.lines().next().ok_or("no link-local address yet")?;
            if line.contains("tentative") {
                return Err(format!("still tentative: {line}").into());
            }
            let cidr = line
                .split_whitespace()
                .skip_while(|w| *w != "inet6")
                .nth(1)
                .ok_or_else(|| format!("cannot parse {line:?}"))?;
            let addr = cidr.split('/').next().unwrap_or(cidr);
            addr.parse()
                .map_err(|_| Retry::Again(format!("bad address in {line:?}")))
        },
    )
    .unwrap()
}

fn frr_config(ifname: &str) -> String {
    format!(
        "frr defaults datacenter
router bgp 65002
 bgp router-id 10.0.0.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {ifname} interface remote-as external
 neighbor {ifname} timers connect 2
 address-family ipv4 unicast
  network {FRRS_V4}
 exit-address-family
 address-family ipv6 unicast
  network {FRRS_V6}
  neighbor {ifname} activate
 exit-address-family
"
    )
}

fn vtysh_json(frr: &Frr, command: &str) -> Result<Value, Retry> {
    let out = frr.vtysh(command).map_err(Retry::Fail)?;
    serde_json::from_str(&out).map_err(|e| Retry::Again(format!("{command}: {e}: {out}")))
}

/// The next-hop addresses of FRR's best path for `prefix` (`afi` is ipv4 or ipv6).
fn frr_next_hops(frr: &Frr, afi: &str, prefix: &str) -> Result<Vec<Value>, Retry> {
    let v = vtysh_json(frr, &format!("show bgp {afi} unicast {prefix} json"))?;
    let paths = v
        .get("paths")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| format!("no path for {prefix}: {v}"))?;
    Ok(paths[0]
        .get("nexthops")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// Our speaker on `link.local` in `left` with an interface peer, accepting connections on
/// `[::]:179` when `listen`.
fn start_clos(left: &Netns, link: &Link, listen: bool) -> SpeakerHandle {
    run_speaker(
        left,
        SpeakerSpec {
            listen: if listen {
                vec![SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 179)]
            } else {
                Vec::new()
            },
            peers: vec![PeerSpec {
                address: PeerAddress::Interface(link.local.clone()),
                port: 179,
                local_address: None,
                password: None,
                ttl_security: false,
                policy: PeerPolicy::accept_all(),
                session: SessionConfig::new(65001, "10.0.0.1".parse().unwrap(), RemoteAs::External),
                bfd: None,
            }],
            listen_ranges: Vec::new(),
            originate: vec![OURS_V4.parse::<Prefix>().unwrap(), OURS_V6.parse().unwrap()],
            multipath: Default::default(),
        },
    )
}

fn wait_frr_established(frr: &Frr, ifname: &str) {
    wait_until_with(
        TIMEOUT,
        "FRR's session on the interface to be Established",
        &[frr.as_diagnose()],
        || {
            let v = vtysh_json(frr, "show bgp neighbors json")?;
            let state = v.get(ifname).and_then(|n| n.get("bgpState"));
            if state.and_then(Value::as_str) == Some("Established") {
                Ok(())
            } else {
                Err(format!("state {state:?}").into())
            }
        },
    )
    .unwrap();
}

/// Waits until our session is Established with `neighbor` and has received FRR's prefixes.
fn wait_clos_received(
    clos: &SpeakerHandle,
    frr: &Frr,
    neighbor: Ipv6Addr,
    timeout: Duration,
) -> SpeakerStatus {
    wait_until_with(
        timeout,
        &format!("clos to receive FRR's prefixes from {neighbor}"),
        &[frr.as_diagnose()],
        || {
            let status = block_on(clos.status())
                .map_err(|e| Retry::Fail(clos_testkit::Error::Unsupported(e.to_string())))?;
            let peer = &status.peers[0];
            if peer.state == "Established"
                && peer.received >= 2
                && peer.address == IpAddr::V6(neighbor)
            {
                Ok(status)
            } else {
                Err(format!("{status:?}").into())
            }
        },
    )
    .unwrap()
}

#[test]
fn unnumbered_peering_with_frr() {
    let left = Netns::new().unwrap();
    let right = Netns::new().unwrap();
    let link = left.link_to(&right).unwrap();

    let frr = Frr::start_config(&right, &frr_config(&link.remote)).unwrap();
    let clos = start_clos(&left, &link, true);
    let ours = link_local(&left, &link.local);
    let theirs = link_local(&right, &link.remote);

    // FRR found us through our router advertisements and the session is up.
    wait_frr_established(&frr, &link.remote);

    // FRR has our IPv4 prefix with our link-local address as the next hop, and installed it.
    let hops = wait_until_with(
        TIMEOUT,
        "FRR to receive our IPv4 prefix",
        &[frr.as_diagnose()],
        || frr_next_hops(&frr, "ipv4", OURS_V4),
    )
    .unwrap();
    let hop_ips: Vec<&str> = hops
        .iter()
        .filter_map(|h| h.get("ip").and_then(Value::as_str))
        .collect();
    assert!(
        hop_ips.contains(&ours.to_string().as_str()),
        "next hops {hops:?} lack our link-local {ours}"
    );
    assert!(
        hops.iter()
            .all(|h| h.get("afi").and_then(Value::as_str) == Some("ipv6")),
        "{hops:?}"
    );
    wait_until_with(
        TIMEOUT,
        "zebra to install our IPv4 prefix",
        &[frr.as_diagnose()],
        || {
            let v = vtysh_json(&frr, &format!("show ip route {OURS_V4} json"))?;
            let installed = v
                .get(OURS_V4)
                .and_then(Value::as_array)
                .is_some_and(|routes| {
                    routes
                        .iter()
                        .any(|r| r.get("installed").and_then(Value::as_bool) == Some(true))
                });
            if installed {
                Ok(())
            } else {
                Err(format!("{v}").into())
            }
        },
    )
    .unwrap();
    let kernel = right.ip(&["route", "show", OURS_V4]).unwrap();
    assert!(
        kernel.contains(&link.remote),
        "kernel route {kernel:?} is not via the link"
    );

    // The IPv6 prefix too, with the same next hop.
    let hops = wait_until_with(
        TIMEOUT,
        "FRR to receive our IPv6 prefix",
        &[frr.as_diagnose()],
        || frr_next_hops(&frr, "ipv6", OURS_V6),
    )
    .unwrap();
    assert!(
        hops.iter()
            .any(|h| h.get("ip").and_then(Value::as_str) == Some(&ours.to_string())),
        "{hops:?}"
    );

    // We have FRR's prefixes of both families, from its link-local address.
    let status = wait_clos_received(&clos, &frr, theirs, TIMEOUT);
    assert_eq!(status.peers[0].remote_as, Some(65002));

    // Withdrawing our IPv4 prefix removes it from FRR.
    clos.withdraw(vec![OURS_V4.parse().unwrap()]).unwrap();
    wait_until_with(
        TIMEOUT,
        "FRR to drop our withdrawn prefix",
        &[frr.as_diagnose()],
        || match frr_next_hops(&frr, "ipv4", OURS_V4) {
            Err(Retry::Again(_)) => Ok(()),
            Err(fail) => Err(fail),
            Ok(hops) => Err(format!("still there via {hops:?}").into()),
        },
    )
    .unwrap();
    block_on(clos.shutdown()).unwrap();
}

/// Without a listener only our own connection can bring the session up, so it proves that we
/// learned FRR's address from its router advertisements. Then FRR's link-local address changes:
/// once the old one has been silent long enough, we follow the advertisements to the new one.
#[test]
fn connects_out_to_the_advertised_address_and_follows_a_change() {
    let left = Netns::new().unwrap();
    let right = Netns::new().unwrap();
    let link = left.link_to(&right).unwrap();

    let frr = Frr::start_config(&right, &frr_config(&link.remote)).unwrap();
    let clos = start_clos(&left, &link, false);
    let theirs = link_local(&right, &link.remote);
    wait_frr_established(&frr, &link.remote);
    wait_clos_received(&clos, &frr, theirs, TIMEOUT);

    let moved: Ipv6Addr = "fe80::beef".parse().unwrap();
    right
        .ip(&["-6", "addr", "flush", "dev", &link.remote, "scope", "link"])
        .unwrap();
    right
        .ip(&["addr", "add", "fe80::beef/64", "dev", &link.remote, "nodad"])
        .unwrap();
    // Up to NEIGHBOR_STALE (30 s) after FRR's last advertisement from the old address, plus one
    // advertisement interval, plus the reconnect.
    wait_clos_received(&clos, &frr, moved, Duration::from_secs(120));
    wait_frr_established(&frr, &link.remote);
    block_on(clos.shutdown()).unwrap();
}

#[test]
fn a_missing_interface_is_reported_by_spawn() {
    let ns = Netns::new().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    ns.spawn_thread(move || {
        let spec = SpeakerSpec {
            listen: Vec::new(),
            peers: vec![PeerSpec {
                address: PeerAddress::Interface("clos-nosuch0".into()),
                port: 179,
                local_address: None,
                password: None,
                ttl_security: false,
                policy: PeerPolicy::accept_all(),
                session: SessionConfig::new(65001, "10.0.0.1".parse().unwrap(), RemoteAs::External),
                bfd: None,
            }],
            listen_ranges: Vec::new(),
            originate: Vec::new(),
            multipath: Default::default(),
        };
        let result = block_on(Speaker::spawn(spec)).map(drop);
        tx.send(result.map_err(|e| e.to_string())).unwrap();
    })
    .unwrap();
    let err = rx.recv().unwrap().unwrap_err();
    assert!(err.contains("clos-nosuch0"), "{err}");
}
