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
use std::hash::{BuildHasher, Hasher};

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
