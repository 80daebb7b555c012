//! The RIB: post-policy Adj-RIB-In of every peer, the Loc-RIB with best path and multipath
//! selection, locally originated routes, graceful restart and the change stream for the FIB
//! and for export.
//!
//! Sans-IO like the rest of the crate: nothing here reads the clock (the graceful restart
//! timer belongs to the caller, who passes `now` where a time is recorded) and nothing
//! panics on peer input.
//!
//! Contracts:
//! - **Storage.** Identical attribute sets (attributes plus next hop) are interned and shared
//!   as one `Arc<RouteAttrs>`; a route costs a pointer, a [`PeerId`] and a flag octet inside
//!   its prefix's table entry, and a prefix with up to two paths costs one hash map entry and
//!   no other allocation. The Adj-RIB-In of a peer is the set of paths with its id; per-peer
//!   operations scan the table.
//! - **Input.** [`Rib::apply_outcome`] takes what the session emits
//!   ([`crate::session::Output::Update`]): treat-as-withdraw withdraws every prefix of the
//!   UPDATE, attribute-discard applies the cleaned UPDATE. [`Rib::apply_update`] applies
//!   withdrawals (classic and MP_UNREACH_NLRI) first, then announcements (classic NLRI with
//!   NEXT_HOP, MP_REACH_NLRI with its next hop, IPv4 NLRI with IPv6 next hops as in RFC 8950),
//!   and treats an End-of-RIB marker as [`Rib::end_of_rib`]. Announcements whose AS_PATH
//!   contains the peer's local AS are loops: counted and dropped, withdrawing an earlier route
//!   of the peer for the prefix, as does an import policy rejection.
//! - **Selection** follows RFC 4271 9.1.2.2 and depends only on the set of paths, never on the
//!   order they arrived in; [`RibConfig`] lists the steps and the multipath rule.
//! - **Changes.** Selection is deferred: updates only queue the prefixes they touched.
//!   [`Rib::drain_changes`] selects each queued prefix once and returns a [`Change`] for those
//!   whose best path or multipath set differs from what the previous drain reported, so any
//!   number of updates to one prefix between drains give at most one change, and an update
//!   that ends where it started gives none. The next hops of a change are interned
//!   ([`NextHopSet`]), so a FIB can key its next-hop groups by pointer.
//! - **Graceful restart** (RFC 4724): [`Rib::peer_down`] with `graceful` keeps the peer's
//!   routes, marked stale, in use; a re-announcement clears the mark; [`Rib::end_of_rib`] and
//!   [`Rib::stale_expired`] remove those still stale. The caller decides `graceful` from
//!   [`crate::session::DownReason::allows_graceful_restart`] and the negotiated capability,
//!   and calls `end_of_rib` for a family the peer no longer preserves forwarding state for.
//! - **Maximum prefixes.** Routes are never dropped for exceeding a peer's limit;
//!   [`ApplyReport::max_prefix`] says the limit is exceeded and the session layer resets the
//!   session (Cease, Maximum Number of Prefixes Reached), then calls [`Rib::peer_down`].

mod attrs;
pub(crate) mod hash;
mod import;
mod nexthop;
mod peer;
mod select;
mod table;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use crate::wire::{
    Family, NextHop, PathAttributes, Prefix, Prefix4, Prefix6, Update, UpdateOutcome,
};

pub use attrs::{DEFAULT_LOCAL_PREF, RouteAttrs};
pub use import::{AcceptAll, Import, Verdict};
pub use nexthop::{NextHopEntry, NextHopSet};
pub use peer::{PeerCounters, PeerId, PeerInfo, PrefixCount};
pub use select::RibConfig;

use attrs::Interner;
use hash::Seeded;
use nexthop::NextHopSets;
use peer::Peers;
use select::Selector;
use table::{Dest, Key, Path, Slot, Table, Upsert, Visit, path_at, paths};

/// A route as shown to the outside: whose it is and its interned attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub peer: PeerId,
    pub attrs: Arc<RouteAttrs>,
    /// Kept across the peer's graceful restart and not yet re-announced.
    pub stale: bool,
}

/// The new state of one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub prefix: Prefix,
    /// The best path, or `None` when the prefix is no longer reachable.
    pub best: Option<Route>,
    /// What the FIB installs: the multipath set's next hops, best path first (interned, see
    /// [`NextHopSet`]). Empty when the prefix is unreachable or its best path is locally
    /// originated.
    pub multipath: NextHopSet,
}

