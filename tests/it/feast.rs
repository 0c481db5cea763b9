//! A Feast project materialized in Feast's layout (SPEC §3.4), from the committed fixture
//! (`fixtures/feast/fsdrop`, made by Feast 0.67 with `scripts/feast-fixture.py`): the hashes
//! Feast reads, Feast's newer-wins rule, the incremental window and the no-op rerun. Byte parity
//! with `feast materialize` itself is `python/tests/test_feast.py`, which runs the real Feast.

use std::collections::BTreeMap;

use redis::Commands;

use crate::harness::*;

const END: &str = "2025-11-23T00:00:00Z";

/// Feast's v3 Redis key of driver_id=`id` in project fsdrop (FEAST.md §3.5, byte for byte).
fn driver_key(id: i64) -> Vec<u8> {
    let mut k = Vec::new();
    for v in [1u32, 2, 9] {
        k.extend_from_slice(&v.to_le_bytes());
    }
    k.extend_from_slice(b"driver_id");
    k.extend_from_slice(&4u32.to_le_bytes());
    k.extend_from_slice(&8u32.to_le_bytes());
    k.extend_from_slice(&id.to_le_bytes());
    k.extend_from_slice(b"fsdrop");
    k
}

/// The hash field of a feature: murmur3("<view>:<feature>") little-endian, from the values
/// Feast 0.67 printed (FEAST.md §3.5) where there is one.
fn field(view: &str, feature: &str) -> Vec<u8> {
    fsctl::vector::feast::field(view, feature).to_vec()
}

/// Seconds of a protobuf Timestamp.
fn seconds(ts: &[u8]) -> i64 {
    assert_eq!(ts.first(), Some(&0x08), "{ts:?}");
    let (mut v, mut shift) = (0u64, 0);
    for &b in &ts[1..] {
        v |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b < 0x80 {
            break;
        }
    }
    v as i64
}

fn hashes(con: &mut redis::Connection) -> BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>> {
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(con).unwrap();
    keys.into_iter()
        .filter(|k| !k.starts_with(b"fs:"))
        .map(|k| {
            let mut h: BTreeMap<Vec<u8>, Vec<u8>> = con.hgetall(&k).unwrap();
            // Computed at write time, like Feast's own.
            h.retain(|f, _| !f.starts_with(b"_ts:__precomputed__"));
            h.retain(|f, _| *f != field("__precomputed__svc_pre", "vector"));
            h.retain(|f, _| *f != field("__precomputed__svc_pre_alias", "vector"));
            (k, h)
        })
        .collect()
}

fn materialize(repo: &std::path::Path, redis: &RedisServer, args: &[&str]) -> Run {
    let mut all = vec!["--format", "json", "materialize"];
    all.extend_from_slice(args);
    fsctl(repo, Some(redis), &all)
}

