//! `aws-role-prolog`: the Slurm Prolog (also run by the SPANK plugin's job_prolog) and the
//! PBS/Torque/OpenPBS `mom_priv/prologue` that gives a job its AWS role on this node.
//!
//! It exits 0 for every job-level failure: a failing Slurm Prolog drains the node, and a
//! non-zero PBS prologue makes pbs_mom abort, requeue or hold the job (Torque: 1 aborts,
//! more requeues; a timeout or permission error can put the node offline), so one bad job or
//! an STS outage would loop or take nodes out. What went wrong is kept in the job's failure
//! record: under Slurm it fails the job with a clear message; under PBS the login snippet
//! (`packaging/pbs/aws-role.sh`) prints it and the job has no AWS credentials.

// Every line goes through aws_role::output, which never panics on a closed stdout/stderr.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use aws_role::delivery::{self, Found};
use aws_role::job::{Job, JobId, Scheduler};
use aws_role::map::{self, RoleMap, DEFAULT_PATH};
use aws_role::provision::{self, Outcome};
use aws_role::scheduler::slurm::{self, Extra};
use aws_role::scheduler::{PrologInput, PrologJob};
use aws_role::store::Store;
use aws_role::store::{CONFIG, FAILURE, STATE};
use clap::Parser;

/// Assume a job's AWS IAM role and store its short-lived credentials on this node.
///
/// Run as root by slurmd, as `Prolog=` or from the aws-role SPANK plugin. The job comes
/// from the Prolog environment (SLURM_JOB_ID, SLURM_JOB_UID, SLURM_JOB_PARTITION, ...);
/// the requested role from SPANK_AWS_ROLE, which is re-authorized against the role map.
/// Job-level failures exit 0 and leave a failure record that fails the job, so a user's
/// job or an STS outage never drains the node.
///
/// Also runs as a PBS prologue (mom_priv/prologue): PBS passes the job as positional
/// arguments (Torque: jobid user group jobname resource_list queue account [script]
/// [hosts]; OpenPBS: jobid user group) in an empty environment. PBS is assumed when there
/// are positional arguments and SLURM_JOB_ID is not set, or with --scheduler pbs.
#[derive(Parser, Debug)]
#[command(version, about, long_about, after_long_help = AFTER_HELP)]
struct Args {
    /// Role map to use.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_PATH)]
    config: PathBuf,
    /// Validate a role map (default: --config), print a summary, exit 0 if it is valid, else 1.
    #[arg(long, value_name = "PATH", num_args = 0..=1)]
    check_config: Option<Option<PathBuf>>,
    /// List the job credentials on this node (job, user, role, session, expiry, last
    /// refresh, last error; never a secret) and exit.
    #[arg(long)]
    status: bool,
    /// Check this compute node and exit: the role map, the job directories' base, the
    /// binaries Slurm and the plugin run, whether an unprivileged user can reach the EC2
    /// instance metadata service (the node's own role), and Slurm's PrologFlags and plugin
    /// stack. One line per check (OK, INFO, WARN or FAIL); exits 0 when all are OK, 1 with
    /// a WARN, 2 with a FAIL. Run it as root.
    #[arg(long, conflicts_with_all = ["check_config", "status"])]
    check_node: bool,
    /// With --status: one JSON object per line instead of a table.
    #[arg(long, requires = "status")]
    json: bool,
    /// Override the map's [node] base_dir (for tests and unusual layouts).
    #[arg(long, value_name = "DIR")]
    base_dir: Option<PathBuf>,
    /// The job's end time (seconds since the epoch), when the environment lacks
    /// SLURM_JOB_END_TIME (Slurm < 23.02); the plugin passes it.
    #[arg(long, value_name = "EPOCH")]
    end_time: Option<u64>,
    /// Array master job id (the plugin passes it).
    #[arg(long, value_name = "ID")]
    array_job_id: Option<u32>,
    /// Array task index (the plugin passes it).
    #[arg(long, value_name = "N")]
    array_task_id: Option<u32>,
    /// Act as the Slurm TaskProlog (sites without the plugin): runs as the job's user and
    /// prints the `export`/`unset` lines that point the job at its credentials; when the
    /// job's role could not be given, prints the reason and exits 1, which fails the task.
    /// Implied when SLURM_SCRIPT_CONTEXT=prolog_task, so `TaskProlog=` can name this binary.
    #[arg(long)]
    task_prolog: bool,
    /// The calling convention; default: pbs when positional arguments are given and
    /// SLURM_JOB_ID is not set, else slurm.
    #[arg(long, value_name = "NAME", value_parser = scheduler_name())]
    scheduler: Option<Scheduler>,
    /// PBS: the job's queue when the prologue is not told it (OpenPBS passes only jobid
    /// user group); picks `[pbs.queues.NAME]`. A queue in Torque's arguments wins.
    #[arg(long, value_name = "NAME")]
    queue: Option<String>,
    /// The PBS prologue's arguments, as pbs_mom passes them (Slurm passes none). Everything
    /// after the first is taken verbatim, even if it looks like an option: the job name and
    /// account are user-controlled.
    #[arg(
        value_name = "PBS_ARG",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pbs_args: Vec<String>,
}

