//! The `fsctl` binary: parse the command line, run the command, map the error to an exit code
//! (0 success, 1 the job failed, 2 usage or configuration error).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fsctl::commands::{self, Global};

/// Materialize offline Parquet feature tables into Redis for low-latency serving.
#[derive(Parser)]
#[command(name = "fsctl", version, about)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compute the latest features per entity and commit them to Redis as a new snapshot
    Materialize(commands::materialize::Args),
    /// Read one entity's vector through the committed snapshot
    Get(commands::get::Args),
    /// Check definitions, offline data, schema lock, quality checks and the live store (for CI)
    Validate(commands::validate::Args),
    /// Before a deploy: give the most popular entities their vector with the hot TTL
    Warm(commands::warm::Args),
    /// Rewrite fsctl.lock with the services' current schema fingerprints
    Lock(commands::validate::LockArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // rediss:// uses rustls; pick its crypto backend once for the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    fsctl::online::install_signal_handlers();
    let result = match &cli.command {
        Command::Materialize(args) => commands::materialize::run(&cli.global, args),
        Command::Get(args) => commands::get::run(&cli.global, args),
        Command::Validate(args) => commands::validate::run(&cli.global, args),
        Command::Warm(args) => commands::warm::run(&cli.global, args),
        Command::Lock(args) => commands::validate::run_lock(&cli.global, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            let code = err
                .downcast_ref::<fsctl::Error>()
                .map_or(1, fsctl::Error::exit_code);
            ExitCode::from(code)
        }
    }
}
