//! The standalone speaker's configuration file (`clos bgp run -c bgp.yaml`), parsed with serde
//! (unknown fields are errors) and then checked by [`SpeakerConfig::validate`], which names the
//! offending field and says what to write instead.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use ipnet::IpNet;

use crate::driver::{ListenRange, Multipath, PeerAddress, PeerPolicy, PeerSpec, SpeakerSpec};
use crate::policy::{Policy, PolicyConfig};
use crate::rib::PrefixCount;
use crate::session::{GracefulRestartConfig, RemoteAs, SessionConfig};
use crate::wire::Prefix;

/// `remote_as: 65002`, `remote_as: external` or `remote_as: internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RemoteAsConfig {
    Number(u32),
    Kind(RemoteAsKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoteAsKind {
    External,
    Internal,
}

impl From<RemoteAsConfig> for RemoteAs {
    fn from(c: RemoteAsConfig) -> Self {
        match c {
            RemoteAsConfig::Number(n) => RemoteAs::Exact(n),
            RemoteAsConfig::Kind(RemoteAsKind::External) => RemoteAs::External,
            RemoteAsConfig::Kind(RemoteAsKind::Internal) => RemoteAs::Internal,
        }
    }
}

/// One neighbour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// A numbered neighbour. Give exactly one of `address` and `interface`.
    #[serde(default)]
    pub address: Option<IpAddr>,
    /// An unnumbered neighbour on this interface (FRR's `neighbor IFNAME interface`).
    #[serde(default)]
    pub interface: Option<String>,
    pub remote_as: RemoteAsConfig,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub local_address: Option<IpAddr>,
    #[serde(default)]
    pub passive: bool,
    /// Overrides the speaker-wide hold time for this peer.
    #[serde(default)]
    pub hold_time: Option<u16>,
    /// RFC 2385 TCP-MD5 key (numbered peers).
    #[serde(default)]
    pub password: Option<String>,
    /// GTSM (RFC 5082): only a directly connected neighbour can reach the session.
    #[serde(default)]
    pub ttl_security: bool,
    /// Name of the import policy in `policy.policies`. An eBGP peer without one imports
    /// nothing (RFC 8212).
    #[serde(default)]
    pub import: Option<String>,
    /// Name of the export policy. An eBGP peer without one is sent nothing (RFC 8212).
    #[serde(default)]
    pub export: Option<String>,
    /// Reset the session (Cease/Maximum Number of Prefixes Reached) beyond this many prefixes.
    #[serde(default)]
    pub max_prefixes: Option<u32>,
    /// What counts towards `max_prefixes`: `accepted` (the default) the routes the import
    /// policy accepted, `received` every prefix the peer announces now, accepted or not (FRR's
    /// `force`, BIRD's `receive limit`), so a peer flooding filtered prefixes is cut off too.
    #[serde(default)]
    pub max_prefixes_count: PrefixCount,
    /// Seconds to stay down after a maximum-prefix reset.
    #[serde(default = "default_max_prefix_restart")]
    pub max_prefix_restart: u64,
    /// BFD (RFC 5880/5881): `bfd: { interval_ms: 100, multiplier: 3 }` closes the session as
    /// soon as BFD declares the neighbour down, instead of at the hold timer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<BfdSection>,
}

