//! What a run says on stderr while it works: indicatif bars on a terminal, plain periodic lines
//! otherwise (Airflow logs), one JSON object per line with `--log-format json` (a log
//! collector), nothing but errors with `-q`. Phases report counts; rates come for free.
//!
//! Every line of a process carries its run id (a UUID, also the OpenLineage run id), and in
//! JSON the command, the service, view and phase it is about, and the phase's figures. Stdout
//! is not touched here: it carries the command's one result document.

use std::io::{IsTerminal, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};

/// Every bar of the process: phases may run side by side (a partition's read beside the
/// previous one's writes), each on its own line.
static BARS: std::sync::LazyLock<MultiProgress> = std::sync::LazyLock::new(MultiProgress::new);

/// How the process logs, set once at start (`init`); text until then.
struct Log {
    json: bool,
    command: &'static str,
    run_id: String,
}

static LOG: OnceLock<Log> = OnceLock::new();

/// Sets how this process logs: JSON lines or text, for `command`. Returns the run id.
pub fn init(json: bool, command: &'static str) -> &'static str {
    let log = LOG.get_or_init(|| Log {
        json,
        command,
        run_id: new_run_id(),
    });
    &log.run_id
}

fn log() -> &'static Log {
    LOG.get_or_init(|| Log {
        json: false,
        command: "",
        run_id: new_run_id(),
    })
}

/// This process's run id: a UUID (version 7: its first 48 bits are the start time in
/// milliseconds, so ids sort by time), the same on every log line and lineage event.
pub fn run_id() -> &'static str {
    &log().run_id
}

/// Whether logs are JSON lines.
pub fn json_logs() -> bool {
    log().json
}

fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let ms = (crate::base::time::now_us() / 1000) as u64;
    // Randomness from the process's own hash keys, mixed with the pid and the clock.
    let random = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u32(std::process::id());
        h.write_i64(crate::base::time::now_us());
        h.finish()
    };
    let (a, b) = (random(1), random(2));
    let hi = (ms << 16) | 0x7000 | (a & 0x0fff);
    let lo = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> (&'static str, &'static str) {
        match self {
            Level::Info => ("info", "INFO"),
            Level::Warn => ("warn", "WARNING"),
            Level::Error => ("error", "ERROR"),
        }
    }
}

/// Writes one log line: in text mode `text` as it is; in JSON mode an object with the time,
/// level (and its Cloud Logging `severity` twin), `message`, run id and command, then `fields`.
/// Lines are written whole, never interleaved with another thread's.
pub fn emit(level: Level, text: &str, message: &str, fields: Map<String, Value>) {
    let log = log();
    let line = if log.json {
        let (level_name, severity) = level.name();
        let mut doc = Map::new();
        doc.insert(
            "time".into(),
            crate::base::time::format_us(crate::base::time::now_us()).into(),
        );
        doc.insert("level".into(), level_name.into());
        doc.insert("severity".into(), severity.into());
        doc.insert("message".into(), message.into());
        doc.insert("run_id".into(), log.run_id.clone().into());
        if !log.command.is_empty() {
            doc.insert("command".into(), log.command.into());
        }
        doc.extend(fields);
        Value::Object(doc).to_string()
    } else {
        text.to_owned()
    };
    let line = line + "\n";
    let write = || {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
    };
    // Above the bars, not through them.
    BARS.suspend(write);
}

/// A failure, as the last thing a command says: `error: {message}`, or in JSON with
/// `error.kind` and the exit code.
pub fn error(kind: &str, message: &str, exit_code: u8) {
    let mut fields = Map::new();
    fields.insert(
        "error".into(),
        json!({"kind": kind, "message": message, "exit_code": exit_code}),
    );
    fields.insert("exit_code".into(), exit_code.into());
    emit(Level::Error, &format!("error: {message}"), message, fields);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Bars,
    Lines,
    Json,
    Quiet,
}

#[derive(Clone, Copy, Debug)]
pub struct Progress {
    mode: Mode,
}

/// How often plain-line and JSON modes report a running phase.
const LINE_EVERY: Duration = Duration::from_secs(10);

