//! The `fsctl` binary: parse the command line, run the verb, report a failure and map it to an
//! exit code (0 success, 1 the job failed, 2 usage or configuration error).

mod commands;

use std::io::Write as _;
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
    if let Some(path) = &cli.global.json_out {
        if cli.global.format != commands::OutputFormat::Json {
            let _ = writeln!(
                std::io::stderr(),
                "error: --json-out writes the JSON document: add --format json"
            );
            return ExitCode::from(2);
        }
        let _ = commands::JSON_OUT.set(path.clone());
    }
    if cli.global.format == commands::OutputFormat::Prometheus
        && !matches!(cli.command, Command::Status(_))
    {
        let _ = writeln!(
            std::io::stderr(),
            "error: --format prometheus is for `fsctl status`; use text or json"
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

/// A command line clap refused: its message on stderr, and with `--format json` also the JSON
/// error document on stdout. `--help` and `--version` are not failures.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let args: Vec<String> = std::env::args().collect();
    let json = args
        .windows(2)
        .any(|w| w[0] == "--format" && w[1] == "json")
        || args.iter().any(|a| a == "--format=json");
    if json {
        let message = e.render().to_string();
        let doc = serde_json::json!({"error": {
            "kind": "usage",
            "message": message.trim_start_matches("error: ").trim(),
            "exit_code": 2,
        }});
        let _ = commands::print_json(&doc);
    }
    let _ = e.print();
    ExitCode::from(2)
}
