//! A sender: the clos-bgp session core over a blocking socket, in its own namespace. It opens
//! the session, reports ready, and on the go signal writes its share of the table, already
//! encoded (packed by attribute set), with one `write_all` from a second thread, while the
//! first keeps reading and discarding whatever the device sends back (the other senders'
//! routes), so the device never waits on it.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clos_bgp::session::{Output, RemoteAs, SessionConfig};
use clos_bgp::wire::{Family, KEEPALIVE};
use clos_testkit::Netns;

use super::receiver::KEEPALIVE_EVERY;
use crate::Result;
use crate::blocking::{BlockingSession, read_some};

/// Sender `i`'s address and its neighbour's (the device's) on their /30 in 192.0.2.0/24.
pub fn link(i: usize) -> (Ipv4Addr, Ipv4Addr) {
    let base = u32::from(Ipv4Addr::new(192, 0, 2, 0)) + 4 * i as u32;
    (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
}

/// One sender's identity and what it sends.
#[derive(Clone)]
pub struct SenderSpec {
    pub asn: u32,
    pub address: Ipv4Addr,
    pub remote: Ipv4Addr,
    pub remote_as: u32,
    /// Its UPDATEs and End-of-RIB, encoded for a 4-octet-AS session without extended messages.
    pub table: Arc<Vec<u8>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<String>,
    ready: AtomicBool,
    go: AtomicBool,
    stop: AtomicBool,
    started: Mutex<Option<Instant>>,
    written: Mutex<Option<Instant>>,
    error: Mutex<Option<String>>,
    drained: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Sender {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sender {
    pub fn start(ns: &Netns, spec: SenderSpec) -> Result<Self> {
        let mut config =
            SessionConfig::new(spec.asn, spec.address, RemoteAs::Exact(spec.remote_as));
        // IPv4 unicast only, no extended messages (UPDATEs of at most 4096 octets everywhere),
        // no graceful restart.
        config.hold_time = super::receiver::HOLD_TIME;
        config.connect_retry = Duration::from_millis(200);
        config.families = vec![Family::IPV4_UNICAST];
        config.extended_next_hop = false;
        config.extended_message = false;
        config.graceful_restart = None;
        let shared = Arc::new(Shared::default());
        let state = Arc::clone(&shared);
        let thread = ns.spawn_thread(move || {
            if let Err(err) = run(config, &spec, &state)
                && !state.stop.load(Ordering::Relaxed)
            {
                lock(&state.error).get_or_insert_with(|| err.to_string());
            }
        })?;
        Ok(Sender {
            shared,
            thread: Some(thread),
        })
    }

    /// Established and waiting for [`Sender::go`].
    pub fn ready(&self) -> bool {
        self.shared.ready.load(Ordering::Relaxed)
    }

    pub fn state(&self) -> String {
        lock(&self.shared.state).clone()
    }

    pub fn go(&self) {
        self.shared.go.store(true, Ordering::Release);
    }

    /// When the first UPDATE went out.
    pub fn started(&self) -> Option<Instant> {
        *lock(&self.shared.started)
    }

    /// When the whole table was in the socket (the device had read all but the socket
    /// buffers' worth).
    pub fn written(&self) -> Option<Instant> {
        *lock(&self.shared.written)
    }

    pub fn error(&self) -> Option<String> {
        lock(&self.shared.error).clone()
    }

    /// Octets the device sent back after Established.
    pub fn drained(&self) -> u64 {
        self.shared.drained.load(Ordering::Relaxed)
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(config: SessionConfig, spec: &SenderSpec, shared: &Arc<Shared>) -> Result<()> {
    let remote = SocketAddr::new(IpAddr::V4(spec.remote), 179);
    let mut session = BlockingSession::start(config, remote, Duration::from_secs(1), 256 * 1024);
    let mut established = false;
    while !established {
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        while let Some(output) = session.next_output()? {
            match output {
                Output::StateChanged { to, .. } => *lock(&shared.state) = format!("{to:?}"),
                Output::Established(n) => {
                    if !n.four_octet_as {
                        return Err("the device did not offer 4-octet AS numbers".into());
                    }
                    established = true;
                }
                _ => {}
            }
        }
        if established {
            break;
        }
        session.step();
    }
    let mut stream = session
        .into_stream()
        .ok_or("Established without a connection")?;
    shared.ready.store(true, Ordering::Release);
    let mut keepalive = Instant::now();
    while !shared.go.load(Ordering::Acquire) {
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if keepalive.elapsed() >= KEEPALIVE_EVERY {
            stream.write_all(&KEEPALIVE)?;
            keepalive = Instant::now();
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let mut writer = stream.try_clone()?;
    let table = Arc::clone(&spec.table);
    let state = Arc::clone(shared);
    *lock(&shared.started) = Some(Instant::now());
    // The UPDATEs keep the device's hold timer going; KEEPALIVEs follow once they are out
    // (never in between: this thread is the only writer from now on).
    let write = std::thread::spawn(move || {
        let result = writer.write_all(&table).and_then(|()| {
            *lock(&state.written) = Some(Instant::now());
            while !state.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
                if keepalive.elapsed() >= KEEPALIVE_EVERY {
                    writer.write_all(&KEEPALIVE)?;
                    keepalive = Instant::now();
                }
            }
            Ok(())
        });
        if let Err(err) = result
            && !state.stop.load(Ordering::Relaxed)
        {
            lock(&state.error).get_or_insert_with(|| format!("writing the table: {err}"));
        }
    });
    // Drain whatever comes back until stopped.
    let mut buf = vec![0u8; 256 * 1024];
    let result = loop {
        if shared.stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        match read_some(&mut stream, &mut buf) {
            Ok(Some(0)) => break Err("the device closed the session".into()),
            Ok(Some(n)) => {
                shared.drained.fetch_add(n as u64, Ordering::Relaxed);
            }
            Ok(None) => {}
            Err(e) => break Err(e.into()),
        }
    };
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = write.join();
    result
}
