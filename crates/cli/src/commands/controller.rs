//! `clos controller`: runs the site controller (HTTP API) in the foreground.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use clos_controller::Controller;
use clos_store::{RedbStore, Store};

#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Directory of the controller's store (created if missing).
    #[arg(long, env = "CLOS_DATA_DIR")]
    data_dir: PathBuf,
    /// Address to serve the API on.
    #[arg(long, default_value = "127.0.0.1:7700")]
    listen: SocketAddr,
}

pub fn run(args: ControllerArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let store: Arc<dyn Store> = Arc::new(
            RedbStore::open(&args.data_dir)
                .await
                .with_context(|| format!("opening the store in {}", args.data_dir.display()))?,
        );
        let controller = Controller::start(store)
            .await
            .context("loading the controller state")?;
        if let Some(token) = controller.admin_token() {
            // Printed once, on stdout; only its hash is stored.
            println!("admin token (shown once, store it safely): {token}");
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(listen = %addr, "controller serving");
        // On stdout too, so that scripts (and tests) that asked for port 0 learn the port.
        println!("listening on {addr}");
        controller
            .serve(listener, async {
                let _ = tokio::signal::ctrl_c().await;
                tracing::info!("shutting down");
            })
            .await
            .context("serving the API")
    })
}
