//! Helpers shared by the fuzz targets and the seed generator (`examples/seeds.rs`).
//!
//! Input layout conventions used by the targets:
//! - BGP targets: the first octet selects the [`DecodeContext`] ([`ctx_from_byte`]); the rest
//!   is the message (or body) to decode.
//! - `bgp_session`: see `fuzz_targets/bgp_session.rs`.
//! - `nd_ra`: the first octet selects the mode (direct parse, raw packet, packet with a
//!   harness-fixed checksum).

use std::net::Ipv4Addr;
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use clos_bgp::iana::Origin;
use clos_bgp::wire::{
    AsPath, Capability, Community, DecodeContext, ExtNextHop, Families, Family, GrFamily,
    GracefulRestart, LargeCommunity, Message, MpReach, MpUnreach, NextHop, Nlri, Notification,
    NotificationCode, Open, PathAttributes, PeerKind, RouteRefresh, Update,
};

/// Bit 6 of the context octet: the harness rewrites marker and length of the message so that
/// the header is valid and the fuzzer explores the body.
pub const FIX_HEADER: u8 = 0x40;

/// A decoding context from one octet, covering every combination that changes decoding:
/// bit 0 four-octet AS, bit 1 extended messages, bits 2-3 MP families, bit 4 RFC 8950 IPv6
/// next hops for IPv4, bit 5 internal peer. Bits 6-7 are left to the targets.
pub fn ctx_from_byte(b: u8) -> DecodeContext {
    let families = match (b >> 2) & 3 {
        0 => Families::NONE,
        1 => Families::IPV4_UNICAST,
        2 => Families::IPV6_UNICAST,
        _ => Families::ALL,
    };
    DecodeContext {
        four_octet_as: b & 1 != 0,
        extended_message: b & 2 != 0,
        families,
        extended_next_hop: if b & 0x10 != 0 {
            Families::IPV4_UNICAST
        } else {
            Families::NONE
        },
        peer: if b & 0x20 != 0 {
            PeerKind::Internal
        } else {
            PeerKind::External
        },
    }
}

/// The context octet of [`DecodeContext::modern`] with external peers.
pub const MODERN: u8 = 0b0001_1101;
/// The context octet of [`DecodeContext::default`].
pub const DEFAULT: u8 = 0b0000_0100;

/// Whether `CLOS_FUZZ_STRICT` is set (to anything but `0`): the targets then stop tolerating the
/// known bugs listed in `fuzz/artifacts-found/README.md`, so their reproducers crash again.
pub fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("CLOS_FUZZ_STRICT").is_some_and(|v| v != "0"))
}

/// Writes a valid marker and length into `msg` (a whole BGP message); leaves the type alone.
pub fn fix_header(msg: &mut [u8]) {
    if msg.len() < 19 {
        return;
    }
    msg[..16].fill(0xFF);
    let len = u16::try_from(msg.len()).unwrap_or(u16::MAX);
    msg[16..18].copy_from_slice(&len.to_be_bytes());
}

fn p4(s: &str) -> clos_bgp::wire::Prefix4 {
    s.parse().expect("valid prefix")
}

fn p6(s: &str) -> clos_bgp::wire::Prefix6 {
    s.parse().expect("valid prefix")
}

/// A representative UPDATE: classic IPv4 NLRI with every common attribute.
pub fn update_v4() -> Update {
    Update {
        withdrawn: Nlri::from_v4([p4("192.0.2.0/24")]),
        attrs: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence([65001, 65002])),
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
            med: Some(10),
            communities: vec![Community::new(65001, 100)],
            large_communities: vec![LargeCommunity::new(65001, 1, 2)],
            ..PathAttributes::default()
        },
        nlri: Nlri::from_v4([p4("10.1.0.0/16"), p4("10.2.3.0/24"), p4("0.0.0.0/0")]),
        ..Update::default()
    }
}

