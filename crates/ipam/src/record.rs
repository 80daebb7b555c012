//! Persistence records.
//!
//! The allocator's durable state is a set of small records, one key each:
//!
//! | key                     | record            | written when                                  |
//! |-------------------------|-------------------|-----------------------------------------------|
//! | `pools/<name>`          | [`PoolRecord`]    | pool created / deleted                        |
//! | `subnets/<name>`        | [`SubnetRecord`]  | subnet created / deleted                      |
//! | `nodes/<name>`          | [`NodeRecord`]    | node registered / removed                     |
//! | `blocks/<cidr>`         | [`BlockRecord`]   | block claimed, disowned or freed              |
//! | `addresses/<ip>`        | [`AddressRecord`] | address allocated, moved, held or freed       |
//!
//! Every mutating call returns the [`Change`]s it made, in order; the controller writes them in
//! one compare-and-swap transaction (a new address key with "create if absent", which is also
//! what makes two racing controllers unable to hand out one address twice). The in-memory state
//! is already changed when the call returns, so if the transaction fails the controller must
//! not keep it: it rebuilds from the store (or from a clone taken before the call) and retries.
//! Bitmaps, free lists and every other index are derived and never stored:
//! [`crate::Ipam::from_records`] rebuilds them from the records in any order (about 0.6 s for
//! 1M addresses), and [`crate::Ipam::records`] dumps the full set.
//!
//! Records carry names and addresses, never internal ids, and no derived facts: the subnet of an
//! address or block follows from its address, since subnets never overlap.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::types::{BorrowPolicy, Owner, PoolKind, Reserve};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolRecord {
    pub name: String,
    pub cidr: IpNet,
    pub kind: PoolKind,
    pub block_prefix_len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetRecord {
    pub name: String,
    pub tenant: String,
    pub pool: String,
    pub cidr: IpNet,
    #[serde(default)]
    pub reserve: Reserve,
    #[serde(default)]
    pub borrow: BorrowPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRecord {
    pub name: String,
}

/// A block: a prefix of a subnet (or direct pool), owned by a node or by nobody (a node was
/// removed while others still borrowed from it, or a floating/anycast pool block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockRecord {
    pub cidr: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// One allocated address. `held` means released but kept for its fixed owner; then `node` is
/// `None` and `fixed` is true.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressRecord {
    pub ip: IpAddr,
    pub owner: Owner,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default)]
    pub fixed: bool,
    #[serde(default)]
    pub held: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Pool(PoolRecord),
    Subnet(SubnetRecord),
    Node(NodeRecord),
    Block(BlockRecord),
    Address(AddressRecord),
}

impl Record {
    pub fn key(&self) -> RecordKey {
        match self {
            Record::Pool(r) => RecordKey::Pool(r.name.clone()),
            Record::Subnet(r) => RecordKey::Subnet(r.name.clone()),
            Record::Node(r) => RecordKey::Node(r.name.clone()),
            Record::Block(r) => RecordKey::Block(r.cidr),
            Record::Address(r) => RecordKey::Address(r.ip),
        }
    }
}

/// The key of a record. [`RecordKey::path`] (also `Display`) is the string to store it under,
/// relative to the controller's IPAM prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKey {
    Pool(String),
    Subnet(String),
    Node(String),
    Block(IpNet),
    Address(IpAddr),
}

impl RecordKey {
    pub fn path(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordKey::Pool(n) => write!(f, "pools/{n}"),
            RecordKey::Subnet(n) => write!(f, "subnets/{n}"),
            RecordKey::Node(n) => write!(f, "nodes/{n}"),
            RecordKey::Block(c) => write!(f, "blocks/{c}"),
            RecordKey::Address(a) => write!(f, "addresses/{a}"),
        }
    }
}

/// One write to the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// Create or overwrite the record under its key.
    Put { record: Record },
    /// Delete the record under this key.
    Delete { key: RecordKey },
}

impl Change {
    pub fn key(&self) -> RecordKey {
        match self {
            Change::Put { record } => record.key(),
            Change::Delete { key } => key.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::OwnerKind;

    #[test]
    fn serde_shape_is_stable() {
        let c = Change::Put {
            record: Record::Address(AddressRecord {
                ip: "10.0.0.5".parse().unwrap(),
                owner: Owner::new(OwnerKind::Vm, "vm-1"),
                node: Some("n1".into()),
                fixed: false,
                held: false,
            }),
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            json,
            r#"{"op":"put","record":{"type":"address","ip":"10.0.0.5","owner":{"kind":"vm","id":"vm-1"},"node":"n1","fixed":false,"held":false}}"#
        );
        assert_eq!(serde_json::from_str::<Change>(&json).unwrap(), c);
        assert_eq!(c.key().path(), "addresses/10.0.0.5");
        let d = Change::Delete {
            key: RecordKey::Block("10.0.0.0/26".parse().unwrap()),
        };
        assert_eq!(d.key().path(), "blocks/10.0.0.0/26");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Change>(&json).unwrap(), d);
    }
}
