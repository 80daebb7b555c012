//! BGP-4 for Clos.
//!
//! - [`wire`]: the message codec (RFC 4271 and its extensions), with RFC 7606 error handling.
//! - [`iana`]: every code point the codec uses.
//! - [`session`]: the RFC 4271 state machine as a sans-IO core.
//! - [`driver`]: the tokio driver that runs sessions over TCP (the only module doing I/O).
//! - [`config`]: the standalone speaker's configuration file.
//! - [`Error`]: the crate's one error type; decoding errors know their NOTIFICATION.
//!
//! Outside [`driver`] nothing does I/O or reads the clock, and no decoder panics on any input.

pub mod config;
pub mod driver;
pub mod error;
pub mod iana;
pub mod policy;
pub mod rib;
pub mod session;
pub mod wire;

pub use error::Error;
