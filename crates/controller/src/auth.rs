//! Authentication (bearer tokens) and the authorization checks the handlers call.
//!
//! * A token is 32 random bytes in hex. Only its SHA-256 is stored (`tokens/<hash>`), with its
//!   role: `admin` (everything), `tenant` (the subnets and addresses of its tenants, and the
//!   pools to carve them from), or `node` (its own node's registration, heartbeat and desired
//!   state).
//! * At first start (no `meta/bootstrap` key) an admin token is created; its secret is returned
//!   to the caller once and never stored.
//! * Every handler takes a [`Principal`] first, so a request without a valid token fails with
//!   401 before anything else is looked at. A role that may not call a route at all gets 403;
//!   a tenant asking for another tenant's object gets the same 404 as for a missing one.
//! * Verified tokens are cached in memory; deleting a token through this controller drops it
//!   from the cache.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use clos_model::{Token, TokenRole};
use clos_store::{Compare, Op, Store, Txn};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::{Error, Result};
use crate::keys;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token: Token,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.token.role == TokenRole::Admin
    }

    pub fn require_admin(&self, action: &'static str) -> Result<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Error::Forbidden { action })
        }
    }

    /// May act on objects of `tenant`.
    pub fn tenant_allowed(&self, tenant: &str) -> bool {
        self.is_admin()
            || (self.token.role == TokenRole::Tenant
                && self.token.tenants.iter().any(|t| t == tenant))
    }

    /// May read or write tenant-scoped things at all (admin or tenant token).
    pub fn require_tenant_role(&self, action: &'static str) -> Result<()> {
        match self.token.role {
            TokenRole::Admin | TokenRole::Tenant => Ok(()),
            TokenRole::Node => Err(Error::Forbidden { action }),
        }
    }

    /// May act as the agent of `node`.
    pub fn node_allowed(&self, node: &str) -> bool {
        self.is_admin()
            || (self.token.role == TokenRole::Node && self.token.node.as_deref() == Some(node))
    }

    /// The tenant of a floating/anycast address is the first segment of its owner id
    /// (`tenant/...`); a tenant token may only use owner ids of its own tenants.
    pub fn owner_allowed(&self, owner_id: &str) -> bool {
        self.is_admin() || owner_tenant(owner_id).is_some_and(|t| self.tenant_allowed(t))
    }
}

pub fn owner_tenant(owner_id: &str) -> Option<&str> {
    owner_id.split_once('/').map(|(t, _)| t)
}

pub fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn new_secret() -> Result<String> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).map_err(Error::internal)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Stores a new token and returns it with its secret.
pub async fn issue(
    store: &dyn Store,
    role: TokenRole,
    tenants: Vec<String>,
    node: Option<String>,
    description: String,
    extra: Vec<Compare>,
    extra_ops: Vec<Op>,
) -> Result<Option<(Token, String)>> {
    let secret = new_secret()?;
    let h = hash(&secret);
    let token = Token {
        id: h[..16].to_string(),
        role,
        tenants,
        node,
        description,
        resource_version: 0,
    };
    let key = keys::item(keys::TOKENS, &h);
    let mut ops = vec![Op::put(
        key.clone(),
        serde_json::to_vec(&token).map_err(Error::internal)?,
    )];
    ops.extend(extra_ops);
    let resp = store
        .txn(
            Txn::new()
                .when(extra.into_iter().chain([Compare::absent(key)]))
                .and_then(ops),
        )
        .await?;
    if !resp.succeeded {
        return Ok(None);
    }
    let mut token = token;
    token.resource_version = resp.revision;
    Ok(Some((token, secret)))
}

/// Issues the first admin token if this store never had one; returns its secret.
pub async fn bootstrap(store: &dyn Store) -> Result<Option<String>> {
    let issued = issue(
        store,
        TokenRole::Admin,
        Vec::new(),
        None,
        "bootstrap admin token".into(),
        vec![Compare::absent(keys::BOOTSTRAP)],
        vec![Op::put(keys::BOOTSTRAP, "")],
    )
    .await?;
    Ok(issued.map(|(_, secret)| secret))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(Error::Unauthenticated)?;
        let secret = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(Error::Unauthenticated)?;
        let h = hash(secret);
        if let Some(token) = state.cached_token(&h) {
            return Ok(Principal { token });
        }
        let kv = state
            .store()
            .get(keys::item(keys::TOKENS, &h).into())
            .await?
            .ok_or(Error::Unauthenticated)?;
        let mut token: Token = serde_json::from_slice(&kv.value).map_err(Error::internal)?;
        token.resource_version = kv.mod_revision;
        state.cache_token(h, token.clone());
        Ok(Principal { token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_hashes_stable() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(owner_tenant("acme/vm-1"), Some("acme"));
        assert_eq!(owner_tenant("vm-1"), None);
    }
}
