//! Byte-vector tests, checked both ways: decode the octets to the expected value, and encode
//! the value back to the octets. Hand-built vectors follow the RFC layouts field by field;
//! captured vectors come from GoBGP 3.10.0 and BIRD 2.0.12 (commands in the comments).
//!
//! Our encoder is canonical (attributes in type order with MP_REACH_NLRI / MP_UNREACH_NLRI
//! first, Extended Length only when needed). Where a capture differs from that, the test gives
//! the canonical form too and checks that it decodes to the same value.

use std::net::Ipv4Addr;

use bytes::Bytes;
use clos_bgp::iana::{CeaseSubcode, Origin, RouteRefreshSubtype};
use clos_bgp::wire::attr::as4;
use clos_bgp::wire::{
    Aggregator, AsPath, Capability, Community, DecodeContext, ExtCommunity, ExtNextHop, Family,
    LargeCommunity, Message, MpReach, MpUnreach, NextHop, Nlri, Notification, Open, PathAttributes,
    PeerKind, RawAttribute, Received, RouteRefresh, Update, UpdateOutcome, decode_message,
};

fn hex(s: &str) -> Bytes {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let v: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    Bytes::from(v)
}

/// A full message from a type and body parts: marker, length (computed), type, body.
fn msg(kind: u8, parts: &[&[u8]]) -> Bytes {
    let body: Vec<u8> = parts.concat();
    let mut v = vec![0xFF; 16];
    v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    v.push(kind);
    v.extend_from_slice(&body);
    Bytes::from(v)
}

fn to_message(r: Received) -> Message {
    match r {
        Received::Open(m) => Message::Open(m),
        Received::Update(o) => match *o {
            UpdateOutcome::Ok(u) => Message::Update(Box::new(u)),
            other => panic!("UPDATE did not decode cleanly: {other:#?}"),
        },
        Received::Notification(m) => Message::Notification(m),
        Received::Keepalive => Message::Keepalive,
        Received::RouteRefresh(m) => Message::RouteRefresh(m),
    }
}

/// Decodes `wire`, checks it against `expected`, and checks that encoding gives `canonical`.
fn both_ways(wire: &Bytes, canonical: &Bytes, ctx: &DecodeContext, expected: &Message) {
    let got = to_message(decode_message(wire.clone(), ctx).unwrap());
    assert_eq!(&got, expected, "decode");
    assert_eq!(expected.to_bytes(ctx).unwrap(), *canonical, "encode");
    assert_eq!(expected.buffer_len(ctx), canonical.len());
    if canonical != wire {
        let again = to_message(decode_message(canonical.clone(), ctx).unwrap());
        assert_eq!(&again, expected, "canonical form decodes to the same value");
    }
}

fn same(wire: &Bytes, ctx: &DecodeContext, expected: &Message) {
    both_ways(wire, wire, ctx, expected);
}

fn p(s: &str) -> clos_bgp::wire::Prefix {
    s.parse().unwrap()
}

fn ibgp() -> DecodeContext {
    DecodeContext::modern(PeerKind::Internal)
}

fn ebgp() -> DecodeContext {
    DecodeContext::modern(PeerKind::External)
}

// ---------------------------------------------------------------- hand-built vectors

#[test]
fn keepalive() {
    let wire = msg(4, &[]); // marker, length 19, type 4
    same(&wire, &ebgp(), &Message::Keepalive);
}

