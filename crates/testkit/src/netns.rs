//! Network namespaces and veth links owned by one test.

use std::process::Command;

use crate::process::run;
use crate::{Result, names, sweep};

/// A network namespace that exists until this value is dropped. Dropping kills every process
/// still inside it and deletes it, which also deletes the veth ends inside it.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

/// The two ends of a veth pair, named as seen inside their namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub local: String,
    pub remote: String,
}

impl Netns {
    /// Creates a fresh namespace with its loopback up. The first call in a process sweeps
    /// leftovers of killed test runs.
    pub fn new() -> Result<Self> {
        sweep::sweep_once();
        let name = names::netns();
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <ns> <args>`, returning stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// A command that will run `program` inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `program args` inside the namespace to completion, returning stdout.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        run(self.command(program).args(args))
    }

    /// Joins this namespace to `other` with a veth pair with generated names, both ends up.
    pub fn link_to(&self, other: &Netns) -> Result<Link> {
        self.link_named(&names::link(), other, &names::link())
    }

    /// Joins this namespace to `other` with a veth pair named `local` here and `remote` there.
    /// Both ends are created directly inside their namespaces, so nothing ever appears in the
    /// host's namespace.
    pub fn link_named(&self, local: &str, other: &Netns, remote: &str) -> Result<Link> {
        run(Command::new("ip").args([
            "link",
            "add",
            local,
            "netns",
            &self.name,
            "type",
            "veth",
            "peer",
            "name",
            remote,
            "netns",
            &other.name,
        ]))?;
        self.ip(&["link", "set", local, "up"])?;
        other.ip(&["link", "set", remote, "up"])?;
        Ok(Link {
            local: local.to_owned(),
            remote: remote.to_owned(),
        })
    }

    /// Adds an address (`10.0.0.1/30`, `2001:db8::1/64`) to `dev`. IPv6 addresses skip duplicate
    /// address detection so they are usable at once.
    pub fn add_addr(&self, dev: &str, cidr: &str) -> Result<()> {
        let mut args = vec!["addr", "add", cidr, "dev", dev];
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.ip(&args).map(drop)
    }

    /// Runs `f` on a new thread that has entered this namespace, so every socket it creates
    /// (a tokio runtime built on that thread included) lives here. `setns(2)` moves only the
    /// calling thread, which is why this is a thread of its own.
    pub fn spawn_thread<T, F>(&self, f: F) -> Result<std::thread::JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let path = format!("/run/netns/{}", self.name);
        let file = std::fs::File::open(&path)
            .map_err(|e| crate::Error::io(format!("opening {path}"), e))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            let entered = rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&file),
                Some(rustix::thread::LinkNameSpaceType::Network),
            );
            let ok = entered.is_ok();
            let _ = tx.send(entered.map_err(std::io::Error::from));
            // Never run `f` in the host namespace by mistake.
            assert!(ok, "setns failed");
            f()
        });
        rx.recv()
            .map_err(|_| crate::Error::io("namespace thread", std::io::Error::other("died")))?
            .map_err(|e| crate::Error::io(format!("entering namespace {}", self.name), e))?;
        Ok(handle)
    }

    /// Pids of the processes inside the namespace.
    pub fn pids(&self) -> Vec<u32> {
        pids_in(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove_netns(&self.name);
    }
}

pub(crate) fn pids_in(ns: &str) -> Vec<u32> {
    run(Command::new("ip").args(["netns", "pids", ns]))
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills every process in `ns`, then deletes it. Best effort: used from `Drop` and the sweeper.
pub(crate) fn remove_netns(ns: &str) {
    // A process that forks while we kill could survive one pass; a few passes settle it.
    for _ in 0..5 {
        let pids = pids_in(ns);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            let _ = run(Command::new("kill").args(["-KILL", &pid.to_string()]));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if let Err(err) = run(Command::new("ip").args(["netns", "del", ns])) {
        eprintln!("testkit: could not delete namespace {ns}: {err}");
    }
}
