//! The agent's one error type.

use std::path::PathBuf;

/// What can go wrong in the agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration mistake, naming the field.
    #[error("{field}: {problem}")]
    Config { field: String, problem: String },
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("writing the local state to {}", path.display())]
    StateWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The controller said no, or could not be reached.
    #[error("controller: {0}")]
    Controller(#[from] clos_model::Error),
    /// No desired state: the controller is unreachable and nothing was saved locally yet.
    #[error(
        "no desired state for node {node}: the controller is unreachable and {} holds no saved state yet; start the agent once while the controller is up",
        path.display()
    )]
    NoState { node: String, path: PathBuf },
    #[error(
        "the node has no ASN yet; give it one at the controller (`clos create node` assigns one from the site's host range)"
    )]
    NoAsn,
    #[error("BGP speaker: {0}")]
    Speaker(#[from] clos_bgp::driver::DriverError),
    #[error("BGP speaker configuration: {0}")]
    SpeakerConfig(#[from] clos_bgp::config::ConfigError),
    #[error("kernel: {0}")]
    Kernel(#[from] clos_dataplane::Error),
    #[error("endpoint: {0}")]
    Endpoint(String),
    #[error("control socket {}", path.display())]
    Control {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("metrics listener on {addr}")]
    Metrics {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The running agent answered a control request with an error.
    #[error("{0}")]
    Refused(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn config(field: impl Into<String>, problem: impl Into<String>) -> Error {
    Error::Config {
        field: field.into(),
        problem: problem.into(),
    }
}
