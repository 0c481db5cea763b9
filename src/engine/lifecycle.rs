//! The snapshot lifecycle (SPEC §3.1): after each commit the snapshots beyond
//! `keep_snapshots` — and the leftovers of runs that never committed — are retired: every key
//! they listed gets an expiry no later than the commit plus `retire_grace`, their manifests
//! record `retired_at`, and they leave the `runs` set last, so a retirement cut short is finished
//! by the next run or by `fsctl gc`. `current` and the kept snapshots are never touched. Also
//! here: the history (`fsctl snapshots`), `fsctl rollback`, `fsctl gc` and the capacity check.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::base::error::{Error, Result};
use crate::base::time::{format_us, now_us, parse_instant_us};
use crate::online::{Entities, KeySpace, Manifest, OnlineStore};
use crate::progress::Progress;
use crate::repo::{Repo, Service};

/// The lock label of `fsctl gc`.
const GC: &str = "gc";

/// True when a lock token belongs to `fsctl gc` (tokens end with their holder's label).
pub(crate) fn is_gc(token: &str) -> bool {
    token.rsplit(':').next() == Some(GC)
}

/// The lock label of `fsctl rollback`.
pub(crate) const ROLLBACK: &str = "rollback";

/// The snapshot id a lock token names, when a run (not gc or a rollback) holds it.
fn running_snapshot(token: &str) -> Option<&str> {
    token
        .rsplit(':')
        .next()
        .filter(|l| *l != GC && *l != ROLLBACK)
}

/// What a retirement did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Retired {
    /// Snapshot ids retired, committed ones and leftovers alike.
    pub snapshots: Vec<String>,
    /// Keys retired: `deleted` plus `expiring`.
    pub keys: u64,
    /// Keys deleted at once (their snapshot was replaced longer than the grace ago, or never
    /// committed).
    pub deleted: u64,
    /// Keys given an expiry at the end of the grace (their snapshot was current until recently).
    pub expiring: u64,
    /// Value bytes of the retired committed snapshots (from their manifests).
    pub bytes: u64,
    /// Snapshots left for later, and why (an unreadable key list).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// When the `expiring` keys expire (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_at: Option<String>,
    pub ms: u64,
}

/// Which snapshots of a service retirement may take: those in `runs` other than the newest
/// `keep` of the history, other than `exclude` (the run holding the lock), and other than a
/// sharded run that may still be committed (its as-of is not older than `current`'s: its shards
/// hold no lock while they write).
fn retirable(
    store: &dyn OnlineStore,
    keys: &KeySpace,
    keep: usize,
    exclude: Option<&str>,
    committed_only: bool,
) -> Result<Vec<String>> {
    // `runs` before `sharded`: a shard registers in `sharded` first, so any shard in the runs
    // read is in the sharded read too.
    let runs = store.runs(keys)?;
    let history = store.history(keys)?;
    let current = store.current(keys)?;
    // A sharded run whose shards may still commit (SPEC §3.3): not older than `current`.
    let current_as_of = current
        .as_ref()
        .and_then(|c| c.manifest.as_ref())
        .map(|m| m.as_of_ms);
    let pending: HashSet<String> = store
        .sharded(keys)?
        .into_iter()
        .filter(|(_, as_of)| current_as_of.is_none_or(|c| *as_of >= c))
        .map(|(id, _)| id)
        .collect();
    let current = current.map(|c| c.snapshot);
    // `current` is kept whatever the history's order says.
    let kept: HashSet<&str> = history
        .iter()
        .take(keep)
        .map(|(id, _)| id.as_str())
        .chain(current.as_deref())
        .collect();
    let committed: HashSet<&str> = history.iter().map(|(id, _)| id.as_str()).collect();
    Ok(runs
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| !kept.contains(id.as_str()) && Some(id.as_str()) != exclude)
        .filter(|id| !pending.contains(id))
        .filter(|id| !committed_only || committed.contains(id.as_str()))
        .collect())
}

