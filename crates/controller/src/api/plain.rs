//! Resources that are plain store objects: the site, racks, switches and tenants. Writes are
//! compare-and-swap on the key's `mod_revision` (the resource version).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clos_model::{Page, Problem, Rack, Resource, Site, Switch, Tenant};
use clos_store::{Compare, CompareOp, Op, Txn};

use super::{ApiPath, ApiQuery, DeleteQuery, JsonBody, ListQuery, created, decode, list_prefix};
use crate::AppState;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::keys;
use crate::writer;

fn key_of<R: Resource>(name: &str) -> String {
    if R::PLURAL == "site" {
        keys::SITE.to_string()
    } else {
        format!("{}/{name}", R::PLURAL)
    }
}

pub(crate) async fn read<R: Resource>(state: &AppState, name: &str) -> Result<R> {
    let kv = state
        .store()
        .get(key_of::<R>(name).into())
        .await?
        .ok_or_else(|| Error::not_found(R::KIND, name))?;
    let mut r: R = decode(&kv)?;
    r.set_resource_version(kv.mod_revision);
    Ok(r)
}

fn stored<R: Resource>(r: &R) -> Result<Vec<u8>> {
    let mut r = r.clone();
    r.set_resource_version(0);
    serde_json::to_vec(&r).map_err(Error::internal)
}

async fn create<R: Resource>(state: &AppState, r: R) -> Result<R> {
    r.validate()?;
    let key = key_of::<R>(r.name());
    let resp = state
        .store()
        .txn(
            Txn::new()
                .when([Compare::absent(key.clone())])
                .and_then([Op::put(key, stored(&r)?)]),
        )
        .await?;
    if !resp.succeeded {
        return Err(Error::Exists {
            kind: R::KIND,
            name: r.name().to_string(),
        });
    }
    let mut r = r;
    r.set_resource_version(resp.revision);
    Ok(r)
}

/// Replaces `r`; with `resource_version` 0 unconditionally (but it must exist unless
/// `upsert`), else only at that version.
async fn update<R: Resource>(state: &AppState, path_name: &str, r: R, upsert: bool) -> Result<R> {
    if r.name() != path_name && R::PLURAL != "site" {
        return Err(Error::Invalid {
            field: "name".into(),
            reason: format!(
                "the body names {}, the path {path_name}: renaming is not supported",
                r.name()
            ),
        });
    }
    r.validate()?;
    let key = key_of::<R>(path_name);
    let guard = match r.resource_version() {
        0 if upsert => None,
        0 => Some(Compare::version(key.clone(), CompareOp::Greater, 0)),
        v => Some(Compare::mod_revision(key.clone(), CompareOp::Equal, v)),
    };
    let resp = state
        .store()
        .txn(
            Txn::new()
                .when(guard)
                .and_then([Op::put(key.clone(), stored(&r)?)])
                .or_else([Op::get(key)]),
        )
        .await?;
    if !resp.succeeded {
        return Err(stale_or_missing::<R>(path_name, r.resource_version(), resp));
    }
    let mut r = r;
    r.set_resource_version(resp.revision);
    Ok(r)
}

fn stale_or_missing<R: Resource>(name: &str, given: u64, resp: clos_store::TxnResponse) -> Error {
    let current = resp.responses.into_iter().find_map(|r| match r {
        clos_store::OpResponse::Get(g) => g.kvs.into_iter().next(),
        _ => None,
    });
    match current {
        None => Error::not_found(R::KIND, name),
        Some(kv) => Error::Stale {
            kind: R::KIND,
            name: name.to_string(),
            given,
            current: kv.mod_revision,
        },
    }
}

async fn delete<R: Resource>(state: &AppState, name: &str, version: u64) -> Result<()> {
    let key = key_of::<R>(name);
    let guard = match version {
        0 => Compare::version(key.clone(), CompareOp::Greater, 0),
        v => Compare::mod_revision(key.clone(), CompareOp::Equal, v),
    };
    let resp = state
        .store()
        .txn(
            Txn::new()
                .when([guard])
                .and_then([Op::delete(key.clone())])
                .or_else([Op::get(key)]),
        )
        .await?;
    if !resp.succeeded {
        return Err(stale_or_missing::<R>(name, version, resp));
    }
    Ok(())
}

