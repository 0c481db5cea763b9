//! A snapshot's key list (`snapshot:{id}:keys`): the rendered entities its run wrote, so that
//! retiring the snapshot (SPEC §3.1) expires exactly its keys — entities that vanished from
//! later snapshots included — without walking the keyspace. A run appends one zstd frame per
//! batch of entities *before* it sends their writes, so the list covers every key the run may
//! have left behind, even when it was killed. A frame holds `u32` little-endian lengths, each
//! followed by that many bytes of entity; or, when every entity is an integer in canonical
//! decimal (a single integer join key), the marker `u32::MAX`, a `u32` count and the integers
//! sorted, as LEB128 varints: the first zigzag-encoded, then each one's distance from the one
//! before. For the example's dense customer ids that is ~1 byte per entity before zstd, against
//! 11 as strings, and the list takes 0.2 bytes of Redis memory per entity instead of 4.3.
//!
//! Decoding gives the entities of a frame back in the order a run writes them, a function of
//! the rendered entity alone ([`int_write_order`], [`str_write_order`]): the server allocated
//! the keys and values in about that order, and Redis frees them in it in about half the time
//! it takes in any other (`make bench-lifecycle`), which is most of what a retirement costs.
//! String frames are stored in that order. Integer frames hold the integers sorted, so they are
//! reordered as they decode, by the integer's hash when the join key is an integer and by the
//! string's (marker `DIGITS`) when it is a string of digits. A run appends one frame per
//! partition; `warm` appends its own.

use crate::base::error::{Error, Result};
use crate::offline::{int_write_order, str_write_order};

/// zstd level of the frames: the lists are written once per run and read once, at retirement.
const LEVEL: i32 = 3;

/// Starts a block of integers where a string's length would be (no entity is 4 GiB long).
const INTEGERS: u32 = u32::MAX;

/// Starts a block of integers that are strings of digits to the run (a string join key), encoded
/// like `INTEGERS`.
const DIGITS: u32 = u32::MAX - 1;

/// One frame listing `entities`, written in this order; `integer_key`: the service's join key is
/// one integer column.
pub fn frame<'a>(entities: impl IntoIterator<Item = &'a str>, integer_key: bool) -> Vec<u8> {
    let entities: Vec<&str> = entities.into_iter().collect();
    let integers: Option<Vec<i64>> = entities.iter().map(|e| canonical_integer(e)).collect();
    let mut raw = Vec::new();
    match integers {
        Some(mut ints) if !ints.is_empty() && ints.len() <= u32::MAX as usize => {
            ints.sort_unstable();
            let marker = if integer_key { INTEGERS } else { DIGITS };
            raw.extend_from_slice(&marker.to_le_bytes());
            raw.extend_from_slice(&(ints.len() as u32).to_le_bytes());
            varint(&mut raw, ((ints[0] << 1) ^ (ints[0] >> 63)) as u64);
            for w in ints.windows(2) {
                // Sorted, so the distance is in [0, 2^64): exact in wrapping arithmetic.
                varint(&mut raw, w[1].wrapping_sub(w[0]) as u64);
            }
        }
        _ => {
            for e in entities {
                raw.extend_from_slice(&(e.len() as u32).to_le_bytes());
                raw.extend_from_slice(e.as_bytes());
            }
        }
    }
    zstd::bulk::compress(&raw, LEVEL).expect("compressing into memory cannot fail")
}

