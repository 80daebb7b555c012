//! Socket options for BGP sessions that safe crates do not wrap.
//!
//! - [`set_tcp_md5`]: RFC 2385 TCP-MD5 signatures, per peer address, on a listening or a
//!   connecting socket (Linux `TCP_MD5SIG`).
//! - [`set_min_ttl`]: the receive side of GTSM (RFC 5082): drop segments whose TTL (hop limit)
//!   is below the minimum. The send side (TTL 255) is a plain `IP_TTL` that tokio sets.
//! - [`set_recv_hop_limit`] and [`recv_with_hop_limit`]: a datagram with the TTL (hop limit) it
//!   arrived with, from an `IP_TTL`/`IPV6_HOPLIMIT` control message, for BFD's GTSM check
//!   (RFC 5881 section 5), which must see the value rather than a kernel minimum.
//!
//! Contract: every function takes a borrowed open descriptor and returns the OS error as is.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Linux `TCP_MD5SIG_MAXKEYLEN`.
pub const MAX_MD5_KEY_LEN: usize = 80;

/// `IP_MINTTL` and `IPV6_MINHOPCOUNT` from linux/in.h and linux/in6.h (not in every libc).
const IP_MINTTL: libc::c_int = 21;
const IPV6_MINHOPCOUNT: libc::c_int = 73;

/// `struct tcp_md5sig` from linux/tcp.h:
///
/// ```text
/// struct tcp_md5sig {
///     struct __kernel_sockaddr_storage tcpm_addr;   // 128 octets
///     __u8  tcpm_flags;
///     __u8  tcpm_prefixlen;
///     __u16 tcpm_keylen;
///     int   tcpm_ifindex;
///     __u8  tcpm_key[TCP_MD5SIG_MAXKEYLEN];         // 80 octets
/// };
/// ```
const SOCKADDR_STORAGE_LEN: usize = 128;
const TCP_MD5SIG_LEN: usize = SOCKADDR_STORAGE_LEN + 1 + 1 + 2 + 4 + MAX_MD5_KEY_LEN;

/// Encodes the option value: the peer's sockaddr in native layout, the key length and key.
fn md5sig_value(peer: SocketAddr, key: &[u8]) -> io::Result<[u8; TCP_MD5SIG_LEN]> {
    if key.len() > MAX_MD5_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "TCP-MD5 key of {} octets exceeds {MAX_MD5_KEY_LEN}",
                key.len()
            ),
        ));
    }
    let mut v = [0u8; TCP_MD5SIG_LEN];
    match peer {
        // struct sockaddr_in: family (native), port (network order), address.
        SocketAddr::V4(a) => {
            v[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            v[4..8].copy_from_slice(&a.ip().octets());
        }
        // struct sockaddr_in6: family, port, flowinfo, address, scope id.
        SocketAddr::V6(a) => {
            v[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            v[8..24].copy_from_slice(&a.ip().octets());
            v[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
        }
    }
    let keylen = SOCKADDR_STORAGE_LEN + 2;
    v[keylen..keylen + 2].copy_from_slice(&(key.len() as u16).to_ne_bytes());
    let key_at = SOCKADDR_STORAGE_LEN + 8;
    v[key_at..key_at + key.len()].copy_from_slice(key);
    Ok(v)
}

fn setsockopt(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &[u8],
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(value.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "option too long"))?;
    // SAFETY: `fd` is a borrowed open descriptor; `value` is valid for `len` bytes for the
    // duration of the call, and the kernel only reads it.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, value.as_ptr().cast(), len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets (or, with an empty key, removes) the TCP-MD5 key for segments to and from `peer` (its
/// port is ignored). On a listening socket the key applies to connections accepted from `peer`.
pub fn set_tcp_md5(fd: BorrowedFd<'_>, peer: SocketAddr, key: &[u8]) -> io::Result<()> {
    let value = md5sig_value(peer, key)?;
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &value)
}

/// Drops received segments whose TTL (IPv4) or hop limit (IPv6) is below `min` (GTSM: 255 minus
/// the number of hops allowed, so 255 for directly connected peers).
pub fn set_min_ttl(fd: BorrowedFd<'_>, ipv6: bool, min: u8) -> io::Result<()> {
    let value = libc::c_int::from(min).to_ne_bytes();
    if ipv6 {
        setsockopt(fd, libc::IPPROTO_IPV6, IPV6_MINHOPCOUNT, &value)
    } else {
        setsockopt(fd, libc::IPPROTO_IP, IP_MINTTL, &value)
    }
}

/// Asks the kernel to attach the TTL (`IP_RECVTTL`) or hop limit (`IPV6_RECVHOPLIMIT`) of each
/// received datagram, for [`recv_with_hop_limit`].
pub fn set_recv_hop_limit(fd: BorrowedFd<'_>, ipv6: bool) -> io::Result<()> {
    let on = libc::c_int::from(1u8).to_ne_bytes();
    if ipv6 {
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &on)
    } else {
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_RECVTTL, &on)
    }
}

