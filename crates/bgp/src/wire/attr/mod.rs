//! Path attributes (RFC 4271 section 4.3): the raw view of one attribute, the owned attribute
//! set, and its encoding.
//!
//! ```text
//!  0                   1
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Attr. Flags  |Attr. Type Code|   flags: Optional, Transitive, Partial, Extended Length
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Attr. Length (1 octet, or 2 when Extended Length is set) |  Attr. Value (variable) ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Contract: [`PathAttributes`] holds every attribute we understand in typed form and every
//! other one as a [`RawAttribute`] with its flags. Encoding is canonical: attributes in
//! ascending type order (MP_REACH_NLRI / MP_UNREACH_NLRI, which live on the UPDATE, go first),
//! the Extended Length bit exactly when the value exceeds 255 octets (unknown attributes keep
//! it if they arrived with it), well-known flags as the RFCs define them, and the Partial bit
//! kept for optional transitive attributes that arrived with it. Decoding with RFC 7606 error
//! handling lives in [`crate::wire::rfc7606`].

pub mod aggregator;
pub mod as4;
pub mod as_path;
pub mod community;
pub mod mp;

use std::net::Ipv4Addr;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Error;
use crate::iana::{AttrType, Origin, attr_flags as flags};
use crate::wire::context::DecodeContext;

pub use aggregator::Aggregator;
pub use as_path::{AsPath, AsSegment};
pub use community::{Community, ExtCommunity, LargeCommunity};
pub use mp::{MpReach, MpUnreach, NextHop};

/// The Optional and Transitive bits RFC 4271 and later RFCs define for a type we know.
pub fn defined_flags(code: AttrType) -> Option<u8> {
    use AttrType as A;
    Some(match code {
        A::Origin | A::AsPath | A::NextHop | A::LocalPref | A::AtomicAggregate => flags::TRANSITIVE,
        A::MultiExitDisc | A::OriginatorId | A::ClusterList | A::MpReachNlri | A::MpUnreachNlri => {
            flags::OPTIONAL
        }
        A::Aggregator
        | A::Communities
        | A::ExtendedCommunities
        | A::As4Path
        | A::As4Aggregator
        | A::LargeCommunities => flags::OPTIONAL | flags::TRANSITIVE,
        _ => return None,
    })
}

/// Octets of an attribute header for a value of `len` octets in canonical encoding.
pub fn header_len(len: usize) -> usize {
    if len > 255 { 4 } else { 3 }
}

/// Writes an attribute header; sets Extended Length when `len` needs it or `flags` has it.
pub(crate) fn emit_header(
    flags: u8,
    code: u8,
    len: usize,
    out: &mut BytesMut,
) -> Result<(), Error> {
    let len16 = u16::try_from(len).map_err(|_| Error::TooLongToEncode {
        what: "path attribute",
        length: len,
    })?;
    if len > 255 || flags & flags::EXTENDED_LENGTH != 0 {
        out.put_u8(flags | flags::EXTENDED_LENGTH);
        out.put_u8(code);
        out.put_u16(len16);
    } else {
        out.put_u8(flags);
        out.put_u8(code);
        out.put_u8(len16 as u8); // len <= 255 here
    }
    Ok(())
}

/// One attribute as found on the wire: the view layer, and how unknown attributes are kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    /// All four flag bits as received (Extended Length included).
    pub flags: u8,
    pub code: u8,
    pub value: Bytes,
}

impl RawAttribute {
    pub fn attr_type(&self) -> AttrType {
        AttrType::from(self.code)
    }

    pub fn is_optional(&self) -> bool {
        self.flags & flags::OPTIONAL != 0
    }

    pub fn is_transitive(&self) -> bool {
        self.flags & flags::TRANSITIVE != 0
    }

    pub fn is_partial(&self) -> bool {
        self.flags & flags::PARTIAL != 0
    }

    pub fn buffer_len(&self) -> usize {
        let ext = self.flags & flags::EXTENDED_LENGTH != 0 || self.value.len() > 255;
        self.value.len() + if ext { 4 } else { 3 }
    }

    pub fn emit(&self, out: &mut BytesMut) -> Result<(), Error> {
        emit_header(self.flags, self.code, self.value.len(), out)?;
        out.put_slice(&self.value);
        Ok(())
    }

    /// The attribute re-encoded, as NOTIFICATION data wants it.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.buffer_len());
        // A value read from the wire fits its length field, so this cannot fail.
        let _ = self.emit(&mut out);
        out.freeze()
    }
}

