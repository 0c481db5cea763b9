//! Type coercion from whatever Arrow type a Parquet column has to the declared dtype
//! (SPEC §2.6): lossless widenings are implicit, narrowings are checked value by value, anything
//! else is refused. `coercion` is the one table both `materialize` and `validate` consult.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, PrimitiveArray, new_null_array};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{
    DataType, Field, Float32Type, Float64Type, Int64Type, TimeUnit, UInt64Type,
};

use crate::base::value::{DType, Scalar};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Coercion {
    /// Always lossless.
    Implicit,
    /// Allowed, but a value that does not fit is an error naming its row.
    Checked,
    /// Not allowed (string to int, say).
    Refused,
}

pub(super) fn coercion(src: &DataType, dst: DType) -> Coercion {
    // An all-None column as pandas writes it reads as nulls of any dtype (SPEC §2.5).
    if *src == DataType::Null {
        return Coercion::Implicit;
    }
    match dst {
        DType::Scalar(s) => scalar_coercion(src, s),
        DType::List(elem) => match src {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                scalar_coercion(f.data_type(), elem)
            }
            _ => Coercion::Refused,
        },
    }
}

fn scalar_coercion(src: &DataType, dst: Scalar) -> Coercion {
    use Coercion::*;
    use DataType as A;
    match (dst, src) {
        (_, A::Dictionary(_, values)) => scalar_coercion(values, dst),
        (
            Scalar::Int64,
            A::Int8 | A::Int16 | A::Int32 | A::Int64 | A::UInt8 | A::UInt16 | A::UInt32,
        ) => Implicit,
        (Scalar::Int64, A::UInt64) => Checked,
        (Scalar::Int32, A::Int8 | A::Int16 | A::Int32 | A::UInt8 | A::UInt16) => Implicit,
        (Scalar::Int32, A::Int64 | A::UInt32 | A::UInt64) => Checked,
        (Scalar::Float64, A::Float16 | A::Float32 | A::Float64) => Implicit,
        (Scalar::Float64, A::Int8 | A::Int16 | A::Int32 | A::UInt8 | A::UInt16 | A::UInt32) => {
            Implicit
        }
        (Scalar::Float64, A::Int64 | A::UInt64) => Checked,
        (Scalar::Float32, A::Float16 | A::Float32 | A::Int8 | A::Int16 | A::UInt8 | A::UInt16) => {
            Implicit
        }
        (Scalar::Float32, A::Float64) => Checked,
        (Scalar::Bool, A::Boolean) => Implicit,
        (Scalar::String, A::Utf8 | A::LargeUtf8 | A::Utf8View) => Implicit,
        (Scalar::Bytes, A::Binary | A::LargeBinary | A::BinaryView | A::FixedSizeBinary(_)) => {
            Implicit
        }
        (Scalar::Timestamp, A::Timestamp(_, _) | A::Date32 | A::Date64) => Implicit,
        _ => Refused,
    }
}

/// The Arrow type every column is normalized to before values are read.
fn canonical(dst: Scalar) -> DataType {
    match dst {
        Scalar::Int32 | Scalar::Int64 | Scalar::Timestamp => DataType::Int64,
        Scalar::Float32 => DataType::Float32,
        Scalar::Float64 => DataType::Float64,
        Scalar::Bool => DataType::Boolean,
        Scalar::String => DataType::Utf8,
        Scalar::Bytes => DataType::Binary,
    }
}

/// A value that does not fit its declared dtype.
#[derive(Debug)]
pub(super) struct Misfit {
    pub row: usize,
    pub value: String,
}

/// Normalizes `array` to the canonical representation of `dst`. Call only when `coercion`
/// did not refuse. Errors name the first row whose value does not fit.
pub(super) fn normalize(array: &ArrayRef, dst: DType) -> Result<ArrayRef, Misfit> {
    if *array.data_type() == DataType::Null {
        let target = match dst {
            DType::Scalar(s) => canonical(s),
            DType::List(elem) => {
                DataType::List(Arc::new(Field::new_list_field(canonical(elem), true)))
            }
        };
        return Ok(new_null_array(&target, array.len()));
    }
    match dst {
        DType::Scalar(s) => normalize_scalar(array, s),
        DType::List(elem) => {
            let list_type = DataType::List(Arc::new(Field::new_list_field(
                list_child_type(array.data_type()),
                true,
            )));
            let list = cast(array, &list_type).map_err(|_| Misfit {
                row: 0,
                value: "list".into(),
            })?;
            let list = list.as_list::<i32>();
            let values = normalize_scalar(list.values(), elem).map_err(|m| {
                let offsets = list.value_offsets();
                let row = offsets
                    .partition_point(|&o| (o as usize) <= m.row)
                    .saturating_sub(1);
                Misfit {
                    row,
                    value: m.value,
                }
            })?;
            let field = Arc::new(Field::new_list_field(canonical(elem), true));
            Ok(Arc::new(ListArray::new(
                field,
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )))
        }
    }
}

fn list_child_type(t: &DataType) -> DataType {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            f.data_type().clone()
        }
        other => other.clone(),
    }
}

