//! `clos bgp`: the standalone speaker (route server, emulated switch, benchmarks).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use clos_agent::fib::{FirstSync, SpeakerFib};
use clos_bgp::config::SpeakerConfig;
use clos_bgp::driver::{FibStatus, RouteEntry, Speaker, SpeakerSpec, SpeakerStatus, control};

use crate::output::{self, OutputFormat};

const DEFAULT_CONTROL: &str = "/run/clos/bgp.sock";

#[derive(Debug, Subcommand)]
pub enum BgpCommand {
    /// Run the speaker in the foreground until interrupted.
    Run {
        /// Configuration file (YAML).
        #[arg(short, long)]
        config: PathBuf,
        /// Control socket for `clos bgp status`.
        #[arg(long, env = "CLOS_BGP_CONTROL", default_value = DEFAULT_CONTROL)]
        control: PathBuf,
        /// This start follows a crash or an upgrade with the kernel routes left in place: tell
        /// the peers (RFC 4724 Restart State bit) so they keep our routes until our End-of-RIB.
        /// With a `fib` section this is implied when routes of ours are in the kernel.
        #[arg(long)]
        restarted: bool,
    },
    /// Check a configuration file and print it with every default filled in.
    Validate {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Show the sessions of a running speaker.
    #[command(visible_alias = "neighbors")]
    Status {
        #[arg(long, env = "CLOS_BGP_CONTROL", default_value = DEFAULT_CONTROL)]
        control: PathBuf,
    },
    /// Show the best routes (with their multipath next hops), or those received from a peer.
    Routes {
        /// Only this prefix, or the routes inside it (`10.0.0.0/8`).
        prefix: Option<ipnet::IpNet>,
        /// Only the routes this peer sent (after import policy).
        #[arg(long)]
        peer: Option<std::net::IpAddr>,
        #[arg(long, env = "CLOS_BGP_CONTROL", default_value = DEFAULT_CONTROL)]
        control: PathBuf,
    },
    /// Ask a peer to send all its routes again (ROUTE-REFRESH), e.g. after an import policy
    /// changed.
    Refresh {
        /// The peer's address, as `clos bgp status` shows it.
        peer: std::net::IpAddr,
        #[arg(long, env = "CLOS_BGP_CONTROL", default_value = DEFAULT_CONTROL)]
        control: PathBuf,
    },
}

pub fn run(cmd: BgpCommand, format: OutputFormat) -> anyhow::Result<()> {
    match cmd {
        BgpCommand::Validate { config } => {
            let (cfg, _) = load(&config)?;
            output::print(format, &cfg, |w| {
                let yaml = serde_yaml_ng::to_string(&cfg).unwrap_or_default();
                write!(w, "{yaml}")
            })
        }
        BgpCommand::Run {
            config,
            control,
            restarted,
        } => {
            let (cfg, mut spec) = load(&config)?;
            // The kernel thread opens the FIB of this namespace before the runtime's threads
            // exist; it keeps routes of an earlier run until the first convergence.
            let fib = cfg
                .fib
                .map(|f| SpeakerFib::start(f.table))
                .transpose()
                .context("opening the kernel FIB (the `fib` section needs CAP_NET_ADMIN)")?;
            let fib_restarted = fib.as_ref().is_some_and(SpeakerFib::restarted);
            if fib_restarted && !restarted {
                tracing::info!("routes of a previous run are in the kernel: restarting gracefully");
            }
            if restarted || fib_restarted {
                let sessions = spec.peers.iter_mut().map(|p| &mut p.session);
                let ranges = spec.listen_ranges.iter_mut().map(|r| &mut r.session);
                for session in sessions.chain(ranges) {
                    if let Some(gr) = &mut session.graceful_restart {
                        gr.restarting = true;
                    }
                }
            }
            runtime()?.block_on(async move {
                let expected = spec.peers.len();
                let handle = Speaker::spawn(spec).await?;
                tracing::info!(listen = ?handle.local_addrs(), "speaker running");
                let serve = match fib {
                    Some(fib) => {
                        let (tx, rx) = tokio::sync::watch::channel(FibStatus {
                            table: cfg.fib.unwrap_or_default().table,
                            ..FibStatus::default()
                        });
                        let first_sync =
                            FirstSync::new(cfg.graceful_restart.map(|g| g.restart_time));
                        let follow = fib.follow(handle.clone(), expected, first_sync, tx);
                        tokio::spawn(async move {
                            if let Err(e) = follow.await {
                                tracing::error!(error = %e, "the FIB stopped following the speaker");
                            }
                        });
                        tokio::spawn(control::serve_with_fib(handle.clone(), control, rx))
                    }
                    None => tokio::spawn(control::serve(handle.clone(), control)),
                };
                tokio::select! {
                    r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
                    r = serve => r.context("control socket task")??,
                }
                handle.shutdown().await?;
                Ok(())
            })
        }
        BgpCommand::Routes {
            prefix,
            peer,
            control,
        } => {
            let mut routes = runtime()?
                .block_on(control::routes(&control, peer))
                .context("asking the speaker for its routes (is `clos bgp run` running with this --control path?)")?;
            if let Some(filter) = prefix {
                routes.retain(|r| {
                    r.prefix
                        .parse::<ipnet::IpNet>()
                        .is_ok_and(|p| filter.contains(&p))
                });
            }
            output::print(format, &routes, |w| routes_table(w, &routes))
        }
        BgpCommand::Refresh { peer, control } => {
            let families = runtime()?
                .block_on(control::refresh(&control, peer))
                .with_context(|| format!("asking {peer} for a route refresh"))?;
            output::print(format, &families, |w| {
                writeln!(w, "asked {peer} to refresh {}", families.join(", "))
            })
        }
        BgpCommand::Status { control } => {
            let status = runtime()?
                .block_on(control::status(&control))
                .context("asking the speaker for its status (is `clos bgp run` running with this --control path?)")?;
            output::print(format, &status, |w| table(w, &status))
        }
    }
}

/// Reads and validates a config file: the file as written (defaults filled in) and the
/// runtime form the validation produced.
fn load(path: &Path) -> anyhow::Result<(SpeakerConfig, SpeakerSpec)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let cfg: SpeakerConfig =
        serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let spec = cfg
        .validate()
        .with_context(|| format!("invalid configuration in {}", path.display()))?;
    Ok((cfg, spec))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn routes_table(w: &mut dyn Write, routes: &[RouteEntry]) -> std::io::Result<()> {
    writeln!(
        w,
        "{:<20} {:<32} {:<24} {:>6} {:<16} STALE",
        "PREFIX", "NEXT HOPS", "AS PATH", "LPREF", "FROM"
    )?;
    for r in routes {
        writeln!(
            w,
            "{:<20} {:<32} {:<24} {:>6} {:<16} {}",
            r.prefix,
            r.next_hops.join(","),
            r.as_path,
            r.local_pref,
            r.from,
            if r.stale { "yes" } else { "" }
        )?;
    }
    writeln!(w, "{} routes", routes.len())
}

fn table(w: &mut dyn Write, status: &SpeakerStatus) -> std::io::Result<()> {
    writeln!(
        w,
        "{:<28} {:<12} {:>10} {:<16} {:>9} {:>6} {:>10}  {:<9} DYNAMIC",
        "PEER", "STATE", "AS", "ROUTER-ID", "RECEIVED", "STALE", "ADVERTISED", "BFD"
    )?;
    for p in &status.peers {
        let asn = p.remote_as.map_or_else(|| "-".into(), |a| a.to_string());
        let id = p.router_id.clone().unwrap_or_else(|| "-".into());
        writeln!(
            w,
            "{:<28} {:<12} {:>10} {:<16} {:>9} {:>6} {:>10}  {:<9} {}",
            p.address.to_string(),
            p.state,
            asn,
            id,
            p.received,
            p.stale,
            p.advertised,
            // BFD's state; the reason it last went down is in `-o json`.
            p.bfd.as_ref().map_or("-", |b| b.state.as_str()),
            p.listen_range
                .map_or_else(|| "-".to_owned(), |r| r.to_string())
        )?;
    }
    writeln!(
        w,
        "originated prefixes: {}, prefixes with a best path: {}, update groups: {}",
        status.originated, status.loc_rib, status.update_groups
    )?;
    if let Some(fib) = &status.fib {
        writeln!(
            w,
            "fib: table {}, {} routes installed ({} to install), {}, last error: {}",
            fib.table,
            fib.routes_installed,
            fib.bgp_routes,
            if fib.reconciled {
                "reconciled"
            } else {
                "keeping an earlier run's routes until the first convergence"
            },
            fib.last_error.as_deref().unwrap_or("none")
        )?;
    }
    Ok(())
}
