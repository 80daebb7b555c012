//! RFC 7606 error handling, table-driven: every case names the rule it exercises and the
//! outcome the RFC requires. UPDATE bodies are built by hand from the RFC layouts.

use bytes::Bytes;
use clos_bgp::Error;
use clos_bgp::iana::{AttrType, UpdateSubcode};
use clos_bgp::wire::{DecodeContext, Families, NotificationCode, PeerKind, Update, UpdateOutcome};

/// Encodes one attribute: flags, type, 1- or 2-octet length (by the flag), value.
fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, code];
    if flags & 0x10 != 0 {
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        v.push(value.len() as u8);
    }
    v.extend_from_slice(value);
    v
}

/// Encodes an UPDATE body from withdrawn routes, attributes and NLRI.
fn body(withdrawn: &[u8], attrs: &[Vec<u8>], nlri: &[u8]) -> Bytes {
    let a: Vec<u8> = attrs.concat();
    let mut v = Vec::new();
    v.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    v.extend_from_slice(withdrawn);
    v.extend_from_slice(&(a.len() as u16).to_be_bytes());
    v.extend_from_slice(&a);
    v.extend_from_slice(nlri);
    Bytes::from(v)
}

const WT: u8 = 0x40; // well-known: transitive
const OPT: u8 = 0x80; // optional non-transitive
const OT: u8 = 0xC0; // optional transitive
const EXT: u8 = 0x10; // extended length

fn origin() -> Vec<u8> {
    attr(WT, 1, &[0]) // IGP
}
fn as_path4() -> Vec<u8> {
    attr(WT, 2, &[2, 1, 0, 0, 0xFD, 0xE9]) // AS_SEQUENCE [65001], 4-octet
}
fn as_path2() -> Vec<u8> {
    attr(WT, 2, &[2, 1, 0xFD, 0xE9]) // AS_SEQUENCE [65001], 2-octet
}
fn next_hop() -> Vec<u8> {
    attr(WT, 3, &[192, 0, 2, 1])
}
/// 198.51.100.0/24
const NLRI: &[u8] = &[24, 198, 51, 100];
/// MP_REACH_NLRI IPv6 unicast, next hop 2001:db8::1, NLRI 2001:db8:1::/48
fn mp_reach_v6() -> Vec<u8> {
    let mut v = vec![0, 2, 1, 16];
    v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v.push(0);
    v.extend_from_slice(&[48, 0x20, 0x01, 0x0d, 0xb8, 0, 1]);
    attr(OPT, 14, &v)
}
/// MP_UNREACH_NLRI IPv6 unicast withdrawing 2001:db8:2::/48
fn mp_unreach_v6() -> Vec<u8> {
    attr(OPT, 15, &[0, 2, 1, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 2])
}

fn base4() -> Vec<Vec<u8>> {
    vec![origin(), as_path4(), next_hop()]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Ok,
    /// Attribute discard of this type.
    Discard(AttrType),
    /// Treat-as-withdraw, with the reason's attribute type when it has one.
    Withdraw(Option<AttrType>),
    /// Session reset with this UPDATE Message Error subcode.
    Reset(UpdateSubcode),
}

struct Case {
    name: &'static str,
    ctx: DecodeContext,
    body: Bytes,
    expect: Expect,
}

fn ebgp4() -> DecodeContext {
    DecodeContext::modern(PeerKind::External)
}
fn ibgp4() -> DecodeContext {
    DecodeContext::modern(PeerKind::Internal)
}
fn ebgp2() -> DecodeContext {
    DecodeContext {
        four_octet_as: false,
        ..ebgp4()
    }
}

/// `base4()` with the attribute at `i` replaced (or appended when `i` is past the end).
fn with(i: usize, a: Vec<u8>) -> Vec<Vec<u8>> {
    let mut v = base4();
    if i < v.len() {
        v[i] = a;
    } else {
        v.push(a);
    }
    v
}

fn without(i: usize) -> Vec<Vec<u8>> {
    let mut v = base4();
    v.remove(i);
    v
}

