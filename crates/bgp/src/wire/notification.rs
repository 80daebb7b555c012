//! NOTIFICATION message (RFC 4271 section 4.5) with typed codes and subcodes, and the
//! shutdown communication of RFC 8203 / RFC 9003 for Cease subcodes 2 and 4.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Error code    | Error subcode |   Data (variable)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Contract: any body of at least two octets parses; unknown codes and subcodes are kept as
//! `Other`, and the data is kept verbatim, so `parse` then `emit` reproduces the input.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Error;
use crate::iana::{
    CeaseSubcode, ErrorCode, FsmSubcode, HeaderSubcode, OpenSubcode, RouteRefreshSubcode,
    UpdateSubcode,
};
use crate::wire::buf::Cursor;

/// Largest shutdown communication in octets (RFC 9003).
pub const MAX_SHUTDOWN_COMMUNICATION_LEN: usize = 255;

/// An error code together with its subcode, typed where the subcode registry is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationCode {
    MessageHeader(HeaderSubcode),
    OpenMessage(OpenSubcode),
    UpdateMessage(UpdateSubcode),
    /// RFC 4271 defines no subcodes; the raw value is kept (normally 0).
    HoldTimerExpired(u8),
    FiniteStateMachine(FsmSubcode),
    Cease(CeaseSubcode),
    RouteRefreshMessage(RouteRefreshSubcode),
    /// An error code without a name here.
    Other {
        code: u8,
        subcode: u8,
    },
}

impl NotificationCode {
    /// Builds the typed code from the two raw octets.
    pub fn from_raw(code: u8, subcode: u8) -> Self {
        match ErrorCode::from(code) {
            ErrorCode::MessageHeader => Self::MessageHeader(subcode.into()),
            ErrorCode::OpenMessage => Self::OpenMessage(subcode.into()),
            ErrorCode::UpdateMessage => Self::UpdateMessage(subcode.into()),
            ErrorCode::HoldTimerExpired => Self::HoldTimerExpired(subcode),
            ErrorCode::FiniteStateMachine => Self::FiniteStateMachine(subcode.into()),
            ErrorCode::Cease => Self::Cease(subcode.into()),
            ErrorCode::RouteRefreshMessage => Self::RouteRefreshMessage(subcode.into()),
            ErrorCode::Other(_) => Self::Other { code, subcode },
        }
    }

    /// The error code octet.
    pub fn code(&self) -> u8 {
        let code = match self {
            Self::MessageHeader(_) => ErrorCode::MessageHeader,
            Self::OpenMessage(_) => ErrorCode::OpenMessage,
            Self::UpdateMessage(_) => ErrorCode::UpdateMessage,
            Self::HoldTimerExpired(_) => ErrorCode::HoldTimerExpired,
            Self::FiniteStateMachine(_) => ErrorCode::FiniteStateMachine,
            Self::Cease(_) => ErrorCode::Cease,
            Self::RouteRefreshMessage(_) => ErrorCode::RouteRefreshMessage,
            Self::Other { code, .. } => return *code,
        };
        code.into()
    }

    /// The error subcode octet.
    pub fn subcode(&self) -> u8 {
        match *self {
            Self::MessageHeader(s) => s.into(),
            Self::OpenMessage(s) => s.into(),
            Self::UpdateMessage(s) => s.into(),
            Self::HoldTimerExpired(s) => s,
            Self::FiniteStateMachine(s) => s.into(),
            Self::Cease(s) => s.into(),
            Self::RouteRefreshMessage(s) => s.into(),
            Self::Other { subcode, .. } => subcode,
        }
    }
}

/// A NOTIFICATION message body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    pub code: NotificationCode,
    /// Diagnostic data; its meaning depends on the code (RFC 4271 section 6).
    pub data: Bytes,
}

impl Notification {
    /// A notification without data.
    pub fn new(code: NotificationCode) -> Self {
        Self {
            code,
            data: Bytes::new(),
        }
    }

    /// A notification with diagnostic data.
    pub fn with_data(code: NotificationCode, data: impl Into<Bytes>) -> Self {
        Self {
            code,
            data: data.into(),
        }
    }

    /// A Cease with a shutdown communication (RFC 8203 / RFC 9003). Meaningful for
    /// Administrative Shutdown and Administrative Reset. The text is cut at a character
    /// boundary to the 255-octet limit, because a longer one cannot be encoded.
    pub fn shutdown(subcode: CeaseSubcode, message: &str) -> Self {
        let mut end = message.len().min(MAX_SHUTDOWN_COMMUNICATION_LEN);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let text = message.as_bytes().get(..end).unwrap_or_default();
        let mut data = BytesMut::with_capacity(1 + text.len());
        // `end` is at most 255, so the cast is exact.
        data.put_u8(end as u8);
        data.put_slice(text);
        Self {
            code: NotificationCode::Cease(subcode),
            data: data.freeze(),
        }
    }

