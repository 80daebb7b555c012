//! The IPAM writer: the one task that mutates the allocator and everything derived from it
//! (pools, subnets, nodes, addresses, node desired states).
//!
//! # Contract
//!
//! * Requests queue on a channel. The writer takes every queued allocation and release (up to
//!   [`MAX_BATCH`]) as one batch, applies them to the in-memory [`Ipam`] one by one, and writes
//!   all their records, plus the desired states of the nodes whose advertisements changed, in
//!   **one** store transaction (group commit: one fsync for the whole batch). Other operations
//!   (pools, subnets, nodes, tenants) run as batches of their own.
//! * Every transaction is guarded by compare-and-swap on `ipam/guard`'s `mod_revision` and
//!   bumps it, so a write based on a stale allocator can never commit (another controller, or
//!   a restore, changed the IPAM records). On a failed guard the writer rebuilds the allocator
//!   from the store and re-applies the batch, as `clos_ipam::record` documents; after
//!   [`MAX_ATTEMPTS`] it answers 503.
//! * A request that fails validation changes nothing and is answered at once; the others in
//!   its batch are unaffected. A request is answered only after its batch is durable.
//! * Handlers read the allocator through [`Shared`] under a read lock (usage, lookups); they
//!   may see a batch that is being written. Resource reads come from the store.
//! * No lock is held across an `.await`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use clos_ipam::{AllocRequest, Allocated, AllocationInfo, Change, Ipam, PoolSpec, Record};
use clos_model::{
    Address, AllocateAddress, AsnPlan, DesiredState, Node, NodeAddress, Pool, Site, Subnet,
};
use clos_store::{Compare, CompareOp, KeyRange, Op as StoreOp, RangeRequest, Store};
use tokio::sync::{mpsc, oneshot};

use crate::convert;
use crate::error::{Error, Result};
use crate::keys;
use crate::metrics::Metrics;

pub const MAX_BATCH: usize = 1024;
const MAX_ATTEMPTS: usize = 3;

/// Allocator state shared with the request handlers (read-only for them).
#[derive(Debug, Default)]
pub struct Shared {
    pub ipam: Ipam,
    /// Subnet name -> (tenant, pool).
    pub subnets: HashMap<String, (String, String)>,
    /// Pool name -> kind.
    pub pools: HashMap<String, clos_model::PoolKind>,
}

#[derive(Debug, Clone, Default)]
pub struct SharedHandle(Arc<RwLock<Shared>>);

impl SharedHandle {
    pub fn read(&self) -> RwLockReadGuard<'_, Shared> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Shared> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A mutation for the writer.
#[derive(Debug)]
pub enum Op {
    CreatePool(Pool),
    DeletePool {
        name: String,
        version: u64,
    },
    CreateSubnet(Subnet),
    DeleteSubnet {
        name: String,
        version: u64,
    },
    DeleteTenant {
        name: String,
        version: u64,
    },
    CreateNode(Node),
    /// Create, or return the existing node unchanged.
    RegisterNode(Node),
    UpdateNode(Node),
    DeleteNode {
        name: String,
        version: u64,
    },
    Allocate {
        subnet: String,
        req: AllocateAddress,
    },
    AllocateDirect {
        pool: String,
        req: AllocateAddress,
    },
    Release {
        ip: IpAddr,
        forget: bool,
    },
    Repair,
}

impl Op {
    fn batchable(&self) -> bool {
        matches!(
            self,
            Op::Allocate { .. } | Op::AllocateDirect { .. } | Op::Release { .. }
        )
    }
}

/// What an operation produced; resources carry their new `resource_version`.
#[derive(Debug)]
pub enum Done {
    Pool(Pool),
    Subnet(Subnet),
    Node(Node),
    Address(Address),
    Deleted,
    Repair(clos_ipam::RepairReport),
}

struct Pending {
    op: Op,
    reply: oneshot::Sender<Result<Done>>,
}

/// The handlers' side of the writer.
#[derive(Debug, Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Pending>,
}

impl WriterHandle {
    pub async fn call(&self, op: Op) -> Result<Done> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Pending { op, reply })
            .await
            .map_err(|_| Error::Store(clos_store::Error::ShuttingDown))?;
        rx.await
            .map_err(|_| Error::Store(clos_store::Error::ShuttingDown))?
    }
}

/// An operation applied in memory, waiting for its transaction.
struct Staged {
    ops: Vec<StoreOp>,
    done: Done,
    /// Nodes whose desired state may have changed.
    nodes: Vec<String>,
    /// Key to read the resource version from when the operation wrote nothing.
    version_key: Option<String>,
}