fn status_of(run: &Run, service: &str) -> String {
    run.json()["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == service)
        .unwrap_or_else(|| panic!("{service} not in {}", run.stdout))["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_feast_project_lands_as_feasts_hashes_and_a_rerun_is_a_no_op() {
    let repo = scratch_repo("feast/fsdrop");
    let redis = RedisServer::start();
    let mut con = redis.con();
    let run = materialize(
        repo.path(),
        &redis,
        &["--start", "2025-11-19T00:00:00Z", "--end", END],
    );
    run.ok();
    // One unit per entity: every view keyed by driver_id, and the vectors keyed by it.
    assert_eq!(status_of(&run, "entity:driver"), "committed");

    let key = driver_key(1001);
    let h: BTreeMap<Vec<u8>, Vec<u8>> = con.hgetall(&key).unwrap();
    // One field per feature of every view keyed by driver_id, and each view's `_ts`.
    for view in ["driver_stats", "driver_lists"] {
        let ts = &h[format!("_ts:{view}").as_bytes()];
        assert!(seconds(ts) > 1_763_000_000, "{view}: {ts:?}");
    }
    assert!(h.contains_key(&field("driver_stats", "conv_rate")));
    assert!(h.contains_key(&field("driver_lists", "tags")));
    // The precomputed vector of svc_pre, under the first projection's entity.
    assert!(h.contains_key(b"_ts:__precomputed__svc_pre".as_slice()));
    assert!(h.contains_key(&field("__precomputed__svc_pre", "vector")));
    // Feast's EXPIRE key_ttl_seconds (86400), never sooner, spread by the jitter.
    let ttl: i64 = con.ttl(&key).unwrap();
    assert!((86_390..=86_400 * 12 / 10).contains(&ttl), "ttl {ttl}");
    // fsctl's own manifest per unit, where the next run continues.
    let manifest: String = con.get("fs:fsdrop:{driver_stats}:feast").unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(manifest["window"]["end"], END);

    let before = hashes(&mut con);
    let again = materialize(
        repo.path(),
        &redis,
        &["--start", "2025-11-19T00:00:00Z", "--end", END],
    );
    again.ok();
    assert_eq!(status_of(&again, "entity:driver"), "already_committed");
    assert_eq!(hashes(&mut con), before);
}

#[test]
fn a_newer_row_in_redis_survives_an_older_run() {
    let repo = scratch_repo("feast/fsdrop");
    let redis = RedisServer::start();
    let mut con = redis.con();
    materialize(
        repo.path(),
        &redis,
        &["--start", "2025-11-19T00:00:00Z", "--end", END],
    )
    .ok();
    let fresh = driver_key(1001);
    let stale = driver_key(1002);
    let conv = field("driver_stats", "conv_rate");
    // `feast push` wrote a fresher row for 1001 (2030-01-01), and 1002's row was lost.
    let pushed_ts: Vec<u8> = {
        let mut t = vec![0x08];
        let mut v = 1_893_456_000u64;
        while v >= 0x80 {
            t.push((v as u8) | 0x80);
            v >>= 7;
        }
        t.push(v as u8);
        t
    };
    let pushed_value = b"\x35\x00\x00\x80\x3f".to_vec(); // float 1.0
    let _: () = con
        .hset_multiple(
            &fresh,
            &[
                (b"_ts:driver_stats".to_vec(), pushed_ts.clone()),
                (conv.clone(), pushed_value.clone()),
            ],
        )
        .unwrap();
    let written: Vec<u8> = con.hget(&stale, &conv).unwrap();
    let _: () = con.hdel(&stale, &conv).unwrap();
    let _: () = con.hdel(&stale, "_ts:driver_stats").unwrap();

    let run = materialize(
        repo.path(),
        &redis,
        &[
            "--start",
            "2025-11-19T00:00:00Z",
            "--end",
            END,
            "--force",
            "--service",
            "driver_stats",
        ],
    );
    run.ok();
    let now: Vec<u8> = con.hget(&fresh, &conv).unwrap();
    assert_eq!(now, pushed_value, "the pushed, newer value was overwritten");
    let ts: Vec<u8> = con.hget(&fresh, "_ts:driver_stats").unwrap();
    assert_eq!(ts, pushed_ts);
    let restored: Vec<u8> = con.hget(&stale, &conv).unwrap();
    assert_eq!(
        restored, written,
        "an entity without a newer row is written"
    );
}

#[test]
fn runs_continue_where_the_last_ended_and_refuse_going_back() {
    let repo = scratch_repo("feast/fsdrop");
    let redis = RedisServer::start();
    let first = materialize(
        repo.path(),
        &redis,
        &[
            "--service",
            "customer_profile",
            "--end",
            "2025-11-22T00:00:00Z",
        ],
    );
    first.ok();
    let second = materialize(
        repo.path(),
        &redis,
        &["--service", "customer_profile", "--end", END],
    );
    second.ok();
    let m = &second.json()["services"][0]["manifest"];
    assert_eq!(
        m["views"][0]["window"]["start"], "2025-11-22T00:00:00Z",
        "{m}"
    );
    assert_eq!(m["window"]["end"], END);

    let older = materialize(
        repo.path(),
        &redis,
        &[
            "--service",
            "customer_profile",
            "--end",
            "2025-11-21T00:00:00Z",
        ],
    );
    assert_eq!(older.code, 1, "{}", older.stdout);
    let error = &older.json()["error"];
    assert!(
        error["message"].as_str().unwrap().contains("2025-11-23"),
        "{error}"
    );
    materialize(
        repo.path(),
        &redis,
        &[
            "--service",
            "customer_profile",
            "--end",
            "2025-11-21T00:00:00Z",
            "--force",
        ],
    )
    .ok();
}

#[test]
fn a_run_that_died_before_its_manifest_is_rerun_to_the_same_hashes() {
    let repo = scratch_repo("feast/fsdrop");
    let redis = RedisServer::start();
    let mut con = redis.con();
    let args = ["--start", "2025-11-19T00:00:00Z", "--end", END];
    materialize(repo.path(), &redis, &args).ok();
    let whole = hashes(&mut con);
    // As if the run had been killed after some writes: no manifest, part of the data.
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("fs:*").query(&mut con).unwrap();
    let _: () = con.del(keys).unwrap();
    let _: () = con.del(driver_key(1003)).unwrap();
    let rerun = materialize(repo.path(), &redis, &args);
    rerun.ok();
    assert_eq!(status_of(&rerun, "entity:driver"), "committed");
    assert_eq!(hashes(&mut con), whole);
}

#[test]
fn validate_names_what_fsctl_cannot_compute_and_the_rest_materializes() {
    let repo = scratch_repo("feast/fsdrop-unsupported");
    let redis = RedisServer::start();
    let v = fsctl(repo.path(), None, &["validate"]);
    let all = format!("{}{}", v.stdout, v.stderr);
    assert_eq!(v.code, 0, "{all}");
    for needle in [
        "on-demand feature view",
        "stream feature view",
        "global_stats",
    ] {
        assert!(all.contains(needle), "{needle} not in:\n{all}");
    }
    materialize(
        repo.path(),
        &redis,
        &["--start", "2025-11-19T00:00:00Z", "--end", END],
    )
    .ok();
    let mut con = redis.con();
    let h: BTreeMap<Vec<u8>, Vec<u8>> = con.hgetall(driver_key(1001)).unwrap();
    assert!(h.contains_key(b"_ts:driver_stats".as_slice()));
}

#[test]
fn the_registry_may_live_in_s3() {
    let moto = crate::s3::Moto::start();
    moto.create_bucket("fsdrop-registry");
    let repo = scratch_repo("feast/fsdrop");
    let registry = std::fs::read(repo.path().join("data/registry.db")).unwrap();
    moto.put("fsdrop-registry", "feast/registry.db", &registry);
    std::fs::remove_file(repo.path().join("data/registry.db")).unwrap();
    edit_yaml(
        repo.path(),
        "registry: data/registry.db",
        "registry: s3://fsdrop-registry/feast/registry.db",
    );
    let redis = RedisServer::start();
    let out = fsctl_command(
        repo.path(),
        &redis.url(),
        &["materialize", "--service", "driver_stats", "--end", END],
    )
    // Feast's own way to point boto3 at another endpoint (FEAST.md §1.1).
    .env(
        "FEAST_S3_ENDPOINT_URL",
        format!("http://127.0.0.1:{}", moto.port),
    )
    .env("AWS_ACCESS_KEY_ID", "test")
    .env("AWS_SECRET_ACCESS_KEY", "registry-secret-never-printed")
    .env("AWS_REGION", "us-east-1")
    .env_remove("AWS_PROFILE")
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let mut con = redis.con();
    let h: BTreeMap<Vec<u8>, Vec<u8>> = con.hgetall(driver_key(1001)).unwrap();
    assert!(h.contains_key(b"_ts:driver_stats".as_slice()));

    // A registry that is not there is named, with nothing written.
    edit_yaml(repo.path(), "feast/registry.db", "feast/missing.db");
    let out = fsctl_command(repo.path(), &redis.url(), &["validate"])
        .env(
            "FEAST_S3_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", moto.port),
        )
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "registry-secret-never-printed")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let all =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("s3://fsdrop-registry/feast/missing.db"),
        "{all}"
    );
    assert!(!all.contains("registry-secret-never-printed"), "{all}");
}

