//! Scanning one feature view's source: plan (metadata only), then keep the latest row per
//! entity inside the window, in parallel over row groups.
//!
//! Memory is bounded by entities, not rows: each rayon worker keeps one candidate per entity
//! (its best so far), and a candidate holds only the view's needed features, already encoded as
//! MessagePack items. Losing rows are never decoded into values.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Int64Type, Schema, TimeUnit};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::file::statistics::Statistics;
use rayon::prelude::*;

use rustc_hash::FxHashSet;

use super::coerce::{Coercion, coercion, normalize};
use super::files::{Input, source_inputs};
use super::latest::{Collector, LatestRows, Partition, Rank, ShardedBatch};
use super::remote::{ChunkStage, RemoteSource};
use super::values::{Column, write_item};
use crate::base::entity_key::{KeyPart, render_entity};
use crate::base::error::Error;
use crate::base::suggest::did_you_mean;
use crate::base::value::{DType, Scalar};
use crate::repo::{Repo, View};
use crate::vector::msgpack;

/// An inclusive time window in UTC microseconds (SPEC §2: both ends inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    pub start_us: i64,
    pub end_us: i64,
}

/// A file's identity, part of the snapshot id: the same files give the same snapshot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceFile {
    /// Path relative to the repo directory, or the object's URL.
    pub path: String,
    pub size: u64,
    pub modified_ns: i64,
    /// An object's ETag (it identifies the version; local files have none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub rows: u64,
}

/// Everything needed to scan one view, resolved from metadata before any data is read.
pub struct ViewScan {
    pub view: usize,
    pub view_name: String,
    pub window: Window,
    /// Feature indices (into the view) encoded in each candidate, ascending.
    pub needed: Vec<usize>,
    pub files: Vec<SourceFile>,
    pub row_groups_total: usize,
    pub row_groups_skipped: usize,
    /// The paths (or URLs) messages name, per file.
    pub(super) names: Vec<PathBuf>,
    /// The local files read, per file (an object's staged copy).
    pub(super) file_paths: Vec<PathBuf>,
    pub(super) metas: Vec<ArrowReaderMetadata>,
    /// Per file: the columns read.
    masks: Vec<ProjectionMask>,
    /// The store of an object-store source, and the staging of its column chunks.
    pub(super) remote: Option<(Arc<RemoteSource>, Arc<ChunkStage>)>,
    pub(super) tasks: Vec<(usize, usize, u64)>,
    pub(super) key_columns: Vec<(String, DType)>,
    ts_column: String,
    created_column: Option<String>,
    pub(super) feature_columns: Vec<(String, DType)>,
    /// Per needed feature: its default item, or nil.
    default_items: Vec<Vec<u8>>,
    has_default: Vec<bool>,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::in_file(path, e)
}

/// A problem with a view's offline data, found while planning.
#[derive(Debug, Clone)]
pub struct DataProblem {
    pub code: &'static str,
    pub file: PathBuf,
    /// The column involved, when there is one.
    pub column: Option<String>,
    pub message: String,
}

impl DataProblem {
    pub(super) fn new(
        code: &'static str,
        file: &Path,
        column: Option<&str>,
        message: String,
    ) -> Self {
        DataProblem {
            code,
            file: file.to_path_buf(),
            column: column.map(str::to_owned),
            message,
        }
    }
}

impl std::fmt::Display for DataProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

/// The columns a view's scan reads from its source, named as the source names them.
struct ViewColumns<'r> {
    /// The entity's join keys, with their dtypes.
    keys: Vec<(String, DType)>,
    ts: String,
    created: Option<String>,
    /// The needed features, with their dtypes.
    features: Vec<(String, DType)>,
    /// What each feature column is, for messages: `view.feature`.
    feature_names: Vec<String>,
    entity: &'r str,
}

