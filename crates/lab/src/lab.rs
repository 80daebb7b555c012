//! The lab's lifecycle: `up`, `status`, `check`, `exec`, `down`.
//!
//! Every step is recorded in `lab.json` in the lab directory *before* it runs, so `down` can
//! undo a crashed `up`; `down` also sweeps every namespace with the lab's prefix, so nothing
//! survives even without a state file.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clos_model::{
    AllocateAddress, BfdTimers, Client, CreateToken, Node, Owner, OwnerKind, Pool, PoolKind, Rack,
    Site, Subnet, Switch, SwitchPort, SwitchRole, Tenant, TokenRole, Uplink,
};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::check::{self, CheckHost, CheckReport};
use crate::error::{Error, Result};
use crate::plan::{self, MGMT_ADDR, NodePlan, Plan, Role};
use crate::switch::{self, Session};
use crate::sys;
use crate::topology::{HostSoftware, SwitchSoftware, Topology};
use crate::{bird, frr, speaker};

/// Where labs live unless `--dir` says otherwise: one directory per lab name. Under `/run`,
/// so it goes away on reboot together with the namespaces.
pub const DEFAULT_ROOT: &str = "/run/clos/lab";
const STATE_FILE: &str = "lab.json";
pub const DEMO_TENANT: &str = "demo";
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(90);
/// How often `clos lab sync --watch` renders the switch configs.
pub const SYNC_EVERY: Duration = Duration::from_secs(2);

/// The lab directory of lab `name`.
pub fn default_dir(name: &str) -> PathBuf {
    Path::new(DEFAULT_ROOT).join(name)
}

/// A process the lab started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub node: String,
    /// `controller`, `sync`, `zebra`, `bgpd`, `bfdd`, `bird`, `bgp` (`clos bgp`), `agent`.
    pub kind: String,
    /// The pid it started with; a `clos bgp` switch's current one is in its pid file
    /// ([`Lab::pid_of`]).
    pub pid: u32,
    /// Its start time ([`sys::start_time`]), so that a reused pid is not taken for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
}

/// What the controller assigned to a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAssignment {
    pub address: Ipv4Addr,
    pub asn: u32,
    pub advertisements: Vec<IpNet>,
}

/// `lab.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub topology: Topology,
    pub plan: Plan,
    /// The step in progress, or `up` when `up` finished.
    pub phase: String,
    pub processes: Vec<Process>,
    pub hosts: BTreeMap<String, HostAssignment>,
}

/// How `up` starts things.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub topology: Topology,
    pub dir: PathBuf,
    /// The `clos` binary (the controller and the agents run it).
    pub exe: PathBuf,
    /// Tear down an existing lab of this name first, even a healthy one.
    pub rebuild: bool,
}

/// What `up` did.
#[derive(Debug, Clone, Serialize)]
pub enum UpOutcome {
    Started(Summary),
    /// The lab was up and healthy already; nothing changed.
    AlreadyUp(Summary),
}

/// Sessions, routes and ECMP after `up`, and `status`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub lab: String,
    pub dir: PathBuf,
    pub controller: String,
    pub switches: Vec<SwitchSummary>,
    pub hosts: Vec<HostSummary>,
    /// Seconds `up` took (absent for `status`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SwitchSummary {
    pub name: String,
    pub role: Role,
    pub software: SwitchSoftware,
    pub netns: bool,
    pub processes_alive: bool,
    pub sessions_established: usize,
    pub sessions: usize,
    /// IPv4 prefixes the switch has a BGP route for.
    pub routes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostSummary {
    pub name: String,
    pub rack: String,
    pub software: HostSoftware,
    pub address: Option<Ipv4Addr>,
    pub netns: bool,
    pub processes_alive: bool,
    /// The fewest equal-cost next hops towards a host of another rack.
    pub ecmp_paths: usize,
}

/// An existing lab, opened from its directory.
#[derive(Debug)]
pub struct Lab {
    dir: PathBuf,
    state: State,
}

