//! `fsctl init`: start a feature repo. Without files it writes a commented `feature_store.yaml`
//! and a small example dataset that `validate` and `materialize` accept as they are, so that a
//! newcomer's first commands work; with `--from-parquet` it drafts the definitions from the
//! files' Arrow schemas and marks every guess `# REVIEW:` for a person to confirm. Every input
//! is read before anything is written, and an existing `feature_store.yaml` is never replaced
//! without `--force`.

mod draft;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use fsctl::Error;
use fsctl::base::time::{format_us, now_us};
use fsctl::repo::{REPO_FILE, is_project_name};

use super::{Global, print, print_json};

pub const HELP: &str = "\
Examples:
  fsctl init                          ./feature_repo with example data, ready to materialize
  fsctl init fraud                    the same in ./fraud, project `fraud`
  fsctl init shop --from-parquet shop/data/orders.parquet shop/data/users.parquet
                                      draft the definitions from the files' schemas
  fsctl init shop --force             replace shop/feature_store.yaml

The example (entity `user`, view `user_stats`, service `user_scoring`; 300 rows dated in the
three days before now, inside the view's 30d ttl) passes `fsctl validate` and `fsctl materialize`
as written. A draft marks each guess (join key, event time, created time, dtypes, ttl, service)
with `# REVIEW:`. When no join key or event-time column can be guessed, the draft is still
written with a TODO_ placeholder: init exits 0 and names it, and `fsctl validate` fails until it
is replaced. A file that is missing or not Parquet is a usage error (exit 2) and nothing is
written; so is an existing feature_store.yaml without --force. DIR comes first: --from-parquet
takes every file after it.";

/// Create a feature repo: a commented feature_store.yaml with example data, or a draft from
/// Parquet files.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Directory of the new repo (default: --repo, else ./feature_repo); created when missing
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Draft entities, sources, views and a service from these Parquet files' schemas instead
    /// of writing the example
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub from_parquet: Vec<PathBuf>,
    /// Project name (default: DIR's name, lowercased, as [a-z][a-z0-9_]*)
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,
    /// Replace an existing feature_store.yaml (and the example's data file)
    #[arg(long)]
    pub force: bool,
}

pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let dir = args
        .dir
        .clone()
        .or_else(|| global.repo.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let project = match &args.project {
        Some(p) if is_project_name(p) => p.clone(),
        Some(p) => {
            return Err(Error::usage(format!("--project `{p}` must match [a-z][a-z0-9_]*")).into());
        }
        None => project_name(&dir),
    };
    let yaml = dir.join(REPO_FILE);
    let created = if args.from_parquet.is_empty() {
        refuse_overwrite(&[&yaml, &dir.join(EXAMPLE_DATA)], args.force)?;
        write_example(&dir, &project)?
    } else {
        refuse_overwrite(&[&yaml], args.force)?;
        let inputs = args
            .from_parquet
            .iter()
            .map(|f| draft::read_input(f, &dir))
            .collect::<Result<Vec<_>, _>>()?;
        draft::write_draft(&dir, &project, &inputs)?
    };
    let repo_flag = match (&args.dir, &global.repo) {
        (None, None) => String::new(),
        _ if dir == Path::new(DEFAULT_DIR) => String::new(),
        _ => format!(" --repo {}", shell_word(&dir.display().to_string())),
    };
    let steps = created.next_steps(&repo_flag);
    if global.json() {
        print_json(&created.to_json(&steps))
    } else if global.quiet {
        Ok(())
    } else {
        print(&created.text(&steps))
    }
}

/// Where `fsctl` looks for a repo when not told (`repo::locate`).
const DEFAULT_DIR: &str = "feature_repo";
const DEFAULT_URL: &str = "redis://127.0.0.1:6379/0";

/// Refuses, naming the first of `paths` that exists, unless forced.
fn refuse_overwrite(paths: &[&Path], force: bool) -> Result<(), Error> {
    match paths.iter().find(|p| p.exists()) {
        Some(p) if !force => Err(Error::usage(format!(
            "{} already exists; fsctl init does not overwrite it (pass --force to replace it, or \
             choose another DIR)",
            p.display()
        ))),
        _ => Ok(()),
    }
}

/// A project name from the repo directory's name: lowercased, other characters as `_`,
/// leading ones that may not start a name dropped.
fn project_name(dir: &Path) -> String {
    let name = dir
        .canonicalize()
        .ok()
        .as_deref()
        .and_then(Path::file_name)
        .or_else(|| dir.file_name())
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .skip_while(|c| !c.is_ascii_lowercase())
        .collect();
    if name.is_empty() {
        DEFAULT_DIR.to_owned()
    } else {
        name
    }
}

