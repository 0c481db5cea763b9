//! A Redis Cluster (or Valkey in cluster mode) as the online store (SPEC §3.2): each primary is
//! a `RedisStore` of its own, and this layer sends every command to the primary owning its key.
//! Data writes are split per primary and pipelined over each primary's own connections; the
//! control keys of a service share the `{service}` tag, so the lock, commit and history stay one
//! script on one node. A MOVED/ASK/TRYAGAIN/CLUSTERDOWN reply or a failed node sends the affected
//! commands through the topology again (`Topology::deliver`); nothing is committed before every
//! data write was acknowledged.

mod topology;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use self::topology::Topology;
use super::redis::{
    Locate, PipelinedWriter, RedisStore, RedisTarget, Reroute, is_redirect, is_transient,
};
use super::slots::{Node, SLOTS, slot};
use super::{
    CommandSink, Committed, Expiry, Flip, KeySpace, Manifest, Memory, OnlineStore, PackedBatch,
    RespFile, RunLock, WriteStats,
};
use crate::base::error::{Error, Result};
use crate::base::retry::RetryPolicy;
use crate::repo::OnlineStoreConfig;

/// MOVED redirects one operation follows before it fails (each is answered by a node that knows
/// the slot's owner, so a few suffice even while a resharding moves slot after slot).
const MAX_FOLLOWS: u32 = 64;

/// A Redis Cluster. Connects lazily: building one checks the configuration only.
pub struct ClusterStore {
    topology: Arc<Topology>,
    retry: RetryPolicy,
    display: String,
    /// One store per node met so far (its control connection, its writers).
    nodes: Mutex<HashMap<Node, Arc<RedisStore>>>,
}

impl ClusterStore {
    pub fn open(config: &OnlineStoreConfig) -> Result<ClusterStore> {
        let seeds = RedisTarget::seeds(config)?;
        let display = format!(
            "cluster {}",
            seeds
                .iter()
                .map(RedisTarget::display)
                .collect::<Vec<_>>()
                .join(",")
        );
        Ok(ClusterStore {
            topology: Arc::new(Topology::new(seeds, config.retry)),
            retry: config.retry,
            display,
            nodes: Mutex::new(HashMap::new()),
        })
    }

    fn node(&self, node: &Node) -> Arc<RedisStore> {
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        nodes
            .entry(node.clone())
            .or_insert_with(|| {
                let reroute: Arc<dyn Reroute> = self.topology.clone();
                Arc::new(RedisStore::node(
                    self.topology.target(node),
                    self.retry,
                    Some(reroute),
                ))
            })
            .clone()
    }

    /// Runs `op`, reading the slot map again and retrying when the cluster says the keys moved
    /// or a node failed (a failover); a retry of every operation here is safe.
    fn retrying<T>(&self, mut op: impl FnMut() -> Result<T>) -> Result<T> {
        let (mut attempt, mut follows) = (0, 0);
        loop {
            let e = match op() {
                Err(e) if topology_changed(&e) => e,
                done => return done,
            };
            let moved = match &e {
                Error::Redis(f) if f.source.code() == Some("MOVED") => f
                    .source
                    .redirect_node()
                    .zip(topology::redirected_to(&f.source)),
                _ => None,
            };
            match moved {
                // The slot's new owner is known: go there at once. A MOVED costs no retry, up to
                // a bound; after the first, the whole map is read again, since a resharding moves
                // many slots and a pipeline names only one of them.
                Some(((_, slot), to)) if follows < MAX_FOLLOWS => {
                    follows += 1;
                    if follows > 1 {
                        let _ = self.topology.refresh();
                    }
                    self.topology.moved(slot, to);
                }
                // ASK (the slot is migrating), a node down, CLUSTERDOWN: wait, then read the
                // map again.
                _ if self.retry.should_retry(attempt + 1) => {
                    attempt += 1;
                    std::thread::sleep(self.retry.delay(attempt));
                    let _ = self.topology.refresh();
                }
                _ => return Err(e),
            }
        }
    }

    /// The primary owning `key`'s slot (an unowned slot is an error `retrying` waits out).
    fn owner_of(&self, key: &str) -> Result<Arc<RedisStore>> {
        match self.topology.owner(key.as_bytes())? {
            Some(node) => Ok(self.node(&node)),
            None => Err(unowned(key)),
        }
    }

    /// Runs `op` on the primary holding the service's control keys (`{service}`).
    fn on_control<T>(&self, keys: &KeySpace, op: impl Fn(&RedisStore) -> Result<T>) -> Result<T> {
        let key = keys.current();
        self.retrying(|| op(&*self.owner_of(&key)?))
    }

