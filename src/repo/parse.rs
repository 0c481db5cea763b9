//! `feature_store.yaml` into `RawRepo`, reporting every problem of shape in one run: an unknown
//! key is renamed to the key it most likely misspells (or dropped), a missing required key gets
//! a placeholder, and a value of the wrong shape is replaced by one of the right shape; then the
//! text is parsed again. Placeholders hold `MISSING`, and findings that only name a placeholder
//! are dropped, so each problem is reported once, with the shape that was wanted.

use std::path::Path;

use super::raw;
use crate::base::finding::Finding;
use crate::base::suggest::closest;

/// The value of every placeholder; a finding that names it is about the placeholder only.
pub(super) const MISSING: &str = "?missing?";

/// Parses the YAML, recovering from each unknown key, missing required key and value of the
/// wrong shape to report the next (bounded, to stay cheap). A YAML syntax error stops there.
/// What `parse_all` found: the raw repo when the text could be made to parse, the findings, and
/// for each line of the text parsed last the line of the file it comes from.
pub(super) struct Parsed {
    pub raw: Option<raw::RawRepo>,
    pub findings: Vec<Finding>,
    origin: Vec<u64>,
}

impl Parsed {
    /// `f` with its line moved from the text parsed last to the file's.
    pub(super) fn in_file(&self, mut f: Finding) -> Finding {
        if let Some(line) = f.line {
            f.line = Some(self.origin.get(line as usize - 1).copied().unwrap_or(line));
        }
        f
    }
}

pub(super) fn parse_all(text: &str, file: &Path) -> Parsed {
    let mut findings: Vec<Finding> = Vec::new();
    let mut text = text.to_owned();
    // Lines whose value was replaced after a shape error, and keys dropped with their line.
    let mut replaced: Vec<usize> = Vec::new();
    let mut dropped: Vec<String> = Vec::new();
    // The line of the file each line of `text` comes from (placeholders may add lines).
    let mut origin: Vec<u64> = (1..=text.lines().count() as u64 + 1).collect();
    for _ in 0..100 {
        let e = match serde_saphyr::from_str::<raw::RawRepo>(&text) {
            Ok(raw) => {
                return Parsed {
                    raw: Some(raw),
                    findings,
                    origin,
                };
            }
            Err(e) => e,
        };
        let plain = e.without_snippet();
        let message = yaml_message(&plain.to_string());
        let Some((line, col)) = plain
            .location()
            .map(|l| (l.line() as usize, l.column() as usize))
        else {
            findings.push(Finding::error("invalid-yaml", file, message));
            return Parsed {
                raw: None,
                findings,
                origin,
            };
        };
        let orig = |line: usize| origin.get(line - 1).copied().unwrap_or(line as u64);
        let at = |f: Finding| f.at(orig(line), col as u64);
        if message.starts_with("unknown field") {
            let name = message.split('`').nth(1).unwrap_or_default().to_owned();
            let guess = closest_key(&name, &message);
            let mut shown = message.clone();
            if let Some(g) = &guess {
                shown.push_str(&format!(" (did you mean `{g}`?)"));
            }
            findings.push(at(Finding::error("unknown-key", file, shown)).named(name.clone()));
            text = match guess {
                Some(g) if !sibling_keys(&text, line, col).contains(&g.as_str()) => {
                    rename_key(&text, line, &name, &g)
                }
                _ => blank_line(&text, line),
            };
        } else if let Some(key) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
            .map(str::to_owned)
        {
            // Reported where the mapping starts (the top level's: where the file starts).
            let shown = if matches!(key.as_str(), "project" | "online_store") {
                (1, 1)
            } else {
                (orig(mapping_start(&text, line, col)), col as u64)
            };
            let at = |f: Finding| f.at(shown.0, shown.1);
            let context = Context::of(&text, line, col);
            if !dropped.contains(&key) {
                findings.push(
                    at(Finding::error(
                        "missing-key",
                        file,
                        format!(
                            "missing required key `{key}`: {} (see docs/configuration.md)",
                            wanted(&key, context)
                        ),
                    ))
                    .named(key.clone()),
                );
            }
            let (patched, added) = insert_key(&text, line, col, &key, &placeholder(&key, context));
            if added {
                origin.insert(line - 1, orig(line));
            }
            text = patched;
        } else if is_shape_error(&message) {
            // The key whose value has the wrong shape: on this line, or the item's parent's.
            let (key_line, key) = match key_at(&text, line, col) {
                Some(k) => k,
                None => {
                    findings.push(at(Finding::error("invalid-yaml", file, message)));
                    return Parsed {
                        raw: None,
                        findings,
                        origin,
                    };
                }
            };
            let key_col = text
                .lines()
                .nth(key_line - 1)
                .map_or(1, |l| l.find(key.as_str()).map_or(1, |i| i + 1));
            let context = Context::of(&text, key_line, key_col);
            if !findings
                .iter()
                .any(|f| f.line == Some(orig(line)) && f.code == "invalid-shape")
            {
                findings.push(
                    Finding::error(
                        "invalid-shape",
                        file,
                        format!(
                            "`{key}` has the wrong shape ({}): it takes {} (see \
                             docs/configuration.md)",
                            found(&message),
                            shape(&key, context)
                        ),
                    )
                    .at(orig(line), col as u64)
                    .named(key.clone()),
                );
            }
            text = if replaced.contains(&key_line) {
                dropped.push(key);
                blank_line(&text, key_line)
            } else {
                replaced.push(key_line);
                replace_value(&text, key_line, &key, &placeholder(&key, context))
            };
        } else {
            findings.push(at(Finding::error("invalid-yaml", file, message)));
            return Parsed {
                raw: None,
                findings,
                origin,
            };
        }
    }
    Parsed {
        raw: None,
        findings,
        origin,
    }
}

