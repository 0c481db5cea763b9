//! Faults: Redis killed mid-write, connections reset mid-run. Nothing half-committed, and a
//! rerun completes the job with the same snapshot id.

use fsctl::client::{Entity, FeatureClient, ReadOptions};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::*;

/// A repo big enough that writing takes a while: the example repo's definitions over banking
/// data generated once per test process (each test gets its own copy of the YAML).
pub(crate) fn big_repo(entities: u32) -> tempfile::TempDir {
    static DATA: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let data = DATA.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        datagen(&[
            "banking",
            dir.path().to_str().unwrap(),
            "--entities",
            &entities.to_string(),
            "--anchor-hour",
            &now_hour().to_string(),
        ]);
        dir
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("../feature_repo/feature_store.yaml"),
        dir.path().join("feature_store.yaml"),
    )
    .unwrap();
    std::os::unix::fs::symlink(data.path().join("data"), dir.path().join("data")).unwrap();
    dir
}

pub(crate) fn now_hour() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 3600
}

#[test]
fn redis_killed_mid_write_commits_nothing_and_rerun_completes() {
    let repo = big_repo(200_000);
    let mut redis = RedisServer::start();
    let end = hour_rfc3339(now_hour());
    let args = [
        "--format",
        "json",
        "materialize",
        "--service",
        "realtime_scoring",
        "--end",
        end.as_str(),
    ];
    // Kill the server under the writer once data keys are landing.
    let child = start_materialize(repo.path(), &redis);
    redis.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nothing was committed"), "{stderr}");

    // The restarted server is empty; the rerun completes and commits the same snapshot id.
    redis.restart();
    let run = crate::harness::fsctl(repo.path(), Some(&redis), &args);
    let doc = run.ok().json();
    let snap = doc["services"][0]["snapshot"].as_str().unwrap().to_owned();
    let mut con = redis.con();
    assert_eq!(
        current(&mut con, "fs:banking", "realtime_scoring").as_deref(),
        Some(snap.as_str())
    );
    let again = crate::harness::fsctl(repo.path(), Some(&redis), &args);
    assert_eq!(
        again.ok().json()["services"][0]["status"],
        "already_committed"
    );
}

