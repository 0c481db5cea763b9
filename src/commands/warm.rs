//! `fsctl warm --top-n N`: before a deploy, the hottest entities get their vector with the hot
//! TTL. Each tier is reported once, on stdout, as soon as it is done, so a deploy script can
//! follow along.

use std::fmt::Write as _;
use std::path::PathBuf;

use fsctl::engine::warm::{TierReport, WarmOptions, warm};

use fsctl::progress::Level;

use super::{Global, print, print_json};

pub const HELP: &str = "\
Examples:
  fsctl warm --top-n 10000 --service realtime_scoring
  fsctl warm --top-n 100000 --from requests.parquet --tiers 1000,10000 --first-tier-only
  fsctl --format json warm --top-n 5000 --dry-run";

/// Before a deploy: give the most popular entities their vector with the hot TTL.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// How many of the most popular entities to warm
    #[arg(long, value_name = "N")]
    pub top_n: usize,
    /// Feature service to warm (repeatable; default: every service)
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// Popularity file (Parquet): join key columns plus a score, or a request log
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Score column in --from; without it, --from is a request log counted per entity
    #[arg(long, value_name = "COLUMN")]
    pub score_column: Option<String>,
    /// Tier sizes, hottest first (default 1000,10000,100000,...)
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    pub tiers: Vec<usize>,
    /// Stop after the first tier (a deploy can proceed once it is done)
    #[arg(long)]
    pub first_tier_only: bool,
    /// Report what would be done, write nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    super::observed(
        global,
        &super::Run {
            command: "warm",
            writes: !args.dry_run,
            shard: None,
            services: &args.services,
            metrics_file: None,
        },
        Global::load_repo,
        |repo, _| warm_repo(global, args, repo),
    )
}

fn warm_repo(global: &Global, args: &Args, repo: &fsctl::repo::Repo) -> anyhow::Result<()> {
    let store = fsctl::online::open(&repo.online)?;
    let opts = WarmOptions {
        top_n: args.top_n,
        services: args.services.clone(),
        from: args.from.clone(),
        score_column: args.score_column.clone(),
        tiers: args.tiers.clone(),
        first_tier_only: args.first_tier_only,
        dry_run: args.dry_run,
    };
    let text = !global.json() && !global.quiet;
    let dry = if args.dry_run { " [dry run]" } else { "" };
    // Feast's layout recomputes nothing: its absent entities have no hash in Redis.
    let absent = match repo.layout {
        fsctl::repo::OutputLayout::Fsctl => "absent from offline data",
        fsctl::repo::OutputLayout::Feast => "without a hash",
    };
    let mut on_tier = |service: &str, t: &TierReport| {
        if text {
            let _ = print(&format!(
                "{service} tier {} ({} entities){dry}: {} present ({} extended), {} computed, {} {absent}, {} ms\n",
                t.tier, t.requested, t.present, t.extended, t.computed, t.absent, t.ms
            ));
        }
    };
    let reports = warm(repo, &*store, &opts, global.progress(), &mut on_tier)?;
    if global.json() {
        return print_json(
            &serde_json::json!({"command": "warm", "dry_run": args.dry_run, "services": reports}),
        );
    }
    if !text {
        return Ok(());
    }
    let mut out = String::new();
    for r in &reports {
        for w in &r.warnings {
            let mut fields = serde_json::Map::new();
            fields.insert("service".into(), r.service.clone().into());
            fsctl::progress::emit(Level::Warn, &format!("warning: {w}"), w, fields);
        }
        let _ = writeln!(
            out,
            "{}: {}, {} tier{} warmed{dry}",
            r.service,
            if r.snapshot.is_empty() {
                "Feast's hashes".to_owned()
            } else {
                format!("snapshot {}", r.snapshot)
            },
            r.tiers.len(),
            if r.tiers.len() == 1 { "" } else { "s" }
        );
        if !r.absent_entities.is_empty() {
            let shown: Vec<&str> = r
                .absent_entities
                .iter()
                .take(10)
                .map(String::as_str)
                .collect();
            let more = r.absent_entities.len().saturating_sub(10);
            let _ = writeln!(
                out,
                "  absent: {}{}",
                shown.join(", "),
                if more > 0 {
                    format!(" (+{more} more)")
                } else {
                    String::new()
                }
            );
        }
    }
    print(&out)
}
