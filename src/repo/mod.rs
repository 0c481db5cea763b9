//! The feature repo: `feature_store.yaml` parsed (with line/column for every error), resolved
//! and checked. `Repo::load` is the only way in.

mod duration;
mod finding;
mod model;
mod raw;
mod resolve;

use std::path::{Path, PathBuf};

pub use duration::{format_duration_ms, parse_duration_ms};
pub use finding::{Finding, Severity};
pub use model::*;
pub use resolve::default_value;

use crate::error::Error;

pub const REPO_FILE: &str = "feature_store.yaml";

/// Picks the repo directory: the one given, else `feature_repo/`, else `.` when it holds a
/// `feature_store.yaml` (SPEC §4).
pub fn locate(given: Option<&Path>) -> PathBuf {
    if let Some(dir) = given {
        return dir.to_path_buf();
    }
    if Path::new("feature_repo").join(REPO_FILE).is_file() || !Path::new(REPO_FILE).is_file() {
        PathBuf::from("feature_repo")
    } else {
        PathBuf::from(".")
    }
}

impl Repo {
    /// Reads and resolves `{dir}/feature_store.yaml`.
    pub fn load(dir: &Path) -> Result<Repo, Error> {
        Self::load_findings(dir).map_err(Error::Repo)
    }

    /// Like `load`, but hands back every finding instead of an error (for `validate`).
    pub fn load_findings(dir: &Path) -> Result<Repo, Vec<Finding>> {
        let file = dir.join(REPO_FILE);
        let text = std::fs::read_to_string(&file).map_err(|e| {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                format!("no {REPO_FILE} here (use --repo DIR to point at the feature repo)")
            } else {
                format!("cannot read {REPO_FILE}: {e}")
            };
            vec![Finding::error("io", &file, why)]
        })?;
        let (raw, mut findings) = parse_all_unknown_keys(&text, &file);
        let raw = raw.ok_or_else(|| findings.clone())?;
        let resolved = resolve::resolve(raw, dir, &file);
        if findings.is_empty() {
            return resolved;
        }
        // Unknown keys were reported; add whatever else is wrong, then fail.
        if let Err(more) = resolved {
            findings.extend(more);
        }
        Err(findings)
    }
}

/// Parses the YAML; on an unknown key, records it, blanks that line and parses again, so one
/// run reports every misspelled key, not just the first (bounded, to stay cheap).
fn parse_all_unknown_keys(text: &str, file: &Path) -> (Option<raw::RawRepo>, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut text = text.to_owned();
    for _ in 0..50 {
        match serde_saphyr::from_str::<raw::RawRepo>(&text) {
            Ok(raw) => return (Some(raw), findings),
            Err(e) => {
                let plain = e.without_snippet();
                let message = yaml_message(&plain.to_string());
                let mut f = Finding::error("invalid-yaml", file, message.clone());
                let location = plain.location().map(|l| (l.line(), l.column()));
                if let Some((line, col)) = location {
                    f = f.at(line, col);
                }
                let unknown = message.starts_with("unknown field");
                if unknown {
                    f.code = "unknown-key";
                    f.name = message.split('`').nth(1).map(str::to_owned);
                }
                findings.push(f);
                match location {
                    Some((line, _)) if unknown => text = blank_line(&text, line as usize),
                    _ => return (None, findings),
                }
            }
        }
    }
    (None, findings)
}

/// Replaces line `n` (1-based) and the lines nested under it with empty lines.
fn blank_line(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let Some(first) = lines.get(n - 1) else {
        return text.to_owned();
    };
    let base = indent(first);
    let mut out = Vec::with_capacity(lines.len());
    let mut nested = true;
    for (i, l) in lines.iter().enumerate() {
        let under = i >= n && nested && (l.trim().is_empty() || indent(l) > base);
        if i == n - 1 || under {
            out.push("");
        } else {
            nested &= i < n;
            out.push(l);
        }
    }
    out.join("\n")
}

/// serde-saphyr appends its own location; ours goes in front, so strip the duplicate.
fn yaml_message(message: &str) -> String {
    let trimmed = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    trimmed.trim().to_owned()
}
