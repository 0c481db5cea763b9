//! `fsctl rollback`: serve a kept snapshot again, at once.

use fsctl::engine::lifecycle::rollback;

use super::{Global, print, print_json};

pub const HELP: &str = "\
Examples:
  fsctl rollback --service realtime_scoring             back to the snapshot before current
  fsctl rollback --service realtime_scoring --to 0a1b2c3d
  fsctl snapshots --service realtime_scoring            to see the kept ones

Only a kept snapshot (materialization.keep_snapshots) whose keys are all there can become
current again; a retired or expired one is refused. The flip is recorded in the history like a
commit, and in the manifests (`snapshots` shows it); commit times are kept. Without --to, the
target is the snapshot committed before the one rolled back from, never one a rollback already
left: running the same rollback twice (a retried task) is a no-op, as is --to <current>. The next scheduled run still commits as usual: its as_of is compared with the snapshot
rolled back to, so a newer window commits; rerunning the job of the snapshot rolled back from
is a no-op (it is committed), so go back to it with `rollback --to`.";

/// Flip `current` back to a kept snapshot (default: the one before current), under the run lock
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Feature service to roll back
    #[arg(long)]
    pub service: String,
    /// Snapshot to make current (default: the one committed before current)
    #[arg(long, value_name = "ID")]
    pub to: Option<String>,
}

pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    super::observed(
        global,
        &super::Run {
            command: "rollback",
            writes: true,
            shard: None,
            services: std::slice::from_ref(&args.service),
            metrics_file: None,
        },
        |g| g.load_snapshot_repo("rollback"),
        |repo, metrics| {
            let service = fsctl::engine::service(repo, &args.service)?;
            let store = fsctl::online::open(&repo.online)?;
            let done = rollback(repo, &*store, service, args.to.as_deref())?;
            if let Ok(us) = fsctl::base::time::parse_instant_us(&done.as_of) {
                metrics.current.push((done.service.clone(), us / 1000));
            }
            render(global, &done)
        },
    )
}

fn render(global: &Global, done: &fsctl::engine::lifecycle::RolledBack) -> anyhow::Result<()> {
    if global.json() {
        return print_json(&serde_json::json!({"command": "rollback", "rolled_back": done}));
    }
    if global.quiet {
        return Ok(());
    }
    if !done.changed {
        return print(&format!(
            "{}: current is already {} (as of {}); nothing to do\n",
            done.service, done.to, done.as_of
        ));
    }
    print(&format!(
        "{}: current is now {} (as of {}), was {}; {} keys sampled, all present\n",
        done.service, done.to, done.as_of, done.from, done.sampled
    ))
}
