//! Graceful restart keeps traffic flowing: host A runs `clos bgp run` and announces its
//! loopback address to FRR on router R; host C pings that address through R the whole time
//! while the speaker in A is killed with SIGKILL and started again with `--restarted`. R only
//! knows the address from BGP, so a single withdrawal would lose packets; none may be lost.

use std::net::IpAddr;
use std::process::Stdio;
use std::time::Duration;

use clos_testkit::{Daemon, NeighborSpec, Netns, PeerDaemon, SpeakerSpec, wait_until_with};

const CLOS: &str = env!("CARGO_BIN_EXE_clos");
const TIMEOUT: Duration = Duration::from_secs(60);
/// A's loopback address, announced by the speaker.
const SERVICE: &str = "192.0.2.1";
/// Echo requests, one every 10 ms: several times what the restart takes (checked below).
const PINGS: u32 = 1500;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// FRR's path for A's address: `Some(stale)` once it has one.
fn frr_path_stale(frr: &clos_testkit::peers::Frr) -> Result<Option<bool>, String> {
    let out = frr
        .vtysh(&format!("show bgp ipv4 unicast {SERVICE}/32 json"))
        .map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
    Ok(v["paths"]
        .as_array()
        .and_then(|p| p.first())
        .map(|p| p["stale"].as_bool().unwrap_or(false)))
}

#[test]
fn continuous_ping_across_a_crash_and_graceful_restart_loses_nothing() {
    let a = Netns::new().unwrap();
    let r = Netns::new().unwrap();
    let c = Netns::new().unwrap();
    let ar = a.link_to(&r).unwrap();
    let rc = r.link_to(&c).unwrap();
    a.add_addr(&ar.local, "10.0.0.1/30").unwrap();
    r.add_addr(&ar.remote, "10.0.0.2/30").unwrap();
    r.add_addr(&rc.local, "10.0.1.1/30").unwrap();
    c.add_addr(&rc.remote, "10.0.1.2/30").unwrap();
    a.add_addr("lo", &format!("{SERVICE}/32")).unwrap();
    // The standalone speaker programs no FIB: A's way back to C and C's way to A are static;
    // R's way to A is BGP's alone.
    a.ip(&["route", "add", "10.0.1.0/30", "via", "10.0.0.2"])
        .unwrap();
    c.ip(&["route", "add", "default", "via", "10.0.1.1"])
        .unwrap();
    r.exec("sysctl", &["-qw", "net.ipv4.ip_forward=1"]).unwrap();

    let frr = clos_testkit::peers::Frr::start(
        &r,
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
        format!(
            "asn: 65001\nrouter_id: 10.0.0.1\noriginate: [{SERVICE}/32]\n\
             graceful_restart: {{ restart_time: 120 }}\n\
             policy:\n  policies:\n    all: {{ default: accept }}\n\
             peers:\n  - address: 10.0.0.2\n    remote_as: 65002\n    import: all\n    export: all\n"
        ),
    )
    .unwrap();
    let start = |extra: &[&str]| {
        let mut cmd = a.command(CLOS);
        cmd.args(["bgp", "run", "-c"])
            .arg(&cfg)
            .arg("--control")
            .arg(&control)
            .args(extra);
        Daemon::spawn("clos bgp", cmd, &dir.path().join("clos.log")).unwrap()
    };
    let first = start(&[]);
    frr.wait_received(
        ip("10.0.0.1"),
        &[format!("{SERVICE}/32").parse().unwrap()],
        TIMEOUT,
    )
    .unwrap();
    // R forwards: FRR installed the route in its kernel.
    wait_until_with(TIMEOUT, "C to reach A through R", &[&frr], || {
        c.exec("ping", &["-c", "1", "-W", "1", SERVICE])
            .map(drop)
            .map_err(|e| e.to_string().into())
    })
    .unwrap();

    let mut ping = c
        .command("ping")
        .args([
            "-n",
            "-q",
            "-i",
            "0.01",
            "-W",
            "5",
            "-c",
            &PINGS.to_string(),
            SERVICE,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    first.kill();
    wait_until_with(
        Duration::from_secs(30),
        "FRR to keep our route as stale",
        &[&frr],
        || match frr_path_stale(&frr)? {
            Some(true) => Ok(()),
            other => Err(format!("path stale: {other:?}").into()),
        },
    )
    .unwrap();
    let second = start(&["--restarted"]);
    wait_until_with(TIMEOUT, "our route fresh again at FRR", &[&frr], || {
        second.check_running().map_err(clos_testkit::Retry::Fail)?;
        match frr_path_stale(&frr)? {
            Some(false) => Ok(()),
            other => Err(format!("path stale: {other:?}").into()),
        }
    })
    .unwrap();
    // The pings must span the whole restart, or they prove nothing.
    assert!(
        ping.try_wait().unwrap().is_none(),
        "ping finished before the restart did: raise PINGS"
    );

    let out = ping.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| {
            panic!(
                "no ping summary: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(
        summary.starts_with(&format!(
            "{PINGS} packets transmitted, {PINGS} received, 0%"
        )),
        "{summary}"
    );
    assert!(out.status.success(), "{text}");
}
