//! Reading vectors back the way serving does: resolve `current` once, fetch keys in one round
//! trip, decode, and reject any vector whose fingerprint is not the committed manifest's.
//!
//! The reader rule of SPEC §3.1: `current` (and its manifest) is cached for at most half of
//! `retire_grace`, and resolved again at once when a key is missing or a fingerprint differs,
//! so a reader never serves from a snapshot whose retirement grace has run out.

use std::time::{Duration, Instant};

use super::{Committed, KeySpace, Manifest, OnlineStore};
use crate::base::error::{Error, Result};
use crate::vector::{DecodedVector, SchemaFingerprint, decode};

/// Reads one service's vectors through an online store.
pub struct Reader<'s> {
    store: &'s dyn OnlineStore,
    keys: KeySpace,
    /// How long a resolved `current` is trusted: half of `retire_grace`.
    max_age: Duration,
    cached: Option<(Pinned, Instant)>,
}

/// A committed snapshot, resolved once and reused for many reads.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub snapshot: String,
    pub manifest: Manifest,
    pub fingerprint: SchemaFingerprint,
    data_prefix: String,
}

impl Pinned {
    /// The data key of a rendered entity in this snapshot.
    pub fn key(&self, entity: &str) -> String {
        format!("{}{entity}", self.data_prefix)
    }
}

impl<'s> Reader<'s> {
    /// A reader of the service `keys` names; `retire_grace` is the repo's
    /// (`materialization.retire_grace`), which bounds how long `current` may be cached.
    pub fn new(store: &'s dyn OnlineStore, keys: KeySpace, retire_grace: Duration) -> Reader<'s> {
        Reader {
            store,
            keys,
            max_age: retire_grace / 2,
            cached: None,
        }
    }

    /// The committed snapshot, resolved again when the cached one is older than half of
    /// `retire_grace`.
    pub fn current(&mut self) -> Result<&Pinned> {
        let fresh = self
            .cached
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() < self.max_age);
        if !fresh {
            self.cached = Some((self.pin(None)?, Instant::now()));
        }
        Ok(&self.cached.as_ref().expect("resolved above").0)
    }

    /// Reads `entities` (rendered keys) from the committed snapshot, following the reader rule:
    /// a missing key or a foreign fingerprint resolves `current` again at once and reads again.
    /// Returns the snapshot read and one vector per entity (`None`: not in that snapshot).
    pub fn read(&mut self, entities: &[&str]) -> Result<(String, Vec<Option<DecodedVector>>)> {
        let first = {
            let pinned = self.current()?.clone();
            (self.get_many(&pinned, entities), pinned.snapshot)
        };
        match first {
            (Ok(got), snapshot) if got.iter().all(Option::is_some) => Ok((snapshot, got)),
            (Ok(_) | Err(Error::CorruptVector { .. }), _) => {
                self.cached = None;
                let pinned = self.current()?.clone();
                Ok((pinned.snapshot.clone(), self.get_many(&pinned, entities)?))
            }
            (Err(e), _) => Err(e),
        }
    }

    pub fn keys(&self) -> &KeySpace {
        &self.keys
    }

    /// `current` and its manifest. They are two reads: a failover or restart between them can
    /// pair a pointer with a server that lacks its manifest, so a missing manifest resolves the
    /// pointer again (a few times) before it counts as missing.
    fn resolve_current(&self) -> Result<Committed> {
        let mut tries = 0;
        loop {
            tries += 1;
            let committed =
                self.store
                    .current(&self.keys)?
                    .ok_or_else(|| Error::NoCommittedSnapshot {
                        service: self.keys.service().to_owned(),
                        key: self.keys.current(),
                    })?;
            if committed.manifest.is_some() || tries == 3 {
                return Ok(committed);
            }
        }
    }

    /// Resolves the committed snapshot (or `snapshot` when given) and its fingerprint.
    pub fn pin(&self, snapshot: Option<&str>) -> Result<Pinned> {
        let committed = match snapshot {
            Some(s) => Committed {
                snapshot: s.to_owned(),
                manifest: self.store.manifest(&self.keys, s)?,
            },
            None => self.resolve_current()?,
        };
        let Committed { snapshot, manifest } = committed;
        let manifest = manifest.ok_or_else(|| Error::NoManifest {
            service: self.keys.service().to_owned(),
            snapshot: snapshot.clone(),
            key: self.keys.manifest(&snapshot),
        })?;
        let fingerprint = SchemaFingerprint::parse_hex(&manifest.fingerprint).ok_or_else(|| {
            Error::CorruptVector {
                key: self.keys.manifest(&snapshot),
                reason: format!("malformed fingerprint `{}`", manifest.fingerprint),
            }
        })?;
        let data_prefix = self.keys.data_prefix(&snapshot);
        Ok(Pinned {
            snapshot,
            manifest,
            fingerprint,
            data_prefix,
        })
    }

    /// Fetches and decodes the vectors of `entities` (rendered keys) in one round trip.
    /// A missing key is `None`; a vector that does not decode or has a foreign fingerprint is
    /// an error.
    pub fn get_many(
        &self,
        pinned: &Pinned,
        entities: &[&str],
    ) -> Result<Vec<Option<DecodedVector>>> {
        let keys: Vec<String> = entities.iter().map(|e| pinned.key(e)).collect();
        let raw = self.store.get_many(&keys)?;
        raw.into_iter()
            .zip(keys)
            .map(|(bytes, key)| {
                let Some(bytes) = bytes else { return Ok(None) };
                check(&bytes, pinned.fingerprint, key).map(Some)
            })
            .collect()
    }
}

/// Decodes a stored vector and checks it carries `expected`.
pub fn check(bytes: &[u8], expected: SchemaFingerprint, key: String) -> Result<DecodedVector> {
    let v = decode(bytes).map_err(|e| Error::CorruptVector {
        key: key.clone(),
        reason: format!("cannot decode vector: {e}"),
    })?;
    if v.fingerprint != expected {
        return Err(Error::CorruptVector {
            key,
            reason: format!(
                "vector fingerprint {} differs from the committed manifest's {expected}",
                v.fingerprint
            ),
        });
    }
    Ok(v)
}