/// What init wrote, for the report.
struct Created {
    dir: PathBuf,
    project: String,
    files: Vec<PathBuf>,
    /// One line per written file or drafted view, for the text report.
    summary: Vec<String>,
    services: Vec<ServiceSummary>,
    /// The example's entity that the `get` step reads (join key, value).
    example_entity: Option<(&'static str, i64)>,
    /// Every `# REVIEW:` comment of a draft.
    review: Vec<String>,
    /// The placeholders `fsctl validate` fails on until they are replaced.
    todo: Vec<String>,
}

struct ServiceSummary {
    name: String,
    entity: String,
    join_keys: Vec<String>,
    views: Vec<String>,
}

impl Created {
    fn next_steps(&self, repo_flag: &str) -> Vec<String> {
        let Some(service) = self.services.first() else {
            return Vec::new();
        };
        let entity = match self.example_entity {
            Some((key, value)) => format!("{key}={value}"),
            None => service
                .join_keys
                .iter()
                .map(|k| format!("{k}=VALUE"))
                .collect::<Vec<_>>()
                .join(" --entity "),
        };
        vec![
            format!("fsctl{repo_flag} validate"),
            format!("export FSCTL_REDIS_URL={DEFAULT_URL}"),
            format!("fsctl{repo_flag} materialize"),
            format!(
                "fsctl{repo_flag} get --service {} --entity {entity}",
                service.name
            ),
        ]
    }

    fn text(&self, steps: &[String]) -> String {
        let mut out = String::new();
        let dir = self.dir.display();
        match self.example_entity {
            Some(_) => {
                let _ = writeln!(out, "Created feature repo `{}` in {dir}:", self.project);
            }
            None => {
                let _ = writeln!(
                    out,
                    "Drafted feature repo `{}` in {dir} from {} Parquet file{}:",
                    self.project,
                    self.summary.len(),
                    if self.summary.len() == 1 { "" } else { "s" }
                );
                let _ = writeln!(out, "  {}", self.files[0].display());
            }
        }
        for line in &self.summary {
            let _ = writeln!(out, "  {line}");
        }
        let yaml = self.dir.join(REPO_FILE);
        if !self.review.is_empty() {
            let n = self.review.len();
            let _ = writeln!(
                out,
                "\n{n} guess{} marked `# REVIEW:` in {}: check each, then delete the marker.",
                if n == 1 { " is" } else { "es are" },
                yaml.display()
            );
        }
        if !self.todo.is_empty() {
            let n = self.todo.len();
            let _ = writeln!(
                out,
                "\nIncomplete: {n} placeholder{} (TODO_...) must be replaced; `fsctl validate` \
                 fails until then:",
                if n == 1 { "" } else { "s" }
            );
            for t in &self.todo {
                let _ = writeln!(out, "  {t}");
            }
        }
        let _ = writeln!(out, "\nNext steps:");
        let notes = [
            "check the definitions and the offline data they reach",
            "point fsctl at your Redis (this replaces online_store.url)",
            "write the vectors and commit them",
            "read one entity back",
        ];
        for (step, note) in steps.iter().zip(notes) {
            let _ = writeln!(out, "  # {note}\n  {step}");
        }
        out
    }

