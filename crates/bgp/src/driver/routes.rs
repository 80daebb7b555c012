//! The driver's route state: the RIB, each peer's import and export policy, and what we
//! advertised to each peer (its Adj-RIB-Out), turned into UPDATE messages.
//!
//! Contract: the event loop calls [`Routes::established`], [`Routes::update`],
//! [`Routes::peer_down`] and the local origination methods, then [`Routes::flush`], which
//! selects best paths once for everything that changed and returns the messages for every
//! Established peer plus the Loc-RIB changes for subscribers (the FIB). Nothing here does I/O.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::iana::{CeaseSubcode, Origin};
use crate::policy::{
    Policy, RouteContext, Verdict, defaults,
    transform::{self, EbgpExport},
    wellknown,
};
use crate::rib::{self, Change, PeerId, PeerInfo, Rib, RibConfig, Route};
use crate::session::State;
use crate::wire::attr::as4;
use crate::wire::{
    AsPath, Negotiated, NextHop, Notification, NotificationCode, PathAttributes, PeerKind, Prefix,
    UpdateOutcome, UpdatePacker,
};

/// One peer, for status output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerStatus {
    pub address: IpAddr,
    pub state: String,
    pub remote_as: Option<u32>,
    pub router_id: Option<String>,
    /// Routes of the peer in the RIB after import policy (stale ones included).
    pub received: usize,
    /// Of those, kept as stale while the peer restarts (RFC 4724).
    pub stale: usize,
    /// Prefixes we currently advertise to the peer.
    pub advertised: usize,
    /// The listen range a dynamic neighbour was accepted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_range: Option<ipnet::IpNet>,
}

/// The whole speaker, for status output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeakerStatus {
    pub peers: Vec<PeerStatus>,
    pub originated: usize,
    /// Prefixes with a best path.
    pub loc_rib: usize,
}

/// How the route state treats one peer (from its configuration).
#[derive(Debug, Clone, Default)]
pub struct PeerPolicy {
    pub import: Option<Arc<Policy>>,
    pub export: Option<Arc<Policy>>,
    /// Reset the session with Cease/Maximum Number of Prefixes Reached beyond this many
    /// routes, and stay down for `max_prefix_restart`.
    pub max_prefixes: Option<u32>,
    pub max_prefix_restart: Duration,
}

impl PeerPolicy {
    /// Import and export everything: for tests and for iBGP-like lab setups.
    pub fn accept_all() -> Self {
        let all = Arc::new(Policy::accept_all());
        PeerPolicy {
            import: Some(all.clone()),
            export: Some(all),
            max_prefixes: None,
            max_prefix_restart: Duration::from_secs(60),
        }
    }
}

/// What the event loop must do to a session after [`Routes::update`].
#[derive(Debug)]
pub(super) enum SessionAction {
    Reset {
        notification: Notification,
        idle_hold: Duration,
    },
}

#[derive(Debug, Default)]
struct PeerRoutes {
    policy: PeerPolicy,
    /// Registered in the RIB while Established, and while its routes are kept stale.
    id: Option<PeerId>,
    /// The session's parameters, while Established.
    session: Option<Session>,
    /// When the stale routes of a gracefully restarting peer are dropped.
    stale_until: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Session {
    negotiated: Negotiated,
    local: Option<SocketAddr>,
    /// Prefixes we advertised on this session.
    adj_out: HashSet<Prefix>,
}

/// Route state of a speaker. See the module docs.
#[derive(Debug)]
pub(super) struct Routes {
    rib: Rib,
    local_as: u32,
    peers: Vec<PeerRoutes>,
    by_id: HashMap<PeerId, usize>,
    originated: HashSet<Prefix>,
    /// Slots of removed peers, for [`Routes::add_peer`] to reuse.
    free: Vec<usize>,
}

/// Import, in the order the policy module prescribes: RFC 8212 default, the policy, then
/// graceful shutdown (so that a policy cannot undo a peer's drain).
struct ImportPipeline<'a> {
    policy: defaults::EffectivePolicy<'a>,
    peer_as: u32,
    peer_kind: PeerKind,
    local_as: u32,
    local_address: Option<IpAddr>,
}

