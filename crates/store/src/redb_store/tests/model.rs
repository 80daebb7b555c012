//! The store against a model: a `BTreeMap`, a revision counter, a snapshot per revision and
//! the list of events. Random sequences of transactions, past reads and compactions must give
//! the same answers from both, and a watch from the oldest retained revision must replay the
//! model's events exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::types::{CompareTarget, WatchResponse};

#[derive(Debug, Clone)]
enum Step {
    Txn(Txn),
    Read(RangeRequest),
    Compact(u64),
}

#[derive(Debug, Default)]
struct Model {
    kvs: BTreeMap<Bytes, KeyValue>,
    revision: u64,
    compacted: u64,
    /// `snapshots[r]` is the state at revision `r`.
    snapshots: Vec<BTreeMap<Bytes, KeyValue>>,
    /// Events of every revision, in commit order.
    log: Vec<(u64, Vec<Event>)>,
}

/// The model's own reading of a compare, written out rather than reusing `Compare::evaluate`.
fn model_compare(cmp: &Compare, kv: Option<&KeyValue>) -> bool {
    use std::cmp::Ordering;
    let ord = match (&cmp.target, kv) {
        (CompareTarget::Value(_), None) => return false,
        (CompareTarget::Value(v), Some(kv)) => kv.value.as_ref().cmp(v.as_ref()),
        (CompareTarget::Version(n), kv) => kv.map_or(0, |kv| kv.version).cmp(n),
        (CompareTarget::CreateRevision(n), kv) => kv.map_or(0, |kv| kv.create_revision).cmp(n),
        (CompareTarget::ModRevision(n), kv) => kv.map_or(0, |kv| kv.mod_revision).cmp(n),
    };
    match cmp.op {
        CompareOp::Equal => ord == Ordering::Equal,
        CompareOp::NotEqual => ord != Ordering::Equal,
        CompareOp::Greater => ord == Ordering::Greater,
        CompareOp::Less => ord == Ordering::Less,
    }
}

fn select(
    state: &BTreeMap<Bytes, KeyValue>,
    range: &KeyRange,
    limit: Option<usize>,
) -> (Vec<KeyValue>, bool) {
    let all: Vec<KeyValue> = state
        .values()
        .filter(|kv| range.contains(&kv.key))
        .cloned()
        .collect();
    match limit {
        Some(l) if all.len() > l => (all[..l].to_vec(), true),
        _ => (all, false),
    }
}

impl Model {
    fn new() -> Self {
        Model {
            snapshots: vec![BTreeMap::new()],
            ..Model::default()
        }
    }

    fn txn(&mut self, txn: &Txn) -> TxnResponse {
        let succeeded = txn
            .compares
            .iter()
            .all(|c| model_compare(c, self.kvs.get(&c.key)));
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let rev = self.revision + 1;
        let mut state = self.kvs.clone();
        let mut events = Vec::new();
        let mut responses = Vec::new();
        for op in ops {
            responses.push(match op {
                Op::Put { key, value } => {
                    let prev = state.get(key).cloned();
                    let kv = KeyValue {
                        key: key.clone(),
                        value: value.clone(),
                        create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
                        mod_revision: rev,
                        version: prev.as_ref().map_or(0, |p| p.version) + 1,
                    };
                    state.insert(key.clone(), kv.clone());
                    events.push(Event::Put {
                        kv,
                        prev: prev.clone(),
                    });
                    OpResponse::Put { prev }
                }
                Op::Delete(range) => {
                    let (deleted, _) = select(&state, range, None);
                    for prev in &deleted {
                        state.remove(&prev.key);
                        events.push(Event::Delete {
                            key: prev.key.clone(),
                            revision: rev,
                            prev: prev.clone(),
                        });
                    }
                    OpResponse::Delete { deleted }
                }
                Op::Get(req) => {
                    let (kvs, more) = select(&state, &req.range, req.limit);
                    OpResponse::Get(RangeResponse {
                        kvs,
                        more,
                        revision: 0,
                    })
                }
            });
        }
        if !events.is_empty() {
            self.revision = rev;
            self.kvs = state;
            self.snapshots.push(self.kvs.clone());
            self.log.push((rev, events));
        }
        for r in &mut responses {
            if let OpResponse::Get(g) = r {
                g.revision = self.revision;
            }
        }
        TxnResponse {
            succeeded,
            revision: self.revision,
            responses,
        }
    }

    fn read(&self, req: &RangeRequest) -> Result<RangeResponse, Error> {
        let at = req.revision.unwrap_or(self.revision);
        if at > self.revision {
            return Err(Error::FutureRevision {
                requested: at,
                current: self.revision,
            });
        }
        if at < self.compacted {
            return Err(Error::Compacted {
                requested: at,
                compacted: self.compacted,
            });
        }
        let (kvs, more) = select(&self.snapshots[at as usize], &req.range, req.limit);
        Ok(RangeResponse {
            kvs,
            more,
            revision: at,
        })
    }

    fn compact(&mut self, rev: u64) -> Result<(), Error> {
        if rev > self.revision {
            return Err(Error::FutureRevision {
                requested: rev,
                current: self.revision,
            });
        }
        self.compacted = self.compacted.max(rev);
        Ok(())
    }
}

