//! `fsctl status`: each service's committed snapshot as the store holds it (as-of, age, keys,
//! bytes), as text, JSON or Prometheus text; exits 1 when one is stale or missing, so that a
//! monitoring job or CI alerts on the store itself.

use std::fmt::Write as _;

use fsctl::base::time::now_us;
use fsctl::engine::status::{prometheus, staleness, status};

use super::{Global, OutputFormat, Printed, failure_doc, print, print_json};

pub const HELP: &str = "\
Examples:
  fsctl status
  fsctl status --service realtime_scoring --max-age 2h
  fsctl --format prometheus status > /var/lib/node_exporter/textfile/fsctl.prom
  fsctl --format json status --max-age 1d

A service is stale when its committed snapshot's as-of (the window end) is older than --max-age,
or, without it, older than the snapshot's online_ttl (when its keys start to expire); one with
nothing committed is stale too. Prometheus text names the gauges fsctl_snapshot_*
(as_of_timestamp_seconds, age_seconds, max_age_seconds, stale, present, entities, keys, bytes).";

/// Each service's committed snapshot: as-of, age, keys, bytes; exit 1 when one is stale
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Feature service (repeatable; default: every service)
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// Oldest acceptable as-of age, e.g. 2h [default: each snapshot's online_ttl]
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    pub max_age: Option<std::time::Duration>,
}

pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let repo = global.load_repo()?;
    let store = fsctl::online::open(&repo.online)?;
    let services = fsctl::engine::select_services(&repo, &args.services)?;
    let max_age_ms = args.max_age.map(|d| d.as_millis() as i64);
    let statuses = status(&repo, &*store, &services, max_age_ms, now_us())?;
    let stale = staleness(&statuses);
    match global.format {
        OutputFormat::Json => {
            let doc = serde_json::json!({"command": "status", "services": statuses});
            match stale {
                Some(e) => {
                    print_json(&failure_doc(&e, doc))?;
                    return Err(Printed(e).into());
                }
                None => print_json(&doc)?,
            }
        }
        OutputFormat::Prometheus => print(&prometheus(&repo.project, &statuses))?,
        OutputFormat::Text if !global.quiet => {
            let mut out = String::new();
            for s in &statuses {
                let state = if s.fresh { "fresh" } else { "STALE" };
                match (&s.snapshot, &s.as_of, s.age_s) {
                    (Some(id), Some(as_of), Some(age)) => {
                        let _ = writeln!(
                            out,
                            "{:<28} {state:<5}  snapshot {id}  as of {as_of}  age {}  (max {})  {} entities  {} keys  {} bytes",
                            s.service,
                            fsctl::repo::format_duration_ms(age.max(0) * 1000),
                            fsctl::repo::format_duration_ms(s.max_age_s.unwrap_or(0) * 1000),
                            s.entities,
                            s.keys,
                            s.bytes
                        );
                    }
                    _ => {
                        let _ = writeln!(out, "{:<28} {state:<5}  nothing committed", s.service);
                    }
                }
            }
            print(&out)?;
        }
        OutputFormat::Text => {}
    }
    match stale {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