/// One prefix of the Loc-RIB, for status output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocRibEntry {
    pub prefix: Prefix,
    pub best: Route,
    /// The multipath set, best path first.
    pub multipath: Vec<Route>,
}

/// A peer has more routes than its configured maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPrefixExceeded {
    pub peer: PeerId,
    pub limit: u32,
    /// The prefixes counted, as the peer's [`PrefixCount`] says.
    pub count: u32,
}

/// What applying one UPDATE did. Counts are prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApplyReport {
    /// Announcements stored (new, replacing, or refreshing a stale route).
    pub accepted: u32,
    /// Withdrawals received, whether or not the peer had the route.
    pub withdrawn: u32,
    pub rejected: u32,
    pub looped: u32,
    /// The UPDATE was this family's End-of-RIB marker.
    pub end_of_rib: Option<Family>,
    /// Stale routes removed by the End-of-RIB marker.
    pub stale_removed: u32,
    /// Set while the peer has more routes than its maximum: reset the session.
    pub max_prefix: Option<MaxPrefixExceeded>,
}

/// Approximate memory use, for status and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUsage {
    pub prefixes: usize,
    pub routes: u64,
    pub attribute_sets: usize,
    /// Heap octets of the tables, the interned attribute sets and the change queues.
    pub bytes: usize,
}

/// The routing information base. See the module docs.
#[derive(Debug)]
pub struct Rib {
    v4: Table<Prefix4>,
    v6: Table<Prefix6>,
    interner: Interner,
    next_hops: NextHopSets,
    /// Scratch for building next-hop sets.
    entries: Vec<NextHopEntry>,
    peers: Peers,
    selector: Selector,
    /// Scratch for selections during a drain.
    chosen: Vec<Slot>,
    local_routes: u32,
}

impl Default for Rib {
    fn default() -> Self {
        Self::new(RibConfig::default())
    }
}

impl Rib {
    pub fn new(config: RibConfig) -> Self {
        let hasher = Seeded::random();
        Self {
            v4: Table::new(hasher),
            v6: Table::new(hasher),
            interner: Interner::new(hasher),
            next_hops: NextHopSets::new(hasher),
            entries: Vec::new(),
            peers: Peers::default(),
            selector: Selector::new(config),
            chosen: Vec::new(),
            local_routes: 0,
        }
    }

    pub fn config(&self) -> &RibConfig {
        &self.selector.config
    }

    // ----- peers -----

    /// Registers a peer; its id stays valid until [`Rib::remove_peer`].
    pub fn add_peer(&mut self, info: PeerInfo) -> PeerId {
        self.peers.add(info)
    }

    /// Removes the peer and all its routes. Returns false for an unknown id.
    pub fn remove_peer(&mut self, peer: PeerId) -> bool {
        if self.peer_down_at(peer, false, None).is_none() {
            return false;
        }
        self.peers.remove(peer).is_some()
    }

    /// Replaces what the RIB knows about a peer (its router id after a restart, its weight)
    /// and re-runs selection for its prefixes. Returns false for an unknown id.
    pub fn update_peer(&mut self, peer: PeerId, info: PeerInfo) -> bool {
        let Some(slot) = self.peers.get_mut(peer) else {
            return false;
        };
        slot.info = info;
        self.v4.visit_peer(peer, |_| Visit::Touch, drop);
        self.v6.visit_peer(peer, |_| Visit::Touch, drop);
        true
    }

    pub fn peer_info(&self, peer: PeerId) -> Option<&PeerInfo> {
        self.peers.info(peer)
    }

    pub fn peer_counters(&self, peer: PeerId) -> Option<PeerCounters> {
        self.peers.get(peer).map(|s| s.counters)
    }

    /// Every registered peer with its info and counters.
    pub fn peers(&self) -> impl Iterator<Item = (PeerId, &PeerInfo, PeerCounters)> {
        self.peers.iter().map(|(id, s)| (id, &s.info, s.counters))
    }

    // ----- input -----

