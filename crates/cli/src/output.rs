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
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, value).context("writing JSON to stdout")?;
            writeln!(out).context("writing to stdout")?;
        }
        OutputFormat::Yaml => {
            // Rendered whole first, so that a value YAML cannot express prints nothing at all.
            let doc = serde_yaml_ng::to_string(value).context("rendering the result as YAML")?;
            out.write_all(doc.as_bytes()).context("writing to stdout")?;
        }
        OutputFormat::Table => table(&mut out).context("writing to stdout")?,
    }
    out.flush().context("writing to stdout")
}
