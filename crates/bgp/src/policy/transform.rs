//! The standard changes to a route's attributes on its way out, after the export policy.
//!
//! Contract:
//! - eBGP ([`ebgp_export`]): prepend our AS once; next hop self; remove LOCAL_PREF and the
//!   route-reflection attributes ORIGINATOR_ID and CLUSTER_LIST (RFC 4456, never sent outside
//!   the AS); remove MED unless it is ours (set by our policy or on a route we originate) or
//!   passing on MEDs from other ASes is configured (RFC 4271 section 5.1.4).
//! - iBGP ([`ibgp_export`]): no prepend; LOCAL_PREF kept, or set to 100 when missing (RFC 4271
//!   section 5.1.5: iBGP updates carry it); the next hop is kept unless next-hop-self is asked
//!   for.
//!
//! Both return the next hop the speaker should announce. An IPv4 next hop is also written to
//! NEXT_HOP; an IPv6 one (RFC 8950 or IPv6 routes) clears NEXT_HOP and goes in MP_REACH_NLRI,
//! which the speaker builds.

use std::net::IpAddr;

use crate::wire::attr::{AsPath, PathAttributes};

/// LOCAL_PREF when none is set (RFC 4271 leaves it to the operator; 100 is what every
/// implementation uses).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// What the eBGP transformation needs to know about the session and the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EbgpExport {
    pub local_as: u32,
    /// Our address on the session: the announced next hop.
    pub local_address: IpAddr,
    /// Pass on MEDs learned from other ASes (off by default, as RFC 4271 asks).
    pub send_med: bool,
    /// The MED is ours: [`super::Decision::sets_med`], or the route is originated here.
    pub med_is_ours: bool,
}

fn set_next_hop(attrs: &mut PathAttributes, nh: IpAddr) -> IpAddr {
    attrs.next_hop = match nh {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    };
    nh
}

/// Transforms a route for an eBGP peer; returns the next hop to announce.
pub fn ebgp_export(attrs: &mut PathAttributes, e: &EbgpExport) -> IpAddr {
    attrs
        .as_path
        .get_or_insert_with(AsPath::empty)
        .prepend(e.local_as, 1);
    attrs.local_pref = None;
    attrs.originator_id = None;
    attrs.cluster_list.clear();
    if !e.send_med && !e.med_is_ours {
        attrs.med = None;
    }
    set_next_hop(attrs, e.local_address)
}

/// Transforms a route for an iBGP peer; `next_hop_self` replaces the next hop. Returns the
/// next hop to announce, if one is known (`None`: keep what MP_REACH_NLRI had).
pub fn ibgp_export(attrs: &mut PathAttributes, next_hop_self: Option<IpAddr>) -> Option<IpAddr> {
    attrs.local_pref.get_or_insert(DEFAULT_LOCAL_PREF);
    match next_hop_self {
        Some(nh) => Some(set_next_hop(attrs, nh)),
        None => attrs.next_hop.map(IpAddr::V4),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::wire::attr::Community;

    const US: u32 = 65000;

    fn learned() -> PathAttributes {
        PathAttributes {
            as_path: Some(AsPath::sequence([65001, 65010])),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            med: Some(50),
            local_pref: Some(200),
            originator_id: Some(Ipv4Addr::new(10, 0, 0, 9)),
            cluster_list: vec![Ipv4Addr::new(10, 0, 0, 8)],
            communities: vec![Community::new(65001, 1)],
            ..Default::default()
        }
    }

    fn ebgp(nh: IpAddr) -> EbgpExport {
        EbgpExport {
            local_as: US,
            local_address: nh,
            send_med: false,
            med_is_ours: false,
        }
    }

    #[test]
    fn ebgp_prepends_and_cleans() {
        let ours = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        let mut a = learned();
        assert_eq!(ebgp_export(&mut a, &ebgp(ours)), ours);
        assert_eq!(a.as_path, Some(AsPath::sequence([US, 65001, 65010])));
        assert_eq!(a.next_hop, Some(Ipv4Addr::new(198, 51, 100, 1)));
        assert_eq!(a.local_pref, None);
        assert_eq!(a.med, None, "MED from another AS is not passed on");
        assert_eq!((a.originator_id, a.cluster_list.len()), (None, 0));
        assert_eq!(
            a.communities,
            learned().communities,
            "communities are policy's job"
        );
    }

    #[test]
    fn ebgp_med_kept_when_ours_or_configured() {
        let ours = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        for (send_med, med_is_ours, want) in [
            (false, false, None),
            (true, false, Some(50)),
            (false, true, Some(50)),
            (true, true, Some(50)),
        ] {
            let mut a = learned();
            let e = EbgpExport {
                send_med,
                med_is_ours,
                ..ebgp(ours)
            };
            ebgp_export(&mut a, &e);
            assert_eq!(a.med, want, "send_med {send_med} ours {med_is_ours}");
        }
    }

    #[test]
    fn ebgp_locally_originated_and_ipv6_next_hop() {
        // Originated here: no AS_PATH yet, and an unnumbered session's link-local next hop.
        let ll = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
        let mut a = PathAttributes {
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ..Default::default()
        };
        assert_eq!(ebgp_export(&mut a, &ebgp(ll)), ll);
        assert_eq!(a.as_path, Some(AsPath::sequence([US])));
        assert_eq!(a.next_hop, None, "an IPv6 next hop goes in MP_REACH_NLRI");
    }

    #[test]
    fn ibgp_keeps_local_pref_and_path() {
        let mut a = learned();
        let nh = ibgp_export(&mut a, None);
        assert_eq!(nh, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
        let mut want = learned();
        want.local_pref = Some(200);
        assert_eq!(a, want, "nothing changes on iBGP but a missing LOCAL_PREF");

        let mut b = learned();
        b.local_pref = None;
        let self_nh = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(ibgp_export(&mut b, Some(self_nh)), Some(self_nh));
        assert_eq!(b.local_pref, Some(DEFAULT_LOCAL_PREF));
        assert_eq!(b.next_hop, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(b.as_path, learned().as_path, "no prepend on iBGP");
        assert_eq!(b.med, Some(50), "MED stays inside the AS");
    }
}
