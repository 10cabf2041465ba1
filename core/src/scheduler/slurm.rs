//! Reading a job from the environment Slurm gives a Prolog/Epilog (and the plugin's
//! `job_prolog`): `SLURM_JOB_*` variables set by slurmd, and `SPANK_AWS_ROLE`, which the
//! plugin sets at submit time and which is therefore user-controlled.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::unistd::{Gid, Uid, User};

use super::{Driver, Liveness, PrologInput, PrologJob};
use crate::job::{Job, JobId, JobIdError, RoleRequest, Scheduler};
use crate::map::RoleMap;

/// The job-control variable the plugin sets with `spank_job_control_setenv("AWS_ROLE")`.
pub const ROLE_VAR: &str = "SPANK_AWS_ROLE";

/// What Slurm did not give us, or gave us wrong.
#[derive(Debug, thiserror::Error)]
pub enum SlurmEnvError {
    #[error("{0} is not set (is this running as a Slurm Prolog/Epilog?)")]
    Missing(&'static str),
    #[error("{name} is {value:?}, which is not {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error(transparent)]
    JobId(#[from] JobIdError),
    #[error(
        "SLURM_JOB_UID {uid} is user {actual:?} on this node, but SLURM_JOB_USER is {claimed:?}"
    )]
    UserMismatch {
        uid: u32,
        claimed: String,
        actual: String,
    },
    #[error("SLURM_JOB_UID {0} is not a user on this node")]
    NoSuchUser(u32),
    #[error("cannot look up uid {uid}: {errno}")]
    Lookup { uid: u32, errno: nix::Error },
}

/// Values the plugin learned with `slurm_load_job()` and passes on the command line,
/// because the Slurm 22.05 Prolog environment lacks them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra {
    /// Job end time in seconds since the epoch.
    pub end_time: Option<u64>,
    pub array_job_id: Option<u32>,
    pub array_task_id: Option<u32>,
}

/// Slurm's [`Driver`].
pub struct Slurm;

impl Driver for Slurm {
    fn scheduler(&self) -> Scheduler {
        Scheduler::Slurm
    }

    fn parse_job_id(&self, raw: &str) -> Result<JobId, JobIdError> {
        parse_job_id(raw)
    }

    /// `SLURM_JOB_ID` ([`job_id`]), then the job from the environment and the plugin's
    /// values ([`job_from_env`]). Only the epilog can make a job's id unusable; without one
    /// there is nothing to do.
    fn prolog_job<'a>(&self, input: PrologInput<'a>) -> Result<PrologJob<'a>, String> {
        if !input.args.is_empty() {
            tracing::warn!(
                "aws-role-prolog: running as a Slurm Prolog; positional arguments ignored"
            );
        }
        let id = job_id(input.env).map_err(|e| e.to_string())?;
        let (env, extra) = (input.env, input.plugin);
        Ok(PrologJob {
            id,
            job: Box::new(move || {
                job_from_env(env, extra)
                    .map_err(|e| format!("the job's Slurm environment is unusable: {e}"))
            }),
        })
    }

    /// `SLURM_JOB_ID` ([`job_id`]); a Slurm Epilog has no arguments.
    fn epilog_job_id(
        &self,
        _args: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<JobId, String> {
        job_id(env).map_err(|e| e.to_string())
    }

    /// Slurm 22.05 gives a `Prolog=` no end time; the plugin passes it, a bare Prolog may
    /// ask scontrol (`[slurm] end_time_from_scontrol`).
    fn complete(&self, map: &RoleMap, job: &mut Job) {
        if job.end_time.is_some() || !map.slurm.end_time_from_scontrol {
            return;
        }
        match ask_scontrol(&map.slurm.scontrol, &job.id, map.slurm.scontrol_timeout) {
            Ok(end) => {
                tracing::info!(
                    end_time_from = "scontrol",
                    found = end.is_some(),
                    "job end time"
                );
                job.end_time = end
            }
            Err(e) => {
                tracing::warn!("no end time from scontrol ({e}); the session lasts the role's cap")
            }
        }
    }

    /// `[partitions.NAME] default_role`.
    fn default_role<'m>(
        &self,
        map: &'m RoleMap,
        partition: Option<&str>,
    ) -> Option<(&'m str, String)> {
        let p = partition?;
        map.partitions.get(p).map(|d| {
            (
                d.default_role.as_str(),
                format!("the default role of partition {p}"),
            )
        })
    }

    /// `scontrol show job` ([`ask_liveness`]).
    fn liveness(&self, map: &RoleMap, id: &JobId) -> Option<Liveness> {
        Some(ask_liveness(
            &map.slurm.scontrol,
            id,
            map.slurm.scontrol_timeout,
        ))
    }

    /// Slurm vouches for accounts when it enforces associations: the node asks
    /// ([`crate::accounts::slurm_doubt`]).
    fn fixed_account_doubt(&self) -> Option<&'static str> {
        None
    }
}

