//! Secrets in configuration: `${VAR}` expansion from the environment, and redaction of
//! passwords in URLs. Everything fsctl prints about an endpoint goes through `redact_url`.

use super::error::Error;

/// Replaces the password in a `redis://user:password@host` URL with `***` (every URL of a
/// comma-separated list).
pub fn redact_url(url: &str) -> String {
    split_urls(url)
        .into_iter()
        .map(redact_one)
        .collect::<Vec<_>>()
        .join(",")
}

/// The URLs of a comma-separated list (a cluster's seeds). A URL starts at a comma followed
/// by `redis://`, `rediss://` or `${`; any other comma belongs to the URL before it (a password
/// may hold one), so that no piece of a password is ever taken for a URL of its own.
pub fn split_urls(list: &str) -> Vec<&str> {
    let starts_url = |s: &str| {
        let s = s.trim_start();
        s.starts_with("redis://") || s.starts_with("rediss://") || s.starts_with("${")
    };
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in list.match_indices(',') {
        if starts_url(&list[i + 1..]) {
            out.push(list[start..i].trim());
            start = i + 1;
        }
    }
    out.push(list[start..].trim());
    out
}

fn redact_one(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        // Not a URL; what comes before an `@` may still be a secret.
        return match url.rfind('@') {
            Some(at) => format!("***{}", &url[at..]),
            None => url.to_owned(),
        };
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

/// Expands `${VAR}` from the environment in the setting `what` (named in errors); an unset
/// variable is a configuration error. The text itself is only ever shown redacted.
pub fn expand_env(text: &str, what: &str) -> Result<String, Error> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').ok_or_else(|| {
            Error::config(format!(
                "{what}: unterminated `${{` in `{}`",
                redact_url(text)
            ))
        })? + start;
        let name = &rest[start + 2..end];
        let value = std::env::var(name).map_err(|_| {
            Error::config(format!(
                "{what} refers to environment variable `{name}`, which is not set"
            ))
        })?;
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
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
        // A comma inside a password neither splits the list nor shows a piece of it.
        assert_eq!(
            redact_url("redis://:pa,ss@h1:1,redis://:b@h2:2"),
            "redis://:***@h1:1,redis://:***@h2:2"
        );
        assert_eq!(
            split_urls("redis://:pa,ss@h1:1, rediss://h2:2"),
            ["redis://:pa,ss@h1:1", "rediss://h2:2"]
        );
        assert_eq!(redact_url("pa,ss@h:1"), "***@h:1");
        assert_eq!(redact_url("redis://tok@h"), "redis://***@h");
        assert_eq!(
            redact_url("redis://:a@h1:1,redis://:b@h2:2"),
            "redis://:***@h1:1,redis://:***@h2:2"
        );
    }

    #[test]
    fn expands_set_variables_and_names_unset_ones() {
        let path = std::env::var("PATH").unwrap();
        assert_eq!(
            expand_env("a${PATH}b", "online_store.url").unwrap(),
            format!("a{path}b")
        );
        let e = expand_env("${FSCTL_TEST_UNSET_VAR}", "online_store.url").unwrap_err();
        assert!(e.to_string().contains("`FSCTL_TEST_UNSET_VAR`"), "{e}");
    }
}
