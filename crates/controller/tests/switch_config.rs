//! `GET /v1/switches/{name}/config`: FRR configuration rendered from the inventory, with each
//! host port's prefix list built from the node's assignment.

mod common;

use axum::http::{Method, StatusCode};
use common::{Harness, site_json};
use serde_json::{Value, json};

async fn inventory(h: &Harness) -> (String, String) {
    h.ok(Method::PUT, "/v1/site", Some(site_json())).await;
    h.ok(Method::POST, "/v1/racks", Some(json!({"name": "r1"})))
        .await;
    for s in ["s1", "s2"] {
        h.ok(
            Method::POST,
            "/v1/switches",
            Some(json!({"name": s, "role": "spine", "loopback": "10.254.0.1",
                "ports": [{"name": "swp1"}, {"name": "swp2"}]})),
        )
        .await;
    }
    for n in ["h1", "h2"] {
        h.ok(
            Method::POST,
            "/v1/nodes",
            Some(json!({"name": n, "rack": "r1",
                "uplinks": [{"interface": "eth0", "switch": "l1", "port": format!("p-{n}")}]})),
        )
        .await;
    }
    h.ok(
        Method::POST,
        "/v1/switches",
        Some(
            json!({"name": "l1", "role": "leaf", "rack": "r1", "loopback": "10.254.0.3",
            "ports": [{"name": "swp1"}, {"name": "swp2"},
                      {"name": "p-h1", "node": "h1"}, {"name": "p-h2", "node": "h2"}]}),
        ),
    )
    .await;
    h.ok(Method::POST, "/v1/tenants", Some(json!({"name": "t"})))
        .await;
    h.ok(
        Method::POST,
        "/v1/pools",
        Some(json!({"name": "p", "cidr": "10.1.0.0/16", "kind": "tenant_subnets", "block_prefix_len": 28})),
    )
    .await;
    h.ok(
        Method::POST,
        "/v1/subnets",
        Some(json!({"name": "s", "tenant": "t", "pool": "p", "cidr": "10.1.0.0/24"})),
    )
    .await;
    let a: Value = h
        .ok(
            Method::POST,
            "/v1/subnets/s/addresses",
            Some(json!({"owner": {"kind": "host", "id": "h1"}, "node": "h1"})),
        )
        .await;
    let b: Value = h
        .ok(
            Method::POST,
            "/v1/subnets/s/addresses",
            Some(json!({"owner": {"kind": "host", "id": "h2"}, "node": "h2"})),
        )
        .await;
    (
        a["ip"].as_str().unwrap().to_string(),
        b["ip"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn leaf_config_follows_the_inventory_and_the_assignment() {
    let h = Harness::new().await;
    inventory(&h).await;
    let a = h.admin(Method::GET, "/v1/switches/l1/config", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.content_type.starts_with("text/plain"),
        "{}",
        a.content_type
    );
    let text = String::from_utf8(a.raw).unwrap();

    let desired = |n: &'static str| {
        let h = &h;
        async move {
            h.ok(Method::GET, &format!("/v1/nodes/{n}/desired-state"), None)
                .await["state"]
                .clone()
        }
    };
    let (d1, d2) = (desired("h1").await, desired("h2").await);
    // The rack's ASN and each host's own ASN.
    let rack = h.ok(Method::GET, "/v1/racks/r1", None).await;
    assert!(
        text.contains(&format!("router bgp {}\n", rack["asn"])),
        "{text}"
    );
    for (port, d) in [("p-h1", &d1), ("p-h2", &d2)] {
        assert!(
            text.contains(&format!(
                " neighbor {port} interface remote-as {}\n",
                d["asn"]
            )),
            "{text}"
        );
    }
    // Each host list holds exactly that host's advertisements.
    for (node, d) in [("h1", &d1), ("h2", &d2)] {
        let adv: Vec<&str> = d["advertisements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(!adv.is_empty(), "{d}");
        let listed: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("ip prefix-list CLOS-HOST-{node} ")))
            .filter(|l| l.contains(" permit "))
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(listed, adv, "{text}");
    }
    // The fabric list: the site's ranges (the pool is inside 10.0.0.0/8).
    assert!(
        text.contains("ip prefix-list CLOS-FABRIC seq 5 permit 10.0.0.0/8 le 32\n"),
        "{text}"
    );
    assert!(!text.contains("10.1.0.0/16"), "{text}");
    assert!(text.contains(" bgp router-id 10.254.0.3\n"), "{text}");

    // JSON form.
    let j = h
        .ok(Method::GET, "/v1/switches/l1/config?format=json", None)
        .await;
    assert_eq!(j["switch"], "l1");
    assert_eq!(j["software"], "frr");
    assert_eq!(j["config"].as_str().unwrap(), text);

    // The same leaf for BIRD: the same host lists, as filters.
    let b = h
        .ok(
            Method::GET,
            "/v1/switches/l1/config?software=bird&format=json",
            None,
        )
        .await;
    assert_eq!(b["software"], "bird");
    let bird = b["config"].as_str().unwrap();
    assert!(
        bird.contains(&format!("  local as {};\n", rack["asn"])),
        "{bird}"
    );
    for (port, d) in [("p-h1", &d1), ("p-h2", &d2)] {
        let adv: Vec<&str> = d["advertisements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            bird.contains(&format!("  if net ~ [ {} ] then accept;\n", adv.join(", "))),
            "{bird}"
        );
        assert!(
            bird.contains(&format!(
                "  interface \"{port}\";\n  neighbor range fe80::/10 as {};\n",
                d["asn"]
            )),
            "{bird}"
        );
    }

    // A spine.
    let s = h.admin(Method::GET, "/v1/switches/s1/config", None).await;
    let text = String::from_utf8(s.raw).unwrap();
    assert!(text.contains("router bgp 4200000000\n"), "{text}");
    assert!(text.contains(" neighbor swp2 interface peer-group CLOS-FABRIC\n"));
}

#[tokio::test]
async fn config_errors_name_what_to_fix() {
    let h = Harness::new().await;
    inventory(&h).await;
    let a = h.admin(Method::GET, "/v1/switches/nope/config", None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.content_type, "application/problem+json");

    h.ok(
        Method::POST,
        "/v1/switches",
        Some(json!({"name": "l9", "role": "leaf", "rack": "r1",
            "ports": [{"name": "p1", "node": "ghost"}]})),
    )
    .await;
    let a = h.admin(Method::GET, "/v1/switches/l9/config", None).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{:?}", a.body);
    assert!(
        a.body["detail"].as_str().unwrap().contains("ghost"),
        "{:?}",
        a.body
    );

    h.ok(
        Method::POST,
        "/v1/switches",
        Some(json!({"name": "l8", "role": "leaf", "rack": "r1",
            "ports": [{"name": "a name with spaces"}]})),
    )
    .await;
    let a = h.admin(Method::GET, "/v1/switches/l8/config", None).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", a.body);
    assert_eq!(a.body["field"], "ports[0].name");

    let a = h
        .admin(Method::GET, "/v1/switches/l1/config?software=junos", None)
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{:?}", a.body);
}
