//! The forwarding benchmark's table: N unique IPv4 prefixes with a realistic spread of lengths,
//! P distinct AS paths, and each prefix's path; deterministic for a given seed.
//!
//! Prefix lengths follow the shape of the public IPv4 table (the DFZ as seen by RIPE RIS and
//! bgp.potaroo.net): about three fifths /24, a fifth /22-/23, the rest /16-/21, and here also a
//! few percent /25-/32 (which the DFZ filters, but data-centre and customer tables carry).
//! Prefixes are drawn at random from 1.0.0.0-191.255.255.255 (without 10/8 and 127/8), so they
//! nest and scatter like a real table; the link addresses of the rig (192.0.2.0/24,
//! 198.51.100.0/24) are never covered.
//!
//! AS paths: P distinct paths after the sender's own AS, 1 to 6 further hops (mean about 3, so
//! 4 with the sender's AS, close to the DFZ's average), transit ASes from a pool of 2,000 and
//! a distinct origin AS per path, half 2-octet and half 4-octet. Prefixes are spread over the
//! paths with a heavy head (path `floor(P * u^2)` for uniform `u`): the busiest paths carry
//! thousands of prefixes and most carry a handful, as origins do in the DFZ.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;

use clos_bgp::iana::Origin;
use clos_bgp::wire::{
    AsPath, DecodeContext, Family, NextHop, PathAttributes, Prefix, UpdatePacker,
};

use crate::Result;

/// Share of the table per prefix length, in parts per 1,000 (/24 takes what is left).
const LENGTHS: [(u8, u32); 15] = [
    (16, 13),
    (17, 8),
    (18, 14),
    (19, 25),
    (20, 40),
    (21, 45),
    (22, 105),
    (23, 100),
    (25, 8),
    (26, 6),
    (27, 5),
    (28, 4),
    (29, 3),
    (30, 2),
    (32, 2),
];

/// Hops after the sender's AS, in parts per 100, for 1 to 6 hops.
const HOPS: [u32; 6] = [10, 30, 30, 18, 8, 4];

/// Transit ASes are drawn from 1..=TRANSIT_POOL.
const TRANSIT_POOL: u32 = 2_000;

pub struct Table {
    pub prefixes: Vec<Prefix>,
    /// AS numbers after the sender's own, origin last; distinct.
    pub paths: Vec<Vec<u32>>,
    /// Index into `paths` of each prefix.
    pub path_of: Vec<u32>,
}

/// splitmix64: small, fast, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An index drawn with the weights `w`.
    fn weighted(&mut self, w: &[u32]) -> usize {
        let mut x = self.below(w.iter().map(|&v| u64::from(v)).sum()) as u32;
        for (i, &v) in w.iter().enumerate() {
            if x < v {
                return i;
            }
            x -= v;
        }
        w.len() - 1
    }
}

/// How many prefixes of each length a table of `n` has.
pub fn length_counts(n: usize) -> BTreeMap<u8, usize> {
    let mut counts: BTreeMap<u8, usize> = LENGTHS
        .iter()
        .map(|&(len, per_mille)| (len, n * per_mille as usize / 1000))
        .collect();
    let rest = n - counts.values().sum::<usize>();
    counts.insert(24, rest);
    counts
}

/// The origin AS of path `i`: even paths 2-octet (from 3,000, past the transit pool and
/// skipping AS_TRANS 23456), odd ones 4-octet (from 200,000). Never a private AS, so never one
/// of the rig's own (65001...).
fn origin_as(i: u32) -> u32 {
    if i.is_multiple_of(2) {
        let asn = 3_000 + i / 2;
        if asn >= 23_456 { asn + 1 } else { asn }
    } else {
        200_000 + i / 2
    }
}

pub fn generate(n: usize, paths: usize, seed: u64) -> Result<Table> {
    if paths == 0 || paths > 100_000 {
        return Err("--paths must be between 1 and 100000".into());
    }
    if n > 5_000_000 {
        return Err("at most 5,000,000 prefixes".into());
    }
    let mut rng = Rng(seed);
    let mut seen: HashSet<(u32, u8)> = HashSet::with_capacity(n);
    let mut prefixes = Vec::with_capacity(n);
    for (len, count) in length_counts(n) {
        let mask = u32::MAX << (32 - u32::from(len));
        let mut made = 0;
        while made < count {
            // 1.0.0.0 up to 191.255.255.255.
            let addr = (0x0100_0000 + rng.below(0xc000_0000 - 0x0100_0000) as u32) & mask;
            let first = addr >> 24;
            if first == 10 || first == 127 || !seen.insert((addr, len)) {
                continue;
            }
            prefixes.push(Prefix::V4(clos_bgp::wire::Prefix4::new(
                Ipv4Addr::from(addr),
                len,
            )?));
            made += 1;
        }
    }
    let mut out_paths = Vec::with_capacity(paths);
    for i in 0..paths as u32 {
        let hops = rng.weighted(&HOPS) + 1;
        let mut path: Vec<u32> = (1..hops)
            .map(|_| 1 + rng.below(u64::from(TRANSIT_POOL)) as u32)
            .collect();
        path.push(origin_as(i));
        out_paths.push(path);
    }
    let path_of = (0..prefixes.len())
        .map(|_| {
            let u = rng.unit();
            ((u * u * paths as f64) as u32).min(paths as u32 - 1)
        })
        .collect();
    Ok(Table {
        prefixes,
        paths: out_paths,
        path_of,
    })
}

