//! BIRD 2 configuration (`bird.conf`) for a leaf or a spine, with the same policy as the FRR
//! rendering:
//!
//! * eBGP over every port's IPv6 link-local addresses, IPv4 with RFC 8950 next hops
//!   (`extended next hop`), and ECMP into the kernel (`merge paths`, which like FRR's
//!   multipath-relax merges paths whose AS_PATHs differ but have the same length).
//! * BIRD 2.0 has no neighbour discovery of its own (FRR's `neighbor IFNAME interface`), so
//!   each port is a dynamic BGP template (`neighbor range fe80::/10`) that accepts the session
//!   the other end opens, and `protocol radv` announces the port (as a router that is nobody's
//!   default) so that the other end finds the address to connect to. The other end must
//!   therefore open sessions: FRR, `clos bgp` and the Clos agent do; two BIRD switches facing
//!   each other would both wait.
//! * RFC 8212: every channel has an explicit import and export filter.
//! * Fabric ports carry only prefixes inside the site's pools and address ranges, never a
//!   default route. Every host port accepts exactly the host's assigned prefixes from exactly
//!   the host's ASN, and disables the session when the host sends more than
//!   [`HOST_MAX_PREFIX_HEADROOM`] prefixes beyond them (`receive limit`, which counts what
//!   was received, not what the filter let through).
//! * Only routes learned over BGP go into the kernel (`proto bird`); nothing is read back.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use ipnet::IpNet;

use super::view::{HOST_MAX_PREFIX_HEADROOM, PortView, SwitchView, is_v6};

/// The ECMP width written into the kernel, as FRR's `maximum-paths 64`.
const MAX_PATHS: u32 = 64;

/// FRR's datacenter defaults, so that failure detection without BFD is the same.
const HOLD_TIME: u32 = 9;
const KEEPALIVE_TIME: u32 = 3;

/// After a failure (BFD down, hold timer), BIRD waits 60 s by default before it takes the
/// session again, and refuses the neighbour meanwhile: far too slow for a fabric. Wait 1 s,
/// doubling on failures less than 60 s apart, up to 60 s (as the Clos speaker does).
const ERROR_WAIT: &str = "error wait time 1, 60;\n  error forget time 60;";

/// A BIRD symbol for `name`: letters, digits and `_`, not starting with a digit.
fn symbol(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s.insert_str(0, "p_");
    }
    s
}

/// One protocol name per port: the port's name as a symbol, made unique by its position
/// when two names map to the same symbol.
fn protocol_names(ports: &[PortView]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let s = symbol(p.name());
            if seen.insert(s.clone()) {
                s
            } else {
                let unique = format!("{s}_port{i}");
                seen.insert(unique.clone());
                unique
            }
        })
        .collect()
}

/// A filter accepting `nets` (exactly, or with their more-specifics) and rejecting the rest.
/// An empty list renders as a filter that rejects everything: BIRD has no empty set literal.
fn filter(c: &mut String, name: &str, nets: &[&IpNet], more_specific: bool) {
    let _ = writeln!(c, "filter {name} {{");
    if !nets.is_empty() {
        let items: Vec<String> = nets
            .iter()
            .map(|n| {
                if more_specific && n.prefix_len() < n.max_prefix_len() {
                    format!("{n}+")
                } else {
                    n.to_string()
                }
            })
            .collect();
        let _ = writeln!(c, "  if net ~ [ {} ] then accept;", items.join(", "));
    }
    c.push_str("  reject;\n}\n");
}

/// The names of a host port's IPv4 and IPv6 import filters.
fn host_filters(protocol: &str) -> (String, String) {
    (
        format!("clos_from_{protocol}_4"),
        format!("clos_from_{protocol}_6"),
    )
}

