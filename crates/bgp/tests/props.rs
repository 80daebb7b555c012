//! Property tests for the wire codec:
//! - generated messages survive emit then decode unchanged (every message type);
//! - every decoder returns (no panic, no endless loop) on arbitrary octets and on randomly
//!   mutated valid messages, and whatever an UPDATE decodes to re-encodes to a fixed point.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use clos_bgp::iana::{Afi, AttrType, RouteRefreshSubtype, SegmentType};
use clos_bgp::wire::attr::{as_path, community, mp};
use clos_bgp::wire::prefix::RawNlriIter;
use clos_bgp::wire::{
    Aggregator, AsPath, AsSegment, Capability, Community, DecodeContext, ExtCommunity, ExtNextHop,
    Families, Family, GrFamily, GracefulRestart, Header, LargeCommunity, Message, MpReach,
    MpUnreach, NextHop, Nlri, Notification, NotificationCode, Open, OptionalParameter,
    PathAttributes, PeerKind, Prefix4, Prefix6, RawAttribute, Received, RouteRefresh, Update,
    UpdateOutcome, UpdateView, decode_message, frame_len,
};
use proptest::prelude::*;

// ---------------------------------------------------------------- strategies

fn prefix4() -> impl Strategy<Value = Prefix4> {
    (any::<u32>(), 0..=32u8).prop_map(|(a, l)| Prefix4::new(Ipv4Addr::from(a), l).unwrap())
}

fn prefix6() -> impl Strategy<Value = Prefix6> {
    (any::<u128>(), 0..=128u8).prop_map(|(a, l)| Prefix6::new(Ipv6Addr::from(a), l).unwrap())
}

fn nlri4(max: usize) -> impl Strategy<Value = Nlri> {
    prop::collection::vec(prefix4(), 0..max).prop_map(Nlri::from_v4)
}

fn nlri6(max: usize) -> impl Strategy<Value = Nlri> {
    prop::collection::vec(prefix6(), 0..max).prop_map(Nlri::from_v6)
}

/// A unicast host address, as NEXT_HOP must be.
fn host4() -> impl Strategy<Value = Ipv4Addr> {
    (0x0100_0000u32..0xE000_0000).prop_map(Ipv4Addr::from)
}

fn next_hop6() -> impl Strategy<Value = NextHop> {
    (any::<u128>(), prop::option::of(any::<u128>())).prop_map(|(g, ll)| NextHop::V6 {
        global: Ipv6Addr::from(g),
        link_local: ll.map(Ipv6Addr::from),
    })
}

fn asn(four_octet: bool) -> BoxedStrategy<u32> {
    // AS 0 is malformed (RFC 7607).
    if four_octet {
        (1..=u32::MAX).boxed()
    } else {
        (1..=u32::from(u16::MAX)).boxed()
    }
}

fn as_path(four_octet: bool) -> impl Strategy<Value = AsPath> {
    let kind = prop::sample::select(vec![
        SegmentType::AsSequence,
        SegmentType::AsSet,
        SegmentType::AsConfedSequence,
        SegmentType::AsConfedSet,
    ]);
    let seg = (kind, prop::collection::vec(asn(four_octet), 1..8))
        .prop_map(|(kind, asns)| AsSegment { kind, asns });
    prop::collection::vec(seg, 0..4).prop_map(|segments| AsPath { segments })
}

fn aggregator(four_octet: bool) -> impl Strategy<Value = Aggregator> {
    (asn(four_octet), any::<u32>()).prop_map(|(asn, a)| Aggregator {
        asn,
        address: a.into(),
    })
}

/// Unknown optional attributes with distinct type codes, sorted (as the decoder keeps them).
fn unknown_attrs() -> impl Strategy<Value = Vec<RawAttribute>> {
    prop::collection::btree_map(
        100..200u8,
        (
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..40),
        ),
        0..3,
    )
    .prop_map(|m: BTreeMap<u8, (bool, bool, Vec<u8>)>| {
        m.into_iter()
            .map(|(code, (t, p, v))| RawAttribute {
                flags: 0x80 | if t { 0x40 } else { 0 } | if p { 0x20 } else { 0 },
                code,
                value: Bytes::from(v),
            })
            .collect()
    })
}

