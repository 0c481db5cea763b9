//! `fsctl validate`, `fsctl lock` and the quality gate. Findings of a corpus of broken repos are
//! pinned as snapshots so any change to a message shows up as a reviewable diff.

use crate::harness::*;

const END: &str = "2025-11-23T00:00:00Z";
const PREFIX: &str = "fst:golden";

/// One defect per repo (and one with all of them): edits applied to the golden repo.
const CORPUS: &[(&str, &[(&str, &str)])] = &[
    (
        "unknown_key",
        &[("    ttl: 1d\n", "    ttl: 1d\n    tll: 2d\n")],
    ),
    (
        "invalid_project_name",
        &[("project: golden", "project: Golden-Project")],
    ),
    (
        "duplicate_view",
        &[("  - name: txn\n", "  - name: profile\n")],
    ),
    (
        "dangling_source",
        &[("source: txn_src", "source: txn_source")],
    ),
    (
        "dangling_entity",
        &[("entities: [customer]", "entities: [client]")],
    ),
    (
        "dangling_feature",
        &[("features: [emb, tx_sum]", "features: [emb, tx_total]")],
    ),
    (
        "mixed_entities",
        &[("      - profile\n", "      - profile\n      - accounts\n")],
    ),
    (
        "unknown_dtype",
        &[("{name: age, dtype: int64", "{name: age, dtype: integer")],
    ),
    (
        "bad_default",
        &[(
            "{name: txn_count, dtype: int64, default: 0}",
            "{name: txn_count, dtype: int64, default: zero}",
        )],
    ),
    ("bad_duration", &[("    ttl: 1d\n", "    ttl: 1day\n")]),
    (
        "jitter_out_of_range",
        &[("ttl_jitter: 0.1", "ttl_jitter: 1.5")],
    ),
    (
        "missing_column",
        &[("{cnt_src: txn_count}", "{cnt_source: txn_count}")],
    ),
    (
        "uncoercible_column",
        &[("{name: note, dtype: string", "{name: note, dtype: int64")],
    ),
    (
        "many_defects",
        &[
            ("    ttl: 1d\n", "    ttl: 1d\n    tll: 2d\n"),
            (
                "    timestamp_field: ts\n",
                "    timestamp_field: ts\n    timestmp: x\n",
            ),
            ("source: txn_src", "source: txn_source"),
            ("{name: age, dtype: int64", "{name: age, dtype: integer"),
            (
                "{name: txn_count, dtype: int64, default: 0}",
                "{name: txn_count, dtype: int64, default: zero}",
            ),
            ("ttl_jitter: 0.1", "ttl_jitter: 1.5"),
            ("features: [emb, tx_sum]", "features: [emb, tx_total]"),
        ],
    ),
];

fn validate(repo: &std::path::Path, args: &[&str]) -> Run {
    let mut all = vec!["validate", "--end", END];
    all.extend_from_slice(args);
    fsctl(repo, None, &all)
}

#[test]
fn broken_repo_corpus_findings_are_pinned() {
    for (name, edits) in CORPUS {
        let repo = scratch_repo("golden");
        for (from, to) in *edits {
            edit_yaml(repo.path(), from, to);
        }
        let run = validate(repo.path(), &[]);
        // An invalid feature_store.yaml exits 2 as in every verb; findings in the data, 1.
        let data_only = ["missing_column", "uncoercible_column", "narrowing_overflow"];
        let expected = if data_only.contains(name) { 1 } else { 2 };
        assert_eq!(run.code, expected, "{name}: {}\n{}", run.stdout, run.stderr);
        let out = run
            .stdout
            .replace(&repo.path().display().to_string(), "[REPO]");
        insta::assert_snapshot!(*name, out);
    }
}

