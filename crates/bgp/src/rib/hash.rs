//! The hasher behind the RIB's maps.
//!
//! Keys are prefixes (5 or 17 octets) and, for the attribute interner, attribute sets. SipHash
//! (std's default) costs more than the rest of a table probe for such small keys, so this is a
//! multiply-rotate hasher in the style of FxHash with two changes:
//! - a 64-bit finalizer (murmur3 `fmix64`), because the table indexes buckets by the low bits
//!   and a bare multiply leaves them depending only on the low input bits, which for prefixes
//!   are the ones that rarely change;
//! - a seed taken once per RIB from std's `RandomState`, so a peer cannot precompute prefixes
//!   that all land in one bucket. This is not SipHash-strong; the peers of a Clos host are its
//!   own ToRs, which filter what tenants announce.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};

const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// Builds [`FastHasher`]s that all start from one random seed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seeded {
    seed: u64,
}

impl Seeded {
    pub(crate) fn random() -> Self {
        Self {
            seed: RandomState::new().hash_one(0x5eed_u64),
        }
    }
}

impl BuildHasher for Seeded {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher { h: self.seed }
    }
}

/// See the module docs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastHasher {
    h: u64,
}

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.h = (self.h.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            if let Some(dst) = w.get_mut(..rest.len()) {
                dst.copy_from_slice(rest);
            }
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // murmur3 fmix64
        let mut h = self.h;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Shards of a [`ShardedMap`], chosen by the top bits of the key's hash.
const SHARD_BITS: u32 = 6;

/// A shard grows when its load would pass `MAX_LOAD_NUM / 16`.
const MAX_LOAD_NUM: usize = 13;

/// Slots of a shard's first allocation.
const MIN_SLOTS: usize = 16;

/// Tag of an empty slot. Occupied slots carry `OCCUPIED` plus seven bits of the hash, so a
/// probe compares keys only when the tags match.
const EMPTY: u8 = 0;
const OCCUPIED: u8 = 0x80;
/// Occupied, to be removed by the second pass of [`ShardedMap::retain`]; matches no tag.
const DOOMED: u8 = 1;

/// A hash map split into 64 open-addressing tables (linear probing, backward-shift deletion)
/// by the top bits of the key's hash.
///
/// Not hashbrown, for memory: hashbrown tables have a power-of-two number of buckets and grow
/// by doubling, so a full table sits anywhere between 44% and 88% load; a million prefixes
/// land at 48% (2^21 buckets), which made the RIB's table 69 MB where its entries are 33.
/// These tables have any number of slots (the home slot is the hash scaled to the table
/// size), stay below 81% load and grow by half, so a table is always between 54% and 81%
/// full (a million prefixes: 67%, 47 MB). Each shard grows on its own, so growing never needs
/// more than a 64th of the map again at once.
#[derive(Debug)]
pub(crate) struct ShardedMap<K, V> {
    hasher: Seeded,
    shards: Box<[Shard<K, V>]>,
}

#[derive(Debug)]
struct Shard<K, V> {
    /// Per slot: [`EMPTY`], [`DOOMED`] or `OCCUPIED | hash bits`.
    tags: Vec<u8>,
    /// Same length as `tags`. Empty slots hold some key and `V::default()`, so no slot is
    /// ever uninitialised.
    slots: Vec<(K, V)>,
    len: usize,
}

#[inline]
fn tag(h: u64) -> u8 {
    OCCUPIED | (h as u8 & 0x7f)
}

impl<K: Copy + Hash + Eq, V: Default> Shard<K, V> {
    fn new() -> Self {
        Self {
            tags: Vec::new(),
            slots: Vec::new(),
            len: 0,
        }
    }

    /// The first slot `h` probes: the hash bits below the shard bits, scaled to the size.
    #[inline]
    fn home(&self, h: u64) -> usize {
        ((u128::from(h << SHARD_BITS) * self.tags.len() as u128) >> 64) as usize
    }

    /// `Ok(slot)` of `key`, or `Err(empty slot)` where it would go. The table must have slots.
    #[inline]
    fn find(&self, h: u64, key: &K) -> Result<usize, usize> {
        let n = self.tags.len();
        let t = tag(h);
        let mut i = self.home(h);
        // The load stays below 1, so the probe meets an empty slot.
        loop {
            match self.tags.get(i) {
                Some(&EMPTY) => return Err(i),
                Some(&x) if x == t && self.slots.get(i).is_some_and(|(k, _)| k == key) => {
                    return Ok(i);
                }
                Some(_) => i += 1,
                None => return Err(usize::MAX),
            }
            if i == n {
                i = 0;
            }
        }
    }

    #[inline]
    fn lookup(&self, h: u64, key: &K) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        self.find(h, key).ok()
    }

    /// Whether one more entry would pass the maximum load.
    #[inline]
    fn full(&self) -> bool {
        (self.len + 1) * 16 > self.tags.len() * MAX_LOAD_NUM
    }

    /// Makes room for one more entry.
    fn reserve_one(&mut self, hasher: &Seeded, filler: K) {
        let n = self.tags.len();
        if !self.full() {
            return;
        }
        let new_n = (n + n / 2).max(MIN_SLOTS);
        let tags = std::mem::replace(&mut self.tags, vec![EMPTY; new_n]);
        let slots = std::mem::replace(
            &mut self.slots,
            std::iter::repeat_with(|| (filler, V::default()))
                .take(new_n)
                .collect(),
        );
        for (t, (k, v)) in tags.into_iter().zip(slots) {
            if t & OCCUPIED == 0 {
                continue;
            }
            let h = hasher.hash_one(k);
            if let Err(i) = self.find(h, &k)
                && let (Some(dt), Some(ds)) = (self.tags.get_mut(i), self.slots.get_mut(i))
            {
                *dt = t;
                *ds = (k, v);
            }
        }
    }

    /// The slot of `key`, inserted with `V::default()` if absent. One probe when the table
    /// has room (the common case): the empty slot that ends a failed search is where the key
    /// goes.
    fn slot_or_insert(&mut self, hasher: &Seeded, h: u64, key: K) -> usize {
        let probe = if self.len > 0 {
            Some(self.find(h, &key))
        } else {
            None
        };
        let slot = match probe {
            Some(Ok(i)) => return i,
            Some(Err(i)) if !self.full() => i,
            _ => {
                self.reserve_one(hasher, key);
                match self.find(h, &key) {
                    Ok(i) | Err(i) => i,
                }
            }
        };
        if let (Some(t), Some(s)) = (self.tags.get_mut(slot), self.slots.get_mut(slot)) {
            *t = tag(h);
            *s = (key, V::default());
            self.len += 1;
        }
        slot
    }

    /// Empties slot `i` and shifts the rest of its probe run back.
    fn remove_at(&mut self, hasher: &Seeded, i: usize) -> Option<V> {
        let n = self.tags.len();
        let v = std::mem::take(&mut self.slots.get_mut(i)?.1);
        *self.tags.get_mut(i)? = EMPTY;
        self.len -= 1;
        let mut hole = i;
        let mut j = i;
        loop {
            j = if j + 1 == n { 0 } else { j + 1 };
            let t = *self.tags.get(j)?;
            if t == EMPTY {
                break;
            }
            let home = self.home(hasher.hash_one(self.slots.get(j)?.0));
            // Move the entry into the hole unless its home lies after the hole.
            if (j + n - home) % n >= (j + n - hole) % n {
                *self.tags.get_mut(hole)? = t;
                *self.tags.get_mut(j)? = EMPTY;
                self.slots.swap(hole, j);
                hole = j;
            }
        }
        Some(v)
    }

    fn occupied(&self) -> impl Iterator<Item = (&K, &V)> {
        self.tags
            .iter()
            .zip(&self.slots)
            .filter(|(t, _)| **t & OCCUPIED != 0)
            .map(|(_, (k, v))| (k, v))
    }

    fn occupied_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.tags
            .iter()
            .zip(&mut self.slots)
            .filter(|(t, _)| **t & OCCUPIED != 0)
            .map(|(_, (k, v))| (&*k, v))
    }
}

