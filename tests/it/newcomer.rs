//! What a new user ran into while writing a repo from scratch (issue 30): each defect found
//! then, through the binary.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, TimestampMicrosecondArray};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::harness::*;

/// A one-view repo over `data/users.parquet` (`user_id`, `ts`, `n` declared `n_dtype`).
fn tiny_repo(n_dtype: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("feature_store.yaml"),
        format!(
            "project: tiny
online_store:
  type: redis
  url: redis://127.0.0.1:6379/0
  key_prefix: fst
entities:
  - name: user
    join_keys: [{{name: user_id, dtype: int64}}]
sources:
  - name: users_src
    path: data/users.parquet
    timestamp_field: ts
feature_views:
  - name: users
    entities: [user]
    source: users_src
    ttl: 30d
    features:
      - {{name: n, dtype: {n_dtype}, default: 0}}
feature_services:
  - name: svc
    features: [users]
    online_ttl: 3650d
"
        ),
    )
    .unwrap();
    dir
}

const TS_US: i64 = 1_763_856_000_000_000;
const END: &str = "2025-11-23T00:00:00Z";

/// Writes `data/users.parquet` with one row per value of `n`, with or without statistics.
fn users(repo: &Path, n: &[i64], statistics: bool) {
    let ids: Vec<i64> = (1..=n.len() as i64).collect();
    let batch = RecordBatch::try_from_iter([
        ("user_id", Arc::new(Int64Array::from(ids)) as ArrayRef),
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(vec![TS_US; n.len()])) as ArrayRef,
        ),
        ("n", Arc::new(Int64Array::from(n.to_vec())) as ArrayRef),
    ])
    .unwrap();
    let level = if statistics {
        EnabledStatistics::Chunk
    } else {
        EnabledStatistics::None
    };
    let props = WriterProperties::builder()
        .set_statistics_enabled(level)
        .build();
    let file = std::fs::File::create(repo.join("data/users.parquet")).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn validate_finds_an_int64_too_big_for_int32_from_statistics_or_data() {
    for statistics in [true, false] {
        let repo = tiny_repo("int32");
        users(repo.path(), &[7, 1 << 40, 3], statistics);
        let run = fsctl(repo.path(), None, &["validate", "--end", END]);
        assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
        let expected = if statistics {
            "row group 0 holds values from 3 to 1099511627776 (Parquet statistics)"
        } else {
            "row 1 holds 1099511627776"
        };
        assert!(
            run.stdout.contains("value-out-of-range")
                && run
                    .stdout
                    .contains("column `n` (feature, Int64 declared int32)")
                && run.stdout.contains(expected),
            "statistics {statistics}: {}",
            run.stdout
        );
        // materialize refuses the same data, so validate passing it would have been wrong.
        let redis = RedisServer::start();
        let refused = fsctl(repo.path(), Some(&redis), &["materialize", "--end", END]);
        assert_eq!(refused.code, 1, "{}", refused.stderr);
        assert!(
            refused.stderr.contains("does not fit int32"),
            "{}",
            refused.stderr
        );
    }
    // Values that fit pass, from the statistics alone.
    let repo = tiny_repo("int32");
    users(repo.path(), &[7, -5, 3], true);
    fsctl(repo.path(), None, &["validate", "--end", END]).ok();
}

/// A repo file with `edit` applied.
fn edited(repo: &Path, from: &str, to: &str) {
    edit_yaml(repo, from, to);
}

