//! Tests of the redb backend through the [`Store`] trait: each operation, watches, concurrency,
//! and a property test against an in-memory model.

use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::types::{Compare, CompareOp, WatchResponse};

mod model;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn mem() -> RedbStore {
    RedbStore::in_memory().unwrap()
}

fn keys(kvs: &[KeyValue]) -> Vec<&[u8]> {
    kvs.iter().map(|kv| kv.key.as_ref()).collect()
}

async fn next(w: &mut WatchStream) -> WatchResponse {
    tokio::time::timeout(Duration::from_secs(10), w.recv())
        .await
        .expect("watch response within 10 s")
        .expect("watch stream open")
        .expect("watch response ok")
}

/// Asserts nothing arrives for a moment (the absence of an event cannot be awaited exactly).
async fn assert_quiet(w: &mut WatchStream) {
    let got = tokio::time::timeout(Duration::from_millis(100), w.recv()).await;
    assert!(got.is_err(), "unexpected watch item {got:?}");
}

#[tokio::test]
async fn put_get_and_key_metadata() {
    let s = mem();
    assert_eq!(s.revision().await.unwrap(), 0);
    assert_eq!(s.get(b("k")).await.unwrap(), None);

    let p1 = s.put(b("k"), b("v1")).await.unwrap();
    assert_eq!((p1.revision, p1.prev), (1, None));
    let kv = s.get(b("k")).await.unwrap().unwrap();
    assert_eq!(
        kv,
        KeyValue {
            key: b("k"),
            value: b("v1"),
            create_revision: 1,
            mod_revision: 1,
            version: 1
        }
    );

    let p2 = s.put(b("k"), b("v2")).await.unwrap();
    assert_eq!(p2.revision, 2);
    assert_eq!(p2.prev, Some(kv));
    let kv = s.get(b("k")).await.unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (1, 2, 2));

    s.put(b("other"), b("x")).await.unwrap();
    let d = s.delete(KeyRange::key("k")).await.unwrap();
    assert_eq!(d.revision, 4);
    assert_eq!(d.deleted, vec![kv]);
    assert_eq!(s.get(b("k")).await.unwrap(), None);

    // Recreated keys start over, as in etcd.
    s.put(b("k"), b("v3")).await.unwrap();
    let kv = s.get(b("k")).await.unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
    assert_eq!(s.revision().await.unwrap(), 5);
}

#[tokio::test]
async fn range_prefix_interval_and_limit() {
    let s = mem();
    for k in ["a", "ab", "abc", "b", "c"] {
        s.put(b(k), b("v")).await.unwrap();
    }
    let r = s
        .range(RangeRequest::new(KeyRange::prefix("a")))
        .await
        .unwrap();
    assert_eq!(keys(&r.kvs), [b"a" as &[u8], b"ab", b"abc"]);
    assert!(!r.more);
    assert_eq!(r.revision, 5);

    let r = s
        .range(RangeRequest::new(KeyRange::prefix("a")).limit(2))
        .await
        .unwrap();
    assert_eq!(keys(&r.kvs), [b"a" as &[u8], b"ab"]);
    assert!(r.more);
    let r = s
        .range(RangeRequest::new(KeyRange::prefix("a")).limit(3))
        .await
        .unwrap();
    assert!(!r.more);

    let r = s
        .range(RangeRequest::new(KeyRange::range("ab", "b")))
        .await
        .unwrap();
    assert_eq!(keys(&r.kvs), [b"ab" as &[u8], b"abc"]);
    let r = s
        .range(RangeRequest::new(KeyRange::range("c", "a")))
        .await
        .unwrap();
    assert!(r.kvs.is_empty());
    let r = s.range(RangeRequest::new(KeyRange::all())).await.unwrap();
    assert_eq!(r.kvs.len(), 5);
}

#[tokio::test]
async fn delete_prefix_and_noop_delete() {
    let s = mem();
    for k in ["a", "ab", "b"] {
        s.put(b(k), b("v")).await.unwrap();
    }
    let d = s.delete(KeyRange::prefix("a")).await.unwrap();
    assert_eq!(keys(&d.deleted), [b"a" as &[u8], b"ab"]);
    assert_eq!(d.revision, 4);
    // Deleting nothing changes nothing, so no new revision (etcd does the same).
    let d = s.delete(KeyRange::prefix("a")).await.unwrap();
    assert!(d.deleted.is_empty());
    assert_eq!(d.revision, 4);
    assert_eq!(s.revision().await.unwrap(), 4);
}

