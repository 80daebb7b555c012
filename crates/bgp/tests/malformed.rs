//! Malformed UPDATEs from a real peer (RFC 7606): ExaBGP, told through its API to send generic
//! attributes with wrong lengths, announces to our speaker, which passes routes on to a second
//! ExaBGP. Treat-as-withdraw and attribute-discard keep the session up; an unknown optional
//! transitive attribute is passed on with the Partial bit; a malformed MP_UNREACH_NLRI resets
//! the session, as RFC 7606 section 7.11 requires.

mod common;

use common::{block_on, ip, run_speaker, status};

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use clos_bgp::driver::{PeerPolicy, PeerSpec, SpeakerHandle, SpeakerSpec};
use clos_bgp::session::{RemoteAs, SessionConfig};
use clos_testkit::peers::Exabgp;
use clos_testkit::{NeighborSpec, Netns, PeerDaemon, SpeakerSpec as DaemonSpec, wait_until_with};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

// Where ExaBGP's UPDATEs go and what they carry.
const GOOD: &str = "198.51.100.0/24";
const BAD_MED: &str = "198.51.101.0/24";
const BAD_COMMUNITIES: &str = "198.51.102.0/24";
const AGGREGATE_OK: &str = "198.51.103.0/24";
const BAD_AGGREGATOR: &str = "198.51.104.0/24";
const BAD_ATOMIC_AGGREGATE: &str = "198.51.105.0/24";
const UNKNOWN_TRANSITIVE: &str = "198.51.106.0/24";
const BAD_MP_UNREACH: &str = "198.51.107.0/24";

/// The injecting ExaBGP's address, as our peer.
const INJECTOR: &str = "10.0.1.2";

struct Fabric {
    _namespaces: [Netns; 3],
    injector: Exabgp,
    sink: Exabgp,
    clos: SpeakerHandle,
}

/// injector (ExaBGP, AS 65002) — clos (AS 65001) — sink (ExaBGP, AS 65003).
fn fabric() -> Fabric {
    let mid = Netns::new().unwrap();
    let inj_ns = Netns::new().unwrap();
    let sink_ns = Netns::new().unwrap();
    let a = mid.link_to(&inj_ns).unwrap();
    let b = mid.link_to(&sink_ns).unwrap();
    mid.add_addr(&a.local, "10.0.1.1/30").unwrap();
    inj_ns.add_addr(&a.remote, "10.0.1.2/30").unwrap();
    mid.add_addr(&b.local, "10.0.2.1/30").unwrap();
    sink_ns.add_addr(&b.remote, "10.0.2.2/30").unwrap();
    let injector = Exabgp::start(
        &inj_ns,
        &DaemonSpec::new(65002, "10.0.1.2".parse().unwrap())
            .neighbor(NeighborSpec::new(ip("10.0.1.1"), 65001).local_address(ip(INJECTOR))),
    )
    .unwrap();
    let sink = Exabgp::start(
        &sink_ns,
        &DaemonSpec::new(65003, "10.0.2.2".parse().unwrap())
            .neighbor(NeighborSpec::new(ip("10.0.2.1"), 65001).local_address(ip("10.0.2.2"))),
    )
    .unwrap();
    let session = || SessionConfig::new(65001, "10.0.1.1".parse().unwrap(), RemoteAs::External);
    let mut to_injector = PeerSpec::new(ip(INJECTOR), session());
    to_injector.policy = PeerPolicy::accept_all();
    let mut to_sink = PeerSpec::new(ip("10.0.2.2"), session());
    to_sink.policy = PeerPolicy::accept_all();
    let clos = run_speaker(
        &mid,
        SpeakerSpec {
            listen: vec![
                SocketAddr::new(ip("10.0.1.1"), 179),
                SocketAddr::new(ip("10.0.2.1"), 179),
            ],
            peers: vec![to_injector, to_sink],
            listen_ranges: Vec::new(),
            originate: vec![],
            multipath: Default::default(),
        },
    );
    Fabric {
        _namespaces: [mid, inj_ns, sink_ns],
        injector,
        sink,
        clos,
    }
}

