//! `FeatureClient`: what a Rust service reads fsctl's vectors with.
//!
//! One `get_many` is one round trip per node (MGET on one server, pipelined GETs per primary on
//! a cluster) plus, at most every `retire_grace / 2`, the read of `current` and its manifest.
//! The reader rule of SPEC §3.1 is the client's: a missing key or a foreign fingerprint resolves
//! `current` again at once, and a vector whose fingerprint is not the committed manifest's is
//! never returned. Values come back named and typed in service order, with every view's event
//! time, its age and whether it is older than the view's `ttl`.
//!
//! ```no_run
//! use fsctl::client::{Entity, FeatureClient, ReadOptions};
//!
//! let client = FeatureClient::builder("redis://127.0.0.1:6379/0", "banking").build()?;
//! let v = client.get("realtime_scoring", 1000042)?;
//! println!("{:?} {:?}", v.get("customer_profile.age"), v.stale_views());
//! let many = client.get_many(
//!     "realtime_scoring",
//!     &[Entity::from(1000042), Entity::new().with("customer_id", 1000043)],
//!     &ReadOptions::default(),
//! )?;
//! # Ok::<(), fsctl::Error>(())
//! ```

use std::collections::HashMap;
use std::mem::take;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustc_hash::FxBuildHasher;

use crate::base::entity_key::{KeyPart, render_entity};
use crate::base::error::{Error, Result};
use crate::base::retry::RetryPolicy;
use crate::base::time::now_us;
use crate::base::value::{DType, Scalar, Value};
use crate::online::{self, KeySpace, Manifest, OnlineStore, Pinned, Reader};
use crate::repo::{OnlineStoreConfig, Repo, StoreKind};
use crate::vector::SchemaFingerprint;

/// One join key value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue {
    Int(i64),
    Str(String),
}

impl From<i64> for KeyValue {
    fn from(v: i64) -> KeyValue {
        KeyValue::Int(v)
    }
}

impl From<i32> for KeyValue {
    fn from(v: i32) -> KeyValue {
        KeyValue::Int(v.into())
    }
}

impl From<&str> for KeyValue {
    fn from(v: &str) -> KeyValue {
        KeyValue::Str(v.to_owned())
    }
}

impl From<String> for KeyValue {
    fn from(v: String) -> KeyValue {
        KeyValue::Str(v)
    }
}

/// The entity to read: its join key values by name (`Entity::new().with("bank", "acme")`), in
/// declared order (`Entity::values(["acme", "7"])`), or the bare value of a single join key
/// (`Entity::from(1000042)`). A value is converted to the join key's dtype: `"42"` reads an
/// int64 key, `42` a string key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity(Parts);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Parts {
    Named(Vec<(String, KeyValue)>),
    Ordered(Vec<KeyValue>),
}

impl Entity {
    /// An entity to which `with` adds join key values by name.
    pub fn new() -> Entity {
        Entity(Parts::Named(Vec::new()))
    }

    /// This entity with `join_key` set to `value`.
    pub fn with(self, join_key: &str, value: impl Into<KeyValue>) -> Entity {
        let mut named = match self.0 {
            Parts::Named(named) => named,
            Parts::Ordered(_) => Vec::new(),
        };
        named.push((join_key.to_owned(), value.into()));
        Entity(Parts::Named(named))
    }

    /// The join key values in the entity's declared order.
    pub fn values<V: Into<KeyValue>>(values: impl IntoIterator<Item = V>) -> Entity {
        Entity(Parts::Ordered(values.into_iter().map(Into::into).collect()))
    }
}

impl Default for Entity {
    fn default() -> Entity {
        Entity::new()
    }
}

impl From<i64> for Entity {
    fn from(v: i64) -> Entity {
        Entity::values([v])
    }
}

impl From<i32> for Entity {
    fn from(v: i32) -> Entity {
        Entity::values([v])
    }
}

impl From<&str> for Entity {
    fn from(v: &str) -> Entity {
        Entity::values([v])
    }
}

impl From<String> for Entity {
    fn from(v: String) -> Entity {
        Entity::values([v])
    }
}

/// What an entity without a vector reads as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Missing {
    /// `found` false and no values.
    #[default]
    None,
    /// `found` false and the service's training defaults (the manifest's schema; null where
    /// a feature declares none), the serving fallback that matches training.
    Defaults,
    /// An [`Error::VectorNotFound`] naming the key.
    Raise,
}

