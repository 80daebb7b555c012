//! Best path and multipath selection (RFC 4271 section 9.1.2.2, RFC 7938 multipath).
//!
//! Contract: the result depends only on the set of candidate paths, never on their order.
//! That holds because selection is the RFC's elimination procedure, where each step keeps the
//! candidates that are best on one criterion *among those still left* (so the MED step, which
//! only compares routes from the same neighbouring AS and is not transitive, is applied to a
//! well-defined set), followed by a sort on a key that is unique per path (it ends with the
//! peer id, and a prefix has at most one path per peer).
//!
//! Steps, in order:
//! 1. higher weight (a per-peer import setting, local to this speaker);
//! 2. higher LOCAL_PREF (default 100);
//! 3. locally originated;
//! 4. shorter AS_PATH (an AS_SET counts 1, confederation segments 0);
//! 5. lower ORIGIN (IGP, EGP, INCOMPLETE);
//! 6. lower MED among routes from the same neighbouring AS (all routes with
//!    `always_compare_med`); a missing MED is 0;
//! 7. eBGP over iBGP;
//!
//! the routes left are "equal" and are ordered by
//! 8. lower BGP identifier (ORIGINATOR_ID when present, RFC 4456);
//! 9. shorter CLUSTER_LIST;
//! 10. lower peer address, then lower peer id.
//!
//! The first is the best path. The multipath set is the best path and the other equal routes
//! with the same AS_PATH as the best one (with `multipath_relax`, any AS_PATH of the same
//! length, which step 4 already ensured: RFC 7938 fabrics give each ToR its own AS), in that
//! order, at most `max_paths` of them. This is FRR's behaviour for `maximum-paths` and
//! `bgp bestpath as-path multipath-relax`. There is no IGP cost step: the RIB resolves no
//! next hops (a host's next hops are its directly connected ToRs).

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU16;

use super::peer::{PeerId, Peers};
use super::table::{PathRef, Slot};

/// How best paths and multipath sets are chosen.
///
/// The best path is found by elimination: higher weight, higher LOCAL_PREF (default 100),
/// locally originated, shorter AS_PATH (AS_SET counts 1), lower ORIGIN, lower MED among routes
/// from the same neighbouring AS (or all, with `always_compare_med`; missing counts 0), eBGP
/// over iBGP; then the first by lower router id (ORIGINATOR_ID if present), shorter
/// CLUSTER_LIST, lower peer address. The paths that survive elimination are equal for
/// multipath if their AS_PATH is the best path's (or, with `multipath_relax`, of the same
/// length), up to `max_paths` of them in tie-break order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RibConfig {
    /// Largest multipath set (1 disables multipath).
    pub max_paths: NonZeroU16,
    /// Paths with AS_PATHs of equal length but different content may share the load.
    pub multipath_relax: bool,
    /// Compare MED between routes from different neighbouring ASes too.
    pub always_compare_med: bool,
    /// Weight of locally originated routes.
    pub local_weight: u32,
}

impl Default for RibConfig {
    fn default() -> Self {
        Self {
            max_paths: NonZeroU16::MIN,
            multipath_relax: false,
            always_compare_med: false,
            local_weight: 0,
        }
    }
}

/// One path, reduced to what the decision looks at.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    slot: Slot,
    weight: u32,
    local_pref: u32,
    local: bool,
    as_path_len: u32,
    origin: u8,
    med: u32,
    neighbor_as: Option<u32>,
    ebgp: bool,
    router_id: Ipv4Addr,
    cluster_len: u32,
    address: IpAddr,
    peer: PeerId,
    /// Scratch for the MED step.
    beaten: bool,
}

/// Runs the selection with a reusable scratch buffer.
#[derive(Debug, Default)]
pub(crate) struct Selector {
    pub config: RibConfig,
    scratch: Vec<Candidate>,
}

fn keep_max<T: Ord>(v: &mut Vec<Candidate>, f: impl Fn(&Candidate) -> T) {
    if let Some(m) = v.iter().map(&f).max() {
        v.retain(|c| f(c) == m);
    }
}

fn keep_min<T: Ord>(v: &mut Vec<Candidate>, f: impl Fn(&Candidate) -> T) {
    if let Some(m) = v.iter().map(&f).min() {
        v.retain(|c| f(c) == m);
    }
}

impl Selector {
    pub(crate) fn new(config: RibConfig) -> Self {
        Self {
            config,
            scratch: Vec::new(),
        }
    }

    /// Writes the slots of the selection into `out`: the best path first, then the rest of
    /// the multipath set. Paths of unregistered peers are ignored; `out` stays empty when no
    /// path is left.
    pub(crate) fn select<'a>(
        &mut self,
        paths: impl Iterator<Item = (Slot, PathRef<'a>)>,
        path_at: impl Fn(Slot) -> Option<PathRef<'a>>,
        peers: &Peers,
        out: &mut Vec<Slot>,
    ) {
        let cfg = self.config;
        let v = &mut self.scratch;
        v.clear();
        for (slot, p) in paths {
            let s = &p.attrs.sel;
            let (weight, local, ebgp, router_id, address) = if p.peer.is_local() {
                let unspecified = IpAddr::from([0u8; 4]);
                (
                    cfg.local_weight,
                    true,
                    false,
                    Ipv4Addr::UNSPECIFIED,
                    unspecified,
                )
            } else {
                let Some(info) = peers.info(p.peer) else {
                    continue;
                };
                (
                    info.weight,
                    false,
                    info.is_external(),
                    info.router_id,
                    info.address,
                )
            };
            v.push(Candidate {
                slot,
                weight,
                local_pref: s.local_pref,
                local,
                as_path_len: s.as_path_len,
                origin: s.origin,
                med: s.med,
                neighbor_as: s.neighbor_as,
                ebgp,
                router_id: s.originator_id.unwrap_or(router_id),
                cluster_len: s.cluster_len,
                address,
                peer: p.peer,
                beaten: false,
            });
        }
        if v.len() > 1 {
            keep_max(v, |c| c.weight);
            keep_max(v, |c| c.local_pref);
            keep_max(v, |c| c.local);
            keep_min(v, |c| c.as_path_len);
            keep_min(v, |c| c.origin);
            if cfg.always_compare_med {
                keep_min(v, |c| c.med);
            } else {
                for i in 0..v.len() {
                    let Some(&c) = v.get(i) else { break };
                    let beaten = v
                        .iter()
                        .any(|d| d.neighbor_as == c.neighbor_as && d.med < c.med);
                    if let Some(c) = v.get_mut(i) {
                        c.beaten = beaten;
                    }
                }
                v.retain(|c| !c.beaten);
            }
            keep_max(v, |c| c.ebgp);
            v.sort_unstable_by_key(|c| (c.router_id, c.cluster_len, c.address, c.peer));
        }
        let Some(best) = v.first().and_then(|b| path_at(b.slot)) else {
            return;
        };
        let max = usize::from(cfg.max_paths.get());
        for c in v.iter() {
            if out.len() >= max {
                break;
            }
            let same_path =
                || path_at(c.slot).is_some_and(|p| p.attrs.as_path() == best.attrs.as_path());
            if out.is_empty() || cfg.multipath_relax || same_path() {
                out.push(c.slot);
            }
        }
    }
}
