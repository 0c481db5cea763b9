//! The output layout: how a service's joined entities land in Redis. The pipeline reads, joins
//! and counts without knowing; a run's partitions (`job`) and the hot entities `warm` recomputes
//! both hand their entities to the service's layout, which decides the keys, encodes the values,
//! says whether they are listed for retirement, and stages the commands. One match here is where
//! another layout goes.
//!
//! fsctl's own (SPEC §3, below): one versioned string key per entity and snapshot holding a
//! format-1 vector, listed in the snapshot's key list before it is written, expiring at the
//! jittered TTL. Feast's (SPEC §3.4, `feast.rs`): Feast's hashes, written in place.

mod feast;

use self::feast::FeastHashes;
pub(crate) use self::feast::feast_key;
use crate::assemble::{Assembler, ColumnCounts, JoinedSlice};
use crate::online::{self, KeySpace, PackedBatch};
use crate::repo::{OutputLayout, Repo, Service};

/// Where and how one service's entities are written.
pub(crate) enum Layout {
    /// SPEC §3: `{prefix}:{project}:{service}:{snapshot}:{entity}` = a format-1 vector.
    Versioned(VersionedKeys),
    /// SPEC §3.4: Feast's hash per entity key, no snapshot.
    Feast(FeastHashes),
}

/// fsctl's layout for one snapshot.
pub(crate) struct VersionedKeys {
    /// `{prefix}:{project}:{service}:{snapshot}:`, the entity follows.
    data_prefix: String,
    as_of_ms: i64,
    ttl_ms: i64,
    jitter: f64,
    /// The entity has one integer join key (the key list stores such keys compactly).
    integer_key: bool,
}

impl Layout {
    /// The layout `service` writes `snapshot` in, as of `as_of_ms`, its keys living `ttl_ms`
    /// (jittered later, SPEC §3).
    pub(crate) fn of(
        repo: &Repo,
        service: &Service,
        keys: &KeySpace,
        snapshot: &str,
        as_of_ms: i64,
        ttl_ms: i64,
    ) -> Layout {
        if repo.layout == OutputLayout::Feast {
            return Layout::Feast(FeastHashes::new(repo, service));
        }
        Layout::Versioned(VersionedKeys {
            data_prefix: keys.data_prefix(snapshot),
            as_of_ms,
            ttl_ms,
            jitter: repo.ttl_jitter,
            integer_key: repo.entities[service.entity].has_integer_key(),
        })
    }

    /// The frame of the snapshot's key list that names `entities`, to append before any of them
    /// is written (retirement goes by the list), or `None` when the layout keeps no list.
    pub(crate) fn key_list_frame<'e>(
        &self,
        entities: impl Iterator<Item = &'e str>,
    ) -> Option<Vec<u8>> {
        match self {
            Layout::Versioned(v) => Some(online::key_list_frame(entities, v.integer_key)),
            Layout::Feast(_) => None,
        }
    }

    /// Encodes `entities` and stages their writes, `batch` entities per batch, in entity order,
    /// adding to `counts` (one per column).
    pub(crate) fn stage<'a>(
        &self,
        assembler: &Assembler<'a>,
        entities: JoinedSlice<'_, 'a>,
        batch: usize,
        counts: &mut [ColumnCounts],
    ) -> Vec<PackedBatch> {
        match self {
            Layout::Versioned(v) => assembler.encode_each(
                entities,
                batch,
                counts,
                PackedBatch::default,
                |staged, entity, vector| {
                    let pxat_ms = online::data_key_expiry_ms(
                        &v.data_prefix,
                        entity,
                        v.as_of_ms,
                        v.ttl_ms,
                        v.jitter,
                    );
                    staged.push_set(&v.data_prefix, entity, vector, pxat_ms);
                },
            ),
            Layout::Feast(f) => f.stage(assembler, entities, batch, counts),
        }
    }
}