#[test]
fn open_with_graceful_restart_and_extended_next_hop() {
    let wire = msg(
        1,
        &[
            &[0x04],                                  // version 4
            &[0x5B, 0xA0],                            // my AS: AS_TRANS (23456)
            &[0x00, 0xB4],                            // hold time 180
            &[10, 0, 0, 1],                           // BGP identifier 10.0.0.1
            &[0x20],                                  // optional parameters length 32
            &[0x02, 0x1E],                            // parameter: capabilities, 30 octets
            &[0x01, 0x04, 0, 1, 0, 1],                // MP IPv4 unicast
            &[0x41, 0x04, 0xFA, 0x56, 0xEA, 0x01],    // 4-octet AS 4200000001
            &[0x05, 0x06, 0, 1, 0, 1, 0, 2],          // extended next hop: IPv4/unicast over IPv6
            &[0x40, 0x06, 0x80, 0x5A, 0, 1, 1, 0x80], // GR: R bit, 90 s, IPv4/unicast with F
            &[0x06, 0x00],                            // extended message
        ],
    );
    let open = Open::new(
        4_200_000_001,
        180,
        Ipv4Addr::new(10, 0, 0, 1),
        vec![
            Capability::MultiProtocol(Family::IPV4_UNICAST),
            Capability::FourOctetAs(4_200_000_001),
            Capability::ExtendedNextHop(vec![ExtNextHop::IPV4_UNICAST_OVER_IPV6]),
            Capability::GracefulRestart(clos_bgp::wire::GracefulRestart::new(
                true,
                90,
                vec![clos_bgp::wire::GrFamily::new(Family::IPV4_UNICAST, true)],
            )),
            Capability::ExtendedMessage,
        ],
    );
    same(&wire, &DecodeContext::default(), &Message::Open(open));
}

#[test]
fn update_ipv4_with_every_classic_attribute() {
    let wire = msg(
        2,
        &[
            &[0x00, 0x04, 0x18, 10, 0, 0], // withdrawn: length 4, 10.0.0.0/24
            &[0x00, 0x78],                 // total path attribute length 120
            &[0x40, 0x01, 0x01, 0x00],     // ORIGIN IGP
            // AS_PATH: AS_SEQUENCE of 3: 65001 65002 4200000001 (4-octet session)
            &[
                0x40, 0x02, 0x0E, 0x02, 0x03, 0, 0, 0xFD, 0xE9, 0, 0, 0xFD, 0xEA, 0xFA, 0x56, 0xEA,
                0x01,
            ],
            &[0x40, 0x03, 0x04, 192, 0, 2, 1], // NEXT_HOP 192.0.2.1
            &[0x80, 0x04, 0x04, 0, 0, 0, 100], // MULTI_EXIT_DISC 100
            &[0x40, 0x05, 0x04, 0, 0, 0, 200], // LOCAL_PREF 200
            &[0x40, 0x06, 0x00],               // ATOMIC_AGGREGATE
            &[0xC0, 0x07, 0x08, 0, 0, 0xFD, 0xE9, 192, 0, 2, 9], // AGGREGATOR 65001 192.0.2.9
            // COMMUNITIES: NO_EXPORT, GRACEFUL_SHUTDOWN (65535:0), BLACKHOLE (65535:666)
            &[
                0xC0, 0x08, 0x0C, 0xFF, 0xFF, 0xFF, 0x01, 0xFF, 0xFF, 0, 0, 0xFF, 0xFF, 0x02, 0x9A,
            ],
            &[0x80, 0x09, 0x04, 10, 0, 0, 1], // ORIGINATOR_ID 10.0.0.1
            &[0x80, 0x0A, 0x08, 10, 0, 0, 2, 10, 0, 0, 3], // CLUSTER_LIST 10.0.0.2 10.0.0.3
            // EXTENDED_COMMUNITIES: route target 65001:100
            &[0xC0, 0x10, 0x08, 0x00, 0x02, 0xFD, 0xE9, 0, 0, 0, 100],
            // LARGE_COMMUNITIES 65001:1:2
            &[0xC0, 0x20, 0x0C, 0, 0, 0xFD, 0xE9, 0, 0, 0, 1, 0, 0, 0, 2],
            // unknown type 99, optional transitive with Partial: kept as is
            &[0xE0, 0x63, 0x02, 0xAB, 0xCD],
            &[0x18, 198, 51, 100],   // NLRI 198.51.100.0/24
            &[0x20, 192, 0, 2, 128], // NLRI 192.0.2.128/32
        ],
    );
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence([65001, 65002, 4_200_000_001])),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        med: Some(100),
        local_pref: Some(200),
        atomic_aggregate: true,
        aggregator: Some(Aggregator {
            asn: 65001,
            address: Ipv4Addr::new(192, 0, 2, 9),
        }),
        communities: vec![
            Community::NO_EXPORT,
            Community::GRACEFUL_SHUTDOWN,
            Community::BLACKHOLE,
        ],
        originator_id: Some(Ipv4Addr::new(10, 0, 0, 1)),
        cluster_list: vec![Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)],
        extended_communities: vec![ExtCommunity([0, 2, 0xFD, 0xE9, 0, 0, 0, 100])],
        large_communities: vec![LargeCommunity::new(65001, 1, 2)],
        unknown: vec![RawAttribute {
            flags: 0xE0,
            code: 99,
            value: Bytes::from_static(&[0xAB, 0xCD]),
        }],
        ..Default::default()
    };
    let update = Update {
        withdrawn: Nlri::from_prefixes(clos_bgp::iana::Afi::Ipv4, [p("10.0.0.0/24")]).unwrap(),
        attrs,
        nlri: Nlri::from_prefixes(
            clos_bgp::iana::Afi::Ipv4,
            [p("198.51.100.0/24"), p("192.0.2.128/32")],
        )
        .unwrap(),
        ..Update::default()
    };
    same(&wire, &ibgp(), &Message::Update(Box::new(update)));
}

