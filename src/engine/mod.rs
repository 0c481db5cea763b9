//! The engine: materialize, warm, validate and read as library calls over a resolved repo and
//! an online store, driven by plain option structs (no command-line types). The CLI verbs in
//! `commands/` parse arguments, call these and render what they return.
//!
//! A materialization: plan from metadata (`plan`), take each service's run lock (`job`), read
//! the views in partitions and write each partition while the next is read (`partitions`),
//! then commit each service's snapshot with its manifest (`manifest`).

mod commit;
mod feast;
mod job;
mod layout;
pub mod lifecycle;
pub mod lockfile;
mod manifest;
mod partitions;
mod plan;
pub mod read;
pub mod shards;
pub mod status;
pub mod validate;
pub mod warm;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use self::job::ServiceJob;
use self::partitions::{AUTO_PARTITION_ROWS, AUTO_PARTITIONS, WriteStage};
pub use self::plan::{select_services, service};
pub use self::shards::{CommitOptions, commit};
use crate::base::error::{Error, Result};
use crate::offline::Shard;
use crate::online::{Manifest, OnlineStore};
use crate::progress::Progress;
use crate::repo::{OutputLayout, Repo};

/// Where a materialization's vectors go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Output {
    /// Written to the online store and committed.
    #[default]
    Redis,
    /// Computed and reported; nothing written.
    DryRun,
    /// The exact command stream written as RESP to a file (for `redis-cli --pipe`), not committed.
    EmitResp(PathBuf),
}

/// What to materialize and how.
#[derive(Debug, Clone, Default)]
pub struct MaterializeOptions {
    /// Services to materialize; empty means every service.
    pub services: Vec<String>,
    /// Window start (UTC µs); default: the end minus each view's ttl.
    pub start_us: Option<i64>,
    /// Window end and as-of time (UTC µs); default: now.
    pub end_us: Option<i64>,
    pub output: Output,
    /// Rewrite a snapshot that is already committed, and allow moving `current` back in time.
    pub force: bool,
    /// How long to wait for another run's lock.
    pub wait_lock: Duration,
    /// Commit a result with zero entities.
    pub allow_empty: bool,
    /// Commit even when a data-quality check fails (recorded in the manifest).
    pub skip_checks: bool,
    /// Accept an end further in the future than clock skew explains.
    pub allow_future_end: bool,
    /// Shares of the entities to scan in; default: chosen from the rows to read and the memory
    /// budget.
    pub partitions: Option<u32>,
    /// How views are read: one pass, or two (row-selective); default: chosen per view.
    pub scan: ScanMode,
    /// Bytes of memory the run may hold (it reads in as many partitions as that needs); default:
    /// half of what the machine or its cgroup has available.
    pub memory_budget: Option<u64>,
    /// Report per-view scan statistics on stderr.
    pub verbose: bool,
    /// Write only this shard's entities and record a shard manifest, not a commit (SPEC §3.3).
    pub shard: Option<Shard>,
    /// With `shard`: commit once every shard has recorded its manifest.
    pub commit_when_complete: bool,
}

/// How a view's rows are read (see `ViewScan::run_selective`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ScanMode {
    /// Two passes for a view with many rows per entity in the last snapshot, else one.
    #[default]
    Auto,
    /// One pass: every row's features decoded, the latest kept.
    Single,
    /// Two passes: the latest row per entity picked from the key and time columns, then only
    /// those rows decoded.
    Selective,
}

/// From this many rows to read per entity (of the view, in the last snapshot), `ScanMode::Auto`
/// reads a view in two passes.
pub(crate) const SELECTIVE_ROWS_PER_ENTITY: u64 = 8;

/// What a service's run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Committed,
    /// The same job ran before: a no-op.
    AlreadyCommitted,
    DryRun,
    /// Written to `--emit-resp`, not committed.
    Emitted,
    /// One shard written and its manifest recorded; `fsctl commit` commits the snapshot.
    ShardRecorded,
    /// This shard of the same job was recorded before: a no-op.
    AlreadyRecorded,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    pub service: String,
    pub status: Status,
    pub snapshot: String,
    pub fingerprint: String,
    pub entities: u64,
    pub keys_written: u64,
    pub bytes_written: u64,
    pub null_entity_rows: u64,
    pub imputed: BTreeMap<String, u64>,
    pub retries: u64,
    pub phases_ms: BTreeMap<&'static str, u64>,
    /// Shares of the entities the views were scanned in.
    pub partitions: u32,
    /// The shard this run wrote (SPEC §3.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// With `--commit-when-complete`: the shards not recorded yet, so no commit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_shards: Vec<u32>,
    /// What the commit retired (SPEC §3.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired: Option<lifecycle::Retired>,
    /// Why retiring after the commit failed (the commit stands; `gc` finishes the job).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retire_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
}

