//! Building the derived [`Index`] from the authoritative [`Data`] in one pass.
//!
//! Used on load, by the checker (as the reference to compare the live index against) and by
//! repair (to replace the live index). The build tolerates broken data: it indexes what is
//! consistent, skips what is not, and reports each skip as an [`Issue`].

use crate::addr::{Family, Key, net_range};
use crate::check::Issue;
use crate::owners::OwnerIndex;
use crate::rangeset::RangeSet;
use crate::state::{BlockIx, Data, FREE, Index, RESERVED, at};

/// Display name of a node id for reports, even if the node is gone.
pub(crate) fn node_name(data: &Data, id: Option<u32>) -> String {
    match id {
        None => "(none)".to_string(),
        Some(id) => match data.nodes.get(id) {
            Some(n) => n.name.to_string(),
            None => format!("#{id}"),
        },
    }
}

impl Index {
    pub(crate) fn build(data: &Data, owners: OwnerIndex) -> (Index, Vec<Issue>) {
        let mut ix = Index {
            owners,
            ..Index::default()
        };
        let mut issues = Vec::new();
        for (id, p) in data.pools.iter() {
            ix.pool_by_name.insert(p.name.clone(), id);
            let (start, end) = net_range(&p.cidr);
            ix.pool_ranges.insert(
                Key {
                    family: Family::of_net(&p.cidr),
                    value: start,
                },
                id,
            );
            let px = at(&mut ix.pools, id);
            if !p.kind.is_direct() {
                px.free = RangeSet::full(start, end);
            }
        }
        for (id, s) in data.subnets.iter() {
            let (start, end) = net_range(&s.cidr);
            if !s.direct {
                ix.subnet_by_name.insert(s.name.clone(), id);
                let px = at(&mut ix.pools, s.pool);
                px.free.remove_range(start, end);
                px.subnets += 1;
            }
            ix.subnet_ranges.insert(
                Key {
                    family: s.family(),
                    value: start,
                },
                id,
            );
            at(&mut ix.subnets, id).free_blocks = RangeSet::full(0, s.max_block());
        }
        for (id, n) in data.nodes.iter() {
            ix.node_by_name.insert(n.name.clone(), id);
            at(&mut ix.nodes, id);
        }
        ix.blocks.resize_with(data.blocks.id_bound(), || None);
        for (bid, b) in data.blocks.iter() {
            let Some(s) = data
                .subnets
                .get(b.subnet)
                .filter(|s| b.num <= s.max_block())
            else {
                issues.push(Issue::BlockOutsideSubnet {
                    detail: format!("block id {bid} (number {}) has no subnet", b.num),
                });
                continue;
            };
            let sx = at(&mut ix.subnets, b.subnet);
            if let Some(&other) = sx.blocks.get(&b.num) {
                let first = data.blocks.get(other).and_then(|o| o.owner);
                issues.push(Issue::BlockOwnedTwice {
                    block: s.block_net(b.num),
                    nodes: vec![node_name(data, first), node_name(data, b.owner)],
                });
                continue;
            }
            sx.blocks.insert(b.num, bid);
            sx.free_blocks.remove(b.num);
            ix.blocks[bid as usize] =
                Some(BlockIx::new(s.block_size(), &s.reserved_offsets(b.num)));
            if let Some(n) = b.owner {
                match data.nodes.get(n) {
                    Some(node) => {
                        if node.ghost {
                            issues.push(Issue::BlockOnUnknownNode {
                                block: s.block_net(b.num),
                                node: node.name.to_string(),
                            });
                        }
                        let ns = at(&mut ix.nodes, n).subnets.entry(b.subnet).or_default();
                        ns.blocks.insert((b.num, bid));
                    }
                    None => issues.push(Issue::BlockOnUnknownNode {
                        block: s.block_net(b.num),
                        node: node_name(data, Some(n)),
                    }),
                }
            }
        }
        for (aid, a) in data.allocs.iter() {
            let located = data
                .blocks
                .get(a.block)
                .filter(|b| b.subnet == a.subnet)
                .and_then(|b| Some((b, data.subnets.get(b.subnet)?)))
                .filter(|(_, s)| a.offset < s.block_size());
            let bix = ix.blocks.get_mut(a.block as usize).and_then(Option::as_mut);
            let (Some((b, s)), Some(bix)) = (located, bix) else {
                issues.push(Issue::AllocationOutsideBlock {
                    owner: a.owner.to_string(),
                    detail: format!("allocation id {aid} points at no valid block"),
                });
                continue;
            };
            let ip = s.ip(b.num, a.offset);
            match bix.slots[a.offset as usize] {
                FREE => {}
                RESERVED => {
                    issues.push(Issue::ReservedAddressAllocated {
                        ip,
                        owner: a.owner.to_string(),
                    });
                    bix.reserved -= 1;
                }
                other => {
                    let first = data.allocs.get(other).map_or("", |o| &*o.owner);
                    issues.push(Issue::DuplicateAddress {
                        ip,
                        owners: vec![first.to_string(), a.owner.to_string()],
                    });
                    continue;
                }
            }
            bix.used.set(a.offset);
            bix.slots[a.offset as usize] = aid;
            if !ix.owners.insert(a.subnet, &a.owner, aid, |id| {
                data.alloc_is(id, a.subnet, &a.owner)
            }) {
                let first = ix
                    .owners
                    .get(a.subnet, &a.owner, |id| {
                        data.alloc_is(id, a.subnet, &a.owner)
                    })
                    .and_then(|id| data.allocs.get(id))
                    .and_then(|o| Some(s.ip(data.blocks.get(o.block)?.num, o.offset)));
                issues.push(Issue::DuplicateOwner {
                    scope: s.scope(),
                    owner: a.owner.to_string(),
                    ips: first.into_iter().chain([ip]).collect(),
                });
            }
            let sx = at(&mut ix.subnets, a.subnet);
            sx.allocs += 1;
            if a.held {
                sx.held += 1;
            }
            if let Some(n) = a.node {
                match data.nodes.get(n) {
                    Some(node) => {
                        if node.ghost {
                            issues.push(Issue::AllocationOnUnknownNode {
                                ip,
                                owner: a.owner.to_string(),
                                node: node.name.to_string(),
                            });
                        }
                        let nx = at(&mut ix.nodes, n);
                        nx.active += 1;
                        if b.owner != Some(n) {
                            nx.foreign.insert(aid);
                        }
                    }
                    None => issues.push(Issue::AllocationOnUnknownNode {
                        ip,
                        owner: a.owner.to_string(),
                        node: node_name(data, Some(n)),
                    }),
                }
            }
        }
        // Free-space sets last, once every bitmap is final.
        for (bid, b) in data.blocks.iter() {
            let Some(bix) = ix.blocks.get(bid as usize).and_then(Option::as_ref) else {
                continue;
            };
            if bix.used.is_full() {
                continue;
            }
            at(&mut ix.subnets, b.subnet)
                .with_space
                .insert((b.num, bid));
            if let Some(ns) = b
                .owner
                .and_then(|n| ix.nodes.get_mut(n as usize))
                .and_then(|nx| nx.subnets.get_mut(&b.subnet))
            {
                ns.with_space.insert((b.num, bid));
            }
        }
        (ix, issues)
    }
}
