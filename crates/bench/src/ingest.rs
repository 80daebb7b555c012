//! `clos-bench bgp-ingest`: how fast each receiver learns N prefixes from one sender.
//!
//! Method, per receiver and run:
//! - Two fresh namespaces joined by a veth: the sender at 192.0.2.1 (AS 65001), the receiver at
//!   192.0.2.2 (AS 65002), eBGP, IPv4 unicast only.
//! - The receiver starts first, passive, from a config that accepts everything. Then the
//!   sender (see [`crate::sender`]), in this process on a thread inside its namespace, connects
//!   and on Established sends all N prefixes (extended messages are not offered, so every
//!   receiver gets the same UPDATEs of at most 4096 bytes). The clock starts when the table
//!   starts to go out.
//! - The receiver is polled (after 5, 10, 20... ms, then every `--poll-ms`) for the count of
//!   prefixes received from the sender, through a counter rather than a table dump. The clock
//!   stops when it reports all N (see [`Done`]), with the polls' times as bounds. Then its
//!   resident memory is read once it stops growing.
//!
//! The sender is the same for every receiver. The `sink` receiver, which only counts prefixes,
//! shows its ceiling: a receiver whose time is close to the sink's is limited by the sender.
//! Each run also reports the bytes the sender put on the wire per prefix, against the fully
//! packed table.
//!
//! Receivers: BIRD, FRR, GoBGP and OpenBGPD from the test kit's generated configs (FRR with
//! `bgp no-rib`, so that none of them programs the kernel; the report flags any kernel routes
//! found afterwards), and `clos`: a `clos bgp run` process when a `clos` binary sits next to
//! this one (`cargo build --release -p clos-cli` puts one in `target/release`) or `--clos-bin`
//! names one, otherwise this binary's hidden `speaker` subcommand, which runs the same driver.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clos_bgp::wire::{DecodeContext, Prefix};
use clos_testkit::Netns;
use serde::Serialize;

use crate::receiver::{self, ClosCommand, Kind, Receiver};
use crate::sender::{self, SenderKind};
use crate::{Output, Result, proc, report};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many distinct IPv4 prefixes the sender announces.
    #[arg(long, default_value_t = 100_000)]
    pub prefixes: usize,
    /// Runs per receiver; the best is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Receivers to measure, in this order. `sink` only counts prefixes: the sender's ceiling.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sink,bird,frr,gobgp,openbgpd,clos"
    )]
    pub receivers: Vec<Kind>,
    /// Interval between polls of the receiver, in milliseconds. The first polls come sooner
    /// (after 5, 10, 20... ms), and a query that takes long is followed by a pause of at least
    /// four times its duration.
    #[arg(long, default_value_t = 50)]
    pub poll_ms: u64,
    /// Give up on a run after this many seconds of ingest.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// What sends the table: the clos-bgp Speaker as it dumps a table today, or the session
    /// core writing the fully packed table at once (never the bottleneck).
    #[arg(long, value_enum, default_value_t = SenderKind::Speaker)]
    pub sender: SenderKind,
    /// The `clos` binary for the clos receiver, run as `clos bgp run`. Default: `clos` next to
    /// this binary (`cargo build --release -p clos-cli` puts it in `target/release`), else
    /// `builtin`: this binary runs the same speaker from the clos-bgp it was built with.
    #[arg(long)]
    pub clos_bin: Option<PathBuf>,
}

/// One run against one receiver.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// From the sender starting to send the table to the receiver holding all of it; see
    /// [`Done`].
    pub seconds: f64,
    pub seconds_min: f64,
    pub seconds_max: f64,
    /// Sum over the receiver's processes once memory stopped growing after ingest.
    pub rss_kib: u64,
    pub processes: Vec<proc::ProcessRss>,
    /// Mean duration of one count query (the cost of polling).
    pub query_ms: f64,
    pub polls: usize,
    /// Routes in the receiver namespace's kernel table (0: the receiver did not install any).
    pub kernel_routes: usize,
    /// What the sender's connection delivered by the end (OPEN and KEEPALIVE included).
    pub wire_bytes: u64,
}

