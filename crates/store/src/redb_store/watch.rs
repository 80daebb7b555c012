//! Watches: catch up from the change log, then follow commits in memory.
//!
//! Every commit publishes its events on a broadcast channel. A watch task subscribes *before*
//! it first reads the log, so every revision is in the log, on the channel, or both. The task
//! keeps one cursor, `next`, the first revision it has not sent, and decides everything by it:
//!
//! * a broadcast revision below `next` was already sent from the log: skip it;
//! * one above `next` means a hole (commits can publish out of order, or the task had only
//!   just subscribed): fill it from the log first;
//! * a lagged channel (a slow consumer held the task back) falls back to the log.
//!
//! So nothing is lost or sent twice, and an up-to-date watcher costs no disk read per commit.
//! A slow consumer only holds back its own task (its channel is bounded); if compaction
//! overtakes it, it gets [`Error::Compacted`] instead of a gap.

use std::sync::Arc;

use redb::{Database, ReadableDatabase};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;

use super::{LOG, META, META_COMPACTED, META_REVISION, blocking, codec, read_meta};
use crate::error::{Error, Result};
use crate::store::WatchStream;
use crate::types::{Event, KeyRange, WatchResponse};

/// Responses buffered per watch before its task waits for the consumer.
const CHANNEL_CAPACITY: usize = 64;
/// Commits kept for live watchers; one further behind reads the log instead.
pub(super) const BROADCAST_CAPACITY: usize = 1024;
/// Revisions read per blocking call, so a long replay does not hold one read transaction (and
/// its pages) for the whole history.
pub(super) const CHUNK: u64 = 256;

/// The events of one committed revision, as published to live watchers.
#[derive(Debug)]
pub(super) struct Committed {
    pub(super) revision: u64,
    pub(super) events: Vec<Event>,
}

/// `live` must have been subscribed before this call, so no commit falls between it and the
/// first log read.
pub(super) async fn start(
    db: Arc<Database>,
    live: broadcast::Receiver<Arc<Committed>>,
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
    let watcher = Watcher {
        db,
        range,
        next,
        tx,
    };
    tokio::spawn(watcher.run(live));
    Ok(rx)
}

/// The watch is over: the consumer left, or it was sent an error.
struct Stop;

struct Watcher {
    db: Arc<Database>,
    range: KeyRange,
    /// The first revision not yet sent (or skipped as not matching).
    next: u64,
    tx: mpsc::Sender<Result<WatchResponse>>,
}

impl Watcher {
    async fn run(mut self, mut live: broadcast::Receiver<Arc<Committed>>) {
        if self.catch_up(u64::MAX).await.is_err() {
            return;
        }
        loop {
            let item = tokio::select! {
                item = live.recv() => item,
                () = self.tx.closed() => return,
            };
            let step = match item {
                Ok(c) if c.revision < self.next => Ok(()),
                Ok(c) => self.live(&c).await,
                Err(RecvError::Lagged(_)) => self.catch_up(u64::MAX).await,
                // The store was dropped, after every commit was published (and, through the
                // items before this one, sent).
                Err(RecvError::Closed) => return,
            };
            if step.is_err() {
                return;
            }
        }
    }

    async fn live(&mut self, c: &Committed) -> Result<(), Stop> {
        self.catch_up(c.revision - 1).await?;
        if c.revision != self.next {
            // The log did not have the revisions before a committed one. `read_log` reports
            // real holes itself, so this is unreachable; stop rather than skip.
            let detail = format!("watch expected revision {}, got {}", self.next, c.revision);
            return self.fail(Error::corrupt(detail)).await;
        }
        let events: Vec<Event> = c
            .events
            .iter()
            .filter(|e| self.range.contains(e.key()))
            .cloned()
            .collect();
        self.next = c.revision + 1;
        if events.is_empty() {
            return Ok(());
        }
        self.send(WatchResponse {
            revision: c.revision,
            events,
        })
        .await
    }

    /// Sends every logged revision from `next` up to `until` or the current one, if lower.
    async fn catch_up(&mut self, until: u64) -> Result<(), Stop> {
        while self.next <= until {
            let read = {
                let (db, range, from) = (Arc::clone(&self.db), self.range.clone(), self.next);
                blocking(move || read_log(&db, &range, from, until)).await
            };
            let chunk = match read {
                Ok(chunk) => chunk,
                Err(e) => return self.fail(e).await,
            };
            for resp in chunk.responses {
                self.send(resp).await?;
            }
            self.next = chunk.next;
            if chunk.at_end {
                break;
            }
        }
        Ok(())
    }

    async fn send(&self, resp: WatchResponse) -> Result<(), Stop> {
        self.tx.send(Ok(resp)).await.map_err(|_| Stop)
    }

    async fn fail(&self, e: Error) -> Result<(), Stop> {
        let _ = self.tx.send(Err(e)).await;
        Err(Stop)
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

struct Chunk {
    /// One response per revision with matching events.
    responses: Vec<WatchResponse>,
    /// The first revision not read.
    next: u64,
    /// Whether the read reached `until` or the current revision.
    at_end: bool,
}

/// Reads up to [`CHUNK`] revisions from `from`, stopping after `until` and the current one.
fn read_log(db: &Database, range: &KeyRange, from: u64, until: u64) -> Result<Chunk> {
    let rtx = db.begin_read().map_err(Error::backend("begin read"))?;
    let meta = rtx.open_table(META).map_err(Error::backend("open meta"))?;
    let compacted = read_meta(&meta, META_COMPACTED)?;
    if from < compacted {
        return Err(Error::Compacted {
            requested: from,
            compacted,
        });
    }
    let last = until.min(read_meta(&meta, META_REVISION)?);
    if from > last {
        return Ok(Chunk {
            responses: Vec::new(),
            next: from,
            at_end: true,
        });
    }
    let to = last.min(from.saturating_add(CHUNK - 1));
    let log = rtx.open_table(LOG).map_err(Error::backend("open log"))?;
    let mut responses = Vec::new();
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
            responses.push(WatchResponse {
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
    Ok(Chunk {
        responses,
        next: to + 1,
        at_end: to == last,
    })
}
