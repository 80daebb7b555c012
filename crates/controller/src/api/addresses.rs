//! Addresses: allocation in a subnet (on a node) or straight from a floating/anycast pool,
//! lookup and release by IP, and listing per subnet or pool (one key range each).

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clos_ipam::{AddressRecord, Record};
use clos_model::{Address, AllocateAddress, Page, Problem};
use serde::Deserialize;
use utoipa::IntoParams;

use super::pools::authorize_subnet;
use super::{ApiPath, ApiQuery, JsonBody, ListQuery, created, decode, list_range};
use crate::AppState;
use crate::auth::{Principal, owner_tenant};
use crate::convert;
use crate::error::{Error, Result};
use crate::keys;
use crate::writer::{self, Done};

fn to_address(
    r: AddressRecord,
    pool: &str,
    subnet: Option<&str>,
    tenant: Option<&str>,
    version: u64,
) -> Address {
    let tenant = match (subnet, tenant) {
        (Some(_), t) => t.map(str::to_string),
        (None, _) => owner_tenant(&r.owner.id).map(str::to_string),
    };
    Address {
        ip: r.ip,
        ip6: None,
        pool: pool.to_string(),
        subnet: subnet.map(|s| convert::api_subnet(s).to_string()),
        tenant,
        owner: convert::model_owner(&r.owner),
        node: r.node,
        fixed: r.fixed,
        held: r.held,
        resource_version: version,
    }
}

fn address_record(kv: &clos_store::KeyValue) -> Result<AddressRecord> {
    match decode::<Record>(kv)? {
        Record::Address(a) => Ok(a),
        _ => Err(Error::internal("address key holds another record")),
    }
}

