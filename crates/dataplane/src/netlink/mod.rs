//! A synchronous rtnetlink socket that pipelines requests (crate-internal), and the codec and
//! code points it needs.
//!
//! Contract:
//! - `Netlink::execute` writes many requests with one `sendmsg` per window and reads back
//!   only what the kernel has to say. Requests go without `NLM_F_ACK`: the kernel answers a request
//!   only when it fails, and every window ends with an `NLMSG_NOOP` carrying `NLM_F_ACK` as a
//!   barrier. The kernel handles the messages of one `sendmsg` in order, so once the barrier's
//!   ack arrives every earlier failure has been read. The result is one `Option<KernelError>`
//!   per request, in request order.
//! - A window is bounded in messages (so that even if every request fails, the error replies fit
//!   in the receive buffer) and in bytes (so that it fits the send buffer).
//! - If the receive buffer overruns anyway (`ENOBUFS`), the outcome of the window's requests is
//!   unknown: they are reported as failed with `ENOBUFS`, and the caller must re-read the
//!   kernel's state.
//! - Dumps are retried when the kernel flags them as interrupted (`NLM_F_DUMP_INTR`).
//! - The socket lives in the network namespace it was opened in, whatever thread uses it later.

pub mod nexthop;
pub mod uapi;

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use netlink_packet_core::{
    Emitable, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkBuffer,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::{Error, KernelError};
use uapi::*;

const HEADER_LEN: usize = 16;
/// Dump datagrams are at most 32 KiB (the kernel caps its dump allocation there); error
/// replies are small. Twice that leaves room.
const RX_LEN: usize = 64 * 1024;
/// Budget per possible error reply in the receive buffer: an `NLMSG_ERROR` with a capped
/// original header and an extended-ack string is one small skb, whose true size is well under
/// this.
const RX_BYTES_PER_ERROR: usize = 1024;
/// How long to wait for the kernel before declaring the socket stuck.
const RECV_TIMEOUT: Duration = Duration::from_secs(30);
/// How often to retry a dump that the kernel flags as interrupted by concurrent changes.
const DUMP_ATTEMPTS: usize = 10;

/// Size limits of a pipelined window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Requests per window (per `sendmsg`).
    pub(crate) messages: usize,
    /// Bytes per window.
    pub(crate) bytes: usize,
    /// Socket buffer size to ask for, in bytes (both directions).
    pub(crate) socket_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            messages: 4096,
            bytes: 512 * 1024,
            socket_buffer: 8 * 1024 * 1024,
        }
    }
}

/// Appends one netlink message to `buf`.
pub(crate) fn push_message(
    buf: &mut Vec<u8>,
    msg_type: u16,
    flags: u16,
    seq: u32,
    payload: &impl Emitable,
) {
    let start = buf.len();
    let len = HEADER_LEN + payload.buffer_len();
    buf.resize(start + len, 0);
    let mut header = NetlinkBuffer::new(&mut buf[start..]);
    header.set_length(len as u32);
    header.set_message_type(msg_type);
    header.set_flags(flags | NLM_F_REQUEST);
    header.set_sequence_number(seq);
    header.set_port_number(0);
    payload.emit(&mut buf[start + HEADER_LEN..]);
}

/// One received netlink message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame<'a> {
    pub(crate) msg_type: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    pub(crate) payload: &'a [u8],
}

/// Splits a datagram into its messages.
pub(crate) fn frames(mut data: &[u8]) -> impl Iterator<Item = Result<Frame<'_>, Error>> {
    std::iter::from_fn(move || {
        if data.is_empty() {
            return None;
        }
        let buf = match NetlinkBuffer::new_checked(data) {
            Ok(buf) => buf,
            Err(e) => {
                data = &[];
                return Some(Err(Error::decode("netlink header", e)));
            }
        };
        let len = buf.length() as usize;
        let frame = Frame {
            msg_type: buf.message_type(),
            flags: buf.flags(),
            seq: buf.sequence_number(),
            payload: &data[HEADER_LEN..len],
        };
        // Messages are 4-byte aligned within a datagram.
        data = data.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        Some(Ok(frame))
    })
}

