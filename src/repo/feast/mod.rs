//! A Feast project read as it stands (SPEC §1, FEAST.md §1): Feast's `feature_store.yaml`,
//! expanded like Feast expands it, and the definitions from its `registry.db`, turned into the
//! same resolved `Repo` as fsctl's own YAML. The registry is only ever read.
//!
//! What fsctl cannot compute (on-demand views, stream-only and non-file sources, value types
//! outside fsctl's dtypes, disabled views) becomes a warning naming the object and why, and is
//! left out; whatever needs none of it still materializes.
//!
//! With `layout: feast` (the default here) the repo's services are the units Feast writes: one
//! per online feature view (named after the view, like `feast materialize --views`), and one
//! per `precompute_online` service (`__precomputed__<service>`). With `layout: fsctl` they are
//! Feast's feature services, each a fingerprinted vector like any fsctl service.

mod config;
pub mod registry;

use std::collections::HashMap;
use std::path::Path;

use self::registry::{DataSource, Registry, source_type};
use super::model::*;
use super::{Loaded, REPO_FILE};
use crate::base::error::Error;
use crate::base::finding::Finding;
use crate::base::value::{DType, Scalar};
pub use config::is_feast_project;

/// The entity Feast gives the views declared without entities.
const DUMMY_ENTITY: &str = "__dummy";

/// The unit writing every view of one entity (`entity:driver`).
pub fn group_name(entity: &str) -> String {
    format!("entity:{entity}")
}

/// The pseudo-view name Feast stores a service's precomputed vector under (FEAST.md §2.2).
pub fn precomputed_name(service: &str) -> String {
    format!("__precomputed__{service}")
}

/// Reads the Feast project in `dir` whose `feature_store.yaml` holds `text`.
pub(super) fn load_all(dir: &Path, text: &str) -> Result<Loaded, Error> {
    let file = dir.join(REPO_FILE);
    let mut findings = Vec::new();
    let Some(cfg) = config::parse(text, &file, &mut findings) else {
        return Ok(Loaded {
            repo: None,
            findings,
            sound_views: Vec::new(),
            sound_services: Vec::new(),
        });
    };
    // A registry URL may hold credentials (never printed).
    let registry_shown = crate::base::secrets::redact_url(&cfg.registry);
    let bytes = match config::read_registry(&cfg.registry, dir) {
        Ok(b) => b,
        Err(why) => {
            let why = why.replace(&cfg.registry, &registry_shown);
            findings.push(Finding::error("feast-registry", &file, why).named(registry_shown));
            return Ok(Loaded {
                repo: None,
                findings,
                sound_views: Vec::new(),
                sound_services: Vec::new(),
            });
        }
    };
    let registry = match registry::decode(&bytes) {
        Ok(r) => r,
        Err(e) => {
            findings.push(
                Finding::error(
                    "feast-registry",
                    &file,
                    format!(
                        "registry {registry_shown} is not a Feast registry (feast.core.Registry): {e}"
                    ),
                )
                .named(registry_shown),
            );
            return Ok(Loaded {
                repo: None,
                findings,
                sound_views: Vec::new(),
                sound_services: Vec::new(),
            });
        }
    };
    let mut t = Translate {
        cfg: &cfg,
        dir,
        file: &file,
        findings: &mut findings,
        entities: Vec::new(),
        sources: Vec::new(),
        views: Vec::new(),
    };
    let repo = t.repo(&registry);
    let n_views = repo.views.len();
    let n_services = repo.services.len();
    Ok(Loaded {
        repo: Some(repo),
        findings,
        sound_views: vec![true; n_views],
        sound_services: vec![true; n_services],
    })
}

struct Translate<'a> {
    cfg: &'a config::FeastConfig,
    dir: &'a Path,
    file: &'a Path,
    findings: &'a mut Vec<Finding>,
    entities: Vec<Entity>,
    sources: Vec<Source>,
    views: Vec<View>,
}

/// What a Feast view became: fsctl's view index, or why it is left out.
enum ViewFate {
    Computed(usize),
    Offline,
    Refused(String),
}

