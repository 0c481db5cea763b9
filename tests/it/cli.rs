//! The command line as an operator meets it: one JSON document on stdout for every failure with
//! `--format json` (pinned for the failures an Airflow task sees most), the same exit code for
//! the same problem in every verb, `--help` with examples and exit codes, and the fixes of the
//! engine issue, each run through the binary.

use std::process::Stdio;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};

use crate::harness::*;

/// Pins `run`'s JSON document as snapshot `name`, with what differs between runs (ports,
/// temp dirs, clocks, durations) replaced by placeholders.
fn assert_json_doc(name: &str, run: &Run, repo: &std::path::Path) {
    let text = serde_json::to_string_pretty(&run.json()).unwrap();
    let repo = regex_escape(&repo.display().to_string());
    insta::with_settings!({filters => vec![
        (repo.as_str(), "[REPO]"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (r#""(elapsed_ms|remaining_ms|ahead_s)": \d+"#, r#""$1": [N]"#),
        (r"expires in \d+\.\d+s", "expires in [N]s"),
        (r"is (\d+[a-z]+)+ in the future \(now is [^)]+\)", "is [N] in the future (now is [NOW])"),
        (r#""now": "[^"]+""#, r#""now": "[NOW]""#),
    ]}, {
        insta::assert_snapshot!(name, text);
    });
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[test]
fn json_error_documents_are_pinned() {
    // Lock held by another run.
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    let mut con = redis.con();
    let _: () = redis::cmd("SET")
        .arg("fst:golden:{scoring}:lock")
        .arg("etl-host-7:pid42:1")
        .arg("PX")
        .arg(60_000)
        .query(&mut con)
        .unwrap();
    let args = [
        "--format",
        "json",
        "materialize",
        "--service",
        "scoring",
        "--end",
        GOLDEN_END,
    ];
    let run = fsctl(repo.path(), Some(&redis), &args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_json_doc("json_error_lock_held", &run, repo.path());

    // Nothing listens where the URL points.
    let run = fsctl(repo.path(), None, &args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_json_doc("json_error_unreachable_redis", &run, repo.path());

    // The quality gate refuses the run.
    let _: () = redis::cmd("DEL")
        .arg("fst:golden:{scoring}:lock")
        .query(&mut con)
        .unwrap();
    let gated = scratch_repo("golden");
    edit_yaml(
        gated.path(),
        "{name: age, dtype: int64",
        "{name: age, dtype: int64, checks: {max: 80}",
    );
    let run = fsctl(gated.path(), Some(&redis), &args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_json_doc("json_error_quality_gate", &run, gated.path());

    // A declared column is missing from the files.
    let missing = scratch_repo("golden");
    edit_yaml(
        missing.path(),
        "{cnt_src: txn_count}",
        "{cnt_source: txn_count}",
    );
    let run = fsctl(missing.path(), Some(&redis), &args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_json_doc("json_error_missing_column", &run, missing.path());

    // A bad --end: not a time, or far in the future.
    let bad = ["--format", "json", "materialize", "--end", "yesterday"];
    let run = fsctl(repo.path(), Some(&redis), &bad);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_json_doc("json_error_bad_end", &run, repo.path());
    let future = [
        "--format",
        "json",
        "materialize",
        "--end",
        "2099-01-01T00:00:00Z",
    ];
    let run = fsctl(repo.path(), Some(&redis), &future);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_json_doc("json_error_future_end", &run, repo.path());
    // Nothing of any of these landed.
    assert_eq!(current(&mut con, GOLDEN_PREFIX, "scoring"), None);
}

#[test]
fn every_help_ends_with_examples_exit_codes_and_environment() {
    let repo = scratch_repo("golden");
    for verb in [
        "init",
        "materialize",
        "commit",
        "get",
        "validate",
        "warm",
        "lock",
        "snapshots",
        "rollback",
        "gc",
        "status",
    ] {
        let run = fsctl(repo.path(), None, &[verb, "--help"]);
        assert_eq!(run.code, 0, "{verb}: {}", run.stderr);
        for needle in ["Examples:", "Exit codes:", "FSCTL_REDIS_URL"] {
            assert!(run.stdout.contains(needle), "{verb} --help lacks {needle}");
        }
        insta::assert_snapshot!(format!("help_{verb}"), run.stdout);
    }
    let run = fsctl(repo.path(), None, &["--help"]);
    assert!(run.stdout.contains("Exit codes:"), "{}", run.stdout);
    insta::assert_snapshot!("help_fsctl", run.stdout);
}

#[test]
fn a_missing_repo_is_a_usage_error_in_every_verb() {
    let nowhere = tempfile::tempdir().unwrap();
    let gone = nowhere.path().join("no-such-repo");
    for args in [
        &["materialize", "--dry-run"][..],
        &["validate"],
        &["get", "--service", "s", "--entity", "k=1"],
        &["warm", "--top-n", "1"],
        &["lock"],
    ] {
        let run = fsctl(&gone, None, args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("no feature_store.yaml here"),
            "{args:?}: {}",
            run.stderr
        );
        let mut json = vec!["--format", "json"];
        json.extend_from_slice(args);
        let run = fsctl(&gone, None, &json);
        assert_eq!(run.json()["error"]["exit_code"], 2, "{args:?}");
    }
}

#[test]
fn validate_reports_every_finding_and_the_data_of_views_that_resolved() {
    let repo = scratch_repo("golden");
    // Two unknown keys in different sections, an unknown feature reference, and a column the
    // accounts view declares but its file lacks.
    edit_yaml(
        repo.path(),
        "    timestamp_field: event_ts",
        "    timestamp_feild: event_ts",
    );
    edit_yaml(repo.path(), "    online_ttl: 3650d", "    onlin_ttl: 3650d");
    edit_yaml(
        repo.path(),
        "features: [emb, tx_sum]",
        "features: [emb, tx_total]",
    );
    edit_yaml(
        repo.path(),
        "{name: balance, dtype: float64",
        "{name: balanc, dtype: float64",
    );
    let run = fsctl(repo.path(), None, &["--format", "json", "validate"]);
    assert_eq!(run.code, 2, "an invalid feature_store.yaml: {}", run.stderr);
    let doc = run.json();
    let found: Vec<(String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["name"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for expected in [
        ("unknown-key", "timestamp_feild"),
        ("unknown-key", "onlin_ttl"),
        ("unknown-reference", "tx_total"),
        ("missing-column", "balanc"),
    ] {
        assert!(
            found
                .iter()
                .any(|(c, n)| c == expected.0 && n == expected.1),
            "{expected:?} not in {found:?}"
        );
    }
    assert_eq!(doc["error"]["kind"], "validation_failed");
    assert_eq!(doc["error"]["errors"], found.len());
    // The typo names the key it most likely means.
    let text = fsctl(repo.path(), None, &["validate"]);
    assert!(
        text.stdout.contains("(did you mean `timestamp_field`?)"),
        "{}",
        text.stdout
    );
}

#[test]
fn an_end_in_the_future_is_refused_unless_allowed() {
    let repo = scratch_repo("golden");
    let end = "2099-01-01T00:00:00Z";
    let run = fsctl(
        repo.path(),
        None,
        &["materialize", "--dry-run", "--end", end],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("in the future"), "{}", run.stderr);
    assert!(run.stderr.contains("--allow-future-end"), "{}", run.stderr);
    let allowed = fsctl(
        repo.path(),
        None,
        &[
            "materialize",
            "--dry-run",
            "--allow-empty",
            "--allow-future-end",
            "--end",
            end,
        ],
    );
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    // Within clock skew of now, an end is fine.
    let soon = fsctl(
        repo.path(),
        None,
        &["materialize", "--dry-run", "--allow-empty"],
    );
    assert_eq!(soon.code, 0, "{}", soon.stderr);
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let c = golden_committed("scoring");
    let mut cmd = fsctl_command(
        c.repo.path(),
        &c.redis.url(),
        &[
            "--format",
            "json",
            "get",
            "--service",
            "scoring",
            "--entity",
            "customer_id=1",
        ],
    );
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before fsctl writes (as `| head -c 0` would).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn entity_values_may_hold_commas_and_equals_signs() {
    let repo = scratch_repo("golden");
    let ts = 1_763_856_000_000_000 - 3_600_000_000;
    write_parquet(
        &repo.path().join("data/accounts.parquet"),
        vec![
            (
                "bank",
                Arc::new(StringArray::from(vec!["a,b", "k=v"])) as ArrayRef,
            ),
            ("account_no", Arc::new(Int64Array::from(vec![1, 2]))),
            (
                "ts",
                Arc::new(TimestampMicrosecondArray::from(vec![ts, ts]).with_timezone("UTC")),
            ),
            ("balance", Arc::new(Float64Array::from(vec![10.0, 20.0]))),
        ],
    );
    let redis = RedisServer::start();
    fsctl(
        repo.path(),
        Some(&redis),
        &["materialize", "--service", "balances", "--end", GOLDEN_END],
    )
    .ok();
    let balance = |entity: &[&str]| {
        let mut args = vec!["--format", "json", "get", "--service", "balances"];
        for e in entity {
            args.extend(["--entity", e]);
        }
        let doc = fsctl(repo.path(), Some(&redis), &args).ok().json();
        doc["values"]["accounts.balance"].as_f64().unwrap()
    };
    assert_eq!(balance(&["bank=a,b", "account_no=1"]), 10.0);
    assert_eq!(balance(&["bank=k=v", "account_no=2"]), 20.0);
    // One flag with every join key, as before.
    assert_eq!(balance(&["bank=k=v,account_no=2"]), 20.0);
}

#[test]
fn get_json_lists_values_in_service_order_with_rfc3339_timestamps() {
    let (repo, redis) = crate::pinned::example_committed();
    let args = [
        "get",
        "--service",
        "realtime_scoring",
        "--entity",
        "customer_id=1000042",
    ];
    let text = fsctl(repo.path(), Some(&redis), &args).ok().stdout.clone();
    let mut json_args = vec!["--format", "json"];
    json_args.extend_from_slice(&args);
    let doc = fsctl(repo.path(), Some(&redis), &json_args).ok().json();
    let values = doc["values"].as_object().unwrap();
    let json_order: Vec<&str> = values.keys().map(String::as_str).collect();
    let text_order: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "values:")
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(json_order, text_order);
    assert_eq!(json_order[0], "customer_profile.age");
    let signup = values["customer_profile.signup_ts"].as_str().unwrap();
    assert!(
        signup.ends_with('Z') && signup.contains('T'),
        "not RFC 3339: {signup}"
    );
    assert!(text.contains(signup), "text and JSON show the same instant");
}

#[test]
fn warm_reports_each_tier_once() {
    let c = golden_committed("scoring");
    let file = c.repo.path().join("popularity.parquet");
    write_parquet(
        &file,
        vec![(
            "customer_id",
            Arc::new(Int64Array::from(vec![1, 2, 3, 1, 2, 1])) as ArrayRef,
        )],
    );
    let run = fsctl(
        c.repo.path(),
        Some(&c.redis),
        &[
            "warm",
            "--service",
            "scoring",
            "--from",
            file.to_str().unwrap(),
            "--top-n",
            "3",
            "--tiers",
            "1",
        ],
    );
    run.ok();
    let all = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(all.matches("tier 1 ").count(), 1, "{all}");
    assert_eq!(all.matches("tier 2 ").count(), 1, "{all}");
    assert!(
        run.stdout
            .contains("scoring tier 1 (1 entities): 1 present (1 extended)"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_unknown_service_lists_the_known_ones_in_every_verb() {
    let repo = scratch_repo("golden");
    for args in [
        &["materialize", "--service", "nope", "--dry-run"][..],
        &["get", "--service", "nope", "--entity", "customer_id=1"],
        &[
            "warm",
            "--service",
            "nope",
            "--top-n",
            "1",
            "--from",
            "x.parquet",
        ],
    ] {
        let run = fsctl(repo.path(), None, args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("unknown feature service `nope` (known: scoring, balances)"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_dry_run_reports_the_keys_it_would_write() {
    let repo = scratch_repo("golden");
    let run = fsctl(
        repo.path(),
        None,
        &[
            "materialize",
            "--service",
            "scoring",
            "--dry-run",
            "--end",
            GOLDEN_END,
        ],
    );
    run.ok();
    assert!(
        run.stdout.contains("dry run, nothing written"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("keys 0"), "{}", run.stdout);
    let golden_entities = 9;
    assert!(
        run.stdout.contains(&format!(
            "entities {golden_entities}  keys to write {golden_entities}"
        )),
        "{}",
        run.stdout
    );
}

#[test]
fn json_out_writes_the_document_to_a_file_too_also_on_failure() {
    let c = golden_committed("scoring");
    let out = c.repo.path().join("return.json");
    let out_arg = out.to_str().unwrap();
    let run = fsctl(
        c.repo.path(),
        Some(&c.redis),
        &[
            "--format",
            "json",
            "--json-out",
            out_arg,
            "snapshots",
            "--service",
            "scoring",
        ],
    );
    run.ok();
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written, run.stdout);
    assert_eq!(run.json()["command"], "snapshots");
    // A failure's document too, the one an Airflow task's XCom then holds.
    let failed = fsctl(
        c.repo.path(),
        Some(&c.redis),
        &[
            "--format",
            "json",
            "--json-out",
            out_arg,
            "get",
            "--service",
            "nope",
            "--entity",
            "customer_id=1",
        ],
    );
    assert_eq!(failed.code, 2);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(doc["error"]["kind"], "unknown_service");
    let text = fsctl(
        c.repo.path(),
        Some(&c.redis),
        &["--json-out", out_arg, "snapshots"],
    );
    assert_eq!(text.code, 2);
    assert!(text.stderr.contains("add --format json"), "{}", text.stderr);
}
