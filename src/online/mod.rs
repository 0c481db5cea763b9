//! The online stage: every Redis command fsctl sends, behind the `OnlineStore` trait (writes,
//! expiries, samples, reads, the run lock, the commit, deletes), with Redis key names, the
//! manifest, the RESP encoder and the reader. It takes encoded vectors and knows nothing about
//! Parquet.

mod cluster;
mod keylist;
mod keys;
mod manifest;
mod reader;
mod redis;
mod resp;
mod slots;
mod store;

pub use self::cluster::ClusterStore;

/// The Feast layout's conditional write of one entity's hash (SPEC §3.4), loaded on every
/// connection of a store that writes it and called by its SHA1.
pub const FEAST_WRITE_SCRIPT: &str = include_str!("feast_write.lua");
pub use self::keylist::{Entities, frame as key_list_frame};
pub use self::keys::{KeySpace, data_key_expiry_ms, expiry_bounds, expiry_ms};
pub use self::manifest::*;
pub use self::reader::{Pinned, Reader, check, check_apart};
pub use self::redis::{RedisStore, RunLock, effective_url};
pub use self::resp::{PackedBatch, RespFile, Route, command};
pub use self::store::{
    CommandSink, Committed, Expiry, Flip, HashFields, Memory, OnlineStore, WriteStats,
};

/// The online store a repo's configuration names (SPEC §1 `online_store.type`).
pub fn open(config: &crate::repo::OnlineStoreConfig) -> crate::Result<Box<dyn OnlineStore>> {
    Ok(match config.kind {
        crate::repo::StoreKind::Redis => Box::new(RedisStore::open(config)?),
        crate::repo::StoreKind::RedisCluster => Box::new(ClusterStore::open(config)?),
    })
}

/// The commit as plain commands in one MULTI, for `--emit-resp` (no lock, no check).
pub fn commit_commands(keys: &KeySpace, flip: &Flip<'_>) -> Vec<Vec<Vec<u8>>> {
    let s = |t: &str| t.as_bytes().to_vec();
    vec![
        vec![s("MULTI")],
        vec![
            s("SET"),
            s(&keys.manifest(flip.snapshot)),
            s(flip.manifest_json),
            s("PXAT"),
            s(&flip.manifest_pxat_ms.to_string()),
        ],
        vec![s("SET"), s(&keys.current()), s(flip.snapshot)],
        vec![
            s("ZADD"),
            s(&keys.snapshots()),
            s(&flip.committed_at_ms.to_string()),
            s(flip.snapshot),
        ],
        vec![s("EXEC")],
    ]
}
