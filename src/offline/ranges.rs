//! Value ranges of narrowing columns, for `validate`: an int64 column declared int32, a float64
//! column declared float32, an int64 one declared float64. `materialize` checks every value it
//! keeps and refuses a run on the first that does not fit; `validate` finds the same problem
//! before any write, from the Parquet row-group statistics where the files have them, and reads
//! the column only in row groups without them.

use std::fs::File;

use arrow::array::Array;
use arrow::datatypes::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::statistics::Statistics;

use super::coerce::{Coercion, coercion, normalize};
use super::scan::{DataProblem, ViewScan};
use crate::base::value::{DType, Scalar};

/// The largest integer a float64 holds exactly (and so an int64 converted to one).
const EXACT_IN_F64: i128 = 1 << 53;

/// Where a column's values were found not to fit.
enum Misfit {
    /// The row group's statistics: its smallest and largest value.
    Stats { min: String, max: String },
    /// A value read from the data (the row group had no statistics), with its row in the file.
    Row { row: u64, value: String },
}

impl ViewScan {
    /// Every checked-narrowing column of the view (join keys and features, in the row groups the
    /// window keeps) whose values do not all fit the declared dtype: one problem per column and
    /// file. Object-store sources are checked from statistics only.
    pub fn check_ranges(&self) -> Vec<DataProblem> {
        let mut problems = Vec::new();
        let columns = self
            .key_columns
            .iter()
            .map(|(n, d)| (n, *d, "join key"))
            .chain(self.feature_columns.iter().map(|(n, d)| (n, *d, "feature")));
        for (name, dtype, role) in columns {
            let DType::Scalar(scalar) = dtype else {
                continue;
            };
            for (file_ix, meta) in self.metas.iter().enumerate() {
                let Ok(field) = meta.schema().field_with_name(name) else {
                    continue;
                };
                let source_type = field.data_type();
                if coercion(source_type, dtype) != Coercion::Checked {
                    continue;
                }
                let schema = meta.metadata().file_metadata().schema_descr();
                let Some(leaf) = schema
                    .columns()
                    .iter()
                    .position(|c| c.path().parts() == [name.as_str()])
                else {
                    continue;
                };
                let row_groups = self
                    .tasks
                    .iter()
                    .filter(|&&(f, _, _)| f == file_ix)
                    .map(|&(_, rg, first_row)| (rg, first_row));
                for (rg, first_row) in row_groups {
                    let stats = meta.metadata().row_group(rg).column(leaf).statistics();
                    let misfit = match stats.and_then(|s| stats_fit(s, source_type, scalar)) {
                        Some(true) => None,
                        Some(false) => Some(stats_range(stats.expect("checked above"))),
                        None if self.remote.is_some() => None,
                        None => self.read_misfit(file_ix, rg, first_row, name, dtype),
                    };
                    let Some(misfit) = misfit else {
                        continue;
                    };
                    let found = match misfit {
                        Misfit::Stats { min, max } => format!(
                            "row group {rg} holds values from {min} to {max} (Parquet statistics)"
                        ),
                        Misfit::Row { row, value } => format!("row {row} holds {value}"),
                    };
                    problems.push(DataProblem::new(
                        "value-out-of-range",
                        &self.names[file_ix],
                        Some(name),
                        format!(
                            "column `{name}` ({role}, {source_type} declared {dtype}): {found}, \
                             which does not fit {dtype}; materialize stops on such a value in a \
                             row it keeps (an entity's latest). Declare a wider dtype or fix the \
                             data"
                        ),
                    ));
                    break;
                }
            }
        }
        problems
    }

    /// The first value of column `name` in row group `rg` that does not fit `dtype`, read from
    /// the data.
    fn read_misfit(
        &self,
        file_ix: usize,
        rg: usize,
        first_row: u64,
        name: &str,
        dtype: DType,
    ) -> Option<Misfit> {
        let meta = &self.metas[file_ix];
        let root = meta.schema().index_of(name).ok()?;
        let file = File::open(&self.file_paths[file_ix]).ok()?;
        let mask = ProjectionMask::roots(meta.metadata().file_metadata().schema_descr(), [root]);
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
            .with_projection(mask)
            .with_row_groups(vec![rg])
            .build()
            .ok()?;
        let mut row = first_row;
        for batch in reader {
            let batch = batch.ok()?;
            let column = batch.column(0);
            if let Err(m) = normalize(column, dtype) {
                return Some(Misfit::Row {
                    row: row + m.row as u64,
                    value: m.value,
                });
            }
            row += column.len() as u64;
        }
        None
    }
}

/// Whether every value the statistics bound fits `dst`; `None` when they do not tell (absent,
/// or a physical type whose order is not the logical one, as for unsigned integers).
fn stats_fit(stats: &Statistics, source: &DataType, dst: Scalar) -> Option<bool> {
    let unsigned = matches!(
        source,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64
    );
    if unsigned {
        return None;
    }
    let (lo, hi): (f64, f64) = match dst {
        Scalar::Int32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
        Scalar::Float32 => (-f64::from(f32::MAX), f64::from(f32::MAX)),
        Scalar::Float64 | Scalar::Int64 => match stats {
            Statistics::Int64(s) => {
                let (min, max) = (*s.min_opt()?, *s.max_opt()?);
                let exact = |v: i64| i128::from(v).abs() <= EXACT_IN_F64;
                return Some(dst == Scalar::Int64 || (exact(min) && exact(max)));
            }
            _ => return None,
        },
        _ => return None,
    };
    let (min, max) = match stats {
        Statistics::Int32(s) => (f64::from(*s.min_opt()?), f64::from(*s.max_opt()?)),
        Statistics::Int64(s) => (*s.min_opt()? as f64, *s.max_opt()? as f64),
        Statistics::Double(s) => {
            let (min, max) = (*s.min_opt()?, *s.max_opt()?);
            // An infinite (or NaN) bound narrows as itself but says nothing of the values
            // between: read them.
            if !(min.is_finite() && max.is_finite()) {
                return None;
            }
            (min, max)
        }
        _ => return None,
    };
    Some(min >= lo && max <= hi)
}

fn stats_range(stats: &Statistics) -> Misfit {
    let (min, max) = match stats {
        Statistics::Int32(s) => (
            s.min_opt().map(ToString::to_string),
            s.max_opt().map(ToString::to_string),
        ),
        Statistics::Int64(s) => (
            s.min_opt().map(ToString::to_string),
            s.max_opt().map(ToString::to_string),
        ),
        Statistics::Double(s) => (
            s.min_opt().map(ToString::to_string),
            s.max_opt().map(ToString::to_string),
        ),
        _ => (None, None),
    };
    Misfit::Stats {
        min: min.unwrap_or_else(|| "?".into()),
        max: max.unwrap_or_else(|| "?".into()),
    }
}
