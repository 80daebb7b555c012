//! The one error type of this crate. Every message says what the operator or caller should do.

use std::path::PathBuf;

/// A boxed backend error (redb today, an etcd client later), kept opaque so that the public
/// API does not change with the backend or its version.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias for store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of every [`Store`](crate::Store) operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process (or another handle in this process) has the store file open.
    #[error(
        "data directory {path} is locked by another clos controller (or another store handle \
         in this process); stop that process or give this one its own data directory"
    )]
    Locked { path: PathBuf },

    /// The data directory could not be created.
    #[error(
        "cannot create data directory {path}: {source}; check that its parent exists and is \
         writable by this user"
    )]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file holds a store layout this build does not know.
    #[error(
        "store at {path} has layout version {found}, this build understands {expected}; run the \
         clos version that wrote it, or restore a matching backup"
    )]
    Incompatible {
        path: PathBuf,
        found: u64,
        expected: u64,
    },

    /// The backend failed (I/O, disk full, damaged file...).
    #[error("store {op} failed: {source}; check free space and permissions of the data directory")]
    Backend {
        op: &'static str,
        #[source]
        source: BoxError,
    },

    /// Stored bytes do not decode: the file was damaged or written by foreign code.
    #[error("store data is corrupt ({detail}); restore the data directory from a backup")]
    Corrupt { detail: String },

    /// History before `compacted` has been discarded by [`Store::compact`](crate::Store::compact).
    #[error(
        "revision {requested} has been compacted (the oldest retained revision is {compacted}); \
         list the current state again and watch from the revision that list returns plus one"
    )]
    Compacted { requested: u64, compacted: u64 },

    /// A read or compaction asked for a revision that does not exist yet.
    #[error(
        "revision {requested} is in the future (the current revision is {current}); ask for \
         a revision no newer than the current one"
    )]
    FutureRevision { requested: u64, current: u64 },

    /// The request itself is malformed; fix the caller.
    #[error("invalid store request: {reason}")]
    InvalidRequest { reason: &'static str },

    /// The async runtime is shutting down, so the operation did not run (or its outcome is
    /// unknown for a write).
    #[error("the store is shutting down; retry against the restarted process")]
    ShuttingDown,
}

impl Error {
    /// Wraps a backend error with the operation it interrupted.
    pub(crate) fn backend<E: Into<redb::Error>>(op: &'static str) -> impl FnOnce(E) -> Error {
        move |e| Error::Backend {
            op,
            source: Box::new(e.into()),
        }
    }

    pub(crate) fn corrupt(detail: impl Into<String>) -> Error {
        Error::Corrupt {
            detail: detail.into(),
        }
    }
}
