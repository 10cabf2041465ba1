//! No printing mode of `aws-role-prolog` panics when its reader has gone
//! (`aws-role-prolog --check-config FILE | head -1` used to end in a `println!` panic,
//! exit 101). Each mode runs with stdout, or stderr, on a pipe whose read end is already
//! closed, so every write fails with EPIPE.

// A test crate: unwrapping, expecting and panicking is how it fails (clippy.toml
// allows them in #[test] functions; this covers its helpers too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

fn closed_pipe() -> OwnedFd {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    drop(read);
    write
}

/// Runs the prolog with `args`, stdout (or stderr) on a closed pipe; returns its exit code
/// and what it printed on the other stream.
fn run(args: &[&str], close_stderr: bool) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aws-role-prolog"));
    cmd.args(args).stdin(Stdio::null()).env_clear();
    let out = if close_stderr {
        cmd.stderr(Stdio::from(closed_pipe()))
            .stdout(Stdio::piped());
        let o = cmd.output().expect("run the prolog");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    } else {
        cmd.stdout(Stdio::from(closed_pipe()))
            .stderr(Stdio::piped());
        let o = cmd.output().expect("run the prolog");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    out
}

#[test]
fn no_printing_mode_panics_on_a_closed_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let base = base.to_str().unwrap();
    // A valid map whose roles do not depend on accounts (so no scontrol is asked).
    let map = tmp.path().join("map.toml");
    std::fs::write(
        &map,
        "[sts]\nregion = \"us-east-1\"\n[roles.demo]\narn = \"arn:aws:iam::123456789012:role/demo\"\nallow_users = [\"alice\"]\n",
    )
    .unwrap();
    let map = map.to_str().unwrap().to_string();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[sts\n").unwrap();
    let bad = bad.to_str().unwrap();
    let cases: [(&[&str], &[i32]); 6] = [
        (&["--check-config", &map], &[0]),
        (&["--check-config", bad], &[1]),
        (&["--status", "--config", &map, "--base-dir", base], &[0]),
        (
            &["--status", "--json", "--config", &map, "--base-dir", base],
            &[0],
        ),
        (&["--help"], &[0]),
        (&["--version"], &[0]),
    ];
    for (args, codes) in cases {
        for close_stderr in [false, true] {
            let (code, other) = run(args, close_stderr);
            assert!(
                !other.contains("panicked"),
                "{args:?} (closed {}): {other}",
                if close_stderr { "stderr" } else { "stdout" }
            );
            assert!(
                code.is_some_and(|c| codes.contains(&c)),
                "{args:?}: exit {code:?}"
            );
        }
    }
}
