//! Vector format 1 (SPEC §3): a header byte, then MessagePack (raw or zstd-compressed) holding
//! `[fingerprint, [view timestamps], [values]]`.
//!
//! Encoding takes the values already serialized as a run of MessagePack items: the offline
//! stage writes each view's items once per entity, and assembling a vector is then a copy.

use thiserror::Error;

use super::{SchemaFingerprint, msgpack};
use crate::base::value::Value;

pub const HEADER_MSGPACK: u8 = 0x01;
pub const HEADER_ZSTD: u8 = 0x02;

/// zstd level: vectors are small and written once per run, so favour speed; the level is part
/// of the format's determinism (same input, same bytes), so it is a constant.
const ZSTD_LEVEL: i32 = 3;

/// Largest decompressed vector a reader accepts: far above any real vector, far below what a
/// corrupt or hostile value could make a reader allocate.
const MAX_INFLATED: usize = 64 << 20;

/// A vector read back from Redis.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedVector {
    pub fingerprint: SchemaFingerprint,
    /// Per view in service order: event time of the row used (UTC µs), or `None`.
    pub view_timestamps: Vec<Option<i64>>,
    pub values: Vec<Value>,
}

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("empty value")]
    Empty,
    #[error("unknown header byte 0x{0:02x} (expected 0x01 or 0x02)")]
    UnknownHeader(u8),
    #[error("zstd: {0}")]
    Zstd(std::io::Error),
    #[error("MessagePack: {0}")]
    MessagePack(#[from] super::unpack::UnpackError),
}

/// Builds format-1 vectors for one layout; reusable across entities of a service.
pub struct VectorEncoder {
    fingerprint: SchemaFingerprint,
    n_values: u32,
    compress_threshold: usize,
}

impl VectorEncoder {
    pub fn new(fingerprint: SchemaFingerprint, n_values: usize, compress_threshold: usize) -> Self {
        VectorEncoder {
            fingerprint,
            n_values: n_values as u32,
            compress_threshold,
        }
    }

    pub fn fingerprint(&self) -> SchemaFingerprint {
        self.fingerprint
    }

    /// Encodes one vector into a fresh `Vec`. `value_items` must hold exactly `n_values`
    /// MessagePack items; `scratch` is reused between calls.
    pub fn encode_into(
        &self,
        view_timestamps: &[Option<i64>],
        value_items: &[&[u8]],
        scratch: &mut Vec<u8>,
    ) -> Vec<u8> {
        self.encode_to(view_timestamps, value_items, scratch)
            .to_vec()
    }

    /// Encodes one vector into `out` (cleared first) and returns it as a slice; nothing is
    /// allocated once `out` has grown to a vector's size.
    pub fn encode_to<'o>(
        &self,
        view_timestamps: &[Option<i64>],
        value_items: &[&[u8]],
        out: &'o mut Vec<u8>,
    ) -> &'o [u8] {
        let scratch = out;
        scratch.clear();
        scratch.push(HEADER_MSGPACK);
        msgpack::array_len(scratch, 3);
        msgpack::uint(scratch, self.fingerprint.0);
        msgpack::array_len(scratch, view_timestamps.len());
        for ts in view_timestamps {
            match ts {
                Some(us) => msgpack::int(scratch, *us),
                None => msgpack::nil(scratch),
            }
        }
        msgpack::array_len(scratch, self.n_values as usize);
        for items in value_items {
            scratch.extend_from_slice(items);
        }
        if scratch.len() - 1 > self.compress_threshold {
            // One frame whose header records the content size (SPEC §3), so that any standard
            // decoder opens it in one call. Compressing from memory into memory cannot fail.
            let frame = zstd::bulk::compress(&scratch[1..], ZSTD_LEVEL).expect("in memory");
            let mut packed = Vec::with_capacity(frame.len() + 1);
            packed.push(HEADER_ZSTD);
            packed.extend_from_slice(&frame);
            *scratch = packed;
        }
        scratch
    }
}