/// Dynamic neighbours (FRR's `bgp listen range`, BIRD's `neighbor range`): whoever connects
/// from inside `prefix` becomes a passive peer with these settings for as long as its session
/// lasts. A configured peer inside the range keeps its own settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenRangeConfig {
    /// `10.0.0.0/24`, `2001:db8:1::/64`.
    pub prefix: String,
    pub remote_as: RemoteAsConfig,
    /// Overrides the speaker-wide hold time for these peers.
    #[serde(default)]
    pub hold_time: Option<u16>,
    /// GTSM (RFC 5082): only directly connected neighbours.
    #[serde(default)]
    pub ttl_security: bool,
    /// Name of the import policy in `policy.policies` (RFC 8212: none imports nothing over
    /// eBGP).
    #[serde(default)]
    pub import: Option<String>,
    /// Name of the export policy (RFC 8212: none sends nothing over eBGP).
    #[serde(default)]
    pub export: Option<String>,
    /// Reset a session (Cease/Maximum Number of Prefixes Reached) beyond this many prefixes.
    #[serde(default)]
    pub max_prefixes: Option<u32>,
    /// What counts towards `max_prefixes`, as for a peer.
    #[serde(default)]
    pub max_prefixes_count: PrefixCount,
    /// Seconds a reset neighbour is refused before it may come back.
    #[serde(default = "default_max_prefix_restart")]
    pub max_prefix_restart: u64,
    /// At most this many neighbours from the range at once; more are refused (Cease/Connection
    /// Rejected). No limit when absent.
    #[serde(default)]
    pub limit: Option<u32>,
    /// BFD for each neighbour from the range, as for a peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<BfdSection>,
}

/// BFD (RFC 5880, single hop over UDP as RFC 5881) for a neighbour: both sides send a packet
/// every `interval_ms`, and a neighbour silent for `interval_ms` x `multiplier` is down, which
/// closes its BGP session at once (Cease/BFD Down) and withdraws its routes. The neighbour must
/// run BFD too (FRR: `neighbor X bfd`; BIRD: `bfd on` with a `protocol bfd`); until its BFD
/// has come up once, the BGP session does not depend on it. Packets go to UDP port 3784, with
/// TTL 255 (only directly connected neighbours), so no other BFD daemon may run on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BfdSection {
    /// Milliseconds between packets, sent and expected: 10 to 60000 (default 300, FRR's).
    #[serde(default = "default_bfd_interval")]
    pub interval_ms: u32,
    /// Packets missed before the neighbour is down: 1 to 255 (default 3).
    #[serde(default = "default_bfd_multiplier")]
    pub multiplier: u8,
}

impl BfdSection {
    /// The BFD timers; `field` names this section in errors (`peers[0].bfd`).
    pub fn config(&self, field: &str) -> Result<clos_bfd::Config, ConfigError> {
        if !(10..=60_000).contains(&self.interval_ms) {
            return Err(bad(
                format!("{field}.interval_ms"),
                format!("{} is outside 10 to 60000 milliseconds", self.interval_ms),
            ));
        }
        if self.multiplier == 0 {
            return Err(bad(
                format!("{field}.multiplier"),
                "0 would declare every neighbour down: use 3",
            ));
        }
        let interval = Duration::from_millis(u64::from(self.interval_ms));
        Ok(clos_bfd::Config::new(interval, self.multiplier))
    }
}

fn default_bfd_interval() -> u32 {
    300
}
fn default_bfd_multiplier() -> u8 {
    3
}

/// Graceful restart settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GracefulRestartSection {
    #[serde(default = "default_restart_time")]
    pub restart_time: u16,
}

/// Equal-cost multipath (ECMP) in the Loc-RIB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultipathSection {
    /// Share the load over at most this many paths of a prefix (1 to 64; 1 turns multipath
    /// off).
    #[serde(default = "default_max_paths")]
    pub max_paths: u16,
    /// Paths whose AS_PATHs differ but have the same length share the load too (FRR's
    /// `bgp bestpath as-path multipath-relax`): what fabrics with one AS per switch need.
    #[serde(default = "default_true")]
    pub relax: bool,
}

