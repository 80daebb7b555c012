//! COMMUNITIES (RFC 1997), EXTENDED_COMMUNITIES (RFC 4360) and LARGE_COMMUNITIES (RFC 8092).
//!
//! ```text
//! COMMUNITIES: n x 4 octets              EXTENDED_COMMUNITIES: n x 8 octets
//! +----------------+----------------+    +------+---------+------------------------+
//! | AS (2 octets)  | value (2)      |    | type | subtype | value (6 octets)       |
//! +----------------+----------------+    +------+---------+------------------------+
//!
//! LARGE_COMMUNITIES: n x 12 octets
//! +-------------------------------+-------------------------------+------------------+
//! | Global Administrator (4)      | Local Data Part 1 (4)         | Local Data Part 2 |
//! +-------------------------------+-------------------------------+------------------+
//! ```
//!
//! Contract: parsing accepts only non-zero multiples of the element size (RFC 7606 7.8 and
//! 7.14, RFC 8092 section 6); duplicates are kept as received, which RFC 8092 allows.

use std::fmt;

use bytes::{BufMut, BytesMut};

use crate::iana::community as wk;

/// A standard community.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    pub const GRACEFUL_SHUTDOWN: Community = Community(wk::GRACEFUL_SHUTDOWN);
    pub const ACCEPT_OWN: Community = Community(wk::ACCEPT_OWN);
    pub const BLACKHOLE: Community = Community(wk::BLACKHOLE);
    pub const NO_EXPORT: Community = Community(wk::NO_EXPORT);
    pub const NO_ADVERTISE: Community = Community(wk::NO_ADVERTISE);
    pub const NO_EXPORT_SUBCONFED: Community = Community(wk::NO_EXPORT_SUBCONFED);
    pub const NO_PEER: Community = Community(wk::NO_PEER);

    /// `asn:value`.
    pub fn new(asn: u16, value: u16) -> Self {
        Self((u32::from(asn) << 16) | u32::from(value))
    }

    pub fn asn(&self) -> u16 {
        (self.0 >> 16) as u16
    }

    pub fn value(&self) -> u16 {
        self.0 as u16
    }

    /// The well-known name, if any.
    pub fn well_known_name(&self) -> Option<&'static str> {
        Some(match self.0 {
            wk::GRACEFUL_SHUTDOWN => "GRACEFUL_SHUTDOWN",
            wk::ACCEPT_OWN => "ACCEPT_OWN",
            wk::LLGR_STALE => "LLGR_STALE",
            wk::NO_LLGR => "NO_LLGR",
            wk::BLACKHOLE => "BLACKHOLE",
            wk::NO_EXPORT => "NO_EXPORT",
            wk::NO_ADVERTISE => "NO_ADVERTISE",
            wk::NO_EXPORT_SUBCONFED => "NO_EXPORT_SUBCONFED",
            wk::NO_PEER => "NO_PEER",
            _ => return None,
        })
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.well_known_name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}:{}", self.asn(), self.value()),
        }
    }
}

impl fmt::Debug for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An extended community, kept as its 8 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtCommunity(pub [u8; 8]);

impl ExtCommunity {
    /// The type octet (high-order bit: IANA authority, next bit: non-transitive).
    pub fn kind(&self) -> u8 {
        self.0[0]
    }

    pub fn subtype(&self) -> u8 {
        self.0[1]
    }

    /// Whether the community must not leave the AS (RFC 4360 section 2).
    pub fn is_transitive(&self) -> bool {
        self.0[0] & 0x40 == 0
    }
}

/// A large community `global:local1:local2`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global_admin: u32,
    pub local_data_1: u32,
    pub local_data_2: u32,
}

impl LargeCommunity {
    pub fn new(global_admin: u32, local_data_1: u32, local_data_2: u32) -> Self {
        Self {
            global_admin,
            local_data_1,
            local_data_2,
        }
    }
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.global_admin, self.local_data_1, self.local_data_2
        )
    }
}

impl fmt::Debug for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn be32(c: &[u8]) -> u32 {
    c.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
}

/// Decodes a COMMUNITIES value.
pub fn parse_communities(value: &[u8]) -> Result<Vec<Community>, &'static str> {
    if value.is_empty() || !value.len().is_multiple_of(4) {
        return Err("length is not a non-zero multiple of 4");
    }
    Ok(value.chunks_exact(4).map(|c| Community(be32(c))).collect())
}