impl Staged {
    fn new(done: Done) -> Staged {
        Staged {
            ops: Vec::new(),
            done,
            nodes: Vec::new(),
            version_key: None,
        }
    }
}

pub struct Writer {
    store: Arc<dyn Store>,
    shared: SharedHandle,
    metrics: Metrics,
    /// `mod_revision` of `ipam/guard` as of the allocator in memory.
    guard_rev: u64,
    /// Node resources (without status), with their resource versions.
    nodes: HashMap<String, Node>,
    used_asns: HashSet<u32>,
    /// Last written desired state per node.
    desired: HashMap<String, DesiredState>,
    /// The in-memory state may differ from the store (a write failed): reload first.
    stale: bool,
    /// Desired states may have been written from a state that differs from the store:
    /// rewrite those that disagree after the next reload.
    resync: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("guard_rev", &self.guard_rev)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Loads the state from the store (and rewrites desired states that disagree with it),
    /// then runs the writer loop on a task.
    pub async fn start(
        store: Arc<dyn Store>,
        metrics: Metrics,
    ) -> Result<(WriterHandle, SharedHandle, tokio::task::JoinHandle<()>)> {
        let shared = SharedHandle::default();
        let mut w = Writer {
            store,
            shared: shared.clone(),
            metrics,
            guard_rev: 0,
            nodes: HashMap::new(),
            used_asns: HashSet::new(),
            desired: HashMap::new(),
            stale: true,
            resync: false,
        };
        w.reload().await?;
        w.sync_desired().await?;
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let task = tokio::spawn(w.run(rx));
        Ok((WriterHandle { tx }, shared, task))
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Pending>) {
        let mut carry: Option<Pending> = None;
        loop {
            let first = match carry.take() {
                Some(p) => p,
                None => match rx.recv().await {
                    Some(p) => p,
                    None => return,
                },
            };
            let mut batch = vec![first];
            if batch[0].op.batchable() {
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(p) if p.op.batchable() => batch.push(p),
                        Ok(p) => {
                            carry = Some(p);
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            self.run_batch(batch).await;
        }
    }

    async fn run_batch(&mut self, batch: Vec<Pending>) {
        let results = self.commit_batch(&batch).await;
        for (p, r) in batch.into_iter().zip(results) {
            let _ = p.reply.send(r);
        }
    }

    async fn commit_batch(&mut self, batch: &[Pending]) -> Vec<Result<Done>> {
        for _ in 0..MAX_ATTEMPTS {
            if self.stale
                && let Err(e) = self.reload().await
            {
                return batch.iter().map(|_| Err(clone_err(&e))).collect();
            }
            if self.resync {
                if let Err(e) = self.sync_desired().await {
                    return batch.iter().map(|_| Err(clone_err(&e))).collect();
                }
                self.resync = false;
            }
            let mut staged = Vec::with_capacity(batch.len());
            for p in batch {
                staged.push(self.apply(&p.op).await);
            }
            let affected: BTreeSet<String> = staged
                .iter()
                .flatten()
                .flat_map(|s| s.nodes.iter().cloned())
                .collect();
            let mut ops: Vec<StoreOp> = staged
                .iter_mut()
                .flatten()
                .flat_map(|s| std::mem::take(&mut s.ops))
                .collect();
            // Which staged entries wrote something (their ops were taken above).
            let wrote: Vec<bool> = staged
                .iter()
                .map(|s| s.as_ref().is_ok_and(|s| s.version_key.is_none()))
                .collect();
            ops.extend(self.desired_ops(&affected));
            if ops.is_empty() {
                return self.finish(staged, &wrote, None).await;
            }
            ops.push(StoreOp::put(keys::IPAM_GUARD, ""));
            let txn = clos_store::Txn::new()
                .when([Compare::mod_revision(
                    keys::IPAM_GUARD,
                    CompareOp::Equal,
                    self.guard_rev,
                )])
                .and_then(ops);
            let batch_len = staged.iter().flatten().count();
            match self.store.txn(txn).await {
                Ok(resp) if resp.succeeded => {
                    self.guard_rev = resp.revision;
                    self.metrics.batch(batch_len);
                    return self.finish(staged, &wrote, Some(resp.revision)).await;
                }
                Ok(_) => {
                    tracing::warn!("IPAM guard changed under the writer; reloading and retrying");
                    self.stale = true;
                }
                Err(e) => {
                    // The outcome is unknown: reload before the next batch.
                    self.stale = true;
                    let e = Error::from(e);
                    return batch.iter().map(|_| Err(clone_err(&e))).collect();
                }
            }
        }
        batch.iter().map(|_| Err(Error::Busy)).collect()
    }

    /// Fills in resource versions after a commit at `rev`.
    async fn finish(
        &mut self,
        staged: Vec<Result<Staged>>,
        wrote: &[bool],
        rev: Option<u64>,
    ) -> Vec<Result<Done>> {
        let mut out = Vec::with_capacity(staged.len());
        for (s, &wrote) in staged.into_iter().zip(wrote) {
            let s = match s {
                Ok(s) => s,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            let version = match (&s.version_key, rev) {
                (None, Some(rev)) if wrote => rev,
                (Some(key), _) => match self.store.get(key.clone().into()).await {
                    Ok(kv) => kv.map_or(0, |kv| kv.mod_revision),
                    Err(e) => {
                        out.push(Err(e.into()));
                        continue;
                    }
                },
                _ => 0,
            };
            let mut done = s.done;
            match &mut done {
                Done::Pool(p) => p.resource_version = version,
                Done::Subnet(x) => x.resource_version = version,
                Done::Address(a) => a.resource_version = version,
                Done::Node(n) => {
                    if s.version_key.is_none() {
                        n.resource_version = version;
                        if let Some(cached) = self.nodes.get_mut(&n.name) {
                            cached.resource_version = version;
                        }
                    }
                }
                Done::Deleted | Done::Repair(_) => {}
            }
            if let Done::Address(_) = &done {
                self.metrics.allocated();
            }
            out.push(Ok(done));
        }
        out
    }

    /// Desired-state writes for the affected nodes whose state changed.
    fn desired_ops(&mut self, affected: &BTreeSet<String>) -> Vec<StoreOp> {
        let mut ops = Vec::new();
        let shared = self.shared.read();
        for name in affected {
            let Some(node) = self.nodes.get(name) else {
                continue;
            };
            let (Ok(advertisements), Ok(addresses)) = (
                shared.ipam.advertisements(name),
                shared.ipam.node_addresses(name),
            ) else {
                continue;
            };
            let addresses = addresses
                .into_iter()
                .map(|a| NodeAddress {
                    ip: a.ip,
                    owner: convert::model_owner(&a.owner),
                    subnet: a.subnet,
                })
                .collect();
            let state = DesiredState {
                node: name.clone(),
                asn: node.asn,
                advertisements,
                addresses,
            };
            if self.desired.get(name) != Some(&state) {
                ops.push(StoreOp::put(
                    keys::item(keys::DESIRED, name),
                    serde_json::to_vec(&state).unwrap_or_default(),
                ));
                self.desired.insert(name.clone(), state);
            }
        }
        ops
    }

    /// Rewrites every desired state that disagrees with the allocator (after a start).
    async fn sync_desired(&mut self) -> Result<()> {
        let stored = self
            .store
            .range(RangeRequest::new(KeyRange::prefix(keys::DESIRED)))
            .await?;
        self.desired.clear();
        let mut ops = Vec::new();
        for kv in stored.kvs {
            let name = String::from_utf8_lossy(&kv.key[keys::DESIRED.len()..]).into_owned();
            if !self.nodes.contains_key(&name) {
                ops.push(StoreOp::delete(kv.key.clone()));
                continue;
            }
            if let Ok(state) = serde_json::from_slice::<DesiredState>(&kv.value) {
                self.desired.insert(name, state);
            }
        }
        let all: BTreeSet<String> = self.nodes.keys().cloned().collect();
        ops.extend(self.desired_ops(&all));
        if !ops.is_empty() {
            tracing::info!(writes = ops.len(), "correcting stored desired states");
            let resp = self.store.txn(clos_store::Txn::new().and_then(ops)).await?;
            tracing::debug!(revision = resp.revision, "desired states corrected");
        }
        Ok(())
    }

    /// Rebuilds the allocator and the caches from the store.
    async fn reload(&mut self) -> Result<()> {
        let resp = self
            .store
            .range(RangeRequest::new(KeyRange::prefix(keys::IPAM)))
            .await?;
        let mut guard_rev = 0;
        let mut records = Vec::with_capacity(resp.kvs.len());
        for kv in &resp.kvs {
            if kv.key.as_ref() == keys::IPAM_GUARD.as_bytes() {
                guard_rev = kv.mod_revision;
                continue;
            }
            let r: Record = serde_json::from_slice(&kv.value).map_err(|e| {
                Error::Internal(format!(
                    "record {} does not decode: {e}",
                    String::from_utf8_lossy(&kv.key)
                ))
            })?;
            records.push(r);
        }
        let mut subnets = HashMap::new();
        let mut pools = HashMap::new();
        for r in &records {
            match r {
                Record::Subnet(s) => {
                    subnets.insert(s.name.clone(), (s.tenant.clone(), s.pool.clone()));
                }
                Record::Pool(p) => {
                    pools.insert(p.name.clone(), convert::model_pool_kind(p.kind));
                }
                _ => {}
            }
        }
        let count = records.len();
        let ipam = tokio::task::spawn_blocking(move || Ipam::from_records(records))
            .await
            .map_err(Error::internal)??;
        let nodes = self
            .store
            .range(RangeRequest::new(KeyRange::prefix(keys::NODES)))
            .await?;
        self.nodes.clear();
        self.used_asns.clear();
        for kv in nodes.kvs {
            let mut n: Node = serde_json::from_slice(&kv.value).map_err(Error::internal)?;
            n.resource_version = kv.mod_revision;
            if let Some(a) = n.asn {
                self.used_asns.insert(a);
            }
            self.nodes.insert(n.name.clone(), n);
        }
        *self.shared.write() = Shared {
            ipam,
            subnets,
            pools,
        };
        self.guard_rev = guard_rev;
        self.stale = false;
        tracing::info!(
            records = count,
            revision = resp.revision,
            "IPAM state loaded"
        );
        Ok(())
    }

    async fn check_version(
        &self,
        key: &str,
        kind: &'static str,
        name: &str,
        given: u64,
    ) -> Result<()> {
        if given == 0 {
            return Ok(());
        }
        let kv = self
            .store
            .get(key.to_string().into())
            .await?
            .ok_or_else(|| Error::not_found(kind, name))?;
        if kv.mod_revision != given {
            return Err(Error::Stale {
                kind,
                name: name.to_string(),
                given,
                current: kv.mod_revision,
            });
        }
        Ok(())
    }

    async fn site(&self) -> Result<Option<Site>> {
        match self.store.get(keys::SITE.into()).await? {
            Some(kv) => Ok(Some(
                serde_json::from_slice(&kv.value).map_err(Error::internal)?,
            )),
            None => Ok(None),
        }
    }

    async fn apply(&mut self, op: &Op) -> Result<Staged> {
        match op {
            Op::CreatePool(p) => self.create_pool(p).await,
            Op::DeletePool { name, version } => {
                self.check_version(&keys::item(keys::POOLS, name), "pool", name, *version)
                    .await?;
                let mut sh = self.shared.write();
                let changes = sh.ipam.delete_pool(name)?;
                sh.pools.remove(name);
                Ok(staged_changes(Done::Deleted, changes))
            }
            Op::CreateSubnet(s) => self.create_subnet(s).await,
            Op::DeleteSubnet { name, version } => {
                self.check_version(&keys::item(keys::SUBNETS, name), "subnet", name, *version)
                    .await?;
                let mut sh = self.shared.write();
                let part = convert::v6_part(name);
                if !sh.subnets.contains_key(&part) {
                    let changes = sh.ipam.delete_subnet(name)?;
                    sh.subnets.remove(name);
                    return Ok(staged_changes(Done::Deleted, changes));
                }
                // Dual-stack: both parts or neither.
                let backup = sh.ipam.clone();
                let deleted = sh.ipam.delete_subnet(name).and_then(|mut changes| {
                    changes.extend(sh.ipam.delete_subnet(&part)?);
                    Ok(changes)
                });
                match deleted {
                    Ok(changes) => {
                        sh.subnets.remove(name);
                        sh.subnets.remove(&part);
                        Ok(staged_changes(Done::Deleted, changes))
                    }
                    Err(e) => {
                        sh.ipam = backup;
                        Err(e.into())
                    }
                }
            }
            Op::DeleteTenant { name, version } => {
                let key = keys::item("tenants/", name);
                let kv = self
                    .store
                    .get(key.clone().into())
                    .await?
                    .ok_or_else(|| Error::not_found("tenant", name))?;
                if *version > 0 && kv.mod_revision != *version {
                    return Err(Error::Stale {
                        kind: "tenant",
                        name: name.clone(),
                        given: *version,
                        current: kv.mod_revision,
                    });
                }
                let owned = self
                    .shared
                    .read()
                    .subnets
                    .iter()
                    .filter(|(s, (t, _))| t == name && !convert::is_v6_part(s))
                    .count();
                if owned > 0 {
                    return Err(Error::Conflict {
                        detail: format!("tenant {name} still owns {owned} subnet(s)"),
                        hint: "delete the tenant's subnets first",
                    });
                }
                let mut s = Staged::new(Done::Deleted);
                s.ops.push(StoreOp::delete(key));
                Ok(s)
            }
            Op::CreateNode(n) => self.create_node(n, false).await,
            Op::RegisterNode(n) => self.create_node(n, true).await,
            Op::UpdateNode(n) => self.update_node(n).await,
            Op::DeleteNode { name, version } => {
                let current = self
                    .nodes
                    .get(name)
                    .ok_or_else(|| Error::not_found("node", name))?;
                if *version > 0 && current.resource_version != *version {
                    return Err(Error::Stale {
                        kind: "node",
                        name: name.clone(),
                        given: *version,
                        current: current.resource_version,
                    });
                }
                let changes = self.shared.write().ipam.remove_node(name)?;
                if let Some(n) = self.nodes.remove(name)
                    && let Some(a) = n.asn
                {
                    self.used_asns.remove(&a);
                }
                self.desired.remove(name);
                let mut s = staged_changes(Done::Deleted, changes);
                s.ops.push(StoreOp::delete(keys::item(keys::NODES, name)));
                s.ops
                    .push(StoreOp::delete(keys::item(keys::NODE_STATUS, name)));
                s.ops.push(StoreOp::delete(keys::item(keys::DESIRED, name)));
                Ok(s)
            }
            Op::Allocate { subnet, req } => {
                let node = req.node.clone().ok_or_else(|| Error::Invalid {
                    field: "node".into(),
                    reason: "an address in a subnet is allocated on a node: name it".into(),
                })?;
                let mut sh = self.shared.write();
                let (tenant, pool) = sh.subnets.get(subnet).cloned().ok_or_else(|| {
                    clos_ipam::Error::UnknownSubnet {
                        subnet: subnet.clone(),
                    }
                })?;
                let part = convert::v6_part(subnet);
                if sh.subnets.contains_key(&part) {
                    drop(sh);
                    return self.allocate_dual(subnet, &part, &node, req, tenant, pool);
                }
                let mut ar = AllocRequest::new(subnet, &node, convert::owner(&req.owner));
                ar.ip = req.ip;
                ar.fixed = req.fixed;
                let r = sh.ipam.allocate(&ar)?;
                let info = sh.ipam.lookup(r.ip);
                let address = Address {
                    ip: r.ip,
                    ip6: None,
                    pool,
                    subnet: Some(subnet.clone()),
                    tenant: Some(tenant),
                    owner: req.owner.clone(),
                    node: Some(node.clone()),
                    fixed: info.as_ref().is_some_and(|i| i.fixed),
                    held: false,
                    resource_version: 0,
                };
                let empty = r.changes.is_empty();
                let mut s = staged_changes(Done::Address(address), r.changes);
                s.nodes.push(node);
                if empty {
                    s.version_key = Some(keys::address(r.ip));
                }
                Ok(s)
            }
            Op::AllocateDirect { pool, req } => {
                let mut sh = self.shared.write();
                let r = sh
                    .ipam
                    .allocate_direct(pool, &convert::owner(&req.owner), req.ip)?;
                let address = Address {
                    ip: r.ip,
                    ip6: None,
                    pool: pool.clone(),
                    subnet: None,
                    tenant: None,
                    owner: req.owner.clone(),
                    node: None,
                    fixed: false,
                    held: false,
                    resource_version: 0,
                };
                let empty = r.changes.is_empty();
                let mut s = staged_changes(Done::Address(address), r.changes);
                if empty {
                    s.version_key = Some(keys::address(r.ip));
                }
                Ok(s)
            }
            Op::Release { ip, forget } => {
                let mut sh = self.shared.write();
                let info = sh
                    .ipam
                    .lookup(*ip)
                    .ok_or(clos_ipam::Error::UnknownAddress { ip: *ip })?;
                // In a dual-stack subnet the owner's address of the other family goes too.
                let mut both = vec![info];
                if let Some(subnet) = &both[0].subnet {
                    let other = convert::paired_subnet(subnet);
                    if sh.subnets.contains_key(&other)
                        && let Some(peer) = sh.ipam.allocation(&other, &both[0].owner.id)
                    {
                        both.push(peer);
                    }
                }
                let mut changes = Vec::new();
                for info in &both {
                    changes.extend(sh.ipam.release_ip(info.ip)?);
                    if *forget
                        && info.fixed
                        && let Some(subnet) = &info.subnet
                    {
                        changes.extend(sh.ipam.forget_fixed(subnet, &info.owner.id)?);
                    }
                }
                let mut s = staged_changes(Done::Deleted, changes);
                s.nodes.extend(both.into_iter().filter_map(|i| i.node));
                self.metrics.released();
                Ok(s)
            }
            Op::Repair => {
                let report = self.shared.write().ipam.repair();
                let changes = report.changes.clone();
                let mut s = staged_changes(Done::Repair(report), changes);
                s.nodes.extend(self.nodes.keys().cloned());
                Ok(s)
            }
        }
    }

    async fn create_pool(&mut self, p: &Pool) -> Result<Staged> {
        if let Some(site) = self.site().await?
            && !site.address_ranges.is_empty()
            && !site.address_ranges.iter().any(|r| r.contains(&p.cidr))
        {
            return Err(Error::Invalid {
                field: "cidr".into(),
                reason: format!(
                    "{} is outside the site's address ranges ({}): pick a range inside them or widen the site",
                    p.cidr,
                    site.address_ranges
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let spec = PoolSpec {
            name: p.name.clone(),
            cidr: p.cidr,
            kind: convert::pool_kind(p.kind),
            block_prefix_len: p.block_prefix_len,
        };
        let mut sh = self.shared.write();
        let changes = sh.ipam.create_pool(&spec)?;
        sh.pools.insert(p.name.clone(), p.kind);
        let pool = changes
            .iter()
            .find_map(|c| match c {
                Change::Put {
                    record: Record::Pool(r),
                } => Some(convert::pool_from_record(r, 0)),
                _ => None,
            })
            .ok_or_else(|| Error::internal("pool creation wrote no pool record"))?;
        Ok(staged_changes(Done::Pool(pool), changes))
    }

    async fn create_subnet(&mut self, s: &Subnet) -> Result<Staged> {
        let tenant_key = keys::item("tenants/", &s.tenant);
        if self.store.get(tenant_key.into()).await?.is_none() {
            return Err(Error::Invalid {
                field: "tenant".into(),
                reason: format!("no tenant named {}: create it first", s.tenant),
            });
        }
        let spec = convert::subnet_spec(s);
        let v6 = convert::v6_spec(s);
        let mut sh = self.shared.write();
        let Some(v6) = v6 else {
            let (_, changes) = sh.ipam.create_subnet(&spec)?;
            sh.subnets
                .insert(s.name.clone(), (s.tenant.clone(), s.pool.clone()));
            let subnet = subnet_in(&changes, &s.name)
                .ok_or_else(|| Error::internal("subnet creation wrote no subnet record"))?;
            return Ok(staged_changes(Done::Subnet(subnet), changes));
        };
        // Dual-stack: both IPAM subnets or neither (subnet creation is rare: a copy is cheap).
        let backup = sh.ipam.clone();
        let created = create_dual(&mut sh.ipam, &spec, &v6);
        let changes = match created {
            Ok(changes) => changes,
            Err(e) => {
                sh.ipam = backup;
                return Err(e);
            }
        };
        let part = convert::v6_part(&s.name);
        let mut subnet = subnet_in(&changes, &s.name)
            .ok_or_else(|| Error::internal("subnet creation wrote no subnet record"))?;
        subnet.ipv6 = changes.iter().find_map(|c| match c {
            Change::Put {
                record: Record::Subnet(r),
            } if r.name == part => Some(convert::family_from_record(r)),
            _ => None,
        });
        let pool6 = subnet
            .ipv6
            .as_ref()
            .map(|f| f.pool.clone())
            .unwrap_or_default();
        sh.subnets
            .insert(s.name.clone(), (s.tenant.clone(), s.pool.clone()));
        sh.subnets.insert(part, (s.tenant.clone(), pool6));
        Ok(staged_changes(Done::Subnet(subnet), changes))
    }

    /// Allocates an owner's IPv4 and IPv6 addresses in a dual-stack subnet on a node: both or
    /// neither. A static `ip` is taken in the part of its family.
    fn allocate_dual(
        &mut self,
        subnet: &str,
        part: &str,
        node: &str,
        req: &AllocateAddress,
        tenant: String,
        pool: String,
    ) -> Result<Staged> {
        let mut sh = self.shared.write();
        let owner = convert::owner(&req.owner);
        let mut ar4 = AllocRequest::new(subnet, node, owner.clone());
        ar4.ip = req.ip.filter(IpAddr::is_ipv4);
        ar4.fixed = req.fixed;
        let mut ar6 = AllocRequest::new(part, node, owner);
        ar6.ip = req.ip.filter(IpAddr::is_ipv6);
        ar6.fixed = req.fixed;
        let prior = sh.ipam.allocation(subnet, &req.owner.id);
        let r4 = sh.ipam.allocate(&ar4)?;
        let r6 = match sh.ipam.allocate(&ar6) {
            Ok(r) => r,
            Err(e) => {
                if !r4.changes.is_empty()
                    && !undo_allocation(&mut sh.ipam, subnet, &req.owner.id, node, prior, &r4)
                {
                    // Not put back exactly: rebuild from the store before the next batch.
                    tracing::warn!(
                        subnet,
                        "could not undo an IPv4 allocation exactly; reloading the IPAM state"
                    );
                    self.stale = true;
                    self.resync = true;
                }
                return Err(e.into());
            }
        };
        let fixed = sh.ipam.lookup(r4.ip).is_some_and(|i| i.fixed);
        let address = Address {
            ip: r4.ip,
            ip6: Some(r6.ip),
            pool,
            subnet: Some(subnet.to_string()),
            tenant: Some(tenant),
            owner: req.owner.clone(),
            node: Some(node.to_string()),
            fixed,
            held: false,
            resource_version: 0,
        };
        let empty = r4.changes.is_empty() && r6.changes.is_empty();
        let mut changes = r4.changes;
        changes.extend(r6.changes);
        let mut s = staged_changes(Done::Address(address), changes);
        s.nodes.push(node.to_string());
        if empty {
            s.version_key = Some(keys::address(r4.ip));
        }
        Ok(s)
    }

    async fn host_asn_plan(&self) -> Result<AsnPlan> {
        Ok(self.site().await?.map(|s| s.asn_plan).unwrap_or_default())
    }

    async fn check_rack(&self, n: &Node) -> Result<()> {
        if let Some(rack) = &n.rack
            && self
                .store
                .get(keys::item("racks/", rack).into())
                .await?
                .is_none()
        {
            return Err(Error::Invalid {
                field: "rack".into(),
                reason: format!("no rack named {rack}: create it first"),
            });
        }
        Ok(())
    }

    async fn create_node(&mut self, n: &Node, register: bool) -> Result<Staged> {
        if let Some(existing) = self.nodes.get(&n.name) {
            if register {
                let mut s = Staged::new(Done::Node(existing.clone()));
                s.version_key = Some(keys::item(keys::NODES, &n.name));
                return Ok(s);
            }
            return Err(Error::Exists {
                kind: "node",
                name: n.name.clone(),
            });
        }
        self.check_rack(n).await?;
        let mut node = n.clone();
        node.status = None;
        node.resource_version = 0;
        match node.asn {
            Some(a) if self.used_asns.contains(&a) => {
                return Err(Error::Conflict {
                    detail: format!("AS {a} is already used by another node"),
                    hint: "leave asn out to get a free one from the site's host range",
                });
            }
            Some(_) => {}
            None => {
                let plan = self.host_asn_plan().await?;
                let free = (plan.host_asn_first..=plan.host_asn_last)
                    .find(|a| !self.used_asns.contains(a))
                    .ok_or_else(|| Error::Conflict {
                        detail: "the site's host ASN range is used up".into(),
                        hint: "widen asn_plan.host_asn_first..host_asn_last in the site",
                    })?;
                node.asn = Some(free);
            }
        }
        let changes = self.shared.write().ipam.add_node(&node.name)?;
        if let Some(a) = node.asn {
            self.used_asns.insert(a);
        }
        let mut s = staged_changes(Done::Node(node.clone()), changes);
        s.ops.push(StoreOp::put(
            keys::item(keys::NODES, &node.name),
            serde_json::to_vec(&node).map_err(Error::internal)?,
        ));
        s.nodes.push(node.name.clone());
        self.nodes.insert(node.name.clone(), node);
        Ok(s)
    }

    async fn update_node(&mut self, n: &Node) -> Result<Staged> {
        let current = self
            .nodes
            .get(&n.name)
            .cloned()
            .ok_or_else(|| Error::not_found("node", &n.name))?;
        if n.resource_version > 0 && n.resource_version != current.resource_version {
            return Err(Error::Stale {
                kind: "node",
                name: n.name.clone(),
                given: n.resource_version,
                current: current.resource_version,
            });
        }
        self.check_rack(n).await?;
        let mut node = n.clone();
        node.status = None;
        node.asn = node.asn.or(current.asn);
        if node.asn != current.asn
            && let Some(a) = node.asn
        {
            if self.used_asns.contains(&a) {
                return Err(Error::Conflict {
                    detail: format!("AS {a} is already used by another node"),
                    hint: "pick a free ASN, or keep the current one",
                });
            }
            if let Some(old) = current.asn {
                self.used_asns.remove(&old);
            }
            self.used_asns.insert(a);
        }
        let mut s = Staged::new(Done::Node(node.clone()));
        s.ops.push(StoreOp::put(
            keys::item(keys::NODES, &node.name),
            serde_json::to_vec(&Node {
                resource_version: 0,
                ..node.clone()
            })
            .map_err(Error::internal)?,
        ));
        s.nodes.push(node.name.clone());
        self.nodes.insert(node.name.clone(), node);
        Ok(s)
    }
}

/// The subnet record named `name` among `changes`, as an API subnet.
fn subnet_in(changes: &[Change], name: &str) -> Option<Subnet> {
    changes.iter().find_map(|c| match c {
        Change::Put {
            record: Record::Subnet(r),
        } if r.name == name => Some(convert::subnet_from_record(r, 0)),
        _ => None,
    })
}

/// Creates both IPAM subnets of a dual-stack subnet, checking each part's family.
fn create_dual(
    ipam: &mut Ipam,
    v4: &clos_ipam::SubnetSpec,
    v6: &clos_ipam::SubnetSpec,
) -> Result<Vec<Change>> {
    let (cidr4, mut changes) = ipam.create_subnet(v4)?;
    if !cidr4.addr().is_ipv4() {
        return Err(Error::Invalid {
            field: "pool".into(),
            reason: format!(
                "pool {} is IPv6: in a dual-stack subnet, pool is the IPv4 part and ipv6.pool the IPv6 part",
                v4.pool
            ),
        });
    }
    let (cidr6, more) = ipam.create_subnet(v6)?;
    if !cidr6.addr().is_ipv6() {
        return Err(Error::Invalid {
            field: "ipv6.pool".into(),
            reason: format!("pool {} is IPv4: ipv6.pool names an IPv6 pool", v6.pool),
        });
    }
    changes.extend(more);
    Ok(changes)
}

/// Puts back in memory what a successful `allocate` (whose `prior` allocation of the owner
/// in `subnet` was as given) changed. False if that could not be done exactly.
fn undo_allocation(
    ipam: &mut Ipam,
    subnet: &str,
    owner: &str,
    node: &str,
    prior: Option<AllocationInfo>,
    done: &Allocated,
) -> bool {
    match prior {
        // A held fixed address was handed back: hold it again.
        Some(p) if p.held => ipam.release_ip(done.ip).is_ok(),
        // The owner already had it; a retry only upgrades it to fixed.
        Some(p) => p.fixed || ipam.forget_fixed(subnet, owner).is_ok(),
        None => {
            let claimed: BTreeSet<String> = done
                .changes
                .iter()
                .filter_map(|c| match c {
                    Change::Put {
                        record: record @ Record::Block(_),
                    } => Some(keys::record(&record.key())),
                    _ => None,
                })
                .collect();
            let forgot = ipam.forget_fixed(subnet, owner).is_ok();
            let released = ipam.release_ip(done.ip).is_ok();
            if claimed.is_empty() {
                return forgot && released;
            }
            // The allocation claimed a block: free it (exact only if it was the node's one
            // empty block).
            let freed: Option<BTreeSet<String>> = ipam.release_empty_blocks(node).ok().map(|c| {
                c.into_iter()
                    .filter_map(|c| match c {
                        Change::Delete { key } => Some(keys::record(&key)),
                        Change::Put { .. } => None,
                    })
                    .collect()
            });
            forgot && released && freed == Some(claimed)
        }
    }
}

/// Store writes for the allocator's changes.
fn staged_changes(done: Done, changes: Vec<Change>) -> Staged {
    let mut s = Staged::new(done);
    for c in changes {
        match c {
            Change::Put { record } => {
                if let Record::Block(b) = &record
                    && let Some(n) = &b.node
                {
                    s.nodes.push(n.clone());
                }
                if let Record::Address(a) = &record
                    && let Some(n) = &a.node
                {
                    s.nodes.push(n.clone());
                }
                let key = keys::record(&record.key());
                s.ops.push(StoreOp::put(
                    key,
                    serde_json::to_vec(&record).unwrap_or_default(),
                ));
            }
            Change::Delete { key } => s.ops.push(StoreOp::delete(keys::record(&key))),
        }
    }
    s
}

/// Errors for every request of a failed batch (the error type is not `Clone`).
fn clone_err(e: &Error) -> Error {
    match e {
        Error::Store(clos_store::Error::ShuttingDown) => {
            Error::Store(clos_store::Error::ShuttingDown)
        }
        Error::Busy => Error::Busy,
        other => Error::Internal(other.to_string()),
    }
}
