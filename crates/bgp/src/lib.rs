//! BGP-4 for Clos.
//!
//! - [`wire`]: the message codec (RFC 4271 and its extensions), with RFC 7606 error handling.
//! - [`iana`]: every code point the codec uses.
//! - [`Error`]: the crate's one error type; decoding errors know their NOTIFICATION.
//!
//! Nothing here does I/O or reads the clock, and no decoder panics on any input.

pub mod error;
pub mod iana;
pub mod wire;

pub use error::Error;
pub mod driver;
pub mod session;
pub mod config;
