//! Pools and subnets: creation, deletion, carving, usage.

use ipnet::IpNet;

use crate::Ipam;
use crate::addr::{Family, Key, host_bits, low_ones, make_net, net_range};
use crate::bitmap::MAX_BITS;
use crate::core::corrupt;
use crate::error::{Error, Scope};
use crate::rangeset::RangeSet;
use crate::record::{Change, PoolRecord, Record, RecordKey, SubnetRecord};
use crate::state::{PoolData, SubnetData, at, range_lookup, validate_name};
use crate::types::{BorrowPolicy, PoolKind, PoolSpec, Reserve, SubnetCidr, SubnetSpec, Usage};

/// log2 of the largest block.
const MAX_BLOCK_BITS: u8 = MAX_BITS.trailing_zeros() as u8;

fn canonical(what: &'static str, cidr: &IpNet) -> Result<(), Error> {
    if crate::addr::is_canonical(cidr) {
        Ok(())
    } else {
        Err(Error::NotCanonical {
            what,
            cidr: *cidr,
            canonical: cidr.trunc(),
        })
    }
}

fn end_key(cidr: &IpNet) -> Key {
    Key {
        family: Family::of_net(cidr),
        value: net_range(cidr).1,
    }
}

fn start_key(cidr: &IpNet) -> Key {
    Key {
        family: Family::of_net(cidr),
        value: net_range(cidr).0,
    }
}

