//! The session core on virtual time: two `Session`s wired back to back through an in-memory
//! "network", no sockets, no sleeps.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::iana::{CeaseSubcode, FsmSubcode, OpenSubcode};
use crate::session::config::{RemoteAs, SessionConfig};
use crate::wire::{Family, Notification, NotificationCode};

/// Two peers joined by simulated TCP connections. Connection `n` has the same id on both sides.
struct Net {
    a: Session,
    b: Session,
    now: Instant,
    next_conn: ConnId,
    /// Outputs seen, for assertions: (side, output).
    log: Vec<(char, Output)>,
    /// Refuse outbound connects (the peer is unreachable).
    unreachable: bool,
}

fn config(asn: u32, id: [u8; 4], remote: RemoteAs) -> SessionConfig {
    SessionConfig::new(asn, Ipv4Addr::from(id), remote)
}

impl Net {
    fn new(a: SessionConfig, b: SessionConfig) -> Self {
        Net {
            a: Session::new(a),
            b: Session::new(b),
            now: Instant::now(),
            next_conn: 1,
            log: Vec::new(),
            unreachable: false,
        }
    }

    fn side(&mut self, side: char) -> &mut Session {
        if side == 'a' {
            &mut self.a
        } else {
            &mut self.b
        }
    }

    fn input(&mut self, side: char, input: Input) {
        let now = self.now;
        self.side(side).handle(input, now);
    }

    /// Delivers outputs until both sides are quiet. Deliveries go through one FIFO, as over a
    /// network with equal latency both ways, so simultaneous events interleave as they would.
    fn pump(&mut self) {
        let mut queue: VecDeque<(char, Input)> = VecDeque::new();
        loop {
            for side in ['a', 'b'] {
                let other = if side == 'a' { 'b' } else { 'a' };
                while let Some(out) = self.side(side).poll_output() {
                    self.log.push((side, out.clone()));
                    match out {
                        Output::Connect if self.unreachable => {
                            queue.push_back((side, Input::ConnectFailed));
                        }
                        Output::Connect => {
                            let conn = self.next_conn;
                            self.next_conn += 1;
                            let out = Direction::Outbound;
                            queue.push_back((
                                side,
                                Input::Connected {
                                    conn,
                                    direction: out,
                                },
                            ));
                            let inb = Direction::Inbound;
                            queue.push_back((
                                other,
                                Input::Connected {
                                    conn,
                                    direction: inb,
                                },
                            ));
                        }
                        Output::Send { conn, data } => {
                            queue.push_back((other, Input::Received { conn, data }));
                        }
                        Output::Close { conn } => queue.push_back((other, Input::Closed { conn })),
                        _ => {}
                    }
                }
            }
            let Some((side, input)) = queue.pop_front() else {
                return;
            };
            self.input(side, input);
        }
    }

