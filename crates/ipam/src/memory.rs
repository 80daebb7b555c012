//! Memory estimate, for capacity planning and the benchmark. O(n): not for the hot path.

use std::mem::size_of;

use crate::Ipam;
use crate::state::{AllocData, BlockIx, NodeSubnetIx};

/// Heap cost of a small string: glibc-style chunks of 16 bytes, at least 32.
fn string_bytes(len: usize) -> usize {
    (len + 8).div_ceil(16).max(2) * 16
}

/// B-tree entries sit in nodes of up to 11 entries that are about two-thirds full, plus
/// child pointers; ~1.6x the entry size is a fair average.
fn btree_bytes(entries: usize, entry: usize) -> usize {
    entries * entry * 8 / 5
}

/// hashbrown: capacity is ~7/8 of the buckets, one control byte per bucket.
fn hash_bytes(capacity: usize, entry: usize) -> usize {
    (capacity * 8 / 7 + 1) * (entry + 1)
}

impl Ipam {
    /// Approximate bytes of memory held by the allocator (heap and inline structures).
    pub fn memory_bytes(&self) -> usize {
        let d = &self.data;
        let mut total = size_of::<Ipam>();
        total += d.allocs.heap_bytes()
            + d.blocks.heap_bytes()
            + d.nodes.heap_bytes()
            + d.subnets.heap_bytes()
            + d.pools.heap_bytes();
        total += d
            .allocs
            .iter()
            .map(|(_, a)| string_bytes(a.owner.len()))
            .sum::<usize>();
        total += d
            .nodes
            .iter()
            .map(|(_, n)| 2 * string_bytes(n.name.len()))
            .sum::<usize>();
        let ix = &self.ix;
        total += ix.blocks.capacity() * size_of::<Option<BlockIx>>();
        total += ix
            .blocks
            .iter()
            .flatten()
            .map(|b| b.used.heap_bytes() + b.slots.len() * 4)
            .sum::<usize>();
        for sx in &ix.subnets {
            total += hash_bytes(sx.blocks.capacity(), 32)
                + btree_bytes(sx.free_blocks.ranges(), 32)
                + btree_bytes(sx.with_space.len(), 32);
        }
        for nx in &ix.nodes {
            total += hash_bytes(nx.subnets.capacity(), size_of::<(u32, NodeSubnetIx)>());
            total += nx
                .subnets
                .values()
                .map(|ns| btree_bytes(ns.blocks.len() + ns.with_space.len(), 32))
                .sum::<usize>();
            total += btree_bytes(nx.foreign.len(), 4);
        }
        total += ix.owners.heap_bytes();
        total += hash_bytes(ix.node_by_name.capacity(), 24);
        total
    }

    /// Bytes of one allocation record, without its owner string (for documentation and tests).
    pub fn allocation_record_bytes() -> usize {
        size_of::<Option<AllocData>>()
    }
}
