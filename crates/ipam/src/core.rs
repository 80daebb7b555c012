//! Primitives that change [`Data`](crate::state::Data) and keep the
//! [`Index`](crate::state::Index) in step. Every public operation is built from these, so the
//! index invariants live in one place:
//!
//! * a block is in its subnet's `with_space` (and its owner's) iff its bitmap is not full;
//! * an active allocation is in its node's `foreign` set iff its block is not owned by that node;
//! * an unowned block is freed as soon as it holds no allocation.
//!
//! Callers validate first and mutate after, so an error never leaves a half-done change.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::Ipam;
use crate::addr::host_net;
use crate::error::Error;
use crate::record::{AddressRecord, BlockRecord, Change, Record, RecordKey};
use crate::state::{AllocData, BlockData, BlockIx, FREE, NodeData, SubnetData, at};
use crate::types::{Owner, Placement};

pub(crate) fn corrupt(detail: impl Into<String>) -> Error {
    Error::Corrupt {
        detail: detail.into(),
    }
}

impl Ipam {
    pub(crate) fn subnet_data(&self, sid: u32) -> Result<&SubnetData, Error> {
        self.data
            .subnets
            .get(sid)
            .ok_or_else(|| corrupt(format!("subnet id {sid} missing")))
    }

    pub(crate) fn block_data(&self, bid: u32) -> Result<&BlockData, Error> {
        self.data
            .blocks
            .get(bid)
            .ok_or_else(|| corrupt(format!("block id {bid} missing")))
    }

    pub(crate) fn block_ix(&self, bid: u32) -> Result<&BlockIx, Error> {
        self.ix
            .blocks
            .get(bid as usize)
            .and_then(Option::as_ref)
            .ok_or_else(|| corrupt(format!("bitmap of block id {bid} missing")))
    }

    fn block_ix_mut(&mut self, bid: u32) -> Result<&mut BlockIx, Error> {
        self.ix
            .blocks
            .get_mut(bid as usize)
            .and_then(Option::as_mut)
            .ok_or_else(|| corrupt(format!("bitmap of block id {bid} missing")))
    }

    pub(crate) fn alloc_data(&self, aid: u32) -> Result<&AllocData, Error> {
        self.data
            .allocs
            .get(aid)
            .ok_or_else(|| corrupt(format!("allocation id {aid} missing")))
    }

    pub(crate) fn node_data(&self, nid: u32) -> Result<&NodeData, Error> {
        self.data
            .nodes
            .get(nid)
            .ok_or_else(|| corrupt(format!("node id {nid} missing")))
    }

    /// The owner-index lookup for (subnet, owner).
    pub(crate) fn find_owner(&self, sid: u32, owner: &str) -> Option<u32> {
        let data = &self.data;
        self.ix
            .owners
            .get(sid, owner, |id| data.alloc_is(id, sid, owner))
    }

    pub(crate) fn block_net(&self, bid: u32) -> Result<IpNet, Error> {
        let b = self.block_data(bid)?;
        Ok(self.subnet_data(b.subnet)?.block_net(b.num))
    }

    pub(crate) fn alloc_ip(&self, aid: u32) -> Result<IpAddr, Error> {
        let a = self.alloc_data(aid)?;
        let b = self.block_data(a.block)?;
        Ok(self.subnet_data(a.subnet)?.ip(b.num, a.offset))
    }

    pub(crate) fn placement(&self, aid: u32) -> Result<Placement, Error> {
        let a = self.alloc_data(aid)?;
        let Some(node) = a.node else {
            return Ok(Placement::Unplaced);
        };
        let block = self.block_net(a.block)?;
        if self.block_data(a.block)?.owner == Some(node) {
            Ok(Placement::Block { block })
        } else {
            Ok(Placement::HostRoute {
                block,
                route: host_net(self.alloc_ip(aid)?),
            })
        }
    }

    pub(crate) fn address_record(&self, aid: u32) -> Result<AddressRecord, Error> {
        let a = self.alloc_data(aid)?;
        let node = match a.node {
            Some(n) => Some(self.node_data(n)?.name.to_string()),
            None => None,
        };
        Ok(AddressRecord {
            ip: self.alloc_ip(aid)?,
            owner: Owner::new(a.kind, &*a.owner),
            node,
            fixed: a.fixed,
            held: a.held,
        })
    }

