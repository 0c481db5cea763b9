//! Sharded runs (SPEC §3.3) against a real redis-server: N shard processes plus one commit write
//! exactly what one unsharded run writes, a missing or foreign shard blocks the commit naming it,
//! the quality gate runs on the totals, and a killed shard's rerun completes the job.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::faults::{big_repo, hour_rfc3339, now_hour};
use crate::harness::*;

/// Every key under `prefix` with its value and absolute expiry (ms), read in pipelines.
pub(crate) fn keyspace(
    con: &mut redis::Connection,
    prefix: &str,
) -> BTreeMap<String, (Vec<u8>, i64)> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(con)
        .unwrap();
    keys.sort();
    let mut out = BTreeMap::new();
    for chunk in keys.chunks(2000) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.cmd("GET").arg(k).cmd("PEXPIRETIME").arg(k);
        }
        let replies: Vec<redis::Value> = pipe.query(con).unwrap();
        for (k, pair) in chunk.iter().zip(replies.chunks(2)) {
            let value: Vec<u8> = redis::from_redis_value(pair[0].clone()).unwrap();
            let at: i64 = redis::from_redis_value(pair[1].clone()).unwrap();
            out.insert(k.clone(), (value, at));
        }
    }
    out
}

/// The figures of a manifest that a sharded commit must reproduce.
fn totals(m: &serde_json::Value) -> serde_json::Value {
    let mut t = serde_json::Map::new();
    for field in [
        "snapshot",
        "fingerprint",
        "window",
        "as_of",
        "entities",
        "keys_written",
        "bytes_written",
        "null_entity_rows",
        "imputed",
        "nulls",
        "absent",
        "sources",
        "schema",
        "ttl",
        "views",
    ] {
        t.insert(field.into(), m[field].clone());
    }
    serde_json::Value::Object(t)
}

fn run_ok(repo: &Path, redis: &RedisServer, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    fsctl(repo, Some(redis), &all).ok().json()
}

