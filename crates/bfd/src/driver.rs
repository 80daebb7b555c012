//! The tokio driver: single-hop BFD over UDP (RFC 5881) for any number of sessions, IPv4 and
//! IPv6, link-local peers included. One event loop owns every [`Session`], so no session state
//! is shared between tasks.
//!
//! Contract:
//! - [`BfdHandle::spawn`] binds UDP port 3784 on every address (IPv4 and, where the kernel has
//!   it, IPv6) before returning, so a port in use (another BFD daemon in the namespace) is the
//!   caller's error.
//! - Every packet is sent with TTL (hop limit) 255 from a source port in 49152-65535 that the
//!   session keeps for its lifetime; a received packet is used only if it arrived with 255
//!   (GTSM, RFC 5881 section 5), passes [`crate::wire::decode`], and belongs to a session: by
//!   Your Discriminator, which must then also match the sender's address, or, while that is
//!   zero, by the sender's address (and interface, for a link-local sender).
//! - [`BfdHandle::add_session`] and [`BfdHandle::remove_session`] act in the order they are
//!   called. Removing a session (or shutting down) sends one AdminDown packet first, so the
//!   peer sees a deliberate stop rather than a failure.
//! - The loop never awaits a socket: sends that would block are dropped (BFD tolerates loss).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::num::NonZeroU32;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::iana::{CONTROL_PORT, Diag, GTSM_TTL, SOURCE_PORTS, State};
use crate::session::{Config, Input, Output, Session};
use crate::wire::{self, ControlPacket};

/// DSCP CS6 (network control), as FRR and BIRD send BFD.
const TOS_NETWORK_CONTROL: u32 = 0xc0;

/// One session to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    /// The neighbour; an IPv6 link-local one needs `interface`.
    pub peer: IpAddr,
    /// Our source address; the kernel's choice when absent.
    pub local: Option<IpAddr>,
    /// Send through this interface only (and, for a link-local peer, its scope).
    pub interface: Option<String>,
    pub config: Config,
}

impl SessionSpec {
    pub fn new(peer: IpAddr, config: Config) -> Self {
        SessionSpec {
            peer,
            local: None,
            interface: None,
            config,
        }
    }
}

/// What a session's watchers see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStatus {
    pub peer: IpAddr,
    pub interface: Option<String>,
    pub state: State,
    pub remote_state: State,
    /// Why the session last went down.
    pub local_diag: Diag,
    pub remote_diag: Diag,
    pub local_discr: u32,
    pub remote_discr: u32,
    /// The interval between our packets before jitter.
    pub tx_interval: Option<Duration>,
    /// How long without a packet before the session goes down.
    pub detection_time: Option<Duration>,
    /// How many times the session has left Up: a watcher that missed a quick Down and Up in
    /// between two looks still learns of it.
    pub downs: u64,
    /// Of those, the times that mean the neighbour is unreachable: not when either side took
    /// the session administratively down (RFC 5882 section 3.2: a neighbour signalling
    /// AdminDown MUST NOT be reported as a failure to the session's clients).
    pub failures: u64,
    /// Packets accepted for this session (after the GTSM and RFC 5880 checks).
    pub received: u64,
}

/// A session's identity: the peer, and the interface of a session bound to one.
type Key = (IpAddr, Option<String>);

enum Command {
    Add {
        key: Key,
        ifindex: u32,
        spec: SessionSpec,
        socket: UdpSocket,
        target: SocketAddr,
        status: watch::Sender<SessionStatus>,
    },
    Remove(Key),
    Status(oneshot::Sender<Vec<SessionStatus>>),
    Shutdown(oneshot::Sender<()>),
}

/// A received packet that passed GTSM and [`wire::decode`].
struct Received {
    packet: ControlPacket,
    source: SocketAddr,
}

