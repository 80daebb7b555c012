//! bgp-forward results as a table (for people and BENCHMARKS.md) or JSON (`-o json`).

use std::io::Write;

use serde::Serialize;

use super::{DeviceResult, Workload};
use crate::{Output, Result};

#[derive(Debug, Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    result: &'a DeviceResult,
    prefixes_per_second: Option<f64>,
    peak_rss_mib: Option<f64>,
    /// This device's time divided by BIRD's (below 1: faster than BIRD).
    time_vs_bird: Option<f64>,
    /// This device's peak memory divided by BIRD's.
    memory_vs_bird: Option<f64>,
    /// This device's time divided by the wire limit's.
    time_vs_wire: Option<f64>,
}

pub fn print(output: Output, workload: &Workload, results: &[DeviceResult]) -> Result<()> {
    let best = |name: &str| {
        results
            .iter()
            .find(|r| r.device == name)
            .and_then(|r| r.best.as_ref())
    };
    let (bird, wire) = (best("bird"), best("wire"));
    let rows: Vec<Row> = results
        .iter()
        .map(|r| {
            let b = r.best.as_ref();
            let has_rss = b.filter(|b| b.peak_rss_kib > 0);
            Row {
                result: r,
                prefixes_per_second: b.map(|b| workload.prefixes as f64 / b.seconds),
                peak_rss_mib: has_rss.map(|b| b.peak_rss_kib as f64 / 1024.0),
                time_vs_bird: b.zip(bird).map(|(b, a)| b.seconds / a.seconds),
                memory_vs_bird: has_rss
                    .zip(bird)
                    .map(|(b, a)| b.peak_rss_kib as f64 / a.peak_rss_kib as f64),
                time_vs_wire: b.zip(wire).map(|(b, w)| b.seconds / w.seconds),
            }
        })
        .collect();
    crate::report::emit(output, "bgp-forward", workload, &rows, table)
}

fn table(w: &mut dyn Write, workload: &Workload, rows: &[Row]) -> std::io::Result<()> {
    let share = |len: u8| {
        100.0 * workload.lengths.get(&len).copied().unwrap_or(0) as f64 / workload.prefixes as f64
    };
    let range = |a: u8, b: u8| (a..=b).map(share).sum::<f64>();
    writeln!(
        w,
        "BGP forwarding: {} senders -> device -> receiver; {} unique IPv4 prefixes (/16-/23 \
         {:.1}%, /24 {:.1}%, /25-/32 {:.1}%) over {} distinct AS paths (mean length {:.1}); \
         best of {} run(s)",
        workload.senders,
        workload.prefixes,
        range(16, 23),
        share(24),
        range(25, 32),
        workload.paths_used,
        workload.mean_as_path_len,
        workload.runs,
    )?;
    writeln!(
        w,
        "senders: {} UPDATEs, {:.1} MB in all, packed by attribute set, no extended messages; \
         clos: {}; load average before: {:.2}",
        workload.sender_updates,
        workload.sender_bytes as f64 / 1e6,
        workload.clos_device,
        workload.load_before
    )?;
    writeln!(w)?;
    writeln!(
        w,
        "{:<9} {:>8} {:>15} {:>7} {:>10} {:>9} {:>7} {:>9} {:>9}  VERSION",
        "DEVICE",
        "SECONDS",
        "RUNS",
        "FIRST",
        "PREFIXES/S",
        "PEAK MiB",
        "CPU s",
        "TIME/BIRD",
        "RSS/BIRD"
    )?;
    let ratio = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
    for row in rows {
        let r = row.result;
        let Some(best) = &r.best else {
            writeln!(w, "{:<9} failed   {}", r.device, r.version)?;
            continue;
        };
        let (lo, hi) = r.runs.iter().fold((f64::MAX, 0.0f64), |(lo, hi), run| {
            (lo.min(run.seconds), hi.max(run.seconds))
        });
        let is_wire = r.device == "wire";
        writeln!(
            w,
            "{:<9} {:>8.3} {:>15} {:>7.3} {:>10.0} {:>9} {:>7} {:>9} {:>9}  {}",
            r.device,
            best.seconds,
            format!("{lo:.3}-{hi:.3}"),
            best.first_prefix_seconds,
            row.prefixes_per_second.unwrap_or_default(),
            row.peak_rss_mib
                .map_or_else(|| "-".to_owned(), |m| format!("{m:.1}")),
            if is_wire {
                "-".to_owned()
            } else {
                format!("{:.2}", best.cpu_seconds)
            },
            ratio(row.time_vs_bird),
            ratio(row.memory_vs_bird),
            r.version
        )?;
    }
    for r in rows.iter().map(|row| row.result) {
        if let Some(err) = &r.error {
            writeln!(w, "{}: {err}", r.device)?;
        }
    }
    if let Some(wire) = rows.iter().find(|r| r.result.device == "wire")
        && let Some(fastest) = rows
            .iter()
            .filter(|r| r.result.device != "wire")
            .filter_map(|r| r.time_vs_wire)
            .reduce(f64::min)
        && wire.result.best.is_some()
    {
        writeln!(
            w,
            "wire limit: the fastest device takes {fastest:.1}x the wire's time{}",
            if fastest < 3.0 {
                " (the rig may limit it)"
            } else {
                ""
            }
        )?;
    }
    writeln!(
        w,
        "\nSECONDS: from the first UPDATE sent until the receiver holds every prefix (best run); \
         RUNS: fastest-slowest run; FIRST: until the receiver's first prefix. PEAK: VmHWM summed \
         over the device's processes. CPU: the device's user+system time during the best run. \
         wire: the senders straight to the receiver, the rig's own limit."
    )
}