/// Errors compared by kind and fields (the enum holds non-`PartialEq` sources).
fn same_error(a: &Error, b: &Error) -> bool {
    match (a, b) {
        (
            Error::Compacted {
                requested: r1,
                compacted: c1,
            },
            Error::Compacted {
                requested: r2,
                compacted: c2,
            },
        ) => (r1, c1) == (r2, c2),
        (
            Error::FutureRevision {
                requested: r1,
                current: c1,
            },
            Error::FutureRevision {
                requested: r2,
                current: c2,
            },
        ) => (r1, c1) == (r2, c2),
        _ => false,
    }
}

fn key() -> impl Strategy<Value = Bytes> {
    prop_oneof![Just("a"), Just("ab"), Just("b"), Just("ba"), Just("c")].prop_map(b)
}

fn value() -> impl Strategy<Value = Bytes> {
    prop_oneof![Just("x"), Just("y"), Just("z")].prop_map(b)
}

fn key_range() -> impl Strategy<Value = KeyRange> {
    prop_oneof![
        key().prop_map(KeyRange::Key),
        prop_oneof![Just(""), Just("a"), Just("b")].prop_map(|p| KeyRange::Prefix(b(p))),
        (key(), key()).prop_map(|(start, end)| KeyRange::Range { start, end }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (key(), value()).prop_map(|(key, value)| Op::Put { key, value }),
        1 => key_range().prop_map(Op::Delete),
        1 => (key_range(), proptest::option::of(0..3usize)).prop_map(|(range, limit)| {
            Op::Get(RangeRequest { range, limit, revision: None })
        }),
    ]
}

fn compare() -> impl Strategy<Value = Compare> {
    let op = prop_oneof![
        Just(CompareOp::Equal),
        Just(CompareOp::NotEqual),
        Just(CompareOp::Greater),
        Just(CompareOp::Less),
    ];
    let target = prop_oneof![
        (0..4u64).prop_map(CompareTarget::Version),
        (0..8u64).prop_map(CompareTarget::CreateRevision),
        (0..8u64).prop_map(CompareTarget::ModRevision),
        value().prop_map(CompareTarget::Value),
    ];
    (key(), op, target).prop_map(|(key, op, target)| Compare { key, op, target })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (
            proptest::collection::vec(compare(), 0..3),
            proptest::collection::vec(op(), 0..4),
            proptest::collection::vec(op(), 0..3),
        )
            .prop_map(|(compares, success, failure)| Step::Txn(Txn { compares, success, failure })),
        2 => (key_range(), proptest::option::of(0..3usize), proptest::option::of(0..30u64))
            .prop_map(|(range, limit, revision)| Step::Read(RangeRequest { range, limit, revision })),
        1 => (0..30u64).prop_map(Step::Compact),
    ]
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let store = mem();
    let mut model = Model::new();
    for step in &steps {
        match step {
            Step::Txn(txn) => {
                let got = store.txn(txn.clone()).await.unwrap();
                prop_assert_eq!(got, model.txn(txn), "{:?}", txn);
            }
            Step::Read(req) => {
                // Revision 0 means "current" for the store; the model takes `None` for that.
                let mut model_req = req.clone();
                model_req.revision = req.revision.filter(|&r| r != 0);
                match (store.range(req.clone()).await, model.read(&model_req)) {
                    (Ok(got), Ok(want)) => prop_assert_eq!(got, want, "{:?}", req),
                    (Err(got), Err(want)) => {
                        prop_assert!(same_error(&got, &want), "{:?}: {} vs {}", req, got, want)
                    }
                    (got, want) => prop_assert!(false, "{:?}: {:?} vs {:?}", req, got, want),
                }
            }
            Step::Compact(rev) => match (store.compact(*rev).await, model.compact(*rev)) {
                (Ok(()), Ok(())) => {}
                (Err(got), Err(want)) => {
                    prop_assert!(same_error(&got, &want), "{} vs {}", got, want)
                }
                (got, want) => prop_assert!(false, "compact {}: {:?} vs {:?}", rev, got, want),
            },
        }
    }
    prop_assert_eq!(store.revision().await.unwrap(), model.revision);

    // Replay the retained history through watches on a few ranges.
    let from = model.compacted.max(1);
    for range in [
        KeyRange::all(),
        KeyRange::prefix("a"),
        KeyRange::range("ab", "c"),
    ] {
        let want: Vec<WatchResponse> = model
            .log
            .iter()
            .filter(|(rev, _)| *rev >= from)
            .filter_map(|(rev, events)| {
                let events: Vec<Event> = events
                    .iter()
                    .filter(|e| range.contains(e.key()))
                    .cloned()
                    .collect();
                (!events.is_empty()).then_some(WatchResponse {
                    revision: *rev,
                    events,
                })
            })
            .collect();
        let mut w = store.watch(range.clone(), from).await.unwrap();
        let mut got = Vec::new();
        while got.len() < want.len() {
            let item = tokio::time::timeout(Duration::from_secs(10), w.recv()).await;
            got.push(
                item.expect("watch response in time")
                    .expect("open")
                    .unwrap(),
            );
        }
        prop_assert_eq!(got, want, "{:?}", range);
        if range.contains(b"zz") {
            // The next response must be a fresh marker write: nothing else was queued.
            store.put(b("zz"), b("marker")).await.unwrap();
            model.txn(&Txn::new().and_then([Op::put("zz", "marker")]));
            let marker = tokio::time::timeout(Duration::from_secs(10), w.recv()).await;
            let marker = marker.expect("marker in time").expect("open").unwrap();
            prop_assert_eq!(marker.revision, model.revision);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model(steps in proptest::collection::vec(step(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(steps))?;
    }
}
