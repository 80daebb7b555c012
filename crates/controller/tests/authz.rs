//! The authorization matrix: every route of the router (enumerated from the OpenAPI document
//! that the router is built from, so a new route fails this test until it has a row) times
//! every role: no token, a bad token, admin, tenant A, tenant B (with A's objects in the path:
//! cross-tenant ID swaps), and the agent token of node n1.
//!
//! An allowed request must succeed (2xx) on a fresh fixture; a denied one must answer 401
//! (no or bad token), 403 or 404, write nothing, and leak none of A's objects.

mod common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use common::{Fixture, Harness, site_json};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Everyone, without a token.
    Public,
    /// Admin tokens only.
    Admin,
    /// Admin, and tenant A (the owner of the object); not tenant B.
    TenantA,
    /// Admin and every tenant token; tenant B's answer must not show A's objects.
    AnyTenant,
    /// Admin and node n1's agent token.
    Node,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    NoToken,
    BadToken,
    Admin,
    TenantA,
    TenantB,
    NodeN1,
}

const ROLES: [Role; 6] = [
    Role::NoToken,
    Role::BadToken,
    Role::Admin,
    Role::TenantA,
    Role::TenantB,
    Role::NodeN1,
];

struct Row {
    method: Method,
    template: &'static str,
    access: Access,
    /// The concrete path and body, given the fixture.
    request: fn(&Fixture) -> (String, Option<Value>),
}

fn allowed(access: Access, role: Role) -> bool {
    matches!(
        (access, role),
        (Access::Public, _)
            | (_, Role::Admin)
            | (Access::TenantA, Role::TenantA)
            | (Access::AnyTenant, Role::TenantA | Role::TenantB)
            | (Access::Node, Role::NodeN1)
    )
}

macro_rules! row {
    ($m:ident, $t:literal, $a:ident, $f:expr) => {
        Row {
            method: Method::$m,
            template: $t,
            access: Access::$a,
            request: $f,
        }
    };
}

fn p(s: &str) -> (String, Option<Value>) {
    (s.to_string(), None)
}

fn pb(s: &str, body: Value) -> (String, Option<Value>) {
    (s.to_string(), Some(body))
}

