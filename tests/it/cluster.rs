//! Redis Cluster (SPEC §3.2): a real local cluster of three primaries (with replicas where a
//! failover is tested), the same bytes as on one server, resharding and failover mid-write.

use std::process::{Child, Stdio};

use crate::faults::{big_repo, hour_rfc3339, now_hour};
use crate::harness::*;

const BANKING: &str = "fs:banking";
const SERVICE: &str = "realtime_scoring";

/// The example repo over generated banking data, pointed at a cluster.
fn big_cluster_repo() -> tempfile::TempDir {
    let repo = big_repo(200_000);
    edit_yaml(repo.path(), "type: redis\n", "type: redis_cluster\n");
    repo
}

fn materialize_args(end: &str) -> [&str; 7] {
    [
        "--format",
        "json",
        "materialize",
        "--service",
        SERVICE,
        "--end",
        end,
    ]
}

/// Materializes the banking service on `cluster` for the window ending at `end`.
fn materialize_on(repo: &std::path::Path, cluster: &RedisCluster, end: &str) -> Run {
    fsctl_url(repo, &cluster.url(), &materialize_args(end))
}

fn spawn_on(repo: &std::path::Path, cluster: &RedisCluster, end: &str) -> Child {
    fsctl_command(repo, &cluster.url(), &materialize_args(end))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the primary `i` holds more than `n` keys.
fn wait_for_keys_on(cluster: &RedisCluster, i: usize, n: i64) {
    let mut con = cluster.nodes[i].con();
    wait_for(|| redis::cmd("DBSIZE").query::<i64>(&mut con).unwrap_or(0) > n);
}

/// The committed snapshot and manifest of the banking service on the cluster.
fn committed(cluster: &RedisCluster) -> Option<(String, serde_json::Value)> {
    committed_on(cluster, BANKING, SERVICE)
}

/// The committed snapshot and manifest of `service` under `prefix`, from its control node.
fn committed_on(
    cluster: &RedisCluster,
    prefix: &str,
    service: &str,
) -> Option<(String, serde_json::Value)> {
    let mut con = cluster.con_for(&format!("{prefix}:{{{service}}}:current"));
    let snap = current(&mut con, prefix, service)?;
    Some((snap, manifest(&mut con, prefix, service)))
}

/// Every key the committed snapshot's manifest counts is on the cluster; returns them.
fn assert_keys_landed(
    cluster: &RedisCluster,
    prefix: &str,
    service: &str,
) -> Vec<(String, Vec<u8>)> {
    let (snap, manifest) = committed_on(cluster, prefix, service).expect("a committed snapshot");
    let keys = cluster.data_keys(&format!("{prefix}:{service}:{snap}:"));
    assert_eq!(
        keys.len() as u64,
        manifest["keys_written"].as_u64().unwrap(),
        "every key landed"
    );
    keys
}

/// Every key of the committed snapshot is on the cluster, and a sample reads back through
/// `get` with the snapshot's fingerprint.
fn assert_whole(cluster: &RedisCluster, repo: &std::path::Path) {
    let keys = assert_keys_landed(cluster, BANKING, SERVICE);
    for (key, _) in keys.iter().step_by(keys.len() / 5) {
        let entity = key.rsplit(':').next().unwrap();
        let get = fsctl_url(
            repo,
            &cluster.url(),
            &[
                "get",
                "--service",
                SERVICE,
                "--entity",
                &format!("customer_id={entity}"),
            ],
        );
        get.ok();
    }
}

#[test]
fn a_cluster_holds_the_same_keys_and_bytes_as_one_server() {
    let single = golden_committed("scoring");
    let expected = data_keys(
        &mut single.redis.con(),
        &format!("{GOLDEN_PREFIX}:scoring:{}:", single.snapshot),
    );
    assert!(!expected.is_empty());

    let cluster = RedisCluster::start(3, 0);
    // The same repo (the snapshot id covers its files' identity), now naming a cluster.
    let repo = &single.repo;
    edit_yaml(repo.path(), "type: redis\n", "type: redis_cluster\n");
    let run = fsctl_url(
        repo.path(),
        &cluster.url(),
        &["materialize", "--service", "scoring", "--end", GOLDEN_END],
    );
    run.ok();
    let prefix = format!("{GOLDEN_PREFIX}:scoring:{}:", single.snapshot);
    let landed = cluster.data_keys(&prefix);
    assert_eq!(landed.len(), expected.len());
    assert_eq!(landed, expected, "the same keys and bytes as on one server");
    // The keys spread over every primary.
    for mut c in cluster.primary_cons() {
        assert!(
            !data_keys(&mut c, &prefix).is_empty(),
            "a primary got no keys"
        );
    }
    let mut control = cluster.con_for(&format!("{GOLDEN_PREFIX}:{{scoring}}:current"));
    assert_eq!(
        current(&mut control, GOLDEN_PREFIX, "scoring").as_deref(),
        Some(single.snapshot.as_str())
    );
    // `get` reads a vector back through the cluster.
    let get = fsctl_url(
        repo.path(),
        &cluster.url(),
        &[
            "get",
            "--service",
            "scoring",
            "--entity",
            "customer_id=1",
            "--format",
            "json",
        ],
    );
    get.ok();
    edit_yaml(repo.path(), "type: redis_cluster\n", "type: redis\n");
    let single_get = fsctl(
        repo.path(),
        Some(&single.redis),
        &[
            "get",
            "--service",
            "scoring",
            "--entity",
            "customer_id=1",
            "--format",
            "json",
        ],
    );
    let (got, want) = (get.json(), single_get.ok().json());
    assert!(got["values"].as_object().is_some_and(|v| !v.is_empty()));
    assert_eq!(got["values"], want["values"]);
    assert_eq!(got["key"], want["key"]);
}

#[test]
fn slots_moving_mid_write_are_followed_and_every_key_lands() {
    let cluster = RedisCluster::start(3, 0);
    let repo = big_cluster_repo();
    let end = hour_rfc3339(now_hour());
    let child = spawn_on(repo.path(), &cluster, &end);
    wait_for_keys_on(&cluster, 0, 1000);
    // Move 2000 slots, with their keys, from the first primary to the second mid-run.
    cluster.reshard(0, 1, 2000);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_whole(&cluster, repo.path());
    // The slots did move: the second primary serves more than a third now.
    let slots: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query(&mut cluster.nodes[1].con())
        .unwrap();
    assert!(slots.contains("cluster_state:ok"));
}

#[test]
fn a_primary_failing_over_mid_write_commits_nothing_and_a_rerun_completes() {
    let mut cluster = RedisCluster::start(3, 1);
    let repo = big_cluster_repo();
    let end = hour_rfc3339(now_hour());
    let child = spawn_on(repo.path(), &cluster, &end);
    wait_for_keys_on(&cluster, 0, 1000);
    let killed = cluster.nodes[0].port;
    cluster.nodes[0].kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        // The run may finish before the kill bites; then the snapshot is whole.
        Some(0) => assert_whole(&cluster, repo.path()),
        Some(1) => {
            assert!(stderr.contains("nothing was committed"), "{stderr}");
            assert!(
                stderr.contains(&killed.to_string()),
                "names the node: {stderr}"
            );
            assert!(committed(&cluster).is_none(), "nothing committed");
        }
        other => panic!("exit {other:?}: {stderr}"),
    }
    // The replica took over; the rerun completes.
    cluster.wait_until(|info| info.contains("cluster_state:ok"));
    materialize_on(repo.path(), &cluster, &end).ok();
    assert_whole(&cluster, repo.path());
}

