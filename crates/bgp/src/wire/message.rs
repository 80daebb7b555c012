//! Whole messages: decoding one framed message and encoding any message with its header.
//!
//! KEEPALIVE (RFC 4271 section 4.4) is a bare header of 19 octets and lives here too.
//!
//! Contract: [`decode_message`] takes exactly one message (header included), checks the
//! header against the context, and decodes the body. Every error it returns is one that
//! RFC 4271 answers with a NOTIFICATION and a session reset ([`Error::notification`]); an
//! UPDATE whose RFC 7606 outcome is a reset is returned as that error too, so callers have one
//! place to handle resets. [`Message::emit`] refuses messages over the negotiated maximum.

use bytes::{Bytes, BytesMut};

use crate::error::Error;
use crate::iana::{HEADER_LEN, MessageType};
use crate::wire::context::DecodeContext;
use crate::wire::header::{Header, MARKER, length_bounds};
use crate::wire::notification::Notification;
use crate::wire::open::Open;
use crate::wire::rfc7606::UpdateOutcome;
use crate::wire::route_refresh::RouteRefresh;
use crate::wire::update::Update;

/// A complete KEEPALIVE message.
pub const KEEPALIVE: [u8; HEADER_LEN] = {
    let mut m = [0xFF; HEADER_LEN];
    m[16] = 0;
    m[17] = HEADER_LEN as u8;
    m[18] = 4;
    m
};

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    /// Boxed: an UPDATE is far larger than the other messages.
    Update(Box<Update>),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// A message received, with the UPDATE already put through RFC 7606.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Open(Open),
    /// Never [`UpdateOutcome::SessionReset`]: [`decode_message`] returns that as `Err`.
    /// Boxed: an UPDATE is far larger than the other messages.
    Update(Box<UpdateOutcome>),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// Decodes one complete message (header included).
pub fn decode_message(message: Bytes, ctx: &DecodeContext) -> Result<Received, Error> {
    let header = Header::parse(&message, ctx)?;
    if message.len() != usize::from(header.length) {
        let (min, max) = length_bounds(header.kind, ctx);
        return Err(Error::BadMessageLength {
            kind: header.kind,
            length: header.length,
            min,
            max,
        });
    }
    let body = message.slice(HEADER_LEN..);
    Ok(match header.kind {
        MessageType::Open => Received::Open(Open::parse(body)?),
        MessageType::Update => match Update::decode(body, ctx) {
            UpdateOutcome::SessionReset(r) => return Err(r.error),
            outcome => Received::Update(Box::new(outcome)),
        },
        MessageType::Notification => Received::Notification(Notification::parse(body)?),
        MessageType::Keepalive => Received::Keepalive,
        MessageType::RouteRefresh => Received::RouteRefresh(RouteRefresh::parse(body)?),
        MessageType::Other(kind) => return Err(Error::BadMessageType { kind }),
    })
}

impl Message {
    pub fn kind(&self) -> MessageType {
        match self {
            Self::Open(_) => MessageType::Open,
            Self::Update(_) => MessageType::Update,
            Self::Notification(_) => MessageType::Notification,
            Self::Keepalive => MessageType::Keepalive,
            Self::RouteRefresh(_) => MessageType::RouteRefresh,
        }
    }

    /// Octets of the whole message, header included.
    pub fn buffer_len(&self, ctx: &DecodeContext) -> usize {
        HEADER_LEN
            + match self {
                Self::Open(m) => m.buffer_len(),
                Self::Update(m) => m.buffer_len(ctx),
                Self::Notification(m) => m.buffer_len(),
                Self::Keepalive => 0,
                Self::RouteRefresh(m) => m.buffer_len(),
            }
    }

    /// Appends the whole message. Fails, leaving `out` as it was, when the message exceeds
    /// what the context allows for its type.
    pub fn emit(&self, ctx: &DecodeContext, out: &mut BytesMut) -> Result<(), Error> {
        let length = self.buffer_len(ctx);
        let (_, max) = length_bounds(self.kind(), ctx);
        if length > max {
            return Err(Error::MessageTooLong {
                kind: self.kind(),
                length,
                max,
            });
        }
        let start = out.len();
        out.reserve(length);
        out.extend_from_slice(&MARKER);
        out.extend_from_slice(&(length as u16).to_be_bytes()); // length <= max <= 65535
        out.extend_from_slice(&[u8::from(self.kind())]);
        let r = match self {
            Self::Open(m) => m.emit(out),
            Self::Update(m) => m.emit(ctx, out),
            Self::Notification(m) => {
                m.emit(out);
                Ok(())
            }
            Self::Keepalive => Ok(()),
            Self::RouteRefresh(m) => {
                m.emit(out);
                Ok(())
            }
        };
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    /// The whole message as one buffer.
    pub fn to_bytes(&self, ctx: &DecodeContext) -> Result<Bytes, Error> {
        let mut out = BytesMut::with_capacity(self.buffer_len(ctx));
        self.emit(ctx, &mut out)?;
        Ok(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_both_ways() {
        let ctx = DecodeContext::default();
        // 16 x 0xFF, length 19, type 4
        let wire = Bytes::from_static(&KEEPALIVE);
        assert_eq!(&KEEPALIVE[16..], &[0, 19, 4]);
        assert_eq!(decode_message(wire.clone(), &ctx), Ok(Received::Keepalive));
        assert_eq!(Message::Keepalive.to_bytes(&ctx).unwrap(), wire);
    }

    #[test]
    fn frame_must_match_length() {
        let ctx = DecodeContext::default();
        let mut v = KEEPALIVE.to_vec();
        v.push(0);
        assert!(decode_message(Bytes::from(v), &ctx).is_err());
        assert!(decode_message(Bytes::from_static(&KEEPALIVE[..18]), &ctx).is_err());
    }

    #[test]
    fn oversized_update_is_refused() {
        let ctx = DecodeContext::default();
        let attrs = crate::wire::attr::PathAttributes {
            communities: (0..1100).map(crate::wire::attr::Community).collect(),
            ..Default::default()
        };
        let m = Message::Update(Box::new(Update {
            attrs,
            ..Update::default()
        }));
        let mut out = BytesMut::from(&b"keep"[..]);
        assert!(matches!(
            m.emit(&ctx, &mut out),
            Err(Error::MessageTooLong { .. })
        ));
        assert_eq!(&out[..], b"keep");
        let big = DecodeContext {
            extended_message: true,
            ..ctx
        };
        assert!(m.to_bytes(&big).is_ok());
    }
}