/// Errors about a value's shape (a list where a mapping belongs, say), as serde and the YAML
/// parser word them, rather than about the YAML's syntax.
fn is_shape_error(message: &str) -> bool {
    [
        "invalid type",
        "data did not match any variant",
        "invalid length",
    ]
    .iter()
    .any(|p| message.starts_with(p))
        || (message.starts_with("expected ")
            && ["mapping start", "sequence start", "scalar", "a "]
                .iter()
                .any(|w| message["expected ".len()..].starts_with(w)))
}

/// What serde found, without the names of fsctl's own types.
fn found(message: &str) -> String {
    if message.starts_with("data did not match any variant") {
        return "an item matches neither form".into();
    }
    match message.split_once(", expected ") {
        Some((what, _)) => what.to_owned(),
        None => message.to_owned(),
    }
}

/// Where in the repo a key sits, as far as its meaning depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    TopLevel,
    View,
    Service,
    Other,
}

impl Context {
    /// The context of the mapping holding the key at `line`, `col` (1-based).
    fn of(text: &str, line: usize, col: usize) -> Context {
        let siblings = sibling_keys(text, line, col);
        let has = |k: &str| siblings.contains(&k);
        if col == 1 {
            Context::TopLevel
        } else if has("source") || has("ttl") || has("entities") {
            Context::View
        } else if has("online_ttl") || has("hot_ttl") || !has("dtype") && has("features") {
            Context::Service
        } else {
            Context::Other
        }
    }
}

/// What a missing required key holds, for its message.
fn wanted(key: &str, context: Context) -> &'static str {
    match (key, context) {
        ("project", _) => "the project name, e.g. `project: banking`",
        ("online_store", _) => {
            "where to write, e.g. `online_store: {type: redis, url: redis://127.0.0.1:6379/0}`"
        }
        ("type", _) => "`redis` (one server) or `redis_cluster`",
        ("url", _) => "the server, e.g. `url: redis://127.0.0.1:6379/0`",
        ("name", _) => "every entity, join key, source, view, feature and service has a `name`",
        ("dtype", _) => {
            "its dtype: int32, int64, float32, float64, bool, string, bytes, timestamp or list<T>"
        }
        ("join_keys", _) => "the key columns, e.g. `join_keys: [{name: user_id, dtype: int64}]`",
        ("path", _) => "the Parquet file, directory, glob or object-store URL to read",
        ("timestamp_field", _) => "the event-time column, e.g. `timestamp_field: event_timestamp`",
        ("entities", _) => "the view's entity, e.g. `entities: [user]`",
        ("source", _) => "the name of the source the view reads",
        ("ttl", _) => "the oldest a row may be to be served, e.g. `ttl: 1d`",
        ("features", Context::View) => {
            "the view's features, e.g. `features: [{name: clicks, dtype: int64}]`"
        }
        ("features", _) => "the views (or `{view: v, features: [a]}`) the service serves",
        ("view", _) => "the view to pick features from",
        _ => "see the key tables",
    }
}

