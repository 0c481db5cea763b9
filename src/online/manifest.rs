//! The snapshot manifest (SPEC §3): what a committed snapshot holds, read by serving to learn
//! the fingerprint and by operators to audit a run. Stored as JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub project: String,
    pub service: String,
    pub snapshot: String,
    /// 16 lowercase hex digits.
    pub fingerprint: String,
    pub schema: Vec<SchemaColumn>,
    pub entity: EntityInfo,
    pub window: WindowInfo,
    /// Window end, RFC 3339: the instant every TTL is measured from.
    pub as_of: String,
    pub as_of_ms: i64,
    pub entities: u64,
    pub keys_written: u64,
    /// Sum of the vectors' value sizes in bytes.
    pub bytes_written: u64,
    pub null_entity_rows: u64,
    /// Per `view.feature`: values replaced by the declared default.
    pub imputed: BTreeMap<String, u64>,
    /// Per `view.feature`: nulls kept as nil (no default).
    pub nulls: BTreeMap<String, u64>,
    /// Per view: entities of the service with no row in it (given the view's defaults).
    pub absent: BTreeMap<String, u64>,
    pub sources: BTreeMap<String, SourceInfo>,
    pub ttl: TtlInfo,
    /// Per view in service order: its ttl and window, so that a reader can tell a stale view.
    #[serde(default)]
    pub views: Vec<ViewInfo>,
    pub checks_skipped: bool,
    pub created_at: String,
    pub committed_at: String,
    /// When a later commit (or `fsctl gc`) retired this snapshot (SPEC §3.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
    /// Until when a retired snapshot's data stays readable: `retired_at` plus the grace when it
    /// was current until recently, else `retired_at` (its keys were deleted then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readable_until: Option<String>,
    /// Set when `fsctl rollback` made this snapshot current again: the snapshot it rolled back
    /// from. `committed_at` stays the original commit time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<String>,
    /// When that rollback happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_at: Option<String>,
    /// Set when a rollback replaced this snapshot as current: a later default `rollback` never
    /// goes back to it (only `--to` does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_at: Option<String>,
    pub fsctl_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ViewInfo {
    pub name: String,
    pub ttl_ms: i64,
    pub window: WindowInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SchemaColumn {
    pub view: String,
    pub name: String,
    pub dtype: String,
    pub default: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EntityInfo {
    pub name: String,
    pub join_keys: Vec<JoinKeyInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JoinKeyInfo {
    pub name: String,
    pub dtype: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WindowInfo {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceInfo {
    pub source: String,
    pub window: WindowInfo,
    pub files: Vec<FileInfo>,
    pub row_groups: usize,
    pub row_groups_skipped: usize,
    pub rows_in_window: u64,
    pub entities: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileInfo {
    pub path: String,
    pub size: u64,
    /// An object's ETag, the version read (local files have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub rows: u64,
    pub rows_read: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TtlInfo {
    pub online_ms: i64,
    pub hot_ms: i64,
    pub jitter: f64,
}
