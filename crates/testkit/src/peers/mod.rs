//! Real BGP daemons run inside a test's namespace from a generated (or hand-written) config,
//! and queried through their own CLIs for the state tests assert on.

mod bird;
mod exabgp;
mod frr;
mod gobgp;
mod openbgpd;

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

pub use bird::Bird;
pub use exabgp::Exabgp;
pub use frr::Frr;
pub use gobgp::Gobgp;
use ipnet::IpNet;
pub use openbgpd::Openbgpd;

use crate::{Daemon, Diagnose, Netns, Result, Retry, wait_until_with};

/// BGP session state as the daemon reports it, normalised to RFC 4271 names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
    /// Reported by the daemon in a form we do not map (kept verbatim for error messages).
    Other(String),
}

impl SessionState {
    /// Maps the names daemons print ("Established", "established", "OpenConfirm", "up", ...).
    pub fn from_name(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "idle" => Self::Idle,
            "connect" => Self::Connect,
            "active" => Self::Active,
            "opensent" | "open_sent" => Self::OpenSent,
            "openconfirm" | "open_confirm" => Self::OpenConfirm,
            "established" | "up" => Self::Established,
            _ => Self::Other(name.to_owned()),
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Other(s) => write!(f, "{s}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// One BGP neighbour of a generated config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborSpec {
    pub address: IpAddr,
    pub remote_as: u32,
    /// The neighbour's TCP port, when it is not 179.
    pub port: Option<u16>,
    /// The source address of the session (ExaBGP requires it).
    pub local_address: Option<IpAddr>,
    /// Wait for the neighbour to connect instead of connecting.
    pub passive: bool,
    /// RFC 2385 TCP-MD5 key.
    pub password: Option<String>,
    /// GTSM (RFC 5082) for a directly connected neighbour (BIRD and FRR).
    pub ttl_security: bool,
    /// BFD for the session (BIRD and FRR): interval in milliseconds and detect multiplier.
    /// BIRD takes the timers of the first neighbour that has them for all.
    pub bfd: Option<(u32, u8)>,
}

impl NeighborSpec {
    pub fn new(address: IpAddr, remote_as: u32) -> Self {
        NeighborSpec {
            address,
            remote_as,
            port: None,
            local_address: None,
            passive: false,
            password: None,
            ttl_security: false,
            bfd: None,
        }
    }

    pub fn bfd(mut self, interval_ms: u32, multiplier: u8) -> Self {
        self.bfd = Some((interval_ms, multiplier));
        self
    }

    pub fn ttl_security(mut self) -> Self {
        self.ttl_security = true;
        self
    }

    pub fn password(mut self, key: &str) -> Self {
        self.password = Some(key.to_owned());
        self
    }

    pub fn local_address(mut self, address: IpAddr) -> Self {
        self.local_address = Some(address);
        self
    }

    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    pub fn passive(mut self) -> Self {
        self.passive = true;
        self
    }
}

/// A daemon-neutral description of a BGP speaker: each daemon renders it in its own syntax.
/// Import and export accept everything, as a test peer should.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerSpec {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub neighbors: Vec<NeighborSpec>,
    /// Prefixes the speaker originates.
    pub networks: Vec<IpNet>,
    /// Graceful restart (RFC 4724) with this restart time in seconds (BIRD and FRR).
    pub graceful_restart: Option<u16>,
}

impl SpeakerSpec {
    pub fn new(asn: u32, router_id: Ipv4Addr) -> Self {
        SpeakerSpec {
            asn,
            router_id,
            neighbors: Vec::new(),
            networks: Vec::new(),
            graceful_restart: None,
        }
    }

    pub fn graceful_restart(mut self, restart_time: u16) -> Self {
        self.graceful_restart = Some(restart_time);
        self
    }

    pub fn neighbor(mut self, neighbor: NeighborSpec) -> Self {
        self.neighbors.push(neighbor);
        self
    }

    pub fn network(mut self, prefix: IpNet) -> Self {
        self.networks.push(prefix);
        self
    }

    fn has_v6(&self) -> bool {
        self.networks.iter().any(|n| matches!(n, IpNet::V6(_)))
            || self.neighbors.iter().any(|n| n.address.is_ipv6())
    }
}

/// What every test peer can tell about itself.
pub trait PeerDaemon: Diagnose + fmt::Debug {
    /// "bird", "frr", ...
    fn kind(&self) -> &'static str;

    /// The state of the session with `neighbor`.
    fn session_state(&self, neighbor: IpAddr) -> Result<SessionState>;

