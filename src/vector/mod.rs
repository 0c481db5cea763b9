//! The vector format: dtypes and values, the schema fingerprint, encode and decode.
//! Pure functions over bytes; this module knows nothing about Parquet or Redis.

mod codec;
mod fingerprint;
mod value;

pub use codec::{DecodeError, DecodedVector, HEADER_MSGPACK, HEADER_ZSTD, VectorEncoder, decode};
pub use fingerprint::{LayoutFeature, SchemaFingerprint};
pub use value::{DType, Scalar, Value};
