//! The one thread that writes to the kernel: the FIB (routes learned over BGP, routes to local
//! endpoints) and the host's own addresses. Netlink here is synchronous, so it runs on a
//! plain thread and the async side sends it commands. `clos bgp run` with a `fib` section
//! runs it too, for BGP routes only ([`KernelOptions::host_interface`] `None`; see
//! [`crate::fib`]).
//!
//! Restart without loss: routes we installed before a restart stay in the kernel. Until the
//! agent says the first convergence is over ([`Command::Reconcile`]), this thread only adds
//! and replaces routes, never removes any; the reconcile then adopts what is already right,
//! fixes what differs and removes what nobody wants any more. Routes of other protocols are
//! never touched (the FIB owns only `rtm_protocol` 198).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use clos_dataplane::host::Host;
use clos_dataplane::{Change, Fib, FibConfig, Nexthop, Report, Route, RouteKey, fib::MAIN_TABLE};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::config::{EndpointConfig, host_net};
use crate::metrics::Metrics;

/// How often endpoints whose interface was missing are looked at again.
const TICK: Duration = Duration::from_secs(1);

/// The link-local gateway every endpoint uses, as Calico does: the endpoint needs no
/// per-subnet gateway, and it moves between hosts unchanged.
pub const GATEWAY_V4: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 1, 1));
pub const GATEWAY_V6: &str = "fe80::1/64";

/// A route learned over BGP: its next hops, each a gateway address and the interface it is on;
/// `None` for a directly connected gateway whose interface the kernel's route lookup finds (a
/// numbered session's next hop). No next hops: the prefix is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpRoute {
    pub prefix: IpNet,
    pub next_hops: Vec<(IpAddr, Option<String>)>,
}

/// What the kernel thread manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelOptions {
    /// The host's own interface (the agent's): a dummy created if missing, holding the host's
    /// addresses, with IP forwarding turned on. `None`: BGP routes only, no addresses, and
    /// forwarding left alone (`clos bgp run`).
    pub host_interface: Option<String>,
    /// The routing table of the routes.
    pub table: u32,
}

#[derive(Debug)]
pub enum Command {
    Bgp(Vec<BgpRoute>),
    /// The whole set of endpoints.
    Endpoints(Vec<EndpointConfig>),
    /// The whole set of the host's own addresses.
    HostAddresses(Vec<IpAddr>),
    /// The first convergence is over: make the kernel equal to what is wanted.
    Reconcile,
    Status(oneshot::Sender<KernelStatus>),
}

/// One endpoint as the kernel sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EndpointStatus {
    pub ip: IpAddr,
    pub interface: String,
    /// `ok`, or why it is not routed yet.
    pub state: String,
}

/// For `clos agent status`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct KernelStatus {
    /// Routes of ours in the kernel.
    pub routes_installed: usize,
    /// Prefixes learned over BGP that have a usable next hop.
    pub bgp_routes: usize,
    pub nexthop_objects: bool,
    /// Whether the first reconcile after start has run.
    pub reconciled: bool,
    pub endpoints: Vec<EndpointStatus>,
    pub host_addresses: Vec<IpAddr>,
    /// The last FIB error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

struct Endpoint {
    interface: String,
    ifindex: Option<u32>,
}

struct Worker {
    fib: Fib,
    host: Host,
    /// The host's own interface and its index, when the thread manages one.
    host_interface: Option<(String, u32)>,
    host_addresses: Vec<IpAddr>,
    table: u32,
    bgp: HashMap<IpNet, Vec<(IpAddr, Option<String>)>>,
    endpoints: BTreeMap<IpNet, Endpoint>,
    ifindexes: HashMap<String, u32>,
    /// Directly connected gateways and their interfaces (`None`: not directly connected),
    /// looked up again at each full reconcile.
    connected: HashMap<IpAddr, Option<u32>>,
    reconciled: bool,
    last_error: Option<String>,
    metrics: Arc<Metrics>,
}

