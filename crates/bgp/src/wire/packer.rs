//! Packing many prefixes into few UPDATE messages.
//!
//! Contract: for one attribute set and next hop, [`UpdatePacker::announce`] writes as few
//! UPDATEs as possible, each at most the negotiated maximum size. The attributes are encoded
//! once. Placement follows RFC 4760 and RFC 8950: IPv4 prefixes with an IPv4 next hop go in
//! the NLRI field with NEXT_HOP; IPv6 prefixes, and IPv4 prefixes with an IPv6 next hop, go in
//! MP_REACH_NLRI (first attribute, without NEXT_HOP). [`UpdatePacker::withdraw`] puts IPv4
//! withdrawals in the Withdrawn Routes field and IPv6 ones in MP_UNREACH_NLRI. Messages share
//! one growing buffer and come out as `Bytes`, header included, ready to write to the socket.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Error;
use crate::iana::{Afi, AttrType, HEADER_LEN, MessageType, Safi, attr_flags as flags};
use crate::wire::attr::{self, NextHop, PathAttributes, mp};
use crate::wire::context::{DecodeContext, Family};
use crate::wire::header::Header;
use crate::wire::prefix::Prefix;
use crate::wire::update::Update;

/// Largest encoded prefix: length octet and 16 address octets.
const MAX_PREFIX_LEN: usize = 17;

/// Accumulates UPDATE messages for one peer.
#[derive(Debug)]
pub struct UpdatePacker {
    ctx: DecodeContext,
    buf: BytesMut,
    messages: Vec<Bytes>,
}

impl UpdatePacker {
    /// A packer for a session with context `ctx` (AS width, maximum size, families).
    pub fn new(ctx: DecodeContext) -> Self {
        Self {
            ctx,
            buf: BytesMut::with_capacity(ctx.max_message_len()),
            messages: Vec::new(),
        }
    }

    /// Messages written so far.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The messages, in order.
    pub fn finish(self) -> Vec<Bytes> {
        self.messages
    }

    /// Announces `prefixes` with `attrs` via `next_hop`. `attrs.next_hop` is ignored: the
    /// next hop argument decides. Returns how many messages were added.
    pub fn announce(
        &mut self,
        attrs: &PathAttributes,
        next_hop: NextHop,
        prefixes: &[Prefix],
    ) -> Result<usize, Error> {
        let before = self.messages.len();
        let v4: Vec<Prefix> = prefixes
            .iter()
            .filter(|p| p.afi() == Afi::Ipv4)
            .copied()
            .collect();
        let v6: Vec<Prefix> = prefixes
            .iter()
            .filter(|p| p.afi() == Afi::Ipv6)
            .copied()
            .collect();
        let mismatch = |afi, reason| Error::NextHopMismatch {
            afi,
            next_hop: next_hop.to_string(),
            reason,
        };
        if !v4.is_empty() {
            self.check_family(Family::IPV4_UNICAST)?;
            match next_hop {
                NextHop::V4(nh) => {
                    let a = PathAttributes {
                        next_hop: Some(nh),
                        ..attrs.clone()
                    };
                    self.pack_classic(&a, &v4)?;
                }
                NextHop::V6 { .. } => {
                    if !self.ctx.extended_next_hop.contains(Family::IPV4_UNICAST) {
                        return Err(mismatch(Afi::Ipv4, "extended next hop not negotiated"));
                    }
                    self.pack_mp_reach(attrs, Afi::Ipv4, &next_hop, &v4)?;
                }
            }
        }
        if !v6.is_empty() {
            self.check_family(Family::IPV6_UNICAST)?;
            if !matches!(next_hop, NextHop::V6 { .. }) {
                return Err(mismatch(Afi::Ipv6, "IPv6 prefixes need an IPv6 next hop"));
            }
            self.pack_mp_reach(attrs, Afi::Ipv6, &next_hop, &v6)?;
        }
        Ok(self.messages.len() - before)
    }

