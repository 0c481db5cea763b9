//! `fsctl validate` (the CI gate) and `fsctl lock`: check definitions, the offline data they can
//! reach, schema fingerprints against `fsctl.lock`, data-quality checks, and the live store.
//! Every problem is reported, not only the first.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::Global;
use crate::assemble::check_view;
use crate::error::Error;
use crate::offline::{Partition, ViewScan, Window};
use crate::online::{KeySpace, Reader, RedisTarget};
use crate::repo::{self, Finding, Repo, Severity};
use crate::time::{now_us, parse_instant_us};
use crate::vector::{SchemaFingerprint, decode};

pub const LOCK_FILE: &str = "fsctl.lock";

/// Check the feature repo, its offline data and (optionally) the live store.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Fail when a service's fingerprint differs from fsctl.lock (rewrite it with `fsctl lock`)
    #[arg(long)]
    pub locked: bool,
    /// Evaluate the data-quality checks on the latest rows of the window (reads the data)
    #[arg(long)]
    pub data: bool,
    /// Window end for --data (default: now)
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// Also check the live Redis: committed manifests match, sampled vectors decode
    #[arg(long)]
    pub online: bool,
    /// Vectors to sample per service with --online
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub sample: usize,
}

/// Rewrite fsctl.lock with the current schema fingerprints.
#[derive(Debug, Clone, clap::Args)]
pub struct LockArgs {}

#[derive(Debug, Serialize)]
struct ServiceSummary {
    service: String,
    fingerprint: String,
    features: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    online: Option<OnlineSummary>,
}

#[derive(Debug, Serialize)]
struct OnlineSummary {
    snapshot: String,
    age_s: i64,
    keys_written: u64,
    sampled: usize,
}

pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let dir = repo::locate(global.repo.as_deref());
    let file = dir.join(repo::REPO_FILE);
    let mut findings = Vec::new();
    let mut services = Vec::new();
    match Repo::load_findings(&dir) {
        Err(f) => findings.extend(f),
        Ok(repo) => {
            findings.extend(check_offline(&repo, args)?);
            if args.locked {
                findings.extend(check_lock(&repo, &dir));
            }
            for s in &repo.services {
                services.push(ServiceSummary {
                    service: s.name.clone(),
                    fingerprint: repo.fingerprint(s).to_string(),
                    features: s.features.len(),
                    online: None,
                });
            }
            if args.online {
                check_online(&repo, args.sample, &file, &mut services, &mut findings)?;
            }
        }
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if global.json() {
        let doc = serde_json::json!({
            "command": "validate",
            "ok": errors == 0,
            "findings": findings,
            "services": services,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render_text(&findings, &services, errors));
    }
    if errors > 0 {
        return Err(anyhow::Error::new(Error::Refused(format!(
            "validate found {errors} problem{}",
            plural(errors)
        ))));
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn render_text(findings: &[Finding], services: &[ServiceSummary], errors: usize) -> String {
    let mut out = String::new();
    for f in findings {
        let _ = writeln!(out, "{f}");
    }
    if !services.is_empty() {
        let _ = writeln!(out, "services:");
        for s in services {
            let _ = write!(
                out,
                "  {:<28} {}  {} features",
                s.service, s.fingerprint, s.features
            );
            if let Some(o) = &s.online {
                let _ = write!(
                    out,
                    "  online: snapshot {} age {}s, {} keys, {} sampled",
                    o.snapshot, o.age_s, o.keys_written, o.sampled
                );
            }
            out.push('\n');
        }
    }
    if errors == 0 {
        let _ = writeln!(out, "ok: no problems found");
    }
    out
}

/// Offline data: files exist and are Parquet, columns exist and coerce; with --data, checks.
fn check_offline(repo: &Repo, args: &Args) -> Result<Vec<Finding>, Error> {
    let end_us = crate::time::end_or_now(args.end.as_deref())?;
    let mut findings = Vec::new();
    for (vi, view) in repo.views.iter().enumerate() {
        let all: Vec<usize> = (0..view.features.len()).collect();
        let window = Window {
            start_us: end_us - view.ttl_ms * 1000,
            end_us,
        };
        match ViewScan::plan_collect(repo, vi, all, window) {
            Err(problems) => {
                for p in problems {
                    let mut f = Finding::error(
                        p.code,
                        &p.file,
                        format!("view `{}`: {}", view.name, p.message),
                    );
                    if let Some(c) = p.column {
                        f = f.named(c);
                    }
                    findings.push(f);
                }
            }
            Ok(scan) if args.data => {
                let rows = scan.run(Partition::ALL, None, 0, &|_| {})?;
                for failure in check_view(repo, &scan, &rows) {
                    let name = failure
                        .feature
                        .clone()
                        .unwrap_or_else(|| failure.view.clone());
                    let f = Finding::error(
                        "check-failed",
                        repo.dir.join(repo::REPO_FILE),
                        failure.to_string(),
                    )
                    .named(name);
                    findings.push(f);
                }
            }
            Ok(_) => {}
        }
    }
    Ok(findings)
}

/// `fsctl.lock`: one block per service, its fingerprint and the canonical layout lines, so a
/// change shows up in review as a readable diff.
fn render_lock(repo: &Repo) -> String {
    let mut out = String::from(
        "# fsctl.lock: schema fingerprints of the feature services. Rewrite with `fsctl lock`.\n",
    );
    for s in &repo.services {
        let (keys, features) = repo.layout(s);
        let _ = writeln!(out, "\n[{}]\nfingerprint = {}", s.name, repo.fingerprint(s));
        for line in SchemaFingerprint::canonical_text(&keys, &features)
            .lines()
            .skip(1)
        {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// Parses a lock file into service -> (fingerprint, layout lines).
fn parse_lock(text: &str) -> BTreeMap<String, (String, Vec<String>)> {
    let mut out: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.to_owned());
            out.entry(name.to_owned()).or_default();
        } else if let Some(name) = &current {
            let entry = out.get_mut(name).expect("inserted");
            match line.strip_prefix("fingerprint = ") {
                Some(fp) => entry.0 = fp.to_owned(),
                None => entry.1.push(line.to_owned()),
            }
        }
    }
    out
}

fn check_lock(repo: &Repo, dir: &Path) -> Vec<Finding> {
    let path = dir.join(LOCK_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return vec![Finding::error(
            "no-lock-file",
            &path,
            format!("{LOCK_FILE} not found: run `fsctl lock` and commit it"),
        )];
    };
    let locked = parse_lock(&text);
    let mut findings = Vec::new();
    for s in &repo.services {
        let fingerprint = repo.fingerprint(s).to_string();
        let (keys, features) = repo.layout(s);
        let lines: Vec<String> = SchemaFingerprint::canonical_text(&keys, &features)
            .lines()
            .skip(1)
            .map(str::to_owned)
            .collect();
        match locked.get(&s.name) {
            None => findings.push(
                Finding::error(
                    "unlocked-service",
                    &path,
                    format!(
                        "service `{}` is not in {LOCK_FILE}: run `fsctl lock`",
                        s.name
                    ),
                )
                .named(&s.name),
            ),
            Some((fp, _)) if *fp == fingerprint => {}
            Some((fp, old)) => {
                let removed: Vec<&String> = old.iter().filter(|l| !lines.contains(l)).collect();
                let added: Vec<&String> = lines.iter().filter(|l| !old.contains(l)).collect();
                let mut what = Vec::new();
                if !removed.is_empty() {
                    what.push(format!(
                        "was {}",
                        removed
                            .iter()
                            .map(|l| l.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                if !added.is_empty() {
                    what.push(format!(
                        "now {}",
                        added
                            .iter()
                            .map(|l| l.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                if what.is_empty() {
                    what.push("the feature order changed".into());
                }
                findings.push(
                    Finding::error(
                        "schema-changed",
                        &path,
                        format!(
                            "service `{}` changed fingerprint {fp} -> {fingerprint} without `fsctl lock` ({}); \
                             serving must accept the new layout before this lands",
                            s.name,
                            what.join("; ")
                        ),
                    )
                    .named(&s.name),
                );
            }
        }
    }
    for name in locked.keys().filter(|n| repo.service(n).is_none()) {
        findings.push(
            Finding::error(
                "schema-changed",
                &path,
                format!(
                    "service `{name}` is in {LOCK_FILE} but no longer defined: run `fsctl lock`"
                ),
            )
            .named(name.clone())
            .warning(),
        );
    }
    findings
}

fn check_online(
    repo: &Repo,
    sample: usize,
    file: &Path,
    services: &mut [ServiceSummary],
    findings: &mut Vec<Finding>,
) -> Result<(), Error> {
    let target = RedisTarget::from_store(&repo.online)?;
    for summary in services.iter_mut() {
        let s = repo
            .service(&summary.service)
            .expect("summaries come from the repo");
        let keys = KeySpace::new(&repo.online.key_prefix, &repo.project, &s.name);
        let mut reader = match Reader::connect(&target, keys.clone()) {
            Ok(r) => r,
            Err(e) => {
                findings.push(Finding::error("online-unreachable", file, e.to_string()));
                return Ok(());
            }
        };
        let pinned = match reader.pin(None) {
            Ok(p) => p,
            Err(e) => {
                findings
                    .push(Finding::error("online-no-snapshot", file, e.to_string()).named(&s.name));
                continue;
            }
        };
        let expected = repo.fingerprint(s);
        if pinned.fingerprint != expected {
            findings.push(
                Finding::error(
                    "online-fingerprint",
                    file,
                    format!(
                        "service `{}`: committed snapshot {} has fingerprint {}, the repo's is {expected}: materialize before deploying this definition",
                        s.name, pinned.committed.snapshot, pinned.fingerprint
                    ),
                )
                .named(&s.name),
            );
        }
        let prefix = keys.data_prefix(&pinned.committed.snapshot);
        let mut sampled = 0;
        let mut cursor = 0u64;
        let con = reader.connection();
        'scan: loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query(con)
                .map_err(|e| target.explain(&e, "SCAN"))?;
            for key in batch {
                if sampled >= sample {
                    break 'scan;
                }
                let raw: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&key)
                    .query(con)
                    .map_err(|e| target.explain(&e, "GET"))?;
                let Some(raw) = raw else { continue };
                sampled += 1;
                let name = String::from_utf8_lossy(&key).into_owned();
                match decode(&raw) {
                    Err(e) => findings.push(
                        Finding::error(
                            "online-corrupt",
                            file,
                            format!("{name}: cannot decode: {e}"),
                        )
                        .named(name),
                    ),
                    Ok(v) if v.fingerprint != pinned.fingerprint => findings.push(
                        Finding::error(
                            "online-corrupt",
                            file,
                            format!(
                                "{name}: fingerprint {} differs from the manifest's {}",
                                v.fingerprint, pinned.fingerprint
                            ),
                        )
                        .named(name),
                    ),
                    Ok(_) => {}
                }
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let manifest = pinned
            .committed
            .manifest
            .as_ref()
            .expect("pinned has a manifest");
        let committed_us = parse_instant_us(&manifest.committed_at).unwrap_or(0);
        summary.online = Some(OnlineSummary {
            snapshot: pinned.committed.snapshot.clone(),
            age_s: (now_us() - committed_us) / 1_000_000,
            keys_written: manifest.keys_written,
            sampled,
        });
    }
    Ok(())
}

pub fn run_lock(global: &Global, _args: &LockArgs) -> anyhow::Result<()> {
    let dir = repo::locate(global.repo.as_deref());
    let repo = Repo::load(&dir)?;
    let path = dir.join(LOCK_FILE);
    std::fs::write(&path, render_lock(&repo))
        .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?;
    if !global.quiet {
        println!(
            "wrote {} ({} service{})",
            path.display(),
            repo.services.len(),
            plural(repo.services.len())
        );
    }
    Ok(())
}
