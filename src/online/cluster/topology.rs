//! The cluster's slot map, read from `CLUSTER SLOTS` once and kept up to date from MOVED
//! redirects, and the slow path of the writers: commands refused by the node they were sent to,
//! or stranded on a node that failed, delivered to the nodes that own them now.

use std::collections::HashMap;
use std::sync::RwLock;

use redis::{ErrorKind, RedisError, Value};

use crate::base::error::{Error, Result};
use crate::base::interrupt::interrupted;
use crate::base::retry::RetryPolicy;
use crate::online::PackedBatch;
use crate::online::redis::{RedisTarget, Reroute, check_reply, is_redirect, is_transient};
use crate::online::slots::{Node, SlotMap, slot};

/// The nodes of a cluster and which primary owns each slot.
pub(crate) struct Topology {
    /// The configured nodes; every node found later shares their password, TLS and timeouts.
    seeds: Vec<RedisTarget>,
    retry: RetryPolicy,
    map: RwLock<Option<SlotMap>>,
    /// Nodes found unreachable while commands were delivered, in order (a writer compares
    /// its length before and after a run).
    unreachable: std::sync::Mutex<Vec<Node>>,
    /// Nodes that acknowledged rerouted writes, in order (see `unreachable`).
    delivered: std::sync::Mutex<Vec<Node>>,
}

/// `ASKING`, sent before a command redirected by ASK during a slot's migration.
const ASKING: &[u8] = b"*1\r\n$6\r\nASKING\r\n";

