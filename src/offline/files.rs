//! Which files a source reads: one file, every `*.parquet` below a directory, or a glob —
//! always sorted by path, because scan order breaks the last ties (SPEC §2.2).

use std::path::{Path, PathBuf};

use crate::base::error::Error;

fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// Lists a source's files, sorted by path. An empty list is an error: a source that matches
/// nothing is almost always a typo or a missing upstream batch.
pub(super) fn source_files(
    repo_dir: &Path,
    source: &str,
    path: &str,
) -> Result<Vec<PathBuf>, Error> {
    let joined = repo_dir.join(path);
    let mut files = Vec::new();
    if is_glob(path) {
        let pattern = joined.to_string_lossy().into_owned();
        let paths = glob::glob(&pattern)
            .map_err(|e| Error::config(format!("source `{source}`: invalid glob `{path}`: {e}")))?;
        for entry in paths {
            let p = entry.map_err(|e| Error::input(format!("source `{source}`: {e}")))?;
            if p.is_file() {
                files.push(p);
            }
        }
    } else if joined.is_dir() {
        walk_parquet(&joined, &mut files).map_err(|e| {
            Error::input(format!(
                "source `{source}`: cannot list {}: {e}",
                joined.display()
            ))
        })?;
    } else if joined.is_file() {
        files.push(joined.clone());
    } else {
        return Err(Error::input(format!(
            "source `{source}`: {} does not exist",
            joined.display()
        )));
    }
    if files.is_empty() {
        return Err(Error::input(format!(
            "source `{source}`: `{path}` matches no Parquet files (looked in {})",
            joined.display()
        )));
    }
    files.sort();
    Ok(files)
}

fn walk_parquet(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk_parquet(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    Ok(())
}
