//! `fsctl init --from-parquet`: a draft repo from the Arrow schemas of Parquet files. Only the
//! footers are read. Each file becomes a source and a view; its join key, event time, created
//! time and dtypes are guessed from column names and types, and every guess is written with a
//! `# REVIEW:` comment saying what was chosen and why. What cannot be guessed becomes a TODO_
//! placeholder, so the draft is still written and the reader sees what is missing.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::datatypes::{DataType, Schema};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::basic::{LogicalType, TimeUnit};
use parquet::file::statistics::Statistics;

use fsctl::Error;
use fsctl::base::time::{format_us, now_us};
use fsctl::base::value::{DType, Scalar};
use fsctl::repo::{REPO_FILE, is_identifier};

use super::{Created, DAY_US, ServiceSummary, write_file};

/// The ttl a draft gives each view: a default to review, not something the schema tells.
const DRAFT_TTL: &str = "30d";
const DRAFT_TTL_US: i64 = 30 * DAY_US;

/// The draft's sections open with what they are for, as the example's do.
const HEADER: &str = "\
# Each guess is marked `# REVIEW:`: check it, correct what is wrong, delete the marker.
# Every key is described in docs/configuration.md.

# Names the repo in Redis: every key starts with `{key_prefix}:{project}:`.
project: @PROJECT@

# Where vectors are served from; FSCTL_REDIS_URL, when set, replaces `url`.
online_store:
  type: redis                          # or redis_cluster, with one or more seed URLs
  url: redis://127.0.0.1:6379/0
  key_prefix: fs
";

const ENTITIES: &str = "
# What features describe, and the join keys that identify it (int32, int64 or string).
entities:
";

const SOURCES: &str = "
# Where rows come from (local paths are relative to this directory). timestamp_field is each row's
# event time; of two rows with the same event time, the one with the later
# created_timestamp_column wins.
sources:
";

const VIEWS: &str = "
# Features of one entity from one source. Per entity, a view serves its latest row at most `ttl`
# old at the window end (default: now). A null becomes the feature's `default` (`default: null`:
# it stays null). dtypes: int32 int64 float32 float64 bool string bytes timestamp list<T>.
feature_views:
";

const SERVICES: &str = "
# What a model reads: one vector per entity over the listed views (a whole view, or
# {view: v, features: [a, b]}).
feature_services:
";

/// One `--from-parquet` file, read (footer only) before anything is written.
pub(super) struct Input {
    /// As given on the command line.
    given: PathBuf,
    /// The source's `path:`: relative to the repo directory when the file lies inside it.
    path: String,
    /// The file name without its extension, as an identifier.
    stem: String,
    meta: ArrowReaderMetadata,
}

pub(super) fn read_input(file: &Path, dir: &Path) -> Result<Input, Error> {
    let fail = |why: String| Error::usage(format!("--from-parquet {}: {why}", file.display()));
    if file.is_dir() {
        return Err(fail(
            "is a directory; pass one of its Parquet files (the drafted source can then be \
             pointed at the directory)"
                .into(),
        ));
    }
    let f = File::open(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => fail("no such file".into()),
        _ => fail(format!("cannot open it ({e})")),
    })?;
    let meta = ArrowReaderMetadata::load(&f, ArrowReaderOptions::new())
        .map_err(|e| fail(format!("not a readable Parquet file ({e})")))?;
    let absolute = file
        .canonicalize()
        .map_err(|e| fail(format!("cannot resolve its path ({e})")))?;
    let path = dir
        .canonicalize()
        .ok()
        .and_then(|d| absolute.strip_prefix(d).ok().map(Path::to_owned))
        .unwrap_or(absolute);
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Input {
        given: file.to_owned(),
        path: path.to_string_lossy().into_owned(),
        stem: identifier(&stem),
        meta,
    })
}

/// A column kept as a feature (or join key): its feature name, the source column, the dtype,
/// and what a reviewer should know about the choice of dtype.
#[derive(Debug, Clone, PartialEq)]
struct DraftColumn {
    name: String,
    column: String,
    dtype: DType,
    note: Option<String>,
}

/// What one file's schema suggests.
#[derive(Debug, Default)]
struct SchemaGuess {
    join_key: Option<DraftColumn>,
    /// The other columns that looked like join keys (kept as features).
    other_keys: Vec<String>,
    event_time: Option<String>,
    event_time_why: String,
    created: Option<String>,
    /// Columns named like an event time whose type is not a timestamp.
    time_like: Vec<String>,
    features: Vec<DraftColumn>,
    /// Columns left out: name and why.
    left_out: Vec<(String, String)>,
}

