//! Object stores (S3, GCS, Azure): opening one from a URL with the cloud's own credentials and
//! storage options, its errors without secrets, and reading a whole object. Object-store
//! sources (`offline`) and a Feast registry in a bucket (`repo`) both open their stores here.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::path::Path;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, RetryConfig};

use super::retry::RetryPolicy;

/// One runtime for every store of the process: object_store's clients are async.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fsctl-store")
            .enable_all()
            .build()
            .expect("the object-store runtime starts")
    })
}

/// The whole object at `url` (a Feast registry in S3 or GCS), with the cloud's own
/// credentials and `options` (storage options: endpoint, region...).
pub(crate) fn read_object(url: &str, options: &[(&str, String)]) -> Result<Vec<u8>, String> {
    let (base, key) = split_url(url);
    let parsed = url::Url::parse(base).map_err(|e| format!("invalid URL `{url}`: {e}"))?;
    let options: Vec<(&str, String, bool)> = options
        .iter()
        .map(|(k, v)| (*k, v.clone(), false))
        .collect();
    let opened = open_store(&parsed, &options, RetryPolicy::default())?;
    let secrets: Vec<String> = SECRET_ENV
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .chain(opened.profile_secrets)
        .filter(|s| s.len() >= 8)
        .collect();
    let got = runtime().block_on(async {
        let got = opened.store.get(&literal_path(key)).await?;
        got.bytes().await
    });
    got.map(|b| b.to_vec()).map_err(|e| {
        let mut message = match &e {
            object_store::Error::NotFound { .. } => "no such object".to_owned(),
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                format!(
                    "access denied (credentials from {}): {e}",
                    opened.credentials
                )
            }
            _ => short_error(&e),
        };
        for secret in &secrets {
            message = message.replace(secret.as_str(), "***");
        }
        message
    })
}

/// A store error without the XML body the server sent: its error code and message, when it has
/// them, stand for it.
pub(crate) fn short_error(e: &object_store::Error) -> String {
    let text = e.to_string();
    let Some(body_at) = text.find("<?xml").or_else(|| text.find("<Error>")) else {
        return text;
    };
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find("</")? + start;
        Some(text[start..end].to_owned())
    };
    let head = text[..body_at].trim_end_matches([' ', ':']);
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!("{head}: {code}: {message}"),
        (Some(code), None) => format!("{head}: {code}"),
        _ => head.to_owned(),
    }
}

/// An object key as written: `Path::from` would percent-encode `%`, `~`, `#` and the like,
/// naming another key (Spark writes `00%3A00` into partition directories).
pub(crate) fn literal_path(key: &str) -> Path {
    Path::parse(key).unwrap_or_else(|_| Path::from(key))
}

/// Splits a source URL into `scheme://authority` and the object key (or key pattern) after
/// it, taken literally as the clouds' own tools do: no percent-decoding, and `?` is a glob.
pub(crate) fn split_url(raw: &str) -> (&str, &str) {
    let authority_at = raw.find("://").map_or(0, |i| i + 3);
    match raw[authority_at..].find('/') {
        Some(slash) => (
            &raw[..authority_at + slash],
            &raw[authority_at + slash + 1..],
        ),
        None => (raw, ""),
    }
}

pub(crate) struct OpenedStore {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) credentials: String,
    pub(crate) profile_secrets: Vec<String>,
}

/// Environment variables that hold secrets, blanked out of messages.
pub(crate) const SECRET_ENV: [&str; 10] = [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_TOKEN",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
];

/// Storage options whose value is a secret.
pub(crate) fn is_secret_option(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "secret",
        "token",
        "password",
        "sas",
        "account_key",
        "master_key",
        "service_account_key",
    ]
    .iter()
    .any(|s| key.contains(s))
        || (key.contains("access_key") && !key.ends_with("_id"))
}

/// The shared retry policy as object_store's: the same tries and the same backoff.
pub(crate) fn retry_config(policy: RetryPolicy) -> RetryConfig {
    let attempts = policy.attempts.max(1);
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: policy.base,
            max_backoff: policy.max,
            base: 2.0,
        },
        max_retries: (attempts - 1) as usize,
        retry_timeout: policy.max * attempts + Duration::from_secs(30),
    }
}

