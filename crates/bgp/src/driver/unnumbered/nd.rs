//! The slice of IPv6 Neighbor Discovery (RFC 4861) that unnumbered BGP needs: Router
//! Advertisements to announce ourselves and learn the neighbour's link-local address, Router
//! Solicitations to answer, and the fixed IPv6 header they arrive in.
//!
//! Two layers, as in `crate::wire`: [`Ipv6View`] and [`IcmpView`] check lengths and give
//! field access to a received buffer; [`RouterAdvert`] is the owned form with
//! [`RouterAdvert::parse`], [`RouterAdvert::emit`] and [`RouterAdvert::buffer_len`].
//!
//! Contract:
//! - Nothing here panics on any input; short buffers are [`Error::Truncated`].
//! - Options other than the source link-layer address are kept verbatim as
//!   [`NdOption::Other`], so a parsed advertisement re-encodes to the same octets.
//! - `emit` writes a zero checksum: a raw ICMPv6 socket has the kernel fill it in (RFC 3542
//!   section 3.1). [`fill_checksum`] computes it where the addresses are known (tests).
//!
//! The ICMPv6 code points live here rather than in `crate::iana`, which holds BGP's.

use std::net::Ipv6Addr;

use bytes::{BufMut, BytesMut};

use crate::error::Error;

/// IPv6 next header value of ICMPv6.
pub const NEXT_HEADER_ICMPV6: u8 = 58;
/// ICMPv6 type of a Router Solicitation.
pub const TYPE_ROUTER_SOLICIT: u8 = 133;
/// ICMPv6 type of a Router Advertisement.
pub const TYPE_ROUTER_ADVERT: u8 = 134;
/// ND option type of the Source Link-Layer Address.
pub const OPTION_SOURCE_LINK_LAYER: u8 = 1;
/// The hop limit every ND message must arrive with: proof that it was not routed
/// (RFC 4861 section 6.1).
pub const ND_HOP_LIMIT: u8 = 255;

/// The fixed IPv6 header (RFC 8200 section 3), as a length-checked view.
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Traffic Class |           Flow Label                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Payload Length        |  Next Header  |   Hop Limit   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Source Address (128 bits)                 |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                  Destination Address (128 bits)               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Ipv6View<'a> {
    buf: &'a [u8],
}

impl<'a> Ipv6View<'a> {
    pub const HEADER_LEN: usize = 40;

    /// Checks that `buf` holds the fixed header and the payload its length field announces
    /// (trailing link-layer padding is allowed and cut off by [`Ipv6View::payload`]).
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Error> {
        let view = Ipv6View { buf };
        if buf.len() < Self::HEADER_LEN {
            return Err(truncated("IPv6 header", Self::HEADER_LEN, buf.len()));
        }
        let needed = Self::HEADER_LEN + usize::from(view.payload_len());
        if buf.len() < needed {
            return Err(truncated("IPv6 payload", needed, buf.len()));
        }
        Ok(view)
    }

    pub fn version(&self) -> u8 {
        self.buf[0] >> 4
    }

    pub fn payload_len(&self) -> u16 {
        u16::from_be_bytes([self.buf[4], self.buf[5]])
    }

    pub fn next_header(&self) -> u8 {
        self.buf[6]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buf[7]
    }

    pub fn source(&self) -> Ipv6Addr {
        addr_at(self.buf, 8)
    }

    pub fn destination(&self) -> Ipv6Addr {
        addr_at(self.buf, 24)
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.buf[Self::HEADER_LEN..Self::HEADER_LEN + usize::from(self.payload_len())]
    }
}

/// The ICMPv6 header (RFC 4443 section 2.1), as a length-checked view.
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Type      |     Code      |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         Message Body                          |
/// ```
#[derive(Debug, Clone, Copy)]
pub struct IcmpView<'a> {
    buf: &'a [u8],
}

impl<'a> IcmpView<'a> {
    pub const HEADER_LEN: usize = 4;

    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Error> {
        if buf.len() < Self::HEADER_LEN {
            return Err(truncated("ICMPv6 header", Self::HEADER_LEN, buf.len()));
        }
        Ok(IcmpView { buf })
    }

    pub fn msg_type(&self) -> u8 {
        self.buf[0]
    }

    pub fn code(&self) -> u8 {
        self.buf[1]
    }

    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }

    /// Whether the checksum is right for a message from `src` to `dst`.
    pub fn checksum_ok(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        // Summing a correct message with its checksum in place gives 0 (RFC 1071).
        checksum(src, dst, self.buf) == 0
    }

    /// The whole message, header included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
}