/// `e` as an integer, when `e` is exactly how fsctl renders that integer.
fn canonical_integer(e: &str) -> Option<i64> {
    let v: i64 = e.parse().ok()?;
    (itoa::Buffer::new().format(v) == e).then_some(v)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `*at`, moving past it.
fn read_varint(raw: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *raw.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// The entities of a key list (all its frames), in one buffer with their ends.
#[derive(Debug, Default)]
pub struct Entities {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Entities {
    /// Decodes the frames of `list`; `key` names the list in an error.
    pub fn decode(list: &[u8], key: &str) -> Result<Entities> {
        let corrupt = |why: String| Error::CorruptVector {
            key: key.to_owned(),
            reason: format!("unreadable key list: {why}"),
        };
        let mut out = Entities::default();
        if list.is_empty() {
            return Ok(out);
        }
        let raw = zstd::stream::decode_all(list).map_err(|e| corrupt(e.to_string()))?;
        let u32_at = |at: usize| {
            raw.get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| corrupt("truncated length".into()))
        };
        let mut at = 0;
        while at < raw.len() {
            let len = u32_at(at)?;
            if len == INTEGERS || len == DIGITS {
                let count = u32_at(at + 4)?;
                at += 8;
                let mut next = || {
                    read_varint(&raw, &mut at).ok_or_else(|| corrupt("truncated integer".into()))
                };
                let first = next()?;
                let mut v = (first >> 1) as i64 ^ -((first & 1) as i64);
                // Each varint takes a byte at least: a corrupt count cannot reserve more.
                let mut ints = Vec::with_capacity((count as usize).min(raw.len()));
                let mut buffer = itoa::Buffer::new();
                for i in 0..count {
                    if i > 0 {
                        v = v.wrapping_add(next()? as i64);
                    }
                    let order = if len == INTEGERS {
                        int_write_order(v)
                    } else {
                        str_write_order(buffer.format(v))
                    };
                    ints.push((order, v));
                }
                // Ties go to the rendered key, as in the scan.
                ints.sort_unstable_by(|a, b| {
                    a.0.cmp(&b.0).then_with(|| {
                        let mut other = itoa::Buffer::new();
                        buffer.format(a.1).cmp(other.format(b.1))
                    })
                });
                for (_, v) in ints {
                    out.bytes.extend_from_slice(buffer.format(v).as_bytes());
                    out.ends.push(out.bytes.len());
                }
                continue;
            }
            let len = len as usize;
            let entity = raw
                .get(at + 4..at + 4 + len)
                .ok_or_else(|| corrupt("truncated entity".into()))?;
            std::str::from_utf8(entity).map_err(|e| corrupt(e.to_string()))?;
            out.bytes.extend_from_slice(entity);
            out.ends.push(out.bytes.len());
            at += 4 + len;
        }
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Every entity (a rerun may list one twice).
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let s = std::str::from_utf8(&self.bytes[start..end]).expect("checked in decode");
            start = end;
            s
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_append_and_decode_in_order() {
        let mut list = frame(["1", "a:b", ""], false);
        list.extend(frame(["é\n,=x"], false));
        let got = Entities::decode(&list, "k").unwrap();
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            vec!["1", "a:b", "", "é\n,=x"]
        );
        assert!(Entities::decode(b"not zstd", "k").is_err());

        // Integers: stored sorted and delta-encoded, extremes and negatives exact, in a list
        // that mixes both kinds of frames (and frames written before integers had their own).
        let ints = [
            "42",
            "-7",
            "9223372036854775807",
            "-9223372036854775808",
            "0",
            "42",
        ];
        let mut list = frame(ints, true);
        list.extend(frame(["01", "5"], true));
        let mut got: Vec<String> = Entities::decode(&list, "k")
            .unwrap()
            .iter()
            .map(String::from)
            .collect();
        let mut want: Vec<String> = ints
            .iter()
            .chain(&["01", "5"])
            .map(|s| s.to_string())
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        let dense: Vec<String> = (1_000_000..1_250_000)
            .rev()
            .map(|i: i64| i.to_string())
            .collect();
        let packed = frame(dense.iter().map(String::as_str), true);
        assert!(
            packed.len() < 2_500,
            "{} bytes for 250k dense ids",
            packed.len()
        );
        // Given back in the order a run writes them (the offline scan's processing order).
        let order: Vec<u64> = Entities::decode(&packed, "k")
            .unwrap()
            .iter()
            .map(|e| int_write_order(e.parse().unwrap()))
            .collect();
        assert_eq!(order.len(), dense.len());
        assert!(order.windows(2).all(|w| w[0] <= w[1]));
        // Digits of a string join key: as compact, in the order of the string's hash.
        let digits = frame(dense.iter().map(String::as_str), false);
        assert_eq!(digits.len(), packed.len());
        let order: Vec<u64> = Entities::decode(&digits, "k")
            .unwrap()
            .iter()
            .map(str_write_order)
            .collect();
        assert_eq!(order.len(), dense.len());
        assert!(order.windows(2).all(|w| w[0] <= w[1]));
        assert!(Entities::decode(&packed[..packed.len() / 2], "k").is_err());
        // A corrupt count fails like a truncated list, without reserving for it.
        let mut raw = INTEGERS.to_le_bytes().to_vec();
        raw.extend_from_slice(&u32::MAX.to_le_bytes());
        raw.push(2);
        let corrupt = zstd::bulk::compress(&raw, LEVEL).unwrap();
        assert!(Entities::decode(&corrupt, "k").is_err());
        assert!(Entities::decode(&[], "k").unwrap().is_empty());
    }
}
