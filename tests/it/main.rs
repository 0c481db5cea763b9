//! fsctl's integration tests: one binary, one harness, every test against a real redis-server
//! started on a free port.

mod bad_input;
mod budget;
mod cli;
mod client;
mod cluster;
mod commit;
mod contract;
mod errors;
mod faults;
mod feast;
mod golden;
mod harness;
mod init;
mod lifecycle;
mod metrics;
mod newcomer;
mod pinned;
mod s3;
mod security;
mod selective;
mod shards;
mod status;
mod tls;
mod validate;
mod warm;