    pub(crate) fn block_record(&self, bid: u32) -> Result<BlockRecord, Error> {
        let node = match self.block_data(bid)?.owner {
            Some(n) => Some(self.node_data(n)?.name.to_string()),
            None => None,
        };
        Ok(BlockRecord {
            cidr: self.block_net(bid)?,
            node,
        })
    }

    pub(crate) fn put_address(&self, aid: u32) -> Result<Change, Error> {
        Ok(Change::Put {
            record: Record::Address(self.address_record(aid)?),
        })
    }

    pub(crate) fn put_block(&self, bid: u32) -> Result<Change, Error> {
        Ok(Change::Put {
            record: Record::Block(self.block_record(bid)?),
        })
    }

    /// Claims free block `num` of subnet `sid` for `owner` (or for nobody).
    pub(crate) fn claim_block(
        &mut self,
        sid: u32,
        num: u128,
        owner: Option<u32>,
    ) -> Result<u32, Error> {
        let s = self.subnet_data(sid)?;
        let size = s.block_size();
        let reserved = s.reserved_offsets(num);
        if !at(&mut self.ix.subnets, sid).free_blocks.contains(num) {
            return Err(corrupt(format!(
                "block {num} of subnet id {sid} is not free"
            )));
        }
        let bid = self
            .data
            .blocks
            .insert(BlockData {
                subnet: sid,
                num,
                owner,
            })
            .ok_or(Error::LimitExceeded { what: "blocks" })?;
        let bix = BlockIx::new(size, &reserved);
        let space = !bix.used.is_full();
        *at(&mut self.ix.blocks, bid) = Some(bix);
        let sx = at(&mut self.ix.subnets, sid);
        sx.free_blocks.remove(num);
        sx.blocks.insert(num, bid);
        if space {
            sx.with_space.insert((num, bid));
        }
        if let Some(n) = owner {
            let ns = at(&mut self.ix.nodes, n).subnets.entry(sid).or_default();
            ns.blocks.insert((num, bid));
            if space {
                ns.with_space.insert((num, bid));
            }
        }
        Ok(bid)
    }

    /// Returns an empty block to its subnet's free blocks.
    pub(crate) fn free_block(&mut self, bid: u32) -> Result<Change, Error> {
        if self.block_ix(bid)?.allocs() != 0 {
            return Err(corrupt(format!("block id {bid} freed while in use")));
        }
        let key = RecordKey::Block(self.block_net(bid)?);
        self.set_block_owner(bid, None)?;
        let b = self
            .data
            .blocks
            .remove(bid)
            .ok_or_else(|| corrupt("block vanished"))?;
        self.ix.blocks[bid as usize] = None;
        let sx = at(&mut self.ix.subnets, b.subnet);
        sx.blocks.remove(&b.num);
        sx.with_space.remove(&(b.num, bid));
        sx.free_blocks.insert(b.num);
        Ok(Change::Delete { key })
    }

    /// Moves a block to another owner (or to none), fixing node indexes and foreign sets.
    pub(crate) fn set_block_owner(&mut self, bid: u32, new: Option<u32>) -> Result<(), Error> {
        let b = self.block_data(bid)?;
        let (sid, num, old) = (b.subnet, b.num, b.owner);
        if old == new {
            return Ok(());
        }
        let space = !self.block_ix(bid)?.used.is_full();
        if let Some(o) = old {
            let nx = at(&mut self.ix.nodes, o);
            if let Some(ns) = nx.subnets.get_mut(&sid) {
                ns.blocks.remove(&(num, bid));
                ns.with_space.remove(&(num, bid));
                if ns.blocks.is_empty() {
                    nx.subnets.remove(&sid);
                }
            }
        }
        if let Some(n) = new {
            let ns = at(&mut self.ix.nodes, n).subnets.entry(sid).or_default();
            ns.blocks.insert((num, bid));
            if space {
                ns.with_space.insert((num, bid));
            }
        }
        if let Some(b) = self.data.blocks.get_mut(bid) {
            b.owner = new;
        }
        // Allocations of the old owner now sit outside its blocks, the new owner's inside.
        let slots = self.block_ix(bid)?.slots.clone();
        for aid in slots
            .iter()
            .copied()
            .filter(|&s| s < crate::state::RESERVED)
        {
            if let Some(node) = self.alloc_data(aid)?.node {
                let foreign = &mut at(&mut self.ix.nodes, node).foreign;
                if Some(node) == new {
                    foreign.remove(&aid);
                } else if Some(node) == old {
                    foreign.insert(aid);
                }
            }
        }
        Ok(())
    }