/// Lists the addresses of a subnet, in address order (in a dual-stack subnet, one item per
/// owner: its IPv4 address, in order, with its IPv6 address as `ip6`).
#[utoipa::path(get, path = "/v1/subnets/{subnet}/addresses", tag = "addresses", security(("bearer" = [])),
    params(("subnet" = String, Path), ListQuery),
    responses((status = 200, body = Page<Address>), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list_subnet_addresses(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(subnet): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Address>>> {
    p.require_tenant_role("list addresses")?;
    authorize_subnet(&state, &p, &subnet)?;
    let part = convert::v6_part(&subnet);
    let (cidr, tenant, pool) = {
        let sh = state.shared().read();
        let cidr = sh.ipam.subnet_cidr(&subnet)?;
        let (t, p) = sh
            .subnets
            .get(&subnet)
            .cloned()
            .ok_or_else(|| Error::not_found("subnet", &subnet))?;
        (cidr, t, p)
    };
    let (start, end) = keys::address_range(&cidr);
    let mut page = list_range(&state, keys::ADDRESSES, start, end, &q, |kv| {
        let r = address_record(&kv)?;
        Ok(Some(to_address(
            r,
            &pool,
            Some(&subnet),
            Some(&tenant),
            kv.mod_revision,
        )))
    })
    .await?;
    let sh = state.shared().read();
    if sh.subnets.contains_key(&part) {
        for a in &mut page.items {
            a.ip6 = sh.ipam.allocation(&part, &a.owner.id).map(|i| i.ip);
        }
    }
    Ok(Json(page))
}

/// Allocates an address in a subnet for an owner on a node: the next free one, or `ip`.
/// Idempotent per owner: a retry returns the same address. `fixed` keeps the address for the
/// owner id across release. In a dual-stack subnet the owner gets an IPv4 address (`ip`) and
/// an IPv6 address (`ip6`) from the node's blocks, both or neither; a static `ip` is taken in
/// the part of its family.
#[utoipa::path(post, path = "/v1/subnets/{subnet}/addresses", tag = "addresses", security(("bearer" = [])),
    params(("subnet" = String, Path)), request_body = AllocateAddress,
    responses((status = 201, body = Address), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn allocate_in_subnet(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(subnet): ApiPath<String>,
    body: JsonBody,
) -> Result<Response> {
    p.require_tenant_role("allocate addresses")?;
    authorize_subnet(&state, &p, &subnet)?;
    let req: AllocateAddress = body.parse()?;
    req.validate()?;
    match state
        .writer()
        .call(writer::Op::Allocate { subnet, req })
        .await?
    {
        Done::Address(a) => Ok(created(a)),
        _ => Err(Error::internal(
            "writer answered an allocation with another result",
        )),
    }
}

fn direct_pool(state: &AppState, pool: &str) -> Result<()> {
    match state.shared().read().pools.get(pool) {
        Some(k) if *k != clos_model::PoolKind::TenantSubnets => Ok(()),
        Some(_) => Err(Error::Invalid {
            field: "pool".into(),
            reason: format!(
                "pool {pool} holds tenant subnets: allocate in one of its subnets instead"
            ),
        }),
        None => Err(Error::not_found("pool", pool)),
    }
}

/// Lists the addresses of a floating or anycast pool (a tenant token sees the addresses whose
/// owner id starts with one of its tenants, `tenant/...`).
#[utoipa::path(get, path = "/v1/pools/{pool}/addresses", tag = "addresses", security(("bearer" = [])),
    params(("pool" = String, Path), ListQuery),
    responses((status = 200, body = Page<Address>), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list_pool_addresses(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(pool): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Address>>> {
    p.require_tenant_role("list addresses")?;
    direct_pool(&state, &pool)?;
    let kv = state
        .store()
        .get(keys::item(keys::POOLS, &pool).into())
        .await?
        .ok_or_else(|| Error::not_found("pool", &pool))?;
    let cidr = match decode::<Record>(&kv)? {
        Record::Pool(r) => r.cidr,
        _ => return Err(Error::internal("pool key holds another record")),
    };
    let (start, end) = keys::address_range(&cidr);
    let page = list_range(&state, keys::ADDRESSES, start, end, &q, |kv| {
        let r = address_record(&kv)?;
        if !p.owner_allowed(&r.owner.id) {
            return Ok(None);
        }
        Ok(Some(to_address(r, &pool, None, None, kv.mod_revision)))
    })
    .await?;
    Ok(Json(page))
}

/// Allocates a floating or anycast address from a pool for an owner (tenant tokens: owner ids
/// `tenant/...` of their own tenants).
#[utoipa::path(post, path = "/v1/pools/{pool}/addresses", tag = "addresses", security(("bearer" = [])),
    params(("pool" = String, Path)), request_body = AllocateAddress,
    responses((status = 201, body = Address), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn allocate_in_pool(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(pool): ApiPath<String>,
    body: JsonBody,
) -> Result<Response> {
    p.require_tenant_role("allocate addresses")?;
    let req: AllocateAddress = body.parse()?;
    if !p.owner_allowed(&req.owner.id) {
        return Err(Error::Forbidden {
            action: "allocate for an owner id outside its tenants (use <tenant>/<id>)",
        });
    }
    req.validate()?;
    direct_pool(&state, &pool)?;
    if req.node.is_some() || req.fixed {
        return Err(Error::Invalid {
            field: if req.fixed { "fixed" } else { "node" }.into(),
            reason: "floating and anycast addresses are not on a node and not fixed".into(),
        });
    }
    match state
        .writer()
        .call(writer::Op::AllocateDirect { pool, req })
        .await?
    {
        Done::Address(mut a) => {
            a.tenant = owner_tenant(&a.owner.id).map(str::to_string);
            Ok(created(a))
        }
        _ => Err(Error::internal(
            "writer answered an allocation with another result",
        )),
    }
}

/// The pool, subnet and tenant of an allocated address, if the caller may see it.
fn authorize_address(
    state: &AppState,
    p: &Principal,
    ip: IpAddr,
) -> Result<(String, Option<String>, Option<String>)> {
    let sh = state.shared().read();
    let not_found = || Error::not_found("address", ip.to_string());
    let info = sh.ipam.lookup(ip).ok_or_else(not_found)?;
    let tenant = match &info.subnet {
        Some(s) => sh.subnets.get(s).map(|(t, _)| t.clone()),
        None => owner_tenant(&info.owner.id).map(str::to_string),
    };
    let allowed = p.is_admin() || tenant.as_deref().is_some_and(|t| p.tenant_allowed(t));
    if !allowed {
        return Err(not_found());
    }
    Ok((info.pool, info.subnet, tenant))
}

fn parse_ip(s: &str) -> Result<IpAddr> {
    s.parse().map_err(|_| Error::BadRequest {
        detail: format!("{s:?} is not an IP address"),
        field: Some("ip".into()),
    })
}

/// Reads an allocated address (in a dual-stack subnet, the owner's pair, by either address).
#[utoipa::path(get, path = "/v1/addresses/{ip}", tag = "addresses", security(("bearer" = [])),
    params(("ip" = String, Path)),
    responses((status = 200, body = Address), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_address(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(ip): ApiPath<String>,
) -> Result<Json<Address>> {
    p.require_tenant_role("read addresses")?;
    let ip = parse_ip(&ip)?;
    let (pool, subnet, tenant) = authorize_address(&state, &p, ip)?;
    let kv = state
        .store()
        .get(keys::address(ip).into())
        .await?
        .ok_or_else(|| Error::not_found("address", ip.to_string()))?;
    let r = address_record(&kv)?;
    let owner = r.owner.id.clone();
    let mut a = to_address(
        r,
        &pool,
        subnet.as_deref(),
        tenant.as_deref(),
        kv.mod_revision,
    );
    if let Some(s) = &subnet {
        let other = convert::paired_subnet(s);
        let sh = state.shared().read();
        if sh.subnets.contains_key(&other)
            && let Some(peer) = sh.ipam.allocation(&other, &owner)
        {
            if convert::is_v6_part(s) {
                a.ip6 = Some(a.ip);
                a.ip = peer.ip;
                if let Some((_, p)) = sh.subnets.get(&other) {
                    a.pool = p.clone();
                }
            } else {
                a.ip6 = Some(peer.ip);
            }
        }
    }
    Ok(Json(a))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReleaseQuery {
    /// Also free an address kept for a fixed owner.
    #[serde(default)]
    pub forget: bool,
}

/// Releases an address (in a dual-stack subnet, the owner's pair, by either address). A fixed
/// address stays held for its owner unless `forget=true`.
#[utoipa::path(delete, path = "/v1/addresses/{ip}", tag = "addresses", security(("bearer" = [])),
    params(("ip" = String, Path), ReleaseQuery),
    responses((status = 204), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn release_address(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(ip): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReleaseQuery>,
) -> Result<Response> {
    p.require_tenant_role("release addresses")?;
    let ip = parse_ip(&ip)?;
    authorize_address(&state, &p, ip)?;
    state
        .writer()
        .call(writer::Op::Release {
            ip,
            forget: q.forget,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
