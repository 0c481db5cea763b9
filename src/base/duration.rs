//! Durations as feature repos write them: `500ms`, `30s`, `10m`, `2h`, `7d`, `2w`, and compounds
//! of those such as `1d12h`.

/// Units, largest first: a compound duration (`1d12h`) names each at most once, in this order.
const UNITS: [(&str, i64); 6] = [
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a duration into milliseconds: one or more `<number><unit>` parts, largest unit first
/// (`30s`, `10m`, `2h`, `7d`, `1d12h`, `1h30m`); the error says what was expected.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let expected = "expected e.g. 30s, 10m, 2h, 7d or 1d12h (units ms, s, m, h, d, w)";
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(format!("invalid duration `{text}`: {expected}"));
    }
    let mut total: i64 = 0;
    let mut last_unit = None;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(digits);
        let n: i64 = num
            .parse()
            .map_err(|_| format!("invalid duration `{text}`: {expected}"))?;
        let letters = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(letters);
        let Some(at) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(format!(
                "invalid duration `{text}`: `{unit}` is not a unit; {expected}"
            ));
        };
        if last_unit.is_some_and(|l| at <= l) {
            return Err(format!(
                "invalid duration `{text}`: write each unit once, largest first (as in 1d12h)"
            ));
        }
        last_unit = Some(at);
        total = n
            .checked_mul(UNITS[at].1)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("invalid duration `{text}`: too large"))?;
        rest = tail;
    }
    if total == 0 {
        return Err(format!(
            "invalid duration `{text}`: must be greater than zero"
        ));
    }
    Ok(total)
}

/// Formats milliseconds the way durations are written, largest unit first (`2d`, `1d12h`,
/// `24d5h28m51s`), weeks left as days. Exact: it parses back to the same value.
pub fn format_duration_ms(ms: i64) -> String {
    if ms <= 0 {
        return format!("{ms}ms");
    }
    let mut out = String::new();
    let mut left = ms;
    for (unit, size) in &UNITS[1..] {
        if left >= *size {
            out.push_str(&format!("{}{unit}", left / size));
            left %= size;
        }
    }
    out
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
        assert_eq!(parse_duration_ms("1d12h"), Ok(129_600_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("2w1d"), Ok(15 * 86_400_000));
        assert!(
            parse_duration_ms("30m1h")
                .unwrap_err()
                .contains("largest first")
        );
        assert!(parse_duration_ms("1h1h").is_err());
        assert!(
            parse_duration_ms("1day")
                .unwrap_err()
                .contains("`day` is not a unit")
        );
        assert!(parse_duration_ms("").is_err());
        assert_eq!(format_duration_ms(172_800_000), "2d");
        assert_eq!(format_duration_ms(129_600_000), "1d12h");
        assert_eq!(format_duration_ms(1_500), "1s500ms");
        assert_eq!(format_duration_ms(2_093_331_000), "24d5h28m51s");
        for ms in [1, 999, 60_000, 129_600_000, 2_093_331_123] {
            assert_eq!(parse_duration_ms(&format_duration_ms(ms)), Ok(ms));
        }
    }
}