async fn list<R: Resource>(
    state: &AppState,
    q: &ListQuery,
    keep: impl Fn(&R) -> bool,
) -> Result<Page<R>> {
    let prefix = keys::collection(R::PLURAL);
    list_prefix(state, &prefix, q, |kv| {
        let mut r: R = decode(&kv)?;
        r.set_resource_version(kv.mod_revision);
        Ok(keep(&r).then_some(r))
    })
    .await
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

// --- site ---------------------------------------------------------------------------------

/// The site (ASN plan and address ranges).
#[utoipa::path(get, path = "/v1/site", tag = "site", security(("bearer" = [])),
    responses((status = 200, body = Site), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_site(p: Principal, State(state): State<AppState>) -> Result<Json<Site>> {
    p.require_admin("read the site")?;
    Ok(Json(read::<Site>(&state, "site").await?))
}

/// Creates or replaces the site (`resource_version` 0: unconditionally).
#[utoipa::path(put, path = "/v1/site", tag = "site", security(("bearer" = [])), request_body = Site,
    responses((status = 200, body = Site), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn put_site(
    p: Principal,
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<Json<Site>> {
    p.require_admin("change the site")?;
    let site: Site = body.parse()?;
    Ok(Json(update(&state, "site", site, true).await?))
}

// --- racks and switches (admin only) -----------------------------------------------------

async fn as_is<R>(_: &AppState, r: R) -> Result<R> {
    Ok(r)
}

/// A rack without an ASN gets the lowest free one of the site's rack range (RFC 7938: one ASN
/// per rack, shared by its leaves). Two racks created at the same moment could pick the same
/// one; the rack's ASN can be corrected with an update.
async fn assign_rack_asn(state: &AppState, mut r: Rack) -> Result<Rack> {
    if r.asn.is_some() {
        return Ok(r);
    }
    let plan = match read::<Site>(state, "site").await {
        Ok(s) => s.asn_plan,
        Err(Error::NotFound { .. }) => clos_model::AsnPlan::default(),
        Err(e) => return Err(e),
    };
    let racks = state
        .store()
        .range(clos_store::RangeRequest::new(clos_store::KeyRange::prefix(
            keys::collection(Rack::PLURAL),
        )))
        .await?;
    let mut used = std::collections::HashSet::new();
    for kv in &racks.kvs {
        if let Some(a) = decode::<Rack>(kv)?.asn {
            used.insert(a);
        }
    }
    r.asn = Some(
        (plan.rack_asn_first..=plan.rack_asn_last)
            .find(|a| !used.contains(a))
            .ok_or_else(|| Error::Conflict {
                detail: "the site's rack ASN range is used up".into(),
                hint: "widen asn_plan.rack_asn_first..rack_asn_last in the site",
            })?,
    );
    Ok(r)
}

macro_rules! admin_crud {
    ($t:ty, $tag:literal, $coll:literal, $item:literal, $prepare:ident, $list:ident, $create:ident, $get:ident, $update:ident, $delete:ident) => {
        #[doc = concat!("Lists the ", $tag, ".")]
        #[utoipa::path(get, path = $coll, tag = $tag, security(("bearer" = [])), params(ListQuery),
            responses((status = 200, body = Page<$t>), (status = "default", body = Problem, content_type = "application/problem+json")))]
        pub(crate) async fn $list(
            p: Principal,
            State(state): State<AppState>,
            ApiQuery(q): ApiQuery<ListQuery>,
        ) -> Result<Json<Page<$t>>> {
            p.require_admin(concat!("list ", $tag))?;
            Ok(Json(list::<$t>(&state, &q, |_| true).await?))
        }

        #[doc = concat!("Creates one of the ", $tag, ".")]
        #[utoipa::path(post, path = $coll, tag = $tag, security(("bearer" = [])), request_body = $t,
            responses((status = 201, body = $t), (status = "default", body = Problem, content_type = "application/problem+json")))]
        pub(crate) async fn $create(
            p: Principal,
            State(state): State<AppState>,
            body: JsonBody,
        ) -> Result<Response> {
            p.require_admin(concat!("create ", $tag))?;
            let r = $prepare(&state, body.parse()?).await?;
            Ok(created(create::<$t>(&state, r).await?))
        }

        #[doc = concat!("Reads one of the ", $tag, ".")]
        #[utoipa::path(get, path = $item, tag = $tag, security(("bearer" = [])), params(("name" = String, Path)),
            responses((status = 200, body = $t), (status = "default", body = Problem, content_type = "application/problem+json")))]
        pub(crate) async fn $get(
            p: Principal,
            State(state): State<AppState>,
            ApiPath(name): ApiPath<String>,
        ) -> Result<Json<$t>> {
            p.require_admin(concat!("read ", $tag))?;
            Ok(Json(read::<$t>(&state, &name).await?))
        }

        #[doc = concat!("Replaces one of the ", $tag, " (409 if `resource_version` is stale).")]
        #[utoipa::path(put, path = $item, tag = $tag, security(("bearer" = [])), params(("name" = String, Path)), request_body = $t,
            responses((status = 200, body = $t), (status = "default", body = Problem, content_type = "application/problem+json")))]
        pub(crate) async fn $update(
            p: Principal,
            State(state): State<AppState>,
            ApiPath(name): ApiPath<String>,
            body: JsonBody,
        ) -> Result<Json<$t>> {
            p.require_admin(concat!("change ", $tag))?;
            Ok(Json(update::<$t>(&state, &name, body.parse()?, false).await?))
        }

        #[doc = concat!("Deletes one of the ", $tag, " (409 if `resource_version` is given and stale).")]
        #[utoipa::path(delete, path = $item, tag = $tag, security(("bearer" = [])), params(("name" = String, Path), DeleteQuery),
            responses((status = 204), (status = "default", body = Problem, content_type = "application/problem+json")))]
        pub(crate) async fn $delete(
            p: Principal,
            State(state): State<AppState>,
            ApiPath(name): ApiPath<String>,
            ApiQuery(q): ApiQuery<DeleteQuery>,
        ) -> Result<Response> {
            p.require_admin(concat!("delete ", $tag))?;
            delete::<$t>(&state, &name, q.resource_version.unwrap_or(0)).await?;
            Ok(no_content())
        }
    };
}

