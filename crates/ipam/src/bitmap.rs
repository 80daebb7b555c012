//! Two-level bitmap with a constant-time first-free search.
//!
//! Level 0 holds one bit per address (1 = used). Level 1 holds one bit per level-0 word
//! (1 = that word is full). Blocks hold at most 2^16 addresses, so level 1 is at most 16
//! words: the search reads at most 16 + 1 words whatever the fill level, and a typical /26 or
//! /122 block is a single word on each level.

/// Largest supported bitmap (2^16 bits, a /16 IPv4 block).
pub(crate) const MAX_BITS: u32 = 1 << 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bitmap {
    words: Box<[u64]>,
    full: Box<[u64]>,
    len: u32,
    ones: u32,
}

impl Bitmap {
    /// An all-clear bitmap of `len` bits (1..=MAX_BITS).
    pub(crate) fn new(len: u32) -> Bitmap {
        debug_assert!(len > 0 && len <= MAX_BITS);
        let nwords = len.div_ceil(64) as usize;
        let mut words = vec![0u64; nwords].into_boxed_slice();
        // Padding bits past `len` are permanently set so the search never returns them.
        let tail = len % 64;
        if tail != 0 {
            words[nwords - 1] = !0u64 << tail;
        }
        let full = vec![0u64; nwords.div_ceil(64)].into_boxed_slice();
        let mut bm = Bitmap {
            words,
            full,
            len,
            ones: 0,
        };
        for w in 0..nwords {
            bm.refresh_summary(w);
        }
        // Level 1 padding: words that do not exist count as full.
        let wtail = nwords % 64;
        if wtail != 0 {
            let last = bm.full.len() - 1;
            bm.full[last] |= !0u64 << wtail;
        }
        bm
    }

    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    pub(crate) fn count_ones(&self) -> u32 {
        self.ones
    }

    pub(crate) fn is_full(&self) -> bool {
        self.ones == self.len
    }

    pub(crate) fn get(&self, i: u32) -> bool {
        self.words[(i / 64) as usize] & (1u64 << (i % 64)) != 0
    }

    /// Sets bit `i`; returns false if it was already set.
    pub(crate) fn set(&mut self, i: u32) -> bool {
        let w = (i / 64) as usize;
        let m = 1u64 << (i % 64);
        if self.words[w] & m != 0 {
            return false;
        }
        self.words[w] |= m;
        self.ones += 1;
        self.refresh_summary(w);
        true
    }

    /// Clears bit `i`; returns false if it was already clear.
    pub(crate) fn clear(&mut self, i: u32) -> bool {
        let w = (i / 64) as usize;
        let m = 1u64 << (i % 64);
        if self.words[w] & m == 0 {
            return false;
        }
        self.words[w] &= !m;
        self.ones -= 1;
        self.refresh_summary(w);
        true
    }

    /// Lowest clear bit, if any.
    pub(crate) fn first_clear(&self) -> Option<u32> {
        for (si, &s) in self.full.iter().enumerate() {
            if s != !0u64 {
                let w = si * 64 + s.trailing_ones() as usize;
                let bit = self.words[w].trailing_ones();
                return Some(w as u32 * 64 + bit);
            }
        }
        None
    }

    /// Approximate heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        (self.words.len() + self.full.len()) * 8
    }

    fn refresh_summary(&mut self, w: usize) {
        let m = 1u64 << (w % 64);
        if self.words[w] == !0u64 {
            self.full[w / 64] |= m;
        } else {
            self.full[w / 64] &= !m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn fills_in_order_and_reports_full() {
        let mut b = Bitmap::new(70);
        for i in 0..70 {
            assert_eq!(b.first_clear(), Some(i));
            assert!(b.set(i));
        }
        assert!(b.is_full());
        assert_eq!(b.first_clear(), None);
        assert!(b.clear(65));
        assert_eq!(b.first_clear(), Some(65));
        assert!(!b.clear(65));
    }

    #[test]
    fn largest_bitmap_finds_last_bit() {
        let mut b = Bitmap::new(MAX_BITS);
        for i in 0..MAX_BITS - 1 {
            b.set(i);
        }
        assert_eq!(b.first_clear(), Some(MAX_BITS - 1));
        b.set(MAX_BITS - 1);
        assert_eq!(b.first_clear(), None);
    }

    proptest! {
        #[test]
        fn matches_btreeset(len in 1u32..300, ops in proptest::collection::vec((any::<bool>(), 0u32..300), 0..200)) {
            let mut b = Bitmap::new(len);
            let mut model = BTreeSet::new();
            for (set, i) in ops {
                let i = i % len;
                if set {
                    prop_assert_eq!(b.set(i), model.insert(i));
                } else {
                    prop_assert_eq!(b.clear(i), model.remove(&i));
                }
                let first = (0..len).find(|x| !model.contains(x));
                prop_assert_eq!(b.first_clear(), first);
                prop_assert_eq!(b.count_ones() as usize, model.len());
            }
        }
    }
}
