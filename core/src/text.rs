//! Showing untrusted text (a user's `--aws-role` value, a child's output, a map's
//! contents) in a message or a log line without letting it forge lines or flood them.

/// Escapes control characters (so the text stays on one line and cannot carry terminal
/// escapes) and cuts the result after `max` characters, marking the cut with `…`. This is
/// the one place where untrusted text (a user's value, what STS or a proxy said, a
/// record read back, a child's output) is made fit for a log line or a terminal.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 8);
    let mut len = 0;
    for c in text.chars() {
        let piece: String = if c.is_control() {
            c.escape_default().collect()
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
}
