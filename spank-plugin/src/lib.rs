//! `aws_role.so`: the Slurm SPANK plugin of aws-role.
//!
//! What it does, by callback (who runs it, as observed on Slurm 22.05 and 24.11):
//!
//! | callback | where, as whom | what |
//! |---|---|---|
//! | `init` | everywhere | registers `--aws-role=NAME` (local, remote, allocator) |
//! | `init_post_opt` | sbatch/salloc/srun, the user | checks NAME against the site map (friendly early refusal), passes it on as `SPANK_AWS_ROLE` |
//! | `job_prolog` | `slurmstepd spank prolog`, root, once per job and node | runs `aws-role-prolog` (clean environment, time limit, output to the slurmd log) when the job can get a role or has files here |
//! | `init_post_opt` | step's slurmstepd, root | reads the job's state/failure record from the node's store |
//! | `user_init` | step's slurmstepd | points the AWS SDKs at the job's files, unsets what would shadow them |
//! | `task_init` | each task, the user | fails the job with `aws-role: <reason>` when the node could not provide its role |
//! | `job_epilog` | `slurmstepd spank epilog`, root | runs `aws-role-epilog` (removes the job's files) when it has any |
//!
//! Failing in job_prolog, job_epilog or user_init drains the node (and requeue-holds the job), so
//! those callbacks never return an error: problems are logged, and a job whose role
//! could not be provided fails in task_init, leaving the node up.
//!
//! No threads, no async runtime, no AWS SDK in here: slurmstepd forks after the
//! callbacks. All AWS work happens in the separate prolog binary.

// The plugin is an FFI boundary with Slurm (the workspace denies `unsafe` elsewhere);
// every unsafe block in it says why it is sound (clippy::undocumented_unsafe_blocks).
#![allow(unsafe_code)]

mod child;
mod config;
mod log;
mod shim;
mod submit;

use std::error::Error;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use aws_role::delivery::{self, Note, StepRole};
use aws_role::job::{JobId, RoleRequest};
use aws_role::map::RoleMap;
use aws_role::policy;
use aws_role::record::FailureRecord;
use aws_role::store::{Store, FAILURE, STATE};
use nix::unistd::{getuid, User};
use slurm_spank::{Context, Plugin, SpankHandle, SpankOption};

use crate::config::Config;

include!(concat!(env!("OUT_DIR"), "/slurm_version.rs"));

/// The command-line option (`--aws-role=NAME`).
const OPTION: &str = "aws-role";
/// Job-control variable set at submit; the prolog sees it as `SPANK_AWS_ROLE`.
const JOB_CONTROL_VAR: &str = "AWS_ROLE";
#[cfg(not(test))]
slurm_spank::SPANK_PLUGIN!(b"aws_role", SLURM_VERSION_NUMBER, AwsRole);

/// What the step's slurmstepd found for its job (remote `init_post_opt`); the task
/// callbacks run in forked children of that process and see the same value.
/// The plugin's state in one process.
#[derive(Default)]
pub struct AwsRole {
    job: StepRole,
}

/// An error shown to the user as `aws-role: <message>` (sbatch's terminal, or the job's
/// output for task_init).
#[derive(Debug)]
struct UserError(String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&log::prefixed(&self.0))
    }
}

impl Error for UserError {}

fn user_error(msg: impl Into<String>) -> Box<dyn Error> {
    Box::new(UserError(msg.into()))
}

/// The plugstack arguments; problems are logged when `report` is set.
fn config(s: &SpankHandle, report: bool) -> Config {
    let (cfg, problems) = match s.plugin_argv() {
        Ok(args) => Config::parse(args),
        Err(e) => (
            Config::default(),
            vec![format!(
                "cannot read the plugin arguments ({e}); using the defaults"
            )],
        ),
    };
    if report {
        for p in problems {
            log::error(&p);
        }
    }
    cfg
}

