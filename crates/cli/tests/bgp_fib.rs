//! `clos bgp run` with a `fib:` section as a lab switch: two namespaces joined by two veths, an
//! unnumbered eBGP session on each, and a second `clos bgp run` on the far side announcing
//! prefixes. The switch installs the far side's IPv4 prefix with both IPv6 link-local next
//! hops (ECMP, `proto 198`), never its own `originate` prefix, removes a stale route of an
//! earlier run after the first convergence but nobody else's route, and removes the prefix
//! once the far side stops.

use std::process::Command;
use std::time::Duration;

use clos_testkit::{Daemon, Netns, Retry, wait_until_with};
use serde_json::Value;

const CLOS: &str = env!("CARGO_BIN_EXE_clos");
const TIMEOUT: Duration = Duration::from_secs(60);

/// The kernel's route to `prefix` in `ns` if it is of protocol 198: its next hops as
/// (gateway, device), sorted by device, whether the route carries them itself or points at nexthop objects.
fn clos_route(ns: &Netns, prefix: &str) -> Option<Vec<(String, String)>> {
    let out = ns
        .exec("ip", &["-j", "route", "show", prefix, "proto", "198"])
        .unwrap();
    let routes: Vec<Value> = serde_json::from_str(&out).unwrap_or_default();
    let route = routes.first()?;
    let hop = |v: &Value| -> (String, String) {
        let gateway = v["gateway"]
            .as_str()
            .or_else(|| v["via"]["host"].as_str())
            .unwrap_or("-");
        (
            gateway.to_owned(),
            v["dev"].as_str().unwrap_or("-").to_owned(),
        )
    };
    let nexthop = |id: u64| -> Value {
        let out = ns
            .exec("ip", &["-j", "nexthop", "show", "id", &id.to_string()])
            .unwrap();
        let v: Vec<Value> = serde_json::from_str(&out).unwrap();
        v[0].clone()
    };
    let mut hops: Vec<(String, String)> = if let Some(id) = route["nhid"].as_u64() {
        let nh = nexthop(id);
        match nh["group"].as_array() {
            Some(group) => group
                .iter()
                .map(|m| hop(&nexthop(m["id"].as_u64().unwrap())))
                .collect(),
            None => vec![hop(&nh)],
        }
    } else if let Some(list) = route["nexthops"].as_array() {
        list.iter().map(hop).collect()
    } else {
        vec![hop(route)]
    };
    hops.sort_by(|a, b| a.1.cmp(&b.1));
    Some(hops)
}

fn status(control: &std::path::Path, json: bool) -> std::process::Output {
    let mut cmd = Command::new(CLOS);
    cmd.args(["bgp", "status", "--control"]).arg(control);
    if json {
        cmd.args(["-o", "json"]);
    }
    cmd.output().unwrap()
}

