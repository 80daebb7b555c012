//! Clos IPAM: a pure, in-memory address allocator for routed L3 fabrics. No I/O, no clock.
//!
//! # Model
//!
//! * **Pools** ([`PoolSpec`]) are disjoint IPv4 or IPv6 prefixes of one [`PoolKind`]: tenant
//!   subnets, floating IPs or anycast service IPs. A pool has a block size (default /26 or /122).
//! * **Subnets** ([`SubnetSpec`]) belong to a tenant and are carved from a tenant pool, either
//!   at an explicit prefix or as the next free /N. Subnets never overlap, so an address
//!   determines its subnet. A subnet spans racks: its addresses are host routes.
//! * **Blocks**: a node that needs addresses in a subnet claims a block (the pool's block size,
//!   or the whole subnet if smaller) and advertises it. A node allocates from its own blocks
//!   first, then claims a new free block (preferring the one right after its last, so its
//!   blocks aggregate), and only then, per the subnet's [`BorrowPolicy`], borrows one address
//!   from another block and advertises it as a /32 or /128.
//! * **Addresses** are allocated for an [`Owner`] (host, VM, container, service) on a node
//!   ([`AllocRequest`]). An owner id has at most one address per subnet, so retrying a request
//!   returns the same address without changes. A *fixed* address survives release: it is held
//!   for its owner id and handed back on the next request, on any node (StatefulSets); when the
//!   node does not own the block, the address becomes a host route. Static addresses are
//!   requested with [`AllocRequest::at`].
//! * **Floating and anycast pools** hand out addresses straight from the pool by owner
//!   ([`Ipam::allocate_direct`]); internally they are one implicit subnet with unowned blocks.
//!
//! # Performance contract
//!
//! No operation on the allocation path scans allocations. Each block has a two-level bitmap
//! (first free address in at most 17 word reads) and a slot array (address -> allocation).
//! Each node keeps, per subnet, an ordered set of its blocks with free space; each subnet keeps
//! a range set of unclaimed blocks and a set of blocks with space (for borrowing). Owners are
//! found through a fingerprint hash index. Allocation and release are O(log n) and take about
//! a microsecond at 1M addresses; memory is about 125 bytes per address, a third of it the
//! owner id (`cargo bench -p clos-ipam`).
//!
//! # Persistence
//!
//! Every mutating call returns the [`Change`]s to write (see [`record`] for the key layout and
//! the compare-and-swap contract). [`Ipam::from_records`] rebuilds the allocator from the stored
//! records, and [`Ipam::records`] dumps them. Derived state (bitmaps, free lists) is never stored.
//!
//! # Checking
//!
//! [`Ipam::check`] recomputes every index from the authoritative data and reports leaks and
//! conflicts as [`Issue`]s; [`Ipam::repair`] fixes what is safe and reports what it did.

mod addr;
mod alloc;
mod bitmap;
mod check;
mod core;
mod error;
mod index;
mod memory;
mod nodes;
mod owners;
mod persist;
mod pools;
mod rangeset;
pub mod record;
mod repair;
mod slab;
mod state;
mod types;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_check;

pub use check::{Action, CheckReport, Issue, RepairReport};
pub use error::{Error, Scope};
pub use record::{
    AddressRecord, BlockRecord, Change, NodeRecord, PoolRecord, Record, RecordKey, SubnetRecord,
};
pub use types::{
    AllocRequest, Allocated, AllocationInfo, BorrowPolicy, Owner, OwnerKind, Placement, PoolKind,
    PoolSpec, Reserve, SubnetCidr, SubnetSpec, Usage, default_block_prefix_len,
};

use state::{Data, Index};

/// The allocator. See the crate documentation for the model and contracts.
#[derive(Debug, Clone, Default)]
pub struct Ipam {
    data: Data,
    ix: Index,
    /// Problems found while loading records that the data itself cannot show (a block recreated
    /// because its record was missing). Reported by `check`, cleared by `repair`.
    load_issues: Vec<Issue>,
}

// The controller shares one allocator between request handlers.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Ipam>();
};

impl Ipam {
    /// An empty allocator.
    pub fn new() -> Ipam {
        Ipam::default()
    }
}
