//! GoBGP 3: gobgpd with a generated TOML config, queried through the `gobgp` CLI over its gRPC
//! API on the namespace's own loopback.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde_json::Value;

use super::{
    PeerDaemon, SessionState, SpeakerSpec, json, logs_of, parse_prefix, scratch_dir, write_file,
};
use crate::process::run;
use crate::{Daemon, Diagnose, Error, Netns, Result, Retry, wait_until};

/// The gRPC API listens on the namespace's loopback, so every instance can use the same port.
const API: &str = "127.0.0.1:50051";

#[derive(Debug)]
pub struct Gobgp {
    daemons: Vec<Daemon>,
    ns: String,
    _dir: tempfile::TempDir,
}

impl Gobgp {
    /// Starts gobgpd from `spec` and originates its networks through the API.
    pub fn start(ns: &Netns, spec: &SpeakerSpec) -> Result<Self> {
        let gobgp = Self::start_config(ns, &render(spec))?;
        for net in &spec.networks {
            let afi = if matches!(net, IpNet::V4(_)) {
                "ipv4"
            } else {
                "ipv6"
            };
            gobgp.cli(&["global", "rib", "add", &net.to_string(), "-a", afi])?;
        }
        Ok(gobgp)
    }

    /// Starts gobgpd from a hand-written TOML config.
    pub fn start_config(ns: &Netns, config: &str) -> Result<Self> {
        let dir = scratch_dir("gobgp")?;
        let conf = dir.path().join("gobgpd.toml");
        write_file(&conf, config)?;
        let mut cmd = ns.command("gobgpd");
        cmd.arg("-f")
            .arg(&conf)
            .args(["--api-hosts", API, "--pprof-disable"]);
        let daemon = Daemon::spawn("gobgpd", cmd, &dir.path().join("gobgpd.log"))?;
        let gobgp = Gobgp {
            daemons: vec![daemon],
            ns: ns.name().to_owned(),
            _dir: dir,
        };
        wait_until(Duration::from_secs(10), "gobgpd API", || {
            gobgp.daemons[0].check_running().map_err(Retry::Fail)?;
            gobgp
                .cli(&["global"])
                .map_err(|e| Retry::Again(e.to_string()))
        })?;
        Ok(gobgp)
    }

    /// Runs the `gobgp` CLI inside the namespace with `args`.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let (host, port) = API.split_once(':').expect("API constant has a port");
        run(std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns, "gobgp", "-u", host, "-p", port])
            .args(args))
    }
}

fn render(spec: &SpeakerSpec) -> String {
    let mut c = String::new();
    let _ = writeln!(
        c,
        "[global.config]\n  as = {}\n  router-id = \"{}\"\n",
        spec.asn, spec.router_id
    );
    for n in &spec.neighbors {
        let _ = writeln!(
            c,
            "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}",
            n.address, n.remote_as
        );
        if let Some(key) = &n.password {
            let _ = writeln!(c, "    auth-password = \"{key}\"");
        }
        let _ = writeln!(c, "  [neighbors.timers.config]\n    connect-retry = 2");
        c.push_str("  [neighbors.transport.config]\n");
        if let Some(port) = n.port {
            let _ = writeln!(c, "    remote-port = {port}");
        }
        if let Some(local) = n.local_address {
            let _ = writeln!(c, "    local-address = \"{local}\"");
        }
        if n.passive {
            c.push_str("    passive-mode = true\n");
        }
        let mut families = vec!["ipv4-unicast"];
        if spec.has_v6() {
            families.push("ipv6-unicast");
        }
        for family in families {
            let _ = writeln!(
                c,
                "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{family}\""
            );
        }
    }
    c
}

/// GoBGP's API enum: 1 idle, 2 connect, 3 active, 4 opensent, 5 openconfirm, 6 established.
fn state_from_code(code: i64) -> SessionState {
    match code {
        1 => SessionState::Idle,
        2 => SessionState::Connect,
        3 => SessionState::Active,
        4 => SessionState::OpenSent,
        5 => SessionState::OpenConfirm,
        6 => SessionState::Established,
        other => SessionState::Other(format!("gobgp state {other}")),
    }
}

