//! Clos store: a revisioned key-value store shaped like etcd, with an embedded redb backend.
//!
//! The controller keeps all its state here, and agents follow it with watches. The [`Store`]
//! trait is the contract; [`RedbStore`] is the default backend (one file in the data
//! directory), and an etcd backend can implement the same trait later without changing callers.
//!
//! # Data model
//!
//! * Keys and values are bytes ([`bytes::Bytes`]), ordered byte-wise.
//! * One global revision counts committed changes. Each key carries `create_revision`,
//!   `mod_revision` and `version` ([`KeyValue`]), as in etcd.
//! * [`Store::txn`] is the only write primitive (put and delete are shorthands): compares on a
//!   key's revisions, version or value choose between two lists of puts, deletes (of a key, a
//!   prefix or an interval) and gets, applied atomically as one revision. IPAM and every other
//!   read-modify-write stays correct by compare-and-swap on `mod_revision`, never by locks.
//! * [`Store::watch`] streams the changes to a range from a revision on: history, then live,
//!   each revision once, in order, never split. History is kept in a change log that survives
//!   restarts until [`Store::compact`] drops it; asking for dropped history fails with
//!   [`Error::Compacted`].
//! * Reads can be served at a past revision (down to the compaction point).
//!
//! # Durability
//!
//! A write is on disk when its future resolves `Ok`, and a crash at any point leaves either the
//! whole transaction or none of it (tested by killing a writer process with SIGKILL, see
//! `tests/crash.rs`).
//!
//! # Example
//!
//! ```
//! # use clos_store::{Compare, CompareOp, Op, RedbStore, Store, Txn};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> clos_store::Result<()> {
//! let store = RedbStore::in_memory()?;
//! let put = store.put("ipam/next".into(), "10.0.0.1".into()).await?;
//! // Hand out the address only if nobody changed the key since we read it.
//! let resp = store
//!     .txn(
//!         Txn::new()
//!             .when([Compare::mod_revision("ipam/next", CompareOp::Equal, put.revision)])
//!             .and_then([Op::put("ipam/next", "10.0.0.2")]),
//!     )
//!     .await?;
//! assert!(resp.succeeded);
//! # Ok(())
//! # }
//! ```

mod error;
mod redb_store;
mod store;
mod types;

pub use error::{BoxError, Error, Result};
pub use redb_store::{FILE_NAME, RedbStore};
pub use store::{BoxFuture, Store, WatchStream};
pub use types::{
    Compare, CompareOp, CompareTarget, DeleteResponse, Event, KeyRange, KeyValue, Op, OpResponse,
    PutResponse, RangeRequest, RangeResponse, Txn, TxnResponse, WatchResponse,
};