impl Lab {
    pub fn open(dir: &Path) -> Result<Lab> {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NoLab(dir.to_path_buf()),
            _ => Error::io(format!("reading {}", path.display()), e),
        })?;
        let state = serde_json::from_str(&text).map_err(|e| {
            Error::Invalid(format!(
                "{} is damaged ({e}): run `clos lab down` to clean up",
                path.display()
            ))
        })?;
        Ok(Lab {
            dir: dir.to_path_buf(),
            state,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn plan(&self) -> &Plan {
        &self.state.plan
    }

    fn save(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.state)
            .map_err(|e| Error::Invalid(format!("encoding the lab state: {e}")))?;
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        sys::write_file(&tmp, &text)?;
        std::fs::rename(&tmp, self.dir.join(STATE_FILE))
            .map_err(|e| Error::io("saving the lab state", e))
    }

    fn phase(&mut self, phase: &str) -> Result<()> {
        tracing::debug!(phase, "lab step");
        self.state.phase = phase.to_string();
        self.save()
    }

    fn record(&mut self, node: &str, kind: &str, pid: u32) -> Result<()> {
        self.state.processes.push(Process {
            node: node.to_string(),
            kind: kind.to_string(),
            pid,
            started: sys::start_time(pid),
        });
        self.save()
    }

    fn node(&self, name: &str) -> Result<&NodePlan> {
        self.state.plan.node(name).ok_or_else(|| {
            let names: Vec<&str> = self
                .state
                .plan
                .nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect();
            Error::Invalid(format!(
                "no node {name} in lab {}: pick one of {}",
                self.state.plan.lab,
                names.join(", ")
            ))
        })
    }

    fn token_file(&self) -> PathBuf {
        self.dir.join("controller").join("admin-token")
    }

    fn admin_token(&self) -> Result<String> {
        let path = self.token_file();
        std::fs::read_to_string(&path)
            .map(|t| t.trim().to_string())
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))
    }

    /// Runs `f` with an admin client on a thread inside the management namespace.
    fn api<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>>,
        T: Send + 'static,
    {
        let client = Client::new(&self.state.plan.controller_url(), Some(self.admin_token()?))?;
        sys::in_netns(&self.state.plan.mgmt().netns, move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::io("starting an async runtime", e))?;
            rt.block_on(f(client))
        })?
    }

    // -----------------------------------------------------------------------------------------
    // up

    /// Builds the lab (or reports that it is up already), waiting for convergence.
    pub fn up(opts: &UpOptions, progress: &mut dyn FnMut(&str)) -> Result<UpOutcome> {
        opts.topology.validate()?;
        let started = Instant::now();
        if let Ok(lab) = Lab::open(&opts.dir) {
            if lab.state.plan.lab != opts.topology.name {
                return Err(Error::Invalid(format!(
                    "{} holds lab {}, not {}: pick another --dir",
                    opts.dir.display(),
                    lab.state.plan.lab,
                    opts.topology.name
                )));
            }
            if !opts.rebuild && lab.state.phase == "up" && lab.healthy() {
                if lab.state.topology != opts.topology {
                    return Err(Error::Invalid(format!(
                        "lab {} is up with another topology: `clos lab down` first, or `clos lab up --rebuild`",
                        lab.state.plan.lab
                    )));
                }
                return Ok(UpOutcome::AlreadyUp(lab.summary(None)?));
            }
            progress(&format!(
                "lab {} exists ({}): removing it first",
                lab.state.plan.lab,
                if opts.rebuild {
                    "rebuild asked".to_string()
                } else if lab.state.phase == "up" {
                    "not healthy".to_string()
                } else {
                    format!("stopped during `{}`", lab.state.phase)
                }
            ));
        }
        down(&opts.dir, &opts.topology.name)?;

        let plan = Plan::of(&opts.topology);
        std::fs::create_dir_all(&opts.dir)
            .map_err(|e| Error::io(format!("creating {}", opts.dir.display()), e))?;
        // FRR drops privileges: its user must reach its directories.
        set_mode(&opts.dir, 0o755)?;
        let mut lab = Lab {
            dir: opts.dir.clone(),
            state: State {
                topology: opts.topology.clone(),
                plan,
                phase: "creating namespaces".into(),
                processes: Vec::new(),
                hosts: BTreeMap::new(),
            },
        };
        lab.save()?;
        progress("creating namespaces and links");
        lab.create_namespaces()?;
        lab.phase("starting the controller")?;
        progress("starting the controller");
        lab.start_controller(&opts.exe)?;
        lab.phase("registering the inventory")?;
        progress("registering site, racks, switches, nodes; allocating addresses");
        lab.register()?;
        lab.phase("starting the switches")?;
        progress("rendering switch configs and starting the switches");
        lab.start_switches(&opts.exe)?;
        lab.phase("starting the hosts")?;
        progress("starting the hosts");
        let hosts: Vec<String> = lab.state.plan.hosts().map(|h| h.name.clone()).collect();
        for h in &hosts {
            lab.start_host(h, &opts.exe, None)?;
        }
        lab.start_sync(&opts.exe)?;
        lab.phase("converging")?;
        lab.wait_converged(progress)?;
        lab.phase("up")?;
        Ok(UpOutcome::Started(
            lab.summary(Some(started.elapsed().as_secs_f64()))?,
        ))
    }

    fn create_namespaces(&mut self) -> Result<()> {
        let plan = self.state.plan.clone();
        for n in &plan.nodes {
            sys::ip(&["netns", "add", &n.netns])?;
            sys::ip_n(&n.netns, &["link", "set", "lo", "up"])?;
            match n.role {
                Role::Spine | Role::Leaf => {
                    for key in [
                        "net.ipv4.ip_forward=1",
                        "net.ipv6.conf.all.forwarding=1",
                        "net.ipv4.fib_multipath_hash_policy=1",
                    ] {
                        sys::netns_exec(&n.netns, "sysctl", &["-qw", key])?;
                    }
                    if let Some(a) = n.address {
                        sys::ip_n(&n.netns, &["addr", "add", &format!("{a}/32"), "dev", "lo"])?;
                    }
                }
                Role::Host => {
                    sys::netns_exec(
                        &n.netns,
                        "sysctl",
                        &["-qw", "net.ipv4.fib_multipath_hash_policy=1"],
                    )?;
                }
                Role::Mgmt => {
                    sys::ip_n(&n.netns, &["link", "add", "br0", "type", "bridge"])?;
                    sys::ip_n(
                        &n.netns,
                        &["addr", "add", &format!("{MGMT_ADDR}/24"), "dev", "br0"],
                    )?;
                    sys::ip_n(&n.netns, &["link", "set", "br0", "up"])?;
                }
            }
        }
        for l in &plan.links {
            let (a, b) = (
                self.node(&l.a)?.netns.clone(),
                self.node(&l.b)?.netns.clone(),
            );
            veth(&a, &l.a_if, &b, &l.b_if)?;
        }
        // The management network: one veth per host into the bridge.
        let mgmt = plan.mgmt().netns.clone();
        for (i, h) in plan.hosts().enumerate() {
            let port = format!("m{i}");
            veth(&h.netns, "mgmt0", &mgmt, &port)?;
            sys::ip_n(&mgmt, &["link", "set", &port, "master", "br0"])?;
            let addr = h
                .address
                .ok_or_else(|| Error::Invalid("host without address".into()))?;
            sys::ip_n(
                &h.netns,
                &["addr", "add", &format!("{addr}/24"), "dev", "mgmt0"],
            )?;
        }
        Ok(())
    }

    fn start_controller(&mut self, exe: &Path) -> Result<()> {
        let dir = self.dir.join("controller");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        set_mode(&dir, 0o700)?;
        let out = dir.join("controller.out");
        let mut cmd = sys::netns_command(&self.state.plan.mgmt().netns, exe);
        cmd.arg("controller")
            .arg("--data-dir")
            .arg(dir.join("store"))
            .arg("--listen")
            .arg(format!("{MGMT_ADDR}:{}", plan::CONTROLLER_PORT));
        let pid = sys::spawn_split(cmd, &out, &dir.join("controller.log"))?;
        self.record("mgmt", "controller", pid)?;
        let token = sys::wait_for(
            "the controller to start",
            Duration::from_secs(30),
            Duration::from_millis(50),
            || {
                if !sys::alive(pid) {
                    return Err(Error::Died {
                        process: "the controller".into(),
                        detail: sys::log_tail(&dir.join("controller.log")),
                    });
                }
                let text = std::fs::read_to_string(&out).unwrap_or_default();
                let token = text
                    .lines()
                    .find_map(|l| l.split_once("admin token").map(|(_, t)| t))
                    .and_then(|t| t.rsplit(' ').next())
                    .map(str::to_string);
                let listening = text.lines().any(|l| l.starts_with("listening on"));
                Ok(match token {
                    Some(t) if listening => Ok(t),
                    _ => Err("not listening yet".into()),
                })
            },
        )?;
        sys::write_file(&self.token_file(), &token)?;
        // The token is in the token file now; the controller's own output keeps no copy.
        sys::write_file(&out, "admin token: see admin-token\n")?;
        Ok(())
    }

    fn register(&mut self) -> Result<()> {
        let t = self.state.topology.clone();
        let plan = self.state.plan.clone();
        let hosts: Vec<String> = plan.hosts().map(|h| h.name.clone()).collect();
        let assignments = self.api(move |c| async move {
            c.put_site(&Site {
                name: t.name.clone(),
                asn_plan: t.asn_plan.clone(),
                address_ranges: vec![t.pool],
                bfd: t.bfd,
                resource_version: 0,
            })
            .await?;
            for r in &t.racks {
                c.create(&Rack {
                    name: r.name.clone(),
                    asn: r.asn,
                    leaves: r.leaves.iter().map(|l| l.name.clone()).collect(),
                    description: String::new(),
                    resource_version: 0,
                })
                .await?;
            }
            for h in plan.hosts() {
                let mut node = Node::new(&h.name);
                node.rack = h.rack.clone();
                node.uplinks = h
                    .ports
                    .iter()
                    .map(|(port, leaf, leaf_port)| Uplink {
                        interface: port.clone(),
                        switch: leaf.clone(),
                        port: leaf_port.clone(),
                    })
                    .collect();
                node.underlay_addresses = h.address.map(Into::into).into_iter().collect();
                c.create(&node).await?;
            }
            for s in plan.switches() {
                let hosts_on: Vec<SwitchPort> = s
                    .ports
                    .iter()
                    .map(|(port, peer, _)| SwitchPort {
                        name: port.clone(),
                        node: plan
                            .node(peer)
                            .filter(|p| p.role == Role::Host)
                            .map(|p| p.name.clone()),
                    })
                    .collect();
                c.create(&Switch {
                    name: s.name.clone(),
                    role: if s.role == Role::Spine {
                        SwitchRole::Spine
                    } else {
                        SwitchRole::Leaf
                    },
                    rack: s.rack.clone(),
                    asn: None,
                    loopback: s.address.map(Into::into),
                    ports: hosts_on,
                    resource_version: 0,
                })
                .await?;
            }
            let mut pool = Pool::new(DEMO_TENANT, t.pool, PoolKind::TenantSubnets);
            pool.block_prefix_len = Some(28);
            c.create(&pool).await?;
            c.create(&Tenant::new(DEMO_TENANT)).await?;
            c.create(&Subnet::new(
                DEMO_TENANT,
                DEMO_TENANT,
                DEMO_TENANT,
                t.subnet,
            ))
            .await?;
            let mut out = BTreeMap::new();
            for h in &hosts {
                let a = c
                    .allocate(
                        DEMO_TENANT,
                        &AllocateAddress {
                            owner: Owner::new(OwnerKind::Host, h.clone()),
                            node: Some(h.clone()),
                            ip: None,
                            fixed: false,
                        },
                    )
                    .await?;
                let token = c
                    .create_token(&CreateToken {
                        role: TokenRole::Node,
                        tenants: vec![],
                        node: Some(h.clone()),
                        description: format!("agent of {h} (clos lab)"),
                    })
                    .await?;
                let desired = c.desired_state(h).await?;
                let std::net::IpAddr::V4(address) = a.ip else {
                    return Err(Error::Invalid(format!("{h} got an IPv6 address {}", a.ip)));
                };
                out.insert(
                    h.clone(),
                    (
                        HostAssignment {
                            address,
                            asn: desired.state.asn.unwrap_or_default(),
                            advertisements: desired.state.advertisements,
                        },
                        token.secret,
                    ),
                );
            }
            Ok(out)
        })?;
        for (h, (assignment, secret)) in assignments {
            let token = self.dir.join(&h).join("token");
            sys::write_file(&token, &secret)?;
            set_mode(&token, 0o600)?;
            self.state.hosts.insert(h, assignment);
        }
        self.save()
    }

    /// Every switch's config, rendered by the controller for its software, in plan order
    /// (one API session for all of them).
    pub(crate) fn render_switches(&self) -> Result<Vec<(NodePlan, SwitchSoftware, String)>> {
        let switches: Vec<(NodePlan, SwitchSoftware)> = self
            .state
            .plan
            .switches()
            .map(|s| (s.clone(), s.switch_software.unwrap_or_default()))
            .collect();
        self.api(move |c| async move {
            let mut out = Vec::with_capacity(switches.len());
            for (s, software) in switches {
                let v: serde_json::Value = c
                    .get(&format!(
                        "/v1/switches/{}/config?software={}&format=json",
                        s.name,
                        software.name()
                    ))
                    .await?;
                let config = v
                    .get("config")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        Error::Invalid("the controller's answer has no config".into())
                    })?;
                out.push((s, software, config));
            }
            Ok(out)
        })
    }

    fn start_switches(&mut self, exe: &Path) -> Result<()> {
        let configs = self.render_switches()?;
        // Record the intent first: `down` finds the processes through the namespaces anyway.
        let results: Vec<Result<Vec<(String, u32)>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = configs
                .iter()
                .map(|(s, software, config)| {
                    let dir = switch::dir_of(&self.dir, &s.name);
                    scope.spawn(move || switch::start(*software, exe, &s.netns, &dir, config))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Invalid("a switch start panicked".into())))
                })
                .collect()
        });
        for ((s, _, _), r) in configs.iter().zip(results) {
            for (kind, pid) in r? {
                self.record(&s.name, &kind, pid)?;
            }
        }
        Ok(())
    }

    /// Starts `clos lab sync --watch` in the management namespace: switch configs follow the
    /// controller's inventory while the lab is up.
    fn start_sync(&mut self, exe: &Path) -> Result<()> {
        let mgmt = self.state.plan.mgmt().netns.clone();
        let mut cmd = sys::netns_command(&mgmt, exe);
        cmd.args(["lab", "sync", "--watch", &SYNC_EVERY.as_secs().to_string()]);
        cmd.args(["--name", &self.state.plan.lab])
            .arg("--dir")
            .arg(&self.dir);
        let pid = sys::spawn(cmd, &self.dir.join("sync.log"))?;
        self.record("mgmt", "sync", pid)
    }

    /// Starts the host's software (again): the agent, or FRR. `announce` overrides what an
    /// FRR host announces (a misbehaving host, for tests); it needs FRR.
    pub fn start_host(&mut self, host: &str, exe: &Path, announce: Option<&[IpNet]>) -> Result<()> {
        let n = self.node(host)?.clone();
        if n.role != Role::Host {
            return Err(Error::Invalid(format!("{host} is not a host")));
        }
        let a = self
            .state
            .hosts
            .get(host)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("{host} has no assignment yet")))?;
        let dir = self.dir.join(host);
        let uplinks: Vec<String> = n.ports.iter().map(|p| p.0.clone()).collect();
        let software = if announce.is_some() {
            HostSoftware::Frr
        } else {
            n.host_software.unwrap_or_default()
        };
        match software {
            HostSoftware::Agent => {
                let config = agent_config(
                    host,
                    &self.state.plan.controller_url(),
                    &dir,
                    &uplinks,
                    self.state.topology.bfd.as_ref(),
                );
                let path = dir.join("agent.yaml");
                sys::write_file(&path, &config)?;
                let mut cmd = sys::netns_command(&n.netns, exe);
                cmd.arg("agent").arg("-c").arg(&path);
                let pid = sys::spawn(cmd, &dir.join("agent.log"))?;
                self.record(host, "agent", pid)?;
            }
            HostSoftware::Frr => {
                // Without an agent, the host's address goes on clos0 by hand (on lo where the
                // kernel has no dummy interfaces).
                let dev = if sys::ip_n(&n.netns, &["link", "show", "clos0"]).is_ok()
                    || sys::ip_n(&n.netns, &["link", "add", "clos0", "type", "dummy"]).is_ok()
                {
                    sys::ip_n(&n.netns, &["link", "set", "clos0", "up"])?;
                    "clos0"
                } else {
                    "lo"
                };
                sys::ip_n(
                    &n.netns,
                    &["addr", "replace", &format!("{}/32", a.address), "dev", dev],
                )?;
                let list = announce
                    .map(<[IpNet]>::to_vec)
                    .unwrap_or(a.advertisements.clone());
                let router_id = n.address.unwrap_or(a.address);
                let config = frr::render_host(
                    host,
                    a.asn,
                    router_id,
                    &uplinks,
                    &list,
                    self.state.topology.bfd.as_ref(),
                );
                let fdir = dir.join("frr");
                for (kind, pid) in frr::start(&n.netns, &fdir, &config)? {
                    self.record(host, &kind, pid)?;
                }
            }
        }
        Ok(())
    }

    /// Stops a node's processes of `kind` (all when `None`), with SIGKILL when `kill`, else
    /// SIGTERM (SIGINT for the controller, which stops cleanly on it), and forgets them.
    /// Returns how many were signalled.
    pub fn stop(&mut self, node: &str, kind: Option<&str>, kill: bool) -> Result<usize> {
        self.node(node)?;
        let ns = self.node(node)?.netns.clone();
        let in_ns = sys::netns_pids(&ns);
        let mut stopped = 0;
        let mut keep = Vec::new();
        for p in std::mem::take(&mut self.state.processes) {
            if p.node == node && kind.is_none_or(|k| k == p.kind) {
                // Only a pid that still is in the lab's namespace is ours to signal.
                let pid = self.pid_of(&p);
                if in_ns.contains(&pid) {
                    let signal = match (kill, p.kind.as_str()) {
                        (true, _) => rustix::process::Signal::KILL,
                        (false, "controller") => rustix::process::Signal::INT,
                        (false, _) => rustix::process::Signal::TERM,
                    };
                    sys::signal(pid, signal);
                    stopped += 1;
                }
            } else {
                keep.push(p);
            }
        }
        self.state.processes = keep;
        self.save()?;
        Ok(stopped)
    }

    fn wait_converged(&self, progress: &mut dyn FnMut(&str)) -> Result<()> {
        let started = Instant::now();
        let mut last = String::new();
        sys::wait_for(
            "the fabric to converge",
            CONVERGE_TIMEOUT,
            Duration::from_millis(500),
            || {
                self.check_processes()?;
                let mut up = 0;
                let mut total = 0;
                for s in self.state.plan.switches() {
                    let sessions = self.switch_sessions(s);
                    total += s.ports.len();
                    up += sessions.iter().filter(|x| x.established()).count();
                }
                let hosts = self.check_hosts();
                let mut ecmp_ok = 0;
                for h in &hosts {
                    let others: Vec<&CheckHost> =
                        hosts.iter().filter(|o| o.rack != h.rack).collect();
                    if others.iter().all(|o| check::ecmp_of(h, o).ok) {
                        ecmp_ok += 1;
                    }
                }
                let line = format!(
                    "[{:>4.1}s] BGP sessions {up}/{total} established, hosts with ECMP {ecmp_ok}/{}",
                    started.elapsed().as_secs_f64(),
                    hosts.len()
                );
                progress(&line);
                last = line;
                Ok(if up == total && ecmp_ok == hosts.len() {
                    Ok(())
                } else {
                    Err(last.clone())
                })
            },
        )
    }

    /// The current pid of a lab process: a `clos bgp` switch gets a new one each time
    /// `clos lab sync` restarts it with a new config.
    pub fn pid_of(&self, p: &Process) -> u32 {
        match p.kind.as_str() {
            "bgp" => speaker::pid(&switch::dir_of(&self.dir, &p.node)).unwrap_or(p.pid),
            _ => p.pid,
        }
    }

    /// Whether a lab process still runs (not merely some process with its pid).
    pub fn running(&self, p: &Process) -> bool {
        match p.kind.as_str() {
            "bgp" => {
                let dir = switch::dir_of(&self.dir, &p.node);
                speaker::pid(&dir).is_some_and(|pid| sys::running(pid, speaker::started(&dir)))
            }
            _ => sys::running(p.pid, p.started),
        }
    }

    /// Fails at once when a daemon of the lab died (with its log).
    fn check_processes(&self) -> Result<()> {
        for p in &self.state.processes {
            if !self.running(p) {
                let log = match p.kind.as_str() {
                    "controller" => self.dir.join("controller").join("controller.log"),
                    "sync" => self.dir.join("sync.log"),
                    "agent" => self.dir.join(&p.node).join("agent.log"),
                    k if self.node(&p.node).is_ok_and(|n| n.role == Role::Host) => {
                        self.dir.join(&p.node).join("frr").join(format!("{k}.log"))
                    }
                    k => switch::dir_of(&self.dir, &p.node).join(format!("{k}.log")),
                };
                return Err(Error::Died {
                    process: format!("{} of {}", p.kind, p.node),
                    detail: sys::log_tail(&log),
                });
            }
        }
        Ok(())
    }

    fn healthy(&self) -> bool {
        self.state
            .plan
            .nodes
            .iter()
            .all(|n| sys::netns_exists(&n.netns))
            && self.check_processes().is_ok()
    }

    /// A switch's sessions; none while it cannot answer.
    fn switch_sessions(&self, s: &NodePlan) -> Vec<Session> {
        let dir = switch::dir_of(&self.dir, &s.name);
        switch::sessions(s.switch_software.unwrap_or_default(), &dir).unwrap_or_default()
    }

    fn check_hosts(&self) -> Vec<CheckHost> {
        self.state
            .plan
            .hosts()
            .filter_map(|h| {
                let a = self.state.hosts.get(&h.name)?;
                Some(CheckHost {
                    name: h.name.clone(),
                    netns: h.netns.clone(),
                    rack: h.rack.clone().unwrap_or_default(),
                    address: a.address,
                    uplinks: uplinks_up(&h.netns, &h.ports),
                })
            })
            .collect()
    }

    // -----------------------------------------------------------------------------------------
    // status, check, exec

    pub fn summary(&self, seconds: Option<f64>) -> Result<Summary> {
        let alive = |node: &str| {
            let mut any = false;
            for p in self.state.processes.iter().filter(|p| p.node == node) {
                any = true;
                if !self.running(p) {
                    return false;
                }
            }
            any
        };
        let mut switches = Vec::new();
        for s in self.state.plan.switches() {
            let netns = sys::netns_exists(&s.netns);
            let (sessions, routes) = if netns {
                let dir = switch::dir_of(&self.dir, &s.name);
                let software = s.switch_software.unwrap_or_default();
                (
                    self.switch_sessions(s),
                    switch::prefixes(software, &dir).unwrap_or_default(),
                )
            } else {
                Default::default()
            };
            switches.push(SwitchSummary {
                name: s.name.clone(),
                role: s.role,
                software: s.switch_software.unwrap_or_default(),
                netns,
                processes_alive: alive(&s.name),
                sessions_established: sessions.iter().filter(|x| x.established()).count(),
                sessions: s.ports.len(),
                routes,
            });
        }
        let check_hosts = self.check_hosts();
        let mut hosts = Vec::new();
        for h in self.state.plan.hosts() {
            let netns = sys::netns_exists(&h.netns);
            let me = check_hosts.iter().find(|c| c.name == h.name);
            let ecmp_paths = match me {
                Some(me) if netns => check_hosts
                    .iter()
                    .filter(|o| o.rack != me.rack)
                    .map(|o| check::ecmp_of(me, o).next_hops)
                    .min()
                    .unwrap_or(0),
                _ => 0,
            };
            hosts.push(HostSummary {
                name: h.name.clone(),
                rack: h.rack.clone().unwrap_or_default(),
                software: h.host_software.unwrap_or_default(),
                address: self.state.hosts.get(&h.name).map(|a| a.address),
                netns,
                processes_alive: alive(&h.name),
                ecmp_paths,
            });
        }
        Ok(Summary {
            lab: self.state.plan.lab.clone(),
            dir: self.dir.clone(),
            controller: self.state.plan.controller_url(),
            switches,
            hosts,
            seconds,
        })
    }

    /// Reachability between all hosts, and ECMP towards the other racks.
    pub fn check(&self) -> Result<CheckReport> {
        let hosts = self.check_hosts();
        let mut report = check::run(&hosts)?;
        for h in self.state.plan.hosts() {
            if !self.state.hosts.contains_key(&h.name) {
                report.failures.push(format!(
                    "{} has no address: the lab is not fully up",
                    h.name
                ));
                report.ok = false;
            }
        }
        Ok(report)
    }

    /// The command that runs `argv` inside `node`'s namespace. `vtysh` on an FRR node gets
    /// the node's vty socket directory, `birdc` on a BIRD switch its control socket, and
    /// `clos bgp` on a `clos` switch its speaker's (`CLOS_BGP_CONTROL`); every command gets
    /// `CLOS_SERVER` (and in `mgmt`, `CLOS_TOKEN`, the admin token), so `clos` commands reach
    /// the lab's controller.
    pub fn exec_command(&self, node: &str, argv: &[String]) -> Result<Command> {
        let n = self.node(node)?;
        let (program, rest) = argv.split_first().ok_or_else(|| {
            Error::Invalid("give a command to run: clos lab exec NODE -- CMD".into())
        })?;
        // `clos` inside the lab is the binary that runs the lab, on the PATH or not.
        let this_clos = std::env::current_exe()
            .ok()
            .filter(|p| p.file_name().is_some_and(|f| f == "clos"));
        let mut cmd = match this_clos {
            Some(exe) if program == "clos" => sys::netns_command(&n.netns, exe),
            _ => sys::netns_command(&n.netns, program),
        };
        let switch_software = n.switch_software.unwrap_or_default();
        match program.as_str() {
            "vtysh" => {
                let dir = match n.role {
                    Role::Spine | Role::Leaf if switch_software == SwitchSoftware::Frr => {
                        Some(switch::dir_of(&self.dir, &n.name))
                    }
                    Role::Host if n.host_software == Some(HostSoftware::Frr) => {
                        Some(self.dir.join(&n.name).join("frr"))
                    }
                    _ => None,
                };
                if let Some(d) = dir {
                    cmd.arg("--vty_socket").arg(d);
                }
            }
            "birdc" if switch_software == SwitchSoftware::Bird => {
                cmd.arg("-s")
                    .arg(bird::socket(&switch::dir_of(&self.dir, &n.name)));
            }
            _ => {}
        }
        // `clos bgp status` on a `clos` switch finds its speaker.
        if matches!(n.role, Role::Spine | Role::Leaf) && switch_software == SwitchSoftware::Clos {
            cmd.env(
                "CLOS_BGP_CONTROL",
                speaker::socket(&switch::dir_of(&self.dir, &n.name)),
            );
        }
        cmd.args(rest);
        // `clos get ...`, `clos fabric switch-config ...` from the mgmt namespace just work.
        cmd.env("CLOS_SERVER", self.state.plan.controller_url());
        if n.role == Role::Mgmt
            && let Ok(token) = self.admin_token()
        {
            cmd.env("CLOS_TOKEN", token);
        }
        Ok(cmd)
    }
}

