//! The host plumbing the agent needs besides routes: its own dummy interface, the addresses of
//! the interfaces it owns, and the sysctls that make the host a router for its endpoints.
//!
//! Contract:
//! - [`Host`] works through netlink in the namespace it was opened in, like [`crate::Fib`]; it
//!   only acts on the interfaces it is given, which must be the agent's own (its dummy `clos0`
//!   and the host-side interfaces of its endpoints).
//! - Addresses that [`Host`] adds carry [`CLOS_PROTOCOL`] as their `IFA_PROTO` (Linux 6.1 and
//!   later keep it; older kernels ignore it), and IPv6 ones are added with `IFA_F_NODAD`, so
//!   they are usable at once and never refused by duplicate address detection.
//! - [`Host::sync_addresses`] makes an interface's addresses exactly the desired ones, with one
//!   exception: an IPv6 link-local address (`fe80::/10`) that is not desired is deleted only if
//!   it carries our tag. The kernel's own link-local address (which IPv6 needs on every
//!   interface) therefore stays, while a link-local address Clos added (the endpoints'
//!   gateway `fe80::1/64`) goes once it is no longer desired. Other addresses that are not
//!   desired are deleted whoever added them: the interface is ours.
//! - [`enable_forwarding`] and [`prepare_endpoint_interface`] write `/proc/sys/net`, which
//!   shows the network namespace of the *calling thread* (the kernel resolves
//!   `/proc/sys/net` against the namespace of the task that opens the file, so a thread that
//!   entered a namespace with `setns(2)` configures that namespace, whatever the rest of the
//!   process does; `/proc/net`, unlike it, follows the process). A value already in place is
//!   not written again, so both work on a read-only `/proc/sys` once it is set up.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, Parseable};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressProtocol,
};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};

use crate::fib::CLOS_PROTOCOL;
use crate::netlink::uapi::*;
use crate::netlink::{Limits, Netlink, push_message};
use crate::{Error, KernelError};

/// The agent's handle on the host's interfaces and addresses. Synchronous; needs
/// `CAP_NET_ADMIN`.
#[derive(Debug)]
pub struct Host {
    nl: Netlink,
}

/// What [`Host::sync_addresses`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressReport {
    pub added: Vec<IpNet>,
    pub deleted: Vec<IpNet>,
}

impl AddressReport {
    /// True if the interface already had exactly the desired addresses.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.deleted.is_empty()
    }
}

/// An interface as the kernel describes it.
#[derive(Debug, Clone)]
struct Link {
    index: u32,
    name: String,
    kind: Option<InfoKind>,
    up: bool,
}

/// An address as dumped.
#[derive(Debug, Clone, Copy)]
struct Address {
    net: IpNet,
    /// Tagged with our protocol.
    ours: bool,
}

enum LinkRef<'a> {
    Name(&'a str),
    Index(u32),
}

impl Host {
    /// Opens a handle in the calling thread's network namespace.
    pub fn open() -> Result<Host, Error> {
        Self::open_at(None)
    }

    /// Opens a handle on the network namespace at `netns` (`/run/netns/NAME`,
    /// `/proc/PID/ns/net`). The calling thread stays where it is.
    pub fn open_in_netns(netns: impl AsRef<Path>) -> Result<Host, Error> {
        Self::open_at(Some(netns.as_ref()))
    }

    fn open_at(netns: Option<&Path>) -> Result<Host, Error> {
        let limits = Limits {
            socket_buffer: 1024 * 1024,
            ..Limits::default()
        };
        Ok(Host {
            nl: Netlink::open(netns, limits)?,
        })
    }

    /// The index of the interface `name`, `None` if there is no such interface.
    pub fn ifindex(&mut self, name: &str) -> Result<Option<u32>, Error> {
        validate_name(name)?;
        Ok(self.link(LinkRef::Name(name))?.map(|l| l.index))
    }

