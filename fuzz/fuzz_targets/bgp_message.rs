//! `decode_message` under every decoding context, with round trips.
//!
//! Input: one context octet ([`clos_fuzz::ctx_from_byte`]; bit 6 asks the harness to fix the
//! marker and length), then one whole BGP message, header included.
//!
//! Checks, besides "never panics":
//! - `frame_len` agrees with `decode_message` on where the message ends;
//! - NOTIFICATION and KEEPALIVE re-encode to the very same octets (notification.rs: "parse
//!   then emit reproduces the input");
//! - OPEN and ROUTE-REFRESH re-encode to something that decodes to the same value (OPEN may
//!   re-encode shorter, open.rs);
//! - whatever an UPDATE decodes to re-encodes to a fixed point (tests/props.rs, attr/mod.rs
//!   "Encoding is canonical").
#![no_main]

use bytes::Bytes;
use clos_bgp::wire::{Message, Received, decode_message, frame_len};
use clos_fuzz::{FIX_HEADER, ctx_from_byte, fix_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, msg)) = data.split_first() else {
        return;
    };
    let ctx = ctx_from_byte(sel);
    let mut msg = msg.to_vec();
    if sel & FIX_HEADER != 0 {
        fix_header(&mut msg);
    }
    let framed = frame_len(&msg, &ctx);
    let wire = Bytes::from(msg);
    let decoded = decode_message(wire.clone(), &ctx);
    if decoded.is_ok() {
        assert_eq!(
            framed,
            Ok(Some(wire.len())),
            "frame_len disagrees with decode_message"
        );
    }
    let Ok(received) = decoded else { return };
    match received {
        Received::Notification(n) => {
            let again = Message::Notification(n)
                .to_bytes(&ctx)
                .expect("a decoded NOTIFICATION encodes");
            assert_eq!(again, wire, "NOTIFICATION does not re-encode to its input");
        }
        Received::Keepalive => {
            let again = Message::Keepalive
                .to_bytes(&ctx)
                .expect("KEEPALIVE encodes");
            assert_eq!(again, wire);
        }
        Received::Open(o) => {
            let Ok(again) = Message::Open(o.clone()).to_bytes(&ctx) else {
                return;
            };
            match decode_message(again, &ctx) {
                Ok(Received::Open(o2)) => assert_eq!(o2, o, "OPEN round trip"),
                other => panic!("re-encoded OPEN decodes to {other:?}"),
            }
        }
        Received::RouteRefresh(r) => {
            let again = Message::RouteRefresh(r.clone())
                .to_bytes(&ctx)
                .expect("encodes");
            match decode_message(again, &ctx) {
                Ok(Received::RouteRefresh(r2)) => assert_eq!(r2, r, "ROUTE-REFRESH round trip"),
                other => panic!("re-encoded ROUTE-REFRESH decodes to {other:?}"),
            }
        }
        Received::Update(outcome) => {
            let u = outcome
                .update()
                .expect("decode_message never returns a reset outcome");
            let Ok(again) = Message::Update(Box::new(u.clone())).to_bytes(&ctx) else {
                return;
            };
            match decode_message(again, &ctx) {
                Ok(Received::Update(o2)) => {
                    let again = o2.update().cloned();
                    let expected = u.clone();
                    assert_eq!(
                        again.as_ref(),
                        Some(&expected),
                        "UPDATE re-encoding is not a fixed point"
                    )
                }
                other => panic!("re-encoded UPDATE decodes to {other:?}\noriginal: {outcome:?}"),
            }
        }
    }
});
