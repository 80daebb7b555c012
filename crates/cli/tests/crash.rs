//! `kill -9` of the real `clos controller` while clients stream allocations and releases at it,
//! round after round, each time restarted on the same data directory.
//!
//! After every restart: every allocation the API acknowledged is still there with the same IP
//! and owner, every acknowledged release stayed released, no owner holds two addresses and no
//! address two owners, nothing appeared that nobody asked for, usage matches the listing, and
//! `clos ipam check` reports a healthy state. Requests cut off by the kill may or may not have
//! happened; whichever it was must be consistent, and a retry of such an allocation must give
//! the address it got before.
//!
//! The kill points are random: `CLOS_CRASH_SEED=<n>` replays a run (the seed is printed).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clos_model::{AllocateAddress, Client, Node, Owner, OwnerKind, Pool, PoolKind, Subnet};

const ROUNDS: usize = 5;
const WORKERS: usize = 6;
const NODES: usize = 4;
const SUBNET: &str = "web";

struct Server {
    child: Child,
    url: String,
    token: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &Path, log: &Path) -> Server {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clos"))
        .args(["controller", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut token = None;
    let url = loop {
        let line = lines.next().expect("controller exited at start").unwrap();
        if let Some(t) = line.strip_prefix("admin token (shown once, store it safely): ") {
            token = Some(t.to_string());
        }
        if let Some(a) = line.strip_prefix("listening on ") {
            break format!("http://{a}");
        }
    };
    Server { child, url, token }
}

/// xorshift64*: enough to pick kill points, and replayable from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// What the clients know: acknowledged allocations and releases, and requests whose answer
/// the kill cut off.
#[derive(Default, Debug)]
struct Ledger {
    /// Acknowledged (2xx with an IP) and not released since.
    live: BTreeMap<String, IpAddr>,
    /// Acknowledged releases (204), by owner.
    released: BTreeSet<String>,
    /// Allocations without an answer.
    unsure_allocs: BTreeSet<String>,
    /// Releases without an answer, by owner.
    unsure_releases: BTreeMap<String, IpAddr>,
}

fn request(owner: &str, node: usize) -> AllocateAddress {
    AllocateAddress {
        owner: Owner::new(OwnerKind::Vm, owner),
        node: Some(format!("n{node}")),
        ip: None,
        fixed: false,
    }
}

/// The node an owner `r<round>-w<worker>-<i>` is allocated on.
fn node_of(owner: &str) -> usize {
    let mut parts = owner.split('-').skip(1);
    let w: usize = parts.next().unwrap()[1..].parse().unwrap();
    let i: usize = parts.next().unwrap().parse().unwrap();
    (w + i) % NODES
}

/// One client thread: allocates for fresh owners and releases every fourth address it got,
/// until the controller goes away (or it is told to stop).
fn worker(
    url: String,
    token: String,
    round: usize,
    w: usize,
    acks: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
) {
    let rt = runtime();
    rt.block_on(async move {
        let c = Client::new(&url, Some(token)).unwrap();
        let mut mine: Vec<(String, IpAddr)> = Vec::new();
        for i in 0.. {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let owner = format!("r{round}-w{w}-{i}");
            match c.allocate(SUBNET, &request(&owner, node_of(&owner))).await {
                Ok(a) => {
                    assert_eq!(a.owner.id, owner, "{a:?}");
                    assert_eq!(a.subnet.as_deref(), Some(SUBNET), "{a:?}");
                    ledger.lock().unwrap().live.insert(owner.clone(), a.ip);
                    mine.push((owner, a.ip));
                    acks.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if e.problem().is_none() => {
                    ledger.lock().unwrap().unsure_allocs.insert(owner);
                    return;
                }
                Err(e) => panic!("allocate {owner}: {e}"),
            }
            if i % 4 == 3 {
                let (owner, ip) = mine.remove(0);
                match c.release(ip, false).await {
                    Ok(()) => {
                        let mut l = ledger.lock().unwrap();
                        l.live.remove(&owner);
                        l.released.insert(owner);
                    }
                    Err(e) if e.problem().is_none() => {
                        let mut l = ledger.lock().unwrap();
                        l.live.remove(&owner);
                        l.unsure_releases.insert(owner, ip);
                        return;
                    }
                    Err(e) => panic!("release {ip} of {owner}: {e}"),
                }
            }
        }
    });
}

/// Checks the restarted controller against the ledger, and settles the requests the kill cut
/// off by what the controller shows.
fn verify(url: &str, token: &str, ledger: &mut Ledger) -> String {
    let rt = runtime();
    let c = Client::new(url, Some(token.to_string())).unwrap();
    let (listing, usage) = rt.block_on(async {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = c
                .subnet_addresses(SUBNET, after.as_deref(), Some(1000))
                .await
                .unwrap();
            all.extend(page.items);
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let s: Subnet = c.read(SUBNET).await.unwrap();
        (all, s.usage.unwrap())
    });

    // One address per owner, one owner per address.
    let mut shown: BTreeMap<String, IpAddr> = BTreeMap::new();
    let mut ips = BTreeSet::new();
    for a in &listing {
        assert!(ips.insert(a.ip), "{} listed twice", a.ip);
        if let Some(other) = shown.insert(a.owner.id.clone(), a.ip) {
            panic!("owner {} holds both {other} and {}", a.owner.id, a.ip);
        }
    }
    assert_eq!(usage.allocated, listing.len() as u64, "usage vs listing");

    for (owner, ip) in &ledger.live {
        assert_eq!(
            shown.get(owner),
            Some(ip),
            "acknowledged allocation of {ip} to {owner} was lost"
        );
    }
    for owner in &ledger.released {
        assert!(
            !shown.contains_key(owner),
            "acknowledged release of {owner} was undone: {:?}",
            shown.get(owner)
        );
    }

    // Requests without an answer: whatever happened, it happened whole.
    let unsure = (ledger.unsure_allocs.len(), ledger.unsure_releases.len());
    let mut retry = Vec::new();
    for owner in std::mem::take(&mut ledger.unsure_allocs) {
        if let Some(ip) = shown.get(&owner) {
            ledger.live.insert(owner.clone(), *ip);
            retry.push((owner, *ip));
        }
    }
    let mut undone_releases = 0;
    for (owner, ip) in std::mem::take(&mut ledger.unsure_releases) {
        match shown.get(&owner) {
            Some(now) => {
                assert_eq!(*now, ip, "{owner} moved from {ip} to {now}");
                ledger.live.insert(owner, ip);
                undone_releases += 1;
            }
            None => {
                ledger.released.insert(owner);
            }
        }
    }
    let summary = format!(
        "of the requests cut off, {} of {} allocations and {} of {} releases had happened",
        retry.len(),
        unsure.0,
        unsure.1 - undone_releases,
        unsure.1
    );
    // Nothing nobody asked for.
    for owner in shown.keys() {
        assert!(
            ledger.live.contains_key(owner),
            "{owner} is allocated but no client holds it"
        );
    }
    // An allocation that went through before the kill is found again by its owner's retry.
    rt.block_on(async {
        for (owner, ip) in retry {
            let a = c.allocate(SUBNET, &request(&owner, node_of(&owner))).await;
            let a = a.unwrap_or_else(|e| panic!("retry of {owner}: {e}"));
            assert_eq!(a.ip, ip, "retry of {owner} got another address");
        }
    });

    let out = Command::new(env!("CARGO_BIN_EXE_clos"))
        .args(["ipam", "check", "--server", url, "--token", token])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("healthy"),
        "clos ipam check: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    summary
}

#[test]
fn kill_9_under_load_loses_nothing_acknowledged() {
    let seed = std::env::var("CLOS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("CLOS_CRASH_SEED={seed}");
    let mut rng = Rng(seed);

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("controller.log");
    let mut server = start(&data, &log);
    let token = server.token.clone().expect("no admin token at first start");

    runtime().block_on(async {
        let c = Client::new(&server.url, Some(token.clone())).unwrap();
        c.create(&clos_model::Tenant::new("t")).await.unwrap();
        let pool = Pool::new(
            "tp",
            "10.0.0.0/16".parse().unwrap(),
            PoolKind::TenantSubnets,
        );
        c.create(&pool).await.unwrap();
        let subnet = Subnet::new(SUBNET, "t", "tp", "10.0.0.0/18".parse().unwrap());
        c.create(&subnet).await.unwrap();
        for n in 0..NODES {
            c.create(&Node::new(format!("n{n}"))).await.unwrap();
        }
    });

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for round in 0..ROUNDS {
        let acks = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (url, token) = (server.url.clone(), token.clone());
                let (acks, stop, ledger) = (acks.clone(), stop.clone(), ledger.clone());
                std::thread::spawn(move || worker(url, token, round, w, acks, stop, ledger))
            })
            .collect();

        // Some work first, so that every round kills a controller in the middle of it; then a
        // random moment.
        let want = 20 + rng.below(200) as usize;
        let deadline = Instant::now() + Duration::from_secs(120);
        while acks.load(Ordering::Relaxed) < want {
            assert!(
                workers.iter().any(|w| !w.is_finished()),
                "every client stopped before the kill"
            );
            assert!(Instant::now() < deadline, "no progress: {acks:?} of {want}");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            if let Err(panic) = w.join() {
                std::panic::resume_unwind(panic);
            }
        }

        server = start(&data, &log);
        assert!(server.token.is_none(), "a second admin token was issued");
        let mut l = ledger.lock().unwrap();
        let summary = verify(&server.url, &token, &mut l);
        eprintln!(
            "round {round}: killed after {} acknowledged allocations this round; {} live and {} \
             released in all; {summary}",
            acks.load(Ordering::Relaxed),
            l.live.len(),
            l.released.len(),
        );
    }

    // The last restart still serves: a fresh allocation lands on a free address.
    runtime().block_on(async {
        let c = Client::new(&server.url, Some(token.clone())).unwrap();
        let a = c.allocate(SUBNET, &request("after-all", 0)).await.unwrap();
        let l = ledger.lock().unwrap();
        assert!(!l.live.values().any(|ip| *ip == a.ip), "{} reused", a.ip);
    });
}
