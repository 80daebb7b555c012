//! The invariants checker and repair.
//!
//! `check` rebuilds the whole index from the authoritative data ([`Index::build`]), which
//! reports conflicts in the data itself (duplicate addresses, duplicate owners, allocations
//! outside any block, addresses on nodes that are gone, blocks claimed twice), then compares the
//! rebuilt index with the live one to catch drift (bitmaps, free-space sets, per-node block
//! sets, foreign sets, counters, the owner index). It is O(n) and meant for a periodic audit,
//! never for the allocation path.
//!
//! [`Ipam::repair`] lives in `repair.rs`.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::Ipam;
use crate::error::Scope;
use crate::index::node_name;
use crate::record::Change;
use crate::state::Index;

/// A problem found by [`Ipam::check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "issue", rename_all = "snake_case")]
pub enum Issue {
    /// An address is active on a node that is not registered (removed, or never added): a leak.
    AllocationOnUnknownNode {
        ip: IpAddr,
        owner: String,
        node: String,
    },
    /// A block is owned by a node that is not registered.
    BlockOnUnknownNode { block: IpNet, node: String },
    /// One block is claimed twice: two block entries for one prefix, or a node's index lists a
    /// block that another node (or nobody) owns.
    BlockOwnedTwice { block: IpNet, nodes: Vec<String> },
    /// A block that does not belong to any subnet.
    BlockOutsideSubnet { detail: String },
    /// An allocation that does not lie in a valid block.
    AllocationOutsideBlock { owner: String, detail: String },
    /// One address allocated twice.
    DuplicateAddress { ip: IpAddr, owners: Vec<String> },
    /// One owner holds two addresses in one subnet (an owner has at most one).
    DuplicateOwner {
        scope: Scope,
        owner: String,
        ips: Vec<IpAddr>,
    },
    /// An address the subnet reserves (network, broadcast, gateway) is allocated.
    ReservedAddressAllocated { ip: IpAddr, owner: String },
    /// An address record pointed into a block that had no record; the block was recreated
    /// unowned on load.
    MissingBlockRecord { block: IpNet },
    /// A derived index disagrees with the data it is derived from.
    IndexMismatch { index: String, detail: String },
    /// A block's bitmap disagrees with its allocations.
    BitmapMismatch { block: IpNet, detail: String },
}

/// What [`Ipam::repair`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Replaced every derived index with a fresh build.
    Reindexed {
        mismatches: usize,
    },
    DroppedBlock {
        detail: String,
    },
    /// Folded a second entry for the same block into the first.
    MergedBlock {
        block: IpNet,
        kept_node: String,
    },
    /// Dropped an allocation that has no valid address or lost a duplicate-address conflict.
    DroppedAllocation {
        owner: String,
        ip: Option<IpAddr>,
        reason: String,
    },
    /// Released an allocation (held instead if fixed).
    ReleasedAllocation {
        ip: IpAddr,
        owner: String,
        held: bool,
        reason: String,
    },
    DisownedBlock {
        block: IpNet,
        node: String,
    },
    FreedBlock {
        block: IpNet,
    },
    ForgotNode {
        node: String,
    },
    RecordedBlock {
        block: IpNet,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub issues: Vec<Issue>,
}