/// Everything measured for one receiver.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiverResult {
    pub receiver: &'static str,
    pub version: String,
    /// Best of the runs (shortest time), whose memory is reported too.
    pub best: Option<RunResult>,
    pub runs: Vec<RunResult>,
    pub error: Option<String>,
}

/// How the table looks and is sent.
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    pub prefixes: usize,
    pub runs: usize,
    pub poll_ms: u64,
    /// How many prefixes of each length.
    pub lengths: BTreeMap<u8, usize>,
    pub attributes: String,
    /// The table fully packed (as many prefixes per UPDATE as fit): its UPDATEs and bytes, to
    /// compare with what the sender puts on the wire.
    pub packed_updates: usize,
    pub packed_bytes: usize,
    pub max_message_len: usize,
    pub sender: String,
    pub clos_receiver: String,
    /// The 1-minute load average when the benchmark started: other work skews the figures.
    pub load_before: f64,
}

pub fn run(args: &Args, output: Output) -> Result<()> {
    if args.runs == 0 || args.prefixes == 0 {
        return Err("--prefixes and --runs must be at least 1".into());
    }
    let prefixes = generate(args.prefixes)?;
    let clos = ClosCommand::find(args.clos_bin.as_deref())?;
    let (packed_updates, packed_bytes) = packed(&prefixes)?;
    let workload = Workload {
        prefixes: prefixes.len(),
        runs: args.runs,
        poll_ms: args.poll_ms,
        lengths: lengths(&prefixes),
        attributes: format!(
            "one attribute set for all prefixes (the driver originates with one): ORIGIN IGP, \
             AS_PATH {SENDER}, NEXT_HOP {}",
            receiver::SENDER_ADDR,
            SENDER = receiver::SENDER_AS
        ),
        packed_updates,
        packed_bytes,
        max_message_len: DecodeContext::default().max_message_len(),
        sender: format!("{:?}: {}", args.sender, args.sender.describe()).to_lowercase(),
        clos_receiver: clos.describe(),
        load_before: proc::load_before_run(),
    };
    eprintln!(
        "bgp-ingest: {} prefixes ({packed_updates} UPDATEs fully packed), {} run(s) per receiver",
        workload.prefixes, args.runs
    );
    let mut results = Vec::new();
    for &kind in &args.receivers {
        results.push(measure(kind, &prefixes, args, &clos));
    }
    report::print(output, &workload, &results)
}

fn measure(kind: Kind, prefixes: &[Prefix], args: &Args, clos: &ClosCommand) -> ReceiverResult {
    let mut result = ReceiverResult {
        receiver: kind.name(),
        version: receiver::version(kind, clos),
        best: None,
        runs: Vec::new(),
        error: None,
    };
    for i in 1..=args.runs {
        let label = format!("{} run {i}/{}", kind.name(), args.runs);
        match run_once(kind, prefixes, args, clos, &label) {
            Ok(r) => {
                eprintln!(
                    "[{label}] {:.3} s, {:.0} prefixes/s, RSS {:.1} MiB",
                    r.seconds,
                    prefixes.len() as f64 / r.seconds,
                    r.rss_kib as f64 / 1024.0
                );
                result.runs.push(r);
            }
            Err(err) => {
                eprintln!("[{label}] failed: {err}");
                result.error = Some(err.to_string());
                break;
            }
        }
    }
    result.best = result
        .runs
        .iter()
        .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
        .cloned();
    result
}

