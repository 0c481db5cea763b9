//! The snapshot lifecycle (SPEC §3.1) against a real redis-server: memory stays at
//! `keep_snapshots` snapshots' worth under a schedule, retired snapshots stay readable for the
//! grace and no longer, leftovers of failed runs go, rollback serves a kept snapshot's exact
//! bytes, and a run that cannot fit is refused before it writes.

use std::path::Path;
use std::time::{Duration, Instant};

use fsctl::client::{Entity, FeatureClient, ReadOptions};
use fsctl::vector::{SchemaFingerprint, Value, decode};

use crate::faults::{hour_rfc3339, now_hour};
use crate::harness::*;

/// The golden repo keeping `keep` snapshots with a grace of `grace`.
fn golden_with(keep: usize, grace: &str) -> tempfile::TempDir {
    let repo = scratch_repo("golden");
    edit_yaml(
        repo.path(),
        "  ttl_jitter: 0.1\n",
        &format!("  ttl_jitter: 0.1\n  keep_snapshots: {keep}\n  retire_grace: {grace}\n"),
    );
    repo
}

/// `GOLDEN_END` plus `hours`.
fn golden_end(hours: i64) -> String {
    fsctl::base::time::format_us(1_763_856_000_000_000 + hours * 3_600_000_000)
}

fn materialize(repo: &Path, redis: &RedisServer, end: &str) -> serde_json::Value {
    fsctl(
        repo,
        Some(redis),
        &[
            "--format",
            "json",
            "materialize",
            "--service",
            "scoring",
            "--end",
            end,
        ],
    )
    .ok()
    .json()
}