/// Retires `ids` at `now_ms`. A snapshot that stopped being current less than `grace_ms` ago
/// may still be read by someone who resolved the pointer before: its keys expire at
/// `now_ms + grace_ms` at the latest (`PEXPIREAT ... LT`). Any other — replaced longer ago than
/// the grace, or never current (a leftover) — is no longer read by a reader that follows the
/// reader rule, so its keys are deleted at once (multi-key DELs, an order of magnitude cheaper
/// than an expiry per key, and the memory is back without waiting for Redis's expiry cycle).
/// With `dry_run`, only counts.
fn retire_ids(
    store: &dyn OnlineStore,
    keys: &KeySpace,
    ids: Vec<String>,
    now_ms: i64,
    grace_ms: i64,
    dry_run: bool,
) -> Result<Retired> {
    let t = Instant::now();
    // When each committed snapshot stopped being current: the time of the flip after it.
    let history = store.history(keys)?;
    let replaced_at: std::collections::HashMap<&str, i64> = history
        .iter()
        .skip(1)
        .zip(&history)
        .map(|((id, _), (_, next_flip))| (id.as_str(), *next_flip))
        .collect();
    let at_ms = now_ms + grace_ms;
    let sharded: HashSet<String> = store.sharded(keys)?.into_iter().map(|(id, _)| id).collect();
    let mut out = Retired::default();
    for id in ids {
        let recently_current = replaced_at
            .get(id.as_str())
            .is_some_and(|&t| t + grace_ms > now_ms);
        let until_ms = if recently_current { at_ms } else { now_ms };
        if let Some(mut m) = store.manifest(keys, &id)? {
            out.bytes += m.bytes_written;
            if m.retired_at.is_none() && !dry_run {
                m.retired_at = Some(format_us(now_ms * 1000));
                m.readable_until = Some(format_us(until_ms * 1000));
                store.put_manifest(keys, &m)?;
            }
        }
        if let Some(list) = store.key_list(keys, &id)? {
            // An unreadable list is reported and left in `runs`: it must not stop the others.
            let entities = match Entities::decode(&list, &keys.key_list(&id)) {
                Ok(e) => e,
                Err(e) => {
                    out.skipped.push(e.to_string());
                    continue;
                }
            };
            let n = entities.len() as u64;
            out.keys += n;
            let prefix = keys.data_prefix(&id);
            if recently_current {
                out.expiring += n;
                out.expire_at = Some(format_us(at_ms * 1000));
                if !dry_run {
                    store.expire_by(&prefix, &mut entities.iter(), at_ms)?;
                }
            } else {
                out.deleted += n;
                if !dry_run {
                    store.delete_by(&prefix, &mut entities.iter())?;
                }
            }
        }
        if !dry_run {
            if sharded.contains(&id) {
                // Its data is going: no shard of it may count as recorded any more.
                store.delete(&shard_manifest_keys(keys, &id))?;
            }
            store.forget_run(keys, &id, until_ms)?;
            store.forget_sharded(keys, &id)?;
        }
        out.snapshots.push(id);
    }
    out.ms = t.elapsed().as_millis() as u64;
    Ok(out)
}

/// The keys of every shard manifest `snapshot` may have.
fn shard_manifest_keys(keys: &KeySpace, snapshot: &str) -> Vec<String> {
    (0..super::shards::MAX_SHARDS)
        .map(|i| keys.shard_manifest(snapshot, i))
        .collect()
}

/// Takes back what a refused run wrote, at once: its listed keys and its key list are
/// deleted and it leaves `runs`. Not a sharded run's: the key list is its shards' too (an
/// unsharded run of the same job has the same snapshot), and its shards may still commit; it is
/// retired once it is superseded.
pub(crate) fn discard(store: &dyn OnlineStore, keys: &KeySpace, snapshot: &str) -> Result<()> {
    if store.sharded(keys)?.iter().any(|(id, _)| id == snapshot) {
        return Ok(());
    }
    if let Some(list) = store.key_list(keys, snapshot)? {
        let entities = Entities::decode(&list, &keys.key_list(snapshot))?;
        store.delete_by(&keys.data_prefix(snapshot), &mut entities.iter())?;
    }
    store.forget_run(keys, snapshot, store.now_ms()?)
}

