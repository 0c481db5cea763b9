//! More of the bad-input matrix (see also errors.rs): each case fails with a message naming the
//! file, column, key or line, the exit code of SPEC §4, and commits nothing.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray, StructArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field};

use crate::harness::*;

const END: &str = "2025-11-23T00:00:00Z";

const TS: i64 = 1_763_850_000_000_000;

/// A txn file with `tx_sum` replaced by `tx_sum`'s given column.
fn txn_with(path: &Path, customer_id: ArrayRef, tx_sum: ArrayRef) {
    let n = customer_id.len();
    let emb = arrow::array::ListArray::from_iter_primitive::<arrow::datatypes::Float32Type, _, _>(
        (0..n).map(|_| Some(vec![Some(1.0f32)])),
    );
    write_parquet(
        path,
        vec![
            ("customer_id", customer_id),
            ("ts", Arc::new(TimestampMicrosecondArray::from(vec![TS; n]))),
            ("tx_sum", tx_sum),
            ("emb", Arc::new(emb)),
        ],
    );
}

#[test]
fn column_type_changes_between_files() {
    fails_without_commit(
        |r| {
            edit_yaml(
                r,
                "path: \"data/txn*.parquet\"",
                "path: \"data/txn*.parquet\"",
            );
            txn_with(
                &r.join("data/txn2.parquet"),
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(StringArray::from(vec!["1.5"])),
            );
        },
        1,
        &[
            "txn2.parquet",
            "column `tx_sum`",
            "type Utf8, which cannot be coerced to float64",
        ],
    );
}

#[test]
fn entity_key_column_of_the_wrong_type() {
    fails_without_commit(
        |r| {
            txn_with(
                &r.join("data/txn.parquet"),
                Arc::new(StringArray::from(vec!["c1"])),
                Arc::new(arrow::array::Float64Array::from(vec![1.0])),
            )
        },
        1,
        &[
            "txn.parquet",
            "column `customer_id` (join key of entity `customer`) has type Utf8",
        ],
    );
}

/// A profile file whose `segment` holds bytes that are not UTF-8, written with parquet's
/// low-level column writers (Arrow's safe builders refuse such a string).
fn profile_with_invalid_utf8(path: &Path) {
    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    let schema = parse_message_type(
        "message profile {
            required int64 customer_id;
            required int64 event_ts (TIMESTAMP(MICROS, false));
            required int64 created_ts (TIMESTAMP(MICROS, false));
            required int64 age;
            required double score;
            required double risk;
            required binary segment (STRING);
            required int64 cnt_src;
            required double avg;
            required binary note (STRING);
        }",
    )
    .unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(file, Arc::new(schema), Default::default()).unwrap();
    let mut rows = writer.next_row_group().unwrap();
    let mut column = |write: &dyn Fn(&mut parquet::file::writer::SerializedColumnWriter<'_>)| {
        let mut c = rows
            .next_column()
            .unwrap()
            .expect("a column per schema field");
        write(&mut c);
        c.close().unwrap();
    };
    let int = |v: i64| {
        move |c: &mut parquet::file::writer::SerializedColumnWriter<'_>| {
            c.typed::<Int64Type>()
                .write_batch(&[v], None, None)
                .unwrap();
        }
    };
    let double = |v: f64| {
        move |c: &mut parquet::file::writer::SerializedColumnWriter<'_>| {
            c.typed::<DoubleType>()
                .write_batch(&[v], None, None)
                .unwrap();
        }
    };
    let bytes = |v: &'static [u8]| {
        move |c: &mut parquet::file::writer::SerializedColumnWriter<'_>| {
            c.typed::<ByteArrayType>()
                .write_batch(&[ByteArray::from(v)], None, None)
                .unwrap();
        }
    };
    column(&int(1));
    column(&int(TS));
    column(&int(TS));
    column(&int(1));
    column(&double(1.0));
    column(&double(1.0));
    column(&bytes(&[0xff, 0xfe]));
    column(&int(1));
    column(&double(1.0));
    column(&bytes(b"x"));
    rows.close().unwrap();
    writer.close().unwrap();
}

#[test]
fn non_utf8_in_a_string_column() {
    fails_without_commit(
        |r| profile_with_invalid_utf8(&r.join("data/profile/part-1.parquet")),
        1,
        &["part-1.parquet", "utf"],
    );
}

