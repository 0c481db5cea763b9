//! Entity popularity for `warm`: either a score per entity (join key columns plus a numeric
//! score) or a raw request log (one row per request, counted per entity). Ranked by score,
//! ties broken by the rendered entity key so the order is deterministic.

use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rustc_hash::FxHashMap;

use super::coerce::{Coercion, coercion, normalize};
use super::values::Column;
use crate::base::entity_key::render_entity;
use crate::base::error::Error;
use crate::base::suggest::did_you_mean;
use crate::base::value::{DType, Scalar};
use crate::repo::JoinKey;

fn columns(schema: &arrow::datatypes::Schema) -> impl Iterator<Item = &str> {
    schema.fields().iter().map(|f| f.name().as_str())
}

/// Reads `path` and returns the `top_n` entities, most popular first, as rendered keys.
pub(crate) fn top_entities(
    path: &Path,
    join_keys: &[JoinKey],
    score_column: Option<&str>,
    top_n: usize,
) -> Result<Vec<(String, f64)>, Error> {
    let err = |e: &dyn std::fmt::Display| Error::in_file(path, e);
    let file = File::open(path).map_err(|e| err(&e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| err(&format!("not a readable Parquet file ({e})")))?;
    let schema = builder.schema().clone();
    for k in join_keys {
        let field = schema.field_with_name(&k.name).map_err(|_| {
            err(&format!(
                "join key column `{}` not found{}; the file has: {}",
                k.name,
                did_you_mean(&k.name, columns(&schema)),
                columns(&schema).collect::<Vec<_>>().join(", ")
            ))
        })?;
        if coercion(field.data_type(), k.dtype) == Coercion::Refused {
            return Err(err(&format!(
                "join key column `{}` has type {}, not {}",
                k.name,
                field.data_type(),
                k.dtype
            )));
        }
    }
    if let Some(c) = score_column {
        let field = schema.field_with_name(c).map_err(|_| {
            err(&format!(
                "score column `{c}` not found{}; the file has: {}",
                did_you_mean(c, columns(&schema)),
                columns(&schema).collect::<Vec<_>>().join(", ")
            ))
        })?;
        if !field.data_type().is_numeric() {
            return Err(err(&format!(
                "score column `{c}` has type {}, not a number",
                field.data_type()
            )));
        }
    }
    let rows = builder.metadata().file_metadata().num_rows().max(0) as usize;
    let reader = builder.build().map_err(|e| err(&e))?;
    // A single integer key is counted as the integer, and only the top entities are rendered.
    let mut ints: FxHashMap<i64, f64> = FxHashMap::default();
    let mut scores: FxHashMap<String, f64> = FxHashMap::default();
    let single_int = join_keys.len() == 1 && join_keys[0].dtype == DType::Scalar(Scalar::Int64);
    // A score file holds about one row per entity; a request log many more rows than entities.
    let expected = if score_column.is_some() {
        rows.min(1 << 22)
    } else {
        0
    };
    if single_int {
        ints.reserve(expected);
    } else {
        scores.reserve(expected);
    }
    let mut key = String::new();
    for batch in reader {
        let batch = batch.map_err(|e| err(&e))?;
        let keys: Vec<_> = join_keys
            .iter()
            .map(|k| {
                normalize(batch.column_by_name(&k.name).expect("checked"), k.dtype).map_err(|m| {
                    err(&format!(
                        "column `{}`, value {} does not fit {}",
                        k.name, m.value, k.dtype
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        let key_cols: Vec<Column<'_>> = keys.iter().map(Column::new).collect();
        let score = score_column
            .map(|c| {
                arrow::compute::cast(
                    batch.column_by_name(c).expect("checked"),
                    &DataType::Float64,
                )
                .map_err(|e| err(&e))
            })
            .transpose()?;
        let score = score.as_ref().map(|s| s.as_primitive::<Float64Type>());
        let mut parts = Vec::with_capacity(key_cols.len());
        for row in 0..batch.num_rows() {
            if keys.iter().any(|k| k.is_null(row)) {
                continue;
            }
            let add = match score {
                Some(s) if s.is_null(row) => continue,
                Some(s) => s.value(row),
                None => 1.0,
            };
            // A score file may repeat an entity: keep its best score; a log counts requests.
            let merge = |v: &mut f64| {
                if score.is_some() {
                    *v = v.max(add);
                } else {
                    *v += add;
                }
            };
            if let (true, [Column::Int(ints_col)]) = (single_int, key_cols.as_slice()) {
                match ints.get_mut(&ints_col.value(row)) {
                    Some(v) => merge(v),
                    None => {
                        ints.insert(ints_col.value(row), add);
                    }
                }
                continue;
            }
            parts.clear();
            parts.extend(key_cols.iter().map(|c| c.key_part(row)));
            key.clear();
            render_entity(&parts, &mut key);
            match scores.get_mut(key.as_str()) {
                Some(v) => merge(v),
                None => {
                    scores.insert(key.clone(), add);
                }
            }
        }
    }
    let mut ranked = top(scores.into_iter().collect(), top_n, Clone::clone);
    if !ints.is_empty() {
        let mut text = itoa::Buffer::new();
        let from_ints = top(ints.into_iter().collect(), top_n, |k| {
            text.format(*k).to_owned()
        });
        ranked.extend(from_ints);
        ranked = top(ranked, top_n, Clone::clone);
    }
    Ok(ranked)
}

/// The `n` best of `scored`, by score (highest first), ties broken by the rendered key. Only
/// the entities that can make the cut are rendered: those above the n-th score, and those on
/// it.
fn top<K>(
    mut scored: Vec<(K, f64)>,
    n: usize,
    mut render: impl FnMut(&K) -> String,
) -> Vec<(String, f64)> {
    let by_score = |a: &(K, f64), b: &(K, f64)| b.1.total_cmp(&a.1);
    if n < scored.len() {
        let cut = if n == 0 {
            return Vec::new();
        } else {
            scored.select_nth_unstable_by(n - 1, by_score).1.1
        };
        scored.retain(|(_, s)| s.total_cmp(&cut).is_ge());
    }
    let mut ranked: Vec<(String, f64)> = scored.iter().map(|(k, s)| (render(k), *s)).collect();
    ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(n);
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_keeps_the_smallest_keys_among_ties_at_the_cut() {
        let scored: Vec<(i64, f64)> = vec![(9, 1.0), (10, 2.0), (3, 1.0), (11, 1.0), (2, 5.0)];
        let got = top(scored.clone(), 3, |k| k.to_string());
        // 2 (5.0), 10 (2.0), then of the 1.0s the smallest key as text: "11" < "3" < "9".
        assert_eq!(
            got,
            [("2".into(), 5.0), ("10".into(), 2.0), ("11".into(), 1.0)]
        );
        assert_eq!(top(scored.clone(), 10, |k| k.to_string()).len(), 5);
        assert!(top(scored, 0, |k| k.to_string()).is_empty());
        // The same as sorting everything.
        let many: Vec<(i64, f64)> = (0..500)
            .map(|i| (i, f64::from((i * 7 % 13) as i32)))
            .collect();
        let mut all: Vec<(String, f64)> = many.iter().map(|(k, s)| (k.to_string(), *s)).collect();
        all.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for n in [1, 37, 38, 100, 499] {
            assert_eq!(top(many.clone(), n, |k| k.to_string()), all[..n], "{n}");
        }
    }
}
