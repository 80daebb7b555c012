//! Nodes: registration, removal, and the prefixes each node must advertise.

use ipnet::IpNet;

use crate::Ipam;
use crate::addr::{Family, aggregate, host_net, low_ones};
use crate::core::corrupt;
use crate::error::Error;
use crate::record::{Change, NodeRecord, Record, RecordKey};
use crate::state::{NodeData, RESERVED, at, validate_name};
use crate::types::AllocationInfo;

impl Ipam {
    /// Id of a registered node.
    pub(crate) fn node_id(&self, name: &str) -> Result<u32, Error> {
        self.ix
            .node_by_name
            .get(name)
            .copied()
            .filter(|&id| self.data.nodes.get(id).is_some_and(|n| !n.ghost))
            .ok_or_else(|| Error::UnknownNode {
                node: name.to_string(),
            })
    }

    /// Registers a node. Addresses can only be allocated on registered nodes.
    pub fn add_node(&mut self, name: &str) -> Result<Vec<Change>, Error> {
        validate_name("node", name)?;
        if let Some(&id) = self.ix.node_by_name.get(name) {
            // A node seen only in records (a ghost) becomes real again.
            match self.data.nodes.get_mut(id) {
                Some(n) if n.ghost => n.ghost = false,
                _ => {
                    return Err(Error::NodeExists {
                        node: name.to_string(),
                    });
                }
            }
        } else {
            let id = self
                .data
                .nodes
                .insert(NodeData {
                    name: name.into(),
                    ghost: false,
                })
                .ok_or(Error::LimitExceeded { what: "nodes" })?;
            self.ix.node_by_name.insert(name.into(), id);
            *at(&mut self.ix.nodes, id) = Default::default();
        }
        Ok(vec![Change::Put {
            record: Record::Node(NodeRecord {
                name: name.to_string(),
            }),
        }])
    }

    /// Removes a node that has no active address. Its empty blocks return to their subnets;
    /// blocks that still hold other nodes' borrowed or held fixed addresses become unowned and
    /// are freed when they empty.
    pub fn remove_node(&mut self, name: &str) -> Result<Vec<Change>, Error> {
        let nid = self.node_id(name)?;
        let nx = at(&mut self.ix.nodes, nid);
        if nx.active > 0 {
            return Err(Error::NodeInUse {
                node: name.to_string(),
                addresses: nx.active,
            });
        }
        let mut changes = self.drop_node_blocks(nid, false)?;
        self.data.nodes.remove(nid);
        self.ix.node_by_name.remove(name);
        self.ix.nodes[nid as usize] = Default::default();
        changes.push(Change::Delete {
            key: RecordKey::Node(name.to_string()),
        });
        Ok(changes)
    }

    /// Releases every active address of a node (for a node that is gone). Fixed addresses are
    /// held for their owners; the others are freed. The node stays registered.
    pub fn release_node(&mut self, name: &str) -> Result<Vec<Change>, Error> {
        let nid = self.node_id(name)?;
        let mut changes = Vec::new();
        for aid in self.node_allocs(nid)? {
            changes.extend(self.release_alloc(aid)?);
        }
        Ok(changes)
    }

    /// Returns a node's empty blocks to their subnets (their addresses stop being advertised).
    /// Blocks are otherwise kept when they empty, to avoid route churn.
    pub fn release_empty_blocks(&mut self, name: &str) -> Result<Vec<Change>, Error> {
        let nid = self.node_id(name)?;
        self.drop_node_blocks(nid, true)
    }

    /// Frees the node's empty blocks; disowns the others unless `only_empty`.
    fn drop_node_blocks(&mut self, nid: u32, only_empty: bool) -> Result<Vec<Change>, Error> {
        let mut blocks: Vec<u32> = at(&mut self.ix.nodes, nid)
            .subnets
            .values()
            .flat_map(|ns| ns.blocks.iter().map(|&(_, bid)| bid))
            .collect();
        blocks.sort_unstable();
        let mut changes = Vec::new();
        for bid in blocks {
            if self.block_ix(bid)?.allocs() == 0 {
                changes.push(self.free_block(bid)?);
            } else if !only_empty {
                self.set_block_owner(bid, None)?;
                changes.push(self.put_block(bid)?);
            }
        }
        Ok(changes)
    }

    /// Active allocations on a node: those in its own blocks plus its foreign ones. Costs
    /// O(addresses in the node's blocks), never a scan of all allocations.
    pub(crate) fn node_allocs(&self, nid: u32) -> Result<Vec<u32>, Error> {
        let nx = self
            .ix
            .nodes
            .get(nid as usize)
            .ok_or_else(|| corrupt("node index missing"))?;
        let mut out: Vec<u32> = nx.foreign.iter().copied().collect();
        for ns in nx.subnets.values() {
            for &(_, bid) in &ns.blocks {
                for &aid in self.block_ix(bid)?.slots.iter() {
                    if aid < RESERVED && self.alloc_data(aid)?.node == Some(nid) {
                        out.push(aid);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The node's active addresses (held ones excluded), sorted by address: what its agent
    /// puts on the host or routes to its endpoints.
    pub fn node_addresses(&self, node: &str) -> Result<Vec<AllocationInfo>, Error> {
        let nid = self.node_id(node)?;
        let mut out = Vec::new();
        for aid in self.node_allocs(nid)? {
            if self.alloc_data(aid)?.held {
                continue;
            }
            out.push(self.info(aid)?);
        }
        out.sort_by_key(|a| a.ip);
        Ok(out)
    }

    /// Prefixes the node must advertise: its blocks, aggregated into the fewest prefixes that
    /// cover exactly them, plus a /32 or /128 for each of its addresses outside its blocks.
    /// Sorted; this is also the prefix list its top-of-rack switch should accept.
    pub fn advertisements(&self, node: &str) -> Result<Vec<IpNet>, Error> {
        let nid = self.node_id(node)?;
        let nx = self
            .ix
            .nodes
            .get(nid as usize)
            .ok_or_else(|| corrupt("node index missing"))?;
        let mut ranges: Vec<(Family, u128, u128)> = Vec::new();
        for (&sid, ns) in &nx.subnets {
            let s = self.subnet_data(sid)?;
            for &(num, _) in &ns.blocks {
                let start = s.block_start(num);
                ranges.push((s.family(), start, start + low_ones(s.block_bits)));
            }
        }
        let mut out = aggregate(ranges);
        for &aid in &nx.foreign {
            out.push(host_net(self.alloc_ip(aid)?));
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The blocks a node owns, sorted.
    pub fn node_blocks(&self, node: &str) -> Result<Vec<IpNet>, Error> {
        let nid = self.node_id(node)?;
        let nx = self
            .ix
            .nodes
            .get(nid as usize)
            .ok_or_else(|| corrupt("node index missing"))?;
        let mut out = Vec::new();
        for ns in nx.subnets.values() {
            for &(_, bid) in &ns.blocks {
                out.push(self.block_net(bid)?);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Registered node names, sorted.
    pub fn nodes(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .data
            .nodes
            .iter()
            .filter(|(_, n)| !n.ghost)
            .map(|(_, n)| n.name.to_string())
            .collect();
        v.sort();
        v
    }
}
