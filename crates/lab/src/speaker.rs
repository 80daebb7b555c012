//! `clos bgp run` as a lab switch: the speaker with its rendered `bgp.yaml`, its control
//! socket and log in its own directory; asked for its sessions and routes over that socket.

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ipnet::IpNet;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::switch::Session;
use crate::sys;

/// The control socket of the speaker in `dir` (`clos bgp status --control ...`).
pub fn socket(dir: &Path) -> PathBuf {
    dir.join("bgp.sock")
}

/// The file holding the pid and start time of the speaker in `dir`: they change when
/// [`restart`] applies a new config.
pub fn pid_file(dir: &Path) -> PathBuf {
    dir.join("bgp.pid")
}

/// The pid of the speaker in `dir`, from its pid file.
pub fn pid(dir: &Path) -> Option<u32> {
    pid_file_field(dir, 0)
}

/// The speaker's start time ([`sys::start_time`]), from its pid file.
pub fn started(dir: &Path) -> Option<u64> {
    pid_file_field(dir, 1)
}

fn pid_file_field<T: std::str::FromStr>(dir: &Path, i: usize) -> Option<T> {
    let text = std::fs::read_to_string(pid_file(dir)).ok()?;
    text.split_whitespace().nth(i)?.parse().ok()
}

/// Checks `config` with `clos bgp validate`, then starts `clos bgp run` in `ns`. Returns its
/// pid.
pub fn start(exe: &Path, ns: &str, dir: &Path, config: &str) -> Result<Vec<(String, u32)>> {
    let conf = dir.join("bgp.yaml");
    sys::write_file(&conf, config)?;
    validate(exe, &conf)?;
    Ok(vec![("bgp".to_string(), run(exe, ns, dir, false)?)])
}

/// Applies a new config the only way `clos bgp run` takes one, a restart: the speaker is
/// killed, so that its neighbours keep its routes as graceful-restart helpers and its FIB
/// stays in the kernel, then started again with `--restarted`, and it takes its sessions and
/// routes back. Returns the new pid.
pub fn restart(exe: &Path, ns: &str, dir: &Path, config: &str) -> Result<u32> {
    let next = dir.join("bgp.yaml.next");
    sys::write_file(&next, config)?;
    validate(exe, &next)?;
    let ours = |p: &u32| sys::netns_pids(ns).contains(p) && sys::running(*p, started(dir));
    if let Some(old) = pid(dir).filter(ours) {
        sys::signal(old, rustix::process::Signal::KILL);
        sys::wait_for(
            &format!("clos bgp {old} in {ns} to exit"),
            Duration::from_secs(5),
            Duration::from_millis(20),
            || {
                Ok(if sys::alive(old) {
                    Err("alive".into())
                } else {
                    Ok(())
                })
            },
        )?;
    }
    sys::rename(&next, &dir.join("bgp.yaml"))?;
    run(exe, ns, dir, true)
}

fn validate(exe: &Path, conf: &Path) -> Result<()> {
    sys::run(Command::new(exe).args(["bgp", "validate", "-c"]).arg(conf)).map(drop)
}

/// Starts `clos bgp run` on the `bgp.yaml` in `dir`, records its pid and waits for its
/// control socket.
fn run(exe: &Path, ns: &str, dir: &Path, restarted: bool) -> Result<u32> {
    let log = dir.join("bgp.log");
    let mut cmd = sys::netns_command(ns, exe);
    cmd.args(["bgp", "run", "-c"])
        .arg(dir.join("bgp.yaml"))
        .arg("--control")
        .arg(socket(dir));
    if restarted {
        cmd.arg("--restarted");
    }
    let pid = sys::spawn(cmd, &log)?;
    let started = sys::start_time(pid)
        .map(|t| t.to_string())
        .unwrap_or_default();
    sys::write_file(&pid_file(dir), &format!("{pid} {started}\n"))?;
    sys::wait_ready(&format!("clos bgp in {ns}"), pid, &log, || {
        request(dir, "status").is_ok()
    })?;
    Ok(pid)
}

