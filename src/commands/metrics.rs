//! A run's metrics, at the end of every verb that writes, whether it succeeds or fails: as a
//! node-exporter textfile (`--metrics-file FILE`, `materialize` and `commit`), and pushed to a
//! Prometheus Pushgateway (`FSCTL_PUSHGATEWAY_URL`). The last success and the committed
//! snapshot's as-of of a service are written only when it committed, and kept otherwise (carried
//! over from the file; left in the gateway), so that a failed run never hides the last good one:
//! an alert on `time() - fsctl_snapshot_as_of_timestamp_seconds` fires on the right thing.
//!
//! In the gateway, each service has two groups:
//! - `job=fsctl, project, service`: the store's state, pushed (POST, which replaces only the
//!   metrics it names) only when the verb committed (or rolled back):
//!   `fsctl_last_success_timestamp_seconds`, `fsctl_snapshot_as_of_timestamp_seconds`;
//! - `job=fsctl, project, service, command` (PUT: replaced whole): the last run of that verb,
//!   with the exit code of the service (0 when it committed, else the run's): when it ended and how,
//!   its exit code, duration, phases, rows, entities, keys, bytes and retries. A `warm` or `gc`
//!   then never replaces what the last `materialize` reported; a shard's run (`--shard I/N`)
//!   is its own group, with `shard`.

use std::path::Path;
use std::time::Instant;

use fsctl::base::prometheus::{gauge, labels};
use fsctl::engine::{ServiceReport, Status};

use super::Printed;

/// What a run leaves for its metrics: the verb, the project when the repo loaded, and each
/// service's report.
#[derive(Debug, Default)]
pub struct RunMetrics {
    pub command: &'static str,
    pub project: Option<String>,
    /// The services the run was asked for (known once the repo loaded).
    pub services: Vec<String>,
    pub reports: Vec<ServiceReport>,
    /// `I/N` of a sharded run: its run group is the shard's own.
    pub shard: Option<String>,
    /// Services whose current snapshot the verb set, with its as-of (ms), when the reports do
    /// not say it (`rollback`).
    pub current: Vec<(String, i64)>,
}

/// The series a run carries over from the file for the services it did not commit.
const CARRIED: [&str; 2] = [
    "fsctl_last_success_timestamp_seconds",
    "fsctl_snapshot_as_of_timestamp_seconds",
];

impl RunMetrics {
    /// Ends a run's metrics: the textfile when asked for, the Pushgateway when one is set.
    /// A dry run (`writes` false) writes its textfile but pushes nothing.
    pub fn finish(
        &self,
        file: Option<&Path>,
        writes: bool,
        result: &anyhow::Result<()>,
        started: Instant,
    ) {
        let seconds = started.elapsed().as_secs_f64();
        let now_s = fsctl::base::time::now_us() as f64 / 1e6;
        if let Some(path) = file {
            self.write(path, result, seconds, now_s);
        }
        let url = std::env::var("FSCTL_PUSHGATEWAY_URL").unwrap_or_default();
        if url.trim().is_empty() || !writes {
            return;
        }
        if let Err(e) = self.push(url.trim(), result, seconds, now_s) {
            fsctl::progress::emit(
                fsctl::progress::Level::Warn,
                &format!("warning: metrics not pushed to the Pushgateway: {e}"),
                &format!("metrics not pushed to the Pushgateway: {e}"),
                serde_json::Map::new(),
            );
        }
    }

    /// Pushes each service's groups; stops at the first failure (reported once).
    fn push(
        &self,
        url: &str,
        result: &anyhow::Result<()>,
        seconds: f64,
        now_s: f64,
    ) -> Result<(), String> {
        let project = self.project.as_deref().unwrap_or("");
        let code = exit_code(result);
        let mut services: Vec<&str> = self.services.iter().map(String::as_str).collect();
        for r in &self.reports {
            if !services.contains(&r.service.as_str()) {
                services.push(&r.service);
            }
        }
        if services.is_empty() {
            services.push("");
        }
        let base = format!(
            "{}/metrics/job/fsctl/{}/{}",
            url.trim_end_matches('/'),
            segment("project", project),
            "",
        );
        let text_type = [("Content-Type", "text/plain; version=0.0.4".to_owned())];
        for service in services {
            let report = self.reports.iter().find(|r| r.service == service);
            let group = format!("{base}{}", segment("service", service));
            // The store's state first: only what this run committed.
            let state = self.state(service, report, now_s);
            if !state.is_empty() {
                fsctl::base::http::send("POST", &group, &text_type, state.into_bytes())?;
            }
            // A service that committed succeeded, whatever became of the others.
            let code = if report.is_some() { 0 } else { code };
            let run = render_run(report, code, seconds, now_s);
            let mut url = format!("{group}/{}", segment("command", self.command));
            if let Some(shard) = &self.shard {
                url = format!("{url}/{}", segment("shard", shard));
            }
            // PUT: this run owns its group, so a failure leaves no figure of an earlier run.
            fsctl::base::http::send("PUT", &url, &text_type, run.into_bytes())?;
        }
        Ok(())
    }

