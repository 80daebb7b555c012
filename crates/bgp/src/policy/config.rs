//! Routing policy configuration: what operators write (YAML or TOML), with `validate()`.
//!
//! Contract: deserializing rejects unknown fields and malformed values (communities, AS-path
//! patterns, prefixes); [`PolicyConfig::validate`] then checks what one value alone cannot
//! show (length ranges, references between lists and policies, terms that would do nothing)
//! and names the offending field by its path, e.g. `prefix_lists.tenants[2].le`.
//! [`PolicyConfig::compile`] validates and builds the evaluable [`super::PolicySet`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::Error;
use crate::iana::{Afi, Origin};

use super::as_path::AsPathEntry;
use super::community::{
    CommunityList, CommunityPattern, LargeCommunityList, LargeCommunityPattern,
};
use super::prefix_list::PrefixListEntry;
use super::{Verdict, invalid};

/// The whole policy section: named lists and named policies that refer to them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prefix_lists: BTreeMap<String, Vec<PrefixListEntry>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub as_path_lists: BTreeMap<String, Vec<AsPathEntry>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub community_lists: BTreeMap<String, CommunityList>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub large_community_lists: BTreeMap<String, LargeCommunityList>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<String, PolicyDef>,
}

/// One policy (a route map): ordered terms, then the default verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDef {
    /// Tried in order; none at all means every route gets `default`.
    #[serde(default)]
    pub terms: Vec<TermDef>,
    /// For routes no term decides; `reject` unless written.
    #[serde(default)]
    pub default: Verdict,
}

/// What a term does once it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Then {
    /// Apply `set` and accept: later terms are not evaluated.
    Accept,
    /// Reject: later terms are not evaluated; `set` is not allowed.
    Reject,
    /// Apply `set` and go on with the next term, which sees the modified route.
    Next,
}

/// One term: `match`, optional `set`, and `then`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermDef {
    /// For logs and error messages; unique within the policy when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "match")]
    pub matches: TermMatch,
    #[serde(default, skip_serializing_if = "SetActions::is_empty")]
    pub set: SetActions,
    pub then: Then,
}

/// `match: any`, or a map of conditions that must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermMatch {
    /// Every route, written explicitly.
    Any,
    Conditions(MatchConditions),
}

impl Serialize for TermMatch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TermMatch::Any => s.serialize_str("any"),
            TermMatch::Conditions(c) => c.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for TermMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TermMatch;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`any` or a map of match conditions")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<TermMatch, E> {
                if v == "any" {
                    Ok(TermMatch::Any)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TermMatch, A::Error> {
                MatchConditions::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(TermMatch::Conditions)
            }
        }
        d.deserialize_any(V)
    }
}

/// Address family of the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FamilyMatch {
    Ipv4,
    Ipv6,
}

impl FamilyMatch {
    pub fn afi(self) -> Afi {
        match self {
            FamilyMatch::Ipv4 => Afi::Ipv4,
            FamilyMatch::Ipv6 => Afi::Ipv6,
        }
    }
}

/// ORIGIN attribute values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginMatch {
    Igp,
    Egp,
    Incomplete,
}

impl From<OriginMatch> for Origin {
    fn from(o: OriginMatch) -> Origin {
        match o {
            OriginMatch::Igp => Origin::Igp,
            OriginMatch::Egp => Origin::Egp,
            OriginMatch::Incomplete => Origin::Incomplete,
        }
    }
}

/// A prefix, or a bare address meaning the host prefix (/32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AddrPrefix(pub IpNet);

impl FromStr for AddrPrefix {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let net = if s.contains('/') {
            s.parse::<IpNet>().ok()
        } else {
            s.parse::<IpAddr>().ok().map(IpNet::from)
        };
        net.map(AddrPrefix).ok_or_else(|| {
            invalid(
                format!("{s:?}"),
                "not an address or prefix: write e.g. 192.0.2.1 or 192.0.2.0/24",
            )
        })
    }
}

impl TryFrom<String> for AddrPrefix {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl From<AddrPrefix> for String {
    fn from(p: AddrPrefix) -> String {
        p.0.to_string()
    }
}

/// Match conditions; every one given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConditions {
    /// The route's prefix is permitted by this prefix list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_list: Option<String>,
    /// The route's AS_PATH is permitted by this AS-path list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_path: Option<String>,
    /// The route's communities satisfy this community list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
    /// The route's large communities satisfy this large community list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_community: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<FamilyMatch>,
    /// The route's next hop lies in this prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<AddrPrefix>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<OriginMatch>,
    /// The AS of the peer the route comes from (import) or goes to (export).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_as: Option<u32>,
}