/// Event-time column names, most telling first.
const EVENT_TIME_NAMES: [&str; 8] = [
    "event_timestamp",
    "event_time",
    "event_ts",
    "ts",
    "timestamp",
    "event_date",
    "time",
    "datetime",
];

fn is_key_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "id" || n.ends_with("_id") || n.ends_with("_key")
}

fn is_time_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
    )
}

/// The join-key dtype of an integer or string column.
fn key_dtype(t: &DataType) -> Option<Scalar> {
    use DataType as A;
    match t {
        A::Int8 | A::Int16 | A::Int32 | A::Int64 | A::UInt8 | A::UInt16 | A::UInt32 | A::UInt64 => {
            Some(Scalar::Int64)
        }
        A::Utf8 | A::LargeUtf8 | A::Utf8View => Some(Scalar::String),
        A::Dictionary(_, v) => key_dtype(v).filter(|s| *s == Scalar::String),
        _ => None,
    }
}

/// The fsctl dtype of an Arrow type, with a note when the mapping is not the obvious one; the
/// reason when fsctl has none. Integers are declared int64 (every narrower one widens to it
/// losslessly, SPEC §2.6).
fn scalar_dtype(t: &DataType) -> Result<(Scalar, Option<String>), String> {
    use DataType as A;
    Ok(match t {
        A::Int64 => (Scalar::Int64, None),
        A::Int8 | A::Int16 | A::Int32 | A::UInt8 | A::UInt16 | A::UInt32 => (
            Scalar::Int64,
            Some(format!("{t} column, declared int64 (lossless)")),
        ),
        A::UInt64 => (
            Scalar::Int64,
            Some("UInt64 column: a value above 2^63-1 fails the run".into()),
        ),
        A::Float16 => (
            Scalar::Float32,
            Some("Float16 column, read as float32".into()),
        ),
        A::Float32 => (Scalar::Float32, None),
        A::Float64 => (Scalar::Float64, None),
        A::Boolean => (Scalar::Bool, None),
        A::Utf8 | A::LargeUtf8 | A::Utf8View => (Scalar::String, None),
        A::Binary | A::LargeBinary | A::BinaryView | A::FixedSizeBinary(_) => (Scalar::Bytes, None),
        A::Timestamp(_, _) => (Scalar::Timestamp, None),
        A::Date32 | A::Date64 => (
            Scalar::Timestamp,
            Some(format!("{t} column, read as midnight UTC")),
        ),
        A::Dictionary(_, values) => {
            let (s, _) = scalar_dtype(values)?;
            (s, Some(format!("dictionary-encoded, read as {}", s.name())))
        }
        A::Null => return Err("every value is null, so its type is unknown".into()),
        other => return Err(format!("{other} has no fsctl dtype")),
    })
}

fn dtype(t: &DataType) -> Result<(DType, Option<String>), String> {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            let (s, note) = scalar_dtype(f.data_type())
                .map_err(|why| format!("a list whose element type {why}"))?;
            Ok((DType::List(s), note.map(|n| format!("elements: {n}"))))
        }
        other => scalar_dtype(other).map(|(s, note)| (DType::Scalar(s), note)),
    }
}