/// What a phase works on: a service's entities, or a view's rows (in one of several partitions).
#[derive(Clone, Copy, Debug)]
pub enum Of<'a> {
    Service(&'a str),
    View(&'a str, Option<(u32, u32)>),
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Quiet
        } else if json_logs() {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        Progress { mode }
    }

    /// A one-off status line of the run (not in quiet mode).
    pub fn note(&self, message: &str) {
        if self.mode != Mode::Quiet {
            emit(
                Level::Info,
                message,
                message.strip_prefix("fsctl: ").unwrap_or(message),
                Map::new(),
            );
        }
    }

    /// A status line about one service: `fsctl: {service}: {message}`.
    pub fn say(&self, service: &str, message: &str) {
        self.about(Level::Info, service, message);
    }

    /// A warning about one service: the run goes on.
    pub fn warn(&self, service: &str, message: &str) {
        self.about(Level::Warn, service, message);
    }

    fn about(&self, level: Level, service: &str, message: &str) {
        if self.mode == Mode::Quiet {
            return;
        }
        // The level shows in JSON only: text lines read as they always have.
        let text = format!("fsctl: {service}: {message}");
        let mut fields = Map::new();
        fields.insert("service".into(), service.into());
        emit(level, &text, message, fields);
    }

    /// Starts a phase: `phase` is its kind (`read`, `write`, `warm`...), `label` what the bar
    /// and the text lines call it.
    pub fn phase(
        &self,
        phase: &'static str,
        label: &str,
        of: Of<'_>,
        total: u64,
        unit: &'static str,
    ) -> Phase {
        let bar = (self.mode == Mode::Bars).then(|| {
            let bar = BARS.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{prefix:>28}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, {{elapsed}})"
                ))
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_prefix(label.to_owned());
            bar
        });
        let mut fields = Map::new();
        fields.insert("phase".into(), phase.into());
        match of {
            Of::Service(s) => {
                fields.insert("service".into(), s.into());
            }
            Of::View(v, part) => {
                fields.insert("view".into(), v.into());
                if let Some((i, n)) = part {
                    fields.insert("partition".into(), format!("{}/{n}", i + 1).into());
                }
            }
        }
        Phase {
            label: label.to_owned(),
            fields,
            unit,
            total,
            done: AtomicU64::new(0),
            started: Instant::now(),
            last_line: Mutex::new(Instant::now()),
            bar,
            lines: matches!(self.mode, Mode::Lines | Mode::Json),
        }
    }
}

pub struct Phase {
    label: String,
    fields: Map<String, Value>,
    unit: &'static str,
    total: u64,
    done: AtomicU64,
    started: Instant,
    last_line: Mutex<Instant>,
    bar: Option<ProgressBar>,
    lines: bool,
}

impl Phase {
    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        } else if self.lines {
            let mut last = self.last_line.lock().unwrap();
            if last.elapsed() >= LINE_EVERY {
                *last = Instant::now();
                drop(last);
                self.line(done, false);
            }
        }
    }

    /// One line of the phase's figures: so far, or (`end`) in all.
    fn line(&self, done: u64, end: bool) {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / secs.max(1e-9);
        let text = if end {
            format!("fsctl: {}: {done} {} in {secs:.2}s", self.label, self.unit)
        } else {
            format!(
                "fsctl: {}: {done}/{} {} ({rate:.0}/s)",
                self.label, self.total, self.unit
            )
        };
        let mut fields = self.fields.clone();
        fields.insert("done".into(), done.into());
        fields.insert("total".into(), self.total.into());
        fields.insert("unit".into(), self.unit.into());
        fields.insert("elapsed_s".into(), json!((secs * 1000.0).round() / 1000.0));
        fields.insert("rate".into(), json!(rate.round()));
        fields.insert("finished".into(), end.into());
        let message = format!(
            "{}: {}",
            self.label,
            if end { "done" } else { "in progress" }
        );
        emit(Level::Info, &text, &message, fields);
    }

    /// Ends the phase and returns how long it took.
    pub fn finish(self) -> Duration {
        let took = self.started.elapsed();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.lines {
            self.line(self.done.load(Ordering::Relaxed), true);
        }
        took
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_version_7_uuids() {
        let (a, b) = (new_run_id(), new_run_id());
        assert_ne!(a, b);
        for id in [&a, &b] {
            let parts: Vec<&str> = id.split('-').collect();
            let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
            assert_eq!(lens, [8, 4, 4, 4, 12], "{id}");
            assert!(parts[2].starts_with('7'), "{id}");
            assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{id}");
            assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        }
        let ms = u64::from_str_radix(&a.replace('-', "")[..12], 16).unwrap();
        let now = (crate::base::time::now_us() / 1000) as u64;
        assert!(now - ms < 60_000, "{a}");
    }
}
