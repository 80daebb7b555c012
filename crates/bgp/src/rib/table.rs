//! The route table of one address family: every path of every peer, per prefix.
//!
//! Layout, chosen for memory (a host holds a million prefixes from two ToRs):
//! - one hash map entry per prefix ([`Dest`], 32 octets) that stores the first [`INLINE`]
//!   paths in place, as parallel arrays so no padding is wasted per path;
//! - paths beyond those (route servers, anycast prefixes with many announcers) in a second map
//!   that only such prefixes have an entry in;
//! - the Adj-RIB-In of a peer is the set of paths carrying its [`PeerId`]; there is no
//!   per-peer map, so per-peer operations (peer down, stale sweeps, listings) scan the table.
//!
//! Contract: a prefix holds at most one path per peer; the inline slots fill first and in
//! order, so the spill vector is non-empty only when both inline slots are used. Every change
//! to a prefix's paths marks it dirty once (it is queued in `dirty` until the next drain), and
//! removing or replacing a path that was part of the last reported selection marks it forced,
//! so the drain reports it even if the selection looks the same. An entry with no paths stays
//! until the drain has reported its withdrawal.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use crate::wire::{Prefix, Prefix4, Prefix6};

use super::attrs::RouteAttrs;
use super::hash::{Seeded, ShardedMap};
use super::peer::PeerId;

/// Paths stored in the map entry itself.
pub(crate) const INLINE: usize = 2;

// Path flags.
pub(crate) const STALE: u8 = 1;
pub(crate) const REPORTED_BEST: u8 = 2;
pub(crate) const REPORTED_MP: u8 = 4;
const REPORTED_ANY: u8 = REPORTED_BEST | REPORTED_MP;

// Prefix state.
const DIRTY: u8 = 1;
/// A path of the reported selection was removed or replaced.
const FORCED: u8 = 2;
/// A best path was reported and not yet withdrawn.
const REPORTED: u8 = 4;
/// The spill map has paths for this prefix.
const SPILL: u8 = 8;

/// A prefix type a table is keyed by.
pub(crate) trait Key: Copy + Eq + Hash + Into<Prefix> + fmt::Debug {}
impl Key for Prefix4 {}
impl Key for Prefix6 {}

/// A path in owned form (spilled, or on its way out of the table).
#[derive(Debug)]
pub(crate) struct Path {
    pub attrs: Arc<RouteAttrs>,
    pub peer: PeerId,
    pub flags: u8,
}

/// A path in the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PathRef<'a> {
    pub attrs: &'a Arc<RouteAttrs>,
    pub peer: PeerId,
    pub flags: u8,
}

/// Where a path sits within its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Inline(usize),
    Spill(usize),
}

/// A [`PeerId`] in two octets, so that a [`Dest`] with its key fits 32 octets (a full table
/// costs 16 MB less): [`super::peer::MAX_PEERS`] bounds the ids, and [`PeerId::LOCAL`] is
/// `u16::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct ShortId(u16);

impl From<PeerId> for ShortId {
    fn from(id: PeerId) -> Self {
        if id.is_local() {
            ShortId(u16::MAX)
        } else {
            ShortId(u16::try_from(id.0).unwrap_or(u16::MAX - 1))
        }
    }
}

impl From<ShortId> for PeerId {
    fn from(id: ShortId) -> Self {
        if id.0 == u16::MAX {
            PeerId::LOCAL
        } else {
            PeerId(u32::from(id.0))
        }
    }
}

/// The paths of one prefix (the first [`INLINE`] of them) and its change-tracking state.
#[derive(Debug, Default)]
pub(crate) struct Dest {
    attrs: [Option<Arc<RouteAttrs>>; INLINE],
    peers: [ShortId; INLINE],
    flags: [u8; INLINE],
    state: u8,
}

impl Dest {
    fn is_empty(&self) -> bool {
        self.attrs.iter().all(Option::is_none)
    }

    fn has_spill(&self) -> bool {
        self.state & SPILL != 0
    }

    fn inline_slot(&self, peer: PeerId) -> Option<usize> {
        self.attrs
            .iter()
            .zip(&self.peers)
            .position(|(a, p)| a.is_some() && PeerId::from(*p) == peer)
    }