fn run_once(
    kind: Kind,
    prefixes: &[Prefix],
    args: &Args,
    clos: &ClosCommand,
    label: &str,
) -> Result<RunResult> {
    let sender_ns = Netns::new()?;
    let receiver_ns = Netns::new()?;
    let link = sender_ns.link_to(&receiver_ns)?;
    sender_ns.add_addr(&link.local, &format!("{}/30", receiver::SENDER_ADDR))?;
    receiver_ns.add_addr(&link.remote, &format!("{}/30", receiver::RECEIVER_ADDR))?;

    eprintln!("[{label}] starting the receiver");
    let rx = receiver::start(kind, &receiver_ns, clos)?;
    let sender = sender::start(args.sender, &sender_ns, prefixes.to_vec())?;
    let start = sender.wait_started(rx.as_ref())?;
    eprintln!("[{label}] established, sending");

    let want = prefixes.len() as u64;
    let mut poller = Poller::new(rx.as_ref(), Duration::from_millis(args.poll_ms));
    let mut clock = Clock::new(start);
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut last_progress = Instant::now();
    let mut seen_established = false;
    let done = loop {
        let (span, obs) = poller.next()?;
        let at = span.to;
        seen_established |= obs.established;
        if !obs.established && (seen_established || at - start > Duration::from_secs(60)) {
            return Err(format!(
                "the session is down (receiver state {}) after {} prefixes",
                obs.state, obs.received
            )
            .into());
        }
        if obs.received > want {
            return Err(format!(
                "received {} prefixes, more than the {want} sent",
                obs.received
            )
            .into());
        }
        if obs.received == want && seen_established {
            break clock.done(span, want);
        }
        clock.observe(span, obs.received);
        if Instant::now() > deadline {
            return Err(format!(
                "{} of {want} prefixes after {} s",
                obs.received, args.timeout
            )
            .into());
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            eprintln!(
                "[{label}] {}/{want} received, {:.1} s",
                obs.received,
                (at - start).as_secs_f64()
            );
        }
    };
    let wire_bytes = wire_bytes(&sender_ns)?;
    let processes = settled_rss(rx.as_ref());
    rx.check_running()?;
    let kernel_routes = receiver_ns
        .ip(&["-4", "route", "show", "table", "all"])?
        .lines()
        .filter(|l| !l.starts_with("local ") && !l.starts_with("broadcast "))
        .count()
        // The connected route of the link.
        .saturating_sub(1);
    Ok(RunResult {
        seconds: done.estimate,
        seconds_min: done.min,
        seconds_max: done.max,
        rss_kib: processes.iter().map(|p| p.rss_kib).sum(),
        processes,
        query_ms: poller.mean_query_ms(),
        polls: poller.polls,
        kernel_routes,
        wire_bytes,
    })
}

/// When a query ran: the receiver's answer describes some instant in between, close to the
/// end when the receiver is busy (an event loop answers when it gets to the request, after the
/// UPDATEs queued before it), and the query is short when it is not.
#[derive(Debug, Clone, Copy)]
struct Span {
    from: Instant,
    to: Instant,
}

/// When the last prefix arrived, from polled counts, in seconds after the start.
#[derive(Debug, Clone, Copy)]
struct Done {
    /// The start of the last query that found prefixes missing (0 if none did).
    min: f64,
    /// The end of the first query that found all prefixes.
    max: f64,
    /// Extrapolated from the last query that found prefixes missing, at the rate since the
    /// observation before it (the start counts as one, with none received; each query is
    /// taken at its end), when that query saw at least a tenth of the table; otherwise `max`,
    /// as a rate from a few early prefixes says little.
    estimate: f64,
}

/// Observations of the received count since the start.
struct Clock {
    start: Instant,
    /// The last two observations short of all prefixes, oldest first.
    below: [(Span, u64); 2],
}

impl Clock {
    fn new(start: Instant) -> Self {
        let at = Span {
            from: start,
            to: start,
        };
        Clock {
            start,
            below: [(at, 0); 2],
        }
    }

    fn observe(&mut self, at: Span, received: u64) {
        self.below = [self.below[1], (at, received)];
    }