    /// The primaries, each with its store.
    fn primaries(&self) -> Result<Vec<(Node, Arc<RedisStore>)>> {
        Ok(self
            .topology
            .primaries()?
            .into_iter()
            .map(|n| {
                let store = self.node(&n);
                (n, store)
            })
            .collect())
    }

    /// `keys` grouped by the primary owning each (indices into `keys`).
    fn by_owner<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<(Arc<RedisStore>, Vec<usize>)>> {
        let (owners, nodes): (Vec<Option<usize>>, Vec<Node>) = self.topology.with_map(|m| {
            let owners = keys.iter().map(|k| m.owner(slot(k.as_ref()))).collect();
            (owners, m.nodes.clone())
        })?;
        let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, owner) in owners.into_iter().enumerate() {
            match owner {
                Some(o) => groups.entry(o).or_default().push(i),
                None => return Err(unowned(&String::from_utf8_lossy(keys[i].as_ref()))),
            }
        }
        Ok(groups
            .into_iter()
            .map(|(o, idx)| (self.node(&nodes[o]), idx))
            .collect())
    }

    /// Runs `op` on each primary with its share of `keys` (in parallel when there are several)
    /// and puts the answers back in the order of `keys`; retried whole when the cluster
    /// changed meanwhile.
    fn spread<K: AsRef<[u8]> + Clone + Send + Sync, T: Send + Clone + Default>(
        &self,
        keys: &[K],
        op: impl Fn(&RedisStore, &[K], &[usize]) -> Result<Vec<T>> + Sync,
    ) -> Result<Vec<T>> {
        self.retrying(|| {
            let groups = self.by_owner(keys)?;
            let answers: Vec<Result<Vec<T>>> = if groups.len() == 1 {
                let (store, idx) = &groups[0];
                vec![op(store, keys, idx)]
            } else {
                std::thread::scope(|s| {
                    let handles: Vec<_> = groups
                        .iter()
                        .map(|(store, idx)| {
                            let op = &op;
                            let sub: Vec<K> = idx.iter().map(|&i| keys[i].clone()).collect();
                            s.spawn(move || op(store, &sub, idx))
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().expect("a node's reader panicked"))
                        .collect()
                })
            };
            let mut out = vec![T::default(); keys.len()];
            for ((_, idx), answer) in groups.iter().zip(answers) {
                for (&i, v) in idx.iter().zip(answer?) {
                    out[i] = v;
                }
            }
            Ok(out)
        })
    }

    /// Runs `op` on each primary with the entities whose keys it owns, the primaries in
    /// parallel; the entities reach each in slot order.
    fn per_primary(
        &self,
        prefix: &str,
        entities: &mut dyn Iterator<Item = &str>,
        op: impl Fn(&RedisStore, &mut dyn Iterator<Item = &str>) -> Result<()> + Sync,
    ) -> Result<()> {
        let mut key = String::new();
        let mut slotted: Vec<(u16, &str)> = entities
            .map(|e| {
                key.clear();
                key.push_str(prefix);
                key.push_str(e);
                (slot(key.as_bytes()), e)
            })
            .collect();
        slotted.sort_unstable_by_key(|&(s, _)| s);
        let (owner, nodes) = self.topology.with_map(|m| {
            let owner: Vec<Option<usize>> = (0..SLOTS as u16).map(|s| m.owner(s)).collect();
            (owner, m.nodes.clone())
        })?;
        let mut groups: HashMap<usize, Vec<&str>> = HashMap::new();
        for (s, e) in slotted {
            match owner[s as usize] {
                Some(o) => groups.entry(o).or_default().push(e),
                None => return Err(unowned(&format!("{prefix}{e}"))),
            }
        }
        let stores: Vec<(Arc<RedisStore>, Vec<&str>)> = groups
            .into_iter()
            .map(|(o, es)| (self.node(&nodes[o]), es))
            .collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = stores
                .iter()
                .map(|(store, es)| {
                    let op = &op;
                    s.spawn(move || op(store, &mut es.iter().copied()))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a node's writer panicked"))
                .collect::<Result<Vec<()>>>()
        })?;
        Ok(())
    }
}

/// A failure that reading the slot map again may cure: keys moved, a node down or failing
/// over, a slot without a primary.
fn topology_changed(e: &Error) -> bool {
    matches!(e, Error::Redis(f) if is_redirect(&f.source) || is_transient(&f.source)
        || f.source.kind() == redis::ErrorKind::ClusterConnectionNotFound)
}

