//! Repair: fixes what is safe without asking anyone.
//!
//! It releases leaks (addresses on nodes that are gone; fixed ones are held for their owners),
//! drops the second of two claims on one address (the first, by age, keeps it) and the later
//! address of an owner that holds two, disowns blocks of vanished nodes, frees unowned empty
//! blocks, rewrites missing records, and finally replaces the index with a fresh build. An
//! allocation on a reserved address is reported but left alone: only its owner can move.
//!
//! Repair edits the authoritative data directly and rebuilds the index once at the end, so it
//! never depends on the (possibly broken) index it is fixing.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::Ipam;
use crate::check::{Action, Issue, RepairReport};
use crate::index::node_name;
use crate::record::{Change, RecordKey};
use crate::state::{Data, Index};

impl Ipam {
    /// Fixes what is safe (see the module docs) and returns what it found, did and wrote.
    pub fn repair(&mut self) -> RepairReport {
        let found = self.check().issues;
        let mut actions = Vec::new();
        let mut changes = Vec::new();
        if found.is_empty() {
            return RepairReport::default();
        }
        let mismatches = found
            .iter()
            .filter(|i| {
                matches!(
                    i,
                    Issue::IndexMismatch { .. } | Issue::BitmapMismatch { .. }
                )
            })
            .count();
        repair_blocks(&mut self.data, &mut actions, &mut changes);
        repair_allocs(&mut self.data, &mut actions, &mut changes);
        // Leaks: addresses on nodes that are not registered.
        let orphans: Vec<u32> = self
            .data
            .allocs
            .iter()
            .filter(|(_, a)| {
                a.node
                    .is_some_and(|n| self.data.nodes.get(n).is_none_or(|n| n.ghost))
            })
            .map(|(aid, _)| aid)
            .collect();
        for aid in orphans {
            let ip = data_ip(&self.data, aid);
            let Some(a) = self.data.allocs.get_mut(aid) else {
                continue;
            };
            let (owner, held) = (a.owner.to_string(), a.fixed);
            if held {
                a.node = None;
                a.held = true;
                if let Some(ip) = ip {
                    if let Some(r) = self.record_for(aid) {
                        changes.push(r);
                    }
                    actions.push(Action::ReleasedAllocation {
                        ip,
                        owner,
                        held,
                        reason: "node is not registered".into(),
                    });
                }
            } else {
                self.data.allocs.remove(aid);
                if let Some(ip) = ip {
                    changes.push(Change::Delete {
                        key: RecordKey::Address(ip),
                    });
                    actions.push(Action::ReleasedAllocation {
                        ip,
                        owner,
                        held,
                        reason: "node is not registered".into(),
                    });
                }
            }
        }
        // Blocks of nodes that are not registered become unowned.
        let stray: Vec<u32> = self
            .data
            .blocks
            .iter()
            .filter(|(_, b)| {
                b.owner
                    .is_some_and(|n| self.data.nodes.get(n).is_none_or(|n| n.ghost))
            })
            .map(|(bid, _)| bid)
            .collect();
        for bid in stray {
            let node = node_name(&self.data, self.data.blocks.get(bid).and_then(|b| b.owner));
            if let Some(b) = self.data.blocks.get_mut(bid) {
                b.owner = None;
            }
            if let Ok(block) = self.block_net(bid) {
                actions.push(Action::DisownedBlock { block, node });
            }
            if let Ok(c) = self.put_block(bid) {
                changes.push(c);
            }
        }
        // Unowned blocks are freed as soon as they are empty.
        let mut in_use: HashMap<u32, u32> = HashMap::new();
        for (_, a) in self.data.allocs.iter() {
            *in_use.entry(a.block).or_default() += 1;
        }
        let empty: Vec<u32> = self
            .data
            .blocks
            .iter()
            .filter(|(bid, b)| b.owner.is_none() && !in_use.contains_key(bid))
            .map(|(bid, _)| bid)
            .collect();
        for bid in empty {
            if let Ok(block) = self.block_net(bid) {
                changes.push(Change::Delete {
                    key: RecordKey::Block(block),
                });
                actions.push(Action::FreedBlock { block });
            }
            self.data.blocks.remove(bid);
        }
        // Ghost nodes no longer referenced by anything.
        let ghosts: Vec<u32> = self
            .data
            .nodes
            .iter()
            .filter(|(_, n)| n.ghost)
            .map(|(id, _)| id)
            .collect();
        for id in ghosts {
            if let Some(n) = self.data.nodes.remove(id) {
                actions.push(Action::ForgotNode {
                    node: n.name.to_string(),
                });
            }
        }
        // Blocks recreated on load get their record.
        for issue in std::mem::take(&mut self.load_issues) {
            if let Issue::MissingBlockRecord { block } = issue {
                let bid = self
                    .data
                    .blocks
                    .iter()
                    .find(|(bid, _)| self.block_net(*bid).ok() == Some(block))
                    .map(|(bid, _)| bid);
                if let Some(c) = bid.and_then(|bid| self.put_block(bid).ok()) {
                    changes.push(c);
                    actions.push(Action::RecordedBlock { block });
                }
            }
        }
        let (fresh, _) = Index::build(&self.data, self.ix.owners.empty_like());
        self.ix = fresh;
        if mismatches > 0 {
            actions.push(Action::Reindexed { mismatches });
        }
        RepairReport {
            found,
            actions,
            changes,
            remaining: self.check().issues,
        }
    }

