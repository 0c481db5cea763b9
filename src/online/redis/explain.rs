//! Redis failures in fsctl's terms: which are worth retrying (SPEC §5), and an `Error::Redis`
//! that names the server, the operation, the key and what to do — decided from the error's kind
//! and the server's error code, never from its text.

use redis::{ErrorKind, RedisError};

use crate::base::error::{Error, RedisFailure};

/// Is this failure worth retrying: connection trouble, or a server that says "later".
pub(crate) fn is_transient(e: &RedisError) -> bool {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        return true;
    }
    matches!(
        e.code(),
        Some("LOADING" | "TRYAGAIN" | "BUSY" | "MASTERDOWN" | "CLUSTERDOWN")
    )
}

/// What a failure means for the operator, from its kind and code.
fn hint(e: &RedisError, operation: &str, db: i64, response_timeout_ms: u128) -> String {
    match e.code() {
        Some("OOM") => {
            return "Redis is out of memory (maxmemory reached with a noeviction policy); free memory or raise \
                    maxmemory, then rerun"
                .into();
        }
        Some("NOAUTH" | "WRONGPASS") => {
            return "authentication failed: check the password / ACL user".into();
        }
        Some("NOPERM") => {
            return "the ACL user may not run this command on this key (see README, Redis access)"
                .into();
        }
        Some("MOVED" | "ASK" | "CROSSSLOT") => {
            return "this server is a Redis Cluster node: set online_store.type: redis_cluster (README, Redis Cluster)"
                .into();
        }
        Some("WRONGTYPE") => {
            return "a key fsctl writes already holds another type: is another tool using this key prefix?"
                .into();
        }
        _ => {}
    }
    if e.kind() == ErrorKind::AuthenticationFailed {
        return "authentication failed: check the password / ACL user".into();
    }
    if e.is_connection_refusal() {
        return "is redis-server running there?".into();
    }
    if e.is_timeout() {
        return format!(
            "timed out: raise online_store.connect_timeout/response_timeout for a slow server (response_timeout is \
             {response_timeout_ms} ms)"
        );
    }
    // A server error while connecting, with a database other than 0 asked for: SELECT failed.
    if operation == "connect" && db != 0 && e.code().is_some() {
        return format!("the database index {db} in the URL does not exist on this server");
    }
    if is_transient(e) {
        return "Redis kept failing after retries".into();
    }
    String::new()
}

/// Where and how a call failed, to name it in the error.
pub(crate) struct Failed<'a> {
    pub server: &'a str,
    pub operation: &'static str,
    pub key: Option<String>,
    pub attempts: u32,
    pub db: i64,
    pub response_timeout_ms: u128,
}

impl Failed<'_> {
    pub(crate) fn error(self, source: RedisError) -> Error {
        let hint = hint(&source, self.operation, self.db, self.response_timeout_ms);
        let mut message = format!("Redis at {} ({}): {source}", self.server, self.operation);
        if !hint.is_empty() {
            message.push_str(&format!(" ({hint})"));
        }
        if let Some(k) = &self.key {
            message.push_str(&format!(", key {k}"));
        }
        if self.attempts > 1 {
            message.push_str(&format!(", after {} attempts", self.attempts));
        }
        // Failures of a run's own steps: the snapshot was not committed.
        if matches!(self.operation, "write" | "commit" | "take the run lock") {
            message.push_str("; nothing was committed, rerun to complete");
        }
        Error::Redis(Box::new(RedisFailure {
            operation: self.operation,
            server: self.server.to_owned(),
            code: source.code().map(str::to_owned),
            key: self.key,
            message,
            source,
        }))
    }
}