    /// The state series of `service` this run sets: none unless it committed (the last success
    /// and the as-of) or rolled back (the as-of only: a rollback is no successful run).
    fn state(&self, service: &str, report: Option<&ServiceReport>, now_s: f64) -> String {
        let mut out = String::new();
        let one = |v: f64| [(String::new(), v)];
        let as_of_ms = match report {
            Some(r) if matches!(r.status, Status::Committed | Status::AlreadyCommitted) => {
                gauge(
                    &mut out,
                    CARRIED[0],
                    "When the service last committed (or found its job committed).",
                    one(now_s),
                    &[],
                );
                r.manifest.as_ref().map(|m| m.as_of_ms)
            }
            _ => self
                .current
                .iter()
                .find(|(s, _)| s == service)
                .map(|(_, ms)| *ms),
        };
        if let Some(ms) = as_of_ms {
            gauge(
                &mut out,
                CARRIED[1],
                "The as-of time (window end) of the service's current snapshot: its data freshness.",
                one(ms as f64 / 1000.0),
                &[],
            );
        }
        out
    }

    /// Writes the textfile (atomically: a temporary file renamed over it). A failure to write
    /// is reported on stderr and never fails the run.
    pub fn write(&self, path: &Path, result: &anyhow::Result<()>, seconds: f64, now_s: f64) {
        let previous = std::fs::read_to_string(path).unwrap_or_default();
        let text = self.render(&previous, exit_code(result), seconds, now_s);
        let tmp = path.with_extension("prom.tmp");
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)) {
            let message = format!("could not write --metrics-file {}: {e}", path.display());
            fsctl::progress::emit(
                fsctl::progress::Level::Warn,
                &format!("fsctl: {message}"),
                &message,
                serde_json::Map::new(),
            );
        }
    }

    fn render(&self, previous: &str, exit_code: u8, seconds: f64, now_s: f64) -> String {
        let project = self.project.as_deref().unwrap_or("");
        let run = labels(&[("command", self.command), ("project", project)]);
        let service = |r: &ServiceReport| labels(&[("project", project), ("service", &r.service)]);
        let committed: Vec<&ServiceReport> = self
            .reports
            .iter()
            .filter(|r| matches!(r.status, Status::Committed | Status::AlreadyCommitted))
            .collect();
        let mut out = String::new();
        let only = |v: f64| [(run.clone(), v)];
        gauge(
            &mut out,
            "fsctl_last_run_timestamp_seconds",
            "When the last run ended.",
            only(now_s),
            &[],
        );
        gauge(
            &mut out,
            "fsctl_last_run_exit_code",
            "The last run's exit code (0 success, 1 the job failed, 2 usage or configuration).",
            only(f64::from(exit_code)),
            &[],
        );
        gauge(
            &mut out,
            "fsctl_run_duration_seconds",
            "How long the last run took.",
            only(seconds),
            &[],
        );
        // A service that did not commit keeps its lines from the file.
        let done: Vec<String> = committed.iter().map(|r| service(r)).collect();
        let kept = |name: &str| -> Vec<&str> {
            previous
                .lines()
                .filter(|l| l.starts_with(&format!("{name}{{")))
                .filter(|l| {
                    !done
                        .iter()
                        .any(|d| l.starts_with(&format!("{name}{{{d}}}")))
                })
                .collect()
        };
        gauge(
            &mut out,
            CARRIED[0],
            "When the service last committed (or found its job committed).",
            committed.iter().map(|r| (service(r), now_s)),
            &kept(CARRIED[0]),
        );
        gauge(
            &mut out,
            CARRIED[1],
            "The as-of time (window end) of the service's committed snapshot: its data freshness.",
            committed
                .iter()
                .filter_map(|r| Some((service(r), r.manifest.as_ref()?.as_of_ms as f64 / 1000.0))),
            &kept(CARRIED[1]),
        );
        for (name, help, figure) in FIGURES {
            let samples = self.reports.iter().map(|r| (service(r), figure(r) as f64));
            gauge(&mut out, name, help, samples, &[]);
        }
        let phases = self.reports.iter().flat_map(|r| {
            r.phases_ms.iter().map(move |(phase, ms)| {
                let l = labels(&[
                    ("project", project),
                    ("service", &r.service),
                    ("phase", phase),
                ]);
                (l, *ms as f64 / 1000.0)
            })
        });
        gauge(
            &mut out,
            "fsctl_phase_duration_seconds",
            "Each phase of the last run.",
            phases,
            &[],
        );
        out
    }
}

