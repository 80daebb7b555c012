use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use ipnet::IpNet;

/// What the kernel answered to one netlink request that it refused: the errno and, when the
/// kernel gave one, its extended-ack message ("Nexthop has invalid gateway").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    /// Positive errno.
    pub errno: i32,
    pub message: Option<String>,
}

impl KernelError {
    pub fn new(errno: i32, message: Option<String>) -> Self {
        KernelError { errno, message }
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let io = std::io::Error::from_raw_os_error(self.errno);
        match &self.message {
            Some(msg) => write!(f, "{msg} ({io})"),
            None => write!(f, "{io}"),
        }
    }
}

impl std::error::Error for KernelError {}

/// Everything the data plane can fail at. Route errors carry the prefix and table and say what
/// to do next; they are `Clone` so one kernel refusal (a nexthop object) can be reported against
/// every route that depended on it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("netlink socket: {context}: {source}")]
    Socket {
        context: String,
        #[source]
        source: Arc<std::io::Error>,
    },

    #[error(
        "cannot open a netlink socket in network namespace {path}: {source}; does the namespace \
         exist (`ip netns list`) and are we root?"
    )]
    Netns {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },

    #[error("invalid FIB configuration: {reason}")]
    InvalidConfig { reason: String },

    #[error("the kernel refused to dump {what}: {source}")]
    Dump {
        what: &'static str,
        #[source]
        source: KernelError,
    },

    #[error(
        "this kernel has no nexthop objects ({source}); they need Linux 5.3 or later: use \
         NexthopMode::Auto to fall back to multipath routes"
    )]
    NexthopObjectsUnsupported {
        #[source]
        source: KernelError,
    },

    #[error(
        "malformed netlink message from the kernel ({what}): {detail}; please report this with \
         the kernel version (`uname -r`)"
    )]
    Decode { what: &'static str, detail: String },

    #[error("route {prefix} (table {table}) is invalid: {reason}")]
    InvalidRoute {
        prefix: IpNet,
        table: u32,
        reason: String,
    },

    #[error(
        "route {prefix}: nexthop gateway {gateway} unreachable via dev {dev}: is the interface \
         up, with an address on the gateway's subnet (or is the gateway link-local)? ({source})"
    )]
    GatewayUnreachable {
        prefix: IpNet,
        table: u32,
        gateway: String,
        dev: String,
        #[source]
        source: KernelError,
    },

    #[error(
        "route {prefix}: dev {dev} is down: bring it up (`ip link set {dev} up`), then reconcile \
         again ({source})"
    )]
    InterfaceDown {
        prefix: IpNet,
        table: u32,
        dev: String,
        #[source]
        source: KernelError,
    },

    #[error(
        "route {prefix}: no interface with index {ifindex}: it was deleted or never existed; \
         reconcile again with the interface's current index ({source})"
    )]
    NoSuchInterface {
        prefix: IpNet,
        table: u32,
        ifindex: u32,
        #[source]
        source: KernelError,
    },

    #[error(
        "route {prefix} (table {table}) already exists and is not ours (added by hand or by \
         another routing daemon); Clos never replaces routes it does not own: delete that route \
         or use another table"
    )]
    ForeignRoute { prefix: IpNet, table: u32 },

    #[error(
        "route {prefix}: permission denied: programming routes needs CAP_NET_ADMIN (run the \
         agent as root)"
    )]
    PermissionDenied { prefix: IpNet, table: u32 },

    #[error("route {prefix} (table {table}): the kernel refused to {op}: {source}")]
    Kernel {
        prefix: IpNet,
        table: u32,
        op: &'static str,
        #[source]
        source: KernelError,
    },

    #[error(
        "route {prefix} (table {table}): its acknowledgement was lost because the netlink \
         receive buffer overran, so its state is unknown: reconcile again (and raise \
         net.core.rmem_max if this recurs)"
    )]
    Lost { prefix: IpNet, table: u32 },

    #[error(
        "nexthop object {id}: the kernel refused to {op} it: {source}; reconcile again to retry \
         (`ip nexthop show id {id}` shows it)"
    )]
    Nexthop {
        id: u32,
        op: &'static str,
        #[source]
        source: KernelError,
    },

    #[error(
        "the nexthop id range {first}..={last} is exhausted: widen FibConfig::nexthop_ids \
         (ECMP sets in use need one id each, plus one per distinct nexthop)"
    )]
    NexthopIdsExhausted { first: u32, last: u32 },

    #[error("the kernel refused to look up its route to {addr}: {source}")]
    RouteLookup {
        addr: std::net::IpAddr,
        #[source]
        source: KernelError,
    },

    #[error("interface {name}: the kernel refused to {op}: {source}")]
    Link {
        name: String,
        op: &'static str,
        #[source]
        source: KernelError,
    },

    #[error(
        "interface {name} exists but is a {kind} interface, not a dummy: Clos keeps its own \
         dummy under that name, so rename or delete that interface (`ip link del {name}`)"
    )]
    NotDummy { name: String, kind: String },

    #[error(
        "cannot create the dummy interface {name}: this kernel has no dummy driver \
         (CONFIG_DUMMY; try `modprobe dummy`): {source}"
    )]
    DummyUnsupported {
        name: String,
        #[source]
        source: KernelError,
    },

    #[error("interface {interface}: the kernel refused to {op} address {addr}: {source}")]
    Address {
        interface: String,
        addr: IpNet,
        op: &'static str,
        #[source]
        source: KernelError,
    },

    #[error("invalid interface name {name:?}: {reason}")]
    InvalidInterfaceName { name: String, reason: &'static str },

    #[error(
        "no interface named {name} in the calling thread's network namespace (is the agent in \
         the host's namespace, and does the interface exist yet?)"
    )]
    UnknownInterface { name: String },

    #[error(
        "cannot set {path} to {value}: {source}; this needs root in the network namespace and \
         a writable /proc/sys"
    )]
    Sysctl {
        path: PathBuf,
        value: &'static str,
        #[source]
        source: Arc<std::io::Error>,
    },
}

impl Error {
    /// The prefix of the route this error is about, if it is about one.
    pub fn prefix(&self) -> Option<IpNet> {
        match self {
            Error::InvalidRoute { prefix, .. }
            | Error::GatewayUnreachable { prefix, .. }
            | Error::InterfaceDown { prefix, .. }
            | Error::NoSuchInterface { prefix, .. }
            | Error::ForeignRoute { prefix, .. }
            | Error::PermissionDenied { prefix, .. }
            | Error::Kernel { prefix, .. }
            | Error::Lost { prefix, .. } => Some(*prefix),
            _ => None,
        }
    }

    pub(crate) fn socket(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Socket {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn decode(what: &'static str, detail: impl fmt::Display) -> Self {
        Error::Decode {
            what,
            detail: detail.to_string(),
        }
    }
}
