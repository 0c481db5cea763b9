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
use crate::repo::JoinKey;

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
        let field = schema
            .field_with_name(&k.name)
            .map_err(|_| err(&format!("join key column `{}` not found", k.name)))?;
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
        let field = schema
            .field_with_name(c)
            .map_err(|_| err(&format!("score column `{c}` not found")))?;
        if !field.data_type().is_numeric() {
            return Err(err(&format!(
                "score column `{c}` has type {}, not a number",
                field.data_type()
            )));
        }
    }
    let reader = builder.build().map_err(|e| err(&e))?;
    let mut scores: FxHashMap<String, f64> = FxHashMap::default();
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
            parts.clear();
            parts.extend(key_cols.iter().map(|c| c.key_part(row)));
            key.clear();
            render_entity(&parts, &mut key);
            let add = match score {
                Some(s) if s.is_null(row) => continue,
                Some(s) => s.value(row),
                None => 1.0,
            };
            match scores.get_mut(key.as_str()) {
                // A score file may repeat an entity: keep its best score; a log counts requests.
                Some(v) if score.is_some() => *v = v.max(add),
                Some(v) => *v += add,
                None => {
                    scores.insert(key.clone(), add);
                }
            }
        }
    }
    let mut ranked: Vec<(String, f64)> = scores.into_iter().collect();
    ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(top_n);
    Ok(ranked)
}
