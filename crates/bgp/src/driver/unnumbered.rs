//! Unnumbered peering: a BGP session on an interface with no configured addresses, with the
//! neighbour found through IPv6 Router Advertisements, as FRR's `neighbor IFNAME interface`
//! does.
//!
//! Each side sends RAs on the link and learns the other's link-local address from the source of
//! the RAs it receives; the TCP session then runs between the two link-local addresses, and
//! IPv4 routes carry the IPv6 link-local next hop (RFC 8950 extended next hop). FRR learns our
//! address only from our RAs (zebra turns each RA source into a "connected neighbour" that
//! bgpd connects to), so sending them is what makes FRR peer with us at all.
//!
//! Contract:
//! - [`open`] creates the interface's sockets synchronously, so a missing interface or a
//!   missing CAP_NET_RAW is reported by `Speaker::spawn`.
//! - [`NdSocket::run`] sends an RA to ff02::1 with hop limit 255 and router lifetime 0 (we are
//!   nobody's default router) once a second for the first [`FAST_ADVERTS`], then every
//!   [`ADVERT_INTERVAL`], and at once (at most once per [`MIN_ADVERT_GAP`]) when it learns a
//!   neighbour or receives a Router Solicitation.
//! - It uses only messages that pass the checks of RFC 4861 section 6.1 ([`receive`]): hop
//!   limit 255, correct checksum, code 0, and for an RA a link-local source.
//! - It reports `Event::Neighbor` when the neighbour's address is first learned and when it
//!   changes ([`Neighbors::heard`]), never for a repeat. A different sender replaces the known
//!   neighbour only after that one has been silent for [`NEIGHBOR_STALE`], so two routers on one
//!   link cannot make the session flap.
//! - It stops when the speaker's event loop is gone.

pub mod nd;

use std::io::Read as _;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, SockFilter, Socket, Type};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use self::nd::{
    IcmpView, Ipv6View, ND_HOP_LIMIT, NEXT_HEADER_ICMPV6, RouterAdvert, TYPE_ROUTER_ADVERT,
    TYPE_ROUTER_SOLICIT,
};
use super::Event;
use crate::error::Error;

/// RAs sent once a second after start, so a neighbour that starts with us learns us quickly.
pub const FAST_ADVERTS: u32 = 4;
/// The steady interval between our RAs (FRR's default for unnumbered interfaces).
pub const ADVERT_INTERVAL: Duration = Duration::from_secs(10);
/// The least time between two of our RAs.
pub const MIN_ADVERT_GAP: Duration = Duration::from_secs(1);
/// How long a neighbour may be silent before another sender on the link replaces it.
pub const NEIGHBOR_STALE: Duration = Duration::from_secs(30);

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// A validated message from the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NdMessage {
    RouterAdvert {
        source: Ipv6Addr,
        advert: RouterAdvert,
    },
    /// Someone asks for RAs; `source` is `::` for a node without an address yet.
    RouterSolicit { source: Ipv6Addr },
}

/// Why a received packet was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    Malformed(Error),
    /// Not ICMPv6 right after the fixed header (ND messages carry no extension headers).
    NotIcmpv6 {
        next_header: u8,
    },
    /// Routed from elsewhere, or forged off-link (RFC 4861 section 6.1).
    HopLimit(u8),
    /// An RA must come from a link-local address (RFC 4861 section 6.1.2).
    Source(Ipv6Addr),
    Checksum,
    Code(u8),
    /// An ICMPv6 type we do not use.
    Type(u8),
}

/// Validates an IPv6 packet as RFC 4861 section 6.1 asks and decodes the RS or RA in it.
pub fn receive(packet: &[u8]) -> Result<NdMessage, Ignored> {
    let ip = Ipv6View::new_checked(packet).map_err(Ignored::Malformed)?;
    if ip.version() != 6 || ip.next_header() != NEXT_HEADER_ICMPV6 {
        return Err(Ignored::NotIcmpv6 {
            next_header: ip.next_header(),
        });
    }
    if ip.hop_limit() != ND_HOP_LIMIT {
        return Err(Ignored::HopLimit(ip.hop_limit()));
    }
    let icmp = IcmpView::new_checked(ip.payload()).map_err(Ignored::Malformed)?;
    if !icmp.checksum_ok(ip.source(), ip.destination()) {
        return Err(Ignored::Checksum);
    }
    if icmp.code() != 0 {
        return Err(Ignored::Code(icmp.code()));
    }
    let source = ip.source();
    match icmp.msg_type() {
        TYPE_ROUTER_ADVERT => {
            if !source.is_unicast_link_local() {
                return Err(Ignored::Source(source));
            }
            let advert = RouterAdvert::parse(icmp.as_bytes()).map_err(Ignored::Malformed)?;
            Ok(NdMessage::RouterAdvert { source, advert })
        }
        TYPE_ROUTER_SOLICIT => {
            if !source.is_unicast_link_local() && !source.is_unspecified() {
                return Err(Ignored::Source(source));
            }
            Ok(NdMessage::RouterSolicit { source })
        }
        other => Err(Ignored::Type(other)),
    }
}

