//! Well-known communities that every speaker honours, whatever its policies.
//!
//! Contract:
//! - [`export_allowed`]: NO_ADVERTISE (RFC 1997) stops a route towards every peer; NO_EXPORT
//!   stops it towards eBGP peers; NO_EXPORT_SUBCONFED is treated as NO_EXPORT, since this
//!   speaker has no confederations (every eBGP peer is outside the AS). NO_PEER (RFC 3765) is
//!   advisory and not enforced.
//! - [`graceful_shutdown_import`]: a route carrying GRACEFUL_SHUTDOWN (RFC 8326, 65535:0) gets
//!   LOCAL_PREF 0, so any alternative path wins while the peer drains.
//! - [`mark_graceful_shutdown`]: what a draining speaker does to the routes it exports.

use crate::wire::attr::{Community, PathAttributes};
use crate::wire::context::PeerKind;

/// Whether a route with these attributes may be advertised to a peer of this kind.
pub fn export_allowed(attrs: &PathAttributes, to: PeerKind) -> bool {
    let has = |c: Community| attrs.communities.contains(&c);
    if has(Community::NO_ADVERTISE) {
        return false;
    }
    match to {
        PeerKind::Internal => true,
        PeerKind::External => !has(Community::NO_EXPORT) && !has(Community::NO_EXPORT_SUBCONFED),
    }
}

/// RFC 8326 section 4.2 on import: LOCAL_PREF 0 for routes carrying GRACEFUL_SHUTDOWN.
/// Returns whether the route carried it.
pub fn graceful_shutdown_import(attrs: &mut PathAttributes) -> bool {
    let gshut = attrs.communities.contains(&Community::GRACEFUL_SHUTDOWN);
    if gshut {
        attrs.local_pref = Some(0);
    }
    gshut
}

/// RFC 8326 section 4.1 on export while this speaker drains: add GRACEFUL_SHUTDOWN (once).
pub fn mark_graceful_shutdown(attrs: &mut PathAttributes) {
    if !attrs.communities.contains(&Community::GRACEFUL_SHUTDOWN) {
        attrs.communities.push(Community::GRACEFUL_SHUTDOWN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(communities: &[Community]) -> PathAttributes {
        PathAttributes {
            communities: communities.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn well_known_export_table() {
        use PeerKind::{External, Internal};
        let c = Community::new(65000, 1);
        #[rustfmt::skip]
        let cases: &[(&[Community], PeerKind, bool)] = &[
            (&[], Internal, true),
            (&[], External, true),
            (&[c], External, true),
            (&[Community::NO_ADVERTISE], Internal, false),
            (&[Community::NO_ADVERTISE], External, false),
            (&[c, Community::NO_EXPORT], Internal, true),
            (&[c, Community::NO_EXPORT], External, false),
            (&[Community::NO_EXPORT_SUBCONFED], Internal, true),
            (&[Community::NO_EXPORT_SUBCONFED], External, false),
            (&[Community::NO_PEER], External, true),
            (&[Community::BLACKHOLE], External, true),
        ];
        for (cs, to, want) in cases {
            assert_eq!(export_allowed(&with(cs), *to), *want, "{cs:?} to {to:?}");
        }
    }

    #[test]
    fn graceful_shutdown_sets_local_pref_zero() {
        let mut a = with(&[Community::new(65000, 1), Community::GRACEFUL_SHUTDOWN]);
        a.local_pref = Some(200);
        assert!(graceful_shutdown_import(&mut a));
        assert_eq!(a.local_pref, Some(0));

        let mut b = with(&[Community::new(65000, 1)]);
        b.local_pref = Some(200);
        let before = b.clone();
        assert!(!graceful_shutdown_import(&mut b));
        assert_eq!(b, before);

        // Absent LOCAL_PREF (an eBGP route) still ends up at 0.
        let mut c = with(&[Community::GRACEFUL_SHUTDOWN]);
        graceful_shutdown_import(&mut c);
        assert_eq!(c.local_pref, Some(0));
    }

    #[test]
    fn marking_is_idempotent() {
        let mut a = with(&[Community::new(65000, 1)]);
        mark_graceful_shutdown(&mut a);
        mark_graceful_shutdown(&mut a);
        assert_eq!(
            a.communities,
            vec![Community::new(65000, 1), Community::GRACEFUL_SHUTDOWN]
        );
    }
}
