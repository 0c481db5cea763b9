//! `fsctl commit`: commit a sharded run once all its shards are recorded (SPEC §3.3).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fsctl::engine::{self, CommitOptions};

use super::Global;

pub const HELP: &str = "\
Examples:
  fsctl materialize --end 2025-11-23T00:00:00Z --shard 0/4     (one per shard, on any machine)
  fsctl commit --service realtime_scoring --end 2025-11-23T00:00:00Z --shards 4

Pass the same --end (and --start, if any) as the shards: the commit plans the job again to
know its snapshot, checks that all N shards recorded that snapshot, sums their manifests, runs
the quality checks on the totals and flips current once. A missing shard, or one that recorded
another window, blocks the commit and is named; rerun that shard and commit again.";

/// Commit a sharded run: check all N shard manifests, sum them, run the quality gate, flip current
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Feature service to commit (repeatable; default: every service)
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// The window start the shards were run with
    #[arg(long, value_name = "TIME", value_parser = super::parse_time)]
    pub start: Option<i64>,
    /// The window end the shards were run with (required: it names the snapshot)
    #[arg(long, value_name = "TIME", value_parser = super::parse_end)]
    pub end: i64,
    /// How many shards the job was split into
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub shards: u32,
    /// Accept an --end more than 5 minutes ahead of this machine's clock
    #[arg(long)]
    pub allow_future_end: bool,
    /// Also write the manifest (JSON) to FILE
    #[arg(long, value_name = "FILE")]
    pub manifest_out: Option<PathBuf>,
    /// Write the run's metrics to FILE as Prometheus text (a node-exporter textfile), also
    /// when it fails; a service's last success is kept from the file until it commits again
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Commit again a snapshot that is already committed, and allow moving `current` back in time
    #[arg(long)]
    pub force: bool,
    /// Wait up to this long for another run's lock
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    pub wait_lock: Option<Duration>,
    /// Commit even when the shards hold zero entities
    #[arg(long)]
    pub allow_empty: bool,
    /// Commit even when a data-quality check fails on the totals
    #[arg(long)]
    pub skip_checks: bool,
}

pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    super::observed(
        global,
        &super::Run {
            command: "commit",
            writes: true,
            shard: None,
            services: &args.services,
            metrics_file: args.metrics_file.as_deref(),
        },
        Global::load_repo,
        |repo, metrics| {
            let store = fsctl::online::open(&repo.online)?;
            let opts = CommitOptions {
                services: args.services.clone(),
                start_us: args.start,
                end_us: Some(args.end),
                shards: args.shards,
                force: args.force,
                wait_lock: args.wait_lock.unwrap_or_default(),
                allow_empty: args.allow_empty,
                skip_checks: args.skip_checks,
                allow_future_end: args.allow_future_end,
            };
            let done = engine::commit(repo, &*store, &opts, global.progress())?;
            metrics.reports = done.reports.clone();
            super::materialize::report(
                global,
                "commit",
                done,
                args.manifest_out.as_deref(),
                started,
            )
        },
    )
}