    /// Advances virtual time to `until`, firing every deadline on the way.
    fn run_until(&mut self, until: Instant) {
        loop {
            self.pump();
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .filter(|t| *t <= until)
                .min();
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            for side in ['a', 'b'] {
                if self
                    .side(side)
                    .poll_timeout()
                    .is_some_and(|d| d <= self.now)
                {
                    self.input(side, Input::Timeout);
                }
            }
        }
        self.now = until;
        self.pump();
    }

    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        self.run_until(until);
    }

    fn start(&mut self) {
        self.input('a', Input::Start);
        self.input('b', Input::Start);
        self.pump();
    }

    fn outputs(&self, side: char) -> impl Iterator<Item = &Output> {
        self.log
            .iter()
            .filter(move |(s, _)| *s == side)
            .map(|(_, o)| o)
    }

    fn downs(&self, side: char) -> Vec<DownReason> {
        self.outputs(side)
            .filter_map(|o| match o {
                Output::Down(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    fn notifications_sent(&self, side: char) -> Vec<NotificationCode> {
        self.outputs(side)
            .filter_map(|o| match o {
                Output::Send { data, .. } => notification_in(data),
                _ => None,
            })
            .collect()
    }
}

fn notification_in(frame: &Bytes) -> Option<NotificationCode> {
    (frame.get(18) == Some(&3)).then(|| {
        Notification::parse(frame.slice(19..))
            .expect("valid NOTIFICATION")
            .code
    })
}

fn pair() -> Net {
    Net::new(
        config(65001, [10, 0, 0, 1], RemoteAs::Exact(65002)),
        config(65002, [10, 0, 0, 2], RemoteAs::External),
    )
}

#[test]
fn sessions_establish_and_negotiate() {
    let mut net = pair();
    net.start();
    assert_eq!(net.a.state(), State::Established);
    assert_eq!(net.b.state(), State::Established);
    let n = net.a.negotiated().unwrap();
    assert_eq!(n.peer_as, 65002);
    assert_eq!(n.peer_id, Ipv4Addr::new(10, 0, 0, 2));
    assert_eq!(n.hold_time, 9);
    assert_eq!(n.families, vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
    assert!(n.four_octet_as && n.extended_message);
    assert!(
        n.decode_context()
            .extended_next_hop
            .contains(Family::IPV4_UNICAST)
    );
    assert!(n.peer_graceful_restart.is_some() && n.route_refresh);
    // Exactly one connection survived the simultaneous open, and both sides agree on it.
    let established: Vec<_> = net
        .log
        .iter()
        .filter(|(_, o)| matches!(o, Output::Established(_)))
        .collect();
    assert_eq!(established.len(), 2, "{:?}", net.log);
}

#[test]
fn hold_time_is_the_smaller_and_keepalives_follow_it() {
    let mut b = config(65002, [10, 0, 0, 2], RemoteAs::External);
    b.hold_time = 30;
    let mut net = Net::new(config(65001, [10, 0, 0, 1], RemoteAs::External), b);
    net.start();
    assert_eq!(net.b.negotiated().unwrap().hold_time, 9);
    // Keepalives every 3 s keep the session up for a long time.
    net.advance(Duration::from_secs(600));
    assert_eq!(net.a.state(), State::Established);
    assert!(net.downs('a').is_empty());
}

#[test]
fn silent_peer_expires_the_hold_timer() {
    let mut net = pair();
    net.start();
    // B goes silent: drop everything it would send from now on.
    let silent_from = net.log.len();
    let start = net.now;
    loop {
        // Fire only A's timers and swallow B's outputs.
        let t = net.a.poll_timeout().unwrap();
        net.now = t;
        net.input('a', Input::Timeout);
        while net
            .a
            .poll_output()
            .map(|o| net.log.push(('a', o)))
            .is_some()
        {}
        if net.a.state() != State::Established {
            break;
        }
        assert!(
            net.now - start < Duration::from_secs(10),
            "hold timer never fired"
        );
    }
    assert!(net.now - start >= Duration::from_secs(9));
    let sent = net.log[silent_from..]
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Send { data, .. } => notification_in(data),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(sent, vec![NotificationCode::HoldTimerExpired(0)]);
    let down = net.downs('a');
    assert!(
        matches!(&down[..], [DownReason::NotificationSent(_)]),
        "{down:?}"
    );
    assert!(down[0].allows_graceful_restart());
}

#[test]
fn wrong_peer_as_is_refused_with_bad_peer_as_and_backs_off() {
    let mut net = Net::new(
        config(65001, [10, 0, 0, 1], RemoteAs::Exact(65099)),
        config(65002, [10, 0, 0, 2], RemoteAs::External),
    );
    net.b.config.passive = true;
    net.b = Session::new(net.b.config.clone());
    net.start();
    assert!(
        net.notifications_sent('a')
            .contains(&NotificationCode::OpenMessage(OpenSubcode::BadPeerAs))
    );
    assert_eq!(net.a.state(), State::Idle);
    // Each failure doubles the idle hold: count reconnect attempts over 30 s.
    net.advance(Duration::from_secs(30));
    let connects = net
        .outputs('a')
        .filter(|o| matches!(o, Output::Connect))
        .count();
    // 1 + retries after 1, 2, 4, 8, 16 s (cumulative 31 s > 30 s) = at most 5.
    assert!((4..=5).contains(&connects), "{connects} connects");
    assert!(
        net.downs('a').is_empty(),
        "never Established, so never Down"
    );
}

#[test]
fn external_rejects_our_own_as() {
    let mut net = Net::new(
        config(65001, [10, 0, 0, 1], RemoteAs::External),
        config(65001, [10, 0, 0, 2], RemoteAs::External),
    );
    net.start();
    assert!(
        net.notifications_sent('a')
            .contains(&NotificationCode::OpenMessage(OpenSubcode::BadPeerAs))
    );
    assert_ne!(net.a.state(), State::Established);
}

#[test]
fn garbage_gets_a_header_error() {
    let mut net = pair();
    net.start();
    let conn = net.a.established_conn().unwrap();
    net.input(
        'a',
        Input::Received {
            conn,
            data: Bytes::from_static(&[0u8; 19]),
        },
    );
    net.pump();
    let sent = net.notifications_sent('a');
    assert!(
        sent.iter()
            .any(|c| matches!(c, NotificationCode::MessageHeader(_))),
        "{sent:?}"
    );
    assert!(matches!(
        &net.downs('a')[..],
        [DownReason::NotificationSent(_)]
    ));
    assert!(matches!(
        &net.downs('b')[..],
        [DownReason::NotificationReceived(_)]
    ));
}

#[test]
fn message_split_across_reads_is_reassembled() {
    let mut net = pair();
    net.b.config.passive = true;
    net.b = Session::new(net.b.config.clone());
    net.input('a', Input::Start);
    net.input('b', Input::Start);
    // Deliver A's OPEN to B one byte at a time.
    let Some(Output::Connect) = net.a.poll_output() else {
        panic!("expected Connect")
    };
    net.input(
        'a',
        Input::Connected {
            conn: 7,
            direction: Direction::Outbound,
        },
    );
    net.input(
        'b',
        Input::Connected {
            conn: 7,
            direction: Direction::Inbound,
        },
    );
    let mut open = None;
    while let Some(o) = net.a.poll_output() {
        if let Output::Send { data, .. } = o {
            open = Some(data);
        }
    }
    for byte in open.unwrap() {
        net.input(
            'b',
            Input::Received {
                conn: 7,
                data: Bytes::copy_from_slice(&[byte]),
            },
        );
    }
    net.pump();
    assert_eq!(net.b.state(), State::Established);
    assert_eq!(net.a.state(), State::Established);
}

#[test]
fn update_before_established_is_an_fsm_error() {
    let mut net = pair();
    net.input('b', Input::Start);
    net.input(
        'b',
        Input::Connected {
            conn: 9,
            direction: Direction::Inbound,
        },
    );
    let empty_update = [0xffu8; 16]
        .iter()
        .copied()
        .chain([0, 23, 2, 0, 0, 0, 0])
        .collect::<Vec<u8>>();
    net.input(
        'b',
        Input::Received {
            conn: 9,
            data: Bytes::from(empty_update),
        },
    );
    let mut sent = Vec::new();
    while let Some(o) = net.b.poll_output() {
        if let Output::Send { data, .. } = &o {
            sent.extend(notification_in(data));
        }
    }
    assert_eq!(
        sent,
        vec![NotificationCode::FiniteStateMachine(
            FsmSubcode::UnexpectedMessageInOpenSent
        )]
    );
}

#[test]
fn transmitted_updates_reach_the_peer() {
    let mut net = pair();
    net.start();
    let ctx = net.a.negotiated().unwrap().decode_context();
    let eor = Message::Update(Box::default()).to_bytes(&ctx).unwrap();
    net.input('a', Input::Transmit(eor));
    net.pump();
    let updates: Vec<_> = net
        .outputs('b')
        .filter(|o| matches!(o, Output::Update(u) if matches!(**u, UpdateOutcome::Ok(_))))
        .collect();
    assert_eq!(updates.len(), 1, "{:?}", net.log);
}

#[test]
fn stop_sends_administrative_shutdown_with_the_message() {
    let mut net = pair();
    net.start();
    net.input(
        'a',
        Input::Stop {
            message: "maintenance".into(),
        },
    );
    net.pump();
    assert_eq!(net.a.state(), State::Idle);
    let down = net.downs('b');
    let [DownReason::NotificationReceived(n)] = &down[..] else {
        panic!("{down:?}")
    };
    assert_eq!(
        n.code,
        NotificationCode::Cease(CeaseSubcode::AdministrativeShutdown)
    );
    assert_eq!(n.shutdown_communication(), Some("maintenance"));
    assert!(!down[0].allows_graceful_restart());
    // A stays down: no reconnect however long we wait.
    net.advance(Duration::from_secs(120));
    assert_eq!(net.a.state(), State::Idle);
    assert_ne!(net.b.state(), State::Established);
}

#[test]
fn peer_reconnecting_while_established_restarted_gracefully() {
    let mut net = pair();
    net.start();
    // B restarts without closing the old connection (kill -9 with the FIN lost): a fresh B
    // connects to A.
    let b_config = net.b.config.clone();
    net.b = Session::new(b_config);
    net.input('b', Input::Start);
    net.pump();
    let down = net.downs('a');
    assert_eq!(down, vec![DownReason::PeerRestarted]);
    assert!(down[0].allows_graceful_restart());
    assert_eq!(net.a.state(), State::Established);
    assert_eq!(net.b.state(), State::Established);
}

#[test]
fn passive_never_connects_and_unreachable_peer_is_retried() {
    let mut b = config(65002, [10, 0, 0, 2], RemoteAs::External);
    b.passive = true;
    let mut net = Net::new(config(65001, [10, 0, 0, 1], RemoteAs::External), b);
    net.unreachable = true;
    net.start();
    assert_eq!(net.a.state(), State::Active);
    net.advance(Duration::from_secs(21));
    let a_connects = net
        .outputs('a')
        .filter(|o| matches!(o, Output::Connect))
        .count();
    let b_connects = net
        .outputs('b')
        .filter(|o| matches!(o, Output::Connect))
        .count();
    assert_eq!(b_connects, 0);
    assert_eq!(a_connects, 5, "at 0, 5, 10, 15 and 20 s");
    net.unreachable = false;
    net.advance(Duration::from_secs(5));
    assert_eq!(net.a.state(), State::Established);
}

#[test]
fn restart_state_bit_is_sent_once() {
    let mut a = config(65001, [10, 0, 0, 1], RemoteAs::External);
    if let Some(gr) = &mut a.graceful_restart {
        gr.restarting = true;
    }
    let mut net = Net::new(a, config(65002, [10, 0, 0, 2], RemoteAs::External));
    net.start();
    let gr = net
        .b
        .negotiated()
        .unwrap()
        .peer_graceful_restart
        .clone()
        .unwrap();
    assert!(
        gr.restart_state(),
        "first OPEN after a restart carries the R bit"
    );
    assert!(gr.families.iter().all(|f| f.forwarding_state()));
    // The session drops and comes back: the new OPEN no longer claims a restart.
    net.input(
        'b',
        Input::Reset {
            notification: Notification::new(NotificationCode::Cease(
                CeaseSubcode::AdministrativeReset,
            )),
            idle_hold: None,
        },
    );
    net.advance(Duration::from_secs(10));
    assert_eq!(net.a.state(), State::Established);
    let gr = net
        .b
        .negotiated()
        .unwrap()
        .peer_graceful_restart
        .clone()
        .unwrap();
    assert!(!gr.restart_state());
}

/// Both sides lose the session at slightly different times and back off on their own clocks:
/// the first to retry must be let in by the one still waiting, or each would refuse the
/// other's attempts while its own backoff doubles (seen between the agent and `clos bgp`).
#[test]
fn a_backing_off_peer_accepts_the_neighbours_connection() {
    let mut net = Net::new(
        config(65001, [10, 0, 0, 1], RemoteAs::External),
        config(65002, [10, 0, 0, 2], RemoteAs::External),
    );
    net.start();
    net.advance(Duration::from_secs(1));
    assert_eq!(net.a.state(), State::Established);
    let reset = || Input::Reset {
        notification: Notification::new(NotificationCode::Cease(CeaseSubcode::AdministrativeReset)),
        idle_hold: None,
    };
    // Flap twice so that both backoffs have grown and differ.
    for _ in 0..2 {
        net.input('a', reset());
        net.advance(Duration::from_millis(700));
        net.input('b', reset());
        net.pump();
        net.advance(Duration::from_secs(3));
        assert_eq!(net.a.state(), State::Established, "{:?}", net.b.state());
        assert_eq!(net.b.state(), State::Established);
    }
    let rejected = NotificationCode::Cease(CeaseSubcode::ConnectionRejected);
    assert!(
        !net.notifications_sent('a').contains(&rejected)
            && !net.notifications_sent('b').contains(&rejected),
        "a connection was refused"
    );
}

/// A hold-down (after maximum prefixes) refuses the neighbour's connections until it ends.
#[test]
fn a_held_down_peer_refuses_the_neighbour_until_the_hold_ends() {
    let mut net = Net::new(
        config(65001, [10, 0, 0, 1], RemoteAs::External),
        config(65002, [10, 0, 0, 2], RemoteAs::External),
    );
    net.start();
    net.advance(Duration::from_secs(1));
    net.input(
        'b',
        Input::Reset {
            notification: Notification::new(NotificationCode::Cease(
                CeaseSubcode::MaximumPrefixesReached,
            )),
            idle_hold: Some(Duration::from_secs(30)),
        },
    );
    net.advance(Duration::from_secs(20));
    assert_ne!(net.a.state(), State::Established);
    assert!(
        net.notifications_sent('b')
            .contains(&NotificationCode::Cease(CeaseSubcode::ConnectionRejected))
    );
    net.advance(Duration::from_secs(15));
    assert_eq!(net.a.state(), State::Established);
}
