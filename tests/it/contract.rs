//! The reader contract: the contract fixture materialized into a real Redis, read through the
//! library's `FeatureClient` and compared value by value with fixtures/contract/expected.json,
//! the same file python/tests/test_contract.py reads its client's results against.

use fsctl::base::value::{DType, Scalar};
use fsctl::client::{Entity, FeatureClient, KeyValue, Missing, ReadOptions};
use fsctl::vector::Value;
use serde_json::Value as J;

use crate::harness::*;

fn expected() -> J {
    let text = std::fs::read_to_string(fixture("contract").join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The entity of an expected row, join keys by name.
fn entity(row: &J) -> Entity {
    let mut e = Entity::new();
    for (name, v) in row["join_keys"].as_object().unwrap() {
        e = e.with(
            name,
            match v {
                J::Number(n) => KeyValue::Int(n.as_i64().unwrap()),
                other => KeyValue::Str(other.as_str().unwrap().to_owned()),
            },
        );
    }
    e
}

/// Whether `got` is the value `want` states for `dtype` (see the conventions in the file).
fn same(dtype: DType, want: &J, got: &Value) -> bool {
    // Floats compare exactly, sign of zero included; float32 values are stated as decimals
    // that round to them.
    let float = |w: &J, g: f64, f32: bool| match w {
        J::String(s) if s == "NaN" => g.is_nan(),
        w => w.as_f64().is_some_and(|x| {
            let x = if f32 { f64::from(x as f32) } else { x };
            x == g && x.is_sign_negative() == g.is_sign_negative()
        }),
    };
    let scalar = |s: Scalar, w: &J, g: &Value| match (s, g) {
        (_, Value::Null) => w.is_null(),
        (Scalar::Int32 | Scalar::Int64 | Scalar::Timestamp, Value::Int(v)) => {
            w.as_i64() == Some(*v)
        }
        (Scalar::Float32, Value::F32(v)) => float(w, f64::from(*v), true),
        (Scalar::Float64, Value::F64(v)) => float(w, *v, false),
        (Scalar::Bool, Value::Bool(v)) => w.as_bool() == Some(*v),
        (Scalar::String, Value::Str(v)) => w.as_str() == Some(v),
        (Scalar::Bytes, Value::Bytes(v)) => {
            let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
            w["hex"].as_str() == Some(hex.as_str())
        }
        _ => false,
    };
    match (dtype, got) {
        (_, Value::Null) => want.is_null(),
        (DType::Scalar(s), g) => scalar(s, want, g),
        (DType::List(s), Value::List(items)) => want.as_array().is_some_and(|w| {
            w.len() == items.len() && w.iter().zip(items).all(|(w, g)| scalar(s, w, g))
        }),
        _ => false,
    }
}

#[test]
fn every_dtype_reads_back_through_the_client_as_the_contract_states() {
    let want = expected();
    let repo = scratch_repo("contract");
    let redis = RedisServer::start();
    let mut con = redis.con();
    fsctl(
        repo.path(),
        Some(&redis),
        &["materialize", "--end", want["end"].as_str().unwrap()],
    )
    .ok();
    let client = FeatureClient::builder(&redis.url(), "contract")
        .key_prefix("fsc")
        .build()
        .unwrap();
    let service = want["service"].as_str().unwrap();
    let rows = want["entities"].as_array().unwrap();
    let entities: Vec<Entity> = rows.iter().map(entity).collect();
    let got = client
        .get_many(service, &entities, &ReadOptions::default())
        .unwrap();
    let names: Vec<&str> = want["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let views: Vec<&str> = want["views"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for (row, v) in rows.iter().zip(&got) {
        let entity = row["entity"].as_str().unwrap();
        assert_eq!(v.entity(), entity);
        assert_eq!(v.found, row["found"].as_bool().unwrap(), "{entity}");
        if !v.found {
            assert!(v.values.is_empty() && v.view_times.is_empty(), "{entity}");
            continue;
        }
        assert_eq!(v.names().collect::<Vec<_>>(), names);
        for (name, dtype, value) in v.features() {
            let w = &row["values"][name];
            assert!(
                same(dtype, w, value),
                "{entity} {name}: got {value:?}, want {w}"
            );
        }
        let times: Vec<(&str, Option<i64>)> =
            v.views().map(|t| (t.view, t.event_time_us)).collect();
        let want_times: Vec<(&str, Option<i64>)> = views
            .iter()
            .map(|view| (*view, row["view_times"][view].as_i64()))
            .collect();
        assert_eq!(times, want_times, "{entity}");
        // Compressed or not, as the contract says (byte 0 of the stored value).
        let raw: Vec<u8> = redis::cmd("GET").arg(&v.key).query(&mut con).unwrap();
        let header = if row["compressed"].as_bool().unwrap() {
            2
        } else {
            1
        };
        assert_eq!(raw[0], header, "{entity}");
    }
    // A missing entity with `missing: defaults` reads the service's training defaults.
    let absent = entities.last().unwrap().clone();
    let defaults = ReadOptions {
        missing: Missing::Defaults,
        ..ReadOptions::default()
    };
    let v = client
        .get_many(service, &[absent], &defaults)
        .unwrap()
        .pop()
        .unwrap();
    assert!(!v.found);
    for (name, dtype, value) in v.features() {
        let w = &want["defaults"][name];
        assert!(
            same(dtype, w, value),
            "default {name}: got {value:?}, want {w}"
        );
    }
}

/// docs/contract.md, the contract as readers in other languages get it, held to what fsctl
/// writes: every manifest field has a row, and the expiry formula as written there gives every
/// key's expiry to the millisecond.
#[test]
fn the_contract_doc_describes_what_lands_in_redis() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/contract.md"),
    )
    .unwrap();
    // `_server` keeps the server alive to the end.
    let Committed {
        redis: _server,
        mut con,
        snapshot,
        ..
    } = golden_committed("scoring");
    let m = manifest(&mut con, "fst:golden", "scoring");
    for field in m.as_object().unwrap().keys() {
        assert!(
            doc.contains(&format!("| `{field}` |")),
            "docs/contract.md has no row for manifest field `{field}`"
        );
    }
    for text in [
        "expiry = as_of + floor(online_ttl × (1 + ttl_jitter × u))",
        "(xxh3_64(key) >> 11) / 2^53",
    ] {
        assert!(doc.contains(text), "docs/contract.md lost `{text}`");
    }
    let as_of = m["as_of_ms"].as_i64().unwrap();
    let ttl = m["ttl"]["online_ms"].as_i64().unwrap();
    let jitter = m["ttl"]["jitter"].as_f64().unwrap();
    let keys = data_keys(&mut con, &format!("fst:golden:scoring:{snapshot}:"));
    assert!(!keys.is_empty());
    for (key, _) in keys {
        let u = (xxhash_rust::xxh3::xxh3_64(key.as_bytes()) >> 11) as f64 / (1u64 << 53) as f64;
        let documented = as_of + (ttl as f64 * (1.0 + jitter * u)).floor() as i64;
        let actual: i64 = redis::cmd("PEXPIRETIME").arg(&key).query(&mut con).unwrap();
        assert_eq!(actual, documented, "{key}");
    }
}
