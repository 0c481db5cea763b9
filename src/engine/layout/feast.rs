//! `layout: feast` (SPEC §3.4): what `feast materialize` writes, so that an unchanged Feast
//! serves it. One hash per entity key (`serialize_entity_key` + project), per-view fields
//! `mmh3("<view>:<feature>")` holding `feast.types.Value`s, `_ts:<view>`, an expiry of
//! `key_ttl_seconds` (jittered later, never sooner), and for a `precompute_online` service its
//! `__precomputed__<service>` vector built from the same rows.
//!
//! Each entity is one `EVALSHA` of `FEAST_WRITE_SCRIPT`, which skips a row older than (or as
//! old as) the one stored: Feast's rule, checked on the server in the same round trip.

use redis::Script;

use crate::assemble::{Assembler, ColumnCounts, JoinedSlice};
use crate::base::time::now_us;
use crate::base::value::{DType, Scalar, Value};
use crate::offline::Row;
use crate::online::{FEAST_WRITE_SCRIPT, PackedBatch, expiry_ms};
use crate::repo::{FeastUnit, Repo, Service, ServiceFeature, feast::precomputed_name};
use crate::vector::feast::{self as proto, KeyValue};
use crate::vector::msgpack::split_items;
use crate::vector::unpack_item;

/// One Feast unit's writes: the fields of its views, and precomputed vectors.
pub(crate) struct FeastHashes {
    sha: String,
    project: String,
    key_version: u32,
    keys: Vec<(String, DType)>,
    /// Key expiry: `key_ttl_seconds` in ms and the jitter (none without a ttl).
    ttl: Option<(i64, f64)>,
    views: Vec<ViewFields>,
    vectors: Vec<Vector>,
}

/// Every feature of one view of the unit.
struct ViewFields {
    /// The view's place among the unit's views (its row in the join).
    slot: usize,
    ts_field: Vec<u8>,
    /// Per feature: its field, its column in the unit, its dtype.
    fields: Vec<([u8; 4], usize, DType)>,
}

/// How a precomputed vector is built from the unit's columns.
struct Vector {
    ts_field: Vec<u8>,
    field: [u8; 4],
    /// `<alias or view>__<feature>`, in service order.
    names: Vec<String>,
    /// Per name: the unit's column holding it (none: a view keyed by another entity, which
    /// Feast reads under this entity's key and finds empty), and its dtype.
    columns: Vec<(Option<usize>, DType)>,
    /// Per projection: its name, the unit's view slot (if joined) and that view's `_ts` field.
    stamps: Vec<(String, Option<usize>, Vec<u8>)>,
    at_us: i64,
}

impl FeastHashes {
    pub(crate) fn new(repo: &Repo, service: &Service) -> FeastHashes {
        let feast = repo
            .feast
            .as_ref()
            .expect("layout feast is a Feast project's");
        let index = repo
            .services
            .iter()
            .position(|s| s.name == service.name)
            .expect("a service of the repo");
        let entity = &repo.entities[service.entity];
        let keys = entity
            .join_keys
            .iter()
            .map(|k| (k.name.clone(), k.dtype))
            .collect();
        let view_fields = |slot: usize| {
            let v = service.views[slot];
            let view = &repo.views[v];
            ViewFields {
                slot,
                ts_field: proto::ts_field(&view.name),
                fields: service
                    .features
                    .iter()
                    .enumerate()
                    .filter(|(_, sf)| sf.view == v)
                    .map(|(col, sf)| {
                        let f = repo.feature(*sf);
                        (proto::field(&view.name, &f.name), col, f.dtype)
                    })
                    .collect(),
            }
        };
        let vector = |s: usize| {
            let fs = &feast.services[s];
            let pseudo = precomputed_name(&fs.name);
            let mut names = Vec::new();
            let mut columns = Vec::new();
            let mut stamps = Vec::new();
            for p in &fs.projections {
                let joined = p.view.filter(|v| service.views.contains(v));
                for (name, ix) in &p.features {
                    names.push(format!("{}__{name}", p.name_to_use));
                    let col = joined.zip(*ix).and_then(|(view, feature)| {
                        service
                            .features
                            .iter()
                            .position(|sf| *sf == ServiceFeature { view, feature })
                    });
                    let dtype = col.map_or(DType::Scalar(Scalar::Bytes), |c| {
                        repo.feature(service.features[c]).dtype
                    });
                    columns.push((col, dtype));
                }
                stamps.push((
                    p.name_to_use.clone(),
                    joined.and_then(|v| service.views.iter().position(|&x| x == v)),
                    proto::ts_field(&p.view_name),
                ));
            }
            Vector {
                ts_field: proto::ts_field(&pseudo),
                field: proto::field(&pseudo, "vector"),
                names,
                columns,
                stamps,
                at_us: now_us(),
            }
        };
        let (views, vectors) = match &feast.units[index] {
            FeastUnit::Entity { vectors } => (
                (0..service.views.len()).map(view_fields).collect(),
                vectors.iter().map(|&s| vector(s)).collect(),
            ),
            FeastUnit::View => (vec![view_fields(0)], Vec::new()),
            FeastUnit::Precomputed { service: s } => (Vec::new(), vec![vector(*s)]),
        };
        FeastHashes {
            sha: Script::new(FEAST_WRITE_SCRIPT).get_hash().to_owned(),
            project: repo.project.clone(),
            key_version: feast.entity_key_version,
            keys,
            ttl: feast.key_ttl_ms.map(|ms| (ms, repo.ttl_jitter)),
            views,
            vectors,
        }
    }

