//! `clos lab check`: a reachability matrix between every pair of hosts (ping from inside the
//! source host's namespace, from its own address), and ECMP: every host must reach each host of
//! another rack through as many equal-cost next hops as it has uplinks, read from the kernel
//! route in its namespace.

use std::net::Ipv4Addr;

use serde::Serialize;
use serde_json::Value;

use crate::error::Result;
use crate::sys;

/// One ping from one host to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reach {
    pub from: String,
    pub to: String,
    pub to_address: Ipv4Addr,
    pub ok: bool,
}

/// The kernel's route from one host towards a host of another rack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ecmp {
    pub host: String,
    pub towards: String,
    /// The matching route's destination, if any.
    pub route: Option<String>,
    pub next_hops: usize,
    pub devices: Vec<String>,
    pub want: usize,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub reachability: Vec<Reach>,
    pub ecmp: Vec<Ecmp>,
    pub ok: bool,
    /// What failed, one line each.
    pub failures: Vec<String>,
}

/// A host as the check sees it.
#[derive(Debug, Clone)]
pub struct CheckHost {
    pub name: String,
    pub netns: String,
    pub rack: String,
    pub address: Ipv4Addr,
    pub uplinks: usize,
}

/// One ping, up to `tries` times (the first may wait for neighbour discovery).
fn ping(netns: &str, from: Ipv4Addr, to: Ipv4Addr, tries: u32) -> bool {
    (0..tries).any(|_| {
        sys::netns_exec(
            netns,
            "ping",
            &[
                "-c",
                "1",
                "-W",
                "1",
                "-q",
                "-I",
                &from.to_string(),
                &to.to_string(),
            ],
        )
        .is_ok()
    })
}

fn prefix_len(dst: &str) -> u8 {
    match dst {
        "default" => 0,
        d => d
            .split_once('/')
            .and_then(|(_, l)| l.parse().ok())
            .unwrap_or(32),
    }
}

/// The most specific of `ip -j route show match ADDR`'s routes: (dst, next hops, devices).
/// A route through a nexthop group whose members are not listed inline has its group size
/// looked up with `group_size`.
pub fn best_route(
    routes: &Value,
    group_size: impl Fn(u64) -> Option<(usize, Vec<String>)>,
) -> Option<(String, usize, Vec<String>)> {
    let best = routes
        .as_array()?
        .iter()
        .filter(|r| {
            r.get("type")
                .and_then(Value::as_str)
                .is_none_or(|t| t == "unicast")
        })
        .max_by_key(|r| prefix_len(r.get("dst").and_then(Value::as_str).unwrap_or("default")))?;
    let dst = best
        .get("dst")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    if let Some(hops) = best.get("nexthops").and_then(Value::as_array) {
        let devs = hops
            .iter()
            .filter_map(|h| h.get("dev").and_then(Value::as_str).map(str::to_string))
            .collect();
        return Some((dst, hops.len(), devs));
    }
    if let Some(id) = best.get("nhid").and_then(Value::as_u64)
        && let Some((n, devs)) = group_size(id)
    {
        return Some((dst, n, devs));
    }
    let devs: Vec<String> = best
        .get("dev")
        .and_then(Value::as_str)
        .map(|d| vec![d.to_string()])
        .unwrap_or_default();
    Some((dst, 1, devs))
}

pub(crate) fn nexthop_group(netns: &str, id: u64) -> Option<(usize, Vec<String>)> {
    let out = sys::ip_n(netns, &["-j", "nexthop", "show", "id", &id.to_string()]).ok()?;
    let v: Value = serde_json::from_str(&out).ok()?;
    let nh = v.as_array()?.first()?;
    match nh.get("group").and_then(Value::as_array) {
        Some(g) => {
            let mut devs = Vec::new();
            for member in g {
                if let Some(mid) = member.get("id").and_then(Value::as_u64)
                    && let Some((_, d)) = nexthop_group(netns, mid)
                {
                    devs.extend(d);
                }
            }
            Some((g.len(), devs))
        }
        None => Some((
            1,
            nh.get("dev")
                .and_then(Value::as_str)
                .map(|d| vec![d.to_string()])
                .unwrap_or_default(),
        )),
    }
}

