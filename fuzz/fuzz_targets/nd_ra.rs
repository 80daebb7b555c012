//! Router Advertisements (unnumbered BGP's neighbour discovery): `RouterAdvert::parse`,
//! `NdOption::parse_all`, and the packet-level entry point `receive`
//! (`clos_bgp::driver::unnumbered`), which validates the IPv6 and ICMPv6 headers first.
//!
//! Input: one mode octet, then:
//! - mode 0 (`% 3`): an ICMPv6 message for `RouterAdvert::parse`;
//! - mode 1: a whole IPv6 packet for `receive`;
//! - mode 2: an ICMPv6 message that the harness wraps in a valid IPv6 header (fe80::1 to
//!   ff02::1, hop limit 255) with the checksum filled in, for `receive`.
//!
//! Checks, besides "never panics" (nd.rs: "Nothing here panics on any input"):
//! - a parsed advertisement re-encodes to the same octets after the type, code and checksum
//!   (nd.rs: "a parsed advertisement re-encodes to the same octets"; `emit` writes type 134,
//!   code 0 and a zero checksum) and parses back to the same value;
//! - in mode 2, `receive` returns exactly what `RouterAdvert::parse` does for a code-0 RA.
#![no_main]

use std::net::Ipv6Addr;

use clos_bgp::driver::unnumbered::nd::{NdOption, RouterAdvert, fill_checksum};
use clos_bgp::driver::unnumbered::{NdMessage, receive};
use libfuzzer_sys::fuzz_target;

fn parse_round_trip(msg: &[u8]) -> Option<RouterAdvert> {
    let ra = RouterAdvert::parse(msg).ok()?;
    let out = ra.to_bytes();
    assert_eq!(out.len(), ra.buffer_len());
    assert_eq!(out.len(), msg.len(), "RA re-encodes to another length");
    assert_eq!(&out[4..], &msg[4..], "RA does not re-encode to its octets");
    assert_eq!(RouterAdvert::parse(&out).ok().as_ref(), Some(&ra));
    let _ = (ra.managed(), ra.other_config(), ra.source_link_layer());
    Some(ra)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            parse_round_trip(rest);
            if let Ok(opts) = NdOption::parse_all(rest) {
                let total: usize = opts.iter().map(NdOption::buffer_len).sum();
                assert_eq!(total, rest.len(), "options re-encode to another length");
            }
        }
        1 => {
            if let Ok(NdMessage::RouterAdvert { advert, .. }) = receive(rest) {
                // What `receive` accepted, `parse` accepts alone (the ICMPv6 message is the
                // payload its length field announces; link-layer padding may follow).
                let len = usize::from(u16::from_be_bytes([rest[4], rest[5]]));
                let icmp = &rest[40..40 + len];
                assert_eq!(RouterAdvert::parse(icmp).ok(), Some(advert));
            }
        }
        _ => {
            let Ok(len) = u16::try_from(rest.len()) else {
                return;
            };
            let src: Ipv6Addr = "fe80::1".parse().expect("addr");
            let dst: Ipv6Addr = "ff02::1".parse().expect("addr");
            let mut packet = Vec::with_capacity(40 + rest.len());
            packet.extend_from_slice(&[0x60, 0, 0, 0]);
            packet.extend_from_slice(&len.to_be_bytes());
            packet.extend_from_slice(&[58, 255]);
            packet.extend_from_slice(&src.octets());
            packet.extend_from_slice(&dst.octets());
            packet.extend_from_slice(rest);
            fill_checksum(src, dst, &mut packet[40..]);
            let received = receive(&packet);
            let is_ra = rest.len() >= 2 && rest[0] == 134 && rest[1] == 0;
            let icmp = &packet[40..];
            match (is_ra, received) {
                (true, Ok(NdMessage::RouterAdvert { source, advert })) => {
                    assert_eq!(source, src);
                    assert_eq!(parse_round_trip(icmp), Some(advert));
                }
                (true, Err(_)) => {
                    assert!(RouterAdvert::parse(icmp).is_err(), "a valid RA was ignored")
                }
                (true, Ok(other)) => panic!("RA received as {other:?}"),
                (false, Ok(NdMessage::RouterAdvert { .. })) => panic!("not an RA, received as one"),
                (false, _) => {}
            }
        }
    }
});
