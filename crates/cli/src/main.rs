//! `clos`: one binary for every Clos role (controller, agent, speaker, lab) and the resource
//! commands. This crate only wires libraries to the command line; logic lives in the libraries.

mod commands;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::output::OutputFormat;

/// Network-as-a-service for routed (pure L3) data-centre fabrics.
#[derive(Debug, Parser)]
#[command(name = "clos", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// More log output: -v for debug, -vv for trace. RUST_LOG overrides this.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Output format for command results.
    #[arg(short, long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The host agent: routing on the host, endpoints, the FIB.
    Agent(commands::agent::AgentArgs),
    /// The BGP speaker on its own: a route server, an emulated switch, a benchmark peer.
    #[command(subcommand)]
    Bgp(commands::bgp::BgpCommand),
    /// The site controller: the HTTP API over IPAM and the store.
    Controller(commands::controller::ControllerArgs),
    /// Show resources: site, racks, switches, tenants, pools, subnets, nodes, addresses, tokens.
    Get(commands::resources::GetArgs),
    /// Create a resource (or allocate an address, or issue a token).
    #[command(subcommand_value_name = "KIND")]
    Create(commands::resources::CreateArgs),
    /// Delete a resource (or release an address, or revoke a token).
    Delete(commands::resources::DeleteArgs),
    /// IPAM maintenance.
    #[command(subcommand)]
    Ipam(commands::resources::IpamCommand),
    /// Fabric configuration rendered from the inventory.
    #[command(subcommand)]
    Fabric(commands::fabric::FabricCommand),
    /// A whole spine-leaf fabric in network namespaces: `clos lab up`, `clos lab check`.
    #[command(subcommand)]
    Lab(commands::lab::LabCommand),
    /// Show the build's version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole context chain on one line: what failed and why.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Agent(args) => commands::agent::run(args, cli.output),
        Command::Bgp(cmd) => commands::bgp::run(cmd, cli.output),
        Command::Controller(args) => commands::controller::run(args),
        Command::Get(args) => commands::resources::get(args, cli.output),
        Command::Create(args) => commands::resources::create(args, cli.output),
        Command::Delete(args) => commands::resources::delete(args, cli.output),
        Command::Ipam(cmd) => commands::resources::ipam(cmd, cli.output),
        Command::Fabric(cmd) => commands::fabric::run(cmd, cli.output),
        Command::Lab(cmd) => commands::lab::run(cmd, cli.output),
        Command::Version => {
            let info = VersionInfo {
                name: "clos",
                version: env!("CARGO_PKG_VERSION"),
            };
            output::print(cli.output, &info, |w| {
                writeln!(w, "{} {}", info.name, info.version)
            })
        }
    }
}

#[derive(Debug, serde::Serialize)]
struct VersionInfo {
    name: &'static str,
    version: &'static str,
}

/// Logs go to stderr so that `-o json` output on stdout stays machine-readable.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
