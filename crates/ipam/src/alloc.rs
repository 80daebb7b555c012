//! Address allocation and release: the hot path.
//!
//! Dynamic allocation on a node, in order (each step O(log n) or O(1)):
//! 1. the lowest own block of the subnet with a free address (per-node `with_space` set),
//!    then its first free address (bitmap);
//! 2. otherwise claim a free block: the one right after the node's highest block if free (so
//!    its blocks stay contiguous and aggregate), else the lowest free one (range set);
//! 3. otherwise, if the subnet's [`BorrowPolicy`] allows, borrow from the lowest block of any
//!    owner with a free address (subnet `with_space` set): the address becomes a host route;
//! 4. otherwise fail with [`Error::Exhausted`] or [`Error::NoFreeBlock`].

use std::net::IpAddr;

use crate::Ipam;
use crate::addr::Key;
use crate::core::corrupt;
use crate::error::Error;
use crate::record::Change;
use crate::state::{FREE, RESERVED, at, validate_owner};
use crate::types::{AllocRequest, Allocated, AllocationInfo, BorrowPolicy, Owner};

impl Ipam {
    /// Allocates an address in a tenant subnet for an owner on a node.
    ///
    /// Idempotent: if the owner already has an address in the subnet on this node, that
    /// address is returned with no changes. A held fixed address is handed back, on any node.
    pub fn allocate(&mut self, req: &AllocRequest) -> Result<Allocated, Error> {
        validate_owner(&req.owner.id)?;
        let sid = self.subnet_id(&req.subnet)?;
        let nid = self.node_id(&req.node)?;
        self.allocate_in(sid, Some(nid), &req.owner, req.ip, req.fixed)
    }

    /// Allocates a floating or anycast address straight from its pool for an owner
    /// (optionally a specific one). Idempotent per owner like [`Ipam::allocate`].
    pub fn allocate_direct(
        &mut self,
        pool: &str,
        owner: &Owner,
        ip: Option<IpAddr>,
    ) -> Result<Allocated, Error> {
        validate_owner(&owner.id)?;
        let sid = self.direct_subnet_id(pool)?;
        self.allocate_in(sid, None, owner, ip, false)
    }

    fn allocate_in(
        &mut self,
        sid: u32,
        node: Option<u32>,
        owner: &Owner,
        ip: Option<IpAddr>,
        fixed: bool,
    ) -> Result<Allocated, Error> {
        if let Some(aid) = self.find_owner(sid, &owner.id) {
            return self.reuse(aid, node, ip, fixed);
        }
        let (bid, offset, mut changes) = match ip {
            Some(ip) => self.pick_static(sid, node, ip)?,
            None => self.pick_dynamic(sid, node)?,
        };
        let aid = self.place(bid, offset, owner, node, fixed)?;
        changes.push(self.put_address(aid)?);
        Ok(Allocated {
            ip: self.alloc_ip(aid)?,
            placement: self.placement(aid)?,
            changes,
        })
    }

    /// The owner already has an allocation in the subnet.
    fn reuse(
        &mut self,
        aid: u32,
        node: Option<u32>,
        ip: Option<IpAddr>,
        fixed: bool,
    ) -> Result<Allocated, Error> {
        let current = self.alloc_ip(aid)?;
        let a = self.alloc_data(aid)?;
        let scope = self.subnet_data(a.subnet)?.scope();
        if let Some(requested) = ip.filter(|&r| r != current) {
            return Err(Error::OwnerHasOtherAddress {
                scope,
                owner: a.owner.to_string(),
                ip: current,
                requested,
            });
        }
        let mut changes = Vec::new();
        if a.held {
            self.set_alloc_node(aid, node, false)?;
            changes.push(self.put_address(aid)?);
        } else if a.node != node {
            let other = match a.node {
                Some(n) => self.node_data(n)?.name.to_string(),
                None => "(none)".to_string(),
            };
            return Err(Error::OwnerOnOtherNode {
                scope,
                owner: a.owner.to_string(),
                ip: current,
                node: other,
            });
        } else if fixed && !a.fixed {
            // A retry may upgrade an address to fixed; downgrading is `forget_fixed`.
            if let Some(a) = self.data.allocs.get_mut(aid) {
                a.fixed = true;
            }
            changes.push(self.put_address(aid)?);
        }
        Ok(Allocated {
            ip: current,
            placement: self.placement(aid)?,
            changes,
        })
    }

