//! Feast's `feature_store.yaml` (FEAST.md §1.1, §7): the keys fsctl needs, read after Feast's
//! own `os.path.expandvars` of the whole text, and fsctl's settings from a top-level `fsctl:`
//! section (Feast accepts an unknown top-level key, not one inside `online_store`). Feast's
//! other keys (provider, offline_store, auth...) are Feast's business and pass unread.

use std::path::Path;

use serde::Deserialize;

use crate::base::duration::parse_duration_ms;
use crate::base::finding::Finding;
use crate::base::retry::RetryPolicy;
use crate::repo::{OnlineStoreConfig, OutputLayout, StoreKind};

/// Whether a `feature_store.yaml` is Feast's: it names a `registry`, which fsctl's own format
/// has no key for.
pub fn is_feast_project(text: &str) -> bool {
    text.lines().any(|l| {
        l.strip_prefix("registry")
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    })
}

#[derive(Debug, Deserialize)]
struct RawFeast {
    project: String,
    registry: RawRegistry,
    online_store: Option<RawOnline>,
    entity_key_serialization_version: Option<u32>,
    fsctl: Option<RawFsctl>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawRegistry {
    Path(String),
    Map {
        path: String,
        registry_type: Option<String>,
        #[serde(default)]
        enable_online_feature_view_versioning: bool,
    },
}

#[derive(Debug, Deserialize)]
struct RawOnline {
    #[serde(rename = "type")]
    kind: Option<String>,
    redis_type: Option<String>,
    connection_string: Option<String>,
    key_ttl_seconds: Option<i64>,
}

/// fsctl's own settings for a Feast project.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFsctl {
    layout: Option<String>,
    key_prefix: Option<String>,
    ttl_jitter: Option<f64>,
    compress_threshold_bytes: Option<usize>,
    keep_snapshots: Option<usize>,
    retire_grace: Option<String>,
    lock_lease: Option<String>,
    connections: Option<usize>,
}

/// What fsctl takes from a Feast `feature_store.yaml`.
#[derive(Debug, Clone)]
pub(crate) struct FeastConfig {
    pub project: String,
    /// The registry's path or URL as written (relative paths are the repo's).
    pub registry: String,
    pub online: OnlineStoreConfig,
    pub entity_key_version: u32,
    pub key_ttl_seconds: Option<i64>,
    pub layout: OutputLayout,
    pub ttl_jitter: f64,
    pub compress_threshold_bytes: usize,
    pub keep_snapshots: usize,
    pub retire_grace_ms: i64,
    pub lock_lease_ms: i64,
}

