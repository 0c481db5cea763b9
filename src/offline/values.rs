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
///
/// One dispatch on the column's type per item (this runs for every feature of every row kept).
#[inline]
pub fn write_item(col: &Column<'_>, row: usize, buf: &mut Vec<u8>) -> bool {
    match col {
        Column::Int(a) if a.is_valid(row) => mp::int(buf, a.value(row)),
        Column::F32(a) if a.is_valid(row) && !a.value(row).is_nan() => {
            mp::head(buf, 0xca, a.value(row).to_bits().to_be_bytes());
        }
        Column::F64(a) if a.is_valid(row) && !a.value(row).is_nan() => {
            mp::head(buf, 0xcb, a.value(row).to_bits().to_be_bytes());
        }
        Column::Bool(a) if a.is_valid(row) => buf.push(if a.value(row) { 0xc3 } else { 0xc2 }),
        Column::Str(a) if a.is_valid(row) => mp::str(buf, a.value(row)),
        Column::Bytes(_) | Column::List(..) if !col.is_null(row) => write_present(col, row, buf),
        _ => return false,
    }
    true
}

fn write_present(col: &Column<'_>, row: usize, buf: &mut Vec<u8>) {
    match col {
        Column::Int(a) => mp::int(buf, a.value(row)),
        Column::F32(a) => mp::head(buf, 0xca, a.value(row).to_bits().to_be_bytes()),
        Column::F64(a) => mp::head(buf, 0xcb, a.value(row).to_bits().to_be_bytes()),
        Column::Bool(a) => buf.push(if a.value(row) { 0xc3 } else { 0xc2 }),
        Column::Str(a) => mp::str(buf, a.value(row)),
        Column::Bytes(a) => {
            rmp::encode::write_bin(buf, a.value(row)).unwrap();
        }
        Column::List(a, child) => {
            let offsets = a.value_offsets();
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            rmp::encode::write_array_len(buf, (end - start) as u32).unwrap();
            for i in start..end {
                // Inside a list a null element is nil; NaN elements are kept as they are.
                if child.is_null(i) {
                    buf.push(0xc0);
                } else {
                    write_present(child, i, buf);
                }
            }
        }
    }
}

/// The scalar forms the scan writes for every row it keeps, byte for byte what `rmp::encode`
/// writes (integers in their most compact form), without its `io::Write` calls per marker and
/// payload: through `rmp` they were a third of collecting a row (profiled at 1M entities).
mod mp {
    /// A marker and a fixed-size payload, copied with one store each (a slice of unknown
    /// length would cost a `memmove` call per value).
    #[inline(always)]
    pub fn head<const N: usize>(buf: &mut Vec<u8>, marker: u8, payload: [u8; N]) {
        buf.reserve(N + 1);
        buf.push(marker);
        buf.extend_from_slice(&payload);
    }

    #[inline]
    pub fn int(buf: &mut Vec<u8>, v: i64) {
        match v {
            0..=0x7f => buf.push(v as u8),
            -32..=-1 => buf.push(v as i8 as u8),
            0x80..=0xff => buf.extend_from_slice(&[0xcc, v as u8]),
            0x100..=0xffff => head(buf, 0xcd, (v as u16).to_be_bytes()),
            0x1_0000..=0xffff_ffff => head(buf, 0xce, (v as u32).to_be_bytes()),
            0x1_0000_0000.. => head(buf, 0xcf, (v as u64).to_be_bytes()),
            -128..=-33 => buf.extend_from_slice(&[0xd0, v as i8 as u8]),
            -32768..=-129 => head(buf, 0xd1, (v as i16).to_be_bytes()),
            -2_147_483_648..=-32769 => head(buf, 0xd2, (v as i32).to_be_bytes()),
            _ => head(buf, 0xd3, v.to_be_bytes()),
        }
    }

    pub fn str(buf: &mut Vec<u8>, s: &str) {
        let n = s.len();
        match n {
            0..=31 => buf.push(0xa0 | n as u8),
            32..=0xff => buf.extend_from_slice(&[0xd9, n as u8]),
            0x100..=0xffff => head(buf, 0xda, (n as u16).to_be_bytes()),
            _ => head(buf, 0xdb, (n as u32).to_be_bytes()),
        }
        buf.extend_from_slice(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float32Array, Float64Array, Int64Array};

    use super::*;

    fn written(array: ArrayRef) -> Vec<Vec<u8>> {
        let col = Column::new(&array);
        (0..array.len())
            .map(|row| {
                let mut buf = Vec::new();
                assert!(write_item(&col, row, &mut buf));
                buf
            })
            .collect()
    }

    fn by_rmp<T>(values: &[T], write: impl Fn(&mut Vec<u8>, &T)) -> Vec<Vec<u8>> {
        values
            .iter()
            .map(|v| {
                let mut buf = Vec::new();
                write(&mut buf, v);
                buf
            })
            .collect()
    }

    #[test]
    fn scalars_are_written_as_rmp_writes_them() {
        let mut ints = vec![i64::MIN, i64::MAX, u32::MAX as i64 + 1, i32::MIN as i64 - 1];
        for edge in [0i64, 31, 32, 127, 128, 255, 256, 32767, 32768, 65535, 65536] {
            ints.extend([edge - 1, edge, edge + 1, -edge - 1, -edge, -edge + 1]);
        }
        ints.extend([u32::MAX as i64, i32::MIN as i64, i32::MAX as i64]);
        let expected = by_rmp(&ints, |b, &v| {
            rmp::encode::write_sint(b, v).unwrap();
        });
        assert_eq!(written(Arc::new(Int64Array::from(ints))), expected);

        let f32s = [
            0.0f32,
            -0.0,
            1.5,
            f32::MAX,
            f32::MIN_POSITIVE,
            f32::INFINITY,
        ];
        let expected = by_rmp(&f32s, |b, &v| rmp::encode::write_f32(b, v).unwrap());
        assert_eq!(
            written(Arc::new(Float32Array::from(f32s.to_vec()))),
            expected
        );
        let f64s = [0.0f64, -0.0, -2.25, f64::MAX, f64::NEG_INFINITY];
        let expected = by_rmp(&f64s, |b, &v| rmp::encode::write_f64(b, v).unwrap());
        assert_eq!(
            written(Arc::new(Float64Array::from(f64s.to_vec()))),
            expected
        );

        let gaps: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None]));
        let nan: ArrayRef = Arc::new(Float32Array::from(vec![f32::NAN]));
        let mut buf = Vec::new();
        assert!(!write_item(&Column::new(&gaps), 1, &mut buf));
        assert!(!write_item(&Column::new(&nan), 0, &mut buf));
        assert!(buf.is_empty(), "nothing written for a null or NaN");

        let bools = [true, false];
        let expected = by_rmp(&bools, |b, &v| rmp::encode::write_bool(b, v).unwrap());
        assert_eq!(
            written(Arc::new(BooleanArray::from(bools.to_vec()))),
            expected
        );

        let strs: Vec<String> = [0, 1, 31, 32, 255, 256, 65535, 65536]
            .iter()
            .map(|&n| "é".repeat(n / 2) + &"x".repeat(n % 2))
            .collect();
        let expected = by_rmp(&strs, |b, v| rmp::encode::write_str(b, v).unwrap());
        assert_eq!(written(Arc::new(StringArray::from(strs))), expected);
    }
}
