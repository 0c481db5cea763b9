//! Warming before a deploy (SPEC §4 `warm`): the most popular entities get their vector in the
//! committed snapshot with the long `hot_ttl`, hottest first, in tiers. Present keys get their
//! expiry extended (never shortened); missing or expired ones are recomputed from the offline
//! data — only those entities — and written byte-identical to what `materialize` wrote.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::layout::{Layout, feast_key};
use crate::assemble::{Assembler, ColumnCounts, ViewInput};
use crate::base::error::{Error, Result};
use crate::base::time::parse_instant_us;
use crate::offline::{Partition, ViewScan, Window, top_entities};
use crate::online::{self, Expiry, KeySpace, Manifest, OnlineStore, PackedBatch, Pinned, Reader};
use crate::progress::{Of, Phase, Progress};
use crate::repo::{OutputLayout, Repo, Service};

/// What to warm and how.
#[derive(Debug, Clone, Default)]
pub struct WarmOptions {
    /// How many of the most popular entities.
    pub top_n: usize,
    /// Services to warm; empty means every service.
    pub services: Vec<String>,
    /// Popularity file (Parquet); default: the repo's `hot_entities`.
    pub from: Option<PathBuf>,
    /// Score column of the popularity file; without one, it is a request log counted per entity.
    pub score_column: Option<String>,
    /// Tier sizes, hottest first (default 1000, 10000, 100000, ...).
    pub tiers: Vec<usize>,
    /// Stop after the first tier.
    pub first_tier_only: bool,
    /// Report what would be done, write nothing.
    pub dry_run: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct TierReport {
    pub tier: usize,
    pub requested: usize,
    /// Present in Redis (extended, or already expiring as late as the hot TTL asks).
    pub present: usize,
    /// Present, and their expiry moved later to the hot TTL (or, in a dry run, would be).
    pub extended: usize,
    /// Missing or expired; recomputed from the offline data and written.
    pub computed: usize,
    /// Not in the offline data of the snapshot's window: reported, never invented.
    pub absent: usize,
    pub ms: u64,
}

#[derive(Debug, Serialize)]
pub struct WarmReport {
    pub service: String,
    pub snapshot: String,
    pub tiers: Vec<TierReport>,
    pub absent_entities: Vec<String>,
    /// Things the user should know, such as a `hot_ttl` that cannot extend any expiry.
    pub warnings: Vec<String>,
}

/// Recomputed entities encoded per parallel group (and written per round trip).
const STAGE: usize = 2048;

/// Tier boundaries: cumulative sizes ending at `n`.
fn tier_bounds(n: usize, given: &[usize]) -> Vec<usize> {
    let mut bounds: Vec<usize> = if given.is_empty() {
        std::iter::successors(Some(1000usize), |t| t.checked_mul(10))
            .take_while(|t| *t < n)
            .collect()
    } else {
        given.iter().copied().filter(|t| *t > 0 && *t < n).collect()
    };
    bounds.sort_unstable();
    bounds.dedup();
    bounds.push(n);
    bounds
}

/// Warms the selected services; `on_tier` is told about each tier as soon as it is done.
pub fn warm(
    repo: &Repo,
    store: &dyn OnlineStore,
    opts: &WarmOptions,
    progress: Progress,
    on_tier: &mut dyn FnMut(&str, &TierReport),
) -> Result<Vec<WarmReport>> {
    let services = super::select_services(repo, &opts.services)?;
    let (path, score) = match (&opts.from, &repo.hot_entities) {
        (Some(p), _) => (p.clone(), opts.score_column.clone()),
        (None, Some(h)) => (
            repo.dir.join(&h.path),
            opts.score_column.clone().or_else(|| h.score_column.clone()),
        ),
        (None, None) => {
            return Err(Error::usage(
                "no popularity source: pass --from FILE (and --score-column C) or set hot_entities in the repo",
            ));
        }
    };
    let mut reports = Vec::new();
    for s in services {
        let ranked = top_entities(
            &path,
            &repo.entities[s.entity].join_keys,
            score.as_deref(),
            opts.top_n,
        )?;
        reports.push(if repo.layout == OutputLayout::Feast {
            warm_feast(repo, s, store, &ranked, opts, progress, on_tier)?
        } else {
            warm_service(repo, s, store, &ranked, opts, progress, on_tier)?
        });
    }
    Ok(reports)
}

fn warm_service(
    repo: &Repo,
    s: &Service,
    store: &dyn OnlineStore,
    ranked: &[(String, f64)],
    opts: &WarmOptions,
    progress: Progress,
    on_tier: &mut dyn FnMut(&str, &TierReport),
) -> Result<WarmReport> {
    let keys = KeySpace::new(&repo.online.key_prefix, &repo.project, &s.name);
    let pinned = Reader::new(store, keys.clone()).pin(None)?;
    if pinned.fingerprint != repo.fingerprint(s) {
        return Err(Error::SchemaMismatch {
            service: s.name.clone(),
            snapshot: pinned.snapshot.clone(),
            committed: pinned.fingerprint.to_string(),
            repo: repo.fingerprint(s).to_string(),
        });
    }
    let manifest = &pinned.manifest;
    let (_, hot_hi) = online::expiry_bounds(manifest.as_of_ms, s.hot_ttl_ms, repo.ttl_jitter);
    let mut report = WarmReport {
        service: s.name.clone(),
        snapshot: pinned.snapshot.clone(),
        tiers: Vec::new(),
        absent_entities: Vec::new(),
        warnings: hot_ttl_warning(s).into_iter().collect(),
    };
    let phase = warm_phase(progress, s, ranked.len());
    let mut start = 0;
    for (i, end) in tier_bounds(ranked.len(), &opts.tiers)
        .into_iter()
        .enumerate()
    {
        if end <= start {
            continue;
        }
        let t = Instant::now();
        // A commit (or rollback) meanwhile would have us extend a snapshot that retirement is
        // taking away: stop, and let the deploy warm the new one.
        let now_current = store.current(&keys)?.map(|c| c.snapshot);
        if now_current.as_deref() != Some(pinned.snapshot.as_str()) {
            return Err(Error::CurrentMoved {
                service: s.name.clone(),
                from: pinned.snapshot.clone(),
                to: now_current.unwrap_or_default(),
            });
        }
        let tier: Vec<&str> = ranked[start..end].iter().map(|(k, _)| k.as_str()).collect();
        let mut tr = TierReport {
            tier: i + 1,
            requested: tier.len(),
            ..Default::default()
        };
        // 1. Present keys: extend their expiry (never shortened).
        let tier_keys: Vec<String> = tier.iter().map(|e| pinned.key(e)).collect();
        let expiries: Vec<i64> = tier_keys
            .iter()
            .map(|k| {
                online::expiry_ms(
                    k.as_bytes(),
                    manifest.as_of_ms,
                    s.hot_ttl_ms,
                    repo.ttl_jitter,
                )
            })
            .collect();
        let found = store.extend_expiry(&tier_keys, Some(&expiries), opts.dry_run)?;
        phase.inc(tier.len() as u64);
        let missing: Vec<&str> = tier
            .iter()
            .zip(&found)
            .filter_map(|(e, f)| (!f.present()).then_some(*e))
            .collect();
        tr.present = tier.len() - missing.len();
        tr.extended = found.iter().filter(|f| **f == Expiry::Extended).count();
        // 2. Missing keys: recompute only those entities, exactly as materialize did.
        if !missing.is_empty() {
            let (computed, absent) = recompute(repo, s, store, &pinned, &missing, opts.dry_run)?;
            tr.computed = computed;
            tr.absent = absent.len();
            report.absent_entities.extend(absent);
        }
        if !opts.dry_run {
            // The manifest must outlive every vector that points at it.
            store.extend_expiry(&[keys.manifest(&pinned.snapshot)], Some(&[hot_hi]), false)?;
        }
        tr.ms = t.elapsed().as_millis() as u64;
        on_tier(&s.name, &tr);
        report.tiers.push(tr);
        start = end;
        if opts.first_tier_only {
            break;
        }
    }
    phase.finish();
    Ok(report)
}

/// `warm` with `layout: feast` (SPEC §3.4): Feast's hashes of the hottest entities get the hot
/// TTL (twice `key_ttl_seconds`, jittered) from now, never a shorter one. There is no snapshot
/// to recompute missing ones into: an entity without a hash is reported absent (the next
/// materialize writes it).
fn warm_feast(
    repo: &Repo,
    s: &Service,
    store: &dyn OnlineStore,
    ranked: &[(String, f64)],
    opts: &WarmOptions,
    progress: Progress,
    on_tier: &mut dyn FnMut(&str, &TierReport),
) -> Result<WarmReport> {
    if s.hot_ttl_ms <= 0 {
        return Err(Error::usage(format!(
            "{}: online_store.key_ttl_seconds is not set, so Feast's hashes never expire and \
             there is nothing to warm",
            s.name
        )));
    }
    let mut report = WarmReport {
        service: s.name.clone(),
        snapshot: String::new(),
        tiers: Vec::new(),
        absent_entities: Vec::new(),
        warnings: Vec::new(),
    };
    let phase = warm_phase(progress, s, ranked.len());
    let now_ms = store.now_ms()?;
    let mut start = 0;
    for (i, end) in tier_bounds(ranked.len(), &opts.tiers)
        .into_iter()
        .enumerate()
    {
        if end <= start {
            continue;
        }
        let t = Instant::now();
        let tier: Vec<&str> = ranked[start..end].iter().map(|(k, _)| k.as_str()).collect();
        let keys: Vec<Vec<u8>> = tier.iter().map(|e| feast_key(repo, s.entity, e)).collect();
        let expiries: Vec<i64> = keys
            .iter()
            .map(|k| online::expiry_ms(k, now_ms, s.hot_ttl_ms, repo.ttl_jitter))
            .collect();
        let found = store.extend_expiry_of_bytes(&keys, &expiries, opts.dry_run)?;
        phase.inc(tier.len() as u64);
        let mut tr = TierReport {
            tier: i + 1,
            requested: tier.len(),
            ..Default::default()
        };
        for (e, f) in tier.iter().zip(&found) {
            if f.present() {
                tr.present += 1;
            } else {
                tr.absent += 1;
                report.absent_entities.push((*e).to_owned());
            }
        }
        tr.extended = found.iter().filter(|f| **f == Expiry::Extended).count();
        tr.ms = t.elapsed().as_millis() as u64;
        on_tier(&s.name, &tr);
        report.tiers.push(tr);
        start = end;
        if opts.first_tier_only {
            break;
        }
    }
    phase.finish();
    Ok(report)
}

/// One progress line per service warmed; each tier is reported once, through `on_tier`.
fn warm_phase(progress: Progress, s: &Service, entities: usize) -> Phase {
    progress.phase(
        "warm",
        &format!("warm {}", s.name),
        Of::Service(&s.name),
        entities as u64,
        "entities",
    )
}

/// Why `warm` can move no expiry of `s` later, when it cannot: `hot_ttl` counts from the
/// snapshot's as-of, like `online_ttl`, and a key's jitter is the same for both, so a key's hot
/// expiry is later than the one it was written with only when `hot_ttl` is longer.
fn hot_ttl_warning(s: &Service) -> Option<String> {
    (s.hot_ttl_ms <= s.online_ttl_ms).then(|| {
        format!(
            "service `{}`: hot_ttl {} is not longer than online_ttl {}, so warm extends no expiry \
             (both count from the snapshot's as-of); it only recomputes missing keys. Set hot_ttl \
             above online_ttl to keep hot entities longer",
            s.name,
            crate::repo::format_duration_ms(s.hot_ttl_ms),
            crate::repo::format_duration_ms(s.online_ttl_ms),
        )
    })
}

/// Recomputes the vectors of `entities` with the snapshot's own windows and writes them with the
/// hot TTL. Returns how many were (or would be) written and which entities the offline data
/// does not have.
fn recompute(
    repo: &Repo,
    s: &Service,
    store: &dyn OnlineStore,
    pinned: &Pinned,
    entities: &[&str],
    dry_run: bool,
) -> Result<(usize, Vec<String>)> {
    let manifest: &Manifest = &pinned.manifest;
    let only: FxHashSet<Box<str>> = entities.iter().map(|e| Box::from(*e)).collect();
    let mut needed: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for f in &s.features {
        needed.entry(f.view).or_default().insert(f.feature);
    }
    let mut scans = Vec::new();
    for &v in &s.views {
        let name = &repo.views[v].name;
        let bad_manifest = |reason: String| Error::CorruptVector {
            key: format!("manifest of snapshot {}", pinned.snapshot),
            reason,
        };
        let w = manifest
            .sources
            .get(name)
            .map(|src| &src.window)
            .ok_or_else(|| bad_manifest(format!("lacks the window of view `{name}`")))?;
        let window = Window {
            start_us: parse_instant_us(&w.start).map_err(bad_manifest)?,
            end_us: parse_instant_us(&w.end).map_err(bad_manifest)?,
        };
        let scan = ViewScan::plan(repo, v, needed[&v].iter().copied().collect(), window)?;
        let rows = scan.run(Partition::ALL, Some(&only), 0, &|_| {})?;
        scans.push((scan, rows));
    }
    let inputs = scans
        .iter()
        .map(|(scan, rows)| ViewInput { scan, rows })
        .collect();
    let assembler = Assembler::new(repo, s, inputs);
    let joined = assembler.entities();
    let found: FxHashMap<&str, usize> = joined
        .keys()
        .iter()
        .enumerate()
        .map(|(i, &k)| (k, i))
        .collect();
    let absent: Vec<String> = entities
        .iter()
        .filter(|e| !found.contains_key(**e))
        .map(|e| e.to_string())
        .collect();
    // In the order asked for (hottest first).
    let present: Vec<usize> = entities
        .iter()
        .filter_map(|e| found.get(*e).copied())
        .collect();
    if dry_run || present.is_empty() {
        return Ok((present.len(), absent));
    }
    let present = joined.select(&present);
    let mut counts = vec![ColumnCounts::default(); s.features.len()];
    // Written as the run wrote them, with the hot TTL.
    let keys = KeySpace::new(&repo.online.key_prefix, &repo.project, &s.name);
    let layout = Layout::of(
        repo,
        s,
        &keys,
        &pinned.snapshot,
        manifest.as_of_ms,
        s.hot_ttl_ms,
    );
    let batches = layout.stage(&assembler, present.all(), STAGE, &mut counts);
    let written = batches.iter().map(PackedBatch::len).sum();
    // Listed first, like a run's writes, so that retiring the snapshot finds them.
    if let Some(frame) = layout.key_list_frame(present.keys().iter().copied()) {
        let (_, last_expiry) =
            online::expiry_bounds(manifest.as_of_ms, s.hot_ttl_ms, repo.ttl_jitter);
        store.append_key_list(
            &keys,
            &pinned.snapshot,
            &frame,
            manifest.as_of_ms,
            last_expiry,
        )?;
    }
    for batch in batches {
        store.write_now(batch)?;
    }
    Ok((written, absent))
}

#[cfg(test)]
mod tests {
    use super::tier_bounds;

    #[test]
    fn tiers() {
        assert_eq!(tier_bounds(50, &[]), vec![50]);
        assert_eq!(tier_bounds(25_000, &[]), vec![1000, 10_000, 25_000]);
        assert_eq!(tier_bounds(100, &[10, 50]), vec![10, 50, 100]);
        assert_eq!(tier_bounds(100, &[500]), vec![100]);
    }
}