/// One Neighbor Discovery option (RFC 4861 section 4.6).
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Type      |    Length     |              ...              |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                              ...                              ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// Length counts units of 8 octets, type and length included; 0 is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NdOption {
    /// Type 1 with an Ethernet (6-octet) address.
    SourceLinkLayer([u8; 6]),
    /// Any other option, or type 1 of another link layer: the octets after type and length,
    /// padding included.
    Other { kind: u8, data: Vec<u8> },
}

impl NdOption {
    fn kind(&self) -> u8 {
        match self {
            Self::SourceLinkLayer(_) => OPTION_SOURCE_LINK_LAYER,
            Self::Other { kind, .. } => *kind,
        }
    }

    fn data_len(&self) -> usize {
        match self {
            Self::SourceLinkLayer(mac) => mac.len(),
            Self::Other { data, .. } => data.len(),
        }
    }

    /// Encoded octets: type, length and data padded to a multiple of 8.
    pub fn buffer_len(&self) -> usize {
        (2 + self.data_len()).div_ceil(8) * 8
    }

    /// Parses every option in `buf`, which must be a whole number of options.
    pub fn parse_all(mut buf: &[u8]) -> Result<Vec<NdOption>, Error> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            if buf.len() < 2 {
                return Err(truncated("ND option header", 2, buf.len()));
            }
            let kind = buf[0];
            // A zero length would loop forever; RFC 4861 section 4.6 says to drop the packet.
            let len = usize::from(buf[1]) * 8;
            if len == 0 {
                return Err(truncated("ND option (length 0)", 8, 0));
            }
            if buf.len() < len {
                return Err(truncated("ND option", len, buf.len()));
            }
            let data = &buf[2..len];
            out.push(match (kind, <[u8; 6]>::try_from(data)) {
                (OPTION_SOURCE_LINK_LAYER, Ok(mac)) => NdOption::SourceLinkLayer(mac),
                _ => NdOption::Other {
                    kind,
                    data: data.to_vec(),
                },
            });
            buf = &buf[len..];
        }
        Ok(out)
    }

    /// Appends the option, padding the data with zeros to a multiple of 8 octets. Data too
    /// long for the length field (over 2038 octets) is cut, which only a hand-built option can
    /// reach.
    pub fn emit(&self, out: &mut BytesMut) {
        let len = self.buffer_len().min(255 * 8);
        out.put_u8(self.kind());
        out.put_u8(u8::try_from(len / 8).unwrap_or(u8::MAX));
        let data: &[u8] = match self {
            Self::SourceLinkLayer(mac) => mac,
            Self::Other { data, .. } => data,
        };
        let data = &data[..data.len().min(len - 2)];
        out.put_slice(data);
        out.put_bytes(0, len - 2 - data.len());
    }
}

/// A Router Advertisement (RFC 4861 section 4.2), without its checksum.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Type      |     Code      |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Cur Hop Limit |M|O|  Reserved |       Router Lifetime         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         Reachable Time                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                          Retrans Timer                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Options ...
/// +-+-+-+-+-+-+-+-+-+-+-+-
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouterAdvert {
    /// The hop limit hosts should use; 0 leaves it to them.
    pub cur_hop_limit: u8,
    /// M, O and the reserved bits (RFC 5175 and RFC 4191 define some), kept as sent.
    pub flags: u8,
    /// Seconds this router may serve as a default router; 0: it is not one.
    pub router_lifetime: u16,
    /// Milliseconds; 0 leaves it unspecified.
    pub reachable_time: u32,
    /// Milliseconds; 0 leaves it unspecified.
    pub retrans_timer: u32,
    pub options: Vec<NdOption>,
}

impl RouterAdvert {
    /// Type, code, checksum and the fixed fields before the options.
    pub const FIXED_LEN: usize = 16;
    /// The M flag: addresses are available via DHCPv6.
    pub const FLAG_MANAGED: u8 = 0x80;
    /// The O flag: other configuration is available via DHCPv6.
    pub const FLAG_OTHER: u8 = 0x40;

    /// What we send on an unnumbered link: a router that is nobody's default (lifetime 0),
    /// leaves every host parameter unspecified, and names its link-layer address when known.
    pub fn announcement(mac: Option<[u8; 6]>) -> Self {
        RouterAdvert {
            cur_hop_limit: 0,
            flags: 0,
            router_lifetime: 0,
            reachable_time: 0,
            retrans_timer: 0,
            options: mac.map(NdOption::SourceLinkLayer).into_iter().collect(),
        }
    }