/// Materializes `scoring` as of `end`; returns the snapshot committed.
fn commit(repo: &Path, redis: &RedisServer, end: &str) -> String {
    materialize(repo, redis, end)["services"][0]["snapshot"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The manifest of `snapshot` (committed or retired), parsed.
fn manifest_of(
    con: &mut redis::Connection,
    prefix: &str,
    service: &str,
    snapshot: &str,
) -> serde_json::Value {
    let raw: String = redis::cmd("GET")
        .arg(format!("{prefix}:{{{service}}}:snapshot:{snapshot}"))
        .query(con)
        .unwrap();
    serde_json::from_str(&raw).unwrap()
}

fn used_memory(con: &mut redis::Connection) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn data_key_count(con: &mut redis::Connection, prefix: &str) -> usize {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query(con)
        .unwrap();
    keys.iter().filter(|k| !k.contains(":{")).count()
}

fn expire_time(con: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap()
}

fn history(con: &mut redis::Connection, prefix: &str, service: &str) -> Vec<String> {
    redis::cmd("ZRANGE")
        .arg(format!("{prefix}:{{{service}}}:snapshots"))
        .arg(0)
        .arg(-1)
        .arg("REV")
        .query(con)
        .unwrap()
}

/// Waits (bounded) until `done` holds; Redis frees expired keys in its own time.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The example repo over generated customers, anchored at this hour, with `keep` and a 1 s grace.
fn banking_repo(entities: u32, keep: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    datagen(&[
        "banking",
        dir.path().to_str().unwrap(),
        "--entities",
        &entities.to_string(),
        "--anchor-hour",
        &now_hour().to_string(),
    ]);
    std::fs::copy(
        fixture("../feature_repo/feature_store.yaml"),
        dir.path().join("feature_store.yaml"),
    )
    .unwrap();
    edit_yaml(
        dir.path(),
        "  ttl_jitter: 0.2\n",
        &format!("  ttl_jitter: 0.2\n  keep_snapshots: {keep}\n  retire_grace: 1s\n"),
    );
    dir
}

fn steady_state(keep: usize) {
    let repo = banking_repo(20_000, keep);
    // Redis frees expired keys in the background; a higher effort only makes it sooner.
    let redis = RedisServer::start_with(&["--active-expire-effort", "10"]);
    let mut con = redis.con();
    let base = used_memory(&mut con);
    let run = |hour: i64| {
        fsctl(
            repo.path(),
            Some(&redis),
            &["materialize", "--end", &hour_rfc3339(hour)],
        )
        .ok();
    };
    let first = now_hour() - 6;
    run(first);
    let one_snapshot_keys = data_key_count(&mut con, "fs:banking");
    let one_snapshot_bytes = used_memory(&mut con) - base;
    // Hourly runs: each retires the snapshot beyond `keep`, whose keys are freed once the grace
    // has passed (DBSIZE counts expired keys until Redis has freed them). Besides the data, per
    // service: current, history, runs, six manifests and the kept key lists.
    let bound = keep * one_snapshot_keys + 2 * (3 + 6 + keep);
    for hour in first + 1..first + 6 {
        run(hour);
        wait_until("the retired snapshot's keys were freed", || {
            redis::cmd("DBSIZE").query::<usize>(&mut con).unwrap() <= bound
        });
    }
    assert_eq!(
        data_key_count(&mut con, "fs:banking"),
        keep * one_snapshot_keys
    );
    // Slack: Redis sizes its key tables for the peak of a run (the new snapshot beside the kept
    // ones) and does not shrink them until they are 90% empty.
    let used = used_memory(&mut con) - base;
    assert!(
        (used as f64) <= keep as f64 * one_snapshot_bytes as f64 * 1.15 + 256.0 * 1024.0,
        "used_memory grew to {used} B for {keep} kept snapshot(s) of {one_snapshot_bytes} B"
    );
    // Every kept snapshot decodes fully, with its manifest's fingerprint.
    for service in ["realtime_scoring", "recommendations"] {
        let kept: Vec<String> = history(&mut con, "fs:banking", service)
            .into_iter()
            .take(keep)
            .collect();
        assert_eq!(kept.len(), keep);
        for snap in kept {
            let m = manifest_of(&mut con, "fs:banking", service, &snap);
            let fp = SchemaFingerprint::parse_hex(m["fingerprint"].as_str().unwrap()).unwrap();
            let stored = data_keys(&mut con, &format!("fs:banking:{service}:{snap}:"));
            assert_eq!(stored.len() as u64, m["keys_written"].as_u64().unwrap());
            for (key, bytes) in stored {
                assert_eq!(decode(&bytes).unwrap().fingerprint, fp, "{key}");
            }
        }
    }
}

#[test]
fn six_scheduled_runs_hold_two_snapshots_worth_of_memory() {
    steady_state(2);
}

#[test]
fn with_keep_snapshots_one_a_single_snapshot_stays() {
    steady_state(1);
}

#[test]
fn a_reader_of_the_old_pointer_reads_through_the_grace_then_moves_on() {
    let repo = golden_with(1, "6s");
    let redis = RedisServer::start();
    let mut con = redis.con();
    let first = materialize(repo.path(), &redis, &golden_end(0));
    let old = first["services"][0]["snapshot"]
        .as_str()
        .unwrap()
        .to_owned();
    let definitions = fsctl::repo::Repo::load(repo.path()).unwrap();
    let client = FeatureClient::builder(&redis.url(), "golden")
        .key_prefix("fst")
        .retire_grace(definitions.retire_grace())
        .build()
        .unwrap();
    let read = || {
        let got = client
            .get_many(
                "scoring",
                &[Entity::from(1), Entity::from(2)],
                &ReadOptions::default(),
            )
            .unwrap();
        assert!(got.iter().all(|v| v.found));
        let values: Vec<Vec<Value>> = got.iter().map(|v| v.values.to_vec()).collect();
        (got[0].snapshot.to_string(), values)
    };
    let (read_from, before) = read();
    assert_eq!(read_from, old);

    // A commit retires the old snapshot (keep 1): its keys expire at commit + grace, no later.
    let second = materialize(repo.path(), &redis, &golden_end(1));
    let new = second["services"][0]["snapshot"]
        .as_str()
        .unwrap()
        .to_owned();
    let retired = &second["services"][0]["retired"];
    assert_eq!(retired["snapshots"][0], old.as_str());
    // The flip's time in the history is the server's clock, which the grace is measured on.
    let committed_ms: i64 = redis::cmd("ZSCORE")
        .arg("fst:golden:{scoring}:snapshots")
        .arg(&new)
        .query(&mut con)
        .unwrap();
    for (key, _) in data_keys(&mut con, &format!("fst:golden:scoring:{old}:")) {
        let at = expire_time(&mut con, &key);
        assert!(
            at <= committed_ms + 6000 && at > committed_ms,
            "{key} expires at {at}"
        );
    }
    // Within the grace, the cached pointer still reads the old snapshot, whole.
    let (read_from, during) = read();
    assert_eq!((read_from.as_str(), &during), (old.as_str(), &before));
    // Half the grace later, the reader resolves `current` again.
    wait_until("the reader moved to the new snapshot", || read().0 == new);
    let manifest = crate::harness::manifest(&mut con, "fst:golden", "scoring");
    assert_eq!(manifest["snapshot"], new.as_str());
    let retired_manifest = manifest_of(&mut con, GOLDEN_PREFIX, "scoring", &old);
    assert!(retired_manifest["retired_at"].is_string());
}

#[test]
fn entities_that_vanished_from_the_new_snapshot_are_retired_too() {
    let repo = golden_with(1, "1s");
    let redis = RedisServer::start();
    let mut con = redis.con();
    let old = commit(repo.path(), &redis, &golden_end(0));
    // Entity 4's only row sits at the first window's start: an hour later it is out.
    assert!(
        redis::cmd("EXISTS")
            .arg(format!("fst:golden:scoring:{old}:4"))
            .query::<bool>(&mut con)
            .unwrap()
    );
    let second = materialize(repo.path(), &redis, &golden_end(1));
    let new = second["services"][0]["snapshot"].as_str().unwrap();
    assert!(
        !redis::cmd("EXISTS")
            .arg(format!("fst:golden:scoring:{new}:4"))
            .query::<bool>(&mut con)
            .unwrap()
    );
    wait_until("every key of the retired snapshot is gone", || {
        data_keys(&mut con, &format!("fst:golden:scoring:{old}:")).is_empty()
    });
}

#[test]
fn rollback_serves_the_previous_bytes_and_refuses_a_retired_snapshot() {
    let repo = golden_with(2, "1s");
    let redis = RedisServer::start();
    let mut con = redis.con();
    let s1 = commit(repo.path(), &redis, &golden_end(0));
    let s1_bytes = data_keys(&mut con, &format!("fst:golden:scoring:{s1}:"));
    let s2 = commit(repo.path(), &redis, &golden_end(1));
    let back = fsctl(
        repo.path(),
        Some(&redis),
        &["--format", "json", "rollback", "--service", "scoring"],
    )
    .ok()
    .json();
    assert_eq!(back["rolled_back"]["to"], s1.as_str());
    assert_eq!(back["rolled_back"]["from"], s2.as_str());
    assert_eq!(current(&mut con, GOLDEN_PREFIX, "scoring").unwrap(), s1);
    assert_eq!(
        data_keys(&mut con, &format!("fst:golden:scoring:{s1}:")),
        s1_bytes
    );
    // Serving reads the rolled-back snapshot through the pointer.
    let got = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "--format",
            "json",
            "get",
            "--service",
            "scoring",
            "--entity",
            "customer_id=1",
        ],
    )
    .ok()
    .json();
    assert_eq!(got["snapshot"], s1.as_str());

    // The next scheduled run (a newer window than s1's) commits as usual and retires s2, the
    // oldest by commit order now that the rollback recorded s1 again.
    let s3 = commit(repo.path(), &redis, &golden_end(2));
    assert_eq!(
        history(&mut con, GOLDEN_PREFIX, "scoring")[..3],
        [s3.clone(), s1, s2.clone()]
    );
    let listed = fsctl(
        repo.path(),
        Some(&redis),
        &["--format", "json", "snapshots", "--service", "scoring"],
    )
    .ok()
    .json();
    let states: Vec<(&str, &str)> = listed["services"][0]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["snapshot"].as_str().unwrap(),
                s["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(states[0], (s3.as_str(), "current"));
    assert_eq!(states[1].1, "kept");
    assert!(matches!(states[2].1, "retired" | "expired"), "{states:?}");
    let refused = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "--format",
            "json",
            "rollback",
            "--service",
            "scoring",
            "--to",
            &s2,
        ],
    );
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let doc = refused.json();
    assert_eq!(doc["error"]["kind"], "rollback_refused");
    assert!(
        doc["error"]["reason"].as_str().unwrap().contains("retired"),
        "{doc}"
    );
    assert_eq!(current(&mut con, GOLDEN_PREFIX, "scoring").unwrap(), s3);
}

