//! `fsctl init` as a newcomer meets it: the example repo validates, materializes and reads back
//! the values of its own data; an existing repo is never overwritten without `--force`; a draft
//! from Parquet files guesses the join key, the event and created times and the dtypes, and
//! validates and materializes; what cannot be guessed is a placeholder; a file that is not
//! Parquet writes nothing.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int32Array, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value as Json, json};

use crate::harness::*;

/// Runs the fsctl binary in `cwd` with exactly `args` (no `--repo`, as a user types it).
fn fsctl_in(cwd: &Path, redis: Option<&RedisServer>, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fsctl"));
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    match redis {
        Some(r) => cmd.env("FSCTL_REDIS_URL", r.url()),
        None => cmd.env_remove("FSCTL_REDIS_URL"),
    };
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The values `get --format json` shows for one entity, and its one view's timestamp.
fn get_values(repo: &Path, redis: &RedisServer, service: &str, entity: &str) -> (Json, Json) {
    let doc = fsctl(
        repo,
        Some(redis),
        &[
            "--format",
            "json",
            "get",
            "--service",
            service,
            "--entity",
            entity,
        ],
    )
    .ok()
    .json();
    (doc["values"].clone(), doc["views"][0]["timestamp"].clone())
}

fn validate_cleanly(repo: &Path) {
    let run = fsctl(repo, None, &["--format", "json", "validate"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let findings = run.json()["findings"].as_array().unwrap().clone();
    let errors: Vec<&Json> = findings
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// Each user's latest row of the example data (greatest event time, then created time), as the
/// service's values after imputation, and its event time.
fn example_expectations(file: &Path) -> HashMap<i64, (Json, i64)> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(file).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut best: HashMap<i64, ((i64, i64), Json)> = HashMap::new();
    for batch in reader {
        let b = batch.unwrap();
        let col = |name: &str| b.column_by_name(name).unwrap().clone();
        let ids = col("user_id");
        let ids = ids.as_primitive::<Int64Type>();
        let event = col("event_timestamp");
        let event = event.as_primitive::<TimestampMicrosecondType>();
        let created = col("created_timestamp");
        let created = created.as_primitive::<TimestampMicrosecondType>();
        let purchases = col("purchases_30d");
        let purchases = purchases.as_primitive::<Int64Type>();
        let avg = col("avg_order_value");
        let avg = avg.as_primitive::<Float64Type>();
        let category = col("favorite_category");
        let category = category.as_string::<i32>();
        let subscriber = col("is_subscriber");
        let subscriber = subscriber.as_boolean();
        let lifetime = col("lifetime_value");
        let lifetime = lifetime.as_primitive::<Float64Type>();
        for r in 0..b.num_rows() {
            let rank = (event.value(r), created.value(r));
            let values = json!({
                "user_stats.purchases_30d": purchases.value(r),
                "user_stats.avg_order_value": avg.value(r),
                // Declared defaults: 0, 0.0, unknown, false; lifetime_value has none.
                "user_stats.favorite_category":
                    if category.is_null(r) { "unknown" } else { category.value(r) },
                "user_stats.is_subscriber": subscriber.value(r),
                "user_stats.lifetime_value":
                    if lifetime.is_null(r) { Json::Null } else { json!(lifetime.value(r)) },
            });
            let entry = best.entry(ids.value(r)).or_insert((rank, values.clone()));
            if rank >= entry.0 {
                *entry = (rank, values);
            }
        }
    }
    best.into_iter()
        .map(|(id, ((event, _), values))| (id, (values, event)))
        .collect()
}

#[test]
fn init_example_validates_materializes_and_reads_back_its_own_data() {
    let cwd = tempfile::tempdir().unwrap();
    let run = fsctl_in(cwd.path(), None, &["init", "shop"]);
    run.ok();
    let repo = cwd.path().join("shop");
    assert!(repo.join("feature_store.yaml").is_file());
    for step in [
        "fsctl --repo shop validate",
        "export FSCTL_REDIS_URL=redis://127.0.0.1:6379/0",
        "fsctl --repo shop materialize",
        "fsctl --repo shop get --service user_scoring --entity user_id=1001",
    ] {
        assert!(
            run.stdout.contains(step),
            "`{step}` not in:\n{}",
            run.stdout
        );
    }
    let yaml = std::fs::read_to_string(repo.join("feature_store.yaml")).unwrap();
    assert!(yaml.contains("project: shop\n"), "{yaml}");
    assert!(yaml.contains("docs/configuration.md"), "{yaml}");
    assert!(yaml.contains("FSCTL_REDIS_URL"), "{yaml}");

    validate_cleanly(&repo);
    let redis = RedisServer::start();
    let done = fsctl(&repo, Some(&redis), &["--format", "json", "materialize"])
        .ok()
        .json();
    assert_eq!(done["services"][0]["service"], "user_scoring", "{done}");

    let expected = example_expectations(&repo.join("data/user_stats.parquet"));
    assert_eq!(expected.len(), 100);
    // 1001 has every value; 1010 has no category (its default is served) and no lifetime
    // value (no default: null).
    for user in [1001, 1010, 1100] {
        let (values, ts) = get_values(&repo, &redis, "user_scoring", &format!("user_id={user}"));
        let (want, event) = &expected[&user];
        assert_eq!(&values, want, "user {user}");
        assert_eq!(
            ts,
            json!(fsctl::base::time::format_us(*event)),
            "user {user}"
        );
    }
    assert_eq!(expected[&1010].0["user_stats.favorite_category"], "unknown");
    assert_eq!(expected[&1010].0["user_stats.lifetime_value"], Json::Null);
}

#[test]
fn init_without_dir_makes_feature_repo_and_never_overwrites_without_force() {
    let cwd = tempfile::tempdir().unwrap();
    let doc = fsctl_in(cwd.path(), None, &["--format", "json", "init"])
        .ok()
        .json();
    assert_eq!(doc["project"], "feature_repo");
    assert_eq!(doc["kind"], "example");
    assert_eq!(doc["services"][0]["service"], "user_scoring");
    assert_eq!(doc["example_entity"], json!({"user_id": 1001}));
    assert_eq!(
        doc["files"],
        json!([
            "feature_repo/feature_store.yaml",
            "feature_repo/data/user_stats.parquet"
        ])
    );
    // The default repo needs no --repo in the next steps.
    assert_eq!(doc["next_steps"][0], "fsctl validate");

    let yaml = cwd.path().join("feature_repo/feature_store.yaml");
    let mine = std::fs::read_to_string(&yaml).unwrap() + "# my edit\n";
    std::fs::write(&yaml, &mine).unwrap();
    let again = fsctl_in(cwd.path(), None, &["init"]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("feature_repo/feature_store.yaml already exists")
            && again.stderr.contains("--force"),
        "{}",
        again.stderr
    );
    let json = fsctl_in(cwd.path(), None, &["--format", "json", "init"]);
    assert_eq!(json.code, 2);
    assert_eq!(json.json()["error"]["exit_code"], 2);
    assert_eq!(std::fs::read_to_string(&yaml).unwrap(), mine, "untouched");

    fsctl_in(cwd.path(), None, &["init", "--force"]).ok();
    assert!(
        !std::fs::read_to_string(&yaml)
            .unwrap()
            .contains("# my edit")
    );
}

/// A small orders table: customers 1..=5, two rows each within the last hours, the later one
/// with `amount` 10 x customer and `channel` "web".
fn write_orders(path: &Path, now_us: i64) {
    let hour = 3_600_000_000i64;
    let mut rows: Vec<(i32, i64, f64, &str, i32, i32)> = Vec::new();
    for c in 1..=5 {
        rows.push((c, now_us - 3 * hour, 1.5 * f64::from(c), "store", 1, 0));
        rows.push((c, now_us - hour, 10.0 * f64::from(c), "web", c, c % 2));
    }
    let ts = |off: i64| {
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(|r| r.1 + off).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ) as ArrayRef
    };
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_parquet(
        path,
        vec![
            (
                "customer_id",
                Arc::new(Int32Array::from(
                    rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                )) as ArrayRef,
            ),
            ("event_ts", ts(0)),
            ("created_at", ts(1_000_000)),
            (
                "amount",
                Arc::new(Float64Array::from(
                    rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                )),
            ),
            (
                "channel",
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.3).collect::<Vec<_>>(),
                )),
            ),
            (
                "items",
                Arc::new(Int32Array::from(
                    rows.iter().map(|r| r.4).collect::<Vec<_>>(),
                )),
            ),
            (
                "n returns",
                Arc::new(Int32Array::from(
                    rows.iter().map(|r| r.5).collect::<Vec<_>>(),
                )),
            ),
        ],
    );
}

