//! The tokio driver: runs a [`Session`] core per peer over real TCP, with one event loop that
//! owns every session and the routes, so no state is shared between tasks.
//!
//! Contract:
//! - [`Speaker::spawn`] binds the listeners before returning, so a bind error (port in use, no
//!   such address) is reported to the caller, not logged later.
//! - Connections from addresses that are not configured peers are closed at once.
//! - An unnumbered peer ([`PeerAddress::Interface`]) starts once its link-local address is
//!   known: learned from its Router Advertisements (see `unnumbered`), or from an inbound
//!   connection from a link-local address on that interface (matched by the scope id). When the
//!   learned address changes, the session is reset and reconnects to the new one. `spawn` opens
//!   the interfaces' sockets too, so a missing interface is reported to the caller.
//! - Reads and writes happen in per-connection tasks; the event loop never awaits a socket.
//! - Dynamic neighbours ([`ListenRange`]): a connection from an address that is not a
//!   configured peer but lies in a listen range creates a passive peer from the range's
//!   template (a configured peer inside a range always wins). The peer is removed, with its
//!   routes, once its session waits for a connection again (after the idle-hold backoff, or
//!   the maximum-prefix restart time, during which the session refuses reconnects) and none of
//!   its routes is kept stale (after the graceful-restart time, if the session had it).
//!   Beyond the range's `limit`, connections are refused with Cease/Connection Rejected.
//!   Peers live in slots whose index is stable while the peer exists; a removed peer's slot is
//!   reused, and events still queued for it are dropped by connection id.
//! - BFD (`PeerSpec::bfd`, RFC 5880/5881 through `clos-bfd`): a peer with BFD gets a BFD
//!   session as soon as its address is known (a numbered peer at once, an unnumbered one with
//!   its link-local address, a dynamic one when accepted), independent of the BGP session.
//!   When BFD declares a neighbour down that was Up, the BGP session is closed at once with
//!   Cease/BFD Down (RFC 9384), which withdraws its routes (no graceful restart after a
//!   NOTIFICATION); it reconnects as usual. A neighbour that never brings BFD up keeps its
//!   BGP session (BFD only acts on a session it has seen Up), and so does one that takes BFD
//!   down administratively (RFC 5882 section 3.2).

mod conn;
pub mod control;
mod routes;
pub mod unnumbered;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use self::conn::ConnHandle;
pub use self::routes::{FibStatus, PeerPolicy, PeerStatus, RouteEntry, SpeakerStatus};
use self::routes::{Routes, SessionAction};
use crate::iana::CeaseSubcode;
use crate::rib::Change;
use crate::session::{ConnId, Direction, Input, Output, Session, SessionConfig, State};
use crate::wire::{
    DecodeContext, Family, Message, Notification, NotificationCode, Prefix, RouteRefresh,
};

/// Where a neighbour is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerAddress {
    /// A numbered neighbour at this address.
    Ip(IpAddr),
    /// An unnumbered neighbour (FRR's `neighbor IFNAME interface`): whoever sends Router
    /// Advertisements on this interface, reached at its IPv6 link-local address. Offer the
    /// extended next hop (the default) so IPv4 routes can use IPv6 next hops.
    Interface(String),
}

impl From<IpAddr> for PeerAddress {
    fn from(ip: IpAddr) -> Self {
        PeerAddress::Ip(ip)
    }
}

impl std::fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAddress::Ip(ip) => write!(f, "{ip}"),
            PeerAddress::Interface(name) => write!(f, "interface {name}"),
        }
    }
}

/// One configured neighbour.
#[derive(Debug, Clone)]
pub struct PeerSpec {
    pub address: PeerAddress,
    /// The neighbour's BGP port.
    pub port: u16,
    /// Source address for outbound connections to a numbered neighbour (an unnumbered one is
    /// always reached from our link-local address on its interface).
    pub local_address: Option<IpAddr>,
    /// RFC 2385 TCP-MD5 key shared with the neighbour (numbered peers only).
    pub password: Option<String>,
    /// GTSM (RFC 5082): send with TTL 255 and accept only segments that arrive with 255, i.e.
    /// from a directly connected neighbour.
    pub ttl_security: bool,
    /// Import and export policy, maximum prefixes.
    pub policy: PeerPolicy,
    pub session: SessionConfig,
    /// BFD with these timers: the session closes when BFD declares the neighbour down.
    pub bfd: Option<clos_bfd::Config>,
}

impl PeerSpec {
    /// A neighbour with default transport settings: port 179, no TCP-MD5, no GTSM.
    pub fn new(address: impl Into<PeerAddress>, session: SessionConfig) -> Self {
        PeerSpec {
            address: address.into(),
            port: 179,
            local_address: None,
            password: None,
            ttl_security: false,
            policy: PeerPolicy::default(),
            session,
            bfd: None,
        }
    }
}

