//! Translation between the FIB programmer's operations and rtnetlink messages: encoding
//! [`Op`]s, and decoding route, nexthop and link dumps into a [`Snapshot`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, Parseable};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteProtocol, RouteScope, RouteType, RouteVia,
};

use super::state::{NhKey, ObjKind, Op, Target};
use super::{Family, Nexthop, RouteKey};
use crate::Error;
use crate::netlink::nexthop::{self, GroupMember, NexthopAttribute, NexthopHeader, NexthopMessage};
use crate::netlink::uapi::*;
use crate::netlink::{Netlink, push_message};

impl Family {
    fn address_family(self) -> AddressFamily {
        match self {
            Family::V4 => AddressFamily::Inet,
            Family::V6 => AddressFamily::Inet6,
        }
    }

    fn af(self) -> u8 {
        match self {
            Family::V4 => AF_INET,
            Family::V6 => AF_INET6,
        }
    }

    /// The metric the kernel gives a route that names none; ours always use it.
    pub(crate) fn default_priority(self) -> u32 {
        match self {
            Family::V4 => 0,
            Family::V6 => 1024,
        }
    }
}

fn route_header(key: &RouteKey, protocol: u8) -> RouteHeader {
    RouteHeader {
        address_family: Family::of(key.prefix.addr()).address_family(),
        destination_prefix_length: key.prefix.prefix_len(),
        // Tables above 255 only fit RTA_TABLE, which we always send; the header field then
        // says "unspecified", as iproute2 does.
        table: u8::try_from(key.table).unwrap_or(0),
        protocol: RouteProtocol::from(protocol),
        ..RouteHeader::default()
    }
}

fn base_attributes(key: &RouteKey) -> Vec<RouteAttribute> {
    let mut attrs = Vec::with_capacity(4);
    // A default route has no destination attribute.
    if key.prefix.prefix_len() > 0 {
        attrs.push(RouteAttribute::Destination(RouteAddress::from(
            key.prefix.addr(),
        )));
    }
    attrs.push(RouteAttribute::Table(key.table));
    attrs
}

/// The attribute naming a nexthop's gateway in a route of `family`: RTA_GATEWAY in the route's
/// own family, RTA_VIA for an IPv6 gateway of an IPv4 route.
fn gateway_attribute(family: Family, gateway: IpAddr) -> RouteAttribute {
    match (family, gateway) {
        (Family::V4, IpAddr::V6(v6)) => RouteAttribute::Via(RouteVia::Inet6(v6)),
        _ => RouteAttribute::Gateway(RouteAddress::from(gateway)),
    }
}

pub(crate) fn new_route(key: &RouteKey, target: &Target, protocol: u8) -> RouteMessage {
    let family = Family::of(key.prefix.addr());
    let mut header = route_header(key, protocol);
    header.kind = RouteType::Unicast;
    let mut attributes = base_attributes(key);
    match target {
        Target::Object(id) => attributes.push(RouteAttribute::NhId(*id)),
        Target::Legacy(nhs) => {
            // As `ip route add ... dev X` does: an IPv4 route straight onto links is link-scoped.
            if family == Family::V4 && nhs.iter().all(|nh| nh.gateway.is_none()) {
                header.scope = RouteScope::Link;
            }
            match &nhs[..] {
                [nh] => {
                    if let Some(gw) = nh.gateway {
                        attributes.push(gateway_attribute(family, gw));
                    }
                    attributes.push(RouteAttribute::Oif(nh.ifindex));
                }
                many => attributes.push(RouteAttribute::MultiPath(
                    many.iter()
                        .map(|nh| {
                            let mut hop = RouteNextHop::default();
                            hop.interface_index = nh.ifindex;
                            if let Some(gw) = nh.gateway {
                                hop.attributes.push(gateway_attribute(family, gw));
                            }
                            hop
                        })
                        .collect(),
                )),
            }
        }
    }
    let mut msg = RouteMessage::default();
    msg.header = header;
    msg.attributes = attributes;
    msg
}

pub(crate) fn del_route(key: &RouteKey, priority: Option<u32>, protocol: u8) -> RouteMessage {
    let mut header = route_header(key, protocol);
    // "Any scope": the kernel matches a deletion on scope unless it is RT_SCOPE_NOWHERE. The
    // protocol is matched, so a deletion never hits someone else's route.
    header.scope = RouteScope::NoWhere;
    let mut attributes = base_attributes(key);
    if let Some(p) = priority {
        attributes.push(RouteAttribute::Priority(p));
    }
    let mut msg = RouteMessage::default();
    msg.header = header;
    msg.attributes = attributes;
    msg
}

