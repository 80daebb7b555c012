//! Prefix lists with FRR `ip prefix-list` semantics, compiled for lookups that do not scan.
//!
//! An entry `action prefix [ge G] [le L]` covers the routes inside `prefix` whose length is:
//! - exactly the length of `prefix` when neither `ge` nor `le` is given;
//! - `G..=max` with only `ge` (max is 32 or 128);
//! - `len..=L` with only `le`;
//! - `G..=L` with both.
//!
//! `validate()` requires `len <= ge <= le <= max`. FRR's CLI is stricter (`len < ge`), but
//! `ge len` means the same as no `ge` with `le`, so accepting it is harmless.
//!
//! Entries are tried in list order (FRR's sequence numbers); the first entry that covers the
//! route decides, and a route no entry covers is denied. Unlike FRR, which permits every route
//! through an empty list, an empty list here permits nothing: an empty selector matches
//! nothing.
//!
//! Compiled form: for each family, entries are grouped by prefix length, and each group is a
//! sorted vector of prefixes. A lookup probes only the lengths present in the list, with a
//! binary search each: O(k log n) for k distinct lengths, whatever the order of the entries.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::wire::prefix::Prefix;

use super::ListAction;

/// One entry of a prefix list as written in config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixListEntry {
    pub action: ListAction,
    /// With host bits clear (`validate()` checks).
    pub prefix: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ge: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub le: Option<u8>,
}

impl PrefixListEntry {
    /// An exact-match entry.
    pub fn new(action: ListAction, prefix: IpNet) -> Self {
        Self {
            action,
            prefix,
            ge: None,
            le: None,
        }
    }

    /// The inclusive range of route lengths the entry covers (FRR semantics, see module docs).
    pub fn length_range(&self) -> (u8, u8) {
        let len = self.prefix.prefix_len();
        match (self.ge, self.le) {
            (None, None) => (len, len),
            (Some(ge), None) => (ge, self.prefix.max_prefix_len()),
            (None, Some(le)) => (len, le),
            (Some(ge), Some(le)) => (ge, le),
        }
    }

    /// Whether the entry covers `p`, by a direct comparison (the reference for the index).
    pub fn covers(&self, p: &Prefix) -> bool {
        let (min, max) = self.length_range();
        let l = p.prefix_len();
        let net = self.prefix.trunc();
        (min..=max).contains(&l)
            && net.prefix_len() <= l
            && IpNet::new(p.addr(), net.prefix_len()).is_ok_and(|n| n.trunc() == net)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    seq: usize,
    min: u8,
    max: u8,
    action: ListAction,
}

/// All entries of one prefix length: sorted keys, with the rules of each key in list order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bucket {
    len: u8,
    keys: Vec<u128>,
    rules: Vec<Vec<Rule>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FamilyIndex {
    /// Ascending by length.
    buckets: Vec<Bucket>,
}

/// The top `len` bits of an address `width` bits wide.
fn key(bits: u128, width: u8, len: u8) -> u128 {
    bits.checked_shr(u32::from(width - len.min(width)))
        .unwrap_or(0)
}

fn bits_of(p: &Prefix) -> (u128, u8) {
    match p {
        Prefix::V4(p) => (u128::from(u32::from(p.addr())), 32),
        Prefix::V6(p) => (u128::from(p.addr()), 128),
    }
}

impl FamilyIndex {
    fn insert(&mut self, bits: u128, width: u8, len: u8, rule: Rule) {
        let i = match self.buckets.binary_search_by_key(&len, |b| b.len) {
            Ok(i) => i,
            Err(i) => {
                self.buckets.insert(
                    i,
                    Bucket {
                        len,
                        keys: Vec::new(),
                        rules: Vec::new(),
                    },
                );
                i
            }
        };
        let Some(b) = self.buckets.get_mut(i) else {
            return;
        };
        let k = key(bits, width, len);
        match b.keys.binary_search(&k) {
            Ok(j) => {
                if let Some(r) = b.rules.get_mut(j) {
                    r.push(rule);
                }
            }
            Err(j) => {
                b.keys.insert(j, k);
                b.rules.insert(j, vec![rule]);
            }
        }
    }

