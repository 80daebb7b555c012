//! The embedded backend: one redb file in the data directory.
//!
//! # Layout
//!
//! * `kv`: key -> metadata and value (the current state).
//! * `log`: revision -> every event of that revision, with each key's previous state. Watches
//!   replay it, and reads at past revisions undo it; [`Store::compact`] trims its head.
//! * `meta`: the current revision, the compaction point and the layout version.
//!
//! A transaction updates all three in one redb write transaction committed with
//! [`Durability::Immediate`], so after a crash the file holds either all of a revision or none
//! of it, and the log has every revision from the compaction point to the current one.
//!
//! redb is synchronous: every operation runs on tokio's blocking pool. redb admits one write
//! transaction at a time, which serializes transactions without any lock of ours. A write
//! whose future is dropped still runs to its end (commit or not) on the pool.
//!
//! Watches are in [`watch`]: they read history from the log and live commits from memory.
//!
//! # Reads at past revisions
//!
//! A read at revision `r` reads the current state and undoes, newest first, the logged events
//! after `r` that touch the range. It costs the size of the range plus the events since `r`.

mod codec;
mod watch;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition,
    WriteTransaction,
};
use tokio::sync::broadcast;

use crate::error::{Error, Result};
use crate::store::{BoxFuture, Store, WatchStream};
use crate::types::{
    Event, KeyRange, KeyValue, Op, OpResponse, RangeRequest, RangeResponse, Txn, TxnResponse,
};

const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const META_REVISION: &str = "revision";
/// Log entries below this revision are gone.
const META_COMPACTED: &str = "compacted";
const META_LAYOUT: &str = "layout";
/// Bump when the tables or the codec change incompatibly.
const LAYOUT_VERSION: u64 = 1;

/// File name of the store inside the data directory.
pub const FILE_NAME: &str = "store.redb";

/// The embedded [`Store`]: cheap to clone, every clone shares one open database.
#[derive(Clone, Debug)]
pub struct RedbStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Arc<Database>,
    /// Every commit's events, for live watchers. Watch tasks hold receivers but not `Inner`,
    /// so dropping the last `RedbStore` closes the channel and ends their streams.
    committed: broadcast::Sender<Arc<watch::Committed>>,
}

impl RedbStore {
    /// Opens (or creates) the store in `data_dir`, creating the directory if needed.
    ///
    /// Fails with [`Error::Locked`] while another process or handle has it open. The file
    /// stays open until every clone of the store and every watch stream is dropped. Opening
    /// after a crash may take a while: redb repairs the file first.
    pub async fn open(data_dir: impl AsRef<Path>) -> Result<Self> {
        let dir = data_dir.as_ref().to_path_buf();
        let path = dir.join(FILE_NAME);
        let db = blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|source| Error::CreateDir {
                path: dir.clone(),
                source,
            })?;
            let db = Database::create(&path).map_err(|e| match e {
                DatabaseError::DatabaseAlreadyOpen => Error::Locked { path: dir.clone() },
                e => Error::backend("open")(e),
            })?;
            let revision = init(&db, &path)?;
            tracing::info!(path = %path.display(), revision, "opened store");
            Ok(db)
        })
        .await?;
        Ok(Self::from_db(db))
    }

    /// A store that lives in memory only, for tests and tools: same semantics, no durability.
    pub fn in_memory() -> Result<Self> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(Error::backend("create in-memory database"))?;
        init(&db, Path::new("<memory>"))?;
        Ok(Self::from_db(db))
    }

    fn from_db(db: Database) -> Self {
        let (committed, _) = broadcast::channel(watch::BROADCAST_CAPACITY);
        RedbStore {
            inner: Arc::new(Inner {
                db: Arc::new(db),
                committed,
            }),
        }
    }

    /// Runs `f` against the database on the blocking pool.
    async fn with_db<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T> + Send + 'static,
    {
        let db = Arc::clone(&self.inner.db);
        blocking(move || f(&db)).await
    }
}