#[tokio::test]
async fn txn_branches_on_compares() {
    let s = mem();
    let create = |v: &'static str| {
        Txn::new()
            .when([Compare::absent("lease")])
            .and_then([Op::put("lease", v)])
            .or_else([Op::get("lease")])
    };
    let r = s.txn(create("me")).await.unwrap();
    assert!(r.succeeded);
    assert_eq!(r.revision, 1);
    assert_eq!(r.responses, vec![OpResponse::Put { prev: None }]);

    let r = s.txn(create("you")).await.unwrap();
    assert!(!r.succeeded);
    assert_eq!(
        r.revision, 1,
        "a failed read-only txn does not bump the revision"
    );
    let OpResponse::Get(get) = &r.responses[0] else {
        panic!("{r:?}")
    };
    assert_eq!(get.kvs[0].value, b("me"));
    assert_eq!(get.revision, 1);

    // Every compare must hold.
    let r = s
        .txn(
            Txn::new()
                .when([
                    Compare::value("lease", CompareOp::Equal, "me"),
                    Compare::version("lease", CompareOp::Greater, 1),
                ])
                .and_then([Op::delete("lease")]),
        )
        .await
        .unwrap();
    assert!(!r.succeeded);
    assert!(r.responses.is_empty());
    let r = s
        .txn(
            Txn::new()
                .when([
                    Compare::value("lease", CompareOp::Equal, "me"),
                    Compare::create_revision("lease", CompareOp::Equal, 1),
                    Compare::mod_revision("lease", CompareOp::Less, 2),
                ])
                .and_then([Op::delete("lease")]),
        )
        .await
        .unwrap();
    assert!(r.succeeded);
    assert_eq!(r.revision, 2);
}

#[tokio::test]
async fn txn_ops_apply_in_order_as_one_revision() {
    let s = mem();
    s.put(b("x/1"), b("old")).await.unwrap();
    let r = s
        .txn(Txn::new().and_then([
            Op::put("x/1", "new"),
            Op::put("x/2", "v"),
            Op::Get(RangeRequest::new(KeyRange::prefix("x/"))),
            Op::delete_prefix("x/"),
            Op::put("x/3", "v"),
            Op::put("x/3", "w"),
        ]))
        .await
        .unwrap();
    assert_eq!(r.revision, 2);
    let OpResponse::Get(get) = &r.responses[2] else {
        panic!("{r:?}")
    };
    assert_eq!(
        get.kvs[0].value,
        b("new"),
        "a get sees earlier ops of its txn"
    );
    assert_eq!(get.revision, 2);
    let OpResponse::Delete { deleted } = &r.responses[3] else {
        panic!("{r:?}")
    };
    assert_eq!(keys(deleted), [b"x/1" as &[u8], b"x/2"]);
    let kv = s.get(b("x/3")).await.unwrap().unwrap();
    assert_eq!(
        (kv.value.as_ref(), kv.create_revision, kv.version),
        (&b"w"[..], 2, 2)
    );
    assert_eq!(s.get(b("x/1")).await.unwrap(), None);
}

