//! The driver's route state: locally originated prefixes and what each peer sent.
//! (The full RIB with best path and policy plugs in here.)

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::iana::Origin;
use crate::session::State;
use crate::wire::AsPath;
use crate::wire::{
    Negotiated, NextHop, PathAttributes, PeerKind, Prefix, UpdateOutcome, UpdatePacker,
};

/// One peer, for status output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerStatus {
    pub address: IpAddr,
    pub state: String,
    pub remote_as: Option<u32>,
    pub router_id: Option<String>,
    pub received: usize,
}

/// The whole speaker, for status output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeakerStatus {
    pub peers: Vec<PeerStatus>,
    pub originated: usize,
}

#[derive(Debug, Default)]
pub(super) struct Routes {
    originated: BTreeSet<Prefix>,
    /// Local changes not yet sent: true = announce, false = withdraw.
    pending: HashMap<Prefix, bool>,
    received: HashMap<usize, BTreeSet<Prefix>>,
}

/// Attributes of our own routes as sent on a session: eBGP peers get our AS prepended,
/// iBGP peers an empty AS_PATH and LOCAL_PREF (RFC 4271 section 5.1.2 and 5.1.5).
fn local_attrs(n: &Negotiated, local_as: u32) -> PathAttributes {
    let external = n.peer_kind == PeerKind::External;
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(if external {
            AsPath::sequence([local_as])
        } else {
            AsPath::empty()
        }),
        local_pref: (!external).then_some(100),
        ..PathAttributes::default()
    }
}

/// Our next hop on a session whose local end is `local`.
fn next_hop(local: Option<SocketAddr>) -> Option<NextHop> {
    Some(match local?.ip() {
        IpAddr::V4(v4) => NextHop::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => NextHop::V4(v4),
            None if v6.is_unicast_link_local() => NextHop::V6 {
                global: v6,
                link_local: None,
            },
            None => NextHop::V6 {
                global: v6,
                link_local: None,
            },
        },
    })
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn originate(&mut self, prefixes: &[Prefix]) {
        for p in prefixes {
            if self.originated.insert(*p) {
                self.pending.insert(*p, true);
            }
        }
    }

    pub fn withdraw_local(&mut self, prefixes: &[Prefix]) {
        for p in prefixes {
            if self.originated.remove(p) {
                self.pending.insert(*p, false);
            }
        }
    }

    pub fn originated_count(&self) -> usize {
        self.originated.len()
    }

    /// The messages a freshly Established peer gets: our routes, then End-of-RIB per family.
    pub fn established(
        &mut self,
        n: Option<&Negotiated>,
        local: Option<SocketAddr>,
        local_as: u32,
    ) -> Vec<Bytes> {
        let Some(n) = n else { return Vec::new() };
        let mut packer = UpdatePacker::new(n.decode_context());
        let prefixes: Vec<Prefix> = self.originated.iter().copied().collect();
        self.announce(&mut packer, &prefixes, local, local_attrs(n, local_as));
        for family in &n.families {
            if let Err(err) = packer.end_of_rib(*family) {
                tracing::warn!(%err, "cannot send End-of-RIB");
            }
        }
        packer.finish()
    }

    /// Everything we announce, for a ROUTE-REFRESH.
    pub fn full_table(
        &mut self,
        n: Option<&Negotiated>,
        local: Option<SocketAddr>,
        local_as: u32,
    ) -> Vec<Bytes> {
        let Some(n) = n else { return Vec::new() };
        let mut packer = UpdatePacker::new(n.decode_context());
        let prefixes: Vec<Prefix> = self.originated.iter().copied().collect();
        self.announce(&mut packer, &prefixes, local, local_attrs(n, local_as));
        packer.finish()
    }

    /// Local changes since the last [`Routes::local_sent`], encoded for one peer.
    pub fn pending_local(
        &self,
        n: Option<&Negotiated>,
        local: Option<SocketAddr>,
        local_as: u32,
    ) -> Vec<Bytes> {
        let Some(n) = n else { return Vec::new() };
        let mut packer = UpdatePacker::new(n.decode_context());
        let (add, del): (Vec<_>, Vec<_>) = self.pending.iter().partition(|(_, a)| **a);
        let add: Vec<Prefix> = add.into_iter().map(|(p, _)| *p).collect();
        let del: Vec<Prefix> = del.into_iter().map(|(p, _)| *p).collect();
        if let Err(err) = packer.withdraw(&del) {
            tracing::warn!(%err, "cannot encode withdrawals");
        }
        self.announce(&mut packer, &add, local, local_attrs(n, local_as));
        packer.finish()
    }

    pub fn local_sent(&mut self) {
        self.pending.clear();
    }

    fn announce(
        &self,
        packer: &mut UpdatePacker,
        prefixes: &[Prefix],
        local: Option<SocketAddr>,
        attrs: PathAttributes,
    ) {
        let Some(nh) = next_hop(local) else { return };
        // Prefixes of a family the session cannot carry with this next hop are skipped.
        for family_prefixes in [
            prefixes
                .iter()
                .filter(|p| matches!(p, Prefix::V4(_)))
                .copied()
                .collect::<Vec<_>>(),
            prefixes
                .iter()
                .filter(|p| matches!(p, Prefix::V6(_)))
                .copied()
                .collect(),
        ] {
            if family_prefixes.is_empty() {
                continue;
            }
            if let Err(err) = packer.announce(&attrs, nh, &family_prefixes) {
                tracing::debug!(%err, "not announcing on this session");
            }
        }
    }

    pub fn update(&mut self, peer: usize, outcome: UpdateOutcome) {
        let (update, announce) = match &outcome {
            UpdateOutcome::Ok(u) => (u, true),
            UpdateOutcome::AttributeDiscard { update, .. } => (update, true),
            UpdateOutcome::TreatAsWithdraw {
                withdrawals,
                reason,
                ..
            } => {
                tracing::warn!(%reason, "treat-as-withdraw");
                (withdrawals, false)
            }
            UpdateOutcome::SessionReset(_) => return,
        };
        let rib = self.received.entry(peer).or_default();
        for p in update.withdrawn.iter() {
            rib.remove(&p);
        }
        if let Some(mp) = &update.mp_unreach {
            for p in mp.withdrawn.iter() {
                rib.remove(&p);
            }
        }
        if announce {
            rib.extend(update.nlri.iter());
            if let Some(mp) = &update.mp_reach {
                rib.extend(mp.nlri.iter());
            }
        }
    }

    pub fn peer_down(&mut self, peer: usize) {
        self.received.remove(&peer);
    }

    pub fn peer_status(
        &self,
        peer: usize,
        address: IpAddr,
        state: State,
        n: Option<&Negotiated>,
    ) -> PeerStatus {
        PeerStatus {
            address,
            state: format!("{state:?}"),
            remote_as: n.map(|n| n.peer_as),
            router_id: n.map(|n| n.peer_id.to_string()),
            received: self.received.get(&peer).map_or(0, BTreeSet::len),
        }
    }
}
