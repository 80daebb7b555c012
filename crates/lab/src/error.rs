//! The lab's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {problem}")]
    Topology { field: String, problem: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },

    #[error("the controller: {0}")]
    Api(#[from] clos_model::Error),

    #[error("no lab state in {}: run `clos lab up` first", .0.display())]
    NoLab(PathBuf),

    #[error("{0}")]
    Invalid(String),

    #[error("{what} did not happen within {seconds} s: {last}")]
    Timeout {
        what: String,
        seconds: u64,
        last: String,
    },

    #[error("{process} exited: {detail}")]
    Died { process: String, detail: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn topology(field: impl Into<String>, problem: impl Into<String>) -> Error {
        Error::Topology {
            field: field.into(),
            problem: problem.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
