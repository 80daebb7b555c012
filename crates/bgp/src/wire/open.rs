//! OPEN message (RFC 4271 section 4.2) with optional parameters (RFC 5492) and the extended
//! optional parameters length of RFC 9072.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+
//! |    Version    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     My Autonomous System      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Hold Time           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         BGP Identifier                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Opt Parm Len  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |             Optional Parameters (variable)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! RFC 9072: when Opt Parm Len is 255 and the next octet (Non-Ext OP Type) is 255, a 2-octet
//! Extended Opt. Parm. Length follows and every parameter has a 2-octet length:
//!
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Non-Ext OP Len.|Non-Ext OP Type|  Extended Opt. Parm. Length   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Parm. Type  |        Parameter Length       |  Value ...    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Contract: [`Open::parse`] checks structure and version only; [`Open::validate`] applies the
//! semantic checks of RFC 4271 section 6.2 (hold time, identifier, peer AS, unknown optional
//! parameters). `emit` uses the short encoding when it fits and RFC 9072 otherwise, so an OPEN
//! that needlessly used the extended encoding re-encodes shorter.

use std::net::Ipv4Addr;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Error;
use crate::iana::{AS_TRANS, BGP_VERSION, OptionalParameterType};
use crate::wire::buf::Cursor;
use crate::wire::capability::{Capability, GracefulRestart};
use crate::wire::context::Family;

/// An OPEN optional parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OptionalParameter {
    /// Type 2: one or more capabilities.
    Capabilities(Vec<Capability>),
    /// Any other type, kept verbatim (RFC 4271 asks to refuse them: see [`Open::validate`]).
    Other { kind: u8, value: Bytes },
}

impl OptionalParameter {
    fn kind(&self) -> u8 {
        match self {
            Self::Capabilities(_) => OptionalParameterType::Capabilities.into(),
            Self::Other { kind, .. } => *kind,
        }
    }

    fn value_len(&self) -> usize {
        match self {
            Self::Capabilities(caps) => caps.iter().map(Capability::buffer_len).sum(),
            Self::Other { value, .. } => value.len(),
        }
    }

    fn emit_value(&self, out: &mut BytesMut) -> Result<(), Error> {
        match self {
            Self::Capabilities(caps) => caps.iter().try_for_each(|c| c.emit(out)),
            Self::Other { value, .. } => {
                out.put_slice(value);
                Ok(())
            }
        }
    }

    fn parse(kind: u8, value: Bytes) -> Result<Self, Error> {
        match OptionalParameterType::from(kind) {
            OptionalParameterType::Capabilities => {
                Capability::parse_list(value).map(Self::Capabilities)
            }
            _ => Ok(Self::Other { kind, value }),
        }
    }
}

/// What the local side expects of the peer's OPEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenExpectations {
    /// The configured peer AS, if any (RFC 6793: compared with the 4-octet AS when sent).
    pub peer_as: Option<u32>,
    /// Our own BGP identifier; the peer must not use it.
    pub local_id: Option<Ipv4Addr>,
}

/// An OPEN message body. The version is always 4.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Open {
    /// AS_TRANS when the real AS needs 4 octets (RFC 6793).
    pub my_as: u16,
    /// Seconds; 0 disables keepalives, otherwise at least 3.
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub params: Vec<OptionalParameter>,
}

impl Open {
    /// An OPEN for `asn` with `capabilities` in one parameter. The 4-octet AS capability is
    /// added when missing, since we are always a RFC 6793 speaker.
    pub fn new(
        asn: u32,
        hold_time: u16,
        bgp_id: Ipv4Addr,
        mut capabilities: Vec<Capability>,
    ) -> Self {
        if !capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
        {
            capabilities.push(Capability::FourOctetAs(asn));
        }
        let my_as = u16::try_from(asn).unwrap_or(AS_TRANS);
        Self {
            my_as,
            hold_time,
            bgp_id,
            params: vec![OptionalParameter::Capabilities(capabilities)],
        }
    }

