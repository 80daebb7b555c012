//! The agent-facing API over a real listener with the model's HTTP client: registration,
//! heartbeat, the desired-state watch and its resumption after a disconnect; and a restart of
//! the controller on a durable store.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use clos_controller::Controller;
use clos_model::{
    AllocateAddress, Client, Heartbeat, Node, Owner, OwnerKind, WatchEvent, WatchStream,
};
use clos_store::{RedbStore, Store};
use common::Harness;
use serde_json::json;

async fn serve(h: &Harness) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = h.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

async fn next(w: &mut WatchStream) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("no watch event within 10 s")
        .expect("watch ended")
        .expect("watch failed")
}

fn state(ev: WatchEvent) -> (u64, Vec<String>) {
    match ev {
        WatchEvent::State { revision, state } => (
            revision,
            state
                .advertisements
                .iter()
                .map(ToString::to_string)
                .collect(),
        ),
        other => panic!("expected a state, got {other:?}"),
    }
}

/// Reads the watch until the advertisements are `want`: every allocation on the node is a new
/// desired state now (its address list changes), the advertisements only when a block does.
async fn until_advertising(w: &mut WatchStream, want: &[&str]) -> (u64, usize) {
    let mut seen = 0;
    loop {
        let ev = next(w).await;
        seen += 1;
        let addresses = match &ev {
            WatchEvent::State { state, .. } => state.addresses.len(),
            _ => 0,
        };
        let (revision, adv) = state(ev);
        if adv == want {
            return (revision, addresses);
        }
        assert!(seen < 1000, "never advertised {want:?}; last {adv:?}");
    }
}

