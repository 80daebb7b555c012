//! The devices under test, each started in its own namespace with one passive neighbour per
//! sender and one for the receiver, importing and exporting everything, and never touching the
//! kernel's routing table (BIRD has no kernel protocol, FRR runs with `bgp no-rib`, GoBGP has
//! no zebra, portable OpenBGPD on Linux does not program routes, Clos's standalone speaker has
//! no FIB).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;

use clap::ValueEnum;
use clos_testkit::peers::{Bird, Frr, Gobgp, Openbgpd};
use clos_testkit::{Daemon, NeighborSpec, Netns, PeerDaemon, SpeakerSpec};

use crate::Result;
use crate::receiver::{ClosCommand, Kind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Device {
    /// No device: the senders connect straight to the receiver. The rig's own limit.
    Wire,
    Bird,
    Frr,
    Gobgp,
    Openbgpd,
    Clos,
}

impl Device {
    pub fn name(self) -> &'static str {
        match self {
            Device::Wire => "wire",
            Device::Bird => "bird",
            Device::Frr => "frr",
            Device::Gobgp => "gobgp",
            Device::Openbgpd => "openbgpd",
            Device::Clos => "clos",
        }
    }

    pub fn version(self, clos: &ClosCommand) -> String {
        let kind = match self {
            Device::Wire => return "senders straight to the receiver".into(),
            Device::Bird => Kind::Bird,
            Device::Frr => Kind::Frr,
            Device::Gobgp => Kind::Gobgp,
            Device::Openbgpd => Kind::Openbgpd,
            Device::Clos => Kind::Clos,
        };
        crate::receiver::version(kind, clos)
    }
}

/// One neighbour of the device.
pub struct Neighbor {
    pub address: Ipv4Addr,
    pub asn: u32,
    /// The device's own address on the link.
    pub local: Ipv4Addr,
}

/// A running device; stopped (with every process in its namespace) when dropped.
pub trait Dut {
    fn pids(&self) -> Vec<u32>;
    fn check_running(&self) -> Result<()>;
}

/// A testkit daemon: it owns its processes and scratch directory.
struct Peer<T>(T);

impl<T: PeerDaemon> Dut for Peer<T> {
    fn pids(&self) -> Vec<u32> {
        self.0.daemons().iter().filter_map(Daemon::pid).collect()
    }

    fn check_running(&self) -> Result<()> {
        self.0.check_running().map_err(Into::into)
    }
}

fn wrap<T: PeerDaemon + 'static>(inner: T) -> Box<dyn Dut> {
    Box::new(Peer(inner))
}

/// The Clos speaker process; the daemon is stopped before its directory goes.
struct ClosDut {
    daemon: Daemon,
    _dir: tempfile::TempDir,
}

impl Dut for ClosDut {
    fn pids(&self) -> Vec<u32> {
        self.daemon.pid().into_iter().collect()
    }

    fn check_running(&self) -> Result<()> {
        self.daemon.check_running().map_err(Into::into)
    }
}

/// Starts `device` (not `Wire`) in `ns` as AS `asn` with these neighbours, all passive.
pub fn start(
    device: Device,
    ns: &Netns,
    asn: u32,
    router_id: Ipv4Addr,
    neighbors: &[Neighbor],
    clos: &ClosCommand,
) -> Result<Box<dyn Dut>> {
    let mut spec = SpeakerSpec::new(asn, router_id);
    for n in neighbors {
        spec = spec.neighbor(
            NeighborSpec::new(IpAddr::V4(n.address), n.asn)
                .local_address(IpAddr::V4(n.local))
                .passive(),
        );
    }
    Ok(match device {
        Device::Wire => return Err("the wire has no device".into()),
        Device::Bird => wrap(Bird::start(ns, &spec)?),
        Device::Frr => {
            let frr = Frr::start(ns, &spec)?;
            let out = Command::new("vtysh")
                .arg("--vty_socket")
                .arg(frr.dir())
                .args(["-c", "configure terminal", "-c", "bgp no-rib"])
                .output()?;
            if !out.status.success() || !out.stdout.is_empty() {
                return Err(format!(
                    "vtysh bgp no-rib: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
                .into());
            }
            wrap(frr)
        }
        Device::Gobgp => wrap(Gobgp::start(ns, &spec)?),
        Device::Openbgpd => wrap(Openbgpd::start(ns, &spec)?),
        Device::Clos => Box::new(start_clos(ns, asn, router_id, neighbors, clos)?),
    })
}

/// `clos bgp run` (or this binary's `speaker` subcommand) with a config file importing and
/// exporting everything to every neighbour.
fn start_clos(
    ns: &Netns,
    asn: u32,
    router_id: Ipv4Addr,
    neighbors: &[Neighbor],
    how: &ClosCommand,
) -> Result<ClosDut> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("{}clos-", clos_testkit::names::scratch_prefix()))
        .tempdir()?;
    let config = dir.path().join("bgp.json");
    let control: PathBuf = dir.path().join("bgp.sock");
    let peers: Vec<serde_json::Value> = neighbors
        .iter()
        .map(|n| {
            serde_json::json!({
                "address": n.address,
                "remote_as": n.asn,
                "local_address": n.local,
                "passive": true,
                "import": "all",
                "export": "all",
            })
        })
        .collect();
    // JSON is YAML, so `clos bgp run -c` reads this file.
    let cfg = serde_json::json!({
        "asn": asn,
        "router_id": router_id,
        "listen": ["0.0.0.0:179"],
        "connect_retry": 1,
        "graceful_restart": null,
        "policy": { "policies": { "all": { "default": "accept" } } },
        "peers": peers,
    });
    std::fs::write(&config, serde_json::to_vec_pretty(&cfg)?)?;
    let mut cmd = match how {
        ClosCommand::Binary(p) => {
            let mut c = ns.command(&p.to_string_lossy());
            c.args(["bgp", "run"]);
            c
        }
        ClosCommand::SelfSpeaker(p) => {
            let mut c = ns.command(&p.to_string_lossy());
            c.arg("speaker");
            c
        }
    };
    cmd.arg("-c").arg(&config).arg("--control").arg(&control);
    let daemon = Daemon::spawn("clos", cmd, &dir.path().join("clos.log"))?;
    Ok(ClosDut { daemon, _dir: dir })
}
