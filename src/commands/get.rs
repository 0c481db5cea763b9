//! `fsctl get`: read one entity's vector the way serving does (through the committed pointer,
//! fingerprint checked) and print its named values, view timestamps, age and remaining TTL.

use std::fmt::Write as _;

use super::Global;
use crate::entity_key::{KeyPart, render_entity};
use crate::error::Error;
use crate::online::{KeySpace, Reader, RedisTarget};
use crate::repo::{Repo, Service};
use crate::time::{format_us, now_us};
use crate::vector::{DType, Scalar, Value};

/// Read one entity's vector back from Redis.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Feature service to read
    #[arg(long)]
    pub service: String,
    /// Join key value as KEY=VALUE (repeat, or separate with commas, for composite keys)
    #[arg(long, required = true, value_name = "KEY=VALUE", value_delimiter = ',')]
    pub entity: Vec<String>,
    /// Read this snapshot instead of the committed one
    #[arg(long, value_name = "ID")]
    pub snapshot: Option<String>,
}

/// Renders `--entity` pairs into the `{entity}` key part, checking names and types.
pub fn entity_from_pairs(
    repo: &Repo,
    service: &Service,
    pairs: &[String],
) -> Result<String, Error> {
    let entity = &repo.entities[service.entity];
    let mut values = Vec::new();
    for k in &entity.join_keys {
        let prefix = format!("{}=", k.name);
        let raw = pairs
            .iter()
            .find_map(|p| p.strip_prefix(&prefix))
            .ok_or_else(|| {
                let names: Vec<&str> = entity.join_keys.iter().map(|k| k.name.as_str()).collect();
                Error::Config(format!(
                    "--entity must give `{}` (join keys of `{}`: {})",
                    k.name,
                    entity.name,
                    names.join(", ")
                ))
            })?;
        values.push((k.dtype, raw));
    }
    for p in pairs {
        let name = p.split('=').next().unwrap_or(p);
        if !entity.join_keys.iter().any(|k| k.name == name) {
            return Err(Error::Config(format!(
                "--entity `{p}`: `{name}` is not a join key of `{}`",
                entity.name
            )));
        }
    }
    let mut parts = Vec::new();
    for (dtype, raw) in &values {
        parts.push(match dtype {
            DType::Scalar(Scalar::String) => KeyPart::Str(raw),
            _ => {
                KeyPart::Int(raw.parse().map_err(|_| {
                    Error::Config(format!("--entity value `{raw}` is not an integer"))
                })?)
            }
        });
    }
    let mut out = String::new();
    render_entity(&parts, &mut out);
    Ok(out)
}

pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let repo = global.load_repo()?;
    let service = repo
        .service(&args.service)
        .ok_or_else(|| Error::Config(format!("unknown feature service `{}`", args.service)))?;
    let entity = entity_from_pairs(&repo, service, &args.entity)?;
    let target = RedisTarget::from_store(&repo.online)?;
    let keys = KeySpace::new(&repo.online.key_prefix, &repo.project, &service.name);
    let mut reader = Reader::connect(&target, keys)?;
    let pinned = reader.pin(args.snapshot.as_deref())?;
    let expected = repo.fingerprint(service);
    if pinned.fingerprint != expected {
        return Err(Error::Refused(format!(
            "snapshot {} was written with fingerprint {}, but the repo's `{}` has {}: the definitions changed since; \
             materialize again before reading",
            pinned.committed.snapshot, pinned.fingerprint, service.name, expected
        ))
        .into());
    }
    let key = pinned.key(&entity);
    let vector = reader.get_many(&pinned, &[&entity])?.pop().flatten().ok_or_else(|| {
        Error::Refused(format!(
            "no vector for {entity} in snapshot {} (key {key}): the entity was not in the window, or its key expired",
            pinned.committed.snapshot
        ))
    })?;
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query(reader.connection())
        .map_err(|e| target.explain(&e, "PTTL"))?;
    let now = now_us();
    let manifest = pinned
        .committed
        .manifest
        .as_ref()
        .expect("pinned has a manifest");

    let views: Vec<serde_json::Value> = service
        .views
        .iter()
        .zip(&vector.view_timestamps)
        .map(|(v, ts)| {
            serde_json::json!({
                "view": repo.views[*v].name,
                "timestamp": ts.map(format_us),
                "age_s": ts.map(|t| (now - t) / 1_000_000),
            })
        })
        .collect();
    let names: Vec<String> = service
        .features
        .iter()
        .map(|sf| format!("{}.{}", repo.views[sf.view].name, repo.feature(*sf).name))
        .collect();
    if global.json() {
        let values: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .cloned()
            .zip(vector.values.iter().map(Value::to_json))
            .collect();
        let doc = serde_json::json!({
            "service": service.name,
            "snapshot": pinned.committed.snapshot,
            "fingerprint": pinned.fingerprint.to_string(),
            "entity": entity,
            "key": key,
            "as_of": manifest.as_of,
            "ttl_ms": pttl,
            "views": views,
            "values": values,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {entity}  (snapshot {}, fingerprint {})",
        service.name, pinned.committed.snapshot, pinned.fingerprint
    );
    let _ = writeln!(out, "key {key}");
    let _ = writeln!(
        out,
        "as of {}, expires in {}",
        manifest.as_of,
        human_ms(pttl)
    );
    let _ = writeln!(out, "views:");
    for (v, ts) in service.views.iter().zip(&vector.view_timestamps) {
        let when = ts.map_or("no row (defaults)".to_owned(), |t| {
            format!("{} (age {})", format_us(t), human_ms((now - t) / 1000))
        });
        let _ = writeln!(out, "  {:<24} {when}", repo.views[*v].name);
    }
    let _ = writeln!(out, "values:");
    for ((name, value), sf) in names.iter().zip(&vector.values).zip(&service.features) {
        match (repo.feature(*sf).dtype, value) {
            (DType::Scalar(Scalar::Timestamp), Value::Int(us)) => {
                let _ = writeln!(out, "  {name:<40} {}", format_us(*us));
            }
            _ => {
                let _ = writeln!(out, "  {name:<40} {value}");
            }
        }
    }
    print!("{out}");
    Ok(())
}

fn human_ms(ms: i64) -> String {
    if ms < 0 {
        return "never (no TTL)".into();
    }
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}