#[test]
fn init_from_parquet_guesses_keys_and_times_and_the_draft_materializes() {
    let cwd = tempfile::tempdir().unwrap();
    let now = fsctl::base::time::now_us();
    write_orders(&cwd.path().join("shop/data/orders.parquet"), now);
    let doc = fsctl_in(
        cwd.path(),
        None,
        &[
            "--format",
            "json",
            "init",
            "shop",
            "--from-parquet",
            "shop/data/orders.parquet",
        ],
    )
    .ok()
    .json();
    assert_eq!(doc["kind"], "draft");
    assert_eq!(doc["complete"], true, "{doc}");
    assert_eq!(
        doc["services"],
        json!([{"service": "customer_features", "entity": "customer",
                "join_keys": ["customer_id"], "views": ["orders"]}])
    );
    let repo = cwd.path().join("shop");
    let yaml = std::fs::read_to_string(repo.join("feature_store.yaml")).unwrap();
    for line in [
        "  - name: customer\n",
        "    join_keys: [{name: customer_id, dtype: int64}]\n",
        "    path: \"data/orders.parquet\"\n",
        "    timestamp_field: event_ts\n",
        "    created_timestamp_column: created_at\n",
        "    field_mapping: {\"n returns\": n_returns}\n",
        "      - {name: amount, dtype: float64}\n",
        "      - {name: channel, dtype: string}\n",
        "  - name: customer_features\n",
        "      - orders\n",
    ] {
        assert!(yaml.contains(line), "`{}` not in:\n{yaml}", line.trim_end());
    }
    for feature in ["items", "n_returns"] {
        assert!(
            yaml.contains(&format!("{{name: {feature}, dtype: int64}}")),
            "{feature}:\n{yaml}"
        );
    }
    // Every guess is marked, and says why.
    let marked = yaml
        .lines()
        .filter(|l| l.trim_start().starts_with("# REVIEW:") || l.contains(" # REVIEW:"))
        .count();
    assert_eq!(marked, doc["review"].as_array().unwrap().len(), "{yaml}");
    assert!(
        yaml.contains(
            "# REVIEW: join key `customer_id` of shop/data/orders.parquet: the first integer or \
             string column named *_id, id or *_key (Int32 column, declared int64)"
        ),
        "{yaml}"
    );
    assert!(yaml.contains("# REVIEW: event time `event_ts`"), "{yaml}");
    assert!(
        yaml.contains("# REVIEW: created time `created_at`"),
        "{yaml}"
    );
    assert!(!yaml.contains("TODO_"), "{yaml}");

    validate_cleanly(&repo);
    let redis = RedisServer::start();
    fsctl(&repo, Some(&redis), &["materialize"]).ok();
    let (values, ts) = get_values(&repo, &redis, "customer_features", "customer_id=3");
    assert_eq!(
        values,
        json!({"orders.amount": 30.0, "orders.channel": "web", "orders.items": 3,
               "orders.n_returns": 1})
    );
    assert_eq!(ts, json!(fsctl::base::time::format_us(now - 3_600_000_000)));
}