/// A Slurm job id: 1 to 10 decimal digits, a non-zero `u32` (what Slurm issues), with
/// leading zeros dropped so that one job has one directory.
pub fn parse_job_id(s: &str) -> Result<JobId, JobIdError> {
    let err = |why| JobIdError {
        scheduler: Scheduler::Slurm,
        shown: crate::text::shown(s),
        why,
    };
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("only digits are allowed"));
    }
    match s.parse::<u32>() {
        Ok(0) => Err(err("0 is not a job id")),
        Ok(n) => Ok(JobId::checked(n.to_string())),
        Err(_) => Err(err("it is larger than any Slurm job id")),
    }
}

/// Only the job id, for the epilog (which must work even when nothing else is usable).
pub fn job_id(env: impl Fn(&str) -> Option<String>) -> Result<JobId, SlurmEnvError> {
    let id = env("SLURM_JOB_ID").ok_or(SlurmEnvError::Missing("SLURM_JOB_ID"))?;
    Ok(parse_job_id(&id)?)
}

/// Builds the job from Prolog variables (looked up with `env`) plus what the plugin passed.
pub fn job_from_env(
    env: impl Fn(&str) -> Option<String>,
    extra: Extra,
) -> Result<Job, SlurmEnvError> {
    let id = job_id(&env)?;
    let number =
        |name: &'static str, expected: &'static str| -> Result<Option<u64>, SlurmEnvError> {
            match env(name) {
                None => Ok(None),
                Some(v) => v
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| SlurmEnvError::Invalid {
                        name,
                        value: v,
                        expected,
                    }),
            }
        };
    let uid = number("SLURM_JOB_UID", "a uid")?.ok_or(SlurmEnvError::Missing("SLURM_JOB_UID"))?;
    let uid = u32::try_from(uid).map_err(|_| SlurmEnvError::Invalid {
        name: "SLURM_JOB_UID",
        value: uid.to_string(),
        expected: "a uid",
    })?;
    let user = User::from_uid(Uid::from_raw(uid))
        .map_err(|errno| SlurmEnvError::Lookup { uid, errno })?
        .ok_or(SlurmEnvError::NoSuchUser(uid))?;
    if let Some(claimed) = env("SLURM_JOB_USER") {
        if claimed != user.name {
            return Err(SlurmEnvError::UserMismatch {
                uid,
                claimed,
                actual: user.name,
            });
        }
    }
    let gid = match number("SLURM_JOB_GID", "a gid")? {
        Some(g) => Gid::from_raw(u32::try_from(g).map_err(|_| SlurmEnvError::Invalid {
            name: "SLURM_JOB_GID",
            value: g.to_string(),
            expected: "a gid",
        })?),
        None => user.gid,
    };
    let restart_count = number("SLURM_JOB_RESTART_COUNT", "a count")?.unwrap_or(0);
    // Slurm >= 23.02 gives the end time itself; on 22.05 only the plugin can.
    let from_env = number("SLURM_JOB_END_TIME", "seconds since the epoch")?;
    let (end, source) = end_time_source(from_env, extra.end_time);
    // A time SystemTime (or the refresher's arithmetic) cannot hold is refused by name,
    // not a panic.
    if let Some(t) = end.filter(|&t| t > crate::job::MAX_END_TIME) {
        return Err(SlurmEnvError::Invalid {
            name: if from_env.is_some() {
                "SLURM_JOB_END_TIME"
            } else {
                "--end-time"
            },
            value: t.to_string(),
            expected: "seconds since the epoch before the year 10000",
        });
    }
    // Says which path was taken: tests/e2e/multinode.sh checks it per Slurm release.
    tracing::info!(end_time = end, end_time_from = source, "job end time");
    let non_empty = |name| env(name).filter(|v| !v.is_empty());
    Ok(Job {
        scheduler: Scheduler::Slurm,
        id,
        array_job_id: extra.array_job_id.map(|a| a.to_string()),
        array_task_id: extra.array_task_id,
        user: user.name,
        uid: user.uid,
        gid,
        partition: non_empty("SLURM_JOB_PARTITION"),
        account: non_empty("SLURM_JOB_ACCOUNT"),
        cluster: non_empty("SLURM_CLUSTER_NAME"),
        restart_count: u32::try_from(restart_count).unwrap_or(u32::MAX),
        end_time: end.map(|t| SystemTime::UNIX_EPOCH + Duration::from_secs(t)),
        requested: env(ROLE_VAR).and_then(|v| RoleRequest::from_value(&v)),
    })
}

