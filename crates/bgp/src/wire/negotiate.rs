//! Session parameters negotiated from the local and remote OPEN.
//!
//! Contract: a feature is on only when both sides advertised it (families, 4-octet AS,
//! extended next hop entries, extended message, route refresh). A side without any
//! multiprotocol capability supports IPv4 unicast only (RFC 4760 section 8). The hold time is
//! the smaller of the two (RFC 4271 section 4.2), and the keepalive interval a third of it.
//! Unknown capabilities are ignored.

use std::net::Ipv4Addr;

use crate::wire::capability::{Capability, ExtNextHop, GracefulRestart};
use crate::wire::context::{DecodeContext, Families, Family, PeerKind};
use crate::wire::open::Open;

/// What both sides agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The peer's AS (from its 4-octet capability when sent).
    pub peer_as: u32,
    pub peer_id: Ipv4Addr,
    /// Internal when both ASes are equal.
    pub peer_kind: PeerKind,
    /// Families in common, including ones this codec cannot decode.
    pub families: Vec<Family>,
    pub four_octet_as: bool,
    /// Extended next hop entries in common (RFC 8950).
    pub extended_next_hop: Vec<ExtNextHop>,
    pub extended_message: bool,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    /// Seconds; 0 means no keepalives and no hold timer.
    pub hold_time: u16,
    pub keepalive_time: u16,
    /// The peer's graceful restart capability, as it sent it.
    pub peer_graceful_restart: Option<GracefulRestart>,
}

fn has(open: &Open, pred: impl Fn(&Capability) -> bool) -> bool {
    open.capabilities().any(pred)
}

fn ext_nh(open: &Open) -> Vec<ExtNextHop> {
    open.capabilities()
        .filter_map(|c| match c {
            Capability::ExtendedNextHop(v) => Some(v.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect()
}

impl Negotiated {
    /// Intersects the two OPENs.
    pub fn new(local: &Open, remote: &Open) -> Self {
        let remote_families = remote.families();
        let families: Vec<Family> = local
            .families()
            .into_iter()
            .filter(|f| remote_families.contains(f))
            .collect();
        let remote_nh = ext_nh(remote);
        let mut extended_next_hop: Vec<ExtNextHop> = ext_nh(local)
            .into_iter()
            .filter(|e| remote_nh.contains(e))
            .collect();
        extended_next_hop.sort();
        extended_next_hop.dedup();
        let both = |pred: fn(&Capability) -> bool| has(local, pred) && has(remote, pred);
        let hold_time = local.hold_time.min(remote.hold_time);
        Self {
            peer_as: remote.asn(),
            peer_id: remote.bgp_id,
            peer_kind: if local.asn() == remote.asn() {
                PeerKind::Internal
            } else {
                PeerKind::External
            },
            families,
            four_octet_as: both(|c| matches!(c, Capability::FourOctetAs(_))),
            extended_next_hop,
            extended_message: both(|c| matches!(c, Capability::ExtendedMessage)),
            route_refresh: both(|c| matches!(c, Capability::RouteRefresh)),
            enhanced_route_refresh: both(|c| matches!(c, Capability::EnhancedRouteRefresh)),
            hold_time,
            keepalive_time: hold_time / 3,
            peer_graceful_restart: remote.graceful_restart().cloned(),
        }
    }

    /// The codec context for this session.
    pub fn decode_context(&self) -> DecodeContext {
        let families: Families = self.families.iter().copied().collect();
        let extended_next_hop: Families = self
            .extended_next_hop
            .iter()
            .filter(|e| e.next_hop_afi == crate::iana::Afi::Ipv6)
            .filter_map(ExtNextHop::family)
            .filter(|f| families.contains(*f))
            .collect();
        DecodeContext {
            four_octet_as: self.four_octet_as,
            extended_message: self.extended_message,
            families,
            extended_next_hop,
            peer: self.peer_kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::capability::GrFamily;

    fn id(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, n)
    }

    #[test]
    fn intersection() {
        let local = Open::new(
            65001,
            90,
            id(1),
            vec![
                Capability::MultiProtocol(Family::IPV4_UNICAST),
                Capability::MultiProtocol(Family::IPV6_UNICAST),
                Capability::ExtendedNextHop(vec![ExtNextHop::IPV4_UNICAST_OVER_IPV6]),
                Capability::ExtendedMessage,
                Capability::RouteRefresh,
            ],
        );
        let gr = GracefulRestart::new(true, 120, vec![GrFamily::new(Family::IPV6_UNICAST, true)]);
        let remote = Open::new(
            4_200_000_001,
            30,
            id(2),
            vec![
                Capability::MultiProtocol(Family::IPV6_UNICAST),
                Capability::ExtendedNextHop(vec![ExtNextHop::IPV4_UNICAST_OVER_IPV6]),
                Capability::RouteRefresh,
                Capability::GracefulRestart(gr.clone()),
                Capability::Other {
                    code: 73,
                    value: bytes::Bytes::from_static(b"x"),
                },
            ],
        );
        let n = Negotiated::new(&local, &remote);
        assert_eq!(n.peer_as, 4_200_000_001);
        assert_eq!(n.peer_kind, PeerKind::External);
        assert_eq!(n.families, vec![Family::IPV6_UNICAST]);
        assert!(n.four_octet_as);
        assert!(!n.extended_message);
        assert!(n.route_refresh);
        assert_eq!(n.hold_time, 30);
        assert_eq!(n.keepalive_time, 10);
        assert_eq!(
            n.extended_next_hop,
            vec![ExtNextHop::IPV4_UNICAST_OVER_IPV6]
        );
        assert_eq!(n.peer_graceful_restart, Some(gr));
        let ctx = n.decode_context();
        assert_eq!(ctx.families, Families::IPV6_UNICAST);
        // IPv4 unicast is not in common, so IPv6 next hops for it are not either.
        assert_eq!(ctx.extended_next_hop, Families::NONE);
    }

    #[test]
    fn defaults_without_capabilities() {
        let mut local = Open::new(65001, 0, id(1), vec![]);
        local.params.clear();
        let remote = local.clone();
        let n = Negotiated::new(&local, &remote);
        assert_eq!(n.families, vec![Family::IPV4_UNICAST]);
        assert!(!n.four_octet_as);
        assert_eq!(n.peer_kind, PeerKind::Internal);
        assert_eq!((n.hold_time, n.keepalive_time), (0, 0));
        assert_eq!(
            n.decode_context(),
            DecodeContext {
                peer: PeerKind::Internal,
                ..DecodeContext::default()
            }
        );
    }
}
