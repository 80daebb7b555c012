//! FIB install speed: our `Fib` against `ip -batch` of the same routes, in the same run, each
//! in a fresh namespace with two veth uplinks (2-way ECMP). Needs root.
//!
//! ```text
//! cargo bench -p clos-dataplane --bench fib [-- ROUTES [REPEATS]]
//! ```
//!
//! Defaults: 100,000 IPv4 /32 routes, best of 3. Prints one table; times are seconds.

use std::io::Write;
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use clos_dataplane::{Change, Fib, FibConfig, Nexthop, NexthopMode, Route};
use clos_testkit::Netns;

struct Host {
    ns: Netns,
    _switch: Netns,
    dev: [String; 2],
    ifindex: [u32; 2],
}

fn host() -> Host {
    let ns = Netns::new().expect("namespace (are we root?)");
    let switch = Netns::new().unwrap();
    let mut dev = Vec::new();
    let mut ifindex = Vec::new();
    for i in 1..=2 {
        let link = ns.link_to(&switch).unwrap();
        ns.add_addr(&link.local, &format!("10.0.{i}.1/24")).unwrap();
        switch
            .add_addr(&link.remote, &format!("10.0.{i}.2/24"))
            .unwrap();
        let out = ns.ip(&["-o", "link", "show", "dev", &link.local]).unwrap();
        ifindex.push(out.split(':').next().unwrap().trim().parse().unwrap());
        dev.push(link.local);
    }
    Host {
        ns,
        _switch: switch,
        dev: [dev[0].clone(), dev[1].clone()],
        ifindex: [ifindex[0], ifindex[1]],
    }
}

impl Host {
    fn path(&self) -> String {
        // Where `ip netns add` puts namespaces.
        format!("/var/run/netns/{}", self.ns.name())
    }

    fn fib(&self, mode: NexthopMode) -> Fib {
        let config = FibConfig {
            mode,
            ..FibConfig::default()
        };
        Fib::open_in_netns(self.path(), config).unwrap()
    }

    fn ecmp(&self, uplinks: usize) -> Vec<Nexthop> {
        (0..uplinks)
            .map(|i| {
                let gw: IpAddr = format!("10.0.{}.2", i + 1).parse().unwrap();
                Nexthop::via(gw, self.ifindex[i])
            })
            .collect()
    }

    /// Our routes in the namespace, counted by a fresh `Fib`.
    fn count(&self) -> usize {
        self.fib(NexthopMode::Auto).installed()
    }
}

fn prefix(i: usize) -> String {
    format!("10.{}.{}.{}/32", 100 + i / 65536, (i / 256) % 256, i % 256)
}

fn routes(h: &Host, n: usize, uplinks: usize) -> Vec<Route> {
    let nhs = h.ecmp(uplinks);
    (0..n)
        .map(|i| Route::new(prefix(i).parse().unwrap(), nhs.clone()))
        .collect()
}

/// The `ip -batch` file for the same routes: through one nexthop group, or multipath routes.
fn batch_file(h: &Host, n: usize, objects: bool) -> scratch::TempPath {
    let mut text = String::with_capacity(n * 80);
    let [a, b] = &h.dev;
    if objects {
        text.push_str(&format!(
            "nexthop add id 1 via 10.0.1.2 dev {a} proto 198\n"
        ));
        text.push_str(&format!(
            "nexthop add id 2 via 10.0.2.2 dev {b} proto 198\n"
        ));
        text.push_str("nexthop add id 3 group 1/2 proto 198\n");
        for i in 0..n {
            text.push_str(&format!("route add {} nhid 3 proto 198\n", prefix(i)));
        }
    } else {
        for i in 0..n {
            text.push_str(&format!(
                "route add {} proto 198 nexthop via 10.0.1.2 dev {a} nexthop via 10.0.2.2 dev {b}\n",
                prefix(i)
            ));
        }
    }
    scratch::write(&text)
}

