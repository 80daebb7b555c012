//! Test helpers for tests that cross a network: uniquely named network namespaces joined by veth
//! pairs, real BGP daemons (BIRD 2, FRR 8, GoBGP 3, OpenBGPD 7, ExaBGP 4) started inside them from
//! generated configs, and [`wait_until`] for polling their state.
//!
//! Contract:
//! - Every namespace, link, daemon and scratch directory a test creates carries a name with the
//!   prefix [`names::PREFIX`] and the creating process id, and is removed when its owner is
//!   dropped, including while a panic unwinds.
//! - Leftovers of processes that were killed (whose pid is gone) are swept the first time a
//!   process creates a namespace, so a `kill -9` of a test run never poisons the next one.
//! - Only objects carrying our prefix are ever touched.
//!
//! This crate is for tests only: it shells out to `ip`, `birdc`, `vtysh` and friends, and needs
//! root.

mod error;
pub mod names;
mod netns;
pub mod peers;
mod process;
pub mod sweep;
mod wait;

pub use error::Error;
pub use netns::{Link, Netns};
pub use peers::{BgpSpeaker, NeighborSpec, PeerDaemon, SessionState, SpeakerSpec};
pub use process::Daemon;
pub use wait::{Diagnose, Retry, wait_until, wait_until_with};

pub type Result<T, E = Error> = std::result::Result<T, E>;
