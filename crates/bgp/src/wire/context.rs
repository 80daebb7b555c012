//! The decoding (and encoding) context: what was negotiated on the session.
//!
//! Contract: the same [`DecodeContext`] drives both directions. It decides the AS number width
//! in AS_PATH and AGGREGATOR, the largest acceptable message, which MP families are accepted
//! and whether IPv4 NLRI may carry an IPv6 next hop. The default is what holds before the
//! OPEN exchange: 2-octet AS numbers, 4096-octet messages, IPv4 unicast only, eBGP.

use crate::iana::{Afi, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, Safi};

/// An address family and subsequent address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    pub afi: Afi,
    pub safi: Safi,
}

impl Family {
    pub const IPV4_UNICAST: Family = Family {
        afi: Afi::Ipv4,
        safi: Safi::Unicast,
    };
    pub const IPV6_UNICAST: Family = Family {
        afi: Afi::Ipv6,
        safi: Safi::Unicast,
    };

    pub fn new(afi: Afi, safi: Safi) -> Self {
        Self { afi, safi }
    }
}

/// A set of the families this codec can decode (IPv4 and IPv6 unicast). `Copy`, so the
/// per-UPDATE checks cost a bit test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Families(u8);

impl Families {
    pub const NONE: Families = Families(0);
    pub const IPV4_UNICAST: Families = Families(1);
    pub const IPV6_UNICAST: Families = Families(2);
    pub const ALL: Families = Families(3);

    fn bit(family: Family) -> u8 {
        match family {
            Family::IPV4_UNICAST => 1,
            Family::IPV6_UNICAST => 2,
            _ => 0,
        }
    }

    /// Whether `family` is in the set; families this codec cannot decode never are.
    pub fn contains(&self, family: Family) -> bool {
        let b = Self::bit(family);
        b != 0 && self.0 & b == b
    }

    /// Adds `family`; returns false (and changes nothing) if the codec cannot decode it.
    pub fn insert(&mut self, family: Family) -> bool {
        let b = Self::bit(family);
        self.0 |= b;
        b != 0
    }

    pub fn union(self, other: Families) -> Families {
        Families(self.0 | other.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The members, IPv4 unicast first.
    pub fn iter(&self) -> impl Iterator<Item = Family> + '_ {
        [Family::IPV4_UNICAST, Family::IPV6_UNICAST]
            .into_iter()
            .filter(|f| self.contains(*f))
    }
}

impl FromIterator<Family> for Families {
    fn from_iter<T: IntoIterator<Item = Family>>(iter: T) -> Self {
        let mut s = Families::NONE;
        for f in iter {
            s.insert(f);
        }
        s
    }
}

/// Whether the peer is in our AS; RFC 7606 treats some attributes differently for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PeerKind {
    Internal,
    #[default]
    External,
}

/// Negotiated session parameters that change how messages are decoded and encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecodeContext {
    /// Both sides sent the 4-octet AS capability (RFC 6793): AS_PATH and AGGREGATOR carry
    /// 4-octet AS numbers, and AS4_PATH / AS4_AGGREGATOR must not appear.
    pub four_octet_as: bool,
    /// Both sides sent the extended message capability (RFC 8654).
    pub extended_message: bool,
    /// Families accepted in MP_REACH_NLRI / MP_UNREACH_NLRI.
    pub families: Families,
    /// NLRI families for which an IPv6 next hop is accepted (RFC 8950).
    pub extended_next_hop: Families,
    /// Internal or external peer.
    pub peer: PeerKind,
}

impl Default for DecodeContext {
    fn default() -> Self {
        Self {
            four_octet_as: false,
            extended_message: false,
            families: Families::IPV4_UNICAST,
            extended_next_hop: Families::NONE,
            peer: PeerKind::External,
        }
    }
}

impl DecodeContext {
    /// A context for a modern session: 4-octet AS, IPv4 and IPv6 unicast, IPv6 next hops for
    /// IPv4, no extended messages. Handy for tests and tools.
    pub fn modern(peer: PeerKind) -> Self {
        Self {
            four_octet_as: true,
            extended_message: false,
            families: Families::ALL,
            extended_next_hop: Families::IPV4_UNICAST,
            peer,
        }
    }

    /// Largest message, header included, that may be sent or received for UPDATE,
    /// NOTIFICATION and ROUTE-REFRESH. OPEN and KEEPALIVE stay within 4096 (RFC 8654).
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }

    /// Octets per AS number in AS_PATH and AGGREGATOR.
    pub fn as_width(&self) -> usize {
        if self.four_octet_as { 4 } else { 2 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_set() {
        let mut s = Families::NONE;
        assert!(s.insert(Family::IPV6_UNICAST));
        assert!(!s.insert(Family::new(Afi::L2vpn, Safi::Evpn)));
        assert!(s.contains(Family::IPV6_UNICAST));
        assert!(!s.contains(Family::IPV4_UNICAST));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![Family::IPV6_UNICAST]);
        assert_eq!(s.union(Families::IPV4_UNICAST), Families::ALL);
    }

    #[test]
    fn max_len_follows_extended_message() {
        let mut c = DecodeContext::default();
        assert_eq!(c.max_message_len(), 4096);
        c.extended_message = true;
        assert_eq!(c.max_message_len(), 65535);
    }
}
