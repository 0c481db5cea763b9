//! The MessagePack reader of vector documents: `[fingerprint, [view timestamps], [values]]`
//! read straight from the bytes into `Value`s.
//!
//! It replaces `rmp_serde::from_slice` on the serving path: through serde's visitor a 16-value
//! vector took 0.55 µs to decode, this takes 0.37 µs (criterion `vector/decode` in
//! benches/hotpaths.rs measures both); decoding is the largest part of a read's client cost. The tests pin it to `rmp_serde` on generated
//! documents. It is stricter where serde is lenient: trailing bytes and a `str` that is not
//! UTF-8 are errors, as they are for Python's `msgpack.unpackb`.

use super::{DecodedVector, SchemaFingerprint};
use crate::base::value::Value;

/// Why a document is not a vector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnpackError {
    #[error("truncated at byte {0}")]
    Truncated(usize),
    #[error("byte {at}: marker 0x{marker:02x} where {expected} was expected")]
    Unexpected {
        at: usize,
        marker: u8,
        expected: &'static str,
    },
    #[error("byte {0}: integer out of range")]
    OutOfRange(usize),
    #[error("byte {0}: string is not UTF-8")]
    NotUtf8(usize),
    #[error("byte {0}: arrays nested too deep")]
    TooDeep(usize),
    #[error("{0} bytes after the document")]
    Trailing(usize),
}

/// Lists of lists deeper than this are refused (a vector's values are scalars or lists of
/// scalars).
const MAX_DEPTH: u32 = 32;

/// The fingerprint, view timestamps and values of a vector document.
pub(crate) fn document(bytes: &[u8]) -> Result<DecodedVector, UnpackError> {
    let mut r = Reader { bytes, pos: 0 };
    r.expect_array(3)?;
    let fingerprint = r.uint()?;
    let n = r.array_len()?;
    let mut stamps = Vec::with_capacity(n.min(r.remaining()));
    for _ in 0..n {
        let at = r.pos;
        stamps.push(match r.value(0)? {
            Value::Null => None,
            Value::Int(v) => Some(v),
            _ => return Err(r.unexpected_at(at, "a timestamp or nil")),
        });
    }
    let n = r.array_len()?;
    let mut values = Vec::with_capacity(n.min(r.remaining()));
    for _ in 0..n {
        values.push(r.value(MAX_DEPTH)?);
    }
    match r.remaining() {
        0 => Ok(DecodedVector {
            fingerprint: SchemaFingerprint(fingerprint),
            view_timestamps: stamps,
            values,
        }),
        extra => Err(UnpackError::Trailing(extra)),
    }
}