#[test]
fn update_ipv6_mp_reach_and_unreach() {
    let wire = msg(
        2,
        &[
            &[0x00, 0x00], // no withdrawn routes
            &[0x00, 0x5A], // total path attribute length 90
            // MP_REACH_NLRI, 61 octets: AFI 2, SAFI 1, next hop length 32
            &[0x80, 0x0E, 0x3D, 0x00, 0x02, 0x01, 0x20],
            &[
                0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
            ], // 2001:db8::1
            &[0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01], // fe80::1
            &[0x00],                                                    // reserved
            &[0x30, 0x20, 0x01, 0x0D, 0xB8, 0x00, 0x01],                // 2001:db8:1::/48
            &[
                0x80, 0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
            ], // 2001:db8::1/128
            // MP_UNREACH_NLRI, 10 octets: AFI 2, SAFI 1, 2001:db8:2::/48
            &[
                0x80, 0x0F, 0x0A, 0x00, 0x02, 0x01, 0x30, 0x20, 0x01, 0x0D, 0xB8, 0x00, 0x02,
            ],
            &[0x40, 0x01, 0x01, 0x02], // ORIGIN INCOMPLETE
            &[0x40, 0x02, 0x06, 0x02, 0x01, 0, 0, 0xFD, 0xE9], // AS_PATH 65001
        ],
    );
    let update = Update {
        mp_reach: Some(MpReach {
            next_hop: NextHop::V6 {
                global: "2001:db8::1".parse().unwrap(),
                link_local: Some("fe80::1".parse().unwrap()),
            },
            nlri: Nlri::from_prefixes(
                clos_bgp::iana::Afi::Ipv6,
                [p("2001:db8:1::/48"), p("2001:db8::1/128")],
            )
            .unwrap(),
        }),
        mp_unreach: Some(MpUnreach {
            withdrawn: Nlri::from_prefixes(clos_bgp::iana::Afi::Ipv6, [p("2001:db8:2::/48")])
                .unwrap(),
        }),
        attrs: PathAttributes {
            origin: Some(Origin::Incomplete),
            as_path: Some(AsPath::sequence([65001])),
            ..Default::default()
        },
        ..Update::default()
    };
    same(&wire, &ebgp(), &Message::Update(Box::new(update)));
}

#[test]
fn end_of_rib_markers() {
    // IPv4 unicast: withdrawn length 0, attribute length 0
    let v4 = msg(2, &[&[0, 0, 0, 0]]);
    same(
        &v4,
        &ebgp(),
        &Message::Update(Box::new(Update::end_of_rib(Family::IPV4_UNICAST).unwrap())),
    );
    // IPv6 unicast: only an MP_UNREACH_NLRI with AFI 2, SAFI 1 and no prefixes
    let v6 = msg(2, &[&[0, 0, 0, 6], &[0x80, 0x0F, 0x03, 0x00, 0x02, 0x01]]);
    let eor = Update::end_of_rib(Family::IPV6_UNICAST).unwrap();
    assert_eq!(eor.end_of_rib_family(), Some(Family::IPV6_UNICAST));
    same(&v6, &ebgp(), &Message::Update(Box::new(eor)));
}

