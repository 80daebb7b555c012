//! BFD against real peers in network namespaces: FRR's bfdd and BIRD's BFD protocol, over
//! IPv4, IPv6 and IPv6 link-local, at 100 ms x 3. Each session comes up on both sides, goes
//! down when nftables in the peer's namespace silently drops the BFD packets (the link stays
//! up), and comes back when the rule goes.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use clos_bfd::{BfdHandle, Config, Diag, SessionSpec, SessionStatus, State};
use clos_testkit::peers::{Bird, Frr};
use clos_testkit::{Diagnose, Link, Netns, wait_until_with};
use tokio::sync::watch;

const TIMEOUT: Duration = Duration::from_secs(30);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Our namespace and the peer's, joined by a veth with IPv4, IPv6 and fixed link-local
/// addresses on both ends (`::1` ours, `::2` the peer's).
fn pair() -> (Netns, Netns, Link) {
    let ours = Netns::new().unwrap();
    let peer = Netns::new().unwrap();
    let link = ours.link_to(&peer).unwrap();
    for (ns, dev, n) in [(&ours, &link.local, 1), (&peer, &link.remote, 2)] {
        ns.add_addr(dev, &format!("10.0.0.{n}/30")).unwrap();
        ns.add_addr(dev, &format!("2001:db8::{n}/64")).unwrap();
        ns.add_addr(dev, &format!("fe80::{n}/64")).unwrap();
    }
    (ours, peer, link)
}

/// The three sessions towards the peer at `::2`/`.2`, from our end `dev` of the link.
fn specs(dev: &str, ours: u8, theirs: u8) -> Vec<SessionSpec> {
    let config = Config::new(Duration::from_millis(100), 3);
    [
        (format!("10.0.0.{theirs}"), format!("10.0.0.{ours}"), None),
        (
            format!("2001:db8::{theirs}"),
            format!("2001:db8::{ours}"),
            None,
        ),
        (
            format!("fe80::{theirs}"),
            format!("fe80::{ours}"),
            Some(dev.to_owned()),
        ),
    ]
    .into_iter()
    .map(|(peer, local, interface)| SessionSpec {
        peer: ip(&peer),
        local: Some(ip(&local)),
        interface,
        config,
    })
    .collect()
}

/// The driver running in `ns`, with its runtime (whose threads were created in `ns`).
struct Clos {
    _rt: tokio::runtime::Runtime,
    handle: BfdHandle,
    sessions: Vec<watch::Receiver<SessionStatus>>,
}

impl Clos {
    fn start(ns: &Netns, specs: Vec<SessionSpec>) -> Self {
        ns.spawn_thread(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let guard = rt.enter();
            let handle = BfdHandle::spawn().unwrap();
            let sessions = specs
                .into_iter()
                .map(|s| handle.add_session(s).unwrap())
                .collect();
            drop(guard);
            Clos {
                _rt: rt,
                handle,
                sessions,
            }
        })
        .unwrap()
        .join()
        .unwrap()
    }

    fn statuses(&self) -> Vec<SessionStatus> {
        self.sessions.iter().map(|s| s.borrow().clone()).collect()
    }
}

impl Diagnose for Clos {
    fn diagnose(&self) -> String {
        format!("--- clos sessions ---\n{:#?}", self.statuses())
    }
}

/// Drops every BFD control packet in and out of `ns`, silently.
fn drop_bfd(ns: &Netns) {
    ns.exec(
        "nft",
        &["add table inet clos_test; \
           add chain inet clos_test in { type filter hook input priority 0; }; \
           add chain inet clos_test out { type filter hook output priority 0; }; \
           add rule inet clos_test in udp dport 3784 drop; \
           add rule inet clos_test out udp dport 3784 drop"],
    )
    .unwrap();
}

fn heal(ns: &Netns) {
    ns.exec("nft", &["delete table inet clos_test"]).unwrap();
}

/// A peer daemon's view: session state by peer address.
trait BfdPeer: Diagnose {
    fn states(&self) -> Result<BTreeMap<IpAddr, String>, String>;
}

struct FrrPeer(Frr);

impl Diagnose for FrrPeer {
    fn diagnose(&self) -> String {
        let peers = self
            .0
            .vtysh("show bfd peers")
            .unwrap_or_else(|e| e.to_string());
        format!(
            "--- vtysh show bfd peers ---\n{peers}\n{}",
            self.0.diagnose()
        )
    }
}

impl BfdPeer for FrrPeer {
    fn states(&self) -> Result<BTreeMap<IpAddr, String>, String> {
        let out = self
            .0
            .vtysh("show bfd peers json")
            .map_err(|e| e.to_string())?;
        let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let peer = p.get("peer")?.as_str()?.parse().ok()?;
                Some((peer, p.get("status")?.as_str()?.to_owned()))
            })
            .collect())
    }
}

