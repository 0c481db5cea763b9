//! The run lock (SPEC §3): `SET NX PX` with an owner token naming host and process, its lease
//! renewed in the background until released or dropped, released only by its owner.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redis::Script;

use super::RedisTarget;
use crate::base::error::{Error, Result};
use crate::online::KeySpace;

const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Where the lock key lives now: the server holding it (`refresh`: after a failure, look again,
/// e.g. in a cluster's slot map after a failover). One server: always its own.
pub(crate) type Locate = Arc<dyn Fn(bool) -> Option<RedisTarget> + Send + Sync>;

/// A held run lock; its lease is renewed in the background until released or dropped.
pub struct RunLock {
    key: String,
    token: String,
    locate: Locate,
    stop: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    renewer: Option<JoinHandle<()>>,
}

impl RunLock {
    /// Takes the lock on the server of `target`, or waits up to `wait` for it; renewals and the
    /// release go to wherever `locate` finds the key then (a cluster's failover moves it).
    pub(crate) fn acquire(
        target: &RedisTarget,
        locate: Locate,
        keys: &KeySpace,
        lease: Duration,
        wait: Duration,
        label: &str,
    ) -> Result<RunLock> {
        let mut con = target.connect_explained()?;
        let token = format!(
            "{}:pid{}:{}:{label}",
            hostname(),
            std::process::id(),
            crate::base::time::now_us()
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
                .map_err(|e| target.failed("take the run lock").error(e))?;
            if got.is_some() {
                break;
            }
            if Instant::now() >= deadline {
                let holder: Option<String> =
                    redis::cmd("GET").arg(&key).query(&mut con).unwrap_or(None);
                let remaining_ms: i64 = redis::cmd("PTTL").arg(&key).query(&mut con).unwrap_or(-2);
                return Err(Error::LockHeld {
                    service: keys.service().to_owned(),
                    key,
                    holder,
                    remaining_ms: remaining_ms.max(0),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = {
            let (stop, lost, key, token, locate) = (
                stop.clone(),
                lost.clone(),
                key.clone(),
                token.clone(),
                locate.clone(),
            );
            std::thread::spawn(move || renew_loop(&*locate, &key, &token, lease, &stop, &lost))
        };
        Ok(RunLock {
            key,
            token,
            locate,
            stop,
            lost,
            renewer: Some(renewer),
        })
    }

    /// The owner token the lock key holds: host, process, start time and label.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// True when a renewal found the lock held by someone else (or gone).
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
        for refresh in [false, true] {
            let Some(target) = (self.locate)(refresh) else {
                continue;
            };
            let released: redis::RedisResult<i64> = target.connect().and_then(|mut con| {
                Script::new(RELEASE)
                    .key(&self.key)
                    .arg(&self.token)
                    .invoke(&mut con)
            });
            if released.is_ok() {
                break;
            }
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

/// Renews the lease every third of it on the server `locate` gives. A failure to reach it, or
/// a redirect (the key's slot moved: a failover, a resharding), looks the server up again before
/// the next renewal, so that the lock follows its key; a renewal that finds another token, or
/// none, marks the lock lost.
fn renew_loop(
    locate: &(dyn Fn(bool) -> Option<RedisTarget> + Send + Sync),
    key: &str,
    token: &str,
    lease: Duration,
    stop: &AtomicBool,
    lost: &AtomicBool,
) {
    let every = lease / 3;
    let mut con = None;
    let mut refresh = false;
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        // After a failure, try again soon rather than a third of the lease later.
        let due = if refresh { every / 4 } else { every };
        if last.elapsed() < due {
            continue;
        }
        last = Instant::now();
        if con.is_none() {
            con = locate(refresh).and_then(|t| t.connect().ok());
        }
        let Some(c) = con.as_mut() else {
            refresh = true;
            continue;
        };
        let renewed: redis::RedisResult<i64> = Script::new(RENEW)
            .key(key)
            .arg(token)
            .arg(lease.as_millis() as u64)
            .invoke(c);
        match renewed {
            Ok(1) => refresh = false,
            Ok(_) => lost.store(true, Ordering::Relaxed),
            Err(_) => {
                con = None;
                refresh = true;
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown-host".into())
}
