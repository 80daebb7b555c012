//! IP prefixes and NLRI lists (RFC 4271 section 4.3, RFC 4760 section 5).
//!
//! ```text
//! +---------------------------+
//! |   Length (1 octet)        |   prefix length in bits
//! +---------------------------+
//! |   Prefix (variable)       |   ceil(Length / 8) octets, trailing bits irrelevant
//! +---------------------------+
//! ```
//!
//! Contract: [`Prefix4`], [`Prefix6`] and [`Prefix`] are small `Copy` values whose host bits
//! are always zero, so decoding a list of prefixes allocates nothing. An [`Nlri`] is an encoded
//! list that was validated once when it was built; iterating it cannot fail and does not
//! allocate. Equality of two `Nlri` compares the prefixes, not the trailing bits.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Error;
use crate::iana::Afi;

/// An IPv4 prefix with its host bits cleared.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix4 {
    addr: Ipv4Addr,
    len: u8,
}

/// An IPv6 prefix with its host bits cleared.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix6 {
    addr: Ipv6Addr,
    len: u8,
}

/// An IPv4 or IPv6 prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    V4(Prefix4),
    V6(Prefix6),
}

fn mask4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

impl Prefix4 {
    /// Builds a prefix, clearing host bits. Fails when `len > 32`.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Self, Error> {
        if len > 32 {
            return Err(Error::InvalidPrefixLength {
                afi: Afi::Ipv4,
                len,
            });
        }
        Ok(Self {
            addr: Ipv4Addr::from(u32::from(addr) & mask4(len)),
            len,
        })
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Octets on the wire: length octet plus the significant prefix octets.
    pub fn encoded_len(&self) -> usize {
        1 + usize::from(self.len).div_ceil(8)
    }

    /// Appends the wire encoding.
    pub fn emit(&self, out: &mut BytesMut) {
        out.put_u8(self.len);
        let octets = self.addr.octets();
        out.put_slice(
            octets
                .get(..usize::from(self.len).div_ceil(8))
                .unwrap_or_default(),
        );
    }
}

impl Prefix6 {
    /// Builds a prefix, clearing host bits. Fails when `len > 128`.
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, Error> {
        if len > 128 {
            return Err(Error::InvalidPrefixLength {
                afi: Afi::Ipv6,
                len,
            });
        }
        Ok(Self {
            addr: Ipv6Addr::from(u128::from(addr) & mask6(len)),
            len,
        })
    }

    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Octets on the wire: length octet plus the significant prefix octets.
    pub fn encoded_len(&self) -> usize {
        1 + usize::from(self.len).div_ceil(8)
    }

    /// Appends the wire encoding.
    pub fn emit(&self, out: &mut BytesMut) {
        out.put_u8(self.len);
        let octets = self.addr.octets();
        out.put_slice(
            octets
                .get(..usize::from(self.len).div_ceil(8))
                .unwrap_or_default(),
        );
    }
}

impl Prefix {
    /// Builds a prefix of either family, clearing host bits.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, Error> {
        match addr {
            IpAddr::V4(a) => Prefix4::new(a, len).map(Self::V4),
            IpAddr::V6(a) => Prefix6::new(a, len).map(Self::V6),
        }
    }

    pub fn afi(&self) -> Afi {
        match self {
            Self::V4(_) => Afi::Ipv4,
            Self::V6(_) => Afi::Ipv6,
        }
    }

    pub fn addr(&self) -> IpAddr {
        match self {
            Self::V4(p) => p.addr.into(),
            Self::V6(p) => p.addr.into(),
        }
    }

    pub fn prefix_len(&self) -> u8 {
        match self {
            Self::V4(p) => p.len,
            Self::V6(p) => p.len,
        }
    }

    /// Octets on the wire: length octet plus the significant prefix octets.
    pub fn encoded_len(&self) -> usize {
        1 + usize::from(self.prefix_len()).div_ceil(8)
    }

    /// Appends the wire encoding.
    pub fn emit(&self, out: &mut BytesMut) {
        match self {
            Self::V4(p) => p.emit(out),
            Self::V6(p) => p.emit(out),
        }
    }
}

