//! Capabilities advertised in OPEN (RFC 5492).
//!
//! ```text
//! +------------------------------+
//! | Capability Code (1 octet)    |
//! +------------------------------+
//! | Capability Length (1 octet)  |
//! +------------------------------+
//! | Capability Value (variable)  |
//! +------------------------------+
//! ```
//!
//! Contract: capabilities we know are decoded and a known capability with a malformed body is
//! an error (OPEN Message Error). Unknown capabilities are kept as [`Capability::Other`] with
//! their bytes; negotiation ignores them, re-encoding reproduces them. Reserved fields are
//! ignored on receipt and sent as zero.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Error;
use crate::iana::{Afi, CapabilityCode, Safi, graceful_restart as gr};
use crate::wire::buf::Cursor;
use crate::wire::context::Family;

/// One entry of the extended next hop capability (RFC 8950 section 3).
///
/// ```text
/// +-----------------------------------------------------+
/// | NLRI AFI - 1 (2 octets)                             |
/// +-----------------------------------------------------+
/// | NLRI SAFI - 1 (2 octets)                            |
/// +-----------------------------------------------------+
/// | Nexthop AFI - 1 (2 octets)                          |
/// +-----------------------------------------------------+
/// | ....                                                |
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtNextHop {
    pub nlri_afi: Afi,
    /// Two octets on the wire, although SAFIs are one octet elsewhere.
    pub nlri_safi: u16,
    pub next_hop_afi: Afi,
}

impl ExtNextHop {
    /// IPv4 unicast NLRI with IPv6 next hops: the BGP unnumbered case.
    pub const IPV4_UNICAST_OVER_IPV6: ExtNextHop = ExtNextHop {
        nlri_afi: Afi::Ipv4,
        nlri_safi: 1,
        next_hop_afi: Afi::Ipv6,
    };

    /// The NLRI family, when the SAFI fits the usual one octet.
    pub fn family(&self) -> Option<Family> {
        let safi = u8::try_from(self.nlri_safi).ok()?;
        Some(Family::new(self.nlri_afi, Safi::from(safi)))
    }
}

/// Per-family entry of the graceful restart capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GrFamily {
    pub family: Family,
    /// Raw flags; see [`GrFamily::forwarding_state`].
    pub flags: u8,
}

impl GrFamily {
    pub fn new(family: Family, forwarding_state: bool) -> Self {
        Self {
            family,
            flags: if forwarding_state {
                gr::FORWARDING_STATE
            } else {
                0
            },
        }
    }

    /// F bit: forwarding state for this family was preserved across the restart.
    pub fn forwarding_state(&self) -> bool {
        self.flags & gr::FORWARDING_STATE != 0
    }
}

/// Graceful restart capability (RFC 4724 section 3).
///
/// ```text
/// +--------------------------------------------------+
/// | Restart Flags (4 bits)                           |
/// +--------------------------------------------------+
/// | Restart Time in seconds (12 bits)                |
/// +--------------------------------------------------+
/// | Address Family Identifier (16 bits)              |
/// +--------------------------------------------------+
/// | Subsequent Address Family Identifier (8 bits)    |
/// +--------------------------------------------------+
/// | Flags for Address Family (8 bits)                |
/// +--------------------------------------------------+
/// | ...                                              |
/// +--------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// The 4 restart flag bits (R = 0x8, N = 0x4), kept raw.
    pub flags: u8,
    /// Seconds, 12 bits.
    pub restart_time: u16,
    pub families: Vec<GrFamily>,
}

impl GracefulRestart {
    /// Largest restart time the 12-bit field holds.
    pub const MAX_RESTART_TIME: u16 = 0x0FFF;

    /// A capability with the R bit as given; the restart time is capped at 4095 s.
    pub fn new(restarting: bool, restart_time: u16, families: Vec<GrFamily>) -> Self {
        Self {
            flags: if restarting { gr::RESTART_STATE } else { 0 },
            restart_time: restart_time.min(Self::MAX_RESTART_TIME),
            families,
        }
    }

