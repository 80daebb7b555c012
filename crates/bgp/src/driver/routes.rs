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
use crate::rib::hash::{Seeded, ShardedMap};
use crate::rib::{self, Change, PeerId, PeerInfo, PrefixCount, Rib, RibConfig, Route};

use super::Multipath;
use crate::session::State;
use crate::wire::attr::as4;
use crate::wire::{
    AsPath, Community, DecodeContext, Negotiated, NextHop, Notification, NotificationCode,
    PathAttributes, PeerKind, Prefix, Prefix4, Prefix6, UpdateOutcome, UpdatePacker,
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
    /// The peer's BFD session, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<super::BfdPeerStatus>,
    /// The interface of an unnumbered neighbour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The RIB's id for this peer's routes while it has any: the `peer` of the
    /// [`crate::rib::NextHopEntry`]s in Loc-RIB changes, so a FIB can tell which neighbour, and
    /// so which interface, a next hop belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rib_id: Option<u32>,
}

/// The whole speaker, for status output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeakerStatus {
    pub peers: Vec<PeerStatus>,
    pub originated: usize,
    /// Prefixes with a best path.
    pub loc_rib: usize,
    /// Groups of Established peers that share one export evaluation per route.
    pub update_groups: usize,
    /// The kernel FIB that `clos bgp run` programs (its `fib` section); absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fib: Option<FibStatus>,
}

/// The kernel FIB fed from the Loc-RIB, for `clos bgp status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FibStatus {
    /// The routing table.
    pub table: u32,
    /// Routes of ours (protocol 198) in the kernel.
    pub routes_installed: usize,
    /// Prefixes of the Loc-RIB with next hops to install (the speaker's own are not).
    pub bgp_routes: usize,
    /// Whether the first reconcile after start has run (before it, routes of an earlier run
    /// are kept).
    pub reconciled: bool,
    /// Whether routes forward through nexthop objects (else multipath routes).
    pub nexthop_objects: bool,
    /// The last error writing the FIB, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One route, for `clos bgp routes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouteEntry {
    pub prefix: String,
    /// Next hops: the multipath set for the Loc-RIB, the route's own for a peer's routes.
    pub next_hops: Vec<String>,
    pub as_path: String,
    pub local_pref: u32,
    pub med: Option<u32>,
    /// The peer it came from; `local` for our own routes.
    pub from: String,
    /// Kept as stale while its peer restarts.
    pub stale: bool,
}

/// How the route state treats one peer (from its configuration).
#[derive(Debug, Clone, Default)]
pub struct PeerPolicy {
    pub import: Option<Arc<Policy>>,
    pub export: Option<Arc<Policy>>,
    /// Reset the session with Cease/Maximum Number of Prefixes Reached beyond this many
    /// prefixes (counted as `max_prefixes_count` says), and stay down for
    /// `max_prefix_restart`.
    pub max_prefixes: Option<u32>,
    pub max_prefixes_count: PrefixCount,
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
            max_prefixes_count: PrefixCount::Accepted,
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

/// UPDATEs for one peer, gathered before encoding so that prefixes sharing an attribute set
/// share messages (thousands per UPDATE instead of one).
#[derive(Debug)]
struct Outbox {
    /// Keyed by the address of the exported set: an [`ExportCache`] hands out one `Arc` per
    /// distinct set, so this groups by value without hashing the attributes per prefix.
    announce: HashMap<usize, (Arc<PathAttributes>, Vec<Prefix>), Seeded>,
    withdraw: Vec<Prefix>,
}

impl Outbox {
    fn new(hasher: Seeded) -> Self {
        Outbox {
            announce: HashMap::with_hasher(hasher),
            withdraw: Vec::new(),
        }
    }

    /// Adds `prefix` for peer `i`: announced with `export` unless split horizon forbids it, or
    /// withdrawn if `i` had it before (`before`: the group's previous entry).
    fn add(
        &mut self,
        i: usize,
        prefix: Prefix,
        export: Option<&Exported>,
        before: Option<Option<usize>>,
    ) {
        match export.filter(|e| e.from != Some(i)) {
            Some(e) => self
                .announce
                .entry(Arc::as_ptr(&e.attrs) as usize)
                .or_insert_with(|| (e.attrs.clone(), Vec::new()))
                .1
                .push(prefix),
            None if before.is_some_and(|from| from != Some(i)) => self.withdraw.push(prefix),
            None => {}
        }
    }