fn cast(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, arrow::error::ArrowError> {
    cast_with_options(
        array,
        to,
        &CastOptions {
            safe: false,
            ..Default::default()
        },
    )
}

fn normalize_scalar(array: &ArrayRef, dst: Scalar) -> Result<ArrayRef, Misfit> {
    let src = array.data_type();
    let src = match src {
        DataType::Dictionary(_, v) => v.as_ref(),
        other => other,
    };
    // Timestamps: any unit and zone to UTC microseconds. A zoned timestamp already stores UTC;
    // a naive one is taken as UTC (SPEC §2.7), so only the unit changes.
    if dst == Scalar::Timestamp {
        // Nanoseconds round down to microseconds, toward the past before 1970 too (SPEC
        // §2.7); arrow's cast would round toward zero.
        if let DataType::Timestamp(TimeUnit::Nanosecond, _) = src {
            let ns =
                cast(array, &DataType::Int64).map_err(|_| first_misfit(array, &DataType::Int64))?;
            let us: PrimitiveArray<Int64Type> = ns
                .as_primitive::<Int64Type>()
                .unary(|v| v.div_euclid(1_000));
            return Ok(Arc::new(us));
        }
        let micros = match src {
            DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
            _ => DataType::Timestamp(TimeUnit::Microsecond, None),
        };
        let as_us = cast(array, &micros).map_err(|_| first_misfit(array, &micros))?;
        return cast(&as_us, &DataType::Int64).map_err(|_| first_misfit(array, &DataType::Int64));
    }
    let target = canonical(dst);
    // Checks arrow's cast does not make: float narrowing overflow and inexact int -> float.
    match (dst, src) {
        (Scalar::Float32, DataType::Float64) => {
            let wide = array.as_primitive_opt::<Float64Type>();
            if let Some(wide) = wide {
                for (row, v) in wide.iter().enumerate() {
                    if let Some(v) = v
                        && v.is_finite()
                        && v.abs() > f64::from(f32::MAX)
                    {
                        return Err(Misfit {
                            row,
                            value: v.to_string(),
                        });
                    }
                }
            }
        }
        (Scalar::Float64, DataType::Int64 | DataType::UInt64) => {
            const EXACT: u64 = 1 << 53;
            let bad = match src {
                DataType::Int64 => array
                    .as_primitive::<Int64Type>()
                    .iter()
                    .enumerate()
                    .find_map(|(r, v)| {
                        v.filter(|v| v.unsigned_abs() > EXACT)
                            .map(|v| (r, v.to_string()))
                    }),
                _ => array
                    .as_primitive::<UInt64Type>()
                    .iter()
                    .enumerate()
                    .find_map(|(r, v)| v.filter(|&v| v > EXACT).map(|v| (r, v.to_string()))),
            };
            if let Some((row, value)) = bad {
                return Err(Misfit {
                    row,
                    value: format!("{value} (not exact in float64)"),
                });
            }
        }
        _ => {}
    }
    let out = cast(array, &target).map_err(|_| first_misfit(array, &target))?;
    if dst == Scalar::Int32 {
        let ints = out.as_primitive::<Int64Type>();
        if let Some((row, v)) = ints
            .iter()
            .enumerate()
            .find_map(|(r, v)| v.filter(|v| i32::try_from(*v).is_err()).map(|v| (r, v)))
        {
            return Err(Misfit {
                row,
                value: v.to_string(),
            });
        }
    }
    if dst == Scalar::Float32 && out.data_type() == &DataType::Float32 {
        // Float64 values in f32 range pass the check above; nothing else can overflow.
        debug_assert!(out.as_primitive_opt::<Float32Type>().is_some());
    }
    Ok(out)
}

/// Finds the row an unsafe cast choked on: the first valid input whose safe cast is null.
fn first_misfit(array: &ArrayRef, to: &DataType) -> Misfit {
    let safe = cast_with_options(array, to, &CastOptions::default());
    let row = match &safe {
        Ok(out) => (0..array.len())
            .find(|&i| array.is_valid(i) && out.is_null(i))
            .unwrap_or(0),
        Err(_) => 0,
    };
    let value = arrow::util::display::ArrayFormatter::try_new(array.as_ref(), &Default::default())
        .map(|f| f.value(row).to_string())
        .unwrap_or_else(|_| "?".into());
    Misfit { row, value }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array};

    #[test]
    fn narrowing_names_the_row() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(5_000_000_000)]));
        let m = normalize(&a, DType::Scalar(Scalar::Int32)).unwrap_err();
        assert_eq!((m.row, m.value.as_str()), (2, "5000000000"));
        let f: ArrayRef = Arc::new(Float64Array::from(vec![0.5, 1e300]));
        assert_eq!(
            normalize(&f, DType::Scalar(Scalar::Float32))
                .unwrap_err()
                .row,
            1
        );
        assert_eq!(
            coercion(&DataType::Utf8, DType::Scalar(Scalar::Int64)),
            Coercion::Refused
        );
        assert_eq!(
            coercion(&DataType::Int32, DType::Scalar(Scalar::Int64)),
            Coercion::Implicit
        );
    }

    #[test]
    fn a_null_typed_column_reads_as_nulls_of_the_declared_dtype() {
        let a: ArrayRef = Arc::new(arrow::array::NullArray::new(3));
        for dst in [
            DType::Scalar(Scalar::Float64),
            DType::Scalar(Scalar::String),
            DType::Scalar(Scalar::Timestamp),
            DType::List(Scalar::Float32),
        ] {
            assert_eq!(coercion(a.data_type(), dst), Coercion::Implicit);
            let n = normalize(&a, dst).unwrap();
            assert_eq!((n.len(), n.null_count()), (3, 3), "{dst}");
        }
    }

    #[test]
    fn nanoseconds_round_toward_the_past() {
        use arrow::array::TimestampNanosecondArray;
        let a: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![
            1_999, -1, -1_000, -1_001,
        ]));
        let n = normalize(&a, DType::Scalar(Scalar::Timestamp)).unwrap();
        let us: Vec<i64> = n.as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(us, vec![1, -1, -1, -2]);
    }
}
