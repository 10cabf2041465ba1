//! `aws-role-credentials`: the `credential_process` of every job's AWS config.
//!
//! Runs as the job's user whenever an SDK needs credentials, and prints the job's current
//! credentials (kept fresh on the node) as credential_process JSON with their
//! `Expiration`, so SDKs refresh by themselves. Errors go to stderr and never contain a
//! secret; stdout carries nothing but the JSON.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use aws_role::creds::{rfc3339, Credentials};
use aws_role::store::CREDENTIALS_JSON;
use clap::Parser;

/// Print a job's current AWS credentials for an AWS SDK (credential_process).
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// The job's credential directory, e.g. /run/aws-role/1234.
    job_dir: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let path = args.job_dir.join(CREDENTIALS_JSON);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "aws-role: this job has no AWS credentials on this node ({} is gone): the job has ended, or its role could not be given (see the job's output)",
                path.display()
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("aws-role: cannot read {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let creds = match Credentials::from_process_json(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("aws-role: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    if creds.expiration <= SystemTime::now() {
        eprintln!(
            "aws-role: the job's AWS credentials expired at {} and were not renewed (the job's time is up, or STS is unreachable from this node)",
            rfc3339(creds.expiration)
        );
        return ExitCode::FAILURE;
    }
    print!("{}", creds.to_process_json());
    ExitCode::SUCCESS
}