impl<'r> ViewColumns<'r> {
    fn of(repo: &'r Repo, view: &View, needed: &[usize]) -> ViewColumns<'r> {
        let source = &repo.sources[view.source];
        let entity = &repo.entities[view.entity];
        ViewColumns {
            keys: entity
                .join_keys
                .iter()
                .map(|k| (source.column_for(&k.name).to_owned(), k.dtype))
                .collect(),
            ts: source.timestamp_field.clone(),
            created: source.created_timestamp_column.clone(),
            features: needed
                .iter()
                .map(|&i| {
                    let f = &view.features[i];
                    (source.column_for(&f.name).to_owned(), f.dtype)
                })
                .collect(),
            feature_names: needed
                .iter()
                .map(|&i| format!("{}.{}", view.name, view.features[i].name))
                .collect(),
            entity: &entity.name,
        }
    }
}

/// One file of a view's scan, planned from its footer: its identity, the columns to read and
/// the row groups the window keeps (with their first row in the file).
struct PlannedFile {
    file: SourceFile,
    meta: ArrowReaderMetadata,
    mask: ProjectionMask,
    row_groups: Vec<(usize, u64)>,
    row_groups_total: usize,
}

/// Reads `input`'s footer, checks its columns and their types, and prunes its row groups by
/// the window; every problem of the file, not only the first.
fn plan_file(
    repo: &Repo,
    input: &Input,
    columns: &ViewColumns<'_>,
    window: Window,
) -> Result<PlannedFile, Vec<DataProblem>> {
    let path = &input.name;
    if let Some((code, message)) = &input.unreadable {
        return Err(vec![DataProblem::new(code, path, None, message.clone())]);
    }
    let file = File::open(&input.read).map_err(|e| {
        vec![DataProblem::new(
            "unreadable-file",
            path,
            None,
            e.to_string(),
        )]
    })?;
    let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| {
        vec![DataProblem::new(
            "not-parquet",
            path,
            None,
            format!("not a readable Parquet file ({e})"),
        )]
    })?;
    let schema = meta.schema().clone();
    let mut problems = Vec::new();
    let mut check = |name: &str, role: &str, dtype: DType| match schema.field_with_name(name) {
        Err(_) => problems.push(DataProblem::new(
            "missing-column",
            path,
            Some(name),
            format!(
                "column `{name}` ({role}) not found{}; the file has: {}",
                did_you_mean(name, schema.fields().iter().map(|f| f.name().as_str())),
                column_list(&schema)
            ),
        )),
        Ok(f) if coercion(f.data_type(), dtype) == Coercion::Refused => {
            problems.push(DataProblem::new(
                "uncoercible-type",
                path,
                Some(name),
                format!(
                    "column `{name}` ({role}) has type {}, which cannot be coerced to {dtype}",
                    f.data_type()
                ),
            ));
        }
        Ok(_) => {}
    };
    for (name, dtype) in &columns.keys {
        check(
            name,
            &format!("join key of entity `{}`", columns.entity),
            *dtype,
        );
    }
    let ts_dtype = DType::Scalar(Scalar::Timestamp);
    check(&columns.ts, "timestamp_field", ts_dtype);
    if let Some(c) = &columns.created {
        check(c, "created_timestamp_column", ts_dtype);
    }
    for ((name, dtype), what) in columns.features.iter().zip(&columns.feature_names) {
        check(name, &format!("feature `{what}`"), *dtype);
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let ts_unit = match schema.field_with_name(&columns.ts).map(|f| f.data_type()) {
        Ok(DataType::Timestamp(unit, _)) => Some(*unit),
        _ => None,
    };
    let parquet_meta = meta.metadata();
    let ts_leaf = parquet_meta
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().parts() == [columns.ts.as_str()]);
    let mut first_row = 0u64;
    let mut row_groups = Vec::new();
    for (rg_ix, rg) in parquet_meta.row_groups().iter().enumerate() {
        let stats = ts_leaf.and_then(|leaf| rg.column(leaf).statistics());
        if !outside_window(stats, ts_unit, window) {
            row_groups.push((rg_ix, first_row));
        }
        first_row += rg.num_rows() as u64;
    }
    let mut wanted: Vec<&str> = columns.keys.iter().map(|(n, _)| n.as_str()).collect();
    wanted.push(&columns.ts);
    wanted.extend(columns.created.as_deref());
    wanted.extend(columns.features.iter().map(|(n, _)| n.as_str()));
    let roots: Vec<usize> = wanted
        .iter()
        .filter_map(|n| schema.index_of(n).ok())
        .collect();
    let mask = ProjectionMask::roots(parquet_meta.file_metadata().schema_descr(), roots);
    Ok(PlannedFile {
        file: SourceFile {
            path: path
                .strip_prefix(&repo.dir)
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned(),
            size: input.size,
            modified_ns: input.modified_ns,
            etag: input.etag.clone(),
            rows: first_row,
        },
        row_groups_total: parquet_meta.num_row_groups(),
        meta,
        mask,
        row_groups,
    })
}

impl ViewScan {
    /// Lists the files, reads their footers, checks columns and types, prunes row groups.
    /// Fails with every problem found, not only the first.
    pub fn plan(
        repo: &Repo,
        view_ix: usize,
        needed: Vec<usize>,
        window: Window,
    ) -> Result<ViewScan, Error> {
        Self::plan_collect(repo, view_ix, needed, window).map_err(|problems| {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            let first = problems.first();
            Error::Input {
                message: lines.join("\n"),
                file: first.map(|p| p.file.clone()),
                column: first.and_then(|p| p.column.clone()),
            }
        })
    }