    fn redis_key(&self, entity: &str) -> Vec<u8> {
        redis_key(&self.keys, self.key_version, &self.project, entity)
    }

    /// Stages one `EVALSHA` per entity, `batch` per batch.
    pub(crate) fn stage<'a>(
        &self,
        assembler: &Assembler<'a>,
        entities: JoinedSlice<'_, 'a>,
        batch: usize,
        counts: &mut [ColumnCounts],
    ) -> Vec<PackedBatch> {
        let columns = assembler.columns();
        assembler.visit_each(
            entities,
            batch,
            counts,
            PackedBatch::default,
            |staged, entity, rows| self.push(staged, columns, entity, rows),
        )
    }

    /// Stages the entity's one `EVALSHA`: an entry per view it has a row in, and per vector.
    fn push(
        &self,
        staged: &mut PackedBatch,
        columns: &[(usize, usize)],
        entity: &str,
        rows: &[Option<Row<'_>>],
    ) {
        let items: Vec<Vec<&[u8]>> = rows
            .iter()
            .map(|r| {
                let mut v = Vec::new();
                if let Some(r) = r {
                    split_items(r.items(), &mut v);
                }
                v
            })
            .collect();
        let value = |col: usize, dtype: DType| -> Vec<u8> {
            let (slot, pos) = columns[col];
            let mut out = Vec::new();
            if let Some(item) = items[slot].get(pos) {
                let v = unpack_item(item).unwrap_or(Value::Null);
                proto::value(&mut out, &v, dtype);
            }
            out
        };
        let num = |v: i64| itoa::Buffer::new().format(v).as_bytes().to_vec();
        let mut args: Vec<Vec<u8>> = Vec::new();
        let mut entries = 0;
        let mut value_bytes = 0;
        for view in &self.views {
            let Some(row) = rows[view.slot] else { continue };
            let (s, n) = sec_nanos(row.event_us);
            args.extend([
                view.ts_field.clone(),
                num(s),
                num(n),
                proto::timestamp(row.event_us),
                num(0),
                num(view.fields.len() as i64),
            ]);
            for (field, col, dtype) in &view.fields {
                let v = value(*col, *dtype);
                value_bytes += v.len();
                args.push(field.to_vec());
                args.push(v);
            }
            entries += 1;
        }
        for vector in &self.vectors {
            let values: Vec<Vec<u8>> = vector
                .columns
                .iter()
                .map(|(col, dtype)| col.map_or(Vec::new(), |c| value(c, *dtype)))
                .collect();
            let stamps: Vec<(&str, Option<i64>)> = vector
                .stamps
                .iter()
                .map(|(name, slot, _)| {
                    (
                        name.as_str(),
                        slot.and_then(|s| rows[s].map(|r| r.event_us)),
                    )
                })
                .collect();
            let blob = proto::bytes_value(&proto::precomputed_vector(
                &vector.names,
                &values,
                &stamps,
                vector.at_us,
            ));
            value_bytes += blob.len();
            let (s, n) = sec_nanos(vector.at_us);
            args.extend([
                vector.ts_field.clone(),
                num(s),
                num(n),
                proto::timestamp(vector.at_us),
            ]);
            let deps: Vec<(&Vec<u8>, i64)> = vector
                .stamps
                .iter()
                .filter_map(|(_, slot, ts)| slot.and_then(|s| rows[s].map(|r| (ts, r.event_us))))
                .collect();
            args.push(num(deps.len() as i64));
            for (ts, us) in deps {
                let (s, n) = sec_nanos(us);
                args.extend([ts.clone(), num(s), num(n)]);
            }
            args.push(num(1));
            args.push(vector.field.to_vec());
            args.push(blob);
            entries += 1;
        }
        if entries == 0 {
            return;
        }
        let key = self.redis_key(entity);
        let pexpire = self
            .ttl
            .map_or(0, |(ms, jitter)| expiry_ms(&key, 0, ms, jitter));
        let head: [&[u8]; 6] = [
            b"EVALSHA",
            self.sha.as_bytes(),
            b"1",
            &key,
            &num(pexpire),
            &num(entries),
        ];
        let all: Vec<&[u8]> = head
            .iter()
            .copied()
            .chain(args.iter().map(Vec::as_slice))
            .collect();
        staged.push_keyed(&all, 3, value_bytes);
    }
}