/// One request over the control socket, its JSON answer.
fn request(dir: &Path, what: &str) -> Result<Value> {
    let path = socket(dir);
    let failed = |e: std::io::Error| Error::io(format!("asking {} for {what}", path.display()), e);
    let mut stream = UnixStream::connect(&path).map_err(failed)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(failed)?;
    stream
        .write_all(format!("{what}\n").as_bytes())
        .map_err(failed)?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(failed)?;
    let v: Value = serde_json::from_str(&line).map_err(|e| Error::Command {
        command: format!("{what} on {}", path.display()),
        status: "unparsable answer".into(),
        stderr: e.to_string(),
    })?;
    match v.get("error").and_then(Value::as_str) {
        Some(e) => Err(Error::Command {
            command: format!("{what} on {}", path.display()),
            status: "refused".into(),
            stderr: e.to_string(),
        }),
        None => Ok(v),
    }
}

/// The speaker's sessions.
pub fn sessions(dir: &Path) -> Result<Vec<Session>> {
    Ok(parse_status(&request(dir, "status")?))
}

/// The prefixes with a best path in the Loc-RIB.
pub fn prefixes(dir: &Path) -> Result<u64> {
    let v = request(dir, "status")?;
    Ok(v.get("loc_rib").and_then(Value::as_u64).unwrap_or(0))
}

fn parse_status(v: &Value) -> Vec<Session> {
    v.get("peers")
        .and_then(Value::as_array)
        .map(|peers| {
            peers
                .iter()
                .map(|p| Session {
                    neighbor: p
                        .get("interface")
                        .or_else(|| p.get("address"))
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string(),
                    state: p
                        .get("state")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown")
                        .to_string(),
                    prefixes_received: p.get("received").and_then(Value::as_u64).unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The ports through which the speaker's best (multipath) route to exactly `prefix` goes.
pub fn paths_of(dir: &Path, prefix: &IpNet) -> Result<Vec<String>> {
    let status = request(dir, "status")?;
    let routes = request(dir, "routes")?;
    Ok(parse_paths(&status, &routes, prefix))
}

fn parse_paths(status: &Value, routes: &Value, prefix: &IpNet) -> Vec<String> {
    let port_of = |addr: IpAddr| {
        status.get("peers")?.as_array()?.iter().find_map(|p| {
            let a: IpAddr = p.get("address")?.as_str()?.parse().ok()?;
            (a == addr).then(|| p.get("interface")?.as_str().map(str::to_string))?
        })
    };
    let Some(route) = routes.as_array().and_then(|rs| {
        rs.iter()
            .find(|r| r.get("prefix").and_then(Value::as_str) == Some(&prefix.to_string()))
    }) else {
        return Vec::new();
    };
    route
        .get("next_hops")
        .and_then(Value::as_array)
        .map(|hops| {
            hops.iter()
                .filter_map(Value::as_str)
                .filter_map(|h| {
                    // `2001:db8::1`, or `:: (fe80::1)` with the link-local address in brackets.
                    let addr = h
                        .split_once('(')
                        .map_or(h, |(_, ll)| ll.trim_end_matches(')'))
                        .trim();
                    port_of(addr.parse().ok()?)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sessions_and_the_ports_of_a_route() {
        let status: Value = serde_json::from_str(
            r#"{"peers":[
                {"address":"fe80::1","state":"Established","received":3,"interface":"swp1"},
                {"address":"fe80::2","state":"Established","received":1,"interface":"swp2"},
                {"address":"::","state":"Idle","received":0,"interface":"swp3"}],
              "originated":0,"loc_rib":5,"update_groups":1}"#,
        )
        .unwrap();
        let s = parse_status(&status);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].neighbor, "swp1");
        assert_eq!(s[0].prefixes_received, 3);
        assert!(s[1].established() && !s[2].established());

        let routes: Value = serde_json::from_str(
            r#"[{"prefix":"10.0.0.0/28","next_hops":[":: (fe80::1)",":: (fe80::2)"],
                 "as_path":"65001","local_pref":100,"med":null,"from":"fe80::1","stale":false}]"#,
        )
        .unwrap();
        let p: IpNet = "10.0.0.0/28".parse().unwrap();
        assert_eq!(parse_paths(&status, &routes, &p), ["swp1", "swp2"]);
        let other: IpNet = "10.0.0.0/29".parse().unwrap();
        assert!(parse_paths(&status, &routes, &other).is_empty());
    }
}
