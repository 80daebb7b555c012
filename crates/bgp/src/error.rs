//! The crate's one error type.
//!
//! Contract: every decoding error knows the NOTIFICATION that RFC 4271 (as revised by RFC 7606,
//! RFC 5492, RFC 7313 and RFC 8654) says to send for it ([`Error::notification`]); errors that
//! only arise locally (encoding, bad arguments) have none. Variants carry the offending values
//! and, where the NOTIFICATION needs it, the offending octets.

use std::net::Ipv4Addr;

use bytes::Bytes;

use crate::iana::{
    Afi, AttrType, CapabilityCode, HeaderSubcode, MessageType, OpenSubcode, RouteRefreshSubcode,
    Safi, UpdateSubcode,
};
use crate::wire::notification::{Notification, NotificationCode};

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    // ----- message header (RFC 4271 section 6.1) -----
    /// The 16-octet marker is not all ones.
    #[error("message header marker is not all ones (connection not synchronized)")]
    BadMarker,
    /// The length field is out of range for the message type or the negotiated maximum.
    #[error("bad message length {length} for {kind:?} (allowed {min}..={max})")]
    BadMessageLength {
        kind: MessageType,
        length: u16,
        min: usize,
        max: usize,
    },
    /// The type field names no message we know.
    #[error("bad message type {kind}")]
    BadMessageType { kind: u8 },
    /// A buffer handed to a parser is shorter than its fixed part.
    #[error("{what} truncated: needs {needed} octets, {available} available")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },

    // ----- OPEN (RFC 4271 section 6.2, RFC 5492, RFC 9072) -----
    /// The peer bid a version other than 4.
    #[error("unsupported BGP version {version}")]
    UnsupportedVersion { version: u8 },
    /// The peer's AS is not the one configured for it.
    #[error("bad peer AS {received}, expected {expected}")]
    BadPeerAs { expected: u32, received: u32 },
    /// The BGP identifier is zero or equal to ours.
    #[error("bad BGP identifier {id}")]
    BadBgpIdentifier { id: Ipv4Addr },
    /// An optional parameter other than capabilities.
    #[error("unsupported optional parameter type {kind}")]
    UnsupportedOptionalParameter { kind: u8 },
    /// Hold time of 1 or 2 seconds.
    #[error("unacceptable hold time {hold_time} s (must be 0 or at least 3)")]
    UnacceptableHoldTime { hold_time: u16 },
    /// A capability we require is missing; `data` lists it as RFC 5492 asks.
    #[error("peer lacks required capability {code:?}")]
    UnsupportedCapability { code: CapabilityCode, data: Bytes },
    /// The optional parameters do not parse.
    #[error("malformed OPEN: {reason}")]
    MalformedOpen { reason: &'static str },
    /// A capability we know has a body we cannot parse.
    #[error("malformed capability {code:?}: {reason}")]
    MalformedCapability {
        code: CapabilityCode,
        reason: &'static str,
    },

    // ----- UPDATE (RFC 4271 section 6.3, RFC 7606) -----
    /// Length fields of the UPDATE are inconsistent, or MP_(UN)REACH_NLRI is repeated.
    #[error("malformed attribute list: {reason}")]
    MalformedAttributeList { reason: &'static str },
    /// A well-known (non-optional) attribute type we do not know.
    #[error("unrecognized well-known attribute type {kind}")]
    UnrecognizedWellKnownAttribute { kind: u8, data: Bytes },
    /// A well-known mandatory attribute is missing although the UPDATE carries NLRI.
    #[error("missing well-known attribute {code:?}")]
    MissingWellKnownAttribute { code: AttrType },
    /// Optional/transitive flags conflict with the attribute's definition.
    #[error("attribute {code:?} has wrong flags {flags:#04x}")]
    AttributeFlags {
        code: AttrType,
        flags: u8,
        data: Bytes,
    },
    /// The attribute's length is wrong for its type, or overruns the attributes.
    #[error("attribute {code:?} has bad length {length}")]
    AttributeLength {
        code: AttrType,
        length: usize,
        data: Bytes,
    },
    /// The attribute's value is malformed (RFC 7606 section 7).
    #[error("malformed attribute {code:?}: {reason}")]
    MalformedAttribute {
        code: AttrType,
        reason: &'static str,
        data: Bytes,
    },
    /// A repeated attribute; all but the first occurrence are discarded (RFC 7606 section 3 g).
    #[error("duplicate attribute {code:?}")]
    DuplicateAttribute { code: AttrType },
    /// An attribute that must not come from this kind of peer (e.g. LOCAL_PREF from eBGP).
    #[error("attribute {code:?} not accepted here: {reason}")]
    UnexpectedAttribute {
        code: AttrType,
        reason: &'static str,
    },
    /// MP_(UN)REACH_NLRI for an address family that was not negotiated or is not supported.
    #[error("address family {afi:?}/{safi:?} not negotiated")]
    UnsupportedFamily { afi: Afi, safi: Safi },
    /// MP_(UN)REACH_NLRI for a family not negotiated on this session; the attribute is
    /// discarded.
    #[error("{code:?} for address family {afi:?}/{safi:?}, which was not negotiated")]
    FamilyNotNegotiated {
        code: AttrType,
        afi: Afi,
        safi: Safi,
    },
    /// NLRI that do not parse (RFC 7606 section 5.3).
    #[error("invalid {afi:?} NLRI: {reason}")]
    InvalidNetworkField { afi: Afi, reason: &'static str },

    // ----- ROUTE-REFRESH (RFC 7313) -----
    /// A BoRR/EoRR ROUTE-REFRESH with a body other than 4 octets.
    #[error("ROUTE-REFRESH of {length} octets for a demarcation subtype")]
    RouteRefreshLength { length: usize, message: Bytes },

    // ----- local errors: encoding and arguments -----
    /// A message would exceed the negotiated maximum size.
    #[error("{kind:?} message of {length} octets exceeds the maximum of {max}")]
    MessageTooLong {
        kind: MessageType,
        length: usize,
        max: usize,
    },
    /// An attribute value or optional parameter does not fit its length field.
    #[error("{what} of {length} octets is too long to encode")]
    TooLongToEncode { what: &'static str, length: usize },
    /// A prefix length larger than the address.
    #[error("prefix length {len} is too long for {afi:?}")]
    InvalidPrefixLength { afi: Afi, len: u8 },
    /// Text that is not `address/length`.
    #[error("cannot parse {input:?} as a prefix")]
    PrefixSyntax { input: String },
    /// A next hop that cannot carry the given prefixes on this session.
    #[error("next hop {next_hop} cannot be used for {afi:?} prefixes: {reason}")]
    NextHopMismatch {
        afi: Afi,
        next_hop: String,
        reason: &'static str,
    },
    /// Prefixes of more than one address family in one NLRI list.
    #[error("prefix {prefix} is not {afi:?}")]
    MixedFamilies { afi: Afi, prefix: String },

    // ----- routing policy configuration -----
    /// A routing policy that does not parse or validate. `field` is the path of the bad value
    /// (e.g. `prefix_lists.tenants[2].le`); `problem` says what is wrong and what to write.
    #[error("policy config {field}: {problem}")]
    InvalidPolicy { field: String, problem: String },
}

impl Error {
    /// The NOTIFICATION to send to the peer for this error, or `None` for local errors.
    pub fn notification(&self) -> Option<Notification> {
        use NotificationCode as C;
        let header = |s: HeaderSubcode| C::MessageHeader(s);
        let open = |s: OpenSubcode| C::OpenMessage(s);
        let update = |s: UpdateSubcode| C::UpdateMessage(s);
        let n = match self {
            Self::BadMarker => Notification::new(header(HeaderSubcode::ConnectionNotSynchronized)),
            Self::BadMessageLength { length, .. } => Notification::with_data(
                header(HeaderSubcode::BadMessageLength),
                length.to_be_bytes().to_vec(),
            ),
            Self::BadMessageType { kind } => {
                Notification::with_data(header(HeaderSubcode::BadMessageType), vec![*kind])
            }
            Self::Truncated { .. } => Notification::new(header(HeaderSubcode::BadMessageLength)),
            // Data: the largest version we support (RFC 4271 section 6.2).
            Self::UnsupportedVersion { .. } => Notification::with_data(
                open(OpenSubcode::UnsupportedVersionNumber),
                u16::from(crate::iana::BGP_VERSION).to_be_bytes().to_vec(),
            ),
            Self::BadPeerAs { .. } => Notification::new(open(OpenSubcode::BadPeerAs)),
            Self::BadBgpIdentifier { .. } => Notification::new(open(OpenSubcode::BadBgpIdentifier)),
            Self::UnsupportedOptionalParameter { .. } => {
                Notification::new(open(OpenSubcode::UnsupportedOptionalParameter))
            }
            Self::UnacceptableHoldTime { .. } => {
                Notification::new(open(OpenSubcode::UnacceptableHoldTime))
            }
            Self::UnsupportedCapability { data, .. } => {
                Notification::with_data(open(OpenSubcode::UnsupportedCapability), data.clone())
            }
            Self::MalformedOpen { .. } | Self::MalformedCapability { .. } => {
                Notification::new(open(OpenSubcode::Unspecific))
            }
            Self::MalformedAttributeList { .. } | Self::DuplicateAttribute { .. } => {
                Notification::new(update(UpdateSubcode::MalformedAttributeList))
            }
            Self::UnrecognizedWellKnownAttribute { data, .. } => Notification::with_data(
                update(UpdateSubcode::UnrecognizedWellKnownAttribute),
                data.clone(),
            ),
            Self::MissingWellKnownAttribute { code } => Notification::with_data(
                update(UpdateSubcode::MissingWellKnownAttribute),
                vec![u8::from(*code)],
            ),
            Self::AttributeFlags { data, .. } => {
                Notification::with_data(update(UpdateSubcode::AttributeFlagsError), data.clone())
            }
            Self::AttributeLength { data, .. } => {
                Notification::with_data(update(UpdateSubcode::AttributeLengthError), data.clone())
            }
            Self::MalformedAttribute { code, data, .. } => {
                let sub = match code {
                    AttrType::Origin => UpdateSubcode::InvalidOriginAttribute,
                    AttrType::AsPath => UpdateSubcode::MalformedAsPath,
                    AttrType::NextHop => UpdateSubcode::InvalidNextHopAttribute,
                    _ => UpdateSubcode::OptionalAttributeError,
                };
                Notification::with_data(update(sub), data.clone())
            }
            Self::UnexpectedAttribute { .. }
            | Self::UnsupportedFamily { .. }
            | Self::FamilyNotNegotiated { .. } => {
                Notification::new(update(UpdateSubcode::OptionalAttributeError))
            }
            Self::InvalidNetworkField { .. } => {
                Notification::new(update(UpdateSubcode::InvalidNetworkField))
            }
            // Data: the complete ROUTE-REFRESH message (RFC 7313 section 5).
            Self::RouteRefreshLength { message, .. } => Notification::with_data(
                C::RouteRefreshMessage(RouteRefreshSubcode::InvalidMessageLength),
                message.clone(),
            ),
            Self::MessageTooLong { .. }
            | Self::TooLongToEncode { .. }
            | Self::InvalidPrefixLength { .. }
            | Self::PrefixSyntax { .. }
            | Self::NextHopMismatch { .. }
            | Self::MixedFamilies { .. }
            | Self::InvalidPolicy { .. } => return None,
        };
        Some(n)
    }

    /// The attribute type an UPDATE error is about, if any.
    pub fn attr_type(&self) -> Option<AttrType> {
        match self {
            Self::UnrecognizedWellKnownAttribute { kind, .. } => Some(AttrType::from(*kind)),
            Self::MissingWellKnownAttribute { code }
            | Self::AttributeFlags { code, .. }
            | Self::AttributeLength { code, .. }
            | Self::MalformedAttribute { code, .. }
            | Self::DuplicateAttribute { code }
            | Self::UnexpectedAttribute { code, .. }
            | Self::FamilyNotNegotiated { code, .. } => Some(*code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_errors_map_to_rfc_notifications() {
        let n = Error::BadMarker.notification().unwrap();
        assert_eq!((n.code.code(), n.code.subcode()), (1, 1));
        let e = Error::BadMessageLength {
            kind: MessageType::Keepalive,
            length: 20,
            min: 19,
            max: 19,
        };
        let n = e.notification().unwrap();
        assert_eq!(
            (n.code.code(), n.code.subcode(), &n.data[..]),
            (1, 2, &[0, 20][..])
        );
        let n = Error::BadMessageType { kind: 9 }.notification().unwrap();
        assert_eq!(
            (n.code.code(), n.code.subcode(), &n.data[..]),
            (1, 3, &[9][..])
        );
    }

    #[test]
    fn open_errors_map_to_rfc_notifications() {
        let n = Error::UnsupportedVersion { version: 3 }
            .notification()
            .unwrap();
        assert_eq!(
            (n.code.code(), n.code.subcode(), &n.data[..]),
            (2, 1, &[0, 4][..])
        );
        let n = Error::UnacceptableHoldTime { hold_time: 2 }
            .notification()
            .unwrap();
        assert_eq!((n.code.code(), n.code.subcode()), (2, 6));
        let n = Error::BadPeerAs {
            expected: 1,
            received: 2,
        }
        .notification()
        .unwrap();
        assert_eq!((n.code.code(), n.code.subcode()), (2, 2));
    }

    #[test]
    fn local_errors_have_no_notification() {
        let e = Error::InvalidPrefixLength {
            afi: Afi::Ipv4,
            len: 33,
        };
        assert!(e.notification().is_none());
        assert!(e.to_string().contains("33"));
    }
}
