//! The receiver at the end of the rig: our own fast BGP endpoint that holds no routes, only a
//! bit per expected prefix. It sends its OPEN and a KEEPALIVE at once (and a KEEPALIVE every
//! second after, whatever hold time the device picks), then
//! decodes every UPDATE (withdrawn routes, NLRI, and MP_REACH/MP_UNREACH for IPv4 unicast)
//! and sets or clears the prefixes' bits. The instant the last missing prefix arrives is the
//! end of a run: no polling of the device under test is involved.
//!
//! It either connects to the device (one session) or, for the wire limit, listens for the
//! senders themselves (one session each, one thread each).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clos_bgp::session::{RemoteAs, SessionConfig};
use clos_bgp::wire::{DecodeContext, Family, KEEPALIVE, Message, Prefix};
use clos_testkit::Netns;

use crate::Result;
use crate::blocking::read_some;

/// A multiply-shift hash for the prefix keys (the std hasher would cost more than the rest of
/// the decoding).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0 ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let x = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = x ^ (x >> 29);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The hold time both ends of the rig offer: the device's own (smaller) one wins. Not 0: GoBGP
/// 3.10 derives its write deadline from the hold time and fails every write with 0.
pub const HOLD_TIME: u16 = 240;

/// How often the rig's ends send KEEPALIVEs, well within any hold time a device negotiates.
pub const KEEPALIVE_EVERY: Duration = Duration::from_secs(1);

type Index = HashMap<u64, u32, BuildHasherDefault<KeyHasher>>;

fn key(addr: u32, len: u8) -> u64 {
    (u64::from(addr) << 8) | u64::from(len)
}

/// The prefixes a run expects, numbered: built once per benchmark.
pub struct Expected {
    index: Index,
}

impl Expected {
    pub fn new(prefixes: &[Prefix]) -> Self {
        let mut index = Index::with_capacity_and_hasher(prefixes.len(), Default::default());
        for (i, p) in prefixes.iter().enumerate() {
            if let Prefix::V4(v4) = p {
                index.insert(key(u32::from(v4.addr()), v4.prefix_len()), i as u32);
            }
        }
        Expected { index }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }
}

/// What the receiver has seen so far.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Sessions that got the peer's KEEPALIVE (Established).
    pub established: usize,
    pub held: u64,
    pub updates: u64,
    pub bytes: u64,
    /// NLRI of prefixes not in the table.
    pub unknown: u64,
    pub withdrawn: u64,
    /// Announcements of a prefix already held (replacements).
    pub repeated: u64,
    pub first_prefix: Option<Instant>,
    /// When every expected prefix was held for the first time.
    pub done: Option<Instant>,
    pub error: Option<String>,
}

