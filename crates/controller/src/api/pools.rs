//! Pools, subnets and the IPAM audit. Mutations go through the IPAM writer; reads come from the
//! store, with usage from the allocator.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clos_ipam::Record;
use clos_model::{IpamCheck, Page, Pool, PoolKind, Problem, Resource, Subnet, Usage};
use clos_store::{KeyRange, RangeRequest};

use super::{ApiPath, ApiQuery, DeleteQuery, JsonBody, ListQuery, created, decode, list_prefix};
use crate::AppState;
use crate::auth::Principal;
use crate::convert;
use crate::error::{Error, Result};
use crate::keys;
use crate::writer::{self, Done, Shared};

fn pool_usage(shared: &Shared, pool: &Pool) -> Option<Usage> {
    if pool.kind == PoolKind::TenantSubnets {
        let mut u = Usage {
            size: if pool.cidr.max_prefix_len() - pool.cidr.prefix_len() >= 64 {
                u64::MAX
            } else {
                1u64 << (pool.cidr.max_prefix_len() - pool.cidr.prefix_len())
            },
            reserved: 0,
            allocated: 0,
            held: 0,
            blocks: 0,
        };
        for (name, (_, p)) in &shared.subnets {
            if *p == pool.name
                && let Ok(s) = shared.ipam.subnet_usage(name)
            {
                let s = convert::usage(s);
                u.reserved = u.reserved.saturating_add(s.reserved);
                u.allocated += s.allocated;
                u.held += s.held;
                u.blocks += s.blocks;
            }
        }
        Some(u)
    } else {
        shared.ipam.pool_usage(&pool.name).ok().map(convert::usage)
    }
}

fn pool_of(kv: &clos_store::KeyValue) -> Result<Pool> {
    match decode::<Record>(kv)? {
        Record::Pool(r) => Ok(convert::pool_from_record(&r, kv.mod_revision)),
        _ => Err(Error::internal("pool key holds another record")),
    }
}

fn subnet_of(kv: &clos_store::KeyValue) -> Result<Subnet> {
    match decode::<Record>(kv)? {
        Record::Subnet(r) => Ok(convert::subnet_from_record(&r, kv.mod_revision)),
        _ => Err(Error::internal("subnet key holds another record")),
    }
}

/// Fills in a subnet's IPv6 part (if it is dual-stack) from the store.
async fn with_v6_part(state: &AppState, s: &mut Subnet) -> Result<()> {
    let part = convert::v6_part(&s.name);
    if !state.shared().read().subnets.contains_key(&part) {
        return Ok(());
    }
    if let Some(kv) = state
        .store()
        .get(keys::item(keys::SUBNETS, &part).into())
        .await?
    {
        match decode::<Record>(&kv)? {
            Record::Subnet(r) => s.ipv6 = Some(convert::family_from_record(&r)),
            _ => return Err(Error::internal("subnet key holds another record")),
        }
    }
    Ok(())
}

/// Usage of a subnet and of its IPv6 part.
fn fill_usage(shared: &Shared, s: &mut Subnet) {
    s.usage = shared.ipam.subnet_usage(&s.name).ok().map(convert::usage);
    if let Some(f) = &mut s.ipv6 {
        f.usage = shared
            .ipam
            .subnet_usage(&convert::v6_part(&s.name))
            .ok()
            .map(convert::usage);
    }
}

/// Lists the pools (admin and tenant tokens).
#[utoipa::path(get, path = "/v1/pools", tag = "pools", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = Page<Pool>), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list_pools(
    p: Principal,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Pool>>> {
    p.require_tenant_role("list pools")?;
    let mut page = list_prefix(&state, keys::POOLS, &q, |kv| pool_of(&kv).map(Some)).await?;
    let shared = state.shared().read();
    for pool in &mut page.items {
        pool.usage = pool_usage(&shared, pool);
    }
    Ok(Json(page))
}