impl Translate<'_> {
    fn leave_out(&mut self, kind: &str, name: &str, why: &str) {
        self.findings.push(
            Finding::error(
                "feast-unsupported",
                self.file,
                format!("{kind} `{name}` is not materialized: {why}"),
            )
            .named(name)
            .warning(),
        );
    }

    fn repo(&mut self, registry: &Registry) -> Repo {
        let project = self.cfg.project.clone();
        let mine = |p: &str| p == project;
        for odfv in &registry.on_demand_feature_views {
            if let Some(s) = odfv.spec.as_ref().filter(|s| mine(&s.project)) {
                self.leave_out(
                    "on-demand feature view",
                    &s.name,
                    "Feast computes it at request time from a Python function; Feast still serves \
                     it (write_to_online_store views are written by Feast itself)",
                );
            }
        }
        for sfv in &registry.stream_feature_views {
            if let Some(s) = sfv.spec.as_ref().filter(|s| mine(&s.project)) {
                let source = s
                    .stream_source
                    .as_ref()
                    .map(|d| format!(" (source `{}`, {})", d.name, source_type::name(d.r#type)))
                    .unwrap_or_default();
                self.leave_out(
                    "stream feature view",
                    &s.name,
                    &format!("it is fed by a stream{source}, which fsctl does not read"),
                );
            }
        }
        let mut fates: HashMap<String, ViewFate> = HashMap::new();
        for fv in &registry.feature_views {
            let Some(spec) = fv.spec.as_ref().filter(|s| mine(&s.project)) else {
                continue;
            };
            let fate = self.view(spec);
            if let ViewFate::Refused(why) = &fate {
                self.leave_out("feature view", &spec.name, why);
            }
            fates.insert(spec.name.clone(), fate);
        }

        let mut services = Vec::new();
        for fs in &registry.feature_services {
            let Some(spec) = fs.spec.as_ref().filter(|s| mine(&s.project)) else {
                continue;
            };
            services.push(self.service(spec, &fates));
        }
        services.sort_by(|a, b| a.name.cmp(&b.name));

        let key_ttl_ms = self.cfg.key_ttl_seconds.map(|s| s * 1000);
        let (units, fsctl_services) = match self.cfg.layout {
            OutputLayout::Feast => self.feast_units(&services, key_ttl_ms),
            OutputLayout::Fsctl => (Vec::new(), self.fsctl_services(&services)),
        };
        let c = self.cfg;
        Repo {
            dir: self.dir.to_path_buf(),
            project,
            online: c.online.clone(),
            ttl_jitter: c.ttl_jitter,
            compress_threshold_bytes: c.compress_threshold_bytes,
            lock_lease_ms: c.lock_lease_ms,
            keep_snapshots: c.keep_snapshots,
            retire_grace_ms: c.retire_grace_ms,
            entities: std::mem::take(&mut self.entities),
            sources: std::mem::take(&mut self.sources),
            views: std::mem::take(&mut self.views),
            services: fsctl_services,
            hot_entities: None,
            layout: c.layout,
            feast: Some(FeastProject {
                registry: c.registry.clone(),
                entity_key_version: c.entity_key_version,
                key_ttl_ms,
                services,
                units,
            }),
        }
    }

    /// Resolves one feature view into an fsctl view (with its source and entity), or says why
    /// it cannot be computed.
    fn view(&mut self, spec: &registry::FeatureViewSpec) -> ViewFate {
        if spec.disabled {
            return ViewFate::Refused("it is disabled".into());
        }
        if !spec.online {
            return ViewFate::Offline;
        }
        if spec.feature_transformation.is_some() || !spec.source_views.is_empty() {
            return ViewFate::Refused(
                "it computes its features with a transformation or from other views".into(),
            );
        }
        let Some(batch) = spec.batch_source.as_ref() else {
            return ViewFate::Refused("it has no batch source".into());
        };
        let file = match file_source(batch) {
            Ok(f) => f,
            Err(why) => return ViewFate::Refused(why),
        };
        // A view without entities is keyed by Feast's `__dummy_id` = "" (FEAST.md §3.1): one
        // entity with no join key here, whose Feast key the layout writes.
        let entityless = spec.entities.iter().all(|e| e == DUMMY_ENTITY);
        // Key types come from the view's entity columns (an Entity may carry none).
        let mut keys = Vec::new();
        for c in spec.entity_columns.iter().filter(|_| !entityless) {
            match key_dtype(c.value_type) {
                Some(dtype) => keys.push(JoinKey {
                    name: c.name.clone(),
                    dtype,
                }),
                None => {
                    return ViewFate::Refused(format!(
                        "join key `{}` has value type {}, which fsctl cannot key by",
                        c.name,
                        value_type_name(c.value_type)
                    ));
                }
            }
        }
        // Feast sorts join keys by name in the key; fsctl's entity keeps them in that order.
        keys.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let mut features = Vec::new();
        for f in &spec.features {
            match feature_dtype(f.value_type) {
                Some(dtype) => features.push(Feature {
                    name: f.name.clone(),
                    dtype,
                    default: None,
                    checks: FeatureChecks::default(),
                }),
                None => {
                    return ViewFate::Refused(format!(
                        "feature `{}` has value type {}, which fsctl does not compute",
                        f.name,
                        value_type_name(f.value_type)
                    ));
                }
            }
        }
        let entity = match self.entities.iter().position(|e| {
            e.join_keys.len() == keys.len()
                && e.join_keys
                    .iter()
                    .zip(&keys)
                    .all(|(a, b)| a.name == b.name && a.dtype == b.dtype)
        }) {
            Some(i) => i,
            None => {
                let mut names: Vec<&str> = spec.entities.iter().map(String::as_str).collect();
                names.sort_unstable();
                self.entities.push(Entity {
                    name: names.join(","),
                    join_keys: keys,
                });
                self.entities.len() - 1
            }
        };
        let path = file
            .file_options
            .as_ref()
            .map_or(String::new(), |o| o.uri.clone());
        let source = Source {
            name: if batch.name.is_empty() {
                format!("{}_source", spec.name)
            } else {
                batch.name.clone()
            },
            path,
            // Feast maps its time columns back through field_mapping as it does features
            // (utils.py `_get_column_names`).
            timestamp_field: source_column(file, &file.timestamp_field),
            created_timestamp_column: Some(file.created_timestamp_column.as_str())
                .filter(|c| !c.is_empty())
                .map(|c| source_column(file, c)),
            field_mapping: {
                let mut m: Vec<(String, String)> = file
                    .field_mapping
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                m.sort();
                m
            },
            storage_options: Vec::new(),
            shared_storage_options: Vec::new(),
        };
        self.sources.push(source);
        let ttl_ms = spec.ttl.map_or(0, |d| d.millis()).min(NO_TTL_MS);
        self.views.push(View {
            name: spec.name.clone(),
            entity,
            source: self.sources.len() - 1,
            // No ttl (0) is no limit; the window then starts at the epoch.
            ttl_ms: if ttl_ms > 0 { ttl_ms } else { NO_TTL_MS },
            features,
            min_entities: None,
        });
        ViewFate::Computed(self.views.len() - 1)
    }

    fn service(
        &mut self,
        spec: &registry::FeatureServiceSpec,
        fates: &HashMap<String, ViewFate>,
    ) -> FeastService {
        let mut projections = Vec::new();
        let mut missing = Vec::new();
        for p in &spec.features {
            let view = match fates.get(&p.feature_view_name) {
                Some(ViewFate::Computed(v)) => Some(*v),
                _ => {
                    missing.push(p.feature_view_name.clone());
                    None
                }
            };
            let mut name_to_use = if p.feature_view_name_alias.is_empty() {
                p.feature_view_name.clone()
            } else {
                p.feature_view_name_alias.clone()
            };
            if let Some(v) = p.version_tag {
                name_to_use.push_str(&format!("@v{v}"));
            }
            let features = p
                .feature_columns
                .iter()
                .map(|c| {
                    let ix = view
                        .and_then(|v| self.views[v].features.iter().position(|f| f.name == c.name));
                    (c.name.clone(), ix)
                })
                .collect();
            projections.push(FeastProjection {
                view,
                view_name: p.feature_view_name.clone(),
                name_to_use,
                features,
            });
        }
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            self.leave_out(
                "feature service",
                &spec.name,
                &format!(
                    "it needs {} that fsctl does not materialize; its other views are written",
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        FeastService {
            name: spec.name.clone(),
            projections,
            precompute: spec.precompute_online,
            complete: missing.is_empty(),
        }
    }

    /// `layout: feast`: one unit per entity (join-key set) writing all its views and the
    /// vectors of the precompute services keyed by it, one EVALSHA per entity (what a run
    /// writes by default); then one unit per view and one per precompute service, for
    /// `--service`.
    fn feast_units(
        &mut self,
        services: &[FeastService],
        key_ttl_ms: Option<i64>,
    ) -> (Vec<FeastUnit>, Vec<Service>) {
        let ttl = key_ttl_ms.unwrap_or(0);
        let unit = |name: String, entity: usize, views: Vec<usize>, all: &[View]| Service {
            name,
            entity,
            features: views
                .iter()
                .flat_map(|&v| {
                    (0..all[v].features.len())
                        .map(move |feature| ServiceFeature { view: v, feature })
                })
                .collect(),
            views,
            online_ttl_ms: ttl,
            hot_ttl_ms: ttl * 2,
        };
        // Which services get a vector, under which entity.
        let mut vectors: Vec<(usize, usize)> = Vec::new();
        for (i, s) in services.iter().enumerate() {
            if !s.precompute {
                continue;
            }
            if !s.complete {
                // Feast fills the views fsctl leaves out, and builds its vector from them:
                // fsctl's, without them, would replace a complete one.
                self.leave_out(
                    "precomputed vector of feature service",
                    &s.name,
                    "it needs a view that fsctl does not materialize; Feast's own precompute \
                     keeps writing it",
                );
                continue;
            }
            if let Some(first) = s.projections.first().and_then(|p| p.view) {
                vectors.push((i, self.views[first].entity));
            }
        }
        let mut units = Vec::new();
        let mut out = Vec::new();
        for (e, entity) in self.entities.iter().enumerate() {
            let views: Vec<usize> = (0..self.views.len())
                .filter(|&v| self.views[v].entity == e)
                .collect();
            if views.is_empty() {
                continue;
            }
            out.push(unit(group_name(&entity.name), e, views, &self.views));
            units.push(FeastUnit::Entity {
                vectors: vectors
                    .iter()
                    .filter(|(_, ve)| *ve == e)
                    .map(|(i, _)| *i)
                    .collect(),
            });
        }
        for v in 0..self.views.len() {
            out.push(unit(
                self.views[v].name.clone(),
                self.views[v].entity,
                vec![v],
                &self.views,
            ));
            units.push(FeastUnit::View);
        }
        for &(i, entity) in &vectors {
            // Feast writes a vector for every entity any view of this key set holds
            // (FEAST.md §2.2): the unit joins them all, and the vector takes the service's.
            let views: Vec<usize> = (0..self.views.len())
                .filter(|&v| self.views[v].entity == entity)
                .collect();
            out.push(unit(
                precomputed_name(&services[i].name),
                entity,
                views,
                &self.views,
            ));
            units.push(FeastUnit::Precomputed { service: i });
        }
        (units, out)
    }

    /// `layout: fsctl`: each Feast service whose views share one entity and are all
    /// materialized is an fsctl service.
    fn fsctl_services(&mut self, services: &[FeastService]) -> Vec<Service> {
        let mut out = Vec::new();
        for s in services {
            if !s.complete || s.projections.is_empty() {
                continue;
            }
            let mut features: Vec<ServiceFeature> = Vec::new();
            let mut views = Vec::new();
            for p in &s.projections {
                let v = p.view.expect("complete");
                if !views.contains(&v) {
                    views.push(v);
                }
                for (_, ix) in &p.features {
                    if let Some(feature) = ix {
                        let sf = ServiceFeature {
                            view: v,
                            feature: *feature,
                        };
                        if !features.contains(&sf) {
                            features.push(sf);
                        }
                    }
                }
            }
            let entity = self.views[views[0]].entity;
            if views.iter().any(|&v| self.views[v].entity != entity) {
                self.leave_out(
                    "feature service",
                    &s.name,
                    "its views are keyed by different entities, and an fsctl vector has one \
                     entity (layout: feast writes it)",
                );
                continue;
            }
            let longest = views
                .iter()
                .map(|&v| self.views[v].ttl_ms)
                .max()
                .unwrap_or(0);
            let online_ttl_ms = match self.cfg.key_ttl_seconds {
                Some(s) => s * 1000,
                None if longest < NO_TTL_MS => 2 * longest,
                None => 2 * 86_400_000,
            };
            out.push(Service {
                name: s.name.clone(),
                entity,
                features,
                views,
                online_ttl_ms,
                hot_ttl_ms: 2 * online_ttl_ms,
            });
        }
        out
    }
}

/// A view's ttl when Feast's is 0 (none): its default window reaches a century back.
pub const NO_TTL_MS: i64 = 100 * 365 * 86_400_000;

/// The file source a view reads: its own, or the batch source of its push source.
fn file_source(source: &DataSource) -> Result<&DataSource, String> {
    let s = match source.r#type {
        source_type::PUSH_SOURCE => match source.batch_source.as_deref() {
            Some(b) => b,
            None => return Err(format!("push source `{}` has no batch source", source.name)),
        },
        _ => source,
    };
    if s.r#type != source_type::BATCH_FILE {
        return Err(format!(
            "its source `{}` is a {} source; fsctl reads file (Parquet) sources",
            s.name,
            source_type::name(s.r#type)
        ));
    }
    match &s.file_options {
        Some(o)
            if o.file_format
                .as_ref()
                .is_none_or(|f| f.delta_format.is_none()) =>
        {
            Ok(s)
        }
        Some(_) => Err(format!("its source `{}` is a Delta table", s.name)),
        None => Err(format!("its source `{}` names no file", s.name)),
    }
}

/// The source column that `field_mapping` maps to `name`, else `name`.
fn source_column(source: &DataSource, name: &str) -> String {
    source
        .field_mapping
        .iter()
        .find(|(_, to)| *to == name)
        .map_or(name, |(from, _)| from.as_str())
        .to_owned()
}

/// `feast.types.ValueType` of a join key, as an fsctl dtype (FEAST.md §3.1).
fn key_dtype(t: i32) -> Option<DType> {
    Some(DType::Scalar(match t {
        2 => Scalar::String,
        3 => Scalar::Int32,
        4 => Scalar::Int64,
        _ => return None,
    }))
}

/// `feast.types.ValueType` of a feature, as an fsctl dtype.
pub fn feature_dtype(t: i32) -> Option<DType> {
    let scalar = |t| {
        Some(match t {
            1 => Scalar::Bytes,
            2 => Scalar::String,
            3 => Scalar::Int32,
            4 => Scalar::Int64,
            5 => Scalar::Float64,
            6 => Scalar::Float32,
            7 => Scalar::Bool,
            8 => Scalar::Timestamp,
            _ => return None,
        })
    };
    match t {
        1..=8 => scalar(t).map(DType::Scalar),
        11..=18 => scalar(t - 10).map(DType::List),
        _ => None,
    }
}

/// The name of a `feast.types.ValueType`, for messages.
fn value_type_name(t: i32) -> String {
    let name = match t {
        0 => "INVALID (unset)",
        1 => "BYTES",
        2 => "STRING",
        3 => "INT32",
        4 => "INT64",
        5 => "DOUBLE",
        6 => "FLOAT",
        7 => "BOOL",
        8 => "UNIX_TIMESTAMP",
        11 => "BYTES_LIST",
        12 => "STRING_LIST",
        13 => "INT32_LIST",
        14 => "INT64_LIST",
        15 => "DOUBLE_LIST",
        16 => "FLOAT_LIST",
        17 => "BOOL_LIST",
        18 => "UNIX_TIMESTAMP_LIST",
        19 => "NULL",
        20 => "MAP",
        21 => "MAP_LIST",
        22..=29 => "a set type",
        32 => "JSON",
        33 => "JSON_LIST",
        34 => "STRUCT",
        35 => "STRUCT_LIST",
        36..=41 => "a UUID type",
        42 | 43 => "VALUE_LIST",
        44..=46 => "DECIMAL",
        47 => "SCALAR_MAP",
        48 => "ZONED_TIMESTAMP",
        _ => return format!("{t}"),
    };
    name.to_owned()
}
