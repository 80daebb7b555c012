//! Per-peer session configuration: what we offer in our OPEN and how we time the session.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::wire::capability::{Capability, ExtNextHop, GrFamily, GracefulRestart};
use crate::wire::context::Family;
use crate::wire::open::Open;

/// Which AS the peer must announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteAs {
    /// Exactly this AS.
    Exact(u32),
    /// Any AS but ours (FRR's `remote-as external`: unnumbered host peering).
    External,
    /// Our own AS.
    Internal,
}

impl RemoteAs {
    /// Whether `asn` is acceptable given our `local_as`.
    pub fn accepts(&self, asn: u32, local_as: u32) -> bool {
        match *self {
            RemoteAs::Exact(want) => asn == want,
            RemoteAs::External => asn != local_as,
            RemoteAs::Internal => asn == local_as,
        }
    }
}

/// Graceful restart (RFC 4724) as we offer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// How long the peer should keep our routes while we restart (at most 4095 s).
    pub restart_time: u16,
    /// Set in the OPEN after we restarted with the FIB intact: the peer keeps our routes
    /// (forwarding state preserved) until we send End-of-RIB.
    pub restarting: bool,
    /// Whether our forwarding state survives a restart of this process (the kernel keeps the
    /// routes we installed).
    pub preserves_forwarding: bool,
}

impl Default for GracefulRestartConfig {
    fn default() -> Self {
        GracefulRestartConfig {
            restart_time: 120,
            restarting: false,
            preserves_forwarding: true,
        }
    }
}

/// The idle-hold backoff for a flapping peer: after a session fails we wait `initial`, doubling
/// on each failure that follows quickly, up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// A session that stayed up at least this long resets the backoff to `initial`.
    pub stable_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        // Data-centre defaults: reconnect fast; BIRD's 60 s error wait is too slow for a fabric.
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
        }
    }
}

/// Everything the session core needs to know about one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    pub remote_as: RemoteAs,
    /// Proposed hold time in seconds: 0 (no keepalives) or at least 3.
    pub hold_time: u16,
    /// How long to wait between outbound connection attempts.
    pub connect_retry: Duration,
    /// Never connect out; wait for the peer.
    pub passive: bool,
    /// Families offered with the multiprotocol capability.
    pub families: Vec<Family>,
    /// Offer RFC 8950 IPv4 NLRI with IPv6 next hops (needed for unnumbered peering).
    pub extended_next_hop: bool,
    /// Offer RFC 8654 extended messages.
    pub extended_message: bool,
    /// Offer graceful restart for the families we carry; `None` disables it.
    pub graceful_restart: Option<GracefulRestartConfig>,
    pub backoff: Backoff,
}

impl SessionConfig {
    /// Data-centre defaults (as FRR's `datacenter` profile): hold 9 s, keepalive 3 s, connect
    /// retry 5 s, IPv4 and IPv6 unicast, extended next hop, graceful restart.
    pub fn new(local_as: u32, router_id: Ipv4Addr, remote_as: RemoteAs) -> Self {
        SessionConfig {
            local_as,
            router_id,
            remote_as,
            hold_time: 9,
            connect_retry: Duration::from_secs(5),
            passive: false,
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            extended_next_hop: true,
            extended_message: true,
            graceful_restart: Some(GracefulRestartConfig::default()),
            backoff: Backoff::default(),
        }
    }

    /// The OPEN we send.
    pub fn open(&self) -> Open {
        let mut caps: Vec<Capability> = self
            .families
            .iter()
            .map(|f| Capability::MultiProtocol(*f))
            .collect();
        caps.push(Capability::RouteRefresh);
        caps.push(Capability::FourOctetAs(self.local_as));
        if self.extended_next_hop && self.families.contains(&Family::IPV4_UNICAST) {
            caps.push(Capability::ExtendedNextHop(vec![
                ExtNextHop::IPV4_UNICAST_OVER_IPV6,
            ]));
        }
        if self.extended_message {
            caps.push(Capability::ExtendedMessage);
        }
        if let Some(gr) = &self.graceful_restart {
            // Only families we actually carry: advertising GR for a family that is then not
            // negotiated makes peers wait for an End-of-RIB that never comes.
            let families = self
                .families
                .iter()
                .map(|f| GrFamily::new(*f, gr.preserves_forwarding))
                .collect();
            caps.push(Capability::GracefulRestart(GracefulRestart::new(
                gr.restarting,
                gr.restart_time.min(GracefulRestart::MAX_RESTART_TIME),
                families,
            )));
        }
        Open::new(self.local_as, self.hold_time, self.router_id, caps)
    }
}