/// Decodes an EXTENDED_COMMUNITIES value.
pub fn parse_ext_communities(value: &[u8]) -> Result<Vec<ExtCommunity>, &'static str> {
    if value.is_empty() || !value.len().is_multiple_of(8) {
        return Err("length is not a non-zero multiple of 8");
    }
    Ok(value
        .chunks_exact(8)
        .map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            ExtCommunity(a)
        })
        .collect())
}

/// Decodes a LARGE_COMMUNITIES value.
pub fn parse_large_communities(value: &[u8]) -> Result<Vec<LargeCommunity>, &'static str> {
    if value.is_empty() || !value.len().is_multiple_of(12) {
        return Err("length is not a non-zero multiple of 12");
    }
    Ok(value
        .chunks_exact(12)
        .map(|c| LargeCommunity {
            global_admin: be32(c.get(0..4).unwrap_or_default()),
            local_data_1: be32(c.get(4..8).unwrap_or_default()),
            local_data_2: be32(c.get(8..12).unwrap_or_default()),
        })
        .collect())
}

pub(crate) fn emit_communities(v: &[Community], out: &mut BytesMut) {
    v.iter().for_each(|c| out.put_u32(c.0));
}

pub(crate) fn emit_ext_communities(v: &[ExtCommunity], out: &mut BytesMut) {
    v.iter().for_each(|c| out.put_slice(&c.0));
}

pub(crate) fn emit_large_communities(v: &[LargeCommunity], out: &mut BytesMut) {
    for c in v {
        out.put_u32(c.global_admin);
        out.put_u32(c.local_data_1);
        out.put_u32(c.local_data_2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communities_both_ways() {
        // 65001:100, NO_EXPORT, GRACEFUL_SHUTDOWN (65535:0), BLACKHOLE (65535:666)
        let wire: &[u8] = &[
            0xFD, 0xE9, 0x00, 0x64, 0xFF, 0xFF, 0xFF, 0x01, 0xFF, 0xFF, 0x00, 0x00, 0xFF, 0xFF,
            0x02, 0x9A,
        ];
        let v = parse_communities(wire).unwrap();
        assert_eq!(
            v,
            vec![
                Community::new(65001, 100),
                Community::NO_EXPORT,
                Community::new(65535, 0),
                Community::BLACKHOLE
            ]
        );
        assert_eq!(v[2], Community::GRACEFUL_SHUTDOWN);
        assert_eq!(v[0].to_string(), "65001:100");
        assert_eq!(v[1].to_string(), "NO_EXPORT");
        let mut out = BytesMut::new();
        emit_communities(&v, &mut out);
        assert_eq!(&out[..], wire);
    }

    #[test]
    fn large_communities_both_ways() {
        // 4200000001:1:2
        let wire: &[u8] = &[0xFA, 0x56, 0xEA, 0x01, 0, 0, 0, 1, 0, 0, 0, 2];
        let v = parse_large_communities(wire).unwrap();
        assert_eq!(v, vec![LargeCommunity::new(4_200_000_001, 1, 2)]);
        let mut out = BytesMut::new();
        emit_large_communities(&v, &mut out);
        assert_eq!(&out[..], wire);
    }

    #[test]
    fn ext_communities_both_ways() {
        // route target 2-octet AS 65001:100 (type 0x00, subtype 0x02)
        let wire: &[u8] = &[0x00, 0x02, 0xFD, 0xE9, 0x00, 0x00, 0x00, 0x64];
        let v = parse_ext_communities(wire).unwrap();
        assert_eq!(
            (v[0].kind(), v[0].subtype(), v[0].is_transitive()),
            (0, 2, true)
        );
        let mut out = BytesMut::new();
        emit_ext_communities(&v, &mut out);
        assert_eq!(&out[..], wire);
    }

    #[test]
    fn bad_lengths() {
        assert!(parse_communities(&[]).is_err());
        assert!(parse_communities(&[0; 5]).is_err());
        assert!(parse_ext_communities(&[0; 12]).is_err());
        assert!(parse_large_communities(&[0; 8]).is_err());
        assert!(parse_large_communities(&[]).is_err());
    }
}
