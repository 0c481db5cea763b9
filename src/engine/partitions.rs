//! Reading in partitions: each needed view is scanned once per share of the entities (by key
//! hash), and a partition's writes run on their own thread while the next partition is read,
//! so that fsctl's CPU and Redis's ingestion work side by side. The quality gate is evaluated
//! as soon as every partition was read, before the last one is written.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::MaterializeOptions;
use super::job::ServiceJob;
use crate::assemble::ViewChecks;
use crate::base::error::{Error, Result};
use crate::offline::{LatestRows, Partition, Shard, ViewScan};
use crate::online::RespFile;
use crate::progress::Progress;
use crate::repo::Repo;

/// From this many rows to read, a run writing to Redis scans in `AUTO_PARTITIONS` partitions:
/// reading a partition overlaps writing the previous one, so fsctl's CPU and Redis's work side
/// by side, at the cost of decoding the files once per partition. Redis idles only during the
/// first read, which shrinks with more partitions while the extra decoding grows. Measured at 1M
/// entities on 2 cores (medians of interleaved runs): 1 → 2 → 3 → 4 → 5 partitions took
/// 3.19 → 2.64 → 2.61 → 2.56 → 2.61 s, and peak RSS fell with each.
pub(crate) const AUTO_PARTITION_ROWS: u64 = 1_000_000;
pub(crate) const AUTO_PARTITIONS: u32 = 4;

/// A view's figures for the manifest, added up over the partitions.
#[derive(Debug, Default)]
pub(crate) struct ViewTotals {
    pub(crate) entities: u64,
    pub(crate) rows_in_window: u64,
    pub(crate) null_entity_rows: u64,
    pub(crate) rows_read: Vec<u64>,
}

/// What the write stage owns while it runs beside the next partition's read.
pub(crate) struct WriteStage<'a> {
    pub(crate) jobs: Vec<ServiceJob<'a>>,
    pub(crate) resp: Option<RespFile>,
}

impl WriteStage<'_> {
    fn write(
        &mut self,
        scans: &HashMap<usize, ViewScan>,
        latest: &HashMap<usize, LatestRows>,
        abort: &AtomicBool,
    ) -> Result<()> {
        for job in &mut self.jobs {
            if job.refused.is_none() {
                job.write_part(scans, latest, self.resp.as_mut(), abort)?;
            }
        }
        Ok(())
    }
}

/// Time spent reading, for the report.
#[derive(Debug, Default)]
pub(crate) struct ReadTimes {
    /// All partitions' reads.
    pub(crate) read: Duration,
    /// The first partition's read: Redis has nothing to do until it ends.
    pub(crate) first_read: Duration,
    /// Reading and writing, overlapped, from the first read to the last write.
    pub(crate) read_and_write: Duration,
}

/// What `read_and_write` returns once every partition was written.
pub(crate) struct Read<'a> {
    pub(crate) stage: WriteStage<'a>,
    pub(crate) totals: HashMap<usize, ViewTotals>,
    /// The quality checks' statistics per view (empty with `--skip-checks`, unless sharded).
    pub(crate) checks: HashMap<usize, ViewChecks>,
    pub(crate) times: ReadTimes,
}