    fn set_inline(&mut self, i: usize, path: Option<Path>) {
        let (attrs, peer, flags) = match path {
            Some(p) => (Some(p.attrs), ShortId::from(p.peer), p.flags),
            None => (None, ShortId::default(), 0),
        };
        if let (Some(a), Some(p), Some(f)) = (
            self.attrs.get_mut(i),
            self.peers.get_mut(i),
            self.flags.get_mut(i),
        ) {
            (*a, *p, *f) = (attrs, peer, flags);
        }
    }

    fn take_inline(&mut self, i: usize) -> Option<Path> {
        let attrs = self.attrs.get_mut(i)?.take()?;
        Some(Path {
            attrs,
            peer: self.peers.get(i).copied().unwrap_or_default().into(),
            flags: self.flags.get(i).copied().unwrap_or_default(),
        })
    }

    fn mark_dirty<K: Key>(&mut self, key: K, dirty: &mut Vec<K>) {
        if self.state & DIRTY == 0 {
            self.state |= DIRTY;
            dirty.push(key);
        }
    }
}

/// Every path of the prefix with its slot, inline ones first.
pub(crate) fn paths<'a>(
    dest: &'a Dest,
    spill: Option<&'a Vec<Path>>,
) -> impl Iterator<Item = (Slot, PathRef<'a>)> + 'a {
    let inline = dest
        .attrs
        .iter()
        .zip(dest.peers.iter().zip(&dest.flags))
        .enumerate()
        .filter_map(|(i, (a, (&peer, &flags)))| {
            let attrs = a.as_ref()?;
            let peer = peer.into();
            Some((Slot::Inline(i), PathRef { attrs, peer, flags }))
        });
    let spilled = spill.into_iter().flatten().enumerate().map(|(i, p)| {
        let r = PathRef {
            attrs: &p.attrs,
            peer: p.peer,
            flags: p.flags,
        };
        (Slot::Spill(i), r)
    });
    inline.chain(spilled)
}

/// The flags of the path in `slot`.
fn flags_mut<'a>(
    dest: &'a mut Dest,
    spill: Option<&'a mut Vec<Path>>,
    slot: Slot,
) -> Option<&'a mut u8> {
    match slot {
        Slot::Inline(i) => dest.flags.get_mut(i),
        Slot::Spill(i) => spill?.get_mut(i).map(|p| &mut p.flags),
    }
}

/// A drain sweeps the whole table instead of probing each queued prefix when at least
/// 1/`SWEEP_FRACTION` of the prefixes are queued.
const SWEEP_FRACTION: usize = 8;

/// Queue capacity (in prefixes) kept between drains.
const MAX_IDLE_QUEUE: usize = 64 * 1024;

/// Selects one queued prefix and reports it if its selection changed (see [`Table::drain`]).
fn reselect<K: Key>(
    key: K,
    dest: &mut Dest,
    mut spill: Option<&mut Vec<Path>>,
    chosen: &mut Vec<Slot>,
    select: &mut impl FnMut(&Dest, Option<&Vec<Path>>, &mut Vec<Slot>),
    emit: &mut impl FnMut(K, &Dest, Option<&Vec<Path>>, &[Slot]),
) {
    dest.state &= !DIRTY;
    chosen.clear();
    select(dest, spill.as_deref(), chosen);
    let mut changed = dest.state & FORCED != 0;
    for (slot, p) in paths(dest, spill.as_deref()) {
        changed |= reported_bits(chosen, slot) != p.flags & REPORTED_ANY;
    }
    let was_reported = dest.state & REPORTED != 0;
    dest.state &= !(FORCED | REPORTED);
    if chosen.is_empty() {
        if was_reported {
            emit(key, dest, spill.as_deref(), &[]);
        }
    } else {
        if changed {
            emit(key, dest, spill.as_deref(), chosen);
        }
        dest.state |= REPORTED;
    }
    // Remember what was reported.
    for (i, f) in dest.flags.iter_mut().enumerate() {
        *f = (*f & !REPORTED_ANY) | reported_bits(chosen, Slot::Inline(i));
    }
    for (j, p) in spill.iter_mut().flat_map(|v| v.iter_mut()).enumerate() {
        p.flags = (p.flags & !REPORTED_ANY) | reported_bits(chosen, Slot::Spill(j));
    }
}

