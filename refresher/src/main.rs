//! `aws-role-refresher`: the node daemon that keeps long jobs' AWS credentials valid.
//!
//! Runs as root, one per compute node (systemd unit `aws-role-refresher.service`). Every
//! pass it reads the job directories, refreshes the credentials that are due (see
//! `aws_role::refresh`), and removes directories whose job ended long ago. Its only state
//! is on disk, so it can be restarted at any time. SIGHUP re-reads the map at once;
//! SIGTERM/SIGINT stop it between passes.

// Every line goes through aws_role::output, which never panics on a closed stdout/stderr.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use aws_role::map::{self, RoleMap, DEFAULT_PATH};
use aws_role::refresher::{MapKeeper, Refresher};
use aws_role::store::Store;
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

/// Refresh the AWS credentials of this node's running jobs before they expire.
///
/// Jobs longer than their role's session cap (1 h when the node's own identity is a role)
/// get new credentials between `[refresh] lead` and `lead + jitter` before the old ones
/// expire, until the credentials reach the job's end plus margin; SDKs inside the job pick
/// them up through credential_process. Directories of jobs that ended more than
/// `[refresh] orphan_grace` ago (the epilog never ran) are removed.
///
/// Runs as root, one per node where jobs run, as the systemd service
/// aws-role-refresher.service. Its only state is in the job directories: it can be
/// stopped, killed or restarted at any time. SIGHUP re-reads the role map at once (it is
/// re-read every pass anyway); SIGTERM and SIGINT stop it between passes. It logs to
/// stderr (the journal).
#[derive(Parser, Debug)]
#[command(version, about, long_about, after_long_help = AFTER_HELP)]
struct Args {
    /// Role map to use; re-read every pass, the last valid one is kept if it breaks.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_PATH)]
    config: PathBuf,
    /// Override the map's [node] base_dir.
    #[arg(long, value_name = "DIR")]
    base_dir: Option<PathBuf>,
    /// Make one pass, print what it did, and exit (for cron or a check by hand).
    #[arg(long)]
    once: bool,
    /// Print how many AssumeRole calls a job with this time limit makes over its life
    /// under the map's settings (Slurm forms like 7-00:00:00 or UNLIMITED, or 90m, 7d),
    /// and exit.
    #[arg(long, value_name = "TIME_LIMIT")]
    plan: Option<String>,
    /// With --plan: the role whose session cap applies (default: the map's default cap).
    #[arg(long, value_name = "NAME", requires = "plan")]
    role: Option<String>,
    /// With --plan and --jobs-per-day: the nodes of each job (each node's prolog and
    /// refreshes call STS), for the site's STS rate.
    #[arg(long, value_name = "N", requires_all = ["plan", "jobs_per_day"], value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    nodes_per_job: Option<u64>,
    /// With --plan and --nodes-per-job: how many such jobs start a day.
    #[arg(long, value_name = "J", requires_all = ["plan", "nodes_per_job"], value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    jobs_per_day: Option<u64>,
}

