//! `fsctl.lock`: one block per service, its fingerprint and the canonical layout lines, so a
//! schema change shows up in review as a readable diff, and `validate --locked` fails on one
//! that nobody acknowledged.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::base::error::{Error, Result};
use crate::base::finding::Finding;
use crate::repo::Repo;
use crate::vector::SchemaFingerprint;

pub const LOCK_FILE: &str = "fsctl.lock";

/// The canonical layout lines of a service (the fingerprint's text without its first line).
fn layout_lines(repo: &Repo, service: &crate::repo::Service) -> Vec<String> {
    let (keys, features) = repo.layout(service);
    SchemaFingerprint::canonical_text(&keys, &features)
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

fn render(repo: &Repo) -> String {
    let mut out = String::from(
        "# fsctl.lock: schema fingerprints of the feature services. Rewrite with `fsctl lock`.\n",
    );
    for s in &repo.services {
        let _ = writeln!(out, "\n[{}]\nfingerprint = {}", s.name, repo.fingerprint(s));
        for line in layout_lines(repo, s) {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// Writes `fsctl.lock` into the repo directory; returns its path.
pub fn write(repo: &Repo) -> Result<PathBuf> {
    let path = repo.dir.join(LOCK_FILE);
    std::fs::write(&path, render(repo)).map_err(|source| Error::Output {
        what: "lock file",
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Parses a lock file into service -> (fingerprint, layout lines).
fn parse(text: &str) -> BTreeMap<String, (String, Vec<String>)> {
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

/// Compares the fingerprints of `services` (the ones that resolved) with the lock file in `dir`.
pub(crate) fn check(repo: &Repo, services: &[usize], dir: &Path) -> Vec<Finding> {
    let path = dir.join(LOCK_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return vec![Finding::error(
            "no-lock-file",
            &path,
            format!("{LOCK_FILE} not found: run `fsctl lock` and commit it"),
        )];
    };
    let locked = parse(&text);
    let mut findings = Vec::new();
    for s in services.iter().map(|&i| &repo.services[i]) {
        let fingerprint = repo.fingerprint(s).to_string();
        let lines = layout_lines(repo, s);
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
                let removed: Vec<&str> = old
                    .iter()
                    .filter(|l| !lines.contains(l))
                    .map(String::as_str)
                    .collect();
                let added: Vec<&str> = lines
                    .iter()
                    .filter(|l| !old.contains(l))
                    .map(String::as_str)
                    .collect();
                let mut what = Vec::new();
                if !removed.is_empty() {
                    what.push(format!("was {}", removed.join(", ")));
                }
                if !added.is_empty() {
                    what.push(format!("now {}", added.join(", ")));
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
