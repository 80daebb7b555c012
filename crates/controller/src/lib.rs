//! The Clos controller: the site's HTTP API (`/v1/...`) over the IPAM and the store.
//!
//! * [`Controller::start`] loads the state from a [`Store`] (rebuilding the allocator from its
//!   records), issues the first admin token on an empty store, and starts the IPAM writer.
//! * [`app`] is the axum router: every route, authentication, the problem-details mapping,
//!   metrics and the OpenAPI document (`/v1/openapi.json`), all generated from the handlers.
//! * [`Controller::serve`] runs it on a listener until a shutdown signal.
//!
//! Module map: `api/` (handlers, one file per resource family, and the router), `auth`
//! (tokens and checks), `writer` (the single IPAM writer with group commit and
//! compare-and-swap), `keys` (the store key layout), `error` (the one error type and its
//! problem documents), `metrics`.
//!
//! **Must not** expose internal errors to clients: everything a client sees is a problem
//! document built in `error.rs`.

mod api;
mod auth;
mod convert;
mod error;
mod keys;
mod metrics;
pub mod render;
mod writer;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};

use clos_model::Token;
use clos_store::Store;
use tokio::task::JoinHandle;

pub use api::{ApiDoc, app, openapi};
pub use error::{Error, Result};
pub use metrics::Metrics;

use writer::{SharedHandle, WriterHandle};

/// Shared state of the request handlers; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    writer: WriterHandle,
    shared: SharedHandle,
    metrics: Metrics,
    tokens: RwLock<HashMap<String, Token>>,
}

impl AppState {
    pub(crate) fn store(&self) -> &dyn Store {
        self.0.store.as_ref()
    }

    pub(crate) fn writer(&self) -> &WriterHandle {
        &self.0.writer
    }

    pub(crate) fn shared(&self) -> &SharedHandle {
        &self.0.shared
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub(crate) fn cached_token(&self, hash: &str) -> Option<Token> {
        self.0
            .tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(hash)
            .cloned()
    }

    pub(crate) fn cache_token(&self, hash: String, token: Token) {
        self.0
            .tokens
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(hash, token);
    }

    pub(crate) fn forget_token(&self, id: &str) {
        self.0
            .tokens
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, t| t.id != id);
    }
}

/// A running controller: its state and its IPAM writer task.
#[derive(Debug)]
pub struct Controller {
    state: AppState,
    writer_task: JoinHandle<()>,
    admin_token: Option<String>,
}

impl Controller {
    /// Loads the state from `store` and starts the IPAM writer. On an empty store this also
    /// issues the admin token, returned once by [`Controller::admin_token`].
    pub async fn start(store: Arc<dyn Store>) -> Result<Controller> {
        let metrics = Metrics::new();
        let admin_token = auth::bootstrap(store.as_ref()).await?;
        let (writer, shared, writer_task) =
            writer::Writer::start(store.clone(), metrics.clone()).await?;
        let state = AppState(Arc::new(Inner {
            store,
            writer,
            shared,
            metrics,
            tokens: RwLock::new(HashMap::new()),
        }));
        Ok(Controller {
            state,
            writer_task,
            admin_token,
        })
    }

    /// The secret of the admin token issued at this start (first start only).
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// The router over this controller's state.
    pub fn router(&self) -> axum::Router {
        app(self.state.clone())
    }

    /// Serves the API on `listener` until `shutdown` resolves, then drains the writer.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        let (stopping_tx, stopping) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stopping_tx.send(());
        });
        // Watch streams never end by themselves: give open requests a grace period.
        let deadline = async move {
            if stopping.await.is_ok() {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            r = async move { server.await } => r?,
            () = deadline => tracing::warn!("closing connections still open after 5 s"),
        }
        self.shutdown().await;
        Ok(())
    }

    /// Stops the writer once every handler state is dropped. Pending writes finish first.
    pub async fn shutdown(self) {
        let Controller {
            state, writer_task, ..
        } = self;
        drop(state);
        // The writer ends when the last handle (in routers still alive) is gone; a connection
        // task that still holds one must not keep the process alive.
        let mut writer_task = writer_task;
        if tokio::time::timeout(std::time::Duration::from_secs(5), &mut writer_task)
            .await
            .is_err()
        {
            writer_task.abort();
        }
    }
}
