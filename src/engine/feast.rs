//! What a run does differently in Feast's layout (SPEC §3.4), beside the entity writes
//! (`layout/feast.rs`): which units a run selects, where each view's window starts, and the
//! manifests that record the windows, since there is no snapshot to commit.

use std::collections::{HashMap, HashSet};

use crate::base::error::{Error, Result};
use crate::base::time::format_us;
use crate::online::{KeySpace, Manifest, OnlineStore, RunLock};
use crate::repo::{FeastUnit, OutputLayout, Repo, Service};

/// The unit of `service` (None for an fsctl layout).
fn unit<'r>(repo: &'r Repo, service: &Service) -> Option<&'r FeastUnit> {
    let feast = repo
        .feast
        .as_ref()
        .filter(|_| repo.layout == OutputLayout::Feast)?;
    let i = repo.services.iter().position(|s| s.name == service.name)?;
    feast.units.get(i)
}

/// The units a run writes by default: one per entity.
pub(crate) fn default_units(repo: &Repo) -> Vec<&Service> {
    repo.services
        .iter()
        .filter(|s| matches!(unit(repo, s), Some(FeastUnit::Entity { .. })))
        .collect()
}

/// With `--service`: a Feast feature service's name selects its views' units and its vector's;
/// a view's unit brings the vectors that read the view, which Feast's materialize rebuilds too.
pub(crate) fn expand_selection<'r>(repo: &'r Repo, name: &str) -> Result<Option<Vec<&'r Service>>> {
    let Some(feast) = repo
        .feast
        .as_ref()
        .filter(|_| repo.layout == OutputLayout::Feast)
    else {
        return Ok(None);
    };
    let vector_units = |views: &[usize]| -> Vec<&'r Service> {
        repo.services
            .iter()
            .zip(&feast.units)
            .filter(|(_, u)| match u {
                FeastUnit::Precomputed { service } => feast.services[*service]
                    .projections
                    .iter()
                    .any(|p| p.view.is_some_and(|v| views.contains(&v))),
                _ => false,
            })
            .map(|(s, _)| s)
            .collect()
    };
    if let Some(s) = repo.service(name) {
        let mut out = vec![s];
        if matches!(unit(repo, s), Some(FeastUnit::View)) {
            out.extend(vector_units(&s.views));
        }
        return Ok(Some(out));
    }
    let Some((i, fs)) = feast
        .services
        .iter()
        .enumerate()
        .find(|(_, s)| s.name == name)
    else {
        return Ok(None);
    };
    let mut out: Vec<&Service> = fs
        .projections
        .iter()
        .filter_map(|p| p.view)
        .filter_map(|v| repo.services.iter().find(|s| s.name == repo.views[v].name))
        .collect();
    out.extend(
        repo.services
            .iter()
            .zip(&feast.units)
            .filter(|(_, u)| **u == FeastUnit::Precomputed { service: i })
            .map(|(s, _)| s),
    );
    if out.is_empty() {
        return Err(Error::usage(format!(
            "feature service `{name}` has no view that fsctl materializes (`fsctl validate` says why)"
        )));
    }
    Ok(Some(out))
}

/// The manifest a unit last committed, if any.
pub(crate) fn manifest(store: &dyn OnlineStore, keys: &KeySpace) -> Result<Option<Manifest>> {
    let key = keys.feast_manifest();
    let Some(raw) = store.get_many(std::slice::from_ref(&key))?.pop().flatten() else {
        return Ok(None);
    };
    serde_json::from_slice(&raw).map(Some).map_err(|e| {
        Error::input(format!(
            "{key}: not a manifest fsctl wrote ({e}); delete it to start the unit over"
        ))
    })
}

/// The keys a unit's manifest is recorded under: its own, and for a unit of several views,
/// each view's (so that a later run of one view continues where the entity's run ended).
pub(crate) fn manifest_keys(repo: &Repo, service: &Service) -> Vec<KeySpace> {
    let own = KeySpace::new(&repo.online.key_prefix, &repo.project, &service.name);
    let mut keys = vec![own];
    if matches!(unit(repo, service), Some(FeastUnit::Entity { .. })) {
        keys.extend(
            service.views.iter().map(|&v| {
                KeySpace::new(&repo.online.key_prefix, &repo.project, &repo.views[v].name)
            }),
        );
    }
    keys
}

