//! Watching the kernel's FIB in the device's namespace: how many of the expected prefixes are
//! there, with the device's protocol, and with at least two next hops.
//!
//! Dumping 100,000 multipath routes costs the kernel a few hundred milliseconds of CPU, far too
//! much to poll every few milliseconds on the machine that also runs the device. So a thread in
//! the namespace follows the kernel's route notifications (`RTNLGRP_IPV4_ROUTE`, which the
//! kernel builds for every change whether anyone listens or not) and keeps a next-hop count per
//! expected prefix, and a full dump confirms the count whenever the notifications say it is
//! complete. A dump also resynchronises the count after a receive-buffer overrun (which the
//! large buffer makes unlikely), and after half a second without a notification once routes
//! have started to arrive (in case a device changes a nexthop group in place, which the kernel
//! may not announce per route).
//!
//! Routes that use nexthop objects (`nhid`) carry their expanded next hops in dumps and
//! notifications as long as `net.ipv4.nexthop_compat_mode` is 1, the kernel's default in every
//! namespace; the watcher refuses to run without it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clos_bgp::wire::Prefix;
use clos_testkit::Netns;
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::sockopt::{self, Timeout};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

use crate::Result;

const RTNLGRP_IPV4_ROUTE: u32 = 7;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const AF_INET: u8 = 2;
const RT_TABLE_MAIN: u32 = 254;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
/// Bytes of `struct nlmsghdr` and `struct rtmsg`.
const NLMSG_HDR: usize = 16;
const RTMSG: usize = 12;
/// Receive buffer of both sockets (`SO_RCVBUFFORCE`; the kernel doubles it): room for
/// hundreds of thousands of notifications, so that the watcher never loses any even when it
/// is not scheduled for a while. It costs memory only while notifications wait in it.
const RCVBUF: usize = 256 << 20;
/// How long a read of the notification socket waits before the watcher looks at the clock.
const TICK: Duration = Duration::from_millis(10);
/// Silence after which a dump checks the count anyway.
const SILENCE: Duration = Duration::from_millis(500);

/// What the watcher has seen so far.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Expected prefixes in the kernel with the device's protocol.
    pub present: usize,
    /// ... of which with at least two next hops.
    pub ecmp: usize,
    /// When the first expected prefix appeared.
    pub first: Option<Instant>,
    /// When every expected prefix was there (with any number of next hops).
    pub all_present: Option<Instant>,
    /// When every expected prefix had at least two next hops (confirmed by a dump).
    pub done: Option<Instant>,
    /// Route notifications read.
    pub notifications: u64,
    /// Full dumps made, and how many of them found the count from notifications wrong.
    pub dumps: u32,
    pub dumps_corrected: u32,
    /// Receive-buffer overruns of the notification socket (each followed by a dump).
    pub overruns: u32,
    /// Whether `done` came from a dump after a silence rather than from a notification (then
    /// it is late by up to the silence).
    pub done_after_silence: bool,
    pub error: Option<String>,
}

struct Shared {
    stop: AtomicBool,
    progress: Mutex<Progress>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The expected prefixes as (address, length) keys, each with its index.
pub struct Expected {
    index: HashMap<(u32, u8), u32>,
}

impl Expected {
    pub fn new(prefixes: &[Prefix]) -> Self {
        let index = prefixes
            .iter()
            .filter_map(|p| match p {
                Prefix::V4(v4) => Some((u32::from(v4.addr()), v4.prefix_len())),
                Prefix::V6(_) => None,
            })
            .enumerate()
            .map(|(i, key)| (key, i as u32))
            .collect();
        Expected { index }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }
}

/// A running watcher; its thread stops when it is dropped.
pub struct Watch {
    shared: Arc<Shared>,
    want: usize,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    /// Starts watching routes of `protocol` in the main table of `ns`. Returns once the
    /// notification socket is subscribed, so no change after this call is missed.
    pub fn start(ns: &Netns, protocol: u8, expected: Arc<Expected>) -> Result<Self> {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            progress: Mutex::new(Progress::default()),
        });
        let state = Arc::clone(&shared);
        let want = expected.len();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread = ns.spawn_thread(move || {
            let result = Watcher::open(protocol, &expected).and_then(|mut w| {
                let _ = ready_tx.send(Ok(()));
                w.run(&state)
            });
            if let Err(err) = result {
                let _ = ready_tx.send(Err(err.to_string()));
                lock(&state.progress).error = Some(err.to_string());
            }
        })?;
        let watch = Watch {
            shared,
            want,
            thread: Some(thread),
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(watch),
            Ok(Err(e)) => Err(format!("watching the kernel's routes: {e}").into()),
            Err(_) => Err("the route watcher died".into()),
        }
    }

    /// How many prefixes it waits for.
    pub fn expected_len(&self) -> usize {
        self.want
    }

    pub fn progress(&self) -> Progress {
        lock(&self.shared.progress).clone()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One route message, as far as the count needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RouteInfo {
    key: (u32, u8),
    protocol: u8,
    table: u32,
    nexthops: u8,
}

struct Watcher<'a> {
    protocol: u8,
    expected: &'a Expected,
    monitor: OwnedFd,
    dumper: OwnedFd,
    /// Next hops of each expected prefix (0: absent).
    nexthops: Vec<u8>,
    present: usize,
    ecmp: usize,
    seq: u32,
}

