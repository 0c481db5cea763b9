//! Feast's online bytes (issue 26, `layout: feast`): the serialized entity key, the hash field of a
//! feature (murmur3 of `<view>:<feature>`), the `_ts:<view>` event time and `feast.types.Value`.
//! Pure functions over bytes like the rest of `vector/`, pinned to test vectors that Feast 0.67.0
//! itself produced (FEAST.md §3.5), so that Feast's own readers serve what fsctl writes.

use crate::base::value::{DType, Scalar, Value};

/// A join key value, as Feast's key serialization types it (only these are allowed in a key).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyValue<'a> {
    Str(&'a str),
    Bytes(&'a [u8]),
    Int32(i32),
    Int64(i64),
    /// Epoch seconds.
    UnixTimestamp(i64),
}

impl KeyValue<'_> {
    /// `feast.types.ValueType` of the value, and its bytes.
    fn typed(&self) -> (u32, Vec<u8>) {
        match *self {
            KeyValue::Bytes(b) => (1, b.to_vec()),
            KeyValue::Str(s) => (2, s.as_bytes().to_vec()),
            KeyValue::Int32(v) => (3, v.to_le_bytes().to_vec()),
            KeyValue::Int64(v) => (4, v.to_le_bytes().to_vec()),
            KeyValue::UnixTimestamp(v) => (8, v.to_le_bytes().to_vec()),
        }
    }
}

/// The join key name of a view without entities; its value is the empty string.
pub const DUMMY_JOIN_KEY: &str = "__dummy_id";

