//! Policy-level tests: config parsing and validation, term ordering, actions, and the
//! property tests for policy semantics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;
use crate::iana::Origin;
use crate::wire::attr::{AsPath, Community, LargeCommunity, PathAttributes};

fn config(json: &str) -> PolicyConfig {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}\n{json}"))
}

fn compile(json: &str) -> PolicySet {
    config(json).compile().unwrap()
}

fn route(prefix: &str) -> RouteContext {
    RouteContext::new(prefix.parse().unwrap(), 65001, PeerKind::External, 65000)
}

fn attrs() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence([65001, 65010])),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        communities: vec![Community::new(65001, 7)],
        ..Default::default()
    }
}

fn invalid_field(json: &str) -> String {
    match config(json).validate() {
        Err(Error::InvalidPolicy { field, problem }) => {
            assert!(!problem.is_empty());
            field
        }
        other => panic!("expected InvalidPolicy, got {other:?}"),
    }
}

const EXAMPLE: &str = r#"{
  "prefix_lists": {
    "tenant-blocks": [
      { "action": "permit", "prefix": "10.1.0.0/16", "ge": 24, "le": 32 },
      { "action": "permit", "prefix": "2001:db8:1::/48", "le": 128 }
    ],
    "default-route": [ { "action": "permit", "prefix": "0.0.0.0/0" } ],
    "empty": []
  },
  "as_path_lists": {
    "from-tor": [
      { "action": "deny", "length": { "ge": 10 } },
      { "action": "permit", "pattern": "^65001 .*" }
    ]
  },
  "community_lists": {
    "blackhole": { "any": ["blackhole", "65000:666"] },
    "none": { "any": [] }
  },
  "large_community_lists": { "tenant-tagged": { "any": ["65000:1:*"] } },
  "policies": {
    "host-export": {
      "terms": [
        { "name": "own-blocks", "match": { "prefix_list": "tenant-blocks" },
          "set": { "add_large_communities": ["65000:1:42"] }, "then": "accept" }
      ],
      "default": "reject"
    },
    "gateway-standby-export": {
      "terms": [
        { "match": { "prefix_list": "default-route" },
          "set": { "prepend": { "count": 3 }, "med": 100 }, "then": "accept" }
      ]
    },
    "tor-import": {
      "terms": [
        { "match": { "community": "blackhole" }, "then": "reject" },
        { "match": { "as_path": "from-tor", "family": "ipv4" },
          "set": { "local_pref": 200, "remove_communities": ["65001:*"] }, "then": "accept" },
        { "match": "any", "set": { "weight": 10 }, "then": "accept" }
      ]
    }
  }
}"#;

#[test]
fn example_config_compiles_and_round_trips() {
    let c = config(EXAMPLE);
    let set = c.compile().unwrap();
    assert_eq!(
        set.names().collect::<Vec<_>>(),
        ["gateway-standby-export", "host-export", "tor-import"]
    );
    let back: PolicyConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
    assert_eq!(back, c);
}

