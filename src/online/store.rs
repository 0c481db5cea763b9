//! The online store as the rest of fsctl sees it: every Redis command fsctl sends goes through
//! this trait — writing vectors, extending expiries, sampling, reading, the run lock, the commit
//! and deleting. A single server is one implementation (`RedisStore`); a cluster is another.

use std::time::Duration;

use super::{KeySpace, Manifest, PackedBatch, RespFile, RunLock};
use crate::base::error::Result;
use crate::base::retry::RetryPolicy;

/// A hash's fields and values.
pub type HashFields = Vec<(Vec<u8>, Vec<u8>)>;

/// The committed state of a service: `current` and its manifest.
#[derive(Debug, Clone)]
pub struct Committed {
    pub snapshot: String,
    /// `None` when the manifest key is missing or unreadable.
    pub manifest: Option<Manifest>,
}

/// What the atomic flip of a commit needs (SPEC §3).
pub struct Flip<'a> {
    pub snapshot: &'a str,
    pub manifest_json: &'a str,
    pub manifest_pxat_ms: i64,
    /// The commit's time as this machine sees it: the manifest's `committed_at`, and the history
    /// score of `--emit-resp` (a commit to Redis takes the server's clock).
    pub committed_at_ms: i64,
    /// `current` as read before the run ("" for none): the flip fails if it moved.
    pub expected_current: &'a str,
}

/// Where batches of `SET key value PXAT ms` go. `finish` returns only once every write was
/// acknowledged: the commit relies on it.
pub trait CommandSink {
    fn send(&mut self, batch: PackedBatch) -> Result<()>;
    fn finish(self: Box<Self>) -> Result<WriteStats>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct WriteStats {
    /// Transient failures that were retried.
    pub retries: u64,
}

/// What `extend_expiry` found (and did) for one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Expiry {
    /// No such key (never written, expired or deleted).
    #[default]
    Missing,
    /// Present, its expiry left as it was: already as late as asked, or none at all.
    Unchanged,
    /// Present, its expiry moved later (or, in a dry run, would be).
    Extended,
}

impl Expiry {
    pub fn present(self) -> bool {
        self != Expiry::Missing
    }
}

/// A Redis deployment fsctl reads and writes. Methods name the keys themselves; errors are
/// `Error::Redis` with the operation, the server (redacted) and the server's error code.
pub trait OnlineStore: Send + Sync {
    /// The endpoint, password redacted.
    fn describe(&self) -> &str;

    /// The retry policy of writes and commits against this store.
    fn retry_policy(&self) -> RetryPolicy;

    /// Opens pipelined writers for a run's vectors.
    fn writer(&self) -> Result<Box<dyn CommandSink + Send>>;

    /// Writes one small batch now and checks every reply (for `warm`).
    fn write_now(&self, batch: PackedBatch) -> Result<()>;

    /// `current` and its manifest, or `None` when nothing was ever committed.
    fn current(&self, keys: &KeySpace) -> Result<Option<Committed>>;

    /// The manifest of `snapshot`, or `None` when it is missing or unreadable.
    fn manifest(&self, keys: &KeySpace, snapshot: &str) -> Result<Option<Manifest>>;

    /// True when `snapshot` is in the history with its manifest present.
    fn is_committed(&self, keys: &KeySpace, snapshot: &str) -> Result<bool>;

    /// Takes the service's run lock, waiting up to `wait` for it; the error names the holder.
    /// `label` goes into the lock's token after the holder's host and process (the snapshot id of
    /// a run, `gc` for a collection), so that others can tell what holds it.
    fn lock(
        &self,
        keys: &KeySpace,
        lease: Duration,
        wait: Duration,
        label: &str,
    ) -> Result<RunLock>;