#[test]
fn get_warm_status_and_validate_read_feasts_hashes() {
    let repo = scratch_repo("feast/fsdrop");
    let redis = RedisServer::start();
    let mut con = redis.con();
    materialize(
        repo.path(),
        &redis,
        &["--start", "2025-11-19T00:00:00Z", "--end", END],
    )
    .ok();

    // `get` decodes the hash the way Feast's reader does, under Feast's full feature names.
    let got = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "--format",
            "json",
            "get",
            "--service",
            "svc_pre_alias",
            "--entity",
            "driver_id=1001",
        ],
    );
    got.ok();
    let doc = got.json();
    let values = doc["values"].as_object().unwrap();
    let names: Vec<&str> = values.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "ds_alias__conv_rate",
            "ds_alias__last_trip",
            "driver_ratings__rating"
        ]
    );
    // The same value as the field Feast stores (a float32 Value: 0x35 + 4 bytes).
    let raw: Vec<u8> = con
        .hget(driver_key(1001), field("driver_stats", "conv_rate"))
        .unwrap();
    let stored = f32::from_le_bytes(raw[1..5].try_into().unwrap());
    assert_eq!(
        values["ds_alias__conv_rate"].as_f64().unwrap() as f32,
        stored
    );
    let missing = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "get",
            "--service",
            "driver_stats",
            "--entity",
            "driver_id=424242",
        ],
    );
    assert_eq!(missing.code, 1, "{}", missing.stderr);

    // `warm` gives the hottest hashes the hot TTL (2 x key_ttl_seconds) and names the absent.
    let pop = repo.path().join("pop.parquet");
    write_parquet(
        &pop,
        vec![
            (
                "driver_id",
                std::sync::Arc::new(arrow::array::Int64Array::from(vec![1001, 424242])) as _,
            ),
            (
                "requests",
                std::sync::Arc::new(arrow::array::Float64Array::from(vec![9.0, 1.0])) as _,
            ),
        ],
    );
    let warm = fsctl(
        repo.path(),
        Some(&redis),
        &[
            "--format",
            "json",
            "warm",
            "--service",
            "driver_stats",
            "--top-n",
            "2",
            "--from",
            pop.to_str().unwrap(),
            "--score-column",
            "requests",
        ],
    );
    warm.ok();
    let tier = &warm.json()["services"][0]["tiers"][0];
    assert_eq!(
        (tier["present"].as_u64(), tier["absent"].as_u64()),
        (Some(1), Some(1)),
        "{tier}"
    );
    let ttl: i64 = con.ttl(driver_key(1001)).unwrap();
    assert!(ttl > 2 * 86_400 - 10, "ttl {ttl}");

    // `status` reads each unit's manifest; `validate --online` checks them.
    let status = fsctl(
        repo.path(),
        Some(&redis),
        &["--format", "json", "status", "--max-age", "3650d"],
    );
    status.ok();
    let services = status.json()["services"].as_array().unwrap().clone();
    assert!(services.iter().all(|s| s["as_of"] == END), "{services:?}");
    fsctl(repo.path(), Some(&redis), &["validate", "--online"]).ok();
    let _: () = con.del("fs:fsdrop:{entity:customer}:feast").unwrap();
    let v = fsctl(repo.path(), Some(&redis), &["validate", "--online"]);
    assert_eq!(v.code, 1);
    let all = format!("{}{}", v.stdout, v.stderr);
    assert!(all.contains("entity:customer"), "{all}");

    // What has no meaning without snapshots says so.
    for cmd in [
        ["snapshots"].as_slice(),
        &["gc"],
        &["rollback", "--service", "driver_stats"],
    ] {
        let r = fsctl(repo.path(), Some(&redis), cmd);
        assert_eq!(r.code, 2, "{cmd:?}: {}", r.stderr);
        assert!(r.stderr.contains("layout: feast"), "{}", r.stderr);
    }
}