#[test]
fn a_primary_killed_without_replicas_is_named_and_nothing_is_committed() {
    let mut cluster = RedisCluster::start(3, 0);
    let repo = big_cluster_repo();
    edit_yaml(
        repo.path(),
        "key_prefix: fs\n",
        "key_prefix: fs\n  retry_attempts: 3\n",
    );
    let end = hour_rfc3339(now_hour());
    let child = spawn_on(repo.path(), &cluster, &end);
    wait_for_keys_on(&cluster, 1, 1000);
    let killed = cluster.nodes[1].port;
    cluster.nodes[1].kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{killed}")),
        "names the node: {stderr}"
    );
    assert!(stderr.contains("nothing was committed"), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "redis", "{doc}");
}

#[test]
fn retirement_gc_and_rollback_work_across_the_primaries() {
    let cluster = RedisCluster::start(3, 0);
    let repo = scratch_repo("golden");
    edit_yaml(repo.path(), "type: redis\n", "type: redis_cluster\n");
    edit_yaml(
        repo.path(),
        "  ttl_jitter: 0.1\n",
        "  ttl_jitter: 0.1\n  keep_snapshots: 1\n  retire_grace: 1s\n",
    );
    let run = |args: &[&str]| fsctl_url(repo.path(), &cluster.url(), args);
    let materialize = |end: &str| {
        let doc = run(&[
            "--format",
            "json",
            "materialize",
            "--service",
            "scoring",
            "--end",
            end,
        ])
        .ok()
        .json();
        doc["services"][0]["snapshot"].as_str().unwrap().to_owned()
    };
    let first = materialize(GOLDEN_END);
    let first_keys = format!("{GOLDEN_PREFIX}:scoring:{first}:");
    assert!(!cluster.data_keys(&first_keys).is_empty());
    let second = materialize("2025-11-23T01:00:00Z");
    assert_ne!(first, second);
    // The first snapshot is retired on every primary once the grace has passed.
    wait_for(|| cluster.data_keys(&first_keys).is_empty());
    assert!(
        !cluster
            .data_keys(&format!("{GOLDEN_PREFIX}:scoring:{second}:"))
            .is_empty()
    );
    let history = run(&["--format", "json", "snapshots", "--service", "scoring"])
        .ok()
        .json();
    let states: Vec<(String, String)> = history["services"][0]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["snapshot"].as_str().unwrap().into(),
                s["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        states.contains(&(second.clone(), "current".into())),
        "{states:?}"
    );
    assert!(
        !states.contains(&(first.clone(), "current".into())),
        "{states:?}"
    );
    // A retired snapshot cannot become current again; gc finds nothing more to free.
    let rollback = run(&["rollback", "--service", "scoring", "--to", &first]);
    assert_eq!(rollback.code, 1, "{}", rollback.stderr);
    run(&["gc", "--service", "scoring"]).ok();
    let mut control = cluster.con_for(&format!("{GOLDEN_PREFIX}:{{scoring}}:current"));
    assert_eq!(
        current(&mut control, GOLDEN_PREFIX, "scoring"),
        Some(second)
    );
}

