//! Durations as feature repos write them: `500ms`, `30s`, `10m`, `2h`, `7d`, `2w`.

/// Parses a duration into milliseconds; the error says what was expected.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("invalid duration `{text}`: expected e.g. 30s, 10m, 2h, 7d"))?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => {
            return Err(format!(
                "invalid duration `{text}`: unit must be one of ms, s, m, h, d, w"
            ));
        }
    };
    match n.checked_mul(unit_ms) {
        Some(0) => Err(format!(
            "invalid duration `{text}`: must be greater than zero"
        )),
        Some(ms) => Ok(ms),
        None => Err(format!("invalid duration `{text}`: too large")),
    }
}

/// Formats milliseconds back into the shortest exact unit (for messages and manifests).
pub fn format_duration_ms(ms: i64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms != 0 && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("10m"), Ok(600_000));
        assert_eq!(parse_duration_ms("2h"), Ok(7_200_000));
        assert_eq!(parse_duration_ms("7d"), Ok(604_800_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert!(parse_duration_ms("1 day").is_err());
        assert!(parse_duration_ms("0s").is_err());
        assert!(parse_duration_ms("h").is_err());
        assert_eq!(format_duration_ms(172_800_000), "2d");
        assert_eq!(format_duration_ms(1_500), "1500ms");
    }
}