#[test]
fn connection_resets_are_retried_and_the_run_completes() {
    let repo = big_repo(200_000);
    let redis = RedisServer::start();
    let child = spawn_materialize(repo.path(), &redis, now_hour());
    let mut con = redis.con();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut kills = 0;
    while kills < 3 && std::time::Instant::now() < deadline {
        let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap_or(0);
        if n > 1000 * (kills + 1) {
            // Drop every client connection but ours (fsctl's writers and lock renewer).
            let _: i64 = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("SKIPME")
                .arg("yes")
                .arg("TYPE")
                .arg("normal")
                .query(&mut con)
                .unwrap();
            kills += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(kills > 0, "the run ended before a reset could be injected");
    assert!(
        doc["services"][0]["retries"].as_u64().unwrap() >= 1,
        "{stdout}"
    );
    let snap = doc["services"][0]["snapshot"].as_str().unwrap();
    let manifest = manifest(&mut con, "fs:banking", "realtime_scoring");
    assert_eq!(manifest["snapshot"], snap);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("fs:banking:realtime_scoring:{snap}:*"))
        .query(&mut con)
        .unwrap();
    assert_eq!(
        keys.len() as u64,
        manifest["entities"].as_u64().unwrap(),
        "every vector landed"
    );
}

/// RFC 3339 for an hour since the epoch.
pub(crate) fn hour_rfc3339(hour: i64) -> String {
    fsctl::base::time::format_us(hour * 3_600_000_000)
}

/// Runs `fsctl materialize` of the big repo's realtime_scoring for the window ending at `hour`.
pub(crate) fn materialize_at(repo: &Path, redis: &RedisServer, hour: i64) -> Run {
    let end = hour_rfc3339(hour);
    crate::harness::fsctl(
        repo,
        Some(redis),
        &[
            "materialize",
            "--service",
            "realtime_scoring",
            "--end",
            &end,
        ],
    )
}

/// Starts `fsctl --format json materialize` of the big repo for the window ending at `hour`.
pub(crate) fn spawn_materialize(
    repo: &Path,
    redis: &RedisServer,
    hour: i64,
) -> std::process::Child {
    let end = hour_rfc3339(hour);
    let args = [
        "--format",
        "json",
        "materialize",
        "--service",
        "realtime_scoring",
        "--end",
        end.as_str(),
    ];
    fsctl_command(repo, &redis.url(), &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Starts a materialize of the big repo and returns once its data keys are landing.
fn start_materialize(repo: &Path, redis: &RedisServer) -> std::process::Child {
    let child = spawn_materialize(repo, redis, now_hour());
    wait_for_keys(redis, 1000);
    child
}

pub(crate) fn wait_for_keys(redis: &RedisServer, n: i64) {
    let mut con = redis.con();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap_or(0);
        if size > n {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("no data keys landed");
}

fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

const LOCK: &str = "fs:banking:{realtime_scoring}:lock";

#[test]
fn sigterm_mid_run_stops_releases_the_lock_and_commits_nothing() {
    let repo = big_repo(200_000);
    let redis = RedisServer::start();
    for sig in ["-TERM", "-INT"] {
        // Orphan keys of the previous interrupted run would satisfy the "writing" wait at once.
        let _: () = redis::cmd("FLUSHALL").query(&mut redis.con()).unwrap();
        let child = start_materialize(repo.path(), &redis);
        signal(&child, sig);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains("interrupted") && stderr.contains("nothing was committed"),
            "{sig}: {stderr}"
        );
        let mut con = redis.con();
        assert_eq!(current(&mut con, "fs:banking", "realtime_scoring"), None);
        let lock: Option<String> = redis::cmd("GET").arg(LOCK).query(&mut con).unwrap();
        assert_eq!(lock, None, "{sig}: the lock is released");
    }
}

#[test]
fn concurrent_runs_one_commits_the_other_names_the_holder() {
    let repo = big_repo(200_000);
    let redis = RedisServer::start();
    let end = hour_rfc3339(now_hour());
    let args = [
        "materialize",
        "--service",
        "realtime_scoring",
        "--end",
        end.as_str(),
    ];
    let spawn = || {
        fsctl_command(repo.path(), &redis.url(), &args)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [a.status.code(), b.status.code()];
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(1)),
        "{codes:?}"
    );
    let loser = if a.status.code() == Some(1) { &a } else { &b };
    let stderr = String::from_utf8_lossy(&loser.stderr);
    assert!(
        stderr.contains("is being materialized by another run") && stderr.contains(":pid"),
        "{stderr}"
    );
    let mut con = redis.con();
    assert!(current(&mut con, "fs:banking", "realtime_scoring").is_some());
}

#[test]
fn a_crashed_holders_lease_expires() {
    let repo = big_repo(200_000);
    edit_yaml(
        repo.path(),
        "materialization:\n",
        "materialization:\n  lock_lease: 2s\n",
    );
    let redis = RedisServer::start();
    let mut child = start_materialize(repo.path(), &redis);
    child.kill().unwrap(); // SIGKILL: no chance to release anything
    child.wait().unwrap();
    let mut con = redis.con();
    let held: Option<String> = redis::cmd("GET").arg(LOCK).query(&mut con).unwrap();
    assert!(held.is_some(), "a killed run leaves its lock behind");
    assert_eq!(current(&mut con, "fs:banking", "realtime_scoring"), None);
    std::thread::sleep(Duration::from_millis(2500));
    let held: Option<String> = redis::cmd("GET").arg(LOCK).query(&mut con).unwrap();
    assert_eq!(held, None, "the lease ran out");
    materialize_at(repo.path(), &redis, now_hour()).ok();
}

#[test]
fn slow_redis_is_retried_within_the_configured_timeout_and_reported() {
    let repo = big_repo(200_000);
    edit_yaml(
        repo.path(),
        "  key_prefix: fs\n",
        "  key_prefix: fs\n  response_timeout: 300ms\n",
    );
    let redis = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let child = start_materialize(repo.path(), &redis);
    let mut con = redis.con();
    let _: () = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg("1")
        .query(&mut con)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["services"][0]["retries"].as_u64().unwrap() >= 1,
        "timeouts were retried: {doc}"
    );

    // A server that does not answer: the run fails fast and names the timeout to raise.
    let repo2 = big_repo(200_000);
    edit_yaml(
        repo2.path(),
        "  key_prefix: fs\n",
        "  key_prefix: fs\n  response_timeout: 100ms\n  connect_timeout: 100ms\n",
    );
    let redis2 = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let mut con2 = redis2.con();
    std::thread::spawn(move || {
        let _: redis::RedisResult<()> = redis::cmd("DEBUG").arg("SLEEP").arg("10").query(&mut con2);
    });
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let run = materialize_at(repo2.path(), &redis2, now_hour());
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("timed out: raise online_store.connect_timeout/response_timeout"),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "fails fast, not after the server wakes up"
    );
}