/// The path attributes of an UPDATE, except MP_REACH_NLRI and MP_UNREACH_NLRI which
/// [`crate::wire::update::Update`] holds next to the NLRI.
///
/// Empty lists mean "absent": an empty COMMUNITIES (or similar) attribute is malformed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PathAttributes {
    pub origin: Option<Origin>,
    pub as_path: Option<AsPath>,
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub communities: Vec<Community>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    pub extended_communities: Vec<ExtCommunity>,
    /// Only meaningful on 2-octet sessions; see [`as4::reconcile`].
    pub as4_path: Option<AsPath>,
    pub as4_aggregator: Option<Aggregator>,
    pub large_communities: Vec<LargeCommunity>,
    /// Attributes we do not understand, ordered by type code, with their flags.
    pub unknown: Vec<RawAttribute>,
    /// Bit `n` set: the known optional transitive attribute of type `n` arrived with the
    /// Partial bit, which must stay set when it is passed on (RFC 4271 section 5).
    pub partial: u64,
}

type Emitter<'a> = &'a dyn Fn(&mut BytesMut);

impl PathAttributes {
    /// Whether no attribute at all is present.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Marks a known attribute as having arrived with the Partial bit.
    pub fn set_partial(&mut self, code: AttrType) {
        if let Some(bit) = 1u64.checked_shl(u32::from(u8::from(code))) {
            self.partial |= bit;
        }
    }

    pub fn is_partial(&self, code: AttrType) -> bool {
        1u64.checked_shl(u32::from(u8::from(code)))
            .is_some_and(|bit| self.partial & bit != 0)
    }

    /// RFC 4271 section 5 for passing a route on: unknown optional non-transitive attributes
    /// are dropped, unknown optional transitive ones get the Partial bit.
    pub fn prepare_for_readvertisement(&mut self) {
        self.unknown.retain(RawAttribute::is_transitive);
        for a in &mut self.unknown {
            if a.is_optional() {
                a.flags |= flags::PARTIAL;
            }
        }
    }

