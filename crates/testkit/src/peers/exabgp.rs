//! ExaBGP 4: announces the spec's networks; its API process appends every event as one JSON line
//! to a file, which we replay to learn session state and received routes (ExaBGP has no query
//! CLI that works without named pipes). A second API process feeds it the lines tests append to
//! a commands file, so a test can announce anything at run time, malformed attributes included.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde_json::Value;

use super::{
    PeerDaemon, SessionState, SpeakerSpec, logs_of, parse_prefix, scratch_dir, write_file,
};
use crate::{Daemon, Diagnose, Error, Netns, Result};

#[derive(Debug)]
pub struct Exabgp {
    daemons: Vec<Daemon>,
    events: PathBuf,
    commands: PathBuf,
    _dir: tempfile::TempDir,
}

impl Exabgp {
    /// Starts ExaBGP from `spec`. Every neighbour needs a `local_address`, and all neighbours
    /// must share one port (ExaBGP has a single `exabgp.tcp.port`).
    pub fn start(ns: &Netns, spec: &SpeakerSpec) -> Result<Self> {
        Self::start_with(ns, spec, "")
    }

    /// Like [`Exabgp::start`], with `neighbor_lines` added to every neighbour block (for
    /// example `capability { asn4 disable; }`).
    pub fn start_with(ns: &Netns, spec: &SpeakerSpec, neighbor_lines: &str) -> Result<Self> {
        let dir = scratch_dir("exabgp")?;
        let events = dir.path().join("events.jsonl");
        // ExaBGP splits `run` on whitespace without honouring quotes, so the API process is a
        // script rather than a `sh -c` line. No `exec`: the shell must keep the stdout pipe open,
        // or ExaBGP takes its EOF for the helper's death and shuts down.
        let script = dir.path().join("events.sh");
        write_file(
            &script,
            &format!("#!/bin/sh\ncat >> '{}'\n", events.display()),
        )?;
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(|e| Error::io("chmod events.sh", e))?;
        // ExaBGP reads API commands from its processes' stdout: this one follows a file. A
        // process may only command the neighbours whose API lists it, so it gets their events
        // too, and drains them (through fd 3: a background job's stdin is /dev/null).
        let commands = dir.path().join("commands.txt");
        write_file(&commands, "")?;
        let commands_script = dir.path().join("commands.sh");
        write_file(
            &commands_script,
            &format!(
                "#!/bin/sh\nexec 3<&0\ncat <&3 >/dev/null &\nexec tail -n +1 -f '{}'\n",
                commands.display()
            ),
        )?;
        std::fs::set_permissions(
            &commands_script,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(|e| Error::io("chmod commands.sh", e))?;
        let config = render(spec, &script, &commands_script, neighbor_lines)?;
        let mut ports: Vec<u16> = spec
            .neighbors
            .iter()
            .map(|n| n.port.unwrap_or(179))
            .collect();
        ports.dedup();
        let [port] = ports[..] else {
            return Err(Error::Unsupported("neighbours on different ports".into()));
        };
        let passive_binds: Vec<String> = spec
            .neighbors
            .iter()
            .filter(|n| n.passive)
            .filter_map(|n| n.local_address.map(|a| a.to_string()))
            .collect();
        let conf = dir.path().join("exabgp.conf");
        write_file(&conf, &config)?;
        let mut cmd = ns.command("exabgp");
        cmd.arg(&conf).current_dir(dir.path());
        cmd.env("exabgp.daemon.daemonize", "false")
            .env("exabgp.daemon.user", "root")
            .env("exabgp.log.destination", "stdout")
            .env("exabgp.api.cli", "false")
            .env("exabgp.api.ack", "false")
            .env("exabgp.tcp.port", port.to_string())
            .env("exabgp.tcp.bind", passive_binds.join(" "));
        let daemon = Daemon::spawn("exabgp", cmd, &dir.path().join("exabgp.log"))?;
        Ok(Exabgp {
            daemons: vec![daemon],
            events,
            commands,
            _dir: dir,
        })
    }

    /// Hands ExaBGP one API command, such as
    /// `neighbor 10.0.0.1 announce route 192.0.2.0/24 next-hop self attribute [ 0x04 0x80 0x01 ]`
    /// (a generic attribute: type, flags, value; ExaBGP computes the length from the value).
    pub fn command(&self, line: &str) -> Result<()> {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.commands)
            .map_err(|e| Error::io("opening ExaBGP's commands file", e))?;
        writeln!(file, "{line}").map_err(|e| Error::io("writing an ExaBGP command", e))
    }

    /// Every API event so far, oldest first (state changes, UPDATEs with their parsed
    /// attributes, NOTIFICATIONs received).
    pub fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.events).unwrap_or_default();
        // A line still being written is incomplete JSON; skip it until the next poll.
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