pub(crate) fn new_nexthop(id: u32, key: &NhKey, protocol: u8) -> NexthopMessage {
    let mut attributes = vec![NexthopAttribute::Id(id)];
    if let Some(gw) = key.gateway {
        attributes.push(NexthopAttribute::Gateway(gw));
    }
    attributes.push(NexthopAttribute::Oif(key.ifindex));
    NexthopMessage {
        header: NexthopHeader {
            family: key.family.af(),
            protocol,
            ..NexthopHeader::default()
        },
        attributes,
    }
}

pub(crate) fn new_group(id: u32, members: &[u32], protocol: u8) -> NexthopMessage {
    NexthopMessage {
        header: NexthopHeader {
            family: AF_UNSPEC,
            protocol,
            ..NexthopHeader::default()
        },
        attributes: vec![
            NexthopAttribute::Id(id),
            NexthopAttribute::Group(members.iter().map(|m| GroupMember::new(*m)).collect()),
        ],
    }
}

/// Deletions go by id only: the kernel refuses any header field in them, protocol included,
/// which is why we only ever delete ids a dump showed to be ours.
pub(crate) fn del_nexthop(id: u32) -> NexthopMessage {
    NexthopMessage {
        header: NexthopHeader::default(),
        attributes: vec![NexthopAttribute::Id(id)],
    }
}

/// Appends `op` to `buf` as one request.
pub(crate) fn encode(op: &Op, protocol: u8, buf: &mut Vec<u8>, seq: u32) {
    let create = NLM_F_CREATE | NLM_F_EXCL;
    match op {
        Op::NewNexthop { id, key } => push_message(
            buf,
            RTM_NEWNEXTHOP,
            create,
            seq,
            &new_nexthop(*id, key, protocol),
        ),
        Op::NewGroup { id, members } => push_message(
            buf,
            RTM_NEWNEXTHOP,
            create,
            seq,
            &new_group(*id, members, protocol),
        ),
        Op::SetRoute { key, target, old } => {
            // Create exclusively, so a foreign route with the same key is refused rather than
            // replaced; replace only what we know is ours (creating it if it vanished).
            let flags = if old.is_some() {
                NLM_F_CREATE | NLM_F_REPLACE
            } else {
                create
            };
            push_message(
                buf,
                RTM_NEWROUTE,
                flags,
                seq,
                &new_route(key, target, protocol),
            )
        }
        Op::DelRoute { key, priority, .. } => push_message(
            buf,
            RTM_DELROUTE,
            0,
            seq,
            &del_route(key, *priority, protocol),
        ),
        Op::DelNexthop { id } => push_message(buf, RTM_DELNEXTHOP, 0, seq, &del_nexthop(*id)),
        // Replace only: if the group vanished, so did its routes, and this must fail.
        Op::ReplaceGroup { id, members, .. } => push_message(
            buf,
            RTM_NEWNEXTHOP,
            NLM_F_REPLACE,
            seq,
            &new_group(*id, members, protocol),
        ),
    }
}

/// The kernel's routes and nexthop objects that carry our protocol.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub objects: Vec<(u32, ObjKind)>,
    /// Ids in our range used by others.
    pub reserved: Vec<u32>,
    pub routes: Vec<(RouteKey, Target)>,
    /// Further routes of ours for a key, at a metric other than the default.
    pub extras: Vec<(RouteKey, u32)>,
}

/// What a dumped nexthop object is to us.
pub(crate) enum Dumped {
    Ours(u32, ObjKind),
    /// Someone else's, with this id.
    Foreign(u32),
}

pub(crate) fn parse_nexthop(msg: &NexthopMessage, protocol: u8) -> Option<Dumped> {
    let id = msg.id()?;
    if msg.header.protocol != protocol {
        return Some(Dumped::Foreign(id));
    }
    let family = match msg.header.family {
        AF_INET => Some(Family::V4),
        AF_INET6 => Some(Family::V6),
        _ => None,
    };
    let (mut oif, mut gateway, mut group, mut unusual) = (None, None, None, false);
    for attr in &msg.attributes {
        match attr {
            NexthopAttribute::Id(_) | NexthopAttribute::OpFlags(_) => {}
            NexthopAttribute::Oif(i) => oif = Some(*i),
            NexthopAttribute::Gateway(gw) => gateway = Some(*gw),
            NexthopAttribute::Group(members) => group = Some(members),
            NexthopAttribute::GroupType(t) => unusual |= *t != NEXTHOP_GRP_TYPE_MPATH,
            _ => unusual = true,
        }
    }
    // RTNH_F_ONLINK (4) changes forwarding; we never set it. State flags (dead, linkdown) do
    // not make an object different.
    unusual |= msg.header.flags & 4 != 0;
    let kind = match (family, oif, group) {
        _ if unusual => ObjKind::Other,
        (_, None, Some(members)) if members.iter().all(|m| m.weight == 1) => {
            let mut ids: Vec<u32> = members.iter().map(|m| m.id).collect();
            ids.sort_unstable();
            ObjKind::Group(ids.into())
        }
        (Some(family), Some(ifindex), None) => ObjKind::Single(NhKey {
            family,
            gateway,
            ifindex,
        }),
        _ => ObjKind::Other,
    };
    Some(Dumped::Ours(id, kind))
}

