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

use crate::offline::{LatestRows, Row, ViewScan};
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

    /// The service's entities: the union over its views, in a deterministic order chosen for
    /// lookup locality (see `locality_key`), not alphabetical: sorting millions of strings by
    /// text was the largest cost of assembly.
    pub fn entities(&self) -> Vec<&'a str> {
        // Each view yields its keys already in this order: merge them, dropping duplicates.
        let mut heads: Vec<_> = self
            .views
            .iter()
            .map(|v| v.rows.keys().peekable())
            .collect();
        let mut out =
            Vec::with_capacity(self.views.iter().map(|v| v.rows.len()).max().unwrap_or(0));
        loop {
            let next = heads.iter_mut().filter_map(|h| h.peek().copied()).min();
            let Some(next) = next else { break };
            for h in &mut heads {
                if h.peek() == Some(&next) {
                    h.next();
                }
            }
            out.push(next.1);
        }
        out
    }

    /// Encodes the vectors of `entities` in parallel, adding to `counts` (one per column).
    pub fn encode_chunk(
        &self,
        entities: &[&'a str],
        counts: &mut [ColumnCounts],
    ) -> Vec<Encoded<'a>> {
        let parts = self.encode_each(
            entities,
            2048,
            counts,
            Vec::new,
            |out: &mut Vec<Encoded<'a>>, entity, bytes| {
                out.push(Encoded {
                    entity,
                    bytes: bytes.to_vec(),
                })
            },
        );
        parts.into_iter().flatten().collect()
    }

    /// Encodes `entities` in parallel groups of `group` and hands each vector to `each` with the
    /// group's own state (made by `init`); returns the states in entity order. Nothing is
    /// allocated per entity: scratch buffers are reused within a group.
    pub fn encode_each<S: Send>(
        &self,
        entities: &[&'a str],
        group: usize,
        counts: &mut [ColumnCounts],
        init: impl Fn() -> S + Sync,
        each: impl Fn(&mut S, &'a str, &[u8]) + Sync,
    ) -> Vec<S> {
        let results: Vec<(S, Vec<ColumnCounts>)> = entities
            .par_chunks(group.max(1))
            .map(|part| {
                let mut local = vec![ColumnCounts::default(); self.columns.len()];
                let mut scratch = Scratch::default();
                let mut state = init();
                for e in part {
                    let bytes = self.encode_into(e, &mut local, &mut scratch);
                    each(&mut state, e, bytes);
                }
                (state, local)
            })
            .collect();
        results
            .into_iter()
            .map(|(state, local)| {
                add_counts(counts, &local);
                state
            })
            .collect()
    }

    /// Encodes one entity's vector into `scratch`; absent views get defaults.
    fn encode_into<'s>(
        &self,
        entity: &str,
        counts: &mut [ColumnCounts],
        scratch: &'s mut Scratch<'a>,
    ) -> &'s [u8] {
        let Scratch {
            timestamps,
            items,
            starts,
            rows,
            values,
            out,
        } = scratch;
        timestamps.clear();
        items.clear();
        starts.clear();
        rows.clear();
        values.clear();
        for v in &self.views {
            starts.push(items.len());
            let row = v.rows.get(entity);
            match row {
                Some(r) => {
                    timestamps.push(Some(r.event_us));
                    let mut rest = r.items();
                    while !rest.is_empty() {
                        let n = item_len(rest);
                        items.push(&rest[..n]);
                        rest = &rest[n..];
                    }
                }
                None => {
                    timestamps.push(None);
                    items.extend(v.scan.default_items().iter().map(Vec::as_slice));
                }
            }
            rows.push(row);
        }
        for (col, &(slot, pos)) in self.columns.iter().enumerate() {
            values.push(items[starts[slot] + pos]);
            match rows[slot] {
                None => counts[col].absent += 1,
                Some(r) if r.is_null(pos) => {
                    if self.views[slot].scan.has_default(pos) {
                        counts[col].imputed += 1;
                    } else {
                        counts[col].null_kept += 1;
                    }
                }
                Some(_) => {}
            }
        }
        self.encoder.encode_to(timestamps, values, out)
    }
}

/// Buffers reused from one entity to the next.
#[derive(Default)]
struct Scratch<'a> {
    timestamps: Vec<Option<i64>>,
    items: Vec<&'a [u8]>,
    starts: Vec<usize>,
    rows: Vec<Option<Row<'a>>>,
    values: Vec<&'a [u8]>,
    out: Vec<u8>,
}

fn add_counts(into: &mut [ColumnCounts], from: &[ColumnCounts]) {
    for (a, b) in into.iter_mut().zip(from) {
        a.imputed += b.imputed;
        a.null_kept += b.null_kept;
        a.absent += b.absent;
    }
}