impl MatchConditions {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// `next_hop: self` or an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum NextHopSetting {
    /// Our own address on the session ([`super::RouteContext::local_address`]).
    SelfAddress,
    Address(IpAddr),
}

impl FromStr for NextHopSetting {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        if s == "self" {
            return Ok(Self::SelfAddress);
        }
        s.parse().map(Self::Address).map_err(|_| {
            invalid(
                format!("{s:?}"),
                "not a next hop: write `self` or an address such as 192.0.2.1",
            )
        })
    }
}

impl TryFrom<String> for NextHopSetting {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl From<NextHopSetting> for String {
    fn from(n: NextHopSetting) -> String {
        match n {
            NextHopSetting::SelfAddress => "self".to_owned(),
            NextHopSetting::Address(a) => a.to_string(),
        }
    }
}

/// How many times a prepend repeats its AS: 1 to 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct PrependCount(u8);

impl PrependCount {
    pub const MAX: u8 = 16;

    pub fn new(n: u8) -> Result<Self, Error> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(invalid(
                "prepend.count",
                format!("{n} is out of range: write a count from 1 to {}", Self::MAX),
            ))
        }
    }

    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl TryFrom<u8> for PrependCount {
    type Error = Error;

    fn try_from(n: u8) -> Result<Self, Error> {
        Self::new(n)
    }
}

impl From<PrependCount> for u8 {
    fn from(n: PrependCount) -> u8 {
        n.0
    }
}

/// AS-path prepend: `count` copies of `asn`, our own AS when `asn` is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prepend {
    pub count: PrependCount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
}

/// Modifications of a matching term, applied in this order: local_pref, med, weight,
/// next_hop, prepend, then for each kind of community: replace (`communities`), remove, add.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetActions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub med: Option<u32>,
    /// Local to this speaker (never sent): preferred first in best-path selection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<NextHopSetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepend: Option<Prepend>,
    /// Replace all standard communities (an empty list removes them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communities: Option<Vec<CommunityPattern>>,
    /// Remove every community a pattern matches (`65000:*` is allowed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_communities: Vec<CommunityPattern>,
    /// Add communities not already present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_communities: Vec<CommunityPattern>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_communities: Option<Vec<LargeCommunityPattern>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_large_communities: Vec<LargeCommunityPattern>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_large_communities: Vec<LargeCommunityPattern>,
}

impl SetActions {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

const MAX_NAME_LEN: usize = 64;

fn check_name(field: &str, name: &str) -> Result<(), Error> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.chars().all(ok_char) {
        return Err(invalid(
            field,
            format!("bad name {name:?}: use 1 to {MAX_NAME_LEN} letters, digits, `-`, `_` or `.`"),
        ));
    }
    Ok(())
}

fn check_reference<V>(
    field: String,
    name: &Option<String>,
    defined: &BTreeMap<String, V>,
    section: &str,
) -> Result<(), Error> {
    match name {
        Some(n) if !defined.contains_key(n) => Err(invalid(
            field,
            format!("no {section} entry named {n:?}: define it under {section} or fix the name"),
        )),
        _ => Ok(()),
    }
}

fn check_exact<P: fmt::Display>(
    field: String,
    values: &[P],
    is_exact: impl Fn(&P) -> bool,
) -> Result<(), Error> {
    match values.iter().find(|v| !is_exact(v)) {
        Some(v) => Err(invalid(
            field,
            format!(
                "{v} is a pattern; only remove_* accepts `*`: write a concrete value to add or set"
            ),
        )),
        None => Ok(()),
    }
}

fn check_prefix_entry(field: &str, e: &PrefixListEntry) -> Result<(), Error> {
    let len = e.prefix.prefix_len();
    let max = e.prefix.max_prefix_len();
    if e.prefix.trunc() != e.prefix {
        return Err(invalid(
            format!("{field}.prefix"),
            format!(
                "{} has host bits set: write {} (add `le {max}` to match longer prefixes too)",
                e.prefix,
                e.prefix.trunc()
            ),
        ));
    }
    let bound = |name: &str, v: Option<u8>| match v {
        Some(v) if v < len || v > max => Err(invalid(
            format!("{field}.{name}"),
            format!(
                "{name} {v} is outside {len}..={max}: it must be at least the length of {} \
                 and at most {max}",
                e.prefix
            ),
        )),
        _ => Ok(()),
    };
    bound("ge", e.ge)?;
    bound("le", e.le)?;
    if let (Some(ge), Some(le)) = (e.ge, e.le)
        && le < ge
    {
        return Err(invalid(
            format!("{field}.le"),
            format!("le {le} is less than ge {ge}: the range would be empty; swap them"),
        ));
    }
    Ok(())
}

