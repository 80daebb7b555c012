//! The FIB programmer: installs routes, with ECMP, into the Linux FIB and keeps them equal to a
//! desired set.
//!
//! Contract:
//! - **Ownership.** Every route written carries [`FibConfig::protocol`] as its `rtm_protocol`
//!   (default [`CLOS_PROTOCOL`]), and every nexthop object carries it as `nh_protocol` and has
//!   an id in [`FibConfig::nexthop_ids`]. Only routes and objects with both marks are ever
//!   replaced or deleted. A new route is created exclusively (`NLM_F_EXCL`): if a route with the
//!   same prefix, table and metric exists with another protocol (added by hand, by the kernel,
//!   by FRR or BIRD) the change fails with [`Error::ForeignRoute`] and the foreign route stays.
//! - **Forwarding.** Where the kernel has nexthop objects (Linux 5.3+), a route points at one
//!   object (`RTA_NH_ID`): a single nexthop, or a group for ECMP. Otherwise, or with
//!   [`NexthopMode::Multipath`], routes carry their nexthops themselves (`RTA_MULTIPATH`).
//!   IPv4 routes may use IPv6 gateways (RFC 8950, unnumbered BGP): an IPv6 nexthop object, or
//!   `RTA_VIA`.
//! - **Sharing.** Routes with the same nexthop set share one group; objects are
//!   reference-counted and deleted once unused. When every route on a group moves to the same
//!   new set in one call (an uplink lost or back), the group is changed in place
//!   (`NLM_F_REPLACE` on the group): one request moves them all, atomically.
//! - **Reconcile.** [`Fib::reconcile`] reads the kernel's routes and objects of our protocol,
//!   adopts those already as desired without writing anything (so an agent restart causes no
//!   churn), replaces those that differ (`NLM_F_REPLACE`, atomic per route), adds what is
//!   missing and deletes the rest, then deletes unused objects. [`Fib::apply`] applies changes
//!   against what the `Fib` believes is installed, for the hot path.
//! - **Batching.** All writes of one call are pipelined over one socket (see
//!   [`crate::netlink`]): thousands of requests per `sendmsg`, only failures answered, never one
//!   round trip per route.
//! - **Errors.** A refused route does not stop the others: the [`Report`] lists one error per
//!   route, carrying its prefix. `Err` is returned only when the socket itself fails; the next
//!   call then re-reads the kernel's state first.
//! - Routes use the kernel's default metric (0 for IPv4, 1024 for IPv6); a route of ours for
//!   the same prefix at another metric is deleted by `reconcile`.
//! - A `Fib` is synchronous. Drive it from one thread (for example a blocking task); it is
//!   `Send`.

mod kernel;
mod state;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::Path;

use ipnet::IpNet;

use crate::netlink::uapi::{
    EACCES, EEXIST, EHOSTUNREACH, ENETDOWN, ENETUNREACH, ENOBUFS, ENODEV, EOPNOTSUPP, EPERM,
    RT_TABLE_MAIN,
};
use crate::netlink::{Limits, Netlink};
use crate::{Error, KernelError};
use kernel::LinkInfo;
use state::{Failure, Objects, Planned, State};

/// Our `rtm_protocol` (and `nh_protocol`): unassigned in `/etc/iproute2/rt_protos`, and not
/// RTPROT_BGP (186, FRR's) or RTPROT_BIRD (12). Add `198 clos` to
/// `/etc/iproute2/rt_protos.d/clos.conf` to see the name in `ip route`.
pub const CLOS_PROTOCOL: u8 = 198;

/// The main routing table.
pub const MAIN_TABLE: u32 = RT_TABLE_MAIN;

/// The nexthop ids a `Fib` allocates from by default: those whose top byte is our protocol
/// number, 16M ids.
pub const DEFAULT_NEXTHOP_IDS: RangeInclusive<u32> =
    (CLOS_PROTOCOL as u32) << 24..=((CLOS_PROTOCOL as u32) << 24) | 0x00ff_ffff;

/// An IP family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// One way out: a gateway on an interface, or the interface alone (the destination is on the
/// link).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nexthop {
    pub gateway: Option<IpAddr>,
    pub ifindex: u32,
}