fn unowned(key: &str) -> Error {
    let e = redis::RedisError::from((
        redis::ErrorKind::ClusterConnectionNotFound,
        "no primary serves the key's slot",
        format!("slot {}", slot(key.as_bytes())),
    ));
    Error::Redis(Box::new(crate::base::error::RedisFailure {
        operation: "route",
        server: "cluster".into(),
        code: None,
        key: Some(key.to_owned()),
        message: format!(
            "Redis Cluster: no primary serves slot {} of key {key} (is the cluster down or missing slots?)",
            slot(key.as_bytes())
        ),
        source: e,
    }))
}

impl OnlineStore for ClusterStore {
    fn describe(&self) -> &str {
        &self.display
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    fn writer(&self) -> Result<Box<dyn CommandSink + Send>> {
        Ok(Box::new(ClusterWriter::start(self, "write")?))
    }

    fn write_now(&self, batch: PackedBatch) -> Result<()> {
        let mut writer = Box::new(ClusterWriter::start(self, "warm")?);
        writer.send(batch)?;
        writer.finish().map(drop)
    }

    fn current(&self, keys: &KeySpace) -> Result<Option<Committed>> {
        self.on_control(keys, |n| n.current(keys))
    }

    fn manifest(&self, keys: &KeySpace, snapshot: &str) -> Result<Option<Manifest>> {
        self.on_control(keys, |n| n.manifest(keys, snapshot))
    }

    fn is_committed(&self, keys: &KeySpace, snapshot: &str) -> Result<bool> {
        self.on_control(keys, |n| n.is_committed(keys, snapshot))
    }

    fn lock(
        &self,
        keys: &KeySpace,
        lease: Duration,
        wait: Duration,
        label: &str,
    ) -> Result<RunLock> {
        // The lease follows the key: after a failover or a resharding of the `{service}` slot,
        // renewals go to the primary that owns it then (the slot map read again).
        let key = keys.lock();
        let locate: Locate = {
            let (topology, key) = (self.topology.clone(), key.clone());
            Arc::new(move |refresh| {
                if refresh {
                    topology.refresh().ok()?;
                }
                let node = topology.owner(key.as_bytes()).ok()??;
                Some(topology.target(&node))
            })
        };
        self.retrying(|| {
            self.owner_of(&key)?
                .lock_with(keys, lease, wait, label, locate.clone())
        })
    }

    fn commit(&self, keys: &KeySpace, lock: &RunLock, flip: &Flip<'_>) -> Result<i64> {
        self.on_control(keys, |n| n.commit(keys, lock, flip))
    }

    fn delete(&self, keys: &[String]) -> Result<u64> {
        let counts = self.spread(keys, |n, sub, _| {
            let deleted = n.delete(sub)?;
            // One count per group, carried by its first key.
            Ok(std::iter::once(deleted)
                .chain(std::iter::repeat(0))
                .take(sub.len())
                .collect())
        })?;
        Ok(counts.into_iter().sum())
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.spread(keys, |n, sub, _| n.get_many(sub))
    }

    fn hash_with_ttl(&self, key: &[u8]) -> Result<(crate::online::HashFields, i64)> {
        self.retrying(|| {
            let node = match self.topology.owner(key)? {
                Some(node) => self.node(&node),
                None => return Err(unowned(&String::from_utf8_lossy(key))),
            };
            node.hash_with_ttl(key)
        })
    }

    fn remaining_ttl_ms(&self, key: &str) -> Result<Option<i64>> {
        self.retrying(|| self.owner_of(key)?.remaining_ttl_ms(key))
    }

    fn extend_expiry(
        &self,
        keys: &[String],
        expiries: Option<&[i64]>,
        dry_run: bool,
    ) -> Result<Vec<Expiry>> {
        self.spread(keys, |n, sub, idx| {
            let at: Option<Vec<i64>> = expiries.map(|e| idx.iter().map(|&i| e[i]).collect());
            n.extend_expiry(sub, at.as_deref(), dry_run)
        })
    }

    fn extend_expiry_of_bytes(
        &self,
        keys: &[Vec<u8>],
        expiries: &[i64],
        dry_run: bool,
    ) -> Result<Vec<Expiry>> {
        self.spread(keys, |n, sub, idx| {
            let at: Vec<i64> = idx.iter().map(|&i| expiries[i]).collect();
            n.extend_expiry_of_bytes(sub, &at, dry_run)
        })
    }

    fn sample(&self, prefix: &str, n: usize) -> Result<Vec<(String, Vec<u8>)>> {
        // An equal share from every primary, so that each one's keys are checked.
        self.retrying(|| {
            let primaries = self.primaries()?;
            let share = n.div_ceil(primaries.len().max(1));
            let mut out = Vec::new();
            for (_, store) in primaries {
                out.extend(store.sample(prefix, share)?);
            }
            out.truncate(n);
            Ok(out)
        })
    }

    fn register_run(&self, keys: &KeySpace, snapshot: &str, started_ms: i64) -> Result<()> {
        self.on_control(keys, |n| n.register_run(keys, snapshot, started_ms))
    }

    fn append_key_list(
        &self,
        keys: &KeySpace,
        snapshot: &str,
        frame: &[u8],
        started_ms: i64,
        expires_ms: i64,
    ) -> Result<()> {
        self.on_control(keys, |n| {
            n.append_key_list(keys, snapshot, frame, started_ms, expires_ms)
        })
    }

    fn key_list(&self, keys: &KeySpace, snapshot: &str) -> Result<Option<Vec<u8>>> {
        self.on_control(keys, |n| n.key_list(keys, snapshot))
    }

    fn history(&self, keys: &KeySpace) -> Result<Vec<(String, i64)>> {
        self.on_control(keys, |n| n.history(keys))
    }

    fn runs(&self, keys: &KeySpace) -> Result<Vec<(String, i64)>> {
        self.on_control(keys, |n| n.runs(keys))
    }

    fn expire_by(
        &self,
        prefix: &str,
        entities: &mut dyn Iterator<Item = &str>,
        at_ms: i64,
    ) -> Result<()> {
        self.per_primary(prefix, entities, |n, es| n.expire_by(prefix, es, at_ms))
    }

    fn delete_by(&self, prefix: &str, entities: &mut dyn Iterator<Item = &str>) -> Result<()> {
        self.per_primary(prefix, entities, |n, es| n.delete_by(prefix, es))
    }

    fn put_manifest(&self, keys: &KeySpace, manifest: &Manifest) -> Result<()> {
        self.on_control(keys, |n| n.put_manifest(keys, manifest))
    }

    fn put_feast_manifest(
        &self,
        keys: &KeySpace,
        json: &str,
        lock: Option<&RunLock>,
    ) -> Result<()> {
        self.on_control(keys, |n| n.put_feast_manifest(keys, json, lock))
    }

    fn forget_run(&self, keys: &KeySpace, snapshot: &str, at_ms: i64) -> Result<()> {
        self.on_control(keys, |n| n.forget_run(keys, snapshot, at_ms))
    }

    fn flip(
        &self,
        keys: &KeySpace,
        lock: &RunLock,
        snapshot: &str,
        expected_current: &str,
    ) -> Result<i64> {
        self.on_control(keys, |n| n.flip(keys, lock, snapshot, expected_current))
    }

    fn register_sharded(&self, keys: &KeySpace, snapshot: &str, as_of_ms: i64) -> Result<()> {
        self.on_control(keys, |n| n.register_sharded(keys, snapshot, as_of_ms))
    }

    fn sharded(&self, keys: &KeySpace) -> Result<Vec<(String, i64)>> {
        self.on_control(keys, |n| n.sharded(keys))
    }

    fn forget_sharded(&self, keys: &KeySpace, snapshot: &str) -> Result<()> {
        self.on_control(keys, |n| n.forget_sharded(keys, snapshot))
    }

    fn put_shard_manifest(
        &self,
        keys: &KeySpace,
        snapshot: &str,
        index: u32,
        json: &str,
        pxat_ms: i64,
    ) -> Result<()> {
        self.on_control(keys, |n| {
            n.put_shard_manifest(keys, snapshot, index, json, pxat_ms)
        })
    }

    fn shard_manifests(
        &self,
        keys: &KeySpace,
        snapshot: &str,
        count: u32,
    ) -> Result<Vec<Option<String>>> {
        self.on_control(keys, |n| n.shard_manifests(keys, snapshot, count))
    }

    fn now_ms(&self) -> Result<i64> {
        self.retrying(|| match self.primaries()?.first() {
            Some((_, store)) => store.now_ms(),
            None => Err(unowned("")),
        })
    }

    fn lock_holder(&self, keys: &KeySpace) -> Result<Option<String>> {
        self.on_control(keys, |n| n.lock_holder(keys))
    }

    /// Data spreads evenly over the primaries, so a run fits only if its share fits the
    /// primary with the least room: the limit reported is what makes `used + planned <= max`
    /// say exactly that (`used` + primaries × the smallest headroom of those with a limit).
    /// 0 when no primary has a limit.
    fn memory(&self) -> Result<Memory> {
        self.retrying(|| {
            let each = self
                .primaries()?
                .iter()
                .map(|(_, store)| store.memory())
                .collect::<Result<Vec<Memory>>>()?;
            let used = each.iter().map(|m| m.used).sum();
            let max = each
                .iter()
                .filter(|m| m.max > 0)
                .map(|m| m.max.saturating_sub(m.used))
                .min()
                .map_or(0, |headroom| used + headroom * each.len() as u64);
            Ok(Memory { used, max })
        })
    }

    /// One stream per primary, `FILE` with the primary's `host-port` before its extension
    /// (`out.resp` → `out.127.0.0.1-7000.resp`), each command in the stream of its key's
    /// primary, as the slot map stands now; the commit in `out.commit.resp`, for the primary
    /// owning the service's control keys once the others have landed.
    fn resp_file(&self, path: &std::path::Path) -> Result<RespFile> {
        let (owner, primaries) = self.topology.with_map(|m| {
            let primaries = m.primaries();
            let owner: Vec<usize> = (0..SLOTS as u16)
                .map(|s| {
                    m.owner(s)
                        .and_then(|o| primaries.iter().position(|p| *p == m.nodes[o]))
                        .unwrap_or(0)
                })
                .collect();
            (owner, primaries)
        })?;
        let paths = primaries
            .iter()
            .map(|p| stream_path(path, &format!("{}-{}", p.host, p.port)))
            .collect();
        RespFile::split(
            paths,
            Box::new(move |key: &[u8]| owner[slot(key) as usize]),
            stream_path(path, "commit"),
        )
    }
}

/// `out.resp` + `127.0.0.1-7000` → `out.127.0.0.1-7000.resp` (no extension: appended).
fn stream_path(path: &std::path::Path, node: &str) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let named = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}.{node}.{ext}"),
        _ => format!("{name}.{node}"),
    };
    path.with_file_name(named)
}

