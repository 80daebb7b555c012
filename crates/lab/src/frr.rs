//! FRR in a lab namespace: zebra and bgpd with their own directory (vty sockets, pid files,
//! config, log), configured through `vtysh -f`, queried through `vtysh -c ... json`.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use clos_model::BfdTimers;
use ipnet::IpNet;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::switch::Session;
use crate::sys;

pub const FRR_LIB: &str = "/usr/lib/frr";
/// FRR's own tool for applying a new integrated config to running daemons: it diffs the
/// running config against the file and sends only the differences (frr-pythontools).
const FRR_RELOAD: &str = "/usr/lib/frr/frr-reload.py";
/// The daemons of a lab switch: zebra programs the kernel, bgpd speaks BGP, bfdd runs the
/// BFD sessions bgpd asks for (idle when the site has no BFD).
pub const DAEMONS: [&str; 3] = ["zebra", "bgpd", "bfdd"];

/// Starts zebra, bgpd and bfdd in `ns` with their files in `dir` (created, owned by frr),
/// then applies `config` through vtysh. Returns the daemons' pids by name.
pub fn start(ns: &str, dir: &Path, config: &str) -> Result<Vec<(String, u32)>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    sys::run(Command::new("chown").arg("frr:frr").arg(dir))?;
    let empty = dir.join("empty.conf");
    sys::write_file(&empty, "")?;
    let conf = dir.join("frr.conf");
    sys::write_file(&conf, config)?;
    let mut pids = Vec::new();
    for name in DAEMONS {
        let socket = dir.join(format!("{name}.vty"));
        let _ = std::fs::remove_file(&socket);
        let mut cmd = sys::netns_command(ns, format!("{FRR_LIB}/{name}"));
        cmd.args(["-u", "frr", "-g", "frr"]);
        cmd.arg("--vty_socket").arg(dir);
        cmd.arg("-z").arg(dir.join("zserv.api"));
        cmd.arg("-i").arg(dir.join(format!("{name}.pid")));
        cmd.arg("-f").arg(&empty);
        cmd.args(["--log", "stdout"]);
        if name == "bgpd" {
            cmd.args(["-p", "179"]);
        }
        if name == "bfdd" {
            // Its control socket defaults to one path for every instance on the machine.
            cmd.arg("--bfdctl").arg(dir.join("bfdd.sock"));
        }
        let log = dir.join(format!("{name}.log"));
        let pid = sys::spawn(cmd, &log)?;
        pids.push((name.to_string(), pid));
        // zebra must listen before bgpd connects; vtysh needs both sockets.
        sys::wait_ready(&format!("{name} in {ns}"), pid, &log, || socket.exists())?;
    }
    apply(dir, &conf)?;
    Ok(pids)
}

/// Brings the running instance in `dir` to `config` with frr-reload.py, which changes only what
/// differs (a prefix list gains an entry without being emptied first), and makes `config` the
/// instance's `frr.conf`.
pub fn reload(dir: &Path, config: &str) -> Result<()> {
    let next = dir.join("frr.conf.next");
    sys::write_file(&next, config)?;
    sys::run(
        Command::new(FRR_RELOAD)
            .args(["--reload", "--stdout", "--bindir", "/usr/bin"])
            .arg("--confdir")
            .arg(dir)
            .arg("--rundir")
            .arg(dir)
            .arg("--vty_socket")
            .arg(dir)
            .arg(&next),
    )?;
    sys::rename(&next, &dir.join("frr.conf"))
}

/// Applies a config file through vtysh; any line FRR rejects is an error.
pub fn apply(dir: &Path, conf: &Path) -> Result<()> {
    let out = sys::run(
        Command::new("vtysh")
            .arg("--vty_socket")
            .arg(dir)
            .arg("-f")
            .arg(conf),
    )?;
    let bad: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("% ") || l.to_ascii_lowercase().contains("error"))
        .collect();
    if !bad.is_empty() {
        return Err(Error::Command {
            command: format!("vtysh -f {}", conf.display()),
            status: "rejected lines".into(),
            stderr: bad.join("\n"),
        });
    }
    Ok(())
}

