//! AS_PATH and AS4_PATH values (RFC 4271 section 4.3, RFC 6793, RFC 5065 confederations).
//!
//! ```text
//! Each segment:
//! +-----------------+------------------+--------------------------------+
//! | type (1 octet)  | count (1 octet)  | count AS numbers (2 or 4 each) |
//! +-----------------+------------------+--------------------------------+
//! type: 1 AS_SET, 2 AS_SEQUENCE, 3 AS_CONFED_SEQUENCE, 4 AS_CONFED_SET
//! ```
//!
//! Contract: AS numbers are always held as `u32`; the width on the wire (2 octets for old
//! sessions and always 4 for AS4_PATH) is chosen by the caller. Encoding into 2 octets writes
//! AS_TRANS for numbers that do not fit: build the AS4_PATH first with
//! [`crate::wire::attr::as4::split_for_two_octet_peer`]. Segments longer than 255 AS numbers
//! are split on encoding. Parsing rejects what RFC 7606 section 7.2 calls malformed.

use bytes::{BufMut, BytesMut};

use crate::iana::{AS_TRANS, SegmentType};

/// One AS_PATH segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AsSegment {
    pub kind: SegmentType,
    pub asns: Vec<u32>,
}

impl AsSegment {
    pub fn sequence(asns: impl IntoIterator<Item = u32>) -> Self {
        Self {
            kind: SegmentType::AsSequence,
            asns: asns.into_iter().collect(),
        }
    }

    pub fn set(asns: impl IntoIterator<Item = u32>) -> Self {
        Self {
            kind: SegmentType::AsSet,
            asns: asns.into_iter().collect(),
        }
    }

    fn is_confed(&self) -> bool {
        matches!(
            self.kind,
            SegmentType::AsConfedSequence | SegmentType::AsConfedSet
        )
    }

    /// Contribution to the path length (RFC 4271 9.1.2.2, RFC 5065 5.3).
    pub fn path_len(&self) -> usize {
        match self.kind {
            SegmentType::AsSet => usize::from(!self.asns.is_empty()),
            SegmentType::AsSequence => self.asns.len(),
            _ => 0,
        }
    }
}

