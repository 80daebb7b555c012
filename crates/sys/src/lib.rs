//! Socket options for BGP sessions that safe crates do not wrap.
//!
//! - [`set_tcp_md5`]: RFC 2385 TCP-MD5 signatures, per peer address, on a listening or a
//!   connecting socket (Linux `TCP_MD5SIG`).
//! - [`set_min_ttl`]: the receive side of GTSM (RFC 5082): drop segments whose TTL (hop limit)
//!   is below the minimum. The send side (TTL 255) is a plain `IP_TTL` that tokio sets.
//!
//! Contract: every function takes a borrowed open descriptor and returns the OS error as is.

use std::io;
use std::net::SocketAddr;
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
}