    /// Prefixes received from `neighbor` and accepted (both address families).
    fn received_prefixes(&self, neighbor: IpAddr) -> Result<BTreeSet<IpNet>>;

    /// The processes of this peer, to check they are alive or to kill them in fault tests.
    fn daemons(&self) -> &[Daemon];

    /// An error if any of the peer's processes has exited.
    fn check_running(&self) -> Result<()> {
        self.daemons().iter().try_for_each(Daemon::check_running)
    }

    /// Waits until the session with `neighbor` is Established.
    fn wait_established(&self, neighbor: IpAddr, timeout: Duration) -> Result<()> {
        wait_until_with(
            timeout,
            &format!("{} session with {neighbor} to be Established", self.kind()),
            &[self.as_diagnose()],
            || {
                self.check_running().map_err(Retry::Fail)?;
                match self.session_state(neighbor) {
                    Ok(SessionState::Established) => Ok(()),
                    Ok(state) => Err(format!("state {state}").into()),
                    Err(err) => Err(err.to_string().into()),
                }
            },
        )
    }

    /// Waits until every prefix of `expected` has been received from `neighbor`; returns all
    /// prefixes received from it.
    fn wait_received(
        &self,
        neighbor: IpAddr,
        expected: &[IpNet],
        timeout: Duration,
    ) -> Result<BTreeSet<IpNet>> {
        wait_until_with(
            timeout,
            &format!("{} to receive {expected:?} from {neighbor}", self.kind()),
            &[self.as_diagnose()],
            || {
                self.check_running().map_err(Retry::Fail)?;
                let got = self
                    .received_prefixes(neighbor)
                    .map_err(|e| Retry::Again(e.to_string()))?;
                if expected.iter().all(|p| got.contains(p)) {
                    Ok(got)
                } else {
                    Err(format!("received {got:?}").into())
                }
            },
        )
    }

    fn as_diagnose(&self) -> &dyn Diagnose;
}

/// The daemons the test kit can run, for tests that loop over all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BgpSpeaker {
    Bird,
    Frr,
    Gobgp,
    Openbgpd,
    Exabgp,
}

impl BgpSpeaker {
    pub const ALL: [BgpSpeaker; 5] = [
        BgpSpeaker::Bird,
        BgpSpeaker::Frr,
        BgpSpeaker::Gobgp,
        BgpSpeaker::Openbgpd,
        BgpSpeaker::Exabgp,
    ];

    /// Starts this daemon in `ns` from `spec`.
    pub fn start(self, ns: &Netns, spec: &SpeakerSpec) -> Result<Box<dyn PeerDaemon>> {
        Ok(match self {
            BgpSpeaker::Bird => Box::new(Bird::start(ns, spec)?),
            BgpSpeaker::Frr => Box::new(Frr::start(ns, spec)?),
            BgpSpeaker::Gobgp => Box::new(Gobgp::start(ns, spec)?),
            BgpSpeaker::Openbgpd => Box::new(Openbgpd::start(ns, spec)?),
            BgpSpeaker::Exabgp => Box::new(Exabgp::start(ns, spec)?),
        })
    }
}

/// A scratch directory for one daemon instance, removed on drop unless `CLOS_TESTKIT_KEEP` is
/// set (then its path is printed, to read configs and logs after a failure).
pub(crate) fn scratch_dir(kind: &str) -> Result<tempfile::TempDir> {
    let mut dir = tempfile::Builder::new()
        .prefix(&format!("{}{kind}-", crate::names::scratch_prefix()))
        .tempdir()
        .map_err(|e| crate::Error::io("creating scratch directory", e))?;
    if std::env::var_os("CLOS_TESTKIT_KEEP").is_some() {
        eprintln!("testkit: keeping {}", dir.path().display());
        dir.disable_cleanup(true);
    }
    Ok(dir)
}

pub(crate) fn write_file(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents)
        .map_err(|e| crate::Error::io(format!("writing {}", path.display()), e))
}

/// Log tails of all `daemons`, for timeout diagnostics.
pub(crate) fn logs_of(daemons: &[Daemon]) -> String {
    daemons
        .iter()
        .map(|d| format!("--- log of {} ---\n{}", d.name(), d.log_tail(40)))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn parse_prefix(what: &str, s: &str) -> Result<IpNet> {
    s.parse()
        .map_err(|_| crate::Error::parse(what, format!("bad prefix {s:?}")))
}

pub(crate) fn json(what: &str, text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| crate::Error::parse(what, format!("{e}: {text}")))
}