struct BirdPeer(Bird);

impl Diagnose for BirdPeer {
    fn diagnose(&self) -> String {
        self.0.diagnose()
    }
}

impl BfdPeer for BirdPeer {
    /// `show bfd sessions`: `IP address  Interface  State  Since  Interval  Timeout` rows.
    fn states(&self) -> Result<BTreeMap<IpAddr, String>, String> {
        let out = self
            .0
            .birdc("show bfd sessions")
            .map_err(|e| e.to_string())?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let mut cols = l.split_whitespace();
                let peer = cols.next()?.parse().ok()?;
                let state = cols.nth(1)?;
                Some((peer, state.to_ascii_lowercase()))
            })
            .collect())
    }
}

fn start_frr(ns: &Netns, dev: &str) -> FrrPeer {
    let config = format!(
        "bfd\n\
         \x20profile fast\n  transmit-interval 100\n  receive-interval 100\n  detect-multiplier 3\n\
         \x20peer 10.0.0.1 local-address 10.0.0.2\n  profile fast\n\
         \x20peer 2001:db8::1 local-address 2001:db8::2\n  profile fast\n\
         \x20peer fe80::1 interface {dev} local-address fe80::2\n  profile fast\n"
    );
    FrrPeer(Frr::start_config(ns, &config).unwrap())
}

fn start_bird(ns: &Netns, dev: &str) -> BirdPeer {
    let config = format!(
        "router id 10.0.0.2;\nlog stderr all;\nprotocol device {{}}\n\
         protocol bfd {{\n\
         \x20 interface \"*\" {{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }};\n\
         \x20 neighbor 10.0.0.1 local 10.0.0.2;\n\
         \x20 neighbor 2001:db8::1 local 2001:db8::2;\n\
         \x20 neighbor fe80::1 dev \"{dev}\" local fe80::2;\n\
         }}\n"
    );
    BirdPeer(Bird::start_config(ns, &config).unwrap())
}

/// Up on both sides, down on ours by detection timeout when the peer's namespace drops BFD,
/// up again once it stops.
fn up_down_up(peer_ns: &Netns, peer: &dyn BfdPeer, clos: &Clos) {
    let ours = ["10.0.0.1", "2001:db8::1", "fe80::1"].map(ip);
    let context: [&dyn Diagnose; 2] = [peer, clos];
    let all_up = || {
        let st = clos.statuses();
        let theirs = peer.states()?;
        let up = st.iter().all(|s| s.state == State::Up)
            && ours
                .iter()
                .all(|a| theirs.get(a).is_some_and(|s| s == "up"));
        if up {
            Ok(st)
        } else {
            Err(format!("ours {st:?}; theirs {theirs:?}").into())
        }
    };
    wait_until_with(TIMEOUT, "BFD sessions Up on both sides", &context, all_up).unwrap();
    // Up comes first; the fast timers take effect when the poll sequences that follow end
    // (RFC 5880 6.8.3), a round trip or so later.
    let st = wait_until_with(
        TIMEOUT,
        "the poll sequences to bring the 100 ms timers",
        &context,
        || {
            let st = all_up()?;
            if st
                .iter()
                .all(|s| s.tx_interval == Some(Duration::from_millis(100)))
            {
                Ok(st)
            } else {
                Err(format!("{st:?}").into())
            }
        },
    )
    .unwrap();
    for s in &st {
        // 100 ms x 3 on both sides, after the poll sequences.
        assert_eq!(s.tx_interval, Some(Duration::from_millis(100)), "{s:?}");
        assert_eq!(s.detection_time, Some(Duration::from_millis(300)), "{s:?}");
        assert_ne!(s.remote_discr, 0, "{s:?}");
    }
    drop_bfd(peer_ns);
    wait_until_with(TIMEOUT, "our sessions to time out", &context, || {
        let st = clos.statuses();
        if st.iter().all(|s| {
            s.state == State::Down
                && s.local_diag == Diag::ControlDetectionTimeExpired
                && s.downs == 1
                && s.failures == 1
        }) {
            Ok(())
        } else {
            Err(format!("{st:?}").into())
        }
    })
    .unwrap();
    heal(peer_ns);
    let st = wait_until_with(TIMEOUT, "BFD sessions Up again", &context, all_up).unwrap();
    assert!(st.iter().all(|s| s.downs == 1), "{st:?}");
}