/// The YAML example of the module docs, as an operator would write it.
fn doc_example_yaml() -> String {
    let docs = include_str!("mod.rs");
    let start = docs
        .find("//! ```yaml\n")
        .expect("the docs have a YAML example");
    docs[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("//! ```"))
        .map(|l| {
            l.strip_prefix("//!")
                .unwrap_or(l)
                .strip_prefix(' ')
                .unwrap_or("")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn doc_yaml_example_is_the_json_example() {
    let yaml: PolicyConfig = serde_yaml_ng::from_str(&doc_example_yaml()).unwrap();
    yaml.compile().unwrap();
    let mut json = config(EXAMPLE);
    // The JSON example adds lists for other tests.
    json.prefix_lists.remove("empty");
    json.community_lists.remove("none");
    assert_eq!(yaml, json);
    let e =
        serde_yaml_ng::from_str::<PolicyConfig>("policies: { p: { terms: [], default: maybe } }")
            .unwrap_err();
    assert!(e.to_string().contains("unknown variant `maybe`"), "{e}");
}

#[test]
fn example_policies_behave() {
    let set = compile(EXAMPLE);

    // host-export: own blocks tagged, anything else rejected.
    let p = set.get("host-export").unwrap();
    let mut a = attrs();
    assert_eq!(p.apply(&route("10.1.2.3/32"), &mut a), Verdict::Accept);
    assert_eq!(a.large_communities, vec![LargeCommunity::new(65000, 1, 42)]);
    assert_eq!(
        p.apply(&route("10.2.0.0/24"), &mut attrs()),
        Verdict::Reject
    );
    assert_eq!(
        p.apply(&route("10.1.0.0/16"), &mut attrs()),
        Verdict::Reject
    );

    // gateway standby: the default route goes out with three more copies of our AS.
    let p = set.get("gateway-standby-export").unwrap();
    let mut a = attrs();
    let d = p.evaluate(&route("0.0.0.0/0"), &mut a);
    assert_eq!(d.verdict, Verdict::Accept);
    assert!(d.sets_med);
    assert_eq!(
        a.as_path,
        Some(AsPath::sequence([65000, 65000, 65000, 65001, 65010]))
    );
    assert_eq!(a.med, Some(100));

    // tor-import: blackhole rejected first, then from-tor preferred and scrubbed.
    let p = set.get("tor-import").unwrap();
    let mut a = attrs();
    a.communities.push(Community::BLACKHOLE);
    assert_eq!(p.apply(&route("10.9.0.0/24"), &mut a), Verdict::Reject);
    let mut a = attrs();
    let d = p.evaluate(&route("10.9.0.0/24"), &mut a);
    assert_eq!((d.verdict, d.weight), (Verdict::Accept, None));
    assert_eq!((a.local_pref, a.communities.len()), (Some(200), 0));
    // IPv6 falls through to the catch-all.
    let mut a = attrs();
    let d = p.evaluate(&route("2001:db8::/64"), &mut a);
    assert_eq!((d.verdict, d.weight), (Verdict::Accept, Some(10)));
    assert_eq!(a.local_pref, None);
}

#[test]
fn first_match_and_next_terms() {
    let set = compile(
        r#"{ "community_lists": { "a": { "any": ["65000:1"] }, "b": { "any": ["65000:2"] } },
            "policies": { "p": { "terms": [
              { "name": "tag", "match": "any", "set": { "add_communities": ["65000:1"] },
                "then": "next" },
              { "name": "sees-tag", "match": { "community": "a" }, "set": { "med": 1 },
                "then": "accept" },
              { "name": "never", "match": "any", "set": { "med": 2 }, "then": "accept" }
            ], "default": "reject" } } }"#,
    );
    let p = set.get("p").unwrap();
    let mut a = attrs();
    assert_eq!(p.apply(&route("10.0.0.0/8"), &mut a), Verdict::Accept);
    assert_eq!(
        a.med,
        Some(1),
        "the second term sees the first term's community"
    );
    assert!(a.communities.contains(&Community::new(65000, 1)));

    let set = compile(
        r#"{ "prefix_lists": { "ten": [ { "action": "permit", "prefix": "10.0.0.0/8", "le": 32 } ] },
            "policies": { "p": { "terms": [
              { "match": { "prefix_list": "ten" }, "then": "reject" },
              { "match": { "prefix_list": "ten" }, "set": { "med": 9 }, "then": "accept" },
              { "match": { "peer_as": 65001 }, "set": { "med": 3 }, "then": "accept" }
            ], "default": "accept" } } }"#,
    );
    let p = set.get("p").unwrap();
    let mut a = attrs();
    assert_eq!(p.apply(&route("10.1.0.0/16"), &mut a), Verdict::Reject);
    let mut a = attrs();
    assert_eq!(p.apply(&route("192.0.2.0/24"), &mut a), Verdict::Accept);
    assert_eq!(a.med, Some(3));
    let mut r = route("192.0.2.0/24");
    r.peer_as = 65002;
    let mut a = attrs();
    assert_eq!(p.apply(&r, &mut a), Verdict::Accept, "default");
    assert_eq!(a, attrs(), "the default verdict changes nothing");
}

#[test]
fn each_condition() {
    let set = compile(
        r#"{ "large_community_lists": { "l": { "all": ["1:2:3", "1:*:4"] } },
            "as_path_lists": { "orig": [ { "action": "permit", "origin_as": 65010 } ] },
            "policies": {
              "fam6": { "terms": [ { "match": { "family": "ipv6" }, "then": "accept" } ] },
              "nh": { "terms": [ { "match": { "next_hop": "192.0.2.0/24" }, "then": "accept" } ] },
              "nh1": { "terms": [ { "match": { "next_hop": "2001:db8::1" }, "then": "accept" } ] },
              "egp": { "terms": [ { "match": { "origin": "egp" }, "then": "accept" } ] },
              "igp": { "terms": [ { "match": { "origin": "igp" }, "then": "accept" } ] },
              "peer": { "terms": [ { "match": { "peer_as": 65001 }, "then": "accept" } ] },
              "large": { "terms": [ { "match": { "large_community": "l" }, "then": "accept" } ] },
              "orig": { "terms": [ { "match": { "as_path": "orig" }, "then": "accept" } ] },
              "both": { "terms": [ { "match": { "as_path": "orig", "family": "ipv6" },
                                      "then": "accept" } ] }
            } }"#,
    );
    let v = |name: &str, r: &RouteContext, a: &PathAttributes| {
        set.get(name).unwrap().apply(r, &mut a.clone())
    };
    let v4 = route("10.0.0.0/8");
    let v6 = route("2001:db8::/32");
    let a = attrs();
    let mut large = attrs();
    large.large_communities = vec![LargeCommunity::new(1, 2, 3), LargeCommunity::new(1, 9, 4)];
    let mut nh6 = v6;
    nh6.next_hop = Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)));
    let mut other_peer = v4;
    other_peer.peer_as = 65002;
    use Verdict::{Accept, Reject};
    #[rustfmt::skip]
    let cases: &[(&str, &RouteContext, &PathAttributes, Verdict)] = &[
        ("fam6", &v6, &a, Accept),
        ("fam6", &v4, &a, Reject),
        ("nh", &v4, &a, Accept),
        ("nh", &nh6, &a, Reject),
        ("nh1", &nh6, &a, Accept),
        ("nh1", &v4, &a, Reject),
        ("egp", &v4, &a, Reject),
        ("igp", &v4, &a, Accept),
        ("igp", &v4, &PathAttributes::default(), Reject),
        ("peer", &v4, &a, Accept),
        ("peer", &other_peer, &a, Reject),
        ("large", &v4, &large, Accept),
        ("large", &v4, &a, Reject),
        ("orig", &v4, &a, Accept),
        ("orig", &v4, &PathAttributes::default(), Reject),
        ("both", &v4, &a, Reject),
        ("both", &v6, &a, Accept),
    ];
    for (name, r, at, want) in cases {
        assert_eq!(v(name, r, at), *want, "{name} {:?}", r.prefix);
    }
}

