//! Community values and patterns as written in policy config, and community lists.
//!
//! Syntax (case-insensitive names, `-` or `_`):
//! - standard: `65000:100`, each half 0..=65535; a half may be `*` in patterns
//!   (`65000:*` is every community of AS 65000);
//! - well-known names: `no-export`, `no-advertise`, `no-export-subconfed`, `no-peer`,
//!   `graceful-shutdown`, `blackhole`, `accept-own`, `llgr-stale`, `no-llgr`;
//! - large: `4200000001:1:2`, each part 0..=4294967295; any part may be `*` in patterns.
//!
//! Contract: a pattern without `*` matches exactly one value ([`CommunityPattern::exact`]);
//! actions that add or set communities accept only such exact patterns (checked by
//! `validate()`). A [`MemberList`] with no members matches no route, whether it is `any` or
//! `all`: an empty selector never selects.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::iana::community as wk;
use crate::wire::attr::{Community, LargeCommunity};

/// Well-known community names accepted in config, in their canonical spelling.
const WELL_KNOWN: &[(&str, u32)] = &[
    ("no-export", wk::NO_EXPORT),
    ("no-advertise", wk::NO_ADVERTISE),
    ("no-export-subconfed", wk::NO_EXPORT_SUBCONFED),
    ("no-peer", wk::NO_PEER),
    ("graceful-shutdown", wk::GRACEFUL_SHUTDOWN),
    ("blackhole", wk::BLACKHOLE),
    ("accept-own", wk::ACCEPT_OWN),
    ("llgr-stale", wk::LLGR_STALE),
    ("no-llgr", wk::NO_LLGR),
];

fn syntax(input: &str, expected: &str) -> Error {
    Error::InvalidPolicy {
        field: format!("{input:?}"),
        problem: format!("not {expected}"),
    }
}

/// One part of a pattern: `None` is the wildcard `*`.
fn parse_part<T: FromStr>(s: &str, wildcard: bool) -> Option<Option<T>> {
    if wildcard && s == "*" {
        return Some(None);
    }
    // `u16::from_str` accepts a leading `+`; config should not.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().map(Some)
}

fn show_part<T: fmt::Display>(p: &Option<T>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match p {
        Some(v) => v.fmt(f),
        None => f.write_str("*"),
    }
}

/// A standard community (RFC 1997) or a pattern over them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommunityPattern {
    /// High 16 bits; `None` matches any.
    pub asn: Option<u16>,
    /// Low 16 bits; `None` matches any.
    pub value: Option<u16>,
}

impl CommunityPattern {
    /// The pattern matching exactly `c`.
    pub fn exact_of(c: Community) -> Self {
        Self {
            asn: Some(c.asn()),
            value: Some(c.value()),
        }
    }

    /// The one community this pattern matches, if it has no wildcard.
    pub fn exact(&self) -> Option<Community> {
        Some(Community::new(self.asn?, self.value?))
    }

    pub fn matches(&self, c: Community) -> bool {
        self.asn.is_none_or(|a| a == c.asn()) && self.value.is_none_or(|v| v == c.value())
    }
}

impl FromStr for CommunityPattern {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let expected = "a community: write ASN:VALUE (each 0-65535, `*` allowed in patterns) \
                        or a well-known name such as no-export";
        let name = s.trim().to_ascii_lowercase().replace('_', "-");
        if let Some(&(_, v)) = WELL_KNOWN.iter().find(|(n, _)| *n == name) {
            return Ok(Self::exact_of(Community(v)));
        }
        let (a, v) = name.split_once(':').ok_or_else(|| syntax(s, expected))?;
        Ok(Self {
            asn: parse_part(a, true).ok_or_else(|| syntax(s, expected))?,
            value: parse_part(v, true).ok_or_else(|| syntax(s, expected))?,
        })
    }
}

impl TryFrom<String> for CommunityPattern {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl fmt::Display for CommunityPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = self.exact()
            && let Some((name, _)) = WELL_KNOWN.iter().find(|(_, v)| *v == c.0)
        {
            return f.write_str(name);
        }
        show_part(&self.asn, f)?;
        f.write_str(":")?;
        show_part(&self.value, f)
    }
}

impl From<CommunityPattern> for String {
    fn from(p: CommunityPattern) -> String {
        p.to_string()
    }
}

/// A large community (RFC 8092) or a pattern over them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LargeCommunityPattern {
    pub global_admin: Option<u32>,
    pub local_data_1: Option<u32>,
    pub local_data_2: Option<u32>,
}

