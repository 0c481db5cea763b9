//! The library's error type: one variant per kind of failure, with the facts an operator or a
//! calling program needs as fields (the holder of a lock, the failed checks, the server's error
//! code) and the underlying error as its source. The exit code (SPEC §4) and the JSON form of
//! `--format json` are decided here, from the variant, and nowhere else.

use std::path::PathBuf;

use serde_json::{Value as Json, json};
use thiserror::Error;

use super::finding::Finding;

/// Everything that can stop a command. Messages name the file, column, row, key or service.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The feature repo's definitions are invalid; every finding is listed.
    #[error("{}", render_findings(.findings))]
    Definition { findings: Vec<Finding> },

    /// A command-line value is unusable (a bad time, duration, entity or flag combination).
    #[error("{message}")]
    Usage { message: String },

    /// Configuration outside the definitions cannot be used: an unset `${VAR}`, a bad URL, an
    /// unreadable password or CA file.
    #[error("{message}")]
    Config { message: String },

    /// A feature service that the repo does not define was named.
    #[error(
        "unknown feature service `{name}`{} (known: {})",
        crate::base::suggest::did_you_mean(name, known.iter().map(String::as_str)),
        known.join(", ")
    )]
    UnknownService { name: String, known: Vec<String> },

    /// `--end` lies further in the future than clock skew explains.
    #[error(
        "--end {end} is {} in the future (now is {now}); a snapshot as of a future time would \
         make every later run look older and be refused. Pass the scheduler's interval end, or \
         --allow-future-end if this is intended",
        crate::base::duration::format_duration_ms(ahead_s.saturating_mul(1000))
    )]
    FutureEnd {
        end: String,
        now: String,
        ahead_s: i64,
    },

    /// Offline data that cannot be used as declared (missing file, column, wrong type, bad value).
    #[error("{message}")]
    Input {
        message: String,
        /// The (first) file involved, when there is one.
        file: Option<PathBuf>,
        /// The (first) column involved, when there is one.
        column: Option<String>,
    },

    /// A local output file (`--emit-resp`, `--manifest-out`, `fsctl.lock`) could not be written.
    #[error("{what} {}: {source}", path.display())]
    Output {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Redis refused, failed or could not be reached.
    #[error("{}", .0.message)]
    Redis(#[source] Box<RedisFailure>),

    /// Another run holds the service's run lock.
    #[error(
        "service `{service}` is being materialized by another run (lock {key} held by {}, lease expires in {:.1}s); \
         use --wait-lock DURATION to wait for it",
        holder.as_deref().unwrap_or("?"),
        *remaining_ms as f64 / 1000.0
    )]
    LockHeld {
        service: String,
        key: String,
        holder: Option<String>,
        remaining_ms: i64,
    },

    /// The run lock's lease ran out during the run (another run may have taken it).
    #[error(
        "service `{service}`: the run lock's lease expired during the run; not committing (rerun to complete)"
    )]
    LockLost { service: String },

    /// `current` moved while the run wrote, or the commit script refused for another reason.
    #[error("service `{service}`: commit refused: {reason}; nothing was committed")]
    CommitRefused { service: String, reason: String },

    /// The service has no committed snapshot to read, warm or check.
    #[error(
        "service `{service}` has no committed snapshot ({key} is not set): run `fsctl materialize` first"
    )]
    NoCommittedSnapshot { service: String, key: String },

    /// A snapshot's manifest is missing or unreadable.
    #[error("snapshot {snapshot} of `{service}` has no readable manifest at {key}")]
    NoManifest {
        service: String,
        snapshot: String,
        key: String,
    },

    /// The committed snapshot was written with another layout than the repo's definitions.
    #[error(
        "snapshot {snapshot} of `{service}` was written with fingerprint {committed}, but the repo's definitions \
         have {repo}: the definitions changed since; materialize again first"
    )]
    SchemaMismatch {
        service: String,
        snapshot: String,
        committed: String,
        repo: String,
    },

    /// Committing would move `current` to an older `as_of`.
    #[error(
        "service `{service}`: the committed snapshot {committed} is newer (as of {committed_as_of}) than this run \
         (as of {requested_as_of}); committing would move serving back in time. Use --force to do it anyway"
    )]
    BackInTime {
        service: String,
        committed: String,
        committed_as_of: String,
        requested_as_of: String,
    },

    /// Every key of the run would expire before it is written.
    #[error(
        "service `{service}`: with --end {end} and online_ttl {online_ttl}, keys would expire at {expires} or earlier, \
         which is already past; use a later --end or a longer online_ttl"
    )]
    ExpiresInPast {
        service: String,
        end: String,
        online_ttl: String,
        expires: String,
    },

    /// The data-quality gate refused the run.
    #[error(
        "service `{service}`: data-quality checks failed; not committing (the current snapshot keeps serving; \
         --skip-checks overrides):\n  {}",
        failures.join("\n  ")
    )]
    QualityGate {
        service: String,
        failures: Vec<String>,
        /// Per failure, in the same order: `view`, `feature`, `check`, `observed`, `limit`.
        details: Vec<serde_json::Value>,
    },

    /// `fsctl commit` found shards missing or not matching (SPEC §3.3).
    #[error(
        "service `{service}`: not committing snapshot {snapshot}: {} of its {shards} shards {} not ready:\n  {}",
        problems.len(),
        if problems.len() == 1 { "is" } else { "are" },
        problems.join("\n  ")
    )]
    ShardsIncomplete {
        service: String,
        snapshot: String,
        shards: u32,
        problems: Vec<String>,
    },

    /// The run found no entity at all.
    #[error(
        "service `{service}`: zero entities in the window; refusing to commit an empty snapshot over the current \
         one (an empty upstream batch must not wipe serving). Use --allow-empty if intended"
    )]
    EmptyResult { service: String },

    /// The run would not fit under the server's `maxmemory`.
    #[error(
        "service `{service}`: this run needs about {} MB next to the {} MB in use, but maxmemory is {} MB \
         (the {keep_snapshots} kept snapshot(s) stay alive until the run commits); nothing was written. Raise \
         maxmemory, lower materialization.keep_snapshots, or run `fsctl gc` first",
        planned_bytes / 1_000_000, used_bytes / 1_000_000, max_bytes / 1_000_000
    )]
    Capacity {
        service: String,
        planned_bytes: u64,
        used_bytes: u64,
        max_bytes: u64,
        keep_snapshots: usize,
    },

    /// `rollback` refused its target.
    #[error("service `{service}`: cannot roll back to snapshot {snapshot}: {reason}")]
    RollbackRefused {
        service: String,
        snapshot: String,
        reason: String,
    },

    /// `current` moved while a command worked on the snapshot it had resolved.
    #[error(
        "service `{service}`: current moved from snapshot {from} to {to} meanwhile; run the command again"
    )]
    CurrentMoved {
        service: String,
        from: String,
        to: String,
    },

    /// The entity has no vector in the snapshot read.
    #[error(
        "no vector for {entity} in snapshot {snapshot} (key {key}): the entity was not in the window, or its key expired"
    )]
    VectorNotFound {
        service: String,
        entity: String,
        snapshot: String,
        key: String,
    },

    /// A stored vector does not decode, or carries another fingerprint than its manifest.
    #[error("{key}: {reason}")]
    CorruptVector { key: String, reason: String },

    /// `validate` found problems (they were printed as findings). When `feature_store.yaml`
    /// itself is invalid (`definitions`), it exits 2 like every other verb given that repo.
    #[error(
        "validate found {errors} problem{}{}",
        if *errors == 1 { "" } else { "s" },
        if *definitions { " (feature_store.yaml is invalid)" } else { "" }
    )]
    ValidationFailed { errors: usize, definitions: bool },

    /// `fsctl status`: a service's committed snapshot is older than allowed, or missing.
    #[error("stale: {}", services.join("; "))]
    Stale { services: Vec<String> },

    /// The run was interrupted by a signal.
    #[error("interrupted: stopped writing; nothing was committed")]
    Interrupted,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a failed Redis call was and what the server said.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct RedisFailure {
    /// What fsctl was doing (`connect`, `write`, `commit`...).
    pub operation: &'static str,
    /// The server, password redacted.
    pub server: String,
    /// The server's error code (`OOM`, `NOAUTH`, `WRONGTYPE`...), when it sent one.
    pub code: Option<String>,
    /// The key a refused command named, when there is one.
    pub key: Option<String>,
    pub message: String,
    #[source]
    pub source: redis::RedisError,
}

