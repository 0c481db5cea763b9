//! One Redis (or Valkey) server as the online store: pipelined writers for the vectors, and one
//! control connection for everything else (reads, expiries, the commit script).

mod explain;
mod lock;
mod target;
mod writer;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::Script;

pub(crate) use lock::Locate;
pub use lock::RunLock;
pub(crate) use target::RedisTarget;
pub use target::effective_url;
pub(crate) use writer::{PipelinedWriter, Reroute, check_reply, is_redirect};

pub(crate) use self::explain::is_transient;
use super::{
    CommandSink, Committed, Expiry, Flip, KeySpace, Manifest, Memory, OnlineStore, PackedBatch,
};
use crate::base::error::{Error, Result};
use crate::base::interrupt::interrupted;
use crate::base::retry::RetryPolicy;
use crate::repo::OnlineStoreConfig;

/// How many committed snapshot ids the history keeps.
const HISTORY: usize = 32;

/// The history's time of a flip: the server's clock in ms (not a client's, which may be
/// skewed), and later than every recorded flip, so that commit order is history order.
const FLIP_TIME: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local top = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
if top[2] and tonumber(top[2]) >= now then now = tonumber(top[2]) + 1 end
";

/// The commit: manifest, `current` and history in one step, only while the lock is held and
/// `current` is still what the run found. A retry of a commit whose reply was lost finds
/// `current` already naming its snapshot, and succeeds. Returns the flip's time.
fn commit_script() -> Script {
    Script::new(&format!(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FSCTL_LOCK_LOST the run lock is no longer held by this run')
end
local cur = redis.call('GET', KEYS[2]) or ''
if cur == ARGV[3] and cur ~= ARGV[2] then
  local landed = redis.call('ZSCORE', KEYS[3], ARGV[3])
  if landed then return tonumber(landed) end
end
if cur ~= ARGV[2] then
  return redis.error_reply('FSCTL_CONFLICT current moved from ' .. ARGV[2] .. ' to ' .. cur .. ' during the run')
end
redis.call('SET', KEYS[4], ARGV[4], 'PXAT', ARGV[5])
redis.call('SET', KEYS[2], ARGV[3])
{FLIP_TIME}
redis.call('ZADD', KEYS[3], now, ARGV[3])
local n = redis.call('ZCARD', KEYS[3])
local keep = tonumber(ARGV[6])
if n > keep then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, n - keep - 1) end
return now
"
    ))
}

/// A rollback's flip of `current` to a committed snapshot, recorded in the history; a retry
/// that finds it done succeeds. Returns the flip's time.
fn flip_script() -> Script {
    Script::new(&format!(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FSCTL_LOCK_LOST the run lock is no longer held by this rollback')
end
local cur = redis.call('GET', KEYS[2]) or ''
if cur == ARGV[3] then return tonumber(redis.call('ZSCORE', KEYS[3], ARGV[3]) or '0') end
if cur ~= ARGV[2] then
  return redis.error_reply('FSCTL_CONFLICT current moved from ' .. ARGV[2] .. ' to ' .. cur .. ' meanwhile')
end
redis.call('SET', KEYS[2], ARGV[3])
{FLIP_TIME}
redis.call('ZADD', KEYS[3], now, ARGV[3])
return now
"
    ))
}

/// The refusals of the commit and flip scripts as their errors; any other failure back.
fn script_refusal(
    e: redis::RedisError,
    keys: &KeySpace,
) -> std::result::Result<Error, redis::RedisError> {
    match e.code() {
        Some("FSCTL_LOCK_LOST") => Ok(Error::LockLost {
            service: keys.service().to_owned(),
        }),
        Some("FSCTL_CONFLICT") => Ok(Error::CommitRefused {
            service: keys.service().to_owned(),
            reason: e.detail().unwrap_or("current moved meanwhile").to_owned(),
        }),
        _ => Err(e),
    }
}

