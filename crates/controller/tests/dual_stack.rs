//! Dual-stack subnets: an IPv4 and an IPv6 part, created, allocated in, released and deleted
//! together; nothing half-applied when one part fails.

mod common;

use axum::http::{Method, StatusCode};
use common::Harness;
use serde_json::{Value, json};

async fn setup(h: &Harness, v6_pool: &str) {
    h.ok(Method::POST, "/v1/tenants", Some(json!({"name": "acme"})))
        .await;
    h.ok(
        Method::POST,
        "/v1/pools",
        Some(json!({"name": "tp4", "cidr": "10.1.0.0/16", "kind": "tenant_subnets"})),
    )
    .await;
    h.ok(
        Method::POST,
        "/v1/pools",
        Some(json!({"name": "tp6", "cidr": v6_pool, "kind": "tenant_subnets", "block_prefix_len": 124})),
    )
    .await;
    for n in ["n1", "n2"] {
        h.ok(Method::POST, "/v1/nodes", Some(json!({"name": n})))
            .await;
    }
}

fn dual(name: &str, v6_len: u8) -> Value {
    json!({
        "name": name, "tenant": "acme", "pool": "tp4", "prefix_len": 24,
        "ipv6": {"pool": "tp6", "prefix_len": v6_len},
    })
}

fn vm(id: &str, node: &str) -> Value {
    json!({"owner": {"kind": "vm", "id": id}, "node": node})
}

