//! The import policy hook.
//!
//! Contract: the RIB asks the policy once per announced prefix, after loop detection and
//! before storing the route; what it stores is the post-policy Adj-RIB-In. [`Verdict::Accept`]
//! keeps the received attributes and costs nothing beyond the call, so policies should return
//! it rather than an unchanged copy. A plain closure
//! `FnMut(&Prefix, &PathAttributes) -> Option<PathAttributes>` is a policy too (`None`
//! rejects); the RIB notices when the returned attributes equal the received ones.

use crate::wire::{PathAttributes, Prefix};

/// What the import policy decided for one route.
// Returned per route and consumed at once: boxing `Modify` would cost an allocation per
// modified route to save a move.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Store the route with the attributes as received.
    Accept,
    /// Store the route with these attributes instead. Setting `next_hop` overrides the next
    /// hop of the route (also of MP_REACH_NLRI routes).
    Modify(PathAttributes),
    /// Do not store the route; an earlier route of the peer for the prefix is withdrawn.
    Reject,
}

/// An import policy, applied per peer (the caller passes the peer's policy with its UPDATEs).
pub trait Import {
    fn import(&mut self, prefix: &Prefix, attrs: &PathAttributes) -> Verdict;
}

impl<F> Import for F
where
    F: FnMut(&Prefix, &PathAttributes) -> Option<PathAttributes>,
{
    fn import(&mut self, prefix: &Prefix, attrs: &PathAttributes) -> Verdict {
        match self(prefix, attrs) {
            Some(a) => Verdict::Modify(a),
            None => Verdict::Reject,
        }
    }
}

/// The policy that accepts every route unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl Import for AcceptAll {
    fn import(&mut self, _: &Prefix, _: &PathAttributes) -> Verdict {
        Verdict::Accept
    }
}
