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
    /// Top-level lists replaced by placeholders: references into them are not findings.
    pub top_replaced: Vec<String>,
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
    let mut text = text.replace("\r\n", "\n");
    // Keys (with their line) whose value was replaced after a shape error, and keys dropped
    // with their line.
    let mut replaced: Vec<(usize, String)> = Vec::new();
    let mut dropped: Vec<String> = Vec::new();
    let mut top_replaced: Vec<String> = Vec::new();
    // The line of the file each line of `text` comes from (placeholders may add lines).
    let mut origin: Vec<u64> = (1..=text.lines().count() as u64 + 1).collect();
    let done = |raw, findings, origin, top_replaced| Parsed {
        raw,
        findings,
        origin,
        top_replaced,
    };
    for _ in 0..100 {
        let e = match serde_saphyr::from_str::<raw::RawRepo>(&text) {
            Ok(raw) => return done(Some(raw), findings, origin, top_replaced),
            Err(e) => e,
        };
        let plain = e.without_snippet();
        let message = yaml_message(&plain.to_string());
        let Some((line, shown_col)) = plain
            .location()
            .map(|l| (l.line().max(1) as usize, l.column().max(1) as usize))
        else {
            findings.push(Finding::error("invalid-yaml", file, message));
            return done(None, findings, origin, top_replaced);
        };
        // The parser counts characters; the text is edited by bytes.
        let col = byte_col(&text, line, shown_col);
        let orig = |line: usize| origin.get(line - 1).copied().unwrap_or(line as u64);
        let at = |f: Finding| f.at(orig(line), shown_col as u64);
        let before = text.clone();
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
                (orig(mapping_start(&text, line, col)), shown_col as u64)
            };
            let context = Context::of(&text, line, col);
            if !dropped.contains(&key) {
                findings.push(
                    Finding::error(
                        "missing-key",
                        file,
                        format!(
                            "missing required key `{key}`: {} (see docs/configuration.md)",
                            wanted(&key, context)
                        ),
                    )
                    .at(shown.0, shown.1)
                    .named(key.clone()),
                );
            }
            let value = placeholder(&key, context).unwrap_or_else(|| format!("\"{MISSING}\""));
            let (patched, added) = insert_key(&text, line, col, &key, &value);
            if added {
                origin.insert(line - 1, orig(line));
            }
            text = patched;
        } else if is_shape_error(&message) {
            let Some(site) = shape_site(&text, line, col) else {
                findings.push(at(Finding::error("invalid-yaml", file, message)));
                return done(None, findings, origin, top_replaced);
            };
            let context = Context::of(&text, site.line, site.key_col);
            let seen = (site.line, site.key.clone());
            if !replaced.contains(&seen) {
                findings.push(
                    at(Finding::error(
                        "invalid-shape",
                        file,
                        format!(
                            "`{}` has the wrong shape ({}): it takes {} (see \
                             docs/configuration.md)",
                            site.key,
                            found(&message),
                            shape(&site.key, context)
                        ),
                    ))
                    .named(site.key.clone()),
                );
            }
            if context == Context::TopLevel {
                top_replaced.push(site.key.clone());
            }
            text = match placeholder(&site.key, context) {
                Some(value) if !replaced.contains(&seen) => {
                    replaced.push(seen);
                    site.replace(&text, &value)
                }
                _ => {
                    dropped.push(site.key.clone());
                    site.remove(&text)
                }
            };
        } else {
            findings.push(at(Finding::error("invalid-yaml", file, message)));
            return done(None, findings, origin, top_replaced);
        }
        // A fix that changed nothing would meet the same error again: drop the line instead,
        // and stop when even that changes nothing.
        if text == before {
            text = blank_line(&text, line);
            if text == before {
                return done(None, findings, origin, top_replaced);
            }
        }
    }
    done(None, findings, origin, top_replaced)
}

