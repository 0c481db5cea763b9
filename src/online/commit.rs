//! The commit protocol (SPEC §3): a run lock with an owner token and a renewed lease; the
//! "already committed" check; and the atomic flip — manifest, `current`, history — done by one
//! Lua script that refuses if the lock was lost or `current` moved underneath the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redis::Script;

use super::{KeySpace, Manifest, RedisTarget};
use crate::error::Error;

/// How many committed snapshot ids the history keeps.
const HISTORY: usize = 32;

const COMMIT: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FSCTL_LOCK_LOST the run lock is no longer held by this run')
end
local cur = redis.call('GET', KEYS[2]) or ''
if cur ~= ARGV[2] then
  return redis.error_reply('FSCTL_CONFLICT current moved from ' .. ARGV[2] .. ' to ' .. cur .. ' during the run')
end
redis.call('SET', KEYS[4], ARGV[4], 'PXAT', ARGV[5])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[3])
local n = redis.call('ZCARD', KEYS[3])
local keep = tonumber(ARGV[7])
if n > keep then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, n - keep - 1) end
return 'OK'
";

const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// The committed state of a service.
#[derive(Debug, Clone)]
pub struct Committed {
    pub snapshot: String,
    pub manifest: Option<Manifest>,
}

/// Reads `current` and its manifest.
pub fn read_current(
    con: &mut redis::Connection,
    keys: &KeySpace,
) -> redis::RedisResult<Option<Committed>> {
    let snapshot: Option<String> = redis::cmd("GET").arg(keys.current()).query(con)?;
    let Some(snapshot) = snapshot else {
        return Ok(None);
    };
    let raw: Option<String> = redis::cmd("GET").arg(keys.manifest(&snapshot)).query(con)?;
    let manifest = raw.and_then(|m| serde_json::from_str(&m).ok());
    Ok(Some(Committed { snapshot, manifest }))
}

/// True when `snapshot` was committed (in the history with its manifest present).
pub fn is_committed(
    con: &mut redis::Connection,
    keys: &KeySpace,
    snapshot: &str,
) -> redis::RedisResult<bool> {
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(keys.snapshots())
        .arg(snapshot)
        .query(con)?;
    if score.is_none() {
        return Ok(false);
    }
    let exists: bool = redis::cmd("EXISTS")
        .arg(keys.manifest(snapshot))
        .query(con)?;
    Ok(exists)
}

/// A held run lock; its lease is renewed in the background until released or dropped.
pub struct RunLock {
    key: String,
    token: String,
    target: RedisTarget,
    stop: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    renewer: Option<JoinHandle<()>>,
}

impl RunLock {
    /// Takes the lock, or waits up to `wait` for it; the error names the holder.
    pub fn acquire(
        target: &RedisTarget,
        keys: &KeySpace,
        lease: Duration,
        wait: Duration,
    ) -> Result<RunLock, Error> {
        let mut con = target.connect_explained()?;
        let token = format!(
            "{}:pid{}:{}",
            hostname(),
            std::process::id(),
            crate::time::now_us()
        );
        let key = keys.lock();
        let deadline = Instant::now() + wait;
        loop {
            let got: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(lease.as_millis() as u64)
                .query(&mut con)
                .map_err(|e| target.explain(&e, "take the run lock"))?;
            if got.is_some() {
                break;
            }
            if Instant::now() >= deadline {
                let holder: Option<String> =
                    redis::cmd("GET").arg(&key).query(&mut con).unwrap_or(None);
                let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut con).unwrap_or(-2);
                return Err(Error::Refused(format!(
                    "service `{}` is being materialized by another run (lock {key} held by {}, lease expires in {:.1}s); \
                     use --wait-lock DURATION to wait for it",
                    keys.service(),
                    holder.as_deref().unwrap_or("?"),
                    ttl.max(0) as f64 / 1000.0
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = {
            let (stop, lost, key, token, target) = (
                stop.clone(),
                lost.clone(),
                key.clone(),
                token.clone(),
                target.clone(),
            );
            std::thread::spawn(move || renew_loop(&target, &key, &token, lease, &stop, &lost))
        };
        Ok(RunLock {
            key,
            token,
            target: target.clone(),
            stop,
            lost,
            renewer: Some(renewer),
        })
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Stops renewing and deletes the lock if this run still owns it.
    pub fn release(mut self) {
        self.release_inner();
    }

    fn release_inner(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.renewer.take() {
            let _ = h.join();
        }
        if let Ok(mut con) = self.target.connect() {
            let _: redis::RedisResult<i64> = Script::new(RELEASE)
                .key(&self.key)
                .arg(&self.token)
                .invoke(&mut con);
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if self.renewer.is_some() {
            self.release_inner();
        }
    }
}

fn renew_loop(
    target: &RedisTarget,
    key: &str,
    token: &str,
    lease: Duration,
    stop: &AtomicBool,
    lost: &AtomicBool,
) {
    let every = lease / 3;
    let mut con = None;
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if last.elapsed() < every {
            continue;
        }
        last = Instant::now();
        if con.is_none() {
            con = target.connect().ok();
        }
        let Some(c) = con.as_mut() else { continue };
        let renewed: redis::RedisResult<i64> = Script::new(RENEW)
            .key(key)
            .arg(token)
            .arg(lease.as_millis() as u64)
            .invoke(c);
        match renewed {
            Ok(1) => {}
            Ok(_) => lost.store(true, Ordering::Relaxed),
            Err(_) => con = None,
        }
    }
}

/// What the flip needs.
pub struct Flip<'a> {
    pub snapshot: &'a str,
    pub manifest_json: &'a str,
    pub manifest_pxat_ms: i64,
    pub committed_at_ms: i64,
    /// `current` as read before the run ("" for none): the flip fails if it moved.
    pub expected_current: &'a str,
}

/// Atomically writes the manifest, moves `current` and records the snapshot in the history.
pub fn commit_snapshot(
    con: &mut redis::Connection,
    keys: &KeySpace,
    lock: &RunLock,
    flip: &Flip<'_>,
) -> redis::RedisResult<()> {
    Script::new(COMMIT)
        .key(keys.lock())
        .key(keys.current())
        .key(keys.snapshots())
        .key(keys.manifest(flip.snapshot))
        .arg(lock.token())
        .arg(flip.expected_current)
        .arg(flip.snapshot)
        .arg(flip.manifest_json)
        .arg(flip.manifest_pxat_ms)
        .arg(flip.committed_at_ms)
        .arg(HISTORY)
        .invoke::<()>(con)
}

/// The commit as plain commands in one MULTI, for `--emit-resp` (no lock, no check).
pub fn commit_commands(keys: &KeySpace, flip: &Flip<'_>) -> Vec<Vec<Vec<u8>>> {
    let s = |t: &str| t.as_bytes().to_vec();
    vec![
        vec![s("MULTI")],
        vec![
            s("SET"),
            s(&keys.manifest(flip.snapshot)),
            s(flip.manifest_json),
            s("PXAT"),
            s(&flip.manifest_pxat_ms.to_string()),
        ],
        vec![s("SET"), s(&keys.current()), s(flip.snapshot)],
        vec![
            s("ZADD"),
            s(&keys.snapshots()),
            s(&flip.committed_at_ms.to_string()),
            s(flip.snapshot),
        ],
        vec![s("EXEC")],
    ]
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown-host".into())
}
