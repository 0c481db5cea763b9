//! The feature repo: `feature_store.yaml` parsed (with line/column for every error), resolved
//! and checked. `Repo::load` is the way in for a run; `load_all` hands `validate` every finding
//! together with whatever resolved.

mod duration;
mod model;
mod raw;
mod resolve;

use std::path::{Path, PathBuf};

pub use duration::{format_duration_ms, parse_duration_ms};
pub use model::*;
pub use resolve::default_value;

use crate::base::error::Error;
use crate::base::finding::Finding;

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

/// Everything a look at the repo found: the resolved repo (when the YAML parsed at all, even
/// with findings), the findings, and which views and services resolved without one.
#[derive(Debug)]
pub struct Loaded {
    pub repo: Option<Repo>,
    pub findings: Vec<Finding>,
    /// Per view of `repo`: resolved with no finding, itself, its entity and its source.
    pub sound_views: Vec<bool>,
    /// Per service of `repo`: resolved with no finding, and every view of it sound.
    pub sound_services: Vec<bool>,
}

/// Reads and resolves `{dir}/feature_store.yaml`, collecting every finding. Fails only when
/// there is no file to read (a wrong `--repo`), which is a usage error everywhere.
pub fn load_all(dir: &Path) -> Result<Loaded, Error> {
    let file = dir.join(REPO_FILE);
    let text = std::fs::read_to_string(&file).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            format!("no {REPO_FILE} here (use --repo DIR to point at the feature repo)")
        } else {
            format!("cannot read {REPO_FILE}: {e}")
        };
        Error::config(format!("{}: {why}", file.display()))
    })?;
    let (raw, mut findings) = parse_all_unknown_keys(&text, &file);
    let Some(raw) = raw else {
        return Ok(Loaded {
            repo: None,
            findings,
            sound_views: Vec::new(),
            sound_services: Vec::new(),
        });
    };
    let resolved = resolve::resolve(raw, dir, &file);
    findings.extend(resolved.findings);
    Ok(Loaded {
        repo: Some(resolved.repo),
        findings,
        sound_views: resolved.sound_views,
        sound_services: resolved.sound_services,
    })
}

impl Repo {
    /// Reads and resolves `{dir}/feature_store.yaml`; any finding is an error.
    pub fn load(dir: &Path) -> Result<Repo, Error> {
        let loaded = load_all(dir)?;
        match loaded.repo {
            Some(repo) if loaded.findings.is_empty() => Ok(repo),
            _ => Err(Error::Definition {
                findings: loaded.findings,
            }),
        }
    }
}

/// Parses the YAML; on an unknown key, records it, then renames it to the key it most likely
/// misspells (or blanks its line when none is close) and parses again, so that one run
/// reports every misspelled key, not just the first (bounded, to stay cheap).
fn parse_all_unknown_keys(text: &str, file: &Path) -> (Option<raw::RawRepo>, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut text = text.to_owned();
    for _ in 0..50 {
        match serde_saphyr::from_str::<raw::RawRepo>(&text) {
            Ok(raw) => return (Some(raw), findings),
            Err(e) => {
                let plain = e.without_snippet();
                let mut message = yaml_message(&plain.to_string());
                let location = plain.location().map(|l| (l.line(), l.column()));
                let unknown = message.starts_with("unknown field");
                let name = unknown
                    .then(|| message.split('`').nth(1).map(str::to_owned))
                    .flatten();
                let guess = name.as_deref().and_then(|n| closest_key(n, &message));
                if let Some(g) = &guess {
                    message.push_str(&format!(" (did you mean `{g}`?)"));
                }
                let mut f = Finding::error("invalid-yaml", file, message);
                if let Some((line, col)) = location {
                    f = f.at(line, col);
                }
                if let Some(n) = &name {
                    f.code = "unknown-key";
                    f.name = Some(n.clone());
                }
                findings.push(f);
                match (location, name) {
                    (Some((line, col)), Some(name)) => {
                        let (line, col) = (line as usize, col as usize);
                        text = match guess {
                            Some(g) if !sibling_keys(&text, line, col).contains(&g.as_str()) => {
                                rename_key(&text, line, &name, &g)
                            }
                            _ => blank_line(&text, line),
                        }
                    }
                    _ => return (None, findings),
                }
            }
        }
    }
    (None, findings)
}

