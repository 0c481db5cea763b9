//! Data-quality checks declared in the repo (`checks:` on features and views), evaluated on the
//! latest row per entity of the window — exactly the rows a snapshot would serve. `materialize`
//! runs them before writing and refuses to commit when one fails; `validate --data` reports them.

use std::fmt;

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