pub(crate) fn open_store(
    url: &url::Url,
    options: &[(&str, String, bool)],
    retry: RetryPolicy,
) -> Result<OpenedStore, String> {
    // The HTTP client's TLS takes the process's provider: ring, as everywhere in fsctl.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let has = |keys: &[&str]| options.iter().any(|(k, _, _)| keys.contains(k));
    let env = |name: &str| std::env::var_os(name).is_some();
    match url.scheme() {
        scheme @ ("s3" | "s3a") => {
            let mut builder = AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .with_retry(retry_config(retry));
            let mut profile_secrets = Vec::new();
            let credentials = if has(&["aws_access_key_id", "access_key_id"]) {
                "storage_options aws_access_key_id".to_owned()
            } else if env("AWS_ACCESS_KEY_ID") {
                "AWS_ACCESS_KEY_ID in the environment".to_owned()
            } else if let Some(profile) = aws_profile() {
                builder = builder
                    .with_access_key_id(&profile.key_id)
                    .with_secret_access_key(&profile.secret);
                if let Some(token) = &profile.token {
                    builder = builder.with_token(token);
                    profile_secrets.push(token.clone());
                }
                if let Some(region) = &profile.region
                    && !env("AWS_REGION")
                    && !env("AWS_DEFAULT_REGION")
                {
                    builder = builder.with_region(region);
                }
                profile_secrets.push(profile.secret.clone());
                format!("profile `{}` of {}", profile.name, profile.file)
            } else if env("AWS_WEB_IDENTITY_TOKEN_FILE") {
                "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)".to_owned()
            } else if env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
                "the ECS container credentials endpoint".to_owned()
            } else {
                "the EC2 instance metadata service (no AWS keys in storage_options, the \
                 environment or a profile)"
                    .to_owned()
            };
            builder = configure(builder, options, scheme, |b, k: AmazonS3ConfigKey, v| {
                b.with_config(k, v)
            })?;
            let store = builder.build().map_err(|e| e.to_string())?;
            Ok(OpenedStore {
                store: Arc::new(store),
                credentials,
                profile_secrets,
            })
        }
        "gs" => {
            let mut builder = GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry_config(retry));
            let credentials = if has(&["google_service_account", "service_account"]) {
                "storage_options google_service_account"
            } else if has(&["google_service_account_key", "service_account_key"]) {
                "storage_options google_service_account_key"
            } else if env("GOOGLE_SERVICE_ACCOUNT") || env("GOOGLE_APPLICATION_CREDENTIALS") {
                "the service account file in the environment"
            } else {
                "application default credentials or the metadata server (workload identity)"
            };
            builder = configure(builder, options, "gs", |b, k: GoogleConfigKey, v| {
                b.with_config(k, v)
            })?;
            let store = builder.build().map_err(|e| e.to_string())?;
            Ok(OpenedStore {
                store: Arc::new(store),
                credentials: credentials.to_owned(),
                profile_secrets: Vec::new(),
            })
        }
        scheme @ ("az" | "azure" | "abfs" | "abfss") => {
            let mut builder = MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry_config(retry));
            let credentials = if has(&[
                "azure_storage_account_key",
                "azure_storage_access_key",
                "azure_storage_master_key",
                "account_key",
                "access_key",
                "master_key",
            ]) || ["ACCOUNT_KEY", "ACCESS_KEY", "MASTER_KEY"]
                .iter()
                .any(|k| env(&format!("AZURE_STORAGE_{k}")))
            {
                "an account key"
            } else if has(&["azure_storage_sas_key", "sas_key", "sas_token"])
                || env("AZURE_STORAGE_SAS_KEY")
            {
                "a SAS token"
            } else if has(&["azure_storage_token", "bearer_token", "token"])
                || env("AZURE_STORAGE_TOKEN")
            {
                "a bearer token"
            } else if env("AZURE_CLIENT_SECRET") || env("AZURE_STORAGE_CLIENT_SECRET") {
                "a service principal (AZURE_CLIENT_ID / AZURE_CLIENT_SECRET)"
            } else if env("AZURE_FEDERATED_TOKEN_FILE") {
                "workload identity (AZURE_FEDERATED_TOKEN_FILE)"
            } else {
                "managed identity (no key, SAS or client secret given)"
            };
            builder = configure(builder, options, scheme, |b, k: AzureConfigKey, v| {
                b.with_config(k, v)
            })?;
            let store = builder.build().map_err(|e| e.to_string())?;
            Ok(OpenedStore {
                store: Arc::new(store),
                credentials: credentials.to_owned(),
                profile_secrets: Vec::new(),
            })
        }
        other => Err(format!("`{other}://` is not a supported object store")),
    }
}

/// Applies the storage options a store knows. A source's own unknown key is refused by name;
/// `offline_store`'s options serve every cloud, so each store takes only its own.
pub(crate) fn configure<B, K: std::str::FromStr<Err = object_store::Error>>(
    mut builder: B,
    options: &[(&str, String, bool)],
    scheme: &str,
    with: impl Fn(B, K, &str) -> B,
) -> Result<B, String> {
    for (key, value, shared) in options {
        match key.parse::<K>() {
            Ok(k) => builder = with(builder, k, value),
            Err(_) if *shared => {}
            Err(e) => {
                return Err(format!(
                    "unknown storage option `{key}` for {scheme}:// URLs ({e})"
                ));
            }
        }
    }
    Ok(builder)
}

/// Keys of a shared-credentials profile (`AWS_PROFILE`, else `default`).
pub(crate) struct AwsProfile {
    name: String,
    file: String,
    key_id: String,
    secret: String,
    token: Option<String>,
    region: Option<String>,
}

