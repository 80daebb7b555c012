//! The BFD control packet (RFC 5880 section 4.1) in two layers: [`Packet`], a length-checked
//! view over received octets, and [`ControlPacket`], the owned packet with
//! [`parse`](ControlPacket::parse), [`emit`](ControlPacket::emit) and
//! [`buffer_len`](ControlPacket::buffer_len). [`decode`] adds the receive-side checks of
//! RFC 5880 section 6.8.6 that need no session.
//!
//! Contract: parsing never panics; a parsed packet re-emits to the octets covered by its Length
//! field. The Length field must be exactly the sections it announces (24 octets, plus the
//! authentication section when the A bit is set); a longer Length is rejected rather than
//! padding kept, so that a parsed packet always re-encodes to what was received.

use crate::error::Error;
use crate::iana::{AuthType, Diag, State};

/// Octets of the mandatory section.
pub const HEADER_LEN: usize = 24;

/// The largest authentication data an emitted packet can carry: the Length field is one octet,
/// and the section's own type and length octets count too.
pub const MAX_AUTH_DATA: usize = 255 - HEADER_LEN - 2;

const POLL: u8 = 0x20;
const FINAL: u8 = 0x10;
const CPI: u8 = 0x08;
const AUTH: u8 = 0x04;
const DEMAND: u8 = 0x02;
const MULTIPOINT: u8 = 0x01;

/// A view over the octets of a control packet whose lengths have been checked.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       My Discriminator                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                      Your Discriminator                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Desired Min TX Interval                    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                   Required Min RX Interval                    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                 Required Min Echo RX Interval                 |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///
/// An optional Authentication Section MAY be present:
///
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Auth Type   |   Auth Len    |    Authentication Data...     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// Intervals are in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks the version and that the Length field and the authentication section fit `buf`
    /// (RFC 5880 section 6.8.6, first four rules). Octets after Length (link padding) are
    /// ignored.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Error> {
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated { len: buf.len() });
        }
        let version = buf[0] >> 5;
        if version != 1 {
            return Err(Error::Version(version));
        }
        let length = buf[3];
        if usize::from(length) > buf.len() {
            return Err(Error::Length {
                length,
                available: buf.len(),
            });
        }
        let expected = if buf[1] & AUTH != 0 {
            if usize::from(length) < HEADER_LEN + 2 {
                return Err(Error::LengthMismatch {
                    length,
                    expected: HEADER_LEN + 2,
                });
            }
            let auth_len = buf[HEADER_LEN + 1];
            if auth_len < 3 {
                return Err(Error::AuthLength { auth_len });
            }
            HEADER_LEN + usize::from(auth_len)
        } else {
            HEADER_LEN
        };
        if usize::from(length) != expected {
            return Err(Error::LengthMismatch { length, expected });
        }
        Ok(Packet {
            buf: &buf[..expected],
        })
    }

    fn u32_at(&self, at: usize) -> u32 {
        u32::from_be_bytes([
            self.buf[at],
            self.buf[at + 1],
            self.buf[at + 2],
            self.buf[at + 3],
        ])
    }

    pub fn diag(&self) -> Diag {
        Diag::from_bits(self.buf[0])
    }

    pub fn state(&self) -> State {
        State::from_bits(self.buf[1] >> 6)
    }

    fn flag(&self, bit: u8) -> bool {
        self.buf[1] & bit != 0
    }

    pub fn detect_mult(&self) -> u8 {
        self.buf[2]
    }

    /// The Length field (checked: exactly the sections present).
    pub fn length(&self) -> u8 {
        self.buf[3]
    }

    pub fn my_discr(&self) -> u32 {
        self.u32_at(4)
    }

    pub fn your_discr(&self) -> u32 {
        self.u32_at(8)
    }

    pub fn desired_min_tx(&self) -> u32 {
        self.u32_at(12)
    }

    pub fn required_min_rx(&self) -> u32 {
        self.u32_at(16)
    }

    pub fn required_min_echo_rx(&self) -> u32 {
        self.u32_at(20)
    }

    /// The authentication section's type and data (after its type and length octets).
    pub fn auth(&self) -> Option<(AuthType, &'a [u8])> {
        if !self.flag(AUTH) {
            return None;
        }
        Some((
            AuthType::from(self.buf[HEADER_LEN]),
            &self.buf[HEADER_LEN + 2..],
        ))
    }
}

/// The authentication section, kept so a packet with one can be shown and rejected for what it
/// is (this crate does not authenticate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub auth_type: AuthType,
    /// Everything after the type and length octets (key id, sequence number, digest...).
    pub data: Vec<u8>,
}

