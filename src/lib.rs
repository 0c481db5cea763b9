//! fsctl as a library: materialize offline Parquet feature tables into Redis as one
//! pre-computed, fingerprinted vector per entity and feature service, and read them back.
//!
//! Data flows one way: `repo` (definitions) -> `offline` (Parquet scan, latest row per entity)
//! -> `assemble` (join, impute, encode) -> `vector` (the format) -> `online` (Redis).
//! `commands` glues the stages into the CLI verbs.

pub mod assemble;
pub mod commands;
pub mod entity_key;
pub mod error;
pub mod offline;
pub mod online;
pub mod progress;
pub mod repo;
pub mod time;
pub mod vector;

pub use error::{Error, Result};
