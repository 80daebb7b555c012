//! AS-path matching without regular expressions.
//!
//! An AS-path list is an ordered list of permit/deny entries; each entry holds one or more
//! conditions that must all hold: `contains` (the AS appears anywhere, AS_SETs included),
//! `origin_as` (the last AS of a final AS_SEQUENCE), `neighbour_as` (the first AS of a leading
//! AS_SEQUENCE), `length` (`eq`, `ge`, `le` on the best-path length: an AS_SET counts 1,
//! confederation segments 0) and `pattern`.
//!
//! The pattern language works on AS numbers, not on text, so `1` never matches inside `65001`:
//! - tokens are separated by blanks;
//! - an atom is an AS number (`65001`), an inclusive range (`64512-65534`) or `.` (any AS);
//! - an atom may be followed by `*` (zero or more), `+` (one or more) or `?` (zero or one);
//! - `^` at the start anchors the pattern to the neighbour end of the path, `$` at the end to
//!   the origin end; without them the pattern may match anywhere in the path.
//!
//! Examples: `^65001 .* 65010$` (from neighbour 65001, originated by 65010), `^$` (the empty
//! path: routes from our own AS), `^65001+$` (65001 only, maybe prepended), `64512-65534$`
//! (originated by a private AS), `.*` (any path).
//!
//! The path is seen as a sequence of elements: each AS of an AS_SEQUENCE is one element, an
//! AS_SET is one element that an atom matches if it matches a member, and confederation
//! segments are skipped. A route without AS_PATH is matched as the empty path. Matching
//! simulates the pattern as an NFA in one `u64` of states: O(pattern length x path length),
//! no backtracking, no allocation; a pattern has at most 63 atoms (`X+` counts 2).
//!
//! Contract: an empty list matches no path; an entry must have at least one condition.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::iana::SegmentType;
use crate::wire::attr::AsPath;

use super::ListAction;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    Asn(u32),
    Range(u32, u32),
    Any,
}

impl Atom {
    fn matches_as(self, asn: u32) -> bool {
        match self {
            Atom::Asn(a) => a == asn,
            Atom::Range(lo, hi) => (lo..=hi).contains(&asn),
            Atom::Any => true,
        }
    }

