//! The manifest of a run (SPEC §3): what the snapshot holds and how it was made, from the
//! job's counters and the views' scans.

use std::collections::{BTreeMap, HashMap};

use super::job::ServiceJob;
use super::partitions::ViewTotals;
use crate::base::time::format_us;
use crate::offline::ViewScan;
use crate::online::{
    EntityInfo, FileInfo, JoinKeyInfo, Manifest, SchemaColumn, SourceInfo, TtlInfo, ViewInfo,
    WindowInfo,
};

pub(crate) fn build(
    job: &ServiceJob<'_>,
    scans: &HashMap<usize, ViewScan>,
    totals: &HashMap<usize, ViewTotals>,
) -> Manifest {
    let (repo, s) = (job.repo, job.service);
    let entity = &repo.entities[s.entity];
    let mut imputed = BTreeMap::new();
    let mut nulls = BTreeMap::new();
    let mut absent = BTreeMap::new();
    for (sf, c) in s.features.iter().zip(&job.counts) {
        let name = format!("{}.{}", repo.views[sf.view].name, repo.feature(*sf).name);
        imputed.insert(name.clone(), c.imputed);
        nulls.insert(name, c.null_kept);
        absent.insert(repo.views[sf.view].name.clone(), c.absent);
    }
    let window = |start_us: i64, end_us: i64| WindowInfo {
        start: format_us(start_us),
        end: format_us(end_us),
    };
    let sources = s
        .views
        .iter()
        .map(|v| {
            let scan = &scans[v];
            let info = SourceInfo {
                source: repo.sources[repo.views[*v].source].name.clone(),
                window: window(scan.window.start_us, scan.window.end_us),
                files: scan
                    .files
                    .iter()
                    .enumerate()
                    .map(|(i, f)| FileInfo {
                        path: f.path.clone(),
                        size: f.size,
                        etag: f.etag.clone(),
                        rows: f.rows,
                        rows_read: totals[v].rows_read.get(i).copied().unwrap_or(0),
                    })
                    .collect(),
                row_groups: scan.row_groups_total,
                row_groups_skipped: scan.row_groups_skipped,
                rows_in_window: totals[v].rows_in_window,
                entities: totals[v].entities,
            };
            (repo.views[*v].name.clone(), info)
        })
        .collect();
    let start_us = s
        .views
        .iter()
        .map(|v| scans[v].window.start_us)
        .min()
        .unwrap_or(job.end_us);
    let null_entity_rows = s.views.iter().map(|v| totals[v].null_entity_rows).sum();
    Manifest {
        format: 1,
        project: repo.project.clone(),
        service: s.name.clone(),
        snapshot: job.snapshot.clone(),
        fingerprint: repo.fingerprint(s).to_string(),
        schema: s
            .features
            .iter()
            .map(|sf| {
                let f = repo.feature(*sf);
                SchemaColumn {
                    view: repo.views[sf.view].name.clone(),
                    name: f.name.clone(),
                    dtype: f.dtype.to_string(),
                    default: f
                        .default
                        .as_ref()
                        .map_or(serde_json::Value::Null, |d| d.to_json()),
                }
            })
            .collect(),
        entity: EntityInfo {
            name: entity.name.clone(),
            join_keys: entity
                .join_keys
                .iter()
                .map(|k| JoinKeyInfo {
                    name: k.name.clone(),
                    dtype: k.dtype.to_string(),
                })
                .collect(),
        },
        window: window(start_us, job.end_us),
        as_of: format_us(job.end_us),
        as_of_ms: job.end_us / 1000,
        entities: job.entities,
        keys_written: job.entities,
        bytes_written: job.bytes_written,
        null_entity_rows,
        imputed,
        nulls,
        absent,
        sources,
        ttl: TtlInfo {
            online_ms: s.online_ttl_ms,
            hot_ms: s.hot_ttl_ms,
            jitter: repo.ttl_jitter,
        },
        views: s
            .views
            .iter()
            .map(|v| ViewInfo {
                name: repo.views[*v].name.clone(),
                ttl_ms: repo.views[*v].ttl_ms,
                window: window(scans[v].window.start_us, scans[v].window.end_us),
            })
            .collect(),
        checks_skipped: job.skip_checks(),
        created_at: job.created_at.clone(),
        committed_at: String::new(),
        retired_at: None,
        readable_until: None,
        restored_from: None,
        restored_at: None,
        rolled_back_at: None,
        fsctl_version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}
