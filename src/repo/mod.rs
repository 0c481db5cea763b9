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
        let raw: raw::RawRepo = serde_saphyr::from_str(&text).map_err(|e| {
            let plain = e.without_snippet();
            let mut f = Finding::error("invalid-yaml", &file, yaml_message(&plain.to_string()));
            if let Some(l) = plain.location() {
                f = f.at(l.line(), l.column());
            }
            vec![f]
        })?;
        resolve::resolve(raw, dir, &file)
    }
}

/// serde-saphyr appends its own location; ours goes in front, so strip the duplicate.
fn yaml_message(message: &str) -> String {
    let trimmed = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    trimmed.trim().to_owned()
}
