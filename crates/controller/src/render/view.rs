//! What a renderer needs to know about one switch, resolved from the inventory by
//! [`super::view_of`]; shared by every switch software's renderer.

use std::net::Ipv4Addr;

use clos_model::{BfdTimers, SwitchRole};
use ipnet::IpNet;

/// Prefixes a host may send beyond its assignment before its leaf resets the session.
pub const HOST_MAX_PREFIX_HEADROOM: usize = 16;

/// Everything the renderer needs about one switch, resolved from the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchView {
    pub name: String,
    pub role: SwitchRole,
    pub rack: Option<String>,
    pub asn: u32,
    /// The BGP router id; without it the switch software picks one of its IPv4 addresses.
    pub router_id: Option<Ipv4Addr>,
    /// Prefixes allowed between switches (and from the fabric to hosts), each with its
    /// more-specifics: the site's address ranges and pools.
    pub fabric: Vec<IpNet>,
    pub ports: Vec<PortView>,
    /// BFD on every session (the site's timers); needs the switch's BFD daemon running.
    pub bfd: Option<BfdTimers>,
}

/// One port and what is on its other end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortView {
    /// Another switch of the fabric (a spine seen from a leaf, a leaf seen from a spine).
    Fabric { name: String },
    /// A host: its node name, its ASN and the prefixes it may announce.
    Host {
        name: String,
        node: String,
        asn: u32,
        prefixes: Vec<IpNet>,
    },
}

impl PortView {
    pub fn name(&self) -> &str {
        match self {
            PortView::Fabric { name } | PortView::Host { name, .. } => name,
        }
    }
}

/// Whether `net` is IPv6 (renderers keep the families apart).
pub(crate) fn is_v6(net: &IpNet) -> bool {
    matches!(net, IpNet::V6(_))
}

impl SwitchView {
    /// The first lines of every rendering, without comment markers: what this is and that it
    /// must not be edited by hand.
    pub(crate) fn banner(&self) -> [String; 2] {
        let role = match self.role {
            SwitchRole::Leaf => "leaf",
            SwitchRole::Spine => "spine",
        };
        let rack = self
            .rack
            .as_ref()
            .map(|r| format!(" (rack {r})"))
            .unwrap_or_default();
        [
            format!(
                "{role} {}{rack}: rendered by the Clos controller from its inventory.",
                self.name
            ),
            "Do not edit: change the inventory and render again.".to_string(),
        ]
    }
}

/// The switch every renderer's tests start from.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    /// A leaf with two fabric ports and two hosts, one with IPv4 and IPv6 prefixes, one with
    /// nothing assigned.
    pub fn leaf() -> SwitchView {
        SwitchView {
            name: "r1-l1".into(),
            role: SwitchRole::Leaf,
            rack: Some("r1".into()),
            asn: 4_200_000_001,
            router_id: Some("10.254.0.3".parse().unwrap()),
            fabric: nets(&["10.0.0.0/16", "fd00::/48"]),
            ports: vec![
                PortView::Fabric {
                    name: "swp1".into(),
                },
                PortView::Fabric {
                    name: "swp2".into(),
                },
                PortView::Host {
                    name: "swp3".into(),
                    node: "r1-h1".into(),
                    asn: 4_200_010_000,
                    prefixes: nets(&["10.0.0.0/26", "10.0.1.7/32", "fd00::40/122"]),
                },
                PortView::Host {
                    name: "swp4".into(),
                    node: "r1-h2".into(),
                    asn: 4_200_010_001,
                    prefixes: vec![],
                },
            ],
            bfd: None,
        }
    }
}
