//! FRR configuration (integrated `frr.conf` syntax, FRR 8) for a leaf or a spine.
//!
//! The design follows RFC 7938 and the Rakuten talk:
//!
//! * eBGP unnumbered on every port (`neighbor PORT interface`, RFC 8950 next hops), ECMP
//!   (`maximum-paths`) with `bgp bestpath as-path multipath-relax`.
//! * RFC 8212: `bgp ebgp-requires-policy`, and every neighbour has an explicit policy both
//!   ways, so nothing flows that the controller did not describe.
//! * Fabric ports (leaf to spine, spine to leaf) carry only prefixes inside the site's pools
//!   and address ranges (`CLOS-FABRIC`), never a default route.
//! * Every host-facing port accepts exactly the prefixes the controller assigned to that
//!   host (its desired state's advertisements) from exactly the host's ASN, and shuts the
//!   session down when the host sends more than [`HOST_MAX_PREFIX_HEADROOM`] prefixes beyond
//!   its assignment (`maximum-prefix ... force` counts what was received, not what policy
//!   let through), so a host with root cannot hijack or flood the fabric.

use std::fmt::Write as _;

use ipnet::IpNet;

use super::view::{HOST_MAX_PREFIX_HEADROOM, PortView, SwitchView, is_v6};

/// The FRR BFD profile of the site's timers.
const BFD_PROFILE: &str = "clos";

const FAMILIES: [(&str, &str, bool); 2] = [("ipv4", "ip", false), ("ipv6", "ipv6", true)];

/// `ip prefix-list NAME`: exact entries (`le` = false) or entries with their more-specifics,
/// closed by an explicit deny so the list exists even when it is empty.
fn prefix_list(c: &mut String, keyword: &str, name: &str, nets: &[&IpNet], more_specific: bool) {
    let mut seq = 5;
    for net in nets {
        let le = if more_specific && net.prefix_len() < net.max_prefix_len() {
            format!(" le {}", net.max_prefix_len())
        } else {
            String::new()
        };
        let _ = writeln!(c, "{keyword} prefix-list {name} seq {seq} permit {net}{le}");
        seq += 5;
    }
    let any = if keyword == "ip" {
        "0.0.0.0/0 le 32"
    } else {
        "::/0 le 128"
    };
    let _ = writeln!(c, "{keyword} prefix-list {name} seq {seq} deny {any}");
}

/// A route-map permitting what one of two prefix lists (IPv4, IPv6) permits; the rest is
/// denied by the route-map's implicit deny.
fn route_map(c: &mut String, name: &str, list4: &str, list6: &str) {
    let _ = writeln!(
        c,
        "route-map {name} permit 10\n match ip address prefix-list {list4}\nexit"
    );
    let _ = writeln!(
        c,
        "route-map {name} permit 20\n match ipv6 address prefix-list {list6}\nexit"
    );
}

/// Names of a host port's prefix lists and route-map.
fn host_names(node: &str) -> (String, String, String) {
    (
        format!("CLOS-HOST-{node}"),
        format!("CLOS-HOST6-{node}"),
        format!("CLOS-FROM-{node}"),
    )
}

