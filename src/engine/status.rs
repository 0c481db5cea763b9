//! `fsctl status` (SPEC §4): each service's committed snapshot as the store holds it, and whether
//! it is fresh, for monitoring jobs and CI that alert on the store itself rather than on a run.

use serde::Serialize;

use crate::base::error::{Error, Result};
use crate::base::prometheus::{gauge, labels};
use crate::base::time::{format_us, parse_instant_us};
use crate::online::{Committed, KeySpace, OnlineStore};
use crate::repo::{OutputLayout, Repo, Service};

/// One service's committed snapshot, as `status` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    /// `None` when nothing is committed (or its manifest is gone).
    pub snapshot: Option<String>,
    pub as_of: Option<String>,
    /// Seconds since the as-of (the window end), when there is one.
    pub age_s: Option<i64>,
    pub committed_at: Option<String>,
    pub entities: u64,
    pub keys: u64,
    pub bytes: u64,
    /// The age past which the service counts as stale: `--max-age`, else the snapshot's
    /// `online_ttl`, the age at which its keys start to expire.
    pub max_age_s: Option<i64>,
    pub fresh: bool,
}

/// Reads each of `services`' committed snapshot, judged at `now_us` against `max_age_ms` (or
/// each snapshot's own online TTL).
pub fn status(
    repo: &Repo,
    store: &dyn OnlineStore,
    services: &[&Service],
    max_age_ms: Option<i64>,
    now_us: i64,
) -> Result<Vec<ServiceStatus>> {
    let mut out = Vec::new();
    for s in services {
        let keys = KeySpace::new(&repo.online.key_prefix, &repo.project, &s.name);
        // The Feast layout has no pointer: its unit's manifest records the last window.
        let committed = match repo.layout {
            OutputLayout::Feast => super::feast::manifest(store, &keys)?.map(|m| Committed {
                snapshot: m.snapshot.clone(),
                manifest: Some(m),
            }),
            OutputLayout::Fsctl => store.current(&keys)?,
        };
        let manifest = committed.as_ref().and_then(|c| c.manifest.as_ref());
        let Some(m) = manifest else {
            out.push(ServiceStatus {
                service: s.name.clone(),
                snapshot: committed.map(|c| c.snapshot),
                as_of: None,
                age_s: None,
                committed_at: None,
                entities: 0,
                keys: 0,
                bytes: 0,
                max_age_s: max_age_ms.map(|ms| ms / 1000),
                fresh: false,
            });
            continue;
        };
        let as_of_us = parse_instant_us(&m.as_of).unwrap_or(m.as_of_ms * 1000);
        // Without Feast's key_ttl_seconds, a unit's own view ttl says when it is stale.
        let ttl_ms = match m.ttl.online_ms {
            0 => m.views.iter().map(|v| v.ttl_ms).max().unwrap_or(0),
            ms => ms,
        };
        let limit_ms = max_age_ms.unwrap_or(ttl_ms);
        let age_us = now_us - as_of_us;
        out.push(ServiceStatus {
            service: s.name.clone(),
            snapshot: Some(m.snapshot.clone()),
            as_of: Some(format_us(as_of_us)),
            age_s: Some(age_us.div_euclid(1_000_000)),
            committed_at: Some(m.committed_at.clone()).filter(|c| !c.is_empty()),
            entities: m.entities,
            keys: m.keys_written,
            bytes: m.bytes_written,
            max_age_s: Some(limit_ms / 1000),
            fresh: age_us <= limit_ms * 1000,
        });
    }
    Ok(out)
}

/// The failure `status` exits with when a service is stale or has nothing committed.
pub fn staleness(statuses: &[ServiceStatus]) -> Option<Error> {
    let stale: Vec<String> = statuses
        .iter()
        .filter(|s| !s.fresh)
        .map(|s| match (s.age_s, s.max_age_s) {
            (Some(age), Some(max)) => format!(
                "{} is {} old (its limit is {})",
                s.service,
                crate::base::duration::format_duration_ms(age * 1000),
                crate::base::duration::format_duration_ms(max * 1000)
            ),
            _ => format!("{} has no committed snapshot", s.service),
        })
        .collect();
    (!stale.is_empty()).then_some(Error::Stale { services: stale })
}

/// A gauge of `prometheus`: its name, help text, and its value for a service, if any.
type Gauge = (
    &'static str,
    &'static str,
    fn(&ServiceStatus) -> Option<f64>,
);

/// The statuses as Prometheus text (exposition format 0.0.4), for a scrape or a textfile.
pub fn prometheus(project: &str, statuses: &[ServiceStatus]) -> String {
    let mut out = String::new();
    let metrics: [Gauge; 8] = [
        (
            "fsctl_snapshot_present",
            "1 when the service has a committed snapshot with its manifest, else 0.",
            |s| Some(f64::from(u8::from(s.as_of.is_some()))),
        ),
        (
            "fsctl_snapshot_as_of_timestamp_seconds",
            "The as-of time (window end) of the committed snapshot: the data's freshness.",
            |s| {
                s.as_of
                    .as_deref()
                    .and_then(|t| parse_instant_us(t).ok())
                    .map(|us| us as f64 / 1e6)
            },
        ),
        (
            "fsctl_snapshot_age_seconds",
            "Seconds from the committed snapshot's as-of time to when status ran.",
            |s| s.age_s.map(|a| a as f64),
        ),
        (
            "fsctl_snapshot_max_age_seconds",
            "The age past which the service counts as stale.",
            |s| s.max_age_s.map(|a| a as f64),
        ),
        (
            "fsctl_snapshot_stale",
            "1 when the service is older than its max age or has nothing committed, else 0.",
            |s| Some(f64::from(u8::from(!s.fresh))),
        ),
        (
            "fsctl_snapshot_entities",
            "Entities in the committed snapshot.",
            |s| s.as_of.as_ref().map(|_| s.entities as f64),
        ),
        (
            "fsctl_snapshot_keys",
            "Keys the committed snapshot wrote.",
            |s| s.as_of.as_ref().map(|_| s.keys as f64),
        ),
        (
            "fsctl_snapshot_bytes",
            "Value bytes the committed snapshot wrote.",
            |s| s.as_of.as_ref().map(|_| s.bytes as f64),
        ),
    ];
    for (name, help, value) in metrics {
        let samples = statuses.iter().filter_map(|s| {
            let labels = labels(&[("project", project), ("service", &s.service)]);
            value(s).map(|v| (labels, v))
        });
        gauge(&mut out, name, help, samples, &[]);
    }
    out
}
