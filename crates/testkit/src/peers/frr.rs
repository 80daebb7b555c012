//! FRR 8: zebra, bgpd and bfdd of one instance, each with its own vty socket directory, pid
//! files and logs, so that many instances run side by side in different namespaces.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ipnet::IpNet;
use serde_json::Value;

use super::{
    PeerDaemon, SessionState, SpeakerSpec, json, logs_of, parse_prefix, scratch_dir, write_file,
};
use crate::process::run;
use crate::{Daemon, Diagnose, Error, Netns, Result, Retry, wait_until};

const FRR_LIB: &str = "/usr/lib/frr";
const DAEMONS: [&str; 3] = ["zebra", "bgpd", "bfdd"];

#[derive(Debug)]
pub struct Frr {
    daemons: Vec<Daemon>,
    dir: tempfile::TempDir,
}

impl Frr {
    /// Starts FRR from `spec`.
    pub fn start(ns: &Netns, spec: &SpeakerSpec) -> Result<Self> {
        Self::start_config(ns, &render(spec))
    }

    /// Starts zebra, bgpd and bfdd, then applies `config` (integrated `frr.conf` syntax) through
    /// vtysh, which hands each command to the daemon that owns it.
    pub fn start_config(ns: &Netns, config: &str) -> Result<Self> {
        let dir = scratch_dir("frr")?;
        // The daemons drop privileges to the frr user; it must be able to create sockets here.
        run(Command::new("chown").arg("frr:frr").arg(dir.path()))?;
        let empty = dir.path().join("empty.conf");
        write_file(&empty, "")?;
        let mut frr = Frr {
            daemons: Vec::new(),
            dir,
        };
        for name in DAEMONS {
            let d = frr.dir.path();
            let mut cmd = ns.command(&format!("{FRR_LIB}/{name}"));
            cmd.args(["-u", "frr", "-g", "frr"]);
            cmd.arg("--vty_socket").arg(d);
            cmd.arg("-z").arg(d.join("zserv.api"));
            cmd.arg("-i").arg(d.join(format!("{name}.pid")));
            cmd.arg("-f").arg(&empty);
            cmd.arg("--log").arg("stdout");
            if name == "bgpd" {
                // Listen on every address: tests pick theirs per neighbour.
                cmd.args(["-p", "179"]);
            }
            let daemon = Daemon::spawn(name, cmd, &d.join(format!("{name}.log")))?;
            let socket = d.join(format!("{name}.vty"));
            frr.daemons.push(daemon);
            let daemon = frr.daemons.last().expect("just pushed");
            // zebra must be listening before the others connect to it.
            wait_until(
                Duration::from_secs(10),
                &format!("{name} vty socket"),
                || {
                    daemon.check_running().map_err(Retry::Fail)?;
                    if socket.exists() {
                        Ok(())
                    } else {
                        Err("no socket yet".into())
                    }
                },
            )?;
        }
        let conf = frr.dir.path().join("frr.conf");
        write_file(&conf, config)?;
        run(Command::new("vtysh")
            .arg("--vty_socket")
            .arg(frr.dir.path())
            .arg("-f")
            .arg(&conf))?;
        Ok(frr)
    }

    /// Runs one vtysh command (`show bgp summary`) and returns its output.
    pub fn vtysh(&self, command: &str) -> Result<String> {
        run(Command::new("vtysh")
            .arg("--vty_socket")
            .arg(self.dir.path())
            .arg("-c")
            .arg(command))
    }

    /// The directory holding this instance's sockets, configs and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn render(spec: &SpeakerSpec) -> String {
    let mut c = String::from("frr defaults datacenter\n");
    // One bfdd profile per set of BFD timers the neighbours use.
    let mut profiles: Vec<(u32, u8)> = spec.neighbors.iter().filter_map(|n| n.bfd).collect();
    profiles.sort_unstable();
    profiles.dedup();
    if !profiles.is_empty() {
        c.push_str("bfd\n");
        for (ms, mult) in &profiles {
            let _ = writeln!(
                c,
                " profile clos-{ms}x{mult}\n  transmit-interval {ms}\n  receive-interval {ms}\n  \
                 detect-multiplier {mult}\n exit"
            );
        }
        c.push_str("exit\n");
    }
    let _ = writeln!(c, "router bgp {}", spec.asn);
    let _ = writeln!(c, " bgp router-id {}", spec.router_id);
    // A test peer accepts and announces everything (RFC 8212 would otherwise block eBGP).
    c.push_str(" no bgp ebgp-requires-policy\n no bgp network import-check\n");
    if let Some(t) = spec.graceful_restart {
        let _ = writeln!(
            c,
            " bgp graceful-restart\n bgp graceful-restart restart-time {t}"
        );
    }
    for n in &spec.neighbors {
        let _ = writeln!(c, " neighbor {} remote-as {}", n.address, n.remote_as);
        if let Some(port) = n.port {
            let _ = writeln!(c, " neighbor {} port {port}", n.address);
        }
        if let Some(local) = n.local_address {
            let _ = writeln!(c, " neighbor {} update-source {local}", n.address);
        }
        if n.passive {
            let _ = writeln!(c, " neighbor {} passive", n.address);
        }
        if let Some(key) = &n.password {
            let _ = writeln!(c, " neighbor {} password {key}", n.address);
        }
        if n.ttl_security {
            let _ = writeln!(c, " neighbor {} ttl-security hops 1", n.address);
        }
        if let Some((ms, mult)) = n.bfd {
            let _ = writeln!(c, " neighbor {} bfd", n.address);
            let _ = writeln!(c, " neighbor {} bfd profile clos-{ms}x{mult}", n.address);
        }
        let _ = writeln!(c, " neighbor {} timers connect 2", n.address);
    }
    for (family, v6) in [("ipv4", false), ("ipv6", true)] {
        let _ = writeln!(c, " address-family {family} unicast");
        for net in spec
            .networks
            .iter()
            .filter(|n| matches!(n, IpNet::V6(_)) == v6)
        {
            let _ = writeln!(c, "  network {net}");
        }
        for n in &spec.neighbors {
            let _ = writeln!(c, "  neighbor {} activate", n.address);
        }
        c.push_str(" exit-address-family\n");
    }
    c
}

