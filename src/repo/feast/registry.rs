//! Feast's `registry.db`: the serialized `feast.core.Registry` message (no header, no framing;
//! FEAST.md §1). Only the fields fsctl reads are declared, with Feast's own field numbers;
//! protobuf skips the rest, so a newer Feast's registry stays readable.

use prost::Message;

/// Decodes a `registry.db`'s bytes.
pub fn decode(bytes: &[u8]) -> Result<Registry, prost::DecodeError> {
    Registry::decode(bytes)
}

#[derive(Clone, PartialEq, Message)]
pub struct Registry {
    #[prost(message, repeated, tag = "1")]
    pub entities: Vec<Entity>,
    #[prost(string, tag = "3")]
    pub registry_schema_version: String,
    #[prost(message, repeated, tag = "6")]
    pub feature_views: Vec<FeatureView>,
    #[prost(message, repeated, tag = "7")]
    pub feature_services: Vec<FeatureService>,
    #[prost(message, repeated, tag = "8")]
    pub on_demand_feature_views: Vec<OnDemandFeatureView>,
    #[prost(message, repeated, tag = "12")]
    pub data_sources: Vec<DataSource>,
    #[prost(message, repeated, tag = "14")]
    pub stream_feature_views: Vec<StreamFeatureView>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Entity {
    #[prost(message, optional, tag = "1")]
    pub spec: Option<EntitySpec>,
}

#[derive(Clone, PartialEq, Message)]
pub struct EntitySpec {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "2")]
    pub value_type: i32,
    #[prost(string, tag = "4")]
    pub join_key: String,
    #[prost(string, tag = "9")]
    pub project: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct FeatureView {
    #[prost(message, optional, tag = "1")]
    pub spec: Option<FeatureViewSpec>,
    #[prost(message, optional, tag = "2")]
    pub meta: Option<FeatureViewMeta>,
}

#[derive(Clone, PartialEq, Message)]
pub struct FeatureViewSpec {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub project: String,
    /// Entity names (not join keys).
    #[prost(string, repeated, tag = "3")]
    pub entities: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    pub features: Vec<FeatureSpec>,
    #[prost(message, optional, tag = "6")]
    pub ttl: Option<Duration>,
    #[prost(message, optional, tag = "7")]
    pub batch_source: Option<DataSource>,
    #[prost(bool, tag = "8")]
    pub online: bool,
    #[prost(message, optional, tag = "9")]
    pub stream_source: Option<DataSource>,
    /// The join keys with their value types (the key types Feast materializes with).
    #[prost(message, repeated, tag = "12")]
    pub entity_columns: Vec<FeatureSpec>,
    #[prost(message, optional, tag = "15")]
    pub feature_transformation: Option<Opaque>,
    #[prost(message, repeated, tag = "14")]
    pub source_views: Vec<Opaque>,
    #[prost(bool, tag = "20")]
    pub disabled: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct FeatureViewMeta {
    #[prost(int32, tag = "6")]
    pub state: i32,
}

/// A message whose content fsctl does not read, only whether it is there.
#[derive(Clone, PartialEq, Message)]
pub struct Opaque {}

#[derive(Clone, PartialEq, Message)]
pub struct FeatureSpec {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "2")]
    pub value_type: i32,
}

#[derive(Clone, Copy, PartialEq, Message)]
pub struct Duration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Duration {
    pub fn millis(&self) -> i64 {
        self.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(self.nanos) / 1_000_000)
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct FeatureService {
    #[prost(message, optional, tag = "1")]
    pub spec: Option<FeatureServiceSpec>,
}

#[derive(Clone, PartialEq, Message)]
pub struct FeatureServiceSpec {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub project: String,
    #[prost(message, repeated, tag = "3")]
    pub features: Vec<Projection>,
    #[prost(bool, tag = "8")]
    pub precompute_online: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct Projection {
    #[prost(string, tag = "1")]
    pub feature_view_name: String,
    #[prost(message, repeated, tag = "2")]
    pub feature_columns: Vec<FeatureSpec>,
    #[prost(string, tag = "3")]
    pub feature_view_name_alias: String,
    #[prost(int32, optional, tag = "10")]
    pub version_tag: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct DataSource {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(map = "string, string", tag = "2")]
    pub field_mapping: std::collections::HashMap<String, String>,
    #[prost(string, tag = "3")]
    pub timestamp_field: String,
    #[prost(string, tag = "4")]
    pub date_partition_column: String,
    #[prost(string, tag = "5")]
    pub created_timestamp_column: String,
    #[prost(message, optional, tag = "11")]
    pub file_options: Option<FileOptions>,
    #[prost(string, tag = "17")]
    pub data_source_class_type: String,
    #[prost(string, tag = "20")]
    pub name: String,
    #[prost(string, tag = "21")]
    pub project: String,
    #[prost(message, optional, boxed, tag = "26")]
    pub batch_source: Option<Box<DataSource>>,
    #[prost(string, tag = "28")]
    pub timestamp_field_type: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct FileOptions {
    #[prost(message, optional, tag = "1")]
    pub file_format: Option<FileFormat>,
    #[prost(string, tag = "2")]
    pub uri: String,
    #[prost(string, tag = "3")]
    pub s3_endpoint_override: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct FileFormat {
    #[prost(message, optional, tag = "1")]
    pub parquet_format: Option<Opaque>,
    #[prost(message, optional, tag = "2")]
    pub delta_format: Option<Opaque>,
}

#[derive(Clone, PartialEq, Message)]
pub struct OnDemandFeatureView {
    #[prost(message, optional, tag = "1")]
    pub spec: Option<NamedSpec>,
}

/// The name and project of a registry object fsctl only names (on-demand views).
#[derive(Clone, PartialEq, Message)]
pub struct NamedSpec {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub project: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct StreamFeatureView {
    #[prost(message, optional, tag = "1")]
    pub spec: Option<StreamFeatureViewSpec>,
}

#[derive(Clone, PartialEq, Message)]
pub struct StreamFeatureViewSpec {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub project: String,
    #[prost(message, optional, tag = "11")]
    pub stream_source: Option<DataSource>,
}

/// `DataSource.type` values fsctl tells apart (FEAST.md §1.7).
pub mod source_type {
    pub const BATCH_FILE: i32 = 1;
    pub const PUSH_SOURCE: i32 = 9;

    /// The name Feast gives a source type, for messages.
    pub fn name(t: i32) -> &'static str {
        match t {
            1 => "file",
            2 => "BigQuery",
            3 => "Kafka",
            4 => "Kinesis",
            5 => "Redshift",
            6 => "custom",
            7 => "request",
            8 => "Snowflake",
            9 => "push",
            10 => "Trino",
            11 => "Spark",
            12 => "Athena",
            13 => "Iceberg",
            _ => "unknown",
        }
    }
}

/// `FeatureViewMeta.state` values (FEAST.md §1.9): Feast serves a view in these states only.
pub const STATE_UNSPECIFIED: i32 = 0;
pub const STATE_AVAILABLE_ONLINE: i32 = 4;
