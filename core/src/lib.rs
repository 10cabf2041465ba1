//! aws-role: per-job AWS IAM roles for HPC batch schedulers.
//!
//! This crate holds all the logic; the SPANK plugin and the prolog/epilog binaries are thin
//! shells around it. A newcomer finds each concern in the module named after it:
//!
//! - [`map`]: the site's role map (TOML), validated with file/line/column errors.
//! - [`policy`]: which role a job gets, and why (or why not).
//! - [`walltime`]: Slurm/PBS time limits and the AssumeRole duration.
//! - [`session`]: role session names (`slurm-<jobid>-<task>`) within STS's rules.
//! - [`job`]: what we know about a job, with validated job ids.
//! - [`jobenv`]: the variables a job with a role gets, and those it loses.
//! - [`slurm`]: reading a job from the Slurm Prolog/Epilog environment.
//! - [`pbs`]: reading a job from the arguments of a PBS/Torque/OpenPBS prologue/epilogue.
//! - [`creds`]: temporary credentials, whose secrets cannot be printed by accident.
//! - [`store`]: the per-job directory under `/run/aws-role`, written atomically and safely.
//! - [`sts`]: AssumeRole against STS with retries under a hard deadline (feature `sts`).
//! - [`text`]: untrusted text made safe for one message line.
//! - [`provision`]: the prolog's work end to end (feature `sts`).

pub mod creds;
pub mod job;
pub mod jobenv;
pub mod map;
pub mod pbs;
pub mod policy;
#[cfg(feature = "sts")]
pub mod provision;
pub mod session;
pub mod slurm;
pub mod store;
#[cfg(feature = "sts")]
pub mod sts;
pub mod text;
pub mod walltime;
