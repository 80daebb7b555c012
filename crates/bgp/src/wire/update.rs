//! UPDATE message (RFC 4271 section 4.3): the length-checked view, the owned form and its
//! encoding, and End-of-RIB markers (RFC 4724 section 2).
//!
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! +-----------------------------------------------------+
//! |   Withdrawn Routes (variable)                       |
//! +-----------------------------------------------------+
//! |   Total Path Attribute Length (2 octets)            |
//! +-----------------------------------------------------+
//! |   Path Attributes (variable)                        |
//! +-----------------------------------------------------+
//! |   Network Layer Reachability Information (variable) |
//! +-----------------------------------------------------+
//! ```
//!
//! Contract: [`UpdateView`] only checks that the two length fields fit the body, then hands
//! out lazy iterators (nothing allocated, nothing validated ahead of use). [`Update`] is the
//! owned form; [`Update::decode`] (in [`crate::wire::rfc7606`]) builds it with RFC 7606 error
//! handling, and [`Update::emit`] writes MP_REACH_NLRI and MP_UNREACH_NLRI first, then the
//! other attributes in type order.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Error;
use crate::iana::{Afi, AttrType, attr_flags as flags};
use crate::wire::attr::{self, MpReach, MpUnreach, PathAttributes, RawAttribute};
use crate::wire::buf::{Cursor, be_u16};
use crate::wire::context::{DecodeContext, Family};
use crate::wire::prefix::{Nlri, Prefix, RawNlriIter};

/// A length-checked view of an UPDATE body (the message without its header).
#[derive(Debug, Clone)]
pub struct UpdateView {
    withdrawn: Bytes,
    attributes: Bytes,
    nlri: Bytes,
}

impl UpdateView {
    /// Splits the body; fails (Malformed Attribute List, RFC 4271 6.3) when a length field
    /// runs past the end.
    pub fn parse(body: Bytes) -> Result<Self, Error> {
        let mut c = Cursor::new(body);
        let bad = |reason| Error::MalformedAttributeList { reason };
        let wlen = c.u16().ok_or(bad("missing withdrawn routes length"))?;
        let withdrawn = c
            .take(usize::from(wlen))
            .ok_or(bad("withdrawn routes overrun"))?;
        let alen = c.u16().ok_or(bad("missing total path attribute length"))?;
        let attributes = c
            .take(usize::from(alen))
            .ok_or(bad("path attributes overrun"))?;
        Ok(Self {
            withdrawn,
            attributes,
            nlri: c.rest(),
        })
    }

    pub fn withdrawn_bytes(&self) -> &Bytes {
        &self.withdrawn
    }

    pub fn attribute_bytes(&self) -> &Bytes {
        &self.attributes
    }

    pub fn nlri_bytes(&self) -> &Bytes {
        &self.nlri
    }

    /// Withdrawn IPv4 prefixes, decoded lazily.
    pub fn withdrawn(&self) -> RawNlriIter<'_> {
        RawNlriIter::new(Afi::Ipv4, &self.withdrawn)
    }

    /// Announced IPv4 prefixes of the NLRI field, decoded lazily.
    pub fn nlri(&self) -> RawNlriIter<'_> {
        RawNlriIter::new(Afi::Ipv4, &self.nlri)
    }

    /// The path attributes, one by one.
    pub fn attributes(&self) -> AttrIter {
        AttrIter {
            c: Cursor::new(self.attributes.clone()),
        }
    }

    /// The End-of-RIB family, checked on the raw octets without decoding anything.
    pub fn end_of_rib(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        if self.attributes.is_empty() {
            return Some(Family::IPV4_UNICAST);
        }
        let mut it = self.attributes();
        let a = it.next()?.ok()?;
        if it.next().is_some() || a.attr_type() != AttrType::MpUnreachNlri || a.value.len() != 3 {
            return None;
        }
        let afi = be_u16(&a.value, 0)?;
        Some(Family::new(afi.into(), a.value.get(2).copied()?.into()))
    }
}

/// Iterates path attributes. After the first error it stops.
///
/// Errors: `MalformedAttributeList` when fewer octets remain than an attribute header
/// (RFC 7606 section 4, second case), `AttributeLength` when an attribute overruns the
/// attributes (first case).
#[derive(Debug, Clone)]
pub struct AttrIter {
    c: Cursor,
}

