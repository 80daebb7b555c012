//! One BFD session: the RFC 5880 state machine in asynchronous mode as a sans-IO core.
//!
//! The core takes [`Input`]s with the current time and produces [`Output`]s (packets to send,
//! state changes) and its next deadline ([`Session::poll_timeout`]); it never touches a socket
//! or the clock. Received packets must have passed [`crate::wire::decode`] and been matched to
//! this session (by Your Discriminator, or by address when it is zero); the core checks both
//! again and ignores a packet that fails.
//!
//! What it implements (section numbers of RFC 5880):
//! - the three-way handshake and the reception rules of 6.8.6, with the Down, Init, Up and
//!   AdminDown states (6.2), and administrative control (6.8.16);
//! - detection (6.8.4): the remote's Detect Mult times the greater of our Required Min RX and
//!   its Desired Min TX, restarted by every packet; expiry takes Init or Up to Down with
//!   diagnostic 1 and forgets the remote discriminator;
//! - transmission (6.8.7): every `max(bfd.DesiredMinTxInterval, bfd.RemoteMinRxInterval)`
//!   minus 0-25 % jitter (10-25 % with a multiplier of 1), none when the remote asks for a
//!   Required Min RX of 0; a Final answers every Poll at once; a packet goes out at once on
//!   every state change;
//! - timer changes (6.8.3): Desired Min TX is at least one second until the session is Up,
//!   and every change of Desired Min TX or Required Min RX starts a Poll Sequence (6.5). A
//!   larger transmit interval, or a smaller receive interval, takes effect only once the
//!   sequence ends with a Final; a change during a sequence starts another one after it.
//!
//! Not implemented: demand mode (a remote in demand mode is honoured by not transmitting
//! periodically, 6.8.7), the echo function, authentication.
//!
//! Jitter comes from a small generator seeded by the caller, so tests are deterministic.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::iana::{Diag, State};
use crate::wire::ControlPacket;

/// Desired Min TX while the session is not Up (RFC 5880 section 6.8.3: at least one second).
pub const SLOW_TX: Duration = Duration::from_secs(1);

/// A session's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// How often we would like to send once Up (bfd.DesiredMinTxInterval).
    pub desired_min_tx: Duration,
    /// How often we can receive (bfd.RequiredMinRxInterval).
    pub required_min_rx: Duration,
    /// Packets missed before the peer is declared down (bfd.DetectMult).
    pub detect_mult: u8,
}

impl Default for Config {
    /// FRR's defaults: 300 ms x 3.
    fn default() -> Self {
        Config::new(Duration::from_millis(300), 3)
    }
}

impl Config {
    /// Transmit and receive every `interval`, down after `detect_mult` missed packets.
    pub fn new(interval: Duration, detect_mult: u8) -> Self {
        Config {
            desired_min_tx: interval,
            required_min_rx: interval,
            detect_mult,
        }
    }

    /// Intervals from 1 ms to what fits the wire's 32-bit microseconds, a multiplier of 1 or
    /// more.
    pub fn validate(&self) -> Result<(), Error> {
        let max = Duration::from_micros(u64::from(u32::MAX));
        for (field, v) in [
            ("desired_min_tx", self.desired_min_tx),
            ("required_min_rx", self.required_min_rx),
        ] {
            if v < Duration::from_millis(1) || v > max {
                return Err(Error::Config {
                    field,
                    problem: format!("{v:?} is outside 1 ms to {max:?}"),
                });
            }
        }
        if self.detect_mult == 0 {
            return Err(Error::Config {
                field: "detect_mult",
                problem: "must be 1 or more (3 is usual)".into(),
            });
        }
        Ok(())
    }
}

/// What happens to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A control packet for this session.
    Received(ControlPacket),
    /// A deadline from [`Session::poll_timeout`] has passed.
    Timeout,
    /// Hold the session in AdminDown (6.8.16).
    AdminDown,
    /// Leave AdminDown.
    AdminUp,
    /// New timers (validated by the caller); a Poll Sequence tells the peer.
    Configure(Config),
}

/// What the driver must do, and what the layers above must learn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this packet to the peer.
    Send(ControlPacket),
    /// The session state changed; `diag` is the local diagnostic after the change.
    StateChanged { from: State, to: State, diag: Diag },
}

