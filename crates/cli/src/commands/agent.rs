//! `clos agent`: the host agent, and the commands that ask a running one.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use clos_agent::{AgentConfig, AgentStatus, EndpointInfo, Request};

use crate::output::{self, OutputFormat};

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The agent's configuration file.
    #[arg(short, long, global = true, default_value = "/etc/clos/agent.yaml")]
    config: PathBuf,
    /// Ask the agent on this control socket instead of the one the configuration names.
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// Without a subcommand: run the agent.
    #[command(subcommand)]
    command: Option<AgentCommand>,
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Run the agent (the default).
    Run,
    /// Check the configuration file and print it with every default filled in.
    Validate,
    /// Sessions, advertised and received routes, FIB sync, controller connectivity.
    Status,
    /// Endpoints: addresses behind a VM's tap or a container's veth on this host.
    #[command(subcommand)]
    Endpoint(EndpointCommand),
}

#[derive(Debug, Subcommand)]
enum EndpointCommand {
    /// Route ADDRESS to INTERFACE and answer for the 169.254.1.1 / fe80::1 gateway there.
    Add {
        ip: IpAddr,
        #[arg(short, long)]
        interface: String,
    },
    /// Remove an endpoint added with `add`.
    #[command(visible_alias = "delete")]
    Del { ip: IpAddr },
    /// Every endpoint on this host and where it comes from.
    #[command(visible_alias = "ls")]
    List,
}

pub fn run(args: AgentArgs, format: OutputFormat) -> anyhow::Result<()> {
    let cfg = AgentConfig::load(&args.config)
        .with_context(|| format!("invalid agent configuration {}", args.config.display()))?;
    let socket = args.socket.clone().unwrap_or_else(|| cfg.control_socket());
    let ask = |request: Request| -> anyhow::Result<serde_json::Value> {
        runtime()?
            .block_on(clos_agent::control::request(&socket, &request))
            .with_context(|| {
                format!(
                    "asking the agent on {} (is `clos agent -c {}` running?)",
                    socket.display(),
                    args.config.display()
                )
            })
    };
    match args.command.unwrap_or(AgentCommand::Run) {
        AgentCommand::Run => runtime()?.block_on(async move {
            let metrics = Arc::new(clos_agent::Metrics::new());
            clos_agent::run(cfg, metrics, shutdown_signal()).await?;
            Ok(())
        }),
        AgentCommand::Validate => output::print(format, &cfg, |w| {
            write!(w, "{}", serde_yaml_ng::to_string(&cfg).unwrap_or_default())
        }),
        AgentCommand::Status => {
            let status: AgentStatus = serde_json::from_value(ask(Request::Status)?)
                .context("decoding the agent's status")?;
            output::print(format, &status, |w| status_table(w, &status))
        }
        AgentCommand::Endpoint(EndpointCommand::Add { ip, interface }) => {
            let info: Option<EndpointInfo> =
                serde_json::from_value(ask(Request::EndpointAdd { ip, interface })?)?;
            if let Some(e) = &info
                && !e.advertised
            {
                eprintln!(
                    "warning: {ip} is not inside the prefixes the controller assigned to this node: it is routed on this host only, the fabric cannot reach it"
                );
            }
            let list: Vec<EndpointInfo> = info.into_iter().collect();
            output::print(format, &list, |w| endpoints_table(w, &list))
        }
        AgentCommand::Endpoint(EndpointCommand::Del { ip }) => {
            ask(Request::EndpointDel { ip })?;
            output::print(format, &serde_json::json!({ "deleted": ip }), |w| {
                writeln!(w, "deleted endpoint {ip}")
            })
        }
        AgentCommand::Endpoint(EndpointCommand::List) => {
            let list: Vec<EndpointInfo> = serde_json::from_value(ask(Request::EndpointList)?)?;
            output::print(format, &list, |w| endpoints_table(w, &list))
        }
    }
}

/// Ctrl-C or SIGTERM. The agent then exits without closing its BGP sessions cleanly, so the
/// switches treat it as a graceful restart and keep forwarding to this host.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn status_table(w: &mut dyn Write, s: &AgentStatus) -> std::io::Result<()> {
    writeln!(w, "node:        {}", s.node)?;
    let conn = if s.controller.connected {
        "connected"
    } else {
        "unreachable"
    };
    write!(w, "controller:  {} ({conn})", s.controller.url)?;
    match &s.controller.last_error {
        Some(e) if !s.controller.connected => writeln!(w, ": {e}")?,
        _ => writeln!(w)?,
    }
    let source = if s.from_local_state {
        " (from the local state file)"
    } else {
        ""
    };
    writeln!(w, "revision:    {}{source}", s.applied_revision)?;
    writeln!(
        w,
        "asn:         {}   router id: {}",
        s.asn.map_or("-".into(), |a| a.to_string()),
        s.router_id.as_deref().unwrap_or("-")
    )?;
    let adv: Vec<String> = s.advertised.iter().map(ToString::to_string).collect();
    writeln!(
        w,
        "advertised:  {}",
        if adv.is_empty() {
            "-".into()
        } else {
            adv.join(", ")
        }
    )?;
    writeln!(
        w,
        "fib:         {} routes installed, {} learned, {}{}",
        s.fib.routes_installed,
        s.fib.bgp_routes,
        if s.fib.reconciled {
            "in sync"
        } else {
            "first sync pending"
        },
        if s.fib.nexthop_objects {
            ", nexthop groups"
        } else {
            ", multipath routes"
        }
    )?;
    if let Some(e) = &s.fib.last_error {
        writeln!(w, "last error:  {e}")?;
    }
    writeln!(w)?;
    writeln!(
        w,
        "{:<12} {:<28} {:<12} {:>11} {:>9} {:>10}  BFD",
        "UPLINK", "NEIGHBOR", "STATE", "REMOTE AS", "RECEIVED", "ADVERTISED"
    )?;
    for p in &s.sessions {
        writeln!(
            w,
            "{:<12} {:<28} {:<12} {:>11} {:>9} {:>10}  {}",
            p.interface.as_deref().unwrap_or("-"),
            p.address,
            p.state,
            p.remote_as.map_or("-".into(), |a| a.to_string()),
            p.received,
            p.advertised,
            p.bfd.as_ref().map_or("-", |b| b.state.as_str())
        )?;
    }
    Ok(())
}

fn endpoints_table(w: &mut dyn Write, list: &[EndpointInfo]) -> std::io::Result<()> {
    writeln!(
        w,
        "{:<40} {:<16} {:<11} {:<10} STATE",
        "ADDRESS", "INTERFACE", "SOURCE", "ADVERTISED"
    )?;
    for e in list {
        writeln!(
            w,
            "{:<40} {:<16} {:<11} {:<10} {}",
            e.ip,
            e.interface,
            e.source,
            if e.advertised { "yes" } else { "no" },
            e.state
        )?;
    }
    Ok(())
}
