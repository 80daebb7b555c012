//! Owner index: (subnet, owner id) -> allocation id, without storing the owner string twice.
//!
//! The owner string lives once, in the allocation. The index keys on a 64-bit fingerprint of
//! (subnet, owner) and the caller confirms a hit against the allocation (`is_key`). Two keys
//! with the same fingerprint are astronomically rare (~1M^2 / 2^65) but handled: the second
//! goes to a small `overflow` map keyed by the full key. Invariant: an overflow entry exists
//! only while the primary map holds a *different* key with the same fingerprint; removal
//! promotes a waiting overflow entry, so a primary miss is always a definitive miss.
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
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[derive(Debug, Clone)]
pub(crate) struct OwnerIndex {
    seed: RandomState,
    /// Fingerprint mask; all ones except in tests that force collisions.
    mask: u64,
    primary: HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
    overflow: HashMap<(u32, Box<str>), u32>,
}

impl Default for OwnerIndex {
    fn default() -> Self {
        OwnerIndex::with_mask(!0)
    }
}

impl OwnerIndex {
    pub(crate) fn with_mask(mask: u64) -> OwnerIndex {
        OwnerIndex {
            seed: RandomState::new(),
            mask,
            primary: HashMap::default(),
            overflow: HashMap::new(),
        }
    }

    /// An empty index with the same fingerprint settings.
    pub(crate) fn empty_like(&self) -> OwnerIndex {
        OwnerIndex {
            seed: self.seed.clone(),
            mask: self.mask,
            primary: HashMap::default(),
            overflow: HashMap::new(),
        }
    }

    fn fingerprint(&self, subnet: u32, owner: &str) -> u64 {
        self.seed.hash_one((subnet, owner)) & self.mask
    }

    pub(crate) fn len(&self) -> usize {
        self.primary.len() + self.overflow.len()
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
        if self.overflow.is_empty() {
            return None;
        }
        self.overflow.get(&(subnet, Box::from(owner))).copied()
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
        match self.primary.get(&fp) {
            None => {
                self.primary.insert(fp, id);
                true
            }
            Some(&other) if is_key(other) => false,
            Some(_) => {
                use std::collections::hash_map::Entry;
                match self.overflow.entry((subnet, Box::from(owner))) {
                    Entry::Occupied(_) => false,
                    Entry::Vacant(v) => {
                        v.insert(id);
                        true
                    }
                }
            }
        }
    }

    /// Removes the key and returns the id it mapped to.
    pub(crate) fn remove(
        &mut self,
        subnet: u32,
        owner: &str,
        is_key: impl Fn(u32) -> bool,
    ) -> Option<u32> {
        let fp = self.fingerprint(subnet, owner);
        let id = *self.primary.get(&fp)?;
        if !is_key(id) {
            return self.overflow.remove(&(subnet, Box::from(owner)));
        }
        self.primary.remove(&fp);
        // Promote a waiting key with the same fingerprint (overflow is almost always empty).
        let waiting = self
            .overflow
            .keys()
            .find(|(s, o)| self.fingerprint(*s, o) == fp)
            .cloned();
        if let Some(key) = waiting {
            if let Some(wid) = self.overflow.remove(&key) {
                self.primary.insert(fp, wid);
            }
        }
        Some(id)
    }

    /// Every allocation id in the index (for the checker).
    pub(crate) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.primary.values().chain(self.overflow.values()).copied()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        // hashbrown: one control byte per bucket plus the entry; capacity ~ 7/8 of buckets.
        let buckets = self.primary.capacity() * 8 / 7 + 1;
        buckets * (std::mem::size_of::<(u64, u32)>() + 1) + self.overflow.capacity() * 48
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
