//! What the FIB programmer believes is installed, and the pure half of every update: planning
//! kernel operations from changes, and settling the plan with the kernel's answers.
//!
//! Invariants (between calls):
//! - every route in `routes` and every object in `objects` exists in the kernel with our tag,
//!   as far as we know (a kernel-side change, such as a link going down and the kernel flushing
//!   its nexthops, is only noticed by the next dump);
//! - `refs` of an object counts the routes that use it directly plus the groups that contain
//!   it; objects that reach zero are deleted in the same update, after the route changes;
//! - `singles` and `groups` index the objects we would create ourselves, so equal nexthop sets
//!   share one object (a group changed in place may duplicate another object for its new set:
//!   an id is cheaper than rewriting its routes); adopted objects of another shape are tracked
//!   (for refcounts and garbage collection) but never shared.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use super::{Family, Nexthop, Report, Route, RouteKey};
use crate::{Error, KernelError};

/// Identity of a single-nexthop object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NhKey {
    pub family: Family,
    pub gateway: Option<IpAddr>,
    pub ifindex: u32,
}

impl NhKey {
    /// The object a route of `family` uses for `nh`. A gateway decides the object's family by
    /// itself (an IPv4 route may use an IPv6 gateway, RFC 8950); a device-only nexthop takes
    /// the route's.
    pub fn for_route(family: Family, nh: &Nexthop) -> NhKey {
        NhKey {
            family: nh.gateway.map_or(family, Family::of),
            gateway: nh.gateway,
            ifindex: nh.ifindex,
        }
    }

    pub fn nexthop(&self) -> Nexthop {
        Nexthop {
            gateway: self.gateway,
            ifindex: self.ifindex,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ObjKind {
    Single(NhKey),
    /// Member ids, sorted.
    Group(Box<[u32]>),
    /// Ours, but of a shape we never create (blackhole, weighted, resilient, encap...): kept
    /// until unused, never shared.
    Other,
}

#[derive(Debug, Clone)]
pub(crate) struct Obj {
    pub kind: ObjKind,
    pub refs: u32,
}

/// How an installed route forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Through a nexthop object (`RTA_NH_ID`).
    Object(u32),
    /// Through nexthops inside the route (`RTA_GATEWAY`/`RTA_VIA`/`RTA_OIF`, `RTA_MULTIPATH`),
    /// sorted. Empty for a route of ours we cannot represent (another type, an encap).
    Legacy(Arc<[Nexthop]>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Installed {
    pub target: Target,
}

/// A normalized change.
#[derive(Debug, Clone)]
pub(crate) enum Planned {
    Upsert(Route),
    Remove(RouteKey),
    /// A second route of ours for the key, at another metric.
    RemoveExtra(RouteKey, u32),
}

/// One kernel operation.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    NewNexthop {
        id: u32,
        key: NhKey,
    },
    NewGroup {
        id: u32,
        members: Box<[u32]>,
    },
    /// Creates the route (exclusively, never over a foreign one) when `old` is `None`,
    /// replaces ours otherwise.
    SetRoute {
        key: RouteKey,
        target: Target,
        old: Option<Installed>,
    },
    DelRoute {
        key: RouteKey,
        /// The metric, for a route of ours that is not the key's main one.
        priority: Option<u32>,
        old: Option<Installed>,
    },
    DelNexthop {
        id: u32,
    },
    /// Changes the members of group `id` in place (`NLM_F_REPLACE`): every route using it
    /// moves at once, with no route rewritten. `keys` are those routes.
    ReplaceGroup {
        id: u32,
        members: Box<[u32]>,
        old_members: Box<[u32]>,
        keys: Vec<RouteKey>,
    },
}

// What a refused operation tried to do, as in "the kernel refused to {op}".
pub(crate) const OP_ADD: &str = "add the route";
pub(crate) const OP_REPLACE: &str = "replace the route";
pub(crate) const OP_DELETE: &str = "delete the route";
pub(crate) const OP_ADD_NEXTHOP: &str = "add its nexthop object";
pub(crate) const OP_ADD_GROUP: &str = "add its nexthop group";

/// Why a route could not be changed: the kernel's answer to the operation at fault (the
/// route's own, or a nexthop object it needed), with the nexthops involved.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub key: RouteKey,
    pub op: &'static str,
    pub error: KernelError,
    pub nexthops: Vec<Nexthop>,
}

/// The outcome of [`State::settle`].
#[derive(Debug, Default)]
pub(crate) struct Settled {
    pub failures: Vec<Failure>,
    /// Routes whose group the kernel would not change in place; retry them one by one.
    pub refused_regroups: Vec<RouteKey>,
    /// The errno of such a refusal.
    pub regroup_errno: Option<i32>,
}

/// Our nexthop objects and the id range we allocate from.
#[derive(Debug, Clone)]
pub(crate) struct Objects {
    pub by_id: HashMap<u32, Obj>,
    singles: HashMap<NhKey, u32>,
    groups: HashMap<Box<[u32]>, u32>,
    /// Ids in our range that belong to someone else.
    reserved: HashSet<u32>,
    first: u32,
    last: u32,
    cursor: u32,
}

impl Objects {
    pub fn new(first: u32, last: u32) -> Self {
        Objects {
            by_id: HashMap::new(),
            singles: HashMap::new(),
            groups: HashMap::new(),
            reserved: HashSet::new(),
            first,
            last,
            cursor: first,
        }
    }