#[tokio::test]
async fn invalid_requests_are_rejected_without_effect() {
    let s = mem();
    let err = s.put(Bytes::new(), b("v")).await.unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");
    let err = s
        .txn(Txn::new().and_then([
            Op::put("k", "v"),
            Op::Get(RangeRequest::new(KeyRange::key("k")).at_revision(1)),
        ]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");
    assert_eq!(s.revision().await.unwrap(), 0);
}

#[tokio::test]
async fn reads_at_past_revisions() {
    let s = mem();
    s.put(b("a"), b("1")).await.unwrap(); // 1
    s.put(b("b"), b("1")).await.unwrap(); // 2
    s.put(b("a"), b("2")).await.unwrap(); // 3
    s.delete(KeyRange::key("b")).await.unwrap(); // 4
    s.put(b("c"), b("1")).await.unwrap(); // 5
    let at = |r: u64| {
        let s = s.clone();
        async move {
            let resp = s
                .range(RangeRequest::new(KeyRange::all()).at_revision(r))
                .await
                .unwrap();
            assert_eq!(resp.revision, r);
            resp.kvs
                .iter()
                .map(|kv| format!("{}={}", kv.key.escape_ascii(), kv.value.escape_ascii()))
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    assert_eq!(at(1).await, "a=1");
    assert_eq!(at(2).await, "a=1,b=1");
    assert_eq!(at(3).await, "a=2,b=1");
    assert_eq!(at(4).await, "a=2");
    assert_eq!(at(5).await, "a=2,c=1");
    let old = s
        .range(RangeRequest::new(KeyRange::key("a")).at_revision(2))
        .await
        .unwrap();
    assert_eq!(
        (old.kvs[0].mod_revision, old.kvs[0].version),
        (1, 1),
        "old metadata comes back too"
    );
    let limited = s
        .range(RangeRequest::new(KeyRange::all()).at_revision(3).limit(1))
        .await
        .unwrap();
    assert_eq!((limited.kvs.len(), limited.more), (1, true));

    let err = s
        .range(RangeRequest::new(KeyRange::all()).at_revision(6))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::FutureRevision {
            requested: 6,
            current: 5
        }
    ));
    s.compact(3).await.unwrap();
    assert_eq!(
        at(3).await,
        "a=2,b=1",
        "the compaction point itself stays readable"
    );
    let err = s
        .range(RangeRequest::new(KeyRange::all()).at_revision(2))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Compacted {
            requested: 2,
            compacted: 3
        }
    ));
}

#[tokio::test]
async fn compact_checks_bounds_and_is_idempotent() {
    let s = mem();
    s.put(b("a"), b("1")).await.unwrap();
    s.put(b("a"), b("2")).await.unwrap();
    let err = s.compact(3).await.unwrap_err();
    assert!(matches!(
        err,
        Error::FutureRevision {
            requested: 3,
            current: 2
        }
    ));
    s.compact(2).await.unwrap();
    s.compact(1).await.unwrap();
    s.compact(2).await.unwrap();
    assert_eq!(s.get(b("a")).await.unwrap().unwrap().value, b("2"));
}

#[tokio::test]
async fn file_store_persists_and_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let s = RedbStore::open(&data).await.unwrap();
        s.put(b("a"), b("1")).await.unwrap();
        s.put(b("a"), b("2")).await.unwrap();
        s.compact(2).await.unwrap();

        let err = RedbStore::open(&data).await.unwrap_err();
        assert!(matches!(err, Error::Locked { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("locked by another clos controller")
        );
    }
    let s = RedbStore::open(&data).await.unwrap();
    assert_eq!(s.revision().await.unwrap(), 2);
    let kv = s.get(b("a")).await.unwrap().unwrap();
    assert_eq!((kv.value, kv.version), (b("2"), 2));
    // History and the compaction point survive the restart.
    let mut w = s.watch(KeyRange::all(), 2).await.unwrap();
    assert_eq!(next(&mut w).await.revision, 2);
    let err = s.watch(KeyRange::all(), 1).await.unwrap_err();
    assert!(matches!(err, Error::Compacted { .. }));
    s.put(b("a"), b("3")).await.unwrap();
    assert_eq!(next(&mut w).await.revision, 3);
}

#[tokio::test]
async fn open_reports_unusable_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"not a directory").unwrap();
    let err = RedbStore::open(file.join("data")).await.unwrap_err();
    assert!(matches!(err, Error::CreateDir { .. }), "{err}");
}