impl Nexthop {
    /// Through `gateway` on interface `ifindex`. An IPv6 link-local gateway works for IPv4
    /// routes too.
    pub fn via(gateway: IpAddr, ifindex: u32) -> Self {
        Nexthop {
            gateway: Some(gateway),
            ifindex,
        }
    }

    /// Straight onto interface `ifindex`.
    pub fn dev(ifindex: u32) -> Self {
        Nexthop {
            gateway: None,
            ifindex,
        }
    }
}

impl fmt::Display for Nexthop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.gateway {
            Some(gw) => write!(f, "via {gw} ifindex {}", self.ifindex),
            None => write!(f, "ifindex {}", self.ifindex),
        }
    }
}

/// What identifies a route to us: its table and prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey {
    pub table: u32,
    pub prefix: IpNet,
}

/// A desired route. More than one nexthop makes it ECMP; the order of `nexthops` does not
/// matter, and duplicates count once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    pub prefix: IpNet,
    pub nexthops: Vec<Nexthop>,
    pub table: u32,
}

impl Route {
    /// A route in the main table.
    pub fn new(prefix: IpNet, nexthops: Vec<Nexthop>) -> Self {
        Route {
            prefix,
            nexthops,
            table: MAIN_TABLE,
        }
    }

    pub fn in_table(mut self, table: u32) -> Self {
        self.table = table;
        self
    }

    pub fn key(&self) -> RouteKey {
        RouteKey {
            table: self.table,
            prefix: self.prefix,
        }
    }

    pub(crate) fn family(&self) -> Family {
        Family::of(self.prefix.addr())
    }

    /// Checks the route and sorts and deduplicates its nexthops.
    pub(crate) fn normalized(mut self) -> Result<Route, Error> {
        let invalid = |reason: String| Error::InvalidRoute {
            prefix: self.prefix,
            table: self.table,
            reason,
        };
        if self.prefix.trunc() != self.prefix {
            return Err(invalid(format!(
                "it has host bits set: did you mean {}?",
                self.prefix.trunc()
            )));
        }
        if self.table == 0 {
            return Err(invalid(
                "table 0 means \"unspecified\": use 254 (main)".into(),
            ));
        }
        if self.nexthops.is_empty() {
            return Err(invalid("it has no nexthops".into()));
        }
        for nh in &self.nexthops {
            if nh.ifindex == 0 {
                return Err(invalid(format!(
                    "nexthop {nh} has no interface (ifindex 0)"
                )));
            }
            if self.family() == Family::V6 && matches!(nh.gateway, Some(IpAddr::V4(_))) {
                return Err(invalid(format!(
                    "an IPv6 route cannot use the IPv4 gateway in nexthop {nh}"
                )));
            }
        }
        self.nexthops.sort_unstable();
        self.nexthops.dedup();
        Ok(self)
    }
}

/// One change for [`Fib::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Install the route, or replace ours with the same key.
    Upsert(Route),
    /// Delete our route with this key, if there is one.
    Remove(RouteKey),
}

/// How routes forward.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NexthopMode {
    /// Nexthop objects where the kernel has them, multipath routes otherwise.
    #[default]
    Auto,
    /// Nexthop objects, or fail to open.
    Objects,
    /// Nexthops inside each route (`RTA_MULTIPATH`), even where objects exist. Our objects left
    /// over from an earlier run are still cleaned up.
    Multipath,
}

/// How a [`Fib`] tags, forwards and batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FibConfig {
    /// The `rtm_protocol` and `nh_protocol` that mark our routes and objects.
    pub protocol: u8,
    /// The nexthop object ids we allocate from and own.
    pub nexthop_ids: RangeInclusive<u32>,
    pub mode: NexthopMode,
    /// Requests per `sendmsg`; also bounded by the receive buffer the kernel grants.
    pub batch_messages: usize,
    /// Bytes per `sendmsg`; also bounded by the send buffer the kernel grants.
    pub batch_bytes: usize,
}

