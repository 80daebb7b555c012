//! The topology file: spines, racks with a pair of leaves each, hosts dual-homed to their
//! rack's leaves, switch and host software, the ASN plan and the demo tenant's addresses.
//! Parsed with serde (unknown fields are errors), then [`Topology::validate`] names the field
//! at fault.
//!
//! ```yaml
//! name: default
//! switch_software: frr          # default for every switch: frr | bird | clos (not bird
//!                               # on both spines and leaves: BIRD cannot open sessions)
//! host_software: agent          # default for every host: agent | frr
//! spines: [{name: s1}, {name: s2}]
//! racks:
//!   - name: r1
//!     leaves: [{name: r1-l1}, {name: r1-l2, software: frr}]
//!     hosts: [{name: r1-h1}, {name: r1-h2}]
//! links: unnumbered             # the only kind so far
//! asn_plan: {spine_asn: 4200000000, rack_asn_first: 4200000001, rack_asn_last: 4200009999,
//!            host_asn_first: 4200010000, host_asn_last: 4294967294}
//! pool: 10.0.0.0/16             # the demo tenant pool, and the site's address range
//! subnet: 10.0.0.0/24           # the demo subnet, spanning every rack
//! bfd: {interval_ms: 300, multiplier: 3}   # on every session; null: off
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use clos_model::{AsnPlan, BfdTimers};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Software of a switch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SwitchSoftware {
    #[default]
    Frr,
    Bird,
    /// `clos bgp run`.
    Clos,
}

impl SwitchSoftware {
    /// The name in topology files and in the controller's `?software=`.
    pub fn name(self) -> &'static str {
        match self {
            SwitchSoftware::Frr => "frr",
            SwitchSoftware::Bird => "bird",
            SwitchSoftware::Clos => "clos",
        }
    }
}

/// Software of a host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostSoftware {
    /// `clos agent`.
    #[default]
    Agent,
    /// FRR (zebra and bgpd) announcing the host's assignment, routing on the host the way
    /// the Rakuten talk does it without Clos.
    Frr,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// IPv6 link-local addresses only; BGP finds its neighbour by router advertisements.
    #[default]
    Unnumbered,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchSpec {
    pub name: String,
    /// Overrides `switch_software`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software: Option<SwitchSoftware>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    pub name: String,
    /// Overrides `host_software`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software: Option<HostSoftware>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RackSpec {
    pub name: String,
    /// The rack's ASN; from the plan's rack range when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// Exactly two leaves.
    pub leaves: Vec<SwitchSpec>,
    pub hosts: Vec<HostSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// The lab's name: its namespaces are `closlab-<name>-<node>`.
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default)]
    pub switch_software: SwitchSoftware,
    #[serde(default)]
    pub host_software: HostSoftware,
    pub spines: Vec<SwitchSpec>,
    pub racks: Vec<RackSpec>,
    #[serde(default)]
    pub links: LinkKind,
    #[serde(default)]
    pub asn_plan: AsnPlan,
    #[serde(default = "default_pool")]
    pub pool: IpNet,
    #[serde(default = "default_subnet")]
    pub subnet: IpNet,
    /// BFD on every BGP session, switches and hosts alike (the site's `bfd`); `bfd: null`
    /// turns it off.
    #[serde(default = "default_bfd")]
    pub bfd: Option<BfdTimers>,
}

/// FRR's default timers: sub-second detection that a loaded two-core lab sustains.
fn default_bfd() -> Option<BfdTimers> {
    Some(BfdTimers {
        interval_ms: 300,
        multiplier: 3,
    })
}

fn default_name() -> String {
    "default".into()
}
fn default_pool() -> IpNet {
    "10.0.0.0/16".parse().expect("valid")
}
fn default_subnet() -> IpNet {
    "10.0.0.0/24".parse().expect("valid")
}

/// Node names become namespace names, FRR hostnames and parts of route-map names.
const MAX_NAME: usize = 24;
/// At most this many hosts: they share the management /24.
pub const MAX_HOSTS: usize = 200;

fn check_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::topology(
            field,
            format!("{name:?}: use 1-{MAX_NAME} characters from a-z 0-9 -, not starting with -"),
        ))
    }
}

impl Default for Topology {
    /// 2 spines, 2 racks of 2 leaves, 2 hosts per rack.
    fn default() -> Self {
        let sw = |n: &str| SwitchSpec {
            name: n.into(),
            software: None,
        };
        let host = |n: String| HostSpec {
            name: n,
            software: None,
        };
        Topology {
            name: default_name(),
            switch_software: SwitchSoftware::Frr,
            host_software: HostSoftware::Agent,
            spines: vec![sw("s1"), sw("s2")],
            racks: (1..=2)
                .map(|r| RackSpec {
                    name: format!("r{r}"),
                    asn: None,
                    leaves: vec![sw(&format!("r{r}-l1")), sw(&format!("r{r}-l2"))],
                    hosts: (1..=2).map(|h| host(format!("r{r}-h{h}"))).collect(),
                })
                .collect(),
            links: LinkKind::Unnumbered,
            asn_plan: AsnPlan::default(),
            pool: default_pool(),
            subnet: default_subnet(),
            bfd: default_bfd(),
        }
    }
}

