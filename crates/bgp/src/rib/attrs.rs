//! Interned route attributes.
//!
//! Contract: every route in the RIB points at an `Arc<RouteAttrs>` from one [`Interner`], so
//! two routes whose attributes and next hop are equal share one allocation and compare equal
//! by pointer. The interner holds one reference itself; an entry whose only owner is the
//! interner is garbage, removed when the last route lets go of it ([`Interner::release`]) or,
//! if something outside the RIB (a drained change, a status listing) held on longer, by the
//! next [`Interner::collect`].

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::iana::Origin;
use crate::wire::{AsPath, NextHop, PathAttributes};

use super::hash::Seeded;

/// LOCAL_PREF assumed for routes without one (RFC 4271 leaves it to the implementation; 100
/// is what every major implementation uses).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// The path attributes of one or more routes, plus their next hop, interned.
///
/// `next_hop` is authoritative: for classic IPv4 NLRI it is the NEXT_HOP attribute (or what
/// the import policy set there), for MP_REACH_NLRI the next hop of that attribute (IPv4, or
/// IPv6 global plus link-local, also for IPv4 prefixes under RFC 8950). Locally originated
/// routes have none.
#[derive(Debug, Clone)]
pub struct RouteAttrs {
    attrs: PathAttributes,
    next_hop: Option<NextHop>,
    // Derived from `attrs` once per attribute set rather than once per comparison.
    pub(crate) sel: SelectionKeys,
}

/// The attributes best-path selection looks at, with defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SelectionKeys {
    pub local_pref: u32,
    pub as_path_len: u32,
    /// IGP < EGP < INCOMPLETE; unknown values rank last.
    pub origin: u8,
    /// A missing MED is the best (lowest) one, as RFC 4271 9.1.2.2 c) says.
    pub med: u32,
    /// The AS the route came from, for MED comparison: the leftmost AS of the AS_PATH.
    /// `None` for an empty path (our own AS).
    pub neighbor_as: Option<u32>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_len: u32,
}

impl SelectionKeys {
    fn of(attrs: &PathAttributes) -> Self {
        let origin = match attrs.origin {
            Some(Origin::Igp) => 0,
            Some(Origin::Egp) => 1,
            Some(Origin::Incomplete) => 2,
            _ => 3,
        };
        let path = attrs.as_path.as_ref();
        Self {
            local_pref: attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF),
            as_path_len: path.map_or(0, |p| u32::try_from(p.path_len()).unwrap_or(u32::MAX)),
            origin,
            med: attrs.med.unwrap_or(0),
            neighbor_as: path.and_then(AsPath::first_as),
            originator_id: attrs.originator_id,
            cluster_len: u32::try_from(attrs.cluster_list.len()).unwrap_or(u32::MAX),
        }
    }
}

impl RouteAttrs {
    pub fn new(attrs: PathAttributes, next_hop: Option<NextHop>) -> Self {
        let sel = SelectionKeys::of(&attrs);
        Self {
            attrs,
            next_hop,
            sel,
        }
    }

    /// The path attributes (after import policy).
    pub fn attrs(&self) -> &PathAttributes {
        &self.attrs
    }

    /// The next hop; `None` for locally originated routes.
    pub fn next_hop(&self) -> Option<NextHop> {
        self.next_hop
    }

    /// LOCAL_PREF with the default applied.
    pub fn local_pref(&self) -> u32 {
        self.sel.local_pref
    }

    /// The AS_PATH, or the empty path when absent.
    pub fn as_path(&self) -> Option<&AsPath> {
        self.attrs.as_path.as_ref()
    }

    /// Approximate heap octets behind the attribute set, for memory accounting.
    pub(crate) fn heap_bytes(&self) -> usize {
        let a = &self.attrs;
        let path = |p: &Option<AsPath>| {
            p.as_ref().map_or(0, |p| {
                p.segments.capacity() * size_of::<crate::wire::AsSegment>()
                    + p.segments
                        .iter()
                        .map(|s| s.asns.capacity() * 4)
                        .sum::<usize>()
            })
        };
        size_of::<Self>()
            + path(&a.as_path)
            + path(&a.as4_path)
            + a.communities.capacity() * size_of::<crate::wire::Community>()
            + a.cluster_list.capacity() * 4
            + a.extended_communities.capacity() * size_of::<crate::wire::ExtCommunity>()
            + a.large_communities.capacity() * size_of::<crate::wire::LargeCommunity>()
            + a.unknown
                .iter()
                .map(|u| size_of::<crate::wire::RawAttribute>() + u.value.len())
                .sum::<usize>()
    }
}

