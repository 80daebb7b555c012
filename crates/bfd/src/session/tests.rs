//! The core on virtual time: two sessions wired back to back, and a property test against
//! the reception table of RFC 5880 section 6.8.6.

use super::*;
use proptest::prelude::*;

const MS: Duration = Duration::from_millis(1);

fn discr(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap()
}

fn drain(s: &mut Session) -> Vec<Output> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

fn sent(outputs: &[Output]) -> Vec<ControlPacket> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(p) => Some(p.clone()),
            Output::StateChanged { .. } => None,
        })
        .collect()
}

/// Two sessions joined by a lossless, instant link that `cut` can break one way.
struct Pair {
    a: Session,
    b: Session,
    now: Instant,
    /// Drop what B sends to A.
    cut_b_to_a: bool,
    /// Every packet A sent, with its time.
    a_sent: Vec<(Instant, ControlPacket)>,
    changes_a: Vec<(State, State, Diag)>,
}

impl Pair {
    fn new(config: Config) -> Self {
        let now = Instant::now();
        Pair {
            a: Session::new(config, discr(0x11), 1, now),
            b: Session::new(config, discr(0x22), 2, now),
            now,
            cut_b_to_a: false,
            a_sent: Vec::new(),
            changes_a: Vec::new(),
        }
    }

    /// Delivers outputs until both are quiet.
    fn settle(&mut self) {
        loop {
            let from_a = drain(&mut self.a);
            let from_b = drain(&mut self.b);
            if from_a.is_empty() && from_b.is_empty() {
                return;
            }
            for o in &from_a {
                if let Output::StateChanged { from, to, diag } = o {
                    self.changes_a.push((*from, *to, *diag));
                }
            }
            for p in sent(&from_a) {
                self.a_sent.push((self.now, p.clone()));
                self.b.handle(Input::Received(p), self.now);
            }
            if !self.cut_b_to_a {
                for p in sent(&from_b) {
                    self.a.handle(Input::Received(p), self.now);
                }
            }
        }
    }

    /// Runs both until `until`, firing each deadline when it is due.
    fn run(&mut self, until: Instant) {
        self.settle();
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    for s in [&mut self.a, &mut self.b] {
                        if s.poll_timeout().is_some_and(|d| d <= self.now) {
                            s.handle(Input::Timeout, self.now);
                        }
                    }
                    self.settle();
                }
                _ => break,
            }
        }
        self.now = until;
    }
}

#[test]
fn three_way_handshake_then_fast_timers() {
    let mut pair = Pair::new(Config::new(100 * MS, 3));
    let start = pair.now;
    pair.run(start + 5 * SLOW_TX);
    assert_eq!(pair.a.state(), State::Up);
    assert_eq!(pair.b.state(), State::Up);
    assert_eq!(
        pair.changes_a
            .iter()
            .map(|(f, t, _)| (*f, *t))
            .collect::<Vec<_>>(),
        [(State::Down, State::Init), (State::Init, State::Up)]
    );
    // Until Up, A announced the slow rate; the poll sequences are over.
    assert!(
        pair.a_sent
            .iter()
            .filter(|(_, p)| p.state != State::Up)
            .all(|(_, p)| p.desired_min_tx >= 1_000_000)
    );
    assert!(!pair.a.polling() && !pair.b.polling());
    assert_eq!(pair.a.tx_interval(), Some(100 * MS));
    assert_eq!(pair.a.detection_time(), Some(300 * MS));
    // Once settled, periodic packets are 75-100 ms apart.
    let settled = pair.now;
    pair.run(settled + 3 * SLOW_TX);
    let times: Vec<Instant> = pair
        .a_sent
        .iter()
        .filter(|(t, _)| *t > settled)
        .map(|(t, _)| *t)
        .collect();
    assert!(times.len() > 25, "{}", times.len());
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(gap >= 75 * MS && gap <= 100 * MS, "{gap:?}");
    }
}