/// Renders the switch's `frr.conf`.
pub fn render(sw: &SwitchView) -> String {
    let mut c = String::new();
    for line in sw.banner() {
        let _ = writeln!(c, "! {line}");
    }
    c.push_str("frr defaults datacenter\n");
    let _ = writeln!(c, "hostname {}", sw.name);
    c.push_str("service integrated-vtysh-config\n!\n");

    // Prefix lists and route-maps.
    let fabric4: Vec<&IpNet> = sw.fabric.iter().filter(|n| !is_v6(n)).collect();
    let fabric6: Vec<&IpNet> = sw.fabric.iter().filter(|n| is_v6(n)).collect();
    prefix_list(&mut c, "ip", "CLOS-FABRIC", &fabric4, true);
    prefix_list(&mut c, "ipv6", "CLOS-FABRIC6", &fabric6, true);
    for port in &sw.ports {
        if let PortView::Host { node, prefixes, .. } = port {
            let (l4, l6, _) = host_names(node);
            let p4: Vec<&IpNet> = prefixes.iter().filter(|n| !is_v6(n)).collect();
            let p6: Vec<&IpNet> = prefixes.iter().filter(|n| is_v6(n)).collect();
            prefix_list(&mut c, "ip", &l4, &p4, false);
            prefix_list(&mut c, "ipv6", &l6, &p6, false);
        }
    }
    c.push_str("!\n");
    route_map(&mut c, "CLOS-FABRIC", "CLOS-FABRIC", "CLOS-FABRIC6");
    for port in &sw.ports {
        if let PortView::Host { node, .. } = port {
            let (l4, l6, rm) = host_names(node);
            route_map(&mut c, &rm, &l4, &l6);
        }
    }
    c.push_str("!\n");

    // One BFD profile for every session, so the site's timers live in one place.
    if let Some(b) = &sw.bfd {
        let _ = writeln!(
            c,
            "bfd\n profile {BFD_PROFILE}\n  detect-multiplier {}\n  receive-interval {}\n  transmit-interval {}\n exit\nexit\n!",
            b.multiplier, b.interval_ms, b.interval_ms
        );
    }

    // The BGP instance.
    let _ = writeln!(c, "router bgp {}", sw.asn);
    match sw.router_id {
        Some(id) => {
            let _ = writeln!(c, " bgp router-id {id}");
        }
        None => c.push_str(" ! no IPv4 loopback in the inventory: FRR picks the router-id\n"),
    }
    c.push_str(" bgp log-neighbor-changes\n");
    c.push_str(" bgp ebgp-requires-policy\n");
    c.push_str(" bgp bestpath as-path multipath-relax\n");
    let fabric_ports: Vec<&PortView> = sw
        .ports
        .iter()
        .filter(|p| matches!(p, PortView::Fabric { .. }))
        .collect();
    c.push_str(" neighbor CLOS-FABRIC peer-group\n");
    c.push_str(" neighbor CLOS-FABRIC remote-as external\n");
    if sw.bfd.is_some() {
        let _ = writeln!(c, " neighbor CLOS-FABRIC bfd profile {BFD_PROFILE}");
    }
    for p in &fabric_ports {
        let _ = writeln!(c, " neighbor {} interface peer-group CLOS-FABRIC", p.name());
    }
    for port in &sw.ports {
        if let PortView::Host {
            name, node, asn, ..
        } = port
        {
            let _ = writeln!(c, " neighbor {name} interface remote-as {asn}");
            let _ = writeln!(c, " neighbor {name} description host {node}");
            if sw.bfd.is_some() {
                let _ = writeln!(c, " neighbor {name} bfd profile {BFD_PROFILE}");
            }
        }
    }
    for (afi, _, v6) in FAMILIES {
        let _ = writeln!(c, " !\n address-family {afi} unicast");
        c.push_str("  maximum-paths 64\n");
        c.push_str("  neighbor CLOS-FABRIC activate\n");
        c.push_str("  neighbor CLOS-FABRIC route-map CLOS-FABRIC in\n");
        c.push_str("  neighbor CLOS-FABRIC route-map CLOS-FABRIC out\n");
        for port in &sw.ports {
            if let PortView::Host {
                name,
                node,
                prefixes,
                ..
            } = port
            {
                let (_, _, rm) = host_names(node);
                let assigned = prefixes.iter().filter(|n| is_v6(n) == v6).count();
                let limit = assigned + HOST_MAX_PREFIX_HEADROOM;
                let _ = writeln!(c, "  neighbor {name} activate");
                let _ = writeln!(c, "  neighbor {name} route-map {rm} in");
                let _ = writeln!(c, "  neighbor {name} route-map CLOS-FABRIC out");
                // `force` counts filtered routes only where FRR keeps them: with soft
                // reconfiguration inbound (a host's few routes).
                let _ = writeln!(c, "  neighbor {name} soft-reconfiguration inbound");
                let _ = writeln!(c, "  neighbor {name} maximum-prefix {limit} force");
            }
        }
        c.push_str(" exit-address-family\n");
    }
    c.push_str("exit\n!\n");
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::view::fixtures::{leaf, nets};
    use clos_model::{BfdTimers, SwitchRole};

    fn lines(c: &str) -> Vec<&str> {
        c.lines().map(str::trim_end).collect()
    }

    #[test]
    fn leaf_peers_unnumbered_with_ecmp_and_rfc8212() {
        let c = render(&leaf());
        let l = lines(&c);
        for want in [
            "router bgp 4200000001",
            " bgp router-id 10.254.0.3",
            " bgp ebgp-requires-policy",
            " bgp bestpath as-path multipath-relax",
            " neighbor CLOS-FABRIC remote-as external",
            " neighbor swp1 interface peer-group CLOS-FABRIC",
            " neighbor swp2 interface peer-group CLOS-FABRIC",
            " neighbor swp3 interface remote-as 4200010000",
            " neighbor swp4 interface remote-as 4200010001",
            "  maximum-paths 64",
        ] {
            assert!(l.contains(&want), "missing {want:?} in\n{c}");
        }
        assert!(!c.contains("no bgp ebgp-requires-policy"), "{c}");
        // Both families have the policies on every neighbour.
        assert_eq!(
            l.iter()
                .filter(|x| **x == "  neighbor CLOS-FABRIC route-map CLOS-FABRIC in")
                .count(),
            2
        );
        assert_eq!(
            l.iter()
                .filter(|x| **x == "  neighbor swp3 route-map CLOS-FROM-r1-h1 in")
                .count(),
            2
        );
    }

    #[test]
    fn host_ports_accept_exactly_the_assignment() {
        let c = render(&leaf());
        let l = lines(&c);
        for want in [
            "ip prefix-list CLOS-HOST-r1-h1 seq 5 permit 10.0.0.0/26",
            "ip prefix-list CLOS-HOST-r1-h1 seq 10 permit 10.0.1.7/32",
            "ip prefix-list CLOS-HOST-r1-h1 seq 15 deny 0.0.0.0/0 le 32",
            "ipv6 prefix-list CLOS-HOST6-r1-h1 seq 5 permit fd00::40/122",
            "ipv6 prefix-list CLOS-HOST6-r1-h1 seq 10 deny ::/0 le 128",
            // A host with nothing assigned gets lists that deny everything.
            "ip prefix-list CLOS-HOST-r1-h2 seq 5 deny 0.0.0.0/0 le 32",
            "ipv6 prefix-list CLOS-HOST6-r1-h2 seq 5 deny ::/0 le 128",
            "route-map CLOS-FROM-r1-h1 permit 10",
            " match ip address prefix-list CLOS-HOST-r1-h1",
            " match ipv6 address prefix-list CLOS-HOST6-r1-h1",
        ] {
            assert!(l.contains(&want), "missing {want:?} in\n{c}");
        }
        // No host list entry has `le`/`ge`: a more-specific of a block is not accepted.
        assert!(
            !l.iter().any(|x| x.starts_with("ip prefix-list CLOS-HOST-")
                && x.contains("permit")
                && x.contains(" le ")),
            "{c}"
        );
        // Max-prefix: assignment plus headroom, per family, counting received routes, which
        // FRR can only do for routes it keeps.
        assert_eq!(
            l.iter()
                .filter(|x| **x == "  neighbor swp3 soft-reconfiguration inbound")
                .count(),
            2
        );
        assert!(
            l.contains(&"  neighbor swp3 maximum-prefix 18 force"),
            "{c}"
        );
        assert!(
            l.contains(&"  neighbor swp3 maximum-prefix 17 force"),
            "{c}"
        );
        assert!(
            l.contains(&"  neighbor swp4 maximum-prefix 16 force"),
            "{c}"
        );
    }

    #[test]
    fn fabric_list_takes_more_specifics_of_the_site_only() {
        let c = render(&leaf());
        let l = lines(&c);
        assert!(l.contains(&"ip prefix-list CLOS-FABRIC seq 5 permit 10.0.0.0/16 le 32"));
        assert!(l.contains(&"ipv6 prefix-list CLOS-FABRIC6 seq 5 permit fd00::/48 le 128"));
        assert!(l.contains(&"ip prefix-list CLOS-FABRIC seq 10 deny 0.0.0.0/0 le 32"));
        // A default route is never permitted anywhere.
        assert!(!l.iter().any(|x| x.contains("permit 0.0.0.0/0")), "{c}");
    }

    #[test]
    fn spine_has_only_fabric_ports_and_no_router_id_without_loopback() {
        let sw = SwitchView {
            name: "s1".into(),
            role: SwitchRole::Spine,
            rack: None,
            asn: 4_200_000_000,
            router_id: None,
            fabric: nets(&["10.0.0.0/16"]),
            ports: (1..=4)
                .map(|i| PortView::Fabric {
                    name: format!("swp{i}"),
                })
                .collect(),
            bfd: None,
        };
        let c = render(&sw);
        let l = lines(&c);
        assert!(l.contains(&"router bgp 4200000000"));
        assert!(!c.contains("bgp router-id"), "{c}");
        assert!(l.contains(&" neighbor swp4 interface peer-group CLOS-FABRIC"));
        assert!(!c.contains("CLOS-FROM-"), "{c}");
        assert!(!c.contains("maximum-prefix"), "{c}");
        // An empty IPv6 fabric list still exists and denies everything.
        assert!(l.contains(&"ipv6 prefix-list CLOS-FABRIC6 seq 5 deny ::/0 le 128"));
    }

    #[test]
    fn bfd_on_every_session_only_when_the_site_asks() {
        let c = render(&leaf());
        assert!(!c.contains("bfd"), "{c}");
        let mut sw = leaf();
        sw.bfd = Some(BfdTimers {
            interval_ms: 100,
            multiplier: 3,
        });
        let c = render(&sw);
        let l = lines(&c);
        for want in [
            "bfd",
            " profile clos",
            "  detect-multiplier 3",
            "  receive-interval 100",
            "  transmit-interval 100",
            " neighbor CLOS-FABRIC bfd profile clos",
            " neighbor swp3 bfd profile clos",
            " neighbor swp4 bfd profile clos",
        ] {
            assert!(l.contains(&want), "missing {want:?} in\n{c}");
        }
        // The profile exists before a neighbour names it.
        let profile = c.find(" profile clos").unwrap();
        assert!(profile < c.find("bfd profile clos").unwrap(), "{c}");
    }

    #[test]
    fn host_route_of_full_length_has_no_le() {
        let mut sw = leaf();
        sw.fabric = nets(&["10.9.9.9/32"]);
        let c = render(&sw);
        assert!(
            c.contains("ip prefix-list CLOS-FABRIC seq 5 permit 10.9.9.9/32\n"),
            "{c}"
        );
    }
}