impl rib::Import for ImportPipeline<'_> {
    fn import(&mut self, prefix: &Prefix, attrs: &PathAttributes) -> rib::Verdict {
        let mut ctx = RouteContext::new(*prefix, self.peer_as, self.peer_kind, self.local_as);
        ctx.local_address = self.local_address;
        let mut out = attrs.clone();
        match self.policy.apply(&ctx, &mut out) {
            Verdict::Reject => rib::Verdict::Reject,
            Verdict::Accept => {
                wellknown::graceful_shutdown_import(&mut out);
                // The RIB shares the received attribute set when nothing changed.
                if out == *attrs {
                    rib::Verdict::Accept
                } else {
                    rib::Verdict::Modify(out)
                }
            }
        }
    }
}

/// `outcome` with AS4_PATH and AS4_AGGREGATOR merged into AS_PATH and AGGREGATOR.
fn reconcile_as4(outcome: &UpdateOutcome) -> UpdateOutcome {
    let mut outcome = outcome.clone();
    match &mut outcome {
        UpdateOutcome::Ok(u) | UpdateOutcome::AttributeDiscard { update: u, .. } => {
            as4::reconcile(&mut u.attrs);
        }
        UpdateOutcome::TreatAsWithdraw { .. } | UpdateOutcome::SessionReset(_) => {}
    }
    outcome
}

/// Attributes of our own routes before export: no AS_PATH yet, ORIGIN IGP.
fn local_attrs() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::empty()),
        ..PathAttributes::default()
    }
}

fn to_next_hop(ip: IpAddr) -> NextHop {
    match ip {
        IpAddr::V4(v4) => NextHop::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => NextHop::V4(v4),
            // RFC 2545 wants the global address first; on a link-local (unnumbered) session it
            // is the link-local one, which FRR and BIRD accept.
            None => NextHop::V6 {
                global: v6,
                link_local: None,
            },
        },
    }
}

impl Routes {
    pub fn new(local_as: u32, policies: Vec<PeerPolicy>) -> Self {
        let config = RibConfig {
            // A host with two ToRs wants both; a route server rarely needs more than 8.
            max_paths: std::num::NonZeroU16::new(8).unwrap_or(std::num::NonZeroU16::MIN),
            multipath_relax: true,
            ..RibConfig::default()
        };
        Routes {
            rib: Rib::new(config),
            local_as,
            peers: policies
                .into_iter()
                .map(|policy| PeerRoutes {
                    policy,
                    id: None,
                    session: None,
                    stale_until: None,
                })
                .collect(),
            by_id: HashMap::new(),
            originated: HashSet::new(),
            free: Vec::new(),
        }
    }

    /// Adds a peer (a dynamic neighbour) and returns its index: the slot of a removed peer,
    /// or a new one.
    pub fn add_peer(&mut self, policy: PeerPolicy) -> usize {
        let peer = PeerRoutes {
            policy,
            ..PeerRoutes::default()
        };
        match self.free.pop() {
            Some(i) => {
                self.peers[i] = peer;
                i
            }
            None => {
                self.peers.push(peer);
                self.peers.len() - 1
            }
        }
    }

    /// Removes peer `i` with whatever routes it still has; [`Routes::add_peer`] reuses the slot.
    pub fn remove_peer(&mut self, i: usize) {
        let Some(peer) = self.peers.get_mut(i) else {
            return;
        };
        if let Some(id) = peer.id {
            self.rib.remove_peer(id);
            self.by_id.remove(&id);
        }
        *peer = PeerRoutes::default();
        self.free.push(i);
    }

    /// Whether peer `i` holds nothing: not Established, and no routes kept stale.
    pub fn is_idle(&self, i: usize) -> bool {
        self.peers
            .get(i)
            .is_none_or(|p| p.session.is_none() && p.stale_until.is_none())
    }

