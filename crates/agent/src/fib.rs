//! From the speaker's Loc-RIB to the kernel FIB: the part the agent and `clos bgp run` (with a
//! `fib` section) share.
//!
//! - [`PeerInterfaces`] turns batches of Loc-RIB changes into [`BgpRoute`]s for the kernel
//!   thread ([`crate::kernel`]): each next hop with the interface it leaves by.
//! - [`FirstSync`] says when the first convergence after start is over, the moment the kernel
//!   thread may reconcile (and so remove routes of an earlier run that nobody announces any
//!   more).
//! - [`SpeakerFib`] is the whole loop for `clos bgp run`: the kernel thread with BGP routes
//!   only, fed from a running speaker, its state published for `clos bgp status`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clos_bgp::driver::{FibStatus, SpeakerHandle};
use clos_bgp::rib::Change;
use clos_bgp::wire::NextHop;
use ipnet::IpNet;
use tokio::sync::{oneshot, watch};

use crate::error::Result;
use crate::kernel::{self, BgpRoute, Command, KernelOptions, KernelStatus};
use crate::metrics::Metrics;

/// The longest to wait for the peers before the first full reconcile of the FIB.
pub const FIRST_SYNC_MAX: Duration = Duration::from_secs(60);
/// The Loc-RIB is considered settled after this long without a change.
pub const QUIET: Duration = Duration::from_secs(2);

/// The interface each peer's next hops leave by, keyed by the peer's RIB id (the `peer` of
/// the Loc-RIB's next hops).
#[derive(Debug, Default)]
pub struct PeerInterfaces {
    /// `None`: a numbered peer whose next hops the kernel thread resolves as directly
    /// connected gateways.
    by_peer: HashMap<u32, Option<String>>,
}

impl PeerInterfaces {
    /// The kernel's form of a batch of Loc-RIB changes. Peers not seen yet are looked up in
    /// the speaker's status first: an unnumbered peer's interface comes from there, a
    /// numbered peer's from `numbered` (by its address) if that knows it, else from the
    /// kernel's route to the next hop. Without a `handle`, unknown peers' next hops are left
    /// out.
    pub async fn routes(
        &mut self,
        handle: Option<&SpeakerHandle>,
        batch: &[Change],
        numbered: impl Fn(IpAddr) -> Option<String>,
    ) -> Vec<BgpRoute> {
        let unknown = batch
            .iter()
            .flat_map(|c| c.multipath.iter())
            .any(|h| !self.by_peer.contains_key(&h.peer.0));
        if unknown && let Some(handle) = handle {
            self.refresh(handle, numbered).await;
        }
        batch
            .iter()
            .map(|c| BgpRoute {
                prefix: IpNet::new(c.prefix.addr(), c.prefix.prefix_len())
                    .unwrap_or_else(|_| IpNet::from(c.prefix.addr())),
                next_hops: c
                    .multipath
                    .iter()
                    .filter_map(|h| {
                        let interface = self.by_peer.get(&h.peer.0)?.clone();
                        Some((gateway(&h.next_hop, interface.is_some()), interface))
                    })
                    .collect(),
            })
            .collect()
    }

    async fn refresh(
        &mut self,
        handle: &SpeakerHandle,
        numbered: impl Fn(IpAddr) -> Option<String>,
    ) {
        let Ok(status) = handle.status().await else {
            return;
        };
        self.by_peer.clear();
        for p in &status.peers {
            let Some(id) = p.rib_id else { continue };
            let interface = p.interface.clone().or_else(|| numbered(p.address));
            self.by_peer.insert(id, interface);
        }
    }
}

/// The address to forward to. On a known interface, the link-local one where the next hop
/// has it (RFC 2545, and RFC 8950 over unnumbered links); otherwise the global one, which
/// the kernel can find the interface of.
fn gateway(nh: &NextHop, on_known_interface: bool) -> IpAddr {
    match nh {
        NextHop::V4(a) => IpAddr::V4(*a),
        NextHop::V6 { global, link_local } if on_known_interface => {
            IpAddr::V6(link_local.unwrap_or(*global))
        }
        NextHop::V6 { global, .. } => IpAddr::V6(*global),
    }
}