#[test]
fn a_redis_cluster_holds_the_same_hashes() {
    let repo = scratch_repo("feast/fsdrop");
    edit_yaml(
        repo.path(),
        "  type: redis\n",
        "  type: redis\n  redis_type: redis_cluster\n",
    );
    let cluster = RedisCluster::start(3, 0);
    let single = RedisServer::start();
    let args = [
        "materialize",
        "--start",
        "2025-11-19T00:00:00Z",
        "--end",
        END,
    ];
    fsctl_url(repo.path(), &cluster.url(), &args).ok();
    let plain = scratch_repo("feast/fsdrop");
    fsctl(plain.path(), Some(&single), &args).ok();
    let expected = hashes(&mut single.con());
    assert!(expected.len() > 20);
    let mut got = BTreeMap::new();
    for mut con in cluster.primary_cons() {
        got.extend(hashes(&mut con));
    }
    assert_eq!(got, expected);
    // The keys spread over the primaries.
    let per_node: Vec<usize> = cluster
        .primary_cons()
        .into_iter()
        .map(|mut c| hashes(&mut c).len())
        .collect();
    assert!(
        per_node.iter().filter(|n| **n > 0).count() >= 2,
        "{per_node:?}"
    );
}

#[test]
fn layout_fsctl_serves_the_same_values_as_feasts_layout() {
    let feast = scratch_repo("feast/fsdrop");
    let own = scratch_repo("feast/fsdrop");
    // fsctl's settings sit in a top-level section, which Feast's own loader accepts.
    let yaml = own.path().join("feature_store.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    std::fs::write(
        &yaml,
        format!("{text}fsctl:\n  layout: fsctl\n  key_prefix: fsx\n"),
    )
    .unwrap();
    let redis = RedisServer::start();
    // One window for both (ending now: the fsctl layout's keys expire a day after it).
    let end = fsctl::base::time::format_us(fsctl::base::time::now_us());
    let args = [
        "materialize",
        "--start",
        "2025-11-19T00:00:00Z",
        "--end",
        end.as_str(),
    ];
    fsctl(feast.path(), Some(&redis), &args).ok();
    fsctl(own.path(), Some(&redis), &args).ok();
    for (service, entity) in [
        ("svc_subset", "driver_id=1001"),
        ("svc_all", "driver_id=1003"),
    ] {
        let get = |repo: &std::path::Path| {
            let r = fsctl(
                repo,
                Some(&redis),
                &[
                    "--format",
                    "json",
                    "get",
                    "--service",
                    service,
                    "--entity",
                    entity,
                ],
            );
            r.ok();
            r.json()["values"].as_object().unwrap().clone()
        };
        let (in_feast, in_fsctl) = (get(feast.path()), get(own.path()));
        assert_eq!(in_feast.len(), in_fsctl.len(), "{service}");
        for (name, value) in &in_fsctl {
            // `view.feature` in fsctl's vectors, `view__feature` in Feast's full names.
            let feast_name = name.replacen('.', "__", 1);
            assert_eq!(&in_feast[&feast_name], value, "{service} {name}");
        }
    }
    // Services across entities have no fsctl vector, and validate says why.
    let v = fsctl(own.path(), None, &["validate"]);
    assert!(
        v.stderr.contains("svc_mixed") || v.stdout.contains("svc_mixed"),
        "{}",
        v.stderr
    );
}