/// `s` as a name fsctl accepts (`[A-Za-z_][A-Za-z0-9_]*`): other characters become `_`.
fn identifier(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

/// `base`, or `base_2`, `base_3`... whichever is not taken yet; it is taken from then on.
fn unique(base: String, taken: &mut HashSet<String>) -> String {
    let mut name = base.clone();
    let mut n = 1;
    while !taken.insert(name.clone()) {
        n += 1;
        name = format!("{base}_{n}");
    }
    name
}

fn guess(schema: &Schema) -> SchemaGuess {
    let mut g = SchemaGuess::default();
    let fields = schema.fields();
    // Join key: the first integer or string column named like one.
    let keys: Vec<&str> = fields
        .iter()
        .filter(|f| is_key_name(f.name()) && key_dtype(f.data_type()).is_some())
        .map(|f| f.name().as_str())
        .collect();
    if let Some(&first) = keys.first() {
        let f = schema.field_with_name(first).expect("a listed field");
        let dtype = key_dtype(f.data_type()).expect("a key type");
        let note = match (f.data_type(), dtype) {
            (DataType::Int64, _) | (DataType::Utf8, _) => None,
            (t, s) => Some(format!("{t} column, declared {}", s.name())),
        };
        g.join_key = Some(DraftColumn {
            name: identifier(first),
            column: first.to_owned(),
            dtype: DType::Scalar(dtype),
            note,
        });
        g.other_keys = keys[1..].iter().map(|k| k.to_string()).collect();
    }
    // Event time: a timestamp column with an event-time name, else the first that is not named
    // like a created time, else the first.
    let times: Vec<&str> = fields
        .iter()
        .filter(|f| is_time_type(f.data_type()))
        .map(|f| f.name().as_str())
        .collect();
    let created_like = |n: &str| n.to_ascii_lowercase().starts_with("created");
    let by_name = EVENT_TIME_NAMES
        .iter()
        .find_map(|want| times.iter().find(|t| t.eq_ignore_ascii_case(want)).copied());
    let (event, why) = if let Some(t) = by_name {
        (Some(t), "a timestamp column named like an event time")
    } else if let Some(&t) = times.iter().find(|t| !created_like(t)) {
        (Some(t), "the first timestamp or date column")
    } else {
        (
            times.first().copied(),
            "the only timestamp column, although named like a created time",
        )
    };
    g.event_time = event.map(str::to_owned);
    g.event_time_why = why.to_owned();
    g.created = times
        .iter()
        .find(|&&t| Some(t) != event && created_like(t))
        .map(|t| t.to_string());
    if event.is_none() {
        g.time_like = fields
            .iter()
            .filter(|f| {
                let n = f.name().to_ascii_lowercase();
                EVENT_TIME_NAMES.contains(&n.as_str()) || n.ends_with("_at") || n.ends_with("_ts")
            })
            .map(|f| format!("`{}` is {}", f.name(), f.data_type()))
            .collect();
    }
    // Features: every other column that has a dtype.
    let used: Vec<&str> = [
        g.join_key.as_ref().map(|k| k.column.as_str()),
        event,
        g.created.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut taken: HashSet<String> = g.join_key.iter().map(|k| k.name.clone()).collect();
    for f in fields.iter().filter(|f| !used.contains(&f.name().as_str())) {
        match dtype(f.data_type()) {
            Ok((dtype, note)) => g.features.push(DraftColumn {
                name: unique(identifier(f.name()), &mut taken),
                column: f.name().clone(),
                dtype,
                note,
            }),
            Err(why) => g.left_out.push((f.name().clone(), why)),
        }
    }
    g
}

/// The newest value of `column` according to the file's row-group statistics, in UTC
/// microseconds; `None` when the statistics do not say.
fn newest_us(meta: &ArrowReaderMetadata, column: &str) -> Option<i64> {
    let parquet = meta.metadata();
    let leaf = parquet
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().parts() == [column])?;
    let descr = parquet.file_metadata().schema_descr().column(leaf);
    let to_us: fn(i64) -> i64 = match descr.logical_type_ref()? {
        LogicalType::Timestamp(t) => match t.unit {
            TimeUnit::MILLIS => |v| v.saturating_mul(1_000),
            TimeUnit::MICROS => |v| v,
            TimeUnit::NANOS => |v| v.div_euclid(1_000),
        },
        LogicalType::Date => |days| days.saturating_mul(DAY_US),
        _ => return None,
    };
    parquet
        .row_groups()
        .iter()
        .map(|rg| match rg.column(leaf).statistics()? {
            Statistics::Int64(s) => s.max_opt().copied(),
            Statistics::Int32(s) => s.max_opt().map(|&v| i64::from(v)),
            _ => None,
        })
        .collect::<Option<Vec<i64>>>()?
        .into_iter()
        .max()
        .map(to_us)
}

/// A draft planned from the inputs' schemas: entities, views (one per file, with its source)
/// and services, in file order, before any YAML is written.
struct Draft<'a> {
    inputs: &'a [Input],
    entities: Vec<DraftEntity>,
    views: Vec<DraftView>,
    /// Per service: its entity and its views. One service per entity, since the views of a
    /// service must share their entity.
    services: Vec<(usize, Vec<usize>)>,
}

/// A drafted entity: its join key, or `None` for the placeholder of a file without one.
struct DraftEntity {
    name: String,
    key: Option<DraftColumn>,
    /// The file whose schema it was guessed from.
    from: String,
}

