//! Many clients at once through the real HTTP API (a TCP listener, the model's client, one
//! connection pool per client) over a durable store: allocations and releases interleaved,
//! racing allocations of the same owners, racing claims of the same static addresses, and
//! racing releases of the same address. Afterwards no address is held twice, nothing
//! acknowledged is lost, nothing released stays allocated, and the IPAM checker is happy.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use axum::http::Method;
use clos_model::{Address, AllocateAddress, Client, Owner, OwnerKind, Subnet};
use clos_store::{RedbStore, Store};
use common::Harness;
use serde_json::json;

const CLIENTS: usize = 32;
const ROUNDS: usize = 40;
const NODES: usize = 8;
const SUBNET: &str = "web";

async fn serve(h: &Harness) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = h.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn request(owner: &str, node: usize, ip: Option<IpAddr>) -> AllocateAddress {
    AllocateAddress {
        owner: Owner::new(OwnerKind::Container, owner),
        node: Some(format!("n{node}")),
        ip,
        fixed: false,
    }
}

/// Every address of the subnet, walking the pages (small ones, so paging runs too).
async fn listing(c: &Client) -> Vec<Address> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = c
            .subnet_addresses(SUBNET, after.as_deref(), Some(100))
            .await
            .unwrap();
        out.extend(page.items);
        match page.next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
}

/// The subnet's addresses by owner, asserting that no owner holds two.
async fn by_owner(c: &Client) -> BTreeMap<String, IpAddr> {
    let mut owners = BTreeMap::new();
    for a in listing(c).await {
        assert!(!a.held && !a.fixed, "{a:?}");
        if let Some(other) = owners.insert(a.owner.id.clone(), a.ip) {
            panic!("owner {} holds both {other} and {}", a.owner.id, a.ip);
        }
    }
    owners
}

async fn allocated(c: &Client) -> u64 {
    let s: Subnet = c.read(SUBNET).await.unwrap();
    s.usage.unwrap().allocated
}

async fn healthy(h: &Harness) {
    let check = h.ok(Method::GET, "/v1/ipam/check", None).await;
    assert_eq!(check["healthy"], true, "{check}");
}