impl Table {
    /// Distinct paths that carry at least one prefix.
    pub fn used_paths(&self) -> usize {
        let mut used = vec![false; self.paths.len()];
        for &p in &self.path_of {
            used[p as usize] = true;
        }
        used.iter().filter(|u| **u).count()
    }

    pub fn lengths(&self) -> BTreeMap<u8, usize> {
        let mut m = BTreeMap::new();
        for p in &self.prefixes {
            *m.entry(p.prefix_len()).or_default() += 1;
        }
        m
    }

    /// Mean AS path length as a sender announces it (its own AS included).
    pub fn mean_path_len(&self) -> f64 {
        if self.path_of.is_empty() {
            return 0.0;
        }
        let total: usize = self
            .path_of
            .iter()
            .map(|&p| self.paths[p as usize].len() + 1)
            .sum();
        total as f64 / self.path_of.len() as f64
    }

    /// Sender `s` of `senders` announces the paths `p` with `p % senders == s` and their
    /// prefixes, so the senders' shares are disjoint and their union is the table.
    pub fn share(&self, s: usize, senders: usize) -> Vec<(u32, Vec<Prefix>)> {
        let mut by_path: BTreeMap<u32, Vec<Prefix>> = BTreeMap::new();
        for (prefix, &path) in self.prefixes.iter().zip(&self.path_of) {
            if path as usize % senders == s {
                by_path.entry(path).or_default().push(*prefix);
            }
        }
        by_path
            .into_iter()
            .map(|(path, mut ps)| {
                ps.sort_unstable();
                (path, ps)
            })
            .collect()
    }

    /// Sender `s`'s share as UPDATEs packed by attribute set (as many prefixes per message
    /// as fit), then End-of-RIB: what a speaker that groups by attributes sends.
    pub fn messages(
        &self,
        share: &[(u32, Vec<Prefix>)],
        sender_as: u32,
        next_hop: Ipv4Addr,
        ctx: DecodeContext,
    ) -> Result<Vec<u8>> {
        let mut packer = UpdatePacker::new(ctx);
        for (path, prefixes) in share {
            let attrs = PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::sequence(
                    std::iter::once(sender_as).chain(self.paths[*path as usize].iter().copied()),
                )),
                ..PathAttributes::default()
            };
            packer.announce(&attrs, NextHop::V4(next_hop), prefixes)?;
        }
        packer.end_of_rib(Family::IPV4_UNICAST)?;
        Ok(packer.finish().concat())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_unique_shaped_and_reproducible() {
        let t = generate(100_000, 5_000, 1).unwrap();
        let set: HashSet<_> = t.prefixes.iter().collect();
        assert_eq!(set.len(), 100_000);
        let l = t.lengths();
        assert_eq!(l, length_counts(100_000));
        assert!(l[&24] > 55_000 && l[&24] < 65_000, "{l:?}");
        let distinct: HashSet<_> = t.paths.iter().collect();
        assert_eq!(distinct.len(), 5_000);
        assert!(t.used_paths() > 4_900);
        let mean = t.mean_path_len();
        assert!(mean > 3.0 && mean < 5.0, "{mean}");
        for p in &t.prefixes {
            let Prefix::V4(v4) = p else { panic!() };
            let first = v4.addr().octets()[0];
            assert!(
                (1..192).contains(&first) && first != 10 && first != 127,
                "{p}"
            );
        }
        let again = generate(100_000, 5_000, 1).unwrap();
        assert_eq!(t.prefixes, again.prefixes);
        assert_eq!(t.path_of, again.path_of);
        // Two senders' shares are disjoint and cover the table.
        let a: usize = t.share(0, 2).iter().map(|(_, ps)| ps.len()).sum();
        let b: usize = t.share(1, 2).iter().map(|(_, ps)| ps.len()).sum();
        assert_eq!(a + b, 100_000);
    }
}
