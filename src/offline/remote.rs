//! Object-store sources (SPEC §1): listing a URL's objects, and staging what a scan needs.
//!
//! An object is never decoded over the network. Its footer, then the column chunks of the
//! needed columns in the row groups the window keeps, are fetched with ranged GETs into a
//! sparse temporary file, each at its own offset, and the scan reads that file like a local one
//! (so later partitions read local disk, not the store again). Every GET carries the ETag seen
//! when the object was listed (`If-Match`), and the answer's ETag is compared too: an object
//! rewritten while the run reads it fails the run instead of mixing two versions.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt};

use crate::base::error::Error;
use crate::base::objects::{
    SECRET_ENV, is_secret_option, literal_path, open_store, runtime, short_error, split_url,
};
use crate::base::retry::RetryPolicy;
use crate::base::secrets::expand_env;
use crate::repo::Source;

/// The footer-size guess: one GET of the last 64 KiB holds the whole footer of most files.
const FOOTER_GUESS: u64 = 64 * 1024;
/// Column chunks of one row group closer than this are fetched by one GET.
const COALESCE_GAP: u64 = 64 * 1024;
/// Bytes being fetched at once, over all row groups (the rest waits).
const IN_FLIGHT_BYTES: u64 = 64 * 1024 * 1024;
/// Row groups fetched at once.
const ROW_GROUPS_IN_FLIGHT: usize = 8;

/// True when a source's path is an object-store URL (not `file://`, which is a local path).
pub(super) fn is_remote(path: &str) -> bool {
    path.split_once("://")
        .is_some_and(|(scheme, _)| scheme != "file")
}

/// One listed object.
pub(super) struct RemoteObject {
    location: Path,
    pub(super) url: String,
    pub(super) size: u64,
    pub(super) etag: Option<String>,
    pub(super) modified_ns: i64,
    /// The sparse local file its fetched byte ranges go to.
    pub(super) staged: PathBuf,
}

/// A source in an object store: its client, its objects in scan order, and their staging.
pub(super) struct RemoteSource {
    store: Arc<dyn ObjectStore>,
    pub(super) objects: Vec<RemoteObject>,
    /// Where the credentials came from, for an access error (never the secret itself).
    credentials: String,
    /// Secret values to blank out of any message.
    secrets: Vec<String>,
    /// Bytes fetched so far (footers and column chunks).
    fetched: AtomicU64,
    _stage_dir: tempfile::TempDir,
}

impl RemoteSource {
    /// Opens the store of `source.path` and lists its objects, sorted as SPEC §2.2 says.
    pub(super) fn list(source: &Source, retry: RetryPolicy) -> Result<RemoteSource, Error> {
        let runtime = runtime();
        let name = &source.name;
        let raw = source.path.as_str();
        let (base, key) = split_url(raw);
        let url = url::Url::parse(base)
            .map_err(|e| Error::config(format!("source `{name}`: invalid URL `{raw}`: {e}")))?;
        let mut options = Vec::new();
        for (key, value) in &source.storage_options {
            let what = format!("source `{name}`: storage_options.{key}");
            let shared = source.shared_storage_options.contains(key);
            options.push((key.as_str(), expand_env(value, &what)?, shared));
        }
        let opened = open_store(&url, &options, retry)
            .map_err(|e| Error::config(format!("source `{name}`: {e}")))?;
        let secrets: Vec<String> = options
            .iter()
            .filter(|(k, _, _)| is_secret_option(k))
            .map(|(_, v, _)| v.clone())
            .chain(
                SECRET_ENV
                    .iter()
                    .filter_map(|v| std::env::var(v).ok())
                    .chain(opened.profile_secrets),
            )
            .filter(|s| !s.is_empty())
            .collect();
        let stage_dir = tempfile::Builder::new()
            .prefix("fsctl-stage-")
            .tempdir()
            .map_err(|e| Error::input(format!("cannot create a staging directory: {e}")))?;
        let mut remote = RemoteSource {
            store: opened.store,
            objects: Vec::new(),
            credentials: opened.credentials,
            secrets,
            fetched: AtomicU64::new(0),
            _stage_dir: stage_dir,
        };
        let metas = runtime.block_on(remote.list_objects(raw, key))?;
        for (i, meta) in metas.into_iter().enumerate() {
            remote.objects.push(RemoteObject {
                url: format!("{base}/{}", meta.location),
                location: meta.location,
                size: meta.size,
                etag: meta.e_tag,
                modified_ns: meta.last_modified.timestamp_nanos_opt().unwrap_or_default(),
                staged: remote._stage_dir.path().join(format!("{i}.parquet")),
            });
        }
        if remote.objects.is_empty() {
            return Err(Error::input(format!(
                "source `{name}`: `{raw}` matches no Parquet objects"
            )));
        }
        Ok(remote)
    }

