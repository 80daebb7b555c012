//! `clos-bench fib-install`: how fast a host's routing daemon puts what its two ToRs announce
//! into the kernel, as 2-way ECMP routes.
//!
//! Topology of one run, every part in a fresh namespace, joined by veths:
//!
//! ```text
//! tor0 (AS 65001, 192.0.2.1) ──── host (AS 65100) ──── tor1 (AS 65002, 192.0.2.5)
//!                      192.0.2.2 ┘                └ 192.0.2.6
//! ```
//!
//! Each ToR is a fast sender (see [`crate::forward`]'s sender) announcing the same N prefixes
//! with AS paths of the same length (its own AS first), so the host has two equal paths to
//! every prefix, one through each ToR. The device under test runs in the host's namespace:
//! BIRD, FRR (zebra and bgpd), or the Clos agent; or no daemon at all for `ip-batch`, where
//! `ip -batch` adds the same routes with both next hops, one netlink request per route: the
//! plain-netlink baseline.
//!
//! Method, per run:
//! - The device starts; the ToRs connect to it; once both sessions are Established, both are
//!   told to go at the same instant and each writes its whole table, encoded beforehand, with
//!   one `write_all` (UPDATEs packed by attribute set, then End-of-RIB).
//! - A thread in the host's namespace follows the kernel's route notifications (see
//!   [`watch`]) and notes when every prefix is in the main table with the device's protocol
//!   and at least two next hops, confirmed by a dump.
//! - Reported: the time from the last UPDATE written (the later of the two ToRs' `write_all`
//!   returning) to that moment, and from the first UPDATE sent; for `ip-batch` both run from
//!   the start of `ip`. Peak RSS: VmHWM summed over the device's processes once its CPU time
//!   has settled; CPU: user and system time of those processes from the go signal to the end
//!   (for `ip-batch`, `ip`'s own).
//!
//! Runs interleave the devices (run 1 of each, then run 2 of each...) so that other load on
//! the machine spreads over all of them; the best run of each is reported.

mod device;
mod report;
mod watch;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clos_bgp::wire::{DecodeContext, Prefix};
use clos_testkit::Netns;
use serde::Serialize;

use self::device::{Device, Tor};
use self::watch::{Expected, Watch};
use crate::forward::sender::{self, Sender, SenderSpec};
use crate::forward::table;
use crate::{Output, Result, proc, runs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Unique IPv4 prefixes each ToR announces (the same ones).
    #[arg(long, default_value_t = 100_000)]
    pub prefixes: usize,
    /// Distinct AS paths (after the ToR's own AS) the prefixes are spread over.
    #[arg(long, default_value_t = 10_000)]
    pub paths: usize,
    /// Runs per device; the best is reported. Runs interleave the devices.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Devices to measure, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ip-batch,bird,frr,clos"
    )]
    pub devices: Vec<Device>,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Seed of the generated table (the same seed gives the same table).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The `clos` binary for the clos device, run as `clos agent run`. Default: `clos` next to
    /// this binary (`cargo build --release -p clos-cli` puts it in `target/release`).
    #[arg(long)]
    pub clos_bin: Option<PathBuf>,
    /// Keep each run's device log in this directory (`<device>-<run>.log`).
    #[arg(long)]
    pub keep_logs: Option<PathBuf>,
    /// Stop after the ToRs' sessions are up and wait this many seconds before they send (to
    /// attach a profiler to the device; its pids are printed).
    #[arg(long, hide = true, default_value_t = 0)]
    pub pause: u64,
}

const HOST_AS: u32 = 65100;
const HOST_ID: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 100);
const TORS: usize = 2;

fn tor_as(i: usize) -> u32 {
    65001 + i as u32
}