fn rows() -> Vec<Row> {
    vec![
        row!(GET, "/healthz", Public, |_| p("/healthz")),
        row!(GET, "/v1/openapi.json", Public, |_| p("/v1/openapi.json")),
        row!(GET, "/metrics", Public, |_| p("/metrics")),
        row!(GET, "/v1/site", Admin, |_| p("/v1/site")),
        row!(PUT, "/v1/site", Admin, |_| pb("/v1/site", site_json())),
        row!(GET, "/v1/racks", Admin, |_| p("/v1/racks")),
        row!(POST, "/v1/racks", Admin, |_| pb(
            "/v1/racks",
            json!({"name": "r2"})
        )),
        row!(GET, "/v1/racks/{name}", Admin, |_| p("/v1/racks/r1")),
        row!(PUT, "/v1/racks/{name}", Admin, |_| pb(
            "/v1/racks/r1",
            json!({"name": "r1", "description": "x"})
        )),
        row!(DELETE, "/v1/racks/{name}", Admin, |_| p("/v1/racks/r1")),
        row!(GET, "/v1/switches", Admin, |_| p("/v1/switches")),
        row!(POST, "/v1/switches", Admin, |_| pb(
            "/v1/switches",
            json!({"name": "spine1", "role": "spine"})
        )),
        row!(GET, "/v1/switches/{name}", Admin, |_| p(
            "/v1/switches/leaf1"
        )),
        row!(PUT, "/v1/switches/{name}", Admin, |_| pb(
            "/v1/switches/leaf1",
            json!({"name": "leaf1", "role": "leaf", "rack": "r1", "ports": [{"name": "swp1", "node": "n1"}]})
        )),
        row!(DELETE, "/v1/switches/{name}", Admin, |_| p(
            "/v1/switches/leaf1"
        )),
        row!(GET, "/v1/switches/{name}/config", Admin, |_| p(
            "/v1/switches/leaf1/config"
        )),
        row!(GET, "/v1/tenants", AnyTenant, |_| p("/v1/tenants")),
        row!(POST, "/v1/tenants", Admin, |_| pb(
            "/v1/tenants",
            json!({"name": "d"})
        )),
        row!(GET, "/v1/tenants/{name}", TenantA, |_| p("/v1/tenants/a")),
        row!(PUT, "/v1/tenants/{name}", Admin, |_| pb(
            "/v1/tenants/a",
            json!({"name": "a", "description": "x"})
        )),
        row!(DELETE, "/v1/tenants/{name}", Admin, |_| p("/v1/tenants/c")),
        row!(GET, "/v1/pools", AnyTenant, |_| p("/v1/pools")),
        row!(POST, "/v1/pools", Admin, |_| pb(
            "/v1/pools",
            json!({"name": "p3", "cidr": "10.50.0.0/16", "kind": "tenant_subnets"})
        )),
        row!(GET, "/v1/pools/{name}", AnyTenant, |_| p("/v1/pools/tp")),
        row!(DELETE, "/v1/pools/{name}", Admin, |_| p("/v1/pools/empty")),
        row!(GET, "/v1/subnets", AnyTenant, |_| p("/v1/subnets")),
        row!(POST, "/v1/subnets", TenantA, |_| pb(
            "/v1/subnets",
            json!({"name": "a-new", "tenant": "a", "pool": "tp", "prefix_len": 24})
        )),
        row!(GET, "/v1/subnets/{name}", TenantA, |_| p(
            "/v1/subnets/a-net"
        )),
        row!(DELETE, "/v1/subnets/{name}", TenantA, |_| p(
            "/v1/subnets/a-empty"
        )),
        row!(GET, "/v1/ipam/check", Admin, |_| p("/v1/ipam/check")),
        row!(POST, "/v1/ipam/repair", Admin, |_| p("/v1/ipam/repair")),
        row!(GET, "/v1/subnets/{subnet}/addresses", TenantA, |_| p(
            "/v1/subnets/a-net/addresses"
        )),
        row!(POST, "/v1/subnets/{subnet}/addresses", TenantA, |_| pb(
            "/v1/subnets/a-net/addresses",
            json!({"owner": {"kind": "vm", "id": "vm-new"}, "node": "n1"})
        )),
        row!(GET, "/v1/pools/{pool}/addresses", AnyTenant, |_| p(
            "/v1/pools/fip/addresses"
        )),
        row!(POST, "/v1/pools/{pool}/addresses", TenantA, |_| pb(
            "/v1/pools/fip/addresses",
            json!({"owner": {"kind": "service", "id": "a/new"}})
        )),
        row!(GET, "/v1/addresses/{ip}", TenantA, |f| p(&format!(
            "/v1/addresses/{}",
            f.a_ip
        ))),
        row!(DELETE, "/v1/addresses/{ip}", TenantA, |f| p(&format!(
            "/v1/addresses/{}",
            f.a_ip
        ))),
        row!(GET, "/v1/nodes", Admin, |_| p("/v1/nodes")),
        row!(POST, "/v1/nodes", Admin, |_| pb(
            "/v1/nodes",
            json!({"name": "n3"})
        )),
        row!(GET, "/v1/nodes/{name}", Node, |_| p("/v1/nodes/n1")),
        row!(PUT, "/v1/nodes/{name}", Admin, |_| pb(
            "/v1/nodes/n1",
            json!({"name": "n1", "role": "gateway"})
        )),
        row!(DELETE, "/v1/nodes/{name}", Admin, |_| p("/v1/nodes/n2")),
        row!(POST, "/v1/nodes/{name}/register", Node, |_| pb(
            "/v1/nodes/n1/register",
            json!({"name": "n1"})
        )),
        row!(POST, "/v1/nodes/{name}/heartbeat", Node, |_| pb(
            "/v1/nodes/n1/heartbeat",
            json!({"version": "1.0", "applied_revision": 3})
        )),
        row!(GET, "/v1/nodes/{name}/desired-state", Node, |_| p(
            "/v1/nodes/n1/desired-state"
        )),
        row!(GET, "/v1/tokens", Admin, |_| p("/v1/tokens")),
        row!(POST, "/v1/tokens", Admin, |_| pb(
            "/v1/tokens",
            json!({"role": "tenant", "tenants": ["a"]})
        )),
        row!(DELETE, "/v1/tokens/{id}", Admin, |f| p(&format!(
            "/v1/tokens/{}",
            f.tenant_a_id
        ))),
    ]
}

fn token(f: &Fixture, h: &Harness, role: Role) -> Option<String> {
    match role {
        Role::NoToken => None,
        Role::BadToken => Some("0".repeat(64)),
        Role::Admin => Some(h.admin.clone()),
        Role::TenantA => Some(f.tenant_a.clone()),
        Role::TenantB => Some(f.tenant_b.clone()),
        Role::NodeN1 => Some(f.node_n1.clone()),
    }
}

