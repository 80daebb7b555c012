//! The one error type of this crate. Every variant names the objects involved and every message
//! ends with what to do next, because the API passes these messages to users as they are.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::types::PoolKind;

/// Where an address lives: a tenant subnet, or a floating/anycast pool (which has no subnets).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Subnet(String),
    Pool(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Subnet(s) => write!(f, "subnet {s}"),
            Scope::Pool(p) => write!(f, "pool {p}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid {what} name {name:?}: use 1-253 characters from A-Z a-z 0-9 . _ : -")]
    InvalidName { what: &'static str, name: String },

    #[error("invalid owner id {owner:?}: use 1-1024 characters")]
    InvalidOwner { owner: String },

    #[error("{what} {cidr} has host bits set: write it as {canonical}")]
    NotCanonical {
        what: &'static str,
        cidr: IpNet,
        canonical: IpNet,
    },

    #[error("pool {pool} already exists: pick another name or delete it first")]
    PoolExists { pool: String },

    #[error("no pool named {pool}: list the pools, or create it first")]
    UnknownPool { pool: String },

    #[error(
        "pool {pool} ({cidr}) overlaps pool {other} ({other_cidr}): pools must be disjoint, pick another range"
    )]
    PoolOverlap {
        pool: String,
        cidr: IpNet,
        other: String,
        other_cidr: IpNet,
    },

    #[error(
        "block size /{block_prefix_len} does not fit pool {pool} ({cidr}): use a length from /{min} to /{max}"
    )]
    InvalidBlockSize {
        pool: String,
        cidr: IpNet,
        block_prefix_len: u8,
        min: u8,
        max: u8,
    },

    #[error(
        "pool {pool} still holds {subnets} subnet(s) and {addresses} address(es): delete or release them first"
    )]
    PoolInUse {
        pool: String,
        subnets: usize,
        addresses: u64,
    },

    #[error(
        "pool {pool} is a {kind:?} pool and cannot be used to {operation}: use a pool of the right kind"
    )]
    WrongPoolKind {
        pool: String,
        kind: PoolKind,
        operation: &'static str,
    },

    #[error("subnet {subnet} already exists: pick another name or delete it first")]
    SubnetExists { subnet: String },

    #[error("no subnet named {subnet}: list the subnets, or create it first")]
    UnknownSubnet { subnet: String },

    #[error(
        "subnet {subnet} ({cidr}) is not inside pool {pool} ({pool_cidr}): pick a range inside the pool"
    )]
    SubnetOutsidePool {
        subnet: String,
        cidr: IpNet,
        pool: String,
        pool_cidr: IpNet,
    },

    #[error(
        "subnet {subnet} ({cidr}) overlaps subnet {other} ({other_cidr}): pick a free range, or ask for the next free prefix"
    )]
    SubnetOverlap {
        subnet: String,
        cidr: IpNet,
        other: String,
        other_cidr: IpNet,
    },

    #[error(
        "prefix length /{prefix_len} does not fit pool {pool} ({pool_cidr}): use a length from /{min} to /{max}"
    )]
    InvalidPrefixLen {
        pool: String,
        pool_cidr: IpNet,
        prefix_len: u8,
        min: u8,
        max: u8,
    },

    #[error(
        "pool {pool} ({cidr}) has no free /{prefix_len} left: delete unused subnets, ask for a longer prefix, or add a pool"
    )]
    PoolExhausted {
        pool: String,
        cidr: IpNet,
        prefix_len: u8,
    },

    #[error(
        "reserved gateway {ip} is outside subnet {subnet} ({cidr}): pick an address inside the subnet"
    )]
    InvalidGateway {
        subnet: String,
        cidr: IpNet,
        ip: IpAddr,
    },

    #[error(
        "{scope} still holds {addresses} address(es): release them and forget fixed ones first"
    )]
    ScopeInUse { scope: Scope, addresses: u64 },

    #[error("node {node} already exists")]
    NodeExists { node: String },

    #[error("no node named {node}: register the node first")]
    UnknownNode { node: String },

    #[error(
        "node {node} still holds {addresses} address(es): release them, or release the whole node if it is gone"
    )]
    NodeInUse { node: String, addresses: u64 },

    #[error(
        "{scope} ({cidr}) is full: {allocated} address(es) allocated, {held} of them held for fixed owners; release unused addresses, forget unused fixed addresses, or create another subnet"
    )]
    Exhausted {
        scope: Scope,
        cidr: IpNet,
        allocated: u64,
        held: u64,
    },

    #[error(
        "node {node} has no free address in its blocks of {scope} ({cidr}), no free block is left, and borrowing is disabled: release empty blocks of other nodes, allow borrowing as a last resort, or create another subnet"
    )]
    NoFreeBlock {
        scope: Scope,
        cidr: IpNet,
        node: String,
    },

    #[error("{ip} is outside {scope} ({cidr}): pick an address inside it")]
    AddressOutsideScope {
        scope: Scope,
        cidr: IpNet,
        ip: IpAddr,
    },

    #[error(
        "{ip} in {scope} is already allocated to {owner}: pick another address, or release it first"
    )]
    AddressInUse {
        scope: Scope,
        ip: IpAddr,
        owner: String,
    },

    #[error("{ip} is reserved in {scope} (network, broadcast or gateway): pick another address")]
    AddressReserved { scope: Scope, ip: IpAddr },

    #[error("owner {owner} already has {ip} in {scope} on node {node}: release it there first")]
    OwnerOnOtherNode {
        scope: Scope,
        owner: String,
        ip: IpAddr,
        node: String,
    },

    #[error(
        "owner {owner} already has {ip} in {scope}, not the requested {requested}: release it first"
    )]
    OwnerHasOtherAddress {
        scope: Scope,
        owner: String,
        ip: IpAddr,
        requested: IpAddr,
    },

    #[error("owner {owner} has no address in {scope}: check the owner id and the subnet")]
    UnknownOwner { scope: Scope, owner: String },

    #[error("{ip} is not allocated: nothing to release")]
    UnknownAddress { ip: IpAddr },

    #[error("too many {what}: the allocator holds at most 2^32 - 3 of them; split the site")]
    LimitExceeded { what: &'static str },

    #[error("allocator state is inconsistent ({detail}): run check and repair, then retry")]
    Corrupt { detail: String },

    #[error("record {key} is invalid: {reason}; fix or delete the record, then rebuild")]
    InvalidRecord { key: String, reason: String },
}