/// What a key takes, for the message of a value of the wrong shape.
fn shape(key: &str, context: Context) -> &'static str {
    match (key, context) {
        ("join_keys", _) => {
            "a list of key columns, each a mapping: `join_keys: [{name: user_id, dtype: int64}]`"
        }
        ("entities", Context::TopLevel) => {
            "a list of entities, each `{name: user, join_keys: [{name: user_id, dtype: int64}]}`"
        }
        ("entities", _) => "a list holding the view's one entity name: `entities: [user]`",
        ("sources", _) => {
            "a list of sources, each a mapping with `name`, `path` and `timestamp_field`"
        }
        ("feature_views", _) => {
            "a list of views, each a mapping with `name`, `entities`, `source`, `ttl` and `features`"
        }
        ("feature_services", _) => "a list of services, each a mapping with `name` and `features`",
        ("features", Context::View) => {
            "a list of features, each a mapping: `- {name: clicks, dtype: int64, default: 0}`"
        }
        ("features", _) => {
            "a list whose items are a view name (`- my_view`: all its features) or \
             `{view: my_view, features: [a, b]}` (some of them)"
        }
        ("field_mapping", _) => {
            "a mapping from source column to feature name: `{txn_cnt: tx_count}`"
        }
        ("storage_options", _) => "a mapping of option to value: `{aws_region: eu-west-1}`",
        ("checks", _) => {
            "a mapping: `{min: 0, max: 1, max_null_fraction: 0.05}` on a feature, \
             `{min_entities: 100}` on a view"
        }
        ("online_store", _) => "a mapping with `type` and `url`",
        ("hot_entities", _) => {
            "a mapping: `{path: data/popularity.parquet, score_column: requests}`"
        }
        ("materialization", _) => "a mapping such as `{ttl_jitter: 0.2, keep_snapshots: 2}`",
        ("offline_store", _) => "a mapping: `{storage_options: {aws_region: eu-west-1}}`",
        _ => "a single value",
    }
}

/// A value of the right shape for `key`, built around `MISSING`.
fn placeholder(key: &str, context: Context) -> String {
    let m = format!("\"{MISSING}\"");
    match (key, context) {
        ("join_keys", _) => format!("[{{name: {m}, dtype: int64}}]"),
        ("entities" | "sources" | "feature_views" | "feature_services", Context::TopLevel) => {
            "[]".into()
        }
        ("entities", _) => format!("[{m}]"),
        ("features", Context::View) => format!("[{{name: {m}, dtype: int64}}]"),
        ("features", _) => format!("[{m}]"),
        ("online_store", _) => format!("{{type: redis, url: {m}}}"),
        ("hot_entities", _) => format!("{{path: {m}}}"),
        (
            "field_mapping" | "storage_options" | "checks" | "materialization" | "offline_store",
            _,
        ) => "{}".into(),
        _ => m,
    }
}

/// The key a shape error at `line`, `col` is about, with its line: the line's own key when the
/// error lies in its value, else the nearest key above with less indentation (an item of its
/// list).
fn key_at(text: &str, line: usize, col: usize) -> Option<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line - 1)?;
    if let Some((at, _, key)) = key_of(here)
        && at + key.len() < col
    {
        return Some((line, key.to_owned()));
    }
    let indent = |l: &str| l.len() - l.trim_start().len();
    let base = indent(here).min(col.saturating_sub(1));
    lines[..line - 1]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, l)| match key_of(l) {
            Some((at, _, key)) if at - 1 < base && !l.trim_start().starts_with('#') => {
                Some((i + 1, key.to_owned()))
            }
            _ => None,
        })
}

/// Inserts `key: value` into the mapping that has a key at `line`, `col` (1-based): into a flow
/// mapping (`{...}`) in front of that key, else as a line of its own at that column. Says
/// whether a line was added.
fn insert_key(text: &str, line: usize, col: usize, key: &str, value: &str) -> (String, bool) {
    let mut added = false;
    let text = map_line(text, line, |l| {
        let at = (col - 1).min(l.len());
        let (before, after) = l.split_at(at);
        let in_flow = before.matches('{').count() > before.matches('}').count();
        if in_flow {
            format!("{before}{key}: {value}, {after}")
        } else if after.trim().is_empty() {
            format!("{before}{key}: {value}")
        } else {
            added = true;
            format!("{before}{key}: {value}\n{}{after}", " ".repeat(at))
        }
    });
    (text, added)
}

/// The line where the block mapping holding the key at `line`, `col` starts: its list item's
/// `- ` line, or its first key.
fn mapping_start(text: &str, line: usize, col: usize) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = line;
    for n in (1..=line.min(lines.len())).rev() {
        match key_of(lines[n - 1]) {
            Some((at, item, _)) if at == col => {
                start = n;
                if item {
                    break;
                }
            }
            Some((at, _, _)) if at < col => break,
            _ => {}
        }
    }
    start
}