    /// Validates a static address and returns its (block, offset), claiming its block for the
    /// node if nobody has it yet.
    fn pick_static(
        &mut self,
        sid: u32,
        node: Option<u32>,
        ip: IpAddr,
    ) -> Result<(u32, u32, Vec<Change>), Error> {
        let s = self.subnet_data(sid)?;
        let scope = s.scope();
        let (num, offset) = s.locate(ip).ok_or_else(|| Error::AddressOutsideScope {
            scope: scope.clone(),
            cidr: s.cidr,
            ip,
        })?;
        let reserved = s.reserved_offsets(num);
        if let Some(&bid) = at(&mut self.ix.subnets, sid).blocks.get(&num) {
            return match self.block_ix(bid)?.slots[offset as usize] {
                FREE => Ok((bid, offset, Vec::new())),
                RESERVED => Err(Error::AddressReserved { scope, ip }),
                aid => Err(Error::AddressInUse {
                    scope,
                    ip,
                    owner: self.alloc_data(aid)?.owner.to_string(),
                }),
            };
        }
        if reserved.contains(&offset) {
            return Err(Error::AddressReserved { scope, ip });
        }
        let bid = self.claim_block(sid, num, node)?;
        Ok((bid, offset, vec![self.put_block(bid)?]))
    }

    fn pick_dynamic(
        &mut self,
        sid: u32,
        node: Option<u32>,
    ) -> Result<(u32, u32, Vec<Change>), Error> {
        // 1. Own blocks first (for direct pools, any block: they are all unowned).
        let own = match node {
            Some(n) => self
                .ix
                .nodes
                .get(n as usize)
                .and_then(|nx| nx.subnets.get(&sid))
                .and_then(|ns| ns.with_space.first().copied()),
            None => at(&mut self.ix.subnets, sid).with_space.first().copied(),
        };
        if let Some((_, bid)) = own {
            let offset = self.first_free(bid)?;
            return Ok((bid, offset, Vec::new()));
        }
        // 2. A new block.
        if let Some(num) = self.next_free_block(sid, node)? {
            let bid = self.claim_block(sid, num, node)?;
            let offset = self.first_free(bid)?;
            return Ok((bid, offset, vec![self.put_block(bid)?]));
        }
        // 3. Borrow.
        let s = self.subnet_data(sid)?;
        let (scope, cidr, borrow) = (s.scope(), s.cidr, s.borrow);
        let sx = at(&mut self.ix.subnets, sid);
        let (allocated, held) = (sx.allocs, sx.held);
        if let Some(&(_, bid)) = sx.with_space.first() {
            if borrow == BorrowPolicy::LastResort {
                let offset = self.first_free(bid)?;
                return Ok((bid, offset, Vec::new()));
            }
            let node = match node {
                Some(n) => self.node_data(n)?.name.to_string(),
                None => String::new(),
            };
            return Err(Error::NoFreeBlock { scope, cidr, node });
        }
        Err(Error::Exhausted {
            scope,
            cidr,
            allocated,
            held,
        })
    }

    fn first_free(&self, bid: u32) -> Result<u32, Error> {
        self.block_ix(bid)?
            .used
            .first_clear()
            .ok_or_else(|| corrupt(format!("block id {bid} indexed as having space but full")))
    }

    /// The block to claim next, skipping blocks made only of reserved addresses (only possible
    /// with blocks of at most 3 addresses, so at most 3 skips).
    fn next_free_block(&self, sid: u32, node: Option<u32>) -> Result<Option<u128>, Error> {
        let s = self.subnet_data(sid)?;
        let Some(sx) = self.ix.subnets.get(sid as usize) else {
            return Err(corrupt("subnet index missing"));
        };
        let usable = |num: u128| s.reserved_offsets(num).len() < s.block_size() as usize;
        // Right after the node's highest block, so its blocks aggregate.
        let after_last = node
            .and_then(|n| self.ix.nodes.get(n as usize))
            .and_then(|nx| nx.subnets.get(&sid))
            .and_then(|ns| ns.blocks.last())
            .map(|&(num, _)| num)
            .filter(|&num| num < s.max_block())
            .map(|num| num + 1)
            .filter(|&num| sx.free_blocks.contains(num) && usable(num));
        if after_last.is_some() {
            return Ok(after_last);
        }
        let mut candidate = sx.free_blocks.first();
        while let Some(num) = candidate {
            if usable(num) {
                return Ok(Some(num));
            }
            candidate = sx.free_blocks.next_after(num);
        }
        Ok(None)
    }

