//! `fsctl warm`: hot entities get the hot TTL, missing ones come back byte-identical, absent
//! ones are reported, popularity from scores or request logs ranks deterministically.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
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
            tier["present"].as_u64(),
            tier["extended"].as_u64(),
            tier["absent"].as_u64()
        ),
        (Some(3), Some(2), Some(2), Some(1))
    );
    assert_eq!(doc["services"][0]["warnings"], serde_json::json!([]));
    assert_eq!(
        doc["services"][0]["absent_entities"],
        serde_json::json!(["42"])
    );

    // hot_ttl defaults to 2 x online_ttl (3650d), jitter 0.1.
    let hot = 2 * 3650 * DAY_MS;
    let (lo, hi) = (AS_OF_MS + hot, AS_OF_MS + (hot as f64 * 1.1) as i64);
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

    // Warming again moves nothing: the two present keys already expire that late.
    let again = warm(
        repo.path(),
        &redis,
        &file,
        &["--top-n", "3", "--score-column", "requests"],
    )
    .ok()
    .json();
    let tier = &again["services"][0]["tiers"][0];
    assert_eq!(
        (tier["present"].as_u64(), tier["extended"].as_u64()),
        (Some(2), Some(0))
    );

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
fn a_hot_ttl_no_longer_than_online_ttl_extends_nothing_and_says_so() {
    let Committed {
        repo,
        redis,
        mut con,
        snapshot: snap,
    } = golden_committed("scoring");
    edit_yaml(
        repo.path(),
        "    online_ttl: 3650d\n",
        "    online_ttl: 3650d\n    hot_ttl: 1000d\n",
    );
    let key = format!("{PREFIX}:scoring:{snap}:7");
    let before = expiry(&mut con, &key);
    let file = repo.path().join("popularity.parquet");
    popularity(&file, &[7, 3], Some(&[2, 1]));
    let run = warm(
        repo.path(),
        &redis,
        &file,
        &["--top-n", "2", "--score-column", "requests"],
    );
    let doc = run.ok().json();
    let tier = &doc["services"][0]["tiers"][0];
    assert_eq!(
        (tier["present"].as_u64(), tier["extended"].as_u64()),
        (Some(2), Some(0))
    );
    let warning = doc["services"][0]["warnings"][0]
        .as_str()
        .unwrap_or_default();
    assert!(
        warning.contains("hot_ttl 1000d is not longer than online_ttl 3650d"),
        "{doc}"
    );
    assert_eq!(
        expiry(&mut con, &key),
        before,
        "the expiry is left as it was"
    );
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

/// Recomputing reads only the wanted entities' rows (a first pass over the key columns picks
/// them): every entity of both golden services, all keys deleted, comes back byte-identical,
/// every tie rule and the composite keys included.
#[test]
fn recomputing_every_entity_gives_back_the_exact_bytes() {
    for service in ["scoring", "balances"] {
        let Committed {
            repo,
            redis,
            mut con,
            snapshot,
        } = golden_committed(service);
        let prefix = format!("{PREFIX}:{service}:{snapshot}:");
        let before = data_keys(&mut con, &prefix);
        assert!(!before.is_empty());
        // Every entity of the snapshot, from its keys, as a request log (one row per entity).
        let rendered: Vec<&str> = before.iter().map(|(k, _)| &k[prefix.len()..]).collect();
        let columns: Vec<(&str, ArrayRef)> = if service == "scoring" {
            let ids: Vec<i64> = rendered.iter().map(|e| e.parse().unwrap()).collect();
            vec![("customer_id", Arc::new(Int64Array::from(ids)))]
        } else {
            // `bank:account_no`, the bank escaped (`\:` and `\\`); the number has no colon.
            let (banks, numbers): (Vec<String>, Vec<i64>) = rendered
                .iter()
                .map(|e| {
                    let (bank, number) = e.rsplit_once(':').unwrap();
                    let bank = bank.replace("\\:", ":").replace("\\\\", "\\");
                    (bank, number.parse::<i64>().unwrap())
                })
                .unzip();
            vec![
                ("bank", Arc::new(StringArray::from(banks))),
                ("account_no", Arc::new(Int64Array::from(numbers))),
            ]
        };
        let file = repo.path().join("everyone.parquet");
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(&file).unwrap(), batch.schema(), None)
                .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        for (k, _) in &before {
            let _: i64 = redis::cmd("DEL").arg(k).query(&mut con).unwrap();
        }
        let doc = fsctl(
            repo.path(),
            Some(&redis),
            &[
                "--format",
                "json",
                "warm",
                "--service",
                service,
                "--from",
                file.to_str().unwrap(),
                "--top-n",
                "1000",
            ],
        )
        .ok()
        .json();
        let computed: u64 = doc["services"][0]["tiers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["computed"].as_u64().unwrap())
            .sum();
        assert_eq!(computed as usize, before.len(), "{service}: {doc}");
        for (k, v) in &before {
            let now: Vec<u8> = redis::cmd("GET").arg(k).query(&mut con).unwrap();
            assert_eq!(&now, v, "{k} recomputed byte-identical");
        }
    }
}

/// Rows of one file that tie on event and created time: the last in the file wins, also when
/// `warm` reads only the picked rows (their positions in the file decide, not in the pick).
#[test]
fn recomputed_ties_inside_one_file_keep_the_last_row() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir(repo.path().join("data")).unwrap();
    let ts = AS_OF_MS * 1000 - 1;
    write_parquet(
        &repo.path().join("data/events.parquet"),
        vec![
            ("id", Arc::new(Int64Array::from(vec![2, 1, 2, 1, 3, 1]))),
            (
                "event_timestamp",
                Arc::new(
                    arrow::array::TimestampMicrosecondArray::from(vec![ts; 6]).with_timezone("UTC"),
                ),
            ),
            (
                "clicks",
                Arc::new(Int64Array::from(vec![20, 11, 21, 12, 30, 13])),
            ),
        ],
    );
    std::fs::write(
        repo.path().join("feature_store.yaml"),
        "project: ties\nonline_store:\n  type: redis\n  url: redis://127.0.0.1:1/0\n\
         entities:\n  - name: user\n    join_keys: [{name: id, dtype: int64}]\n\
         sources:\n  - name: events\n    path: data/events.parquet\n    \
         timestamp_field: event_timestamp\n\
         feature_views:\n  - name: activity\n    entities: [user]\n    source: events\n    \
         ttl: 1d\n    features:\n      - {name: clicks, dtype: int64}\n\
         feature_services:\n  - name: svc\n    features: [activity]\n    online_ttl: 3650d\n",
    )
    .unwrap();
    let redis = RedisServer::start();
    let end = "2025-11-23T00:00:00Z";
    fsctl(repo.path(), Some(&redis), &["materialize", "--end", end]).ok();
    let mut con = redis.con();
    let snapshot = current(&mut con, "fs:ties", "svc").unwrap();
    let key = format!("fs:ties:svc:{snapshot}:1");
    let before: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
    let values = fsctl::vector::decode(&before).unwrap().values;
    assert_eq!(values, [fsctl::vector::Value::Int(13)]);
    let _: i64 = redis::cmd("DEL").arg(&key).query(&mut con).unwrap();
    let file = repo.path().join("popularity.parquet");
    write_parquet(&file, vec![("id", Arc::new(Int64Array::from(vec![1])))]);
    let from = file.to_str().unwrap();
    let args = ["warm", "--service", "svc", "--from", from, "--top-n", "1"];
    fsctl(repo.path(), Some(&redis), &args).ok();
    let after: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
    assert_eq!(after, before);
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

#[test]
fn a_misspelled_score_column_is_named_with_a_suggestion() {
    let Committed { repo, redis, .. } = golden_committed("scoring");
    let file = repo.path().join("popularity.parquet");
    popularity(&file, &[7, 3], Some(&[2, 1]));
    let run = warm(
        repo.path(),
        &redis,
        &file,
        &["--top-n", "2", "--score-column", "requets"],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    let message = run.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("score column `requets` not found (did you mean `requests`?)")
            && message.contains("the file has: customer_id, requests"),
        "{message}"
    );
}
