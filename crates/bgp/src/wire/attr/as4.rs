//! AS4_PATH / AS4_AGGREGATOR handling for sessions without the 4-octet AS capability
//! (RFC 6793 sections 4.2.2 and 4.2.3).
//!
//! Contract: [`reconcile`] turns what a 2-octet peer sent into the real 4-octet path and
//! aggregator and removes AS4_PATH / AS4_AGGREGATOR; [`split_for_two_octet_peer`] does the
//! reverse before encoding for such a peer. Both work in place on [`PathAttributes`].

use crate::iana::{AS_TRANS, SegmentType};
use crate::wire::attr::PathAttributes;
use crate::wire::attr::as_path::{AsPath, AsSegment};

/// RFC 6793 section 4.2.3, for UPDATEs received on a 2-octet session.
///
/// - If AGGREGATOR carries an AS other than AS_TRANS, AS4_AGGREGATOR and AS4_PATH are
///   ignored. If it carries AS_TRANS and AS4_AGGREGATOR is present, the latter is the real
///   aggregator.
/// - If AS_PATH has fewer AS numbers than AS4_PATH, AS4_PATH is ignored. Otherwise the path is
///   the leading AS numbers of AS_PATH that AS4_PATH lacks (old speakers in between), followed
///   by AS4_PATH. Confederation segments in AS4_PATH are discarded (RFC 6793 section 6);
///   those at the front of AS_PATH are kept.
pub fn reconcile(attrs: &mut PathAttributes) {
    let as4_path = attrs.as4_path.take();
    let as4_aggregator = attrs.as4_aggregator.take();
    if let Some(agg) = &mut attrs.aggregator {
        if agg.asn != u32::from(AS_TRANS) {
            return;
        }
        if let Some(real) = as4_aggregator {
            *agg = real;
        }
    }
    let (Some(as_path), Some(as4_path)) = (&mut attrs.as_path, as4_path) else {
        return;
    };
    let as4_path = as4_path.without_confed();
    let (n, m) = (as_path.path_len(), as4_path.path_len());
    if n < m {
        return;
    }
    let mut need = n - m;
    let mut merged: Vec<AsSegment> = Vec::with_capacity(as_path.segments.len() + 1);
    for seg in std::mem::take(&mut as_path.segments) {
        match seg.kind {
            SegmentType::AsConfedSequence | SegmentType::AsConfedSet => merged.push(seg),
            _ if need == 0 => break,
            SegmentType::AsSequence => {
                let k = need.min(seg.asns.len());
                need -= k;
                merged.push(AsSegment::sequence(seg.asns.into_iter().take(k)));
            }
            // AS_SET counts as one; other types cannot be parsed, so treat them alike.
            _ => {
                need -= 1;
                merged.push(seg);
            }
        }
    }
    let mut tail = as4_path.segments.into_iter();
    if let (Some(last), Some(first)) = (merged.last_mut(), tail.as_slice().first())
        && last.kind == SegmentType::AsSequence
        && first.kind == SegmentType::AsSequence
    {
        last.asns.extend_from_slice(&first.asns);
        tail.next();
    }
    merged.extend(tail);
    *as_path = AsPath { segments: merged };
}

