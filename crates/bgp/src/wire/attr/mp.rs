//! MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760 sections 3 and 4) for IPv4 and IPv6 unicast,
//! with IPv6 next hops for IPv4 NLRI (RFC 8950).
//!
//! ```text
//! MP_REACH_NLRI                                    MP_UNREACH_NLRI
//! +-----------------------------------------+      +------------------------------------+
//! | Address Family Identifier (2 octets)    |      | Address Family Identifier (2)      |
//! +-----------------------------------------+      +------------------------------------+
//! | Subsequent AFI (1 octet)                |      | Subsequent AFI (1)                 |
//! +-----------------------------------------+      +------------------------------------+
//! | Length of Next Hop Network Address (1)  |      | Withdrawn Routes (variable)        |
//! +-----------------------------------------+      +------------------------------------+
//! | Network Address of Next Hop (variable)  |
//! +-----------------------------------------+
//! | Reserved (1 octet)                      |
//! +-----------------------------------------+
//! | Network Layer Reachability Information  |
//! +-----------------------------------------+
//! ```
//!
//! Next hop lengths: 4 (IPv4), 16 (IPv6 global) or 32 (IPv6 global then link-local). IPv6
//! next hops for IPv4 NLRI are accepted only when RFC 8950 was negotiated.
//!
//! Contract: [`parse_mp_reach`] and [`parse_mp_unreach`] return `Ok(Err(UnsupportedFamily))`
//! for families the session does not decode (the caller discards the attribute), and `Err` for
//! malformed attributes, which RFC 7606 section 7.11 answers with a session reset because the
//! NLRI cannot be located.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};

use crate::error::Error;
use crate::iana::{Afi, AttrType, Safi};
use crate::wire::attr::RawAttribute;
use crate::wire::buf::Cursor;
use crate::wire::context::{DecodeContext, Family};
use crate::wire::prefix::Nlri;

/// A next hop as carried in NEXT_HOP or MP_REACH_NLRI.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NextHop {
    V4(Ipv4Addr),
    /// A global address and, on a shared link, the link-local one (RFC 2545). For BGP
    /// unnumbered the global address is often `::` or link-local itself.
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

impl NextHop {
    /// Octets of the address field.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::V4(_) => 4,
            Self::V6 {
                link_local: None, ..
            } => 16,
            Self::V6 {
                link_local: Some(_),
                ..
            } => 32,
        }
    }

    pub fn afi(&self) -> Afi {
        match self {
            Self::V4(_) => Afi::Ipv4,
            Self::V6 { .. } => Afi::Ipv6,
        }
    }

    fn emit(&self, out: &mut BytesMut) {
        match self {
            Self::V4(a) => out.put_slice(&a.octets()),
            Self::V6 { global, link_local } => {
                out.put_slice(&global.octets());
                if let Some(ll) = link_local {
                    out.put_slice(&ll.octets());
                }
            }
        }
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        let v6 = |b: &[u8]| -> Option<Ipv6Addr> {
            let a: [u8; 16] = b.try_into().ok()?;
            Some(Ipv6Addr::from(a))
        };
        match bytes.len() {
            4 => {
                let a: [u8; 4] = bytes.try_into().ok()?;
                Some(Self::V4(Ipv4Addr::from(a)))
            }
            16 => Some(Self::V6 {
                global: v6(bytes)?,
                link_local: None,
            }),
            32 => Some(Self::V6 {
                global: v6(bytes.get(..16)?)?,
                link_local: Some(v6(bytes.get(16..)?)?),
            }),
            _ => None,
        }
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(a) => a.fmt(f),
            Self::V6 {
                global,
                link_local: None,
            } => global.fmt(f),
            Self::V6 {
                global,
                link_local: Some(ll),
            } => write!(f, "{global} ({ll})"),
        }
    }
}

impl fmt::Debug for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// MP_REACH_NLRI for IPv4 or IPv6 unicast. The family is that of `nlri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpReach {
    pub next_hop: NextHop,
    pub nlri: Nlri,
}

/// MP_UNREACH_NLRI for IPv4 or IPv6 unicast. The family is that of `withdrawn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpUnreach {
    pub withdrawn: Nlri,
}

/// The NOTIFICATION data (the whole attribute) is only built on this error path.
fn malformed(code: AttrType, reason: &'static str, raw: &RawAttribute) -> Error {
    Error::MalformedAttribute {
        code,
        reason,
        data: raw.to_bytes(),
    }
}

