//! The session core (`clos_bgp::session::Session`) fed arbitrary octets from the peer, in
//! OpenSent or, after a harness-built OPEN and KEEPALIVE, in Established.
//!
//! Input: three control octets, then the octets the peer sends.
//! - octet 0, the local side: bits 0-1 remote AS (exact 65002, external, internal, exact
//!   4200000002), bit 2 passive, bit 3 graceful restart, bit 4 offer extended messages,
//!   bit 5 reach Established first, bit 6 the connection is inbound.
//! - octet 1, the peer's OPEN when bit 5 is set: bit 0 MP IPv4, bit 1 MP IPv6, bit 2 4-octet AS
//!   (always sent when the AS needs it), bit 3 extended next hop, bit 4 extended messages,
//!   bit 5 graceful restart, bit 6 hold time 0 instead of 9, bit 7 enhanced route refresh.
//! - octet 2: bits 0-6 chunk size of the deliveries (0: everything at once); bit 7 opens a
//!   second connection the other way (it sends the same OPEN: a collision), and the chunks
//!   then alternate between the two connections.
//!
//! Every chunk is followed by one second of time and the timeouts that come due. At the end
//! the connections close and the session is stopped.
//!
//! Checks, besides "never panics" (fsm.rs: "never panics on peer input"):
//! - a valid OPEN and KEEPALIVE from an acceptable peer reach Established;
//! - no `Output::Update` carries a session reset (fsm.rs: the core acts on those);
//! - everything the core sends is a message that decodes;
//! - `StateChanged` events chain and end in `Session::state()`.
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clos_bgp::session::{
    Direction, GracefulRestartConfig, Input, Output, RemoteAs, Session, SessionConfig, State,
};
use clos_bgp::wire::{
    Capability, DecodeContext, ExtNextHop, Family, GrFamily, GracefulRestart, KEEPALIVE, Message,
    Open, UpdateOutcome, decode_message,
};
use libfuzzer_sys::fuzz_target;

const LOCAL_AS: u32 = 65001;

struct Harness {
    s: Session,
    now: Instant,
    /// The state the StateChanged events say we are in.
    state: State,
    established: bool,
}

impl Harness {
    fn handle(&mut self, input: Input) {
        self.s.handle(input, self.now);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(out) = self.s.poll_output() {
            match out {
                Output::Update(o) => {
                    assert!(
                        !matches!(*o, UpdateOutcome::SessionReset(_)),
                        "reset reached the RIB"
                    )
                }
                Output::Send { data, .. } => {
                    // Everything we send fits the pre-OPEN context, except UPDATEs we never
                    // send here.
                    let r = decode_message(data.clone(), &DecodeContext::default());
                    assert!(
                        r.is_ok(),
                        "we sent an undecodable message {data:02x?}: {r:?}"
                    );
                }
                Output::StateChanged { from, to } => {
                    assert_eq!(from, self.state, "StateChanged does not chain");
                    assert_ne!(from, to);
                    self.state = to;
                }
                Output::Established(_) => self.established = true,
                Output::Connect
                | Output::Close { .. }
                | Output::RouteRefresh(_)
                | Output::Down(_) => {}
            }
        }
        assert_eq!(
            self.state,
            self.s.state(),
            "StateChanged events end elsewhere"
        );
    }

    fn tick(&mut self) {
        self.now += Duration::from_secs(1);
        if self.s.poll_timeout().is_some_and(|t| t <= self.now) {
            self.handle(Input::Timeout);
        }
    }
}

