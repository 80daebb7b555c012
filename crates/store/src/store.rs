//! The [`Store`] trait: what the controller needs from its key-value store, shaped like etcd.
//!
//! Methods return boxed futures so that callers can hold an `Arc<dyn Store>` and pick the
//! backend (redb today, etcd later) from configuration at run time. The futures are `Send`.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::types::{
    DeleteResponse, KeyRange, KeyValue, Op, OpResponse, PutResponse, RangeRequest, RangeResponse,
    Txn, TxnResponse, WatchResponse,
};

/// A `Send` future borrowed from the store.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A watch: one [`WatchResponse`] per revision with matching events, in revision order.
///
/// An `Err` item (for example [`Error::Compacted`] when the watcher fell behind a compaction) is
/// the last one. The stream also ends (`None`) when the store is dropped. Dropping the receiver
/// cancels the watch.
pub type WatchStream = mpsc::Receiver<Result<WatchResponse>>;

/// A revisioned key-value store with compare-and-swap transactions and watches.
///
/// # Contract
///
/// * The store has one global revision. Every transaction that changes at least one key
///   (a put, or a delete that removed something) commits atomically as the next revision;
///   transactions that change nothing (reads, failed guards without writes, deletes of absent
///   keys) leave the revision alone, as in etcd.
/// * A write is durable when its future resolves `Ok`. If the future is dropped or fails with
///   a backend error, the write may or may not have happened: read, then retry with a guard.
/// * Transactions are serializable: the compares and every op see one consistent state, and
///   nothing else interleaves. Correctness under concurrency comes from compare-and-swap
///   (guards on `mod_revision` or `version`), never from locks held by callers.
/// * A watch delivers every change to its range from `from_revision` on, history first and
///   then live, in revision order, each revision exactly once and never split. After a
///   disconnect, watching again from the last seen revision + 1 loses and repeats nothing,
///   unless that history was compacted, which fails with [`Error::Compacted`].
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Reads a range of keys, at the current revision or at `req.revision`.
    fn range(&self, req: RangeRequest) -> BoxFuture<'_, Result<RangeResponse>>;

    /// Applies `if all(compares) { success } else { failure }` atomically.
    fn txn(&self, txn: Txn) -> BoxFuture<'_, Result<TxnResponse>>;

    /// Watches `range` from `from_revision` (inclusive); 0 means "changes after now".
    ///
    /// Fails at once with [`Error::Compacted`] if `from_revision` is older than the compaction
    /// point. A `from_revision` in the future is allowed: events start when it is reached.
    fn watch(&self, range: KeyRange, from_revision: u64) -> BoxFuture<'_, Result<WatchStream>>;

    /// Discards history older than `revision`: afterwards reads at revisions below it and
    /// watches from below it fail with [`Error::Compacted`]. Current keys are untouched.
    /// Compacting to an already compacted revision is a no-op.
    fn compact(&self, revision: u64) -> BoxFuture<'_, Result<()>>;

    /// The current revision (0 for an empty, never written store).
    fn revision(&self) -> BoxFuture<'_, Result<u64>>;

    /// Reads one key.
    fn get(&self, key: Bytes) -> BoxFuture<'_, Result<Option<KeyValue>>> {
        Box::pin(async move {
            let resp = self.range(RangeRequest::new(KeyRange::Key(key))).await?;
            Ok(resp.kvs.into_iter().next())
        })
    }

    /// Writes one key unconditionally.
    fn put(&self, key: Bytes, value: Bytes) -> BoxFuture<'_, Result<PutResponse>> {
        Box::pin(async move {
            let resp = self
                .txn(Txn::new().and_then([Op::Put { key, value }]))
                .await?;
            match resp.responses.into_iter().next() {
                Some(OpResponse::Put { prev }) => Ok(PutResponse {
                    revision: resp.revision,
                    prev,
                }),
                _ => Err(Error::corrupt("backend answered a put with another op")),
            }
        })
    }

    /// Deletes every key in `range` unconditionally.
    fn delete(&self, range: KeyRange) -> BoxFuture<'_, Result<DeleteResponse>> {
        Box::pin(async move {
            let resp = self.txn(Txn::new().and_then([Op::Delete(range)])).await?;
            match resp.responses.into_iter().next() {
                Some(OpResponse::Delete { deleted }) => Ok(DeleteResponse {
                    revision: resp.revision,
                    deleted,
                }),
                _ => Err(Error::corrupt("backend answered a delete with another op")),
            }
        })
    }
}
