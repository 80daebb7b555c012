//! Results as a table (for people and BENCHMARKS.md) or JSON (`-o json`), on stdout.

use std::io::Write;

use serde::Serialize;

use crate::ingest::{ReceiverResult, Workload};
use crate::{Output, Result};

const MIB: f64 = 1024.0;

#[derive(Debug, Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    result: &'a ReceiverResult,
    prefixes_per_second: Option<f64>,
    rss_mib: Option<f64>,
    /// This receiver's time divided by BIRD's (below 1: faster than BIRD).
    time_vs_bird: Option<f64>,
    /// This receiver's memory divided by BIRD's.
    memory_vs_bird: Option<f64>,
}

pub fn print(output: Output, workload: &Workload, results: &[ReceiverResult]) -> Result<()> {
    let bird = results
        .iter()
        .find(|r| r.receiver == "bird")
        .and_then(|r| r.best.as_ref());
    let rows: Vec<Row> = results
        .iter()
        .map(|r| {
            let best = r.best.as_ref();
            Row {
                result: r,
                prefixes_per_second: best.map(|b| workload.prefixes as f64 / b.seconds),
                // The sink has no process of its own.
                rss_mib: best
                    .filter(|b| b.rss_kib > 0)
                    .map(|b| b.rss_kib as f64 / MIB),
                time_vs_bird: best.zip(bird).map(|(b, a)| b.seconds / a.seconds),
                memory_vs_bird: best
                    .zip(bird)
                    .filter(|(b, _)| b.rss_kib > 0)
                    .map(|(b, a)| b.rss_kib as f64 / a.rss_kib as f64),
            }
        })
        .collect();
    emit(output, "bgp-ingest", workload, &rows, table)
}

fn table(w: &mut dyn Write, workload: &Workload, rows: &[Row]) -> std::io::Result<()> {
    let lengths: Vec<String> = workload
        .lengths
        .iter()
        .map(|(len, n)| format!("/{len}: {n}"))
        .collect();
    writeln!(
        w,
        "BGP ingest: {} IPv4 prefixes ({}); best of {} run(s); polled every {} ms",
        workload.prefixes,
        lengths.join(", "),
        workload.runs,
        workload.poll_ms
    )?;
    writeln!(w, "attributes: {}", workload.attributes)?;
    let sent = rows
        .iter()
        .find_map(|r| r.result.best.as_ref())
        .map_or(0, |b| b.wire_bytes);
    writeln!(
        w,
        "sender: {}; sent {:.1} bytes per prefix (fully packed: {:.1}, {} UPDATEs of at most {} \
         bytes)",
        workload.sender,
        sent as f64 / workload.prefixes as f64,
        workload.packed_bytes as f64 / workload.prefixes as f64,
        workload.packed_updates,
        workload.max_message_len,
    )?;
    writeln!(w, "clos receiver: {}", workload.clos_receiver)?;
    writeln!(
        w,
        "load average before the run: {:.2}",
        workload.load_before
    )?;
    writeln!(w)?;
    writeln!(
        w,
        "{:<10} {:>8} {:>13} {:>12} {:>9} {:>10} {:>9} {:>8}  VERSION",
        "RECEIVER",
        "SECONDS",
        "BOUNDS",
        "PREFIXES/S",
        "RSS MiB",
        "TIME/BIRD",
        "RSS/BIRD",
        "POLL ms"
    )?;
    let ratio = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
    for row in rows {
        let r = row.result;
        match &r.best {
            Some(best) => {
                writeln!(
                    w,
                    "{:<10} {:>8.3} {:>13} {:>12.0} {:>9} {:>10} {:>9} {:>8.1}  {}",
                    r.receiver,
                    best.seconds,
                    format!("{:.3}-{:.3}", best.seconds_min, best.seconds_max),
                    row.prefixes_per_second.unwrap_or_default(),
                    row.rss_mib
                        .map_or_else(|| "-".to_owned(), |m| format!("{m:.1}")),
                    ratio(row.time_vs_bird),
                    ratio(row.memory_vs_bird),
                    best.query_ms,
                    r.version
                )?;
            }
            None => writeln!(w, "{:<10} failed   {}", r.receiver, r.version)?,
        }
    }
    let sink = rows
        .iter()
        .find(|r| r.result.receiver == "sink")
        .and_then(|r| r.result.best.as_ref());
    for r in rows.iter().map(|row| row.result) {
        if let (Some(sink), Some(best)) = (sink, &r.best)
            && r.receiver != "sink"
            && best.seconds <= sink.seconds_max * 1.25
        {
            writeln!(
                w,
                "{}: limited by the sender (within 25% of the sink)",
                r.receiver
            )?;
        }
        if let Some(err) = &r.error {
            writeln!(w, "{}: {err}", r.receiver)?;
        }
        if let Some(best) = &r.best
            && best.kernel_routes > 0
        {
            writeln!(
                w,
                "{}: installed {} routes in the kernel while ingesting",
                r.receiver, best.kernel_routes
            )?;
        }
    }
    writeln!(
        w,
        "\nSECONDS: from the sender starting to send its table (its session Established) until \
         the receiver reports all prefixes received from it: extrapolated from the last two \
         polls once a poll saw a tenth of the table, else the end of the first poll that saw \
         it all. BOUNDS: the start of the last poll that found prefixes missing and the end of \
         the first that found none (use more prefixes for a fast receiver). RSS: sum of VmRSS \
         over the receiver's processes once it stops growing after ingest. POLL ms: mean time \
         of one count query; polls are spaced at least 4x that apart."
    )
}

/// The JSON document of every benchmark: its name, its workload and a row per device.
#[derive(Serialize)]
struct Document<'a, W, R> {
    benchmark: &'static str,
    workload: &'a W,
    results: &'a [R],
}

/// Prints the rows as that JSON document, or as the table `table` draws.
pub fn emit<W: Serialize, R: Serialize>(
    output: Output,
    benchmark: &'static str,
    workload: &W,
    rows: &[R],
    table: impl FnOnce(&mut dyn Write, &W, &[R]) -> std::io::Result<()>,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match output {
        Output::Json => {
            let document = Document {
                benchmark,
                workload,
                results: rows,
            };
            serde_json::to_writer_pretty(&mut out, &document)?;
            writeln!(out)?;
        }
        Output::Table => table(&mut out, workload, rows)?,
    }
    Ok(())
}
