//! The router: every route is registered through utoipa-axum's `routes!`, so the OpenAPI
//! document lists exactly the routes the router serves (the authz matrix test enumerates the
//! routes from that document). Shared extractors and list pagination live here too.

mod addresses;
mod nodes;
mod plain;
mod pools;
mod tokens;

use std::time::Instant;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bytes::Bytes;
use clos_model::{PROBLEM_CONTENT_TYPE, Page, Problem};
use clos_store::{KeyRange, KeyValue, RangeRequest};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{Error, Result, problem_response};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Clos controller API",
        description = "Network-as-a-service for routed L3 fabrics. Every error is an RFC 9457 problem document (application/problem+json)."
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth)
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(openapi_json))
        .routes(routes!(metrics))
        .routes(routes!(plain::get_site, plain::put_site))
        .routes(routes!(plain::list_racks, plain::create_rack))
        .routes(routes!(
            plain::get_rack,
            plain::update_rack,
            plain::delete_rack
        ))
        .routes(routes!(plain::list_switches, plain::create_switch))
        .routes(routes!(
            plain::get_switch,
            plain::update_switch,
            plain::delete_switch
        ))
        .routes(routes!(crate::render::switch_config))
        .routes(routes!(plain::list_tenants, plain::create_tenant))
        .routes(routes!(
            plain::get_tenant,
            plain::update_tenant,
            plain::delete_tenant
        ))
        .routes(routes!(pools::list_pools, pools::create_pool))
        .routes(routes!(pools::get_pool, pools::delete_pool))
        .routes(routes!(pools::list_subnets, pools::create_subnet))
        .routes(routes!(pools::get_subnet, pools::delete_subnet))
        .routes(routes!(pools::ipam_check))
        .routes(routes!(pools::ipam_repair))
        .routes(routes!(
            addresses::list_subnet_addresses,
            addresses::allocate_in_subnet
        ))
        .routes(routes!(
            addresses::list_pool_addresses,
            addresses::allocate_in_pool
        ))
        .routes(routes!(addresses::get_address, addresses::release_address))
        .routes(routes!(nodes::list_nodes, nodes::create_node))
        .routes(routes!(
            nodes::get_node,
            nodes::update_node,
            nodes::delete_node
        ))
        .routes(routes!(nodes::register_node))
        .routes(routes!(nodes::heartbeat))
        .routes(routes!(nodes::desired_state))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::delete_token))
}

/// The OpenAPI document of the API, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// The controller's HTTP API over `state`.
pub fn app(state: AppState) -> Router {
    let (router, _) = routes().split_for_parts();
    router
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn no_route(method: Method, uri: Uri) -> Error {
    Error::NoRoute {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> Error {
    Error::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

/// Metrics for every request, and the guarantee that every error is a problem document: an
/// error answer that is not one yet (from a layer or axum itself) is replaced by one.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let mut resp = next.run(req).await;
    let status = resp.status();
    if (status.is_client_error() || status.is_server_error())
        && resp.headers().get(header::CONTENT_TYPE)
            != Some(&HeaderValue::from_static(PROBLEM_CONTENT_TYPE))
    {
        resp = problem_response(&Problem {
            type_: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: format!("the request failed with status {}", status.as_u16()),
            hint: Some("check the request against /v1/openapi.json".into()),
            field: None,
        });
    }
    state.metrics().request(
        &method,
        &route,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, description = "alive")))]
async fn health() -> &'static str {
    "ok\n"
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta", responses((status = 200, description = "the OpenAPI 3 document")))]
async fn openapi_json() -> Response {
    Json(openapi()).into_response()
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "meta", responses((status = 200, description = "metrics in the OpenMetrics text format", content_type = "application/openmetrics-text")))]
async fn metrics(State(state): State<AppState>) -> Response {
    let body = {
        let shared = state.shared().read();
        state.metrics().render(&shared)
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Extractors whose failures are problem documents.

/// A JSON body, parsed only when the handler asks (after its authorization checks), so a
/// caller without the right to a route learns nothing from its body errors.
pub(crate) struct JsonBody(Bytes);

impl JsonBody {
    pub(crate) fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        if self.0.is_empty() {
            return Err(Error::BadRequest {
                detail: "the request has no body: send a JSON document".into(),
                field: None,
            });
        }
        serde_json::from_slice(&self.0).map_err(|e| {
            let msg = e.to_string();
            let field = msg
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next())
                .map(str::to_string)
                .or_else(|| {
                    msg.strip_prefix("missing field `")
                        .and_then(|r| r.split('`').next())
                        .map(str::to_string)
                });
            Error::BadRequest {
                detail: format!("invalid JSON body: {msg}"),
                field,
            }
        })
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for JsonBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| Error::BadRequest {
                detail: e.body_text(),
                field: None,
            })?;
        Ok(JsonBody(bytes))
    }
}

