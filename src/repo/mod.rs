//! The feature repo: `feature_store.yaml` parsed (with line/column for every error), resolved
//! and checked. `Repo::load` is the way in for a run; `load_all` hands `validate` every finding
//! together with whatever resolved.

pub mod feast;
mod model;
mod parse;
mod raw;
mod resolve;

use std::path::{Path, PathBuf};

pub use crate::base::duration::{format_duration_ms, parse_duration_ms};
pub use model::*;
pub use resolve::{default_value, is_identifier, is_project_name};

use crate::base::error::Error;
use crate::base::finding::Finding;

pub const REPO_FILE: &str = "feature_store.yaml";

/// Picks the repo directory: the one given (or the directory of the `feature_store.yaml`
/// given), else `feature_repo/`, else `.` when it holds a `feature_store.yaml` (SPEC §4).
pub fn locate(given: Option<&Path>) -> PathBuf {
    if let Some(dir) = given {
        if dir.is_file() && dir.file_name() == Some(REPO_FILE.as_ref()) {
            return match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
        }
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
        let why = if dir.is_file() {
            format!("--repo takes the directory that holds {REPO_FILE}, not a file")
        } else if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "no {REPO_FILE} here (use --repo DIR to point at the feature repo, or `fsctl init` \
                 to start one)"
            )
        } else {
            format!("cannot read {REPO_FILE}: {e}")
        };
        let shown = if dir.is_file() { dir } else { &file };
        Error::config(format!("{}: {why}", shown.display()))
    })?;
    if feast::is_feast_project(&text) {
        return feast::load_all(dir, &text);
    }
    let mut parsed = parse::parse_all(&text, &file);
    let mut findings = std::mem::take(&mut parsed.findings);
    let Some(raw) = parsed.raw.take() else {
        return Ok(Loaded {
            repo: None,
            findings,
            sound_views: Vec::new(),
            sound_services: Vec::new(),
        });
    };
    let resolved = resolve::resolve(raw, dir, &file);
    // A placeholder stands where a key was missing or misshapen, which is already reported.
    findings.extend(
        resolved
            .findings
            .into_iter()
            .filter(|f| {
                !f.message.contains(parse::MISSING)
                    && f.name
                        .as_deref()
                        .is_none_or(|n| !n.contains(parse::MISSING))
                    && !refers_to_replaced(f, &parsed.top_replaced)
            })
            .map(|f| parsed.in_file(f)),
    );
    Ok(Loaded {
        repo: Some(resolved.repo),
        findings,
        sound_views: resolved.sound_views,
        sound_services: resolved.sound_services,
    })
}

/// Whether `f` is a dangling reference into a top-level list that had the wrong shape (and so
/// stands empty): the shape error is the finding, not each reference into the list.
fn refers_to_replaced(f: &Finding, replaced: &[String]) -> bool {
    f.code == "unknown-reference"
        && replaced.iter().any(|list| {
            let what = match list.as_str() {
                "entities" => "unknown entity",
                "sources" => "unknown source",
                "feature_views" => "unknown feature view",
                _ => return false,
            };
            f.message.contains(what)
        })
}

