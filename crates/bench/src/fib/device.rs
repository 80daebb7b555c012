//! The devices under test: the host's routing daemon in the host's namespace, peering with the
//! two ToRs, taking every route from them, advertising nothing learned (a host is never
//! transit), and installing the routes into the kernel with both ToRs as next hops.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::ValueEnum;
use clos_testkit::peers::{Bird, Frr};
use clos_testkit::{Daemon, Netns, PeerDaemon};

use crate::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Device {
    /// No BGP: `ip -batch` adds the same routes with two next hops each, one request per
    /// route. The plain-netlink baseline.
    IpBatch,
    /// BIRD 2: two BGP protocols and the kernel protocol with `merge paths on`.
    Bird,
    /// FRR: bgpd with `maximum-paths 2`, zebra installing the routes.
    Frr,
    /// The Clos agent (`clos agent run`), started fail-static from a saved desired state.
    Clos,
}

/// `rtm_protocol` of the routes each device installs.
pub const PROTO_IP_BATCH: u8 = 200;
const RTPROT_BIRD: u8 = 12;
const RTPROT_BGP: u8 = 186;
const RTPROT_CLOS: u8 = 198;

impl Device {
    pub fn name(self) -> &'static str {
        match self {
            Device::IpBatch => "ip-batch",
            Device::Bird => "bird",
            Device::Frr => "frr",
            Device::Clos => "clos",
        }
    }

    /// The protocol number its kernel routes carry.
    pub fn protocol(self) -> u8 {
        match self {
            Device::IpBatch => PROTO_IP_BATCH,
            Device::Bird => RTPROT_BIRD,
            Device::Frr => RTPROT_BGP,
            Device::Clos => RTPROT_CLOS,
        }
    }

    pub fn version(self, clos: &Path) -> String {
        let (program, arg) = match self {
            Device::IpBatch => (Path::new("ip"), "-V"),
            Device::Bird => (Path::new("bird"), "--version"),
            Device::Frr => (Path::new("/usr/lib/frr/zebra"), "--version"),
            Device::Clos => (clos, "--version"),
        };
        crate::receiver::first_line(Command::new(program).arg(arg)).unwrap_or_else(|| "?".into())
    }
}

/// One ToR as the host sees it.
pub struct Tor {
    pub address: Ipv4Addr,
    pub asn: u32,
    /// The host's address and interface on the link to it.
    pub local: Ipv4Addr,
    pub interface: String,
}

/// A running device; stopped (with its scratch directory removed) when dropped.
pub trait Dut {
    fn pids(&self) -> Vec<u32>;
    fn check_running(&self) -> Result<()>;
}

struct Peer<T>(T);

impl<T: PeerDaemon> Dut for Peer<T> {
    fn pids(&self) -> Vec<u32> {
        self.0.daemons().iter().filter_map(Daemon::pid).collect()
    }

    fn check_running(&self) -> Result<()> {
        self.0.check_running().map_err(Into::into)
    }
}

/// The agent process; stopped before its directory goes.
struct Agent {
    daemon: Daemon,
    _dir: tempfile::TempDir,
}

impl Dut for Agent {
    fn pids(&self) -> Vec<u32> {
        self.daemon.pid().into_iter().collect()
    }

    fn check_running(&self) -> Result<()> {
        self.daemon.check_running().map_err(Into::into)
    }
}

/// Starts `device` (not `IpBatch`) in `ns` as AS `asn` peering (passively, where the daemon
/// can) with `tors`.
pub fn start(
    device: Device,
    ns: &Netns,
    asn: u32,
    router_id: Ipv4Addr,
    tors: &[Tor],
    clos: &Path,
) -> Result<Box<dyn Dut>> {
    Ok(match device {
        Device::IpBatch => return Err("ip-batch runs no daemon".into()),
        Device::Bird => Box::new(Peer(Bird::start_config(
            ns,
            &bird_config(asn, router_id, tors),
        )?)),
        Device::Frr => Box::new(Peer(Frr::start_config(
            ns,
            &frr_config(asn, router_id, tors),
        )?)),
        Device::Clos => Box::new(start_agent(ns, asn, router_id, tors, clos)?),
    })
}

/// BIRD 2.0: the kernel protocol merges the equal BGP paths into one multipath route.
pub fn bird_config(asn: u32, router_id: Ipv4Addr, tors: &[Tor]) -> String {
    let mut c = format!(
        "router id {router_id};\nlog stderr all;\nprotocol device {{}}\n\
         protocol kernel {{\n  ipv4 {{ import none; export all; }};\n  merge paths on;\n}}\n"
    );
    for (i, t) in tors.iter().enumerate() {
        c.push_str(&format!(
            "protocol bgp tor{i} {{\n  local {} as {asn};\n  neighbor {} as {};\n  passive on;\n  \
             ipv4 {{ import all; export none; }};\n}}\n",
            t.local, t.address, t.asn
        ));
    }
    c
}