/// One MessagePack item (a value fsctl encoded itself) as a `Value`.
pub(crate) fn item(bytes: &[u8]) -> Result<Value, UnpackError> {
    Reader { bytes, pos: 0 }.value(MAX_DEPTH)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], UnpackError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(UnpackError::Truncated(self.bytes.len()))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], UnpackError> {
        Ok(self.take(N)?.try_into().expect("N bytes taken"))
    }

    fn len(&mut self, width: usize) -> Result<usize, UnpackError> {
        Ok(match width {
            1 => self.fixed::<1>()?[0] as usize,
            2 => u16::from_be_bytes(self.fixed()?) as usize,
            _ => u32::from_be_bytes(self.fixed()?) as usize,
        })
    }

    fn unexpected_at(&self, at: usize, expected: &'static str) -> UnpackError {
        UnpackError::Unexpected {
            at,
            marker: self.bytes[at],
            expected,
        }
    }

    fn array_len(&mut self) -> Result<usize, UnpackError> {
        let at = self.pos;
        match self.fixed::<1>()?[0] {
            m @ 0x90..=0x9f => Ok((m & 0x0f) as usize),
            0xdc => self.len(2),
            0xdd => self.len(4),
            _ => Err(self.unexpected_at(at, "an array")),
        }
    }

    fn expect_array(&mut self, n: usize) -> Result<(), UnpackError> {
        let at = self.pos;
        if self.array_len()? == n {
            Ok(())
        } else {
            Err(self.unexpected_at(at, "an array of 3 items"))
        }
    }

    /// An unsigned integer in any of its forms (the fingerprint may exceed `i64`).
    fn uint(&mut self) -> Result<u64, UnpackError> {
        let at = self.pos;
        if self.bytes.get(at) == Some(&0xcf) {
            self.pos += 1;
            return Ok(u64::from_be_bytes(self.fixed()?));
        }
        match self.value(0)? {
            Value::Int(v) => u64::try_from(v).map_err(|_| UnpackError::OutOfRange(at)),
            _ => Err(self.unexpected_at(at, "an unsigned fingerprint")),
        }
    }

    fn value(&mut self, depth: u32) -> Result<Value, UnpackError> {
        let at = self.pos;
        let marker = self.fixed::<1>()?[0];
        Ok(match marker {
            0x00..=0x7f => Value::Int(marker as i64),
            0xe0..=0xff => Value::Int(marker as i8 as i64),
            0xc0 => Value::Null,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xcc => Value::Int(self.fixed::<1>()?[0] as i64),
            0xcd => Value::Int(u16::from_be_bytes(self.fixed()?) as i64),
            0xce => Value::Int(u32::from_be_bytes(self.fixed()?) as i64),
            0xcf => {
                let v = u64::from_be_bytes(self.fixed()?);
                Value::Int(i64::try_from(v).map_err(|_| UnpackError::OutOfRange(at))?)
            }
            0xd0 => Value::Int(self.fixed::<1>()?[0] as i8 as i64),
            0xd1 => Value::Int(i16::from_be_bytes(self.fixed()?) as i64),
            0xd2 => Value::Int(i32::from_be_bytes(self.fixed()?) as i64),
            0xd3 => Value::Int(i64::from_be_bytes(self.fixed()?)),
            0xca => Value::F32(f32::from_be_bytes(self.fixed()?)),
            0xcb => Value::F64(f64::from_be_bytes(self.fixed()?)),
            0xa0..=0xbf => self.str((marker & 0x1f) as usize)?,
            0xd9 => {
                let n = self.len(1)?;
                self.str(n)?
            }
            0xda => {
                let n = self.len(2)?;
                self.str(n)?
            }
            0xdb => {
                let n = self.len(4)?;
                self.str(n)?
            }
            0xc4 => {
                let n = self.len(1)?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            0xc5 => {
                let n = self.len(2)?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            0xc6 => {
                let n = self.len(4)?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            0x90..=0x9f | 0xdc | 0xdd => {
                if depth == 0 {
                    return Err(UnpackError::TooDeep(at));
                }
                self.pos = at;
                let n = self.array_len()?;
                // The length comes from untrusted bytes: each item takes at least one.
                let mut items = Vec::with_capacity(n.min(self.remaining()));
                for _ in 0..n {
                    items.push(self.value(depth - 1)?);
                }
                Value::List(items)
            }
            _ => return Err(self.unexpected_at(at, "a feature value")),
        })
    }

    fn str(&mut self, n: usize) -> Result<Value, UnpackError> {
        let at = self.pos;
        let raw = self.take(n)?;
        std::str::from_utf8(raw)
            .map(|s| Value::Str(s.to_owned()))
            .map_err(|_| UnpackError::NotUtf8(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::msgpack;

    /// A deterministic generator of every value form at its edges.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn scalar(&mut self) -> Value {
            let ints = [
                0, 1, 127, 128, 255, 256, 65535, 65536, -1, -32, -33, -128, -129,
            ];
            match self.next() % 9 {
                0 => Value::Null,
                1 => Value::Bool(self.next().is_multiple_of(2)),
                2 => Value::Int(ints[(self.next() % ints.len() as u64) as usize]),
                3 => Value::Int(self.next() as i64 >> (self.next() % 64)),
                4 => Value::F32(f32::from_bits(self.next() as u32)),
                5 => Value::F64(f64::from_bits(self.next())),
                6 => Value::Str("é:\\".repeat((self.next() % 90) as usize)),
                7 => Value::Bytes(vec![0xc1; (self.next() % 300) as usize]),
                _ => Value::Int(i64::MIN + (self.next() % 3) as i64),
            }
        }
        fn value(&mut self) -> Value {
            match self.next() % 4 {
                0 => Value::List((0..self.next() % 20).map(|_| self.scalar()).collect()),
                _ => self.scalar(),
            }
        }
    }

    fn doc(fingerprint: u64, stamps: &[Option<i64>], values: &[Value]) -> Vec<u8> {
        let mut b = Vec::new();
        msgpack::array_len(&mut b, 3);
        msgpack::uint(&mut b, fingerprint);
        msgpack::array_len(&mut b, stamps.len());
        for s in stamps {
            match s {
                Some(v) => msgpack::int(&mut b, *v),
                None => msgpack::nil(&mut b),
            }
        }
        msgpack::array_len(&mut b, values.len());
        for v in values {
            msgpack::write_value(&mut b, v);
        }
        b
    }

    /// Equal, NaNs included (bit for bit).
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
            (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
            (Value::List(x), Value::List(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
            }
            _ => a == b,
        }
    }

    #[test]
    fn reads_what_rmp_serde_reads() {
        let mut g = Gen(7);
        for case in 0..3000 {
            let fingerprint = if case % 3 == 0 {
                u64::MAX - case
            } else {
                g.next() >> (case % 64)
            };
            let stamps: Vec<Option<i64>> = (0..case % 5)
                .map(|_| (!g.next().is_multiple_of(3)).then(|| g.next() as i64))
                .collect();
            let values: Vec<Value> = (0..case % 40).map(|_| g.value()).collect();
            let bytes = doc(fingerprint, &stamps, &values);
            let ours = document(&bytes).unwrap();
            let theirs: (u64, Vec<Option<i64>>, Vec<Value>) =
                rmp_serde::from_slice(&bytes).unwrap();
            assert_eq!(
                (ours.fingerprint.0, &ours.view_timestamps),
                (theirs.0, &theirs.1),
                "case {case}"
            );
            assert!(
                ours.values.len() == theirs.2.len()
                    && ours.values.iter().zip(&theirs.2).all(|(a, b)| same(a, b)),
                "case {case}"
            );
            assert_eq!(
                ours.values.len(),
                values.len(),
                "case {case}: the values written come back"
            );
            // Every truncation is refused, by both.
            let cut = (g.next() as usize) % bytes.len();
            assert!(document(&bytes[..cut]).is_err(), "case {case} cut at {cut}");
        }
    }

    #[test]
    fn malformed_documents_are_refused_with_the_byte_named() {
        let good = doc(5, &[None], &[Value::Int(1)]);
        let mut trailing = good.clone();
        trailing.push(0xc0);
        assert_eq!(document(&trailing), Err(UnpackError::Trailing(1)));
        // A map where a value belongs.
        let mut map = good.clone();
        *map.last_mut().unwrap() = 0x80;
        assert!(matches!(
            document(&map),
            Err(UnpackError::Unexpected { marker: 0x80, .. })
        ));
        // A str that is not UTF-8.
        let bad = doc(5, &[], &[Value::Str("ab".into())]);
        let mut bad = bad;
        let n = bad.len();
        bad[n - 1] = 0xff;
        assert_eq!(document(&bad), Err(UnpackError::NotUtf8(n - 2)));
        // An array that claims more items than there are bytes allocates nothing much.
        let mut huge = vec![0x93, 0x05, 0x90, 0xdd];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(document(&huge), Err(UnpackError::Truncated(_))));
        // Nested too deep.
        let mut deep = vec![0x93, 0x05, 0x90, 0x91];
        deep.extend(std::iter::repeat_n(0x91, 40));
        deep.push(0xc0);
        assert!(matches!(document(&deep), Err(UnpackError::TooDeep(_))));
    }
}
