//! Runs the prolog/epilog binary from job_prolog/job_epilog: a clean environment, its
//! output relayed line by line to the log, and a hard time limit after which its whole
//! process group is killed.
//!
//! No threads (this code runs inside slurmstepd): one pipe carries both stdout and stderr
//! and is read with poll(2) against the deadline.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{pipe2, Pid};

use crate::log::sanitize;

/// PATH of the child: Slurm gives the Prolog none (its environment has no PATH).
pub const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// The job-control variable with the requested role (`SPANK_` + what sbatch set).
pub const ROLE_VAR: &str = aws_role::scheduler::slurm::ROLE_VAR;

/// At most this many output lines are relayed; the rest are counted.
const MAX_LINES: usize = 200;
/// Longest relayed line, in characters.
const MAX_LINE: usize = 1000;

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// The child exited (or was killed by a signal) within the time limit.
    Exited(ExitStatus),
    /// The time limit passed; the child's process group was killed.
    TimedOut,
    /// The child ended but its status could not be collected (e.g. reaped elsewhere).
    Lost(io::Error),
}

/// The environment of the child: only `SLURM_*` and `SPANK_AWS_ROLE` from `vars`, plus
/// a fixed PATH. Everything else in the environment of slurmstepd stays behind.
pub fn clean_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vars
        .into_iter()
        .filter(|(k, _)| k.as_bytes().starts_with(b"SLURM_") || k == OsStr::new(ROLE_VAR))
        .collect();
    env.push((OsString::from("PATH"), OsString::from(PATH)));
    env
}

