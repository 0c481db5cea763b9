//! Feature dtypes and the owned feature value, shared by every stage.
//!
//! `DType` is the vocabulary of `feature_store.yaml`; `Value` is what a decoded vector (or a
//! declared default) holds. The hot path never builds `Value`s: it writes MessagePack straight
//! from Arrow arrays. `Value` exists for defaults, decoding and display.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

/// A scalar dtype: the element of every feature, or of a `list<T>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scalar {
    Int32,
    Int64,
    Float32,
    Float64,
    Bool,
    String,
    Bytes,
    Timestamp,
}

/// A declared feature or join-key dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    Scalar(Scalar),
    List(Scalar),
}

impl Scalar {
    pub fn name(self) -> &'static str {
        match self {
            Scalar::Int32 => "int32",
            Scalar::Int64 => "int64",
            Scalar::Float32 => "float32",
            Scalar::Float64 => "float64",
            Scalar::Bool => "bool",
            Scalar::String => "string",
            Scalar::Bytes => "bytes",
            Scalar::Timestamp => "timestamp",
        }
    }

    fn parse(s: &str) -> Option<Scalar> {
        Some(match s {
            "int32" => Scalar::Int32,
            "int64" => Scalar::Int64,
            "float32" => Scalar::Float32,
            "float64" => Scalar::Float64,
            "bool" => Scalar::Bool,
            "string" => Scalar::String,
            "bytes" => Scalar::Bytes,
            "timestamp" => Scalar::Timestamp,
            _ => return None,
        })
    }
}

impl FromStr for DType {
    type Err = String;

    fn from_str(s: &str) -> Result<DType, String> {
        let s = s.trim();
        if let Some(inner) = s.strip_prefix("list<").and_then(|r| r.strip_suffix('>')) {
            return Scalar::parse(inner.trim()).map(DType::List).ok_or_else(|| {
                format!("unknown list element dtype `{inner}` (expected one of {SCALARS})")
            });
        }
        Scalar::parse(s)
            .map(DType::Scalar)
            .ok_or_else(|| format!("unknown dtype `{s}` (expected one of {SCALARS} or list<T>)"))
    }
}

const SCALARS: &str = "int32, int64, float32, float64, bool, string, bytes, timestamp";

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DType::Scalar(s) => f.write_str(s.name()),
            DType::List(s) => write!(f, "list<{}>", s.name()),
        }
    }
}

/// One feature value, as a vector carries it (SPEC §3, format 1).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
}

impl Value {
    /// A JSON rendering for `fsctl get --format json` and manifests.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Int(v) => J::from(*v),
            Value::F32(v) => serde_json::Number::from_f64(f64::from(*v)).map_or(J::Null, J::Number),
            Value::F64(v) => serde_json::Number::from_f64(*v).map_or(J::Null, J::Number),
            Value::Bool(v) => J::Bool(*v),
            Value::Str(v) => J::String(v.clone()),
            Value::Bytes(v) => J::Array(v.iter().map(|b| J::from(*b)).collect()),
            Value::List(items) => J::Array(items.iter().map(Value::to_json).collect()),
        }
    }
}

impl Value {
    /// The value `to_json` rendered, read back as `dtype` (manifests carry the training
    /// defaults this way); `None` when the JSON is not a value of that dtype.
    pub fn from_json(dtype: DType, json: &serde_json::Value) -> Option<Value> {
        if json.is_null() {
            return Some(Value::Null);
        }
        match dtype {
            DType::Scalar(s) => scalar_from_json(s, json),
            DType::List(s) => json
                .as_array()?
                .iter()
                .map(|item| match item {
                    serde_json::Value::Null => Some(Value::Null),
                    _ => scalar_from_json(s, item),
                })
                .collect::<Option<Vec<Value>>>()
                .map(Value::List),
        }
    }
}

fn scalar_from_json(s: Scalar, json: &serde_json::Value) -> Option<Value> {
    Some(match s {
        Scalar::Int32 | Scalar::Int64 | Scalar::Timestamp => Value::Int(json.as_i64()?),
        Scalar::Float32 => Value::F32(json.as_f64()? as f32),
        Scalar::Float64 => Value::F64(json.as_f64()?),
        Scalar::Bool => Value::Bool(json.as_bool()?),
        Scalar::String => Value::Str(json.as_str()?.to_owned()),
        Scalar::Bytes => Value::Bytes(
            json.as_array()?
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<Vec<u8>>>()?,
        ),
    })
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Int(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Str(v) => write!(f, "{v:?}"),
            Value::Bytes(v) => {
                f.write_str("0x")?;
                v.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a MessagePack feature value")
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                i64::try_from(v)
                    .map(Value::Int)
                    .map_err(|_| E::custom(format!("integer {v} does not fit int64")))
            }
            fn visit_f32<E>(self, v: f32) -> Result<Value, E> {
                Ok(Value::F32(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
                Ok(Value::F64(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Str(v.to_owned()))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
                Ok(Value::Bytes(v.to_vec()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                // The length comes from untrusted bytes: never preallocate on its word alone.
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Value::List(items))
            }
        }
        d.deserialize_any(ValueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_round_trips_through_text() {
        for text in [
            "int32",
            "int64",
            "float32",
            "timestamp",
            "list<float32>",
            "list<string>",
        ] {
            assert_eq!(text.parse::<DType>().unwrap().to_string(), text);
        }
        assert!("list<list<int64>>".parse::<DType>().is_err());
        assert!(
            "float"
                .parse::<DType>()
                .unwrap_err()
                .contains("unknown dtype `float`")
        );
    }

    #[test]
    fn values_round_trip_through_json_by_dtype() {
        let cases = [
            ("int32", Value::Int(-7)),
            ("timestamp", Value::Int(1_763_856_000_000_001)),
            ("float32", Value::F32(0.1)),
            ("float64", Value::F64(-1.5)),
            ("bool", Value::Bool(true)),
            ("string", Value::Str("a:b".into())),
            ("bytes", Value::Bytes(vec![0, 255, 10])),
            ("list<int64>", Value::List(vec![Value::Int(1), Value::Null])),
            ("list<float32>", Value::List(vec![Value::F32(0.25)])),
            ("int64", Value::Null),
        ];
        for (dtype, value) in cases {
            let dtype: DType = dtype.parse().unwrap();
            assert_eq!(Value::from_json(dtype, &value.to_json()), Some(value));
        }
        let int: DType = "int64".parse().unwrap();
        assert_eq!(Value::from_json(int, &serde_json::json!("7")), None);
        let bytes: DType = "bytes".parse().unwrap();
        assert_eq!(Value::from_json(bytes, &serde_json::json!([256])), None);
    }
}