#[test]
fn notification_with_shutdown_communication() {
    // Cease (6) / Administrative Shutdown (2), communication of 11 octets
    let wire = msg(3, &[&[0x06, 0x02, 0x0B], b"maintenance"]);
    let n = Notification::shutdown(CeaseSubcode::AdministrativeShutdown, "maintenance");
    same(&wire, &ebgp(), &Message::Notification(n));
}

#[test]
fn route_refresh() {
    // AFI 2, subtype 0 (normal), SAFI 1
    let wire = msg(5, &[&[0x00, 0x02, 0x00, 0x01]]);
    same(
        &wire,
        &ebgp(),
        &Message::RouteRefresh(RouteRefresh::new(Family::IPV6_UNICAST)),
    );
    // AFI 1, subtype 2 (End of Route Refresh, RFC 7313), SAFI 1
    let wire = msg(5, &[&[0x00, 0x01, 0x02, 0x01]]);
    let rr = RouteRefresh {
        subtype: RouteRefreshSubtype::EndOfRouteRefresh,
        ..RouteRefresh::new(Family::IPV4_UNICAST)
    };
    same(&wire, &ebgp(), &Message::RouteRefresh(rr));
}

// ---------------------------------------------------------------- GoBGP 3.10.0 captures
//
// gobgpd -f gobgp.toml (global AS 65001, router-id 192.0.2.1, one neighbor 127.0.0.1 AS 65002
// with ipv4-unicast and ipv6-unicast) against a scripted passive peer that records every
// message, then:
//   gobgp global rib add -a ipv4 198.51.100.0/24 nexthop 192.0.2.1 \
//       community 65001:100,no-export large-community 65001:1:2 med 10 origin igp
//   gobgp global rib add -a ipv6 2001:db8:1::/48 nexthop 2001:db8::1 origin igp
//   gobgp global rib del -a ipv4 198.51.100.0/24
//   gobgp global rib del -a ipv6 2001:db8:1::/48
//   gobgp neighbor 127.0.0.1 disable

#[test]
fn gobgp_open() {
    let wire = hex(
        "ffffffffffffffffffffffffffffffff 0041 01 04 fde9 005a c0000201 24
        02 22  0200  4904 02766d00  0104 00010001  0104 00020001  4104 0000fde9  0506 000100010002",
    );
    let open = Open::new(
        65001,
        90,
        Ipv4Addr::new(192, 0, 2, 1),
        vec![
            Capability::RouteRefresh,
            // FQDN capability (code 73): hostname "vm", no domain; kept as unknown
            Capability::Other {
                code: 73,
                value: hex("02766d00"),
            },
            Capability::MultiProtocol(Family::IPV4_UNICAST),
            Capability::MultiProtocol(Family::IPV6_UNICAST),
            Capability::FourOctetAs(65001),
            Capability::ExtendedNextHop(vec![ExtNextHop::IPV4_UNICAST_OVER_IPV6]),
        ],
    );
    same(&wire, &DecodeContext::default(), &Message::Open(open));
}

#[test]
fn gobgp_ipv4_update() {
    let wire = hex("ffffffffffffffffffffffffffffffff 0050 02 0000 0035
        40010100  400206 02010000fde9  400304 c0000201  800404 0000000a
        c00808 fde90064 ffffff01  c0200c 0000fde9 00000001 00000002  18c63364");
    let update = Update {
        attrs: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence([65001])),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            med: Some(10),
            communities: vec![Community::new(65001, 100), Community::NO_EXPORT],
            large_communities: vec![LargeCommunity::new(65001, 1, 2)],
            ..Default::default()
        },
        nlri: Nlri::from_v4(["198.51.100.0/24".parse().unwrap()]),
        ..Update::default()
    };
    same(&wire, &ebgp(), &Message::Update(Box::new(update)));
}