/// FRR 8: one AS per ToR, so multipath needs `multipath-relax`; an outbound route-map that
/// denies everything keeps the host from being transit.
pub fn frr_config(asn: u32, router_id: Ipv4Addr, tors: &[Tor]) -> String {
    let mut c = String::from("frr defaults datacenter\nroute-map HOST-OUT deny 10\nexit\n");
    c.push_str(&format!(
        "router bgp {asn}\n bgp router-id {router_id}\n no bgp ebgp-requires-policy\n \
         bgp bestpath as-path multipath-relax\n"
    ));
    for t in tors {
        c.push_str(&format!(
            " neighbor {0} remote-as {1}\n neighbor {0} passive\n",
            t.address, t.asn
        ));
    }
    c.push_str(" address-family ipv4 unicast\n  maximum-paths 2\n");
    for t in tors {
        c.push_str(&format!(
            "  neighbor {} route-map HOST-OUT out\n",
            t.address
        ));
    }
    c.push_str(" exit-address-family\nexit\n");
    c
}

/// `agent.yaml`: the controller at a closed loopback port, one uplink per ToR.
pub fn agent_config(tors: &[Tor]) -> String {
    let mut c = String::from(
        "node: h1\ncontroller:\n  url: http://127.0.0.1:9\nstate_dir: state\nuplinks:\n",
    );
    for t in tors {
        c.push_str(&format!(
            "  - interface: {}\n    address: {}\n    remote_as: {}\n",
            t.interface, t.address, t.asn
        ));
    }
    c
}

/// The saved desired state the agent starts from (fail static): its ASN and one host
/// address (which also makes the router id).
pub fn agent_state(asn: u32, router_id: Ipv4Addr) -> serde_json::Value {
    serde_json::json!({
        "desired": {
            "revision": 1,
            "state": {
                "node": "h1",
                "asn": asn,
                "advertisements": [format!("{router_id}/32")],
                "addresses": [{"ip": router_id, "owner": {"kind": "host", "id": "h1"}}],
            },
        },
        "endpoints": [],
    })
}

fn start_agent(
    ns: &Netns,
    asn: u32,
    router_id: Ipv4Addr,
    tors: &[Tor],
    clos: &Path,
) -> Result<Agent> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("{}agent-", clos_testkit::names::scratch_prefix()))
        .tempdir()?;
    let config: PathBuf = dir.path().join("agent.yaml");
    std::fs::write(&config, agent_config(tors))?;
    let state = dir.path().join("state");
    std::fs::create_dir(&state)?;
    std::fs::write(
        state.join("state.json"),
        serde_json::to_vec_pretty(&agent_state(asn, router_id))?,
    )?;
    let mut cmd = ns.command(&clos.to_string_lossy());
    cmd.arg("agent").arg("-c").arg(&config).arg("run");
    let daemon = Daemon::spawn("clos-agent", cmd, &dir.path().join("agent.log"))?;
    Ok(Agent { daemon, _dir: dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tors() -> Vec<Tor> {
        (0..2u8)
            .map(|i| Tor {
                address: Ipv4Addr::new(192, 0, 2, 4 * i + 1),
                asn: 65001 + u32::from(i),
                local: Ipv4Addr::new(192, 0, 2, 4 * i + 2),
                interface: format!("up{i}"),
            })
            .collect()
    }

    #[test]
    fn configs_name_both_tors() {
        let id = Ipv4Addr::new(10, 255, 0, 100);
        let bird = bird_config(65100, id, &tors());
        assert!(bird.contains("merge paths on;"), "{bird}");
        assert!(bird.contains("local 192.0.2.6 as 65100;\n  neighbor 192.0.2.5 as 65002;"));
        let frr = frr_config(65100, id, &tors());
        assert!(frr.contains("maximum-paths 2") && frr.contains("multipath-relax"));
        assert_eq!(frr.matches("route-map HOST-OUT out").count(), 2, "{frr}");
        let agent = agent_config(&tors());
        assert!(agent.contains("interface: up1\n    address: 192.0.2.5\n    remote_as: 65002"));
        let state = agent_state(65100, id);
        assert_eq!(state["desired"]["state"]["asn"], 65100);
    }
}
