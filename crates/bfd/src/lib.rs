//! Bidirectional Forwarding Detection for Clos: RFC 5880 (the protocol) over single-hop UDP
//! (RFC 5881), asynchronous mode, without demand mode, echo or authentication.
//!
//! - [`wire`]: the control packet codec, a length-checked view and an owned packet with
//!   `parse`/`emit`/`buffer_len`, and the receive-side checks of RFC 5880 section 6.8.6.
//! - [`session`]: the state machine as a sans-IO core: `Session::handle(input, now)`,
//!   `poll_output()`, `poll_timeout()`. It never reads the clock or touches a socket.
//! - [`driver`]: the tokio driver, the only I/O in the crate: one event loop owning every
//!   session, UDP port 3784, TTL 255 on send and only 255 accepted (GTSM).
//!
//! Contract: nothing here panics on any received octets.

pub mod driver;
mod error;
pub mod iana;
pub mod session;
pub mod wire;

pub use driver::{BfdHandle, SessionSpec, SessionStatus};
pub use error::Error;
pub use iana::{Diag, State};
pub use session::{Config, Session};
pub use wire::ControlPacket;
