//! From the raw YAML to the resolved `Repo`: parse dtypes, durations and defaults, resolve
//! every reference, and check the rules of SPEC §1. Every problem is collected (not just the
//! first) so `validate` can report them all in one CI run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde_saphyr::{Location, Spanned};

use super::model::*;
use super::raw::*;
use crate::base::duration::parse_duration_ms;
use crate::base::finding::Finding;
use crate::base::retry::RetryPolicy;
use crate::base::suggest::did_you_mean;
use crate::base::value::{DType, Scalar, Value};

/// The history keeps 32 committed ids (`snapshots`); every kept snapshot must be among them.
const MAX_KEEP_SNAPSHOTS: usize = 30;

struct Ctx<'a> {
    file: &'a Path,
    findings: Vec<Finding>,
}

impl Ctx<'_> {
    /// Findings of error severity so far (warnings leave a definition sound).
    fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == crate::base::finding::Severity::Error)
            .count()
    }

    fn push(&mut self, code: &'static str, loc: &Location, name: &str, message: String) {
        self.findings.push(
            Finding::error(code, self.file, message)
                .at(loc.line(), loc.column())
                .named(name),
        );
    }
}

fn loc<T>(s: &Spanned<T>) -> &Location {
    &s.referenced
}

/// Names used in keys or as identifiers: letters, digits and `_`, not starting with a digit.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A project name: `[a-z][a-z0-9_]*`.
pub fn is_project_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A resolved repo with every finding, and which of its views and services resolved without
/// one (the others hold placeholders where a reference was broken).
pub(super) struct Resolved {
    pub(super) repo: Repo,
    pub(super) findings: Vec<Finding>,
    pub(super) sound_views: Vec<bool>,
    pub(super) sound_services: Vec<bool>,
}

/// A source's storage options: `offline_store`'s, overridden by its own; every value a
/// scalar, kept as text (`aws_allow_http: true` is `"true"`).
fn storage_options(
    cx: &mut Ctx<'_>,
    shared: &BTreeMap<String, serde_json::Value>,
    s: &RawSource,
) -> Vec<(String, String)> {
    let merged = shared
        .iter()
        .filter(|(k, _)| !s.storage_options.contains_key(*k))
        .chain(&s.storage_options);
    let mut out = Vec::new();
    for (key, value) in merged {
        let text = match value {
            serde_json::Value::String(v) => v.clone(),
            serde_json::Value::Bool(v) => v.to_string(),
            serde_json::Value::Number(v) => v.to_string(),
            _ => {
                cx.push(
                    "invalid-value",
                    loc(&s.name),
                    key,
                    format!(
                        "source `{}`: storage option `{key}` must be a string, number or boolean",
                        s.name.value
                    ),
                );
                continue;
            }
        };
        out.push((key.clone(), text));
    }
    out
}

/// The URL schemes a source's `path` may use (SPEC §1).
const SOURCE_SCHEMES: [&str; 8] = ["s3", "s3a", "gs", "az", "abfs", "abfss", "azure", "file"];

