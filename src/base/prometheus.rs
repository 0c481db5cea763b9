//! Prometheus text exposition (format 0.0.4), the little of it fsctl writes: gauges with their
//! help, labels escaped. `fsctl status --format prometheus` and `--metrics-file` both write it.

use std::fmt::Write as _;

/// Appends a gauge: its `# HELP` and `# TYPE` lines, one sample per `(labels, value)` (labels
/// already rendered with `labels`), then `verbatim` sample lines kept from an earlier file.
pub fn gauge(
    out: &mut String,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (String, f64)>,
    verbatim: &[&str],
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
    for line in verbatim {
        let _ = writeln!(out, "{line}");
    }
}

/// `name="value",...`, each value escaped as the format asks (`\`, `"` and newlines).
pub fn labels(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            let value = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{name}=\"{value}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_and_escaped_labels() {
        let mut out = String::new();
        let l = labels(&[("project", "p"), ("service", "a\"b\\c\nd")]);
        gauge(&mut out, "m", "Help.", [(l, 1.5)], &["m{x=\"kept\"} 2"]);
        assert_eq!(
            out,
            "# HELP m Help.\n# TYPE m gauge\nm{project=\"p\",service=\"a\\\"b\\\\c\\nd\"} 1.5\nm{x=\"kept\"} 2\n"
        );
    }
}