fn parse_state(neighbors: &Value, neighbor: IpAddr) -> Result<SessionState> {
    let addr = neighbor.to_string();
    let entry = neighbors
        .as_array()
        .and_then(|ns| {
            ns.iter().find(|n| {
                n.pointer("/conf/neighbor_address").and_then(Value::as_str) == Some(addr.as_str())
            })
        })
        .ok_or_else(|| Error::parse("gobgp neighbor -j", format!("no neighbour {addr}")))?;
    // A neighbour that never left Idle reports no session_state at all.
    let code = entry
        .pointer("/state/session_state")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    Ok(state_from_code(code))
}

fn parse_rib(rib: &Value, out: &mut BTreeSet<IpNet>) -> Result<()> {
    if let Some(map) = rib.as_object() {
        for prefix in map.keys() {
            out.insert(parse_prefix("gobgp adj-in", prefix)?);
        }
    }
    Ok(())
}

impl PeerDaemon for Gobgp {
    fn kind(&self) -> &'static str {
        "gobgp"
    }

    fn session_state(&self, neighbor: IpAddr) -> Result<SessionState> {
        let out = self.cli(&["neighbor", "-j"])?;
        parse_state(&json("gobgp neighbor -j", &out)?, neighbor)
    }

    fn received_prefixes(&self, neighbor: IpAddr) -> Result<BTreeSet<IpNet>> {
        let mut out = BTreeSet::new();
        let addr = neighbor.to_string();
        for afi in ["ipv4", "ipv6"] {
            let text = self.cli(&["neighbor", &addr, "adj-in", "-a", afi, "-j"])?;
            // gobgp prints nothing at all (not `{}`) for an empty table.
            if !text.trim().is_empty() {
                parse_rib(&json("gobgp adj-in", &text)?, &mut out)?;
            }
        }
        Ok(out)
    }

    fn daemons(&self) -> &[Daemon] {
        &self.daemons
    }

    fn as_diagnose(&self) -> &dyn Diagnose {
        self
    }
}

impl Diagnose for Gobgp {
    fn diagnose(&self) -> String {
        let neighbors = self.cli(&["neighbor"]).unwrap_or_else(|e| e.to_string());
        format!(
            "--- gobgp neighbor ---\n{neighbors}\n{}",
            logs_of(&self.daemons)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Trimmed from GoBGP 3.10 `gobgp neighbor -j` and `gobgp neighbor X adj-in -j`.
    const NEIGHBORS: &str = r#"[{"conf":{"local_asn":65002,"neighbor_address":"10.0.0.1","peer_asn":65001},
      "state":{"neighbor_address":"10.0.0.1","peer_asn":65001,"session_state":6}},
      {"conf":{"neighbor_address":"10.0.0.5","peer_asn":65005},"state":{}}]"#;
    const RIB: &str = r#"{"192.0.2.0/24":[{"nlri":{"prefix":"192.0.2.0/24"},"best":false}]}"#;

    #[test]
    fn parses_state_and_routes() {
        let v: Value = serde_json::from_str(NEIGHBORS).unwrap();
        assert_eq!(
            parse_state(&v, "10.0.0.1".parse().unwrap()).unwrap(),
            SessionState::Established
        );
        assert_eq!(
            parse_state(&v, "10.0.0.5".parse().unwrap()).unwrap(),
            SessionState::Idle
        );
        assert!(parse_state(&v, "10.0.0.9".parse().unwrap()).is_err());
        let mut got = BTreeSet::new();
        parse_rib(&serde_json::from_str(RIB).unwrap(), &mut got).unwrap();
        assert_eq!(got, BTreeSet::from(["192.0.2.0/24".parse().unwrap()]));
    }
}
