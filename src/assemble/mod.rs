//! The assemble stage: join a service's views on the entity, apply defaults for entities a view
//! lacks, count imputations, and encode one vector per entity (SPEC §2.4-2.5, §3).
//!
//! Values were coerced and imputed during the scan; here a vector is assembled by copying
//! MessagePack items, in parallel over entity chunks.

mod quality;

use rayon::prelude::*;

pub(crate) use quality::RecordedChecks;
pub(crate) use quality::{ViewChecks, check_view};

use crate::offline::{LatestRows, Row, RowRef, ViewScan};
use crate::repo::{Repo, Service};
use crate::vector::VectorEncoder;
use crate::vector::msgpack::item_len;

/// Per-column counts over the entities assembled so far (for the manifest and quality checks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ColumnCounts {
    /// Source value was null or NaN and the declared default was used.
    pub imputed: u64,
    /// Source value was null or NaN and no default exists: the vector holds nil.
    pub null_kept: u64,
    /// The entity had no row in this column's view: the default (or nil) was used.
    pub absent: u64,
}

impl ColumnCounts {
    /// Counts a null (or NaN) source value: imputed when the feature declares a default, else
    /// kept as nil.
    fn null(&mut self, has_default: bool) {
        if has_default {
            self.imputed += 1;
        } else {
            self.null_kept += 1;
        }
    }
}

/// A service's entities, each with its row in every view of the service (`RowRef::NONE` when
/// absent), in the order `Assembler::entities` chose.
pub(crate) struct Joined<'a> {
    keys: Vec<&'a str>,
    /// `stride` refs per entity, in service view order.
    rows: Vec<RowRef>,
    stride: usize,
}

/// A run of a `Joined`.
#[derive(Clone, Copy)]
pub(crate) struct JoinedSlice<'j, 'a> {
    keys: &'j [&'a str],
    rows: &'j [RowRef],
}

impl<'a> Joined<'a> {
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn keys(&self) -> &[&'a str] {
        &self.keys
    }

    pub(crate) fn all(&self) -> JoinedSlice<'_, 'a> {
        JoinedSlice {
            keys: &self.keys,
            rows: &self.rows,
        }
    }

    /// Consecutive runs of at most `n` entities.
    pub(crate) fn chunks(&self, n: usize) -> impl Iterator<Item = JoinedSlice<'_, 'a>> {
        self.keys
            .chunks(n)
            .zip(self.rows.chunks(n * self.stride))
            .map(|(keys, rows)| JoinedSlice { keys, rows })
    }

    /// The entities at `positions` (indices into `keys`), in that order.
    pub(crate) fn select(&self, positions: &[usize]) -> Joined<'a> {
        let s = self.stride;
        Joined {
            keys: positions.iter().map(|&i| self.keys[i]).collect(),
            rows: positions
                .iter()
                .flat_map(|&i| self.rows[i * s..(i + 1) * s].iter().copied())
                .collect(),
            stride: s,
        }
    }
}

impl JoinedSlice<'_, '_> {
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// A view of the service as assembly sees it.
pub(crate) struct ViewInput<'a> {
    pub scan: &'a ViewScan,
    pub rows: &'a LatestRows,
}

/// Joins a service's views and encodes vectors.
pub(crate) struct Assembler<'a> {
    views: Vec<ViewInput<'a>>,
    /// Per vector column: (slot in `views`, position in that scan's `needed`).
    columns: Vec<(usize, usize)>,
    /// The columns are every item of every view, in order (a service of whole views, the
    /// common case): a vector is then each view's items copied whole, not split into items
    /// and reassembled.
    whole_views: bool,
    encoder: VectorEncoder,
}

impl<'a> Assembler<'a> {
    /// `views` must follow `service.views` order, each scan covering the service's features.
    pub(crate) fn new(repo: &Repo, service: &Service, views: Vec<ViewInput<'a>>) -> Assembler<'a> {
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
        let whole: Vec<(usize, usize)> = views
            .iter()
            .enumerate()
            .flat_map(|(slot, v)| (0..v.scan.needed.len()).map(move |pos| (slot, pos)))
            .collect();
        let whole_views = columns == whole;
        Assembler {
            views,
            columns,
            whole_views,
            encoder,
        }
    }

    /// The service's entities: the union over its views, in a deterministic order chosen for
    /// locality (see `offline::latest`), not alphabetical: sorting millions of strings by
    /// text was the largest cost of assembly. Each view yields its keys already in this order,
    /// so one merge both lists the entities and finds each one's row in every view.
    pub(crate) fn entities(&self) -> Joined<'a> {
        let mut heads: Vec<_> = self
            .views
            .iter()
            .map(|v| v.rows.keys().peekable())
            .collect();
        let n = self.views.iter().map(|v| v.rows.len()).max().unwrap_or(0);
        let mut joined = Joined {
            keys: Vec::with_capacity(n),
            rows: Vec::with_capacity(n * heads.len()),
            stride: heads.len(),
        };
        loop {
            let next = heads
                .iter_mut()
                .filter_map(|h| h.peek().map(|&(l, k, _)| (l, k)))
                .min();
            let Some(next) = next else { break };
            for h in &mut heads {
                match h.peek() {
                    Some(&(l, k, at)) if (l, k) == next => {
                        joined.rows.push(at);
                        h.next();
                    }
                    _ => joined.rows.push(RowRef::NONE),
                }
            }
            joined.keys.push(next.1);
        }
        joined
    }

