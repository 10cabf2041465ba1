//! `aws-role-epilog`: the Slurm Epilog (also run by the SPANK plugin's job_epilog) that
//! removes a job's AWS credentials from this node.
//!
//! Idempotent and always exits 0: a failing Epilog drains the node, and a job with
//! nothing on this node (no role, failed prolog, already cleaned) is normal.

use std::path::PathBuf;
use std::process::ExitCode;

use aws_role::map::{RoleMap, DEFAULT_BASE_DIR, DEFAULT_PATH};
use aws_role::provision;
use aws_role::slurm;
use aws_role::store::Store;
use clap::Parser;

/// Remove a job's AWS credentials from this node.
///
/// Run as root by slurmd, as `Epilog=` or from the aws-role SPANK plugin, after the job
/// ends for any reason (completion, scancel, time limit, requeue, failed prolog). The job
/// id comes from SLURM_JOB_ID.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// Role map to use (for [node] base_dir).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_PATH)]
    config: PathBuf,
    /// Override the map's [node] base_dir.
    #[arg(long, value_name = "DIR")]
    base_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();
    let id = match slurm::job_id(|n| std::env::var(n).ok()) {
        Ok(id) => id,
        Err(e) => {
            tracing::error!("aws-role-epilog: {e}");
            return ExitCode::SUCCESS;
        }
    };
    let span = tracing::info_span!("job", id = %id);
    let _guard = span.enter();
    // Even with a broken map, clean up where the files normally are.
    let base = match (&args.base_dir, RoleMap::load(&args.config)) {
        (Some(b), _) => b.clone(),
        (None, Ok(map)) => map.node.base_dir,
        (None, Err(e)) => {
            tracing::warn!("{e}; cleaning up in the default place");
            PathBuf::from(DEFAULT_BASE_DIR)
        }
    };
    match provision::epilog(&Store::new(base), &id) {
        Ok(0) => tracing::debug!("nothing to remove"),
        Ok(n) => tracing::info!("removed {n} files"),
        Err(e) => tracing::error!("cleanup failed: {e}"),
    }
    ExitCode::SUCCESS
}