    /// Applies what the session decoded: the UPDATE, its RFC 7606 treat-as-withdraw form, or
    /// nothing for a session reset (the session handles those). `None` for an unknown peer.
    pub fn apply_outcome(
        &mut self,
        peer: PeerId,
        outcome: &UpdateOutcome,
        policy: &mut impl Import,
    ) -> Option<ApplyReport> {
        match outcome {
            UpdateOutcome::Ok(u) | UpdateOutcome::AttributeDiscard { update: u, .. } => {
                self.apply_update(peer, u, policy)
            }
            // Not `apply_update`: a treat-as-withdraw UPDATE without prefixes is no
            // End-of-RIB marker.
            UpdateOutcome::TreatAsWithdraw { withdrawals, .. } => {
                let all = withdrawals.withdrawals().chain(withdrawals.announced());
                self.withdraw_all(peer, all)
            }
            UpdateOutcome::SessionReset(_) => {
                self.peers.get(peer)?;
                Some(ApplyReport::default())
            }
        }
    }

    /// Applies one UPDATE from `peer` through its import `policy`. `None` for an unknown peer.
    pub fn apply_update(
        &mut self,
        peer: PeerId,
        update: &Update,
        policy: &mut impl Import,
    ) -> Option<ApplyReport> {
        if let Some(family) = update.end_of_rib_family() {
            let removed = self.end_of_rib(peer, family)?;
            return Some(ApplyReport {
                end_of_rib: Some(family),
                stale_removed: u32::try_from(removed).unwrap_or(u32::MAX),
                ..ApplyReport::default()
            });
        }
        let mut report = self.withdraw_all(peer, update.withdrawals())?;
        if update.has_announcements() {
            let info = self.peers.info(peer)?;
            let looped = update
                .attrs
                .as_path
                .as_ref()
                .is_some_and(|p| p.contains(info.local_as));
            if !update.nlri.is_empty() {
                match update.attrs.next_hop {
                    Some(nh) => self.announce(
                        peer,
                        update.nlri.iter(),
                        &update.attrs,
                        NextHop::V4(nh),
                        looped,
                        policy,
                        &mut report,
                    ),
                    // RFC 7606 decoding makes this a treat-as-withdraw already.
                    None => {
                        for p in update.nlri.iter() {
                            self.remove_route(peer, p);
                        }
                    }
                }
            }
            if let Some(mp) = &update.mp_reach {
                // NEXT_HOP belongs to the classic NLRI, not to these.
                let stripped;
                let attrs = if update.attrs.next_hop.is_some() {
                    stripped = PathAttributes {
                        next_hop: None,
                        ..update.attrs.clone()
                    };
                    &stripped
                } else {
                    &update.attrs
                };
                self.announce(
                    peer,
                    mp.nlri.iter(),
                    attrs,
                    mp.next_hop,
                    looped,
                    policy,
                    &mut report,
                );
            }
        }
        report.max_prefix = self.max_prefix(peer);
        Some(report)
    }

    fn max_prefix(&self, peer: PeerId) -> Option<MaxPrefixExceeded> {
        let s = self.peers.get(peer)?;
        let limit = s.info.max_prefixes?;
        let count = s.counted();
        (count > limit).then_some(MaxPrefixExceeded { peer, limit, count })
    }

    /// Whether `peer`'s prefixes dropped by policy are remembered (see [`PrefixCount`]).
    fn counts_filtered(&self, peer: PeerId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(peer::PeerSlot::counts_filtered)
    }

    /// Remembers that `peer` announces `prefix` and policy dropped it (`dropped`), or forgets
    /// it (accepted, or withdrawn).
    fn note_filtered(&mut self, peer: PeerId, prefix: Prefix, dropped: bool) {
        if let Some(s) = self.peers.get_mut(peer) {
            if dropped {
                s.filtered.insert(prefix);
            } else {
                s.filtered.remove(&prefix);
            }
        }
    }

    fn withdraw_all(
        &mut self,
        peer: PeerId,
        prefixes: impl Iterator<Item = Prefix>,
    ) -> Option<ApplyReport> {
        self.peers.get(peer)?;
        let track = self.counts_filtered(peer);
        let mut report = ApplyReport::default();
        for p in prefixes {
            report.withdrawn += 1;
            self.remove_route(peer, p);
            if track {
                self.note_filtered(peer, p, false);
            }
        }
        if let Some(c) = self.peers.counters_mut(peer) {
            c.withdrawn += u64::from(report.withdrawn);
        }
        Some(report)
    }

