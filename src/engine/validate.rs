//! Validation for CI (SPEC §4 `validate`): the definitions, the offline data every sound view
//! can reach, the schema lock, the data-quality checks and the live store. Every problem is
//! reported as a finding, in one run: a broken definition never hides the data checks of the
//! views that resolved.

use std::path::Path;

use serde::Serialize;

use super::lifecycle::{self, SnapshotState};
use super::lockfile;
use crate::assemble::check_view;
use crate::base::error::Result;
use crate::base::finding::{Finding, Severity};
use crate::base::time::{now_us, parse_instant_us};
use crate::offline::{Partition, ViewScan, Window};
use crate::online::{self, KeySpace, Reader};
use crate::repo::{self, OutputLayout, Repo};

/// What to check beyond the definitions.
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Compare fingerprints with `fsctl.lock`.
    pub locked: bool,
    /// Evaluate the data-quality checks on the latest rows of the window.
    pub data: bool,
    /// Window end for `data` (UTC µs; default now).
    pub end_us: Option<i64>,
    /// Check the live store: committed manifests match, sampled vectors decode.
    pub online: bool,
    /// Vectors to sample per service with `online`.
    pub sample: usize,
}

#[derive(Debug, Serialize)]
pub struct ServiceSummary {
    pub service: String,
    pub fingerprint: String,
    pub features: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<OnlineSummary>,
}

#[derive(Debug, Serialize)]
pub struct OnlineSummary {
    pub snapshot: String,
    pub age_s: i64,
    pub keys_written: u64,
    pub sampled: usize,
    /// Snapshots whose data is in Redis (current, kept, retired within their grace, leftovers).
    pub snapshots_alive: usize,
    /// Their value bytes, from the manifests (leftovers have none).
    pub bytes_alive: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Validation {
    pub findings: Vec<Finding>,
    pub services: Vec<ServiceSummary>,
    /// Errors in `feature_store.yaml` itself (the rest are about data, lock or live store).
    #[serde(skip)]
    pub definition_errors: usize,
}

impl Validation {
    /// Findings of error severity (warnings do not fail CI).
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }
}

/// Validates the repo in `dir`. Fails only when there is no repo to validate; everything
/// else it finds is a finding.
pub fn validate(dir: &Path, opts: &ValidateOptions) -> Result<Validation> {
    let loaded = repo::load_all(dir)?;
    let definition_errors = loaded
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let mut out = Validation {
        findings: loaded.findings,
        services: Vec::new(),
        definition_errors,
    };
    let Some(repo) = loaded.repo else {
        return Ok(out);
    };
    out.findings
        .extend(check_offline(&repo, &loaded.sound_views, opts));
    let sound_services: Vec<usize> = (0..repo.services.len())
        .filter(|&i| loaded.sound_services[i])
        .collect();
    if opts.locked {
        out.findings
            .extend(lockfile::check(&repo, &sound_services, dir));
    }
    for &i in &sound_services {
        let s = &repo.services[i];
        out.services.push(ServiceSummary {
            service: s.name.clone(),
            fingerprint: repo.fingerprint(s).to_string(),
            features: s.features.len(),
            online: None,
        });
    }
    if opts.online {
        check_online(&repo, opts.sample, &mut out);
    }
    Ok(out)
}

/// Offline data of every sound view: files exist and are Parquet, columns exist and coerce;
/// with `data`, the quality checks on the window's latest rows.
fn check_offline(repo: &Repo, sound_views: &[bool], opts: &ValidateOptions) -> Vec<Finding> {
    let end_us = opts.end_us.unwrap_or_else(now_us);
    let mut findings = Vec::new();
    for (vi, view) in repo.views.iter().enumerate() {
        if !sound_views[vi] {
            continue;
        }
        let all: Vec<usize> = (0..view.features.len()).collect();
        let window = Window {
            start_us: end_us - view.ttl_ms * 1000,
            end_us,
        };
        let planned = ViewScan::plan_collect(repo, vi, all, window).and_then(|scan| {
            // Values a narrowing dtype cannot hold, from the statistics (or the data).
            let out_of_range = scan.check_ranges();
            if out_of_range.is_empty() {
                Ok(scan)
            } else {
                Err(out_of_range)
            }
        });
        match planned {
            Err(problems) => {
                for p in problems {
                    let mut f = Finding::error(
                        p.code,
                        &p.file,
                        format!("view `{}`: {}", view.name, p.message),
                    );
                    if let Some(c) = p.column {
                        f = f.named(c);
                    }
                    findings.push(f);
                }
            }
            Ok(scan) if opts.data => match scan.run(Partition::ALL, None, 0, &|_| {}) {
                Err(e) => findings.push(
                    Finding::error("bad-data", repo.dir.join(repo::REPO_FILE), e.to_string())
                        .named(&view.name),
                ),
                Ok(rows) => {
                    for failure in check_view(repo, &scan, &rows) {
                        let name = failure
                            .feature
                            .clone()
                            .unwrap_or_else(|| failure.view.clone());
                        findings.push(
                            Finding::error(
                                "check-failed",
                                repo.dir.join(repo::REPO_FILE),
                                failure.to_string(),
                            )
                            .named(name),
                        );
                    }
                }
            },
            Ok(_) => {}
        }
    }
    findings
}

