//! Object-store sources when fsctl is built without the `cloud` feature: a source URL is a
//! clear error, and nothing here is ever reached past it.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use crate::base::error::Error;
use crate::base::retry::RetryPolicy;
use crate::repo::Source;

pub(super) fn is_remote(path: &str) -> bool {
    path.split_once("://")
        .is_some_and(|(scheme, _)| scheme != "file")
}

pub(super) struct RemoteObject {
    pub(super) url: String,
    pub(super) size: u64,
    pub(super) etag: Option<String>,
    pub(super) modified_ns: i64,
    pub(super) staged: PathBuf,
}

pub(super) struct RemoteSource {
    pub(super) objects: Vec<RemoteObject>,
}

impl RemoteSource {
    pub(super) fn list(source: &Source, _retry: RetryPolicy) -> Result<RemoteSource, Error> {
        Err(Error::config(format!(
            "source `{}`: `{}` is an object-store URL, and this fsctl was built without the \
             `cloud` feature (cargo build --features cloud)",
            source.name, source.path
        )))
    }

    pub(super) fn stage_footers(&self) -> Vec<Result<(), String>> {
        unreachable!("no remote source is ever listed")
    }

    pub(super) fn fetched_bytes(&self) -> u64 {
        0
    }
}

pub(super) struct ChunkStage;

impl ChunkStage {
    pub(super) fn new(_tasks: Vec<(usize, Vec<Range<u64>>)>) -> ChunkStage {
        ChunkStage
    }

    pub(super) fn wait(self: &Arc<Self>, _: &Arc<RemoteSource>, _: usize) -> Result<(), Error> {
        unreachable!("no remote source is ever listed")
    }

    pub(super) fn needed_bytes(&self) -> u64 {
        0
    }

    pub(super) fn stop(&self) {}
}