/// Reads AFI and SAFI and checks the family is decoded on this session.
fn family(
    c: &mut Cursor,
    code: AttrType,
    raw: &RawAttribute,
    ctx: &DecodeContext,
) -> Result<Result<Family, Error>, Error> {
    let (Some(afi), Some(safi)) = (c.u16(), c.u8()) else {
        return Err(malformed(code, "shorter than AFI and SAFI", raw));
    };
    let family = Family::new(Afi::from(afi), Safi::from(safi));
    if !ctx.families.contains(family) {
        return Ok(Err(Error::UnsupportedFamily {
            afi: family.afi,
            safi: family.safi,
        }));
    }
    Ok(Ok(family))
}

/// Decodes the value of an MP_REACH_NLRI attribute.
pub fn parse_mp_reach(
    raw: &RawAttribute,
    ctx: &DecodeContext,
) -> Result<Result<MpReach, Error>, Error> {
    let code = AttrType::MpReachNlri;
    let mut c = Cursor::new(raw.value.clone());
    let family = match family(&mut c, code, raw, ctx)? {
        Ok(f) => f,
        Err(unsupported) => return Ok(Err(unsupported)),
    };
    let nh_len = c
        .u8()
        .ok_or_else(|| malformed(code, "missing next hop length", raw))?;
    let nh_bytes = c
        .take(usize::from(nh_len))
        .ok_or_else(|| malformed(code, "next hop overruns", raw))?;
    let next_hop = NextHop::parse(&nh_bytes)
        .ok_or_else(|| malformed(code, "next hop length is not 4, 16 or 32", raw))?;
    let expected = match (family.afi, next_hop) {
        (Afi::Ipv4, NextHop::V4(_)) | (Afi::Ipv6, NextHop::V6 { .. }) => true,
        (Afi::Ipv4, NextHop::V6 { .. }) => ctx.extended_next_hop.contains(family),
        _ => false,
    };
    if !expected {
        return Err(malformed(
            code,
            "next hop family not expected for this AFI",
            raw,
        ));
    }
    // RFC 4760: the reserved octet (formerly SNPA count) is ignored on receipt.
    c.u8()
        .ok_or_else(|| malformed(code, "missing reserved octet", raw))?;
    let nlri = Nlri::parse(family.afi, c.rest())?;
    Ok(Ok(MpReach { next_hop, nlri }))
}

/// Decodes the value of an MP_UNREACH_NLRI attribute.
pub fn parse_mp_unreach(
    raw: &RawAttribute,
    ctx: &DecodeContext,
) -> Result<Result<MpUnreach, Error>, Error> {
    let mut c = Cursor::new(raw.value.clone());
    let family = match family(&mut c, AttrType::MpUnreachNlri, raw, ctx)? {
        Ok(f) => f,
        Err(unsupported) => return Ok(Err(unsupported)),
    };
    let withdrawn = Nlri::parse(family.afi, c.rest())?;
    Ok(Ok(MpUnreach { withdrawn }))
}

impl MpReach {
    /// Octets of the value.
    pub fn value_len(&self) -> usize {
        3 + 1 + self.next_hop.encoded_len() + 1 + self.nlri.buffer_len()
    }

    pub fn emit_value(&self, out: &mut BytesMut) {
        emit_reach_prefix(self.nlri.afi(), &self.next_hop, out);
        self.nlri.emit(out);
    }
}

/// Writes AFI, SAFI, next hop and reserved octet: everything before the NLRI.
pub(crate) fn emit_reach_prefix(afi: Afi, next_hop: &NextHop, out: &mut BytesMut) {
    out.put_u16(afi.into());
    out.put_u8(Safi::Unicast.into());
    out.put_u8(next_hop.encoded_len() as u8); // at most 32
    next_hop.emit(out);
    out.put_u8(0);
}

impl MpUnreach {
    /// Octets of the value.
    pub fn value_len(&self) -> usize {
        3 + self.withdrawn.buffer_len()
    }