    /// Releases the owner's address in a tenant subnet. A fixed address is held for the owner
    /// (see [`Ipam::forget_fixed`]); releasing a held address again changes nothing.
    pub fn release(&mut self, subnet: &str, owner: &str) -> Result<Vec<Change>, Error> {
        let sid = self.subnet_id(subnet)?;
        let aid = self.owner_alloc(sid, owner)?;
        self.release_alloc(aid)
    }

    /// Releases the owner's floating or anycast address.
    pub fn release_direct(&mut self, pool: &str, owner: &str) -> Result<Vec<Change>, Error> {
        let sid = self.direct_subnet_id(pool)?;
        let aid = self.owner_alloc(sid, owner)?;
        self.release_alloc(aid)
    }

    /// Releases an address by value (tenant or direct pool), like [`Ipam::release`].
    pub fn release_ip(&mut self, ip: IpAddr) -> Result<Vec<Change>, Error> {
        let aid = self.alloc_at(ip).ok_or(Error::UnknownAddress { ip })?;
        self.release_alloc(aid)
    }

    /// Stops keeping an owner's fixed address: a held address is freed, an active one becomes
    /// an ordinary address that will be freed on release.
    pub fn forget_fixed(&mut self, subnet: &str, owner: &str) -> Result<Vec<Change>, Error> {
        let sid = self.subnet_id(subnet)?;
        let aid = self.owner_alloc(sid, owner)?;
        let a = self.alloc_data(aid)?;
        if a.held {
            return self.unplace(aid);
        }
        if !a.fixed {
            return Ok(Vec::new());
        }
        if let Some(a) = self.data.allocs.get_mut(aid) {
            a.fixed = false;
        }
        Ok(vec![self.put_address(aid)?])
    }

    fn owner_alloc(&self, sid: u32, owner: &str) -> Result<u32, Error> {
        self.find_owner(sid, owner)
            .ok_or_else(|| match self.subnet_data(sid) {
                Ok(s) => Error::UnknownOwner {
                    scope: s.scope(),
                    owner: owner.to_string(),
                },
                Err(e) => e,
            })
    }

    pub(crate) fn release_alloc(&mut self, aid: u32) -> Result<Vec<Change>, Error> {
        let a = self.alloc_data(aid)?;
        if a.held {
            return Ok(Vec::new());
        }
        if a.fixed {
            self.set_alloc_node(aid, None, true)?;
            return Ok(vec![self.put_address(aid)?]);
        }
        self.unplace(aid)
    }

    /// The allocation holding `ip`, if any.
    pub(crate) fn alloc_at(&self, ip: IpAddr) -> Option<u32> {
        let sid = self.subnet_at(Key::of(ip))?;
        let (num, offset) = self.data.subnets.get(sid)?.locate(ip)?;
        let bid = *self.ix.subnets.get(sid as usize)?.blocks.get(&num)?;
        let slot = *self.block_ix(bid).ok()?.slots.get(offset as usize)?;
        (slot < RESERVED).then_some(slot)
    }

    pub(crate) fn info(&self, aid: u32) -> Result<AllocationInfo, Error> {
        let r = self.address_record(aid)?;
        let s = self.subnet_data(self.alloc_data(aid)?.subnet)?;
        let pool = self
            .data
            .pools
            .get(s.pool)
            .ok_or_else(|| corrupt("pool vanished"))?;
        Ok(AllocationInfo {
            ip: r.ip,
            pool: pool.name.to_string(),
            subnet: (!s.direct).then(|| s.name.to_string()),
            owner: r.owner,
            node: r.node,
            fixed: r.fixed,
            held: r.held,
            placement: self.placement(aid)?,
        })
    }

    /// The allocation holding `ip`, if any.
    pub fn lookup(&self, ip: IpAddr) -> Option<AllocationInfo> {
        self.info(self.alloc_at(ip)?).ok()
    }

    /// The owner's allocation in a tenant subnet, if any.
    pub fn allocation(&self, subnet: &str, owner: &str) -> Option<AllocationInfo> {
        let sid = self.subnet_id(subnet).ok()?;
        self.info(self.find_owner(sid, owner)?).ok()
    }

    /// The owner's allocation in a floating or anycast pool, if any.
    pub fn allocation_direct(&self, pool: &str, owner: &str) -> Option<AllocationInfo> {
        let sid = self.direct_subnet_id(pool).ok()?;
        self.info(self.find_owner(sid, owner)?).ok()
    }

    /// Number of allocations (active and held) in the whole allocator.
    pub fn len(&self) -> usize {
        self.data.allocs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.allocs.len() == 0
    }
}
