//! One module per CLI verb; each has an `Args` struct (its `///` comments are the help) and a
//! `run` function. Options shared by every verb live in `Global`.

pub mod get;
pub mod materialize;
pub mod validate;
pub mod warm;

use std::path::PathBuf;

use crate::progress::Progress;
use crate::repo::{self, Repo};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Feature repo directory (default: ./feature_repo, or . when it holds feature_store.yaml)
    #[arg(long, global = true, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Output format: human text, or one JSON document on stdout
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Print only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more detail
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

impl Global {
    pub fn load_repo(&self) -> crate::Result<Repo> {
        Repo::load(&repo::locate(self.repo.as_deref()))
    }

    pub fn progress(&self) -> Progress {
        // JSON output keeps stderr quiet unless asked, so logs stay machine-readable.
        Progress::new(self.quiet)
    }

    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }
}