/// Where a Slurm job's end time comes from, and the value: the Prolog environment's
/// `SLURM_JOB_END_TIME` (Slurm >= 23.02) wins over the plugin's `--end-time` (its
/// `slurm_load_job()`, the only source on 22.05); `"none"` when neither has one (the
/// prolog may then ask scontrol).
pub fn end_time_source(env: Option<u64>, plugin: Option<u64>) -> (Option<u64>, &'static str) {
    match (env, plugin) {
        (Some(t), _) => (Some(t), "env SLURM_JOB_END_TIME"),
        (None, Some(t)) => (Some(t), "plugin --end-time"),
        (None, None) => (None, "none"),
    }
}

/// The end time `scontrol show job` reports for job `id` (its `JobId=` record only: for
/// an array master it prints every task). `Ok(None)`: no limit (`Unknown`, `None`, or a
/// time limit of `UNLIMITED` or 365 days and more). Times must have been printed in UTC
/// (`TZ=UTC0`): scontrol prints local time without a zone.
pub fn scontrol_end_time(output: &str, id: &JobId) -> Result<Option<SystemTime>, String> {
    let want = format!("JobId={}", id.as_str());
    // Records are separated by blank lines; fields by spaces and newlines.
    let record = output
        .split("\n\n")
        .find(|r| r.split_whitespace().any(|f| f == want))
        .ok_or_else(|| format!("scontrol printed no record for job {id}"))?;
    let field = |name: &str| {
        record
            .split_whitespace()
            .find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
    };
    if let Some(limit) = field("TimeLimit") {
        use crate::walltime::{parse_slurm, Walltime};
        let unlimited = match parse_slurm(limit) {
            Ok(Walltime::Unlimited) => true,
            Ok(Walltime::Limited(d)) => d >= Duration::from_secs(365 * 24 * 3600),
            Err(_) => false,
        };
        if unlimited {
            return Ok(None);
        }
    }
    match field("EndTime") {
        None => Err(format!("scontrol printed no EndTime for job {id}")),
        Some("Unknown" | "None" | "NONE") => Ok(None),
        Some(t) => humantime::parse_rfc3339_weak(t)
            .map(Some)
            .map_err(|e| format!("EndTime={t}: {e}")),
    }
}

/// The value of `key` in `scontrol show config` output (`PrologFlags             = Alloc`);
/// `None` when there is no such line.
pub fn show_config_value<'a>(output: &'a str, key: &str) -> Option<&'a str> {
    output.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// The SPANK plugin's `timeout=` for its prolog and epilog binaries when the plugstack
/// line gives none.
pub const PLUGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest the plugin lets its prolog or epilog binary run under Slurm's
/// `PrologEpilogTimeout` (seconds). Slurm kills a job_prolog or job_epilog that outlives
/// it, requeues the job and drains the node, so the plugin ends the binary first, leaving
/// time to record the failure: a tenth of Slurm's limit, at least 1 s, and never below
/// 1 s in all.
pub fn plugin_limit_under(prolog_epilog_timeout: u32) -> Duration {
    let margin = (prolog_epilog_timeout / 10).max(1);
    Duration::from_secs(u64::from(
        prolog_epilog_timeout.saturating_sub(margin).max(1),
    ))
}

/// Job states after which a job never runs again (squeue(1), "JOB STATE CODES").
const ENDED: &[&str] = &[
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "TIMEOUT",
];