/// The 1-based byte column of the 1-based character column `col` of `line`.
fn byte_col(text: &str, line: usize, col: usize) -> usize {
    let Some(l) = text.lines().nth(line - 1) else {
        return col;
    };
    l.char_indices()
        .nth(col - 1)
        .map_or(l.len() + 1, |(i, _)| i + 1)
}

/// Errors about a value's shape (a list where a mapping belongs, say), as serde and the YAML
/// parser word them, rather than about the YAML's syntax.
fn is_shape_error(message: &str) -> bool {
    [
        "invalid ",
        "data did not match any variant",
        "cannot deserialize null",
    ]
    .iter()
    .any(|p| message.starts_with(p))
        || (message.starts_with("expected ")
            && ["mapping start", "sequence start", "scalar"]
                .iter()
                .any(|w| message.contains(w)))
}

/// What serde found, without the names of fsctl's own types.
fn found(message: &str) -> String {
    if message.starts_with("data did not match any variant") {
        return "an item matches neither form".into();
    }
    if message.starts_with("cannot deserialize null") {
        return "it is empty".into();
    }
    if message.starts_with("invalid floating point") {
        return "not a number".into();
    }
    if let Some(t) = message.strip_prefix("invalid ")
        && (t.starts_with('u') || t.starts_with('i'))
        && t[1..].chars().all(|c| c.is_ascii_digit())
    {
        return "not a whole number in range".into();
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
        (
            "keep_snapshots"
            | "connections"
            | "retry_attempts"
            | "compress_threshold_bytes"
            | "min_entities",
            _,
        ) => "a whole number, e.g. `2`",
        ("ttl_jitter" | "max_null_fraction" | "min" | "max", _) => "a number, e.g. `0.2`",
        _ => "a single value (text)",
    }
}

/// A value of the right shape for `key`, built around `MISSING`; `None` for a key whose line is
/// better dropped (a number: an optional key takes its default).
fn placeholder(key: &str, context: Context) -> Option<String> {
    let m = format!("\"{MISSING}\"");
    Some(match (key, context) {
        ("join_keys", _) => format!("[{{name: {m}, dtype: int64}}]"),
        // Top-level lists: one item that stands for the list, so that a service list of the
        // wrong shape is not also "no feature_services"; references into them are dropped.
        ("feature_services", Context::TopLevel) => format!("[{{name: {m}, features: [{m}]}}]"),
        ("entities" | "sources" | "feature_views", Context::TopLevel) => "[]".into(),
        ("entities", _) => format!("[{m}]"),
        ("features", Context::View) => format!("[{{name: {m}, dtype: int64}}]"),
        ("features", _) => format!("[{m}]"),
        ("online_store", _) => format!("{{type: redis, url: {m}}}"),
        ("hot_entities", _) => format!("{{path: {m}}}"),
        (
            "field_mapping" | "storage_options" | "checks" | "materialization" | "offline_store",
            _,
        ) => "{}".into(),
        (
            "keep_snapshots"
            | "connections"
            | "retry_attempts"
            | "compress_threshold_bytes"
            | "min_entities"
            | "ttl_jitter"
            | "max_null_fraction"
            | "min"
            | "max",
            _,
        ) => return None,
        _ => m,
    })
}

/// Where a value of the wrong shape sits: the key it belongs to, and its value on the key's
/// line (a span of it) or below it (a block).
struct ShapeSite {
    /// The key's line and 1-based byte column.
    line: usize,
    key_col: usize,
    key: String,
    /// The value's bytes on the line, `None` when it is a block under the line.
    span: Option<(usize, usize)>,
}

