//! Code points from the kernel's uapi headers (`linux/netlink.h`, `linux/rtnetlink.h`,
//! `linux/nexthop.h`) that the netlink crates do not export. All of them live here, so a reader
//! checks them against the headers in one place.

// linux/rtnetlink.h: message types.
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;
pub const RTM_NEWNEXTHOP: u16 = 104;
pub const RTM_DELNEXTHOP: u16 = 105;
pub const RTM_GETNEXTHOP: u16 = 106;

// linux/netlink.h: control message types.
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;

// linux/netlink.h: nlmsgerr attributes (extended ack).
pub const NLMSGERR_ATTR_MSG: u16 = 1;

// linux/rtnetlink.h: tables and protocols.
pub const RT_TABLE_MAIN: u32 = 254;
pub const RTPROT_BGP: u8 = 186;

// linux/socket.h
pub const AF_UNSPEC: u8 = 0;
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

// linux/nexthop.h: attributes of RTM_*NEXTHOP messages.
pub const NHA_ID: u16 = 1;
pub const NHA_GROUP: u16 = 2;
pub const NHA_GROUP_TYPE: u16 = 3;
pub const NHA_BLACKHOLE: u16 = 4;
pub const NHA_OIF: u16 = 5;
pub const NHA_GATEWAY: u16 = 6;
pub const NHA_ENCAP_TYPE: u16 = 7;
pub const NHA_ENCAP: u16 = 8;
pub const NHA_GROUPS: u16 = 9;
pub const NHA_MASTER: u16 = 10;
pub const NHA_FDB: u16 = 11;
pub const NHA_OP_FLAGS: u16 = 14;

// linux/nexthop.h: group types.
pub const NEXTHOP_GRP_TYPE_MPATH: u16 = 0;
pub const NEXTHOP_GRP_TYPE_RES: u16 = 1;

// errno values the FIB programmer tells apart (asm-generic/errno.h; Linux on every
// architecture Clos targets).
pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const ESRCH: i32 = 3;
pub const ENOBUFS: i32 = 105;
pub const EACCES: i32 = 13;
pub const EEXIST: i32 = 17;
pub const EADDRNOTAVAIL: i32 = 99;
pub const ENODEV: i32 = 19;
pub const EINVAL: i32 = 22;
pub const EOPNOTSUPP: i32 = 95;
pub const ENETDOWN: i32 = 100;
pub const ENETUNREACH: i32 = 101;
pub const EHOSTUNREACH: i32 = 113;

// linux/netlink.h: flags of an NLMSG_ERROR message.
pub const NLM_F_CAPPED: u16 = 0x100;
pub const NLM_F_ACK_TLVS: u16 = 0x200;

// linux/socket.h: recv(2) flag that makes netlink return a datagram's full length.
pub const MSG_TRUNC: i32 = 0x20;
