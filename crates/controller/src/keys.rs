//! The store key layout. Every key the controller writes is built here.
//!
//! | key                                  | value                                  | writer  |
//! |--------------------------------------|----------------------------------------|---------|
//! | `site`                               | [`clos_model::Site`]                   | handler |
//! | `racks/<name>`, `switches/<name>`    | [`clos_model::Rack`], `Switch`         | handler |
//! | `tenants/<name>`                     | [`clos_model::Tenant`]                 | handler (delete: writer) |
//! | `nodes/<name>`                       | [`clos_model::Node`] (without status)  | writer  |
//! | `node-status/<name>`                 | [`clos_model::AgentStatus`]            | handler |
//! | `desired/<name>`                     | [`clos_model::DesiredState`]           | writer  |
//! | `tokens/<sha256 of secret, hex>`     | [`clos_model::Token`]                  | handler |
//! | `meta/bootstrap`                     | empty: the admin token was issued      | startup |
//! | `ipam/guard`                         | empty; every IPAM write bumps it (CAS) | writer  |
//! | `ipam/pools/<name>` ...              | [`clos_ipam::Record`] as JSON          | writer  |
//! | `ipam/addresses/<4|6>/<hex address>` | ditto; fixed-width hex so that a       | writer  |
//! |                                      | subnet's addresses are one key range   |         |
//! | `ipam/blocks/<4|6>/<hex start>/<len>`| ditto                                  | writer  |
//!
//! A resource's `resource_version` is the `mod_revision` of its key.

use std::net::IpAddr;

use clos_ipam::RecordKey;
use ipnet::IpNet;

pub const SITE: &str = "site";
pub const BOOTSTRAP: &str = "meta/bootstrap";
pub const IPAM: &str = "ipam/";
pub const IPAM_GUARD: &str = "ipam/guard";
pub const POOLS: &str = "ipam/pools/";
pub const SUBNETS: &str = "ipam/subnets/";
pub const ADDRESSES: &str = "ipam/addresses/";
pub const NODES: &str = "nodes/";
pub const NODE_STATUS: &str = "node-status/";
pub const DESIRED: &str = "desired/";
pub const TOKENS: &str = "tokens/";

pub fn item(prefix: &str, name: &str) -> String {
    format!("{prefix}{name}")
}

/// Prefix of a plain resource collection (`racks/`).
pub fn collection(plural: &str) -> String {
    format!("{plural}/")
}

fn hex_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => format!("4/{:08x}", u32::from(a)),
        IpAddr::V6(a) => format!("6/{:032x}", u128::from(a)),
    }
}

pub fn address(ip: IpAddr) -> String {
    format!("{ADDRESSES}{}", hex_ip(ip))
}

/// The key range `[start, end)` holding the addresses of `net`.
pub fn address_range(net: &IpNet) -> (String, String) {
    let start = address(net.network());
    let mut end = address(net.broadcast());
    end.push('\0');
    (start, end)
}

pub fn record(key: &RecordKey) -> String {
    match key {
        RecordKey::Pool(n) => format!("{POOLS}{n}"),
        RecordKey::Subnet(n) => format!("{SUBNETS}{n}"),
        RecordKey::Node(n) => format!("ipam/nodes/{n}"),
        RecordKey::Block(net) => {
            format!("ipam/blocks/{}/{}", hex_ip(net.network()), net.prefix_len())
        }
        RecordKey::Address(ip) => address(*ip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_keys_sort_numerically() {
        let a = address("10.0.0.5".parse().unwrap());
        let b = address("10.0.0.10".parse().unwrap());
        assert!(a < b);
        assert_eq!(a, "ipam/addresses/4/0a000005");
        let (s, e) = address_range(&"10.0.0.0/28".parse().unwrap());
        assert!(s <= a && b < e);
        assert!(address("10.0.0.16".parse().unwrap()) >= e);
        assert_eq!(
            record(&RecordKey::Block("fd00::40/122".parse().unwrap())),
            "ipam/blocks/6/fd000000000000000000000000000040/122"
        );
    }
}
