//! Dumping and rebuilding from records (see [`crate::record`] for the layout).
//!
//! Loading is strict about records that contradict themselves or the pools and subnets (a
//! block that is not a block of its subnet, an address outside every subnet): those fail with
//! [`Error::InvalidRecord`]. It is lenient about conflicts *between* records that the checker
//! can report and repair (an address on an unregistered node, two addresses for one owner, an
//! address without its block record), so that a damaged store can still be loaded and fixed.

use std::collections::HashMap;

use crate::Ipam;
use crate::addr::Key;
use crate::check::Issue;
use crate::error::Error;
use crate::owners::OwnerIndex;
use crate::record::{AddressRecord, BlockRecord, Record};
use crate::state::{AllocData, BlockData, Index, NodeData, validate_owner};
use crate::types::{PoolSpec, SubnetCidr, SubnetSpec};

fn invalid(key: impl ToString, reason: impl ToString) -> Error {
    Error::InvalidRecord {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

impl Ipam {
    /// Every record of the current state, sorted by key.
    pub fn records(&self) -> Vec<Record> {
        let mut out = Vec::with_capacity(self.data.allocs.len() + self.data.blocks.len() + 16);
        for (pid, _) in self.data.pools.iter() {
            out.extend(self.pool_record(pid).ok().map(Record::Pool));
        }
        for (sid, s) in self.data.subnets.iter() {
            if !s.direct {
                out.extend(self.subnet_record(sid).ok().map(Record::Subnet));
            }
        }
        for (_, n) in self.data.nodes.iter() {
            if !n.ghost {
                out.push(Record::Node(crate::record::NodeRecord {
                    name: n.name.to_string(),
                }));
            }
        }
        for (bid, _) in self.data.blocks.iter() {
            out.extend(self.block_record(bid).ok().map(Record::Block));
        }
        for (aid, _) in self.data.allocs.iter() {
            out.extend(self.address_record(aid).ok().map(Record::Address));
        }
        out.sort_by_key(Record::key);
        out
    }

    /// Rebuilds an allocator from stored records, in any order. Run [`Ipam::check`] after
    /// loading a store that may be damaged.
    pub fn from_records(records: impl IntoIterator<Item = Record>) -> Result<Ipam, Error> {
        Ipam::from_records_with(records, OwnerIndex::default())
    }

    pub(crate) fn from_records_with(
        records: impl IntoIterator<Item = Record>,
        owners: OwnerIndex,
    ) -> Result<Ipam, Error> {
        let (mut pools, mut subnets, mut nodes, mut blocks, mut addrs) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for r in records {
            match r {
                Record::Pool(p) => pools.push(p),
                Record::Subnet(s) => subnets.push(s),
                Record::Node(n) => nodes.push(n),
                Record::Block(b) => blocks.push(b),
                Record::Address(a) => addrs.push(a),
            }
        }
        // Sorted so that ids, and hence every tie-break, do not depend on the store's order.
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        subnets.sort_by(|a, b| a.name.cmp(&b.name));
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        blocks.sort_by_key(|b| b.cidr);
        addrs.sort_by_key(|a| a.ip);

        let mut ipam = Ipam::new();
        ipam.ix.owners = owners.empty_like();
        // Pools, subnets and nodes go through the API, which validates them.
        for p in pools {
            let key = Record::Pool(p.clone()).key();
            let spec = PoolSpec {
                name: p.name,
                cidr: p.cidr,
                kind: p.kind,
                block_prefix_len: Some(p.block_prefix_len),
            };
            ipam.create_pool(&spec).map_err(|e| invalid(key, e))?;
        }
        for s in subnets {
            let key = Record::Subnet(s.clone()).key();
            let spec = SubnetSpec {
                name: s.name,
                tenant: s.tenant,
                pool: s.pool,
                cidr: SubnetCidr::Explicit(s.cidr),
                reserve: s.reserve,
                borrow: s.borrow,
            };
            ipam.create_subnet(&spec).map_err(|e| invalid(key, e))?;
        }
        for n in nodes {
            ipam.add_node(&n.name)
                .map_err(|e| invalid(Record::Node(n.clone()).key(), e))?;
        }
        // Blocks and addresses go straight into the data; the index is built once at the end.
        let mut loader = Loader {
            ipam: &mut ipam,
            blocks: HashMap::new(),
        };
        for b in blocks {
            loader.block(b)?;
        }
        for a in addrs {
            loader.address(a)?;
        }
        let (ix, _) = Index::build(&ipam.data, owners.empty_like());
        ipam.ix = ix;
        Ok(ipam)
    }
}

struct Loader<'a> {
    ipam: &'a mut Ipam,
    /// (subnet, block number) -> block id.
    blocks: HashMap<(u32, u128), u32>,
}

impl Loader<'_> {
    /// A node id by name, creating a ghost for names without a node record.
    fn node(&mut self, name: &str) -> Result<u32, Error> {
        if let Some(&id) = self.ipam.ix.node_by_name.get(name) {
            return Ok(id);
        }
        let id = self
            .ipam
            .data
            .nodes
            .insert(NodeData {
                name: name.into(),
                ghost: true,
            })
            .ok_or(Error::LimitExceeded { what: "nodes" })?;
        self.ipam.ix.node_by_name.insert(name.into(), id);
        Ok(id)
    }

    fn block(&mut self, b: BlockRecord) -> Result<(), Error> {
        let key = Record::Block(b.clone()).key();
        let sid = self
            .ipam
            .subnet_at(Key::of(b.cidr.network()))
            .ok_or_else(|| invalid(&key, "outside every subnet and floating/anycast pool"))?;
        let s = self.ipam.subnet_data(sid)?;
        let num = s.locate(b.cidr.network()).map(|(num, _)| num);
        let Some(num) = num.filter(|&num| s.block_net(num) == b.cidr) else {
            let block_len = s.family().bits() - s.block_bits as u8;
            return Err(invalid(
                &key,
                format!("not a /{block_len} block of {} ({})", s.scope(), s.cidr),
            ));
        };
        if self.blocks.contains_key(&(sid, num)) {
            return Err(invalid(&key, "duplicate record"));
        }
        let owner = match &b.node {
            Some(n) => Some(self.node(n)?),
            None => None,
        };
        let bid = self
            .ipam
            .data
            .blocks
            .insert(BlockData {
                subnet: sid,
                num,
                owner,
            })
            .ok_or(Error::LimitExceeded { what: "blocks" })?;
        self.blocks.insert((sid, num), bid);
        Ok(())
    }

    fn address(&mut self, a: AddressRecord) -> Result<(), Error> {
        let key = Record::Address(a.clone()).key();
        validate_owner(&a.owner.id).map_err(|e| invalid(&key, e))?;
        if a.held && (a.node.is_some() || !a.fixed) {
            return Err(invalid(&key, "held addresses must be fixed and on no node"));
        }
        let sid = self
            .ipam
            .subnet_at(Key::of(a.ip))
            .ok_or_else(|| invalid(&key, "outside every subnet and floating/anycast pool"))?;
        let s = self.ipam.subnet_data(sid)?;
        let (num, offset) = s
            .locate(a.ip)
            .ok_or_else(|| invalid(&key, "outside its subnet"))?;
        if s.direct && a.node.is_some() {
            return Err(invalid(&key, "floating/anycast addresses are on no node"));
        }
        let block_net = s.block_net(num);
        let bid = match self.blocks.get(&(sid, num)) {
            Some(&bid) => bid,
            None => {
                let bid = self
                    .ipam
                    .data
                    .blocks
                    .insert(BlockData {
                        subnet: sid,
                        num,
                        owner: None,
                    })
                    .ok_or(Error::LimitExceeded { what: "blocks" })?;
                self.blocks.insert((sid, num), bid);
                self.ipam
                    .load_issues
                    .push(Issue::MissingBlockRecord { block: block_net });
                bid
            }
        };
        let node = match &a.node {
            Some(n) => Some(self.node(n)?),
            None => None,
        };
        self.ipam
            .data
            .allocs
            .insert(AllocData {
                owner: a.owner.id.as_str().into(),
                subnet: sid,
                block: bid,
                offset,
                node,
                kind: a.owner.kind,
                fixed: a.fixed,
                held: a.held,
            })
            .ok_or(Error::LimitExceeded {
                what: "allocations",
            })?;
        Ok(())
    }
}
