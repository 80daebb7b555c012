//! `clos lab` end to end: whole fabrics in namespaces (FRR switches, the controller, a host
//! per namespace), driven through the `clos` binary. Needs root and FRR. Each test's lab is
//! named `t<pid><letter>` and removed with `clos lab down` when the test ends; labs of killed
//! test runs are removed by the next run.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use clos_lab::{Lab, frr, switch, sys};
use ipnet::IpNet;
use serde_json::Value;

const CLOS: &str = env!("CARGO_BIN_EXE_clos");

/// The default topology with FRR on the hosts instead of the agent.
const FRR_HOSTS: &str = "host_software: frr
spines: [{name: s1}, {name: s2}]
racks:
  - name: r1
    leaves: [{name: r1-l1}, {name: r1-l2}]
    hosts: [{name: r1-h1}, {name: r1-h2}]
  - name: r2
    leaves: [{name: r2-l1}, {name: r2-l2}]
    hosts: [{name: r2-h1}, {name: r2-h2}]
";

/// Every switch software and both host kinds in one fabric (the lab's example topology).
const MIXED: &str = include_str!("../../lab/topologies/mixed.yaml");

/// Removes the labs of test processes that no longer exist.
fn sweep_dead_runs() {
    let mut dead = BTreeSet::new();
    for ns in sys::netns_list() {
        let Some(rest) = ns.strip_prefix("closlab-t") else {
            continue;
        };
        let name = format!("t{}", rest.split('-').next().unwrap_or_default());
        let pid: String = name[1..].chars().take_while(char::is_ascii_digit).collect();
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            dead.insert(name);
        }
    }
    for name in dead {
        let _ = clos_lab::down(&std::env::temp_dir().join("nonexistent"), &name);
    }
}