#[test]
fn fib_installs_ecmp_routes_over_unnumbered_sessions() {
    let switch = Netns::new().unwrap();
    let far = Netns::new().unwrap();
    switch.link_named("swp1", &far, "up1").unwrap();
    switch.link_named("swp2", &far, "up2").unwrap();
    // Someone else's route, and a stale one of ours from an earlier run.
    switch
        .ip(&["route", "add", "203.0.113.0/24", "dev", "swp1"])
        .unwrap();
    switch
        .ip(&[
            "route",
            "add",
            "203.0.114.0/24",
            "dev",
            "swp1",
            "proto",
            "198",
        ])
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let policy = "policy:\n  policies:\n    all: { default: accept }\n";
    // The far side announces a prefix of its own and the switch's own prefix too; without
    // graceful restart, so its routes go the moment it stops.
    let far_cfg = dir.path().join("far.yaml");
    std::fs::write(
        &far_cfg,
        format!(
            "asn: 65002\nrouter_id: 10.255.0.2\ngraceful_restart: null\n\
             originate: [198.51.100.0/24, 192.0.2.0/24]\n{policy}\
             peers:\n\
             \x20 - {{ interface: up1, remote_as: external, import: all, export: all }}\n\
             \x20 - {{ interface: up2, remote_as: external, import: all, export: all }}\n"
        ),
    )
    .unwrap();
    let switch_cfg = dir.path().join("switch.yaml");
    std::fs::write(
        &switch_cfg,
        format!(
            "asn: 65001\nrouter_id: 10.255.0.1\noriginate: [192.0.2.0/24]\n\
             fib: {{ table: 254 }}\n{policy}\
             peers:\n\
             \x20 - {{ interface: swp1, remote_as: external, import: all, export: all }}\n\
             \x20 - {{ interface: swp2, remote_as: external, import: all, export: all }}\n"
        ),
    )
    .unwrap();
    let run = |ns: &Netns, cfg: &std::path::Path, name: &str| {
        let mut cmd = ns.command(CLOS);
        cmd.args(["bgp", "run", "-c"])
            .arg(cfg)
            .arg("--control")
            .arg(dir.path().join(format!("{name}.sock")));
        Daemon::spawn(
            format!("clos bgp ({name})"),
            cmd,
            &dir.path().join(format!("{name}.log")),
        )
        .unwrap()
    };
    let control = dir.path().join("switch.sock");
    let switch_daemon = run(&switch, &switch_cfg, "switch");
    let far_daemon = run(&far, &far_cfg, "far");

    // Both sessions' next hops, each a link-local address on its own interface.
    let hops = wait_until_with(
        TIMEOUT,
        "198.51.100.0/24 in the switch's kernel with two next hops",
        &[&switch_daemon, &far_daemon],
        || {
            switch_daemon.check_running().map_err(Retry::Fail)?;
            match clos_route(&switch, "198.51.100.0/24") {
                Some(hops) if hops.len() == 2 => Ok(hops),
                other => Err(format!("{other:?}").into()),
            }
        },
    )
    .unwrap();
    let devs: Vec<&str> = hops.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(devs, ["swp1", "swp2"], "{hops:?}");
    for (gateway, _) in &hops {
        assert!(gateway.starts_with("fe80::"), "{hops:?}");
    }
    let out = switch
        .exec("ip", &["route", "show", "198.51.100.0/24"])
        .unwrap();
    assert!(out.contains("proto 198"), "{out}");

    // After the first convergence: the stale route is gone, the other one stays, and the
    // switch's own prefix was never installed.
    let fib = wait_until_with(
        TIMEOUT,
        "the FIB reconciled, as `clos bgp status` says",
        &[&switch_daemon, &far_daemon],
        || {
            let out = status(&control, true);
            let v: Value = serde_json::from_slice(&out.stdout)
                .map_err(|_| format!("no status: {}", String::from_utf8_lossy(&out.stderr)))?;
            if v["fib"]["reconciled"] == true && v["fib"]["routes_installed"] == 1 {
                Ok(v["fib"].clone())
            } else {
                Err(format!("{v}").into())
            }
        },
    )
    .unwrap();
    assert_eq!(fib["table"], 254, "{fib}");
    assert_eq!(fib["bgp_routes"], 1, "{fib}");
    assert_eq!(clos_route(&switch, "203.0.114.0/24"), None);
    let foreign = switch
        .exec("ip", &["route", "show", "203.0.113.0/24"])
        .unwrap();
    assert!(foreign.contains("dev swp1"), "{foreign}");
    assert_eq!(clos_route(&switch, "192.0.2.0/24"), None);
    let table = status(&control, false);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("fib: table 254, 1 routes installed"),
        "{table}"
    );

    // The far side stops: its prefix leaves the kernel.
    far_daemon.stop(Duration::from_secs(5));
    wait_until_with(
        TIMEOUT,
        "198.51.100.0/24 gone from the switch's kernel",
        &[&switch_daemon],
        || match clos_route(&switch, "198.51.100.0/24") {
            None => Ok(()),
            Some(hops) => Err(format!("still {hops:?}").into()),
        },
    )
    .unwrap();
    switch_daemon.check_running().unwrap();
}