/// A BFD control packet. Intervals are in microseconds, as on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPacket {
    pub diag: Diag,
    pub state: State,
    pub poll: bool,
    pub final_: bool,
    pub control_plane_independent: bool,
    pub demand: bool,
    pub multipoint: bool,
    pub detect_mult: u8,
    pub my_discr: u32,
    pub your_discr: u32,
    pub desired_min_tx: u32,
    pub required_min_rx: u32,
    pub required_min_echo_rx: u32,
    /// Present exactly when the A bit is set.
    pub auth: Option<Auth>,
}

impl ControlPacket {
    /// Parses the structure of a packet (version, lengths); see [`decode`] for the checks a
    /// receiver must make before using it.
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let p = Packet::new_checked(buf)?;
        Ok(ControlPacket {
            diag: p.diag(),
            state: p.state(),
            poll: p.flag(POLL),
            final_: p.flag(FINAL),
            control_plane_independent: p.flag(CPI),
            demand: p.flag(DEMAND),
            multipoint: p.flag(MULTIPOINT),
            detect_mult: p.detect_mult(),
            my_discr: p.my_discr(),
            your_discr: p.your_discr(),
            desired_min_tx: p.desired_min_tx(),
            required_min_rx: p.required_min_rx(),
            required_min_echo_rx: p.required_min_echo_rx(),
            auth: p.auth().map(|(auth_type, data)| Auth {
                auth_type,
                data: data.to_vec(),
            }),
        })
    }

    /// Octets [`emit`](Self::emit) appends.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.auth_data().map_or(0, |d| 2 + d.len())
    }

    /// Authentication data as emitted: cut to [`MAX_AUTH_DATA`].
    fn auth_data(&self) -> Option<&[u8]> {
        self.auth
            .as_ref()
            .map(|a| &a.data[..a.data.len().min(MAX_AUTH_DATA)])
    }

    /// Appends the packet (version 1) to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let flags = (self.state.bits() << 6)
            | if self.poll { POLL } else { 0 }
            | if self.final_ { FINAL } else { 0 }
            | if self.control_plane_independent {
                CPI
            } else {
                0
            }
            | if self.auth.is_some() { AUTH } else { 0 }
            | if self.demand { DEMAND } else { 0 }
            | if self.multipoint { MULTIPOINT } else { 0 };
        // At most 24 + 2 + MAX_AUTH_DATA = 255.
        let length = self.buffer_len() as u8;
        out.extend_from_slice(&[(1 << 5) | self.diag.bits(), flags, self.detect_mult, length]);
        for v in [
            self.my_discr,
            self.your_discr,
            self.desired_min_tx,
            self.required_min_rx,
            self.required_min_echo_rx,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        if let (Some(auth), Some(data)) = (&self.auth, self.auth_data()) {
            out.extend_from_slice(&[u8::from(auth.auth_type), (2 + data.len()) as u8]);
            out.extend_from_slice(data);
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out);
        out
    }

    /// The receive-side checks of RFC 5880 section 6.8.6 that need no session, for a receiver
    /// that does not authenticate: a packet failing one MUST be discarded.
    pub fn validate(&self) -> Result<(), Error> {
        if self.detect_mult == 0 {
            return Err(Error::ZeroDetectMult);
        }
        if self.multipoint {
            return Err(Error::Multipoint);
        }
        if self.my_discr == 0 {
            return Err(Error::ZeroMyDiscriminator);
        }
        if self.your_discr == 0 && !matches!(self.state, State::Down | State::AdminDown) {
            return Err(Error::ZeroYourDiscriminator { state: self.state });
        }
        // "If the A bit is set and no authentication is in use (bfd.AuthType is zero), the
        // packet MUST be discarded."
        if self.auth.is_some() {
            return Err(Error::AuthenticationNotInUse);
        }
        Ok(())
    }
}