/// Which link-local address is our neighbour on one interface.
#[derive(Debug, Clone)]
pub struct Neighbors {
    current: Option<(Ipv6Addr, Instant)>,
    stale_after: Duration,
}

impl Neighbors {
    pub fn new(stale_after: Duration) -> Self {
        Neighbors {
            current: None,
            stale_after,
        }
    }

    /// The neighbour's address, once one is known.
    pub fn current(&self) -> Option<Ipv6Addr> {
        self.current.map(|(a, _)| a)
    }

    /// Notes an RA from `source` at `now`; returns the address when the neighbour is new or
    /// has changed.
    pub fn heard(&mut self, source: Ipv6Addr, now: Instant) -> Option<Ipv6Addr> {
        match &mut self.current {
            Some((addr, last)) if *addr == source => {
                *last = now;
                None
            }
            Some((_, last)) if now.saturating_duration_since(*last) < self.stale_after => None,
            _ => {
                self.current = Some((source, now));
                Some(source)
            }
        }
    }
}

/// The sockets of one unnumbered interface.
#[derive(Debug)]
pub(super) struct NdSocket {
    interface: String,
    ifindex: u32,
    /// AF_PACKET, cooked: whole IPv6 packets (the hop limit is in the header), filtered in the
    /// kernel to ICMPv6 RS and RA received on this interface. Held as a tokio `UdpSocket`, whose
    /// safe constructor and `recv` work on any datagram socket; `AsyncFd::new` is deprecated as
    /// unsound and its replacement is `unsafe`.
    rx: tokio::net::UdpSocket,
    /// Raw ICMPv6 bound to the interface, for sending only.
    tx: Socket,
}

/// Opens the sockets of `interface` and makes sure it runs IPv6.
pub(super) fn open(interface: &str) -> std::io::Result<NdSocket> {
    let tx = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    let ifindex = rustix::net::netdevice::name_to_index(&tx, interface)?;
    enable_ipv6(interface);
    tx.bind_device(Some(interface.as_bytes()))?;
    tx.set_multicast_if_v6(ifindex)?;
    tx.set_multicast_hops_v6(ND_HOP_LIMIT.into())?;
    tx.set_unicast_hops_v6(ND_HOP_LIMIT.into())?;
    tx.set_multicast_loop_v6(false)?;
    // Never queue what arrives on the sending socket: the packet socket reads.
    tx.attach_filter(&[SockFilter::new(BPF_RET_K, 0, 0, 0)])?;
    tx.set_nonblocking(true)?;

    const ETH_P_IPV6: u16 = 0x86dd;
    let protocol = Protocol::from(i32::from(ETH_P_IPV6.to_be()));
    let rx = Socket::new(Domain::PACKET, Type::DGRAM, Some(protocol))?;
    rx.attach_filter(&packet_filter(ifindex))?;
    rx.set_nonblocking(true)?;
    // Packets of any interface may have queued before the filter was attached.
    let mut buf = [0u8; 2048];
    while (&rx).read(&mut buf).is_ok() {}
    Ok(NdSocket {
        interface: interface.to_owned(),
        ifindex,
        rx: tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(rx))?,
        tx,
    })
}

/// Clears `disable_ipv6` on the interface (in the calling thread's namespace) if it is set:
/// without IPv6 there is no link-local address to peer from. Best effort: a failure shows up
/// later as RAs that cannot be sent.
fn enable_ipv6(interface: &str) {
    let path = format!("/proc/sys/net/ipv6/conf/{interface}/disable_ipv6");
    match std::fs::read_to_string(&path) {
        Ok(v) if v.trim() == "1" => match std::fs::write(&path, "0") {
            Ok(()) => tracing::info!(interface, "enabled IPv6 for unnumbered BGP"),
            Err(err) => tracing::warn!(interface, %err, "cannot enable IPv6"),
        },
        Ok(_) => {}
        Err(err) => tracing::debug!(interface, %err, "cannot read disable_ipv6"),
    }
}

