//! BIRD 2, run in the foreground with its own control socket.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ipnet::IpNet;

use super::{
    PeerDaemon, SessionState, SpeakerSpec, logs_of, parse_prefix, scratch_dir, write_file,
};
use crate::process::run;
use crate::{Daemon, Diagnose, Error, Netns, Result, Retry, wait_until};

#[derive(Debug)]
pub struct Bird {
    daemons: Vec<Daemon>,
    socket: PathBuf,
    /// Protocol name of each neighbour, in spec order.
    protocols: Vec<(IpAddr, String)>,
    _dir: tempfile::TempDir,
}

impl Bird {
    /// Starts BIRD from `spec`; neighbour `i` becomes protocol `n<i>`.
    pub fn start(ns: &Netns, spec: &SpeakerSpec) -> Result<Self> {
        let protocols = spec
            .neighbors
            .iter()
            .enumerate()
            .map(|(i, n)| (n.address, format!("n{i}")))
            .collect();
        let mut bird = Self::start_config(ns, &render(spec))?;
        bird.protocols = protocols;
        Ok(bird)
    }

    /// Starts BIRD from a hand-written config. Query protocols by name with [`Bird::birdc`].
    pub fn start_config(ns: &Netns, config: &str) -> Result<Self> {
        let dir = scratch_dir("bird")?;
        let conf = dir.path().join("bird.conf");
        let socket = dir.path().join("bird.ctl");
        write_file(&conf, config)?;
        let mut cmd = ns.command("bird");
        cmd.arg("-f").arg("-c").arg(&conf).arg("-s").arg(&socket);
        cmd.arg("-P").arg(dir.path().join("bird.pid"));
        let daemon = Daemon::spawn("bird", cmd, &dir.path().join("bird.log"))?;
        let bird = Bird {
            daemons: vec![daemon],
            socket,
            protocols: Vec::new(),
            _dir: dir,
        };
        wait_until(Duration::from_secs(10), "BIRD control socket", || {
            bird.daemons[0].check_running().map_err(Retry::Fail)?;
            bird.birdc("show status")
                .map_err(|e| Retry::Again(e.to_string()))
        })?;
        Ok(bird)
    }

    /// Runs one `birdc` command and returns its output.
    pub fn birdc(&self, command: &str) -> Result<String> {
        let mut cmd = Command::new("birdc");
        cmd.arg("-s").arg(&self.socket);
        cmd.args(command.split_whitespace());
        run(&mut cmd)
    }

    fn protocol(&self, neighbor: IpAddr) -> Result<&str> {
        self.protocols
            .iter()
            .find(|(a, _)| *a == neighbor)
            .map(|(_, p)| p.as_str())
            .ok_or_else(|| Error::Unsupported(format!("neighbour {neighbor} not in the spec")))
    }
}

fn render(spec: &SpeakerSpec) -> String {
    let mut c = String::new();
    let _ = writeln!(
        c,
        "router id {};\nlog stderr all;\nprotocol device {{}}",
        spec.router_id
    );
    let (v4, v6): (Vec<&IpNet>, Vec<&IpNet>) = spec
        .networks
        .iter()
        .partition(|n| matches!(n, IpNet::V4(_)));
    for (name, family, nets) in [("static4", "ipv4", v4), ("static6", "ipv6", v6)] {
        if !nets.is_empty() {
            let _ = writeln!(c, "protocol static {name} {{\n  {family};");
            for net in nets {
                let _ = writeln!(c, "  route {net} blackhole;");
            }
            c.push_str("}\n");
        }
    }
    if let Some((ms, mult)) = spec.neighbors.iter().find_map(|n| n.bfd) {
        let _ = writeln!(
            c,
            "protocol bfd {{\n  interface \"*\" {{ min rx interval {ms} ms; \
             min tx interval {ms} ms; multiplier {mult}; }};\n}}"
        );
    }
    for (i, n) in spec.neighbors.iter().enumerate() {
        let _ = writeln!(c, "protocol bgp n{i} {{\n  local as {};", spec.asn);
        if let Some(local) = n.local_address {
            let _ = writeln!(c, "  source address {local};");
        }
        let port = n.port.map(|p| format!(" port {p}")).unwrap_or_default();
        let _ = writeln!(c, "  neighbor {}{port} as {};", n.address, n.remote_as);
        if n.passive {
            c.push_str("  passive on;\n");
        }
        if let Some(key) = &n.password {
            let _ = writeln!(c, "  password \"{key}\";");
        }
        if n.ttl_security {
            c.push_str("  ttl security on;\n");
        }
        if n.bfd.is_some() {
            c.push_str("  bfd on;\n");
        }
        if let Some(t) = spec.graceful_restart {
            let _ = writeln!(c, "  graceful restart on;\n  graceful restart time {t};");
        }
        // Short timers so tests converge fast.
        c.push_str("  hold time 9;\n  connect retry time 2;\n");
        c.push_str("  ipv4 {\n    import all;\n    export all;\n");
        if n.address.is_ipv6() {
            c.push_str("    extended next hop on;\n");
        }
        c.push_str("  };\n");
        if spec.has_v6() {
            c.push_str("  ipv6 {\n    import all;\n    export all;\n  };\n");
        }
        c.push_str("}\n");
    }
    c
}