#[tokio::test]
async fn create_allocate_release_delete() {
    let h = Harness::new().await;
    setup(&h, "fd00:1::/64").await;
    let s = h
        .ok(Method::POST, "/v1/subnets", Some(dual("web", 120)))
        .await;
    assert_eq!(s["cidr"], "10.1.0.0/24", "{s}");
    assert_eq!(s["ipv6"]["pool"], "tp6", "{s}");
    assert_eq!(s["ipv6"]["cidr"], "fd00:1::/120", "{s}");
    assert!(s["ipv6"]["usage"].is_object(), "{s}");

    // The IPv6 part is not a subnet of its own.
    let list = h.ok(Method::GET, "/v1/subnets", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["ipv6"]["cidr"], "fd00:1::/120");
    let got = h.ok(Method::GET, "/v1/subnets/web", None).await;
    assert_eq!(got["ipv6"]["cidr"], "fd00:1::/120");
    let hidden = h.admin(Method::GET, "/v1/subnets/.v6.web", None).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);

    // One address of each family, from the node's blocks.
    let a = h
        .ok(
            Method::POST,
            "/v1/subnets/web/addresses",
            Some(vm("vm-1", "n1")),
        )
        .await;
    assert_eq!(a["ip"], "10.1.0.0", "{a}");
    assert_eq!(a["ip6"], "fd00:1::", "{a}");
    assert_eq!(a["subnet"], "web");
    // Idempotent: the same pair again.
    let again = h
        .ok(
            Method::POST,
            "/v1/subnets/web/addresses",
            Some(vm("vm-1", "n1")),
        )
        .await;
    assert_eq!((&again["ip"], &again["ip6"]), (&a["ip"], &a["ip6"]));
    let b = h
        .ok(
            Method::POST,
            "/v1/subnets/web/addresses",
            Some(vm("vm-2", "n2")),
        )
        .await;

    // Listing shows both; reading either address shows the pair.
    let page = h.ok(Method::GET, "/v1/subnets/web/addresses", None).await;
    let pairs: Vec<(&str, &str)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["ip"].as_str().unwrap(), a["ip6"].as_str().unwrap()))
        .collect();
    assert_eq!(
        pairs,
        [
            (a["ip"].as_str().unwrap(), a["ip6"].as_str().unwrap()),
            (b["ip"].as_str().unwrap(), b["ip6"].as_str().unwrap())
        ]
    );
    let by6 = h.ok(Method::GET, "/v1/addresses/fd00:1::", None).await;
    assert_eq!((&by6["ip"], &by6["ip6"]), (&a["ip"], &a["ip6"]), "{by6}");
    assert_eq!(by6["subnet"], "web");
    assert_eq!(by6["pool"], "tp4");
    let sub = h.ok(Method::GET, "/v1/subnets/web", None).await;
    assert_eq!(sub["usage"]["allocated"], 2, "{sub}");
    assert_eq!(sub["ipv6"]["usage"]["allocated"], 2, "{sub}");

    // The subnet cannot go while either part holds an address.
    let r = h
        .admin(
            Method::DELETE,
            &format!("/v1/addresses/{}", a["ip"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let gone = h.admin(Method::GET, "/v1/addresses/fd00:1::", None).await;
    assert_eq!(
        gone.status,
        StatusCode::NOT_FOUND,
        "releasing one releases both"
    );
    let busy = h.admin(Method::DELETE, "/v1/subnets/web", None).await;
    assert_eq!(busy.status, StatusCode::CONFLICT, "{:?}", busy.body);
    // Releasing by the IPv6 address releases the pair too.
    let r = h
        .admin(
            Method::DELETE,
            &format!("/v1/addresses/{}", b["ip6"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let gone = h
        .admin(
            Method::GET,
            &format!("/v1/addresses/{}", b["ip"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let r = h.admin(Method::DELETE, "/v1/subnets/web", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let list = h.ok(Method::GET, "/v1/subnets", None).await;
    assert_eq!(list["items"], json!([]));
    // Both ranges are free again.
    h.ok(Method::POST, "/v1/subnets", Some(dual("web2", 120)))
        .await;
    let check = h.ok(Method::GET, "/v1/ipam/check", None).await;
    assert_eq!(check["healthy"], true, "{check}");
}

#[tokio::test]
async fn single_family_requests_still_work() {
    let h = Harness::new().await;
    setup(&h, "fd00:1::/64").await;
    let v6 = h
        .ok(
            Method::POST,
            "/v1/subnets",
            Some(json!({"name": "only6", "tenant": "acme", "pool": "tp6", "prefix_len": 120})),
        )
        .await;
    assert!(v6.get("ipv6").is_none(), "{v6}");
    let a = h
        .ok(
            Method::POST,
            "/v1/subnets/only6/addresses",
            Some(vm("vm-1", "n1")),
        )
        .await;
    assert!(a.get("ip6").is_none(), "{a}");
    assert!(a["ip"].as_str().unwrap().starts_with("fd00:1::"));

    // The families must match their parts.
    let before = h.revision().await;
    let mut swapped = dual("bad", 120);
    swapped["pool"] = json!("tp6");
    swapped["prefix_len"] = json!(120);
    swapped["ipv6"]["pool"] = json!("tp4");
    let r = h.admin(Method::POST, "/v1/subnets", Some(swapped)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let r = h
        .admin(
            Method::POST,
            "/v1/subnets",
            Some(
                json!({"name": "bad", "tenant": "acme", "pool": "tp4", "prefix_len": 24,
                "ipv6": {"pool": "tp6", "cidr": "10.1.9.0/24"}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["field"], "ipv6.cidr");
    assert_eq!(h.revision().await, before);
}

#[tokio::test]
async fn a_failing_v6_part_writes_nothing() {
    let h = Harness::new().await;
    // Room for one IPv6 /124 only.
    setup(&h, "fd00:1::/124").await;
    h.ok(Method::POST, "/v1/subnets", Some(dual("web", 124)))
        .await;

    // Subnet creation: the IPv4 part fits, the IPv6 pool is full.
    let before = h.revision().await;
    let r = h
        .admin(Method::POST, "/v1/subnets", Some(dual("db", 124)))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(h.revision().await, before, "a half subnet was written");
    let list = h.ok(Method::GET, "/v1/subnets", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    // The IPv4 range it would have taken is still free.
    let next = h
        .ok(
            Method::POST,
            "/v1/subnets",
            Some(json!({"name": "v4", "tenant": "acme", "pool": "tp4", "prefix_len": 24})),
        )
        .await;
    assert_eq!(next["cidr"], "10.1.1.0/24");

    // Allocation: 16 IPv6 addresses, 256 IPv4 ones.
    for i in 0..16 {
        h.ok(
            Method::POST,
            "/v1/subnets/web/addresses",
            Some(vm(&format!("vm-{i}"), if i % 2 == 0 { "n1" } else { "n2" })),
        )
        .await;
    }
    let before = h.revision().await;
    let desired = h.ok(Method::GET, "/v1/nodes/n1/desired-state", None).await;
    let r = h
        .admin(
            Method::POST,
            "/v1/subnets/web/addresses",
            Some(vm("vm-x", "n1")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.body["type"], "urn:clos:problem:exhausted");
    assert!(
        !r.body["detail"].as_str().unwrap().contains(".v6."),
        "{:?}",
        r.body
    );
    assert_eq!(h.revision().await, before, "the IPv4 half was written");
    let sub = h.ok(Method::GET, "/v1/subnets/web", None).await;
    assert_eq!(
        sub["usage"]["allocated"], 16,
        "the IPv4 half is kept in memory: {sub}"
    );
    // A static IPv4 address in a fresh block of a new node: the claimed block goes back too.
    h.ok(Method::POST, "/v1/nodes", Some(json!({"name": "n3"})))
        .await;
    let before = h.revision().await;
    let mut req = vm("vm-y", "n3");
    req["ip"] = json!("10.1.0.200");
    req["fixed"] = json!(true);
    let r = h
        .admin(Method::POST, "/v1/subnets/web/addresses", Some(req))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(h.revision().await, before);
    let page = h
        .ok(Method::GET, "/v1/subnets/web/addresses?limit=1000", None)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 16);
    let d3 = h.ok(Method::GET, "/v1/nodes/n3/desired-state", None).await;
    assert_eq!(d3["state"]["advertisements"], json!([]), "{d3}");
    let again = h.ok(Method::GET, "/v1/nodes/n1/desired-state", None).await;
    assert_eq!(again["state"], desired["state"]);
    let check = h.ok(Method::GET, "/v1/ipam/check", None).await;
    assert_eq!(check["healthy"], true, "{check}");
    // After a release there is room again, for both.
    h.admin(Method::DELETE, "/v1/addresses/10.1.0.0", None)
        .await;
    let ok = h
        .ok(
            Method::POST,
            "/v1/subnets/web/addresses",
            Some(vm("vm-x", "n1")),
        )
        .await;
    assert!(ok["ip6"].is_string(), "{ok}");
}

#[tokio::test]
async fn fixed_owner_gets_the_same_pair_back() {
    let h = Harness::new().await;
    setup(&h, "fd00:1::/64").await;
    h.ok(Method::POST, "/v1/subnets", Some(dual("web", 120)))
        .await;
    let mut req = vm("ns/pod-0", "n1");
    req["fixed"] = json!(true);
    let a = h
        .ok(Method::POST, "/v1/subnets/web/addresses", Some(req.clone()))
        .await;
    assert_eq!(a["fixed"], true);
    let ip = a["ip"].as_str().unwrap();
    let r = h
        .admin(Method::DELETE, &format!("/v1/addresses/{ip}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let held = h
        .ok(
            Method::GET,
            &format!("/v1/addresses/{}", a["ip6"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(held["held"], true, "{held}");
    assert_eq!(held["ip"], a["ip"]);
    // Someone else does not get them.
    let other = h
        .ok(
            Method::POST,
            "/v1/subnets/web/addresses",
            Some(vm("vm-2", "n1")),
        )
        .await;
    assert_ne!(other["ip"], a["ip"]);
    assert_ne!(other["ip6"], a["ip6"]);
    // The fixed owner gets the same pair back, on another node.
    req["node"] = json!("n2");
    let back = h
        .ok(Method::POST, "/v1/subnets/web/addresses", Some(req))
        .await;
    assert_eq!((&back["ip"], &back["ip6"]), (&a["ip"], &a["ip6"]), "{back}");
    assert_eq!(back["node"], "n2");
    // Forgetting frees both.
    let r = h
        .admin(
            Method::DELETE,
            &format!("/v1/addresses/{ip}?forget=true"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let page = h.ok(Method::GET, "/v1/subnets/web/addresses", None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    let sub = h.ok(Method::GET, "/v1/subnets/web", None).await;
    assert_eq!(sub["ipv6"]["usage"]["allocated"], 1, "{sub}");
}

#[tokio::test]
async fn desired_state_carries_both_families() {
    let h = Harness::new().await;
    setup(&h, "fd00:1::/64").await;
    h.ok(Method::POST, "/v1/subnets", Some(dual("web", 120)))
        .await;
    h.ok(
        Method::POST,
        "/v1/subnets/web/addresses",
        Some(vm("vm-1", "n1")),
    )
    .await;
    let d = h.ok(Method::GET, "/v1/nodes/n1/desired-state", None).await;
    assert_eq!(
        d["state"]["advertisements"],
        json!(["10.1.0.0/26", "fd00:1::/124"]),
        "{d}"
    );
    let d2 = h.ok(Method::GET, "/v1/nodes/n2/desired-state", None).await;
    assert_eq!(d2["state"]["advertisements"], json!([]), "{d2}");
}

#[tokio::test]
async fn problems_say_their_hint_once() {
    let h = Harness::new().await;
    setup(&h, "fd00:1::/64").await;
    h.ok(Method::POST, "/v1/subnets", Some(dual("web", 120)))
        .await;
    h.ok(
        Method::POST,
        "/v1/subnets/web/addresses",
        Some(vm("vm-1", "n1")),
    )
    .await;
    let r = h
        .admin(
            Method::POST,
            "/v1/subnets/web/addresses",
            Some(vm("vm-1", "n2")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let overlap = h
        .admin(
            Method::POST,
            "/v1/subnets",
            Some(json!({"name": "o", "tenant": "acme", "pool": "tp4", "cidr": "10.1.0.0/25"})),
        )
        .await;
    assert_eq!(overlap.status, StatusCode::CONFLICT, "{:?}", overlap.body);
    for p in [&r.body, &overlap.body] {
        let detail = p["detail"].as_str().unwrap();
        let hint = p["hint"].as_str().unwrap();
        assert!(!hint.is_empty(), "{p}");
        assert!(!detail.contains(hint), "hint repeated in the detail: {p}");
        let text = format!("{detail} {hint}");
        for phrase in ["release it there first", "pick a free range"] {
            assert!(text.matches(phrase).count() <= 1, "{p}");
        }
    }
}