    /// R bit: the sender has just restarted.
    pub fn restart_state(&self) -> bool {
        self.flags & gr::RESTART_STATE != 0
    }

    /// N bit: the sender supports graceful restart on NOTIFICATION (RFC 8538).
    pub fn notification(&self) -> bool {
        self.flags & gr::NOTIFICATION != 0
    }

    fn parse(mut c: Cursor) -> Result<Self, Error> {
        let bad = |reason| Error::MalformedCapability {
            code: CapabilityCode::GracefulRestart,
            reason,
        };
        let word = c.u16().ok_or_else(|| bad("shorter than 2 octets"))?;
        if !c.remaining().is_multiple_of(4) {
            return Err(bad("family list is not a multiple of 4 octets"));
        }
        let mut families = Vec::with_capacity(c.remaining() / 4);
        while let (Some(afi), Some(safi), Some(flags)) = (c.u16(), c.u8(), c.u8()) {
            families.push(GrFamily {
                family: Family::new(afi.into(), safi.into()),
                flags,
            });
        }
        // Flags and time share 16 bits: 4 bits of flags, 12 bits of time.
        Ok(Self {
            flags: (word >> 12) as u8,
            restart_time: word & 0x0FFF,
            families,
        })
    }

    fn emit_value(&self, out: &mut BytesMut) {
        out.put_u16((u16::from(self.flags & 0x0F) << 12) | (self.restart_time & 0x0FFF));
        for f in &self.families {
            out.put_u16(f.family.afi.into());
            out.put_u8(f.family.safi.into());
            out.put_u8(f.flags);
        }
    }
}

/// A capability.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    /// RFC 4760: AFI (2), reserved (1), SAFI (1).
    MultiProtocol(Family),
    /// RFC 2918, empty.
    RouteRefresh,
    /// RFC 7313, empty.
    EnhancedRouteRefresh,
    /// RFC 8950.
    ExtendedNextHop(Vec<ExtNextHop>),
    /// RFC 8654, empty.
    ExtendedMessage,
    /// RFC 4724.
    GracefulRestart(GracefulRestart),
    /// RFC 6793: our AS number.
    FourOctetAs(u32),
    /// Anything else, kept verbatim.
    Other { code: u8, value: Bytes },
}

impl Capability {
    pub fn code(&self) -> CapabilityCode {
        match self {
            Self::MultiProtocol(_) => CapabilityCode::MultiProtocol,
            Self::RouteRefresh => CapabilityCode::RouteRefresh,
            Self::EnhancedRouteRefresh => CapabilityCode::EnhancedRouteRefresh,
            Self::ExtendedNextHop(_) => CapabilityCode::ExtendedNextHop,
            Self::ExtendedMessage => CapabilityCode::ExtendedMessage,
            Self::GracefulRestart(_) => CapabilityCode::GracefulRestart,
            Self::FourOctetAs(_) => CapabilityCode::FourOctetAs,
            Self::Other { code, .. } => CapabilityCode::from(*code),
        }
    }