/// What a vector with a view older than its `ttl` reads as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stale {
    /// Returned, with the view listed by [`Features::stale_views`] (Feast: OUTSIDE_MAX_AGE).
    #[default]
    Flag,
    /// Treated as missing (see [`Missing`]); its view times are kept.
    Missing,
}

/// Options of one read.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub missing: Missing,
    pub stale: Stale,
    /// Read this snapshot instead of the committed one (no re-resolving, no cache).
    pub snapshot: Option<String>,
}

/// A service's vector layout, from a committed manifest.
#[derive(Debug)]
struct Layout {
    service: Arc<str>,
    join_keys: Vec<(String, DType)>,
    /// `view.feature` in service order.
    names: Vec<String>,
    dtypes: Vec<DType>,
    defaults: Arc<Vec<Value>>,
    /// View names in service order and their ttl in µs (0: none).
    views: Vec<(String, i64)>,
}

/// A committed snapshot as the client resolved it: `current`, its manifest and the layout the
/// manifest describes.
#[derive(Debug)]
pub struct Snapshot {
    pub id: Arc<str>,
    pub fingerprint: SchemaFingerprint,
    pub manifest: Manifest,
    pinned: Pinned,
    layout: Arc<Layout>,
    resolved_at: Instant,
}

impl Snapshot {
    fn new(pinned: Pinned, keys: &KeySpace) -> Result<Snapshot> {
        let m = &pinned.manifest;
        let corrupt = |reason: String| Error::CorruptVector {
            key: keys.manifest(&pinned.snapshot),
            reason,
        };
        let dtype = |text: &str| {
            text.parse::<DType>()
                .map_err(|e| corrupt(format!("unreadable manifest: {e}")))
        };
        let join_keys = m
            .entity
            .join_keys
            .iter()
            .map(|k| Ok((k.name.clone(), dtype(&k.dtype)?)))
            .collect::<Result<Vec<_>>>()?;
        let (mut names, mut dtypes, mut defaults) = (Vec::new(), Vec::new(), Vec::new());
        for column in &m.schema {
            let t = dtype(&column.dtype)?;
            let default = Value::from_json(t, &column.default).ok_or_else(|| {
                corrupt(format!(
                    "the default of {}.{} is not a {t}",
                    column.view, column.name
                ))
            })?;
            names.push(format!("{}.{}", column.view, column.name));
            dtypes.push(t);
            defaults.push(default);
        }
        let views = m
            .views
            .iter()
            .map(|v| (v.name.clone(), v.ttl_ms.max(0).saturating_mul(1000)))
            .collect();
        let layout = Arc::new(Layout {
            service: m.service.as_str().into(),
            join_keys,
            names,
            dtypes,
            defaults: Arc::new(defaults),
            views,
        });
        Ok(Snapshot {
            id: pinned.snapshot.as_str().into(),
            fingerprint: pinned.fingerprint,
            manifest: pinned.manifest.clone(),
            pinned,
            layout,
            resolved_at: Instant::now(),
        })
    }

    /// The data key of `entity` in this snapshot.
    pub fn key(&self, entity: &Entity) -> Result<String> {
        let prefix = self.pinned.data_prefix();
        let mut key = String::with_capacity(prefix.len() + 24);
        key.push_str(prefix);
        self.layout.render(entity, &mut key)?;
        Ok(key)
    }
}

