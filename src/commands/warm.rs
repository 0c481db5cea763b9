//! `fsctl warm --top-n N`: before a deploy, make sure the most popular entities have their
//! vector in the committed snapshot with the long `hot_ttl`. Present keys get their expiry
//! extended (never shortened); missing or expired ones are recomputed from the offline data —
//! only those entities — and written byte-identical to what `materialize` wrote.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::Global;
use crate::assemble::{Assembler, ColumnCounts, ViewInput};
use crate::error::Error;
use crate::offline::{Partition, ViewScan, Window, top_entities};
use crate::online::{self, KeySpace, Pinned, Reader, RedisTarget};
use crate::repo::{Repo, Service};
use crate::time::parse_instant_us;

/// Pre-write the hottest entities before a deploy.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// How many of the most popular entities to warm
    #[arg(long, value_name = "N")]
    pub top_n: usize,
    /// Feature service to warm (repeatable; default: every service)
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// Popularity file (Parquet): join key columns plus a score, or a request log
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Score column in --from; without it, --from is a request log counted per entity
    #[arg(long, value_name = "COLUMN")]
    pub score_column: Option<String>,
    /// Tier sizes, hottest first (default 1000,10000,100000,...)
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    pub tiers: Vec<usize>,
    /// Stop after the first tier (a deploy can proceed once it is done)
    #[arg(long)]
    pub first_tier_only: bool,
    /// Report what would be done, write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct TierReport {
    pub tier: usize,
    pub requested: usize,
    /// Present in Redis; expiry extended to the hot TTL (or already later).
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
}

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

pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let repo = global.load_repo()?;
    let services: Vec<&Service> = if args.services.is_empty() {
        repo.services.iter().collect()
    } else {
        args.services
            .iter()
            .map(|n| {
                repo.service(n)
                    .ok_or_else(|| Error::Config(format!("unknown feature service `{n}`")))
            })
            .collect::<Result<_, _>>()?
    };
    let (path, score) = match (&args.from, &repo.hot_entities) {
        (Some(p), _) => (p.clone(), args.score_column.clone()),
        (None, Some(h)) => (
            repo.dir.join(&h.path),
            args.score_column.clone().or_else(|| h.score_column.clone()),
        ),
        (None, None) => {
            return Err(Error::Config("no popularity source: pass --from FILE (and --score-column C) or set hot_entities in the repo".into()).into());
        }
    };
    let target = RedisTarget::from_store(&repo.online)?;
    let mut reports = Vec::new();
    for s in services {
        let ranked = top_entities(
            &path,
            &repo.entities[s.entity].join_keys,
            score.as_deref(),
            args.top_n,
        )?;
        reports.push(warm_service(&repo, s, &target, &ranked, args, global)?);
    }
    if global.json() {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"command": "warm", "dry_run": args.dry_run, "services": reports})
            )?
        );
    } else if !global.quiet {
        let mut out = String::new();
        for r in &reports {
            let _ = writeln!(
                out,
                "{} (snapshot {}){}",
                r.service,
                r.snapshot,
                if args.dry_run { " [dry run]" } else { "" }
            );
            for t in &r.tiers {
                let _ = writeln!(
                    out,
                    "  tier {} ({} entities): {} extended, {} computed, {} absent from offline data, {} ms",
                    t.tier, t.requested, t.extended, t.computed, t.absent, t.ms
                );
            }
            if !r.absent_entities.is_empty() {
                let shown: Vec<&str> = r
                    .absent_entities
                    .iter()
                    .take(10)
                    .map(String::as_str)
                    .collect();
                let more = r.absent_entities.len().saturating_sub(10);
                let _ = writeln!(
                    out,
                    "  absent: {}{}",
                    shown.join(", "),
                    if more > 0 {
                        format!(" (+{more} more)")
                    } else {
                        String::new()
                    }
                );
            }
        }
        print!("{out}");
    }
    Ok(())
}