#[test]
fn nested_type_not_declared() {
    fails_without_commit(
        |r| {
            let inner = StructArray::from(vec![(
                Arc::new(Field::new("x", DataType::Int64, true)),
                Arc::new(Int64Array::from(vec![1])) as ArrayRef,
            )]);
            txn_with(
                &r.join("data/txn.parquet"),
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(inner),
            );
        },
        1,
        &[
            "txn.parquet",
            "column `tx_sum`",
            "Struct",
            "cannot be coerced to float64",
        ],
    );
}

#[test]
fn invalid_glob() {
    fails_without_commit(
        |r| {
            edit_yaml(
                r,
                "path: \"data/txn*.parquet\"",
                "path: \"data/txn[.parquet\"",
            )
        },
        2,
        &["invalid-glob", "data/txn[.parquet"],
    );
}

#[test]
fn a_source_directory_with_zero_files() {
    fails_without_commit(
        |r| {
            for f in ["part-0.parquet", "part-1.parquet"] {
                std::fs::remove_file(r.join("data/profile").join(f)).unwrap();
            }
        },
        1,
        &["source `profile_src`", "matches no Parquet files"],
    );
}

#[test]
fn duplicate_feature_names() {
    fails_without_commit(
        |r| {
            edit_yaml(
                r,
                "{name: score, dtype: float64",
                "{name: age, dtype: float64",
            )
        },
        2,
        &[
            "duplicate feature `age` in view `profile`",
            "feature_store.yaml:34:16:",
        ],
    );
}

#[test]
fn key_prefix_with_spaces() {
    fails_without_commit(
        |r| edit_yaml(r, "key_prefix: fst", "key_prefix: \"f s\""),
        2,
        &["key_prefix `f s` must be non-empty with no spaces"],
    );
}

#[test]
fn wrong_password_and_wrong_db_index() {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start_with(&["--requirepass", "right-horse"]);
    let url = format!("redis://:wrong-battery@127.0.0.1:{}/0", redis.port);
    let run = fsctl_url(repo.path(), &url, &["materialize", "--end", END]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("authentication failed"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("wrong-battery") && !run.stdout.contains("wrong-battery"),
        "{}",
        run.stderr
    );

    let open = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}/99", open.port);
    let run = fsctl_url(repo.path(), &url, &["materialize", "--end", END]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("database index"), "{}", run.stderr);
}

#[test]
fn symlinks_in_a_source_directory_never_loop_or_read_a_file_twice() {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    let run = |args: &[&str]| fsctl(repo.path(), Some(&redis), args);
    let dry = || {
        let doc = run(&[
            "--format",
            "json",
            "materialize",
            "--service",
            "scoring",
            "--dry-run",
            "--end",
            GOLDEN_END,
        ])
        .ok()
        .json();
        doc["services"][0].clone()
    };
    let before = dry();
    // A loop to the parent, one to the directory itself, a link to a file, and a second way
    // into a real subdirectory.
    let profile = repo.path().join("data/profile");
    std::os::unix::fs::symlink("..", profile.join("loop")).unwrap();
    std::os::unix::fs::symlink(".", profile.join("self")).unwrap();
    std::os::unix::fs::symlink("part-0.parquet", profile.join("zz-copy.parquet")).unwrap();
    std::fs::create_dir(profile.join("more")).unwrap();
    std::fs::rename(
        profile.join("part-1.parquet"),
        profile.join("more/part-1.parquet"),
    )
    .unwrap();
    std::os::unix::fs::symlink("more", profile.join("more-again")).unwrap();
    let validate = run(&["validate", "--data", "--end", GOLDEN_END]);
    validate.ok();
    assert!(
        validate.stdout.contains("no problems"),
        "{}",
        validate.stdout
    );
    let after = dry();
    let files = |s: &serde_json::Value| -> Vec<String> {
        s["manifest"]["sources"]["profile"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        files(&after),
        [
            "data/profile/more/part-1.parquet",
            "data/profile/part-0.parquet"
        ],
        "each real file once"
    );
    assert_eq!(files(&before).len(), 2);
    assert_eq!(after["entities"], before["entities"]);
}
