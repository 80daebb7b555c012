//! `clos bgp run` with `bfd:` on a peer, against BIRD with BFD: `clos bgp status` shows the BFD
//! session Up, in JSON and in the table.

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use clos_testkit::{BgpSpeaker, Daemon, NeighborSpec, Netns, SpeakerSpec, wait_until_with};

const CLOS: &str = env!("CARGO_BIN_EXE_clos");

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn bfd_status_with_bird() {
    let left = Netns::new().unwrap();
    let right = Netns::new().unwrap();
    let link = left.link_to(&right).unwrap();
    left.add_addr(&link.local, "10.0.0.1/30").unwrap();
    right.add_addr(&link.remote, "10.0.0.2/30").unwrap();
    let bird = BgpSpeaker::Bird
        .start(
            &right,
            &SpeakerSpec::new(65002, "10.0.0.2".parse().unwrap())
                .neighbor(NeighborSpec::new(ip("10.0.0.1"), 65001).bfd(100, 3)),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bgp.yaml");
    let control = dir.path().join("bgp.sock");
    std::fs::write(
        &cfg,
        "asn: 65001\nrouter_id: 10.0.0.1\n\
         peers:\n  - address: 10.0.0.2\n    remote_as: 65002\n\
         \x20   bfd: { interval_ms: 100, multiplier: 3 }\n",
    )
    .unwrap();
    let mut cmd = left.command(CLOS);
    cmd.args(["bgp", "run", "-c"])
        .arg(&cfg)
        .arg("--control")
        .arg(&control);
    let clos = Daemon::spawn("clos bgp", cmd, &dir.path().join("clos.log")).unwrap();
    let bfd = wait_until_with(
        Duration::from_secs(60),
        "clos bgp status to show the session with BFD Up",
        &[bird.as_diagnose()],
        || {
            clos.check_running().map_err(clos_testkit::Retry::Fail)?;
            let out = Command::new(CLOS)
                .args(["bgp", "status", "-o", "json", "--control"])
                .arg(&control)
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                .map_err(|_| format!("no status yet: {}", String::from_utf8_lossy(&out.stderr)))?;
            let peer = &v["peers"][0];
            // Up comes first; the 100 ms timers once the poll sequence after it ends.
            if peer["state"] == "Established"
                && peer["bfd"]["state"] == "Up"
                && peer["bfd"]["interval_ms"] == 100
            {
                Ok(peer["bfd"].clone())
            } else {
                Err(format!("{v}").into())
            }
        },
    )
    .unwrap();
    assert_eq!(bfd["interval_ms"], 100, "{bfd}");
    assert_eq!(bfd["detection_ms"], 300, "{bfd}");
    let out = Command::new(CLOS)
        .args(["bgp", "status", "--control"])
        .arg(&control)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("10.0.0.2"))
        .unwrap_or("");
    assert!(
        table.lines().next().unwrap_or("").contains("BFD") && row.contains(" Up "),
        "{table}"
    );
}
