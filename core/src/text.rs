//! Showing untrusted text (a user's `--aws-role` value, a child's output, a map's
//! contents) in a message or a log line without letting it forge lines or flood them.

/// Escapes control characters (so the text stays on one line and cannot carry terminal
/// escapes) and cuts it after `max` characters, marking the cut with `…`.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 8);
    for (n, c) in text.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
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
    }
}
