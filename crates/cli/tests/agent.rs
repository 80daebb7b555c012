//! `clos agent` end to end: a host namespace with two unnumbered uplinks to two FRR top-of-rack
//! namespaces, the real `clos controller` and `clos agent` processes, and the Linux kernel.
//!
//! Both ToRs own the anycast address 198.51.100.1 and announce it, so the host must install it
//! with two equal-cost next hops, and keeps reaching it while an uplink is cut. The controller
//! runs inside the host namespace (on its loopback), which keeps all traffic in namespaces.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use clos_model::Client;
use clos_testkit::peers::Frr;
use clos_testkit::{Daemon, Netns, Retry, wait_until, wait_until_with};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);
const ANYCAST: &str = "198.51.100.1";
const CONTROLLER: &str = "127.0.0.1:7700";

fn clos() -> &'static str {
    env!("CARGO_BIN_EXE_clos")
}

fn tor_config(asn: u32, id: u8) -> String {
    format!(
        "frr defaults datacenter
router bgp {asn}
 bgp router-id 10.255.255.{id}
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp graceful-restart
 neighbor swp1 interface remote-as external
 neighbor swp1 timers connect 2
 address-family ipv4 unicast
  network {ANYCAST}/32
 exit-address-family
"
    )
}

struct Fabric {
    dir: tempfile::TempDir,
    host: Netns,
    tors: Vec<(Netns, Frr)>,
    controller: Option<Daemon>,
    agent: Option<Daemon>,
    token: String,
    /// The host's own address, from the controller.
    host_ip: String,
}

impl Fabric {
    fn new() -> Fabric {
        let dir = tempfile::tempdir().unwrap();
        let host = Netns::new().unwrap();
        host.ip(&["link", "set", "lo", "up"]).unwrap();
        let mut tors = Vec::new();
        for (i, asn) in [(1u8, 65101u32), (2, 65102)] {
            let tor = Netns::new().unwrap();
            host.link_named(&format!("eth{}", i - 1), &tor, "swp1")
                .unwrap();
            // The anycast address on the switch itself (`lo`: no dummy driver everywhere).
            tor.ip(&["link", "set", "lo", "up"]).unwrap();
            tor.add_addr("lo", &format!("{ANYCAST}/32")).unwrap();
            let frr = Frr::start_config(&tor, &tor_config(asn, i)).unwrap();
            tors.push((tor, frr));
        }
        let mut f = Fabric {
            dir,
            host,
            tors,
            controller: None,
            agent: None,
            token: String::new(),
            host_ip: String::new(),
        };
        f.start_controller();
        f.token = wait_until(TIMEOUT, "the controller's admin token", || {
            let log = std::fs::read_to_string(f.path("controller.log")).unwrap_or_default();
            log.lines()
                .find_map(|l| l.strip_prefix("admin token (shown once, store it safely): "))
                .map(str::to_owned)
                .ok_or_else(|| Retry::from("not printed yet".to_owned()))
        })
        .unwrap();
        std::fs::write(f.path("token"), &f.token).unwrap();
        let setup = f.api(|c| async move {
            c.put::<Value, Value>(
                "/v1/site",
                &json!({
                    "name": "dc1",
                    "asn_plan": {"spine_asn": 4200000000u32, "rack_asn_first": 4200000001u32,
                        "rack_asn_last": 4200009999u32, "host_asn_first": 4200010000u32,
                        "host_asn_last": 4294967294u32},
                }),
            )
            .await?;
            c.post::<Value, Value>(
                "/v1/pools",
                &json!({"name": "tp", "cidr": "10.0.0.0/16", "kind": "tenant_subnets"}),
            )
            .await?;
            c.post::<Value, Value>("/v1/tenants", &json!({"name": "demo"}))
                .await?;
            c.post::<Value, Value>(
                "/v1/subnets",
                &json!({"name": "web", "tenant": "demo", "pool": "tp", "cidr": "10.0.1.0/24"}),
            )
            .await?;
            c.post::<Value, Value>("/v1/nodes", &json!({"name": "h1"}))
                .await?;
            c.post::<Value, Value>("/v1/nodes", &json!({"name": "h2"}))
                .await?;
            let me = c
                .post::<Value, Value>(
                    "/v1/subnets/web/addresses",
                    &json!({"owner": {"kind": "host", "id": "h1"}, "node": "h1"}),
                )
                .await?;
            let victim = c
                .post::<Value, Value>(
                    "/v1/subnets/web/addresses",
                    &json!({"owner": {"kind": "vm", "id": "victim"}, "node": "h2"}),
                )
                .await?;
            Ok(json!([me["ip"], victim["ip"]]))
        });
        f.host_ip = setup[0].as_str().unwrap().to_owned();
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start_controller(&mut self) {
        let mut cmd = self.host.command(clos());
        cmd.args(["controller", "--listen", CONTROLLER, "--data-dir"])
            .arg(self.path("controller"));
        self.controller =
            Some(Daemon::spawn("controller", cmd, &self.path("controller.log")).unwrap());
    }

    /// Runs API calls from inside the host namespace, where the controller listens.
    fn api<F, Fut>(&self, f: F) -> Value
    where
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Value, clos_model::Error>>,
    {
        let token = self.token.clone();
        self.host
            .spawn_thread(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let c = Client::new(&format!("http://{CONTROLLER}"), Some(token)).unwrap();
                    // The controller may still be starting.
                    for _ in 0..100 {
                        if c.get::<Value>("/v1/site")
                            .await
                            .map_or_else(|e| e.problem().is_some(), |_| true)
                        {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    f(c).await
                })
            })
            .unwrap()
            .join()
            .unwrap()
            .unwrap()
    }

