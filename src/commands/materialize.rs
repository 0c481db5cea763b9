//! `fsctl materialize`: scan each needed view once, then per service assemble vectors, write
//! them under a new snapshot id and commit the snapshot only once every write was acknowledged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use super::Global;
use crate::assemble::{Assembler, ColumnCounts, ViewChecks, ViewInput};
use crate::error::Error;
use crate::offline::{LatestRows, Partition, ViewScan, Window};
use crate::online::{
    self, CommandSink, Flip, KeySpace, Manifest, PackedBatch, RedisTarget, RespFile, RunLock,
};
use crate::progress::Progress;
use crate::repo::{Repo, Service, View, format_duration_ms, parse_duration_ms};
use crate::time::{format_us, now_us, parse_instant_us};

/// Materialize feature services into Redis.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Feature service to materialize (repeatable; default: every service)
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// Window start (RFC 3339 or YYYY-MM-DD, UTC); default: end minus each view's ttl
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Window end and as-of time (default: now). Pass the scheduler's interval end so that a
    /// retried run is an idempotent no-op.
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// Compute and report, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Write the exact Redis command stream as RESP to FILE instead of to Redis
    #[arg(long, value_name = "FILE")]
    pub emit_resp: Option<PathBuf>,
    /// Also write the manifest (JSON) to FILE
    #[arg(long, value_name = "FILE")]
    pub manifest_out: Option<PathBuf>,
    /// Rewrite a snapshot that is already committed, and allow moving `current` back in time
    #[arg(long)]
    pub force: bool,
    /// Wait up to this long for another run's lock (e.g. 30s, 5m) instead of failing at once
    #[arg(long, value_name = "DURATION")]
    pub wait_lock: Option<String>,
    /// Commit even when the result has zero entities
    #[arg(long)]
    pub allow_empty: bool,
    /// Commit even when a data-quality check fails (recorded in the manifest; emergencies only)
    #[arg(long)]
    pub skip_checks: bool,

    /// Scan the views once per share of the entities (by key hash) so that writing one share
    /// overlaps reading the next [default: 4 from a million rows to read when writing to Redis, else 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub partitions: Option<u32>,
}

/// Entities assembled and written per chunk (bounds memory of encoded vectors in flight).
const CHUNK: usize = 16 * 1024;
/// SET commands per pipeline batch.
const BATCH: usize = 1000;

#[derive(Debug, Serialize)]
pub struct ServiceReport {
    pub service: String,
    /// committed | already_committed | dry_run | emitted
    pub status: &'static str,
    pub snapshot: String,
    pub fingerprint: String,
    pub entities: u64,
    pub keys_written: u64,
    pub bytes_written: u64,
    pub null_entity_rows: u64,
    pub imputed: BTreeMap<String, u64>,
    pub retries: u64,
    pub phases_ms: BTreeMap<&'static str, u64>,
    /// Shares of the entities the views were scanned in (`--partitions`).
    pub partitions: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
}

pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let progress = global.progress();
    let started = Instant::now();
    let repo = global.load_repo()?;
    let reports = materialize(&repo, args, progress, global.verbose && !global.quiet)?;
    if let Some(path) = &args.manifest_out {
        let manifests: Vec<&Manifest> =
            reports.iter().filter_map(|r| r.manifest.as_ref()).collect();
        let json = match manifests.as_slice() {
            [one] => serde_json::to_string_pretty(one)?,
            many => serde_json::to_string_pretty(many)?,
        };
        std::fs::write(path, json + "\n")
            .map_err(|e| Error::Input(format!("--manifest-out {}: {e}", path.display())))?;
    }
    if global.json() {
        let doc = serde_json::json!({
            "command": "materialize",
            "services": reports,
            "elapsed_ms": started.elapsed().as_millis() as u64,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if !global.quiet {
        print!("{}", render_text(&reports, started.elapsed()));
    }
    Ok(())
}

fn render_text(reports: &[ServiceReport], took: Duration) -> String {
    let mut out = String::new();
    for r in reports {
        let _ = match r.status {
            "already_committed" => writeln!(
                out,
                "{}: snapshot {} is already committed; nothing to do (use --force to rewrite)",
                r.service, r.snapshot
            ),
            status => {
                let verb = match status {
                    "dry_run" => "dry run, nothing written",
                    "emitted" => "RESP stream written, not committed to Redis",
                    _ => "committed",
                };
                let _ = writeln!(out, "{}: snapshot {} {verb}", r.service, r.snapshot);
                let _ = writeln!(
                    out,
                    "  fingerprint {}  entities {}  keys {}  bytes {}  null-key rows skipped {}  retries {}",
                    r.fingerprint,
                    r.entities,
                    r.keys_written,
                    r.bytes_written,
                    r.null_entity_rows,
                    r.retries
                );
                let imputed: Vec<String> = r
                    .imputed
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(f, n)| format!("{f}={n}"))
                    .collect();
                if !imputed.is_empty() {
                    let _ = writeln!(out, "  imputed {}", imputed.join(" "));
                }
                let phases: Vec<String> = r
                    .phases_ms
                    .iter()
                    .map(|(p, ms)| format!("{p} {:.2}s", *ms as f64 / 1000.0))
                    .collect();
                writeln!(out, "  phases {}", phases.join(", "))
            }
        };
    }
    let _ = writeln!(out, "done in {:.2}s", took.as_secs_f64());
    out
}

/// Per-view window: `[end - ttl, end]` unless `--start` is given (SPEC §2).
fn view_window(repo: &Repo, view: usize, start: Option<i64>, end: i64) -> Window {
    Window {
        start_us: start.unwrap_or(end - repo.views[view].ttl_ms * 1000),
        end_us: end,
    }
}

/// Runs materialize for the selected services; `verbose` adds per-view scan statistics.
pub fn materialize(
    repo: &Repo,
    args: &Args,
    progress: Progress,
    verbose: bool,
) -> Result<Vec<ServiceReport>, Error> {
    let services = select_services(repo, &args.services)?;
    let end_us = crate::time::end_or_now(args.end.as_deref())?;
    let start_us = args
        .start
        .as_deref()
        .map(parse_instant_us)
        .transpose()
        .map_err(Error::Config)?;
    if let Some(s) = start_us
        && s > end_us
    {
        return Err(Error::Config(format!(
            "window start {} is after its end {}",
            format_us(s),
            format_us(end_us)
        )));
    }
    let wait_lock = match &args.wait_lock {
        Some(d) => Duration::from_millis(
            parse_duration_ms(d).map_err(|e| Error::Config(format!("--wait-lock: {e}")))? as u64,
        ),
        None => Duration::ZERO,
    };
    let writes_redis = !args.dry_run && args.emit_resp.is_none();
    let target = RedisTarget::from_store(&repo.online)?;

    // Plan every needed view (metadata only), with the union of features its services need.
    let t_plan = Instant::now();
    let mut needed: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for s in &services {
        for f in &s.features {
            needed.entry(f.view).or_default().insert(f.feature);
        }
    }
    let mut scans: HashMap<usize, ViewScan> = HashMap::new();
    for (&view, features) in &needed {
        let window = view_window(repo, view, start_us, end_us);
        scans.insert(
            view,
            ViewScan::plan(repo, view, features.iter().copied().collect(), window)?,
        );
    }
    let plan_ms = t_plan.elapsed().as_millis() as u64;

    // Refuse before any I/O when every expiry would already be in the past.
    for s in &services {
        let (lowest, _) = online::expiry_bounds(end_us / 1000, s.online_ttl_ms, repo.ttl_jitter);
        if lowest <= now_us() / 1000 {
            return Err(Error::Config(format!(
                "service `{}`: with --end {} and online_ttl {}, keys would expire at {} or earlier, which is \
                 already past; use a later --end or a longer online_ttl",
                s.name,
                format_us(end_us),
                format_duration_ms(s.online_ttl_ms),
                format_us(lowest * 1000)
            )));
        }
    }

    // Which services are already committed (a rerun of the same job is a no-op).
    let mut redis_con = if writes_redis {
        Some(target.connect_explained()?)
    } else {
        None
    };
    let mut jobs = Vec::new();
    let mut reports = Vec::new();
    for s in services {
        let snapshot = snapshot_id(repo, s, &scans, end_us);
        let keys = KeySpace::new(&repo.online.key_prefix, &repo.project, &s.name);
        let mut job = ServiceJob::new(repo, s, snapshot, keys, end_us, args, &target, progress);
        if let Some(con) = redis_con.as_mut()
            && !args.force
            && online::is_committed(con, &job.keys, &job.snapshot)
                .map_err(|e| target.explain(&e, "check snapshot"))?
        {
            reports.push(job.report("already_committed", 0, 0, 0, 0, BTreeMap::new(), None));
            continue;
        }
        // Lock, then learn what is current (the flip must not move it back in time).
        if let Some(report) = job.prepare(redis_con.as_mut(), wait_lock)? {
            reports.push(report);
            continue;
        }
        jobs.push(job);
    }
    if jobs.is_empty() {
        return Ok(reports);
    }

    // Scan each needed view once per partition; write a partition while reading the next.
    let views: BTreeSet<usize> = jobs
        .iter()
        .flat_map(|j| j.service.views.iter().copied())
        .collect();
    let parts = args.partitions.unwrap_or_else(|| {
        let rows: u64 = views.iter().map(|v| scans[v].rows_to_read()).sum();
        if writes_redis && rows >= AUTO_PARTITION_ROWS {
            AUTO_PARTITIONS
        } else {
            1
        }
    });
    let mut totals: HashMap<usize, ViewTotals> = HashMap::new();
    let mut checks: HashMap<usize, ViewChecks> = views
        .iter()
        .map(|&v| (v, ViewChecks::new(&scans[&v])))
        .collect();
    let resp = match &args.emit_resp {
        Some(path) => Some(RespFile::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| Error::Input(format!("--emit-resp {}: {e}", path.display())))?,
        ))),
        None => None,
    };
    let mut stage = Some(WriteStage { jobs, resp });
    let abort = AtomicBool::new(false);
    let encoder = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| "fsctl-encode".into())
        .build()
        .map_err(|e| Error::Input(format!("cannot start the encoding thread: {e}")))?;
    let t_read = Instant::now();
    let mut read_time = Duration::ZERO;
    // The first partition's read: Redis has nothing to do until it ends.
    let mut first_read = Duration::ZERO;
    std::thread::scope(|sc| -> Result<(), Error> {
        let mut writing: Option<std::thread::ScopedJoinHandle<'_, Result<WriteStage<'_>, Error>>> =
            None;
        for index in 0..parts {
            let part = Partition {
                index,
                count: parts,
            };
            let t = Instant::now();
            let latest = read_partition(&scans, &views, part, &totals, progress, verbose);
            read_time += t.elapsed();
            if index == 0 {
                first_read = t.elapsed();
            }
            let latest = match latest {
                Ok(latest) => latest,
                Err(e) => {
                    abort.store(true, Ordering::Relaxed);
                    if let Some(h) = writing.take() {
                        let _ = joined(h);
                    }
                    return Err(e);
                }
            };
            for (&v, rows) in &latest {
                if !args.skip_checks {
                    checks
                        .get_mut(&v)
                        .expect("planned")
                        .add(repo, &scans[&v], rows);
                }
                let t = totals.entry(v).or_default();
                t.entities += rows.len() as u64;
                // Every pass reads every row: the row counts are the same in each.
                t.rows_in_window = rows.rows_in_window;
                t.null_entity_rows = rows.null_entity_rows;
                t.rows_read.clone_from(&rows.rows_read);
            }
            let mut st = match writing.take() {
                Some(h) => joined(h)?,
                None => stage.take().expect("first partition"),
            };
            // The quality gate, on the rows every snapshot would serve: as soon as they are all
            // read, before the last partition is written (with one partition, before any write).
            if index + 1 == parts && !args.skip_checks {
                for job in &mut st.jobs {
                    let failures: Vec<String> = job
                        .service
                        .views
                        .iter()
                        .flat_map(|v| checks[v].failures(repo, &scans[v]))
                        .map(|f| f.to_string())
                        .collect();
                    if !failures.is_empty() {
                        job.refused = Some(Error::Refused(format!(
                            "service `{}`: data-quality checks failed; not committing (the current snapshot keeps \
                             serving; --skip-checks overrides):\n  {}",
                            job.service.name,
                            failures.join("\n  ")
                        )));
                    }
                }
            }
            let (scans, abort, last) = (&scans, &abort, index + 1 == parts);
            let encoder = &encoder;
            writing = Some(sc.spawn(move || {
                if last {
                    st.write(scans, &latest, last, abort)?;
                } else {
                    // Beside the next read, which keeps the shared pool busy: encode on a thread
                    // of its own so that Redis is never starved of commands.
                    encoder.install(|| st.write(scans, &latest, last, abort))?;
                }
                Ok(st)
            }));
        }
        stage = Some(joined(writing.expect("at least one partition"))?);
        Ok(())
    })?;
    let read_ms = read_time.as_millis() as u64;
    let overlapped_ms = t_read.elapsed().as_millis() as u64;

    let WriteStage { jobs, mut resp } = stage.expect("the write stage returned");
    let mut refusal = None;
    for mut job in jobs {
        if let Some(e) = job.refused.take() {
            job.discard(redis_con.as_mut());
            refusal.get_or_insert(e);
            continue;
        }
        let mut report = job.finish(&scans, &totals, redis_con.as_mut(), resp.as_mut())?;
        report.phases_ms.insert("plan", plan_ms);
        report.phases_ms.insert("read", read_ms);
        report
            .phases_ms
            .insert("first_read", first_read.as_millis() as u64);
        report.phases_ms.insert("read_and_write", overlapped_ms);
        report.partitions = parts;
        reports.push(report);
    }
    if let Some(resp) = resp {
        Box::new(resp).finish()?;
    }
    match refusal {
        Some(e) => Err(e),
        None => Ok(reports),
    }
}