async fn fill(admin: &Client, subnet: &str, node: &str, prefix: &str, n: usize) {
    for i in 0..n {
        admin
            .allocate(
                subnet,
                &AllocateAddress {
                    owner: Owner::new(OwnerKind::Container, format!("{prefix}-{i}")),
                    node: Some(node.into()),
                    ip: None,
                    fixed: false,
                },
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn agent_registers_heartbeats_and_resumes_its_watch() {
    let h = Harness::new().await;
    let f = h.fixture().await;
    let base = serve(&h).await;
    let admin = Client::new(&base, Some(h.admin.clone())).unwrap();
    let agent = Client::new(&base, Some(f.node_n1.clone())).unwrap();

    // Registration is idempotent; heartbeat shows up in the node.
    let n = agent.register(&Node::new("n1")).await.unwrap();
    assert_eq!(n.name, "n1");
    let again = agent.register(&Node::new("n1")).await.unwrap();
    assert_eq!(again.resource_version, n.resource_version);
    let hb = agent
        .heartbeat(
            "n1",
            &Heartbeat {
                version: "0.1.0".into(),
                applied_revision: 7,
            },
        )
        .await
        .unwrap();
    assert_eq!(hb.status.as_ref().unwrap().applied_revision, 7);
    let read: Node = admin.read("n1").await.unwrap();
    assert_eq!(read.status.unwrap().version, "0.1.0");
    // Another node's state is not for this agent.
    let e = agent.desired_state("n2").await.unwrap_err();
    assert_eq!(e.status(), Some(404));

    let mut w = agent.watch_desired_state("n1", 0).await.unwrap();
    let first = next(&mut w).await;
    let before = match &first {
        WatchEvent::State { state, .. } => state.addresses.len(),
        _ => 0,
    };
    let (r0, adv) = state(first);
    assert_eq!(adv, ["10.0.1.0/26", "10.0.2.0/26"]);

    // 64 more addresses in a-net need a second block, which aggregates with the first; the
    // state lists every address of the node.
    fill(&admin, "a-net", "n1", "x", 64).await;
    let (r1, _) = until_advertising(&mut w, &["10.0.1.0/25", "10.0.2.0/26"]).await;
    assert!(r1 > r0);
    drop(w);
    let now = agent.desired_state("n1").await.unwrap();
    assert_eq!(now.state.addresses.len(), before + 64);
    assert!(now.state.addresses.iter().all(|a| !a.is_host()));

    // While the agent is away, b-net grows too.
    fill(&admin, "b-net", "n1", "y", 64).await;
    let mut w = agent.watch_desired_state("n1", r1 + 1).await.unwrap();
    let (r2, addresses) = until_advertising(&mut w, &["10.0.1.0/25", "10.0.2.0/25"]).await;
    assert!(r2 > r1);
    assert!(addresses > before + 64, "{addresses}");

    // Resuming from the very first revision replays every change, in order.
    let mut w = agent.watch_desired_state("n1", r0).await.unwrap();
    let mut revs = Vec::new();
    while revs.last() != Some(&r2) {
        revs.push(state(next(&mut w).await).0);
        assert!(revs.len() < 1000, "{revs:?}");
    }
    assert_eq!(revs[0], r0);
    assert!(revs.contains(&r1));
    assert!(revs.windows(2).all(|p| p[0] < p[1]), "{revs:?}");

    // Removing the node ends in a deleted event.
    let mut w = admin.watch_desired_state("n2", 0).await.unwrap();
    state(next(&mut w).await);
    let resp = h.admin(Method::DELETE, "/v1/nodes/n2", None).await;
    assert!(resp.status.is_success(), "{:?}", resp.body);
    assert!(matches!(next(&mut w).await, WatchEvent::Deleted { .. }));
}

#[tokio::test]
async fn restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, addresses, desired, fixed_ip) = {
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).await.unwrap());
        let h = Harness::with_store(store).await;
        h.fixture().await;
        let fixed = h
            .ok(
                Method::POST,
                "/v1/subnets/a-net/addresses",
                Some(json!({"owner": {"kind": "container", "id": "ns/db-0"}, "node": "n1", "fixed": true})),
            )
            .await;
        let fixed_ip = fixed["ip"].as_str().unwrap().to_string();
        let r = h
            .admin(Method::DELETE, &format!("/v1/addresses/{fixed_ip}"), None)
            .await;
        assert!(r.status.is_success());
        let addresses = h.ok(Method::GET, "/v1/subnets/a-net/addresses", None).await;
        let desired = h.ok(Method::GET, "/v1/nodes/n1/desired-state", None).await;
        let Harness {
            controller,
            router,
            store,
            admin,
        } = h;
        drop(router);
        drop(store);
        controller.shutdown().await;
        (admin, addresses, desired, fixed_ip)
    };

    // The file closes once the last handle is gone; give stragglers a moment.
    let mut store = None;
    for _ in 0..50 {
        match RedbStore::open(dir.path()).await {
            Ok(s) => {
                store = Some(s);
                break;
            }
            Err(clos_store::Error::Locked { .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    let store: Arc<dyn Store> = Arc::new(store.expect("store still locked"));
    let controller = Controller::start(store.clone()).await.unwrap();
    assert!(
        controller.admin_token().is_none(),
        "a second admin token was issued"
    );
    let h = Harness {
        router: controller.router(),
        controller,
        store,
        admin,
    };
    assert_eq!(
        h.ok(Method::GET, "/v1/subnets/a-net/addresses", None).await,
        addresses
    );
    assert_eq!(
        h.ok(Method::GET, "/v1/nodes/n1/desired-state", None).await,
        desired
    );
    let check = h.ok(Method::GET, "/v1/ipam/check", None).await;
    assert_eq!(check["healthy"], true, "{check}");
    // The allocator was rebuilt: the held fixed address comes back to its owner, and new
    // addresses do not collide with old ones.
    let back = h
        .ok(
            Method::POST,
            "/v1/subnets/a-net/addresses",
            Some(json!({"owner": {"kind": "container", "id": "ns/db-0"}, "node": "n2", "fixed": true})),
        )
        .await;
    assert_eq!(back["ip"], json!(fixed_ip));
    let fresh = h
        .ok(
            Method::POST,
            "/v1/subnets/a-net/addresses",
            Some(json!({"owner": {"kind": "vm", "id": "after-restart"}, "node": "n1"})),
        )
        .await;
    let old: Vec<&str> = addresses["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ip"].as_str().unwrap())
        .collect();
    assert!(!old.contains(&fresh["ip"].as_str().unwrap()));
}