/// The rest of `--help` (and of the man page generated from it).
const AFTER_HELP: &str = "\
Files:
  /etc/aws-role/role-map.toml
          The role map (--config): the roles, who may request them, partition and queue defaults.
  /run/aws-role/JOBID/
          The job's directory (the map's [node] base_dir): credentials.json, credentials and config, owned by the job's user, mode 0600; state.json, root's; or failure.json, why the job's role could not be given.

Environment:
  SLURM_JOB_ID, SLURM_JOB_UID, SLURM_JOB_GID, SLURM_JOB_USER, SLURM_JOB_PARTITION, SLURM_JOB_ACCOUNT, SLURM_CLUSTER_NAME, SLURM_JOB_RESTART_COUNT, SLURM_JOB_END_TIME
          The job, as slurmd passes it to a Prolog (and the plugin to this program).
  SPANK_AWS_ROLE
          The role the job asked for (sbatch --aws-role=NAME), passed on by the plugin; user-controlled, so checked again against the role map.
  SLURM_SCRIPT_CONTEXT
          prolog_task: run as the TaskProlog (as --task-prolog).

Exit status:
  0       As a Slurm Prolog, a PBS prologue or the plugin's job prolog: always, even when the job's role could not be given (a non-zero status would drain the node or requeue the job); the reason is then in the job's failure.json, and under Slurm the job fails at its first task. --check-config: the map is valid. --status: the jobs were listed.
  1       --check-config: the map is not valid (every mistake is printed as file:line:column). --task-prolog: the job's role could not be given (the task fails, printing why). --status: the job directories cannot be read.
  2       The command line is not valid.

Examples:
  aws-role-prolog --check-config
          Check /etc/aws-role/role-map.toml after editing it, and list who may request which role.
  aws-role-prolog --status --json
          List the jobs that have AWS credentials on this node (never a secret), one JSON object per line.
  Prolog=/usr/libexec/aws-role/aws-role-prolog
          In slurm.conf, at sites without the SPANK plugin, with Epilog=/usr/libexec/aws-role/aws-role-epilog and TaskProlog=/usr/libexec/aws-role/aws-role-prolog.
  install -o root -g root -m 0500 /usr/libexec/aws-role/aws-role-prolog /var/spool/pbs/mom_priv/prologue
          Make it the OpenPBS prologue (Torque: /var/spool/torque/mom_priv/prologue).

See also:
  aws-role-map(5), aws_role.so(8), aws-role-epilog(8), aws-role-refresher(8), aws-role-credentials(1), /usr/share/doc/aws-role/admin-guide.md";