impl Default for FibConfig {
    fn default() -> Self {
        let limits = Limits::default();
        FibConfig {
            protocol: CLOS_PROTOCOL,
            nexthop_ids: DEFAULT_NEXTHOP_IDS,
            mode: NexthopMode::Auto,
            batch_messages: limits.messages,
            batch_bytes: limits.bytes,
        }
    }
}

impl FibConfig {
    fn validate(&self) -> Result<(), String> {
        if self.protocol == 0 {
            return Err("protocol 0 (unspec) cannot tag routes".into());
        }
        if self.nexthop_ids.is_empty() || *self.nexthop_ids.start() == 0 {
            return Err(format!(
                "nexthop id range {:?} must be non-empty and exclude 0",
                self.nexthop_ids
            ));
        }
        Ok(())
    }
}

/// What one [`Fib::reconcile`] or [`Fib::apply`] did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub added: usize,
    /// Routes whose forwarding changed: rewritten, or moved with their group in one request.
    pub replaced: usize,
    pub deleted: usize,
    /// Routes already installed as desired (adopted without a write).
    pub unchanged: usize,
    pub nexthops_added: usize,
    pub nexthops_deleted: usize,
    /// Netlink requests written; 0 when nothing had to change.
    pub requests: usize,
    /// One error per route that could not be changed (each carries the prefix), plus errors
    /// about nexthop objects that could not be deleted.
    pub errors: Vec<Error>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The FIB programmer. See the [module documentation](self) for the contract.
#[derive(Debug)]
pub struct Fib {
    nl: Netlink,
    config: FibConfig,
    objects_supported: bool,
    state: State,
    /// Extra routes of ours seen by the last dump (see [`kernel::Snapshot::extras`]).
    extras: Vec<(RouteKey, u32)>,
    /// False when our picture of the kernel may be wrong; the next call re-reads it.
    synced: bool,
    /// Whether to move all routes of a group at once by changing the group in place; off once
    /// the kernel refuses (no nexthop replace).
    regroup: bool,
}

impl Fib {
    /// Opens the FIB of the calling thread's network namespace and reads our routes and
    /// objects from it.
    pub fn open(config: FibConfig) -> Result<Self, Error> {
        Self::open_at(None, config)
    }

    /// Opens the FIB of another network namespace, given its file (`/run/netns/NAME`,
    /// `/proc/PID/ns/net`). The calling thread stays where it is.
    pub fn open_in_netns(netns: impl AsRef<Path>, config: FibConfig) -> Result<Self, Error> {
        Self::open_at(Some(netns.as_ref()), config)
    }

    fn open_at(netns: Option<&Path>, config: FibConfig) -> Result<Self, Error> {
        config
            .validate()
            .map_err(|reason| Error::InvalidConfig { reason })?;
        let limits = Limits {
            messages: config.batch_messages,
            bytes: config.batch_bytes,
            ..Limits::default()
        };
        let nl = Netlink::open(netns, limits)?;
        let objects = Objects::new(*config.nexthop_ids.start(), *config.nexthop_ids.end());
        let mut fib = Fib {
            nl,
            config,
            objects_supported: true,
            state: State::new(objects),
            extras: Vec::new(),
            synced: false,
            regroup: true,
        };
        fib.resync()?;
        tracing::info!(
            protocol = fib.config.protocol,
            nexthop_objects = fib.uses_nexthop_objects(),
            routes = fib.state.routes.len(),
            "FIB opened"
        );
        Ok(fib)
    }

    /// Whether routes forward through nexthop objects (else `RTA_MULTIPATH`).
    pub fn uses_nexthop_objects(&self) -> bool {
        self.objects_supported && self.config.mode != NexthopMode::Multipath
    }

    /// Our routes as the `Fib` believes they are installed (after the last call).
    pub fn installed(&self) -> usize {
        self.state.routes.len()
    }

