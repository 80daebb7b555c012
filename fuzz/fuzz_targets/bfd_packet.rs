//! BFD control packets (`clos_bfd::wire`): `ControlPacket::parse`, `decode` and the view
//! `Packet::new_checked`, then the packets the session core (`clos_bfd::Session`) is fed.
//!
//! Input: one mode octet, then:
//! - mode 0 (`% 2`): one packet for the decoders;
//! - mode 1: a sequence of records `[gap] [len] [len octets]`: `gap` milliseconds of time (and
//!   the timeouts that come due) before the packet of `len` octets is decoded and, when it
//!   passes `decode`, handed to one session.
//!
//! Checks, besides "never panics" (wire.rs: "parsing never panics"):
//! - a parsed packet re-emits to the octets its Length field covers and parses back to itself
//!   (wire.rs: "a parsed packet re-emits to the octets covered by its Length field");
//! - the view accepts exactly what `parse` accepts;
//! - `decode` accepts exactly what `parse` and `validate` accept;
//! - everything the session sends passes `decode` and never sets Poll and Final together;
//!   `StateChanged` events chain and end in `Session::state()`.
#![no_main]

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use clos_bfd::session::{Config, Input, Output, Session};
use clos_bfd::State;
use clos_bfd::wire::{ControlPacket, Packet, decode};
use libfuzzer_sys::fuzz_target;

fn decoders(octets: &[u8]) -> Option<ControlPacket> {
    let parsed = ControlPacket::parse(octets);
    assert_eq!(parsed.is_ok(), Packet::new_checked(octets).is_ok());
    let p = parsed.ok()?;
    let out = p.to_bytes();
    assert_eq!(out.len(), p.buffer_len());
    assert_eq!(&out[..], &octets[..usize::from(octets[3])], "re-encodes differently");
    assert_eq!(ControlPacket::parse(&out).ok().as_ref(), Some(&p));
    let decoded = decode(octets).ok();
    assert_eq!(decoded.is_some(), p.validate().is_ok());
    decoded
}

/// Checks the outputs; `state` is the state before the input that produced them.
fn drain(s: &mut Session, state: &mut State) {
    while let Some(o) = s.poll_output() {
        match o {
            Output::Send(p) => {
                assert!(decode(&p.to_bytes()).is_ok(), "sent an invalid packet {p:?}");
                assert!(!(p.poll && p.final_), "Poll and Final together");
            }
            Output::StateChanged { from, to, .. } => {
                assert_eq!(from, *state, "state changes do not chain");
                assert_ne!(from, to);
                *state = to;
            }
        }
    }
    assert_eq!(*state, s.state());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        decoders(rest);
        return;
    }
    let mut now = Instant::now();
    let discr = NonZeroU32::new(0x11).expect("nonzero");
    let mut s = Session::new(Config::new(Duration::from_millis(100), 3), discr, 7, now);
    let mut state = s.state();
    s.handle(Input::Timeout, now);
    drain(&mut s, &mut state);
    let mut rest = rest;
    while let [gap, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (octets, tail) = tail.split_at(len);
        rest = tail;
        let until = now + Duration::from_millis(u64::from(*gap));
        while let Some(t) = s.poll_timeout().filter(|t| *t <= until) {
            now = now.max(t);
            s.handle(Input::Timeout, now);
            drain(&mut s, &mut state);
        }
        now = until;
        if let Some(p) = decoders(octets) {
            s.handle(Input::Received(p), now);
            drain(&mut s, &mut state);
        }
    }
});