    pub fn emit_value(&self, out: &mut BytesMut) {
        out.put_u16(self.withdrawn.afi().into());
        out.put_u8(Safi::Unicast.into());
        self.withdrawn.emit(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::context::{Families, PeerKind};
    use bytes::Bytes;

    fn ctx() -> DecodeContext {
        DecodeContext::modern(PeerKind::External)
    }

    fn reach(value: Bytes) -> RawAttribute {
        RawAttribute {
            flags: 0x80,
            code: 14,
            value,
        }
    }

    fn unreach(value: Bytes) -> RawAttribute {
        RawAttribute {
            flags: 0x80,
            code: 15,
            value,
        }
    }

    #[test]
    fn ipv6_with_link_local_both_ways() {
        let value: &[u8] = &[
            0x00, 0x02, 0x01, // AFI 2, SAFI 1
            0x20, // next hop length 32
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // 2001:db8::1
            0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,    // fe80::1
            0x00, // reserved
            0x30, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, // 2001:db8:1::/48
        ];
        let m = parse_mp_reach(&reach(Bytes::from_static(value)), &ctx())
            .unwrap()
            .unwrap();
        assert_eq!(
            m.next_hop,
            NextHop::V6 {
                global: "2001:db8::1".parse().unwrap(),
                link_local: Some("fe80::1".parse().unwrap())
            }
        );
        assert_eq!(m.nlri.iter().next().unwrap().to_string(), "2001:db8:1::/48");
        let mut out = BytesMut::new();
        m.emit_value(&mut out);
        assert_eq!(&out[..], value);
        assert_eq!(m.value_len(), value.len());
    }

    #[test]
    fn ipv4_with_ipv6_next_hop_needs_rfc8950() {
        let value: &[u8] = &[
            0x00, 0x01, 0x01, // AFI 1, SAFI 1
            0x10, // next hop length 16
            0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,    // fe80::2
            0x00, // reserved
            0x18, 192, 0, 2, // 192.0.2.0/24
        ];
        let m = parse_mp_reach(&reach(Bytes::from_static(value)), &ctx())
            .unwrap()
            .unwrap();
        assert_eq!(m.nlri.afi(), Afi::Ipv4);
        let mut out = BytesMut::new();
        m.emit_value(&mut out);
        assert_eq!(&out[..], value);

        let no_enh = DecodeContext {
            extended_next_hop: Families::NONE,
            ..ctx()
        };
        assert!(parse_mp_reach(&reach(Bytes::from_static(value)), &no_enh).is_err());
    }

    #[test]
    fn unsupported_family_is_reported_not_fatal() {
        let value: &[u8] = &[0x00, 0x19, 0x46, 0x00, 0x00]; // L2VPN EVPN
        let r = parse_mp_reach(&reach(Bytes::from_static(value)), &ctx()).unwrap();
        assert!(matches!(r, Err(Error::UnsupportedFamily { .. })));
        let v6_off = DecodeContext {
            families: Families::IPV4_UNICAST,
            ..ctx()
        };
        let r = parse_mp_unreach(&unreach(Bytes::from_static(&[0, 2, 1])), &v6_off).unwrap();
        assert!(r.is_err());
    }

    #[test]
    fn malformed_mp_reach() {
        for bad in [
            &[0x00, 0x02][..],                                              // no SAFI
            &[0x00, 0x02, 0x01],                                            // no next hop length
            &[0x00, 0x02, 0x01, 0x04, 10, 0, 0, 1, 0], // IPv4 next hop for IPv6
            &[0x00, 0x02, 0x01, 0x05, 0, 0, 0, 0, 0, 0], // length 5
            &[0x00, 0x01, 0x01, 0x04, 10, 0, 0, 1],    // no reserved octet
            &[0x00, 0x01, 0x01, 0x04, 10, 0, 0, 1, 0, 0x21, 1, 2, 3, 4, 5], // /33
            &[0x00, 0x01, 0x01, 0x04, 10, 0, 0, 1, 0, 0x18, 1], // NLRI overrun
        ] {
            let r = parse_mp_reach(&reach(Bytes::copy_from_slice(bad)), &ctx());
            assert!(r.is_err(), "{bad:?}");
        }
        assert!(parse_mp_unreach(&unreach(Bytes::from_static(&[0, 2])), &ctx()).is_err());
        assert!(parse_mp_unreach(&unreach(Bytes::from_static(&[0, 2, 1, 0x81])), &ctx()).is_err());
    }

    #[test]
    fn mp_unreach_both_ways() {
        let value: &[u8] = &[0x00, 0x02, 0x01, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0]; // 2001:db8::/64
        let m = parse_mp_unreach(&unreach(Bytes::from_static(value)), &ctx())
            .unwrap()
            .unwrap();
        let mut out = BytesMut::new();
        m.emit_value(&mut out);
        assert_eq!(&out[..], value);
    }
}
