//! Redis key names (SPEC §3). Data keys carry no hash tag so they spread over a cluster;
//! a service's control keys share the tag `{service}` so one script can update them together.

use xxhash_rust::xxh3::xxh3_64;

#[derive(Debug, Clone)]
pub struct KeySpace {
    prefix: String,
    project: String,
    service: String,
}

impl KeySpace {
    pub fn new(prefix: &str, project: &str, service: &str) -> KeySpace {
        KeySpace {
            prefix: prefix.into(),
            project: project.into(),
            service: service.into(),
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// `{prefix}:{project}:{service}:{snapshot}:` — append the rendered entity.
    pub fn data_prefix(&self, snapshot: &str) -> String {
        format!(
            "{}:{}:{}:{snapshot}:",
            self.prefix, self.project, self.service
        )
    }

    pub fn data_key(&self, snapshot: &str, entity: &str) -> String {
        let mut k = self.data_prefix(snapshot);
        k.push_str(entity);
        k
    }

    fn control(&self, what: &str) -> String {
        format!(
            "{}:{}:{{{}}}:{what}",
            self.prefix, self.project, self.service
        )
    }

    pub fn current(&self) -> String {
        self.control("current")
    }

    pub fn snapshots(&self) -> String {
        self.control("snapshots")
    }

    pub fn lock(&self) -> String {
        self.control("lock")
    }

    pub fn manifest(&self, snapshot: &str) -> String {
        self.control(&format!("snapshot:{snapshot}"))
    }

    /// The entities a snapshot's run wrote (or was about to write), so that retiring it never
    /// needs to walk the keyspace: concatenated zstd frames, each a run of length-prefixed
    /// rendered entities, appended before the writes they list are sent.
    pub fn key_list(&self, snapshot: &str) -> String {
        self.control(&format!("snapshot:{snapshot}:keys"))
    }

    /// Shard `index`'s manifest of a sharded run (SPEC §3.3).
    pub fn shard_manifest(&self, snapshot: &str, index: u32) -> String {
        self.control(&format!("snapshot:{snapshot}:shard:{index}"))
    }

    /// The manifest of a unit written in the Feast layout (SPEC §3.4): its last committed
    /// window, which the next run continues from.
    pub fn feast_manifest(&self) -> String {
        self.control("feast")
    }

    /// Sharded snapshots awaiting their commit, scored by their as-of time (ms).
    pub fn sharded(&self) -> String {
        self.control("sharded")
    }

    /// Snapshots that may have data keys in Redis and are not retired yet, scored by the time
    /// their run started writing (committed ones stay until they are retired).
    pub fn runs(&self) -> String {
        self.control("runs")
    }
}

/// A key's absolute expiry in ms (SPEC §3): `as_of + ttl × (1 + jitter × u)` with
/// `u ∈ [0, 1)` from a hash of the key, so expiries spread yet repeat exactly on a rerun, and
/// jitter only ever spreads them later: no key expires before `as_of + ttl`.
pub fn expiry_ms(key: &[u8], as_of_ms: i64, ttl_ms: i64, jitter: f64) -> i64 {
    let u = (xxh3_64(key) >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
    as_of_ms + (ttl_ms as f64 * (1.0 + jitter * u)).floor() as i64
}

/// `expiry_ms` of the data key `{data_prefix}{entity}`, without allocating the key.
pub fn data_key_expiry_ms(
    data_prefix: &str,
    entity: &str,
    as_of_ms: i64,
    ttl_ms: i64,
    jitter: f64,
) -> i64 {
    let len = data_prefix.len() + entity.len();
    let mut buf = [0u8; 256];
    if len > buf.len() {
        return expiry_ms(
            format!("{data_prefix}{entity}").as_bytes(),
            as_of_ms,
            ttl_ms,
            jitter,
        );
    }
    buf[..data_prefix.len()].copy_from_slice(data_prefix.as_bytes());
    buf[data_prefix.len()..len].copy_from_slice(entity.as_bytes());
    expiry_ms(&buf[..len], as_of_ms, ttl_ms, jitter)
}

/// Every expiry a run can produce lies in `[as_of + ttl, as_of + ttl(1+j))`.
pub fn expiry_bounds(as_of_ms: i64, ttl_ms: i64, jitter: f64) -> (i64, i64) {
    let lo = as_of_ms + ttl_ms;
    let hi = as_of_ms + (ttl_ms as f64 * (1.0 + jitter)).ceil() as i64;
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shapes() {
        let k = KeySpace::new("fs", "banking", "realtime_scoring");
        assert_eq!(
            k.data_key("abc123", "42"),
            "fs:banking:realtime_scoring:abc123:42"
        );
        assert_eq!(k.current(), "fs:banking:{realtime_scoring}:current");
        assert_eq!(
            k.manifest("abc123"),
            "fs:banking:{realtime_scoring}:snapshot:abc123"
        );
        assert_eq!(k.snapshots(), "fs:banking:{realtime_scoring}:snapshots");
        assert_eq!(k.lock(), "fs:banking:{realtime_scoring}:lock");
    }

    #[test]
    fn expiries_spread_within_bounds() {
        let (lo, hi) = expiry_bounds(1_000_000, 100_000, 0.2);
        assert_eq!((lo, hi), (1_100_000, 1_120_000));
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..1000 {
            let e = expiry_ms(format!("k{i}").as_bytes(), 1_000_000, 100_000, 0.2);
            assert!((lo..hi).contains(&e));
            assert_eq!(
                e,
                expiry_ms(format!("k{i}").as_bytes(), 1_000_000, 100_000, 0.2)
            );
            seen.insert(e / 2000);
        }
        assert!(
            seen.len() >= 9,
            "expiries should cover the jitter range, got {seen:?}"
        );
    }
}
