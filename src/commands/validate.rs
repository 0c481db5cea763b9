//! `fsctl validate`: the CI gate, every finding in one run.

use std::fmt::Write as _;

use fsctl::engine::validate::{ValidateOptions, Validation, validate};

use super::{Global, Printed, failure_doc, print, print_json};

pub const HELP: &str = "\
Examples:
  fsctl validate                     definitions and the offline data they reach
  fsctl validate --locked --data     also the schema lock and the data-quality checks
  fsctl --format json validate --online --sample 50";

/// Check definitions, offline data, schema lock, quality checks and the live store (for CI).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Fail when a service's fingerprint differs from fsctl.lock (rewrite it with `fsctl lock`)
    #[arg(long)]
    pub locked: bool,
    /// Evaluate the data-quality checks on the latest rows of the window (reads the data)
    #[arg(long)]
    pub data: bool,
    /// Window end for --data (default: now)
    #[arg(long, value_name = "TIME", value_parser = super::parse_time)]
    pub end: Option<i64>,
    /// Also check the live Redis: committed manifests match, sampled vectors decode
    #[arg(long)]
    pub online: bool,
    /// Vectors to sample per service with --online
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub sample: usize,
}

pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let opts = ValidateOptions {
        locked: args.locked,
        data: args.data,
        end_us: args.end,
        online: args.online,
        sample: args.sample,
    };
    let v = validate(&global.repo_dir(), &opts)?;
    let errors = v.errors();
    let failed = (errors > 0).then_some(fsctl::Error::ValidationFailed {
        errors,
        definitions: v.definition_errors > 0,
    });
    if global.json() {
        let doc = serde_json::json!({
            "command": "validate",
            "ok": errors == 0,
            "findings": v.findings,
            "services": v.services,
        });
        return match failed {
            Some(e) => {
                print_json(&failure_doc(&e, doc))?;
                Err(Printed(e).into())
            }
            None => print_json(&doc),
        };
    }
    print(&render_text(&v))?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn render_text(v: &Validation) -> String {
    let mut out = String::new();
    for f in &v.findings {
        let _ = writeln!(out, "{f}");
    }
    if !v.services.is_empty() {
        let _ = writeln!(out, "services:");
        for s in &v.services {
            let _ = write!(
                out,
                "  {:<28} {}  {} features",
                s.service, s.fingerprint, s.features
            );
            if let Some(o) = &s.online {
                let _ = write!(
                    out,
                    "  online: snapshot {} age {}s, {} keys, {} sampled; {} snapshot(s) alive, {} bytes",
                    o.snapshot,
                    o.age_s,
                    o.keys_written,
                    o.sampled,
                    o.snapshots_alive,
                    o.bytes_alive
                );
            }
            out.push('\n');
        }
    }
    if v.errors() == 0 {
        let _ = writeln!(out, "ok: no problems found");
    }
    out
}