/// Runs `examples/airflow/materialize_sharded.sh` (N shard processes through `xargs -P`, then
/// the commit) against `redis`.
fn sharded_script(repo: &Path, redis: &RedisServer, end: &str, shards: u32, extra: &[&str]) {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/airflow/materialize_sharded.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(end)
        .arg(shards.to_string())
        .arg("--")
        .arg("--repo")
        .arg(repo)
        .args(extra)
        .env("FSCTL", env!("CARGO_BIN_EXE_fsctl"))
        .env("FSCTL_REDIS_URL", redis.url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the sharded script failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the job once unsharded and once as `shards` shards through the example script; every
/// service's keys, values, expiries and manifest totals must be the same.
fn same_as_unsharded(repo: &Path, prefix: &str, services: &[&str], end: &str, shards: u32) {
    let (whole, sharded) = (RedisServer::start(), RedisServer::start());
    run_ok(repo, &whole, &["materialize", "--end", end]);
    sharded_script(repo, &sharded, end, shards, &[]);
    let (mut a, mut b) = (whole.con(), sharded.con());
    for service in services {
        let snapshot = current(&mut a, prefix, service).expect("committed");
        assert_eq!(current(&mut b, prefix, service).as_ref(), Some(&snapshot));
        let data = format!("{prefix}:{service}:{snapshot}:");
        let (want, got) = (keyspace(&mut a, &data), keyspace(&mut b, &data));
        assert!(!want.is_empty());
        assert_eq!(got.len(), want.len(), "{service}: key count");
        assert!(got == want, "{service}: keys, values or expiries differ");
        let (mw, mg) = (
            manifest(&mut a, prefix, service),
            manifest(&mut b, prefix, service),
        );
        assert_eq!(totals(&mg), totals(&mw), "{service}: manifest totals");
        assert_eq!(mg["entities"].as_u64(), Some(want.len() as u64));
    }
    // The shards' manifests add up to the commit's, and the entities are spread over them.
    for service in services {
        let snapshot = current(&mut b, prefix, service).unwrap();
        let mut counts = Vec::new();
        for i in 0..shards {
            let raw: String = redis::cmd("GET")
                .arg(format!(
                    "{prefix}:{{{service}}}:snapshot:{snapshot}:shard:{i}"
                ))
                .query(&mut b)
                .unwrap();
            let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
            assert_eq!(
                (m["shard"].as_u64(), m["shards"].as_u64()),
                (Some(i.into()), Some(shards.into()))
            );
            counts.push(m["entities"].as_u64().unwrap());
        }
        let total = manifest(&mut b, prefix, service)["entities"]
            .as_u64()
            .unwrap();
        assert_eq!(counts.iter().sum::<u64>(), total, "{service}: {counts:?}");
        assert!(
            counts.iter().filter(|&&n| n > 0).count() >= 2,
            "{service}: {counts:?}"
        );
        if total >= 1000 {
            let even = total as f64 / f64::from(shards);
            assert!(
                counts.iter().all(|&n| (n as f64 - even).abs() < even * 0.1),
                "{service}: {counts:?}"
            );
        }
    }
}

#[test]
fn shards_and_one_commit_write_what_one_run_writes_golden() {
    // Both golden services: integer and composite string keys, ties, multi-file sources and
    // field mappings.
    let repo = scratch_repo("golden");
    same_as_unsharded(
        repo.path(),
        GOLDEN_PREFIX,
        &["scoring", "balances"],
        GOLDEN_END,
        3,
    );
}

#[test]
fn four_shard_processes_and_a_commit_write_what_one_run_writes() {
    let repo = big_repo(200_000);
    let end = hour_rfc3339(now_hour());
    same_as_unsharded(repo.path(), "fs:banking", &["realtime_scoring"], &end, 4);
}

#[test]
fn a_missing_foreign_or_miscounted_shard_blocks_the_commit_naming_it() {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    let mut con = redis.con();
    let later = "2025-11-23T01:00:00Z";
    let shard = |i: &str, end: &str| {
        run_ok(
            repo.path(),
            &redis,
            &[
                "materialize",
                "--service",
                "scoring",
                "--end",
                end,
                "--shard",
                i,
            ],
        )
    };
    let first = shard("0/3", GOLDEN_END);
    assert_eq!(first["services"][0]["status"], "shard_recorded");
    let snapshot = first["services"][0]["snapshot"]
        .as_str()
        .unwrap()
        .to_owned();
    shard("1/2", GOLDEN_END); // the wrong count
    shard("2/3", later); // another window
    let commit = |extra: &[&str]| {
        let mut args = vec![
            "--format",
            "json",
            "commit",
            "--service",
            "scoring",
            "--end",
            GOLDEN_END,
            "--shards",
            "3",
        ];
        args.extend_from_slice(extra);
        fsctl(repo.path(), Some(&redis), &args)
    };
    let refused = commit(&[]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let err = &refused.json()["error"];
    assert_eq!(err["kind"], "shards_incomplete");
    assert_eq!(err["snapshot"], snapshot.as_str());
    let problems: Vec<&str> = err["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("shard 1 was run as shard 1/2") && problems[0].contains("--shard 1/3"),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("shard 2/3 has not recorded snapshot")
            && problems[1].contains("instead"),
        "{problems:?}"
    );
    assert!(refused.stderr.contains("shard 2/3"), "{}", refused.stderr);
    assert_eq!(
        current(&mut con, GOLDEN_PREFIX, "scoring"),
        None,
        "nothing committed"
    );

    // A shard not run at all is named too.
    let none = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "commit",
            "--service",
            "scoring",
            "--end",
            GOLDEN_END,
            "--shards",
            "4",
        ],
    );
    assert_eq!(none.code, 1);
    assert!(
        none.stderr.contains("shard 3/4 has not recorded snapshot")
            && none.stderr.contains("has not run"),
        "{}",
        none.stderr
    );

    // Rerunning the two shards right completes the job; a recorded shard's rerun is a no-op.
    shard("1/3", GOLDEN_END);
    shard("2/3", GOLDEN_END);
    let again = shard("0/3", GOLDEN_END);
    assert_eq!(again["services"][0]["status"], "already_recorded");
    let done = commit(&[]).ok().json();
    assert_eq!(done["services"][0]["status"], "committed");
    assert_eq!(
        current(&mut con, GOLDEN_PREFIX, "scoring").as_deref(),
        Some(snapshot.as_str())
    );
    assert_eq!(
        commit(&[]).ok().json()["services"][0]["status"],
        "already_committed"
    );

    // The same vectors as an unsharded run.
    let whole = RedisServer::start();
    run_ok(
        repo.path(),
        &whole,
        &["materialize", "--service", "scoring", "--end", GOLDEN_END],
    );
    let data = format!("{GOLDEN_PREFIX}:scoring:{snapshot}:");
    assert!(keyspace(&mut con, &data) == keyspace(&mut whole.con(), &data));
}

#[test]
fn the_quality_gate_runs_on_the_totals_of_the_shards() {
    let repo = big_repo(200_000);
    let end = hour_rfc3339(now_hour());
    // No shard alone has 150,000 customers; all four together have 200,000.
    edit_yaml(
        repo.path(),
        "checks: {min_entities: 10}",
        "checks: {min_entities: 150000}",
    );
    let redis = RedisServer::start();
    sharded_script(
        repo.path(),
        &redis,
        &end,
        4,
        &["--service", "realtime_scoring"],
    );
    let mut con = redis.con();
    let m = manifest(&mut con, "fs:banking", "realtime_scoring");
    assert_eq!(m["entities"].as_u64(), Some(200_000));
    assert_eq!(m["checks_skipped"], false);

    // One more than all of them have: refused on the totals, naming the check; nothing flips.
    let before = current(&mut con, "fs:banking", "realtime_scoring");
    let risk = m["sources"]["risk_signals"]["entities"].as_u64().unwrap();
    assert!(risk > 150_000);
    edit_yaml(
        repo.path(),
        "checks: {min_entities: 150000}",
        &format!("checks: {{min_entities: {}}}", risk + 1),
    );
    let later = hour_rfc3339(now_hour() + 1);
    for i in 0..4 {
        let shard = format!("{i}/4");
        run_ok(
            repo.path(),
            &redis,
            &[
                "materialize",
                "--service",
                "realtime_scoring",
                "--end",
                &later,
                "--shard",
                &shard,
                "--allow-future-end",
            ],
        );
    }
    let refused = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "commit",
            "--service",
            "realtime_scoring",
            "--end",
            &later,
            "--shards",
            "4",
            "--allow-future-end",
        ],
    );
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "risk_signals: {risk} entities is below the limit {} (min_entities)",
            risk + 1
        )),
        "{}",
        refused.stderr
    );
    assert_eq!(current(&mut con, "fs:banking", "realtime_scoring"), before);
    // The shards' data stays: --skip-checks commits it without rerunning them.
    let forced = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "--format",
            "json",
            "commit",
            "--service",
            "realtime_scoring",
            "--end",
            &later,
            "--shards",
            "4",
            "--allow-future-end",
            "--skip-checks",
        ],
    )
    .ok()
    .json();
    assert_eq!(forced["services"][0]["entities"].as_u64(), Some(200_000));
    let m = manifest(&mut con, "fs:banking", "realtime_scoring");
    assert_eq!(m["checks_skipped"], true);
}

