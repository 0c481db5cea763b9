//! The library's `FeatureClient` on a real redis-server: its cache follows `current`, and what
//! it must never return (a foreign fingerprint, an undecodable vector) or must say (a missing
//! entity with `Missing::Raise`, stale views) it does. The contract test reads every dtype.

use std::time::Duration;

use fsctl::client::{Entity, FeatureClient, Missing, ReadOptions, Stale};

use crate::harness::*;

fn client_of(redis: &RedisServer, cache: bool) -> FeatureClient {
    let builder = FeatureClient::builder(&redis.url(), "golden")
        .key_prefix("fst")
        // `current` trusted for 100 ms.
        .retire_grace(Duration::from_millis(200));
    let builder = if cache {
        builder.cache(100, Duration::from_secs(60))
    } else {
        builder
    };
    builder.build().unwrap()
}

fn read(
    client: &FeatureClient,
    ids: &[i64],
    options: &ReadOptions,
) -> fsctl::Result<Vec<fsctl::client::Features>> {
    let entities: Vec<Entity> = ids.iter().map(|&i| Entity::from(i)).collect();
    client.get_many("scoring", &entities, options)
}

#[test]
fn the_cache_serves_hot_entities_and_is_dropped_when_current_moves() {
    let Committed {
        repo,
        redis,
        snapshot,
        ..
    } = golden_committed("scoring");
    let client = client_of(&redis, true);
    let options = ReadOptions::default();
    let first = read(&client, &[1, 2], &options).unwrap();
    assert!(first.iter().all(|v| v.found && *v.snapshot == *snapshot));
    let again = read(&client, &[1, 2], &options).unwrap();
    assert_eq!(
        (client.cache_stats().hits, client.cache_stats().misses),
        (2, 2)
    );
    assert_eq!(again[0].values, first[0].values);
    // A new snapshot: once `current` is read again, the cached vectors of the old one go.
    fsctl(
        repo.path(),
        Some(&redis),
        &[
            "materialize",
            "--service",
            "scoring",
            "--end",
            "2025-11-23T01:00:00Z",
        ],
    )
    .ok();
    wait_for(|| {
        read(&client, &[1, 2], &options).unwrap()[0]
            .snapshot
            .as_ref()
            != snapshot
    });
    let stats = client.cache_stats();
    let moved = read(&client, &[1, 2], &options).unwrap();
    assert!(
        moved
            .iter()
            .all(|v| v.found && v.key.contains(&*v.snapshot))
    );
    assert_eq!(
        client.cache_stats().size,
        2,
        "only the new snapshot's vectors: {stats:?}"
    );
}

#[test]
fn a_foreign_or_undecodable_vector_is_an_error_never_a_result() {
    let Committed {
        redis,
        mut con,
        snapshot,
        ..
    } = golden_committed("scoring");
    let client = client_of(&redis, false);
    let key = format!("{GOLDEN_PREFIX}:scoring:{snapshot}:1");
    let mut raw: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
    // Byte 0 header, 1 the array marker, 2 the u64 marker, then the fingerprint.
    raw[5] ^= 0xff;
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(&raw)
        .query(&mut con)
        .unwrap();
    let err = read(&client, &[1], &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&key) && err.contains("differs from the committed manifest's"),
        "{err}"
    );
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("xx")
        .query(&mut con)
        .unwrap();
    let err = read(&client, &[1], &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&key) && err.contains("cannot decode vector"),
        "{err}"
    );
}

#[test]
fn missing_entities_and_stale_views_read_as_the_options_say() {
    let Committed { redis, .. } = golden_committed("scoring");
    let client = client_of(&redis, false);
    let raise = ReadOptions {
        missing: Missing::Raise,
        ..ReadOptions::default()
    };
    let err = read(&client, &[424242], &raise).unwrap_err();
    assert!(matches!(err, fsctl::Error::VectorNotFound { .. }), "{err}");
    assert!(err.to_string().contains(":424242"), "{err}");
    let none = read(&client, &[424242], &ReadOptions::default()).unwrap();
    assert!(!none[0].found && none[0].values.is_empty());
    // The golden window ended in 2025 and its views' ttl is 1 day: every view with a row is
    // stale now. Flagged by default; with `Stale::Missing` the vector counts as missing.
    let flagged = read(&client, &[1], &ReadOptions::default()).unwrap();
    assert!(flagged[0].found);
    assert_eq!(flagged[0].stale_views(), vec!["profile", "txn"]);
    let as_missing = ReadOptions {
        stale: Stale::Missing,
        missing: Missing::Defaults,
        ..ReadOptions::default()
    };
    let v = read(&client, &[1], &as_missing).unwrap().pop().unwrap();
    assert!(!v.found);
    assert_eq!(
        v.get("profile.segment"),
        Some(&fsctl::vector::Value::Str("none".into()))
    );
    assert_eq!(v.stale_views(), vec!["profile", "txn"], "view times kept");
}