impl<K: Copy + Hash + Eq, V: Default> ShardedMap<K, V> {
    pub(crate) fn new(hasher: Seeded) -> Self {
        Self {
            hasher,
            shards: (0..1 << SHARD_BITS).map(|_| Shard::new()).collect(),
        }
    }

    /// The key's hash and its shard.
    #[inline]
    fn locate(&self, key: &K) -> (u64, usize) {
        let h = self.hasher.hash_one(key);
        (h, (h >> (64 - SHARD_BITS)) as usize)
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let (h, s) = self.locate(key);
        let shard = self.shards.get(s)?;
        let i = shard.lookup(h, key)?;
        shard.slots.get(i).map(|(_, v)| v)
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let (h, s) = self.locate(key);
        let shard = self.shards.get_mut(s)?;
        let i = shard.lookup(h, key)?;
        shard.slots.get_mut(i).map(|(_, v)| v)
    }

    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let (h, s) = self.locate(&key);
        let shard = self.shards.get_mut(s)?;
        let len = shard.len;
        let i = shard.slot_or_insert(&self.hasher, h, key);
        let old = std::mem::replace(&mut shard.slots.get_mut(i)?.1, value);
        (shard.len == len).then_some(old)
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let (h, s) = self.locate(key);
        let shard = self.shards.get_mut(s)?;
        let i = shard.lookup(h, key)?;
        shard.remove_at(&self.hasher, i)
    }

    /// The value of `key`, inserted with `V::default()` if absent.
    pub(crate) fn get_or_default(&mut self, key: K) -> &mut V {
        let (h, s) = self.locate(&key);
        // `s` is below the number of shards by construction, as is the slot below the
        // table's; the modulos keep the indices in range without a panic path.
        let n = self.shards.len();
        let shard = &mut self.shards[s % n];
        let i = shard.slot_or_insert(&self.hasher, h, key);
        let m = shard.slots.len();
        &mut shard.slots[i % m].1
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len).sum()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(Shard::occupied)
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.shards.iter_mut().flat_map(Shard::occupied_mut)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    pub(crate) fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        let hasher = self.hasher;
        for s in self.shards.iter_mut() {
            // Mark first, remove after: a removal moves later entries back, which would make
            // a single pass skip or repeat some.
            let mut doomed = false;
            for (t, (k, v)) in s.tags.iter_mut().zip(s.slots.iter_mut()) {
                if *t & OCCUPIED != 0 && !f(k, v) {
                    *t = DOOMED;
                    doomed = true;
                }
            }
            if !doomed {
                continue;
            }
            // Entries only move back (wrapping from the front to the back), so every
            // doomed entry is met at or after the index this scan has reached.
            let mut i = 0;
            while i < s.tags.len() {
                if s.tags.get(i) == Some(&DOOMED) {
                    s.remove_at(&hasher, i);
                } else {
                    i += 1;
                }
            }
        }
    }

    /// Slots over all shards, for memory estimates: each costs an entry and a tag octet.
    pub(crate) fn buckets(&self) -> usize {
        self.shards.iter().map(|s| s.tags.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Prefix4;
    use std::collections::HashSet;

    #[test]
    fn sequential_prefixes_spread_over_low_bits() {
        let s = Seeded::random();
        // 4096 consecutive /24s differ only in the third octet; their low 12 hash bits
        // (the bucket index of a 4096-bucket table) must still be mostly distinct.
        let buckets: HashSet<u64> = (0u32..4096)
            .map(|i| {
                let p = Prefix4::new((0x0a00_0000 | (i << 8)).into(), 24).unwrap();
                s.hash_one(p) & 0xfff
            })
            .collect();
        assert!(buckets.len() > 2400, "{}", buckets.len());
    }

    #[test]
    fn sharded_map_is_a_map() {
        let mut m: ShardedMap<u32, u32> = ShardedMap::new(Seeded::random());
        for i in 0..10_000 {
            assert_eq!(m.insert(i, i), None);
        }
        *m.get_or_default(10_000) += 7;
        assert_eq!(m.len(), 10_001);
        assert_eq!(m.get(&10_000), Some(&7));
        assert_eq!(m.insert(5, 50), Some(5));
        assert_eq!(m.remove(&6), Some(6));
        assert_eq!(m.get(&6), None);
        if let Some(v) = m.get_mut(&7) {
            *v = 70;
        }
        m.retain(|k, _| k % 2 == 1);
        assert_eq!(m.len(), 5_000);
        assert_eq!(m.iter().map(|(_, v)| u64::from(*v)).max(), Some(9_999));
        assert!(m.values().all(|v| v % 2 == 1 || *v == 70 || *v == 50));
        assert!(m.buckets() >= 5_000);
        // The keys spread over the shards.
        assert!(m.shards.iter().all(|s| s.len > 0));
    }

    #[test]
    fn sharded_map_matches_hash_map() {
        // Random inserts, removals and retains over a small key space, so that probe runs
        // are long, wrap around the table end and get shifted by removals.
        let mut m: ShardedMap<u32, u64> = ShardedMap::new(Seeded::random());
        let mut r: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
        let mut x: u64 = 0x1234_5678;
        for step in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = (x % 3000) as u32;
            match x >> 60 {
                0..=7 => assert_eq!(m.insert(k, step), r.insert(k, step)),
                8..=13 => assert_eq!(m.remove(&k), r.remove(&k)),
                14 => {
                    *m.get_or_default(k) += 1;
                    *r.entry(k).or_default() += 1;
                }
                _ if step.is_multiple_of(64) => {
                    let keep = |k: &u32, v: &mut u64| {
                        *v += 1;
                        !(k ^ step as u32).is_multiple_of(3)
                    };
                    m.retain(keep);
                    r.retain(keep);
                }
                _ => assert_eq!(m.get(&k), r.get(&k)),
            }
            assert_eq!(m.len(), r.len());
        }
        let mut got: Vec<(u32, u64)> = m.iter().map(|(k, v)| (*k, *v)).collect();
        let mut want: Vec<(u32, u64)> = r.iter().map(|(k, v)| (*k, *v)).collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        for (k, v) in &want {
            assert_eq!(m.get(k), Some(v));
        }
        assert!(m.buckets() * MAX_LOAD_NUM >= m.len() * 16);
    }

    #[test]
    fn unaligned_tail_is_hashed() {
        let s = Seeded::random();
        let h = |b: &[u8]| {
            let mut x = s.build_hasher();
            x.write(b);
            x.finish()
        };
        assert_ne!(
            h(&[1, 2, 3, 4, 5, 6, 7, 8, 9]),
            h(&[1, 2, 3, 4, 5, 6, 7, 8, 10])
        );
    }
}