/// `--scheduler`: one of the names [`Scheduler::ALL`] has, listed in `--help`.
fn scheduler_name() -> impl clap::builder::TypedValueParser<Value = Scheduler> {
    use clap::builder::{PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(Scheduler::ALL.map(Scheduler::name))
        .try_map(|name| name.parse::<Scheduler>())
}

fn main() -> ExitCode {
    let args = Args::parse();
    aws_role::logging::init(false);
    if let Some(path) = &args.check_config {
        return check_config(path.as_ref().unwrap_or(&args.config));
    }
    if args.check_node {
        return check_node(&args);
    }
    if args.status {
        return status(&args);
    }
    let scheduler = aws_role::scheduler::detect(
        args.scheduler,
        args.pbs_args.len(),
        env(aws_role::scheduler::SLURM_MARKER).is_some(),
    );
    // slurm.conf's TaskProlog takes no arguments; slurmstepd tells it where it runs.
    if scheduler == Scheduler::Slurm
        && (args.task_prolog || env("SLURM_SCRIPT_CONTEXT").as_deref() == Some("prolog_task"))
    {
        return task_prolog(&args);
    }
    // Whatever happens, exit 0: a failing Slurm Prolog drains the node, a failing PBS
    // prologue makes pbs_mom abort, requeue or hold the job (which would fail the same way
    // again). A job-level failure goes into the job's failure record instead.
    let input = PrologInput {
        args: &args.pbs_args,
        queue: args.queue.as_deref(),
        env: &env,
        plugin: Extra {
            end_time: args.end_time,
            array_job_id: args.array_job_id,
            array_task_id: args.array_task_id,
        },
        now: SystemTime::now(),
    };
    let PrologJob { id, job } = match aws_role::scheduler::of(scheduler).prolog_job(input) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("aws-role-prolog ({scheduler}): {e}");
            return ExitCode::SUCCESS;
        }
    };
    let span = tracing::info_span!("job", id = %id);
    let _guard = span.enter();
    if let Err(e) = run(&args, &id, job) {
        // The node's store is unusable: say so loudly, but do not drain the node for it.
        tracing::error!("{e:#}");
    }
    ExitCode::SUCCESS
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Provisions the job `job()` describes (or records why not, [`provision::run`]); `Err`
/// only when the store is unusable.
fn run(args: &Args, id: &JobId, job: impl FnOnce() -> Result<Job, String>) -> anyhow::Result<()> {
    let loaded = RoleMap::load(&args.config);
    let base = map::base_dir(args.base_dir.as_deref(), loaded.as_ref().ok());
    let store = Store::new(base);
    // An https endpoint's CA certificates from the system's bundle file alone. It sets
    // SSL_CERT_FILE, so it comes while this is the only thread, before the runtime (whose
    // DNS lookups run on threads of their own).
    let roots = aws_role::ca::use_bundle_file();
    tracing::debug!(?roots, "CA certificates for an https endpoint");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = rt.block_on(provision::run(
        loaded.as_ref(),
        &store,
        id,
        job,
        SystemTime::now(),
    ))?;
    match outcome {
        Outcome::Provisioned {
            role,
            session_name,
            duration,
            expiration,
        } => tracing::info!(
            "credentials for role {role} as session {session_name}, {} s, expire {}",
            duration.as_secs(),
            aws_role::creds::rfc3339(expiration)
        ),
        Outcome::NoRole { why } => tracing::info!("no role: {why}"),
        Outcome::Failed { reason } => tracing::warn!("failure recorded: {reason}"),
    }
    Ok(())
}