/// The live store: each service's committed manifest has the repo's fingerprint, and a sample
/// of its vectors decodes with it.
fn check_online(repo: &Repo, sample: usize, out: &mut Validation) {
    let file = repo.dir.join(repo::REPO_FILE);
    let store = match online::open(&repo.online) {
        Ok(store) => store,
        Err(e) => {
            out.findings
                .push(Finding::error("online-unreachable", &file, e.to_string()));
            return;
        }
    };
    if repo.layout == OutputLayout::Feast {
        return check_online_feast(repo, &*store, out);
    }
    for summary in &mut out.services {
        let s = repo
            .service(&summary.service)
            .expect("summaries come from the repo");
        let keys = KeySpace::new(&repo.online.key_prefix, &repo.project, &s.name);
        let pinned = match Reader::new(&*store, keys.clone()).pin(None) {
            Ok(p) => p,
            Err(e @ crate::Error::Redis(_)) => {
                out.findings
                    .push(Finding::error("online-unreachable", &file, e.to_string()));
                return;
            }
            Err(e) => {
                out.findings.push(
                    Finding::error("online-no-snapshot", &file, e.to_string()).named(&s.name),
                );
                continue;
            }
        };
        let expected = repo.fingerprint(s);
        if pinned.fingerprint != expected {
            out.findings.push(
                Finding::error(
                    "online-fingerprint",
                    &file,
                    format!(
                        "service `{}`: committed snapshot {} has fingerprint {}, the repo's is {expected}: materialize before deploying this definition",
                        s.name, pinned.snapshot, pinned.fingerprint
                    ),
                )
                .named(&s.name),
            );
        }
        let sampled = match store.sample(&keys.data_prefix(&pinned.snapshot), sample) {
            Ok(sampled) => sampled,
            Err(e) => {
                out.findings
                    .push(Finding::error("online-unreachable", &file, e.to_string()));
                return;
            }
        };
        for (key, raw) in &sampled {
            if let Err(e) = online::check(raw, pinned.fingerprint, key.clone()) {
                out.findings.push(
                    Finding::error("online-corrupt", &file, e.to_string()).named(key.clone()),
                );
            }
        }
        let alive: Vec<_> = match lifecycle::snapshots(repo, &*store, s) {
            Ok(all) => all
                .into_iter()
                .filter(|i| i.state != SnapshotState::Expired)
                .collect(),
            Err(e) => {
                out.findings
                    .push(Finding::error("online-unreachable", &file, e.to_string()));
                return;
            }
        };
        let committed_us = parse_instant_us(&pinned.manifest.committed_at).unwrap_or(0);
        summary.online = Some(OnlineSummary {
            snapshot: pinned.snapshot.clone(),
            age_s: (now_us() - committed_us) / 1_000_000,
            keys_written: pinned.manifest.keys_written,
            sampled: sampled.len(),
            snapshots_alive: alive.len(),
            bytes_alive: alive.iter().map(|i| i.bytes).sum(),
        });
    }
}

/// `--online` with `layout: feast`: each entity's unit was materialized (its manifest is
/// there) with the definitions the repo has now (a view that gained a feature has hashes
/// without it).
fn check_online_feast(repo: &Repo, store: &dyn online::OnlineStore, out: &mut Validation) {
    let file = repo.dir.join(repo::REPO_FILE);
    // What a run writes by default: one unit per entity (view units share their manifests).
    let units: Vec<&str> = super::feast::default_units(repo)
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    for summary in &mut out.services {
        if !units.contains(&summary.service.as_str()) {
            continue;
        }
        let s = repo
            .service(&summary.service)
            .expect("summaries come from the repo");
        let keys = KeySpace::new(&repo.online.key_prefix, &repo.project, &s.name);
        let m = match super::feast::manifest(store, &keys) {
            Ok(Some(m)) => m,
            Ok(None) => {
                out.findings.push(
                    Finding::error(
                        "online-no-snapshot",
                        &file,
                        format!(
                            "`{}` was never materialized by fsctl (no {})",
                            s.name,
                            keys.feast_manifest()
                        ),
                    )
                    .named(&s.name),
                );
                continue;
            }
            Err(e @ crate::Error::Redis(_)) => {
                out.findings
                    .push(Finding::error("online-unreachable", &file, e.to_string()));
                return;
            }
            Err(e) => {
                out.findings
                    .push(Finding::error("online-corrupt", &file, e.to_string()).named(&s.name));
                continue;
            }
        };
        let expected = repo.fingerprint(s).to_string();
        if m.fingerprint != expected {
            out.findings.push(
                Finding::error(
                    "online-fingerprint",
                    &file,
                    format!(
                        "`{}` was last materialized with other definitions (fingerprint {}, the \
                         repo's is {expected}): materialize it before serving them",
                        s.name, m.fingerprint
                    ),
                )
                .named(&s.name),
            );
        }
        let committed_us = parse_instant_us(&m.committed_at).unwrap_or(0);
        summary.online = Some(OnlineSummary {
            snapshot: m.snapshot.clone(),
            age_s: (now_us() - committed_us) / 1_000_000,
            keys_written: m.keys_written,
            sampled: 0,
            snapshots_alive: 0,
            bytes_alive: 0,
        });
    }
}