/// Has the injector announce `prefix` with these generic attributes (`[ type flags value ]`).
fn announce(exa: &Exabgp, prefix: &str, attributes: &[&str]) {
    let attrs: String = attributes
        .iter()
        .map(|a| format!(" attribute [ {a} ]"))
        .collect();
    exa.command(&format!(
        "neighbor 10.0.1.1 announce route {prefix} next-hop {INJECTOR}{attrs}"
    ))
    .unwrap();
}

/// The prefixes we hold from the injector after import policy.
fn from_injector(clos: &SpeakerHandle) -> Result<BTreeSet<String>, String> {
    let routes = block_on(clos.routes(Some(ip(INJECTOR))))
        .map_err(|e| e.to_string())?
        .ok_or("no such peer")?;
    Ok(routes.into_iter().map(|r| r.prefix).collect())
}

/// Waits until we hold exactly `expected` from the injector over an Established session.
fn wait_holding(f: &Fabric, what: &str, expected: &[&str]) {
    let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    wait_until_with(TIMEOUT, what, &[&f.injector, &f.sink], || {
        let got = from_injector(&f.clos)?;
        let state = status(&f.clos).peers[0].state.clone();
        if state == "Established" && got == expected {
            Ok(())
        } else {
            Err(format!("{state}, holding {got:?}").into())
        }
    })
    .unwrap();
}

/// Events of type `kind` from the injector's point of view of its session with us.
fn count_events(exa: &Exabgp, f: impl Fn(&Value) -> bool) -> usize {
    exa.events().iter().filter(|e| f(e)).count()
}

fn is_down(e: &Value) -> bool {
    e["type"] == "state" && e["neighbor"]["state"] == "down"
}

fn is_notification(e: &Value) -> bool {
    e["type"] == "notification"
}

/// The path attributes of the latest UPDATE the sink received announcing `prefix`.
fn sink_attributes(sink: &Exabgp, prefix: &str) -> Option<Value> {
    sink.events().into_iter().rev().find_map(|e| {
        let update = e.pointer("/neighbor/message/update")?;
        let announced = update
            .get("announce")?
            .as_object()?
            .values()
            .filter_map(Value::as_object)
            .flat_map(|by_nh| by_nh.values().filter_map(Value::as_array).flatten())
            .any(|n| n["nlri"] == prefix);
        announced.then(|| update.get("attribute").cloned().unwrap_or(Value::Null))
    })
}

fn wait_sink_attributes(f: &Fabric, prefix: &str) -> Value {
    wait_until_with(
        TIMEOUT,
        &format!("the sink to receive {prefix}"),
        &[&f.sink],
        || sink_attributes(&f.sink, prefix).ok_or_else(|| "not yet".into()),
    )
    .unwrap()
}