/// One datagram read by [`recv_with_hop_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    /// Octets written to the buffer (a longer datagram is truncated to the buffer).
    pub len: usize,
    /// The sender; an IPv6 link-local sender carries the interface as its scope id.
    pub source: SocketAddr,
    /// The TTL or hop limit it arrived with, when the socket asked for it
    /// ([`set_recv_hop_limit`]).
    pub hop_limit: Option<u8>,
}

/// Room for one `IP_TTL` or `IPV6_HOPLIMIT` control message (an `int`) and one more, aligned.
const CONTROL_LEN: usize = 64;

/// Receives one datagram on a UDP socket with its sender and the TTL or hop limit it arrived
/// with. A non-blocking socket with nothing queued gives `WouldBlock`.
pub fn recv_with_hop_limit(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Datagram> {
    // u64 words keep the control buffer aligned for `struct cmsghdr`.
    let mut control = [0u64; CONTROL_LEN / 8];
    // SAFETY: an all-zero sockaddr_storage is a valid value of this plain C struct.
    #[allow(unsafe_code)]
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths); the fields are set
    // below.
    #[allow(unsafe_code)]
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&raw mut addr).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = CONTROL_LEN as _;
    // SAFETY: `fd` is a borrowed open descriptor; every pointer in `msg` points to a live local
    // (or to `buf`) of the length given next to it, for the duration of the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::recvmsg(fd.as_raw_fd(), &raw mut msg, 0) };
    let Ok(len) = usize::try_from(rc) else {
        return Err(io::Error::last_os_error());
    };
    let source = sockaddr(&addr, msg.msg_namelen as usize).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, "datagram without an IP source")
    })?;
    let used = (msg.msg_controllen as usize).min(CONTROL_LEN);
    let control: Vec<u8> = control.iter().flat_map(|w| w.to_ne_bytes()).collect();
    Ok(Datagram {
        len: len.min(buf.len()),
        source,
        hop_limit: hop_limit(&control[..used]),
    })
}