    #[allow(clippy::too_many_arguments)] // one call site per NLRI kind; a struct adds nothing
    fn announce(
        &mut self,
        peer: PeerId,
        prefixes: impl Iterator<Item = Prefix>,
        attrs: &PathAttributes,
        next_hop: NextHop,
        looped: bool,
        policy: &mut impl Import,
        report: &mut ApplyReport,
    ) {
        let (mut received, mut rejected, mut looped_n) = (0u32, 0u32, 0u32);
        // Checked once per UPDATE: the hot path pays nothing for peers without it.
        let track = self.counts_filtered(peer);
        if looped {
            for p in prefixes {
                received += 1;
                looped_n += 1;
                self.remove_route(peer, p);
                if track {
                    self.note_filtered(peer, p, true);
                }
            }
        } else {
            let base = self
                .interner
                .intern(RouteAttrs::new(attrs.clone(), Some(next_hop)));
            // Policies that modify tend to modify many prefixes the same way.
            let mut last: Option<Arc<RouteAttrs>> = None;
            for p in prefixes {
                received += 1;
                let route = match policy.import(&p, attrs) {
                    Verdict::Accept => Arc::clone(&base),
                    Verdict::Reject => {
                        rejected += 1;
                        self.remove_route(peer, p);
                        if track {
                            self.note_filtered(peer, p, true);
                        }
                        continue;
                    }
                    Verdict::Modify(a) => {
                        let hop = match a.next_hop {
                            Some(h) if a.next_hop != attrs.next_hop => NextHop::V4(h),
                            _ => next_hop,
                        };
                        let ra = RouteAttrs::new(a, Some(hop));
                        if ra == *base {
                            Arc::clone(&base)
                        } else if let Some(l) = last.as_ref().filter(|l| ***l == ra) {
                            Arc::clone(l)
                        } else {
                            let a = self.interner.intern(ra);
                            if let Some(old) = last.replace(Arc::clone(&a)) {
                                self.interner.release(old);
                            }
                            a
                        }
                    }
                };
                self.insert_route(peer, p, route);
                if track {
                    self.note_filtered(peer, p, false);
                }
            }
            self.interner.release(base);
            if let Some(l) = last {
                self.interner.release(l);
            }
        }
        report.accepted += received - rejected - looped_n;
        report.rejected += rejected;
        report.looped += looped_n;
        if let Some(c) = self.peers.counters_mut(peer) {
            c.received += u64::from(received);
            c.rejected += u64::from(rejected);
            c.looped += u64::from(looped_n);
        }
    }

    fn insert_route(&mut self, peer: PeerId, prefix: Prefix, attrs: Arc<RouteAttrs>) {
        let r = match prefix {
            Prefix::V4(k) => self.v4.upsert(k, peer, attrs),
            Prefix::V6(k) => self.v6.upsert(k, peer, attrs),
        };
        let (added, was_stale) = match r {
            Upsert::Added => (true, false),
            Upsert::Replaced { old, was_stale } => {
                self.interner.release(old);
                (false, was_stale)
            }
            Upsert::Refreshed { was_stale } => (false, was_stale),
        };
        if peer.is_local() {
            self.local_routes += u32::from(added);
        } else if let Some(c) = self.peers.counters_mut(peer) {
            c.accepted += u32::from(added);
            c.stale = c.stale.saturating_sub(u32::from(was_stale));
        }
    }

    fn remove_route(&mut self, peer: PeerId, prefix: Prefix) -> bool {
        let removed = match prefix {
            Prefix::V4(k) => self.v4.remove(k, peer),
            Prefix::V6(k) => self.v6.remove(k, peer),
        };
        let Some(p) = removed else { return false };
        if peer.is_local() {
            self.local_routes = self.local_routes.saturating_sub(1);
        } else if let Some(c) = self.peers.counters_mut(peer) {
            c.accepted = c.accepted.saturating_sub(1);
            if p.flags & table::STALE != 0 {
                c.stale = c.stale.saturating_sub(1);
            }
        }
        self.interner.release(p.attrs);
        true
    }

    // ----- local origination -----

    /// Originates `prefix` from this speaker, replacing an earlier origination of it. Such a
    /// route beats received ones of equal weight and LOCAL_PREF.
    pub fn originate(&mut self, prefix: Prefix, attrs: PathAttributes) {
        let a = self.interner.intern(RouteAttrs::new(attrs, None));
        self.insert_route(PeerId::LOCAL, prefix, a);
    }

    /// Stops originating `prefix`. Returns whether it was originated.
    pub fn withdraw_local(&mut self, prefix: Prefix) -> bool {
        self.remove_route(PeerId::LOCAL, prefix)
    }

    // ----- graceful restart -----