    /// The objects `key` names: every `*.parquet` below it when it ends in `/` (or names no
    /// object but a prefix), the matches of a glob, or the one object.
    async fn list_objects(&self, raw: &str, key: &str) -> Result<Vec<ObjectMeta>, Error> {
        let first_glob = key.find(['*', '?', '[']);
        let (prefix, pattern) = match first_glob {
            Some(at) => {
                let literal = key[..at].rfind('/').map_or("", |slash| &key[..slash]);
                let pattern = glob::Pattern::new(key)
                    .map_err(|e| Error::config(format!("invalid glob `{raw}`: {e}")))?;
                (literal, Some(pattern))
            }
            None => (key.trim_end_matches('/'), None),
        };
        let directory = pattern.is_none() && (key.is_empty() || key.ends_with('/'));
        if pattern.is_none() && !directory {
            match self.store.head(&literal_path(key)).await {
                Ok(meta) => return Ok(vec![meta]),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.store_error(raw, "listing", e)),
            }
        }
        let prefix_path = (!prefix.is_empty()).then(|| literal_path(prefix));
        let listed: Vec<ObjectMeta> = self
            .store
            .list(prefix_path.as_ref())
            .try_collect()
            .await
            .map_err(|e| self.store_error(raw, "listing", e))?;
        let options = glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        };
        let mut found: Vec<ObjectMeta> = listed
            .into_iter()
            .filter(|m| match &pattern {
                Some(p) => p.matches_with(m.location.as_ref(), options),
                None => m.location.as_ref().ends_with(".parquet"),
            })
            .collect();
        if found.is_empty() && pattern.is_none() && !directory {
            return Err(Error::input(format!("{raw} does not exist")));
        }
        // Component by component, so `a/b.parquet` sorts before `a-b.parquet` (SPEC §2.2).
        found.sort_by(|a, b| {
            let (a, b) = (a.location.as_ref(), b.location.as_ref());
            a.split('/').cmp(b.split('/'))
        });
        Ok(found)
    }

    /// Fetches the footer of object `ix` into its staged file (one GET of the last 64 KiB, a
    /// second only for a larger footer). An error is the problem to report for the object.
    pub(super) fn stage_footers(&self) -> Vec<Result<(), String>> {
        runtime().block_on(
            futures::stream::iter(0..self.objects.len())
                .map(|ix| self.stage_footer(ix))
                .buffered(16)
                .collect(),
        )
    }

    async fn stage_footer(&self, ix: usize) -> Result<(), String> {
        let obj = &self.objects[ix];
        let file = File::create(&obj.staged)
            .and_then(|f| f.set_len(obj.size).map(|()| f))
            .map_err(|e| format!("cannot stage {}: {e}", obj.staged.display()))?;
        if obj.size < 12 {
            return Err(format!("not a readable Parquet file ({} bytes)", obj.size));
        }
        let guess = FOOTER_GUESS.min(obj.size);
        let tail = self
            .fetch(obj, obj.size - guess..obj.size)
            .await
            .map_err(|e| e.to_string())?;
        let n = tail.len();
        if &tail[n - 4..] != b"PAR1" {
            return Err("not a readable Parquet file (no PAR1 footer)".into());
        }
        let footer = u64::from(u32::from_le_bytes(tail[n - 8..n - 4].try_into().unwrap())) + 8;
        if footer > obj.size {
            return Err(format!(
                "not a readable Parquet file (footer of {footer} bytes in {} bytes)",
                obj.size
            ));
        }
        let write = |bytes: &Bytes, at: u64| {
            file.write_all_at(bytes, at)
                .map_err(|e| format!("cannot stage {}: {e}", obj.staged.display()))
        };
        write(&tail, obj.size - guess)?;
        if footer > guess {
            let head = self
                .fetch(obj, obj.size - footer..obj.size - guess)
                .await
                .map_err(|e| e.to_string())?;
            write(&head, obj.size - footer)?;
        }
        Ok(())
    }

    /// One ranged GET of `obj`, refused when the object is no longer the version listed.
    async fn fetch(&self, obj: &RemoteObject, range: Range<u64>) -> Result<Bytes, Error> {
        let options = GetOptions {
            // Quoted, as HTTP wants it (Azure lists its ETags bare).
            if_match: obj.etag.as_deref().map(|e| format!("\"{}\"", bare_etag(e))),
            range: Some(GetRange::Bounded(range.clone())),
            ..GetOptions::default()
        };
        let got = self
            .store
            .get_opts(&obj.location, options)
            .await
            .map_err(|e| self.object_error(obj, e))?;
        if let (Some(got), Some(listed)) = (&got.meta.e_tag, &obj.etag)
            && bare_etag(got) != bare_etag(listed)
        {
            return Err(self.changed(obj));
        }
        let bytes = got.bytes().await.map_err(|e| self.object_error(obj, e))?;
        if bytes.len() as u64 != range.end - range.start {
            return Err(Error::input(format!(
                "{}: asked for bytes {}..{}, got {}: the object is shorter than listed, so it \
                 changed while fsctl read it; nothing was committed, rerun once its writer is done",
                obj.url,
                range.start,
                range.end,
                bytes.len()
            )));
        }
        self.fetched
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    /// Bytes fetched so far, footers included.
    pub(super) fn fetched_bytes(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    fn changed(&self, obj: &RemoteObject) -> Error {
        Error::input(format!(
            "{} changed while fsctl read it (its ETag is no longer {}); nothing was committed: \
             rerun once its writer is done",
            obj.url,
            obj.etag.as_deref().unwrap_or("the one listed")
        ))
    }

    fn object_error(&self, obj: &RemoteObject, e: object_store::Error) -> Error {
        match e {
            object_store::Error::Precondition { .. } => self.changed(obj),
            object_store::Error::NotFound { .. } => Error::input(format!(
                "{} was deleted while fsctl read it; nothing was committed",
                obj.url
            )),
            e => self.store_error(&obj.url, "reading", e),
        }
    }

    fn store_error(&self, url: &str, doing: &str, e: object_store::Error) -> Error {
        let message = match &e {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => format!(
                "access denied while {doing} (credentials from {}): {e}",
                self.credentials
            ),
            _ if e.to_string().contains("NoSuchBucket") => {
                format!("the bucket does not exist ({doing})")
            }
            _ => format!("{doing} failed: {}", short_error(&e)),
        };
        let mut message = message;
        // A secret too short to be real would blank ordinary words instead.
        for secret in self.secrets.iter().filter(|s| s.len() >= 8) {
            message = message.replace(secret.as_str(), "***");
        }
        Error::in_file(PathBuf::from(url), message)
    }
}

/// An ETag without its quotes and weak prefix: stores list and serve the same one differently.
fn bare_etag(etag: &str) -> &str {
    etag.trim_start_matches("W/").trim_matches('"')
}

/// The column chunks a scan needs, staged row group by row group ahead of the decoders.
pub(super) struct ChunkStage {
    /// Per scan task: the object and the byte ranges of its needed column chunks.
    tasks: Vec<(usize, Vec<Range<u64>>)>,
    state: Mutex<StageState>,
    ready: Condvar,
    started: Once,
    stop: AtomicBool,
}

#[derive(Default)]
struct StageState {
    done: Vec<bool>,
    failed: Option<String>,
}

impl ChunkStage {
    pub(super) fn new(tasks: Vec<(usize, Vec<Range<u64>>)>) -> ChunkStage {
        let n = tasks.len();
        ChunkStage {
            tasks,
            state: Mutex::new(StageState {
                done: vec![false; n],
                failed: None,
            }),
            ready: Condvar::new(),
            started: Once::new(),
            stop: AtomicBool::new(false),
        }
    }

    /// Waits until task `ix`'s column chunks are in its staged file; the first call starts
    /// the fetching, in task order, for every task.
    pub(super) fn wait(
        self: &Arc<Self>,
        source: &Arc<RemoteSource>,
        ix: usize,
    ) -> Result<(), Error> {
        self.started.call_once(|| {
            let (stage, source) = (self.clone(), source.clone());
            runtime().spawn(async move { stage.fetch_all(&source).await });
        });
        let mut state = self.state.lock().expect("stage lock");
        loop {
            if let Some(failed) = &state.failed {
                return Err(Error::input(failed.clone()));
            }
            if state.done[ix] {
                return Ok(());
            }
            state = self.ready.wait(state).expect("stage lock");
        }
    }

    /// The bytes of every needed column chunk.
    pub(super) fn needed_bytes(&self) -> u64 {
        self.tasks
            .iter()
            .flat_map(|(_, ranges)| ranges)
            .map(|r| r.end - r.start)
            .sum()
    }

    /// Stops fetching (the scan failed): row groups not staged yet never will be.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .failed
            .get_or_insert_with(|| "the scan stopped".to_owned());
        drop(state);
        self.ready.notify_all();
    }

    async fn fetch_all(&self, source: &RemoteSource) {
        // Whatever ends this fetcher (a panic included) wakes the waiters with an answer.
        struct Finished<'a>(&'a ChunkStage);
        impl Drop for Finished<'_> {
            fn drop(&mut self) {
                let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
                if state.failed.is_none() && state.done.iter().any(|d| !d) {
                    state.failed = Some("fetching from the object store stopped early".into());
                }
                drop(state);
                self.0.ready.notify_all();
            }
        }
        let _finished = Finished(self);
        let budget = tokio::sync::Semaphore::new((IN_FLIGHT_BYTES / 1024) as usize);
        let fetches = futures::stream::iter(0..self.tasks.len())
            .map(|ix| {
                let budget = &budget;
                let (obj, ranges) = &self.tasks[ix];
                async move {
                    let bytes: u64 = ranges.iter().map(|r| r.end - r.start).sum();
                    let permits = (bytes / 1024).clamp(1, IN_FLIGHT_BYTES / 1024) as u32;
                    let _permit = budget.acquire_many(permits).await.expect("open semaphore");
                    if self.stop.load(Ordering::Relaxed) {
                        return (ix, None);
                    }
                    (ix, Some(self.fetch_task(source, *obj, ranges).await))
                }
            })
            .buffer_unordered(ROW_GROUPS_IN_FLIGHT);
        futures::pin_mut!(fetches);
        while let Some((ix, result)) = fetches.next().await {
            let mut state = self.state.lock().expect("stage lock");
            match result {
                Some(Ok(())) => state.done[ix] = true,
                None => {}
                Some(Err(e)) => {
                    state.failed.get_or_insert(e.to_string());
                    self.stop.store(true, Ordering::Relaxed);
                }
            }
            drop(state);
            self.ready.notify_all();
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
        }
    }

    async fn fetch_task(
        &self,
        source: &RemoteSource,
        obj_ix: usize,
        ranges: &[Range<u64>],
    ) -> Result<(), Error> {
        let obj = &source.objects[obj_ix];
        let parts =
            object_store::coalesce_ranges(ranges, |range| source.fetch(obj, range), COALESCE_GAP)
                .await?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&obj.staged)
            .map_err(|e| Error::in_file(&obj.staged, e))?;
        for (range, bytes) in ranges.iter().zip(parts) {
            file.write_all_at(&bytes, range.start)
                .map_err(|e| Error::in_file(&obj.staged, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_compare_without_quotes() {
        assert_eq!(bare_etag("\"0x8D1\""), "0x8D1");
        assert_eq!(bare_etag("0x8D1"), "0x8D1");
        assert_eq!(bare_etag("W/\"abc\""), "abc");
    }
}