impl Layout {
    /// Appends the `{entity}` part of a data key (SPEC §3) to `out`, values converted to the
    /// join keys' dtypes.
    fn render(&self, entity: &Entity, out: &mut String) -> Result<()> {
        let names = || {
            self.join_keys
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let wrong = |what: String| {
            Error::usage(format!(
                "entity of service `{}`: {what} (join keys: {})",
                self.service,
                names()
            ))
        };
        let values: Vec<&KeyValue> = match &entity.0 {
            Parts::Ordered(values) if values.len() == self.join_keys.len() => {
                values.iter().collect()
            }
            Parts::Ordered(values) => {
                return Err(wrong(format!(
                    "{} value(s) given for {} join key(s)",
                    values.len(),
                    self.join_keys.len()
                )));
            }
            Parts::Named(named) => {
                if let Some((unknown, _)) = named
                    .iter()
                    .find(|(n, _)| !self.join_keys.iter().any(|(k, _)| k == n))
                {
                    return Err(wrong(format!("`{unknown}` is not a join key")));
                }
                self.join_keys
                    .iter()
                    .map(|(k, _)| {
                        named
                            .iter()
                            .find(|(n, _)| n == k)
                            .map(|(_, v)| v)
                            .ok_or_else(|| wrong(format!("no value for `{k}`")))
                    })
                    .collect::<Result<_>>()?
            }
        };
        let mut parts = Vec::with_capacity(values.len());
        for (value, (name, dtype)) in values.iter().zip(&self.join_keys) {
            let as_string = *dtype == DType::Scalar(Scalar::String);
            parts.push(match (value, as_string) {
                (KeyValue::Int(v), false) => KeyPart::Int(*v),
                (KeyValue::Str(s), false) => KeyPart::Int(
                    s.trim()
                        .parse()
                        .map_err(|_| wrong(format!("`{name}` is {dtype}, not `{s}`")))?,
                ),
                (KeyValue::Str(s), true) => KeyPart::Str(s),
                // An integer for a string key is its decimal text, which is what `Int`
                // renders (digits and `-` need no escaping).
                (KeyValue::Int(v), true) => KeyPart::Int(*v),
            });
        }
        render_entity(&parts, out);
        Ok(())
    }
}

/// One entity's vector of a service, named and typed in service order.
#[derive(Debug, Clone)]
pub struct Features {
    pub service: Arc<str>,
    /// The data key; [`Features::entity`] is its last part.
    pub key: String,
    /// Where the `{entity}` part of `key` starts.
    entity_at: usize,
    pub snapshot: Arc<str>,
    /// Whether the snapshot holds a vector for the entity (and, with [`Stale::Missing`], it is
    /// not stale).
    pub found: bool,
    /// In service order ([`Features::names`]); the defaults or nothing when not found.
    /// Shared with the LRU, so a hit costs no copy.
    pub values: Arc<Vec<Value>>,
    /// Per view in service order: the event time of the row used (UTC µs); empty when the
    /// snapshot holds no vector for the entity.
    pub view_times: Arc<Vec<Option<i64>>>,
    /// When the vector was read (UTC µs), which ages are measured from.
    pub read_at_us: i64,
    layout: Arc<Layout>,
}

/// A view's row in a vector: its event time, its age at the read, and whether that age
/// exceeds the view's `ttl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewTime<'a> {
    pub view: &'a str,
    pub event_time_us: Option<i64>,
    pub age: Option<Duration>,
    pub stale: bool,
}

impl Features {
    /// The rendered `{entity}` key part.
    pub fn entity(&self) -> &str {
        &self.key[self.entity_at..]
    }

    /// `view.feature` of every value, in service order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.layout.names.iter().map(String::as_str)
    }

    /// The value of `view.feature`, if the vector has values.
    pub fn get(&self, name: &str) -> Option<&Value> {
        let i = self.layout.names.iter().position(|n| n == name)?;
        self.values.get(i)
    }

    /// (`view.feature`, dtype, value) in service order.
    pub fn features(&self) -> impl Iterator<Item = (&str, DType, &Value)> {
        self.layout
            .names
            .iter()
            .zip(&self.layout.dtypes)
            .zip(self.values.iter())
            .map(|((n, t), v)| (n.as_str(), *t, v))
    }

    /// Every view's event time, age and staleness, in service order.
    pub fn views(&self) -> impl Iterator<Item = ViewTime<'_>> {
        self.layout
            .views
            .iter()
            .zip(self.view_times.iter())
            .map(|((view, ttl_us), at)| {
                let age_us = at.map(|t| (self.read_at_us - t).max(0));
                ViewTime {
                    view,
                    event_time_us: *at,
                    age: age_us.map(|us| Duration::from_micros(us as u64)),
                    stale: age_us.is_some_and(|us| *ttl_us > 0 && us > *ttl_us),
                }
            })
    }

    /// The views whose row is older than their `ttl`.
    pub fn stale_views(&self) -> Vec<&str> {
        self.views().filter(|v| v.stale).map(|v| v.view).collect()
    }
}