impl Iterator for AttrIter {
    type Item = Result<RawAttribute, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.c.is_empty() {
            return None;
        }
        let head = self.c.peek();
        let (flags_byte, code) = (head.first().copied(), head.get(1).copied());
        let ext = flags_byte.is_some_and(|f| f & flags::EXTENDED_LENGTH != 0);
        let hlen = if ext { 4 } else { 3 };
        let (Some(fl), Some(code)) = (flags_byte, code) else {
            return Some(Err(self.stop_truncated()));
        };
        if head.len() < hlen {
            return Some(Err(self.stop_truncated()));
        }
        let len = if ext {
            usize::from(be_u16(head, 2).unwrap_or_default())
        } else {
            usize::from(head.get(2).copied().unwrap_or_default())
        };
        if head.len() < hlen + len {
            let available = head.len();
            let data = self.c.take(available).unwrap_or_default();
            return Some(Err(Error::AttributeLength {
                code: AttrType::from(code),
                length: len,
                data,
            }));
        }
        self.c.take(hlen);
        let value = self.c.take(len).unwrap_or_default();
        Some(Ok(RawAttribute {
            flags: fl,
            code,
            value,
        }))
    }
}

impl AttrIter {
    fn stop_truncated(&mut self) -> Error {
        let n = self.c.remaining();
        self.c.take(n);
        Error::MalformedAttributeList {
            reason: "octets left that cannot hold an attribute header",
        }
    }
}

/// An UPDATE in owned form.
///
/// IPv4 unicast routes with an IPv4 next hop travel in the classic `withdrawn` and `nlri`
/// fields; everything else in `mp_unreach` and `mp_reach`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// IPv4 prefixes in the Withdrawn Routes field.
    pub withdrawn: Nlri,
    pub attrs: PathAttributes,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    /// IPv4 prefixes in the NLRI field; their next hop is `attrs.next_hop`.
    pub nlri: Nlri,
}

impl Default for Update {
    fn default() -> Self {
        Self {
            withdrawn: Nlri::empty_v4(),
            attrs: PathAttributes::default(),
            mp_reach: None,
            mp_unreach: None,
            nlri: Nlri::empty_v4(),
        }
    }
}

impl Update {
    /// The End-of-RIB marker for `family`: an empty UPDATE for IPv4 unicast, an UPDATE with
    /// only an empty MP_UNREACH_NLRI otherwise (RFC 4724 section 2).
    pub fn end_of_rib(family: Family) -> Result<Self, Error> {
        match family {
            Family::IPV4_UNICAST => Ok(Self::default()),
            Family::IPV6_UNICAST => Ok(Self {
                mp_unreach: Some(MpUnreach {
                    withdrawn: Nlri::empty_v6(),
                }),
                ..Self::default()
            }),
            other => Err(Error::UnsupportedFamily {
                afi: other.afi,
                safi: other.safi,
            }),
        }
    }