/// An AS path: a list of segments, leftmost (most recent) first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// The empty path (routes originated inside the AS).
    pub fn empty() -> Self {
        Self::default()
    }

    /// A path of one AS_SEQUENCE.
    pub fn sequence(asns: impl IntoIterator<Item = u32>) -> Self {
        let seg = AsSegment::sequence(asns);
        if seg.asns.is_empty() {
            Self::empty()
        } else {
            Self {
                segments: vec![seg],
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| s.asns.is_empty())
    }

    /// Path length for best-path selection: AS_SET counts 1, confederation segments 0.
    pub fn path_len(&self) -> usize {
        self.segments.iter().map(AsSegment::path_len).sum()
    }

    /// The leftmost AS if the path starts with an AS_SEQUENCE (the neighbour AS on eBGP).
    pub fn first_as(&self) -> Option<u32> {
        let s = self.segments.first()?;
        (s.kind == SegmentType::AsSequence).then(|| s.asns.first().copied())?
    }

    /// The originating AS: the last AS of a final AS_SEQUENCE.
    pub fn origin_as(&self) -> Option<u32> {
        let s = self.segments.last()?;
        (s.kind == SegmentType::AsSequence).then(|| s.asns.last().copied())?
    }

    /// Whether `asn` appears anywhere (loop detection).
    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// Whether any AS number needs 4 octets.
    pub fn needs_four_octets(&self) -> bool {
        self.segments
            .iter()
            .flat_map(|s| &s.asns)
            .any(|&a| a > u32::from(u16::MAX))
    }

    /// Prepends `asn` `count` times, extending a leading AS_SEQUENCE.
    pub fn prepend(&mut self, asn: u32, count: usize) {
        match self.segments.first_mut() {
            Some(s) if s.kind == SegmentType::AsSequence => {
                s.asns.splice(0..0, std::iter::repeat_n(asn, count));
            }
            _ => self
                .segments
                .insert(0, AsSegment::sequence(std::iter::repeat_n(asn, count))),
        }
    }

    /// Decodes a value with `width`-octet AS numbers (2 or 4).
    pub fn parse(value: &[u8], four_octet: bool) -> Result<Self, &'static str> {
        let width = if four_octet { 4 } else { 2 };
        let mut rest = value;
        let mut segments = Vec::new();
        while !rest.is_empty() {
            let (Some(&kind), Some(&count)) = (rest.first(), rest.get(1)) else {
                return Err("one octet left where a segment header should be");
            };
            let kind = SegmentType::from(kind);
            if matches!(kind, SegmentType::Other(_)) {
                return Err("unrecognized segment type");
            }
            if count == 0 {
                return Err("segment of length zero");
            }
            let n = usize::from(count) * width;
            let body = rest.get(2..2 + n).ok_or("segment overruns the attribute")?;
            let asns = body
                .chunks_exact(width)
                .map(|c| c.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
                .collect();
            segments.push(AsSegment { kind, asns });
            rest = rest.get(2 + n..).unwrap_or_default();
        }
        Ok(Self { segments })
    }

    /// Octets of the encoded value.
    pub fn value_len(&self, four_octet: bool) -> usize {
        let width = if four_octet { 4 } else { 2 };
        self.segments
            .iter()
            .filter(|s| !s.asns.is_empty())
            .map(|s| 2 * s.asns.len().div_ceil(255) + width * s.asns.len())
            .sum()
    }

    /// Appends the encoded value; empty segments are skipped, long ones split.
    pub fn emit_value(&self, four_octet: bool, out: &mut BytesMut) {
        for s in &self.segments {
            for chunk in s.asns.chunks(255) {
                out.put_u8(s.kind.into());
                out.put_u8(chunk.len() as u8); // chunks of at most 255
                for &asn in chunk {
                    if four_octet {
                        out.put_u32(asn);
                    } else {
                        out.put_u16(u16::try_from(asn).unwrap_or(AS_TRANS));
                    }
                }
            }
        }
    }

    /// The path without confederation segments (what AS4_PATH may carry, RFC 6793 4.2.2).
    pub fn without_confed(&self) -> Self {
        Self {
            segments: self
                .segments
                .iter()
                .filter(|s| !s.is_confed())
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_octet_path_both_ways() {
        let wire: &[u8] = &[
            0x02, 0x02, 0x00, 0x00, 0xFD, 0xE9, 0xFA, 0x56, 0xEA,
            0x01, // SEQ 65001 4200000001
            0x01, 0x01, 0x00, 0x00, 0x00, 0x64, // SET {100}
        ];
        let p = AsPath::parse(wire, true).unwrap();
        assert_eq!(
            p,
            AsPath {
                segments: vec![
                    AsSegment::sequence([65001, 4_200_000_001]),
                    AsSegment::set([100])
                ]
            }
        );
        assert_eq!(p.path_len(), 3);
        assert_eq!(p.first_as(), Some(65001));
        assert_eq!(p.origin_as(), None);
        let mut out = BytesMut::new();
        p.emit_value(true, &mut out);
        assert_eq!(&out[..], wire);
        assert_eq!(p.value_len(true), wire.len());
    }

    #[test]
    fn two_octet_path_writes_as_trans() {
        let p = AsPath::sequence([65001, 4_200_000_001]);
        let mut out = BytesMut::new();
        p.emit_value(false, &mut out);
        // SEQ of 2: 65001, AS_TRANS
        assert_eq!(&out[..], &[0x02, 0x02, 0xFD, 0xE9, 0x5B, 0xA0]);
        assert_eq!(
            AsPath::parse(&out, false).unwrap(),
            AsPath::sequence([65001, 23456])
        );
    }

    #[test]
    fn malformed_paths() {
        assert!(AsPath::parse(&[0x05, 0x01, 0, 1], false).is_err()); // unknown segment type
        assert!(AsPath::parse(&[0x02, 0x00], false).is_err()); // zero-length segment
        assert!(AsPath::parse(&[0x02, 0x02, 0, 1], false).is_err()); // overrun
        assert!(AsPath::parse(&[0x02, 0x01, 0, 1, 0x02], false).is_err()); // one octet left
        assert_eq!(AsPath::parse(&[], true).unwrap(), AsPath::empty());
    }

    #[test]
    fn long_segments_are_split() {
        let p = AsPath::sequence(1..=300);
        let mut out = BytesMut::new();
        p.emit_value(true, &mut out);
        assert_eq!(out.len(), p.value_len(true));
        let back = AsPath::parse(&out, true).unwrap();
        assert_eq!(back.segments.len(), 2);
        assert_eq!(back.path_len(), 300);
    }

    #[test]
    fn prepend() {
        let mut p = AsPath::empty();
        p.prepend(65001, 2);
        p.prepend(65000, 1);
        assert_eq!(p, AsPath::sequence([65000, 65001, 65001]));
        let mut q = AsPath {
            segments: vec![AsSegment::set([1, 2])],
        };
        q.prepend(7, 1);
        assert_eq!(q.first_as(), Some(7));
    }
}

/// As routers print it: `65001 65002 {65010 65011}`, confederation segments in parentheses.
impl std::fmt::Display for AsPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for seg in &self.segments {
            let (open, close) = match seg.kind {
                SegmentType::AsSet => ("{", "}"),
                SegmentType::AsConfedSequence | SegmentType::AsConfedSet => ("(", ")"),
                _ => ("", ""),
            };
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(open)?;
            for (i, asn) in seg.asns.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{asn}")?;
            }
            f.write_str(close)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod display_tests {
    use super::*;

    #[test]
    fn prints_like_routers_do() {
        let mut path = AsPath::sequence([65001, 65002]);
        path.segments.push(AsSegment::set([65010, 65011]));
        assert_eq!(path.to_string(), "65001 65002 {65010 65011}");
        assert_eq!(AsPath::empty().to_string(), "");
    }
}