    /// Every capability, across all Capabilities parameters.
    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.params.iter().flat_map(|p| match p {
            OptionalParameter::Capabilities(caps) => caps.as_slice(),
            OptionalParameter::Other { .. } => &[],
        })
    }

    /// The AS from the 4-octet AS capability, if sent.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities().find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
    }

    /// The sender's AS: the 4-octet capability wins over My AS (RFC 6793 section 4.1).
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    /// Families from multiprotocol capabilities; IPv4 unicast when none was sent (RFC 4760).
    pub fn families(&self) -> Vec<Family> {
        let mut v: Vec<Family> = self
            .capabilities()
            .filter_map(|c| match c {
                Capability::MultiProtocol(f) => Some(*f),
                _ => None,
            })
            .collect();
        if v.is_empty() {
            v.push(Family::IPV4_UNICAST);
        }
        v.sort();
        v.dedup();
        v
    }

    /// The graceful restart capability, if sent.
    pub fn graceful_restart(&self) -> Option<&GracefulRestart> {
        self.capabilities().find_map(|c| match c {
            Capability::GracefulRestart(g) => Some(g),
            _ => None,
        })
    }

    /// Semantic checks of RFC 4271 section 6.2, in its order.
    pub fn validate(&self, expect: &OpenExpectations) -> Result<(), Error> {
        if let Some(expected) = expect.peer_as {
            let received = self.asn();
            // A 2-octet My AS must match too unless it is AS_TRANS (RFC 6793 section 4.1).
            let my_as_ok = self.my_as == AS_TRANS || u32::from(self.my_as) == received;
            if received != expected || !my_as_ok {
                return Err(Error::BadPeerAs { expected, received });
            }
        }
        if self.hold_time == 1 || self.hold_time == 2 {
            return Err(Error::UnacceptableHoldTime {
                hold_time: self.hold_time,
            });
        }
        // RFC 6286: any non-zero value, but not our own.
        if self.bgp_id == Ipv4Addr::UNSPECIFIED || Some(self.bgp_id) == expect.local_id {
            return Err(Error::BadBgpIdentifier { id: self.bgp_id });
        }
        if let Some(p) = self
            .params
            .iter()
            .find(|p| matches!(p, OptionalParameter::Other { .. }))
        {
            return Err(Error::UnsupportedOptionalParameter { kind: p.kind() });
        }
        Ok(())
    }

    /// Parses an OPEN body (the message without its 19-octet header).
    pub fn parse(body: Bytes) -> Result<Self, Error> {
        let available = body.len();
        let mut c = Cursor::new(body);
        let truncated = Error::Truncated {
            what: "OPEN",
            needed: 10,
            available,
        };
        let version = c.u8().ok_or(truncated.clone())?;
        if version != BGP_VERSION {
            return Err(Error::UnsupportedVersion { version });
        }
        let (Some(my_as), Some(hold_time), Some(id), Some(opt_len)) =
            (c.u16(), c.u16(), c.array::<4>(), c.u8())
        else {
            return Err(truncated);
        };
        let extended = opt_len == 255 && c.peek().first() == Some(&255);
        let params = if extended {
            c.u8(); // the Non-Ext OP Type marker
            let len = c.u16().ok_or(Error::MalformedOpen {
                reason: "truncated extended length",
            })?;
            Self::parse_params(&mut c, usize::from(len), true)?
        } else {
            Self::parse_params(&mut c, usize::from(opt_len), false)?
        };
        if !c.is_empty() {
            return Err(Error::MalformedOpen {
                reason: "octets after the optional parameters",
            });
        }
        Ok(Self {
            my_as,
            hold_time,
            bgp_id: Ipv4Addr::from(id),
            params,
        })
    }

    fn parse_params(
        c: &mut Cursor,
        len: usize,
        wide: bool,
    ) -> Result<Vec<OptionalParameter>, Error> {
        let region = c.take(len).ok_or(Error::MalformedOpen {
            reason: "optional parameters overrun the message",
        })?;
        let mut r = Cursor::new(region);
        let mut params = Vec::new();
        while !r.is_empty() {
            let kind = r.u8().ok_or(Error::MalformedOpen {
                reason: "truncated parameter",
            })?;
            let plen =
                if wide { r.u16() } else { r.u8().map(u16::from) }.ok_or(Error::MalformedOpen {
                    reason: "truncated parameter length",
                })?;
            let value = r.take(usize::from(plen)).ok_or(Error::MalformedOpen {
                reason: "parameter overruns the parameters",
            })?;
            params.push(OptionalParameter::parse(kind, value)?);
        }
        Ok(params)
    }

    /// Whether the short encoding can hold the parameters.
    fn fits_short(&self) -> bool {
        let mut total = 0usize;
        for p in &self.params {
            let l = p.value_len();
            if l > 255 {
                return false;
            }
            total += 2 + l;
        }
        // 255 would be read as the RFC 9072 marker if the first parameter type were 255.
        total < 255
    }

    /// Octets of the body `emit` writes.
    pub fn buffer_len(&self) -> usize {
        let fixed = 10;
        if self.fits_short() {
            fixed + self.params.iter().map(|p| 2 + p.value_len()).sum::<usize>()
        } else {
            fixed + 3 + self.params.iter().map(|p| 3 + p.value_len()).sum::<usize>()
        }
    }

    /// Appends the body (without header).
    pub fn emit(&self, out: &mut BytesMut) -> Result<(), Error> {
        out.put_u8(BGP_VERSION);
        out.put_u16(self.my_as);
        out.put_u16(self.hold_time);
        out.put_slice(&self.bgp_id.octets());
        if self.fits_short() {
            let total: usize = self.params.iter().map(|p| 2 + p.value_len()).sum();
            out.put_u8(total as u8); // fits_short guarantees < 255
            for p in &self.params {
                out.put_u8(p.kind());
                out.put_u8(p.value_len() as u8); // fits_short guarantees <= 255
                p.emit_value(out)?;
            }
        } else {
            let total: usize = self.params.iter().map(|p| 3 + p.value_len()).sum();
            let too_long = |length| Error::TooLongToEncode {
                what: "optional parameters",
                length,
            };
            let total16 = u16::try_from(total).map_err(|_| too_long(total))?;
            out.put_u8(255);
            out.put_u8(OptionalParameterType::ExtendedLength.into());
            out.put_u16(total16);
            for p in &self.params {
                let l = p.value_len();
                out.put_u8(p.kind());
                out.put_u16(u16::try_from(l).map_err(|_| too_long(l))?);
                p.emit_value(out)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iana::{CapabilityCode, OpenSubcode};
    use crate::wire::notification::NotificationCode;

    /// OPEN from AS 65001, hold 90, id 192.0.2.1, one Capabilities parameter holding
    /// MP IPv4/unicast, MP IPv6/unicast, route refresh and 4-octet AS 65001.
    const OPEN: &[u8] = &[
        0x04, // version 4
        0xFD, 0xE9, // my AS 65001
        0x00, 0x5A, // hold time 90
        0xC0, 0x00, 0x02, 0x01, // BGP identifier 192.0.2.1
        0x16, // optional parameters length 22
        0x02, 0x14, // parameter type 2 (capabilities), length 20
        0x01, 0x04, 0x00, 0x01, 0x00, 0x01, // MP: AFI 1, SAFI 1
        0x01, 0x04, 0x00, 0x02, 0x00, 0x01, // MP: AFI 2, SAFI 1
        0x02, 0x00, // route refresh
        0x41, 0x04, 0x00, 0x00, 0xFD, 0xE9, // 4-octet AS 65001
    ];

    #[test]
    fn open_both_ways() {
        let open = Open::parse(Bytes::from_static(OPEN)).unwrap();
        assert_eq!(open.my_as, 65001);
        assert_eq!(open.hold_time, 90);
        assert_eq!(open.bgp_id, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(open.asn(), 65001);
        assert_eq!(
            open.families(),
            vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
        );
        let built = Open::new(
            65001,
            90,
            Ipv4Addr::new(192, 0, 2, 1),
            vec![
                Capability::MultiProtocol(Family::IPV4_UNICAST),
                Capability::MultiProtocol(Family::IPV6_UNICAST),
                Capability::RouteRefresh,
            ],
        );
        assert_eq!(built, open);
        let mut out = BytesMut::new();
        open.emit(&mut out).unwrap();
        assert_eq!(&out[..], OPEN);
        assert_eq!(open.buffer_len(), OPEN.len());
        assert!(open.validate(&OpenExpectations::default()).is_ok());
    }

    #[test]
    fn four_octet_asn_uses_as_trans() {
        let open = Open::new(4_200_000_000, 180, Ipv4Addr::new(10, 0, 0, 1), vec![]);
        assert_eq!(open.my_as, AS_TRANS);
        assert_eq!(open.asn(), 4_200_000_000);
        let mut out = BytesMut::new();
        open.emit(&mut out).unwrap();
        assert_eq!(Open::parse(out.freeze()).unwrap(), open);
    }

    /// RFC 9072 encoding: Non-Ext OP Len 255, Non-Ext OP Type 255, extended length 9, and a
    /// capabilities parameter with a 2-octet length of 6 holding 4-octet AS 65001.
    const OPEN_EXTENDED: &[u8] = &[
        0x04, 0xFD, 0xE9, 0x00, 0x5A, 0xC0, 0x00, 0x02, 0x01, // version .. identifier
        0xFF, 0xFF, 0x00, 0x09, // RFC 9072 marker and extended length 9
        0x02, 0x00, 0x06, // parameter type 2, 2-octet length 6
        0x41, 0x04, 0x00, 0x00, 0xFD, 0xE9, // 4-octet AS 65001
    ];

    #[test]
    fn extended_optional_parameters() {
        let open = Open::parse(Bytes::from_static(OPEN_EXTENDED)).unwrap();
        assert_eq!(open.four_octet_as(), Some(65001));
        // Re-encoding picks the short form because it fits.
        let mut out = BytesMut::new();
        open.emit(&mut out).unwrap();
        assert_eq!(out[9], 8);
        assert_eq!(Open::parse(out.freeze()).unwrap(), open);
    }

    #[test]
    fn large_parameters_use_extended_encoding() {
        // 100 unknown capabilities of 4 octets: 600 octets, more than 255
        let caps = (0..100)
            .map(|i| Capability::Other {
                code: 200,
                value: Bytes::from(vec![i; 4]),
            })
            .collect();
        let open = Open::new(65001, 90, Ipv4Addr::new(192, 0, 2, 1), caps);
        let mut out = BytesMut::new();
        open.emit(&mut out).unwrap();
        assert_eq!(out.len(), open.buffer_len());
        assert_eq!(&out[9..11], &[0xFF, 0xFF]);
        assert_eq!(Open::parse(out.freeze()).unwrap(), open);
    }

    fn open_notification(e: Error) -> OpenSubcode {
        match e.notification().unwrap().code {
            NotificationCode::OpenMessage(s) => s,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn open_errors() {
        let mut v3 = OPEN.to_vec();
        v3[0] = 3;
        let e = Open::parse(Bytes::from(v3)).unwrap_err();
        assert_eq!(open_notification(e), OpenSubcode::UnsupportedVersionNumber);

        let open = Open::parse(Bytes::from_static(OPEN)).unwrap();
        let expect = OpenExpectations {
            peer_as: Some(65002),
            local_id: None,
        };
        assert_eq!(
            open_notification(open.validate(&expect).unwrap_err()),
            OpenSubcode::BadPeerAs
        );

        for hold in [1, 2] {
            let o = Open {
                hold_time: hold,
                ..open.clone()
            };
            let e = o.validate(&OpenExpectations::default()).unwrap_err();
            assert_eq!(open_notification(e), OpenSubcode::UnacceptableHoldTime);
        }
        for hold in [0, 3] {
            let o = Open {
                hold_time: hold,
                ..open.clone()
            };
            assert!(o.validate(&OpenExpectations::default()).is_ok());
        }

        let o = Open {
            bgp_id: Ipv4Addr::UNSPECIFIED,
            ..open.clone()
        };
        let e = o.validate(&OpenExpectations::default()).unwrap_err();
        assert_eq!(open_notification(e), OpenSubcode::BadBgpIdentifier);
        let expect = OpenExpectations {
            peer_as: None,
            local_id: Some(open.bgp_id),
        };
        let e = open.validate(&expect).unwrap_err();
        assert_eq!(open_notification(e), OpenSubcode::BadBgpIdentifier);

        let mut o = open.clone();
        o.params.push(OptionalParameter::Other {
            kind: 1,
            value: Bytes::new(),
        });
        let e = o.validate(&OpenExpectations::default()).unwrap_err();
        assert_eq!(
            open_notification(e),
            OpenSubcode::UnsupportedOptionalParameter
        );
    }

    #[test]
    fn structural_errors() {
        // truncated fixed part
        assert!(Open::parse(Bytes::from_static(&OPEN[..8])).is_err());
        // optional parameter length larger than what follows
        let mut v = OPEN.to_vec();
        v[9] = 23;
        assert!(Open::parse(Bytes::from(v)).is_err());
        // trailing octets after the parameters
        let mut v = OPEN.to_vec();
        v.push(0);
        assert!(Open::parse(Bytes::from(v)).is_err());
        // extended length overrunning
        let mut v = OPEN_EXTENDED.to_vec();
        v[12] = 0x20;
        assert!(Open::parse(Bytes::from(v)).is_err());
        // malformed capability inside a parameter
        let mut v = OPEN.to_vec();
        v[13] = 3;
        let e = Open::parse(Bytes::from(v)).unwrap_err();
        assert!(matches!(
            e,
            Error::MalformedCapability {
                code: CapabilityCode::MultiProtocol,
                ..
            } | Error::MalformedOpen { .. }
        ));
    }
}
