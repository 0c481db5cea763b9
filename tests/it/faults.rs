//! Faults: Redis killed mid-write, connections reset mid-run. Nothing half-committed, and a
//! rerun completes the job with the same snapshot id.

use std::time::Duration;

use crate::harness::*;

/// A repo big enough that writing takes a while (generated with the project's datagen).
fn big_repo(entities: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("../feature_repo/feature_store.yaml"),
        dir.path().join("feature_store.yaml"),
    )
    .unwrap();
    let status = std::process::Command::new(env!("CARGO"))
        .args([
            "run",
            "-q",
            "--release",
            "--example",
            "datagen",
            "--",
            "banking",
        ])
        .arg(dir.path())
        .args([
            "--entities",
            &entities.to_string(),
            "--anchor-hour",
            &(now_hour()).to_string(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn now_hour() -> i64 {
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
    let child = fsctl_command(repo.path(), &redis.url(), &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until data keys are landing, then kill the server under the writer.
    let mut con = redis.con();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap_or(0);
        if n > 1000 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
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
    let child = fsctl_command(repo.path(), &redis.url(), &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut con = redis.con();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
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
fn hour_rfc3339(hour: i64) -> String {
    fsctl::time::format_us(hour * 3_600_000_000)
}