#[test]
fn frr_sessions_up_and_down_on_silent_drop() {
    let (ours, peer_ns, link) = pair();
    let frr = start_frr(&peer_ns, &link.remote);
    let clos = Clos::start(&ours, specs(&link.local, 1, 2));
    up_down_up(&peer_ns, &frr, &clos);
}

#[test]
fn bird_sessions_up_and_down_on_silent_drop() {
    let (ours, peer_ns, link) = pair();
    let bird = start_bird(&peer_ns, &link.remote);
    let clos = Clos::start(&ours, specs(&link.local, 1, 2));
    up_down_up(&peer_ns, &bird, &clos);
}

/// Two drivers: removing a session tells the other side AdminDown, which it reports as the
/// neighbour signalling down, not as a failure.
#[test]
fn removed_session_signals_admin_down() {
    let (left_ns, right_ns, link) = pair();
    let left = Clos::start(&left_ns, specs(&link.local, 1, 2));
    let right = Clos::start(&right_ns, specs(&link.remote, 2, 1));
    let context: [&dyn Diagnose; 2] = [&left, &right];
    wait_until_with(TIMEOUT, "sessions Up", &context, || {
        let st = [left.statuses(), right.statuses()].concat();
        if st.iter().all(|s| s.state == State::Up) {
            Ok(())
        } else {
            Err(format!("{st:?}").into())
        }
    })
    .unwrap();
    left.handle.remove_session(ip("10.0.0.2"), None).unwrap();
    assert!(left.handle.remove_session(ip("10.0.0.2"), None).is_err());
    wait_until_with(TIMEOUT, "the right side to see AdminDown", &context, || {
        let s = right.sessions[0].borrow().clone();
        if s.state == State::Down
            && s.remote_state == State::AdminDown
            && s.local_diag == Diag::NeighborSignaledSessionDown
            && s.downs == 1
            && s.failures == 0
        {
            Ok(())
        } else {
            Err(format!("{s:?}").into())
        }
    })
    .unwrap();
    // The other two sessions are untouched; the removed one's watchers see it end.
    assert!(
        right.sessions[1..]
            .iter()
            .all(|s| s.borrow().state == State::Up)
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Its last status is AdminDown, then the channel closes (the sender is gone, so this
    // loop ends).
    let mut removed = left.sessions[0].clone();
    while rt.block_on(removed.changed()).is_ok() {}
    assert_eq!(removed.borrow().state, State::AdminDown);
    let all = rt.block_on(left.handle.status()).unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    // A duplicate is refused at once; outside a runtime, adding is an error, not a panic.
    let spec = specs(&link.local, 1, 2).remove(1);
    let outside = left.handle.add_session(spec.clone());
    assert!(
        matches!(outside, Err(clos_bfd::Error::NoRuntime)),
        "{outside:?}"
    );
    let _guard = rt.enter();
    let dup = left.handle.add_session(spec);
    assert!(
        matches!(dup, Err(clos_bfd::Error::Duplicate { .. })),
        "{dup:?}"
    );
}

/// GTSM (RFC 5881 section 5): a packet that arrives with a TTL below 255 is dropped, one with
/// 255 is used.
#[test]
fn packets_below_ttl_255_are_dropped() {
    let (ours, peer_ns, link) = pair();
    let clos = Clos::start(&ours, specs(&link.local, 1, 2)[..1].to_vec());
    let down = |my_discr: u32| {
        clos_bfd::ControlPacket {
            diag: Diag::None,
            state: State::Down,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand: false,
            multipoint: false,
            detect_mult: 3,
            my_discr,
            your_discr: 0,
            desired_min_tx: 1_000_000,
            required_min_rx: 1_000_000,
            required_min_echo_rx: 0,
            auth: None,
        }
        .to_bytes()
    };
    peer_ns
        .spawn_thread(move || {
            let s = std::net::UdpSocket::bind("10.0.0.2:49152").unwrap();
            s.set_ttl(254).unwrap();
            s.send_to(&down(0xbad), "10.0.0.1:3784").unwrap();
            s.set_ttl(255).unwrap();
            s.send_to(&down(0x600d), "10.0.0.1:3784").unwrap();
        })
        .unwrap()
        .join()
        .unwrap();
    // Both went the same way in order: once the second is used, the first was dropped.
    let s = wait_until_with(TIMEOUT, "the TTL 255 packet", &[&clos], || {
        let s = clos.sessions[0].borrow().clone();
        if s.remote_discr == 0x600d {
            Ok(s)
        } else {
            Err(format!("{s:?}").into())
        }
    })
    .unwrap();
    assert_eq!(s.received, 1, "{s:?}");
    assert_eq!(s.state, State::Init, "{s:?}");
}
