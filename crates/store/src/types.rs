//! Request, response and event types shared by every backend. They mirror etcd's v3 API so an
//! etcd backend maps onto them one to one.

use std::ops::Bound;

use bytes::Bytes;

/// One stored key with its metadata, as in etcd's `mvccpb.KeyValue`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyValue {
    pub key: Bytes,
    pub value: Bytes,
    /// Revision of the transaction that created the key (since its last deletion).
    pub create_revision: u64,
    /// Revision of the transaction that last wrote the key.
    pub mod_revision: u64,
    /// Number of puts since the key was created: 1 after the first put.
    pub version: u64,
}

/// A set of keys: one key, every key with a prefix, or a half-open interval.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyRange {
    /// Exactly this key.
    Key(Bytes),
    /// Every key that starts with these bytes; the empty prefix is every key.
    Prefix(Bytes),
    /// Every key `k` with `start <= k < end` (byte-wise order); empty when `start >= end`.
    Range { start: Bytes, end: Bytes },
}

impl KeyRange {
    pub fn key(key: impl Into<Bytes>) -> Self {
        KeyRange::Key(key.into())
    }

    pub fn prefix(prefix: impl Into<Bytes>) -> Self {
        KeyRange::Prefix(prefix.into())
    }

    pub fn range(start: impl Into<Bytes>, end: impl Into<Bytes>) -> Self {
        KeyRange::Range {
            start: start.into(),
            end: end.into(),
        }
    }

    /// Every key in the store.
    pub fn all() -> Self {
        KeyRange::Prefix(Bytes::new())
    }

    /// Lower and upper bounds in byte-wise key order.
    pub fn bounds(&self) -> (Bound<Bytes>, Bound<Bytes>) {
        match self {
            KeyRange::Key(k) => (Bound::Included(k.clone()), Bound::Included(k.clone())),
            KeyRange::Prefix(p) => (
                Bound::Included(p.clone()),
                prefix_end(p).map_or(Bound::Unbounded, Bound::Excluded),
            ),
            KeyRange::Range { start, end } => {
                (Bound::Included(start.clone()), Bound::Excluded(end.clone()))
            }
        }
    }

    /// True when no key can be in the range (`start >= end`); backends skip such reads,
    /// because ordered maps may panic on inverted bounds.
    pub fn is_empty(&self) -> bool {
        matches!(self, KeyRange::Range { start, end } if start >= end)
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        match self {
            KeyRange::Key(k) => k.as_ref() == key,
            KeyRange::Prefix(p) => key.starts_with(p),
            KeyRange::Range { start, end } => start.as_ref() <= key && key < end.as_ref(),
        }
    }
}

/// The smallest key greater than every key with `prefix`, or `None` when there is none
/// (empty prefix or all `0xff`), as etcd's `clientv3.GetPrefixRangeEnd`.
fn prefix_end(prefix: &[u8]) -> Option<Bytes> {
    let last = prefix.iter().rposition(|&b| b != 0xff)?;
    let mut end = prefix[..=last].to_vec();
    end[last] += 1;
    Some(end.into())
}

/// A read of a [`KeyRange`], optionally limited and optionally at a past revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeRequest {
    pub range: KeyRange,
    /// At most this many keys (in key order); `None` for all.
    pub limit: Option<usize>,
    /// Read the state as of this revision instead of the current one. Fails with
    /// [`Error::Compacted`](crate::Error::Compacted) below the compaction point and with
    /// [`Error::FutureRevision`](crate::Error::FutureRevision) above the current revision.
    pub revision: Option<u64>,
}

impl RangeRequest {
    pub fn new(range: KeyRange) -> Self {
        RangeRequest {
            range,
            limit: None,
            revision: None,
        }
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn at_revision(mut self, revision: u64) -> Self {
        self.revision = Some(revision);
        self
    }
}

/// The keys a [`RangeRequest`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeResponse {
    /// Matching keys in byte-wise key order.
    pub kvs: Vec<KeyValue>,
    /// True when `limit` cut the result short.
    pub more: bool,
    /// The revision this result reflects: the requested one, or the current one. A caller that
    /// lists and then watches passes `revision + 1` to [`Store::watch`](crate::Store::watch).
    pub revision: u64,
}