    /// Encodes everything; returns the messages and the prefixes the session cannot carry.
    fn pack(self, ctx: DecodeContext, next_hop: Option<NextHop>) -> (Vec<Bytes>, Vec<Prefix>) {
        let mut packer = UpdatePacker::new(ctx);
        let failed = self.pack_into(&mut packer, next_hop);
        (packer.finish(), failed)
    }

    fn pack_into(self, packer: &mut UpdatePacker, next_hop: Option<NextHop>) -> Vec<Prefix> {
        let mut failed = Vec::new();
        if !self.withdraw.is_empty()
            && let Err(err) = packer.withdraw(&self.withdraw)
        {
            tracing::debug!(%err, "cannot encode withdrawals");
        }
        for (attrs, prefixes) in self.announce.into_values() {
            let Some(next_hop) = next_hop else {
                // No address of ours on the session: nothing can be announced.
                failed.extend(prefixes);
                continue;
            };
            if packer.announce(&attrs, next_hop, &prefixes).is_ok() {
                continue;
            }
            // Some prefixes are of a family the session cannot carry (an IPv6 route to an
            // IPv4-only peer): announce the others one family at a time.
            for family in [true, false] {
                let part: Vec<Prefix> = prefixes
                    .iter()
                    .copied()
                    .filter(|p| matches!(p, Prefix::V4(_)) == family)
                    .collect();
                if !part.is_empty()
                    && let Err(err) = packer.announce(&attrs, next_hop, &part)
                {
                    tracing::debug!(%err, "not advertised on this session");
                    failed.extend(part);
                }
            }
        }
        failed
    }
}

/// A route as exported to an update group.
#[derive(Debug, Clone)]
struct Exported {
    attrs: Arc<PathAttributes>,
    /// The peer it was learned from (split horizon), `None` for our own routes.
    from: Option<usize>,
}

/// What peers must share to share one export evaluation.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct GroupKey {
    /// The export policy's identity (0: none configured).
    policy: usize,
    kind: PeerKind,
    ctx: DecodeContext,
    /// Only when the policy matches on the peer AS.
    peer_as: Option<u32>,
}

#[derive(Debug, Clone)]
struct Session {
    negotiated: Negotiated,
    local: Option<SocketAddr>,
    /// The update group the session belongs to.
    group: GroupKey,
}

/// An update group: its members and the Adj-RIB-Out they share. A member was sent a prefix
/// iff the prefix is in `sent` and did not come from that member (split horizon).
#[derive(Debug, Default)]
struct OutGroup {
    members: Vec<usize>,
    sent: AdjRibOut,
}

/// Prefix -> the peer the route was learned from (`None`: our own route). One map per family
/// with a 4-octet, unaligned source: a full table costs 9 or 21 octets per entry instead of 40.
/// Sharded like the RIB's tables, so that growing never needs half the map again at once.
#[derive(Debug)]
struct AdjRibOut {
    v4: ShardedMap<Prefix4, Source>,
    v6: ShardedMap<Prefix6, Source>,
}

impl Default for AdjRibOut {
    fn default() -> Self {
        let hasher = Seeded::random();
        AdjRibOut {
            v4: ShardedMap::new(hasher),
            v6: ShardedMap::new(hasher),
        }
    }
}

/// `Option<usize>` (the peer index) in four octets with alignment 1: 0 for our own routes,
/// else the index plus one.
#[derive(Debug, Clone, Copy, Default)]
struct Source([u8; 4]);

impl Source {
    fn new(from: Option<usize>) -> Self {
        let n = from.map_or(0, |i| u32::try_from(i + 1).unwrap_or(u32::MAX));
        Source(n.to_le_bytes())
    }

    fn get(self) -> Option<usize> {
        let n = u32::from_le_bytes(self.0);
        (n != 0).then(|| n as usize - 1)
    }
}

