//! The receivers of the ingest benchmark, each started in its own namespace with a config that
//! accepts everything, and each asked for its session state and received-prefix count in the
//! cheapest way its CLI offers (a counter, never a table dump, so polling does not slow it).

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use clap::ValueEnum;
use clos_bgp::driver::{Speaker, control};
use clos_bgp::session::{RemoteAs, SessionConfig};
use clos_bgp::wire::{DecodeContext, Family, KEEPALIVE, Message};
use clos_testkit::peers::{Bird, Frr, Gobgp, Openbgpd};
use clos_testkit::{Daemon, NeighborSpec, Netns, PeerDaemon, SpeakerSpec, wait_until};
use serde_json::Value;

use crate::Result;
use crate::blocking::read_some;

/// The receiver's side of the link.
pub const RECEIVER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const RECEIVER_AS: u32 = 65002;
/// The sender's side of the link.
pub const SENDER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const SENDER_AS: u32 = 65001;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Kind {
    /// Not a BGP implementation: answers the OPEN and counts prefixes, keeping nothing. Its
    /// time is the sender's ceiling; a receiver near it is limited by the sender.
    Sink,
    Bird,
    Frr,
    Gobgp,
    Openbgpd,
    Clos,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sink => "sink",
            Kind::Bird => "bird",
            Kind::Frr => "frr",
            Kind::Gobgp => "gobgp",
            Kind::Openbgpd => "openbgpd",
            Kind::Clos => "clos",
        }
    }
}

/// What one query of the receiver saw.
#[derive(Debug, Clone)]
pub struct Observation {
    pub established: bool,
    pub state: String,
    pub received: u64,
}

/// A running receiver.
pub trait Receiver {
    /// The session state with the sender and the number of prefixes received from it.
    fn observe(&self) -> Result<Observation>;
    /// The receiver's top-level processes (their children are found from `/proc`).
    fn pids(&self) -> Vec<u32>;
    /// An error if a process of the receiver has exited.
    fn check_running(&self) -> Result<()>;
}

/// How the `clos` receiver is run: a `clos` binary (`clos bgp run`), or this binary's hidden
/// `speaker` subcommand, which runs the same driver the same way.
#[derive(Debug, Clone)]
pub enum ClosCommand {
    Binary(PathBuf),
    SelfSpeaker(PathBuf),
}

impl ClosCommand {
    /// `explicit` (`builtin`: this binary), else a `clos` binary next to this one
    /// (`target/release/clos` when run with `cargo run --release`), else this binary.
    pub fn find(explicit: Option<&Path>) -> Result<Self> {
        let me = std::env::current_exe()?;
        if explicit == Some(Path::new("builtin")) {
            return Ok(ClosCommand::SelfSpeaker(me));
        }
        if let Some(path) = explicit {
            if !path.is_file() {
                return Err(format!("--clos-bin {}: no such file", path.display()).into());
            }
            return Ok(ClosCommand::Binary(path.to_owned()));
        }
        let sibling = me.with_file_name("clos");
        Ok(if sibling.is_file() {
            ClosCommand::Binary(sibling)
        } else {
            ClosCommand::SelfSpeaker(me)
        })
    }

    pub fn describe(&self) -> String {
        match self {
            ClosCommand::Binary(p) => {
                let age = std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .map_or_else(String::new, |age| {
                        format!(" (built {} min before this run)", age.as_secs() / 60)
                    });
                format!("{} bgp run{age}", p.display())
            }
            ClosCommand::SelfSpeaker(_) => {
                "clos-bench speaker (the clos-bgp driver built into this binary, run as `clos bgp \
                 run` runs it)"
                    .to_owned()
            }
        }
    }
}