/// A handle to the running driver. The driver stops when every handle is dropped, or on
/// [`BfdHandle::shutdown`].
#[derive(Debug, Clone)]
pub struct BfdHandle {
    tx: mpsc::UnboundedSender<Command>,
    /// The sessions that exist or are about to: duplicates are refused at once.
    keys: Arc<Mutex<HashSet<Key>>>,
}

impl BfdHandle {
    /// Binds the control port and starts the driver on the current tokio runtime (and in the
    /// current thread's network namespace).
    pub fn spawn() -> Result<BfdHandle, Error> {
        let v4 = control_socket(IpAddr::V4(Ipv4Addr::UNSPECIFIED))?;
        let v6 = match control_socket(IpAddr::V6(Ipv6Addr::UNSPECIFIED)) {
            Ok(s) => Some(s),
            Err(Error::Bind { source, .. })
                if source.raw_os_error() == Some(97) || source.raw_os_error() == Some(99) =>
            {
                // EAFNOSUPPORT, EADDRNOTAVAIL: no IPv6 here.
                tracing::info!("no IPv6: BFD runs over IPv4 only");
                None
            }
            Err(e) => return Err(e),
        };
        let (packets_tx, packets) = mpsc::unbounded_channel();
        let mut readers = vec![tokio::spawn(receive(v4, packets_tx.clone()))];
        if let Some(v6) = v6 {
            readers.push(tokio::spawn(receive(v6, packets_tx)));
        }
        let (tx, commands) = mpsc::unbounded_channel();
        let driver = Driver {
            sessions: HashMap::new(),
            by_peer: HashMap::new(),
            rng: random_u64(),
            readers,
        };
        tokio::spawn(driver.run(commands, packets));
        Ok(BfdHandle {
            tx,
            keys: Arc::new(Mutex::new(HashSet::new())),
        })
    }