fn check_as_path_entry(field: &str, e: &AsPathEntry) -> Result<(), Error> {
    if !e.has_condition() {
        return Err(invalid(
            field,
            "the entry has no condition: add contains, origin_as, neighbour_as, length or \
             pattern (pattern \".*\" matches every path)",
        ));
    }
    if let Some(r) = e.length {
        if r.eq.is_none() && r.ge.is_none() && r.le.is_none() {
            return Err(invalid(format!("{field}.length"), "write eq, ge or le"));
        }
        if r.eq.is_some() && (r.ge.is_some() || r.le.is_some()) {
            return Err(invalid(
                format!("{field}.length"),
                "eq with ge or le: write either eq or a ge/le range",
            ));
        }
        if let (Some(ge), Some(le)) = (r.ge, r.le)
            && le < ge
        {
            return Err(invalid(
                format!("{field}.length.le"),
                format!("le {le} is less than ge {ge}: the range would be empty; swap them"),
            ));
        }
    }
    Ok(())
}

impl PolicyConfig {
    /// Checks everything deserialization cannot; the error names the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        for (name, entries) in &self.prefix_lists {
            check_name(&format!("prefix_lists.{name}"), name)?;
            for (i, e) in entries.iter().enumerate() {
                check_prefix_entry(&format!("prefix_lists.{name}[{i}]"), e)?;
            }
        }
        for (name, entries) in &self.as_path_lists {
            check_name(&format!("as_path_lists.{name}"), name)?;
            for (i, e) in entries.iter().enumerate() {
                check_as_path_entry(&format!("as_path_lists.{name}[{i}]"), e)?;
            }
        }
        for name in self.community_lists.keys() {
            check_name(&format!("community_lists.{name}"), name)?;
        }
        for name in self.large_community_lists.keys() {
            check_name(&format!("large_community_lists.{name}"), name)?;
        }
        for (name, p) in &self.policies {
            let field = format!("policies.{name}");
            check_name(&field, name)?;
            self.validate_policy(&field, p)?;
        }
        Ok(())
    }

    fn validate_policy(&self, field: &str, p: &PolicyDef) -> Result<(), Error> {
        let mut names = BTreeSet::new();
        for (i, t) in p.terms.iter().enumerate() {
            let field = format!("{field}.terms[{i}]");
            if let Some(n) = &t.name {
                check_name(&format!("{field}.name"), n)?;
                if !names.insert(n) {
                    return Err(invalid(
                        format!("{field}.name"),
                        format!("another term of this policy is named {n:?}: rename one"),
                    ));
                }
            }
            self.validate_match(&field, &t.matches)?;
            validate_set(&format!("{field}.set"), &t.set)?;
            match t.then {
                Then::Reject if !t.set.is_empty() => {
                    return Err(invalid(
                        format!("{field}.set"),
                        "a term that rejects cannot set anything: remove set or change then",
                    ));
                }
                Then::Next if t.set.is_empty() => {
                    return Err(invalid(
                        format!("{field}.then"),
                        "`then: next` without set does nothing: add set or remove the term",
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn validate_match(&self, field: &str, m: &TermMatch) -> Result<(), Error> {
        let TermMatch::Conditions(c) = m else {
            return Ok(());
        };
        if c.is_empty() {
            return Err(invalid(
                format!("{field}.match"),
                "no condition: write `match: any` to match every route",
            ));
        }
        let f = |name: &str| format!("{field}.match.{name}");
        check_reference(
            f("prefix_list"),
            &c.prefix_list,
            &self.prefix_lists,
            "prefix_lists",
        )?;
        check_reference(
            f("as_path"),
            &c.as_path,
            &self.as_path_lists,
            "as_path_lists",
        )?;
        check_reference(
            f("community"),
            &c.community,
            &self.community_lists,
            "community_lists",
        )?;
        check_reference(
            f("large_community"),
            &c.large_community,
            &self.large_community_lists,
            "large_community_lists",
        )?;
        Ok(())
    }
}

fn validate_set(field: &str, s: &SetActions) -> Result<(), Error> {
    let f = |name: &str| format!("{field}.{name}");
    if let Some(p) = s.prepend
        && p.asn == Some(0)
    {
        return Err(invalid(
            f("prepend.asn"),
            "AS 0 is reserved (RFC 7607): write another AS or leave asn out for our own",
        ));
    }
    if let Some(v) = &s.communities {
        check_exact(f("communities"), v, |p| p.exact().is_some())?;
    }
    check_exact(f("add_communities"), &s.add_communities, |p| {
        p.exact().is_some()
    })?;
    if let Some(v) = &s.large_communities {
        check_exact(f("large_communities"), v, |p| p.exact().is_some())?;
    }
    check_exact(f("add_large_communities"), &s.add_large_communities, |p| {
        p.exact().is_some()
    })?;
    Ok(())
}