    /// Records a new allocation at (block, offset), which must be free.
    pub(crate) fn place(
        &mut self,
        bid: u32,
        offset: u32,
        owner: &Owner,
        node: Option<u32>,
        fixed: bool,
    ) -> Result<u32, Error> {
        let b = self.block_data(bid)?;
        let (sid, num, block_owner) = (b.subnet, b.num, b.owner);
        if self.block_ix(bid)?.slots.get(offset as usize) != Some(&FREE) {
            return Err(corrupt(format!(
                "offset {offset} of block id {bid} is not free"
            )));
        }
        let aid = self
            .data
            .allocs
            .insert(AllocData {
                owner: owner.id.as_str().into(),
                subnet: sid,
                block: bid,
                offset,
                node,
                kind: owner.kind,
                fixed,
                held: false,
            })
            .ok_or(Error::LimitExceeded {
                what: "allocations",
            })?;
        let data = &self.data;
        if !self
            .ix
            .owners
            .insert(sid, &owner.id, aid, |id| data.alloc_is(id, sid, &owner.id))
        {
            self.data.allocs.remove(aid);
            return Err(corrupt(format!("owner {} indexed twice", owner.id)));
        }
        let bix = self.block_ix_mut(bid)?;
        bix.used.set(offset);
        bix.slots[offset as usize] = aid;
        let full = bix.used.is_full();
        let sx = at(&mut self.ix.subnets, sid);
        sx.allocs += 1;
        if full {
            sx.with_space.remove(&(num, bid));
            if let Some(o) = block_owner
                && let Some(ns) = at(&mut self.ix.nodes, o).subnets.get_mut(&sid)
            {
                ns.with_space.remove(&(num, bid));
            }
        }
        if let Some(n) = node {
            let nx = at(&mut self.ix.nodes, n);
            nx.active += 1;
            if block_owner != Some(n) {
                nx.foreign.insert(aid);
            }
        }
        Ok(aid)
    }

    /// Deletes an allocation and returns the changes (address deleted, and the block if it was
    /// unowned and is now empty).
    pub(crate) fn unplace(&mut self, aid: u32) -> Result<Vec<Change>, Error> {
        let ip = self.alloc_ip(aid)?;
        let a = self.alloc_data(aid)?.clone();
        self.set_alloc_node(aid, None, false)?;
        let data = &self.data;
        self.ix.owners.remove(a.subnet, &a.owner, |id| {
            data.alloc_is(id, a.subnet, &a.owner)
        });
        self.data.allocs.remove(aid);
        let b = self.block_data(a.block)?;
        let (num, block_owner) = (b.num, b.owner);
        let bix = self.block_ix_mut(a.block)?;
        let was_full = bix.used.is_full();
        bix.used.clear(a.offset);
        bix.slots[a.offset as usize] = FREE;
        let empty = bix.allocs() == 0;
        let sx = at(&mut self.ix.subnets, a.subnet);
        sx.allocs -= 1;
        if was_full {
            sx.with_space.insert((num, a.block));
            if let Some(o) = block_owner
                && let Some(ns) = at(&mut self.ix.nodes, o).subnets.get_mut(&a.subnet)
            {
                ns.with_space.insert((num, a.block));
            }
        }
        let mut changes = vec![Change::Delete {
            key: RecordKey::Address(ip),
        }];
        if empty && block_owner.is_none() {
            changes.push(self.free_block(a.block)?);
        }
        Ok(changes)
    }

    /// Moves an allocation to `node` (or off any node), optionally holding it for its fixed
    /// owner.
    pub(crate) fn set_alloc_node(
        &mut self,
        aid: u32,
        node: Option<u32>,
        held: bool,
    ) -> Result<(), Error> {
        let a = self.alloc_data(aid)?;
        let (sid, old, was_held) = (a.subnet, a.node, a.held);
        let block_owner = self.block_data(a.block)?.owner;
        if let Some(o) = old {
            let nx = at(&mut self.ix.nodes, o);
            nx.active -= 1;
            nx.foreign.remove(&aid);
        }
        if was_held {
            at(&mut self.ix.subnets, sid).held -= 1;
        }
        if let Some(n) = node {
            let nx = at(&mut self.ix.nodes, n);
            nx.active += 1;
            if block_owner != Some(n) {
                nx.foreign.insert(aid);
            }
        }
        if held {
            at(&mut self.ix.subnets, sid).held += 1;
        }
        if let Some(a) = self.data.allocs.get_mut(aid) {
            a.node = node;
            a.held = held;
        }
        Ok(())
    }
}
