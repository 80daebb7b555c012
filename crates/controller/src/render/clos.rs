//! Configuration for `clos bgp run` (YAML) as a leaf or a spine, with the same policy as the
//! FRR rendering: every port an unnumbered eBGP session (the speaker finds the neighbour by
//! router advertisements), ECMP with relaxed AS_PATH comparison, RFC 8212 (every peer has an
//! import and an export policy), fabric ports limited to the site's prefixes, host ports to
//! exactly the host's assignment from exactly its ASN with a maximum-prefix reset counting
//! every prefix the host sends (filtered or not), BFD with
//! the site's timers, and the best routes in the kernel's main table (`fib`).

use std::fmt::Write as _;

use ipnet::IpNet;

use super::view::{HOST_MAX_PREFIX_HEADROOM, PortView, SwitchView};
use crate::error::{Error, Result};

/// FRR's datacenter default, so that failure detection without BFD is the same.
const HOLD_TIME: u16 = 9;
const MAX_PATHS: u16 = 64;

/// A YAML string: JSON's quoting is valid YAML and leaves nothing to interpretation.
fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A prefix list of `nets` (with their more-specifics when `more_specific`).
fn prefix_list(c: &mut String, name: &str, nets: &[IpNet], more_specific: bool) {
    let _ = writeln!(c, "    {}:", quoted(name));
    for n in nets {
        let le = if more_specific && n.prefix_len() < n.max_prefix_len() {
            format!(", le: {}", n.max_prefix_len())
        } else {
            String::new()
        };
        let _ = writeln!(c, "      - {{action: permit, prefix: {n}{le}}}");
    }
}

/// A policy accepting what `list` permits (nothing when the list would be empty).
fn policy(c: &mut String, name: &str, list: Option<&str>) {
    let _ = writeln!(c, "    {}:", quoted(name));
    match list {
        Some(l) => {
            let _ = writeln!(
                c,
                "      terms: [{{match: {{prefix_list: {}}}, then: accept}}]",
                quoted(l)
            );
        }
        None => c.push_str("      terms: []\n"),
    }
    c.push_str("      default: reject\n");
}