/// After a commit at `committed_at_ms`, under the run lock: retires what §3.1 does not keep.
pub(crate) fn retire_after_commit(
    repo: &Repo,
    store: &dyn OnlineStore,
    keys: &KeySpace,
    snapshot: &str,
    committed_at_ms: i64,
) -> Result<Retired> {
    let ids = retirable(store, keys, repo.keep_snapshots, Some(snapshot), false)?;
    retire_ids(
        store,
        keys,
        ids,
        committed_at_ms,
        repo.retire_grace_ms,
        false,
    )
}

/// Refuses a run that would not fit under `maxmemory` next to the snapshots already there,
/// sizing it like the current snapshot (the best guide to the next one), divided by `shards`
/// for one shard of a sharded run.
pub(crate) fn check_capacity(
    repo: &Repo,
    store: &dyn OnlineStore,
    service: &Service,
    keys: &KeySpace,
    progress: Progress,
    verbose: bool,
    shards: u32,
) -> Result<()> {
    let say = |what: &str| {
        if verbose {
            progress.say(&service.name, what);
        }
    };
    let memory = match store.memory() {
        Ok(m) => m,
        // An ACL user without INFO: go on, as without a limit.
        Err(Error::Redis(f)) if f.code.as_deref() == Some("NOPERM") => {
            say("the ACL user may not run INFO; capacity not checked");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if memory.max == 0 {
        say("the server sets no maxmemory; capacity not checked");
        return Ok(());
    }
    let Some(m) = store.current(keys)?.and_then(|c| c.manifest) else {
        say("no committed snapshot to size this run from; capacity not checked");
        return Ok(());
    };
    let key_len = keys.data_prefix(&m.snapshot).len() as u64 + 8;
    // A shard writes its share (the shards before it are already in `used`).
    let planned = (m.bytes_written + m.keys_written * (key_len + PER_KEY_OVERHEAD))
        / u64::from(shards.max(1));
    if memory.used + planned > memory.max {
        return Err(Error::Capacity {
            service: service.name.clone(),
            planned_bytes: planned,
            used_bytes: memory.used,
            max_bytes: memory.max,
            keep_snapshots: repo.keep_snapshots,
        });
    }
    Ok(())
}

/// What Redis spends per key beyond the key and value bytes (dict entries, expiry entry, object
/// headers, allocator rounding): 137 bytes measured on Redis 7.0 for a 46-byte key and a 110-byte
/// value with an expiry (FACTS §5); rounded down, so that the check errs towards running.
const PER_KEY_OVERHEAD: u64 = 120;

/// A snapshot's place in the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotState {
    Current,
    /// Alive, a rollback target.
    Kept,
    /// Retired: readable until its grace ends.
    Retired,
    /// Its data is gone (or going): retired past the grace, or its manifest expired.
    Expired,
    /// A run that never committed left keys behind; the next run or `gc` retires them.
    Leftover,
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotInfo {
    pub snapshot: String,
    pub state: SnapshotState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// When it was committed (a rollback does not change it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<String>,
    /// When a rollback last made it current again, and from which snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<String>,
    /// When a rollback replaced it as current.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
    pub entities: u64,
    pub keys: u64,
    pub bytes: u64,
}

/// The history of a service, newest first, leftovers of uncommitted runs last.
pub fn snapshots(
    repo: &Repo,
    store: &dyn OnlineStore,
    service: &Service,
) -> Result<Vec<SnapshotInfo>> {
    let keys = KeySpace::new(&repo.online.key_prefix, &repo.project, &service.name);
    let current = store.current(&keys)?.map(|c| c.snapshot);
    let history = store.history(&keys)?;
    let now = now_us();
    let mut out = Vec::new();
    for (id, at_ms) in &history {
        let m = store.manifest(&keys, id)?;
        let state = match &m {
            _ if current.as_deref() == Some(id.as_str()) => SnapshotState::Current,
            None => SnapshotState::Expired,
            Some(m) => match &m.retired_at {
                Some(r) => {
                    let grace_ends = match &m.readable_until {
                        Some(u) => parse_instant_us(u).unwrap_or(0),
                        None => parse_instant_us(r).unwrap_or(0) + repo.retire_grace_ms * 1000,
                    };
                    if grace_ends > now {
                        SnapshotState::Retired
                    } else {
                        SnapshotState::Expired
                    }
                }
                // Beyond `keep` but not retired yet too: a retirement cut short, which the
                // next run or `gc` finishes.
                None => SnapshotState::Kept,
            },
        };
        out.push(info(id, state, m.as_ref(), Some(*at_ms)));
    }
    let committed: HashSet<&str> = history.iter().map(|(id, _)| id.as_str()).collect();
    for (id, _) in store.runs(&keys)? {
        if !committed.contains(id.as_str()) {
            let listed = match store.key_list(&keys, &id)? {
                Some(list) => Entities::decode(&list, &keys.key_list(&id))?.len() as u64,
                None => 0,
            };
            let mut leftover = info(&id, SnapshotState::Leftover, None, None);
            leftover.keys = listed;
            out.push(leftover);
        }
    }
    Ok(out)
}

fn info(id: &str, state: SnapshotState, m: Option<&Manifest>, at_ms: Option<i64>) -> SnapshotInfo {
    SnapshotInfo {
        snapshot: id.to_owned(),
        state,
        as_of: m.map(|m| m.as_of.clone()),
        committed_at: m
            .map(|m| m.committed_at.clone())
            .filter(|c| !c.is_empty())
            .or_else(|| at_ms.map(|ms| format_us(ms * 1000))),
        restored_at: m.and_then(|m| m.restored_at.clone()),
        restored_from: m.and_then(|m| m.restored_from.clone()),
        rolled_back_at: m.and_then(|m| m.rolled_back_at.clone()),
        retired_at: m.and_then(|m| m.retired_at.clone()),
        entities: m.map_or(0, |m| m.entities),
        keys: m.map_or(0, |m| m.keys_written),
        bytes: m.map_or(0, |m| m.bytes_written),
    }
}

/// What a rollback did.
#[derive(Debug, Clone, Serialize)]
pub struct RolledBack {
    pub service: String,
    pub from: String,
    pub to: String,
    pub as_of: String,
    /// False when the target was already current: a retried or repeated rollback is a no-op.
    pub changed: bool,
    /// Keys of the target sampled and found present.
    pub sampled: usize,
}

/// How many keys of a rollback target are checked to be present.
const ROLLBACK_SAMPLE: usize = 200;

/// The default target of a rollback: the newest snapshot committed before the one a rollback
/// moves away from, and never one a rollback already moved away from. When `current` was made
/// current by a rollback, that rollback is the one to go back from, so running the same
/// `rollback` twice (a retried task) lands on the same snapshot instead of undoing the first.
fn default_target(
    store: &dyn OnlineStore,
    keys: &KeySpace,
    service: &Service,
    current: &str,
    history: &[(String, i64)],
) -> Result<String> {
    // Each committed snapshot with its original commit time (the history's score moves on a
    // rollback; the manifest keeps the commit's).
    let mut committed = Vec::new();
    for (id, at_ms) in history {
        let m = store.manifest(keys, id)?;
        let at = m
            .as_ref()
            .and_then(|m| parse_instant_us(&m.committed_at).ok())
            .unwrap_or(at_ms * 1000);
        committed.push((id.as_str(), at, m));
    }
    let of = |id: &str| committed.iter().find(|(i, _, _)| *i == id);
    let base = match of(current).and_then(|(_, _, m)| m.as_ref()?.restored_from.as_deref()) {
        Some(from) if of(from).is_some() => from,
        _ => current,
    };
    let base_at = of(base).map_or(i64::MAX, |(_, at, _)| *at);
    committed
        .iter()
        .filter(|(id, at, m)| {
            *at < base_at && *id != base && m.as_ref().is_none_or(|m| m.rolled_back_at.is_none())
        })
        .max_by_key(|(_, at, _)| *at)
        .map(|(id, _, _)| (*id).to_owned())
        .ok_or_else(|| {
            refuse(
                service,
                "",
                format!("there is no snapshot committed before {base} to go back to"),
            )
        })
}

/// Flips `current` of `service` back to `to` (default: see `default_target`), under the run
/// lock. Refuses a snapshot that is not kept, is retired or expired, or whose keys are not all
/// there. Going to the snapshot that is already current is a no-op that succeeds. The target's
/// manifest records the rollback (`restored_from`, `restored_at`) and the snapshot rolled back
/// from records `rolled_back_at`; commit times are kept.
pub fn rollback(
    repo: &Repo,
    store: &dyn OnlineStore,
    service: &Service,
    to: Option<&str>,
) -> Result<RolledBack> {
    let keys = KeySpace::new(&repo.online.key_prefix, &repo.project, &service.name);
    let lease = Duration::from_millis(repo.lock_lease_ms as u64);
    let lock = store.lock(&keys, lease, Duration::ZERO, ROLLBACK)?;
    let current = store
        .current(&keys)?
        .ok_or_else(|| Error::NoCommittedSnapshot {
            service: service.name.clone(),
            key: keys.current(),
        })?
        .snapshot;
    let history = store.history(&keys)?;
    let target = match to {
        Some(id) => id.to_owned(),
        None => default_target(store, &keys, service, &current, &history)?,
    };
    if target == current {
        let now = store.manifest(&keys, &current)?;
        // A rollback that flipped but died before recording the snapshot it left: record it
        // now, so that a later default rollback never goes back to that one.
        if let Some(from) = now.as_ref().and_then(|m| m.restored_from.as_deref())
            && let Some(mut left) = store.manifest(&keys, from)?
            && left.rolled_back_at.is_none()
        {
            left.rolled_back_at = now.as_ref().and_then(|m| m.restored_at.clone());
            store.put_manifest(&keys, &left)?;
        }
        let as_of = now.map(|m| m.as_of).unwrap_or_default();
        lock.release();
        return Ok(RolledBack {
            service: service.name.clone(),
            from: current.clone(),
            to: current,
            as_of,
            changed: false,
            sampled: 0,
        });
    }
    let position = history.iter().position(|(id, _)| *id == target);
    let m = store.manifest(&keys, &target)?;
    let m = match (position, m) {
        (None, _) => {
            return Err(refuse(
                service,
                &target,
                "it is not in the history of committed snapshots".into(),
            ));
        }
        (_, None) => {
            return Err(refuse(
                service,
                &target,
                "it has expired (its manifest is gone)".into(),
            ));
        }
        (_, Some(m)) if m.retired_at.is_some() => {
            return Err(refuse(
                service,
                &target,
                format!(
                    "it was retired at {}; a retired snapshot never becomes current again",
                    m.retired_at.as_deref().unwrap_or("?")
                ),
            ));
        }
        (Some(p), Some(_)) if p >= repo.keep_snapshots => {
            return Err(refuse(
                service,
                &target,
                format!(
                    "it is not among the {} kept snapshots (materialization.keep_snapshots)",
                    repo.keep_snapshots
                ),
            ));
        }
        (_, Some(m)) => m,
    };
    // Every key there: the key list holds as many entities as the manifest, and a sample of
    // them, spread over the list, exists.
    let list = store.key_list(&keys, &target)?.ok_or_else(|| {
        refuse(
            service,
            &target,
            "it has no key list to check its keys against".into(),
        )
    })?;
    let entities = Entities::decode(&list, &keys.key_list(&target))?;
    let listed: HashSet<&str> = entities.iter().collect();
    if (listed.len() as u64) < m.keys_written {
        return Err(refuse(
            service,
            &target,
            format!(
                "its key list names {} entities, its manifest {}",
                listed.len(),
                m.keys_written
            ),
        ));
    }
    let step = (entities.len() / ROLLBACK_SAMPLE).max(1);
    let prefix = keys.data_prefix(&target);
    let sample: Vec<String> = entities
        .iter()
        .step_by(step)
        .map(|e| format!("{prefix}{e}"))
        .collect();
    let present = store.extend_expiry(&sample, None, true)?;
    if let Some(i) = present.iter().position(|p| !p.present()) {
        return Err(refuse(
            service,
            &target,
            format!("its key {} is missing", sample[i]),
        ));
    }
    // The target records where it came back from before the flip, so a retry after a crash
    // between the two still finds the rollback done.
    let now = format_us(now_us());
    let mut restored = m.clone();
    restored.restored_from = Some(current.clone());
    restored.restored_at = Some(now.clone());
    restored.rolled_back_at = None;
    store.put_manifest(&keys, &restored)?;
    if let Err(e) = store.flip(&keys, &lock, &target, &current) {
        // Not made current after all: its manifest says nothing of a rollback (best effort).
        let _ = store.put_manifest(&keys, &m);
        return Err(e);
    }
    if let Some(mut from) = store.manifest(&keys, &current)? {
        from.rolled_back_at = Some(now);
        store.put_manifest(&keys, &from)?;
    }
    lock.release();
    Ok(RolledBack {
        service: service.name.clone(),
        from: current,
        to: target,
        as_of: m.as_of,
        changed: true,
        sampled: sample.len(),
    })
}

fn refuse(service: &Service, snapshot: &str, why: String) -> Error {
    Error::RollbackRefused {
        service: service.name.clone(),
        snapshot: snapshot.to_owned(),
        reason: why,
    }
}

/// What `gc` did (or would do) for a service.
#[derive(Debug, Clone, Serialize)]
pub struct Collected {
    pub service: String,
    #[serde(flatten)]
    pub retired: Retired,
    /// Set when a run held the lock: its own snapshot and the leftovers were left to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_leftovers_of_running: Option<String>,
}

/// Retires what §3.1 does not keep, for each service: committed snapshots beyond
/// `keep_snapshots` and leftovers of runs that never committed. Takes the run lock when it is
/// free; while a run holds it, retires only committed snapshots beyond `keep` and never that
/// run's own snapshot (the run retires the leftovers itself after its commit).
pub fn gc(
    repo: &Repo,
    store: &dyn OnlineStore,
    services: &[&Service],
    dry_run: bool,
) -> Result<Vec<Collected>> {
    let lease = Duration::from_millis(repo.lock_lease_ms as u64);
    let mut out = Vec::new();
    for service in services {
        let keys = KeySpace::new(&repo.online.key_prefix, &repo.project, &service.name);
        let now_ms = store.now_ms()?;
        let collected = match store.lock(&keys, lease, Duration::ZERO, GC) {
            Ok(lock) => {
                let ids = retirable(store, &keys, repo.keep_snapshots, None, false)?;
                let retired = retire_ids(store, &keys, ids, now_ms, repo.retire_grace_ms, dry_run)?;
                lock.release();
                Collected {
                    service: service.name.clone(),
                    retired,
                    skipped_leftovers_of_running: None,
                }
            }
            Err(Error::LockHeld { holder, .. }) => {
                let running = holder
                    .as_deref()
                    .and_then(running_snapshot)
                    .map(str::to_owned);
                let ids = retirable(store, &keys, repo.keep_snapshots, running.as_deref(), true)?;
                Collected {
                    service: service.name.clone(),
                    retired: retire_ids(store, &keys, ids, now_ms, repo.retire_grace_ms, dry_run)?,
                    skipped_leftovers_of_running: Some(
                        running.unwrap_or_else(|| holder.unwrap_or_default()),
                    ),
                }
            }
            Err(e) => return Err(e),
        };
        out.push(collected);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_tokens_name_their_holder() {
        assert!(is_gc("host:pid1:2:gc"));
        assert!(!is_gc("host:pid1:2:ab12cd34"));
        assert_eq!(running_snapshot("host:pid1:2:ab12cd34"), Some("ab12cd34"));
        assert_eq!(running_snapshot("host:pid1:2:gc"), None);
    }
}