/// Parses a Feast `feature_store.yaml`, adding a finding for each problem.
pub(crate) fn parse(text: &str, file: &Path, findings: &mut Vec<Finding>) -> Option<FeastConfig> {
    let expanded = expand_vars(text);
    let raw: RawFeast = match serde_saphyr::from_str(&expanded) {
        Ok(r) => r,
        Err(e) => {
            let plain = e.without_snippet();
            let mut f = Finding::error("invalid-yaml", file, plain.to_string());
            if let Some(l) = plain.location() {
                f = f.at(l.line(), l.column());
            }
            findings.push(f);
            return None;
        }
    };
    let mut bad = |key: &str, why: String| {
        findings.push(Finding::error("invalid-value", file, why).named(key));
    };
    let fsctl = raw.fsctl.unwrap_or_default();
    let online = raw.online_store.unwrap_or(RawOnline {
        kind: None,
        redis_type: None,
        connection_string: None,
        key_ttl_seconds: None,
    });
    // Feast's default online store is SQLite.
    let kind = online.kind.as_deref().unwrap_or("sqlite");
    let cluster = match (kind, online.redis_type.as_deref()) {
        ("redis", None | Some("redis")) => false,
        ("redis", Some("redis_cluster")) | ("redis_cluster", _) => true,
        ("redis", Some(other)) => {
            bad(
                "online_store.redis_type",
                format!(
                    "online_store.redis_type `{other}`: fsctl writes to redis or redis_cluster"
                ),
            );
            false
        }
        (other, _) => {
            bad(
                "online_store.type",
                format!(
                    "online_store.type `{other}`: fsctl writes Feast's Redis online store \
                     (type: redis)"
                ),
            );
            false
        }
    };
    let connection = online
        .connection_string
        .unwrap_or_else(|| "localhost:6379".into());
    let url = match redis_urls(&connection) {
        Ok(u) => u,
        Err(why) => {
            bad("online_store.connection_string", why);
            String::new()
        }
    };
    let entity_key_version = raw.entity_key_serialization_version.unwrap_or(3);
    if !(2..=3).contains(&entity_key_version) {
        bad(
            "entity_key_serialization_version",
            format!(
                "entity_key_serialization_version {entity_key_version}: fsctl writes versions 2 and 3"
            ),
        );
    }
    let layout = match fsctl.layout.as_deref() {
        None | Some("feast") => OutputLayout::Feast,
        Some("fsctl") => OutputLayout::Fsctl,
        Some(other) => {
            bad(
                "fsctl.layout",
                format!("fsctl.layout `{other}` must be feast or fsctl"),
            );
            OutputLayout::Feast
        }
    };
    if let Some(t) = online.key_ttl_seconds.filter(|t| *t < 0) {
        bad(
            "online_store.key_ttl_seconds",
            format!("online_store.key_ttl_seconds {t} must not be negative"),
        );
    }
    // 0 is Feast's "no expiry".
    let key_ttl_seconds = online.key_ttl_seconds.filter(|t| *t > 0);
    let retire_grace_ms = match fsctl.retire_grace.as_deref().map(parse_duration_ms) {
        None => 5 * 60_000,
        Some(Ok(ms)) => ms,
        Some(Err(e)) => {
            bad("fsctl.retire_grace", format!("fsctl.retire_grace: {e}"));
            5 * 60_000
        }
    };
    let lock_lease_ms = match fsctl.lock_lease.as_deref().map(parse_duration_ms) {
        None => 30_000,
        Some(Ok(ms)) => ms,
        Some(Err(e)) => {
            bad("fsctl.lock_lease", format!("fsctl.lock_lease: {e}"));
            30_000
        }
    };
    let registry = match raw.registry {
        RawRegistry::Path(p) => p,
        RawRegistry::Map {
            path,
            registry_type,
            enable_online_feature_view_versioning,
        } => {
            if let Some(t) = registry_type.filter(|t| t != "file") {
                bad(
                    "registry.registry_type",
                    format!(
                        "registry_type `{t}`: fsctl reads Feast's file registry (a local path, \
                         s3:// or gs://), not a {t} registry"
                    ),
                );
            }
            if enable_online_feature_view_versioning {
                bad(
                    "registry.enable_online_feature_view_versioning",
                    "enable_online_feature_view_versioning: Feast then reads versioned field \
                     names, which fsctl does not write"
                        .into(),
                );
            }
            path
        }
    };
    Some(FeastConfig {
        project: raw.project,
        registry,
        online: OnlineStoreConfig {
            kind: if cluster {
                StoreKind::RedisCluster
            } else {
                StoreKind::Redis
            },
            url,
            url_from_env: true,
            key_prefix: fsctl.key_prefix.unwrap_or_else(|| "fs".into()),
            password_env: None,
            password_file: None,
            tls_ca_file: None,
            connect_timeout_ms: 5_000,
            response_timeout_ms: 30_000,
            connections: fsctl.connections.unwrap_or(4).clamp(1, 64),
            retry: RetryPolicy::default(),
            feast_writes: layout == OutputLayout::Feast,
        },
        entity_key_version,
        key_ttl_seconds,
        layout,
        ttl_jitter: fsctl.ttl_jitter.unwrap_or(0.2).clamp(0.0, 1.0),
        compress_threshold_bytes: fsctl.compress_threshold_bytes.unwrap_or(2048),
        keep_snapshots: fsctl.keep_snapshots.unwrap_or(2).clamp(1, 100),
        retire_grace_ms,
        lock_lease_ms,
    })
}

/// Reads the registry's bytes: a local path (relative to the repo), or an object-store URL.
pub(crate) fn read_registry(registry: &str, dir: &Path) -> Result<Vec<u8>, String> {
    if registry.contains("://") && !registry.starts_with("file://") {
        return read_remote(registry);
    }
    let path = dir.join(registry.strip_prefix("file://").unwrap_or(registry));
    std::fs::read(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "registry {} does not exist (run `feast apply` in the project first)",
                path.display()
            )
        } else {
            format!("cannot read registry {}: {e}", path.display())
        }
    })
}

