//! Reading memory use from `/proc`.

use std::collections::BTreeSet;

use serde::Serialize;

/// One process's resident memory.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessRss {
    pub pid: u32,
    pub name: String,
    pub rss_kib: u64,
}

/// `roots` and all their descendants (OpenBGPD forks its session engine and RDE, for example).
pub fn with_descendants(roots: &[u32]) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Some(ppid) = ppid(pid) {
                parents.push((pid, ppid));
            }
        }
    }
    let mut all: BTreeSet<u32> = roots.iter().copied().collect();
    loop {
        let before = all.len();
        for (pid, ppid) in &parents {
            if all.contains(ppid) {
                all.insert(*pid);
            }
        }
        if all.len() == before {
            return all.into_iter().collect();
        }
    }
}

fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces; fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// VmRSS of each of `pids` that still exists.
pub fn rss(pids: &[u32]) -> Vec<ProcessRss> {
    pids.iter().filter_map(|&pid| process_rss(pid)).collect()
}

fn process_rss(pid: u32) -> Option<ProcessRss> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    // Kernel threads have no VmRSS line.
    let rss_kib = field("VmRSS:")?
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(ProcessRss {
        pid,
        name: field("Name:").unwrap_or("?").to_owned(),
        rss_kib,
    })
}

/// The 1-minute load average (0 if unknown).
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The load average as a benchmark starts, with a warning on stderr when other work would
/// skew the figures.
pub fn load_before_run() -> f64 {
    let load = load_average();
    if load > 0.5 {
        eprintln!("warning: load average {load:.2}: other work on this machine skews the figures");
    }
    load
}

/// A `/proc/PID/status` field in KiB (`VmHWM:`, `VmRSS:`), 0 if absent.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Peak resident memory (VmHWM) of each of `pids` that still exists.
pub fn peak_rss(pids: &[u32]) -> Vec<ProcessRss> {
    pids.iter()
        .filter_map(|&pid| {
            let rss = process_rss(pid)?;
            Some(ProcessRss {
                rss_kib: status_kib(pid, "VmHWM:"),
                ..rss
            })
        })
        .collect()
}

/// CPU time (user and system, all threads) used so far by `pids`, in seconds.
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    // USER_HZ is 100 on every Linux architecture we run on.
    const TICKS: f64 = 100.0;
    pids.iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 1..];
            let mut fields = rest.split_whitespace();
            // After the name: state is field 3; utime and stime are fields 14 and 15.
            let utime: u64 = fields.nth(11)?.parse().ok()?;
            let stime: u64 = fields.next()?.parse().ok()?;
            Some((utime + stime) as f64 / TICKS)
        })
        .sum()
}