fn cases() -> Vec<Case> {
    use AttrType as A;
    use Expect::*;
    use UpdateSubcode as S;
    let c = |name, ctx, body, expect| Case {
        name,
        ctx,
        body,
        expect,
    };
    let mut mp_flags_wrong = mp_reach_v6();
    mp_flags_wrong[0] = OT;
    vec![
        c("valid IPv4 UPDATE", ebgp4(), body(&[], &base4(), NLRI), Ok),
        c(
            "valid 2-octet AS_PATH on 2-octet session",
            ebgp2(),
            body(&[], &[origin(), as_path2(), next_hop()], NLRI),
            Ok,
        ),
        c(
            "extended length bit on a short attribute is fine",
            ebgp4(),
            body(&[], &with(0, attr(WT | EXT, 1, &[0])), NLRI),
            Ok,
        ),
        // 7.1 ORIGIN
        c(
            "7.1 ORIGIN length 2",
            ebgp4(),
            body(&[], &with(0, attr(WT, 1, &[0, 0])), NLRI),
            Withdraw(Some(A::Origin)),
        ),
        c(
            "7.1 ORIGIN undefined value 3",
            ebgp4(),
            body(&[], &with(0, attr(WT, 1, &[3])), NLRI),
            Withdraw(Some(A::Origin)),
        ),
        c(
            "3c ORIGIN marked optional",
            ebgp4(),
            body(&[], &with(0, attr(OT, 1, &[0])), NLRI),
            Withdraw(Some(A::Origin)),
        ),
        // 7.2 AS_PATH
        c(
            "7.2 AS_PATH segment overruns",
            ebgp4(),
            body(&[], &with(1, attr(WT, 2, &[2, 2, 0, 0, 0xFD, 0xE9])), NLRI),
            Withdraw(Some(A::AsPath)),
        ),
        c(
            "7.2 AS_PATH segment length zero",
            ebgp4(),
            body(&[], &with(1, attr(WT, 2, &[2, 0])), NLRI),
            Withdraw(Some(A::AsPath)),
        ),
        c(
            "7.2 AS_PATH unrecognized segment type",
            ebgp4(),
            body(&[], &with(1, attr(WT, 2, &[9, 1, 0, 0, 0, 1])), NLRI),
            Withdraw(Some(A::AsPath)),
        ),
        c(
            "7.2 AS_PATH one octet left after a segment",
            ebgp4(),
            body(&[], &with(1, attr(WT, 2, &[2, 1, 0, 0, 0, 1, 2])), NLRI),
            Withdraw(Some(A::AsPath)),
        ),
        c(
            "RFC 7607 AS 0 in AS_PATH",
            ebgp4(),
            body(&[], &with(1, attr(WT, 2, &[2, 1, 0, 0, 0, 0])), NLRI),
            Withdraw(Some(A::AsPath)),
        ),
        c(
            "7.2 2-octet AS_PATH on a 4-octet session",
            ebgp4(),
            body(&[], &with(1, as_path2()), NLRI),
            Withdraw(Some(A::AsPath)),
        ),
        // 7.3 NEXT_HOP
        c(
            "7.3 NEXT_HOP length 5",
            ebgp4(),
            body(&[], &with(2, attr(WT, 3, &[192, 0, 2, 1, 0])), NLRI),
            Withdraw(Some(A::NextHop)),
        ),
        c(
            "7.3 NEXT_HOP 0.0.0.0",
            ebgp4(),
            body(&[], &with(2, attr(WT, 3, &[0, 0, 0, 0])), NLRI),
            Withdraw(Some(A::NextHop)),
        ),
        c(
            "7.3 NEXT_HOP multicast",
            ebgp4(),
            body(&[], &with(2, attr(WT, 3, &[224, 0, 0, 5])), NLRI),
            Withdraw(Some(A::NextHop)),
        ),
        // 7.4 MULTI_EXIT_DISC
        c(
            "7.4 MED length 3",
            ebgp4(),
            body(&[], &with(3, attr(OPT, 4, &[0, 0, 1])), NLRI),
            Withdraw(Some(A::MultiExitDisc)),
        ),
        c(
            "3c MED marked transitive",
            ebgp4(),
            body(&[], &with(3, attr(OT, 4, &[0, 0, 0, 1])), NLRI),
            Withdraw(Some(A::MultiExitDisc)),
        ),
        // 7.5 LOCAL_PREF
        c(
            "7.5 LOCAL_PREF from an external peer",
            ebgp4(),
            body(&[], &with(3, attr(WT, 5, &[0, 0, 0, 100])), NLRI),
            Discard(A::LocalPref),
        ),
        c(
            "7.5 malformed LOCAL_PREF from an external peer is still only discarded",
            ebgp4(),
            body(&[], &with(3, attr(WT, 5, &[0])), NLRI),
            Discard(A::LocalPref),
        ),
        c(
            "7.5 LOCAL_PREF length 2 from an internal peer",
            ibgp4(),
            body(&[], &with(3, attr(WT, 5, &[0, 100])), NLRI),
            Withdraw(Some(A::LocalPref)),
        ),
        c(
            "7.5 LOCAL_PREF from an internal peer",
            ibgp4(),
            body(&[], &with(3, attr(WT, 5, &[0, 0, 0, 100])), NLRI),
            Ok,
        ),
        // 7.6 ATOMIC_AGGREGATE
        c(
            "7.6 ATOMIC_AGGREGATE length 1",
            ebgp4(),
            body(&[], &with(3, attr(WT, 6, &[0])), NLRI),
            Discard(A::AtomicAggregate),
        ),
        c(
            "3c ATOMIC_AGGREGATE marked optional",
            ebgp4(),
            body(&[], &with(3, attr(OT, 6, &[])), NLRI),
            Discard(A::AtomicAggregate),
        ),
        // 7.7 AGGREGATOR
        c(
            "7.7 AGGREGATOR length 7",
            ebgp4(),
            body(
                &[],
                &with(3, attr(OT, 7, &[0, 0, 0xFD, 0xE9, 10, 0, 0])),
                NLRI,
            ),
            Discard(A::Aggregator),
        ),
        c(
            "7.7 2-octet AGGREGATOR on a 4-octet session",
            ebgp4(),
            body(&[], &with(3, attr(OT, 7, &[0xFD, 0xE9, 10, 0, 0, 1])), NLRI),
            Discard(A::Aggregator),
        ),
        c(
            "RFC 7607 AGGREGATOR AS 0",
            ebgp4(),
            body(&[], &with(3, attr(OT, 7, &[0, 0, 0, 0, 10, 0, 0, 1])), NLRI),
            Discard(A::Aggregator),
        ),
        c(
            "3c AGGREGATOR marked non-transitive",
            ebgp4(),
            body(
                &[],
                &with(3, attr(OPT, 7, &[0, 0, 0xFD, 0xE9, 10, 0, 0, 1])),
                NLRI,
            ),
            Discard(A::Aggregator),
        ),
        // 7.8 COMMUNITIES
        c(
            "7.8 COMMUNITIES length 5",
            ebgp4(),
            body(&[], &with(3, attr(OT, 8, &[0; 5])), NLRI),
            Withdraw(Some(A::Communities)),
        ),
        c(
            "7.8 COMMUNITIES length 0",
            ebgp4(),
            body(&[], &with(3, attr(OT, 8, &[])), NLRI),
            Withdraw(Some(A::Communities)),
        ),
        // 7.9, 7.10 ORIGINATOR_ID, CLUSTER_LIST
        c(
            "7.9 ORIGINATOR_ID from an external peer",
            ebgp4(),
            body(&[], &with(3, attr(OPT, 9, &[10, 0, 0, 1])), NLRI),
            Discard(A::OriginatorId),
        ),
        c(
            "7.9 ORIGINATOR_ID length 3 from an internal peer",
            ibgp4(),
            body(&[], &with(3, attr(OPT, 9, &[10, 0, 0])), NLRI),
            Withdraw(Some(A::OriginatorId)),
        ),
        c(
            "7.10 CLUSTER_LIST from an external peer",
            ebgp4(),
            body(&[], &with(3, attr(OPT, 10, &[10, 0, 0, 1])), NLRI),
            Discard(A::ClusterList),
        ),
        c(
            "7.10 CLUSTER_LIST length 6 from an internal peer",
            ibgp4(),
            body(&[], &with(3, attr(OPT, 10, &[10, 0, 0, 1, 0, 0])), NLRI),
            Withdraw(Some(A::ClusterList)),
        ),
        c(
            "7.9/7.10 ORIGINATOR_ID and CLUSTER_LIST from an internal peer",
            ibgp4(),
            body(
                &[],
                &[
                    origin(),
                    as_path4(),
                    next_hop(),
                    attr(OPT, 9, &[10, 0, 0, 1]),
                    attr(OPT, 10, &[10, 0, 0, 2]),
                ],
                NLRI,
            ),
            Ok,
        ),
        // 7.11 MP_REACH_NLRI / MP_UNREACH_NLRI
        c(
            "valid MP_REACH_NLRI without NEXT_HOP",
            ebgp4(),
            body(&[], &[mp_reach_v6(), origin(), as_path4()], &[]),
            Ok,
        ),
        c(
            "7.11 MP_REACH_NLRI next hop length 5",
            ebgp4(),
            body(
                &[],
                &[
                    attr(OPT, 14, &[0, 2, 1, 5, 1, 2, 3, 4, 5, 0]),
                    origin(),
                    as_path4(),
                ],
                &[],
            ),
            Reset(S::OptionalAttributeError),
        ),
        c(
            "7.11 MP_REACH_NLRI IPv6 NLRI length 129",
            ebgp4(),
            body(
                &[],
                &[
                    attr(
                        OPT,
                        14,
                        &[
                            0, 2, 1, 16, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0,
                            129, 0,
                        ],
                    ),
                    origin(),
                    as_path4(),
                ],
                &[],
            ),
            Reset(S::InvalidNetworkField),
        ),
        c(
            "7.11 MP_REACH_NLRI ends before the reserved octet",
            ebgp4(),
            body(
                &[],
                &[
                    attr(OPT, 14, &[0, 1, 1, 4, 10, 0, 0, 1]),
                    origin(),
                    as_path4(),
                ],
                &[],
            ),
            Reset(S::OptionalAttributeError),
        ),
        c(
            "7.11 IPv6 next hop for IPv4 NLRI without RFC 8950",
            DecodeContext {
                extended_next_hop: Families::NONE,
                ..ebgp4()
            },
            body(
                &[],
                &[
                    attr(
                        OPT,
                        14,
                        &[
                            0, 1, 1, 16, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0,
                            24, 10, 0, 0,
                        ],
                    ),
                    origin(),
                    as_path4(),
                ],
                &[],
            ),
            Reset(S::OptionalAttributeError),
        ),
        c(
            "MP_REACH_NLRI of a family not negotiated",
            ebgp4(),
            body(
                &[],
                &[
                    attr(OPT, 14, &[0, 25, 70, 4, 10, 0, 0, 1, 0, 1, 2, 3]),
                    origin(),
                    as_path4(),
                ],
                &[],
            ),
            Discard(A::MpReachNlri),
        ),
        c(
            "7.11 MP_UNREACH_NLRI of 2 octets",
            ebgp4(),
            body(&[], &[attr(OPT, 15, &[0, 2])], &[]),
            Reset(S::OptionalAttributeError),
        ),
        c(
            "3g MP_REACH_NLRI twice",
            ebgp4(),
            body(
                &[],
                &[mp_reach_v6(), mp_reach_v6(), origin(), as_path4()],
                &[],
            ),
            Reset(S::MalformedAttributeList),
        ),
        c(
            "3g MP_UNREACH_NLRI twice",
            ebgp4(),
            body(&[], &[mp_unreach_v6(), mp_unreach_v6()], &[]),
            Reset(S::MalformedAttributeList),
        ),
        c(
            "3c MP_REACH_NLRI marked transitive",
            ebgp4(),
            body(&[], &[mp_flags_wrong, origin(), as_path4()], &[]),
            Reset(S::AttributeFlagsError),
        ),
        c(
            "4 MP_REACH_NLRI overruns the attributes",
            ebgp4(),
            body(
                &[],
                &[
                    origin(),
                    as_path4(),
                    attr(OPT, 14, &[0, 2, 1])[..3].to_vec(),
                    vec![0, 2],
                ],
                &[],
            ),
            Reset(S::AttributeLengthError),
        ),
        // 7.14 EXTENDED_COMMUNITIES, RFC 8092 LARGE_COMMUNITIES
        c(
            "7.14 EXTENDED_COMMUNITIES length 7",
            ebgp4(),
            body(&[], &with(3, attr(OT, 16, &[0; 7])), NLRI),
            Withdraw(Some(A::ExtendedCommunities)),
        ),
        c(
            "RFC 8092 LARGE_COMMUNITIES length 11",
            ebgp4(),
            body(&[], &with(3, attr(OT, 32, &[0; 11])), NLRI),
            Withdraw(Some(A::LargeCommunities)),
        ),
        c(
            "RFC 8092 LARGE_COMMUNITIES length 0",
            ebgp4(),
            body(&[], &with(3, attr(OT, 32, &[])), NLRI),
            Withdraw(Some(A::LargeCommunities)),
        ),
        c(
            "RFC 8092 duplicate large communities are not an error",
            ebgp4(),
            body(
                &[],
                &with(
                    3,
                    attr(
                        OT,
                        32,
                        &[[0u8, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]; 2].concat(),
                    ),
                ),
                NLRI,
            ),
            Ok,
        ),
        // RFC 6793 AS4_PATH, AS4_AGGREGATOR
        c(
            "RFC 6793 AS4_PATH from a 4-octet peer",
            ebgp4(),
            body(&[], &with(3, attr(OT, 17, &[2, 1, 0, 0, 0xFD, 0xE9])), NLRI),
            Discard(A::As4Path),
        ),
        c(
            "RFC 6793 malformed AS4_PATH on a 2-octet session",
            ebgp2(),
            body(
                &[],
                &[
                    origin(),
                    as_path2(),
                    next_hop(),
                    attr(OT, 17, &[2, 2, 0, 0, 0xFD, 0xE9]),
                ],
                NLRI,
            ),
            Discard(A::As4Path),
        ),
        c(
            "RFC 6793 AS4_AGGREGATOR length 6 on a 2-octet session",
            ebgp2(),
            body(
                &[],
                &[
                    origin(),
                    as_path2(),
                    next_hop(),
                    attr(OT, 18, &[0xFD, 0xE9, 10, 0, 0, 1]),
                ],
                NLRI,
            ),
            Discard(A::As4Aggregator),
        ),
        c(
            "RFC 6793 AS4_PATH on a 2-octet session",
            ebgp2(),
            body(
                &[],
                &[
                    origin(),
                    as_path2(),
                    next_hop(),
                    attr(OT, 17, &[2, 1, 0, 0, 0xFD, 0xE9]),
                ],
                NLRI,
            ),
            Ok,
        ),
        // 3g duplicates
        c(
            "3g ORIGIN twice: the second is discarded",
            ebgp4(),
            body(&[], &with(3, attr(WT, 1, &[2])), NLRI),
            Discard(A::Origin),
        ),
        c(
            "3g unknown optional attribute twice",
            ebgp4(),
            body(
                &[],
                &[
                    origin(),
                    as_path4(),
                    next_hop(),
                    attr(OT, 99, &[1]),
                    attr(OT, 99, &[2]),
                ],
                NLRI,
            ),
            Discard(A::Other(99)),
        ),
        // 3d missing well-known attributes
        c(
            "3d ORIGIN missing with NLRI",
            ebgp4(),
            body(&[], &without(0), NLRI),
            Withdraw(Some(A::Origin)),
        ),
        c(
            "3d AS_PATH missing with NLRI",
            ebgp4(),
            body(&[], &without(1), NLRI),
            Withdraw(Some(A::AsPath)),
        ),
        c(
            "3d NEXT_HOP missing with NLRI",
            ebgp4(),
            body(&[], &without(2), NLRI),
            Withdraw(Some(A::NextHop)),
        ),
        c(
            "3d ORIGIN missing with MP_REACH_NLRI",
            ebgp4(),
            body(&[], &[mp_reach_v6(), as_path4()], &[]),
            Withdraw(Some(A::Origin)),
        ),
        c(
            "3d nothing is mandatory without NLRI",
            ebgp4(),
            body(&[24, 10, 0, 0], &[attr(OT, 8, &[0, 0, 0, 1])], &[]),
            Ok,
        ),
        c(
            "withdrawals only",
            ebgp4(),
            body(&[24, 10, 0, 0], &[], &[]),
            Ok,
        ),
        c(
            "MP_UNREACH_NLRI only",
            ebgp4(),
            body(&[], &[mp_unreach_v6()], &[]),
            Ok,
        ),
        // unknown attributes
        c(
            "RFC 4271 unrecognized well-known attribute",
            ebgp4(),
            body(&[], &with(3, attr(WT, 99, &[1])), NLRI),
            Reset(S::UnrecognizedWellKnownAttribute),
        ),
        c(
            "unknown optional transitive attribute is kept",
            ebgp4(),
            body(&[], &with(3, attr(OT | 0x20, 99, &[1, 2])), NLRI),
            Ok,
        ),
        // 4 attribute block length errors
        c(
            "4 attribute length overruns the attributes",
            ebgp4(),
            body(
                &[],
                &[origin(), as_path4(), next_hop(), vec![OT, 8, 8, 0, 0, 0, 1]],
                NLRI,
            ),
            Withdraw(Some(A::Communities)),
        ),
        c(
            "4 two octets left: no room for an attribute header",
            ebgp4(),
            body(&[], &[origin(), as_path4(), next_hop(), vec![OT, 8]], NLRI),
            Withdraw(None),
        ),
        c(
            "4 extended length flag with three octets left",
            ebgp4(),
            body(
                &[],
                &[origin(), as_path4(), next_hop(), vec![OT | EXT, 8, 0]],
                NLRI,
            ),
            Withdraw(None),
        ),
        c(
            "attribute after MP_REACH_NLRI overruns",
            ebgp4(),
            body(
                &[],
                &[mp_reach_v6(), origin(), as_path4(), vec![OT, 8, 200, 1]],
                &[],
            ),
            Withdraw(Some(A::Communities)),
        ),
        // 4271 6.3 and 7606 5.3: lengths and NLRI
        c(
            "total attribute length overruns the message",
            ebgp4(),
            Bytes::from_static(&[0, 0, 0, 50, 0x40, 1, 1, 0]),
            Reset(S::MalformedAttributeList),
        ),
        c(
            "withdrawn routes length overruns the message",
            ebgp4(),
            Bytes::from_static(&[0, 9, 24, 10, 0, 0, 0, 0]),
            Reset(S::MalformedAttributeList),
        ),
        c(
            "5.3 NLRI prefix length 33",
            ebgp4(),
            body(&[], &base4(), &[33, 1, 2, 3, 4, 5]),
            Reset(S::InvalidNetworkField),
        ),
        c(
            "5.3 NLRI prefix overruns",
            ebgp4(),
            body(&[], &base4(), &[24, 10, 0]),
            Reset(S::InvalidNetworkField),
        ),
        c(
            "5.3 withdrawn route prefix overruns",
            ebgp4(),
            body(&[16, 10], &[], &[]),
            Reset(S::InvalidNetworkField),
        ),
        // 3h strongest action wins
        c(
            "3h discard and withdraw: withdraw",
            ebgp4(),
            body(
                &[],
                &[
                    origin(),
                    as_path4(),
                    next_hop(),
                    attr(WT, 6, &[1]),
                    attr(OT, 8, &[1]),
                ],
                NLRI,
            ),
            Withdraw(Some(A::Communities)),
        ),
        c(
            "3h withdraw and reset: reset",
            ebgp4(),
            body(
                &[],
                &[attr(WT, 1, &[7]), as_path4(), mp_reach_v6(), mp_reach_v6()],
                &[],
            ),
            Reset(S::MalformedAttributeList),
        ),
    ]
}

