//! Reading one entity back the way serving does (for `fsctl get`): through the committed
//! pointer, fingerprint checked against the repo, values named in service order.

use crate::base::entity_key::{KeyPart, render_entity};
use crate::base::error::{Error, Result};
use crate::base::time::now_us;
use crate::base::value::{DType, Scalar, Value};
use crate::online::{KeySpace, OnlineStore, Reader};
use crate::repo::{Repo, Service};

/// One entity's vector, decoded and named.
#[derive(Debug, Clone)]
pub struct EntityVector {
    pub service: String,
    pub snapshot: String,
    pub fingerprint: String,
    /// The rendered `{entity}` key part.
    pub entity: String,
    pub key: String,
    pub as_of: String,
    /// Milliseconds until the key expires (-1: no expiry).
    pub ttl_ms: i64,
    /// Per view in service order: its name and the event time of the row used (UTC µs).
    pub views: Vec<(String, Option<i64>)>,
    /// Per feature in service order: `view.feature`, its dtype and value.
    pub values: Vec<(String, DType, Value)>,
    /// When the vector was read (UTC µs), to tell ages.
    pub read_at_us: i64,
}

/// Renders the join key values `(name, value)` into the `{entity}` key part, checking names
/// and types against the service's entity.
pub fn entity_key(repo: &Repo, service: &Service, pairs: &[(String, String)]) -> Result<String> {
    let entity = &repo.entities[service.entity];
    let names: Vec<&str> = entity.join_keys.iter().map(|k| k.name.as_str()).collect();
    for (name, _) in pairs {
        if !names.contains(&name.as_str()) {
            return Err(Error::usage(format!(
                "--entity `{name}=...`: `{name}` is not a join key of `{}` (join keys: {})",
                entity.name,
                names.join(", ")
            )));
        }
    }
    let mut parts = Vec::new();
    for k in &entity.join_keys {
        let raw = pairs
            .iter()
            .find(|(name, _)| *name == k.name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| {
                Error::usage(format!(
                    "--entity must give `{}` (join keys of `{}`: {})",
                    k.name,
                    entity.name,
                    names.join(", ")
                ))
            })?;
        parts.push(match k.dtype {
            DType::Scalar(Scalar::String) => KeyPart::Str(raw),
            _ => KeyPart::Int(raw.parse().map_err(|_| {
                Error::usage(format!(
                    "--entity {}=`{raw}`: {} is an integer join key",
                    k.name, k.name
                ))
            })?),
        });
    }
    let mut out = String::new();
    render_entity(&parts, &mut out);
    Ok(out)
}

/// Reads `entity` (rendered) of `service` from the committed snapshot, or from `snapshot`.
pub fn read_entity(
    repo: &Repo,
    store: &dyn OnlineStore,
    service: &Service,
    entity: &str,
    snapshot: Option<&str>,
) -> Result<EntityVector> {
    let keys = KeySpace::new(&repo.online.key_prefix, &repo.project, &service.name);
    let reader = Reader::new(store, keys, repo.retire_grace());
    let pinned = reader.pin(snapshot)?;
    let expected = repo.fingerprint(service);
    if pinned.fingerprint != expected {
        return Err(Error::SchemaMismatch {
            service: service.name.clone(),
            snapshot: pinned.snapshot.clone(),
            committed: pinned.fingerprint.to_string(),
            repo: expected.to_string(),
        });
    }
    let key = pinned.key(entity);
    let not_found = || Error::VectorNotFound {
        service: service.name.clone(),
        entity: entity.to_owned(),
        snapshot: pinned.snapshot.clone(),
        key: key.clone(),
    };
    let vector = reader
        .get_many(&pinned, &[entity])?
        .pop()
        .flatten()
        .ok_or_else(not_found)?;
    let ttl_ms = store.remaining_ttl_ms(&key)?.ok_or_else(not_found)?;
    Ok(EntityVector {
        service: service.name.clone(),
        snapshot: pinned.snapshot.clone(),
        fingerprint: pinned.fingerprint.to_string(),
        entity: entity.to_owned(),
        as_of: pinned.manifest.as_of.clone(),
        ttl_ms,
        views: service
            .views
            .iter()
            .zip(&vector.view_timestamps)
            .map(|(v, ts)| (repo.views[*v].name.clone(), *ts))
            .collect(),
        values: service
            .features
            .iter()
            .zip(vector.values)
            .map(|(sf, value)| {
                let f = repo.feature(*sf);
                (
                    format!("{}.{}", repo.views[sf.view].name, f.name),
                    f.dtype,
                    value,
                )
            })
            .collect(),
        key,
        read_at_us: now_us(),
    })
}