    fn lookup(&self, bits: u128, width: u8, len: u8) -> Option<Rule> {
        let mut best: Option<Rule> = None;
        for b in self.buckets.iter().take_while(|b| b.len <= len) {
            let Ok(j) = b.keys.binary_search(&key(bits, width, b.len)) else {
                continue;
            };
            let found = b
                .rules
                .get(j)
                .and_then(|rules| rules.iter().find(|r| (r.min..=r.max).contains(&len)));
            if let Some(r) = found
                && best.is_none_or(|x| r.seq < x.seq)
            {
                best = Some(*r);
            }
        }
        best
    }
}

/// A compiled prefix list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixList {
    v4: FamilyIndex,
    v6: FamilyIndex,
    len: usize,
}

impl PrefixList {
    /// Compiles entries (assumed validated; host bits are cleared regardless).
    pub fn new(entries: &[PrefixListEntry]) -> Self {
        let mut list = Self {
            len: entries.len(),
            ..Self::default()
        };
        for (seq, e) in entries.iter().enumerate() {
            let (min, max) = e.length_range();
            let rule = Rule {
                seq,
                min,
                max,
                action: e.action,
            };
            let net = e.prefix.trunc();
            let len = net.prefix_len();
            match net {
                IpNet::V4(n) => list
                    .v4
                    .insert(u128::from(u32::from(n.addr())), 32, len, rule),
                IpNet::V6(n) => list.v6.insert(u128::from(n.addr()), 128, len, rule),
            }
        }
        list
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The action of the first entry covering `p`, or `None` (implicit deny).
    pub fn check(&self, p: &Prefix) -> Option<ListAction> {
        let (bits, width) = bits_of(p);
        let index = if width == 32 { &self.v4 } else { &self.v6 };
        index.lookup(bits, width, p.prefix_len()).map(|r| r.action)
    }

    /// Whether the list permits `p`.
    pub fn permits(&self, p: &Prefix) -> bool {
        self.check(p) == Some(ListAction::Permit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(action: ListAction, s: &str, ge: Option<u8>, le: Option<u8>) -> PrefixListEntry {
        PrefixListEntry {
            action,
            prefix: s.parse().unwrap(),
            ge,
            le,
        }
    }

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    /// One entry at a time, against FRR's documented semantics.
    /// Entry prefix, ge, le, route, whether the entry covers the route.
    type Case = (&'static str, Option<u8>, Option<u8>, &'static str, bool);

    #[test]
    fn ge_le_semantics_table() {
        use ListAction::Permit;
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // No ge/le: exact length only.
            ("10.0.0.0/8", None, None, "10.0.0.0/8", true),
            ("10.0.0.0/8", None, None, "10.1.0.0/16", false),
            ("10.0.0.0/8", None, None, "10.0.0.0/7", false),
            ("10.0.0.0/8", None, None, "11.0.0.0/8", false),
            // le only: len..=le.
            ("10.0.0.0/8", None, Some(24), "10.0.0.0/8", true),
            ("10.0.0.0/8", None, Some(24), "10.1.2.0/24", true),
            ("10.0.0.0/8", None, Some(24), "10.1.2.128/25", false),
            ("10.0.0.0/8", None, Some(24), "11.1.2.0/24", false),
            // ge only: ge..=32.
            ("10.0.0.0/8", Some(24), None, "10.1.2.0/24", true),
            ("10.0.0.0/8", Some(24), None, "10.1.2.3/32", true),
            ("10.0.0.0/8", Some(24), None, "10.1.0.0/16", false),
            ("10.0.0.0/8", Some(24), None, "10.0.0.0/8", false),
            // ge and le: ge..=le.
            ("10.0.0.0/8", Some(16), Some(24), "10.1.0.0/16", true),
            ("10.0.0.0/8", Some(16), Some(24), "10.1.1.0/24", true),
            ("10.0.0.0/8", Some(16), Some(24), "10.1.1.0/25", false),
            ("10.0.0.0/8", Some(16), Some(24), "10.0.0.0/15", false),
            // ge equal to len behaves like le alone.
            ("10.0.0.0/8", Some(8), Some(16), "10.0.0.0/8", true),
            // The classic "any": 0.0.0.0/0 le 32.
            ("0.0.0.0/0", None, Some(32), "192.0.2.1/32", true),
            ("0.0.0.0/0", None, Some(32), "0.0.0.0/0", true),
            ("0.0.0.0/0", None, None, "0.0.0.0/0", true),
            ("0.0.0.0/0", None, None, "10.0.0.0/8", false),
            // Host routes inside a tenant block.
            ("10.1.0.0/24", Some(32), Some(32), "10.1.0.7/32", true),
            ("10.1.0.0/24", Some(32), Some(32), "10.1.1.7/32", false),
            // IPv6, and families never mix.
            ("2001:db8::/32", None, Some(64), "2001:db8:1::/48", true),
            ("2001:db8::/32", Some(127), None, "2001:db8::1/128", true),
            ("2001:db8::/32", None, Some(64), "2001:db9::/48", false),
            ("::/0", None, Some(128), "10.0.0.0/8", false),
            ("0.0.0.0/0", None, Some(32), "::/0", false),
        ];
        for &(net, ge, le, route, want) in cases {
            let e = entry(Permit, net, ge, le);
            let list = PrefixList::new(&[e]);
            let r = p(route);
            assert_eq!(
                e.covers(&r),
                want,
                "reference: {net} ge {ge:?} le {le:?} / {route}"
            );
            assert_eq!(
                list.permits(&r),
                want,
                "index: {net} ge {ge:?} le {le:?} / {route}"
            );
        }
    }

    #[test]
    fn first_match_by_order_and_implicit_deny() {
        use ListAction::{Deny, Permit};
        let list = PrefixList::new(&[
            entry(Deny, "10.0.0.0/16", None, Some(32)),
            entry(Permit, "10.0.0.0/8", None, Some(24)),
            // Never reached for 10.0.0.0/16 and longer: the first entry wins.
            entry(Permit, "10.0.0.0/16", None, Some(32)),
        ]);
        assert_eq!(list.check(&p("10.0.1.0/24")), Some(Deny));
        assert_eq!(list.check(&p("10.1.1.0/24")), Some(Permit));
        assert_eq!(list.check(&p("10.1.1.0/25")), None);
        assert_eq!(list.check(&p("192.0.2.0/24")), None);
        assert!(!list.permits(&p("192.0.2.0/24")));
        // A later, shorter entry does not beat an earlier, longer one, nor the reverse.
        let list = PrefixList::new(&[
            entry(Permit, "10.0.0.0/8", None, Some(32)),
            entry(Deny, "10.1.0.0/16", None, Some(32)),
        ]);
        assert_eq!(list.check(&p("10.1.2.0/24")), Some(Permit));
    }

    #[test]
    fn empty_list_permits_nothing() {
        let list = PrefixList::new(&[]);
        assert!(list.is_empty());
        for r in ["0.0.0.0/0", "10.0.0.0/8", "::/0", "2001:db8::1/128"] {
            assert_eq!(list.check(&p(r)), None);
        }
    }

    #[test]
    fn big_list() {
        // 10.{i/256}.{i%256}.0/24 for 20,000 tenants, each permitting its /24 and host routes.
        let entries: Vec<_> = (0u32..20_000)
            .map(|i| {
                let net = format!("10.{}.{}.0/24", i / 256, i % 256);
                entry(ListAction::Permit, &net, None, Some(32))
            })
            .collect();
        let list = PrefixList::new(&entries);
        assert_eq!(list.len(), 20_000);
        assert!(list.permits(&p("10.3.7.9/32")));
        assert!(list.permits(&p("10.78.31.0/24")));
        assert!(!list.permits(&p("10.78.32.0/24")), "beyond the last tenant");
        assert!(!list.permits(&p("10.3.0.0/16")));
    }

    fn arb_entry() -> impl Strategy<Value = PrefixListEntry> {
        // A small address space so that entries and routes overlap often.
        (any::<bool>(), 0u32..16, 0u8..=8, any::<u8>(), any::<u8>()).prop_map(
            |(permit, top, len, a, b)| {
                let addr = std::net::Ipv4Addr::from((top << 28) | (u32::from(a) << 20));
                let prefix = IpNet::new(addr.into(), len).unwrap().trunc();
                let ge = (a % 3 == 0).then_some(len + a % 8);
                let le = (b % 3 == 0).then(|| ge.unwrap_or(len) + b % 8);
                let action = if permit {
                    ListAction::Permit
                } else {
                    ListAction::Deny
                };
                PrefixListEntry {
                    action,
                    prefix,
                    ge,
                    le,
                }
            },
        )
    }

    proptest! {
        /// The index decides exactly as a linear first-match scan over the entries.
        #[test]
        fn index_agrees_with_linear_scan(
            entries in proptest::collection::vec(arb_entry(), 0..40),
            top in 0u32..16, rest in any::<u32>(), len in 0u8..=20,
        ) {
            let addr = std::net::Ipv4Addr::from((top << 28) | (rest >> 4));
            let route = Prefix::new(addr.into(), len).unwrap();
            let linear = entries.iter().find(|e| e.covers(&route)).map(|e| e.action);
            prop_assert_eq!(PrefixList::new(&entries).check(&route), linear);
        }
    }
}