/// Attributes an internal peer on a session of the given AS width accepts without complaint.
fn path_attributes(four_octet: bool) -> impl Strategy<Value = PathAttributes> {
    let first = (
        prop::sample::select(vec![
            clos_bgp::iana::Origin::Igp,
            clos_bgp::iana::Origin::Egp,
            clos_bgp::iana::Origin::Incomplete,
        ]),
        as_path(four_octet),
        host4(),
        prop::option::of(any::<u32>()),
        prop::option::of(any::<u32>()),
        any::<bool>(),
        prop::option::of(aggregator(four_octet)),
    );
    let second = (
        prop::collection::vec(any::<u32>().prop_map(Community), 0..6),
        prop::option::of(any::<u32>().prop_map(Ipv4Addr::from)),
        prop::collection::vec(any::<u32>().prop_map(Ipv4Addr::from), 0..4),
        prop::collection::vec(any::<[u8; 8]>().prop_map(ExtCommunity), 0..4),
        prop::collection::vec(
            any::<(u32, u32, u32)>().prop_map(|(a, b, c)| LargeCommunity::new(a, b, c)),
            0..4,
        ),
        unknown_attrs(),
        // AS4_PATH and AS4_AGGREGATOR only make sense on 2-octet sessions.
        prop::option::of(as_path(true)).prop_map(move |p| p.filter(|_| !four_octet)),
        prop::option::of(aggregator(true)).prop_map(move |a| a.filter(|_| !four_octet)),
    );
    (first, second).prop_map(
        |(
            (origin, path, nh, med, local_pref, atomic_aggregate, aggregator),
            (communities, originator_id, cluster_list, ext, large, unknown, as4_path, as4_agg),
        )| PathAttributes {
            origin: Some(origin),
            as_path: Some(path),
            next_hop: Some(nh),
            med,
            local_pref,
            atomic_aggregate,
            aggregator,
            communities,
            originator_id,
            cluster_list,
            extended_communities: ext,
            as4_path: as4_path.map(|p| p.without_confed()),
            as4_aggregator: as4_agg,
            large_communities: large,
            unknown,
            partial: 0,
        },
    )
}

fn mp_reach() -> impl Strategy<Value = MpReach> {
    prop_oneof![
        (next_hop6(), nlri6(10)).prop_map(|(next_hop, nlri)| MpReach { next_hop, nlri }),
        // RFC 8950: IPv4 NLRI with an IPv6 next hop
        (next_hop6(), nlri4(10)).prop_map(|(next_hop, nlri)| MpReach { next_hop, nlri }),
        (any::<u32>(), nlri4(10)).prop_map(|(a, nlri)| MpReach {
            next_hop: NextHop::V4(a.into()),
            nlri
        }),
    ]
}

fn mp_unreach() -> impl Strategy<Value = MpUnreach> {
    prop_oneof![nlri4(10), nlri6(10)].prop_map(|withdrawn| MpUnreach { withdrawn })
}

fn update(four_octet: bool) -> impl Strategy<Value = Update> {
    (
        nlri4(10),
        path_attributes(four_octet),
        prop::option::of(mp_reach()),
        prop::option::of(mp_unreach()),
        nlri4(10),
    )
        .prop_map(|(withdrawn, attrs, mp_reach, mp_unreach, nlri)| Update {
            withdrawn,
            attrs,
            mp_reach,
            mp_unreach,
            nlri,
        })
}

fn capability() -> impl Strategy<Value = Capability> {
    let family = (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Family::new(a.into(), s.into()));
    let ext_nh = (any::<u16>(), any::<u16>(), any::<u16>()).prop_map(|(a, s, n)| ExtNextHop {
        nlri_afi: a.into(),
        nlri_safi: s,
        next_hop_afi: n.into(),
    });
    let gr_family =
        (family.clone(), any::<u8>()).prop_map(|(family, flags)| GrFamily { family, flags });
    let gr = (0..16u8, 0..4096u16, prop::collection::vec(gr_family, 0..5)).prop_map(
        |(flags, restart_time, families)| GracefulRestart {
            flags,
            restart_time,
            families,
        },
    );
    // Codes this crate decodes must not appear as `Other`.
    let other_code =
        any::<u8>().prop_filter("decoded code", |c| ![1, 2, 5, 6, 64, 65, 70].contains(c));
    prop_oneof![
        family.prop_map(Capability::MultiProtocol),
        Just(Capability::RouteRefresh),
        Just(Capability::EnhancedRouteRefresh),
        prop::collection::vec(ext_nh, 0..5).prop_map(Capability::ExtendedNextHop),
        Just(Capability::ExtendedMessage),
        gr.prop_map(Capability::GracefulRestart),
        any::<u32>().prop_map(Capability::FourOctetAs),
        (other_code, prop::collection::vec(any::<u8>(), 0..20)).prop_map(|(code, v)| {
            Capability::Other {
                code,
                value: Bytes::from(v),
            }
        }),
    ]
}