/// The data writes of a run on a cluster: each batch split by the primary owning each key,
/// each primary with its own pipelined writers (as many connections as `connections`), every
/// reply checked; refused or stranded commands go through the topology again.
struct ClusterWriter {
    topology: Arc<Topology>,
    retry: RetryPolicy,
    operation: &'static str,
    writers: HashMap<Node, PipelinedWriter>,
    /// Each written primary's server process (`run_id`) when its writers started.
    run_ids: HashMap<Node, String>,
    staged: HashMap<Node, PackedBatch>,
    /// Commands per primary's batch: as many as the batches the run sends.
    batch_len: usize,
    /// How many nodes the topology had found unreachable, and had rerouted writes to, when
    /// the writes started.
    unreachable_before: usize,
    delivered_before: usize,
}

impl ClusterWriter {
    fn start(store: &ClusterStore, operation: &'static str) -> Result<ClusterWriter> {
        // Learn the map before the first batch: an unreachable cluster fails here, at once.
        store.topology.primaries()?;
        Ok(ClusterWriter {
            topology: store.topology.clone(),
            retry: store.retry,
            operation,
            writers: HashMap::new(),
            run_ids: HashMap::new(),
            staged: HashMap::new(),
            batch_len: 0,
            unreachable_before: store.topology.unreachable_nodes().len(),
            delivered_before: store.topology.delivered_nodes().len(),
        })
    }

