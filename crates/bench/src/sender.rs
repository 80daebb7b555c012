//! The ingest benchmark's sender, the same for every receiver, in its own namespace inside this
//! process. Two kinds:
//! - `speaker`: the clos-bgp `Speaker` with the N prefixes originated; on Established it sends
//!   whatever its driver sends for a full table.
//! - `packed`: the clos-bgp session core (the same FSM and OPEN) over a blocking socket; on
//!   Established it writes the table packed into as few 4096-byte UPDATEs as fit, in one
//!   `write_all`, so that it is never what limits a receiver.
//!
//! Both report the instant the table starts to go out; the clock of a run starts there.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::ValueEnum;
use clos_bgp::config::SpeakerConfig;
use clos_bgp::driver::{Speaker, SpeakerHandle};
use clos_bgp::iana::Origin;
use clos_bgp::session::{Output, RemoteAs, SessionConfig};
use clos_bgp::wire::{
    AsPath, DecodeContext, Family, NextHop, PathAttributes, Prefix, UpdatePacker,
};
use clos_testkit::Netns;

use crate::Result;
use crate::blocking::BlockingSession;
use crate::receiver::{self, Receiver};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SenderKind {
    Speaker,
    Packed,
}

impl SenderKind {
    pub fn describe(self) -> &'static str {
        match self {
            SenderKind::Speaker => {
                "clos-bgp Speaker (current-thread runtime in its own namespace), hold time 0, \
                 no graceful restart"
            }
            SenderKind::Packed => {
                "clos-bgp session core over a blocking socket, writing the fully packed table \
                 at once, hold time 0, no graceful restart"
            }
        }
    }
}

/// A running sender; stopped when dropped.
pub trait Sender {
    /// Waits for the session and returns when the table started to go out.
    fn wait_started(&self, rx: &dyn Receiver) -> Result<Instant>;
}

pub fn start(kind: SenderKind, ns: &Netns, prefixes: Vec<Prefix>) -> Result<Box<dyn Sender>> {
    Ok(match kind {
        SenderKind::Speaker => Box::new(SpeakerSender::start(ns, prefixes)?),
        SenderKind::Packed => Box::new(PackedSender::start(ns, prefixes)?),
    })
}

/// The attributes every prefix is sent with (what the driver gives its originated routes on an
/// eBGP session).
fn attributes() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence([receiver::SENDER_AS])),
        ..PathAttributes::default()
    }
}

/// The table in as few UPDATEs as fit, sorted, then End-of-RIB.
pub fn packed_table(ctx: DecodeContext, prefixes: &[Prefix]) -> Result<Vec<Bytes>> {
    let mut sorted = prefixes.to_vec();
    sorted.sort_unstable();
    let mut packer = UpdatePacker::new(ctx);
    packer.announce(&attributes(), NextHop::V4(receiver::SENDER_ADDR), &sorted)?;
    packer.end_of_rib(Family::IPV4_UNICAST)?;
    Ok(packer.finish())
}

/// Session parameters both senders use: IPv4 unicast only, no extended messages (every
/// receiver gets UPDATEs of at most 4096 bytes), no keepalives (a receiver busy ingesting must
/// not lose the session to a timer), no graceful restart.
fn tune(session: &mut SessionConfig) {
    session.hold_time = 0;
    session.connect_retry = Duration::from_secs(1);
    session.families = vec![Family::IPV4_UNICAST];
    session.extended_next_hop = false;
    session.extended_message = false;
    session.graceful_restart = None;
}

