//! The one error type of the controller, and the one place where errors become RFC 9457
//! problem documents. Internal failures (store, corruption, bugs) are logged with their detail
//! and answered with a generic 500/503 that hides it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clos_model::{PROBLEM_CONTENT_TYPE, Problem};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no {kind} named {name}")]
    NotFound { kind: &'static str, name: String },

    #[error("{kind} {name} already exists")]
    Exists { kind: &'static str, name: String },

    #[error("{kind} {name} is at resource_version {current}, not {given}")]
    Stale {
        kind: &'static str,
        name: String,
        given: u64,
        current: u64,
    },

    #[error("{detail}")]
    Conflict { detail: String, hint: &'static str },

    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },

    /// Malformed request: bad JSON, unknown field, bad query or path parameter.
    #[error("{detail}")]
    BadRequest {
        detail: String,
        field: Option<String>,
    },

    #[error("missing or invalid bearer token")]
    Unauthenticated,

    #[error("this token may not {action}")]
    Forbidden { action: &'static str },

    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },

    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },

    #[error(
        "the desired-state history from revision {requested} is gone (oldest kept: {compacted})"
    )]
    Gone { requested: u64, compacted: u64 },

    #[error(transparent)]
    Ipam(#[from] clos_ipam::Error),

    #[error(transparent)]
    Store(#[from] clos_store::Error),

    /// Compare-and-swap kept failing (another writer keeps winning).
    #[error("too much contention on the IPAM state")]
    Busy,

    #[error("internal error: {0}")]
    Internal(String),
}

impl From<clos_model::Error> for Error {
    fn from(e: clos_model::Error) -> Self {
        match e {
            clos_model::Error::Invalid { field, reason } => Error::Invalid { field, reason },
            other => Error::Internal(other.to_string()),
        }
    }
}

impl Error {
    pub(crate) fn not_found(kind: &'static str, name: impl Into<String>) -> Error {
        Error::NotFound {
            kind,
            name: name.into(),
        }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Error {
        Error::Internal(e.to_string())
    }

    /// The problem document for this error: (status, type slug, title, detail, hint, field).
    pub fn problem(&self) -> Problem {
        use clos_ipam::Error as I;
        let (status, slug, title, hint): (StatusCode, &str, &str, &str) = match self {
            Error::NotFound { .. } => (
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                "check the name, or list the collection",
            ),
            Error::Exists { .. } => (
                StatusCode::CONFLICT,
                "already-exists",
                "Already exists",
                "pick another name, or delete the existing one first",
            ),
            Error::Stale { .. } => (
                StatusCode::CONFLICT,
                "stale-resource-version",
                "Stale resource version",
                "read the resource again, reapply your change, and retry with its resource_version",
            ),
            Error::Conflict { hint, .. } => (StatusCode::CONFLICT, "conflict", "Conflict", hint),
            Error::Invalid { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-field",
                "Invalid field",
                "fix the named field and retry",
            ),
            Error::BadRequest { .. } => (
                StatusCode::BAD_REQUEST,
                "bad-request",
                "Malformed request",
                "check the request against /v1/openapi.json",
            ),
            Error::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Unauthenticated",
                "send 'Authorization: Bearer <token>' with a token an admin issued",
            ),
            Error::Forbidden { .. } => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "Forbidden",
                "ask an admin for a token with the right role",
            ),
            Error::NoRoute { .. } => (
                StatusCode::NOT_FOUND,
                "no-route",
                "Not found",
                "see /v1/openapi.json for the routes of this API",
            ),
            Error::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "see /v1/openapi.json for the methods of this route",
            ),
            Error::Gone { .. } => (
                StatusCode::GONE,
                "revision-compacted",
                "Revision compacted",
                "GET the current desired state and watch from its revision + 1",
            ),
            Error::Ipam(e) => match e {
                I::InvalidName { .. }
                | I::InvalidOwner { .. }
                | I::NotCanonical { .. }
                | I::InvalidBlockSize { .. }
                | I::InvalidPrefixLen { .. }
                | I::InvalidGateway { .. }
                | I::AddressOutsideScope { .. }
                | I::SubnetOutsidePool { .. }
                | I::WrongPoolKind { .. } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-request",
                    "Invalid request",
                    "fix the request as the detail says",
                ),
                I::PoolExists { .. } | I::SubnetExists { .. } | I::NodeExists { .. } => (
                    StatusCode::CONFLICT,
                    "already-exists",
                    "Already exists",
                    "pick another name, or delete the existing one first",
                ),
                I::UnknownPool { .. }
                | I::UnknownSubnet { .. }
                | I::UnknownNode { .. }
                | I::UnknownOwner { .. }
                | I::UnknownAddress { .. } => (
                    StatusCode::NOT_FOUND,
                    "not-found",
                    "Not found",
                    "check the name, or list the collection",
                ),
                I::PoolOverlap { .. } | I::SubnetOverlap { .. } => (
                    StatusCode::CONFLICT,
                    "overlap",
                    "Overlapping range",
                    "pick a free range, or ask for the next free prefix with prefix_len",
                ),
                I::PoolInUse { .. } | I::ScopeInUse { .. } | I::NodeInUse { .. } => (
                    StatusCode::CONFLICT,
                    "in-use",
                    "Still in use",
                    "release or delete what it still holds first",
                ),
                I::PoolExhausted { .. }
                | I::Exhausted { .. }
                | I::NoFreeBlock { .. }
                | I::LimitExceeded { .. } => (
                    StatusCode::CONFLICT,
                    "exhausted",
                    "Exhausted",
                    "release unused addresses or subnets, or add capacity",
                ),
                I::AddressInUse { .. }
                | I::AddressReserved { .. }
                | I::OwnerOnOtherNode { .. }
                | I::OwnerHasOtherAddress { .. } => (
                    StatusCode::CONFLICT,
                    "address-conflict",
                    "Address conflict",
                    "pick another address or release the existing one first",
                ),
                I::Corrupt { .. } | I::InvalidRecord { .. } => internal(),
            },
            Error::Store(clos_store::Error::ShuttingDown) | Error::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "retry in a moment",
            ),
            Error::Store(_) | Error::Internal(_) => internal(),
        };
        let detail = match self {
            Error::Ipam(I::Corrupt { .. } | I::InvalidRecord { .. })
            | Error::Store(_)
            | Error::Internal(_) => {
                "the controller failed to process the request; the failure is in its log"
                    .to_string()
            }
            Error::Busy => "the IPAM state changed under this request too often".to_string(),
            other => other.to_string(),
        };
        // The allocator's messages carry their own remedy ("...: pick another address"): it
        // becomes the hint, so the document says it once. The IPv6 part of a dual-stack subnet
        // is named after the subnet.
        let (detail, hint) = match self {
            Error::Ipam(I::Corrupt { .. } | I::InvalidRecord { .. }) => (detail, hint.to_string()),
            Error::Ipam(_) => {
                let detail =
                    detail.replace(&format!("subnet {}", crate::convert::V6_PART), "subnet ");
                match split_remedy(&detail) {
                    Some((fact, remedy)) => (fact.to_string(), remedy.to_string()),
                    None => (detail.clone(), hint.to_string()),
                }
            }
            _ => (detail, hint.to_string()),
        };
        let field = match self {
            Error::Invalid { field, .. } => Some(field.clone()),
            Error::BadRequest { field, .. } => field.clone(),
            _ => None,
        };
        Problem {
            type_: format!("urn:clos:problem:{slug}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail,
            hint: Some(hint),
            field,
        }
    }
}

/// Splits "fact: remedy" at the last ": " (not the "::" of an IPv6 address); a remedy that
/// starts with more facts ("3 allocated; release ...") keeps them in the fact.
fn split_remedy(msg: &str) -> Option<(&str, &str)> {
    let at = msg
        .rmatch_indices(": ")
        .map(|(i, _)| i)
        .find(|&i| i == 0 || msg.as_bytes()[i - 1] != b':')?;
    let (fact, remedy) = (&msg[..at], &msg[at + 2..]);
    match remedy.rfind("; ") {
        Some(j) => Some((&msg[..at + 2 + j], &remedy[j + 2..])),
        None => Some((fact, remedy)),
    }
}

fn internal() -> (StatusCode, &'static str, &'static str, &'static str) {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal error",
        "retry later; if it persists, an operator should read the controller's log",
    )
}

/// Renders a problem document as a response.
pub(crate) fn problem_response(p: &Problem) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(p).unwrap_or_default();
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    resp
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let p = self.problem();
        if p.status >= 500 {
            tracing::error!(error = %self, "request failed");
        }
        problem_response(&p)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