#[test]
fn gobgp_ipv6_update_reordered_canonically() {
    // GoBGP puts MP_REACH_NLRI last; we write it first (RFC 7606 section 5.1).
    let wire = hex("ffffffffffffffffffffffffffffffff 0043 02 0000 002c
        40010100  400206 02010000fde9
        800e1c 0002 01 10 20010db8000000000000000000000001 00 30 20010db80001");
    let canonical = hex("ffffffffffffffffffffffffffffffff 0043 02 0000 002c
        800e1c 0002 01 10 20010db8000000000000000000000001 00 30 20010db80001
        40010100  400206 02010000fde9");
    let update = Update {
        attrs: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence([65001])),
            ..Default::default()
        },
        mp_reach: Some(MpReach {
            next_hop: NextHop::V6 {
                global: "2001:db8::1".parse().unwrap(),
                link_local: None,
            },
            nlri: Nlri::from_v6(["2001:db8:1::/48".parse().unwrap()]),
        }),
        ..Update::default()
    };
    both_ways(
        &wire,
        &canonical,
        &ebgp(),
        &Message::Update(Box::new(update)),
    );
}

#[test]
fn gobgp_withdrawals() {
    let v4 = hex("ffffffffffffffffffffffffffffffff 001b 02 0004 18c63364 0000");
    let u = Update {
        withdrawn: Nlri::from_v4(["198.51.100.0/24".parse().unwrap()]),
        ..Update::default()
    };
    same(&v4, &ebgp(), &Message::Update(Box::new(u)));
    let v6 =
        hex("ffffffffffffffffffffffffffffffff 0024 02 0000 000d 800f0a 0002 01 30 20010db80001");
    let u = Update {
        mp_unreach: Some(MpUnreach {
            withdrawn: Nlri::from_v6(["2001:db8:1::/48".parse().unwrap()]),
        }),
        ..Update::default()
    };
    same(&v6, &ebgp(), &Message::Update(Box::new(u)));
}

#[test]
fn gobgp_cease() {
    // Cease / Administrative Shutdown, no data
    let wire = hex("ffffffffffffffffffffffffffffffff 0015 03 0602");
    let n = Notification::new(clos_bgp::wire::NotificationCode::Cease(
        CeaseSubcode::AdministrativeShutdown,
    ));
    same(&wire, &ebgp(), &Message::Notification(n));
}

// Same setup with global AS 4200000000 and a peer that does not send the 4-octet AS
// capability, then:
//   gobgp global rib add -a ipv4 198.51.100.0/24 nexthop 192.0.2.1 aspath 4200000001,65010 \
//       origin incomplete aggregator 4200000001:192.0.2.9

