//! The assemble stage: join a service's views on the entity, apply defaults for entities a view
//! lacks, count imputations, and encode one vector per entity (SPEC §2.4-2.5, §3).
//!
//! Values were coerced and imputed during the scan; here a vector is assembled by copying
//! MessagePack items, in parallel over entity chunks.

mod items;
mod quality;

use rayon::prelude::*;

pub use items::{item_len, split_items};
pub use quality::{CheckFailure, check_view};

use crate::offline::{LatestRows, ViewScan};
use crate::repo::{Repo, Service};
use crate::vector::{SchemaFingerprint, VectorEncoder};

/// Per-column counts over the entities assembled so far (for the manifest and quality checks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnCounts {
    /// Source value was null or NaN and the declared default was used.
    pub imputed: u64,
    /// Source value was null or NaN and no default exists: the vector holds nil.
    pub null_kept: u64,
    /// The entity had no row in this column's view: the default (or nil) was used.
    pub absent: u64,
}

/// One encoded vector.
pub struct Encoded<'a> {
    pub entity: &'a str,
    pub bytes: Vec<u8>,
}

/// A view of the service as assembly sees it.
pub struct ViewInput<'a> {
    pub scan: &'a ViewScan,
    pub rows: &'a LatestRows,
}

/// Joins a service's views and encodes vectors.
pub struct Assembler<'a> {
    views: Vec<ViewInput<'a>>,
    /// Per vector column: (slot in `views`, position in that scan's `needed`).
    columns: Vec<(usize, usize)>,
    encoder: VectorEncoder,
}

impl<'a> Assembler<'a> {
    /// `views` must follow `service.views` order, each scan covering the service's features.
    pub fn new(repo: &Repo, service: &Service, views: Vec<ViewInput<'a>>) -> Assembler<'a> {
        let columns = service
            .features
            .iter()
            .map(|sf| {
                let slot = service
                    .views
                    .iter()
                    .position(|&v| v == sf.view)
                    .expect("view of service");
                let pos = views[slot]
                    .scan
                    .needed
                    .iter()
                    .position(|&f| f == sf.feature)
                    .expect("scan covers the service's features");
                (slot, pos)
            })
            .collect();
        let encoder = VectorEncoder::new(
            repo.fingerprint(service),
            service.features.len(),
            repo.compress_threshold_bytes,
        );
        Assembler {
            views,
            columns,
            encoder,
        }
    }

    pub fn fingerprint(&self) -> SchemaFingerprint {
        self.encoder.fingerprint()
    }

    /// The service's entities: the union over its views, sorted (a deterministic write order).
    pub fn entities(&self) -> Vec<&'a str> {
        let mut keys: Vec<&'a str> = Vec::new();
        for v in &self.views {
            keys.extend(v.rows.rows.keys().map(|k| &**k));
        }
        keys.par_sort_unstable();
        keys.dedup();
        keys
    }

    /// Encodes the vectors of `entities` in parallel, adding to `counts` (one per column).
    pub fn encode_chunk(
        &self,
        entities: &[&'a str],
        counts: &mut [ColumnCounts],
    ) -> Vec<Encoded<'a>> {
        let (out, chunk_counts) = entities
            .par_chunks(2048)
            .map(|part| {
                let mut local = vec![ColumnCounts::default(); self.columns.len()];
                let mut scratch = Vec::new();
                let encoded: Vec<Encoded<'a>> = part
                    .iter()
                    .map(|e| self.encode_one(e, &mut local, &mut scratch))
                    .collect();
                (encoded, local)
            })
            .reduce(
                || {
                    (
                        Vec::new(),
                        vec![ColumnCounts::default(); self.columns.len()],
                    )
                },
                |(mut a, mut ca), (b, cb)| {
                    a.extend(b);
                    add_counts(&mut ca, &cb);
                    (a, ca)
                },
            );
        add_counts(counts, &chunk_counts);
        out
    }

    /// Encodes one entity's vector; `None`-free: absent views get defaults.
    pub fn encode_one(
        &self,
        entity: &'a str,
        counts: &mut [ColumnCounts],
        scratch: &mut Vec<u8>,
    ) -> Encoded<'a> {
        let mut timestamps = Vec::with_capacity(self.views.len());
        let mut split: Vec<Vec<&[u8]>> = Vec::with_capacity(self.views.len());
        let mut nulls: Vec<&[u16]> = Vec::with_capacity(self.views.len());
        for v in &self.views {
            match v.rows.rows.get(entity) {
                Some(c) => {
                    timestamps.push(Some(c.event_us));
                    let mut items = Vec::with_capacity(v.scan.needed.len());
                    split_items(&c.items, &mut items);
                    split.push(items);
                    nulls.push(&c.nulls);
                }
                None => {
                    timestamps.push(None);
                    split.push(v.scan.default_items().iter().map(Vec::as_slice).collect());
                    nulls.push(&[]);
                }
            }
        }
        let mut values: Vec<&[u8]> = Vec::with_capacity(self.columns.len());
        for (col, &(slot, pos)) in self.columns.iter().enumerate() {
            values.push(split[slot][pos]);
            if timestamps[slot].is_none() {
                counts[col].absent += 1;
            } else if nulls[slot].contains(&(pos as u16)) {
                if self.views[slot].scan.has_default(pos) {
                    counts[col].imputed += 1;
                } else {
                    counts[col].null_kept += 1;
                }
            }
        }
        Encoded {
            entity,
            bytes: self.encoder.encode_into(&timestamps, &values, scratch),
        }
    }
}

fn add_counts(into: &mut [ColumnCounts], from: &[ColumnCounts]) {
    for (a, b) in into.iter_mut().zip(from) {
        a.imputed += b.imputed;
        a.null_kept += b.null_kept;
        a.absent += b.absent;
    }
}