/// Parses the "BGP state:" line of `show protocols all <name>`.
fn parse_state(output: &str) -> Result<SessionState> {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix("BGP state:"))
        .map(|s| SessionState::from_name(s.trim()))
        .ok_or_else(|| Error::parse("birdc show protocols", output.to_owned()))
}

/// Parses `show route` output: a route line starts with its prefix in column 0; further paths
/// of the same prefix and attribute lines are indented.
fn parse_routes(output: &str) -> Result<BTreeSet<IpNet>> {
    let mut out = BTreeSet::new();
    for line in output.lines() {
        if line.starts_with(|c: char| c.is_ascii_hexdigit() || c == ':')
            && let Some(first) = line.split_whitespace().next()
            && first.contains('/')
        {
            out.insert(parse_prefix("birdc show route", first)?);
        }
    }
    Ok(out)
}

impl PeerDaemon for Bird {
    fn kind(&self) -> &'static str {
        "bird"
    }

    fn session_state(&self, neighbor: IpAddr) -> Result<SessionState> {
        parse_state(&self.birdc(&format!("show protocols all {}", self.protocol(neighbor)?))?)
    }

    fn received_prefixes(&self, neighbor: IpAddr) -> Result<BTreeSet<IpNet>> {
        let proto = self.protocol(neighbor)?;
        parse_routes(&self.birdc(&format!("show route table all protocol {proto}"))?)
    }

    fn daemons(&self) -> &[Daemon] {
        &self.daemons
    }

    fn as_diagnose(&self) -> &dyn Diagnose {
        self
    }
}

impl Diagnose for Bird {
    fn diagnose(&self) -> String {
        let protocols = self
            .birdc("show protocols")
            .unwrap_or_else(|e| e.to_string());
        format!(
            "--- birdc show protocols ---\n{protocols}\n{}",
            logs_of(&self.daemons)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from BIRD 2.0.12: `birdc show protocols all p1` and `show route all protocol p1`.
    const PROTOCOLS: &str = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
p1         BGP        ---        start  10:31:49.004  Active
  BGP state:          Active
    Neighbor address: 10.0.0.1
";
    const ROUTES: &str = "BIRD 2.0.12 ready.
Table master4:
192.0.2.0/24         unicast [p1 10:32:01.957] * (100) [AS65001i]
\tvia 10.0.0.1 on fxb
\tBGP.as_path: 65001
                     unicast [p2 10:32:01.957] (100) [AS65003i]
Table master6:
2001:db8::/32        unicast [p1 10:32:01.957] * (100) [AS65001i]
";

    #[test]
    fn parses_state_and_routes() {
        assert_eq!(parse_state(PROTOCOLS).unwrap(), SessionState::Active);
        let routes = parse_routes(ROUTES).unwrap();
        let want: BTreeSet<IpNet> = ["192.0.2.0/24", "2001:db8::/32"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(routes, want);
        assert!(parse_state("BIRD 2.0.12 ready.\nsyntax error").is_err());
    }

    #[test]
    fn renders_neighbors_and_networks() {
        let spec = SpeakerSpec::new(65002, "2.2.2.2".parse().unwrap())
            .neighbor(crate::NeighborSpec::new("10.0.0.1".parse().unwrap(), 65001).port(1179))
            .network("198.51.100.0/24".parse().unwrap());
        let conf = render(&spec);
        assert!(
            conf.contains("neighbor 10.0.0.1 port 1179 as 65001;"),
            "{conf}"
        );
        assert!(conf.contains("route 198.51.100.0/24 blackhole;"), "{conf}");
        assert!(!conf.contains("ipv6 {"), "{conf}");
        assert!(!conf.contains("bfd"), "{conf}");
        let spec =
            spec.neighbor(crate::NeighborSpec::new("10.0.0.5".parse().unwrap(), 65001).bfd(50, 4));
        let conf = render(&spec);
        assert!(
            conf.contains("min tx interval 50 ms; multiplier 4;"),
            "{conf}"
        );
        assert_eq!(conf.matches("bfd on;").count(), 1, "{conf}");
    }
}