#[test]
fn community_actions() {
    let set = compile(
        r#"{ "policies": {
              "replace": { "terms": [ { "match": "any",
                  "set": { "communities": ["65000:1", "no-export", "65000:1"] }, "then": "accept" } ] },
              "clear": { "terms": [ { "match": "any", "set": { "communities": [] },
                  "then": "accept" } ] },
              "edit": { "terms": [ { "match": "any",
                  "set": { "communities": ["1:1", "1:2", "2:1"], "remove_communities": ["1:*"],
                           "add_communities": ["2:1", "3:3"] }, "then": "accept" } ] },
              "large": { "terms": [ { "match": "any",
                  "set": { "remove_large_communities": ["65001:*:*"],
                           "add_large_communities": ["65000:0:1"] }, "then": "accept" } ] },
              "large-set": { "terms": [ { "match": "any",
                  "set": { "large_communities": ["7:7:7"] }, "then": "accept" } ] }
            } }"#,
    );
    let run = |name: &str, a: &mut PathAttributes| {
        assert_eq!(
            set.get(name).unwrap().apply(&route("10.0.0.0/8"), a),
            Verdict::Accept
        );
    };
    let mut a = attrs();
    run("replace", &mut a);
    assert_eq!(
        a.communities,
        vec![Community::new(65000, 1), Community::NO_EXPORT]
    );
    run("clear", &mut a);
    assert!(a.communities.is_empty());
    run("edit", &mut a);
    assert_eq!(
        a.communities,
        vec![Community::new(2, 1), Community::new(3, 3)]
    );

    let mut a = attrs();
    a.large_communities = vec![
        LargeCommunity::new(65001, 5, 5),
        LargeCommunity::new(65002, 1, 1),
    ];
    run("large", &mut a);
    assert_eq!(
        a.large_communities,
        vec![
            LargeCommunity::new(65002, 1, 1),
            LargeCommunity::new(65000, 0, 1)
        ]
    );
    run("large-set", &mut a);
    assert_eq!(a.large_communities, vec![LargeCommunity::new(7, 7, 7)]);
}