fn wait(
    rx: &dyn Receiver,
    mut probe: impl FnMut() -> Result<(Option<Instant>, String)>,
) -> Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut checked = Instant::now();
    loop {
        let (started, state) = probe()?;
        if let Some(t) = started {
            return Ok(t);
        }
        let now = Instant::now();
        if now - checked > Duration::from_millis(100) {
            rx.check_running()?;
            checked = now;
        }
        if now > deadline {
            let theirs = rx.observe().map_or_else(|e| e.to_string(), |o| o.state);
            return Err(format!("no session after 60 s: sender {state}, receiver {theirs}").into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The clos-bgp speaker on a thread of its own inside the namespace.
struct SpeakerSender {
    handle: SpeakerHandle,
    /// For the handle's async calls from this thread.
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SpeakerSender {
    fn start(ns: &Netns, prefixes: Vec<Prefix>) -> Result<Self> {
        // Built through the config file's form, which fills in every default, then tuned.
        let config = receiver::speaker_config(
            receiver::SENDER_AS,
            receiver::SENDER_ADDR,
            &[],
            serde_json::json!({
                "address": receiver::RECEIVER_ADDR,
                "remote_as": receiver::RECEIVER_AS,
                "local_address": receiver::SENDER_ADDR,
            }),
        );
        let config: SpeakerConfig = serde_json::from_value(config)?;
        let mut spec = config.validate()?;
        for peer in &mut spec.peers {
            tune(&mut peer.session);
        }
        spec.originate = prefixes;
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = ns.spawn_thread(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(err) => {
                    let _ = tx.send(Err(crate::Error::from(err)));
                    return;
                }
            };
            rt.block_on(async move {
                match Speaker::spawn(spec).await {
                    Ok(handle) => {
                        let _ = tx.send(Ok(handle));
                        let _ = stopped.await;
                    }
                    Err(err) => {
                        let _ = tx.send(Err(err.into()));
                    }
                }
            });
        })?;
        let handle = rx.recv().map_err(|_| "the sender thread died")??;
        Ok(SpeakerSender {
            handle,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Sender for SpeakerSender {
    /// Asks the speaker every millisecond. It answers only after it has encoded the whole table
    /// and queued it for the socket, so the instant is when the table starts to go out.
    fn wait_started(&self, rx: &dyn Receiver) -> Result<Instant> {
        wait(rx, || {
            let status = self.rt.block_on(self.handle.status())?;
            let state = status
                .peers
                .first()
                .map_or_else(|| "none".to_owned(), |p| p.state.clone());
            let started = (state == "Established").then(Instant::now);
            Ok((started, state))
        })
    }
}

impl Drop for SpeakerSender {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The session core over a blocking socket, writing the packed table on Established.
struct PackedSender {
    shared: Arc<PackedShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct PackedShared {
    stop: AtomicBool,
    started: Mutex<Option<Instant>>,
    state: Mutex<String>,
}

impl PackedSender {
    fn start(ns: &Netns, prefixes: Vec<Prefix>) -> Result<Self> {
        let mut config = SessionConfig::new(
            receiver::SENDER_AS,
            receiver::SENDER_ADDR,
            RemoteAs::Exact(receiver::RECEIVER_AS),
        );
        tune(&mut config);
        let shared = Arc::new(PackedShared::default());
        let state = Arc::clone(&shared);
        let thread = ns.spawn_thread(move || {
            if let Err(err) = run_packed(config, &prefixes, &state) {
                *lock(&state.state) = format!("failed: {err}");
            }
        })?;
        Ok(PackedSender {
            shared,
            thread: Some(thread),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn run_packed(config: SessionConfig, prefixes: &[Prefix], shared: &PackedShared) -> Result<()> {
    let remote = SocketAddr::new(IpAddr::V4(receiver::RECEIVER_ADDR), 179);
    let mut session = BlockingSession::start(config, remote, Duration::from_secs(2), 64 * 1024);
    while !shared.stop.load(Ordering::Relaxed) {
        while let Some(output) = session.next_output()? {
            match output {
                Output::StateChanged { to, .. } => *lock(&shared.state) = format!("{to:?}"),
                Output::Established(n) => {
                    let table: Vec<u8> = packed_table(n.decode_context(), prefixes)?.concat();
                    *lock(&shared.started) = Some(Instant::now());
                    if let Some(s) = session.stream_mut() {
                        s.write_all(&table)?;
                    }
                }
                _ => {}
            }
        }
        session.step();
    }
    Ok(())
}

impl Sender for PackedSender {
    fn wait_started(&self, rx: &dyn Receiver) -> Result<Instant> {
        wait(rx, || {
            let state = lock(&self.shared.state).clone();
            if state.starts_with("failed") {
                return Err(format!("sender {state}").into());
            }
            Ok((*lock(&self.shared.started), state))
        })
    }
}

impl Drop for PackedSender {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