fn open() -> impl Strategy<Value = Open> {
    let param = prop_oneof![
        prop::collection::vec(capability(), 0..6).prop_map(OptionalParameter::Capabilities),
        (
            any::<u8>().prop_filter("capabilities", |k| *k != 2),
            prop::collection::vec(any::<u8>(), 0..30)
        )
            .prop_map(|(kind, v)| OptionalParameter::Other {
                kind,
                value: Bytes::from(v)
            }),
    ];
    // Up to 12 parameters: enough to need the RFC 9072 encoding now and then.
    (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        prop::collection::vec(param, 0..12),
    )
        .prop_map(|(my_as, hold_time, id, params)| Open {
            my_as,
            hold_time,
            bgp_id: id.into(),
            params,
        })
}

fn notification() -> impl Strategy<Value = Notification> {
    (
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(c, s, d)| Notification::with_data(NotificationCode::from_raw(c, s), d))
}

fn route_refresh() -> impl Strategy<Value = RouteRefresh> {
    (
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(afi, safi, subtype, orf)| {
            let subtype = RouteRefreshSubtype::from(subtype);
            // BoRR and EoRR carry nothing after SAFI (RFC 7313).
            let demarcation = matches!(
                subtype,
                RouteRefreshSubtype::BeginningOfRouteRefresh
                    | RouteRefreshSubtype::EndOfRouteRefresh
            );
            RouteRefresh {
                family: Family::new(afi.into(), safi.into()),
                subtype,
                orf: if demarcation {
                    Bytes::new()
                } else {
                    Bytes::from(orf)
                },
            }
        })
}

fn message(four_octet: bool) -> impl Strategy<Value = Message> {
    prop_oneof![
        open().prop_map(Message::Open),
        update(four_octet).prop_map(|u| Message::Update(Box::new(u))),
        notification().prop_map(Message::Notification),
        Just(Message::Keepalive),
        route_refresh().prop_map(Message::RouteRefresh),
    ]
}

/// The context the generated messages are valid for.
fn ctx(four_octet: bool) -> DecodeContext {
    DecodeContext {
        four_octet_as: four_octet,
        extended_message: true,
        ..DecodeContext::modern(PeerKind::Internal)
    }
}

fn to_message(r: Received) -> Result<Message, String> {
    Ok(match r {
        Received::Open(m) => Message::Open(m),
        Received::Update(o) => match *o {
            UpdateOutcome::Ok(u) => Message::Update(Box::new(u)),
            other => return Err(format!("{other:#?}")),
        },
        Received::Notification(m) => Message::Notification(m),
        Received::Keepalive => Message::Keepalive,
        Received::RouteRefresh(m) => Message::RouteRefresh(m),
    })
}

// ---------------------------------------------------------------- round trips

fn round_trip(m: &Message, ctx: &DecodeContext) -> Result<(), TestCaseError> {
    let Ok(bytes) = m.to_bytes(ctx) else {
        // Too big for one message (an OPEN over 4096 octets): nothing to round-trip.
        prop_assume!(false);
        unreachable!()
    };
    prop_assert_eq!(bytes.len(), m.buffer_len(ctx));
    let back = decode_message(bytes, ctx).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back = to_message(back).map_err(TestCaseError::fail)?;
    prop_assert_eq!(&back, m);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn messages_round_trip_on_four_octet_sessions(m in message(true)) {
        round_trip(&m, &ctx(true))?;
    }

    #[test]
    fn messages_round_trip_on_two_octet_sessions(m in message(false)) {
        round_trip(&m, &ctx(false))?;
    }

    #[test]
    fn as4_split_then_reconcile_restores_the_path(
        path in as_path(true).prop_map(|p| p.without_confed()),
        agg in prop::option::of(aggregator(true)),
    ) {
        let original = PathAttributes { as_path: Some(path), aggregator: agg, ..Default::default() };
        let mut a = original.clone();
        clos_bgp::wire::attr::as4::split_for_two_octet_peer(&mut a);
        // What a 2-octet session carries: encode and decode with 2-octet AS numbers.
        let ctx2 = ctx(false);
        let u = Update { attrs: a, ..Update::default() };
        let bytes = Message::Update(Box::new(u)).to_bytes(&ctx2).unwrap();
        let Ok(Received::Update(o)) = decode_message(bytes, &ctx2) else {
            return Err(TestCaseError::fail("decode"));
        };
        let mut attrs = o.into_update().unwrap().attrs;
        clos_bgp::wire::attr::as4::reconcile(&mut attrs);
        prop_assert_eq!(attrs, original);
    }
}

// ---------------------------------------------------------------- no panics

fn contexts() -> [DecodeContext; 4] {
    [
        DecodeContext::default(),
        DecodeContext::modern(PeerKind::External),
        DecodeContext {
            four_octet_as: false,
            extended_message: true,
            ..DecodeContext::modern(PeerKind::Internal)
        },
        DecodeContext {
            families: Families::NONE,
            ..DecodeContext::modern(PeerKind::Internal)
        },
    ]
}

