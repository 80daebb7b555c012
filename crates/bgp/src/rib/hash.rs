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

use std::collections::HashMap;
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

/// Shards of a [`ShardedMap`], chosen by the top bits of a second, independently seeded hash.
const SHARD_BITS: u32 = 6;

/// A hash map split into 64 maps by a second, independently seeded hash of the key. Each
/// shard grows on its own: hashbrown grows by moving every entry into a table twice the size,
/// so one map of a full table briefly holds one and a half times its final size (the peak RSS
/// a benchmark sees); 64 shards grow one at a time and add a 64th at most.
#[derive(Debug)]
pub(crate) struct ShardedMap<K, V> {
    select: Seeded,
    shards: Box<[HashMap<K, V, Seeded>]>,
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    pub(crate) fn new(hasher: Seeded) -> Self {
        Self {
            select: Seeded::random(),
            shards: (0..1 << SHARD_BITS)
                .map(|_| HashMap::with_hasher(hasher))
                .collect(),
        }
    }

    #[inline]
    fn shard(&self, key: &K) -> usize {
        (self.select.hash_one(key) >> (64 - SHARD_BITS)) as usize
    }

    #[inline]
    fn at(&self, key: &K) -> Option<&HashMap<K, V, Seeded>> {
        self.shards.get(self.shard(key))
    }

    #[inline]
    fn at_mut(&mut self, key: &K) -> Option<&mut HashMap<K, V, Seeded>> {
        let i = self.shard(key);
        self.shards.get_mut(i)
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.at(key)?.get(key)
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.at_mut(key)?.get_mut(key)
    }

    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.at_mut(&key)?.insert(key, value)
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        self.at_mut(key)?.remove(key)
    }

    /// The value of `key`, inserted with `V::default()` if absent.
    pub(crate) fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        let i = self.shard(&key);
        // `shard` is below the number of shards by construction; the modulo keeps the index
        // in range without a panic path.
        let n = self.shards.len();
        self.shards[i % n].entry(key).or_default()
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flatten()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.shards.iter_mut().flatten()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.shards.iter().flat_map(HashMap::values)
    }

    pub(crate) fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        for s in self.shards.iter_mut() {
            s.retain(&mut f);
        }
    }

    /// Buckets over all shards (a power of two per shard, 8/7 of its capacity), for memory
    /// estimates: each costs an entry and a control octet.
    pub(crate) fn buckets(&self) -> usize {
        self.shards
            .iter()
            .map(|s| match s.capacity() {
                0 => 0,
                cap => (cap * 8 / 7).next_power_of_two(),
            })
            .sum()
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
        assert!(m.shards.iter().all(|s| !s.is_empty()));
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