/// The rest of `--help` (and of the man page generated from it).
const AFTER_HELP: &str = "\
Files:
  /etc/aws-role/role-map.toml
          The role map (--config): [refresh] lead, jitter, scan_interval, orphan_grace and concurrency; [sts] for the AssumeRole calls. A broken edit is reported and the last valid map kept.
  /run/aws-role/JOBID/
          The job directories (the map's [node] base_dir): state.json says when each job's credentials expire; credentials.json, credentials and config are replaced when they are renewed.
  /usr/lib/systemd/system/aws-role-refresher.service
          Its systemd unit.

Exit status:
  0       Stopped by SIGTERM or SIGINT; --once: every refresh that was due succeeded; --plan: the plan was printed.
  1       --once: a refresh failed, or the job directories or the role map cannot be read; --plan: the role map or the time limit is not valid, or there is no such role.
  2       The command line is not valid.

Examples:
  systemctl status aws-role-refresher
          Is it running on this node? (journalctl -u aws-role-refresher for its log.)
  aws-role-refresher --once
          One pass by hand: refresh what is due, remove what ended jobs left, print what was done.
  aws-role-refresher --plan 7-00:00:00 --role ml-training
          How many AssumeRole calls a 7-day job with role ml-training makes over its life.
  aws-role-refresher --plan 4:00:00 --nodes-per-job 16 --jobs-per-day 5000
          What 5,000 four-hour jobs of 16 nodes a day ask of the account's STS rate.

See also:
  aws-role-map(5), aws-role-prolog(8), aws-role-epilog(8), aws-role-credentials(1), /usr/share/doc/aws-role/admin-guide.md";

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(limit) = &args.plan {
        return plan(&args, limit);
    }
    aws_role::logging::init(!args.once);
    if !nix::unistd::geteuid().is_root() {
        tracing::warn!("not running as root: job files cannot be given to their users");
    }
    // An https endpoint's CA certificates from the system's bundle file alone, loaded once
    // for every refresh. It sets SSL_CERT_FILE, so it comes while this is the only thread,
    // before the runtime (whose DNS lookups run on threads of their own).
    let roots = aws_role::ca::use_bundle_file();
    tracing::debug!(?roots, "CA certificates for an https endpoint");
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let mut maps = MapKeeper::default();
    let mut refresher = Refresher::new();
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return ExitCode::FAILURE;
    };
    if !args.once {
        tracing::info!("started; role map {}", args.config.display());
    }
    loop {
        let Some(map) = maps.load(&args.config) else {
            if args.once {
                return ExitCode::FAILURE;
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
            continue;
        };
        let store = Store::new(map::base_dir(args.base_dir.as_deref(), Some(&map)));
        let now = SystemTime::now();
        let next = match refresher.pass(&map, &store, now).await {
            Ok(report) => {
                if args.once {
                    let skipped = match report.skipped {
                        0 => String::new(),
                        n => format!(", {n} skipped"),
                    };
                    aws_role::outln!(
                        "{} live, {} refreshed, {} failed, {} removed{skipped}",
                        report.live,
                        report.refreshed,
                        report.failed,
                        report.removed
                    );
                    return if report.failed == 0 {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    };
                }
                report.next
            }
            Err(e) => {
                tracing::error!("cannot read the job directories: {e}");
                if args.once {
                    return ExitCode::FAILURE;
                }
                None
            }
        };
        let scan = map.refresh.scan_interval;
        // A job that fell due while this pass waited for STS is taken at once (not a whole
        // scan later); the floor keeps a job that cannot make progress from spinning.
        let wait = next
            .map_or(scan, |n| {
                n.duration_since(SystemTime::now())
                    .unwrap_or_default()
                    .min(scan)
            })
            .max(Duration::from_millis(200));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = hup.recv() => tracing::info!("SIGHUP: re-reading the role map"),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("stopping; jobs keep their current credentials");
    ExitCode::SUCCESS
}

/// `--plan`: the STS calls of one job's life, as the refresher would make them
/// ([`aws_role::refresh::plan_summary`]).
fn plan(args: &Args, limit: &str) -> ExitCode {
    let map = match RoleMap::load(&args.config) {
        Ok(m) => m,
        Err(e) => {
            aws_role::errln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let now = SystemTime::now();
    let summary = match (args.nodes_per_job, args.jobs_per_day) {
        (Some(n), Some(j)) => {
            aws_role::refresh::site_summary(&map, args.role.as_deref(), limit, n, j, now)
        }
        _ => aws_role::refresh::plan_summary(&map, args.role.as_deref(), limit, now),
    };
    match summary {
        Ok(line) => {
            aws_role::outln!("{line}");
            ExitCode::SUCCESS
        }
        Err(e @ aws_role::refresh::PlanError::NoRole(_)) => {
            aws_role::errln!("{e} in {}", args.config.display());
            ExitCode::FAILURE
        }
        Err(e) => {
            aws_role::errln!("{e}");
            ExitCode::FAILURE
        }
    }
}