impl LargeCommunityPattern {
    /// The pattern matching exactly `c`.
    pub fn exact_of(c: LargeCommunity) -> Self {
        Self {
            global_admin: Some(c.global_admin),
            local_data_1: Some(c.local_data_1),
            local_data_2: Some(c.local_data_2),
        }
    }

    /// The one large community this pattern matches, if it has no wildcard.
    pub fn exact(&self) -> Option<LargeCommunity> {
        Some(LargeCommunity::new(
            self.global_admin?,
            self.local_data_1?,
            self.local_data_2?,
        ))
    }

    pub fn matches(&self, c: LargeCommunity) -> bool {
        self.global_admin.is_none_or(|v| v == c.global_admin)
            && self.local_data_1.is_none_or(|v| v == c.local_data_1)
            && self.local_data_2.is_none_or(|v| v == c.local_data_2)
    }
}

impl FromStr for LargeCommunityPattern {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let expected = "a large community: write GLOBAL:LOCAL1:LOCAL2 (each 0-4294967295, \
                        `*` allowed in patterns)";
        let mut parts = s.trim().split(':');
        let mut next = || {
            parts
                .next()
                .and_then(|p| parse_part(p, true))
                .ok_or_else(|| syntax(s, expected))
        };
        let p = Self {
            global_admin: next()?,
            local_data_1: next()?,
            local_data_2: next()?,
        };
        if parts.next().is_some() {
            return Err(syntax(s, expected));
        }
        Ok(p)
    }
}

impl TryFrom<String> for LargeCommunityPattern {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl fmt::Display for LargeCommunityPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        show_part(&self.global_admin, f)?;
        f.write_str(":")?;
        show_part(&self.local_data_1, f)?;
        f.write_str(":")?;
        show_part(&self.local_data_2, f)
    }
}

impl From<LargeCommunityPattern> for String {
    fn from(p: LargeCommunityPattern) -> String {
        p.to_string()
    }
}

/// Something a pattern can be tested against.
pub trait Pattern<T> {
    fn matches_value(&self, v: T) -> bool;
}

impl Pattern<Community> for CommunityPattern {
    fn matches_value(&self, v: Community) -> bool {
        self.matches(v)
    }
}

impl Pattern<LargeCommunity> for LargeCommunityPattern {
    fn matches_value(&self, v: LargeCommunity) -> bool {
        self.matches(v)
    }
}

/// A community list: `{ any: [...] }` matches a route carrying at least one member,
/// `{ all: [...] }` one carrying every member. Empty lists match nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "MemberListDef<P>",
    into = "MemberListDef<P>",
    bound(
        serialize = "P: Serialize + Clone",
        deserialize = "P: Deserialize<'de>"
    )
)]
pub enum MemberList<P> {
    Any(Vec<P>),
    All(Vec<P>),
}

/// The written form of a [`MemberList`]: a map with exactly one key. (YAML libraries write
/// externally tagged enums as `!tags`, which nobody types by hand.)
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberListDef<P> {
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    any: Option<Vec<P>>,
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    all: Option<Vec<P>>,
}

impl<P> TryFrom<MemberListDef<P>> for MemberList<P> {
    type Error = Error;

    fn try_from(d: MemberListDef<P>) -> Result<Self, Error> {
        match (d.any, d.all) {
            (Some(m), None) => Ok(Self::Any(m)),
            (None, Some(m)) => Ok(Self::All(m)),
            _ => Err(Error::InvalidPolicy {
                field: "community list".to_owned(),
                problem: "write exactly one of `any: [...]` (a route carrying one member) or \
                          `all: [...]` (a route carrying every member)"
                    .to_owned(),
            }),
        }
    }
}

impl<P> From<MemberList<P>> for MemberListDef<P> {
    fn from(l: MemberList<P>) -> Self {
        match l {
            MemberList::Any(m) => Self {
                any: Some(m),
                all: None,
            },
            MemberList::All(m) => Self {
                any: None,
                all: Some(m),
            },
        }
    }
}

/// A list of standard community patterns.
pub type CommunityList = MemberList<CommunityPattern>;
/// A list of large community patterns.
pub type LargeCommunityList = MemberList<LargeCommunityPattern>;

impl<P> MemberList<P> {
    pub fn members(&self) -> &[P] {
        match self {
            Self::Any(m) | Self::All(m) => m,
        }
    }

    /// Whether a route carrying `values` is selected.
    pub fn matches<T: Copy>(&self, values: &[T]) -> bool
    where
        P: Pattern<T>,
    {
        let has = |p: &P| values.iter().any(|&v| p.matches_value(v));
        match self {
            Self::Any(m) => m.iter().any(has),
            Self::All(m) => !m.is_empty() && m.iter().all(has),
        }
    }
}

