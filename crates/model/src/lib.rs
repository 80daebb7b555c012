//! Clos API model: the resource types of the controller's HTTP API (`/v1/...`), their
//! validation, their OpenAPI schemas, and the HTTP [`Client`] that the agent and the CLI use.
//!
//! # Contracts
//!
//! * Every request type rejects unknown fields (`serde(deny_unknown_fields)`); the server
//!   answers an unknown field with a 400 problem that names it.
//! * Every resource carries a `resource_version` (the store revision of its last write). An
//!   update or delete that names a stale version fails with 409; 0 (the default) means "no
//!   precondition" on delete and "new" on create.
//! * Read-only fields (`status`, `usage`) are filled in by the server and ignored on writes.
//! * [`Resource::validate`] checks a resource on its own (names, ranges, ASNs); the server adds
//!   the checks that need state (overlaps, existence) and answers with a problem document.
//! * Every error response is an RFC 9457 [`Problem`] (`application/problem+json`).
//!
//! This crate must not depend on the server (`clos-controller`).

mod client;
mod error;
mod problem;
mod types;
mod validate;

pub use client::{Client, WatchStream};
pub use error::Error;
pub use problem::{PROBLEM_CONTENT_TYPE, Problem};
pub use types::*;
pub use validate::{validate_asn, validate_name};