/// Path parameters.
pub(crate) struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| Error::BadRequest {
                detail: e.body_text(),
                field: None,
            })
    }
}

/// Query parameters (unknown ones are rejected by the types).
pub(crate) struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| Error::BadRequest {
                detail: e.body_text(),
                field: None,
            })
    }
}

// ---------------------------------------------------------------------------------------------
// Pagination

pub(crate) const DEFAULT_LIMIT: usize = 100;
pub(crate) const MAX_LIMIT: usize = 1000;

/// `?limit=&after=`: at most `limit` items (default 100, at most 1000) after the cursor `after`
/// (the `next` of the previous page).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    pub after: Option<String>,
}

/// `?resource_version=`: delete only if the resource is still at this version.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteQuery {
    pub resource_version: Option<u64>,
}

fn bump(prefix: &str) -> String {
    let mut b = prefix.as_bytes().to_vec();
    if let Some(last) = b.last_mut() {
        *last += 1;
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// Lists the keys in `[start, end)` after the cursor, keeping those `keep` maps to an item.
/// The cursor is the key with `prefix` removed.
pub(crate) async fn list_range<T>(
    state: &AppState,
    prefix: &str,
    start: String,
    end: String,
    q: &ListQuery,
    mut keep: impl FnMut(KeyValue) -> Result<Option<T>>,
) -> Result<Page<T>> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(Error::BadRequest {
            detail: format!("limit {limit} is out of range: use 1-{MAX_LIMIT}"),
            field: Some("limit".into()),
        });
    }
    let mut from = match &q.after {
        Some(a) => {
            let mut k = format!("{prefix}{a}");
            k.push('\0');
            k.max(start)
        }
        None => start,
    };
    let mut items = Vec::new();
    let mut last_key = None;
    loop {
        let chunk = (limit + 1).max(64);
        let resp = state
            .store()
            .range(RangeRequest::new(KeyRange::range(from.clone(), end.clone())).limit(chunk))
            .await?;
        let n = resp.kvs.len();
        for kv in resp.kvs {
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            if let Some(item) = keep(kv)? {
                if items.len() == limit {
                    // One more exists: the page ends at the previous item.
                    let next = last_key.map(|k: String| k[prefix.len()..].to_string());
                    return Ok(Page { items, next });
                }
                items.push(item);
                last_key = Some(key.clone());
            }
            from = key + "\0";
        }
        if !resp.more || n == 0 {
            return Ok(Page { items, next: None });
        }
    }
}

/// Lists a whole prefix (see [`list_range`]).
pub(crate) async fn list_prefix<T>(
    state: &AppState,
    prefix: &str,
    q: &ListQuery,
    keep: impl FnMut(KeyValue) -> Result<Option<T>>,
) -> Result<Page<T>> {
    list_range(state, prefix, prefix.to_string(), bump(prefix), q, keep).await
}

pub(crate) fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Result<T> {
    serde_json::from_slice(&kv.value).map_err(|e| {
        Error::Internal(format!(
            "stored value of {} does not decode: {e}",
            String::from_utf8_lossy(&kv.key)
        ))
    })
}

pub(crate) fn created<T: serde::Serialize>(value: T) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}