// SAFETY: slurm-spank requires `unsafe impl` because slurmstepd forks after callbacks and
// runs task callbacks in the children: that is only sound for a plugin that starts no
// threads and holds no locks across callbacks. This plugin creates no threads (no async
// runtime, no SDK; child processes are spawned and waited for synchronously with poll),
// and its only state is plain owned data (`StepRole`), so a forked child sees a consistent
// copy. It is `Send` because all fields are owned `String`/`PathBuf`.
unsafe impl Plugin for AwsRole {
    fn init(&mut self, s: &mut SpankHandle) -> Result<(), Box<dyn Error>> {
        let ctx = match s.context() {
            Ok(c) => c,
            Err(e) => {
                log::error(&format!("cannot tell the SPANK context: {e}"));
                return Ok(());
            }
        };
        // Bad plugstack arguments are reported where administrators look: the slurmd
        // log, once when slurmd starts (and by every job_prolog), not on users' terminals.
        config(s, ctx == Context::Slurmd);
        if matches!(ctx, Context::Local | Context::Remote | Context::Allocator) {
            let opt = SpankOption::new(OPTION)
                .takes_value("NAME")
                .usage("AWS IAM role for this job: a role name from the site's list, or 'none'");
            if let Err(e) = s.register_option(opt) {
                // A client without the option cannot pass a role; a step can do without it.
                if ctx == Context::Remote {
                    log::error(&format!("cannot register --{OPTION}: {e}"));
                } else {
                    return Err(user_error(format!("cannot register --{OPTION}: {e}")));
                }
            }
        }
        Ok(())
    }