/// Decompresses one zstd frame: in one call when its header records the content size (as
/// fsctl writes them), else streaming; never past `MAX_INFLATED`.
fn inflate(frame: &[u8]) -> Result<Vec<u8>, DecodeError> {
    match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) if n <= MAX_INFLATED as u64 => {
            zstd::bulk::decompress(frame, n as usize).map_err(DecodeError::Zstd)
        }
        Ok(Some(_)) => Err(DecodeError::Zstd(std::io::Error::other(
            "the frame's content size is over the 64 MiB a vector may have",
        ))),
        _ => {
            use std::io::Read;
            let mut out = Vec::new();
            zstd::stream::read::Decoder::new(frame)
                .map_err(DecodeError::Zstd)?
                .take(MAX_INFLATED as u64 + 1)
                .read_to_end(&mut out)
                .map_err(DecodeError::Zstd)?;
            if out.len() > MAX_INFLATED {
                return Err(DecodeError::Zstd(std::io::Error::other(
                    "inflates past the 64 MiB a vector may have",
                )));
            }
            Ok(out)
        }
    }
}

/// Decodes a format-1 vector (either header).
pub fn decode(bytes: &[u8]) -> Result<DecodedVector, DecodeError> {
    let (&header, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    let inflated;
    let doc = match header {
        HEADER_MSGPACK => body,
        HEADER_ZSTD => {
            inflated = inflate(body)?;
            &inflated[..]
        }
        other => return Err(DecodeError::UnknownHeader(other)),
    };
    Ok(super::unpack::document(doc)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(values: &[Value]) -> Vec<Vec<u8>> {
        values
            .iter()
            .map(|v| {
                let mut b = Vec::new();
                msgpack::write_value(&mut b, v);
                b
            })
            .collect()
    }

    #[test]
    fn spec_example_decodes_and_round_trips() {
        let spec = "0193cfb9d0f02c6263a15e93cf00064437ba50a000c0cf00064436e3bcfc00932acb4029000000000000ca3e800000";
        let bytes: Vec<u8> = (0..spec.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&spec[i..i + 2], 16).unwrap())
            .collect();
        let v = decode(&bytes).unwrap();
        assert_eq!(v.fingerprint.0, 13389465765592408414);
        assert_eq!(
            v.view_timestamps,
            vec![Some(1763856000000000), None, Some(1763852400000000)]
        );
        assert_eq!(
            v.values,
            vec![Value::Int(42), Value::F64(12.5), Value::F32(0.25)]
        );

        let enc = VectorEncoder::new(v.fingerprint, 3, 2048);
        let owned = items(&v.values);
        let refs: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        let ours = enc.encode_into(&v.view_timestamps, &refs, &mut Vec::new());
        assert_eq!(decode(&ours).unwrap(), v);
    }

    #[test]
    fn large_vectors_are_compressed_and_decode() {
        let big = Value::List((0..1024).map(|i| Value::F32(i as f32)).collect());
        let owned = items(std::slice::from_ref(&big));
        let enc = VectorEncoder::new(SchemaFingerprint(7), 1, 2048);
        let bytes = enc.encode_into(&[Some(1)], &[&owned[0]], &mut Vec::new());
        assert_eq!(bytes[0], HEADER_ZSTD);
        // The frame records its content size: a standard one-call decoder opens it.
        let size = zstd::zstd_safe::get_frame_content_size(&bytes[1..]).unwrap();
        let plain = zstd::bulk::decompress(&bytes[1..], size.unwrap() as usize).unwrap();
        assert_eq!(plain.len() as u64, size.unwrap());
        assert_eq!(decode(&bytes).unwrap().values, vec![big.clone()]);
        // A frame without it (a streaming encoder's) still decodes.
        let mut streamed = vec![HEADER_ZSTD];
        zstd::stream::copy_encode(&plain[..], &mut streamed, 3).unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&streamed[1..]).unwrap(),
            None
        );
        assert_eq!(decode(&streamed).unwrap().values, vec![big]);
    }

    #[test]
    fn hostile_lengths_do_not_allocate() {
        // Found by `make fuzz`: an array header claiming 2^32 - 1 items.
        let bytes = [
            0x01, 0x93, 0x01, 0x90, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xdd, 0xff, 0xff, 0xff, 0xff,
        ];
        assert!(decode(&bytes).is_err());
    }

    #[test]
    fn bad_header_is_reported() {
        assert!(matches!(
            decode(&[0x07, 0x90]),
            Err(DecodeError::UnknownHeader(7))
        ));
        assert!(matches!(decode(&[]), Err(DecodeError::Empty)));
    }
}