    /// Like `plan`, returning the problems themselves (for `validate`). Two steps: the source's
    /// format lists the files to read with their identity (`source_inputs`), then each file is
    /// planned from its footer alone (`plan_file`).
    pub fn plan_collect(
        repo: &Repo,
        view_ix: usize,
        needed: Vec<usize>,
        window: Window,
    ) -> Result<ViewScan, Vec<DataProblem>> {
        let view: &View = &repo.views[view_ix];
        let source = &repo.sources[view.source];
        let inputs = source_inputs(repo, source).map_err(|e| {
            let place = if source.path.contains("://") {
                PathBuf::from(&source.path)
            } else {
                repo.dir.join(&source.path)
            };
            // The message names the place itself when the store's error does.
            let text = e.to_string();
            let prefix = format!("{}: ", place.display());
            let text = text.strip_prefix(&prefix).unwrap_or(&text).to_owned();
            vec![DataProblem::new("missing-data", &place, None, text)]
        })?;
        let columns = ViewColumns::of(repo, view, &needed);

        let mut problems = Vec::new();
        let mut planned = Vec::with_capacity(inputs.files.len());
        for input in &inputs.files {
            match plan_file(repo, input, &columns, window) {
                Ok(file) => planned.push(file),
                Err(found) => problems.extend(found),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }

        let mut files = Vec::with_capacity(planned.len());
        let mut metas = Vec::with_capacity(planned.len());
        let mut masks = Vec::with_capacity(planned.len());
        let mut tasks = Vec::new();
        let (mut row_groups_total, mut row_groups_skipped) = (0, 0);
        for (file_ix, p) in planned.into_iter().enumerate() {
            row_groups_total += p.row_groups_total;
            row_groups_skipped += p.row_groups_total - p.row_groups.len();
            tasks.extend(
                p.row_groups
                    .iter()
                    .map(|&(rg_ix, first_row)| (file_ix, rg_ix, first_row)),
            );
            files.push(p.file);
            metas.push(p.meta);
            masks.push(p.mask);
        }
        let default_items = needed
            .iter()
            .map(|&i| {
                let mut b = Vec::new();
                match &view.features[i].default {
                    Some(v) => msgpack::write_value(&mut b, v),
                    None => msgpack::nil(&mut b),
                }
                b
            })
            .collect();
        let has_default = needed
            .iter()
            .map(|&i| view.features[i].default.is_some())
            .collect();
        // An object's needed column chunks per task, fetched when the scan starts.
        let remote = inputs.remote.map(|source| {
            let chunks = tasks
                .iter()
                .map(|&(file_ix, rg_ix, _)| {
                    let rg = metas[file_ix].metadata().row_group(rg_ix);
                    let mut ranges: Vec<std::ops::Range<u64>> = (0..rg.num_columns())
                        .filter(|&leaf| masks[file_ix].leaf_included(leaf))
                        .map(|leaf| {
                            let (start, len) = rg.column(leaf).byte_range();
                            start..start + len
                        })
                        .collect();
                    ranges.sort_by_key(|r| r.start);
                    (file_ix, ranges)
                })
                .collect();
            (source, Arc::new(ChunkStage::new(chunks)))
        });
        let (names, file_paths) = inputs.files.into_iter().map(|f| (f.name, f.read)).unzip();
        let ViewColumns {
            keys: key_columns,
            ts: ts_column,
            created: created_column,
            features: feature_columns,
            ..
        } = columns;
        Ok(ViewScan {
            view: view_ix,
            view_name: view.name.clone(),
            window,
            needed,
            files,
            row_groups_total,
            row_groups_skipped,
            names,
            file_paths,
            metas,
            masks,
            remote,
            tasks,
            key_columns,
            ts_column,
            created_column,
            feature_columns,
            default_items,
            has_default,
        })
    }

    /// For an object-store source: the bytes fetched so far (footers included), and the bytes
    /// of the needed column chunks in the row groups kept.
    pub fn fetched_bytes(&self) -> Option<(u64, u64)> {
        let (source, stage) = self.remote.as_ref()?;
        Some((source.fetched_bytes(), stage.needed_bytes()))
    }

    pub fn row_groups_to_read(&self) -> usize {
        self.tasks.len()
    }

    /// Rows in the row groups that survived pruning.
    pub fn rows_to_read(&self) -> u64 {
        self.tasks
            .iter()
            .map(|&(f, rg, _)| self.metas[f].metadata().row_group(rg).num_rows() as u64)
            .sum()
    }

    /// The encoded default (or nil) of each needed feature, for entities absent from the view.
    pub fn default_items(&self) -> &[Vec<u8>] {
        &self.default_items
    }

    pub fn has_default(&self, needed_pos: usize) -> bool {
        self.has_default[needed_pos]
    }

    /// Scans every surviving row group in parallel and returns the latest row per entity of
    /// `part`. With `only`, rows of other entities are skipped before any value is read (for
    /// `warm`). `expected` entities (0 if unknown) size the tables up front.
    pub fn run(
        &self,
        part: Partition,
        only: Option<&FxHashSet<Box<str>>>,
        expected: usize,
        on_row_group: &(dyn Fn(u64) + Sync),
    ) -> Result<LatestRows, Error> {
        let rows_read: Vec<AtomicU64> = self.files.iter().map(|_| AtomicU64::new(0)).collect();
        let collector = Collector::new(expected);
        let only = only.map(|keys| Only {
            keys,
            ints: (self.key_columns.len() == 1)
                .then(|| keys.iter().filter_map(|k| k.parse().ok()).collect()),
        });
        let only = only.as_ref();
        let scan_task = |scratch: &mut Scratch, task: usize| {
            let (file_ix, rg_ix, first_row) = self.tasks[task];
            if let Some((source, stage)) = &self.remote {
                stage.wait(source, task)?;
            }
            let n = self.scan_row_group(
                file_ix,
                rg_ix,
                first_row,
                only,
                Pass::Full,
                &collector,
                scratch,
            )?;
            rows_read[file_ix].fetch_add(n, Ordering::Relaxed);
            on_row_group(n);
            Ok::<_, Error>(())
        };
        if let Some((_, stage)) = &self.remote {
            // Row groups are staged in task order, so every worker takes the next one.
            let next = AtomicUsize::new(0);
            let scanned = (0..rayon::current_num_threads())
                .into_par_iter()
                .try_for_each_init(
                    || Scratch::new(part),
                    |scratch, _| loop {
                        // After a failure elsewhere, no worker takes another row group.
                        let task = next.fetch_add(1, Ordering::Relaxed);
                        if task >= self.tasks.len() {
                            return Ok(());
                        }
                        if let Err(e) = scan_task(scratch, task) {
                            next.store(usize::MAX / 2, Ordering::Relaxed);
                            stage.stop();
                            return Err(e);
                        }
                    },
                );
            scanned?;
        } else {
            (0..self.tasks.len())
                .into_par_iter()
                .try_for_each_init(|| Scratch::new(part), scan_task)?;
        }
        let rows_read = rows_read.into_iter().map(AtomicU64::into_inner).collect();
        Ok(collector.freeze(rows_read))
    }

    /// Two passes over the view (row-selective reading): the key, event-time and created-time
    /// columns alone rank every row exactly as the single pass does and pick each entity's
    /// latest; then only those rows are decoded whole (a `RowSelection` per row group), so the
    /// features of the rows that lose are never decoded, converted or encoded. The row counts
    /// are the first pass's. A value that does not fit its dtype is reported only in a row that
    /// is kept. `on_row_group` is called once per row group in each pass. Object-store sources
    /// are read in one pass.
    pub fn run_selective(
        &self,
        part: Partition,
        expected: usize,
        on_row_group: &(dyn Fn(u64) + Sync),
    ) -> Result<LatestRows, Error> {
        if self.remote.is_some() {
            return self.run(part, None, expected, on_row_group);
        }
        let rows_read: Vec<AtomicU64> = self.files.iter().map(|_| AtomicU64::new(0)).collect();
        let ranked = Collector::new(expected);
        (0..self.tasks.len()).into_par_iter().try_for_each_init(
            || Scratch::new(part),
            |scratch, task| {
                let (file_ix, rg_ix, first_row) = self.tasks[task];
                let n = self.scan_row_group(
                    file_ix,
                    rg_ix,
                    first_row,
                    None,
                    Pass::Rank,
                    &ranked,
                    scratch,
                )?;
                rows_read[file_ix].fetch_add(n, Ordering::Relaxed);
                on_row_group(1);
                Ok::<_, Error>(())
            },
        )?;
        let (orders, [null_entity_rows, null_timestamp_rows, rows_in_window]) =
            ranked.into_orders();
        let entities = orders.len();
        // Each winner's row within its row group, per task (tasks of a file ascend by row).
        let mut picked: Vec<Vec<u32>> = vec![Vec::new(); self.tasks.len()];
        let mut by_file: Vec<Vec<(u64, usize)>> = vec![Vec::new(); self.files.len()];
        for (task, &(file_ix, _, first_row)) in self.tasks.iter().enumerate() {
            by_file[file_ix].push((first_row, task));
        }
        for order in orders {
            let (file_ix, row) = ((order >> 40) as usize, order & ((1 << 40) - 1));
            let tasks = &by_file[file_ix];
            let (first_row, task) = tasks[tasks.partition_point(|&(first, _)| first <= row) - 1];
            picked[task].push((row - first_row) as u32);
        }
        let collector = Collector::new(entities);
        picked.par_iter_mut().enumerate().try_for_each_init(
            || Scratch::new(part),
            |scratch, (task, ids)| {
                let (file_ix, rg_ix, first_row) = self.tasks[task];
                if !ids.is_empty() {
                    ids.sort_unstable();
                    self.scan_row_group(
                        file_ix,
                        rg_ix,
                        first_row,
                        None,
                        Pass::Picked(ids),
                        &collector,
                        scratch,
                    )?;
                }
                on_row_group(1);
                Ok::<_, Error>(())
            },
        )?;
        let rows_read = rows_read.into_iter().map(AtomicU64::into_inner).collect();
        let mut latest = collector.freeze(rows_read);
        latest.null_entity_rows = null_entity_rows;
        latest.null_timestamp_rows = null_timestamp_rows;
        latest.rows_in_window = rows_in_window;
        Ok(latest)
    }

    #[allow(clippy::too_many_arguments)]
    fn scan_row_group(
        &self,
        file_ix: usize,
        rg_ix: usize,
        first_row: u64,
        only: Option<&Only<'_>>,
        pass: Pass<'_>,
        collector: &Collector,
        scratch: &mut Scratch,
    ) -> Result<u64, Error> {
        let path = &self.names[file_ix];
        let rg_rows = self.metas[file_ix].metadata().row_group(rg_ix).num_rows() as u64;
        // For a few entities (`warm`), a first pass over the key columns alone picks their rows,
        // and only those rows' features are decoded.
        let picked = match (only, pass) {
            (Some(only), _) => {
                let picked = self.rows_of(file_ix, rg_ix, only)?;
                if picked.is_empty() {
                    return Ok(rg_rows);
                }
                Some(std::borrow::Cow::Owned(picked))
            }
            (None, Pass::Picked(ids)) => Some(std::borrow::Cow::Borrowed(ids)),
            (None, _) => None,
        };
        let file = File::open(&self.file_paths[file_ix]).map_err(|e| io_err(path, e))?;
        let meta = self.metas[file_ix].clone();
        let mask = match pass {
            Pass::Rank => {
                let schema = meta.schema().clone();
                let roots: Vec<usize> = self
                    .key_columns
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .chain([self.ts_column.as_str()])
                    .chain(self.created_column.as_deref())
                    .filter_map(|n| schema.index_of(n).ok())
                    .collect();
                ProjectionMask::roots(meta.metadata().file_metadata().schema_descr(), roots)
            }
            _ => self.masks[file_ix].clone(),
        };
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta)
            .with_projection(mask)
            .with_row_groups(vec![rg_ix])
            .with_batch_size(16 * 1024);
        if let Some(picked) = &picked {
            builder = builder.with_row_selection(selection(picked, rg_rows as usize));
        }
        let reader = builder
            .build()
            .map_err(|e| io_err(path, format!("row group {rg_ix}: {e}")))?;

        let mut done = 0usize;
        for batch in reader {
            let batch = batch.map_err(|e| {
                io_err(
                    path,
                    format!("row group {rg_ix}: corrupt or unreadable data ({e})"),
                )
            })?;
            let n = batch.num_rows();
            let ids = match &picked {
                Some(picked) => RowIds::Picked {
                    first_row,
                    ids: &picked[done..done + n],
                },
                None => RowIds::From(first_row + done as u64),
            };
            let features = !matches!(pass, Pass::Rank);
            self.scan_batch(&batch, file_ix, ids, only, features, collector, scratch)?;
            done += n;
        }
        Ok(rg_rows)
    }

