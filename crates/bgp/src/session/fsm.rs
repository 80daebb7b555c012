//! The BGP finite state machine of RFC 4271 section 8, as a sans-IO core.
//!
//! Contract:
//! - The driver owns sockets and the clock. It feeds [`Input`]s with the current time to
//!   [`Session::handle`], performs every [`Output`] from [`Session::poll_output`], and calls
//!   `handle(Input::Timeout, now)` once `now` reaches [`Session::poll_timeout`].
//! - The core never reads the clock, never blocks and never panics on peer input.
//! - Up to two TCP connections exist at once (ours and the peer's); collisions are resolved as
//!   RFC 4271 section 6.8 says, by BGP identifier.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::config::{RemoteAs, SessionConfig};
use crate::error::Error;
use crate::iana::{CeaseSubcode, FsmSubcode};
use crate::wire::{
    DecodeContext, KEEPALIVE, Message, Negotiated, Notification, NotificationCode, Open,
    OpenExpectations, Received, RouteRefresh, UpdateOutcome, decode_message, frame_len,
};

/// The driver's handle for one TCP connection.
pub type ConnId = u64;

/// Session state, RFC 4271 section 8.2.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// Who opened a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Outbound,
    Inbound,
}

/// Events from the driver.
#[derive(Debug, Clone)]
pub enum Input {
    /// Enable the session (automatic start): connect, or wait for the peer when passive.
    Start,
    /// Disable the session: send Cease/Administrative Shutdown with this message and stay idle.
    Stop { message: String },
    /// A TCP connection to or from the peer is up.
    Connected { conn: ConnId, direction: Direction },
    /// The outbound connection attempt failed or timed out.
    ConnectFailed,
    /// Bytes arrived on a connection.
    Received { conn: ConnId, data: Bytes },
    /// The peer closed the connection, or it broke.
    Closed { conn: ConnId },
    /// A message to send on the Established session (UPDATE, ROUTE-REFRESH), already encoded
    /// with the session's negotiated parameters. Dropped when not Established.
    Transmit(Bytes),
    /// Tear the session down with `notification` (maximum prefixes, BFD down), then stay idle
    /// for `idle_hold` before reconnecting (the default backoff when `None`).
    Reset {
        notification: Notification,
        idle_hold: Option<Duration>,
    },
    /// A deadline from [`Session::poll_timeout`] has passed.
    Timeout,
}

/// Why an Established session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// The peer sent this NOTIFICATION.
    NotificationReceived(Notification),
    /// We sent this NOTIFICATION (an error, a reset, hold timer expiry, a stop).
    NotificationSent(Notification),
    /// The TCP connection closed without a NOTIFICATION.
    ConnectionLost,
    /// The peer reconnected while the old session was still up: it restarted (RFC 4724).
    PeerRestarted,
}

impl DownReason {
    /// Whether the peer's routes may be kept as stale under graceful restart: only when the
    /// transport failed, never after a NOTIFICATION (RFC 4724 section 4.2).
    pub fn allows_graceful_restart(&self) -> bool {
        matches!(self, DownReason::ConnectionLost | DownReason::PeerRestarted)
            || matches!(self, DownReason::NotificationSent(n)
                if matches!(n.code, NotificationCode::HoldTimerExpired(_)))
    }
}

/// What the driver must do, and what the layers above must learn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Open an outbound TCP connection to the peer (and report `Connected`/`ConnectFailed`).
    Connect,
    /// Write these bytes on the connection.
    Send { conn: ConnId, data: Bytes },
    /// Close the connection (after writing what was queued for it).
    Close { conn: ConnId },
    /// The session state changed.
    StateChanged { from: State, to: State },
    /// The session reached Established with these parameters.
    Established(Box<Negotiated>),
    /// An UPDATE arrived on the Established session, after RFC 7606 handling (never a session
    /// reset: the core has acted on those).
    Update(Box<UpdateOutcome>),
    /// The peer asks us to re-send our routes (RFC 2918).
    RouteRefresh(RouteRefresh),
    /// The Established session ended.
    Down(DownReason),
}

/// Per-connection state (OpenSent and later; before that there is no connection).
#[derive(Debug)]
struct Conn {
    id: ConnId,
    direction: Direction,
    state: State,
    rx: BytesMut,
    negotiated: Option<Negotiated>,
    /// Decoding parameters: defaults until the OPENs are exchanged.
    ctx: DecodeContext,
    hold_deadline: Option<Instant>,
    keepalive_due: Option<Instant>,
}