    /// Re-reads our routes and nexthop objects from the kernel, replacing what the `Fib`
    /// believed. [`Fib::reconcile`] does this itself; call it after events that change the
    /// kernel behind our back (an interface going down flushes its nexthops) before
    /// [`Fib::apply`].
    pub fn resync(&mut self) -> Result<(), Error> {
        let protocol = self.config.protocol;
        let mut snapshot = kernel::Snapshot::default();
        let mut objects = Objects::new(
            *self.config.nexthop_ids.start(),
            *self.config.nexthop_ids.end(),
        );
        if self.objects_supported {
            let ids = self.config.nexthop_ids.clone();
            match kernel::dump_nexthops(
                &mut self.nl,
                protocol,
                |id| ids.contains(&id),
                &mut snapshot,
            ) {
                Ok(()) => {}
                Err(Error::Dump { source, .. }) => {
                    if self.config.mode == NexthopMode::Objects {
                        return Err(Error::NexthopObjectsUnsupported { source });
                    }
                    tracing::info!(%source, "no nexthop objects in this kernel; using multipath routes");
                    self.objects_supported = false;
                }
                Err(e) => return Err(e),
            }
        }
        kernel::dump_routes(&mut self.nl, protocol, &mut snapshot)?;
        for id in snapshot.reserved {
            objects.reserve(id);
        }
        for (id, kind) in snapshot.objects {
            objects.adopt(id, kind);
        }
        let mut state = State::new(objects);
        state.routes = snapshot
            .routes
            .into_iter()
            .map(|(key, target)| (key, state::Installed { target }))
            .collect();
        state
            .objects
            .recount(state.routes.values().map(|installed| &installed.target));
        self.state = state;
        self.extras = snapshot.extras;
        self.synced = true;
        Ok(())
    }

    /// Makes our routes in the kernel equal to `desired`: see the module documentation. A
    /// desired route that is invalid is reported and leaves any installed route for its key
    /// alone.
    pub fn reconcile(&mut self, desired: impl IntoIterator<Item = Route>) -> Result<Report, Error> {
        let span = tracing::info_span!("fib.reconcile", protocol = self.config.protocol);
        let _enter = span.enter();
        self.resync()?;
        let mut report = Report::default();
        let mut keep = HashSet::new();
        let mut changes = Vec::new();
        for route in desired {
            let key = route.key();
            if !keep.insert(key) {
                report.errors.push(Error::InvalidRoute {
                    prefix: key.prefix,
                    table: key.table,
                    reason: "it is listed twice in the desired state; the first one counts".into(),
                });
                continue;
            }
            match route.normalized() {
                Ok(route) => changes.push(Planned::Upsert(route)),
                Err(err) => report.errors.push(err),
            }
        }
        let mut stale: Vec<RouteKey> = self
            .state
            .routes
            .keys()
            .filter(|key| !keep.contains(key))
            .copied()
            .collect();
        stale.sort_unstable();
        changes.extend(stale.into_iter().map(Planned::Remove));
        changes.extend(
            std::mem::take(&mut self.extras)
                .into_iter()
                .map(|(key, priority)| Planned::RemoveExtra(key, priority)),
        );
        self.run(changes, &mut report)?;
        tracing::info!(
            added = report.added,
            replaced = report.replaced,
            deleted = report.deleted,
            unchanged = report.unchanged,
            errors = report.errors.len(),
            requests = report.requests,
            "reconciled"
        );
        Ok(report)
    }

    /// Applies `changes` in order against what the `Fib` believes is installed. Upserting a
    /// route that is already installed as given costs nothing; removing one that is not
    /// installed is a no-op.
    pub fn apply(&mut self, changes: impl IntoIterator<Item = Change>) -> Result<Report, Error> {
        if !self.synced {
            self.resync()?;
        }
        let mut report = Report::default();
        let planned = changes
            .into_iter()
            .filter_map(|change| match change {
                Change::Upsert(route) => match route.normalized() {
                    Ok(route) => Some(Planned::Upsert(route)),
                    Err(err) => {
                        report.errors.push(err);
                        None
                    }
                },
                Change::Remove(key) => Some(Planned::Remove(key)),
            })
            .collect();
        self.run(planned, &mut report)?;
        Ok(report)
    }

