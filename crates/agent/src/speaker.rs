//! The host's BGP speaker, configured from `agent.yaml` (uplinks, timers) and the node's
//! desired state (ASN, router id, the prefixes to originate).
//!
//! Policy, fixed by the agent rather than configurable, because a host must never be anything
//! but a leaf of the fabric:
//! - export: only routes we originate (the empty AS path), and we originate exactly the
//!   controller's assignment. Nothing learned from one switch is passed to another (a host is
//!   never transit), and nothing local that the controller did not assign is announced;
//! - import: everything from the switches. Our own prefixes cannot come back (eBGP loop
//!   detection drops paths with our ASN), and a hijack of one of our addresses loses to our
//!   more specific endpoint route or the local address. A filter of "our prefixes" is not
//!   used because it would go stale: a block given up and reassigned to another node must
//!   become reachable at once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use clos_bgp::config::SpeakerConfig;
use clos_bgp::driver::SpeakerSpec;
use clos_model::DesiredState;
use ipnet::IpNet;
use serde_json::json;

use crate::config::AgentConfig;
use crate::error::{Error, Result};

/// What decides the speaker's identity: a change of either means a new speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub asn: u32,
    pub router_id: Ipv4Addr,
}

impl Identity {
    pub fn of(cfg: &AgentConfig, desired: &DesiredState) -> Result<Identity> {
        let asn = desired.asn.ok_or(Error::NoAsn)?;
        let router_id = cfg.bgp.router_id.unwrap_or_else(|| router_id(desired, asn));
        Ok(Identity { asn, router_id })
    }
}

/// The host's first IPv4 host address, else its first IPv4 advertisement, else one derived
/// from the ASN (unique where it matters: each host has its own private ASN).
fn router_id(desired: &DesiredState, asn: u32) -> Ipv4Addr {
    let host = desired
        .addresses
        .iter()
        .filter(|a| a.is_host())
        .find_map(|a| match a.ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        });
    let block = desired.advertisements.iter().find_map(|n| match n {
        IpNet::V4(v4) => Some(v4.addr()),
        IpNet::V6(_) => None,
    });
    host.or(block).unwrap_or_else(|| {
        // Never 0.0.0.0 (RFC 6286 forbids it).
        Ipv4Addr::from(asn.max(1))
    })
}