/// Resolves a parsed repo, collecting every finding.
pub(super) fn resolve(raw: RawRepo, dir: &Path, file: &Path) -> Resolved {
    let mut cx = Ctx {
        file,
        findings: Vec::new(),
    };

    if !is_project_name(&raw.project.value) {
        cx.push(
            "invalid-name",
            loc(&raw.project),
            &raw.project.value,
            format!("project `{}` must match [a-z][a-z0-9_]*", raw.project.value),
        );
    }

    let online = resolve_online(&mut cx, &raw.online_store, dir);

    let ttl_jitter = match &raw.materialization.ttl_jitter {
        Some(j) if !(0.0..1.0).contains(&j.value) => {
            cx.push(
                "invalid-value",
                loc(j),
                "ttl_jitter",
                format!("ttl_jitter {} must be in [0, 1)", j.value),
            );
            0.2
        }
        Some(j) => j.value,
        None => 0.2,
    };
    let compress_threshold_bytes = raw
        .materialization
        .compress_threshold_bytes
        .as_ref()
        .map_or(2048, |t| t.value as usize);

    let keep_snapshots = match &raw.materialization.keep_snapshots {
        Some(k) if k.value == 0 || k.value as usize > MAX_KEEP_SNAPSHOTS => {
            cx.push(
                "invalid-value",
                loc(k),
                "keep_snapshots",
                format!(
                    "keep_snapshots {} must be between 1 and {MAX_KEEP_SNAPSHOTS}",
                    k.value
                ),
            );
            2
        }
        Some(k) => k.value as usize,
        None => 2,
    };
    let retire_grace_ms = raw
        .materialization
        .retire_grace
        .as_ref()
        .and_then(|g| duration(&mut cx, g, "retire_grace"))
        .unwrap_or(5 * 60_000);

    let lock_lease_ms = raw
        .materialization
        .lock_lease
        .as_ref()
        .and_then(|l| duration(&mut cx, l, "lock_lease"))
        .unwrap_or(30_000);

    // Entities.
    let mut entities = Vec::new();
    let mut entity_ix = HashMap::new();
    let mut entity_ok = Vec::new();
    for e in &raw.entities {
        let before = cx.errors();
        check_name(&mut cx, &e.name, "entity");
        if entity_ix
            .insert(e.name.value.clone(), entities.len())
            .is_some()
        {
            cx.push(
                "duplicate-name",
                loc(&e.name),
                &e.name.value,
                format!("duplicate entity `{}`", e.name.value),
            );
        }
        if e.join_keys.is_empty() {
            cx.push(
                "invalid-value",
                loc(&e.name),
                &e.name.value,
                format!("entity `{}` has no join_keys", e.name.value),
            );
        }
        let mut join_keys = Vec::new();
        let mut seen = HashSet::new();
        for k in &e.join_keys {
            check_name(&mut cx, &k.name, "join key");
            if !seen.insert(k.name.value.as_str()) {
                cx.push(
                    "duplicate-name",
                    loc(&k.name),
                    &k.name.value,
                    format!(
                        "duplicate join key `{}` in entity `{}`",
                        k.name.value, e.name.value
                    ),
                );
            }
            let dtype = parse_dtype(&mut cx, &k.dtype);
            if let Some(d) = dtype
                && !matches!(
                    d,
                    DType::Scalar(Scalar::Int32 | Scalar::Int64 | Scalar::String)
                )
            {
                cx.push(
                    "invalid-dtype",
                    loc(&k.dtype),
                    &k.name.value,
                    format!(
                        "join key `{}` has dtype {d}; join keys must be int32, int64 or string",
                        k.name.value
                    ),
                );
            }
            join_keys.push(JoinKey {
                name: k.name.value.clone(),
                dtype: dtype.unwrap_or(DType::Scalar(Scalar::Int64)),
            });
        }
        entities.push(Entity {
            name: e.name.value.clone(),
            join_keys,
        });
        entity_ok.push(cx.errors() == before);
    }

    // Sources.
    let mut sources = Vec::new();
    let mut source_ix = HashMap::new();
    let mut source_ok = Vec::new();
    for s in &raw.sources {
        let before = cx.errors();
        check_name(&mut cx, &s.name, "source");
        if source_ix
            .insert(s.name.value.clone(), sources.len())
            .is_some()
        {
            cx.push(
                "duplicate-name",
                loc(&s.name),
                &s.name.value,
                format!("duplicate source `{}`", s.name.value),
            );
        }
        if s.path.value.trim().is_empty() {
            cx.push(
                "invalid-value",
                loc(&s.path),
                &s.name.value,
                format!("source `{}` has an empty path", s.name.value),
            );
        } else if let Some((scheme, _)) = s.path.value.split_once("://")
            && !SOURCE_SCHEMES.contains(&scheme)
        {
            cx.push(
                "invalid-value",
                loc(&s.path),
                &s.path.value,
                format!(
                    "source `{}`: `{scheme}://` is not a supported location (use a local path or \
                     one of {})",
                    s.name.value,
                    SOURCE_SCHEMES.map(|s| format!("{s}://")).join(", ")
                ),
            );
        } else if let Err(e) = glob::Pattern::new(&s.path.value) {
            cx.push(
                "invalid-glob",
                loc(&s.path),
                &s.path.value,
                format!(
                    "source `{}`: invalid path pattern `{}`: {e}",
                    s.name.value, s.path.value
                ),
            );
        }
        let mut targets = HashSet::new();
        for target in s.field_mapping.values() {
            if !targets.insert(target.as_str()) {
                cx.push(
                    "duplicate-name",
                    loc(&s.name),
                    target,
                    format!(
                        "source `{}`: field_mapping maps two columns to `{target}`",
                        s.name.value
                    ),
                );
            }
        }
        sources.push(Source {
            name: s.name.value.clone(),
            path: s.path.value.clone(),
            timestamp_field: s.timestamp_field.value.clone(),
            created_timestamp_column: s.created_timestamp_column.as_ref().map(|c| c.value.clone()),
            field_mapping: s
                .field_mapping
                .iter()
                .map(|(a, b)| (a.clone(), b.clone()))
                .collect(),
            storage_options: storage_options(&mut cx, &raw.offline_store.storage_options, s),
            shared_storage_options: raw
                .offline_store
                .storage_options
                .keys()
                .filter(|k| !s.storage_options.contains_key(*k))
                .cloned()
                .collect(),
        });
        source_ok.push(cx.errors() == before);
    }

    // Views.
    let mut views = Vec::new();
    let mut view_ix = HashMap::new();
    let mut sound_views = Vec::new();
    for v in &raw.feature_views {
        let before = cx.errors();
        check_name(&mut cx, &v.name, "feature view");
        if view_ix.insert(v.name.value.clone(), views.len()).is_some() {
            cx.push(
                "duplicate-name",
                loc(&v.name),
                &v.name.value,
                format!("duplicate feature view `{}`", v.name.value),
            );
        }
        let entity = match v.entities.as_slice() {
            [one] => match entity_ix.get(&one.value) {
                Some(&i) => i,
                None => {
                    cx.push(
                        "unknown-reference",
                        loc(one),
                        &one.value,
                        format!(
                            "feature view `{}` references unknown entity `{}`{}",
                            v.name.value,
                            one.value,
                            did_you_mean(&one.value, entity_ix.keys().map(String::as_str))
                        ),
                    );
                    usize::MAX
                }
            },
            _ => {
                cx.push(
                    "invalid-value",
                    loc(&v.name),
                    &v.name.value,
                    format!(
                        "feature view `{}` must list exactly one entity (has {})",
                        v.name.value,
                        v.entities.len()
                    ),
                );
                usize::MAX
            }
        };
        let source = match source_ix.get(&v.source.value) {
            Some(&i) => i,
            None => {
                cx.push(
                    "unknown-reference",
                    loc(&v.source),
                    &v.source.value,
                    format!(
                        "feature view `{}` references unknown source `{}`{}",
                        v.name.value,
                        v.source.value,
                        did_you_mean(&v.source.value, source_ix.keys().map(String::as_str))
                    ),
                );
                usize::MAX
            }
        };
        let ttl_ms = duration(&mut cx, &v.ttl, &v.name.value).unwrap_or(86_400_000);
        if v.features.is_empty() {
            cx.push(
                "invalid-value",
                loc(&v.name),
                &v.name.value,
                format!("feature view `{}` has no features", v.name.value),
            );
        }
        let mut features = Vec::new();
        let mut seen = HashSet::new();
        for f in &v.features {
            check_name(&mut cx, &f.name, "feature");
            if !seen.insert(f.name.value.as_str()) {
                cx.push(
                    "duplicate-name",
                    loc(&f.name),
                    &f.name.value,
                    format!(
                        "duplicate feature `{}` in view `{}`",
                        f.name.value, v.name.value
                    ),
                );
            }
            let dtype = parse_dtype(&mut cx, &f.dtype).unwrap_or(DType::Scalar(Scalar::Int64));
            if f.default.is_none() {
                cx.findings.push(
                    Finding::error(
                        "no-default",
                        cx.file,
                        format!(
                            "feature `{}.{}` has no `default`: an entity without a value for it \
                             is served null. Declare `default:` to impute one, or `default: null` \
                             to serve nulls on purpose",
                            v.name.value, f.name.value
                        ),
                    )
                    .at(loc(&f.name).line(), loc(&f.name).column())
                    .named(format!("{}.{}", v.name.value, f.name.value))
                    .warning(),
                );
            }
            let default =
                f.default.as_ref().filter(|d| !d.value.is_null()).and_then(
                    |d| match default_value(&d.value, dtype) {
                        Ok(v) => Some(v),
                        Err(why) => {
                            cx.push(
                                "invalid-default",
                                loc(d),
                                &f.name.value,
                                format!(
                                    "default of `{}.{}` does not fit dtype {dtype}: {why}",
                                    v.name.value, f.name.value
                                ),
                            );
                            None
                        }
                    },
                );
            let checks = FeatureChecks {
                max_null_fraction: f.checks.max_null_fraction.as_ref().map(|c| c.value),
                min: f.checks.min.as_ref().map(|c| c.value),
                max: f.checks.max.as_ref().map(|c| c.value),
            };
            if let Some(m) = &f.checks.max_null_fraction
                && !(0.0..=1.0).contains(&m.value)
            {
                cx.push(
                    "invalid-value",
                    loc(m),
                    &f.name.value,
                    format!(
                        "max_null_fraction {} of `{}` must be in [0, 1]",
                        m.value, f.name.value
                    ),
                );
            }
            if (checks.min.is_some() || checks.max.is_some())
                && !matches!(
                    dtype,
                    DType::Scalar(
                        Scalar::Int32 | Scalar::Int64 | Scalar::Float32 | Scalar::Float64
                    )
                )
            {
                cx.push(
                    "invalid-value",
                    loc(&f.name),
                    &f.name.value,
                    format!(
                        "checks min/max of `{}` need a numeric dtype, not {dtype}",
                        f.name.value
                    ),
                );
            }
            features.push(Feature {
                name: f.name.value.clone(),
                dtype,
                default,
                checks,
            });
        }
        views.push(View {
            name: v.name.value.clone(),
            entity,
            source,
            ttl_ms,
            features,
            min_entities: v.checks.min_entities.as_ref().map(|m| m.value),
        });
        sound_views.push(
            cx.errors() == before
                && entity_ok.get(entity) == Some(&true)
                && source_ok.get(source) == Some(&true),
        );
    }

    // Services.
    let mut services = Vec::new();
    let mut service_names = HashSet::new();
    let mut sound_services = Vec::new();
    for s in &raw.feature_services {
        let before = cx.errors();
        check_name(&mut cx, &s.name, "feature service");
        if !service_names.insert(s.name.value.clone()) {
            cx.push(
                "duplicate-name",
                loc(&s.name),
                &s.name.value,
                format!("duplicate feature service `{}`", s.name.value),
            );
        }
        let mut features: Vec<ServiceFeature> = Vec::new();
        let mut svc_views: Vec<usize> = Vec::new();
        let mut entity: Option<usize> = None;
        for entry in &s.features {
            let (view_name, selected): (&str, Option<&[String]>) = match &entry.value {
                RawServiceFeature::WholeView(v) => (v, None),
                RawServiceFeature::Select(sel) => (&sel.view, Some(&sel.features)),
            };
            let Some(&vi) = view_ix.get(view_name) else {
                // `view.feature` is a natural guess for picking one feature: say how instead.
                let hint = match view_name.split_once('.') {
                    Some((v, f)) if view_ix.contains_key(v) => {
                        format!(" (to pick single features write `{{view: {v}, features: [{f}]}}`)")
                    }
                    _ => did_you_mean(view_name, view_ix.keys().map(String::as_str)),
                };
                cx.push(
                    "unknown-reference",
                    loc(entry),
                    view_name,
                    format!(
                        "feature service `{}` references unknown feature view `{view_name}`{hint}",
                        s.name.value
                    ),
                );
                continue;
            };
            let view = &views[vi];
            match entity {
                None => entity = Some(view.entity),
                Some(e) if e != view.entity && view.entity != usize::MAX => {
                    let name = |i: usize| entities.get(i).map_or("?", |e: &Entity| e.name.as_str());
                    cx.push("entity-mismatch", loc(entry), view_name, format!(
                        "feature service `{}` mixes entities: view `{view_name}` is keyed by `{}` but earlier views by `{}`",
                        s.name.value, name(view.entity), name(e)));
                }
                Some(_) => {}
            }
            if !svc_views.contains(&vi) {
                svc_views.push(vi);
            }
            let picked: Vec<usize> = match selected {
                None => (0..view.features.len()).collect(),
                Some(names) => names
                    .iter()
                    .filter_map(|n| {
                        let found = view.features.iter().position(|f| &f.name == n);
                        if found.is_none() {
                            let hint = did_you_mean(n, view.features.iter().map(|f| f.name.as_str()));
                            cx.push("unknown-reference", loc(entry), n, format!("feature service `{}` references unknown feature `{view_name}.{n}`{hint}", s.name.value));
                        }
                        found
                    })
                    .collect(),
            };
            for fi in picked {
                let sf = ServiceFeature {
                    view: vi,
                    feature: fi,
                };
                if features.contains(&sf) {
                    cx.push(
                        "duplicate-name",
                        loc(entry),
                        &view.features[fi].name,
                        format!(
                            "feature service `{}` lists `{view_name}.{}` twice",
                            s.name.value, view.features[fi].name
                        ),
                    );
                } else {
                    features.push(sf);
                }
            }
        }
        // Entries that did not resolve are reported already.
        if s.features.is_empty() {
            cx.push(
                "invalid-value",
                loc(&s.name),
                &s.name.value,
                format!("feature service `{}` has no features", s.name.value),
            );
        }
        let longest_view_ttl = svc_views
            .iter()
            .map(|&v| views[v].ttl_ms)
            .max()
            .unwrap_or(86_400_000);
        let online_ttl_ms = s
            .online_ttl
            .as_ref()
            .and_then(|t| duration(&mut cx, t, &s.name.value))
            .unwrap_or(2 * longest_view_ttl);
        let hot_ttl_ms = s
            .hot_ttl
            .as_ref()
            .and_then(|t| duration(&mut cx, t, &s.name.value))
            .unwrap_or(2 * online_ttl_ms);
        sound_services.push(
            cx.errors() == before && entity.is_some() && svc_views.iter().all(|&v| sound_views[v]),
        );
        services.push(Service {
            name: s.name.value.clone(),
            entity: entity.unwrap_or(usize::MAX),
            features,
            views: svc_views,
            online_ttl_ms,
            hot_ttl_ms,
        });
    }

    if raw.feature_services.is_empty() {
        cx.findings.push(Finding::error(
            "no-services",
            cx.file,
            "no feature_services: fsctl writes one vector per entity and feature service, so a \
             repo needs at least one (`feature_services: [{name: ..., features: [a_view]}]`)",
        ));
    }

    let hot_entities = raw.hot_entities.as_ref().map(|h| HotEntities {
        path: h.path.value.clone(),
        score_column: h.score_column.as_ref().map(|c| c.value.clone()),
    });

    Resolved {
        repo: Repo {
            dir: dir.to_path_buf(),
            project: raw.project.value,
            online,
            ttl_jitter,
            compress_threshold_bytes,
            lock_lease_ms,
            keep_snapshots,
            retire_grace_ms,
            entities,
            sources,
            views,
            services,
            hot_entities,
            layout: OutputLayout::Fsctl,
            feast: None,
        },
        findings: cx.findings,
        sound_views,
        sound_services,
    }
}