/// The LRU's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub size: usize,
}

/// Decoded vectors of the hottest entities, keyed by data key (which names the snapshot), for
/// at most `ttl`, dropped for a service whose `current` moved.
struct Cache {
    ttl: Duration,
    entries: Mutex<HotMap>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// The LRU's map, hashed with Fx: its keys are our own data keys, not an attacker's, and a hit
/// is dominated by hashing the key.
type HotMap = lru::LruCache<String, Hot, FxBuildHasher>;

/// A cached vector: what a hit shares with the reads that found it.
#[derive(Clone)]
struct Hot {
    until: Instant,
    values: Arc<Vec<Value>>,
    view_times: Arc<Vec<Option<i64>>>,
}

impl Cache {
    fn lock(&self) -> MutexGuard<'_, HotMap> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live entries of `keys` (`None`: a miss), under one lock.
    fn get_all(&self, keys: &[String]) -> Vec<Option<Hot>> {
        let now = Instant::now();
        let mut entries = self.lock();
        let got: Vec<Option<Hot>> = keys
            .iter()
            .map(|key| match entries.get(key.as_str()) {
                Some(hot) if hot.until > now => Some(hot.clone()),
                Some(_) => {
                    entries.pop(key.as_str());
                    None
                }
                None => None,
            })
            .collect();
        drop(entries);
        let hits = got.iter().filter(|v| v.is_some()).count() as u64;
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses
            .fetch_add(keys.len() as u64 - hits, Ordering::Relaxed);
        got
    }

    fn put(&self, v: &Features) {
        if v.found {
            let hot = Hot {
                until: Instant::now() + self.ttl,
                values: v.values.clone(),
                view_times: v.view_times.clone(),
            };
            self.lock().put(v.key.clone(), hot);
        }
    }

    fn drop_prefix(&self, prefix: &str) {
        let mut entries = self.lock();
        let gone: Vec<String> = entries
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            entries.pop(&k);
        }
    }
}

/// Reads fsctl's vectors from Redis, Redis Cluster or Valkey. Safe to share between threads;
/// calls on one client share its connection (one per node), so a server with many request
/// threads gives each worker its own client.
pub struct FeatureClient {
    store: Box<dyn OnlineStore>,
    key_prefix: String,
    project: String,
    retire_grace: Duration,
    snapshots: Mutex<HashMap<String, Arc<Snapshot>>>,
    cache: Option<Cache>,
}

/// How to reach the store and read from it; [`FeatureClient::builder`] starts one.
#[must_use]
pub struct ClientBuilder {
    config: OnlineStoreConfig,
    project: String,
    retire_grace: Duration,
    cache: Option<(NonZeroUsize, Duration)>,
}

impl ClientBuilder {
    /// Redis Cluster (or Valkey in cluster mode); `url` then lists one or more seeds
    /// separated by `,`.
    pub fn cluster(mut self, cluster: bool) -> Self {
        self.config.kind = if cluster {
            StoreKind::RedisCluster
        } else {
            StoreKind::Redis
        };
        self
    }

    /// `online_store.key_prefix` of the repo that wrote the vectors (default `fs`).
    pub fn key_prefix(mut self, prefix: &str) -> Self {
        self.config.key_prefix = prefix.to_owned();
        self
    }

    /// The repo's `materialization.retire_grace` (default 5 min): `current` is trusted for
    /// half of it.
    pub fn retire_grace(mut self, grace: Duration) -> Self {
        self.retire_grace = grace;
        self
    }

    /// Keep up to `size` decoded vectors for `ttl` each (0: no cache, the default).
    pub fn cache(mut self, size: usize, ttl: Duration) -> Self {
        self.cache = NonZeroUsize::new(size).map(|n| (n, ttl));
        self
    }

    /// The environment variable holding the password (when the URL has none).
    pub fn password_env(mut self, var: &str) -> Self {
        self.config.password_env = Some(var.to_owned());
        self
    }