/// When the first convergence after start is over: every expected session up and the Loc-RIB
/// quiet for [`QUIET`], or a time limit passed.
#[derive(Debug)]
pub struct FirstSync {
    started: Instant,
    last_change: Instant,
    limit: Duration,
    done: bool,
}

impl FirstSync {
    /// Starts now. `graceful_restart_time` (seconds) shortens the limit of
    /// [`FIRST_SYNC_MAX`]: the peers keep our routes no longer than that anyway.
    pub fn new(graceful_restart_time: Option<u16>) -> FirstSync {
        let limit = graceful_restart_time.map_or(FIRST_SYNC_MAX, |t| {
            FIRST_SYNC_MAX.min(Duration::from_secs(u64::from(t)))
        });
        let now = Instant::now();
        FirstSync {
            started: now,
            last_change: now,
            limit,
            done: false,
        }
    }

    /// The Loc-RIB changed.
    pub fn changed(&mut self) {
        self.last_change = Instant::now();
    }

    /// True once, when `up` of the `expected` sessions being Established ends the first
    /// convergence.
    pub fn due(&mut self, up: usize, expected: usize) -> bool {
        if self.done {
            return false;
        }
        let settled = up >= expected && self.last_change.elapsed() >= QUIET;
        self.done = settled || self.started.elapsed() >= self.limit;
        self.done
    }
}

/// `clos bgp run`'s FIB: the kernel thread with BGP routes only, in one table.
#[derive(Debug)]
pub struct SpeakerFib {
    kernel: std::sync::mpsc::Sender<Command>,
    table: u32,
    restarted: bool,
}

impl SpeakerFib {
    /// Opens the FIB of the calling thread's network namespace and starts the kernel thread.
    pub fn start(table: u32) -> Result<SpeakerFib> {
        let options = KernelOptions {
            host_interface: None,
            table,
        };
        let (kernel, restarted) = kernel::start_with(options, Arc::new(Metrics::new()))?;
        Ok(SpeakerFib {
            kernel,
            table,
            restarted,
        })
    }

    /// Whether routes of ours were in the kernel already (a restart): they stay until the
    /// first convergence.
    pub fn restarted(&self) -> bool {
        self.restarted
    }

    /// Installs the Loc-RIB of `handle`'s speaker until the speaker stops, reconciling after
    /// the first convergence ([`FirstSync`], `expected` configured peers). The FIB's state goes
    /// to `status` after every change and every half second.
    pub async fn follow(
        self,
        handle: SpeakerHandle,
        expected: usize,
        mut first_sync: FirstSync,
        status: watch::Sender<FibStatus>,
    ) -> Result<()> {
        let mut changes = handle.subscribe().await?;
        let mut peers = PeerInterfaces::default();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                batch = changes.recv() => {
                    let Some(batch) = batch else { break };
                    first_sync.changed();
                    let routes = peers.routes(Some(&handle), &batch, |_| None).await;
                    self.send(Command::Bgp(routes));
                }
                _ = tick.tick() => {
                    let Ok(speaker) = handle.status().await else { break };
                    let up = speaker.peers.iter().filter(|p| p.state == "Established").count();
                    if first_sync.due(up, expected) {
                        tracing::info!(sessions = up, "first convergence over; reconciling the FIB");
                        self.send(Command::Reconcile);
                    }
                    // Not after every batch: waiting for the kernel thread there would keep
                    // it from merging queued batches into one netlink batch.
                    status.send_replace(self.status().await);
                }
            }
        }
        Ok(())
    }

    fn send(&self, cmd: Command) {
        if self.kernel.send(cmd).is_err() {
            tracing::error!("the kernel thread has stopped");
        }
    }

    async fn status(&self) -> FibStatus {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Status(tx));
        let k: KernelStatus = rx.await.unwrap_or_default();
        FibStatus {
            table: self.table,
            routes_installed: k.routes_installed,
            bgp_routes: k.bgp_routes,
            reconciled: k.reconciled,
            nexthop_objects: k.nexthop_objects,
            last_error: k.last_error,
        }
    }
}