    /// Withdraws `prefixes`. Returns how many messages were added.
    pub fn withdraw(&mut self, prefixes: &[Prefix]) -> Result<usize, Error> {
        let before = self.messages.len();
        let v4: Vec<Prefix> = prefixes
            .iter()
            .filter(|p| p.afi() == Afi::Ipv4)
            .copied()
            .collect();
        let v6: Vec<Prefix> = prefixes
            .iter()
            .filter(|p| p.afi() == Afi::Ipv6)
            .copied()
            .collect();
        let max = self.ctx.max_message_len();
        if !v4.is_empty() {
            self.check_family(Family::IPV4_UNICAST)?;
            // header, withdrawn length, withdrawn routes, attribute length 0
            let room = max - HEADER_LEN - 4;
            for chunk in Chunks::new(&v4, room) {
                let start = self.begin();
                let len: usize = chunk.iter().map(Prefix::encoded_len).sum();
                self.buf.put_u16(len as u16); // len <= room < 65536
                chunk.iter().for_each(|p| p.emit(&mut self.buf));
                self.buf.put_u16(0);
                self.end(start);
            }
        }
        if !v6.is_empty() {
            self.check_family(Family::IPV6_UNICAST)?;
            // header, two length fields, MP_UNREACH header (up to 4) and AFI/SAFI (3)
            let room = max - HEADER_LEN - 4 - 4 - 3;
            for chunk in Chunks::new(&v6, room) {
                let start = self.begin();
                let nlri: usize = chunk.iter().map(Prefix::encoded_len).sum();
                let value = 3 + nlri;
                self.buf.put_u16(0);
                self.buf.put_u16((attr::header_len(value) + value) as u16);
                attr::emit_header(
                    flags::OPTIONAL,
                    AttrType::MpUnreachNlri.into(),
                    value,
                    &mut self.buf,
                )?;
                self.buf.put_u16(Afi::Ipv6.into());
                self.buf.put_u8(Safi::Unicast.into());
                chunk.iter().for_each(|p| p.emit(&mut self.buf));
                self.end(start);
            }
        }
        Ok(self.messages.len() - before)
    }

    /// Adds the End-of-RIB marker for `family`.
    pub fn end_of_rib(&mut self, family: Family) -> Result<(), Error> {
        let u = Update::end_of_rib(family)?;
        let start = self.begin();
        u.emit(&self.ctx, &mut self.buf)?;
        self.end(start);
        Ok(())
    }

    fn check_family(&self, family: Family) -> Result<(), Error> {
        if self.ctx.families.contains(family) {
            Ok(())
        } else {
            Err(Error::UnsupportedFamily {
                afi: family.afi,
                safi: family.safi,
            })
        }
    }

    fn begin(&mut self) -> usize {
        let start = self.buf.len();
        Header::emit(MessageType::Update, 0, &mut self.buf);
        start
    }

    /// Patches the length into the header and cuts the message off the buffer.
    fn end(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u16; // bounded by the room computations
        if let Some(field) = self.buf.get_mut(start + 16..start + 18) {
            field.copy_from_slice(&len.to_be_bytes());
        }
        self.messages.push(self.buf.split().freeze());
    }

    fn encode_attrs(&self, attrs: &PathAttributes) -> Result<BytesMut, Error> {
        let mut common = BytesMut::with_capacity(attrs.buffer_len(&self.ctx));
        attrs.emit(&self.ctx, &mut common)?;
        Ok(common)
    }

    fn room(&self, overhead: usize) -> Result<usize, Error> {
        let max = self.ctx.max_message_len();
        match max.checked_sub(overhead) {
            Some(room) if room >= MAX_PREFIX_LEN => Ok(room),
            _ => Err(Error::TooLongToEncode {
                what: "path attributes",
                length: overhead,
            }),
        }
    }