/// Starts `kind` in `ns`, passive, peering with the sender.
pub fn start(kind: Kind, ns: &Netns, clos: &ClosCommand) -> Result<Box<dyn Receiver>> {
    let sender = IpAddr::V4(SENDER_ADDR);
    let spec = SpeakerSpec::new(RECEIVER_AS, RECEIVER_ADDR).neighbor(
        NeighborSpec::new(sender, SENDER_AS)
            .local_address(IpAddr::V4(RECEIVER_ADDR))
            .passive(),
    );
    Ok(match kind {
        Kind::Sink => Box::new(Sink::start(ns)?),
        Kind::Bird => Box::new(BirdReceiver(Bird::start(ns, &spec)?)),
        Kind::Frr => Box::new(FrrReceiver::start(ns, &spec)?),
        Kind::Gobgp => Box::new(GobgpReceiver::start(ns, &spec)?),
        Kind::Openbgpd => Box::new(OpenbgpdReceiver(Openbgpd::start(ns, &spec)?)),
        Kind::Clos => Box::new(ClosReceiver::start(ns, clos)?),
    })
}

/// The receiver's version, for the report.
pub fn version(kind: Kind, clos: &ClosCommand) -> String {
    let (program, arg) = match kind {
        Kind::Sink => return "TCP reader in clos-bench".into(),
        Kind::Bird => ("bird", "--version"),
        Kind::Frr => ("/usr/lib/frr/bgpd", "--version"),
        Kind::Gobgp => ("gobgpd", "--version"),
        Kind::Openbgpd => ("bgpctl", "-V"),
        Kind::Clos => {
            return match clos {
                ClosCommand::Binary(p) => {
                    first_line(Command::new(p).arg("--version")).unwrap_or_else(|| "clos".into())
                }
                ClosCommand::SelfSpeaker(_) => {
                    format!("clos-bgp {} (in clos-bench)", env!("CARGO_PKG_VERSION"))
                }
            };
        }
    };
    first_line(Command::new(program).arg(arg)).unwrap_or_else(|| "?".into())
}

/// The first non-empty line a command prints (on stdout or stderr): its version.
pub(crate) fn first_line(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    let text = [out.stdout, out.stderr].concat();
    String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

fn pids_of(daemons: &[Daemon]) -> Vec<u32> {
    daemons.iter().filter_map(Daemon::pid).collect()
}

fn check(daemons: &[Daemon]) -> Result<()> {
    daemons
        .iter()
        .try_for_each(Daemon::check_running)
        .map_err(Into::into)
}

fn json(what: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| format!("{what}: {e}: {text}").into())
}

fn observation(state: &str, established: bool, received: u64) -> Observation {
    Observation {
        established,
        state: state.to_owned(),
        received,
    }
}

/// BIRD: `show protocols all n0` carries both the BGP state and the import counter
/// (`Routes: N imported, ...`); `show route count` would walk the table on every poll.
struct BirdReceiver(Bird);

impl Receiver for BirdReceiver {
    fn observe(&self) -> Result<Observation> {
        parse_bird(&self.0.birdc("show protocols all n0")?)
    }

    fn pids(&self) -> Vec<u32> {
        pids_of(self.0.daemons())
    }

    fn check_running(&self) -> Result<()> {
        check(self.0.daemons())
    }
}

fn parse_bird(out: &str) -> Result<Observation> {
    let state = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("BGP state:"))
        .map(str::trim)
        .ok_or_else(|| format!("birdc show protocols all: no BGP state in {out:?}"))?;
    // `Routes:         100000 imported, 0 exported, 100000 preferred`; absent while down.
    let received = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Routes:"))
        .and_then(|r| r.split_whitespace().next())
        .map_or(Ok(0), str::parse)
        .map_err(|e| format!("birdc show protocols all: bad route count: {e}"))?;
    Ok(observation(state, state == "Established", received))
}

/// FRR: `show bgp ipv4 unicast summary json`, the peer's `pfxRcd` counter, asked of bgpd over
/// its vty socket directly (vtysh costs about 40 ms of CPU a call, most of a 50 ms poll). Routes
/// are not installed in the kernel (`bgp no-rib`): the other receivers do not install them
/// either.
struct FrrReceiver {
    frr: Frr,
    vty: FrrVty,
}

impl FrrReceiver {
    fn start(ns: &Netns, spec: &SpeakerSpec) -> Result<Self> {
        let frr = Frr::start(ns, spec)?;
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
        let vty = FrrVty {
            path: frr.dir().join("bgpd.vty"),
            conn: RefCell::new(None),
        };
        Ok(FrrReceiver { frr, vty })
    }
}

