//! `fsctl get`: one entity's vector read back the way serving reads it, printed with named
//! values in service order, view timestamps, ages and the remaining TTL.

use std::fmt::Write as _;

use fsctl::base::time::format_us;
use fsctl::base::value::{DType, Scalar, Value};
use fsctl::engine::read::{EntityVector, entity_key, read_entity, read_feast};

use super::{Global, print, print_json};

pub const HELP: &str = "\
Examples:
  fsctl get --service realtime_scoring --entity customer_id=1000042
  fsctl --format json get --service recommendations --entity customer_id=1000007
  fsctl get --service realtime_scoring --entity customer_id=1000042 --snapshot 0a1b2c3d

The value is everything after the first `=`, so it may hold `=` and `,`. A composite key takes
one --entity per join key (--entity bank=acme --entity account_no=7); one --entity
'bank=acme,account_no=7' is split too, when every part is KEY=VALUE of a join key.";

/// Read one entity's vector back from Redis through the committed snapshot.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Feature service to read
    #[arg(long)]
    pub service: String,
    /// Join key value as KEY=VALUE; repeat for each join key of a composite key
    #[arg(long, required = true, value_name = "KEY=VALUE")]
    pub entity: Vec<String>,
    /// Read this snapshot instead of the committed one
    #[arg(long, value_name = "ID")]
    pub snapshot: Option<String>,
}

/// `--entity` flags as (join key, value) pairs: split at the first `=`; a flag holding commas
/// is split there only when every part is `KEY=VALUE` of one of `join_keys`.
fn pairs(flags: &[String], join_keys: &[&str]) -> Result<Vec<(String, String)>, fsctl::Error> {
    let split = |flag: &str| -> Option<(String, String)> {
        let (k, v) = flag.split_once('=')?;
        Some((k.to_owned(), v.to_owned()))
    };
    let mut out = Vec::new();
    for flag in flags {
        let parts: Vec<&str> = flag.split(',').collect();
        let all_pairs = parts.len() > 1
            && parts.iter().all(|p| {
                p.split_once('=')
                    .is_some_and(|(k, _)| join_keys.contains(&k))
            });
        if all_pairs {
            out.extend(parts.into_iter().filter_map(split));
        } else {
            out.push(split(flag).ok_or_else(|| {
                fsctl::Error::usage(format!(
                    "--entity `{flag}` must be KEY=VALUE (join keys: {})",
                    join_keys.join(", ")
                ))
            })?);
        }
    }
    Ok(out)
}

pub fn run(global: &Global, args: &Args) -> anyhow::Result<()> {
    let repo = global.load_repo()?;
    if repo.layout == fsctl::repo::OutputLayout::Feast {
        if args.snapshot.is_some() {
            return Err(fsctl::Error::usage(
                "--snapshot does not apply to layout: feast (Feast's hashes have no snapshots)",
            )
            .into());
        }
        let store = fsctl::online::open(&repo.online)?;
        let v = read_feast(
            &repo,
            store.as_ref(),
            &args.service,
            &pairs(&args.entity, &[])?,
        )?;
        return if global.json() {
            print_json(&json(&v))
        } else {
            print(&text(&v))
        };
    }
    let service = fsctl::engine::service(&repo, &args.service)?;
    let join_keys: Vec<&str> = repo.entities[service.entity]
        .join_keys
        .iter()
        .map(|k| k.name.as_str())
        .collect();
    let entity = entity_key(&repo, service, &pairs(&args.entity, &join_keys)?)?;
    let client = fsctl::client::FeatureClient::from_repo(&repo)?;
    let v = read_entity(&repo, &client, service, entity, args.snapshot.as_deref())?;
    if global.json() {
        print_json(&json(&v))
    } else {
        print(&text(&v))
    }
}

/// A value as shown to a person and in JSON: timestamps in RFC 3339.
fn shown(dtype: DType, value: &Value) -> serde_json::Value {
    match (dtype, value) {
        (DType::Scalar(Scalar::Timestamp), Value::Int(us)) => format_us(*us).into(),
        _ => value.to_json(),
    }
}

fn json(v: &EntityVector) -> serde_json::Value {
    let views: Vec<serde_json::Value> = v
        .views
        .iter()
        .map(|(name, ts)| {
            serde_json::json!({
                "view": name,
                "timestamp": ts.map(format_us),
                "age_s": ts.map(|t| (v.read_at_us - t) / 1_000_000),
            })
        })
        .collect();
    // In service order, as the text output and the vector itself.
    let values: serde_json::Map<String, serde_json::Value> = v
        .values
        .iter()
        .map(|(name, dtype, value)| (name.clone(), shown(*dtype, value)))
        .collect();
    serde_json::json!({
        "service": v.service,
        "snapshot": v.snapshot,
        "fingerprint": v.fingerprint,
        "entity": v.entity,
        "key": v.key,
        "as_of": v.as_of,
        "ttl_ms": v.ttl_ms,
        "views": views,
        "values": values,
    })
}

fn text(v: &EntityVector) -> String {
    let mut out = String::new();
    if v.snapshot.is_empty() {
        let _ = writeln!(out, "{} {}  (layout feast)", v.service, v.entity);
    } else {
        let _ = writeln!(
            out,
            "{} {}  (snapshot {}, fingerprint {})",
            v.service, v.entity, v.snapshot, v.fingerprint
        );
    }
    let _ = writeln!(out, "key {}", v.key);
    let _ = writeln!(out, "as of {}, expires in {}", v.as_of, human_ms(v.ttl_ms));
    let _ = writeln!(out, "views:");
    for (name, ts) in &v.views {
        let when = ts.map_or("no row (defaults)".to_owned(), |t| {
            format!(
                "{} (age {})",
                format_us(t),
                human_ms((v.read_at_us - t) / 1000)
            )
        });
        let _ = writeln!(out, "  {name:<24} {when}");
    }
    let _ = writeln!(out, "values:");
    for (name, dtype, value) in &v.values {
        let shown = match (dtype, value) {
            (DType::Scalar(Scalar::Timestamp), Value::Int(us)) => format_us(*us),
            _ => value.to_string(),
        };
        let _ = writeln!(out, "  {name:<40} {shown}");
    }
    out
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

#[cfg(test)]
mod tests {
    use super::pairs;

    fn p(flags: &[&str], keys: &[&str]) -> Vec<(String, String)> {
        let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        pairs(&flags, keys).unwrap()
    }

    #[test]
    fn values_may_hold_commas_and_equals() {
        let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(p(&["handle=a,b"], &["handle"]), vec![kv("handle", "a,b")]);
        assert_eq!(p(&["handle=a=b"], &["handle"]), vec![kv("handle", "a=b")]);
        assert_eq!(
            p(&["a=1,b=x"], &["a", "b"]),
            vec![kv("a", "1"), kv("b", "x")]
        );
        assert_eq!(
            p(&["a=1", "b=x,y"], &["a", "b"]),
            vec![kv("a", "1"), kv("b", "x,y")]
        );
        assert!(pairs(&["nope".to_owned()], &["a"]).is_err());
    }
}
