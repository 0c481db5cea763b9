//! The offline stage: which Parquet files a source reads, how their columns coerce to the
//! declared dtypes, and the parallel scan that keeps the latest row per entity.

mod coerce;
mod files;
mod latest;
mod popularity;
mod scan;
mod values;

pub use coerce::{Coercion, coercion};
pub use files::source_files;
pub use latest::{LatestRows, Partition, Rank, Row, RowRef};
pub use popularity::top_entities;
pub use scan::{DataProblem, SourceFile, ViewScan, Window};