/// Parses and validates a received packet: what a receiver may act on.
pub fn decode(buf: &[u8]) -> Result<ControlPacket, Error> {
    let p = ControlPacket::parse(buf)?;
    p.validate()?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn packet(state: State, my: u32, your: u32, tx: u32, rx: u32) -> ControlPacket {
        ControlPacket {
            diag: Diag::None,
            state,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand: false,
            multipoint: false,
            detect_mult: 3,
            my_discr: my,
            your_discr: your,
            desired_min_tx: tx,
            required_min_rx: rx,
            required_min_echo_rx: 0,
            auth: None,
        }
    }

    /// Captured between FRR 8.4.4 bfdd (10.9.0.1, 2001:db8:9::1) and BIRD 2.0.12 (10.9.0.2,
    /// 2001:db8:9::2), both configured for 100 ms x 3, with
    /// `ip netns exec A tcpdump -i va -w bfd.pcap udp port 3784`; UDP payloads as hex.
    /// The session was then broken by an nftables drop in BIRD's namespace
    /// (`nft add rule inet t in ip saddr 10.9.0.1 udp dport 3784 drop`) and healed, and finally
    /// shut down in FRR (`bfd` / `peer 10.9.0.2` / `shutdown`).
    fn captured() -> Vec<(&'static str, &'static str, ControlPacket)> {
        let (frr, bird) = (0x2496_d0ea, 0x6846_9099);
        let frr_echo = |mut p: ControlPacket| {
            p.required_min_echo_rx = 50_000;
            p
        };
        let with = |mut p: ControlPacket, f: &dyn Fn(&mut ControlPacket)| {
            f(&mut p);
            p
        };
        vec![
            (
                "FRR Down, slow timers until Up",
                "204003182496d0ea00000000000f4240000f42400000c350",
                frr_echo(packet(State::Down, frr, 0, 1_000_000, 1_000_000)),
            ),
            (
                "BIRD Down: slow transmit, fast receive",
                "204003186846909900000000000f4240000186a000000000",
                packet(State::Down, bird, 0, 1_000_000, 100_000),
            ),
            (
                "FRR Init",
                "208003182496d0ea68469099000f4240000f42400000c350",
                frr_echo(packet(State::Init, frr, bird, 1_000_000, 1_000_000)),
            ),
            (
                "BIRD Up with Poll: going to its fast transmit interval",
                "20e00318684690992496d0ea000186a0000186a000000000",
                with(packet(State::Up, bird, frr, 100_000, 100_000), &|p| {
                    p.poll = true
                }),
            ),
            (
                "FRR Final",
                "20d003182496d0ea68469099000186a0000186a00000c350",
                with(
                    frr_echo(packet(State::Up, frr, bird, 100_000, 100_000)),
                    &|p| p.final_ = true,
                ),
            ),
            (
                "BIRD Up",
                "20c00318684690992496d0ea000186a0000186a000000000",
                packet(State::Up, bird, frr, 100_000, 100_000),
            ),
            (
                "BIRD Down after its detection time expired, remote discriminator forgotten",
                "214003186846909900000000000f4240000186a000000000",
                with(packet(State::Down, bird, 0, 1_000_000, 100_000), &|p| {
                    p.diag = Diag::ControlDetectionTimeExpired
                }),
            ),
            (
                "FRR AdminDown",
                "200003182496d0ea68469099000186a0000186a00000c350",
                frr_echo(packet(State::AdminDown, frr, bird, 100_000, 100_000)),
            ),
            (
                "BIRD Down, neighbor signaled, polling for its slow rate",
                "23600318684690992496d0ea000f4240000186a000000000",
                with(packet(State::Down, bird, frr, 1_000_000, 100_000), &|p| {
                    p.diag = Diag::NeighborSignaledSessionDown;
                    p.poll = true;
                }),
            ),
        ]
    }

    #[test]
    fn captured_vectors_both_ways() {
        for (what, octets, want) in captured() {
            let octets = hex(octets);
            let got = decode(&octets).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(got, want, "{what}");
            assert_eq!(want.to_bytes(), octets, "{what}");
            assert_eq!(want.buffer_len(), octets.len(), "{what}");
        }
    }

    #[test]
    fn view_layer_reads_fields() {
        let octets = hex("20e00318684690992496d0ea000186a0000186a000000000");
        let p = Packet::new_checked(&octets).unwrap();
        assert_eq!(p.state(), State::Up);
        assert!(p.flag(POLL) && !p.flag(FINAL));
        assert_eq!((p.detect_mult(), p.length()), (3, 24));
        assert_eq!((p.my_discr(), p.your_discr()), (0x6846_9099, 0x2496_d0ea));
        assert_eq!(
            (p.desired_min_tx(), p.required_min_rx()),
            (100_000, 100_000)
        );
        assert_eq!(p.required_min_echo_rx(), 0);
        assert!(p.auth().is_none());
    }

    #[test]
    fn authentication_is_parsed_then_rejected() {
        // Keyed SHA1 (type 4, length 28): key id 1, reserved, sequence 7, 20-octet digest.
        let mut octets = hex("20c40334684690992496d0ea000186a0000186a000000000");
        octets.extend_from_slice(&[4, 28, 1, 0, 0, 0, 0, 7]);
        octets.extend_from_slice(&[0xab; 20]);
        let p = ControlPacket::parse(&octets).unwrap();
        let auth = p.auth.as_ref().unwrap();
        assert_eq!(auth.auth_type, AuthType::KeyedSha1);
        assert_eq!(auth.data.len(), 26);
        assert_eq!(p.to_bytes(), octets);
        assert!(matches!(
            decode(&octets),
            Err(Error::AuthenticationNotInUse)
        ));
        // Simple password (type 1): key id 1, "secret".
        let mut octets = hex("20c40321684690992496d0ea000186a0000186a000000000");
        octets.extend_from_slice(&[1, 9, 1]);
        octets.extend_from_slice(b"secret");
        let p = ControlPacket::parse(&octets).unwrap();
        assert_eq!(p.auth.unwrap().auth_type, AuthType::SimplePassword);
    }

    #[test]
    fn malformed_packets_are_rejected() {
        let good = hex("20c00318684690992496d0ea000186a0000186a000000000");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (good[..23].to_vec(), "truncated"),
            (
                {
                    let mut b = good.clone();
                    b[0] = 0x40;
                    b
                },
                "version 2",
            ),
            (
                {
                    let mut b = good.clone();
                    b[3] = 23;
                    b
                },
                "length below 24",
            ),
            (
                {
                    let mut b = good.clone();
                    b[3] = 25;
                    b
                },
                "length beyond the datagram",
            ),
            (
                {
                    let mut b = good.clone();
                    b[3] = 28;
                    b.extend_from_slice(&[0; 4]);
                    b
                },
                "length with octets no section announces",
            ),
            (
                {
                    let mut b = good.clone();
                    b[1] |= AUTH;
                    b
                },
                "A bit with a length of 24",
            ),
            (
                {
                    let mut b = good.clone();
                    b[1] |= AUTH;
                    b[3] = 26;
                    b.extend_from_slice(&[1, 2]);
                    b
                },
                "authentication section of 2 octets",
            ),
            (
                {
                    let mut b = good.clone();
                    b[1] |= AUTH;
                    b[3] = 27;
                    b.extend_from_slice(&[1, 4, 1]);
                    b
                },
                "authentication length beyond the packet",
            ),
        ];
        for (octets, what) in cases {
            assert!(ControlPacket::parse(&octets).is_err(), "{what}");
        }
        // Link-layer padding after Length is ignored.
        let mut padded = good.clone();
        padded.extend_from_slice(&[0; 22]);
        assert_eq!(ControlPacket::parse(&padded).unwrap().to_bytes(), good);
    }

    #[test]
    fn receive_rules_of_6_8_6() {
        let ok = packet(State::Up, 1, 2, 100_000, 100_000);
        assert!(ok.validate().is_ok());
        type Mutation = fn(&mut ControlPacket);
        let cases: Vec<(Mutation, &str)> = vec![
            (|p| p.detect_mult = 0, "zero detect mult"),
            (|p| p.multipoint = true, "multipoint"),
            (|p| p.my_discr = 0, "zero my discriminator"),
            (|p| p.your_discr = 0, "zero your discriminator when Up"),
            (
                |p| {
                    p.state = State::Init;
                    p.your_discr = 0
                },
                "zero your discriminator when Init",
            ),
            (
                |p| {
                    p.auth = Some(Auth {
                        auth_type: AuthType::KeyedMd5,
                        data: vec![0; 22],
                    })
                },
                "authentication",
            ),
        ];
        for (mutate, what) in cases {
            let mut p = ok.clone();
            mutate(&mut p);
            assert!(p.validate().is_err(), "{what}");
            assert!(decode(&p.to_bytes()).is_err(), "{what}");
        }
        for state in [State::Down, State::AdminDown] {
            let p = packet(state, 1, 0, 1_000_000, 1_000_000);
            assert!(
                p.validate().is_ok(),
                "{state} may not know the discriminator yet"
            );
        }
    }

    fn arb_packet() -> impl Strategy<Value = ControlPacket> {
        let auth = prop::option::of(
            (
                any::<u8>(),
                prop::collection::vec(any::<u8>(), 1..=MAX_AUTH_DATA),
            )
                .prop_map(|(t, data)| Auth {
                    auth_type: AuthType::from(t),
                    data,
                }),
        );
        (
            (0u8..32, 0u8..4, any::<[bool; 5]>(), any::<u8>()),
            any::<[u32; 5]>(),
            auth,
        )
            .prop_map(|((diag, state, f, mult), v, auth)| ControlPacket {
                diag: Diag::from_bits(diag),
                state: State::from_bits(state),
                poll: f[0],
                final_: f[1],
                control_plane_independent: f[2],
                demand: f[3],
                multipoint: f[4],
                detect_mult: mult,
                my_discr: v[0],
                your_discr: v[1],
                desired_min_tx: v[2],
                required_min_rx: v[3],
                required_min_echo_rx: v[4],
                auth,
            })
    }

    proptest! {
        #[test]
        fn round_trip(p in arb_packet()) {
            let octets = p.to_bytes();
            prop_assert_eq!(octets.len(), p.buffer_len());
            prop_assert_eq!(ControlPacket::parse(&octets).unwrap(), p);
        }

        #[test]
        fn parse_never_panics_and_reencodes(octets in prop::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(p) = ControlPacket::parse(&octets) {
                let length = usize::from(octets[3]);
                prop_assert_eq!(&p.to_bytes()[..], &octets[..length]);
                let _ = p.validate();
            }
        }
    }
}