/// One run of one device. Times are in seconds from the first UPDATE sent (for `ip-batch`,
/// from the start of `ip`).
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// From the last UPDATE written to every route in the kernel with two next hops.
    pub seconds: f64,
    /// From the first UPDATE sent to every route in the kernel with two next hops.
    pub from_first_seconds: f64,
    /// When the later of the two ToRs' tables was all in its socket.
    pub last_update_written: f64,
    /// When the first of the prefixes appeared in the kernel.
    pub first_route: Option<f64>,
    /// When every prefix was in the kernel, with any number of next hops.
    pub all_present: Option<f64>,
    /// `ip-batch`: when `ip` exited.
    pub ip_exited: Option<f64>,
    pub peak_rss_kib: u64,
    pub processes: Vec<proc::ProcessRss>,
    pub cpu_seconds: f64,
    /// The watcher's work: route notifications read, dumps (and how many corrected the count),
    /// receive-buffer overruns, and whether the end was found by a dump after a silence.
    pub notifications: u64,
    pub dumps: u32,
    pub dumps_corrected: u32,
    pub overruns: u32,
    pub done_after_silence: bool,
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
    pub paths_used: usize,
    /// As a ToR announces it, its own AS included.
    pub mean_as_path_len: f64,
    pub tors: usize,
    /// UPDATEs (End-of-RIB included) and octets each ToR sends.
    pub updates_per_tor: usize,
    pub bytes_per_tor: usize,
    pub runs: usize,
    pub seed: u64,
    pub clos_agent: String,
    pub kernel: String,
    pub cpus: usize,
    pub load_before: f64,
}

/// Everything fixed for the whole benchmark.
struct Setup {
    specs: Vec<SenderSpec>,
    prefixes: Vec<Prefix>,
    expected: Arc<Expected>,
    clos: PathBuf,
}

pub fn run(args: &Args, output: Output) -> Result<()> {
    if args.runs == 0 || args.prefixes == 0 {
        return Err("--prefixes and --runs must be at least 1".into());
    }
    let clos = match &args.clos_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("clos"),
    };
    if args.devices.contains(&Device::Clos) && !clos.is_file() {
        return Err(format!(
            "no clos binary at {} (build it with `cargo build --release -p clos-cli`, or give \
             --clos-bin)",
            clos.display()
        )
        .into());
    }
    eprintln!(
        "fib-install: generating {} prefixes over {} AS paths",
        args.prefixes, args.paths
    );
    let t = table::generate(args.prefixes, args.paths, args.seed)?;
    let ctx = DecodeContext {
        four_octet_as: true,
        ..DecodeContext::default()
    };
    // Both ToRs announce the whole table.
    let share = t.share(0, 1);
    let mut specs = Vec::new();
    for i in 0..TORS {
        let (address, host) = sender::link(i);
        let bytes = t.messages(&share, tor_as(i), address, ctx)?;
        specs.push(SenderSpec {
            asn: tor_as(i),
            address,
            remote: host,
            remote_as: HOST_AS,
            table: Arc::new(bytes),
        });
    }
    let workload = Workload {
        prefixes: t.prefixes.len(),
        lengths: t.lengths(),
        paths_used: t.used_paths(),
        mean_as_path_len: t.mean_path_len(),
        tors: TORS,
        updates_per_tor: crate::forward::count_messages(&specs[0].table),
        bytes_per_tor: specs[0].table.len(),
        runs: args.runs,
        seed: args.seed,
        clos_agent: describe(&clos),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        load_before: proc::load_before_run(),
    };
    eprintln!(
        "fib-install: {} ToRs, each {} UPDATEs, {:.1} MB; {} run(s) per device",
        TORS,
        workload.updates_per_tor,
        workload.bytes_per_tor as f64 / 1e6,
        args.runs
    );
    if let Some(dir) = &args.keep_logs {
        std::fs::create_dir_all(dir)?;
    }
    let setup = Setup {
        specs,
        expected: Arc::new(Expected::new(&t.prefixes)),
        prefixes: t.prefixes,
        clos,
    };
    let devices: Vec<_> = args
        .devices
        .iter()
        .map(|&d| (d, d.name(), d.version(&setup.clos)))
        .collect();
    let results = runs::interleave(
        &devices,
        args.runs,
        |device, label, run| run_once(device, &setup, args, label, run),
        |r| {
            format!(
                "{:.3} s from the last UPDATE ({:.3} s from the first), peak RSS {:.1} MiB, \
                 CPU {:.2} s",
                r.seconds,
                r.from_first_seconds,
                r.peak_rss_kib as f64 / 1024.0,
                r.cpu_seconds
            )
        },
    );
    report::print(output, &workload, &results)
}

fn describe(clos: &std::path::Path) -> String {
    let age = std::fs::metadata(clos)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map_or_else(String::new, |age| {
            format!(" (built {} min before this run)", age.as_secs() / 60)
        });
    let name = clos
        .file_name()
        .map_or_else(|| "clos".into(), |n| n.to_string_lossy().into_owned());
    format!("{name} agent run{age}")
}

