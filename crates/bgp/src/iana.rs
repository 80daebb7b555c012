//! IANA code points used by BGP-4, in one place.
//!
//! Contract: every registry is an enum with an `Other(raw)` variant, and converting a raw value
//! with `From` and back gives the same raw value. Unknown code points are therefore carried
//! through unchanged and never dropped. Build values with `From<raw>` (or the named variants);
//! a hand-built `Other(v)` whose `v` has a named variant compares unequal to that variant.
//!
//! Sources: the IANA "Border Gateway Protocol (BGP) Parameters", "Capability Codes" and
//! "Address Family Numbers" registries, and the RFCs cited on each item.

/// Defines a registry enum over an integer type with lossless conversions both ways.
macro_rules! registry {
    (
        $(#[$meta:meta])*
        $name:ident: $repr:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A code point without a name here, kept verbatim.
            Other($repr),
        }

        impl From<$repr> for $name {
            fn from(value: $repr) -> Self {
                match value {
                    $( $value => Self::$variant, )*
                    other => Self::Other(other),
                }
            }
        }

        impl From<$name> for $repr {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )*
                    $name::Other(other) => other,
                }
            }
        }
    };
}

/// The only BGP version we speak (RFC 4271).
pub const BGP_VERSION: u8 = 4;
/// TCP port of BGP.
pub const BGP_PORT: u16 = 179;
/// Placeholder 2-octet AS for speakers whose AS does not fit in 16 bits (RFC 6793).
pub const AS_TRANS: u16 = 23456;

/// Length of the fixed message header: marker, length, type.
pub const HEADER_LEN: usize = 19;
/// Largest message without the extended message capability (RFC 4271).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Largest message once RFC 8654 extended messages are negotiated.
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;
/// Smallest OPEN: header, version, my AS, hold time, BGP identifier, optional parameter length.
pub const MIN_OPEN_LEN: usize = 29;
/// Smallest UPDATE: header plus the two 2-octet length fields.
pub const MIN_UPDATE_LEN: usize = 23;
/// Smallest NOTIFICATION: header, code, subcode.
pub const MIN_NOTIFICATION_LEN: usize = 21;
/// A KEEPALIVE is just the header.
pub const KEEPALIVE_LEN: usize = 19;
/// Smallest ROUTE-REFRESH: header, AFI, reserved/subtype, SAFI (RFC 2918).
pub const MIN_ROUTE_REFRESH_LEN: usize = 23;

registry! {
    /// BGP message types.
    MessageType: u8 {
        Open = 1,
        Update = 2,
        Notification = 3,
        Keepalive = 4,
        /// RFC 2918.
        RouteRefresh = 5,
    }
}

registry! {
    /// OPEN optional parameter types.
    OptionalParameterType: u8 {
        /// Deprecated (RFC 5492).
        Authentication = 1,
        /// RFC 5492.
        Capabilities = 2,
        /// Marks the RFC 9072 extended optional parameters length; never a real parameter.
        ExtendedLength = 255,
    }
}

registry! {
    /// Capability codes (RFC 5492 registry).
    CapabilityCode: u8 {
        /// RFC 4760.
        MultiProtocol = 1,
        /// RFC 2918.
        RouteRefresh = 2,
        /// RFC 5291.
        OutboundRouteFiltering = 3,
        /// RFC 8950.
        ExtendedNextHop = 5,
        /// RFC 8654.
        ExtendedMessage = 6,
        /// RFC 8205.
        BgpSec = 7,
        /// RFC 8277.
        MultipleLabels = 8,
        /// RFC 9234.
        Role = 9,
        /// RFC 4724.
        GracefulRestart = 64,
        /// RFC 6793.
        FourOctetAs = 65,
        /// draft-ietf-idr-dynamic-cap.
        DynamicCapability = 67,
        /// draft-ietf-idr-bgp-multisession.
        Multisession = 68,
        /// RFC 7911.
        AddPath = 69,
        /// RFC 7313.
        EnhancedRouteRefresh = 70,
        /// RFC 9494.
        LongLivedGracefulRestart = 71,
        /// draft-walton-bgp-hostname-capability.
        Fqdn = 73,
        /// draft-abraitis-bgp-version-capability.
        SoftwareVersion = 75,
        /// Pre-standard route refresh code used by old Cisco releases.
        RouteRefreshCisco = 128,
    }
}

