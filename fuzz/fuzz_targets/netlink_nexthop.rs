//! Nexthop-object messages (`RTM_NEWNEXTHOP` and friends): `clos_dataplane::netlink::nexthop::parse`
//! on the payload after the netlink header.
//!
//! Checks, besides "never panics" (nexthop.rs: "Decoding never panics"): what parsed
//! re-encodes (`Emitable`) and parses back to an equal message. The round trip is on values:
//! the reserved octet, the reserved octets of group entries and attribute padding are not
//! kept, so the octets may differ.
//!
//! Known and tolerated (fuzz/artifacts-found/netlink_nexthop/): an unknown attribute whose type
//! has both NLA_F_NESTED and NLA_F_NET_BYTEORDER comes back without NLA_F_NET_BYTEORDER,
//! because netlink-packet-core 0.9's `Nla::emit` sets the byte-order flag and then the nested
//! flag through `NlaBuffer::kind()`, which masks the first one away. The comparison clears
//! that flag on such attributes so the target keeps finding other bugs (not with
//! `CLOS_FUZZ_STRICT=1`).
#![no_main]

use clos_dataplane::netlink::nexthop::{
    NexthopAttribute, NexthopMessage, NexthopMessageBuffer, parse,
};
use libfuzzer_sys::fuzz_target;
use netlink_packet_core::{DefaultNla, Emitable, Nla};

const BOTH: u16 = 0x8000 | 0x4000;

fn normalized(mut m: NexthopMessage) -> NexthopMessage {
    if clos_fuzz::strict() {
        return m;
    }
    for a in &mut m.attributes {
        if let NexthopAttribute::Other(nla) = a
            && nla.kind() & BOTH == BOTH
        {
            let mut value = vec![0u8; nla.value_len()];
            nla.emit_value(&mut value);
            *nla = DefaultNla::new(nla.kind() & !0x4000, value);
        }
    }
    m
}

fuzz_target!(|data: &[u8]| {
    if let Ok(buf) = NexthopMessageBuffer::new_checked(data) {
        let _ = (buf.family(), buf.scope(), buf.protocol(), buf.flags());
        for nla in buf.attributes() {
            if nla.is_err() {
                break;
            }
        }
    }
    let Ok(msg) = parse(data) else { return };
    let _ = msg.id();
    let mut out = vec![0u8; msg.buffer_len()];
    msg.emit(&mut out);
    let again = parse(&out).expect("a re-encoded nexthop message parses");
    assert_eq!(
        normalized(again),
        normalized(msg),
        "nexthop message round trip"
    );
});
