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
//! removes only those; addresses too carry our protocol number (`IFA_PROTO`), so
//! [`host::Host::sync_addresses`] is safe even on `lo`. Everything here is synchronous and
//! needs `CAP_NET_ADMIN`.

mod error;
pub mod fib;
pub mod host;
pub mod netlink;

pub use error::{Error, KernelError};
pub use fib::{Change, Fib, FibConfig, Nexthop, NexthopMode, Report, Route, RouteKey};
pub use host::{AddressReport, Host};