    /// The rows of a row group (ascending, from 0) whose entity is one of `only`, read from the
    /// key columns alone. A key that does not convert picks its row, so that the full pass
    /// reports it where it is.
    fn rows_of(&self, file_ix: usize, rg_ix: usize, only: &Only<'_>) -> Result<Vec<u32>, Error> {
        let path = &self.names[file_ix];
        let file = File::open(&self.file_paths[file_ix]).map_err(|e| io_err(path, e))?;
        let meta = self.metas[file_ix].clone();
        let schema = meta.schema().clone();
        let roots: Vec<usize> = self
            .key_columns
            .iter()
            .filter_map(|(n, _)| schema.index_of(n).ok())
            .collect();
        let mask = ProjectionMask::roots(meta.metadata().file_metadata().schema_descr(), roots);
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta)
            .with_projection(mask)
            .with_row_groups(vec![rg_ix])
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| io_err(path, format!("row group {rg_ix}: {e}")))?;
        let (mut picked, mut base) = (Vec::new(), 0u32);
        let mut key = String::new();
        for batch in reader {
            let batch = batch.map_err(|e| {
                io_err(
                    path,
                    format!("row group {rg_ix}: corrupt or unreadable data ({e})"),
                )
            })?;
            let n = batch.num_rows() as u32;
            let keys: Option<Vec<ArrayRef>> = self
                .key_columns
                .iter()
                .map(|(name, dtype)| {
                    normalize(batch.column_by_name(name).expect("projected"), *dtype).ok()
                })
                .collect();
            let Some(keys) = keys else {
                picked.extend(base..base + n);
                base += n;
                continue;
            };
            let columns: Vec<Column<'_>> = keys.iter().map(Column::new).collect();
            let mut parts = Vec::with_capacity(columns.len());
            for row in 0..batch.num_rows() {
                if !keys.iter().all(|k| k.is_valid(row)) {
                    continue;
                }
                let hit =
                    if let ([Column::Int(ints)], Some(only)) = (columns.as_slice(), &only.ints) {
                        only.contains(&ints.value(row))
                    } else {
                        parts.clear();
                        parts.extend(columns.iter().map(|c| c.key_part(row)));
                        key.clear();
                        render_entity(&parts, &mut key);
                        only.keys.contains(key.as_str())
                    };
                if hit {
                    picked.push(base + row as u32);
                }
            }
            base += n;
        }
        Ok(picked)
    }

    /// One record batch of a row group: its rows in the window with a key (`window_rows`),
    /// their columns normalized (`selected_columns`), then offered to the collector as
    /// candidates (`offer`).
    #[allow(clippy::too_many_arguments)]
    fn scan_batch(
        &self,
        batch: &RecordBatch,
        file_ix: usize,
        ids: RowIds<'_>,
        only: Option<&Only<'_>>,
        with_features: bool,
        collector: &Collector,
        scratch: &mut Scratch,
    ) -> Result<(), Error> {
        let at = BatchAt {
            path: &self.names[file_ix],
            ids,
        };
        let Some(rows) = self.window_rows(batch, at, collector, scratch.part)? else {
            return Ok(());
        };
        let selected = self.selected_columns(batch, rows, at, with_features)?;
        self.offer(&selected, file_ix, at, only, collector, scratch);
        Ok(())
    }

    /// Step 1: the batch's rows in the window with a non-null entity key (past the first
    /// partition, only the partition's own), counted; `None` when there are none.
    fn window_rows(
        &self,
        batch: &RecordBatch,
        at: BatchAt<'_>,
        collector: &Collector,
        part: Partition,
    ) -> Result<Option<WindowRows>, Error> {
        let ts_dtype = DType::Scalar(Scalar::Timestamp);
        let ts = at.normalized(batch, &self.ts_column, ts_dtype, None)?;
        let keys: Vec<ArrayRef> = self
            .key_columns
            .iter()
            .map(|(n, d)| at.normalized(batch, n, *d, None))
            .collect::<Result<_, _>>()?;
        let mut rows: Vec<u32> = Vec::with_capacity(batch.num_rows());
        let (mut null_ts, mut null_key) = (0u64, 0u64);
        {
            let ts = ts.as_primitive::<Int64Type>();
            for row in 0..batch.num_rows() {
                if ts.is_null(row) {
                    null_ts += 1;
                    continue;
                }
                let t = ts.value(row);
                if t < self.window.start_us || t > self.window.end_us {
                    continue;
                }
                if keys.iter().all(|k| k.is_valid(row)) {
                    rows.push(row as u32);
                } else {
                    null_key += 1;
                }
            }
        }
        collector.count(&collector.null_timestamp_rows, null_ts);
        collector.count(&collector.null_entity_rows, null_key);
        collector.count(&collector.rows_in_window, rows.len() as u64);
        // Past the first partition, whose pass checked every value, rows of other partitions are
        // dropped before their values are converted.
        if part.index > 0 {
            let key_parts: Vec<Column<'_>> = keys.iter().map(Column::new).collect();
            if let [Column::Int(ints)] = key_parts.as_slice() {
                rows.retain(|&r| part.holds(&[KeyPart::Int(ints.value(r as usize))]));
            } else {
                let mut parts = Vec::with_capacity(key_parts.len());
                rows.retain(|&r| {
                    parts.clear();
                    parts.extend(key_parts.iter().map(|k| k.key_part(r as usize)));
                    part.holds(&parts)
                });
            }
        }
        Ok((!rows.is_empty()).then_some(WindowRows {
            ts,
            keys,
            rows,
            all: batch.num_rows(),
            part,
        }))
    }

    /// Step 2: the selected rows' columns, normalized (a checked narrowing names the file,
    /// column and row); the batch is copied only when some rows were dropped.
    fn selected_columns(
        &self,
        batch: &RecordBatch,
        w: WindowRows,
        at: BatchAt<'_>,
        with_features: bool,
    ) -> Result<Selected, Error> {
        let ts_dtype = DType::Scalar(Scalar::Timestamp);
        let all = w.rows.len() == w.all;
        let (sel, rows) = if all {
            (batch.clone(), None)
        } else {
            let mut mask = vec![false; batch.num_rows()];
            for &r in &w.rows {
                mask[r as usize] = true;
            }
            let filtered = filter_record_batch(batch, &BooleanArray::from(mask))
                .map_err(|e| io_err(at.path, e))?;
            (filtered, Some(w.rows))
        };
        let sel_rows = rows.as_deref();
        let (ts, keys) = if all {
            (w.ts, w.keys)
        } else {
            let t = at.normalized(&sel, &self.ts_column, ts_dtype, sel_rows)?;
            let k = self
                .key_columns
                .iter()
                .map(|(n, d)| at.normalized(&sel, n, *d, sel_rows))
                .collect::<Result<_, _>>()?;
            (t, k)
        };
        let created = self
            .created_column
            .as_deref()
            .map(|c| at.normalized(&sel, c, ts_dtype, sel_rows))
            .transpose()?;
        // A ranking pass (`Pass::Rank`) reads no feature column: its rows carry no values.
        let features: Vec<ArrayRef> = self
            .feature_columns
            .iter()
            .filter(|_| with_features)
            .map(|(n, d)| at.normalized(&sel, n, *d, sel_rows))
            .collect::<Result<_, _>>()?;
        Ok(Selected {
            len: sel.num_rows(),
            rows,
            ts,
            keys,
            created,
            features,
            part: w.part,
        })
    }

    /// Step 3: renders every key once (a single integer key is kept as the integer), groups
    /// rows by shard, then offers them (one lock per shard); values are encoded only for rows
    /// that beat the entity's current best.
    fn offer(
        &self,
        selected: &Selected,
        file_ix: usize,
        at: BatchAt<'_>,
        only: Option<&Only<'_>>,
        collector: &Collector,
        scratch: &mut Scratch,
    ) {
        let part = selected.part;
        let ts = selected.ts.as_primitive::<Int64Type>();
        let created = selected
            .created
            .as_ref()
            .map(|c| c.as_primitive::<Int64Type>());
        let features: Vec<Column<'_>> = selected.features.iter().map(Column::new).collect();
        let key_parts: Vec<Column<'_>> = selected.keys.iter().map(Column::new).collect();
        let batch = &mut scratch.batch;
        batch.clear();
        let mut parts: Vec<KeyPart<'_>> = Vec::with_capacity(key_parts.len());
        if let [Column::Int(ints)] = key_parts.as_slice() {
            let mut text = itoa::Buffer::new();
            for i in 0..selected.len {
                let v = ints.value(i);
                if part.index == 0 && !part.holds(&[KeyPart::Int(v)]) {
                    batch.end_int(i as u32, v, |_| false);
                    continue;
                }
                batch.end_int(i as u32, v, |v| {
                    only.is_none_or(|only| match &only.ints {
                        Some(ints) => ints.contains(&v),
                        None => only.keys.contains(text.format(v)),
                    })
                });
            }
        } else {
            for i in 0..selected.len {
                parts.clear();
                parts.extend(key_parts.iter().map(|k| k.key_part(i)));
                if part.index == 0 && !part.holds(&parts) {
                    batch.end_key(i as u32, |_| false);
                    continue;
                }
                render_entity(&parts, batch.key_buffer());
                batch.end_key(i as u32, |key| {
                    only.is_none_or(|only| only.keys.contains(key))
                });
            }
        }
        let sel_rows = selected.rows.as_deref();
        let rank = |i: usize| Rank {
            event_us: ts.value(i),
            created_us: created
                .filter(|c| c.is_valid(i))
                .map_or(i64::MIN, |c| c.value(i)),
            order: ((file_ix as u64) << 40) | at.ids.row(sel_rows.map_or(i, |r| r[i] as usize)),
        };
        let encode = |i: usize, nulls: &mut Vec<u16>, items: &mut Vec<u8>| {
            for (pos, col) in features.iter().enumerate() {
                if !write_item(col, i, items) {
                    nulls.push(pos as u16);
                    items.extend_from_slice(&self.default_items[pos]);
                }
            }
        };
        collector.offer(batch, rank, encode, &mut scratch.nulls);
    }
}