/// Runs `program args…` with exactly `env`, in its own process group, stdin from
/// /dev/null, stdout and stderr relayed through `line` (untrusted text, already
/// sanitized). Kills the process group when `timeout` passes.
pub fn run(
    program: &Path,
    args: &[OsString],
    env: &[(OsString, OsString)],
    timeout: Duration,
    mut line: impl FnMut(&str),
) -> io::Result<Outcome> {
    let deadline = Instant::now() + timeout;
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    let mut child = {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::from(write_end.try_clone()?))
            .stderr(Stdio::from(write_end))
            .process_group(0);
        // Its own process group, so a timeout kills all it started; but then nothing
        // ends it when slurmstepd itself is killed (Slurm's PrologEpilogTimeout): it would
        // go on writing a job's credentials after Slurm gave up on the job. The kernel
        // kills it when this process dies.
        // SAFETY: the closure runs in the forked child before exec and only calls
        // prctl(2), which is async-signal-safe; it allocates nothing and takes no lock.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(io::Error::from)
            });
        }
        cmd.spawn()?
        // `cmd` is dropped here, closing our copies of the write end: EOF on the read end
        // then means that the child (and whatever it started) closed its output.
    };
    let mut reader = File::from(read_end);
    let mut relay = Relay::default();
    let mut buf = [0u8; 4096];
    let mut timed_out = false;
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            timed_out = true;
            break;
        };
        // Round up so a sub-millisecond remainder does not spin.
        let ms = left.as_millis().saturating_add(1).min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => continue, // the loop head sees the deadline
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => {
                kill_group(&mut child);
                return Err(io::Error::from(e));
            }
        }
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => relay.push(&buf[..n], &mut line),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                kill_group(&mut child);
                return Err(e);
            }
        }
    }
    relay.finish(&mut line);
    if timed_out {
        kill_group(&mut child);
        return Ok(Outcome::TimedOut);
    }
    // Output closed: the child is exiting. Wait for it, still within the deadline.
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Outcome::Exited(status)),
            Ok(None) => {}
            Err(e) => return Ok(Outcome::Lost(e)),
        }
        if Instant::now() >= deadline {
            kill_group(&mut child);
            return Ok(Outcome::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGKILLs the child's process group (the child is its leader) and reaps the child.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // ESRCH (group already gone) is fine.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Splits output into lines and relays them, within limits.
#[derive(Default)]
struct Relay {
    partial: Vec<u8>,
    lines: usize,
    dropped: usize,
}

impl Relay {
    fn push(&mut self, data: &[u8], line: &mut impl FnMut(&str)) {
        for &b in data {
            if b == b'\n' {
                self.emit(line);
            } else if self.partial.len() < MAX_LINE * 4 {
                self.partial.push(b);
            }
        }
    }

    fn emit(&mut self, line: &mut impl FnMut(&str)) {
        let raw = std::mem::take(&mut self.partial);
        let text = String::from_utf8_lossy(&raw);
        // tracing pads the level (" INFO"): leading blanks carry nothing in a log line.
        let text = text.trim_end_matches('\r').trim_start();
        if text.is_empty() {
            return;
        }
        if self.lines < MAX_LINES {
            self.lines += 1;
            line(&sanitize(text, MAX_LINE));
        } else {
            self.dropped += 1;
        }
    }

    fn finish(&mut self, line: &mut impl FnMut(&str)) {
        if !self.partial.is_empty() {
            self.emit(line);
        }
        if self.dropped > 0 {
            line(&format!("({} more lines not shown)", self.dropped));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration) -> (io::Result<Outcome>, Vec<String>, Duration) {
        let mut lines = Vec::new();
        let env = clean_env([
            (OsString::from("SLURM_JOB_ID"), OsString::from("42")),
            (OsString::from("HOME"), OsString::from("/root")),
            (OsString::from("SPANK_AWS_ROLE"), OsString::from("demo")),
            (OsString::from("SPANK_OTHER"), OsString::from("x")),
        ]);
        let t0 = Instant::now();
        let r = run(
            Path::new("/bin/sh"),
            &[OsString::from("-c"), OsString::from(script)],
            &env,
            timeout,
            |l| lines.push(l.to_string()),
        );
        (r, lines, t0.elapsed())
    }

    #[test]
    fn environment_is_clean() {
        let (r, lines, _) = sh("env | sort", Duration::from_secs(10));
        assert!(matches!(r, Ok(Outcome::Exited(s)) if s.success()), "{r:?}");
        // sh adds PWD (and maybe SHLVL/_) by itself; nothing else from our environment.
        let names: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.split('=').next())
            .filter(|n| !matches!(*n, "PWD" | "SHLVL" | "_"))
            .collect();
        assert_eq!(
            names,
            ["PATH", "SLURM_JOB_ID", "SPANK_AWS_ROLE"],
            "{lines:?}"
        );
        assert!(lines.contains(&format!("PATH={PATH}")));
    }

    #[test]
    fn stdout_and_stderr_are_relayed_and_status_kept() {
        let (r, lines, _) = sh(
            "echo out1; echo '  err1' >&2; printf 'a\\033[31mb\\r\\n'; printf 'tail'; exit 3",
            Duration::from_secs(10),
        );
        match r {
            Ok(Outcome::Exited(s)) => assert_eq!(s.code(), Some(3)),
            other => panic!("{other:?}"),
        }
        assert_eq!(lines, ["out1", "err1", "a\\u{1b}[31mb", "tail"]);
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        // The background sleep keeps the pipe open: only killing the group ends it.
        let (r, lines, took) = sh(
            "echo started; sleep 30 & sleep 30",
            Duration::from_millis(500),
        );
        assert!(matches!(r, Ok(Outcome::TimedOut)), "{r:?}");
        assert_eq!(lines, ["started"]);
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[test]
    fn output_is_capped() {
        let (r, lines, _) = sh(
            "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done",
            Duration::from_secs(10),
        );
        assert!(matches!(r, Ok(Outcome::Exited(_))), "{r:?}");
        assert_eq!(lines.len(), MAX_LINES + 1);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("(100 more lines not shown)")
        );
    }

    #[test]
    fn missing_program_is_an_error() {
        let r = run(
            Path::new("/nonexistent/prog"),
            &[],
            &[],
            Duration::from_secs(1),
            |_| {},
        );
        assert!(r.is_err());
    }
}