    fn matches(self, e: Elem<'_>) -> bool {
        match e {
            Elem::As(a) => self.matches_as(a),
            Elem::Set(s) => self == Atom::Any || s.iter().any(|&a| self.matches_as(a)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rep {
    One,
    /// Zero or more.
    Star,
    /// Zero or one.
    Opt,
}

#[derive(Debug, Clone, Copy)]
enum Elem<'a> {
    As(u32),
    Set(&'a [u32]),
}

fn elements(path: &AsPath) -> impl Iterator<Item = Elem<'_>> {
    path.segments.iter().flat_map(|s| {
        let (seq, set): (&[u32], Option<Elem<'_>>) = match s.kind {
            SegmentType::AsSequence => (&s.asns, None),
            SegmentType::AsSet if !s.asns.is_empty() => (&[], Some(Elem::Set(&s.asns))),
            _ => (&[], None),
        };
        seq.iter().map(|&a| Elem::As(a)).chain(set)
    })
}

/// A compiled AS-path pattern; see the module docs for the language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AsPathPattern {
    text: String,
    anchored_start: bool,
    anchored_end: bool,
    atoms: Vec<(Atom, Rep)>,
}

fn pattern_error(input: &str, problem: impl fmt::Display) -> Error {
    Error::InvalidPolicy {
        field: format!("{input:?}"),
        problem: format!(
            "{problem}; an AS-path pattern is blank-separated AS numbers, ranges N-M or `.`, \
             each optionally followed by `*`, `+` or `?`, between an optional `^` and `$` \
             (e.g. \"^65001 .* 65010$\")"
        ),
    }
}

fn parse_asn(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl FromStr for AsPathPattern {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let mut body = input.trim();
        if body.is_empty() {
            return Err(pattern_error(
                input,
                "the pattern is empty (write `.*` for any path or `^$` for the empty path)",
            ));
        }
        let anchored_start = body.starts_with('^');
        if anchored_start {
            body = &body[1..];
        }
        let anchored_end = body.ends_with('$');
        if anchored_end {
            body = &body[..body.len() - 1];
        }
        let mut atoms = Vec::new();
        for tok in body.split_whitespace() {
            let (core, rep) = match tok.as_bytes().last() {
                Some(b'*') => (&tok[..tok.len() - 1], Some(Rep::Star)),
                Some(b'+') => (&tok[..tok.len() - 1], None),
                Some(b'?') => (&tok[..tok.len() - 1], Some(Rep::Opt)),
                _ => (tok, Some(Rep::One)),
            };
            let atom = if core == "." {
                Atom::Any
            } else if let Some((lo, hi)) = core.split_once('-') {
                match (parse_asn(lo), parse_asn(hi)) {
                    (Some(lo), Some(hi)) if lo <= hi => Atom::Range(lo, hi),
                    (Some(_), Some(_)) => {
                        return Err(pattern_error(input, format!("range {core} is empty")));
                    }
                    _ => return Err(pattern_error(input, format!("bad range {core:?}"))),
                }
            } else if let Some(a) = parse_asn(core) {
                Atom::Asn(a)
            } else {
                return Err(pattern_error(input, format!("unexpected token {tok:?}")));
            };
            match rep {
                Some(r) => atoms.push((atom, r)),
                // X+ is X X*.
                None => atoms.extend([(atom, Rep::One), (atom, Rep::Star)]),
            }
        }
        if atoms.len() > Self::MAX_ATOMS {
            return Err(pattern_error(
                input,
                format!("the pattern is too long: at most {} atoms", Self::MAX_ATOMS),
            ));
        }
        Ok(Self {
            text: input.trim().to_owned(),
            anchored_start,
            anchored_end,
            atoms,
        })
    }
}

impl TryFrom<String> for AsPathPattern {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl From<AsPathPattern> for String {
    fn from(p: AsPathPattern) -> String {
        p.text
    }
}

impl fmt::Display for AsPathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl AsPathPattern {
    /// Most atoms in a pattern (`X+` counts 2): the NFA states fit in one `u64`, so matching
    /// never allocates.
    pub const MAX_ATOMS: usize = 63;

    /// Adds the states reachable by skipping `*` and `?` atoms; skips only go forward, so one
    /// pass in order suffices.
    fn close(&self, mut states: u64) -> u64 {
        for (i, (_, rep)) in self.atoms.iter().enumerate() {
            if states & (1 << i) != 0 && *rep != Rep::One {
                states |= 1 << (i + 1);
            }
        }
        states
    }

    /// Whether the pattern matches `path`.
    pub fn matches(&self, path: &AsPath) -> bool {
        // Bit i: atoms before i have matched; bit n: the whole pattern has.
        let done = 1u64 << self.atoms.len();
        let mut cur = self.close(1);
        if !self.anchored_end && cur & done != 0 {
            return true;
        }
        for e in elements(path) {
            let mut next = 0u64;
            for (i, &(atom, rep)) in self.atoms.iter().enumerate() {
                if cur & (1 << i) != 0 && atom.matches(e) {
                    next |= if rep == Rep::Star {
                        1 << i
                    } else {
                        1 << (i + 1)
                    };
                }
            }
            if !self.anchored_start {
                next |= 1;
            }
            cur = self.close(next);
            if !self.anchored_end && cur & done != 0 {
                return true;
            }
        }
        cur & done != 0
    }
}

/// Bounds on the AS-path length; all given bounds must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LengthRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eq: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ge: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub le: Option<u32>,
}

impl LengthRange {
    pub fn contains(&self, len: usize) -> bool {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        self.eq.is_none_or(|v| len == v)
            && self.ge.is_none_or(|v| len >= v)
            && self.le.is_none_or(|v| len <= v)
    }
}

/// One entry of an AS-path list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsPathEntry {
    pub action: ListAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_as: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbour_as: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<LengthRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<AsPathPattern>,
}

impl AsPathEntry {
    /// An entry with only an action; add conditions with struct update syntax.
    pub fn new(action: ListAction) -> Self {
        Self {
            action,
            contains: None,
            origin_as: None,
            neighbour_as: None,
            length: None,
            pattern: None,
        }
    }

    pub(crate) fn has_condition(&self) -> bool {
        self.contains.is_some()
            || self.origin_as.is_some()
            || self.neighbour_as.is_some()
            || self.length.is_some()
            || self.pattern.is_some()
    }

    /// Whether every condition holds for `path` (false when there is none).
    pub fn matches(&self, path: &AsPath) -> bool {
        self.has_condition()
            && self.contains.is_none_or(|a| path.contains(a))
            && self.origin_as.is_none_or(|a| path.origin_as() == Some(a))
            && self.neighbour_as.is_none_or(|a| path.first_as() == Some(a))
            && self.length.is_none_or(|r| r.contains(path.path_len()))
            && self.pattern.as_ref().is_none_or(|p| p.matches(path))
    }
}

/// An AS-path list: the first entry whose conditions hold decides; no match means deny.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AsPathList {
    entries: Vec<AsPathEntry>,
}

impl AsPathList {
    pub fn new(entries: Vec<AsPathEntry>) -> Self {
        Self { entries }
    }