#[test]
fn an_invalid_repo_exits_2_in_validate_as_in_materialize() {
    let repo = tiny_repo("int64");
    users(repo.path(), &[1, 2], true);
    edited(
        repo.path(),
        "join_keys: [{name: user_id, dtype: int64}]",
        "join_keys: [user_id]",
    );
    edited(repo.path(), "    ttl: 30d\n", "    tll: 30d\n");
    let v = fsctl(
        repo.path(),
        None,
        &["--format", "json", "validate", "--end", END],
    );
    let m = fsctl(
        repo.path(),
        None,
        &["--format", "json", "materialize", "--end", END],
    );
    assert_eq!((v.code, m.code), (2, 2), "{}\n{}", v.stdout, m.stdout);
    let doc = v.json();
    let findings: Vec<(&str, u64)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| (f["code"].as_str().unwrap(), f["line"].as_u64().unwrap()))
        .collect();
    // The shape error does not hide the typo after it, and says what shape is wanted.
    assert_eq!(
        findings,
        [("invalid-shape", 8), ("unknown-key", 17)],
        "{doc:#}"
    );
    assert!(
        doc["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`join_keys: [{name: user_id, dtype: int64}]`"),
        "{doc:#}"
    );
    assert_eq!(m.json()["error"]["kind"], "definition");
}

#[test]
fn missing_keys_are_all_reported_in_one_run() {
    let repo = tiny_repo("int64");
    edited(repo.path(), "    timestamp_field: ts\n", "");
    edited(
        repo.path(),
        "{name: n, dtype: int64, default: 0}",
        "{name: n, default: 0}",
    );
    let run = fsctl(repo.path(), None, &["validate"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    for needle in [
        ":10:5: error[missing-key]: missing required key `timestamp_field`",
        ":18:19: error[missing-key]: missing required key `dtype`",
    ] {
        assert!(run.stdout.contains(needle), "{needle}\n{}", run.stdout);
    }
}

#[test]
fn a_repo_without_services_is_refused_by_validate_and_materialize() {
    let repo = tiny_repo("int64");
    users(repo.path(), &[1], true);
    edited(
        repo.path(),
        "feature_services:\n  - name: svc\n    features: [users]\n    online_ttl: 3650d\n",
        "",
    );
    let v = fsctl(repo.path(), None, &["validate", "--end", END]);
    assert_eq!(v.code, 2, "{}", v.stdout);
    assert!(v.stdout.contains("error[no-services]"), "{}", v.stdout);
    let m = fsctl(repo.path(), None, &["materialize", "--end", END]);
    assert_eq!(m.code, 2);
    assert!(m.stderr.contains("no feature_services"), "{}", m.stderr);
}

#[test]
fn misspelled_references_and_columns_get_a_suggestion() {
    let repo = tiny_repo("int64");
    users(repo.path(), &[1], true);
    edited(
        repo.path(),
        "    features: [users]\n",
        "    features: [user, users.n]\n",
    );
    let run = fsctl(repo.path(), None, &["validate", "--end", END]);
    assert_eq!(run.code, 2);
    assert!(
        run.stdout
            .contains("unknown feature view `user` (did you mean `users`?)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("`users.n` (to pick single features write `{view: users, features: [n]}`)"),
        "{}",
        run.stdout
    );
    let repo = tiny_repo("int64");
    users(repo.path(), &[1], true);
    edited(repo.path(), "{name: n, dtype", "{name: nn, dtype");
    edited(repo.path(), "    ttl: 30d\n", "    ttl: 1d12h\n");
    let run = fsctl(repo.path(), None, &["validate", "--end", END]);
    assert_eq!(run.code, 1, "a data finding: {}", run.stdout);
    assert!(
        run.stdout
            .contains("column `nn` (feature `users.nn`) not found (did you mean `n`?)"),
        "{}",
        run.stdout
    );
}

#[test]
fn features_without_a_default_are_named_unless_null_is_declared() {
    let repo = tiny_repo("int64");
    users(repo.path(), &[1], true);
    edited(
        repo.path(),
        "{name: n, dtype: int64, default: 0}",
        "{name: n, dtype: int64}",
    );
    let run = fsctl(repo.path(), None, &["validate", "--end", END]);
    run.ok();
    assert!(
        run.stdout
            .contains("warning[no-default]: feature `users.n` has no `default`"),
        "{}",
        run.stdout
    );
    edited(
        repo.path(),
        "{name: n, dtype: int64}",
        "{name: n, dtype: int64, default: null}",
    );
    let run = fsctl(repo.path(), None, &["validate", "--end", END]);
    run.ok();
    assert!(!run.stdout.contains("no-default"), "{}", run.stdout);
}

#[test]
fn small_things_a_user_expects() {
    let repo = tiny_repo("int64");
    users(repo.path(), &[5, 6], true);
    let redis = RedisServer::start();
    // --repo may name the feature_store.yaml itself.
    let file = repo.path().join("feature_store.yaml");
    let m = fsctl(
        &file,
        Some(&redis),
        &["materialize", "--end", "2025-11-23T00:00:00"],
    );
    m.ok();
    // A time without an offset is taken as UTC, and said so.
    assert!(
        m.stderr.contains(
            "note: --end 2025-11-23T00:00:00 has no UTC offset; taken as UTC (2025-11-23T00:00:00Z)"
        ),
        "{}",
        m.stderr
    );
    // get reads one entity: a second value of the same key is refused, not dropped.
    let g = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "get",
            "--service",
            "svc",
            "--entity",
            "user_id=1",
            "--entity",
            "user_id=2",
        ],
    );
    assert_eq!(g.code, 2);
    assert!(
        g.stderr.contains("gives `user_id` twice (`1` and `2`)"),
        "{}",
        g.stderr
    );
    // A misspelled service gets a suggestion.
    let s = fsctl(
        repo.path(),
        Some(&redis),
        &["get", "--service", "svcc", "--entity", "user_id=1"],
    );
    assert_eq!(s.code, 2);
    assert!(
        s.stderr
            .contains("unknown feature service `svcc` (did you mean `svc`?)"),
        "{}",
        s.stderr
    );
    // A window end far ahead is told in days and hours, not raw seconds.
    let f = fsctl(
        repo.path(),
        Some(&redis),
        &["materialize", "--end", "2099-01-01T00:00:00Z"],
    );
    assert_eq!(f.code, 2);
    assert!(
        regex_like_days(&f.stderr),
        "a compound duration such as 26322d4h38m51s: {}",
        f.stderr
    );
    // A dry run writes nothing and says so: no write phase.
    let d = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "--format",
            "json",
            "materialize",
            "--end",
            END,
            "--dry-run",
            "--force",
        ],
    )
    .ok()
    .json();
    let phases = &d["services"][0]["phases_ms"];
    assert!(
        phases.get("write").is_none() && phases.get("dry_run").is_some(),
        "{d:#}"
    );
}