    /// The session with `peer` went down. Without `graceful` its routes are removed; with it
    /// they are marked stale and stay in use until re-announced, [`Rib::end_of_rib`] or
    /// [`Rib::stale_expired`]. Returns how many routes were removed or marked (`None` for an
    /// unknown peer).
    pub fn peer_down(&mut self, peer: PeerId, graceful: bool, now: Instant) -> Option<usize> {
        self.peer_down_at(peer, graceful, Some(now))
    }

    fn peer_down_at(
        &mut self,
        peer: PeerId,
        graceful: bool,
        now: Option<Instant>,
    ) -> Option<usize> {
        // What a peer announces is counted afresh when it comes back.
        self.peers.get_mut(peer)?.filtered.clear();
        let mut n = 0;
        if graceful {
            let mut mark = |f: &mut u8| {
                if *f & table::STALE == 0 {
                    *f |= table::STALE;
                    n += 1;
                }
                Visit::Keep
            };
            self.v4.visit_peer(peer, &mut mark, drop);
            self.v6.visit_peer(peer, &mut mark, drop);
            if let Some(c) = self.peers.counters_mut(peer) {
                c.stale = c.accepted;
                c.stale_since = c.stale_since.or(now);
            }
            return Some(n);
        }
        let interner = &mut self.interner;
        let mut release = |p: Path| {
            n += 1;
            interner.release(p.attrs);
        };
        self.v4.visit_peer(peer, |_| Visit::Remove, &mut release);
        self.v6.visit_peer(peer, |_| Visit::Remove, &mut release);
        if let Some(c) = self.peers.counters_mut(peer) {
            (c.accepted, c.stale, c.stale_since) = (0, 0, None);
        }
        Some(n)
    }

    /// The peer sent End-of-RIB for `family` (or will not preserve it): its routes of that
    /// family still stale are removed. Returns how many (`None` for an unknown peer).
    pub fn end_of_rib(&mut self, peer: PeerId, family: Family) -> Option<usize> {
        self.sweep_stale(peer, Some(family))
    }

    /// The restart timer ran out: every route of `peer` still stale is removed. Returns how
    /// many (`None` for an unknown peer).
    pub fn stale_expired(&mut self, peer: PeerId) -> Option<usize> {
        self.sweep_stale(peer, None)
    }

    fn sweep_stale(&mut self, peer: PeerId, family: Option<Family>) -> Option<usize> {
        self.peers.get(peer)?;
        let mut n = 0;
        let interner = &mut self.interner;
        let mut release = |p: Path| {
            n += 1;
            interner.release(p.attrs);
        };
        let stale = |f: &mut u8| {
            if *f & table::STALE != 0 {
                Visit::Remove
            } else {
                Visit::Keep
            }
        };
        if family.is_none_or(|f| f == Family::IPV4_UNICAST) {
            self.v4.visit_peer(peer, stale, &mut release);
        }
        if family.is_none_or(|f| f == Family::IPV6_UNICAST) {
            self.v6.visit_peer(peer, stale, &mut release);
        }
        if let Some(c) = self.peers.counters_mut(peer) {
            let removed = u32::try_from(n).unwrap_or(u32::MAX);
            c.accepted = c.accepted.saturating_sub(removed);
            c.stale = c.stale.saturating_sub(removed);
            if c.stale == 0 {
                c.stale_since = None;
            }
        }
        Some(n)
    }

    // ----- output -----

    /// Selects every prefix changed since the last drain and returns those whose best path
    /// or multipath set changed, each once, in no particular order. Also frees attribute and
    /// next-hop sets nobody uses any more.
    pub fn drain_changes(&mut self) -> Vec<Change> {
        let mut out = Vec::new();
        let Self {
            v4,
            v6,
            selector,
            peers,
            chosen,
            next_hops,
            entries,
            ..
        } = self;
        let mut sets = (next_hops, entries);
        drain_table(v4, selector, peers, chosen, &mut sets, &mut out);
        drain_table(v6, selector, peers, chosen, &mut sets, &mut out);
        self.interner.maybe_collect();
        self.next_hops.maybe_collect();
        out
    }

    /// Whether a drain would have prefixes to look at.
    pub fn has_pending_changes(&self) -> bool {
        self.v4.has_dirty() || self.v6.has_dirty()
    }