/// TaskProlog mode: stdout is read by slurmstepd (`export`, `unset`, `print` lines).
fn task_prolog(args: &Args) -> ExitCode {
    let Ok(id) = slurm::job_id(env) else {
        return ExitCode::SUCCESS;
    };
    // The map is world-readable on the node.
    let loaded = RoleMap::load(&args.config).ok();
    let dir = map::base_dir(args.base_dir.as_deref(), loaded.as_ref()).join(id.dir_name());
    // Whether the job could get a role at all: its partition has a default (a Prolog=
    // without the plugin knows no --aws-role).
    let expected = aws_role::policy::expects_record(
        loaded.as_ref(),
        env("SLURM_JOB_PARTITION").as_deref(),
        None,
    );
    let t = delivery::task_prolog(
        &dir,
        Found::at(&dir.join(FAILURE)),
        Found::at(&dir.join(CONFIG)),
        Found::at(&dir.join(STATE)),
        expected,
    );
    let _ = aws_role::output::stdout(&t.output);
    if t.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn status(args: &Args) -> ExitCode {
    let loaded = RoleMap::load(&args.config)
        .map_err(|e| aws_role::errln!("{e}; listing the default place"))
        .ok();
    let store = Store::new(map::base_dir(args.base_dir.as_deref(), loaded.as_ref()));
    let entries = match aws_role::status::list(&store) {
        Ok(e) => e,
        Err(e) => {
            aws_role::errln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        for e in &entries {
            match serde_json::to_string(e) {
                Ok(line) => aws_role::outln!("{line}"),
                Err(e) => aws_role::errln!("{e}"),
            }
        }
    } else {
        let _ = aws_role::output::stdout(&aws_role::status::render(&entries, SystemTime::now()));
    }
    ExitCode::SUCCESS
}

fn check_node(args: &Args) -> ExitCode {
    let opts = aws_role::node::Options {
        config: args.config.clone(),
        base_dir: args.base_dir.clone(),
        exe: std::env::current_exe().ok(),
        slurm_conf: env("SLURM_CONF")
            .map_or_else(|| PathBuf::from("/etc/slurm/slurm.conf"), PathBuf::from),
    };
    let mut findings = aws_role::node::check(&opts);
    // The node's own identity, with a real GetCallerIdentity (the map must load for it).
    if let Ok(map) = RoleMap::load(&opts.config) {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => findings.extend(rt.block_on(aws_role::sts::identity::findings(&map.sts))),
            Err(e) => findings.push(aws_role::node::Finding {
                level: aws_role::node::Level::Warn,
                check: "node identity",
                detail: format!("not tested: cannot start the async runtime: {e}"),
            }),
        }
    }
    let _ = aws_role::output::stdout(&aws_role::node::render(&findings));
    ExitCode::from(aws_role::node::exit_code(&findings))
}

/// For a map whose roles depend on job accounts, `--check-node`'s finding on whether this
/// cluster's Slurm vouches for them (a FAIL: such jobs would be refused).
fn account_finding(map: &RoleMap) -> Option<aws_role::node::Finding> {
    let scontrol = &map.slurm.scontrol;
    let show_config = scontrol.exists().then(|| {
        aws_role::scheduler::slurm::run_scontrol(
            scontrol,
            &["show", "config"],
            map.slurm.scontrol_timeout,
        )
    });
    aws_role::node::site::accounts_finding(map, show_config.as_ref())
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match RoleMap::load(path) {
        Ok(map) => {
            aws_role::outln!("{}: valid", path.display());
            let _ = aws_role::output::stdout(&map.summary());
            // Where the calls go, as the SDK's endpoint rules resolve region, FIPS and
            // dual-stack (nothing is sent).
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    aws_role::errln!("cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let resolved = rt.block_on(aws_role::sts::resolved_endpoint(&map.sts));
            match resolved {
                Ok(url) => aws_role::outln!("sts endpoint: {url}"),
                Err(why) => {
                    aws_role::errln!(
                        "{}: the SDK's endpoint rules give no STS endpoint for region {} (use_fips = {}, use_dualstack = {}): {why}",
                        path.display(),
                        map.sts.region,
                        map.sts.use_fips,
                        map.sts.use_dualstack
                    );
                    return ExitCode::FAILURE;
                }
            }
            // Which source the node's own credentials come from (its file is read, nothing
            // is fetched): run as root, as the prolog is, to read a root-only file.
            let source = rt.block_on(aws_role::sts::identity::describe(&map.sts));
            aws_role::outln!("{}", aws_role::sts::identity::summary(&map.sts, &source));
            for w in aws_role::policy::unknown_names(
                &map,
                aws_role::policy::user_exists,
                aws_role::policy::group_exists,
            ) {
                aws_role::outln!("warning: {}: {w}", path.display());
            }
            match account_finding(&map) {
                Some(f) if f.level == aws_role::node::Level::Fail => {
                    aws_role::errln!("{}: {}", path.display(), f.detail);
                    ExitCode::FAILURE
                }
                Some(f) => {
                    let _ = aws_role::output::stdout(&aws_role::node::render(&[f]));
                    ExitCode::SUCCESS
                }
                None => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            aws_role::errln!("{e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbs_arguments_that_look_like_options_stay_arguments() {
        // Torque's job name (argument 4) and account are user-controlled.
        let a = Args::try_parse_from([
            "aws-role-prolog",
            "12.srv",
            "alice",
            "alice",
            "--config=/tmp/evil.toml",
            "walltime=1:00:00",
            "batch",
            "--base-dir=/tmp",
        ])
        .unwrap();
        assert_eq!(a.config, PathBuf::from(DEFAULT_PATH));
        assert_eq!(a.base_dir, None);
        assert_eq!(a.pbs_args.len(), 7);
        assert_eq!(a.pbs_args[3], "--config=/tmp/evil.toml");
    }

    #[test]
    fn options_before_the_pbs_arguments_still_work() {
        let a = Args::try_parse_from([
            "aws-role-prolog",
            "--scheduler",
            "pbs",
            "--queue",
            "gpu",
            "12.srv",
            "alice",
            "alice",
        ])
        .unwrap();
        assert_eq!(a.scheduler, Some(Scheduler::Pbs));
        assert_eq!(a.queue.as_deref(), Some("gpu"));
        assert_eq!(a.pbs_args, ["12.srv", "alice", "alice"]);
        let a = Args::try_parse_from(["aws-role-prolog"]).unwrap();
        assert!(a.pbs_args.is_empty());
        // An empty job id is an argument too (and is then refused as a job id).
        let a = Args::try_parse_from(["aws-role-prolog", "", "alice", "alice"]).unwrap();
        assert_eq!(a.pbs_args.len(), 3);
    }
}
