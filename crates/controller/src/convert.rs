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

pub fn subnet_spec(s: &m::Subnet) -> ipam::SubnetSpec {
    let cidr = match (s.cidr, s.prefix_len) {
        (Some(c), _) => ipam::SubnetCidr::Explicit(c),
        (None, Some(prefix_len)) => ipam::SubnetCidr::NextFree { prefix_len },
        // Rejected by validation; an impossible length makes the IPAM say so too.
        (None, None) => ipam::SubnetCidr::NextFree { prefix_len: 255 },
    };
    ipam::SubnetSpec::new(&s.name, &s.tenant, &s.pool, cidr)
        .reserve(ipam::Reserve {
            network: s.reserve.network,
            broadcast: s.reserve.broadcast,
            gateway: s.reserve.gateway,
        })
        .borrow(match s.borrow {
            m::BorrowPolicy::Never => ipam::BorrowPolicy::Never,
            m::BorrowPolicy::LastResort => ipam::BorrowPolicy::LastResort,
        })
}

pub fn subnet_from_record(r: &ipam::SubnetRecord, version: u64) -> m::Subnet {
    m::Subnet {
        name: r.name.clone(),
        tenant: r.tenant.clone(),
        pool: r.pool.clone(),
        cidr: Some(r.cidr),
        prefix_len: None,
        reserve: m::Reserve {
            network: r.reserve.network,
            broadcast: r.reserve.broadcast,
            gateway: r.reserve.gateway,
        },
        borrow: match r.borrow {
            ipam::BorrowPolicy::Never => m::BorrowPolicy::Never,
            ipam::BorrowPolicy::LastResort => m::BorrowPolicy::LastResort,
        },
        usage: None,
        resource_version: version,
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
