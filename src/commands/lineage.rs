//! OpenLineage run events (spec 2-0-2): with `OPENLINEAGE_URL` set, a verb that writes sends
//! START once its repo is loaded and COMPLETE or FAIL at its end, as the OpenLineage clients
//! read their environment (`OPENLINEAGE_ENDPOINT`, `OPENLINEAGE_API_KEY`,
//! `OPENLINEAGE_NAMESPACE`; the parent run from `OPENLINEAGE_PARENT_ID` and
//! `OPENLINEAGE_ROOT_PARENT_ID`, `namespace/job/runId`, as Airflow's macros set them).
//!
//! - The run id is the process's (every log line carries it); the job is `{project}.{verb}`.
//! - Inputs (COMPLETE/FAIL): every file or object the committed manifests read, named as the
//!   naming spec asks: `file` + absolute path, `s3://bucket` + key, `gs://bucket` + key.
//! - Outputs: per service, the store (`redis://host:port`, credentials never shown) and the
//!   service's keys (`{key_prefix}:{project}:{service}`), with the standard output statistics
//!   and an `fsctl_snapshot` facet (snapshot id, as-of, fingerprint, rows, keys).
//!
//! An endpoint that is down never fails the run: the first failure is reported once on stderr
//! and no further event is sent.

use std::cell::Cell;

use fsctl::engine::ServiceReport;
use fsctl::progress::{Level, emit, run_id};
use fsctl::repo::Repo;
use serde_json::{Map, Value, json};

const SCHEMA: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const PRODUCER: &str = concat!(
    "https://pypi.org/project/fsctl/",
    env!("CARGO_PKG_VERSION"),
    "/"
);
const FACET_SCHEMA: &str = concat!(
    "https://pypi.org/project/fsctl/",
    env!("CARGO_PKG_VERSION"),
    "/#SnapshotDatasetFacet"
);

pub struct Lineage {
    url: String,
    api_key: Option<String>,
    namespace: String,
    command: &'static str,
    job: Cell<Option<String>>,
    down: Cell<bool>,
}

/// The job, store and services of a run, once its repo loaded.
pub struct Target<'a> {
    pub repo: &'a Repo,
    pub services: Vec<String>,
}

impl Lineage {
    /// The lineage of this run, when `OPENLINEAGE_URL` is set.
    pub fn from_env(command: &'static str) -> Option<Lineage> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let base = var("OPENLINEAGE_URL")?;
        let endpoint = var("OPENLINEAGE_ENDPOINT").unwrap_or_else(|| "api/v1/lineage".into());
        Some(Lineage {
            url: format!(
                "{}/{}",
                base.trim_end_matches('/'),
                endpoint.trim_start_matches('/')
            ),
            api_key: var("OPENLINEAGE_API_KEY"),
            namespace: var("OPENLINEAGE_NAMESPACE").unwrap_or_else(|| "default".into()),
            command,
            job: Cell::new(None),
            down: Cell::new(false),
        })
    }

    /// START, once the repo is known.
    pub fn start(&self, target: &Target<'_>) {
        let job = format!("{}.{}", target.repo.project, self.command);
        self.job.set(Some(job.clone()));
        let outputs: Vec<Value> = target
            .services
            .iter()
            .map(|s| output(target.repo, s, None))
            .collect();
        self.send(self.event("START", &job, Map::new(), Vec::new(), outputs));
    }