fn resolve_online(cx: &mut Ctx<'_>, o: &RawOnlineStore, dir: &Path) -> OnlineStoreConfig {
    let kind = match o.kind.value.as_str() {
        "redis" => StoreKind::Redis,
        "redis_cluster" => StoreKind::RedisCluster,
        other => {
            cx.push(
                "invalid-value",
                loc(&o.kind),
                other,
                format!(
                    "online_store type `{other}` is not supported (`redis` for one server, `redis_cluster` \
                     for a Redis Cluster or Valkey in cluster mode)"
                ),
            );
            StoreKind::Redis
        }
    };
    let url = &o.url.value;
    let seeds: Vec<&str> = match kind {
        StoreKind::Redis => vec![url.as_str()],
        StoreKind::RedisCluster => crate::base::secrets::split_urls(url),
    };
    for seed in seeds {
        if !(seed.starts_with("redis://")
            || seed.starts_with("rediss://")
            || seed.starts_with("${"))
        {
            cx.push(
                "invalid-url",
                loc(&o.url),
                "url",
                format!(
                    "online_store url `{}` must start with redis:// or rediss://",
                    crate::base::secrets::redact_url(seed)
                ),
            );
        }
    }
    let key_prefix = match &o.key_prefix {
        Some(p)
            if p.value.is_empty()
                || p.value
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, ':' | '{' | '}')) =>
        {
            cx.push(
                "invalid-name",
                loc(p),
                &p.value,
                format!(
                    "key_prefix `{}` must be non-empty with no spaces, `:`, `{{` or `}}`",
                    p.value
                ),
            );
            "fs".to_owned()
        }
        Some(p) => p.value.clone(),
        None => "fs".to_owned(),
    };
    let connect_timeout_ms = o
        .connect_timeout
        .as_ref()
        .and_then(|t| duration(cx, t, "connect_timeout"))
        .unwrap_or(5_000);
    let response_timeout_ms = o
        .response_timeout
        .as_ref()
        .and_then(|t| duration(cx, t, "response_timeout"))
        .unwrap_or(30_000);
    let connections = match &o.connections {
        Some(c) if c.value == 0 || c.value > 64 => {
            cx.push(
                "invalid-value",
                loc(c),
                "connections",
                format!("connections {} must be between 1 and 64", c.value),
            );
            4
        }
        Some(c) => c.value as usize,
        None => 4,
    };
    let defaults = RetryPolicy::default();
    let attempts = match &o.retry_attempts {
        Some(a) if a.value == 0 || a.value > 100 => {
            cx.push(
                "invalid-value",
                loc(a),
                "retry_attempts",
                format!("retry_attempts {} must be between 1 and 100", a.value),
            );
            defaults.attempts
        }
        Some(a) => a.value,
        None => defaults.attempts,
    };
    let max = o
        .retry_max_delay
        .as_ref()
        .and_then(|t| duration(cx, t, "retry_max_delay"))
        .map_or(defaults.max, |ms| {
            std::time::Duration::from_millis(ms as u64)
        });
    OnlineStoreConfig {
        retry: RetryPolicy {
            attempts,
            base: defaults.base.min(max),
            max,
        },
        kind,
        url: url.clone(),
        url_from_env: true,
        key_prefix,
        password_env: o.password_env.as_ref().map(|p| p.value.clone()),
        // Relative to the repo, like every other path of the repo.
        password_file: o.password_file.as_ref().map(|p| dir.join(&p.value)),
        tls_ca_file: o.tls_ca_file.as_ref().map(|p| dir.join(&p.value)),
        connect_timeout_ms,
        response_timeout_ms,
        connections,
        feast_writes: false,
    }
}

