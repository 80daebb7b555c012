//! Routing policy: pure functions from a route to a verdict and modified attributes.
//!
//! - [`config`]: what operators write ([`PolicyConfig`]), `validate()`, `compile()`.
//! - [`prefix_list`], [`as_path`], [`community`]: the selectors, each an ordered or
//!   unordered list with its own compiled form.
//! - [`eval`]: compiled [`Policy`] and [`PolicySet`]; [`Policy::apply`] and
//!   [`Policy::evaluate`].
//! - [`defaults`]: RFC 8212 (no policy on an eBGP session means nothing passes).
//! - [`wellknown`]: NO_ADVERTISE / NO_EXPORT / NO_EXPORT_SUBCONFED export filtering and
//!   RFC 8326 graceful shutdown.
//! - [`transform`]: the standard eBGP and iBGP export transformations.
//!
//! Contracts:
//! - Nothing here does I/O, reads the clock, allocates per route beyond the attributes it
//!   writes, or panics.
//! - An empty selector matches nothing: an empty prefix list, AS-path list or community list
//!   never selects a route. A term matches every route only when it says `match: any`; a
//!   `match` with no condition is a validation error.
//! - The first deciding term wins; a route no term decides gets the policy's `default`
//!   (`reject` unless written).
//!
//! How the speaker runs them, per route:
//! - import: [`defaults::effective`] (RFC 8212) → the import policy →
//!   [`wellknown::graceful_shutdown_import`] (after the policy, as FRR does, so that a policy
//!   setting LOCAL_PREF cannot undo a peer's graceful shutdown);
//! - export: [`wellknown::export_allowed`] → [`defaults::effective`] → the export policy →
//!   [`transform::ebgp_export`] or [`transform::ibgp_export`]. The policy sees the path before
//!   our AS is prepended, as in FRR and BIRD.
//!
//! A configuration, in YAML:
//!
//! ```yaml
//! prefix_lists:
//!   tenant-blocks:
//!     - { action: permit, prefix: 10.1.0.0/16, ge: 24, le: 32 }
//!     - { action: permit, prefix: "2001:db8:1::/48", le: 128 }
//!   default-route:
//!     - { action: permit, prefix: 0.0.0.0/0 }
//! as_path_lists:
//!   from-tor:
//!     - { action: deny, length: { ge: 10 } }
//!     - { action: permit, pattern: "^65001 .*" }
//! community_lists:
//!   blackhole: { any: [blackhole, "65000:666"] }
//! large_community_lists:
//!   tenant-tagged: { any: ["65000:1:*"] }
//! policies:
//!   host-export:
//!     terms:
//!       - name: own-blocks
//!         match: { prefix_list: tenant-blocks }
//!         set: { add_large_communities: ["65000:1:42"] }
//!         then: accept
//!     default: reject
//!   gateway-standby-export:
//!     terms:
//!       - match: { prefix_list: default-route }
//!         set: { prepend: { count: 3 }, med: 100 }
//!         then: accept
//!   tor-import:
//!     terms:
//!       - match: { community: blackhole }
//!         then: reject
//!       - match: { as_path: from-tor, family: ipv4 }
//!         set: { local_pref: 200, remove_communities: ["65001:*"] }
//!         then: accept
//!       - match: any
//!         set: { weight: 10 }
//!         then: accept
//! ```

pub mod as_path;
pub mod community;
pub mod config;
pub mod defaults;
pub mod eval;
pub mod prefix_list;
pub mod transform;
pub mod wellknown;

#[cfg(test)]
mod tests;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::wire::context::PeerKind;
use crate::wire::prefix::Prefix;

pub use as_path::{AsPathEntry, AsPathList, AsPathPattern, LengthRange};
pub use community::{
    CommunityList, CommunityPattern, LargeCommunityList, LargeCommunityPattern, MemberList,
};
pub use config::{
    AddrPrefix, FamilyMatch, MatchConditions, NextHopSetting, OriginMatch, PolicyConfig, PolicyDef,
    Prepend, PrependCount, SetActions, TermDef, TermMatch, Then,
};
pub use defaults::{EffectivePolicy, effective};
pub use eval::{Policy, PolicySet};
pub use prefix_list::{PrefixList, PrefixListEntry};
pub use transform::{EbgpExport, ebgp_export, ibgp_export};
pub use wellknown::{export_allowed, graceful_shutdown_import, mark_graceful_shutdown};

/// Builds the crate error for a bad policy value.
pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Error {
    Error::InvalidPolicy {
        field: field.into(),
        problem: problem.into(),
    }
}

/// The action of a prefix-list or AS-path-list entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListAction {
    Permit,
    Deny,
}

/// Whether a route passes a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accept,
    #[default]
    Reject,
}

/// What a policy knows about a route besides its path attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteContext {
    pub prefix: Prefix,
    /// The peer the route comes from (import) or goes to (export).
    pub peer_as: u32,
    pub peer_kind: PeerKind,
    pub local_as: u32,
    /// The route's next hop (from NEXT_HOP or MP_REACH_NLRI); matched by `next_hop`, falling
    /// back to the NEXT_HOP attribute when absent.
    pub next_hop: Option<IpAddr>,
    /// Our address on the session, for `next_hop: self`.
    pub local_address: Option<IpAddr>,
}

impl RouteContext {
    /// A context with no next hop and no local address.
    pub fn new(prefix: Prefix, peer_as: u32, peer_kind: PeerKind, local_as: u32) -> Self {
        Self {
            prefix,
            peer_as,
            peer_kind,
            local_as,
            next_hop: None,
            local_address: None,
        }
    }
}

/// The full outcome of [`Policy::evaluate`]: the verdict, and what the policy set that does
/// not live in [`crate::wire::PathAttributes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decision {
    pub verdict: Verdict,
    /// `set: weight` (local to this speaker).
    pub weight: Option<u32>,
    /// `set: next_hop`. An IPv4 address (or `self` resolving to one) for an IPv4 route is
    /// also written to NEXT_HOP; the speaker puts any other into MP_REACH_NLRI.
    pub next_hop: Option<NextHopSetting>,
    /// The policy set MED: it is ours, and [`transform::ebgp_export`] keeps it.
    pub sets_med: bool,
}

impl Decision {
    fn new(verdict: Verdict) -> Self {
        Self {
            verdict,
            weight: None,
            next_hop: None,
            sets_med: false,
        }
    }
}