impl Topology {
    pub(crate) fn new(seeds: Vec<RedisTarget>, retry: RetryPolicy) -> Topology {
        Topology {
            seeds,
            retry,
            map: RwLock::new(None),
            unreachable: std::sync::Mutex::new(Vec::new()),
            delivered: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The nodes that acknowledged rerouted writes so far, oldest first (repeats included).
    pub(crate) fn delivered_nodes(&self) -> Vec<Node> {
        self.delivered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether `node` serves as a primary now, and the id of its server process (`run_id`,
    /// new after a restart), from `INFO`.
    pub(crate) fn identity(&self, node: &Node) -> redis::RedisResult<(bool, String)> {
        let mut con = self.target(node).connect()?;
        let field = |info: &str, name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        let replication: String = redis::cmd("INFO").arg("replication").query(&mut con)?;
        let server: String = redis::cmd("INFO").arg("server").query(&mut con)?;
        Ok((
            field(&replication, "role") == "master",
            field(&server, "run_id"),
        ))
    }

    /// Records that `node` refused connections (it died, restarted or failed over).
    pub(crate) fn unreachable(&self, node: &Node) {
        self.unreachable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(node.clone());
    }

    /// The nodes found unreachable so far, oldest first.
    pub(crate) fn unreachable_nodes(&self) -> Vec<Node> {
        self.unreachable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs `f` on the slot map, reading it from the cluster first if it was never read.
    pub(crate) fn with_map<T>(&self, f: impl FnOnce(&SlotMap) -> T) -> Result<T> {
        {
            let map = self.map.read().unwrap_or_else(|p| p.into_inner());
            if let Some(map) = map.as_ref() {
                return Ok(f(map));
            }
        }
        self.refresh()?;
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        Ok(f(map.as_ref().expect("refreshed above")))
    }

    /// Where to connect to `node`.
    pub(crate) fn target(&self, node: &Node) -> RedisTarget {
        self.seeds[0].at(&node.host, node.port)
    }

    /// Reads the slot map again from the first node that answers (the known nodes first, then
    /// the seeds), preferring one that knows a primary for every slot.
    pub(crate) fn refresh(&self) -> Result<()> {
        let known: Vec<Node> = {
            let map = self.map.read().unwrap_or_else(|p| p.into_inner());
            map.as_ref().map(|m| m.nodes.clone()).unwrap_or_default()
        };
        let mut candidates: Vec<(RedisTarget, Node)> = Vec::new();
        for node in known {
            candidates.push((self.target(&node), node));
        }
        for seed in &self.seeds {
            if let Some(node) = seed.node()
                && !candidates.iter().any(|(_, n)| *n == node)
            {
                candidates.push((seed.clone(), node));
            }
        }
        let mut best: Option<SlotMap> = None;
        let mut failure = None;
        for (target, node) in candidates {
            let reply = target
                .connect()
                .and_then(|mut c| redis::cmd("CLUSTER").arg("SLOTS").query::<Value>(&mut c));
            match reply {
                Ok(reply) => match SlotMap::parse(&reply, &node) {
                    Ok(map) if map.nodes.is_empty() => {
                        failure = Some(Error::config(format!(
                            "online_store.type is redis_cluster, but {} serves no cluster slots",
                            target.display()
                        )));
                    }
                    Ok(map) => {
                        let whole = map.unowned() == 0;
                        if best.as_ref().is_none_or(|b| map.unowned() < b.unowned()) {
                            best = Some(map);
                        }
                        if whole {
                            break;
                        }
                    }
                    Err(why) => {
                        failure = Some(Error::config(format!(
                            "{} answered CLUSTER SLOTS unreadably: {why}",
                            target.display()
                        )));
                    }
                },
                Err(e) if e.code() == Some("ERR") && !is_transient(&e) => {
                    failure = Some(Error::config(format!(
                        "online_store.type is redis_cluster, but {} is not a cluster node ({e}); use \
                         type: redis for a single server",
                        target.display()
                    )));
                }
                Err(e) => failure = Some(target.failed("read the cluster's slots").error(e)),
            }
        }
        match best {
            Some(map) => {
                *self.map.write().unwrap_or_else(|p| p.into_inner()) = Some(map);
                Ok(())
            }
            None => Err(failure.unwrap_or_else(|| Error::config("no cluster node configured"))),
        }
    }

    /// The primary owning `key`'s slot now.
    pub(crate) fn owner(&self, key: &[u8]) -> Result<Option<Node>> {
        let slot = slot(key);
        self.with_map(|m| m.owner(slot).map(|i| m.nodes[i].clone()))
    }

    /// The primaries that own at least one slot.
    pub(crate) fn primaries(&self) -> Result<Vec<Node>> {
        self.with_map(SlotMap::primaries)
    }

    pub(crate) fn moved(&self, slot: u16, node: Node) {
        if let Some(map) = self.map.write().unwrap_or_else(|p| p.into_inner()).as_mut() {
            map.moved(slot, node);
        }
    }

    /// Sends commands `cmds` of `batch` to `node` in one pipeline, `ASKING` before those that
    /// an ASK redirected there; one outcome per command.
    fn send_to(
        &self,
        node: &Node,
        batch: &PackedBatch,
        cmds: &[(usize, bool)],
    ) -> redis::RedisResult<Vec<redis::RedisResult<()>>> {
        let mut con = self.target(node).connect()?;
        let mut bytes = Vec::new();
        for &(i, ask) in cmds {
            if ask {
                bytes.extend_from_slice(ASKING);
            }
            bytes.extend_from_slice(batch.command_bytes(i));
        }
        con.send_packed_command(&bytes)?;
        let mut out = Vec::with_capacity(cmds.len());
        for &(_, ask) in cmds {
            // A refused ASKING (an ACL without +asking) is the command's outcome.
            let asking = if ask {
                check_reply(con.recv_response()?)
            } else {
                Ok(())
            };
            let reply = check_reply(con.recv_response()?);
            out.push(asking.and(reply));
        }
        Ok(out)
    }
}

/// A command waiting for delivery: its index in the batch, and the node an ASK sent it to.
type Pending = (usize, Option<Node>);

impl Reroute for Topology {
    fn deliver(&self, batch: &PackedBatch, which: &[usize], operation: &'static str) -> Result<()> {
        let mut pending: Vec<Pending> = which.iter().map(|&i| (i, None)).collect();
        let mut attempt = 0;
        loop {
            let mut groups: HashMap<Node, Vec<(usize, bool)>> = HashMap::new();
            let mut next: Vec<Pending> = Vec::new();
            // A slot without a primary, a node down, TRYAGAIN, CLUSTERDOWN: wait, read the
            // map again. A MOVED or ASK alone is followed at once.
            let mut wait = false;
            let mut last: Option<(RedisError, Node, Option<String>)> = None;
            self.with_map(|map| {
                for (i, ask) in pending.drain(..) {
                    let asked = ask.is_some();
                    let owner = ask.or_else(|| {
                        map.owner(slot(batch.key_bytes(i)))
                            .map(|o| map.nodes[o].clone())
                    });
                    match owner {
                        Some(node) => groups.entry(node).or_default().push((i, asked)),
                        None => {
                            next.push((i, None));
                            wait = true;
                        }
                    }
                }
            })?;
            for (node, cmds) in groups {
                let replies = match self.send_to(&node, batch, &cmds) {
                    Ok(replies) => replies,
                    Err(e) if is_transient(&e) => {
                        self.unreachable(&node);
                        next.extend(cmds.iter().map(|&(i, _)| (i, None)));
                        wait = true;
                        last = Some((e, node, None));
                        continue;
                    }
                    Err(e) => return Err(self.failure(&node, operation, None, attempt + 1, e)),
                };
                if replies.iter().any(Result::is_ok) {
                    self.delivered
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(node.clone());
                }
                for (&(i, _), reply) in cmds.iter().zip(replies) {
                    let Err(e) = reply else { continue };
                    let redirect = redirected_to(&e);
                    let code = e.code().map(str::to_owned);
                    match (code.as_deref(), redirect) {
                        (Some("MOVED"), Some(to)) => {
                            self.moved(slot(batch.key_bytes(i)), to);
                            next.push((i, None));
                            last = Some((e, node.clone(), Some(batch.key(i))));
                        }
                        (Some("ASK"), Some(to)) => {
                            next.push((i, Some(to)));
                            last = Some((e, node.clone(), Some(batch.key(i))));
                        }
                        _ if is_redirect(&e) || is_transient(&e) => {
                            next.push((i, None));
                            wait = true;
                            last = Some((e, node.clone(), Some(batch.key(i))));
                        }
                        _ => {
                            let key = Some(batch.key(i));
                            return Err(self.failure(&node, operation, key, attempt + 1, e));
                        }
                    }
                }
            }
            if next.is_empty() {
                return Ok(());
            }
            attempt += 1;
            if !self.retry.should_retry(attempt) || interrupted() {
                let (e, node, key) = last.unwrap_or_else(|| {
                    let e = RedisError::from((
                        ErrorKind::ClusterConnectionNotFound,
                        "commands kept being redirected",
                        format!("{} commands undelivered", next.len()),
                    ));
                    (
                        e,
                        self.seeds[0].node().unwrap_or(Node {
                            host: "?".into(),
                            port: 0,
                        }),
                        None,
                    )
                });
                return Err(self.failure(&node, operation, key, attempt, e));
            }
            if wait {
                std::thread::sleep(self.retry.delay(attempt));
                // A node that cannot answer now is retried with the map that any other gives.
                let _ = self.refresh();
            }
            pending = next;
        }
    }
}

/// The node of a MOVED or ASK reply: `MOVED 3999 127.0.0.1:6381` (redis-rs's
/// `redirect_node` gives the address whole, with the slot).
pub(crate) fn redirected_to(e: &RedisError) -> Option<Node> {
    let (addr, _slot) = e.redirect_node()?;
    let (host, port) = addr.rsplit_once(':')?;
    if host.is_empty() {
        // `MOVED 3999 :6381`: the node does not know its own address; read the map again.
        return None;
    }
    Some(Node {
        host: host.to_owned(),
        port: port.parse().ok()?,
    })
}

impl Topology {
    fn failure(
        &self,
        node: &Node,
        operation: &'static str,
        key: Option<String>,
        attempts: u32,
        e: RedisError,
    ) -> Error {
        let target = self.target(node);
        let mut failed = target.failed(operation);
        failed.key = key;
        failed.attempts = attempts;
        failed.error(e)
    }
}
