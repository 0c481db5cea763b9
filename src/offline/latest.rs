//! Latest row per entity: the candidates kept while scanning, and the frozen result the later
//! stages read.
//!
//! While scanning, entities live in `SHARDS` independently locked shards, so parallel row groups
//! share one table per view. A shard is a small hash index (16-byte entries) over a dense
//! vector of slots, whose rows (null positions and encoded items) live in one arena and are
//! overwritten in place by a newer row that fits: no allocation per entity or per row. When the
//! scan ends, each shard is frozen into an exactly-sized vector in processing order (by shard,
//! then by the key's hash, then by the key), its rows copied into a new arena in that order, so
//! assembly reads every view sequentially and joins them by merging (see `Assembler::entities`).

use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use compact_str::CompactString;
use hashbrown::HashTable;
use rayon::prelude::*;
use rustc_hash::{FxBuildHasher, FxHasher};

use crate::base::entity_key::KeyPart;

const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;

/// Processing order: shard, then the low 32 bits of the key's `FxBuildHasher` hash, then the
/// key. Shards take middle bits of the hash: hashbrown uses the low bits for the bucket and the top
/// 7 as each bucket's tag, so sharding on either would make keys of a shard collide (profiled:
/// sharding on the top bits spent a third of the scan in string compares).
fn shard_of_hash(hash: u64) -> usize {
    ((hash >> 40) as usize) & (SHARDS - 1)
}

/// The hash shard, index bucket and order derive from. One entity's keys are all strings or
/// all integers, so every view of a service orders its entities alike.
pub(crate) fn key_hash(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// `key_hash` for an integer key (the splitmix64 finalizer: every bit depends on every bit).
fn int_hash(v: i64) -> u64 {
    let mut x = v as u64;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Where an entity comes in processing order, which is the order a partition's entities are
/// assembled and written in: ascending, ties (equal shard bits and low 32 bits, about two pairs
/// in a million entities) broken by the rendered key. For a single integer join key.
pub fn int_write_order(v: i64) -> u64 {
    order_of_hash(int_hash(v))
}

/// [`int_write_order`] for any other key, rendered.
pub fn str_write_order(key: &str) -> u64 {
    order_of_hash(key_hash(key))
}

fn order_of_hash(hash: u64) -> u64 {
    (shard_of_hash(hash) as u64) << 32 | u64::from(hash as u32)
}

/// What decides which row wins (SPEC §2.2): event time, then created time, then scan order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Rank {
    pub event_us: i64,
    /// `i64::MIN` when absent or null, so it loses every tie.
    pub created_us: i64,
    /// File index << 40 | row within the file.
    pub order: u64,
}

/// The best row seen so far for one entity, during the scan.
struct Slot {
    key: CompactString,
    rank: Rank,
    /// The row's data in the shard's arena: `[null count: u16][null positions: u16...]
    /// [MessagePack items]`, little-endian, in `len` of the `cap` bytes reserved at `at`.
    at: u32,
    len: u32,
    cap: u32,
}

/// One shard of the candidates: a small table of `(slot, low 32 bits of the key's hash, integer
/// key or 0)` (it stays in cache, grows without touching the slots, and settles an integer key
/// without them; as a map of 64-byte entries it was the scan's largest cost) over a dense vector
/// of slots, whose rows live in one arena. A newer row
/// overwrites its predecessor in place when it fits the bytes reserved (rows of a view differ
/// only by strings and integer widths), else it is appended: no allocation per entity.
struct Stripe {
    index: HashTable<(u32, u32, i64)>,
    slots: Vec<Slot>,
    arena: Vec<u8>,
}

impl Stripe {
    /// The slot of row `i`'s entity, if the shard holds it.
    fn find(&self, batch: &ShardedBatch, i: usize, ints: bool) -> Option<u32> {
        let low = batch.hashes[i] as u32;
        if ints {
            let v = batch.ints[i];
            self.index
                .find(index_hash(low), |&(_, l, k)| l == low && k == v)
        } else {
            let key = batch.key(i);
            self.index.find(index_hash(low), |&(s, l, _)| {
                l == low && self.slots[s as usize].key == key
            })
        }
        .map(|&(s, _, _)| s)
    }

    fn reserve(&mut self, packed: &[u8]) -> (u32, u32) {
        let at = u32::try_from(self.arena.len()).expect("a shard's rows stay under 4 GiB");
        let cap = packed.len().next_multiple_of(8);
        self.arena.extend_from_slice(packed);
        self.arena.resize(at as usize + cap, 0);
        (at, cap as u32)
    }
}

/// The hash the index is built on, rebuilt from the low 32 bits it keeps: hashbrown takes the
/// bucket from the low bits and a tag from the top 7, and the shard bits (40..46) are left out.
fn index_hash(low: u32) -> u64 {
    u64::from(low) << 32 | u64::from(low)
}

/// Encodes a row straight into `out` in the arena's layout (see `Slot`): a null count, then the
/// items; null positions, which are rare, are inserted between the two afterwards.
fn pack(out: &mut Vec<u8>, nulls: &mut Vec<u16>, encode: impl FnOnce(&mut Vec<u16>, &mut Vec<u8>)) {
    out.clear();
    out.extend_from_slice(&[0, 0]);
    nulls.clear();
    encode(nulls, out);
    if !nulls.is_empty() {
        out[..2].copy_from_slice(&(nulls.len() as u16).to_le_bytes());
        out.splice(2..2, nulls.iter().flat_map(|n| n.to_le_bytes()));
    }
}

/// Latest rows being collected by parallel tasks.
pub(crate) struct Collector {
    shards: Vec<Mutex<Stripe>>,
    pub null_entity_rows: AtomicU64,
    pub null_timestamp_rows: AtomicU64,
    pub rows_in_window: AtomicU64,
}

/// A share of the entities, chosen by their key's hash: a run may scan its views once per
/// partition so that writing one partition overlaps reading the next (see `materialize`). A
/// sharded run (SPEC §3.3) partitions only its own shard's entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
    pub shard: Shard,
}