#[test]
fn readers_on_a_cluster_only_ever_see_whole_committed_snapshots() {
    let cluster = RedisCluster::start(3, 0);
    let repo = big_cluster_repo();
    let reader = crate::faults::ReaderLoop::start(repo.path(), cluster.url(), false);
    // Successive runs; during the last one, slots move from one primary to another.
    for hour in [now_hour() - 2, now_hour() - 1] {
        materialize_on(repo.path(), &cluster, &hour_rfc3339(hour)).ok();
    }
    let end = hour_rfc3339(now_hour());
    let child = spawn_on(repo.path(), &cluster, &end);
    cluster.reshard(2, 0, 1000);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    reader.finish();
}

#[test]
fn emit_resp_writes_one_stream_per_primary_that_replays_into_it() {
    let cluster = RedisCluster::start(3, 0);
    let repo = scratch_repo("golden");
    edit_yaml(repo.path(), "type: redis\n", "type: redis_cluster\n");
    let out = tempfile::tempdir().unwrap();
    let stream = out.path().join("out.resp");
    fsctl_url(
        repo.path(),
        &cluster.url(),
        &[
            "materialize",
            "--service",
            "scoring",
            "--end",
            GOLDEN_END,
            "--emit-resp",
            stream.to_str().unwrap(),
        ],
    )
    .ok();
    assert!(
        cluster.data_keys(GOLDEN_PREFIX).is_empty(),
        "--emit-resp writes nothing"
    );
    // Each primary's stream replays into that primary without a single MOVED; the commit,
    // last, into the primary of the service's control keys.
    let control = cluster.port_for(&format!("{GOLDEN_PREFIX}:{{scoring}}:current"));
    let streams = cluster
        .nodes
        .iter()
        .map(|n| (n.port, format!("out.127.0.0.1-{}.resp", n.port)))
        .chain([(control, "out.commit.resp".to_owned())]);
    for (port, name) in streams {
        let file = out.path().join(name);
        let replay = std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "--pipe"])
            .stdin(std::fs::File::open(&file).unwrap())
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&replay.stdout);
        assert!(log.contains("errors: 0"), "{}: {log}", file.display());
    }
    // The replayed streams hold what a run writes: the committed pointer and every vector.
    let run = fsctl_url(
        repo.path(),
        &cluster.url(),
        &["get", "--service", "scoring", "--entity", "customer_id=1"],
    );
    run.ok();
    assert_keys_landed(&cluster, GOLDEN_PREFIX, "scoring");
}