    /// COMPLETE or FAIL. A run whose repo never loaded sends its START here, under the repo
    /// directory's name, so that every run has both.
    pub fn end(
        &self,
        target: Option<&Target<'_>>,
        reports: &[ServiceReport],
        result: &anyhow::Result<()>,
        repo_dir: &std::path::Path,
    ) {
        let job = match self.job.take() {
            Some(job) => job,
            None => {
                let name = repo_dir
                    .canonicalize()
                    .ok()
                    .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| "fsctl".into());
                let job = format!("{name}.{}", self.command);
                self.send(self.event("START", &job, Map::new(), Vec::new(), Vec::new()));
                job
            }
        };
        let mut facets = Map::new();
        if let Err(e) = result {
            let message = match e.downcast_ref::<super::Printed>() {
                Some(super::Printed(err)) => err.to_string(),
                None => format!("{e:#}"),
            };
            facets.insert(
                "errorMessage".into(),
                json!({
                    "_producer": PRODUCER,
                    "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
                    "message": message,
                    "programmingLanguage": "Rust",
                }),
            );
        }
        let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
        if let Some(t) = target {
            let mut seen = std::collections::BTreeSet::new();
            for m in reports.iter().filter_map(|r| r.manifest.as_ref()) {
                for f in m.sources.values().flat_map(|s| &s.files) {
                    let (namespace, name) = input_name(&t.repo.dir, &f.path);
                    if seen.insert((namespace.clone(), name.clone())) {
                        inputs.push(json!({"namespace": namespace, "name": name}));
                    }
                }
            }
            for s in &t.services {
                outputs.push(output(t.repo, s, reports.iter().find(|r| &r.service == s)));
            }
        }
        let interrupted = result.as_ref().err().is_some_and(|e| {
            matches!(
                e.downcast_ref::<fsctl::Error>(),
                Some(fsctl::Error::Interrupted)
            )
        });
        let kind = match result {
            Ok(()) => "COMPLETE",
            Err(_) if interrupted => "ABORT",
            Err(_) => "FAIL",
        };
        self.send(self.event(kind, &job, facets, inputs, outputs));
    }

    fn event(
        &self,
        kind: &str,
        job: &str,
        mut run_facets: Map<String, Value>,
        inputs: Vec<Value>,
        outputs: Vec<Value>,
    ) -> Value {
        if let Some(parent) = parent_facet() {
            run_facets.insert("parent".into(), parent);
        }
        json!({
            "eventType": kind,
            "eventTime": fsctl::base::time::format_us(fsctl::base::time::now_us()),
            "producer": PRODUCER,
            "schemaURL": SCHEMA,
            "run": {"runId": run_id(), "facets": run_facets},
            "job": {
                "namespace": self.namespace,
                "name": job,
                "facets": {"jobType": {
                    "_producer": PRODUCER,
                    "_schemaURL": "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
                    "processingType": "BATCH",
                    "integration": "FSCTL",
                    "jobType": "JOB",
                }},
            },
            "inputs": inputs,
            "outputs": outputs,
        })
    }

    fn send(&self, event: Value) {
        if self.down.get() {
            return;
        }
        let mut headers = vec![("Content-Type", "application/json".to_owned())];
        if let Some(key) = &self.api_key {
            headers.push(("Authorization", format!("Bearer {key}")));
        }
        let body = event.to_string().into_bytes();
        if let Err(e) = fsctl::base::http::send("POST", &self.url, &headers, body) {
            self.down.set(true);
            emit(
                Level::Warn,
                &format!("warning: OpenLineage events not sent: {e}"),
                &format!("OpenLineage events not sent: {e}"),
                Map::new(),
            );
        }
    }
}

/// The output dataset of `service`: the store and its keys; with the run's figures when it
/// has a report.
fn output(repo: &Repo, service: &str, report: Option<&ServiceReport>) -> Value {
    let mut dataset = json!({
        "namespace": store_namespace(&fsctl::online::effective_url(&repo.online)),
        "name": format!("{}:{}:{service}", repo.online.key_prefix, repo.project),
    });
    if let Some(r) = report {
        dataset["outputFacets"] = json!({"outputStatistics": {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet",
            "rowCount": r.keys_written,
            "size": r.bytes_written,
        }});
        let mut snapshot = json!({
            "_producer": PRODUCER,
            "_schemaURL": FACET_SCHEMA,
            "status": r.status,
            "snapshot": r.snapshot,
            "fingerprint": r.fingerprint,
            "entities": r.entities,
            "keysWritten": r.keys_written,
            "bytesWritten": r.bytes_written,
            "rowsRead": super::metrics::rows_read(r),
        });
        if let Some(m) = &r.manifest {
            snapshot["asOf"] = m.as_of.clone().into();
        }
        if let Some(s) = r.shard {
            snapshot["shard"] = s.to_string().into();
        }
        dataset["facets"] = json!({ "fsctl_snapshot": snapshot });
    }
    dataset
}

