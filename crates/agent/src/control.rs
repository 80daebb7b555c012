//! The local control socket (`clos agent status`, `clos agent endpoint ...`) and the metrics
//! listener.
//!
//! The socket speaks one JSON request line in and one JSON reply out: `{"ok": VALUE}` or
//! `{"error": "what went wrong"}`. It is a Unix stream socket created mode 0600, so file
//! permissions decide who may ask.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::agent::{ControlRequest, Request};
use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// Longest request line accepted.
const MAX_REQUEST: u64 = 64 * 1024;

pub(crate) async fn serve(path: PathBuf, tx: mpsc::Sender<ControlRequest>) {
    let listener = match bind(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "no control socket; `clos agent status` will not work");
            return;
        }
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = answer(stream, tx).await;
        });
    }
}

fn bind(path: &Path) -> Result<UnixListener> {
    clos_bgp::driver::control::bind_socket(path, "another agent").map_err(|source| Error::Control {
        path: path.to_owned(),
        source,
    })
}

async fn answer(stream: UnixStream, tx: mpsc::Sender<ControlRequest>) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    let (rd, mut wr) = stream.into_split();
    let mut line = String::new();
    BufReader::new(rd.take(MAX_REQUEST))
        .read_line(&mut line)
        .await?;
    let reply = match serde_json::from_str::<Request>(line.trim()) {
        Err(e) => Err(format!("bad request: {e}")),
        Ok(request) => {
            let (reply, rx) = oneshot::channel();
            if tx.send(ControlRequest { request, reply }).await.is_err() {
                Err("the agent is stopping".to_owned())
            } else {
                rx.await
                    .unwrap_or_else(|_| Err("the agent is stopping".to_owned()))
            }
        }
    };
    let doc = match reply {
        Ok(v) => serde_json::json!({ "ok": v }),
        Err(e) => serde_json::json!({ "error": e }),
    };
    wr.write_all(doc.to_string().as_bytes()).await?;
    wr.write_all(b"\n").await?;
    wr.shutdown().await
}

/// Sends one request to a running agent and decodes its answer.
pub async fn request<T: DeserializeOwned>(path: &Path, request: &Request) -> Result<T> {
    let control = |source| Error::Control {
        path: path.to_owned(),
        source,
    };
    let stream = UnixStream::connect(path).await.map_err(control)?;
    let (rd, mut wr) = stream.into_split();
    let mut line = serde_json::to_string(request).map_err(|e| control(std::io::Error::other(e)))?;
    line.push('\n');
    wr.write_all(line.as_bytes()).await.map_err(control)?;
    let mut reply = String::new();
    BufReader::new(rd)
        .read_line(&mut reply)
        .await
        .map_err(control)?;
    let doc: serde_json::Value = serde_json::from_str(&reply)
        .map_err(|e| control(std::io::Error::other(format!("bad reply: {e}"))))?;
    if let Some(e) = doc.get("error").and_then(|e| e.as_str()) {
        return Err(Error::Refused(e.to_owned()));
    }
    serde_json::from_value(doc.get("ok").cloned().unwrap_or_default())
        .map_err(|e| control(std::io::Error::other(format!("bad reply: {e}"))))
}

/// Serves `GET /metrics` on `addr` in the Prometheus text format.
pub(crate) async fn serve_metrics(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Metrics { addr, source })?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.encode(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener stopped");
        }
    });
    Ok(())
}