/// Where a batch comes from, for its messages: the file and its rows.
#[derive(Clone, Copy)]
struct BatchAt<'a> {
    path: &'a Path,
    ids: RowIds<'a>,
}

impl BatchAt<'_> {
    /// `name` of `b` normalized to `dtype`; a value that does not fit names the file, column
    /// and row (`rows` maps `b`'s rows back to the batch's, when it holds only some of them).
    fn normalized(
        self,
        b: &RecordBatch,
        name: &str,
        dtype: DType,
        rows: Option<&[u32]>,
    ) -> Result<ArrayRef, Error> {
        normalize(b.column_by_name(name).expect("projected column"), dtype).map_err(|m| {
            let row = rows.map_or(m.row, |r| r[m.row] as usize);
            Error::input(format!(
                "{}: column `{name}`, row {}: value {} does not fit {dtype}",
                self.path.display(),
                self.ids.row(row),
                m.value
            ))
        })
    }
}

/// A batch's rows in the window with a key: the normalized time and key columns of the whole
/// batch, and which of its rows are kept.
struct WindowRows {
    ts: ArrayRef,
    keys: Vec<ArrayRef>,
    rows: Vec<u32>,
    /// The batch's row count.
    all: usize,
    part: Partition,
}

/// The kept rows' normalized columns, and (when some rows were dropped) the batch row of each.
struct Selected {
    len: usize,
    rows: Option<Vec<u32>>,
    ts: ArrayRef,
    keys: Vec<ArrayRef>,
    created: Option<ArrayRef>,
    features: Vec<ArrayRef>,
    part: Partition,
}

