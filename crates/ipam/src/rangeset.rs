//! A set of `u128` values stored as disjoint inclusive ranges.
//!
//! Used for the free blocks of a subnet and the free address space of a pool. An IPv6 /64
//! subnet has 2^58 blocks of /122: listing them is impossible, but "everything except the
//! claimed ones" is a handful of ranges. Every operation is O(log r) in the number of ranges,
//! except [`RangeSet::first_aligned`], which walks ranges and is only used to carve subnets.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    /// start -> end (inclusive). Ranges are disjoint and never adjacent (always merged).
    map: BTreeMap<u128, u128>,
}

impl RangeSet {
    pub(crate) fn full(start: u128, end: u128) -> RangeSet {
        let mut map = BTreeMap::new();
        map.insert(start, end);
        RangeSet { map }
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(crate) fn first(&self) -> Option<u128> {
        self.map.keys().next().copied()
    }

    /// The range containing `x`, if any.
    fn containing(&self, x: u128) -> Option<(u128, u128)> {
        let (&s, &e) = self.map.range(..=x).next_back()?;
        (x <= e).then_some((s, e))
    }

    pub(crate) fn contains(&self, x: u128) -> bool {
        self.containing(x).is_some()
    }

    /// Whether every value in `[a, b]` is in the set.
    pub(crate) fn contains_range(&self, a: u128, b: u128) -> bool {
        self.containing(a).is_some_and(|(_, e)| b <= e)
    }

    /// The smallest value in the set greater than `x`.
    pub(crate) fn next_after(&self, x: u128) -> Option<u128> {
        let y = x.checked_add(1)?;
        if self.contains(y) {
            return Some(y);
        }
        self.map.range(y..).next().map(|(&s, _)| s)
    }

    /// Removes `[a, b]`, which must be entirely in the set; returns false (and changes nothing)
    /// otherwise.
    pub(crate) fn remove_range(&mut self, a: u128, b: u128) -> bool {
        let Some((s, e)) = self.containing(a) else {
            return false;
        };
        if b > e {
            return false;
        }
        self.map.remove(&s);
        if s < a {
            self.map.insert(s, a - 1);
        }
        if b < e {
            self.map.insert(b + 1, e);
        }
        true
    }

    pub(crate) fn remove(&mut self, x: u128) -> bool {
        self.remove_range(x, x)
    }

    /// Adds `[a, b]`, which must be entirely outside the set; returns false (and changes
    /// nothing) otherwise. Merges with touching neighbours so ranges stay minimal.
    pub(crate) fn insert_range(&mut self, a: u128, b: u128) -> bool {
        // The nearest range starting at or before `b` must end before `a`.
        if let Some((_, &e)) = self.map.range(..=b).next_back()
            && e >= a
        {
            return false;
        }
        let (mut start, mut end) = (a, b);
        if a > 0
            && let Some((&s, &e)) = self.map.range(..a).next_back()
            && e == a - 1
        {
            self.map.remove(&s);
            start = s;
        }
        if b < u128::MAX
            && let Some(e) = self.map.remove(&(b + 1))
        {
            end = e;
        }
        self.map.insert(start, end);
        true
    }

    pub(crate) fn insert(&mut self, x: u128) -> bool {
        self.insert_range(x, x)
    }

    /// The lowest `start` such that `[start, start + 2^bits - 1]` is in the set and `start` is
    /// a multiple of `2^bits` relative to `base`.
    pub(crate) fn first_aligned(&self, base: u128, bits: u32) -> Option<u128> {
        let size_m1 = crate::addr::low_ones(bits);
        for (&s, &e) in &self.map {
            // Round `s` up to the alignment grid anchored at `base`.
            let off = s.wrapping_sub(base);
            // Overflow means no later range can fit either.
            let rounded = if off & size_m1 == 0 {
                s
            } else {
                base.checked_add((off | size_m1).checked_add(1)?)?
            };
            if rounded.checked_add(size_m1)? <= e {
                return Some(rounded);
            }
        }
        None
    }

    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u128, u128)> + '_ {
        self.map.iter().map(|(&s, &e)| (s, e))
    }

    pub(crate) fn ranges(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn split_and_merge() {
        let mut r = RangeSet::full(0, 9);
        assert!(r.remove(5));
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![(0, 4), (6, 9)]);
        assert!(!r.remove(5));
        assert!(r.insert(5));
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![(0, 9)]);
        assert!(!r.insert(3));
        assert!(r.remove_range(0, 9));
        assert!(r.is_empty());
    }

    #[test]
    fn extremes() {
        let mut r = RangeSet::full(0, u128::MAX);
        assert!(r.remove(u128::MAX));
        assert!(r.insert(u128::MAX));
        assert_eq!(r.ranges(), 1);
        assert_eq!(r.first_aligned(0, 128), Some(0));
    }

    #[test]
    fn aligned_search_respects_base() {
        let mut r = RangeSet::full(100, 200);
        assert_eq!(r.first_aligned(100, 4), Some(100));
        r.remove(100);
        assert_eq!(r.first_aligned(100, 4), Some(116));
        assert_eq!(r.first_aligned(0, 4), Some(112));
        assert_eq!(r.first_aligned(0, 7), None);
    }

    proptest! {
        #[test]
        fn matches_btreeset(ops in proptest::collection::vec((0u8..3, 0u128..64, 0u128..8), 0..100)) {
            let mut r = RangeSet::full(0, 63);
            let mut model: BTreeSet<u128> = (0..64).collect();
            for (op, a, len) in ops {
                let b = (a + len).min(63);
                match op {
                    0 => {
                        let all = (a..=b).all(|x| model.contains(&x));
                        prop_assert_eq!(r.remove_range(a, b), all);
                        if all { for x in a..=b { model.remove(&x); } }
                    }
                    1 => {
                        let none = (a..=b).all(|x| !model.contains(&x));
                        prop_assert_eq!(r.insert_range(a, b), none);
                        if none { for x in a..=b { model.insert(x); } }
                    }
                    _ => {
                        let bits = (len % 4) as u32;
                        let size = 1u128 << bits;
                        let want = (0..64u128).step_by(size as usize)
                            .find(|s| (*s..*s + size).all(|x| model.contains(&x)));
                        prop_assert_eq!(r.first_aligned(0, bits), want);
                    }
                }
                prop_assert_eq!(r.first(), model.first().copied());
                prop_assert_eq!(r.next_after(a), model.range(a + 1..).next().copied());
                for x in 0..64 { prop_assert_eq!(r.contains(x), model.contains(&x)); }
                // Minimal form: no two ranges touch.
                let v: Vec<_> = r.iter().collect();
                for w in v.windows(2) { prop_assert!(w[0].1 + 1 < w[1].0); }
            }
        }
    }
}
