//! The example repo's whole output, pinned: every data key, value and expiry that a run of
//! `feature_repo/` writes, digested and compared with the digest recorded before the engine
//! moved out of the command layer. A refactor that changes one byte or one millisecond of what
//! lands in Redis fails here.

use std::time::{Duration, UNIX_EPOCH};

use xxhash_rust::xxh3::Xxh3;

use crate::harness::*;

/// 2099-01-01T00:00:00Z in hours since the epoch: far enough ahead that no expiry is ever past.
const ANCHOR_HOUR: i64 = 1_130_808;
const END: &str = "2099-01-01T00:00:00Z";

/// The digest of every `key\tvalue-hash\tpexpiretime` line and every `current`, recorded from
/// the code before the change (`PINNED_KEYS` keys). Last changed by the TTL rule of 2026-12-07
/// (jitter only spreads expiries later); the same tree with the old rule gave d1b4e6530874f617.
const PINNED_DIGEST: &str = "0955097420f46c29";
const PINNED_KEYS: usize = 4000;

/// The example repo over 2,000 generated customers, every file's mtime fixed, so that snapshot
/// ids (which hash each file's path, size and mtime) repeat on every machine.
fn example_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    datagen(&[
        "banking",
        dir.path().to_str().unwrap(),
        "--entities",
        "2000",
        "--anchor-hour",
        &ANCHOR_HOUR.to_string(),
    ]);
    std::fs::copy(
        fixture("../feature_repo/feature_store.yaml"),
        dir.path().join("feature_store.yaml"),
    )
    .unwrap();
    let fixed = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut stack = vec![dir.path().join("data")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let f = std::fs::File::options().write(true).open(&path).unwrap();
                f.set_modified(fixed).unwrap();
            }
        }
    }
    dir
}

/// The example repo materialized as of `END` into a fresh server.
pub fn example_committed() -> (tempfile::TempDir, RedisServer) {
    let repo = example_repo();
    let redis = RedisServer::start();
    fsctl(
        repo.path(),
        Some(&redis),
        &["materialize", "--end", END, "--allow-future-end"],
    )
    .ok();
    (repo, redis)
}

#[test]
fn the_example_repo_writes_exactly_the_pinned_keys_values_and_expiries() {
    let (_repo, redis) = example_committed();
    let mut con = redis.con();

    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("fs:banking:*")
        .query(&mut con)
        .unwrap();
    keys.sort();
    let mut digest = Xxh3::new();
    let mut data_keys = 0;
    for key in &keys {
        let line = if key.ends_with(":current") {
            let v: String = redis::cmd("GET").arg(key).query(&mut con).unwrap();
            format!("{key}\t{v}\n")
        } else if key.contains(":{") {
            // Manifests, history and lock carry times of the run; the data keys are pinned.
            continue;
        } else {
            data_keys += 1;
            let v: Vec<u8> = redis::cmd("GET").arg(key).query(&mut con).unwrap();
            let at: i64 = redis::cmd("PEXPIRETIME").arg(key).query(&mut con).unwrap();
            format!("{key}\t{:016x}\t{at}\n", xxhash_rust::xxh3::xxh3_64(&v))
        };
        digest.update(line.as_bytes());
    }
    let got = format!("{:016x}", digest.digest());
    assert_eq!(
        (got.as_str(), data_keys),
        (PINNED_DIGEST, PINNED_KEYS),
        "what the example repo writes changed"
    );
}
