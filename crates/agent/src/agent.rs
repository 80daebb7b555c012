//! The agent's main loop: it applies desired states (from the controller, or saved locally),
//! runs the speaker, feeds the speaker's Loc-RIB changes to the kernel thread, and answers the
//! control socket.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clos_bgp::driver::{PeerStatus, Speaker, SpeakerHandle};
use clos_bgp::rib::Change;
use clos_bgp::wire::Prefix;
use clos_model::{Client, DesiredStateAt, endpoint_interface};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::config::{AgentConfig, EndpointConfig, check_interface, host_net};
use crate::controller::{self, ControllerStatus, Link};
use crate::error::{Error, Result};
use crate::fib::{FirstSync, PeerInterfaces};
use crate::kernel::{self, Command, KernelStatus};
use crate::metrics::Metrics;
use crate::speaker::{self, Identity};
use crate::state::LocalState;

/// A request on the control socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Status,
    EndpointAdd { ip: IpAddr, interface: String },
    EndpointDel { ip: IpAddr },
    EndpointList,
}

/// One endpoint, for `clos agent endpoint list`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EndpointInfo {
    pub ip: IpAddr,
    pub interface: String,
    /// `controller`, `config` or `local` (added with `clos agent endpoint add`).
    pub source: String,
    /// Whether the controller's assignment to this node covers the address, so the fabric
    /// can reach it.
    pub advertised: bool,
    /// `ok`, or why the endpoint is not routed yet.
    pub state: String,
}

/// `clos agent status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentStatus {
    pub node: String,
    pub controller: ControllerStatus,
    /// The desired-state revision applied; 0 before the first.
    pub applied_revision: u64,
    /// Whether the applied state came from the local file because the controller has not
    /// answered since the agent started.
    pub from_local_state: bool,
    pub asn: Option<u32>,
    pub router_id: Option<String>,
    pub sessions: Vec<PeerStatus>,
    pub advertised: Vec<IpNet>,
    pub fib: KernelStatus,
}

pub(crate) type Reply = std::result::Result<serde_json::Value, String>;

pub(crate) struct ControlRequest {
    pub request: Request,
    pub reply: oneshot::Sender<Reply>,
}

struct Running {
    handle: SpeakerHandle,
    identity: Identity,
    originated: BTreeSet<IpNet>,
}

struct Agent {
    cfg: AgentConfig,
    local: LocalState,
    from_local_state: bool,
    metrics: Arc<Metrics>,
    link: Arc<Link>,
    kernel: std::sync::mpsc::Sender<Command>,
    restarted: bool,
    speaker: Option<Running>,
    changes: Option<mpsc::UnboundedReceiver<Vec<Change>>>,
    /// RIB peer id -> uplink interface, for next hops.
    peer_interfaces: PeerInterfaces,
    /// When to reconcile the FIB first (which removes routes nobody announces any more).
    first_sync: FirstSync,
}

/// Runs the agent until `shutdown` resolves. Kernel routes and addresses stay in place when it
/// returns (or crashes): the next start adopts them, and the switches keep our routes in the
/// meantime (graceful restart).
pub async fn run(
    cfg: AgentConfig,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let local = LocalState::load(&cfg.state_file())?;
    let (kernel, restarted) = kernel::start(cfg.host_interface.clone(), metrics.clone())?;
    if restarted {
        tracing::info!("routes of a previous run are in the kernel: restarting gracefully");
    }
    let client = Client::new(&cfg.controller.url, cfg.token()?)?;
    let link = Arc::new(Link::default());
    let (desired_tx, mut desired_rx) = mpsc::channel(16);
    let from = local.desired.as_ref().map_or(0, |d| d.revision + 1);
    tokio::spawn(controller::follow(
        client.clone(),
        cfg.node.clone(),
        from,
        desired_tx,
        link.clone(),
        metrics.clone(),
    ));
    tokio::spawn(controller::heartbeat(
        client,
        cfg.node.clone(),
        Duration::from_secs(cfg.heartbeat_interval),
        link.clone(),
        metrics.clone(),
    ));
    let (control_tx, mut control_rx) = mpsc::channel(64);
    tokio::spawn(crate::control::serve(cfg.control_socket(), control_tx));
    if let Some(addr) = cfg.metrics_listen {
        crate::control::serve_metrics(addr, metrics.clone()).await?;
    }
    metrics.sessions_configured.set(cfg.uplinks.len() as i64);
    let first_sync = FirstSync::new(Some(cfg.bgp.graceful_restart_time));
    let mut agent = Agent {
        cfg,
        local,
        from_local_state: false,
        metrics,
        link,
        kernel,
        restarted,
        speaker: None,
        changes: None,
        peer_interfaces: PeerInterfaces::default(),
        first_sync,
    };
    agent.send(Command::HostAddresses(Vec::new()));
    if let Some(saved) = agent.local.desired.clone() {
        tracing::info!(
            revision = saved.revision,
            "starting from the saved desired state"
        );
        agent.from_local_state = true;
        agent.apply(saved, false).await?;
    } else {
        tracing::info!(url = %agent.cfg.controller.url, "no saved desired state; waiting for the controller");
        agent.send_endpoints();
    }
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(d) = desired_rx.recv() => {
                agent.from_local_state = false;
                if let Err(e) = agent.apply(d, true).await {
                    tracing::error!(error = %e, "cannot apply the desired state");
                }
            }
            Some(batch) = recv_changes(&mut agent.changes) => agent.bgp_changes(batch).await,
            Some(req) = control_rx.recv() => {
                let reply = agent.control(req.request).await;
                let _ = req.reply.send(reply);
            }
            _ = tick.tick() => agent.tick().await,
        }
    }
    tracing::info!("stopping; kernel routes stay in place for the next start");
    Ok(())
}