/// Feast reads an `s3://` registry with boto3, whose endpoint `FEAST_S3_ENDPOINT_URL` sets
/// (FEAST.md §1.1); fsctl honours it the same way.
#[cfg(feature = "cloud")]
fn read_remote(url: &str) -> Result<Vec<u8>, String> {
    let mut options = Vec::new();
    if url.starts_with("s3://")
        && let Ok(endpoint) = std::env::var("FEAST_S3_ENDPOINT_URL")
    {
        if endpoint.starts_with("http://") {
            options.push(("aws_allow_http", "true".to_owned()));
        }
        options.push(("aws_endpoint", endpoint));
    }
    crate::base::objects::read_object(url, &options)
        .map_err(|e| format!("cannot read registry {url}: {e}"))
}

#[cfg(not(feature = "cloud"))]
fn read_remote(url: &str) -> Result<Vec<u8>, String> {
    Err(format!(
        "registry {url}: this fsctl was built without object-store support (the `cloud` feature)"
    ))
}

/// Python's `os.path.expandvars`, which Feast runs over the whole file: `$VAR` and `${VAR}`
/// are replaced when VAR is set and left as written when it is not.
pub(crate) fn expand_vars(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        match (name.is_empty(), std::env::var(name)) {
            (false, Ok(v)) => out.push_str(&v),
            _ => out.push_str(&rest[i..i + 1 + len]),
        }
        rest = &rest[i + 1 + len..];
    }
    out.push_str(rest);
    out
}

/// Feast's `connection_string` (`host:port,ssl=true,password=...,db=N`; several `host:port`
/// for a cluster) as fsctl's comma-separated redis URLs.
pub(crate) fn redis_urls(connection: &str) -> Result<String, String> {
    let mut hosts = Vec::new();
    let (mut ssl, mut password, mut user, mut db) = (false, None, None, None);
    for part in connection
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match part.split_once('=') {
            Some((k, v)) => match k.trim() {
                "ssl" => ssl = v.trim().eq_ignore_ascii_case("true"),
                "password" => password = Some(v.to_owned()),
                "username" => user = Some(v.to_owned()),
                "db" => db = Some(v.trim().to_owned()),
                // Feast passes the other options to redis-py; none changes what is written.
                _ => {}
            },
            None => hosts.push(part),
        }
    }
    if hosts.is_empty() {
        return Err("online_store.connection_string names no host:port".into());
    }
    let scheme = if ssl { "rediss" } else { "redis" };
    let auth = match (user, password) {
        (None, None) => String::new(),
        (u, p) => format!(
            "{}{}@",
            u.as_deref().map(percent).unwrap_or_default(),
            p.as_deref()
                .map(|p| format!(":{}", percent(p)))
                .unwrap_or_default()
        ),
    };
    let path = db.map(|d| format!("/{d}")).unwrap_or_default();
    Ok(hosts
        .iter()
        .map(|h| format!("{scheme}://{auth}{h}{path}"))
        .collect::<Vec<_>>()
        .join(","))
}

/// Percent-encodes what a URL's user info cannot hold as is.
fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_become_urls() {
        assert_eq!(
            redis_urls("localhost:6379").unwrap(),
            "redis://localhost:6379"
        );
        assert_eq!(
            redis_urls("h:1,ssl=true,password=p@ss").unwrap(),
            "rediss://:p%40ss@h:1"
        );
        assert_eq!(
            redis_urls("a:1,b:2,password=x").unwrap(),
            "redis://:x@a:1,redis://:x@b:2"
        );
        assert!(redis_urls("ssl=true").is_err());
    }

    #[test]
    fn variables_expand_like_pythons_expandvars() {
        let path = std::env::var("PATH").unwrap();
        assert_eq!(
            expand_vars("a: ${PATH}:$PATH/$FSCTL_NOT_SET_X ${FSCTL_NOPE} $"),
            format!("a: {path}:{path}/$FSCTL_NOT_SET_X ${{FSCTL_NOPE}} $")
        );
    }

    #[test]
    fn a_feast_file_names_a_registry() {
        assert!(is_feast_project("project: p\nregistry: data/registry.db\n"));
        assert!(is_feast_project("registry:\n  path: x\n"));
        assert!(!is_feast_project("project: p\nonline_store: {}\n"));
    }
}