/// The path in `slot`.
pub(crate) fn path_at<'a>(
    dest: &'a Dest,
    spill: Option<&'a Vec<Path>>,
    slot: Slot,
) -> Option<PathRef<'a>> {
    match slot {
        Slot::Inline(i) => Some(PathRef {
            attrs: dest.attrs.get(i)?.as_ref()?,
            peer: (*dest.peers.get(i)?).into(),
            flags: *dest.flags.get(i)?,
        }),
        Slot::Spill(i) => {
            let p = spill?.get(i)?;
            Some(PathRef {
                attrs: &p.attrs,
                peer: p.peer,
                flags: p.flags,
            })
        }
    }
}

/// The reported-selection flags `slot` gets for selection `chosen`.
fn reported_bits(chosen: &[Slot], slot: Slot) -> u8 {
    let mut bits = 0;
    if chosen.first() == Some(&slot) {
        bits |= REPORTED_BEST;
    }
    if chosen.contains(&slot) {
        bits |= REPORTED_MP;
    }
    bits
}

/// Removes `peer`'s path, keeping the inline slots packed.
fn take<K: Key>(
    dest: &mut Dest,
    spill: &mut HashMap<K, Vec<Path>, Seeded>,
    key: K,
    peer: PeerId,
) -> Option<Path> {
    if let Some(i) = dest.inline_slot(peer) {
        let removed = dest.take_inline(i)?;
        for j in i..INLINE - 1 {
            let next = dest.take_inline(j + 1);
            dest.set_inline(j, next);
        }
        if dest.has_spill() {
            let refill = spill.get_mut(&key).and_then(Vec::pop);
            dest.set_inline(INLINE - 1, refill);
            if spill.get(&key).is_none_or(Vec::is_empty) {
                spill.remove(&key);
                dest.state &= !SPILL;
            }
        }
        return Some(removed);
    }
    if !dest.has_spill() {
        return None;
    }
    let v = spill.get_mut(&key)?;
    let j = v.iter().position(|p| p.peer == peer)?;
    let removed = v.swap_remove(j);
    if v.is_empty() {
        spill.remove(&key);
        dest.state &= !SPILL;
    }
    Some(removed)
}

/// What [`Table::upsert`] did.
#[derive(Debug)]
pub(crate) enum Upsert {
    /// The peer had no path for the prefix.
    Added,
    /// The peer's path had other attributes, returned here for release.
    Replaced {
        old: Arc<RouteAttrs>,
        was_stale: bool,
    },
    /// The peer's path had the same attributes; only its stale mark was cleared.
    Refreshed { was_stale: bool },
}

/// What a per-peer scan does with each of the peer's paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visit {
    Keep,
    /// Keep, and queue the prefix for re-selection.
    Touch,
    Remove,
}

/// One address family's routes.
#[derive(Debug)]
pub(crate) struct Table<K> {
    /// Sharded, so that growing a full table does not need half its size again at once.
    dests: ShardedMap<K, Dest>,
    spill: HashMap<K, Vec<Path>, Seeded>,
    dirty: Vec<K>,
}

impl<K: Key> Table<K> {
    pub(crate) fn new(hasher: Seeded) -> Self {
        Self {
            dests: ShardedMap::new(hasher),
            spill: HashMap::with_hasher(hasher),
            dirty: Vec::new(),
        }
    }

    /// Prefixes with an entry (including ones whose withdrawal is not yet drained).
    pub(crate) fn len(&self) -> usize {
        self.dests.len()
    }

    pub(crate) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Sets `peer`'s path for `key`; clears its stale mark.
    pub(crate) fn upsert(&mut self, key: K, peer: PeerId, attrs: Arc<RouteAttrs>) -> Upsert {
        let dest = self.dests.get_or_default(key);
        let mut spill = if dest.has_spill() {
            self.spill.get_mut(&key)
        } else {
            None
        };
        let found = dest.inline_slot(peer).map(Slot::Inline).or_else(|| {
            let i = spill.as_ref()?.iter().position(|p| p.peer == peer)?;
            Some(Slot::Spill(i))
        });
        if let Some(slot) = found {
            let (a, f) = match slot {
                Slot::Inline(i) => (
                    dest.attrs.get_mut(i).and_then(Option::as_mut),
                    dest.flags.get_mut(i),
                ),
                Slot::Spill(i) => match spill.as_mut().and_then(|v| v.get_mut(i)) {
                    Some(p) => (Some(&mut p.attrs), Some(&mut p.flags)),
                    None => (None, None),
                },
            };
            if let (Some(a), Some(f)) = (a, f) {
                let was_stale = *f & STALE != 0;
                if Arc::ptr_eq(a, &attrs) {
                    *f &= !STALE;
                    return Upsert::Refreshed { was_stale };
                }
                let old = std::mem::replace(a, attrs);
                let reported = *f & REPORTED_ANY != 0;
                *f = 0;
                if reported {
                    dest.state |= FORCED;
                }
                dest.mark_dirty(key, &mut self.dirty);
                return Upsert::Replaced { old, was_stale };
            }
        }
        let path = Path {
            attrs,
            peer,
            flags: 0,
        };
        match dest.attrs.iter().position(Option::is_none) {
            Some(i) => dest.set_inline(i, Some(path)),
            None => {
                self.spill.entry(key).or_default().push(path);
                dest.state |= SPILL;
            }
        }
        dest.mark_dirty(key, &mut self.dirty);
        Upsert::Added
    }