#[test]
fn prepend_and_next_hop_actions() {
    let set = compile(
        r#"{ "policies": {
              "own": { "terms": [ { "match": "any", "set": { "prepend": { "count": 2 } },
                  "then": "accept" } ] },
              "other": { "terms": [ { "match": "any",
                  "set": { "prepend": { "count": 1, "asn": 4200000001 } }, "then": "accept" } ] },
              "nh-self": { "terms": [ { "match": "any", "set": { "next_hop": "self" },
                  "then": "accept" } ] },
              "nh-v6": { "terms": [ { "match": "any", "set": { "next_hop": "2001:db8::9" },
                  "then": "accept" } ] },
              "lp-weight": { "terms": [ { "match": "any",
                  "set": { "local_pref": 50, "weight": 7 }, "then": "accept" } ] }
            } }"#,
    );
    let mut a = attrs();
    set.get("own").unwrap().apply(&route("10.0.0.0/8"), &mut a);
    assert_eq!(
        a.as_path,
        Some(AsPath::sequence([65000, 65000, 65001, 65010]))
    );
    let mut a = PathAttributes::default();
    set.get("other")
        .unwrap()
        .apply(&route("10.0.0.0/8"), &mut a);
    assert_eq!(a.as_path, Some(AsPath::sequence([4_200_000_001])));

    let mut r = route("10.0.0.0/8");
    r.local_address = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    let mut a = attrs();
    let d = set.get("nh-self").unwrap().evaluate(&r, &mut a);
    assert_eq!(d.next_hop, Some(NextHopSetting::SelfAddress));
    assert_eq!(a.next_hop, Some(Ipv4Addr::new(10, 0, 0, 1)));

    // An IPv6 next hop is only reported: NEXT_HOP cannot carry it.
    let mut a = attrs();
    let d = set.get("nh-v6").unwrap().evaluate(&r, &mut a);
    assert_eq!(
        d.next_hop,
        Some(NextHopSetting::Address("2001:db8::9".parse().unwrap()))
    );
    assert_eq!(a.next_hop, attrs().next_hop);

    let mut a = attrs();
    let d = set.get("lp-weight").unwrap().evaluate(&r, &mut a);
    assert_eq!(
        (a.local_pref, d.weight, d.sets_med),
        (Some(50), Some(7), false)
    );
}

#[test]
fn empty_selectors_match_nothing() {
    let set = compile(
        r#"{ "prefix_lists": { "e": [] }, "as_path_lists": { "e": [] },
            "community_lists": { "any": { "any": [] }, "all": { "all": [] } },
            "large_community_lists": { "e": { "all": [] } },
            "policies": {
              "pl": { "terms": [ { "match": { "prefix_list": "e" }, "then": "accept" } ] },
              "ap": { "terms": [ { "match": { "as_path": "e" }, "then": "accept" } ] },
              "c-any": { "terms": [ { "match": { "community": "any" }, "then": "accept" } ] },
              "c-all": { "terms": [ { "match": { "community": "all" }, "then": "accept" } ] },
              "lc": { "terms": [ { "match": { "large_community": "e" }, "then": "accept" } ] }
            } }"#,
    );
    for name in ["pl", "ap", "c-any", "c-all", "lc"] {
        for prefix in ["0.0.0.0/0", "10.0.0.0/8", "::/0"] {
            let mut a = attrs();
            assert_eq!(
                set.get(name).unwrap().apply(&route(prefix), &mut a),
                Verdict::Reject,
                "{name} {prefix}"
            );
        }
    }
}