/// Runs every decoder on `data`; the property is that this returns.
fn exercise(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    for ctx in contexts() {
        let _ = frame_len(data, &ctx);
        let _ = Header::parse(data, &ctx);
        if let Ok(Received::Update(o)) = decode_message(bytes.clone(), &ctx) {
            // Whatever was accepted must encode, and re-decode to the same thing.
            if let Some(u) = o.update() {
                let m = Message::Update(Box::new(u.clone()));
                if let Ok(again) = m.to_bytes(&ctx) {
                    let r = decode_message(again, &ctx);
                    if let (UpdateOutcome::Ok(_), Ok(Received::Update(o2))) = (&*o, r) {
                        assert_eq!(o2.update(), Some(u), "re-encoding is not a fixed point");
                    }
                }
            }
        }
        let _ = Update::decode(bytes.clone(), &ctx);
        let raw = RawAttribute {
            flags: 0x80,
            code: 14,
            value: bytes.clone(),
        };
        let _ = mp::parse_mp_reach(&raw, &ctx);
        let _ = mp::parse_mp_unreach(&raw, &ctx);
    }
    let _ = Open::parse(bytes.clone());
    let _ = Notification::parse(bytes.clone()).map(|n| n.shutdown_communication().map(str::len));
    let _ = RouteRefresh::parse(bytes.clone());
    let _ = Capability::parse_list(bytes.clone());
    for afi in [Afi::Ipv4, Afi::Ipv6, Afi::L2vpn] {
        let _ = Nlri::parse(afi, bytes.clone()).map(|n| n.iter().count());
        let _ = RawNlriIter::new(afi, data).count();
    }
    if let Ok(v) = UpdateView::parse(bytes.clone()) {
        let _ = v.attributes().count();
        let _ = v.withdrawn().count();
        let _ = v.nlri().count();
        let _ = v.end_of_rib();
    }
    let _ = as_path::AsPath::parse(data, true);
    let _ = as_path::AsPath::parse(data, false);
    let _ = Aggregator::parse(data, true);
    let _ = community::parse_communities(data);
    let _ = community::parse_ext_communities(data);
    let _ = community::parse_large_communities(data);
    let _ = AttrType::from(data.first().copied().unwrap_or_default());
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, xor: u8 },
    Set { at: usize, value: u8 },
    Truncate { at: usize },
    Insert { at: usize, value: u8 },
    Remove { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 1..=255u8).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        (at, any::<u8>()).prop_map(|(at, value)| Mutation::Set { at, value }),
        at.prop_map(|at| Mutation::Truncate { at }),
        (at, any::<u8>()).prop_map(|(at, value)| Mutation::Insert { at, value }),
        at.prop_map(|at| Mutation::Remove { at }),
    ]
}

fn mutate(mut v: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        let n = v.len().max(1);
        match *m {
            Mutation::Flip { at, xor } => {
                if let Some(b) = v.get_mut(at % n) {
                    *b ^= xor;
                }
            }
            Mutation::Set { at, value } => {
                if let Some(b) = v.get_mut(at % n) {
                    *b = value;
                }
            }
            Mutation::Truncate { at } => v.truncate(at % n),
            Mutation::Insert { at, value } => v.insert(at % (v.len() + 1), value),
            Mutation::Remove { at } => {
                if !v.is_empty() {
                    v.remove(at % n);
                }
            }
        }
    }
    v
}

/// Keeps the header's length field in step with the mutated size half of the time, so the
/// mutations reach the body decoders instead of stopping at the framing check.
fn fix_length(mut v: Vec<u8>, fix: bool) -> Vec<u8> {
    if fix && v.len() >= 19 {
        let len = (v.len().min(65535) as u16).to_be_bytes();
        v[16] = len[0];
        v[17] = len[1];
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoders_survive_arbitrary_octets(data in prop::collection::vec(any::<u8>(), 0..300)) {
        exercise(&data);
    }

    #[test]
    fn decoders_survive_arbitrary_bodies_behind_a_valid_header(
        kind in 1..=5u8,
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut v = vec![0xFF; 16];
        v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        v.push(kind);
        v.extend_from_slice(&body);
        exercise(&v);
        exercise(&body);
    }

    #[test]
    fn decoders_survive_mutated_valid_messages(
        m in message(true),
        ms in prop::collection::vec(mutation(), 1..6),
        fix in any::<bool>(),
    ) {
        if let Ok(bytes) = m.to_bytes(&ctx(true)) {
            let v = fix_length(mutate(bytes.to_vec(), &ms), fix);
            exercise(&v);
            if v.len() > 19 {
                exercise(&v[19..]);
            }
        }
    }
}