/// Removes lab `name` whose directory is `dir`: every process in its namespaces, the
/// namespaces (and with them every link), and the directory. Works on a half-built lab and
/// without a state file (namespaces are found by the lab's prefix). Returns the namespaces
/// removed.
pub fn down(dir: &Path, name: &str) -> Result<Vec<String>> {
    let name = match Lab::open(dir) {
        Ok(lab) => lab.state.plan.lab.clone(),
        Err(_) => name.to_string(),
    };
    let prefix = plan::netns_prefix(&name);
    let mut removed = Vec::new();
    // The controller first, so that it stops cleanly (it syncs its store).
    let mine: Vec<String> = sys::netns_list()
        .into_iter()
        .filter(|ns| ns.starts_with(&prefix))
        .collect();
    for ns in mine.iter().filter(|ns| ns.ends_with("-mgmt")) {
        sys::remove_netns(ns, Duration::from_secs(3))?;
        removed.push(ns.clone());
    }
    for ns in mine.iter().filter(|ns| !ns.ends_with("-mgmt")) {
        sys::remove_netns(ns, Duration::from_millis(500))?;
        removed.push(ns.clone());
    }
    if dir.join(STATE_FILE).exists() || dir.join(format!("{STATE_FILE}.tmp")).exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| Error::io(format!("removing {}", dir.display()), e))?;
    }
    Ok(removed)
}