/// A third of the hold time (RFC 4271 section 10), at least one second.
fn keepalive_interval(n: &Negotiated) -> Duration {
    Duration::from_secs(u64::from(n.keepalive_time).max(1))
}

/// RFC 4271 section 8: a large hold time while waiting for the peer's OPEN.
const OPEN_HOLD: Duration = Duration::from_secs(240);

/// The state machine for one peer.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    local_open: Open,
    enabled: bool,
    /// An outbound attempt is in flight.
    connecting: bool,
    conns: Vec<Conn>,
    connect_retry_due: Option<Instant>,
    idle_until: Option<Instant>,
    /// The idle hold is a hold-down (`Input::Reset` with `idle_hold`, e.g. after maximum
    /// prefixes): refuse the neighbour's connections too, not only stop opening ours.
    held_down: bool,
    backoff: Duration,
    established_at: Option<Instant>,
    state: State,
    outputs: VecDeque<Output>,
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        let backoff = config.backoff.initial;
        Session {
            local_open: config.open(),
            config,
            enabled: false,
            connecting: false,
            conns: Vec::new(),
            connect_retry_due: None,
            idle_until: None,
            held_down: false,
            backoff,
            established_at: None,
            state: State::Idle,
            outputs: VecDeque::new(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The parameters of the Established session.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.established().and_then(|c| c.negotiated.as_ref())
    }

    /// The connection carrying the Established session.
    pub fn established_conn(&self) -> Option<ConnId> {
        self.established().map(|c| c.id)
    }

    /// The next output to perform, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest instant at which `Input::Timeout` must be handled.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conn_deadlines = self
            .conns
            .iter()
            .flat_map(|c| [c.hold_deadline, c.keepalive_due]);
        [self.connect_retry_due, self.idle_until]
            .into_iter()
            .chain(conn_deadlines)
            .flatten()
            .min()
    }

    /// Feeds one event.
    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Start => self.start(now),
            Input::Stop { message } => {
                self.enabled = false;
                let n = Notification::shutdown(CeaseSubcode::AdministrativeShutdown, &message);
                self.teardown_all(Some(n), now);
                self.idle_until = None;
                self.held_down = false;
                self.connect_retry_due = None;
            }
            Input::Connected { conn, direction } => self.connected(conn, direction, now),
            Input::ConnectFailed => {
                self.connecting = false;
                if self.enabled && self.conns.is_empty() && self.idle_until.is_none() {
                    // Stay Active: the peer may still connect to us; retry on the timer.
                    self.connect_retry_due
                        .get_or_insert(now + self.config.connect_retry);
                }
            }
            Input::Received { conn, data } => self.received(conn, data, now),
            Input::Closed { conn } => {
                if let Some(i) = self.index(conn) {
                    let c = self.conns.remove(i);
                    if c.state == State::Established {
                        self.session_down(DownReason::ConnectionLost, now);
                    } else {
                        self.after_connection_failure(now);
                    }
                }
            }
            Input::Transmit(data) => {
                if let Some(c) = self.established_mut() {
                    let conn = c.id;
                    self.outputs.push_back(Output::Send { conn, data });
                }
            }
            Input::Reset {
                notification,
                idle_hold,
            } => {
                self.teardown_all(Some(notification), now);
                if let (Some(hold), true) = (idle_hold, self.enabled) {
                    self.idle_until = Some(now + hold);
                    self.held_down = true;
                }
            }
            Input::Timeout => self.timeout(now),
        }
        self.update_state();
    }

    fn start(&mut self, now: Instant) {
        if self.enabled {
            return;
        }
        self.enabled = true;
        self.idle_until = None;
        self.held_down = false;
        self.connect_out(now);
    }

    /// Starts an outbound attempt unless passive or one is already running.
    fn connect_out(&mut self, now: Instant) {
        self.connect_retry_due = Some(now + self.config.connect_retry);
        if !self.config.passive && !self.connecting && self.conns.is_empty() {
            self.connecting = true;
            self.outputs.push_back(Output::Connect);
        }
    }

    fn connected(&mut self, id: ConnId, direction: Direction, now: Instant) {
        if direction == Direction::Outbound {
            self.connecting = false;
        }
        // A peer that reconnects while its old session is up has restarted; with graceful
        // restart negotiated the old connection is dead and must go (RFC 4724 section 4.2).
        if direction == Direction::Inbound
            && let Some(old) = self.established()
            && self.config.graceful_restart.is_some()
            && old
                .negotiated
                .as_ref()
                .is_some_and(|n| n.peer_graceful_restart.is_some())
        {
            let old_id = old.id;
            self.conns.retain(|c| c.id != old_id);
            self.outputs.push_back(Output::Close { conn: old_id });
            self.session_down(DownReason::PeerRestarted, now);
            self.idle_until = None;
        }
        // At most one connection each way; a disabled or held-down session takes none. The
        // backoff only delays our own attempts: refusing the neighbour's too would let two
        // speakers that back off on different clocks refuse each other for ever (FRR and
        // BIRD accept while they wait, too).
        let refuse =
            !self.enabled || self.held_down || self.conns.iter().any(|c| c.direction == direction);
        if refuse {
            let n = Notification::new(NotificationCode::Cease(CeaseSubcode::ConnectionRejected));
            self.send_notification_and_close(id, n);
            return;
        }
        self.idle_until = None;
        self.connect_retry_due = None;
        match Message::Open(self.local_open.clone()).to_bytes(&DecodeContext::default()) {
            Ok(data) => self.outputs.push_back(Output::Send { conn: id, data }),
            Err(err) => {
                // Only a config with absurdly many capabilities gets here.
                tracing::error!(%err, "cannot encode our OPEN");
                self.outputs.push_back(Output::Close { conn: id });
                return;
            }
        }
        self.conns.push(Conn {
            id,
            direction,
            state: State::OpenSent,
            rx: BytesMut::new(),
            negotiated: None,
            ctx: DecodeContext::default(),
            hold_deadline: Some(now + OPEN_HOLD),
            keepalive_due: None,
        });
    }

    fn received(&mut self, id: ConnId, data: Bytes, now: Instant) {
        let Some(i) = self.index(id) else { return };
        self.conns[i].rx.extend_from_slice(&data);
        // Decode every complete message; stop as soon as the connection goes away.
        while let Some(i) = self.index(id) {
            let ctx = self.conns[i].ctx;
            let rx = &mut self.conns[i].rx;
            let len = match frame_len(rx, &ctx) {
                Ok(Some(len)) if rx.len() >= len => len,
                Ok(_) => return,
                Err(err) => return self.protocol_error(id, &err, now),
            };
            let frame = rx.split_to(len).freeze();
            match decode_message(frame, &ctx) {
                Ok(msg) => self.message(i, msg, now),
                Err(err) => return self.protocol_error(id, &err, now),
            }
        }
    }

    fn message(&mut self, i: usize, msg: Received, now: Instant) {
        let id = self.conns[i].id;
        let state = self.conns[i].state;
        // Any message from the peer proves it alive (RFC 4271: hold timer restarts on
        // KEEPALIVE and UPDATE; restarting on every message is what implementations do).
        if let Some(n) = &self.conns[i].negotiated
            && n.hold_time > 0
        {
            self.conns[i].hold_deadline = Some(now + Duration::from_secs(n.hold_time.into()));
        }
        match (msg, state) {
            (Received::Notification(n), _) => {
                tracing::info!(code = ?n.code, "NOTIFICATION received");
                let c = self.conns.remove(i);
                self.outputs.push_back(Output::Close { conn: id });
                if c.state == State::Established {
                    self.session_down(DownReason::NotificationReceived(n), now);
                } else {
                    self.after_connection_failure(now);
                }
            }
            (Received::Open(open), State::OpenSent) => self.open_received(id, open, now),
            (Received::Keepalive, State::OpenConfirm) => self.establish(id, now),
            (Received::Keepalive, State::Established) => {}
            (Received::Update(outcome), State::Established) => {
                self.outputs.push_back(Output::Update(outcome));
            }
            (Received::RouteRefresh(rr), State::Established) => {
                self.outputs.push_back(Output::RouteRefresh(rr));
            }
            (_, state) => {
                let subcode = match state {
                    State::OpenSent => FsmSubcode::UnexpectedMessageInOpenSent,
                    State::OpenConfirm => FsmSubcode::UnexpectedMessageInOpenConfirm,
                    _ => FsmSubcode::UnexpectedMessageInEstablished,
                };
                let n = Notification::new(NotificationCode::FiniteStateMachine(subcode));
                self.fail_connection(id, n, now);
            }
        }
    }

    fn open_received(&mut self, id: ConnId, open: Open, now: Instant) {
        let expect = OpenExpectations {
            peer_as: match self.config.remote_as {
                RemoteAs::Exact(asn) => Some(asn),
                RemoteAs::External | RemoteAs::Internal => None,
            },
            // RFC 6286: an external peer may share our identifier, an internal one may not.
            local_id: Some(self.config.router_id).filter(|_| open.asn() == self.config.local_as),
        };
        if let Err(err) = open.validate(&expect) {
            return self.protocol_error(id, &err, now);
        }
        let peer_as = open.asn();
        if !self.config.remote_as.accepts(peer_as, self.config.local_as) {
            // `External` rejects our own AS, `Internal` any other: name ours either way.
            let err = Error::BadPeerAs {
                expected: self.config.local_as,
                received: peer_as,
            };
            return self.protocol_error(id, &err, now);
        }
        // Collision detection, RFC 4271 section 6.8: only against a connection whose OPEN we
        // have seen; one still in OpenSent is resolved when its own OPEN arrives.
        let this_direction = self.conns.iter().find(|c| c.id == id).map(|c| c.direction);
        if let Some(other) = self
            .conns
            .iter()
            .find(|c| c.id != id && c.state >= State::OpenConfirm)
        {
            let keep_this = other.state != State::Established && {
                // The connection opened by the side with the higher identifier survives.
                let ours_wins = u32::from(self.config.router_id) > u32::from(open.bgp_id);
                (this_direction == Some(Direction::Outbound)) == ours_wins
            };
            let loser = if keep_this { other.id } else { id };
            let n = Notification::new(NotificationCode::Cease(
                CeaseSubcode::ConnectionCollisionResolution,
            ));
            if let Some(i) = self.index(loser) {
                self.conns.remove(i);
            }
            self.send_notification_and_close(loser, n);
            if !keep_this {
                return;
            }
        }
        let negotiated = Negotiated::new(&self.local_open, &open);
        let Some(i) = self.index(id) else { return };
        let c = &mut self.conns[i];
        c.state = State::OpenConfirm;
        let hold = negotiated.hold_time;
        c.hold_deadline = (hold > 0).then(|| now + Duration::from_secs(hold.into()));
        c.keepalive_due = (hold > 0).then(|| now + keepalive_interval(&negotiated));
        c.ctx = negotiated.decode_context();
        c.negotiated = Some(negotiated);
        self.send_keepalive(id);
    }

    fn establish(&mut self, id: ConnId, now: Instant) {
        let Some(i) = self.index(id) else { return };
        self.conns[i].state = State::Established;
        self.established_at = Some(now);
        // The Restart State bit announces one restart (RFC 4724 section 4.1): a later
        // reconnect is an ordinary one, so later OPENs go without it.
        if let Some(gr) = &mut self.config.graceful_restart
            && gr.restarting
        {
            gr.restarting = false;
            self.local_open = self.config.open();
        }
        if let Some(n) = self.conns[i].negotiated.clone() {
            tracing::info!(peer_as = n.peer_as, peer_id = %n.peer_id, "session Established");
            self.outputs.push_back(Output::Established(Box::new(n)));
        }
    }

    fn timeout(&mut self, now: Instant) {
        if self.idle_until.is_some_and(|t| t <= now) {
            self.idle_until = None;
            self.held_down = false;
            if self.enabled {
                self.connect_out(now);
            }
        }
        if self.connect_retry_due.is_some_and(|t| t <= now) {
            self.connect_retry_due = None;
            if self.enabled && self.conns.is_empty() {
                // A stuck attempt is abandoned by the driver's own connect timeout.
                self.connecting = false;
                self.connect_out(now);
            }
        }
        let expired: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|c| c.hold_deadline.is_some_and(|t| t <= now))
            .map(|c| c.id)
            .collect();
        for id in expired {
            let n = Notification::new(NotificationCode::HoldTimerExpired(0));
            self.fail_connection(id, n, now);
        }
        let due: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|c| c.keepalive_due.is_some_and(|t| t <= now))
            .map(|c| c.id)
            .collect();
        for id in due {
            self.send_keepalive(id);
            if let Some(i) = self.index(id)
                && let Some(n) = &self.conns[i].negotiated
            {
                self.conns[i].keepalive_due = Some(now + keepalive_interval(n));
            }
        }
    }

    fn send_keepalive(&mut self, id: ConnId) {
        self.outputs.push_back(Output::Send {
            conn: id,
            data: Bytes::from_static(&KEEPALIVE),
        });
    }

    /// A decoding error on `id`: send the NOTIFICATION the RFC asks for and drop the connection.
    fn protocol_error(&mut self, id: ConnId, err: &Error, now: Instant) {
        tracing::warn!(%err, "protocol error, closing the connection");
        let n = err.notification().unwrap_or_else(|| {
            Notification::new(NotificationCode::Cease(CeaseSubcode::OutOfResources))
        });
        self.fail_connection(id, n, now);
    }

    /// Sends `n` on `id`, closes it, and handles the session going down.
    fn fail_connection(&mut self, id: ConnId, n: Notification, now: Instant) {
        let Some(i) = self.index(id) else { return };
        let c = self.conns.remove(i);
        self.send_notification_and_close(id, n.clone());
        if c.state == State::Established {
            self.session_down(DownReason::NotificationSent(n), now);
        } else {
            self.after_connection_failure(now);
        }
    }

    fn send_notification_and_close(&mut self, id: ConnId, n: Notification) {
        // A NOTIFICATION always fits the 4096-octet minimum maximum: its data is truncated by
        // construction in the codec; if encoding fails anyway, closing is still right.
        if let Ok(data) = Message::Notification(n).to_bytes(&DecodeContext::default()) {
            self.outputs.push_back(Output::Send { conn: id, data });
        }
        self.outputs.push_back(Output::Close { conn: id });
    }

    /// Closes every connection, with `n` on each when given.
    fn teardown_all(&mut self, n: Option<Notification>, now: Instant) {
        let conns = std::mem::take(&mut self.conns);
        let mut was_established = false;
        for c in conns {
            was_established |= c.state == State::Established;
            match &n {
                Some(n) => self.send_notification_and_close(c.id, n.clone()),
                None => self.outputs.push_back(Output::Close { conn: c.id }),
            }
        }
        self.connecting = false;
        if was_established {
            let reason = match n {
                Some(n) => DownReason::NotificationSent(n),
                None => DownReason::ConnectionLost,
            };
            self.session_down(reason, now);
        } else {
            self.after_connection_failure(now);
        }
    }

    fn session_down(&mut self, reason: DownReason, now: Instant) {
        tracing::info!(?reason, "session down");
        let stable = self
            .established_at
            .take()
            .is_some_and(|t| now.duration_since(t) >= self.config.backoff.stable_after);
        if stable {
            self.backoff = self.config.backoff.initial;
        }
        self.outputs.push_back(Output::Down(reason));
        self.after_connection_failure(now);
    }

    /// With no connection left, wait out the idle-hold backoff before trying again.
    fn after_connection_failure(&mut self, now: Instant) {
        if !self.conns.is_empty() || !self.enabled {
            return;
        }
        self.connect_retry_due = None;
        self.idle_until = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(self.config.backoff.max);
    }

    fn update_state(&mut self) {
        let new = self.conns.iter().map(|c| c.state).max().unwrap_or(
            if !self.enabled || self.idle_until.is_some() {
                State::Idle
            } else if self.connecting {
                State::Connect
            } else {
                State::Active
            },
        );
        if new != self.state {
            self.outputs.push_back(Output::StateChanged {
                from: self.state,
                to: new,
            });
            self.state = new;
        }
    }

    fn index(&self, id: ConnId) -> Option<usize> {
        self.conns.iter().position(|c| c.id == id)
    }

    fn established(&self) -> Option<&Conn> {
        self.conns.iter().find(|c| c.state == State::Established)
    }

    fn established_mut(&mut self) -> Option<&mut Conn> {
        self.conns
            .iter_mut()
            .find(|c| c.state == State::Established)
    }
}

#[cfg(test)]
mod tests;
