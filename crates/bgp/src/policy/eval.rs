//! Compiled policies and their evaluation.
//!
//! Contract of [`Policy::evaluate`]: terms run in order; the first term whose conditions all
//! hold applies its `set` and then accepts, rejects, or (`next`) lets the following terms see
//! the modified route. A route no term decides gets the policy's default verdict. Conditions
//! that refer to a list are true only when the list selects the route; an empty list selects
//! nothing. Evaluation is pure: it reads the route, writes only `attrs`, and never fails.
//! After a `Reject` the attributes may hold changes of earlier `next` terms: discard them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::error::Error;
use crate::iana::{Afi, Origin};
use crate::wire::attr::{AsPath, Community, LargeCommunity, PathAttributes};
use crate::wire::prefix::Prefix;

use super::as_path::AsPathList;
use super::community::{
    CommunityList, CommunityPattern, LargeCommunityList, LargeCommunityPattern, add_missing,
    remove_matching,
};
use super::config::{
    MatchConditions, NextHopSetting, PolicyConfig, PolicyDef, SetActions, TermMatch, Then,
};
use super::prefix_list::PrefixList;
use super::{Decision, RouteContext, Verdict};

#[derive(Debug, Clone)]
enum Condition {
    PrefixList(Arc<PrefixList>),
    AsPath(Arc<AsPathList>),
    Community(Arc<CommunityList>),
    LargeCommunity(Arc<LargeCommunityList>),
    Family(Afi),
    NextHop(IpNet),
    Origin(Origin),
    PeerAs(u32),
}

impl Condition {
    fn holds(&self, route: &RouteContext, attrs: &PathAttributes) -> bool {
        match self {
            Condition::PrefixList(l) => l.permits(&route.prefix),
            Condition::AsPath(l) => l.matches(attrs.as_path.as_ref()),
            Condition::Community(l) => l.matches(&attrs.communities),
            Condition::LargeCommunity(l) => l.matches(&attrs.large_communities),
            Condition::Family(afi) => route.prefix.afi() == *afi,
            Condition::NextHop(net) => route
                .next_hop
                .or(attrs.next_hop.map(IpAddr::V4))
                .is_some_and(|nh| net.contains(&nh)),
            Condition::Origin(o) => attrs.origin == Some(*o),
            Condition::PeerAs(asn) => route.peer_as == *asn,
        }
    }
}

/// The modifications of one term with wildcards resolved away.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Actions {
    local_pref: Option<u32>,
    med: Option<u32>,
    weight: Option<u32>,
    next_hop: Option<NextHopSetting>,
    /// AS (`None`: ours) and count.
    prepend: Option<(Option<u32>, usize)>,
    communities: Option<Vec<Community>>,
    remove_communities: Vec<CommunityPattern>,
    add_communities: Vec<Community>,
    large_communities: Option<Vec<LargeCommunity>>,
    remove_large_communities: Vec<LargeCommunityPattern>,
    add_large_communities: Vec<LargeCommunity>,
}

fn dedup<T: Copy + PartialEq>(v: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    add_missing(&mut out, &v.into_iter().collect::<Vec<_>>());
    out
}

impl Actions {
    fn new(s: &SetActions) -> Self {
        // validate() rejected wildcards where an exact value is needed.
        let exact = |v: &[CommunityPattern]| dedup(v.iter().filter_map(|p| p.exact()));
        let exact_l = |v: &[LargeCommunityPattern]| dedup(v.iter().filter_map(|p| p.exact()));
        Self {
            local_pref: s.local_pref,
            med: s.med,
            weight: s.weight,
            next_hop: s.next_hop,
            prepend: s.prepend.map(|p| (p.asn, p.count.get())),
            communities: s.communities.as_deref().map(exact),
            remove_communities: s.remove_communities.clone(),
            add_communities: exact(&s.add_communities),
            large_communities: s.large_communities.as_deref().map(exact_l),
            remove_large_communities: s.remove_large_communities.clone(),
            add_large_communities: exact_l(&s.add_large_communities),
        }
    }