/// Decodes the payload of an `NLMSG_ERROR`: 0 for an ack, or the refusal.
pub(crate) fn parse_error(frame: &Frame<'_>) -> Result<Option<KernelError>, Error> {
    let p = frame.payload;
    let Some(code) = p.get(..4) else {
        return Err(Error::decode("NLMSG_ERROR", "shorter than its error code"));
    };
    let code = i32::from_ne_bytes([code[0], code[1], code[2], code[3]]);
    if code == 0 {
        return Ok(None);
    }
    let mut message = None;
    if frame.flags & NLM_F_ACK_TLVS != 0 {
        // After the code comes the original request: its header only when capped.
        let original_len = p
            .get(4..8)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .unwrap_or(0);
        let skip = if frame.flags & NLM_F_CAPPED != 0 {
            HEADER_LEN
        } else {
            original_len.next_multiple_of(4)
        };
        if let Some(tlvs) = p.get(4 + skip..) {
            for nla in netlink_packet_core::NlasIterator::new(tlvs).flatten() {
                if nla.kind() == NLMSGERR_ATTR_MSG {
                    let text = nla.value().split(|b| *b == 0).next().unwrap_or_default();
                    message = Some(String::from_utf8_lossy(text).into_owned());
                }
            }
        }
    }
    Ok(Some(KernelError::new(code.saturating_neg(), message)))
}

/// A netlink route socket.
#[derive(Debug)]
pub(crate) struct Netlink {
    socket: Socket,
    seq: u32,
    rx: Vec<u8>,
    tx: Vec<u8>,
    limits: Limits,
}

impl Netlink {
    /// Opens a socket in this thread's network namespace, or in the namespace at `netns` (a
    /// file such as `/run/netns/NAME` or `/proc/PID/ns/net`).
    pub(crate) fn open(netns: Option<&Path>, limits: Limits) -> Result<Self, Error> {
        let socket = match netns {
            None => {
                new_socket().map_err(|e| Error::socket("creating a NETLINK_ROUTE socket", e))?
            }
            Some(path) => socket_in(path).map_err(|source| Error::Netns {
                path: path.to_owned(),
                source: source.into(),
            })?,
        };
        let mut nl = Netlink {
            socket,
            // Any start works; a pid-derived one makes stray replies meant for an earlier
            // socket with the same port id unlikely to match.
            seq: std::process::id().wrapping_mul(0x9e37_79b9),
            rx: Vec::with_capacity(RX_LEN),
            tx: Vec::new(),
            limits,
        };
        nl.configure()?;
        Ok(nl)
    }

