//! `fsctl gc`: retire what the lifecycle does not keep, now.

use std::fmt::Write as _;

use fsctl::engine::lifecycle::gc;

use super::{Global, print, print_json};

pub const HELP: &str = "\
Examples:
  fsctl gc --dry-run          what would be retired, and the keys and bytes it would free
  fsctl gc --service realtime_scoring

Retires committed snapshots beyond materialization.keep_snapshots and the leftovers of runs
that never committed (killed, refused, out of memory). Keys of a snapshot that was current
less than retire_grace ago expire when the grace ends; the others are deleted at once. Safe
beside a running materialize: it never touches that run's snapshot, and leaves the leftovers to
it (the run retires them after its commit).";

/// Retire snapshots that are not kept, and leftovers of runs that never committed
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Feature service (repeatable; default: every service)
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// Report what would be retired, change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    super::observed(
        global,
        &super::Run {
            command: "gc",
            writes: !args.dry_run,
            shard: None,
            services: &args.services,
            metrics_file: None,
        },
        |g| g.load_snapshot_repo("gc"),
        |repo, _| collect(global, args, repo),
    )
}

fn collect(global: &Global, args: &Args, repo: &fsctl::repo::Repo) -> anyhow::Result<()> {
    let services = fsctl::engine::select_services(repo, &args.services)?;
    let store = fsctl::online::open(&repo.online)?;
    let done = gc(repo, &*store, &services, args.dry_run)?;
    if global.json() {
        return print_json(&serde_json::json!({
            "command": "gc", "dry_run": args.dry_run, "services": done,
        }));
    }
    if global.quiet {
        return Ok(());
    }
    let verb = if args.dry_run {
        "would retire"
    } else {
        "retired"
    };
    let mut out = String::new();
    for c in &done {
        let r = &c.retired;
        let _ = write!(
            out,
            "{}: {verb} {} snapshot(s) [{}], {} keys, {} bytes",
            c.service,
            r.snapshots.len(),
            r.snapshots.join(", "),
            r.keys,
            r.bytes
        );
        if let Some(at) = &r.expire_at {
            let _ = write!(out, ", expiring by {at}");
        }
        if let Some(running) = &c.skipped_leftovers_of_running {
            let _ = write!(
                out,
                " (a run of snapshot {running} holds the lock: leftovers left to it)"
            );
        }
        out.push('\n');
    }
    print(&out)
}
