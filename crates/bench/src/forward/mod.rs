//! `clos-bench bgp-forward`: a bgperf-style rig. Sender peers announce a full table to the
//! device under test, which advertises everything to a receiver peer; the time runs from the
//! first UPDATE sent until the receiver holds every prefix.
//!
//! Topology of one run, every part in a namespace of its own, joined by veths:
//!
//! ```text
//! sender 0 (AS 65001, 192.0.2.1) ──┐
//! sender 1 (AS 65002, 192.0.2.5) ──┼── device (AS 65100) ── receiver (AS 65200, 198.51.100.2)
//! ...                              ┘    192.0.2.2, .6, ...; 198.51.100.1
//! ```
//!
//! For `wire` there is no device: the senders connect straight to the receiver, which shows
//! what the rig itself can do. Method, per run:
//! - The device starts with every neighbour passive. The receiver (see [`receiver`]) connects
//!   to it; once that session is Established, the senders (see [`sender`]) connect, and once
//!   all of them are Established they are told to go at the same instant. Each writes its
//!   share of the table, encoded beforehand, in one `write_all`.
//! - Start: the first sender's first UPDATE. End: the receiver holding every prefix, as seen
//!   by the receiver itself; the device is never polled.
//! - Peak RSS: VmHWM summed over the device's processes (and their children) once its CPU
//!   time stops growing after the run; CPU: user and system time of those processes from the
//!   go signal to the end.
//!
//! Runs interleave the devices (run 1 of each, then run 2 of each...) so that other load on
//! the machine spreads over all of them; the best run of each is reported.

mod device;
mod receiver;
mod report;
pub(crate) mod sender;
pub(crate) mod table;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clos_bgp::wire::DecodeContext;
use clos_testkit::Netns;
use serde::Serialize;

use self::device::{Device, Dut, Neighbor};
use self::receiver::{Expected, Mode, Receiver};
use self::sender::{Sender, SenderSpec};
use crate::receiver::ClosCommand;
use crate::{Output, Result, proc, runs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Unique IPv4 prefixes announced by all senders together.
    #[arg(long, default_value_t = 1_000_000)]
    pub prefixes: usize,
    /// Distinct AS paths (after the senders' own AS) the prefixes are spread over.
    #[arg(long, default_value_t = 50_000)]
    pub paths: usize,
    /// Sender peers; each announces a disjoint share of the table (whole AS paths).
    #[arg(long, default_value_t = 2)]
    pub senders: usize,
    /// Runs per device; the best is reported. Runs interleave the devices.
    #[arg(long, default_value_t = 2)]
    pub runs: usize,
    /// Devices to measure, in this order. `wire`: the senders straight to the receiver.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "wire,bird,frr,gobgp,openbgpd,clos"
    )]
    pub devices: Vec<Device>,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Seed of the generated table (the same seed gives the same table).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The `clos` binary for the clos device, run as `clos bgp run`. Default: `clos` next to
    /// this binary (`cargo build --release -p clos-cli` puts it in `target/release`), else
    /// `builtin`: this binary runs the same speaker from the clos-bgp it was built with.
    #[arg(long)]
    pub clos_bin: Option<PathBuf>,
    /// Stop after each device's session to the receiver is up and wait this many seconds
    /// before the senders go (to attach a profiler to the device; its pids are printed).
    #[arg(long, hide = true, default_value_t = 0)]
    pub pause: u64,
}

const DEVICE_AS: u32 = 65100;
const DEVICE_ID: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 100);
const RECEIVER_AS: u32 = 65200;
const RECEIVER_ID: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 200);
/// The device's side of the receiver's link, and the receiver's.
const DEVICE_DOWN: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const RECEIVER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

fn sender_as(s: usize) -> u32 {
    65001 + s as u32
}

/// One run of one device.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// From the first UPDATE sent to the receiver holding every prefix.
    pub seconds: f64,
    /// From the first UPDATE sent to the first prefix at the receiver.
    pub first_prefix_seconds: f64,
    /// From the first UPDATE sent until the slowest sender's table was all in its socket.
    pub senders_written_seconds: Option<f64>,
    /// Peak resident memory summed over the device's processes.
    pub peak_rss_kib: u64,
    pub processes: Vec<proc::ProcessRss>,
    /// CPU time of the device's processes during the run.
    pub cpu_seconds: f64,
    /// What the receiver got: UPDATEs, octets, replaced and withdrawn prefixes.
    pub receiver_updates: u64,
    pub receiver_bytes: u64,
    pub receiver_repeated: u64,
    pub receiver_withdrawn: u64,
    /// Octets the device sent back to the senders (the other senders' routes).
    pub senders_drained_bytes: u64,
}

pub type DeviceResult = runs::DeviceRuns<RunResult>;

