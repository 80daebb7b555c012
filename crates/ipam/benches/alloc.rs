//! Allocation benchmark (a measurement, never a test): 1,000,000 addresses over 10,000 nodes,
//! once in an IPv4 /8 pool and once in an IPv6 pool.
//!
//! Run: `cargo bench -p clos-ipam` (optionally `-- --addresses N --nodes M`).
//!
//! Reported per family:
//! - throughput of the whole fill (allocations/s), nodes interleaved round-robin as racks of
//!   hosts would ask, including building the change records the controller persists;
//! - p50 / p99 / max latency of single allocations measured near 1M allocated (the last 1%),
//!   where Neutron's scanning IPAM was slowest;
//! - release + re-allocate churn at 1M allocated;
//! - memory: the allocator's own estimate, and the process RSS growth (Linux).
//!
//! Anchor: Trip.com reported Neutron taking 10 s or more per IP at 40K instances.

use std::hint::black_box;
use std::time::{Duration, Instant};

use clos_ipam::{AllocRequest, Ipam, Owner, OwnerKind, PoolKind, PoolSpec, SubnetCidr, SubnetSpec};

struct Args {
    addresses: usize,
    nodes: usize,
    /// `v4` or `v6`; without it, each family runs in a child process of its own so that RSS
    /// growth is not hidden by memory the previous run freed.
    family: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        addresses: 1_000_000,
        nodes: 10_000,
        family: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse().ok());
        match arg.as_str() {
            "--addresses" => a.addresses = value().unwrap_or(a.addresses),
            "--nodes" => a.nodes = value().unwrap_or(a.nodes),
            "--family" => a.family = it.next(),
            // `cargo bench` passes `--bench`; ignore anything else.
            _ => {}
        }
    }
    a
}

/// Resident set size in bytes (Linux), for a sanity check of the estimate.
fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn run(family: &str, pool: &str, subnet_len: u8, args: &Args) {
    let mut ipam = Ipam::new();
    ipam.create_pool(&PoolSpec::new(
        "pool",
        pool.parse().unwrap(),
        PoolKind::TenantSubnets,
    ))
    .unwrap();
    ipam.create_subnet(&SubnetSpec::new(
        "bench",
        "tenant",
        "pool",
        SubnetCidr::NextFree {
            prefix_len: subnet_len,
        },
    ))
    .unwrap();
    let nodes: Vec<String> = (0..args.nodes).map(|n| format!("node-{n:05}")).collect();
    for n in &nodes {
        ipam.add_node(n).unwrap();
    }
    let rss_before = rss_bytes();

    let n = args.addresses;
    let tail = (n / 100).max(1);
    let bulk = n - tail;
    let request = |i: usize| {
        AllocRequest::new(
            "bench",
            nodes[i % nodes.len()].as_str(),
            Owner::new(OwnerKind::Container, format!("ns-{}/pod-{i:07}", i % 97)),
        )
    };

    // Bulk fill, timed as a whole.
    let start = Instant::now();
    let mut records = 0usize;
    for i in 0..bulk {
        let a = ipam.allocate(&request(i)).unwrap();
        records += a.changes.len();
        black_box(a);
    }
    let bulk_time = start.elapsed();

    // The last 1%, each allocation timed alone (request built outside the timer).
    let mut lat = Vec::with_capacity(tail);
    for i in bulk..n {
        let req = request(i);
        let t = Instant::now();
        let a = ipam.allocate(&req);
        lat.push(t.elapsed());
        records += a.unwrap().changes.len();
    }
    lat.sort_unstable();
    let total_time = bulk_time + lat.iter().sum::<Duration>();

    // Churn at full occupancy: release one, allocate a new owner (reuses the freed slot).
    let churn = tail.min(10_000);
    let t = Instant::now();
    for j in 0..churn {
        let i = (j * 7919) % n;
        let owner = format!("ns-{}/pod-{i:07}", i % 97);
        black_box(ipam.release("bench", &owner).unwrap());
        let req = AllocRequest::new(
            "bench",
            nodes[i % nodes.len()].as_str(),
            Owner::new(OwnerKind::Container, format!("churn-{j}")),
        );
        black_box(ipam.allocate(&req).unwrap());
    }
    let churn_time = t.elapsed();

    let adv_t = Instant::now();
    let adv: usize = nodes
        .iter()
        .take(100)
        .map(|n| ipam.advertisements(n).unwrap().len())
        .sum();
    let adv_time = adv_t.elapsed() / 100;

    let check_t = Instant::now();
    let healthy = ipam.check().is_healthy();
    let check_time = check_t.elapsed();

    // Before the rebuild below, which briefly holds a second copy.
    let rss_after = rss_bytes();

    // Controller start-up: dump every record and rebuild from them.
    let t = Instant::now();
    let dump = ipam.records();
    let dump_time = t.elapsed();
    let nrecords = dump.len();
    let t = Instant::now();
    let rebuilt = Ipam::from_records(dump).unwrap();
    let rebuild_time = t.elapsed();
    assert_eq!(rebuilt.len(), ipam.len());
    drop(rebuilt);

    let estimate = ipam.memory_bytes();
    let rss_growth = match (rss_before, rss_after) {
        (Some(a), Some(b)) => format!("{:.1} MiB", mib(b.saturating_sub(a))),
        _ => "n/a".to_string(),
    };
    let usage = ipam.subnet_usage("bench").unwrap();

    println!(
        "== {family}: {n} addresses over {} nodes, pool {pool}, subnet /{subnet_len}",
        nodes.len()
    );
    println!(
        "  fill:        {:.2} s, {:.0} allocations/s ({} change records)",
        total_time.as_secs_f64(),
        n as f64 / total_time.as_secs_f64(),
        records
    );
    println!(
        "  latency near {n} allocated (last {tail}): p50 {:?}  p99 {:?}  max {:?}",
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );
    println!(
        "  churn:       {churn} release+allocate pairs, {:.0} pairs/s",
        churn as f64 / churn_time.as_secs_f64()
    );
    println!(
        "  blocks:      {} claimed; advertisements {:.1} prefixes/node, {:?} per node",
        usage.blocks,
        adv as f64 / 100.0,
        adv_time
    );
    println!(
        "  memory:      estimate {:.1} MiB ({:.0} B/address), RSS growth {rss_growth}",
        mib(estimate),
        estimate as f64 / n as f64
    );
    println!("  check():     {:?}, healthy: {healthy}", check_time);
    println!(
        "  records:     {nrecords} dumped in {:?}, rebuilt in {:?}",
        dump_time, rebuild_time
    );
}

fn main() {
    let args = args();
    match args.family.as_deref() {
        Some("v4") => run("IPv4", "10.0.0.0/8", 10, &args),
        Some("v6") => run("IPv6", "fd00::/48", 64, &args),
        _ => {
            println!(
                "clos-ipam allocation benchmark (allocation record {} B + owner string)",
                Ipam::allocation_record_bytes()
            );
            let exe = std::env::current_exe().expect("own executable");
            for family in ["v4", "v6"] {
                let status = std::process::Command::new(&exe)
                    .args(["--family", family])
                    .args(["--addresses", &args.addresses.to_string()])
                    .args(["--nodes", &args.nodes.to_string()])
                    .status()
                    .expect("run benchmark child");
                assert!(status.success(), "{family} run failed: {status}");
            }
        }
    }
}