    fn pack_classic(&mut self, attrs: &PathAttributes, prefixes: &[Prefix]) -> Result<(), Error> {
        let common = self.encode_attrs(attrs)?;
        let room = self.room(HEADER_LEN + 4 + common.len())?;
        for chunk in Chunks::new(prefixes, room) {
            let start = self.begin();
            self.buf.put_u16(0);
            self.buf.put_u16(common.len() as u16); // fits: checked by room()
            self.buf.put_slice(&common);
            chunk.iter().for_each(|p| p.emit(&mut self.buf));
            self.end(start);
        }
        Ok(())
    }

    fn pack_mp_reach(
        &mut self,
        attrs: &PathAttributes,
        afi: Afi,
        next_hop: &NextHop,
        prefixes: &[Prefix],
    ) -> Result<(), Error> {
        // RFC 4760: no NEXT_HOP when there is no classic NLRI.
        let common = self.encode_attrs(&PathAttributes {
            next_hop: None,
            ..attrs.clone()
        })?;
        let fixed = 5 + next_hop.encoded_len(); // AFI, SAFI, NH length, NH, reserved
        let room = self.room(HEADER_LEN + 4 + 4 + fixed + common.len())?;
        for chunk in Chunks::new(prefixes, room) {
            let nlri: usize = chunk.iter().map(Prefix::encoded_len).sum();
            let value = fixed + nlri;
            let start = self.begin();
            self.buf.put_u16(0);
            self.buf
                .put_u16((attr::header_len(value) + value + common.len()) as u16);
            attr::emit_header(
                flags::OPTIONAL,
                AttrType::MpReachNlri.into(),
                value,
                &mut self.buf,
            )?;
            mp::emit_reach_prefix(afi, next_hop, &mut self.buf);
            chunk.iter().for_each(|p| p.emit(&mut self.buf));
            self.buf.put_slice(&common);
            self.end(start);
        }
        Ok(())
    }
}

/// Splits prefixes into runs whose encodings fit `room` octets each.
struct Chunks<'a> {
    rest: &'a [Prefix],
    room: usize,
}

