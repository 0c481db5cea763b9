//! Reading one entity back the way serving does (for `fsctl get`): through the library's
//! `FeatureClient`, the snapshot's fingerprint checked against the repo, values named in service
//! order.

use crate::base::error::{Error, Result};
use crate::base::value::{DType, Scalar, Value};
use crate::client::{Entity, FeatureClient, KeyValue, Missing, ReadOptions};
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

/// The entity the join key values `(name, value)` name, checking names and types against the
/// service's entity so that a mistake is reported in `--entity` terms.
pub fn entity_key(repo: &Repo, service: &Service, pairs: &[(String, String)]) -> Result<Entity> {
    let entity = &repo.entities[service.entity];
    let names: Vec<&str> = entity.join_keys.iter().map(|k| k.name.as_str()).collect();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if let Some((_, first)) = pairs[..i].iter().find(|(n, _)| n == name) {
            return Err(Error::usage(format!(
                "--entity gives `{name}` twice (`{first}` and `{value}`); get reads one entity: \
                 run it once per entity"
            )));
        }
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
            DType::Scalar(Scalar::String) => KeyValue::Str(raw.to_owned()),
            _ => KeyValue::Int(raw.parse().map_err(|_| {
                Error::usage(format!(
                    "--entity {}=`{raw}`: {} is an integer join key",
                    k.name, k.name
                ))
            })?),
        });
    }
    Ok(Entity::values(parts))
}

/// Reads `entity` of `service` through `client` from the committed snapshot, or from
/// `snapshot`, refusing a snapshot the repo's definitions do not fingerprint alike.
pub fn read_entity(
    repo: &Repo,
    client: &FeatureClient,
    service: &Service,
    entity: Entity,
    snapshot: Option<&str>,
) -> Result<EntityVector> {
    let pinned = match snapshot {
        Some(id) => client.snapshot_at(&service.name, id)?,
        None => client.snapshot(&service.name)?,
    };
    let expected = repo.fingerprint(service);
    if pinned.fingerprint != expected {
        return Err(Error::SchemaMismatch {
            service: service.name.clone(),
            snapshot: pinned.id.to_string(),
            committed: pinned.fingerprint.to_string(),
            repo: expected.to_string(),
        });
    }
    let options = ReadOptions {
        missing: Missing::Raise,
        snapshot: Some(pinned.id.to_string()),
        ..ReadOptions::default()
    };
    let v = client
        .get_many(&service.name, &[entity], &options)?
        .pop()
        .expect("one result per entity");
    let ttl_ms = client
        .expires_in_ms(&v.key)?
        .ok_or_else(|| Error::VectorNotFound {
            service: service.name.clone(),
            entity: v.entity().to_owned(),
            snapshot: pinned.id.to_string(),
            key: v.key.clone(),
        })?;
    Ok(EntityVector {
        service: service.name.clone(),
        snapshot: pinned.id.to_string(),
        fingerprint: pinned.fingerprint.to_string(),
        as_of: pinned.manifest.as_of.clone(),
        ttl_ms,
        views: v
            .views()
            .map(|t| (t.view.to_owned(), t.event_time_us))
            .collect(),
        values: v
            .features()
            .map(|(name, dtype, value)| (name.to_owned(), dtype, value.clone()))
            .collect(),
        read_at_us: v.read_at_us,
        entity: v.entity().to_owned(),
        key: v.key,
    })
}