impl Topology {
    /// Reads and validates a topology file.
    pub fn load(path: &Path) -> Result<Topology> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        Topology::parse(&text).map_err(|e| match e {
            Error::Topology { field, problem } => Error::Topology {
                field: format!("{}: {field}", path.display()),
                problem,
            },
            other => other,
        })
    }

    pub fn parse(text: &str) -> Result<Topology> {
        let t: Topology = serde_yaml_ng::from_str(text).map_err(|e| {
            let msg = e.to_string();
            // serde names the field at fault in its message ("unknown field `x`", "racks[0]:
            // missing field `hosts`"); keep it whole.
            Error::topology("topology", msg)
        })?;
        t.validate()?;
        Ok(t)
    }

    /// Checks everything serde cannot, naming the field at fault.
    pub fn validate(&self) -> Result<()> {
        check_name("name", &self.name)?;
        if self.name.len() > 12 {
            return Err(Error::topology("name", "use at most 12 characters"));
        }
        if self.spines.is_empty() {
            return Err(Error::topology("spines", "give at least one spine"));
        }
        if self.racks.is_empty() {
            return Err(Error::topology("racks", "give at least one rack"));
        }
        let mut seen = BTreeSet::new();
        let mut unique = |field: String, name: &str| -> Result<()> {
            check_name(&field, name)?;
            if name == "mgmt" {
                return Err(Error::topology(field, "mgmt is the management namespace"));
            }
            if !seen.insert(name.to_string()) {
                return Err(Error::topology(field, format!("{name} is used twice")));
            }
            Ok(())
        };
        for (i, s) in self.spines.iter().enumerate() {
            unique(format!("spines[{i}].name"), &s.name)?;
        }
        let mut hosts = 0;
        for (i, r) in self.racks.iter().enumerate() {
            unique(format!("racks[{i}].name"), &r.name)?;
            if r.leaves.len() != 2 {
                return Err(Error::topology(
                    format!("racks[{i}].leaves"),
                    format!(
                        "{} leaves: a rack has exactly two (hosts are dual-homed)",
                        r.leaves.len()
                    ),
                ));
            }
            for (j, l) in r.leaves.iter().enumerate() {
                unique(format!("racks[{i}].leaves[{j}].name"), &l.name)?;
            }
            for (j, h) in r.hosts.iter().enumerate() {
                unique(format!("racks[{i}].hosts[{j}].name"), &h.name)?;
            }
            if let Some(asn) = r.asn {
                clos_model::validate_asn(&format!("racks[{i}].asn"), asn)
                    .map_err(|e| Error::topology(format!("racks[{i}].asn"), e.to_string()))?;
            }
            hosts += r.hosts.len();
        }
        if hosts == 0 {
            return Err(Error::topology("racks", "give at least one host"));
        }
        if hosts > MAX_HOSTS {
            return Err(Error::topology(
                "racks",
                format!("{hosts} hosts: at most {MAX_HOSTS}"),
            ));
        }
        self.asn_plan
            .validate("asn_plan")
            .map_err(|e| Error::topology("asn_plan", e.to_string()))?;
        for (field, net) in [("pool", self.pool), ("subnet", self.subnet)] {
            if net.trunc() != net {
                return Err(Error::topology(
                    field,
                    format!("{net} has host bits set: write {}", net.trunc()),
                ));
            }
            if !matches!(net, IpNet::V4(_)) {
                return Err(Error::topology(field, "use an IPv4 prefix"));
            }
        }
        if !self.pool.contains(&self.subnet) {
            return Err(Error::topology(
                "subnet",
                format!("{} is outside pool {}", self.subnet, self.pool),
            ));
        }
        let mgmt: IpNet = crate::plan::MGMT_NET.parse().expect("valid");
        if self.pool.contains(&mgmt) || mgmt.contains(&self.pool) {
            return Err(Error::topology(
                "pool",
                format!("{} overlaps the management network {mgmt}", self.pool),
            ));
        }
        // Every spine faces every leaf. BIRD only accepts unnumbered sessions (it has no
        // neighbour discovery to find the other end), so two BIRDs facing each other would
        // both wait forever.
        let switches = self.switches();
        let bird_spine = switches
            .iter()
            .take(self.spines.len())
            .find(|s| s.1 == SwitchSoftware::Bird);
        let bird_leaf = switches
            .iter()
            .skip(self.spines.len())
            .find(|s| s.1 == SwitchSoftware::Bird);
        if let (Some(spine), Some(leaf)) = (bird_spine, bird_leaf) {
            return Err(Error::topology(
                leaf.2.clone(),
                format!(
                    "leaf {} and spine {} both run bird, which only accepts unnumbered sessions and cannot open them: run one of the two with frr or clos",
                    leaf.0, spine.0
                ),
            ));
        }
        Ok(())
    }

    /// Every switch: (name, software, field).
    fn switches(&self) -> Vec<(String, SwitchSoftware, String)> {
        let mut out = Vec::new();
        for (i, s) in self.spines.iter().enumerate() {
            out.push((
                s.name.clone(),
                s.software.unwrap_or(self.switch_software),
                format!("spines[{i}].software"),
            ));
        }
        for (i, r) in self.racks.iter().enumerate() {
            for (j, l) in r.leaves.iter().enumerate() {
                out.push((
                    l.name.clone(),
                    l.software.unwrap_or(self.switch_software),
                    format!("racks[{i}].leaves[{j}].software"),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (String, String) {
        match Topology::parse(text) {
            Err(Error::Topology { field, problem }) => (field, problem),
            other => panic!("expected a topology error, got {other:?}"),
        }
    }

    #[test]
    fn default_is_two_spines_two_racks_two_hosts() {
        let t = Topology::default();
        t.validate().unwrap();
        assert_eq!(t.spines.len(), 2);
        assert_eq!(t.racks.len(), 2);
        assert!(
            t.racks
                .iter()
                .all(|r| r.leaves.len() == 2 && r.hosts.len() == 2)
        );
        // It round-trips through YAML.
        let yaml = serde_yaml_ng::to_string(&t).unwrap();
        assert_eq!(Topology::parse(&yaml).unwrap(), t);
    }

    #[test]
    fn minimal_file_takes_defaults() {
        let t = Topology::parse(
            "spines: [{name: s1}]\nracks:\n  - name: r1\n    leaves: [{name: a}, {name: b}]\n    hosts: [{name: h}]\n",
        )
        .unwrap();
        assert_eq!(t.name, "default");
        assert_eq!(t.switch_software, SwitchSoftware::Frr);
        assert_eq!(t.host_software, HostSoftware::Agent);
        assert_eq!(t.pool, default_pool());
    }

    #[test]
    fn errors_name_the_field() {
        let base = "spines: [{name: s1}]\nracks:\n  - name: r1\n    leaves: [{name: a}, {name: b}]\n    hosts: [{name: h}]\n";
        let (f, p) = err(&format!("{base}colour: red\n"));
        assert!(p.contains("unknown field `colour`"), "{f}: {p}");
        let (f, _) = err(
            "spines: [{name: s1}]\nracks:\n  - name: r1\n    leaves: [{name: a}]\n    hosts: [{name: h}]\n",
        );
        assert_eq!(f, "racks[0].leaves");
        let (f, _) = err(
            "spines: [{name: s1}]\nracks:\n  - name: r1\n    leaves: [{name: a}, {name: s1}]\n    hosts: [{name: h}]\n",
        );
        assert_eq!(f, "racks[0].leaves[1].name");
        let (f, _) = err(
            "spines: [{name: S1}]\nracks:\n  - name: r1\n    leaves: [{name: a}, {name: b}]\n    hosts: [{name: h}]\n",
        );
        assert_eq!(f, "spines[0].name");
        let (f, _) = err(&format!("{base}subnet: 10.9.0.0/24\n"));
        assert_eq!(f, "subnet");
        let (f, _) = err(&format!(
            "{base}pool: 10.255.0.0/16\nsubnet: 10.255.1.0/24\n"
        ));
        assert_eq!(f, "pool");
        let (f, _) = err(&format!("{base}switch_software: junos\n"));
        assert_eq!(f, "topology");
        // BIRD leaves under FRR spines, or BIRD spines over FRR leaves, but not both.
        let (f, p) = err(
            "spines: [{name: s1}, {name: s2, software: bird}]\nracks:\n  - name: r1\n    leaves: [{name: a}, {name: b, software: bird}]\n    hosts: [{name: h}]\n",
        );
        assert_eq!(f, "racks[0].leaves[1].software");
        assert!(p.contains("leaf b and spine s2 both run bird"), "{p}");
        Topology::parse(
            "switch_software: bird\nspines: [{name: s1, software: frr}]\nracks:\n  - name: r1\n    leaves: [{name: a}, {name: b}]\n    hosts: [{name: h}]\n",
        )
        .unwrap();
        let (f, _) = err("spines: []\nracks: []\n");
        assert_eq!(f, "spines");
        let (f, _) = err(&format!(
            "{base}asn_plan: {{spine_asn: 0, rack_asn_first: 1, rack_asn_last: 2, host_asn_first: 4200000000, host_asn_last: 4200000010}}\n"
        ));
        assert_eq!(f, "asn_plan");
    }
}