fn check_name(cx: &mut Ctx<'_>, name: &Spanned<String>, what: &str) {
    if !is_identifier(&name.value) {
        cx.push(
            "invalid-name",
            loc(name),
            &name.value,
            format!(
                "{what} name `{}` must match [A-Za-z_][A-Za-z0-9_]*",
                name.value
            ),
        );
    }
}

fn parse_dtype(cx: &mut Ctx<'_>, d: &Spanned<String>) -> Option<DType> {
    d.value
        .parse::<DType>()
        .map_err(|e| cx.push("invalid-dtype", loc(d), &d.value, e))
        .ok()
}

fn duration(cx: &mut Ctx<'_>, d: &Spanned<String>, owner: &str) -> Option<i64> {
    parse_duration_ms(&d.value)
        .map_err(|e| cx.push("invalid-duration", loc(d), owner, e))
        .ok()
}

/// Converts a YAML default to the feature's dtype, or says why it does not fit.
pub fn default_value(v: &serde_json::Value, dtype: DType) -> Result<Value, String> {
    use serde_json::Value as J;
    match dtype {
        DType::List(elem) => match v {
            J::Array(items) => items
                .iter()
                .map(|i| {
                    if i.is_null() {
                        Ok(Value::Null)
                    } else {
                        scalar_default(i, elem)
                    }
                })
                .collect::<Result<_, _>>()
                .map(Value::List),
            other => Err(format!("expected a list, got {other}")),
        },
        DType::Scalar(s) => scalar_default(v, s),
    }
}