/// A dumped route of ours: its key, metric and how it forwards.
pub(crate) fn parse_route(msg: &RouteMessage, protocol: u8) -> Option<(RouteKey, u32, Target)> {
    let h = &msg.header;
    if u8::from(h.protocol) != protocol || h.flags.contains(RouteFlags::Cloned) {
        return None;
    }
    let family = match h.address_family {
        AddressFamily::Inet => Family::V4,
        AddressFamily::Inet6 => Family::V6,
        _ => return None,
    };
    let mut table = u32::from(h.table);
    let mut dst = None;
    let mut priority = 0;
    let mut nh_id = None;
    let (mut gateway, mut oif, mut multipath) = (None, None, None);
    let mut unusual = h.kind != RouteType::Unicast;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(a) => dst = address(a),
            RouteAttribute::Priority(p) => priority = *p,
            RouteAttribute::NhId(id) => nh_id = Some(*id),
            RouteAttribute::Gateway(a) => gateway = address(a),
            RouteAttribute::Via(v) => gateway = via(v),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::MultiPath(hops) => multipath = Some(hops),
            RouteAttribute::Encap(_) | RouteAttribute::EncapType(_) => unusual = true,
            _ => {}
        }
    }
    let addr = dst.unwrap_or(match family {
        Family::V4 => IpAddr::from([0u8; 4]),
        Family::V6 => IpAddr::from([0u16; 8]),
    });
    let prefix = IpNet::new(addr, h.destination_prefix_length).ok()?;
    let key = RouteKey { table, prefix };
    let target = match (nh_id, multipath) {
        _ if unusual => Target::Legacy(Arc::from([])),
        // With nexthop_compat_mode the kernel also expands the object into RTA_MULTIPATH;
        // the id is what counts.
        (Some(id), _) => Target::Object(id),
        (None, Some(hops)) => {
            let mut nhs: Vec<Nexthop> = hops
                .iter()
                .map(|hop| Nexthop {
                    gateway: hop.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Gateway(a) => address(a),
                        RouteAttribute::Via(v) => via(v),
                        _ => None,
                    }),
                    ifindex: hop.interface_index,
                })
                .collect();
            nhs.sort_unstable();
            nhs.dedup();
            Target::Legacy(nhs.into())
        }
        (None, None) => match oif {
            Some(ifindex) => Target::Legacy(Arc::from([Nexthop { gateway, ifindex }])),
            None => Target::Legacy(Arc::from([])),
        },
    };
    Some((key, priority, target))
}