/// `redis://host:port` of the store's first URL, without credentials, database or options.
fn store_namespace(urls: &str) -> String {
    let first = fsctl::base::secrets::split_urls(urls)
        .first()
        .copied()
        .unwrap_or("")
        .trim();
    let (scheme, rest) = first.split_once("://").unwrap_or(("redis", first));
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

/// A source file's dataset, per the naming spec: `s3://bucket` and the key (`s3a` too),
/// `gs://bucket` and the key, `wasbs://container@account.blob.core.windows.net` and the path for
/// Azure (the account from the environment, as the store took it), or `file` and the absolute
/// path.
fn input_name(repo_dir: &std::path::Path, path: &str) -> (String, String) {
    if let Some((scheme, rest)) = path.split_once("://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let account = ["AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|a| !a.is_empty()));
        let namespace = match (scheme, account) {
            ("s3a", _) => format!("s3://{bucket}"),
            ("az" | "azure", Some(account)) => {
                format!("wasbs://{bucket}@{account}.blob.core.windows.net")
            }
            _ => format!("{scheme}://{bucket}"),
        };
        return (namespace, key.to_owned());
    }
    let p = repo_dir.join(path);
    let p = p.canonicalize().unwrap_or(p);
    ("file".into(), p.to_string_lossy().into_owned())
}

/// The `parent` run facet from `OPENLINEAGE_PARENT_ID` (and its root), `namespace/job/runId`
/// (read from the right: a namespace may hold `/`), when set and well formed; a malformed one is
/// reported and left out, so that the events themselves stay valid.
fn parent_facet() -> Option<Value> {
    let ids = |var: &str| -> Option<(String, String, String)> {
        let text = std::env::var(var).ok()?;
        let text = text.trim();
        let parsed = text.rsplit_once('/').and_then(|(rest, run)| {
            let (namespace, job) = rest.rsplit_once('/')?;
            (!namespace.is_empty() && !job.is_empty() && is_uuid(run))
                .then(|| (namespace.to_owned(), job.to_owned(), run.to_owned()))
        });
        if parsed.is_none() {
            emit(
                Level::Warn,
                &format!(
                    "warning: {var} is not namespace/job/runId (a UUID); the parent run is left out"
                ),
                &format!("{var} is not namespace/job/runId (a UUID); the parent run is left out"),
                Map::new(),
            );
        }
        parsed
    };
    let (namespace, name, run) = ids("OPENLINEAGE_PARENT_ID")?;
    let mut facet = json!({
        "_producer": PRODUCER,
        "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
        "run": {"runId": run},
        "job": {"namespace": namespace, "name": name},
    });
    if std::env::var_os("OPENLINEAGE_ROOT_PARENT_ID").is_some()
        && let Some((namespace, name, run)) = ids("OPENLINEAGE_ROOT_PARENT_ID")
    {
        facet["root"] = json!({
            "run": {"runId": run},
            "job": {"namespace": namespace, "name": name},
        });
    }
    Some(facet)
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names_follow_the_naming_spec() {
        assert_eq!(
            store_namespace("redis://:s3cret@cache.internal:6380/2?protocol=resp3"),
            "redis://cache.internal:6380"
        );
        assert_eq!(
            store_namespace("rediss://u:p@a:1,rediss://b:2"),
            "rediss://a:1"
        );
        assert_eq!(
            input_name(
                std::path::Path::new("/repo"),
                "s3://bucket/features/a.parquet"
            ),
            ("s3://bucket".into(), "features/a.parquet".into())
        );
        assert_eq!(
            input_name(std::path::Path::new("/repo"), "s3a://bucket/a.parquet"),
            ("s3://bucket".into(), "a.parquet".into())
        );
        assert!(is_uuid("01a2533d-0765-72a1-98c2-9bbd2230a2f2"));
        assert!(!is_uuid("01a2533d-0765-72a1-98c2"));
        assert!(!is_uuid("run-1"));
        assert_eq!(
            input_name(std::path::Path::new("/nonexistent-repo"), "data/a.parquet"),
            ("file".into(), "/nonexistent-repo/data/a.parquet".into())
        );
    }
}