fn peer_open(local: u8, peer: u8) -> (Open, bool) {
    let (asn, acceptable_as) = match local & 3 {
        0 => (65002, true),
        1 => (65002, true),
        2 => (LOCAL_AS, true),
        _ => (4_200_000_002, true),
    };
    let mut caps = Vec::new();
    if peer & 1 != 0 {
        caps.push(Capability::MultiProtocol(Family::IPV4_UNICAST));
    }
    if peer & 2 != 0 {
        caps.push(Capability::MultiProtocol(Family::IPV6_UNICAST));
    }
    if peer & 8 != 0 {
        caps.push(Capability::ExtendedNextHop(vec![
            ExtNextHop::IPV4_UNICAST_OVER_IPV6,
        ]));
    }
    if peer & 0x10 != 0 {
        caps.push(Capability::ExtendedMessage);
    }
    if peer & 0x20 != 0 {
        caps.push(Capability::GracefulRestart(GracefulRestart::new(
            false,
            90,
            vec![GrFamily::new(Family::IPV4_UNICAST, true)],
        )));
    }
    if peer & 0x80 != 0 {
        caps.push(Capability::EnhancedRouteRefresh);
    }
    let hold = if peer & 0x40 != 0 { 0 } else { 9 };
    let mut open = Open::new(asn, hold, Ipv4Addr::new(10, 0, 0, 2), caps);
    if peer & 4 == 0 && asn <= 0xFFFF {
        // A 2-octet-only speaker: no 4-octet AS capability.
        for p in &mut open.params {
            if let clos_bgp::wire::OptionalParameter::Capabilities(c) = p {
                c.retain(|c| !matches!(c, Capability::FourOctetAs(_)));
            }
        }
    }
    (open, acceptable_as)
}

fuzz_target!(|data: &[u8]| {
    let [local, peer, chunking, rest @ ..] = data else {
        return;
    };
    let (local, peer, chunking) = (*local, *peer, *chunking);

    let remote_as = match local & 3 {
        0 => RemoteAs::Exact(65002),
        1 => RemoteAs::External,
        2 => RemoteAs::Internal,
        _ => RemoteAs::Exact(4_200_000_002),
    };
    let mut config = SessionConfig::new(LOCAL_AS, Ipv4Addr::new(10, 0, 0, 1), remote_as);
    config.passive = local & 4 != 0;
    config.graceful_restart = (local & 8 != 0).then(GracefulRestartConfig::default);
    config.extended_message = local & 0x10 != 0;
    let direction = if local & 0x40 != 0 {
        Direction::Inbound
    } else {
        Direction::Outbound
    };

    let mut h = Harness {
        s: Session::new(config),
        now: Instant::now(),
        state: State::Idle,
        established: false,
    };
    h.handle(Input::Start);
    h.handle(Input::Connected { conn: 1, direction });
    assert_eq!(h.s.state(), State::OpenSent);

    let (open, acceptable) = peer_open(local, peer);
    let open_bytes = Message::Open(open)
        .to_bytes(&DecodeContext::default())
        .expect("OPEN encodes");
    if local & 0x20 != 0 {
        h.handle(Input::Received {
            conn: 1,
            data: open_bytes.clone(),
        });
        h.handle(Input::Received {
            conn: 1,
            data: Bytes::from_static(&KEEPALIVE),
        });
        if acceptable {
            assert_eq!(
                h.s.state(),
                State::Established,
                "a valid OPEN and KEEPALIVE do not establish"
            );
            assert!(h.established);
        }
    }
    let two = chunking & 0x80 != 0;
    if two {
        let other = match direction {
            Direction::Inbound => Direction::Outbound,
            Direction::Outbound => Direction::Inbound,
        };
        h.handle(Input::Connected {
            conn: 2,
            direction: other,
        });
        h.handle(Input::Received {
            conn: 2,
            data: open_bytes,
        });
    }

    let size = usize::from(chunking & 0x7F);
    let size = if size == 0 { rest.len().max(1) } else { size };
    for (i, chunk) in rest.chunks(size).enumerate() {
        let conn = if two && i % 2 == 1 { 2 } else { 1 };
        h.handle(Input::Received {
            conn,
            data: Bytes::copy_from_slice(chunk),
        });
        h.tick();
    }
    h.handle(Input::Closed { conn: 1 });
    h.handle(Input::Closed { conn: 2 });
    h.now += Duration::from_secs(600);
    h.handle(Input::Timeout);
    h.handle(Input::Stop {
        message: "fuzz".into(),
    });
});