/// Reads [`Liveness`] from what `scontrol show job ID` did.
pub fn liveness(id: &JobId, answer: &Result<String, ScontrolError>) -> Liveness {
    match answer {
        Ok(out) => {
            let want = format!("JobId={}", id.as_str());
            let Some(record) = out
                .split("\n\n")
                .find(|r| r.split_whitespace().any(|f| f == want))
            else {
                return Liveness::Unknown(format!("scontrol printed no record for job {id}"));
            };
            let state = record
                .split_whitespace()
                .find_map(|f| f.strip_prefix("JobState="))
                .unwrap_or("");
            if ENDED.contains(&state) {
                Liveness::Gone(format!("Slurm says job {id} ended ({state})"))
            } else if state.is_empty() {
                Liveness::Unknown(format!("scontrol printed no JobState for job {id}"))
            } else {
                Liveness::Alive
            }
        }
        // slurmctld forgets a job MinJobAge (default 300 s) after it ended.
        Err(ScontrolError::Failed { stderr, .. })
            if stderr.contains("Invalid job id specified") =>
        {
            Liveness::Gone(format!("Slurm no longer knows job {id}"))
        }
        Err(e) => Liveness::Unknown(e.to_string()),
    }
}

/// Asks Slurm whether job `id` still runs ([`liveness`]).
pub fn ask_liveness(scontrol: &Path, id: &JobId, timeout: Duration) -> Liveness {
    liveness(
        id,
        &run_scontrol(scontrol, &["show", "job", id.as_str()], timeout),
    )
}

/// Asks `scontrol show job` for the job's end time (`[slurm] end_time_from_scontrol`), for
/// a Slurm `Prolog=` that is given none (22.05). Runs with an empty environment except
/// `TZ=UTC0` (and `SLURM_CONF` when set), and is killed after `timeout`.
pub fn ask_scontrol(
    scontrol: &Path,
    id: &JobId,
    timeout: Duration,
) -> Result<Option<SystemTime>, String> {
    let out = run_scontrol(scontrol, &["show", "job", id.as_str()], timeout)
        .map_err(|e| e.to_string())?;
    scontrol_end_time(&out, id)
}

/// Most of scontrol's output we keep: one job prints a few kilobytes, an array master one
/// record per running task.
const MAX_SCONTROL_OUTPUT: usize = 4 << 20;
/// Of its stderr, only the start matters (the first line goes into messages).
const MAX_SCONTROL_STDERR: usize = 16 << 10;

/// Why `scontrol` gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ScontrolError {
    #[error("cannot run {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} did not answer within {timeout:?}", path.display())]
    Timeout { path: PathBuf, timeout: Duration },
    #[error("{} exited with {status}{}", path.display(), first_line(stderr))]
    Failed {
        path: PathBuf,
        status: std::process::ExitStatus,
        /// What it printed on stderr (its reason, e.g. "Unable to contact slurm controller").
        stderr: String,
    },
    #[error("reading the output of {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `": <first non-empty line>"` of `text`, or nothing.
fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| format!(": {}", crate::text::one_line(l, 300)))
        .unwrap_or_default()
}

/// Runs `scontrol ARGS` and returns its stdout. The environment is emptied except `TZ=UTC0`
/// (so times are printed in UTC) and `SLURM_CONF` when set; the whole run, output
/// included, must fit in `timeout`, after which scontrol is killed (a dead slurmctld makes
/// it retry for about 10 s). Its output is read while it runs: a pipe holds only 64 KiB,
/// and a scontrol blocked writing more would never exit.
pub fn run_scontrol(
    scontrol: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<String, ScontrolError> {
    use std::process::{Command, Stdio};

    let deadline = std::time::Instant::now() + timeout;
    let path = scontrol.to_path_buf();
    let mut cmd = Command::new(scontrol);
    cmd.args(args)
        .env_clear()
        .env("TZ", "UTC0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(conf) = std::env::var_os("SLURM_CONF") {
        cmd.env("SLURM_CONF", conf);
    }
    let mut child = cmd.spawn().map_err(|source| ScontrolError::Spawn {
        path: path.clone(),
        source,
    })?;
    match collect(&mut child, deadline) {
        Ok((status, _, err)) if !status.success() => Err(ScontrolError::Failed {
            path,
            status,
            stderr: String::from_utf8_lossy(&err).into_owned(),
        }),
        Ok((_, out, _)) => Ok(String::from_utf8_lossy(&out).into_owned()),
        Err(stop) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(match stop {
                None => ScontrolError::Timeout { path, timeout },
                Some(source) => ScontrolError::Io { path, source },
            })
        }
    }
}

