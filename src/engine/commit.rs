//! Committing a service's snapshot (SPEC §3, §3.3): the checks before a run writes (is
//! `current` newer?), the flip with the lifecycle after it, and the shard manifests a sharded
//! run records for its commit. A whole run (`job`) and the commit of a sharded one (`shards`)
//! both commit through here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::lifecycle;
use crate::assemble::RecordedChecks;
use crate::base::error::{Error, Result};
use crate::base::time::format_us;
use crate::offline::Shard;
use crate::online::{Flip, KeySpace, Manifest, OnlineStore, RunLock};
use crate::repo::Repo;

/// What a shard records at `snapshot:{id}:shard:{I}`: its manifest (figures over its own
/// entities; inputs and row counts as every shard reads them), its place in the job and the
/// quality checks' statistics the commit's gate adds up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardManifest {
    pub shard: u32,
    pub shards: u32,
    /// Per view: the statistics of its checks over this shard's entities.
    pub checks: BTreeMap<String, RecordedChecks>,
    pub recorded_at: String,
    #[serde(flatten)]
    pub manifest: Manifest,
}

/// Did shard `shard` of `snapshot` record its manifest, as shard of the same count?
pub(crate) fn recorded(
    store: &dyn OnlineStore,
    keys: &KeySpace,
    snapshot: &str,
    shard: Shard,
) -> Result<bool> {
    let raw = store.shard_manifests(keys, snapshot, shard.index + 1)?;
    Ok(raw
        .last()
        .and_then(Option::as_deref)
        .and_then(|json| serde_json::from_str::<ShardManifest>(json).ok())
        .is_some_and(|m| m.shards == shard.count))
}

/// The snapshot `current` names, after checking that committing a run as of `end_us` would not
/// move it back in time (unless `force`).
pub(crate) fn current_before(
    store: &dyn OnlineStore,
    keys: &KeySpace,
    service: &str,
    end_us: i64,
    force: bool,
) -> Result<String> {
    let Some(cur) = store.current(keys)? else {
        return Ok(String::new());
    };
    if let Some(m) = &cur.manifest
        && m.as_of_ms > end_us / 1000
        && !force
    {
        return Err(Error::BackInTime {
            service: service.to_owned(),
            committed: cur.snapshot,
            committed_as_of: m.as_of.clone(),
            requested_as_of: format_us(end_us),
        });
    }
    Ok(cur.snapshot)
}

/// Commits `flip` under `lock`, then, still under it, retires what SPEC §3.1 no longer keeps.
/// A lost lock or a refused flip fails the commit and, with `discard_refused`, takes back the
/// snapshot's keys (another run or gc may own the service now). A failed retirement leaves
/// `current` whole and is returned as its message: the next run or `fsctl gc` finishes it.
pub(crate) fn commit_and_retire(
    repo: &Repo,
    store: &dyn OnlineStore,
    keys: &KeySpace,
    lock: RunLock,
    flip: &Flip<'_>,
    discard_refused: bool,
) -> Result<std::result::Result<lifecycle::Retired, String>> {
    let committed = if lock.is_lost() {
        Err(Error::LockLost {
            service: keys.service().to_owned(),
        })
    } else {
        store.commit(keys, &lock, flip)
    };
    let flipped_at_ms = match committed {
        Ok(at) => at,
        Err(e @ (Error::LockLost { .. } | Error::CommitRefused { .. })) => {
            drop(lock);
            if discard_refused {
                let _ = lifecycle::discard(store, keys, flip.snapshot);
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let retired = lifecycle::retire_after_commit(repo, store, keys, flip.snapshot, flipped_at_ms)
        .map_err(|e| e.to_string());
    lock.release();
    Ok(retired)
}
