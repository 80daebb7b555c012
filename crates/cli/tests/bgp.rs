//! `clos bgp` as a user runs it: a config file, a foreground speaker in a namespace peering
//! with real BIRD, and `clos bgp status` over the control socket.

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use clos_testkit::{
    BgpSpeaker, Daemon, NeighborSpec, Netns, PeerDaemon, SpeakerSpec, wait_until_with,
};

const CLOS: &str = env!("CARGO_BIN_EXE_clos");

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn validate_rejects_unknown_fields_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bgp.yaml");
    std::fs::write(&cfg, "asn: 65001\nrouter_id: 10.0.0.1\nneighbours: []\n").unwrap();
    let out = Command::new(CLOS)
        .args(["bgp", "validate", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `neighbours`"), "{err}");
    assert!(err.contains("peers"), "should list the valid fields: {err}");
}

#[test]
fn run_and_status_against_bird() {
    let left = Netns::new().unwrap();
    let right = Netns::new().unwrap();
    let link = left.link_to(&right).unwrap();
    left.add_addr(&link.local, "10.0.0.1/30").unwrap();
    right.add_addr(&link.remote, "10.0.0.2/30").unwrap();
    let bird = BgpSpeaker::Bird
        .start(
            &right,
            &SpeakerSpec::new(65002, "10.0.0.2".parse().unwrap())
                .neighbor(NeighborSpec::new(ip("10.0.0.1"), 65001))
                .network("198.51.100.0/24".parse().unwrap()),
        )
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bgp.yaml");
    let control = dir.path().join("bgp.sock");
    std::fs::write(
        &cfg,
        "asn: 65001\nrouter_id: 10.0.0.1\noriginate: [192.0.2.0/24]\n\
         policy:\n  policies:\n    all: { default: accept }\n\
         peers:\n  - address: 10.0.0.2\n    remote_as: 65002\n    import: all\n    export: all\n",
    )
    .unwrap();
    let mut cmd = left.command(CLOS);
    cmd.args(["bgp", "run", "-c"])
        .arg(&cfg)
        .arg("--control")
        .arg(&control);
    let clos = Daemon::spawn("clos bgp", cmd, &dir.path().join("clos.log")).unwrap();

    bird.wait_received(
        ip("10.0.0.1"),
        &["192.0.2.0/24".parse().unwrap()],
        Duration::from_secs(60),
    )
    .unwrap();
    let status = wait_until_with(
        Duration::from_secs(60),
        "clos bgp status to show the session with the prefix received",
        &[bird.as_diagnose()],
        || {
            clos.check_running().map_err(clos_testkit::Retry::Fail)?;
            let out = Command::new(CLOS)
                .args(["bgp", "status", "-o", "json", "--control"])
                .arg(&control)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|_| format!("no status yet: {}", String::from_utf8_lossy(&out.stderr)))?;
            let peer = &v["peers"][0];
            if peer["state"] == "Established" && peer["received"] == 1 {
                Ok(v)
            } else {
                Err(format!("{v}").into())
            }
        },
    )
    .unwrap();
    assert_eq!(status["peers"][0]["remote_as"], 65002);

    // The routes: BIRD's prefix as best path, via BIRD, with its AS.
    let out = Command::new(CLOS)
        .args(["bgp", "routes", "-o", "json", "--control"])
        .arg(&control)
        .output()
        .unwrap();
    let routes: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let bird_route = routes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["prefix"] == "198.51.100.0/24")
        .unwrap_or_else(|| panic!("{routes}"));
    assert_eq!(bird_route["as_path"], "65002");
    assert_eq!(bird_route["from"], "10.0.0.2");
    assert_eq!(bird_route["next_hops"][0], "10.0.0.2");
    // A prefix filter keeps what lies inside it; `neighbors` is `status` by its other name.
    let out = Command::new(CLOS)
        .args(["bgp", "routes", "198.51.0.0/16", "-o", "json", "--control"])
        .arg(&control)
        .output()
        .unwrap();
    let only: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(only.as_array().map(Vec::len), Some(1), "{only}");
    let out = Command::new(CLOS)
        .args(["bgp", "neighbors", "-o", "json", "--control"])
        .arg(&control)
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new(CLOS)
        .args(["bgp", "routes", "--peer", "10.9.9.9", "--control"])
        .arg(&control)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no peer 10.9.9.9"));
    // A route refresh request goes to BIRD for the session's family; an unknown peer is an
    // error that names it.
    let out = Command::new(CLOS)
        .args(["bgp", "refresh", "10.0.0.2", "-o", "json", "--control"])
        .arg(&control)
        .output()
        .unwrap();
    let families: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(families, serde_json::json!(["ipv4 unicast"]));
    let out = Command::new(CLOS)
        .args(["bgp", "refresh", "10.9.9.9", "--control"])
        .arg(&control)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("10.9.9.9") && err.contains("no such peer"),
        "{err}"
    );

    // The table form is for humans but must carry the same facts.
    let out = Command::new(CLOS)
        .args(["bgp", "status", "--control"])
        .arg(&control)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("10.0.0.2") && table.contains("Established"),
        "{table}"
    );
}