    fn configure(&mut self) -> Result<(), Error> {
        let s = &self.socket;
        fn err(what: &'static str) -> impl Fn(std::io::Error) -> Error {
            move |e| Error::socket(what, e)
        }
        s.connect(&SocketAddr::new(0, 0))
            .map_err(err("connecting to the kernel"))?;
        // Error replies carry only the original header, not the whole request...
        s.set_cap_ack(true)
            .map_err(err("setting NETLINK_CAP_ACK"))?;
        // ...plus the kernel's explanation, which ends up in our error messages.
        s.set_ext_ack(true)
            .map_err(err("setting NETLINK_EXT_ACK"))?;
        // Lets dumps filter by protocol in the kernel. Older kernels lack it; they just send
        // everything, and we filter again anyway.
        let _ = s.set_netlink_get_strict_chk(true);
        let fd = s.as_fd();
        let size = self.limits.socket_buffer;
        // The FORCE variants need CAP_NET_ADMIN, which we need anyway; the plain ones are capped
        // by net.core.{r,w}mem_max.
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(fd, size).is_err() {
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(fd, size);
        }
        if rustix::net::sockopt::set_socket_send_buffer_size_force(fd, size).is_err() {
            let _ = rustix::net::sockopt::set_socket_send_buffer_size(fd, size);
        }
        rustix::net::sockopt::set_socket_timeout(
            fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(RECV_TIMEOUT),
        )
        .map_err(|e| Error::socket("setting SO_RCVTIMEO", e.into()))?;
        // Never let a window outgrow what the buffers really are.
        let rcv = rustix::net::sockopt::socket_recv_buffer_size(fd).unwrap_or(212_992);
        let snd = rustix::net::sockopt::socket_send_buffer_size(fd).unwrap_or(212_992);
        self.limits.messages = self
            .limits
            .messages
            .clamp(1, (rcv / RX_BYTES_PER_ERROR).max(1));
        self.limits.bytes = self.limits.bytes.clamp(4096, (snd / 2).max(4096));
        tracing::debug!(rcvbuf = rcv, sndbuf = snd, limits = ?self.limits, "netlink socket ready");
        Ok(())
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send_tx(&mut self, what: &str) -> Result<(), Error> {
        let sent = self
            .socket
            .send(&self.tx, 0)
            .map_err(|e| Error::socket(format!("sending {what}"), e))?;
        if sent != self.tx.len() {
            return Err(Error::socket(
                format!("sending {what}"),
                std::io::Error::other(format!("short write: {sent} of {} bytes", self.tx.len())),
            ));
        }
        Ok(())
    }

    /// Receives one datagram into `self.rx`. `Ok(false)` means the receive buffer overran and
    /// messages were lost.
    fn recv(&mut self) -> Result<bool, Error> {
        self.rx.clear();
        self.rx.reserve(RX_LEN);
        match self.socket.recv(&mut self.rx, MSG_TRUNC) {
            Ok(n) if n > self.rx.len() => Err(Error::decode(
                "netlink datagram",
                format!(
                    "{n} bytes do not fit the {} byte receive buffer",
                    self.rx.len()
                ),
            )),
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(ENOBUFS) => Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(Error::socket(
                "waiting for the kernel",
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {RECV_TIMEOUT:?}"),
                ),
            )),
            Err(e) => Err(Error::socket("receiving", e)),
        }
    }

    /// Sends `count` requests, pipelined, and returns each one's outcome. `encode(i, buf, seq)`
    /// appends request `i` to `buf` with [`push_message`] and sequence number `seq`, without
    /// `NLM_F_ACK`.
    pub(crate) fn execute(
        &mut self,
        count: usize,
        mut encode: impl FnMut(usize, &mut Vec<u8>, u32),
    ) -> Result<Vec<Option<KernelError>>, Error> {
        let mut results = vec![None; count];
        let mut next = 0;
        while next < count {
            let first = next;
            let first_seq = self.seq.wrapping_add(1);
            self.tx.clear();
            while next < count
                && next - first < self.limits.messages
                && self.tx.len() < self.limits.bytes
            {
                let seq = self.next_seq();
                encode(next, &mut self.tx, seq);
                next += 1;
            }
            let barrier = self.next_seq();
            push_message(&mut self.tx, NLMSG_NOOP, NLM_F_ACK, barrier, &NoPayload);
            self.send_tx("a batch of route changes")?;
            let window = &mut results[first..next];
            self.drain(first_seq, barrier, window)?;
        }
        Ok(results)
    }