/// Runs blocking redb work off the async threads. A panic inside is re-raised here.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::ShuttingDown),
    }
}

/// Creates the tables on first open and checks the layout version; returns the revision.
fn init(db: &Database, path: &Path) -> Result<u64> {
    let wtx = begin_write(db)?;
    let revision = {
        wtx.open_table(KV)
            .map_err(Error::backend("create tables"))?;
        wtx.open_table(LOG)
            .map_err(Error::backend("create tables"))?;
        let mut meta = wtx
            .open_table(META)
            .map_err(Error::backend("create tables"))?;
        match read_meta(&meta, META_LAYOUT)? {
            0 => {
                meta.insert(META_LAYOUT, LAYOUT_VERSION)
                    .map_err(Error::backend("create tables"))?;
            }
            LAYOUT_VERSION => {}
            found => {
                return Err(Error::Incompatible {
                    path: path.to_path_buf(),
                    found,
                    expected: LAYOUT_VERSION,
                });
            }
        }
        read_meta(&meta, META_REVISION)?
    };
    wtx.commit().map_err(Error::backend("create tables"))?;
    Ok(revision)
}

fn begin_write(db: &Database) -> Result<WriteTransaction> {
    let mut wtx = db.begin_write().map_err(Error::backend("begin write"))?;
    // The default already, but the contract depends on it, so say it.
    wtx.set_durability(Durability::Immediate)
        .map_err(Error::backend("set durability"))?;
    Ok(wtx)
}

fn read_meta(meta: &impl ReadableTable<&'static str, u64>, key: &str) -> Result<u64> {
    Ok(meta
        .get(key)
        .map_err(Error::backend("read meta"))?
        .map_or(0, |g| g.value()))
}

fn get_kv(
    kv: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &[u8],
) -> Result<Option<KeyValue>> {
    match kv.get(key).map_err(Error::backend("read key"))? {
        Some(raw) => Ok(Some(codec::decode_kv(key, raw.value())?)),
        None => Ok(None),
    }
}

/// Keys in `range` in order; at most `limit` of them, plus whether more exist.
fn scan(
    kv: &impl ReadableTable<&'static [u8], &'static [u8]>,
    range: &KeyRange,
    limit: Option<usize>,
) -> Result<(Vec<KeyValue>, bool)> {
    let mut out = Vec::new();
    if range.is_empty() {
        return Ok((out, false));
    }
    let (lo, hi) = range.bounds();
    let bounds = (as_slice(&lo), as_slice(&hi));
    for entry in kv.range::<&[u8]>(bounds).map_err(Error::backend("range"))? {
        let (k, v) = entry.map_err(Error::backend("range"))?;
        if limit.is_some_and(|l| out.len() >= l) {
            return Ok((out, true));
        }
        out.push(codec::decode_kv(k.value(), v.value())?);
    }
    Ok((out, false))
}

fn as_slice(b: &Bound<Bytes>) -> Bound<&[u8]> {
    b.as_ref().map(|b| b.as_ref())
}