/// Replaces the value of `key` on `line` (and the lines nested under it) with `value`.
fn replace_value(text: &str, line: usize, key: &str, value: &str) -> String {
    let blanked = blank_nested(text, line);
    map_line(&blanked, line, |l| match l.find(&format!("{key}:")) {
        Some(i) => format!("{}{key}: {value}", &l[..i]),
        None => l.to_owned(),
    })
}

fn map_line(text: &str, n: usize, f: impl FnOnce(&str) -> String) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if let Some(l) = lines.get_mut(n - 1) {
        *l = f(l);
    }
    lines.join("\n")
}

/// The expected key closest to `unknown` among those serde lists in `message` ("expected one
/// of a, b, c"), when one is close enough to be a typo of it.
fn closest_key(unknown: &str, message: &str) -> Option<String> {
    let expected = message.split("expected one of ").nth(1)?;
    closest(
        unknown,
        expected
            .split(',')
            .map(|k| k.trim().trim_matches('`'))
            .filter(|k| !k.is_empty()),
    )
    .map(str::to_owned)
}

/// The keys of the mapping that holds the key at line `n`, column `col` (both 1-based): the
/// keys of its flow mapping `{a: 1, b: 2}` when the line has one, else the block keys at the
/// same column from the start of the mapping (`- ` marks an item's first key) to its end.
fn sibling_keys(text: &str, n: usize, col: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(line) = lines.get(n - 1) else {
        return Vec::new();
    };
    if let Some(open) = line.find('{') {
        return line[open + 1..]
            .split(',')
            .filter_map(|kv| kv.split(':').next().map(str::trim))
            .collect();
    }
    let mut keys = Vec::new();
    // Upwards to the mapping's first key, then downwards to its end.
    for l in lines[..n].iter().rev() {
        match key_of(l) {
            Some((at, item, key)) if at == col => {
                keys.push(key);
                if item {
                    break;
                }
            }
            Some((at, _, _)) if at < col => break,
            _ => {}
        }
    }
    for l in &lines[n..] {
        match key_of(l) {
            Some((at, false, key)) if at == col => keys.push(key),
            Some((at, item, _)) if at < col || (at == col && item) => break,
            _ => {}
        }
    }
    keys
}

/// The block-mapping key a line starts with: its 1-based column, whether it opens a list item
/// (`- key:`), and the key.
fn key_of(l: &str) -> Option<(usize, bool, &str)> {
    let trimmed = l.trim_start();
    let (item, rest) = match trimmed.strip_prefix("- ") {
        Some(rest) => (true, rest.trim_start()),
        None => (false, trimmed),
    };
    let key = rest.split(':').next()?.trim();
    let at = l.len() - rest.len() + 1;
    (!key.is_empty() && rest.contains(':') && !key.starts_with('#')).then_some((at, item, key))
}

