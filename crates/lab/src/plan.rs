//! The concrete layout of a topology: namespace names, links with their interface names,
//! management and loopback addresses. A pure function of the topology, so `up`, `status`,
//! `check` and `down` all agree on it.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::topology::{HostSoftware, SwitchSoftware, Topology};

/// Prefix of every lab namespace: `closlab-<lab>-<node>`.
pub const NETNS_PREFIX: &str = "closlab-";
/// The management network: a bridge in the `mgmt` namespace, one veth per host.
pub const MGMT_NET: &str = "10.255.0.0/24";
pub const MGMT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 1);
pub const CONTROLLER_PORT: u16 = 8080;
/// Switch loopbacks (router IDs): `10.254.0.<n>`.
const LOOPBACK_BASE: [u8; 3] = [10, 254, 0];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Spine,
    Leaf,
    Host,
    Mgmt,
}

/// A namespace of the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePlan {
    /// The node's name in the topology (`r1-h1`), or `mgmt`.
    pub name: String,
    pub netns: String,
    pub role: Role,
    pub rack: Option<String>,
    pub switch_software: Option<SwitchSoftware>,
    pub host_software: Option<HostSoftware>,
    /// A switch's loopback (router id), a host's management address.
    pub address: Option<Ipv4Addr>,
    /// A switch's ports, in order: (port, peer node, peer port).
    pub ports: Vec<(String, String, String)>,
}

/// One veth pair: `a`'s `a_if` to `b`'s `b_if`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkPlan {
    pub a: String,
    pub a_if: String,
    pub b: String,
    pub b_if: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub lab: String,
    pub nodes: Vec<NodePlan>,
    /// Fabric links (spine-leaf, leaf-host).
    pub links: Vec<LinkPlan>,
}

impl Plan {
    pub fn of(t: &Topology) -> Plan {
        let ns = |n: &str| format!("{NETNS_PREFIX}{}-{n}", t.name);
        let mut nodes = vec![NodePlan {
            name: "mgmt".into(),
            netns: ns("mgmt"),
            role: Role::Mgmt,
            rack: None,
            switch_software: None,
            host_software: None,
            address: Some(MGMT_ADDR),
            ports: vec![],
        }];
        let mut links = Vec::new();
        let mut loopback = 0u8;
        let mut next_loopback = || {
            loopback += 1;
            Some(Ipv4Addr::new(
                LOOPBACK_BASE[0],
                LOOPBACK_BASE[1],
                LOOPBACK_BASE[2],
                loopback,
            ))
        };
        for s in &t.spines {
            nodes.push(NodePlan {
                name: s.name.clone(),
                netns: ns(&s.name),
                role: Role::Spine,
                rack: None,
                switch_software: Some(s.software.unwrap_or(t.switch_software)),
                host_software: None,
                address: next_loopback(),
                ports: vec![],
            });
        }
        let spines = t.spines.len();
        let mut host_index = 0u8;
        let mut leaf_index = 0usize;
        for r in &t.racks {
            for l in &r.leaves {
                leaf_index += 1;
                nodes.push(NodePlan {
                    name: l.name.clone(),
                    netns: ns(&l.name),
                    role: Role::Leaf,
                    rack: Some(r.name.clone()),
                    switch_software: Some(l.software.unwrap_or(t.switch_software)),
                    host_software: None,
                    address: next_loopback(),
                    ports: vec![],
                });
                // Leaf port swp<i> to spine i; spine port swp<k> to leaf k.
                for (i, s) in t.spines.iter().enumerate() {
                    links.push(LinkPlan {
                        a: s.name.clone(),
                        a_if: format!("swp{leaf_index}"),
                        b: l.name.clone(),
                        b_if: format!("swp{}", i + 1),
                    });
                }
            }
            for (j, h) in r.hosts.iter().enumerate() {
                host_index += 1;
                nodes.push(NodePlan {
                    name: h.name.clone(),
                    netns: ns(&h.name),
                    role: Role::Host,
                    rack: Some(r.name.clone()),
                    switch_software: None,
                    host_software: Some(h.software.unwrap_or(t.host_software)),
                    address: Some(Ipv4Addr::new(10, 255, 0, 9 + host_index)),
                    ports: vec![],
                });
                // Host eth0 to the first leaf, eth1 to the second; leaf port swp<spines+j+1>.
                for (k, l) in r.leaves.iter().enumerate() {
                    links.push(LinkPlan {
                        a: l.name.clone(),
                        a_if: format!("swp{}", spines + j + 1),
                        b: h.name.clone(),
                        b_if: format!("eth{k}"),
                    });
                }
            }
        }
        for link in &links {
            for n in &mut nodes {
                if n.name == link.a {
                    n.ports
                        .push((link.a_if.clone(), link.b.clone(), link.b_if.clone()));
                } else if n.name == link.b {
                    n.ports
                        .push((link.b_if.clone(), link.a.clone(), link.a_if.clone()));
                }
            }
        }
        for n in &mut nodes {
            n.ports.sort_by_key(|p| port_order(&p.0));
        }
        Plan {
            lab: t.name.clone(),
            nodes,
            links,
        }
    }

