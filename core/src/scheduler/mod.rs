//! The batch schedulers aws-role works with, one module each, behind one seam.
//!
//! A scheduler module owns everything that differs between batch systems: how its job ids
//! look ([`Driver::parse_job_id`]), how a job is read from what its prolog is given
//! ([`slurm::job_from_env`], [`pbs::prologue`]), which default role a queue has
//! ([`Driver::default_role`]), whether the node can ask it if a job still runs
//! ([`Driver::liveness`]) and whether it vouches for a job's account
//! ([`Driver::fixed_account_doubt`]). The rest of the crate asks [`of`] for a job's
//! scheduler and never matches on [`Scheduler`] itself.
//!
//! Adding a scheduler touches: [`Scheduler`] (a variant and its name, in `job.rs`), this
//! file ([`of`], [`detect`]), its own module here, and the map (`map.rs`) for its
//! `[defaults]` session name and its section of queue defaults.

pub mod pbs;
pub mod slurm;

use crate::job::{Job, JobId, JobIdError, Scheduler};
use crate::map::RoleMap;

/// What the rest of aws-role needs to ask a scheduler.
pub trait Driver: Sync {
    /// Which scheduler this is.
    fn scheduler(&self) -> Scheduler;

    /// A job id as this scheduler issues it, checked so that it is one safe path component.
    fn parse_job_id(&self, raw: &str) -> Result<JobId, JobIdError>;

    /// The job an epilog cleans up, from what it was given: the positional arguments of a
    /// PBS epilogue, or the environment (`env`) of a Slurm Epilog. Only the id is read, so
    /// that a job is cleaned up even when nothing else about it is usable.
    fn epilog_job_id(
        &self,
        args: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<JobId, String>;

    /// Adds to a job read from its prolog's input what the scheduler can be asked for when
    /// the map says so (Slurm: the end time from scontrol). Never fails: what cannot be
    /// learned stays unknown, and is logged.
    fn complete(&self, map: &RoleMap, job: &mut Job);

    /// The default role of a job in `queue` (a Slurm partition, a PBS queue), if the map
    /// gives one, with the reason worded for the user.
    fn default_role<'m>(&self, map: &'m RoleMap, queue: Option<&str>) -> Option<(&'m str, String)>;

    /// Whether job `id` still runs, for a job the node holds without a known end.
    /// `None`: this scheduler is not asked (its epilogue always cleans up).
    fn liveness(&self, map: &RoleMap, id: &JobId) -> Option<Liveness>;

    /// Why this scheduler's accounts are never to be trusted, or `None` when the node must
    /// find out ([`crate::accounts`]).
    fn fixed_account_doubt(&self) -> Option<&'static str>;
}

/// Whether the scheduler still runs a job, as far as it tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// The scheduler knows the job and it has not ended (running, suspended, completing, …).
    Alive,
    /// The scheduler no longer knows the job, or says it ended: why.
    Gone(String),
    /// No answer (the controller down, its command missing): why. Nothing is concluded.
    Unknown(String),
}

/// The driver of `scheduler`.
pub fn of(scheduler: Scheduler) -> &'static dyn Driver {
    match scheduler {
        Scheduler::Slurm => &slurm::Slurm,
        Scheduler::Pbs => &pbs::Pbs,
    }
}

/// A job id of `scheduler`, checked by its rules ([`Driver::parse_job_id`]).
pub fn parse_job_id(scheduler: Scheduler, raw: &str) -> Result<JobId, JobIdError> {
    of(scheduler).parse_job_id(raw)
}

/// The environment variable whose presence means "this is a Slurm Prolog/Epilog".
pub const SLURM_MARKER: &str = "SLURM_JOB_ID";

/// Which scheduler called a prolog or epilog binary: `explicit` (`--scheduler`) wins;
/// otherwise PBS when there are positional arguments (Slurm passes none) and
/// `SLURM_JOB_ID` is not set, else Slurm.
pub fn detect(explicit: Option<Scheduler>, positional: usize, slurm_job_id_set: bool) -> Scheduler {
    match explicit {
        Some(s) => s,
        None if positional > 0 && !slurm_job_id_set => Scheduler::Pbs,
        None => Scheduler::Slurm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        assert_eq!(detect(None, 3, false), Scheduler::Pbs);
        assert_eq!(detect(None, 0, false), Scheduler::Slurm);
        assert_eq!(detect(None, 3, true), Scheduler::Slurm);
        assert_eq!(detect(Some(Scheduler::Pbs), 0, true), Scheduler::Pbs);
        assert_eq!(detect(Some(Scheduler::Slurm), 3, false), Scheduler::Slurm);
    }

    #[test]
    fn every_scheduler_has_its_own_driver_and_id_rules() {
        for s in Scheduler::ALL {
            assert_eq!(of(s).scheduler(), s);
        }
        // The same text is an id for one and not the other: the rules are the driver's.
        assert!(parse_job_id(Scheduler::Slurm, "12.server").is_err());
        assert!(parse_job_id(Scheduler::Pbs, "12.server").is_ok());
        assert_eq!(
            parse_job_id(Scheduler::Slurm, "007").map(|i| i.to_string()),
            Ok("7".to_string())
        );
        assert_eq!(
            parse_job_id(Scheduler::Pbs, "007").map(|i| i.to_string()),
            Ok("007".to_string())
        );
    }
}