/// A single Redis server, or one primary of a cluster. Connects lazily: building one checks
/// the configuration only.
pub struct RedisStore {
    target: RedisTarget,
    retry: RetryPolicy,
    /// The control connection, dropped after a failure so that the next call reconnects.
    control: Mutex<Option<redis::Connection>>,
    /// Set on a cluster's primary: commands it refuses as another node's go there, and no
    /// command names keys of two slots (MGET and DEL of many keys become pipelines).
    reroute: Option<Arc<dyn Reroute>>,
}

impl RedisStore {
    /// The run lock, taken on this server; renewed and released wherever `locate` finds its
    /// key then (a cluster's store follows the slot map).
    pub(crate) fn lock_with(
        &self,
        keys: &KeySpace,
        lease: Duration,
        wait: Duration,
        label: &str,
        locate: Locate,
    ) -> Result<RunLock> {
        RunLock::acquire(&self.target, locate, keys, lease, wait, label)
    }

    /// `OnlineStore::extend_expiry` for keys of any bytes.
    fn extend_expiry_any<K: redis::ToRedisArgs>(
        &self,
        keys: &[K],
        expiries: Option<&[i64]>,
        dry_run: bool,
    ) -> Result<Vec<Expiry>> {
        let mut found = Vec::with_capacity(keys.len());
        for (i, chunk) in keys.chunks(1000).enumerate() {
            // PTTL answers presence (-2: missing) and the expiry to compare with; an expiry is
            // only ever moved later (what `PEXPIREAT ... GT` does, which needs Redis 7.0), and a
            // key without one keeps none. The server's clock is read after the PTTLs, in the
            // same pipeline, so `now + pttl` is never earlier than the key's expiry: a key that
            // already expires at the time asked is never counted as extended.
            let mut ttls = redis::pipe();
            for key in chunk {
                ttls.cmd("PTTL").arg(key);
            }
            ttls.cmd("TIME");
            let (pttl, (secs, micros)): (Vec<i64>, (i64, i64)) =
                self.with("read expiries", |c| {
                    let mut replies: Vec<redis::Value> = ttls.query(c)?;
                    let time = redis::from_redis_value(replies.pop().unwrap_or(redis::Value::Nil))?;
                    let pttl = redis::from_redis_value(redis::Value::Array(replies))?;
                    Ok((pttl, time))
                })?;
            let now_ms = secs * 1000 + micros / 1000;
            let mut extend = redis::pipe();
            let mut later = 0;
            for (j, (key, &ttl)) in chunk.iter().zip(&pttl).enumerate() {
                let at = expiries.map(|at| at[i * 1000 + j]);
                found.push(match at {
                    _ if ttl == -2 => Expiry::Missing,
                    Some(at) if ttl >= 0 && now_ms + ttl < at => {
                        extend.cmd("PEXPIREAT").arg(key).arg(at).ignore();
                        later += 1;
                        Expiry::Extended
                    }
                    _ => Expiry::Unchanged,
                });
            }
            if later > 0 && !dry_run {
                self.with("extend expiries", |c| extend.query::<()>(c))?;
            }
        }
        Ok(found)
    }

    /// A sorted set's members with their scores as integers, lowest first (highest with `rev`).
    fn scored(&self, what: &'static str, key: &str, rev: bool) -> Result<Vec<(String, i64)>> {
        let scored: Vec<(String, f64)> = self.with(what, |c| {
            let mut cmd = redis::cmd("ZRANGE");
            cmd.arg(key).arg(0).arg(-1);
            if rev {
                cmd.arg("REV");
            }
            cmd.arg("WITHSCORES").query(c)
        })?;
        Ok(scored.into_iter().map(|(id, s)| (id, s as i64)).collect())
    }

    pub fn open(config: &OnlineStoreConfig) -> Result<RedisStore> {
        Ok(RedisStore::node(
            RedisTarget::from_config(config)?,
            config.retry,
            None,
        ))
    }

    pub(crate) fn node(
        target: RedisTarget,
        retry: RetryPolicy,
        reroute: Option<Arc<dyn Reroute>>,
    ) -> RedisStore {
        RedisStore {
            target,
            retry,
            control: Mutex::new(None),
            reroute,
        }
    }