impl Repo {
    /// Reads and resolves `{dir}/feature_store.yaml`; any finding is an error.
    pub fn load(dir: &Path) -> Result<Repo, Error> {
        let loaded = load_all(dir)?;
        let errors: Vec<Finding> = loaded
            .findings
            .into_iter()
            .filter(|f| f.severity == crate::base::finding::Severity::Error)
            .collect();
        match loaded.repo {
            Some(repo) if errors.is_empty() => Ok(repo),
            _ => Err(Error::Definition { findings: errors }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key `feature_store.yaml` accepts, as a dotted path (`[]` for list items), read from
    /// the parser itself: a probe key put into each mapping makes serde list the mapping's keys.
    fn accepted_keys() -> Vec<String> {
        const BASE: &str = "project: p
@@
online_store: {@online_store@type: redis, url: \"redis://127.0.0.1:6379/0\"}
offline_store: {@offline_store@storage_options: {}}
materialization: {@materialization@ttl_jitter: 0.1}
entities:
  - {@entities[]@name: e, join_keys: [{@entities[].join_keys[]@name: id, dtype: int64}]}
sources:
  - {@sources[]@name: s, path: a.parquet, timestamp_field: ts}
feature_views:
  - {@feature_views[]@name: v, entities: [e], source: s, ttl: 1d, checks: {@feature_views[].checks@min_entities: 1}, features: [{@feature_views[].features[]@name: f, dtype: int64, checks: {@feature_views[].features[].checks@min: 0}}]}
feature_services:
  - {@feature_services[]@name: svc, features: [v]}
hot_entities: {@hot_entities@path: h.parquet}
";
        let markers: Vec<&str> = BASE.split('@').skip(1).step_by(2).collect();
        let listed = |message: &str| -> Vec<String> {
            // "unknown field `x`, expected one of a, b, c" (or "expected a", "expected a or b")
            let message = message.split(" at line ").next().unwrap_or_default();
            let expected = message.split(", expected ").nth(1).unwrap_or_default();
            let expected = expected.strip_prefix("one of ").unwrap_or(expected);
            expected
                .split(',')
                .flat_map(|k| k.split(" or "))
                .map(|k| k.trim().trim_matches('`').to_owned())
                .filter(|k| !k.is_empty())
                .collect()
        };
        let mut keys = Vec::new();
        for probe in &markers {
            let mut text = BASE.to_owned();
            for m in &markers {
                let with = match (m == probe, m.is_empty()) {
                    (true, true) => "zz_probe: 1",
                    (true, false) => "zz_probe: 1, ",
                    _ => "",
                };
                text = text.replacen(&format!("@{m}@"), with, 1);
            }
            let e = serde_saphyr::from_str::<raw::RawRepo>(&text).unwrap_err();
            let names = listed(&e.without_snippet().to_string());
            assert!(!names.is_empty(), "{probe}: {e}");
            for name in names {
                keys.push(if probe.is_empty() {
                    name
                } else {
                    format!("{probe}.{name}")
                });
            }
        }
        // A service's `{view, features}` item sits in an untagged enum, which names no keys.
        let e = serde_saphyr::from_str::<raw::RawSelect>("{zz_probe: 1, view: v, features: [f]}")
            .unwrap_err();
        for name in listed(&e.without_snippet().to_string()) {
            keys.push(format!("feature_services[].features[].{name}"));
        }
        keys
    }

    #[test]
    fn the_configuration_reference_names_every_key_the_parser_accepts() {
        let doc = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
        )
        .unwrap();
        let keys = accepted_keys();
        assert!(keys.len() > 50, "{keys:?}");
        for needle in [
            "online_store.password_file",
            "feature_services[].features[].view",
        ] {
            assert!(
                keys.iter().any(|k| k == needle),
                "{needle} not probed: {keys:?}"
            );
        }
        let missing: Vec<&String> = keys
            .iter()
            .filter(|k| !doc.contains(&format!("| `{k}` |")))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/configuration.md has no row for {missing:?}"
        );
    }

    #[test]
    fn every_yaml_example_in_the_docs_is_a_valid_repo() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut checked = 0;
        for doc in ["docs/configuration.md", "docs/contract.md", "README.md"] {
            let text = std::fs::read_to_string(root.join(doc)).unwrap();
            for block in text.split("```yaml\n").skip(1) {
                let yaml = block.split("```").next().unwrap();
                let dir = tempfile::tempdir().unwrap();
                std::fs::write(dir.path().join(REPO_FILE), yaml).unwrap();
                let loaded = load_all(dir.path()).unwrap();
                let errors: Vec<String> = loaded
                    .findings
                    .iter()
                    .filter(|f| f.severity == crate::base::finding::Severity::Error)
                    .map(ToString::to_string)
                    .collect();
                assert!(
                    errors.is_empty(),
                    "{doc}: an example does not validate: {errors:#?}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 2, "the docs lost their examples");
    }
}
