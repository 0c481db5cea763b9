//! The online stage: Redis keys, the pipelined writer, the commit protocol and the reader.
//! It takes encoded vectors and knows nothing about Parquet.

mod commit;
mod keys;
mod manifest;
mod reader;
mod target;
mod writer;

pub use commit::{
    Committed, Flip, RunLock, commit_commands, commit_snapshot, is_committed, read_current,
};
pub use keys::{KeySpace, data_key_expiry_ms, expiry_bounds, expiry_ms};
pub use manifest::*;
pub use reader::{Pinned, Reader};
pub use target::{RedisTarget, expand_env, redact_url};
pub use writer::{
    CommandSink, INTERRUPTED, PackedBatch, PipelinedWriter, RespFile, WriteStats,
    install_signal_handlers, is_transient,
};
