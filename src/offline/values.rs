//! Reading one value out of a normalized Arrow column straight into MessagePack, with the
//! null/NaN rule of SPEC §2.5 (a NaN counts as null). No `Value` is built on this path.

use arrow::array::PrimitiveArray;
use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, GenericListArray, StringArray,
};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int64Type};

use crate::base::entity_key::KeyPart;
use crate::vector::msgpack as mp;

/// A column in its canonical form (see `coerce::normalize`).
pub(super) enum Column<'a> {
    Int(&'a PrimitiveArray<Int64Type>),
    F32(&'a PrimitiveArray<Float32Type>),
    F64(&'a PrimitiveArray<Float64Type>),
    Bool(&'a BooleanArray),
    Str(&'a StringArray),
    Bytes(&'a BinaryArray),
    List(&'a GenericListArray<i32>, Box<Column<'a>>),
}

impl<'a> Column<'a> {
    pub(super) fn new(array: &'a ArrayRef) -> Column<'a> {
        Self::of(array.as_ref())
    }

    fn of(array: &'a dyn Array) -> Column<'a> {
        match array.data_type() {
            DataType::Int64 => Column::Int(array.as_primitive()),
            DataType::Float32 => Column::F32(array.as_primitive()),
            DataType::Float64 => Column::F64(array.as_primitive()),
            DataType::Boolean => Column::Bool(array.as_boolean()),
            DataType::Utf8 => Column::Str(array.as_string()),
            DataType::Binary => Column::Bytes(array.as_binary()),
            DataType::List(_) => {
                let list = array.as_list::<i32>();
                Column::List(list, Box::new(Column::of(list.values().as_ref())))
            }
            other => unreachable!("normalize never yields {other}"),
        }
    }

    fn is_null(&self, row: usize) -> bool {
        match self {
            Column::Int(a) => a.is_null(row),
            Column::F32(a) => a.is_null(row),
            Column::F64(a) => a.is_null(row),
            Column::Bool(a) => a.is_null(row),
            Column::Str(a) => a.is_null(row),
            Column::Bytes(a) => a.is_null(row),
            Column::List(a, _) => a.is_null(row),
        }
    }

    /// A join key value; the row must be valid and the column an int or string.
    pub(super) fn key_part(&self, row: usize) -> KeyPart<'a> {
        match self {
            Column::Int(a) => KeyPart::Int(a.value(row)),
            Column::Str(a) => KeyPart::Str(a.value(row)),
            _ => unreachable!("join keys are int or string"),
        }
    }
}

/// Writes the item at `row`. Returns false (writing nothing) for a null or NaN, which the
/// caller replaces with the feature's default or nil.
///
/// One dispatch on the column's type per item (this runs for every feature of every row kept).
#[inline]
pub(super) fn write_item(col: &Column<'_>, row: usize, buf: &mut Vec<u8>) -> bool {
    match col {
        Column::Int(a) if a.is_valid(row) => mp::int(buf, a.value(row)),
        Column::F32(a) if a.is_valid(row) && !a.value(row).is_nan() => {
            mp::f32(buf, a.value(row));
        }
        Column::F64(a) if a.is_valid(row) && !a.value(row).is_nan() => {
            mp::f64(buf, a.value(row));
        }
        Column::Bool(a) if a.is_valid(row) => mp::bool(buf, a.value(row)),
        Column::Str(a) if a.is_valid(row) => mp::str(buf, a.value(row)),
        Column::Bytes(_) | Column::List(..) if !col.is_null(row) => write_present(col, row, buf),
        _ => return false,
    }
    true
}

fn write_present(col: &Column<'_>, row: usize, buf: &mut Vec<u8>) {
    match col {
        Column::Int(a) => mp::int(buf, a.value(row)),
        Column::F32(a) => mp::f32(buf, a.value(row)),
        Column::F64(a) => mp::f64(buf, a.value(row)),
        Column::Bool(a) => mp::bool(buf, a.value(row)),
        Column::Str(a) => mp::str(buf, a.value(row)),
        Column::Bytes(a) => {
            mp::bin(buf, a.value(row));
        }
        Column::List(a, child) => {
            let offsets = a.value_offsets();
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            mp::array_len(buf, end - start);
            for i in start..end {
                // Inside a list a null element is nil; NaN elements are kept as they are.
                if child.is_null(i) {
                    mp::nil(buf);
                } else {
                    write_present(child, i, buf);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float32Array, Float64Array, Int64Array, ListArray};
    use arrow::datatypes::Float32Type;

    use super::*;
    use crate::base::value::Value;

    /// What the column path writes for each row (`None` for a null or NaN).
    fn written(array: ArrayRef) -> Vec<Option<Vec<u8>>> {
        let col = Column::new(&array);
        (0..array.len())
            .map(|row| {
                let mut buf = Vec::new();
                write_item(&col, row, &mut buf).then_some(buf)
            })
            .collect()
    }

    /// What the format's writer makes of the same values (its forms are pinned to `rmp` in
    /// `vector::msgpack`).
    fn encoded(values: &[Option<Value>]) -> Vec<Option<Vec<u8>>> {
        values
            .iter()
            .map(|v| {
                v.as_ref().map(|v| {
                    let mut buf = Vec::new();
                    mp::write_value(&mut buf, v);
                    buf
                })
            })
            .collect()
    }

    #[test]
    fn each_column_type_writes_its_values_and_skips_nulls_and_nan() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![Some(-33), None, Some(1 << 40)]));
        assert_eq!(
            written(ints),
            encoded(&[Some(Value::Int(-33)), None, Some(Value::Int(1 << 40))])
        );
        let f32s: ArrayRef = Arc::new(Float32Array::from(vec![1.5, f32::NAN]));
        assert_eq!(written(f32s), encoded(&[Some(Value::F32(1.5)), None]));
        let f64s: ArrayRef = Arc::new(Float64Array::from(vec![Some(-2.25), None]));
        assert_eq!(written(f64s), encoded(&[Some(Value::F64(-2.25)), None]));
        let bools: ArrayRef = Arc::new(BooleanArray::from(vec![true, false]));
        assert_eq!(
            written(bools),
            encoded(&[Some(Value::Bool(true)), Some(Value::Bool(false))])
        );
        let long = "é".repeat(40);
        let strs: ArrayRef = Arc::new(StringArray::from(vec![
            Some("x"),
            None,
            Some(long.as_str()),
        ]));
        assert_eq!(
            written(strs),
            encoded(&[
                Some(Value::Str("x".into())),
                None,
                Some(Value::Str(long.clone()))
            ])
        );
        // Inside a list a null element is nil and a NaN stays NaN (SPEC §2.5).
        let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Float32Type, _, _>(vec![
            Some(vec![Some(0.5), None, Some(f32::NAN)]),
            None,
        ]));
        let got = written(lists);
        assert_eq!(got[1], None);
        assert_eq!(
            got[0],
            encoded(&[Some(Value::List(vec![
                Value::F32(0.5),
                Value::Null,
                Value::F32(f32::NAN)
            ]))])[0]
        );
    }
}
