//! Peers as the RIB knows them: a small id, what best-path selection needs to know about the
//! peer, and per-peer counters.
//!
//! Contract: ids are dense indexes handed out by [`super::Rib::add_peer`] and reused after
//! [`super::Rib::remove_peer`]; a caller must forget an id once it removes the peer.
//! [`PeerId::LOCAL`] names the RIB's own (locally originated) routes and is never handed out.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::wire::{Negotiated, PeerKind, Prefix};

/// A registered peer, or [`PeerId::LOCAL`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PeerId(pub u32);

impl PeerId {
    /// The source of locally originated routes.
    pub const LOCAL: PeerId = PeerId(u32::MAX);

    pub fn is_local(self) -> bool {
        self == Self::LOCAL
    }

    fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_local() {
            f.write_str("PeerId(local)")
        } else {
            write!(f, "PeerId({})", self.0)
        }
    }
}

/// What the RIB needs to know about a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's transport address: the last best-path tie-breaker.
    pub address: IpAddr,
    pub remote_as: u32,
    /// The peer's BGP identifier.
    pub router_id: Ipv4Addr,
    /// Internal (same AS or confederation member) or external.
    pub kind: PeerKind,
    /// Our AS on this session: routes whose AS_PATH contains it are loops and are dropped.
    pub local_as: u32,
    /// Import weight for every route of this peer: higher wins before anything else. Local to
    /// this speaker, never sent.
    pub weight: u32,
    /// Reported by [`super::ApplyReport::max_prefix`] once more prefixes than this count, as
    /// `max_prefixes_count` says.
    pub max_prefixes: Option<u32>,
    pub max_prefixes_count: PrefixCount,
}

/// What counts towards a peer's maximum prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrefixCount {
    /// The routes the import policy accepted (FRR's `maximum-prefix N`, BIRD's `import
    /// limit`).
    #[default]
    Accepted,
    /// Every prefix the peer announces now, whether the import policy accepted it or not
    /// (FRR's `maximum-prefix N force`, BIRD's `receive limit`): a peer flooding prefixes that
    /// policy drops is cut off too. The dropped ones are remembered (their prefix only) while
    /// the session lasts, which the limit bounds.
    Received,
}

impl PeerInfo {
    /// A peer's info once its session is Established.
    pub fn from_negotiated(address: IpAddr, local_as: u32, n: &Negotiated) -> Self {
        Self {
            address,
            remote_as: n.peer_as,
            router_id: n.peer_id,
            kind: n.peer_kind,
            local_as,
            weight: 0,
            max_prefixes: None,
            max_prefixes_count: PrefixCount::Accepted,
        }
    }

    pub fn is_external(&self) -> bool {
        self.kind == PeerKind::External
    }
}

/// Per-peer counters. Received, withdrawn, rejected and looped count prefixes since the peer
/// was registered; accepted and stale are the current number of routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerCounters {
    /// Prefixes announced by the peer.
    pub received: u64,
    /// Prefixes withdrawn by the peer (including treat-as-withdraw).
    pub withdrawn: u64,
    /// Announcements refused by the import policy.
    pub rejected: u64,
    /// Announcements dropped because the AS_PATH contained our AS.
    pub looped: u64,
    /// Routes of this peer in the RIB now (post-policy Adj-RIB-In, stale ones included).
    pub accepted: u32,
    /// Of those, routes kept as stale for graceful restart.
    pub stale: u32,
    /// When the peer went down gracefully and its routes became stale.
    pub stale_since: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct PeerSlot {
    pub info: PeerInfo,
    pub counters: PeerCounters,
    /// Prefixes announced now but dropped by policy (or as loops), kept only for a peer whose
    /// maximum counts [`PrefixCount::Received`].
    pub filtered: HashSet<Prefix>,
}

impl PeerSlot {
    /// Whether [`Self::filtered`] is kept.
    pub fn counts_filtered(&self) -> bool {
        self.info.max_prefixes.is_some() && self.info.max_prefixes_count == PrefixCount::Received
    }

    /// The prefixes counted towards the maximum.
    pub fn counted(&self) -> u32 {
        let filtered = if self.counts_filtered() {
            u32::try_from(self.filtered.len()).unwrap_or(u32::MAX)
        } else {
            0
        };
        self.counters.accepted.saturating_add(filtered)
    }
}

/// The registry: a vector indexed by id with a free list.
/// Peers the RIB holds at once. The route table stores peer ids in two octets; a speaker
/// with tens of thousands of sessions is far beyond what this one is built for, and the last
/// id is shared by any peer beyond.
pub(crate) const MAX_PEERS: usize = u16::MAX as usize;

#[derive(Debug, Default)]
pub(crate) struct Peers {
    slots: Vec<Option<PeerSlot>>,
    free: Vec<PeerId>,
}

impl Peers {
    pub(crate) fn add(&mut self, info: PeerInfo) -> PeerId {
        let slot = Some(PeerSlot {
            info,
            counters: PeerCounters::default(),
            filtered: HashSet::new(),
        });
        if let Some(id) = self.free.pop()
            && let Some(s) = self.slots.get_mut(id.index())
        {
            *s = slot;
            return id;
        }
        // Ids of removed peers are reused, so ids stay below the number of peers at once, and
        // the table stores them in two octets (u16::MAX stands for LOCAL).
        let id = PeerId(u32::try_from(self.slots.len().min(MAX_PEERS - 1)).unwrap_or(0));
        self.slots.push(slot);
        id
    }

    pub(crate) fn remove(&mut self, id: PeerId) -> Option<PeerSlot> {
        let s = self.slots.get_mut(id.index())?.take()?;
        self.free.push(id);
        Some(s)
    }

    pub(crate) fn get(&self, id: PeerId) -> Option<&PeerSlot> {
        self.slots.get(id.index())?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: PeerId) -> Option<&mut PeerSlot> {
        self.slots.get_mut(id.index())?.as_mut()
    }

    pub(crate) fn info(&self, id: PeerId) -> Option<&PeerInfo> {
        self.get(id).map(|s| &s.info)
    }

    pub(crate) fn counters_mut(&mut self, id: PeerId) -> Option<&mut PeerCounters> {
        self.get_mut(id).map(|s| &mut s.counters)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (PeerId, &PeerSlot)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((PeerId(u32::try_from(i).ok()?), s.as_ref()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(n: u8) -> PeerInfo {
        PeerInfo {
            address: IpAddr::from([192, 0, 2, n]),
            remote_as: 65000 + u32::from(n),
            router_id: Ipv4Addr::new(10, 0, 0, n),
            kind: PeerKind::External,
            local_as: 65000,
            weight: 0,
            max_prefixes: None,
            max_prefixes_count: PrefixCount::Accepted,
        }
    }

    #[test]
    fn ids_are_dense_and_reused() {
        let mut p = Peers::default();
        let a = p.add(info(1));
        let b = p.add(info(2));
        assert_eq!((a, b), (PeerId(0), PeerId(1)));
        assert!(p.remove(a).is_some());
        assert!(p.remove(a).is_none());
        assert!(p.get(a).is_none());
        assert_eq!(p.add(info(3)), a);
        assert_eq!(p.info(a).unwrap().router_id, Ipv4Addr::new(10, 0, 0, 3));
        assert_eq!(p.iter().count(), 2);
        assert!(p.get(PeerId::LOCAL).is_none());
    }
}