/// Dynamic neighbours (FRR's `bgp listen range`, BIRD's `neighbor range`): whoever connects
/// from inside `prefix` becomes a passive peer made from this template, for as long as its
/// session lasts.
#[derive(Debug, Clone)]
pub struct ListenRange {
    pub prefix: IpNet,
    /// GTSM (RFC 5082) on the accepted connections.
    pub ttl_security: bool,
    /// Import and export policy, maximum prefixes of each dynamic peer.
    pub policy: PeerPolicy,
    /// Each dynamic peer's session; it is always passive, whatever `passive` says.
    pub session: SessionConfig,
    /// At most this many dynamic peers from this range at once (FRR's `bgp listen limit`);
    /// further neighbours are refused with Cease/Connection Rejected.
    pub limit: Option<u32>,
    /// BFD for each dynamic peer.
    pub bfd: Option<clos_bfd::Config>,
}

impl ListenRange {
    /// A range without GTSM, policy (RFC 8212: nothing in or out over eBGP) or limit.
    pub fn new(prefix: IpNet, session: SessionConfig) -> Self {
        ListenRange {
            prefix,
            ttl_security: false,
            policy: PeerPolicy::default(),
            session,
            limit: None,
            bfd: None,
        }
    }
}

/// What the speaker needs to run.
#[derive(Debug, Clone)]
pub struct SpeakerSpec {
    /// Addresses to accept BGP connections on (`0.0.0.0:179`, `[::]:1179`). Empty: never
    /// accept, only connect.
    pub listen: Vec<SocketAddr>,
    pub peers: Vec<PeerSpec>,
    /// Dynamic neighbours, accepted on the `listen` addresses.
    pub listen_ranges: Vec<ListenRange>,
    /// Prefixes announced to every peer from the start.
    pub originate: Vec<Prefix>,
    /// Equal-cost multipath in the Loc-RIB.
    pub multipath: Multipath,
}

/// Which paths of a prefix share the load (ECMP): at most `max_paths` (1 turns multipath off)
/// among those equal to the best path down to the AS_PATH, whose length is enough with
/// `relax` (FRR's `bgp bestpath as-path multipath-relax`, which RFC 7938 fabrics need, since
/// each ToR or spine has an AS of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Multipath {
    pub max_paths: std::num::NonZeroU16,
    pub relax: bool,
}

impl Multipath {
    /// The most paths a Loc-RIB entry may share the load over: far more than any host's or
    /// switch's uplinks, and a bound on the size of each Loc-RIB change.
    pub const MAX_PATHS: u16 = 64;
}

impl Default for Multipath {
    /// A host with two ToRs wants both; a route server rarely needs more than 8.
    fn default() -> Self {
        Multipath {
            max_paths: std::num::NonZeroU16::new(8).unwrap_or(std::num::NonZeroU16::MIN),
            relax: true,
        }
    }
}

/// Errors of the driver.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("cannot listen on {addr} (is another BGP daemon using the port?)")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the speaker has stopped")]
    Stopped,
    #[error("cannot start BFD")]
    Bfd(#[source] clos_bfd::Error),
    #[error("cannot ask {peer} for a route refresh: {reason}")]
    Refresh { peer: IpAddr, reason: String },
    #[error("control socket {}", path.display())]
    Control {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot peer unnumbered on interface {interface} (does it exist, is it configured for \
         one peer only, and do we run as root or with CAP_NET_RAW?)"
    )]
    Interface {
        interface: String,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) enum Event {
    Accepted {
        stream: tokio::net::TcpStream,
        remote: SocketAddr,
    },
    Connected {
        peer: usize,
        /// Where the attempt went: an unnumbered peer's address may have changed since.
        remote: SocketAddr,
        result: std::io::Result<tokio::net::TcpStream>,
    },
    /// The link-local address of unnumbered peer `peer`, learned or changed.
    Neighbor {
        peer: usize,
        address: Ipv6Addr,
    },
    /// The BFD session `id` of peer `peer` changed.
    Bfd {
        peer: usize,
        id: u64,
        status: clos_bfd::SessionStatus,
    },
    Read {
        peer: usize,
        conn: ConnId,
        data: Bytes,
    },
    ReadClosed {
        peer: usize,
        conn: ConnId,
    },
    Command(Command),
}

pub(crate) enum Command {
    Originate(Vec<Prefix>),
    Withdraw(Vec<Prefix>),
    Status(oneshot::Sender<SpeakerStatus>),
    Routes(Option<IpAddr>, oneshot::Sender<Option<Vec<RouteEntry>>>),
    Refresh(IpAddr, oneshot::Sender<Result<Vec<Family>, DriverError>>),
    Subscribe(oneshot::Sender<mpsc::UnboundedReceiver<Vec<Change>>>),
    Shutdown(oneshot::Sender<()>),
}

/// A handle to a running speaker. Dropping every handle does not stop it; call
/// [`SpeakerHandle::shutdown`].
#[derive(Debug, Clone)]
pub struct SpeakerHandle {
    tx: mpsc::UnboundedSender<Event>,
    local_addrs: Vec<SocketAddr>,
}

impl SpeakerHandle {
    /// The addresses the speaker listens on (with the actual port when 0 was asked for).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Announces `prefixes` to every peer.
    pub fn originate(&self, prefixes: Vec<Prefix>) -> Result<(), DriverError> {
        self.command(Command::Originate(prefixes))
    }

    /// Withdraws locally originated `prefixes`.
    pub fn withdraw(&self, prefixes: Vec<Prefix>) -> Result<(), DriverError> {
        self.command(Command::Withdraw(prefixes))
    }

