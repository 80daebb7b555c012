//! Blocking sockets for the rigs' own peers: a read that treats the socket's read timeout as
//! "nothing yet", and the clos-bgp session core driven over one outbound connection (the
//! senders, which must never be what limits a device).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clos_bgp::session::{ConnId, Direction, Input, Output, Session, SessionConfig};

use crate::Result;

/// Reads what the socket has within its read timeout: `Ok(None)` when nothing came,
/// `Ok(Some(0))` when the peer closed.
pub fn read_some(s: &mut impl Read, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
    match s.read(buf) {
        Ok(n) => Ok(Some(n)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

const CONN: ConnId = 1;

/// A session core with its one outbound connection. The caller takes the session's outputs
/// with [`BlockingSession::next_output`] (connecting, sending and closing are done there) and
/// calls [`BlockingSession::step`] in between.
pub struct BlockingSession {
    session: Session,
    remote: SocketAddr,
    connect_timeout: Duration,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl BlockingSession {
    /// Starts the session towards `remote`; reads go through a buffer of `buf_len` octets.
    pub fn start(
        config: SessionConfig,
        remote: SocketAddr,
        connect_timeout: Duration,
        buf_len: usize,
    ) -> Self {
        let mut session = Session::new(config);
        session.handle(Input::Start, Instant::now());
        BlockingSession {
            session,
            remote,
            connect_timeout,
            stream: None,
            buf: vec![0; buf_len],
        }
    }

    /// The session's next output other than connect, send and close, which are carried out.
    pub fn next_output(&mut self) -> Result<Option<Output>> {
        while let Some(output) = self.session.poll_output() {
            let now = Instant::now();
            match output {
                Output::Connect => {
                    match TcpStream::connect_timeout(&self.remote, self.connect_timeout) {
                        Ok(s) => {
                            s.set_nodelay(true)?;
                            s.set_read_timeout(Some(Duration::from_millis(20)))?;
                            self.stream = Some(s);
                            let connected = Input::Connected {
                                conn: CONN,
                                direction: Direction::Outbound,
                            };
                            self.session.handle(connected, now);
                        }
                        Err(_) => self.session.handle(Input::ConnectFailed, now),
                    }
                }
                Output::Send { data, .. } => {
                    if let Some(s) = &mut self.stream {
                        s.write_all(&data)?;
                    }
                }
                Output::Close { .. } => self.stream = None,
                other => return Ok(Some(other)),
            }
        }
        Ok(None)
    }

    /// Fires a due timer, or feeds the session what the socket read (or its closing).
    pub fn step(&mut self) {
        let now = Instant::now();
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle(Input::Timeout, now);
            return;
        }
        let Some(s) = &mut self.stream else {
            std::thread::sleep(Duration::from_millis(10));
            return;
        };
        let input = match read_some(s, &mut self.buf) {
            Ok(None) => return,
            Ok(Some(0)) | Err(_) => {
                self.stream = None;
                Input::Closed { conn: CONN }
            }
            Ok(Some(n)) => Input::Received {
                conn: CONN,
                data: Bytes::copy_from_slice(self.buf.get(..n).unwrap_or_default()),
            },
        };
        self.session.handle(input, Instant::now());
    }

    pub fn stream_mut(&mut self) -> Option<&mut TcpStream> {
        self.stream.as_mut()
    }

    pub fn into_stream(self) -> Option<TcpStream> {
        self.stream
    }
}
