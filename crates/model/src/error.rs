//! The one error type of this crate: validation failures and client failures.

use crate::problem::Problem;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A resource or request failed validation; `field` is a JSON path like `asn_plan.spine_asn`.
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },

    /// The server answered with a problem document.
    #[error("{0}")]
    Api(Box<Problem>),

    /// The server could not be reached or the connection broke.
    #[error("cannot reach the controller at {url}: {reason}; check --server and that it runs")]
    Transport { url: String, reason: String },

    /// The server answered something that is not what the API promises.
    #[error(
        "unexpected answer from {url}: {reason}; check that --server points at a clos controller of a matching version"
    )]
    Decode { url: String, reason: String },

    /// The base URL is not usable.
    #[error("invalid server URL {url:?}: {reason}")]
    Url { url: String, reason: String },
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The problem document, if the server sent one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Api(p) => Some(p),
            _ => None,
        }
    }

    /// HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        self.problem().map(|p| p.status)
    }
}
