//! A lab switch, whatever software runs it: starting it from its rendered config and reading
//! its BGP sessions back, for `up`'s convergence wait and `status`.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::topology::SwitchSoftware;
use crate::{bird, frr, speaker};

/// One BGP session of a switch, as its software reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub neighbor: String,
    pub state: String,
    pub prefixes_received: u64,
}

impl Session {
    pub fn established(&self) -> bool {
        self.state == "Established"
    }
}

/// Where a switch of a lab keeps its files.
pub fn dir_of(lab_dir: &Path, node: &str) -> PathBuf {
    lab_dir.join(node)
}

/// Starts the switch software in `ns` with `config`, its files in `dir`. Returns the pids of
/// its processes by name.
/// `exe` is the `clos` binary, for `clos` switches.
pub fn start(
    software: SwitchSoftware,
    exe: &Path,
    ns: &str,
    dir: &Path,
    config: &str,
) -> Result<Vec<(String, u32)>> {
    match software {
        SwitchSoftware::Frr => frr::start(ns, dir, config),
        SwitchSoftware::Bird => bird::start(ns, dir, config),
        SwitchSoftware::Clos => speaker::start(exe, ns, dir, config),
    }
}

/// The file holding the config a switch runs with (the last one applied).
pub fn config_file(software: SwitchSoftware, dir: &Path) -> PathBuf {
    dir.join(match software {
        SwitchSoftware::Frr => "frr.conf",
        SwitchSoftware::Bird => "bird.conf",
        SwitchSoftware::Clos => "bgp.yaml",
    })
}

/// Applies a new rendered config to a running switch: FRR and BIRD change in place, a `clos
/// bgp` switch restarts gracefully ([`speaker::restart`]). Returns the pid of a restarted
/// process.
pub fn reconfigure(
    software: SwitchSoftware,
    exe: &Path,
    ns: &str,
    dir: &Path,
    config: &str,
) -> Result<Option<u32>> {
    match software {
        SwitchSoftware::Frr => frr::reload(dir, config).map(|()| None),
        SwitchSoftware::Bird => bird::reload(dir, config).map(|()| None),
        SwitchSoftware::Clos => speaker::restart(exe, ns, dir, config).map(Some),
    }
}

/// The switch's BGP sessions.
pub fn sessions(software: SwitchSoftware, dir: &Path) -> Result<Vec<Session>> {
    match software {
        SwitchSoftware::Frr => frr::sessions(dir),
        SwitchSoftware::Bird => bird::sessions(dir),
        SwitchSoftware::Clos => speaker::sessions(dir),
    }
}

/// The IPv4 prefixes the switch has routes for.
pub fn prefixes(software: SwitchSoftware, dir: &Path) -> Result<u64> {
    match software {
        SwitchSoftware::Frr => frr::prefixes(dir),
        SwitchSoftware::Bird => bird::prefixes(dir),
        SwitchSoftware::Clos => speaker::prefixes(dir),
    }
}

/// The paths the switch has for exactly `prefix`, by the port they lead to.
pub fn paths_of(software: SwitchSoftware, dir: &Path, prefix: &IpNet) -> Result<Vec<String>> {
    match software {
        SwitchSoftware::Frr => frr::paths_of(dir, prefix),
        SwitchSoftware::Bird => bird::paths_of(dir, prefix),
        SwitchSoftware::Clos => speaker::paths_of(dir, prefix),
    }
}
