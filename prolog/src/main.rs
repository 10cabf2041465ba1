//! `aws-role-prolog`: the Slurm Prolog (also run by the SPANK plugin's job_prolog) that
//! gives a job its AWS role on this node.
//!
//! It exits 0 for every job-level failure: a failing Prolog drains the node. What went
//! wrong is kept in the job's failure record, which fails the job with a clear message.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use aws_role::job::JobId;
use aws_role::jobenv;
use aws_role::map::{RoleMap, DEFAULT_BASE_DIR, DEFAULT_PATH};
use aws_role::provision::{self, Outcome};
use aws_role::slurm::{self, Extra};
use aws_role::store::Store;
use aws_role::store::{FailureRecord, CONFIG, FAILURE};
use clap::Parser;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Assume a job's AWS IAM role and store its short-lived credentials on this node.
///
/// Run as root by slurmd, as `Prolog=` or from the aws-role SPANK plugin. The job comes
/// from the Prolog environment (SLURM_JOB_ID, SLURM_JOB_UID, SLURM_JOB_PARTITION, ...);
/// the requested role from SPANK_AWS_ROLE, which is re-authorized against the role map.
/// Job-level failures exit 0 and leave a failure record that fails the job, so a user's
/// job or an STS outage never drains the node.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// Role map to use.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_PATH)]
    config: PathBuf,
    /// Validate a role map (default: --config), print a summary, exit 0 if it is valid, else 1.
    #[arg(long, value_name = "PATH", num_args = 0..=1)]
    check_config: Option<Option<PathBuf>>,
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
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The SDK's own INFO lines name the node's access key id: keep them out of the log.
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(tracing::Level::INFO)
        .with_target("aws_config", tracing::Level::WARN)
        .with_target("aws_smithy_runtime", tracing::Level::WARN)
        .with_target("aws_sdk_sts", tracing::Level::WARN);
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .finish()
        .with(filter)
        .init();
    if let Some(path) = &args.check_config {
        return check_config(path.as_ref().unwrap_or(&args.config));
    }
    // slurm.conf's TaskProlog takes no arguments; slurmstepd tells it where it runs.
    if args.task_prolog || env("SLURM_SCRIPT_CONTEXT").as_deref() == Some("prolog_task") {
        return task_prolog(&args);
    }
    // Only the epilog can make a job's id unusable; without one there is nothing to do.
    let id = match slurm::job_id(env) {
        Ok(id) => id,
        Err(e) => {
            tracing::error!("aws-role-prolog: {e}");
            return ExitCode::SUCCESS;
        }
    };
    let span = tracing::info_span!("job", id = %id);
    let _guard = span.enter();
    if let Err(e) = run(&args, &id) {
        // The node's store is unusable: say so loudly, but do not drain the node for it.
        tracing::error!("{e:#}");
    }
    ExitCode::SUCCESS
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn run(args: &Args, id: &JobId) -> anyhow::Result<()> {
    let loaded = RoleMap::load(&args.config);
    let base = match (&args.base_dir, &loaded) {
        (Some(b), _) => b.clone(),
        (None, Ok(map)) => map.node.base_dir.clone(),
        (None, Err(_)) => PathBuf::from(DEFAULT_BASE_DIR),
    };
    let store = Store::new(base);
    let map = match loaded {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("{e}");
            let owner = slurm::job_from_env(env, Extra::default())
                .ok()
                .map(|j| provision::owner(&j));
            provision::fail(
                &store,
                id,
                owner,
                format!("the site's role map is invalid, so no role can be given (the administrators have the details in the node's log); {}", e.file.display()),
            )?;
            return Ok(());
        }
    };
    let extra = Extra {
        end_time: args.end_time,
        array_job_id: args.array_job_id,
        array_task_id: args.array_task_id,
    };
    let job = match slurm::job_from_env(env, extra) {
        Ok(j) => j,
        Err(e) => {
            provision::fail(
                &store,
                id,
                None,
                format!("the job's Slurm environment is unusable: {e}"),
            )?;
            return Ok(());
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match rt.block_on(provision::prolog(&map, &store, &job, SystemTime::now()))? {
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
    let base = match (&args.base_dir, RoleMap::load(&args.config)) {
        (Some(b), _) => b.clone(),
        (None, Ok(map)) => map.node.base_dir,
        (None, Err(_)) => PathBuf::from(DEFAULT_BASE_DIR),
    };
    let dir = base.join(id.dir_name());
    if let Ok(text) = std::fs::read_to_string(dir.join(FAILURE)) {
        let reason = serde_json::from_str::<FailureRecord>(&text)
            .map(|r| r.reason)
            .unwrap_or_else(|_| "the job's AWS role could not be given".into());
        // One line: slurmstepd reads TaskProlog output line by line.
        println!("print aws-role: {}", reason.replace('\n', " "));
        return ExitCode::FAILURE;
    }
    if dir.join(CONFIG).exists() {
        print!("{}", jobenv::task_prolog_lines(&dir));
    }
    ExitCode::SUCCESS
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match RoleMap::load(path) {
        Ok(map) => {
            println!("{}: valid", path.display());
            print!("{}", map.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