/// Can the quality gate refuse a service reading this view?
fn has_checks(view: &View) -> bool {
    view.min_entities.is_some() || view.features.iter().any(|f| !f.checks.is_empty())
}

fn joined<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().expect("the write stage does not panic")
}

/// From this many rows to read, a run writing to Redis scans in `AUTO_PARTITIONS` partitions:
/// reading a partition overlaps writing the previous one, so fsctl's CPU and Redis's work side
/// by side, at the cost of decoding the files once per partition. Redis idles only during the
/// first read, which shrinks with more partitions while the extra decoding grows. Measured at 1M
/// entities on 2 cores (medians of interleaved runs): 1 → 2 → 3 → 4 → 5 partitions took
/// 3.19 → 2.64 → 2.61 → 2.56 → 2.61 s, and peak RSS fell with each.
const AUTO_PARTITION_ROWS: u64 = 1_000_000;
const AUTO_PARTITIONS: u32 = 4;

/// A view's figures for the manifest, added up over the partitions.
#[derive(Debug, Default)]
struct ViewTotals {
    entities: u64,
    rows_in_window: u64,
    null_entity_rows: u64,
    rows_read: Vec<u64>,
}

/// Reads the latest rows of one partition of every view.
fn read_partition(
    scans: &HashMap<usize, ViewScan>,
    views: &BTreeSet<usize>,
    part: Partition,
    totals: &HashMap<usize, ViewTotals>,
    progress: Progress,
    verbose: bool,
) -> Result<HashMap<usize, LatestRows>, Error> {
    let mut latest: HashMap<usize, LatestRows> = HashMap::new();
    for &v in views {
        let scan = &scans[&v];
        // Size the tables like this view's previous partition, else like the largest view so
        // far: views of a service mostly share their entities.
        let expected = match totals.get(&v) {
            Some(t) => (t.entities / u64::from(part.index.max(1))) as usize,
            None => latest.values().map(LatestRows::len).max().unwrap_or(0),
        };
        let name = if part.count > 1 {
            format!(
                "read {} ({}/{})",
                scan.view_name,
                part.index + 1,
                part.count
            )
        } else {
            format!("read {}", scan.view_name)
        };
        let phase = progress.phase(&name, scan.row_groups_to_read() as u64, "row groups");
        let rows = scan.run(part, None, expected, &|_| phase.inc(1))?;
        phase.finish();
        if verbose {
            eprintln!(
                "fsctl: view {}{}: {} file(s), {} of {} row groups read, {} rows in window, {} entities, {} null-key rows",
                scan.view_name,
                if part.count > 1 {
                    format!(" (partition {}/{})", part.index + 1, part.count)
                } else {
                    String::new()
                },
                scan.files.len(),
                scan.row_groups_total - scan.row_groups_skipped,
                scan.row_groups_total,
                rows.rows_in_window,
                rows.len(),
                rows.null_entity_rows
            );
        }
        latest.insert(v, rows);
    }
    Ok(latest)
}