/// The sender's address from a `sockaddr_storage` the kernel filled in.
fn sockaddr(addr: &libc::sockaddr_storage, len: usize) -> Option<SocketAddr> {
    match libc::c_int::from(addr.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the kernel wrote a sockaddr_in (family AF_INET, length checked), which
            // sockaddr_storage is large and aligned enough to hold.
            #[allow(unsafe_code)]
            let a = unsafe { &*std::ptr::from_ref(addr).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for a sockaddr_in6.
            #[allow(unsafe_code)]
            let a = unsafe { &*std::ptr::from_ref(addr).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(SocketAddrV6::new(ip, port, a.sin6_flowinfo, a.sin6_scope_id).into())
        }
        _ => None,
    }
}

/// The TTL or hop limit in a control buffer: a sequence of `struct cmsghdr { size_t len; int
/// level; int type; }` each followed by its data, every header aligned to `size_t`. Parsed
/// by hand from the octets, so a malformed buffer cannot make us read out of bounds.
fn hop_limit(control: &[u8]) -> Option<u8> {
    const WORD: usize = std::mem::size_of::<usize>();
    let header = WORD + 8;
    let mut at = 0;
    while at + header <= control.len() {
        let len = usize::from_ne_bytes(control[at..at + WORD].try_into().ok()?);
        let level = i32::from_ne_bytes(control[at + WORD..at + WORD + 4].try_into().ok()?);
        let kind = i32::from_ne_bytes(control[at + WORD + 4..at + header].try_into().ok()?);
        if len < header || at + len > control.len() {
            return None;
        }
        let data = &control[at + header..at + len];
        let hop = (level == libc::IPPROTO_IP && kind == libc::IP_TTL)
            || (level == libc::IPPROTO_IPV6 && kind == libc::IPV6_HOPLIMIT);
        if hop && data.len() >= 4 {
            let value = i32::from_ne_bytes(data[..4].try_into().ok()?);
            return u8::try_from(value).ok();
        }
        at += len.div_ceil(WORD) * WORD;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn md5sig_layout() {
        let v = md5sig_value("10.0.0.2:179".parse().unwrap(), b"secret").unwrap();
        assert_eq!(u16::from_ne_bytes([v[0], v[1]]), libc::AF_INET as u16);
        assert_eq!(&v[4..8], &[10, 0, 0, 2]);
        assert_eq!(u16::from_ne_bytes([v[130], v[131]]), 6);
        assert_eq!(&v[136..142], b"secret");
        assert!(md5sig_value("10.0.0.2:179".parse().unwrap(), &[0; 81]).is_err());
    }

    #[test]
    fn options_apply_to_real_sockets() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        set_tcp_md5(v4.as_fd(), "127.0.0.2:0".parse().unwrap(), b"secret").unwrap();
        set_tcp_md5(v4.as_fd(), "127.0.0.2:0".parse().unwrap(), b"").unwrap();
        set_min_ttl(v4.as_fd(), false, 255).unwrap();
        let v6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        set_tcp_md5(v6.as_fd(), "[::2]:0".parse().unwrap(), b"secret").unwrap();
        set_min_ttl(v6.as_fd(), true, 254).unwrap();
    }

    /// Sends to ourselves over loopback with a chosen TTL (hop limit) and reads it back.
    fn hop_limit_round_trip(bind: &str, ipv6: bool, hops: u32) -> Datagram {
        let rx = std::net::UdpSocket::bind(bind).unwrap();
        set_recv_hop_limit(rx.as_fd(), ipv6).unwrap();
        let tx = socket2::Socket::new(
            if ipv6 {
                socket2::Domain::IPV6
            } else {
                socket2::Domain::IPV4
            },
            socket2::Type::DGRAM,
            None,
        )
        .unwrap();
        if ipv6 {
            tx.set_unicast_hops_v6(hops).unwrap();
        } else {
            tx.set_ttl_v4(hops).unwrap();
        }
        let to = rx.local_addr().unwrap();
        tx.send_to(b"hello", &to.into()).unwrap();
        let mut buf = [0u8; 3];
        recv_with_hop_limit(rx.as_fd(), &mut buf).unwrap()
    }

    #[test]
    fn datagrams_carry_their_hop_limit() {
        let d = hop_limit_round_trip("127.0.0.1:0", false, 255);
        assert_eq!(d.hop_limit, Some(255));
        assert_eq!(d.len, 3, "truncated to the buffer");
        assert!(d.source.ip().is_loopback());
        assert_eq!(
            hop_limit_round_trip("127.0.0.1:0", false, 7).hop_limit,
            Some(7)
        );
        let d = hop_limit_round_trip("[::1]:0", true, 254);
        assert_eq!(d.hop_limit, Some(254));
        assert!(d.source.is_ipv6());
        // Without the option there is no control message.
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
        let got = recv_with_hop_limit(rx.as_fd(), &mut [0u8; 8]).unwrap();
        assert_eq!((got.len, got.hop_limit), (1, None));
    }

    #[test]
    fn control_parser_rejects_garbage() {
        assert_eq!(hop_limit(&[]), None);
        assert_eq!(hop_limit(&[0xff; 64]), None);
        let word = std::mem::size_of::<usize>();
        let mut c = Vec::new();
        c.extend_from_slice(&(word + 8 + 4).to_ne_bytes());
        c.extend_from_slice(&libc::IPPROTO_IP.to_ne_bytes());
        c.extend_from_slice(&libc::IP_TTL.to_ne_bytes());
        c.extend_from_slice(&64i32.to_ne_bytes());
        assert_eq!(hop_limit(&c), Some(64));
        c.truncate(c.len() - 1);
        assert_eq!(hop_limit(&c), None, "a message longer than the buffer");
    }
}