    pub fn reserve(&mut self, id: u32) {
        self.reserved.insert(id);
    }

    /// Records an object found in the kernel. Call [`Objects::recount`] after adopting.
    pub fn adopt(&mut self, id: u32, kind: ObjKind) {
        match &kind {
            ObjKind::Single(key) => {
                self.singles.entry(*key).or_insert(id);
            }
            ObjKind::Group(members) => {
                self.groups.entry(members.clone()).or_insert(id);
            }
            ObjKind::Other => {}
        }
        self.by_id.insert(id, Obj { kind, refs: 0 });
    }

    fn alloc(&mut self) -> Result<u32, Error> {
        let span = u64::from(self.last - self.first) + 1;
        for _ in 0..span {
            let id = self.cursor;
            self.cursor = if id == self.last { self.first } else { id + 1 };
            if !self.by_id.contains_key(&id) && !self.reserved.contains(&id) {
                return Ok(id);
            }
        }
        Err(Error::NexthopIdsExhausted {
            first: self.first,
            last: self.last,
        })
    }

    fn single(&mut self, key: NhKey, ops: &mut Vec<Op>) -> Result<u32, Error> {
        if let Some(&id) = self.singles.get(&key) {
            return Ok(id);
        }
        let id = self.alloc()?;
        self.adopt(id, ObjKind::Single(key));
        ops.push(Op::NewNexthop { id, key });
        Ok(id)
    }

    /// The object for `nexthops` (sorted, deduplicated) of a route of `family`, creating it
    /// (and its members) if needed, with one more reference.
    pub fn acquire(
        &mut self,
        family: Family,
        nexthops: &[Nexthop],
        ops: &mut Vec<Op>,
    ) -> Result<u32, Error> {
        let id = if let [nh] = nexthops {
            self.single(NhKey::for_route(family, nh), ops)?
        } else {
            let mut members = nexthops
                .iter()
                .map(|nh| self.single(NhKey::for_route(family, nh), ops))
                .collect::<Result<Vec<_>, _>>()?;
            members.sort_unstable();
            let members = members.into_boxed_slice();
            match self.groups.get(&members) {
                Some(&id) => id,
                None => {
                    let id = self.alloc()?;
                    for m in members.iter() {
                        self.bump(*m);
                    }
                    self.adopt(id, ObjKind::Group(members.clone()));
                    ops.push(Op::NewGroup { id, members });
                    id
                }
            }
        };
        self.bump(id);
        Ok(id)
    }

    fn bump(&mut self, id: u32) {
        if let Some(obj) = self.by_id.get_mut(&id) {
            obj.refs += 1;
        }
    }

    pub fn release(&mut self, id: u32) {
        if let Some(obj) = self.by_id.get_mut(&id) {
            obj.refs = obj.refs.saturating_sub(1);
        }
    }

    fn key_of(&self, id: u32) -> Option<NhKey> {
        match self.by_id.get(&id)?.kind {
            ObjKind::Single(key) => Some(key),
            _ => None,
        }
    }

    fn is_group(&self, id: u32) -> bool {
        matches!(
            self.by_id.get(&id),
            Some(Obj {
                kind: ObjKind::Group(_),
                ..
            })
        )
    }

    fn refs(&self, id: u32) -> u32 {
        self.by_id.get(&id).map_or(0, |o| o.refs)
    }

    /// Re-points group `id` at `members` (sorted), moving references and the index.
    fn set_members(&mut self, id: u32, members: Box<[u32]>) -> Box<[u32]> {
        let Some(Obj {
            kind: ObjKind::Group(old),
            ..
        }) = self.by_id.get(&id)
        else {
            return members;
        };
        let old = old.clone();
        if self.groups.get(&old) == Some(&id) {
            self.groups.remove(&old);
        }
        self.groups.entry(members.clone()).or_insert(id);
        for m in members.iter() {
            self.bump(*m);
        }
        for m in old.iter() {
            self.release(*m);
        }
        if let Some(obj) = self.by_id.get_mut(&id) {
            obj.kind = ObjKind::Group(members);
        }
        old
    }