/// What the write stage owns while it runs beside the next partition's read.
struct WriteStage<'a> {
    jobs: Vec<ServiceJob<'a>>,
    resp: Option<RespFile<std::io::BufWriter<std::fs::File>>>,
}

impl WriteStage<'_> {
    fn write(
        &mut self,
        scans: &HashMap<usize, ViewScan>,
        latest: &HashMap<usize, LatestRows>,
        last: bool,
        abort: &AtomicBool,
    ) -> Result<(), Error> {
        for job in &mut self.jobs {
            if job.refused.is_none() {
                job.write_part(scans, latest, last, self.resp.as_mut(), abort)?;
            }
        }
        Ok(())
    }
}

fn select_services<'r>(repo: &'r Repo, names: &[String]) -> Result<Vec<&'r Service>, Error> {
    if names.is_empty() {
        if repo.services.is_empty() {
            return Err(Error::Config(
                "the feature repo defines no feature_services".into(),
            ));
        }
        return Ok(repo.services.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            repo.service(n).ok_or_else(|| {
                let known: Vec<&str> = repo.services.iter().map(|s| s.name.as_str()).collect();
                Error::Config(format!(
                    "unknown feature service `{n}` (known: {})",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

/// The snapshot id (SPEC §3): deterministic from the service layout, the windows, the identity
/// of every input file and every setting that changes the bytes written.
pub fn snapshot_id(
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
            put(&format!(
                "file {} {} {}",
                file.path, file.size, file.modified_ns
            ));
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

/// One service's run: locked before any data is read, written partition by partition, then
/// committed (or refused and its writes discarded).
struct ServiceJob<'a> {
    repo: &'a Repo,
    service: &'a Service,
    snapshot: String,
    keys: KeySpace,
    end_us: i64,
    args: &'a Args,
    target: &'a RedisTarget,
    progress: Progress,
    created_at: String,
    lock: Option<RunLock>,
    expected_current: String,
    /// The snapshot was committed before (rerun with --force): its keys are never discarded.
    was_committed: bool,
    sink: Option<Box<dyn CommandSink + Send>>,
    counts: Vec<ColumnCounts>,
    entities: u64,
    bytes_written: u64,
    /// Entities written to Redis so far, kept while the quality gate may still refuse them:
    /// their keys back to back, and where each ends (a few bytes per entity, not a `String`).
    written: String,
    written_ends: Vec<usize>,
    refused: Option<Error>,
    encode_t: Duration,
    write_t: Duration,
}

impl<'a> ServiceJob<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        repo: &'a Repo,
        service: &'a Service,
        snapshot: String,
        keys: KeySpace,
        end_us: i64,
        args: &'a Args,
        target: &'a RedisTarget,
        progress: Progress,
    ) -> ServiceJob<'a> {
        ServiceJob {
            repo,
            service,
            snapshot,
            keys,
            end_us,
            args,
            target,
            progress,
            created_at: format_us(now_us()),
            lock: None,
            expected_current: String::new(),
            was_committed: false,
            sink: None,
            counts: vec![ColumnCounts::default(); service.features.len()],
            entities: 0,
            bytes_written: 0,
            written: String::new(),
            written_ends: Vec::new(),
            refused: None,
            encode_t: Duration::ZERO,
            write_t: Duration::ZERO,
        }
    }

    /// Takes the run lock and checks what is current; returns a report when there is nothing
    /// to do. Opens the write connections.
    fn prepare(
        &mut self,
        con: Option<&mut redis::Connection>,
        wait_lock: Duration,
    ) -> Result<Option<ServiceReport>, Error> {
        let (repo, s) = (self.repo, self.service);
        let as_of_ms = self.end_us / 1000;
        let Some(con) = con else {
            return Ok(None);
        };
        let lock = RunLock::acquire(
            self.target,
            &self.keys,
            Duration::from_millis(repo.lock_lease_ms as u64),
            wait_lock,
        )?;
        self.was_committed = online::is_committed(con, &self.keys, &self.snapshot)
            .map_err(|e| self.target.explain(&e, "check snapshot"))?;
        if self.was_committed && !self.args.force {
            lock.release();
            return Ok(Some(self.report(
                "already_committed",
                0,
                0,
                0,
                0,
                BTreeMap::new(),
                None,
            )));
        }
        if let Some(cur) = online::read_current(con, &self.keys)
            .map_err(|e| self.target.explain(&e, "read current"))?
        {
            if let Some(m) = &cur.manifest
                && m.as_of_ms > as_of_ms
                && !self.args.force
            {
                return Err(Error::Refused(format!(
                    "service `{}`: the committed snapshot {} is newer (as of {}) than this run (as of {}); \
                     committing would move serving back in time. Use --force to do it anyway",
                    s.name,
                    cur.snapshot,
                    m.as_of,
                    format_us(self.end_us)
                )));
            }
            self.expected_current = cur.snapshot;
        }
        self.lock = Some(lock);
        if !self.args.dry_run && self.args.emit_resp.is_none() {
            self.sink = Some(Box::new(online::PipelinedWriter::start(self.target)?));
        }
        Ok(None)
    }

    /// Assembles, encodes and writes the service's entities found in one partition's rows.
    fn write_part(
        &mut self,
        scans: &HashMap<usize, ViewScan>,
        latest: &HashMap<usize, LatestRows>,
        last: bool,
        mut resp: Option<&mut RespFile<std::io::BufWriter<std::fs::File>>>,
        abort: &AtomicBool,
    ) -> Result<(), Error> {
        let (repo, s) = (self.repo, self.service);
        let inputs: Vec<ViewInput<'_>> = s
            .views
            .iter()
            .map(|v| ViewInput {
                scan: &scans[v],
                rows: &latest[v],
            })
            .collect();
        let assembler = Assembler::new(repo, s, inputs);
        let entities = assembler.entities();
        self.entities += entities.len() as u64;
        // Until the gate has passed, remember what was written, to take it back on refusal.
        if self.sink.is_some()
            && !last
            && !self.args.skip_checks
            && s.views.iter().any(|&v| has_checks(&repo.views[v]))
        {
            for k in entities.keys() {
                self.written.push_str(k);
                self.written_ends.push(self.written.len());
            }
        }
        let as_of_ms = self.end_us / 1000;
        let prefix = self.keys.data_prefix(&self.snapshot);
        let phase = self.progress.phase(
            &format!("write {}", s.name),
            entities.len() as u64,
            "entities",
        );
        for chunk in entities.chunks(CHUNK) {
            if online::INTERRUPTED.load(Ordering::Relaxed) || abort.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            let t = Instant::now();
            let batches = assembler.encode_each(
                chunk,
                BATCH,
                &mut self.counts,
                PackedBatch::default,
                |batch, entity, bytes| {
                    let pxat_ms = online::data_key_expiry_ms(
                        &prefix,
                        entity,
                        as_of_ms,
                        s.online_ttl_ms,
                        repo.ttl_jitter,
                    );
                    batch.push_set(&prefix, entity, bytes, pxat_ms);
                },
            );
            self.encode_t += t.elapsed();
            let t = Instant::now();
            for batch in batches {
                self.bytes_written += batch.value_bytes() as u64;
                if let Some(sink) = self.sink.as_mut() {
                    sink.send(batch)?;
                } else if let Some(resp) = resp.as_deref_mut() {
                    resp.send(batch)?;
                }
            }
            self.write_t += t.elapsed();
            phase.inc(chunk.len() as u64);
        }
        phase.finish();
        Ok(())
    }

    /// After a refusal: waits for the writes in flight, deletes the vectors written for this
    /// snapshot (unless it was committed before) and releases the lock. Best effort: what a
    /// failure leaves behind is invisible to readers and expires with its TTL.
    fn discard(&mut self, con: Option<&mut redis::Connection>) {
        if let Some(sink) = self.sink.take() {
            let _ = sink.finish();
        }
        if let Some(con) = con
            && !self.was_committed
            && !self.written_ends.is_empty()
        {
            let prefix = self.keys.data_prefix(&self.snapshot);
            let mut start = 0;
            for chunk in self.written_ends.chunks(1000) {
                let keys: Vec<String> = chunk
                    .iter()
                    .map(|&end| {
                        let key = format!("{prefix}{}", &self.written[start..end]);
                        start = end;
                        key
                    })
                    .collect();
                if redis::cmd("DEL").arg(&keys).query::<u64>(con).is_err() {
                    break;
                }
            }
        }
        if let Some(lock) = self.lock.take() {
            lock.release();
        }
    }

    /// Waits for every write, then writes the manifest and commits.
    fn finish(
        mut self,
        scans: &HashMap<usize, ViewScan>,
        totals: &HashMap<usize, ViewTotals>,
        con: Option<&mut redis::Connection>,
        resp: Option<&mut RespFile<std::io::BufWriter<std::fs::File>>>,
    ) -> Result<ServiceReport, Error> {
        let (repo, s) = (self.repo, self.service);
        let as_of_ms = self.end_us / 1000;
        let mut phases = BTreeMap::new();
        let t = Instant::now();
        let stats = match self.sink.take() {
            Some(sink) => sink.finish()?,
            None => Default::default(),
        };
        self.write_t += t.elapsed();
        phases.insert("assemble_encode", self.encode_t.as_millis() as u64);
        phases.insert("write", self.write_t.as_millis() as u64);
        if self.entities == 0 && !self.args.allow_empty {
            return Err(Error::Refused(format!(
                "service `{}`: zero entities in the window; refusing to commit an empty snapshot over the \
                 current one (an empty upstream batch must not wipe serving). Use --allow-empty if intended",
                s.name
            )));
        }

        let null_entity_rows: u64 = s.views.iter().map(|v| totals[v].null_entity_rows).sum();
        let mut manifest = self.manifest(scans, totals, null_entity_rows);
        let keys_written = if self.args.dry_run { 0 } else { self.entities };
        manifest.keys_written = keys_written;
        let (_, highest) =
            online::expiry_bounds(as_of_ms, s.online_ttl_ms.max(s.hot_ttl_ms), repo.ttl_jitter);

        let t = Instant::now();
        let status = if let Some(resp) = resp {
            let committed_at_ms = now_us() / 1000;
            manifest.committed_at = format_us(committed_at_ms * 1000);
            let json = serde_json::to_string(&manifest).expect("manifest serializes");
            let flip = Flip {
                snapshot: &self.snapshot,
                manifest_json: &json,
                manifest_pxat_ms: highest,
                committed_at_ms,
                expected_current: "",
            };
            for cmd in online::commit_commands(&self.keys, &flip) {
                let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
                resp.command(&args)
                    .map_err(|e| Error::Input(format!("--emit-resp: {e}")))?;
            }
            "emitted"
        } else if let (Some(con), Some(lock)) = (con, self.lock.take()) {
            if lock.is_lost() {
                return Err(Error::Refused(format!(
                    "service `{}`: the run lock's lease expired during the run; not committing (rerun to complete)",
                    s.name
                )));
            }
            let committed_at_ms = now_us() / 1000;
            manifest.committed_at = format_us(committed_at_ms * 1000);
            let json = serde_json::to_string(&manifest).expect("manifest serializes");
            let flip = Flip {
                snapshot: &self.snapshot,
                manifest_json: &json,
                manifest_pxat_ms: highest,
                committed_at_ms,
                expected_current: &self.expected_current,
            };
            commit_with_retries(self.target, con, &self.keys, &lock, &flip).map_err(|e| {
                Error::Refused(format!(
                    "service `{}`: commit refused: {e}; nothing was committed",
                    s.name
                ))
            })?;
            lock.release();
            "committed"
        } else {
            "dry_run"
        };
        phases.insert("commit", t.elapsed().as_millis() as u64);
        let imputed = manifest.imputed.clone();
        Ok(self
            .report(
                status,
                self.entities,
                keys_written,
                self.bytes_written,
                stats.retries,
                phases,
                Some(manifest),
            )
            .with_imputed(imputed, null_entity_rows))
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        status: &'static str,
        entities: u64,
        keys_written: u64,
        bytes_written: u64,
        retries: u64,
        phases_ms: BTreeMap<&'static str, u64>,
        manifest: Option<Manifest>,
    ) -> ServiceReport {
        ServiceReport {
            service: self.service.name.clone(),
            status,
            snapshot: self.snapshot.clone(),
            fingerprint: self.repo.fingerprint(self.service).to_string(),
            entities,
            keys_written,
            bytes_written,
            null_entity_rows: 0,
            imputed: BTreeMap::new(),
            retries,
            phases_ms,
            partitions: 1,
            manifest,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn manifest(
        &self,
        scans: &HashMap<usize, ViewScan>,
        totals: &HashMap<usize, ViewTotals>,
        null_entity_rows: u64,
    ) -> Manifest {
        let (counts, entities, bytes_written) = (&self.counts, self.entities, self.bytes_written);
        let created_at = self.created_at.clone();
        let (repo, s) = (self.repo, self.service);
        let entity = &repo.entities[s.entity];
        let mut imputed = BTreeMap::new();
        let mut nulls = BTreeMap::new();
        let mut absent = BTreeMap::new();
        for (sf, c) in s.features.iter().zip(counts) {
            let name = format!("{}.{}", repo.views[sf.view].name, repo.feature(*sf).name);
            imputed.insert(name.clone(), c.imputed);
            nulls.insert(name, c.null_kept);
            absent.insert(repo.views[sf.view].name.clone(), c.absent);
        }
        let sources = s
            .views
            .iter()
            .map(|v| {
                let scan = &scans[v];
                let info = online::SourceInfo {
                    source: repo.sources[repo.views[*v].source].name.clone(),
                    window: online::WindowInfo {
                        start: format_us(scan.window.start_us),
                        end: format_us(scan.window.end_us),
                    },
                    files: scan
                        .files
                        .iter()
                        .enumerate()
                        .map(|(i, f)| online::FileInfo {
                            path: f.path.clone(),
                            size: f.size,
                            rows: f.rows,
                            rows_read: totals[v].rows_read.get(i).copied().unwrap_or(0),
                        })
                        .collect(),
                    row_groups: scan.row_groups_total,
                    row_groups_skipped: scan.row_groups_skipped,
                    rows_in_window: totals[v].rows_in_window,
                    entities: totals[v].entities,
                };
                (repo.views[*v].name.clone(), info)
            })
            .collect();
        let start_us = s
            .views
            .iter()
            .map(|v| scans[v].window.start_us)
            .min()
            .unwrap_or(self.end_us);
        Manifest {
            format: 1,
            project: repo.project.clone(),
            service: s.name.clone(),
            snapshot: self.snapshot.clone(),
            fingerprint: repo.fingerprint(s).to_string(),
            schema: s
                .features
                .iter()
                .map(|sf| {
                    let f = repo.feature(*sf);
                    online::SchemaColumn {
                        view: repo.views[sf.view].name.clone(),
                        name: f.name.clone(),
                        dtype: f.dtype.to_string(),
                        default: f
                            .default
                            .as_ref()
                            .map_or(serde_json::Value::Null, |d| d.to_json()),
                    }
                })
                .collect(),
            entity: online::EntityInfo {
                name: entity.name.clone(),
                join_keys: entity
                    .join_keys
                    .iter()
                    .map(|k| online::JoinKeyInfo {
                        name: k.name.clone(),
                        dtype: k.dtype.to_string(),
                    })
                    .collect(),
            },
            window: online::WindowInfo {
                start: format_us(start_us),
                end: format_us(self.end_us),
            },
            as_of: format_us(self.end_us),
            as_of_ms: self.end_us / 1000,
            entities,
            keys_written: entities,
            bytes_written,
            null_entity_rows,
            imputed,
            nulls,
            absent,
            sources,
            ttl: online::TtlInfo {
                online_ms: s.online_ttl_ms,
                hot_ms: s.hot_ttl_ms,
                jitter: repo.ttl_jitter,
            },
            checks_skipped: self.args.skip_checks,
            created_at,
            committed_at: String::new(),
            fsctl_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

impl ServiceReport {
    fn with_imputed(mut self, imputed: BTreeMap<String, u64>, null_entity_rows: u64) -> Self {
        self.imputed = imputed;
        self.null_entity_rows = null_entity_rows;
        self
    }
}

/// Commits, reconnecting on transient faults. A commit whose reply was lost may have landed:
/// when `current` already names this snapshot, the retry is a success, not a conflict.
fn commit_with_retries(
    target: &RedisTarget,
    con: &mut redis::Connection,
    keys: &KeySpace,
    lock: &RunLock,
    flip: &Flip<'_>,
) -> redis::RedisResult<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match online::commit_snapshot(con, keys, lock, flip) {
            Ok(()) => return Ok(()),
            Err(e) if online::is_transient(&e) && attempt < 6 => {
                std::thread::sleep(Duration::from_millis(100 << attempt));
                if let Ok(fresh) = target.connect() {
                    *con = fresh;
                    let landed = online::read_current(con, keys)
                        .ok()
                        .flatten()
                        .is_some_and(|c| c.snapshot == flip.snapshot);
                    if landed {
                        return Ok(());
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}