#[test]
fn malformed_updates_from_exabgp() {
    let f = fabric();
    f.injector
        .wait_established(ip("10.0.1.1"), TIMEOUT)
        .unwrap();
    f.sink.wait_established(ip("10.0.2.1"), TIMEOUT).unwrap();

    // Well-formed first: MED 100 and COMMUNITIES 65002:1 are fine.
    announce(&f.injector, GOOD, &[]);
    announce(&f.injector, BAD_MED, &["0x04 0x80 0x00000064"]);
    announce(&f.injector, BAD_COMMUNITIES, &["0x08 0xc0 0xfdea0001"]);
    wait_holding(
        &f,
        "the well-formed routes",
        &[GOOD, BAD_MED, BAD_COMMUNITIES],
    );

    // Malformed optional attributes:
    // - MED of 2 octets, COMMUNITIES of 3: treat-as-withdraw (RFC 7606 7.4, 7.8);
    // - AGGREGATOR of 5 octets, ATOMIC_AGGREGATE of 1: attribute discard (7.6, 7.7), with a
    //   well-formed pair on another prefix to show what is otherwise passed on;
    // - an unknown optional transitive attribute (type 99): kept (RFC 4271 5).
    announce(&f.injector, BAD_MED, &["0x04 0x80 0x0064"]);
    announce(&f.injector, BAD_COMMUNITIES, &["0x08 0xc0 0xfdea00"]);
    announce(
        &f.injector,
        AGGREGATE_OK,
        &["0x06 0x40 0x", "0x07 0xc0 0x0000fdea0a000102"],
    );
    announce(&f.injector, BAD_AGGREGATOR, &["0x07 0xc0 0x00fdea0a00"]);
    announce(&f.injector, BAD_ATOMIC_AGGREGATE, &["0x06 0x40 0x01"]);
    announce(&f.injector, UNKNOWN_TRANSITIVE, &["0x63 0xc0 0x01020304"]);
    wait_holding(
        &f,
        "treat-as-withdraw and attribute discard",
        &[
            GOOD,
            AGGREGATE_OK,
            BAD_AGGREGATOR,
            BAD_ATOMIC_AGGREGATE,
            UNKNOWN_TRANSITIVE,
        ],
    );
    // The session stayed up all along.
    assert_eq!(count_events(&f.injector, is_down), 0);
    assert_eq!(count_events(&f.injector, is_notification), 0);
    let s = status(&f.clos);
    assert_eq!(s.peers[0].received, 5, "{s:?}");

    // What the sink got: discarded attributes are gone, the rest passed on.
    let ok = wait_sink_attributes(&f, AGGREGATE_OK);
    assert_eq!(ok["atomic-aggregate"], true, "{ok}");
    assert!(ok.get("aggregator").is_some(), "{ok}");
    let aggregator = wait_sink_attributes(&f, BAD_AGGREGATOR);
    assert!(aggregator.get("aggregator").is_none(), "{aggregator}");
    let atomic = wait_sink_attributes(&f, BAD_ATOMIC_AGGREGATE);
    assert!(atomic.get("atomic-aggregate").is_none(), "{atomic}");
    // Optional transitive (0xC0) plus Partial (0x20): we did not recognise it.
    let unknown = wait_sink_attributes(&f, UNKNOWN_TRANSITIVE);
    assert_eq!(unknown["attribute-0x63-0xE0"], "0x01020304", "{unknown}");

    // MP_UNREACH_NLRI of 2 octets (no SAFI): the family is unknown, so session reset with
    // UPDATE Message Error / Optional Attribute Error (RFC 7606 7.11).
    announce(&f.injector, BAD_MP_UNREACH, &["0x0f 0x80 0x0001"]);
    let notification = wait_until_with(
        TIMEOUT,
        "the injector to receive our NOTIFICATION",
        &[&f.injector],
        || {
            f.injector
                .events()
                .into_iter()
                .find(is_notification)
                .ok_or_else(|| "none yet".into())
        },
    )
    .unwrap();
    let n = &notification["neighbor"]["notification"];
    assert_eq!(
        (n["code"].as_u64(), n["subcode"].as_u64()),
        (Some(3), Some(9)),
        "{n}"
    );
    // ExaBGP would resend the route on every reconnect: withdraw it, and the session comes
    // back with the routes that were fine, never with the malformed one.
    f.injector
        .command(&format!(
            "neighbor 10.0.1.1 withdraw route {BAD_MP_UNREACH} next-hop {INJECTOR}"
        ))
        .unwrap();
    wait_holding(
        &f,
        "the session back without the malformed route",
        &[
            GOOD,
            AGGREGATE_OK,
            BAD_AGGREGATOR,
            BAD_ATOMIC_AGGREGATE,
            UNKNOWN_TRANSITIVE,
        ],
    );
    assert!(count_events(&f.injector, is_down) >= 1);
}
