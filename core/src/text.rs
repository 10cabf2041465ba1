//! Showing untrusted text (a user's `--aws-role` value, a child's output, a map's
//! contents) in a message or a log line without letting it forge lines or flood them.

/// Escapes control characters (so the text stays on one line and cannot carry terminal
/// escapes) and cuts the result after `max` characters, marking the cut with `…`. This is
/// the one place where untrusted text (a user's value, what STS or a proxy said, a
/// record read back, a child's output) is made fit for a log line or a terminal.
pub fn one_line(text: &str, max: usize) -> String {
    escaped(text, max, &[])
}

/// An untrusted value as a message shows it: in double quotes, with `"` and `\\` escaped
/// as well as control characters ([`one_line`]'s rules), cut after `max` characters with
/// `…` inside the quotes. What the value was is then unambiguous in a message that goes on
/// after it.
pub fn quoted(value: &str, max: usize) -> String {
    format!("\"{}\"", escaped(value, max, &['"', '\\']))
}

/// A value a user or a file supplied, as every message shows it ([`quoted`], at most 80
/// characters).
pub fn shown(value: &str) -> String {
    quoted(value, 80)
}

/// `text` with control characters escaped (`\n`, `\u{1b}`), a backslash put before each of
/// `also`, and cut after `max` characters of the result, marked with `…`.
fn escaped(text: &str, max: usize, also: &[char]) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 8);
    let mut len = 0;
    for c in text.chars() {
        let piece: String = if c.is_control() {
            c.escape_default().collect()
        } else if also.contains(&c) {
            ['\\', c].iter().collect()
        } else {
            c.to_string()
        };
        let n = piece.chars().count();
        if len + n > max {
            out.push('…');
            break;
        }
        out.push_str(&piece);
        len += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_long_text_cut() {
        assert_eq!(one_line("a\u{1b}[31mb\tc\nd", 100), "a\\u{1b}[31mb\\tc\\nd");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("100% ok", 100), "100% ok");
        assert_eq!(one_line("", 0), "");
        // The bound is on what is shown: escapes count with their full length.
        let shown = one_line(&"\u{1b}".repeat(100), 20);
        assert_eq!(shown, format!("{}…", "\\u{1b}".repeat(3)));
    }

    #[test]
    fn quoted_values_are_unambiguous_one_line_and_bounded() {
        assert_eq!(quoted("demo", 80), "\"demo\"");
        // What std's Debug gives for plain text, so messages read as before.
        for v in [
            "ml-training",
            "a\"b",
            "back\\slash",
            "tab\there",
            "esc\u{1b}[31m",
        ] {
            assert_eq!(quoted(v, 80), format!("{v:?}"), "{v}");
        }
        assert_eq!(quoted("abcdef", 3), "\"abc…\"");
        let forged = quoted("x\"\nnot ok - forged", 80);
        assert_eq!(forged.lines().count(), 1);
        assert!(forged.starts_with("\"x\\\"\\n"), "{forged}");
    }
}