// Classic BPF (linux/filter.h), for the kernel-side filter of the packet socket.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_LD_B_ABS: u16 = 0x30;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGT_K: u16 = 0x25;
const BPF_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;
/// `SKF_AD_OFF + SKF_AD_PKTTYPE` and `+ SKF_AD_IFINDEX`: metadata loads.
const SKF_AD_PKTTYPE: u32 = 0xffff_f000 + 4;
const SKF_AD_IFINDEX: u32 = 0xffff_f000 + 8;
/// PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST: what arrived for us, not what we sent.
const PACKET_MULTICAST: u32 = 2;

/// Accepts IPv6 packets that arrived on `ifindex` with ICMPv6 type RS or RA right after the
/// fixed header; everything else stays in the kernel. Jump offsets count from the next
/// instruction; the last instruction drops.
fn packet_filter(ifindex: u32) -> [SockFilter; 11] {
    [
        SockFilter::new(BPF_LD_W_ABS, 0, 0, SKF_AD_PKTTYPE),
        SockFilter::new(BPF_JGT_K, 8, 0, PACKET_MULTICAST),
        SockFilter::new(BPF_LD_W_ABS, 0, 0, SKF_AD_IFINDEX),
        SockFilter::new(BPF_JEQ_K, 0, 6, ifindex),
        SockFilter::new(BPF_LD_B_ABS, 0, 0, 6),
        SockFilter::new(BPF_JEQ_K, 0, 4, NEXT_HEADER_ICMPV6.into()),
        SockFilter::new(BPF_LD_B_ABS, 0, 0, 40),
        SockFilter::new(BPF_JGE_K, 0, 2, TYPE_ROUTER_SOLICIT.into()),
        SockFilter::new(BPF_JGT_K, 1, 0, TYPE_ROUTER_ADVERT.into()),
        SockFilter::new(BPF_RET_K, 0, 0, 0xffff),
        SockFilter::new(BPF_RET_K, 0, 0, 0),
    ]
}

impl NdSocket {
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Advertises us and reports the neighbour of unnumbered peer `peer` to the event loop
    /// until the loop is gone.
    pub async fn run(self, peer: usize, events: mpsc::UnboundedSender<Event>) {
        let span = tracing::info_span!("unnumbered", interface = %self.interface);
        self.advertise_and_listen(peer, events)
            .instrument(span)
            .await;
    }

