//! A `credential_process` that hangs is killed at the deadline, with what it started, and
//! named in the error. In a test binary of its own: the killing takes every child this
//! process started during the fetch, and the library's unit tests start children of their
//! own on other threads (there it is off).
#![cfg(feature = "sts")]

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use aws_role::map::RoleMap;

/// Whether `pid` is still a live process (not gone, not a zombie awaiting its reaping).
fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next().map(str::to_string));
    !matches!(state.as_deref(), Some("Z" | "X") | None)
}

#[tokio::test]
async fn a_hung_helper_and_its_children_are_killed_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("helper");
    // The helper starts a child of its own (the background sleep), then hangs itself.
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nsleep 40 &\necho $! > {d}/child.pid\necho $$ > {d}/helper.pid\nwait\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o700)).unwrap();
    let creds = dir.path().join("credentials");
    std::fs::write(
        &creds,
        format!("[default]\ncredential_process = {}\n", helper.display()),
    )
    .unwrap();
    let map = RoleMap::parse(
        &format!(
            "[sts]\nregion = \"us-east-1\"\nendpoint = \"http://127.0.0.1:1\"\ncredentials_file = \"{}\"\ntimeout = \"2s\"\nmax_attempts = 1\n",
            creds.display()
        ),
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    let started = Instant::now();
    let e = aws_role::sts::caller_identity(&map.sts).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let text = e.to_string();
    assert!(
        text.contains(
            "they did not come within 2s (sts.timeout), so the source's processes were killed ("
        ) && text.ends_with(&format!(
            "the source is profile default of {}",
            creds.display()
        )),
        "{text}"
    );
    let pid = |f: &str| -> i32 {
        std::fs::read_to_string(dir.path().join(f))
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .trim()
            .parse()
            .unwrap()
    };
    let (helper_pid, child_pid) = (pid("helper.pid"), pid("child.pid"));
    // SIGKILL is delivered at once, but give the kernel a moment to tear them down.
    let gone = || !alive(helper_pid) && !alive(child_pid);
    for _ in 0..50 {
        if gone() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(helper_pid), "the helper {helper_pid} still runs");
    assert!(
        !alive(child_pid),
        "the helper's child {child_pid} still runs"
    );
}
