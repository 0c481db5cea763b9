//! The vector format (SPEC §3): the schema fingerprint, the MessagePack item writer, encode and
//! decode. Pure functions over bytes: this module knows nothing about Parquet or Redis, and the
//! stages on both sides of it (the scan that writes items, the reader that decodes) share it.

mod codec;
pub mod feast;
mod fingerprint;
pub mod msgpack;
mod unpack;

pub use codec::{DecodeError, DecodedVector, HEADER_MSGPACK, HEADER_ZSTD, VectorEncoder, decode};
pub use fingerprint::{LayoutFeature, SchemaFingerprint};
pub use unpack::UnpackError;
pub(crate) use unpack::item as unpack_item;

pub use crate::base::value::{DType, Scalar, Value};
