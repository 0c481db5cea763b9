//! Progress on stderr: indicatif bars on a terminal, plain periodic lines otherwise (Airflow
//! logs), nothing with `-q`. Phases report counts; rates come for free.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Every bar of the process: phases may run side by side (a partition's read beside the
/// previous one's writes), each on its own line.
static BARS: std::sync::LazyLock<MultiProgress> = std::sync::LazyLock::new(MultiProgress::new);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Bars,
    Lines,
    Quiet,
}

#[derive(Clone, Copy, Debug)]
pub struct Progress {
    mode: Mode,
}

/// How often plain-line mode reports a running phase.
const LINE_EVERY: Duration = Duration::from_secs(10);

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        Progress { mode }
    }

    /// Prints a one-off status line (not in quiet mode).
    pub fn note(&self, message: &str) {
        if self.mode != Mode::Quiet {
            eprintln!("{message}");
        }
    }

    pub fn phase(&self, name: &str, total: u64, unit: &'static str) -> Phase {
        let bar = (self.mode == Mode::Bars).then(|| {
            let bar = BARS.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{prefix:>28}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, {{elapsed}})"
                ))
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_prefix(name.to_owned());
            bar
        });
        Phase {
            name: name.to_owned(),
            unit,
            total,
            done: AtomicU64::new(0),
            started: Instant::now(),
            last_line: Mutex::new(Instant::now()),
            bar,
            lines: self.mode == Mode::Lines,
        }
    }
}

pub struct Phase {
    name: String,
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
                let secs = self.started.elapsed().as_secs_f64().max(1e-9);
                eprintln!(
                    "fsctl: {}: {done}/{} {} ({:.0}/s)",
                    self.name,
                    self.total,
                    self.unit,
                    done as f64 / secs
                );
            }
        }
    }

    /// Ends the phase and returns how long it took.
    pub fn finish(self) -> Duration {
        let took = self.started.elapsed();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.lines {
            eprintln!(
                "fsctl: {}: {} {} in {:.2}s",
                self.name,
                self.done.load(Ordering::Relaxed),
                self.unit,
                took.as_secs_f64()
            );
        }
        took
    }
}