impl<'a> Chunks<'a> {
    fn new(prefixes: &'a [Prefix], room: usize) -> Self {
        Self {
            rest: prefixes,
            room,
        }
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [Prefix];

    fn next(&mut self) -> Option<&'a [Prefix]> {
        if self.rest.is_empty() {
            return None;
        }
        let mut used = 0;
        let mut n = 0;
        for p in self.rest {
            let l = p.encoded_len();
            if used + l > self.room {
                break;
            }
            used += l;
            n += 1;
        }
        // `room` always holds at least one prefix; guard anyway so this always progresses.
        let n = n.max(1);
        let (chunk, rest) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = rest;
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::iana::Origin;
    use crate::wire::attr::AsPath;
    use crate::wire::context::PeerKind;
    use crate::wire::message::{Received, decode_message};
    use crate::wire::rfc7606::UpdateOutcome;

    fn attrs() -> PathAttributes {
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence([65001])),
            ..Default::default()
        }
    }

    fn v4_host_routes(n: u32) -> Vec<Prefix> {
        (0..n)
            .map(|i| Prefix::new(Ipv4Addr::from(0x0A00_0000 + i).into(), 32).unwrap())
            .collect()
    }

    fn decode_all(msgs: &[Bytes], ctx: &DecodeContext) -> Vec<Update> {
        msgs.iter()
            .map(|m| {
                assert!(m.len() <= ctx.max_message_len());
                match decode_message(m.clone(), ctx).unwrap() {
                    Received::Update(o) => match *o {
                        UpdateOutcome::Ok(u) => u,
                        other => panic!("{other:?}"),
                    },
                    other => panic!("{other:?}"),
                }
            })
            .collect()
    }

    #[test]
    fn classic_ipv4_fills_messages() {
        let ctx = DecodeContext::modern(PeerKind::External);
        let prefixes = v4_host_routes(2000);
        let mut p = UpdatePacker::new(ctx);
        let nh = NextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
        let n = p.announce(&attrs(), nh, &prefixes).unwrap();
        let msgs = p.finish();
        assert_eq!(n, msgs.len());
        // 5 octets per /32; (4096 - 23 - attributes) / 5 per message
        let attrs_len = attrs().buffer_len(&ctx) + 7;
        let per_msg = (4096 - 23 - attrs_len) / 5;
        assert_eq!(msgs.len(), 2000usize.div_ceil(per_msg));
        let updates = decode_all(&msgs, &ctx);
        let got: Vec<Prefix> = updates.iter().flat_map(|u| u.announced()).collect();
        assert_eq!(got, prefixes);
        assert!(
            updates
                .iter()
                .all(|u| u.attrs.next_hop == Some(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert!(updates.iter().all(|u| u.mp_reach.is_none()));
    }

    #[test]
    fn ipv6_and_rfc8950_use_mp_reach() {
        let ctx = DecodeContext {
            extended_message: true,
            ..DecodeContext::modern(PeerKind::External)
        };
        let mut prefixes = v4_host_routes(20_000);
        prefixes.extend((0..3000u128).map(|i| {
            Prefix::new(
                std::net::Ipv6Addr::from((0x2001_0db8u128 << 96) + (i << 64)).into(),
                64,
            )
            .unwrap()
        }));
        let nh = NextHop::V6 {
            global: "2001:db8::1".parse().unwrap(),
            link_local: None,
        };
        let mut p = UpdatePacker::new(ctx);
        p.announce(&attrs(), nh, &prefixes).unwrap();
        let msgs = p.finish();
        // 20000 x 5 octets = 100000 octets of IPv4 NLRI: 2 extended messages; IPv6 one more.
        assert_eq!(msgs.len(), 3);
        let updates = decode_all(&msgs, &ctx);
        let got: Vec<Prefix> = updates.iter().flat_map(|u| u.announced()).collect();
        assert_eq!(got, prefixes);
        assert!(
            updates
                .iter()
                .all(|u| u.mp_reach.as_ref().unwrap().next_hop == nh)
        );
        assert!(
            updates
                .iter()
                .all(|u| u.attrs.next_hop.is_none() && u.nlri.is_empty())
        );
    }

    #[test]
    fn withdrawals_both_families() {
        let ctx = DecodeContext::modern(PeerKind::Internal);
        let mut prefixes = v4_host_routes(1000);
        prefixes.push("2001:db8::/32".parse().unwrap());
        let mut p = UpdatePacker::new(ctx);
        p.withdraw(&prefixes).unwrap();
        p.end_of_rib(Family::IPV6_UNICAST).unwrap();
        let msgs = p.finish();
        // (4096 - 23) / 5 = 814 per message: 2 for IPv4, 1 for IPv6, 1 End-of-RIB
        assert_eq!(msgs.len(), 4);
        let updates = decode_all(&msgs, &ctx);
        let got: Vec<Prefix> = updates[..3].iter().flat_map(|u| u.withdrawals()).collect();
        assert_eq!(got, prefixes);
        assert_eq!(updates[3].end_of_rib_family(), Some(Family::IPV6_UNICAST));
    }

    #[test]
    fn misuse_is_reported() {
        let ctx = DecodeContext::default(); // IPv4 only, no RFC 8950
        let v6_nh = NextHop::V6 {
            global: "2001:db8::1".parse().unwrap(),
            link_local: None,
        };
        let mut p = UpdatePacker::new(ctx);
        assert!(p.announce(&attrs(), v6_nh, &v4_host_routes(1)).is_err());
        assert!(p.withdraw(&["2001:db8::/32".parse().unwrap()]).is_err());
        let ctx6 = DecodeContext::modern(PeerKind::External);
        let mut p = UpdatePacker::new(ctx6);
        let v4_nh = NextHop::V4(Ipv4Addr::LOCALHOST);
        assert!(
            p.announce(&attrs(), v4_nh, &["2001:db8::/32".parse().unwrap()])
                .is_err()
        );
        let huge = PathAttributes {
            communities: (0..1100).map(crate::wire::attr::Community).collect(),
            ..attrs()
        };
        assert!(p.announce(&huge, v4_nh, &v4_host_routes(1)).is_err());
        assert!(p.is_empty());
    }
}