    fn write_config(&self, extra: &str) -> PathBuf {
        let path = self.path("agent.yaml");
        let mut f = std::fs::File::create(&path).unwrap();
        write!(
            f,
            "node: h1
controller:
  url: http://{CONTROLLER}
  token_file: token
state_dir: state
heartbeat_interval: 1
bgp:
  hold_time: 9
uplinks:
  - interface: eth0
  - interface: eth1
{extra}"
        )
        .unwrap();
        path
    }

    fn start_agent(&mut self) {
        let mut cmd = self.host.command(clos());
        cmd.args(["agent", "-c"]).arg(self.path("agent.yaml"));
        self.agent = Some(Daemon::spawn("agent", cmd, &self.path("agent.log")).unwrap());
    }

    fn agent_cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = self.host.command(clos());
        cmd.args(["agent", "-c"])
            .arg(self.path("agent.yaml"))
            .args(args);
        cmd.output().unwrap()
    }

    fn status(&self) -> Result<Value, Retry> {
        let out = self.agent_cli(&["status", "-o", "json"]);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| Retry::from(e.to_string()))
    }

    fn daemons(&self) -> Vec<&dyn clos_testkit::Diagnose> {
        let mut d: Vec<&dyn clos_testkit::Diagnose> = self
            .tors
            .iter()
            .map(|(_, f)| f as &dyn clos_testkit::Diagnose)
            .collect();
        d.extend(self.agent.iter().map(|a| a as &dyn clos_testkit::Diagnose));
        d.extend(
            self.controller
                .iter()
                .map(|a| a as &dyn clos_testkit::Diagnose),
        );
        d
    }

    /// The next hops (interface names) of the host's route to `prefix`, as the kernel has it.
    fn kernel_next_hops(&self, prefix: &str) -> Vec<String> {
        let out = self
            .host
            .exec("ip", &["-j", "route", "show", prefix, "proto", "198"])
            .unwrap_or_default();
        let routes: Vec<Value> = serde_json::from_str(&out).unwrap_or_default();
        let Some(r) = routes.first() else {
            return vec![];
        };
        if let Some(id) = r.get("nhid").and_then(Value::as_u64) {
            let out = self
                .host
                .exec("ip", &["-j", "nexthop", "show", "id", &id.to_string()])
                .unwrap_or_default();
            let nh: Vec<Value> = serde_json::from_str(&out).unwrap_or_default();
            let Some(nh) = nh.first() else { return vec![] };
            if let Some(group) = nh.get("group").and_then(Value::as_array) {
                return group
                    .iter()
                    .filter_map(|m| {
                        let id = m.get("id")?.as_u64()?.to_string();
                        let out = self
                            .host
                            .exec("ip", &["-j", "nexthop", "show", "id", &id])
                            .ok()?;
                        let v: Vec<Value> = serde_json::from_str(&out).ok()?;
                        Some(v.first()?.get("dev")?.as_str()?.to_owned())
                    })
                    .collect();
            }
            return nh
                .get("dev")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .into_iter()
                .collect();
        }
        if let Some(hops) = r.get("nexthops").and_then(Value::as_array) {
            return hops
                .iter()
                .filter_map(|h| Some(h.get("dev")?.as_str()?.to_owned()))
                .collect();
        }
        r.get("dev")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .into_iter()
            .collect()
    }

    /// Prefixes a ToR has learned from the host.
    fn tor_routes_from_host(&self, tor: usize) -> Result<Vec<String>, Retry> {
        let out = self.tors[tor]
            .1
            .vtysh("show bgp ipv4 unicast json")
            .map_err(Retry::Fail)?;
        let v: Value = serde_json::from_str(&out).map_err(|e| Retry::from(e.to_string()))?;
        let routes = v
            .get("routes")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Ok(routes
            .into_iter()
            .filter(|(p, _)| p != &format!("{ANYCAST}/32"))
            .map(|(p, _)| p)
            .collect())
    }

    fn wait_converged(&self) {
        wait_until_with(
            TIMEOUT,
            "two equal-cost next hops to the anycast address",
            &self.daemons(),
            || {
                let mut hops = self.kernel_next_hops(&format!("{ANYCAST}/32"));
                hops.sort();
                if hops == ["eth0", "eth1"] {
                    Ok(())
                } else {
                    Err(format!("{hops:?}").into())
                }
            },
        )
        .unwrap();
        for tor in 0..2 {
            wait_until_with(
                TIMEOUT,
                "the ToR to learn the host's block",
                &self.daemons(),
                || {
                    let r = self.tor_routes_from_host(tor)?;
                    if r == ["10.0.1.0/26"] {
                        Ok(())
                    } else {
                        Err(format!("{r:?}").into())
                    }
                },
            )
            .unwrap();
        }
    }

    /// `count` pings to the anycast address from the host's own address, `interval` apart;
    /// returns how many were lost.
    fn ping_loss(&self, count: u32, interval: &str) -> u32 {
        let out = self
            .host
            .command("ping")
            .args([
                "-n",
                "-q",
                "-c",
                &count.to_string(),
                "-i",
                interval,
                "-W",
                "1",
                "-I",
                &self.host_ip,
                ANYCAST,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let received = text
            .lines()
            .find_map(|l| {
                l.split(", ")
                    .find_map(|p| p.strip_suffix(" received")?.parse::<u32>().ok())
            })
            .unwrap_or(0);
        count - received
    }
}

fn assert_foreign_route(host: &Netns, prefix: &str) {
    let out = host.exec("ip", &["-j", "route", "show", prefix]).unwrap();
    let v: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(v.len(), 1, "{prefix} is gone: {out}");
}

/// ECMP into the kernel, exactly the assigned prefix advertised (a forged local endpoint is
/// not), routes of others untouched and our own stale ones removed, an endpoint reachable
/// through the link-local gateway, and an uplink cut that traffic survives.
#[test]
fn agent_routes_on_the_host_with_ecmp() {
    let mut f = Fabric::new();
    // Someone else's routes, and a stale one of ours from an earlier run.
    f.host
        .ip(&["route", "add", "203.0.113.0/24", "dev", "eth0"])
        .unwrap();
    f.host
        .ip(&[
            "route",
            "add",
            "203.0.114.0/24",
            "dev",
            "eth1",
            "proto",
            "bgp",
        ])
        .unwrap();
    f.host
        .ip(&[
            "route",
            "add",
            "192.0.2.99/32",
            "dev",
            "eth1",
            "proto",
            "198",
        ])
        .unwrap();
    // The forged entry: the victim's address (assigned to h2) as a local endpoint here.
    f.write_config(
        "metrics_listen: 127.0.0.1:9180\nendpoints:\n  - ip: 10.0.1.64\n    interface: forged0\n",
    );
    f.host
        .ip(&[
            "link", "add", "forged0", "type", "veth", "peer", "name", "forged1",
        ])
        .unwrap();
    f.host.ip(&["link", "set", "forged0", "up"]).unwrap();
    f.host.ip(&["link", "set", "forged1", "up"]).unwrap();
    f.start_agent();
    f.wait_converged();

    // Traffic flows from the host's own address, which the agent put on clos0.
    assert_eq!(f.ping_loss(3, "0.2"), 0);
    let status = wait_until(TIMEOUT, "the first FIB reconcile", || {
        let s = f.status()?;
        if s["fib"]["reconciled"] == true {
            Ok(s)
        } else {
            Err(format!("{s}").into())
        }
    })
    .unwrap();
    assert_eq!(status["advertised"], json!(["10.0.1.0/26"]), "{status}");
    assert_eq!(status["controller"]["connected"], true, "{status}");
    assert!(status["applied_revision"].as_u64().unwrap() > 0, "{status}");
    let established = status["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "Established")
        .count();
    assert_eq!(established, 2, "{status}");

    // Prometheus metrics, as a scraper in the host sees them.
    let metrics = f
        .host
        .exec("curl", &["-sf", "http://127.0.0.1:9180/metrics"])
        .unwrap();
    for line in [
        "clos_agent_bgp_sessions_established 2",
        "clos_agent_bgp_sessions_configured 2",
        "clos_agent_controller_connected 1",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    assert!(
        metrics.contains("clos_agent_fib_operations_total{op=\"added\"}"),
        "{metrics}"
    );

    // Others' routes survive the reconcile; our stale one does not.
    assert_foreign_route(&f.host, "203.0.113.0/24");
    assert_foreign_route(&f.host, "203.0.114.0/24");
    let stale = f
        .host
        .exec("ip", &["-j", "route", "show", "192.0.2.99/32"])
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Vec<Value>>(&stale).unwrap().len(),
        0,
        "{stale}"
    );

    // The forged endpoint is routed locally but never announced: the ToRs hold only the block.
    let victim = "10.0.1.64";
    assert_eq!(
        f.host
            .exec(
                "ip",
                &[
                    "-j",
                    "route",
                    "show",
                    &format!("{victim}/32"),
                    "proto",
                    "198"
                ]
            )
            .unwrap()
            .matches("forged0")
            .count(),
        1
    );
    for tor in 0..2 {
        assert_eq!(f.tor_routes_from_host(tor).unwrap(), ["10.0.1.0/26"]);
    }
    let list = f.agent_cli(&["endpoint", "list", "-o", "json"]);
    let list: Vec<Value> = serde_json::from_slice(&list.stdout).unwrap();
    let forged = list.iter().find(|e| e["ip"] == victim).unwrap();
    assert_eq!(forged["advertised"], false, "{list:?}");

    // An endpoint added by hand: a namespace behind a veth, using 169.254.1.1 as its gateway.
    let vm = Netns::new().unwrap();
    f.host.link_named("tapvm", &vm, "eth0").unwrap();
    vm.ip(&["link", "set", "lo", "up"]).unwrap();
    let vm_ip = "10.0.1.10";
    vm.add_addr("eth0", &format!("{vm_ip}/32")).unwrap();
    vm.ip(&[
        "route",
        "add",
        "169.254.1.1",
        "dev",
        "eth0",
        "scope",
        "link",
    ])
    .unwrap();
    vm.ip(&[
        "route",
        "add",
        "default",
        "via",
        "169.254.1.1",
        "dev",
        "eth0",
        "onlink",
    ])
    .unwrap();
    let out = f.agent_cli(&[
        "endpoint",
        "add",
        vm_ip,
        "--interface",
        "tapvm",
        "-o",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(added[0]["advertised"], true, "{added:?}");
    wait_until_with(
        TIMEOUT,
        "the endpoint to reach the fabric's anycast address",
        &f.daemons(),
        || {
            let out = vm
                .command("ping")
                .args(["-n", "-c", "1", "-W", "1", ANYCAST])
                .output()
                .map_err(|e| Retry::from(e.to_string()))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stdout).into_owned().into())
            }
        },
    )
    .unwrap();
    // Deleting it removes its route.
    let out = f.agent_cli(&["endpoint", "del", vm_ip]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(TIMEOUT, "the endpoint's route to go", || {
        let out = f
            .host
            .exec(
                "ip",
                &[
                    "-j",
                    "route",
                    "show",
                    &format!("{vm_ip}/32"),
                    "proto",
                    "198",
                ],
            )
            .unwrap();
        if out.contains("tapvm") {
            Err(out.into())
        } else {
            Ok(())
        }
    })
    .unwrap();
    let out = f.agent_cli(&["endpoint", "del", vm_ip]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not an endpoint"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Cut one uplink (on the switch side): traffic keeps flowing over the other.
    f.tors[0].0.ip(&["link", "set", "swp1", "down"]).unwrap();
    assert_eq!(f.ping_loss(5, "0.2"), 0);
    wait_until(TIMEOUT, "one next hop left", || {
        let hops = f.kernel_next_hops(&format!("{ANYCAST}/32"));
        if hops == ["eth1"] {
            Ok(())
        } else {
            Err(format!("{hops:?}").into())
        }
    })
    .unwrap();
}

/// kill -9 of the agent and a restart: continuous ping loses nothing. Then the controller is
/// stopped and the agent restarted: it serves its saved state; the controller comes back and a
/// change made there is applied.
#[test]
fn agent_restarts_without_loss_and_survives_the_controller() {
    let mut f = Fabric::new();
    f.write_config("");
    f.start_agent();
    f.wait_converged();
    wait_until(TIMEOUT, "the first FIB reconcile", || {
        let s = f.status()?;
        if s["fib"]["reconciled"] == true {
            Ok(())
        } else {
            Err(format!("{s}").into())
        }
    })
    .unwrap();

    // Continuous ping (20 per second for 8 s) across kill -9 and restart.
    let host = f.host.name().to_owned();
    let host_ip = f.host_ip.clone();
    let pinger = std::thread::spawn(move || {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &host, "ping", "-n", "-q", "-c", "160", "-i", "0.05", "-W", "1",
                "-I", &host_ip, ANYCAST,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    std::thread::sleep(Duration::from_secs(1));
    f.agent.take().unwrap().kill();
    std::thread::sleep(Duration::from_millis(500));
    f.start_agent();
    let summary = pinger.join().unwrap();
    assert!(summary.contains(" 0% packet loss"), "{summary}");
    f.wait_converged();

    // Controller down, agent restarted: it starts from its local state and keeps the host's
    // address and routes.
    f.controller.take().unwrap().kill();
    f.agent.take().unwrap().kill();
    f.start_agent();
    let status = wait_until(TIMEOUT, "the agent to serve its saved state", || {
        let s = f.status()?;
        if s["from_local_state"] == true && s["advertised"] == json!(["10.0.1.0/26"]) {
            Ok(s)
        } else {
            Err(format!("{s}").into())
        }
    })
    .unwrap();
    assert_eq!(status["controller"]["connected"], false, "{status}");
    assert_eq!(f.ping_loss(3, "0.2"), 0);
    let addrs = f.host.exec("ip", &["-j", "addr", "show"]).unwrap();
    assert!(addrs.contains(&format!("\"{}\"", f.host_ip)), "{addrs}");

    // Controller back; a second host address assigned there reaches the host.
    f.start_controller();
    let second = f.api(|c| async move {
        c.post::<Value, Value>(
            "/v1/subnets/web/addresses",
            &json!({"owner": {"kind": "host", "id": "h1-second"}, "node": "h1"}),
        )
        .await
    });
    let second = second["ip"].as_str().unwrap().to_owned();
    wait_until_with(TIMEOUT, "the new address on the host", &f.daemons(), || {
        let addrs = f
            .host
            .exec("ip", &["-j", "addr", "show"])
            .map_err(Retry::Fail)?;
        if addrs.contains(&format!("\"{second}\"")) {
            Ok(())
        } else {
            Err(addrs.into())
        }
    })
    .unwrap();
    let status = f.status().unwrap();
    assert_eq!(status["controller"]["connected"], true, "{status}");
    assert_eq!(status["from_local_state"], false, "{status}");
}
