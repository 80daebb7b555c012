//! OpenBGPD 7 (portable): bgpd in the foreground with its own control socket, queried with
//! `bgpctl -j`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ipnet::IpNet;
use serde_json::Value;

use super::{
    PeerDaemon, SessionState, SpeakerSpec, json, logs_of, parse_prefix, scratch_dir, write_file,
};
use crate::process::run;
use crate::{Daemon, Diagnose, Error, Netns, Result, Retry, wait_until};

/// bgpd's unprivileged processes chroot here (the home of the `_openbgpd` user); systemd would
/// create it, but tests start bgpd by hand.
const CHROOT: &str = "/run/openbgpd";

#[derive(Debug)]
pub struct Openbgpd {
    daemons: Vec<Daemon>,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Openbgpd {
    /// Starts bgpd from `spec`. OpenBGPD 7 cannot connect to a port other than 179.
    pub fn start(ns: &Netns, spec: &SpeakerSpec) -> Result<Self> {
        if spec.neighbors.iter().any(|n| n.port.is_some()) {
            return Err(Error::Unsupported("a neighbour port other than 179".into()));
        }
        let dir = scratch_dir("openbgpd")?;
        let socket = dir.path().join("bgpd.sock");
        let config = render(spec, &socket);
        Self::start_in(ns, dir, socket, &config)
    }

    /// Starts bgpd from a hand-written config. `config` is given the control socket path,
    /// which the config must name in its `socket` line.
    pub fn start_config(ns: &Netns, config: impl FnOnce(&str) -> String) -> Result<Self> {
        let dir = scratch_dir("openbgpd")?;
        let socket = dir.path().join("bgpd.sock");
        let config = config(&socket.to_string_lossy());
        Self::start_in(ns, dir, socket, &config)
    }

    fn start_in(ns: &Netns, dir: tempfile::TempDir, socket: PathBuf, config: &str) -> Result<Self> {
        std::fs::create_dir_all(CHROOT).map_err(|e| Error::io(format!("creating {CHROOT}"), e))?;
        let conf = dir.path().join("bgpd.conf");
        write_file(&conf, config)?;
        // bgpd refuses a config file that others can read (it may hold TCP-MD5 keys).
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io("chmod bgpd.conf", e))?;
        let mut cmd = ns.command("bgpd");
        cmd.arg("-d").arg("-f").arg(&conf);
        let daemon = Daemon::spawn("bgpd", cmd, &dir.path().join("bgpd.log"))?;
        let bgpd = Openbgpd {
            daemons: vec![daemon],
            socket,
            _dir: dir,
        };
        wait_until(Duration::from_secs(10), "OpenBGPD control socket", || {
            bgpd.daemons[0].check_running().map_err(Retry::Fail)?;
            bgpd.bgpctl(&["show"])
                .map_err(|e| Retry::Again(e.to_string()))
        })?;
        Ok(bgpd)
    }

    /// Runs `bgpctl` against this instance.
    pub fn bgpctl(&self, args: &[&str]) -> Result<String> {
        run(Command::new("bgpctl")
            .arg("-s")
            .arg(&self.socket)
            .args(args))
    }
}

fn render(spec: &SpeakerSpec, socket: &std::path::Path) -> String {
    let mut c = String::new();
    let _ = writeln!(c, "AS {}\nrouter-id {}", spec.asn, spec.router_id);
    let _ = writeln!(c, "socket \"{}\"", socket.display());
    for net in &spec.networks {
        let _ = writeln!(c, "network {net}");
    }
    for n in &spec.neighbors {
        let _ = writeln!(c, "neighbor {} {{\n  remote-as {}", n.address, n.remote_as);
        if let Some(local) = n.local_address {
            let _ = writeln!(c, "  local-address {local}");
        }
        if n.passive {
            c.push_str("  passive\n");
        }
        if let Some(key) = &n.password {
            let _ = writeln!(c, "  tcp md5sig password {key}");
        }
        if spec.has_v6() {
            c.push_str("  announce IPv4 unicast\n  announce IPv6 unicast\n");
        }
        c.push_str("}\n");
    }
    c.push_str("allow from any\nallow to any\n");
    c
}

fn parse_state(neighbors: &Value, neighbor: IpAddr) -> Result<SessionState> {
    let addr = neighbor.to_string();
    neighbors
        .get("neighbors")
        .and_then(Value::as_array)
        .and_then(|ns| {
            ns.iter()
                .find(|n| n.get("remote_addr").and_then(Value::as_str) == Some(&addr))
        })
        .and_then(|n| n.get("state").and_then(Value::as_str))
        .map(SessionState::from_name)
        .ok_or_else(|| Error::parse("bgpctl show neighbor", format!("no neighbour {addr}")))
}

fn parse_rib(rib: &Value) -> Result<BTreeSet<IpNet>> {
    let mut out = BTreeSet::new();
    for entry in rib
        .get("rib")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(prefix) = entry.get("prefix").and_then(Value::as_str) {
            out.insert(parse_prefix("bgpctl show rib", prefix)?);
        }
    }
    Ok(out)
}

impl PeerDaemon for Openbgpd {
    fn kind(&self) -> &'static str {
        "openbgpd"
    }

    fn session_state(&self, neighbor: IpAddr) -> Result<SessionState> {
        let out = self.bgpctl(&["-j", "show", "neighbor"])?;
        parse_state(&json("bgpctl show neighbor", &out)?, neighbor)
    }

    fn received_prefixes(&self, neighbor: IpAddr) -> Result<BTreeSet<IpNet>> {
        let out = self.bgpctl(&["-j", "show", "rib", "neighbor", &neighbor.to_string()])?;
        parse_rib(&json("bgpctl show rib", &out)?)
    }

    fn daemons(&self) -> &[Daemon] {
        &self.daemons
    }

    fn as_diagnose(&self) -> &dyn Diagnose {
        self
    }
}

impl Diagnose for Openbgpd {
    fn diagnose(&self) -> String {
        let summary = self.bgpctl(&["show"]).unwrap_or_else(|e| e.to_string());
        format!("--- bgpctl show ---\n{summary}\n{}", logs_of(&self.daemons))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Trimmed from OpenBGPD 7.7 `bgpctl -j show neighbor` and `bgpctl -j show rib`.
    const NEIGHBORS: &str =
        r#"{"neighbors":[{"remote_as":"65001","remote_addr":"10.0.0.1","state":"Established"}]}"#;
    const RIB: &str = r#"{"rib":[{"prefix":"192.0.2.0/24","aspath":"65001"}]}"#;

    #[test]
    fn parses_state_and_routes() {
        let v: Value = serde_json::from_str(NEIGHBORS).unwrap();
        assert_eq!(
            parse_state(&v, "10.0.0.1".parse().unwrap()).unwrap(),
            SessionState::Established
        );
        assert!(parse_state(&v, "10.0.0.2".parse().unwrap()).is_err());
        let got = parse_rib(&serde_json::from_str(RIB).unwrap()).unwrap();
        assert_eq!(got, BTreeSet::from(["192.0.2.0/24".parse().unwrap()]));
    }
}
