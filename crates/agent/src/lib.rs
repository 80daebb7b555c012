//! The Clos host agent: routing on the host.
//!
//! - [`config`] reads `agent.yaml`.
//! - [`agent`]: the main loop. It follows the node's desired state from the controller (or,
//!   while the controller is unreachable, from the local [`state`] file), runs the host's BGP
//!   speaker ([`speaker`]) towards its top-of-rack switches, and hands the learned routes and
//!   the host's endpoints to the kernel thread ([`kernel`]).
//! - [`controller`]: registration, the desired-state watch, heartbeats.
//! - [`control`]: the local socket behind `clos agent status` and `clos agent endpoint`, and
//!   the metrics listener ([`metrics`]).
//! - [`fib`]: from the speaker's Loc-RIB to the kernel thread, shared with `clos bgp run`
//!   (its `fib` section), which uses [`fib::SpeakerFib`].
//!
//! What the host advertises is exactly what the controller assigned to its node; kernel
//! objects it writes are tagged (routes and nexthops carry protocol 198, addresses live on its
//! own dummy interface or on endpoint interfaces), and nothing else is touched.

pub mod agent;
pub mod config;
pub mod control;
pub mod controller;
pub mod error;
pub mod fib;
pub mod kernel;
pub mod metrics;
pub mod speaker;
pub mod state;

pub use agent::{AgentStatus, EndpointInfo, Request, run};
pub use config::AgentConfig;
pub use error::{Error, Result};
pub use metrics::Metrics;