/// Opens the FIB and the host interface in the calling thread's namespace. Returns the
/// command channel and whether routes of ours were already in the kernel (a restart).
pub fn start(
    host_interface: String,
    metrics: Arc<Metrics>,
) -> crate::Result<(Sender<Command>, bool)> {
    let options = KernelOptions {
        host_interface: Some(host_interface),
        table: MAIN_TABLE,
    };
    start_with(options, metrics)
}

/// [`start`] with every option.
pub fn start_with(
    options: KernelOptions,
    metrics: Arc<Metrics>,
) -> crate::Result<(Sender<Command>, bool)> {
    let fib = Fib::open(FibConfig::default())?;
    let restarted = fib.installed() > 0;
    let mut host = Host::open()?;
    let host_interface = match options.host_interface {
        Some(name) => {
            clos_dataplane::host::enable_forwarding()?;
            Some(host_interface(&mut host, name)?)
        }
        None => None,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let mut worker = Worker {
        fib,
        host,
        host_interface,
        host_addresses: Vec::new(),
        table: options.table,
        bgp: HashMap::new(),
        endpoints: BTreeMap::new(),
        ifindexes: HashMap::new(),
        connected: HashMap::new(),
        reconciled: false,
        last_error: None,
        metrics,
    };
    std::thread::Builder::new()
        .name("clos-kernel".into())
        .spawn(move || worker.run(rx))
        .map_err(|e| crate::Error::Endpoint(format!("cannot start the kernel thread: {e}")))?;
    Ok((tx, restarted))
}

/// The host's own dummy interface `name`, created if missing, and its index.
fn host_interface(host: &mut Host, name: String) -> crate::Result<(String, u32)> {
    match host.ensure_dummy(&name) {
        Ok(i) => Ok((name, i)),
        // Some kernels (minimal VMs) have no dummy driver: our addresses then go on `lo`,
        // where they are just as local; only addresses we tagged are ever removed there.
        Err(clos_dataplane::Error::DummyUnsupported { .. }) => {
            tracing::warn!(interface = %name, "this kernel has no dummy interfaces; putting the host's addresses on lo");
            let lo = host.ifindex("lo")?.unwrap_or(1);
            Ok(("lo".to_owned(), lo))
        }
        Err(e) => Err(e.into()),
    }
}

impl Worker {
    fn run(&mut self, rx: Receiver<Command>) {
        loop {
            match rx.recv_timeout(TICK) {
                Ok(first) => {
                    // Take everything queued: many BGP batches become one netlink batch.
                    let mut bgp = Vec::new();
                    let mut next = Some(first);
                    while let Some(cmd) = next {
                        match cmd {
                            Command::Bgp(routes) => bgp.extend(routes),
                            other => {
                                if !bgp.is_empty() {
                                    self.bgp_changes(std::mem::take(&mut bgp));
                                }
                                self.handle(other);
                            }
                        }
                        next = rx.try_recv().ok();
                    }
                    if !bgp.is_empty() {
                        self.bgp_changes(bgp);
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.tick(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Bgp(routes) => self.bgp_changes(routes),
            Command::Endpoints(list) => self.set_endpoints(list),
            Command::HostAddresses(addrs) => self.set_host_addresses(addrs),
            Command::Reconcile => {
                self.reconciled = true;
                self.reconcile();
            }
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
        }
    }

    fn ifindex(&mut self, name: &str) -> Option<u32> {
        if let Some(&i) = self.ifindexes.get(name) {
            return Some(i);
        }
        match self.host.ifindex(name) {
            Ok(Some(i)) => {
                self.ifindexes.insert(name.to_owned(), i);
                Some(i)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(interface = name, error = %e, "cannot look up an interface");
                None
            }
        }
    }

    /// The interface of a directly connected gateway, from the kernel's route lookup; warns
    /// once about one that is not directly connected.
    fn connected(&mut self, gateway: IpAddr) -> Option<u32> {
        if let Some(&found) = self.connected.get(&gateway) {
            return found;
        }
        let found = match self.host.connected_interface(gateway) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(%gateway, error = %e, "cannot look up a next hop's interface");
                return None;
            }
        };
        if found.is_none() {
            tracing::warn!(%gateway, "a BGP next hop is not directly connected; routes through it are not installed with it");
            self.last_error = Some(format!(
                "next hop {gateway} is not directly connected (on none of the host's subnets)"
            ));
        }
        self.connected.insert(gateway, found);
        found
    }

    /// The route the kernel should have for `prefix`: to a local endpoint if there is one,
    /// else the BGP route, else none.
    fn wanted(&mut self, prefix: &IpNet) -> Option<Route> {
        if let Some(ifindex) = self.endpoints.get(prefix).and_then(|e| e.ifindex) {
            let route = Route::new(*prefix, vec![Nexthop::dev(ifindex)]);
            return Some(route.in_table(self.table));
        }
        let hops = self.bgp.get(prefix)?.clone();
        let nexthops: Vec<Nexthop> = hops
            .iter()
            .filter_map(|(gw, ifname)| {
                let ifindex = match ifname {
                    Some(name) => self.ifindex(name)?,
                    None => self.connected(*gw)?,
                };
                Some(Nexthop::via(*gw, ifindex))
            })
            .collect();
        (!nexthops.is_empty()).then(|| Route::new(*prefix, nexthops).in_table(self.table))
    }

    fn change_for(&mut self, prefix: IpNet) -> Option<Change> {
        match self.wanted(&prefix) {
            Some(route) => Some(Change::Upsert(route)),
            // Before the first reconcile, keep what the last run installed.
            None if self.reconciled => Some(Change::Remove(RouteKey {
                table: self.table,
                prefix,
            })),
            None => None,
        }
    }

    fn bgp_changes(&mut self, routes: Vec<BgpRoute>) {
        let mut prefixes = Vec::with_capacity(routes.len());
        for r in routes {
            if r.next_hops.is_empty() {
                self.bgp.remove(&r.prefix);
            } else {
                self.bgp.insert(r.prefix, r.next_hops);
            }
            prefixes.push(r.prefix);
        }
        self.apply(prefixes);
    }

    fn apply(&mut self, prefixes: Vec<IpNet>) {
        let changes: Vec<Change> = prefixes
            .into_iter()
            .filter_map(|p| self.change_for(p))
            .collect();
        if changes.is_empty() {
            return;
        }
        let started = Instant::now();
        let result = self.fib.apply(changes);
        self.account(result, started, false);
    }

    fn reconcile(&mut self) {
        self.connected.clear();
        let prefixes: Vec<IpNet> = self
            .bgp
            .keys()
            .chain(self.endpoints.keys())
            .copied()
            .collect();
        let desired: HashMap<IpNet, Route> = prefixes
            .into_iter()
            .filter_map(|p| Some((p, self.wanted(&p)?)))
            .collect();
        let started = Instant::now();
        let result = self.fib.reconcile(desired.into_values());
        self.account(result, started, true);
    }

    /// Counts what a FIB call did. A refused route usually means the kernel changed behind
    /// our back (an interface went away and took its routes and nexthops); after a
    /// successful first reconcile, one more reconcile repairs that.
    fn account(
        &mut self,
        result: Result<Report, clos_dataplane::Error>,
        started: Instant,
        full: bool,
    ) {
        let elapsed = started.elapsed();
        match result {
            Ok(report) => {
                self.metrics.fib(&report, elapsed, full);
                if let Some(e) = report.errors.first() {
                    tracing::warn!(errors = report.errors.len(), first = %e, "the kernel refused some routes");
                    self.last_error = Some(e.to_string());
                    if !full && self.reconciled {
                        self.reconcile();
                    }
                } else {
                    tracing::debug!(
                        added = report.added,
                        replaced = report.replaced,
                        deleted = report.deleted,
                        ?elapsed,
                        "FIB updated"
                    );
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "FIB update failed");
                self.metrics.fib_failed();
                self.last_error = Some(e.to_string());
            }
        }
    }

    fn set_endpoints(&mut self, list: Vec<EndpointConfig>) {
        let wanted: BTreeMap<IpNet, String> = list
            .into_iter()
            .map(|e| (host_net(e.ip), e.interface))
            .collect();
        let mut touched = Vec::new();
        let gone: Vec<IpNet> = self
            .endpoints
            .keys()
            .filter(|p| !wanted.contains_key(*p))
            .copied()
            .collect();
        for p in gone {
            self.endpoints.remove(&p);
            touched.push(p);
        }
        for (prefix, interface) in wanted {
            let same = self
                .endpoints
                .get(&prefix)
                .is_some_and(|e| e.interface == interface && e.ifindex.is_some());
            if same {
                continue;
            }
            // A renamed or re-created interface gets a new index.
            self.ifindexes.remove(&interface);
            let ifindex = self.prepare_endpoint(&interface);
            self.endpoints
                .insert(prefix, Endpoint { interface, ifindex });
            touched.push(prefix);
        }
        self.apply(touched);
    }

    /// Makes the endpoint's host-side interface a gateway: proxy ARP, and `fe80::1` on it.
    fn prepare_endpoint(&mut self, interface: &str) -> Option<u32> {
        let ifindex = self.ifindex(interface)?;
        let gw6: IpNet = GATEWAY_V6.parse().expect("a valid constant");
        let result = clos_dataplane::host::prepare_endpoint_interface(interface)
            .and_then(|()| self.host.set_up(ifindex))
            .and_then(|()| self.host.add_address(ifindex, gw6));
        match result {
            Ok(()) => Some(ifindex),
            Err(e) => {
                tracing::warn!(interface, error = %e, "cannot prepare an endpoint interface");
                self.last_error = Some(e.to_string());
                None
            }
        }
    }

    fn set_host_addresses(&mut self, mut addrs: Vec<IpAddr>) {
        let Some((interface, ifindex)) = &self.host_interface else {
            tracing::warn!("no host interface to put the host's addresses on");
            return;
        };
        addrs.sort();
        addrs.dedup();
        let mut desired: Vec<IpNet> = addrs.iter().copied().map(host_net).collect();
        desired.push(host_net(GATEWAY_V4));
        match self.host.sync_addresses(*ifindex, &desired) {
            Ok(_) => self.host_addresses = addrs,
            Err(e) => {
                tracing::warn!(%interface, error = %e, "cannot set the host's addresses");
                self.last_error = Some(e.to_string());
            }
        }
    }

    /// Looks again at endpoints: interfaces that appeared (a container started after its
    /// address was assigned) or went away.
    fn tick(&mut self) {
        let mut touched = Vec::new();
        let names: Vec<(IpNet, String, Option<u32>)> = self
            .endpoints
            .iter()
            .map(|(p, e)| (*p, e.interface.clone(), e.ifindex))
            .collect();
        for (prefix, interface, had) in names {
            let now = match self.host.ifindex(&interface) {
                Ok(i) => i,
                Err(_) => continue,
            };
            if now == had {
                continue;
            }
            self.ifindexes.remove(&interface);
            let ifindex = match now {
                Some(_) => self.prepare_endpoint(&interface),
                None => None,
            };
            if let Some(e) = self.endpoints.get_mut(&prefix) {
                e.ifindex = ifindex;
            }
            touched.push(prefix);
        }
        if !touched.is_empty() {
            // The kernel dropped the routes of a vanished interface itself.
            let _ = self.fib.resync();
            self.apply(touched);
        }
    }

    fn status(&mut self) -> KernelStatus {
        KernelStatus {
            routes_installed: self.fib.installed(),
            bgp_routes: self.bgp.len(),
            nexthop_objects: self.fib.uses_nexthop_objects(),
            reconciled: self.reconciled,
            endpoints: self
                .endpoints
                .iter()
                .map(|(p, e)| EndpointStatus {
                    ip: p.addr(),
                    interface: e.interface.clone(),
                    state: match e.ifindex {
                        Some(_) => "ok".into(),
                        None => "waiting for the interface".into(),
                    },
                })
                .collect(),
            host_addresses: self.host_addresses.clone(),
            last_error: self.last_error.clone(),
        }
    }
}
