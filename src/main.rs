//! The `fsctl` binary: parse the command line, run the verb, report a failure and map it to an
//! exit code (0 success, 1 the job failed, 2 usage or configuration error).

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use commands::{EXIT_CODES, Global};

/// Materialize offline Parquet feature tables into Redis for low-latency serving.
#[derive(Parser)]
#[command(name = "fsctl", version, about, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a feature repo: a commented feature_store.yaml with example data, or a draft from
    /// Parquet files
    #[command(after_help = help(commands::init::HELP))]
    Init(commands::init::Args),
    /// Compute the latest features per entity and commit them to Redis as a new snapshot
    #[command(after_help = help(commands::materialize::HELP))]
    Materialize(commands::materialize::Args),
    /// Commit a sharded run once all its shards are recorded
    #[command(after_help = help(commands::commit::HELP))]
    Commit(commands::commit::Args),
    /// Read one entity's vector through the committed snapshot
    #[command(after_help = help(commands::get::HELP))]
    Get(commands::get::Args),
    /// Check definitions, offline data, schema lock, quality checks and the live store (for CI)
    #[command(after_help = help(commands::validate::HELP))]
    Validate(commands::validate::Args),
    /// Before a deploy: give the most popular entities their vector with the hot TTL
    #[command(after_help = help(commands::warm::HELP))]
    Warm(commands::warm::Args),
    /// Rewrite fsctl.lock with the services' current schema fingerprints
    #[command(after_help = help(commands::lock::HELP))]
    Lock(commands::lock::Args),
    /// List each service's snapshots and their state (current, kept, retired, expired)
    #[command(after_help = help(commands::snapshots::HELP))]
    Snapshots(commands::snapshots::Args),
    /// Flip current back to a kept snapshot (default: the previous one)
    #[command(after_help = help(commands::rollback::HELP))]
    Rollback(commands::rollback::Args),
    /// Each service's committed snapshot: as-of, age, keys, bytes; exit 1 when one is stale
    #[command(after_help = help(commands::status::HELP))]
    Status(commands::status::Args),
    /// Retire snapshots that are not kept and leftovers of runs that never committed
    #[command(after_help = help(commands::gc::HELP))]
    Gc(commands::gc::Args),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Init(_) => "init",
            Command::Materialize(_) => "materialize",
            Command::Commit(_) => "commit",
            Command::Get(_) => "get",
            Command::Validate(_) => "validate",
            Command::Warm(_) => "warm",
            Command::Lock(_) => "lock",
            Command::Snapshots(_) => "snapshots",
            Command::Rollback(_) => "rollback",
            Command::Status(_) => "status",
            Command::Gc(_) => "gc",
        }
    }
}

/// A verb's examples, then the exit codes and environment every verb shares.
fn help(examples: &str) -> String {
    format!("{examples}\n\n{EXIT_CODES}")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    // rediss:// uses rustls; pick its crypto backend once for the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    fsctl::progress::init(
        cli.global.log_format == commands::LogFormat::Json,
        cli.command.name(),
    );
    if let Some(path) = &cli.global.json_out {
        if cli.global.format != commands::OutputFormat::Json {
            fsctl::progress::error(
                "usage",
                "--json-out writes the JSON document: add --format json",
                2,
            );
            return ExitCode::from(2);
        }
        let _ = commands::JSON_OUT.set(path.clone());
    }
    if cli.global.format == commands::OutputFormat::Prometheus
        && !matches!(cli.command, Command::Status(_))
    {
        fsctl::progress::error(
            "usage",
            "--format prometheus is for `fsctl status`; use text or json",
            2,
        );
        return ExitCode::from(2);
    }
    fsctl::base::interrupt::install_signal_handlers();
    commands::note_naive_times(&cli.global);
    let result = match &cli.command {
        Command::Init(args) => commands::init::run(&cli.global, args),
        Command::Materialize(args) => commands::materialize::run(&cli.global, args),
        Command::Commit(args) => commands::commit::run(&cli.global, args),
        Command::Get(args) => commands::get::run(&cli.global, args),
        Command::Validate(args) => commands::validate::run(&cli.global, args),
        Command::Warm(args) => commands::warm::run(&cli.global, args),
        Command::Lock(args) => commands::lock::run(&cli.global, args),
        Command::Snapshots(args) => commands::snapshots::run(&cli.global, args),
        Command::Rollback(args) => commands::rollback::run(&cli.global, args),
        Command::Gc(args) => commands::gc::run(&cli.global, args),
        Command::Status(args) => commands::status::run(&cli.global, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => ExitCode::from(commands::report_failure(&cli.global, &err)),
    }
}

/// A command line clap refused: its message on stderr (a JSON line with `--log-format json`),
/// with `--format json` also the JSON error document on stdout (and in `--json-out`), and the
/// summary in the termination log. `--help` and `--version` are not failures.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // The flags of the line that clap could not parse, read as they are.
    let flag = |name: &str| -> Option<String> {
        let eq = format!("{name}=");
        args.iter()
            .enumerate()
            .find_map(|(i, a)| match a.strip_prefix(&eq) {
                Some(v) => Some(v.to_owned()),
                None => (a == name).then(|| args.get(i + 1).cloned()).flatten(),
            })
    };
    let json_logs = flag("--log-format")
        .or_else(|| std::env::var("FSCTL_LOG_FORMAT").ok())
        .is_some_and(|f| f.trim() == "json");
    fsctl::progress::init(json_logs, "");
    let rendered = e.render().to_string();
    let message = rendered.trim_start_matches("error: ").trim();
    if flag("--format").as_deref() == Some("json") {
        if let Some(path) = flag("--json-out") {
            let _ = commands::JSON_OUT.set(path.into());
        }
        let doc = serde_json::json!({"error": {
            "kind": "usage",
            "message": message,
            "exit_code": 2,
        }});
        let _ = commands::print_json(&doc);
    }
    if json_logs {
        fsctl::progress::error("usage", message, 2);
    } else {
        let _ = e.print();
    }
    commands::termination_message("usage", message, 2);
    ExitCode::from(2)
}