impl Receiver for FrrReceiver {
    fn observe(&self) -> Result<Observation> {
        let text = self.vty.command("show bgp ipv4 unicast summary json")?;
        parse_frr(&json("bgpd show bgp ipv4 unicast summary json", &text)?)
    }

    fn pids(&self) -> Vec<u32> {
        pids_of(self.frr.daemons())
    }

    fn check_running(&self) -> Result<()> {
        check(self.frr.daemons())
    }
}

/// A client of one FRR daemon's vty socket, speaking vtysh's protocol: a command ending in a
/// NUL byte; the output, then three NUL bytes and the command's status.
struct FrrVty {
    path: PathBuf,
    conn: RefCell<Option<UnixStream>>,
}

impl FrrVty {
    fn command(&self, command: &str) -> Result<String> {
        let result = self.try_command(command);
        if result.is_err() {
            // Reconnect on the next call.
            self.conn.borrow_mut().take();
        }
        result
    }

    fn try_command(&self, command: &str) -> Result<String> {
        let mut conn = self.conn.borrow_mut();
        if conn.is_none() {
            let stream = UnixStream::connect(&self.path)?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            *conn = Some(stream);
        }
        let stream = conn.as_mut().expect("connected above");
        stream.write_all(command.as_bytes())?;
        stream.write_all(&[0])?;
        let mut out = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Err(format!("{}: closed", self.path.display()).into());
            }
            out.extend_from_slice(&buf[..n]);
            let len = out.len();
            if len >= 4 && out[len - 4..len - 1] == [0, 0, 0] {
                let status = out[len - 1];
                out.truncate(len - 4);
                let text = String::from_utf8_lossy(&out).into_owned();
                if status != 0 {
                    return Err(format!("bgpd `{command}`: status {status}: {text}").into());
                }
                return Ok(text);
            }
        }
    }
}

fn parse_frr(v: &Value) -> Result<Observation> {
    // Newer FRR nests the family (`{"ipv4Unicast": {...}}`); 8.x prints it at the top.
    let family = v.get("ipv4Unicast").unwrap_or(v);
    let Some(peer) = family.pointer(&format!("/peers/{SENDER_ADDR}")) else {
        // No peers object at all until the first neighbour has state.
        return Ok(observation("none", false, 0));
    };
    let state = peer.get("state").and_then(Value::as_str).unwrap_or("?");
    let received = peer.get("pfxRcd").and_then(Value::as_u64).unwrap_or(0);
    Ok(observation(state, state == "Established", received))
}

/// GoBGP: `gobgp neighbor ADDR -j`, the IPv4 unicast `received` counter. The CLI talks gRPC to
/// the namespace's loopback, so it runs from a thread inside the namespace (a child inherits
/// the thread's namespace), without `ip netns exec` on every poll.
struct GobgpReceiver {
    gobgp: Gobgp,
    runner: NsRunner,
}

impl GobgpReceiver {
    fn start(ns: &Netns, spec: &SpeakerSpec) -> Result<Self> {
        Ok(GobgpReceiver {
            gobgp: Gobgp::start(ns, spec)?,
            runner: NsRunner::start(ns)?,
        })
    }
}

impl Receiver for GobgpReceiver {
    fn observe(&self) -> Result<Observation> {
        let addr = SENDER_ADDR.to_string();
        let args = ["-u", "127.0.0.1", "-p", "50051", "neighbor", &addr, "-j"];
        let text = self.runner.run("gobgp", &args)?;
        parse_gobgp(&json("gobgp neighbor -j", &text)?)
    }

    fn pids(&self) -> Vec<u32> {
        pids_of(self.gobgp.daemons())
    }

    fn check_running(&self) -> Result<()> {
        check(self.gobgp.daemons())
    }
}

fn parse_gobgp(v: &Value) -> Result<Observation> {
    // API enum: 6 is Established. A neighbour that never left Idle has no session_state.
    let code = v
        .pointer("/state/session_state")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let received = v
        .get("afi_safis")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|a| a.pointer("/config/family/afi").and_then(Value::as_i64) == Some(1))
        .filter_map(|a| a.pointer("/state/received").and_then(Value::as_u64))
        .sum();
    Ok(observation(&format!("state {code}"), code == 6, received))
}