fn address(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn via(v: &RouteVia) -> Option<IpAddr> {
    match v {
        RouteVia::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteVia::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// Dumps our nexthop objects. Fails with [`Error::Dump`] on a kernel without them.
pub(crate) fn dump_nexthops(
    nl: &mut Netlink,
    protocol: u8,
    owns_id: impl Fn(u32) -> bool,
    snapshot: &mut Snapshot,
) -> Result<(), Error> {
    let dumped = nl.dump(
        "nexthop objects",
        RTM_GETNEXTHOP,
        &NexthopMessage::default(),
        RTM_NEWNEXTHOP,
        Vec::new,
        |acc, payload| {
            let msg = nexthop::parse(payload).map_err(|e| Error::decode("RTM_NEWNEXTHOP", e))?;
            if let Some(d) = parse_nexthop(&msg, protocol) {
                acc.push(d);
            }
            Ok(())
        },
    )?;
    for d in dumped {
        match d {
            Dumped::Ours(id, kind) if owns_id(id) => snapshot.objects.push((id, kind)),
            // Tagged ours but outside our range: another instance's, not ours to touch.
            Dumped::Ours(..) => {}
            Dumped::Foreign(id) if owns_id(id) => snapshot.reserved.push(id),
            Dumped::Foreign(_) => {}
        }
    }
    Ok(())
}

/// Dumps our IPv4 and IPv6 routes in every table.
pub(crate) fn dump_routes(
    nl: &mut Netlink,
    protocol: u8,
    snapshot: &mut Snapshot,
) -> Result<(), Error> {
    for family in [Family::V4, Family::V6] {
        let mut request = RouteMessage::default();
        request.header.address_family = family.address_family();
        // With NETLINK_GET_STRICT_CHK the kernel filters on the protocol itself.
        request.header.protocol = RouteProtocol::from(protocol);
        let routes = nl.dump(
            "routes",
            RTM_GETROUTE,
            &request,
            RTM_NEWROUTE,
            Vec::new,
            |acc, payload| {
                let msg =
                    RouteMessage::parse(payload).map_err(|e| Error::decode("RTM_NEWROUTE", e))?;
                if let Some(route) = parse_route(&msg, protocol) {
                    acc.push(route);
                }
                Ok(())
            },
        )?;
        let mut seen = HashMap::with_capacity(routes.len());
        for (key, priority, target) in routes {
            if priority == family.default_priority() && seen.insert(key, ()).is_none() {
                snapshot.routes.push((key, target));
            } else {
                snapshot.extras.push((key, priority));
            }
        }
    }
    Ok(())
}

/// An interface as error messages need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkInfo {
    pub name: String,
    pub up: bool,
}

/// Interfaces by index, for error messages.
pub(crate) fn links(nl: &mut Netlink) -> Result<HashMap<u32, LinkInfo>, Error> {
    nl.dump(
        "links",
        RTM_GETLINK,
        &LinkMessage::default(),
        RTM_NEWLINK,
        HashMap::new,
        |acc, payload| {
            let msg = LinkMessage::parse(payload).map_err(|e| Error::decode("RTM_NEWLINK", e))?;
            if let Some(name) = msg.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            }) {
                let up = msg.header.flags.contains(LinkFlags::Up);
                acc.insert(msg.header.index, LinkInfo { name, up });
            }
            Ok(())
        },
    )
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::Emitable;

    use super::*;

    fn key(prefix: &str) -> RouteKey {
        RouteKey {
            table: RT_TABLE_MAIN,
            prefix: prefix.parse().unwrap(),
        }
    }

    fn roundtrip(msg: &RouteMessage) -> RouteMessage {
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        RouteMessage::parse(&buf[..]).unwrap()
    }

    #[test]
    fn legacy_routes_read_back_as_written() {
        let ll: IpAddr = "fe80::1".parse().unwrap();
        let cases: Vec<(&str, Vec<Nexthop>)> = vec![
            (
                "10.9.0.0/24",
                vec![Nexthop::via("10.0.1.2".parse().unwrap(), 2)],
            ),
            ("10.9.0.0/24", vec![Nexthop::via(ll, 2)]),
            (
                "10.9.0.0/24",
                vec![Nexthop::via(ll, 2), Nexthop::via(ll, 3)],
            ),
            (
                "2001:db8::/64",
                vec![Nexthop::via(ll, 2), Nexthop::via(ll, 3)],
            ),
            ("0.0.0.0/0", vec![Nexthop::dev(7)]),
        ];
        for (prefix, nhs) in cases {
            let k = key(prefix);
            let target = Target::Legacy(nhs.into());
            let msg = roundtrip(&new_route(&k, &target, 198));
            let (k2, prio, t2) = parse_route(&msg, 198).unwrap();
            assert_eq!((k2, prio, &t2), (k, 0, &target), "{prefix}");
            assert!(parse_route(&msg, 199).is_none());
        }
    }

    #[test]
    fn large_tables_and_nexthop_ids() {
        let k = RouteKey {
            table: 1000,
            prefix: "10.9.0.0/24".parse().unwrap(),
        };
        let msg = roundtrip(&new_route(&k, &Target::Object(7), 198));
        assert_eq!(msg.header.table, 0);
        assert_eq!(parse_route(&msg, 198).unwrap(), (k, 0, Target::Object(7)));
    }

    #[test]
    fn nexthop_objects_are_classified() {
        let single = new_nexthop(
            5,
            &NhKey {
                family: Family::V6,
                gateway: Some("fe80::1".parse().unwrap()),
                ifindex: 3,
            },
            198,
        );
        assert!(matches!(
            parse_nexthop(&single, 198),
            Some(Dumped::Ours(
                5,
                ObjKind::Single(NhKey {
                    family: Family::V6,
                    ifindex: 3,
                    ..
                })
            ))
        ));
        assert!(matches!(
            parse_nexthop(&single, 186),
            Some(Dumped::Foreign(5))
        ));
        let group = new_group(6, &[9, 8], 198);
        assert!(matches!(
            parse_nexthop(&group, 198),
            Some(Dumped::Ours(6, ObjKind::Group(m))) if *m == [8, 9]
        ));
        let mut weighted = group.clone();
        weighted.attributes[1] = NexthopAttribute::Group(vec![
            GroupMember { id: 8, weight: 1 },
            GroupMember { id: 9, weight: 3 },
        ]);
        assert!(matches!(
            parse_nexthop(&weighted, 198),
            Some(Dumped::Ours(6, ObjKind::Other))
        ));
    }
}
