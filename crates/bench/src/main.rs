//! `clos-bench`: side-by-side benchmarks whose figures BENCHMARKS.md quotes.
//!
//! Every benchmark runs its anchors (BIRD, FRR, GoBGP, OpenBGPD...) in the same run and reports
//! ratios against them. Results go to stdout (a table, or JSON with `-o json`); progress goes to
//! stderr. Needs root: it creates network namespaces and runs real daemons through the test kit.

mod blocking;
mod fib;
mod forward;
mod ingest;
mod proc;
mod receiver;
mod report;
mod runs;
mod sender;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Errors of the harness: it only reports them, so one boxed type is enough.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Parser)]
#[command(
    name = "clos-bench",
    about = "Side-by-side benchmarks of Clos against its anchors"
)]
struct Cli {
    /// Output format of the results.
    #[arg(short, long, value_enum, global = true, default_value_t = Output::Table)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// BGP ingest: how long each receiver takes to learn N prefixes from one fast sender, and
    /// its memory afterwards.
    BgpIngest(ingest::Args),
    /// BGP forwarding (bgperf-style): sender peers announce a full table to a device under
    /// test, which advertises it to a receiver; time until the receiver holds every prefix,
    /// and the device's peak memory.
    BgpForward(forward::Args),
    /// FIB install: the host learns N prefixes from each of its two ToRs (2-way ECMP); time
    /// from the last UPDATE until the kernel holds every route with both next hops, with FRR,
    /// BIRD, the Clos agent and `ip -batch` side by side.
    FibInstall(fib::Args),
    /// Runs a Clos speaker from a JSON config (the fields of `clos bgp run`'s YAML) until
    /// killed: the `clos` receiver when no `clos` binary is at hand.
    #[command(hide = true)]
    Speaker {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long)]
        control: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::BgpIngest(args) => ingest::run(&args, cli.output),
        Command::BgpForward(args) => forward::run(&args, cli.output),
        Command::FibInstall(args) => fib::run(&args, cli.output),
        Command::Speaker { config, control } => receiver::serve_speaker(&config, control),
    };
    if let Err(err) = result {
        eprintln!("clos-bench: {err}");
        std::process::exit(1);
    }
}