impl<'a> Watcher<'a> {
    fn open(protocol: u8, expected: &'a Expected) -> Result<Self> {
        let compat = std::fs::read_to_string("/proc/sys/net/ipv4/nexthop_compat_mode")
            .unwrap_or_else(|_| "1".into());
        if compat.trim() != "1" {
            return Err(
                "net.ipv4.nexthop_compat_mode is not 1 in the device's namespace: \
                        routes over nexthop objects would not show their next hops"
                    .into(),
            );
        }
        let monitor = netlink_socket(1 << (RTNLGRP_IPV4_ROUTE - 1))?;
        sockopt::set_socket_timeout(&monitor, Timeout::Recv, Some(TICK))?;
        let dumper = netlink_socket(0)?;
        sockopt::set_socket_timeout(&dumper, Timeout::Recv, Some(Duration::from_secs(30)))?;
        Ok(Watcher {
            protocol,
            expected,
            monitor,
            dumper,
            nexthops: vec![0; expected.len()],
            present: 0,
            ecmp: 0,
            seq: 0,
        })
    }

    fn run(&mut self, shared: &Shared) -> Result<()> {
        let want = self.expected.len();
        // Whatever is there already (normally nothing).
        self.resync()?;
        self.publish(shared, Instant::now(), |p| p.dumps += 1);
        let mut buf = vec![0u8; 64 * 1024];
        let mut last_change = Instant::now();
        let mut last_dump = Instant::now();
        loop {
            if shared.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let now;
            let mut confirm = false;
            match rustix::net::recv(&self.monitor, &mut buf[..], RecvFlags::empty()) {
                Ok((len, _)) => {
                    let n = self.take(&buf[..len]);
                    now = Instant::now();
                    if n > 0 {
                        last_change = now;
                        self.publish(shared, now, |p| p.notifications += n);
                    }
                    // The notifications say done: confirm with a dump.
                    confirm = self.ecmp == want;
                }
                Err(Errno::AGAIN) => {
                    now = Instant::now();
                    if self.present > 0
                        && now - last_change >= SILENCE
                        && now - last_dump >= 2 * SILENCE
                    {
                        let corrected = self.resync()?;
                        last_dump = Instant::now();
                        self.publish(shared, now, |p| {
                            p.dumps += 1;
                            p.dumps_corrected += u32::from(corrected);
                        });
                        if self.ecmp == want {
                            // Complete without a notification saying so: the time is only
                            // known to within the silence.
                            let mut p = lock(&shared.progress);
                            p.done = Some(now);
                            p.done_after_silence = true;
                            drop(p);
                            return self.idle(shared);
                        }
                    }
                }
                Err(Errno::NOBUFS) => {
                    // Notifications were lost. Apply what is queued (all older than the
                    // dump), then let a dump tell the truth; what is queued from then on is
                    // newer.
                    let mut n = 0;
                    loop {
                        match rustix::net::recv(&self.monitor, &mut buf[..], RecvFlags::DONTWAIT) {
                            Ok((len, _)) => n += self.take(&buf[..len]),
                            Err(Errno::AGAIN) => break,
                            Err(Errno::NOBUFS) => {}
                            Err(e) => {
                                return Err(format!("reading route notifications: {e}").into());
                            }
                        }
                    }
                    self.resync()?;
                    now = Instant::now();
                    last_dump = now;
                    self.publish(shared, now, |p| {
                        p.notifications += n;
                        p.dumps += 1;
                        p.overruns += 1;
                    });
                    if self.ecmp == want {
                        lock(&shared.progress).done = Some(now);
                        return self.idle(shared);
                    }
                }
                Err(e) => return Err(format!("reading route notifications: {e}").into()),
            }
            if confirm {
                let corrected = self.resync()?;
                last_dump = Instant::now();
                self.publish(shared, now, |p| {
                    p.dumps += 1;
                    p.dumps_corrected += u32::from(corrected);
                });
                if self.ecmp == want {
                    lock(&shared.progress).done = Some(now);
                    return self.idle(shared);
                }
            }
        }
    }

