//! `--metrics-file FILE`: a run's metrics as a node-exporter textfile (Prometheus text), written
//! at the end of `materialize` and `commit`, whether they succeed or fail. The last success and
//! the committed snapshot's as-of of a service are written only when it committed, and carried
//! over from the file otherwise, so that a failed run never hides the last good one (an alert
//! on `time() - fsctl_last_success_timestamp_seconds` then fires on the right thing).

use std::path::Path;

use fsctl::base::prometheus::{gauge, labels};
use fsctl::engine::{ServiceReport, Status};

use super::Printed;

/// What a run leaves for its metrics: the verb, the project when the repo loaded, and each
/// service's report.
#[derive(Debug, Default)]
pub struct RunMetrics {
    pub command: &'static str,
    pub project: Option<String>,
    pub reports: Vec<ServiceReport>,
}

/// The series a run carries over from the file for the services it did not commit.
const CARRIED: [&str; 2] = [
    "fsctl_last_success_timestamp_seconds",
    "fsctl_snapshot_as_of_timestamp_seconds",
];

impl RunMetrics {
    /// Writes the textfile (atomically: a temporary file renamed over it). A failure to write
    /// is reported on stderr and never fails the run.
    pub fn write(&self, path: &Path, result: &anyhow::Result<()>, seconds: f64, now_s: f64) {
        let previous = std::fs::read_to_string(path).unwrap_or_default();
        let text = self.render(&previous, exit_code(result), seconds, now_s);
        let tmp = path.with_extension("prom.tmp");
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)) {
            eprintln!(
                "fsctl: could not write --metrics-file {}: {e}",
                path.display()
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
        let per_run = |f: fn(&ServiceReport) -> u64| -> Vec<(String, f64)> {
            self.reports
                .iter()
                .map(|r| (service(r), f(r) as f64))
                .collect()
        };
        gauge(
            &mut out,
            "fsctl_last_run_entities",
            "Entities of the last run.",
            per_run(|r| r.entities),
            &[],
        );
        gauge(
            &mut out,
            "fsctl_last_run_keys_written",
            "Keys the last run wrote.",
            per_run(|r| r.keys_written),
            &[],
        );
        gauge(
            &mut out,
            "fsctl_last_run_bytes_written",
            "Value bytes the last run wrote.",
            per_run(|r| r.bytes_written),
            &[],
        );
        gauge(
            &mut out,
            "fsctl_last_run_retries",
            "Transient faults the last run retried.",
            per_run(|r| r.retries),
            &[],
        );
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