impl AdjRibOut {
    /// Records `prefix` as sent; returns the previous entry.
    fn insert(&mut self, prefix: Prefix, from: Option<usize>) -> Option<Option<usize>> {
        let from = Source::new(from);
        match prefix {
            Prefix::V4(p) => self.v4.insert(p, from),
            Prefix::V6(p) => self.v6.insert(p, from),
        }
        .map(Source::get)
    }

    fn remove(&mut self, prefix: &Prefix) -> Option<Option<usize>> {
        match prefix {
            Prefix::V4(p) => self.v4.remove(p),
            Prefix::V6(p) => self.v6.remove(p),
        }
        .map(Source::get)
    }

    /// Prefixes member `i` was sent: those not learned from it.
    fn sent_to(&self, i: usize) -> usize {
        let not_from = |s: &Source| s.get() != Some(i);
        self.v4.values().filter(|s| not_from(s)).count()
            + self.v6.values().filter(|s| not_from(s)).count()
    }
}

/// The exports of one update group during one flush or table dump. When the export policy
/// gives every route the same verdict and changes, a route's export depends only on its
/// attribute set and source, so it is computed once per such pair rather than once per
/// prefix. Either way equal exported sets share one `Arc`, which the outboxes key by.
struct ExportCache {
    /// (address of the route's attribute set, its peer) -> its export.
    routes: Option<HashMap<(usize, PeerId), Option<Exported>, Seeded>>,
    sets: HashSet<Arc<PathAttributes>, Seeded>,
}

impl ExportCache {
    fn new(per_attribute_set: bool, hasher: Seeded) -> Self {
        ExportCache {
            routes: per_attribute_set.then(|| HashMap::with_hasher(hasher)),
            sets: HashSet::with_hasher(hasher),
        }
    }

    fn intern(&mut self, attrs: Arc<PathAttributes>) -> Arc<PathAttributes> {
        match self.sets.get(&attrs) {
            Some(known) => known.clone(),
            None => {
                self.sets.insert(attrs.clone());
                attrs
            }
        }
    }
}

/// Route state of a speaker. See the module docs.
#[derive(Debug)]
pub(super) struct Routes {
    rib: Rib,
    local_as: u32,
    peers: Vec<PeerRoutes>,
    by_id: HashMap<PeerId, usize, Seeded>,
    originated: HashSet<Prefix>,
    /// Slots of removed peers, for [`Routes::add_peer`] to reuse.
    free: Vec<usize>,
    /// Update groups of the Established peers.
    groups: HashMap<GroupKey, OutGroup>,
    hasher: Seeded,
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
        // A policy without terms needs no copy of the attributes (the hot path of a full
        // table from a ToR with `default: accept`).
        match self.policy.constant_verdict() {
            Some(Verdict::Reject) => return rib::Verdict::Reject,
            Some(Verdict::Accept) if !attrs.communities.contains(&Community::GRACEFUL_SHUTDOWN) => {
                return rib::Verdict::Accept;
            }
            _ => {}
        }
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
    /// With the default multipath settings.
    #[cfg(test)]
    pub fn new(local_as: u32, policies: Vec<PeerPolicy>) -> Self {
        Self::with_multipath(local_as, policies, Multipath::default())
    }

