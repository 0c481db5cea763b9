//! A snapshot's key list (`snapshot:{id}:keys`): the rendered entities its run wrote, so that
//! retiring the snapshot (SPEC §3.1) expires exactly its keys — entities that vanished from
//! later snapshots included — without walking the keyspace. A run appends one zstd frame per
//! batch of entities *before* it sends their writes, so the list covers every key the run may
//! have left behind, even when it was killed. Frames hold `u32` little-endian lengths, each
//! followed by that many bytes of entity.

use crate::base::error::{Error, Result};

/// zstd level of the frames: the lists are written once per run and read once, at retirement.
const LEVEL: i32 = 3;

/// One frame listing `entities`.
pub fn frame<'a>(entities: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut raw = Vec::new();
    for e in entities {
        raw.extend_from_slice(&(e.len() as u32).to_le_bytes());
        raw.extend_from_slice(e.as_bytes());
    }
    zstd::bulk::compress(&raw, LEVEL).expect("compressing into memory cannot fail")
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
        let mut at = 0;
        while at < raw.len() {
            let len_bytes: [u8; 4] = raw
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| corrupt("truncated length".into()))?;
            let len = u32::from_le_bytes(len_bytes) as usize;
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

    /// Every entity, in the order written (a rerun may list one twice).
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
        let mut list = frame(["1", "a:b", ""]);
        list.extend(frame(["é\n,=x"]));
        let got = Entities::decode(&list, "k").unwrap();
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            vec!["1", "a:b", "", "é\n,=x"]
        );
        assert!(Entities::decode(b"not zstd", "k").is_err());
        assert!(Entities::decode(&[], "k").unwrap().is_empty());
    }
}
