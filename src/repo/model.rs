//! The resolved feature repo: every reference is an index, every dtype parsed, every duration
//! in milliseconds. Later stages only ever see this form.

use std::path::PathBuf;

use crate::base::retry::RetryPolicy;
use crate::base::value::{DType, Value};
use crate::vector::{LayoutFeature, SchemaFingerprint};

#[derive(Debug, Clone)]
pub struct Repo {
    /// Directory holding `feature_store.yaml`; source paths are relative to it.
    pub dir: PathBuf,
    pub project: String,
    pub online: OnlineStoreConfig,
    pub ttl_jitter: f64,
    pub compress_threshold_bytes: usize,
    pub lock_lease_ms: i64,
    /// Committed snapshots whose data stays alive: `current` and the ones before it (§3.1).
    pub keep_snapshots: usize,
    /// How long a retired snapshot stays readable after the commit that retired it.
    pub retire_grace_ms: i64,
    pub entities: Vec<Entity>,
    pub sources: Vec<Source>,
    pub views: Vec<View>,
    pub services: Vec<Service>,
    pub hot_entities: Option<HotEntities>,
    /// How services land in Redis (SPEC §1 `online_store.layout`).
    pub layout: OutputLayout,
    /// What a Feast project adds to the definitions (None for fsctl's own repo format).
    pub feast: Option<FeastProject>,
}

/// `online_store.layout` (SPEC §1): how a service's entities land in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputLayout {
    /// fsctl's versioned, fingerprinted vectors (SPEC §3).
    Fsctl,
    /// Feast's own hashes, served by an unchanged Feast (SPEC §3.4).
    Feast,
}

impl OutputLayout {
    pub fn name(self) -> &'static str {
        match self {
            OutputLayout::Fsctl => "fsctl",
            OutputLayout::Feast => "feast",
        }
    }
}

/// A Feast project's own definitions beside the resolved views (FEAST.md §1).
#[derive(Debug, Clone)]
pub struct FeastProject {
    /// The registry's path or URL, as `feature_store.yaml` names it.
    pub registry: String,
    /// `entity_key_serialization_version`: 3, or 2.
    pub entity_key_version: u32,
    /// `online_store.key_ttl_seconds` in ms: what Feast gives every hash (none without it).
    pub key_ttl_ms: Option<i64>,
    /// Every feature service of the project, by name.
    pub services: Vec<FeastService>,
    /// With `layout: feast`, what each of the repo's services writes (same order).
    pub units: Vec<FeastUnit>,
}

/// What one service of a Feast project writes with `layout: feast`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeastUnit {
    /// Every view of one entity, and the vectors of `vectors` (`FeastProject::services`
    /// indices) keyed by it: one write per entity. A run's default.
    Entity { vectors: Vec<usize> },
    /// The fields of its one view (`feast materialize` of that view).
    View,
    /// The `__precomputed__` vector of `FeastProject::services[service]`.
    Precomputed { service: usize },
}

#[derive(Debug, Clone)]
pub struct FeastService {
    pub name: String,
    /// Its projections, in order.
    pub projections: Vec<FeastProjection>,
    pub precompute: bool,
    /// Every view it needs is materialized.
    pub complete: bool,
}

/// One view of a Feast service, with the features it takes.
#[derive(Debug, Clone)]
pub struct FeastProjection {
    /// The view, when fsctl materializes it.
    pub view: Option<usize>,
    pub view_name: String,
    /// The alias, else the view's name (`name_to_use`).
    pub name_to_use: String,
    /// Each feature's name and its index among the view's features.
    pub features: Vec<(String, Option<usize>)>,
}

/// `online_store:` of the repo. The URL is kept as written (it may hold `${VAR}`); the online
/// stage expands it, and only ever shows it redacted.
#[derive(Debug, Clone)]
pub struct OnlineStoreConfig {
    pub kind: StoreKind,
    /// One URL, or for a cluster one or more seed URLs separated by `,`.
    pub url: String,
    /// Whether `FSCTL_REDIS_URL` replaces `url` (SPEC §1): true for a repo's store, false for
    /// a `FeatureClient` given its URL in code.
    pub url_from_env: bool,
    pub key_prefix: String,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub tls_ca_file: Option<PathBuf>,
    pub connect_timeout_ms: i64,
    pub response_timeout_ms: i64,
    pub connections: usize,
    /// Retries of transient faults, for writes and commits alike.
    pub retry: RetryPolicy,
    /// The store receives the Feast layout's writes (SPEC §3.4): every connection loads their
    /// script first, so that the writes may call it by its SHA1.
    pub feast_writes: bool,
}