/// Which field of a key a [`Compare`] looks at. A missing key has version, create and mod
/// revision 0, and no value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CompareTarget {
    Version(u64),
    CreateRevision(u64),
    ModRevision(u64),
    /// Byte-wise comparison of the value. Any comparison with a missing key's value is false,
    /// as in etcd.
    Value(Bytes),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Equal,
    NotEqual,
    /// The stored field is greater than the operand.
    Greater,
    /// The stored field is less than the operand.
    Less,
}

impl CompareOp {
    fn holds<T: Ord + ?Sized>(self, stored: &T, operand: &T) -> bool {
        match self {
            CompareOp::Equal => stored == operand,
            CompareOp::NotEqual => stored != operand,
            CompareOp::Greater => stored > operand,
            CompareOp::Less => stored < operand,
        }
    }
}

/// A guard of a [`Txn`]: `<field of key> <op> <operand>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Compare {
    pub key: Bytes,
    pub op: CompareOp,
    pub target: CompareTarget,
}

impl Compare {
    pub fn new(key: impl Into<Bytes>, op: CompareOp, target: CompareTarget) -> Self {
        Compare {
            key: key.into(),
            op,
            target,
        }
    }

    pub fn mod_revision(key: impl Into<Bytes>, op: CompareOp, revision: u64) -> Self {
        Compare::new(key, op, CompareTarget::ModRevision(revision))
    }

    pub fn create_revision(key: impl Into<Bytes>, op: CompareOp, revision: u64) -> Self {
        Compare::new(key, op, CompareTarget::CreateRevision(revision))
    }

    pub fn version(key: impl Into<Bytes>, op: CompareOp, version: u64) -> Self {
        Compare::new(key, op, CompareTarget::Version(version))
    }

    pub fn value(key: impl Into<Bytes>, op: CompareOp, value: impl Into<Bytes>) -> Self {
        Compare::new(key, op, CompareTarget::Value(value.into()))
    }

    /// The key does not exist (version 0): the guard of a create-if-absent.
    pub fn absent(key: impl Into<Bytes>) -> Self {
        Compare::version(key, CompareOp::Equal, 0)
    }

    /// Evaluates the guard against the key's current state.
    pub fn evaluate(&self, current: Option<&KeyValue>) -> bool {
        let field = |f: fn(&KeyValue) -> u64| current.map_or(0, f);
        match &self.target {
            CompareTarget::Version(v) => self.op.holds(&field(|kv| kv.version), v),
            CompareTarget::CreateRevision(r) => self.op.holds(&field(|kv| kv.create_revision), r),
            CompareTarget::ModRevision(r) => self.op.holds(&field(|kv| kv.mod_revision), r),
            CompareTarget::Value(v) => {
                current.is_some_and(|kv| self.op.holds(kv.value.as_ref(), v.as_ref()))
            }
        }
    }
}

/// One operation of a [`Txn`]. Operations apply in order, and each sees the effect of the
/// ones before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put {
        key: Bytes,
        value: Bytes,
    },
    /// Deletes every key in the range (one key, a prefix, an interval).
    Delete(KeyRange),
    /// Reads inside the transaction; `revision` must be `None`.
    Get(RangeRequest),
}

impl Op {
    pub fn put(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    pub fn delete(key: impl Into<Bytes>) -> Self {
        Op::Delete(KeyRange::key(key))
    }

    pub fn delete_prefix(prefix: impl Into<Bytes>) -> Self {
        Op::Delete(KeyRange::prefix(prefix))
    }

    pub fn get(key: impl Into<Bytes>) -> Self {
        Op::Get(RangeRequest::new(KeyRange::key(key)))
    }
}

/// `if all(compares) { success } else { failure }`, applied atomically as one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub success: Vec<Op>,
    pub failure: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Txn::default()
    }

    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.compares.extend(compares);
        self
    }

    pub fn and_then(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.success.extend(ops);
        self
    }

    pub fn or_else(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.failure.extend(ops);
        self
    }
}