/// One of the `count` shards of a sharded run (SPEC §3.3): the entities whose key hash falls in
/// the `index`-th of `count` equal ranges. Every process of a sharded job computes the same
/// hash, so the shards are disjoint and their union is every entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// An unsharded run.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Partition {
    /// Every entity.
    pub const ALL: Partition = Partition {
        index: 0,
        count: 1,
        shard: Shard::WHOLE,
    };

    /// Partition `index` of `count` of the entities of `shard`.
    pub fn of(shard: Shard, index: u32, count: u32) -> Partition {
        Partition {
            index,
            count,
            shard,
        }
    }

    /// Does the partition hold the entity with these join key values? Decided on the values
    /// themselves, not on the rendered key: an integer key needs no rendering to be dropped.
    #[inline]
    pub(crate) fn holds(&self, parts: &[KeyPart<'_>]) -> bool {
        if self.count <= 1 && self.shard.count <= 1 {
            return true;
        }
        let mut h = FxHasher::default();
        for part in parts {
            match part {
                KeyPart::Int(v) => h.write_i64(*v),
                KeyPart::Str(s) => h.write(s.as_bytes()),
            }
        }
        // The splitmix64 finalizer, so that the choice is independent of the shard and order.
        let mut x = h.finish();
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        if self.shard.count > 1 {
            // SPEC §3.3: the shard is the high 32 bits of the hash times N, shifted right by 32
            // (every shard of a job, and any reader of the contract, computes the same); the low
            // 32 bits, uniform within a shard, choose the partition.
            if ((x >> 32) * u64::from(self.shard.count)) >> 32 != u64::from(self.shard.index) {
                return false;
            }
            x <<= 32;
        }
        if self.count <= 1 {
            return true;
        }
        // The last partition gets half a share: its writes are the only ones nothing overlaps.
        let shares = 2 * u64::from(self.count) - 1;
        // `x` scaled to 0..shares (a multiply, not a division: this runs for every row read).
        let share = ((u128::from(x) * u128::from(shares)) >> 64) as u32;
        (share / 2).min(self.count - 1) == self.index
    }
}

