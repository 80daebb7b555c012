//! Message header (RFC 4271 section 4.1) and framing.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                                                               +
//! |                                                               |
//! +                                                               +
//! |                           Marker                              |
//! +                                                               +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Length               |      Type     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Contract: [`Header::parse`] applies every check of RFC 4271 section 6.1 in the RFC's order
//! (marker, type, then the length allowed for that type and the negotiated maximum of
//! RFC 8654), so the first error found maps to the right NOTIFICATION.

use bytes::{BufMut, BytesMut};

use crate::error::Error;
use crate::iana::{
    HEADER_LEN, KEEPALIVE_LEN, MAX_MESSAGE_LEN, MIN_NOTIFICATION_LEN, MIN_OPEN_LEN,
    MIN_ROUTE_REFRESH_LEN, MIN_UPDATE_LEN, MessageType,
};
use crate::wire::buf::be_u16;
use crate::wire::context::DecodeContext;

/// The all-ones marker.
pub const MARKER: [u8; 16] = [0xFF; 16];

/// A checked message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Total message length, header included.
    pub length: u16,
    /// Never `MessageType::Other`: unknown types are rejected.
    pub kind: MessageType,
}

/// The length range RFC 4271 (and RFC 8654) allows for a message type.
pub fn length_bounds(kind: MessageType, ctx: &DecodeContext) -> (usize, usize) {
    let max = ctx.max_message_len();
    match kind {
        // RFC 8654: OPEN and KEEPALIVE never use the extended size.
        MessageType::Open => (MIN_OPEN_LEN, MAX_MESSAGE_LEN),
        MessageType::Update => (MIN_UPDATE_LEN, max),
        MessageType::Notification => (MIN_NOTIFICATION_LEN, max),
        MessageType::Keepalive => (KEEPALIVE_LEN, KEEPALIVE_LEN),
        MessageType::RouteRefresh => (MIN_ROUTE_REFRESH_LEN, max),
        MessageType::Other(_) => (HEADER_LEN, max),
    }
}

impl Header {
    /// Parses and checks the first 19 octets of `buf`.
    pub fn parse(buf: &[u8], ctx: &DecodeContext) -> Result<Self, Error> {
        let head = buf.get(..HEADER_LEN).ok_or(Error::Truncated {
            what: "message header",
            needed: HEADER_LEN,
            available: buf.len(),
        })?;
        if head.get(..16) != Some(&MARKER[..]) {
            return Err(Error::BadMarker);
        }
        let length = be_u16(head, 16).unwrap_or_default();
        let raw_type = head.get(18).copied().unwrap_or_default();
        let kind = MessageType::from(raw_type);
        let (min, max) = length_bounds(kind, ctx);
        // Length outside the general range is reported before the type (RFC 4271 6.1).
        let len = usize::from(length);
        if len < HEADER_LEN || len > ctx.max_message_len() {
            return Err(Error::BadMessageLength {
                kind,
                length,
                min,
                max,
            });
        }
        if let MessageType::Other(t) = kind {
            return Err(Error::BadMessageType { kind: t });
        }
        if len < min || len > max {
            return Err(Error::BadMessageLength {
                kind,
                length,
                min,
                max,
            });
        }
        Ok(Self { length, kind })
    }

    /// Appends a header for a message of `length` octets in total.
    pub fn emit(kind: MessageType, length: u16, out: &mut BytesMut) {
        out.put_slice(&MARKER);
        out.put_u16(length);
        out.put_u8(kind.into());
    }
}

/// How long the next message at the start of `buf` is, once its header has arrived.
///
/// Returns `Ok(None)` while fewer than 19 octets are buffered, `Ok(Some(len))` when the header
/// is valid (the whole message is complete once `buf.len() >= len`), or the header error.
pub fn frame_len(buf: &[u8], ctx: &DecodeContext) -> Result<Option<usize>, Error> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    Header::parse(buf, ctx).map(|h| Some(usize::from(h.length)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iana::HeaderSubcode;
    use crate::wire::notification::NotificationCode;

    fn header(len: u16, kind: u8) -> Vec<u8> {
        let mut v = vec![0xFF; 16];
        v.extend_from_slice(&len.to_be_bytes());
        v.push(kind);
        v
    }

    #[test]
    fn keepalive_header_both_ways() {
        // 16 x 0xFF marker, length 19, type 4
        let wire = header(19, 4);
        let h = Header::parse(&wire, &DecodeContext::default()).unwrap();
        assert_eq!(
            h,
            Header {
                length: 19,
                kind: MessageType::Keepalive
            }
        );
        let mut out = BytesMut::new();
        Header::emit(h.kind, h.length, &mut out);
        assert_eq!(&out[..], &wire[..]);
    }

    fn header_error(wire: &[u8], ctx: &DecodeContext) -> (HeaderSubcode, Vec<u8>) {
        let n = Header::parse(wire, ctx)
            .unwrap_err()
            .notification()
            .unwrap();
        match n.code {
            NotificationCode::MessageHeader(s) => (s, n.data.to_vec()),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn header_errors() {
        let ctx = DecodeContext::default();
        let mut bad_marker = header(19, 4);
        bad_marker[3] = 0;
        assert_eq!(
            header_error(&bad_marker, &ctx).0,
            HeaderSubcode::ConnectionNotSynchronized
        );
        // length below 19
        assert_eq!(
            header_error(&header(18, 4), &ctx),
            (HeaderSubcode::BadMessageLength, vec![0, 18])
        );
        // KEEPALIVE must be exactly 19
        assert_eq!(
            header_error(&header(20, 4), &ctx),
            (HeaderSubcode::BadMessageLength, vec![0, 20])
        );
        // OPEN shorter than 29
        assert_eq!(
            header_error(&header(28, 1), &ctx).0,
            HeaderSubcode::BadMessageLength
        );
        // UPDATE over 4096 without extended messages
        assert_eq!(
            header_error(&header(4097, 2), &ctx),
            (HeaderSubcode::BadMessageLength, vec![0x10, 0x01])
        );
        // unknown type
        assert_eq!(
            header_error(&header(19, 9), &ctx),
            (HeaderSubcode::BadMessageType, vec![9])
        );
    }

    #[test]
    fn extended_message_limits() {
        let ctx = DecodeContext {
            extended_message: true,
            ..DecodeContext::default()
        };
        assert!(Header::parse(&header(65535, 2), &ctx).is_ok());
        // OPEN stays within 4096 even when extended messages are negotiated
        assert!(Header::parse(&header(4097, 1), &ctx).is_err());
    }

    #[test]
    fn framing() {
        let ctx = DecodeContext::default();
        assert_eq!(frame_len(&[0xFF; 10], &ctx), Ok(None));
        assert_eq!(frame_len(&header(23, 2), &ctx), Ok(Some(23)));
        assert!(frame_len(&header(3, 2), &ctx).is_err());
    }
}
