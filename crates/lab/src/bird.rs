//! BIRD 2 in a lab namespace: one `bird` with its config, control socket, pid file and log in
//! its own directory; queried through `birdc -s`.

use std::path::{Path, PathBuf};
use std::process::Command;

use ipnet::IpNet;

use crate::error::{Error, Result};
use crate::switch::Session;
use crate::sys;

/// The control socket of the instance in `dir`.
pub fn socket(dir: &Path) -> PathBuf {
    dir.join("bird.ctl")
}

/// Checks `config` with `bird -p` (BIRD's own parser, so every mistake is reported with its
/// line), then starts BIRD in `ns` with its files in `dir`. Returns its pid.
pub fn start(ns: &str, dir: &Path, config: &str) -> Result<Vec<(String, u32)>> {
    let conf = dir.join("bird.conf");
    sys::write_file(&conf, config)?;
    sys::run(Command::new("bird").arg("-p").arg("-c").arg(&conf))?;
    let socket = socket(dir);
    let _ = std::fs::remove_file(&socket);
    let log = dir.join("bird.log");
    let mut cmd = sys::netns_command(ns, "bird");
    // -f: stay in the foreground, so the pid we record is BIRD's.
    cmd.arg("-f").arg("-c").arg(&conf).arg("-s").arg(&socket);
    cmd.arg("-P").arg(dir.join("bird.pid"));
    let pid = sys::spawn(cmd, &log)?;
    sys::wait_ready(&format!("bird in {ns}"), pid, &log, || socket.exists())?;
    Ok(vec![("bird".to_string(), pid)])
}

/// Brings the running BIRD in `dir` to `config`: checked with `bird -p`, then `birdc configure`
/// (BIRD restarts only the protocols whose settings changed, and reloads routes through
/// changed filters), then kept as the instance's `bird.conf`.
pub fn reload(dir: &Path, config: &str) -> Result<()> {
    let next = dir.join("bird.conf.next");
    sys::write_file(&next, config)?;
    sys::run(Command::new("bird").arg("-p").arg("-c").arg(&next))?;
    let out = sys::run(
        Command::new("birdc")
            .arg("-s")
            .arg(socket(dir))
            .arg("configure")
            .arg(format!("\"{}\"", next.display())),
    )?;
    if !out.contains("Reconfigured") && !out.contains("Reconfiguration in progress") {
        return Err(Error::Command {
            command: format!("birdc configure \"{}\"", next.display()),
            status: "not reconfigured".into(),
            stderr: out.trim().to_string(),
        });
    }
    sys::rename(&next, &dir.join("bird.conf"))
}

/// `birdc -s SOCKET command...` against the instance in `dir`.
pub fn birdc(dir: &Path, command: &str) -> Result<String> {
    sys::run(
        Command::new("birdc")
            .arg("-s")
            .arg(socket(dir))
            .args(command.split_whitespace()),
    )
}

/// The BGP sessions: the dynamic protocols spawned from each port's template.
pub fn sessions(dir: &Path) -> Result<Vec<Session>> {
    Ok(parse_protocols(&birdc(dir, "show protocols all")?))
}

/// The IPv4 networks in the main table.
pub fn prefixes(dir: &Path) -> Result<u64> {
    Ok(parse_networks(&birdc(dir, "show route count")?))
}

/// The paths of exactly `prefix` in the switch's table, by the interface they lead to.
pub fn paths_of(dir: &Path, prefix: &IpNet) -> Result<Vec<String>> {
    match birdc(dir, &format!("show route {prefix}")) {
        Ok(out) => Ok(parse_paths(&out)),
        // birdc exits non-zero when the table has no such network.
        Err(Error::Command { stderr, .. }) if stderr.contains("Network not found") => {
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

/// The interface of every `via ... on IFACE` line of `show route PREFIX`.
fn parse_paths(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                ["via", _, "on", iface, ..] => Some((*iface).to_string()),
                _ => None,
            }
        })
        .collect()
}

/// Parses `show protocols all`: every BGP protocol that is a session (not a template waiting
/// on a `Neighbor range`), its BGP state and the IPv4 routes it imported.
pub fn parse_protocols(out: &str) -> Vec<Session> {
    let mut sessions = Vec::new();
    let mut current: Option<(Session, bool)> = None;
    let mut channel = String::new();
    let finish = |c: Option<(Session, bool)>, out: &mut Vec<Session>| {
        if let Some((s, false)) = c {
            out.push(s);
        }
    };
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !line.starts_with(char::is_whitespace) {
            finish(current.take(), &mut sessions);
            if fields.get(1) == Some(&"BGP") {
                let session = Session {
                    neighbor: fields[0].to_string(),
                    state: "unknown".into(),
                    prefixes_received: 0,
                };
                current = Some((session, false));
            }
            continue;
        }
        let Some((session, template)) = current.as_mut() else {
            continue;
        };
        match fields.as_slice() {
            ["BGP", "state:", state, ..] => session.state = (*state).to_string(),
            ["Neighbor", "range:", ..] => *template = true,
            ["Channel", name] => channel = (*name).to_string(),
            ["Routes:", n, "imported,", ..] if channel == "ipv4" => {
                session.prefixes_received = n.parse().unwrap_or(0);
            }
            _ => {}
        }
    }
    finish(current, &mut sessions);
    sessions
}

/// The networks of `master4` in `show route count`.
pub fn parse_networks(out: &str) -> u64 {
    out.lines()
        .find(|l| l.ends_with("in table master4"))
        .and_then(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "networks")?;
            words.get(at.checked_sub(1)?)?.parse().ok()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sessions_but_not_templates() {
        // Trimmed from BIRD 2.0.12 `show protocols all` on a lab leaf.
        let out = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     18:15:03.578
swp1       BGP        ---        start  18:15:03.578  Passive
  BGP state:          Passive
    Neighbor range:   fe80::/10
  Channel ipv4
    State:          DOWN
swp1_1     BGP        ---        up     18:15:03.580  Established
  BGP state:          Established
    Neighbor address: fe80::c8da:edff:fe79:d24d%swp1
  Channel ipv4
    State:          UP
    Routes:         3 imported, 1 exported, 3 preferred
  Channel ipv6
    Routes:         7 imported, 0 exported, 0 preferred
swp2_1     BGP        ---        start  18:15:04.000  Connect
  BGP state:          Connect
";
        let s = parse_protocols(out);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].neighbor, "swp1_1");
        assert_eq!(s[0].state, "Established");
        assert_eq!(s[0].prefixes_received, 3);
        assert_eq!(s[1].state, "Connect");
        assert_eq!(s[1].prefixes_received, 0);
    }

    #[test]
    fn reads_the_interfaces_of_a_prefix() {
        let out = "BIRD 2.0.12 ready.
Table master4:
10.0.0.32/28         unicast [swp1_1 18:18:03.516] * (100) [AS4200010002i]
\tvia fe80::204d:a8ff:febb:b1eb on swp1
                     unicast [swp2_1 18:18:03.520] (100) [AS4200010002i]
\tvia fe80::cca3:63ff:fe1a:ec26 on swp2
";
        assert_eq!(parse_paths(out), ["swp1", "swp2"]);
    }

    #[test]
    fn reads_the_ipv4_network_count() {
        let out = "BIRD 2.0.12 ready.
2 of 3 routes for 2 networks in table master4
0 of 0 routes for 0 networks in table master6
Total: 2 of 3 routes for 2 networks in 2 tables
";
        assert_eq!(parse_networks(out), 2);
        assert_eq!(parse_networks("garbage"), 0);
    }
}