    /// Loc-RIB changes (best path and multipath set per prefix) for a FIB: the first batch is
    /// the whole Loc-RIB, then every change as it happens.
    pub async fn subscribe(&self) -> Result<mpsc::UnboundedReceiver<Vec<Change>>, DriverError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Subscribe(tx))?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    /// The Loc-RIB, or with `peer` the routes received from that peer after import policy.
    /// `None` when no peer has that address.
    pub async fn routes(
        &self,
        peer: Option<IpAddr>,
    ) -> Result<Option<Vec<RouteEntry>>, DriverError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Routes(peer, tx))?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    /// Asks `peer` to send all its routes again (ROUTE-REFRESH, RFC 2918) for every family of
    /// the session, e.g. after an import policy changed; returns those families. An error when
    /// no peer has that address, or its session is not Established with the route refresh
    /// capability on both sides.
    pub async fn refresh(&self, peer: IpAddr) -> Result<Vec<Family>, DriverError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Refresh(peer, tx))?;
        rx.await.map_err(|_| DriverError::Stopped)?
    }

    /// Sessions and route counts.
    pub async fn status(&self) -> Result<SpeakerStatus, DriverError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Status(tx))?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    /// Sends Cease/Administrative Shutdown to every peer and stops.
    pub async fn shutdown(&self) -> Result<(), DriverError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Shutdown(tx))?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    fn command(&self, c: Command) -> Result<(), DriverError> {
        self.tx
            .send(Event::Command(c))
            .map_err(|_| DriverError::Stopped)
    }
}

struct Peer {
    spec: PeerSpec,
    session: Session,
    /// The interface of an unnumbered peer.
    ifindex: Option<u32>,
    /// An unnumbered peer's link-local address, once known.
    neighbor: Option<Ipv6Addr>,
    /// Whether the session has been given `Input::Start`.
    started: bool,
    /// Where the latest outbound attempt went.
    attempt: Option<SocketAddr>,
    /// The listen range a dynamic peer was accepted from (an index into `Speaker::ranges`).
    range: Option<usize>,
    /// The peer's BFD session, while it has one.
    bfd: Option<PeerBfd>,
    /// BGP sessions closed because BFD declared the neighbour down.
    bfd_resets: u64,
}

/// A peer's BFD session: which one (events of an earlier one are dropped), and what it said
/// last.
struct PeerBfd {
    id: u64,
    peer: IpAddr,
    interface: Option<String>,
    status: clos_bfd::SessionStatus,
}

/// BFD as `clos bgp status` shows it for one peer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BfdPeerStatus {
    /// `Up`, `Init`, `Down`, `AdminDown`.
    pub state: String,
    /// Why it last went down (`control detection time expired`, ...); `none` if never.
    pub diag: String,
    /// The interval between our packets, before jitter, in milliseconds.
    pub interval_ms: Option<u64>,
    /// How long without a packet from the neighbour before it is down, in milliseconds.
    pub detection_ms: Option<u64>,
    /// Times BFD left Up because the neighbour was unreachable (not administratively).
    pub downs: u64,
    /// BGP sessions closed because BFD declared the neighbour down.
    pub resets: u64,
    /// Our discriminator and the neighbour's (0 until known), to match its `show bfd peers`.
    pub local_discr: u32,
    pub remote_discr: u32,
}

impl Peer {
    /// Where to connect: `None` for an unnumbered peer whose address is not known yet.
    fn target(&self) -> Option<SocketAddr> {
        match &self.spec.address {
            PeerAddress::Ip(ip) => Some(SocketAddr::new(*ip, self.spec.port)),
            PeerAddress::Interface(_) => {
                let (ip, ifindex) = (self.neighbor?, self.ifindex?);
                Some(SocketAddrV6::new(ip, self.spec.port, 0, ifindex).into())
            }
        }
    }

    /// The address shown in status output; `::` for an unnumbered peer not yet found.
    fn status_address(&self) -> IpAddr {
        match &self.spec.address {
            PeerAddress::Ip(ip) => *ip,
            PeerAddress::Interface(_) => IpAddr::V6(self.neighbor.unwrap_or(Ipv6Addr::UNSPECIFIED)),
        }
    }
}

/// A listen range and how many dynamic peers it has.
struct Range {
    spec: ListenRange,
    peers: usize,
}

/// The speaker's event loop state.
pub struct Speaker {
    /// Indexed like the peers of `routes`; `None` is the free slot of a removed dynamic peer.
    peers: Vec<Option<Peer>>,
    ranges: Vec<Range>,
    /// Dynamic peers that may be over for good: checked, and removed, before routes are
    /// flushed.
    reap: Vec<usize>,
    by_address: HashMap<IpAddr, usize>,
    by_ifindex: HashMap<u32, usize>,
    conns: HashMap<ConnId, ConnHandle>,
    next_conn: ConnId,
    routes: Routes,
    /// Loc-RIB change subscribers (the agent's FIB).
    subscribers: Vec<mpsc::UnboundedSender<Vec<Change>>>,
    events: mpsc::UnboundedSender<Event>,
    /// The BFD driver, when a peer or listen range has BFD.
    bfd: Option<clos_bfd::BfdHandle>,
    next_bfd: u64,
}

impl std::fmt::Debug for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speaker")
            .field("peers", &self.peers.iter().flatten().count())
            .finish()
    }
}

