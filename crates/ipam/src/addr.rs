//! Address arithmetic on `u128`.
//!
//! Both families are handled as integers so that blocks, ranges and bitmaps share one code path.
//! An address is only meaningful together with its [`Family`]; [`Key`] orders IPv4 before IPv6
//! so the two families never collide in one ordered map.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) fn of_net(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }

    /// Address width in bits.
    pub(crate) fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// An address as a totally ordered integer key (IPv4 sorts before IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    pub(crate) family: Family,
    pub(crate) value: u128,
}

impl Key {
    pub(crate) fn of(ip: IpAddr) -> Key {
        match ip {
            IpAddr::V4(a) => Key {
                family: Family::V4,
                value: u128::from(u32::from(a)),
            },
            IpAddr::V6(a) => Key {
                family: Family::V6,
                value: u128::from(a),
            },
        }
    }
}

/// Converts an integer back to an address. IPv4 values are truncated to 32 bits, which callers
/// never exceed because every value comes from a prefix of that family.
pub(crate) fn to_ip(family: Family, value: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(value as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// `n` low bits set; `n` may be 0..=128.
pub(crate) fn low_ones(n: u32) -> u128 {
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

/// Host bits of a prefix.
pub(crate) fn host_bits(net: &IpNet) -> u32 {
    u32::from(net.max_prefix_len() - net.prefix_len())
}

/// First and last address of a prefix as integers.
pub(crate) fn net_range(net: &IpNet) -> (u128, u128) {
    let start = Key::of(net.network()).value;
    (start, start + low_ones(host_bits(net)))
}

/// Builds a prefix from its first address and length. The caller guarantees alignment.
pub(crate) fn make_net(family: Family, start: u128, prefix_len: u8) -> IpNet {
    match to_ip(family, start) {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::new_assert(a, prefix_len)),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::new_assert(a, prefix_len)),
    }
}

/// The single-address prefix (/32 or /128) of an address.
pub(crate) fn host_net(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

/// Whether `net` is in canonical form (no host bits set).
pub(crate) fn is_canonical(net: &IpNet) -> bool {
    net.network() == net.addr()
}

/// Splits the inclusive range `[start, end]` into the fewest aligned prefixes that cover exactly
/// that range. This is what "aggregate contiguous blocks into the shortest covering prefixes"
/// means: never over-cover, because a node must not attract traffic for addresses it lacks.
pub(crate) fn range_to_prefixes(family: Family, start: u128, end: u128, out: &mut Vec<IpNet>) {
    let width = u32::from(family.bits());
    let mut cur = start;
    loop {
        // Largest block aligned at `cur` ...
        let align = cur.trailing_zeros().min(width);
        // ... that does not run past `end`.
        let remaining = end - cur; // count - 1
        let fit = if remaining == u128::MAX {
            128
        } else {
            127 - (remaining + 1).leading_zeros()
        };
        let bits = align.min(fit);
        out.push(make_net(family, cur, (width - bits) as u8));
        let last = cur + low_ones(bits);
        if last >= end {
            return;
        }
        cur = last + 1;
    }
}

/// Merges the given inclusive ranges (any order, may touch or overlap) and returns the minimal
/// prefix list covering their union, sorted.
pub(crate) fn aggregate(mut ranges: Vec<(Family, u128, u128)>) -> Vec<IpNet> {
    ranges.sort_unstable();
    let mut out = Vec::new();
    let mut iter = ranges.into_iter();
    let Some(mut cur) = iter.next() else {
        return out;
    };
    for r in iter {
        let touches = r.0 == cur.0 && cur.2 != u128::MAX && r.1 <= cur.2 + 1;
        if touches {
            cur.2 = cur.2.max(r.2);
        } else {
            range_to_prefixes(cur.0, cur.1, cur.2, &mut out);
            cur = r;
        }
    }
    range_to_prefixes(cur.0, cur.1, cur.2, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn range(net: &str) -> (Family, u128, u128) {
        let n: IpNet = net.parse().unwrap();
        let (a, b) = net_range(&n);
        (Family::of_net(&n), a, b)
    }

    #[test]
    fn aggregates_contiguous_siblings() {
        let got = aggregate(vec![range("10.0.0.64/26"), range("10.0.0.0/26")]);
        assert_eq!(got, nets(&["10.0.0.0/25"]));
    }

    #[test]
    fn does_not_over_cover_unaligned_runs() {
        // Three blocks starting at an odd block: /26 + /25, never a /24.
        let got = aggregate(vec![
            range("10.0.0.64/26"),
            range("10.0.0.128/26"),
            range("10.0.0.192/26"),
        ]);
        assert_eq!(got, nets(&["10.0.0.64/26", "10.0.0.128/25"]));
    }

    #[test]
    fn keeps_families_apart_and_handles_extremes() {
        let got = aggregate(vec![
            range("fd00::/122"),
            range("10.0.0.0/32"),
            range("fd00::40/122"),
        ]);
        assert_eq!(got, nets(&["10.0.0.0/32", "fd00::/121"]));
        assert_eq!(aggregate(vec![range("::/0")]), nets(&["::/0"]));
        assert_eq!(aggregate(vec![range("0.0.0.0/0")]), nets(&["0.0.0.0/0"]));
        assert_eq!(
            aggregate(vec![range("255.255.255.255/32")]),
            nets(&["255.255.255.255/32"])
        );
    }

    #[test]
    fn range_split_is_exact() {
        let mut out = Vec::new();
        range_to_prefixes(Family::V4, 1, 6, &mut out);
        assert_eq!(
            out,
            nets(&["0.0.0.1/32", "0.0.0.2/31", "0.0.0.4/31", "0.0.0.6/32"])
        );
    }
}