fn ip_batch(h: &Host, file: &std::path::Path) -> Duration {
    let start = Instant::now();
    let out = Command::new("ip")
        .args(["-n", h.ns.name(), "-batch"])
        .arg(file)
        .output()
        .expect("ip");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "ip -batch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// A scratch file named with the test kit's prefix, removed on drop.
mod scratch {
    use std::path::{Path, PathBuf};

    pub struct TempPath(PathBuf);

    impl std::ops::Deref for TempPath {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    pub fn write(text: &str) -> TempPath {
        let path = std::env::temp_dir().join(format!(
            "{}bench-fib.batch",
            clos_testkit::names::scratch_prefix()
        ));
        std::fs::write(&path, text).unwrap();
        TempPath(path)
    }
}

fn best(repeats: usize, mut run: impl FnMut() -> Duration) -> Duration {
    (0..repeats).map(|_| run()).min().unwrap()
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(100_000);
    let repeats = args.get(1).copied().unwrap_or(3);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "FIB install: {n} IPv4 /32 routes, 2-way ECMP over two veths, fresh namespace per run, \
         best of {repeats}; Linux {}",
        kernel.trim()
    );

    let mut rows: Vec<(&str, Duration)> = Vec::new();
    let fib_install = |mode: NexthopMode| {
        move || {
            let h = host();
            let desired = routes(&h, n, 2);
            let start = Instant::now();
            let mut fib = h.fib(mode);
            let report = fib.reconcile(desired).unwrap();
            let took = start.elapsed();
            assert!(
                report.is_ok(),
                "{:?}",
                &report.errors[..report.errors.len().min(3)]
            );
            assert_eq!(h.count(), n);
            took
        }
    };
    let batch_install = |objects: bool| {
        move || {
            let h = host();
            let file = batch_file(&h, n, objects);
            let took = ip_batch(&h, &file);
            assert_eq!(h.count(), n);
            took
        }
    };
    rows.push((
        "clos Fib, nexthop group",
        best(repeats, fib_install(NexthopMode::Objects)),
    ));
    rows.push((
        "ip -batch, nexthop group",
        best(repeats, batch_install(true)),
    ));
    rows.push((
        "clos Fib, RTA_MULTIPATH",
        best(repeats, fib_install(NexthopMode::Multipath)),
    ));
    rows.push((
        "ip -batch, RTA_MULTIPATH",
        best(repeats, batch_install(false)),
    ));

    // What the agent does next with the same table: adopt it after a restart, and lose an
    // uplink (every route moves to the remaining nexthop).
    let (adopt, failover) = {
        let mut adopt = Duration::MAX;
        let mut failover = Duration::MAX;
        for _ in 0..repeats {
            let h = host();
            h.fib(NexthopMode::Objects)
                .reconcile(routes(&h, n, 2))
                .unwrap();
            let start = Instant::now();
            let report = h
                .fib(NexthopMode::Objects)
                .reconcile(routes(&h, n, 2))
                .unwrap();
            adopt = adopt.min(start.elapsed());
            assert_eq!((report.unchanged, report.requests), (n, 0));
            let mut fib = h.fib(NexthopMode::Objects);
            let changes: Vec<Change> = routes(&h, n, 1).into_iter().map(Change::Upsert).collect();
            let start = Instant::now();
            let report = fib.apply(changes).unwrap();
            failover = failover.min(start.elapsed());
            assert_eq!(report.replaced, n);
        }
        (adopt, failover)
    };

    let secs = |d: Duration| d.as_secs_f64();
    let anchor = |label: &str| rows.iter().find(|(l, _)| *l == label).unwrap().1;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\n{:<34} {:>9} {:>12} {:>16}",
        "install", "seconds", "routes/s", "vs ip -batch"
    )
    .unwrap();
    for (label, took) in &rows {
        let same = if label.contains("group") {
            anchor("ip -batch, nexthop group")
        } else {
            anchor("ip -batch, RTA_MULTIPATH")
        };
        writeln!(
            out,
            "{:<34} {:>9.3} {:>12.0} {:>15.2}x",
            label,
            secs(*took),
            n as f64 / secs(*took),
            secs(same) / secs(*took)
        )
        .unwrap();
    }
    writeln!(
        out,
        "\n{:<34} {:>9}",
        "then, with the Fib (groups)", "seconds"
    )
    .unwrap();
    writeln!(
        out,
        "{:<34} {:>9.3}",
        "restart: reconcile, 0 writes",
        secs(adopt)
    )
    .unwrap();
    writeln!(
        out,
        "{:<34} {:>9.3}",
        "uplink lost: all routes move",
        secs(failover)
    )
    .unwrap();
    writeln!(
        out,
        "\n(\"vs ip -batch\" > 1 means faster than ip -batch with the same forwarding)"
    )
    .unwrap();
}
