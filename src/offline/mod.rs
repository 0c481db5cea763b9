//! The offline stage: which Parquet files a source reads, how their columns coerce to the
//! declared dtypes, and the parallel scan that keeps the latest row per entity.

mod coerce;
mod files;
mod latest;
mod popularity;
mod ranges;
#[cfg(feature = "cloud")]
mod remote;
#[cfg(not(feature = "cloud"))]
#[path = "remote_off.rs"]
mod remote;
mod scan;
mod values;

pub use latest::{LatestRows, Partition, Shard, int_write_order, str_write_order};
pub(crate) use latest::{Row, RowRef};
pub(crate) use popularity::top_entities;
pub use scan::{DataProblem, SourceFile, ViewScan, Window};
