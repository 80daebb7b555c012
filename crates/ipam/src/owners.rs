//! Owner index: (subnet, owner id) -> allocation id, without storing the owner string twice.
//!
//! The owner string lives once, in the allocation. The index keys on a 32-bit fingerprint of
//! (subnet, owner) and the caller confirms a hit against the allocation (`is_key`). A 32-bit
//! key keeps the table at 9 bytes per bucket; the price is the occasional collision (about a
//! hundred at 1M owners), which goes to a small `overflow` map from fingerprint to the other
//! ids with that fingerprint. Invariant: a fingerprint is in `overflow` only while it is also in
//! `primary`; removal promotes a waiting id, so a primary miss is always a definitive miss.
//!
//! The fingerprint uses a per-process random SipHash key, so hostile owner ids cannot force
//! collisions.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

/// The primary map's keys are already uniform hashes; hashing them again is wasted work.
#[derive(Debug, Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        // hashbrown takes its control bits from the top 7 bits: spread the 32-bit key there.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u32(&mut self, v: u32) {
        self.0 = u64::from(v);
    }
}

type Fast<V> = HashMap<u32, V, BuildHasherDefault<PassThrough>>;

#[derive(Debug, Clone)]
pub(crate) struct OwnerIndex {
    seed: RandomState,
    /// Fingerprint mask; all ones except in tests that force collisions.
    mask: u32,
    primary: Fast<u32>,
    overflow: Fast<Vec<u32>>,
}

impl Default for OwnerIndex {
    fn default() -> Self {
        OwnerIndex::with_mask(!0)
    }
}

impl OwnerIndex {
    pub(crate) fn with_mask(mask: u32) -> OwnerIndex {
        OwnerIndex {
            seed: RandomState::new(),
            mask,
            primary: Fast::default(),
            overflow: Fast::default(),
        }
    }

    /// An empty index with the same fingerprint settings.
    pub(crate) fn empty_like(&self) -> OwnerIndex {
        OwnerIndex {
            seed: self.seed.clone(),
            mask: self.mask,
            primary: Fast::default(),
            overflow: Fast::default(),
        }
    }

    fn fingerprint(&self, subnet: u32, owner: &str) -> u32 {
        (self.seed.hash_one((subnet, owner)) as u32) & self.mask
    }

    pub(crate) fn len(&self) -> usize {
        self.primary.len() + self.overflow.values().map(Vec::len).sum::<usize>()
    }

    /// `is_key(id)` must say whether allocation `id` has key (subnet, owner).
    pub(crate) fn get(
        &self,
        subnet: u32,
        owner: &str,
        is_key: impl Fn(u32) -> bool,
    ) -> Option<u32> {
        let fp = self.fingerprint(subnet, owner);
        let id = *self.primary.get(&fp)?;
        if is_key(id) {
            return Some(id);
        }
        self.overflow
            .get(&fp)?
            .iter()
            .copied()
            .find(|&id| is_key(id))
    }

    /// Adds the key; returns false (and changes nothing) if it is already present.
    pub(crate) fn insert(
        &mut self,
        subnet: u32,
        owner: &str,
        id: u32,
        is_key: impl Fn(u32) -> bool,
    ) -> bool {
        let fp = self.fingerprint(subnet, owner);
        let Some(&first) = self.primary.get(&fp) else {
            self.primary.insert(fp, id);
            return true;
        };
        let others = self.overflow.entry(fp).or_default();
        if is_key(first) || others.iter().any(|&o| is_key(o)) {
            if others.is_empty() {
                self.overflow.remove(&fp);
            }
            return false;
        }
        others.push(id);
        true
    }

    /// Removes the key and returns the id it mapped to.
    pub(crate) fn remove(
        &mut self,
        subnet: u32,
        owner: &str,
        is_key: impl Fn(u32) -> bool,
    ) -> Option<u32> {
        let fp = self.fingerprint(subnet, owner);
        let first = *self.primary.get(&fp)?;
        let others = self.overflow.get_mut(&fp);
        if is_key(first) {
            // Promote a waiting id with the same fingerprint, if any.
            match others.and_then(|o| o.pop().map(|p| (p, o.is_empty()))) {
                Some((promoted, now_empty)) => {
                    self.primary.insert(fp, promoted);
                    if now_empty {
                        self.overflow.remove(&fp);
                    }
                }
                None => {
                    self.primary.remove(&fp);
                }
            }
            return Some(first);
        }
        let others = others?;
        let pos = others.iter().position(|&o| is_key(o))?;
        let id = others.swap_remove(pos);
        if others.is_empty() {
            self.overflow.remove(&fp);
        }
        Some(id)
    }

    /// Every allocation id in the index (for the checker).
    pub(crate) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.primary
            .values()
            .copied()
            .chain(self.overflow.values().flatten().copied())
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        // hashbrown: capacity is ~7/8 of the buckets, one control byte per bucket.
        let buckets = |cap: usize| {
            if cap == 0 {
                0
            } else {
                (cap * 8 / 7).next_power_of_two()
            }
        };
        buckets(self.primary.capacity()) * (8 + 1)
            + buckets(self.overflow.capacity()) * (4 + 24 + 1)
            + self
                .overflow
                .values()
                .map(|v| v.capacity() * 4)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// With a 2-bit fingerprint nearly every key collides, which exercises overflow and
    /// promotion against a plain map.
    #[test]
    fn collisions_behave_like_a_map() {
        let mut idx = OwnerIndex::with_mask(0b11);
        assert_eq!(idx.len(), 0);
        let mut keys: BTreeMap<u32, (u32, String)> = BTreeMap::new();
        let mut model: BTreeMap<(u32, String), u32> = BTreeMap::new();
        let mut next = 0u32;
        for round in 0..400u32 {
            let subnet = round % 3;
            let owner = format!("o{}", (round * 7) % 23);
            let key = (subnet, owner.clone());
            let lookup = |keys: &BTreeMap<u32, (u32, String)>, id: u32| {
                keys.get(&id) == Some(&(subnet, owner.clone()))
            };
            if round % 5 < 3 {
                let inserted = idx.insert(subnet, &owner, next, |id| lookup(&keys, id));
                assert_eq!(inserted, !model.contains_key(&key));
                if inserted {
                    keys.insert(next, key.clone());
                    model.insert(key.clone(), next);
                    next += 1;
                }
            } else {
                let removed = idx.remove(subnet, &owner, |id| lookup(&keys, id));
                assert_eq!(removed, model.remove(&key));
                if let Some(id) = removed {
                    keys.remove(&id);
                }
            }
            for ((s, o), &id) in &model {
                let got = idx.get(*s, o, |i| keys.get(&i) == Some(&(*s, o.clone())));
                assert_eq!(got, Some(id));
            }
            assert_eq!(idx.len(), model.len());
        }
    }
}