/// `vtysh -c command` against the instance in `dir`.
pub fn vtysh(dir: &Path, command: &str) -> Result<String> {
    sys::run(
        Command::new("vtysh")
            .arg("--vty_socket")
            .arg(dir)
            .arg("-c")
            .arg(command),
    )
}

pub fn vtysh_json(dir: &Path, command: &str) -> Result<Value> {
    let out = vtysh(dir, command)?;
    serde_json::from_str(&out).map_err(|e| Error::Command {
        command: format!("vtysh -c '{command}'"),
        status: "unparsable JSON".into(),
        stderr: e.to_string(),
    })
}

/// The sessions of `show bgp summary json` (IPv4 unicast, where every lab session is active).
pub fn sessions(dir: &Path) -> Result<Vec<Session>> {
    let v = vtysh_json(dir, "show bgp ipv4 unicast summary json")?;
    Ok(parse_summary(&v))
}

/// The IPv4 prefixes in the BGP table (the summary's `ribCount` counts table nodes instead).
pub fn prefixes(dir: &Path) -> Result<u64> {
    let v = vtysh_json(dir, "show bgp ipv4 unicast statistics json")?;
    Ok(v.get("ipv4Unicast")
        .and_then(|s| s.get(0))
        .and_then(|s| s.get("totalPrefixes"))
        .and_then(Value::as_u64)
        .unwrap_or(0))
}

pub fn parse_summary(v: &Value) -> Vec<Session> {
    let af = v.get("ipv4Unicast").unwrap_or(v);
    let mut out = Vec::new();
    if let Some(peers) = af.get("peers").and_then(Value::as_object) {
        for (name, p) in peers {
            out.push(Session {
                neighbor: name.clone(),
                state: p
                    .get("state")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_string(),
                prefixes_received: p.get("pfxRcd").and_then(Value::as_u64).unwrap_or(0),
            });
        }
    }
    out
}

/// The paths of `prefix` in the switch's BGP table, by the neighbour they came from.
pub fn paths_of(dir: &Path, prefix: &IpNet) -> Result<Vec<String>> {
    let afi = if matches!(prefix, IpNet::V4(_)) {
        "ipv4"
    } else {
        "ipv6"
    };
    let v = vtysh_json(dir, &format!("show bgp {afi} unicast {prefix} json"))?;
    Ok(parse_paths(&v, prefix))
}