struct LabRun {
    name: String,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

impl LabRun {
    /// `clos lab up` with `topology` (the built-in default when `None`).
    fn up(letter: char, topology: Option<&str>) -> LabRun {
        sweep_dead_runs();
        let tmp = tempfile::tempdir().unwrap();
        // FRR drops privileges and must reach its directories inside.
        let mut perm = std::fs::metadata(tmp.path()).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(tmp.path(), perm).unwrap();
        let run = LabRun {
            name: format!("t{}{letter}", std::process::id()),
            dir: tmp.path().join("lab"),
            _tmp: tmp,
        };
        let mut args = vec!["up".to_string()];
        if let Some(t) = topology {
            let path = run._tmp.path().join("topology.yaml");
            std::fs::write(&path, t).unwrap();
            args.extend(["-t".into(), path.display().to_string()]);
        }
        let o = run.lab_cmd(&args);
        assert!(o.status.success(), "clos lab up failed: {}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(&format!("lab {} is up", run.name)), "{out}");
        run
    }

    fn lab_cmd(&self, args: &[String]) -> Output {
        let mut cmd = Command::new(CLOS);
        // The lab's flags right after the subcommand: `exec` takes everything after `--`.
        cmd.arg("lab").arg(&args[0]);
        cmd.args(["--name", &self.name]).arg("--dir").arg(&self.dir);
        cmd.args(&args[1..]);
        cmd.output().unwrap()
    }

    fn clos(&self, args: &[&str]) -> Output {
        self.lab_cmd(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn check(&self) -> (bool, Value, Output) {
        let o = self.clos(&["check", "-o", "json"]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        (o.status.success(), v, o)
    }

    /// Polls `clos lab check` until it passes (the fabric reconverges after a fault).
    fn wait_check(&self, after: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (ok, v, o) = self.check();
            if ok {
                assert_eq!(v["ok"], true, "exit 0 but not ok: {}", text(&o));
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clos lab check still fails after {after}: {}",
                text(&o)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn lab(&self) -> Lab {
        Lab::open(&self.dir).unwrap()
    }

    fn namespaces(&self) -> Vec<String> {
        let prefix = format!("closlab-{}-", self.name);
        sys::netns_list()
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect()
    }
}

impl Drop for LabRun {
    fn drop(&mut self) {
        let o = self.clos(&["down"]);
        if !o.status.success() {
            eprintln!("clos lab down failed: {}", text(&o));
        }
    }
}

fn up_checks_and_goes_down(run: LabRun) {
    // Every switch session is up, every host has its ECMP paths.
    let o = run.clos(&["status", "-o", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    for sw in s["switches"].as_array().unwrap() {
        assert_eq!(sw["sessions_established"], sw["sessions"], "{sw}");
        assert_eq!(sw["processes_alive"], true, "{sw}");
    }
    for h in s["hosts"].as_array().unwrap() {
        assert_eq!(h["ecmp_paths"], 2, "{h}");
    }

    let (ok, v, o) = run.check();
    assert!(ok, "clos lab check failed: {}", text(&o));
    // 4 hosts: 12 pings, and 8 host pairs across racks with 2 next hops each.
    assert_eq!(v["reachability"].as_array().unwrap().len(), 12, "{v}");
    let ecmp = v["ecmp"].as_array().unwrap();
    assert_eq!(ecmp.len(), 8, "{v}");
    assert!(ecmp.iter().all(|e| e["next_hops"] == 2), "{v}");

    // `up` again: the lab is up already, nothing is rebuilt.
    let o = run.clos(&["up"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("is already up"),
        "{}",
        text(&o)
    );

    // exec runs inside the host's namespace: it has its address.
    let lab = run.lab();
    let addr = lab.state().hosts["r1-h1"].address;
    let o = run.clos(&["exec", "r1-h1", "--", "ip", "-o", "addr", "show"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("{addr}/32")),
        "{}",
        text(&o)
    );
    // A failing command's exit status comes through.
    let o = run.clos(&["exec", "r1-h1", "--", "false"]);
    assert!(!o.status.success());

    // down removes every namespace and process.
    assert_eq!(run.namespaces().len(), 11);
    let pids: Vec<(String, u32, Option<u64>)> = lab
        .state()
        .processes
        .iter()
        .map(|p| {
            let pid = lab.pid_of(p);
            (
                format!("{} of {}", p.kind, p.node),
                pid,
                sys::start_time(pid),
            )
        })
        .collect();
    let o = run.clos(&["down"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(run.namespaces().is_empty(), "{:?}", run.namespaces());
    assert!(!run.dir.exists());
    let survivors: Vec<String> = pids
        .iter()
        .filter(|(_, pid, started)| sys::running(*pid, *started))
        .map(|(what, pid, _)| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!("{what} ({pid}: {})", String::from_utf8_lossy(&cmdline))
        })
        .collect();
    assert!(survivors.is_empty(), "survived down: {survivors:?}");
}

/// The README's main job: the built-in topology (agents on the hosts) comes up, checks and
/// goes down.
#[test]
fn default_lab_comes_up_checks_and_goes_down() {
    up_checks_and_goes_down(LabRun::up('a', None));
}

/// The same fabric with FRR on the hosts: the rendered switch configs work with a routing
/// stack other than the agent.
#[test]
fn lab_with_frr_hosts_comes_up_checks_and_goes_down() {
    up_checks_and_goes_down(LabRun::up('f', Some(FRR_HOSTS)));
}

/// FRR, BIRD and `clos bgp` switches in one fabric, configured by the same controller:
/// sessions between every pair of them, ECMP through all three, and the RFC 8950 next hops
/// of each reaching an FRR host and the agents.
#[test]
fn lab_with_mixed_switches_comes_up_checks_and_goes_down() {
    let run = LabRun::up('m', Some(MIXED));
    let o = run.clos(&["exec", "r1-l1", "--", "birdc", "show", "protocols"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Established"), "{}", text(&o));
    // The `clos` leaf's FIB holds the other rack's blocks over both spines.
    let o = run.clos(&["exec", "r2-l2", "--", "clos", "bgp", "status", "-o", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let status: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["fib"]["table"], 254, "{status}");
    let r1_block = run.lab().state().hosts["r1-h1"].advertisements[0].to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = run.clos(&[
            "exec", "r2-l2", "--", "ip", "-j", "route", "show", "exact", &r1_block,
        ]);
        let routes: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        if routes[0]["nexthops"].as_array().map(Vec::len) == Some(2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "r2-l2 has {routes} for {r1_block}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // An address outside a host's block gives the host a new block; `clos lab sync --watch`
    // (started by `up`) re-renders its leaves, BIRD in r1, FRR and `clos bgp` in r2, and the
    // other rack reaches the new block over both of its uplinks.
    for (host, ip, far) in [
        ("r1-h1", "10.0.0.200", "r2-h1"),
        ("r2-h2", "10.0.0.180", "r1-h2"),
    ] {
        let o = run.clos(&[
            "exec",
            "mgmt",
            "--",
            "clos",
            "create",
            "address",
            "--subnet",
            "demo",
            "--owner",
            &format!("vm-{host}"),
            "--node",
            host,
            "--ip",
            ip,
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let o = run.clos(&["exec", far, "--", "ip", "-j", "route", "show", "match", ip]);
            let routes: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
            let two_paths = routes.as_array().is_some_and(|rs| {
                rs.iter().any(|r| {
                    r["dst"] != "default" && r["nexthops"].as_array().map(Vec::len) == Some(2)
                })
            });
            if two_paths {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{far} has no two paths to {ip}: {routes}; sync log:\n{}",
                std::fs::read_to_string(run.dir.join("sync.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let log = std::fs::read_to_string(run.dir.join("sync.log")).unwrap();
    for (sw, software) in [("r1-l1", "bird"), ("r2-l1", "frr"), ("r2-l2", "clos")] {
        assert!(
            log.contains(&format!(
                r#"{{"switch":"{sw}","software":"{software}","result":"applied"}}"#
            )),
            "{log}"
        );
    }
    let o = run.clos(&["sync", "-o", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        report
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["result"] == "unchanged"),
        "{report}"
    );

    // BFD with BIRD (r1) and with FRR and `clos bgp` (r2) moves the route off a silent uplink,
    // and the session comes back each time (two runs: the second starts only once both
    // uplinks are back after the first).
    for host in ["r1-h1", "r2-h2"] {
        let o = run.clos(&["failover", host, "--runs", "2", "-o", "json"]);
        assert!(o.status.success(), "{host}: {}", text(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        for r in v["runs"].as_array().unwrap() {
            let detection = r["detection_ms"].as_f64().expect("BFD noticed");
            assert!(detection < 5000.0, "{host}: {v}");
        }
    }
    run.wait_check("the silent uplinks");
    up_checks_and_goes_down(run);
}

/// `clos lab up` killed halfway (the controller and the switches running, the hosts not yet):
/// `clos lab down` removes every namespace and process it left.
#[test]
fn down_cleans_up_after_an_interrupted_up() {
    sweep_dead_runs();
    let tmp = tempfile::tempdir().unwrap();
    let mut perm = std::fs::metadata(tmp.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(tmp.path(), perm).unwrap();
    let name = format!("t{}i", std::process::id());
    let dir = tmp.path().join("lab");
    let topo = tmp.path().join("topology.yaml");
    std::fs::write(&topo, FRR_HOSTS).unwrap();
    let mut up = Command::new(CLOS)
        .args(["lab", "up", "--name", &name, "-t"])
        .arg(&topo)
        .arg("--dir")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let pids = loop {
        if let Ok(lab) = Lab::open(&dir)
            && lab.state().processes.iter().any(|p| p.kind == "bgpd")
        {
            break lab
                .state()
                .processes
                .iter()
                .map(|p| p.pid)
                .collect::<Vec<_>>();
        }
        assert!(Instant::now() < deadline, "up never started the switches");
        assert!(up.try_wait().unwrap().is_none(), "up ended early");
        std::thread::sleep(Duration::from_millis(20));
    };
    up.kill().unwrap();
    up.wait().unwrap();
    let prefix = format!("closlab-{name}-");
    assert!(sys::netns_list().iter().any(|n| n.starts_with(&prefix)));

    let o = Command::new(CLOS)
        .args(["lab", "down", "--name", &name])
        .arg("--dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let left: Vec<String> = sys::netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!dir.exists());
    // The daemons were children of the killed `up`; they are gone (or zombies of nobody).
    assert!(
        pids.iter().all(|p| !sys::alive(*p)),
        "a process survived down"
    );
}

/// Hosts announcing another host's /32, a more-specific of another rack's block and a
/// default route: their leaves accept none of them (they accept each host's own block), no
/// switch carries them, and every host still reaches the victims. Then they flood filtered
/// prefixes beyond the maximum, and their leaves shut their sessions. One rogue host sits
/// under BIRD leaves, the other under an FRR and a `clos bgp` leaf.
#[test]
fn hijacks_are_rejected_at_the_leaves() {
    let run = LabRun::up('h', Some(MIXED));
    let mut lab = run.lab();
    let hosts = lab.state().hosts.clone();
    // (rogue host, its leaves, the victim whose /32 it takes, a host whose block it splits)
    let rogues = [
        ("r1-h2", ["r1-l1", "r1-l2"], "r2-h1", "r2-h2"),
        ("r2-h2", ["r2-l1", "r2-l2"], "r1-h1", "r1-h2"),
    ];
    let plan = lab.plan().clone();
    let software = |sw: &str| {
        plan.node(sw)
            .and_then(|n| n.switch_software)
            .unwrap_or_default()
    };
    let port_of = |leaf: &str, host: &str| {
        plan.node(leaf)
            .unwrap()
            .ports
            .iter()
            .find(|p| p.1 == host)
            .unwrap()
            .0
            .clone()
    };
    let paths = |sw: &str, p: &IpNet| {
        switch::paths_of(software(sw), &run.dir.join(sw), p).unwrap_or_default()
    };
    let mut all_bogus = Vec::new();
    let mut plans = Vec::new();
    for (rogue, leaves, victim, split) in rogues {
        let other_block = hosts[split]
            .advertisements
            .iter()
            .find(|n| n.prefix_len() < 32)
            .copied()
            .expect("the host has a block");
        let bogus: Vec<IpNet> = vec![
            IpNet::new(hosts[victim].address.into(), 32).unwrap(),
            IpNet::new(other_block.addr(), other_block.prefix_len() + 1).unwrap(),
            "0.0.0.0/0".parse().unwrap(),
        ];
        all_bogus.extend(bogus.iter().copied());
        plans.push((rogue, leaves, bogus));
    }

    // Each rogue's software is replaced by FRR announcing the bogus prefixes too.
    for (rogue, _, bogus) in &plans {
        let mut announce = hosts[*rogue].advertisements.clone();
        announce.extend(bogus.iter().copied());
        assert!(lab.stop(rogue, None, true).unwrap() > 0);
        lab.start_host(rogue, std::path::Path::new(CLOS), Some(&announce))
            .unwrap();
    }

    // The rogues really send them, and their leaves take their own blocks from them again.
    let deadline = Instant::now() + Duration::from_secs(60);
    for (rogue, leaves, bogus) in &plans {
        let own = &hosts[*rogue].advertisements;
        let rogue_dir = run.dir.join(rogue).join("frr");
        loop {
            let sent = frr::vtysh_json(
                &rogue_dir,
                "show bgp ipv4 unicast neighbors eth0 advertised-routes json",
            )
            .unwrap_or(Value::Null);
            let sent_all = bogus
                .iter()
                .all(|b| sent["advertisedRoutes"].get(b.to_string()).is_some());
            let own_back = leaves
                .iter()
                .all(|l| own.iter().all(|p| paths(l, p).contains(&port_of(l, rogue))));
            if sent_all && own_back {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{rogue}'s session did not come back: sent {sent}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    // Nobody announces these legitimately: no switch may have them at all.
    for sw in plan.switches() {
        for b in &all_bogus {
            let found = paths(&sw.name, b);
            assert!(found.is_empty(), "{} has {b}: {found:?}", sw.name);
        }
    }
    // Traffic to the victims (and everyone) still reaches its destination.
    run.wait_check("the hijack attempts");

    // Then the rogues flood, on their sessions that are up: far more prefixes than their
    // assignment plus the headroom, all filtered. Every one of their leaves (BIRD, FRR,
    // `clos bgp`) counts what they send, not what passes, and shuts the session for good.
    let session_up = |leaf: &str, rogue: &str| {
        let port = port_of(leaf, rogue);
        switch::sessions(software(leaf), &run.dir.join(leaf))
            .unwrap_or_default()
            .iter()
            // BIRD names a port's sessions PORT_1, PORT_2...
            .any(|s| {
                (s.neighbor == port || s.neighbor.starts_with(&format!("{port}_")))
                    && s.established()
            })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    for (rogue, leaves, _) in &plans {
        for leaf in leaves {
            while !session_up(leaf, rogue) {
                assert!(
                    Instant::now() < deadline,
                    "{leaf} has no session with {rogue}"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        let mut flood = format!(
            "ip prefix-list CLOS-OWN seq 1 permit 10.99.0.0/24 le 32\nrouter bgp {}\n address-family ipv4 unicast\n",
            hosts[*rogue].asn
        );
        for i in 1..=40 {
            flood.push_str(&format!("  network 10.99.0.{i}/32\n"));
        }
        flood.push_str(" exit-address-family\nexit\n");
        let path = run._tmp.path().join(format!("{rogue}-flood.conf"));
        std::fs::write(&path, flood).unwrap();
        frr::apply(&run.dir.join(rogue).join("frr"), &path).unwrap();
    }
    for (rogue, leaves, _) in &plans {
        for leaf in leaves {
            while session_up(leaf, rogue) {
                assert!(
                    Instant::now() < deadline,
                    "{leaf} keeps its session with flooding {rogue}"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    std::thread::sleep(Duration::from_secs(5));
    for (rogue, leaves, _) in &plans {
        for leaf in leaves {
            assert!(
                !session_up(leaf, rogue),
                "{leaf} took flooding {rogue} back"
            );
        }
    }
}

/// Faults in the default lab, one after the other, each followed by a passing check: a silent
/// host uplink (BFD), a cut host uplink, a stopped spine, an agent killed with SIGKILL and restarted, and the
/// controller stopped.
#[test]
fn faults_leave_the_fabric_reachable() {
    let run = LabRun::up('x', None);
    let mut lab = run.lab();

    // A silent uplink (nftables drop, the link stays up): BFD (300 ms x 3 in the default lab)
    // takes the path away. The bound only tells BFD from the hold timer (9 s, so at least
    // 6 s after the last keepalive); it is no speed target (BENCHMARKS.md has those).
    let o = run.clos(&["failover", "r2-h2", "--runs", "1", "-o", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["bfd_interval_ms"], 300, "{v}");
    let r = &v["runs"][0];
    let detection = r["detection_ms"]
        .as_f64()
        .expect("BFD noticed the silent uplink");
    let fib = r["fib_ms"]
        .as_f64()
        .expect("the route left the silent uplink");
    assert!(detection < 5000.0 && fib < 5000.0, "{v}");
    assert!(
        fib >= detection - 50.0,
        "the FIB moved before BFD said why: {v}"
    );
    // Once the table is gone, both uplinks are back.
    run.wait_check("the silent uplink");

    // Cut r1-h1's first uplink at the leaf: traffic continues over the other.
    let (port, _, _) = lab
        .plan()
        .node("r1-l1")
        .unwrap()
        .ports
        .iter()
        .find(|p| p.1 == "r1-h1")
        .unwrap()
        .clone();
    let leaf_ns = lab.plan().node("r1-l1").unwrap().netns.clone();
    sys::ip_n(&leaf_ns, &["link", "set", &port, "down"]).unwrap();
    run.wait_check("cutting r1-h1's uplink to r1-l1");
    let (_, v, _) = run.check();
    let cut: Vec<&Value> = v["ecmp"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["host"] == "r1-h1")
        .collect();
    assert!(
        cut.iter().all(|e| e["next_hops"] == 1 && e["want"] == 1),
        "{v}"
    );

    // Stop a spine.
    assert!(lab.stop("s1", None, true).unwrap() > 0);
    run.wait_check("stopping spine s1");
    let o = run.clos(&["status", "-o", "json"]);
    let status: Value = serde_json::from_slice(&o.stdout).unwrap();
    for sw in status["switches"].as_array().unwrap() {
        match sw["role"].as_str().unwrap() {
            // The stopped spine's namespace stays, its daemons are gone.
            _ if sw["name"] == "s1" => assert_eq!(sw["sessions_established"], 0, "{sw}"),
            // Every leaf lost its session to s1 and kept the one to s2.
            "leaf" => assert!(sw["sessions_established"].as_u64().unwrap() < 4, "{sw}"),
            _ => {}
        }
    }

    // kill -9 a host's agent and start it again.
    let software = lab.plan().node("r2-h1").unwrap().host_software;
    assert_eq!(software, Some(clos_lab::topology::HostSoftware::Agent));
    assert_eq!(lab.stop("r2-h1", Some("agent"), true).unwrap(), 1);
    lab.start_host("r2-h1", std::path::Path::new(CLOS), None)
        .unwrap();
    assert_eq!(lab.plan().node("r2-h1").unwrap().host_software, software);
    run.wait_check("restarting r2-h1");

    // Stop the controller: the fabric keeps forwarding.
    assert!(lab.stop("mgmt", Some("controller"), false).unwrap() > 0);
    run.wait_check("stopping the controller");
}
