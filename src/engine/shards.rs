//! Sharded runs (SPEC §3.3): `materialize --shard I/N` writes the entities of shard I of the
//! snapshot an unsharded run would write and records a shard manifest; `commit` checks that
//! all N shards recorded the same snapshot, sums their manifests, runs the quality gate on the
//! totals and flips `current` once, with the lifecycle of §3.1 after it.
//!
//! Shards hold no lock while they write (they write disjoint keys, and a rerun writes the same
//! bytes); the snapshot is marked sharded first, and retirement leaves a sharded snapshot alone
//! while it can still be committed (its as-of is not older than `current`'s).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub use super::commit::ShardManifest;
use super::commit::{commit_and_retire, current_before};
use super::{MaterializeOptions, Materialized, ServiceReport, Status, plan, select_services};
use crate::assemble::ViewChecks;
use crate::base::error::{Error, Result};
use crate::base::time::{format_us, now_us};
use crate::offline::ViewScan;
use crate::online::{self, Flip, KeySpace, Manifest, OnlineStore};
use crate::progress::Progress;
use crate::repo::{OutputLayout, Repo, Service};

/// The most shards a job may be split into.
pub const MAX_SHARDS: u32 = 1024;

/// What to commit and how.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Services to commit; empty means every service.
    pub services: Vec<String>,
    /// The window the shards were run with (as `materialize` takes it).
    pub start_us: Option<i64>,
    pub end_us: Option<i64>,
    /// How many shards the job was split into.
    pub shards: u32,
    /// Commit a snapshot already committed again, and allow moving `current` back in time.
    pub force: bool,
    /// How long to wait for another run's lock.
    pub wait_lock: Duration,
    pub allow_empty: bool,
    pub skip_checks: bool,
    pub allow_future_end: bool,
}

impl CommitOptions {
    fn of_materialize(opts: &MaterializeOptions, shards: u32) -> CommitOptions {
        CommitOptions {
            services: opts.services.clone(),
            start_us: opts.start_us,
            end_us: opts.end_us,
            shards,
            force: opts.force,
            wait_lock: opts.wait_lock,
            allow_empty: opts.allow_empty,
            skip_checks: opts.skip_checks,
            allow_future_end: opts.allow_future_end,
        }
    }
}

/// Commits sharded runs: for each service, the snapshot of the job (the window and the inputs
/// as planned now) once all `shards` shards recorded it.
pub fn commit(
    repo: &Repo,
    store: &dyn OnlineStore,
    opts: &CommitOptions,
    progress: Progress,
) -> Result<Materialized> {
    if !(1..=MAX_SHARDS).contains(&opts.shards) {
        return Err(Error::usage(format!(
            "--shards must be between 1 and {MAX_SHARDS}"
        )));
    }
    let services = select_services(repo, &opts.services)?;
    let end_us = plan::window_end(opts.end_us, opts.allow_future_end)?;
    // Where the shards' windows started (the same rule, so the same snapshot id).
    let scans = match repo.layout {
        OutputLayout::Feast => {
            let starts = super::feast::view_starts(repo, store, &services, opts.start_us, end_us)?;
            plan::plan_scans(repo, &services, None, &starts, end_us)?
        }
        OutputLayout::Fsctl => {
            plan::plan_scans(repo, &services, opts.start_us, &HashMap::new(), end_us)?
        }
    };
    let mut reports = Vec::new();
    let mut refused = None;
    for s in services {
        let snapshot = plan::snapshot_id(repo, s, &scans, end_us);
        let commit = ShardCommit {
            repo,
            store,
            service: s,
            keys: KeySpace::new(&repo.online.key_prefix, &repo.project, &s.name),
            snapshot,
            end_us,
            opts,
            progress,
        };
        match commit.run(&scans) {
            Ok(Outcome::Done(report)) => reports.push(*report),
            Ok(Outcome::Incomplete { problems, .. }) => {
                refused.get_or_insert(Error::ShardsIncomplete {
                    service: s.name.clone(),
                    snapshot: commit.snapshot.clone(),
                    shards: opts.shards,
                    problems,
                });
            }
            Err(e) => {
                refused.get_or_insert(e);
            }
        }
    }
    Ok(Materialized { reports, refused })
}