    async fn advertise_and_listen(self, peer: usize, events: mpsc::UnboundedSender<Event>) {
        let mut neighbors = Neighbors::new(NEIGHBOR_STALE);
        let mut sent = 0u32;
        let mut last_sent: Option<tokio::time::Instant> = None;
        let mut next = tokio::time::Instant::now();
        let mut buf = vec![0u8; 2048];
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next) => {
                    let now = tokio::time::Instant::now();
                    match self.advertise() {
                        Ok(()) => {
                            sent += 1;
                            last_sent = Some(now);
                        }
                        // No usable link-local address yet (DAD running): retry soon.
                        Err(err) => tracing::debug!(%err, "cannot send a router advertisement"),
                    }
                    let interval = if sent < FAST_ADVERTS { MIN_ADVERT_GAP } else { ADVERT_INTERVAL };
                    next = now + interval;
                }
                read = self.rx.recv(&mut buf) => {
                    let n = match read {
                        Ok(n) => n,
                        Err(err) => {
                            tracing::warn!(%err, "cannot read neighbor discovery; unnumbered peering stops");
                            return;
                        }
                    };
                    let soon = match receive(&buf[..n]) {
                        Ok(NdMessage::RouterAdvert { source, .. }) => {
                            match neighbors.heard(source, Instant::now()) {
                                Some(address) => {
                                    tracing::info!(%address, "neighbour learned from a router advertisement");
                                    if events.send(Event::Neighbor { peer, address }).is_err() {
                                        return;
                                    }
                                    true
                                }
                                None => false,
                            }
                        }
                        Ok(NdMessage::RouterSolicit { .. }) => true,
                        Err(why) => {
                            tracing::debug!(?why, "ignoring a neighbor discovery packet");
                            false
                        }
                    };
                    if soon {
                        let earliest = last_sent
                            .map_or_else(tokio::time::Instant::now, |t| t + MIN_ADVERT_GAP);
                        next = next.min(earliest.max(tokio::time::Instant::now()));
                    }
                }
                () = events.closed() => return,
            }
        }
    }

    fn advertise(&self) -> std::io::Result<()> {
        // No source link-layer option: RFC 4861 section 4.2 allows leaving it out, and
        // neither the kernel nor FRR needs it to learn us.
        let msg = RouterAdvert::announcement(None).to_bytes();
        let dst = SocketAddrV6::new(ALL_NODES, 0, 0, self.ifindex);
        self.tx.send_to(&msg, &SockAddr::from(dst)).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::nd::tests::{FRR_RA, KERNEL_RS, hex};
    use super::nd::{IcmpView, fill_checksum};
    use super::*;

    fn ll(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// Rewrites the IPv6 source of `packet` and fixes the ICMPv6 checksum.
    fn with_source(packet: &[u8], src: Ipv6Addr) -> Vec<u8> {
        let mut p = packet.to_vec();
        p[8..24].copy_from_slice(&src.octets());
        let dst = Ipv6View::new_checked(&p).unwrap().destination();
        fill_checksum(src, dst, &mut p[40..]);
        p
    }

    #[test]
    fn frr_advert_is_accepted() {
        let got = receive(&hex(FRR_RA)).unwrap();
        let NdMessage::RouterAdvert { source, advert } = got else {
            panic!("{got:?}")
        };
        assert_eq!(source, ll("fe80::fc64:74ff:fe19:b013"));
        assert_eq!(advert.router_lifetime, 30);
    }

    #[test]
    fn advert_without_hop_limit_255_is_ignored() {
        for hop_limit in [0, 1, 64, 254] {
            let mut p = hex(FRR_RA);
            // The hop limit is not in the pseudo-header: the checksum still verifies.
            p[7] = hop_limit;
            assert_eq!(receive(&p), Err(Ignored::HopLimit(hop_limit)));
        }
    }

    #[test]
    fn advert_from_a_global_or_unspecified_address_is_ignored() {
        for src in ["2001:db8::1", "::"] {
            let p = with_source(&hex(FRR_RA), ll(src));
            assert_eq!(receive(&p), Err(Ignored::Source(ll(src))));
        }
    }

    #[test]
    fn bad_checksum_code_type_and_header_are_ignored() {
        let mut p = hex(FRR_RA);
        p[45] ^= 0xff; // cur hop limit, under the checksum
        assert_eq!(receive(&p), Err(Ignored::Checksum));

        let mut p = hex(FRR_RA);
        p[41] = 1; // code
        let (src, dst) = (ll("fe80::fc64:74ff:fe19:b013"), ll("ff02::1"));
        fill_checksum(src, dst, &mut p[40..]);
        assert_eq!(receive(&p), Err(Ignored::Code(1)));

        let mut p = hex(FRR_RA);
        p[40] = 135; // neighbour solicitation
        fill_checksum(src, dst, &mut p[40..]);
        assert_eq!(receive(&p), Err(Ignored::Type(135)));

        let mut p = hex(FRR_RA);
        p[6] = 0; // hop-by-hop options header first
        assert_eq!(receive(&p), Err(Ignored::NotIcmpv6 { next_header: 0 }));

        assert!(matches!(
            receive(&hex(FRR_RA)[..50]),
            Err(Ignored::Malformed(_))
        ));
    }

    #[test]
    fn solicitations_are_accepted_from_link_local_or_unspecified() {
        let rs = hex(KERNEL_RS);
        assert_eq!(
            receive(&rs),
            Ok(NdMessage::RouterSolicit {
                source: ll("fe80::30a2:6eff:feb1:153b")
            })
        );
        let p = with_source(&rs, Ipv6Addr::UNSPECIFIED);
        assert!(IcmpView::new_checked(&p[40..]).is_ok());
        assert_eq!(
            receive(&p),
            Ok(NdMessage::RouterSolicit {
                source: Ipv6Addr::UNSPECIFIED
            })
        );
        let p = with_source(&rs, ll("2001:db8::2"));
        assert_eq!(receive(&p), Err(Ignored::Source(ll("2001:db8::2"))));
    }

    #[test]
    fn neighbour_is_learned_once_and_replaced_only_when_stale() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let (a, b) = (ll("fe80::a"), ll("fe80::b"));
        let mut n = Neighbors::new(Duration::from_secs(30));
        assert_eq!(n.current(), None);
        assert_eq!(n.heard(a, s(0)), Some(a));
        assert_eq!(n.heard(a, s(10)), None);
        // Another router while `a` is fresh: ignored.
        assert_eq!(n.heard(b, s(20)), None);
        assert_eq!(n.current(), Some(a));
        assert_eq!(n.heard(a, s(35)), None);
        // `a` silent for 30 s: `b` takes over, and `a` is then the newcomer.
        assert_eq!(n.heard(b, s(65)), Some(b));
        assert_eq!(n.heard(a, s(66)), None);
        assert_eq!(n.current(), Some(b));
    }
}