/// Renders the switch's `bird.conf`.
pub fn render(sw: &SwitchView) -> String {
    let mut c = String::new();
    for line in sw.banner() {
        let _ = writeln!(c, "# {line}");
    }
    match sw.router_id {
        Some(id) => {
            let _ = writeln!(c, "router id {id};");
        }
        None => c.push_str("# No IPv4 loopback in the inventory: BIRD picks the router id.\n"),
    }
    c.push_str("\nprotocol device {\n}\n\n");
    let names = protocol_names(&sw.ports);
    let ports: Vec<String> = sw
        .ports
        .iter()
        .map(|p| format!("\"{}\"", p.name()))
        .collect();
    let ports = ports.join(", ");

    // The kernel gets what BGP learned, with every equal path.
    for (proto, family) in [("kernel4", "ipv4"), ("kernel6", "ipv6")] {
        let _ = writeln!(
            c,
            "protocol kernel {proto} {{\n  {family} {{ import none; export where source = RTS_BGP; }};\n  merge paths on limit {MAX_PATHS};\n}}\n"
        );
    }
    if !sw.ports.is_empty() {
        // Lifetime 0: a router, but nobody's default router.
        let _ = writeln!(
            c,
            "# Announces every port, so the other end finds our link-local address.\nprotocol radv {{\n  ipv6 {{ import none; export none; }};\n  interface {ports} {{\n    min ra interval 3;\n    max ra interval 10;\n    default lifetime 0;\n  }};\n}}\n"
        );
    }
    if let (Some(b), false) = (&sw.bfd, sw.ports.is_empty()) {
        let _ = writeln!(
            c,
            "protocol bfd {{\n  interface {ports} {{\n    interval {} ms;\n    multiplier {};\n  }};\n}}\n",
            b.interval_ms, b.multiplier
        );
    }

    // Filters.
    let fabric4: Vec<&IpNet> = sw.fabric.iter().filter(|n| !is_v6(n)).collect();
    let fabric6: Vec<&IpNet> = sw.fabric.iter().filter(|n| is_v6(n)).collect();
    c.push_str("# The site's pools and address ranges, with their more-specifics.\n");
    filter(&mut c, "clos_fabric_4", &fabric4, true);
    filter(&mut c, "clos_fabric_6", &fabric6, true);
    for (port, name) in sw.ports.iter().zip(&names) {
        if let PortView::Host { node, prefixes, .. } = port {
            let (f4, f6) = host_filters(name);
            let p4: Vec<&IpNet> = prefixes.iter().filter(|n| !is_v6(n)).collect();
            let p6: Vec<&IpNet> = prefixes.iter().filter(|n| is_v6(n)).collect();
            let _ = writeln!(c, "# Exactly what host {node} was assigned.");
            filter(&mut c, &f4, &p4, false);
            filter(&mut c, &f6, &p6, false);
        }
    }
    c.push('\n');

    // One dynamic BGP template per port.
    let bfd = if sw.bfd.is_some() { "  bfd on;\n" } else { "" };
    for (port, name) in sw.ports.iter().zip(&names) {
        let (description, remote, import4, import6, limits) = match port {
            PortView::Fabric { name: p } => (
                format!("fabric port {p}"),
                "external".to_string(),
                "clos_fabric_4".to_string(),
                "clos_fabric_6".to_string(),
                None,
            ),
            PortView::Host {
                node,
                asn,
                prefixes,
                ..
            } => {
                let (f4, f6) = host_filters(name);
                let v4 = prefixes.iter().filter(|n| !is_v6(n)).count();
                let v6 = prefixes.len() - v4;
                (
                    format!("host {node}"),
                    format!("as {asn}"),
                    f4,
                    f6,
                    Some((v4 + HOST_MAX_PREFIX_HEADROOM, v6 + HOST_MAX_PREFIX_HEADROOM)),
                )
            }
        };
        let (limit4, limit6) = match limits {
            // BIRD counts filtered routes towards the receive limit only when it keeps them.
            Some((l4, l6)) => (
                format!(" import keep filtered on; receive limit {l4} action disable;"),
                format!(" import keep filtered on; receive limit {l6} action disable;"),
            ),
            None => (String::new(), String::new()),
        };
        let _ = writeln!(
            c,
            "protocol bgp {name} {{\n  description \"{description}\";\n  local as {asn};\n  interface \"{port}\";\n  neighbor range fe80::/10 {remote};\n  dynamic name \"{name}_\";\n  hold time {HOLD_TIME};\n  keepalive time {KEEPALIVE_TIME};\n  {ERROR_WAIT}\n{bfd}  ipv4 {{ extended next hop on; import filter {import4}; export filter clos_fabric_4;{limit4} }};\n  ipv6 {{ import filter {import6}; export filter clos_fabric_6;{limit6} }};\n}}\n",
            asn = sw.asn,
            port = port.name(),
        );
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::view::fixtures::leaf;
    use clos_model::BfdTimers;

    /// The body of `protocol bgp NAME { ... }`.
    fn protocol<'a>(c: &'a str, name: &str) -> &'a str {
        let start = c
            .find(&format!("protocol bgp {name} {{"))
            .unwrap_or_else(|| panic!("no protocol {name} in\n{c}"));
        let end = c[start..].find("\n}\n").unwrap() + start;
        &c[start..end]
    }

    #[test]
    fn fabric_port_accepts_any_external_neighbour_with_fabric_policy_both_ways() {
        let c = render(&leaf());
        let p = protocol(&c, "swp1");
        for want in [
            "  local as 4200000001;",
            "  interface \"swp1\";",
            "  neighbor range fe80::/10 external;",
            "  dynamic name \"swp1_\";",
            "  error wait time 1, 60;",
            "  ipv4 { extended next hop on; import filter clos_fabric_4; export filter clos_fabric_4; };",
            "  ipv6 { import filter clos_fabric_6; export filter clos_fabric_6; };",
        ] {
            assert!(p.lines().any(|l| l == want), "missing {want:?} in\n{p}");
        }
        assert!(!p.contains("receive limit"), "{p}");
        assert!(c.contains("router id 10.254.0.3;\n"), "{c}");
        assert!(
            c.contains(
                "filter clos_fabric_4 {\n  if net ~ [ 10.0.0.0/16+ ] then accept;\n  reject;\n}\n"
            ),
            "{c}"
        );
        assert!(
            c.contains(
                "filter clos_fabric_6 {\n  if net ~ [ fd00::/48+ ] then accept;\n  reject;\n}\n"
            ),
            "{c}"
        );
    }

    #[test]
    fn host_port_accepts_exactly_the_assignment_from_the_host_asn() {
        let c = render(&leaf());
        let p = protocol(&c, "swp3");
        for want in [
            "  description \"host r1-h1\";",
            "  neighbor range fe80::/10 as 4200010000;",
            "  ipv4 { extended next hop on; import filter clos_from_swp3_4; export filter clos_fabric_4; import keep filtered on; receive limit 18 action disable; };",
            "  ipv6 { import filter clos_from_swp3_6; export filter clos_fabric_6; import keep filtered on; receive limit 17 action disable; };",
        ] {
            assert!(p.lines().any(|l| l == want), "missing {want:?} in\n{p}");
        }
        // Exact entries only: a more-specific of the block is not accepted.
        assert!(
            c.contains("filter clos_from_swp3_4 {\n  if net ~ [ 10.0.0.0/26, 10.0.1.7/32 ] then accept;\n  reject;\n}\n"),
            "{c}"
        );
        assert!(
            c.contains("filter clos_from_swp3_6 {\n  if net ~ [ fd00::40/122 ] then accept;\n  reject;\n}\n"),
            "{c}"
        );
        // Nothing assigned: the filters reject everything.
        assert!(
            c.contains("filter clos_from_swp4_4 {\n  reject;\n}\n"),
            "{c}"
        );
        assert!(protocol(&c, "swp4").contains("receive limit 16 action disable;"));
    }

    #[test]
    fn kernel_gets_bgp_routes_with_ecmp_and_ports_are_announced() {
        let c = render(&leaf());
        assert!(
            c.contains("  ipv4 { import none; export where source = RTS_BGP; };\n  merge paths on limit 64;"),
            "{c}"
        );
        assert!(
            c.contains("  interface \"swp1\", \"swp2\", \"swp3\", \"swp4\" {\n    min ra interval 3;\n    max ra interval 10;\n    default lifetime 0;"),
            "{c}"
        );
        // A default route is never accepted anywhere.
        assert!(!c.contains("0.0.0.0/0"), "{c}");
    }

    #[test]
    fn bfd_only_when_the_site_asks() {
        let c = render(&leaf());
        assert!(!c.contains("bfd"), "{c}");
        let mut sw = leaf();
        sw.bfd = Some(BfdTimers {
            interval_ms: 100,
            multiplier: 3,
        });
        let c = render(&sw);
        assert!(
            c.contains("protocol bfd {\n  interface \"swp1\", \"swp2\", \"swp3\", \"swp4\" {\n    interval 100 ms;\n    multiplier 3;"),
            "{c}"
        );
        for p in ["swp1", "swp2", "swp3", "swp4"] {
            assert!(protocol(&c, p).contains("\n  bfd on;"), "{c}");
        }
    }

    #[test]
    fn port_names_become_unique_symbols() {
        let mut sw = leaf();
        sw.ports = ["eth-1", "eth_1", "1a"]
            .into_iter()
            .map(|n| PortView::Fabric { name: n.into() })
            .collect();
        let c = render(&sw);
        protocol(&c, "eth_1");
        protocol(&c, "eth_1_port1");
        protocol(&c, "p_1a");
        assert!(c.contains("  interface \"eth-1\";"), "{c}");
        // A spine without a loopback lets BIRD choose.
        sw.router_id = None;
        assert!(!render(&sw).contains("\nrouter id"));
    }
}