fn warm_service(
    repo: &Repo,
    s: &Service,
    target: &RedisTarget,
    ranked: &[(String, f64)],
    args: &Args,
    global: &Global,
) -> Result<WarmReport, Error> {
    let keys = KeySpace::new(&repo.online.key_prefix, &repo.project, &s.name);
    let mut reader = Reader::connect(target, keys.clone())?;
    let pinned = reader.pin(None).map_err(|e| match e {
        Error::Refused(m) if m.contains("no committed snapshot") => Error::Refused(format!(
            "cannot warm `{}`: it has no committed snapshot; run `fsctl materialize` first",
            s.name
        )),
        other => other,
    })?;
    if pinned.fingerprint != repo.fingerprint(s) {
        return Err(Error::Refused(format!(
            "cannot warm `{}`: the committed snapshot {} has fingerprint {}, the repo's definitions have {}; materialize first",
            s.name,
            pinned.committed.snapshot,
            pinned.fingerprint,
            repo.fingerprint(s)
        )));
    }
    let manifest = pinned
        .committed
        .manifest
        .clone()
        .expect("pinned has a manifest");
    let (_, hot_hi) = online::expiry_bounds(manifest.as_of_ms, s.hot_ttl_ms, repo.ttl_jitter);
    let progress = global.progress();
    let mut report = WarmReport {
        service: s.name.clone(),
        snapshot: pinned.committed.snapshot.clone(),
        tiers: Vec::new(),
        absent_entities: Vec::new(),
    };
    let mut start = 0;
    for (i, end) in tier_bounds(ranked.len(), &args.tiers)
        .into_iter()
        .enumerate()
    {
        if end <= start {
            continue;
        }
        let t = Instant::now();
        let tier: Vec<&str> = ranked[start..end].iter().map(|(k, _)| k.as_str()).collect();
        let mut tr = TierReport {
            tier: i + 1,
            requested: tier.len(),
            ..Default::default()
        };
        let phase = progress.phase(
            &format!("warm {} tier {}", s.name, i + 1),
            tier.len() as u64,
            "entities",
        );
        let con = reader.connection();
        // 1. Present keys: extend their expiry (GT never shortens), pipelined.
        let mut missing = Vec::new();
        for chunk in tier.chunks(1000) {
            // EXISTS answers presence; PEXPIREAT .. GT extends without ever shortening (its
            // 0 cannot tell "missing" from "already later", hence the pair).
            let mut pipe = redis::pipe();
            for e in chunk {
                let key = pinned.key(e);
                pipe.cmd("EXISTS").arg(&key);
                if !args.dry_run {
                    let at = online::expiry_ms(
                        key.as_bytes(),
                        manifest.as_of_ms,
                        s.hot_ttl_ms,
                        repo.ttl_jitter,
                    );
                    pipe.cmd("PEXPIREAT").arg(&key).arg(at).arg("GT").ignore();
                }
            }
            let present: Vec<i64> = pipe
                .query(con)
                .map_err(|e| target.explain(&e, "extend expiries"))?;
            for (e, exists) in chunk.iter().zip(present) {
                if exists == 1 {
                    tr.extended += 1;
                } else {
                    missing.push(*e);
                }
            }
            phase.inc(chunk.len() as u64);
        }
        // 2. Missing keys: recompute only those entities, exactly as materialize did.
        if !missing.is_empty() {
            let (computed, absent) = recompute(
                repo,
                s,
                &pinned,
                &manifest,
                &missing,
                args.dry_run,
                target,
                reader.connection(),
            )?;
            tr.computed = computed;
            tr.absent = absent.len();
            report.absent_entities.extend(absent);
        }
        if !args.dry_run {
            // The manifest must outlive every vector that points at it.
            let _: i64 = redis::cmd("PEXPIREAT")
                .arg(keys.manifest(&pinned.committed.snapshot))
                .arg(hot_hi)
                .arg("GT")
                .query(reader.connection())
                .map_err(|e| target.explain(&e, "extend manifest"))?;
        }
        phase.finish();
        tr.ms = t.elapsed().as_millis() as u64;
        progress.note(&format!(
            "fsctl: warm {} tier {}: {} extended, {} computed, {} absent",
            s.name, tr.tier, tr.extended, tr.computed, tr.absent
        ));
        report.tiers.push(tr);
        start = end;
        if args.first_tier_only {
            break;
        }
    }
    Ok(report)
}

/// Recomputes the vectors of `entities` with the snapshot's own windows and writes them with the
/// hot TTL. Returns how many were written and which entities the offline data does not have.
#[allow(clippy::too_many_arguments)]
fn recompute(
    repo: &Repo,
    s: &Service,
    pinned: &Pinned,
    manifest: &online::Manifest,
    entities: &[&str],
    dry_run: bool,
    target: &RedisTarget,
    con: &mut redis::Connection,
) -> Result<(usize, Vec<String>), Error> {
    let only: FxHashSet<Box<str>> = entities.iter().map(|e| Box::from(*e)).collect();
    let mut needed: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for f in &s.features {
        needed.entry(f.view).or_default().insert(f.feature);
    }
    let mut scans = Vec::new();
    for &v in &s.views {
        let name = &repo.views[v].name;
        let w = manifest
            .sources
            .get(name)
            .map(|src| &src.window)
            .ok_or_else(|| {
                Error::Refused(format!(
                    "manifest of snapshot {} lacks the window of view `{name}`",
                    pinned.committed.snapshot
                ))
            })?;
        let window = Window {
            start_us: parse_instant_us(&w.start).map_err(Error::Refused)?,
            end_us: parse_instant_us(&w.end).map_err(Error::Refused)?,
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
    let mut pipe = redis::pipe();
    for e in assembler.encode_chunk(present.all(), &mut counts) {
        let key = pinned.key(e.entity);
        let at = online::expiry_ms(
            key.as_bytes(),
            manifest.as_of_ms,
            s.hot_ttl_ms,
            repo.ttl_jitter,
        );
        pipe.cmd("SET")
            .arg(key)
            .arg(e.bytes)
            .arg("PXAT")
            .arg(at)
            .ignore();
    }
    pipe.query::<()>(con)
        .map_err(|e| target.explain(&e, "write warmed vectors"))?;
    Ok((present.len(), absent))
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