async fn recv_changes(
    rx: &mut Option<mpsc::UnboundedReceiver<Vec<Change>>>,
) -> Option<Vec<Change>> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Agent {
    fn send(&self, cmd: Command) {
        if self.kernel.send(cmd).is_err() {
            tracing::error!("the kernel thread has stopped");
        }
    }

    /// Applies a desired state: saves it, sets the host's addresses and endpoints, and makes
    /// the speaker originate exactly its advertisements.
    async fn apply(&mut self, desired: DesiredStateAt, save: bool) -> Result<()> {
        if desired.state.node != self.cfg.node {
            return Err(Error::Endpoint(format!(
                "the desired state is for node {}, not {}",
                desired.state.node, self.cfg.node
            )));
        }
        if save {
            self.local.desired = Some(desired.clone());
            self.local.save(&self.cfg.state_file())?;
        }
        self.local.desired = Some(desired.clone());
        let state = &desired.state;
        let hosts: Vec<IpAddr> = state
            .addresses
            .iter()
            .filter(|a| a.is_host())
            .map(|a| a.ip)
            .collect();
        self.send(Command::HostAddresses(hosts));
        self.send_endpoints();
        let identity = Identity::of(&self.cfg, state)?;
        let wanted: BTreeSet<IpNet> = state.advertisements.iter().copied().collect();
        match &mut self.speaker {
            Some(run) if run.identity == identity => {
                let add: Vec<Prefix> = wanted
                    .difference(&run.originated)
                    .filter_map(to_prefix)
                    .collect();
                let del: Vec<Prefix> = run
                    .originated
                    .difference(&wanted)
                    .filter_map(to_prefix)
                    .collect();
                if !add.is_empty() {
                    run.handle.originate(add)?;
                }
                if !del.is_empty() {
                    run.handle.withdraw(del)?;
                }
                run.originated = wanted;
            }
            _ => {
                if let Some(old) = self.speaker.take() {
                    tracing::info!(
                        ?identity,
                        "the node's ASN or router id changed; restarting the speaker"
                    );
                    let _ = old.handle.shutdown().await;
                }
                let list: Vec<IpNet> = wanted.iter().copied().collect();
                let spec = speaker::spec(&self.cfg, identity, &list, self.restarted)?;
                let handle = Speaker::spawn(spec).await?;
                self.changes = Some(handle.subscribe().await?);
                tracing::info!(asn = identity.asn, router_id = %identity.router_id,
                    prefixes = list.len(), "speaker started");
                self.speaker = Some(Running {
                    handle,
                    identity,
                    originated: wanted,
                });
                // A later speaker (new ASN) is not a restart with routes to keep.
                self.restarted = false;
            }
        }
        self.link.applied.store(desired.revision, Ordering::Relaxed);
        self.metrics.applied_revision.set(desired.revision as i64);
        tracing::info!(revision = desired.revision, "desired state applied");
        Ok(())
    }

    /// Every endpoint: from the controller, the config file and `clos agent endpoint add`.
    fn endpoints(&self) -> Vec<(EndpointConfig, &'static str)> {
        let mut out: Vec<(EndpointConfig, &'static str)> = Vec::new();
        if let Some(d) = &self.local.desired {
            for a in d.state.addresses.iter().filter(|a| !a.is_host()) {
                out.push((
                    EndpointConfig {
                        ip: a.ip,
                        interface: endpoint_interface(&a.owner),
                    },
                    "controller",
                ));
            }
        }
        for e in &self.cfg.endpoints {
            out.push((e.clone(), "config"));
        }
        for e in &self.local.endpoints {
            out.push((e.clone(), "local"));
        }
        // One route per address: the first source wins.
        let mut seen = BTreeSet::new();
        out.retain(|(e, _)| seen.insert(e.ip));
        out
    }

    fn send_endpoints(&self) {
        let list: Vec<EndpointConfig> = self.endpoints().into_iter().map(|(e, _)| e).collect();
        self.metrics.endpoints.set(list.len() as i64);
        self.send(Command::Endpoints(list));
    }

    fn advertised(&self) -> Vec<IpNet> {
        self.speaker
            .as_ref()
            .map(|r| r.originated.iter().copied().collect())
            .unwrap_or_default()
    }

    async fn bgp_changes(&mut self, batch: Vec<Change>) {
        self.first_sync.changed();
        let uplinks = &self.cfg.uplinks;
        let handle = self.speaker.as_ref().map(|r| &r.handle);
        let routes = self
            .peer_interfaces
            .routes(handle, &batch, |address| {
                uplinks
                    .iter()
                    .find(|u| u.address == Some(address))
                    .map(|u| u.interface.clone())
            })
            .await;
        self.send(Command::Bgp(routes));
    }

    async fn tick(&mut self) {
        let Some(run) = &self.speaker else { return };
        let Ok(status) = run.handle.status().await else {
            return;
        };
        let up = status
            .peers
            .iter()
            .filter(|p| p.state == "Established")
            .count();
        self.metrics.sessions_established.set(up as i64);
        let bfd: Vec<_> = status.peers.iter().filter_map(|p| p.bfd.as_ref()).collect();
        self.metrics.bfd_sessions_configured.set(bfd.len() as i64);
        self.metrics
            .bfd_sessions_up
            .set(bfd.iter().filter(|b| b.state == "Up").count() as i64);
        self.metrics
            .bfd_session_resets
            .set(bfd.iter().map(|b| b.resets as i64).sum());
        self.metrics
            .routes_received
            .set(status.peers.iter().map(|p| p.received as i64).sum());
        self.metrics
            .routes_advertised
            .set(status.peers.iter().map(|p| p.advertised as i64).sum());
        if self.first_sync.due(up, self.cfg.uplinks.len()) {
            tracing::info!(sessions = up, "first convergence over; reconciling the FIB");
            self.send(Command::Reconcile);
        }
    }

    async fn kernel_status(&self) -> KernelStatus {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Status(tx));
        rx.await.unwrap_or_default()
    }

    async fn control(&mut self, request: Request) -> Reply {
        match request {
            Request::Status => {
                let fib = self.kernel_status().await;
                self.metrics.fib_routes.set(fib.routes_installed as i64);
                let sessions = match &self.speaker {
                    Some(r) => r.handle.status().await.map(|s| s.peers).unwrap_or_default(),
                    None => Vec::new(),
                };
                let status = AgentStatus {
                    node: self.cfg.node.clone(),
                    controller: self.link.status(&self.cfg.controller.url).await,
                    applied_revision: self.local.desired.as_ref().map_or(0, |d| d.revision),
                    from_local_state: self.from_local_state,
                    asn: self.speaker.as_ref().map(|r| r.identity.asn),
                    router_id: self
                        .speaker
                        .as_ref()
                        .map(|r| r.identity.router_id.to_string()),
                    sessions,
                    advertised: self.advertised(),
                    fib,
                };
                Ok(json(&status))
            }
            Request::EndpointList => Ok(json(&self.endpoint_list().await)),
            Request::EndpointAdd { ip, interface } => {
                check_interface("interface", &interface).map_err(|e| e.to_string())?;
                if let Some((e, source)) = self.endpoints().into_iter().find(|(e, _)| e.ip == ip)
                    && e.interface != interface
                {
                    return Err(format!(
                        "{ip} is already an endpoint on {} (from the {source}); delete it first",
                        e.interface
                    ));
                }
                let added = self
                    .local
                    .endpoints
                    .insert(EndpointConfig { ip, interface });
                if added {
                    self.local
                        .save(&self.cfg.state_file())
                        .map_err(|e| e.to_string())?;
                    self.send_endpoints();
                }
                let info = self.endpoint_list().await.into_iter().find(|e| e.ip == ip);
                Ok(json(&info))
            }
            Request::EndpointDel { ip } => {
                let before = self.local.endpoints.len();
                self.local.endpoints.retain(|e| e.ip != ip);
                if self.local.endpoints.len() == before {
                    let other = self.endpoints().into_iter().find(|(e, _)| e.ip == ip);
                    return Err(match other {
                        Some((_, source)) => {
                            format!("{ip} comes from the {source}; remove it there")
                        }
                        None => format!("{ip} is not an endpoint on this host"),
                    });
                }
                self.local
                    .save(&self.cfg.state_file())
                    .map_err(|e| e.to_string())?;
                self.send_endpoints();
                Ok(serde_json::Value::Null)
            }
        }
    }

    async fn endpoint_list(&self) -> Vec<EndpointInfo> {
        let fib = self.kernel_status().await;
        let assigned: Vec<IpNet> = self
            .local
            .desired
            .as_ref()
            .map(|d| d.state.advertisements.clone())
            .unwrap_or_default();
        self.endpoints()
            .into_iter()
            .map(|(e, source)| EndpointInfo {
                advertised: assigned.iter().any(|p| p.contains(&host_net(e.ip))),
                state: fib
                    .endpoints
                    .iter()
                    .find(|k| k.ip == e.ip)
                    .map_or_else(|| "pending".into(), |k| k.state.clone()),
                ip: e.ip,
                interface: e.interface,
                source: source.into(),
            })
            .collect()
    }
}

fn json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

fn to_prefix(net: &IpNet) -> Option<Prefix> {
    Prefix::new(net.addr(), net.prefix_len()).ok()
}
