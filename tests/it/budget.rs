//! `--memory-budget`: a run whose entities would not fit the budget in one partition reads in
//! as many as it needs and writes the same bytes.

use crate::faults::{big_repo, hour_rfc3339, now_hour};
use crate::harness::*;
use crate::shards::keyspace;

#[test]
fn a_run_under_a_small_memory_budget_writes_the_same_bytes_in_more_partitions() {
    let repo = big_repo(200_000);
    let end = hour_rfc3339(now_hour());
    let run = |redis: &RedisServer, extra: &[&str]| {
        let mut args = vec![
            "--format",
            "json",
            "-v",
            "materialize",
            "--service",
            "realtime_scoring",
            "--end",
            &end,
        ];
        args.extend_from_slice(extra);
        let run = fsctl(repo.path(), Some(redis), &args);
        run.ok();
        (run.json(), run.stderr)
    };
    let (whole, small) = (RedisServer::start(), RedisServer::start());
    let (one, _) = run(&whole, &["--partitions", "1"]);
    assert_eq!(one["services"][0]["partitions"], 1);
    // Before any snapshot exists the run is sized from its rows to read (600,000 transactions)
    // at 400 bytes each: about 230 MB in one partition, against a 100 MB budget.
    let (split, stderr) = run(&small, &["--memory-budget", "100M"]);
    let parts = split["services"][0]["partitions"].as_u64().unwrap();
    assert!(parts > 4, "{parts} partitions:\n{stderr}");
    assert!(
        stderr.contains("memory budget 100 MB (--memory-budget)"),
        "{stderr}"
    );
    let snapshot = one["services"][0]["snapshot"].as_str().unwrap();
    assert_eq!(split["services"][0]["snapshot"], snapshot);
    let data = format!("fs:banking:realtime_scoring:{snapshot}:");
    let want = keyspace(&mut whole.con(), &data);
    assert_eq!(want.len(), 200_000);
    assert!(keyspace(&mut small.con(), &data) == want);
    assert_eq!(
        split["services"][0]["bytes_written"],
        one["services"][0]["bytes_written"]
    );

    // Sized like the committed snapshot from then on (its entities and vector size).
    let (again, stderr) = run(&small, &["--memory-budget", "100M", "--force"]);
    assert!(stderr.contains("about 220000 entities of ~"), "{stderr}");
    assert_eq!(
        again["services"][0]["bytes_written"],
        one["services"][0]["bytes_written"]
    );
}