impl CheckReport {
    pub fn is_healthy(&self) -> bool {
        self.issues.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairReport {
    /// What `check` found before repairing.
    pub found: Vec<Issue>,
    pub actions: Vec<Action>,
    /// What to persist.
    pub changes: Vec<Change>,
    /// What `check` still finds afterwards (needs an operator).
    pub remaining: Vec<Issue>,
}

fn mismatch(index: &str, detail: String) -> Issue {
    Issue::IndexMismatch {
        index: index.to_string(),
        detail,
    }
}

/// Element `i` of a parallel index vector, or the default for ids past its end.
fn nth<T: Default + Clone>(v: &[T], i: usize) -> T {
    v.get(i).cloned().unwrap_or_default()
}

impl Ipam {
    /// Audits the whole state. O(n); see the module docs.
    pub fn check(&self) -> CheckReport {
        let (fresh, mut issues) = Index::build(&self.data, self.ix.owners.empty_like());
        issues.extend(self.load_issues.iter().cloned());
        self.compare(&fresh, &mut issues);
        CheckReport { issues }
    }

    fn compare(&self, fresh: &Index, issues: &mut Vec<Issue>) {
        let live = &self.ix;
        let data = &self.data;
        if live.pool_by_name != fresh.pool_by_name || live.pool_ranges != fresh.pool_ranges {
            issues.push(mismatch("pools", "pool name or range map differs".into()));
        }
        if live.subnet_by_name != fresh.subnet_by_name || live.subnet_ranges != fresh.subnet_ranges
        {
            issues.push(mismatch(
                "subnets",
                "subnet name or range map differs".into(),
            ));
        }
        if live.node_by_name != fresh.node_by_name {
            issues.push(mismatch("nodes", "node name map differs".into()));
        }
        let subnet_name = |id: usize| {
            data.subnets
                .get(id as u32)
                .map_or(format!("#{id}"), |s| s.name.to_string())
        };
        for i in 0..live.pools.len().max(fresh.pools.len()) {
            if nth(&live.pools, i) != nth(&fresh.pools, i) {
                let name = data
                    .pools
                    .get(i as u32)
                    .map_or(format!("#{i}"), |p| p.name.to_string());
                issues.push(mismatch("pool free space", format!("pool {name}")));
            }
        }
        for i in 0..live.subnets.len().max(fresh.subnets.len()) {
            let (l, f) = (nth(&live.subnets, i), nth(&fresh.subnets, i));
            let name = subnet_name(i);
            if l.blocks != f.blocks {
                issues.push(mismatch("subnet blocks", format!("subnet {name}")));
            }
            if l.free_blocks != f.free_blocks {
                issues.push(mismatch("subnet free blocks", format!("subnet {name}")));
            }
            if l.with_space != f.with_space {
                issues.push(mismatch(
                    "subnet blocks with space",
                    format!("subnet {name}"),
                ));
            }
            if (l.allocs, l.held) != (f.allocs, f.held) {
                issues.push(mismatch(
                    "subnet counters",
                    format!(
                        "subnet {name}: {}/{} allocated/held, data says {}/{}",
                        l.allocs, l.held, f.allocs, f.held
                    ),
                ));
            }
        }
        for i in 0..live.nodes.len().max(fresh.nodes.len()) {
            let (l, f) = (nth(&live.nodes, i), nth(&fresh.nodes, i));
            let name = node_name(data, Some(i as u32));
            // A block in this node's index that the data says someone else owns.
            for ns in l.subnets.values() {
                for &(_, bid) in &ns.blocks {
                    if let Some(b) = data.blocks.get(bid).filter(|b| b.owner != Some(i as u32)) {
                        let block = data.subnets.get(b.subnet).map_or_else(
                            || IpNet::from(IpAddr::from([0, 0, 0, 0])),
                            |s| s.block_net(b.num),
                        );
                        issues.push(Issue::BlockOwnedTwice {
                            block,
                            nodes: vec![node_name(data, b.owner), name.clone()],
                        });
                    }
                }
            }
            if l.subnets != f.subnets {
                issues.push(mismatch("node blocks", format!("node {name}")));
            }
            if l.foreign != f.foreign {
                issues.push(mismatch("node host routes", format!("node {name}")));
            }
            if l.active != f.active {
                issues.push(mismatch(
                    "node counters",
                    format!("node {name}: {} active, data says {}", l.active, f.active),
                ));
            }
        }
        for i in 0..live.blocks.len().max(fresh.blocks.len()) {
            let l = live.blocks.get(i).and_then(Option::as_ref);
            let f = fresh.blocks.get(i).and_then(Option::as_ref);
            let block = data
                .blocks
                .get(i as u32)
                .and_then(|b| Some(data.subnets.get(b.subnet)?.block_net(b.num)));
            match (l, f, block) {
                (None, None, _) => {}
                (Some(l), Some(f), Some(block)) => {
                    if l.used != f.used {
                        let detail = (0..l.used.len())
                            .find(|&o| l.used.get(o) != f.used.get(o))
                            .map_or("counters differ".to_string(), |o| {
                                format!(
                                    "offset {o}: bitmap {}, allocations {}",
                                    l.used.get(o),
                                    f.used.get(o)
                                )
                            });
                        issues.push(Issue::BitmapMismatch { block, detail });
                    }
                    if l.slots != f.slots || l.reserved != f.reserved {
                        issues.push(mismatch("block slots", format!("block {block}")));
                    }
                }
                _ => issues.push(mismatch(
                    "blocks",
                    format!("block id {i} indexed or data missing"),
                )),
            }
        }
        // Owner index: every allocation must be found under its own key, and nothing else.
        let mut owner_mismatches = 0usize;
        for (aid, a) in data.allocs.iter() {
            let want = fresh.owners.get(a.subnet, &a.owner, |id| {
                data.alloc_is(id, a.subnet, &a.owner)
            });
            if want == Some(aid) && self.find_owner(a.subnet, &a.owner) != Some(aid) {
                owner_mismatches += 1;
            }
        }
        let stale = live
            .owners
            .ids()
            .filter(|&id| data.allocs.get(id).is_none())
            .count();
        if owner_mismatches > 0 || stale > 0 || live.owners.len() != fresh.owners.len() {
            issues.push(mismatch(
                "owners",
                format!(
                    "{owner_mismatches} owner(s) not found, {stale} stale; {} entries, data says {}",
                    live.owners.len(),
                    fresh.owners.len()
                ),
            ));
        }
    }
}
