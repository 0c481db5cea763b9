//! The offline stage: which Parquet files a source reads, how their columns coerce to the
//! declared dtypes, and the parallel scan that keeps the latest row per entity.

mod coerce;
mod files;
mod popularity;
mod scan;
mod values;

pub use coerce::{Coercion, coercion};
pub use files::source_files;
pub use popularity::top_entities;
pub use scan::{
    Candidate, DataProblem, EntityMap, LatestRows, SourceFile, ViewScan, Window, locality_key,
};