/// Reads every view in `parts` partitions and writes each through `stage`; returns the stage
/// once every partition was written, and the views' totals.
pub(crate) fn read_and_write<'a>(
    repo: &Repo,
    scans: &HashMap<usize, ViewScan>,
    views: &BTreeSet<usize>,
    parts: u32,
    stage: WriteStage<'a>,
    opts: &MaterializeOptions,
    progress: Progress,
) -> Result<Read<'a>> {
    let verbose = opts.verbose;
    // A shard records its statistics for the commit's gate on the totals (SPEC §3.3).
    let (gate, collect_checks) = match opts.shard {
        Some(_) => (false, true),
        None => (!opts.skip_checks, !opts.skip_checks),
    };
    let mut totals: HashMap<usize, ViewTotals> = HashMap::new();
    let mut checks: HashMap<usize, ViewChecks> = views
        .iter()
        .map(|&v| (v, ViewChecks::new(&scans[&v])))
        .collect();
    let mut stage = Some(stage);
    let abort = AtomicBool::new(false);
    let encoder = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| "fsctl-encode".into())
        .build()
        .expect("a one-thread pool starts");
    let mut times = ReadTimes::default();
    let t_all = Instant::now();
    std::thread::scope(|sc| -> Result<()> {
        let mut writing: Option<std::thread::ScopedJoinHandle<'_, Result<WriteStage<'a>>>> = None;
        for index in 0..parts {
            let part = Partition::of(opts.shard.unwrap_or(Shard::WHOLE), index, parts);
            let t = Instant::now();
            let latest = read_partition(scans, views, part, &totals, progress, verbose);
            times.read += t.elapsed();
            if index == 0 {
                times.first_read = t.elapsed();
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
                if collect_checks {
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
            let last = index + 1 == parts;
            if last && gate {
                for job in &mut st.jobs {
                    let failures: Vec<String> = job
                        .service
                        .views
                        .iter()
                        .flat_map(|v| checks[v].failures(repo, &scans[v]))
                        .map(|f| f.to_string())
                        .collect();
                    if !failures.is_empty() {
                        job.refused = Some(Error::QualityGate {
                            service: job.service.name.clone(),
                            failures,
                        });
                    }
                }
            }
            let (abort, encoder) = (&abort, &encoder);
            writing = Some(sc.spawn(move || {
                if last {
                    st.write(scans, &latest, abort)?;
                } else {
                    // Beside the next read, which keeps the shared pool busy: encode on a thread
                    // of its own so that Redis is never starved of commands.
                    encoder.install(|| st.write(scans, &latest, abort))?;
                }
                Ok(st)
            }));
        }
        stage = Some(joined(writing.expect("at least one partition"))?);
        Ok(())
    })?;
    times.read_and_write = t_all.elapsed();
    Ok(Read {
        stage: stage.expect("the write stage returned"),
        totals,
        checks,
        times,
    })
}

fn joined<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().expect("the write stage does not panic")
}

/// Reads the latest rows of one partition of every view.
fn read_partition(
    scans: &HashMap<usize, ViewScan>,
    views: &BTreeSet<usize>,
    part: Partition,
    totals: &HashMap<usize, ViewTotals>,
    progress: Progress,
    verbose: bool,
) -> Result<HashMap<usize, LatestRows>> {
    let mut latest: HashMap<usize, LatestRows> = HashMap::new();
    for &v in views {
        let scan = &scans[&v];
        // Size the tables like this view's previous partition, else like the largest view so
        // far: views of a service mostly share their entities.
        let expected = match totals.get(&v) {
            Some(t) => (t.entities / u64::from(part.index.max(1))) as usize,
            None => latest.values().map(LatestRows::len).max().unwrap_or(0),
        };
        let of = if part.count > 1 {
            format!(" ({}/{})", part.index + 1, part.count)
        } else {
            String::new()
        };
        let phase = progress.phase(
            &format!("read {}{of}", scan.view_name),
            scan.row_groups_to_read() as u64,
            "row groups",
        );
        let rows = scan.run(part, None, expected, &|_| phase.inc(1))?;
        phase.finish();
        if verbose {
            let of = if part.count > 1 {
                format!(" (partition {}/{})", part.index + 1, part.count)
            } else {
                String::new()
            };
            progress.note(&format!(
                "fsctl: view {}{of}: {} file(s), {} of {} row groups read, {} rows in window, {} entities, {} null-key rows",
                scan.view_name,
                scan.files.len(),
                scan.row_groups_total - scan.row_groups_skipped,
                scan.row_groups_total,
                rows.rows_in_window,
                rows.len(),
                rows.null_entity_rows
            ));
            if let Some((fetched, needed)) = scan.fetched_bytes() {
                let objects: u64 = scan.files.iter().map(|f| f.size).sum();
                progress.note(&format!(
                    "fsctl: view {}: {fetched} bytes fetched from the object store so far, for \
                     {needed} bytes of needed column chunks in {objects} bytes of objects",
                    scan.view_name
                ));
            }
        }
        latest.insert(v, rows);
    }
    Ok(latest)
}