/// Whether `text` holds `<digits>d` followed by more units before " in the future".
fn regex_like_days(text: &str) -> bool {
    text.split(" in the future").next().is_some_and(|head| {
        let word = head.rsplit(' ').next().unwrap_or_default();
        word.contains('d') && word.chars().next().is_some_and(|c| c.is_ascii_digit())
    })
}

#[test]
fn a_quality_gate_refusal_is_structured_and_not_called_done() {
    let repo = tiny_repo("int64");
    users(repo.path(), &[7, 2], true);
    edited(repo.path(), "default: 0}", "default: 0, checks: {max: 5}}");
    let redis = RedisServer::start();
    let text = fsctl(repo.path(), Some(&redis), &["materialize", "--end", END]);
    assert_eq!(text.code, 1);
    assert!(!text.stdout.contains("done in"), "{}", text.stdout);
    assert!(
        text.stderr
            .contains("users.n: maximum 7 is above the limit 5"),
        "{}",
        text.stderr
    );
    let json = fsctl(
        repo.path(),
        Some(&redis),
        &["--format", "json", "materialize", "--end", END],
    );
    assert_eq!(json.code, 1);
    let doc = json.json();
    let failure = &doc["error"]["failures"][0];
    assert_eq!(
        (
            failure["view"].as_str(),
            failure["feature"].as_str(),
            failure["check"].as_str(),
            failure["observed"].as_f64(),
            failure["limit"].as_f64()
        ),
        (Some("users"), Some("n"), Some("max"), Some(7.0), Some(5.0)),
        "{doc:#}"
    );
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .contains("above the limit")
    );
}
