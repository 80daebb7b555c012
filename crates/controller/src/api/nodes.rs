//! Nodes: the admin's CRUD, and the agent's registration, heartbeat and desired-state watch.
//!
//! The watch (`?watch=true`) answers newline-delimited JSON [`WatchEvent`]s: with
//! `from_revision=0` the current state first, then every change; with `from_revision=N` every
//! change at revision N or later, from the store's history, so an agent that saw revision R
//! resumes with `from_revision=R+1` and misses nothing. A compacted revision is a 410 problem.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use clos_model::{
    AgentStatus, DesiredState, DesiredStateAt, Heartbeat, Node, Page, Problem, Resource, WatchEvent,
};
use clos_store::{Event, KeyRange, RangeRequest, WatchStream};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiPath, ApiQuery, DeleteQuery, JsonBody, ListQuery, created, decode, list_prefix};
use crate::AppState;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::keys;
use crate::writer::{self, Done};

async fn status_of(state: &AppState, name: &str) -> Result<Option<AgentStatus>> {
    match state
        .store()
        .get(keys::item(keys::NODE_STATUS, name).into())
        .await?
    {
        Some(kv) => Ok(Some(decode(&kv)?)),
        None => Ok(None),
    }
}

async fn read_node(state: &AppState, name: &str) -> Result<Node> {
    let kv = state
        .store()
        .get(keys::item(keys::NODES, name).into())
        .await?
        .ok_or_else(|| Error::not_found("node", name))?;
    let mut n: Node = decode(&kv)?;
    n.resource_version = kv.mod_revision;
    n.status = status_of(state, name).await?;
    Ok(n)
}

fn require_node(p: &Principal, name: &str) -> Result<()> {
    if p.node_allowed(name) {
        Ok(())
    } else if p.token.role == clos_model::TokenRole::Node {
        // Another node's agent: it learns nothing about this name.
        Err(Error::not_found("node", name))
    } else {
        Err(Error::Forbidden {
            action: "act for a node",
        })
    }
}

fn node_result(done: Done) -> Result<Node> {
    match done {
        Done::Node(n) => Ok(n),
        _ => Err(Error::internal(
            "writer answered a node request with another result",
        )),
    }
}

/// Lists the nodes with their agent status (admin).
#[utoipa::path(get, path = "/v1/nodes", tag = "nodes", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = Page<Node>), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list_nodes(
    p: Principal,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Node>>> {
    p.require_admin("list nodes")?;
    let mut page = list_prefix(&state, keys::NODES, &q, |kv| {
        let mut n: Node = decode(&kv)?;
        n.resource_version = kv.mod_revision;
        Ok(Some(n))
    })
    .await?;
    if let (Some(first), Some(last)) = (page.items.first(), page.items.last()) {
        let start = keys::item(keys::NODE_STATUS, &first.name);
        let end = keys::item(keys::NODE_STATUS, &last.name) + "\0";
        let statuses = state
            .store()
            .range(RangeRequest::new(KeyRange::range(start, end)))
            .await?;
        let mut by_name: HashMap<String, AgentStatus> = HashMap::new();
        for kv in statuses.kvs {
            let name = String::from_utf8_lossy(&kv.key[keys::NODE_STATUS.len()..]).into_owned();
            by_name.insert(name, decode(&kv)?);
        }
        for n in &mut page.items {
            n.status = by_name.remove(&n.name);
        }
    }
    Ok(Json(page))
}