/// Views a precomputed vector reads: they are always read over their whole ttl, since a
/// vector needs every view's latest row, not only the new ones.
fn read_by_vectors(repo: &Repo) -> HashSet<usize> {
    let Some(feast) = &repo.feast else {
        return HashSet::new();
    };
    feast
        .units
        .iter()
        .filter_map(|u| match u {
            FeastUnit::Precomputed { service } => Some(*service),
            _ => None,
        })
        .flat_map(|s| feast.services[s].projections.iter().filter_map(|p| p.view))
        .collect()
}

/// Where each view of `services` starts: at `start_us` when given, else where the view's last
/// committed window ended (Feast's `materialize-incremental`); a view a vector reads always
/// over its whole ttl. Views absent from the map start their ttl back.
pub(crate) fn view_starts(
    repo: &Repo,
    store: &dyn OnlineStore,
    services: &[&Service],
    start_us: Option<i64>,
    end_us: i64,
) -> Result<HashMap<usize, i64>> {
    if let Some(s) = start_us
        && s > end_us
    {
        return Err(Error::usage(format!(
            "window start {} is after its end {}",
            format_us(s),
            format_us(end_us)
        )));
    }
    let full = read_by_vectors(repo);
    let mut starts = HashMap::new();
    for s in services {
        for &v in &s.views {
            if starts.contains_key(&v) {
                continue;
            }
            if full.contains(&v) {
                // Its whole ttl, or more when `--start` reaches further back.
                let ttl_start = end_us.saturating_sub(repo.views[v].ttl_ms.saturating_mul(1000));
                if let Some(s) = start_us.filter(|&s| s < ttl_start) {
                    starts.insert(v, s);
                }
                continue;
            }
            let start = match start_us {
                Some(s) => Some(s),
                None => {
                    let keys =
                        KeySpace::new(&repo.online.key_prefix, &repo.project, &repo.views[v].name);
                    manifest(store, &keys)?
                        .map(|m| m.as_of_ms * 1000)
                        .filter(|&end| end <= end_us)
                }
            };
            if let Some(start) = start {
                starts.insert(v, start);
            }
        }
    }
    Ok(starts)
}

/// Whether a run of a unit may write (`Ok(None)`), is a no-op (the same job is committed, or
/// a run without `--start` ends where the last one did), or goes back in time (an older end,
/// refused without `force`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn before_writing(
    store: &dyn OnlineStore,
    keys: &KeySpace,
    unit: &str,
    snapshot: &str,
    explicit_start: bool,
    end_us: i64,
    force: bool,
) -> Result<Option<super::Status>> {
    let Some(last) = manifest(store, keys)? else {
        return Ok(None);
    };
    if force {
        return Ok(None);
    }
    let last_end_us = last.as_of_ms * 1000;
    if last.snapshot == snapshot || (!explicit_start && last_end_us == end_us) {
        return Ok(Some(super::Status::AlreadyCommitted));
    }
    if last_end_us > end_us {
        return Err(Error::BackInTime {
            service: unit.to_owned(),
            committed: last.snapshot,
            committed_as_of: last.as_of,
            requested_as_of: format_us(end_us),
        });
    }
    Ok(None)
}

/// Records a run's manifest (`json`) once every write was acknowledged: under the unit's key,
/// only while `lock` is held (one script, so that a run whose lease ran out records nothing),
/// then under each of its views' keys.
pub(crate) fn record(
    store: &dyn OnlineStore,
    repo: &Repo,
    service: &Service,
    json: &str,
    lock: &RunLock,
) -> Result<()> {
    if lock.is_lost() {
        return Err(Error::LockLost {
            service: service.name.clone(),
        });
    }
    let mut keys = manifest_keys(repo, service).into_iter();
    let own = keys.next().expect("the unit's own key comes first");
    store.put_feast_manifest(&own, json, Some(lock))?;
    for view in keys {
        store.put_feast_manifest(&view, json, None)?;
    }
    Ok(())
}
