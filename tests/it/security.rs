//! Security: a Redis user restricted to the ACL rules the README documents can run every verb;
//! passwords come from the URL, an environment variable or a file, and never appear in stdout,
//! stderr, manifests or the --emit-resp stream.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use parquet::arrow::ArrowWriter;

use crate::harness::*;

const END: &str = "2025-11-23T00:00:00Z";
pub(crate) const SECRET: &str = "pw-7c1d-never-printed";

/// The minimal rules, exactly as README.md documents them (with the golden repo's prefix).
pub(crate) const ACL_RULES: &str = "on >pw-7c1d-never-printed ~fst:* resetchannels -@all +get +set +mget +exists +zscore \
                         +zadd +zcard +zrange +zrem +zremrangebyrank +pexpire +pexpireat +pttl +del +scan +append +info +time +evalsha +script|load +ping";

#[test]
fn the_documented_acl_is_enough_for_every_verb_and_no_password_leaks() {
    let readme = std::fs::read_to_string(fixture("../README.md")).unwrap();
    let documented = ACL_RULES
        .replace(SECRET, "PASSWORD")
        .replace("~fst:*", "~fs:*");
    assert!(
        readme.contains(&documented),
        "README.md must document exactly these rules:\n{documented}"
    );

    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    let mut admin = redis.con();
    let mut acl = redis::cmd("ACL");
    acl.arg("SETUSER").arg("fsctl");
    for rule in ACL_RULES.split_whitespace() {
        acl.arg(rule);
    }
    let _: () = acl.query(&mut admin).unwrap();
    let url = format!("redis://fsctl:{SECRET}@127.0.0.1:{}/0", redis.port);

    let manifest = repo.path().join("manifest.json");
    let resp = repo.path().join("stream.resp");
    let pop = repo.path().join("pop.parquet");
    let batch = RecordBatch::try_from_iter(vec![
        (
            "customer_id",
            Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
        ),
        ("requests", Arc::new(Int64Array::from(vec![3, 2, 1]))),
    ])
    .unwrap();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(&pop).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();

    let runs = [
        fsctl_url(
            repo.path(),
            &url,
            &[
                "materialize",
                "--end",
                END,
                "--manifest-out",
                manifest.to_str().unwrap(),
            ],
        ),
        fsctl_url(repo.path(), &url, &["materialize", "--end", END]),
        fsctl_url(
            repo.path(),
            &url,
            &[
                "warm",
                "--service",
                "scoring",
                "--from",
                pop.to_str().unwrap(),
                "--score-column",
                "requests",
                "--top-n",
                "3",
            ],
        ),
        fsctl_url(repo.path(), &url, &["validate", "--online", "--end", END]),
        fsctl_url(
            repo.path(),
            &url,
            &["get", "--service", "scoring", "--entity", "customer_id=1"],
        ),
        fsctl_url(
            repo.path(),
            &url,
            &[
                "materialize",
                "--end",
                END,
                "--force",
                "--emit-resp",
                resp.to_str().unwrap(),
            ],
        ),
        // The lifecycle: a second snapshot, the history, a collection and a rollback.
        fsctl_url(
            repo.path(),
            &url,
            &["materialize", "--end", "2025-11-23T01:00:00Z"],
        ),
        fsctl_url(repo.path(), &url, &["snapshots"]),
        fsctl_url(repo.path(), &url, &["gc", "--dry-run"]),
        fsctl_url(repo.path(), &url, &["gc"]),
        fsctl_url(repo.path(), &url, &["rollback", "--service", "scoring"]),
        fsctl_url(
            repo.path(),
            &url,
            &["-v", "materialize", "--service", "nope"],
        ),
    ];
    for (i, run) in runs.iter().enumerate() {
        if i + 1 < runs.len() {
            run.ok();
        }
        assert!(
            !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
            "run {i} printed the password"
        );
    }
    for file in [&manifest, &resp] {
        let bytes = std::fs::read(file).unwrap();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{} holds the password",
            file.display()
        );
    }
    let committed = crate::harness::manifest(&mut admin, "fst:golden", "scoring").to_string();
    assert!(!committed.contains(SECRET));
    // The restricted user really is restricted.
    let denied = fsctl_url(
        repo.path(),
        &format!("redis://fsctl:{SECRET}@127.0.0.1:{}/0", redis.port),
        &["get", "--service", "scoring", "--entity", "customer_id=1"],
    );
    denied.ok();
    let mut user = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    assert!(redis::cmd("FLUSHALL").query::<()>(&mut user).is_err());
}

#[test]
fn password_from_an_environment_variable_or_a_file() {
    let redis = RedisServer::start_with(&["--requirepass", SECRET]);
    let url = format!("redis://127.0.0.1:{}/0", redis.port);

    let repo = scratch_repo("golden");
    edit_yaml(
        repo.path(),
        "  key_prefix: fst\n",
        "  key_prefix: fst\n  password_env: FSCTL_TEST_PASSWORD\n",
    );
    let out = fsctl_command(repo.path(), &url, &["materialize", "--end", END])
        .env("FSCTL_TEST_PASSWORD", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let missing = fsctl_url(repo.path(), &url, &["materialize", "--end", END]);
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("password_env names `FSCTL_TEST_PASSWORD`, which is not set"),
        "{}",
        missing.stderr
    );

    // A relative password_file is read from the repo directory (fsctl runs elsewhere), and a
    // missing one is named with the path tried.
    let repo = scratch_repo("golden");
    edit_yaml(
        repo.path(),
        "  key_prefix: fst\n",
        "  key_prefix: fst\n  password_file: secrets/redis.password\n",
    );
    let absent = fsctl_url(repo.path(), &url, &["materialize", "--end", END]);
    assert_eq!(absent.code, 2, "{}", absent.stderr);
    let tried = repo.path().join("secrets/redis.password");
    assert!(
        absent
            .stderr
            .contains(&format!("cannot read {}", tried.display())),
        "{}",
        absent.stderr
    );
    std::fs::create_dir(repo.path().join("secrets")).unwrap();
    std::fs::write(&tried, format!("{SECRET}\n")).unwrap();
    let run = fsctl_url(repo.path(), &url, &["materialize", "--end", END]);
    run.ok();
    assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET));
}
