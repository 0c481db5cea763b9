//! One HTTP request out of the process, for what reports on a run rather than does it (a
//! Prometheus Pushgateway, an OpenLineage endpoint). It goes through the object stores' own
//! client (reqwest, rustls with ring), so it needs the `cloud` feature; a build without it says
//! so instead. Errors never carry a URL's password.

use std::time::Duration;

use super::secrets::redact_url;

/// How long one report may take before it is given up (it never fails the run).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// When every report still to send must be done: the reports of a run share one budget, so
/// that a slow endpoint cannot hold a run past its pod's grace period.
static DEADLINE: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);

/// Gives the reports sent from now on `budget` in all.
pub fn budget(budget: Duration) {
    *DEADLINE.lock().unwrap() = Some(std::time::Instant::now() + budget);
}

/// The time the next request may take: `TIMEOUT`, or what is left of the budget.
fn time_left(shown: &str) -> Result<Duration, String> {
    let left = match *DEADLINE.lock().unwrap() {
        Some(deadline) => deadline.saturating_duration_since(std::time::Instant::now()),
        None => TIMEOUT,
    };
    if left < Duration::from_millis(50) {
        return Err(format!(
            "{shown}: not sent, the run's time for reports ran out"
        ));
    }
    Ok(left.min(TIMEOUT))
}

/// A URL as fsctl shows it: no password, no query (which may carry a key).
fn shown(url: &str) -> String {
    let shown = redact_url(url);
    match shown.split_once('?') {
        Some((base, _)) => format!("{base}?..."),
        None => shown,
    }
}

/// Sends `body` to `url` with `method` and `headers`; any status but 2xx is an error.
#[cfg(feature = "cloud")]
pub fn send(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<(), String> {
    use std::sync::OnceLock;
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    let client = CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .timeout(TIMEOUT)
                .connect_timeout(TIMEOUT)
                .build()
                .map_err(|e| format!("no HTTP client: {e}"))
        })
        .as_ref()?;
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let shown = shown(url);
    let timeout = time_left(&shown)?;
    let mut request = client.request(method, url).timeout(timeout).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    super::objects::runtime().block_on(async {
        let response = request
            .send()
            .await
            .map_err(|e| format!("{shown}: {}", describe(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let text: String = text.trim().chars().take(200).collect();
        Err(format!("{shown}: HTTP {status}: {text}"))
    })
}

/// Why a request failed, without reqwest's URL (which may hold a password).
#[cfg(feature = "cloud")]
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = None;
    while let Some(s) = source {
        detail = Some(s.to_string());
        source = s.source();
    }
    match detail {
        Some(d) => format!("{kind} ({d})"),
        None => kind.to_owned(),
    }
}

#[cfg(not(feature = "cloud"))]
#[allow(clippy::unnecessary_wraps)]
pub fn send(
    _method: &str,
    url: &str,
    _headers: &[(&str, String)],
    _body: Vec<u8>,
) -> Result<(), String> {
    Err(format!(
        "{}: this fsctl was built without the `cloud` feature, which carries its HTTP client",
        shown(url)
    ))
}