    fn record_for(&self, aid: u32) -> Option<Change> {
        self.put_address(aid).ok()
    }
}

/// The address of an allocation, from data alone.
fn data_ip(data: &Data, aid: u32) -> Option<IpAddr> {
    let a = data.allocs.get(aid)?;
    let b = data.blocks.get(a.block)?;
    let s = data.subnets.get(b.subnet)?;
    (a.offset < s.block_size() && b.subnet == a.subnet).then(|| s.ip(b.num, a.offset))
}

/// Drops blocks outside any subnet and folds duplicate block entries into the first.
fn repair_blocks(data: &mut Data, actions: &mut Vec<Action>, changes: &mut Vec<Change>) {
    let mut first: HashMap<(u32, u128), u32> = HashMap::new();
    let mut merged: HashMap<u32, u32> = HashMap::new();
    let mut dropped = Vec::new();
    for (bid, b) in data.blocks.iter() {
        match data
            .subnets
            .get(b.subnet)
            .filter(|s| b.num <= s.max_block())
        {
            None => dropped.push(bid),
            Some(_) => match first.get(&(b.subnet, b.num)) {
                Some(&keep) => {
                    merged.insert(bid, keep);
                }
                None => {
                    first.insert((b.subnet, b.num), bid);
                }
            },
        }
    }
    for bid in dropped {
        data.blocks.remove(bid);
        actions.push(Action::DroppedBlock {
            detail: format!("block id {bid} had no subnet"),
        });
    }
    let mut moved: Vec<(u32, u32)> = Vec::new();
    for (aid, a) in data.allocs.iter() {
        if let Some(&keep) = merged.get(&a.block) {
            moved.push((aid, keep));
        }
    }
    for (aid, keep) in moved {
        if let Some(a) = data.allocs.get_mut(aid) {
            a.block = keep;
        }
    }
    let mut kept: Vec<u32> = merged.values().copied().collect();
    kept.sort_unstable();
    kept.dedup();
    for bid in merged.keys() {
        data.blocks.remove(*bid);
    }
    for keep in kept {
        let Some(b) = data.blocks.get(keep) else {
            continue;
        };
        let Some(block) = data.subnets.get(b.subnet).map(|s| s.block_net(b.num)) else {
            continue;
        };
        let node = b
            .owner
            .and_then(|n| data.nodes.get(n))
            .map(|n| n.name.to_string());
        actions.push(Action::MergedBlock {
            block,
            kept_node: node.clone().unwrap_or_else(|| "(none)".into()),
        });
        changes.push(Change::Put {
            record: crate::record::Record::Block(crate::record::BlockRecord { cidr: block, node }),
        });
    }
}

/// Drops allocations without a valid address and the later of two claims on one address or of
/// two addresses of one owner.
fn repair_allocs(data: &mut Data, actions: &mut Vec<Action>, changes: &mut Vec<Change>) {
    let mut by_addr: HashMap<(u32, u32), u32> = HashMap::new();
    let mut by_owner: HashMap<(u32, Box<str>), u32> = HashMap::new();
    let mut drop: Vec<(u32, Option<IpAddr>, &'static str)> = Vec::new();
    let mut rewrite = Vec::new();
    for (aid, a) in data.allocs.iter() {
        let Some(ip) = data_ip(data, aid) else {
            drop.push((aid, None, "points at no valid block"));
            continue;
        };
        if let Some(&keep) = by_addr.get(&(a.block, a.offset)) {
            drop.push((aid, Some(ip), "address already allocated to an older owner"));
            rewrite.push(keep);
            continue;
        }
        by_addr.insert((a.block, a.offset), aid);
        if by_owner.contains_key(&(a.subnet, a.owner.clone())) {
            drop.push((
                aid,
                Some(ip),
                "owner already holds an older address in this subnet",
            ));
            changes.push(Change::Delete {
                key: RecordKey::Address(ip),
            });
            continue;
        }
        by_owner.insert((a.subnet, a.owner.clone()), aid);
    }
    for (aid, ip, reason) in drop {
        if let Some(a) = data.allocs.remove(aid) {
            actions.push(Action::DroppedAllocation {
                owner: a.owner.to_string(),
                ip,
                reason: reason.to_string(),
            });
        }
    }
    rewrite.sort_unstable();
    rewrite.dedup();
    for aid in rewrite {
        // The store holds one record per address; make sure it is the survivor's.
        let Some(ip) = data_ip(data, aid) else {
            continue;
        };
        let Some(a) = data.allocs.get(aid) else {
            continue;
        };
        let node = a
            .node
            .and_then(|n| data.nodes.get(n))
            .map(|n| n.name.to_string());
        changes.push(Change::Put {
            record: crate::record::Record::Address(crate::record::AddressRecord {
                ip,
                owner: crate::types::Owner::new(a.kind, &*a.owner),
                node,
                fixed: a.fixed,
                held: a.held,
            }),
        });
    }
}