    /// The action of the first matching entry, if any.
    pub fn check(&self, path: Option<&AsPath>) -> Option<ListAction> {
        let empty = AsPath::empty();
        let path = path.unwrap_or(&empty);
        self.entries
            .iter()
            .find(|e| e.matches(path))
            .map(|e| e.action)
    }

    /// Whether the list permits `path`.
    pub fn matches(&self, path: Option<&AsPath>) -> bool {
        self.check(path) == Some(ListAction::Permit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::attr::AsSegment;

    fn pat(s: &str) -> AsPathPattern {
        s.parse().unwrap()
    }

    fn seq(asns: &[u32]) -> AsPath {
        AsPath::sequence(asns.iter().copied())
    }

    #[test]
    fn patterns_table() {
        let with_set = AsPath {
            segments: vec![AsSegment::sequence([65001]), AsSegment::set([65010, 65011])],
        };
        let with_confed = AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentType::AsConfedSequence,
                    asns: vec![64600],
                },
                AsSegment::sequence([65001, 65010]),
            ],
        };
        #[rustfmt::skip]
        let cases: &[(&str, &AsPath, bool)] = &[
            ("^65001 .* 65010$", &seq(&[65001, 65010]), true),
            ("^65001 .* 65010$", &seq(&[65001, 1, 2, 65010]), true),
            ("^65001 .* 65010$", &seq(&[65002, 65010]), false),
            ("^65001 .* 65010$", &seq(&[65001, 65010, 3]), false),
            ("^65001 .+ 65010$", &seq(&[65001, 65010]), false),
            ("^65001 .+ 65010$", &seq(&[65001, 7, 65010]), true),
            ("^$", &AsPath::empty(), true),
            ("^$", &seq(&[1]), false),
            (".*", &AsPath::empty(), true),
            (".*", &seq(&[1, 2]), true),
            ("^65001+$", &seq(&[65001, 65001, 65001]), true),
            ("^65001+$", &seq(&[65001, 65002]), false),
            ("^65001*$", &AsPath::empty(), true),
            ("^65001 65002? 65003$", &seq(&[65001, 65003]), true),
            ("^65001 65002? 65003$", &seq(&[65001, 65002, 65003]), true),
            ("^65001 65002? 65003$", &seq(&[65001, 65002, 65002, 65003]), false),
            // Unanchored: anywhere in the path, on whole AS numbers only.
            ("65002", &seq(&[65001, 65002, 65003]), true),
            ("1", &seq(&[65001]), false),
            ("65002 65003", &seq(&[65001, 65002, 65003]), true),
            ("65001 65003", &seq(&[65001, 65002, 65003]), false),
            ("^65002", &seq(&[65001, 65002]), false),
            ("65001$", &seq(&[65001, 65002]), false),
            ("64512-65534$", &seq(&[65001, 64512]), true),
            ("64512-65534$", &seq(&[65001, 65535]), false),
            ("^. .$", &seq(&[5, 6]), true),
            ("^. .$", &seq(&[5]), false),
            // An AS_SET is one element, matched through its members.
            ("^65001 65011$", &with_set, true),
            ("^65001 .$", &with_set, true),
            ("^65001 65012$", &with_set, false),
            ("^65001 65010 65011$", &with_set, false),
            // Confederation segments are invisible.
            ("^65001 65010$", &with_confed, true),
        ];
        for (p, path, want) in cases {
            assert_eq!(pat(p).matches(path), *want, "{p} on {path:?}");
        }
    }

    #[test]
    fn bad_patterns() {
        for bad in [
            "",
            "  ",
            "abc",
            "65001 x",
            "2-1",
            "1-",
            "^^1",
            "1$$",
            "4294967296",
            "+",
        ] {
            let e = bad.parse::<AsPathPattern>().unwrap_err();
            assert!(e.to_string().contains("AS-path pattern"), "{bad}: {e}");
        }
        let longest = "1 ".repeat(AsPathPattern::MAX_ATOMS);
        assert!(pat(&longest).matches(&seq(&[1; AsPathPattern::MAX_ATOMS])));
        assert!(format!("{longest} 1").parse::<AsPathPattern>().is_err());
        assert!(
            "1+ ".repeat(32).parse::<AsPathPattern>().is_err(),
            "X+ counts 2"
        );
    }

    /// Backtracking reference: does `atoms` match exactly `path[..]`?
    fn reference(atoms: &[(Atom, Rep)], path: &[u32]) -> bool {
        let Some((&(atom, rep), rest)) = atoms.split_first() else {
            return path.is_empty();
        };
        let first = path.first().is_some_and(|&a| atom.matches_as(a));
        match rep {
            Rep::One => first && reference(rest, &path[1..]),
            Rep::Opt => reference(rest, path) || (first && reference(rest, &path[1..])),
            Rep::Star => reference(rest, path) || (first && reference(atoms, &path[1..])),
        }
    }

    proptest::proptest! {
        #[test]
        fn nfa_agrees_with_backtracking(
            tokens in proptest::collection::vec((0u8..4, 0u8..4), 0..6),
            start in proptest::bool::ANY, end in proptest::bool::ANY,
            path in proptest::collection::vec(1u32..4, 0..8),
        ) {
            let body: Vec<String> = tokens
                .iter()
                .map(|&(a, r)| {
                    let a = match a { 0 => ".".to_owned(), 1 => "1-2".to_owned(), n => n.to_string() };
                    a + ["", "*", "+", "?"][usize::from(r)]
                })
                .collect();
            let text = format!("{}{}{}", if start { "^" } else { "" }, body.join(" "),
                if end { "$" } else { "" });
            let Ok(p) = text.parse::<AsPathPattern>() else {
                // Only the empty pattern is refused.
                proptest::prop_assert!(text.trim().is_empty());
                return Ok(());
            };
            let starts: Vec<usize> = if start { vec![0] } else { (0..=path.len()).collect() };
            let want = starts.iter().any(|&s| {
                let ends: Vec<usize> = if end { vec![path.len()] } else { (s..=path.len()).collect() };
                ends.iter().any(|&e| reference(&p.atoms, &path[s..e]))
            });
            proptest::prop_assert_eq!(p.matches(&seq(&path)), want, "{} on {:?}", text, path);
        }
    }

    #[test]
    fn matchers_table() {
        let path = seq(&[65001, 65002, 65010]);
        let set_last = AsPath {
            segments: vec![AsSegment::sequence([65001]), AsSegment::set([65010])],
        };
        let e = |f: fn(&mut AsPathEntry)| {
            let mut e = AsPathEntry::new(ListAction::Permit);
            f(&mut e);
            e
        };
        #[rustfmt::skip]
        let cases: &[(AsPathEntry, &AsPath, bool)] = &[
            (e(|e| e.contains = Some(65002)), &path, true),
            (e(|e| e.contains = Some(65003)), &path, false),
            (e(|e| e.contains = Some(65010)), &set_last, true),
            (e(|e| e.origin_as = Some(65010)), &path, true),
            (e(|e| e.origin_as = Some(65001)), &path, false),
            // A path ending in an AS_SET has no origin AS.
            (e(|e| e.origin_as = Some(65010)), &set_last, false),
            (e(|e| e.neighbour_as = Some(65001)), &path, true),
            (e(|e| e.neighbour_as = Some(65002)), &path, false),
            (e(|e| e.neighbour_as = Some(65001)), &AsPath::empty(), false),
            (e(|e| e.length = Some(LengthRange { eq: Some(3), ..Default::default() })), &path, true),
            (e(|e| e.length = Some(LengthRange { le: Some(2), ..Default::default() })), &path, false),
            (e(|e| e.length = Some(LengthRange { ge: Some(1), le: Some(3), eq: None })), &path, true),
            (e(|e| e.length = Some(LengthRange { eq: Some(2), ..Default::default() })), &set_last, true),
            (e(|e| e.length = Some(LengthRange { eq: Some(0), ..Default::default() })), &AsPath::empty(), true),
            // Conditions are ANDed.
            (e(|e| { e.neighbour_as = Some(65001); e.origin_as = Some(65010); }), &path, true),
            (e(|e| { e.neighbour_as = Some(65001); e.origin_as = Some(65011); }), &path, false),
            // No condition: matches nothing.
            (AsPathEntry::new(ListAction::Permit), &path, false),
        ];
        for (entry, p, want) in cases {
            assert_eq!(entry.matches(p), *want, "{entry:?} on {p:?}");
        }
    }

    #[test]
    fn list_first_match_and_implicit_deny() {
        let mut deny = AsPathEntry::new(ListAction::Deny);
        deny.contains = Some(666);
        let mut permit = AsPathEntry::new(ListAction::Permit);
        permit.pattern = Some(pat(".*"));
        let list = AsPathList::new(vec![deny, permit]);
        assert!(list.matches(Some(&seq(&[1, 2]))));
        assert!(!list.matches(Some(&seq(&[1, 666]))));
        assert!(list.matches(None), "a missing AS_PATH is the empty path");
        assert!(!AsPathList::default().matches(Some(&seq(&[1]))));
        assert!(!AsPathList::default().matches(None));
        let only_deny = AsPathList::new(vec![AsPathEntry {
            contains: Some(666),
            ..AsPathEntry::new(ListAction::Deny)
        }]);
        assert_eq!(only_deny.check(Some(&seq(&[1]))), None);
        assert!(!only_deny.matches(Some(&seq(&[1]))));
    }
}