    /// Whether object `id` forwards a route of `family` exactly over `nexthops` (sorted), in
    /// the shape we would create.
    pub fn matches(&self, id: u32, family: Family, nexthops: &[Nexthop]) -> bool {
        let Some(obj) = self.by_id.get(&id) else {
            return false;
        };
        match (&obj.kind, nexthops) {
            (ObjKind::Single(key), [nh]) => *key == NhKey::for_route(family, nh),
            (ObjKind::Group(members), _) if members.len() == nexthops.len() => {
                let mut have: Vec<_> = members.iter().map(|m| self.key_of(*m)).collect();
                let mut want: Vec<_> = nexthops
                    .iter()
                    .map(|nh| Some(NhKey::for_route(family, nh)))
                    .collect();
                have.sort_unstable();
                want.sort_unstable();
                have == want
            }
            _ => false,
        }
    }

    /// The nexthops object `id` stands for, for error messages.
    pub fn nexthops_of(&self, id: u32) -> Vec<Nexthop> {
        match self.by_id.get(&id).map(|o| &o.kind) {
            Some(ObjKind::Single(key)) => vec![key.nexthop()],
            Some(ObjKind::Group(members)) => members
                .iter()
                .filter_map(|m| self.key_of(*m))
                .map(|k| k.nexthop())
                .collect(),
            _ => Vec::new(),
        }
    }

    fn forget(&mut self, id: u32) {
        let Some(obj) = self.by_id.remove(&id) else {
            return;
        };
        match obj.kind {
            ObjKind::Single(key) => {
                if self.singles.get(&key) == Some(&id) {
                    self.singles.remove(&key);
                }
            }
            ObjKind::Group(members) => {
                if self.groups.get(&members) == Some(&id) {
                    self.groups.remove(&members);
                }
            }
            ObjKind::Other => {}
        }
    }

    /// Recomputes every refcount from the routes and groups.
    pub fn recount<'a>(&mut self, targets: impl Iterator<Item = &'a Target>) {
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for obj in self.by_id.values() {
            if let ObjKind::Group(members) = &obj.kind {
                for m in members.iter() {
                    *counts.entry(*m).or_default() += 1;
                }
            }
        }
        for target in targets {
            if let Target::Object(id) = target {
                *counts.entry(*id).or_default() += 1;
            }
        }
        for (id, obj) in &mut self.by_id {
            obj.refs = counts.get(id).copied().unwrap_or(0);
        }
    }

    /// Forgets every unreferenced object and returns the deletions to send: groups first (which
    /// may free their members), then single nexthops.
    pub fn collect_garbage(&mut self) -> Vec<Op> {
        let mut ops = Vec::new();
        let groups: Vec<u32> = self
            .by_id
            .iter()
            .filter(|(_, o)| o.refs == 0 && !matches!(o.kind, ObjKind::Single(_)))
            .map(|(id, _)| *id)
            .collect();
        for id in groups {
            if let Some(ObjKind::Group(members)) = self.by_id.get(&id).map(|o| o.kind.clone()) {
                for m in members.iter() {
                    self.release(*m);
                }
            }
            self.forget(id);
            ops.push(Op::DelNexthop { id });
        }
        let singles: Vec<u32> = self
            .by_id
            .iter()
            .filter(|(_, o)| o.refs == 0)
            .map(|(id, _)| *id)
            .collect();
        for id in singles {
            self.forget(id);
            ops.push(Op::DelNexthop { id });
        }
        ops
    }
}

/// Routes and objects as we believe the kernel has them.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub routes: HashMap<RouteKey, Installed>,
    pub objects: Objects,
}

impl State {
    pub fn new(objects: Objects) -> Self {
        State {
            routes: HashMap::new(),
            objects,
        }
    }

    fn is_current(&self, installed: &Installed, route: &Route, use_objects: bool) -> bool {
        match (&installed.target, use_objects) {
            (Target::Object(id), true) => {
                self.objects.matches(*id, route.family(), &route.nexthops)
            }
            (Target::Legacy(nhs), false) => **nhs == *route.nexthops,
            _ => false,
        }
    }

