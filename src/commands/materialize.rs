//! `fsctl materialize`: the command line of a materialization, and its report.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fsctl::engine::{self, MaterializeOptions, Output, ScanMode, ServiceReport, Status};
use fsctl::offline::Shard;
use fsctl::online::Manifest;

use super::{Global, Printed, failure_doc, print, print_json};

pub const HELP: &str = "\
Examples:
  fsctl materialize --end 2025-11-23T00:00:00Z
  fsctl --format json materialize --end \"{{ data_interval_end }}\" --manifest-out manifest.json
  fsctl materialize --service realtime_scoring --dry-run";

/// Compute the latest features per entity and commit them to Redis as a new snapshot.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Feature service to materialize (repeatable; default: every service)
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// Window start (RFC 3339 or YYYY-MM-DD, UTC); default: end minus each view's ttl
    #[arg(long, value_name = "TIME", value_parser = super::parse_time)]
    pub start: Option<i64>,
    /// Window end and as-of time (default: now). Pass the scheduler's interval end so that a
    /// retried run is an idempotent no-op; `cronjob:JOB_NAME` takes the scheduled time a
    /// Kubernetes CronJob put in its Job's name
    #[arg(long, value_name = "TIME", value_parser = super::parse_end)]
    pub end: Option<i64>,
    /// Accept an --end more than 5 minutes ahead of this machine's clock
    #[arg(long)]
    pub allow_future_end: bool,
    /// Compute and report, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Write the exact Redis command stream as RESP to FILE instead of to Redis
    #[arg(long, value_name = "FILE", conflicts_with = "dry_run")]
    pub emit_resp: Option<PathBuf>,
    /// Also write the manifest (JSON) to FILE
    #[arg(long, value_name = "FILE")]
    pub manifest_out: Option<PathBuf>,
    /// Rewrite a snapshot that is already committed, and allow moving `current` back in time
    #[arg(long)]
    pub force: bool,
    /// Wait up to this long for another run's lock (e.g. 30s, 5m) instead of failing at once
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    pub wait_lock: Option<Duration>,
    /// Commit even when the result has zero entities
    #[arg(long)]
    pub allow_empty: bool,
    /// Commit even when a data-quality check fails (recorded in the manifest; emergencies only)
    #[arg(long)]
    pub skip_checks: bool,
    /// Scan the views once per share of the entities (by key hash) so that writing one share
    /// overlaps reading the next [default: 4 from a million rows to read when writing to Redis,
    /// else 1; more when --memory-budget needs them]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub partitions: Option<u32>,
    /// How to read each view: `single` (one pass, every row decoded), `selective` (two passes:
    /// the latest row per entity picked from the key and time columns, then only those decoded),
    /// or `auto` (selective for a view with 8 or more rows per entity in the last snapshot)
    #[arg(long, value_name = "MODE", value_parser = ["auto", "single", "selective"], default_value = "auto")]
    pub scan: String,
    /// Memory the run may hold (e.g. 1G, 512M): it reads in as many partitions as that needs,
    /// sized like the current snapshot [default: half of the memory available, cgroup-aware]
    #[arg(long, value_name = "SIZE", value_parser = parse_size, conflicts_with = "partitions")]
    pub memory_budget: Option<u64>,
    /// Write only shard I of N of the entities (by key hash) and record a shard manifest
    /// instead of committing; `fsctl commit --shards N` commits the snapshot (SPEC §3.3). Needs
    /// --end, the same in every shard: it names the snapshot. `auto/N` takes I from
    /// JOB_COMPLETION_INDEX (a Kubernetes Indexed Job sets it)
    #[arg(
        long,
        value_name = "I/N",
        value_parser = parse_shard,
        conflicts_with = "emit_resp",
        requires = "end"
    )]
    pub shard: Option<Shard>,
    /// With --shard: commit the snapshot when this shard finds all N shards recorded
    #[arg(long, requires = "shard")]
    pub commit_when_complete: bool,
    /// Write the run's metrics to FILE as Prometheus text (a node-exporter textfile), also
    /// when it fails; a service's last success is kept from the file until it commits again
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

/// A size: bytes, or a number with K, M, G or T (powers of 1024; a trailing B or iB is allowed).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = ["iB", "ib", "B", "b"]
        .iter()
        .find_map(|suffix| t.strip_suffix(suffix))
        .unwrap_or(t);
    let (number, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("`{text}` is not a size: expected e.g. 512M or 2G")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => {
            let bytes = (n * (1u64 << shift) as f64) as u64;
            if bytes < 1 << 20 {
                return Err(format!("`{text}` is below 1M, too little for any run"));
            }
            Ok(bytes)
        }
        _ => Err(format!("`{text}` is not a size: expected e.g. 512M or 2G")),
    }
}