/// A service's figures of its last run, as the textfile and the gateway both carry them.
/// A figure: its metric name, its help, and how a report gives it.
type Figure = (&'static str, &'static str, fn(&ServiceReport) -> u64);

const FIGURES: [Figure; 5] = [
    (
        "fsctl_last_run_rows_read",
        "Offline rows in the window the last run read.",
        rows_read,
    ),
    (
        "fsctl_last_run_entities",
        "Entities of the last run.",
        |r| r.entities,
    ),
    (
        "fsctl_last_run_keys_written",
        "Keys the last run wrote.",
        |r| r.keys_written,
    ),
    (
        "fsctl_last_run_bytes_written",
        "Value bytes the last run wrote.",
        |r| r.bytes_written,
    ),
    (
        "fsctl_last_run_retries",
        "Transient faults the last run retried.",
        |r| r.retries,
    ),
];

/// The run group of one service: how the run ended and, when the service ran, its figures.
fn render_run(report: Option<&ServiceReport>, code: u8, seconds: f64, now_s: f64) -> String {
    let mut out = String::new();
    let outcome = if code == 0 { "success" } else { "failure" };
    gauge(
        &mut out,
        "fsctl_last_run_timestamp_seconds",
        "When the last run ended, and how.",
        [(labels(&[("outcome", outcome)]), now_s)],
        &[],
    );
    let one = |v: f64| [(String::new(), v)];
    gauge(
        &mut out,
        "fsctl_last_run_exit_code",
        "The last run's exit code (0 success, 1 the job failed, 2 usage or configuration).",
        one(f64::from(code)),
        &[],
    );
    gauge(
        &mut out,
        "fsctl_run_duration_seconds",
        "How long the last run took.",
        one(seconds),
        &[],
    );
    let Some(r) = report else {
        return out;
    };
    for (name, help, figure) in FIGURES {
        gauge(&mut out, name, help, one(figure(r) as f64), &[]);
    }
    gauge(
        &mut out,
        "fsctl_phase_duration_seconds",
        "Each phase of the last run.",
        r.phases_ms
            .iter()
            .map(|(phase, ms)| (labels(&[("phase", phase)]), *ms as f64 / 1000.0)),
        &[],
    );
    out
}

/// The rows in the window a run's views read (its manifest's sources).
pub fn rows_read(r: &ServiceReport) -> u64 {
    r.manifest
        .iter()
        .flat_map(|m| m.sources.values())
        .map(|s| s.rows_in_window)
        .sum()
}

/// A grouping label of a Pushgateway URL: `name/value`, or base64url-encoded (`name@base64/...`)
/// when the value has characters a path segment cannot carry as they are, or is empty.
fn segment(name: &str, value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if plain {
        return format!("{name}/{value}");
    }
    if value.is_empty() {
        return format!("{name}@base64/=");
    }
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut encoded = String::new();
    for chunk in value.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            encoded.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    format!("{name}@base64/{encoded}")
}

/// The exit code `result` ends the process with (as `report_failure` decides it).
fn exit_code(result: &anyhow::Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => match e.downcast_ref::<Printed>() {
            Some(Printed(err)) => err.exit_code(),
            None => e
                .downcast_ref::<fsctl::Error>()
                .map_or(1, fsctl::Error::exit_code),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_labels_are_path_segments() {
        assert_eq!(
            segment("service", "realtime_scoring"),
            "service/realtime_scoring"
        );
        assert_eq!(segment("service", ""), "service@base64/=");
        // Base64url without padding, as the Pushgateway accepts it.
        assert_eq!(segment("service", "a/b"), "service@base64/YS9i");
        assert_eq!(segment("project", "fé"), "project@base64/ZsOp");
        assert_eq!(segment("s", "x y?"), "s@base64/eCB5Pw");
    }
}
