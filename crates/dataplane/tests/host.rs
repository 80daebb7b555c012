//! The host plumbing against a real kernel, each test in namespaces of its own (built with the
//! test kit), checked with iproute2 and by reading `/proc/sys` inside the namespace. Needs root.

use clos_dataplane::Error;
use clos_dataplane::host::{self, AddressReport, Host};
use clos_testkit::{Netns, Retry, wait_until};
use ipnet::IpNet;
use serde_json::Value;
use std::time::Duration;

fn open(ns: &Netns) -> Host {
    Host::open_in_netns(format!("/run/netns/{}", ns.name())).unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn json(ns: &Netns, args: &[&str]) -> Value {
    let mut all = vec!["-j"];
    all.extend_from_slice(args);
    let out = ns.ip(&all).unwrap();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip {args:?}: {e}: {out}"))
}

/// The interface's addresses as iproute2 sees them, with their DAD flags. (iproute2 before
/// 6.2 does not show an address's protocol: that ours carry IFA_PROTO shows in which link-local
/// addresses `sync_addresses` deletes.)
fn ip_addrs(ns: &Netns, dev: &str) -> Vec<(IpNet, Vec<String>)> {
    let v = json(ns, &["addr", "show", "dev", dev]);
    v[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let addr = format!(
                "{}/{}",
                a["local"].as_str().unwrap(),
                a["prefixlen"].as_u64().unwrap()
            );
            let flags = ["nodad", "tentative", "dadfailed"]
                .into_iter()
                .filter(|f| a[*f].as_bool() == Some(true))
                .map(str::to_owned)
                .collect();
            (net(&addr), flags)
        })
        .collect()
}

fn read_in(ns: &Netns, path: &str) -> String {
    ns.exec("cat", &[path]).unwrap().trim().to_owned()
}

#[test]
fn ifindex_of_missing_and_present() {
    let ns = Netns::new().unwrap();
    let mut h = open(&ns);
    assert_eq!(h.ifindex("nosuch0").unwrap(), None);
    assert_eq!(h.ifindex("lo").unwrap(), Some(1));
    assert!(matches!(
        h.ifindex("a/b"),
        Err(Error::InvalidInterfaceName { .. })
    ));
}