    pub fn node(&self, name: &str) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn hosts(&self) -> impl Iterator<Item = &NodePlan> {
        self.nodes.iter().filter(|n| n.role == Role::Host)
    }

    pub fn switches(&self) -> impl Iterator<Item = &NodePlan> {
        self.nodes
            .iter()
            .filter(|n| matches!(n.role, Role::Spine | Role::Leaf))
    }

    pub fn mgmt(&self) -> &NodePlan {
        &self.nodes[0]
    }

    /// The namespace prefix of this lab: everything starting with it belongs to the lab.
    pub fn netns_prefix(&self) -> String {
        netns_prefix(&self.lab)
    }

    pub fn controller_url(&self) -> String {
        format!("http://{MGMT_ADDR}:{CONTROLLER_PORT}")
    }
}

pub fn netns_prefix(lab: &str) -> String {
    format!("{NETNS_PREFIX}{lab}-")
}

/// `swp10` after `swp9`; `eth0` before `eth1`.
fn port_order(name: &str) -> (String, u32) {
    let digits = name.trim_start_matches(|c: char| !c.is_ascii_digit());
    (
        name[..name.len() - digits.len()].to_string(),
        digits.parse().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plan() {
        let p = Plan::of(&Topology::default());
        // mgmt + 2 spines + 4 leaves + 4 hosts.
        assert_eq!(p.nodes.len(), 11);
        // 2x4 spine-leaf links + 4 hosts x 2 uplinks.
        assert_eq!(p.links.len(), 16);
        let s1 = p.node("s1").unwrap();
        assert_eq!(s1.netns, "closlab-default-s1");
        let ports: Vec<_> = s1
            .ports
            .iter()
            .map(|p| (p.0.as_str(), p.1.as_str()))
            .collect();
        assert_eq!(
            ports,
            [
                ("swp1", "r1-l1"),
                ("swp2", "r1-l2"),
                ("swp3", "r2-l1"),
                ("swp4", "r2-l2")
            ]
        );
        let l = p.node("r2-l2").unwrap();
        let ports: Vec<_> = l
            .ports
            .iter()
            .map(|p| (p.0.as_str(), p.1.as_str(), p.2.as_str()))
            .collect();
        assert_eq!(
            ports,
            [
                ("swp1", "s1", "swp4"),
                ("swp2", "s2", "swp4"),
                ("swp3", "r2-h1", "eth1"),
                ("swp4", "r2-h2", "eth1")
            ]
        );
        let h = p.node("r1-h2").unwrap();
        assert_eq!(h.address, Some(Ipv4Addr::new(10, 255, 0, 11)));
        let ports: Vec<_> = h
            .ports
            .iter()
            .map(|p| (p.0.as_str(), p.1.as_str()))
            .collect();
        assert_eq!(ports, [("eth0", "r1-l1"), ("eth1", "r1-l2")]);
        // Loopbacks are unique.
        let mut lo: Vec<_> = p.switches().map(|s| s.address.unwrap()).collect();
        lo.sort();
        lo.dedup();
        assert_eq!(lo.len(), 6);
    }
}