#[test]
fn gobgp_two_octet_session_with_as4_attributes() {
    let open = hex(
        "ffffffffffffffffffffffffffffffff 0041 01 04 5ba0 005a c0000201 24
        02 22  0200  4904 02766d00  0104 00010001  0104 00020001  4104 fa56ea00  0506 000100010002",
    );
    let Ok(Received::Open(o)) = decode_message(open, &DecodeContext::default()) else {
        panic!()
    };
    assert_eq!((o.my_as, o.asn()), (23456, 4_200_000_000));

    let ctx = DecodeContext {
        four_octet_as: false,
        ..ebgp()
    };
    let origin = "40010102";
    let as_path = "400208 0203 5ba0 5ba0 fdf2"; // AS_TRANS AS_TRANS 65010
    let aggregator = "c00706 5ba0 c0000209"; // AS_TRANS 192.0.2.9
    let next_hop = "400304 c0000201";
    let as4_path = "c0110e 0203 fa56ea00 fa56ea01 0000fdf2";
    let as4_aggregator = "c01208 fa56ea01 c0000209";
    let head = "ffffffffffffffffffffffffffffffff 0056 02 0000 003b";
    let nlri = "18c63364";
    // GoBGP writes AGGREGATOR before NEXT_HOP; we write type order.
    let wire = hex(&[
        head,
        origin,
        as_path,
        aggregator,
        next_hop,
        as4_path,
        as4_aggregator,
        nlri,
    ]
    .concat());
    let canonical = hex(&[
        head,
        origin,
        as_path,
        next_hop,
        aggregator,
        as4_path,
        as4_aggregator,
        nlri,
    ]
    .concat());
    let t = u32::from(clos_bgp::iana::AS_TRANS);
    let agg = |asn| Aggregator {
        asn,
        address: Ipv4Addr::new(192, 0, 2, 9),
    };
    let received = Update {
        attrs: PathAttributes {
            origin: Some(Origin::Incomplete),
            as_path: Some(AsPath::sequence([t, t, 65010])),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            aggregator: Some(agg(t)),
            as4_path: Some(AsPath::sequence([4_200_000_000, 4_200_000_001, 65010])),
            as4_aggregator: Some(agg(4_200_000_001)),
            ..Default::default()
        },
        nlri: Nlri::from_v4(["198.51.100.0/24".parse().unwrap()]),
        ..Update::default()
    };
    both_ways(
        &wire,
        &canonical,
        &ctx,
        &Message::Update(Box::new(received.clone())),
    );

    // RFC 6793 4.2.3: the real path and aggregator.
    let mut attrs = received.attrs;
    as4::reconcile(&mut attrs);
    assert_eq!(
        attrs.as_path,
        Some(AsPath::sequence([4_200_000_000, 4_200_000_001, 65010]))
    );
    assert_eq!(attrs.aggregator, Some(agg(4_200_000_001)));
    assert_eq!((attrs.as4_path, attrs.as4_aggregator), (None, None));
}

// ---------------------------------------------------------------- BIRD 2.0.12 captures
//
// bird -c bird.conf: router id 192.0.2.3, static IPv4 routes 203.0.113.0/24 and 10.1.0.0/16
// (the latter with bgp_community.add((65535,0)) and bgp_large_community.add((65003,7,8))),
// static IPv6 route 2001:db8:5::/48, and
//   protocol bgp peer1 { local ::1 as 65003; neighbor ::1 port 17902 as 65002; multihop;
//     ipv4 { export all; extended next hop on; next hop address 2001:db8::3; };
//     ipv6 { export all; next hop address 2001:db8::3; }; }
// against the scripted peer (which offers graceful restart), then
//   birdc disable peer1 '"going down for maintenance"'

#[test]
fn bird_open() {
    let wire = hex(
        "ffffffffffffffffffffffffffffffff 0043 01 04 fdeb 00f0 c0000203 26
        02 24  0104 00010001  0104 00020001  0200  0506 000100010002  4002 0078
        4104 0000fdeb  4600  4700",
    );
    let open = Open::new(
        65003,
        240,
        Ipv4Addr::new(192, 0, 2, 3),
        vec![
            Capability::MultiProtocol(Family::IPV4_UNICAST),
            Capability::MultiProtocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::ExtendedNextHop(vec![ExtNextHop::IPV4_UNICAST_OVER_IPV6]),
            // graceful restart: no flags, restart time 120, no families
            Capability::GracefulRestart(clos_bgp::wire::GracefulRestart::new(false, 120, vec![])),
            Capability::FourOctetAs(65003),
            Capability::EnhancedRouteRefresh,
            // long-lived graceful restart (71), empty: kept as unknown
            Capability::Other {
                code: 71,
                value: Bytes::new(),
            },
        ],
    );
    same(&wire, &DecodeContext::default(), &Message::Open(open));
}