    fn run(&mut self, changes: Vec<Planned>, report: &mut Report) -> Result<(), Error> {
        let use_objects = self.uses_nexthop_objects();
        let ops = self.state.plan(&changes, use_objects, self.regroup, report);
        let results = self.execute(&ops)?;
        report.requests += ops.len();
        let mut settled = self.state.settle(&ops, &results, report);
        let mut failures = std::mem::take(&mut settled.failures);

        if !settled.refused_regroups.is_empty() {
            if let Some(errno) = settled.regroup_errno
                && (errno == EEXIST || errno == EOPNOTSUPP)
            {
                tracing::info!(
                    errno,
                    "kernel cannot replace nexthop groups; rewriting routes"
                );
                self.regroup = false;
            }
            let retry: HashSet<RouteKey> = settled.refused_regroups.into_iter().collect();
            let again: Vec<Planned> = changes
                .into_iter()
                .filter(|c| matches!(c, Planned::Upsert(r) if retry.contains(&r.key())))
                .collect();
            let ops = self.state.plan(&again, use_objects, false, report);
            let results = self.execute(&ops)?;
            report.requests += ops.len();
            failures.extend(self.state.settle(&ops, &results, report).failures);
        }

        let garbage = self.state.collect_garbage();
        let gc_results = self.execute(&garbage)?;
        State::settle_garbage(&garbage, &gc_results, report);
        report.requests += garbage.len();

        if !failures.is_empty() {
            // Interface names make the messages actionable; they are only needed here.
            let links = kernel::links(&mut self.nl).unwrap_or_default();
            for failure in failures {
                let error = classify(&failure, &links);
                if matches!(error, Error::Kernel { .. } | Error::Lost { .. }) {
                    // Perhaps the kernel changed behind our back: look again next time.
                    self.synced = false;
                }
                report.errors.push(error);
            }
        }
        Ok(())
    }

    fn execute(&mut self, ops: &[state::Op]) -> Result<Vec<Option<KernelError>>, Error> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let protocol = self.config.protocol;
        self.nl
            .execute(ops.len(), |i, buf, seq| {
                kernel::encode(&ops[i], protocol, buf, seq)
            })
            .inspect_err(|_| self.synced = false)
    }
}