/// A batch of rows grouped by shard, ready to be offered to the collector. Keys are rendered
/// strings, or, for an entity with a single int64 join key, the integers themselves: they are
/// hashed and compared as integers and rendered only once per entity.
#[derive(Default)]
pub(crate) struct ShardedBatch {
    keys: String,
    key_ends: Vec<usize>,
    /// Row `i`'s integer key (integer batches only).
    ints: Vec<i64>,
    hashes: Vec<u64>,
    by_shard: Vec<Vec<u32>>,
    packed: Vec<u8>,
    /// Scratch for `Collector::offer`: the slot each row of a shard was found in.
    found: Vec<u32>,
}

impl ShardedBatch {
    pub(super) fn clear(&mut self) {
        self.keys.clear();
        self.key_ends.clear();
        self.ints.clear();
        self.hashes.clear();
        self.by_shard.resize_with(SHARDS, Vec::new);
        self.by_shard.iter_mut().for_each(Vec::clear);
    }

    /// The key buffer to render row `i`'s key into (rows must be pushed in order).
    pub(super) fn key_buffer(&mut self) -> &mut String {
        &mut self.keys
    }

    /// Ends row `i`'s key; `keep` false drops the row (e.g. filtered out by `warm`).
    pub(super) fn end_key(&mut self, i: u32, keep: impl FnOnce(&str) -> bool) {
        let start = self.key_ends.last().copied().unwrap_or(0);
        self.key_ends.push(self.keys.len());
        let key = &self.keys[start..];
        let hash = key_hash(key);
        self.hashes.push(hash);
        if keep(key) {
            self.by_shard[shard_of_hash(hash)].push(i);
        }
    }

    /// Ends row `i` of an integer batch with key `v`; `keep` false drops the row.
    pub(super) fn end_int(&mut self, i: u32, v: i64, keep: impl FnOnce(i64) -> bool) {
        let hash = int_hash(v);
        self.ints.push(v);
        self.hashes.push(hash);
        if keep(v) {
            self.by_shard[shard_of_hash(hash)].push(i);
        }
    }

    fn key(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.key_ends[i - 1] };
        &self.keys[start..self.key_ends[i]]
    }
}