#[test]
fn detection_time_expiry() {
    let mut pair = Pair::new(Config::new(100 * MS, 3));
    let start = pair.now;
    pair.run(start + 5 * SLOW_TX);
    assert_eq!(pair.a.state(), State::Up);
    pair.cut_b_to_a = true;
    let cut = pair.now;
    // B's last packet came at most one interval (100 ms) before the cut.
    pair.run(cut + 199 * MS);
    assert_eq!(pair.a.state(), State::Up, "not before the detection time");
    pair.run(cut + 300 * MS);
    assert_eq!(pair.a.state(), State::Down);
    assert_eq!(pair.a.local_diag(), Diag::ControlDetectionTimeExpired);
    assert_eq!(pair.a.remote_discr(), 0);
    assert_eq!(
        pair.changes_a.last(),
        Some(&(State::Up, State::Down, Diag::ControlDetectionTimeExpired))
    );
    // A tells B, which goes down too ("neighbor signaled session down"), and A is back to
    // one packet a second.
    pair.run(cut + 400 * MS);
    assert_eq!(pair.b.state(), State::Down);
    assert_eq!(pair.b.local_diag(), Diag::NeighborSignaledSessionDown);
    assert_eq!(pair.a.tx_interval(), Some(SLOW_TX));
    // Healed, the session comes back up.
    pair.cut_b_to_a = false;
    let healed = pair.now;
    pair.run(healed + 5 * SLOW_TX);
    assert_eq!((pair.a.state(), pair.b.state()), (State::Up, State::Up));
    assert_eq!(pair.a.local_diag(), Diag::None);
}

#[test]
fn slower_transmit_waits_for_the_final() {
    let mut pair = Pair::new(Config::new(100 * MS, 3));
    let start = pair.now;
    pair.run(start + 5 * SLOW_TX);
    // Slow A down: until B answers the Poll, A keeps its old rate.
    pair.cut_b_to_a = true;
    pair.a
        .handle(Input::Configure(Config::new(500 * MS, 3)), pair.now);
    pair.settle();
    assert!(pair.a.polling());
    assert_eq!(pair.a.tx_interval(), Some(100 * MS));
    let (_, last) = pair.a_sent.last().unwrap();
    assert!(last.poll && last.desired_min_tx == 500_000);
    // B's Final ends the sequence.
    pair.cut_b_to_a = false;
    let t = pair.now;
    pair.run(t + 50 * MS);
    pair.a.handle(Input::Timeout, pair.now + 100 * MS);
    pair.now += 100 * MS;
    pair.settle();
    assert!(!pair.a.polling());
    assert_eq!(pair.a.tx_interval(), Some(500 * MS));
    // B's detection time for A follows: 3 x 500 ms.
    assert_eq!(pair.b.detection_time(), Some(1500 * MS));
}

#[test]
fn poll_is_answered_with_final_at_once() {
    let now = Instant::now();
    let mut s = Session::new(Config::default(), discr(7), 3, now);
    drain(&mut s);
    let mut p = ControlPacket {
        diag: Diag::None,
        state: State::Down,
        poll: true,
        final_: false,
        control_plane_independent: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        my_discr: 9,
        your_discr: 0,
        desired_min_tx: 1_000_000,
        required_min_rx: 300_000,
        required_min_echo_rx: 0,
        auth: None,
    };
    s.handle(Input::Received(p.clone()), now);
    let out = sent(&drain(&mut s));
    let finals: Vec<_> = out.iter().filter(|p| p.final_).collect();
    assert_eq!(finals.len(), 1, "{out:?}");
    assert!(!finals[0].poll);
    assert_eq!(finals[0].state, State::Init);
    assert_eq!(finals[0].your_discr, 9);
    // A packet for another session's discriminator is ignored.
    p.your_discr = 8;
    p.state = State::Init;
    s.handle(Input::Received(p), now);
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.state(), State::Init);
}

#[test]
fn multiplier_one_jitters_between_75_and_90_percent() {
    let now = Instant::now();
    let mut s = Session::new(Config::new(100 * MS, 1), discr(1), 42, now);
    for _ in 0..2000 {
        let j = s.jittered(100 * MS);
        assert!(j >= 75 * MS && j <= 90 * MS, "{j:?}");
    }
    let mut s = Session::new(Config::new(100 * MS, 3), discr(1), 42, now);
    let all: Vec<Duration> = (0..2000).map(|_| s.jittered(100 * MS)).collect();
    assert!(all.iter().all(|j| *j >= 75 * MS && *j <= 100 * MS));
    assert!(all.iter().any(|j| *j > 95 * MS) && all.iter().any(|j| *j < 80 * MS));
}