#[test]
fn gc_leaves_a_sharded_run_for_its_commit_and_retires_it_once_superseded() {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    let mut con = redis.con();
    let shard0 = run_ok(
        repo.path(),
        &redis,
        &[
            "materialize",
            "--service",
            "scoring",
            "--end",
            GOLDEN_END,
            "--shard",
            "0/2",
        ],
    );
    let snapshot = shard0["services"][0]["snapshot"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = format!("{GOLDEN_PREFIX}:scoring:{snapshot}:");
    let written = keyspace(&mut con, &data);
    assert!(!written.is_empty());
    run_ok(repo.path(), &redis, &["gc"]);
    assert!(
        keyspace(&mut con, &data) == written,
        "gc must not retire a sharded run that can still commit"
    );

    // With --commit-when-complete the last shard commits.
    let last = run_ok(
        repo.path(),
        &redis,
        &[
            "materialize",
            "--service",
            "scoring",
            "--end",
            GOLDEN_END,
            "--shard",
            "1/2",
            "--commit-when-complete",
        ],
    );
    assert_eq!(last["services"][0]["status"], "committed");
    assert_eq!(
        current(&mut con, GOLDEN_PREFIX, "scoring").as_deref(),
        Some(snapshot.as_str())
    );

    // An abandoned sharded run of a later window is protected until a newer snapshot commits.
    let later = "2025-11-23T01:00:00Z";
    let latest = "2025-11-23T02:00:00Z";
    let abandoned = run_ok(
        repo.path(),
        &redis,
        &[
            "materialize",
            "--service",
            "scoring",
            "--end",
            later,
            "--shard",
            "1/2",
            "--commit-when-complete",
        ],
    );
    assert_eq!(abandoned["services"][0]["status"], "shard_recorded");
    assert_eq!(
        abandoned["services"][0]["missing_shards"],
        serde_json::json!([0])
    );
    let leftover = format!(
        "{GOLDEN_PREFIX}:scoring:{}:",
        abandoned["services"][0]["snapshot"].as_str().unwrap()
    );
    assert!(!keyspace(&mut con, &leftover).is_empty());
    run_ok(repo.path(), &redis, &["gc"]);
    assert!(!keyspace(&mut con, &leftover).is_empty());
    run_ok(
        repo.path(),
        &redis,
        &["materialize", "--service", "scoring", "--end", latest],
    );
    assert!(
        keyspace(&mut con, &leftover).is_empty(),
        "retired by the next commit"
    );
    // Its shard manifest went with its data, so no shard of it counts as recorded any more.
    let shard_key = format!(
        "{GOLDEN_PREFIX}:{{scoring}}:snapshot:{}:shard:1",
        abandoned["services"][0]["snapshot"].as_str().unwrap()
    );
    let exists: bool = redis::cmd("EXISTS")
        .arg(&shard_key)
        .query(&mut con)
        .unwrap();
    assert!(!exists, "{shard_key} outlived its data");
    let sharded: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{GOLDEN_PREFIX}:{{scoring}}:sharded"))
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert!(sharded.is_empty(), "{sharded:?}");
}

#[test]
fn a_refused_unsharded_run_of_the_same_job_leaves_the_shards_data() {
    // An unsharded run of the same window names the same snapshot and shares its key list; when
    // the quality gate refuses it, it must not take back the keys the shards wrote.
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    let mut con = redis.con();
    for shard in ["0/2", "1/2"] {
        run_ok(
            repo.path(),
            &redis,
            &[
                "materialize",
                "--service",
                "scoring",
                "--end",
                GOLDEN_END,
                "--shard",
                shard,
            ],
        );
    }
    edit_yaml(
        repo.path(),
        "    source: txn_src\n",
        "    source: txn_src\n    checks: {min_entities: 100000}\n",
    );
    let refused = fsctl(
        repo.path(),
        Some(&redis),
        &["materialize", "--service", "scoring", "--end", GOLDEN_END],
    );
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("min_entities"),
        "{}",
        refused.stderr
    );
    let done = run_ok(
        repo.path(),
        &redis,
        &[
            "commit",
            "--service",
            "scoring",
            "--end",
            GOLDEN_END,
            "--shards",
            "2",
            "--skip-checks",
        ],
    );
    let snapshot = done["services"][0]["snapshot"].as_str().unwrap();
    let whole = RedisServer::start();
    run_ok(
        repo.path(),
        &whole,
        &[
            "materialize",
            "--service",
            "scoring",
            "--end",
            GOLDEN_END,
            "--skip-checks",
        ],
    );
    let data = format!("{GOLDEN_PREFIX}:scoring:{snapshot}:");
    let got = keyspace(&mut con, &data);
    assert!(!got.is_empty());
    assert!(got == keyspace(&mut whole.con(), &data));
}

