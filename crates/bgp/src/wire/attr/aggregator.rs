//! AGGREGATOR (RFC 4271 section 5.1.7) and AS4_AGGREGATOR (RFC 6793).
//!
//! ```text
//! +-------------------------------+-------------------------------+
//! | AS (2 octets, or 4 on 4-octet sessions and in AS4_AGGREGATOR) |
//! +-------------------------------+-------------------------------+
//! | IP address of the aggregating speaker (4 octets)              |
//! +-------------------------------+-------------------------------+
//! ```
//!
//! Contract: the AS is held as `u32`; on a 2-octet encoding an AS above 65535 is written as
//! AS_TRANS (the real one goes in AS4_AGGREGATOR).

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use crate::iana::AS_TRANS;

/// The AS and router that aggregated the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

impl Aggregator {
    /// Decodes a value of 6 (2-octet AS) or 8 (4-octet AS) octets, as `four_octet` says.
    pub fn parse(value: &[u8], four_octet: bool) -> Result<Self, &'static str> {
        let width = if four_octet { 4 } else { 2 };
        if value.len() != width + 4 {
            return Err("length is not 6 (2-octet AS) or 8 (4-octet AS) as negotiated");
        }
        let (asn, addr) = value.split_at_checked(width).ok_or("too short")?;
        let asn = asn.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        let addr: [u8; 4] = addr.try_into().map_err(|_| "bad address")?;
        Ok(Self {
            asn,
            address: Ipv4Addr::from(addr),
        })
    }

    pub fn value_len(four_octet: bool) -> usize {
        if four_octet { 8 } else { 6 }
    }

    pub fn emit_value(&self, four_octet: bool, out: &mut BytesMut) {
        if four_octet {
            out.put_u32(self.asn);
        } else {
            out.put_u16(u16::try_from(self.asn).unwrap_or(AS_TRANS));
        }
        out.put_slice(&self.address.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_widths() {
        // 2-octet: AS 65001, 192.0.2.1
        let two: &[u8] = &[0xFD, 0xE9, 192, 0, 2, 1];
        // 4-octet: AS 4200000001, 192.0.2.1
        let four: &[u8] = &[0xFA, 0x56, 0xEA, 0x01, 192, 0, 2, 1];
        for (wire, wide) in [(two, false), (four, true)] {
            let a = Aggregator::parse(wire, wide).unwrap();
            let mut out = BytesMut::new();
            a.emit_value(wide, &mut out);
            assert_eq!(&out[..], wire);
        }
        assert!(Aggregator::parse(two, true).is_err());
        assert!(Aggregator::parse(four, false).is_err());
        let big = Aggregator {
            asn: 4_200_000_001,
            address: Ipv4Addr::LOCALHOST,
        };
        let mut out = BytesMut::new();
        big.emit_value(false, &mut out);
        assert_eq!(&out[..2], &AS_TRANS.to_be_bytes());
    }
}
