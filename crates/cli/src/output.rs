//! One place that decides how command results are printed: human tables, JSON or YAML.

use std::io::{self, Write};

use anyhow::Context;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable tables.
    Table,
    /// One JSON document, for automation.
    Json,
    /// One YAML document, for automation and for reading.
    Yaml,
}

/// Prints `value` as JSON or YAML, or calls `table` to render it for humans.
pub fn print<T: Serialize>(
    format: OutputFormat,
    value: &T,
    table: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let written = match format {
        OutputFormat::Json => serde_json::to_writer_pretty(&mut out, value)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out)),
        OutputFormat::Yaml => {
            // Rendered whole first, so that a value YAML cannot express prints nothing at all.
            let doc = serde_yaml_ng::to_string(value).context("rendering the result as YAML")?;
            out.write_all(doc.as_bytes())
        }
        OutputFormat::Table => table(&mut out),
    }
    .and_then(|()| out.flush());
    match written {
        // The reader went away (`clos ... | head`): what it wanted, it has.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}