impl Speaker {
    /// Binds the listeners, starts every session and returns a handle.
    pub async fn spawn(spec: SpeakerSpec) -> Result<SpeakerHandle, DriverError> {
        let (tx, rx) = mpsc::unbounded_channel();
        // Interfaces first: a failure here leaves no listener task behind.
        let mut interfaces = Vec::new();
        let mut by_ifindex = HashMap::new();
        for (i, p) in spec.peers.iter().enumerate() {
            let PeerAddress::Interface(name) = &p.address else {
                continue;
            };
            let error = |source| DriverError::Interface {
                interface: name.clone(),
                source,
            };
            let nd = unnumbered::open(name).map_err(error)?;
            if by_ifindex.insert(nd.ifindex(), i).is_some() {
                let twice = std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the interface is configured for two peers",
                );
                return Err(error(twice));
            }
            interfaces.push((i, nd));
        }
        // BFD's port before the listeners, so a failure leaves no listener task behind (the
        // BFD driver stops when its handle is dropped).
        let wants_bfd = spec.peers.iter().any(|p| p.bfd.is_some())
            || spec.listen_ranges.iter().any(|r| r.bfd.is_some());
        let bfd = if wants_bfd {
            Some(clos_bfd::BfdHandle::spawn().map_err(DriverError::Bfd)?)
        } else {
            None
        };
        let mut local_addrs = Vec::new();
        for addr in &spec.listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| DriverError::Listen {
                    addr: *addr,
                    source,
                })?;
            local_addrs.push(listener.local_addr().unwrap_or(*addr));
            for p in &spec.peers {
                if let (PeerAddress::Ip(peer), Some(key)) = (&p.address, &p.password) {
                    conn::listen_md5(&listener, *peer, key.as_bytes()).map_err(|source| {
                        DriverError::Listen {
                            addr: *addr,
                            source,
                        }
                    })?;
                }
            }
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Ok((stream, remote)) = listener.accept().await {
                    if tx.send(Event::Accepted { stream, remote }).is_err() {
                        return;
                    }
                }
            });
        }
        // One speaker, one AS: the config file has a single `asn`.
        let local_as = spec
            .peers
            .first()
            .map(|p| p.session.local_as)
            .or_else(|| spec.listen_ranges.first().map(|r| r.session.local_as))
            .unwrap_or(0);
        let policies = spec.peers.iter().map(|p| p.policy.clone()).collect();
        let mut speaker = Speaker {
            by_address: spec
                .peers
                .iter()
                .enumerate()
                .filter_map(|(i, p)| match p.address {
                    PeerAddress::Ip(ip) => Some((ip, i)),
                    PeerAddress::Interface(_) => None,
                })
                .collect(),
            peers: spec
                .peers
                .into_iter()
                .map(|spec| {
                    Some(Peer {
                        session: Session::new(spec.session.clone()),
                        spec,
                        ifindex: None,
                        neighbor: None,
                        started: false,
                        attempt: None,
                        range: None,
                        bfd: None,
                        bfd_resets: 0,
                    })
                })
                .collect(),
            ranges: spec
                .listen_ranges
                .into_iter()
                .map(|spec| Range { spec, peers: 0 })
                .collect(),
            reap: Vec::new(),
            by_ifindex,
            conns: HashMap::new(),
            next_conn: 1,
            routes: Routes::with_multipath(local_as, policies, spec.multipath),
            subscribers: Vec::new(),
            events: tx.clone(),
            bfd,
            next_bfd: 1,
        };
        speaker.routes.originate(&spec.originate);
        speaker.flush_routes();
        for (i, nd) in interfaces {
            speaker.peer_mut(i).ifindex = Some(nd.ifindex());
            tokio::spawn(nd.run(i, tx.clone()));
        }
        let now = Instant::now();
        for i in 0..speaker.peers.len() {
            // Unnumbered peers start once their neighbour is found.
            if matches!(speaker.peer(i).spec.address, PeerAddress::Ip(_)) {
                if let Err(err) = speaker.bfd_add(i) {
                    tracing::warn!(peer = %speaker.peer(i).spec.address, %err,
                        "no BFD for the neighbour; its session runs without");
                }
                speaker.start(i, now);
            }
        }
        tokio::spawn(speaker.run(rx));
        Ok(SpeakerHandle { tx, local_addrs })
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        loop {
            let deadline = self
                .peers
                .iter()
                .flatten()
                .filter_map(|p| p.session.poll_timeout())
                .chain(self.routes.next_deadline())
                .min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = rx.recv() => match event {
                    Some(Event::Command(Command::Shutdown(done))) => {
                        self.shutdown();
                        let _ = done.send(());
                        return;
                    }
                    Some(event) => self.event(event),
                    None => return,
                },
                () = sleep => self.timers(),
            }
            self.reap();
            self.flush_routes();
        }
    }

    fn timers(&mut self) {
        let now = Instant::now();
        let expired = self.routes.expire(now);
        self.reap.extend(expired);
        for i in 0..self.peers.len() {
            if self
                .slot(i)
                .and_then(|p| p.session.poll_timeout())
                .is_some_and(|t| t <= now)
            {
                self.peer_mut(i).session.handle(Input::Timeout, now);
                self.drain(i);
            }
        }
    }

    fn event(&mut self, event: Event) {
        let now = Instant::now();
        match event {
            Event::Accepted { stream, remote } => {
                let peer = match self.peer_for(remote, now) {
                    Some(peer) => peer,
                    None => match self.dynamic_peer(remote, now) {
                        Ok(peer) => peer,
                        Err(Refusal::Unknown) => {
                            tracing::info!(%remote, "closing a connection from an unknown address");
                            return;
                        }
                        Err(Refusal::Limit(range)) => {
                            tracing::warn!(%remote, %range,
                                "refusing a neighbour: the listen range's limit is reached");
                            return reject(stream);
                        }
                    },
                };
                if self.peer(peer).spec.ttl_security
                    && let Err(err) = conn::ttl_security(&stream, remote.is_ipv6())
                {
                    tracing::warn!(%remote, %err, "cannot enable GTSM; closing");
                    // A dynamic peer made for this connection goes again.
                    self.reap.push(peer);
                    return;
                }
                let conn = self.add_conn(stream, peer);
                let input = Input::Connected {
                    conn,
                    direction: Direction::Inbound,
                };
                self.peer_mut(peer).session.handle(input, now);
                self.drain(peer);
            }
            Event::Connected {
                peer,
                remote,
                result,
            } => {
                // Only configured peers connect out, and they are never removed.
                if self.slot(peer).is_none() {
                    return;
                }
                let latest = self.peer(peer).attempt == Some(remote);
                if latest {
                    self.peer_mut(peer).attempt = None;
                }
                if self.peer(peer).target() != Some(remote) {
                    // The neighbour moved while we connected. The session still counts this
                    // attempt as running unless a reset (and maybe a newer attempt) followed.
                    tracing::debug!(%remote, "dropping a connection to a former neighbour address");
                    if latest {
                        self.peer_mut(peer)
                            .session
                            .handle(Input::ConnectFailed, now);
                        self.drain(peer);
                    }
                    return;
                }
                let input = match result {
                    Ok(stream) => {
                        let conn = self.add_conn(stream, peer);
                        Input::Connected {
                            conn,
                            direction: Direction::Outbound,
                        }
                    }
                    Err(err) => {
                        tracing::debug!(peer = %self.peer(peer).spec.address, %err, "connect failed");
                        Input::ConnectFailed
                    }
                };
                self.peer_mut(peer).session.handle(input, now);
                self.drain(peer);
            }
            Event::Neighbor { peer, address } => self.neighbor(peer, address, now),
            Event::Bfd { peer, id, status } => self.bfd_changed(peer, id, status, now),
            // A removed peer's slot may hold a new peer by now: its session ignores the
            // connection ids it does not know.
            Event::Read { peer, conn, data } => {
                let Some(p) = self.slot_mut(peer) else { return };
                p.session.handle(Input::Received { conn, data }, now);
                self.drain(peer);
            }
            Event::ReadClosed { peer, conn } => {
                self.conns.remove(&conn);
                let Some(p) = self.slot_mut(peer) else { return };
                p.session.handle(Input::Closed { conn }, now);
                self.drain(peer);
            }
            Event::Command(Command::Originate(prefixes)) => self.routes.originate(&prefixes),
            Event::Command(Command::Withdraw(prefixes)) => self.routes.withdraw_local(&prefixes),
            Event::Command(Command::Status(reply)) => {
                let peers = self.peers.iter().enumerate().filter_map(|(i, p)| {
                    let p = p.as_ref()?;
                    let mut status = self.routes.status(i, p.status_address(), p.session.state());
                    status.listen_range = p.range.map(|r| self.ranges[r].spec.prefix);
                    status.bfd = p.bfd.as_ref().map(|b| BfdPeerStatus {
                        state: b.status.state.to_string(),
                        diag: b.status.local_diag.to_string(),
                        interval_ms: b.status.tx_interval.map(|d| d.as_millis() as u64),
                        detection_ms: b.status.detection_time.map(|d| d.as_millis() as u64),
                        downs: b.status.failures,
                        resets: p.bfd_resets,
                        local_discr: b.status.local_discr,
                        remote_discr: b.status.remote_discr,
                    });
                    if let PeerAddress::Interface(name) = &p.spec.address {
                        status.interface = Some(name.clone());
                    }
                    Some(status)
                });
                let _ = reply.send(SpeakerStatus {
                    peers: peers.collect(),
                    originated: self.routes.originated_count(),
                    loc_rib: self.routes.loc_rib_count(),
                    update_groups: self.routes.update_group_count(),
                    fib: None,
                });
            }
            Event::Command(Command::Routes(peer, reply)) => {
                let addresses: Vec<IpAddr> = self.peers_addresses();
                let index = peer.map(|a| addresses.iter().position(|p| *p == a));
                let list = match index {
                    None => Some(self.routes.list(None, &addresses)),
                    Some(Some(i)) => Some(self.routes.list(Some(i), &addresses)),
                    Some(None) => None,
                };
                let _ = reply.send(list);
            }
            Event::Command(Command::Refresh(peer, reply)) => {
                let _ = reply.send(self.refresh(peer));
            }
            Event::Command(Command::Subscribe(reply)) => {
                let (tx, rx) = mpsc::unbounded_channel();
                // Pending changes go out first so the snapshot is not followed by stale ones.
                self.flush_routes();
                if tx.send(self.routes.snapshot()).is_ok() && reply.send(rx).is_ok() {
                    self.subscribers.push(tx);
                }
            }
            Event::Command(Command::Shutdown(_)) => {}
        }
    }

    /// Peer `i`, which the caller knows exists: configured peers are never removed, and a
    /// dynamic one only by [`Speaker::reap`] between events.
    fn peer(&self, i: usize) -> &Peer {
        self.slot(i).expect("a live peer slot")
    }

    fn peer_mut(&mut self, i: usize) -> &mut Peer {
        self.slot_mut(i).expect("a live peer slot")
    }

    fn slot(&self, i: usize) -> Option<&Peer> {
        self.peers.get(i).and_then(Option::as_ref)
    }

    fn slot_mut(&mut self, i: usize) -> Option<&mut Peer> {
        self.peers.get_mut(i).and_then(Option::as_mut)
    }

    fn start(&mut self, i: usize, now: Instant) {
        let peer = self.peer_mut(i);
        peer.started = true;
        peer.session.handle(Input::Start, now);
        self.drain(i);
    }

    /// A new dynamic peer for a connection from `remote`, when a listen range holds it and
    /// has room.
    fn dynamic_peer(&mut self, remote: SocketAddr, now: Instant) -> Result<usize, Refusal> {
        let ip = canonical(remote.ip());
        let r = self
            .ranges
            .iter()
            .position(|r| r.spec.prefix.contains(&ip))
            .ok_or(Refusal::Unknown)?;
        let range = &mut self.ranges[r];
        if range
            .spec
            .limit
            .is_some_and(|limit| range.peers >= limit as usize)
        {
            return Err(Refusal::Limit(range.spec.prefix));
        }
        range.peers += 1;
        let mut session = range.spec.session.clone();
        session.passive = true;
        let spec = PeerSpec {
            ttl_security: range.spec.ttl_security,
            policy: range.spec.policy.clone(),
            bfd: range.spec.bfd,
            ..PeerSpec::new(ip, session)
        };
        tracing::info!(peer = %ip, range = %range.spec.prefix, "dynamic neighbour accepted");
        let i = self.routes.add_peer(spec.policy.clone());
        if self.peers.len() <= i {
            self.peers.resize_with(i + 1, || None);
        }
        self.peers[i] = Some(Peer {
            session: Session::new(spec.session.clone()),
            spec,
            ifindex: None,
            neighbor: None,
            started: false,
            attempt: None,
            range: Some(r),
            bfd: None,
            bfd_resets: 0,
        });
        self.by_address.insert(ip, i);
        if let Err(err) = self.bfd_add(i) {
            tracing::warn!(peer = %ip, %err, "no BFD for the dynamic neighbour");
        }
        self.start(i, now);
        Ok(i)
    }

    /// Removes the dynamic peers of `self.reap` that are over: the passive session is Active
    /// (no connection, no idle-hold backoff to enforce) and the routes hold nothing of the peer
    /// (not Established, no stale routes of a graceful restart).
    fn reap(&mut self) {
        while let Some(i) = self.reap.pop() {
            let Some(peer) = self.slot(i) else { continue };
            let Some(r) = peer.range else { continue };
            if peer.session.state() != State::Active || !self.routes.is_idle(i) {
                continue;
            }
            tracing::info!(peer = %peer.spec.address, "dynamic neighbour removed");
            if let PeerAddress::Ip(ip) = peer.spec.address {
                self.by_address.remove(&ip);
            }
            self.bfd_remove(i);
            self.peers[i] = None;
            self.routes.remove_peer(i);
            self.ranges[r].peers = self.ranges[r].peers.saturating_sub(1);
        }
    }

    /// The peer an inbound connection from `remote` belongs to. A link-local address belongs to
    /// the unnumbered peer on the interface of its scope id. It becomes the neighbour's address
    /// when none is known yet, or when the session has no connection past TCP (the neighbour
    /// moved and is the first to reconnect); while a session is being opened or is up, a
    /// connection from another address is refused.
    fn peer_for(&mut self, remote: SocketAddr, now: Instant) -> Option<usize> {
        if let SocketAddr::V6(v6) = remote
            && v6.ip().is_unicast_link_local()
            && let Some(&i) = self.by_ifindex.get(&v6.scope_id())
        {
            let peer = self.peer_mut(i);
            let address = *v6.ip();
            match peer.neighbor {
                Some(known) if known == address => {}
                Some(known) if peer.session.state() >= State::OpenSent => {
                    tracing::info!(peer = %peer.spec.address, %remote, %known,
                        "refusing a connection from another address than the neighbour's");
                    return None;
                }
                old => {
                    tracing::info!(peer = %peer.spec.address, ?old, %address,
                        "neighbour address learned from its connection");
                    // An attempt in flight to the old address is dropped when it completes.
                    peer.neighbor = Some(address);
                    self.bfd_readd(i);
                    if !self.peer(i).started {
                        self.start(i, now);
                    }
                }
            }
            return Some(i);
        }
        self.by_address.get(&canonical(remote.ip())).copied()
    }

    /// An unnumbered peer's address was learned or changed: start the session, or move it to
    /// the new address.
    fn neighbor(&mut self, i: usize, address: Ipv6Addr, now: Instant) {
        let Some(peer) = self.slot_mut(i) else { return };
        if peer.neighbor == Some(address) {
            return;
        }
        let old = peer.neighbor.replace(address);
        self.bfd_readd(i);
        let peer = self.peer_mut(i);
        if !peer.started {
            return self.start(i, now);
        }
        // The reset forgets the attempt in flight; its result is dropped when it comes.
        peer.attempt = None;
        tracing::info!(peer = %peer.spec.address, ?old, %address, "neighbour address changed");
        let reset = Input::Reset {
            notification: Notification::new(NotificationCode::Cease(
                CeaseSubcode::OtherConfigurationChange,
            )),
            idle_hold: Some(Duration::ZERO),
        };
        peer.session.handle(reset, now);
        self.drain(i);
    }

    /// Sends ROUTE-REFRESH for every family of `address`'s session.
    fn refresh(&mut self, address: IpAddr) -> Result<Vec<Family>, DriverError> {
        let error = |reason: &str| DriverError::Refresh {
            peer: address,
            reason: reason.to_owned(),
        };
        let i = self
            .peers_addresses()
            .iter()
            .position(|a| *a == address)
            .ok_or_else(|| error("no such peer (see `clos bgp status`)"))?;
        let Some(n) = self.peer(i).session.negotiated() else {
            return Err(error("the session is not Established"));
        };
        if !n.route_refresh {
            return Err(error("the peer did not offer the route refresh capability"));
        }
        let families = n.families.clone();
        let messages = families
            .iter()
            .map(|f| {
                Message::RouteRefresh(RouteRefresh::new(*f)).to_bytes(&DecodeContext::default())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| error(&e.to_string()))?;
        self.transmit(i, messages);
        self.drain(i);
        Ok(families)
    }

    /// Starts peer `i`'s BFD session if it has BFD and its address is known.
    fn bfd_add(&mut self, i: usize) -> Result<(), clos_bfd::Error> {
        let Some(bfd) = self.bfd.clone() else {
            return Ok(());
        };
        let peer = self.peer(i);
        let Some(config) = peer.spec.bfd else {
            return Ok(());
        };
        let (address, local, interface) = match &peer.spec.address {
            PeerAddress::Ip(ip) => (*ip, peer.spec.local_address, None),
            PeerAddress::Interface(name) => match peer.neighbor {
                Some(ll) => (IpAddr::V6(ll), None, Some(name.clone())),
                None => return Ok(()),
            },
        };
        let spec = clos_bfd::SessionSpec {
            peer: address,
            local,
            interface: interface.clone(),
            config,
        };
        let mut rx = bfd.add_session(spec)?;
        let id = self.next_bfd;
        self.next_bfd += 1;
        let status = rx.borrow_and_update().clone();
        self.peer_mut(i).bfd = Some(PeerBfd {
            id,
            peer: address,
            interface,
            status,
        });
        let events = self.events.clone();
        tokio::spawn(async move {
            // Ends when the session is removed (its sender goes) or the speaker stops.
            while rx.changed().await.is_ok() {
                let status = rx.borrow_and_update().clone();
                if events
                    .send(Event::Bfd {
                        peer: i,
                        id,
                        status,
                    })
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(())
    }

    /// Stops peer `i`'s BFD session, if it has one (the neighbour is told AdminDown).
    fn bfd_remove(&mut self, i: usize) {
        let Some(b) = self.slot_mut(i).and_then(|p| p.bfd.take()) else {
            return;
        };
        if let Some(bfd) = &self.bfd {
            let _ = bfd.remove_session(b.peer, b.interface.as_deref());
        }
    }

    /// An unnumbered peer's address changed: its BFD session follows.
    fn bfd_readd(&mut self, i: usize) {
        self.bfd_remove(i);
        if let Err(err) = self.bfd_add(i) {
            tracing::warn!(peer = %self.peer(i).spec.address, %err, "cannot start BFD");
        }
    }

    /// Peer `i`'s BFD session changed. If it left Up since we last looked, the neighbour is
    /// gone: close the BGP session now rather than at the hold timer.
    fn bfd_changed(&mut self, i: usize, id: u64, status: clos_bfd::SessionStatus, now: Instant) {
        let Some(peer) = self.slot_mut(i) else { return };
        let Some(b) = peer.bfd.as_mut().filter(|b| b.id == id) else {
            return;
        };
        // A neighbour that took BFD down administratively is not a failure (RFC 5882).
        let went_down = status.failures > b.status.failures;
        b.status = status;
        if !went_down {
            return;
        }
        let state = peer.session.state();
        tracing::warn!(peer = %peer.spec.address, diag = %b.status.local_diag, bgp = ?state,
            "BFD declared the neighbour down");
        if state < State::OpenSent {
            return;
        }
        peer.bfd_resets += 1;
        let reset = Input::Reset {
            notification: Notification::new(NotificationCode::Cease(CeaseSubcode::BfdDown)),
            idle_hold: None,
        };
        peer.session.handle(reset, now);
        self.drain(i);
    }

    /// Each peer slot's address for display (unspecified for a free slot).
    fn peers_addresses(&self) -> Vec<IpAddr> {
        self.peers
            .iter()
            .map(|p| {
                p.as_ref()
                    .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), Peer::status_address)
            })
            .collect()
    }

    fn add_conn(&mut self, stream: tokio::net::TcpStream, peer: usize) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        let handle = conn::spawn(stream, id, peer, self.events.clone());
        self.conns.insert(id, handle);
        id
    }

    /// Performs every pending output of peer `i`'s session.
    fn drain(&mut self, i: usize) {
        while let Some(output) = self.slot_mut(i).and_then(|p| p.session.poll_output()) {
            match output {
                Output::Connect => {
                    let Some(remote) = self.peer(i).target() else {
                        // Not reached: unnumbered sessions start once the address is known.
                        self.peer_mut(i)
                            .session
                            .handle(Input::ConnectFailed, Instant::now());
                        continue;
                    };
                    self.peer_mut(i).attempt = Some(remote);
                    let spec = &self.peer(i).spec;
                    let local = match spec.address {
                        PeerAddress::Ip(_) => spec.local_address.map(|a| SocketAddr::new(a, 0)),
                        PeerAddress::Interface(_) => None,
                    };
                    let options = conn::ConnectOptions {
                        local,
                        timeout: spec.session.connect_retry,
                        md5_key: spec.password.clone().map(String::into_bytes),
                        ttl_security: spec.ttl_security,
                    };
                    let tx = self.events.clone();
                    tokio::spawn(async move {
                        let result = conn::connect(remote, &options).await;
                        let _ = tx.send(Event::Connected {
                            peer: i,
                            remote,
                            result,
                        });
                    });
                }
                Output::Send { conn, data } => {
                    if let Some(c) = self.conns.get(&conn) {
                        c.send(data);
                    }
                }
                Output::Close { conn } => {
                    self.conns.remove(&conn);
                }
                Output::StateChanged { from, to } => {
                    let peer = self.peer(i);
                    tracing::info!(peer = %peer.spec.address, ?from, ?to, "BGP state");
                    if peer.range.is_some() {
                        self.reap.push(i);
                    }
                }
                Output::Established(n) => {
                    let Some(conn) = self.peer(i).session.established_conn() else {
                        continue;
                    };
                    let local = self.conns.get(&conn).and_then(ConnHandle::local_addr);
                    let remote = self.peer(i).status_address();
                    let messages = self.routes.established(i, remote, &n, local);
                    self.transmit(i, messages);
                }
                Output::Update(outcome) => {
                    if let Some(SessionAction::Reset {
                        notification,
                        idle_hold,
                    }) = self.routes.update(i, &outcome)
                    {
                        let reset = Input::Reset {
                            notification,
                            idle_hold: Some(idle_hold),
                        };
                        self.peer_mut(i).session.handle(reset, Instant::now());
                    }
                }
                Output::RouteRefresh(_) => {
                    let messages = self.routes.refresh(i);
                    self.transmit(i, messages);
                }
                Output::Down(reason) => {
                    tracing::info!(peer = %self.peer(i).spec.address, ?reason, "session down");
                    let graceful = reason.allows_graceful_restart()
                        && self.peer(i).spec.session.graceful_restart.is_some();
                    self.routes.peer_down(i, graceful, Instant::now());
                }
            }
        }
    }

    /// Hands encoded messages to peer `i`'s Established session.
    fn transmit(&mut self, i: usize, messages: Vec<Bytes>) {
        let now = Instant::now();
        let Some(peer) = self.slot_mut(i) else { return };
        for m in messages {
            peer.session.handle(Input::Transmit(m), now);
        }
    }

    /// Runs best-path selection for whatever changed, sends the resulting UPDATEs and tells
    /// the subscribers (the FIB).
    fn flush_routes(&mut self) {
        let (updates, changes) = self.routes.flush();
        for (i, messages) in updates {
            self.transmit(i, messages);
            self.drain(i);
        }
        if !changes.is_empty() {
            self.subscribers.retain(|s| s.send(changes.clone()).is_ok());
        }
    }

    fn shutdown(&mut self) {
        let now = Instant::now();
        for i in 0..self.peers.len() {
            let Some(peer) = self.slot_mut(i) else {
                continue;
            };
            let stop = Input::Stop {
                message: "speaker shutting down".into(),
            };
            peer.session.handle(stop, now);
            self.drain(i);
        }
    }
}

/// Why an inbound connection gets no peer.
enum Refusal {
    /// Neither a configured peer nor inside a listen range.
    Unknown,
    /// The listen range with this prefix has its `limit` of dynamic peers.
    Limit(IpNet),
}

/// Sends Cease/Connection Rejected on `stream` and closes it once the neighbour has read it
/// (closing with its OPEN unread would reset the connection and could lose the NOTIFICATION).
fn reject(mut stream: tokio::net::TcpStream) {
    let n = Notification::new(NotificationCode::Cease(CeaseSubcode::ConnectionRejected));
    let Ok(data) = Message::Notification(n).to_bytes(&DecodeContext::default()) else {
        return;
    };
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if stream.write_all(&data).await.is_err() || stream.shutdown().await.is_err() {
            return;
        }
        let mut sink = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Ok(1..) = stream.read(&mut sink).await {}
        })
        .await;
    });
}

/// IPv4-mapped IPv6 addresses (from a dual-stack listener) as plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