    /// Applies the route notifications in one datagram; returns how many there were.
    fn take(&mut self, datagram: &[u8]) -> u64 {
        let mut n = 0;
        for (kind, payload) in messages(datagram) {
            if kind == RTM_NEWROUTE || kind == RTM_DELROUTE {
                n += 1;
                self.note(kind, payload);
            }
        }
        n
    }

    /// Done: wait for the stop signal without using the CPU.
    fn idle(&self, shared: &Shared) -> Result<()> {
        while !shared.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Copies the counts into the shared progress, stamping the first and all-present times
    /// with `now`, and applies `also`.
    fn publish(&self, shared: &Shared, now: Instant, also: impl FnOnce(&mut Progress)) {
        let mut p = lock(&shared.progress);
        p.present = self.present;
        p.ecmp = self.ecmp;
        if self.present > 0 && p.first.is_none() {
            p.first = Some(now);
        }
        if self.present == self.expected.len() && p.all_present.is_none() {
            p.all_present = Some(now);
        }
        also(&mut p);
    }

    fn set(&mut self, index: usize, nexthops: u8) {
        let old = std::mem::replace(&mut self.nexthops[index], nexthops);
        self.present = self.present + usize::from(nexthops > 0) - usize::from(old > 0);
        self.ecmp = self.ecmp + usize::from(nexthops >= 2) - usize::from(old >= 2);
    }

    /// A route notification.
    fn note(&mut self, kind: u16, payload: &[u8]) {
        let Some(route) = parse_route(payload) else {
            return;
        };
        if route.protocol != self.protocol || route.table != RT_TABLE_MAIN {
            return;
        }
        let Some(&index) = self.expected.index.get(&route.key) else {
            return;
        };
        let nexthops = if kind == RTM_DELROUTE {
            0
        } else {
            route.nexthops
        };
        self.set(index as usize, nexthops);
    }

    /// Replaces the counts with a full dump of the kernel's routes of our protocol. Returns
    /// whether the dump disagreed with the counts from notifications.
    fn resync(&mut self) -> Result<bool> {
        self.seq = self.seq.wrapping_add(1);
        let mut request = Vec::with_capacity(NLMSG_HDR + RTMSG);
        request.extend_from_slice(&((NLMSG_HDR + RTMSG) as u32).to_ne_bytes());
        request.extend_from_slice(&RTM_GETROUTE.to_ne_bytes());
        request.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        request.extend_from_slice(&self.seq.to_ne_bytes());
        request.extend_from_slice(&0u32.to_ne_bytes());
        // family, dst_len, src_len, tos, table, protocol, scope, type; flags.
        request.extend_from_slice(&[AF_INET, 0, 0, 0, RT_TABLE_MAIN as u8, self.protocol, 0, 0]);
        request.extend_from_slice(&0u32.to_ne_bytes());
        rustix::net::send(&self.dumper, &request, SendFlags::empty())?;
        let mut fresh = vec![0u8; self.expected.len()];
        let mut buf = vec![0u8; 1 << 20];
        'dump: loop {
            let (len, _) = rustix::net::recv(&self.dumper, &mut buf[..], RecvFlags::empty())
                .map_err(|e| format!("route dump: {e}"))?;
            for (kind, payload) in messages(&buf[..len]) {
                match kind {
                    NLMSG_DONE => break 'dump,
                    NLMSG_ERROR => {
                        let code = payload
                            .get(..4)
                            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                        if code != 0 {
                            return Err(format!(
                                "route dump: {}",
                                std::io::Error::from_raw_os_error(-code)
                            )
                            .into());
                        }
                    }
                    RTM_NEWROUTE => {
                        if let Some(r) = parse_route(payload)
                            && r.protocol == self.protocol
                            && r.table == RT_TABLE_MAIN
                            && let Some(&i) = self.expected.index.get(&r.key)
                        {
                            fresh[i as usize] = r.nexthops;
                        }
                    }
                    _ => {}
                }
            }
        }
        let corrected = fresh != self.nexthops;
        if corrected {
            for (i, n) in fresh.into_iter().enumerate() {
                self.set(i, n);
            }
        }
        Ok(corrected)
    }
}

/// A bound `NETLINK_ROUTE` socket, member of `groups`, with a large receive buffer.
fn netlink_socket(groups: u32) -> Result<OwnedFd> {
    let fd = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, None)?;
    rustix::net::bind(&fd, &SocketAddrNetlink::new(0, groups))?;
    // Beyond `net.core.rmem_max` needs CAP_NET_ADMIN, which the benchmark has.
    if sockopt::set_socket_recv_buffer_size_force(&fd, RCVBUF).is_err() {
        sockopt::set_socket_recv_buffer_size(&fd, RCVBUF)?;
    }
    Ok(fd)
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

