//! Golden tests: materialize the golden fixture repo into a real Redis, read every vector back,
//! decode it and compare with values known by construction (see src/bin/fsctl-datagen.rs, where
//! each fixture row says why it is there).

use fsctl::vector::{SchemaFingerprint, Value, decode};

use crate::harness::*;

const END: &str = "2025-11-23T00:00:00Z";
const END_US: i64 = 1_763_856_000_000_000;
const HOUR_US: i64 = 3_600_000_000;
const PREFIX: &str = "fst:golden";

/// `hours` after the window start (end - 1 day).
fn h(hours: i64) -> Option<i64> {
    Some(END_US - 24 * HOUR_US + hours * HOUR_US)
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

const N: Value = Value::Null;

/// Values of the `scoring` service in service order:
/// age, score, risk, segment, txn_count, avg, note | emb, tx_sum.
fn base(age: i64) -> Vec<Value> {
    vec![
        Value::Int(age),
        Value::F64(0.5),
        Value::F32(0.25),
        s("gold"),
        Value::Int(3),
        Value::F64(1.5),
        s("ok"),
    ]
}

fn no_profile() -> Vec<Value> {
    // No profile row: declared defaults, nil where none is declared.
    vec![N, N, N, s("none"), Value::Int(0), Value::F64(-1.0), N]
}

fn with(mut profile: Vec<Value>, emb: Value, tx_sum: f64) -> Vec<Value> {
    profile.push(emb);
    profile.push(Value::F64(tx_sum));
    profile
}

fn f32s(v: &[Option<f32>]) -> Value {
    Value::List(
        v.iter()
            .map(|x| x.map_or(Value::Null, Value::F32))
            .collect(),
    )
}

/// (entity, view timestamps, values)
type Expected = (&'static str, Vec<Option<i64>>, Vec<Value>);

fn expected_scoring() -> Vec<Expected> {
    vec![
        // latest event wins (12h beats 10h)
        (
            "1",
            vec![h(12), h(20)],
            with(base(31), f32s(&[Some(0.5), Some(-1.0)]), 10.5),
        ),
        // same event time: greater created timestamp wins; null tx_sum imputed; null list element kept
        (
            "2",
            vec![h(12), h(21)],
            with(base(40), f32s(&[Some(0.25), None]), 0.0),
        ),
        // full tie: the row later in scan order (second file) wins; absent from txn
        ("3", vec![h(9), None], with(base(51), N, 0.0)),
        // a row exactly at the window start is in; one a millisecond earlier is not
        ("4", vec![h(0), None], with(base(60), N, 0.0)),
        // a row exactly at the window end is in; one a millisecond later is not
        ("5", vec![Some(END_US), None], with(base(70), N, 0.0)),
        // only a future profile row: absent from profile, present in txn (null embedding kept nil)
        ("6", vec![None, h(22)], with(no_profile(), N, 7.0)),
        // nulls imputed where a default exists (txn_count, segment), NaN avg -> default, else nil
        ("7", vec![h(5), None], with(no_profile(), N, 0.0)),
        // only in txn; NaN tx_sum imputed; empty embedding stays an empty list
        (
            "8",
            vec![None, h(23)],
            with(no_profile(), Value::List(vec![]), 0.0),
        ),
        // float32 score -> float64, float64 1e30 fits float32, dictionary string with ':'
        (
            "9",
            vec![h(6), None],
            vec![
                Value::Int(90),
                Value::F64(-2.5),
                Value::F32(1e30),
                s("x:y"),
                Value::Int(-1),
                Value::F64(2.0),
                s(""),
                N,
                Value::F64(0.0),
            ],
        ),
    ]
}

#[test]
fn scoring_vectors_match_known_answers() {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    fsctl(repo.path(), Some(&redis), &["materialize", "--end", END]).ok();

    let mut con = redis.con();
    let snap = current(&mut con, PREFIX, "scoring").expect("committed");
    let manifest = manifest(&mut con, PREFIX, "scoring");
    let fingerprint =
        SchemaFingerprint::parse_hex(manifest["fingerprint"].as_str().unwrap()).unwrap();
    let stored = data_keys(&mut con, &format!("{PREFIX}:scoring:{snap}:"));
    let expected = expected_scoring();
    assert_eq!(
        stored.len(),
        expected.len(),
        "one key per entity of the union of views"
    );
    for (entity, timestamps, values) in expected {
        let key = format!("{PREFIX}:scoring:{snap}:{entity}");
        let raw: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
        let v = decode(&raw).unwrap();
        assert_eq!(v.fingerprint, fingerprint, "{key}");
        assert_eq!(v.view_timestamps, timestamps, "view timestamps of {key}");
        assert_eq!(v.values, values, "values of {key}");
    }

    assert_eq!(manifest["null_entity_rows"], 2);
    assert_eq!(manifest["entities"], 9);
    assert_eq!(manifest["keys_written"], 9);
    assert_eq!(manifest["imputed"]["profile.avg"], 1);
    assert_eq!(manifest["imputed"]["profile.txn_count"], 1);
    assert_eq!(manifest["imputed"]["txn.tx_sum"], 2);
    assert_eq!(manifest["nulls"]["profile.note"], 1);
    assert_eq!(manifest["window"]["end"], END);
    assert_eq!(manifest["as_of"], END);
    assert_eq!(manifest["snapshot"], snap.as_str());
}

#[test]
fn composite_keys_escape_separators() {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    fsctl(
        repo.path(),
        Some(&redis),
        &["materialize", "--service", "balances", "--end", END],
    )
    .ok();
    let mut con = redis.con();
    let snap = current(&mut con, PREFIX, "balances").unwrap();
    let stored = data_keys(&mut con, &format!("{PREFIX}:balances:{snap}:"));
    let got: Vec<(String, Vec<Value>)> = stored
        .iter()
        .map(|(k, v)| {
            (
                k.rsplit_once(&format!("{snap}:")).unwrap().1.to_owned(),
                decode(v).unwrap().values,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (r"a\:b:2".to_owned(), vec![Value::F64(200.0)]),
            ("acme:1".to_owned(), vec![Value::F64(150.0)]), // the later of two rows
            (r"c\\d:3".to_owned(), vec![Value::F64(300.0)]),
        ]
    );
    // Only the balances service was asked for.
    assert_eq!(current(&mut con, PREFIX, "scoring"), None);
}

#[test]
fn expiries_are_jittered_within_bounds_and_repeat_on_rerun() {
    let Committed {
        repo,
        redis,
        mut con,
        snapshot: snap,
    } = golden_committed("scoring");
    let expiries = |con: &mut redis::Connection| -> Vec<i64> {
        data_keys(con, &format!("{PREFIX}:scoring:{snap}:"))
            .iter()
            .map(|(k, _)| redis::cmd("PEXPIRETIME").arg(k).query(con).unwrap())
            .collect()
    };
    let first = expiries(&mut con);
    let ttl = 3650 * 24 * 3_600_000i64;
    let as_of = END_US / 1000;
    for e in &first {
        assert!(
            *e >= as_of + ttl && *e < as_of + (ttl as f64 * 1.1) as i64,
            "{e}: never before as_of + online_ttl, at most 10% later"
        );
    }
    let distinct: std::collections::BTreeSet<_> = first.iter().collect();
    assert_eq!(
        distinct.len(),
        first.len(),
        "expiries are spread, not synchronized"
    );

    let again = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "materialize",
            "--service",
            "scoring",
            "--end",
            END,
            "--force",
        ],
    );
    again.ok();
    assert_eq!(
        expiries(&mut con),
        first,
        "a rerun writes identical expiries"
    );
}

#[test]
fn vector_bytes_are_pinned() {
    // A fixed vector's exact bytes: if this changes, serving readers see a format change.
    // (`_redis` keeps the server alive to the end of the test; `_` would drop it at once.)
    let Committed {
        repo: _repo,
        redis: _redis,
        mut con,
        snapshot: snap,
    } = golden_committed("scoring");
    let raw: Vec<u8> = redis::cmd("GET")
        .arg(format!("{PREFIX}:scoring:{snap}:1"))
        .query(&mut con)
        .unwrap();
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, PINNED_CUSTOMER_1);
}