/// Renders the switch's `bgp.yaml`. The speaker needs a router id, so the switch must have an
/// IPv4 loopback in the inventory.
pub fn render(sw: &SwitchView) -> Result<String> {
    let router_id = sw.router_id.ok_or_else(|| Error::Conflict {
        detail: format!(
            "switch {} has no IPv4 loopback, which clos bgp needs as its router id",
            sw.name
        ),
        hint: "give the switch an IPv4 loopback",
    })?;
    let mut c = String::new();
    for line in sw.banner() {
        let _ = writeln!(c, "# {line}");
    }
    let _ = writeln!(c, "asn: {}\nrouter_id: {router_id}", sw.asn);
    let _ = writeln!(c, "hold_time: {HOLD_TIME}");
    let _ = writeln!(c, "multipath: {{max_paths: {MAX_PATHS}, relax: true}}");
    c.push_str("# Best routes, with every equal path, into the main table.\nfib: {table: 254}\n");
    let bfd = sw.bfd.map(|b| {
        format!(
            "    bfd: {{interval_ms: {}, multiplier: {}}}\n",
            b.interval_ms, b.multiplier
        )
    });
    c.push_str("peers:\n");
    for port in &sw.ports {
        match port {
            PortView::Fabric { name } => {
                let _ = writeln!(c, "  - interface: {}  # fabric", quoted(name));
                c.push_str(
                    "    remote_as: external\n    import: clos-fabric\n    export: clos-fabric\n",
                );
            }
            PortView::Host {
                name,
                node,
                asn,
                prefixes,
            } => {
                let _ = writeln!(c, "  - interface: {}  # host {node}", quoted(name));
                let _ = writeln!(
                    c,
                    "    remote_as: {asn}\n    import: {}\n    export: clos-fabric",
                    quoted(&format!("clos-from-{name}"))
                );
                // Counting what the host sends, not what its filter lets through (which
                // never exceeds its assignment), as FRR's `force` and BIRD's receive limit.
                let _ = writeln!(
                    c,
                    "    max_prefixes: {}\n    max_prefixes_count: received",
                    prefixes.len() + HOST_MAX_PREFIX_HEADROOM
                );
            }
        }
        if let Some(b) = &bfd {
            c.push_str(b);
        }
    }
    if sw.ports.is_empty() {
        c.push_str("  []\n");
    }

    c.push_str("policy:\n  prefix_lists:\n");
    let mut lists = 0;
    if !sw.fabric.is_empty() {
        prefix_list(&mut c, "clos-fabric", &sw.fabric, true);
        lists += 1;
    }
    for port in &sw.ports {
        if let PortView::Host { name, prefixes, .. } = port
            && !prefixes.is_empty()
        {
            prefix_list(&mut c, &format!("clos-host-{name}"), prefixes, false);
            lists += 1;
        }
    }
    if lists == 0 {
        c.truncate(c.len() - "\n  prefix_lists:\n".len());
        c.push_str("\n  prefix_lists: {}\n");
    }
    c.push_str("  policies:\n");
    policy(
        &mut c,
        "clos-fabric",
        (!sw.fabric.is_empty()).then_some("clos-fabric"),
    );
    for port in &sw.ports {
        if let PortView::Host { name, prefixes, .. } = port {
            let list = format!("clos-host-{name}");
            policy(
                &mut c,
                &format!("clos-from-{name}"),
                (!prefixes.is_empty()).then_some(list.as_str()),
            );
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::view::fixtures;
    use clos_bgp::config::SpeakerConfig;
    use clos_bgp::rib::PrefixCount;
    use clos_model::BfdTimers;

    /// The common leaf, with BFD.
    fn leaf() -> SwitchView {
        SwitchView {
            bfd: Some(BfdTimers {
                interval_ms: 300,
                multiplier: 3,
            }),
            ..fixtures::leaf()
        }
    }

    /// Parsed and validated by the speaker itself, as `clos bgp run` would.
    fn parse(c: &str) -> SpeakerConfig {
        let cfg: SpeakerConfig = serde_yaml_ng::from_str(c).unwrap_or_else(|e| panic!("{e}\n{c}"));
        cfg.validate().unwrap_or_else(|e| panic!("{e}\n{c}"));
        cfg
    }

    #[test]
    fn leaf_is_a_valid_speaker_config_with_the_fabric_policy() {
        let c = render(&leaf()).unwrap();
        let cfg = parse(&c);
        assert_eq!(cfg.asn, 4_200_000_001);
        assert_eq!(cfg.router_id.to_string(), "10.254.0.3");
        assert_eq!(cfg.hold_time, 9);
        assert_eq!(cfg.multipath.max_paths, 64);
        assert!(cfg.multipath.relax);
        assert_eq!(cfg.fib.map(|f| f.table), Some(254));
        assert_eq!(cfg.peers.len(), 4);
        let fabric = &cfg.peers[0];
        assert_eq!(fabric.interface.as_deref(), Some("swp1"));
        assert_eq!(fabric.import.as_deref(), Some("clos-fabric"));
        assert_eq!(fabric.export.as_deref(), Some("clos-fabric"));
        assert_eq!(fabric.max_prefixes, None);
        assert_eq!(fabric.bfd.map(|b| b.interval_ms), Some(300));
        let list = &cfg.policy.prefix_lists["clos-fabric"];
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].le, Some(32));
        assert_eq!(list[1].le, Some(128));
    }

    #[test]
    fn host_ports_accept_exactly_the_assignment_from_the_host_asn() {
        let c = render(&leaf()).unwrap();
        let cfg = parse(&c);
        let h1 = &cfg.peers[2];
        assert_eq!(h1.interface.as_deref(), Some("swp3"));
        assert!(c.contains("    remote_as: 4200010000\n"), "{c}");
        assert_eq!(h1.import.as_deref(), Some("clos-from-swp3"));
        assert_eq!(h1.max_prefixes, Some(19));
        assert_eq!(h1.max_prefixes_count, PrefixCount::Received);
        let list = &cfg.policy.prefix_lists["clos-host-swp3"];
        assert_eq!(
            list.iter()
                .map(|e| e.prefix.to_string())
                .collect::<Vec<_>>(),
            ["10.0.0.0/26", "10.0.1.7/32", "fd00::40/122"]
        );
        assert!(list.iter().all(|e| e.le.is_none() && e.ge.is_none()));
        // Nothing assigned: a policy without terms, which rejects everything.
        let h2 = &cfg.policy.policies["clos-from-swp4"];
        assert!(h2.terms.is_empty());
        assert!(!cfg.policy.prefix_lists.contains_key("clos-host-swp4"));
        assert_eq!(cfg.peers[3].max_prefixes, Some(16));
    }

    #[test]
    fn no_bfd_no_fabric_prefixes_and_no_loopback() {
        let mut sw = leaf();
        sw.bfd = None;
        sw.fabric.clear();
        sw.ports.truncate(1);
        let c = render(&sw).unwrap();
        let cfg = parse(&c);
        assert!(cfg.peers[0].bfd.is_none());
        assert!(cfg.policy.policies["clos-fabric"].terms.is_empty(), "{c}");
        sw.router_id = None;
        let e = render(&sw).unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
    }
}
