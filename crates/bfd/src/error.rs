//! The crate's one error type.

use std::net::IpAddr;

use crate::iana::State;

/// Everything that can go wrong in BFD: a packet that must be discarded (with the rule of
/// RFC 5880 that discards it), a bad session configuration, or the driver's sockets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("BFD packet of {len} octets is shorter than the 24-octet control header")]
    Truncated { len: usize },
    #[error("BFD version {0} is not 1")]
    Version(u8),
    #[error("BFD length field {length} does not fit the {available} octets received")]
    Length { length: u8, available: usize },
    #[error(
        "BFD length field {length} does not match the sections it announces ({expected} octets)"
    )]
    LengthMismatch { length: u8, expected: usize },
    #[error("BFD authentication section length {auth_len} is invalid (at least 3 octets)")]
    AuthLength { auth_len: u8 },
    #[error("BFD packet with detect multiplier 0")]
    ZeroDetectMult,
    #[error("BFD packet with the multipoint bit set")]
    Multipoint,
    #[error("BFD packet with My Discriminator 0")]
    ZeroMyDiscriminator,
    #[error("BFD packet in state {state:?} with Your Discriminator 0")]
    ZeroYourDiscriminator { state: State },
    #[error("BFD packet with authentication, which is not in use (configure none on the peer)")]
    AuthenticationNotInUse,
    #[error("BFD packet with both the Poll and Final bits set")]
    PollAndFinal,
    #[error("BFD {field}: {problem}")]
    Config {
        field: &'static str,
        problem: String,
    },
    #[error(
        "a BFD session with {peer}{} exists already",
        interface_suffix(interface)
    )]
    Duplicate {
        peer: IpAddr,
        interface: Option<String>,
    },
    #[error("no BFD session with {peer}{}", interface_suffix(interface))]
    UnknownSession {
        peer: IpAddr,
        interface: Option<String>,
    },
    #[error(
        "cannot use UDP port {port} on {addr} for BFD (is another BFD daemon, FRR's bfdd or \
         BIRD, running in this network namespace?)"
    )]
    Bind {
        addr: IpAddr,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("BFD socket towards {peer}")]
    Socket {
        peer: IpAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("interface {interface} for BFD (does it exist?)")]
    Interface {
        interface: String,
        #[source]
        source: std::io::Error,
    },
    #[error("BFD sessions are added from within the tokio runtime that runs the driver")]
    NoRuntime,
    #[error("the BFD driver has stopped")]
    Stopped,
}

fn interface_suffix(interface: &Option<String>) -> String {
    interface
        .as_ref()
        .map(|i| format!(" on {i}"))
        .unwrap_or_default()
}