impl ShapeSite {
    /// The text without the key and its value: the pair alone in a flow mapping, else its line
    /// and the lines under it.
    fn remove(&self, text: &str) -> String {
        match self.span {
            Some((_, end)) => map_line(text, self.line, |l| {
                let rest = l[end..].strip_prefix(',').unwrap_or(&l[end..]).trim_start();
                let head = &l[..self.key_col - 1];
                if head.trim_end().ends_with(['{', '[']) || rest.starts_with(['}', ']']) {
                    format!("{}{rest}", head.trim_end_matches([' ', ',']))
                } else {
                    format!("{head}{rest}")
                }
            }),
            None => blank_line(text, self.line),
        }
    }

    /// The text with the value replaced by `value`.
    fn replace(&self, text: &str, value: &str) -> String {
        match self.span {
            Some((start, end)) => map_line(text, self.line, |l| {
                format!("{}{value}{}", &l[..start], &l[end..])
            }),
            None => map_line(&blank_nested(text, self.line), self.line, |l| {
                let colon = l[self.key_col - 1..]
                    .find(':')
                    .map_or(l.len(), |i| self.key_col - 1 + i + 1);
                format!("{} {value}", &l[..colon])
            }),
        }
    }
}

/// The key whose value holds the shape error at `line`, `col` (1-based, bytes): the innermost
/// `key:` before the error on its line (a block key or a key in a flow mapping), else the key
/// of the list the line is an item of.
fn shape_site(text: &str, line: usize, col: usize) -> Option<ShapeSite> {
    let lines: Vec<&str> = text.lines().collect();
    let here = *lines.get(line - 1)?;
    // Up to and including the character the error points at.
    let upto = here
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .find(|&end| end >= col)
        .unwrap_or(here.len());
    if let Some((key_start, key, value_start)) = last_key(&here[..upto]) {
        let span = (value_start < here.len()).then(|| (value_start, value_end(here, value_start)));
        return Some(ShapeSite {
            line,
            key_col: key_start + 1,
            key,
            span,
        });
    }
    // An item of a block list: the list's key is above, less indented.
    let indent = |l: &str| l.len() - l.trim_start().len();
    let base = indent(here);
    lines[..line - 1]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, l)| {
            let (start, key, value_start) = last_key(l)?;
            (start < base && value_start >= l.len()).then(|| ShapeSite {
                line: i + 1,
                key_col: start + 1,
                key,
                span: None,
            })
        })
}

/// The last `key:` in `s` (a plain or quoted key followed by `:` and a space or the end): the
/// key's byte offset, the key, and where its value starts (after the spaces).
fn last_key(s: &str) -> Option<(usize, String, usize)> {
    let bytes = s.as_bytes();
    let colon = (0..bytes.len())
        .rev()
        .find(|&i| bytes[i] == b':' && bytes.get(i + 1).is_none_or(|b| b.is_ascii_whitespace()))?;
    let head = s[..colon].trim_end();
    let (key, start) = match head.chars().last()? {
        q @ ('"' | '\'') => {
            let open = head[..head.len() - 1].rfind(q)?;
            (head[open + 1..head.len() - 1].to_owned(), open)
        }
        _ => {
            let start = head
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
                .map_or(0, |i| i + 1);
            (head[start..].to_owned(), start)
        }
    };
    if key.is_empty() || key.starts_with('#') {
        return None;
    }
    let after = colon + 1;
    let value_start = after + (s.len() - after - s[after..].trim_start().len());
    // A comment is no value.
    let value_start = if s[value_start..].starts_with('#') {
        s.len()
    } else {
        value_start
    };
    Some((start, key, value_start))
}

/// Where the flow value starting at `start` ends on `line`: at the `,`, `}` or `]` that closes
/// it, or at a comment or the end of the line.
fn value_end(line: &str, start: usize) -> usize {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for (i, c) in line[start..].char_indices() {
        let at = start + i;
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') if depth == 0 => return at,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => return at,
            (None, '#') if depth == 0 && line[..at].ends_with(' ') => return at,
            _ => {}
        }
    }
    line.trim_end().len().max(start)
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
    // A flow mapping or list (`{name: a}`) is a value, not a key.
    let plain = !key.is_empty() && !key.starts_with(['#', '{', '[']);
    (plain && rest.contains(':')).then_some((at, item, key))
}