#[tokio::test]
async fn watch_history_then_live_filtered_by_range() {
    let s = mem();
    s.put(b("n/1"), b("a")).await.unwrap(); // 1
    s.put(b("other"), b("a")).await.unwrap(); // 2
    s.put(b("n/2"), b("a")).await.unwrap(); // 3
    let mut w = s.watch(KeyRange::prefix("n/"), 1).await.unwrap();
    let r = next(&mut w).await;
    assert_eq!(r.revision, 1);
    assert!(matches!(&r.events[..], [Event::Put { kv, prev: None }] if kv.key == b("n/1")));
    assert_eq!(
        next(&mut w).await.revision,
        3,
        "revision 2 is outside the range"
    );
    assert_quiet(&mut w).await;

    s.put(b("other"), b("b")).await.unwrap(); // 4
    s.put(b("n/1"), b("b")).await.unwrap(); // 5
    s.delete(KeyRange::key("n/2")).await.unwrap(); // 6
    let r = next(&mut w).await;
    assert_eq!(r.revision, 5);
    let Event::Put {
        kv,
        prev: Some(prev),
    } = &r.events[0]
    else {
        panic!("{r:?}")
    };
    assert_eq!(
        (kv.value.as_ref(), prev.value.as_ref()),
        (&b"b"[..], &b"a"[..])
    );
    let r = next(&mut w).await;
    assert_eq!(
        r.events,
        vec![Event::Delete {
            key: b("n/2"),
            revision: 6,
            prev: KeyValue {
                key: b("n/2"),
                value: b("a"),
                create_revision: 3,
                mod_revision: 3,
                version: 1
            }
        }]
    );
}

#[tokio::test]
async fn watch_delivers_a_txn_as_one_response() {
    let s = mem();
    let mut w = s.watch(KeyRange::all(), 0).await.unwrap();
    s.txn(Txn::new().and_then([Op::put("a", "1"), Op::put("b", "1"), Op::put("a", "2")]))
        .await
        .unwrap();
    let r = next(&mut w).await;
    assert_eq!(r.revision, 1);
    let got: Vec<_> = r
        .events
        .iter()
        .map(|e| (e.key().clone(), e.revision()))
        .collect();
    assert_eq!(got, [(b("a"), 1), (b("b"), 1), (b("a"), 1)]);
}

#[tokio::test]
async fn watch_from_zero_is_live_only_and_from_future_waits() {
    let s = mem();
    s.put(b("k"), b("1")).await.unwrap();
    let mut live = s.watch(KeyRange::all(), 0).await.unwrap();
    let mut future = s.watch(KeyRange::all(), 3).await.unwrap();
    assert_quiet(&mut live).await;
    s.put(b("k"), b("2")).await.unwrap();
    s.put(b("k"), b("3")).await.unwrap();
    assert_eq!(next(&mut live).await.revision, 2);
    assert_eq!(next(&mut live).await.revision, 3);
    assert_eq!(next(&mut future).await.revision, 3);
}