impl From<Prefix4> for Prefix {
    fn from(p: Prefix4) -> Self {
        Self::V4(p)
    }
}

impl From<Prefix6> for Prefix {
    fn from(p: Prefix6) -> Self {
        Self::V6(p)
    }
}

impl fmt::Display for Prefix4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl fmt::Display for Prefix6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(p) => p.fmt(f),
            Self::V6(p) => p.fmt(f),
        }
    }
}

// Debug as the familiar text form: NLRI dumps stay readable.
impl fmt::Debug for Prefix4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Debug for Prefix6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Prefix {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::PrefixSyntax {
            input: s.to_owned(),
        };
        let (addr, len) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let len: u8 = len.parse().map_err(|_| bad())?;
        Self::new(addr, len)
    }
}

impl FromStr for Prefix4 {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.parse::<Prefix>()? {
            Prefix::V4(p) => Ok(p),
            Prefix::V6(_) => Err(Error::PrefixSyntax {
                input: s.to_owned(),
            }),
        }
    }
}

impl FromStr for Prefix6 {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.parse::<Prefix>()? {
            Prefix::V6(p) => Ok(p),
            Prefix::V4(_) => Err(Error::PrefixSyntax {
                input: s.to_owned(),
            }),
        }
    }
}

/// Decodes one prefix at the start of `buf`; returns it and the octets consumed.
fn decode_one(buf: &[u8], v6: bool) -> Result<(Prefix, usize), &'static str> {
    let (&len, rest) = buf.split_first().ok_or("missing prefix length")?;
    let n = usize::from(len).div_ceil(8);
    let body = rest.get(..n).ok_or("prefix overruns the NLRI field")?;
    if v6 {
        if len > 128 {
            return Err("IPv6 prefix length exceeds 128");
        }
        let mut a = [0u8; 16];
        a.get_mut(..n)
            .ok_or("prefix too long")?
            .copy_from_slice(body);
        let addr = Ipv6Addr::from(u128::from_be_bytes(a) & mask6(len));
        Ok((Prefix::V6(Prefix6 { addr, len }), 1 + n))
    } else {
        if len > 32 {
            return Err("IPv4 prefix length exceeds 32");
        }
        let mut a = [0u8; 4];
        a.get_mut(..n)
            .ok_or("prefix too long")?
            .copy_from_slice(body);
        let addr = Ipv4Addr::from(u32::from_be_bytes(a) & mask4(len));
        Ok((Prefix::V4(Prefix4 { addr, len }), 1 + n))
    }
}

fn is_v6(afi: Afi) -> Result<bool, Error> {
    match afi {
        Afi::Ipv4 => Ok(false),
        Afi::Ipv6 => Ok(true),
        other => Err(Error::UnsupportedFamily {
            afi: other,
            safi: crate::iana::Safi::Unicast,
        }),
    }
}

/// Lazily decodes unvalidated NLRI octets; yields an error once and then stops.
///
/// This is the view layer: nothing is checked up front and nothing is allocated.
#[derive(Debug, Clone)]
pub struct RawNlriIter<'a> {
    buf: &'a [u8],
    v6: bool,
    afi: Afi,
}

impl<'a> RawNlriIter<'a> {
    /// Iterates `buf` as NLRI of `afi` (IPv4 or IPv6; others yield one error).
    pub fn new(afi: Afi, buf: &'a [u8]) -> Self {
        Self {
            buf,
            v6: afi == Afi::Ipv6,
            afi,
        }
    }
}

impl Iterator for RawNlriIter<'_> {
    type Item = Result<Prefix, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        if !matches!(self.afi, Afi::Ipv4 | Afi::Ipv6) {
            self.buf = &[];
            return Some(Err(Error::UnsupportedFamily {
                afi: self.afi,
                safi: crate::iana::Safi::Unicast,
            }));
        }
        match decode_one(self.buf, self.v6) {
            Ok((p, used)) => {
                self.buf = self.buf.get(used..).unwrap_or_default();
                Some(Ok(p))
            }
            Err(reason) => {
                self.buf = &[];
                Some(Err(Error::InvalidNetworkField {
                    afi: self.afi,
                    reason,
                }))
            }
        }
    }
}