impl Default for MultipathSection {
    fn default() -> Self {
        MultipathSection {
            max_paths: default_max_paths(),
            relax: true,
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakerConfig {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// Where to accept connections; `[]` to only connect out.
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    /// Seconds; 0 disables keepalives, otherwise at least 3.
    #[serde(default = "default_hold_time")]
    pub hold_time: u16,
    /// Seconds between outbound connection attempts.
    #[serde(default = "default_connect_retry")]
    pub connect_retry: u64,
    /// `null` disables graceful restart.
    #[serde(default = "default_graceful_restart")]
    pub graceful_restart: Option<GracefulRestartSection>,
    /// Prefixes announced to every peer.
    #[serde(default)]
    pub originate: Vec<String>,
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Dynamic neighbours, accepted on the `listen` addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen_ranges: Vec<ListenRangeConfig>,
    /// Equal-cost multipath: `{ max_paths: 8, relax: true }` unless given.
    #[serde(default)]
    pub multipath: MultipathSection,
    /// Prefix lists, AS-path lists, community lists and named policies, referenced by the
    /// peers' `import` and `export`.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Program the kernel: `fib: { table: 254 }` installs every best route of the Loc-RIB,
    /// with all its multipath next hops (ECMP), into that routing table, and removes it when
    /// the prefix goes, like BIRD's `protocol kernel` with `merge paths` or FRR's zebra.
    /// Absent (the default): the speaker only speaks BGP. See [`FibSection`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fib: Option<FibSection>,
}

/// The `fib` section: where `clos bgp run` installs its best routes.
///
/// - Routes are tagged `proto 198` (Clos's `rtm_protocol`, like the agent's), and the speaker
///   owns every route of that protocol in its network namespace, whatever the table: run it
///   only where no `clos agent` runs.
/// - The speaker's own `originate` prefixes are never installed: they are local.
/// - A next hop of an unnumbered peer (`interface:`) goes out of that interface, through the
///   peer's link-local address (an IPv4 route via an IPv6 next hop, RFC 8950). A next hop of
///   a numbered peer must be directly connected (an address on one of the host's subnets);
///   one that is not is left out, with a warning, and its route too if it has no other.
/// - Restart: routes of ours already in the kernel (from a run that crashed or was stopped)
///   stay and keep forwarding until the first convergence (every configured peer up and the
///   Loc-RIB quiet for two seconds, or 60 seconds, or the graceful-restart time if shorter);
///   then the table is reconciled and stale routes are removed. Such a start tells the peers
///   it is a restart, as `--restarted` does.
/// - Forwarding (`net.ipv4.ip_forward`, `net.ipv6.conf.all.forwarding`) is left as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FibSection {
    /// The kernel routing table: 254 (`main`, the default) or another table, 1 to
    /// 4294967295 except 255 (`local`, the kernel's own).
    #[serde(default = "default_fib_table")]
    pub table: u32,
}

impl Default for FibSection {
    fn default() -> Self {
        FibSection {
            table: default_fib_table(),
        }
    }
}

impl FibSection {
    /// Checks the section; errors name the field (`fib.table`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.table {
            0 => Err(bad(
                "fib.table",
                "0 means \"unspecified\" to the kernel: use 254 (main) or another table",
            )),
            255 => Err(bad(
                "fib.table",
                "255 is the kernel's local table: use 254 (main) or another table",
            )),
            _ => Ok(()),
        }
    }
}

fn default_fib_table() -> u32 {
    254
}

fn default_max_paths() -> u16 {
    Multipath::default().max_paths.get()
}
fn default_true() -> bool {
    true
}
fn default_max_prefix_restart() -> u64 {
    60
}
fn default_port() -> u16 {
    179
}
fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from(([0u16; 8], 179))]
}
fn default_hold_time() -> u16 {
    9
}
fn default_connect_retry() -> u64 {
    5
}
fn default_restart_time() -> u16 {
    120
}
fn default_graceful_restart() -> Option<GracefulRestartSection> {
    Some(GracefulRestartSection {
        restart_time: default_restart_time(),
    })
}

/// A configuration mistake: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ConfigError {
    pub field: String,
    pub problem: String,
}

fn bad(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        problem: problem.into(),
    }
}

fn check_hold_time(field: &str, hold: u16) -> Result<(), ConfigError> {
    if hold == 1 || hold == 2 {
        return Err(bad(
            field,
            format!("{hold} is not allowed: use 0 (no keepalives) or 3 and more"),
        ));
    }
    Ok(())
}

/// Compiled policies by name, each shared by every peer that names it.
type SharedPolicies = std::collections::BTreeMap<String, Arc<Policy>>;