    fn apply(&self, route: &RouteContext, attrs: &mut PathAttributes, d: &mut Decision) {
        if let Some(v) = self.local_pref {
            attrs.local_pref = Some(v);
        }
        if let Some(v) = self.med {
            attrs.med = Some(v);
            d.sets_med = true;
        }
        if let Some(v) = self.weight {
            d.weight = Some(v);
        }
        if let Some(nh) = self.next_hop {
            d.next_hop = Some(nh);
            let addr = match nh {
                NextHopSetting::SelfAddress => route.local_address,
                NextHopSetting::Address(a) => Some(a),
            };
            // NEXT_HOP carries IPv4 next hops of IPv4 routes; others go in MP_REACH_NLRI,
            // which the speaker builds from the decision.
            if let (Prefix::V4(_), Some(IpAddr::V4(a))) = (route.prefix, addr) {
                attrs.next_hop = Some(a);
            }
        }
        if let Some((asn, count)) = self.prepend {
            attrs
                .as_path
                .get_or_insert_with(AsPath::empty)
                .prepend(asn.unwrap_or(route.local_as), count);
        }
        if let Some(v) = &self.communities {
            attrs.communities.clone_from(v);
        }
        remove_matching(&mut attrs.communities, &self.remove_communities);
        add_missing(&mut attrs.communities, &self.add_communities);
        if let Some(v) = &self.large_communities {
            attrs.large_communities.clone_from(v);
        }
        remove_matching(&mut attrs.large_communities, &self.remove_large_communities);
        add_missing(&mut attrs.large_communities, &self.add_large_communities);
    }
}

#[derive(Debug, Clone)]
struct Term {
    /// `None`: `match: any`.
    conditions: Option<Vec<Condition>>,
    actions: Actions,
    then: Then,
}

impl Term {
    fn matches(&self, route: &RouteContext, attrs: &PathAttributes) -> bool {
        match &self.conditions {
            None => true,
            // validate() refuses empty condition lists; compiled ones match nothing.
            Some(c) => !c.is_empty() && c.iter().all(|c| c.holds(route, attrs)),
        }
    }
}

/// A compiled policy, cheap to clone (lists are shared).
#[derive(Debug, Clone)]
pub struct Policy {
    name: String,
    terms: Vec<Term>,
    default: Verdict,
}

impl Policy {
    /// A policy without terms that gives `verdict` to every route.
    pub fn constant(name: impl Into<String>, verdict: Verdict) -> Self {
        Self {
            name: name.into(),
            terms: Vec::new(),
            default: verdict,
        }
    }

    /// Accepts every route unchanged.
    pub fn accept_all() -> Self {
        Self::constant("accept-all", Verdict::Accept)
    }

    /// The verdict every route gets, unchanged, when the policy has no terms.
    pub fn constant_verdict(&self) -> Option<Verdict> {
        self.terms.is_empty().then_some(self.default)
    }

