//! The one MessagePack item writer of fsctl, and the walker that measures items without
//! decoding them. The scan writes each kept row's features with it, the vector encoder its
//! header, and `Value` defaults through `write_value`.
//!
//! Integers take their most compact form (positive values as uint forms), byte for byte what
//! `rmp::encode::write_sint` writes, but without its `io::Write` call per marker and payload:
//! through `rmp` those calls were a third of collecting a row (profiled at 1M entities). The
//! tests pin every form to `rmp`.

use crate::base::value::Value;

/// A marker and a fixed-size payload, copied with one store each (a slice of unknown length
/// would cost a `memmove` call per value).
#[inline(always)]
fn head<const N: usize>(buf: &mut Vec<u8>, marker: u8, payload: [u8; N]) {
    buf.reserve(N + 1);
    buf.push(marker);
    buf.extend_from_slice(&payload);
}

#[inline]
pub fn nil(buf: &mut Vec<u8>) {
    buf.push(0xc0);
}

#[inline]
pub fn bool(buf: &mut Vec<u8>, v: bool) {
    buf.push(if v { 0xc3 } else { 0xc2 });
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

#[inline]
pub fn uint(buf: &mut Vec<u8>, v: u64) {
    match i64::try_from(v) {
        Ok(v) => int(buf, v),
        Err(_) => head(buf, 0xcf, v.to_be_bytes()),
    }
}

#[inline]
pub fn f32(buf: &mut Vec<u8>, v: f32) {
    head(buf, 0xca, v.to_bits().to_be_bytes());
}

#[inline]
pub fn f64(buf: &mut Vec<u8>, v: f64) {
    head(buf, 0xcb, v.to_bits().to_be_bytes());
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

pub fn bin(buf: &mut Vec<u8>, b: &[u8]) {
    let n = b.len();
    match n {
        0..=0xff => buf.extend_from_slice(&[0xc4, n as u8]),
        0x100..=0xffff => head(buf, 0xc5, (n as u16).to_be_bytes()),
        _ => head(buf, 0xc6, (n as u32).to_be_bytes()),
    }
    buf.extend_from_slice(b);
}

pub fn array_len(buf: &mut Vec<u8>, n: usize) {
    match n {
        0..=15 => buf.push(0x90 | n as u8),
        16..=0xffff => head(buf, 0xdc, (n as u16).to_be_bytes()),
        _ => head(buf, 0xdd, (n as u32).to_be_bytes()),
    }
}

/// Appends `v`'s encoding.
pub fn write_value(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => nil(buf),
        Value::Int(v) => int(buf, *v),
        Value::F32(v) => f32(buf, *v),
        Value::F64(v) => f64(buf, *v),
        Value::Bool(v) => bool(buf, *v),
        Value::Str(v) => str(buf, v),
        Value::Bytes(v) => bin(buf, v),
        Value::List(items) => {
            array_len(buf, items.len());
            for item in items {
                write_value(buf, item);
            }
        }
    }
}

/// Length in bytes of the MessagePack item at the start of `b` (as written by fsctl: nil, bool,
/// ints, floats, str, bin and arrays of those). Panics on truncated input, which fsctl never
/// produces (items are written by this crate).
pub fn item_len(b: &[u8]) -> usize {
    let be = |n: usize| {
        b[1..1 + n]
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | x as usize)
    };
    match b[0] {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 1,
        0xcc | 0xd0 => 2,
        0xcd | 0xd1 => 3,
        0xca | 0xce | 0xd2 => 5,
        0xcb | 0xcf | 0xd3 => 9,
        m @ 0xa0..=0xbf => 1 + (m & 0x1f) as usize,
        0xd9 | 0xc4 => 2 + be(1),
        0xda | 0xc5 => 3 + be(2),
        0xdb | 0xc6 => 5 + be(4),
        m @ 0x90..=0x9f => array_len_bytes(b, 1, (m & 0x0f) as usize),
        0xdc => array_len_bytes(b, 3, be(2)),
        0xdd => array_len_bytes(b, 5, be(4)),
        m => unreachable!("fsctl never writes MessagePack marker 0x{m:02x}"),
    }
}