    /// Turns changes into kernel operations and updates the state as if they all succeed.
    /// Routes already installed as wanted count as unchanged and cost nothing.
    pub fn plan(
        &mut self,
        changes: &[Planned],
        use_objects: bool,
        regroup: bool,
        report: &mut Report,
    ) -> Vec<Op> {
        let mut ops = Vec::with_capacity(changes.len());
        let moved = if use_objects && regroup {
            self.plan_group_moves(changes, &mut ops)
        } else {
            HashSet::new()
        };
        for change in changes {
            match change {
                Planned::Upsert(route) => {
                    let key = route.key();
                    if let Some(installed) = self.routes.get(&key)
                        && self.is_current(installed, route, use_objects)
                    {
                        // Routes riding on a group changed in place are counted when the
                        // kernel accepts that change.
                        if !matches!(installed.target, Target::Object(id) if moved.contains(&id)) {
                            report.unchanged += 1;
                        }
                        continue;
                    }
                    let target = if use_objects {
                        match self
                            .objects
                            .acquire(route.family(), &route.nexthops, &mut ops)
                        {
                            Ok(id) => Target::Object(id),
                            Err(err) => {
                                report.errors.push(err);
                                continue;
                            }
                        }
                    } else {
                        Target::Legacy(route.nexthops.as_slice().into())
                    };
                    let old = self.routes.insert(
                        key,
                        Installed {
                            target: target.clone(),
                        },
                    );
                    if let Some(Installed {
                        target: Target::Object(id),
                    }) = &old
                    {
                        self.objects.release(*id);
                    }
                    ops.push(Op::SetRoute { key, target, old });
                }
                Planned::Remove(key) => {
                    let key = *key;
                    if let Some(old) = self.routes.remove(&key) {
                        if let Target::Object(id) = &old.target {
                            self.objects.release(*id);
                        }
                        ops.push(Op::DelRoute {
                            key,
                            priority: None,
                            old: Some(old),
                        });
                    }
                }
                Planned::RemoveExtra(key, priority) => ops.push(Op::DelRoute {
                    key: *key,
                    priority: Some(*priority),
                    old: None,
                }),
            }
        }
        ops
    }

    /// Finds groups whose routes all move to one new nexthop set in this batch (an uplink lost
    /// or back), and changes those groups in place instead of rewriting every route: one
    /// request instead of one per route. The group may then duplicate another object for the
    /// same set (a single nexthop, most often); that costs an id, never a route write.
    /// Returns the groups changed.
    fn plan_group_moves(&mut self, changes: &[Planned], ops: &mut Vec<Op>) -> HashSet<u32> {
        // Per group: the new nexthop keys all its moving routes agree on (None on
        // disagreement), and those routes.
        let mut moves: HashMap<u32, (Option<Vec<NhKey>>, HashSet<RouteKey>)> = HashMap::new();
        for change in changes {
            let key = match change {
                Planned::Upsert(route) => route.key(),
                Planned::Remove(key) | Planned::RemoveExtra(key, _) => *key,
            };
            let Some(Installed {
                target: Target::Object(id),
            }) = self.routes.get(&key)
            else {
                continue;
            };
            if !self.objects.is_group(*id) {
                continue;
            }
            let wanted = match change {
                Planned::Upsert(route)
                    if !self.objects.matches(*id, route.family(), &route.nexthops) =>
                {
                    let mut keys: Vec<NhKey> = route
                        .nexthops
                        .iter()
                        .map(|nh| NhKey::for_route(route.family(), nh))
                        .collect();
                    keys.sort_unstable();
                    Some(keys)
                }
                // Staying, or leaving: the group cannot change under it.
                _ => None,
            };
            let entry = moves
                .entry(*id)
                .or_insert_with(|| (wanted.clone(), HashSet::new()));
            if entry.0 != wanted {
                entry.0 = None;
            }
            entry.1.insert(key);
        }
        let mut moved = HashSet::new();
        let mut candidates: Vec<_> = moves.into_iter().collect();
        candidates.sort_unstable_by_key(|(id, _)| *id);
        for (id, (wanted, keys)) in candidates {
            let Some(wanted) = wanted else { continue };
            if keys.len() != self.objects.refs(id) as usize {
                continue;
            }
            let mut members = Vec::with_capacity(wanted.len());
            for key in &wanted {
                match self.objects.single(*key, ops) {
                    Ok(m) => members.push(m),
                    Err(_) => break,
                }
            }
            if members.len() != wanted.len() {
                continue;
            }
            members.sort_unstable();
            let members: Box<[u32]> = members.into();
            let old_members = self.objects.set_members(id, members.clone());
            let mut keys: Vec<RouteKey> = keys.into_iter().collect();
            keys.sort_unstable();
            ops.push(Op::ReplaceGroup {
                id,
                members,
                old_members,
                keys,
            });
            moved.insert(id);
        }
        moved
    }