/// What one client saw: its live allocations and the addresses it released.
#[derive(Default)]
struct Seen {
    live: Vec<(String, IpAddr)>,
    released: Vec<IpAddr>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_allocate_and_release_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).await.unwrap());
    let h = Harness::with_store(store).await;
    h.ok(Method::PUT, "/v1/site", Some(common::site_json()))
        .await;
    h.ok(Method::POST, "/v1/tenants", Some(json!({"name": "t"})))
        .await;
    h.ok(
        Method::POST,
        "/v1/pools",
        Some(json!({"name": "tp", "cidr": "10.0.0.0/16", "kind": "tenant_subnets"})),
    )
    .await;
    h.ok(
        Method::POST,
        "/v1/subnets",
        Some(json!({"name": SUBNET, "tenant": "t", "pool": "tp", "cidr": "10.0.0.0/20"})),
    )
    .await;
    for n in 0..NODES {
        h.ok(
            Method::POST,
            "/v1/nodes",
            Some(json!({"name": format!("n{n}")})),
        )
        .await;
    }
    let base = serve(&h).await;
    let admin = Client::new(&base, Some(h.admin.clone())).unwrap();

    // 1. Each client allocates for its own owners and releases every third address it got,
    //    all at once.
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let client = Client::new(&base, Some(h.admin.clone())).unwrap();
        tasks.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            for i in 0..ROUNDS {
                let owner = format!("c{c}-{i}");
                let a = client
                    .allocate(SUBNET, &request(&owner, (c + i) % NODES, None))
                    .await
                    .unwrap_or_else(|e| panic!("allocate {owner}: {e}"));
                assert_eq!(a.owner.id, owner);
                seen.live.push((owner, a.ip));
                if i % 3 == 2 {
                    let (_, ip) = seen.live.remove(0);
                    client
                        .release(ip, false)
                        .await
                        .unwrap_or_else(|e| panic!("release {ip}: {e}"));
                    seen.released.push(ip);
                }
            }
            seen
        }));
    }
    let mut live: BTreeMap<String, IpAddr> = BTreeMap::new();
    let mut released: Vec<IpAddr> = Vec::new();
    for t in tasks {
        let seen = t.await.unwrap();
        live.extend(seen.live);
        released.extend(seen.released);
    }
    let expected_live = CLIENTS * (ROUNDS - ROUNDS / 3);
    assert_eq!(live.len(), expected_live);
    let distinct: BTreeSet<IpAddr> = live.values().copied().collect();
    assert_eq!(
        distinct.len(),
        live.len(),
        "an address was handed out twice"
    );
    assert_eq!(
        by_owner(&admin).await,
        live,
        "listing differs from the answers"
    );
    assert_eq!(allocated(&admin).await, live.len() as u64);
    for ip in released.iter().filter(|ip| !distinct.contains(ip)) {
        let e = admin.address(*ip).await.unwrap_err();
        assert_eq!(e.status(), Some(404), "released {ip} is still there: {e}");
    }
    healthy(&h).await;

    // 2. Every client allocates the same owners (each owner on its own node), each client in
    //    its own order: one address per owner, the same answer for everyone.
    let shared: Vec<(String, usize)> = (0..16)
        .map(|i| (format!("shared-{i}"), i % NODES))
        .collect();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let client = Client::new(&base, Some(h.admin.clone())).unwrap();
        let mut order = shared.clone();
        order.rotate_left(c % shared.len());
        if c % 2 == 1 {
            order.reverse();
        }
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for (owner, node) in order {
                let a = client
                    .allocate(SUBNET, &request(&owner, node, None))
                    .await
                    .unwrap_or_else(|e| panic!("allocate {owner}: {e}"));
                got.push((owner, a.ip));
            }
            got
        }));
    }
    let mut answers: HashMap<String, BTreeSet<IpAddr>> = HashMap::new();
    for t in tasks {
        for (owner, ip) in t.await.unwrap() {
            answers.entry(owner).or_default().insert(ip);
        }
    }
    for (owner, ips) in &answers {
        assert_eq!(ips.len(), 1, "{owner} got {ips:?}");
        live.insert(owner.clone(), *ips.first().unwrap());
    }
    assert_eq!(by_owner(&admin).await, live);
    assert_eq!(allocated(&admin).await, live.len() as u64);
    // The same owner on another node is a conflict, not a second address.
    let e = admin
        .allocate(SUBNET, &request("shared-0", 1, None))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");

    // 3. Every client claims the same static addresses for owners of its own: one winner per
    //    address, a 409 for everyone else.
    let statics: Vec<IpAddr> = (0..8)
        .map(|i| format!("10.0.15.{}", 200 + i).parse().unwrap())
        .collect();
    assert!(statics.iter().all(|ip| !distinct.contains(ip)));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let client = Client::new(&base, Some(h.admin.clone())).unwrap();
        let statics = statics.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for (k, ip) in statics.into_iter().enumerate() {
                let owner = format!("static-{c}-{k}");
                match client
                    .allocate(SUBNET, &request(&owner, c % NODES, Some(ip)))
                    .await
                {
                    Ok(a) => {
                        assert_eq!(a.ip, ip);
                        won.push((owner, ip));
                    }
                    Err(e) => assert_eq!(e.status(), Some(409), "claim {ip}: {e}"),
                }
            }
            won
        }));
    }
    let mut winners: BTreeMap<IpAddr, Vec<String>> = BTreeMap::new();
    for t in tasks {
        for (owner, ip) in t.await.unwrap() {
            winners.entry(ip).or_default().push(owner.clone());
            live.insert(owner, ip);
        }
    }
    for ip in &statics {
        assert_eq!(winners.get(ip).map(Vec::len), Some(1), "{ip}: {winners:?}");
    }
    assert_eq!(by_owner(&admin).await, live);
    assert_eq!(allocated(&admin).await, live.len() as u64);
    healthy(&h).await;

    // 4. Release everything, each address by two clients at once: one 204 and one 404 per
    //    address, and nothing left behind.
    let ips: Vec<IpAddr> = live.values().copied().collect();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let client = Client::new(&base, Some(h.admin.clone())).unwrap();
        // Client c releases the addresses of slice c and, in reverse, of slice c + 1.
        let mine: Vec<IpAddr> = ips.iter().copied().skip(c).step_by(CLIENTS).collect();
        let theirs: Vec<IpAddr> = ips
            .iter()
            .copied()
            .skip((c + 1) % CLIENTS)
            .step_by(CLIENTS)
            .rev()
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut freed = Vec::new();
            for ip in mine.into_iter().chain(theirs) {
                match client.release(ip, false).await {
                    Ok(()) => freed.push(ip),
                    Err(e) => assert_eq!(e.status(), Some(404), "release {ip}: {e}"),
                }
            }
            freed
        }));
    }
    let mut freed: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for t in tasks {
        for ip in t.await.unwrap() {
            *freed.entry(ip).or_default() += 1;
        }
    }
    assert_eq!(freed.len(), ips.len());
    assert!(freed.values().all(|n| *n == 1), "released twice: {freed:?}");
    assert!(listing(&admin).await.is_empty());
    assert_eq!(allocated(&admin).await, 0);
    let pool = h.ok(Method::GET, "/v1/pools/tp", None).await;
    assert_eq!(pool["usage"]["allocated"], 0, "{pool}");
    healthy(&h).await;

    // Freed addresses can be had again, by anyone.
    for (i, ip) in ips.iter().take(4).enumerate() {
        let a = admin
            .allocate(SUBNET, &request(&format!("after-{i}"), i, Some(*ip)))
            .await
            .unwrap_or_else(|e| panic!("reclaim {ip}: {e}"));
        assert_eq!(a.ip, *ip);
    }
}