/// `I/N` with `0 <= I < N`, or `auto/N` with I from `JOB_COMPLETION_INDEX`.
fn parse_shard(text: &str) -> Result<Shard, String> {
    shard_from(text, std::env::var("JOB_COMPLETION_INDEX").ok().as_deref())
}

/// `parse_shard` with the value of `JOB_COMPLETION_INDEX` given.
fn shard_from(text: &str, completion_index: Option<&str>) -> Result<Shard, String> {
    let bad = || {
        format!(
            "`{text}` is not a shard: expected I/N with 0 <= I < N <= {}, e.g. 0/4, or auto/N",
            engine::shards::MAX_SHARDS
        )
    };
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let count: u32 = n.trim().parse().map_err(|_| bad())?;
    let index: u32 = if i.trim() == "auto" {
        let from_env = completion_index.ok_or_else(|| {
            format!(
                "`{text}` takes the shard index from JOB_COMPLETION_INDEX (a Kubernetes Indexed \
                 Job sets it), which is not set; pass I/N instead"
            )
        })?;
        from_env.trim().parse().map_err(|_| {
            format!("`{text}`: JOB_COMPLETION_INDEX is `{from_env}`, not a shard index")
        })?
    } else {
        i.trim().parse().map_err(|_| bad())?
    };
    if count > engine::shards::MAX_SHARDS {
        return Err(bad());
    }
    if index >= count {
        return Err(format!(
            "`{text}`: shard index {index} is not below the shard count {count}{}",
            if i.trim() == "auto" {
                " (from JOB_COMPLETION_INDEX: the Indexed Job's completions must equal N)"
            } else {
                ""
            }
        ));
    }
    Ok(Shard { index, count })
}

impl Args {
    fn options(&self, global: &Global) -> MaterializeOptions {
        MaterializeOptions {
            services: self.services.clone(),
            start_us: self.start,
            end_us: self.end,
            output: match (&self.emit_resp, self.dry_run) {
                (Some(path), _) => Output::EmitResp(path.clone()),
                (None, true) => Output::DryRun,
                (None, false) => Output::Redis,
            },
            force: self.force,
            wait_lock: self.wait_lock.unwrap_or_default(),
            allow_empty: self.allow_empty,
            skip_checks: self.skip_checks,
            allow_future_end: self.allow_future_end,
            partitions: self.partitions,
            memory_budget: self.memory_budget,
            scan: match self.scan.as_str() {
                "single" => ScanMode::Single,
                "selective" => ScanMode::Selective,
                _ => ScanMode::Auto,
            },
            verbose: global.verbose && !global.quiet,
            shard: self.shard,
            commit_when_complete: self.commit_when_complete,
        }
    }
}

pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    super::observed(
        global,
        &super::Run {
            command: "materialize",
            writes: !args.dry_run && args.emit_resp.is_none(),
            shard: args.shard,
            services: &args.services,
            metrics_file: args.metrics_file.as_deref(),
        },
        Global::load_repo,
        |repo, metrics| {
            let store = fsctl::online::open(&repo.online)?;
            let done =
                engine::materialize(repo, &*store, &args.options(global), global.progress())?;
            metrics.reports = done.reports.clone();
            report(
                global,
                "materialize",
                done,
                args.manifest_out.as_deref(),
                started,
            )
        },
    )
}