    /// Parses a whole ICMPv6 message (type 134, any code: checking it is the receiver's job).
    pub fn parse(msg: &[u8]) -> Result<Self, Error> {
        if msg.len() < Self::FIXED_LEN {
            return Err(truncated(
                "Router Advertisement",
                Self::FIXED_LEN,
                msg.len(),
            ));
        }
        let be32 = |i: usize| u32::from_be_bytes([msg[i], msg[i + 1], msg[i + 2], msg[i + 3]]);
        Ok(RouterAdvert {
            cur_hop_limit: msg[4],
            flags: msg[5],
            router_lifetime: u16::from_be_bytes([msg[6], msg[7]]),
            reachable_time: be32(8),
            retrans_timer: be32(12),
            options: NdOption::parse_all(&msg[Self::FIXED_LEN..])?,
        })
    }

    pub fn managed(&self) -> bool {
        self.flags & Self::FLAG_MANAGED != 0
    }

    pub fn other_config(&self) -> bool {
        self.flags & Self::FLAG_OTHER != 0
    }

    /// The sender's Ethernet address, when it named one.
    pub fn source_link_layer(&self) -> Option<[u8; 6]> {
        self.options.iter().find_map(|o| match o {
            NdOption::SourceLinkLayer(mac) => Some(*mac),
            NdOption::Other { .. } => None,
        })
    }

    pub fn buffer_len(&self) -> usize {
        Self::FIXED_LEN + self.options.iter().map(NdOption::buffer_len).sum::<usize>()
    }

    /// Appends the message with a zero checksum (see the module contract).
    pub fn emit(&self, out: &mut BytesMut) {
        out.reserve(self.buffer_len());
        out.put_u8(TYPE_ROUTER_ADVERT);
        out.put_u8(0);
        out.put_u16(0);
        out.put_u8(self.cur_hop_limit);
        out.put_u8(self.flags);
        out.put_u16(self.router_lifetime);
        out.put_u32(self.reachable_time);
        out.put_u32(self.retrans_timer);
        for o in &self.options {
            o.emit(out);
        }
    }

    pub fn to_bytes(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(self.buffer_len());
        self.emit(&mut out);
        out
    }
}

/// Writes the ICMPv6 checksum of `msg` (sent from `src` to `dst`) into its checksum field.
/// A message shorter than the ICMPv6 header is left alone.
pub fn fill_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &mut [u8]) {
    if msg.len() < IcmpView::HEADER_LEN {
        return;
    }
    msg[2..4].copy_from_slice(&[0, 0]);
    let sum = checksum(src, dst, msg);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
}

/// The Internet checksum (RFC 1071) of `msg` with the IPv6 pseudo-header of RFC 8200
/// section 8.1.
fn checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            sum += hi | pair.get(1).copied().map_or(0, u64::from);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    // Upper-layer length (32 bits), three zero octets, next header.
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    add(&len.to_be_bytes());
    add(&[0, 0, 0, NEXT_HEADER_ICMPV6]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The fold above leaves at most 16 bits.
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

fn addr_at(buf: &[u8], at: usize) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&buf[at..at + 16]);
    Ipv6Addr::from(octets)
}

