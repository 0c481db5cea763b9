//! Resolving a snapshot the way serving does: `current` and its manifest, and the check that a
//! stored vector carries the manifest's fingerprint. `client::FeatureClient` reads through it,
//! and so do `warm` and `validate --online`.

use super::{Committed, KeySpace, Manifest, OnlineStore};
use crate::base::error::{Error, Result};
use crate::vector::{DecodedVector, SchemaFingerprint, decode};

/// Resolves one service's snapshots through an online store.
pub struct Reader<'s> {
    store: &'s dyn OnlineStore,
    keys: KeySpace,
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

    /// `{prefix}:{project}:{service}:{snapshot}:`, which every data key of the snapshot extends.
    pub fn data_prefix(&self) -> &str {
        &self.data_prefix
    }
}

impl<'s> Reader<'s> {
    /// A reader of the service `keys` names.
    pub fn new(store: &'s dyn OnlineStore, keys: KeySpace) -> Reader<'s> {
        Reader { store, keys }
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
}

/// Decodes a stored vector and checks it carries `expected`.
pub fn check(bytes: &[u8], expected: SchemaFingerprint, key: String) -> Result<DecodedVector> {
    check_apart(bytes, expected, &key)?
}

/// `check`, with the two failures apart: the outer error is a vector that does not decode, the
/// inner one a foreign fingerprint (which a fresh `current` may explain, SPEC §3.1).
pub fn check_apart(
    bytes: &[u8],
    expected: SchemaFingerprint,
    key: &str,
) -> Result<Result<DecodedVector>> {
    let v = decode(bytes).map_err(|e| Error::CorruptVector {
        key: key.to_owned(),
        reason: format!("cannot decode vector: {e}"),
    })?;
    if v.fingerprint != expected {
        return Ok(Err(Error::CorruptVector {
            key: key.to_owned(),
            reason: format!(
                "vector fingerprint {} differs from the committed manifest's {expected}",
                v.fingerprint
            ),
        }));
    }
    Ok(Ok(v))
}