    /// The interface through which `addr` is directly reachable (on one of its subnets), as
    /// the kernel's route lookup (`ip route get ADDR`) says; `None` when the kernel reaches it
    /// through a gateway, not at all, or locally. A BGP next hop on a numbered session is such
    /// an address. An IPv6 link-local address names no interface by itself: always `None`.
    pub fn connected_interface(&mut self, addr: IpAddr) -> Result<Option<u32>, Error> {
        if let IpAddr::V6(v6) = addr
            && v6.is_unicast_link_local()
        {
            return Ok(None);
        }
        let mut request = RouteMessage::default();
        let (family, len) = match addr {
            IpAddr::V4(_) => (AddressFamily::Inet, 32),
            IpAddr::V6(_) => (AddressFamily::Inet6, 128),
        };
        request.header.address_family = family;
        request.header.destination_prefix_length = len;
        request
            .attributes
            .push(RouteAttribute::Destination(RouteAddress::from(addr)));
        let reply = self.nl.get(
            "a route lookup",
            RTM_GETROUTE,
            &request,
            RTM_NEWROUTE,
            |payload| {
                let msg =
                    RouteMessage::parse(payload).map_err(|e| Error::decode("RTM_NEWROUTE", e))?;
                let mut oif = None;
                for attr in &msg.attributes {
                    match attr {
                        RouteAttribute::Oif(i) => oif = Some(*i),
                        RouteAttribute::Gateway(_) | RouteAttribute::Via(_) => return Ok(None),
                        _ => {}
                    }
                }
                Ok(oif.filter(|_| msg.header.kind == RouteType::Unicast))
            },
        )?;
        match reply {
            Ok(oif) => Ok(oif),
            Err(e) if [ENETUNREACH, EHOSTUNREACH, ENETDOWN].contains(&e.errno) => Ok(None),
            Err(source) => Err(Error::RouteLookup { addr, source }),
        }
    }