#[test]
fn admin_down_and_up() {
    let mut pair = Pair::new(Config::new(100 * MS, 3));
    let start = pair.now;
    pair.run(start + 5 * SLOW_TX);
    pair.a.handle(Input::AdminDown, pair.now);
    let t = pair.now;
    pair.run(t + 10 * MS);
    assert_eq!(pair.a.state(), State::AdminDown);
    assert_eq!(pair.a.local_diag(), Diag::AdministrativelyDown);
    assert_eq!(pair.b.state(), State::Down);
    assert_eq!(pair.b.local_diag(), Diag::NeighborSignaledSessionDown);
    // A stays AdminDown whatever it receives, and B cannot come up with it.
    pair.run(t + 5 * SLOW_TX);
    assert_eq!(
        (pair.a.state(), pair.b.state()),
        (State::AdminDown, State::Down)
    );
    pair.a.handle(Input::AdminUp, pair.now);
    let t = pair.now;
    pair.run(t + 5 * SLOW_TX);
    assert_eq!((pair.a.state(), pair.b.state()), (State::Up, State::Up));
}

#[test]
fn config_validation_names_the_field() {
    assert!(Config::default().validate().is_ok());
    let c = Config {
        detect_mult: 0,
        ..Config::default()
    };
    assert!(matches!(
        c.validate(),
        Err(Error::Config {
            field: "detect_mult",
            ..
        })
    ));
    let c = Config {
        required_min_rx: Duration::from_micros(10),
        ..Config::default()
    };
    assert!(matches!(
        c.validate(),
        Err(Error::Config {
            field: "required_min_rx",
            ..
        })
    ));
}

/// The table of RFC 5880 section 6.8.6 (after the AdminDown check): the state after receiving
/// a packet in state `remote` while in state `local`.
fn rfc_table(local: State, remote: State) -> State {
    use State::*;
    match (local, remote) {
        (AdminDown, _) => AdminDown,
        (_, AdminDown) => Down,
        (Down, Down) => Init,
        (Down, Init) => Up,
        (Down, Up) => Down,
        (Init, Down) => Init,
        (Init, Init | Up) => Up,
        (Up, Down) => Down,
        (Up, Init | Up) => Up,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Receive {
        state: State,
        poll: bool,
        final_: bool,
        /// Address us by our discriminator (else 0, or another session's when `wrong`).
        addressed: bool,
        wrong: bool,
        detect_mult: u8,
        tx_ms: u32,
        rx_ms: u32,
    },
    /// Let this much virtual time pass, firing deadlines as a driver would.
    Wait(u64),
    AdminDown,
    AdminUp,
    Configure(u32, u8),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            (0u8..4, any::<bool>(), any::<bool>(), any::<bool>()),
            (prop::bool::weighted(0.05), 0u8..5),
            (prop_oneof![Just(0u32), 10u32..2000], 0u32..2000),
        )
            .prop_map(|((s, poll, final_, addressed), (wrong, mult), (tx, rx))| Op::Receive {
                state: State::from_bits(s),
                poll,
                final_,
                addressed,
                wrong,
                detect_mult: mult,
                tx_ms: tx,
                rx_ms: rx,
            }),
        3 => (1u64..4000).prop_map(Op::Wait),
        1 => Just(Op::AdminDown),
        1 => Just(Op::AdminUp),
        1 => (10u32..2000, 1u8..5).prop_map(|(ms, m)| Op::Configure(ms, m)),
    ]
}

/// Checks everything `s` sent and reports its state changes.
fn check_outputs(
    s: &mut Session,
    remote_discr: u32,
) -> Result<Vec<(State, State, Diag)>, TestCaseError> {
    let mut changes = Vec::new();
    let mut state = s.state();
    for o in drain(s) {
        match o {
            Output::StateChanged { from, to, diag } => {
                prop_assert_ne!(from, to);
                changes.push((from, to, diag));
            }
            Output::Send(p) => {
                // Whatever we send, a peer accepts (as we would), with our current view.
                prop_assert!(p.validate().is_ok(), "{p:?}");
                prop_assert!(!(p.poll && p.final_), "P and F together: {p:?}");
                prop_assert_eq!(p.my_discr, 0x11);
                prop_assert_eq!(p.your_discr, remote_discr);
                if p.state != State::Up {
                    prop_assert!(p.desired_min_tx >= 1_000_000, "fast before Up: {p:?}");
                }
                if let Some((_, to, _)) = changes.last() {
                    state = *to;
                }
                prop_assert_eq!(p.state, state);
            }
        }
    }
    Ok(changes)
}