    /// Removes `peer`'s path for `key`.
    pub(crate) fn remove(&mut self, key: K, peer: PeerId) -> Option<Path> {
        let dest = self.dests.get_mut(&key)?;
        let removed = take(dest, &mut self.spill, key, peer)?;
        if removed.flags & REPORTED_ANY != 0 {
            dest.state |= FORCED;
        }
        dest.mark_dirty(key, &mut self.dirty);
        Some(removed)
    }

    /// Calls `f` with the flags of each of `peer`'s paths and acts on its answer; removed
    /// paths go to `removed`.
    pub(crate) fn visit_peer(
        &mut self,
        peer: PeerId,
        mut f: impl FnMut(&mut u8) -> Visit,
        mut removed: impl FnMut(Path),
    ) {
        for (&key, dest) in self.dests.iter_mut() {
            let slot = dest.inline_slot(peer).map(Slot::Inline).or_else(|| {
                if !dest.has_spill() {
                    return None;
                }
                let i = self.spill.get(&key)?.iter().position(|p| p.peer == peer)?;
                Some(Slot::Spill(i))
            });
            let Some(slot) = slot else { continue };
            let Some(flags) = flags_mut(dest, self.spill.get_mut(&key), slot) else {
                continue;
            };
            match f(flags) {
                Visit::Keep => {}
                Visit::Touch => dest.mark_dirty(key, &mut self.dirty),
                Visit::Remove => {
                    if let Some(p) = take(dest, &mut self.spill, key, peer) {
                        if p.flags & REPORTED_ANY != 0 {
                            dest.state |= FORCED;
                        }
                        dest.mark_dirty(key, &mut self.dirty);
                        removed(p);
                    }
                }
            }
        }
    }

    /// The paths of `key`, if it has an entry.
    pub(crate) fn get(&self, key: &K) -> Option<(&Dest, Option<&Vec<Path>>)> {
        let dest = self.dests.get(key)?;
        let spill = if dest.has_spill() {
            self.spill.get(key)
        } else {
            None
        };
        Some((dest, spill))
    }

