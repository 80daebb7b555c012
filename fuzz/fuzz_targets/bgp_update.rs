//! UPDATE bodies: the lazy view (`UpdateView` and its iterators), the RFC 7606 decoder
//! (`Update::decode`), and `Nlri::parse`, checked against each other.
//!
//! Input: one context octet ([`clos_fuzz::ctx_from_byte`]), then an UPDATE body (the message
//! without its 19-octet header).
//!
//! Checks, besides "never panics":
//! - a body the view rejects is a session reset for the decoder (both apply RFC 4271 6.3);
//! - when the decoder accepts the body, the view's prefix iterators yield no error and, for an
//!   `Ok` outcome, the same prefixes and the same End-of-RIB answer;
//! - `Nlri::parse` accepts exactly what `RawNlriIter` walks without error, with the same
//!   prefixes, and rebuilding the list from its prefixes gives an equal list;
//! - whatever the UPDATE decodes to re-encodes to a fixed point.
#![no_main]

use bytes::{Bytes, BytesMut};
use clos_bgp::iana::Afi;
use clos_bgp::wire::{Nlri, Prefix, RawNlriIter, Update, UpdateOutcome, UpdateView};
use clos_fuzz::ctx_from_byte;
use libfuzzer_sys::fuzz_target;

fn check_nlri(afi: Afi, bytes: &Bytes) {
    let raw: Vec<_> = RawNlriIter::new(afi, bytes).collect();
    match Nlri::parse(afi, bytes.clone()) {
        Ok(n) => {
            let raw: Vec<Prefix> = raw
                .into_iter()
                .map(|r| r.expect("Nlri::parse accepted what RawNlriIter rejects"))
                .collect();
            let parsed: Vec<Prefix> = n.iter().collect();
            assert_eq!(parsed, raw, "Nlri and RawNlriIter disagree");
            let rebuilt = Nlri::from_prefixes(afi, parsed.iter().copied()).expect("same family");
            assert_eq!(rebuilt, n, "Nlri rebuilt from its prefixes differs");
            let again =
                Nlri::parse(afi, rebuilt.as_bytes().clone()).expect("canonical NLRI parses");
            assert_eq!(again, n);
        }
        Err(_) => {
            if matches!(afi, Afi::Ipv4 | Afi::Ipv6) {
                assert!(
                    raw.iter().any(Result::is_err),
                    "Nlri::parse rejected what RawNlriIter walks"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let ctx = ctx_from_byte(sel);
    let body = Bytes::copy_from_slice(body);

    // NLRI decoders on the raw octets, for both families.
    check_nlri(Afi::Ipv4, &body);
    check_nlri(Afi::Ipv6, &body);

    let view = UpdateView::parse(body.clone());
    let outcome = Update::decode(body.clone(), &ctx);
    let Ok(view) = view else {
        assert!(
            matches!(outcome, UpdateOutcome::SessionReset(_)),
            "the view rejects a body the decoder accepts: {outcome:?}"
        );
        return;
    };
    // Walk the view completely; iterators stop after their first error.
    let withdrawn: Vec<_> = view.withdrawn().collect();
    let nlri: Vec<_> = view.nlri().collect();
    let attrs: Vec<_> = view.attributes().collect();
    assert!(attrs.iter().filter(|a| a.is_err()).count() <= 1);
    assert!(
        attrs
            .iter()
            .position(Result::is_err)
            .is_none_or(|i| i + 1 == attrs.len())
    );
    let eor = view.end_of_rib();

    let Some(u) = outcome.update() else { return };
    assert!(
        withdrawn.iter().all(Result::is_ok),
        "decoder accepted bad withdrawn routes"
    );
    assert!(
        nlri.iter().all(Result::is_ok),
        "decoder accepted a bad NLRI field"
    );
    if let UpdateOutcome::Ok(u) = &outcome {
        let w: Vec<Prefix> = withdrawn.into_iter().map(Result::unwrap).collect();
        let n: Vec<Prefix> = nlri.into_iter().map(Result::unwrap).collect();
        assert_eq!(u.withdrawn.iter().collect::<Vec<_>>(), w);
        assert_eq!(u.nlri.iter().collect::<Vec<_>>(), n);
        assert!(
            attrs.iter().all(Result::is_ok),
            "Ok outcome with a broken attribute list"
        );
        assert_eq!(
            eor,
            u.end_of_rib_family(),
            "view and decoder disagree on End-of-RIB"
        );
    }

    // Re-encode and decode again: a fixed point.
    let mut out = BytesMut::new();
    if u.emit(&ctx, &mut out).is_err() {
        return;
    }
    assert_eq!(
        out.len(),
        u.buffer_len(&ctx),
        "buffer_len differs from what emit wrote"
    );
    let again = Update::decode(out.freeze(), &ctx);
    assert_eq!(
        again.update().cloned(),
        Some(u.clone()),
        "UPDATE re-encoding is not a fixed point: {again:?}"
    );
});
