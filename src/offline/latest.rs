//! Latest row per entity: the candidates kept while scanning, and the frozen result the later
//! stages read.
//!
//! While scanning, entities live in `SHARDS` independently locked hash maps, so parallel row
//! groups share one map per view. A candidate holds its row's null positions and encoded items
//! in one allocation, reused when a newer row of the same size replaces it. When the scan ends,
//! each shard is frozen into an exactly-sized vector sorted by `locality_key`, with all items in
//! one arena: about a third of the hash map's memory, and a layout that assembly reads in order.

use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use compact_str::CompactString;
use rayon::prelude::*;
use rustc_hash::{FxBuildHasher, FxHashMap};

const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;

/// Shards take middle bits of the hash: hashbrown uses the low bits for the bucket and the top
/// 7 as each bucket's tag, so sharding on either would make keys of a shard collide (profiled:
/// sharding on the top bits spent a third of the scan in string compares).
fn shard_of_hash(hash: u64) -> usize {
    ((hash >> 40) as usize) & (SHARDS - 1)
}

fn shard_of(key: &str) -> usize {
    shard_of_hash(FxBuildHasher.hash_one(key))
}

/// A deterministic processing order with good locality: by shard, then by the hash's low bits.
pub fn locality_key(entity: &str) -> u64 {
    let hash = FxBuildHasher.hash_one(entity);
    ((shard_of_hash(hash) as u64) << 32) | (hash & 0xffff_ffff)
}

/// What decides which row wins (SPEC §2.2): event time, then created time, then scan order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    pub event_us: i64,
    /// `i64::MIN` when absent or null, so it loses every tie.
    pub created_us: i64,
    /// File index << 40 | row within the file.
    pub order: u64,
}

/// The best row seen so far for one entity, during the scan.
struct Candidate {
    rank: Rank,
    /// `[null count: u16][null positions: u16...][MessagePack items]`, little-endian.
    data: Box<[u8]>,
}

fn pack(nulls: &[u16], items: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&(nulls.len() as u16).to_le_bytes());
    for n in nulls {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(items);
}

/// Latest rows being collected by parallel tasks.
pub(crate) struct Collector {
    shards: Vec<Mutex<FxHashMap<CompactString, Candidate>>>,
    pub null_entity_rows: AtomicU64,
    pub null_timestamp_rows: AtomicU64,
    pub rows_in_window: AtomicU64,
}

/// A batch of rows grouped by shard, ready to be offered to the collector.
#[derive(Default)]
pub(crate) struct ShardedBatch {
    keys: String,
    key_ends: Vec<usize>,
    by_shard: Vec<Vec<u32>>,
    packed: Vec<u8>,
}

impl ShardedBatch {
    pub fn clear(&mut self) {
        self.keys.clear();
        self.key_ends.clear();
        self.by_shard.resize_with(SHARDS, Vec::new);
        self.by_shard.iter_mut().for_each(Vec::clear);
    }

    /// The key buffer to render row `i`'s key into (rows must be pushed in order).
    pub fn key_buffer(&mut self) -> &mut String {
        &mut self.keys
    }

    /// Ends row `i`'s key; `keep` false drops the row (e.g. filtered out by `warm`).
    pub fn end_key(&mut self, i: u32, keep: impl FnOnce(&str) -> bool) {
        let start = self.key_ends.last().copied().unwrap_or(0);
        self.key_ends.push(self.keys.len());
        let key = &self.keys[start..];
        if keep(key) {
            self.by_shard[shard_of(key)].push(i);
        }
    }

    fn key(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.key_ends[i - 1] };
        &self.keys[start..self.key_ends[i]]
    }
}

