//! Linux data-plane programming for Clos, as reconcilers of desired against actual state.
//!
//! - [`fib`]: routes with ECMP, through nexthop objects and groups where the kernel has them.
//! - [`host`]: the agent's dummy interface, the addresses of its interfaces, and the sysctls
//!   that make the host its endpoints' router.
//! - [`netlink`]: the pipelined rtnetlink socket underneath, and the codec for nexthop-object
//!   messages that `netlink-packet-route` lacks.
//!
//! Contract shared by every module: Clos touches only kernel objects it tagged (routes and
//! nexthop objects carry our protocol number; nexthop ids come from our range), and adopts or
//! removes only those. The one exception is the interfaces the agent owns outright (its dummy
//! and its endpoints' host sides), whose addresses [`host::Host::sync_addresses`] makes exactly
//! the desired ones, sparing only IPv6 link-local addresses it did not tag. Everything here is synchronous and needs `CAP_NET_ADMIN`.

mod error;
pub mod fib;
pub mod host;
pub mod netlink;

pub use error::{Error, KernelError};
pub use fib::{Change, Fib, FibConfig, Nexthop, NexthopMode, Report, Route, RouteKey};
pub use host::{AddressReport, Host};