fn check(case: &Case) -> Result<(), String> {
    let outcome = Update::decode(case.body.clone(), &case.ctx);
    let ok = match (&outcome, case.expect) {
        (UpdateOutcome::Ok(_), Expect::Ok) => true,
        (UpdateOutcome::AttributeDiscard { discarded, update }, Expect::Discard(code)) => {
            discarded.iter().any(|e| e.attr_type() == Some(code)) && update.attrs.unknown.len() < 2
        }
        (
            UpdateOutcome::TreatAsWithdraw {
                reason,
                withdrawals,
                ..
            },
            Expect::Withdraw(code),
        ) => {
            !withdrawals.has_announcements()
                && withdrawals.attrs.is_empty()
                && code.is_none_or(|c| reason.attr_type() == Some(c))
        }
        (UpdateOutcome::SessionReset(r), Expect::Reset(sub)) => {
            r.notification.code == NotificationCode::UpdateMessage(sub)
                && r.error.notification().as_ref() == Some(&r.notification)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{}: expected {:?}, got {outcome:#?}",
            case.name, case.expect
        ))
    }
}

#[test]
fn rfc7606_table() {
    let cases = cases();
    let failures: Vec<String> = cases.iter().filter_map(|c| check(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn treat_as_withdraw_withdraws_every_prefix() {
    // Classic NLRI 198.51.100.0/24, withdrawn 10.0.0.0/24, MP_REACH IPv6 2001:db8:1::/48,
    // MP_UNREACH IPv6 2001:db8:2::/48, and a malformed COMMUNITIES.
    let b = body(
        &[24, 10, 0, 0],
        &[
            mp_reach_v6(),
            mp_unreach_v6(),
            origin(),
            as_path4(),
            next_hop(),
            attr(OT, 8, &[1]),
        ],
        NLRI,
    );
    let UpdateOutcome::TreatAsWithdraw {
        withdrawals,
        reason,
        ..
    } = Update::decode(b, &ebgp4())
    else {
        panic!("expected treat-as-withdraw");
    };
    assert!(matches!(
        reason,
        Error::AttributeLength {
            code: AttrType::Communities,
            ..
        }
    ));
    let got: Vec<String> = withdrawals.withdrawals().map(|p| p.to_string()).collect();
    assert_eq!(
        got,
        [
            "10.0.0.0/24",
            "198.51.100.0/24",
            "2001:db8:2::/48",
            "2001:db8:1::/48"
        ]
    );
    assert!(withdrawals.mp_reach.is_none() && withdrawals.nlri.is_empty());
}

#[test]
fn attribute_discard_keeps_the_rest() {
    let b = body(&[], &with(3, attr(WT, 6, &[1])), NLRI);
    let UpdateOutcome::AttributeDiscard { update, discarded } = Update::decode(b, &ebgp4()) else {
        panic!("expected attribute discard");
    };
    assert_eq!(discarded.len(), 1);
    assert!(!update.attrs.atomic_aggregate);
    assert_eq!(update.attrs.origin, Some(clos_bgp::iana::Origin::Igp));
    assert_eq!(update.announced().count(), 1);
}

/// Found by the `bgp_update` fuzz target: a discarded AGGREGATOR that arrived with the Partial
/// bit left the bit set, so it went out later on our own AS4_PATH.
#[test]
fn discarded_attribute_leaves_no_partial_bit() {
    // Withdrawn length 0, attributes length 3: AGGREGATOR, flags O|T|P, length 0.
    let body = bytes::Bytes::from_static(&[0x00, 0x00, 0x00, 0x03, 0xe0, 0x07, 0x00]);
    let outcome = clos_bgp::wire::Update::decode(body, &clos_bgp::wire::DecodeContext::default());
    let update = outcome
        .update()
        .expect("attribute discard keeps the UPDATE");
    assert_eq!(update.attrs.partial, 0);
    assert!(update.attrs.aggregator.is_none());
}