/// A veth pair created directly inside its two namespaces, both ends up.
fn veth(a_ns: &str, a_if: &str, b_ns: &str, b_if: &str) -> Result<()> {
    sys::ip(&[
        "link", "add", a_if, "netns", a_ns, "type", "veth", "peer", "name", b_if, "netns", b_ns,
    ])?;
    sys::ip_n(a_ns, &["link", "set", a_if, "up"])?;
    sys::ip_n(b_ns, &["link", "set", b_if, "up"])?;
    Ok(())
}

/// How many of a host's uplinks have carrier (a cut link does not count towards ECMP).
fn uplinks_up(netns: &str, ports: &[(String, String, String)]) -> usize {
    ports
        .iter()
        .filter(|(port, _, _)| {
            sys::ip_n(netns, &["-j", "link", "show", port])
                .ok()
                .and_then(|out| serde_json::from_str::<serde_json::Value>(&out).ok())
                .and_then(|v| v.as_array()?.first()?.get("flags")?.as_array().cloned())
                .is_some_and(|flags| flags.iter().any(|f| f == "LOWER_UP"))
        })
        .count()
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("setting the mode of {}", path.display()), e))
}

/// The agent's configuration file (the contract of `clos agent -c`).
pub fn agent_config(
    host: &str,
    controller: &str,
    dir: &Path,
    uplinks: &[String],
    bfd: Option<&BfdTimers>,
) -> String {
    let mut c = format!(
        "# Written by clos lab up.\nnode: {host}\ncontroller:\n  url: {controller}\n  token_file: {}\nstate_dir: {}\nbgp:\n  listen_port: 179\n  hold_time: 9\n",
        dir.join("token").display(),
        dir.join("agent").display()
    );
    if let Some(b) = bfd {
        c.push_str(&format!(
            "  bfd: {{interval_ms: {}, multiplier: {}}}\n",
            b.interval_ms, b.multiplier
        ));
    }
    c.push_str("uplinks:\n");
    for u in uplinks {
        c.push_str(&format!("  - interface: {u}\n"));
    }
    c
}