    /// Decodes one capability value of type `code`.
    pub fn parse(code: u8, value: Bytes) -> Result<Self, Error> {
        let kind = CapabilityCode::from(code);
        let bad = |reason| Error::MalformedCapability { code: kind, reason };
        let len = value.len();
        let mut c = Cursor::new(value.clone());
        let empty = |cap: Capability| {
            if len == 0 {
                Ok(cap)
            } else {
                Err(bad("must be empty"))
            }
        };
        match kind {
            CapabilityCode::MultiProtocol => {
                let (Some(afi), Some(_reserved), Some(safi), true) =
                    (c.u16(), c.u8(), c.u8(), len == 4)
                else {
                    return Err(bad("length is not 4"));
                };
                Ok(Self::MultiProtocol(Family::new(afi.into(), safi.into())))
            }
            CapabilityCode::RouteRefresh => empty(Self::RouteRefresh),
            CapabilityCode::EnhancedRouteRefresh => empty(Self::EnhancedRouteRefresh),
            CapabilityCode::ExtendedMessage => empty(Self::ExtendedMessage),
            CapabilityCode::FourOctetAs => match (c.u32(), len) {
                (Some(asn), 4) => Ok(Self::FourOctetAs(asn)),
                _ => Err(bad("length is not 4")),
            },
            CapabilityCode::ExtendedNextHop => {
                if !len.is_multiple_of(6) {
                    return Err(bad("length is not a multiple of 6"));
                }
                let mut entries = Vec::with_capacity(len / 6);
                while let (Some(afi), Some(safi), Some(nh)) = (c.u16(), c.u16(), c.u16()) {
                    entries.push(ExtNextHop {
                        nlri_afi: afi.into(),
                        nlri_safi: safi,
                        next_hop_afi: nh.into(),
                    });
                }
                Ok(Self::ExtendedNextHop(entries))
            }
            CapabilityCode::GracefulRestart => GracefulRestart::parse(c).map(Self::GracefulRestart),
            _ => Ok(Self::Other { code, value }),
        }
    }

    /// Octets of the value alone.
    fn value_len(&self) -> usize {
        match self {
            Self::MultiProtocol(_) | Self::FourOctetAs(_) => 4,
            Self::RouteRefresh | Self::EnhancedRouteRefresh | Self::ExtendedMessage => 0,
            Self::ExtendedNextHop(e) => 6 * e.len(),
            Self::GracefulRestart(g) => 2 + 4 * g.families.len(),
            Self::Other { value, .. } => value.len(),
        }
    }

    /// Octets `emit` writes: code, length and value.
    pub fn buffer_len(&self) -> usize {
        2 + self.value_len()
    }

    /// Appends code, length and value. Fails if the value exceeds 255 octets.
    pub fn emit(&self, out: &mut BytesMut) -> Result<(), Error> {
        let len = self.value_len();
        let len8 = u8::try_from(len).map_err(|_| Error::TooLongToEncode {
            what: "capability",
            length: len,
        })?;
        out.put_u8(self.code().into());
        out.put_u8(len8);
        match self {
            Self::MultiProtocol(f) => {
                out.put_u16(f.afi.into());
                out.put_u8(0);
                out.put_u8(f.safi.into());
            }
            Self::FourOctetAs(asn) => out.put_u32(*asn),
            Self::RouteRefresh | Self::EnhancedRouteRefresh | Self::ExtendedMessage => {}
            Self::ExtendedNextHop(entries) => {
                for e in entries {
                    out.put_u16(e.nlri_afi.into());
                    out.put_u16(e.nlri_safi);
                    out.put_u16(e.next_hop_afi.into());
                }
            }
            Self::GracefulRestart(g) => g.emit_value(out),
            Self::Other { value, .. } => out.put_slice(value),
        }
        Ok(())
    }