#[test]
fn bird_rfc8950_update_with_graceful_shutdown() {
    // BIRD sets Extended Length on MP_REACH_NLRI (flags 0x90); we only set it when needed.
    let wire = hex("ffffffffffffffffffffffffffffffff 0056 02 0000 003f
        900e0018 0001 01 10 20010db8000000000000000000000003 00 10 0a01
        40010100  400206 02010000fdeb  c00804 ffff0000  c0200c 0000fdeb 00000007 00000008");
    let canonical = hex("ffffffffffffffffffffffffffffffff 0055 02 0000 003e
        800e18 0001 01 10 20010db8000000000000000000000003 00 10 0a01
        40010100  400206 02010000fdeb  c00804 ffff0000  c0200c 0000fdeb 00000007 00000008");
    let update = Update {
        mp_reach: Some(MpReach {
            next_hop: NextHop::V6 {
                global: "2001:db8::3".parse().unwrap(),
                link_local: None,
            },
            nlri: Nlri::from_v4(["10.1.0.0/16".parse().unwrap()]),
        }),
        attrs: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence([65003])),
            communities: vec![Community::GRACEFUL_SHUTDOWN],
            large_communities: vec![LargeCommunity::new(65003, 7, 8)],
            ..Default::default()
        },
        ..Update::default()
    };
    both_ways(
        &wire,
        &canonical,
        &ebgp(),
        &Message::Update(Box::new(update)),
    );
}

#[test]
fn bird_ipv6_update() {
    let wire = hex("ffffffffffffffffffffffffffffffff 0044 02 0000 002d
        900e001c 0002 01 10 20010db8000000000000000000000003 00 30 20010db80005
        40010100  400206 02010000fdeb");
    let canonical = hex("ffffffffffffffffffffffffffffffff 0043 02 0000 002c
        800e1c 0002 01 10 20010db8000000000000000000000003 00 30 20010db80005
        40010100  400206 02010000fdeb");
    let update = Update {
        mp_reach: Some(MpReach {
            next_hop: NextHop::V6 {
                global: "2001:db8::3".parse().unwrap(),
                link_local: None,
            },
            nlri: Nlri::from_v6(["2001:db8:5::/48".parse().unwrap()]),
        }),
        attrs: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence([65003])),
            ..Default::default()
        },
        ..Update::default()
    };
    both_ways(
        &wire,
        &canonical,
        &ebgp(),
        &Message::Update(Box::new(update)),
    );
}

#[test]
fn bird_end_of_rib_markers() {
    let v4 = hex("ffffffffffffffffffffffffffffffff 0017 02 0000 0000");
    same(
        &v4,
        &ebgp(),
        &Message::Update(Box::new(Update::end_of_rib(Family::IPV4_UNICAST).unwrap())),
    );
    let v6 = hex("ffffffffffffffffffffffffffffffff 001d 02 0000 0006 800f03 000201");
    same(
        &v6,
        &ebgp(),
        &Message::Update(Box::new(Update::end_of_rib(Family::IPV6_UNICAST).unwrap())),
    );
}

#[test]
fn bird_ipv4_withdrawal_in_mp_unreach() {
    // Seen when BIRD could not export the routes: IPv4 withdrawals in MP_UNREACH_NLRI with
    // Extended Length set, 10.1.0.0/16 and 203.0.113.0/24.
    let wire =
        hex("ffffffffffffffffffffffffffffffff 0025 02 0000 000e 900f000a 0001 01 100a01 18cb0071");
    let canonical =
        hex("ffffffffffffffffffffffffffffffff 0024 02 0000 000d 800f0a 0001 01 100a01 18cb0071");
    let u = Update {
        mp_unreach: Some(MpUnreach {
            withdrawn: Nlri::from_v4([
                "10.1.0.0/16".parse().unwrap(),
                "203.0.113.0/24".parse().unwrap(),
            ]),
        }),
        ..Update::default()
    };
    both_ways(&wire, &canonical, &ebgp(), &Message::Update(Box::new(u)));
}

#[test]
fn bird_shutdown_communication() {
    let wire = hex("ffffffffffffffffffffffffffffffff 0030 03 0602 1a
        676f696e6720646f776e20666f72206d61696e74656e616e6365");
    let Ok(Received::Notification(n)) = decode_message(wire.clone(), &ebgp()) else {
        panic!()
    };
    assert_eq!(
        n.shutdown_communication(),
        Some("going down for maintenance")
    );
    let built = Notification::shutdown(
        CeaseSubcode::AdministrativeShutdown,
        "going down for maintenance",
    );
    same(&wire, &ebgp(), &Message::Notification(built));
}