fn truncated(what: &'static str, needed: usize, available: usize) -> Error {
    Error::Truncated {
        what,
        needed,
        available,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    /// FRR 8.4.4 zebra's Router Advertisement for `neighbor va interface remote-as external`,
    /// captured with `tcpdump -i vb -n -xx -vv icmp6` on the other end of the veth (the
    /// 14-octet Ethernet header removed): hop limit 255, fe80::fc64:74ff:fe19:b013 to ff02::1,
    /// cur hop limit 64, no flags, router lifetime 30 s, source link-layer fe:64:74:19:b0:13.
    pub(crate) const FRR_RA: &str = "
        600e d9d8 0018 3aff fe80 0000 0000 0000 fc64 74ff fe19 b013
        ff02 0000 0000 0000 0000 0000 0000 0001
        8600 f8e4 4000 001e 0000 0000 0000 0000 0101 fe64 7419 b013";

    /// The Linux kernel's Router Solicitation from the same capture (the end we run on):
    /// fe80::30a2:6eff:feb1:153b to ff02::2, source link-layer 32:a2:6e:b1:15:3b.
    pub(crate) const KERNEL_RS: &str = "
        6000 0000 0010 3aff fe80 0000 0000 0000 30a2 6eff feb1 153b
        ff02 0000 0000 0000 0000 0000 0000 0002
        8500 1211 0000 0000 0101 32a2 6eb1 153b";

    #[test]
    fn frr_router_advert_decodes_and_encodes() {
        let packet = hex(FRR_RA);
        let ip = Ipv6View::new_checked(&packet).unwrap();
        assert_eq!(ip.version(), 6);
        assert_eq!(ip.next_header(), NEXT_HEADER_ICMPV6);
        assert_eq!(ip.hop_limit(), 255);
        let src: Ipv6Addr = "fe80::fc64:74ff:fe19:b013".parse().unwrap();
        assert_eq!(ip.source(), src);
        assert_eq!(ip.destination(), "ff02::1".parse::<Ipv6Addr>().unwrap());
        let icmp = IcmpView::new_checked(ip.payload()).unwrap();
        assert_eq!((icmp.msg_type(), icmp.code()), (TYPE_ROUTER_ADVERT, 0));
        assert!(icmp.checksum_ok(ip.source(), ip.destination()));

        let ra = RouterAdvert::parse(ip.payload()).unwrap();
        assert_eq!(
            ra,
            RouterAdvert {
                cur_hop_limit: 64,
                flags: 0,
                router_lifetime: 30,
                reachable_time: 0,
                retrans_timer: 0,
                options: vec![NdOption::SourceLinkLayer([
                    0xfe, 0x64, 0x74, 0x19, 0xb0, 0x13
                ])],
            }
        );
        assert!(!ra.managed() && !ra.other_config());
        assert_eq!(
            ra.source_link_layer(),
            Some([0xfe, 0x64, 0x74, 0x19, 0xb0, 0x13])
        );

        let mut out = ra.to_bytes();
        assert_eq!(out.len(), ra.buffer_len());
        fill_checksum(ip.source(), ip.destination(), &mut out);
        assert_eq!(&out[..], ip.payload());
    }

    #[test]
    fn kernel_router_solicit_checksum_verifies() {
        let packet = hex(KERNEL_RS);
        let ip = Ipv6View::new_checked(&packet).unwrap();
        let icmp = IcmpView::new_checked(ip.payload()).unwrap();
        assert_eq!(icmp.msg_type(), TYPE_ROUTER_SOLICIT);
        assert_eq!(icmp.checksum(), 0x1211);
        assert!(icmp.checksum_ok(ip.source(), ip.destination()));
        let mut wrong = ip.payload().to_vec();
        wrong[5] ^= 1;
        assert!(
            !IcmpView::new_checked(&wrong)
                .unwrap()
                .checksum_ok(ip.source(), ip.destination())
        );
    }

    #[test]
    fn our_announcement_encodes() {
        let ra = RouterAdvert::announcement(Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(
            &ra.to_bytes()[..],
            &hex("8600 0000 0000 0000 0000 0000 0000 0000 0101 0200 0000 0001")[..]
        );
        let bare = RouterAdvert::announcement(None);
        assert_eq!(
            &bare.to_bytes()[..],
            &[0x86, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(RouterAdvert::parse(&bare.to_bytes()).unwrap(), bare);
    }

    #[test]
    fn unknown_options_round_trip() {
        // A prefix information option (type 3, 32 octets) and an MTU option (type 5).
        let msg = hex("8600 0000 4000 0708 0000 0000 0000 0000
             0304 40c0 0027 8d00 0009 3a80 0000 0000 2001 0db8 0001 0000 0000 0000 0000 0000
             0501 0000 0000 05dc");
        let ra = RouterAdvert::parse(&msg).unwrap();
        assert_eq!(ra.options.len(), 2);
        assert!(matches!(&ra.options[0], NdOption::Other { kind: 3, data } if data.len() == 30));
        assert_eq!(ra.source_link_layer(), None);
        assert_eq!(&ra.to_bytes()[..], &msg[..]);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert!(Ipv6View::new_checked(&[0x60; 39]).is_err());
        // Payload length 8 but no payload.
        let mut short = hex(FRR_RA)[..40].to_vec();
        short[5] = 8;
        assert!(Ipv6View::new_checked(&short).is_err());
        assert!(IcmpView::new_checked(&[0x86, 0, 0]).is_err());
        assert!(RouterAdvert::parse(&[0x86; 15]).is_err());
        // Option length 0, an option overrunning the message, a lone option octet.
        let base = "8600 0000 4000 0708 0000 0000 0000 0000";
        for tail in ["0100 0000 0000 0000", "0102 0000 0000 0000", "01"] {
            let msg = hex(&format!("{base} {tail}"));
            assert!(RouterAdvert::parse(&msg).is_err(), "{tail}");
        }
        let ra = hex(FRR_RA);
        for len in 0..=ra.len() {
            if let Ok(ip) = Ipv6View::new_checked(&ra[..len]) {
                let _ = RouterAdvert::parse(ip.payload());
            }
            let _ = RouterAdvert::parse(&ra[len.min(40)..len]);
        }
    }
}
