//! fib-install results as a table (for people and BENCHMARKS.md) or JSON (`-o json`).

use std::io::Write;

use serde::Serialize;

use super::{DeviceResult, Workload};
use crate::{Output, Result};

#[derive(Debug, Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    result: &'a DeviceResult,
    peak_rss_mib: Option<f64>,
    /// This device's time divided by FRR's, BIRD's and `ip -batch`'s (below 1: faster).
    time_vs_frr: Option<f64>,
    time_vs_bird: Option<f64>,
    time_vs_ip_batch: Option<f64>,
}

pub fn print(output: Output, workload: &Workload, results: &[DeviceResult]) -> Result<()> {
    let best = |name: &str| {
        results
            .iter()
            .find(|r| r.device == name)
            .and_then(|r| r.best.as_ref())
            .map(|b| b.seconds)
    };
    let (frr, bird, ip) = (best("frr"), best("bird"), best("ip-batch"));
    let rows: Vec<Row> = results
        .iter()
        .map(|r| {
            let b = r.best.as_ref();
            let ratio = |anchor: Option<f64>| b.zip(anchor).map(|(b, a)| b.seconds / a);
            Row {
                result: r,
                peak_rss_mib: b
                    .filter(|b| b.peak_rss_kib > 0)
                    .map(|b| b.peak_rss_kib as f64 / 1024.0),
                time_vs_frr: ratio(frr),
                time_vs_bird: ratio(bird),
                time_vs_ip_batch: ratio(ip),
            }
        })
        .collect();
    crate::report::emit(output, "fib-install", workload, &rows, table)
}

fn table(w: &mut dyn Write, workload: &Workload, rows: &[Row]) -> std::io::Result<()> {
    let share = |len: u8| {
        100.0 * workload.lengths.get(&len).copied().unwrap_or(0) as f64 / workload.prefixes as f64
    };
    let range = |a: u8, b: u8| (a..=b).map(share).sum::<f64>();
    writeln!(
        w,
        "FIB install: {} ToRs each announce the same {} IPv4 prefixes (/16-/23 {:.1}%, /24 \
         {:.1}%, /25-/32 {:.1}%; {} AS paths, mean length {:.1}) to the host, which installs \
         them as 2-way ECMP routes; best of {} run(s)",
        workload.tors,
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
        "each ToR: {} UPDATEs, {:.1} MB, packed by attribute set; clos: {}; kernel {}, {} CPUs, \
         load average before: {:.2}",
        workload.updates_per_tor,
        workload.bytes_per_tor as f64 / 1e6,
        workload.clos_agent,
        workload.kernel,
        workload.cpus,
        workload.load_before
    )?;
    writeln!(w)?;
    writeln!(
        w,
        "{:<9} {:>8} {:>13} {:>8} {:>8} {:>6} {:>8} {:>9} {:>7}  VERSION",
        "DEVICE",
        "SECONDS",
        "RUNS",
        "FROM 1ST",
        "PEAK MiB",
        "CPU s",
        "TIME/FRR",
        "TIME/BIRD",
        "TIME/IP",
    )?;
    let ratio = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
    for row in rows {
        let r = row.result;
        let Some(best) = &r.best else {
            writeln!(w, "{:<9} failed   {}", r.device, r.version)?;
            continue;
        };
        let (lo, hi) = r.runs.iter().fold((f64::MAX, f64::MIN), |(lo, hi), run| {
            (lo.min(run.seconds), hi.max(run.seconds))
        });
        writeln!(
            w,
            "{:<9} {:>8.3} {:>13} {:>8.3} {:>8} {:>6.2} {:>8} {:>9} {:>7}  {}",
            r.device,
            best.seconds,
            format!("{lo:.3}-{hi:.3}"),
            best.from_first_seconds,
            row.peak_rss_mib
                .map_or_else(|| "-".to_owned(), |m| format!("{m:.1}")),
            best.cpu_seconds,
            ratio(row.time_vs_frr),
            ratio(row.time_vs_bird),
            ratio(row.time_vs_ip_batch),
            r.version
        )?;
    }
    for r in rows.iter().map(|row| row.result) {
        if let Some(err) = &r.error {
            writeln!(w, "{}: {err}", r.device)?;
        }
    }
    if let Some(clos) = rows.iter().find(|r| r.result.device == "clos") {
        let mut parts = Vec::new();
        for (name, ratio, target) in [
            ("FRR", clos.time_vs_frr, 0.5),
            ("BIRD", clos.time_vs_bird, 0.5),
            ("ip -batch", clos.time_vs_ip_batch, 1.0),
        ] {
            if let Some(r) = ratio {
                let met = if r <= target { "met" } else { "NOT met" };
                parts.push(format!(
                    "{:.2}x faster than {name} (target {:.0}x: {met})",
                    1.0 / r,
                    1.0 / target
                ));
            }
        }
        if !parts.is_empty() {
            writeln!(w, "clos: {}", parts.join(", "))?;
        }
    }
    writeln!(
        w,
        "\nSECONDS: from the last UPDATE written (the later ToR's) until every prefix is in the \
         kernel with two next hops (best run; ip-batch: from the start of ip); RUNS: \
         fastest-slowest run; FROM 1ST: the same end from the first UPDATE sent. PEAK: VmHWM \
         summed over the device's processes. CPU: the device's user+system time during the \
         best run (ip-batch: ip's). TIME/X: this device's SECONDS over X's."
    )
}