#[test]
fn a_draft_without_key_or_event_time_is_written_with_placeholders() {
    let cwd = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let file = elsewhere.path().join("scores.parquet");
    write_parquet(
        &file,
        vec![
            (
                "name",
                Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
            ),
            ("score", Arc::new(Float64Array::from(vec![0.5, 0.7]))),
            ("event_time", Arc::new(StringArray::from(vec!["x", "y"]))),
        ],
    );
    let run = fsctl_in(
        cwd.path(),
        None,
        &["init", "draft", "--from-parquet", file.to_str().unwrap()],
    );
    run.ok();
    assert!(
        run.stdout.contains("Incomplete: 2 placeholders")
            && run.stdout.contains("`fsctl validate` fails until then"),
        "{}",
        run.stdout
    );
    let repo = cwd.path().join("draft");
    let yaml = std::fs::read_to_string(repo.join("feature_store.yaml")).unwrap();
    assert!(yaml.starts_with("# INCOMPLETE: 2 placeholders"), "{yaml}");
    assert!(
        yaml.contains("    join_keys: [{name: TODO_join_key, dtype: int64}]"),
        "{yaml}"
    );
    assert!(
        yaml.contains("    timestamp_field: TODO_timestamp_column"),
        "{yaml}"
    );
    assert!(
        yaml.contains("`event_time` is Utf8: convert it to a Parquet timestamp"),
        "{yaml}"
    );
    // A file outside the repo is named by its absolute path.
    let absolute = file.canonicalize().unwrap();
    assert!(
        yaml.contains(&format!("    path: \"{}\"", absolute.display())),
        "{yaml}"
    );
    let check = fsctl(&repo, None, &["validate"]);
    assert_eq!(check.code, 1, "{}", check.stdout);
    assert!(check.stdout.contains("TODO_join_key"), "{}", check.stdout);
}

#[test]
fn init_from_a_file_that_is_not_parquet_writes_nothing() {
    let cwd = tempfile::tempdir().unwrap();
    let good = cwd.path().join("good.parquet");
    write_orders(&good, fsctl::base::time::now_us());
    std::fs::write(cwd.path().join("notes.parquet"), "not parquet at all").unwrap();
    for (bad, why) in [
        ("notes.parquet", "not a readable Parquet file"),
        ("missing.parquet", "no such file"),
    ] {
        let run = fsctl_in(
            cwd.path(),
            None,
            &["init", "repo", "--from-parquet", "good.parquet", bad],
        );
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!("{bad}: {why}")),
            "{}",
            run.stderr
        );
        assert!(!cwd.path().join("repo").exists(), "nothing is written");
        let json = fsctl_in(
            cwd.path(),
            None,
            &["--format", "json", "init", "repo", "--from-parquet", bad],
        );
        assert_eq!(json.code, 2);
        let doc = json.json();
        assert_eq!(doc["error"]["exit_code"], 2);
        assert!(
            doc["error"]["message"].as_str().unwrap().contains(bad),
            "{doc}"
        );
    }
}