fn array_len_bytes(b: &[u8], header: usize, n: usize) -> usize {
    let mut at = header;
    for _ in 0..n {
        at += item_len(&b[at..]);
    }
    at
}

/// Splits `items` into `out`, one slice per item.
pub fn split_items<'a>(mut items: &'a [u8], out: &mut Vec<&'a [u8]>) {
    out.clear();
    while !items.is_empty() {
        let n = item_len(items);
        out.push(&items[..n]);
        items = &items[n..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut b = Vec::new();
        f(&mut b);
        b
    }

    fn by_rmp(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        ours(f)
    }

    #[test]
    fn every_form_is_what_rmp_writes() {
        let mut ints = vec![i64::MIN, i64::MAX, u32::MAX as i64 + 1, i32::MIN as i64 - 1];
        for edge in [0i64, 31, 32, 127, 128, 255, 256, 32767, 32768, 65535, 65536] {
            ints.extend([edge - 1, edge, edge + 1, -edge - 1, -edge, -edge + 1]);
        }
        ints.extend([u32::MAX as i64, i32::MIN as i64, i32::MAX as i64]);
        for v in ints {
            let expected = by_rmp(|b| {
                rmp::encode::write_sint(b, v).unwrap();
            });
            assert_eq!(ours(|b| int(b, v)), expected, "int {v}");
        }
        for v in [0u64, 127, 128, 1 << 40, i64::MAX as u64, u64::MAX] {
            let expected = by_rmp(|b| {
                rmp::encode::write_uint(b, v).unwrap();
            });
            assert_eq!(ours(|b| uint(b, v)), expected, "uint {v}");
        }
        for v in [
            0.0f32,
            -0.0,
            1.5,
            f32::MAX,
            f32::MIN_POSITIVE,
            f32::INFINITY,
        ] {
            let expected = by_rmp(|b| rmp::encode::write_f32(b, v).unwrap());
            assert_eq!(ours(|b| f32(b, v)), expected);
        }
        for v in [0.0f64, -0.0, -2.25, f64::MAX, f64::NEG_INFINITY] {
            let expected = by_rmp(|b| rmp::encode::write_f64(b, v).unwrap());
            assert_eq!(ours(|b| f64(b, v)), expected);
        }
        for v in [true, false] {
            let expected = by_rmp(|b| rmp::encode::write_bool(b, v).unwrap());
            assert_eq!(ours(|b| bool(b, v)), expected);
        }
        assert_eq!(ours(nil), by_rmp(|b| rmp::encode::write_nil(b).unwrap()));
        for n in [0usize, 1, 31, 32, 255, 256, 65535, 65536] {
            let s = "é".repeat(n / 2) + &"x".repeat(n % 2);
            let expected = by_rmp(|b| rmp::encode::write_str(b, &s).unwrap());
            assert_eq!(ours(|b| str(b, &s)), expected, "str of {n} bytes");
            let raw = vec![7u8; n];
            let expected = by_rmp(|b| rmp::encode::write_bin(b, &raw).unwrap());
            assert_eq!(ours(|b| bin(b, &raw)), expected, "bin of {n} bytes");
        }
        for n in [0usize, 15, 16, 65535, 65536] {
            let expected = by_rmp(|b| {
                rmp::encode::write_array_len(b, n as u32).unwrap();
            });
            assert_eq!(ours(|b| array_len(b, n)), expected, "array of {n}");
        }
    }

    #[test]
    fn splits_every_kind_of_item() {
        let values = vec![
            Value::Null,
            Value::Int(-3),
            Value::Int(1 << 40),
            Value::F32(0.5),
            Value::F64(2.5),
            Value::Bool(true),
            Value::Str("x".repeat(40)),
            Value::Bytes(vec![1; 300]),
            Value::List((0..20).map(|i| Value::F32(i as f32)).collect()),
            Value::List(vec![Value::Null, Value::Str("a".into())]),
        ];
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for v in &values {
            write_value(&mut buf, v);
            ends.push(buf.len());
        }
        let mut out = Vec::new();
        split_items(&buf, &mut out);
        assert_eq!(out.len(), values.len());
        let mut at = 0;
        for (slice, end) in out.iter().zip(ends) {
            assert_eq!(slice.len(), end - at);
            at = end;
        }
    }
}