    /// Runs `f` on the control connection: connecting first if needed (a server that cannot
    /// be reached at all fails at once), then retrying transient faults with the store's
    /// policy, reconnecting between tries. Every control operation may be repeated safely.
    fn with<T>(
        &self,
        operation: &'static str,
        mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let mut control = self.control.lock().unwrap_or_else(|p| p.into_inner());
        if control.is_none() {
            *control = Some(self.target.connect_explained()?);
        }
        let outcome = self.retry.run(
            || {
                if control.is_none() {
                    *control = Some(self.target.connect()?);
                }
                let done = f(control.as_mut().expect("connected above"));
                if done.as_ref().is_err_and(is_transient) {
                    *control = None;
                }
                done
            },
            |e| is_transient(e) && !interrupted(),
            |_, _| {},
        );
        outcome.map_err(|(e, attempts)| {
            let mut failed = self.target.failed(operation);
            failed.attempts = attempts;
            failed.error(e)
        })
    }
}

/// Parses a manifest's JSON; an unreadable one counts as missing.
fn parse_manifest(raw: Option<String>) -> Option<Manifest> {
    raw.and_then(|m| serde_json::from_str(&m).ok())
}

impl OnlineStore for RedisStore {
    fn describe(&self) -> &str {
        self.target.display()
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    fn writer(&self) -> Result<Box<dyn CommandSink + Send>> {
        Ok(Box::new(PipelinedWriter::start(
            &self.target,
            self.retry,
            "write",
            self.reroute.clone(),
        )?))
    }

    fn write_now(&self, batch: PackedBatch) -> Result<()> {
        self.write_all("warm", std::iter::once(batch))
    }

    fn current(&self, keys: &KeySpace) -> Result<Option<Committed>> {
        let snapshot: Option<String> = self.with("read current", |c| {
            redis::cmd("GET").arg(keys.current()).query(c)
        })?;
        let Some(snapshot) = snapshot else {
            return Ok(None);
        };
        let manifest = self.manifest(keys, &snapshot)?;
        Ok(Some(Committed { snapshot, manifest }))
    }

    fn manifest(&self, keys: &KeySpace, snapshot: &str) -> Result<Option<Manifest>> {
        let raw: Option<String> = self.with("read manifest", |c| {
            redis::cmd("GET").arg(keys.manifest(snapshot)).query(c)
        })?;
        Ok(parse_manifest(raw))
    }

    fn is_committed(&self, keys: &KeySpace, snapshot: &str) -> Result<bool> {
        self.with("check snapshot", |c| {
            let score: Option<f64> = redis::cmd("ZSCORE")
                .arg(keys.snapshots())
                .arg(snapshot)
                .query(c)?;
            if score.is_none() {
                return Ok(false);
            }
            redis::cmd("EXISTS").arg(keys.manifest(snapshot)).query(c)
        })
    }

    fn lock(
        &self,
        keys: &KeySpace,
        lease: Duration,
        wait: Duration,
        label: &str,
    ) -> Result<RunLock> {
        let target = self.target.clone();
        let locate: Locate = Arc::new(move |_| Some(target.clone()));
        self.lock_with(keys, lease, wait, label, locate)
    }

    fn commit(&self, keys: &KeySpace, lock: &RunLock, flip: &Flip<'_>) -> Result<i64> {
        let script = commit_script();
        self.run_script("commit", keys, |con| {
            script
                .key(keys.lock())
                .key(keys.current())
                .key(keys.snapshots())
                .key(keys.manifest(flip.snapshot))
                .arg(lock.token())
                .arg(flip.expected_current)
                .arg(flip.snapshot)
                .arg(flip.manifest_json)
                .arg(flip.manifest_pxat_ms)
                .arg(HISTORY)
                .invoke::<i64>(con)
        })
    }

    fn delete(&self, keys: &[String]) -> Result<u64> {
        let mut deleted = 0;
        for chunk in keys.chunks(1000) {
            deleted += if self.reroute.is_some() {
                let mut dels = redis::pipe();
                for key in chunk {
                    dels.cmd("DEL").arg(key);
                }
                let n: Vec<u64> = self.with("delete", |c| dels.query(c))?;
                n.into_iter().sum()
            } else {
                self.with("delete", |c| redis::cmd("DEL").arg(chunk).query::<u64>(c))?
            };
        }
        Ok(deleted)
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if self.reroute.is_some() {
            let mut gets = redis::pipe();
            for key in keys {
                gets.cmd("GET").arg(key);
            }
            return self.with("GET", |c| gets.query(c));
        }
        self.with("MGET", |c| redis::cmd("MGET").arg(keys).query(c))
    }

    fn hash_with_ttl(&self, key: &[u8]) -> Result<(crate::online::HashFields, i64)> {
        self.with("HGETALL", |c| {
            redis::pipe()
                .cmd("HGETALL")
                .arg(key)
                .cmd("PTTL")
                .arg(key)
                .query(c)
        })
    }

    fn remaining_ttl_ms(&self, key: &str) -> Result<Option<i64>> {
        let pttl: i64 = self.with("PTTL", |c| redis::cmd("PTTL").arg(key).query(c))?;
        Ok((pttl != -2).then_some(pttl))
    }

    fn extend_expiry(
        &self,
        keys: &[String],
        expiries: Option<&[i64]>,
        dry_run: bool,
    ) -> Result<Vec<Expiry>> {
        self.extend_expiry_any(keys, expiries, dry_run)
    }

    fn extend_expiry_of_bytes(
        &self,
        keys: &[Vec<u8>],
        expiries: &[i64],
        dry_run: bool,
    ) -> Result<Vec<Expiry>> {
        self.extend_expiry_any(keys, Some(expiries), dry_run)
    }

    fn sample(&self, prefix: &str, n: usize) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut cursor = 0u64;
        let pattern = format!("{}*", glob_escape(prefix));
        while out.len() < n {
            let (next, batch): (u64, Vec<String>) = self.with("SCAN", |c| {
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query(c)
            })?;
            let wanted: Vec<String> = batch.into_iter().take(n - out.len()).collect();
            let values = self.get_many(&wanted)?;
            out.extend(
                wanted
                    .into_iter()
                    .zip(values)
                    .filter_map(|(k, v)| v.map(|v| (k, v))),
            );
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        Ok(out)
    }

    fn register_run(&self, keys: &KeySpace, snapshot: &str, started_ms: i64) -> Result<()> {
        self.with("register the run", |c| {
            redis::cmd("ZADD")
                .arg(keys.runs())
                .arg(started_ms)
                .arg(snapshot)
                .query(c)
        })
    }

    fn append_key_list(
        &self,
        keys: &KeySpace,
        snapshot: &str,
        frame: &[u8],
        started_ms: i64,
        expires_ms: i64,
    ) -> Result<()> {
        self.with("append the key list", |c| {
            redis::pipe()
                .cmd("ZADD")
                .arg(keys.runs())
                .arg("NX")
                .arg(started_ms)
                .arg(snapshot)
                .ignore()
                .cmd("APPEND")
                .arg(keys.key_list(snapshot))
                .arg(frame)
                .ignore()
                .cmd("PEXPIREAT")
                .arg(keys.key_list(snapshot))
                .arg(expires_ms)
                .ignore()
                .query(c)
        })
    }

    fn key_list(&self, keys: &KeySpace, snapshot: &str) -> Result<Option<Vec<u8>>> {
        self.with("read the key list", |c| {
            redis::cmd("GET").arg(keys.key_list(snapshot)).query(c)
        })
    }

    fn history(&self, keys: &KeySpace) -> Result<Vec<(String, i64)>> {
        self.scored("read the history", &keys.snapshots(), true)
    }

    fn runs(&self, keys: &KeySpace) -> Result<Vec<(String, i64)>> {
        self.scored("read the runs", &keys.runs(), false)
    }

    fn expire_by(
        &self,
        prefix: &str,
        entities: &mut dyn Iterator<Item = &str>,
        at_ms: i64,
    ) -> Result<()> {
        let batches = std::iter::from_fn(|| {
            let mut batch = PackedBatch::default();
            while batch.len() < EXPIRE_BATCH {
                let Some(e) = entities.next() else { break };
                batch.push_expire_by(prefix, e, at_ms);
            }
            (!batch.is_empty()).then_some(batch)
        });
        self.write_all("retire", batches)
    }

    /// On a cluster node, one DEL names keys of one slot: the entities come sorted by slot,
    /// and a DEL ends where the slot changes.
    fn delete_by(&self, prefix: &str, entities: &mut dyn Iterator<Item = &str>) -> Result<()> {
        let one_slot = self.reroute.is_some();
        let mut entities = entities.peekable();
        let mut key = String::new();
        let mut slot_of = |e: &str| {
            key.clear();
            key.push_str(prefix);
            key.push_str(e);
            super::slots::slot(key.as_bytes())
        };
        let batches = std::iter::from_fn(|| {
            let mut batch = PackedBatch::default();
            let mut chunk = Vec::with_capacity(DEL_KEYS);
            while batch.len() < EXPIRE_BATCH / DEL_KEYS {
                chunk.clear();
                let mut slot = None;
                while chunk.len() < DEL_KEYS {
                    let Some(&e) = entities.peek() else { break };
                    if one_slot {
                        let s = slot_of(e);
                        if slot.is_some_and(|first| first != s) {
                            break;
                        }
                        slot = Some(s);
                    }
                    chunk.push(e);
                    entities.next();
                }
                if chunk.is_empty() {
                    break;
                }
                batch.push_del(prefix, &chunk);
            }
            (!batch.is_empty()).then_some(batch)
        });
        self.write_all("retire", batches)
    }

    fn put_manifest(&self, keys: &KeySpace, manifest: &Manifest) -> Result<()> {
        let json = serde_json::to_string(manifest).expect("manifest serializes");
        self.with("write the manifest", |c| {
            redis::cmd("SET")
                .arg(keys.manifest(&manifest.snapshot))
                .arg(&json)
                .arg("KEEPTTL")
                .arg("XX")
                .query::<Option<String>>(c)
                .map(|_| ())
        })
    }

    fn put_feast_manifest(
        &self,
        keys: &KeySpace,
        json: &str,
        lock: Option<&RunLock>,
    ) -> Result<()> {
        let Some(lock) = lock else {
            return self.with("write the manifest", |c| {
                redis::cmd("SET")
                    .arg(keys.feast_manifest())
                    .arg(json)
                    .query::<()>(c)
            });
        };
        let script = Script::new(
            r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FSCTL_LOCK_LOST the run lock is no longer held by this run')
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
",
        );
        self.run_script("write the manifest", keys, |con| {
            script
                .key(keys.lock())
                .key(keys.feast_manifest())
                .arg(lock.token())
                .arg(json)
                .invoke::<i64>(con)
        })
        .map(drop)
    }

    fn forget_run(&self, keys: &KeySpace, snapshot: &str, at_ms: i64) -> Result<()> {
        self.with("forget the run", |c| {
            redis::pipe()
                .cmd("PEXPIREAT")
                .arg(keys.key_list(snapshot))
                .arg(at_ms)
                .ignore()
                .cmd("ZREM")
                .arg(keys.runs())
                .arg(snapshot)
                .ignore()
                .query(c)
        })
    }

    fn flip(
        &self,
        keys: &KeySpace,
        lock: &RunLock,
        snapshot: &str,
        expected_current: &str,
    ) -> Result<i64> {
        let script = flip_script();
        self.run_script("rollback", keys, |con| {
            script
                .key(keys.lock())
                .key(keys.current())
                .key(keys.snapshots())
                .arg(lock.token())
                .arg(expected_current)
                .arg(snapshot)
                .invoke::<i64>(con)
        })
    }

    fn register_sharded(&self, keys: &KeySpace, snapshot: &str, as_of_ms: i64) -> Result<()> {
        self.with("register the sharded run", |c| {
            redis::cmd("ZADD")
                .arg(keys.sharded())
                .arg(as_of_ms)
                .arg(snapshot)
                .query(c)
        })
    }

    fn sharded(&self, keys: &KeySpace) -> Result<Vec<(String, i64)>> {
        self.scored("read the sharded runs", &keys.sharded(), false)
    }

    fn forget_sharded(&self, keys: &KeySpace, snapshot: &str) -> Result<()> {
        self.with("forget the sharded run", |c| {
            redis::cmd("ZREM")
                .arg(keys.sharded())
                .arg(snapshot)
                .query(c)
        })
    }

    fn put_shard_manifest(
        &self,
        keys: &KeySpace,
        snapshot: &str,
        index: u32,
        json: &str,
        pxat_ms: i64,
    ) -> Result<()> {
        self.with("write the shard manifest", |c| {
            redis::cmd("SET")
                .arg(keys.shard_manifest(snapshot, index))
                .arg(json)
                .arg("PXAT")
                .arg(pxat_ms)
                .query(c)
        })
    }

    fn shard_manifests(
        &self,
        keys: &KeySpace,
        snapshot: &str,
        count: u32,
    ) -> Result<Vec<Option<String>>> {
        let names: Vec<String> = (0..count)
            .map(|i| keys.shard_manifest(snapshot, i))
            .collect();
        self.with("read the shard manifests", |c| {
            redis::cmd("MGET").arg(&names).query(c)
        })
    }

    fn now_ms(&self) -> Result<i64> {
        let (secs, micros): (i64, i64) = self.with("TIME", |c| redis::cmd("TIME").query(c))?;
        Ok(secs * 1000 + micros / 1000)
    }

    fn lock_holder(&self, keys: &KeySpace) -> Result<Option<String>> {
        self.with("read the lock", |c| {
            redis::cmd("GET").arg(keys.lock()).query(c)
        })
    }

    fn memory(&self) -> Result<Memory> {
        let info: String =
            self.with("INFO memory", |c| redis::cmd("INFO").arg("memory").query(c))?;
        Ok(parse_memory(&info))
    }
}

/// PEXPIREAT commands (or keys deleted) per pipelined batch of a retirement.
const EXPIRE_BATCH: usize = 2000;
/// Keys per DEL command.
const DEL_KEYS: usize = 500;

/// `used_memory` and `maxmemory` of an `INFO memory` reply (Redis and Valkey alike).
fn parse_memory(info: &str) -> Memory {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Memory {
        used: field("used_memory"),
        max: field("maxmemory"),
    }
}

impl RedisStore {
    /// Runs one of the flip scripts on a connection of its own, retrying transient faults
    /// (the scripts make a retry of a flip that landed a success); their refusals become their
    /// errors.
    fn run_script(
        &self,
        operation: &'static str,
        keys: &KeySpace,
        mut invoke: impl FnMut(&mut redis::Connection) -> redis::RedisResult<i64>,
    ) -> Result<i64> {
        let mut con = self.target.connect_explained()?;
        let outcome = self.retry.run(
            || {
                let done = invoke(&mut con);
                if done.as_ref().is_err_and(is_transient)
                    && let Ok(fresh) = self.target.connect()
                {
                    con = fresh;
                }
                done
            },
            is_transient,
            |_, _| {},
        );
        outcome.map_err(|(e, attempts)| {
            script_refusal(e, keys).unwrap_or_else(|e| {
                let mut failed = self.target.failed(operation);
                failed.attempts = attempts;
                failed.error(e)
            })
        })
    }

    /// Sends `batches` through the pipelined writers (every reply checked); `operation` names
    /// them in errors.
    fn write_all(
        &self,
        operation: &'static str,
        batches: impl Iterator<Item = PackedBatch>,
    ) -> Result<()> {
        let mut sink: Box<dyn CommandSink + Send> = Box::new(PipelinedWriter::start(
            &self.target,
            self.retry,
            operation,
            self.reroute.clone(),
        )?);
        for batch in batches {
            sink.send(batch)?;
        }
        sink.finish().map(|_| ())
    }
}

/// Escapes the glob characters of a SCAN MATCH pattern.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
