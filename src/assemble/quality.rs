//! Data-quality checks declared in the repo (`checks:` on features and views), evaluated on the
//! latest row per entity of the window — exactly the rows a snapshot would serve. `materialize`
//! runs them before writing and refuses to commit when one fails; `validate --data` reports them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::base::value::Value;
use crate::offline::{LatestRows, ViewScan};
use crate::repo::Repo;
use crate::vector::msgpack::split_items;

/// A check that failed: which, where, what was observed and the limit.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct CheckFailure {
    pub view: String,
    /// `None` for view-level checks.
    pub feature: Option<String>,
    pub check: &'static str,
    pub observed: f64,
    pub limit: f64,
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.feature {
            Some(feature) => format!("{}.{feature}", self.view),
            None => self.view.clone(),
        };
        let (observed, relation) = match self.check {
            "max_null_fraction" => (
                format!("null fraction {:.4}", self.observed),
                "above the limit",
            ),
            "min" => (format!("minimum {}", self.observed), "below the limit"),
            "max" => (format!("maximum {}", self.observed), "above the limit"),
            "min_entities" => (format!("{} entities", self.observed), "below the limit"),
            other => (format!("{other} {}", self.observed), "outside the limit"),
        };
        write!(
            f,
            "{what}: {observed} is {relation} {} ({})",
            self.limit, self.check
        )
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::F32(x) => Some(f64::from(*x)),
        Value::F64(x) => Some(*x),
        _ => None,
    }
}

/// Evaluates the view's checks on its latest rows.
pub(crate) fn check_view(repo: &Repo, scan: &ViewScan, rows: &LatestRows) -> Vec<CheckFailure> {
    let mut checks = ViewChecks::new(scan);
    checks.add(repo, scan, rows);
    checks.failures(repo, scan)
}

/// A view's check statistics over one shard's entities, by feature (only features with checks).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordedChecks {
    pub entities: u64,
    pub features: BTreeMap<String, FeatureStats>,
}

/// A feature's nulls and range over one shard's entities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureStats {
    pub nulls: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// A view's check statistics, added up over the partitions of a run (see `Partition`).
#[derive(Debug, Clone)]
pub(crate) struct ViewChecks {
    entities: u64,
    /// Per needed feature: nulls, lowest and highest value.
    features: Vec<(u64, f64, f64)>,
}

impl ViewChecks {
    pub(crate) fn new(scan: &ViewScan) -> ViewChecks {
        ViewChecks {
            entities: 0,
            features: vec![(0, f64::INFINITY, f64::NEG_INFINITY); scan.needed.len()],
        }
    }

    pub(crate) fn add(&mut self, repo: &Repo, scan: &ViewScan, rows: &LatestRows) {
        let view = &repo.views[scan.view];
        self.entities += rows.len() as u64;
        let mut items = Vec::new();
        for (pos, &fi) in scan.needed.iter().enumerate() {
            let checks = &view.features[fi].checks;
            if checks.is_empty() {
                continue;
            }
            let (nulls, lo, hi) = &mut self.features[pos];
            for row in rows.rows() {
                if row.is_null(pos) {
                    *nulls += 1;
                    continue;
                }
                if checks.min.is_some() || checks.max.is_some() {
                    split_items(row.items(), &mut items);
                    if let Some(x) = rmp_serde::from_slice::<Value>(items[pos])
                        .ok()
                        .as_ref()
                        .and_then(as_f64)
                    {
                        *lo = lo.min(x);
                        *hi = hi.max(x);
                    }
                }
            }
        }
    }

    /// The statistics by feature name, as a shard records them (SPEC §3.3) so that the commit
    /// can run the gate on the totals of every shard.
    pub(crate) fn record(&self, repo: &Repo, scan: &ViewScan) -> RecordedChecks {
        let view = &repo.views[scan.view];
        let features = scan
            .needed
            .iter()
            .zip(&self.features)
            .filter(|(fi, _)| !view.features[**fi].checks.is_empty())
            .map(|(&fi, &(nulls, lo, hi))| {
                let stats = FeatureStats {
                    nulls,
                    min: lo.is_finite().then_some(lo),
                    max: hi.is_finite().then_some(hi),
                };
                (view.features[fi].name.clone(), stats)
            })
            .collect();
        RecordedChecks {
            entities: self.entities,
            features,
        }
    }

    /// Adds a shard's recorded statistics.
    pub(crate) fn add_recorded(&mut self, repo: &Repo, scan: &ViewScan, recorded: &RecordedChecks) {
        let view = &repo.views[scan.view];
        self.entities += recorded.entities;
        for (pos, &fi) in scan.needed.iter().enumerate() {
            if let Some(stats) = recorded.features.get(&view.features[fi].name) {
                let (nulls, lo, hi) = &mut self.features[pos];
                *nulls += stats.nulls;
                *lo = lo.min(stats.min.unwrap_or(f64::INFINITY));
                *hi = hi.max(stats.max.unwrap_or(f64::NEG_INFINITY));
            }
        }
    }

    pub(crate) fn failures(&self, repo: &Repo, scan: &ViewScan) -> Vec<CheckFailure> {
        let view = &repo.views[scan.view];
        let mut failures = Vec::new();
        let entities = self.entities;
        if let Some(min) = view.min_entities
            && entities < min
        {
            failures.push(CheckFailure {
                view: view.name.clone(),
                feature: None,
                check: "min_entities",
                observed: entities as f64,
                limit: min as f64,
            });
        }
        for (pos, &fi) in scan.needed.iter().enumerate() {
            let feature = &view.features[fi];
            let checks = &feature.checks;
            if checks.is_empty() || entities == 0 {
                continue;
            }
            let (nulls, lo, hi) = self.features[pos];
            let fail = |check, observed, limit| CheckFailure {
                view: view.name.clone(),
                feature: Some(feature.name.clone()),
                check,
                observed,
                limit,
            };
            let fraction = nulls as f64 / entities as f64;
            if let Some(max) = checks.max_null_fraction
                && fraction > max
            {
                failures.push(fail("max_null_fraction", fraction, max));
            }
            if let Some(min) = checks.min
                && lo < min
            {
                failures.push(fail("min", lo, min));
            }
            if let Some(max) = checks.max
                && hi > max
            {
                failures.push(fail("max", hi, max));
            }
        }
        failures
    }
}