/// The compiled policy named `name`, or an error on `field` listing the known ones.
fn lookup_policy(
    policies: &SharedPolicies,
    name: Option<&String>,
    field: impl FnOnce() -> String,
) -> Result<Option<Arc<Policy>>, ConfigError> {
    let Some(name) = name else { return Ok(None) };
    match policies.get(name) {
        Some(p) => Ok(Some(p.clone())),
        None => {
            let known: Vec<&str> = policies.keys().map(String::as_str).collect();
            Err(bad(
                field(),
                format!("no policy named {name:?} under policy.policies (known: {known:?})"),
            ))
        }
    }
}

fn check_remote_as(field: String, remote_as: RemoteAsConfig) -> Result<(), ConfigError> {
    if let RemoteAsConfig::Number(0) = remote_as {
        return Err(bad(
            field,
            "0 is not an AS: give the peer's ASN, `external` or `internal`",
        ));
    }
    Ok(())
}

impl SpeakerConfig {
    /// The session settings every peer shares, for a peer of `remote_as` with `hold_time`
    /// (or the speaker's).
    fn session(
        &self,
        field: &str,
        remote_as: RemoteAsConfig,
        hold_time: Option<u16>,
    ) -> Result<SessionConfig, ConfigError> {
        let hold_time = hold_time.unwrap_or(self.hold_time);
        check_hold_time(field, hold_time)?;
        let mut session = SessionConfig::new(self.asn, self.router_id, remote_as.into());
        session.hold_time = hold_time;
        session.connect_retry = Duration::from_secs(self.connect_retry);
        session.graceful_restart = self
            .graceful_restart
            .as_ref()
            .map(|gr| GracefulRestartConfig {
                restart_time: gr.restart_time,
                ..GracefulRestartConfig::default()
            });
        Ok(session)
    }

    fn listen_ranges(&self, policies: &SharedPolicies) -> Result<Vec<ListenRange>, ConfigError> {
        if !self.listen_ranges.is_empty() && self.listen.is_empty() {
            return Err(bad(
                "listen",
                "listen_ranges accept connections: give `listen` addresses such as 0.0.0.0:179",
            ));
        }
        let mut ranges: Vec<ListenRange> = Vec::new();
        for (i, r) in self.listen_ranges.iter().enumerate() {
            let field = |f: &str| format!("listen_ranges[{i}].{f}");
            let prefix: IpNet = r.prefix.parse().map_err(|e| {
                bad(
                    field("prefix"),
                    format!("{e}: write it as 10.0.0.0/24 or 2001:db8::/64"),
                )
            })?;
            if prefix.trunc() != prefix {
                return Err(bad(
                    field("prefix"),
                    format!("{prefix} has host bits set: write {}", prefix.trunc()),
                ));
            }
            if let Some(other) = ranges
                .iter()
                .position(|o| o.prefix.contains(&prefix) || prefix.contains(&o.prefix))
            {
                return Err(bad(
                    field("prefix"),
                    format!(
                        "{prefix} overlaps listen_ranges[{other}] ({}): a neighbour must match                          one range only",
                        ranges[other].prefix
                    ),
                ));
            }
            check_remote_as(field("remote_as"), r.remote_as)?;
            if r.limit == Some(0) {
                return Err(bad(
                    field("limit"),
                    "0 would refuse every neighbour: leave it out for no limit",
                ));
            }
            let policy = PeerPolicy {
                import: lookup_policy(policies, r.import.as_ref(), || field("import"))?,
                export: lookup_policy(policies, r.export.as_ref(), || field("export"))?,
                max_prefixes: r.max_prefixes,
                max_prefixes_count: r.max_prefixes_count,
                max_prefix_restart: Duration::from_secs(r.max_prefix_restart),
            };
            let mut session = self.session(&field("hold_time"), r.remote_as, r.hold_time)?;
            session.passive = true;
            let bfd = r.bfd.map(|b| b.config(&field("bfd"))).transpose()?;
            ranges.push(ListenRange {
                prefix,
                ttl_security: r.ttl_security,
                policy,
                session,
                limit: r.limit,
                bfd,
            });
        }
        Ok(ranges)
    }