fn parse_paths(v: &Value, prefix: &IpNet) -> Vec<String> {
    // FRR answers the longest match; only an exact match counts.
    if v.get("prefix").and_then(Value::as_str) != Some(&prefix.to_string()) {
        return Vec::new();
    }
    v.get("paths")
        .and_then(Value::as_array)
        .map(|paths| {
            paths
                .iter()
                .map(|p| {
                    p.get("peer")
                        .and_then(|peer| {
                            peer.get("interface")
                                .or_else(|| peer.get("hostname"))
                                .or_else(|| peer.get("peerId"))
                        })
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Configuration of a host running FRR instead of the agent: unnumbered sessions on its
/// uplinks (with BFD at the site's timers when it has them), announcing `announce` (normally
/// exactly its assignment), accepting everything.
pub fn render_host(
    name: &str,
    asn: u32,
    router_id: Ipv4Addr,
    uplinks: &[String],
    announce: &[IpNet],
    bfd: Option<&BfdTimers>,
) -> String {
    let mut c = String::from("frr defaults datacenter\n");
    let _ = writeln!(c, "hostname {name}\n!");
    if let Some(b) = bfd {
        let _ = writeln!(
            c,
            "bfd\n profile clos\n  detect-multiplier {}\n  receive-interval {}\n  transmit-interval {}\n exit\nexit\n!",
            b.multiplier, b.interval_ms, b.interval_ms
        );
    }
    let mut seq = 5;
    for net in announce.iter().filter(|n| matches!(n, IpNet::V4(_))) {
        let _ = writeln!(c, "ip prefix-list CLOS-OWN seq {seq} permit {net}");
        seq += 5;
    }
    let _ = writeln!(c, "ip prefix-list CLOS-OWN seq {seq} deny 0.0.0.0/0 le 32");
    c.push_str("route-map CLOS-OUT permit 10\n match ip address prefix-list CLOS-OWN\nexit\n");
    c.push_str("route-map CLOS-IN permit 10\nexit\n!\n");
    let _ = writeln!(c, "router bgp {asn}");
    let _ = writeln!(c, " bgp router-id {router_id}");
    c.push_str(" bgp bestpath as-path multipath-relax\n no bgp network import-check\n");
    for u in uplinks {
        let _ = writeln!(c, " neighbor {u} interface remote-as external");
        if bfd.is_some() {
            let _ = writeln!(c, " neighbor {u} bfd profile clos");
        }
    }
    c.push_str(" address-family ipv4 unicast\n  maximum-paths 64\n");
    for net in announce.iter().filter(|n| matches!(n, IpNet::V4(_))) {
        let _ = writeln!(c, "  network {net}");
    }
    for u in uplinks {
        let _ = writeln!(c, "  neighbor {u} route-map CLOS-IN in");
        let _ = writeln!(c, "  neighbor {u} route-map CLOS-OUT out");
    }
    c.push_str(" exit-address-family\nexit\n");
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_summary_and_paths() {
        // Trimmed from FRR 8.4.4 `show bgp ipv4 unicast summary json` on a lab leaf.
        let v: Value = serde_json::from_str(
            r#"{"ipv4Unicast":{"routerId":"10.254.0.3","as":4200000001,"ribCount":7,
              "peers":{"swp1":{"remoteAs":4200000000,"state":"Established","pfxRcd":4},
                       "swp3":{"remoteAs":4200010000,"state":"Active","pfxRcd":0}}}}"#,
        )
        .unwrap();
        let s = parse_summary(&v);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].state, "Established");
        assert_eq!(s[0].prefixes_received, 4);
        assert_eq!(s[1].state, "Active");

        let p: IpNet = "10.0.0.0/28".parse().unwrap();
        let v: Value = serde_json::from_str(
            r#"{"prefix":"10.0.0.0/28","paths":[{"peer":{"peerId":"fe80::1","interface":"swp3"}},
              {"peer":{"peerId":"fe80::2","interface":"swp1"}}]}"#,
        )
        .unwrap();
        assert_eq!(parse_paths(&v, &p), ["swp3", "swp1"]);
        let other: IpNet = "10.0.0.0/29".parse().unwrap();
        assert!(parse_paths(&v, &other).is_empty());
    }

    #[test]
    fn host_config_announces_exactly_its_list() {
        let c = render_host(
            "h1",
            4_200_010_000,
            "10.255.0.10".parse().unwrap(),
            &["eth0".into(), "eth1".into()],
            &["10.0.0.0/28".parse().unwrap()],
            Some(&BfdTimers {
                interval_ms: 300,
                multiplier: 3,
            }),
        );
        assert!(c.contains(" neighbor eth0 bfd profile clos\n"), "{c}");
        assert!(c.contains("  detect-multiplier 3\n"), "{c}");
        assert!(
            c.contains(" neighbor eth1 interface remote-as external\n"),
            "{c}"
        );
        assert!(c.contains("  network 10.0.0.0/28\n"), "{c}");
        assert!(
            c.contains("ip prefix-list CLOS-OWN seq 5 permit 10.0.0.0/28\n"),
            "{c}"
        );
        assert!(
            c.contains("ip prefix-list CLOS-OWN seq 10 deny 0.0.0.0/0 le 32\n"),
            "{c}"
        );
    }
}
