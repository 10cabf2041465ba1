//! aws-role: per-job AWS IAM roles for HPC batch schedulers.
//!
//! This crate holds all the logic; the SPANK plugin and the prolog/epilog binaries are thin
//! shells around it. A newcomer finds each concern in the module named after it:
//!
//! - [`map`]: the site's role map (TOML), validated with file/line/column errors.
//! - [`policy`]: which role a job gets, and why (or why not).
//! - [`accounts`]: whether the scheduler vouches for a job's account (Slurm's
//!   `AccountingStorageEnforce`), without which accounts grant nothing.
//! - [`walltime`]: Slurm/PBS time limits and the AssumeRole duration.
//! - [`session`]: role session names (`slurm-<jobid>-<task>`) within STS's rules.
//! - [`job`]: what we know about a job, with validated job ids.
//! - [`delivery`]: how a job reaches its credentials (files + `credential_process` today),
//!   the variables its processes get and lose, and what a task prolog or a step is told.
//! - [`endpoint`]: what the node's credentials endpoint answers a job's tools and containers,
//!   and who is calling it (the kernel's socket owner).
//! - [`logging`]: the binaries' log set-up, which keeps the SDK from logging key ids (features `sts`,
//!   `endpoint`).
//! - [`scheduler`]: the batch systems, one module each behind one seam: job ids, reading a
//!   job from what its prolog is given (Slurm's environment, PBS's arguments), queue
//!   default roles, whether a job still runs.
//! - [`creds`]: temporary credentials, whose secrets cannot be printed by accident.
//! - [`store`]: the per-job directory under `/run/aws-role`, written atomically and safely.
//! - [`record`]: what a job directory's records hold (`state.json`, `failure.json`).
//! - [`ca`]: the CA certificates an STS client trusts: none for `http://`, the system's CA
//!   bundle file for `https://` (feature `sts`).
//! - [`partition`]: AWS partitions, which one a region is in (ARNs must agree).
//! - [`proxy`]: the HTTP(S) proxy the node's STS calls go through (`[sts] proxy`).
//! - [`sts`]: AssumeRole against STS with retries under a hard deadline, signed with the
//!   node's own identity (`sts::identity`: credentials file, instance profile, default chain)
//!   and paced by the node's own rate (`sts::pace`, `[sts] node_rate`; feature `sts`).
//! - [`text`]: untrusted text made safe for one message line.
//! - [`provision`]: the prolog's work end to end (feature `sts`).
//! - [`refresh`]: when a long job's credentials are replaced, and the replacing (feature `sts`).
//! - [`refresher`]: the node daemon that refreshes every live job and removes orphans (feature `sts`).
//! - [`status`]: what a node holds, for `aws-role-prolog --status`.
//! - [`perms`]: who could change (or read) a file: a path and the directories above it.
//! - [`output`]: printing without a panic when the reader has gone (`| head -1`).
//! - [`node`]: whether a compute node is set up safely (IMDS, Slurm flags, ownership), for
//!   `aws-role-prolog --check-node`.

pub mod accounts;
#[cfg(feature = "sts")]
pub mod ca;
pub mod creds;
pub mod delivery;
pub mod endpoint;
pub mod job;
#[cfg(any(feature = "sts", feature = "endpoint"))]
pub mod logging;
pub mod map;
pub mod node;
pub mod output;
pub mod partition;
pub mod perms;
pub mod policy;
#[cfg(feature = "sts")]
pub mod provision;
pub mod proxy;
pub mod record;
pub mod refresh;
#[cfg(feature = "sts")]
pub mod refresher;
pub mod scheduler;
pub mod session;
pub mod status;
pub mod store;
#[cfg(feature = "sts")]
pub mod sts;
#[cfg(test)]
mod testing;
pub mod text;
pub mod walltime;