registry! {
    /// Path attribute type codes.
    AttrType: u8 {
        /// RFC 4271, well-known mandatory.
        Origin = 1,
        /// RFC 4271, well-known mandatory.
        AsPath = 2,
        /// RFC 4271, well-known mandatory when the NLRI field is not empty.
        NextHop = 3,
        /// RFC 4271, optional non-transitive.
        MultiExitDisc = 4,
        /// RFC 4271, well-known (iBGP only).
        LocalPref = 5,
        /// RFC 4271, well-known discretionary.
        AtomicAggregate = 6,
        /// RFC 4271, optional transitive.
        Aggregator = 7,
        /// RFC 1997, optional transitive.
        Communities = 8,
        /// RFC 4456, optional non-transitive.
        OriginatorId = 9,
        /// RFC 4456, optional non-transitive.
        ClusterList = 10,
        /// RFC 4760, optional non-transitive.
        MpReachNlri = 14,
        /// RFC 4760, optional non-transitive.
        MpUnreachNlri = 15,
        /// RFC 4360, optional transitive.
        ExtendedCommunities = 16,
        /// RFC 6793, optional transitive.
        As4Path = 17,
        /// RFC 6793, optional transitive.
        As4Aggregator = 18,
        /// RFC 6514.
        PmsiTunnel = 22,
        /// RFC 9012.
        TunnelEncapsulation = 23,
        /// RFC 5543.
        TrafficEngineering = 24,
        /// RFC 5701.
        Ipv6ExtendedCommunities = 25,
        /// RFC 7311.
        Aigp = 26,
        /// RFC 6514.
        PeDistinguisherLabels = 27,
        /// RFC 9552.
        BgpLs = 29,
        /// RFC 8092, optional transitive.
        LargeCommunities = 32,
        /// RFC 8205.
        BgpsecPath = 33,
        /// RFC 9234 Only to Customer.
        OnlyToCustomer = 35,
        /// RFC 9015.
        Sfp = 37,
        /// RFC 9026.
        BfdDiscriminator = 38,
        /// RFC 8669.
        PrefixSid = 40,
        /// RFC 6368.
        AttrSet = 128,
    }
}

registry! {
    /// Address Family Identifiers.
    Afi: u16 {
        Ipv4 = 1,
        Ipv6 = 2,
        /// RFC 4761.
        L2vpn = 25,
        /// RFC 9552.
        BgpLs = 16388,
    }
}

registry! {
    /// Subsequent Address Family Identifiers.
    Safi: u8 {
        Unicast = 1,
        Multicast = 2,
        /// RFC 8277.
        MplsLabel = 4,
        /// RFC 7432.
        Evpn = 70,
        /// RFC 9552.
        BgpLs = 71,
        /// RFC 4364.
        MplsVpn = 128,
        /// RFC 8955.
        FlowSpec = 133,
    }
}

registry! {
    /// ORIGIN attribute values (RFC 4271 section 5.1.1).
    Origin: u8 {
        Igp = 0,
        Egp = 1,
        Incomplete = 2,
    }
}

registry! {
    /// AS_PATH segment types (RFC 4271, RFC 5065 for the confederation ones).
    SegmentType: u8 {
        AsSet = 1,
        AsSequence = 2,
        AsConfedSequence = 3,
        AsConfedSet = 4,
    }
}

registry! {
    /// NOTIFICATION error codes.
    ErrorCode: u8 {
        MessageHeader = 1,
        OpenMessage = 2,
        UpdateMessage = 3,
        HoldTimerExpired = 4,
        /// RFC 6608 defines the subcodes.
        FiniteStateMachine = 5,
        Cease = 6,
        /// RFC 7313.
        RouteRefreshMessage = 7,
    }
}

registry! {
    /// Message Header Error subcodes (RFC 4271 section 6.1).
    HeaderSubcode: u8 {
        Unspecific = 0,
        ConnectionNotSynchronized = 1,
        BadMessageLength = 2,
        BadMessageType = 3,
    }
}

registry! {
    /// OPEN Message Error subcodes (RFC 4271 section 6.2, RFC 5492, RFC 9234).
    OpenSubcode: u8 {
        Unspecific = 0,
        UnsupportedVersionNumber = 1,
        BadPeerAs = 2,
        BadBgpIdentifier = 3,
        UnsupportedOptionalParameter = 4,
        /// Subcode 5 (Authentication Failure) is deprecated.
        UnacceptableHoldTime = 6,
        /// RFC 5492.
        UnsupportedCapability = 7,
        /// RFC 9234.
        RoleMismatch = 11,
    }
}

registry! {
    /// UPDATE Message Error subcodes (RFC 4271 section 6.3).
    UpdateSubcode: u8 {
        Unspecific = 0,
        MalformedAttributeList = 1,
        UnrecognizedWellKnownAttribute = 2,
        MissingWellKnownAttribute = 3,
        AttributeFlagsError = 4,
        AttributeLengthError = 5,
        InvalidOriginAttribute = 6,
        /// Subcode 7 (AS Routing Loop) is deprecated.
        InvalidNextHopAttribute = 8,
        OptionalAttributeError = 9,
        InvalidNetworkField = 10,
        MalformedAsPath = 11,
    }
}

