//! OPEN bodies and capabilities: `Open::parse`, `Capability::parse_list`, `Capability::parse`,
//! then validation and negotiation of whatever parsed.
//!
//! Input: one mode octet, then the octets to decode. Mode 0 (`& 3`): an OPEN body (without
//! header); 1: the value of a Capabilities optional parameter; 2: one capability value whose
//! code is the next octet.
//!
//! Checks, besides "never panics": what parsed re-encodes and parses back to an equal value
//! (capability.rs: unknown capabilities are reproduced, reserved fields sent as zero, so the
//! round trip is on values, not octets; open.rs: an OPEN may re-encode shorter).
#![no_main]

use std::net::Ipv4Addr;

use bytes::{Bytes, BytesMut};
use clos_bgp::wire::{Capability, Negotiated, Open, OpenExpectations};
use clos_fuzz::open_full;
use libfuzzer_sys::fuzz_target;

fn caps_round_trip(caps: &[Capability]) {
    let mut out = BytesMut::new();
    for c in caps {
        if c.emit(&mut out).is_err() {
            return;
        }
    }
    assert_eq!(
        out.len(),
        caps.iter().map(Capability::buffer_len).sum::<usize>()
    );
    let again = Capability::parse_list(out.freeze()).expect("re-encoded capabilities parse");
    assert_eq!(again, caps, "capability round trip");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = Bytes::copy_from_slice(rest);
    match mode & 3 {
        0 => {
            let Ok(open) = Open::parse(bytes) else { return };
            // Semantic checks and negotiation must cope with anything that parsed.
            let local = open_full(65001, Ipv4Addr::new(10, 0, 0, 1));
            for expect in [
                OpenExpectations::default(),
                OpenExpectations {
                    peer_as: Some(65002),
                    local_id: Some(Ipv4Addr::new(10, 0, 0, 1)),
                },
            ] {
                let _ = open.validate(&expect);
            }
            let _ = (
                open.asn(),
                open.families(),
                open.graceful_restart(),
                open.four_octet_as(),
            );
            for (a, b) in [(&local, &open), (&open, &local), (&open, &open)] {
                let n = Negotiated::new(a, b);
                let _ = n.decode_context();
            }
            let mut out = BytesMut::new();
            if open.emit(&mut out).is_err() {
                return;
            }
            assert_eq!(
                out.len(),
                open.buffer_len(),
                "buffer_len differs from what emit wrote"
            );
            let again = Open::parse(out.freeze()).expect("re-encoded OPEN parses");
            assert_eq!(again, open, "OPEN round trip");
        }
        1 => {
            let Ok(caps) = Capability::parse_list(bytes) else {
                return;
            };
            caps_round_trip(&caps);
        }
        _ => {
            let Some((&code, value)) = rest.split_first() else {
                return;
            };
            let Ok(cap) = Capability::parse(code, Bytes::copy_from_slice(value)) else {
                return;
            };
            caps_round_trip(std::slice::from_ref(&cap));
        }
    }
});