/// kill -9 of `clos bgp run` and a restart with `--restarted`: FRR (graceful-restart helper)
/// keeps our prefix the whole time, so traffic towards the host never stops.
#[test]
fn crash_and_graceful_restart_keeps_our_routes_at_frr() {
    let left = Netns::new().unwrap();
    let right = Netns::new().unwrap();
    let link = left.link_to(&right).unwrap();
    left.add_addr(&link.local, "10.0.0.1/30").unwrap();
    right.add_addr(&link.remote, "10.0.0.2/30").unwrap();
    let frr = clos_testkit::peers::Frr::start(
        &right,
        &SpeakerSpec::new(65002, "10.0.0.2".parse().unwrap())
            .neighbor(NeighborSpec::new(ip("10.0.0.1"), 65001))
            .graceful_restart(120),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bgp.yaml");
    let control = dir.path().join("bgp.sock");
    std::fs::write(
        &cfg,
        "asn: 65001\nrouter_id: 10.0.0.1\noriginate: [192.0.2.0/24]\n\
         policy:\n  policies:\n    all: { default: accept }\n\
         peers:\n  - address: 10.0.0.2\n    remote_as: 65002\n    import: all\n    export: all\n",
    )
    .unwrap();
    let start = |extra: &[&str]| {
        let mut cmd = left.command(CLOS);
        cmd.args(["bgp", "run", "-c"])
            .arg(&cfg)
            .arg("--control")
            .arg(&control)
            .args(extra);
        Daemon::spawn("clos bgp", cmd, &dir.path().join("clos.log")).unwrap()
    };
    let ours: ipnet::IpNet = "192.0.2.0/24".parse().unwrap();
    let first = start(&[]);
    frr.wait_received(ip("10.0.0.1"), &[ours], Duration::from_secs(60))
        .unwrap();

    first.kill();
    // FRR notices the dead connection and marks our route stale, but keeps it.
    wait_until_with(
        Duration::from_secs(30),
        "FRR to mark our route stale",
        &[&frr],
        || {
            let out = frr
                .vtysh("show bgp ipv4 unicast 192.0.2.0/24 json")
                .map_err(|e| e.to_string())?;
            if out.contains("\"stale\":true") {
                Ok(())
            } else {
                Err(out.into())
            }
        },
    )
    .unwrap();
    assert!(
        frr.received_prefixes(ip("10.0.0.1"))
            .unwrap()
            .contains(&ours)
    );

    let second = start(&["--restarted"]);
    wait_until_with(
        Duration::from_secs(60),
        "our route fresh again at FRR",
        &[&frr],
        || {
            second.check_running().map_err(clos_testkit::Retry::Fail)?;
            let out = frr
                .vtysh("show bgp ipv4 unicast 192.0.2.0/24 json")
                .map_err(|e| e.to_string())?;
            if out.contains("\"valid\":true") && !out.contains("\"stale\":true") {
                Ok(())
            } else {
                Err(out.into())
            }
        },
    )
    .unwrap();
    // FRR saw the restart flag in our OPEN.
    let n = frr.vtysh("show bgp neighbors 10.0.0.1 json").unwrap();
    assert!(
        n.contains("gracefulRestart") || n.contains("gracefulRestartInfo"),
        "{n}"
    );
}
