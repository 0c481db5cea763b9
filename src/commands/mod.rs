//! The CLI verbs: one module each, with an `Args` struct (its `///` comments are the help), a
//! `run` function that calls the engine, and the rendering of what it returns. Options every
//! verb takes live in `Global`; how a failure is reported (text, or one JSON document with
//! `--format json`) and which exit code it gets is decided in `report_failure`, once.

pub mod commit;
pub mod gc;
pub mod get;
pub mod init;
pub mod lock;
pub mod materialize;
pub mod metrics;
pub mod rollback;
pub mod snapshots;
pub mod status;
pub mod validate;
pub mod warm;

use std::io::Write;
use std::path::PathBuf;

use fsctl::Error;
use fsctl::progress::Progress;
use fsctl::repo::{self, Repo};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    // Prometheus text exposition, for `fsctl status` only (a doc comment here would turn
    // every verb's --help into the long form).
    Prometheus,
}

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Feature repo directory (default: ./feature_repo, or . when it holds feature_store.yaml)
    #[arg(long, global = true, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Output format: human text, one JSON document on stdout (also on failure), or Prometheus
    /// text (`status` only)
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Print only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more detail
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// With --format json: also write the JSON document to FILE (e.g. Airflow's
    /// /airflow/xcom/return.json), also when the command fails
    #[arg(long, global = true, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

impl Global {
    pub fn repo_dir(&self) -> PathBuf {
        repo::locate(self.repo.as_deref())
    }

    pub fn load_repo(&self) -> fsctl::Result<Repo> {
        Repo::load(&self.repo_dir())
    }

    /// The repo, for a command of snapshots, which Feast's layout does not have (SPEC §3.4).
    pub fn load_snapshot_repo(&self, command: &str) -> fsctl::Result<Repo> {
        let repo = self.load_repo()?;
        if repo.layout == fsctl::repo::OutputLayout::Feast {
            return Err(fsctl::Error::usage(format!(
                "`fsctl {command}` does not apply to layout: feast: Feast's hashes are written in \
                 place, with no snapshots to list, roll back or retire (each run's window is \
                 recorded for `fsctl status`); set `fsctl: {{layout: fsctl}}` in \
                 feature_store.yaml for fsctl's snapshots"
            )));
        }
        Ok(repo)
    }

    pub fn progress(&self) -> Progress {
        Progress::new(self.quiet)
    }

    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }
}

/// Writes `text` to stdout. A reader that went away (`fsctl get ... | head`) ends the output
/// quietly instead of panicking.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Prints `doc` as the one JSON document of the command.
pub fn print_json(doc: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(doc)? + "\n";
    if let Some(path) = JSON_OUT.get() {
        std::fs::write(path, &text).map_err(|source| Error::Output {
            what: "--json-out",
            path: path.clone(),
            source,
        })?;
    }
    print(&text)
}

/// `--json-out FILE`, set once at start: every JSON document printed goes there too.
pub static JSON_OUT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// A failure whose JSON document the command already printed (with its partial results, as
/// `validate` and `materialize` do): only the exit code and the text on stderr remain to do.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Printed(pub Error);

/// The JSON document of a failure, with the partial results of the command merged in.
pub fn failure_doc(e: &Error, mut partial: serde_json::Value) -> serde_json::Value {
    if let (serde_json::Value::Object(out), serde_json::Value::Object(err)) =
        (&mut partial, e.to_json())
    {
        out.extend(err);
    }
    partial
}

/// Reports a failed command the way `--format` asks and returns its exit code (SPEC §4).
pub fn report_failure(global: &Global, err: &anyhow::Error) -> u8 {
    let (printed, fsctl_err) = match err.downcast_ref::<Printed>() {
        Some(Printed(e)) => (true, Some(e)),
        None => (false, err.downcast_ref::<Error>()),
    };
    let code = fsctl_err.map_or(1, Error::exit_code);
    let message = match fsctl_err {
        Some(e) => e.to_string(),
        None => format!("{err:#}"),
    };
    if global.json() && !printed {
        let doc = match fsctl_err {
            Some(e) => e.to_json(),
            None => serde_json::json!({
                "error": {"kind": "internal", "message": message, "exit_code": code}
            }),
        };
        let _ = print_json(&doc);
    }
    let _ = writeln!(std::io::stderr(), "error: {message}");
    code
}

/// The part of every `--help` after the options: exit codes and environment.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success (also: the same job already committed, a no-op)
  1  the job failed: Redis, offline data, lock held, quality gate, validation findings
  2  usage or configuration error: bad flags or times, invalid feature_store.yaml, unknown service

Environment:
  FSCTL_REDIS_URL  replaces online_store.url of feature_store.yaml (passwords are printed as ***)";

/// Notes on stderr each `--start`/`--end` written without a UTC offset: it is taken as UTC,
/// which a scheduler in another zone may not mean.
pub fn note_naive_times(global: &Global) {
    if global.quiet {
        return;
    }
    // Arguments that are not UTF-8 (a path) are no times; clap took them as they are.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.into_string().unwrap_or_default())
        .collect();
    for (i, arg) in args.iter().enumerate() {
        let (flag, value) = match arg.split_once('=') {
            Some((f, v)) if f == "--start" || f == "--end" => (f, v),
            _ if arg == "--start" || arg == "--end" => match args.get(i + 1) {
                Some(v) => (arg.as_str(), v.as_str()),
                None => continue,
            },
            _ => continue,
        };
        if fsctl::base::time::lacks_offset(value) {
            let utc = parse_time(value).map(fsctl::base::time::format_us);
            let _ = writeln!(
                std::io::stderr(),
                "note: {flag} {value} has no UTC offset; taken as UTC ({})",
                utc.unwrap_or_default()
            );
        }
    }
}

/// Parses a `TIME` flag (RFC 3339, or a naive date/time taken as UTC) into UTC microseconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    fsctl::base::time::parse_instant_us(text)
}

/// Parses a `DURATION` flag (`30s`, `5m`, `2h`, `7d`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    repo::parse_duration_ms(text).map(|ms| std::time::Duration::from_millis(ms as u64))
}
