//! `clos lab up|status|check|exec|sync|failover|down`: a spine-leaf fabric in network namespaces
//! (`clos_lab`). This module parses flags and prints; the lab crate does the work.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use clos_lab::failover::{self, FailoverOptions, FailoverReport};
use clos_lab::sync::{SwitchSync, SyncResult};
use clos_lab::{CheckReport, Lab, Summary, Topology, UpOptions, UpOutcome};

use crate::output::{self, OutputFormat};

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build the fabric: namespaces, links, the controller, the inventory, FRR switches with
    /// configs rendered by the controller, an agent per host; wait for convergence and print
    /// a summary. On a lab that is up already, says so.
    Up(UpArgs),
    /// Namespaces, processes and BGP sessions of every node.
    Status(Which),
    /// Ping between every pair of hosts and check ECMP towards the other racks; exits
    /// non-zero saying what failed.
    Check(Which),
    /// Run a command inside a node's namespace (`vtysh` on a switch finds its daemons).
    Exec(ExecArgs),
    /// Remove every namespace, link and process of the lab, and its directory (also after an
    /// interrupted `up`).
    Down(Which),
    /// Render every switch's config again and apply what changed (a host's assignment
    /// changed): FRR through frr-reload.py, BIRD through `birdc configure`, a `clos bgp`
    /// switch by a graceful restart. `up` leaves `sync --watch` running.
    Sync(SyncArgs),
    /// Measure failover: silently drop everything on one of a host's uplinks (nftables, the
    /// link stays up) while it pings a host of another rack; report when BFD noticed, when
    /// the kernel route left the uplink, and how much traffic was lost. Runs with BFD timers
    /// from the topology's `bfd`.
    Failover(FailoverArgs),
}

#[derive(Debug, Args)]
pub struct FailoverArgs {
    /// The host whose uplink fails.
    host: String,
    /// The host it pings [default: the first host of another rack].
    #[arg(long)]
    to: Option<String>,
    /// The uplink to drop [default: the one the ping's flow uses].
    #[arg(long)]
    uplink: Option<String>,
    /// Runs; each waits for both uplinks to be back first.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    #[command(flatten)]
    which: Which,
}

/// Which lab: by name (its directory is under /run/clos/lab) or by directory.
#[derive(Debug, Args)]
pub struct Which {
    /// The lab's name.
    #[arg(short, long, default_value = "default")]
    name: String,
    /// The lab's directory [default: /run/clos/lab/NAME].
    #[arg(long)]
    dir: Option<PathBuf>,
}

impl Which {
    fn dir(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| clos_lab::default_dir(&self.name))
    }

    fn open(&self) -> anyhow::Result<Lab> {
        Ok(Lab::open(&self.dir())?)
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Topology file [default: built in: 2 spines, 2 racks of 2 leaves, 2 hosts per rack].
    #[arg(short, long)]
    topology: Option<PathBuf>,
    /// The lab's directory (state, configs, logs) [default: /run/clos/lab/NAME].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Remove an existing lab of the same name first, even a healthy one.
    #[arg(long)]
    rebuild: bool,
    /// The lab's name, overriding the topology's (several labs can run side by side).
    #[arg(short, long)]
    name: Option<String>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Keep syncing every SECONDS, printing what changed, until interrupted.
    #[arg(long, value_name = "SECONDS")]
    watch: Option<u64>,
    #[command(flatten)]
    which: Which,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The node: a switch, a host, or `mgmt` (the controller's namespace).
    node: String,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    command: Vec<String>,
    #[command(flatten)]
    which: Which,
}

pub fn run(cmd: LabCommand, format: OutputFormat) -> anyhow::Result<()> {
    match cmd {
        LabCommand::Up(args) => up(args, format),
        LabCommand::Status(w) => {
            let lab = w.open()?;
            let s = lab.summary(None)?;
            output::print(format, &s, |out| summary_table(out, &s))
        }
        LabCommand::Check(w) => {
            let lab = w.open()?;
            let report = lab.check()?;
            output::print(format, &report, |out| check_table(out, &report))?;
            if !report.ok {
                bail!(
                    "lab {} check failed:\n  {}",
                    lab.plan().lab,
                    report.failures.join("\n  ")
                );
            }
            Ok(())
        }
        LabCommand::Exec(args) => {
            let lab = args.which.open()?;
            let status = lab
                .exec_command(&args.node, &args.command)?
                .status()
                .with_context(|| format!("running {}", args.command.join(" ")))?;
            if !status.success() {
                std::process::exit(status.code().unwrap_or(1));
            }
            Ok(())
        }
        LabCommand::Failover(args) => failover(args, format),
        LabCommand::Sync(args) => sync(args, format),
        LabCommand::Down(w) => {
            let removed = clos_lab::down(&w.dir(), &w.name)?;
            #[derive(serde::Serialize)]
            struct Down {
                removed_namespaces: Vec<String>,
            }
            let d = Down {
                removed_namespaces: removed,
            };
            output::print(format, &d, |out| {
                if d.removed_namespaces.is_empty() {
                    writeln!(out, "lab {}: nothing to remove", w.name)
                } else {
                    writeln!(
                        out,
                        "lab removed: {} namespaces and everything in them",
                        d.removed_namespaces.len()
                    )
                }
            })
        }
    }
}

fn up(args: UpArgs, format: OutputFormat) -> anyhow::Result<()> {
    let mut topology = match &args.topology {
        Some(path) => Topology::load(path)?,
        None => Topology::default(),
    };
    if let Some(name) = &args.name {
        topology.name = name.clone();
    }
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| clos_lab::default_dir(&topology.name));
    // Without -t, an existing lab keeps its own topology.
    if args.topology.is_none()
        && let Ok(lab) = Lab::open(&dir)
    {
        topology = lab.state().topology.clone();
    }
    let opts = UpOptions {
        topology,
        dir,
        exe: std::env::current_exe().context("finding the clos binary")?,
        rebuild: args.rebuild,
    };
    // Progress on stderr: one line redrawn in place on a terminal, plain lines otherwise.
    let tty = std::io::stderr().is_terminal();
    let mut redraw = false;
    let mut progress = |line: &str| {
        let mut err = std::io::stderr();
        if tty && line.starts_with('[') {
            let _ = write!(err, "\r\x1b[K{line}");
            redraw = true;
        } else {
            if redraw {
                let _ = writeln!(err);
                redraw = false;
            }
            let _ = writeln!(err, "{line}");
        }
    };
    let outcome = Lab::up(&opts, &mut progress);
    if tty && redraw {
        eprintln!();
    }
    match outcome? {
        UpOutcome::Started(s) => output::print(format, &s, |out| {
            writeln!(
                out,
                "lab {} is up in {:.1} s ({})",
                s.lab,
                s.seconds.unwrap_or_default(),
                s.dir.display()
            )?;
            summary_table(out, &s)
        }),
        UpOutcome::AlreadyUp(s) => output::print(format, &s, |out| {
            writeln!(
                out,
                "lab {} is already up ({}); `clos lab up --rebuild` builds it again",
                s.lab,
                s.dir.display()
            )?;
            summary_table(out, &s)
        }),
    }
}