fn render(
    spec: &SpeakerSpec,
    events_script: &Path,
    commands_script: &Path,
    neighbor_lines: &str,
) -> Result<String> {
    let mut c = String::new();
    let _ = writeln!(
        c,
        "process events {{\n  run {};\n  encoder json;\n}}",
        events_script.display()
    );
    let _ = writeln!(
        c,
        "process commands {{\n  run {};\n  encoder text;\n}}",
        commands_script.display()
    );
    for n in &spec.neighbors {
        let local = n.local_address.ok_or_else(|| {
            Error::Unsupported(format!(
                "ExaBGP neighbour {} without local_address",
                n.address
            ))
        })?;
        let _ = writeln!(c, "neighbor {} {{", n.address);
        let _ = writeln!(
            c,
            "  router-id {};\n  local-address {local};",
            spec.router_id
        );
        let _ = writeln!(c, "  local-as {};\n  peer-as {};", spec.asn, n.remote_as);
        if n.passive {
            c.push_str("  passive;\n");
        }
        if !neighbor_lines.is_empty() {
            let _ = writeln!(c, "  {neighbor_lines}");
        }
        c.push_str("  family {\n    ipv4 unicast;\n    ipv6 unicast;\n  }\n");
        c.push_str("  api {\n    processes [ events commands ];\n    neighbor-changes;\n");
        c.push_str(
            "    receive {\n      parsed;\n      update;\n      notification;\n    }\n  }\n",
        );
        c.push_str("  static {\n");
        for net in &spec.networks {
            let _ = writeln!(c, "    route {net} next-hop self;");
        }
        c.push_str("  }\n}\n");
    }
    Ok(c)
}

fn peer_of(event: &Value) -> Option<&str> {
    event
        .pointer("/neighbor/address/peer")
        .and_then(Value::as_str)
}

/// The last `state` event for `neighbor` ("up", "connected", "down").
fn replay_state(events: &[Value], neighbor: IpAddr) -> SessionState {
    let addr = neighbor.to_string();
    events
        .iter()
        .filter(|e| e.get("type").and_then(Value::as_str) == Some("state"))
        .filter(|e| peer_of(e) == Some(&addr))
        .filter_map(|e| e.pointer("/neighbor/state").and_then(Value::as_str))
        .next_back()
        .map(|s| match s {
            "up" => SessionState::Established,
            "down" => SessionState::Idle,
            other => SessionState::Other(other.to_owned()),
        })
        .unwrap_or(SessionState::Idle)
}

/// Applies announce and withdraw events from `neighbor` in order. A session going down
/// forgets everything received on it.
fn replay_routes(events: &[Value], neighbor: IpAddr) -> Result<BTreeSet<IpNet>> {
    let addr = neighbor.to_string();
    let mut rib = BTreeSet::new();
    for e in events.iter().filter(|e| peer_of(e) == Some(&addr)) {
        match e.get("type").and_then(Value::as_str) {
            Some("state")
                if e.pointer("/neighbor/state").and_then(Value::as_str) == Some("down") =>
            {
                rib.clear();
            }
            Some("update") => {
                let update = e.pointer("/neighbor/message/update");
                // announce: { "ipv4 unicast": { "<next hop>": [ { "nlri": "p" } ] } }
                if let Some(families) = update
                    .and_then(|u| u.get("announce"))
                    .and_then(Value::as_object)
                {
                    for by_nexthop in families.values().filter_map(Value::as_object) {
                        for nlri in by_nexthop.values().filter_map(Value::as_array).flatten() {
                            if let Some(p) = nlri.get("nlri").and_then(Value::as_str) {
                                rib.insert(parse_prefix("exabgp announce", p)?);
                            }
                        }
                    }
                }
                // withdraw: { "ipv4 unicast": [ { "nlri": "p" } ] }
                if let Some(families) = update
                    .and_then(|u| u.get("withdraw"))
                    .and_then(Value::as_object)
                {
                    for nlri in families.values().filter_map(Value::as_array).flatten() {
                        if let Some(p) = nlri.get("nlri").and_then(Value::as_str) {
                            rib.remove(&parse_prefix("exabgp withdraw", p)?);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(rib)
}

impl PeerDaemon for Exabgp {
    fn kind(&self) -> &'static str {
        "exabgp"
    }

    fn session_state(&self, neighbor: IpAddr) -> Result<SessionState> {
        Ok(replay_state(&self.events(), neighbor))
    }

    fn received_prefixes(&self, neighbor: IpAddr) -> Result<BTreeSet<IpNet>> {
        replay_routes(&self.events(), neighbor)
    }

    fn daemons(&self) -> &[Daemon] {
        &self.daemons
    }

    fn as_diagnose(&self) -> &dyn Diagnose {
        self
    }
}

impl Diagnose for Exabgp {
    fn diagnose(&self) -> String {
        let events = std::fs::read_to_string(&self.events).unwrap_or_default();
        let tail: Vec<&str> = events.lines().rev().take(10).collect();
        format!(
            "--- exabgp events (newest first) ---\n{}\n{}",
            tail.join("\n"),
            logs_of(&self.daemons)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shapes of ExaBGP 4.2 JSON API events (encoder json).
    const EVENTS: &str = r#"{"type":"state","neighbor":{"address":{"local":"10.0.0.2","peer":"10.0.0.1"},"state":"up"}}
{"type":"update","neighbor":{"address":{"local":"10.0.0.2","peer":"10.0.0.1"},"message":{"update":{"announce":{"ipv4 unicast":{"10.0.0.1":[{"nlri":"192.0.2.0/24"},{"nlri":"198.51.100.0/24"}]}}}}}}
{"type":"update","neighbor":{"address":{"local":"10.0.0.2","peer":"10.0.0.1"},"message":{"update":{"withdraw":{"ipv4 unicast":[{"nlri":"198.51.100.0/24"}]}}}}}"#;

    #[test]
    fn replays_state_and_routes() {
        let events: Vec<Value> = EVENTS
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let n: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(replay_state(&events, n), SessionState::Established);
        assert_eq!(
            replay_state(&events, "10.0.0.9".parse().unwrap()),
            SessionState::Idle
        );
        let got = replay_routes(&events, n).unwrap();
        assert_eq!(got, BTreeSet::from(["192.0.2.0/24".parse().unwrap()]));
    }
}