    /// Creates the dummy interface `name` unless it exists, sets it up and returns its index.
    /// Fails with [`Error::NotDummy`] if an interface of that name exists and is not a dummy, and
    /// with [`Error::DummyUnsupported`] on a kernel built without the dummy driver.
    pub fn ensure_dummy(&mut self, name: &str) -> Result<u32, Error> {
        validate_name(name)?;
        let link = match self.link(LinkRef::Name(name))? {
            Some(link) => link,
            None => {
                let mut msg = LinkMessage::default();
                msg.header.flags = LinkFlags::Up;
                msg.header.change_mask = LinkFlags::Up;
                msg.attributes = vec![
                    LinkAttribute::IfName(name.to_owned()),
                    LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Dummy)]),
                ];
                match self.one(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &msg)? {
                    // EEXIST: created concurrently; the kind check below decides.
                    None => {}
                    Some(e) if e.errno == EEXIST => {}
                    Some(source) if source.errno == EOPNOTSUPP => {
                        return Err(Error::DummyUnsupported {
                            name: name.to_owned(),
                            source,
                        });
                    }
                    Some(source) => {
                        return Err(Error::Link {
                            name: name.to_owned(),
                            op: "create it as a dummy interface",
                            source,
                        });
                    }
                }
                self.link(LinkRef::Name(name))?.ok_or_else(|| Error::Link {
                    name: name.to_owned(),
                    op: "keep it: it vanished right after its creation",
                    source: KernelError::new(ENODEV, None),
                })?
            }
        };
        if link.kind != Some(InfoKind::Dummy) {
            return Err(Error::NotDummy {
                name: link.name,
                kind: link.kind.map_or_else(
                    || "kindless (physical or loopback)".to_owned(),
                    |k| k.to_string(),
                ),
            });
        }
        if !link.up {
            self.set_up(link.index)?;
        }
        Ok(link.index)
    }

    /// Sets the interface up (administratively; nothing happens if it is up already).
    pub fn set_up(&mut self, ifindex: u32) -> Result<(), Error> {
        let mut msg = LinkMessage::default();
        msg.header.index = ifindex;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        match self.one(RTM_NEWLINK, 0, &msg)? {
            None => Ok(()),
            Some(source) => Err(Error::Link {
                name: self.describe(ifindex),
                op: "set it up",
                source,
            }),
        }
    }

    /// Deletes the interface. A missing one is fine.
    pub fn delete_link(&mut self, ifindex: u32) -> Result<(), Error> {
        let mut msg = LinkMessage::default();
        msg.header.index = ifindex;
        match self.one(RTM_DELLINK, 0, &msg)? {
            None => Ok(()),
            Some(e) if e.errno == ENODEV => Ok(()),
            Some(source) => Err(Error::Link {
                name: self.describe(ifindex),
                op: "delete it",
                source,
            }),
        }
    }

    /// The interface's IPv4 and IPv6 addresses (with their prefix lengths), IPv4 first.
    pub fn addresses(&mut self, ifindex: u32) -> Result<Vec<IpNet>, Error> {
        Ok(self
            .dump_addresses(ifindex)?
            .into_iter()
            .map(|a| a.net)
            .collect())
    }

    /// Adds an address: tagged with our protocol, and for IPv6 without duplicate address
    /// detection. An address that is already there is fine (even if someone else added it).
    pub fn add_address(&mut self, ifindex: u32, addr: IpNet) -> Result<(), Error> {
        let msg = address_message(ifindex, addr, true);
        match self.one(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &msg)? {
            None => Ok(()),
            Some(e) if e.errno == EEXIST => Ok(()),
            Some(source) => Err(Error::Address {
                interface: self.describe(ifindex),
                addr,
                op: "add",
                source,
            }),
        }
    }

    /// Deletes an address. An absent one (or a missing interface) is fine.
    pub fn del_address(&mut self, ifindex: u32, addr: IpNet) -> Result<(), Error> {
        let msg = address_message(ifindex, addr, false);
        match self.one(RTM_DELADDR, 0, &msg)? {
            None => Ok(()),
            Some(e) if e.errno == EADDRNOTAVAIL || e.errno == ENODEV => Ok(()),
            Some(source) => Err(Error::Address {
                interface: self.describe(ifindex),
                addr,
                op: "delete",
                source,
            }),
        }
    }

    /// Makes our addresses on the interface exactly `desired`: missing ones are added (tagged
    /// ours), and an undesired address is deleted only if it carries our tag. Addresses of
    /// others (the kernel's link-local, `127.0.0.1` on `lo`, one added by hand) are never
    /// touched, so this is safe on `lo` too. Deletes go first, so an address can change its
    /// prefix length. Every change is attempted; the first failure is returned after that.
    pub fn sync_addresses(
        &mut self,
        ifindex: u32,
        desired: &[IpNet],
    ) -> Result<AddressReport, Error> {
        let current = self.dump_addresses(ifindex)?;
        let mut want: Vec<IpNet> = Vec::with_capacity(desired.len());
        for net in desired {
            if !want.contains(net) {
                want.push(*net);
            }
        }
        let delete: Vec<IpNet> = current
            .iter()
            .filter(|a| !want.contains(&a.net) && a.ours)
            .map(|a| a.net)
            .collect();
        let add: Vec<IpNet> = want
            .iter()
            .filter(|net| !current.iter().any(|a| a.net == **net))
            .copied()
            .collect();
        let mut report = AddressReport::default();
        if delete.is_empty() && add.is_empty() {
            return Ok(report);
        }
        let ops: Vec<(bool, IpNet)> = delete
            .iter()
            .map(|n| (false, *n))
            .chain(add.iter().map(|n| (true, *n)))
            .collect();
        let results = self.nl.execute(ops.len(), |i, buf, seq| {
            let (is_add, net) = ops[i];
            let msg = address_message(ifindex, net, is_add);
            if is_add {
                push_message(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, seq, &msg);
            } else {
                push_message(buf, RTM_DELADDR, 0, seq, &msg);
            }
        })?;
        let mut first_error = None;
        for ((is_add, net), result) in ops.into_iter().zip(results) {
            match result {
                None => {
                    if is_add {
                        report.added.push(net);
                    } else {
                        report.deleted.push(net);
                    }
                }
                // Raced with someone else making the same change.
                Some(e) if is_add && e.errno == EEXIST => {}
                Some(e) if !is_add && e.errno == EADDRNOTAVAIL => {}
                Some(source) => {
                    if first_error.is_none() {
                        first_error = Some((net, if is_add { "add" } else { "delete" }, source));
                    }
                }
            }
        }
        if let Some((addr, op, source)) = first_error {
            return Err(Error::Address {
                interface: self.describe(ifindex),
                addr,
                op,
                source,
            });
        }
        if !report.is_empty() {
            tracing::debug!(ifindex, added = ?report.added, deleted = ?report.deleted, "addresses synced");
        }
        Ok(report)
    }

    /// Sends one request and returns the kernel's refusal, if any.
    fn one(
        &mut self,
        msg_type: u16,
        flags: u16,
        msg: &impl netlink_packet_core::Emitable,
    ) -> Result<Option<KernelError>, Error> {
        let mut results = self.nl.execute(1, |_, buf, seq| {
            push_message(buf, msg_type, flags, seq, msg)
        })?;
        Ok(results.pop().flatten())
    }

    fn link(&mut self, by: LinkRef<'_>) -> Result<Option<Link>, Error> {
        let mut request = LinkMessage::default();
        let name = match by {
            LinkRef::Name(name) => {
                request
                    .attributes
                    .push(LinkAttribute::IfName(name.to_owned()));
                name.to_owned()
            }
            LinkRef::Index(index) => {
                request.header.index = index;
                format!("index {index}")
            }
        };
        let reply = self
            .nl
            .get("a link request", RTM_GETLINK, &request, RTM_NEWLINK, |p| {
                parse_link(p)
            })?;
        match reply {
            Ok(link) => Ok(Some(link)),
            Err(e) if e.errno == ENODEV => Ok(None),
            Err(source) => Err(Error::Link {
                name,
                op: "describe it",
                source,
            }),
        }
    }

    /// The interface as error messages name it: "clos0 (index 5)", or "index 5".
    fn describe(&mut self, ifindex: u32) -> String {
        match self.link(LinkRef::Index(ifindex)) {
            Ok(Some(link)) => format!("{} (index {ifindex})", link.name),
            _ => format!("index {ifindex}"),
        }
    }

    fn dump_addresses(&mut self, ifindex: u32) -> Result<Vec<Address>, Error> {
        let mut request = AddressMessage::default();
        // With NETLINK_GET_STRICT_CHK the kernel filters on the index itself.
        request.header.index = ifindex;
        let dumped = self.nl.dump(
            "addresses",
            RTM_GETADDR,
            &request,
            RTM_NEWADDR,
            Vec::new,
            |acc, payload| {
                let msg =
                    AddressMessage::parse(payload).map_err(|e| Error::decode("RTM_NEWADDR", e))?;
                if msg.header.index == ifindex
                    && let Some(addr) = parse_address(&msg)
                {
                    acc.push(addr);
                }
                Ok(())
            },
        );
        match dumped {
            Ok(mut addrs) => {
                addrs.sort_by_key(|a| (a.net.addr().is_ipv6(), a.net));
                Ok(addrs)
            }
            Err(Error::Dump { source, .. }) => Err(Error::Link {
                name: self.describe(ifindex),
                op: "list its addresses",
                source,
            }),
            Err(e) => Err(e),
        }
    }
}