/// Reads `req` in one read transaction, so the result is one consistent snapshot.
fn read_range(db: &Database, req: &RangeRequest) -> Result<RangeResponse> {
    let rtx = db.begin_read().map_err(Error::backend("begin read"))?;
    let meta = rtx.open_table(META).map_err(Error::backend("open meta"))?;
    let current = read_meta(&meta, META_REVISION)?;
    let kv = rtx.open_table(KV).map_err(Error::backend("open kv"))?;
    let at = match req.revision {
        None | Some(0) => current,
        Some(r) if r > current => {
            return Err(Error::FutureRevision {
                requested: r,
                current,
            });
        }
        Some(r) => {
            let compacted = read_meta(&meta, META_COMPACTED)?;
            if r < compacted {
                return Err(Error::Compacted {
                    requested: r,
                    compacted,
                });
            }
            r
        }
    };
    if at == current {
        let (kvs, more) = scan(&kv, &req.range, req.limit)?;
        return Ok(RangeResponse {
            kvs,
            more,
            revision: at,
        });
    }

    // The state at `at` is the current state with every later event undone. Walking the log
    // newest first, the last undo written for a key is the oldest, which is its state at `at`.
    let mut undo: BTreeMap<Bytes, Option<KeyValue>> = BTreeMap::new();
    let log = rtx.open_table(LOG).map_err(Error::backend("open log"))?;
    let entries = log
        .range(at + 1..=current)
        .map_err(Error::backend("read log"))?;
    for entry in entries.rev() {
        let (rev, raw) = entry.map_err(Error::backend("read log"))?;
        for event in codec::decode_events(rev.value(), raw.value())?
            .into_iter()
            .rev()
        {
            if req.range.contains(event.key()) {
                undo.insert(event.key().clone(), event.prev().cloned());
            }
        }
    }
    let (now, _) = scan(&kv, &req.range, None)?;
    let mut state: BTreeMap<Bytes, KeyValue> =
        now.into_iter().map(|kv| (kv.key.clone(), kv)).collect();
    for (key, prev) in undo {
        match prev {
            Some(prev) => state.insert(key, prev),
            None => state.remove(&key),
        };
    }
    let mut kvs: Vec<KeyValue> = state.into_values().collect();
    let more = req.limit.is_some_and(|l| kvs.len() > l);
    if let Some(l) = req.limit {
        kvs.truncate(l);
    }
    Ok(RangeResponse {
        kvs,
        more,
        revision: at,
    })
}

/// Applies `txn` in one write transaction; commits only if it changed something.
fn apply_txn(db: &Database, txn: &Txn) -> Result<(TxnResponse, Vec<Event>)> {
    validate(txn)?;
    let wtx = begin_write(db)?;
    let (response, events) = {
        let mut meta = wtx.open_table(META).map_err(Error::backend("open meta"))?;
        let mut kv = wtx.open_table(KV).map_err(Error::backend("open kv"))?;
        let current = read_meta(&meta, META_REVISION)?;
        let revision = current + 1;

        let mut succeeded = true;
        for cmp in &txn.compares {
            if !cmp.evaluate(get_kv(&kv, &cmp.key)?.as_ref()) {
                succeeded = false;
                break;
            }
        }
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let mut events = Vec::new();
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            responses.push(apply_op(&mut kv, op, revision, &mut events)?);
        }
        let changed = !events.is_empty();
        let final_revision = if changed { revision } else { current };
        for r in &mut responses {
            if let OpResponse::Get(get) = r {
                get.revision = final_revision;
            }
        }
        if changed {
            let mut log = wtx.open_table(LOG).map_err(Error::backend("open log"))?;
            log.insert(revision, codec::encode_events(&events).as_slice())
                .map_err(Error::backend("append log"))?;
            meta.insert(META_REVISION, revision)
                .map_err(Error::backend("write meta"))?;
        }
        let response = TxnResponse {
            succeeded,
            revision: final_revision,
            responses,
        };
        (response, events)
    };
    if !events.is_empty() {
        wtx.commit().map_err(Error::backend("commit"))?;
    } else {
        // Nothing to write: skip the fsync and leave the revision alone.
        wtx.abort().map_err(Error::backend("abort"))?;
    }
    Ok((response, events))
}

fn validate(txn: &Txn) -> Result<()> {
    for op in txn.success.iter().chain(&txn.failure) {
        match op {
            Op::Put { key, .. } if key.is_empty() => {
                return Err(Error::InvalidRequest {
                    reason: "a put needs a non-empty key",
                });
            }
            Op::Get(req) if req.revision.is_some() => {
                return Err(Error::InvalidRequest {
                    reason: "a get inside a transaction reads the transaction's own state; \
                             leave its revision unset",
                });
            }
            _ => {}
        }
    }
    Ok(())
}