#[test]
fn shards_write_their_entities_and_the_commit_records_the_window() {
    let repo = scratch_repo("feast/fsdrop");
    let whole = RedisServer::start();
    let args = ["--start", "2025-11-19T00:00:00Z", "--end", END];
    materialize(repo.path(), &whole, &args).ok();
    let expected = hashes(&mut whole.con());

    let sharded = RedisServer::start();
    let mut con = sharded.con();
    for i in 0..2 {
        let shard = format!("{i}/2");
        let mut a = args.to_vec();
        a.extend(["--shard", shard.as_str()]);
        let run = materialize(repo.path(), &sharded, &a);
        run.ok();
        assert_eq!(status_of(&run, "entity:driver"), "shard_recorded");
        // No unit is committed before the commit.
        let m: Option<String> = con.get("fs:fsdrop:{driver_stats}:feast").unwrap();
        assert_eq!(m, None);
    }
    assert_eq!(hashes(&mut con), expected);
    let commit = fsctl(
        repo.path(),
        Some(&sharded),
        &[
            "--format",
            "json",
            "commit",
            "--start",
            "2025-11-19T00:00:00Z",
            "--end",
            END,
            "--shards",
            "2",
        ],
    );
    commit.ok();
    let m: String = con.get("fs:fsdrop:{driver_stats}:feast").unwrap();
    let m: serde_json::Value = serde_json::from_str(&m).unwrap();
    let single: String = whole.con().get("fs:fsdrop:{driver_stats}:feast").unwrap();
    let single: serde_json::Value = serde_json::from_str(&single).unwrap();
    assert_eq!(m["entities"], single["entities"]);
    assert_eq!(m["window"], single["window"]);
    // A rerun of the job is a no-op now.
    let again = materialize(repo.path(), &sharded, &args);
    again.ok();
    assert_eq!(status_of(&again, "entity:driver"), "already_committed");
}