    /// The current selection for `prefix`.
    pub fn best(&self, prefix: &Prefix) -> Option<LocRibEntry> {
        let mut selector = Selector::new(self.selector.config);
        match prefix {
            Prefix::V4(k) => {
                let (d, s) = self.v4.get(k)?;
                loc_rib_entry(*prefix, d, s, &mut selector, &self.peers)
            }
            Prefix::V6(k) => {
                let (d, s) = self.v6.get(k)?;
                loc_rib_entry(*prefix, d, s, &mut selector, &self.peers)
            }
        }
    }

    /// The Loc-RIB as currently selected, IPv4 then IPv6, in no particular order within each.
    pub fn loc_rib(&self) -> impl Iterator<Item = LocRibEntry> + '_ {
        let mut sel = Selector::new(self.selector.config);
        let peers = &self.peers;
        let v4 = self.v4.iter().map(|(k, d, s)| (Prefix::from(k), d, s));
        let v6 = self.v6.iter().map(|(k, d, s)| (Prefix::from(k), d, s));
        v4.chain(v6)
            .filter_map(move |(p, d, s)| loc_rib_entry(p, d, s, &mut sel, peers))
    }

    /// The routes of `peer` (its post-policy Adj-RIB-In), in no particular order.
    pub fn adj_rib_in(&self, peer: PeerId) -> impl Iterator<Item = (Prefix, Route)> + '_ {
        let v4 = self.v4.iter_peer(peer).map(|(k, p)| (k.into(), route(p)));
        let v6 = self.v6.iter_peer(peer).map(|(k, p)| (k.into(), route(p)));
        v4.chain(v6)
    }

    /// Locally originated routes.
    pub fn local_routes(&self) -> impl Iterator<Item = (Prefix, Route)> + '_ {
        self.adj_rib_in(PeerId::LOCAL)
    }

    /// Prefixes with at least one path (and, until the next drain, withdrawn ones).
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate memory use.
    pub fn memory(&self) -> MemoryUsage {
        let routes = self
            .peers
            .iter()
            .map(|(_, s)| u64::from(s.counters.accepted))
            .sum::<u64>()
            + u64::from(self.local_routes);
        MemoryUsage {
            prefixes: self.len(),
            routes,
            attribute_sets: self.interner.len(),
            bytes: self.v4.heap_bytes()
                + self.v6.heap_bytes()
                + self.interner.heap_bytes()
                + self.next_hops.heap_bytes(),
        }
    }

    /// Frees attribute sets nobody uses any more now rather than at a later drain.
    pub fn collect_garbage(&mut self) {
        self.interner.collect();
        self.next_hops.collect();
    }
}

fn route(p: table::PathRef<'_>) -> Route {
    Route {
        peer: p.peer,
        attrs: Arc::clone(p.attrs),
        stale: p.flags & table::STALE != 0,
    }
}

fn drain_table<K: Key>(
    table: &mut Table<K>,
    selector: &mut Selector,
    peers: &Peers,
    chosen: &mut Vec<Slot>,
    (sets, entries): &mut (&mut NextHopSets, &mut Vec<NextHopEntry>),
    out: &mut Vec<Change>,
) {
    table.drain(
        chosen,
        |d, s, chosen| selector.select(paths(d, s), |slot| path_at(d, s, slot), peers, chosen),
        |k, d, s, slots| {
            let best = slots
                .first()
                .and_then(|&slot| path_at(d, s, slot))
                .map(route);
            entries.clear();
            entries.extend(
                slots
                    .iter()
                    .filter_map(|&slot| path_at(d, s, slot))
                    .filter(|p| !p.peer.is_local())
                    .filter_map(|p| {
                        Some(NextHopEntry {
                            peer: p.peer,
                            next_hop: p.attrs.next_hop()?,
                        })
                    }),
            );
            out.push(Change {
                prefix: k.into(),
                best,
                multipath: sets.intern(entries),
            });
        },
    );
}

fn loc_rib_entry(
    prefix: Prefix,
    d: &Dest,
    s: Option<&Vec<Path>>,
    selector: &mut Selector,
    peers: &Peers,
) -> Option<LocRibEntry> {
    let mut chosen = Vec::new();
    selector.select(paths(d, s), |slot| path_at(d, s, slot), peers, &mut chosen);
    let multipath: Vec<Route> = chosen
        .iter()
        .filter_map(|&slot| path_at(d, s, slot))
        .map(route)
        .collect();
    Some(LocRibEntry {
        prefix,
        best: multipath.first()?.clone(),
        multipath,
    })
}