    pub fn originate(&mut self, prefixes: &[Prefix]) {
        for p in prefixes {
            if self.originated.insert(*p) {
                self.rib.originate(*p, local_attrs());
            }
        }
    }

    pub fn withdraw_local(&mut self, prefixes: &[Prefix]) {
        for p in prefixes {
            if self.originated.remove(p) {
                self.rib.withdraw_local(*p);
            }
        }
    }

    /// The session with peer `i` is Established: register it and build its initial UPDATEs
    /// (the whole table through the export policy, then End-of-RIB per family).
    pub fn established(
        &mut self,
        i: usize,
        address: IpAddr,
        n: &Negotiated,
        local: Option<SocketAddr>,
    ) -> Vec<Bytes> {
        let mut info = PeerInfo::from_negotiated(address, self.local_as, n);
        info.max_prefixes = self.peers[i].policy.max_prefixes;
        // A peer back from a graceful restart keeps its id: its stale routes are refreshed by
        // what it re-announces and swept by its End-of-RIB.
        let id = match self.peers[i].id {
            Some(id) => {
                self.rib.update_peer(id, info);
                id
            }
            None => {
                let id = self.rib.add_peer(info);
                self.by_id.insert(id, i);
                id
            }
        };
        self.peers[i].id = Some(id);
        self.peers[i].stale_until = None;
        self.peers[i].session = Some(Session {
            negotiated: n.clone(),
            local,
            adj_out: HashSet::new(),
        });
        let routes: Vec<(Prefix, Route)> = self.rib.loc_rib().map(|e| (e.prefix, e.best)).collect();
        let mut packer = UpdatePacker::new(n.decode_context());
        for (prefix, best) in routes {
            self.export_one(i, prefix, Some(&best), &mut packer);
        }
        for family in &n.families {
            if let Err(err) = packer.end_of_rib(*family) {
                tracing::warn!(%err, "cannot encode End-of-RIB");
            }
        }
        packer.finish()
    }

    /// Everything we advertise to peer `i` again, for its ROUTE-REFRESH.
    pub fn refresh(&mut self, i: usize) -> Vec<Bytes> {
        let Some(s) = &mut self.peers[i].session else {
            return Vec::new();
        };
        s.adj_out.clear();
        let mut packer = UpdatePacker::new(s.negotiated.decode_context());
        let routes: Vec<(Prefix, Route)> = self.rib.loc_rib().map(|e| (e.prefix, e.best)).collect();
        for (prefix, best) in routes {
            self.export_one(i, prefix, Some(&best), &mut packer);
        }
        packer.finish()
    }

    /// Applies an UPDATE from peer `i` through its import policy.
    pub fn update(&mut self, i: usize, outcome: &UpdateOutcome) -> Option<SessionAction> {
        if let UpdateOutcome::TreatAsWithdraw { reason, .. } = outcome {
            tracing::warn!(%reason, "malformed UPDATE treated as withdraw (RFC 7606)");
        }
        let peer = &self.peers[i];
        let (id, session) = (peer.id?, peer.session.as_ref()?);
        // A 2-octet peer carries 4-octet AS numbers in AS4_PATH/AS4_AGGREGATOR: merge them
        // before anything looks at the path (RFC 6793 section 4.2.3).
        let reconciled;
        let outcome = if session.negotiated.four_octet_as {
            outcome
        } else {
            reconciled = reconcile_as4(outcome);
            &reconciled
        };
        let mut import = ImportPipeline {
            policy: defaults::effective(
                peer.policy.import.as_deref(),
                session.negotiated.peer_kind,
            ),
            peer_as: session.negotiated.peer_as,
            peer_kind: session.negotiated.peer_kind,
            local_as: self.local_as,
            local_address: session.local.map(|a| a.ip()),
        };
        let report = self.rib.apply_outcome(id, outcome, &mut import)?;
        let exceeded = report.max_prefix?;
        tracing::warn!(
            limit = exceeded.limit,
            accepted = exceeded.accepted,
            "maximum prefixes exceeded"
        );
        Some(SessionAction::Reset {
            notification: Notification::new(NotificationCode::Cease(
                CeaseSubcode::MaximumPrefixesReached,
            )),
            idle_hold: self.peers[i].policy.max_prefix_restart,
        })
    }

