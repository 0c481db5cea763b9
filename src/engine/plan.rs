//! Planning a materialization from metadata alone: which services and views, the window of
//! each view, the scans (files, row groups to read), the snapshot id, and the checks that refuse
//! a run before any data is read (a window end in the future, expiries already past).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use xxhash_rust::xxh3::Xxh3;

use crate::base::error::{Error, Result};
use crate::base::time::{format_us, now_us};
use crate::offline::{ViewScan, Window};
use crate::online::expiry_bounds;
use crate::repo::{OutputLayout, Repo, Service, format_duration_ms};

/// How far ahead of this machine's clock `--end` may be: clock skew between a scheduler and
/// its workers, not a snapshot "as of" a future time.
pub(crate) const MAX_CLOCK_SKEW_US: i64 = 5 * 60 * 1_000_000;

/// The services a run selects: the named ones, or every one.
pub fn select_services<'r>(repo: &'r Repo, names: &[String]) -> Result<Vec<&'r Service>> {
    if names.is_empty() {
        if repo.services.is_empty() {
            return Err(Error::config(
                "the feature repo defines no feature_services",
            ));
        }
        if repo.layout == OutputLayout::Feast {
            return Ok(super::feast::default_units(repo));
        }
        return Ok(repo.services.iter().collect());
    }
    let mut out: Vec<&Service> = Vec::new();
    for n in names {
        let selected = match super::feast::expand_selection(repo, n)? {
            Some(units) => units,
            None => vec![service(repo, n)?],
        };
        for s in selected {
            if !out.iter().any(|o| std::ptr::eq(*o, s)) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// The service named `name`, or an error listing the known ones.
pub fn service<'r>(repo: &'r Repo, name: &str) -> Result<&'r Service> {
    repo.service(name).ok_or_else(|| Error::UnknownService {
        name: name.to_owned(),
        known: repo.services.iter().map(|s| s.name.clone()).collect(),
    })
}

/// The window end: `end` or now. An end further ahead than clock skew explains is refused
/// unless allowed: committed, it would make every later run look older.
pub(crate) fn window_end(end_us: Option<i64>, allow_future: bool) -> Result<i64> {
    let now = now_us();
    let Some(end) = end_us else { return Ok(now) };
    if end > now + MAX_CLOCK_SKEW_US && !allow_future {
        return Err(Error::FutureEnd {
            end: format_us(end),
            now: format_us(now),
            ahead_s: (end - now) / 1_000_000,
        });
    }
    Ok(end)
}

/// Per-view window: `[end - ttl, end]` unless a start is given (SPEC §2).
pub(crate) fn view_window(repo: &Repo, view: usize, start: Option<i64>, end: i64) -> Window {
    Window {
        start_us: start.unwrap_or(end - repo.views[view].ttl_ms * 1000),
        end_us: end,
    }
}

/// Plans every view the services need (metadata only), each with the union of the features
/// its services read; a view's window starts at `start_us`, else at its `view_starts` entry
/// (where its last run ended), else its ttl before the end.
pub(crate) fn plan_scans(
    repo: &Repo,
    services: &[&Service],
    start_us: Option<i64>,
    view_starts: &HashMap<usize, i64>,
    end_us: i64,
) -> Result<HashMap<usize, ViewScan>> {
    if let Some(s) = start_us
        && s > end_us
    {
        return Err(Error::usage(format!(
            "window start {} is after its end {}",
            format_us(s),
            format_us(end_us)
        )));
    }
    let mut needed: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for s in services {
        for f in &s.features {
            needed.entry(f.view).or_default().insert(f.feature);
        }
    }
    let mut scans = HashMap::new();
    for (&view, features) in &needed {
        let start = start_us.or_else(|| view_starts.get(&view).copied());
        let window = view_window(repo, view, start, end_us);
        scans.insert(
            view,
            ViewScan::plan(repo, view, features.iter().copied().collect(), window)?,
        );
    }
    Ok(scans)
}

/// Refuses a run whose every key would already have expired when written.
pub(crate) fn check_expiries(repo: &Repo, services: &[&Service], end_us: i64) -> Result<()> {
    for s in services {
        let (lowest, _) = expiry_bounds(end_us / 1000, s.online_ttl_ms, repo.ttl_jitter);
        if lowest <= now_us() / 1000 {
            return Err(Error::ExpiresInPast {
                service: s.name.clone(),
                end: format_us(end_us),
                online_ttl: format_duration_ms(s.online_ttl_ms),
                expires: format_us(lowest * 1000),
            });
        }
    }
    Ok(())
}

/// The snapshot id (SPEC §3): deterministic from the service layout, the windows, the identity
/// of every input file and every setting that changes the bytes written.
pub(crate) fn snapshot_id(
    repo: &Repo,
    service: &Service,
    scans: &HashMap<usize, ViewScan>,
    end_us: i64,
) -> String {
    let mut h = Xxh3::new();
    let mut put = |s: &str| {
        h.update(s.as_bytes());
        h.update(b"\n");
    };
    put("fsctl-snapshot-v1");
    put(&repo.project);
    put(&repo.online.key_prefix);
    put(&service.name);
    put(&repo.fingerprint(service).to_string());
    put(&format!(
        "end={end_us} ttl={} jitter={} zstd>{}",
        service.online_ttl_ms, repo.ttl_jitter, repo.compress_threshold_bytes
    ));
    for &v in &service.views {
        let view = &repo.views[v];
        let source = &repo.sources[view.source];
        let scan = &scans[&v];
        put(&format!(
            "view {} window {}..{}",
            view.name, scan.window.start_us, scan.window.end_us
        ));
        put(&format!(
            "source ts={} created={:?} mapping={:?}",
            source.timestamp_field, source.created_timestamp_column, source.field_mapping
        ));
        for f in &view.features {
            put(&format!("default {}={:?}", f.name, f.default));
        }
        for file in &scan.files {
            // An object's version is its ETag; a local file's (or an object without an ETag)
            // its modification time (SPEC §1).
            match &file.etag {
                Some(etag) => put(&format!("file {} {} {etag}", file.path, file.size)),
                None => put(&format!(
                    "file {} {} {}",
                    file.path, file.size, file.modified_ns
                )),
            }
        }
    }
    base36(h.digest())
}

/// Eight base-36 digits (41 bits of the hash): ample for one service's history, and short keys
/// are cheaper in Redis (a 1M-entity key then fits a 48-byte allocation instead of 64).
fn base36(n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = n % 36u64.pow(8);
    let mut out = [b'0'; 8];
    for d in out.iter_mut().rev() {
        *d = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8(out.to_vec()).expect("ascii")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_is_eight_digits() {
        assert_eq!(base36(0), "00000000");
        assert_eq!(base36(35), "0000000z");
        assert_eq!(base36(u64::MAX).len(), 8);
    }

    #[test]
    fn a_future_end_is_refused_beyond_clock_skew_unless_allowed() {
        let now = now_us();
        assert!(window_end(Some(now + MAX_CLOCK_SKEW_US / 2), false).is_ok());
        let e = window_end(Some(now + 2 * MAX_CLOCK_SKEW_US), false).unwrap_err();
        assert!(matches!(e, Error::FutureEnd { .. }), "{e}");
        assert_eq!(e.exit_code(), 2);
        assert!(window_end(Some(now + 2 * MAX_CLOCK_SKEW_US), true).is_ok());
        assert!(window_end(None, false).is_ok());
    }
}