fn sync(args: SyncArgs, format: OutputFormat) -> anyhow::Result<()> {
    let lab = args.which.open()?;
    let exe = std::env::current_exe().context("finding the clos binary")?;
    let Some(every) = args.watch else {
        let report = lab.sync(&exe)?;
        output::print(format, &report, |out| sync_table(out, &report))?;
        let failed: Vec<&str> = report
            .iter()
            .filter(|s| s.result == SyncResult::Failed)
            .map(|s| s.switch.as_str())
            .collect();
        if !failed.is_empty() {
            bail!("could not apply the new config of {}", failed.join(", "));
        }
        return Ok(());
    };
    // A log: one line per switch changed, and the controller's outages, with the time.
    let every = std::time::Duration::from_secs(every.max(1));
    let mut controller_down = false;
    loop {
        let started = std::time::SystemTime::now();
        let stamp = || {
            started
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default()
        };
        match lab.sync(&exe) {
            Ok(report) => {
                if controller_down {
                    println!("{} controller reachable again", stamp());
                    controller_down = false;
                }
                for s in report.iter().filter(|s| s.result != SyncResult::Unchanged) {
                    let line = serde_json::to_string(s).unwrap_or_default();
                    println!("{} {line}", stamp());
                }
            }
            Err(e) if !controller_down => {
                println!(
                    "{} cannot render, switches keep their configs: {e}",
                    stamp()
                );
                controller_down = true;
            }
            Err(_) => {}
        }
        std::thread::sleep(every);
    }
}

fn sync_table(w: &mut dyn Write, report: &[SwitchSync]) -> std::io::Result<()> {
    writeln!(
        w,
        "{:<10} {:<8} {:<10} DETAIL",
        "SWITCH", "SOFTWARE", "RESULT"
    )?;
    for s in report {
        writeln!(
            w,
            "{:<10} {:<8} {:<10} {}",
            s.switch,
            s.software.name(),
            format!("{:?}", s.result).to_lowercase(),
            s.detail.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "NO" }
}

fn summary_table(w: &mut dyn Write, s: &Summary) -> std::io::Result<()> {
    writeln!(
        w,
        "controller {} (from `clos lab exec mgmt -- ...`)",
        s.controller
    )?;
    writeln!(
        w,
        "{:<10} {:<6} {:<8} {:<6} {:<10} {:<10} {:>7}",
        "SWITCH", "ROLE", "SOFTWARE", "NETNS", "DAEMONS", "SESSIONS", "ROUTES"
    )?;
    for x in &s.switches {
        writeln!(
            w,
            "{:<10} {:<6} {:<8} {:<6} {:<10} {:<10} {:>7}",
            x.name,
            format!("{:?}", x.role).to_lowercase(),
            format!("{:?}", x.software).to_lowercase(),
            yes(x.netns),
            if x.processes_alive { "running" } else { "DOWN" },
            format!("{}/{}", x.sessions_established, x.sessions),
            x.routes
        )?;
    }
    writeln!(
        w,
        "{:<10} {:<6} {:<15} {:<6} {:<10} {:>5}",
        "HOST", "RACK", "ADDRESS", "NETNS", "SOFTWARE", "ECMP"
    )?;
    for h in &s.hosts {
        writeln!(
            w,
            "{:<10} {:<6} {:<15} {:<6} {:<10} {:>5}",
            h.name,
            h.rack,
            h.address
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into()),
            yes(h.netns),
            if h.processes_alive {
                format!("{:?}", h.software).to_lowercase()
            } else {
                "DOWN".into()
            },
            h.ecmp_paths
        )?;
    }
    Ok(())
}

