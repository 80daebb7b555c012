//! RIB ingest: a host with two ToRs receives the same IPv4 table from both, each prefix an
//! ECMP pair. The UPDATEs are real messages, packed by `UpdatePacker` before the clock starts
//! and decoded with `Update::decode` (RFC 7606 handling included) inside the timed loop, the
//! two peers' messages interleaved as they would arrive.
//!
//! ```text
//! cargo bench -p clos-bgp --bench rib [-- PREFIXES [ATTR_SETS_PER_PEER [unnumbered|classic [DRAIN_EVERY]]]]
//! ```
//!
//! The RIB is drained every DRAIN_EVERY UPDATEs (default 64, as a driver drains after each
//! batch read from the sockets; 0 drains once at the end) and the changes are dropped.
//!
//! Defaults: 1,000,000 /24 prefixes, 2,000 attribute sets per peer, IPv4 NLRI with IPv6
//! link-local next hops in MP_REACH_NLRI (RFC 8950, BGP unnumbered); `classic` uses the NLRI
//! field and NEXT_HOP instead. Memory is the growth of the resident set across ingest and
//! drain (read from /proc/self/status: a counting global allocator would need `unsafe`, which
//! the workspace forbids), next to the RIB's own estimate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU16;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clos_bgp::iana::{HEADER_LEN, Origin};
use clos_bgp::rib::{AcceptAll, PeerInfo, PrefixCount, Rib, RibConfig};
use clos_bgp::wire::{
    AsPath, Community, DecodeContext, NextHop, PathAttributes, PeerKind, Prefix, Prefix4, Update,
    UpdatePacker,
};

const LOCAL_AS: u32 = 65000;
const TOR_AS: [u32; 2] = [65001, 65002];
const SPINE_AS: u32 = 65100;

/// Resident set size in octets.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn prefix(i: u32) -> Prefix {
    // Consecutive /24s from 1.0.0.0.
    let addr = Ipv4Addr::from((1u32 << 24) + (i << 8));
    Prefix::V4(Prefix4::new(addr, 24).expect("/24"))
}

fn attrs(tor: usize, set: u32) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence([
            TOR_AS[tor],
            SPINE_AS,
            // Private 4-octet origin ASes; none is ours (that would be a loop).
            4_200_000_000 + set % 1000,
        ])),
        communities: vec![Community((SPINE_AS << 16) | (set / 1000))],
        ..PathAttributes::default()
    }
}

fn next_hop(tor: usize, classic: bool) -> NextHop {
    if classic {
        NextHop::V4(Ipv4Addr::new(192, 0, 2, tor as u8 + 1))
    } else {
        NextHop::V6 {
            global: Ipv6Addr::UNSPECIFIED,
            link_local: Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, tor as u16 + 1)),
        }
    }
}