/// An UPDATE with IPv6 routes in MP_REACH_NLRI and MP_UNREACH_NLRI.
pub fn update_v6() -> Update {
    Update {
        attrs: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence([4_200_000_001])),
            ..PathAttributes::default()
        },
        mp_reach: Some(MpReach {
            next_hop: NextHop::V6 {
                global: "2001:db8::1".parse().expect("addr"),
                link_local: Some("fe80::1".parse().expect("addr")),
            },
            nlri: Nlri::from_v6([p6("2001:db8:1::/48"), p6("2001:db8:2::1/128")]),
        }),
        mp_unreach: Some(MpUnreach {
            withdrawn: Nlri::from_v6([p6("2001:db8:ff::/64")]),
        }),
        ..Update::default()
    }
}

/// IPv4 routes with an IPv6 next hop (RFC 8950, BGP unnumbered).
pub fn update_v4_over_v6() -> Update {
    Update {
        attrs: PathAttributes {
            origin: Some(Origin::Incomplete),
            as_path: Some(AsPath::sequence([65010])),
            ..PathAttributes::default()
        },
        mp_reach: Some(MpReach {
            next_hop: NextHop::V6 {
                global: "fe80::2".parse().expect("addr"),
                link_local: None,
            },
            nlri: Nlri::from_v4([p4("10.9.0.0/16")]),
        }),
        ..Update::default()
    }
}

/// An OPEN as a modern speaker sends it (every capability we know).
pub fn open_full(asn: u32, id: Ipv4Addr) -> Open {
    Open::new(
        asn,
        9,
        id,
        vec![
            Capability::MultiProtocol(Family::IPV4_UNICAST),
            Capability::MultiProtocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::EnhancedRouteRefresh,
            Capability::ExtendedNextHop(vec![ExtNextHop::IPV4_UNICAST_OVER_IPV6]),
            Capability::ExtendedMessage,
            Capability::GracefulRestart(GracefulRestart::new(
                false,
                120,
                vec![GrFamily::new(Family::IPV4_UNICAST, true)],
            )),
            Capability::Other {
                code: 73,
                value: Bytes::from_static(b"\x04host\x00"),
            },
        ],
    )
}

/// Encodes a message with `ctx`; panics only on a bug in the seed itself.
pub fn encode(m: &Message, ctx: &DecodeContext) -> Vec<u8> {
    m.to_bytes(ctx).expect("seed encodes").to_vec()
}

/// Every message type, encoded for the modern context.
pub fn messages() -> Vec<(&'static str, Message)> {
    vec![
        (
            "open",
            Message::Open(open_full(65001, Ipv4Addr::new(10, 0, 0, 1))),
        ),
        (
            "open-plain",
            Message::Open(Open::new(65002, 180, Ipv4Addr::new(192, 0, 2, 2), vec![])),
        ),
        ("update-v4", Message::Update(Box::new(update_v4()))),
        ("update-v6", Message::Update(Box::new(update_v6()))),
        (
            "update-v4-over-v6",
            Message::Update(Box::new(update_v4_over_v6())),
        ),
        (
            "eor-v6",
            Message::Update(Box::new(
                Update::end_of_rib(Family::IPV6_UNICAST).expect("eor"),
            )),
        ),
        ("keepalive", Message::Keepalive),
        (
            "notification",
            Message::Notification(Notification::shutdown(
                clos_bgp::iana::CeaseSubcode::AdministrativeShutdown,
                "maintenance",
            )),
        ),
        (
            "notification-hold",
            Message::Notification(Notification::new(NotificationCode::HoldTimerExpired(0))),
        ),
        (
            "route-refresh",
            Message::RouteRefresh(RouteRefresh::new(Family::IPV6_UNICAST)),
        ),
    ]
}

/// The body of an encoded UPDATE (without its header).
pub fn update_body(u: &Update, ctx: &DecodeContext) -> Vec<u8> {
    let mut out = BytesMut::new();
    u.emit(ctx, &mut out).expect("seed encodes");
    out.to_vec()
}