#[tokio::test]
async fn watch_resumes_without_gap_or_duplicate() {
    let s = mem();
    for i in 0..10 {
        s.put(b(&format!("k{}", i % 3)), b("v")).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut w = s.watch(KeyRange::all(), 1).await.unwrap();
    for _ in 0..4 {
        seen.push(next(&mut w).await.revision);
    }
    drop(w); // disconnect
    for _ in 0..5 {
        s.put(b("k"), b("v")).await.unwrap();
    }
    let mut w = s
        .watch(KeyRange::all(), seen.last().unwrap() + 1)
        .await
        .unwrap();
    while seen.len() < 15 {
        seen.push(next(&mut w).await.revision);
    }
    assert_eq!(seen, (1..=15).collect::<Vec<_>>());
    assert_quiet(&mut w).await;
}

#[tokio::test]
async fn watch_of_compacted_history_fails() {
    let s = mem();
    for _ in 0..5 {
        s.put(b("k"), b("v")).await.unwrap();
    }
    s.compact(4).await.unwrap();
    let err = s.watch(KeyRange::all(), 3).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Compacted {
                requested: 3,
                compacted: 4
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("list the current state again"));
    let mut w = s.watch(KeyRange::all(), 4).await.unwrap();
    assert_eq!(next(&mut w).await.revision, 4);
}

#[tokio::test]
async fn slow_watcher_overtaken_by_compaction_gets_error() {
    let s = mem();
    let total = watch::CHUNK + 50;
    for _ in 0..total {
        s.put(b("k"), b("v")).await.unwrap();
    }
    // Once the first response is here, the task has read the whole first chunk and stalls on
    // the full channel; compaction then removes what it would read next.
    let mut w = s.watch(KeyRange::all(), 1).await.unwrap();
    let mut revs = vec![next(&mut w).await.revision];
    s.compact(total).await.unwrap();
    let err = loop {
        match w.recv().await.expect("an error before the end") {
            Ok(r) => revs.push(r.revision),
            Err(e) => break e,
        }
    };
    assert_eq!(
        revs,
        (1..=watch::CHUNK).collect::<Vec<_>>(),
        "no gap before the error"
    );
    assert!(matches!(err, Error::Compacted { requested, compacted }
        if requested == watch::CHUNK + 1 && compacted == total));
    assert!(w.recv().await.is_none(), "the error ends the stream");
}

#[tokio::test]
async fn watch_ends_when_store_dropped() {
    let s = mem();
    let mut w = s.watch(KeyRange::all(), 0).await.unwrap();
    s.put(b("k"), b("v")).await.unwrap();
    drop(s);
    assert_eq!(
        next(&mut w).await.revision,
        1,
        "committed events are still delivered"
    );
    let end = tokio::time::timeout(Duration::from_secs(10), w.recv()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
}

/// N tasks each add 1 to a counter k times by compare-and-swap; none is lost or doubled, and
/// a watch sees every intermediate value once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cas_increments_are_exact() {
    const TASKS: u64 = 8;
    const EACH: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).await.unwrap());
    let mut w = s.watch(KeyRange::key("counter"), 1).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u64;
            for _ in 0..EACH {
                loop {
                    let cur = s.get(b("counter")).await.unwrap();
                    let (n, rev) = cur.map_or((0, 0), |kv| {
                        (
                            std::str::from_utf8(&kv.value)
                                .unwrap()
                                .parse::<u64>()
                                .unwrap(),
                            kv.mod_revision,
                        )
                    });
                    let r = s
                        .txn(
                            Txn::new()
                                .when([Compare::mod_revision("counter", CompareOp::Equal, rev)])
                                .and_then([Op::put("counter", (n + 1).to_string())]),
                        )
                        .await
                        .unwrap();
                    if r.succeeded {
                        break;
                    }
                    conflicts += 1;
                }
            }
            conflicts
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let kv = s.get(b("counter")).await.unwrap().unwrap();
    assert_eq!(kv.value, (TASKS * EACH).to_string().as_bytes());
    assert_eq!(kv.version, TASKS * EACH);
    assert_eq!(s.revision().await.unwrap(), TASKS * EACH);
    for i in 1..=TASKS * EACH {
        let r = next(&mut w).await;
        assert_eq!(r.revision, i);
        let Event::Put { kv, .. } = &r.events[0] else {
            panic!("{r:?}")
        };
        assert_eq!(kv.value, i.to_string().as_bytes());
    }
}

#[tokio::test]
async fn watchers_hear_of_a_commit_whose_caller_gave_up() {
    let s = mem();
    let mut w = s.watch(KeyRange::all(), 0).await.unwrap();
    // An open write transaction holds the put back on the blocking pool, so its future is
    // surely unfinished when dropped; the put commits once the transaction goes away.
    let blocker = s.inner.db.begin_write().unwrap();
    let mut put = s.put(b("k"), b("v"));
    let first_poll = std::future::poll_fn(|cx| std::task::Poll::Ready(put.as_mut().poll(cx))).await;
    assert!(first_poll.is_pending());
    drop(put);
    blocker.abort().unwrap();
    assert_eq!(next(&mut w).await.revision, 1);
}

/// A consumer that stops reading for longer than the broadcast buffer holds makes its task
/// lag; it falls back to the log and still sees every revision once.
#[tokio::test]
async fn lagging_watcher_catches_up_from_the_log() {
    let s = mem();
    let mut w = s.watch(KeyRange::all(), 0).await.unwrap();
    let total = watch::BROADCAST_CAPACITY as u64 + 200;
    for i in 0..total {
        s.put(b(&format!("k{}", i % 7)), b("v")).await.unwrap();
    }
    for rev in 1..=total {
        assert_eq!(next(&mut w).await.revision, rev);
    }
    s.put(b("k"), b("live again")).await.unwrap();
    assert_eq!(next(&mut w).await.revision, total + 1);
    assert_quiet(&mut w).await;
}
