//! `fsctl warm`: hot entities get the hot TTL, missing ones come back byte-identical, absent
//! ones are reported, popularity from scores or request logs ranks deterministically.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use parquet::arrow::ArrowWriter;

use crate::harness::*;

const AS_OF_MS: i64 = 1_763_856_000_000;
const PREFIX: &str = "fst:golden";
const DAY_MS: i64 = 86_400_000;

fn popularity(path: &Path, ids: &[i64], scores: Option<&[i64]>) {
    let mut cols: Vec<(&str, ArrayRef)> =
        vec![("customer_id", Arc::new(Int64Array::from(ids.to_vec())))];
    if let Some(s) = scores {
        cols.push(("requests", Arc::new(Int64Array::from(s.to_vec()))));
    }
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn expiry(con: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap()
}

fn warm(repo: &Path, redis: &RedisServer, file: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "--format",
        "json",
        "warm",
        "--service",
        "scoring",
        "--from",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    fsctl(repo, Some(redis), &args)
}

#[test]
fn top_entities_get_hot_expiries_and_missing_ones_return_identical() {
    let Committed {
        repo,
        redis,
        mut con,
        snapshot: snap,
    } = golden_committed("scoring");
    let key = |e: &str| format!("{PREFIX}:scoring:{snap}:{e}");
    let before: Vec<(String, Vec<u8>)> = data_keys(&mut con, &format!("{PREFIX}:scoring:{snap}:"));
    let expiries_before: Vec<i64> = before.iter().map(|(k, _)| expiry(&mut con, k)).collect();

    let file = repo.path().join("popularity.parquet");
    popularity(
        &file,
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 42],
        Some(&[70, 10, 90, 5, 5, 1, 100, 2, 3, 80]),
    );
    let doc = warm(
        repo.path(),
        &redis,
        &file,
        &["--top-n", "3", "--score-column", "requests"],
    )
    .ok()
    .json();
    let tier = &doc["services"][0]["tiers"][0];
    assert_eq!(
        (
            tier["requested"].as_u64(),
            tier["extended"].as_u64(),
            tier["absent"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(
        doc["services"][0]["absent_entities"],
        serde_json::json!(["42"])
    );

    // hot_ttl defaults to 2 x online_ttl (3650d), jitter 0.1.
    let hot = 2 * 3650 * DAY_MS;
    let (lo, hi) = (
        AS_OF_MS + (hot as f64 * 0.9) as i64,
        AS_OF_MS + (hot as f64 * 1.1) as i64,
    );
    for ((k, v), old_expiry) in before.iter().zip(&expiries_before) {
        let now: Vec<u8> = redis::cmd("GET").arg(k).query(&mut con).unwrap();
        assert_eq!(&now, v, "values never change: {k}");
        let e = expiry(&mut con, k);
        if k == &key("7") || k == &key("3") {
            assert!((lo..hi).contains(&e), "{k} has a hot expiry, got {e}");
        } else {
            assert_eq!(e, *old_expiry, "{k} keeps its expiry");
        }
    }

    // Hot keys that vanished come back byte-identical, with the hot TTL.
    let _: i64 = redis::cmd("DEL")
        .arg(key("7"))
        .arg(key("3"))
        .query(&mut con)
        .unwrap();
    let doc = warm(
        repo.path(),
        &redis,
        &file,
        &["--top-n", "3", "--score-column", "requests"],
    )
    .ok()
    .json();
    assert_eq!(doc["services"][0]["tiers"][0]["computed"], 2);
    for (k, v) in &before {
        if k == &key("7") || k == &key("3") {
            let now: Vec<u8> = redis::cmd("GET").arg(k).query(&mut con).unwrap();
            assert_eq!(&now, v, "{k} recomputed byte-identical");
            assert!((lo..hi).contains(&expiry(&mut con, k)));
        }
    }
    // The manifest outlives every warmed key.
    let m = expiry(&mut con, &format!("{PREFIX}:{{scoring}}:snapshot:{snap}"));
    assert!(m >= hi - 1, "manifest expiry {m} < {hi}");
}

#[test]
fn request_log_counts_and_ties_are_deterministic() {
    let Committed {
        repo,
        redis,
        mut con,
        snapshot: snap,
    } = golden_committed("scoring");
    let file = repo.path().join("requests.parquet");
    // 5 requested 3 times, 2 and 8 twice each (a tie: "2" sorts before "8"), 9 once.
    popularity(&file, &[5, 2, 8, 5, 9, 2, 8, 5], None);
    let run = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "--format",
            "json",
            "warm",
            "--service",
            "scoring",
            "--from",
            file.to_str().unwrap(),
            "--top-n",
            "3",
            "--tiers",
            "1,2",
        ],
    );
    let doc = run.ok().json();
    let tiers = doc["services"][0]["tiers"].as_array().unwrap();
    assert_eq!(tiers.len(), 3, "tiers 1, 2 and the rest");
    assert_eq!(
        tiers
            .iter()
            .map(|t| t["requested"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 1, 1]
    );
    // The ranking itself: warm only the first tier with a dry run and compare what it needs.
    for e in ["5", "2"] {
        let _: i64 = redis::cmd("DEL")
            .arg(format!("{PREFIX}:scoring:{snap}:{e}"))
            .query(&mut con)
            .unwrap();
    }
    let first = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "--format",
            "json",
            "warm",
            "--service",
            "scoring",
            "--from",
            file.to_str().unwrap(),
            "--top-n",
            "3",
            "--tiers",
            "2",
            "--first-tier-only",
            "--dry-run",
        ],
    );
    let doc = first.ok().json();
    let t = &doc["services"][0]["tiers"];
    assert_eq!(t.as_array().unwrap().len(), 1, "--first-tier-only");
    assert_eq!(
        t[0]["computed"], 2,
        "5 (3 requests) and 2 (wins the tie with 8) are the top two"
    );
    let size: i64 = redis::cmd("EXISTS")
        .arg(format!("{PREFIX}:scoring:{snap}:5"))
        .query(&mut con)
        .unwrap();
    assert_eq!(size, 0, "--dry-run writes nothing");
}

#[test]
fn warm_before_materialize_fails_clearly() {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    let file = repo.path().join("p.parquet");
    popularity(&file, &[1], Some(&[1]));
    let run = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "warm",
            "--service",
            "scoring",
            "--from",
            file.to_str().unwrap(),
            "--score-column",
            "requests",
            "--top-n",
            "5",
        ],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "service `scoring` has no committed snapshot (fst:golden:{scoring}:current is not set): \
             run `fsctl materialize` first"
        ),
        "{}",
        run.stderr
    );
    let bad = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "warm",
            "--from",
            file.to_str().unwrap(),
            "--score-column",
            "nope",
            "--top-n",
            "5",
        ],
    );
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("score column `nope` not found"),
        "{}",
        bad.stderr
    );
}