#[test]
fn a_killed_shard_rerun_completes_the_job() {
    let repo = big_repo(200_000);
    let redis = RedisServer::start();
    let mut con = redis.con();
    let end = hour_rfc3339(now_hour());
    let args = |shard: &str| -> Vec<String> {
        [
            "materialize",
            "--service",
            "realtime_scoring",
            "--end",
            &end,
            "--shard",
            shard,
            "--partitions",
            "4",
        ]
        .map(String::from)
        .to_vec()
    };
    run_ok(
        repo.path(),
        &redis,
        &args("0/2").iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let snapshot = {
        let raw: Vec<String> = redis::cmd("ZRANGE")
            .arg("fs:banking:{realtime_scoring}:sharded")
            .arg(0)
            .arg(-1)
            .query(&mut con)
            .unwrap();
        raw[0].clone()
    };
    let data = format!("fs:banking:realtime_scoring:{snapshot}:");
    let shard0 = keyspace(&mut con, &data).len();
    // Kill shard 1 once its keys are landing.
    let mut child = fsctl_command(
        repo.path(),
        &redis.url(),
        &args("1/2").iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    wait_for(|| {
        let n: usize = redis::cmd("DBSIZE").query(&mut con).unwrap();
        n > shard0 + 1000
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let shard1_key = format!("fs:banking:{{realtime_scoring}}:snapshot:{snapshot}:shard:1");
    let recorded: bool = redis::cmd("EXISTS")
        .arg(&shard1_key)
        .query(&mut con)
        .unwrap();
    assert!(!recorded, "killed before it recorded its manifest");
    let refused = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "commit",
            "--end",
            &end,
            "--shards",
            "2",
            "--service",
            "realtime_scoring",
        ],
    );
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .contains("shard 1/2 has not recorded snapshot"),
        "{}",
        refused.stderr
    );

    run_ok(
        repo.path(),
        &redis,
        &args("1/2").iter().map(String::as_str).collect::<Vec<_>>(),
    );
    run_ok(
        repo.path(),
        &redis,
        &[
            "commit",
            "--end",
            &end,
            "--shards",
            "2",
            "--service",
            "realtime_scoring",
        ],
    );
    assert_eq!(
        current(&mut con, "fs:banking", "realtime_scoring").as_deref(),
        Some(snapshot.as_str())
    );
    let whole = RedisServer::start();
    run_ok(
        repo.path(),
        &whole,
        &[
            "materialize",
            "--service",
            "realtime_scoring",
            "--end",
            &end,
        ],
    );
    let (got, want) = (keyspace(&mut con, &data), keyspace(&mut whole.con(), &data));
    assert_eq!(got.len(), 200_000);
    assert!(got == want);
}

#[test]
fn shard_auto_takes_its_index_from_job_completion_index() {
    let repo = scratch_repo("golden");
    let (whole, sharded) = (RedisServer::start(), RedisServer::start());
    run_ok(repo.path(), &whole, &["materialize", "--end", GOLDEN_END]);
    let auto = |index: Option<&str>| {
        let mut cmd = fsctl_command(
            repo.path(),
            &sharded.url(),
            &[
                "--format",
                "json",
                "materialize",
                "--end",
                GOLDEN_END,
                "--shard",
                "auto/3",
            ],
        );
        cmd.env_remove("JOB_COMPLETION_INDEX");
        if let Some(i) = index {
            cmd.env("JOB_COMPLETION_INDEX", i);
        }
        cmd.output().unwrap()
    };
    // As an Indexed Job of 3 completions runs it.
    for i in 0..3 {
        let out = auto(Some(&i.to_string()));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["services"][0]["shard"]["index"], i, "{doc}");
    }
    run_ok(
        repo.path(),
        &sharded,
        &["commit", "--end", GOLDEN_END, "--shards", "3"],
    );
    let (mut a, mut b) = (whole.con(), sharded.con());
    for service in ["scoring", "balances"] {
        let snapshot = current(&mut a, GOLDEN_PREFIX, service).expect("committed");
        assert_eq!(
            current(&mut b, GOLDEN_PREFIX, service),
            Some(snapshot.clone())
        );
        let data = format!("{GOLDEN_PREFIX}:{service}:{snapshot}:");
        let want = keyspace(&mut a, &data);
        assert!(!want.is_empty());
        assert!(
            keyspace(&mut b, &data) == want,
            "{service}: keys, values or expiries differ"
        );
    }
    // Without the variable, or with an index the count cannot hold: a usage error naming it.
    for (index, needle) in [
        (None, "JOB_COMPLETION_INDEX"),
        (Some("3"), "completions must equal N"),
    ] {
        let out = auto(index);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{needle}"
        );
    }
}