    fn to_json(&self, steps: &[String]) -> serde_json::Value {
        serde_json::json!({
            "command": "init",
            "kind": if self.example_entity.is_some() { "example" } else { "draft" },
            "dir": self.dir,
            "project": self.project,
            "files": self.files,
            "services": self.services.iter().map(|s| serde_json::json!({
                "service": s.name,
                "entity": s.entity,
                "join_keys": s.join_keys,
                "views": s.views,
            })).collect::<Vec<_>>(),
            "example_entity": self.example_entity.map(|(k, v)| serde_json::json!({ k: v })),
            "review": self.review,
            "todo": self.todo,
            "complete": self.todo.is_empty(),
            "next_steps": steps,
        })
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let output = |source| Error::Output {
        what: "cannot write",
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(output)?;
    }
    std::fs::write(path, bytes).map_err(output)
}

// ---------------------------------------------------------------------------------------------
// The example repo.

const EXAMPLE_DATA: &str = "data/user_stats.parquet";
const EXAMPLE_USERS: i64 = 100;
const EXAMPLE_DAYS: i64 = 3;
const FIRST_USER_ID: i64 = 1001;
const CATEGORIES: [&str; 5] = ["books", "games", "garden", "music", "toys"];
const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;

/// The example's definitions: every section says what it is for, in a few words.
const EXAMPLE_YAML: &str = "\
# A feature repo made by `fsctl init`: one entity, one Parquet source, one feature view and one
# feature service, with example data in data/. Every key is described in docs/configuration.md.

# Names the repo in Redis: every key starts with `{key_prefix}:{project}:`.
project: @PROJECT@

# Where vectors are served from. FSCTL_REDIS_URL, when set, replaces `url`, so one repo serves
# every environment; passwords belong in password_env or password_file, not in this file.
online_store:
  type: redis                          # or redis_cluster, with one or more seed URLs
  url: redis://127.0.0.1:6379/0
  key_prefix: fs

# How runs write: expiries are spread by up to ttl_jitter x online_ttl, vectors larger than
# compress_threshold_bytes are zstd-compressed, and the last keep_snapshots commits stay
# readable (`fsctl rollback` flips back to one).
materialization:
  ttl_jitter: 0.2
  compress_threshold_bytes: 2048
  keep_snapshots: 2

# What features describe, and the join keys that identify it (int32, int64 or string).
entities:
  - name: user
    join_keys: [{name: user_id, dtype: int64}]
    description: A customer of the example shop.

# Where rows come from: a Parquet file, a directory of them, a glob, or an s3:// gs:// az:// URL
# (local paths are relative to this directory). timestamp_field is each row's event time; of two
# rows with the same event time, the one with the later created_timestamp_column wins.
sources:
  - name: user_stats_src
    path: data/user_stats.parquet
    timestamp_field: event_timestamp
    created_timestamp_column: created_timestamp

# Features of one entity from one source. Per entity, a view serves its latest row at most `ttl`
# old at the window end (default: now). A null becomes the feature's `default` (`default: null`:
# it stays null). dtypes: int32 int64 float32 float64 bool string bytes timestamp list<T>.
feature_views:
  - name: user_stats
    entities: [user]
    source: user_stats_src
    ttl: 30d                           # the example rows are from the 3 days up to @ANCHOR@
    features:
      - {name: purchases_30d, dtype: int64, default: 0}
      - {name: avg_order_value, dtype: float64, default: 0.0}
      - {name: favorite_category, dtype: string, default: unknown}
      - {name: is_subscriber, dtype: bool, default: false}
      - {name: lifetime_value, dtype: float64, default: null}   # a null stays null
    # checks: {min_entities: 50}       # validate --data and materialize refuse fewer entities

# What a model reads: one vector per entity over the listed views (a whole view, or
# {view: user_stats, features: [purchases_30d]}), kept online_ttl in Redis.
feature_services:
  - name: user_scoring
    features:
      - user_stats
    online_ttl: 7d

# Optional: object-store options shared by s3:// gs:// az:// sources (values may use ${ENV}).
# offline_store:
#   storage_options: {aws_region: eu-west-1}
# Optional: the popularity ranking `fsctl warm` reads when given no --from.
# hot_entities: {path: data/popularity.parquet, score_column: requests_7d}
";

/// The example's rows: for each of `EXAMPLE_USERS` users (`user_id` 1001, 1002, ...) one row a
/// day over `EXAMPLE_DAYS` days, the latest one 1 to 24 hours before `anchor_us` (an hour), so
/// that every user is inside the window of a run in the month that follows. Users 1010, 1020,
/// ... have no `favorite_category` (the default, `unknown`, is served) and no `lifetime_value`
/// (served as null). Deterministic: the same anchor gives the same rows.
fn example_batch(anchor_us: i64) -> RecordBatch {
    let rows = (EXAMPLE_DAYS * EXAMPLE_USERS) as usize;
    let mut user_id = Vec::with_capacity(rows);
    let mut event = Vec::with_capacity(rows);
    let mut created = Vec::with_capacity(rows);
    let mut purchases = Vec::with_capacity(rows);
    let mut avg_order = Vec::with_capacity(rows);
    let mut category = Vec::with_capacity(rows);
    let mut subscriber = Vec::with_capacity(rows);
    let mut lifetime = Vec::with_capacity(rows);
    for day in (0..EXAMPLE_DAYS).rev() {
        for i in 0..EXAMPLE_USERS {
            let t = anchor_us - day * DAY_US - (i % 24 + 1) * HOUR_US;
            let sparse = i % 10 == 9;
            user_id.push(FIRST_USER_ID + i);
            event.push(t);
            created.push(t + 300_000_000);
            purchases.push(3 + (i * 7 + day * 3) % 25);
            avg_order.push(20.5 + ((i * 13 + day * 5) % 80) as f64);
            category.push((!sparse).then(|| CATEGORIES[((i + day) % 5) as usize]));
            subscriber.push((i + day) % 3 == 0);
            lifetime.push((!sparse).then_some(250.0 + 10.0 * i as f64 - day as f64));
        }
    }
    let utc = |v: Vec<i64>| Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"));
    RecordBatch::try_from_iter([
        ("user_id", Arc::new(Int64Array::from(user_id)) as ArrayRef),
        ("event_timestamp", utc(event)),
        ("created_timestamp", utc(created)),
        ("purchases_30d", Arc::new(Int64Array::from(purchases))),
        ("avg_order_value", Arc::new(Float64Array::from(avg_order))),
        ("favorite_category", Arc::new(StringArray::from(category))),
        ("is_subscriber", Arc::new(BooleanArray::from(subscriber))),
        ("lifetime_value", Arc::new(Float64Array::from(lifetime))),
    ])
    .expect("the example's columns have equal lengths")
}

fn parquet_bytes(batch: &RecordBatch) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let props = WriterProperties::builder()
        .set_created_by("fsctl init".into())
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props))?;
    w.write(batch)?;
    w.close()?;
    Ok(out)
}