/// `online_store.type` (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// One server: Redis or Valkey.
    Redis,
    /// Redis Cluster or Valkey in cluster mode.
    RedisCluster,
}

#[derive(Debug, Clone)]
pub struct Entity {
    pub name: String,
    pub join_keys: Vec<JoinKey>,
}

impl Entity {
    /// One join key, an integer: the scan keeps it as the integer (and hashes it as one).
    pub fn has_integer_key(&self) -> bool {
        use crate::base::value::Scalar;
        matches!(self.join_keys.as_slice(),
            [k] if matches!(k.dtype, DType::Scalar(Scalar::Int32 | Scalar::Int64)))
    }
}

#[derive(Debug, Clone)]
pub struct JoinKey {
    pub name: String,
    pub dtype: DType,
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub path: String,
    pub timestamp_field: String,
    pub created_timestamp_column: Option<String>,
    /// source column -> feature name
    pub field_mapping: Vec<(String, String)>,
    /// Object-store options (`offline_store`'s, overridden by the source's own), values as
    /// written: `${VAR}` is expanded when the store is opened.
    pub storage_options: Vec<(String, String)>,
    /// The keys of `storage_options` that came from `offline_store` (a store that does not know
    /// one of them ignores it; a source's own unknown key is an error).
    pub shared_storage_options: Vec<String>,
}

impl Source {
    /// The source column that holds `name` (a feature or join key), after `field_mapping`.
    pub fn column_for<'a>(&'a self, name: &'a str) -> &'a str {
        self.field_mapping
            .iter()
            .find(|(_, feature)| feature == name)
            .map_or(name, |(column, _)| column.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct View {
    pub name: String,
    pub entity: usize,
    pub source: usize,
    pub ttl_ms: i64,
    pub features: Vec<Feature>,
    pub min_entities: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Feature {
    pub name: String,
    pub dtype: DType,
    pub default: Option<Value>,
    pub checks: FeatureChecks,
}

#[derive(Debug, Clone, Default)]
pub struct FeatureChecks {
    pub max_null_fraction: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl FeatureChecks {
    pub fn is_empty(&self) -> bool {
        self.max_null_fraction.is_none() && self.min.is_none() && self.max.is_none()
    }
}

/// One column of a service's vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceFeature {
    pub view: usize,
    pub feature: usize,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub entity: usize,
    /// Vector columns, in service order.
    pub features: Vec<ServiceFeature>,
    /// Distinct views in order of first appearance: the order of the view timestamps.
    pub views: Vec<usize>,
    pub online_ttl_ms: i64,
    pub hot_ttl_ms: i64,
}

#[derive(Debug, Clone)]
pub struct HotEntities {
    pub path: String,
    pub score_column: Option<String>,
}

impl Repo {
    /// How long a retired snapshot stays readable (readers cache `current` for half of it).
    pub fn retire_grace(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.retire_grace_ms as u64)
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn feature(&self, f: ServiceFeature) -> &Feature {
        &self.views[f.view].features[f.feature]
    }

    /// The schema fingerprint of a service's vectors (SPEC §3).
    pub fn fingerprint(&self, service: &Service) -> SchemaFingerprint {
        let (keys, features) = self.layout(service);
        SchemaFingerprint::compute(&keys, &features)
    }

    /// The join keys and columns the fingerprint is computed from.
    pub fn layout<'a>(
        &'a self,
        service: &Service,
    ) -> (Vec<(&'a str, DType)>, Vec<LayoutFeature<'a>>) {
        let keys = self.entities[service.entity]
            .join_keys
            .iter()
            .map(|k| (k.name.as_str(), k.dtype))
            .collect();
        let features = service
            .features
            .iter()
            .map(|&sf| {
                let f = self.feature(sf);
                LayoutFeature {
                    view: &self.views[sf.view].name,
                    name: &f.name,
                    dtype: f.dtype,
                }
            })
            .collect();
        (keys, features)
    }
}