    fn done(&self, at: Span, want: u64) -> Done {
        let secs = |t: Instant| (t - self.start).as_secs_f64();
        let [(s0, c0), (s1, c1)] = self.below;
        let (min, max) = (secs(s1.from), secs(at.to));
        let estimate = if c1 * 10 < want || c1 <= c0 || s1.to <= s0.to {
            max
        } else {
            let rate = (c1 - c0) as f64 / (s1.to - s0.to).as_secs_f64();
            secs(s1.to) + (want - c1) as f64 / rate
        };
        Done {
            min,
            max,
            estimate: estimate.clamp(min, max),
        }
    }
}

/// Reads the receiver's memory until it stops growing (two readings half a second apart within
/// 1%, at most 10 s): some daemons finish best-path work after counting a prefix as received.
fn settled_rss(rx: &dyn Receiver) -> Vec<proc::ProcessRss> {
    let read = || proc::rss(&proc::with_descendants(&rx.pids()));
    let total = |ps: &[proc::ProcessRss]| ps.iter().map(|p| p.rss_kib).sum::<u64>();
    let mut last = read();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(500));
        let now = read();
        let (a, b) = (total(&last), total(&now));
        last = now;
        if b.abs_diff(a) * 100 <= a {
            break;
        }
    }
    last
}

/// The first interval between polls.
const FIRST_POLL: Duration = Duration::from_millis(5);

/// Polls a receiver: at once, then after 5, 10, 20... ms up to the poll interval.
struct Poller<'a> {
    rx: &'a dyn Receiver,
    interval: Duration,
    /// The current interval: it starts small and doubles up to `interval`, so a receiver done
    /// within the first poll interval is still timed closely.
    ramp: Duration,
    next: Instant,
    polls: usize,
    query_time: Duration,
    failures: usize,
}

impl<'a> Poller<'a> {
    fn new(rx: &'a dyn Receiver, interval: Duration) -> Self {
        Poller {
            rx,
            interval,
            ramp: FIRST_POLL.min(interval),
            next: Instant::now(),
            polls: 0,
            query_time: Duration::ZERO,
            failures: 0,
        }
    }

    /// The next observation and when its query ran. The first is taken at once.
    fn next(&mut self) -> Result<(Span, receiver::Observation)> {
        loop {
            let now = Instant::now();
            if self.next > now {
                std::thread::sleep(self.next - now);
            }
            let q0 = Instant::now();
            let obs = self.rx.observe();
            let q1 = Instant::now();
            // A query that costs much (the gobgp CLI is a Go program started per query) is
            // spaced out so that polling takes at most a fifth of a core from the receiver.
            self.next = q0 + self.ramp.max((q1 - q0) * 4);
            self.ramp = (self.ramp * 2).min(self.interval);
            match obs {
                Ok(obs) => {
                    self.polls += 1;
                    self.query_time += q1 - q0;
                    self.failures = 0;
                    return Ok((Span { from: q0, to: q1 }, obs));
                }
                Err(err) => {
                    self.rx.check_running()?;
                    self.failures += 1;
                    if self.failures >= 20 {
                        return Err(format!("20 queries in a row failed, last: {err}").into());
                    }
                }
            }
        }
    }

    fn mean_query_ms(&self) -> f64 {
        if self.polls == 0 {
            return 0.0;
        }
        self.query_time.as_secs_f64() * 1000.0 / self.polls as f64
    }
}