/// `fsctl --format json rollback --service scoring [extra]`, successful, as JSON.
fn rollback_json(repo: &Path, redis: &RedisServer, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--format", "json", "rollback", "--service", "scoring"];
    args.extend_from_slice(extra);
    fsctl(repo, Some(redis), &args).ok().json()["rolled_back"].clone()
}

/// The `snapshots` entry of `id`, as JSON.
fn listed(repo: &Path, redis: &RedisServer, id: &str) -> serde_json::Value {
    let doc = fsctl(
        repo,
        Some(redis),
        &["--format", "json", "snapshots", "--service", "scoring"],
    )
    .ok()
    .json();
    doc["services"][0]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["snapshot"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not listed: {doc}"))
}

#[test]
fn rollback_is_idempotent_and_keeps_commit_times() {
    let repo = golden_with(3, "5m");
    let redis = RedisServer::start();
    let mut con = redis.con();
    let s1 = commit(repo.path(), &redis, &golden_end(0));
    let s2 = commit(repo.path(), &redis, &golden_end(1));
    let committed_s1 = listed(repo.path(), &redis, &s1)["committed_at"].clone();
    assert!(committed_s1.is_string());

    let first = rollback_json(repo.path(), &redis, &[]);
    // As if the rollback had died between the flip and recording the snapshot it left.
    let s2_key = format!("{GOLDEN_PREFIX}:{{scoring}}:snapshot:{s2}");
    let raw: String = redis::cmd("GET").arg(&s2_key).query(&mut con).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert!(m["rolled_back_at"].is_string());
    m.as_object_mut().unwrap().remove("rolled_back_at");
    let _: () = redis::cmd("SET")
        .arg(&s2_key)
        .arg(m.to_string())
        .arg("KEEPTTL")
        .query(&mut con)
        .unwrap();
    assert_eq!(
        (&first["to"], &first["changed"]),
        (&s1.as_str().into(), &true.into())
    );
    // A retried task runs the same rollback again: it stays on s1 instead of redeploying s2,
    // and records what the first one could not.
    let again = rollback_json(repo.path(), &redis, &[]);
    assert_eq!(
        (&again["to"], &again["changed"]),
        (&s1.as_str().into(), &false.into())
    );
    assert_eq!(current(&mut con, GOLDEN_PREFIX, "scoring").unwrap(), s1);
    // --to the current snapshot is a no-op that succeeds.
    let same = rollback_json(repo.path(), &redis, &["--to", &s1]);
    assert_eq!(same["changed"], false);
    assert_eq!(current(&mut con, GOLDEN_PREFIX, "scoring").unwrap(), s1);

    // The history shows the original commit time and what the rollback did.
    let shown = listed(repo.path(), &redis, &s1);
    assert_eq!(shown["committed_at"], committed_s1, "{shown}");
    assert_eq!(shown["restored_from"], s2.as_str());
    assert!(shown["restored_at"].is_string());
    assert!(listed(repo.path(), &redis, &s2)["rolled_back_at"].is_string());

    // A newer run commits; rolling it back skips s2, which a rollback already left.
    let s3 = commit(repo.path(), &redis, &golden_end(2));
    let back = rollback_json(repo.path(), &redis, &[]);
    assert_eq!(
        (&back["from"], &back["to"]),
        (&s3.as_str().into(), &s1.as_str().into())
    );
    // Explicitly, s2 can still be served again.
    let explicit = rollback_json(repo.path(), &redis, &["--to", &s2]);
    assert_eq!(explicit["to"], s2.as_str());
    assert_eq!(current(&mut con, GOLDEN_PREFIX, "scoring").unwrap(), s2);
}

#[test]
fn a_failure_while_retiring_leaves_current_whole_and_gc_finishes() {
    let repo = golden_with(2, "1s");
    let redis = RedisServer::start();
    let mut admin = redis.con();
    let old = commit(repo.path(), &redis, &golden_end(0));
    commit(repo.path(), &redis, &golden_end(1));
    // `old` stopped being current more than a grace ago: the next commit deletes its keys...
    std::thread::sleep(Duration::from_millis(1100));
    // ...but this user may write and commit, not delete: retiring fails after the commit.
    let rules = "on >pw ~fst:* resetchannels -@all +get +set +mget +exists +zscore +zadd +zcard \
                 +zrange +zrem +zremrangebyrank +pexpire +pexpireat +pttl +scan +append +info +time \
                 +evalsha +script|load +ping";
    let mut acl = redis::cmd("ACL");
    acl.arg("SETUSER").arg("nodelete");
    for r in rules.split_whitespace() {
        acl.arg(r);
    }
    let _: () = acl.query(&mut admin).unwrap();
    let url = format!("redis://nodelete:pw@127.0.0.1:{}/0", redis.port);
    let run = fsctl_url(
        repo.path(),
        &url,
        &[
            "--format",
            "json",
            "materialize",
            "--service",
            "scoring",
            "--end",
            &golden_end(2),
        ],
    );
    run.ok();
    assert!(
        run.stderr.contains("retiring older snapshots failed"),
        "{}",
        run.stderr
    );
    let new = run.json()["services"][0]["snapshot"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(current(&mut admin, GOLDEN_PREFIX, "scoring").unwrap(), new);
    let old_keys = data_keys(&mut admin, &format!("fst:golden:scoring:{old}:"));
    assert!(!old_keys.is_empty(), "the old snapshot is still there");
    // gc, with the rights to do it, finishes the retirement.
    let gc = fsctl(repo.path(), Some(&redis), &["--format", "json", "gc"])
        .ok()
        .json();
    let scoring = gc["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "scoring")
        .unwrap();
    assert_eq!(scoring["snapshots"][0], old.as_str());
    assert_eq!(scoring["keys"], old_keys.len());
    assert_eq!(scoring["deleted"], old_keys.len());
    assert!(data_keys(&mut admin, &format!("fst:golden:scoring:{old}:")).is_empty());
    let committed = crate::harness::manifest(&mut admin, GOLDEN_PREFIX, "scoring");
    assert_eq!(
        data_keys(&mut admin, &format!("fst:golden:scoring:{new}:")).len() as u64,
        committed["keys_written"].as_u64().unwrap(),
        "current is whole"
    );
}

#[test]
fn a_run_that_cannot_fit_is_refused_before_writing() {
    let repo = banking_repo(20_000, 2);
    let redis = RedisServer::start();
    let mut con = redis.con();
    let run = |hours_ago: i64| {
        let end = hour_rfc3339(now_hour() - hours_ago);
        fsctl(
            repo.path(),
            Some(&redis),
            &[
                "--format",
                "json",
                "materialize",
                "--service",
                "realtime_scoring",
                "--end",
                &end,
            ],
        )
    };
    run(2).ok();
    // Room for connections and control keys, not for a second snapshot of ~6 MB.
    let before: usize = redis::cmd("DBSIZE").query(&mut con).unwrap();
    let limit = used_memory(&mut con) + 2_000_000;
    let set_limit = |con: &mut redis::Connection, bytes: i64| {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg(bytes)
            .query(con)
            .unwrap();
    };
    set_limit(&mut con, limit);
    let refused = run(1);
    set_limit(&mut con, 0);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let doc = refused.json();
    assert_eq!(doc["error"]["kind"], "capacity", "{doc}");
    assert_eq!(doc["error"]["max_bytes"], limit);
    assert!(
        refused.stderr.contains("nothing was written"),
        "{}",
        refused.stderr
    );
    let after: usize = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(after, before, "not a key was written");
    // Without the limit, the same run goes through.
    run(1).ok();
}

#[test]
fn a_reader_loop_never_sees_a_missing_key_or_a_foreign_fingerprint() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let repo = golden_with(2, "1s");
    let redis = RedisServer::start();
    commit(repo.path(), &redis, &golden_end(0));
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let reads = std::sync::Arc::new(AtomicU64::new(0));
    let reader = {
        let (stop, reads) = (stop.clone(), reads.clone());
        let definitions = fsctl::repo::Repo::load(repo.path()).unwrap();
        let url = redis.url();
        std::thread::spawn(move || -> Vec<String> {
            let client = FeatureClient::builder(&url, "golden")
                .key_prefix("fst")
                .retire_grace(definitions.retire_grace())
                .build()
                .unwrap();
            let entities = [Entity::from(1), Entity::from(2), Entity::from(3)];
            let mut problems = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                // Entities 1-3 have rows in every window of this test. The pointer is cached
                // for at most half the grace; every key of the snapshot it names must be there
                // (read pinned to that snapshot, so no re-resolving on a miss hides a key
                // retired too early).
                let pinned = match client.snapshot("scoring") {
                    Ok(p) => p,
                    Err(e) => {
                        problems.push(e.to_string());
                        continue;
                    }
                };
                let options = ReadOptions {
                    snapshot: Some(pinned.id.to_string()),
                    ..ReadOptions::default()
                };
                match client.get_many("scoring", &entities, &options) {
                    Ok(got) if got.iter().any(|v| !v.found) => {
                        problems.push(format!("a key missing from snapshot {}", pinned.id))
                    }
                    Ok(_) => {}
                    Err(e) => problems.push(e.to_string()),
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
            problems
        })
    };
    // Runs, each retiring the snapshot two back; a rollback; more runs.
    for h in 1..3 {
        commit(repo.path(), &redis, &golden_end(h));
    }
    fsctl(
        repo.path(),
        Some(&redis),
        &["rollback", "--service", "scoring"],
    )
    .ok();
    for h in 3..5 {
        commit(repo.path(), &redis, &golden_end(h));
    }
    let seen = reads.load(Ordering::Relaxed);
    wait_until("the reader read past the last commit", || {
        reads.load(Ordering::Relaxed) > seen + 100
    });
    stop.store(true, Ordering::Relaxed);
    let problems = reader.join().unwrap();
    assert!(problems.is_empty(), "{problems:?}");
}

/// The commands of a RESP stream, each as its arguments.
fn resp_commands(stream: &[u8]) -> Vec<Vec<&[u8]>> {
    fn line<'a>(stream: &'a [u8], at: &mut usize) -> &'a [u8] {
        let len = stream[*at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a line ends");
        let line = &stream[*at..*at + len];
        *at += len + 2;
        line
    }
    let number = |l: &[u8]| -> usize { std::str::from_utf8(&l[1..]).unwrap().parse().unwrap() };
    let mut at = 0;
    let mut out = Vec::new();
    while at < stream.len() {
        let head = line(stream, &mut at);
        assert_eq!(head[0], b'*');
        let args = (0..number(head))
            .map(|_| {
                let len = number(line(stream, &mut at));
                let arg = &stream[at..at + len];
                at += len + 2;
                arg
            })
            .collect();
        out.push(args);
    }
    out
}

#[test]
fn the_key_list_gives_back_the_entities_in_the_order_they_were_written() {
    // Retirement deletes in the key list's order, and the server deletes keys fastest in the
    // order it allocated them: the list's (sorted, compact) integer frames must decode into the
    // order the run wrote. That order is the emitted stream's: one partition after the other.
    let repo = banking_repo(3_000, 2);
    let redis = RedisServer::start();
    let mut con = redis.con();
    let end = hour_rfc3339(now_hour() - 1);
    let job = [
        "materialize",
        "--service",
        "realtime_scoring",
        "--partitions",
        "3",
        "--end",
        &end,
    ];
    let run = fsctl(
        repo.path(),
        Some(&redis),
        &[&["--format", "json"][..], &job].concat(),
    )
    .ok()
    .json();
    let snapshot = run["services"][0]["snapshot"].as_str().unwrap().to_owned();
    let list_key = format!("fs:banking:{{realtime_scoring}}:snapshot:{snapshot}:keys");
    let list: Vec<u8> = redis::cmd("GET").arg(&list_key).query(&mut con).unwrap();
    let listed: Vec<String> = fsctl::online::Entities::decode(&list, &list_key)
        .unwrap()
        .iter()
        .map(String::from)
        .collect();

    let stream = tempfile::NamedTempFile::new().unwrap();
    let stream_arg = stream.path().to_str().unwrap();
    fsctl(
        repo.path(),
        Some(&redis),
        &[&job[..], &["--emit-resp", stream_arg, "--force"]].concat(),
    )
    .ok();
    let bytes = std::fs::read(stream.path()).unwrap();
    let prefix = format!("fs:banking:realtime_scoring:{snapshot}:");
    let written: Vec<String> = resp_commands(&bytes)
        .into_iter()
        .filter(|c| c[0] == b"SET" && c[1].starts_with(prefix.as_bytes()))
        .map(|c| String::from_utf8(c[1][prefix.len()..].to_vec()).unwrap())
        .collect();
    assert_eq!(written.len(), 3_000);
    assert!(
        written
            .iter()
            .zip(written.iter().skip(1))
            .any(|(a, b)| { a.parse::<i64>().unwrap() > b.parse::<i64>().unwrap() }),
        "the run writes in hash order, not sorted"
    );
    assert_eq!(listed, written);
}
