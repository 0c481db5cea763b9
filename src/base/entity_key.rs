//! The `{entity}` part of a data key (SPEC §3): join key values in declared order, integers
//! in decimal, strings as UTF-8; with several join keys they are joined by `:` after escaping
//! `\` as `\\` and `:` as `\:` in strings, so the rendering is unambiguous.

/// One join key value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart<'a> {
    Int(i64),
    Str(&'a str),
}

/// Appends the rendering of `parts` to `out`.
pub fn render_entity(parts: &[KeyPart<'_>], out: &mut String) {
    let mut ints = itoa::Buffer::new();
    let composite = parts.len() > 1;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        match part {
            KeyPart::Int(v) => out.push_str(ints.format(*v)),
            KeyPart::Str(s) if composite => {
                for c in s.chars() {
                    if matches!(c, '\\' | ':') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
            KeyPart::Str(s) => out.push_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_only_composite_strings() {
        let mut s = String::new();
        render_entity(&[KeyPart::Int(-7), KeyPart::Str(r"a:b\c")], &mut s);
        assert_eq!(s, r"-7:a\:b\\c");
        s.clear();
        render_entity(&[KeyPart::Str("a:b")], &mut s);
        assert_eq!(s, "a:b");
    }
}