/// After a shard run with `--commit-when-complete`: commits each service whose shards are all
/// recorded, replacing its shard report by the commit's; the others' reports list the shards
/// still missing.
pub(crate) fn commit_when_complete(
    repo: &Repo,
    store: &dyn OnlineStore,
    scans: &HashMap<usize, ViewScan>,
    end_us: i64,
    opts: &MaterializeOptions,
    reports: &mut [ServiceReport],
    progress: Progress,
) -> Option<Error> {
    let shard = opts.shard?;
    let mut refused = None;
    let copts = CommitOptions::of_materialize(opts, shard.count);
    for report in reports.iter_mut() {
        if !matches!(
            report.status,
            Status::ShardRecorded | Status::AlreadyRecorded
        ) {
            continue;
        }
        let Some(s) = repo.service(&report.service) else {
            continue;
        };
        let commit = ShardCommit {
            repo,
            store,
            service: s,
            keys: KeySpace::new(&repo.online.key_prefix, &repo.project, &s.name),
            snapshot: report.snapshot.clone(),
            end_us,
            opts: &copts,
            progress,
        };
        match commit.run(scans) {
            Ok(Outcome::Done(mut committed)) => {
                committed.shard = Some(shard);
                *report = *committed;
            }
            Ok(Outcome::Incomplete { missing, problems }) => {
                // Shards that ran with another count never complete this job: say so.
                for p in problems.iter().filter(|p| p.contains(" was run as ")) {
                    progress.warn(&s.name, p);
                }
                report.missing_shards = missing;
            }
            Err(e) => {
                refused.get_or_insert(e);
            }
        }
    }
    refused
}

enum Outcome {
    Done(Box<ServiceReport>),
    /// Shards missing (their indices) or not matching, and why.
    Incomplete {
        missing: Vec<u32>,
        problems: Vec<String>,
    },
}

/// One service's commit of a sharded snapshot.
struct ShardCommit<'a> {
    repo: &'a Repo,
    store: &'a dyn OnlineStore,
    service: &'a Service,
    keys: KeySpace,
    snapshot: String,
    end_us: i64,
    opts: &'a CommitOptions,
    progress: Progress,
}

