//! `feature_store.yaml` exactly as written, with source locations. Unknown keys are rejected
//! by serde (`deny_unknown_fields`) so a typo never passes silently; meaning is checked in
//! `resolve`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

pub(super) type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRepo {
    pub project: S<String>,
    pub online_store: RawOnlineStore,
    #[serde(default)]
    pub offline_store: RawOfflineStore,
    #[serde(default)]
    pub materialization: RawMaterialization,
    #[serde(default)]
    pub entities: Vec<RawEntity>,
    #[serde(default)]
    pub sources: Vec<RawSource>,
    #[serde(default)]
    pub feature_views: Vec<RawView>,
    #[serde(default)]
    pub feature_services: Vec<RawService>,
    pub hot_entities: Option<RawHotEntities>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOnlineStore {
    #[serde(rename = "type")]
    pub kind: S<String>,
    pub url: S<String>,
    pub key_prefix: Option<S<String>>,
    /// Read a password from this environment variable instead of the URL.
    pub password_env: Option<S<String>>,
    /// Read a password from this file (first line) instead of the URL.
    pub password_file: Option<S<String>>,
    /// PEM file of the CA that signed the server's certificate (rediss:// with a private CA).
    pub tls_ca_file: Option<S<String>>,
    pub connect_timeout: Option<S<String>>,
    pub response_timeout: Option<S<String>>,
    /// Parallel connections for pipelined writes.
    pub connections: Option<S<u32>>,
    /// Tries of a write or commit that meets a transient fault, the first included.
    pub retry_attempts: Option<S<u32>>,
    /// The longest wait between two tries.
    pub retry_max_delay: Option<S<String>>,
}

/// `offline_store:`: options shared by the object-store sources.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOfflineStore {
    #[serde(default)]
    pub storage_options: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaterialization {
    pub ttl_jitter: Option<S<f64>>,
    pub compress_threshold_bytes: Option<S<u64>>,
    /// Lease of the run lock; a crashed run's lock expires after it.
    pub lock_lease: Option<S<String>>,
    /// Committed snapshots whose data stays alive (current + previous by default).
    pub keep_snapshots: Option<S<u32>>,
    /// How long a retired snapshot stays readable.
    pub retire_grace: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntity {
    pub name: S<String>,
    pub join_keys: Vec<RawJoinKey>,
    #[serde(rename = "description")]
    pub _description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJoinKey {
    pub name: S<String>,
    pub dtype: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub name: S<String>,
    pub path: S<String>,
    pub timestamp_field: S<String>,
    pub created_timestamp_column: Option<S<String>>,
    #[serde(default)]
    pub field_mapping: BTreeMap<String, String>,
    /// Object-store options of this source; they override `offline_store`'s.
    #[serde(default)]
    pub storage_options: BTreeMap<String, serde_json::Value>,
    #[serde(rename = "description")]
    pub _description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawView {
    pub name: S<String>,
    pub entities: Vec<S<String>>,
    pub source: S<String>,
    pub ttl: S<String>,
    pub features: Vec<RawFeature>,
    #[serde(default)]
    pub checks: RawViewChecks,
    #[serde(rename = "description")]
    pub _description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawViewChecks {
    pub min_entities: Option<S<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeature {
    pub name: S<String>,
    pub dtype: S<String>,
    /// `None` when absent; `default: null` is `Some(Null)`: nulls served as null on purpose.
    #[serde(default, deserialize_with = "present")]
    pub default: Option<S<serde_json::Value>>,
    #[serde(default)]
    pub checks: RawFeatureChecks,
    #[serde(rename = "description")]
    pub _description: Option<String>,
}

/// A key that is present, whatever its value (`null` included), as `Some`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeatureChecks {
    pub max_null_fraction: Option<S<f64>>,
    pub min: Option<S<f64>>,
    pub max: Option<S<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub name: S<String>,
    pub features: Vec<S<RawServiceFeature>>,
    pub online_ttl: Option<S<String>>,
    pub hot_ttl: Option<S<String>>,
    #[serde(rename = "description")]
    pub _description: Option<String>,
}

/// `- view_name` (every feature of the view) or `- {view: v, features: [a, b]}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawServiceFeature {
    WholeView(String),
    Select(RawSelect),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSelect {
    pub view: String,
    pub features: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHotEntities {
    pub path: S<String>,
    pub score_column: Option<S<String>>,
}