/// A validated, encoded list of IPv4 or IPv6 unicast prefixes.
#[derive(Clone)]
pub struct Nlri {
    v6: bool,
    bytes: Bytes,
}

impl Nlri {
    /// An empty list.
    pub fn empty(afi: Afi) -> Result<Self, Error> {
        Ok(Self {
            v6: is_v6(afi)?,
            bytes: Bytes::new(),
        })
    }

    /// An empty IPv4 list.
    pub fn empty_v4() -> Self {
        Self {
            v6: false,
            bytes: Bytes::new(),
        }
    }

    /// An empty IPv6 list.
    pub fn empty_v6() -> Self {
        Self {
            v6: true,
            bytes: Bytes::new(),
        }
    }

    /// Validates encoded NLRI of `afi`; the buffer is shared, not copied.
    pub fn parse(afi: Afi, bytes: Bytes) -> Result<Self, Error> {
        let v6 = is_v6(afi)?;
        let mut rest: &[u8] = &bytes;
        while !rest.is_empty() {
            let (_, used) = decode_one(rest, v6)
                .map_err(|reason| Error::InvalidNetworkField { afi, reason })?;
            rest = rest.get(used..).unwrap_or_default();
        }
        Ok(Self { v6, bytes })
    }

    /// Encodes a list of prefixes, all of family `afi`.
    pub fn from_prefixes<I>(afi: Afi, prefixes: I) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: Into<Prefix>,
    {
        let v6 = is_v6(afi)?;
        let mut out = BytesMut::new();
        for p in prefixes {
            let p = p.into();
            if p.afi() != afi {
                return Err(Error::MixedFamilies {
                    afi,
                    prefix: p.to_string(),
                });
            }
            p.emit(&mut out);
        }
        Ok(Self {
            v6,
            bytes: out.freeze(),
        })
    }

    /// Encodes IPv4 prefixes.
    pub fn from_v4(prefixes: impl IntoIterator<Item = Prefix4>) -> Self {
        let mut out = BytesMut::new();
        prefixes.into_iter().for_each(|p| p.emit(&mut out));
        Self {
            v6: false,
            bytes: out.freeze(),
        }
    }

    /// Encodes IPv6 prefixes.
    pub fn from_v6(prefixes: impl IntoIterator<Item = Prefix6>) -> Self {
        let mut out = BytesMut::new();
        prefixes.into_iter().for_each(|p| p.emit(&mut out));
        Self {
            v6: true,
            bytes: out.freeze(),
        }
    }

    /// Joins lists of the same family (copies once).
    pub fn concat<'a>(afi: Afi, lists: impl IntoIterator<Item = &'a Nlri>) -> Result<Self, Error> {
        let v6 = is_v6(afi)?;
        let mut out = BytesMut::new();
        for l in lists {
            if l.v6 != v6 {
                let prefix = l.iter().next().map(|p| p.to_string()).unwrap_or_default();
                return Err(Error::MixedFamilies { afi, prefix });
            }
            out.put_slice(&l.bytes);
        }
        Ok(Self {
            v6,
            bytes: out.freeze(),
        })
    }

    pub fn afi(&self) -> Afi {
        if self.v6 { Afi::Ipv6 } else { Afi::Ipv4 }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The encoded octets.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Octets `emit` writes.
    pub fn buffer_len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends the encoded list.
    pub fn emit(&self, out: &mut BytesMut) {
        out.put_slice(&self.bytes);
    }

    /// Iterates the prefixes without allocating.
    pub fn iter(&self) -> NlriIter<'_> {
        NlriIter {
            buf: &self.bytes,
            v6: self.v6,
        }
    }
}

impl PartialEq for Nlri {
    fn eq(&self, other: &Self) -> bool {
        self.v6 == other.v6 && (self.bytes == other.bytes || self.iter().eq(other.iter()))
    }
}

impl Eq for Nlri {}

impl fmt::Debug for Nlri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.afi())?;
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Nlri {
    type Item = Prefix;
    type IntoIter = NlriIter<'a>;

    fn into_iter(self) -> NlriIter<'a> {
        self.iter()
    }
}

/// Iterator over a validated [`Nlri`].
#[derive(Debug, Clone)]
pub struct NlriIter<'a> {
    buf: &'a [u8],
    v6: bool,
}

