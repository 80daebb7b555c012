//! TCP plumbing for one BGP connection: a reader task that forwards bytes to the speaker's
//! event loop and a writer task that drains a queue, so the event loop never blocks on a slow
//! or dead peer.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Event;
use crate::session::ConnId;

/// How many queued octets the writer gathers into one write.
const WRITE_BATCH: usize = 256 * 1024;

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
        // Everything queued goes out in one write: a table dump of thousands of UPDATEs costs a
        // few syscalls, not one each.
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        while let Some(data) = rx.recv().await {
            batch.clear();
            batch.extend_from_slice(&data);
            while batch.len() < WRITE_BATCH
                && let Ok(more) = rx.try_recv()
            {
                batch.extend_from_slice(&more);
            }
            if wr.write_all(&batch).await.is_err() {
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

/// How to open an outbound connection.
#[derive(Debug, Clone)]
pub(super) struct ConnectOptions {
    pub local: Option<SocketAddr>,
    pub timeout: Duration,
    pub md5_key: Option<Vec<u8>>,
    pub ttl_security: bool,
}

/// Connects to `remote` within `options.timeout`, with TCP-MD5 and GTSM set before the SYN.
pub(super) async fn connect(
    remote: SocketAddr,
    options: &ConnectOptions,
) -> std::io::Result<TcpStream> {
    let socket = if remote.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(local) = options.local {
        socket.bind(local)?;
    }
    if let Some(key) = &options.md5_key {
        clos_sys::set_tcp_md5(socket.as_fd(), remote, key)?;
    }
    if options.ttl_security {
        gtsm(socket.as_fd(), remote.is_ipv6())?;
    }
    let timeout = options.timeout;
    match tokio::time::timeout(timeout, socket.connect(remote)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("connect to {remote} timed out after {timeout:?}"),
        )),
    }
}

/// Lets `listener` accept TCP-MD5 signed connections from `peer` with `key`. A dual-stack
/// listener sees IPv4 peers as IPv4-mapped IPv6 addresses, so the key is set for that form too.
pub(super) fn listen_md5(
    listener: &tokio::net::TcpListener,
    peer: IpAddr,
    key: &[u8],
) -> std::io::Result<()> {
    let local_v6 = listener.local_addr()?.is_ipv6();
    let peer = match (peer, local_v6) {
        (IpAddr::V4(v4), true) => IpAddr::V6(v4.to_ipv6_mapped()),
        (IpAddr::V6(_), false) => return Ok(()), // an IPv4 listener never sees this peer
        (p, _) => p,
    };
    clos_sys::set_tcp_md5(listener.as_fd(), SocketAddr::new(peer, 0), key)
}

/// GTSM on an accepted connection: from now on only segments with TTL 255 are accepted, and
/// ours leave with 255.
pub(super) fn ttl_security(stream: &TcpStream, ipv6: bool) -> std::io::Result<()> {
    gtsm(stream.as_fd(), ipv6)
}

fn gtsm(fd: std::os::fd::BorrowedFd<'_>, ipv6: bool) -> std::io::Result<()> {
    if ipv6 {
        rustix::net::sockopt::set_ipv6_unicast_hops(fd, Some(255))?;
    } else {
        rustix::net::sockopt::set_ip_ttl(fd, 255)?;
    }
    clos_sys::set_min_ttl(fd, ipv6, 255)
}
