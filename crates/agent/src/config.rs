//! `agent.yaml`: which node this host is, where its controller is, its uplinks. Unknown fields
//! are errors; [`AgentConfig::load`] names the offending field and says what to write.
//!
//! What the host advertises is not configured here: it comes from the controller (the node's
//! desired state), so a locally edited file cannot announce anyone else's prefix.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use clos_bgp::config::BfdSection;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, config};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The node's name at the controller.
    pub node: String,
    pub controller: ControllerSection,
    /// The agent's local state: the last desired state (served from when the controller is
    /// unreachable), local endpoints, and by default the control socket.
    pub state_dir: PathBuf,
    #[serde(default)]
    pub bgp: BgpSection,
    /// Links to the top-of-rack switches.
    pub uplinks: Vec<UplinkConfig>,
    /// The dummy interface that holds the host's own addresses.
    #[serde(default = "default_host_interface")]
    pub host_interface: String,
    /// Where `clos agent status` and `clos agent endpoint` reach the agent; default
    /// `STATE_DIR/agent.sock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_socket: Option<PathBuf>,
    /// Serve Prometheus metrics on `http://ADDR/metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds between heartbeats to the controller.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval: u64,
    /// Endpoints configured on this host (in addition to those the controller assigns and those
    /// added with `clos agent endpoint add`). Routed locally; advertised only as far as the
    /// controller's assignment covers them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointConfig>,
}

/// How to reach the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerSection {
    /// `http://192.0.2.10:8080`.
    pub url: String,
    /// The node's API token, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A file holding the token (relative paths are relative to the config file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

/// The host's BGP speaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpSection {
    /// Port to accept BGP connections on; 0 never listens (only connects out).
    #[serde(default = "default_port")]
    pub listen_port: u16,
    /// Default: the host's first IPv4 address from the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_id: Option<Ipv4Addr>,
    /// Seconds; 0 disables keepalives, otherwise at least 3.
    #[serde(default = "default_hold_time")]
    pub hold_time: u16,
    /// How long the switches keep our routes while the agent restarts (RFC 4724).
    #[serde(default = "default_restart_time")]
    pub graceful_restart_time: u16,
    /// Seconds between connection attempts to a switch.
    #[serde(default = "default_connect_retry")]
    pub connect_retry: u64,
    /// BFD for every uplink without a `bfd` of its own: `bfd: { interval_ms: 100, multiplier:
    /// 3 }`. A switch declared down by BFD has its session closed and its routes leave the
    /// FIB at once, instead of after the hold time. The switch must run BFD too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<BfdSection>,
}

impl Default for BgpSection {
    fn default() -> Self {
        BgpSection {
            listen_port: default_port(),
            router_id: None,
            hold_time: default_hold_time(),
            graceful_restart_time: default_restart_time(),
            connect_retry: default_connect_retry(),
            bfd: None,
        }
    }
}

/// One link to a top-of-rack switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UplinkConfig {
    /// The host's interface, e.g. `eth0`.
    pub interface: String,
    /// The switch's address on this link; absent peers unnumbered (IPv6 link-local, learned
    /// from the switch's Router Advertisements, as FRR's `neighbor IFNAME interface`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// The switch's ASN; default: any ASN but ours (eBGP, RFC 7938).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_as: Option<u32>,
    /// The switch's BGP port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// BFD on this uplink (overrides `bgp.bfd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<BfdSection>,
}

impl UplinkConfig {
    /// This uplink's BFD timers: its own, else the `bgp` section's.
    pub fn bfd<'a>(&'a self, bgp: &'a BgpSection) -> Option<&'a BfdSection> {
        self.bfd.as_ref().or(bgp.bfd.as_ref())
    }
}

/// An endpoint: an address behind a host-side interface (a VM's tap, a container's veth).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// The endpoint's address: a bare address, or a /32 or /128.
    pub ip: IpAddr,
    /// The host-side interface the endpoint sits behind.
    pub interface: String,
}

fn default_host_interface() -> String {
    "clos0".into()
}
fn default_heartbeat() -> u64 {
    10
}
fn default_port() -> u16 {
    179
}
fn default_hold_time() -> u16 {
    9
}
fn default_restart_time() -> u16 {
    120
}
fn default_connect_retry() -> u64 {
    2
}

/// A Linux interface name: 1-15 bytes, no `/`, blank or NUL.
pub(crate) fn check_interface(field: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 15
        || name.contains(['/', ' ', '\0', ':'])
        || name == "."
        || name == ".."
    {
        return Err(config(
            field,
            format!(
                "{name:?} is not an interface name: use 1-15 characters without '/', ':' or blanks"
            ),
        ));
    }
    Ok(())
}

/// BFD timers the speaker accepts; the error names the agent's field.
fn check_bfd(field: &str, bfd: &BfdSection) -> Result<()> {
    bfd.config(field)
        .map(|_| ())
        .map_err(|e| config(e.field, e.problem))
}