impl Iterator for NlriIter<'_> {
    type Item = Prefix;

    fn next(&mut self) -> Option<Prefix> {
        // The list was validated when built; an error here cannot happen, and ends iteration.
        let (p, used) = decode_one(self.buf, self.v6).ok()?;
        self.buf = self.buf.get(used..).unwrap_or_default();
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn host_bits_are_cleared() {
        assert_eq!(p("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(p("2001:db8::1/32").to_string(), "2001:db8::/32");
        assert_eq!(p("0.0.0.0/0").prefix_len(), 0);
        assert_eq!(p("1.2.3.4/32").to_string(), "1.2.3.4/32");
        assert!("1.2.3.4/33".parse::<Prefix>().is_err());
        assert!("::/129".parse::<Prefix>().is_err());
        assert!("junk".parse::<Prefix>().is_err());
    }

    #[test]
    fn ipv4_nlri_both_ways() {
        let wire: &[u8] = &[
            0x18, 192, 0, 2, // 192.0.2.0/24
            0x20, 10, 0, 0, 1,    // 10.0.0.1/32
            0x00, // 0.0.0.0/0
            0x0c, 172, 16, // 172.16.0.0/12
        ];
        let nlri = Nlri::parse(Afi::Ipv4, Bytes::from_static(wire)).unwrap();
        let got: Vec<_> = nlri.iter().collect();
        let want = vec![
            p("192.0.2.0/24"),
            p("10.0.0.1/32"),
            p("0.0.0.0/0"),
            p("172.16.0.0/12"),
        ];
        assert_eq!(got, want);
        let built = Nlri::from_prefixes(Afi::Ipv4, want).unwrap();
        assert_eq!(built.as_bytes().as_ref(), wire);
    }

    #[test]
    fn ipv6_nlri_both_ways() {
        let wire: &[u8] = &[
            0x20, 0x20, 0x01, 0x0d, 0xb8, // 2001:db8::/32
            0x80, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            1, // 2001:db8::1/128
        ];
        let nlri = Nlri::parse(Afi::Ipv6, Bytes::from_static(wire)).unwrap();
        let want = vec![p("2001:db8::/32"), p("2001:db8::1/128")];
        assert_eq!(nlri.iter().collect::<Vec<_>>(), want);
        assert_eq!(
            Nlri::from_prefixes(Afi::Ipv6, want)
                .unwrap()
                .as_bytes()
                .as_ref(),
            wire
        );
    }

    #[test]
    fn trailing_bits_are_ignored_for_equality() {
        // 10.0.0.0/7 sent as 0x0b (10 with the low bit set beyond /7): same prefix as 0x0a
        let a = Nlri::parse(Afi::Ipv4, Bytes::from_static(&[7, 0x0b])).unwrap();
        let b = Nlri::parse(Afi::Ipv4, Bytes::from_static(&[7, 0x0a])).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.iter().next(), Some(p("10.0.0.0/7")));
    }

    #[test]
    fn malformed_nlri_is_rejected() {
        for bad in [&[33u8, 1, 2, 3, 4, 5][..], &[24, 10, 0], &[8]] {
            assert!(
                Nlri::parse(Afi::Ipv4, Bytes::copy_from_slice(bad)).is_err(),
                "{bad:?}"
            );
            let mut it = RawNlriIter::new(Afi::Ipv4, bad);
            assert!(it.next().unwrap().is_err());
            assert!(it.next().is_none());
        }
        assert!(Nlri::parse(Afi::Ipv6, Bytes::from_static(&[129])).is_err());
        assert!(Nlri::parse(Afi::L2vpn, Bytes::new()).is_err());
    }

    #[test]
    fn mixed_families_are_rejected() {
        assert!(Nlri::from_prefixes(Afi::Ipv4, [p("::/0")]).is_err());
        let v4 = Nlri::from_v4(["10.0.0.0/8".parse().unwrap()]);
        assert!(Nlri::concat(Afi::Ipv6, [&v4]).is_err());
        let both = Nlri::concat(Afi::Ipv4, [&v4, &v4]).unwrap();
        assert_eq!(both.iter().count(), 2);
    }
}
