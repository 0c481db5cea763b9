//! Which files a source reads: one file, every `*.parquet` below a directory, or a glob —
//! always sorted by path, because scan order breaks the last ties (SPEC §2.2).
//!
//! Symlinks are followed, but a directory is listed once: a symlinked directory that leads
//! back to one already listed, or to the source's own directory or one above it (a `loop ->
//! ..` link), is skipped; and a file reached by two paths (a link to a file, two links to a
//! directory, overlapping glob matches) is read once, under the first of its paths in order.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::remote::{RemoteSource, is_remote};
use crate::base::error::Error;
use crate::repo::{Repo, Source};

/// One file a source reads, local or in an object store.
pub(super) struct Input {
    /// The path or URL messages name.
    pub name: PathBuf,
    /// The local file the scan reads (an object's staged copy).
    pub read: PathBuf,
    pub size: u64,
    pub modified_ns: i64,
    pub etag: Option<String>,
    /// Why it cannot be read (a problem code and message), found while listing.
    pub unreadable: Option<(&'static str, String)>,
}

/// A source's files in scan order, and the store they live in when they are objects.
pub(super) struct Inputs {
    pub files: Vec<Input>,
    pub remote: Option<Arc<RemoteSource>>,
}

/// Lists a source's files (local paths, `file://` URLs and object-store URLs alike) with
/// their identity; an object's footer is fetched into its staged copy on the way.
pub(super) fn source_inputs(repo: &Repo, source: &Source) -> Result<Inputs, Error> {
    if is_remote(&source.path) {
        let remote = RemoteSource::list(source, repo.online.retry)?;
        let footers = remote.stage_footers();
        let files = remote
            .objects
            .iter()
            .zip(footers)
            .map(|(obj, footer)| Input {
                // The problem is reported under the object's URL: its message need not repeat it.
                unreadable: footer.err().map(|e| {
                    let e = e.strip_prefix(obj.url.as_str()).map_or(e.clone(), |rest| {
                        rest.trim_start_matches(':').trim_start().to_owned()
                    });
                    let code = if e.starts_with("not a readable") {
                        "not-parquet"
                    } else {
                        "unreadable-file"
                    };
                    (code, e)
                }),
                name: PathBuf::from(&obj.url),
                read: obj.staged.clone(),
                size: obj.size,
                modified_ns: obj.modified_ns,
                etag: obj.etag.clone(),
            })
            .collect();
        return Ok(Inputs {
            files,
            remote: Some(Arc::new(remote)),
        });
    }
    let path = source.path.strip_prefix("file://").unwrap_or(&source.path);
    let files = source_files(&repo.dir, &source.name, path)?
        .into_iter()
        .map(|file| {
            let (size, modified_ns, unreadable) = match std::fs::metadata(&file) {
                Ok(m) => {
                    let modified = m
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_nanos() as i64);
                    (m.len(), modified, None)
                }
                Err(e) => (0, 0, Some(("unreadable-file", e.to_string()))),
            };
            Input {
                name: file.clone(),
                read: file,
                size,
                modified_ns,
                etag: None,
                unreadable,
            }
        })
        .collect();
    Ok(Inputs {
        files,
        remote: None,
    })
}

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
        let walk = std::fs::canonicalize(&joined).and_then(|root| {
            let mut seen = HashSet::new();
            walk_parquet(&joined, &root, &mut seen, &mut files)
        });
        walk.map_err(|e| {
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
    // A file is read once, however many paths lead to it (a path that cannot be resolved
    // stays, to fail by name when it is opened).
    let mut real = HashSet::new();
    files.retain(|f| std::fs::canonicalize(f).map_or(true, |r| real.insert(r)));
    Ok(files)
}

/// Lists `dir` (below the source's directory, whose real path is `root`) depth first in name
/// order, each real directory once.
fn walk_parquet(
    dir: &Path,
    root: &Path,
    seen: &mut HashSet<PathBuf>,
    out: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let real = std::fs::canonicalize(dir)?;
    // A link to the root or above it is a loop; a second way into a directory adds nothing.
    if (real != root && root.starts_with(&real)) || !seen.insert(real) {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk_parquet(&path, root, seen, out)?;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    Ok(())
}