/// RFC 6793 section 4.2.2, before encoding for a 2-octet peer: when the path or the
/// aggregator has AS numbers above 65535, add AS4_PATH (without confederation segments) and
/// AS4_AGGREGATOR. The encoder writes AS_TRANS for those numbers in AS_PATH and AGGREGATOR.
pub fn split_for_two_octet_peer(attrs: &mut PathAttributes) {
    attrs.as4_path = attrs
        .as_path
        .as_ref()
        .filter(|p| p.needs_four_octets())
        .map(AsPath::without_confed);
    attrs.as4_aggregator = attrs.aggregator.filter(|a| a.asn > u32::from(u16::MAX));
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::wire::attr::Aggregator;

    const T: u32 = AS_TRANS as u32;

    #[test]
    fn old_speaker_in_front_is_kept() {
        // An OLD speaker (65001) prepended to a path built by NEW speakers.
        let mut a = PathAttributes {
            as_path: Some(AsPath::sequence([65001, T, T, 100])),
            as4_path: Some(AsPath::sequence([4_200_000_001, 4_200_000_002, 100])),
            ..Default::default()
        };
        reconcile(&mut a);
        assert_eq!(
            a.as_path,
            Some(AsPath::sequence([65001, 4_200_000_001, 4_200_000_002, 100]))
        );
        assert_eq!(a.as4_path, None);
    }

    #[test]
    fn longer_as4_path_is_ignored() {
        let mut a = PathAttributes {
            as_path: Some(AsPath::sequence([T])),
            as4_path: Some(AsPath::sequence([4_200_000_001, 5])),
            ..Default::default()
        };
        reconcile(&mut a);
        assert_eq!(a.as_path, Some(AsPath::sequence([T])));
    }

    #[test]
    fn aggregator_rules() {
        let addr = Ipv4Addr::new(192, 0, 2, 9);
        let real = Aggregator {
            asn: 4_200_000_001,
            address: addr,
        };
        // AGGREGATOR = AS_TRANS: AS4_AGGREGATOR wins and AS4_PATH is used.
        let mut a = PathAttributes {
            as_path: Some(AsPath::sequence([T])),
            aggregator: Some(Aggregator {
                asn: T,
                address: addr,
            }),
            as4_aggregator: Some(real),
            as4_path: Some(AsPath::sequence([4_200_000_001])),
            ..Default::default()
        };
        reconcile(&mut a);
        assert_eq!(a.aggregator, Some(real));
        assert_eq!(a.as_path, Some(AsPath::sequence([4_200_000_001])));
        // AGGREGATOR != AS_TRANS: both AS4 attributes ignored.
        let mut a = PathAttributes {
            as_path: Some(AsPath::sequence([T])),
            aggregator: Some(Aggregator {
                asn: 65001,
                address: addr,
            }),
            as4_aggregator: Some(real),
            as4_path: Some(AsPath::sequence([4_200_000_001])),
            ..Default::default()
        };
        reconcile(&mut a);
        assert_eq!(a.aggregator.map(|g| g.asn), Some(65001));
        assert_eq!(a.as_path, Some(AsPath::sequence([T])));
        assert_eq!((a.as4_path, a.as4_aggregator), (None, None));
    }

    #[test]
    fn sets_and_confederations() {
        let mut a = PathAttributes {
            as_path: Some(AsPath {
                segments: vec![
                    AsSegment {
                        kind: SegmentType::AsConfedSequence,
                        asns: vec![64512],
                    },
                    AsSegment::sequence([65001, T]),
                    AsSegment::set([1, 2]),
                ],
            }),
            as4_path: Some(AsPath {
                segments: vec![
                    AsSegment {
                        kind: SegmentType::AsConfedSequence,
                        asns: vec![9],
                    },
                    AsSegment::sequence([4_200_000_001]),
                    AsSegment::set([1, 2]),
                ],
            }),
            ..Default::default()
        };
        reconcile(&mut a);
        let p = a.as_path.unwrap();
        assert_eq!(p.segments[0].kind, SegmentType::AsConfedSequence);
        assert_eq!(p.segments[1], AsSegment::sequence([65001, 4_200_000_001]));
        assert_eq!(p.segments[2], AsSegment::set([1, 2]));
    }

    #[test]
    fn split_then_reconcile_is_identity() {
        let original = PathAttributes {
            as_path: Some(AsPath::sequence([65001, 4_200_000_001, 100])),
            aggregator: Some(Aggregator {
                asn: 4_200_000_001,
                address: Ipv4Addr::LOCALHOST,
            }),
            ..Default::default()
        };
        let mut a = original.clone();
        split_for_two_octet_peer(&mut a);
        assert!(a.as4_path.is_some() && a.as4_aggregator.is_some());
        // What the 2-octet peer sees after the encoder maps large AS numbers to AS_TRANS:
        a.as_path = Some(AsPath::sequence([65001, T, 100]));
        a.aggregator = Some(Aggregator {
            asn: T,
            address: Ipv4Addr::LOCALHOST,
        });
        reconcile(&mut a);
        assert_eq!(a, original);

        let mut small = PathAttributes {
            as_path: Some(AsPath::sequence([1])),
            ..Default::default()
        };
        split_for_two_octet_peer(&mut small);
        assert_eq!(small.as4_path, None);
    }
}