    fn init_post_opt(&mut self, s: &mut SpankHandle) -> Result<(), Box<dyn Error>> {
        match s.context() {
            Ok(Context::Allocator | Context::Local) => submit(s),
            Ok(Context::Remote) => {
                self.job = step_role(s);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn job_prolog(&mut self, s: &mut SpankHandle) -> Result<(), Box<dyn Error>> {
        // Never an error: a failing job_prolog drains the node.
        let cfg = within_slurm(config(s, true));
        match s.job_id() {
            Ok(id) => prolog(s, &cfg, id),
            Err(e) => log::error(&format!("job_prolog: cannot get the job id: {e}")),
        }
        Ok(())
    }

    fn user_init(&mut self, s: &mut SpankHandle) -> Result<(), Box<dyn Error>> {
        // Never an error: a failing user_init drains the node.
        if let StepRole::Role { dir, role, session } = &self.job {
            set_job_env(s, dir, role, session);
        }
        Ok(())
    }

    fn task_init(&mut self, _s: &mut SpankHandle) -> Result<(), Box<dyn Error>> {
        // Failing here fails only the job, with the reason in its output; the node stays up.
        match &self.job {
            StepRole::Failed { reason } => Err(user_error(reason.clone())),
            _ => Ok(()),
        }
    }

    fn job_epilog(&mut self, s: &mut SpankHandle) -> Result<(), Box<dyn Error>> {
        // Never an error: a failing job_epilog drains the node.
        let cfg = within_slurm(config(s, false));
        match s.job_id() {
            Ok(id) => epilog(&cfg, id),
            Err(e) => log::error(&format!("job_epilog: cannot get the job id: {e}")),
        }
        Ok(())
    }

    fn report_error(&self, _s: &mut SpankHandle, error: &dyn Error) {
        // At error level, so that it reaches the user: sbatch/srun print it on stderr as
        // "sbatch: error: aws-role: ..."; in task_init it lands in the job's output as
        // "slurmstepd-<node>: error: aws-role: ...". (slurm-spank's default goes through
        // tracing at info level, which the job's output does not show.)
        let mut report = error.to_string();
        let mut source = error.source();
        while let Some(e) = source {
            report.push_str(&format!(": {e}"));
            source = e.source();
        }
        log::error(&report);
    }

    fn setup(&mut self, _s: &mut SpankHandle) -> Result<(), Box<dyn Error>> {
        // No tracing subscriber: the plugin logs through Slurm directly (log.rs), and
        // installing a global subscriber in slurmd/slurmstepd is not ours to do.
        Ok(())
    }
}

/// [`Config::within_slurm`] with this slurmstepd's PrologEpilogTimeout, said in the log.
fn within_slurm(cfg: Config) -> Config {
    let (cfg, note) = cfg.within_slurm(shim::prolog_epilog_timeout());
    if let Some(note) = note {
        log::verbose(&note);
    }
    cfg
}

// ------------------------------------------------------------------------- submit

/// sbatch/salloc/srun: check `--aws-role` and hand it to the node.
fn submit(s: &mut SpankHandle) -> Result<(), Box<dyn Error>> {
    let value = match s.get_option_value(OPTION) {
        Ok(Some(v)) => v.into_owned(),
        Ok(None) => return Ok(()),
        Err(_) => return Err(user_error("the --aws-role value is not valid UTF-8")),
    };
    if value != submit::NONE {
        let cfg = config(s, false);
        check_at_submit(&cfg.map, &value)?;
    }
    s.job_control_setenv(JOB_CONTROL_VAR, &value, true)
        .map_err(|e| user_error(format!("cannot pass --aws-role to the job: {e}")))?;
    Ok(())
}

/// The early check; the node re-checks as root. Without a readable map (a login node
/// that does not have it) the node decides alone.
fn check_at_submit(map_path: &Path, value: &str) -> Result<(), Box<dyn Error>> {
    let map = match RoleMap::load(map_path) {
        Ok(m) => m,
        Err(e) => {
            log::verbose(&format!(
                "cannot read the role map {} ({e}); --aws-role is checked on the node",
                map_path.display()
            ));
            return Ok(());
        }
    };
    let user = match User::from_uid(getuid()) {
        Ok(Some(u)) => u.name,
        other => {
            log::verbose(&format!(
                "cannot look up uid {}: {other:?}; --aws-role is checked on the node",
                getuid()
            ));
            return Ok(());
        }
    };
    let groups = policy::groups_of(&user).unwrap_or_else(|e| {
        log::verbose(&format!("cannot look up the groups of {user}: {e}"));
        Vec::new()
    });
    submit::check(&map, value, &user, &groups).map_err(user_error)
}

// ------------------------------------------------------------------------- steps

/// The job directory's base: the map's `[node] base_dir`, or the fallback.
fn base_dir(map: Option<&RoleMap>) -> PathBuf {
    aws_role::map::base_dir(None, map)
}

fn slurm_job_id(id: u32) -> Option<JobId> {
    aws_role::scheduler::slurm::parse_job_id(&id.to_string())
        .map_err(|e| log::error(&e.to_string()))
        .ok()
}

/// Remote init_post_opt (root, once per step): what the node's store says about the job
/// ([`delivery::step_role`]).
fn step_role(s: &SpankHandle) -> StepRole {
    let cfg = config(s, false);
    let Some(id) = s.job_id().ok().and_then(slurm_job_id) else {
        log::error("init_post_opt: cannot get the job id");
        return StepRole::Nothing;
    };
    let map = RoleMap::load(&cfg.map)
        .map_err(|e| log::debug(&format!("role map {}: {e}", cfg.map.display())))
        .ok();
    let store = Store::new(base_dir(map.as_ref()));
    // What this step asked for: srun's own --aws-role, or the batch step's sbatch value.
    let requested = s
        .get_option_value(OPTION)
        .ok()
        .flatten()
        .as_deref()
        .and_then(RoleRequest::from_value);
    let partition = s.getenv("SLURM_JOB_PARTITION").ok().flatten();
    let expects = policy::expects_record(map.as_ref(), partition.as_deref(), requested.as_ref());
    let (role, note) =
        delivery::step_role(&store, &id, s.job_uid().ok(), requested.as_ref(), expects);
    match note {
        Some(Note::Error(line)) => log::error(&line),
        Some(Note::Info(line)) => log::info(&line),
        None => {}
    }
    role
}

/// user_init: the job's environment for the AWS SDKs and CLI. Errors are logged only.
fn set_job_env(s: &SpankHandle, dir: &Path, role: &str, session: &str) {
    // Inherited shadows go first: the job's own variables include some of their names.
    for name in delivery::SHADOWING {
        if let Err(e) = s.unsetenv(name) {
            log::error(&format!("user_init: cannot unset {name}: {e}"));
        }
    }
    for (name, value) in delivery::environment(dir, Some(role), Some(session)) {
        if let Err(e) = s.setenv(name, &value, true) {
            log::error(&format!("user_init: cannot set {name}: {e}"));
        }
    }
    log::verbose(&format!(
        "AWS role {role} as session {session} from {}",
        dir.display()
    ));
}

// ------------------------------------------------------------------------- prolog/epilog

/// job_prolog (root, once per job per node): run the prolog binary.
fn prolog(s: &SpankHandle, cfg: &Config, id: u32) {
    let Some(job) = slurm_job_id(id) else { return };
    let mut env = child::clean_env(std::env::vars_os());
    if !env.iter().any(|(k, _)| k == child::ROLE_VAR) {
        // Not passed by sbatch (e.g. a client without the plugin's init_post_opt): the
        // option itself still reaches job_prolog through spank_option_getopt.
        if let Some(v) = s.get_option_value(OPTION).ok().flatten() {
            env.push((child::ROLE_VAR.into(), v.into_owned().into()));
        }
    }
    if nothing_to_do(cfg, &job, &env) {
        log::debug(&format!(
            "job {job}: no AWS role asked for or by default; no prolog"
        ));
        return;
    }
    let mut args: Vec<OsString> = vec!["--config".into(), cfg.map.clone().into()];
    match shim::job_times(id) {
        Ok(t) => {
            if let Some(end) = t.end_time {
                args.extend(["--end-time".into(), end.to_string().into()]);
            }
            if let Some((array_job, task)) = t.array {
                args.extend([
                    "--array-job-id".into(),
                    array_job.to_string().into(),
                    "--array-task-id".into(),
                    task.to_string().into(),
                ]);
            }
        }
        Err(e) => log::error(&format!(
            "job {id}: cannot get the job's end time and array ids ({e}); going on without them"
        )),
    }
    if let Err(why) = run_binary("prolog", &job, &cfg.prolog, &args, &env, cfg) {
        record_failure(cfg, &job, &env, &why);
    }
}

/// job_epilog (root): run the epilog binary; if it cannot do its work, clean up here.
fn epilog(cfg: &Config, id: u32) {
    let Some(job) = slurm_job_id(id) else { return };
    let map = RoleMap::load(&cfg.map).ok();
    if map.as_ref().is_some_and(|m| !job_dir_exists(m, &job)) {
        return;
    }
    let args: Vec<OsString> = vec!["--config".into(), cfg.map.clone().into()];
    let env = child::clean_env(std::env::vars_os());
    if run_binary("epilog", &job, &cfg.epilog, &args, &env, cfg).is_err() {
        match Store::new(base_dir(map.as_ref())).remove_job(&job) {
            Ok(n) => log::info(&format!(
                "job {job}: removed {n} files in place of the epilog"
            )),
            Err(e) => log::error(&format!("job {job}: cleanup failed: {e}")),
        }
    }
}

/// Most jobs never ask for a role. For them the prolog binary would only load the map,
/// decide "no role" and find nothing to clean, after the plugin had asked slurmctld for
/// the job's times: a process and an RPC on every job start (bench/ section 4). Skip
/// both when the map loads, the job cannot get a role ([`policy::may_get_role`]) and it
/// has no directory on this node (a stale one, e.g. from a requeue, is for the binary to
/// clean). With a map that does not load, the binary runs and reports it.
fn nothing_to_do(cfg: &Config, job: &JobId, env: &[(OsString, OsString)]) -> bool {
    let Ok(map) = RoleMap::load(&cfg.map) else {
        return false;
    };
    let var = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.to_str())
    };
    let requested = var(child::ROLE_VAR).and_then(RoleRequest::from_value);
    let partition = var("SLURM_JOB_PARTITION").filter(|p| !p.is_empty());
    !policy::expects_record(Some(&map), partition, requested.as_ref()) && !job_dir_exists(&map, job)
}

/// Whether anything (a directory, a file, a link) is where `job`'s directory would be.
/// Any error other than "not found" counts as "something": the binaries then look.
fn job_dir_exists(map: &RoleMap, job: &JobId) -> bool {
    let path = base_dir(Some(map)).join(job.dir_name());
    !matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// A binary that root runs for every job must be root's alone.
fn check_binary(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !md.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if md.uid() != 0 || md.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is owned by uid {} with mode {:o}; it must be owned by root and writable by nobody else",
            path.display(),
            md.uid(),
            md.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Runs one of our binaries for `job`, relaying its output to the log. `Err` says why it
/// did not run to a successful end (already logged).
fn run_binary(
    what: &str,
    job: &JobId,
    program: &Path,
    args: &[OsString],
    env: &[(OsString, OsString)],
    cfg: &Config,
) -> Result<(), String> {
    let name = program
        .file_name()
        .map_or_else(|| what.to_string(), |n| n.to_string_lossy().into_owned());
    let fail = |why: String| {
        log::error(&format!("job {job}: {why}"));
        Err(why)
    };
    if let Err(e) = check_binary(program) {
        return fail(format!("not running the {what}: {e}"));
    }
    let t0 = Instant::now();
    let outcome = child::run(program, args, env, cfg.timeout, |line| {
        let level = if line.starts_with("ERROR") {
            log::Level::Error
        } else {
            log::Level::Info
        };
        log::log(level, &format!("job {job}: {name}: {line}"));
    });
    let ms = t0.elapsed().as_millis();
    match outcome {
        Ok(child::Outcome::Exited(st)) if st.success() => {
            log::verbose(&format!("job {job}: {name} done in {ms} ms"));
            Ok(())
        }
        Ok(child::Outcome::Exited(st)) => fail(format!("{name} failed ({st}) after {ms} ms")),
        Ok(child::Outcome::TimedOut) => fail(format!(
            "{name} did not finish within {} s and was killed",
            cfg.timeout.as_secs()
        )),
        Ok(child::Outcome::Lost(e)) => {
            // It ran to the end of its output; we only could not see its exit status.
            log::info(&format!(
                "job {job}: {name} ended after {ms} ms; exit status unknown: {e}"
            ));
            Ok(())
        }
        Err(e) => fail(format!("cannot run {}: {e}", program.display())),
    }
}

/// After a prolog that did not run to its end: if the job expected a role and the prolog
/// left no record, write a failure record so the job fails with a reason instead of
/// running without its role.
fn record_failure(cfg: &Config, job: &JobId, env: &[(OsString, OsString)], why: &str) {
    let var = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    };
    let map = RoleMap::load(&cfg.map).ok();
    let requested = var(child::ROLE_VAR)
        .as_deref()
        .and_then(RoleRequest::from_value);
    let partition = var("SLURM_JOB_PARTITION");
    if !policy::expects_record(map.as_ref(), partition.as_deref(), requested.as_ref()) {
        return;
    }
    let store = Store::new(base_dir(map.as_ref()));
    let result = store.open_job(job, true).and_then(|dir| {
        let Some(dir) = dir else { return Ok(()) };
        let has = |name| dir.read(name).map(|c| c.is_some());
        if has(STATE)? || has(FAILURE)? {
            return Ok(());
        }
        let record = FailureRecord {
            job_id: job.to_string(),
            reason: format!("the node could not provide the job's AWS role ({why})"),
            time: aws_role::creds::rfc3339(SystemTime::now()),
        };
        dir.write_record(FAILURE, &record)
    });
    if let Err(e) = result {
        log::error(&format!("job {job}: cannot record the failure: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_comes_from_the_headers() {
        let h = std::fs::read_to_string("/usr/include/slurm/slurm_version.h").unwrap_or_default();
        if let Some(line) = h
            .lines()
            .find(|l| l.starts_with("#define SLURM_VERSION_NUMBER"))
        {
            assert!(
                line.ends_with(&format!("{SLURM_VERSION_NUMBER:#08x}")),
                "{line}"
            );
        }
    }

    #[test]
    fn binaries_must_be_roots_alone() {
        assert!(check_binary(Path::new("/bin/sh")).is_ok());
        assert!(check_binary(Path::new("/nonexistent")).is_err());
        assert!(check_binary(Path::new("/tmp")).is_err());
    }
}
