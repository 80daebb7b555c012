//! RFC 8212: default eBGP route propagation behaviour without policies.
//!
//! Contract: a session with a configured policy uses it. Without one, an eBGP session imports
//! nothing and exports nothing (RFC 8212 section 2), while an iBGP session passes every route
//! unchanged. The same rule holds in both directions, so there is one function.

use crate::wire::attr::PathAttributes;
use crate::wire::context::PeerKind;

use super::{Decision, Policy, RouteContext, Verdict};

/// The policy a session actually runs.
#[derive(Debug, Clone, Copy)]
pub enum EffectivePolicy<'a> {
    Configured(&'a Policy),
    /// No policy on an iBGP session.
    AcceptAll,
    /// No policy on an eBGP session (RFC 8212).
    RejectAll,
}

/// The effective import or export policy of a session to a `peer` of this kind.
pub fn effective(configured: Option<&Policy>, peer: PeerKind) -> EffectivePolicy<'_> {
    match (configured, peer) {
        (Some(p), _) => EffectivePolicy::Configured(p),
        (None, PeerKind::Internal) => EffectivePolicy::AcceptAll,
        (None, PeerKind::External) => EffectivePolicy::RejectAll,
    }
}

impl EffectivePolicy<'_> {
    pub fn evaluate(&self, route: &RouteContext, attrs: &mut PathAttributes) -> Decision {
        match self {
            Self::Configured(p) => p.evaluate(route, attrs),
            Self::AcceptAll => Decision::new(Verdict::Accept),
            Self::RejectAll => Decision::new(Verdict::Reject),
        }
    }

    pub fn apply(&self, route: &RouteContext, attrs: &mut PathAttributes) -> Verdict {
        self.evaluate(route, attrs).verdict
    }

    /// Whether every route is rejected whatever it carries (RFC 8212 default); a speaker can
    /// skip the RIB walk, and log once that the session needs a policy.
    /// The verdict every route gets, unchanged, if it does not depend on the route.
    pub fn constant_verdict(&self) -> Option<Verdict> {
        match self {
            Self::Configured(p) => p.constant_verdict(),
            Self::AcceptAll => Some(Verdict::Accept),
            Self::RejectAll => Some(Verdict::Reject),
        }
    }

    pub fn rejects_everything(&self) -> bool {
        matches!(self, Self::RejectAll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::attr::AsPath;

    #[test]
    fn rfc8212_defaults() {
        let route = RouteContext::new(
            "10.0.0.0/24".parse().unwrap(),
            65001,
            PeerKind::External,
            65000,
        );
        let attrs = PathAttributes {
            as_path: Some(AsPath::sequence([65001])),
            ..Default::default()
        };
        let accept = Policy::accept_all();
        #[rustfmt::skip]
        let cases: &[(Option<&Policy>, PeerKind, Verdict)] = &[
            (None, PeerKind::External, Verdict::Reject),
            (None, PeerKind::Internal, Verdict::Accept),
            (Some(&accept), PeerKind::External, Verdict::Accept),
            (Some(&accept), PeerKind::Internal, Verdict::Accept),
        ];
        for &(policy, kind, want) in cases {
            let mut a = attrs.clone();
            let e = effective(policy, kind);
            assert_eq!(e.apply(&route, &mut a), want, "{policy:?} {kind:?}");
            assert_eq!(a, attrs, "defaults never modify the route");
            assert_eq!(e.rejects_everything(), want == Verdict::Reject);
        }
        let reject = Policy::reject_all();
        let e = effective(Some(&reject), PeerKind::Internal);
        assert_eq!(e.apply(&route, &mut attrs.clone()), Verdict::Reject);
    }
}
