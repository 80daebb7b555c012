//! `clos lab failover`: how fast a host notices a silent uplink and moves its traffic to the
//! other one. The measurement the BFD issue asks for, run on the lab itself.
//!
//! One run: a ping stream from the host to a host of another rack (one packet every
//! [`PING_INTERVAL`]); once it flows, an nftables table in the host's namespace drops every
//! frame in and out of one uplink at the device (the link stays up, as with a hung switch or a one-way
//! fibre cut, so only BFD or the hold timer can notice). Measured from just before `nft`
//! runs:
//! * **detection**: until the agent's BFD session on that uplink leaves Up (read from the
//!   agent's control socket);
//! * **FIB**: until the kernel route towards the other host no longer uses that uplink;
//! * **outage**: the longest time without an echo reply: the traffic's own view, which also
//!   waits for the leaves and spines to stop sending the return traffic down the dead link.
//!
//! Then the table goes and the run waits until BFD and both paths are back, so runs are
//! independent. By default the dropped uplink is the one the ping's flow hashes onto, so the
//! outage is not zero by luck.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::check::best_route;
use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::plan::Role;
use crate::sys;
use clos_model::BfdTimers;

/// Time between echo requests.
pub const PING_INTERVAL: Duration = Duration::from_millis(5);
/// Pings before the drop, so the flow and neighbour caches are warm.
const LEAD: Duration = Duration::from_secs(1);
/// How long the ping runs on once the route has left the uplink.
const TAIL: Duration = Duration::from_secs(1);
/// Longest wait for the route to leave the uplink (the hold timer, without BFD, is 9 s).
const MAX_WAIT: Duration = Duration::from_secs(30);
/// Between two polls of the agent and of the kernel.
const POLL: Duration = Duration::from_millis(2);
const TABLE: &str = "clos-failover";

#[derive(Debug, Clone)]
pub struct FailoverOptions {
    pub host: String,
    /// Default: the first host of another rack.
    pub to: Option<String>,
    /// Default: the uplink the ping's flow uses.
    pub uplink: Option<String>,
    pub runs: usize,
}

/// One run.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverRun {
    pub uplink: String,
    /// From the drop to the agent's BFD session leaving Up; `None`: not within the run.
    pub detection_ms: Option<f64>,
    /// From the drop to the kernel route avoiding the uplink.
    pub fib_ms: Option<f64>,
    /// The longest time without an echo reply, less the usual spacing of replies.
    pub outage_ms: f64,
    pub pings_sent: u64,
    pub pings_lost: u64,
    /// How long `nft` took to load the drop (it counts towards the times above).
    pub nft_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailoverReport {
    pub lab: String,
    pub host: String,
    pub to: String,
    pub to_address: Ipv4Addr,
    /// The lab's BFD timers; `None`: BFD is off and only the hold timer notices.
    pub bfd_interval_ms: Option<u32>,
    pub bfd_multiplier: Option<u8>,
    pub ping_interval_ms: f64,
    pub runs: Vec<FailoverRun>,
}

/// The host side of the failover: its namespace, address, uplinks and agent socket.
struct Subject {
    netns: String,
    address: Ipv4Addr,
    uplinks: Vec<String>,
    socket: PathBuf,
}