/// OpenBGPD: `bgpctl -j show neighbor ADDR`, the neighbour's received-prefix counter.
struct OpenbgpdReceiver(Openbgpd);

impl Receiver for OpenbgpdReceiver {
    fn observe(&self) -> Result<Observation> {
        let text = self
            .0
            .bgpctl(&["-j", "show", "neighbor", &SENDER_ADDR.to_string()])?;
        parse_openbgpd(&json("bgpctl -j show neighbor", &text)?)
    }

    fn pids(&self) -> Vec<u32> {
        pids_of(self.0.daemons())
    }

    fn check_running(&self) -> Result<()> {
        check(self.0.daemons())
    }
}

fn parse_openbgpd(v: &Value) -> Result<Observation> {
    let n = v
        .pointer("/neighbors/0")
        .ok_or_else(|| format!("bgpctl show neighbor: no neighbour in {v}"))?;
    let state = n.get("state").and_then(Value::as_str).unwrap_or("?");
    let received = n
        .pointer("/stats/prefixes/received")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Ok(observation(state, state == "Established", received))
}

/// Clos: a speaker process in the namespace, asked for its status over its control socket (the
/// request `clos bgp status -o json` makes). The reply is read as plain JSON, so a `clos` binary
/// built from another revision still answers.
struct ClosReceiver {
    daemon: Daemon,
    control: PathBuf,
    _dir: tempfile::TempDir,
}

impl ClosReceiver {
    fn start(ns: &Netns, how: &ClosCommand) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}clos-", clos_testkit::names::scratch_prefix()))
            .tempdir()?;
        let config = dir.path().join("bgp.json");
        let control = dir.path().join("bgp.sock");
        // JSON is YAML, so `clos bgp run -c` reads this file too.
        let cfg = speaker_config(
            RECEIVER_AS,
            RECEIVER_ADDR,
            &[format!("{RECEIVER_ADDR}:179")],
            serde_json::json!({
                "address": SENDER_ADDR,
                "remote_as": SENDER_AS,
                "local_address": RECEIVER_ADDR,
                "passive": true,
            }),
        );
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
        let clos = ClosReceiver {
            daemon,
            control,
            _dir: dir,
        };
        wait_until(Duration::from_secs(10), "clos control socket", || {
            clos.daemon
                .check_running()
                .map_err(clos_testkit::Retry::Fail)?;
            clos.observe()
                .map_err(|e| clos_testkit::Retry::Again(e.to_string()))
        })?;
        Ok(clos)
    }

    fn status(&self) -> Result<Value> {
        let mut stream = UnixStream::connect(&self.control)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(b"status\n")?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        json("clos status", &reply)
    }
}

/// A speaker config (the fields of `clos bgp run`'s file) with one peer, importing and exporting
/// everything, without graceful restart and with short timers.
pub fn speaker_config(asn: u32, router_id: Ipv4Addr, listen: &[String], mut peer: Value) -> Value {
    // eBGP imports and exports nothing without a policy (RFC 8212).
    peer["import"] = "all".into();
    peer["export"] = "all".into();
    serde_json::json!({
        "asn": asn,
        "router_id": router_id,
        "listen": listen,
        "connect_retry": 1,
        "graceful_restart": null,
        "policy": { "policies": { "all": { "default": "accept" } } },
        "peers": [peer],
    })
}

impl Receiver for ClosReceiver {
    fn observe(&self) -> Result<Observation> {
        let status = self.status()?;
        let peer = status
            .pointer("/peers/0")
            .ok_or_else(|| format!("clos status: no peer in {status}"))?;
        let state = peer.get("state").and_then(Value::as_str).unwrap_or("?");
        let received = peer.get("received").and_then(Value::as_u64).unwrap_or(0);
        Ok(observation(state, state == "Established", received))
    }

    fn pids(&self) -> Vec<u32> {
        self.daemon.pid().into_iter().collect()
    }

    fn check_running(&self) -> Result<()> {
        self.daemon.check_running().map_err(Into::into)
    }
}

