//! What every stage shares and nothing of fsctl's own lies under: the error type and its
//! findings, dtypes and values, the `{entity}` key rendering, instants and durations, secrets in
//! configuration, the retry policy and the interrupt flag.

pub mod duration;
pub mod entity_key;
pub mod error;
pub mod finding;
pub mod http;
pub mod interrupt;
#[cfg(feature = "cloud")]
pub mod objects;
pub mod prometheus;
pub mod retry;
pub mod secrets;
pub mod suggest;
pub mod time;
pub mod value;