pub fn run(
    lab: &Lab,
    opts: &FailoverOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<FailoverReport> {
    let plan = lab.plan();
    let node = plan
        .node(&opts.host)
        .filter(|n| n.role == Role::Host)
        .ok_or_else(|| Error::Invalid(format!("{} is not a host of the lab", opts.host)))?;
    let to = match &opts.to {
        Some(t) => plan
            .node(t)
            .filter(|n| n.role == Role::Host)
            .ok_or_else(|| Error::Invalid(format!("{t} is not a host of the lab")))?,
        None => plan.hosts().find(|h| h.rack != node.rack).ok_or_else(|| {
            Error::Invalid("the lab has one rack: no host to fail over towards".into())
        })?,
    };
    let address_of = |h: &str| {
        lab.state()
            .hosts
            .get(h)
            .map(|a| a.address)
            .ok_or_else(|| Error::Invalid(format!("{h} has no address: is the lab up?")))
    };
    let subject = Subject {
        netns: node.netns.clone(),
        address: address_of(&node.name)?,
        uplinks: node.ports.iter().map(|p| p.0.clone()).collect(),
        socket: lab.dir().join(&node.name).join("agent").join("agent.sock"),
    };
    let to_address = address_of(&to.name)?;
    if let Some(u) = &opts.uplink
        && !subject.uplinks.contains(u)
    {
        return Err(Error::Invalid(format!(
            "{} has no uplink {u}: it has {}",
            opts.host,
            subject.uplinks.join(", ")
        )));
    }
    if subject.uplinks.len() < 2 {
        return Err(Error::Invalid(format!(
            "{} has one uplink: nothing to fail over to",
            opts.host
        )));
    }
    // A table left by an interrupted run would fail this one from the start.
    let _ = nft(&subject.netns, &format!("delete table netdev {TABLE}\n"));
    let bfd = lab.state().topology.bfd;
    let mut runs = Vec::new();
    for i in 0..opts.runs {
        wait_healthy(&subject, to_address, bfd)?;
        let uplink = match &opts.uplink {
            Some(u) => u.clone(),
            None => flow_uplink(&subject, to_address)?,
        };
        let r = one_run(&subject, to_address, &uplink);
        let _ = nft(&subject.netns, &format!("delete table netdev {TABLE}\n"));
        let r = r?;
        progress(&format!(
            "run {}/{}: {uplink} dropped: BFD down after {}, FIB after {}, {} pings lost ({:.0} ms)",
            i + 1,
            opts.runs,
            ms(r.detection_ms),
            ms(r.fib_ms),
            r.pings_lost,
            r.outage_ms
        ));
        runs.push(r);
    }
    wait_healthy(&subject, to_address, bfd)?;
    Ok(FailoverReport {
        lab: plan.lab.clone(),
        host: opts.host.clone(),
        to: to.name.clone(),
        to_address,
        bfd_interval_ms: bfd.map(|b| b.interval_ms),
        bfd_multiplier: bfd.map(|b| b.multiplier),
        ping_interval_ms: PING_INTERVAL.as_secs_f64() * 1e3,
        runs,
    })
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "never".into(), |v| format!("{v:.0} ms"))
}

