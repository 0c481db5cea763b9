//! fsctl as a library: materialize offline Parquet feature tables into Redis as one
//! pre-computed, fingerprinted vector per entity and feature service, and read them back.
//!
//! Data flows one way, and no stage imports a later one:
//! `repo` (definitions) -> `offline` (Parquet scan, latest row per entity) -> `assemble` (join,
//! impute, encode) -> `online` (Redis). Beneath them, `vector` is the format both ends share,
//! and `base` the types every stage uses. `client` reads the vectors back as a serving process
//! does. `engine` drives the stages for each verb; the `fsctl` binary's `commands` parse the
//! command line, call the engine and render what it returns.
//!
//! ```no_run
//! use fsctl::engine::{self, MaterializeOptions};
//! use fsctl::progress::Progress;
//!
//! let repo = fsctl::repo::Repo::load("feature_repo".as_ref())?;
//! let store = fsctl::online::open(&repo.online)?;
//! let done = engine::materialize(&repo, &*store, &MaterializeOptions::default(), Progress::new(true))?;
//! for r in &done.reports {
//!     println!("{}: snapshot {} ({:?})", r.service, r.snapshot, r.status);
//! }
//! # Ok::<(), fsctl::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod assemble;
pub mod base;
pub mod client;
pub mod engine;
pub mod offline;
pub mod online;
pub mod progress;
pub mod repo;
pub mod vector;

pub use base::error::{Error, Result};