#[test]
fn deserialize_rejects_unknown_and_malformed() {
    #[rustfmt::skip]
    let cases: &[(&str, &str)] = &[
        (r#"{ "prefix_list": {} }"#, "unknown field `prefix_list`"),
        (r#"{ "prefix_lists": { "a": [ { "action": "permit", "prefix": "10.0.0.0/8", "eq": 8 } ] } }"#,
            "unknown field `eq`"),
        (r#"{ "prefix_lists": { "a": [ { "action": "allow", "prefix": "10.0.0.0/8" } ] } }"#,
            "unknown variant `allow`"),
        (r#"{ "prefix_lists": { "a": [ { "action": "permit", "prefix": "10.0.0.0" } ] } }"#,
            "invalid IP address syntax"),
        (r#"{ "community_lists": { "a": { "some": [] } } }"#, "unknown field `some`"),
        (r#"{ "community_lists": { "a": {} } }"#, "exactly one of `any: [...]`"),
        (r#"{ "community_lists": { "a": { "any": [], "all": [] } } }"#, "exactly one of"),
        (r#"{ "community_lists": { "a": { "any": ["65000:x"] } } }"#, "ASN:VALUE"),
        (r#"{ "as_path_lists": { "a": [ { "action": "permit", "pattern": "^a$" } ] } }"#,
            "AS-path pattern"),
        (r#"{ "policies": { "p": { "terms": [ { "match": "all", "then": "accept" } ] } } }"#,
            "`any` or a map of match conditions"),
        (r#"{ "policies": { "p": { "terms": [ { "match": { "prefix": "x" }, "then": "accept" } ] } } }"#,
            "unknown field `prefix`"),
        (r#"{ "policies": { "p": { "terms": [ { "match": "any", "then": "permit" } ] } } }"#,
            "unknown variant `permit`"),
        (r#"{ "policies": { "p": { "terms": [ { "match": "any" } ] } } }"#, "missing field `then`"),
        (r#"{ "policies": { "p": { "terms": [ { "then": "accept" } ] } } }"#, "missing field `match`"),
        (r#"{ "policies": { "p": { "terms": [ { "match": "any", "then": "accept",
            "set": { "prepend": { "count": 0 } } } ] } } }"#, "from 1 to 16"),
        (r#"{ "policies": { "p": { "terms": [ { "match": "any", "then": "accept",
            "set": { "prepend": { "count": 17 } } } ] } } }"#, "from 1 to 16"),
        (r#"{ "policies": { "p": { "terms": [ { "match": "any", "then": "accept",
            "set": { "next_hop": "me" } } ] } } }"#, "write `self` or an address"),
        (r#"{ "policies": { "p": { "terms": [ { "match": "any", "then": "accept",
            "set": { "localpref": 1 } } ] } } }"#, "unknown field `localpref`"),
        (r#"{ "policies": { "p": { "terms": [], "defaults": "accept" } } }"#,
            "unknown field `defaults`"),
    ];
    for (json, want) in cases {
        let e = serde_json::from_str::<PolicyConfig>(json)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{json}\n  gave: {e}\n  want: {want}");
    }
}

