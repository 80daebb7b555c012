//! Conversions between the API model and the IPAM's own types.

use clos_ipam as ipam;
use clos_model as m;

pub fn pool_kind(k: m::PoolKind) -> ipam::PoolKind {
    match k {
        m::PoolKind::TenantSubnets => ipam::PoolKind::TenantSubnets,
        m::PoolKind::FloatingIps => ipam::PoolKind::FloatingIps,
        m::PoolKind::AnycastServices => ipam::PoolKind::AnycastServices,
    }
}

pub fn model_pool_kind(k: ipam::PoolKind) -> m::PoolKind {
    match k {
        ipam::PoolKind::TenantSubnets => m::PoolKind::TenantSubnets,
        ipam::PoolKind::FloatingIps => m::PoolKind::FloatingIps,
        ipam::PoolKind::AnycastServices => m::PoolKind::AnycastServices,
    }
}

pub fn owner(o: &m::Owner) -> ipam::Owner {
    let kind = match o.kind {
        m::OwnerKind::Host => ipam::OwnerKind::Host,
        m::OwnerKind::Vm => ipam::OwnerKind::Vm,
        m::OwnerKind::Container => ipam::OwnerKind::Container,
        m::OwnerKind::Service => ipam::OwnerKind::Service,
    };
    ipam::Owner::new(kind, o.id.clone())
}

pub fn model_owner(o: &ipam::Owner) -> m::Owner {
    let kind = match o.kind {
        ipam::OwnerKind::Host => m::OwnerKind::Host,
        ipam::OwnerKind::Vm => m::OwnerKind::Vm,
        ipam::OwnerKind::Container => m::OwnerKind::Container,
        ipam::OwnerKind::Service => m::OwnerKind::Service,
    };
    m::Owner::new(kind, o.id.clone())
}

pub fn pool_from_record(r: &ipam::PoolRecord, version: u64) -> m::Pool {
    m::Pool {
        name: r.name.clone(),
        cidr: r.cidr,
        kind: model_pool_kind(r.kind),
        block_prefix_len: Some(r.block_prefix_len),
        usage: None,
        resource_version: version,
    }
}

/// Prefix of the IPAM subnet holding the IPv6 part of a dual-stack subnet. API names never
/// start with '.', so these names cannot collide with a subnet of the API.
pub const V6_PART: &str = ".v6.";

/// The IPAM subnet holding the IPv6 part of dual-stack subnet `name`.
pub fn v6_part(name: &str) -> String {
    format!("{V6_PART}{name}")
}

/// Whether an IPAM subnet is the IPv6 part of a dual-stack subnet.
pub fn is_v6_part(ipam_subnet: &str) -> bool {
    ipam_subnet.starts_with(V6_PART)
}

/// The API subnet an IPAM subnet belongs to.
pub fn api_subnet(ipam_subnet: &str) -> &str {
    ipam_subnet.strip_prefix(V6_PART).unwrap_or(ipam_subnet)
}

/// The IPAM subnet paired with `ipam_subnet` in a dual-stack subnet, if it would be one.
pub fn paired_subnet(ipam_subnet: &str) -> String {
    match ipam_subnet.strip_prefix(V6_PART) {
        Some(name) => name.to_string(),
        None => v6_part(ipam_subnet),
    }
}

fn reserve(r: m::Reserve) -> ipam::Reserve {
    ipam::Reserve {
        network: r.network,
        broadcast: r.broadcast,
        gateway: r.gateway,
    }
}

fn model_reserve(r: ipam::Reserve) -> m::Reserve {
    m::Reserve {
        network: r.network,
        broadcast: r.broadcast,
        gateway: r.gateway,
    }
}

fn borrow(b: m::BorrowPolicy) -> ipam::BorrowPolicy {
    match b {
        m::BorrowPolicy::Never => ipam::BorrowPolicy::Never,
        m::BorrowPolicy::LastResort => ipam::BorrowPolicy::LastResort,
    }
}

fn cidr(cidr: Option<ipnet::IpNet>, prefix_len: Option<u8>) -> ipam::SubnetCidr {
    match (cidr, prefix_len) {
        (Some(c), _) => ipam::SubnetCidr::Explicit(c),
        (None, Some(prefix_len)) => ipam::SubnetCidr::NextFree { prefix_len },
        // Rejected by validation; an impossible length makes the IPAM say so too.
        (None, None) => ipam::SubnetCidr::NextFree { prefix_len: 255 },
    }
}

/// The IPAM subnet of a subnet's first (IPv4 of a dual-stack, or only) part.
pub fn subnet_spec(s: &m::Subnet) -> ipam::SubnetSpec {
    ipam::SubnetSpec::new(&s.name, &s.tenant, &s.pool, cidr(s.cidr, s.prefix_len))
        .reserve(reserve(s.reserve))
        .borrow(borrow(s.borrow))
}

/// The IPAM subnet of a dual-stack subnet's IPv6 part.
pub fn v6_spec(s: &m::Subnet) -> Option<ipam::SubnetSpec> {
    let f = s.ipv6.as_ref()?;
    Some(
        ipam::SubnetSpec::new(
            v6_part(&s.name),
            &s.tenant,
            &f.pool,
            cidr(f.cidr, f.prefix_len),
        )
        .reserve(reserve(f.reserve))
        .borrow(borrow(s.borrow)),
    )
}

pub fn subnet_from_record(r: &ipam::SubnetRecord, version: u64) -> m::Subnet {
    m::Subnet {
        name: r.name.clone(),
        tenant: r.tenant.clone(),
        pool: r.pool.clone(),
        cidr: Some(r.cidr),
        prefix_len: None,
        reserve: model_reserve(r.reserve),
        borrow: match r.borrow {
            ipam::BorrowPolicy::Never => m::BorrowPolicy::Never,
            ipam::BorrowPolicy::LastResort => m::BorrowPolicy::LastResort,
        },
        ipv6: None,
        usage: None,
        resource_version: version,
    }
}

/// The IPv6 part of a dual-stack subnet, from its IPAM subnet.
pub fn family_from_record(r: &ipam::SubnetRecord) -> m::SubnetFamily {
    m::SubnetFamily {
        pool: r.pool.clone(),
        cidr: Some(r.cidr),
        prefix_len: None,
        reserve: model_reserve(r.reserve),
        usage: None,
    }
}

pub fn usage(u: ipam::Usage) -> m::Usage {
    let sat = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
    m::Usage {
        size: sat(u.size),
        reserved: sat(u.reserved),
        allocated: u.allocated,
        held: u.held,
        blocks: u.blocks,
    }
}