/// The speaker's configuration. `restarting` sets the RFC 4724 Restart State bit: the agent
/// came back with its kernel routes in place, so the switches should keep ours until our
/// End-of-RIB.
pub fn spec(
    cfg: &AgentConfig,
    identity: Identity,
    advertisements: &[IpNet],
    restarting: bool,
) -> Result<SpeakerSpec> {
    let listen: Vec<SocketAddr> = match cfg.bgp.listen_port {
        0 => vec![],
        port => vec![SocketAddr::from(([0u16; 8], port))],
    };
    let peers: Vec<_> = cfg
        .uplinks
        .iter()
        .map(|u| {
            let remote_as = u
                .remote_as
                .map_or_else(|| json!("external"), |asn| json!(asn));
            let mut peer = json!({
                "remote_as": remote_as,
                "port": u.port,
                "import": "from-fabric",
                "export": "assigned",
            });
            match u.address {
                Some(addr) => peer["address"] = json!(addr),
                None => peer["interface"] = json!(u.interface),
            }
            if let Some(bfd) = u.bfd(&cfg.bgp) {
                peer["bfd"] = json!(bfd);
            }
            peer
        })
        .collect();
    let config = json!({
        "asn": identity.asn,
        "router_id": identity.router_id,
        "listen": listen,
        "hold_time": cfg.bgp.hold_time,
        "connect_retry": cfg.bgp.connect_retry,
        "graceful_restart": {"restart_time": cfg.bgp.graceful_restart_time},
        "originate": advertisements.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "peers": peers,
        "policy": {
            "as_path_lists": {"local": [{"action": "permit", "pattern": "^$"}]},
            "policies": {
                "assigned": {
                    "terms": [{"name": "originated-here", "match": {"as_path": "local"}, "then": "accept"}],
                    "default": "reject",
                },
                "from-fabric": {"default": "accept"},
            },
        },
    });
    let config: SpeakerConfig = serde_json::from_value(config).map_err(|e| Error::Config {
        field: "bgp".into(),
        problem: format!("cannot build the speaker's configuration: {e}"),
    })?;
    let mut spec = config.validate()?;
    if restarting {
        for p in &mut spec.peers {
            if let Some(gr) = &mut p.session.graceful_restart {
                gr.restarting = true;
            }
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clos_model::{NodeAddress, Owner, OwnerKind};

    fn cfg() -> AgentConfig {
        serde_yaml_ng::from_str(
            "node: h1\ncontroller: {url: 'http://127.0.0.1:1'}\nstate_dir: /tmp/x\nuplinks: [{interface: eth0}, {interface: eth1, address: 10.1.0.1, remote_as: 65101}]\n",
        )
        .unwrap()
    }

    #[test]
    fn builds_a_valid_speaker_from_the_assignment() {
        let desired = DesiredState {
            node: "h1".into(),
            asn: Some(4_200_000_011),
            advertisements: vec![
                "10.0.1.0/26".parse().unwrap(),
                "fd00:1::/122".parse().unwrap(),
            ],
            addresses: vec![NodeAddress {
                ip: "10.0.1.5".parse().unwrap(),
                owner: Owner::new(OwnerKind::Host, "h1"),
                subnet: None,
            }],
        };
        let id = Identity::of(&cfg(), &desired).unwrap();
        assert_eq!(id.router_id, "10.0.1.5".parse::<Ipv4Addr>().unwrap());
        let spec = spec(&cfg(), id, &desired.advertisements, true).unwrap();
        assert_eq!(spec.originate.len(), 2);
        assert_eq!(spec.peers.len(), 2);
        assert!(
            spec.peers
                .iter()
                .all(|p| p.session.graceful_restart.is_some_and(|g| g.restarting))
        );
        assert!(spec.peers[0].policy.export.is_some() && spec.peers[0].policy.import.is_some());
    }

    #[test]
    fn no_asn_is_a_clear_error() {
        let desired = DesiredState {
            node: "h1".into(),
            asn: None,
            advertisements: vec![],
            addresses: vec![],
        };
        assert!(matches!(Identity::of(&cfg(), &desired), Err(Error::NoAsn)));
        let with_asn = DesiredState {
            asn: Some(65010),
            ..desired
        };
        let id = Identity::of(&cfg(), &with_asn).unwrap();
        assert_ne!(id.router_id, Ipv4Addr::UNSPECIFIED);
        // No prefixes assigned yet: still a valid speaker that announces nothing.
        spec(&cfg(), id, &[], false).unwrap();
    }

    #[test]
    fn bfd_per_uplink_overrides_the_default() {
        let mut cfg: AgentConfig = serde_yaml_ng::from_str(
            "node: h1\ncontroller: {url: 'http://127.0.0.1:1'}\nstate_dir: /tmp/x\n\
             bgp: {bfd: {interval_ms: 100}}\n\
             uplinks: [{interface: eth0}, {interface: eth1, bfd: {interval_ms: 50, multiplier: 5}}]\n",
        )
        .unwrap();
        let desired = DesiredState {
            node: "h1".into(),
            asn: Some(65010),
            advertisements: vec![],
            addresses: vec![],
        };
        let id = Identity::of(&cfg, &desired).unwrap();
        let ms = std::time::Duration::from_millis;
        let s = spec(&cfg, id, &[], false).unwrap();
        assert_eq!(s.peers[0].bfd, Some(clos_bfd::Config::new(ms(100), 3)));
        assert_eq!(s.peers[1].bfd, Some(clos_bfd::Config::new(ms(50), 5)));
        cfg.bgp.bfd = None;
        let s = spec(&cfg, id, &[], false).unwrap();
        assert_eq!(s.peers[0].bfd, None);
    }
}
