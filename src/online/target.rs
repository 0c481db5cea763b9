//! Where to connect: the repo's URL after `FSCTL_REDIS_URL` and `${VAR}` expansion, the
//! password from the URL, an environment variable or a file. The secret never leaves this
//! type: everything printable goes through `redact_url`.

use std::time::Duration;

use redis::{ConnectionInfo, IntoConnectionInfo};

use crate::error::Error;
use crate::repo::OnlineStore;

/// A resolved Redis endpoint. `Debug` and `display` are redacted.
#[derive(Clone)]
pub struct RedisTarget {
    info: ConnectionInfo,
    /// PEM root certificate for `rediss://` servers signed by a private CA.
    tls_root: Option<Vec<u8>>,
    display: String,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub connections: usize,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisTarget({})", self.display)
    }
}

/// Replaces the password in a `redis://user:password@host` URL with `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let host_start = rest.find('/').unwrap_or(rest.len());
    match rest[..host_start].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{}{user}:***{}", &url[..scheme_end], &rest[at..])
            } else {
                format!("{}***{}", &url[..scheme_end], &rest[at..])
            }
        }
        None => url.to_owned(),
    }
}

/// Expands `${VAR}` from the environment; an unset variable is a configuration error.
pub fn expand_env(text: &str) -> Result<String, Error> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').ok_or_else(|| {
            Error::Config(format!("unterminated `${{` in `{}`", redact_url(text)))
        })? + start;
        let name = &rest[start + 2..end];
        let value = std::env::var(name).map_err(|_| {
            Error::Config(format!(
                "online_store.url refers to environment variable `{name}`, which is not set"
            ))
        })?;
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl RedisTarget {
    /// Resolves the online store (SPEC §1: `FSCTL_REDIS_URL` replaces `online_store.url`).
    pub fn from_store(store: &OnlineStore) -> Result<RedisTarget, Error> {
        let raw = match std::env::var("FSCTL_REDIS_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => store.url.clone(),
        };
        let url = expand_env(&raw)?;
        let display = redact_url(&url);
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(Error::Config(format!(
                "Redis URL `{display}` must start with redis:// or rediss://"
            )));
        }
        let mut info = url.as_str().into_connection_info().map_err(|e| {
            Error::Config(format!(
                "invalid Redis URL `{display}`: {}",
                e.to_string().replace(&url, &display)
            ))
        })?;
        let password = match (&store.password_env, &store.password_file) {
            (Some(var), _) => Some(std::env::var(var).map_err(|_| {
                Error::Config(format!(
                    "online_store.password_env names `{var}`, which is not set"
                ))
            })?),
            (None, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| {
                        Error::Config(format!(
                            "online_store.password_file {}: {e}",
                            file.display()
                        ))
                    })?
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            ),
            (None, None) => None,
        };
        if let Some(p) = password {
            let settings = info.redis_settings().clone().set_password(p);
            info = info.set_redis_settings(settings);
        }
        let tls_root = match &store.tls_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                Error::Config(format!("online_store.tls_ca_file {}: {e}", path.display()))
            })?),
            None => None,
        };
        if tls_root.is_some() && !url.starts_with("rediss://") {
            return Err(Error::Config(format!(
                "online_store.tls_ca_file is set but the URL `{display}` is not rediss://"
            )));
        }
        Ok(RedisTarget {
            info,
            tls_root,
            display,
            connect_timeout: Duration::from_millis(store.connect_timeout_ms as u64),
            response_timeout: Duration::from_millis(store.response_timeout_ms as u64),
            connections: store.connections,
        })
    }

    /// The URL with its password replaced by `***`.
    pub fn display(&self) -> &str {
        &self.display
    }

    pub fn connect(&self) -> Result<redis::Connection, redis::RedisError> {
        let client = match &self.tls_root {
            Some(pem) => redis::Client::build_with_tls(
                self.info.clone(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            )?,
            None => redis::Client::open(self.info.clone())?,
        };
        let con = client.get_connection_with_timeout(self.connect_timeout)?;
        con.set_read_timeout(Some(self.response_timeout))?;
        con.set_write_timeout(Some(self.response_timeout))?;
        Ok(con)
    }

    /// Connects, or explains in words what went wrong (unreachable, auth, db index...).
    pub fn connect_explained(&self) -> Result<redis::Connection, Error> {
        self.connect().map_err(|e| self.explain(&e, "connect"))
    }

    /// Turns a Redis error into a message naming the server and what to check.
    pub fn explain(&self, e: &redis::RedisError, doing: &str) -> Error {
        let text = e.to_string();
        let hint = if text.contains("OOM") {
            " (Redis is out of memory: maxmemory reached with a noeviction policy; nothing was committed)"
        } else if e.is_connection_refusal() {
            " (is redis-server running there?)"
        } else if e.is_timeout() {
            " (timed out: raise online_store.connect_timeout/response_timeout for a slow server)"
        } else if text.contains("NOAUTH")
            || text.contains("WRONGPASS")
            || text.contains("invalid password")
        {
            " (authentication failed: check the password / ACL user)"
        } else if text.contains("DB index") || text.contains("invalid DB") {
            " (the database index in the URL does not exist on this server)"
        } else {
            ""
        };
        Error::Redis(format!("Redis at {} ({doing}): {text}{hint}", self.display))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("redis://:s3cret@h:6379/0"),
            "redis://:***@h:6379/0"
        );
        assert_eq!(
            redact_url("rediss://app:s3cret@h/1"),
            "rediss://app:***@h/1"
        );
        assert_eq!(redact_url("redis://h:6379/0"), "redis://h:6379/0");
        assert_eq!(redact_url("redis://tok@h"), "redis://***@h");
    }
}
