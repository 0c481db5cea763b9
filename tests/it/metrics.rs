//! `--metrics-file`: a run's metrics as a node-exporter textfile; a failed run keeps each
//! service's last success.

use std::collections::BTreeMap;
use std::path::Path;

use crate::harness::*;

/// `name{labels}` -> value, from Prometheus text.
fn samples(path: &Path) -> BTreeMap<String, f64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

#[test]
fn a_run_writes_its_metrics_and_a_failed_one_keeps_the_last_success() {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    let mut con = redis.con();
    let file = repo.path().join("fsctl.prom");
    let file_arg = file.to_str().unwrap();
    let before = now_s();
    fsctl(
        repo.path(),
        Some(&redis),
        &[
            "materialize",
            "--end",
            "2025-11-23T00:00:00Z",
            "--metrics-file",
            file_arg,
        ],
    )
    .ok();
    let ok = samples(&file);
    let run = "{command=\"materialize\",project=\"golden\"}";
    assert_eq!(ok[&format!("fsctl_last_run_exit_code{run}")], 0.0);
    for service in ["scoring", "balances"] {
        let s = format!("{{project=\"golden\",service=\"{service}\"}}");
        let m = manifest(&mut con, GOLDEN_PREFIX, service);
        assert_eq!(
            ok[&format!("fsctl_snapshot_as_of_timestamp_seconds{s}")],
            1_763_856_000.0
        );
        assert_eq!(
            ok[&format!("fsctl_last_run_keys_written{s}")],
            m["keys_written"].as_f64().unwrap()
        );
        assert!(ok[&format!("fsctl_last_success_timestamp_seconds{s}")] >= before.floor());
    }
    // The next run fails (its Redis is gone): exit code 1 recorded, the last success kept.
    drop(con);
    drop(redis);
    let failed = fsctl(
        repo.path(),
        None,
        &[
            "materialize",
            "--end",
            "2025-11-23T01:00:00Z",
            "--metrics-file",
            file_arg,
        ],
    );
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    let after = samples(&file);
    assert_eq!(after[&format!("fsctl_last_run_exit_code{run}")], 1.0);
    for service in ["scoring", "balances"] {
        let s = format!("{{project=\"golden\",service=\"{service}\"}}");
        for kept in [
            "fsctl_last_success_timestamp_seconds",
            "fsctl_snapshot_as_of_timestamp_seconds",
        ] {
            let series = format!("{kept}{s}");
            assert_eq!(after.get(&series), ok.get(&series), "{series}");
        }
    }
    assert!(
        !after
            .keys()
            .any(|k| k.starts_with("fsctl_last_run_keys_written"))
    );
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
