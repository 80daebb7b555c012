//! Watches tail the change log.
//!
//! Each watch is one task that reads the log from its next revision up to the latest committed
//! one, sends the matching events, then sleeps until a commit bumps the revision. History and
//! live events come from the same log read, so there is no hand-over between a "catch up"
//! phase and a "live" phase where an event could be lost or sent twice. A slow consumer only
//! holds back its own task (the channel is bounded); if compaction overtakes it, it gets
//! [`Error::Compacted`] instead of a gap.

use std::sync::Arc;

use redb::{Database, ReadableDatabase};
use tokio::sync::{mpsc, watch as notify};

use super::{LOG, META, META_COMPACTED, META_REVISION, blocking, codec, read_meta};
use crate::error::{Error, Result};
use crate::store::WatchStream;
use crate::types::{KeyRange, WatchResponse};

/// Responses buffered per watch before the task waits for the consumer.
const CHANNEL_CAPACITY: usize = 64;
/// Revisions read per blocking call, so a long replay does not hold a read transaction (and
/// its pages) for the whole history at once.
pub(super) const CHUNK: u64 = 256;

pub(super) async fn start(
    db: Arc<Database>,
    committed: notify::Receiver<u64>,
    range: KeyRange,
    from_revision: u64,
) -> Result<WatchStream> {
    let (current, compacted) = {
        let db = Arc::clone(&db);
        blocking(move || revisions(&db)).await?
    };
    let next = if from_revision == 0 {
        current + 1
    } else {
        from_revision
    };
    if next < compacted {
        return Err(Error::Compacted {
            requested: next,
            compacted,
        });
    }
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    tokio::spawn(run(db, committed, range, next, tx));
    Ok(rx)
}

async fn run(
    db: Arc<Database>,
    mut committed: notify::Receiver<u64>,
    range: KeyRange,
    mut next: u64,
    tx: mpsc::Sender<Result<WatchResponse>>,
) {
    loop {
        // Mark the value seen before reading, so a commit during the read wakes us below.
        // Every revision up to `latest` is readable: redb commits in revision order, and the
        // value is published only after its commit returned.
        let latest = *committed.borrow_and_update();
        while next <= latest {
            let end = latest.min(next.saturating_add(CHUNK - 1));
            let read = {
                let db = Arc::clone(&db);
                let range = range.clone();
                blocking(move || read_log(&db, &range, next, end)).await
            };
            match read {
                Ok(responses) => {
                    for resp in responses {
                        if tx.send(Ok(resp)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
            next = end + 1;
        }
        tokio::select! {
            changed = committed.changed() => {
                if changed.is_err() {
                    // The store was dropped; everything committed has been sent.
                    return;
                }
            }
            () = tx.closed() => return,
        }
    }
}

fn revisions(db: &Database) -> Result<(u64, u64)> {
    let rtx = db.begin_read().map_err(Error::backend("begin read"))?;
    let meta = rtx.open_table(META).map_err(Error::backend("open meta"))?;
    Ok((
        read_meta(&meta, META_REVISION)?,
        read_meta(&meta, META_COMPACTED)?,
    ))
}

/// The matching events of revisions `from..=to`, one response per revision that has any.
fn read_log(db: &Database, range: &KeyRange, from: u64, to: u64) -> Result<Vec<WatchResponse>> {
    let rtx = db.begin_read().map_err(Error::backend("begin read"))?;
    let meta = rtx.open_table(META).map_err(Error::backend("open meta"))?;
    let compacted = read_meta(&meta, META_COMPACTED)?;
    if from < compacted {
        return Err(Error::Compacted {
            requested: from,
            compacted,
        });
    }
    let log = rtx.open_table(LOG).map_err(Error::backend("open log"))?;
    let mut out = Vec::new();
    let mut expected = from;
    for entry in log.range(from..=to).map_err(Error::backend("read log"))? {
        let (rev, raw) = entry.map_err(Error::backend("read log"))?;
        let rev = rev.value();
        if rev != expected {
            break;
        }
        expected += 1;
        let events: Vec<_> = codec::decode_events(rev, raw.value())?
            .into_iter()
            .filter(|e| range.contains(e.key()))
            .collect();
        if !events.is_empty() {
            out.push(WatchResponse {
                revision: rev,
                events,
            });
        }
    }
    if expected != to + 1 {
        // Every revision since the compaction point is in the log; a hole means damage, and
        // skipping it would silently lose events.
        return Err(Error::corrupt(format!(
            "change log has no revision {expected}"
        )));
    }
    Ok(out)
}