/// Reads the profile the AWS CLI would use from `~/.aws/credentials` (or
/// `AWS_SHARED_CREDENTIALS_FILE`), and its region from `~/.aws/config` (or `AWS_CONFIG_FILE`).
pub(crate) fn aws_profile() -> Option<AwsProfile> {
    let home = std::env::var("HOME").unwrap_or_default();
    let name = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
    let file = std::env::var("AWS_SHARED_CREDENTIALS_FILE")
        .unwrap_or_else(|_| format!("{home}/.aws/credentials"));
    let creds = ini_section(&std::fs::read_to_string(&file).ok()?, &name);
    let get = |section: &[(String, String)], key: &str| {
        section
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let config_file =
        std::env::var("AWS_CONFIG_FILE").unwrap_or_else(|_| format!("{home}/.aws/config"));
    let config = std::fs::read_to_string(config_file).unwrap_or_default();
    let config_section = if name == "default" {
        ini_section(&config, "default")
    } else {
        ini_section(&config, &format!("profile {name}"))
    };
    Some(AwsProfile {
        key_id: get(&creds, "aws_access_key_id")?,
        secret: get(&creds, "aws_secret_access_key")?,
        token: get(&creds, "aws_session_token"),
        region: get(&config_section, "region"),
        name,
        file,
    })
}

/// The `key = value` lines of section `[name]` of an INI text.
pub(crate) fn ini_section(text: &str, name: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = header.trim() == name;
        } else if inside && let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_store_and_literal_key() {
        assert_eq!(split_url("s3://b/features/"), ("s3://b", "features/"));
        assert_eq!(split_url("s3://b/"), ("s3://b", ""));
        assert_eq!(split_url("s3://b"), ("s3://b", ""));
        assert_eq!(
            split_url("s3://b/a/*/part-?.parquet"),
            ("s3://b", "a/*/part-?.parquet")
        );
        assert_eq!(split_url("s3://b/a%20b/x"), ("s3://b", "a%20b/x"));
        assert_eq!(
            split_url("abfss://c@acct.dfs.core.windows.net/t/"),
            ("abfss://c@acct.dfs.core.windows.net", "t/")
        );
    }

    #[test]
    fn store_errors_lose_the_xml_body_but_keep_its_code_and_message() {
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Server returned 403 Forbidden: <?xml version=\"1.0\"?><Error><Code>\
                     AccessDenied</Code><Message>Access Denied</Message><RequestId>x</RequestId>\
                     </Error>"
                .into(),
        };
        assert_eq!(
            short_error(&e),
            "Generic S3 error: Server returned 403 Forbidden: AccessDenied: Access Denied"
        );
        let plain = object_store::Error::Generic {
            store: "S3",
            source: "connection refused".into(),
        };
        assert_eq!(short_error(&plain), "Generic S3 error: connection refused");
    }

    #[test]
    fn keys_stay_literal() {
        assert_eq!(literal_path("t/ts=00%3A00/x").as_ref(), "t/ts=00%3A00/x");
        assert_eq!(literal_path("a~b#c").as_ref(), "a~b#c");
    }

    #[test]
    fn shared_options_of_another_cloud_are_skipped_a_sources_own_are_not() {
        let url = url::Url::parse("s3://bucket").unwrap();
        let shared = [("google_service_account", "x".to_owned(), true)];
        assert!(open_store(&url, &shared, RetryPolicy::default()).is_ok());
        let own = [("google_service_account", "x".to_owned(), false)];
        let e = open_store(&url, &own, RetryPolicy::default())
            .err()
            .expect("refused");
        assert!(
            e.contains("unknown storage option `google_service_account` for s3:// URLs"),
            "{e}"
        );
    }

    #[test]
    fn profile_sections_are_read_by_name() {
        let text = "[default]\naws_access_key_id = A\n[prod]\naws_access_key_id=B\n \
                    aws_secret_access_key = s=cret\n";
        let prod = ini_section(text, "prod");
        assert_eq!(
            prod,
            [
                ("aws_access_key_id".to_owned(), "B".to_owned()),
                ("aws_secret_access_key".to_owned(), "s=cret".to_owned())
            ]
        );
        assert_eq!(ini_section(text, "default").len(), 1);
        assert!(ini_section(text, "other").is_empty());
    }

    #[test]
    fn secret_options_are_recognised() {
        for key in [
            "aws_secret_access_key",
            "aws_session_token",
            "azure_storage_account_key",
            "azure_storage_sas_key",
            "google_service_account_key",
            "access_key",
            "azure_storage_access_key",
            "master_key",
        ] {
            assert!(is_secret_option(key), "{key}");
        }
        for key in ["aws_access_key_id", "aws_region", "aws_endpoint"] {
            assert!(!is_secret_option(key), "{key}");
        }
    }
}
