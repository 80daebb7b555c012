//! Switch configuration rendered from the inventory: `GET /v1/switches/{name}/config`.
//!
//! [`view_of`] resolves a switch from the store (its rack's ASN or the site's spine ASN, the
//! nodes on its ports with their ASNs and assigned prefixes, the site's pools and address
//! ranges); [`frr::render`], [`bird::render`] and [`clos::render`] turn that into FRR, BIRD or
//! `clos bgp` configuration, pure functions. A leaf must be rendered again when a host's assignment changes (a new
//! block, a host route).

pub mod bird;
pub mod clos;
pub mod frr;
mod view;

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use clos_ipam::Record;
use clos_model::{DesiredState, Node, Problem, Rack, Site, Switch, SwitchRole};
use clos_store::{KeyRange, RangeRequest};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::{ApiPath, ApiQuery, decode};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::keys;

pub use view::{HOST_MAX_PREFIX_HEADROOM, PortView, SwitchView};

/// Switch software a configuration can be rendered for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SwitchSoftware {
    #[default]
    Frr,
    /// BIRD 2.
    Bird,
    /// `clos bgp run`.
    Clos,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConfigQuery {
    /// The switch software to render for (default `frr`).
    #[serde(default)]
    pub software: SwitchSoftware,
    /// `json` wraps the configuration in a [`RenderedConfig`]; the default is the plain text.
    #[serde(default)]
    pub format: Option<ConfigFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ConfigFormat {
    Text,
    Json,
}

/// A rendered switch configuration (`?format=json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderedConfig {
    pub switch: String,
    pub software: SwitchSoftware,
    pub config: String,
}

async fn read<T: serde::de::DeserializeOwned>(state: &AppState, key: String) -> Result<Option<T>> {
    match state.store().get(key.into()).await? {
        Some(kv) => Ok(Some(decode(&kv)?)),
        None => Ok(None),
    }
}

/// Resolves everything the renderer needs about switch `name` from the store.
pub(crate) async fn view_of(state: &AppState, name: &str) -> Result<SwitchView> {
    let switch: Switch = read(state, format!("switches/{name}"))
        .await?
        .ok_or_else(|| Error::not_found("switch", name))?;
    let site: Option<Site> = read(state, keys::SITE.to_string()).await?;
    let plan = site
        .as_ref()
        .map(|s| s.asn_plan.clone())
        .unwrap_or_default();

    let asn = match (switch.asn, switch.role) {
        (Some(a), _) => a,
        (None, SwitchRole::Spine) => plan.spine_asn,
        (None, SwitchRole::Leaf) => {
            let rack_name = switch.rack.as_deref().ok_or_else(|| Error::Invalid {
                field: "rack".into(),
                reason: format!("leaf {name} has no rack: set its rack (or its asn)"),
            })?;
            let rack: Rack = read(state, format!("racks/{rack_name}"))
                .await?
                .ok_or_else(|| Error::not_found("rack", rack_name))?;
            rack.asn.ok_or_else(|| Error::Conflict {
                detail: format!("rack {rack_name} has no ASN"),
                hint: "give the rack an asn (racks created through the API get one)",
            })?
        }
    };

    // The fabric carries the site's address ranges and every pool.
    let mut fabric: BTreeSet<IpNet> = site
        .as_ref()
        .map(|s| s.address_ranges.iter().copied().collect())
        .unwrap_or_default();
    let pools = state
        .store()
        .range(RangeRequest::new(KeyRange::prefix(keys::POOLS)))
        .await?;
    for kv in &pools.kvs {
        if let Record::Pool(p) = decode::<Record>(kv)? {
            fabric.insert(p.cidr);
        }
    }
    // Drop what a wider entry already covers.
    let all: Vec<IpNet> = fabric.iter().copied().collect();
    fabric.retain(|n| !all.iter().any(|m| m != n && m.contains(n)));

    let mut ports = Vec::with_capacity(switch.ports.len());
    for (i, p) in switch.ports.iter().enumerate() {
        if p.name.is_empty()
            || p.name.len() > 15
            || p.name.contains(|c: char| c == '/' || c.is_whitespace())
        {
            return Err(Error::Invalid {
                field: format!("ports[{i}].name"),
                reason: format!(
                    "{:?} is not a Linux interface name (1-15 characters, no spaces or '/')",
                    p.name
                ),
            });
        }
        let Some(node_name) = &p.node else {
            ports.push(PortView::Fabric {
                name: p.name.clone(),
            });
            continue;
        };
        if switch.role == SwitchRole::Spine {
            return Err(Error::Invalid {
                field: format!("ports[{i}].node"),
                reason: "a spine's ports face leaves, not nodes".into(),
            });
        }
        let node: Node = read(state, keys::item(keys::NODES, node_name))
            .await?
            .ok_or_else(|| Error::Conflict {
                detail: format!(
                    "port {} of {name} names node {node_name}, which does not exist",
                    p.name
                ),
                hint: "create the node, or fix the switch's port",
            })?;
        let desired: Option<DesiredState> =
            read(state, keys::item(keys::DESIRED, node_name)).await?;
        let asn = node
            .asn
            .or(desired.as_ref().and_then(|d| d.asn))
            .ok_or_else(|| Error::Conflict {
                detail: format!("node {node_name} has no ASN"),
                hint: "give the node an asn (nodes created through the API get one)",
            })?;
        ports.push(PortView::Host {
            name: p.name.clone(),
            node: node_name.clone(),
            asn,
            prefixes: desired.map(|d| d.advertisements).unwrap_or_default(),
        });
    }
    let router_id = match switch.loopback {
        Some(std::net::IpAddr::V4(a)) => Some(a),
        _ => None,
    };
    Ok(SwitchView {
        name: switch.name,
        role: switch.role,
        rack: switch.rack,
        asn,
        router_id,
        fabric: fabric.into_iter().collect(),
        ports,
        bfd: site.and_then(|s| s.bfd),
    })
}

/// A switch's configuration rendered from the inventory (admin): eBGP unnumbered with ECMP,
/// RFC 8212 default deny, and on every host-facing port a prefix list accepting exactly the
/// host's assigned prefixes plus a maximum-prefix limit. Text by default, JSON with
/// `?format=json`.
#[utoipa::path(get, path = "/v1/switches/{name}/config", tag = "switches", security(("bearer" = [])),
    params(("name" = String, Path), ConfigQuery),
    responses(
        (status = 200, description = "the configuration (text/plain), or a RenderedConfig with ?format=json",
            content((String = "text/plain"), (RenderedConfig = "application/json"))),
        (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn switch_config(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<ConfigQuery>,
) -> Result<Response> {
    p.require_admin("read switch configurations")?;
    let view = view_of(&state, &name).await?;
    let config = match q.software {
        SwitchSoftware::Frr => frr::render(&view),
        SwitchSoftware::Bird => bird::render(&view),
        SwitchSoftware::Clos => clos::render(&view)?,
    };
    Ok(match q.format {
        Some(ConfigFormat::Json) => axum::Json(RenderedConfig {
            switch: name,
            software: q.software,
            config,
        })
        .into_response(),
        _ => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            config,
        )
            .into_response(),
    })
}
