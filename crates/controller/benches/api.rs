//! Allocation through the REST API: a real controller on loopback over the durable redb store,
//! concurrent clients (the model's HTTP client), addresses spread over many nodes.
//!
//! ```text
//! cargo bench -p clos-controller --bench api -- [--addresses N] [--nodes N] [--clients N]
//! ```
//!
//! Defaults: 1,000,000 addresses over 10,000 nodes with 16 clients. Reports the throughput and
//! the p50/p99/max latency of one allocation, over the whole run and over the last 10% (the
//! latency "at N allocated"). Measures only; asserts nothing about time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clos_controller::Controller;
use clos_model::{AllocateAddress, Client, Node, Owner, OwnerKind, Pool, PoolKind, Subnet, Tenant};
use clos_store::{RedbStore, Store};

struct Args {
    addresses: usize,
    nodes: usize,
    clients: usize,
}

fn args() -> Args {
    let mut a = Args {
        addresses: 1_000_000,
        nodes: 10_000,
        clients: 16,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = || -> usize {
            argv.get(i + 1)
                .and_then(|v| v.replace('_', "").parse().ok())
                .unwrap_or_else(|| panic!("{} needs a number", argv[i]))
        };
        match argv[i].as_str() {
            "--addresses" => a.addresses = value(),
            "--nodes" => a.nodes = value(),
            "--clients" => a.clients = value(),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().expect("temporary directory");
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).await.expect("store"));
    let controller = Controller::start(store).await.expect("controller");
    let token = controller.admin_token().expect("admin token").to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = controller.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = Client::new(&url, Some(token)).unwrap();

    // Room for the addresses in /26 blocks, with each node's last block half full on average.
    let needed = (a.addresses + a.nodes * 64).next_power_of_two();
    let prefix_len = 32 - needed.trailing_zeros() as u8;
    assert!(prefix_len >= 8, "too many addresses for one IPv4 /8");
    client.create(&Tenant::new("bench")).await.unwrap();
    client
        .create(&Pool::new(
            "bench",
            "10.0.0.0/8".parse().unwrap(),
            PoolKind::TenantSubnets,
        ))
        .await
        .unwrap();
    let subnet = Subnet {
        cidr: None,
        prefix_len: Some(prefix_len),
        ..Subnet::new("bench", "bench", "bench", "10.0.0.0/8".parse().unwrap())
    };
    let subnet = client.create(&subnet).await.unwrap();
    println!(
        "api bench: {} addresses over {} nodes, {} clients, subnet {}, redb store (durable) on loopback",
        a.addresses,
        a.nodes,
        a.clients,
        subnet.cidr.unwrap()
    );

    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..a.clients {
        let client = client.clone();
        let (nodes, clients) = (a.nodes, a.clients);
        tasks.push(tokio::spawn(async move {
            for n in (c..nodes).step_by(clients) {
                client.create(&Node::new(format!("n{n:05}"))).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "registered {} nodes in {:.1} s",
        a.nodes,
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..a.clients {
        let client = client.clone();
        let (total, nodes, clients) = (a.addresses, a.nodes, a.clients);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(total / clients + 1);
            for i in (c..total).step_by(clients) {
                let req = AllocateAddress {
                    owner: Owner::new(OwnerKind::Container, format!("pod-{i}")),
                    node: Some(format!("n{:05}", i % nodes)),
                    ip: None,
                    fixed: false,
                };
                let start = Instant::now();
                client.allocate("bench", &req).await.unwrap();
                lat.push((i, start.elapsed()));
            }
            lat
        }));
    }
    let mut all = Vec::with_capacity(a.addresses);
    let mut progress = Instant::now();
    for t in tasks {
        all.extend(t.await.unwrap());
        if progress.elapsed() > Duration::from_secs(30) {
            progress = Instant::now();
        }
    }
    let elapsed = t.elapsed();
    let tail_from = a.addresses - a.addresses / 10;
    let mut whole: Vec<Duration> = all.iter().map(|&(_, d)| d).collect();
    let mut tail: Vec<Duration> = all
        .iter()
        .filter(|&&(i, _)| i >= tail_from)
        .map(|&(_, d)| d)
        .collect();
    whole.sort_unstable();
    tail.sort_unstable();
    println!(
        "allocated {} addresses in {:.1} s: {:.0} allocations/s",
        a.addresses,
        elapsed.as_secs_f64(),
        a.addresses as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency, all:          p50 {}  p99 {}  max {}",
        ms(pct(&whole, 0.5)),
        ms(pct(&whole, 0.99)),
        ms(pct(&whole, 1.0))
    );
    println!(
        "latency, last 10% (at {} allocated): p50 {}  p99 {}  max {}",
        a.addresses,
        ms(pct(&tail, 0.5)),
        ms(pct(&tail, 0.99)),
        ms(pct(&tail, 1.0))
    );
    let used = client.read::<Subnet>("bench").await.unwrap().usage.unwrap();
    println!(
        "subnet usage: {} allocated in {} blocks",
        used.allocated, used.blocks
    );
    assert_eq!(used.allocated as usize, a.addresses);
}
