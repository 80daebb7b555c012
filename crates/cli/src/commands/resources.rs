//! The resource commands: `clos get|create|delete ...` and `clos ipam check`, all through the
//! controller's HTTP API (`clos_model::Client`). Errors show the server's problem detail.

use std::io::Write;
use std::net::IpAddr;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use clos_model::{
    Address, AllocateAddress, Client, CreateToken, IpamCheck, Node, NodeRole, Owner, OwnerKind,
    Page, Pool, PoolKind, Rack, Resource, Site, Subnet, SubnetFamily, Switch, Tenant, Token,
    TokenRole,
};
use ipnet::IpNet;
use serde::Serialize;

use crate::output::{self, OutputFormat};

/// Where the controller is and who we are: flags, then `CLOS_SERVER`/`CLOS_TOKEN`, then the
/// client config file (see [`ClientConfig`]), then `http://127.0.0.1:7700` without a token.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The controller's URL [default: from the config file, else http://127.0.0.1:7700].
    #[arg(long, env = "CLOS_SERVER", global = true)]
    server: Option<String>,
    /// API token (printed by the controller at first start, or issued with `clos create token`)
    /// [default: from the config file].
    #[arg(long, env = "CLOS_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
}

const DEFAULT_SERVER: &str = "http://127.0.0.1:7700";

impl ClientArgs {
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        // The file is read only for what flags and the environment left open.
        let file = if self.server.is_none() || self.token.is_none() {
            ClientConfig::load()?
        } else {
            None
        };
        let (server, from_file) = match (&self.server, &file) {
            (Some(s), _) => (s.clone(), None),
            (None, Some((path, cfg))) if cfg.server.is_some() => {
                (cfg.server.clone().unwrap_or_default(), Some(path))
            }
            _ => (DEFAULT_SERVER.to_string(), None),
        };
        let token = self
            .token
            .clone()
            .or_else(|| file.as_ref().and_then(|(_, cfg)| cfg.token.clone()));
        Client::new(&server, token).map_err(|e| match from_file {
            Some(path) => anyhow::anyhow!("{}: field `server`: {e}", path.display()),
            None => e.into(),
        })
    }
}

