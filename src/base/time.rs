//! Instants as the CLI and manifests spell them: RFC 3339, or naive date/time taken as UTC
//! (SPEC §2.7). Internally every instant is UTC microseconds since the epoch.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

pub fn parse_instant_us(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc).timestamp_micros());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(dt.and_utc().timestamp_micros());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_micros());
    }
    Err(format!(
        "invalid time `{text}`: expected RFC 3339 (2025-11-23T00:00:00Z) or a UTC date (2025-11-23)"
    ))
}

/// Whether `text` is a valid instant written without a UTC offset (taken as UTC).
pub fn lacks_offset(text: &str) -> bool {
    DateTime::parse_from_rfc3339(text.trim()).is_err() && parse_instant_us(text).is_ok()
}

pub fn now_us() -> i64 {
    Utc::now().timestamp_micros()
}

pub fn format_us(us: i64) -> String {
    DateTime::from_timestamp_micros(us)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| format!("{us}us"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let z = parse_instant_us("2025-11-23T00:00:00Z").unwrap();
        assert_eq!(z, 1_763_856_000_000_000);
        assert_eq!(parse_instant_us("2025-11-23T01:00:00+01:00").unwrap(), z);
        assert_eq!(parse_instant_us("2025-11-23").unwrap(), z);
        assert_eq!(parse_instant_us("2025-11-23T00:00:00").unwrap(), z);
        assert_eq!(format_us(z), "2025-11-23T00:00:00Z");
        assert!(parse_instant_us("yesterday").is_err());
        assert!(lacks_offset("2025-11-23") && lacks_offset("2025-11-23T00:00:00"));
        assert!(!lacks_offset("2025-11-23T00:00:00Z") && !lacks_offset("yesterday"));
    }
}