impl Collector {
    pub fn new() -> Collector {
        Collector {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(FxHashMap::default()))
                .collect(),
            null_entity_rows: AtomicU64::new(0),
            null_timestamp_rows: AtomicU64::new(0),
            rows_in_window: AtomicU64::new(0),
        }
    }

    /// Offers every row of `batch`, one lock per shard. `rank(i)` ranks row i; `encode(i, nulls,
    /// items)` writes its values and is called only for rows that beat the current best.
    pub fn offer(
        &self,
        batch: &mut ShardedBatch,
        rank: impl Fn(usize) -> Rank,
        mut encode: impl FnMut(usize, &mut Vec<u16>, &mut Vec<u8>),
        nulls: &mut Vec<u16>,
        items: &mut Vec<u8>,
    ) {
        let mut packed = std::mem::take(&mut batch.packed);
        for (shard, members) in batch.by_shard.iter().enumerate() {
            if members.is_empty() {
                continue;
            }
            let mut map = self.shards[shard].lock().expect("no task panicked");
            for &i in members {
                let i = i as usize;
                let key = batch.key(i);
                let r = rank(i);
                let slot = map.get_mut(key);
                if slot.as_ref().is_some_and(|c| c.rank >= r) {
                    continue;
                }
                nulls.clear();
                items.clear();
                encode(i, nulls, items);
                pack(nulls, items, &mut packed);
                match slot {
                    Some(c) => {
                        c.rank = r;
                        if c.data.len() == packed.len() {
                            c.data.copy_from_slice(&packed);
                        } else {
                            c.data = packed.as_slice().into();
                        }
                    }
                    None => {
                        map.insert(
                            CompactString::from(key),
                            Candidate {
                                rank: r,
                                data: packed.as_slice().into(),
                            },
                        );
                    }
                }
            }
        }
        batch.packed = packed;
    }

    /// Freezes every shard (in parallel), releasing each hash map as soon as it is converted.
    pub fn freeze(self) -> LatestRows {
        let shards = self
            .shards
            .into_par_iter()
            .map(|m| {
                let map = m.into_inner().expect("no task panicked");
                let mut entries: Vec<(u64, CompactString, Candidate)> = map
                    .into_iter()
                    .map(|(k, c)| (locality_key(&k), k, c))
                    .collect();
                entries.sort_unstable_by(|a, b| (a.0, a.1.as_str()).cmp(&(b.0, b.1.as_str())));
                let mut arena = Vec::with_capacity(entries.iter().map(|e| e.2.data.len()).sum());
                let rows = entries
                    .into_iter()
                    .map(|(locality, key, c)| {
                        let at = arena.len() as u32;
                        arena.extend_from_slice(&c.data);
                        FrozenRow {
                            locality,
                            key,
                            event_us: c.rank.event_us,
                            at,
                            len: c.data.len() as u32,
                        }
                    })
                    .collect();
                FrozenShard { rows, arena }
            })
            .collect();
        LatestRows {
            shards,
            null_entity_rows: self.null_entity_rows.into_inner(),
            null_timestamp_rows: self.null_timestamp_rows.into_inner(),
            rows_in_window: self.rows_in_window.into_inner(),
        }
    }

    pub fn count(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

struct FrozenRow {
    locality: u64,
    key: CompactString,
    event_us: i64,
    at: u32,
    len: u32,
}

struct FrozenShard {
    rows: Vec<FrozenRow>,
    arena: Vec<u8>,
}

/// The latest row of one entity in one view.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub event_us: i64,
    data: &'a [u8],
}

impl<'a> Row<'a> {
    fn null_count(&self) -> usize {
        u16::from_le_bytes([self.data[0], self.data[1]]) as usize
    }

    /// The needed features' MessagePack items, nulls already imputed.
    pub fn items(&self) -> &'a [u8] {
        &self.data[2 + 2 * self.null_count()..]
    }

    /// Was the value at `pos` (in the scan's `needed`) null or NaN in the source?
    pub fn is_null(&self, pos: usize) -> bool {
        (0..self.null_count()).any(|i| {
            u16::from_le_bytes([self.data[2 + 2 * i], self.data[3 + 2 * i]]) as usize == pos
        })
    }
}

/// The result of scanning a view: the latest row per entity plus what the manifest reports.
pub struct LatestRows {
    shards: Vec<FrozenShard>,
    pub null_entity_rows: u64,
    pub null_timestamp_rows: u64,
    pub rows_in_window: u64,
}

impl LatestRows {
    pub fn get(&self, entity: &str) -> Option<Row<'_>> {
        let locality = locality_key(entity);
        let shard = &self.shards[(locality >> 32) as usize];
        let i = shard
            .rows
            .binary_search_by(|r| (r.locality, r.key.as_str()).cmp(&(locality, entity)))
            .ok()?;
        let r = &shard.rows[i];
        Some(Row {
            event_us: r.event_us,
            data: &shard.arena[r.at as usize..(r.at + r.len) as usize],
        })
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.rows.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entities with their locality key, in locality order.
    pub fn keys(&self) -> impl Iterator<Item = (u64, &str)> {
        self.shards
            .iter()
            .flat_map(|s| s.rows.iter().map(|r| (r.locality, r.key.as_str())))
    }

    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.shards.iter().flat_map(|s| {
            s.rows.iter().map(|r| Row {
                event_us: r.event_us,
                data: &s.arena[r.at as usize..(r.at + r.len) as usize],
            })
        })
    }
}
