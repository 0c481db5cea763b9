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
use crate::progress::{Of, Progress};
use crate::repo::Repo;

/// From this many rows to read, a run writing to Redis scans in `AUTO_PARTITIONS` partitions:
/// reading a partition overlaps writing the previous one, so fsctl's CPU and Redis's work side
/// by side, at the cost of decoding the files once per partition. Redis idles only during the
/// first read, which shrinks with more partitions while the extra decoding grows. Measured at 1M
/// entities on 2 cores (medians of interleaved runs): 1 → 2 → 3 → 4 → 5 partitions took
/// 3.19 → 2.64 → 2.61 → 2.56 → 2.61 s, and peak RSS fell with each.
pub(crate) const AUTO_PARTITION_ROWS: u64 = 1_000_000;
pub(crate) const AUTO_PARTITIONS: u32 = 4;

/// The most partitions a run is split into.
pub(crate) const MAX_PARTITIONS: u32 = 64;

/// Peak memory of a run besides its largest partition's latest rows: the binary, Parquet
/// decoding buffers, the write pipeline (~80 MB measured on the banking job).
const BASE_BYTES: u64 = 96 << 20;

/// Memory one entity takes while its partition is held, from the size of its vector: the latest
/// row of each view, packed, its index entries, and the tables' growth room (a table that just
/// doubled is half empty, and while it doubles both copies are alive). Measured on the banking
/// job (126-byte vectors, 3 views): ~330 bytes per entity of the largest partition at 1M
/// entities (1 → 2 → 4 → 8 partitions peaked at 414 → 352 → 227 → 124 MB), but ~620 at 10M
/// (1,831 MB in 4 partitions, 1,497 MB in 5); this model gives 760.
pub(crate) fn entity_bytes(vector_bytes: u64, views: usize) -> u64 {
    4 * vector_bytes + 64 * views as u64 + 64
}

/// `entity_bytes` per row to read, before any snapshot of the service was committed to size
/// it from: every row counts as an entity, so this is lower than `entity_bytes` (rows usually
/// outnumber entities several times) and still overestimates.
pub(crate) const UNSIZED_ENTITY_BYTES: u64 = 400;

/// The fewest partitions that keep a run of `entities` entities of `entity_bytes` each within
/// `budget` bytes of memory. The first partitions hold 2/(2P-1) of the entities each (the last
/// half a share), so P is the least with `2·need/(2P-1) <= budget - BASE_BYTES`.
pub(crate) fn partitions_within(budget: u64, entities: u64, entity_bytes: u64) -> u32 {
    let room = budget.saturating_sub(BASE_BYTES).max(budget / 4).max(1);
    let need = entities.saturating_mul(entity_bytes);
    let p = need
        .saturating_mul(2)
        .div_ceil(room)
        .saturating_add(1)
        .div_ceil(2);
    p.clamp(1, u64::from(MAX_PARTITIONS)) as u32
}

/// The default memory budget: half of what the machine has available, or of the memory limit
/// of this process's cgroup (v2, the smallest limit from its own cgroup up; or v1) when lower.
pub(crate) fn machine_budget() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let available_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let limit = cgroup_limit().unwrap_or(u64::MAX);
    Some((available_kb * 1024).min(limit) / 2)
}

/// The memory limit of this process's cgroup, if one is set.
fn cgroup_limit() -> Option<u64> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
    };
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    // cgroup v2: "0::/path"; every level up to the root may set memory.max ("max": none).
    if let Some(path) = cgroups.lines().find_map(|l| l.strip_prefix("0::")) {
        let mut dir = std::path::PathBuf::from("/sys/fs/cgroup").join(path.trim_start_matches('/'));
        let mut lowest: Option<u64> = None;
        loop {
            if let Some(max) = read(&dir.join("memory.max").to_string_lossy()) {
                lowest = Some(lowest.map_or(max, |l| l.min(max)));
            }
            if dir == std::path::Path::new("/sys/fs/cgroup") || !dir.pop() {
                break;
            }
        }
        return lowest;
    }
    // cgroup v1: an unset limit reads as a huge number.
    read("/sys/fs/cgroup/memory/memory.limit_in_bytes").filter(|&l| l < 1 << 60)
}

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
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_and_write<'a>(
    repo: &Repo,
    scans: &HashMap<usize, ViewScan>,
    views: &BTreeSet<usize>,
    selective: &BTreeSet<usize>,
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
            let latest = read_partition(scans, views, selective, part, &totals, progress, verbose);
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
                    let failed: Vec<_> = job
                        .service
                        .views
                        .iter()
                        .flat_map(|v| checks[v].failures(repo, &scans[v]))
                        .collect();
                    if !failed.is_empty() {
                        job.refused = Some(Error::quality_gate(&job.service.name, &failed));
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
    selective: &BTreeSet<usize>,
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
        // Two passes tick once per row group each.
        let passes = if selective.contains(&v) { 2 } else { 1 };
        let phase = progress.phase(
            "read",
            &format!("read {}{of}", scan.view_name),
            Of::View(
                &scan.view_name,
                (part.count > 1).then_some((part.index, part.count)),
            ),
            passes * scan.row_groups_to_read() as u64,
            "row groups",
        );
        let rows = if selective.contains(&v) {
            scan.run_selective(part, expected, &|_| phase.inc(1))?
        } else {
            scan.run(part, None, expected, &|_| phase.inc(1))?
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_keep_the_largest_within_the_budget() {
        const MB: u64 = 1 << 20;
        // Fits in one.
        assert_eq!(partitions_within(4096 * MB, 1_000_000, 400), 1);
        // 10M entities of 330 bytes under 1 GB: the largest of P partitions, 2/(2P-1) of them,
        // must fit in the ~928 MB left beside the base.
        let p = partitions_within(1024 * MB, 10_000_000, 330);
        let largest = |p: u32| 10_000_000 * 330 * 2 / (2 * u64::from(p) - 1);
        assert!(largest(p) <= 1024 * MB - BASE_BYTES, "{p}");
        assert!(
            largest(p - 1) > 1024 * MB - BASE_BYTES,
            "{p} is not the least"
        );
        // A budget below the base still splits, and the count is capped.
        assert!(partitions_within(64 * MB, 1_000_000, 400) > 4);
        assert_eq!(partitions_within(1, u64::MAX, u64::MAX), MAX_PARTITIONS);
    }
}