/// Creates a pool (admin). 409 if it overlaps another pool.
#[utoipa::path(post, path = "/v1/pools", tag = "pools", security(("bearer" = [])), request_body = Pool,
    responses((status = 201, body = Pool), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn create_pool(
    p: Principal,
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<Response> {
    p.require_admin("create pools")?;
    let pool: Pool = body.parse()?;
    pool.validate()?;
    match state.writer().call(writer::Op::CreatePool(pool)).await? {
        Done::Pool(mut pool) => {
            pool.usage = pool_usage(&state.shared().read(), &pool);
            Ok(created(pool))
        }
        _ => Err(Error::internal(
            "writer answered a pool creation with another result",
        )),
    }
}

/// Reads a pool with its usage.
#[utoipa::path(get, path = "/v1/pools/{name}", tag = "pools", security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 200, body = Pool), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_pool(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Pool>> {
    p.require_tenant_role("read pools")?;
    let kv = state
        .store()
        .get(keys::item(keys::POOLS, &name).into())
        .await?
        .ok_or_else(|| Error::not_found("pool", &name))?;
    let mut pool = pool_of(&kv)?;
    pool.usage = pool_usage(&state.shared().read(), &pool);
    Ok(Json(pool))
}

/// Deletes a pool that holds no subnet and no address (admin).
#[utoipa::path(delete, path = "/v1/pools/{name}", tag = "pools", security(("bearer" = [])), params(("name" = String, Path), DeleteQuery),
    responses((status = 204), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn delete_pool(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<Response> {
    p.require_admin("delete pools")?;
    state
        .writer()
        .call(writer::Op::DeletePool {
            name,
            version: q.resource_version.unwrap_or(0),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Lists the subnets (a tenant token sees its tenants' subnets).
#[utoipa::path(get, path = "/v1/subnets", tag = "subnets", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = Page<Subnet>), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list_subnets(
    p: Principal,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Subnet>>> {
    p.require_tenant_role("list subnets")?;
    let mut page = list_prefix(&state, keys::SUBNETS, &q, |kv| {
        let s = subnet_of(&kv)?;
        Ok((p.tenant_allowed(&s.tenant) && !convert::is_v6_part(&s.name)).then_some(s))
    })
    .await?;
    for s in &mut page.items {
        with_v6_part(&state, s).await?;
    }
    let shared = state.shared().read();
    for s in &mut page.items {
        fill_usage(&shared, s);
    }
    Ok(Json(page))
}

/// Creates a subnet of a tenant in a tenant pool, at `cidr` or at the next free `prefix_len`;
/// dual-stack with `ipv6` (its own pool, and `cidr` or `prefix_len`), both parts or neither.
#[utoipa::path(post, path = "/v1/subnets", tag = "subnets", security(("bearer" = [])), request_body = Subnet,
    responses((status = 201, body = Subnet), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn create_subnet(
    p: Principal,
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<Response> {
    p.require_tenant_role("create subnets")?;
    let subnet: Subnet = body.parse()?;
    if !p.tenant_allowed(&subnet.tenant) {
        return Err(Error::Forbidden {
            action: "create subnets for another tenant",
        });
    }
    subnet.validate()?;
    match state
        .writer()
        .call(writer::Op::CreateSubnet(subnet))
        .await?
    {
        Done::Subnet(mut s) => {
            fill_usage(&state.shared().read(), &mut s);
            Ok(created(s))
        }
        _ => Err(Error::internal(
            "writer answered a subnet creation with another result",
        )),
    }
}

/// The tenant of a subnet, if the caller may see it; 404 otherwise (no existence leak).
pub(crate) fn authorize_subnet(state: &AppState, p: &Principal, subnet: &str) -> Result<()> {
    if convert::is_v6_part(subnet) {
        return Err(Error::not_found("subnet", subnet));
    }
    let tenant = state
        .shared()
        .read()
        .subnets
        .get(subnet)
        .map(|(t, _)| t.clone());
    match tenant {
        Some(t) if p.tenant_allowed(&t) => Ok(()),
        _ => Err(Error::not_found("subnet", subnet)),
    }
}

/// Reads a subnet with its usage.
#[utoipa::path(get, path = "/v1/subnets/{name}", tag = "subnets", security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 200, body = Subnet), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_subnet(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Subnet>> {
    p.require_tenant_role("read subnets")?;
    authorize_subnet(&state, &p, &name)?;
    let kv = state
        .store()
        .get(keys::item(keys::SUBNETS, &name).into())
        .await?
        .ok_or_else(|| Error::not_found("subnet", &name))?;
    let mut s = subnet_of(&kv)?;
    with_v6_part(&state, &mut s).await?;
    fill_usage(&state.shared().read(), &mut s);
    Ok(Json(s))
}

/// Deletes a subnet that holds no address (release them and forget fixed ones first); a
/// dual-stack subnet's two parts go together.
#[utoipa::path(delete, path = "/v1/subnets/{name}", tag = "subnets", security(("bearer" = [])), params(("name" = String, Path), DeleteQuery),
    responses((status = 204), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn delete_subnet(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<Response> {
    p.require_tenant_role("delete subnets")?;
    authorize_subnet(&state, &p, &name)?;
    state
        .writer()
        .call(writer::Op::DeleteSubnet {
            name,
            version: q.resource_version.unwrap_or(0),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Audits the stored IPAM state: rebuilds an allocator from the records in the store and runs
/// the invariant checker on it (admin). O(addresses).
#[utoipa::path(get, path = "/v1/ipam/check", tag = "ipam", security(("bearer" = [])),
    responses((status = 200, body = IpamCheck), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn ipam_check(
    p: Principal,
    State(state): State<AppState>,
) -> Result<Json<IpamCheck>> {
    p.require_admin("check the IPAM state")?;
    let resp = state
        .store()
        .range(RangeRequest::new(KeyRange::prefix(keys::IPAM)))
        .await?;
    let report = tokio::task::spawn_blocking(move || -> Result<IpamCheck> {
        let mut issues = Vec::new();
        let mut records = Vec::with_capacity(resp.kvs.len());
        for kv in &resp.kvs {
            if kv.key.as_ref() == keys::IPAM_GUARD.as_bytes() {
                continue;
            }
            match serde_json::from_slice::<Record>(&kv.value) {
                Ok(r) if keys::record(&r.key()).as_bytes() == kv.key.as_ref() => records.push(r),
                Ok(_) => issues.push(serde_json::json!({
                    "issue": "misplaced_record",
                    "key": String::from_utf8_lossy(&kv.key),
                })),
                Err(e) => issues.push(serde_json::json!({
                    "issue": "undecodable_record",
                    "key": String::from_utf8_lossy(&kv.key),
                    "detail": e.to_string(),
                })),
            }
        }
        let ipam = clos_ipam::Ipam::from_records(records)?;
        for i in ipam.check().issues {
            issues.push(serde_json::to_value(i).map_err(Error::internal)?);
        }
        Ok(IpamCheck {
            healthy: issues.is_empty(),
            issues,
            actions: Vec::new(),
            remaining: Vec::new(),
        })
    })
    .await
    .map_err(Error::internal)??;
    Ok(Json(report))
}

/// Repairs what is safe to repair in the IPAM state and writes the result (admin).
#[utoipa::path(post, path = "/v1/ipam/repair", tag = "ipam", security(("bearer" = [])),
    responses((status = 200, body = IpamCheck), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn ipam_repair(
    p: Principal,
    State(state): State<AppState>,
) -> Result<Json<IpamCheck>> {
    p.require_admin("repair the IPAM state")?;
    match state.writer().call(writer::Op::Repair).await? {
        Done::Repair(r) => {
            let to = |v: &[clos_ipam::Issue]| -> Vec<serde_json::Value> {
                v.iter()
                    .filter_map(|i| serde_json::to_value(i).ok())
                    .collect()
            };
            Ok(Json(IpamCheck {
                healthy: r.remaining.is_empty(),
                issues: to(&r.found),
                actions: r
                    .actions
                    .iter()
                    .filter_map(|a| serde_json::to_value(a).ok())
                    .collect(),
                remaining: to(&r.remaining),
            }))
        }
        _ => Err(Error::internal(
            "writer answered a repair with another result",
        )),
    }
}