/// Turns a refused route change into an error that says what to do.
fn classify(f: &Failure, links: &HashMap<u32, LinkInfo>) -> Error {
    let (prefix, table) = (f.key.prefix, f.key.table);
    let dev = |ifindex: u32| match links.get(&ifindex) {
        Some(link) => link.name.clone(),
        None => format!("with ifindex {ifindex}"),
    };
    let devs = |nexthops: &mut dyn Iterator<Item = &Nexthop>| {
        let mut all: Vec<String> = nexthops.map(|nh| dev(nh.ifindex)).collect();
        all.dedup();
        all.join(" or ")
    };
    // The kernel says "invalid gateway" for an IPv4 gateway on a link that is down; the link
    // being down is the thing to fix.
    let down: Vec<&Nexthop> = f
        .nexthops
        .iter()
        .filter(|nh| links.get(&nh.ifindex).is_some_and(|l| !l.up))
        .collect();
    // Kernels disagree on the errno for a missing device (ENODEV, or EINVAL "Invalid device
    // index" for nexthop objects); the link dump settles it.
    let missing = f
        .nexthops
        .iter()
        .find(|nh| !links.is_empty() && !links.contains_key(&nh.ifindex));
    let source = f.error.clone();
    if let Some(nh) = missing {
        return Error::NoSuchInterface {
            prefix,
            table,
            ifindex: nh.ifindex,
            source,
        };
    }
    match f.error.errno {
        ENETUNREACH | EHOSTUNREACH | ENETDOWN if !down.is_empty() => Error::InterfaceDown {
            prefix,
            table,
            dev: devs(&mut down.into_iter()),
            source,
        },
        ENETUNREACH | EHOSTUNREACH if f.nexthops.iter().any(|nh| nh.gateway.is_some()) => {
            Error::GatewayUnreachable {
                prefix,
                table,
                gateway: f
                    .nexthops
                    .iter()
                    .filter_map(|nh| nh.gateway.map(|g| g.to_string()))
                    .collect::<Vec<_>>()
                    .join(" or "),
                dev: devs(&mut f.nexthops.iter().filter(|nh| nh.gateway.is_some())),
                source,
            }
        }
        ENETDOWN if !f.nexthops.is_empty() => Error::InterfaceDown {
            prefix,
            table,
            dev: devs(&mut f.nexthops.iter()),
            source,
        },
        ENODEV if !f.nexthops.is_empty() => Error::NoSuchInterface {
            prefix,
            table,
            ifindex: f.nexthops[0].ifindex,
            source,
        },
        EEXIST if f.op == state::OP_ADD => Error::ForeignRoute { prefix, table },
        EPERM | EACCES => Error::PermissionDenied { prefix, table },
        ENOBUFS => Error::Lost { prefix, table },
        _ => Error::Kernel {
            prefix,
            table,
            op: f.op,
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_normalized_and_checked() {
        let a = Nexthop::via("10.0.2.2".parse().unwrap(), 3);
        let b = Nexthop::via("10.0.1.2".parse().unwrap(), 2);
        let r = Route::new("10.9.0.0/24".parse().unwrap(), vec![a, b, a])
            .normalized()
            .unwrap();
        assert_eq!(r.nexthops, vec![b, a]);

        let err = Route::new("10.9.0.1/24".parse().unwrap(), vec![a])
            .normalized()
            .unwrap_err();
        assert!(
            err.to_string().contains("did you mean 10.9.0.0/24"),
            "{err}"
        );
        assert_eq!(err.prefix(), Some("10.9.0.1/24".parse().unwrap()));

        let err = Route::new("2001:db8::/64".parse().unwrap(), vec![a])
            .normalized()
            .unwrap_err();
        assert!(err.to_string().contains("IPv4 gateway"), "{err}");
        assert!(
            Route::new("10.9.0.0/24".parse().unwrap(), vec![])
                .normalized()
                .is_err()
        );
        assert!(
            Route::new("10.9.0.0/24".parse().unwrap(), vec![Nexthop::dev(0)])
                .normalized()
                .is_err()
        );
        // RFC 8950: an IPv6 link-local gateway for an IPv4 route.
        let ll = Nexthop::via("fe80::1".parse().unwrap(), 2);
        assert!(
            Route::new("10.9.0.0/24".parse().unwrap(), vec![ll])
                .normalized()
                .is_ok()
        );
    }

    #[test]
    fn errors_say_what_to_do() {
        let key = RouteKey {
            table: MAIN_TABLE,
            prefix: "10.9.0.0/24".parse().unwrap(),
        };
        let names = HashMap::from([(
            3,
            LinkInfo {
                name: "eth1".to_owned(),
                up: true,
            },
        )]);
        let failure = |errno, op| Failure {
            key,
            op,
            error: KernelError::new(errno, Some("Nexthop has invalid gateway".into())),
            nexthops: vec![Nexthop::via("10.0.0.9".parse().unwrap(), 3)],
        };
        let msg = classify(&failure(ENETUNREACH, state::OP_ADD_NEXTHOP), &names).to_string();
        assert!(
            msg.starts_with(
                "route 10.9.0.0/24: nexthop gateway 10.0.0.9 unreachable via dev eth1: is the \
                 interface up"
            ),
            "{msg}"
        );
        let msg = classify(&failure(ENETDOWN, state::OP_ADD_NEXTHOP), &names).to_string();
        assert!(msg.contains("ip link set eth1 up"), "{msg}");
        assert!(matches!(
            classify(&failure(EEXIST, state::OP_ADD), &names),
            Error::ForeignRoute { .. }
        ));
        let msg = classify(
            &failure(crate::netlink::uapi::EINVAL, state::OP_REPLACE),
            &names,
        )
        .to_string();
        assert!(msg.contains("refused to replace the route"), "{msg}");
    }

    #[test]
    fn default_nexthop_ids_carry_the_protocol() {
        assert_eq!(*DEFAULT_NEXTHOP_IDS.start() >> 24, 198);
        assert_eq!(*DEFAULT_NEXTHOP_IDS.end(), 0xc6ff_ffff);
        assert!(FibConfig::default().validate().is_ok());
    }
}