#[tokio::test]
async fn every_route_has_a_row_and_every_row_a_route() {
    let doc = clos_controller::openapi();
    let mut routes = BTreeSet::new();
    for (path, item) in &doc.paths.paths {
        for (m, op) in [
            ("GET", &item.get),
            ("PUT", &item.put),
            ("POST", &item.post),
            ("DELETE", &item.delete),
            ("PATCH", &item.patch),
            ("HEAD", &item.head),
            ("OPTIONS", &item.options),
            ("TRACE", &item.trace),
        ] {
            if op.is_some() {
                routes.insert(format!("{m} {path}"));
            }
        }
    }
    let table: BTreeSet<String> = rows()
        .iter()
        .map(|r| format!("{} {}", r.method, r.template))
        .collect();
    let missing: Vec<_> = routes.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "routes without an authz row (add them to rows()): {missing:?}"
    );
    let stale: Vec<_> = table.difference(&routes).collect();
    assert!(stale.is_empty(), "rows without a route: {stale:?}");
}

#[tokio::test]
async fn authz_matrix() {
    // Denied requests change nothing, so one fixture serves all of them; each allowed request
    // gets a fresh fixture so that it can succeed.
    let shared = Harness::new().await;
    let sf = shared.fixture().await;
    let a_markers = [
        "a-net",
        "a-empty",
        sf.a_ip.as_str(),
        "a/lb",
        "\"name\":\"a\"",
    ];
    let mut checked = 0;
    for row in rows() {
        for role in ROLES {
            let ok = allowed(row.access, role);
            let fresh;
            let (h, f) = if ok {
                fresh = Harness::new().await;
                let f = fresh.fixture().await;
                (&fresh, f)
            } else {
                (&shared, sf.clone())
            };
            let (path, body) = (row.request)(&f);
            let before = h.revision().await;
            let t = token(&f, h, role);
            let a = h.call(row.method.clone(), &path, t.as_deref(), body).await;
            let ctx = format!(
                "{:?} {} {path} ({:?}): {} {}",
                role,
                row.method,
                row.access,
                a.status,
                String::from_utf8_lossy(&a.raw)
            );
            if ok {
                assert!(a.status.is_success(), "allowed but failed: {ctx}");
                if role == Role::TenantB && row.access == Access::AnyTenant {
                    let text = String::from_utf8_lossy(&a.raw);
                    for m in a_markers {
                        assert!(!text.contains(m), "tenant B sees {m}: {ctx}");
                    }
                }
            } else {
                match role {
                    Role::NoToken | Role::BadToken => {
                        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{ctx}")
                    }
                    _ => assert!(
                        a.status == StatusCode::FORBIDDEN || a.status == StatusCode::NOT_FOUND,
                        "{ctx}"
                    ),
                }
                assert_eq!(a.content_type, "application/problem+json", "{ctx}");
                assert_eq!(h.revision().await, before, "denied but wrote: {ctx}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, rows().len() * ROLES.len());
}

/// Tenant A with B's objects, and unknown routes for every role.
#[tokio::test]
async fn swapped_ids_and_unknown_routes() {
    let h = Harness::new().await;
    let f = h.fixture().await;
    let before = h.revision().await;
    for (m, path, body) in [
        (Method::GET, "/v1/subnets/b-net".to_string(), None),
        (Method::GET, "/v1/subnets/b-net/addresses".to_string(), None),
        (
            Method::POST,
            "/v1/subnets/b-net/addresses".to_string(),
            Some(json!({"owner": {"kind": "vm", "id": "x"}, "node": "n1"})),
        ),
        (Method::GET, format!("/v1/addresses/{}", f.b_ip), None),
        (Method::DELETE, format!("/v1/addresses/{}", f.b_ip), None),
        (Method::DELETE, "/v1/subnets/b-net".to_string(), None),
        (Method::GET, "/v1/tenants/b".to_string(), None),
        (
            Method::POST,
            "/v1/subnets".to_string(),
            Some(json!({"name": "sneaky", "tenant": "b", "pool": "tp", "prefix_len": 24})),
        ),
    ] {
        let a = h.call(m.clone(), &path, Some(&f.tenant_a), body).await;
        assert!(
            a.status == StatusCode::NOT_FOUND || a.status == StatusCode::FORBIDDEN,
            "{m} {path}: {}",
            a.status
        );
    }
    // A's view of B's subnet is the same as of a subnet that does not exist.
    let missing = h
        .call(Method::GET, "/v1/subnets/zzz", Some(&f.tenant_a), None)
        .await;
    let other = h
        .call(Method::GET, "/v1/subnets/b-net", Some(&f.tenant_a), None)
        .await;
    assert_eq!(missing.status, other.status);
    assert_eq!(missing.body["type"], other.body["type"]);
    for t in [
        None,
        Some(h.admin.clone()),
        Some(f.tenant_a.clone()),
        Some(f.node_n1.clone()),
    ] {
        let a = h.call(Method::GET, "/v1/secrets", t.as_deref(), None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(a.body["type"], "urn:clos:problem:no-route");
        let a = h.call(Method::DELETE, "/v1/site", t.as_deref(), None).await;
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    }
    assert_eq!(h.revision().await, before);
}