    pub fn with_multipath(local_as: u32, policies: Vec<PeerPolicy>, multipath: Multipath) -> Self {
        let hasher = Seeded::random();
        let config = RibConfig {
            max_paths: multipath.max_paths,
            multipath_relax: multipath.relax,
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
            by_id: HashMap::with_hasher(hasher),
            originated: HashSet::new(),
            free: Vec::new(),
            groups: HashMap::new(),
            hasher,
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
        let session = peer.session.take();
        *peer = PeerRoutes::default();
        self.free.push(i);
        if let Some(s) = session {
            self.leave_group(i, &s.group);
        }
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
        info.max_prefixes_count = self.peers[i].policy.max_prefixes_count;
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
        let group = self.group_key(i, n);
        self.groups
            .entry(group.clone())
            .or_default()
            .members
            .push(i);
        self.peers[i].session = Some(Session {
            negotiated: n.clone(),
            local,
            group,
        });
        // Every member records what it was sent into the group's Adj-RIB-Out: entries a sole
        // member never needed (routes it sent itself) are filled in when another one joins.
        let mut packer = self.send_table(i);
        for family in &n.families {
            if let Err(err) = packer.end_of_rib(*family) {
                tracing::warn!(%err, "cannot encode End-of-RIB");
            }
        }
        packer.finish()
    }

    /// Everything we advertise to peer `i` again, for its ROUTE-REFRESH.
    pub fn refresh(&mut self, i: usize) -> Vec<Bytes> {
        if self.peers[i].session.is_none() {
            return Vec::new();
        }
        self.send_table(i).finish()
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
            count = exceeded.count,
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
        let session = self.peers[i].session.take();
        if let Some(s) = &session {
            self.leave_group(i, &s.group);
        }
        let peer = &mut self.peers[i];
        let restart_time = session
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
    /// peer and the changes for the FIB. Export policy and transformations run once per
    /// update group and route, not once per peer.
    pub fn flush(&mut self) -> (Vec<(usize, Vec<Bytes>)>, Vec<Change>) {
        if !self.rib.has_pending_changes() {
            return (Vec::new(), Vec::new());
        }
        let changes = self.rib.drain_changes();
        let mut out = Vec::new();
        let keys: Vec<GroupKey> = self.groups.keys().cloned().collect();
        for key in keys {
            // Out of the map while its routes are exported: one lookup per group, not per route.
            let Some(mut group) = self.groups.remove(&key) else {
                continue;
            };
            let members = group.members.clone();
            let Some(&leader) = members.first() else {
                continue;
            };
            let mut outboxes: Vec<Outbox> =
                members.iter().map(|_| Outbox::new(self.hasher)).collect();
            let sole = (members.len() == 1).then_some(leader);
            let mut cache = self.export_cache(leader);
            for c in &changes {
                // A group whose only member sent the route gets nothing (split horizon): skip
                // the export work, the common case of a host learning its ToRs' tables.
                let from_sole = c
                    .best
                    .as_ref()
                    .is_some_and(|b| sole.is_some() && self.source(b) == sole);
                let export = c
                    .best
                    .as_ref()
                    .filter(|_| !from_sole)
                    .and_then(|b| self.export_cached(leader, c.prefix, b, &mut cache));
                let before = match &export {
                    Some(e) => group.sent.insert(c.prefix, e.from),
                    None => group.sent.remove(&c.prefix),
                };
                for (&m, outbox) in members.iter().zip(&mut outboxes) {
                    outbox.add(m, c.prefix, export.as_ref(), before);
                }
            }
            for (&m, outbox) in members.iter().zip(outboxes) {
                let Some(s) = self.peers[m].session.as_ref() else {
                    continue;
                };
                let next_hop = s.local.map(|a| to_next_hop(a.ip()));
                let (messages, failed) = outbox.pack(key.ctx, next_hop);
                for p in failed {
                    group.sent.remove(&p);
                }
                if !messages.is_empty() {
                    out.push((m, messages));
                }
            }
            self.groups.insert(key, group);
        }
        (out, changes)
    }

    /// The update group of peer `i`: same export policy instance, kind, encoding and, if the
    /// policy looks at it, peer AS. The next hop (our address on each session) is filled in
    /// per peer, as FRR's update groups do.
    fn group_key(&self, i: usize, n: &Negotiated) -> GroupKey {
        let export = self.peers[i].policy.export.as_ref();
        GroupKey {
            policy: export.map_or(0, |p| Arc::as_ptr(p) as usize),
            kind: n.peer_kind,
            ctx: n.decode_context(),
            peer_as: export.filter(|p| p.depends_on_peer()).map(|_| n.peer_as),
        }
    }

    fn leave_group(&mut self, i: usize, key: &GroupKey) {
        if let Some(g) = self.groups.get_mut(key) {
            g.members.retain(|&m| m != i);
            if g.members.is_empty() {
                self.groups.remove(key);
            }
        }
    }

    /// Packs every route of the Loc-RIB peer `i` should have and records them in its group's
    /// Adj-RIB-Out (the same entries every member would record). End-of-RIB markers may follow
    /// in the same packer.
    fn send_table(&mut self, i: usize) -> UpdatePacker {
        let Some(s) = self.peers[i].session.as_ref() else {
            return UpdatePacker::new(DecodeContext::default());
        };
        let (key, ctx) = (s.group.clone(), s.negotiated.decode_context());
        let next_hop = s.local.map(|a| to_next_hop(a.ip()));
        let routes: Vec<(Prefix, Route)> = self.rib.loc_rib().map(|e| (e.prefix, e.best)).collect();
        let mut outbox = Outbox::new(self.hasher);
        let mut cache = self.export_cache(i);
        for (prefix, best) in routes {
            let Some(export) = self.export_cached(i, prefix, &best, &mut cache) else {
                continue;
            };
            if let Some(g) = self.groups.get_mut(&key) {
                g.sent.insert(prefix, export.from);
            }
            outbox.add(i, prefix, Some(&export), None);
        }
        let mut packer = UpdatePacker::new(ctx);
        let failed = outbox.pack_into(&mut packer, next_hop);
        if let Some(g) = self.groups.get_mut(&key) {
            for p in failed {
                g.sent.remove(&p);
            }
        }
        packer
    }

    /// A cache for exports to peer `i`'s update group; see [`ExportCache`].
    fn export_cache(&self, i: usize) -> ExportCache {
        let constant = self.peers[i].session.as_ref().is_some_and(|s| {
            defaults::effective(
                self.peers[i].policy.export.as_deref(),
                s.negotiated.peer_kind,
            )
            .constant_verdict()
            .is_some()
        });
        ExportCache::new(constant, self.hasher)
    }

    /// [`Routes::export_attrs`] through `cache`.
    fn export_cached(
        &self,
        i: usize,
        prefix: Prefix,
        best: &Route,
        cache: &mut ExportCache,
    ) -> Option<Exported> {
        let key = (Arc::as_ptr(&best.attrs) as usize, best.peer);
        if let Some(hit) = cache.routes.as_ref().and_then(|r| r.get(&key)) {
            return hit.clone();
        }
        let export = self.export_attrs(i, prefix, best).map(|e| Exported {
            attrs: cache.intern(e.attrs),
            from: e.from,
        });
        if let Some(routes) = &mut cache.routes {
            routes.insert(key, export.clone());
        }
        export
    }

    /// The peer `route` was learned from; `None` for our own routes.
    fn source(&self, route: &Route) -> Option<usize> {
        (route.peer != rib::PeerId::LOCAL)
            .then(|| self.by_id.get(&route.peer).copied())
            .flatten()
    }

    /// The attributes of `best` as exported to peer `i` and to every peer of its update group
    /// (the next hop is set per peer when packing), or `None` if it must not be.
    fn export_attrs(&self, i: usize, prefix: Prefix, best: &Route) -> Option<Exported> {
        let s = self.peers[i].session.as_ref()?;
        let kind = s.negotiated.peer_kind;
        let from = self.source(best);
        // iBGP routes not to other iBGP peers (no route reflection).
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
        // The transforms also write our address on `i`'s session as next hop; `send_one` puts
        // each peer's own address in its UPDATEs instead.
        match kind {
            PeerKind::External => {
                transform::ebgp_export(
                    &mut attrs,
                    &EbgpExport {
                        local_as: self.local_as,
                        local_address,
                        send_med: false,
                        med_is_ours: decision.sets_med || best.peer == rib::PeerId::LOCAL,
                    },
                );
            }
            PeerKind::Internal => {
                transform::ibgp_export(&mut attrs, Some(local_address));
            }
        }
        if !s.negotiated.four_octet_as {
            as4::split_for_two_octet_peer(&mut attrs);
        }
        Some(Exported {
            attrs: Arc::new(attrs),
            from,
        })
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
            advertised: peer
                .session
                .as_ref()
                .and_then(|s| self.groups.get(&s.group))
                .map_or(0, |g| g.sent.sent_to(i)),
            listen_range: None,
            bfd: None,
            interface: None,
            rib_id: peer.id.map(|id| id.0),
        }
    }

    /// The Loc-RIB (best paths with their multipath next hops), or with `peer`, the routes
    /// received from peer `i` after import policy.
    pub fn list(&self, peer: Option<usize>, addresses: &[IpAddr]) -> Vec<RouteEntry> {
        let from = |r: &Route| match self.by_id.get(&r.peer) {
            _ if r.peer == rib::PeerId::LOCAL => "local".to_owned(),
            Some(&i) => addresses
                .get(i)
                .map_or_else(|| "?".into(), IpAddr::to_string),
            None => "?".to_owned(),
        };
        let entry = |prefix: Prefix, r: &Route, next_hops: Vec<String>| {
            let a = r.attrs.attrs();
            RouteEntry {
                prefix: prefix.to_string(),
                next_hops,
                as_path: a
                    .as_path
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                local_pref: r.attrs.local_pref(),
                med: a.med,
                from: from(r),
                stale: r.stale,
            }
        };
        let hop = |r: &Route| r.attrs.next_hop().map(|nh| nh.to_string());
        let mut out: Vec<RouteEntry> = match peer {
            None => self
                .rib
                .loc_rib()
                .map(|e| {
                    let hops = e.multipath.iter().filter_map(hop).collect();
                    entry(e.prefix, &e.best, hops)
                })
                .collect(),
            Some(i) => match self.peers.get(i).and_then(|p| p.id) {
                Some(id) => self
                    .rib
                    .adj_rib_in(id)
                    .map(|(prefix, r)| entry(prefix, &r, hop(&r).into_iter().collect()))
                    .collect(),
                None => Vec::new(),
            },
        };
        out.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        out
    }

    pub fn originated_count(&self) -> usize {
        self.originated.len()
    }

    /// How many update groups the Established peers form.
    pub fn update_group_count(&self) -> usize {
        self.groups.len()
    }

    pub fn loc_rib_count(&self) -> usize {
        self.rib.memory().prefixes
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::session::{RemoteAs, SessionConfig};
    use crate::wire::{Prefix4, Received, decode_message};

    fn negotiated(peer_as: u32) -> Negotiated {
        let id = |n| Ipv4Addr::new(10, 255, 0, n);
        let ours = SessionConfig::new(65001, id(1), RemoteAs::External).open();
        let theirs = SessionConfig::new(peer_as, id(2), RemoteAs::External).open();
        Negotiated::new(&ours, &theirs)
    }

    /// The prefixes and next hops announced in `messages`.
    fn announced(n: &Negotiated, messages: &[Bytes]) -> Vec<(Prefix, Option<Ipv4Addr>)> {
        let mut out = Vec::new();
        for m in messages {
            let Ok(Received::Update(outcome)) = decode_message(m.clone(), &n.decode_context())
            else {
                continue;
            };
            if let UpdateOutcome::Ok(u) = *outcome {
                out.extend(u.nlri.iter().map(|p| (p, u.attrs.next_hop)));
            }
        }
        out
    }

    #[test]
    fn peers_with_one_export_policy_share_a_group_and_keep_their_next_hop() {
        let shared = PeerPolicy::accept_all();
        let mut routes = Routes::new(
            65001,
            vec![shared.clone(), shared, PeerPolicy::accept_all()],
        );
        let addr = |i: u8| -> SocketAddr { (Ipv4Addr::new(10, 0, i, 1), 179).into() };
        let ns: Vec<Negotiated> = (0..3).map(|i| negotiated(65100 + i)).collect();
        for (i, n) in ns.iter().enumerate() {
            routes.established(i, addr(i as u8).ip(), n, Some(addr(i as u8)));
        }
        // Peers 0 and 1 share the export policy instance; peer 2 has its own.
        assert_eq!(routes.update_group_count(), 2);

        let prefix: Prefix = "192.0.2.0/24".parse().unwrap();
        routes.originate(&[prefix]);
        let (updates, changes) = routes.flush();
        assert_eq!(changes.len(), 1);
        assert_eq!(updates.len(), 3, "every peer gets the route");
        for (i, messages) in &updates {
            let got = announced(&ns[*i], messages);
            let own = Ipv4Addr::new(10, 0, *i as u8, 1);
            assert_eq!(
                got,
                vec![(prefix, Some(own))],
                "peer {i} gets its own next hop"
            );
        }
    }

    #[test]
    fn split_horizon_holds_inside_a_group() {
        let shared = PeerPolicy::accept_all();
        let mut routes = Routes::new(65001, vec![shared.clone(), shared]);
        let ns = [negotiated(65100), negotiated(65101)];
        for (i, n) in ns.iter().enumerate() {
            let a: SocketAddr = (Ipv4Addr::new(10, 0, i as u8, 1), 179).into();
            routes.established(i, a.ip(), n, Some(a));
        }
        // Peer 0 announces a prefix.
        let mut packer = UpdatePacker::new(ns[0].decode_context());
        let attrs = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence([65100])),
            ..PathAttributes::default()
        };
        let prefix: Prefix = "198.51.100.0/24".parse().unwrap();
        packer
            .announce(&attrs, NextHop::V4(Ipv4Addr::new(10, 0, 0, 2)), &[prefix])
            .unwrap();
        for m in packer.finish() {
            let Ok(Received::Update(outcome)) = decode_message(m, &ns[0].decode_context()) else {
                panic!("not an UPDATE");
            };
            routes.update(0, &outcome);
        }
        let (updates, _) = routes.flush();
        let to: Vec<usize> = updates.iter().map(|(i, _)| *i).collect();
        assert_eq!(
            to,
            vec![1],
            "only the other member of the group hears of it"
        );
        let got = announced(&ns[1], &updates[0].1);
        assert_eq!(got, vec![(prefix, Some(Ipv4Addr::new(10, 0, 1, 1)))]);
        // One shared Adj-RIB-Out, read per member.
        assert_eq!(routes.update_group_count(), 1);
        let advertised = |routes: &Routes, i: usize| {
            routes
                .status(i, IpAddr::from([10, 0, i as u8, 2]), State::Established)
                .advertised
        };
        assert_eq!((advertised(&routes, 0), advertised(&routes, 1)), (0, 1));

        // Peer 0 withdraws: only peer 1 hears a withdrawal.
        let mut packer = UpdatePacker::new(ns[0].decode_context());
        packer.withdraw(&[prefix]).unwrap();
        for m in packer.finish() {
            let Ok(Received::Update(outcome)) = decode_message(m, &ns[0].decode_context()) else {
                panic!("not an UPDATE");
            };
            routes.update(0, &outcome);
        }
        let (updates, _) = routes.flush();
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].0, 1);
        let Ok(Received::Update(outcome)) =
            decode_message(updates[0].1[0].clone(), &ns[1].decode_context())
        else {
            panic!("not an UPDATE");
        };
        let UpdateOutcome::Ok(u) = *outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(u.withdrawn.iter().collect::<Vec<_>>(), vec![prefix]);
        assert_eq!((advertised(&routes, 0), advertised(&routes, 1)), (0, 0));
    }

    /// Prefixes sharing attributes share UPDATEs: a table of 1,000 routes is a couple of
    /// messages, not a thousand (found by `clos-bench bgp-ingest`).
    #[test]
    fn the_initial_table_is_packed() {
        let mut routes = Routes::new(65001, vec![PeerPolicy::accept_all()]);
        let prefixes: Vec<Prefix> = (0..1000u32)
            .map(|n| Prefix::V4(Prefix4::new(Ipv4Addr::from(0x0a00_0000 + (n << 8)), 24).unwrap()))
            .collect();
        routes.originate(&prefixes);
        let _ = routes.flush();
        let n = negotiated(65100);
        let local: SocketAddr = (Ipv4Addr::new(10, 255, 0, 1), 179).into();
        let messages = routes.established(0, local.ip(), &n, Some(local));
        let got = announced(&n, &messages);
        assert_eq!(got.len(), 1000);
        // 1,000 prefixes of 4 octets fit in two 4,096-octet UPDATEs, plus End-of-RIB markers.
        assert!(
            messages.len() <= 2 + n.families.len(),
            "{} messages",
            messages.len()
        );
    }
}
