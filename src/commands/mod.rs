//! The CLI verbs: one module each, with an `Args` struct (its `///` comments are the help), a
//! `run` function that calls the engine, and the rendering of what it returns. Options every
//! verb takes live in `Global`; how a failure is reported (text, or one JSON document with
//! `--format json`) and which exit code it gets is decided in `report_failure`, once.

pub mod commit;
pub mod gc;
pub mod get;
pub mod init;
pub mod lineage;
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
    /// What goes to stderr: text (bars on a terminal), or one JSON object per line with the
    /// run id, service, phase and figures (for a log collector)
    #[arg(long, global = true, value_enum, value_name = "FORMAT", env = "FSCTL_LOG_FORMAT", hide_env_values = true, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
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

/// A verb that writes, as `observed` reports it.
pub struct Run<'a> {
    pub command: &'static str,
    /// False for a dry run (`--dry-run`, `--emit-resp`): nothing is pushed or sent, since
    /// nothing was written.
    pub writes: bool,
    pub shard: Option<fsctl::offline::Shard>,
    pub services: &'a [String],
    pub metrics_file: Option<&'a std::path::Path>,
}

/// Runs a verb that writes, observed: its repo loaded by `load`, then `body`; at the end, its
/// metrics (`--metrics-file`, the Pushgateway) and OpenLineage events, whether it succeeded or
/// not. Neither ever changes the verb's result, and both together get 10 s at the end (2 s when
/// the run was interrupted: a pod's grace period is short), 5 s for the START event.
pub fn observed(
    global: &Global,
    run: &Run<'_>,
    load: impl FnOnce(&Global) -> fsctl::Result<Repo>,
    body: impl FnOnce(&Repo, &mut metrics::RunMetrics) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let lineage = lineage::Lineage::from_env(run.command).filter(|_| run.writes);
    let mut metrics = metrics::RunMetrics {
        command: run.command,
        shard: run.shard.map(|s| s.to_string()),
        ..Default::default()
    };
    let (repo, result) = match load(global) {
        Ok(repo) => {
            metrics.project = Some(repo.project.clone());
            metrics.services = match fsctl::engine::select_services(&repo, run.services) {
                Ok(selected) => selected.iter().map(|s| s.name.clone()).collect(),
                Err(_) => run.services.to_vec(),
            };
            if let Some(l) = &lineage {
                fsctl::base::http::budget(std::time::Duration::from_secs(5));
                l.start(&lineage::Target {
                    repo: &repo,
                    services: metrics.services.clone(),
                });
            }
            let result = body(&repo, &mut metrics);
            (Some(repo), result)
        }
        Err(e) => (None, Err(e.into())),
    };
    let interrupted = fsctl::base::interrupt::interrupted();
    fsctl::base::http::budget(std::time::Duration::from_secs(if interrupted {
        2
    } else {
        10
    }));
    metrics.finish(run.metrics_file, run.writes, &result, started);
    if let Some(l) = &lineage {
        let target = repo.as_ref().map(|repo| lineage::Target {
            repo,
            services: metrics.services.clone(),
        });
        l.end(
            target.as_ref(),
            &metrics.reports,
            &result,
            &global.repo_dir(),
        );
    }
    result
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
    let kind = fsctl_err.map_or("internal", Error::kind);
    fsctl::progress::error(kind, &message, code);
    termination_message(kind, &message, code);
    code
}

/// In a Kubernetes container, the failure's summary goes where the pod's status shows it:
/// `/dev/termination-log` (or `FSCTL_TERMINATION_LOG`, for a pod with another
/// `terminationMessagePath`), when that file exists. Kubernetes keeps its first 4096 bytes.
pub fn termination_message(kind: &str, message: &str, code: u8) {
    let path = std::env::var_os("FSCTL_TERMINATION_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/termination-log"));
    if !path.exists() {
        return;
    }
    let mut text = format!(
        "fsctl {}: exit {code}: {kind}: {message}\n",
        fsctl::progress::run_id()
    );
    if text.len() > 4096 {
        let mut end = 4093;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    let _ = std::fs::write(&path, text);
}

/// The part of every `--help` after the options: exit codes and environment.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success (also: the same job already committed, a no-op)
  1  the job failed: Redis, offline data, lock held, quality gate, validation findings
  2  usage or configuration error: bad flags or times, invalid feature_store.yaml, unknown service

Environment:
  FSCTL_REDIS_URL        replaces online_store.url of feature_store.yaml (passwords shown as ***)
  FSCTL_LOG_FORMAT       text or json, as --log-format
  FSCTL_PUSHGATEWAY_URL  a Prometheus Pushgateway: verbs that write push their run's metrics there
  OPENLINEAGE_URL        an OpenLineage endpoint: verbs that write send START and COMPLETE/FAIL
                         events (OPENLINEAGE_NAMESPACE, OPENLINEAGE_PARENT_ID as Airflow sets them)";

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
            let message = format!(
                "{flag} {value} has no UTC offset; taken as UTC ({})",
                utc.unwrap_or_default()
            );
            fsctl::progress::emit(
                fsctl::progress::Level::Info,
                &format!("note: {message}"),
                &message,
                serde_json::Map::new(),
            );
        }
    }
}

/// Parses a `TIME` flag (RFC 3339, or a naive date/time taken as UTC) into UTC microseconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    fsctl::base::time::parse_instant_us(text)
}

/// Parses an `--end`: a `TIME`, or `cronjob:NAME` with NAME a Job a Kubernetes CronJob created
/// (`<cronjob>-<scheduled time in minutes since the epoch>`): the scheduled time, the same in
/// every pod and every retry of that Job, with no shell in the image to compute it.
pub fn parse_end(text: &str) -> Result<i64, String> {
    let Some(name) = text.trim().strip_prefix("cronjob:") else {
        return parse_time(text);
    };
    let minutes = name
        .rsplit_once('-')
        .map(|(_, m)| m)
        .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|m| m.parse::<i64>().ok())
        // From 2001 to 2200: a name that ends in another number is no CronJob's.
        .filter(|m| (16_000_000..=120_000_000).contains(m));
    match minutes {
        Some(m) => Ok(m * 60_000_000),
        None => Err(format!(
            "`{text}`: a CronJob names its Jobs <cronjob>-<scheduled time in minutes since the \
             epoch>, and `{name}` does not end so (pass the Job's name, e.g. from the pod label \
             batch.kubernetes.io/job-name)"
        )),
    }
}

/// Parses a `DURATION` flag (`30s`, `5m`, `2h`, `7d`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    repo::parse_duration_ms(text).map(|ms| std::time::Duration::from_millis(ms as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_from_a_cronjob_name() {
        // 29412000 minutes since the epoch: 2025-12-03T00:00:00Z.
        assert_eq!(
            parse_end("cronjob:fsctl-materialize-29412000"),
            parse_time("2025-12-03T00:00:00Z")
        );
        assert_eq!(
            parse_end("2025-11-23T00:00:00Z"),
            parse_time("2025-11-23T00:00:00Z")
        );
        for bad in [
            "cronjob:",
            "cronjob:fsctl",
            "cronjob:job-12",
            "cronjob:job-29412000x",
        ] {
            let e = parse_end(bad).unwrap_err();
            assert!(e.contains("minutes since the epoch"), "{bad}: {e}");
        }
    }
}