    /// Reads replies until the ack of `barrier`, filing failures of the window's requests
    /// (sequence numbers `first_seq..barrier`) into `window`.
    fn drain(
        &mut self,
        first_seq: u32,
        mut barrier: u32,
        window: &mut [Option<KernelError>],
    ) -> Result<(), Error> {
        loop {
            if !self.recv()? {
                // Replies were dropped: nothing tells which requests failed. Mark the whole
                // window unknown and fence again, since the barrier's ack may be lost too.
                tracing::warn!(requests = window.len(), "netlink receive buffer overran");
                let lost = KernelError::new(ENOBUFS, Some("acknowledgement lost".into()));
                for slot in window.iter_mut().filter(|s| s.is_none()) {
                    *slot = Some(lost.clone());
                }
                barrier = self.next_seq();
                self.tx.clear();
                push_message(&mut self.tx, NLMSG_NOOP, NLM_F_ACK, barrier, &NoPayload);
                self.send_tx("a barrier")?;
                continue;
            }
            let mut done = false;
            for frame in frames(&self.rx) {
                let frame = frame?;
                if frame.msg_type != NLMSG_ERROR {
                    continue;
                }
                if frame.seq == barrier {
                    done = true;
                    continue;
                }
                let index = frame.seq.wrapping_sub(first_seq) as usize;
                if let Some(slot) = window.get_mut(index) {
                    if let Some(err) = parse_error(&frame)? {
                        *slot = Some(err);
                    }
                } else {
                    tracing::debug!(seq = frame.seq, "ignoring a stray netlink reply");
                }
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Dumps `msg_type` with `request` as the payload. `init` makes a fresh accumulator (again
    /// if the dump must restart) and `each` folds every message payload of type `reply_type`
    /// into it.
    pub(crate) fn dump<T>(
        &mut self,
        what: &'static str,
        msg_type: u16,
        request: &impl Emitable,
        reply_type: u16,
        mut init: impl FnMut() -> T,
        mut each: impl FnMut(&mut T, &[u8]) -> Result<(), Error>,
    ) -> Result<T, Error> {
        for attempt in 1..=DUMP_ATTEMPTS {
            let mut acc = init();
            let seq = self.next_seq();
            self.tx.clear();
            push_message(&mut self.tx, msg_type, NLM_F_DUMP, seq, request);
            self.send_tx(what)?;
            let mut interrupted = false;
            'recv: loop {
                if !self.recv()? {
                    // Dump replies were dropped: start over.
                    interrupted = true;
                    self.discard_until_done(seq)?;
                    break 'recv;
                }
                let rx = std::mem::take(&mut self.rx);
                let mut finished = None;
                for frame in frames(&rx) {
                    let frame = frame?;
                    if frame.seq != seq {
                        continue;
                    }
                    interrupted |= frame.flags & NLM_F_DUMP_INTR != 0;
                    match frame.msg_type {
                        NLMSG_DONE => {
                            let code = frame
                                .payload
                                .get(..4)
                                .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                                .unwrap_or(0);
                            finished = Some(if code < 0 {
                                Err(KernelError::new(-code, None))
                            } else {
                                Ok(())
                            });
                        }
                        NLMSG_ERROR => {
                            finished = Some(match parse_error(&frame)? {
                                Some(err) => Err(err),
                                None => Ok(()),
                            });
                        }
                        t if t == reply_type => each(&mut acc, frame.payload)?,
                        _ => {}
                    }
                }
                self.rx = rx;
                match finished {
                    None => continue,
                    Some(Err(source)) => return Err(Error::Dump { what, source }),
                    Some(Ok(())) => break 'recv,
                }
            }
            if !interrupted {
                return Ok(acc);
            }
            tracing::debug!(
                what,
                attempt,
                "dump interrupted by concurrent changes; retrying"
            );
        }
        Err(Error::Dump {
            what,
            source: KernelError::new(
                uapi::EINVAL,
                Some(format!("interrupted {DUMP_ATTEMPTS} times in a row")),
            ),
        })
    }

    /// Sends one request that the kernel answers with a single message (an `RTM_GET*` without
    /// `NLM_F_DUMP`) and hands that message's payload, of type `reply_type`, to `parse`. The
    /// inner `Err` is the kernel's refusal (`ENODEV` for a link that does not exist).
    pub(crate) fn get<T>(
        &mut self,
        what: &'static str,
        msg_type: u16,
        request: &impl Emitable,
        reply_type: u16,
        parse: impl Fn(&[u8]) -> Result<T, Error>,
    ) -> Result<Result<T, KernelError>, Error> {
        'send: loop {
            let seq = self.next_seq();
            self.tx.clear();
            push_message(&mut self.tx, msg_type, 0, seq, request);
            self.send_tx(what)?;
            loop {
                if !self.recv()? {
                    // The answer may have been dropped: ask again.
                    continue 'send;
                }
                for frame in frames(&self.rx) {
                    let frame = frame?;
                    if frame.seq != seq {
                        continue;
                    }
                    if frame.msg_type == reply_type {
                        return parse(frame.payload).map(Ok);
                    }
                    if frame.msg_type == NLMSG_ERROR
                        && let Some(err) = parse_error(&frame)?
                    {
                        return Ok(Err(err));
                    }
                }
            }
        }
    }

    fn discard_until_done(&mut self, seq: u32) -> Result<(), Error> {
        loop {
            if !self.recv()? {
                continue;
            }
            for frame in frames(&self.rx) {
                let frame = frame?;
                if frame.seq == seq && matches!(frame.msg_type, NLMSG_DONE | NLMSG_ERROR) {
                    return Ok(());
                }
            }
        }
    }
}

/// An empty payload (for `NLMSG_NOOP`).
#[derive(Debug)]
struct NoPayload;

impl Emitable for NoPayload {
    fn buffer_len(&self) -> usize {
        0
    }
    fn emit(&self, _: &mut [u8]) {}
}

fn new_socket() -> std::io::Result<Socket> {
    Socket::new(NETLINK_ROUTE)
}

/// Creates the socket on a short-lived thread that first enters the namespace: `setns(2)` moves
/// only the calling thread, and a socket stays in the namespace it was created in.
fn socket_in(path: &Path) -> std::io::Result<Socket> {
    let ns = File::open(path)?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                rustix::thread::move_into_link_name_space(
                    ns.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )?;
                new_socket()
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("namespace thread panicked")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn error_with_extended_ack() {
        // `ip nexthop add id 10 via 10.9.9.9 dev cva proto 198` refused by Linux 6.18 (captured
        // with strace), as it arrives on a socket with NETLINK_CAP_ACK set: the original
        // request is cut to its header.
        #[rustfmt::skip]
        let mut msg = vec![
            0x44, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x03, // len 68, NLMSG_ERROR, CAPPED|ACK_TLVS
            0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 7, port 0
            0x9b, 0xff, 0xff, 0xff,                         // -ENETUNREACH
            0x30, 0x00, 0x00, 0x00, 0x68, 0x00, 0x05, 0x06, // original header
            0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x20, 0x00, 0x01, 0x00,                         // NLMSGERR_ATTR_MSG
        ];
        msg.extend_from_slice(b"Nexthop has invalid gateway\0");
        assert_eq!(msg.len(), 68);
        let frames: Vec<_> = frames(&msg).collect::<Result<_, _>>().unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].seq, 7);
        let err = parse_error(&frames[0]).unwrap().unwrap();
        assert_eq!(err.errno, ENETUNREACH);
        assert_eq!(err.message.as_deref(), Some("Nexthop has invalid gateway"));
    }

    #[test]
    fn ack_is_not_an_error() {
        let mut buf = Vec::new();
        push_message(&mut buf, NLMSG_ERROR, 0, 9, &AckPayload);
        let frame = frames(&buf).next().unwrap().unwrap();
        assert_eq!(parse_error(&frame).unwrap(), None);
    }

    #[test]
    fn truncated_frames_are_errors() {
        let mut buf = Vec::new();
        push_message(&mut buf, NLMSG_NOOP, 0, 1, &NoPayload);
        push_message(&mut buf, NLMSG_NOOP, 0, 2, &NoPayload);
        buf.truncate(20);
        let all: Vec<_> = frames(&buf).collect();
        assert_eq!(all.len(), 2);
        assert!(all[0].is_ok());
        assert!(all[1].is_err());
        let short = Frame {
            msg_type: NLMSG_ERROR,
            flags: 0,
            seq: 0,
            payload: &[1, 2],
        };
        assert!(parse_error(&short).is_err());
    }

    #[derive(Debug)]
    struct AckPayload;
    impl Emitable for AckPayload {
        fn buffer_len(&self) -> usize {
            20
        }
        fn emit(&self, buf: &mut [u8]) {
            buf.fill(0);
        }
    }
}