impl runs::Timed for RunResult {
    fn seconds(&self) -> f64 {
        self.seconds
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    pub prefixes: usize,
    pub lengths: BTreeMap<u8, usize>,
    pub paths: usize,
    pub paths_used: usize,
    pub mean_as_path_len: f64,
    pub senders: usize,
    /// UPDATEs (End-of-RIB included) and octets all senders send.
    pub sender_updates: usize,
    pub sender_bytes: usize,
    pub runs: usize,
    pub seed: u64,
    pub clos_device: String,
    pub load_before: f64,
}

/// Everything fixed for the whole benchmark.
struct Setup {
    specs: Vec<SenderSpec>,
    expected: Arc<Expected>,
    clos: ClosCommand,
}

pub fn run(args: &Args, output: Output) -> Result<()> {
    if args.runs == 0 || args.prefixes == 0 || args.senders == 0 || args.senders > 32 {
        return Err("--prefixes and --runs must be at least 1, --senders 1 to 32".into());
    }
    eprintln!(
        "bgp-forward: generating {} prefixes over {} AS paths",
        args.prefixes, args.paths
    );
    let t = table::generate(args.prefixes, args.paths, args.seed)?;
    let ctx = DecodeContext {
        four_octet_as: true,
        ..DecodeContext::default()
    };
    let mut specs = Vec::new();
    let mut sender_updates = 0;
    for s in 0..args.senders {
        let (address, _) = sender::link(s);
        let share = t.share(s, args.senders);
        let bytes = t.messages(&share, sender_as(s), address, ctx)?;
        sender_updates += count_messages(&bytes);
        specs.push(SenderSpec {
            asn: sender_as(s),
            address,
            remote: Ipv4Addr::UNSPECIFIED,
            remote_as: 0,
            table: Arc::new(bytes),
        });
    }
    let clos = ClosCommand::find(args.clos_bin.as_deref())?;
    let workload = Workload {
        prefixes: t.prefixes.len(),
        lengths: t.lengths(),
        paths: t.paths.len(),
        paths_used: t.used_paths(),
        mean_as_path_len: t.mean_path_len(),
        senders: args.senders,
        sender_updates,
        sender_bytes: specs.iter().map(|s| s.table.len()).sum(),
        runs: args.runs,
        seed: args.seed,
        clos_device: clos.describe(),
        load_before: proc::load_before_run(),
    };
    eprintln!(
        "bgp-forward: {} senders, {} UPDATEs, {:.1} MB; {} run(s) per device",
        args.senders,
        workload.sender_updates,
        workload.sender_bytes as f64 / 1e6,
        args.runs
    );
    let setup = Setup {
        specs,
        expected: Arc::new(Expected::new(&t.prefixes)),
        clos,
    };
    drop(t);
    let devices: Vec<_> = args
        .devices
        .iter()
        .map(|&d| (d, d.name(), d.version(&setup.clos)))
        .collect();
    let results = runs::interleave(
        &devices,
        args.runs,
        |device, label, _| run_once(device, &setup, args, label),
        |r| {
            format!(
                "{:.3} s, {:.0} prefixes/s, peak RSS {:.1} MiB, CPU {:.2} s",
                r.seconds,
                workload.prefixes as f64 / r.seconds,
                r.peak_rss_kib as f64 / 1024.0,
                r.cpu_seconds
            )
        },
    );
    report::print(output, &workload, &results)
}

/// Messages in a stream of encoded BGP messages.
pub(crate) fn count_messages(bytes: &[u8]) -> usize {
    let mut at = 0;
    let mut n = 0;
    while at + 19 <= bytes.len() {
        at += usize::from(u16::from_be_bytes([bytes[at + 16], bytes[at + 17]]));
        n += 1;
    }
    n
}

/// Polls `f` every few milliseconds until it returns `Some`, failing after `secs` or when
/// `check` fails.
fn wait<T>(
    what: &str,
    secs: u64,
    mut check: impl FnMut() -> Result<()>,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(t) = f() {
            return Ok(t);
        }
        check()?;
        if Instant::now() > deadline {
            return Err(format!("timed out after {secs} s waiting for {what}").into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn run_once(device: Device, setup: &Setup, args: &Args, label: &str) -> Result<RunResult> {
    let senders_n = setup.specs.len();
    let rx_ns = Netns::new()?;
    let dut_ns = match device {
        Device::Wire => None,
        _ => Some(Netns::new()?),
    };
    // The senders' neighbour: the device, or the receiver itself.
    let hub = dut_ns.as_ref().unwrap_or(&rx_ns);
    let mut sender_ns = Vec::new();
    let mut neighbors = Vec::new();
    for s in 0..senders_n {
        let ns = Netns::new()?;
        let link = ns.link_to(hub)?;
        let (address, remote) = sender::link(s);
        ns.add_addr(&link.local, &format!("{address}/30"))?;
        hub.add_addr(&link.remote, &format!("{remote}/30"))?;
        neighbors.push(Neighbor {
            address,
            asn: sender_as(s),
            local: remote,
        });
        sender_ns.push(ns);
    }
    let mut dut: Option<Box<dyn Dut>> = None;
    let mode = match &dut_ns {
        Some(ns) => {
            let link = ns.link_to(&rx_ns)?;
            ns.add_addr(&link.local, &format!("{DEVICE_DOWN}/30"))?;
            rx_ns.add_addr(&link.remote, &format!("{RECEIVER_ADDR}/30"))?;
            neighbors.push(Neighbor {
                address: RECEIVER_ADDR,
                asn: RECEIVER_AS,
                local: DEVICE_DOWN,
            });
            eprintln!("[{label}] starting the device");
            dut = Some(device::start(
                device,
                ns,
                DEVICE_AS,
                DEVICE_ID,
                &neighbors,
                &setup.clos,
            )?);
            Mode::Connect {
                remote: DEVICE_DOWN,
            }
        }
        None => Mode::Listen {
            sessions: senders_n,
        },
    };
    let rx = Receiver::start(
        &rx_ns,
        mode,
        RECEIVER_AS,
        RECEIVER_ID,
        Arc::clone(&setup.expected),
    )?;
    let check = || -> Result<()> {
        if let Some(d) = &dut {
            d.check_running()?;
        }
        if let Some(err) = rx.progress().error {
            return Err(format!("receiver: {err}").into());
        }
        Ok(())
    };
    if dut.is_some() {
        wait("the receiver's session", 60, check, || {
            (rx.progress().established > 0).then_some(())
        })?;
    }
    let remote_as = match device {
        Device::Wire => RECEIVER_AS,
        _ => DEVICE_AS,
    };
    let senders: Vec<Sender> = setup
        .specs
        .iter()
        .zip(&sender_ns)
        .enumerate()
        .map(|(s, (spec, ns))| {
            let spec = SenderSpec {
                remote: sender::link(s).1,
                remote_as,
                ..spec.clone()
            };
            Sender::start(ns, spec)
        })
        .collect::<Result<_>>()?;
    let check_all = || -> Result<()> {
        check()?;
        senders
            .iter()
            .find_map(Sender::error)
            .map_or(Ok(()), |e| Err(format!("sender: {e}").into()))
    };
    wait("the senders' sessions", 60, check_all, || {
        senders.iter().all(Sender::ready).then_some(())
    })
    .map_err(|e| {
        let states: Vec<String> = senders.iter().map(Sender::state).collect();
        format!("{e} (sender states {states:?})")
    })?;
    let pids = dut
        .as_ref()
        .map(|d| proc::with_descendants(&d.pids()))
        .unwrap_or_default();
    if args.pause > 0 {
        eprintln!(
            "[{label}] device pids {pids:?}: pausing {} s before sending",
            args.pause
        );
        std::thread::sleep(Duration::from_secs(args.pause));
    }
    eprintln!("[{label}] sessions up, sending");
    let cpu_before = proc::cpu_seconds(&pids);
    for s in &senders {
        s.go();
    }
    let want = setup.expected_len();
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut next_report = Instant::now() + Duration::from_secs(1);
    let done = loop {
        std::thread::sleep(Duration::from_millis(5));
        let p = rx.progress();
        if let Some(done) = p.done {
            break done;
        }
        check_all()?;
        let now = Instant::now();
        if now > deadline {
            return Err(format!(
                "{} of {want} prefixes after {} s ({} unknown)",
                p.held, args.timeout, p.unknown
            )
            .into());
        }
        if now >= next_report {
            next_report = now + Duration::from_secs(1);
            eprintln!("[{label}] {}/{want} prefixes at the receiver", p.held);
        }
    };
    let cpu_seconds = proc::cpu_seconds(&pids) - cpu_before;
    let start = senders
        .iter()
        .filter_map(Sender::started)
        .min()
        .ok_or("no sender started")?;
    let progress = rx.progress();
    let since = |t: Instant| (t - start).as_secs_f64();
    // The device may still be busy (sending the other senders' routes back): wait for its CPU
    // time to settle before reading its peak memory.
    let settle = Instant::now() + Duration::from_secs(10);
    let mut cpu = proc::cpu_seconds(&pids);
    while Instant::now() < settle && !pids.is_empty() {
        std::thread::sleep(Duration::from_millis(250));
        let now = proc::cpu_seconds(&pids);
        let busy = now - cpu > 0.02;
        cpu = now;
        if !busy {
            break;
        }
    }
    check_all()?;
    let processes = proc::peak_rss(&pids);
    let written = senders
        .iter()
        .map(Sender::written)
        .collect::<Option<Vec<_>>>();
    Ok(RunResult {
        seconds: since(done),
        first_prefix_seconds: progress.first_prefix.map_or(0.0, since),
        senders_written_seconds: written.and_then(|w| w.into_iter().max()).map(since),
        peak_rss_kib: processes.iter().map(|p| p.rss_kib).sum(),
        processes,
        cpu_seconds,
        receiver_updates: progress.updates,
        receiver_bytes: progress.bytes,
        receiver_repeated: progress.repeated,
        receiver_withdrawn: progress.withdrawn,
        senders_drained_bytes: senders.iter().map(Sender::drained).sum(),
    })
}

impl Setup {
    fn expected_len(&self) -> u64 {
        self.expected.len() as u64
    }
}
