//! ROUTE-REFRESH message (RFC 2918), with the demarcation subtypes of RFC 7313 and room for
//! the ORF entries of RFC 5291.
//!
//! ```text
//!  0       7      15      23      31
//! +-------+-------+-------+-------+
//! |      AFI      | Res.  | SAFI  |      Res. is the message subtype since RFC 7313:
//! +-------+-------+-------+-------+      0 normal, 1 BoRR, 2 EoRR
//! |  ORF entries (RFC 5291, optional) ...
//! +-------+-------+-------+-------+
//! ```
//!
//! Contract: octets after SAFI are kept verbatim in `orf` for a normal request; for BoRR and
//! EoRR they are an error (ROUTE-REFRESH Message Error / Invalid Message Length).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Error;
use crate::iana::{MessageType, RouteRefreshSubtype};
use crate::wire::buf::Cursor;
use crate::wire::context::Family;
use crate::wire::header::Header;

/// A ROUTE-REFRESH body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    pub family: Family,
    pub subtype: RouteRefreshSubtype,
    /// RFC 5291 ORF entries of a normal request, unparsed.
    pub orf: Bytes,
}

impl RouteRefresh {
    /// A plain request for `family`.
    pub fn new(family: Family) -> Self {
        Self {
            family,
            subtype: RouteRefreshSubtype::Normal,
            orf: Bytes::new(),
        }
    }

    /// Parses a body (the message without its header).
    pub fn parse(body: Bytes) -> Result<Self, Error> {
        let len = body.len();
        let mut c = Cursor::new(body.clone());
        let (Some(afi), Some(subtype), Some(safi)) = (c.u16(), c.u8(), c.u8()) else {
            return Err(Error::Truncated {
                what: "ROUTE-REFRESH",
                needed: 4,
                available: len,
            });
        };
        let subtype = RouteRefreshSubtype::from(subtype);
        let orf = c.rest();
        let demarcation = matches!(
            subtype,
            RouteRefreshSubtype::BeginningOfRouteRefresh | RouteRefreshSubtype::EndOfRouteRefresh
        );
        if demarcation && !orf.is_empty() {
            // RFC 7313 section 5: the data is the whole message.
            let mut message = BytesMut::with_capacity(19 + len);
            Header::emit(MessageType::RouteRefresh, (19 + len) as u16, &mut message);
            message.put_slice(&body);
            return Err(Error::RouteRefreshLength {
                length: len,
                message: message.freeze(),
            });
        }
        Ok(Self {
            family: Family::new(afi.into(), safi.into()),
            subtype,
            orf,
        })
    }

    /// Octets of the body.
    pub fn buffer_len(&self) -> usize {
        4 + self.orf.len()
    }

    /// Appends the body (without header).
    pub fn emit(&self, out: &mut BytesMut) {
        out.put_u16(self.family.afi.into());
        out.put_u8(self.subtype.into());
        out.put_u8(self.family.safi.into());
        out.put_slice(&self.orf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iana::RouteRefreshSubcode;
    use crate::wire::notification::NotificationCode;

    #[test]
    fn both_ways() {
        for (wire, subtype) in [
            (&[0x00, 0x02, 0x00, 0x01][..], RouteRefreshSubtype::Normal), // IPv6 unicast
            (
                &[0x00, 0x01, 0x01, 0x01],
                RouteRefreshSubtype::BeginningOfRouteRefresh,
            ), // BoRR
            (
                &[0x00, 0x01, 0x02, 0x01],
                RouteRefreshSubtype::EndOfRouteRefresh,
            ), // EoRR
        ] {
            let r = RouteRefresh::parse(Bytes::copy_from_slice(wire)).unwrap();
            assert_eq!(r.subtype, subtype);
            let mut out = BytesMut::new();
            r.emit(&mut out);
            assert_eq!(&out[..], wire);
        }
        assert_eq!(
            RouteRefresh::parse(Bytes::from_static(&[0, 2, 0, 1])).unwrap(),
            RouteRefresh::new(Family::IPV6_UNICAST)
        );
    }

    #[test]
    fn orf_is_kept_and_borr_with_data_is_an_error() {
        let r = RouteRefresh::parse(Bytes::from_static(&[0, 1, 0, 1, 0xAA, 0xBB])).unwrap();
        assert_eq!(&r.orf[..], &[0xAA, 0xBB]);
        let e = RouteRefresh::parse(Bytes::from_static(&[0, 1, 1, 1, 0xAA])).unwrap_err();
        let n = e.notification().unwrap();
        assert_eq!(
            n.code,
            NotificationCode::RouteRefreshMessage(RouteRefreshSubcode::InvalidMessageLength)
        );
        assert_eq!(n.data.len(), 24);
        assert!(RouteRefresh::parse(Bytes::from_static(&[0, 1, 0])).is_err());
    }
}