impl ServiceReport {
    /// A report of `snapshot` of `service` with no figures yet.
    pub(crate) fn new(
        repo: &Repo,
        service: &crate::repo::Service,
        status: Status,
        snapshot: &str,
    ) -> ServiceReport {
        ServiceReport {
            service: service.name.clone(),
            status,
            snapshot: snapshot.to_owned(),
            fingerprint: repo.fingerprint(service).to_string(),
            entities: 0,
            keys_written: 0,
            bytes_written: 0,
            null_entity_rows: 0,
            imputed: BTreeMap::new(),
            retries: 0,
            phases_ms: BTreeMap::new(),
            partitions: 1,
            shard: None,
            missing_shards: Vec::new(),
            retired: None,
            retire_error: None,
            manifest: None,
        }
    }
}

/// The outcome of a run over several services: the ones that committed (or had nothing to
/// do), and the first failure of a service that did not (the quality gate, an empty result, a
/// lost lock...), which does not hold back the others.
#[derive(Debug)]
pub struct Materialized {
    pub reports: Vec<ServiceReport>,
    pub refused: Option<Error>,
}

/// How many partitions to read in when `--partitions` is not given: enough to keep the largest
/// within the memory budget, and from a million rows at least `AUTO_PARTITIONS` when writing to
/// Redis, so that reading overlaps writing.
fn auto_partitions(
    jobs: &[ServiceJob<'_>],
    scans: &std::collections::HashMap<usize, crate::offline::ViewScan>,
    views: &BTreeSet<usize>,
    opts: &MaterializeOptions,
    progress: Progress,
) -> u32 {
    // A shard reads its share of the entities.
    let shards = u64::from(opts.shard.map_or(1, |s| s.count));
    let rows: u64 = views.iter().map(|v| scans[v].rows_to_read()).sum::<u64>() / shards;
    let overlap = if opts.output == Output::Redis && rows >= AUTO_PARTITION_ROWS {
        AUTO_PARTITIONS
    } else {
        1
    };
    let (budget, from) = match opts.memory_budget {
        Some(b) => (b, "--memory-budget"),
        None => match partitions::machine_budget() {
            Some(b) => (b, "half the memory available"),
            None => return overlap,
        },
    };
    let (mut entities, mut need) = (0u64, 0u64);
    for job in jobs {
        let (n, bytes) = job.planned_memory(scans);
        entities += n;
        need = need.saturating_add(n.saturating_mul(bytes));
    }
    let per_entity = need / entities.max(1);
    let within = partitions::partitions_within(budget, entities, per_entity);
    if opts.verbose {
        progress.note(&format!(
            "fsctl: memory budget {} MB ({from}): about {entities} entities of ~{per_entity} bytes in memory need {within} partition(s); reading in {}",
            budget >> 20,
            within.max(overlap)
        ));
        if budget < 128 << 20 {
            progress.note(
                "fsctl: the budget is below the ~100 MB a run needs besides its entities' rows; \
                 the partitions keep those to a quarter of it",
            );
        }
    }
    within.max(overlap)
}

/// The views to read in two passes: per `opts.scan`, or (auto) those whose rows to read per
/// entity of the last snapshot reach `SELECTIVE_ROWS_PER_ENTITY`.
fn selective_views(
    jobs: &[ServiceJob<'_>],
    scans: &std::collections::HashMap<usize, crate::offline::ViewScan>,
    views: &BTreeSet<usize>,
    opts: &MaterializeOptions,
    progress: Progress,
) -> BTreeSet<usize> {
    match opts.scan {
        ScanMode::Single => return BTreeSet::new(),
        ScanMode::Selective => return views.clone(),
        ScanMode::Auto => {}
    }
    let shards = u64::from(opts.shard.map_or(1, |s| s.count));
    let last: BTreeMap<String, u64> = jobs.iter().flat_map(|j| j.last_view_entities()).collect();
    views
        .iter()
        .copied()
        .filter(|v| {
            let scan = &scans[v];
            let Some(&entities) = last.get(&scan.view_name) else {
                return false;
            };
            let per_entity = scan.rows_to_read() / (entities / shards).max(1);
            let two = per_entity >= SELECTIVE_ROWS_PER_ENTITY;
            if opts.verbose {
                progress.note(&format!(
                    "fsctl: view {}: about {per_entity} rows per entity to read; {}",
                    scan.view_name,
                    if two {
                        "two passes (row-selective)"
                    } else {
                        "one pass"
                    }
                ));
            }
            two
        })
        .collect()
}

/// Runs SPEC §2–3 for the selected services of `repo` against `store`.
pub fn materialize(
    repo: &Repo,
    store: &dyn OnlineStore,
    opts: &MaterializeOptions,
    progress: Progress,
) -> Result<Materialized> {
    let services = select_services(repo, &opts.services)?;
    let end_us = plan::window_end(opts.end_us, opts.allow_future_end)?;
    let t_plan = std::time::Instant::now();
    let scans = match repo.layout {
        OutputLayout::Feast => {
            let starts = feast::view_starts(repo, store, &services, opts.start_us, end_us)?;
            plan::plan_scans(repo, &services, None, &starts, end_us)?
        }
        OutputLayout::Fsctl => {
            plan::plan_scans(repo, &services, opts.start_us, &HashMap::new(), end_us)?
        }
    };
    let plan_ms = t_plan.elapsed().as_millis() as u64;
    if repo.layout != OutputLayout::Feast {
        // Feast's expiries run from the write, not from the window's end.
        plan::check_expiries(repo, &services, end_us)?;
    }

    // Lock each service and learn what is current (a rerun of the same job is a no-op).
    let mut jobs = Vec::new();
    let mut reports = Vec::new();
    for s in services {
        let snapshot = plan::snapshot_id(repo, s, &scans, end_us);
        let mut job = ServiceJob::new(repo, s, snapshot, end_us, opts, store, progress);
        match job.prepare()? {
            Some(report) => reports.push(report),
            None => jobs.push(job),
        }
    }
    let views: BTreeSet<usize> = jobs
        .iter()
        .flat_map(|j| j.service.views.iter().copied())
        .collect();
    if jobs.is_empty() {
        // Every shard was recorded before; with --commit-when-complete this may be the last.
        let refused = if opts.commit_when_complete {
            shards::commit_when_complete(repo, store, &scans, end_us, opts, &mut reports, progress)
        } else {
            None
        };
        return Ok(Materialized { reports, refused });
    }
    let parts = opts
        .partitions
        .unwrap_or_else(|| auto_partitions(&jobs, &scans, &views, opts, progress));
    let selective = selective_views(&jobs, &scans, &views, opts, progress);
    let resp = match &opts.output {
        Output::EmitResp(path) => {
            let mut resp = store.resp_file(path)?;
            if repo.layout == OutputLayout::Feast {
                resp.preamble(&[
                    b"SCRIPT",
                    b"LOAD",
                    crate::online::FEAST_WRITE_SCRIPT.as_bytes(),
                ])?;
            }
            Some(resp)
        }
        _ => None,
    };
    let read = partitions::read_and_write(
        repo,
        &scans,
        &views,
        &selective,
        parts,
        WriteStage { jobs, resp },
        opts,
        progress,
    )?;

    let partitions::Read {
        stage,
        totals,
        checks,
        times,
    } = read;
    let WriteStage { jobs, mut resp } = stage;
    let mut refused = None;
    for mut job in jobs {
        if let Some(e) = job.refused.take() {
            job.discard();
            refused.get_or_insert(e);
            continue;
        }
        let mut report = match job.finish(&scans, &totals, &checks, resp.as_mut()) {
            Ok(report) => report,
            // One service's failure holds back neither the others' commits nor their reports.
            Err(e) => {
                refused.get_or_insert(e);
                continue;
            }
        };
        let ms = |d: Duration| d.as_millis() as u64;
        report.phases_ms.insert("plan", plan_ms);
        report.phases_ms.insert("read", ms(times.read));
        report.phases_ms.insert("first_read", ms(times.first_read));
        report
            .phases_ms
            .insert("read_and_write", ms(times.read_and_write));
        report.partitions = parts;
        reports.push(report);
    }
    if let Some(resp) = resp {
        crate::online::CommandSink::finish(Box::new(resp))?;
    }
    if opts.commit_when_complete
        && let Some(e) =
            shards::commit_when_complete(repo, store, &scans, end_us, opts, &mut reports, progress)
    {
        refused.get_or_insert(e);
    }
    Ok(Materialized { reports, refused })
}