    /// Hands a primary's batch to its writers (started on first use). A primary that cannot
    /// be reached leaves the batch to the topology, which waits out a failover.
    fn forward(&mut self, node: Node, batch: PackedBatch) -> Result<()> {
        if !self.writers.contains_key(&node) {
            let reroute: Arc<dyn Reroute> = self.topology.clone();
            let target = self.topology.target(&node);
            let identity = self.topology.identity(&node);
            match PipelinedWriter::start(&target, self.retry, self.operation, Some(reroute)) {
                Ok(w) => {
                    if let Ok((_, run_id)) = identity {
                        self.run_ids.insert(node.clone(), run_id);
                    }
                    self.writers.insert(node.clone(), w);
                }
                Err(_) => {
                    self.topology.unreachable(&node);
                    let all: Vec<usize> = (0..batch.len()).collect();
                    return self.topology.deliver(&batch, &all, self.operation);
                }
            }
        }
        self.writers
            .get_mut(&node)
            .expect("started above")
            .send(batch)
    }
}

impl CommandSink for ClusterWriter {
    fn send(&mut self, batch: PackedBatch) -> Result<()> {
        self.batch_len = self.batch_len.max(batch.len());
        let mut homeless = Vec::new();
        // Commands grouped by owner first, so that each owner's entry is looked up once per
        // batch, not once per key.
        let groups: Vec<(Node, Vec<usize>)> = self.topology.with_map(|map| {
            let mut by_owner: Vec<Vec<usize>> = vec![Vec::new(); map.nodes.len()];
            for i in 0..batch.len() {
                match map.owner(slot(batch.key_bytes(i))) {
                    Some(o) => by_owner[o].push(i),
                    None => homeless.push(i),
                }
            }
            by_owner
                .into_iter()
                .enumerate()
                .filter(|(_, cmds)| !cmds.is_empty())
                .map(|(o, cmds)| (map.nodes[o].clone(), cmds))
                .collect()
        })?;
        for (node, cmds) in groups {
            let staged = self.staged.entry(node).or_default();
            for i in cmds {
                staged.push_command(&batch, i);
            }
        }
        if !homeless.is_empty() {
            self.topology.deliver(&batch, &homeless, self.operation)?;
        }
        let full: Vec<Node> = self
            .staged
            .iter()
            .filter(|(_, b)| b.len() >= self.batch_len)
            .map(|(n, _)| n.clone())
            .collect();
        for node in full {
            let batch = self.staged.remove(&node).expect("listed above");
            self.forward(node, batch)?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<WriteStats> {
        let mut this = *self;
        for (node, batch) in std::mem::take(&mut this.staged) {
            if !batch.is_empty() {
                this.forward(node, batch)?;
            }
        }
        let mut stats = WriteStats::default();
        let mut failure = None;
        let written: Vec<Node> = this.writers.keys().cloned().collect();
        for (_, writer) in this.writers {
            match Box::new(writer).finish() {
                Ok(s) => stats.retries += s.retries,
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        // Replication is asynchronous: a primary that died, restarted or was failed over after
        // acknowledging writes may have lost some, and the node serving its slots now cannot
        // say which. So every node that acknowledged writes must still be the primary it was,
        // the same server process, and none may have stopped answering meanwhile.
        if let Some(node) = this
            .topology
            .unreachable_nodes()
            .get(this.unreachable_before)
        {
            return Err(lost_writes(&this.topology.target(node), this.operation));
        }
        let mut acknowledged = written;
        acknowledged.extend(
            this.topology
                .delivered_nodes()
                .into_iter()
                .skip(this.delivered_before),
        );
        acknowledged.sort_by_key(|n| (n.host.clone(), n.port));
        acknowledged.dedup();
        for node in acknowledged {
            let same = match this.topology.identity(&node) {
                Ok((primary, run_id)) => {
                    primary && this.run_ids.get(&node).is_none_or(|was| *was == run_id)
                }
                Err(_) => false,
            };
            if !same {
                return Err(lost_writes(&this.topology.target(&node), this.operation));
            }
        }
        Ok(stats)
    }
}

/// A primary went away during the writes: what it acknowledged may be lost.
fn lost_writes(node: &RedisTarget, operation: &'static str) -> Error {
    let source = redis::RedisError::from((
        redis::ErrorKind::Io,
        "a primary became unreachable during the writes",
    ));
    Error::Redis(Box::new(crate::base::error::RedisFailure {
        operation,
        server: node.display().to_owned(),
        code: None,
        key: None,
        message: format!(
            "Redis Cluster node {} became unreachable, restarted or stopped being a primary during the writes: \
             the writes it had acknowledged may not have reached the node serving its slots now, so the snapshot is \
             not committed; nothing was committed, rerun to complete",
            node.display()
        ),
        source,
    }))
}

#[cfg(test)]
mod tests {
    use super::stream_path;
    use std::path::Path;

    #[test]
    fn each_primary_has_its_stream_file() {
        let p = |s: &str| stream_path(Path::new(s), "127.0.0.1-7000");
        assert_eq!(
            p("/tmp/out.resp"),
            Path::new("/tmp/out.127.0.0.1-7000.resp")
        );
        assert_eq!(p("out"), Path::new("out.127.0.0.1-7000"));
        assert_eq!(p(".resp"), Path::new(".resp.127.0.0.1-7000"));
    }
}
