//! `clos lab`: a whole spine-leaf fabric on one machine, in network namespaces, with no
//! containers: FRR, BIRD or `clos bgp` switches configured from the controller's rendered configs, the controller
//! in a management namespace, and an agent per host.
//!
//! * [`topology`]: the topology file (and the built-in default: 2 spines, 2 racks of 2
//!   leaves, 2 hosts per rack), validated with the field at fault named.
//! * [`plan`]: the concrete layout (namespaces `closlab-<lab>-<node>`, links, interface names,
//!   management and loopback addresses), a pure function of the topology.
//! * [`Lab`]: `up` (namespaces, links, the management bridge, the controller, the inventory
//!   through the API, switch configs rendered by the controller, the hosts' agents, then a
//!   wait for convergence), `summary` (status), `check`, `exec_command`, and [`down`].
//! * [`sync`]: `clos lab sync`, every switch brought to the config the controller renders
//!   now (a host's assignment changed); `up` leaves `clos lab sync --watch` running.
//! * [`failover`]: `clos lab failover`, a silent uplink (nftables drop) and the time until BFD
//!   notices, the FIB moves and the traffic flows again.
//! * [`switch`]: a switch of any software, started from its rendered config, its sessions
//!   read back; [`frr`], [`bird`] and [`speaker`] (`clos bgp run`) run the three kinds.
//! * `check`, `sys`: the reachability and ECMP check, and thin wrappers over `ip`, `/proc` and
//!   signals.
//!
//! **Must not** leak namespaces or processes: every step of `up` is recorded in the lab's
//! state file before it runs, and [`down`] removes every namespace with the lab's prefix
//! (and every process inside), with or without that file. Traffic stays between the lab's
//! namespaces: the lab talks to its controller from a thread inside the management namespace.

pub mod bird;
pub mod check;
mod error;
pub mod failover;
pub mod frr;
mod lab;
pub mod plan;
pub mod speaker;
pub mod switch;
pub mod sync;
pub mod sys;
pub mod topology;

pub use check::CheckReport;
pub use error::{Error, Result};
pub use lab::{
    DEFAULT_ROOT, HostAssignment, HostSummary, Lab, Process, State, Summary, SwitchSummary,
    UpOptions, UpOutcome, agent_config, default_dir, down,
};
pub use topology::Topology;