proptest! {
    #[test]
    fn follows_the_reception_table(ops in prop::collection::vec(arb_op(), 1..80)) {
        let mut now = Instant::now();
        let mut s = Session::new(Config::new(100 * MS, 3), discr(0x11), 5, now);
        // The model: the peer's discriminator as we should know it, and when the detection
        // time runs out.
        let mut remote_discr = 0u32;
        let mut deadline: Option<Instant> = None;
        for op in ops {
            let before = s.state();
            match op {
                Op::Receive { state, poll, final_, addressed, wrong, detect_mult, tx_ms, rx_ms } => {
                    let your = if wrong { 0x99 } else if addressed { 0x11 } else { 0 };
                    let p = ControlPacket {
                        diag: Diag::None,
                        state,
                        poll,
                        final_,
                        control_plane_independent: false,
                        demand: false,
                        multipoint: false,
                        detect_mult,
                        my_discr: 0x22,
                        your_discr: your,
                        desired_min_tx: tx_ms * 1000,
                        required_min_rx: rx_ms * 1000,
                        required_min_echo_rx: 0,
                        auth: None,
                    };
                    let valid = p.validate().is_ok() && !wrong;
                    s.handle(Input::Received(p), now);
                    if valid {
                        remote_discr = 0x22;
                    }
                    let outputs: Vec<Output> = std::iter::from_fn(|| s.poll_output()).collect();
                    let finals = sent(&outputs).iter().filter(|p| p.final_).count();
                    // Put them back for the common checks.
                    for o in outputs {
                        s.outputs.push_back(o);
                    }
                    let changes = check_outputs(&mut s, remote_discr)?;
                    if !valid {
                        prop_assert_eq!(s.state(), before);
                        prop_assert!(changes.is_empty());
                        prop_assert_eq!(finals, 0);
                        continue;
                    }
                    let want = rfc_table(before, state);
                    prop_assert_eq!(s.state(), want, "{:?} + {:?}", before, state);
                    prop_assert_eq!(changes.len(), usize::from(want != before));
                    if want == State::Down && before != State::Down {
                        prop_assert_eq!(s.local_diag(), Diag::NeighborSignaledSessionDown);
                    }
                    // A Final answers a Poll, unless AdminDown discards the packet.
                    let answered = poll && before != State::AdminDown;
                    prop_assert_eq!(finals, usize::from(answered));
                    if before != State::AdminDown {
                        deadline = s.detection_time().map(|d| now + d);
                        // The RFC formula: the peer's multiplier times at least its
                        // Desired Min TX.
                        let d = s.detection_time().unwrap();
                        let floor = Duration::from_millis(u64::from(tx_ms)) * u32::from(detect_mult);
                        prop_assert!(d >= floor, "{:?} < {:?}", d, floor);
                    }
                }
                Op::Wait(ms) => {
                    let until = now + Duration::from_millis(ms);
                    while let Some(t) = s.poll_timeout().filter(|t| *t <= until) {
                        now = now.max(t);
                        let was = s.state();
                        s.handle(Input::Timeout, now);
                        let expired = deadline.is_some_and(|d| d <= now);
                        if expired {
                            deadline = None;
                            remote_discr = 0;
                        }
                        let changes = check_outputs(&mut s, remote_discr)?;
                        if expired && matches!(was, State::Init | State::Up) {
                            prop_assert_eq!(s.state(), State::Down);
                            prop_assert_eq!(s.local_diag(), Diag::ControlDetectionTimeExpired);
                            prop_assert_eq!(changes.len(), 1);
                        } else {
                            prop_assert_eq!(s.state(), was, "no packet, no change but expiry");
                            prop_assert!(changes.is_empty());
                        }
                    }
                    now = until;
                }
                Op::AdminDown => {
                    s.handle(Input::AdminDown, now);
                    check_outputs(&mut s, remote_discr)?;
                    prop_assert_eq!(s.state(), State::AdminDown);
                    deadline = None;
                }
                Op::AdminUp => {
                    s.handle(Input::AdminUp, now);
                    check_outputs(&mut s, remote_discr)?;
                    let want = if before == State::AdminDown { State::Down } else { before };
                    prop_assert_eq!(s.state(), want);
                }
                Op::Configure(ms, mult) => {
                    s.handle(Input::Configure(Config::new(Duration::from_millis(u64::from(ms)), mult)), now);
                    check_outputs(&mut s, remote_discr)?;
                    prop_assert_eq!(s.state(), before);
                }
            }
        }
    }
}
