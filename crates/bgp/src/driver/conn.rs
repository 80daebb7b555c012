//! TCP plumbing for one BGP connection: a reader task that forwards bytes to the speaker's
//! event loop and a writer task that drains a queue, so the event loop never blocks on a slow
//! or dead peer.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Event;
use crate::session::ConnId;

/// The speaker's end of a running connection. Dropping it closes the connection after the
/// queued bytes are written.
#[derive(Debug)]
pub(super) struct ConnHandle {
    local: Option<SocketAddr>,
    tx: mpsc::UnboundedSender<Bytes>,
    reader: JoinHandle<()>,
}

impl ConnHandle {
    /// Our end of the connection: its address is our next hop towards this peer.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// Queues bytes for the peer.
    pub fn send(&self, data: Bytes) {
        // A send error means the writer already failed; the reader reports the close.
        let _ = self.tx.send(data);
    }
}

impl Drop for ConnHandle {
    fn drop(&mut self) {
        // The writer flushes what is queued and shuts the socket down when `tx` drops.
        self.reader.abort();
    }
}

/// Starts the reader and writer tasks for `stream`.
pub(super) fn spawn(
    stream: TcpStream,
    id: ConnId,
    peer: usize,
    events: mpsc::UnboundedSender<Event>,
) -> ConnHandle {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().ok();
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            if wr.write_all(&data).await.is_err() {
                return;
            }
        }
        let _ = wr.shutdown().await;
    });
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let data = Bytes::copy_from_slice(&buf[..n]);
                    if events
                        .send(Event::Read {
                            peer,
                            conn: id,
                            data,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = events.send(Event::ReadClosed { peer, conn: id });
    });
    ConnHandle { local, tx, reader }
}

/// Connects to `remote` (from `local` when given) within `timeout`.
pub(super) async fn connect(
    remote: SocketAddr,
    local: Option<SocketAddr>,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    let socket = if remote.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(local) = local {
        socket.bind(local)?;
    }
    match tokio::time::timeout(timeout, socket.connect(remote)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("connect to {remote} timed out after {timeout:?}"),
        )),
    }
}