/// The netlink messages in one datagram: (type, payload).
fn messages(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < NLMSG_HDR {
            return None;
        }
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < NLMSG_HDR || len > data.len() {
            return None;
        }
        let kind = u16_at(data, 4);
        let payload = &data[NLMSG_HDR..len];
        data = &data[align4(len).min(data.len())..];
        Some((kind, payload))
    })
}

/// Route attributes: (type, value).
fn attributes(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = usize::from(u16_at(data, 0));
        if len < 4 || len > data.len() {
            return None;
        }
        // Without the nested and byte-order flags.
        let kind = u16_at(data, 2) & 0x3fff;
        let value = &data[4..len];
        data = &data[align4(len).min(data.len())..];
        Some((kind, value))
    })
}

/// An IPv4 route message: its prefix, protocol, table and number of next hops.
fn parse_route(payload: &[u8]) -> Option<RouteInfo> {
    if payload.len() < RTMSG || payload[0] != AF_INET {
        return None;
    }
    let dst_len = payload[1];
    let mut table = u32::from(payload[4]);
    let protocol = payload[5];
    let mut dst = 0u32;
    let mut single = false;
    let mut multipath = None;
    for (kind, value) in attributes(&payload[RTMSG..]) {
        match kind {
            RTA_DST if value.len() == 4 => {
                dst = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
            }
            RTA_TABLE if value.len() == 4 => {
                table = u32::from_ne_bytes([value[0], value[1], value[2], value[3]]);
            }
            RTA_GATEWAY | RTA_OIF => single = true,
            RTA_MULTIPATH => multipath = Some(count_nexthops(value)),
            _ => {}
        }
    }
    let nexthops = multipath.unwrap_or(u8::from(single));
    Some(RouteInfo {
        key: (dst, dst_len),
        protocol,
        table,
        nexthops,
    })
}

/// Entries (`struct rtnexthop`, 8 octets and their attributes) of an `RTA_MULTIPATH`.
fn count_nexthops(mut data: &[u8]) -> u8 {
    let mut n = 0u8;
    while data.len() >= 8 {
        let len = usize::from(u16_at(data, 0));
        if len < 8 || len > data.len() {
            break;
        }
        n = n.saturating_add(1);
        data = &data[align4(len).min(data.len())..];
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        a.resize(align4(a.len()), 0);
        a
    }

    fn nexthop(gateway: [u8; 4], ifindex: i32) -> Vec<u8> {
        let gw = attr(RTA_GATEWAY, &gateway);
        let mut n = Vec::new();
        n.extend_from_slice(&((8 + gw.len()) as u16).to_ne_bytes());
        n.extend_from_slice(&[0, 0]);
        n.extend_from_slice(&ifindex.to_ne_bytes());
        n.extend_from_slice(&gw);
        n
    }

    #[test]
    fn counts_multipath_and_single_routes() {
        let mut route = vec![AF_INET, 24, 0, 0, 254, 186, 0, 1, 0, 0, 0, 0];
        route.extend(attr(RTA_TABLE, &254u32.to_ne_bytes()));
        route.extend(attr(RTA_DST, &[198, 18, 7, 0]));
        let mut single = route.clone();
        single.extend(attr(RTA_GATEWAY, &[192, 0, 2, 1]));
        single.extend(attr(RTA_OIF, &3u32.to_ne_bytes()));
        let mut multi = route.clone();
        let mut hops = nexthop([192, 0, 2, 1], 3);
        hops.extend(nexthop([192, 0, 2, 5], 4));
        multi.extend(attr(RTA_MULTIPATH, &hops));
        let key = (u32::from_be_bytes([198, 18, 7, 0]), 24);
        let s = parse_route(&single).unwrap();
        assert_eq!((s.key, s.protocol, s.table, s.nexthops), (key, 186, 254, 1));
        assert_eq!(parse_route(&multi).unwrap().nexthops, 2);
        // Truncated input neither panics nor counts a half entry.
        for cut in 0..multi.len() {
            let _ = parse_route(&multi[..cut]);
        }
        assert_eq!(count_nexthops(&hops[..hops.len() - 3]), 1);
    }

    #[test]
    fn splits_datagrams_into_messages() {
        let mut d = Vec::new();
        for kind in [RTM_NEWROUTE, NLMSG_DONE] {
            d.extend_from_slice(&20u32.to_ne_bytes());
            d.extend_from_slice(&kind.to_ne_bytes());
            d.extend_from_slice(&[0; 10]);
            d.extend_from_slice(&[7; 4]);
        }
        let got: Vec<(u16, usize)> = messages(&d).map(|(k, p)| (k, p.len())).collect();
        assert_eq!(got, vec![(RTM_NEWROUTE, 4), (NLMSG_DONE, 4)]);
        assert_eq!(messages(&d[..30]).count(), 1);
    }
}