const PINNED_CUSTOMER_1: &str = "0193cfc8d65e62df550d2292cf0006442dab64f000cf0006443460021000991fcb3fe0000000000000\
    ca3e800000a4676f6c6403cb3ff8000000000000a26f6b92ca3f000000cabf800000cb4025000000000000";

#[test]
fn fingerprint_of_fixed_schema_is_pinned() {
    let repo = fsctl::repo::Repo::load(&fixture("golden")).unwrap();
    let scoring = repo.service("scoring").unwrap();
    assert_eq!(
        fsctl::vector::SchemaFingerprint::canonical_text(
            &repo.layout(scoring).0,
            &repo.layout(scoring).1
        ),
        "fsctl-vector-v1\nentity:customer_id:int64\nfeature:profile.age:int64\nfeature:profile.score:float64\n\
         feature:profile.risk:float32\nfeature:profile.segment:string\nfeature:profile.txn_count:int64\n\
         feature:profile.avg:float64\nfeature:profile.note:string\nfeature:txn.emb:list<float32>\n\
         feature:txn.tx_sum:float64\n"
    );
    assert_eq!(repo.fingerprint(scoring).to_string(), "c8d65e62df550d22");
}

#[test]
fn get_prints_named_values() {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    fsctl(repo.path(), Some(&redis), &["materialize", "--end", END]).ok();
    let run = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "--format",
            "json",
            "get",
            "--service",
            "scoring",
            "--entity",
            "customer_id=9",
        ],
    );
    let doc = run.ok().json();
    assert_eq!(doc["values"]["profile.age"], 90);
    assert_eq!(doc["values"]["profile.segment"], "x:y");
    assert_eq!(doc["views"][0]["timestamp"], "2025-11-22T06:00:00Z");
    assert_eq!(doc["views"][1]["timestamp"], serde_json::Value::Null);
    assert!(doc["ttl_ms"].as_i64().unwrap() > 0);

    let run = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "get",
            "--service",
            "balances",
            "--entity",
            "bank=a:b,account_no=2",
        ],
    );
    assert!(
        run.ok().stdout.contains("accounts.balance"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("200"), "{}", run.stdout);

    let missing = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "get",
            "--service",
            "scoring",
            "--entity",
            "customer_id=12345",
        ],
    );
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("no vector for 12345"),
        "{}",
        missing.stderr
    );
}