#[test]
fn ensure_dummy_is_idempotent_and_refuses_other_kinds() {
    let ns = Netns::new().unwrap();
    let other = Netns::new().unwrap();
    let mut h = open(&ns);

    // A veth or the loopback under the name wanted: refused, named, untouched.
    ns.link_named("clos9", &other, "peer9").unwrap();
    let err = h.ensure_dummy("clos9").unwrap_err();
    match &err {
        Error::NotDummy { name, kind } => {
            assert_eq!(name, "clos9");
            assert_eq!(kind, "veth");
        }
        e => panic!("unexpected {e:?}"),
    }
    assert!(err.to_string().contains("clos9"), "{err}");
    assert!(h.ifindex("clos9").unwrap().is_some());
    let err = h.ensure_dummy("lo").unwrap_err();
    assert!(matches!(err, Error::NotDummy { .. }), "{err}");

    let index = match h.ensure_dummy("clos0") {
        Ok(index) => index,
        Err(e @ Error::DummyUnsupported { .. }) => {
            // Kernels built without CONFIG_DUMMY (some VM kernels): the error says so.
            assert!(e.to_string().contains("CONFIG_DUMMY"), "{e}");
            eprintln!("skipping the rest: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let link = &json(&ns, &["-d", "link", "show", "dev", "clos0"])[0];
    assert_eq!(link["ifindex"].as_u64(), Some(u64::from(index)));
    assert_eq!(link["linkinfo"]["info_kind"].as_str(), Some("dummy"));
    assert!(is_up(&ns, "clos0"));
    assert_eq!(h.ifindex("clos0").unwrap(), Some(index));

    // Again: the same interface. Set down by hand: set up again.
    ns.ip(&["link", "set", "clos0", "down"]).unwrap();
    assert_eq!(h.ensure_dummy("clos0").unwrap(), index);
    assert!(is_up(&ns, "clos0"));

    // Deleting: gone, and deleting again is fine.
    h.delete_link(index).unwrap();
    assert_eq!(h.ifindex("clos0").unwrap(), None);
    h.delete_link(index).unwrap();
}

fn is_up(ns: &Netns, dev: &str) -> bool {
    json(ns, &["link", "show", "dev", dev])[0]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "UP")
}

#[test]
fn set_up_and_delete_link() {
    let ns = Netns::new().unwrap();
    let other = Netns::new().unwrap();
    let link = ns.link_to(&other).unwrap();
    let mut h = open(&ns);
    let index = h.ifindex(&link.local).unwrap().unwrap();
    ns.ip(&["link", "set", &link.local, "down"]).unwrap();
    h.set_up(index).unwrap();
    assert!(is_up(&ns, &link.local));
    h.set_up(index).unwrap();
    let err = h.set_up(99_999).unwrap_err();
    assert!(err.to_string().contains("index 99999"), "{err}");
    h.delete_link(index).unwrap();
    assert_eq!(h.ifindex(&link.local).unwrap(), None);
    h.delete_link(index).unwrap();
}

#[test]
fn sync_addresses_adds_removes_and_keeps_the_kernels_link_local() {
    // An endpoint's host-side veth (the agent's dummy behaves the same, and not every test
    // kernel has the dummy driver).
    let ns = Netns::new().unwrap();
    let endpoint = Netns::new().unwrap();
    let link = ns.link_to(&endpoint).unwrap();
    let dev = link.local.as_str();
    let mut h = open(&ns);
    let index = h.ifindex(dev).unwrap().unwrap();

    // The kernel gives the interface an IPv6 link-local address of its own once it is up and
    // has a carrier.
    let kernel_ll: Vec<IpNet> = wait_until(Duration::from_secs(10), "a kernel link-local", || {
        let ll: Vec<IpNet> = ip_addrs(&ns, dev)
            .into_iter()
            .map(|(a, ..)| a)
            .filter(|a| a.to_string().starts_with("fe80:"))
            .collect();
        if ll.len() == 1 {
            Ok(ll)
        } else {
            Err(Retry::Again(format!("{ll:?}")))
        }
    })
    .unwrap();

    // Addresses someone added by hand are not ours: they stay, like the kernel's link-local.
    ns.ip(&["addr", "add", "192.0.2.9/24", "dev", dev]).unwrap();
    ns.add_addr(dev, "fe80::2/64").unwrap();
    let mut untagged_ll = kernel_ll.clone();
    untagged_ll.push(net("fe80::2/64"));
    untagged_ll.push(net("192.0.2.9/24"));

    let desired = [
        net("10.0.0.5/32"),
        net("fd00::5/128"),
        net("fe80::1/64"),
        net("10.0.0.5/32"),
    ];
    let report = h.sync_addresses(index, &desired).unwrap();
    assert_eq!(
        report,
        AddressReport {
            added: vec![net("10.0.0.5/32"), net("fd00::5/128"), net("fe80::1/64")],
            deleted: vec![],
        }
    );
    let got = ip_addrs(&ns, dev);
    for want in &desired {
        let (_, flags) = got
            .iter()
            .find(|(a, ..)| a == want)
            .unwrap_or_else(|| panic!("{want} missing: {got:?}"));
        // IPv6 ones without DAD, so never tentative.
        if want.addr().is_ipv6() {
            assert!(flags.contains(&"nodad".to_owned()), "{got:?}");
            assert!(!flags.contains(&"tentative".to_owned()), "{got:?}");
        }
    }
    for ll in &untagged_ll {
        assert!(got.iter().any(|(a, ..)| a == ll), "{got:?}");
    }
    let mut listed = h.addresses(index).unwrap();
    listed.sort();
    let mut expected = vec![net("10.0.0.5/32"), net("fd00::5/128"), net("fe80::1/64")];
    expected.extend(&untagged_ll);
    expected.sort();
    assert_eq!(listed, expected);

    // Again: nothing to do.
    assert!(h.sync_addresses(index, &desired).unwrap().is_empty());

    // Change: IPv4 moves, the IPv6 one changes its prefix length, our link-local goes (it is
    // tagged ours); the untagged link-locals stay.
    let desired = [net("10.0.0.6/32"), net("fd00::5/64")];
    let report = h.sync_addresses(index, &desired).unwrap();
    let mut deleted = report.deleted.clone();
    deleted.sort();
    assert_eq!(
        deleted,
        vec![net("10.0.0.5/32"), net("fd00::5/128"), net("fe80::1/64")]
    );
    assert_eq!(report.added, vec![net("10.0.0.6/32"), net("fd00::5/64")]);
    let mut listed = h.addresses(index).unwrap();
    listed.sort();
    let mut expected = vec![net("10.0.0.6/32"), net("fd00::5/64")];
    expected.extend(&untagged_ll);
    expected.sort();
    assert_eq!(listed, expected);

    // Nothing desired: only the untagged link-locals are left.
    untagged_ll.sort();
    h.sync_addresses(index, &[]).unwrap();
    let mut listed = h.addresses(index).unwrap();
    listed.sort();
    assert_eq!(listed, untagged_ll);

    // Single adds and deletes are idempotent.
    h.add_address(index, net("10.1.0.1/32")).unwrap();
    h.add_address(index, net("10.1.0.1/32")).unwrap();
    h.del_address(index, net("10.1.0.1/32")).unwrap();
    h.del_address(index, net("10.1.0.1/32")).unwrap();
    h.del_address(index, net("fd00::77/128")).unwrap();
    let mut listed = h.addresses(index).unwrap();
    listed.sort();
    assert_eq!(listed, untagged_ll);

    // A missing interface: an error naming it.
    let err = h.add_address(99_999, net("10.1.0.1/32")).unwrap_err();
    assert!(matches!(err, Error::Address { .. }), "{err:?}");
    assert!(err.to_string().contains("index 99999"), "{err}");
}

#[test]
fn prepare_endpoint_interface_sets_sysctls_in_the_threads_namespace() {
    let ns = Netns::new().unwrap();
    let endpoint = Netns::new().unwrap();
    // The host side of an endpoint, existing only in `ns`.
    let link = ns.link_named("clos1fe38b00d9", &endpoint, "eth0").unwrap();
    let dev = link.local.clone();
    let conf4 = format!("/proc/sys/net/ipv4/conf/{dev}");
    let conf6 = format!("/proc/sys/net/ipv6/conf/{dev}");
    assert_eq!(read_in(&ns, &format!("{conf4}/proxy_arp")), "0");
    assert_eq!(read_in(&ns, "/proc/sys/net/ipv4/ip_forward"), "0");

    // The interface exists only in `ns`, so this fails unless /proc/sys follows the calling
    // thread's namespace.
    let name = dev.clone();
    ns.spawn_thread(move || {
        host::prepare_endpoint_interface(&name)?;
        host::enable_forwarding()
    })
    .unwrap()
    .join()
    .unwrap()
    .unwrap();

    assert_eq!(read_in(&ns, &format!("{conf4}/proxy_arp")), "1");
    assert_eq!(read_in(&ns, &format!("{conf4}/forwarding")), "1");
    assert_eq!(read_in(&ns, &format!("{conf4}/rp_filter")), "1");
    assert_eq!(
        read_in(&ns, &format!("/proc/sys/net/ipv4/neigh/{dev}/proxy_delay")),
        "0"
    );
    assert_eq!(read_in(&ns, &format!("{conf6}/forwarding")), "1");
    assert_eq!(read_in(&ns, &format!("{conf6}/accept_ra")), "0");
    assert_eq!(read_in(&ns, "/proc/sys/net/ipv4/ip_forward"), "1");
    assert_eq!(read_in(&ns, "/proc/sys/net/ipv6/conf/all/forwarding"), "1");
    // The endpoint's namespace was not touched.
    assert_eq!(read_in(&endpoint, "/proc/sys/net/ipv4/ip_forward"), "0");

    // Again: nothing to change, fine.
    let name = dev.clone();
    ns.spawn_thread(move || host::prepare_endpoint_interface(&name))
        .unwrap()
        .join()
        .unwrap()
        .unwrap();

    // The endpoint's gateway address: usable at once.
    let mut h = open(&ns);
    let index = h.ifindex(&dev).unwrap().unwrap();
    h.add_address(index, net("fe80::1/64")).unwrap();
    let got = ip_addrs(&ns, &dev);
    let (_, flags) = got.iter().find(|(a, ..)| *a == net("fe80::1/64")).unwrap();
    assert!(!flags.contains(&"tentative".to_owned()), "{got:?}");

    // An interface that is not in the thread's namespace, and names that are not interfaces.
    let err = ns
        .spawn_thread(|| host::prepare_endpoint_interface("nosuch0"))
        .unwrap()
        .join()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::UnknownInterface { .. }), "{err}");
    for bad in ["all", "default", "../../x"] {
        assert!(
            matches!(
                host::prepare_endpoint_interface(bad),
                Err(Error::InvalidInterfaceName { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn connected_interface_only_for_on_link_addresses() {
    let ns = Netns::new().unwrap();
    let other = Netns::new().unwrap();
    let link = ns.link_to(&other).unwrap();
    ns.add_addr(&link.local, "10.0.0.1/30").unwrap();
    ns.add_addr(&link.local, "2001:db8::1/64").unwrap();
    ns.ip(&["route", "add", "198.51.100.0/24", "via", "10.0.0.2"])
        .unwrap();
    let mut h = open(&ns);
    let index = h.ifindex(&link.local).unwrap();
    assert!(index.is_some());
    let ip = |s: &str| s.parse().unwrap();
    assert_eq!(h.connected_interface(ip("10.0.0.2")).unwrap(), index);
    assert_eq!(h.connected_interface(ip("2001:db8::2")).unwrap(), index);
    // Through a gateway, local, link-local or unreachable: not a usable next hop.
    assert_eq!(h.connected_interface(ip("198.51.100.7")).unwrap(), None);
    assert_eq!(h.connected_interface(ip("10.0.0.1")).unwrap(), None);
    assert_eq!(h.connected_interface(ip("fe80::1")).unwrap(), None);
    assert_eq!(h.connected_interface(ip("192.0.2.1")).unwrap(), None);
}