/// One drafted view and its source.
struct DraftView {
    input: usize,
    /// The file as given, for messages.
    file: String,
    name: String,
    entity: usize,
    guess: SchemaGuess,
    /// The newest event time of the file, when it is older than the drafted ttl allows.
    stale_since: Option<i64>,
}

impl<'a> Draft<'a> {
    fn plan(inputs: &'a [Input]) -> Draft<'a> {
        let mut view_names = HashSet::new();
        let mut entity_names = HashSet::new();
        let mut entities: Vec<DraftEntity> = Vec::new();
        let mut views = Vec::new();
        let cutoff = now_us() - DRAFT_TTL_US;
        for (ix, input) in inputs.iter().enumerate() {
            let guess = guess(input.meta.schema());
            let name = unique(input.stem.clone(), &mut view_names);
            let file = input.given.display().to_string();
            // One entity per join key name and dtype.
            let same_key = |e: &DraftEntity| {
                matches!((&e.key, &guess.join_key),
                    (Some(a), Some(b)) if a.name == b.name && a.dtype == b.dtype)
            };
            let entity = match entities.iter().position(same_key) {
                Some(e) => e,
                None => {
                    let base = match &guess.join_key {
                        Some(key) => entity_name(&key.name).unwrap_or_else(|| name.clone()),
                        None => format!("{name}_entity"),
                    };
                    entities.push(DraftEntity {
                        name: unique(base, &mut entity_names),
                        key: guess.join_key.clone(),
                        from: file.clone(),
                    });
                    entities.len() - 1
                }
            };
            let stale_since = guess
                .event_time
                .as_deref()
                .and_then(|t| newest_us(&input.meta, t))
                .filter(|&newest| newest < cutoff);
            views.push(DraftView {
                input: ix,
                file,
                name,
                entity,
                guess,
                stale_since,
            });
        }
        let mut services: Vec<(usize, Vec<usize>)> = Vec::new();
        for (vi, v) in views.iter().enumerate() {
            match services.iter_mut().find(|(e, _)| *e == v.entity) {
                Some((_, vs)) => vs.push(vi),
                None => services.push((v.entity, vec![vi])),
            }
        }
        Draft {
            inputs,
            entities,
            views,
            services,
        }
    }

    fn service_name(&self, entity: usize) -> String {
        format!("{}_features", self.entities[entity].name)
    }

    fn render(&self, project: &str) -> Yaml {
        let mut y = Yaml::default();
        let n = self.inputs.len();
        y.line(format!(
            "# A draft feature repo, written by `fsctl init --from-parquet` from the Arrow schemas \
             of {n} Parquet file{}.",
            if n == 1 { "" } else { "s" }
        ));
        y.text.push_str(&HEADER.replace("@PROJECT@", project));
        self.render_entities(&mut y);
        self.render_sources(&mut y);
        self.render_views(&mut y);
        self.render_services(&mut y);
        if !y.todo.is_empty() {
            let n = y.todo.len();
            y.text.insert_str(
                0,
                &format!(
                    "# INCOMPLETE: {n} placeholder{} (TODO_...) to replace; `fsctl validate` \
                     fails until then.\n",
                    if n == 1 { "" } else { "s" }
                ),
            );
        }
        y
    }

    fn render_entities(&self, y: &mut Yaml) {
        y.text.push_str(ENTITIES);
        for (ei, e) in self.entities.iter().enumerate() {
            y.line(format!("  - name: {}", e.name));
            let Some(k) = &e.key else {
                y.todo(
                    "    ",
                    format!(
                        "{}: no integer or string column named *_id, id or *_key; replace \
                         TODO_join_key by the column that identifies the entity, and its dtype \
                         (int32, int64 or string)",
                        e.from
                    ),
                );
                y.line("    join_keys: [{name: TODO_join_key, dtype: int64}]");
                continue;
            };
            let mut why = format!(
                "join key `{}` of {}: the first integer or string column named *_id, id or *_key",
                k.column, e.from
            );
            if let Some(note) = &k.note {
                let _ = write!(why, " ({note})");
            }
            let mut others: Vec<String> = self
                .views
                .iter()
                .filter(|v| v.entity == ei)
                .flat_map(|v| v.guess.other_keys.iter().map(|o| format!("`{o}`")))
                .collect();
            others.sort();
            others.dedup();
            if !others.is_empty() {
                let _ = write!(why, "; also named like keys: {}", others.join(", "));
            }
            y.review("    ", why);
            y.line(format!(
                "    join_keys: [{{name: {}, dtype: {}}}]",
                k.name, k.dtype
            ));
        }
    }

    fn render_sources(&self, y: &mut Yaml) {
        y.text.push_str(SOURCES);
        for v in &self.views {
            let (input, file, g) = (&self.inputs[v.input], &v.file, &v.guess);
            y.line(format!("  - name: {}_src", v.name));
            y.line(format!(
                "    path: {}",
                serde_json::Value::from(input.path.as_str())
            ));
            if input.path.contains(['*', '?', '[']) {
                y.review(
                    "    ",
                    format!("{file}: the path holds glob characters; fsctl reads it as a pattern"),
                );
            }
            match &g.event_time {
                Some(t) => {
                    y.review(
                        "    ",
                        format!("event time `{t}` of {file}: {}", g.event_time_why),
                    );
                    y.line(format!("    timestamp_field: {}", scalar(t)));
                }
                None => {
                    let mut why = format!(
                        "{file}: no timestamp or date column; replace TODO_timestamp_column by \
                         the column holding each row's event time"
                    );
                    if !g.time_like.is_empty() {
                        let _ = write!(
                            why,
                            " ({}: convert it to a Parquet timestamp)",
                            g.time_like.join(", ")
                        );
                    }
                    y.todo("    ", why);
                    y.line("    timestamp_field: TODO_timestamp_column");
                }
            }
            if let Some(c) = &g.created {
                y.review(
                    "    ",
                    format!(
                        "created time `{c}` of {file}: a second timestamp column, named like a \
                         created time"
                    ),
                );
                y.line(format!("    created_timestamp_column: {}", scalar(c)));
            }
            let renamed: Vec<&DraftColumn> = g
                .join_key
                .iter()
                .chain(&g.features)
                .filter(|c| c.name != c.column)
                .collect();
            if !renamed.is_empty() {
                let renames: Vec<String> = renamed
                    .iter()
                    .map(|c| format!("`{}` to `{}`", c.column, c.name))
                    .collect();
                y.review(
                    "    ",
                    format!(
                        "{file}: renamed {}, as names must match [A-Za-z_][A-Za-z0-9_]*",
                        renames.join(", ")
                    ),
                );
                let pairs: Vec<String> = renamed
                    .iter()
                    .map(|c| format!("{}: {}", serde_json::Value::from(c.column.as_str()), c.name))
                    .collect();
                y.line(format!("    field_mapping: {{{}}}", pairs.join(", ")));
            }
        }
    }

    fn render_views(&self, y: &mut Yaml) {
        y.text.push_str(VIEWS);
        for v in &self.views {
            let (file, g) = (&v.file, &v.guess);
            y.line(format!("  - name: {}", v.name));
            y.line(format!("    entities: [{}]", self.entities[v.entity].name));
            y.line(format!("    source: {}_src", v.name));
            let mut why = format!(
                "ttl {DRAFT_TTL} is a default, not read from {file}: per entity, the latest row \
                 at most this old at the window end is served"
            );
            if let Some(newest) = v.stale_since {
                let _ = write!(
                    why,
                    "; the newest row of {file} is from {at}, more than {DRAFT_TTL} ago: a run \
                     with the default window end (now) finds none of its rows; pass --end {at} or \
                     lengthen ttl",
                    at = format_us(newest)
                );
            }
            y.review("    ", why);
            y.line(format!("    ttl: {DRAFT_TTL}"));
            if g.features.is_empty() {
                y.todo(
                    "    ",
                    format!("{file}: no column besides the join key and the timestamps to serve"),
                );
                y.line("    features: []");
            } else {
                y.review(
                    "    ",
                    format!(
                        "features of {file}: every other column, dtypes from their Arrow types; \
                         no defaults are drafted, so a null stays null (add `default:` where a \
                         model needs a value)"
                    ),
                );
                y.line("    features:");
                for f in &g.features {
                    let dtype = match f.dtype {
                        DType::List(_) => format!("\"{}\"", f.dtype),
                        DType::Scalar(_) => f.dtype.to_string(),
                    };
                    let entry = format!("      - {{name: {}, dtype: {dtype}}}", f.name);
                    match &f.note {
                        Some(note) => y.review_after(&entry, format!("`{}`: {note}", f.column)),
                        None => y.line(entry),
                    }
                }
            }
            for (column, why) in &g.left_out {
                y.review("      ", format!("left out `{column}` of {file}: {why}"));
            }
        }
    }

    fn render_services(&self, y: &mut Yaml) {
        y.text.push_str(SERVICES);
        for (entity, views) in &self.services {
            y.line(format!("  - name: {}", self.service_name(*entity)));
            y.review(
                "    ",
                if self.services.len() == 1 {
                    "one service over every drafted view: keep the features a model reads".into()
                } else {
                    format!(
                        "one service per entity, as the views of a service share their entity: \
                         this one over the views of `{}`",
                        self.entities[*entity].name
                    )
                },
            );
            y.line("    features:");
            for &vi in views {
                y.line(format!("      - {}", self.views[vi].name));
            }
        }
    }

    fn services(&self) -> Vec<ServiceSummary> {
        self.services
            .iter()
            .map(|(entity, views)| {
                let e = &self.entities[*entity];
                ServiceSummary {
                    name: self.service_name(*entity),
                    entity: e.name.clone(),
                    join_keys: vec![
                        e.key
                            .as_ref()
                            .map_or_else(|| "TODO_join_key".to_owned(), |k| k.name.clone()),
                    ],
                    views: views
                        .iter()
                        .map(|&vi| self.views[vi].name.clone())
                        .collect(),
                }
            })
            .collect()
    }

    /// One line per file: what it became.
    fn summary(&self) -> Vec<String> {
        self.views
            .iter()
            .map(|v| {
                let g = &v.guess;
                let n = g.features.len();
                let mut line = format!(
                    "{} -> view {}: join key {}, event time {}, {n} feature{}",
                    v.file,
                    v.name,
                    g.join_key.as_ref().map_or("TODO", |k| k.name.as_str()),
                    g.event_time.as_deref().unwrap_or("TODO"),
                    if n == 1 { "" } else { "s" }
                );
                if !g.left_out.is_empty() {
                    let _ = write!(line, ", {} column(s) left out", g.left_out.len());
                }
                line
            })
            .collect()
    }
}

/// An entity's name from its join key's: `customer_id` -> `customer`; `None` for `id`.
fn entity_name(key: &str) -> Option<String> {
    let lower = key.to_ascii_lowercase();
    lower
        .strip_suffix("_id")
        .or_else(|| lower.strip_suffix("_key"))
        .map(|b| b.trim_matches('_'))
        .filter(|b| !b.is_empty())
        .map(identifier)
}

/// The YAML text of a draft, with every `# REVIEW:` comment and placeholder also recorded.
#[derive(Default)]
struct Yaml {
    text: String,
    review: Vec<String>,
    todo: Vec<String>,
}

impl Yaml {
    fn line(&mut self, line: impl AsRef<str>) {
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    fn review(&mut self, indent: &str, what: String) {
        self.line(format!("{indent}# REVIEW: {}", one_line(&what)));
        self.review.push(what);
    }

    /// `entry` with a `# REVIEW:` comment at the end of its line.
    fn review_after(&mut self, entry: &str, what: String) {
        self.line(format!("{entry:<56} # REVIEW: {}", one_line(&what)));
        self.review.push(what);
    }

    fn todo(&mut self, indent: &str, what: String) {
        self.line(format!("{indent}# REVIEW: TODO: {}", one_line(&what)));
        self.todo.push(what);
    }
}

/// A comment stays on its line whatever a column name holds.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A YAML scalar for `s`: plain when it is an identifier YAML reads as a string, else
/// double-quoted (JSON's quoting is YAML's).
fn scalar(s: &str) -> String {
    const WORDS: [&str; 11] = [
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "nan", "inf",
    ];
    if is_identifier(s) && !WORDS.contains(&s.to_ascii_lowercase().as_str()) {
        s.to_owned()
    } else {
        serde_json::Value::from(s).to_string()
    }
}

pub(super) fn write_draft(dir: &Path, project: &str, inputs: &[Input]) -> Result<Created, Error> {
    let draft = Draft::plan(inputs);
    let yaml = draft.render(project);
    let path = dir.join(REPO_FILE);
    write_file(&path, yaml.text.as_bytes())?;
    Ok(Created {
        dir: dir.to_owned(),
        project: project.to_owned(),
        files: vec![path],
        summary: draft.summary(),
        services: draft.services(),
        example_entity: None,
        review: yaml.review,
        todo: yaml.todo,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, TimeUnit};

    use super::*;

    fn schema(columns: &[(&str, DataType)]) -> Schema {
        Schema::new(
            columns
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        )
    }

    fn ts() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    }

    #[test]
    fn guesses_the_first_key_an_event_time_by_name_and_a_created_time() {
        let g = guess(&schema(&[
            ("signup_ts", ts()),
            ("amount", DataType::Float64),
            ("customer_id", DataType::Int32),
            ("order_id", DataType::Utf8),
            ("created_at", ts()),
            ("event_timestamp", ts()),
        ]));
        let key = g.join_key.unwrap();
        assert_eq!(
            (key.name.as_str(), key.dtype),
            ("customer_id", DType::Scalar(Scalar::Int64))
        );
        assert_eq!(g.other_keys, ["order_id"]);
        assert_eq!(g.event_time.as_deref(), Some("event_timestamp"));
        assert_eq!(g.created.as_deref(), Some("created_at"));
        let features: Vec<(&str, String)> = g
            .features
            .iter()
            .map(|f| (f.name.as_str(), f.dtype.to_string()))
            .collect();
        assert_eq!(
            features,
            [
                ("signup_ts", "timestamp".to_owned()),
                ("amount", "float64".into()),
                ("order_id", "string".into()),
            ]
        );
    }

    #[test]
    fn without_an_event_time_name_the_first_timestamp_not_named_created_wins() {
        let g = guess(&schema(&[("created", ts()), ("day", DataType::Date32)]));
        assert_eq!(g.event_time.as_deref(), Some("day"));
        assert_eq!(g.created.as_deref(), Some("created"));
        let g = guess(&schema(&[("created_at", ts()), ("id", DataType::Int64)]));
        assert_eq!(g.event_time.as_deref(), Some("created_at"));
        assert_eq!(g.created, None);
        assert_eq!(g.join_key.unwrap().name, "id");
    }

    #[test]
    fn nothing_guessable_leaves_hints() {
        let g = guess(&schema(&[
            ("id", DataType::Float64),
            ("event_time", DataType::Utf8),
            ("meta", DataType::Struct(Vec::<Field>::new().into())),
        ]));
        assert!(g.join_key.is_none());
        assert!(g.event_time.is_none());
        assert_eq!(g.time_like, ["`event_time` is Utf8"]);
        assert_eq!(g.left_out.len(), 1, "{:?}", g.left_out);
        assert_eq!(g.features.len(), 2);
    }

    #[test]
    fn arrow_types_map_to_the_dtypes_they_coerce_to() {
        let list = |t: DataType| DataType::List(Arc::new(Field::new_list_field(t, true)));
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        for (arrow, want) in [
            (DataType::Int8, "int64"),
            (DataType::Int32, "int64"),
            (DataType::UInt32, "int64"),
            (DataType::Int64, "int64"),
            (DataType::UInt64, "int64"),
            (DataType::Float16, "float32"),
            (DataType::Float32, "float32"),
            (DataType::Float64, "float64"),
            (DataType::Boolean, "bool"),
            (DataType::Utf8, "string"),
            (DataType::LargeUtf8, "string"),
            (dict, "string"),
            (DataType::Binary, "bytes"),
            (ts(), "timestamp"),
            (DataType::Date32, "timestamp"),
            (list(DataType::Float32), "list<float32>"),
            (list(DataType::Int16), "list<int64>"),
        ] {
            let (dtype, _) = dtype(&arrow).unwrap();
            assert_eq!(dtype.to_string(), want, "{arrow}");
        }
        for unsupported in [
            DataType::Null,
            DataType::Decimal128(10, 2),
            list(list(DataType::Int64)),
        ] {
            assert!(dtype(&unsupported).is_err(), "{unsupported}");
        }
    }

    #[test]
    fn names_become_identifiers_and_yaml_scalars_stay_strings() {
        assert_eq!(identifier("n returns"), "n_returns");
        assert_eq!(identifier("7d-sum"), "_7d_sum");
        assert_eq!(entity_name("customer_id").as_deref(), Some("customer"));
        assert_eq!(entity_name("Account_Key").as_deref(), Some("account"));
        assert_eq!(entity_name("id"), None);
        assert_eq!(scalar("event_ts"), "event_ts");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("event time"), "\"event time\"");
        let mut taken = HashSet::new();
        assert_eq!(unique("a".into(), &mut taken), "a");
        assert_eq!(unique("a".into(), &mut taken), "a_2");
    }
}
