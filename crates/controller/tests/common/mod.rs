//! Test harness: a controller over an in-memory (or on-disk) store, driven in-process through
//! `tower::ServiceExt::oneshot`.

#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use clos_controller::Controller;
use clos_store::{RedbStore, Store};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub struct Harness {
    pub controller: Controller,
    pub router: Router,
    pub store: Arc<dyn Store>,
    pub admin: String,
}

#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Harness {
    pub async fn new() -> Harness {
        let store: Arc<dyn Store> = Arc::new(RedbStore::in_memory().unwrap());
        Harness::with_store(store).await
    }

    pub async fn with_store(store: Arc<dyn Store>) -> Harness {
        let controller = Controller::start(store.clone()).await.unwrap();
        let admin = controller.admin_token().unwrap().to_string();
        let router = controller.router();
        Harness {
            controller,
            router,
            store,
            admin,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(&v).unwrap())
            }
            None => Body::empty(),
        };
        let resp = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let raw = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Answer {
            status,
            content_type,
            body,
            raw,
        }
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call(method, path, Some(&self.admin.clone()), body)
            .await
    }

    /// An admin call that must succeed; returns the body.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let a = self.admin(method.clone(), path, body).await;
        assert!(
            a.status.is_success(),
            "{method} {path}: {} {}",
            a.status,
            String::from_utf8_lossy(&a.raw)
        );
        a.body
    }

    pub async fn token(&self, body: Value) -> String {
        let v = self.ok(Method::POST, "/v1/tokens", Some(body)).await;
        v["secret"].as_str().unwrap().to_string()
    }

    pub async fn revision(&self) -> u64 {
        self.store.revision().await.unwrap()
    }

    /// Tenants a and b, a tenant pool, subnet a-net (tenant a) and b-net (tenant b), a floating
    /// pool, node n1, one address in each subnet.
    pub async fn fixture(&self) -> Fixture {
        self.ok(Method::POST, "/v1/tenants", Some(json!({"name": "a"})))
            .await;
        self.ok(Method::POST, "/v1/tenants", Some(json!({"name": "b"})))
            .await;
        self.ok(
            Method::POST,
            "/v1/pools",
            Some(json!({"name": "tp", "cidr": "10.0.0.0/16", "kind": "tenant_subnets"})),
        )
        .await;
        self.ok(
            Method::POST,
            "/v1/pools",
            Some(json!({"name": "fip", "cidr": "192.0.2.0/24", "kind": "floating_ips"})),
        )
        .await;
        self.ok(
            Method::POST,
            "/v1/subnets",
            Some(json!({"name": "a-net", "tenant": "a", "pool": "tp", "cidr": "10.0.1.0/24"})),
        )
        .await;
        self.ok(
            Method::POST,
            "/v1/subnets",
            Some(json!({"name": "b-net", "tenant": "b", "pool": "tp", "cidr": "10.0.2.0/24"})),
        )
        .await;
        self.ok(Method::POST, "/v1/tenants", Some(json!({"name": "c"})))
            .await;
        self.ok(
            Method::POST,
            "/v1/pools",
            Some(json!({"name": "empty", "cidr": "10.99.0.0/16", "kind": "tenant_subnets"})),
        )
        .await;
        self.ok(
            Method::POST,
            "/v1/subnets",
            Some(json!({"name": "a-empty", "tenant": "a", "pool": "tp", "cidr": "10.0.3.0/24"})),
        )
        .await;
        self.ok(Method::PUT, "/v1/site", Some(site_json())).await;
        self.ok(Method::POST, "/v1/nodes", Some(json!({"name": "n1"})))
            .await;
        self.ok(Method::POST, "/v1/nodes", Some(json!({"name": "n2"})))
            .await;
        self.ok(Method::POST, "/v1/racks", Some(json!({"name": "r1"})))
            .await;
        self.ok(
            Method::POST,
            "/v1/switches",
            Some(json!({"name": "leaf1", "role": "leaf", "rack": "r1"})),
        )
        .await;
        let a_ip = self
            .ok(
                Method::POST,
                "/v1/subnets/a-net/addresses",
                Some(json!({"owner": {"kind": "vm", "id": "vm-a"}, "node": "n1"})),
            )
            .await["ip"]
            .as_str()
            .unwrap()
            .to_string();
        let b_ip = self
            .ok(
                Method::POST,
                "/v1/subnets/b-net/addresses",
                Some(json!({"owner": {"kind": "vm", "id": "vm-b"}, "node": "n1"})),
            )
            .await["ip"]
            .as_str()
            .unwrap()
            .to_string();
        let fip_a = self
            .ok(
                Method::POST,
                "/v1/pools/fip/addresses",
                Some(json!({"owner": {"kind": "service", "id": "a/lb"}})),
            )
            .await["ip"]
            .as_str()
            .unwrap()
            .to_string();
        let tenant_a = self
            .token(json!({"role": "tenant", "tenants": ["a"]}))
            .await;
        let tenant_b = self
            .token(json!({"role": "tenant", "tenants": ["b"]}))
            .await;
        let node_n1 = self.token(json!({"role": "node", "node": "n1"})).await;
        let tenant_a_id = self.ok(Method::GET, "/v1/tokens", None).await["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tenants"] == json!(["a"]))
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        Fixture {
            a_ip,
            b_ip,
            fip_a,
            tenant_a,
            tenant_b,
            node_n1,
            tenant_a_id,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Fixture {
    pub a_ip: String,
    pub b_ip: String,
    pub fip_a: String,
    pub tenant_a: String,
    pub tenant_b: String,
    pub node_n1: String,
    pub tenant_a_id: String,
}

pub fn site_json() -> Value {
    json!({
        "name": "dc1",
        "asn_plan": {
            "spine_asn": 4200000000u32,
            "rack_asn_first": 4200000001u32,
            "rack_asn_last": 4200009999u32,
            "host_asn_first": 4200010000u32,
            "host_asn_last": 4294967294u32
        },
        "address_ranges": ["10.0.0.0/8", "192.0.2.0/24"]
    })
}