    /// The family this UPDATE marks the End-of-RIB of, if it is such a marker.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        if !self.withdrawn.is_empty()
            || !self.nlri.is_empty()
            || self.mp_reach.is_some()
            || !self.attrs.is_empty()
        {
            return None;
        }
        match &self.mp_unreach {
            None => Some(Family::IPV4_UNICAST),
            Some(m) if m.withdrawn.is_empty() => {
                Some(Family::new(m.withdrawn.afi(), crate::iana::Safi::Unicast))
            }
            Some(_) => None,
        }
    }

    /// Every announced prefix: the NLRI field, then MP_REACH_NLRI.
    pub fn announced(&self) -> impl Iterator<Item = Prefix> + '_ {
        self.nlri
            .iter()
            .chain(self.mp_reach.iter().flat_map(|m| m.nlri.iter()))
    }

    /// Every withdrawn prefix: the Withdrawn Routes field, then MP_UNREACH_NLRI.
    pub fn withdrawals(&self) -> impl Iterator<Item = Prefix> + '_ {
        self.withdrawn
            .iter()
            .chain(self.mp_unreach.iter().flat_map(|m| m.withdrawn.iter()))
    }

    /// Whether the UPDATE announces anything.
    pub fn has_announcements(&self) -> bool {
        !self.nlri.is_empty() || self.mp_reach.as_ref().is_some_and(|m| !m.nlri.is_empty())
    }

    fn attributes_len(&self, ctx: &DecodeContext) -> usize {
        let mp = |len: usize| attr::header_len(len) + len;
        self.mp_reach.as_ref().map_or(0, |m| mp(m.value_len()))
            + self.mp_unreach.as_ref().map_or(0, |m| mp(m.value_len()))
            + self.attrs.buffer_len(ctx)
    }

    /// Octets of the body `emit` writes (without the 19-octet header).
    pub fn buffer_len(&self, ctx: &DecodeContext) -> usize {
        4 + self.withdrawn.buffer_len() + self.attributes_len(ctx) + self.nlri.buffer_len()
    }

    /// Appends the body (without header).
    pub fn emit(&self, ctx: &DecodeContext, out: &mut BytesMut) -> Result<(), Error> {
        let too_long = |what, length| Error::TooLongToEncode { what, length };
        let wlen = self.withdrawn.buffer_len();
        out.put_u16(u16::try_from(wlen).map_err(|_| too_long("withdrawn routes", wlen))?);
        self.withdrawn.emit(out);
        let alen = self.attributes_len(ctx);
        out.put_u16(u16::try_from(alen).map_err(|_| too_long("path attributes", alen))?);
        if let Some(m) = &self.mp_reach {
            attr::emit_header(
                flags::OPTIONAL,
                AttrType::MpReachNlri.into(),
                m.value_len(),
                out,
            )?;
            m.emit_value(out);
        }
        if let Some(m) = &self.mp_unreach {
            let code = AttrType::MpUnreachNlri.into();
            attr::emit_header(flags::OPTIONAL, code, m.value_len(), out)?;
            m.emit_value(out);
        }
        self.attrs.emit(ctx, out)?;
        self.nlri.emit(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_splits_and_checks_lengths() {
        // withdrawn length 2: 10.0.0.0/8; attribute length 0; NLRI: 192.0.2.0/24
        let body = Bytes::from_static(&[0, 2, 8, 10, 0, 0, 24, 192, 0, 2]);
        let v = UpdateView::parse(body).unwrap();
        assert_eq!(
            v.withdrawn()
                .map(|p| p.unwrap().to_string())
                .collect::<Vec<_>>(),
            ["10.0.0.0/8"]
        );
        assert_eq!(v.nlri().count(), 1);
        assert_eq!(v.attributes().count(), 0);
        assert!(UpdateView::parse(Bytes::from_static(&[0, 5, 1])).is_err());
        assert!(UpdateView::parse(Bytes::from_static(&[0, 0, 0, 9])).is_err());
        assert!(UpdateView::parse(Bytes::from_static(&[0])).is_err());
    }

    #[test]
    fn attribute_walk_errors() {
        // ORIGIN claiming 5 octets with only 1 present: overrun (RFC 7606 section 4 case 1)
        let v = UpdateView::parse(Bytes::from_static(&[0, 0, 0, 4, 0x40, 1, 5, 0])).unwrap();
        let e = v.attributes().next().unwrap().unwrap_err();
        assert!(matches!(
            e,
            Error::AttributeLength {
                code: AttrType::Origin,
                ..
            }
        ));
        // two octets left: cannot hold a header (case 2)
        let v = UpdateView::parse(Bytes::from_static(&[0, 0, 0, 2, 0x40, 1])).unwrap();
        let mut it = v.attributes();
        assert!(matches!(
            it.next(),
            Some(Err(Error::MalformedAttributeList { .. }))
        ));
        assert!(it.next().is_none());
        // extended length flag with only 3 octets
        let v = UpdateView::parse(Bytes::from_static(&[0, 0, 0, 3, 0x50, 1, 0])).unwrap();
        assert!(matches!(
            v.attributes().next(),
            Some(Err(Error::MalformedAttributeList { .. }))
        ));
    }

    #[test]
    fn end_of_rib_markers_both_ways() {
        let ctx = DecodeContext::modern(crate::wire::context::PeerKind::External);
        // IPv4: withdrawn length 0, attribute length 0
        let v4 = Update::end_of_rib(Family::IPV4_UNICAST).unwrap();
        let mut out = BytesMut::new();
        v4.emit(&ctx, &mut out).unwrap();
        assert_eq!(&out[..], &[0, 0, 0, 0]);
        assert_eq!(
            UpdateView::parse(out.freeze()).unwrap().end_of_rib(),
            Some(Family::IPV4_UNICAST)
        );
        assert_eq!(v4.end_of_rib_family(), Some(Family::IPV4_UNICAST));

        // IPv6: attribute length 6: MP_UNREACH_NLRI (flags 0x80, type 15, length 3, AFI 2, SAFI 1)
        let v6 = Update::end_of_rib(Family::IPV6_UNICAST).unwrap();
        let mut out = BytesMut::new();
        v6.emit(&ctx, &mut out).unwrap();
        assert_eq!(&out[..], &[0, 0, 0, 6, 0x80, 0x0F, 0x03, 0x00, 0x02, 0x01]);
        assert_eq!(
            UpdateView::parse(out.freeze()).unwrap().end_of_rib(),
            Some(Family::IPV6_UNICAST)
        );
        assert_eq!(v6.end_of_rib_family(), Some(Family::IPV6_UNICAST));

        let not = Update {
            nlri: Nlri::from_v4(["10.0.0.0/8".parse().unwrap()]),
            ..v4
        };
        assert_eq!(not.end_of_rib_family(), None);
    }
}
