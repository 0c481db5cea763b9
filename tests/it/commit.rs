//! The commit protocol: the pointer moves only after every write, a rerun is a no-op, --force
//! rewrites, a failed run leaves the old pointer, the lock keeps a second run out.

use crate::harness::*;

const PREFIX: &str = "fst:golden";
const END: &str = "2025-11-23T00:00:00Z";

fn set_calls(con: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_set:calls="))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

#[test]
fn rerun_is_a_noop_and_force_rewrites() {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    let mut con = redis.con();
    let first = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "--format",
            "json",
            "materialize",
            "--service",
            "scoring",
            "--end",
            END,
        ],
    );
    let snap = first.ok().json()["services"][0]["snapshot"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        current(&mut con, PREFIX, "scoring").as_deref(),
        Some(snap.as_str())
    );

    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .unwrap();
    let again = fsctl(
        repo.path(),
        Some(&redis),
        &["materialize", "--service", "scoring", "--end", END],
    );
    assert!(
        again
            .ok()
            .stdout
            .contains(&format!("snapshot {snap} is already committed")),
        "{}",
        again.stdout
    );
    assert_eq!(set_calls(&mut con), 0, "a no-op rerun writes no data keys");

    let forced = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "--format",
            "json",
            "materialize",
            "--service",
            "scoring",
            "--end",
            END,
            "--force",
        ],
    );
    let doc = forced.ok().json();
    assert_eq!(
        doc["services"][0]["snapshot"],
        snap.as_str(),
        "same inputs, same snapshot id"
    );
    assert_eq!(doc["services"][0]["status"], "committed");
    assert_eq!(
        set_calls(&mut con),
        1 + 9 + 2,
        "the lock, 9 vectors, then manifest and pointer"
    );
}

#[test]
fn a_new_window_commits_a_new_snapshot_and_keeps_history() {
    let Committed {
        repo,
        redis,
        mut con,
        snapshot: first,
    } = golden_committed("scoring");
    fsctl(
        repo.path(),
        Some(&redis),
        &[
            "materialize",
            "--service",
            "scoring",
            "--end",
            "2025-11-23T06:00:00Z",
        ],
    )
    .ok();
    let second = current(&mut con, PREFIX, "scoring").unwrap();
    assert_ne!(first, second);
    let history: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{PREFIX}:{{scoring}}:snapshots"))
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert_eq!(history, vec![first.clone(), second.clone()]);

    // Going back in time is refused unless forced.
    let back = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "materialize",
            "--service",
            "scoring",
            "--end",
            "2025-11-22T23:00:00Z",
        ],
    );
    assert_eq!(back.code, 1);
    assert!(
        back.stderr.contains("move serving back in time"),
        "{}",
        back.stderr
    );
    assert_eq!(current(&mut con, PREFIX, "scoring").unwrap(), second);
    fsctl(
        repo.path(),
        Some(&redis),
        &[
            "materialize",
            "--service",
            "scoring",
            "--end",
            "2025-11-22T23:00:00Z",
            "--force",
        ],
    )
    .ok();
    assert_ne!(current(&mut con, PREFIX, "scoring").unwrap(), second);
}

#[test]
fn failed_run_leaves_the_old_pointer() {
    let Committed {
        repo,
        redis,
        mut con,
        snapshot: before,
    } = golden_committed("scoring");
    // Redis fills up mid-run: every write after the limit fails with OOM.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query(&mut con)
        .unwrap();
    let run = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "materialize",
            "--service",
            "scoring",
            "--end",
            "2025-11-23T01:00:00Z",
        ],
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("0")
        .query(&mut con)
        .unwrap();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("out of memory"), "{}", run.stderr);
    assert!(
        run.stderr.contains("nothing was committed"),
        "{}",
        run.stderr
    );
    assert_eq!(current(&mut con, PREFIX, "scoring").unwrap(), before);
    let lock: Option<String> = redis::cmd("GET")
        .arg(format!("{PREFIX}:{{scoring}}:lock"))
        .query(&mut con)
        .unwrap();
    assert_eq!(lock, None, "the lock is released after a failure");
    // The rerun completes.
    fsctl(
        repo.path(),
        Some(&redis),
        &[
            "materialize",
            "--service",
            "scoring",
            "--end",
            "2025-11-23T01:00:00Z",
        ],
    )
    .ok();
    assert_ne!(current(&mut con, PREFIX, "scoring").unwrap(), before);
}

#[test]
fn lock_keeps_a_second_run_out_and_names_the_holder() {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    let mut con = redis.con();
    let lock = format!("{PREFIX}:{{scoring}}:lock");
    let _: () = redis::cmd("SET")
        .arg(&lock)
        .arg("etl-host-7:pid42:1")
        .arg("PX")
        .arg(60_000)
        .query(&mut con)
        .unwrap();
    let run = fsctl(
        repo.path(),
        Some(&redis),
        &["materialize", "--service", "scoring", "--end", END],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("held by etl-host-7:pid42:1"),
        "{}",
        run.stderr
    );
    assert_eq!(current(&mut con, PREFIX, "scoring"), None);

    // A holder whose lease runs out while we wait: --wait-lock gets through.
    let _: () = redis::cmd("PEXPIRE")
        .arg(&lock)
        .arg(800)
        .query(&mut con)
        .unwrap();
    fsctl(
        repo.path(),
        Some(&redis),
        &[
            "materialize",
            "--service",
            "scoring",
            "--end",
            END,
            "--wait-lock",
            "10s",
        ],
    )
    .ok();
    assert!(current(&mut con, PREFIX, "scoring").is_some());
}

#[test]
fn dry_run_writes_nothing_and_emit_resp_replays_into_redis() {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    let mut con = redis.con();
    let dry = fsctl(
        repo.path(),
        Some(&redis),
        &["--format", "json", "materialize", "--end", END, "--dry-run"],
    );
    assert_eq!(dry.ok().json()["services"][0]["entities"], 9);
    let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(size, 0, "dry run writes nothing");

    let resp = repo.path().join("stream.resp");
    let resp_arg = resp.to_str().unwrap();
    fsctl(
        repo.path(),
        Some(&redis),
        &[
            "materialize",
            "--service",
            "scoring",
            "--end",
            END,
            "--emit-resp",
            resp_arg,
        ],
    )
    .ok();
    let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(size, 0, "--emit-resp writes to the file, not to Redis");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("redis-cli -p {} --pipe < {resp_arg}", redis.port))
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
    // The replayed stream is a committed snapshot that reads like a live run's.
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
    );
    assert_eq!(got.ok().json()["values"]["profile.age"], 31);
}