    /// Every prefix with its paths, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, &Dest, Option<&Vec<Path>>)> {
        self.dests.iter().map(|(k, d)| {
            let spill = if d.has_spill() {
                self.spill.get(k)
            } else {
                None
            };
            (*k, d, spill)
        })
    }

    /// Every path of `peer`.
    pub(crate) fn iter_peer(&self, peer: PeerId) -> impl Iterator<Item = (K, PathRef<'_>)> {
        self.iter().filter_map(move |(k, d, s)| {
            let (_, p) = paths(d, s).find(|(_, p)| p.peer == peer)?;
            Some((k, p))
        })
    }

    /// Takes the queue of prefixes changed since the last drain. For each, `select` fills
    /// `chosen` with the slots of the new selection (best first; empty if nothing is
    /// selectable). `emit` is called with the selection when it differs from the one last
    /// reported, or with an empty one when the prefix lost its last selectable path.
    pub(crate) fn drain(
        &mut self,
        chosen: &mut Vec<Slot>,
        mut select: impl FnMut(&Dest, Option<&Vec<Path>>, &mut Vec<Slot>),
        mut emit: impl FnMut(K, &Dest, Option<&Vec<Path>>, &[Slot]),
    ) {
        if self.dirty.is_empty() {
            return;
        }
        let spill = &mut self.spill;
        let mut one = |key: K, dest: &mut Dest| {
            let s = if dest.has_spill() {
                spill.get_mut(&key)
            } else {
                None
            };
            reselect(key, dest, s, chosen, &mut select, &mut emit);
        };
        // After a bulk load most entries are queued: one pass in memory order then beats a
        // random probe per queued prefix by an order of magnitude (cache misses).
        if self.dirty.len() >= self.dests.len() / SWEEP_FRACTION {
            self.dests.retain(|&key, dest| {
                if dest.state & DIRTY != 0 {
                    one(key, dest);
                }
                !dest.is_empty()
            });
        } else {
            for &key in &self.dirty {
                let Some(dest) = self.dests.get_mut(&key) else {
                    continue;
                };
                one(key, dest);
                if dest.is_empty() {
                    self.dests.remove(&key);
                }
            }
        }
        self.dirty.clear();
        // Keep the queue's allocation for steady churn, not the one a bulk load grew.
        self.dirty.shrink_to(MAX_IDLE_QUEUE);
    }

    /// Approximate heap octets of the table.
    pub(crate) fn heap_bytes(&self) -> usize {
        let bucket = |cap: usize| {
            // Capacity is 7/8 of the bucket count (a power of two), one control octet each.
            if cap == 0 {
                0
            } else {
                (cap * 8 / 7).next_power_of_two()
            }
        };
        self.dests.buckets() * (size_of::<(K, Dest)>() + 1)
            + bucket(self.spill.capacity()) * (size_of::<(K, Vec<Path>)>() + 1)
            + self
                .spill
                .values()
                .map(|v| v.capacity() * size_of::<Path>())
                .sum::<usize>()
            + self.dirty.capacity() * size_of::<K>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(n: u32) -> Arc<RouteAttrs> {
        Arc::new(RouteAttrs::new(
            crate::wire::PathAttributes {
                med: Some(n),
                ..Default::default()
            },
            None,
        ))
    }

    fn key(s: &str) -> Prefix4 {
        s.parse().unwrap()
    }

    fn peers_of(t: &Table<Prefix4>, k: Prefix4) -> Vec<u32> {
        let (d, s) = t.get(&k).unwrap();
        paths(d, s).map(|(_, p)| p.peer.0).collect()
    }

    #[test]
    fn entry_is_small() {
        assert_eq!(size_of::<Dest>(), 24);
        assert!(size_of::<(Prefix4, Dest)>() <= 32);
    }

    #[test]
    fn spill_keeps_inline_packed() {
        let mut t = Table::new(Seeded::random());
        let k = key("10.0.0.0/24");
        for p in 0..5 {
            assert!(matches!(t.upsert(k, PeerId(p), attrs(p)), Upsert::Added));
        }
        assert_eq!(peers_of(&t, k), vec![0, 1, 2, 3, 4]);
        assert_eq!(t.remove(k, PeerId(0)).unwrap().peer, PeerId(0));
        let mut got = peers_of(&t, k);
        got.sort();
        assert_eq!(got, vec![1, 2, 3, 4]);
        for p in [3, 1, 4] {
            assert!(t.remove(k, PeerId(p)).is_some());
        }
        assert_eq!(peers_of(&t, k), vec![2]);
        assert!(t.spill.is_empty());
        assert!(t.remove(k, PeerId(2)).is_some());
        assert!(t.remove(k, PeerId(2)).is_none());
    }

    #[test]
    fn same_attributes_only_refresh() {
        let mut t = Table::new(Seeded::random());
        let k = key("10.0.0.0/24");
        let a = attrs(1);
        t.upsert(k, PeerId(0), Arc::clone(&a));
        t.drain(&mut Vec::new(), |_, _, _| {}, |_, _, _, _| {});
        assert!(t.dirty.is_empty());
        assert!(matches!(
            t.upsert(k, PeerId(0), Arc::clone(&a)),
            Upsert::Refreshed { was_stale: false }
        ));
        assert!(t.dirty.is_empty());
        assert!(matches!(
            t.upsert(k, PeerId(0), attrs(2)),
            Upsert::Replaced { .. }
        ));
        assert_eq!(t.dirty, vec![k]);
    }

    #[test]
    fn prefix_is_queued_once() {
        let mut t = Table::new(Seeded::random());
        let k = key("10.0.0.0/24");
        for p in 0..4 {
            t.upsert(k, PeerId(p), attrs(p));
            t.remove(k, PeerId(p));
        }
        assert_eq!(t.dirty, vec![k]);
    }
}