    /// Writes the manifest, flips `current` and records the history in one atomic step, only
    /// while `lock` is held and `current` is still `flip.expected_current`. A transient fault
    /// is retried; a retry finding its own flip landed is a success.
    /// Returns the flip's time in the history (the server's clock, ms).
    fn commit(&self, keys: &KeySpace, lock: &RunLock, flip: &Flip<'_>) -> Result<i64>;

    /// Deletes `keys`; returns how many existed.
    fn delete(&self, keys: &[String]) -> Result<u64>;

    /// The values of `keys` in order (`None` for a missing key), in as few round trips as the
    /// deployment allows.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>>;

    /// Milliseconds until `key` expires: `None` when the key is missing, `Some(-1)` when it has
    /// no expiry.
    fn remaining_ttl_ms(&self, key: &str) -> Result<Option<i64>>;

    /// A hash's fields and its remaining TTL in ms (-1: no expiry, -2: no such key), read
    /// together; the key may be any bytes (Feast's keys are binary, SPEC §3.4).
    fn hash_with_ttl(&self, key: &[u8]) -> Result<(HashFields, i64)>;

    /// Which of `keys` exist; with `expiries`, also which ones expire before the given time,
    /// and unless `dry_run`, moves those expiries to it (never shortens one, never gives one
    /// to a key without).
    fn extend_expiry(
        &self,
        keys: &[String],
        expiries: Option<&[i64]>,
        dry_run: bool,
    ) -> Result<Vec<Expiry>>;

    /// `extend_expiry` of keys of any bytes (Feast's hashes, SPEC §3.4), to the given times.
    fn extend_expiry_of_bytes(
        &self,
        keys: &[Vec<u8>],
        expiries: &[i64],
        dry_run: bool,
    ) -> Result<Vec<Expiry>>;

    /// Up to `n` keys starting with `prefix`, with their values (for `validate --online`).
    fn sample(&self, prefix: &str, n: usize) -> Result<Vec<(String, Vec<u8>)>>;

    /// Records that `snapshot`'s run starts writing, before its first data key (§3.1).
    fn register_run(&self, keys: &KeySpace, snapshot: &str, started_ms: i64) -> Result<()>;

    /// Appends one frame to `snapshot`'s key list (see `keylist`), registers the run again if
    /// something dropped it from `runs`, and lets the list expire with the last of the keys it
    /// lists (`expires_ms`).
    fn append_key_list(
        &self,
        keys: &KeySpace,
        snapshot: &str,
        frame: &[u8],
        started_ms: i64,
        expires_ms: i64,
    ) -> Result<()>;

    /// `snapshot`'s key list, all frames, or `None` when it has none.
    fn key_list(&self, keys: &KeySpace, snapshot: &str) -> Result<Option<Vec<u8>>>;

    /// The committed snapshots, newest first, with the time each was committed (or last made
    /// current by a rollback), in ms.
    fn history(&self, keys: &KeySpace) -> Result<Vec<(String, i64)>>;

    /// The snapshots whose runs started writing and that are not retired yet, with the time
    /// each run started, in ms.
    fn runs(&self, keys: &KeySpace) -> Result<Vec<(String, i64)>>;

    /// Gives `{prefix}{entity}` for every entity an expiry no later than `at_ms` (an earlier
    /// one stays; a missing key stays missing), pipelined.
    fn expire_by(
        &self,
        prefix: &str,
        entities: &mut dyn Iterator<Item = &str>,
        at_ms: i64,
    ) -> Result<()>;

    /// Deletes `{prefix}{entity}` for every entity, pipelined in multi-key DELs.
    fn delete_by(&self, prefix: &str, entities: &mut dyn Iterator<Item = &str>) -> Result<()>;

    /// Writes `manifest` back over the existing one, keeping its expiry (to record `retired_at`).
    fn put_manifest(&self, keys: &KeySpace, manifest: &Manifest) -> Result<()>;

    /// Writes the manifest of a Feast-layout unit (SPEC §3.4), which never expires: it holds
    /// the window end the next run continues from. With `lock`, only while the run holds it
    /// (one script with the check), else `LockLost`.
    fn put_feast_manifest(&self, keys: &KeySpace, json: &str, lock: Option<&RunLock>)
    -> Result<()>;

    /// Drops a retired snapshot from `runs`; its key list expires at `at_ms`.
    fn forget_run(&self, keys: &KeySpace, snapshot: &str, at_ms: i64) -> Result<()>;

    /// Moves `current` to the committed `snapshot` (a rollback), recorded in the history like a
    /// commit, only while `lock` is held and `current` is still `expected_current`. Returns the
    /// flip's time (the server's clock, ms).
    fn flip(
        &self,
        keys: &KeySpace,
        lock: &RunLock,
        snapshot: &str,
        expected_current: &str,
    ) -> Result<i64>;

    /// Records that `snapshot` is a sharded run (SPEC §3.3) with this as-of time, before its
    /// shards write: retirement leaves it alone while it can still be committed.
    fn register_sharded(&self, keys: &KeySpace, snapshot: &str, as_of_ms: i64) -> Result<()>;

    /// The sharded snapshots not yet committed or retired, with their as-of times in ms.
    fn sharded(&self, keys: &KeySpace) -> Result<Vec<(String, i64)>>;

    /// `snapshot` no longer awaits a commit of its shards (it was committed or retired).
    fn forget_sharded(&self, keys: &KeySpace, snapshot: &str) -> Result<()>;

    /// Writes shard `index`'s manifest of `snapshot`, expiring at `pxat_ms`.
    fn put_shard_manifest(
        &self,
        keys: &KeySpace,
        snapshot: &str,
        index: u32,
        json: &str,
        pxat_ms: i64,
    ) -> Result<()>;

    /// The manifests of shards `0..count` of `snapshot`, `None` where a shard recorded none.
    fn shard_manifests(
        &self,
        keys: &KeySpace,
        snapshot: &str,
        count: u32,
    ) -> Result<Vec<Option<String>>>;

    /// The server's clock, in ms: retirement measures the grace on it, as the history does.
    fn now_ms(&self) -> Result<i64>;

    /// The token of whoever holds the service's run lock.
    fn lock_holder(&self, keys: &KeySpace) -> Result<Option<String>>;

    /// Memory in use and the limit, over the deployment's primaries.
    fn memory(&self) -> Result<Memory>;

    /// Where `--emit-resp` writes the command stream: `path` for one server, one file per
    /// primary for a cluster (each named after its primary).
    fn resp_file(&self, path: &std::path::Path) -> Result<RespFile> {
        RespFile::create(path)
    }
}

/// `INFO memory` of a deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    pub used: u64,
    /// 0 when no limit is set.
    pub max: u64,
}
