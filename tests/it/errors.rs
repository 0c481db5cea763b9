//! Bad input: each case fails with a message naming the file, column, row, key or line, the
//! exit code of SPEC §4, and no change to the committed pointer.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, TimestampMicrosecondArray};

use crate::harness::*;

const END: &str = "2025-11-23T00:00:00Z";

#[test]
fn missing_source_file() {
    fails_without_commit(
        |r| std::fs::remove_file(r.join("data/accounts.parquet")).unwrap(),
        1,
        &["source `accounts_src`", "accounts.parquet does not exist"],
    );
}

#[test]
fn glob_matching_nothing() {
    fails_without_commit(
        |r| std::fs::remove_file(r.join("data/txn.parquet")).unwrap(),
        1,
        &["source `txn_src`", "matches no Parquet files"],
    );
}

#[test]
fn truncated_parquet() {
    fails_without_commit(
        |r| {
            let p = r.join("data/profile/part-1.parquet");
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        },
        1,
        &["part-1.parquet", "not a readable Parquet file"],
    );
}

#[test]
fn not_parquet_and_zero_byte_files() {
    fails_without_commit(
        |r| std::fs::write(r.join("data/profile/part-1.parquet"), "id,age\n1,2\n").unwrap(),
        1,
        &["part-1.parquet", "not a readable Parquet file"],
    );
    fails_without_commit(
        |r| std::fs::write(r.join("data/profile/part-0.parquet"), "").unwrap(),
        1,
        &["part-0.parquet", "not a readable Parquet file"],
    );
}

#[test]
fn column_missing_in_one_file_of_a_directory() {
    fails_without_commit(
        |r| {
            write_parquet(
                &r.join("data/profile/part-2.parquet"),
                vec![
                    (
                        "customer_id",
                        Arc::new(Int64Array::from(vec![1])) as ArrayRef,
                    ),
                    (
                        "event_ts",
                        Arc::new(TimestampMicrosecondArray::from(vec![1_763_800_000_000_000])),
                    ),
                ],
            )
        },
        1,
        &["part-2.parquet", "column `created_ts`", "not found"],
    );
}

#[test]
fn column_of_an_uncoercible_type() {
    fails_without_commit(
        |r| {
            write_parquet(
                &r.join("data/txn.parquet"),
                vec![
                    (
                        "customer_id",
                        Arc::new(Int64Array::from(vec![1])) as ArrayRef,
                    ),
                    (
                        "ts",
                        Arc::new(TimestampMicrosecondArray::from(vec![1_763_800_000_000_000])),
                    ),
                    (
                        "tx_sum",
                        Arc::new(arrow::array::StringArray::from(vec!["12.5"])),
                    ),
                    ("emb", Arc::new(Float64Array::from(vec![1.0]))),
                ],
            )
        },
        1,
        &[
            "txn.parquet",
            "column `tx_sum`",
            "type Utf8",
            "cannot be coerced to float64",
        ],
    );
}

#[test]
fn narrowing_overflow_names_file_column_and_row() {
    fails_without_commit(
        |r| {
            write_parquet(
                &r.join("data/profile/part-1.parquet"),
                vec![
                    (
                        "customer_id",
                        Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
                    ),
                    (
                        "event_ts",
                        Arc::new(TimestampMicrosecondArray::from(vec![
                            1_763_850_000_000_000;
                            3
                        ])),
                    ),
                    (
                        "created_ts",
                        Arc::new(TimestampMicrosecondArray::from(vec![
                            1_763_850_000_000_000;
                            3
                        ])),
                    ),
                    ("age", Arc::new(Int64Array::from(vec![1, 2, 3]))),
                    ("score", Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0]))),
                    ("risk", Arc::new(Float64Array::from(vec![0.5, 0.5, 1e300]))),
                    (
                        "segment",
                        Arc::new(arrow::array::StringArray::from(vec!["a", "b", "c"])),
                    ),
                    ("cnt_src", Arc::new(Int64Array::from(vec![1, 2, 3]))),
                    ("avg", Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0]))),
                    (
                        "note",
                        Arc::new(arrow::array::StringArray::from(vec!["a", "b", "c"])),
                    ),
                ],
            )
        },
        1,
        &[
            "part-1.parquet: column `risk`, row 2",
            "does not fit float32",
        ],
    );
}

#[test]
fn unknown_yaml_key_names_line_and_key() {
    let err = fails_without_commit(
        |r| edit_yaml(r, "    ttl: 1d\n", "    ttl: 1d\n    tll: 2d\n"),
        2,
        &["feature_store.yaml:", "tll"],
    );
    assert!(
        err.contains("feature_store.yaml:32:5: error[unknown-key]: unknown field `tll`"),
        "line of the typo: {err}"
    );
}

#[test]
fn invalid_yaml_and_dangling_references() {
    fails_without_commit(
        |r| edit_yaml(r, "project: golden", "project: [golden"),
        2,
        &["feature_store.yaml:"],
    );
    let err = fails_without_commit(
        |r| {
            edit_yaml(r, "source: txn_src", "source: txn_source");
            edit_yaml(r, "features: [emb, tx_sum]", "features: [emb, tx_total]");
        },
        2,
        &[
            "2 problems",
            "unknown source `txn_source`",
            "unknown feature `txn.tx_total`",
        ],
    );
    assert!(
        err.contains("feature_store.yaml:42:13: error[unknown-reference]"),
        "{err}"
    );
}

#[test]
fn bad_window_and_unknown_service() {
    let repo = scratch_repo("golden");
    let run = fsctl(
        repo.path(),
        None,
        &[
            "materialize",
            "--start",
            "2025-11-24",
            "--end",
            END,
            "--dry-run",
        ],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("window start 2025-11-24T00:00:00Z is after its end"),
        "{}",
        run.stderr
    );
    let run = fsctl(
        repo.path(),
        None,
        &["materialize", "--service", "nope", "--dry-run"],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("unknown feature service `nope` (known: scoring, balances)"),
        "{}",
        run.stderr
    );
    let run = fsctl(repo.path(), None, &["materialize", "--end", "yesterday"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("invalid time `yesterday`"),
        "{}",
        run.stderr
    );
}

#[test]
fn expiries_in_the_past_are_refused() {
    let repo = scratch_repo("golden");
    edit_yaml(repo.path(), "online_ttl: 3650d", "online_ttl: 2d");
    let run = fsctl(
        repo.path(),
        None,
        &["materialize", "--service", "scoring", "--end", END],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("already past"), "{}", run.stderr);
}

#[test]
fn unreachable_redis_and_bad_url_never_print_the_password() {
    let repo = scratch_repo("golden");
    let run = fsctl_url(
        repo.path(),
        "redis://:hunter2@127.0.0.1:1/0",
        &["materialize", "--end", END],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("redis://:***@127.0.0.1:1/0"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2") && !run.stdout.contains("hunter2"));
    let run = fsctl_url(
        repo.path(),
        "http://:hunter2@127.0.0.1:1/0",
        &["materialize", "--end", END],
    );
    assert_eq!(run.code, 2);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    let run = fsctl_url(
        repo.path(),
        "${FSCTL_TEST_UNSET_VAR}",
        &["materialize", "--end", END],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("`FSCTL_TEST_UNSET_VAR`, which is not set"),
        "{}",
        run.stderr
    );
}