/// Replaces the key `from` on line `n` (1-based) with `to`, written plain, `"quoted"` or
/// `'quoted'`, with or without spaces before its `:`.
fn rename_key(text: &str, n: usize, from: &str, to: &str) -> String {
    map_line(text, n, |l| {
        for written in [from.to_owned(), format!("\"{from}\""), format!("'{from}'")] {
            let mut search = 0;
            while let Some(i) = l[search..].find(&written).map(|i| search + i) {
                let after = &l[i + written.len()..];
                let boundary = l[..i]
                    .chars()
                    .last()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                if boundary && after.trim_start().starts_with(':') {
                    return format!("{}{to}{after}", &l[..i]);
                }
                search = i + written.len();
            }
        }
        l.to_owned()
    })
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

    /// What a review found recovery getting wrong: each case gives exactly the findings listed.
    #[test]
    fn recovery_survives_what_users_write() {
        // (edits to the repo, the findings wanted: code and a part of the message)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [(&'a str, &'a str)]);
        let cases: [Case; 7] = [
            // Multi-byte text before the error column (columns count characters).
            (
                &[(
                    "{name: clicks, dtype: int64, default: 0}",
                    "{name: clicks, description: \"in €, fee €\", default: 0}",
                )],
                &[("missing-key", "`dtype`")],
            ),
            // A shape error inside a flow mapping is its own key's, and the line stays YAML.
            (
                &[(
                    "{name: clicks, dtype: int64, default: 0}",
                    "{name: clicks, dtype: [int64], default: 0, checks: max_null_fraction}",
                )],
                &[("invalid-shape", "`dtype`"), ("invalid-shape", "`checks`")],
            ),
            // A quoted or spaced typo is renamed like a plain one.
            (
                &[("    ttl: 1d\n", "    \"tll\" : 1d\n")],
                &[("unknown-key", "`tll`")],
            ),
            // Scalars of the wrong kind, and an empty required value.
            (
                &[
                    (
                        "project: p\n",
                        "project: p\nmaterialization: {keep_snapshots: two, ttl_jitter: 20%}\n",
                    ),
                    ("    timestamp_field: ts\n", "    timestamp_field:\n"),
                    ("source: src", "source: scr"),
                ],
                &[
                    ("invalid-shape", "`keep_snapshots`"),
                    ("invalid-shape", "`ttl_jitter`"),
                    ("invalid-shape", "`timestamp_field`"),
                    ("unknown-reference", "`scr`"),
                ],
            ),
            // A top-level list written as a mapping: one finding, not one per reference.
            (
                &[(
                    "feature_services:\n  - name: svc\n",
                    "feature_services:\n  name: svc\n",
                )],
                &[("invalid-shape", "`feature_services`")],
            ),
            (
                &[("entities:\n  - name: user\n", "entities:\n  name: user\n")],
                &[("invalid-shape", "`entities`")],
            ),
            // Windows line endings.
            (&[("\n", "\r\n")], &[]),
        ];
        for (edits, want) in cases {
            let mut yaml = REPO.to_owned();
            for (from, to) in edits {
                assert!(yaml.contains(from), "{from}");
                yaml = if *from == "\n" {
                    yaml.replace(from, to)
                } else {
                    yaml.replacen(from, to, 1)
                };
            }
            let found = findings(&yaml);
            let got: Vec<&str> = found.iter().map(|(c, _, _)| c.as_str()).collect();
            let codes: Vec<&str> = want.iter().map(|(c, _)| *c).collect();
            assert_eq!(got, codes, "{edits:?}: {found:#?}");
            for ((_, _, message), (_, needle)) in found.iter().zip(want) {
                assert!(
                    message.contains(needle),
                    "{edits:?}: {needle} not in {message}"
                );
            }
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