pub fn ecmp_of(h: &CheckHost, to: &CheckHost) -> Ecmp {
    let found = sys::ip_n(
        &h.netns,
        &["-j", "route", "show", "match", &to.address.to_string()],
    )
    .ok()
    .and_then(|out| serde_json::from_str::<Value>(&out).ok())
    .and_then(|v| best_route(&v, |id| nexthop_group(&h.netns, id)));
    let (route, next_hops, mut devices) = match found {
        Some((dst, n, devs)) => (Some(dst), n, devs),
        None => (None, 0, Vec::new()),
    };
    devices.sort();
    devices.dedup();
    Ecmp {
        host: h.name.clone(),
        towards: to.name.clone(),
        route,
        next_hops,
        ok: next_hops >= h.uplinks && devices.len() >= h.uplinks,
        devices,
        want: h.uplinks,
    }
}

/// Runs the whole check; the pings run in parallel.
pub fn run(hosts: &[CheckHost]) -> Result<CheckReport> {
    let mut reachability = Vec::new();
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for a in hosts {
            for b in hosts {
                if a.name == b.name {
                    continue;
                }
                handles.push(s.spawn(move || Reach {
                    from: a.name.clone(),
                    to: b.name.clone(),
                    to_address: b.address,
                    ok: ping(&a.netns, a.address, b.address, 3),
                }));
            }
        }
        for h in handles {
            if let Ok(r) = h.join() {
                reachability.push(r);
            }
        }
    });
    let mut ecmp = Vec::new();
    for a in hosts {
        for b in hosts.iter().filter(|b| b.rack != a.rack) {
            ecmp.push(ecmp_of(a, b));
        }
    }
    let mut failures = Vec::new();
    for r in reachability.iter().filter(|r| !r.ok) {
        failures.push(format!(
            "{} cannot reach {} ({})",
            r.from, r.to, r.to_address
        ));
    }
    for e in ecmp.iter().filter(|e| !e.ok) {
        failures.push(match &e.route {
            None => format!("{} has no route towards {}", e.host, e.towards),
            Some(dst) => format!(
                "{} reaches {} through {} next hop(s) of route {dst} (devices {}), want {}",
                e.host,
                e.towards,
                e.next_hops,
                e.devices.join(","),
                e.want
            ),
        });
    }
    Ok(CheckReport {
        ok: failures.is_empty(),
        reachability,
        ecmp,
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_route_and_its_next_hops() {
        // iproute2 6.1 `ip -j route show match 10.0.0.20` in a lab host.
        let v: Value = serde_json::from_str(
            r#"[{"dst":"default","gateway":"10.255.0.1","dev":"mgmt0","flags":[]},
                {"dst":"10.0.0.16/28","nhid":14,"protocol":"198","metric":20,"flags":[],
                 "nexthops":[{"gateway":"169.254.0.1","dev":"eth0","weight":1,"flags":["onlink"]},
                             {"gateway":"169.254.0.1","dev":"eth1","weight":1,"flags":["onlink"]}]},
                {"type":"blackhole","dst":"10.0.0.20","flags":[]}]"#,
        )
        .unwrap();
        let (dst, n, devs) = best_route(&v, |_| None).unwrap();
        assert_eq!(dst, "10.0.0.16/28");
        assert_eq!(n, 2);
        assert_eq!(devs, ["eth0", "eth1"]);
    }

    #[test]
    fn group_without_inline_members_is_looked_up() {
        let v: Value =
            serde_json::from_str(r#"[{"dst":"10.0.0.16/28","nhid":9,"flags":[]}]"#).unwrap();
        let (_, n, devs) = best_route(&v, |id| {
            (id == 9).then(|| (2, vec!["eth0".into(), "eth1".into()]))
        })
        .unwrap();
        assert_eq!((n, devs.len()), (2, 2));
        let single: Value = serde_json::from_str(
            r#"[{"dst":"10.0.0.0/8","via":{"family":"inet6","host":"fe80::1"},"dev":"eth0"}]"#,
        )
        .unwrap();
        assert_eq!(best_route(&single, |_| None).unwrap().1, 1);
        assert!(best_route(&serde_json::json!([]), |_| None).is_none());
    }
}