/// A reader thread of the banking service through the library reader, started on `url`
/// (the repo's `online_store.type` says a server or a cluster), until `finish`.
pub(crate) struct ReaderLoop {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    reads: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl ReaderLoop {
    /// With `server_faults`, a failed connection (a server killed on purpose) is not wrong
    /// data; a missing vector, a foreign fingerprint or an undecodable one always is.
    pub(crate) fn start(repo: &Path, url: String, server_faults: bool) -> ReaderLoop {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let reads = std::sync::Arc::new(AtomicU64::new(0));
        let repo_dir = repo.to_path_buf();
        let (halt, count) = (stop.clone(), reads.clone());
        let thread = std::thread::spawn(move || -> Vec<String> {
            let definitions = fsctl::repo::Repo::load(&repo_dir).unwrap();
            // `current` trusted for 10 ms: the pointer and its manifest are read again and
            // again while runs commit and servers fail.
            let client = FeatureClient::builder(&url, "banking")
                .cluster(definitions.online.kind == fsctl::repo::StoreKind::RedisCluster)
                .retire_grace(Duration::from_millis(20))
                .timeouts(Duration::from_secs(2), Duration::from_secs(2))
                .build()
                .unwrap();
            let wanted: Vec<Entity> = (0..200)
                .map(|i| Entity::from(1_000_000 + i * 997))
                .collect();
            let mut problems = Vec::new();
            while !halt.load(Ordering::Relaxed) {
                // The reader rule: a missing key resolves `current` again (a restarted, empty
                // server has no committed snapshot yet: not wrong data either).
                match client.get_many("realtime_scoring", &wanted, &ReadOptions::default()) {
                    Ok(vectors) => {
                        if let Some(v) = vectors.iter().find(|v| !v.found) {
                            problems.push(format!(
                                "{} missing from committed snapshot {}",
                                v.entity(),
                                v.snapshot
                            ));
                        }
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(fsctl::Error::NoCommittedSnapshot { .. }) => {}
                    Err(fsctl::Error::Redis(_)) if server_faults => {}
                    Err(e) => problems.push(e.to_string()),
                }
            }
            problems
        });
        ReaderLoop {
            stop,
            reads,
            thread,
        }
    }

    /// Stops the loop; asserts that it ran and saw nothing wrong.
    pub(crate) fn finish(self) {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::Relaxed);
        let problems = self.thread.join().unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert!(
            self.reads.load(Ordering::Relaxed) > 10,
            "the reader loop ran"
        );
    }
}

#[test]
fn readers_only_ever_see_whole_committed_snapshots() {
    let repo = big_repo(200_000);
    let mut redis = RedisServer::start();
    let reader = ReaderLoop::start(repo.path(), redis.url(), true);
    // Successive materializations, one killed mid-write, then a restart and a rerun.
    for hour in [now_hour() - 2, now_hour() - 1] {
        materialize_at(repo.path(), &redis, hour).ok();
    }
    let child = start_materialize_at(repo.path(), &redis, now_hour());
    std::thread::sleep(Duration::from_millis(100));
    redis.kill();
    let _ = child.wait_with_output();
    redis.restart();
    materialize_at(repo.path(), &redis, now_hour()).ok();
    std::thread::sleep(Duration::from_millis(300));
    reader.finish();
}

fn start_materialize_at(repo: &Path, redis: &RedisServer, hour: i64) -> std::process::Child {
    let child = spawn_materialize(repo, redis, hour);
    // Two committed snapshots of 200k keys are already there: wait for this run's keys.
    wait_for_keys(redis, 400_000 + 1000);
    child
}

/// The snapshots whose runs started and are not retired yet.
fn runs(con: &mut redis::Connection) -> Vec<String> {
    redis::cmd("ZRANGE")
        .arg("fs:banking:{realtime_scoring}:runs")
        .arg(0)
        .arg(-1)
        .query(con)
        .unwrap()
}

/// Kills a run of the window ending at `hour` mid-write and waits until its lease ran out;
/// returns the snapshot it left behind.
fn kill_mid_write(repo: &Path, redis: &RedisServer, hour: i64) -> String {
    let mut con = redis.con();
    let before = runs(&mut con);
    let mut child = spawn_materialize(repo, redis, hour);
    let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    wait_for_keys(redis, size + 1000);
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while redis::cmd("EXISTS")
        .arg(LOCK)
        .query::<bool>(&mut con)
        .unwrap()
    {
        assert!(
            Instant::now() < deadline,
            "the killed run's lease never ran out"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<String> = runs(&mut con)
        .into_iter()
        .filter(|r| !before.contains(r))
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    left[0].clone()
}

#[test]
fn a_killed_runs_leftovers_are_retired_by_gc_and_by_the_next_run() {
    let repo = big_repo(200_000);
    edit_yaml(
        repo.path(),
        "materialization:\n",
        "materialization:\n  lock_lease: 1s\n  retire_grace: 1s\n",
    );
    let redis = RedisServer::start();
    let mut con = redis.con();
    let prefix = |snap: &str| format!("fs:banking:realtime_scoring:{snap}:");
    let left = kill_mid_write(repo.path(), &redis, now_hour() - 3);
    assert!(!data_keys(&mut con, &prefix(&left)).is_empty());
    let listed = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "--format",
            "json",
            "snapshots",
            "--service",
            "realtime_scoring",
        ],
    )
    .ok()
    .json();
    assert_eq!(listed["services"][0]["snapshots"][0]["state"], "leftover");
    let gc = fsctl(repo.path(), Some(&redis), &["--format", "json", "gc"])
        .ok()
        .json();
    assert_eq!(gc["services"][0]["snapshots"][0], left.as_str());
    assert!(runs(&mut con).is_empty());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !data_keys(&mut con, &prefix(&left)).is_empty() {
        assert!(
            Instant::now() < deadline,
            "gc's leftover keys never expired"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Killed again; this time the next successful run retires what it left.
    let left = kill_mid_write(repo.path(), &redis, now_hour() - 2);
    let out = spawn_materialize(repo.path(), &redis, now_hour() - 1)
        .wait_with_output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let retired = &doc["services"][0]["retired"]["snapshots"];
    assert_eq!(retired, &serde_json::json!([left]), "{doc}");
    assert_eq!(
        runs(&mut con),
        vec![doc["services"][0]["snapshot"].as_str().unwrap().to_owned()]
    );
}