impl ShardCommit<'_> {
    fn report(&self, status: Status) -> ServiceReport {
        ServiceReport::new(self.repo, self.service, status, &self.snapshot)
    }

    fn run(&self, scans: &HashMap<usize, ViewScan>) -> Result<Outcome> {
        let t = std::time::Instant::now();
        let (store, keys, snapshot) = (self.store, &self.keys, self.snapshot.as_str());
        if !self.opts.force && store.is_committed(keys, snapshot)? {
            return Ok(Outcome::Done(Box::new(
                self.report(Status::AlreadyCommitted),
            )));
        }
        let shards = match self.read_shards()? {
            Ok(shards) => shards,
            Err((missing, problems)) => return Ok(Outcome::Incomplete { missing, problems }),
        };
        let mut manifest = merged(&shards);
        manifest.checks_skipped = self.opts.skip_checks;
        if !self.opts.skip_checks {
            self.gate(scans, &shards)?;
        }
        if manifest.entities == 0
            && !self.opts.allow_empty
            && self.repo.layout == OutputLayout::Fsctl
        {
            return Err(Error::EmptyResult {
                service: self.service.name.clone(),
            });
        }

        if self.repo.layout == OutputLayout::Feast {
            return self.commit_feast(manifest, t);
        }
        // The commit is short: wait for another commit of the same job (two shards completing
        // at once) or for gc rather than fail.
        let lease = Duration::from_millis(self.repo.lock_lease_ms as u64);
        let lock = store.lock(keys, lease, self.opts.wait_lock.max(lease), snapshot)?;
        let was_committed = store.is_committed(keys, snapshot)?;
        if was_committed && !self.opts.force {
            lock.release();
            return Ok(Outcome::Done(Box::new(
                self.report(Status::AlreadyCommitted),
            )));
        }
        if let Some(retired_at) = store.manifest(keys, snapshot)?.and_then(|m| m.retired_at) {
            return Err(Error::CommitRefused {
                service: self.service.name.clone(),
                reason: format!(
                    "snapshot {snapshot} was retired at {retired_at}, and a retired snapshot never \
                     becomes current again; a later --end makes a new one"
                ),
            });
        }
        let expected_current = current_before(
            store,
            keys,
            &self.service.name,
            self.end_us,
            self.opts.force,
        )?;
        let s = self.service;
        let (_, highest) = online::expiry_bounds(
            self.end_us / 1000,
            s.online_ttl_ms.max(s.hot_ttl_ms),
            self.repo.ttl_jitter,
        );
        let committed_at_ms = now_us() / 1000;
        manifest.committed_at = format_us(committed_at_ms * 1000);
        let json = serde_json::to_string(&manifest).expect("manifest serializes");
        let flip = Flip {
            snapshot,
            manifest_json: &json,
            manifest_pxat_ms: highest,
            committed_at_ms,
            expected_current: &expected_current,
        };
        // A refused flip keeps the shards' data: it is listed, and retired once a later
        // snapshot commits.
        let retired = commit_and_retire(self.repo, store, keys, lock, &flip, false)?;
        if let Err(e) = store.forget_sharded(keys, snapshot) {
            // Harmless: a sharded snapshot no newer than `current` is retired like any other.
            self.progress.warn(&s.name, &e.to_string());
        }

        let mut report = self.report(Status::Committed);
        report.entities = manifest.entities;
        report.keys_written = manifest.keys_written;
        report.bytes_written = manifest.bytes_written;
        report.null_entity_rows = manifest.null_entity_rows;
        report.imputed = manifest.imputed.clone();
        report
            .phases_ms
            .insert("commit", t.elapsed().as_millis() as u64);
        match retired {
            Ok(r) => report.retired = Some(r),
            Err(e) => {
                self.progress.warn(
                    &s.name,
                    &format!("committed, but retiring older snapshots failed: {e}; the next run or `fsctl gc` finishes it"),
                );
                report.retire_error = Some(e);
            }
        }
        report.manifest = Some(manifest);
        Ok(Outcome::Done(Box::new(report)))
    }

    /// The commit of a sharded run in Feast's layout (SPEC §3.4): the shards' writes landed in
    /// place, so committing records the unit's manifest, which the next run continues from.
    fn commit_feast(&self, mut manifest: Manifest, t: std::time::Instant) -> Result<Outcome> {
        let (store, keys) = (self.store, &self.keys);
        let lease = Duration::from_millis(self.repo.lock_lease_ms as u64);
        let lock = store.lock(keys, lease, self.opts.wait_lock.max(lease), &self.snapshot)?;
        let outcome = super::feast::before_writing(
            store,
            keys,
            &self.service.name,
            &self.snapshot,
            self.opts.start_us.is_some(),
            self.end_us,
            self.opts.force,
        );
        if !matches!(outcome, Ok(None)) {
            lock.release();
            return outcome.map(|done| {
                Outcome::Done(Box::new(
                    self.report(done.unwrap_or(Status::AlreadyCommitted)),
                ))
            });
        }
        manifest.committed_at = format_us(now_us());
        let json = serde_json::to_string(&manifest).expect("manifest serializes");
        super::feast::record(store, self.repo, self.service, &json, &lock)?;
        lock.release();
        let mut report = self.report(Status::Committed);
        report.entities = manifest.entities;
        report.keys_written = manifest.keys_written;
        report.bytes_written = manifest.bytes_written;
        report.null_entity_rows = manifest.null_entity_rows;
        report.imputed = manifest.imputed.clone();
        report
            .phases_ms
            .insert("commit", t.elapsed().as_millis() as u64);
        report.manifest = Some(manifest);
        Ok(Outcome::Done(Box::new(report)))
    }

    /// The N shard manifests of the snapshot, or the shards missing and every problem found.
    #[allow(clippy::type_complexity)]
    fn read_shards(
        &self,
    ) -> Result<std::result::Result<Vec<ShardManifest>, (Vec<u32>, Vec<String>)>> {
        let n = self.opts.shards;
        let raw = self.store.shard_manifests(&self.keys, &self.snapshot, n)?;
        let mut shards = Vec::new();
        let mut missing = Vec::new();
        let mut problems = Vec::new();
        for (i, json) in (0..n).zip(raw) {
            let key = self.keys.shard_manifest(&self.snapshot, i);
            let Some(json) = json else {
                missing.push(i);
                problems.push(self.why_missing(i)?);
                continue;
            };
            match serde_json::from_str::<ShardManifest>(&json) {
                Ok(m) if m.shards != n => {
                    missing.push(i);
                    problems.push(format!(
                        "shard {i} was run as shard {}/{} of this snapshot, not {i}/{n} ({key}); \
                         rerun it with --shard {i}/{n}",
                        m.shard, m.shards
                    ));
                }
                Ok(m) => shards.push(m),
                Err(e) => {
                    missing.push(i);
                    problems.push(format!(
                        "shard {i}: its manifest {key} is unreadable ({e}); rerun it with --shard {i}/{n} --force"
                    ));
                }
            }
        }
        // Which entities a shard holds is a hash of this fsctl's: shards of two versions may
        // miss or repeat entities between them.
        if let Some(first) = shards.first() {
            let first_version = &first.manifest.fsctl_version;
            let other: Vec<&ShardManifest> = shards
                .iter()
                .filter(|m| &m.manifest.fsctl_version != first_version)
                .collect();
            if !other.is_empty() {
                let named: Vec<String> = shards
                    .iter()
                    .map(|m| format!("{} ran {}", m.shard, m.manifest.fsctl_version))
                    .collect();
                missing.extend(other.iter().map(|m| m.shard));
                problems.push(format!(
                    "the shards ran different fsctl versions ({}); the shard of an entity is a \
                     hash fsctl computes, so every shard of a job must run the same version: \
                     rerun the others with --force",
                    named.join(", ")
                ));
            }
        }
        Ok(if problems.is_empty() {
            Ok(shards)
        } else {
            Err((missing, problems))
        })
    }

    /// Why shard `i` has no manifest for this snapshot: it recorded another job's (another
    /// window or other inputs), or none yet.
    fn why_missing(&self, i: u32) -> Result<String> {
        let n = self.opts.shards;
        let want = format!(
            "shard {i}/{n} has not recorded snapshot {} (window end {})",
            self.snapshot,
            format_us(self.end_us)
        );
        for (other, as_of_ms) in self.store.sharded(&self.keys)? {
            if other == self.snapshot {
                continue;
            }
            let raw = self.store.shard_manifests(&self.keys, &other, i + 1)?;
            if raw.last().is_some_and(Option::is_some) && as_of_ms == self.end_us / 1000 {
                return Ok(format!(
                    "{want}: it recorded snapshot {other} of the same window end, so the input \
                     files or the repo changed after it ran (a snapshot is named after them); \
                     rerun every shard"
                ));
            }
            if raw.last().is_some_and(Option::is_some) {
                return Ok(format!(
                    "{want}: it recorded snapshot {other} (window end {}) instead, a run of \
                     another window or of other input files; rerun it with this job's --end",
                    format_us(as_of_ms * 1000)
                ));
            }
        }
        Ok(format!(
            "{want}: it has not run, is still running, or failed; run (or rerun) it with --shard {i}/{n}"
        ))
    }

    /// The quality gate on the totals of every shard.
    fn gate(&self, scans: &HashMap<usize, ViewScan>, shards: &[ShardManifest]) -> Result<()> {
        let repo = self.repo;
        let failed: Vec<_> = self
            .service
            .views
            .iter()
            .flat_map(|v| {
                let scan = &scans[v];
                let mut checks = ViewChecks::new(scan);
                for shard in shards {
                    if let Some(recorded) = shard.checks.get(&repo.views[*v].name) {
                        checks.add_recorded(repo, scan, recorded);
                    }
                }
                checks.failures(repo, scan)
            })
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        Err(Error::quality_gate(&self.service.name, &failed))
    }
}