impl AgentConfig {
    /// Reads, parses and checks `path`; relative paths inside are made relative to its
    /// directory.
    pub fn load(path: &Path) -> Result<AgentConfig> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg: AgentConfig = serde_yaml_ng::from_str(&text).map_err(|e| Error::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.state_dir = base.join(&cfg.state_dir);
        if let Some(f) = &cfg.controller.token_file {
            cfg.controller.token_file = Some(base.join(f));
        }
        if let Some(s) = &cfg.control_socket {
            cfg.control_socket = Some(base.join(s));
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<()> {
        clos_model::validate_name("node", &self.node).map_err(|e| config("node", e.to_string()))?;
        let url = &self.controller.url;
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 8 {
            return Err(config(
                "controller.url",
                format!("{url:?} is not a URL: write e.g. http://192.0.2.10:8080"),
            ));
        }
        if self.controller.token.is_some() && self.controller.token_file.is_some() {
            return Err(config(
                "controller.token_file",
                "give either token or token_file, not both",
            ));
        }
        if self.uplinks.is_empty() {
            return Err(config(
                "uplinks",
                "list at least one uplink, e.g. `- interface: eth0`",
            ));
        }
        for (i, u) in self.uplinks.iter().enumerate() {
            check_interface(&format!("uplinks[{i}].interface"), &u.interface)?;
            if self.uplinks[..i].iter().any(|o| o.interface == u.interface) {
                return Err(config(
                    format!("uplinks[{i}].interface"),
                    format!("{} is listed twice", u.interface),
                ));
            }
            if u.port == 0 {
                return Err(config(format!("uplinks[{i}].port"), "must not be 0"));
            }
            if let Some(asn) = u.remote_as {
                clos_model::validate_asn("remote_as", asn)
                    .map_err(|e| config(format!("uplinks[{i}].remote_as"), e.to_string()))?;
            }
            if let Some(b) = &u.bfd {
                check_bfd(&format!("uplinks[{i}].bfd"), b)?;
            }
        }
        check_interface("host_interface", &self.host_interface)?;
        if self
            .uplinks
            .iter()
            .any(|u| u.interface == self.host_interface)
        {
            return Err(config(
                "host_interface",
                "must not be an uplink: the agent creates it as a dummy interface",
            ));
        }
        let hold = self.bgp.hold_time;
        if hold == 1 || hold == 2 {
            return Err(config("bgp.hold_time", "use 0 or at least 3 seconds"));
        }
        if self.bgp.graceful_restart_time > 4095 {
            return Err(config(
                "bgp.graceful_restart_time",
                "at most 4095 seconds (RFC 4724)",
            ));
        }
        if let Some(b) = &self.bgp.bfd {
            check_bfd("bgp.bfd", b)?;
        }
        if self.heartbeat_interval == 0 {
            return Err(config("heartbeat_interval", "must be at least 1 second"));
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            check_interface(&format!("endpoints[{i}].interface"), &e.interface)?;
        }
        Ok(())
    }

    /// The token, read from `token_file` if given.
    pub fn token(&self) -> Result<Option<String>> {
        if let Some(path) = &self.controller.token_file {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            return Ok(Some(text.trim().to_owned()));
        }
        Ok(self.controller.token.clone())
    }

    pub fn control_socket(&self) -> PathBuf {
        self.control_socket
            .clone()
            .unwrap_or_else(|| self.state_dir.join("agent.sock"))
    }

    /// The local state file.
    pub fn state_file(&self) -> PathBuf {
        self.state_dir.join("state.json")
    }
}

/// The host prefix of an address.
pub(crate) fn host_net(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<AgentConfig> {
        let cfg: AgentConfig = serde_yaml_ng::from_str(yaml).map_err(|e| Error::Parse {
            path: "agent.yaml".into(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    const MINIMAL: &str = "node: r1-h1\ncontroller: {url: 'http://10.255.0.1:8080'}\nstate_dir: /var/lib/clos\nuplinks: [{interface: eth0}, {interface: eth1}]\n";

    #[test]
    fn minimal_config_gets_defaults() {
        let cfg = parse(MINIMAL).unwrap();
        assert_eq!(cfg.bgp.listen_port, 179);
        assert_eq!(cfg.host_interface, "clos0");
        assert_eq!(cfg.control_socket(), Path::new("/var/lib/clos/agent.sock"));
        assert_eq!(cfg.uplinks[1].address, None);
    }

    #[test]
    fn mistakes_name_their_field() {
        let cases = [
            (MINIMAL.replace("r1-h1", "R1 H1"), "node"),
            (
                MINIMAL.replace("http://10.255.0.1:8080", "10.255.0.1"),
                "controller.url",
            ),
            (
                MINIMAL.replace("{interface: eth1}", "{interface: eth0}"),
                "uplinks[1].interface",
            ),
            (
                MINIMAL.replace("{interface: eth1}", "{interface: averyveryverylongname}"),
                "uplinks[1].interface",
            ),
            (
                MINIMAL.replace("[{interface: eth0}, {interface: eth1}]", "[]"),
                "uplinks",
            ),
            (format!("{MINIMAL}bgp: {{hold_time: 2}}\n"), "bgp.hold_time"),
            (format!("{MINIMAL}host_interface: eth0\n"), "host_interface"),
            (
                format!("{MINIMAL}bgp: {{bfd: {{interval_ms: 5}}}}\n"),
                "bgp.bfd.interval_ms",
            ),
            (
                MINIMAL.replace(
                    "{interface: eth1}",
                    "{interface: eth1, bfd: {multiplier: 0}}",
                ),
                "uplinks[1].bfd.multiplier",
            ),
        ];
        for (yaml, field) in cases {
            match parse(&yaml) {
                Err(Error::Config { field: f, .. }) => assert_eq!(f, field, "{yaml}"),
                other => panic!("{yaml}: expected an error on {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_fields_are_errors() {
        let e = parse(&format!("{MINIMAL}advertise: [10.0.0.0/8]\n")).unwrap_err();
        assert!(e.to_string().contains("unknown field `advertise`"), "{e}");
    }
}