    /// The session with peer `i` ended. With graceful restart its routes stay (stale) until
    /// it comes back and sends End-of-RIB, or its restart time passes.
    pub fn peer_down(&mut self, i: usize, graceful: bool, now: Instant) {
        let peer = &mut self.peers[i];
        let restart_time = peer
            .session
            .take()
            .and_then(|s| s.negotiated.peer_graceful_restart)
            // RFC 4724 section 4.2: routes are kept for the families the capability lists; a
            // peer that lists none (BIRD's default "aware" mode) preserves nothing.
            .filter(|gr| !gr.families.is_empty())
            .map(|gr| Duration::from_secs(gr.restart_time.into()));
        let Some(id) = peer.id else { return };
        match restart_time.filter(|_| graceful) {
            Some(t) => {
                self.rib.peer_down(id, true, now);
                peer.stale_until = Some(now + t);
            }
            None => {
                self.rib.remove_peer(id);
                self.by_id.remove(&id);
                peer.id = None;
                peer.stale_until = None;
            }
        }
    }

    /// The earliest stale-route deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.peers.iter().filter_map(|p| p.stale_until).min()
    }

    /// Drops the stale routes of peers whose restart time has passed; returns those peers.
    pub fn expire(&mut self, now: Instant) -> Vec<usize> {
        let mut expired = Vec::new();
        for (i, peer) in self.peers.iter_mut().enumerate() {
            if peer.stale_until.is_some_and(|t| t <= now) {
                peer.stale_until = None;
                expired.push(i);
                if let Some(id) = peer.id {
                    let n = self.rib.stale_expired(id);
                    tracing::info!(swept = ?n, "restart time over: stale routes removed");
                }
            }
        }
        expired
    }

    /// Selects best paths for everything that changed; returns the UPDATEs per Established
    /// peer and the changes for the FIB.
    pub fn flush(&mut self) -> (Vec<(usize, Vec<Bytes>)>, Vec<Change>) {
        if !self.rib.has_pending_changes() {
            return (Vec::new(), Vec::new());
        }
        let changes = self.rib.drain_changes();
        let mut out = Vec::new();
        for i in 0..self.peers.len() {
            let Some(s) = &self.peers[i].session else {
                continue;
            };
            let mut packer = UpdatePacker::new(s.negotiated.decode_context());
            for c in &changes {
                self.export_one(i, c.prefix, c.best.as_ref(), &mut packer);
            }
            let messages = packer.finish();
            if !messages.is_empty() {
                out.push((i, messages));
            }
        }
        (out, changes)
    }

    /// Announces `best` for `prefix` to peer `i`, or withdraws what we sent before when the
    /// route is gone or does not pass the export rules.
    fn export_one(
        &mut self,
        i: usize,
        prefix: Prefix,
        best: Option<&Route>,
        packer: &mut UpdatePacker,
    ) {
        let export = best.and_then(|b| self.export_attrs(i, prefix, b));
        let Some(s) = &mut self.peers[i].session else {
            return;
        };
        let result = match export {
            Some((attrs, next_hop)) => {
                s.adj_out.insert(prefix);
                packer.announce(&attrs, next_hop, &[prefix])
            }
            None if s.adj_out.remove(&prefix) => packer.withdraw(&[prefix]),
            None => Ok(0),
        };
        if let Err(err) = result {
            // A family the session cannot carry (an IPv6 route to an IPv4-only peer).
            tracing::debug!(%prefix, %err, "not advertised on this session");
            s.adj_out.remove(&prefix);
        }
    }

    /// The attributes and next hop of `best` as sent to peer `i`, or `None` if it must not be.
    fn export_attrs(
        &self,
        i: usize,
        prefix: Prefix,
        best: &Route,
    ) -> Option<(PathAttributes, NextHop)> {
        let s = self.peers[i].session.as_ref()?;
        let kind = s.negotiated.peer_kind;
        let from = (best.peer != rib::PeerId::LOCAL)
            .then(|| self.by_id.get(&best.peer).copied())
            .flatten();
        // Never back to where it came from; iBGP routes not to other iBGP peers (no route
        // reflection).
        if from == Some(i) {
            return None;
        }
        if let Some(from) = from
            && kind == PeerKind::Internal
            && self.peers[from]
                .session
                .as_ref()
                .map(|f| f.negotiated.peer_kind)
                == Some(PeerKind::Internal)
        {
            return None;
        }
        let mut attrs = best.attrs.attrs().clone();
        if !wellknown::export_allowed(&attrs, kind) {
            return None;
        }
        let local_address = s.local.map(|a| a.ip())?;
        let mut ctx = RouteContext::new(prefix, s.negotiated.peer_as, kind, self.local_as);
        ctx.local_address = Some(local_address);
        ctx.next_hop = best.attrs.next_hop().map(|nh| match nh {
            NextHop::V4(a) => IpAddr::V4(a),
            NextHop::V6 { global, .. } => IpAddr::V6(global),
        });
        let decision = defaults::effective(self.peers[i].policy.export.as_deref(), kind)
            .evaluate(&ctx, &mut attrs);
        if decision.verdict == Verdict::Reject {
            return None;
        }
        attrs.prepare_for_readvertisement();
        attrs.as4_path = None;
        attrs.as4_aggregator = None;
        let next_hop = match kind {
            PeerKind::External => transform::ebgp_export(
                &mut attrs,
                &EbgpExport {
                    local_as: self.local_as,
                    local_address,
                    send_med: false,
                    med_is_ours: decision.sets_med || best.peer == rib::PeerId::LOCAL,
                },
            ),
            PeerKind::Internal => {
                transform::ibgp_export(&mut attrs, Some(local_address)).unwrap_or(local_address)
            }
        };
        if !s.negotiated.four_octet_as {
            as4::split_for_two_octet_peer(&mut attrs);
        }
        Some((attrs, to_next_hop(next_hop)))
    }

    /// Every prefix with a best path, as changes (the first batch a FIB subscriber gets).
    pub fn snapshot(&self) -> Vec<Change> {
        self.rib
            .loc_rib()
            .map(|e| {
                let multipath = e
                    .multipath
                    .iter()
                    .filter_map(|r| {
                        Some(rib::NextHopEntry {
                            peer: r.peer,
                            next_hop: r.attrs.next_hop()?,
                        })
                    })
                    .collect();
                Change {
                    prefix: e.prefix,
                    best: Some(e.best),
                    multipath,
                }
            })
            .collect()
    }

    pub fn status(&self, i: usize, address: IpAddr, state: State) -> PeerStatus {
        let peer = &self.peers[i];
        let counters = peer.id.and_then(|id| self.rib.peer_counters(id));
        let n = peer.session.as_ref().map(|s| &s.negotiated);
        PeerStatus {
            address,
            state: format!("{state:?}"),
            remote_as: n.map(|n| n.peer_as),
            router_id: n.map(|n| n.peer_id.to_string()),
            received: counters.map_or(0, |c| c.accepted as usize),
            stale: counters.map_or(0, |c| c.stale as usize),
            advertised: peer.session.as_ref().map_or(0, |s| s.adj_out.len()),
            listen_range: None,
        }
    }

    pub fn originated_count(&self) -> usize {
        self.originated.len()
    }

    pub fn loc_rib_count(&self) -> usize {
        self.rib.memory().prefixes
    }
}
