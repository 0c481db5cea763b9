//! Where to connect: the repo's URL after `FSCTL_REDIS_URL` and `${VAR}` expansion, the
//! password from the URL, an environment variable or a file. The secret never leaves this
//! type: everything printable is redacted.

use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};

use super::explain::Failed;
use crate::base::error::Error;
use crate::base::secrets::{expand_env, redact_url};
use crate::repo::OnlineStoreConfig;

/// A resolved Redis endpoint. `Debug` and `display` are redacted.
#[derive(Clone)]
pub(crate) struct RedisTarget {
    info: ConnectionInfo,
    /// PEM root certificate for `rediss://` servers signed by a private CA.
    tls_root: Option<Vec<u8>>,
    display: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) connections: usize,
    /// Loaded on every connection before any command (`OnlineStoreConfig::feast_writes`).
    scripts: Vec<&'static str>,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisTarget({})", self.display)
    }
}

/// The URL to use: `FSCTL_REDIS_URL` replaces `online_store.url` (SPEC §1).
pub(crate) fn configured_url(store: &OnlineStoreConfig) -> String {
    match std::env::var("FSCTL_REDIS_URL") {
        Ok(u) if !u.is_empty() && store.url_from_env => u,
        _ => store.url.clone(),
    }
}

/// The URL(s) the store connects to, after `FSCTL_REDIS_URL` and `${VAR}` expansion (to name
/// the store: show it only through `redact_url`).
pub fn effective_url(store: &OnlineStoreConfig) -> String {
    let url = configured_url(store);
    expand_env(&url, "online_store.url").unwrap_or(url)
}

impl RedisTarget {
    /// Resolves the online store's endpoint, without connecting.
    pub(crate) fn from_config(store: &OnlineStoreConfig) -> Result<RedisTarget, Error> {
        let url = expand_env(&configured_url(store), "online_store.url")?;
        RedisTarget::from_url(url.trim(), store)
    }

    /// The seed nodes of a cluster: the URLs separated by `,`, each with the store's password,
    /// TLS and timeouts.
    pub(crate) fn seeds(store: &OnlineStoreConfig) -> Result<Vec<RedisTarget>, Error> {
        let urls = expand_env(&configured_url(store), "online_store.url")?;
        let seeds = crate::base::secrets::split_urls(&urls)
            .into_iter()
            .filter(|u| !u.is_empty())
            .map(|u| RedisTarget::from_url(u, store))
            .collect::<Result<Vec<_>, _>>()?;
        if seeds.is_empty() {
            return Err(Error::config("online_store.url names no cluster node"));
        }
        if let Some(s) = seeds.iter().find(|s| s.info.redis_settings().db() != 0) {
            return Err(Error::config(format!(
                "a cluster has only database 0, but `{}` names another",
                s.display
            )));
        }
        Ok(seeds)
    }

    /// The same settings (password, TLS, timeouts) for another node of the cluster.
    pub(crate) fn at(&self, host: &str, port: u16) -> RedisTarget {
        let (addr, scheme) = match self.info.addr() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => (
                ConnectionAddr::TcpTls {
                    host: host.to_owned(),
                    port,
                    insecure: *insecure,
                    tls_params: tls_params.clone(),
                },
                "rediss",
            ),
            _ => (ConnectionAddr::Tcp(host.to_owned(), port), "redis"),
        };
        RedisTarget {
            info: self.info.clone().set_addr(addr),
            display: format!("{scheme}://{host}:{port}"),
            ..self.clone()
        }
    }

    /// The host and port this target connects to (none for a Unix socket).
    pub(crate) fn node(&self) -> Option<crate::online::slots::Node> {
        match self.info.addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                Some(crate::online::slots::Node {
                    host: host.clone(),
                    port: *port,
                })
            }
            _ => None,
        }
    }

    fn from_url(url: &str, store: &OnlineStoreConfig) -> Result<RedisTarget, Error> {
        let display = redact_url(url);
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(Error::config(format!(
                "Redis URL `{display}` must start with redis:// or rediss://"
            )));
        }
        let mut info = url.into_connection_info().map_err(|e| {
            Error::config(format!(
                "invalid Redis URL `{display}`: {}",
                e.to_string().replace(url, &display)
            ))
        })?;
        let password = match (&store.password_env, &store.password_file) {
            (Some(var), _) => Some(std::env::var(var).map_err(|_| {
                Error::config(format!(
                    "online_store.password_env names `{var}`, which is not set"
                ))
            })?),
            (None, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| {
                        Error::config(format!(
                            "online_store.password_file: cannot read {} ({e}); a relative path \
                             is taken from the repo directory",
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
                Error::config(format!(
                    "online_store.tls_ca_file: cannot read {} ({e}); a relative path is taken \
                     from the repo directory",
                    path.display()
                ))
            })?),
            None => None,
        };
        if tls_root.is_some() && !url.starts_with("rediss://") {
            return Err(Error::config(format!(
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
            scripts: if store.feast_writes {
                vec![crate::online::FEAST_WRITE_SCRIPT]
            } else {
                Vec::new()
            },
        })
    }

    /// The URL with its password replaced by `***`.
    pub(crate) fn display(&self) -> &str {
        &self.display
    }

    pub(crate) fn connect(&self) -> redis::RedisResult<redis::Connection> {
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
        let mut con = client.get_connection_with_timeout(self.connect_timeout)?;
        con.set_read_timeout(Some(self.response_timeout))?;
        con.set_write_timeout(Some(self.response_timeout))?;
        for script in &self.scripts {
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(*script)
                .query::<String>(&mut con)?;
        }
        Ok(con)
    }

    /// Connects, or says in words what went wrong (unreachable, auth, db index...).
    pub(crate) fn connect_explained(&self) -> Result<redis::Connection, Error> {
        self.connect().map_err(|e| self.failed("connect").error(e))
    }

    /// The context of a failed call, to build its error from.
    pub(crate) fn failed(&self, operation: &'static str) -> Failed<'_> {
        Failed {
            server: &self.display,
            operation,
            key: None,
            attempts: 1,
            db: self.info.redis_settings().db(),
            response_timeout_ms: self.response_timeout.as_millis(),
        }
    }
}