// Equality and hashing cover what was received; `sel` is derived from it.
impl PartialEq for RouteAttrs {
    fn eq(&self, other: &Self) -> bool {
        self.next_hop == other.next_hop && self.attrs == other.attrs
    }
}

impl Eq for RouteAttrs {}

impl Hash for RouteAttrs {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.next_hop.hash(state);
        self.attrs.hash(state);
    }
}

/// The dedup table of attribute sets.
#[derive(Debug)]
pub(crate) struct Interner {
    set: HashSet<Arc<RouteAttrs>, Seeded>,
    /// `collect` runs when the table reaches this size, so its cost is amortised over the
    /// insertions that grew the table.
    next_collect: usize,
}

/// The table never shrinks below this trigger, so small RIBs do not sweep constantly.
const MIN_COLLECT: usize = 1024;

impl Interner {
    pub(crate) fn new(hasher: Seeded) -> Self {
        Self {
            set: HashSet::with_hasher(hasher),
            next_collect: MIN_COLLECT,
        }
    }

    /// The shared copy of `attrs`.
    pub(crate) fn intern(&mut self, attrs: RouteAttrs) -> Arc<RouteAttrs> {
        if let Some(a) = self.set.get(&attrs) {
            return Arc::clone(a);
        }
        let a = Arc::new(attrs);
        self.set.insert(Arc::clone(&a));
        a
    }

    /// Drops a route's reference; removes the entry if the interner is left as its only owner.
    pub(crate) fn release(&mut self, attrs: Arc<RouteAttrs>) {
        // Two owners: the table's and the one being dropped. `&mut self` means no other
        // thread can be cloning from the table meanwhile.
        if Arc::strong_count(&attrs) == 2 {
            self.set.remove(&*attrs);
        }
    }

    /// Removes entries only the interner holds.
    pub(crate) fn collect(&mut self) {
        self.set.retain(|a| Arc::strong_count(a) > 1);
        self.next_collect = (2 * self.set.len()).max(MIN_COLLECT);
    }

    /// Collects if the table has grown enough since the last time.
    pub(crate) fn maybe_collect(&mut self) {
        if self.set.len() >= self.next_collect {
            self.collect();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }

    /// Approximate heap octets: the table and every attribute set.
    pub(crate) fn heap_bytes(&self) -> usize {
        let table = self.set.capacity() * (size_of::<Arc<RouteAttrs>>() + 1);
        // Arc header: two counters.
        table + self.set.iter().map(|a| 16 + a.heap_bytes()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Community;

    fn attrs(asn: u32) -> RouteAttrs {
        RouteAttrs::new(
            PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::sequence([asn])),
                communities: vec![Community(1)],
                ..Default::default()
            },
            Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 1))),
        )
    }

    #[test]
    fn equal_attributes_share_one_arc() {
        let mut i = Interner::new(Seeded::random());
        let a = i.intern(attrs(1));
        let b = i.intern(attrs(1));
        let c = i.intern(attrs(2));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn last_release_removes_the_entry() {
        let mut i = Interner::new(Seeded::random());
        let a = i.intern(attrs(1));
        let b = i.intern(attrs(1));
        i.release(a);
        assert_eq!(i.len(), 1);
        i.release(b);
        assert_eq!(i.len(), 0);
    }

    #[test]
    fn collect_removes_entries_released_while_shared() {
        let mut i = Interner::new(Seeded::random());
        let a = i.intern(attrs(1));
        let outside = Arc::clone(&a); // e.g. a change not yet consumed
        i.release(a);
        assert_eq!(i.len(), 1);
        drop(outside);
        i.collect();
        assert_eq!(i.len(), 0);
    }

    #[test]
    fn next_hop_is_part_of_the_identity() {
        let mut i = Interner::new(Seeded::random());
        let a = i.intern(attrs(1));
        let mut other = attrs(1);
        other.next_hop = Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 2)));
        assert!(!Arc::ptr_eq(&a, &i.intern(other)));
    }

    #[test]
    fn selection_keys_apply_defaults() {
        let a = RouteAttrs::new(PathAttributes::default(), None);
        assert_eq!(a.sel.local_pref, DEFAULT_LOCAL_PREF);
        assert_eq!(a.sel.med, 0);
        assert_eq!(a.sel.as_path_len, 0);
        assert_eq!(a.sel.origin, 3);
        assert_eq!(a.sel.neighbor_as, None);
    }
}