/// Feast's Redis key of the rendered entity `entity` (SPEC §3 rendering) of entity
/// `entity_ix` of a Feast project's repo.
pub(crate) fn feast_key(repo: &Repo, entity_ix: usize, entity: &str) -> Vec<u8> {
    let keys: Vec<(String, DType)> = repo.entities[entity_ix]
        .join_keys
        .iter()
        .map(|k| (k.name.clone(), k.dtype))
        .collect();
    let version = repo.feast.as_ref().map_or(3, |f| f.entity_key_version);
    redis_key(&keys, version, &repo.project, entity)
}

/// Feast's key of a rendered entity: its join keys in name order (`__dummy_id` = "" for a view
/// without entities), serialized, then the project.
fn redis_key(keys: &[(String, DType)], version: u32, project: &str, entity: &str) -> Vec<u8> {
    if keys.is_empty() {
        let dummy = [(proto::DUMMY_JOIN_KEY, KeyValue::Str(""))];
        return proto::redis_key(&proto::entity_key(&dummy, version), project);
    }
    let parts = split_entity(entity, keys.len());
    let values: Vec<(&str, KeyValue<'_>)> = keys
        .iter()
        .zip(&parts)
        .map(|((name, dtype), text)| {
            let v = match dtype {
                DType::Scalar(Scalar::Int64) => KeyValue::Int64(text.parse().unwrap_or(0)),
                DType::Scalar(Scalar::Int32) => KeyValue::Int32(text.parse().unwrap_or(0)),
                _ => KeyValue::Str(text),
            };
            (name.as_str(), v)
        })
        .collect();
    proto::redis_key(&proto::entity_key(&values, version), project)
}

/// Seconds and nanoseconds of `us` since the epoch (as a protobuf Timestamp holds them).
fn sec_nanos(us: i64) -> (i64, i64) {
    (us.div_euclid(1_000_000), us.rem_euclid(1_000_000) * 1000)
}

/// The join key values of a rendered entity (SPEC §3): one, or `n` separated by unescaped
/// `:` with `\\` and `\:` unescaped.
fn split_entity(entity: &str, n: usize) -> Vec<String> {
    if n == 1 {
        return vec![entity.to_owned()];
    }
    let mut parts = vec![String::new()];
    let mut chars = entity.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    parts.last_mut().expect("one part").push(next);
                }
            }
            ':' => parts.push(String::new()),
            c => parts.last_mut().expect("one part").push(c),
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_entities_split_into_their_key_values() {
        assert_eq!(split_entity("a:b", 1), ["a:b"]);
        assert_eq!(split_entity("c1:1001", 2), ["c1", "1001"]);
        assert_eq!(split_entity(r"a\:b:x\\y", 2), ["a:b", r"x\y"]);
    }
}
