//! BFD code points (RFC 5880 section 4.1 and the IANA "Bidirectional Forwarding Detection
//! (BFD) Parameters" registry) and the ports of RFC 5881.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

/// UDP destination port of single-hop control packets (RFC 5881 section 4).
pub const CONTROL_PORT: u16 = 3784;

/// UDP source ports of control packets (RFC 5881 section 4).
pub const SOURCE_PORTS: RangeInclusive<u16> = 49152..=65535;

/// The TTL or hop limit of every packet sent, and the only one accepted (RFC 5881 section 5).
pub const GTSM_TTL: u8 = 255;

/// Session state (2 bits, every value defined).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum State {
    AdminDown = 0,
    Down = 1,
    Init = 2,
    Up = 3,
}

impl State {
    /// From the two low bits of `v`.
    pub fn from_bits(v: u8) -> Self {
        match v & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    pub fn bits(self) -> u8 {
        self as u8
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        })
    }
}

/// Why the sender's session last went down (5 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Diag {
    #[default]
    None,
    ControlDetectionTimeExpired,
    EchoFunctionFailed,
    NeighborSignaledSessionDown,
    ForwardingPlaneReset,
    PathDown,
    ConcatenatedPathDown,
    AdministrativelyDown,
    ReverseConcatenatedPathDown,
    /// A code this crate does not know (9 to 31), kept as is.
    Other(u8),
}

impl Diag {
    /// From the five low bits of `v`.
    pub fn from_bits(v: u8) -> Self {
        match v & 0x1f {
            0 => Diag::None,
            1 => Diag::ControlDetectionTimeExpired,
            2 => Diag::EchoFunctionFailed,
            3 => Diag::NeighborSignaledSessionDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdministrativelyDown,
            8 => Diag::ReverseConcatenatedPathDown,
            other => Diag::Other(other),
        }
    }

    /// The five-bit code (an out-of-range `Other` is masked).
    pub fn bits(self) -> u8 {
        match self {
            Diag::None => 0,
            Diag::ControlDetectionTimeExpired => 1,
            Diag::EchoFunctionFailed => 2,
            Diag::NeighborSignaledSessionDown => 3,
            Diag::ForwardingPlaneReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdministrativelyDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Other(v) => v & 0x1f,
        }
    }
}

impl std::fmt::Display for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Diag::None => f.write_str("none"),
            Diag::ControlDetectionTimeExpired => f.write_str("control detection time expired"),
            Diag::EchoFunctionFailed => f.write_str("echo function failed"),
            Diag::NeighborSignaledSessionDown => f.write_str("neighbor signaled session down"),
            Diag::ForwardingPlaneReset => f.write_str("forwarding plane reset"),
            Diag::PathDown => f.write_str("path down"),
            Diag::ConcatenatedPathDown => f.write_str("concatenated path down"),
            Diag::AdministrativelyDown => f.write_str("administratively down"),
            Diag::ReverseConcatenatedPathDown => f.write_str("reverse concatenated path down"),
            Diag::Other(v) => write!(f, "diagnostic {v}"),
        }
    }
}

/// Authentication types (RFC 5880 section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthType {
    SimplePassword,
    KeyedMd5,
    MeticulousKeyedMd5,
    KeyedSha1,
    MeticulousKeyedSha1,
    /// Reserved (0) or unassigned, kept as is.
    Other(u8),
}

impl From<u8> for AuthType {
    fn from(v: u8) -> Self {
        match v {
            1 => AuthType::SimplePassword,
            2 => AuthType::KeyedMd5,
            3 => AuthType::MeticulousKeyedMd5,
            4 => AuthType::KeyedSha1,
            5 => AuthType::MeticulousKeyedSha1,
            other => AuthType::Other(other),
        }
    }
}

impl From<AuthType> for u8 {
    fn from(t: AuthType) -> u8 {
        match t {
            AuthType::SimplePassword => 1,
            AuthType::KeyedMd5 => 2,
            AuthType::MeticulousKeyedMd5 => 3,
            AuthType::KeyedSha1 => 4,
            AuthType::MeticulousKeyedSha1 => 5,
            AuthType::Other(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for v in 0..32 {
            assert_eq!(Diag::from_bits(v).bits(), v);
        }
        for v in 0..4 {
            assert_eq!(State::from_bits(v).bits(), v);
        }
        for v in 0..=255u8 {
            assert_eq!(u8::from(AuthType::from(v)), v);
        }
    }
}