#[test]
fn the_documented_acl_plus_cluster_slots_and_asking_runs_every_verb_on_a_cluster() {
    use crate::security::{ACL_RULES, SECRET};
    let cluster = RedisCluster::start(3, 0);
    for node in &cluster.nodes {
        let mut acl = redis::cmd("ACL");
        acl.arg("SETUSER").arg("fsctl");
        for rule in ACL_RULES
            .split_whitespace()
            .chain(["+cluster|slots", "+asking"])
        {
            acl.arg(rule);
        }
        let _: () = acl.query(&mut node.con()).unwrap();
    }
    let url = cluster
        .nodes
        .iter()
        .map(|n| format!("redis://fsctl:{SECRET}@127.0.0.1:{}", n.port))
        .collect::<Vec<_>>()
        .join(",");
    let repo = scratch_repo("golden");
    edit_yaml(repo.path(), "type: redis\n", "type: redis_cluster\n");
    let verbs: [&[&str]; 6] = [
        &["materialize", "--end", GOLDEN_END],
        &["get", "--service", "scoring", "--entity", "customer_id=1"],
        &["validate", "--online"],
        &["snapshots"],
        &["gc", "--dry-run"],
        &[
            "warm",
            "--top-n",
            "3",
            "--service",
            "scoring",
            "--from",
            "missing.parquet",
        ],
    ];
    for (i, args) in verbs.iter().enumerate() {
        let run = fsctl_url(repo.path(), &url, args);
        assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET));
        if i < 5 {
            run.ok();
        }
    }
    assert_keys_landed(&cluster, GOLDEN_PREFIX, "scoring");
}

#[test]
fn a_run_that_does_not_fit_the_fullest_primary_is_refused_before_writing() {
    let cluster = RedisCluster::start(3, 0);
    let repo = big_cluster_repo();
    let run = |hour: i64| materialize_on(repo.path(), &cluster, &hour_rfc3339(hour));
    // The committed snapshot sizes the next run.
    run(now_hour() - 1).ok();
    let before = cluster.data_keys(&format!("{BANKING}:{SERVICE}:")).len();
    // One primary has room for half a MB: the next run's third of ~25 MB does not fit there,
    // though the other two have no limit at all.
    let mut con = cluster.nodes[2].con();
    let info: String = redis::cmd("INFO").arg("memory").query(&mut con).unwrap();
    let used: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used + 500_000)
        .query(&mut con)
        .unwrap();
    let refused = run(now_hour());
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert_eq!(
        refused.json()["error"]["kind"],
        "capacity",
        "{}",
        refused.stdout
    );
    assert!(
        refused.stderr.contains("nothing was written"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        cluster.data_keys(&format!("{BANKING}:{SERVICE}:")).len(),
        before
    );
}

