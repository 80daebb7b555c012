//! Removal of leftovers from test processes that died without running their destructors
//! (`kill -9`, a CI timeout). Only objects whose name carries our prefix and the pid of a process
//! that no longer exists are touched, so sweeping is safe while other tests run in parallel.

use std::path::Path;
use std::process::Command;
use std::sync::Once;

use crate::names::{self, LINK_PREFIX, PREFIX};
use crate::netns::remove_netns;
use crate::process::run;

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub namespaces: Vec<String>,
    pub links: Vec<String>,
    pub dirs: Vec<String>,
}

static SWEEP: Once = Once::new();

pub(crate) fn sweep_once() {
    SWEEP.call_once(|| {
        let swept = sweep();
        if swept != Swept::default() {
            eprintln!("testkit: swept leftovers of dead test runs: {swept:?}");
        }
    });
}

fn is_dead(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

fn ours_and_dead(name: &str) -> bool {
    names::owner_pid(name).is_some_and(is_dead)
}

/// Removes namespaces (and the processes inside them), host-side links and scratch directories
/// and scratch files left behind by test processes that are gone.
pub fn sweep() -> Swept {
    let mut swept = Swept::default();

    let namespaces = run(Command::new("ip").args(["netns", "list"])).unwrap_or_default();
    for name in namespaces
        .lines()
        .filter_map(|l| l.split_whitespace().next())
    {
        if name.starts_with(PREFIX) && ours_and_dead(name) {
            remove_netns(name);
            swept.namespaces.push(name.to_owned());
        }
    }

    let links = run(Command::new("ip").args(["-o", "link", "show"])).unwrap_or_default();
    for line in links.lines() {
        // "12: cv123-4@if13: <BROADCAST,..." -> "cv123-4"
        let Some(name) = line.split(": ").nth(1).and_then(|n| n.split('@').next()) else {
            continue;
        };
        if name.starts_with(LINK_PREFIX) && ours_and_dead(name) {
            let _ = run(Command::new("ip").args(["link", "del", name]));
            swept.links.push(name.to_owned());
        }
    }

    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(PREFIX) && ours_and_dead(&name) {
                let path = entry.path();
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                swept.dirs.push(name);
            }
        }
    }
    swept
}