    /// The shutdown communication, if this is an Administrative Shutdown or Reset whose data
    /// holds a well-formed one. Malformed ones (length past the data, bad UTF-8) give `None`.
    pub fn shutdown_communication(&self) -> Option<&str> {
        match self.code {
            NotificationCode::Cease(
                CeaseSubcode::AdministrativeShutdown | CeaseSubcode::AdministrativeReset,
            ) => {}
            _ => return None,
        }
        let (&len, rest) = self.data.split_first()?;
        std::str::from_utf8(rest.get(..usize::from(len))?).ok()
    }

    /// Parses a NOTIFICATION body (the message without its 19-octet header).
    pub fn parse(body: Bytes) -> Result<Self, Error> {
        let available = body.len();
        let mut c = Cursor::new(body);
        let (Some(code), Some(subcode)) = (c.u8(), c.u8()) else {
            return Err(Error::Truncated {
                what: "NOTIFICATION",
                needed: 2,
                available,
            });
        };
        Ok(Self {
            code: NotificationCode::from_raw(code, subcode),
            data: c.rest(),
        })
    }

    /// Length of the body `emit` writes.
    pub fn buffer_len(&self) -> usize {
        2 + self.data.len()
    }

    /// Appends the body (without header).
    pub fn emit(&self, out: &mut BytesMut) {
        out.put_u8(self.code.code());
        out.put_u8(self.code.subcode());
        out.put_slice(&self.data);
    }
}

impl std::fmt::Display for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} ({}/{})",
            self.code,
            self.code.code(),
            self.code.subcode()
        )?;
        if let Some(text) = self.shutdown_communication() {
            write!(f, ": {text:?}")?;
        } else if !self.data.is_empty() {
            write!(f, ", {} octets of data", self.data.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(body: &'static [u8]) -> Notification {
        let n = Notification::parse(Bytes::from_static(body)).unwrap();
        let mut out = BytesMut::new();
        n.emit(&mut out);
        assert_eq!(&out[..], body);
        assert_eq!(n.buffer_len(), body.len());
        n
    }

    #[test]
    fn hold_timer_expired() {
        // code 4, subcode 0, no data
        let n = round_trip(&[0x04, 0x00]);
        assert_eq!(n.code, NotificationCode::HoldTimerExpired(0));
    }

    #[test]
    fn bad_message_length_with_data() {
        // code 1 (header), subcode 2 (bad length), data = offending length 0x0012
        let n = round_trip(&[0x01, 0x02, 0x00, 0x12]);
        assert_eq!(
            n.code,
            NotificationCode::MessageHeader(HeaderSubcode::BadMessageLength)
        );
        assert_eq!(&n.data[..], &[0x00, 0x12]);
    }

    #[test]
    fn shutdown_communication_both_ways() {
        // code 6 (Cease), subcode 2 (admin shutdown), length 5, "maint"
        let wire: &[u8] = &[0x06, 0x02, 0x05, b'm', b'a', b'i', b'n', b't'];
        let n = round_trip(wire);
        assert_eq!(n.shutdown_communication(), Some("maint"));
        assert_eq!(
            Notification::shutdown(CeaseSubcode::AdministrativeShutdown, "maint"),
            n
        );
        assert!(n.to_string().contains("maint"));
    }

    #[test]
    fn malformed_shutdown_communication_is_kept_raw() {
        // length byte says 9 but only 2 octets follow
        let n = round_trip(&[0x06, 0x04, 0x09, b'h', b'i']);
        assert_eq!(n.shutdown_communication(), None);
        // bad UTF-8
        let n = round_trip(&[0x06, 0x02, 0x01, 0xFF]);
        assert_eq!(n.shutdown_communication(), None);
        // other subcodes never carry one
        let n = round_trip(&[0x06, 0x03, 0x01, b'x']);
        assert_eq!(n.shutdown_communication(), None);
    }

    #[test]
    fn shutdown_text_is_cut_at_char_boundary() {
        let long = "é".repeat(200); // 400 octets
        let n = Notification::shutdown(CeaseSubcode::AdministrativeReset, &long);
        let text = n.shutdown_communication().unwrap();
        assert_eq!(text.len(), 254);
        assert_eq!(n.data[0], 254);
    }

    #[test]
    fn unknown_codes_are_kept() {
        let n = round_trip(&[0x63, 0x07, 0xAA]);
        assert_eq!(
            n.code,
            NotificationCode::Other {
                code: 0x63,
                subcode: 7
            }
        );
        let n = round_trip(&[0x06, 0x63]);
        assert_eq!(n.code, NotificationCode::Cease(CeaseSubcode::Other(0x63)));
    }

    #[test]
    fn too_short() {
        assert!(Notification::parse(Bytes::from_static(&[6])).is_err());
    }
}