impl Ipam {
    pub(crate) fn pool_id(&self, name: &str) -> Result<u32, Error> {
        self.ix
            .pool_by_name
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownPool {
                pool: name.to_string(),
            })
    }

    pub(crate) fn subnet_id(&self, name: &str) -> Result<u32, Error> {
        self.ix
            .subnet_by_name
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownSubnet {
                subnet: name.to_string(),
            })
    }

    /// The implicit subnet of a floating/anycast pool.
    pub(crate) fn direct_subnet_id(&self, pool: &str) -> Result<u32, Error> {
        let pid = self.pool_id(pool)?;
        let p = self
            .data
            .pools
            .get(pid)
            .ok_or_else(|| corrupt("pool vanished"))?;
        p.direct.ok_or(Error::WrongPoolKind {
            pool: pool.to_string(),
            kind: p.kind,
            operation: "allocate addresses straight from the pool",
        })
    }

    /// The subnet (tenant or implicit) containing `key`.
    pub(crate) fn subnet_at(&self, key: Key) -> Option<u32> {
        range_lookup(&self.ix.subnet_ranges, key, |id| {
            self.data.subnets.get(id).map(|s| end_key(&s.cidr))
        })
    }

    /// Any pool overlapping `cidr`.
    fn overlapping_pool(&self, cidr: &IpNet) -> Option<u32> {
        let (s, e) = (start_key(cidr), end_key(cidr));
        if let Some(id) = range_lookup(&self.ix.pool_ranges, s, |id| {
            self.data.pools.get(id).map(|p| end_key(&p.cidr))
        }) {
            return Some(id);
        }
        self.ix.pool_ranges.range(s..=e).next().map(|(_, &id)| id)
    }

    /// Any subnet overlapping `cidr`.
    fn overlapping_subnet(&self, cidr: &IpNet) -> Option<u32> {
        let (s, e) = (start_key(cidr), end_key(cidr));
        self.subnet_at(s)
            .or_else(|| self.ix.subnet_ranges.range(s..=e).next().map(|(_, &id)| id))
    }

    /// Creates a pool. Pools must not overlap.
    pub fn create_pool(&mut self, spec: &PoolSpec) -> Result<Vec<Change>, Error> {
        validate_name("pool", &spec.name)?;
        canonical("pool", &spec.cidr)?;
        if self.ix.pool_by_name.contains_key(spec.name.as_str()) {
            return Err(Error::PoolExists {
                pool: spec.name.clone(),
            });
        }
        let max = spec.cidr.max_prefix_len();
        let block_len = spec.block_prefix_len.unwrap_or_else(|| {
            crate::types::default_block_prefix_len(&spec.cidr).max(spec.cidr.prefix_len())
        });
        let min_len = spec.cidr.prefix_len().max(max - MAX_BLOCK_BITS);
        if block_len < min_len || block_len > max {
            return Err(Error::InvalidBlockSize {
                pool: spec.name.clone(),
                cidr: spec.cidr,
                block_prefix_len: block_len,
                min: min_len,
                max,
            });
        }
        if let Some(other) = self.overlapping_pool(&spec.cidr) {
            let o = self
                .data
                .pools
                .get(other)
                .ok_or_else(|| corrupt("pool vanished"))?;
            return Err(Error::PoolOverlap {
                pool: spec.name.clone(),
                cidr: spec.cidr,
                other: o.name.to_string(),
                other_cidr: o.cidr,
            });
        }
        let pid = self
            .data
            .pools
            .insert(PoolData {
                name: spec.name.as_str().into(),
                cidr: spec.cidr,
                kind: spec.kind,
                block_prefix_len: block_len,
                direct: None,
            })
            .ok_or(Error::LimitExceeded { what: "pools" })?;
        self.ix.pool_by_name.insert(spec.name.as_str().into(), pid);
        self.ix.pool_ranges.insert(start_key(&spec.cidr), pid);
        let (start, end) = net_range(&spec.cidr);
        *at(&mut self.ix.pools, pid) = Default::default();
        if spec.kind.is_direct() {
            let sid = self.insert_subnet(SubnetData {
                name: spec.name.as_str().into(),
                tenant: "".into(),
                pool: pid,
                cidr: spec.cidr,
                reserve: Reserve::default(),
                borrow: BorrowPolicy::LastResort,
                direct: true,
                block_bits: u32::from(max - block_len),
            })?;
            if let Some(p) = self.data.pools.get_mut(pid) {
                p.direct = Some(sid);
            }
        } else {
            at(&mut self.ix.pools, pid).free = RangeSet::full(start, end);
        }
        Ok(vec![Change::Put {
            record: Record::Pool(self.pool_record(pid)?),
        }])
    }

    pub(crate) fn pool_record(&self, pid: u32) -> Result<PoolRecord, Error> {
        let p = self
            .data
            .pools
            .get(pid)
            .ok_or_else(|| corrupt("pool vanished"))?;
        Ok(PoolRecord {
            name: p.name.to_string(),
            cidr: p.cidr,
            kind: p.kind,
            block_prefix_len: p.block_prefix_len,
        })
    }

    pub(crate) fn subnet_record(&self, sid: u32) -> Result<SubnetRecord, Error> {
        let s = self.subnet_data(sid)?;
        let pool = self
            .data
            .pools
            .get(s.pool)
            .ok_or_else(|| corrupt("pool vanished"))?;
        Ok(SubnetRecord {
            name: s.name.to_string(),
            tenant: s.tenant.to_string(),
            pool: pool.name.to_string(),
            cidr: s.cidr,
            reserve: s.reserve,
            borrow: s.borrow,
        })
    }

    /// Deletes a pool that holds no subnet and no address.
    pub fn delete_pool(&mut self, name: &str) -> Result<Vec<Change>, Error> {
        let pid = self.pool_id(name)?;
        let p = self
            .data
            .pools
            .get(pid)
            .ok_or_else(|| corrupt("pool vanished"))?
            .clone();
        let subnets = at(&mut self.ix.pools, pid).subnets;
        let addresses = p
            .direct
            .map_or(0, |sid| at(&mut self.ix.subnets, sid).allocs);
        if subnets > 0 || addresses > 0 {
            return Err(Error::PoolInUse {
                pool: name.to_string(),
                subnets,
                addresses,
            });
        }
        let mut changes = Vec::new();
        if let Some(sid) = p.direct {
            // Unowned blocks are freed when they empty, so there is nothing left to delete.
            self.remove_subnet(sid, &mut changes)?;
        }
        self.data.pools.remove(pid);
        self.ix.pool_by_name.remove(name);
        self.ix.pool_ranges.remove(&start_key(&p.cidr));
        self.ix.pools[pid as usize] = Default::default();
        changes.push(Change::Delete {
            key: RecordKey::Pool(name.to_string()),
        });
        Ok(changes)
    }

    fn insert_subnet(&mut self, s: SubnetData) -> Result<u32, Error> {
        let (start, cidr, direct, pool) = (start_key(&s.cidr), s.cidr, s.direct, s.pool);
        let max_block = s.max_block();
        let name = s.name.clone();
        let sid = self
            .data
            .subnets
            .insert(s)
            .ok_or(Error::LimitExceeded { what: "subnets" })?;
        if !direct {
            self.ix.subnet_by_name.insert(name, sid);
            let px = at(&mut self.ix.pools, pool);
            let (a, b) = net_range(&cidr);
            px.free.remove_range(a, b);
            px.subnets += 1;
        }
        self.ix.subnet_ranges.insert(start, sid);
        let sx = at(&mut self.ix.subnets, sid);
        *sx = Default::default();
        sx.free_blocks = RangeSet::full(0, max_block);
        Ok(sid)
    }

    /// Removes an empty subnet, freeing its (empty) blocks.
    fn remove_subnet(&mut self, sid: u32, changes: &mut Vec<Change>) -> Result<(), Error> {
        let mut blocks: Vec<u32> = at(&mut self.ix.subnets, sid)
            .blocks
            .values()
            .copied()
            .collect();
        blocks.sort_unstable();
        for bid in blocks {
            changes.push(self.free_block(bid)?);
        }
        let s = self
            .data
            .subnets
            .remove(sid)
            .ok_or_else(|| corrupt("subnet vanished"))?;
        self.ix.subnet_ranges.remove(&start_key(&s.cidr));
        if !s.direct {
            self.ix.subnet_by_name.remove(&s.name);
            let px = at(&mut self.ix.pools, s.pool);
            let (a, b) = net_range(&s.cidr);
            px.free.insert_range(a, b);
            px.subnets -= 1;
        }
        self.ix.subnets[sid as usize] = Default::default();
        Ok(())
    }

    /// Creates a tenant subnet in a tenant pool and returns its prefix.
    pub fn create_subnet(&mut self, spec: &SubnetSpec) -> Result<(IpNet, Vec<Change>), Error> {
        validate_name("subnet", &spec.name)?;
        validate_name("tenant", &spec.tenant)?;
        if self.ix.subnet_by_name.contains_key(spec.name.as_str()) {
            return Err(Error::SubnetExists {
                subnet: spec.name.clone(),
            });
        }
        let pid = self.pool_id(&spec.pool)?;
        let p = self
            .data
            .pools
            .get(pid)
            .ok_or_else(|| corrupt("pool vanished"))?
            .clone();
        if p.kind != PoolKind::TenantSubnets {
            return Err(Error::WrongPoolKind {
                pool: p.name.to_string(),
                kind: p.kind,
                operation: "carve tenant subnets",
            });
        }
        let (pstart, _) = net_range(&p.cidr);
        let family = Family::of_net(&p.cidr);
        let cidr = match spec.cidr {
            SubnetCidr::Explicit(cidr) => {
                canonical("subnet", &cidr)?;
                if !p.cidr.contains(&cidr) || Family::of_net(&cidr) != family {
                    return Err(Error::SubnetOutsidePool {
                        subnet: spec.name.clone(),
                        cidr,
                        pool: p.name.to_string(),
                        pool_cidr: p.cidr,
                    });
                }
                let (a, b) = net_range(&cidr);
                if !at(&mut self.ix.pools, pid).free.contains_range(a, b) {
                    let other = self
                        .overlapping_subnet(&cidr)
                        .and_then(|o| self.data.subnets.get(o))
                        .ok_or_else(|| corrupt("pool free space disagrees with subnets"))?;
                    return Err(Error::SubnetOverlap {
                        subnet: spec.name.clone(),
                        cidr,
                        other: other.name.to_string(),
                        other_cidr: other.cidr,
                    });
                }
                cidr
            }
            SubnetCidr::NextFree { prefix_len } => {
                let max = p.cidr.max_prefix_len();
                if prefix_len < p.cidr.prefix_len() || prefix_len > max {
                    return Err(Error::InvalidPrefixLen {
                        pool: p.name.to_string(),
                        pool_cidr: p.cidr,
                        prefix_len,
                        min: p.cidr.prefix_len(),
                        max,
                    });
                }
                let bits = u32::from(max - prefix_len);
                let start = at(&mut self.ix.pools, pid)
                    .free
                    .first_aligned(pstart, bits)
                    .ok_or_else(|| Error::PoolExhausted {
                        pool: p.name.to_string(),
                        cidr: p.cidr,
                        prefix_len,
                    })?;
                make_net(family, start, prefix_len)
            }
        };
        if let Some(gw) = spec.reserve.gateway
            && !cidr.contains(&gw)
        {
            return Err(Error::InvalidGateway {
                subnet: spec.name.clone(),
                cidr,
                ip: gw,
            });
        }
        let block_bits =
            u32::from(p.cidr.max_prefix_len() - p.block_prefix_len).min(host_bits(&cidr));
        let sid = self.insert_subnet(SubnetData {
            name: spec.name.as_str().into(),
            tenant: spec.tenant.as_str().into(),
            pool: pid,
            cidr,
            reserve: spec.reserve,
            borrow: spec.borrow,
            direct: false,
            block_bits,
        })?;
        Ok((
            cidr,
            vec![Change::Put {
                record: Record::Subnet(self.subnet_record(sid)?),
            }],
        ))
    }

    /// Deletes a subnet that holds no address (held fixed addresses count: forget them first).
    pub fn delete_subnet(&mut self, name: &str) -> Result<Vec<Change>, Error> {
        let sid = self.subnet_id(name)?;
        let addresses = at(&mut self.ix.subnets, sid).allocs;
        if addresses > 0 {
            return Err(Error::ScopeInUse {
                scope: Scope::Subnet(name.to_string()),
                addresses,
            });
        }
        let mut changes = Vec::new();
        self.remove_subnet(sid, &mut changes)?;
        changes.push(Change::Delete {
            key: RecordKey::Subnet(name.to_string()),
        });
        Ok(changes)
    }

    /// The prefix of a tenant subnet.
    pub fn subnet_cidr(&self, name: &str) -> Result<IpNet, Error> {
        Ok(self.subnet_data(self.subnet_id(name)?)?.cidr)
    }

    /// Occupancy of a tenant subnet.
    pub fn subnet_usage(&self, name: &str) -> Result<Usage, Error> {
        self.usage(self.subnet_id(name)?)
    }

    /// Occupancy of a floating or anycast pool.
    pub fn pool_usage(&self, pool: &str) -> Result<Usage, Error> {
        self.usage(self.direct_subnet_id(pool)?)
    }

    pub(crate) fn usage(&self, sid: u32) -> Result<Usage, Error> {
        let s = self.subnet_data(sid)?;
        let sx = self
            .ix
            .subnets
            .get(sid as usize)
            .ok_or_else(|| corrupt("subnet index missing"))?;
        let hb = host_bits(&s.cidr);
        Ok(Usage {
            size: if hb >= 128 {
                u128::MAX
            } else {
                low_ones(hb) + 1
            },
            reserved: s.reserved().len() as u128,
            allocated: sx.allocs,
            held: sx.held,
            blocks: sx.blocks.len() as u64,
        })
    }

    /// Names of all pools, sorted.
    pub fn pools(&self) -> Vec<String> {
        let mut v: Vec<String> = self.ix.pool_by_name.keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    }

    /// Names of all tenant subnets, sorted.
    pub fn subnets(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .ix
            .subnet_by_name
            .keys()
            .map(|k| k.to_string())
            .collect();
        v.sort();
        v
    }
}