    /// Encodes `entities` in parallel groups of `group` and hands each vector to `each` with the
    /// group's own state (made by `init`); returns the states in entity order. Nothing is
    /// allocated per entity: scratch buffers are reused within a group.
    pub(crate) fn encode_each<S: Send>(
        &self,
        entities: JoinedSlice<'_, 'a>,
        group: usize,
        counts: &mut [ColumnCounts],
        init: impl Fn() -> S + Sync,
        each: impl Fn(&mut S, &'a str, &[u8]) + Sync,
    ) -> Vec<S> {
        self.in_groups(
            entities,
            group,
            counts,
            || (init(), Scratch::default()),
            |(state, scratch), local, e, at| {
                let bytes = self.encode_into(at, local, scratch);
                each(state, e, bytes);
            },
        )
    }

    /// Runs `each` over `entities` in parallel groups of `group`, in entity order, with the
    /// group's own state (made by `init`) and column counts (added to `counts` at the end);
    /// returns the states in entity order.
    fn in_groups<S: Send, W: Send>(
        &self,
        entities: JoinedSlice<'_, 'a>,
        group: usize,
        counts: &mut [ColumnCounts],
        init: impl Fn() -> (S, W) + Sync,
        each: impl Fn(&mut (S, W), &mut [ColumnCounts], &'a str, &[RowRef]) + Sync,
    ) -> Vec<S> {
        let group = group.max(1);
        let stride = self.views.len();
        let results: Vec<(S, Vec<ColumnCounts>)> = entities
            .keys
            .par_chunks(group)
            .zip(entities.rows.par_chunks(group * stride))
            .map(|(keys, rows)| {
                let mut local = vec![ColumnCounts::default(); self.columns.len()];
                let mut state = init();
                for (e, at) in keys.iter().zip(rows.chunks_exact(stride)) {
                    each(&mut state, &mut local, e, at);
                }
                (state.0, local)
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

    /// Where each of the service's columns is: (view slot, position in that view's items).
    pub(crate) fn columns(&self) -> &[(usize, usize)] {
        &self.columns
    }

    /// Like `encode_each`, for a layout that encodes the rows itself: `each` gets the entity
    /// and its row in each of the service's views (`None`: no row in the window), in parallel
    /// groups of `group` entities, in entity order; counts nulls and absences per column.
    pub(crate) fn visit_each<S: Send>(
        &self,
        entities: JoinedSlice<'_, 'a>,
        group: usize,
        counts: &mut [ColumnCounts],
        init: impl Fn() -> S + Sync,
        each: impl Fn(&mut S, &'a str, &[Option<Row<'a>>]) + Sync,
    ) -> Vec<S> {
        self.in_groups(
            entities,
            group,
            counts,
            || (init(), Vec::with_capacity(self.views.len())),
            |(state, found), local, e, at| {
                found.clear();
                found.extend(
                    self.views
                        .iter()
                        .zip(at)
                        .map(|(v, &at)| (at != RowRef::NONE).then(|| v.rows.row(at))),
                );
                for (col, &(slot, pos)) in self.columns.iter().enumerate() {
                    match found[slot] {
                        None => local[col].absent += 1,
                        Some(r) if r.is_null(pos) => {
                            local[col].null(self.views[slot].scan.has_default(pos))
                        }
                        Some(_) => {}
                    }
                }
                each(state, e, found);
            },
        )
    }

    /// Encodes one entity's vector into `scratch`; absent views get defaults.
    fn encode_into<'s>(
        &self,
        at: &[RowRef],
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
        if self.whole_views {
            let mut col = 0;
            for (v, &at) in self.views.iter().zip(at) {
                let n = v.scan.needed.len();
                if at == RowRef::NONE {
                    timestamps.push(None);
                    values.extend(v.scan.default_items().iter().map(Vec::as_slice));
                    counts[col..col + n].iter_mut().for_each(|c| c.absent += 1);
                } else {
                    let r = v.rows.row(at);
                    timestamps.push(Some(r.event_us));
                    values.push(r.items());
                    for pos in r.nulls() {
                        counts[col + pos].null(v.scan.has_default(pos));
                    }
                }
                col += n;
            }
            return self.encoder.encode_to(timestamps, values, out);
        }
        for (v, &at) in self.views.iter().zip(at) {
            starts.push(items.len());
            let row = (at != RowRef::NONE).then(|| v.rows.row(at));
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
                    counts[col].null(self.views[slot].scan.has_default(pos))
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