impl Collector {
    /// `expected` entities (0 if unknown) are reserved up front, sparing the rehashes.
    pub(super) fn new(expected: usize) -> Collector {
        let per_shard = expected.div_ceil(SHARDS);
        let per_shard = per_shard + per_shard / 8;
        Collector {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Stripe {
                        index: HashTable::with_capacity(per_shard),
                        slots: Vec::with_capacity(per_shard),
                        arena: Vec::new(),
                    })
                })
                .collect(),
            null_entity_rows: AtomicU64::new(0),
            null_timestamp_rows: AtomicU64::new(0),
            rows_in_window: AtomicU64::new(0),
        }
    }

    /// Offers every row of `batch`, one lock per shard. `rank(i)` ranks row i; `encode(i, nulls,
    /// items)` writes its values and is called only for rows that beat the current best.
    pub(super) fn offer(
        &self,
        batch: &mut ShardedBatch,
        rank: impl Fn(usize) -> Rank,
        mut encode: impl FnMut(usize, &mut Vec<u16>, &mut Vec<u8>),
        nulls: &mut Vec<u16>,
    ) {
        let mut packed = std::mem::take(&mut batch.packed);
        let mut found = std::mem::take(&mut batch.found);
        let ints = !batch.ints.is_empty();
        for (shard, members) in batch.by_shard.iter().enumerate() {
            if members.is_empty() {
                continue;
            }
            let mut guard = self.shards[shard].lock().expect("no task panicked");
            let shard = &mut *guard;
            // The lookups first, in a loop of independent iterations: the core overlaps their
            // cache misses (index, slot, row), which one row at a time it would wait for in turn
            // (profiled: those waits were three quarters of the scan's collecting).
            found.clear();
            found.extend(members.iter().map(|&i| {
                let s = shard.find(batch, i as usize, ints);
                if let Some(s) = s {
                    let slot = &shard.slots[s as usize];
                    std::hint::black_box((slot.rank.event_us, shard.arena[slot.at as usize]));
                }
                s.unwrap_or(u32::MAX)
            }));
            for (&i, &s) in members.iter().zip(&found) {
                let i = i as usize;
                let (low, r) = (batch.hashes[i] as u32, rank(i));
                // An entity new to the shard may have been inserted by an earlier row of the batch.
                let found = match s {
                    u32::MAX => shard.find(batch, i, ints),
                    s => Some(s),
                }
                .map(|s| s as usize);
                if found.is_some_and(|s| shard.slots[s].rank >= r) {
                    continue;
                }
                pack(&mut packed, nulls, |nulls, out| encode(i, nulls, out));
                match found {
                    Some(s) => {
                        let slot = &shard.slots[s];
                        let (at, cap) = if packed.len() <= slot.cap as usize {
                            let at = slot.at as usize;
                            shard.arena[at..at + packed.len()].copy_from_slice(&packed);
                            (slot.at, slot.cap)
                        } else {
                            shard.reserve(&packed)
                        };
                        let slot = &mut shard.slots[s];
                        (slot.rank, slot.at, slot.len, slot.cap) =
                            (r, at, packed.len() as u32, cap);
                    }
                    None => {
                        let (at, cap) = shard.reserve(&packed);
                        let s = u32::try_from(shard.slots.len())
                            .expect("under 2^32 entities per shard");
                        let (key, int) = if ints {
                            let v = batch.ints[i];
                            (CompactString::from(itoa::Buffer::new().format(v)), v)
                        } else {
                            (CompactString::from(batch.key(i)), 0)
                        };
                        shard.slots.push(Slot {
                            key,
                            rank: r,
                            at,
                            len: packed.len() as u32,
                            cap,
                        });
                        shard
                            .index
                            .insert_unique(index_hash(low), (s, low, int), |&(_, l, _)| {
                                index_hash(l)
                            });
                    }
                }
            }
        }
        batch.packed = packed;
        batch.found = found;
    }

    /// Freezes every shard (in parallel), releasing each shard as soon as it is converted.
    pub(super) fn freeze(self, rows_read: Vec<u64>) -> LatestRows {
        let shards = self
            .shards
            .into_par_iter()
            .enumerate()
            .map(|(shard, m)| {
                let Stripe {
                    index,
                    mut slots,
                    arena: scanned,
                } = m.into_inner().expect("no task panicked");
                let mut order: Vec<(u64, u32)> = index
                    .into_iter()
                    .map(|(i, low, _)| ((shard as u64) << 32 | u64::from(low), i))
                    .collect();
                order.sort_unstable_by(|a, b| {
                    a.0.cmp(&b.0).then_with(|| {
                        slots[a.1 as usize]
                            .key
                            .as_str()
                            .cmp(slots[b.1 as usize].key.as_str())
                    })
                });
                // Rows are copied out in processing order, which assembly then reads sequentially.
                let mut arena = Vec::with_capacity(slots.iter().map(|s| s.len as usize).sum());
                let rows = order
                    .into_iter()
                    .map(|(locality, i)| {
                        let s = &mut slots[i as usize];
                        let at = arena.len() as u32;
                        arena.extend_from_slice(&scanned[s.at as usize..(s.at + s.len) as usize]);
                        FrozenRow {
                            locality,
                            key: std::mem::take(&mut s.key),
                            event_us: s.rank.event_us,
                            at,
                            len: s.len,
                        }
                    })
                    .collect();
                let rows: Vec<FrozenRow> = rows;
                assert!(
                    rows.len() < (1 << ROW_BITS) - 1,
                    "too many entities in one shard"
                );
                FrozenShard { rows, arena }
            })
            .collect();
        LatestRows {
            shards,
            rows_read,
            null_entity_rows: self.null_entity_rows.into_inner(),
            null_timestamp_rows: self.null_timestamp_rows.into_inner(),
            rows_in_window: self.rows_in_window.into_inner(),
        }
    }

    /// Where each entity's best row is (`Rank::order`: file << 40 | row within the file), for
    /// a first pass that ranked rows without their features; and the pass's row counts.
    pub(super) fn into_orders(self) -> (Vec<u64>, [u64; 3]) {
        let counts = [
            self.null_entity_rows.into_inner(),
            self.null_timestamp_rows.into_inner(),
            self.rows_in_window.into_inner(),
        ];
        let orders = self
            .shards
            .into_iter()
            .flat_map(|m| {
                let stripe = m.into_inner().expect("no task panicked");
                stripe.slots.into_iter().map(|s| s.rank.order)
            })
            .collect();
        (orders, counts)
    }

    pub(super) fn count(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Where a row is in `LatestRows`: its shard in the top `SHARD_BITS` bits, its index below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowRef(u32);

const ROW_BITS: u32 = 32 - SHARD_BITS;

impl RowRef {
    /// No row: the entity is absent from the view.
    pub const NONE: RowRef = RowRef(u32::MAX);
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

    /// The positions (in the scan's `needed`) whose values were null or NaN in the source.
    pub fn nulls(&self) -> impl Iterator<Item = usize> + 'a {
        let data = self.data;
        (0..self.null_count())
            .map(move |i| u16::from_le_bytes([data[2 + 2 * i], data[3 + 2 * i]]) as usize)
    }

    /// Was the value at `pos` (in the scan's `needed`) null or NaN in the source?
    pub fn is_null(&self, pos: usize) -> bool {
        self.nulls().any(|p| p == pos)
    }
}