    /// Applies the kernel's answers (`results[i]` for `ops[i]`): counts successes, undoes the
    /// state changes of refused operations, and explains each refused route change.
    pub fn settle(
        &mut self,
        ops: &[Op],
        results: &[Option<KernelError>],
        report: &mut Report,
    ) -> Settled {
        let mut refused_regroups = Vec::new();
        let mut regroup_errno = None;
        let mut failed_objects: HashMap<u32, (KernelError, &'static str, Vec<Nexthop>)> =
            HashMap::new();
        let mut failures = Vec::new();
        let mut undo = Vec::new();
        for (op, result) in ops.iter().zip(results) {
            match (op, result) {
                (Op::NewNexthop { .. } | Op::NewGroup { .. }, None) => report.nexthops_added += 1,
                (Op::NewNexthop { id, key }, Some(err)) => {
                    failed_objects.insert(*id, (err.clone(), OP_ADD_NEXTHOP, vec![key.nexthop()]));
                    undo.push(op);
                }
                (Op::NewGroup { id, members }, Some(err)) => {
                    // A member's refusal is the real cause.
                    let cause = members
                        .iter()
                        .find_map(|m| failed_objects.get(m).cloned())
                        .unwrap_or_else(|| {
                            (err.clone(), OP_ADD_GROUP, self.objects.nexthops_of(*id))
                        });
                    failed_objects.insert(*id, cause);
                    undo.push(op);
                }
                (Op::SetRoute { old, .. }, None) => {
                    if old.is_some() {
                        report.replaced += 1;
                    } else {
                        report.added += 1;
                    }
                }
                (Op::SetRoute { key, target, old }, Some(err)) => {
                    let (error, op_name, nexthops) = match target {
                        Target::Object(id) if failed_objects.contains_key(id) => {
                            failed_objects[id].clone()
                        }
                        Target::Object(id) => (
                            err.clone(),
                            if old.is_some() { OP_REPLACE } else { OP_ADD },
                            self.objects.nexthops_of(*id),
                        ),
                        Target::Legacy(nhs) => (
                            err.clone(),
                            if old.is_some() { OP_REPLACE } else { OP_ADD },
                            nhs.to_vec(),
                        ),
                    };
                    failures.push(Failure {
                        key: *key,
                        op: op_name,
                        error,
                        nexthops,
                    });
                    undo.push(op);
                }
                (Op::DelRoute { .. }, None) => report.deleted += 1,
                // Already gone: that is what we wanted.
                (Op::DelRoute { .. }, Some(err)) if err.errno == crate::netlink::uapi::ESRCH => {
                    report.deleted += 1
                }
                (Op::DelRoute { key, old, .. }, Some(err)) => {
                    failures.push(Failure {
                        key: *key,
                        op: OP_DELETE,
                        error: err.clone(),
                        nexthops: Vec::new(),
                    });
                    if old.is_some() {
                        undo.push(op);
                    }
                }
                (Op::ReplaceGroup { keys, .. }, None) => report.replaced += keys.len(),
                (
                    Op::ReplaceGroup {
                        id, members, keys, ..
                    },
                    Some(err),
                ) => {
                    match members.iter().find_map(|m| failed_objects.get(m).cloned()) {
                        Some((error, op, nexthops)) => {
                            failures.extend(keys.iter().map(|key| Failure {
                                key: *key,
                                op,
                                error: error.clone(),
                                nexthops: nexthops.clone(),
                            }))
                        }
                        // The kernel will not change the group (one without nexthop replace,
                        // Linux < 5.7?): the caller retries these routes one by one.
                        None => {
                            tracing::debug!(group = id, %err, "in-place group change refused");
                            refused_regroups.extend(keys.iter().copied());
                            regroup_errno = Some(err.errno);
                        }
                    }
                    undo.push(op);
                }
                (Op::DelNexthop { .. }, _) => {}
            }
        }
        if undo.is_empty() {
            return Settled {
                failures,
                refused_regroups,
                regroup_errno,
            };
        }
        // Undo in reverse, so that a key changed twice in one batch ends where it started.
        for op in undo.into_iter().rev() {
            match op {
                Op::NewNexthop { id, .. } | Op::NewGroup { id, .. } => self.objects.forget(*id),
                Op::SetRoute { key, old, .. } => match old {
                    Some(old) => {
                        self.routes.insert(*key, old.clone());
                    }
                    None => {
                        self.routes.remove(key);
                    }
                },
                Op::DelRoute {
                    key,
                    old: Some(old),
                    ..
                } => {
                    self.routes.insert(*key, old.clone());
                }
                Op::ReplaceGroup {
                    id, old_members, ..
                } => {
                    self.objects.set_members(*id, old_members.clone());
                }
                _ => {}
            }
        }
        self.objects
            .recount(self.routes.values().map(|installed| &installed.target));
        Settled {
            failures,
            refused_regroups,
            regroup_errno,
        }
    }

    /// Forgets unreferenced objects and returns their deletions.
    pub fn collect_garbage(&mut self) -> Vec<Op> {
        self.objects.collect_garbage()
    }

    /// Counts the answers to garbage collection. A refused deletion leaves an object we no
    /// longer track; the next dump adopts it again and retries.
    pub fn settle_garbage(ops: &[Op], results: &[Option<KernelError>], report: &mut Report) {
        for (op, result) in ops.iter().zip(results) {
            let Op::DelNexthop { id } = op else { continue };
            match result {
                None => report.nexthops_deleted += 1,
                Some(err) if err.errno == crate::netlink::uapi::ENOENT => {
                    report.nexthops_deleted += 1
                }
                Some(err) => report.errors.push(Error::Nexthop {
                    id: *id,
                    op: OP_DELETE,
                    source: err.clone(),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::uapi::{EINVAL, ENETUNREACH, ESRCH};

    const FIRST: u32 = 100;

    fn nh(gw: &str, ifindex: u32) -> Nexthop {
        Nexthop::via(gw.parse().unwrap(), ifindex)
    }

    fn route(prefix: &str, nexthops: &[Nexthop]) -> Route {
        Route::new(prefix.parse().unwrap(), nexthops.to_vec())
            .normalized()
            .unwrap()
    }

    fn key(prefix: &str) -> RouteKey {
        RouteKey {
            table: super::super::MAIN_TABLE,
            prefix: prefix.parse().unwrap(),
        }
    }

    fn state() -> State {
        State::new(Objects::new(FIRST, FIRST + 99))
    }

    fn refs(state: &State, id: u32) -> u32 {
        state.objects.by_id[&id].refs
    }

    fn ok(ops: &[Op]) -> Vec<Option<KernelError>> {
        vec![None; ops.len()]
    }

    #[test]
    fn routes_with_one_nexthop_set_share_one_group() {
        let mut st = state();
        let mut report = Report::default();
        let ecmp = [nh("10.0.1.2", 2), nh("10.0.2.2", 3)];
        let changes = (0..3)
            .map(|i| Planned::Upsert(route(&format!("10.9.{i}.0/24"), &ecmp)))
            .collect::<Vec<_>>();
        let ops = st.plan(&changes, true, true, &mut report);
        // Two nexthops, one group, three routes.
        assert_eq!(ops.len(), 6);
        assert!(matches!(ops[0], Op::NewNexthop { id: 100, .. }));
        assert!(matches!(ops[1], Op::NewNexthop { id: 101, .. }));
        assert!(matches!(&ops[2], Op::NewGroup { id: 102, members } if **members == [100, 101]));
        assert!(ops[3..].iter().all(|op| matches!(
            op,
            Op::SetRoute {
                target: Target::Object(102),
                old: None,
                ..
            }
        )));
        assert!(st.settle(&ops, &ok(&ops), &mut report).failures.is_empty());
        assert_eq!((report.added, report.nexthops_added), (3, 3));
        assert_eq!((refs(&st, 100), refs(&st, 101), refs(&st, 102)), (1, 1, 3));

        // The same set again in another order is unchanged and costs nothing.
        let mut report = Report::default();
        let swapped = [ecmp[1], ecmp[0]];
        let ops = st.plan(
            &[Planned::Upsert(route("10.9.0.0/24", &swapped))],
            true,
            true,
            &mut report,
        );
        assert!(ops.is_empty());
        assert_eq!(report.unchanged, 1);
    }

    #[test]
    fn unused_objects_are_collected_groups_first() {
        let mut st = state();
        let mut report = Report::default();
        let ecmp = [nh("10.0.1.2", 2), nh("10.0.2.2", 3)];
        let ops = st.plan(
            &[Planned::Upsert(route("10.9.0.0/24", &ecmp))],
            true,
            true,
            &mut report,
        );
        st.settle(&ops, &ok(&ops), &mut report);

        // Dropping one uplink, route by route: the route moves to the single nexthop 100; the
        // group and nexthop 101 become garbage.
        let ops = st.plan(
            &[Planned::Upsert(route("10.9.0.0/24", &ecmp[..1]))],
            true,
            false,
            &mut report,
        );
        assert!(matches!(
            &ops[..],
            [Op::SetRoute {
                target: Target::Object(100),
                old: Some(_),
                ..
            }]
        ));
        st.settle(&ops, &ok(&ops), &mut report);
        let garbage = st.collect_garbage();
        assert!(matches!(
            &garbage[..],
            [Op::DelNexthop { id: 102 }, Op::DelNexthop { id: 101 }]
        ));
        assert_eq!(refs(&st, 100), 1);

        let ops = st.plan(
            &[Planned::Remove(key("10.9.0.0/24"))],
            true,
            true,
            &mut report,
        );
        st.settle(&ops, &ok(&ops), &mut report);
        assert!(matches!(
            &st.collect_garbage()[..],
            [Op::DelNexthop { id: 100 }]
        ));
        assert!(st.objects.by_id.is_empty());
        assert_eq!(report.deleted, 1);
    }

    #[test]
    fn a_refused_nexthop_is_blamed_for_its_routes_and_undone() {
        let mut st = state();
        let mut report = Report::default();
        let ecmp = [nh("10.0.1.2", 2), nh("10.9.9.9", 3)];
        let ops = st.plan(
            &[
                Planned::Upsert(route("10.9.0.0/24", &ecmp)),
                Planned::Upsert(route("10.9.1.0/24", &ecmp)),
            ],
            true,
            true,
            &mut report,
        );
        let unreachable = KernelError::new(ENETUNREACH, Some("Nexthop has invalid gateway".into()));
        let invalid = KernelError::new(EINVAL, None);
        let mut results = ok(&ops);
        results[1] = Some(unreachable.clone()); // nexthop 10.9.9.9
        results[2] = Some(invalid.clone()); // the group
        results[3] = Some(invalid.clone()); // both routes
        results[4] = Some(invalid);
        let failures = st.settle(&ops, &results, &mut report).failures;
        assert_eq!(failures.len(), 2);
        for f in &failures {
            assert_eq!(f.error, unreachable);
            assert_eq!(f.nexthops, vec![ecmp[1]]);
        }
        assert!(st.routes.is_empty());
        // Only nexthop 100 made it; nothing uses it, so it is garbage.
        assert_eq!(report.nexthops_added, 1);
        assert!(matches!(
            &st.collect_garbage()[..],
            [Op::DelNexthop { id: 100 }]
        ));
    }

    #[test]
    fn a_refused_replace_keeps_the_old_route() {
        let mut st = state();
        let mut report = Report::default();
        let a = [nh("10.0.1.2", 2)];
        let b = [nh("10.0.2.2", 3)];
        let ops = st.plan(
            &[Planned::Upsert(route("10.9.0.0/24", &a))],
            true,
            true,
            &mut report,
        );
        st.settle(&ops, &ok(&ops), &mut report);
        let ops = st.plan(
            &[Planned::Upsert(route("10.9.0.0/24", &b))],
            true,
            true,
            &mut report,
        );
        let mut results = ok(&ops);
        *results.last_mut().unwrap() = Some(KernelError::new(EINVAL, None));
        let failures = st.settle(&ops, &results, &mut report).failures;
        assert_eq!(failures[0].op, OP_REPLACE);
        let key = route("10.9.0.0/24", &a).key();
        assert_eq!(st.routes[&key].target, Target::Object(100));
        assert_eq!(refs(&st, 100), 1);
        // The new nexthop was created but is unused.
        assert!(matches!(
            &st.collect_garbage()[..],
            [Op::DelNexthop { id: 101 }]
        ));
    }

    #[test]
    fn deleting_a_vanished_route_counts_as_deleted() {
        let mut st = state();
        let mut report = Report::default();
        let ops = st.plan(
            &[Planned::Upsert(route("10.9.0.0/24", &[nh("10.0.1.2", 2)]))],
            false,
            true,
            &mut report,
        );
        st.settle(&ops, &ok(&ops), &mut report);
        let ops = st.plan(
            &[Planned::Remove(key("10.9.0.0/24"))],
            false,
            true,
            &mut report,
        );
        let failures = st
            .settle(&ops, &[Some(KernelError::new(ESRCH, None))], &mut report)
            .failures;
        assert!(failures.is_empty());
        assert_eq!(report.deleted, 1);
        assert!(st.routes.is_empty());
    }

    /// Three routes on one ECMP group, installed.
    fn three_on_a_group() -> (State, [Nexthop; 2], Vec<Route>) {
        let mut st = state();
        let ecmp = [nh("10.0.1.2", 2), nh("10.0.2.2", 3)];
        let routes: Vec<Route> = (0..3)
            .map(|i| route(&format!("10.9.{i}.0/24"), &ecmp))
            .collect();
        let changes: Vec<_> = routes.iter().cloned().map(Planned::Upsert).collect();
        let mut report = Report::default();
        let ops = st.plan(&changes, true, true, &mut report);
        st.settle(&ops, &ok(&ops), &mut report);
        (st, ecmp, routes)
    }

    fn moving(routes: &[Route], nexthops: &[Nexthop]) -> Vec<Planned> {
        routes
            .iter()
            .map(|r| {
                Planned::Upsert(
                    Route::new(r.prefix, nexthops.to_vec())
                        .normalized()
                        .unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn a_group_whose_routes_all_move_changes_in_place() {
        let (mut st, ecmp, routes) = three_on_a_group();
        let mut report = Report::default();
        // Uplink 2 lost: one request instead of three.
        let ops = st.plan(&moving(&routes, &ecmp[..1]), true, true, &mut report);
        assert!(
            matches!(&ops[..], [Op::ReplaceGroup { id: 102, members, old_members, keys }]
                if **members == [100] && **old_members == [100, 101] && keys.len() == 3),
            "{ops:?}"
        );
        st.settle(&ops, &ok(&ops), &mut report);
        assert_eq!((report.replaced, report.unchanged), (3, 0));
        assert!(matches!(
            &st.collect_garbage()[..],
            [Op::DelNexthop { id: 101 }]
        ));
        // The routes are current on the changed group.
        let mut report = Report::default();
        assert!(
            st.plan(&moving(&routes, &ecmp[..1]), true, true, &mut report)
                .is_empty()
        );
        assert_eq!(report.unchanged, 3);

        // Uplink 2 back: a new nexthop and the same group again.
        let ops = st.plan(&moving(&routes, &ecmp), true, true, &mut report);
        assert!(
            matches!(&ops[..], [Op::NewNexthop { id: 103, .. }, Op::ReplaceGroup { id: 102, members, .. }]
                if **members == [100, 103]),
            "{ops:?}"
        );
    }

    #[test]
    fn a_group_stays_when_only_some_routes_move() {
        let (mut st, ecmp, routes) = three_on_a_group();
        let mut report = Report::default();
        let ops = st.plan(&moving(&routes[..2], &ecmp[..1]), true, true, &mut report);
        assert_eq!(ops.len(), 2);
        assert!(ops.iter().all(|op| matches!(
            op,
            Op::SetRoute {
                target: Target::Object(100),
                ..
            }
        )));
        // Routes that disagree on where to go are rewritten too.
        let (mut st, ecmp, routes) = three_on_a_group();
        let mut changes = moving(&routes[..2], &ecmp[..1]);
        changes.extend(moving(&routes[2..], &ecmp[1..]));
        let ops = st.plan(&changes, true, true, &mut report);
        assert!(
            ops.iter().all(|op| matches!(op, Op::SetRoute { .. })),
            "{ops:?}"
        );
    }

    #[test]
    fn a_refused_in_place_change_is_undone_for_a_retry() {
        let (mut st, ecmp, routes) = three_on_a_group();
        let mut report = Report::default();
        let ops = st.plan(&moving(&routes, &ecmp[..1]), true, true, &mut report);
        let settled = st.settle(&ops, &[Some(KernelError::new(EINVAL, None))], &mut report);
        assert!(settled.failures.is_empty());
        assert_eq!(settled.refused_regroups.len(), 3);
        assert_eq!(settled.regroup_errno, Some(EINVAL));
        assert_eq!(report.replaced, 0);
        assert!(st.objects.matches(102, Family::V4, &ecmp));
        // Retried without regrouping, route by route.
        let ops = st.plan(&moving(&routes, &ecmp[..1]), true, false, &mut report);
        assert_eq!(ops.len(), 3);
        assert!(ops.iter().all(|op| matches!(
            op,
            Op::SetRoute {
                target: Target::Object(100),
                ..
            }
        )));
    }

    #[test]
    fn ids_skip_reserved_and_wrap() {
        let mut objects = Objects::new(5, 7);
        objects.reserve(5);
        let mut ops = Vec::new();
        let fam = Family::V4;
        let a = objects
            .acquire(fam, &[nh("10.0.0.1", 1)], &mut ops)
            .unwrap();
        let b = objects
            .acquire(fam, &[nh("10.0.0.2", 1)], &mut ops)
            .unwrap();
        assert_eq!((a, b), (6, 7));
        assert!(matches!(
            objects.acquire(fam, &[nh("10.0.0.3", 1)], &mut ops),
            Err(Error::NexthopIdsExhausted { first: 5, last: 7 })
        ));
        objects.release(a);
        objects.collect_garbage();
        assert_eq!(
            objects
                .acquire(fam, &[nh("10.0.0.3", 1)], &mut ops)
                .unwrap(),
            6
        );
    }

    #[test]
    fn device_only_nexthops_take_the_route_family_and_gateways_their_own() {
        let dev = Nexthop::dev(4);
        assert_eq!(NhKey::for_route(Family::V6, &dev).family, Family::V6);
        assert_eq!(NhKey::for_route(Family::V4, &dev).family, Family::V4);
        let ll = nh("fe80::1", 4);
        assert_eq!(NhKey::for_route(Family::V4, &ll).family, Family::V6);
    }
}