/// Removes every value matched by one of `patterns`.
pub(crate) fn remove_matching<T: Copy, P: Pattern<T>>(values: &mut Vec<T>, patterns: &[P]) {
    values.retain(|&v| !patterns.iter().any(|p| p.matches_value(v)));
}

/// Appends each of `add` not already present.
pub(crate) fn add_missing<T: Copy + PartialEq>(values: &mut Vec<T>, add: &[T]) {
    for &a in add {
        if !values.contains(&a) {
            values.push(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> CommunityPattern {
        s.parse().unwrap()
    }

    fn l(s: &str) -> LargeCommunityPattern {
        s.parse().unwrap()
    }

    #[test]
    fn parse_standard_and_well_known() {
        let cases: &[(&str, Option<Community>)] = &[
            ("65000:100", Some(Community::new(65000, 100))),
            ("0:0", Some(Community(0))),
            ("65535:65535", Some(Community(u32::MAX))),
            ("no-export", Some(Community::NO_EXPORT)),
            ("NO_EXPORT", Some(Community::NO_EXPORT)),
            ("no-advertise", Some(Community::NO_ADVERTISE)),
            ("no-export-subconfed", Some(Community::NO_EXPORT_SUBCONFED)),
            ("graceful-shutdown", Some(Community::GRACEFUL_SHUTDOWN)),
            ("65535:0", Some(Community::GRACEFUL_SHUTDOWN)),
            ("blackhole", Some(Community::BLACKHOLE)),
            ("65535:666", Some(Community::BLACKHOLE)),
            ("65000:*", None),
            ("*:*", None),
        ];
        for (s, want) in cases {
            assert_eq!(c(s).exact(), *want, "{s}");
        }
        for bad in [
            "", "65536:1", "1:65536", "1", "1:2:3", "a:b", "+1:2", "-1:2", "no-such",
        ] {
            let e = bad.parse::<CommunityPattern>().unwrap_err();
            assert!(e.to_string().contains("ASN:VALUE"), "{bad}: {e}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["65000:100", "no-export", "65000:*", "*:7", "blackhole"] {
            assert_eq!(c(s).to_string(), s);
        }
        assert_eq!(c("65535:0").to_string(), "graceful-shutdown");
        for s in ["4200000001:1:2", "65000:*:*", "*:*:5"] {
            assert_eq!(l(s).to_string(), s);
        }
    }

    #[test]
    fn parse_large() {
        assert_eq!(
            l("4200000001:1:2").exact(),
            Some(LargeCommunity::new(4_200_000_001, 1, 2))
        );
        for bad in ["1:2", "1:2:3:4", "4294967296:0:0", "a:1:2", ""] {
            assert!(bad.parse::<LargeCommunityPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcards_match() {
        assert!(c("65000:*").matches(Community::new(65000, 7)));
        assert!(!c("65000:*").matches(Community::new(65001, 7)));
        assert!(c("*:7").matches(Community::new(65001, 7)));
        assert!(l("65000:*:2").matches(LargeCommunity::new(65000, 9, 2)));
        assert!(!l("65000:*:2").matches(LargeCommunity::new(65000, 9, 3)));
    }

    #[test]
    fn any_all_and_empty_lists() {
        let route = [Community::new(65000, 1), Community::NO_EXPORT];
        let any = CommunityList::Any(vec![c("65000:1"), c("65000:2")]);
        let all = CommunityList::All(vec![c("65000:1"), c("65000:2")]);
        let all_ok = CommunityList::All(vec![c("65000:*"), c("no-export")]);
        assert!(any.matches(&route));
        assert!(!all.matches(&route));
        assert!(all_ok.matches(&route));
        // Empty selectors match nothing, not even in `all` form.
        assert!(!CommunityList::Any(vec![]).matches(&route));
        assert!(!CommunityList::All(vec![]).matches(&route));
        assert!(!any.matches(&[]));
    }

    #[test]
    fn remove_and_add() {
        let mut v = vec![
            Community::new(65000, 1),
            Community::new(65001, 1),
            Community::new(65000, 2),
        ];
        remove_matching(&mut v, &[c("65000:*")]);
        assert_eq!(v, vec![Community::new(65001, 1)]);
        add_missing(&mut v, &[Community::new(65001, 1), Community::NO_EXPORT]);
        assert_eq!(v, vec![Community::new(65001, 1), Community::NO_EXPORT]);
    }
}