/// The result of scanning a view: the latest row per entity plus what the manifest reports.
pub struct LatestRows {
    shards: Vec<FrozenShard>,
    /// Per file of the scan: rows read after row-group pruning.
    pub rows_read: Vec<u64>,
    pub null_entity_rows: u64,
    pub null_timestamp_rows: u64,
    pub rows_in_window: u64,
}

impl LatestRows {
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.rows.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entities in locality order, with their locality key and where their row is (for `row`).
    pub fn keys(&self) -> impl Iterator<Item = (u64, &str, RowRef)> {
        self.shards.iter().enumerate().flat_map(|(shard, s)| {
            s.rows.iter().enumerate().map(move |(i, r)| {
                let at = RowRef((shard as u32) << ROW_BITS | i as u32);
                (r.locality, r.key.as_str(), at)
            })
        })
    }

    /// The row at `at`, as given by `keys`.
    pub fn row(&self, at: RowRef) -> Row<'_> {
        let shard = &self.shards[(at.0 >> ROW_BITS) as usize];
        let r = &shard.rows[(at.0 & ((1 << ROW_BITS) - 1)) as usize];
        Row {
            event_us: r.event_us,
            data: &shard.arena[r.at as usize..(r.at + r.len) as usize],
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// SPEC §3.3, as a reader of the contract would write it: FxHash over the join key values,
    /// the splitmix64 finalizer, then the high 32 bits times N shifted right by 32.
    fn spec_shard(parts: &[KeyPart<'_>], n: u32) -> u32 {
        use std::hash::Hasher;
        let mut h = FxHasher::default();
        for part in parts {
            match part {
                KeyPart::Int(v) => h.write_i64(*v),
                KeyPart::Str(s) => h.write(s.as_bytes()),
            }
        }
        let mut x = h.finish();
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        (((x >> 32) * u64::from(n)) >> 32) as u32
    }

    #[test]
    fn an_entity_is_held_by_the_shard_the_spec_names_and_one_partition_of_it() {
        for n in [2u32, 3, 7, 1024] {
            for v in (0..3000i64).map(|i| i * 7_919 - 50_000) {
                let s = format!("k{v}");
                for parts in [
                    vec![KeyPart::Int(v)],
                    vec![KeyPart::Str(&s), KeyPart::Int(v)],
                ] {
                    let want = spec_shard(&parts, n);
                    for index in 0..n.min(8) {
                        let holders = (0..3)
                            .filter(|&p| {
                                Partition {
                                    index: p,
                                    count: 3,
                                    shard: Shard { index, count: n },
                                }
                                .holds(&parts)
                            })
                            .count();
                        assert_eq!(holders, usize::from(index == want), "{parts:?} n={n}");
                    }
                }
            }
        }
    }

    /// Offers `(key, event_us, items)` rows one batch each, the way a scan does; `end` ends row
    /// 0 of the batch with the key.
    fn collect_with<K: Copy>(
        rows: &[(K, i64, &[u8])],
        end: impl Fn(&mut ShardedBatch, K),
    ) -> LatestRows {
        let collector = Collector::new(0);
        let mut batch = ShardedBatch::default();
        let mut nulls = Vec::new();
        for (n, &(key, event_us, data)) in rows.iter().enumerate() {
            batch.clear();
            end(&mut batch, key);
            let rank = |_| Rank {
                event_us,
                created_us: i64::MIN,
                order: n as u64,
            };
            let encode = |_, _: &mut Vec<u16>, out: &mut Vec<u8>| out.extend_from_slice(data);
            collector.offer(&mut batch, rank, encode, &mut nulls);
        }
        collector.freeze(Vec::new())
    }

    #[test]
    fn null_positions_are_kept_beside_the_items() {
        let collector = Collector::new(0);
        let mut batch = ShardedBatch::default();
        batch.clear();
        batch.key_buffer().push('k');
        batch.end_key(0, |_| true);
        let rank = |_| Rank {
            event_us: 1,
            created_us: i64::MIN,
            order: 0,
        };
        let encode = |_, nulls: &mut Vec<u16>, out: &mut Vec<u8>| {
            out.extend_from_slice(&[0x01, 0xc0, 0x02, 0xc0]);
            nulls.extend([1, 3]);
        };
        collector.offer(&mut batch, rank, encode, &mut Vec::new());
        let rows = collector.freeze(Vec::new());
        let (_, key, at) = rows.keys().next().expect("one entity");
        let row = rows.row(at);
        assert_eq!(key, "k");
        assert_eq!(row.items(), [0x01, 0xc0, 0x02, 0xc0]);
        assert_eq!(row.nulls().collect::<Vec<_>>(), [1, 3]);
        assert!(row.is_null(3) && !row.is_null(2));
    }

    fn collect(rows: &[(&str, i64, &[u8])]) -> LatestRows {
        collect_with(rows, |batch, key| {
            batch.key_buffer().push_str(key);
            batch.end_key(0, |_| true);
        })
    }

    fn collect_ints(rows: &[(i64, i64, &[u8])]) -> LatestRows {
        collect_with(rows, |batch, key| batch.end_int(0, key, |_| true))
    }

    #[test]
    fn integer_keys_are_rendered_once_and_compared_as_integers() {
        let rows = collect_ints(&[
            (42, 1, b"old"),
            (-7, 3, b"neg"),
            (42, 2, b"new"),
            (i64::MIN, 1, b"min"),
            (0, 1, b"zero"),
        ]);
        assert_eq!(rows.len(), 4);
        assert_eq!(latest(&rows, "42"), Some((2, &b"new"[..])));
        assert_eq!(latest(&rows, "-7"), Some((3, &b"neg"[..])));
        assert_eq!(
            latest(&rows, "-9223372036854775808"),
            Some((1, &b"min"[..]))
        );
        assert_eq!(latest(&rows, "0"), Some((1, &b"zero"[..])));
    }

    #[test]
    fn the_write_order_is_the_scans_processing_order() {
        let data: Vec<(i64, i64, &[u8])> =
            (0..5_000).map(|i| (i * 7 - 9_000, 1, &b""[..])).collect();
        let rows = collect_ints(&data);
        let got: Vec<(u64, String)> = rows.keys().map(|(l, k, _)| (l, k.to_owned())).collect();
        assert_eq!(got.len(), data.len());
        for (l, k) in &got {
            assert_eq!(*l, int_write_order(k.parse().unwrap()));
        }
        assert!(
            got.windows(2).all(|w| w[0] <= w[1]),
            "keys() is in ascending order"
        );
        let names: Vec<String> = (0..5_000).map(|i| format!("c-{i}")).collect();
        let data: Vec<(&str, i64, &[u8])> =
            names.iter().map(|n| (n.as_str(), 1, &b""[..])).collect();
        let rows = collect(&data);
        let got: Vec<(u64, String)> = rows.keys().map(|(l, k, _)| (l, k.to_owned())).collect();
        for (l, k) in &got {
            assert_eq!(*l, str_write_order(k));
        }
        assert!(got.windows(2).all(|w| w[0] <= w[1]));
    }

    fn latest<'r>(rows: &'r LatestRows, key: &str) -> Option<(i64, &'r [u8])> {
        let (_, _, at) = rows.keys().find(|&(_, k, _)| k == key)?;
        let row = rows.row(at);
        Some((row.event_us, row.items()))
    }

    #[test]
    fn newest_row_wins_whatever_its_size() {
        let rows = collect(&[
            ("a", 10, b"0123456789"),
            ("b", 5, b"bb"),
            ("a", 30, b"x"),                       // smaller: overwritten in place
            ("a", 20, b"older"),                   // loses
            ("b", 6, b"a longer row than before"), // larger: moved
            ("c", 1, b""),
        ]);
        assert_eq!(rows.len(), 3);
        assert_eq!(latest(&rows, "a"), Some((30, &b"x"[..])));
        assert_eq!(
            latest(&rows, "b"),
            Some((6, &b"a longer row than before"[..]))
        );
        assert_eq!(latest(&rows, "c"), Some((1, &b""[..])));
        assert_eq!(latest(&rows, "d"), None);
    }

    #[test]
    fn every_entity_is_in_exactly_one_partition_and_the_last_is_half_a_share() {
        for count in [1, 2, 3, 4, 7] {
            let mut sizes = vec![0usize; count as usize];
            for i in 0..30_000i64 {
                let parts = if i % 2 == 0 {
                    vec![KeyPart::Int(i)]
                } else {
                    vec![KeyPart::Str("acct"), KeyPart::Int(i)]
                };
                let holders: Vec<u32> = (0..count)
                    .filter(|&index| Partition::of(Shard::WHOLE, index, count).holds(&parts))
                    .collect();
                assert_eq!(holders.len(), 1, "{parts:?} in {count}: {holders:?}");
                sizes[holders[0] as usize] += 1;
            }
            let share = 30_000.0 / (2.0 * f64::from(count) - 1.0);
            for (i, &n) in sizes.iter().enumerate() {
                let want = if i + 1 == count as usize {
                    share
                } else {
                    2.0 * share
                };
                assert!(
                    (n as f64 - want).abs() < want * 0.1 + 1.0,
                    "{count}: {sizes:?}"
                );
            }
        }
    }

    #[test]
    fn shards_split_the_entities_and_partitions_split_each_shard() {
        let keys: Vec<i64> = (0..40_000).collect();
        let whole = |i: i64, p: Partition| p.holds(&[KeyPart::Int(i)]);
        for shards in [2u32, 3, 4] {
            let mut sizes = vec![0usize; shards as usize];
            for &i in &keys {
                // Exactly one shard, and within it exactly one of 3 partitions.
                let owners: Vec<u32> = (0..shards)
                    .filter(|&s| {
                        whole(
                            i,
                            Partition::of(
                                Shard {
                                    index: s,
                                    count: shards,
                                },
                                0,
                                1,
                            ),
                        )
                    })
                    .collect();
                assert_eq!(owners.len(), 1, "{i} in {shards} shards: {owners:?}");
                let shard = Shard {
                    index: owners[0],
                    count: shards,
                };
                let parts = (0..3)
                    .filter(|&p| whole(i, Partition::of(shard, p, 3)))
                    .count();
                assert_eq!(parts, 1);
                // Other shards' partitions never hold it.
                for other in (0..shards).filter(|&s| s != owners[0]) {
                    let other = Shard {
                        index: other,
                        count: shards,
                    };
                    assert!((0..3).all(|p| !whole(i, Partition::of(other, p, 3))));
                }
                sizes[owners[0] as usize] += 1;
            }
            let want = keys.len() as f64 / f64::from(shards);
            assert!(
                sizes.iter().all(|&n| (n as f64 - want).abs() < want * 0.05),
                "{shards}: {sizes:?}"
            );
        }
    }

    #[test]
    fn keys_come_in_processing_order_whatever_the_scan_order() {
        let keys: Vec<String> = (0..5000).map(|i| format!("k{i}")).collect();
        let forward: Vec<_> = keys.iter().map(|k| (k.as_str(), 1, &b"v"[..])).collect();
        let backward: Vec<_> = forward.iter().rev().copied().collect();
        let (f, b) = (collect(&forward), collect(&backward));
        let order = |r: &LatestRows| {
            r.keys()
                .map(|(l, k, _)| (l, k.to_string()))
                .collect::<Vec<_>>()
        };
        let order_f = order(&f);
        assert_eq!(order_f, order(&b));
        assert!(order_f.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(order_f.len(), 5000);
    }
}