    /// Semantic checks, and the runtime form of the config.
    pub fn validate(&self) -> Result<SpeakerSpec, ConfigError> {
        if self.asn == 0 || self.asn == 23456 {
            return Err(bad(
                "asn",
                format!(
                    "{} is reserved: pick a private ASN such as 64512-65534 or 4200000000-4294967294",
                    self.asn
                ),
            ));
        }
        if self.router_id.is_unspecified() {
            return Err(bad(
                "router_id",
                "0.0.0.0 is not a valid BGP identifier: use one of the host's IPv4 addresses",
            ));
        }
        check_hold_time("hold_time", self.hold_time)?;
        if self.connect_retry == 0 {
            return Err(bad("connect_retry", "must be at least 1 second"));
        }
        if let Some(gr) = &self.graceful_restart
            && gr.restart_time > 4095
        {
            return Err(bad(
                "graceful_restart.restart_time",
                "at most 4095 seconds fit the capability",
            ));
        }
        let originate = self
            .originate
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Prefix::from_str(s).map_err(|e| {
                    bad(
                        format!("originate[{i}]"),
                        format!("{e}: write it as 192.0.2.0/24 or 2001:db8::/48"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let compiled = self.policy.compile().map_err(|e| match e {
            crate::Error::InvalidPolicy { field, problem } => {
                bad(format!("policy.{field}"), problem)
            }
            other => bad("policy", other.to_string()),
        })?;
        // One shared instance per policy: peers holding the same `Arc` form one update group.
        let policies: SharedPolicies = compiled
            .names()
            .filter_map(|n| Some((n.to_owned(), Arc::new(compiled.get(n)?.clone()))))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut peers = Vec::new();
        for (i, p) in self.peers.iter().enumerate() {
            let field = |f: &str| format!("peers[{i}].{f}");
            let address = match (p.address, &p.interface) {
                (Some(ip), None) => PeerAddress::Ip(ip),
                (None, Some(name)) if !name.is_empty() && name.len() < 16 => {
                    PeerAddress::Interface(name.clone())
                }
                (None, Some(name)) => {
                    return Err(bad(
                        field("interface"),
                        format!("{name:?} is not an interface name (1 to 15 characters)"),
                    ));
                }
                _ => {
                    return Err(bad(
                        field("address"),
                        "give exactly one of `address` (a numbered neighbour) and `interface` \
                         (unnumbered)",
                    ));
                }
            };
            if !seen.insert(address.clone()) {
                return Err(bad(
                    field(if p.interface.is_some() {
                        "interface"
                    } else {
                        "address"
                    }),
                    format!("{address} is configured twice"),
                ));
            }
            if let Some(key) = &p.password {
                if p.interface.is_some() {
                    return Err(bad(
                        field("password"),
                        "TCP-MD5 needs a known neighbour address; use it on numbered peers",
                    ));
                }
                if key.is_empty() || key.len() > clos_sys::MAX_MD5_KEY_LEN {
                    return Err(bad(field("password"), "must be 1 to 80 characters"));
                }
            }
            check_remote_as(field("remote_as"), p.remote_as)?;
            if p.port == 0 {
                return Err(bad(
                    field("port"),
                    "0 is not a port: the usual BGP port is 179",
                ));
            }
            let policy = PeerPolicy {
                import: lookup_policy(&policies, p.import.as_ref(), || field("import"))?,
                export: lookup_policy(&policies, p.export.as_ref(), || field("export"))?,
                max_prefixes: p.max_prefixes,
                max_prefixes_count: p.max_prefixes_count,
                max_prefix_restart: Duration::from_secs(p.max_prefix_restart),
            };
            let mut session = self.session(&field("hold_time"), p.remote_as, p.hold_time)?;
            session.passive = p.passive;
            let bfd = p.bfd.map(|b| b.config(&field("bfd"))).transpose()?;
            peers.push(PeerSpec {
                address,
                port: p.port,
                local_address: p.local_address,
                password: p.password.clone(),
                ttl_security: p.ttl_security,
                policy,
                session,
                bfd,
            });
        }
        let listen_ranges = self.listen_ranges(&policies)?;
        let max_paths = std::num::NonZeroU16::new(self.multipath.max_paths)
            .filter(|n| n.get() <= Multipath::MAX_PATHS)
            .ok_or_else(|| {
                bad(
                    "multipath.max_paths",
                    format!(
                        "{} is out of range: give 1 (no multipath) to {}",
                        self.multipath.max_paths,
                        Multipath::MAX_PATHS
                    ),
                )
            })?;
        if let Some(fib) = &self.fib {
            fib.validate()?;
        }
        Ok(SpeakerSpec {
            listen: self.listen.clone(),
            peers,
            listen_ranges,
            originate,
            multipath: Multipath {
                max_paths,
                relax: self.multipath.relax,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SpeakerConfig {
        SpeakerConfig {
            asn: 65001,
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            listen: default_listen(),
            hold_time: 9,
            connect_retry: 5,
            graceful_restart: default_graceful_restart(),
            originate: vec!["192.0.2.0/24".into()],
            peers: vec![PeerConfig {
                address: Some("10.0.0.2".parse().unwrap()),
                interface: None,
                remote_as: RemoteAsConfig::Kind(RemoteAsKind::External),
                port: 179,
                local_address: None,
                passive: false,
                hold_time: None,
                password: None,
                ttl_security: false,
                import: None,
                export: None,
                max_prefixes: None,
                max_prefixes_count: PrefixCount::Accepted,
                max_prefix_restart: 60,
                bfd: None,
            }],
            listen_ranges: vec![ListenRangeConfig {
                prefix: "10.1.0.0/24".into(),
                remote_as: RemoteAsConfig::Kind(RemoteAsKind::External),
                hold_time: None,
                ttl_security: false,
                import: None,
                export: None,
                max_prefixes: None,
                max_prefixes_count: PrefixCount::Accepted,
                max_prefix_restart: 60,
                limit: Some(10),
                bfd: None,
            }],
            multipath: MultipathSection::default(),
            policy: PolicyConfig::default(),
            fib: None,
        }
    }

    #[test]
    fn fib_section_from_yaml() {
        let yaml = "asn: 65001\nrouter_id: 10.0.0.1\n";
        let cfg: SpeakerConfig = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(cfg.fib, None, "no section: no FIB");
        cfg.validate().unwrap();
        let cfg: SpeakerConfig = serde_yaml_ng::from_str(&format!("{yaml}fib: {{}}\n")).unwrap();
        assert_eq!(cfg.fib, Some(FibSection { table: 254 }), "main by default");
        cfg.validate().unwrap();
        let cfg: SpeakerConfig =
            serde_yaml_ng::from_str(&format!("{yaml}fib: {{ table: 100 }}\n")).unwrap();
        assert_eq!(cfg.fib, Some(FibSection { table: 100 }));
        cfg.validate().unwrap();
        // Shown by `clos bgp validate` only when present.
        assert!(
            serde_yaml_ng::to_string(&cfg)
                .unwrap()
                .contains("table: 100")
        );
        assert!(!serde_yaml_ng::to_string(&base()).unwrap().contains("fib"));
        let err = serde_yaml_ng::from_str::<SpeakerConfig>(&format!("{yaml}fib: {{ tabel: 1 }}\n"))
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `tabel`"), "{err}");
        let err =
            serde_yaml_ng::from_str::<SpeakerConfig>(&format!("{yaml}fib: {{ table: -1 }}\n"));
        assert!(err.is_err(), "a table is a u32");
    }

    #[test]
    fn multipath_defaults_and_yaml() {
        let spec = base().validate().unwrap();
        assert_eq!(spec.multipath, Multipath::default());
        assert_eq!(spec.multipath.max_paths.get(), 8);
        assert!(spec.multipath.relax);
        let yaml = "asn: 65001\nrouter_id: 10.0.0.1\nmultipath: { max_paths: 1 }\n";
        let cfg: SpeakerConfig = serde_yaml_ng::from_str(yaml).unwrap();
        let spec = cfg.validate().unwrap();
        assert_eq!(spec.multipath.max_paths.get(), 1);
        assert!(spec.multipath.relax, "relax keeps its default");
        let yaml = "asn: 65001\nrouter_id: 10.0.0.1\nmultipath: { relax: false, max_paths: 64 }\n";
        let cfg: SpeakerConfig = serde_yaml_ng::from_str(yaml).unwrap();
        let spec = cfg.validate().unwrap();
        assert_eq!(spec.multipath.max_paths.get(), 64);
        assert!(!spec.multipath.relax);
        let yaml = "asn: 65001\nrouter_id: 10.0.0.1\nmultipath: { paths: 2 }\n";
        let err = serde_yaml_ng::from_str::<SpeakerConfig>(yaml).unwrap_err();
        assert!(err.to_string().contains("unknown field `paths`"), "{err}");
    }

    #[test]
    fn listen_ranges_from_yaml() {
        let yaml = "asn: 65001\nrouter_id: 10.0.0.1\n\
                    policy:\n  policies:\n    all: { default: accept }\n\
                    listen_ranges:\n\
                    \x20 - { prefix: 10.0.0.0/24, remote_as: external, import: all, export: all,\n\
                    \x20     max_prefixes: 100, limit: 50, hold_time: 3 }\n\
                    \x20 - { prefix: '2001:db8::/64', remote_as: 65010 }\n";
        let cfg: SpeakerConfig = serde_yaml_ng::from_str(yaml).unwrap();
        let spec = cfg.validate().unwrap();
        assert!(spec.peers.is_empty());
        let [v4, v6] = &spec.listen_ranges[..] else {
            panic!("{:?}", spec.listen_ranges);
        };
        assert_eq!(v4.prefix, "10.0.0.0/24".parse::<IpNet>().unwrap());
        assert_eq!(v4.session.remote_as, RemoteAs::External);
        assert_eq!(v4.session.hold_time, 3);
        assert!(v4.session.passive, "dynamic neighbours never connect out");
        assert!(v4.policy.import.is_some() && v4.policy.export.is_some());
        assert_eq!(v4.policy.max_prefixes, Some(100));
        assert_eq!(v4.limit, Some(50));
        assert_eq!(v6.session.remote_as, RemoteAs::Exact(65010));
        assert_eq!(v6.session.hold_time, 9);
        assert_eq!(v6.limit, None);
        assert!(v6.policy.import.is_none());
        // Unknown fields in a range are errors too.
        let typo = yaml.replace("limit: 50", "limits: 50");
        assert!(serde_yaml_ng::from_str::<SpeakerConfig>(&typo).is_err());
    }

    #[test]
    fn bfd_from_yaml() {
        let yaml = "asn: 65001\nrouter_id: 10.0.0.1\n\
                    peers:\n\
                    \x20 - { address: 10.0.0.2, remote_as: external,\n\
                    \x20     bfd: { interval_ms: 100, multiplier: 3 } }\n\
                    \x20 - { interface: eth1, remote_as: external, bfd: {} }\n\
                    \x20 - { address: 10.0.0.6, remote_as: external }\n\
                    listen_ranges:\n\
                    \x20 - { prefix: 10.1.0.0/24, remote_as: external, bfd: { multiplier: 5 } }\n";
        let cfg: SpeakerConfig = serde_yaml_ng::from_str(yaml).unwrap();
        let spec = cfg.validate().unwrap();
        let ms = Duration::from_millis;
        assert_eq!(spec.peers[0].bfd, Some(clos_bfd::Config::new(ms(100), 3)));
        assert_eq!(spec.peers[1].bfd, Some(clos_bfd::Config::new(ms(300), 3)));
        assert_eq!(spec.peers[2].bfd, None);
        assert_eq!(
            spec.listen_ranges[0].bfd,
            Some(clos_bfd::Config::new(ms(300), 5))
        );
        let typo = yaml.replace("multiplier: 3", "mult: 3");
        assert!(serde_yaml_ng::from_str::<SpeakerConfig>(&typo).is_err());
    }

    #[test]
    fn valid_config_becomes_a_spec() {
        let spec = base().validate().unwrap();
        assert_eq!(spec.peers.len(), 1);
        assert_eq!(spec.peers[0].session.remote_as, RemoteAs::External);
        assert_eq!(spec.originate.len(), 1);
        assert_eq!(spec.listen_ranges.len(), 1);
        assert_eq!(spec.listen_ranges[0].limit, Some(10));
    }

    #[test]
    fn errors_name_the_field() {
        type Mutation = Box<dyn Fn(&mut SpeakerConfig)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|c| c.asn = 0), "asn"),
            (
                Box::new(|c| c.router_id = Ipv4Addr::UNSPECIFIED),
                "router_id",
            ),
            (Box::new(|c| c.hold_time = 2), "hold_time"),
            (
                Box::new(|c| c.multipath.max_paths = 0),
                "multipath.max_paths",
            ),
            (
                Box::new(|c| c.multipath.max_paths = 65),
                "multipath.max_paths",
            ),
            (
                Box::new(|c| c.originate = vec!["10.0.0.0/33".into()]),
                "originate[0]",
            ),
            (
                Box::new(|c| c.originate = vec!["bogus".into()]),
                "originate[0]",
            ),
            (
                Box::new(|c| c.peers[0].hold_time = Some(1)),
                "peers[0].hold_time",
            ),
            (
                Box::new(|c| c.peers[0].remote_as = RemoteAsConfig::Number(0)),
                "peers[0].remote_as",
            ),
            (
                Box::new(|c| {
                    let p = c.peers[0].clone();
                    c.peers.push(p);
                }),
                "peers[1].address",
            ),
            (
                Box::new(|c| {
                    c.graceful_restart = Some(GracefulRestartSection { restart_time: 5000 })
                }),
                "graceful_restart.restart_time",
            ),
            (
                Box::new(|c| c.listen_ranges[0].prefix = "10.1.0.0/33".into()),
                "listen_ranges[0].prefix",
            ),
            (
                Box::new(|c| c.listen_ranges[0].prefix = "10.1.0.5/24".into()),
                "listen_ranges[0].prefix",
            ),
            (
                Box::new(|c| {
                    let mut r = c.listen_ranges[0].clone();
                    r.prefix = "10.1.0.128/25".into();
                    c.listen_ranges.push(r);
                }),
                "listen_ranges[1].prefix",
            ),
            (
                Box::new(|c| c.listen_ranges[0].remote_as = RemoteAsConfig::Number(0)),
                "listen_ranges[0].remote_as",
            ),
            (
                Box::new(|c| c.listen_ranges[0].hold_time = Some(2)),
                "listen_ranges[0].hold_time",
            ),
            (
                Box::new(|c| c.listen_ranges[0].limit = Some(0)),
                "listen_ranges[0].limit",
            ),
            (
                Box::new(|c| c.listen_ranges[0].export = Some("nope".into())),
                "listen_ranges[0].export",
            ),
            (Box::new(|c| c.listen = vec![]), "listen"),
            (
                Box::new(|c| {
                    c.peers[0].bfd = Some(BfdSection {
                        interval_ms: 5,
                        multiplier: 3,
                    })
                }),
                "peers[0].bfd.interval_ms",
            ),
            (
                Box::new(|c| {
                    c.listen_ranges[0].bfd = Some(BfdSection {
                        interval_ms: 100,
                        multiplier: 0,
                    })
                }),
                "listen_ranges[0].bfd.multiplier",
            ),
        ];
        let cases = cases.into_iter().chain([
            (
                Box::new(|c: &mut SpeakerConfig| c.fib = Some(FibSection { table: 0 })) as Mutation,
                "fib.table",
            ),
            (
                Box::new(|c: &mut SpeakerConfig| c.fib = Some(FibSection { table: 255 })),
                "fib.table",
            ),
        ]);
        for (mutate, field) in cases {
            let mut c = base();
            mutate(&mut c);
            let err = c.validate().unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
    }
}
