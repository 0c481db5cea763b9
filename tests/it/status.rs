//! `fsctl status`: the committed snapshot of each service as the store holds it, fresh or stale.

use crate::harness::*;

#[test]
fn status_reports_fresh_stale_and_missing_services() {
    let Committed { repo, redis, .. } = golden_committed("scoring");
    // scoring is committed (online_ttl 3650d: fresh); balances never was.
    let all = fsctl(repo.path(), Some(&redis), &["--format", "json", "status"]);
    assert_eq!(
        all.code, 1,
        "balances has nothing committed: {}",
        all.stdout
    );
    let doc = all.json();
    let scoring = &doc["services"][0];
    assert_eq!(scoring["service"], "scoring");
    assert_eq!(scoring["fresh"], true);
    assert_eq!(scoring["as_of"], "2025-11-23T00:00:00Z");
    assert_eq!(scoring["max_age_s"], 3650 * 86_400);
    assert!(scoring["keys"].as_u64().unwrap() > 0);
    assert_eq!(doc["services"][1]["fresh"], false);
    assert_eq!(doc["error"]["kind"], "stale");
    assert!(
        doc["error"]["stale"][0]
            .as_str()
            .unwrap()
            .contains("balances has no committed snapshot"),
        "{doc}"
    );

    let fresh = fsctl(
        repo.path(),
        Some(&redis),
        &["status", "--service", "scoring"],
    );
    fresh.ok();
    assert!(
        fresh.stdout.contains("scoring") && fresh.stdout.contains("fresh"),
        "{}",
        fresh.stdout
    );
    // Older than --max-age: stale, exit 1, its age in days.
    let stale = fsctl(
        repo.path(),
        Some(&redis),
        &["status", "--service", "scoring", "--max-age", "2h"],
    );
    assert_eq!(stale.code, 1);
    assert!(
        stale.stdout.contains("STALE") && stale.stdout.contains("(max 2h)"),
        "{}",
        stale.stdout
    );
    assert!(
        stale.stderr.contains("scoring is ") && stale.stderr.contains("old (its limit is 2h)"),
        "{}",
        stale.stderr
    );
    // Prometheus text is for status only.
    let other = fsctl(
        repo.path(),
        Some(&redis),
        &["--format", "prometheus", "snapshots"],
    );
    assert_eq!(other.code, 2);
    assert!(
        other
            .stderr
            .contains("--format prometheus is for `fsctl status`")
    );
}
