//! `aws-role-epilog`: the Slurm Epilog (also run by the SPANK plugin's job_epilog) and the
//! PBS/Torque/OpenPBS `mom_priv/epilogue` that removes a job's AWS credentials from this
//! node.
//!
//! Idempotent and always exits 0: a failing Slurm Epilog drains the node, a failing PBS
//! epilogue can requeue the job or offline the node, and a job with nothing on this node
//! (no role, failed prolog, already cleaned) is normal.

// Every line goes through aws_role::output, which never panics on a closed stdout/stderr.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use aws_role::job::Scheduler;
use aws_role::map::{self, RoleMap, DEFAULT_PATH};
use aws_role::store::Store;
use clap::Parser;

/// Remove a job's AWS credentials from this node.
///
/// Run as root by slurmd, as `Epilog=` or from the aws-role SPANK plugin, after the job
/// ends for any reason (completion, scancel, time limit, requeue, failed prolog). The job
/// id comes from SLURM_JOB_ID.
///
/// Also runs as a PBS epilogue (mom_priv/epilogue): the job id is the first positional
/// argument (jobid user group jobname session_id resource_list resources_used queue
/// account exit_code ...). PBS is assumed when there are positional arguments and
/// SLURM_JOB_ID is not set, or with --scheduler pbs.
#[derive(Parser, Debug)]
#[command(version, about, long_about, after_long_help = AFTER_HELP)]
struct Args {
    /// Role map to use (for [node] base_dir).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_PATH)]
    config: PathBuf,
    /// Override the map's [node] base_dir.
    #[arg(long, value_name = "DIR")]
    base_dir: Option<PathBuf>,
    /// The calling convention; default: pbs when positional arguments are given and
    /// SLURM_JOB_ID is not set, else slurm.
    #[arg(long, value_name = "NAME", value_parser = scheduler_name())]
    scheduler: Option<Scheduler>,
    /// The PBS epilogue's arguments, as pbs_mom passes them (Slurm passes none); taken
    /// verbatim, even if they look like options.
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
          The role map (--config), read for its [node] base_dir only. When it cannot be read, the default place is cleaned up.
  /run/aws-role/JOBID/
          The job's directory, removed with everything in it. Removing it waits for a refresh of the job in progress, so nothing is left behind.

Environment:
  SLURM_JOB_ID
          The job, as slurmd passes it to an Epilog (and the plugin to this program).

Exit status:
  0       Always, also when there was nothing to remove or the removal failed (logged): a non-zero Slurm Epilog drains the node, and a failing PBS epilogue can requeue the job or take the node offline. Removing a job twice is harmless.
  2       The command line is not valid.

Examples:
  Epilog=/usr/libexec/aws-role/aws-role-epilog
          In slurm.conf, at sites without the SPANK plugin (whose job epilog runs it).
  install -o root -g root -m 0500 /usr/libexec/aws-role/aws-role-epilog /var/spool/pbs/mom_priv/epilogue
          Make it the OpenPBS epilogue (Torque: /var/spool/torque/mom_priv/epilogue).

See also:
  aws-role-prolog(8), aws-role-refresher(8), aws-role-map(5), /usr/share/doc/aws-role/admin-guide.md";

/// `--scheduler`: one of the names [`Scheduler::ALL`] has, listed in `--help`.
fn scheduler_name() -> impl clap::builder::TypedValueParser<Value = Scheduler> {
    use clap::builder::{PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(Scheduler::ALL.map(Scheduler::name))
        .try_map(|name| name.parse::<Scheduler>())
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();
    let scheduler = aws_role::scheduler::detect(
        args.scheduler,
        args.pbs_args.len(),
        std::env::var_os(aws_role::scheduler::SLURM_MARKER).is_some(),
    );
    let id = aws_role::scheduler::of(scheduler)
        .epilog_job_id(&args.pbs_args, &|n| std::env::var(n).ok());
    let id = match id {
        Ok(id) => id,
        Err(e) => {
            tracing::error!("aws-role-epilog ({scheduler}): {e}");
            return ExitCode::SUCCESS;
        }
    };
    let span = tracing::info_span!("job", id = %id);
    let _guard = span.enter();
    // Even with a broken map, clean up where the files normally are.
    // The map is only needed for its base_dir: not read at all when --base-dir is given.
    let loaded = match &args.base_dir {
        Some(_) => None,
        None => RoleMap::load(&args.config)
            .map_err(|e| tracing::warn!("{e}; cleaning up in the default place"))
            .ok(),
    };
    let base = map::base_dir(args.base_dir.as_deref(), loaded.as_ref());
    match Store::new(base).remove_job(&id) {
        Ok(0) => tracing::debug!("nothing to remove"),
        Ok(n) => tracing::info!("removed {n} files"),
        Err(e) => tracing::error!("cleanup failed: {e}"),
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbs_arguments_that_look_like_options_stay_arguments() {
        let a = Args::try_parse_from([
            "aws-role-epilog",
            "12.srv",
            "alice",
            "alice",
            "--base-dir=/tmp",
            "4242",
        ])
        .unwrap();
        assert_eq!(a.base_dir, None);
        assert_eq!(a.pbs_args.len(), 5);
        let a = Args::try_parse_from(["aws-role-epilog", "--scheduler=slurm"]).unwrap();
        assert_eq!(a.scheduler, Some(Scheduler::Slurm));
        assert!(a.pbs_args.is_empty());
    }
}