fn parse_state(neighbors: &Value, neighbor: IpAddr) -> Result<SessionState> {
    let state = neighbors
        .get(neighbor.to_string())
        .and_then(|n| n.get("bgpState"))
        .and_then(Value::as_str)
        .ok_or_else(|| Error::parse("vtysh show bgp neighbors json", format!("no {neighbor}")))?;
    Ok(SessionState::from_name(state))
}

/// Prefixes in `show bgp <afi> unicast json` with a path whose `peerId` is `neighbor`.
fn parse_routes(table: &Value, neighbor: IpAddr, out: &mut BTreeSet<IpNet>) -> Result<()> {
    let Some(routes) = table.get("routes").and_then(Value::as_object) else {
        return Ok(()); // no routes at all: FRR prints `{}`
    };
    let peer = neighbor.to_string();
    for (prefix, paths) in routes {
        let from_peer = paths.as_array().is_some_and(|ps| {
            ps.iter()
                .any(|p| p.get("peerId").and_then(Value::as_str) == Some(&peer))
        });
        if from_peer {
            out.insert(parse_prefix("vtysh show bgp json", prefix)?);
        }
    }
    Ok(())
}

impl PeerDaemon for Frr {
    fn kind(&self) -> &'static str {
        "frr"
    }

    fn session_state(&self, neighbor: IpAddr) -> Result<SessionState> {
        let out = self.vtysh("show bgp neighbors json")?;
        parse_state(&json("vtysh show bgp neighbors json", &out)?, neighbor)
    }

    fn received_prefixes(&self, neighbor: IpAddr) -> Result<BTreeSet<IpNet>> {
        let mut out = BTreeSet::new();
        for afi in ["ipv4", "ipv6"] {
            let text = self.vtysh(&format!("show bgp {afi} unicast json"))?;
            parse_routes(&json("vtysh show bgp json", &text)?, neighbor, &mut out)?;
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

impl Diagnose for Frr {
    fn diagnose(&self) -> String {
        let summary = self
            .vtysh("show bgp summary")
            .unwrap_or_else(|e| e.to_string());
        format!(
            "--- vtysh show bgp summary ---\n{summary}\n{}",
            logs_of(&self.daemons)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Trimmed from FRR 8.4.4 `show bgp neighbors json` and `show bgp ipv4 unicast json`.
    const NEIGHBORS: &str = r#"{"10.0.0.2":{"remoteAs":65002,"bgpState":"Established"}}"#;
    const ROUTES: &str = r#"{"routerId":"1.1.1.1","routes":{
      "192.0.2.0/24":[{"valid":true,"peerId":"(unspec)","path":""}],
      "198.51.100.0/24":[{"valid":true,"peerId":"10.0.0.2","path":"65002"}]}}"#;

    #[test]
    fn renders_bfd_profiles() {
        let n = |a: &str| crate::NeighborSpec::new(a.parse().unwrap(), 65001);
        let spec = SpeakerSpec::new(65002, "2.2.2.2".parse().unwrap())
            .neighbor(n("10.0.0.1").bfd(100, 3))
            .neighbor(n("10.0.0.5").bfd(100, 3))
            .neighbor(n("10.0.0.9"));
        let conf = render(&spec);
        let profiles = conf.lines().filter(|l| *l == " profile clos-100x3").count();
        assert_eq!(profiles, 1, "{conf}");
        assert!(conf.contains("  detect-multiplier 3\n"), "{conf}");
        assert!(
            conf.contains(" neighbor 10.0.0.5 bfd profile clos-100x3\n"),
            "{conf}"
        );
        assert!(!conf.contains("neighbor 10.0.0.9 bfd"), "{conf}");
    }

    #[test]
    fn parses_state_and_routes() {
        let n: IpAddr = "10.0.0.2".parse().unwrap();
        let v: Value = serde_json::from_str(NEIGHBORS).unwrap();
        assert_eq!(parse_state(&v, n).unwrap(), SessionState::Established);
        assert!(parse_state(&v, "10.9.9.9".parse().unwrap()).is_err());
        let mut got = BTreeSet::new();
        parse_routes(&serde_json::from_str(ROUTES).unwrap(), n, &mut got).unwrap();
        assert_eq!(got, BTreeSet::from(["198.51.100.0/24".parse().unwrap()]));
    }
}