    /// Decodes the capabilities packed in one Capabilities optional parameter.
    pub fn parse_list(value: Bytes) -> Result<Vec<Capability>, Error> {
        let mut c = Cursor::new(value);
        let mut caps = Vec::new();
        while !c.is_empty() {
            let (Some(code), Some(len)) = (c.u8(), c.u8()) else {
                return Err(Error::MalformedOpen {
                    reason: "truncated capability header",
                });
            };
            let value = c.take(usize::from(len)).ok_or(Error::MalformedOpen {
                reason: "capability overruns its parameter",
            })?;
            caps.push(Capability::parse(code, value)?);
        }
        Ok(caps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(wire: &'static [u8]) -> Capability {
        let caps = Capability::parse_list(Bytes::from_static(wire)).unwrap();
        assert_eq!(caps.len(), 1);
        let mut out = BytesMut::new();
        caps[0].emit(&mut out).unwrap();
        assert_eq!(&out[..], wire);
        assert_eq!(caps[0].buffer_len(), wire.len());
        caps.into_iter().next().unwrap()
    }

    #[test]
    fn multiprotocol_ipv6_unicast() {
        // code 1, len 4, AFI 2, reserved 0, SAFI 1
        let c = round_trip(&[0x01, 0x04, 0x00, 0x02, 0x00, 0x01]);
        assert_eq!(c, Capability::MultiProtocol(Family::IPV6_UNICAST));
    }

    #[test]
    fn empty_capabilities() {
        assert_eq!(round_trip(&[0x02, 0x00]), Capability::RouteRefresh); // RFC 2918
        assert_eq!(round_trip(&[0x06, 0x00]), Capability::ExtendedMessage); // RFC 8654
        assert_eq!(round_trip(&[0x46, 0x00]), Capability::EnhancedRouteRefresh); // RFC 7313
    }

    #[test]
    fn four_octet_as() {
        // code 65, len 4, AS 4200000001
        let c = round_trip(&[0x41, 0x04, 0xFA, 0x56, 0xEA, 0x01]);
        assert_eq!(c, Capability::FourOctetAs(4_200_000_001));
    }

    #[test]
    fn extended_next_hop() {
        // code 5, len 6: NLRI AFI 1, NLRI SAFI 1 (2 octets), next hop AFI 2
        let c = round_trip(&[0x05, 0x06, 0x00, 0x01, 0x00, 0x01, 0x00, 0x02]);
        assert_eq!(
            c,
            Capability::ExtendedNextHop(vec![ExtNextHop::IPV4_UNICAST_OVER_IPV6])
        );
        assert_eq!(
            ExtNextHop::IPV4_UNICAST_OVER_IPV6.family(),
            Some(Family::IPV4_UNICAST)
        );
    }

    #[test]
    fn graceful_restart() {
        // code 64, len 10: R bit + restart time 120 (0x8078),
        // IPv4/unicast with F bit, IPv6/unicast without
        let c = round_trip(&[
            0x40, 0x0A, 0x80, 0x78, 0x00, 0x01, 0x01, 0x80, 0x00, 0x02, 0x01, 0x00,
        ]);
        let Capability::GracefulRestart(g) = &c else {
            panic!()
        };
        assert!(g.restart_state());
        assert!(!g.notification());
        assert_eq!(g.restart_time, 120);
        assert!(g.families[0].forwarding_state());
        assert!(!g.families[1].forwarding_state());
        let built = GracefulRestart::new(
            true,
            120,
            vec![
                GrFamily::new(Family::IPV4_UNICAST, true),
                GrFamily::new(Family::IPV6_UNICAST, false),
            ],
        );
        assert_eq!(&built, g);
    }

    #[test]
    fn unknown_capability_is_kept() {
        // code 73 (FQDN) is not decoded here: kept as bytes
        let c = round_trip(&[0x49, 0x03, 0x01, b'h', 0x00]);
        assert_eq!(c.code(), CapabilityCode::Fqdn);
        assert!(matches!(c, Capability::Other { code: 0x49, .. }));
    }

    #[test]
    fn malformed_known_capabilities_are_errors() {
        for bad in [
            &[0x01, 0x03, 0, 1, 0][..], // MP with length 3
            &[0x41, 0x02, 0, 1],        // 4-octet AS with length 2
            &[0x02, 0x01, 0],           // route refresh with a body
            &[0x05, 0x04, 0, 1, 0, 1],  // ext NH not a multiple of 6
            &[0x40, 0x03, 0, 0, 0],     // GR with a partial family
            &[0x40, 0x00],              // GR without flags/time
            &[0x01, 0x09, 0, 1],        // overruns the parameter
            &[0x01],                    // truncated header
        ] {
            assert!(
                Capability::parse_list(Bytes::copy_from_slice(bad)).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn too_long_value_is_an_encode_error() {
        let c = Capability::Other {
            code: 200,
            value: Bytes::from(vec![0; 256]),
        };
        assert!(c.emit(&mut BytesMut::new()).is_err());
    }
}