/// `serialize_entity_key` (versions 2 and 3): the join keys sorted by name (byte order), then
/// for v3 their count and each name's length. Feast's Redis key is this followed by the
/// project's name (`redis_key`).
pub fn entity_key(join_keys: &[(&str, KeyValue<'_>)], version: u32) -> Vec<u8> {
    let mut sorted: Vec<&(&str, KeyValue<'_>)> = join_keys.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = Vec::new();
    let u32le = |out: &mut Vec<u8>, v: usize| out.extend_from_slice(&(v as u32).to_le_bytes());
    if version >= 3 {
        u32le(&mut out, sorted.len());
    }
    for (name, _) in &sorted {
        u32le(&mut out, 2); // STRING
        if version >= 3 {
            u32le(&mut out, name.len());
        }
        out.extend_from_slice(name.as_bytes());
    }
    for (_, value) in &sorted {
        let (kind, bytes) = value.typed();
        u32le(&mut out, kind as usize);
        u32le(&mut out, bytes.len());
        out.extend_from_slice(&bytes);
    }
    out
}

/// Feast's Redis key of an entity: its serialized key, then the project, no separator.
pub fn redis_key(entity_key: &[u8], project: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(entity_key.len() + project.len());
    key.extend_from_slice(entity_key);
    key.extend_from_slice(project.as_bytes());
    key
}

/// The hash field holding `view.feature`: MurmurHash3 (x86, 32-bit, seed 0) of
/// `<view>:<feature>`, little-endian.
pub fn field(view: &str, feature: &str) -> [u8; 4] {
    let mut name = Vec::with_capacity(view.len() + 1 + feature.len());
    name.extend_from_slice(view.as_bytes());
    name.push(b':');
    name.extend_from_slice(feature.as_bytes());
    murmur3_32(&name, 0).to_le_bytes()
}

/// The hash field of a view's event time.
pub fn ts_field(view: &str) -> Vec<u8> {
    format!("_ts:{view}").into_bytes()
}

/// MurmurHash3_x86_32, the hash of Python's `mmh3.hash` (unsigned).
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let k = u32::from_le_bytes(block.try_into().expect("4 bytes"));
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let k = tail
            .iter()
            .rev()
            .fold(0u32, |k, &b| (k << 8) | u32::from(b));
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// A `google.protobuf.Timestamp` of `us` microseconds since the epoch (zero fields omitted).
pub fn timestamp(us: i64) -> Vec<u8> {
    let (seconds, nanos) = (us.div_euclid(1_000_000), us.rem_euclid(1_000_000) * 1000);
    let mut out = Vec::new();
    if seconds != 0 {
        out.push(0x08);
        varint(&mut out, seconds as u64);
    }
    if nanos != 0 {
        out.push(0x10);
        varint(&mut out, nanos as u64);
    }
    out
}

/// Appends the `feast.types.Value` of `value` declared `dtype`. A null, and a NaN float, is the
/// empty Value (as Feast writes them); timestamps (UTC microseconds in fsctl) become epoch
/// seconds, rounded down as Feast's numpy path does.
pub fn value(out: &mut Vec<u8>, value: &Value, dtype: DType) {
    match (dtype, value) {
        // Feast's null timestamp is pandas' NaT, the smallest int64, not an empty Value.
        (DType::Scalar(Scalar::Timestamp), Value::Null) => {
            out.push(0x40);
            varint(out, i64::MIN as u64);
        }
        (_, Value::Null) => {}
        (_, Value::F32(v)) if v.is_nan() => {}
        (_, Value::F64(v)) if v.is_nan() => {}
        (DType::Scalar(s), v) => scalar(out, s, v),
        (DType::List(elem), Value::List(items)) => list(out, elem, items),
        // Values are coerced to their dtype before they get here; anything else is a bug.
        (DType::List(_), other) => unreachable!("list dtype with value {other:?}"),
    }
}

fn scalar(out: &mut Vec<u8>, s: Scalar, v: &Value) {
    match (s, v) {
        (Scalar::Bytes, Value::Bytes(b)) => len_delimited(out, &[0x0a], b),
        (Scalar::String, Value::Str(t)) => len_delimited(out, &[0x12], t.as_bytes()),
        (Scalar::Int32, Value::Int(i)) => {
            out.push(0x18);
            varint(out, *i as u64);
        }
        (Scalar::Int64, Value::Int(i)) => {
            out.push(0x20);
            varint(out, *i as u64);
        }
        (Scalar::Float64, Value::F64(x)) => {
            out.push(0x29);
            out.extend_from_slice(&x.to_le_bytes());
        }
        (Scalar::Float32, Value::F32(x)) => {
            out.push(0x35);
            out.extend_from_slice(&x.to_le_bytes());
        }
        (Scalar::Bool, Value::Bool(b)) => out.extend_from_slice(&[0x38, u8::from(*b)]),
        (Scalar::Timestamp, Value::Int(us)) => {
            out.push(0x40);
            varint(out, us.div_euclid(1_000_000) as u64);
        }
        (s, other) => unreachable!("{s:?} with value {other:?}"),
    }
}

/// A list Value: field `11 + n` wrapping `{1: repeated}`, numbers packed.
fn list(out: &mut Vec<u8>, elem: Scalar, items: &[Value]) {
    let mut inner = Vec::new();
    let tag: &[u8] = match elem {
        Scalar::Bytes => &[0x5a],
        Scalar::String => &[0x62],
        Scalar::Int32 => &[0x6a],
        Scalar::Int64 => &[0x72],
        Scalar::Float64 => &[0x7a],
        Scalar::Float32 => &[0x82, 0x01],
        Scalar::Bool => &[0x8a, 0x01],
        Scalar::Timestamp => &[0x92, 0x01],
    };
    match elem {
        Scalar::Bytes | Scalar::String => {
            for item in items {
                let bytes: &[u8] = match item {
                    Value::Bytes(b) => b,
                    Value::Str(s) => s.as_bytes(),
                    _ => &[],
                };
                len_delimited(&mut inner, &[0x0a], bytes);
            }
        }
        _ => {
            let mut packed = Vec::new();
            for item in items {
                match (elem, item) {
                    (Scalar::Float64, Value::F64(x)) => packed.extend_from_slice(&x.to_le_bytes()),
                    (Scalar::Float32, Value::F32(x)) => packed.extend_from_slice(&x.to_le_bytes()),
                    (Scalar::Bool, Value::Bool(b)) => packed.push(u8::from(*b)),
                    (Scalar::Timestamp, Value::Int(us)) => {
                        varint(&mut packed, us.div_euclid(1_000_000) as u64);
                    }
                    (_, Value::Int(i)) => varint(&mut packed, *i as u64),
                    // A null element goes the way numpy takes it in Feast: NaN in a float list,
                    // NaT (the smallest int64) in a timestamp list, else zero.
                    (Scalar::Float64, _) => packed.extend_from_slice(&f64::NAN.to_le_bytes()),
                    (Scalar::Float32, _) => packed.extend_from_slice(&f32::NAN.to_le_bytes()),
                    (Scalar::Timestamp, _) => varint(&mut packed, i64::MIN as u64),
                    _ => packed.push(0),
                }
            }
            if !packed.is_empty() {
                len_delimited(&mut inner, &[0x0a], &packed);
            }
        }
    }
    len_delimited(out, tag, &inner);
}

/// A `PrecomputedFeatureVector` (FEAST.md §2.2): the names, their Values (already encoded),
/// one `FeatureViewTimestamp` per projection (`None`: the entity has no row there, which Feast
/// records as the epoch) and when it was computed.
pub fn precomputed_vector(
    names: &[String],
    values: &[Vec<u8>],
    stamps: &[(&str, Option<i64>)],
    precomputed_at_us: i64,
) -> Vec<u8> {
    let mut out = Vec::new();
    for n in names {
        len_delimited(&mut out, &[0x0a], n.as_bytes());
    }
    for v in values {
        len_delimited(&mut out, &[0x12], v);
    }
    for (view, at) in stamps {
        let mut entry = Vec::new();
        len_delimited(&mut entry, &[0x0a], view.as_bytes());
        len_delimited(&mut entry, &[0x12], &timestamp(at.unwrap_or(0)));
        len_delimited(&mut out, &[0x1a], &entry);
    }
    len_delimited(&mut out, &[0x22], &timestamp(precomputed_at_us));
    out
}

/// The Value holding `bytes` (`bytes_val`), as Feast stores a precomputed vector.
pub fn bytes_value(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 6);
    len_delimited(&mut out, &[0x0a], bytes);
    out
}

/// Reads a `feast.types.Value` (as `value` writes it, or Feast itself) as a value of `dtype`:
/// the empty Value is null, and so is Feast's NaT timestamp.
pub fn decode_value(bytes: &[u8], dtype: DType) -> Result<Value, String> {
    let mut r = Proto { bytes, pos: 0 };
    if r.done() {
        return Ok(Value::Null);
    }
    let (field, wire) = r.key()?;
    let expected = match dtype {
        DType::Scalar(s) => scalar_field(s),
        DType::List(s) => scalar_field(s) + 10,
    };
    if field != expected {
        return Err(format!(
            "a Value of field {field}, expected {expected} for {dtype}"
        ));
    }
    let value = match dtype {
        DType::Scalar(s) => r.scalar(s, wire)?,
        DType::List(s) => {
            let inner = r.len_delimited()?;
            let mut list = Proto {
                bytes: inner,
                pos: 0,
            };
            let mut items = Vec::new();
            while !list.done() {
                let (f, w) = list.key()?;
                if f != 1 {
                    return Err(format!("a list with field {f}"));
                }
                match (s, w) {
                    (Scalar::String | Scalar::Bytes, _) | (_, 0 | 1 | 5) => {
                        items.push(list.scalar(s, w)?)
                    }
                    // Packed numbers.
                    (_, 2) => {
                        let packed = list.len_delimited()?;
                        let mut p = Proto {
                            bytes: packed,
                            pos: 0,
                        };
                        let wire = match s {
                            Scalar::Float64 => 1,
                            Scalar::Float32 => 5,
                            _ => 0,
                        };
                        while !p.done() {
                            items.push(p.scalar(s, wire)?);
                        }
                    }
                    _ => return Err(format!("a list element of wire type {w}")),
                }
            }
            Value::List(items)
        }
    };
    Ok(value)
}

/// The `Value` field of a scalar type (`ValueType` number).
fn scalar_field(s: Scalar) -> u64 {
    match s {
        Scalar::Bytes => 1,
        Scalar::String => 2,
        Scalar::Int32 => 3,
        Scalar::Int64 => 4,
        Scalar::Float64 => 5,
        Scalar::Float32 => 6,
        Scalar::Bool => 7,
        Scalar::Timestamp => 8,
    }
}

/// A protobuf reader over a few bytes.
struct Proto<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Proto<'a> {
    fn done(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn key(&mut self) -> Result<(u64, u64), String> {
        let k = self.varint()?;
        Ok((k >> 3, k & 7))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or("truncated")?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn len_delimited(&mut self) -> Result<&'a [u8], String> {
        let n = self.varint()? as usize;
        self.take(n)
    }

    fn scalar(&mut self, s: Scalar, wire: u64) -> Result<Value, String> {
        Ok(match (s, wire) {
            (Scalar::Bytes, 2) => Value::Bytes(self.len_delimited()?.to_vec()),
            (Scalar::String, 2) => Value::Str(
                String::from_utf8(self.len_delimited()?.to_vec()).map_err(|e| e.to_string())?,
            ),
            (Scalar::Int32, 0) => Value::Int(i64::from(self.varint()? as i32)),
            (Scalar::Int64, 0) => Value::Int(self.varint()? as i64),
            (Scalar::Bool, 0) => Value::Bool(self.varint()? != 0),
            (Scalar::Timestamp, 0) => match self.varint()? as i64 {
                i64::MIN => Value::Null,
                seconds => Value::Int(seconds.saturating_mul(1_000_000)),
            },
            (Scalar::Float64, 1) => Value::F64(f64::from_le_bytes(
                self.take(8)?.try_into().expect("8 bytes"),
            )),
            (Scalar::Float32, 5) => Value::F32(f32::from_le_bytes(
                self.take(4)?.try_into().expect("4 bytes"),
            )),
            (s, w) => return Err(format!("{s:?} in wire type {w}")),
        })
    }
}

/// The event time (UTC µs) of a `google.protobuf.Timestamp`.
pub fn decode_timestamp(bytes: &[u8]) -> Result<i64, String> {
    let mut r = Proto { bytes, pos: 0 };
    let (mut seconds, mut nanos) = (0i64, 0i64);
    while !r.done() {
        match r.key()? {
            (1, 0) => seconds = r.varint()? as i64,
            (2, 0) => nanos = r.varint()? as i64,
            (f, _) => return Err(format!("a Timestamp with field {f}")),
        }
    }
    Ok(seconds * 1_000_000 + nanos / 1000)
}

fn len_delimited(out: &mut Vec<u8>, tag: &[u8], bytes: &[u8]) {
    out.extend_from_slice(tag);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A protobuf varint; negative integers go as their 64-bit two's complement (10 bytes).
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_written() {
        let cases = [
            (DType::Scalar(Scalar::Float32), Value::F32(0.01)),
            (DType::Scalar(Scalar::Float64), Value::F64(-0.5)),
            (DType::Scalar(Scalar::Int32), Value::Int(-7)),
            (DType::Scalar(Scalar::Int64), Value::Int(-5)),
            (DType::Scalar(Scalar::String), Value::Str("drv".into())),
            (DType::Scalar(Scalar::Bytes), Value::Bytes(vec![0, 1])),
            (DType::Scalar(Scalar::Bool), Value::Bool(false)),
            (
                DType::Scalar(Scalar::Timestamp),
                Value::Int(1_763_553_600_000_000),
            ),
            (DType::Scalar(Scalar::Timestamp), Value::Null),
            (DType::Scalar(Scalar::Int64), Value::Null),
            (
                DType::List(Scalar::Int32),
                Value::List(vec![Value::Int(1), Value::Int(-1)]),
            ),
            (
                DType::List(Scalar::Float32),
                Value::List(vec![Value::F32(1.0)]),
            ),
            (
                DType::List(Scalar::String),
                Value::List(vec![Value::Str("a".into()), Value::Str(String::new())]),
            ),
            (
                DType::List(Scalar::Bool),
                Value::List(vec![Value::Bool(true), Value::Bool(false)]),
            ),
            (DType::List(Scalar::Int64), Value::List(vec![])),
        ];
        for (dtype, v) in cases {
            let mut out = Vec::new();
            value(&mut out, &v, dtype);
            assert_eq!(decode_value(&out, dtype).unwrap(), v, "{dtype} {out:02x?}");
        }
        assert_eq!(
            decode_timestamp(&timestamp(1_763_636_400_123_456)).unwrap(),
            1_763_636_400_123_456
        );
        assert!(decode_value(&[0x20, 0x01], DType::Scalar(Scalar::String)).is_err());
    }
    use crate::base::time::parse_instant_us;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn encoded(v: Value, dtype: DType) -> String {
        let mut out = Vec::new();
        value(&mut out, &v, dtype);
        hex(&out)
    }

    fn us(t: &str) -> i64 {
        parse_instant_us(t).unwrap()
    }

    /// Hex of a FEAST.md test vector written in groups.
    fn groups(s: &str) -> String {
        s.split_whitespace().collect()
    }

    /// FEAST.md §3.5: bytes Feast 0.67.0 wrote.
    #[test]
    fn entity_keys_match_feast() {
        let driver = [("driver_id", KeyValue::Int64(1001))];
        assert_eq!(
            hex(&redis_key(&entity_key(&driver, 3), "fsdrop")),
            groups(
                "01000000 02000000 09000000 6472697665725f6964 04000000 08000000 e903000000000000 667364726f70"
            )
        );
        assert_eq!(
            hex(&entity_key(&driver, 2)),
            groups("02000000 6472697665725f6964 04000000 08000000 e903000000000000")
        );
        // Composite keys go sorted by name: customer_id first.
        let composite = [
            ("driver_id", KeyValue::Int64(1001)),
            ("customer_id", KeyValue::Str("c1")),
        ];
        assert_eq!(
            hex(&entity_key(&composite, 3)),
            groups(
                "02000000 02000000 0b000000 637573746f6d65725f6964 02000000 09000000 6472697665725f6964 \
                 02000000 02000000 6331 04000000 08000000 e903000000000000"
            )
        );
        assert_eq!(
            hex(&entity_key(&composite, 2)),
            groups(
                "02000000 637573746f6d65725f6964 02000000 6472697665725f6964 02000000 02000000 6331 \
                 04000000 08000000 e903000000000000"
            )
        );
        assert_eq!(
            hex(&entity_key(&[("user", KeyValue::Str("u1"))], 3)),
            groups("01000000 02000000 04000000 75736572 02000000 02000000 7531")
        );
        assert_eq!(
            hex(&entity_key(&[("id", KeyValue::Int32(7))], 3)),
            groups("01000000 02000000 02000000 6964 03000000 04000000 07000000")
        );
        assert_eq!(
            hex(&entity_key(&[(DUMMY_JOIN_KEY, KeyValue::Str(""))], 3)),
            groups("01000000 02000000 0a000000 5f5f64756d6d795f6964 02000000 00000000")
        );
    }

    #[test]
    fn fields_and_times_match_feast() {
        assert_eq!(hex(&field("driver_stats", "conv_rate")), "fa731014");
        assert_eq!(hex(&field("__precomputed__svc_pre", "vector")), "80554952");
        assert_eq!(hex(&field("feature_view_1", "feature_10")), "266d5f39");
        assert_eq!(hex(&field("driver_hourly_stats", "conv_rate")), "6160e3da");
        assert_eq!(hex(&timestamp(us("2026-11-20T11:00:00Z"))), "08b0d080d806");
        assert_eq!(ts_field("v"), b"_ts:v");
        // Every tail length of MurmurHash3, against Python's mmh3.hash(.., 0, signed=False).
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"a", 0), 0x3c25_69b2);
        assert_eq!(murmur3_32(b"abc", 0), 0xb3dd_93fa);
        assert_eq!(murmur3_32(b"Hello, world!", 0), 0xc036_3e43);
    }

    #[test]
    fn values_match_feast() {
        let s = |s| DType::Scalar(s);
        let l = |s| DType::List(s);
        assert_eq!(encoded(Value::F32(0.01), s(Scalar::Float32)), "350ad7233c");
        assert_eq!(
            encoded(Value::F64(0.5), s(Scalar::Float64)),
            "29000000000000e03f"
        );
        assert_eq!(encoded(Value::Int(10011), s(Scalar::Int64)), "209b4e");
        assert_eq!(
            encoded(Value::Int(-5), s(Scalar::Int64)),
            "20fbffffffffffffffff01"
        );
        // FEAST.md lists `12076472763130303031` here: length 7 with 8 bytes after it, a typo
        // of this (the 7 bytes of "drv1001").
        assert_eq!(
            encoded(Value::Str("drv1001".into()), s(Scalar::String)),
            "120764727631303031"
        );
        assert_eq!(encoded(Value::Bool(true), s(Scalar::Bool)), "3801");
        assert_eq!(encoded(Value::Bool(false), s(Scalar::Bool)), "3800");
        assert_eq!(
            encoded(Value::Int(us("2026-11-19T12:00:00Z")), s(Scalar::Timestamp)),
            "40c0c9fbd706"
        );
        let strs = Value::List(vec![Value::Str("a".into()), Value::Str("b".into())]);
        assert_eq!(encoded(strs, l(Scalar::String)), "62060a01610a0162");
        assert_eq!(encoded(Value::List(vec![]), l(Scalar::String)), "6200");
        let ints = Value::List(vec![Value::Int(1), Value::Int(2), Value::Int(3)]);
        assert_eq!(encoded(ints, l(Scalar::Int64)), "72050a03010203");
        let floats = Value::List(vec![Value::F32(1.0), Value::F32(2.0)]);
        assert_eq!(
            encoded(floats, l(Scalar::Float32)),
            "82010a0a080000803f00000040"
        );
        let int32s = Value::List(vec![Value::Int(1), Value::Int(-1)]);
        assert_eq!(
            encoded(int32s, l(Scalar::Int32)),
            "6a0d0a0b01ffffffffffffffffff01"
        );
        let bools = Value::List(vec![Value::Bool(true), Value::Bool(false)]);
        assert_eq!(encoded(bools, l(Scalar::Bool)), "8a01040a020100");
        assert_eq!(encoded(Value::Null, s(Scalar::Int64)), "");
        assert_eq!(encoded(Value::F64(f64::NAN), s(Scalar::Float64)), "");
    }
}