fn write_example(dir: &Path, project: &str) -> Result<Created, Error> {
    // The current hour, so the rows sit just before a run's default window end (now).
    let anchor_us = now_us().div_euclid(HOUR_US) * HOUR_US;
    let batch = example_batch(anchor_us);
    let data = dir.join(EXAMPLE_DATA);
    let bytes = parquet_bytes(&batch).map_err(|e| Error::Output {
        what: "cannot encode",
        path: data.clone(),
        source: std::io::Error::other(e),
    })?;
    write_file(&data, &bytes)?;
    let yaml = dir.join(REPO_FILE);
    let text = EXAMPLE_YAML
        .replace("@PROJECT@", project)
        .replace("@ANCHOR@", &format_us(anchor_us));
    write_file(&yaml, text.as_bytes())?;
    Ok(Created {
        dir: dir.to_owned(),
        project: project.to_owned(),
        summary: vec![
            format!(
                "{:<40} definitions, every section commented",
                yaml.display()
            ),
            format!(
                "{:<40} {} example rows: {EXAMPLE_USERS} users, {EXAMPLE_DAYS} days up to {}",
                data.display(),
                batch.num_rows(),
                format_us(anchor_us)
            ),
        ],
        files: vec![yaml, data],
        services: vec![ServiceSummary {
            name: "user_scoring".into(),
            entity: "user".into(),
            join_keys: vec!["user_id".into()],
            views: vec!["user_stats".into()],
        }],
        example_entity: Some(("user_id", FIRST_USER_ID)),
        review: Vec::new(),
        todo: Vec::new(),
    })
}

/// `s` as one shell word, for the commands of the next steps.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./+,:@".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_resolves_without_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        write_example(dir.path(), "shop").unwrap();
        let loaded = fsctl::repo::load_all(dir.path()).unwrap();
        assert!(loaded.findings.is_empty(), "{:?}", loaded.findings);
        let repo = loaded.repo.unwrap();
        assert_eq!(repo.project, "shop");
        assert_eq!(repo.services[0].name, "user_scoring");
    }

    #[test]
    fn the_example_rows_sit_before_the_anchor_hour() {
        let anchor = 1_763_856_000_000_000;
        let batch = example_batch(anchor);
        assert_eq!(batch.num_rows(), 300);
        let ts = batch.column_by_name("event_timestamp").unwrap();
        let ts = arrow::array::AsArray::as_primitive::<arrow::datatypes::TimestampMicrosecondType>(
            ts.as_ref(),
        );
        let (min, max) = (
            ts.values().iter().min().unwrap(),
            ts.values().iter().max().unwrap(),
        );
        assert_eq!(*max, anchor - HOUR_US);
        assert_eq!(*min, anchor - 2 * DAY_US - 24 * HOUR_US);
    }

    #[test]
    fn project_names_come_from_the_directory() {
        assert_eq!(project_name(Path::new("no/such/My-Repo")), "my_repo");
        assert_eq!(project_name(Path::new("no/such/2024 features")), "features");
        assert_eq!(project_name(Path::new("no/such/___")), DEFAULT_DIR);
        assert!(is_project_name(&project_name(Path::new("."))));
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word("feature_repo"), "feature_repo");
        assert_eq!(shell_word("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