/// The UPDATEs one ToR sends: prefixes in blocks that share an attribute set.
fn pack(ctx: DecodeContext, tor: usize, prefixes: u32, sets: u32, classic: bool) -> Vec<Bytes> {
    let mut packer = UpdatePacker::new(ctx);
    let per_set = prefixes.div_ceil(sets);
    for set in 0..sets {
        let block: Vec<Prefix> = (set * per_set..((set + 1) * per_set).min(prefixes))
            .map(prefix)
            .collect();
        if !block.is_empty() {
            packer
                .announce(&attrs(tor, set), next_hop(tor, classic), &block)
                .expect("pack");
        }
    }
    packer.finish()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; positional arguments are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let prefixes: u32 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let sets: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let classic = args.get(2).is_some_and(|a| a == "classic");
    let drain_every: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(64);

    let ctx = DecodeContext::modern(PeerKind::External);
    let t = Instant::now();
    let messages = [0, 1].map(|tor| pack(ctx, tor, prefixes, sets, classic));
    let pack_time = t.elapsed();
    let count: usize = messages.iter().map(Vec::len).sum();
    let octets: usize = messages.iter().flatten().map(Bytes::len).sum();
    // The arrival order: the two ToRs' messages interleaved.
    let longest = messages.iter().map(Vec::len).max().unwrap_or(0);
    let mut arrivals: Vec<(usize, &Bytes)> = Vec::with_capacity(count);
    for i in 0..longest {
        for (tor, m) in messages.iter().enumerate() {
            if let Some(b) = m.get(i) {
                arrivals.push((tor, b));
            }
        }
    }

    // Decoding alone, to see what the RIB adds to it.
    let t = Instant::now();
    let mut decoded = 0usize;
    for (_, m) in &arrivals {
        let o = Update::decode(m.slice(HEADER_LEN..), &ctx);
        decoded += o.update().map_or(0, |u| u.announced().count());
    }
    let decode_time = t.elapsed();
    assert_eq!(decoded, 2 * prefixes as usize);

    let rss_before = rss();
    let mut rib = Rib::new(RibConfig {
        max_paths: NonZeroU16::new(2).expect("2"),
        multipath_relax: true,
        ..RibConfig::default()
    });
    let peers = [0u8, 1].map(|tor| {
        rib.add_peer(PeerInfo {
            address: IpAddr::from([192, 0, 2, tor + 1]),
            remote_as: TOR_AS[usize::from(tor)],
            router_id: Ipv4Addr::new(10, 0, 0, tor + 1),
            kind: PeerKind::External,
            local_as: LOCAL_AS,
            weight: 0,
            max_prefixes: None,
            max_prefixes_count: PrefixCount::Accepted,
        })
    });

    let (mut ingest_time, mut drain_time) = (Duration::ZERO, Duration::ZERO);
    let (mut changes, mut ecmp) = (0usize, 0usize);
    let mut drain = |rib: &mut Rib, drain_time: &mut Duration| {
        let t = Instant::now();
        let c = rib.drain_changes();
        changes += c.len();
        ecmp += c.iter().filter(|c| c.multipath.len() == 2).count();
        drop(c);
        *drain_time += t.elapsed();
    };
    let batch = if drain_every == 0 {
        usize::MAX
    } else {
        drain_every
    };
    for chunk in arrivals.chunks(batch) {
        let t = Instant::now();
        for (tor, m) in chunk {
            let o = Update::decode(m.slice(HEADER_LEN..), &ctx);
            rib.apply_outcome(peers[*tor], &o, &mut AcceptAll)
                .expect("registered peer");
        }
        ingest_time += t.elapsed();
        drain(&mut rib, &mut drain_time);
    }
    // Both ToRs' copies of a prefix arrive within one batch (the packing is the same).
    assert_eq!((changes, ecmp), (prefixes as usize, prefixes as usize));
    rib.collect_garbage();
    let rss_after = rss();

    let mem = rib.memory();
    let routes = 2 * u64::from(prefixes);
    let total = ingest_time + drain_time;
    let grown = rss_after.saturating_sub(rss_before);
    println!(
        "rib ingest: {prefixes} prefixes x 2 peers ({}), {sets} attribute sets per peer",
        if classic {
            "classic NLRI, NEXT_HOP"
        } else {
            "RFC 8950 IPv6 link-local next hops"
        }
    );
    println!(
        "  input          {count} UPDATEs, {:.1} MB, packed in {:.2} s (not timed)",
        octets as f64 / 1e6,
        secs(pack_time)
    );
    println!(
        "  decode only    {:.3} s  ({:.2} M routes/s)",
        secs(decode_time),
        routes as f64 / secs(decode_time) / 1e6
    );
    println!(
        "  decode+apply   {:.3} s  ({:.2} M routes/s)",
        secs(ingest_time),
        routes as f64 / secs(ingest_time) / 1e6
    );
    println!(
        "  drain          {:.3} s  ({changes} changes, 2-way ECMP each, drained {})",
        secs(drain_time),
        if drain_every == 0 {
            "once at the end".to_string()
        } else {
            format!("every {drain_every} UPDATEs")
        }
    );
    println!(
        "  total          {:.3} s  ({:.2} M routes/s)",
        secs(total),
        routes as f64 / secs(total) / 1e6
    );
    println!(
        "  memory (RSS)   {:.1} MB = {:.1} B/route, {:.1} B/prefix",
        grown as f64 / 1e6,
        grown as f64 / routes as f64,
        grown as f64 / f64::from(prefixes)
    );
    println!(
        "  memory (est.)  {:.1} MB = {:.1} B/route; {} attribute sets interned",
        mem.bytes as f64 / 1e6,
        mem.bytes as f64 / routes as f64,
        mem.attribute_sets
    );
}
