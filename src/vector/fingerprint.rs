//! The schema fingerprint (SPEC §3): xxh3_64 of a canonical text describing a vector's layout.
//!
//! Serving rejects a vector whose fingerprint differs from the committed manifest's, so any
//! change in join keys, feature order, names or dtypes must change it, and nothing else may.

use std::fmt;

use xxhash_rust::xxh3::xxh3_64;

use crate::base::value::DType;

/// The 64-bit layout identity of a service's vectors; printed as 16 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SchemaFingerprint(pub u64);

/// One column of a vector layout, as the fingerprint text names it.
pub struct LayoutFeature<'a> {
    pub view: &'a str,
    pub name: &'a str,
    pub dtype: DType,
}

impl SchemaFingerprint {
    /// The canonical text the fingerprint hashes; kept public so `validate` can diff layouts.
    pub fn canonical_text(join_keys: &[(&str, DType)], features: &[LayoutFeature<'_>]) -> String {
        let mut text = String::from("fsctl-vector-v1\n");
        for (name, dtype) in join_keys {
            text.push_str(&format!("entity:{name}:{dtype}\n"));
        }
        for f in features {
            text.push_str(&format!("feature:{}.{}:{}\n", f.view, f.name, f.dtype));
        }
        text
    }

    pub fn compute(join_keys: &[(&str, DType)], features: &[LayoutFeature<'_>]) -> Self {
        SchemaFingerprint(xxh3_64(
            Self::canonical_text(join_keys, features).as_bytes(),
        ))
    }

    pub fn parse_hex(s: &str) -> Option<Self> {
        (s.len() == 16).then(|| u64::from_str_radix(s, 16).ok().map(SchemaFingerprint))?
    }
}

impl fmt::Display for SchemaFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::value::Scalar;

    #[test]
    fn spec_test_vector() {
        let features = [
            LayoutFeature {
                view: "customer_profile",
                name: "age",
                dtype: DType::Scalar(Scalar::Int64),
            },
            LayoutFeature {
                view: "transactions_agg",
                name: "tx_sum_1h",
                dtype: DType::Scalar(Scalar::Float64),
            },
            LayoutFeature {
                view: "risk_signals",
                name: "device_risk",
                dtype: DType::Scalar(Scalar::Float32),
            },
        ];
        let keys = [("customer_id", DType::Scalar(Scalar::Int64))];
        assert_eq!(
            SchemaFingerprint::canonical_text(&keys, &features),
            "fsctl-vector-v1\nentity:customer_id:int64\nfeature:customer_profile.age:int64\n\
             feature:transactions_agg.tx_sum_1h:float64\nfeature:risk_signals.device_risk:float32\n"
        );
        let fp = SchemaFingerprint::compute(&keys, &features);
        assert_eq!(fp.to_string(), "b9d0f02c6263a15e");
        assert_eq!(SchemaFingerprint::parse_hex("b9d0f02c6263a15e"), Some(fp));
    }
}