    /// Calls `f(type, value length, writer)` for each present known attribute, in type order.
    fn visit(&self, ctx: &DecodeContext, f: &mut dyn FnMut(AttrType, usize, Emitter<'_>)) {
        let four = ctx.four_octet_as;
        if let Some(o) = self.origin {
            f(AttrType::Origin, 1, &|out| out.put_u8(o.into()));
        }
        if let Some(p) = &self.as_path {
            f(AttrType::AsPath, p.value_len(four), &|out| {
                p.emit_value(four, out)
            });
        }
        if let Some(nh) = self.next_hop {
            f(AttrType::NextHop, 4, &|out| out.put_slice(&nh.octets()));
        }
        if let Some(med) = self.med {
            f(AttrType::MultiExitDisc, 4, &|out| out.put_u32(med));
        }
        if let Some(lp) = self.local_pref {
            f(AttrType::LocalPref, 4, &|out| out.put_u32(lp));
        }
        if self.atomic_aggregate {
            f(AttrType::AtomicAggregate, 0, &|_| {});
        }
        if let Some(a) = &self.aggregator {
            f(AttrType::Aggregator, Aggregator::value_len(four), &|out| {
                a.emit_value(four, out)
            });
        }
        if !self.communities.is_empty() {
            let v = &self.communities;
            f(AttrType::Communities, 4 * v.len(), &|out| {
                community::emit_communities(v, out)
            });
        }
        if let Some(id) = self.originator_id {
            f(AttrType::OriginatorId, 4, &|out| {
                out.put_slice(&id.octets())
            });
        }
        if !self.cluster_list.is_empty() {
            let v = &self.cluster_list;
            f(AttrType::ClusterList, 4 * v.len(), &|out| {
                v.iter().for_each(|id| out.put_slice(&id.octets()))
            });
        }
        if !self.extended_communities.is_empty() {
            let v = &self.extended_communities;
            f(AttrType::ExtendedCommunities, 8 * v.len(), &|out| {
                community::emit_ext_communities(v, out)
            });
        }
        // AS4_PATH and AS4_AGGREGATOR always carry 4-octet AS numbers.
        if let Some(p) = &self.as4_path {
            f(AttrType::As4Path, p.value_len(true), &|out| {
                p.emit_value(true, out)
            });
        }
        if let Some(a) = &self.as4_aggregator {
            f(AttrType::As4Aggregator, 8, &|out| a.emit_value(true, out));
        }
        if !self.large_communities.is_empty() {
            let v = &self.large_communities;
            f(AttrType::LargeCommunities, 12 * v.len(), &|out| {
                community::emit_large_communities(v, out)
            });
        }
    }

    /// Octets `emit` writes.
    pub fn buffer_len(&self, ctx: &DecodeContext) -> usize {
        let mut total: usize = self.unknown.iter().map(RawAttribute::buffer_len).sum();
        self.visit(ctx, &mut |_, len, _| total += header_len(len) + len);
        total
    }

    /// Appends every attribute in canonical order.
    pub fn emit(&self, ctx: &DecodeContext, out: &mut BytesMut) -> Result<(), Error> {
        let mut unknown = self.unknown.iter().peekable();
        let mut result = Ok(());
        self.visit(ctx, &mut |code, len, body| {
            let raw = u8::from(code);
            while let Some(u) = unknown.next_if(|u| u.code < raw) {
                result = result.clone().and_then(|()| u.emit(out));
            }
            let mut fl = defined_flags(code).unwrap_or(flags::OPTIONAL | flags::TRANSITIVE);
            if fl == flags::OPTIONAL | flags::TRANSITIVE && self.is_partial(code) {
                fl |= flags::PARTIAL;
            }
            result = result.clone().and_then(|()| emit_header(fl, raw, len, out));
            body(out);
        });
        for u in unknown {
            result = result.and_then(|()| u.emit(out));
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::context::PeerKind;

    #[test]
    fn canonical_encoding_with_unknown_interleaved() {
        let attrs = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence([65001])),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            communities: vec![Community::NO_EXPORT],
            large_communities: vec![LargeCommunity::new(65001, 0, 1)],
            unknown: vec![RawAttribute {
                flags: flags::OPTIONAL | flags::TRANSITIVE | flags::PARTIAL,
                code: 20,
                value: Bytes::from_static(&[0xAB]),
            }],
            ..Default::default()
        };
        let ctx = DecodeContext::modern(PeerKind::External);
        let mut out = BytesMut::new();
        attrs.emit(&ctx, &mut out).unwrap();
        let expected: &[u8] = &[
            0x40, 0x01, 0x01, 0x00, // ORIGIN IGP
            0x40, 0x02, 0x06, 0x02, 0x01, 0x00, 0x00, 0xFD, 0xE9, // AS_PATH SEQ 65001
            0x40, 0x03, 0x04, 192, 0, 2, 1, // NEXT_HOP
            0xC0, 0x08, 0x04, 0xFF, 0xFF, 0xFF, 0x01, // COMMUNITIES NO_EXPORT
            0xE0, 0x14, 0x01, 0xAB, // unknown type 20, flags kept (Partial)
            0xC0, 0x20, 0x0C, 0, 0, 0xFD, 0xE9, 0, 0, 0, 0, 0, 0, 0, 1, // LARGE 65001:0:1
        ];
        assert_eq!(&out[..], expected);
        assert_eq!(attrs.buffer_len(&ctx), expected.len());
    }

    #[test]
    fn readvertisement_drops_non_transitive_and_marks_partial() {
        let raw = |flags, code| RawAttribute {
            flags,
            code,
            value: Bytes::new(),
        };
        let mut attrs = PathAttributes {
            unknown: vec![
                raw(flags::OPTIONAL, 50),
                raw(flags::OPTIONAL | flags::TRANSITIVE, 51),
            ],
            ..Default::default()
        };
        attrs.prepare_for_readvertisement();
        assert_eq!(
            attrs.unknown,
            vec![raw(
                flags::OPTIONAL | flags::TRANSITIVE | flags::PARTIAL,
                51
            )]
        );
    }

    #[test]
    fn extended_length_when_needed() {
        let attrs = PathAttributes {
            communities: (0..100).map(Community).collect(),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        attrs.emit(&DecodeContext::default(), &mut out).unwrap();
        // flags O|T|E, type 8, 2-octet length 400
        assert_eq!(&out[..4], &[0xD0, 0x08, 0x01, 0x90]);
        assert_eq!(out.len(), attrs.buffer_len(&DecodeContext::default()));
    }

    #[test]
    fn partial_bit_is_kept_on_known_optional_transitive() {
        let mut attrs = PathAttributes {
            communities: vec![Community::NO_EXPORT],
            ..Default::default()
        };
        attrs.set_partial(AttrType::Communities);
        let mut out = BytesMut::new();
        attrs.emit(&DecodeContext::default(), &mut out).unwrap();
        assert_eq!(out[0], 0xE0);
    }
}
