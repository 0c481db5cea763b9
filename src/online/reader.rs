//! Reading vectors back the way serving does: resolve `current` once, fetch keys with MGET,
//! decode, and reject any vector whose fingerprint is not the committed manifest's.

use super::{Committed, KeySpace, RedisTarget, read_current};
use crate::error::Error;
use crate::vector::{DecodedVector, SchemaFingerprint, decode};

pub struct Reader {
    con: redis::Connection,
    target: RedisTarget,
    keys: KeySpace,
}

/// A committed snapshot, resolved once and reused for many reads.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub committed: Committed,
    pub fingerprint: SchemaFingerprint,
    data_prefix: String,
}

impl Pinned {
    pub fn key(&self, entity: &str) -> String {
        format!("{}{entity}", self.data_prefix)
    }
}

impl Reader {
    pub fn connect(target: &RedisTarget, keys: KeySpace) -> Result<Reader, Error> {
        Ok(Reader {
            con: target.connect_explained()?,
            target: target.clone(),
            keys,
        })
    }

    pub fn connection(&mut self) -> &mut redis::Connection {
        &mut self.con
    }

    /// Resolves the committed snapshot (or `snapshot` when given) and its fingerprint.
    pub fn pin(&mut self, snapshot: Option<&str>) -> Result<Pinned, Error> {
        let committed = match snapshot {
            Some(s) => {
                let raw: Option<String> = redis::cmd("GET")
                    .arg(self.keys.manifest(s))
                    .query(&mut self.con)
                    .map_err(|e| self.target.explain(&e, "read manifest"))?;
                Committed { snapshot: s.to_owned(), manifest: raw.and_then(|m| serde_json::from_str(&m).ok()) }
            }
            None => read_current(&mut self.con, &self.keys)
                .map_err(|e| self.target.explain(&e, "read current"))?
                .ok_or_else(|| {
                    Error::Refused(format!(
                        "service `{}` has no committed snapshot ({} is not set): run `fsctl materialize` first",
                        self.keys.service(),
                        self.keys.current()
                    ))
                })?,
        };
        let manifest = committed.manifest.as_ref().ok_or_else(|| {
            Error::Refused(format!(
                "snapshot {} of `{}` has no readable manifest at {}",
                committed.snapshot,
                self.keys.service(),
                self.keys.manifest(&committed.snapshot)
            ))
        })?;
        let fingerprint = SchemaFingerprint::parse_hex(&manifest.fingerprint).ok_or_else(|| {
            Error::Refused(format!(
                "manifest of snapshot {} has a malformed fingerprint",
                committed.snapshot
            ))
        })?;
        let data_prefix = self.keys.data_prefix(&committed.snapshot);
        Ok(Pinned {
            committed,
            fingerprint,
            data_prefix,
        })
    }

    /// Fetches and decodes the vectors of `entities` (rendered keys) in one MGET.
    /// A missing key is `None`; a vector with a foreign fingerprint is an error.
    pub fn get_many(
        &mut self,
        pinned: &Pinned,
        entities: &[&str],
    ) -> Result<Vec<Option<DecodedVector>>, Error> {
        if entities.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = entities.iter().map(|e| pinned.key(e)).collect();
        let raw: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&keys)
            .query(&mut self.con)
            .map_err(|e| self.target.explain(&e, "MGET"))?;
        raw.into_iter()
            .zip(&keys)
            .map(|(bytes, key)| {
                let Some(bytes) = bytes else { return Ok(None) };
                let v = decode(&bytes)
                    .map_err(|e| Error::Refused(format!("{key}: cannot decode vector: {e}")))?;
                if v.fingerprint != pinned.fingerprint {
                    return Err(Error::Refused(format!(
                        "{key}: vector fingerprint {} differs from the committed manifest's {}",
                        v.fingerprint, pinned.fingerprint
                    )));
                }
                Ok(Some(v))
            })
            .collect()
    }
}
