//! Writes the seed corpora under `fuzz/seeds/<target>/`: a few small valid inputs per target,
//! encoded by the crates' own encoders. The seeds are committed; run this again
//! (`scripts/fuzz --seeds`) when an encoder or a target's input layout changes.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use clos_bgp::driver::unnumbered::nd::{NdOption, RouterAdvert, fill_checksum};
use clos_bgp::wire::attr::as4::split_for_two_octet_peer;
use clos_bgp::wire::{
    AsPath, Capability, DecodeContext, Family, GrFamily, GracefulRestart, KEEPALIVE, Message, Open,
    PathAttributes, PeerKind, RawAttribute, RouteRefresh, Update,
};
use clos_dataplane::netlink::nexthop::{
    GroupMember, NexthopAttribute, NexthopHeader, NexthopMessage,
};
use clos_dataplane::netlink::uapi::{AF_INET, AF_INET6, AF_UNSPEC, NHA_ENCAP, RTPROT_BGP};
use clos_fuzz::{
    DEFAULT, FIX_HEADER, MODERN, ctx_from_byte, encode, messages, open_full, update_body,
    update_v4, update_v4_over_v6, update_v6,
};
use netlink_packet_core::{DefaultNla, Emitable};

fn write(root: &Path, target: &str, name: &str, parts: &[&[u8]]) {
    let dir = root.join(target);
    fs::create_dir_all(&dir).expect("create seed dir");
    let bytes: Vec<u8> = parts.concat();
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn bgp_message(root: &Path) {
    let modern = ctx_from_byte(MODERN);
    for (name, m) in messages() {
        write(
            root,
            "bgp_message",
            name,
            &[&[MODERN], &encode(&m, &modern)],
        );
    }
    // The same UPDATE on a 2-octet session, with the harness fixing the header.
    let default = ctx_from_byte(DEFAULT);
    let m = Message::Update(Box::new(update_v4()));
    write(
        root,
        "bgp_message",
        "update-v4-2octet",
        &[&[DEFAULT | FIX_HEADER], &encode(&m, &default)],
    );
}

/// An iBGP UPDATE with the attributes only internal peers may send.
fn update_ibgp() -> Update {
    let mut u = update_v4();
    u.attrs.local_pref = Some(200);
    u.attrs.originator_id = Some(Ipv4Addr::new(10, 0, 0, 9));
    u.attrs.cluster_list = vec![Ipv4Addr::new(10, 0, 0, 8)];
    u.attrs.atomic_aggregate = true;
    u.attrs.unknown.push(RawAttribute {
        flags: 0xC0,
        code: 99,
        value: Bytes::from_static(b"xyz"),
    });
    u
}

fn bgp_update(root: &Path) {
    let modern = ctx_from_byte(MODERN);
    let default = ctx_from_byte(DEFAULT);
    let ibgp_sel = MODERN | 0x20;
    let ibgp = ctx_from_byte(ibgp_sel);
    assert_eq!(ibgp.peer, PeerKind::Internal);
    let mut two_octet = PathAttributes {
        as_path: Some(AsPath::sequence([65001, 4_200_000_001])),
        origin: Some(clos_bgp::iana::Origin::Egp),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        ..PathAttributes::default()
    };
    split_for_two_octet_peer(&mut two_octet);
    let as4 = Update {
        attrs: two_octet,
        nlri: update_v4().nlri,
        ..Update::default()
    };
    let eor = Update::end_of_rib(Family::IPV6_UNICAST).expect("eor");
    let seeds: [(&str, u8, &DecodeContext, Update); 6] = [
        ("v4", MODERN, &modern, update_v4()),
        ("v6", MODERN, &modern, update_v6()),
        ("v4-over-v6", MODERN, &modern, update_v4_over_v6()),
        ("ibgp", ibgp_sel, &ibgp, update_ibgp()),
        ("as4-path-2octet", DEFAULT, &default, as4),
        ("eor-v6", MODERN, &modern, eor),
    ];
    for (name, sel, ctx, u) in seeds {
        write(root, "bgp_update", name, &[&[sel], &update_body(&u, ctx)]);
    }
}

fn open_body(o: &Open) -> Vec<u8> {
    let mut out = BytesMut::new();
    o.emit(&mut out).expect("seed encodes");
    out.to_vec()
}

fn bgp_open(root: &Path) {
    let full = open_full(4_200_000_001, Ipv4Addr::new(10, 0, 0, 1));
    write(root, "bgp_open", "open-full", &[&[0], &open_body(&full)]);
    let plain = Open::new(
        65002,
        90,
        Ipv4Addr::new(192, 0, 2, 2),
        vec![Capability::RouteRefresh],
    );
    write(root, "bgp_open", "open-plain", &[&[0], &open_body(&plain)]);
    let mut caps = BytesMut::new();
    for c in full.capabilities() {
        c.emit(&mut caps).expect("capability encodes");
    }
    write(root, "bgp_open", "capabilities", &[&[1], &caps]);
    let gr = Capability::GracefulRestart(GracefulRestart::new(
        true,
        300,
        vec![
            GrFamily::new(Family::IPV4_UNICAST, true),
            GrFamily::new(Family::IPV6_UNICAST, false),
        ],
    ));
    let mut one = BytesMut::new();
    gr.emit(&mut one).expect("capability encodes");
    // Mode 2: code, then the value (without the length octet).
    write(
        root,
        "bgp_open",
        "graceful-restart",
        &[&[2], &one[..1], &one[2..]],
    );
}

fn bgp_session(root: &Path) {
    // What the session negotiates with a peer that sends every capability: 4-octet AS,
    // IPv4 and IPv6, IPv6 next hops for IPv4.
    let negotiated = DecodeContext::modern(PeerKind::External);
    let ka = KEEPALIVE.to_vec();
    let up = encode(&Message::Update(Box::new(update_v4())), &negotiated);
    let up6 = encode(&Message::Update(Box::new(update_v6())), &negotiated);
    let rr = encode(
        &Message::RouteRefresh(RouteRefresh::new(Family::IPV4_UNICAST)),
        &negotiated,
    );
    let notif = encode(&messages()[7].1, &negotiated);
    // Established (bit 5), external peer (bits 0-1 = 1), GR on; peer sends everything.
    write(
        root,
        "bgp_session",
        "established-updates",
        &[&[0x29, 0x3F, 0], &up, &ka, &up6, &rr],
    );
    // Delivered 7 octets at a time, then a NOTIFICATION.
    write(
        root,
        "bgp_session",
        "established-chunked",
        &[&[0x29, 0x3F, 7], &up, &notif],
    );
    // Established on an inbound connection, with a second (colliding) connection.
    write(
        root,
        "bgp_session",
        "established-collision",
        &[&[0x69, 0x3F, 0x80 | 19], &ka, &up],
    );
    // OpenSent: the peer's OPEN and KEEPALIVE come from the fuzzer.
    let open = encode(
        &Message::Open(open_full(65002, Ipv4Addr::new(10, 0, 0, 2))),
        &DecodeContext::default(),
    );
    write(
        root,
        "bgp_session",
        "opensent-open",
        &[&[0x09, 0, 0], &open, &ka],
    );
}

fn router_advert() -> RouterAdvert {
    let mut ra = RouterAdvert::announcement(Some([0x02, 0, 0, 0, 0, 1]));
    ra.cur_hop_limit = 64;
    ra.router_lifetime = 1800;
    // MTU option (type 5) as FRR sends it: reserved 2 octets, MTU 4 octets.
    ra.options.push(NdOption::Other {
        kind: 5,
        data: vec![0, 0, 0, 0, 0x05, 0xdc],
    });
    ra
}

fn nd_ra(root: &Path) {
    let ra = router_advert().to_bytes();
    write(root, "nd_ra", "ra", &[&[0], &ra]);
    write(root, "nd_ra", "ra-wrapped", &[&[2], &ra]);
    write(
        root,
        "nd_ra",
        "announcement",
        &[&[0], &RouterAdvert::announcement(None).to_bytes()],
    );
    // A whole packet, checksum included, for `receive`.
    let src: Ipv6Addr = "fe80::1".parse().expect("addr");
    let dst: Ipv6Addr = "ff02::1".parse().expect("addr");
    let mut packet = vec![0x60, 0, 0, 0];
    packet.extend_from_slice(&u16::try_from(ra.len()).expect("small").to_be_bytes());
    packet.extend_from_slice(&[58, 255]);
    packet.extend_from_slice(&src.octets());
    packet.extend_from_slice(&dst.octets());
    packet.extend_from_slice(&ra);
    fill_checksum(src, dst, &mut packet[40..]);
    write(root, "nd_ra", "packet", &[&[1], &packet]);
}

fn nexthop(msg: &NexthopMessage) -> Vec<u8> {
    let mut out = vec![0u8; msg.buffer_len()];
    msg.emit(&mut out);
    out
}

fn netlink_nexthop(root: &Path) {
    let header = |family| NexthopHeader {
        family,
        scope: 0,
        protocol: RTPROT_BGP,
        flags: 0,
    };
    use NexthopAttribute as A;
    let seeds = [
        (
            "v4-gateway",
            NexthopMessage {
                header: header(AF_INET),
                attributes: vec![
                    A::Id(1),
                    A::Oif(2),
                    A::Gateway(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
                ],
            },
        ),
        (
            "v6-gateway",
            NexthopMessage {
                header: header(AF_INET6),
                attributes: vec![
                    A::Id(2),
                    A::Oif(3),
                    A::Gateway(IpAddr::V6("fe80::1".parse().expect("addr"))),
                ],
            },
        ),
        (
            "group",
            NexthopMessage {
                header: header(AF_UNSPEC),
                attributes: vec![
                    A::Id(10),
                    A::Group(vec![
                        GroupMember::new(1),
                        GroupMember { id: 2, weight: 300 },
                    ]),
                    A::GroupType(0),
                ],
            },
        ),
        (
            "blackhole-other",
            NexthopMessage {
                header: header(AF_INET),
                attributes: vec![
                    A::Id(3),
                    A::Blackhole,
                    A::Other(DefaultNla::new(NHA_ENCAP, vec![1, 2, 3])),
                    A::OpFlags(1),
                ],
            },
        ),
    ];
    for (name, m) in seeds {
        write(root, "netlink_nexthop", name, &[&nexthop(&m)]);
    }
}

/// BFD packets as FRR and BIRD send them (crates/bfd/src/wire.rs has the capture), alone and
/// as a handshake fed to a session: its Down, our Init is answered with its Up.
fn bfd_packet(root: &Path) {
    use clos_bfd::wire::{Auth, ControlPacket};
    use clos_bfd::{Diag, State};
    let packet = |state, your_discr| ControlPacket {
        diag: Diag::None,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        my_discr: 0x6846_9099,
        your_discr,
        desired_min_tx: if state == State::Up { 100_000 } else { 1_000_000 },
        required_min_rx: 100_000,
        required_min_echo_rx: 0,
        auth: None,
    };
    let down = packet(State::Down, 0).to_bytes();
    let up = ControlPacket {
        poll: true,
        ..packet(State::Up, 0x11)
    }
    .to_bytes();
    let auth = ControlPacket {
        auth: Some(Auth {
            auth_type: 1.into(),
            data: b"\x01secret".to_vec(),
        }),
        ..packet(State::Up, 0x11)
    }
    .to_bytes();
    write(root, "bfd_packet", "down", &[&[0], &down]);
    write(root, "bfd_packet", "up-poll", &[&[0], &up]);
    write(root, "bfd_packet", "auth", &[&[0], &auth]);
    let rec = |gap: u8, p: &[u8]| [&[gap, p.len() as u8][..], p].concat();
    write(
        root,
        "bfd_packet",
        "handshake",
        &[&[1], &rec(10, &down), &rec(10, &up), &rec(250, &up)],
    );
}

fn main() {
    let root: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds"));
    bgp_message(&root);
    bgp_update(&root);
    bgp_open(&root);
    bgp_session(&root);
    nd_ra(&root);
    netlink_nexthop(&root);
    bfd_packet(&root);
    println!("seeds written under {}", root.display());
}