/// Creates a node (admin). Without `asn`, it gets a free one from the site's host range.
#[utoipa::path(post, path = "/v1/nodes", tag = "nodes", security(("bearer" = [])), request_body = Node,
    responses((status = 201, body = Node), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn create_node(
    p: Principal,
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<Response> {
    p.require_admin("create nodes")?;
    let node: Node = body.parse()?;
    node.validate()?;
    let n = node_result(state.writer().call(writer::Op::CreateNode(node)).await?)?;
    Ok(created(n))
}

/// Reads a node with its agent status (admin, or the node's own token).
#[utoipa::path(get, path = "/v1/nodes/{name}", tag = "nodes", security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 200, body = Node), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_node(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Node>> {
    require_node(&p, &name)?;
    Ok(Json(read_node(&state, &name).await?))
}

/// Replaces a node's rack, role, uplinks, ASN and underlay addresses (admin; 409 if stale).
#[utoipa::path(put, path = "/v1/nodes/{name}", tag = "nodes", security(("bearer" = [])), params(("name" = String, Path)), request_body = Node,
    responses((status = 200, body = Node), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn update_node(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    body: JsonBody,
) -> Result<Json<Node>> {
    p.require_admin("change nodes")?;
    let node: Node = body.parse()?;
    if node.name != name {
        return Err(Error::Invalid {
            field: "name".into(),
            reason: "the body names another node: renaming is not supported".into(),
        });
    }
    node.validate()?;
    let mut n = node_result(state.writer().call(writer::Op::UpdateNode(node)).await?)?;
    n.status = status_of(&state, &name).await?;
    Ok(Json(n))
}

/// Deletes a node that holds no active address (admin).
#[utoipa::path(delete, path = "/v1/nodes/{name}", tag = "nodes", security(("bearer" = [])), params(("name" = String, Path), DeleteQuery),
    responses((status = 204), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn delete_node(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<Response> {
    p.require_admin("delete nodes")?;
    state
        .writer()
        .call(writer::Op::DeleteNode {
            name,
            version: q.resource_version.unwrap_or(0),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Registers a node from its agent: creates it if it is new, else returns it unchanged.
#[utoipa::path(post, path = "/v1/nodes/{name}/register", tag = "agent", security(("bearer" = [])), params(("name" = String, Path)), request_body = Node,
    responses((status = 200, body = Node), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn register_node(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    body: JsonBody,
) -> Result<Json<Node>> {
    require_node(&p, &name)?;
    let node: Node = body.parse()?;
    if node.name != name {
        return Err(Error::Invalid {
            field: "name".into(),
            reason: "the body names another node than the path".into(),
        });
    }
    node.validate()?;
    let mut n = node_result(state.writer().call(writer::Op::RegisterNode(node)).await?)?;
    n.status = status_of(&state, &name).await?;
    Ok(Json(n))
}

/// Records an agent's heartbeat (version, applied revision) on the controller's clock.
#[utoipa::path(post, path = "/v1/nodes/{name}/heartbeat", tag = "agent", security(("bearer" = [])), params(("name" = String, Path)), request_body = Heartbeat,
    responses((status = 200, body = Node), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn heartbeat(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    body: JsonBody,
) -> Result<Json<Node>> {
    require_node(&p, &name)?;
    let hb: Heartbeat = body.parse()?;
    clos_model::validate_name("name", &name)?;
    if hb.version.len() > 128 {
        return Err(Error::Invalid {
            field: "version".into(),
            reason: "use at most 128 bytes".into(),
        });
    }
    let mut node = read_node(&state, &name).await?;
    let status = AgentStatus {
        last_heartbeat_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        version: hb.version,
        applied_revision: hb.applied_revision,
    };
    state
        .store()
        .put(
            keys::item(keys::NODE_STATUS, &name).into(),
            serde_json::to_vec(&status).map_err(Error::internal)?.into(),
        )
        .await?;
    node.status = Some(status);
    Ok(Json(node))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DesiredQuery {
    /// Stream changes as newline-delimited JSON instead of answering once.
    #[serde(default)]
    pub watch: bool,
    /// With `watch`: the first revision to stream (the last seen revision + 1); 0 starts with
    /// the current state.
    #[serde(default)]
    pub from_revision: u64,
}

fn line(ev: &WatchEvent) -> Bytes {
    let mut v = serde_json::to_vec(ev).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn event_of(ev: &Event) -> WatchEvent {
    match ev {
        Event::Put { kv, .. } => match serde_json::from_slice::<DesiredState>(&kv.value) {
            Ok(state) => WatchEvent::State {
                revision: kv.mod_revision,
                state,
            },
            Err(e) => WatchEvent::Error {
                problem: Error::Internal(format!("stored desired state does not decode: {e}"))
                    .problem(),
            },
        },
        Event::Delete { revision, .. } => WatchEvent::Deleted {
            revision: *revision,
        },
    }
}

/// A node's desired state (the prefixes it advertises, its ASN), once or as a watch.
#[utoipa::path(get, path = "/v1/nodes/{name}/desired-state", tag = "agent", security(("bearer" = [])),
    params(("name" = String, Path), DesiredQuery),
    responses(
        (status = 200, description = "without watch: the current state (JSON); with watch: one event per line (NDJSON)",
            content((DesiredStateAt = "application/json"), (WatchEvent = "application/x-ndjson"))),
        (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn desired_state(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<DesiredQuery>,
) -> Result<Response> {
    require_node(&p, &name)?;
    let key = keys::item(keys::DESIRED, &name);
    let current = state
        .store()
        .range(RangeRequest::new(KeyRange::key(key.clone())))
        .await?;
    let kv = current.kvs.first();
    if !q.watch {
        let kv = kv.ok_or_else(|| Error::not_found("node", &name))?;
        return Ok(Json(DesiredStateAt {
            revision: kv.mod_revision,
            state: decode(kv)?,
        })
        .into_response());
    }
    let mut pending = VecDeque::new();
    let from = if q.from_revision == 0 {
        let kv = kv.ok_or_else(|| Error::not_found("node", &name))?;
        pending.push_back(line(&WatchEvent::State {
            revision: kv.mod_revision,
            state: decode(kv)?,
        }));
        current.revision + 1
    } else {
        if kv.is_none()
            && state
                .store()
                .get(keys::item(keys::NODES, &name).into())
                .await?
                .is_none()
        {
            return Err(Error::not_found("node", &name));
        }
        q.from_revision
    };
    let rx = match state.store().watch(KeyRange::key(key), from).await {
        Ok(rx) => rx,
        Err(clos_store::Error::Compacted {
            requested,
            compacted,
        }) => {
            return Err(Error::Gone {
                requested,
                compacted,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let stream = futures_util::stream::unfold(
        (pending, rx, false),
        |(mut pending, mut rx, mut finished): (VecDeque<Bytes>, WatchStream, bool)| async move {
            loop {
                if let Some(b) = pending.pop_front() {
                    return Some((Ok::<_, Infallible>(b), (pending, rx, finished)));
                }
                if finished {
                    return None;
                }
                match rx.recv().await {
                    None => return None,
                    Some(Ok(resp)) => {
                        for ev in &resp.events {
                            pending.push_back(line(&event_of(ev)));
                        }
                    }
                    Some(Err(e)) => {
                        let problem = match e {
                            clos_store::Error::Compacted {
                                requested,
                                compacted,
                            } => Error::Gone {
                                requested,
                                compacted,
                            }
                            .problem(),
                            other => Error::from(other).problem(),
                        };
                        pending.push_back(line(&WatchEvent::Error { problem }));
                        finished = true;
                    }
                }
            }
        },
    );
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}