struct Shared {
    expected: Arc<Expected>,
    bits: Vec<AtomicU64>,
    held: AtomicU64,
    established: AtomicUsize,
    updates: AtomicU64,
    bytes: AtomicU64,
    unknown: AtomicU64,
    withdrawn: AtomicU64,
    repeated: AtomicU64,
    first_prefix: Mutex<Option<Instant>>,
    done: Mutex<Option<Instant>>,
    error: Mutex<Option<String>>,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where the receiver's sessions come from.
pub enum Mode {
    /// Connect to the device at `remote` (port 179), retrying until it answers.
    Connect { remote: Ipv4Addr },
    /// Accept this many sessions on port 179 (the senders, for the wire limit).
    Listen { sessions: usize },
}

pub struct Receiver {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Receiver {
    pub fn start(
        ns: &Netns,
        mode: Mode,
        asn: u32,
        router_id: Ipv4Addr,
        expected: Arc<Expected>,
    ) -> Result<Self> {
        let mut session = SessionConfig::new(asn, router_id, RemoteAs::External);
        session.hold_time = HOLD_TIME;
        session.families = vec![Family::IPV4_UNICAST];
        session.extended_next_hop = false;
        session.extended_message = false;
        session.graceful_restart = None;
        let open = Message::Open(session.open()).to_bytes(&DecodeContext::default())?;
        let hello: Arc<[u8]> = [&open[..], &KEEPALIVE[..]].concat().into();
        let words = expected.len().div_ceil(64);
        let shared = Arc::new(Shared {
            expected,
            bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
            held: AtomicU64::new(0),
            established: AtomicUsize::new(0),
            updates: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            withdrawn: AtomicU64::new(0),
            repeated: AtomicU64::new(0),
            first_prefix: Mutex::new(None),
            done: Mutex::new(None),
            error: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let mut threads = Vec::new();
        match mode {
            Mode::Connect { remote } => {
                let state = Arc::clone(&shared);
                threads.push(ns.spawn_thread(move || {
                    // A device may close connections until its configuration is in (FRR
                    // applies it through vtysh after starting): retry until Established.
                    let result = loop {
                        let result = connect(remote, &state)
                            .and_then(|stream| session_loop(stream, &hello, &state));
                        if result.is_ok()
                            || state.established.load(Ordering::Relaxed) > 0
                            || state.stop.load(Ordering::Relaxed)
                        {
                            break result;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    };
                    fail(&state, result);
                })?);
            }
            Mode::Listen { sessions } => {
                let (tx, rx) = std::sync::mpsc::channel();
                let state = Arc::clone(&shared);
                threads.push(ns.spawn_thread(move || {
                    let listener = match TcpListener::bind((Ipv4Addr::UNSPECIFIED, 179)) {
                        Ok(l) => l,
                        Err(err) => return drop(tx.send(Err(err))),
                    };
                    let _ = tx.send(Ok(()));
                    let mut handlers = Vec::new();
                    for _ in 0..sessions {
                        match accept(&listener, &state) {
                            Ok(Some(stream)) => {
                                let (state, hello) = (Arc::clone(&state), Arc::clone(&hello));
                                handlers.push(std::thread::spawn(move || {
                                    fail(&state, session_loop(stream, &hello, &state));
                                }));
                            }
                            Ok(None) => break,
                            Err(err) => {
                                fail(&state, Err(err.into()));
                                break;
                            }
                        }
                    }
                    for h in handlers {
                        let _ = h.join();
                    }
                })?);
                rx.recv().map_err(|_| "the receiver thread died")??;
            }
        }
        Ok(Receiver { shared, threads })
    }

    pub fn progress(&self) -> Progress {
        let s = &self.shared;
        Progress {
            established: s.established.load(Ordering::Relaxed),
            held: s.held.load(Ordering::Relaxed),
            updates: s.updates.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            unknown: s.unknown.load(Ordering::Relaxed),
            withdrawn: s.withdrawn.load(Ordering::Relaxed),
            repeated: s.repeated.load(Ordering::Relaxed),
            first_prefix: *lock(&s.first_prefix),
            done: *lock(&s.done),
            error: lock(&s.error).clone(),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn fail(state: &Shared, result: Result<()>) {
    if let Err(err) = result
        && !state.stop.load(Ordering::Relaxed)
    {
        lock(&state.error).get_or_insert_with(|| err.to_string());
    }
}

fn connect(remote: Ipv4Addr, state: &Shared) -> Result<TcpStream> {
    let to = SocketAddr::from((remote, 179));
    loop {
        if state.stop.load(Ordering::Relaxed) {
            return Err("stopped".into());
        }
        match TcpStream::connect_timeout(&to, Duration::from_millis(500)) {
            Ok(s) => return Ok(s),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn accept(listener: &TcpListener, state: &Shared) -> std::io::Result<Option<TcpStream>> {
    listener.set_nonblocking(true)?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(Some(stream));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if state.stop.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// One session: hello, then decode until the peer closes or the receiver stops.
fn session_loop(mut stream: TcpStream, hello: &[u8], state: &Shared) -> Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    stream.write_all(hello)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0;
    let mut established = false;
    let mut keepalive = Instant::now();
    while !state.stop.load(Ordering::Relaxed) {
        if keepalive.elapsed() >= KEEPALIVE_EVERY {
            stream.write_all(&KEEPALIVE)?;
            keepalive = Instant::now();
        }
        let n = match read_some(&mut stream, &mut buf[filled..])? {
            Some(0) => return Err("the peer closed the session".into()),
            Some(n) => n,
            None => continue,
        };
        filled += n;
        let mut batch = Batch::default();
        let mut at = 0;
        while filled - at >= 19 {
            let len = usize::from(u16::from_be_bytes([buf[at + 16], buf[at + 17]]));
            if !(19..=4096).contains(&len) {
                return Err(format!("bad message length {len}").into());
            }
            if filled - at < len {
                break;
            }
            let body = &buf[at + 19..at + len];
            match buf[at + 18] {
                2 => {
                    batch.updates += 1;
                    update(body, state, &mut batch)
                        .map_err(|e| format!("malformed UPDATE: {e}"))?;
                }
                3 => {
                    let (code, sub) = (body.first(), body.get(1));
                    return Err(format!("NOTIFICATION {code:?}/{sub:?} from the peer").into());
                }
                4 if !established => {
                    established = true;
                    state.established.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
            at += len;
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
        batch.bytes = n as u64;
        batch.commit(state);
    }
    Ok(())
}

/// Counts of one read, added to the shared ones at once.
#[derive(Default)]
struct Batch {
    updates: u64,
    bytes: u64,
    added: u64,
    removed: u64,
    unknown: u64,
    withdrawn: u64,
    repeated: u64,
}

impl Batch {
    fn commit(&self, state: &Shared) {
        let now = Instant::now();
        if self.added > 0 {
            lock(&state.first_prefix).get_or_insert(now);
        }
        state.updates.fetch_add(self.updates, Ordering::Relaxed);
        state.bytes.fetch_add(self.bytes, Ordering::Relaxed);
        state.unknown.fetch_add(self.unknown, Ordering::Relaxed);
        state.withdrawn.fetch_add(self.withdrawn, Ordering::Relaxed);
        state.repeated.fetch_add(self.repeated, Ordering::Relaxed);
        if self.added != self.removed {
            let delta = self.added.wrapping_sub(self.removed);
            let held = state
                .held
                .fetch_add(delta, Ordering::AcqRel)
                .wrapping_add(delta);
            if held == state.expected.len() as u64 {
                lock(&state.done).get_or_insert(now);
            }
        }
    }
}

/// IPv4 prefixes in `buf` (NLRI encoding), announced or withdrawn.
fn prefixes(mut buf: &[u8], announce: bool, state: &Shared, batch: &mut Batch) -> Result<()> {
    while let Some((&bits, rest)) = buf.split_first() {
        if bits > 32 {
            return Err(format!("prefix length {bits}").into());
        }
        let n = usize::from(bits).div_ceil(8);
        let Some(bytes) = rest.get(..n) else {
            return Err("truncated prefix".into());
        };
        let mut octets = [0u8; 4];
        octets[..n].copy_from_slice(bytes);
        buf = &rest[n..];
        let Some(&i) = state
            .expected
            .index
            .get(&key(u32::from_be_bytes(octets), bits))
        else {
            batch.unknown += u64::from(announce);
            continue;
        };
        let (word, bit) = (i as usize / 64, 1u64 << (i % 64));
        if announce {
            let before = state.bits[word].fetch_or(bit, Ordering::Relaxed);
            if before & bit == 0 {
                batch.added += 1;
            } else {
                batch.repeated += 1;
            }
        } else {
            batch.withdrawn += 1;
            let before = state.bits[word].fetch_and(!bit, Ordering::Relaxed);
            if before & bit != 0 {
                batch.removed += 1;
            }
        }
    }
    Ok(())
}

fn u16_at(b: &[u8], i: usize) -> Result<usize> {
    b.get(i..i + 2)
        .map(|s| usize::from(u16::from_be_bytes([s[0], s[1]])))
        .ok_or_else(|| "truncated".into())
}

fn update(body: &[u8], state: &Shared, batch: &mut Batch) -> Result<()> {
    let withdrawn_len = u16_at(body, 0)?;
    let withdrawn = body.get(2..2 + withdrawn_len).ok_or("withdrawn routes")?;
    prefixes(withdrawn, false, state, batch)?;
    let attrs_len = u16_at(body, 2 + withdrawn_len)?;
    let start = 4 + withdrawn_len;
    let mut attrs = body.get(start..start + attrs_len).ok_or("attributes")?;
    while attrs.len() >= 3 {
        let (flags, kind) = (attrs[0], attrs[1]);
        let (len, head) = if flags & 0x10 != 0 {
            (u16_at(attrs, 2)?, 4)
        } else {
            (usize::from(attrs[2]), 3)
        };
        let value = attrs.get(head..head + len).ok_or("attribute length")?;
        attrs = &attrs[head + len..];
        // MP_REACH_NLRI / MP_UNREACH_NLRI for IPv4 unicast (AFI 1, SAFI 1).
        let ipv4_unicast = value.len() >= 3 && value[..3] == [0, 1, 1];
        match kind {
            14 if ipv4_unicast => {
                let nh_len = usize::from(*value.get(3).ok_or("MP_REACH")?);
                let nlri = value.get(5 + nh_len..).ok_or("MP_REACH")?;
                prefixes(nlri, true, state, batch)?;
            }
            15 if ipv4_unicast => prefixes(&value[3..], false, state, batch)?,
            _ => {}
        }
    }
    prefixes(&body[start + attrs_len..], true, state, batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(prefixes: &[&str]) -> Shared {
        let ps: Vec<Prefix> = prefixes.iter().map(|p| p.parse().unwrap()).collect();
        let expected = Arc::new(Expected::new(&ps));
        Shared {
            bits: (0..expected.len().div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            expected,
            held: AtomicU64::new(0),
            established: AtomicUsize::new(0),
            updates: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            withdrawn: AtomicU64::new(0),
            repeated: AtomicU64::new(0),
            first_prefix: Mutex::new(None),
            done: Mutex::new(None),
            error: Mutex::new(None),
            stop: AtomicBool::new(false),
        }
    }

    #[test]
    fn decodes_nlri_withdrawals_and_mp_reach() {
        let s = shared(&["10.0.0.0/24", "10.0.0.0/25", "192.0.2.0/32"]);
        // NLRI: 10.0.0.0/24, 10.0.0.0/25, 172.16.0.0/12 (unknown); ORIGIN IGP only.
        let body = [
            0, 0, 0, 4, 0x40, 1, 1, 0, 24, 10, 0, 0, 25, 10, 0, 0, 0, 12, 172, 16,
        ];
        let mut b = Batch::default();
        update(&body, &s, &mut b).unwrap();
        b.commit(&s);
        assert_eq!(s.held.load(Ordering::Relaxed), 2);
        assert_eq!(s.unknown.load(Ordering::Relaxed), 1);
        assert!(lock(&s.done).is_none());
        // Withdraw 10.0.0.0/25; announce 192.0.2.0/32 in MP_REACH (next hop 4 octets).
        let body = [
            0, 5, 25, 10, 0, 0, 0, 0, 17, 0x80, 14, 14, 0, 1, 1, 4, 192, 0, 2, 1, 0, 32, 192, 0, 2,
            0,
        ];
        let mut b = Batch::default();
        update(&body, &s, &mut b).unwrap();
        b.commit(&s);
        assert_eq!(s.held.load(Ordering::Relaxed), 2);
        assert_eq!(s.withdrawn.load(Ordering::Relaxed), 1);
        // 10.0.0.0/25 again: all three held.
        let body = [0, 0, 0, 0, 25, 10, 0, 0, 0];
        let mut b = Batch::default();
        update(&body, &s, &mut b).unwrap();
        b.commit(&s);
        assert_eq!(s.held.load(Ordering::Relaxed), 3);
        assert!(lock(&s.done).is_some());
        // Garbage is an error, never a panic.
        let mut b = Batch::default();
        assert!(update(&[0, 9, 1], &s, &mut b).is_err());
        assert!(update(&[0, 0, 0, 0, 33, 1, 2, 3, 4, 5], &s, &mut b).is_err());
        assert!(update(&[0, 0, 0, 0, 24, 1], &s, &mut b).is_err());
    }
}