admin_crud!(
    Rack,
    "racks",
    "/v1/racks",
    "/v1/racks/{name}",
    assign_rack_asn,
    list_racks,
    create_rack,
    get_rack,
    update_rack,
    delete_rack
);
admin_crud!(
    Switch,
    "switches",
    "/v1/switches",
    "/v1/switches/{name}",
    as_is,
    list_switches,
    create_switch,
    get_switch,
    update_switch,
    delete_switch
);

// --- tenants -------------------------------------------------------------------------------

/// Lists the tenants (a tenant token sees its own).
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = Page<Tenant>), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list_tenants(
    p: Principal,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Tenant>>> {
    p.require_tenant_role("list tenants")?;
    Ok(Json(
        list::<Tenant>(&state, &q, |t| p.tenant_allowed(&t.name)).await?,
    ))
}

/// Creates a tenant (admin).
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])), request_body = Tenant,
    responses((status = 201, body = Tenant), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn create_tenant(
    p: Principal,
    State(state): State<AppState>,
    body: JsonBody,
) -> Result<Response> {
    p.require_admin("create tenants")?;
    Ok(created(create::<Tenant>(&state, body.parse()?).await?))
}

/// Reads a tenant.
#[utoipa::path(get, path = "/v1/tenants/{name}", tag = "tenants", security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 200, body = Tenant), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_tenant(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Tenant>> {
    p.require_tenant_role("read tenants")?;
    if !p.tenant_allowed(&name) {
        return Err(Error::not_found("tenant", name));
    }
    Ok(Json(read::<Tenant>(&state, &name).await?))
}

/// Replaces a tenant (admin; 409 if `resource_version` is stale).
#[utoipa::path(put, path = "/v1/tenants/{name}", tag = "tenants", security(("bearer" = [])), params(("name" = String, Path)), request_body = Tenant,
    responses((status = 200, body = Tenant), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn update_tenant(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    body: JsonBody,
) -> Result<Json<Tenant>> {
    p.require_admin("change tenants")?;
    Ok(Json(
        update::<Tenant>(&state, &name, body.parse()?, false).await?,
    ))
}

/// Deletes a tenant that owns no subnet (admin).
#[utoipa::path(delete, path = "/v1/tenants/{name}", tag = "tenants", security(("bearer" = [])), params(("name" = String, Path), DeleteQuery),
    responses((status = 204), (status = "default", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn delete_tenant(
    p: Principal,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<Response> {
    p.require_admin("delete tenants")?;
    state
        .writer()
        .call(writer::Op::DeleteTenant {
            name,
            version: q.resource_version.unwrap_or(0),
        })
        .await?;
    Ok(no_content())
}