#[test]
fn entity_keys_follow_the_projects_serialization_version() {
    let repo = scratch_repo("feast/fsdrop");
    edit_yaml(
        repo.path(),
        "entity_key_serialization_version: 3",
        "entity_key_serialization_version: 2",
    );
    let redis = RedisServer::start();
    materialize(
        repo.path(),
        &redis,
        &[
            "--service",
            "driver_stats",
            "--start",
            "2025-11-19T00:00:00Z",
            "--end",
            END,
        ],
    )
    .ok();
    // v2: no key count, no name length (FEAST.md §3.5), then the project.
    let mut v2 = Vec::new();
    v2.extend_from_slice(&2u32.to_le_bytes());
    v2.extend_from_slice(b"driver_id");
    v2.extend_from_slice(&4u32.to_le_bytes());
    v2.extend_from_slice(&8u32.to_le_bytes());
    v2.extend_from_slice(&1001i64.to_le_bytes());
    v2.extend_from_slice(b"fsdrop");
    let mut con = redis.con();
    let ts: Option<Vec<u8>> = con.hget(&v2, "_ts:driver_stats").unwrap();
    assert!(ts.is_some(), "no v2 hash for driver 1001");
    let v3: bool = con.exists(driver_key(1001)).unwrap();
    assert!(!v3);
    // Version 1 (4-byte integers) is refused, naming the key.
    edit_yaml(
        repo.path(),
        "entity_key_serialization_version: 2",
        "entity_key_serialization_version: 1",
    );
    let v = fsctl(repo.path(), None, &["validate"]);
    let all = format!("{}{}", v.stdout, v.stderr);
    assert_eq!(v.code, 2, "{all}");
    assert!(all.contains("entity_key_serialization_version 1"), "{all}");
}

#[test]
fn a_killed_runs_rerun_writes_what_one_run_writes() {
    let repo = scratch_repo("feast/fsdrop");
    // The registry names the file, not its rows: a large customer_profile in its place.
    let n = 100_000;
    let ids: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let ts = arrow::array::TimestampMicrosecondArray::from(vec![1_763_700_000_000_000i64; n])
        .with_timezone("UTC");
    write_parquet(
        &repo.path().join("data/customer_profile.parquet"),
        vec![
            (
                "customer_id",
                std::sync::Arc::new(arrow::array::StringArray::from(ids)) as _,
            ),
            ("event_timestamp", std::sync::Arc::new(ts) as _),
            (
                "segment",
                std::sync::Arc::new(arrow::array::StringArray::from(vec!["gold"; n])) as _,
            ),
            (
                "ltv",
                std::sync::Arc::new(arrow::array::Float64Array::from(vec![1.5; n])) as _,
            ),
            (
                "visits",
                std::sync::Arc::new(arrow::array::Int64Array::from(
                    (0..n as i64).collect::<Vec<_>>(),
                )) as _,
            ),
        ],
    );
    let yaml = repo.path().join("feature_store.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    std::fs::write(&yaml, format!("{text}fsctl:\n  lock_lease: 1s\n")).unwrap();
    let args = [
        "materialize",
        "--service",
        "customer_profile",
        "--start",
        "2025-11-19T00:00:00Z",
        "--end",
        END,
    ];

    let whole = RedisServer::start();
    fsctl(repo.path(), Some(&whole), &args).ok();
    let expected = hashes(&mut whole.con());
    assert_eq!(expected.len(), n);

    let redis = RedisServer::start();
    let mut con = redis.con();
    let mut child = fsctl_command(repo.path(), &redis.url(), &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(|| redis::cmd("DBSIZE").query::<i64>(&mut con).unwrap() >= 1000);
    child.kill().unwrap(); // SIGKILL mid-write
    child.wait().unwrap();
    let m: Option<String> = con.get("fs:fsdrop:{customer_profile}:feast").unwrap();
    assert_eq!(m, None, "a killed run recorded its window");
    // The rerun waits out the dead run's lease, then completes the job.
    fsctl(
        repo.path(),
        Some(&redis),
        &[&args[..], &["--wait-lock", "10s"]].concat(),
    )
    .ok();
    assert_eq!(hashes(&mut con), expected);
}