#[test]
fn validate_names_the_bad_field() {
    let pl = |entry: &str| format!(r#"{{ "prefix_lists": {{ "t": [ {entry} ] }} }}"#);
    let term = |t: &str| format!(r#"{{ "policies": {{ "p": {{ "terms": [ {t} ] }} }} }}"#);
    #[rustfmt::skip]
    let cases: Vec<(String, &str)> = vec![
        (pl(r#"{ "action": "permit", "prefix": "10.0.0.0/8", "ge": 24, "le": 16 }"#), "prefix_lists.t[0].le"),
        (pl(r#"{ "action": "permit", "prefix": "10.0.0.0/8", "ge": 4 }"#), "prefix_lists.t[0].ge"),
        (pl(r#"{ "action": "permit", "prefix": "10.0.0.0/8", "le": 7 }"#), "prefix_lists.t[0].le"),
        (pl(r#"{ "action": "permit", "prefix": "10.0.0.0/8", "le": 33 }"#), "prefix_lists.t[0].le"),
        (pl(r#"{ "action": "permit", "prefix": "2001:db8::/32", "ge": 129 }"#), "prefix_lists.t[0].ge"),
        (pl(r#"{ "action": "permit", "prefix": "10.0.0.1/8" }"#), "prefix_lists.t[0].prefix"),
        (r#"{ "prefix_lists": { "bad name": [] } }"#.into(), "prefix_lists.bad name"),
        (r#"{ "as_path_lists": { "a": [ { "action": "permit" } ] } }"#.into(), "as_path_lists.a[0]"),
        (r#"{ "as_path_lists": { "a": [ { "action": "permit", "length": { "ge": 3, "le": 2 } } ] } }"#.into(),
            "as_path_lists.a[0].length.le"),
        (r#"{ "as_path_lists": { "a": [ { "action": "permit", "length": { "eq": 3, "le": 2 } } ] } }"#.into(),
            "as_path_lists.a[0].length"),
        (r#"{ "as_path_lists": { "a": [ { "action": "permit", "length": {} } ] } }"#.into(),
            "as_path_lists.a[0].length"),
        (term(r#"{ "match": {}, "then": "accept" }"#), "policies.p.terms[0].match"),
        (term(r#"{ "match": { "prefix_list": "nope" }, "then": "accept" }"#),
            "policies.p.terms[0].match.prefix_list"),
        (term(r#"{ "match": { "as_path": "nope" }, "then": "accept" }"#), "policies.p.terms[0].match.as_path"),
        (term(r#"{ "match": { "community": "nope" }, "then": "accept" }"#),
            "policies.p.terms[0].match.community"),
        (term(r#"{ "match": { "large_community": "nope" }, "then": "accept" }"#),
            "policies.p.terms[0].match.large_community"),
        (term(r#"{ "match": "any", "set": { "med": 1 }, "then": "reject" }"#), "policies.p.terms[0].set"),
        (term(r#"{ "match": "any", "then": "next" }"#), "policies.p.terms[0].then"),
        (term(r#"{ "match": "any", "set": { "add_communities": ["65000:*"] }, "then": "accept" }"#),
            "policies.p.terms[0].set.add_communities"),
        (term(r#"{ "match": "any", "set": { "communities": ["*:1"] }, "then": "accept" }"#),
            "policies.p.terms[0].set.communities"),
        (term(r#"{ "match": "any", "set": { "add_large_communities": ["1:*:1"] }, "then": "accept" }"#),
            "policies.p.terms[0].set.add_large_communities"),
        (term(r#"{ "match": "any", "set": { "prepend": { "count": 1, "asn": 0 } }, "then": "accept" }"#),
            "policies.p.terms[0].set.prepend.asn"),
        (term(r#"{ "name": "x", "match": "any", "then": "accept" },
                 { "name": "x", "match": "any", "then": "accept" }"#), "policies.p.terms[1].name"),
    ];
    for (json, want) in &cases {
        assert_eq!(invalid_field(json), *want, "{json}");
    }
    // The message says what to do.
    let e = config(&pl(
        r#"{ "action": "permit", "prefix": "10.0.0.0/8", "ge": 24, "le": 16 }"#,
    ))
    .compile()
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("le 16 is less than ge 24") && e.contains("swap"),
        "{e}"
    );
    let e = config(&term(r#"{ "match": {}, "then": "accept" }"#))
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("match: any"), "{e}");
    let e = config(&pl(r#"{ "action": "permit", "prefix": "10.0.0.1/8" }"#))
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("write 10.0.0.0/8"), "{e}");
}

// ----- properties -----

fn arb_community() -> impl Strategy<Value = Community> {
    prop_oneof![
        (0u16..4, 0u16..4).prop_map(|(a, v)| Community::new(a, v)),
        Just(Community::NO_EXPORT),
        Just(Community::GRACEFUL_SHUTDOWN),
    ]
}

fn arb_attrs() -> impl Strategy<Value = PathAttributes> {
    (
        proptest::option::of(prop_oneof![Just(Origin::Igp), Just(Origin::Incomplete)]),
        proptest::option::of(proptest::collection::vec(1u32..70_000, 0..6)),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::collection::vec(arb_community(), 0..4),
        proptest::collection::vec((0u32..3, 0u32..3, 0u32..3), 0..3),
    )
        .prop_map(
            |(origin, path, med, lp, communities, large)| PathAttributes {
                origin,
                as_path: path.map(AsPath::sequence),
                next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
                med,
                local_pref: lp,
                communities,
                large_communities: large
                    .into_iter()
                    .map(|(g, a, b)| LargeCommunity::new(g, a, b))
                    .collect(),
                ..Default::default()
            },
        )
}

fn arb_route() -> impl Strategy<Value = RouteContext> {
    (
        any::<bool>(),
        any::<u128>(),
        any::<u8>(),
        1u32..70_000,
        any::<bool>(),
    )
        .prop_map(|(v6, addr, len, peer_as, internal)| {
            let prefix = if v6 {
                crate::wire::prefix::Prefix::new(IpAddr::V6(Ipv6Addr::from(addr)), len % 129)
            } else {
                crate::wire::prefix::Prefix::new(IpAddr::V4(Ipv4Addr::from(addr as u32)), len % 33)
            }
            .unwrap();
            let kind = if internal {
                PeerKind::Internal
            } else {
                PeerKind::External
            };
            RouteContext::new(prefix, peer_as, kind, 65000)
        })
}

/// One empty selector of each kind, each alone in an accepting term, with other conditions
/// that always hold next to it.
const EMPTY_SELECTORS: &str = r#"{
  "prefix_lists": { "e": [] }, "as_path_lists": { "e": [] },
  "community_lists": { "any": { "any": [] }, "all": { "all": [] } },
  "large_community_lists": { "any": { "any": [] }, "all": { "all": [] } },
  "policies": { "p": { "terms": [
    { "match": { "prefix_list": "e" }, "set": { "med": 1 }, "then": "accept" },
    { "match": { "as_path": "e" }, "set": { "med": 1 }, "then": "accept" },
    { "match": { "community": "any" }, "set": { "med": 1 }, "then": "accept" },
    { "match": { "community": "all" }, "set": { "med": 1 }, "then": "accept" },
    { "match": { "large_community": "any" }, "set": { "med": 1 }, "then": "accept" },
    { "match": { "large_community": "all" }, "set": { "med": 1 }, "then": "accept" },
    { "match": { "community": "all", "peer_as": 65001 }, "set": { "med": 1 }, "then": "next" }
  ], "default": "reject" } }
}"#;

proptest! {
    #[test]
    fn an_empty_selector_matches_nothing(route in arb_route(), a in arb_attrs()) {
        let set = compile(EMPTY_SELECTORS);
        let mut out = a.clone();
        let d = set.get("p").unwrap().evaluate(&route, &mut out);
        prop_assert_eq!(d.verdict, Verdict::Reject);
        prop_assert_eq!(out, a, "no term matched, so nothing was set");
    }

    #[test]
    fn accepting_everything_changes_nothing(route in arb_route(), a in arb_attrs()) {
        let set = compile(r#"{ "policies": {
            "terms": { "terms": [ { "match": "any", "then": "accept" } ] },
            "default": { "terms": [], "default": "accept" } } }"#);
        for p in [set.get("terms").unwrap(), set.get("default").unwrap(), &Policy::accept_all()] {
            let mut out = a.clone();
            let d = p.evaluate(&route, &mut out);
            prop_assert_eq!(d.verdict, Verdict::Accept);
            prop_assert_eq!((d.weight, d.next_hop, d.sets_med), (None, None, false));
            prop_assert_eq!(&out, &a);
        }
        let mut out = a.clone();
        prop_assert_eq!(
            effective(None, PeerKind::Internal).apply(&route, &mut out),
            Verdict::Accept
        );
        prop_assert_eq!(&out, &a);
    }

    #[test]
    fn prepend_n_adds_n_to_the_path_length(
        route in arb_route(), a in arb_attrs(), n in 1u8..=16, asn in proptest::option::of(1u32..),
    ) {
        let mut cfg = PolicyConfig::default();
        cfg.policies.insert("p".into(), PolicyDef {
            terms: vec![TermDef {
                name: None,
                matches: TermMatch::Any,
                set: SetActions {
                    prepend: Some(Prepend { count: PrependCount::new(n).unwrap(), asn }),
                    ..Default::default()
                },
                then: Then::Accept,
            }],
            default: Verdict::Reject,
        });
        let set = cfg.compile().unwrap();
        let old = a.as_path.as_ref().map_or(0, AsPath::path_len);
        let mut out = a.clone();
        prop_assert_eq!(set.get("p").unwrap().apply(&route, &mut out), Verdict::Accept);
        let path = out.as_path.clone().unwrap();
        prop_assert_eq!(path.path_len(), old + usize::from(n));
        prop_assert_eq!(path.first_as(), Some(asn.unwrap_or(route.local_as)));
        // Everything but the path is untouched.
        out.as_path = a.as_path.clone();
        prop_assert_eq!(out, a);
    }

    #[test]
    fn well_known_filters_agree_with_rfc1997(a in arb_attrs(), internal in any::<bool>()) {
        let kind = if internal { PeerKind::Internal } else { PeerKind::External };
        let blocked = a.communities.contains(&Community::NO_ADVERTISE)
            || (!internal && a.communities.contains(&Community::NO_EXPORT));
        prop_assert_eq!(export_allowed(&a, kind), !blocked);
    }

    #[test]
    fn graceful_shutdown_only_lowers_carriers(a in arb_attrs()) {
        let mut out = a.clone();
        let had = graceful_shutdown_import(&mut out);
        prop_assert_eq!(had, a.communities.contains(&Community::GRACEFUL_SHUTDOWN));
        if had {
            prop_assert_eq!(out.local_pref, Some(0));
            out.local_pref = a.local_pref;
        }
        prop_assert_eq!(out, a);
    }
}