/// The snapshot's manifest from its shards': entity figures summed, inputs and row counts
/// (which every shard reads whole) from the first.
fn merged(shards: &[ShardManifest]) -> Manifest {
    let mut out = shards[0].manifest.clone();
    let add = |into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>| {
        for (k, v) in from {
            *into.entry(k.clone()).or_default() += v;
        }
    };
    for shard in &shards[1..] {
        let m = &shard.manifest;
        out.entities += m.entities;
        out.keys_written += m.keys_written;
        out.bytes_written += m.bytes_written;
        add(&mut out.imputed, &m.imputed);
        add(&mut out.nulls, &m.nulls);
        add(&mut out.absent, &m.absent);
        for (view, source) in &m.sources {
            if let Some(s) = out.sources.get_mut(view) {
                s.entities += source.entities;
            }
        }
        out.created_at = out.created_at.clone().min(m.created_at.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_manifest_is_a_manifest_with_its_place_and_statistics() {
        let json = r#"{"format":1,"project":"p","service":"s","snapshot":"abc","fingerprint":"00",
            "schema":[],"entity":{"name":"e","join_keys":[]},"window":{"start":"a","end":"b"},
            "as_of":"b","as_of_ms":5,"entities":3,"keys_written":3,"bytes_written":30,
            "null_entity_rows":1,"imputed":{"v.f":2},"nulls":{},"absent":{"v":1},"sources":{},
            "ttl":{"online_ms":1,"hot_ms":1,"jitter":0.0},"checks_skipped":false,
            "created_at":"2026-01-02T00:00:00Z","committed_at":"","fsctl_version":"x",
            "shard":1,"shards":2,"recorded_at":"r",
            "checks":{"v":{"entities":3,"features":{"f":{"nulls":1,"min":0.5}}}}}"#;
        let a: ShardManifest = serde_json::from_str(json).unwrap();
        assert_eq!((a.shard, a.shards, a.manifest.entities), (1, 2, 3));
        assert_eq!(a.checks["v"].features["f"].min, Some(0.5));
        let again: ShardManifest =
            serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(again, a);

        let mut b = a.clone();
        b.shard = 0;
        b.manifest.created_at = "2026-01-01T00:00:00Z".into();
        let m = merged(&[a, b]);
        assert_eq!((m.entities, m.keys_written, m.bytes_written), (6, 6, 60));
        assert_eq!((m.imputed["v.f"], m.absent["v"]), (4, 2));
        // Rows without a key are counted by every shard's read of the same files: not summed.
        assert_eq!(m.null_entity_rows, 1);
        assert_eq!(m.created_at, "2026-01-01T00:00:00Z");
    }
}