#[test]
fn shards_of_different_fsctl_versions_are_not_committed() {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    let mut con = redis.con();
    let mut snapshot = String::new();
    for i in 0..2 {
        let shard = format!("{i}/2");
        let doc = run_ok(
            repo.path(),
            &redis,
            &[
                "materialize",
                "--service",
                "scoring",
                "--end",
                GOLDEN_END,
                "--shard",
                &shard,
            ],
        );
        snapshot = doc["services"][0]["snapshot"].as_str().unwrap().to_owned();
    }
    // Shard 1 as an older fsctl would have recorded it.
    let key = format!("{GOLDEN_PREFIX}:{{scoring}}:snapshot:{snapshot}:shard:1");
    let raw: String = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&raw).unwrap();
    m["fsctl_version"] = "0.0.9".into();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(m.to_string())
        .arg("KEEPTTL")
        .query(&mut con)
        .unwrap();
    let refused = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "commit",
            "--service",
            "scoring",
            "--end",
            GOLDEN_END,
            "--shards",
            "2",
        ],
    );
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("the shards ran different fsctl versions")
            && refused.stderr.contains("1 ran 0.0.9"),
        "{}",
        refused.stderr
    );
    assert_eq!(current(&mut con, GOLDEN_PREFIX, "scoring"), None);
}
