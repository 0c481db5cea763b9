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

/// `fsctl get` with `layout: feast` (SPEC §3.4): the entity's hash as Feast reads it, for a
/// Feast feature service (its projections, names `<alias or view>__<feature>` as Feast's full
/// feature names) or one view; the views' event times from their `_ts` fields.
pub fn read_feast(
    repo: &Repo,
    store: &dyn crate::online::OnlineStore,
    name: &str,
    pairs: &[(String, String)],
) -> Result<EntityVector> {
    use crate::vector::feast as proto;
    let feast = repo
        .feast
        .as_ref()
        .ok_or_else(|| Error::usage("not a Feast project"))?;
    // (name to use, view, features as (name, index)).
    type Projection = (String, usize, Vec<(String, usize)>);
    let projections: Vec<Projection> = match feast.services.iter().find(|s| s.name == name) {
        Some(s) => s
            .projections
            .iter()
            .filter_map(|p| {
                let v = p.view?;
                let features = p
                    .features
                    .iter()
                    .filter_map(|(f, ix)| Some((f.clone(), (*ix)?)))
                    .collect();
                Some((p.name_to_use.clone(), v, features))
            })
            .collect(),
        None => match repo.views.iter().position(|v| v.name == name) {
            Some(v) => vec![(
                name.to_owned(),
                v,
                repo.views[v]
                    .features
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (f.name.clone(), i))
                    .collect(),
            )],
            None => {
                let mut known: Vec<String> =
                    feast.services.iter().map(|s| s.name.clone()).collect();
                known.extend(repo.views.iter().map(|v| v.name.clone()));
                return Err(Error::UnknownService {
                    name: name.to_owned(),
                    known,
                });
            }
        },
    };
    let Some((_, first, _)) = projections.first() else {
        return Err(Error::usage(format!(
            "`{name}` has no view that fsctl materializes"
        )));
    };
    let entity = &repo.entities[repo.views[*first].entity];
    let names: Vec<&str> = entity.join_keys.iter().map(|k| k.name.as_str()).collect();
    let mut values = Vec::new();
    for k in &entity.join_keys {
        let raw = pairs
            .iter()
            .find(|(n, _)| *n == k.name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| {
                Error::usage(format!(
                    "--entity must give `{}` (join keys of `{name}`: {})",
                    k.name,
                    names.join(", ")
                ))
            })?;
        let int = || {
            raw.parse::<i64>().map_err(|_| {
                Error::usage(format!(
                    "--entity {}=`{raw}`: {} is an integer join key",
                    k.name, k.name
                ))
            })
        };
        values.push(match k.dtype {
            DType::Scalar(Scalar::Int64) => proto::KeyValue::Int64(int()?),
            DType::Scalar(Scalar::Int32) => {
                proto::KeyValue::Int32(i32::try_from(int()?).map_err(|_| {
                    Error::usage(format!("--entity {}=`{raw}` does not fit an int32", k.name))
                })?)
            }
            _ => proto::KeyValue::Str(raw),
        });
    }
    if let Some((n, _)) = pairs.iter().find(|(n, _)| !names.contains(&n.as_str())) {
        return Err(Error::usage(format!(
            "--entity `{n}=...`: `{n}` is not a join key of `{name}` (join keys: {})",
            names.join(", ")
        )));
    }
    let keyed: Vec<(&str, proto::KeyValue<'_>)> = if values.is_empty() {
        vec![(proto::DUMMY_JOIN_KEY, proto::KeyValue::Str(""))]
    } else {
        names.iter().copied().zip(values.iter().copied()).collect()
    };
    let key = proto::redis_key(
        &proto::entity_key(&keyed, feast.entity_key_version),
        &repo.project,
    );
    let shown_key = key.escape_ascii().to_string();
    let rendered = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let (fields, ttl_ms) = store.hash_with_ttl(&key)?;
    if ttl_ms == -2 {
        return Err(Error::VectorNotFound {
            service: name.to_owned(),
            entity: rendered,
            snapshot: "(none: layout feast)".into(),
            key: shown_key,
        });
    }
    let fields: std::collections::HashMap<Vec<u8>, Vec<u8>> = fields.into_iter().collect();
    let bad = |what: &str, why: String| Error::CorruptVector {
        key: shown_key.clone(),
        reason: format!("{what}: {why}"),
    };
    let mut views = Vec::new();
    let mut out = Vec::new();
    for (use_name, v, features) in &projections {
        let view = &repo.views[*v];
        let ts = match fields.get(&proto::ts_field(&view.name)) {
            Some(b) => Some(proto::decode_timestamp(b).map_err(|e| bad("_ts", e))?),
            None => None,
        };
        views.push((use_name.clone(), ts));
        for (feature, ix) in features {
            let dtype = view.features[*ix].dtype;
            let value = match fields.get(proto::field(&view.name, feature).as_slice()) {
                Some(b) => proto::decode_value(b, dtype)
                    .map_err(|e| bad(&format!("{}.{feature}", view.name), e))?,
                None => Value::Null,
            };
            out.push((format!("{use_name}__{feature}"), dtype, value));
        }
    }
    let manifest_keys = crate::online::KeySpace::new(
        &repo.online.key_prefix,
        &repo.project,
        &repo.views[*first].name,
    );
    let as_of = super::feast::manifest(store, &manifest_keys)
        .ok()
        .flatten()
        .map(|m| m.as_of)
        .unwrap_or_default();
    Ok(EntityVector {
        service: name.to_owned(),
        snapshot: String::new(),
        fingerprint: String::new(),
        entity: rendered,
        key: shown_key,
        as_of,
        ttl_ms,
        views,
        values: out,
        read_at_us: crate::base::time::now_us(),
    })
}