/// The sink: a thread in the receiver's namespace that accepts the sender, sends an OPEN and a
/// KEEPALIVE, and counts the NLRI prefixes of each UPDATE without keeping anything.
struct Sink {
    shared: Arc<SinkShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct SinkShared {
    stop: AtomicBool,
    established: AtomicBool,
    closed: AtomicBool,
    received: AtomicU64,
}

impl Sink {
    fn start(ns: &Netns) -> Result<Self> {
        let mut session =
            SessionConfig::new(RECEIVER_AS, RECEIVER_ADDR, RemoteAs::Exact(SENDER_AS));
        session.hold_time = 0;
        session.families = vec![Family::IPV4_UNICAST];
        session.extended_next_hop = false;
        session.extended_message = false;
        session.graceful_restart = None;
        let open = Message::Open(session.open()).to_bytes(&DecodeContext::default())?;
        let shared = Arc::new(SinkShared::default());
        let (tx, rx) = mpsc::channel();
        let state = Arc::clone(&shared);
        let thread = ns.spawn_thread(move || {
            let listener = match TcpListener::bind((RECEIVER_ADDR, 179)) {
                Ok(l) => l,
                Err(err) => return drop(tx.send(Err(err))),
            };
            let _ = tx.send(Ok(()));
            if let Err(err) = sink(&listener, &open, &state) {
                eprintln!("sink: {err}");
            }
            state.closed.store(true, Ordering::Relaxed);
        })?;
        rx.recv().map_err(|_| "the sink thread died")??;
        Ok(Sink {
            shared,
            thread: Some(thread),
        })
    }
}

fn sink(listener: &TcpListener, open: &[u8], state: &SinkShared) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if state.stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    stream.write_all(open)?;
    stream.write_all(&KEEPALIVE)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut filled = 0;
    while !state.stop.load(Ordering::Relaxed) {
        let n = match read_some(&mut stream, &mut buf[filled..])? {
            Some(0) => return Ok(()),
            Some(n) => n,
            None => continue,
        };
        filled += n;
        let mut at = 0;
        let mut prefixes = 0;
        while filled - at >= 19 {
            let len = usize::from(u16::from_be_bytes([buf[at + 16], buf[at + 17]]));
            if len < 19 {
                return Err(std::io::Error::other(format!("bad message length {len}")));
            }
            if filled - at < len {
                break;
            }
            match buf[at + 18] {
                // UPDATE: count the NLRI prefixes (an IPv4-only session has no MP_REACH).
                2 => {
                    state.established.store(true, Ordering::Relaxed);
                    prefixes += count_nlri(&buf[at + 19..at + len]);
                }
                3 => return Err(std::io::Error::other("the sender sent a NOTIFICATION")),
                4 => state.established.store(true, Ordering::Relaxed),
                _ => {}
            }
            at += len;
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
        state.received.fetch_add(prefixes, Ordering::Relaxed);
    }
    Ok(())
}

/// Prefixes in the NLRI field of an UPDATE body.
fn count_nlri(body: &[u8]) -> u64 {
    let u16_at = |i: usize| {
        body.get(i..i + 2)
            .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let withdrawn = u16_at(0);
    let attrs = u16_at(2 + withdrawn);
    let mut i = 4 + withdrawn + attrs;
    let mut n = 0;
    while let Some(&bits) = body.get(i) {
        i += 1 + usize::from(bits).div_ceil(8);
        n += 1;
    }
    n
}

impl Receiver for Sink {
    fn observe(&self) -> Result<Observation> {
        let established = self.shared.established.load(Ordering::Relaxed)
            && !self.shared.closed.load(Ordering::Relaxed);
        let state = if established {
            "Established"
        } else {
            "waiting"
        };
        Ok(observation(
            state,
            established,
            self.shared.received.load(Ordering::Relaxed),
        ))
    }

    fn pids(&self) -> Vec<u32> {
        Vec::new()
    }

    fn check_running(&self) -> Result<()> {
        Ok(())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs commands from a thread inside a namespace.
struct NsRunner {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Job = (
    String,
    Vec<String>,
    mpsc::Sender<std::io::Result<std::process::Output>>,
);

impl NsRunner {
    fn start(ns: &Netns) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = ns.spawn_thread(move || {
            for (program, args, reply) in rx {
                let _ = reply.send(Command::new(program).args(args).output());
            }
        })?;
        Ok(NsRunner {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<String> {
        let (reply, rx) = mpsc::channel();
        let job = (
            program.to_owned(),
            args.iter().map(|a| (*a).to_owned()).collect(),
            reply,
        );
        self.tx
            .as_ref()
            .ok_or("runner stopped")?
            .send(job)
            .map_err(|_| "namespace runner thread died")?;
        let out = rx.recv().map_err(|_| "namespace runner thread died")??;
        if !out.status.success() {
            return Err(format!(
                "{program} {}: {}: {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for NsRunner {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The hidden `speaker` subcommand: what `clos bgp run -c FILE --control SOCK` does (a
/// two-worker runtime, the speaker and its control socket), with the config read as JSON.
pub fn serve_speaker(config: &Path, control_path: PathBuf) -> Result<()> {
    let text = std::fs::read_to_string(config)?;
    let cfg: clos_bgp::config::SpeakerConfig = serde_json::from_str(&text)?;
    let spec = cfg.validate()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let handle = Speaker::spawn(spec).await?;
        control::serve(handle, control_path).await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bird() {
        // BIRD 2.0.12 `birdc show protocols all n0`, trimmed.
        let out = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
n0         BGP        ---        up     12:00:00.000  Established
  BGP state:          Established
    Neighbor address: 192.0.2.1
  Channel ipv4
    State:          UP
    Routes:         100000 imported, 0 exported, 100000 preferred
";
        let o = parse_bird(out).unwrap();
        assert!(o.established);
        assert_eq!(o.received, 100_000);
        let down = parse_bird("  BGP state:          Active\n").unwrap();
        assert!(!down.established);
        assert_eq!(down.received, 0);
    }

    #[test]
    fn parses_frr() {
        let v: Value = serde_json::from_str(
            r#"{"routerId":"192.0.2.2","peers":{"192.0.2.1":{"state":"Established","pfxRcd":42}}}"#,
        )
        .unwrap();
        let o = parse_frr(&v).unwrap();
        assert!(o.established);
        assert_eq!(o.received, 42);
        assert!(!parse_frr(&serde_json::json!({})).unwrap().established);
    }

    #[test]
    fn counts_nlri() {
        // No withdrawals, 4 octets of attributes, then 10.0.0.0/24 and 10.0.0.0/25.
        let body = [0, 0, 0, 4, 0x40, 1, 1, 0, 24, 10, 0, 0, 25, 10, 0, 0, 0];
        assert_eq!(count_nlri(&body), 2);
        assert_eq!(count_nlri(&[0, 0, 0, 0]), 0);
        assert_eq!(count_nlri(&[]), 0);
    }

    #[test]
    fn parses_gobgp_and_openbgpd() {
        // Trimmed from GoBGP 3.10 `gobgp neighbor 192.0.2.1 -j` with an OpenBGPD 7.7 peer
        // announcing two prefixes, and from that peer's `bgpctl -j show neighbor 192.0.2.2`.
        let gobgp: Value = serde_json::from_str(
            r#"{"conf":{"neighbor_address":"192.0.2.1","peer_asn":65001},
            "state":{"neighbor_address":"192.0.2.1","session_state":6},
            "afi_safis":[{"config":{"family":{"afi":1,"safi":1},"enabled":true},
              "state":{"family":{"afi":1,"safi":1},"enabled":true,"received":2,"accepted":2}}]}"#,
        )
        .unwrap();
        let o = parse_gobgp(&gobgp).unwrap();
        assert!(o.established);
        assert_eq!(o.received, 2);
        let bgpctl: Value = serde_json::from_str(
            r#"{"neighbors":[{"remote_addr":"192.0.2.2","state":"Established",
            "stats":{"prefixes":{"sent":2,"received":0}}}]}"#,
        )
        .unwrap();
        let o = parse_openbgpd(&bgpctl).unwrap();
        assert!(o.established);
        assert_eq!(o.received, 0);
    }
}