/// What a row group's read decodes.
#[derive(Clone, Copy)]
enum Pass<'a> {
    /// Every row, every needed column.
    Full,
    /// Every row, the key and time columns only: a ranking pass.
    Rank,
    /// These rows (ascending, within the row group), every needed column.
    Picked(&'a [u32]),
}

/// The entities a `warm` scan is limited to; a single integer key is also kept as an integer.
struct Only<'a> {
    keys: &'a FxHashSet<Box<str>>,
    ints: Option<FxHashSet<i64>>,
}

/// Where a batch's rows sit in their file: from a first row on, or picked rows of a row group.
#[derive(Clone, Copy)]
enum RowIds<'a> {
    From(u64),
    Picked { first_row: u64, ids: &'a [u32] },
}

impl RowIds<'_> {
    /// The file row of the batch's row `row`.
    #[inline]
    fn row(self, row: usize) -> u64 {
        match self {
            RowIds::From(first) => first + row as u64,
            RowIds::Picked { first_row, ids } => first_row + u64::from(ids[row]),
        }
    }
}

/// The selection of ascending row ids among `total` rows: runs of consecutive ids become one
/// range, the rest is skipped.
fn selection(ids: &[u32], total: usize) -> RowSelection {
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
    for &id in ids {
        let id = id as usize;
        match ranges.last_mut() {
            Some(last) if last.end == id => last.end += 1,
            _ => ranges.push(id..id + 1),
        }
    }
    RowSelection::from_consecutive_ranges(ranges.into_iter(), total)
}