/// One session's state variables (RFC 5880 section 6.8.1) and timers.
#[derive(Debug, Clone)]
pub struct Session {
    config: Config,
    state: State,
    remote_state: State,
    local_discr: u32,
    remote_discr: u32,
    local_diag: Diag,
    remote_diag: Diag,
    /// bfd.DesiredMinTxInterval and bfd.RequiredMinRxInterval as sent, in microseconds.
    desired_min_tx: u32,
    required_min_rx: u32,
    /// The values that govern our transmit rate and the detection time until a Poll Sequence
    /// confirms the advertised ones.
    tx_in_use: u32,
    rx_in_use: u32,
    remote_min_rx: u32,
    remote_desired_min_tx: u32,
    remote_detect_mult: u8,
    remote_demand: bool,
    poll_active: bool,
    /// Parameters changed during the running Poll Sequence: start another after it.
    poll_again: bool,
    next_tx: Option<Instant>,
    detect_deadline: Option<Instant>,
    rng: u64,
    outputs: VecDeque<Output>,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn duration(us: u32) -> Duration {
    Duration::from_micros(u64::from(us))
}

impl Session {
    /// A session in Down with our discriminator `local_discr` (unique among the driver's
    /// sessions), sending its first packet at `now`. `jitter_seed` seeds the transmit jitter.
    pub fn new(config: Config, local_discr: NonZeroU32, jitter_seed: u64, now: Instant) -> Self {
        let desired_min_tx = micros(config.desired_min_tx.max(SLOW_TX));
        let required_min_rx = micros(config.required_min_rx);
        Session {
            config,
            state: State::Down,
            remote_state: State::Down,
            local_discr: local_discr.get(),
            remote_discr: 0,
            local_diag: Diag::None,
            remote_diag: Diag::None,
            desired_min_tx,
            required_min_rx,
            tx_in_use: desired_min_tx,
            rx_in_use: required_min_rx,
            remote_min_rx: 1,
            remote_desired_min_tx: 0,
            remote_detect_mult: 0,
            remote_demand: false,
            poll_active: false,
            poll_again: false,
            next_tx: Some(now),
            detect_deadline: None,
            // xorshift must not start at zero.
            rng: jitter_seed | 1,
            outputs: VecDeque::new(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    /// Why the session last went down.
    pub fn local_diag(&self) -> Diag {
        self.local_diag
    }

    /// The diagnostic in the peer's latest packet.
    pub fn remote_diag(&self) -> Diag {
        self.remote_diag
    }

    pub fn local_discr(&self) -> u32 {
        self.local_discr
    }

    /// The peer's discriminator; 0 until it is known, and again after a detection timeout.
    pub fn remote_discr(&self) -> u32 {
        self.remote_discr
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether a Poll Sequence is running.
    pub fn polling(&self) -> bool {
        self.poll_active
    }

    /// The interval between our periodic packets before jitter; `None` while the peer asks
    /// for none (Required Min RX 0, or demand mode).
    pub fn tx_interval(&self) -> Option<Duration> {
        if self.remote_min_rx == 0
            || (self.remote_demand && self.state == State::Up && self.remote_state == State::Up)
        {
            return None;
        }
        Some(duration(self.tx_in_use.max(self.remote_min_rx)))
    }

    /// How long without a packet before the session goes down; `None` before the first one.
    pub fn detection_time(&self) -> Option<Duration> {
        if self.remote_detect_mult == 0 {
            return None;
        }
        let interval = self.rx_in_use.max(self.remote_desired_min_tx);
        Some(duration(interval) * u32::from(self.remote_detect_mult))
    }

    /// The next output to act on.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Input::Timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_tx, self.detect_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Received(p) => self.receive(p, now),
            Input::Timeout => self.timeout(now),
            Input::AdminDown => {
                if self.state != State::AdminDown {
                    self.detect_deadline = None;
                    self.set_state(State::AdminDown, Some(Diag::AdministrativelyDown), now);
                }
            }
            Input::AdminUp => {
                if self.state == State::AdminDown {
                    self.set_state(State::Down, None, now);
                }
            }
            Input::Configure(config) => {
                self.config = config;
                if self.update_timers(now) {
                    self.send(false);
                }
            }
        }
    }

    /// RFC 5880 section 6.8.6, after the checks that need no session.
    fn receive(&mut self, p: ControlPacket, now: Instant) {
        if p.validate().is_err() || (p.your_discr != 0 && p.your_discr != self.local_discr) {
            return;
        }
        let old_interval = self.tx_interval();
        self.remote_discr = p.my_discr;
        self.remote_state = p.state;
        self.remote_diag = p.diag;
        self.remote_demand = p.demand;
        self.remote_min_rx = p.required_min_rx;
        self.remote_desired_min_tx = p.desired_min_tx;
        self.remote_detect_mult = p.detect_mult;
        if p.final_ && self.poll_active {
            self.finish_poll();
        }
        if self.state == State::AdminDown {
            return;
        }
        if p.state == State::AdminDown {
            if self.state != State::Down {
                self.set_state(State::Down, Some(Diag::NeighborSignaledSessionDown), now);
            }
        } else {
            match (self.state, p.state) {
                (State::Down, State::Down) => self.set_state(State::Init, None, now),
                (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                    self.set_state(State::Up, None, now)
                }
                (State::Up, State::Down) => {
                    self.set_state(State::Down, Some(Diag::NeighborSignaledSessionDown), now)
                }
                _ => {}
            }
        }
        if p.poll {
            self.send(true);
        }
        self.detect_deadline = self.detection_time().map(|d| now + d);
        if self.tx_interval() != old_interval {
            self.reschedule(now);
        }
    }

    fn timeout(&mut self, now: Instant) {
        if self.detect_deadline.is_some_and(|d| d <= now) {
            self.detect_deadline = None;
            self.remote_discr = 0;
            self.remote_state = State::Down;
            if matches!(self.state, State::Init | State::Up) {
                let diag = Some(Diag::ControlDetectionTimeExpired);
                self.set_state(State::Down, diag, now);
            }
        }
        if self.next_tx.is_some_and(|t| t <= now) {
            self.send(false);
            self.next_tx = self.tx_interval().map(|i| now + self.jittered(i));
        }
    }

    /// Moves to `to`; a Down or AdminDown records `diag`, Up clears the diagnostic. The timers
    /// follow (slow transmit unless Up) and a packet tells the peer at once.
    fn set_state(&mut self, to: State, diag: Option<Diag>, now: Instant) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        match to {
            State::Up => self.local_diag = Diag::None,
            _ => {
                if let Some(d) = diag {
                    self.local_diag = d;
                }
            }
        }
        self.outputs.push_back(Output::StateChanged {
            from,
            to,
            diag: self.local_diag,
        });
        self.update_timers(now);
        self.send(false);
        self.next_tx = self.tx_interval().map(|i| now + self.jittered(i));
    }

    /// Brings the advertised intervals in line with the configuration and the state (6.8.3);
    /// true when they changed, and so a Poll Sequence is running or scheduled.
    fn update_timers(&mut self, now: Instant) -> bool {
        let mut tx = micros(self.config.desired_min_tx);
        if self.state != State::Up {
            tx = tx.max(micros(SLOW_TX));
        }
        let rx = micros(self.config.required_min_rx);
        let up = self.state == State::Up;
        let mut changed = false;
        if tx != self.desired_min_tx {
            self.desired_min_tx = tx;
            // A slower rate waits for the peer's Final while Up; a faster one may start now.
            if !up || tx < self.tx_in_use {
                self.tx_in_use = tx;
            }
            changed = true;
        }
        if rx != self.required_min_rx {
            self.required_min_rx = rx;
            // A shorter detection time waits for the peer's Final while Up.
            if !up || rx > self.rx_in_use {
                self.rx_in_use = rx;
            }
            changed = true;
        }
        if changed {
            if self.poll_active {
                self.poll_again = true;
            } else {
                self.poll_active = true;
            }
            self.reschedule(now);
        }
        changed
    }

    /// A Final arrived: the advertised intervals are now the ones in use.
    fn finish_poll(&mut self) {
        self.poll_active = false;
        self.tx_in_use = self.desired_min_tx;
        self.rx_in_use = self.required_min_rx;
        if self.poll_again {
            self.poll_again = false;
            self.poll_active = true;
        }
    }

    /// The transmit interval changed: the next packet goes no later than the new interval
    /// allows.
    fn reschedule(&mut self, now: Instant) {
        self.next_tx = match self.tx_interval() {
            None => None,
            Some(i) => {
                let at = now + self.jittered(i);
                Some(self.next_tx.map_or(at, |t| t.min(at)))
            }
        };
    }

    fn send(&mut self, final_: bool) {
        let p = ControlPacket {
            diag: self.local_diag,
            state: self.state,
            poll: self.poll_active && !final_,
            final_,
            control_plane_independent: false,
            demand: false,
            multipoint: false,
            detect_mult: self.config.detect_mult,
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx: self.desired_min_tx,
            required_min_rx: self.required_min_rx,
            required_min_echo_rx: 0,
            auth: None,
        };
        self.outputs.push_back(Output::Send(p));
    }

    /// `interval` less 0-25 %, or 10-25 % with a multiplier of 1 (6.8.7), in steps of 0.1 %.
    fn jittered(&mut self, interval: Duration) -> Duration {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
        let span = if self.config.detect_mult == 1 {
            151
        } else {
            251
        };
        let per_mille = 750 + (r % span) as u32;
        interval * per_mille / 1000
    }
}

#[cfg(test)]
mod tests;
