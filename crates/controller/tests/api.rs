//! API behaviour, in-process: resources, pagination, optimistic concurrency, problem details
//! for every error (with nothing written), OpenAPI, metrics.

mod common;

use axum::http::{Method, StatusCode};
use common::Harness;
use serde_json::{Value, json};

#[tokio::test]
async fn allocate_list_release() {
    let h = Harness::new().await;
    let f = h.fixture().await;
    assert!(f.a_ip.starts_with("10.0.1."), "{}", f.a_ip);

    // Idempotent per owner.
    let again = h
        .ok(
            Method::POST,
            "/v1/subnets/a-net/addresses",
            Some(json!({"owner": {"kind": "vm", "id": "vm-a"}, "node": "n1"})),
        )
        .await;
    assert_eq!(again["ip"], json!(f.a_ip));
    assert!(again["resource_version"].as_u64().unwrap() > 0);

    // A static address and a fixed one.
    let st = h
        .ok(
            Method::POST,
            "/v1/subnets/a-net/addresses",
            Some(json!({"owner": {"kind": "vm", "id": "vm-s"}, "node": "n2", "ip": "10.0.1.200"})),
        )
        .await;
    assert_eq!(st["ip"], "10.0.1.200");
    let fixed = h
        .ok(
            Method::POST,
            "/v1/subnets/a-net/addresses",
            Some(json!({"owner": {"kind": "container", "id": "ns/pod-0"}, "node": "n1", "fixed": true})),
        )
        .await;
    let fixed_ip = fixed["ip"].as_str().unwrap().to_string();
    let a = h
        .admin(Method::DELETE, &format!("/v1/addresses/{fixed_ip}"), None)
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let held = h
        .ok(Method::GET, &format!("/v1/addresses/{fixed_ip}"), None)
        .await;
    assert_eq!(held["held"], true);
    // The fixed owner gets it back on another node.
    let back = h
        .ok(
            Method::POST,
            "/v1/subnets/a-net/addresses",
            Some(json!({"owner": {"kind": "container", "id": "ns/pod-0"}, "node": "n2", "fixed": true})),
        )
        .await;
    assert_eq!(back["ip"], json!(fixed_ip));
    assert_eq!(back["node"], "n2");

    let page = h.ok(Method::GET, "/v1/subnets/a-net/addresses", None).await;
    let ips: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips.len(), 3, "{page}");
    assert!(ips.contains(&"10.0.1.200"));
    assert_eq!(page["items"][0]["tenant"], "a");

    let sub = h.ok(Method::GET, "/v1/subnets/a-net", None).await;
    assert_eq!(sub["usage"]["allocated"], 3);
    let pool = h.ok(Method::GET, "/v1/pools/tp", None).await;
    assert_eq!(pool["usage"]["allocated"], 4);
    assert_eq!(pool["block_prefix_len"], 26);

    // Release everything, then the subnet can go.
    for ip in &ips {
        let a = h
            .admin(
                Method::DELETE,
                &format!("/v1/addresses/{ip}?forget=true"),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{ip}: {:?}", a.body);
    }
    let a = h.admin(Method::DELETE, "/v1/subnets/a-net", None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{:?}", a.body);

    // Floating IP with the tenant in its owner id.
    let fip = h
        .ok(Method::GET, &format!("/v1/addresses/{}", f.fip_a), None)
        .await;
    assert_eq!(fip["tenant"], "a");
    assert_eq!(fip["pool"], "fip");
}

#[tokio::test]
async fn desired_state_follows_blocks() {
    let h = Harness::new().await;
    h.fixture().await;
    let d = h.ok(Method::GET, "/v1/nodes/n1/desired-state", None).await;
    let adv: Vec<&str> = d["state"]["advertisements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(adv, ["10.0.1.0/26", "10.0.2.0/26"]);
    let asn = d["state"]["asn"].as_u64().unwrap();
    assert!(asn >= 4_200_000_000, "{asn}");
    let n2 = h.ok(Method::GET, "/v1/nodes/n2", None).await;
    assert_ne!(n2["asn"].as_u64().unwrap(), asn);
}

#[tokio::test]
async fn pagination_walks_every_item_once() {
    let h = Harness::new().await;
    for i in 0..25 {
        h.ok(
            Method::POST,
            "/v1/tenants",
            Some(json!({"name": format!("t{i:02}")})),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/tenants?limit=10&after={a}"),
            None => "/v1/tenants?limit=10".to_string(),
        };
        let page = h.ok(Method::GET, &path, None).await;
        pages += 1;
        for t in page["items"].as_array().unwrap() {
            seen.push(t["name"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("t{i:02}")).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn stale_updates_and_deletes_conflict() {
    let h = Harness::new().await;
    let t = h
        .ok(Method::POST, "/v1/tenants", Some(json!({"name": "acme"})))
        .await;
    let v1 = t["resource_version"].as_u64().unwrap();
    let t2 = h
        .ok(
            Method::PUT,
            "/v1/tenants/acme",
            Some(json!({"name": "acme", "description": "x", "resource_version": v1})),
        )
        .await;
    let v2 = t2["resource_version"].as_u64().unwrap();
    assert!(v2 > v1);
    let stale = h
        .admin(
            Method::PUT,
            "/v1/tenants/acme",
            Some(json!({"name": "acme", "description": "y", "resource_version": v1})),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(
        stale.body["type"],
        "urn:clos:problem:stale-resource-version"
    );
    let stale = h
        .admin(
            Method::DELETE,
            &format!("/v1/tenants/acme?resource_version={v1}"),
            None,
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    let ok = h
        .admin(
            Method::DELETE,
            &format!("/v1/tenants/acme?resource_version={v2}"),
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);

    // Nodes go through the IPAM writer: same contract.
    let n = h
        .ok(Method::POST, "/v1/nodes", Some(json!({"name": "n9"})))
        .await;
    let nv = n["resource_version"].as_u64().unwrap();
    let n2 = h
        .ok(
            Method::PUT,
            "/v1/nodes/n9",
            Some(json!({"name": "n9", "role": "gateway", "resource_version": nv})),
        )
        .await;
    assert_eq!(n2["asn"], n["asn"]);
    let stale = h
        .admin(
            Method::PUT,
            "/v1/nodes/n9",
            Some(json!({"name": "n9", "resource_version": nv})),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
}

/// One row: a request that must fail, with its status, problem type and field.
struct Case {
    what: &'static str,
    method: Method,
    path: &'static str,
    body: Option<Value>,
    status: u16,
    kind: &'static str,
    field: Option<&'static str>,
}

fn case(
    what: &'static str,
    method: Method,
    path: &'static str,
    body: Option<Value>,
    status: u16,
    kind: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        what,
        method,
        path,
        body,
        status,
        kind,
        field,
    }
}

#[tokio::test]
async fn every_error_is_a_problem_and_writes_nothing() {
    let h = Harness::new().await;
    h.fixture().await;
    // A tiny pool to exhaust.
    h.ok(
        Method::POST,
        "/v1/pools",
        Some(json!({"name": "tiny", "cidr": "10.9.0.0/30", "kind": "tenant_subnets"})),
    )
    .await;
    h.ok(
        Method::POST,
        "/v1/subnets",
        Some(json!({"name": "tiny-net", "tenant": "a", "pool": "tiny", "cidr": "10.9.0.0/30"})),
    )
    .await;
    for i in 0..4 {
        h.ok(
            Method::POST,
            "/v1/subnets/tiny-net/addresses",
            Some(json!({"owner": {"kind": "vm", "id": format!("t{i}")}, "node": "n1"})),
        )
        .await;
    }
    let cases = [
        case(
            "unparsable CIDR",
            Method::POST,
            "/v1/pools",
            Some(json!({"name": "x", "cidr": "10.0.0.300/24", "kind": "tenant_subnets"})),
            400,
            "bad-request",
            None,
        ),
        case(
            "host bits set",
            Method::POST,
            "/v1/pools",
            Some(json!({"name": "x", "cidr": "10.1.0.1/16", "kind": "tenant_subnets"})),
            422,
            "invalid-field",
            Some("cidr"),
        ),
        case(
            "unknown field",
            Method::POST,
            "/v1/tenants",
            Some(json!({"name": "x", "colour": "red"})),
            400,
            "bad-request",
            Some("colour"),
        ),
        case(
            "missing field",
            Method::POST,
            "/v1/pools",
            Some(json!({"name": "x", "kind": "tenant_subnets"})),
            400,
            "bad-request",
            Some("cidr"),
        ),
        case(
            "no body",
            Method::POST,
            "/v1/tenants",
            None,
            400,
            "bad-request",
            None,
        ),
        case(
            "bad name",
            Method::POST,
            "/v1/tenants",
            Some(json!({"name": "a b"})),
            422,
            "invalid-field",
            Some("name"),
        ),
        case(
            "overlapping pool",
            Method::POST,
            "/v1/pools",
            Some(json!({"name": "x", "cidr": "10.0.0.0/8", "kind": "tenant_subnets"})),
            409,
            "overlap",
            None,
        ),
        case(
            "overlapping subnet",
            Method::POST,
            "/v1/subnets",
            Some(json!({"name": "x", "tenant": "a", "pool": "tp", "cidr": "10.0.1.128/25"})),
            409,
            "overlap",
            None,
        ),
        case(
            "subnet outside its pool",
            Method::POST,
            "/v1/subnets",
            Some(json!({"name": "x", "tenant": "a", "pool": "tp", "cidr": "10.1.0.0/24"})),
            422,
            "invalid-request",
            None,
        ),
        case(
            "subnet of unknown tenant",
            Method::POST,
            "/v1/subnets",
            Some(json!({"name": "x", "tenant": "nope", "pool": "tp", "cidr": "10.0.9.0/24"})),
            422,
            "invalid-field",
            Some("tenant"),
        ),
        case(
            "subnet in a pool that has no room",
            Method::POST,
            "/v1/subnets",
            Some(json!({"name": "x", "tenant": "a", "pool": "tiny", "prefix_len": 31})),
            409,
            "exhausted",
            None,
        ),
        case(
            "exhausted subnet",
            Method::POST,
            "/v1/subnets/tiny-net/addresses",
            Some(json!({"owner": {"kind": "vm", "id": "t9"}, "node": "n1"})),
            409,
            "exhausted",
            None,
        ),
        case(
            "address outside subnet",
            Method::POST,
            "/v1/subnets/a-net/addresses",
            Some(json!({"owner": {"kind": "vm", "id": "q"}, "node": "n1", "ip": "10.0.2.9"})),
            422,
            "invalid-request",
            None,
        ),
        case(
            "address taken",
            Method::POST,
            "/v1/subnets/tiny-net/addresses",
            Some(json!({"owner": {"kind": "vm", "id": "q"}, "node": "n1", "ip": "10.9.0.1"})),
            409,
            "address-conflict",
            None,
        ),
        case(
            "no node in subnet allocation",
            Method::POST,
            "/v1/subnets/a-net/addresses",
            Some(json!({"owner": {"kind": "vm", "id": "q"}})),
            422,
            "invalid-field",
            Some("node"),
        ),
        case(
            "unknown node",
            Method::POST,
            "/v1/subnets/a-net/addresses",
            Some(json!({"owner": {"kind": "vm", "id": "q"}, "node": "n77"})),
            404,
            "not-found",
            None,
        ),
        case(
            "delete a subnet holding addresses",
            Method::DELETE,
            "/v1/subnets/tiny-net",
            None,
            409,
            "in-use",
            None,
        ),
        case(
            "delete a tenant owning subnets",
            Method::DELETE,
            "/v1/tenants/a",
            None,
            409,
            "conflict",
            None,
        ),
        case(
            "delete a pool holding subnets",
            Method::DELETE,
            "/v1/pools/tp",
            None,
            409,
            "in-use",
            None,
        ),
        case(
            "delete a node holding addresses",
            Method::DELETE,
            "/v1/nodes/n1",
            None,
            409,
            "in-use",
            None,
        ),
        case(
            "duplicate tenant",
            Method::POST,
            "/v1/tenants",
            Some(json!({"name": "a"})),
            409,
            "already-exists",
            None,
        ),
        case(
            "duplicate pool",
            Method::POST,
            "/v1/pools",
            Some(json!({"name": "tp", "cidr": "10.200.0.0/16", "kind": "tenant_subnets"})),
            409,
            "already-exists",
            None,
        ),
        case(
            "missing tenant",
            Method::GET,
            "/v1/tenants/nope",
            None,
            404,
            "not-found",
            None,
        ),
        case(
            "unknown address",
            Method::GET,
            "/v1/addresses/10.0.1.99",
            None,
            404,
            "not-found",
            None,
        ),
        case(
            "not an IP",
            Method::GET,
            "/v1/addresses/banana",
            None,
            400,
            "bad-request",
            Some("ip"),
        ),
        case(
            "unknown query parameter",
            Method::GET,
            "/v1/tenants?colour=red",
            None,
            400,
            "bad-request",
            None,
        ),
        case(
            "bad limit",
            Method::GET,
            "/v1/tenants?limit=0",
            None,
            400,
            "bad-request",
            Some("limit"),
        ),
        case(
            "unknown route",
            Method::GET,
            "/v1/nope",
            None,
            404,
            "no-route",
            None,
        ),
        case(
            "wrong method",
            Method::PATCH,
            "/v1/tenants",
            None,
            405,
            "method-not-allowed",
            None,
        ),
        case(
            "stale delete",
            Method::DELETE,
            "/v1/tenants/b?resource_version=1",
            None,
            409,
            "stale-resource-version",
            None,
        ),
        case(
            "rename in update",
            Method::PUT,
            "/v1/tenants/b",
            Some(json!({"name": "c"})),
            422,
            "invalid-field",
            Some("name"),
        ),
        case(
            "bad ASN plan",
            Method::PUT,
            "/v1/site",
            Some(
                json!({"name": "s", "asn_plan": {"spine_asn": 0, "rack_asn_first": 1, "rack_asn_last": 2,
                "host_asn_first": 4200000000u32, "host_asn_last": 4200000010u32}}),
            ),
            422,
            "invalid-field",
            Some("asn_plan.spine_asn"),
        ),
        case(
            "token role without tenants",
            Method::POST,
            "/v1/tokens",
            Some(json!({"role": "tenant"})),
            422,
            "invalid-field",
            Some("tenants"),
        ),
        case(
            "floating IP on a node",
            Method::POST,
            "/v1/pools/fip/addresses",
            Some(json!({"owner": {"kind": "service", "id": "x"}, "node": "n1"})),
            422,
            "invalid-field",
            Some("node"),
        ),
        case(
            "watch from a future revision of an unknown node",
            Method::GET,
            "/v1/nodes/ghost/desired-state?watch=true&from_revision=5",
            None,
            404,
            "not-found",
            None,
        ),
    ];
    for c in cases {
        let before = h.revision().await;
        let a = h.admin(c.method.clone(), c.path, c.body.clone()).await;
        let ctx = format!(
            "{}: {} {} -> {} {}",
            c.what,
            c.method,
            c.path,
            a.status,
            String::from_utf8_lossy(&a.raw)
        );
        assert_eq!(a.status.as_u16(), c.status, "{ctx}");
        assert_eq!(a.content_type, "application/problem+json", "{ctx}");
        assert_eq!(
            a.body["type"],
            format!("urn:clos:problem:{}", c.kind),
            "{ctx}"
        );
        assert_eq!(a.body["status"], c.status, "{ctx}");
        assert!(!a.body["title"].as_str().unwrap().is_empty(), "{ctx}");
        assert!(!a.body["detail"].as_str().unwrap().is_empty(), "{ctx}");
        assert!(!a.body["hint"].as_str().unwrap().is_empty(), "{ctx}");
        assert_eq!(a.body["field"].as_str(), c.field, "{ctx}");
        assert_eq!(h.revision().await, before, "{ctx}: something was written");
    }
}

#[tokio::test]
async fn unauthenticated_requests_get_401_problems() {
    let h = Harness::new().await;
    let a = h.call(Method::GET, "/v1/tenants", None, None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.content_type, "application/problem+json");
    let a = h.call(Method::GET, "/v1/tenants", Some("nope"), None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body["type"], "urn:clos:problem:unauthenticated");
    // Public routes.
    assert_eq!(
        h.call(Method::GET, "/healthz", None, None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn openapi_and_metrics() {
    let h = Harness::new().await;
    h.fixture().await;
    let doc = h.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc.body["paths"]["/v1/subnets/{subnet}/addresses"]["post"].is_object());
    assert!(doc.body["components"]["schemas"]["Problem"].is_object());
    assert!(doc.body["components"]["schemas"]["Subnet"].is_object());
    let m = h.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(m.status, StatusCode::OK);
    // What the document promises is what is served (schemathesis checks this too).
    let documented = &doc.body["paths"]["/metrics"]["get"]["responses"]["200"]["content"];
    let media_type = m.content_type.split(';').next().unwrap();
    assert!(
        documented[media_type].is_object(),
        "{media_type}: {documented}"
    );
    let desired =
        &doc.body["paths"]["/v1/nodes/{name}/desired-state"]["get"]["responses"]["200"]["content"];
    for media_type in ["application/json", "application/x-ndjson"] {
        assert!(desired[media_type].is_object(), "{media_type}: {desired}");
    }
    let limit = doc.body["paths"]["/v1/tenants"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap()["schema"]
        .clone();
    assert_eq!(
        (&limit["minimum"], &limit["maximum"]),
        (&json!(1), &json!(1000)),
        "{limit}"
    );
    let a = h.admin(Method::GET, "/v1/tenants?limit=1000", None).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = h.admin(Method::GET, "/v1/tenants?limit=1001", None).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let text = String::from_utf8(m.raw).unwrap();
    for needle in [
        "clos_http_requests_total{method=\"POST\",route=\"/v1/subnets/{subnet}/addresses\",status=\"201\"} 2",
        "clos_http_request_duration_seconds_bucket",
        "clos_ipam_allocations_total 3",
        "clos_ipam_allocated_addresses{scope=\"subnet\",name=\"a-net\"} 1",
        "clos_ipam_size_addresses{scope=\"pool\",name=\"fip\"} 256",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }
}

#[tokio::test]
async fn racks_and_nodes_get_asns_from_the_site_plan() {
    let h = Harness::new().await;
    h.fixture().await;
    let r1 = h.ok(Method::GET, "/v1/racks/r1", None).await;
    assert_eq!(r1["asn"], 4_200_000_001u32);
    let r2 = h
        .ok(Method::POST, "/v1/racks", Some(json!({"name": "r2"})))
        .await;
    assert_eq!(r2["asn"], 4_200_000_002u32);
    let n1 = h.ok(Method::GET, "/v1/nodes/n1", None).await;
    let n2 = h.ok(Method::GET, "/v1/nodes/n2", None).await;
    assert_eq!(n1["asn"], 4_200_010_000u32);
    assert_eq!(n2["asn"], 4_200_010_001u32);
    // Nodes in a rack that does not exist are refused.
    let a = h
        .admin(
            Method::POST,
            "/v1/nodes",
            Some(json!({"name": "n5", "rack": "nope"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.body["field"], "rack");
}