/// CPU time (user and system) of this process's children that have been waited for.
fn children_cpu_seconds() -> f64 {
    const TICKS: f64 = 100.0;
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let rest = &stat[stat.rfind(')')? + 1..];
            let mut fields = rest.split_whitespace();
            // After the name: state is field 3; cutime and cstime are fields 16 and 17.
            let cutime: u64 = fields.nth(13)?.parse().ok()?;
            let cstime: u64 = fields.next()?.parse().ok()?;
            Some((cutime + cstime) as f64 / TICKS)
        })
        .unwrap_or(0.0)
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
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn run_once(
    device: Device,
    setup: &Setup,
    args: &Args,
    label: &str,
    run: usize,
) -> Result<RunResult> {
    // Dropped in reverse order: senders, watcher, device, then the namespaces (which kills
    // whatever is left in them), also on every early return.
    let host = Netns::new()?;
    let mut tor_ns = Vec::new();
    let mut tors = Vec::new();
    for i in 0..TORS {
        let ns = Netns::new()?;
        let link = ns.link_to(&host)?;
        let (address, local) = sender::link(i);
        ns.add_addr(&link.local, &format!("{address}/30"))?;
        host.add_addr(&link.remote, &format!("{local}/30"))?;
        tors.push(Tor {
            address,
            asn: tor_as(i),
            local,
            interface: link.remote,
        });
        tor_ns.push(ns);
    }
    if device == Device::IpBatch {
        return run_ip_batch(&host, &tors, setup, args, label);
    }
    eprintln!("[{label}] starting the device");
    let dut = device::start(device, &host, HOST_AS, HOST_ID, &tors, &setup.clos)?;
    let senders: Vec<Sender> = setup
        .specs
        .iter()
        .zip(&tor_ns)
        .map(|(spec, ns)| Sender::start(ns, spec.clone()))
        .collect::<Result<_>>()?;
    let check = || -> Result<()> {
        dut.check_running()?;
        senders
            .iter()
            .find_map(Sender::error)
            .map_or(Ok(()), |e| Err(format!("ToR: {e}").into()))
    };
    wait("the ToRs' sessions", 60, check, || {
        senders.iter().all(Sender::ready).then_some(())
    })
    .map_err(|e| {
        let states: Vec<String> = senders.iter().map(Sender::state).collect();
        format!("{e} (ToR session states {states:?})")
    })?;
    let pids = proc::with_descendants(&dut.pids());
    if args.pause > 0 {
        eprintln!(
            "[{label}] device pids {pids:?}: pausing {} s before sending",
            args.pause
        );
        std::thread::sleep(Duration::from_secs(args.pause));
    }
    let watch = Watch::start(&host, device.protocol(), Arc::clone(&setup.expected))?;
    eprintln!("[{label}] sessions up, sending");
    let cpu_before = proc::cpu_seconds(&pids);
    for s in &senders {
        s.go();
    }
    let p = follow(&watch, args, label, check)?;
    let cpu_seconds = proc::cpu_seconds(&pids) - cpu_before;
    let done = p.done.ok_or("no end time")?;
    let start = senders
        .iter()
        .filter_map(Sender::started)
        .min()
        .ok_or("no ToR started")?;
    // The writers note their end on their own threads: give them a moment.
    let written = wait("the ToRs' writes", 30, check, || {
        senders
            .iter()
            .map(Sender::written)
            .collect::<Option<Vec<_>>>()
            .and_then(|w| w.into_iter().max())
    })?;
    let since = |t: Instant| signed_seconds(start, t);
    settle(&pids);
    check()?;
    let processes = proc::peak_rss(&pids);
    if let Some(dir) = &args.keep_logs {
        keep_log(dir, device, run, &pids);
    }
    Ok(RunResult {
        seconds: signed_seconds(written, done),
        from_first_seconds: since(done),
        last_update_written: since(written),
        first_route: p.first.map(since),
        all_present: p.all_present.map(since),
        ip_exited: None,
        peak_rss_kib: processes.iter().map(|p| p.rss_kib).sum(),
        processes,
        cpu_seconds,
        notifications: p.notifications,
        dumps: p.dumps,
        dumps_corrected: p.dumps_corrected,
        overruns: p.overruns,
        done_after_silence: p.done_after_silence,
    })
}

