//! On-disk encoding of key metadata and change-log entries. Hand-written and big-endian so the
//! layout is fixed by this file, not by a serialization crate's version.
//!
//! * `kv` table value: `create u64 | mod u64 | version u64 | value bytes`.
//! * `log` table value (one per revision): `count u32`, then per event a tag byte and:
//!   - `1` put: `key | value | create | mod | version | has_prev u8 [| prev value | create | mod
//!     | version]`
//!   - `2` delete: `key | prev value | create | mod | version`
//!
//!   where `key` and `value` are `len u32 | bytes`. A delete's revision is the log key.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::types::{Event, KeyValue};

const META_LEN: usize = 24;
const TAG_PUT: u8 = 1;
const TAG_DELETE: u8 = 2;

pub(crate) fn encode_kv_value(kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(META_LEN + kv.value.len());
    put_meta(&mut out, kv);
    out.extend_from_slice(&kv.value);
    out
}

pub(crate) fn decode_kv(key: &[u8], raw: &[u8]) -> Result<KeyValue> {
    let mut r = Reader { buf: raw };
    let (create_revision, mod_revision, version) = r.meta()?;
    Ok(KeyValue {
        key: Bytes::copy_from_slice(key),
        value: Bytes::copy_from_slice(r.buf),
        create_revision,
        mod_revision,
        version,
    })
}

pub(crate) fn encode_events(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    let count = u32::try_from(events.len()).expect("fewer than 2^32 events in one transaction");
    out.extend_from_slice(&count.to_be_bytes());
    for event in events {
        match event {
            Event::Put { kv, prev } => {
                out.push(TAG_PUT);
                put_bytes(&mut out, &kv.key);
                put_bytes(&mut out, &kv.value);
                put_meta(&mut out, kv);
                match prev {
                    None => out.push(0),
                    Some(prev) => {
                        out.push(1);
                        put_bytes(&mut out, &prev.value);
                        put_meta(&mut out, prev);
                    }
                }
            }
            Event::Delete { key, prev, .. } => {
                out.push(TAG_DELETE);
                put_bytes(&mut out, key);
                put_bytes(&mut out, &prev.value);
                put_meta(&mut out, prev);
            }
        }
    }
    out
}

pub(crate) fn decode_events(revision: u64, raw: &[u8]) -> Result<Vec<Event>> {
    let mut r = Reader { buf: raw };
    let count = r.u32()?;
    // Cap the preallocation: a damaged count must not become a huge allocation.
    let mut events = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        let event = match r.u8()? {
            TAG_PUT => {
                let key = r.bytes()?;
                let kv = r.kv(key.clone())?;
                let prev = match r.u8()? {
                    0 => None,
                    1 => Some(r.kv(key)?),
                    other => return Err(Error::corrupt(format!("log {revision}: flag {other}"))),
                };
                Event::Put { kv, prev }
            }
            TAG_DELETE => {
                let key = r.bytes()?;
                let prev = r.kv(key.clone())?;
                Event::Delete {
                    key,
                    revision,
                    prev,
                }
            }
            other => return Err(Error::corrupt(format!("log {revision}: event tag {other}"))),
        };
        events.push(event);
    }
    if !r.buf.is_empty() {
        return Err(Error::corrupt(format!("log {revision}: trailing bytes")));
    }
    Ok(events)
}

fn put_meta(out: &mut Vec<u8>, kv: &KeyValue) {
    out.extend_from_slice(&kv.create_revision.to_be_bytes());
    out.extend_from_slice(&kv.mod_revision.to_be_bytes());
    out.extend_from_slice(&kv.version.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let len = u32::try_from(b.len()).expect("keys and values are shorter than 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.buf.len() < n {
            return Err(Error::corrupt("record shorter than its header says"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes(b.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    fn meta(&mut self) -> Result<(u64, u64, u64)> {
        Ok((self.u64()?, self.u64()?, self.u64()?))
    }

    fn bytes(&mut self) -> Result<Bytes> {
        let len = self.u32()? as usize;
        Ok(Bytes::copy_from_slice(self.take(len)?))
    }

    /// A value and metadata, for a key read earlier.
    fn kv(&mut self, key: Bytes) -> Result<KeyValue> {
        let value = self.bytes()?;
        let (create_revision, mod_revision, version) = self.meta()?;
        Ok(KeyValue {
            key,
            value,
            create_revision,
            mod_revision,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn kv() -> impl Strategy<Value = KeyValue> {
        (
            proptest::collection::vec(any::<u8>(), 0..8),
            proptest::collection::vec(any::<u8>(), 0..8),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(k, v, c, m, ver)| KeyValue {
                key: k.into(),
                value: v.into(),
                create_revision: c,
                mod_revision: m,
                version: ver,
            })
    }

    fn event(revision: u64) -> impl Strategy<Value = Event> {
        prop_oneof![
            (kv(), proptest::option::of(kv())).prop_map(|(kv, prev)| {
                let prev = prev.map(|p| KeyValue {
                    key: kv.key.clone(),
                    ..p
                });
                Event::Put { kv, prev }
            }),
            kv().prop_map(move |prev| Event::Delete {
                key: prev.key.clone(),
                revision,
                prev,
            }),
        ]
    }

    proptest! {
        #[test]
        fn events_round_trip(events in proptest::collection::vec(event(7), 0..5)) {
            let raw = encode_events(&events);
            prop_assert_eq!(decode_events(7, &raw).unwrap(), events);
            // Every strict prefix is rejected, never misread.
            for cut in 0..raw.len() {
                prop_assert!(decode_events(7, &raw[..cut]).is_err());
            }
        }

        #[test]
        fn kv_round_trip(kv in kv()) {
            prop_assert_eq!(decode_kv(&kv.key, &encode_kv_value(&kv)).unwrap(), kv);
        }
    }
}