    /// Starts a session and returns its status, which changes as the session does. The
    /// session's socket is opened here, so a missing interface or address is reported at once;
    /// it is opened in the calling thread's network namespace, so call this from the
    /// namespace the driver runs in (a task of its runtime does).
    pub fn add_session(&self, spec: SessionSpec) -> Result<watch::Receiver<SessionStatus>, Error> {
        spec.config.validate()?;
        if let (Some(local), peer) = (spec.local, spec.peer)
            && local.is_ipv4() != peer.is_ipv4()
        {
            return Err(Error::Config {
                field: "local",
                problem: format!("{local} and the peer {peer} are not of one address family"),
            });
        }
        if is_link_local(spec.peer) && spec.interface.is_none() {
            return Err(Error::Config {
                field: "interface",
                problem: format!("the link-local peer {} needs its interface", spec.peer),
            });
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime);
        }
        let key = (spec.peer, spec.interface.clone());
        if !self.keys().insert(key.clone()) {
            return Err(Error::Duplicate {
                peer: spec.peer,
                interface: spec.interface,
            });
        }
        let (socket, ifindex) = session_socket(&spec).inspect_err(|_| {
            self.keys().remove(&key);
        })?;
        let target = match spec.peer {
            IpAddr::V6(ip) if ip.is_unicast_link_local() => {
                SocketAddrV6::new(ip, CONTROL_PORT, 0, ifindex).into()
            }
            ip => SocketAddr::new(ip, CONTROL_PORT),
        };
        let (status, rx) = watch::channel(SessionStatus {
            peer: spec.peer,
            interface: spec.interface.clone(),
            state: State::Down,
            remote_state: State::Down,
            local_diag: Diag::None,
            remote_diag: Diag::None,
            local_discr: 0,
            remote_discr: 0,
            tx_interval: None,
            detection_time: None,
            downs: 0,
            failures: 0,
            received: 0,
        });
        self.command(Command::Add {
            key,
            ifindex,
            spec,
            socket,
            target,
            status,
        })?;
        Ok(rx)
    }

    /// Stops the session with `peer` (on `interface`, if it was given one): the peer is told
    /// AdminDown, and the session's status watchers see their channel close.
    pub fn remove_session(&self, peer: IpAddr, interface: Option<&str>) -> Result<(), Error> {
        let key = (peer, interface.map(str::to_owned));
        let known = self.keys().remove(&key);
        if !known {
            return Err(Error::UnknownSession {
                peer,
                interface: interface.map(str::to_owned),
            });
        }
        self.command(Command::Remove(key))
    }

    /// Every session's status.
    pub async fn status(&self) -> Result<Vec<SessionStatus>, Error> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Status(tx))?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Tells every peer AdminDown and stops.
    pub async fn shutdown(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Shutdown(tx))?;
        rx.await.map_err(|_| Error::Stopped)
    }

    fn command(&self, c: Command) -> Result<(), Error> {
        self.tx.send(c).map_err(|_| Error::Stopped)
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashSet<Key>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

fn interface_index(name: &str) -> Result<u32, Error> {
    let error = |source| Error::Interface {
        interface: name.to_owned(),
        source,
    };
    let probe = Socket::new(Domain::IPV4, Type::DGRAM, None).map_err(error)?;
    rustix::net::netdevice::name_to_index(&probe, name).map_err(|e| error(e.into()))
}

/// The socket every packet to port 3784 arrives on, for one address family.
fn control_socket(any: IpAddr) -> Result<UdpSocket, Error> {
    let error = |source| Error::Bind {
        addr: any,
        port: CONTROL_PORT,
        source,
    };
    let v6 = any.is_ipv6();
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(error)?;
    if v6 {
        s.set_only_v6(true).map_err(error)?;
    }
    s.set_nonblocking(true).map_err(error)?;
    clos_sys::set_recv_hop_limit(s.as_fd(), v6).map_err(error)?;
    s.bind(&SocketAddr::new(any, CONTROL_PORT).into())
        .map_err(error)?;
    UdpSocket::from_std(s.into()).map_err(error)
}

/// A session's sending socket: TTL 255, bound to the interface if one is given, and to a free
/// source port of 49152-65535. Returns it with the interface's index (0 without one).
fn session_socket(spec: &SessionSpec) -> Result<(UdpSocket, u32), Error> {
    let error = |source| Error::Socket {
        peer: spec.peer,
        source,
    };
    let v6 = spec.peer.is_ipv6();
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(error)?;
    s.set_nonblocking(true).map_err(error)?;
    if v6 {
        s.set_only_v6(true).map_err(error)?;
        s.set_unicast_hops_v6(GTSM_TTL.into()).map_err(error)?;
        s.set_tclass_v6(TOS_NETWORK_CONTROL).map_err(error)?;
    } else {
        s.set_ttl_v4(GTSM_TTL.into()).map_err(error)?;
        s.set_tos_v4(TOS_NETWORK_CONTROL).map_err(error)?;
    }
    let mut ifindex = 0;
    if let Some(name) = &spec.interface {
        ifindex = interface_index(name)?;
        s.bind_device(Some(name.as_bytes()))
            .map_err(|source| Error::Interface {
                interface: name.clone(),
                source,
            })?;
    }
    let local = spec.local.unwrap_or(if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    // Any free port of the range, starting from a random one.
    let (first, count) = (*SOURCE_PORTS.start(), SOURCE_PORTS.len() as u64);
    let start = random_u64() % count;
    let mut last = None;
    for i in 0..count {
        let port = first + ((start + i) % count) as u16;
        let addr = match local {
            IpAddr::V6(ip) if ip.is_unicast_link_local() => {
                SocketAddrV6::new(ip, port, 0, ifindex).into()
            }
            ip => SocketAddr::new(ip, port),
        };
        match s.bind(&addr.into()) {
            Ok(()) => {
                last = None;
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(error(e)),
        }
    }
    if let Some(e) = last {
        return Err(error(e));
    }
    Ok((UdpSocket::from_std(s.into()).map_err(error)?, ifindex))
}

/// Reads one control socket: datagrams that arrived with TTL 255 and decode go to the loop.
async fn receive(socket: UdpSocket, tx: mpsc::UnboundedSender<Received>) {
    let mut buf = [0u8; 512];
    loop {
        let read = socket
            .async_io(Interest::READABLE, || {
                clos_sys::recv_with_hop_limit(socket.as_fd(), &mut buf)
            })
            .await;
        let d = match read {
            Ok(d) => d,
            Err(err) => {
                tracing::debug!(%err, "BFD receive error");
                // Never spin on a persistent error.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if d.hop_limit != Some(GTSM_TTL) {
            tracing::debug!(source = %d.source, hop_limit = ?d.hop_limit,
                "dropping a BFD packet that did not arrive with TTL 255");
            continue;
        }
        match wire::decode(&buf[..d.len]) {
            Ok(packet) => {
                let received = Received {
                    packet,
                    source: d.source,
                };
                if tx.send(received).is_err() {
                    return;
                }
            }
            Err(err) => tracing::debug!(source = %d.source, %err, "dropping a BFD packet"),
        }
    }
}

struct Entry {
    key: Key,
    /// The interface's index, 0 without one.
    ifindex: u32,
    spec: SessionSpec,
    socket: UdpSocket,
    target: SocketAddr,
    session: Session,
    status: watch::Sender<SessionStatus>,
    downs: u64,
    failures: u64,
    received: u64,
}

impl Entry {
    /// Sends what the session wants sent and publishes its status.
    fn flush(&mut self) {
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Send(p) => {
                    if let Err(err) = self.socket.try_send_to(&p.to_bytes(), self.target) {
                        tracing::trace!(peer = %self.spec.peer, %err, "BFD send failed");
                    }
                }
                Output::StateChanged { from, to, diag } => {
                    tracing::info!(peer = %self.spec.peer, interface = ?self.spec.interface,
                        %from, %to, %diag, "BFD state");
                    if from == State::Up {
                        self.downs += 1;
                        let admin = to == State::AdminDown
                            || self.session.remote_state() == State::AdminDown;
                        if !admin {
                            self.failures += 1;
                        }
                    }
                }
            }
        }
        let status = self.status();
        self.status.send_if_modified(|s| {
            let changed = *s != status;
            *s = status;
            changed
        });
    }

    fn status(&self) -> SessionStatus {
        let s = &self.session;
        SessionStatus {
            peer: self.spec.peer,
            interface: self.spec.interface.clone(),
            state: s.state(),
            remote_state: s.remote_state(),
            local_diag: s.local_diag(),
            remote_diag: s.remote_diag(),
            local_discr: s.local_discr(),
            remote_discr: s.remote_discr(),
            tx_interval: s.tx_interval(),
            detection_time: s.detection_time(),
            downs: self.downs,
            failures: self.failures,
            received: self.received,
        }
    }

    /// Whether a packet from `source` may belong to this session.
    fn matches(&self, source: &SocketAddr) -> bool {
        if self.spec.peer != source.ip() {
            return false;
        }
        match source {
            SocketAddr::V6(v6) if v6.ip().is_unicast_link_local() => v6.scope_id() == self.ifindex,
            _ => true,
        }
    }
}

struct Driver {
    /// By local discriminator.
    sessions: HashMap<u32, Entry>,
    by_peer: HashMap<IpAddr, Vec<u32>>,
    rng: u64,
    readers: Vec<JoinHandle<()>>,
}

impl Driver {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut packets: mpsc::UnboundedReceiver<Received>,
    ) {
        loop {
            let deadline = self
                .sessions
                .values()
                .filter_map(|e| e.session.poll_timeout())
                .min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Shutdown(done)) => {
                        self.stop();
                        let _ = done.send(());
                        return;
                    }
                    Some(c) => self.command(c),
                    None => {
                        self.stop();
                        return;
                    }
                },
                Some(r) = packets.recv() => self.received(r),
                () = sleep => self.timers(),
            }
        }
    }

    fn command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::Add {
                key,
                ifindex,
                spec,
                socket,
                target,
                status,
            } => {
                let discr = self.discriminator();
                self.rng = self.rng.rotate_left(17) ^ u64::from(discr.get());
                let session = Session::new(spec.config, discr, self.rng, now);
                tracing::info!(peer = %spec.peer, interface = ?spec.interface,
                    local = ?socket.local_addr().ok(), discriminator = discr.get(),
                    "BFD session added");
                let peer = key.0;
                let mut entry = Entry {
                    key,
                    ifindex,
                    spec,
                    socket,
                    target,
                    session,
                    status,
                    downs: 0,
                    failures: 0,
                    received: 0,
                };
                entry.flush();
                self.by_peer.entry(peer).or_default().push(discr.get());
                self.sessions.insert(discr.get(), entry);
            }
            Command::Remove(key) => {
                let Some(discr) = self.by_peer.get(&key.0).and_then(|ds| {
                    ds.iter()
                        .copied()
                        .find(|d| self.sessions.get(d).is_some_and(|e| e.key == key))
                }) else {
                    return;
                };
                if let Some(ds) = self.by_peer.get_mut(&key.0) {
                    ds.retain(|d| *d != discr);
                    if ds.is_empty() {
                        self.by_peer.remove(&key.0);
                    }
                }
                if let Some(mut entry) = self.sessions.remove(&discr) {
                    entry.session.handle(Input::AdminDown, now);
                    entry.flush();
                    tracing::info!(peer = %entry.spec.peer, "BFD session removed");
                }
            }
            Command::Status(reply) => {
                let mut all: Vec<SessionStatus> =
                    self.sessions.values().map(Entry::status).collect();
                all.sort_by(|a, b| (a.peer, &a.interface).cmp(&(b.peer, &b.interface)));
                let _ = reply.send(all);
            }
            Command::Shutdown(_) => {}
        }
    }

    /// A nonzero discriminator no session uses.
    fn discriminator(&mut self) -> NonZeroU32 {
        loop {
            if self.rng == 0 {
                self.rng = 0x9e37_79b9_7f4a_7c15;
            }
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            if let Some(d) = NonZeroU32::new(self.rng as u32)
                && !self.sessions.contains_key(&d.get())
            {
                return d;
            }
        }
    }

    fn received(&mut self, r: Received) {
        let discr = if r.packet.your_discr != 0 {
            Some(r.packet.your_discr)
                .filter(|d| self.sessions.get(d).is_some_and(|e| e.matches(&r.source)))
        } else {
            self.by_peer.get(&r.source.ip()).and_then(|ds| {
                ds.iter()
                    .copied()
                    .find(|d| self.sessions.get(d).is_some_and(|e| e.matches(&r.source)))
            })
        };
        let Some(entry) = discr.and_then(|d| self.sessions.get_mut(&d)) else {
            tracing::debug!(source = %r.source, your_discr = r.packet.your_discr,
                "BFD packet for no session");
            return;
        };
        entry.received += 1;
        entry
            .session
            .handle(Input::Received(r.packet), Instant::now());
        entry.flush();
    }

    fn timers(&mut self) {
        let now = Instant::now();
        for entry in self.sessions.values_mut() {
            if entry.session.poll_timeout().is_some_and(|t| t <= now) {
                entry.session.handle(Input::Timeout, now);
                entry.flush();
            }
        }
    }

    fn stop(&mut self) {
        let now = Instant::now();
        for entry in self.sessions.values_mut() {
            entry.session.handle(Input::AdminDown, now);
            entry.flush();
        }
        self.sessions.clear();
        for r in &self.readers {
            r.abort();
        }
    }
}