    /// Rejects every route.
    pub fn reject_all() -> Self {
        Self::constant("reject-all", Verdict::Reject)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the verdict can depend on which peer the route goes to or comes from (a
    /// `peer_as` match). Peers whose export policy does not can share one evaluation per route
    /// (update groups).
    pub fn depends_on_peer(&self) -> bool {
        self.terms.iter().any(|t| {
            t.conditions
                .iter()
                .flatten()
                .any(|c| matches!(c, Condition::PeerAs(_)))
        })
    }

    /// Runs the policy; see the module docs for the contract.
    pub fn evaluate(&self, route: &RouteContext, attrs: &mut PathAttributes) -> Decision {
        let mut d = Decision::new(self.default);
        for t in &self.terms {
            if !t.matches(route, attrs) {
                continue;
            }
            match t.then {
                Then::Reject => {
                    d.verdict = Verdict::Reject;
                    return d;
                }
                Then::Accept => {
                    t.actions.apply(route, attrs, &mut d);
                    d.verdict = Verdict::Accept;
                    return d;
                }
                Then::Next => t.actions.apply(route, attrs, &mut d),
            }
        }
        d
    }

    /// [`Policy::evaluate`], keeping only the verdict. Weight and IPv6 next hops are only in
    /// the [`Decision`].
    pub fn apply(&self, route: &RouteContext, attrs: &mut PathAttributes) -> Verdict {
        self.evaluate(route, attrs).verdict
    }
}

/// All policies of a [`PolicyConfig`], by name.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: BTreeMap<String, Policy>,
}

impl PolicySet {
    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.policies.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.policies.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}

struct Lists {
    prefix: BTreeMap<String, Arc<PrefixList>>,
    as_path: BTreeMap<String, Arc<AsPathList>>,
    community: BTreeMap<String, Arc<CommunityList>>,
    large: BTreeMap<String, Arc<LargeCommunityList>>,
}

/// Adds the condition for list `name`, if given; false if no such list exists.
fn resolve<T>(
    lists: &BTreeMap<String, Arc<T>>,
    name: &Option<String>,
    wrap: fn(Arc<T>) -> Condition,
    out: &mut Vec<Condition>,
) -> bool {
    match name {
        None => true,
        Some(n) => lists
            .get(n)
            .cloned()
            .map(wrap)
            .map(|c| out.push(c))
            .is_some(),
    }
}

impl Lists {
    fn conditions(&self, c: &MatchConditions) -> Vec<Condition> {
        let mut v = Vec::new();
        let found = [
            resolve(&self.prefix, &c.prefix_list, Condition::PrefixList, &mut v),
            resolve(&self.as_path, &c.as_path, Condition::AsPath, &mut v),
            resolve(&self.community, &c.community, Condition::Community, &mut v),
            resolve(
                &self.large,
                &c.large_community,
                Condition::LargeCommunity,
                &mut v,
            ),
        ];
        // validate() checked every reference; a dangling one compiles to a condition list
        // that cannot hold, never to "match all".
        if found.contains(&false) {
            return Vec::new();
        }
        v.extend(c.family.map(|f| Condition::Family(f.afi())));
        v.extend(c.next_hop.map(|n| Condition::NextHop(n.0)));
        v.extend(c.origin.map(|o| Condition::Origin(o.into())));
        v.extend(c.peer_as.map(Condition::PeerAs));
        v
    }

    fn compile_policy(&self, name: &str, def: &PolicyDef) -> Policy {
        let terms = def
            .terms
            .iter()
            .map(|t| Term {
                conditions: match &t.matches {
                    TermMatch::Any => None,
                    TermMatch::Conditions(c) => Some(self.conditions(c)),
                },
                actions: Actions::new(&t.set),
                then: t.then,
            })
            .collect();
        Policy {
            name: name.to_owned(),
            terms,
            default: def.default,
        }
    }
}

impl PolicyConfig {
    /// Validates, then compiles every policy; lists are compiled once and shared.
    pub fn compile(&self) -> Result<PolicySet, Error> {
        self.validate()?;
        let lists = Lists {
            prefix: self
                .prefix_lists
                .iter()
                .map(|(n, e)| (n.clone(), Arc::new(PrefixList::new(e))))
                .collect(),
            as_path: self
                .as_path_lists
                .iter()
                .map(|(n, e)| (n.clone(), Arc::new(AsPathList::new(e.clone()))))
                .collect(),
            community: self
                .community_lists
                .iter()
                .map(|(n, l)| (n.clone(), Arc::new(l.clone())))
                .collect(),
            large: self
                .large_community_lists
                .iter()
                .map(|(n, l)| (n.clone(), Arc::new(l.clone())))
                .collect(),
        };
        let policies = self
            .policies
            .iter()
            .map(|(n, def)| (n.clone(), lists.compile_policy(n, def)))
            .collect();
        Ok(PolicySet { policies })
    }
}
