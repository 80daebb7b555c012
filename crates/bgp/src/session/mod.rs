//! One BGP session: configuration, the RFC 4271 state machine as a sans-IO core, and what two
//! OPENs negotiate (`wire::Negotiated`).
//!
//! The core takes inputs and the current time and produces outputs and its next deadline; it
//! never touches a socket or the clock. The tokio driver in `crate::driver` runs it over TCP.

mod config;
mod fsm;

pub use config::{Backoff, GracefulRestartConfig, RemoteAs, SessionConfig};
pub use fsm::{ConnId, Direction, DownReason, Input, Output, Session, State};
