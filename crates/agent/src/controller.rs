//! The agent's side of the controller: registration, the desired-state watch (resumed from the
//! last revision seen after any disconnect), and heartbeats that report the applied revision.
//!
//! Nothing here blocks the rest of the agent: when the controller is unreachable, these tasks
//! retry with backoff while the agent keeps serving its last desired state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use clos_model::{Client, DesiredStateAt, Heartbeat, Node, WatchEvent};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify, mpsc};

use crate::metrics::Metrics;

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// What the rest of the agent knows about the controller.
#[derive(Debug, Default)]
pub struct Link {
    connected: AtomicBool,
    /// The revision the agent applied, reported in heartbeats.
    pub applied: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Wakes the watch when a heartbeat fails, so a silently dead connection is dropped.
    reconnect: Notify,
}

/// For `clos agent status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControllerStatus {
    pub url: String,
    pub connected: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl Link {
    pub async fn status(&self, url: &str) -> ControllerStatus {
        ControllerStatus {
            url: url.to_owned(),
            connected: self.connected.load(Ordering::Relaxed),
            last_error: self.last_error.lock().await.clone(),
        }
    }

    async fn set(&self, connected: bool, error: Option<String>, metrics: &Metrics) {
        self.connected.store(connected, Ordering::Relaxed);
        metrics.controller_connected.set(i64::from(connected));
        if error.is_some() || connected {
            *self.last_error.lock().await = error;
        }
    }
}

/// Follows the node's desired state forever, sending each new state to `tx`. `from` is the
/// first revision wanted (the saved revision + 1, or 0 for the current state).
pub async fn follow(
    client: Client,
    node: String,
    mut from: u64,
    tx: mpsc::Sender<DesiredStateAt>,
    link: Arc<Link>,
    metrics: Arc<Metrics>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        match watch_once(&client, &node, &mut from, &tx, &link, &metrics).await {
            Ok(()) => backoff = BACKOFF_MIN,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "controller unreachable; serving the last desired state");
                link.set(false, Some(e), &metrics).await;
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn watch_once(
    client: &Client,
    node: &str,
    from: &mut u64,
    tx: &mpsc::Sender<DesiredStateAt>,
    link: &Link,
    metrics: &Metrics,
) -> Result<(), String> {
    client
        .register(&Node::new(node))
        .await
        .map_err(|e| format!("registering node {node}: {e}"))?;
    let mut watch = client
        .watch_desired_state(node, *from)
        .await
        .map_err(|e| format!("watching the desired state: {e}"))?;
    link.set(true, None, metrics).await;
    tracing::info!(
        node,
        from = *from,
        "following the controller's desired state"
    );
    loop {
        let event = tokio::select! {
            ev = watch.next() => ev,
            () = link.reconnect.notified() => return Err("heartbeat failed; reconnecting".into()),
        };
        match event {
            None => return Err("the watch ended".into()),
            Some(Err(e)) => return Err(format!("the watch failed: {e}")),
            Some(Ok(WatchEvent::State { revision, state })) => {
                *from = revision + 1;
                if tx.send(DesiredStateAt { revision, state }).await.is_err() {
                    return Ok(());
                }
            }
            Some(Ok(WatchEvent::Deleted { revision })) => {
                // Fail static: keep serving what we have; an operator removing the node also
                // stops its agent.
                *from = revision + 1;
                tracing::warn!(
                    node,
                    revision,
                    "the controller deleted this node; keeping the last desired state"
                );
            }
            Some(Ok(WatchEvent::Error { problem })) => {
                // Typically a compacted revision: start again from the current state.
                *from = 0;
                return Err(format!("the watch stopped: {}", problem.title));
            }
        }
    }
}

/// Reports the applied revision every `interval` while the agent runs.
pub async fn heartbeat(
    client: Client,
    node: String,
    interval: Duration,
    link: Arc<Link>,
    metrics: Arc<Metrics>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let hb = Heartbeat {
            version: env!("CARGO_PKG_VERSION").into(),
            applied_revision: link.applied.load(Ordering::Relaxed),
        };
        if let Err(e) = client.heartbeat(&node, &hb).await {
            if link.connected.load(Ordering::Relaxed) {
                link.reconnect.notify_one();
            }
            link.set(false, Some(format!("heartbeat: {e}")), &metrics)
                .await;
        }
    }
}