/// Replaces the key `from` on line `n` (1-based) with `to`.
fn rename_key(text: &str, n: usize, from: &str, to: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == n {
                l.replacen(&format!("{from}:"), &format!("{to}:"), 1)
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Replaces line `n` (1-based) and the lines nested under it with empty lines.
fn blank_line(text: &str, n: usize) -> String {
    map_line(&blank_nested(text, n), n, |_| String::new())
}

/// Replaces the lines nested under line `n` (1-based) with empty lines.
fn blank_nested(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let Some(first) = lines.get(n - 1) else {
        return text.to_owned();
    };
    let base = indent(first);
    let mut out = Vec::with_capacity(lines.len());
    let mut nested = true;
    for (i, l) in lines.iter().enumerate() {
        let under = i >= n && nested && (l.trim().is_empty() || indent(l) > base);
        if under {
            out.push("");
        } else {
            nested &= i < n;
            out.push(l);
        }
    }
    out.join("\n")
}

/// serde-saphyr appends its own location; ours goes in front, so strip the duplicate.
fn yaml_message(message: &str) -> String {
    let trimmed = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    trimmed.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::suggest::edit_distance;

    #[test]
    fn a_typo_is_matched_to_the_key_it_misspells() {
        let msg = "unknown field `timestamp_feild`, expected one of name, path, timestamp_field, description";
        assert_eq!(
            closest_key("timestamp_feild", msg).as_deref(),
            Some("timestamp_field")
        );
        assert_eq!(closest_key("zzzzzz", msg), None);
        assert_eq!(edit_distance("tll", "ttl"), 1);
        assert_eq!(edit_distance("onlin_ttl", "online_ttl"), 1);
        assert_eq!(
            rename_key("a:\n  tll: 1d\n", 2, "tll", "ttl"),
            "a:\n  ttl: 1d"
        );
        let yaml = "views:\n  - name: v\n    ttl: 1d\n    tll: 2d\n    features: []\n  - name: w\n";
        assert_eq!(
            sibling_keys(yaml, 4, 5),
            vec!["tll", "ttl", "name", "features"]
        );
        assert_eq!(
            sibling_keys("  - {name: a, dtyp: int64}", 1, 16),
            vec!["name", "dtyp"]
        );
    }
}

#[cfg(test)]
mod recovery {
    use super::super::load_all;

    /// The findings (code, line, message) of `yaml` as a repo.
    fn findings(yaml: &str) -> Vec<(String, Option<u64>, String)> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("feature_store.yaml"), yaml).unwrap();
        load_all(dir.path())
            .unwrap()
            .findings
            .into_iter()
            .filter(|f| f.severity == crate::base::finding::Severity::Error)
            .map(|f| (f.code.to_owned(), f.line, f.message))
            .collect()
    }

    const REPO: &str = "project: p
online_store: {type: redis, url: \"redis://127.0.0.1:6379/0\"}
entities:
  - name: user
    join_keys: [{name: user_id, dtype: int64}]
sources:
  - name: src
    path: a.parquet
    timestamp_field: ts
feature_views:
  - name: stats
    entities: [user]
    source: src
    ttl: 1d
    features:
      - {name: clicks, dtype: int64, default: 0}
feature_services:
  - name: svc
    features: [stats]
";

    #[test]
    fn each_shape_problem_is_reported_once_with_the_shape_wanted() {
        let cases = [
            (
                "join_keys: [{name: user_id, dtype: int64}]",
                "join_keys: [user_id]",
                "invalid-shape",
                "`join_keys: [{name: user_id, dtype: int64}]`",
            ),
            (
                "    join_keys: [{name: user_id, dtype: int64}]\n",
                "    join_keys:\n      - user_id\n",
                "invalid-shape",
                "each a mapping",
            ),
            (
                "{name: clicks, dtype: int64, default: 0}",
                "{name: clicks}",
                "missing-key",
                "missing required key `dtype`",
            ),
            (
                "    timestamp_field: ts\n",
                "",
                "missing-key",
                "`timestamp_field: event_timestamp`",
            ),
            (
                "features: [stats]",
                "features: [stats.clicks]",
                "unknown-reference",
                "`{view: stats, features: [clicks]}`",
            ),
            (
                "features: [stats]",
                "features: [{view: stats}]",
                "invalid-shape",
                "an item matches neither form",
            ),
            (
                "features: [stats]",
                "features: stats",
                "invalid-shape",
                "a view name (`- my_view`",
            ),
            ("project: p\n", "", "missing-key", "`project: banking`"),
            (
                "entities: [user]",
                "entities: user",
                "invalid-shape",
                "`entities: [user]`",
            ),
            (
                "source: src",
                "source: scr",
                "unknown-reference",
                "(did you mean `src`?)",
            ),
        ];
        for (from, to, code, needle) in cases {
            let yaml = REPO.replacen(from, to, 1);
            assert_ne!(yaml, REPO);
            let found = findings(&yaml);
            assert_eq!(found.len(), 1, "{to}: {found:#?}");
            assert_eq!(found[0].0, code, "{to}: {found:#?}");
            assert!(found[0].2.contains(needle), "{to}: {found:#?}");
        }
    }

    /// Lines are the file's, also after a placeholder line was added above them.
    #[test]
    fn a_shape_error_hides_nothing_after_it() {
        let yaml = REPO
            .replacen(
                "join_keys: [{name: user_id, dtype: int64}]",
                "join_keys: [user_id]",
                1,
            )
            .replacen("    timestamp_field: ts\n", "", 1)
            .replacen("    ttl: 1d\n", "    tll: 1d\n", 1)
            .replacen("source: src", "source: scr", 1)
            .replacen(
                "{name: clicks, dtype: int64, default: 0}",
                "{name: clicks}",
                1,
            );
        let codes: Vec<(String, Option<u64>)> = findings(&yaml)
            .into_iter()
            .map(|(c, l, _)| (c, l))
            .collect();
        assert_eq!(
            codes,
            [
                ("invalid-shape".into(), Some(5)),
                ("missing-key".into(), Some(7)),
                ("unknown-key".into(), Some(13)),
                ("missing-key".into(), Some(15)),
                ("unknown-reference".into(), Some(12)),
            ]
        );
    }
}