impl Error {
    /// Exit code (SPEC §4): 2 for usage and configuration problems, 1 for a failed job.
    /// The quality gate's refusal of `service`: each failed check as its message and, for
    /// the JSON document, its fields.
    pub fn quality_gate<F: std::fmt::Display + serde::Serialize>(
        service: &str,
        failed: &[F],
    ) -> Error {
        Error::QualityGate {
            service: service.to_owned(),
            failures: failed.iter().map(ToString::to_string).collect(),
            details: failed
                .iter()
                .map(|f| serde_json::to_value(f).unwrap_or_default())
                .collect(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Definition { .. }
            | Error::Usage { .. }
            | Error::Config { .. }
            | Error::UnknownService { .. }
            | Error::FutureEnd { .. }
            | Error::ExpiresInPast { .. }
            | Error::ValidationFailed {
                definitions: true, ..
            } => 2,
            _ => 1,
        }
    }

    /// Stable machine-readable name of the kind, the `kind` of the JSON error document.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Definition { .. } => "definition",
            Error::Usage { .. } => "usage",
            Error::Config { .. } => "config",
            Error::UnknownService { .. } => "unknown_service",
            Error::FutureEnd { .. } => "future_end",
            Error::Input { .. } => "input",
            Error::Output { .. } => "output",
            Error::Redis(_) => "redis",
            Error::LockHeld { .. } => "lock_held",
            Error::LockLost { .. } => "lock_lost",
            Error::CommitRefused { .. } => "commit_refused",
            Error::NoCommittedSnapshot { .. } => "no_committed_snapshot",
            Error::NoManifest { .. } => "no_manifest",
            Error::SchemaMismatch { .. } => "schema_mismatch",
            Error::BackInTime { .. } => "back_in_time",
            Error::ExpiresInPast { .. } => "expires_in_past",
            Error::QualityGate { .. } => "quality_gate",
            Error::Stale { .. } => "stale",
            Error::EmptyResult { .. } => "empty_result",
            Error::ShardsIncomplete { .. } => "shards_incomplete",
            Error::VectorNotFound { .. } => "vector_not_found",
            Error::Capacity { .. } => "capacity",
            Error::CurrentMoved { .. } => "current_moved",
            Error::RollbackRefused { .. } => "rollback_refused",
            Error::CorruptVector { .. } => "corrupt_vector",
            Error::ValidationFailed { .. } => "validation_failed",
            Error::Interrupted => "interrupted",
        }
    }

    /// The structured details of the failure, for the JSON error document.
    pub fn details(&self) -> Json {
        match self {
            Error::Definition { findings } => json!({ "findings": findings }),
            Error::UnknownService { name, known } => json!({ "service": name, "known": known }),
            Error::FutureEnd { end, now, ahead_s } => {
                json!({ "end": end, "now": now, "ahead_s": ahead_s })
            }
            Error::Input { file, column, .. } => json!({ "file": file, "column": column }),
            Error::Output { what, path, .. } => json!({ "what": what, "path": path }),
            Error::Redis(f) => json!({
                "operation": f.operation, "server": f.server, "code": f.code, "key": f.key,
            }),
            Error::LockHeld {
                service,
                key,
                holder,
                remaining_ms,
            } => {
                json!({ "service": service, "key": key, "holder": holder, "remaining_ms": remaining_ms })
            }
            Error::LockLost { service } | Error::EmptyResult { service } => {
                json!({ "service": service })
            }
            Error::CommitRefused { service, reason } => {
                json!({ "service": service, "reason": reason })
            }
            Error::NoCommittedSnapshot { service, key } => {
                json!({ "service": service, "key": key })
            }
            Error::NoManifest {
                service,
                snapshot,
                key,
            } => json!({ "service": service, "snapshot": snapshot, "key": key }),
            Error::SchemaMismatch {
                service,
                snapshot,
                committed,
                repo,
            } => json!({
                "service": service, "snapshot": snapshot,
                "committed_fingerprint": committed, "repo_fingerprint": repo,
            }),
            Error::BackInTime {
                service,
                committed,
                committed_as_of,
                requested_as_of,
            } => json!({
                "service": service, "committed": committed,
                "committed_as_of": committed_as_of, "requested_as_of": requested_as_of,
            }),
            Error::ExpiresInPast {
                service,
                end,
                online_ttl,
                expires,
            } => {
                json!({ "service": service, "end": end, "online_ttl": online_ttl, "expires": expires })
            }
            Error::Stale { services } => json!({ "stale": services }),
            Error::QualityGate {
                service,
                failures,
                details,
            } => {
                let failures: Vec<serde_json::Value> = failures
                    .iter()
                    .zip(details)
                    .map(|(message, d)| {
                        let mut d = d.clone();
                        if let Some(o) = d.as_object_mut() {
                            o.insert("message".into(), message.clone().into());
                        }
                        d
                    })
                    .collect();
                json!({ "service": service, "failures": failures })
            }
            Error::ShardsIncomplete {
                service,
                snapshot,
                shards,
                problems,
            } => json!({
                "service": service, "snapshot": snapshot, "shards": shards, "problems": problems,
            }),
            Error::VectorNotFound {
                service,
                entity,
                snapshot,
                key,
            } => json!({ "service": service, "entity": entity, "snapshot": snapshot, "key": key }),
            Error::CorruptVector { key, reason } => json!({ "key": key, "reason": reason }),
            Error::Capacity {
                service,
                planned_bytes,
                used_bytes,
                max_bytes,
                keep_snapshots,
            } => json!({
                "service": service, "planned_bytes": planned_bytes, "used_bytes": used_bytes,
                "max_bytes": max_bytes, "keep_snapshots": keep_snapshots,
            }),
            Error::RollbackRefused {
                service,
                snapshot,
                reason,
            } => json!({ "service": service, "snapshot": snapshot, "reason": reason }),
            Error::CurrentMoved { service, from, to } => {
                json!({ "service": service, "from": from, "to": to })
            }
            Error::ValidationFailed {
                errors,
                definitions,
            } => json!({ "errors": errors, "definitions_invalid": definitions }),
            Error::Usage { .. } | Error::Config { .. } | Error::Interrupted => json!({}),
        }
    }

    /// The JSON error document of SPEC §4: `{"error": {"kind", "message", "exit_code", ...}}`.
    pub fn to_json(&self) -> Json {
        let mut error = json!({
            "kind": self.kind(),
            "message": self.to_string(),
            "exit_code": self.exit_code(),
        });
        if let (Json::Object(out), Json::Object(details)) = (&mut error, self.details()) {
            for (k, v) in details {
                out.entry(k).or_insert(v);
            }
        }
        json!({ "error": error })
    }

    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage {
            message: message.into(),
        }
    }

    pub fn config(message: impl Into<String>) -> Error {
        Error::Config {
            message: message.into(),
        }
    }

    pub fn input(message: impl Into<String>) -> Error {
        Error::Input {
            message: message.into(),
            file: None,
            column: None,
        }
    }

    /// An input error about `file`, its message starting with the file's path.
    pub fn in_file(file: impl Into<PathBuf>, why: impl std::fmt::Display) -> Error {
        let file = file.into();
        Error::Input {
            message: format!("{}: {why}", file.display()),
            file: Some(file),
            column: None,
        }
    }
}

fn render_findings(findings: &[Finding]) -> String {
    let mut out = format!(
        "the feature repo has {} problem{}:",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" }
    );
    for f in findings {
        out.push_str("\n  ");
        out.push_str(&f.to_string());
    }
    out
}