fn one_run(s: &Subject, to: Ipv4Addr, uplink: &str) -> Result<FailoverRun> {
    // `ip netns exec` execs ping, so the child's pid is ping's, for the SIGINT that ends it.
    let mut ping = sys::netns_command(&s.netns, "ping")
        .args(["-D", "-n", "-W", "1"])
        .args(["-i", &format!("{}", PING_INTERVAL.as_secs_f64())])
        .args(["-I", &s.address.to_string(), &to.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("starting ping", e))?;
    // Read as it comes: a pipe holds less than a few seconds of replies.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(ping.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(ping.stderr.take().map(|p| Box::new(p) as _));
    std::thread::sleep(LEAD);

    let stop = Arc::new(AtomicBool::new(false));
    let detected: Arc<Mutex<Option<Instant>>> = Arc::default();
    let fib: Arc<Mutex<Option<Instant>>> = Arc::default();
    let watchers = [
        {
            let (stop, detected, socket, uplink) = (
                stop.clone(),
                detected.clone(),
                s.socket.clone(),
                uplink.to_string(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if bfd_state(&socket, &uplink).is_some_and(|st| st != "Up") {
                        *lock(&detected) = Some(Instant::now());
                        return;
                    }
                    std::thread::sleep(POLL);
                }
            })
        },
        {
            let (stop, fib, netns, uplink) = (
                stop.clone(),
                fib.clone(),
                s.netns.clone(),
                uplink.to_string(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some((_, devs)) = route_devices(&netns, to)
                        && !devs.is_empty()
                        && !devs.contains(&uplink)
                    {
                        *lock(&fib) = Some(Instant::now());
                        return;
                    }
                    std::thread::sleep(POLL);
                }
            })
        },
    ];
    let start = Instant::now();
    let loaded = nft(&s.netns, &drop_rules(uplink));
    let nft_ms = start.elapsed().as_secs_f64() * 1e3;
    while loaded.is_ok() && lock(&fib).is_none() && start.elapsed() < MAX_WAIT {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(TAIL);
    let end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    sys::signal(ping.id(), rustix::process::Signal::INT);
    let status = ping.wait().map_err(|e| Error::io("waiting for ping", e));
    stop.store(true, Ordering::Relaxed);
    for w in watchers {
        let _ = w.join();
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    loaded?;
    let status = status?;
    let since = |t: Option<Instant>| t.map(|t| t.duration_since(start).as_secs_f64() * 1e3);
    let bad_ping = || Error::Command {
        command: "ping".into(),
        status: status.to_string(),
        stderr: stderr.clone(),
    };
    let (sent, received) = ping_counts(&stdout).ok_or_else(bad_ping)?;
    let outage_ms = reply_gap_ms(&stdout, end).ok_or_else(bad_ping)?;
    Ok(FailoverRun {
        uplink: uplink.to_string(),
        detection_ms: since(*lock(&detected)),
        fib_ms: since(*lock(&fib)),
        outage_ms,
        pings_sent: sent,
        pings_lost: sent.saturating_sub(received),
        nft_ms,
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Drops every frame in and out of `uplink` at the device (netdev ingress and egress hooks,
/// Linux 5.16 or later), as a dead wire would: the link stays up, IPv6 neighbour discovery
/// and BFD go unanswered, and senders on the host get no error.
fn drop_rules(uplink: &str) -> String {
    format!(
        "table netdev {TABLE} {{\n\
         \x20 chain ingress {{ type filter hook ingress device \"{uplink}\" priority -500; policy drop; }}\n\
         \x20 chain egress {{ type filter hook egress device \"{uplink}\" priority -500; policy drop; }}\n\
         }}\n"
    )
}

fn nft(netns: &str, script: &str) -> Result<()> {
    let mut child = sys::netns_command(netns, "nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("starting nft", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| Error::io("writing to nft", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io("waiting for nft", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            command: format!("nft -f - in {netns}"),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// `N packets transmitted, M received, ...`.
fn ping_counts(out: &str) -> Option<(u64, u64)> {
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    let mut fields = line.split(", ");
    let sent = fields.next()?.split_whitespace().next()?.parse().ok()?;
    let received = fields.next()?.split_whitespace().next()?.parse().ok()?;
    Some((sent, received))
}

/// The longest time without an echo reply (up to `end`, seconds since the epoch), less the
/// usual spacing of replies, in milliseconds, from `ping -D`'s timestamped reply lines.
/// Counting lost packets instead would trust that ping kept its interval on a loaded machine
/// (it does not: a send that fails with ENOBUFS is retried, not counted); the timestamps do.
fn reply_gap_ms(out: &str, end: f64) -> Option<f64> {
    let mut stamps: Vec<f64> = out
        .lines()
        .filter(|l| l.contains(" bytes from "))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();
    if let Some(&last) = stamps.last() {
        stamps.push(end.max(last));
    }
    if stamps.len() < 3 {
        return None;
    }
    let mut gaps: Vec<f64> = stamps.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_by(f64::total_cmp);
    let usual = gaps[gaps.len() / 2];
    let longest = gaps[gaps.len() - 1];
    Some(((longest - usual) * 1e3).max(0.0))
}

/// The agent's BFD state on `uplink` (`Up`, `Down`...), asked over its control socket.
fn bfd_state(socket: &Path, uplink: &str) -> Option<String> {
    let bfd = bfd_status(socket, uplink)?;
    bfd.get("state")?.as_str().map(str::to_string)
}

/// The agent's BFD status of `uplink` (state, timers...), asked over its control socket.
fn bfd_status(socket: &Path, uplink: &str) -> Option<Value> {
    let mut stream = UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"{\"request\":\"status\"}\n").ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    let v: Value = serde_json::from_str(&line).ok()?;
    v.get("ok")?
        .get("sessions")?
        .as_array()?
        .iter()
        .find(|p| p.get("interface").and_then(Value::as_str) == Some(uplink))?
        .get("bfd")
        .cloned()
}

/// The kernel's route towards `to` in `netns`: its destination and the devices of its paths.
fn route_devices(netns: &str, to: Ipv4Addr) -> Option<(String, Vec<String>)> {
    let out = sys::ip_n(netns, &["-j", "route", "show", "match", &to.to_string()]).ok()?;
    let v: Value = serde_json::from_str(&out).ok()?;
    let (dst, _, mut devs) = best_route(&v, |id| crate::check::nexthop_group(netns, id))?;
    devs.sort();
    devs.dedup();
    Some((dst, devs))
}

/// The uplink the kernel picks for the ping's flow.
fn flow_uplink(s: &Subject, to: Ipv4Addr) -> Result<String> {
    let out = sys::ip_n(
        &s.netns,
        &[
            "-j",
            "route",
            "get",
            &to.to_string(),
            "from",
            &s.address.to_string(),
        ],
    )?;
    let v: Value = serde_json::from_str(&out).map_err(|e| Error::Command {
        command: "ip -j route get".into(),
        status: "unparsable JSON".into(),
        stderr: e.to_string(),
    })?;
    v.as_array()
        .and_then(|a| a.first())
        .and_then(|r| r.get("dev"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::Invalid(format!("no route from {} to {to}", s.address)))
}

/// Every uplink's BFD is Up with its fast timers (a session coming up runs at one packet a
/// second until its poll sequence ends, RFC 5880 6.8.3), and the route to `to` uses every
/// uplink.
fn wait_healthy(s: &Subject, to: Ipv4Addr, bfd: Option<BfdTimers>) -> Result<()> {
    sys::wait_for(
        "both uplinks back (BFD up and ECMP over every uplink)",
        Duration::from_secs(90),
        Duration::from_millis(200),
        || {
            if let Some(timers) = bfd {
                let want = u64::from(timers.interval_ms) * u64::from(timers.multiplier);
                for u in &s.uplinks {
                    let status = bfd_status(&s.socket, u).unwrap_or_default();
                    let state = status
                        .get("state")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown");
                    let detection = status.get("detection_ms").and_then(Value::as_u64);
                    if state != "Up" || detection != Some(want) {
                        return Ok(Err(format!(
                            "BFD on {u} is {state}, detection time {detection:?} ms (want {want})"
                        )));
                    }
                }
            }
            let devs = route_devices(&s.netns, to).map(|r| r.1).unwrap_or_default();
            if s.uplinks.iter().all(|u| devs.contains(u)) {
                Ok(Ok(()))
            } else {
                Ok(Err(format!("the route to {to} uses {devs:?}")))
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pings_counts_and_longest_silence() {
        let out = "PING 10.0.0.32 (10.0.0.32) from 10.0.0.0 : 56(84) bytes of data.\n\
                   [1700000000.000000] 64 bytes from 10.0.0.32: icmp_seq=1 ttl=61 time=0.1 ms\n\
                   [1700000000.005000] 64 bytes from 10.0.0.32: icmp_seq=2 ttl=61 time=0.1 ms\n\
                   [1700000000.010000] 64 bytes from 10.0.0.32: icmp_seq=3 ttl=61 time=0.1 ms\n\
                   [1700000000.310000] 64 bytes from 10.0.0.32: icmp_seq=63 ttl=61 time=0.1 ms\n\
                   [1700000000.315000] 64 bytes from 10.0.0.32: icmp_seq=64 ttl=61 time=0.1 ms\n\
                   \n--- 10.0.0.32 ping statistics ---\n\
                   64 packets transmitted, 5 received, 92.1875% packet loss, time 315ms\n";
        assert_eq!(ping_counts(out), Some((64, 5)));
        let gap = reply_gap_ms(out, 1_700_000_000.316).unwrap();
        assert!((gap - 295.0).abs() < 0.01, "{gap}");
        // No reply since the failure: the silence lasts until the end.
        let gap = reply_gap_ms(out, 1_700_000_002.0).unwrap();
        assert!((gap - 1680.0).abs() < 0.01, "{gap}");
        let errors =
            "800 packets transmitted, 700 received, +3 errors, 12.5% packet loss, time 4000ms\n";
        assert_eq!(ping_counts(errors), Some((800, 700)));
        assert_eq!(ping_counts("ping: connect: Network is unreachable\n"), None);
        assert_eq!(reply_gap_ms(errors, 0.0), None);
    }

    #[test]
    fn drop_rules_hold_the_uplink_both_ways() {
        let r = drop_rules("eth1");
        for hook in ["ingress", "egress"] {
            assert!(
                r.contains(&format!(
                    "hook {hook} device \"eth1\" priority -500; policy drop;"
                )),
                "{r}"
            );
        }
    }
}