fn failover(args: FailoverArgs, format: OutputFormat) -> anyhow::Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let lab = args.which.open()?;
    let opts = FailoverOptions {
        host: args.host,
        to: args.to,
        uplink: args.uplink,
        runs: args.runs,
    };
    let report = failover::run(&lab, &opts, &mut |line| eprintln!("{line}"))?;
    output::print(format, &report, |out| failover_table(out, &report))
}

fn failover_table(w: &mut dyn Write, r: &FailoverReport) -> std::io::Result<()> {
    let bfd = match (r.bfd_interval_ms, r.bfd_multiplier) {
        (Some(i), Some(m)) => format!("BFD {i} ms x {m}"),
        _ => "no BFD (hold timer)".into(),
    };
    writeln!(
        w,
        "{} -> {} ({}), {bfd}, a ping every {:.0} ms",
        r.host, r.to, r.to_address, r.ping_interval_ms
    )?;
    writeln!(
        w,
        "{:<4} {:<8} {:>13} {:>9} {:>12} {:>11}",
        "RUN", "UPLINK", "DETECTION ms", "FIB ms", "OUTAGE ms", "PINGS LOST"
    )?;
    let ms = |v: Option<f64>| v.map_or_else(|| "never".into(), |v| format!("{v:.0}"));
    for (i, run) in r.runs.iter().enumerate() {
        writeln!(
            w,
            "{:<4} {:<8} {:>13} {:>9} {:>12.0} {:>11}",
            i + 1,
            run.uplink,
            ms(run.detection_ms),
            ms(run.fib_ms),
            run.outage_ms,
            format!("{}/{}", run.pings_lost, run.pings_sent)
        )?;
    }
    let worst = |f: fn(&clos_lab::failover::FailoverRun) -> Option<f64>| {
        r.runs
            .iter()
            .map(f)
            .try_fold(0f64, |acc, v| v.map(|v| acc.max(v)))
    };
    writeln!(
        w,
        "{:<4} {:<8} {:>13} {:>9} {:>12}",
        "max",
        "",
        ms(worst(|x| x.detection_ms)),
        ms(worst(|x| x.fib_ms)),
        ms(worst(|x| Some(x.outage_ms)))
    )
}

fn check_table(w: &mut dyn Write, r: &CheckReport) -> std::io::Result<()> {
    let mut hosts: Vec<&str> = r.reachability.iter().map(|x| x.from.as_str()).collect();
    hosts.sort();
    hosts.dedup();
    writeln!(w, "reachability (ping from row to column):")?;
    write!(w, "{:<10}", "")?;
    for h in &hosts {
        write!(w, " {h:>8}")?;
    }
    writeln!(w)?;
    for a in &hosts {
        write!(w, "{a:<10}")?;
        for b in &hosts {
            let cell = if a == b {
                "-"
            } else {
                match r.reachability.iter().find(|x| x.from == *a && x.to == *b) {
                    Some(x) if x.ok => "ok",
                    Some(_) => "FAIL",
                    None => "?",
                }
            };
            write!(w, " {cell:>8}")?;
        }
        writeln!(w)?;
    }
    writeln!(w, "ECMP towards the other racks:")?;
    writeln!(
        w,
        "{:<10} {:<10} {:<18} {:>9} {:<12}",
        "HOST", "TOWARDS", "ROUTE", "NEXTHOPS", "VIA"
    )?;
    for e in &r.ecmp {
        writeln!(
            w,
            "{:<10} {:<10} {:<18} {:>9} {:<12}{}",
            e.host,
            e.towards,
            e.route.as_deref().unwrap_or("-"),
            format!("{}/{}", e.next_hops, e.want),
            e.devices.join(","),
            if e.ok { "" } else { "  FAIL" }
        )?;
    }
    if r.ok {
        writeln!(w, "check passed")?;
    }
    Ok(())
}