#[test]
fn many_defects_are_all_reported_as_json() {
    let repo = scratch_repo("golden");
    for (from, to) in CORPUS.last().unwrap().1 {
        edit_yaml(repo.path(), from, to);
    }
    let run = fsctl(repo.path(), None, &["--format", "json", "validate"]);
    assert_eq!(run.code, 2);
    let doc = run.json();
    let codes: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 7, "{doc:#}");
    for code in [
        "unknown-key",
        "unknown-reference",
        "invalid-dtype",
        "invalid-default",
        "invalid-value",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    let tll = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "tll")
        .expect("the tll typo");
    assert_eq!(tll["severity"], "error");
    assert_eq!(
        tll["line"], 33,
        "the key's own line (one line was added above it)"
    );
    assert!(
        tll["file"]
            .as_str()
            .unwrap()
            .ends_with("feature_store.yaml")
    );
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "timestmp")
    );
}

#[test]
fn clean_repo_prints_fingerprints() {
    let run = validate(&fixture("golden"), &[]);
    run.ok();
    assert!(
        run.stdout
            .contains("scoring                      c8d65e62df550d22  9 features"),
        "{}",
        run.stdout
    );
}

#[test]
fn lock_round_trip_names_the_changed_feature() {
    let repo = scratch_repo("golden");
    let missing = validate(repo.path(), &["--locked"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stdout.contains("fsctl.lock not found"),
        "{}",
        missing.stdout
    );

    fsctl(repo.path(), None, &["lock"]).ok();
    validate(repo.path(), &["--locked"]).ok();

    edit_yaml(
        repo.path(),
        "{name: tx_sum, dtype: float64, default: 0.0}",
        "{name: tx_sum, dtype: float32, default: 0.0}",
    );
    let changed = validate(repo.path(), &["--locked"]);
    assert_eq!(changed.code, 1);
    assert!(
        changed
            .stdout
            .contains("service `scoring` changed fingerprint c8d65e62df550d22 ->"),
        "{}",
        changed.stdout
    );
    assert!(
        changed
            .stdout
            .contains("was feature:txn.tx_sum:float64; now feature:txn.tx_sum:float32"),
        "{}",
        changed.stdout
    );
    // Without --locked the change is fine; after re-locking it passes.
    validate(repo.path(), &[]).ok();
    fsctl(repo.path(), None, &["lock"]).ok();
    validate(repo.path(), &["--locked"]).ok();
}

#[test]
fn quality_gate_blocks_the_commit_and_skip_checks_records_it() {
    let repo = scratch_repo("golden");
    edit_yaml(
        repo.path(),
        "{name: age, dtype: int64",
        "{name: age, dtype: int64, checks: {max: 80}",
    );
    edit_yaml(
        repo.path(),
        "{name: note, dtype: string",
        "{name: note, dtype: string, checks: {max_null_fraction: 0.1}",
    );
    let redis = RedisServer::start();
    let mut con = redis.con();

    let data = validate(repo.path(), &["--data"]);
    assert_eq!(data.code, 1);
    assert!(
        data.stdout
            .contains("profile.age: maximum 90 is above the limit 80 (max)"),
        "{}",
        data.stdout
    );

    let run = fsctl(
        repo.path(),
        Some(&redis),
        &["materialize", "--service", "scoring", "--end", END],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("profile.age: maximum 90 is above the limit 80 (max)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "profile.note: null fraction 0.1429 is above the limit 0.1 (max_null_fraction)"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(
        current(&mut con, PREFIX, "scoring"),
        None,
        "nothing committed"
    );
    let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(size, 0, "the gate runs before any write");

    fsctl(
        repo.path(),
        Some(&redis),
        &[
            "materialize",
            "--service",
            "scoring",
            "--end",
            END,
            "--skip-checks",
        ],
    )
    .ok();
    assert_eq!(
        manifest(&mut con, PREFIX, "scoring")["checks_skipped"],
        true
    );
}

/// The golden repo with a check that `profile.age` fails (its maximum is 90), materialized with
/// `args` (after `--end END`) into a fresh server; the run must be refused.
fn refused_by_the_age_check(args: &[&str]) -> (RedisServer, redis::Connection, Run) {
    let repo = scratch_repo("golden");
    edit_yaml(
        repo.path(),
        "{name: age, dtype: int64",
        "{name: age, dtype: int64, checks: {max: 80}",
    );
    let redis = RedisServer::start();
    let mut con = redis.con();
    let mut all = vec!["materialize", "--end", END];
    all.extend_from_slice(args);
    let run = fsctl(repo.path(), Some(&redis), &all);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("profile.age: maximum 90 is above the limit 80 (max)"),
        "{}",
        run.stderr
    );
    assert_eq!(current(&mut con, PREFIX, "scoring"), None);
    (redis, con, run)
}

#[test]
fn a_partitioned_run_refused_by_the_gate_takes_back_what_it_wrote() {
    // In shares, the gate can only be evaluated once every share was read, after the first
    // shares were written: a refusal deletes them again, and the lock is released.
    let (_redis, mut con, _) =
        refused_by_the_age_check(&["--service", "scoring", "--partitions", "4"]);
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
    assert_eq!(
        keys,
        Vec::<String>::new(),
        "no vector and no lock left behind"
    );
}

#[test]
fn a_refused_service_does_not_hold_back_the_others() {
    let (_redis, mut con, run) = refused_by_the_age_check(&["--partitions", "2"]);
    assert!(run.stderr.contains("service `scoring`"), "{}", run.stderr);
    let balances = current(&mut con, PREFIX, "balances").expect("balances committed");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{PREFIX}:scoring:*"))
        .query(&mut con)
        .unwrap();
    assert_eq!(
        keys,
        Vec::<String>::new(),
        "scoring's vectors were taken back"
    );
    assert_eq!(
        data_keys(&mut con, &format!("{PREFIX}:balances:{balances}:")).len(),
        3
    );
}

#[test]
fn empty_result_is_not_committed_without_allow_empty() {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    let mut con = redis.con();
    let later = "2026-06-01T00:00:00Z"; // no fixture row is that recent
    let run = fsctl(
        repo.path(),
        Some(&redis),
        &["materialize", "--service", "scoring", "--end", later],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("zero entities"), "{}", run.stderr);
    assert_eq!(current(&mut con, PREFIX, "scoring"), None);
    fsctl(
        repo.path(),
        Some(&redis),
        &[
            "materialize",
            "--service",
            "scoring",
            "--end",
            later,
            "--allow-empty",
        ],
    )
    .ok();
    assert_eq!(manifest(&mut con, PREFIX, "scoring")["entities"], 0);
}

#[test]
fn online_check_passes_then_catches_definition_change_and_corruption() {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    let mut con = redis.con();
    let online = |repo: &std::path::Path| {
        fsctl(
            repo,
            Some(&redis),
            &["--format", "json", "validate", "--online", "--end", END],
        )
    };

    let none = online(repo.path());
    assert_eq!(none.code, 1);
    assert!(
        none.stdout.contains("online-no-snapshot"),
        "{}",
        none.stdout
    );

    fsctl(repo.path(), Some(&redis), &["materialize", "--end", END]).ok();
    let ok = online(repo.path());
    let doc = ok.ok().json();
    assert_eq!(doc["services"][0]["online"]["sampled"], 9);
    assert_eq!(doc["services"][0]["online"]["keys_written"], 9);
    assert_eq!(doc["services"][0]["online"]["snapshots_alive"], 1);
    let bytes =
        crate::harness::manifest(&mut redis.con(), "fst:golden", "scoring")["bytes_written"]
            .clone();
    assert_eq!(doc["services"][0]["online"]["bytes_alive"], bytes);
    // A second snapshot beside it: both alive (keep_snapshots is 2).
    fsctl(
        repo.path(),
        Some(&redis),
        &["materialize", "--end", "2025-11-23T01:00:00Z"],
    )
    .ok();
    let doc = online(repo.path()).ok().json();
    assert_eq!(doc["services"][0]["online"]["snapshots_alive"], 2);

    let changed = scratch_repo("golden");
    edit_yaml(
        changed.path(),
        "{name: age, dtype: int64",
        "{name: age, dtype: int32",
    );
    let run = online(changed.path());
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("online-fingerprint"), "{}", run.stdout);

    let snap = current(&mut con, PREFIX, "scoring").unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{PREFIX}:scoring:{snap}:3"))
        .arg(b"\x01\x93\x01".as_slice())
        .query(&mut con)
        .unwrap();
    let run = online(repo.path());
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("online-corrupt"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("{PREFIX}:scoring:{snap}:3: cannot decode")),
        "{}",
        run.stdout
    );
}
