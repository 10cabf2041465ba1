//! The batch schedulers aws-role works with, one module each, behind one seam.
//!
//! A scheduler module owns everything that differs between batch systems: how its job ids
//! look ([`Driver::parse_job_id`]), how a job is read from what its prolog and epilog are
//! given ([`Driver::prolog_job`]: Slurm's environment, PBS's arguments;
//! [`Driver::epilog_job_id`]), what else it can be asked ([`Driver::complete`]), which
//! default role a queue has ([`Driver::default_role`]), whether the node can ask it if a
//! job still runs ([`Driver::liveness`]) and whether it vouches for a job's account
//! ([`Driver::fixed_account_doubt`]). The rest of the crate asks [`of`] for a job's
//! scheduler instead of matching on [`Scheduler`]; only the map matches on it, to pick
//! the `[defaults]` key of a scheduler's session name.
//!
//! Adding a scheduler touches: [`Scheduler`] (a variant and its name, in `job.rs`), this
//! file ([`of`], [`detect`]), its own module here with its tests, its time-limit form in
//! `walltime.rs`, and the map (`map/`) for its `[defaults]` session name and its section
//! of queue defaults. The binaries and the refresher only talk to [`Driver`].

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

    /// The job a prolog binary is run for, from what it was given ([`PrologInput`]): its
    /// id, known first so that a failure can be recorded for it, and how to read the rest
    /// (called once, when needed). `Err`: not even an id, nothing can be done (logged).
    fn prolog_job<'a>(&self, input: PrologInput<'a>) -> Result<PrologJob<'a>, String>;

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

/// What a prolog binary was given.
pub struct PrologInput<'a> {
    /// Its positional arguments (a PBS prologue's; Slurm passes none).
    pub args: &'a [String],
    /// `--queue`: the queue when the arguments carry none (OpenPBS).
    pub queue: Option<&'a str>,
    /// Its environment (a Slurm Prolog's `SLURM_JOB_*`).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// What the SPANK plugin learned from Slurm and passed on the command line.
    pub plugin: slurm::Extra,
    pub now: std::time::SystemTime,
}

/// The job of a prolog ([`Driver::prolog_job`]).
pub struct PrologJob<'a> {
    pub id: JobId,
    /// The job, or why it cannot be read (recorded as the job's failure).
    pub job: Box<dyn FnOnce() -> Result<Job, String> + 'a>,
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

    /// Each driver reads its own prolog's input: Slurm's environment, PBS's arguments; the
    /// id comes first, so that an unreadable job is still recorded as a failure.
    #[test]
    fn a_prolog_job_is_read_from_its_schedulers_input() {
        let input =
            |args: &'static [String], env: &'static dyn Fn(&str) -> Option<String>| PrologInput {
                args,
                queue: None,
                env,
                plugin: slurm::Extra::default(),
                now: std::time::SystemTime::UNIX_EPOCH,
            };
        static NONE: [String; 0] = [];
        let e = of(Scheduler::Slurm).prolog_job(input(&NONE, &|_| None));
        assert!(e.is_err_and(|e| e.contains("SLURM_JOB_ID")));
        fn only_id(n: &str) -> Option<String> {
            (n == "SLURM_JOB_ID").then(|| "42".to_string())
        }
        let p = of(Scheduler::Slurm)
            .prolog_job(input(&NONE, &only_id))
            .unwrap();
        assert_eq!(p.id.as_str(), "42");
        let why = (p.job)().unwrap_err();
        assert!(
            why.contains("Slurm environment is unusable") && why.contains("SLURM_JOB_UID"),
            "{why}"
        );
        // PBS ignores the environment and refuses what PBS never passes.
        assert!(of(Scheduler::Pbs)
            .prolog_job(input(&NONE, &only_id))
            .is_err());
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