fn parse_link(payload: &[u8]) -> Result<Link, Error> {
    let msg = LinkMessage::parse(payload).map_err(|e| Error::decode("RTM_NEWLINK", e))?;
    let mut name = None;
    let mut kind = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::LinkInfo(infos) => {
                kind = infos.iter().find_map(|i| match i {
                    LinkInfo::Kind(k) => Some(k.clone()),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    Ok(Link {
        index: msg.header.index,
        name: name.unwrap_or_else(|| format!("index {}", msg.header.index)),
        kind,
        up: msg.header.flags.contains(LinkFlags::Up),
    })
}

fn parse_address(msg: &AddressMessage) -> Option<Address> {
    let mut local = None;
    let mut address = None;
    let mut ours = false;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Protocol(p) => ours = u8::from(*p) == CLOS_PROTOCOL,
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address when there is a peer (and always for IPv4);
    // otherwise IFA_ADDRESS is.
    let addr = local.or(address)?;
    let net = IpNet::new(addr, msg.header.prefix_len).ok()?;
    Some(Address { net, ours })
}

fn address_message(ifindex: u32, net: IpNet, add: bool) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.index = ifindex;
    msg.header.prefix_len = net.prefix_len();
    let addr = net.addr();
    match addr {
        IpAddr::V4(_) => {
            msg.header.family = AddressFamily::Inet;
            // As iproute2 does: IFA_LOCAL is the address; IFA_ADDRESS (the same, without a
            // peer) makes a delete match the prefix length too.
            msg.attributes.push(AddressAttribute::Local(addr));
            msg.attributes.push(AddressAttribute::Address(addr));
        }
        IpAddr::V6(_) => {
            msg.header.family = AddressFamily::Inet6;
            msg.attributes.push(AddressAttribute::Address(addr));
            if add {
                msg.header.flags = AddressHeaderFlags::Nodad;
                msg.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
    }
    if add {
        msg.attributes
            .push(AddressAttribute::Protocol(AddressProtocol::from(
                CLOS_PROTOCOL,
            )));
    }
    msg
}

/// Checks a name as the kernel's `dev_valid_name` does, so it is also safe as a path component
/// under `/proc/sys`.
fn validate_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 15 {
        Some("it is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("it is . or ..")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
    {
        Some("it contains '/', ':', a NUL or whitespace")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidInterfaceName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

const PROC_SYS: &str = "/proc/sys";

/// Turns IPv4 and IPv6 forwarding on in the calling thread's network namespace:
/// `net.ipv4.ip_forward` (which the kernel copies to every interface and to
/// `net.ipv4.conf.default.forwarding`), `net.ipv6.conf.all.forwarding` and
/// `net.ipv6.conf.default.forwarding`. The IPv6 ones are skipped on a kernel without IPv6.
pub fn enable_forwarding() -> Result<(), Error> {
    set_sysctl("net/ipv4/ip_forward", "1")?;
    set_sysctl("net/ipv4/conf/default/forwarding", "1")?;
    if has_ipv6() {
        set_sysctl("net/ipv6/conf/all/forwarding", "1")?;
        set_sysctl("net/ipv6/conf/default/forwarding", "1")?;
    }
    Ok(())
}

/// Makes the host the gateway of the endpoint behind the interface `name` (the host side of a
/// veth or a tap), in the calling thread's network namespace. It sets:
///
/// - `net.ipv4.conf.NAME.proxy_arp = 1`: the host answers the endpoint's ARP requests for any
///   address it routes elsewhere, so the endpoint can use any gateway address (a link-local
///   such as 169.254.1.1) that the host does not route back to it;
/// - `net.ipv4.neigh.NAME.proxy_delay = 0`: those answers go out at once instead of after a
///   random delay of up to 0.8 s;
/// - `net.ipv4.conf.NAME.forwarding = 1`: IPv4 forwarding for packets arriving here, even if
///   the interface was created while `net.ipv4.conf.default.forwarding` was 0;
/// - `net.ipv4.conf.NAME.rp_filter = 1`: strict reverse-path filtering, so the endpoint can
///   only send from the addresses the host routes to it (anti-spoofing);
/// - if the kernel has IPv6: `net.ipv6.conf.NAME.disable_ipv6 = 0` (the gateway address
///   `fe80::1` needs IPv6 on the interface), `forwarding = 1` (the host answers neighbour
///   solicitations as a router) and `accept_ra = 0` (the endpoint cannot configure the host).
///
/// The gateway address itself, `fe80::1/64`, is added by [`Host::add_address`] (or
/// [`Host::sync_addresses`]), without duplicate address detection so it is usable at once.
pub fn prepare_endpoint_interface(name: &str) -> Result<(), Error> {
    validate_name(name)?;
    if name == "all" || name == "default" {
        return Err(Error::InvalidInterfaceName {
            name: name.to_owned(),
            reason: "it names the sysctls of every interface",
        });
    }
    if !Path::new(PROC_SYS)
        .join("net/ipv4/conf")
        .join(name)
        .exists()
    {
        return Err(Error::UnknownInterface {
            name: name.to_owned(),
        });
    }
    set_sysctl(&format!("net/ipv4/conf/{name}/proxy_arp"), "1")?;
    set_sysctl(&format!("net/ipv4/neigh/{name}/proxy_delay"), "0")?;
    set_sysctl(&format!("net/ipv4/conf/{name}/forwarding"), "1")?;
    set_sysctl(&format!("net/ipv4/conf/{name}/rp_filter"), "1")?;
    if has_ipv6() {
        set_sysctl(&format!("net/ipv6/conf/{name}/disable_ipv6"), "0")?;
        set_sysctl(&format!("net/ipv6/conf/{name}/forwarding"), "1")?;
        set_sysctl(&format!("net/ipv6/conf/{name}/accept_ra"), "0")?;
    }
    Ok(())
}

fn has_ipv6() -> bool {
    Path::new(PROC_SYS).join("net/ipv6").exists()
}

/// Writes `value` to `/proc/sys/<key>` unless it holds that value already.
fn set_sysctl(key: &str, value: &'static str) -> Result<(), Error> {
    let path: PathBuf = Path::new(PROC_SYS).join(key);
    let err = |source: std::io::Error| Error::Sysctl {
        path: path.clone(),
        value,
        source: Arc::new(source),
    };
    let mut current = String::new();
    std::fs::File::open(&path)
        .and_then(|mut f| f.read_to_string(&mut current))
        .map_err(err)?;
    if current.trim() == value {
        return Ok(());
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(err)?;
    file.write_all(value.as_bytes()).map_err(err)?;
    tracing::debug!(path = %path.display(), value, "sysctl set");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("clos0").is_ok());
        assert!(validate_name("clos1fe38b00d97").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "eth0:1", "clos1fe38b00d97x"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn v6_adds_skip_dad_and_are_tagged() {
        let msg = address_message(7, "fe80::1/64".parse().unwrap(), true);
        assert_eq!(msg.header.index, 7);
        assert_eq!(msg.header.prefix_len, 64);
        assert!(msg.header.flags.contains(AddressHeaderFlags::Nodad));
        assert!(
            msg.attributes
                .contains(&AddressAttribute::Flags(AddressFlags::Nodad))
        );
        assert!(
            msg.attributes
                .contains(&AddressAttribute::Protocol(AddressProtocol::from(
                    CLOS_PROTOCOL
                )))
        );
        let del = address_message(7, "10.0.0.5/32".parse().unwrap(), false);
        assert_eq!(del.header.family, AddressFamily::Inet);
        assert_eq!(del.attributes.len(), 2);
    }
}
