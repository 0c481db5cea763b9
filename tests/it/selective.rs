//! Row-selective reading (`--scan selective`): the latest row per entity picked from the key and
//! time columns, then only those rows decoded, gives byte-identical vectors to the single pass,
//! with every tie rule, multi-file sources, field mappings and window pruning.

use crate::harness::*;
use crate::shards::keyspace;

fn snapshot_keys(
    repo: &std::path::Path,
    args: &[&str],
    prefix: &str,
    services: &[&str],
) -> Vec<serde_json::Value> {
    let redis = RedisServer::start();
    let mut all = vec!["--format", "json", "materialize"];
    all.extend_from_slice(args);
    let done = fsctl(repo, Some(&redis), &all).ok().json();
    let mut con = redis.con();
    let mut out = Vec::new();
    for service in services {
        let snapshot = current(&mut con, prefix, service).expect("committed");
        let keys = keyspace(&mut con, &format!("{prefix}:{service}:{snapshot}:"));
        assert!(!keys.is_empty());
        let m = manifest(&mut con, prefix, service);
        out.push(serde_json::json!({
            "keys": keys.into_iter().map(|(k, (v, at))| (k, format!("{v:?}"), at)).collect::<Vec<_>>(),
            "entities": m["entities"], "bytes": m["bytes_written"], "sources": m["sources"],
            "imputed": m["imputed"], "nulls": m["nulls"], "absent": m["absent"],
        }));
    }
    assert_eq!(done["services"].as_array().unwrap().len(), services.len());
    out
}

#[test]
fn the_selective_scan_writes_what_the_single_pass_writes_golden() {
    let repo = scratch_repo("golden");
    let services = ["scoring", "balances"];
    let base = ["--end", GOLDEN_END];
    let single = snapshot_keys(
        repo.path(),
        &[&base[..], &["--scan", "single"]].concat(),
        GOLDEN_PREFIX,
        &services,
    );
    for extra in [
        &["--scan", "selective"][..],
        &["--scan", "selective", "--partitions", "3"],
    ] {
        let two = snapshot_keys(
            repo.path(),
            &[&base[..], extra].concat(),
            GOLDEN_PREFIX,
            &services,
        );
        assert!(two == single, "{extra:?} differs from the single pass");
    }
    // A window that prunes row groups and drops rows inside the kept ones.
    // (3 of profile's 6 row groups pruned; balances has no row in it.)
    let narrow = [
        "--service",
        "scoring",
        "--end",
        GOLDEN_END,
        "--start",
        "2025-11-22T12:00:00Z",
    ];
    let single = snapshot_keys(
        repo.path(),
        &[&narrow[..], &["--scan", "single"]].concat(),
        GOLDEN_PREFIX,
        &["scoring"],
    );
    let two = snapshot_keys(
        repo.path(),
        &[&narrow[..], &["--scan", "selective"]].concat(),
        GOLDEN_PREFIX,
        &["scoring"],
    );
    assert!(two == single, "a narrow window differs");
}

#[test]
fn auto_reads_a_view_with_many_rows_per_entity_in_two_passes() {
    let dir = tempfile::tempdir().unwrap();
    datagen(&[
        "banking",
        dir.path().to_str().unwrap(),
        "--entities",
        "3000",
        "--rows-per-entity",
        "12",
        "--anchor-hour",
        &crate::faults::now_hour().to_string(),
    ]);
    std::fs::copy(
        fixture("../feature_repo/feature_store.yaml"),
        dir.path().join("feature_store.yaml"),
    )
    .unwrap();
    let end = crate::faults::hour_rfc3339(crate::faults::now_hour());
    let redis = RedisServer::start();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "-v",
            "materialize",
            "--service",
            "realtime_scoring",
            "--end",
            &end,
        ];
        args.extend_from_slice(extra);
        fsctl(dir.path(), Some(&redis), &args).ok().stderr.clone()
    };
    // The first run has no snapshot to count entities from: one pass.
    let first = run(&[]);
    assert!(!first.contains("two passes"), "{first}");
    let mut con = redis.con();
    let snapshot = current(&mut con, "fs:banking", "realtime_scoring").unwrap();
    let data = format!("fs:banking:realtime_scoring:{snapshot}:");
    let want = keyspace(&mut con, &data);
    // Rerun over it: the transactions view has ~12 rows per entity, the profile one.
    let again = run(&["--force"]);
    assert!(
        again.contains("view transactions_agg: about 12 rows per entity to read; two passes"),
        "{again}"
    );
    assert!(
        again.contains("view customer_profile: about 1 rows per entity to read; one pass"),
        "{again}"
    );
    assert!(keyspace(&mut con, &data) == want);
}
