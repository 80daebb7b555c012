//! API tokens (admin only). The secret is returned once, at creation; only its hash is kept.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clos_model::{CreateToken, Page, Problem, Token, TokenCreated};
use clos_store::{KeyRange, RangeRequest};

use super::{ApiPath, ApiQuery, JsonBody, ListQuery, created, decode, list_prefix};
use crate::AppState;
use crate::auth::{self, Principal};
use crate::error::{Error, Result};
use crate::keys;

/// Lists the tokens (never their secrets).
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = Page<Token>), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list_tokens(
    p: Principal,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Token>>> {
    p.require_admin("list tokens")?;
    let page = list_prefix(&state, keys::TOKENS, &q, |kv| {
        let mut t: Token = decode(&kv)?;
        t.resource_version = kv.mod_revision;
        Ok(Some(t))
    })
    .await?;
    Ok(Json(page))
}

/// Issues a token: `admin`, `tenant` (for `tenants`) or `node` (for one `node`'s agent).
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", security(("bearer" = [])), request_body = CreateToken,
    responses((status = 201, body = TokenCreated), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn create_token(
    p: Principal,
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<Response> {
    p.require_admin("issue tokens")?;
    let req: CreateToken = body.parse()?;
    req.validate()?;
    let (token, secret) = auth::issue(
        state.store(),
        req.role,
        req.tenants,
        req.node,
        req.description,
        Vec::new(),
        Vec::new(),
    )
    .await?
    .ok_or_else(|| Error::internal("a fresh random token collided"))?;
    Ok(created(TokenCreated { token, secret }))
}

/// Revokes a token by id.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn delete_token(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response> {
    p.require_admin("revoke tokens")?;
    // Ids are hash prefixes, so the key range of the id holds the token.
    let start = keys::item(keys::TOKENS, &id);
    let end = format!("{start}\u{7f}");
    let found = state
        .store()
        .range(RangeRequest::new(KeyRange::range(start, end)).limit(2))
        .await?;
    let kv = match found.kvs.as_slice() {
        [kv] if id.len() == 16 => kv.clone(),
        _ => return Err(Error::not_found("token", id)),
    };
    state.store().delete(KeyRange::Key(kv.key)).await?;
    state.forget_token(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}