/// The result of one [`Op`], in the order of the branch that ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResponse {
    Put { prev: Option<KeyValue> },
    Delete { deleted: Vec<KeyValue> },
    Get(RangeResponse),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnResponse {
    /// Whether every compare held (so `success` ran rather than `failure`).
    pub succeeded: bool,
    /// The store revision after the transaction: a new revision if it changed anything, else
    /// the revision it read.
    pub revision: u64,
    pub responses: Vec<OpResponse>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutResponse {
    pub revision: u64,
    pub prev: Option<KeyValue>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteResponse {
    pub revision: u64,
    /// The keys removed, as they were just before.
    pub deleted: Vec<KeyValue>,
}

/// One change, as a watcher sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `kv` is the key after the put; `prev` the key before it, if it existed.
    Put {
        kv: KeyValue,
        prev: Option<KeyValue>,
    },
    /// The key was deleted at `revision`; `prev` is its last state.
    Delete {
        key: Bytes,
        revision: u64,
        prev: KeyValue,
    },
}

impl Event {
    pub fn key(&self) -> &Bytes {
        match self {
            Event::Put { kv, .. } => &kv.key,
            Event::Delete { key, .. } => key,
        }
    }

    pub fn revision(&self) -> u64 {
        match self {
            Event::Put { kv, .. } => kv.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }

    /// The key's state just before this event.
    pub fn prev(&self) -> Option<&KeyValue> {
        match self {
            Event::Put { prev, .. } => prev.as_ref(),
            Event::Delete { prev, .. } => Some(prev),
        }
    }
}

/// All events of one revision that match a watch, in the order the transaction applied them.
/// A revision is never split across two responses, so a watcher never sees half a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchResponse {
    pub revision: u64,
    /// Never empty.
    pub events: Vec<Event>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte_below_ff() {
        assert_eq!(prefix_end(b"a"), Some(Bytes::from_static(b"b")));
        assert_eq!(prefix_end(b"a\xff"), Some(Bytes::from_static(b"b")));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn contains_agrees_with_bounds() {
        let ranges = [
            KeyRange::key("ab"),
            KeyRange::prefix("a"),
            KeyRange::prefix(""),
            KeyRange::prefix(&b"a\xff"[..]),
            KeyRange::range("ab", "b"),
            KeyRange::range("b", "a"),
        ];
        let keys: [&[u8]; 7] = [b"", b"a", b"ab", b"abc", b"a\xff\x00", b"b", b"c"];
        for r in &ranges {
            let (lo, hi) = r.bounds();
            for k in keys {
                let in_bounds: (Bound<&[u8]>, Bound<&[u8]>) = (
                    lo.as_ref().map(|b| b.as_ref()),
                    hi.as_ref().map(|b| b.as_ref()),
                );
                let expected =
                    !r.is_empty() && std::ops::RangeBounds::<[u8]>::contains(&in_bounds, k);
                assert_eq!(r.contains(k), expected, "{r:?} {k:?}");
            }
        }
    }

    #[test]
    fn compare_on_missing_key() {
        assert!(Compare::absent("k").evaluate(None));
        assert!(Compare::mod_revision("k", CompareOp::Less, 1).evaluate(None));
        assert!(!Compare::value("k", CompareOp::NotEqual, "x").evaluate(None));
        assert!(!Compare::value("k", CompareOp::Equal, "").evaluate(None));
    }

    #[test]
    fn compare_ops() {
        let kv = KeyValue {
            key: "k".into(),
            value: "m".into(),
            create_revision: 2,
            mod_revision: 5,
            version: 3,
        };
        let kv = Some(&kv);
        assert!(Compare::mod_revision("k", CompareOp::Equal, 5).evaluate(kv));
        assert!(Compare::mod_revision("k", CompareOp::Greater, 4).evaluate(kv));
        assert!(!Compare::mod_revision("k", CompareOp::Less, 5).evaluate(kv));
        assert!(Compare::create_revision("k", CompareOp::NotEqual, 5).evaluate(kv));
        assert!(Compare::version("k", CompareOp::Less, 4).evaluate(kv));
        assert!(Compare::value("k", CompareOp::Greater, "l").evaluate(kv));
        assert!(Compare::value("k", CompareOp::Less, "mm").evaluate(kv));
        assert!(!Compare::absent("k").evaluate(kv));
    }
}
