//! What the binaries print on their standard output and error, written so that a reader
//! who has gone (`aws-role-prolog --check-config | head -1`, a closed terminal, a dead
//! pipe to slurmstepd) never makes them panic, as `println!` does on `EPIPE`.
//!
//! The binaries deny `clippy::print_stdout` and `clippy::print_stderr`, so every line they
//! print goes through here.

use std::io::Write;

/// Writes `text` to standard output; `false` when it could not be written (the reader
/// has gone), which callers may ignore: there is nobody left to tell.
pub fn stdout(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

/// Writes `text` to standard error; `false` when it could not be written.
pub fn stderr(text: &str) -> bool {
    let mut err = std::io::stderr().lock();
    err.write_all(text.as_bytes())
        .and_then(|()| err.flush())
        .is_ok()
}

/// `println!` on standard output that never panics (see [`stdout`]).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        let _ = $crate::output::stdout(&line);
    }};
}

/// `eprintln!` that never panics (see [`stderr`]).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        let _ = $crate::output::stderr(&line);
    }};
}