/// Reads a child's stdout and stderr until both close, then waits for it, all before
/// `deadline`. `Err(None)`: out of time; `Err(Some(e))`: an I/O error. The caller kills.
fn collect(
    child: &mut std::process::Child,
    deadline: std::time::Instant,
) -> Result<(std::process::ExitStatus, Vec<u8>, Vec<u8>), Option<std::io::Error>> {
    use std::os::fd::AsFd;
    use std::time::Instant;

    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

    let no_pipe = || Some(std::io::Error::other("the child has no pipe"));
    let mut stdout = child.stdout.take().ok_or_else(no_pipe)?;
    let mut stderr = child.stderr.take().ok_or_else(no_pipe)?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(None);
        }
        let events = |open: bool| {
            if open {
                PollFlags::POLLIN
            } else {
                PollFlags::empty()
            }
        };
        let mut fds = [
            PollFd::new(stdout.as_fd(), events(out_open)),
            PollFd::new(stderr.as_fd(), events(err_open)),
        ];
        match poll(
            &mut fds,
            PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Some(e.into())),
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let (out_ready, err_ready) = (ready(&fds[0]), ready(&fds[1]));
        if out_open && out_ready {
            out_open = pump(&mut stdout, &mut out, MAX_SCONTROL_OUTPUT).map_err(Some)?;
        }
        if err_open && err_ready {
            err_open = pump(&mut stderr, &mut err, MAX_SCONTROL_STDERR).map_err(Some)?;
        }
    }
    // Both pipes are closed: the child is exiting.
    loop {
        if let Some(status) = child.try_wait().map_err(Some)? {
            return Ok((status, out, err));
        }
        if Instant::now() >= deadline {
            return Err(None);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One read from a pipe that poll found ready; `Ok(false)` at its end. Past `max` bytes
/// the rest is read and dropped, so that the writer can finish.
fn pump(pipe: &mut impl std::io::Read, buf: &mut Vec<u8>, max: usize) -> std::io::Result<bool> {
    let mut chunk = [0u8; 16 << 10];
    match pipe.read(&mut chunk) {
        Ok(0) => Ok(false),
        Ok(n) => {
            let keep = n.min(max.saturating_sub(buf.len()));
            buf.extend_from_slice(&chunk[..keep]);
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(true),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_ids_are_digits_only() {
        assert_eq!(parse_job_id("42").unwrap().as_str(), "42");
        assert_eq!(parse_job_id("4294967295").unwrap().as_str(), "4294967295");
        for bad in [
            "",
            "0",
            "4294967296",
            "12a",
            "../1",
            "1/2",
            " 1",
            "1\n",
            "-1",
            "+1",
        ] {
            assert!(parse_job_id(bad).is_err(), "{bad:?} accepted");
        }
        // Leading zeros are normalised so one job has one directory.
        assert_eq!(parse_job_id("007").unwrap().as_str(), "7");
    }

    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn scontrol_end_times() {
        let id = parse_job_id("633").unwrap();
        // What scontrol show job prints on 22.05, with TZ=UTC0.
        let limited = "JobId=633 JobName=wrap\n   UserId=alice(1001) GroupId=alice(1001)\n   \
            RunTime=00:00:01 TimeLimit=01:30:00 TimeMin=N/A\n   \
            StartTime=2026-11-21T19:07:33 EndTime=2026-11-21T20:37:33 Deadline=N/A\n\n";
        assert_eq!(
            scontrol_end_time(limited, &id).unwrap(),
            Some(humantime::parse_rfc3339("2026-11-21T20:37:33Z").unwrap())
        );
        for unlimited in [
            "JobId=633 TimeLimit=UNLIMITED StartTime=2026-11-21T19:07:33 EndTime=Unknown\n",
            "JobId=633 TimeLimit=365-00:00:00 EndTime=2027-11-21T19:21:41\n",
            "JobId=633 TimeLimit=1-00:00:00 EndTime=None\n",
        ] {
            assert_eq!(
                scontrol_end_time(unlimited, &id).unwrap(),
                None,
                "{unlimited}"
            );
        }
        // An array master prints every task: only the job's own record counts.
        let array = "JobId=630 ArrayJobId=630 ArrayTaskId=0 TimeLimit=00:05:00 EndTime=2026-11-21T19:00:00\n\n\
            JobId=633 ArrayJobId=630 ArrayTaskId=3 TimeLimit=00:10:00 EndTime=2026-11-21T19:10:00\n\n";
        assert_eq!(
            scontrol_end_time(array, &id).unwrap(),
            Some(humantime::parse_rfc3339("2026-11-21T19:10:00Z").unwrap())
        );
        // JobId=6330 is not JobId=633.
        assert!(scontrol_end_time("JobId=6330 EndTime=Unknown\n", &id).is_err());
        assert!(
            scontrol_end_time("slurm_load_jobs error: Invalid job id specified\n", &id).is_err()
        );
        assert!(scontrol_end_time("JobId=633 EndTime=yesterday\n", &id)
            .unwrap_err()
            .contains("yesterday"));
    }

    fn sh(script: &str, timeout: Duration) -> Result<String, ScontrolError> {
        run_scontrol(Path::new("/bin/sh"), &["-c", script], timeout)
    }

    #[test]
    fn scontrol_output_beyond_a_pipe_buffer_is_read_while_it_runs() {
        // 300 kB does not fit in a 64 KiB pipe: read only after exit, this would time out.
        let out = sh(
            "head -c 300000 /dev/zero | tr '\\0' x",
            Duration::from_secs(20),
        )
        .unwrap();
        assert_eq!(out.len(), 300_000);
        assert!(out.bytes().all(|b| b == b'x'));
    }

    #[test]
    fn scontrol_runs_with_only_tz_in_its_environment() {
        let out = run_scontrol(Path::new("/usr/bin/env"), &[], Duration::from_secs(20)).unwrap();
        let vars: Vec<&str> = out
            .lines()
            .filter(|l| !l.starts_with("SLURM_CONF="))
            .collect();
        assert_eq!(vars, ["TZ=UTC0"]);
    }

    #[test]
    fn a_hung_scontrol_is_killed_at_the_deadline() {
        let start = std::time::Instant::now();
        let e = sh("echo partial; exec sleep 30", Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, ScontrolError::Timeout { .. }), "{e}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert!(e.to_string().contains("did not answer within 300ms"), "{e}");
    }

    #[test]
    fn a_failing_scontrol_says_why() {
        let e = sh(
            "echo; echo 'slurm_load_ctl_conf error: Unable to contact slurm controller (connect failure)' >&2; exit 1",
            Duration::from_secs(20),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/bin/sh exited with exit status: 1: slurm_load_ctl_conf error: Unable to contact slurm controller (connect failure)"
        );
        let e = run_scontrol(
            Path::new("/nonexistent/scontrol"),
            &[],
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(e, ScontrolError::Spawn { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("cannot run /nonexistent/scontrol: "),
            "{e}"
        );
    }

    #[test]
    fn reads_a_prolog_environment() {
        let e = env(&[
            ("SLURM_JOB_ID", "42"),
            ("SLURM_JOB_UID", "0"),
            ("SLURM_JOB_USER", "root"),
            ("SLURM_JOB_GID", "0"),
            ("SLURM_JOB_PARTITION", "gpu"),
            ("SLURM_CLUSTER_NAME", "lab"),
            ("SLURM_JOB_RESTART_COUNT", "2"),
            ("SLURM_JOB_END_TIME", "1795296949"),
            ("SPANK_AWS_ROLE", "ml-training"),
        ]);
        let j = job_from_env(e, Extra::default()).unwrap();
        assert_eq!(j.id.as_str(), "42");
        assert_eq!(j.user, "root");
        assert_eq!(j.partition.as_deref(), Some("gpu"));
        assert_eq!(j.account, None);
        assert_eq!(j.restart_count, 2);
        assert_eq!(
            j.end_time,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_296_949))
        );
        assert_eq!(j.requested, Some(RoleRequest::Named("ml-training".into())));
    }

    #[test]
    fn plugin_values_fill_what_22_05_lacks_but_never_override_slurm() {
        let base = [("SLURM_JOB_ID", "8"), ("SLURM_JOB_UID", "0")];
        let extra = Extra {
            end_time: Some(100),
            array_job_id: Some(5),
            array_task_id: Some(0),
        };
        let j = job_from_env(env(&base), extra).unwrap();
        assert_eq!(
            j.end_time,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(100))
        );
        assert_eq!(j.array_task_id, Some(0));
        assert_eq!(j.array_job_id.as_deref(), Some("5"));
        let mut with_end = base.to_vec();
        with_end.push(("SLURM_JOB_END_TIME", "200"));
        let j = job_from_env(env(&with_end), extra).unwrap();
        assert_eq!(
            j.end_time,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(200))
        );
    }

    #[test]
    fn end_times_past_the_year_9999_are_refused_by_name_not_a_panic() {
        let base = [("SLURM_JOB_ID", "8"), ("SLURM_JOB_UID", "0")];
        let mut huge = base.to_vec();
        huge.push(("SLURM_JOB_END_TIME", "18446744073709551615"));
        let e = job_from_env(env(&huge), Extra::default()).unwrap_err();
        assert!(e.to_string().contains("SLURM_JOB_END_TIME"), "{e}");
        assert!(e.to_string().contains("18446744073709551615"), "{e}");
        let extra = Extra {
            end_time: Some(crate::job::MAX_END_TIME + 1),
            ..Extra::default()
        };
        let e = job_from_env(env(&base), extra).unwrap_err();
        assert!(e.to_string().contains("--end-time"), "{e}");
        let extra = Extra {
            end_time: Some(crate::job::MAX_END_TIME),
            ..Extra::default()
        };
        assert!(job_from_env(env(&base), extra).is_ok());
    }

    #[test]
    fn end_time_source_prefers_the_environment_then_the_plugin() {
        assert_eq!(
            end_time_source(Some(200), Some(100)),
            (Some(200), "env SLURM_JOB_END_TIME")
        );
        assert_eq!(
            end_time_source(Some(200), None),
            (Some(200), "env SLURM_JOB_END_TIME")
        );
        assert_eq!(
            end_time_source(None, Some(100)),
            (Some(100), "plugin --end-time")
        );
        assert_eq!(end_time_source(None, None), (None, "none"));
    }

    #[test]
    fn bad_or_missing_values_name_the_variable() {
        let e = job_from_env(env(&[("SLURM_JOB_UID", "0")]), Extra::default()).unwrap_err();
        assert!(e.to_string().contains("SLURM_JOB_ID is not set"), "{e}");
        let e = job_from_env(
            env(&[("SLURM_JOB_ID", "../1"), ("SLURM_JOB_UID", "0")]),
            Extra::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("invalid slurm job id \"../1\""),
            "{e}"
        );
        let e = job_from_env(
            env(&[("SLURM_JOB_ID", "1"), ("SLURM_JOB_UID", "x")]),
            Extra::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("SLURM_JOB_UID is \"x\""), "{e}");
        let e = job_from_env(
            env(&[
                ("SLURM_JOB_ID", "1"),
                ("SLURM_JOB_UID", "0"),
                ("SLURM_JOB_USER", "mallory"),
            ]),
            Extra::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"mallory\""), "{e}");
        let e = job_from_env(
            env(&[("SLURM_JOB_ID", "1"), ("SLURM_JOB_UID", "3999999999")]),
            Extra::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a user"), "{e}");
    }

    #[test]
    fn liveness_from_scontrol() {
        use std::os::unix::process::ExitStatusExt;
        let id = parse_job_id("77").unwrap();
        let show = |state: &str| -> Result<String, ScontrolError> {
            Ok(format!(
                "JobId=77 JobName=x\n   UserId=alice(1000) JobState={state} Reason=None\n"
            ))
        };
        for alive in [
            "RUNNING",
            "SUSPENDED",
            "COMPLETING",
            "CONFIGURING",
            "PENDING",
            "REQUEUED",
        ] {
            assert_eq!(liveness(&id, &show(alive)), Liveness::Alive, "{alive}");
        }
        for ended in ["COMPLETED", "CANCELLED", "TIMEOUT", "FAILED", "NODE_FAIL"] {
            assert!(
                matches!(liveness(&id, &show(ended)), Liveness::Gone(_)),
                "{ended}"
            );
        }
        let forgotten = Err(ScontrolError::Failed {
            path: "/usr/bin/scontrol".into(),
            status: std::process::ExitStatus::from_raw(256),
            stderr: "slurm_load_jobs error: Invalid job id specified\n".into(),
        });
        assert!(matches!(liveness(&id, &forgotten), Liveness::Gone(_)));
        let down = Err(ScontrolError::Failed {
            path: "/usr/bin/scontrol".into(),
            status: std::process::ExitStatus::from_raw(256),
            stderr: "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"
                .into(),
        });
        assert!(matches!(liveness(&id, &down), Liveness::Unknown(_)));
        // Another job's record (an array master lists its tasks) is no answer for this one.
        let other = Ok("JobId=771 JobState=COMPLETED\n".to_string());
        assert!(matches!(liveness(&id, &other), Liveness::Unknown(_)));
    }
}