/// `b - a` in seconds, negative if `b` is earlier.
fn signed_seconds(a: Instant, b: Instant) -> f64 {
    if b >= a {
        (b - a).as_secs_f64()
    } else {
        -(a - b).as_secs_f64()
    }
}

/// Waits for the watcher to see every route with two next hops, printing progress each second.
fn follow(
    watch: &Watch,
    args: &Args,
    label: &str,
    mut check: impl FnMut() -> Result<()>,
) -> Result<watch::Progress> {
    let want = watch.expected_len();
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut next_report = Instant::now() + Duration::from_secs(1);
    loop {
        std::thread::sleep(Duration::from_millis(5));
        let p = watch.progress();
        if p.done.is_some() {
            return Ok(p);
        }
        if let Some(err) = &p.error {
            return Err(format!("route watcher: {err}").into());
        }
        check()?;
        let now = Instant::now();
        if now > deadline {
            return Err(format!(
                "after {} s: {} of {want} prefixes in the kernel, {} with two next hops",
                args.timeout, p.present, p.ecmp
            )
            .into());
        }
        if now >= next_report {
            next_report = now + Duration::from_secs(1);
            eprintln!(
                "[{label}] {}/{want} prefixes in the kernel, {} with two next hops",
                p.present, p.ecmp
            );
        }
    }
}

/// Waits (at most 10 s) for the device's CPU time to stop growing, so that its peak memory
/// includes whatever it still does after the routes are in.
fn settle(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut cpu = proc::cpu_seconds(pids);
    while Instant::now() < deadline && !pids.is_empty() {
        std::thread::sleep(Duration::from_millis(250));
        let now = proc::cpu_seconds(pids);
        let busy = now - cpu > 0.02;
        cpu = now;
        if !busy {
            break;
        }
    }
}

/// Copies the device's log (best effort): the testkit keeps it next to the daemon's files,
/// which go when the device stops.
fn keep_log(dir: &std::path::Path, device: Device, run: usize, pids: &[u32]) {
    // The daemons write to files named after them in their scratch directory; find them
    // through the processes' open file descriptors.
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if target.extension().is_some_and(|e| e == "log") {
                let name = target
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                let to = dir.join(format!("{}-{run}-{name}", device.name()));
                let _ = std::fs::copy(&target, to);
            }
        }
    }
}

fn run_ip_batch(
    host: &Netns,
    tors: &[Tor],
    setup: &Setup,
    args: &Args,
    label: &str,
) -> Result<RunResult> {
    let dir = tempfile::Builder::new()
        .prefix(&format!(
            "{}ipbatch-",
            clos_testkit::names::scratch_prefix()
        ))
        .tempdir()?;
    let path = dir.path().join("routes.batch");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let hops: String = tors
        .iter()
        .map(|t| format!(" nexthop via {} dev {}", t.address, t.interface))
        .collect();
    for p in &setup.prefixes {
        writeln!(file, "route add {p} proto {}{hops}", device::PROTO_IP_BATCH)?;
    }
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let watch = Watch::start(
        host,
        Device::IpBatch.protocol(),
        Arc::clone(&setup.expected),
    )?;
    eprintln!("[{label}] running ip -batch");
    let cpu_before = children_cpu_seconds();
    let start = Instant::now();
    let out = Command::new("ip")
        .args(["-n", host.name(), "-batch"])
        .arg(&path)
        .output()?;
    let exited = Instant::now();
    let cpu_seconds = children_cpu_seconds() - cpu_before;
    if !out.status.success() {
        return Err(format!(
            "ip -batch: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let p = follow(&watch, args, label, || Ok(()))?;
    let done = p.done.ok_or("no end time")?;
    let since = |t: Instant| signed_seconds(start, t);
    Ok(RunResult {
        seconds: since(done),
        from_first_seconds: since(done),
        last_update_written: 0.0,
        first_route: p.first.map(since),
        all_present: p.all_present.map(since),
        ip_exited: Some(since(exited)),
        peak_rss_kib: 0,
        processes: Vec::new(),
        cpu_seconds,
        notifications: p.notifications,
        dumps: p.dumps,
        dumps_corrected: p.dumps_corrected,
        overruns: p.overruns,
        done_after_silence: p.done_after_silence,
    })
}