/// Per-task buffers, reused across batches.
struct Scratch {
    part: Partition,
    batch: ShardedBatch,
    nulls: Vec<u16>,
}

impl Scratch {
    fn new(part: Partition) -> Scratch {
        Scratch {
            part,
            batch: ShardedBatch::default(),
            nulls: Vec::new(),
        }
    }
}

fn column_list(schema: &Arc<Schema>) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// True when the row group's timestamp statistics prove no row falls inside the window.
fn outside_window(stats: Option<&Statistics>, unit: Option<TimeUnit>, w: Window) -> bool {
    let (Some(Statistics::Int64(s)), Some(unit)) = (stats, unit) else {
        return false;
    };
    let (Some(&min), Some(&max)) = (s.min_opt(), s.max_opt()) else {
        return false;
    };
    let to_us = |v: i64| -> i64 {
        match unit {
            TimeUnit::Second => v.saturating_mul(1_000_000),
            TimeUnit::Millisecond => v.saturating_mul(1_000),
            TimeUnit::Microsecond => v,
            TimeUnit::Nanosecond => v.div_euclid(1_000),
        }
    };
    // Nanosecond max rounds down: round the bound up so a row at the edge is never pruned.
    let max_us = if unit == TimeUnit::Nanosecond {
        to_us(max) + 1
    } else {
        to_us(max)
    };
    max_us < w.start_us || to_us(min) > w.end_us
}