    /// The CA bundle that signs the servers' certificates (with `rediss://`).
    pub fn tls_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.tls_ca_file = Some(path.into());
        self
    }

    /// Connect and response timeouts (default 1 s each).
    pub fn timeouts(mut self, connect: Duration, response: Duration) -> Self {
        self.config.connect_timeout_ms = connect.as_millis() as i64;
        self.config.response_timeout_ms = response.as_millis() as i64;
        self
    }

    /// Retries of transient faults (default: 3 tries, 10 ms doubling to 100 ms, which fits a
    /// request's budget; a repo's client takes the repo's).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// Opens the store (a cluster reads its slot map now; one server connects on first use).
    pub fn build(self) -> Result<FeatureClient> {
        Ok(FeatureClient {
            store: online::open(&self.config)?,
            key_prefix: self.config.key_prefix,
            project: self.project,
            retire_grace: self.retire_grace,
            snapshots: Mutex::new(HashMap::new()),
            cache: self.cache.map(|(size, ttl)| Cache {
                ttl,
                entries: Mutex::new(lru::LruCache::with_hasher(size, FxBuildHasher)),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        })
    }
}

impl FeatureClient {
    /// A client of `project`'s vectors at `url` (used as given: `FSCTL_REDIS_URL` does not
    /// replace it).
    pub fn builder(url: &str, project: &str) -> ClientBuilder {
        ClientBuilder {
            config: OnlineStoreConfig {
                kind: StoreKind::Redis,
                url: url.to_owned(),
                url_from_env: false,
                key_prefix: "fs".to_owned(),
                password_env: None,
                password_file: None,
                tls_ca_file: None,
                connect_timeout_ms: 1000,
                response_timeout_ms: 1000,
                connections: 1,
                retry: RetryPolicy {
                    attempts: 3,
                    base: Duration::from_millis(10),
                    max: Duration::from_millis(100),
                },
                feast_writes: false,
            },
            project: project.to_owned(),
            retire_grace: Duration::from_secs(300),
            cache: None,
        }
    }

    /// A builder configured as `repo`'s online store is (`FSCTL_REDIS_URL` included).
    pub fn builder_for(repo: &Repo) -> ClientBuilder {
        ClientBuilder {
            config: repo.online.clone(),
            project: repo.project.clone(),
            retire_grace: repo.retire_grace(),
            cache: None,
        }
    }

    /// A client of the store `repo` materializes into.
    pub fn from_repo(repo: &Repo) -> Result<FeatureClient> {
        FeatureClient::builder_for(repo).build()
    }

    /// One entity's vector, with the default [`ReadOptions`].
    pub fn get(&self, service: &str, entity: impl Into<Entity>) -> Result<Features> {
        let mut got = self.get_many(service, &[entity.into()], &ReadOptions::default())?;
        Ok(got.pop().expect("one result per entity"))
    }

    /// The vectors of `entities`, in order, in one round trip per node.
    pub fn get_many(
        &self,
        service: &str,
        entities: &[Entity],
        options: &ReadOptions,
    ) -> Result<Vec<Features>> {
        let (mut snapshot, mut last) = match &options.snapshot {
            Some(id) => (self.pin(service, Some(id))?, true),
            None => (self.snapshot(service)?, false),
        };
        let cache = self.cache.as_ref().filter(|_| options.snapshot.is_none());
        loop {
            let prefix = snapshot.pinned.data_prefix();
            let mut keys = entities
                .iter()
                .map(|e| snapshot.key(e))
                .collect::<Result<Vec<String>>>()?;
            let hot = match cache {
                Some(c) => c.get_all(&keys),
                None => vec![None; keys.len()],
            };
            let read_at_us = now_us();
            let found = |key: String, values, view_times| Features {
                service: snapshot.layout.service.clone(),
                key,
                entity_at: prefix.len(),
                snapshot: snapshot.id.clone(),
                found: true,
                values,
                view_times,
                read_at_us,
                layout: snapshot.layout.clone(),
            };
            let mut got: Vec<Option<Features>> = hot
                .into_iter()
                .zip(&mut keys)
                .map(|(hot, key)| hot.map(|h| found(take(key), h.values, h.view_times)))
                .collect();
            let todo: Vec<usize> = (0..keys.len()).filter(|&i| got[i].is_none()).collect();
            let raw = if todo.len() == keys.len() {
                self.store.get_many(&keys)?
            } else {
                let some: Vec<String> = todo.iter().map(|&i| keys[i].clone()).collect();
                self.store.get_many(&some)?
            };
            let mut decoded = Vec::with_capacity(todo.len());
            let mut retry = None;
            for (&i, bytes) in todo.iter().zip(raw) {
                let vector = match bytes {
                    Some(bytes) => Some(checked(&bytes, &snapshot, &keys[i])?),
                    None => None,
                };
                match &vector {
                    None if !last => retry = retry.or(Some(false)),
                    Some(Err(_)) if !last => retry = Some(true),
                    _ => {}
                }
                decoded.push(vector);
            }
            if let Some(foreign) = retry {
                // SPEC §3.1: resolve `current` again at once. If it did not move, the missing
                // keys are missing; if it did, read everything from the new snapshot.
                let fresh = self.resolve(service)?;
                last = true;
                if foreign || fresh.id != snapshot.id {
                    snapshot = fresh;
                    continue;
                }
            }
            for (&i, vector) in todo.iter().zip(decoded) {
                let key = take(&mut keys[i]);
                let v = match vector {
                    Some(Ok(v)) => v,
                    Some(Err(e)) => return Err(e),
                    None => {
                        got[i] = Some(self.absent(&snapshot, key, options, None)?);
                        continue;
                    }
                };
                let features = found(key, Arc::new(v.values), Arc::new(v.view_timestamps));
                if options.stale == Stale::Missing && features.views().any(|v| v.stale) {
                    let Features {
                        key, view_times, ..
                    } = features;
                    let absent = self.absent(&snapshot, key, options, Some(view_times));
                    got[i] = Some(absent?);
                    continue;
                }
                if let Some(c) = cache {
                    c.put(&features);
                }
                got[i] = Some(features);
            }
            return Ok(got
                .into_iter()
                .map(|v| v.expect("every entity read"))
                .collect());
        }
    }

    /// The committed snapshot of `service`: the one resolved less than `retire_grace / 2` ago,
    /// or `current` read again.
    pub fn snapshot(&self, service: &str) -> Result<Arc<Snapshot>> {
        let cached = self.lock_snapshots().get(service).cloned();
        match cached {
            Some(s) if s.resolved_at.elapsed() < self.retire_grace / 2 => Ok(s),
            _ => self.resolve(service),
        }
    }

    /// `snapshot` of `service` (any, committed or not, while its manifest is there).
    pub fn snapshot_at(&self, service: &str, snapshot: &str) -> Result<Arc<Snapshot>> {
        self.pin(service, Some(snapshot))
    }

    /// Milliseconds until `key` expires (-1: never), or `None` when it is gone.
    pub fn expires_in_ms(&self, key: &str) -> Result<Option<i64>> {
        self.store.remaining_ttl_ms(key)
    }

    /// The LRU's hits, misses and size (all 0 without a cache).
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.as_ref().map_or(
            CacheStats {
                hits: 0,
                misses: 0,
                size: 0,
            },
            |c| CacheStats {
                hits: c.hits.load(Ordering::Relaxed),
                misses: c.misses.load(Ordering::Relaxed),
                size: c.lock().len(),
            },
        )
    }

    fn keys(&self, service: &str) -> KeySpace {
        KeySpace::new(&self.key_prefix, &self.project, service)
    }

    fn lock_snapshots(&self) -> MutexGuard<'_, HashMap<String, Arc<Snapshot>>> {
        self.snapshots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pin(&self, service: &str, snapshot: Option<&str>) -> Result<Arc<Snapshot>> {
        let keys = self.keys(service);
        let pinned = Reader::new(&*self.store, keys.clone()).pin(snapshot)?;
        Ok(Arc::new(Snapshot::new(pinned, &keys)?))
    }

    /// Reads `current` and its manifest now; a moved pointer drops the service's cached
    /// vectors.
    fn resolve(&self, service: &str) -> Result<Arc<Snapshot>> {
        let fresh = self.pin(service, None)?;
        let old = self
            .lock_snapshots()
            .insert(service.to_owned(), fresh.clone());
        if let Some(cache) = &self.cache
            && old.is_none_or(|o| o.id != fresh.id)
        {
            // `{prefix}:{project}:{service}:`, which every snapshot's data keys extend.
            let mut service_keys = self.keys(service).data_prefix("");
            service_keys.pop();
            cache.drop_prefix(&service_keys);
        }
        Ok(fresh)
    }

    fn absent(
        &self,
        snapshot: &Snapshot,
        key: String,
        options: &ReadOptions,
        view_times: Option<Arc<Vec<Option<i64>>>>,
    ) -> Result<Features> {
        let layout = &snapshot.layout;
        let entity_at = snapshot.pinned.data_prefix().len();
        if options.missing == Missing::Raise {
            return Err(Error::VectorNotFound {
                service: layout.service.to_string(),
                entity: key[entity_at..].to_owned(),
                snapshot: snapshot.id.to_string(),
                key,
            });
        }
        Ok(Features {
            service: layout.service.clone(),
            key,
            entity_at,
            snapshot: snapshot.id.clone(),
            found: false,
            values: match options.missing {
                Missing::Defaults => layout.defaults.clone(),
                _ => Arc::default(),
            },
            view_times: view_times.unwrap_or_default(),
            read_at_us: now_us(),
            layout: layout.clone(),
        })
    }
}