/// Prints a materialization's (or a commit's) reports, writes `--manifest-out`, and returns
/// the refusal, if any.
pub(super) fn report(
    global: &Global,
    command: &str,
    done: engine::Materialized,
    manifest_out: Option<&std::path::Path>,
    started: Instant,
) -> anyhow::Result<()> {
    if let Some(path) = manifest_out {
        let manifests: Vec<&Manifest> = done
            .reports
            .iter()
            .filter_map(|r| r.manifest.as_ref())
            .collect();
        let json = match manifests.as_slice() {
            [one] => serde_json::to_string_pretty(one)?,
            many => serde_json::to_string_pretty(many)?,
        };
        std::fs::write(path, json + "\n").map_err(|source| fsctl::Error::Output {
            what: "--manifest-out",
            path: path.to_owned(),
            source,
        })?;
    }
    if fsctl::progress::json_logs() && !global.quiet {
        for r in &done.reports {
            log_report(r);
        }
    }
    if global.json() {
        let doc = serde_json::json!({
            "command": command,
            "services": done.reports,
            "elapsed_ms": started.elapsed().as_millis() as u64,
        });
        match &done.refused {
            Some(e) => print_json(&failure_doc(e, doc))?,
            None => print_json(&doc)?,
        }
    } else if !global.quiet {
        print(&render_text(
            &done.reports,
            started.elapsed(),
            done.refused.is_some(),
        ))?;
    }
    match done.refused {
        Some(e) if global.json() => Err(Printed(e).into()),
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// With JSON logs: one line per service with its outcome and figures (the manifest left out).
fn log_report(r: &ServiceReport) {
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::to_value(r) else {
        return;
    };
    fields.remove("manifest");
    if let Some(m) = &r.manifest {
        fields.insert("as_of".into(), m.as_of.clone().into());
    }
    let status = fields
        .get("status")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .replace('_', " ");
    let message = format!("{}: snapshot {} {status}", r.service, r.snapshot);
    fsctl::progress::emit(fsctl::progress::Level::Info, &message, &message, fields);
}

fn render_text(reports: &[ServiceReport], took: Duration, refused: bool) -> String {
    let mut out = String::new();
    for r in reports {
        let shard = r.shard.map(|s| s.to_string()).unwrap_or_default();
        match r.status {
            Status::AlreadyCommitted => {
                let _ = writeln!(
                    out,
                    "{}: snapshot {} is already committed; nothing to do (use --force to rewrite)",
                    r.service, r.snapshot
                );
                continue;
            }
            Status::AlreadyRecorded if r.missing_shards.is_empty() => {
                let _ = writeln!(
                    out,
                    "{}: shard {shard} of snapshot {} is already recorded; nothing to do (use --force to rewrite)",
                    r.service, r.snapshot
                );
                continue;
            }
            _ => {}
        }
        let (verb, keys) = match r.status {
            Status::ShardRecorded | Status::AlreadyRecorded => (
                format!(
                    "shard {shard} recorded, not committed (`fsctl commit --shards {}` commits it)",
                    r.shard.map_or(1, |s| s.count)
                ),
                format!("keys {}", r.keys_written),
            ),
            Status::DryRun => (
                "dry run, nothing written".to_owned(),
                format!("keys to write {}", r.entities),
            ),
            Status::Emitted => (
                "RESP stream written, not committed to Redis".to_owned(),
                format!("keys {}", r.keys_written),
            ),
            _ if r.shard.is_some() => (
                format!(
                    "committed, from all {} shards (this was shard {shard})",
                    r.shard.map_or(1, |s| s.count)
                ),
                format!("keys {}", r.keys_written),
            ),
            _ => ("committed".to_owned(), format!("keys {}", r.keys_written)),
        };
        let _ = writeln!(out, "{}: snapshot {} {verb}", r.service, r.snapshot);
        if !r.missing_shards.is_empty() {
            let missing: Vec<String> = r.missing_shards.iter().map(u32::to_string).collect();
            let _ = writeln!(
                out,
                "  waiting for shard(s) {} before committing",
                missing.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "  fingerprint {}  entities {}  {keys}  bytes {}  null-key rows skipped {}  retries {}",
            r.fingerprint, r.entities, r.bytes_written, r.null_entity_rows, r.retries
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
        let _ = writeln!(out, "  phases {}", phases.join(", "));
    }
    if refused {
        let _ = writeln!(
            out,
            "failed after {:.2}s: a service was not committed (the error follows)",
            took.as_secs_f64()
        );
    } else {
        let _ = writeln!(out, "done in {:.2}s", took.as_secs_f64());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_shards_parse() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2gb"), Ok(2 << 30));
        assert_eq!(parse_size("2000000"), Ok(2_000_000));
        for bad in ["", "0", "-1G", "12Q", "G", "1000", "0.5"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(shard_from("1/4", None), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1", "a/b", "0/0", "0/5000", "auto/0"] {
            assert!(shard_from(bad, Some("0")).is_err(), "{bad}");
        }
        assert_eq!(
            shard_from("auto/4", Some("3")),
            Ok(Shard { index: 3, count: 4 })
        );
        assert!(
            shard_from("auto/4", None)
                .unwrap_err()
                .contains("JOB_COMPLETION_INDEX")
        );
        assert!(
            shard_from("auto/4", Some("4"))
                .unwrap_err()
                .contains("completions must equal N")
        );
        assert!(shard_from("auto/4", Some("x")).is_err());
    }
}
