//! Reading one value out of a normalized Arrow column straight into MessagePack, with the
//! null/NaN rule of SPEC §2.5 (a NaN counts as null). No `Value` is built on this path.

use arrow::array::PrimitiveArray;
use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, GenericListArray, StringArray,
};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int64Type};

use crate::entity_key::KeyPart;

/// A column in its canonical form (see `coerce::normalize`).
pub enum Column<'a> {
    Int(&'a PrimitiveArray<Int64Type>),
    F32(&'a PrimitiveArray<Float32Type>),
    F64(&'a PrimitiveArray<Float64Type>),
    Bool(&'a BooleanArray),
    Str(&'a StringArray),
    Bytes(&'a BinaryArray),
    List(&'a GenericListArray<i32>, Box<Column<'a>>),
}

impl<'a> Column<'a> {
    pub fn new(array: &'a ArrayRef) -> Column<'a> {
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
    pub fn key_part(&self, row: usize) -> KeyPart<'a> {
        match self {
            Column::Int(a) => KeyPart::Int(a.value(row)),
            Column::Str(a) => KeyPart::Str(a.value(row)),
            _ => unreachable!("join keys are int or string"),
        }
    }
}

/// Writes the item at `row`. Returns false (writing nothing) for a null or NaN, which the
/// caller replaces with the feature's default or nil.
pub fn write_item(col: &Column<'_>, row: usize, buf: &mut Vec<u8>) -> bool {
    if col.is_null(row) {
        return false;
    }
    match col {
        Column::F32(a) if a.value(row).is_nan() => false,
        Column::F64(a) if a.value(row).is_nan() => false,
        _ => {
            write_present(col, row, buf);
            true
        }
    }
}

fn write_present(col: &Column<'_>, row: usize, buf: &mut Vec<u8>) {
    use rmp::encode as e;
    match col {
        Column::Int(a) => {
            e::write_sint(buf, a.value(row)).unwrap();
        }
        Column::F32(a) => e::write_f32(buf, a.value(row)).unwrap(),
        Column::F64(a) => e::write_f64(buf, a.value(row)).unwrap(),
        Column::Bool(a) => e::write_bool(buf, a.value(row)).unwrap(),
        Column::Str(a) => e::write_str(buf, a.value(row)).unwrap(),
        Column::Bytes(a) => e::write_bin(buf, a.value(row)).unwrap(),
        Column::List(a, child) => {
            let offsets = a.value_offsets();
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            e::write_array_len(buf, (end - start) as u32).unwrap();
            for i in start..end {
                // Inside a list a null element is nil; NaN elements are kept as they are.
                if child.is_null(i) {
                    e::write_nil(buf).unwrap();
                } else {
                    write_present(child, i, buf);
                }
            }
        }
    }
}
