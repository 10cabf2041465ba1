//! `aws-role-credentials`: the `credential_process` of every job's AWS config.
//!
//! Runs as the job's user whenever an SDK needs credentials, and prints the job's current
//! credentials (kept fresh on the node) as credential_process JSON with their
//! `Expiration`, so SDKs refresh by themselves. Errors go to stderr and never contain a
//! secret; stdout carries nothing but the JSON.

// Every line goes through aws_role::output, which never panics on a closed stdout/stderr.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use aws_role::creds::{rfc3339, Credentials};
use aws_role::store::CREDENTIALS_JSON;
use clap::Parser;

/// Print a job's current AWS credentials for an AWS SDK (credential_process).
///
/// The job's AWS config (JOB_DIR/config, which AWS_CONFIG_FILE points at inside the job)
/// names this program as its credential_process; the AWS SDKs and CLI run it, as the
/// job's user, whenever they need credentials, and again shortly before the ones it gave
/// expire. It prints the job's current credentials, kept fresh on the node by the
/// refresher, as credential_process JSON (Version 1, with Expiration) on stdout. Nothing
/// else is ever printed on stdout; errors go to stderr and never contain a secret.
#[derive(Parser, Debug)]
#[command(version, about, long_about, after_long_help = AFTER_HELP)]
struct Args {
    /// The job's credential directory, e.g. /run/aws-role/1234.
    job_dir: PathBuf,
}

/// The rest of `--help` (and of the man page generated from it).
const AFTER_HELP: &str = "\
Files:
  JOB_DIR/credentials.json
          The job's current credentials, written by aws-role-prolog and renewed by aws-role-refresher (owned by the job's user, mode 0600).

Exit status:
  0       The credentials were printed.
  1       There are none: the job has ended (its directory is gone), its role could not be given, or the credentials expired and were not renewed. The reason is printed on stderr, which the SDK shows.
  2       The command line is not valid.

Examples:
  credential_process=/usr/libexec/aws-role/aws-role-credentials /run/aws-role/1234
          The line aws-role-prolog writes into the config of job 1234.
  /usr/libexec/aws-role/aws-role-credentials \"$(dirname \"$AWS_CONFIG_FILE\")\"
          Inside a job: print its credentials by hand (they are secret).

See also:
  aws-role-prolog(8), aws-role-refresher(8), /usr/share/doc/aws-role/README.md (for researchers)";

fn main() -> ExitCode {
    let args = Args::parse();
    let path = args.job_dir.join(CREDENTIALS_JSON);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            aws_role::errln!(
                "aws-role: this job has no AWS credentials on this node ({} is gone): the job has ended, or its role could not be given (see the job's output)",
                path.display()
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            aws_role::errln!("aws-role: cannot read {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let creds = match Credentials::from_process_json(&text) {
        Ok(c) => c,
        Err(e) => {
            aws_role::errln!("aws-role: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    if creds.expiration <= SystemTime::now() {
        aws_role::errln!(
            "aws-role: the job's AWS credentials expired at {} and were not renewed (the job's time is up, or STS is unreachable from this node)",
            rfc3339(creds.expiration)
        );
        return ExitCode::FAILURE;
    }
    let _ = aws_role::output::stdout(&creds.to_process_json());
    ExitCode::SUCCESS
}