registry! {
    /// Finite State Machine Error subcodes (RFC 6608).
    FsmSubcode: u8 {
        Unspecified = 0,
        UnexpectedMessageInOpenSent = 1,
        UnexpectedMessageInOpenConfirm = 2,
        UnexpectedMessageInEstablished = 3,
    }
}

registry! {
    /// Cease subcodes (RFC 4486, RFC 8538, RFC 9384).
    CeaseSubcode: u8 {
        MaximumPrefixesReached = 1,
        /// May carry a shutdown communication (RFC 8203, RFC 9003).
        AdministrativeShutdown = 2,
        PeerDeconfigured = 3,
        /// May carry a shutdown communication (RFC 8203, RFC 9003).
        AdministrativeReset = 4,
        ConnectionRejected = 5,
        OtherConfigurationChange = 6,
        ConnectionCollisionResolution = 7,
        OutOfResources = 8,
        /// RFC 8538.
        HardReset = 9,
        /// RFC 9384.
        BfdDown = 10,
    }
}

registry! {
    /// ROUTE-REFRESH Message Error subcodes (RFC 7313).
    RouteRefreshSubcode: u8 {
        InvalidMessageLength = 1,
    }
}

registry! {
    /// ROUTE-REFRESH message subtypes, carried in the former reserved octet (RFC 7313).
    RouteRefreshSubtype: u8 {
        Normal = 0,
        BeginningOfRouteRefresh = 1,
        EndOfRouteRefresh = 2,
    }
}

/// Path attribute flag bits (RFC 4271 section 4.3).
pub mod attr_flags {
    /// Set for optional attributes, clear for well-known ones.
    pub const OPTIONAL: u8 = 0x80;
    /// Set for transitive attributes (always set for well-known ones).
    pub const TRANSITIVE: u8 = 0x40;
    /// Set once an optional transitive attribute passed a speaker that did not recognise it.
    pub const PARTIAL: u8 = 0x20;
    /// The attribute length field is two octets.
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Graceful restart capability flag bits (RFC 4724, RFC 8538).
pub mod graceful_restart {
    /// Restart State (R) in the 4-bit restart flags: the sender has restarted.
    pub const RESTART_STATE: u8 = 0x8;
    /// Graceful Notification (N) in the 4-bit restart flags (RFC 8538).
    pub const NOTIFICATION: u8 = 0x4;
    /// Forwarding State (F) in the per-family flags: forwarding state was preserved.
    pub const FORWARDING_STATE: u8 = 0x80;
}

/// Well-known communities (RFC 1997 and the IANA "BGP Well-known Communities" registry).
pub mod community {
    /// RFC 8326: lower the preference of the route before maintenance.
    pub const GRACEFUL_SHUTDOWN: u32 = 0xFFFF_0000;
    /// RFC 7611.
    pub const ACCEPT_OWN: u32 = 0xFFFF_0001;
    /// RFC 9494.
    pub const LLGR_STALE: u32 = 0xFFFF_0006;
    /// RFC 9494.
    pub const NO_LLGR: u32 = 0xFFFF_0007;
    /// RFC 7999: discard traffic to this prefix.
    pub const BLACKHOLE: u32 = 0xFFFF_029A;
    /// RFC 1997: do not advertise outside the AS (or confederation).
    pub const NO_EXPORT: u32 = 0xFFFF_FF01;
    /// RFC 1997: do not advertise to any peer.
    pub const NO_ADVERTISE: u32 = 0xFFFF_FF02;
    /// RFC 1997: do not advertise to external peers, not even within a confederation.
    pub const NO_EXPORT_SUBCONFED: u32 = 0xFFFF_FF03;
    /// RFC 3765.
    pub const NO_PEER: u32 = 0xFFFF_FF04;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_round_trip_every_value() {
        for v in 0..=u8::MAX {
            assert_eq!(u8::from(MessageType::from(v)), v);
            assert_eq!(u8::from(AttrType::from(v)), v);
            assert_eq!(u8::from(CapabilityCode::from(v)), v);
            assert_eq!(u8::from(CeaseSubcode::from(v)), v);
            assert_eq!(u8::from(Safi::from(v)), v);
        }
        assert_eq!(Afi::from(2), Afi::Ipv6);
        assert_eq!(u16::from(Afi::from(999)), 999);
        assert_eq!(AttrType::from(32), AttrType::LargeCommunities);
        assert_eq!(community::GRACEFUL_SHUTDOWN >> 16, 65535);
        assert_eq!(community::GRACEFUL_SHUTDOWN & 0xFFFF, 0);
    }
}
