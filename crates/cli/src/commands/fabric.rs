//! `clos fabric switch-config SWITCH`: a switch's configuration, rendered by the controller
//! from its inventory (`GET /v1/switches/{name}/config`).

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use crate::commands::resources::{ClientArgs, block};
use crate::output::{self, OutputFormat};

#[derive(Debug, Subcommand)]
pub enum FabricCommand {
    /// Render a switch's configuration (FRR, BIRD or `clos bgp`) from the inventory: eBGP unnumbered with ECMP,
    /// RFC 8212 default deny, and per host port a prefix list of exactly the host's
    /// assignment plus a maximum-prefix limit. Prints the configuration itself; `-o json`
    /// wraps it.
    SwitchConfig(SwitchConfigArgs),
}

#[derive(Debug, Args)]
pub struct SwitchConfigArgs {
    /// The switch's name.
    switch: String,
    /// Software to render for: `frr` (frr.conf for vtysh -f), `bird` (bird.conf for BIRD 2)
    /// or `clos` (bgp.yaml for `clos bgp run`).
    #[arg(long, default_value = "frr", value_parser = ["frr", "bird", "clos"])]
    software: String,
    #[command(flatten)]
    client: ClientArgs,
}

/// The controller's `?format=json` answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RenderedConfig {
    switch: String,
    software: String,
    config: String,
}

pub fn run(cmd: FabricCommand, format: OutputFormat) -> anyhow::Result<()> {
    match cmd {
        FabricCommand::SwitchConfig(args) => {
            let c = args.client.client()?;
            let path = format!(
                "/v1/switches/{}/config?software={}&format=json",
                args.switch, args.software
            );
            let r: RenderedConfig = block(async move {
                c.get(&path)
                    .await
                    .with_context(|| format!("rendering the config of switch {}", args.switch))
            })?;
            output::print(format, &r, |w: &mut dyn Write| {
                w.write_all(r.config.as_bytes())
            })
        }
    }
}