/// A decoded vector, `Err` inside when its fingerprint is foreign (which a fresh `current` may
/// explain); an undecodable vector or one whose shape is not the layout's is an error at once.
fn checked(
    bytes: &[u8],
    snapshot: &Snapshot,
    key: &str,
) -> Result<std::result::Result<crate::vector::DecodedVector, Error>> {
    let v = match online::check_apart(bytes, snapshot.fingerprint, key)? {
        Ok(v) => v,
        foreign => return Ok(foreign),
    };
    let corrupt = |reason: String| Error::CorruptVector {
        key: key.to_owned(),
        reason,
    };
    let layout = &snapshot.layout;
    if v.view_timestamps.len() != layout.views.len() || v.values.len() != layout.names.len() {
        return Err(corrupt(format!(
            "{} view times and {} values, where the manifest's schema has {} and {}",
            v.view_timestamps.len(),
            v.values.len(),
            layout.views.len(),
            layout.names.len()
        )));
    }
    Ok(Ok(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(join_keys: &[(&str, &str)]) -> Layout {
        Layout {
            service: "s".into(),
            join_keys: join_keys
                .iter()
                .map(|(n, t)| (n.to_string(), t.parse().unwrap()))
                .collect(),
            names: vec![],
            dtypes: vec![],
            defaults: Arc::default(),
            views: vec![],
        }
    }

    fn r(layout: &Layout, e: &Entity) -> Result<String> {
        let mut out = String::new();
        layout.render(e, &mut out).map(|()| out)
    }

    #[test]
    fn entities_render_as_spec_keys_whatever_form_they_are_given_in() {
        let one = layout(&[("customer_id", "int64")]);
        assert_eq!(r(&one, &Entity::from(42)).unwrap(), "42");
        assert_eq!(r(&one, &Entity::from("42")).unwrap(), "42");
        assert_eq!(
            r(&one, &Entity::new().with("customer_id", 42)).unwrap(),
            "42"
        );
        let two = layout(&[("bank", "string"), ("account_no", "int64")]);
        let named = Entity::new().with("account_no", 7).with("bank", r"a:b\c");
        assert_eq!(r(&two, &named).unwrap(), r"a\:b\\c:7");
        assert_eq!(
            r(&two, &Entity::values([r"a:b\c", "7"])).unwrap(),
            r"a\:b\\c:7"
        );
        let handle = layout(&[("handle", "string")]);
        assert_eq!(r(&handle, &Entity::from(7)).unwrap(), "7");
        assert_eq!(r(&handle, &Entity::from("a:b")).unwrap(), "a:b");
    }

    #[test]
    fn a_wrong_entity_names_the_service_and_the_join_keys() {
        let two = layout(&[("bank", "string"), ("account_no", "int64")]);
        let err = |e: Entity| r(&two, &e).unwrap_err().to_string();
        assert_eq!(
            err(Entity::from("acme")),
            "entity of service `s`: 1 value(s) given for 2 join key(s) (join keys: bank, account_no)"
        );
        assert!(err(Entity::new().with("bank", "x")).contains("no value for `account_no`"));
        assert!(err(Entity::new().with("bnk", "x")).contains("`bnk` is not a join key"));
        assert!(err(Entity::values(["x", "seven"])).contains("`account_no` is int64, not `seven`"));
    }
}