#[test]
fn partitions_change_nothing_that_lands() {
    // Scanning in shares of the entities (to overlap reads with writes) must write exactly the
    // keys, bytes, expiries and manifest figures of a single scan; 16 shares of 9 entities also
    // leaves some shares empty.
    let repo = scratch_repo("golden");
    let landed = |partitions: &str| {
        let redis = RedisServer::start();
        let run = fsctl(
            repo.path(),
            Some(&redis),
            &[
                "--format",
                "json",
                "materialize",
                "--end",
                END,
                "--partitions",
                partitions,
            ],
        );
        run.ok();
        let report = run.json();
        let mut con = redis.con();
        let mut out = Vec::new();
        for service in ["scoring", "balances"] {
            let snap = current(&mut con, PREFIX, service).expect("committed");
            let mut m = manifest(&mut con, PREFIX, service);
            for volatile in ["created_at", "committed_at"] {
                m.as_object_mut().unwrap().remove(volatile);
            }
            let keys = data_keys(&mut con, &format!("{PREFIX}:{service}:{snap}:"));
            let expiries: Vec<i64> = keys
                .iter()
                .map(|(k, _)| redis::cmd("PEXPIRETIME").arg(k).query(&mut con).unwrap())
                .collect();
            assert!(!keys.is_empty());
            out.push((keys, expiries, m));
        }
        let parts = report["services"][0]["partitions"].clone();
        (out, parts)
    };
    let (one, p1) = landed("1");
    let (many, p16) = landed("16");
    assert_eq!((p1, p16), (1.into(), 16.into()));
    assert_eq!(one, many);
}

#[test]
fn a_null_typed_column_reads_as_nulls_of_the_declared_dtype() {
    // pandas writes an all-None column with Arrow type Null (SPEC §2.5).
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, NullArray, StringArray, TimestampMicrosecondArray};
    let repo = scratch_repo("golden");
    let ts = END_US - HOUR_US;
    let columns: Vec<(&str, ArrayRef, bool)> = vec![
        (
            "bank",
            Arc::new(StringArray::from(vec!["acme", "zed"])),
            true,
        ),
        ("account_no", Arc::new(Int64Array::from(vec![1, 2])), true),
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(vec![ts, ts]).with_timezone("UTC")),
            true,
        ),
        ("balance", Arc::new(NullArray::new(2)), true),
    ];
    let batch = arrow::array::RecordBatch::try_from_iter_with_nullable(columns).unwrap();
    let file = std::fs::File::create(repo.path().join("data/accounts.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    fsctl(repo.path(), None, &["validate", "--end", END]).ok();
    let redis = RedisServer::start();
    fsctl(
        repo.path(),
        Some(&redis),
        &["materialize", "--service", "balances", "--end", END],
    )
    .ok();
    let mut con = redis.con();
    let snap = current(&mut con, PREFIX, "balances").unwrap();
    let stored = data_keys(&mut con, &format!("{PREFIX}:balances:{snap}:"));
    assert_eq!(stored.len(), 2);
    for (key, bytes) in stored {
        let v = decode(&bytes).unwrap();
        assert_eq!(v.values, vec![Value::Null], "{key}");
        assert_eq!(v.view_timestamps, vec![Some(ts)], "{key}");
    }
}