#[test]
fn shards_committed_on_a_cluster_hold_the_same_keys_as_one_unsharded_run() {
    // SPEC §3.2 with §3.3: the shard manifests and the `sharded` set share the service's hash
    // tag with the other control keys; the data spreads over the primaries as usual.
    let repo = scratch_repo("golden");
    edit_yaml(repo.path(), "type: redis\n", "type: redis_cluster\n");
    let (sharded, whole) = (RedisCluster::start(3, 0), RedisCluster::start(3, 0));
    for shard in ["0/3", "1/3", "2/3"] {
        let run = fsctl_url(
            repo.path(),
            &sharded.url(),
            &["materialize", "--end", GOLDEN_END, "--shard", shard],
        );
        run.ok();
    }
    assert!(committed_on(&sharded, GOLDEN_PREFIX, "scoring").is_none());
    fsctl_url(
        repo.path(),
        &sharded.url(),
        &["commit", "--end", GOLDEN_END, "--shards", "3"],
    )
    .ok();
    fsctl_url(
        repo.path(),
        &whole.url(),
        &["materialize", "--end", GOLDEN_END],
    )
    .ok();
    for service in ["scoring", "balances"] {
        let got = assert_keys_landed(&sharded, GOLDEN_PREFIX, service);
        let want = assert_keys_landed(&whole, GOLDEN_PREFIX, service);
        assert!(!want.is_empty());
        assert_eq!(got, want, "{service}");
        let (_, m) = committed_on(&sharded, GOLDEN_PREFIX, service).unwrap();
        let (_, w) = committed_on(&whole, GOLDEN_PREFIX, service).unwrap();
        for field in [
            "snapshot",
            "entities",
            "bytes_written",
            "imputed",
            "sources",
        ] {
            assert_eq!(m[field], w[field], "{service}: {field}");
        }
    }
}

/// The run lock's lease follows its key: after the primary of the `{service}` slot fails over
/// (a graceful `CLUSTER FAILOVER` on its replica), renewals go to the new primary, so the lock
/// outlives several leases there, is never lost, and its release deletes it there.
#[test]
fn the_run_lock_follows_its_slot_through_a_failover() {
    use std::time::{Duration, Instant};
    let cluster = RedisCluster::start(3, 1);
    let repo = scratch_repo("golden");
    edit_yaml(repo.path(), "type: redis\n", "type: redis_cluster\n");
    edit_yaml(
        repo.path(),
        "url: redis://127.0.0.1:6379/0",
        &format!("url: {}", cluster.url()),
    );
    let definitions = fsctl::repo::Repo::load(repo.path()).unwrap();
    let store = fsctl::online::open(&definitions.online).unwrap();
    let keys = fsctl::online::KeySpace::new(&definitions.online.key_prefix, "golden", "scoring");
    let lease = Duration::from_millis(900);
    let lock = store
        .lock(&keys, lease, Duration::ZERO, "failover-test")
        .unwrap();
    let key = keys.lock();
    // The primary holding the lock, and its replica.
    let holder = cluster
        .nodes
        .iter()
        .position(|n| {
            redis::cmd("EXISTS")
                .arg(&key)
                .query::<i64>(&mut n.con())
                .is_ok_and(|e| e == 1)
                && n.role() == "master"
        })
        .expect("a primary holds the lock");
    let replica = cluster.replica_of(holder);
    // The replica has the key before it takes over (a graceful failover waits for it anyway).
    wait_for(|| {
        redis::cmd("EXISTS")
            .arg(&key)
            .query::<i64>(&mut cluster.nodes[replica].readonly_con())
            .is_ok_and(|e| e == 1)
    });
    let _: () = redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .query(&mut cluster.nodes[replica].con())
        .unwrap();
    wait_for(|| cluster.nodes[replica].role() == "master");
    // Three leases later the lock is still held, on the new primary, with a fresh lease.
    let since = Instant::now();
    let mut con = cluster.nodes[replica].con();
    while since.elapsed() < lease * 3 {
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut con).unwrap();
        assert!(ttl > 0, "the lock expired on the new primary");
        assert!(!lock.is_lost());
        std::thread::sleep(Duration::from_millis(100));
    }
    let holder_token: String = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
    assert_eq!(holder_token, lock.token());
    lock.release();
    let left: i64 = redis::cmd("EXISTS").arg(&key).query(&mut con).unwrap();
    assert_eq!(left, 0, "released on the new primary");
}
