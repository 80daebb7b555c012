//! Multipath next-hop sets, interned.
//!
//! Contract: while anyone holds a set from a [`super::Change`], every change with the same
//! next hops (same peers, same addresses, same order) carries the same `Arc`. A FIB can key its
//! next-hop groups by the pointer, and a host whose million prefixes all go to its two ToRs
//! gets one set, not a million vectors. The RIB itself keeps no set alive: once the consumers
//! drop a set, the next drain may free it.

use std::collections::HashSet;
use std::sync::Arc;

use crate::wire::NextHop;

use super::hash::Seeded;
use super::peer::PeerId;

/// A next hop of a multipath set and the peer it came from (which tells the driver the
/// interface of a link-local next hop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NextHopEntry {
    pub peer: PeerId,
    pub next_hop: NextHop,
}

/// The next hops a FIB installs for a prefix, best path first.
pub type NextHopSet = Arc<[NextHopEntry]>;

/// Sets below this many are never swept.
const MIN_COLLECT: usize = 256;

#[derive(Debug)]
pub(crate) struct NextHopSets {
    set: HashSet<NextHopSet, Seeded>,
    next_collect: usize,
}

impl NextHopSets {
    pub(crate) fn new(hasher: Seeded) -> Self {
        Self {
            set: HashSet::with_hasher(hasher),
            next_collect: MIN_COLLECT,
        }
    }

    /// The shared copy of `entries`.
    pub(crate) fn intern(&mut self, entries: &[NextHopEntry]) -> NextHopSet {
        if let Some(s) = self.set.get(entries) {
            return Arc::clone(s);
        }
        let s: NextHopSet = Arc::from(entries);
        self.set.insert(Arc::clone(&s));
        s
    }

    /// Frees sets nobody holds, once the table has doubled since the last time.
    pub(crate) fn maybe_collect(&mut self) {
        if self.set.len() >= self.next_collect {
            self.collect();
        }
    }

    pub(crate) fn collect(&mut self) {
        self.set.retain(|s| Arc::strong_count(s) > 1);
        self.next_collect = (2 * self.set.len()).max(MIN_COLLECT);
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.set.capacity() * (size_of::<NextHopSet>() + 1)
            + self
                .set
                .iter()
                .map(|s| 16 + s.len() * size_of::<NextHopEntry>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn equal_sets_share_one_arc_while_held() {
        let mut sets = NextHopSets::new(Seeded::random());
        let e = |n| NextHopEntry {
            peer: PeerId(n),
            next_hop: NextHop::V4(Ipv4Addr::new(192, 0, 2, n as u8)),
        };
        let a = sets.intern(&[e(1), e(2)]);
        let b = sets.intern(&[e(1), e(2)]);
        let c = sets.intern(&[e(2), e(1)]);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        drop((a, c));
        sets.collect();
        assert_eq!(sets.set.len(), 1);
        drop(b);
        sets.collect();
        assert!(sets.set.is_empty());
    }
}