fn scalar_default(v: &serde_json::Value, s: Scalar) -> Result<Value, String> {
    use serde_json::Value as J;
    let bad = || format!("`{v}` is not a valid {}", s.name());
    Ok(match (s, v) {
        (Scalar::Int64, J::Number(n)) => Value::Int(n.as_i64().ok_or_else(bad)?),
        (Scalar::Int32, J::Number(n)) => {
            let i = n.as_i64().ok_or_else(bad)?;
            i32::try_from(i).map_err(|_| format!("{i} does not fit int32"))?;
            Value::Int(i)
        }
        (Scalar::Float64, J::Number(n)) => Value::F64(n.as_f64().ok_or_else(bad)?),
        (Scalar::Float32, J::Number(n)) => {
            let f = n.as_f64().ok_or_else(bad)?;
            if f.is_finite() && f.abs() > f64::from(f32::MAX) {
                return Err(format!("{f} does not fit float32"));
            }
            Value::F32(f as f32)
        }
        (Scalar::Bool, J::Bool(b)) => Value::Bool(*b),
        (Scalar::String, J::String(t)) => Value::Str(t.clone()),
        (Scalar::Bytes, J::String(t)) => Value::Bytes(t.as_bytes().to_vec()),
        (Scalar::Timestamp, J::Number(n)) => Value::Int(n.as_i64().ok_or_else(bad)?),
        (Scalar::Timestamp, J::String(t)) => Value::Int(
            crate::base::time::parse_instant_us(t)
                .map_err(|e| format!("`{t}` is not a timestamp: {e}"))?,
        ),
        _ => return Err(bad()),
    })
}