/// The client config file, like a kubeconfig: `$CLOS_CONFIG`, else
/// `$XDG_CONFIG_HOME/clos/config.yaml`, else `~/.config/clos/config.yaml`.
///
/// ```yaml
/// server: http://10.0.0.5:7700
/// token: 3f1c...  # keep the file private: chmod 600
/// ```
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientConfig {
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

impl ClientConfig {
    /// Where the file is looked for, and whether it must exist (it must when named by
    /// `$CLOS_CONFIG`).
    fn path() -> Option<(std::path::PathBuf, bool)> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(p) = var("CLOS_CONFIG") {
            return Some((p.into(), true));
        }
        let dir = var("XDG_CONFIG_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| var("HOME").map(|h| std::path::Path::new(&h).join(".config")))?;
        Some((dir.join("clos").join("config.yaml"), false))
    }

    /// The file's settings, `None` when there is none to read.
    fn load() -> anyhow::Result<Option<(std::path::PathBuf, ClientConfig)>> {
        let Some((path, required)) = Self::path() else {
            return Ok(None);
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "reading the client config {} (named by CLOS_CONFIG)",
                        path.display()
                    )
                });
            }
        };
        let cfg = Self::parse(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e}; expected `server: http://host:port` and `token: <secret>`",
                path.display()
            )
        })?;
        Ok(Some((path, cfg)))
    }

    /// Parses the file's text; an error names the field at fault.
    fn parse(text: &str) -> Result<ClientConfig, String> {
        if text.trim().is_empty() {
            return Ok(ClientConfig::default());
        }
        let cfg: ClientConfig = serde_yaml_ng::from_str(text).map_err(|e| {
            let msg = e.to_string();
            match e.location() {
                Some(l) if !msg.contains(" at line ") => {
                    format!("{msg} at line {} column {}", l.line(), l.column())
                }
                _ => msg,
            }
        })?;
        for (field, value) in [("server", &cfg.server), ("token", &cfg.token)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(format!("field `{field}` is empty"));
            }
        }
        Ok(cfg)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Site,
    #[value(alias = "racks")]
    Rack,
    #[value(alias = "switches")]
    Switch,
    #[value(alias = "tenants")]
    Tenant,
    #[value(alias = "pools")]
    Pool,
    #[value(alias = "subnets")]
    Subnet,
    #[value(alias = "nodes")]
    Node,
    #[value(alias = "addresses")]
    Address,
    #[value(alias = "tokens")]
    Token,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    kind: Kind,
    /// One resource by name (an IP for addresses); all of them when left out.
    name: Option<String>,
    /// Addresses: list those of this subnet.
    #[arg(long)]
    subnet: Option<String>,
    /// Addresses: list those of this floating/anycast pool.
    #[arg(long)]
    pool: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PoolKindArg {
    TenantSubnets,
    FloatingIps,
    AnycastServices,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OwnerKindArg {
    Host,
    Vm,
    Container,
    Service,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Tenant,
    Node,
}

#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// An address pool.
    Pool {
        name: String,
        #[arg(long)]
        cidr: IpNet,
        #[arg(long, value_enum, default_value = "tenant-subnets")]
        kind: PoolKindArg,
        /// Node block prefix length (default /26 or /122).
        #[arg(long)]
        block_size: Option<u8>,
    },
    /// A tenant subnet, at --cidr or at the next free --prefix-len of the pool. With --pool6
    /// it is dual-stack: --pool/--cidr/--prefix-len are its IPv4 part, and --pool6 with
    /// --cidr6 or --prefix-len6 its IPv6 part.
    Subnet {
        name: String,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        pool: String,
        #[arg(long, conflicts_with = "prefix_len")]
        cidr: Option<IpNet>,
        #[arg(long)]
        prefix_len: Option<u8>,
        /// The IPv6 pool of a dual-stack subnet.
        #[arg(long)]
        pool6: Option<String>,
        #[arg(long, conflicts_with = "prefix_len6", requires = "pool6")]
        cidr6: Option<IpNet>,
        #[arg(long, requires = "pool6")]
        prefix_len6: Option<u8>,
    },
    Tenant {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    Rack {
        name: String,
        #[arg(long)]
        asn: Option<u32>,
    },
    Node {
        name: String,
        #[arg(long)]
        rack: Option<String>,
        #[arg(long)]
        gateway: bool,
        /// Default: a free one from the site's host range.
        #[arg(long)]
        asn: Option<u32>,
    },
    /// Allocate an address in a subnet (on a node) or a floating/anycast pool.
    Address {
        #[arg(long, required_unless_present = "pool")]
        subnet: Option<String>,
        #[arg(long, conflicts_with = "subnet")]
        pool: Option<String>,
        /// Owner id (stable for fixed addresses; `tenant/...` for floating IPs of a tenant).
        #[arg(long)]
        owner: String,
        #[arg(long, value_enum, default_value = "vm")]
        owner_kind: OwnerKindArg,
        #[arg(long)]
        node: Option<String>,
        /// A static address instead of the next free one.
        #[arg(long)]
        ip: Option<IpAddr>,
        /// Keep the address for the owner across release.
        #[arg(long)]
        fixed: bool,
    },
    /// An API token; its secret is printed once.
    Token {
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long = "tenant")]
        tenants: Vec<String>,
        #[arg(long)]
        node: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(subcommand)]
    what: CreateCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    kind: Kind,
    /// Name (an IP for addresses, an id for tokens).
    name: String,
    /// Only if the resource is still at this version.
    #[arg(long)]
    resource_version: Option<u64>,
    /// Addresses: also free an address held for a fixed owner.
    #[arg(long)]
    forget: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum IpamCommand {
    /// Audit the stored IPAM state; with --repair, fix what is safe to fix.
    Check {
        #[arg(long)]
        repair: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub(crate) fn block<T>(
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    runtime()?.block_on(f)
}

// --- get -------------------------------------------------------------------------------------

pub fn get(args: GetArgs, format: OutputFormat) -> anyhow::Result<()> {
    let c = args.client.client()?;
    block(async move {
        let c = &c;
        match (args.kind, args.name.as_deref()) {
            (Kind::Site, _) => {
                let s = c.site().await?;
                output::print(format, &s, |w| site_table(w, &s))
            }
            (Kind::Rack, n) => show::<Rack>(c, n, format, rack_table).await,
            (Kind::Switch, n) => show::<Switch>(c, n, format, switch_table).await,
            (Kind::Tenant, n) => show::<Tenant>(c, n, format, tenant_table).await,
            (Kind::Pool, n) => show::<Pool>(c, n, format, pool_table).await,
            (Kind::Subnet, n) => show::<Subnet>(c, n, format, subnet_table).await,
            (Kind::Node, n) => show::<Node>(c, n, format, node_table).await,
            (Kind::Token, Some(_)) => {
                bail!("tokens are listed, not read one by one: clos get tokens")
            }
            (Kind::Token, None) => {
                let all = all_pages(|after| async move { c.tokens(after.as_deref(), None).await })
                    .await?;
                output::print(format, &all, |w| token_table(w, &all))
            }
            (Kind::Address, Some(ip)) => {
                let ip: IpAddr = ip
                    .parse()
                    .with_context(|| format!("{ip} is not an IP address"))?;
                let a = c.address(ip).await?;
                let v = vec![a];
                output::print(format, &v[0], |w| address_table(w, &v))
            }
            (Kind::Address, None) => {
                let all = match (&args.subnet, &args.pool) {
                    (Some(s), _) => {
                        all_pages(|after| async move {
                            c.subnet_addresses(s, after.as_deref(), None).await
                        })
                        .await?
                    }
                    (None, Some(p)) => {
                        all_pages(|after| async move {
                            c.pool_addresses(p, after.as_deref(), None).await
                        })
                        .await?
                    }
                    (None, None) => {
                        bail!("name a --subnet or a --pool to list its addresses, or give an IP")
                    }
                };
                output::print(format, &all, |w| address_table(w, &all))
            }
        }
    })
}

async fn all_pages<T, F, Fut>(mut fetch: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, clos_model::Error>>,
{
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = fetch(after.take()).await?;
        out.extend(page.items);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

async fn show<R: Resource + Serialize>(
    c: &Client,
    name: Option<&str>,
    format: OutputFormat,
    table: fn(&mut dyn Write, &[R]) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    match name {
        Some(n) => {
            let r: R = c.read(n).await?;
            let v = vec![r];
            output::print(format, &v[0], |w| table(w, &v))
        }
        None => {
            let all = c.list_all::<R>().await?;
            output::print(format, &all, |w| table(w, &all))
        }
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or("-".into(), ToString::to_string)
}

fn site_table(w: &mut dyn Write, s: &Site) -> std::io::Result<()> {
    writeln!(w, "site {} (version {})", s.name, s.resource_version)?;
    let p = &s.asn_plan;
    writeln!(w, "  spine ASN  {}", p.spine_asn)?;
    writeln!(w, "  rack ASNs  {}-{}", p.rack_asn_first, p.rack_asn_last)?;
    writeln!(w, "  host ASNs  {}-{}", p.host_asn_first, p.host_asn_last)?;
    let ranges: Vec<String> = s.address_ranges.iter().map(ToString::to_string).collect();
    writeln!(w, "  ranges     {}", ranges.join(", "))
}

fn rack_table(w: &mut dyn Write, v: &[Rack]) -> std::io::Result<()> {
    writeln!(w, "{:<24} {:>12} LEAVES", "NAME", "ASN")?;
    for r in v {
        writeln!(
            w,
            "{:<24} {:>12} {}",
            r.name,
            opt(&r.asn),
            r.leaves.join(",")
        )?;
    }
    Ok(())
}

fn switch_table(w: &mut dyn Write, v: &[Switch]) -> std::io::Result<()> {
    writeln!(
        w,
        "{:<24} {:<6} {:<16} {:>12} {:>5}",
        "NAME", "ROLE", "RACK", "ASN", "PORTS"
    )?;
    for s in v {
        let role = match s.role {
            clos_model::SwitchRole::Leaf => "leaf",
            clos_model::SwitchRole::Spine => "spine",
        };
        writeln!(
            w,
            "{:<24} {:<6} {:<16} {:>12} {:>5}",
            s.name,
            role,
            opt(&s.rack),
            opt(&s.asn),
            s.ports.len()
        )?;
    }
    Ok(())
}

fn tenant_table(w: &mut dyn Write, v: &[Tenant]) -> std::io::Result<()> {
    writeln!(w, "{:<24} DESCRIPTION", "NAME")?;
    for t in v {
        writeln!(w, "{:<24} {}", t.name, t.description)?;
    }
    Ok(())
}

fn kind_name(k: PoolKind) -> &'static str {
    match k {
        PoolKind::TenantSubnets => "tenant-subnets",
        PoolKind::FloatingIps => "floating-ips",
        PoolKind::AnycastServices => "anycast-services",
    }
}

fn pool_table(w: &mut dyn Write, v: &[Pool]) -> std::io::Result<()> {
    writeln!(
        w,
        "{:<20} {:<24} {:<16} {:>6} {:>10}",
        "NAME", "CIDR", "KIND", "BLOCK", "ALLOCATED"
    )?;
    for p in v {
        writeln!(
            w,
            "{:<20} {:<24} {:<16} {:>6} {:>10}",
            p.name,
            p.cidr.to_string(),
            kind_name(p.kind),
            p.block_prefix_len.map_or("-".into(), |l| format!("/{l}")),
            p.usage.map_or("-".into(), |u| u.allocated.to_string())
        )?;
    }
    Ok(())
}

fn subnet_table(w: &mut dyn Write, v: &[Subnet]) -> std::io::Result<()> {
    writeln!(
        w,
        "{:<20} {:<16} {:<16} {:<24} {:>10} {:>7}",
        "NAME", "TENANT", "POOL", "CIDR", "ALLOCATED", "BLOCKS"
    )?;
    for s in v {
        writeln!(
            w,
            "{:<20} {:<16} {:<16} {:<24} {:>10} {:>7}",
            s.name,
            s.tenant,
            s.pool,
            opt(&s.cidr),
            s.usage.map_or("-".into(), |u| u.allocated.to_string()),
            s.usage.map_or("-".into(), |u| u.blocks.to_string())
        )?;
        // The IPv6 part of a dual-stack subnet, on a line of its own.
        if let Some(f) = &s.ipv6 {
            writeln!(
                w,
                "{:<20} {:<16} {:<16} {:<24} {:>10} {:>7}",
                "",
                "",
                f.pool,
                opt(&f.cidr),
                f.usage.map_or("-".into(), |u| u.allocated.to_string()),
                f.usage.map_or("-".into(), |u| u.blocks.to_string())
            )?;
        }
    }
    Ok(())
}

fn node_table(w: &mut dyn Write, v: &[Node]) -> std::io::Result<()> {
    writeln!(
        w,
        "{:<20} {:<12} {:<8} {:>12} {:<10} {:>10}",
        "NAME", "RACK", "ROLE", "ASN", "AGENT", "APPLIED"
    )?;
    for n in v {
        let role = match n.role {
            NodeRole::Compute => "compute",
            NodeRole::Gateway => "gateway",
        };
        writeln!(
            w,
            "{:<20} {:<12} {:<8} {:>12} {:<10} {:>10}",
            n.name,
            opt(&n.rack),
            role,
            opt(&n.asn),
            n.status.as_ref().map_or("-".into(), |s| s.version.clone()),
            n.status
                .as_ref()
                .map_or("-".into(), |s| s.applied_revision.to_string())
        )?;
    }
    Ok(())
}

fn address_table(w: &mut dyn Write, v: &[Address]) -> std::io::Result<()> {
    writeln!(
        w,
        "{:<40} {:<16} {:<12} {:<28} {:<16} FLAGS",
        "IP", "SUBNET/POOL", "TENANT", "OWNER", "NODE"
    )?;
    for a in v {
        let mut flags = Vec::new();
        if a.fixed {
            flags.push("fixed");
        }
        if a.held {
            flags.push("held");
        }
        writeln!(
            w,
            "{:<40} {:<16} {:<12} {:<28} {:<16} {}",
            match a.ip6 {
                Some(ip6) => format!("{},{ip6}", a.ip),
                None => a.ip.to_string(),
            },
            a.subnet.clone().unwrap_or_else(|| a.pool.clone()),
            opt(&a.tenant),
            a.owner.id,
            opt(&a.node),
            flags.join(",")
        )?;
    }
    Ok(())
}

fn token_table(w: &mut dyn Write, v: &[Token]) -> std::io::Result<()> {
    writeln!(w, "{:<18} {:<7} {:<24} DESCRIPTION", "ID", "ROLE", "SCOPE")?;
    for t in v {
        let (role, scope) = match t.role {
            TokenRole::Admin => ("admin", "*".to_string()),
            TokenRole::Tenant => ("tenant", t.tenants.join(",")),
            TokenRole::Node => ("node", opt(&t.node)),
        };
        writeln!(
            w,
            "{:<18} {:<7} {:<24} {}",
            t.id, role, scope, t.description
        )?;
    }
    Ok(())
}

// --- create ----------------------------------------------------------------------------------

pub fn create(args: CreateArgs, format: OutputFormat) -> anyhow::Result<()> {
    let c = args.client.client()?;
    block(async move {
        match args.what {
            CreateCommand::Pool {
                name,
                cidr,
                kind,
                block_size,
            } => {
                let kind = match kind {
                    PoolKindArg::TenantSubnets => PoolKind::TenantSubnets,
                    PoolKindArg::FloatingIps => PoolKind::FloatingIps,
                    PoolKindArg::AnycastServices => PoolKind::AnycastServices,
                };
                let mut p = Pool::new(name, cidr, kind);
                p.block_prefix_len = block_size;
                let p = c.create(&p).await?;
                let v = vec![p];
                output::print(format, &v[0], |w| pool_table(w, &v))
            }
            CreateCommand::Subnet {
                name,
                tenant,
                pool,
                cidr,
                prefix_len,
                pool6,
                cidr6,
                prefix_len6,
            } => {
                if cidr.is_none() && prefix_len.is_none() {
                    bail!("give --cidr, or --prefix-len for the next free prefix of the pool");
                }
                let ipv6 = match pool6 {
                    Some(_) if cidr6.is_none() && prefix_len6.is_none() => {
                        bail!("give --cidr6, or --prefix-len6 for the next free prefix of --pool6")
                    }
                    Some(pool) => Some(SubnetFamily {
                        pool,
                        cidr: cidr6,
                        prefix_len: prefix_len6,
                        reserve: Default::default(),
                        usage: None,
                    }),
                    None => None,
                };
                let s = Subnet {
                    cidr,
                    prefix_len,
                    ipv6,
                    ..Subnet::new(name, tenant, pool, IpNet::default())
                };
                let s = c.create(&s).await?;
                let v = vec![s];
                output::print(format, &v[0], |w| subnet_table(w, &v))
            }
            CreateCommand::Tenant { name, description } => {
                let t = c
                    .create(&Tenant {
                        description,
                        ..Tenant::new(name)
                    })
                    .await?;
                let v = vec![t];
                output::print(format, &v[0], |w| tenant_table(w, &v))
            }
            CreateCommand::Rack { name, asn } => {
                let r = c
                    .create(&Rack {
                        name,
                        asn,
                        leaves: Vec::new(),
                        description: String::new(),
                        resource_version: 0,
                    })
                    .await?;
                let v = vec![r];
                output::print(format, &v[0], |w| rack_table(w, &v))
            }
            CreateCommand::Node {
                name,
                rack,
                gateway,
                asn,
            } => {
                let mut n = Node::new(name);
                n.rack = rack;
                n.asn = asn;
                if gateway {
                    n.role = NodeRole::Gateway;
                }
                let n = c.create(&n).await?;
                let v = vec![n];
                output::print(format, &v[0], |w| node_table(w, &v))
            }
            CreateCommand::Address {
                subnet,
                pool,
                owner,
                owner_kind,
                node,
                ip,
                fixed,
            } => {
                let kind = match owner_kind {
                    OwnerKindArg::Host => OwnerKind::Host,
                    OwnerKindArg::Vm => OwnerKind::Vm,
                    OwnerKindArg::Container => OwnerKind::Container,
                    OwnerKindArg::Service => OwnerKind::Service,
                };
                let req = AllocateAddress {
                    owner: Owner::new(kind, owner),
                    node,
                    ip,
                    fixed,
                };
                let a = match (subnet, pool) {
                    (Some(s), _) => c.allocate(&s, &req).await?,
                    (None, Some(p)) => c.allocate_direct(&p, &req).await?,
                    (None, None) => bail!("give --subnet or --pool"),
                };
                let v = vec![a];
                output::print(format, &v[0], |w| address_table(w, &v))
            }
            CreateCommand::Token {
                role,
                tenants,
                node,
                description,
            } => {
                let role = match role {
                    RoleArg::Admin => TokenRole::Admin,
                    RoleArg::Tenant => TokenRole::Tenant,
                    RoleArg::Node => TokenRole::Node,
                };
                let t = c
                    .create_token(&CreateToken {
                        role,
                        tenants,
                        node,
                        description,
                    })
                    .await?;
                output::print(format, &t, |w| {
                    token_table(w, std::slice::from_ref(&t.token))?;
                    writeln!(w, "secret (shown once): {}", t.secret)
                })
            }
        }
    })
}

// --- delete ----------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct Deleted<'a> {
    kind: &'a str,
    name: &'a str,
}

pub fn delete(args: DeleteArgs, format: OutputFormat) -> anyhow::Result<()> {
    let c = args.client.client()?;
    let rv = args.resource_version.unwrap_or(0);
    let name = args.name.clone();
    block(async move {
        let kind = match args.kind {
            Kind::Site => bail!("the site cannot be deleted"),
            Kind::Rack => c.remove::<Rack>(&name, rv).await.map(|_| Rack::KIND)?,
            Kind::Switch => c.remove::<Switch>(&name, rv).await.map(|_| Switch::KIND)?,
            Kind::Tenant => c.remove::<Tenant>(&name, rv).await.map(|_| Tenant::KIND)?,
            Kind::Pool => c.remove::<Pool>(&name, rv).await.map(|_| Pool::KIND)?,
            Kind::Subnet => c.remove::<Subnet>(&name, rv).await.map(|_| Subnet::KIND)?,
            Kind::Node => c.remove::<Node>(&name, rv).await.map(|_| Node::KIND)?,
            Kind::Token => {
                c.delete(&format!("/v1/tokens/{name}")).await?;
                "token"
            }
            Kind::Address => {
                let ip: IpAddr = name
                    .parse()
                    .with_context(|| format!("{name} is not an IP address"))?;
                c.release(ip, args.forget).await?;
                "address"
            }
        };
        let d = Deleted { kind, name: &name };
        output::print(format, &d, |w| writeln!(w, "deleted {kind} {name}"))
    })
}

// --- ipam ------------------------------------------------------------------------------------

pub fn ipam(cmd: IpamCommand, format: OutputFormat) -> anyhow::Result<()> {
    match cmd {
        IpamCommand::Check { repair, client } => {
            let c = client.client()?;
            let report: IpamCheck = block(async move { Ok(c.ipam_check(repair).await?) })?;
            output::print(format, &report, |w| {
                if report.healthy && report.actions.is_empty() {
                    return writeln!(w, "IPAM state is healthy");
                }
                for i in &report.issues {
                    writeln!(w, "issue:     {i}")?;
                }
                for a in &report.actions {
                    writeln!(w, "repaired:  {a}")?;
                }
                for i in &report.remaining {
                    writeln!(w, "remaining: {i}")?;
                }
                Ok(())
            })?;
            if !report.healthy {
                bail!(
                    "the IPAM state has problems (see above); run with --repair to fix what is safe"
                );
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ClientConfig;

    #[test]
    fn client_config_parses_and_names_the_field_at_fault() {
        let c = ClientConfig::parse("server: http://10.0.0.5:7700\ntoken: abc\n").unwrap();
        assert_eq!(c.server.as_deref(), Some("http://10.0.0.5:7700"));
        assert_eq!(c.token.as_deref(), Some("abc"));
        let c = ClientConfig::parse("token: abc\n").unwrap();
        assert!(c.server.is_none());
        assert!(ClientConfig::parse("").unwrap().token.is_none());
        assert!(
            ClientConfig::parse("# nothing yet\n")
                .unwrap()
                .token
                .is_none()
        );

        let e = ClientConfig::parse("server: http://x:1\ntokn: abc\n").unwrap_err();
        assert!(e.contains("tokn") && e.contains("line 2"), "{e}");
        let e = ClientConfig::parse("server: [http://x:1]\n").unwrap_err();
        assert!(e.starts_with("server:") && e.contains("line 1"), "{e}");
        let e = ClientConfig::parse("token: ''\n").unwrap_err();
        assert!(e.contains("`token` is empty"), "{e}");
        let e = ClientConfig::parse("server: http://x:1\n  token: abc\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }
}
