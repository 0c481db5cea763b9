//! `fsctl snapshots`: each service's history, with every snapshot's place in the lifecycle.

use std::fmt::Write as _;

use fsctl::engine::lifecycle::snapshots;

use super::{Global, print, print_json};

pub const HELP: &str = "\
Examples:
  fsctl snapshots
  fsctl snapshots --service realtime_scoring
  fsctl --format json snapshots --service realtime_scoring

States: current; kept (alive, a rollback target); retired (readable until retire_grace has
passed); expired (its data is gone); leftover (keys of a run that never committed, retired by
the next run or `fsctl gc`).";

/// List the snapshots of each service: id, as_of, committed_at, entities, keys, bytes, state
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Feature service (repeatable; default: every service)
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
}

pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let repo = global.load_snapshot_repo("snapshots")?;
    let store = fsctl::online::open(&repo.online)?;
    let mut listed = Vec::new();
    for s in fsctl::engine::select_services(&repo, &args.services)? {
        listed.push((s.name.clone(), snapshots(&repo, &*store, s)?));
    }
    if global.json() {
        let services: Vec<serde_json::Value> = listed
            .iter()
            .map(|(s, snaps)| serde_json::json!({"service": s, "snapshots": snaps}))
            .collect();
        return print_json(&serde_json::json!({"command": "snapshots", "services": services}));
    }
    let mut out = String::new();
    for (service, snaps) in &listed {
        let _ = writeln!(out, "{service}:");
        if snaps.is_empty() {
            let _ = writeln!(out, "  (nothing committed)");
        }
        for s in snaps {
            let state = serde_json::to_value(s.state).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<10} {:<9} as of {:<21} committed {:<25} {:>9} entities {:>9} keys {:>11} bytes",
                s.snapshot,
                state.as_str().unwrap_or("?"),
                s.as_of.as_deref().unwrap_or("-"),
                s.committed_at.as_deref().unwrap_or("-"),
                s.entities,
                s.keys,
                s.bytes
            );
            if let (Some(at), Some(from)) = (&s.restored_at, &s.restored_from) {
                let _ = writeln!(
                    out,
                    "  {:<10} made current again at {at} by a rollback from {from}",
                    ""
                );
            }
            if let Some(at) = &s.rolled_back_at {
                let _ = writeln!(out, "  {:<10} rolled back from at {at}", "");
            }
        }
    }
    print(&out)
}