/// `n` distinct IPv4 prefixes: every /24 of 10.0.0.0/8 and 100.64.0.0/10, then every /25 of
/// them, then /26..., so a large table mixes lengths and nests like a real one.
pub fn generate(n: usize) -> Result<Vec<Prefix>> {
    let blocks = [
        (Ipv4Addr::new(10, 0, 0, 0), 8u8),
        (Ipv4Addr::new(100, 64, 0, 0), 10),
    ];
    let mut out = Vec::with_capacity(n);
    for len in 24u8..=32 {
        for (base, block_len) in blocks {
            let count = 1u64 << (len - block_len);
            for i in 0..count {
                if out.len() == n {
                    return Ok(out);
                }
                let addr = u32::from(base) + ((i as u32) << (32 - len));
                out.push(Prefix::new(IpAddr::V4(addr.into()), len)?);
            }
        }
    }
    if out.len() == n {
        Ok(out)
    } else {
        Err(format!("at most {} prefixes can be generated", out.len()).into())
    }
}

fn lengths(prefixes: &[Prefix]) -> BTreeMap<u8, usize> {
    let mut m = BTreeMap::new();
    for p in prefixes {
        *m.entry(p.prefix_len()).or_default() += 1;
    }
    m
}

/// The table packed into as few UPDATEs as fit 4096 bytes: how many, and their bytes.
fn packed(prefixes: &[Prefix]) -> Result<(usize, usize)> {
    let ctx = DecodeContext {
        four_octet_as: true,
        ..DecodeContext::default()
    };
    let messages = sender::packed_table(ctx, prefixes)?;
    Ok((messages.len(), messages.iter().map(|m| m.len()).sum()))
}

/// Bytes the sender's connection has delivered to the receiver (`ss`'s `bytes_acked`, which
/// counts the SYN too).
fn wire_bytes(sender: &Netns) -> Result<u64> {
    let out = sender.exec(
        "ss",
        &["-tinH", "dst", &receiver::RECEIVER_ADDR.to_string()],
    )?;
    out.split_whitespace()
        .find_map(|f| f.strip_prefix("bytes_acked:"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no bytes_acked in `ss -ti`: {out:?}").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_extrapolates_between_polls_within_bounds() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let span = |a, b| Span {
            from: ms(a),
            to: ms(b),
        };
        let mut c = Clock::new(t0);
        // 100 prefixes per ms: 1000 at 11 ms, 2000 at 21 ms; all 2500 by 26 ms.
        c.observe(span(9, 11), 1000);
        c.observe(span(19, 21), 2000);
        let d = c.done(span(39, 41), 2500);
        assert!((d.estimate - 0.026).abs() < 1e-9, "{d:?}");
        assert!(
            (d.min - 0.019).abs() < 1e-9 && (d.max - 0.041).abs() < 1e-9,
            "{d:?}"
        );
        // Nothing seen between the start and the end: the end of the first complete query.
        let mut c = Clock::new(t0);
        c.observe(span(0, 2), 0);
        let d = c.done(span(10, 12), 2500);
        assert!((d.estimate - 0.012).abs() < 1e-9, "{d:?}");
        // Too few prefixes seen to trust a rate: the same.
        let mut c = Clock::new(t0);
        c.observe(span(0, 2), 100);
        let d = c.done(span(10, 12), 2500);
        assert!((d.estimate - 0.012).abs() < 1e-9, "{d:?}");
        // A rate that would overshoot is clamped to the first complete query.
        let mut c = Clock::new(t0);
        c.observe(span(9, 11), 300);
        c.observe(span(19, 21), 301);
        c.observe(span(29, 31), 400);
        let d = c.done(span(39, 41), 2500);
        assert!((d.estimate - 0.041).abs() < 1e-9, "{d:?}");
    }

    #[test]
    fn generates_distinct_prefixes_of_growing_length() {
        let ps = generate(100_000).unwrap();
        let set: std::collections::BTreeSet<_> = ps.iter().collect();
        assert_eq!(set.len(), 100_000);
        let l = lengths(&ps);
        assert_eq!(l[&24], 65_536 + 16_384);
        assert_eq!(l[&25], 100_000 - 81_920);
        assert_eq!(ps[0].to_string(), "10.0.0.0/24");
        assert_eq!(ps[65_536].to_string(), "100.64.0.0/24");
    }
}