fn apply_op(
    kv: &mut Table<&'static [u8], &'static [u8]>,
    op: &Op,
    revision: u64,
    events: &mut Vec<Event>,
) -> Result<OpResponse> {
    match op {
        Op::Put { key, value } => {
            let prev = get_kv(kv, key)?;
            let new = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: prev.as_ref().map_or(revision, |p| p.create_revision),
                mod_revision: revision,
                version: prev.as_ref().map_or(1, |p| p.version + 1),
            };
            kv.insert(key.as_ref(), codec::encode_kv_value(&new).as_slice())
                .map_err(Error::backend("put"))?;
            events.push(Event::Put {
                kv: new,
                prev: prev.clone(),
            });
            Ok(OpResponse::Put { prev })
        }
        Op::Delete(range) => {
            let (deleted, _) = scan(kv, range, None)?;
            for prev in &deleted {
                kv.remove(prev.key.as_ref())
                    .map_err(Error::backend("delete"))?;
                events.push(Event::Delete {
                    key: prev.key.clone(),
                    revision,
                    prev: prev.clone(),
                });
            }
            Ok(OpResponse::Delete { deleted })
        }
        Op::Get(req) => {
            let (kvs, more) = scan(kv, &req.range, req.limit)?;
            Ok(OpResponse::Get(RangeResponse {
                kvs,
                more,
                // Filled in once the transaction knows its final revision.
                revision: 0,
            }))
        }
    }
}

fn compact(db: &Database, revision: u64) -> Result<()> {
    let wtx = begin_write(db)?;
    {
        let mut meta = wtx.open_table(META).map_err(Error::backend("open meta"))?;
        let current = read_meta(&meta, META_REVISION)?;
        if revision > current {
            return Err(Error::FutureRevision {
                requested: revision,
                current,
            });
        }
        if revision <= read_meta(&meta, META_COMPACTED)? {
            return Ok(());
        }
        let mut log = wtx.open_table(LOG).map_err(Error::backend("open log"))?;
        log.retain_in(..revision, |_, _| false)
            .map_err(Error::backend("compact log"))?;
        meta.insert(META_COMPACTED, revision)
            .map_err(Error::backend("write meta"))?;
    }
    wtx.commit().map_err(Error::backend("commit"))?;
    tracing::debug!(revision, "compacted store history");
    Ok(())
}

fn current_revision(db: &Database) -> Result<u64> {
    let rtx = db.begin_read().map_err(Error::backend("begin read"))?;
    let meta = rtx.open_table(META).map_err(Error::backend("open meta"))?;
    read_meta(&meta, META_REVISION)
}

impl Store for RedbStore {
    fn range(&self, req: RangeRequest) -> BoxFuture<'_, Result<RangeResponse>> {
        Box::pin(self.with_db(move |db| read_range(db, &req)))
    }

    fn txn(&self, txn: Txn) -> BoxFuture<'_, Result<TxnResponse>> {
        let inner = Arc::clone(&self.inner);
        Box::pin(blocking(move || {
            let (resp, events) = apply_txn(&inner.db, &txn)?;
            if !events.is_empty() {
                // Published from the blocking task, not after the await, so watchers hear of
                // the commit even if the caller dropped this future. An error only means that
                // nobody is watching.
                let _ = inner.committed.send(Arc::new(watch::Committed {
                    revision: resp.revision,
                    events,
                }));
            }
            Ok(resp)
        }))
    }

    fn watch(&self, range: KeyRange, from_revision: u64) -> BoxFuture<'_, Result<WatchStream>> {
        Box::pin(watch::start(
            Arc::clone(&self.inner.db),
            self.inner.committed.subscribe(),
            range,
            from_revision,
        ))
    }

    fn compact(&self, revision: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            // Watchers need no wake-up: a caught-up one waits for revisions after the
            // compaction point, and one behind finds out at its next log read.
            self.with_db(move |db| compact(db, revision)).await
        })
    }

    fn revision(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(self.with_db(current_revision))
    }
}

#[cfg(test)]
mod tests;