/// The expected key closest to `unknown` among those serde lists in `message` ("expected one
/// of a, b, c"), when one is close enough to be a typo of it.
fn closest_key(unknown: &str, message: &str) -> Option<String> {
    let expected = message.split("expected one of ").nth(1)?;
    expected
        .split(',')
        .map(|k| k.trim().trim_matches('`'))
        .filter(|k| !k.is_empty())
        .map(|k| (edit_distance(unknown, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k.to_owned())
}

/// Levenshtein distance over bytes (keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diag + usize::from(ca != cb));
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The keys of the mapping that holds the key at line `n`, column `col` (both 1-based): the
/// keys of its flow mapping `{a: 1, b: 2}` when the line has one, else the block keys at the
/// same column from the start of the mapping (`- ` marks an item's first key) to its end.
fn sibling_keys(text: &str, n: usize, col: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(line) = lines.get(n - 1) else {
        return Vec::new();
    };
    if let Some(open) = line.find('{') {
        return line[open + 1..]
            .split(',')
            .filter_map(|kv| kv.split(':').next().map(str::trim))
            .collect();
    }
    let mut keys = Vec::new();
    // Upwards to the mapping's first key, then downwards to its end.
    for l in lines[..n].iter().rev() {
        match key_of(l) {
            Some((at, item, key)) if at == col => {
                keys.push(key);
                if item {
                    break;
                }
            }
            Some((at, _, _)) if at < col => break,
            _ => {}
        }
    }
    for l in &lines[n..] {
        match key_of(l) {
            Some((at, false, key)) if at == col => keys.push(key),
            Some((at, item, _)) if at < col || (at == col && item) => break,
            _ => {}
        }
    }
    keys
}

/// The block-mapping key a line starts with: its 1-based column, whether it opens a list item
/// (`- key:`), and the key.
fn key_of(l: &str) -> Option<(usize, bool, &str)> {
    let trimmed = l.trim_start();
    let (item, rest) = match trimmed.strip_prefix("- ") {
        Some(rest) => (true, rest.trim_start()),
        None => (false, trimmed),
    };
    let key = rest.split(':').next()?.trim();
    let at = l.len() - rest.len() + 1;
    (!key.is_empty() && rest.contains(':') && !key.starts_with('#')).then_some((at, item, key))
}

/// Replaces the key `from` on line `n` (1-based) with `to`.
fn rename_key(text: &str, n: usize, from: &str, to: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == n {
                l.replacen(&format!("{from}:"), &format!("{to}:"), 1)
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_is_matched_to_the_key_it_misspells() {
        let msg = "unknown field `timestamp_feild`, expected one of name, path, timestamp_field, description";
        assert_eq!(
            closest_key("timestamp_feild", msg).as_deref(),
            Some("timestamp_field")
        );
        assert_eq!(closest_key("zzzzzz", msg), None);
        assert_eq!(edit_distance("tll", "ttl"), 1);
        assert_eq!(edit_distance("onlin_ttl", "online_ttl"), 1);
        assert_eq!(
            rename_key("a:\n  tll: 1d\n", 2, "tll", "ttl"),
            "a:\n  ttl: 1d"
        );
        let yaml = "views:\n  - name: v\n    ttl: 1d\n    tll: 2d\n    features: []\n  - name: w\n";
        assert_eq!(
            sibling_keys(yaml, 4, 5),
            vec!["tll", "ttl", "name", "features"]
        );
        assert_eq!(
            sibling_keys("  - {name: a, dtyp: int64}", 1, 16),
            vec!["name", "dtyp"]
        );
    }
}
