//! What the node knows about one job, gathered from the scheduler and validated.
//!
//! Everything here may come from user-controlled input (`SPANK_*` variables, PBS
//! arguments), so job ids are validated before they are ever used in a path.

use std::fmt;
use std::time::SystemTime;

use nix::unistd::{Gid, Uid};

/// The batch system a job comes from; it decides job id rules and session name defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    Slurm,
    Pbs,
}

impl Scheduler {
    /// Every scheduler aws-role knows; what each one does is in [`crate::scheduler`].
    pub const ALL: [Scheduler; 2] = [Scheduler::Slurm, Scheduler::Pbs];

    /// The name used in state records, logs and `--scheduler`.
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Slurm => "slurm",
            Scheduler::Pbs => "pbs",
        }
    }

    /// The scheduler called `name` ([`Scheduler::name`]), if any.
    pub fn from_name(name: &str) -> Option<Scheduler> {
        Scheduler::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl std::str::FromStr for Scheduler {
    type Err = String;

    /// For `--scheduler`: a name of [`Scheduler::ALL`].
    fn from_str(name: &str) -> Result<Scheduler, String> {
        Scheduler::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = Scheduler::ALL.iter().map(|s| s.name()).collect();
            format!(
                "unknown scheduler {:?} (one of: {})",
                crate::text::one_line(name, 40),
                names.join(", ")
            )
        })
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The latest `end_time` a state record may hold: 9999-12-31T23:59:59Z, the last second
/// the record's RFC 3339 times can write. A prolog never writes a later one (a job's end
/// is at most 200 years away); a larger number is a damaged record, and `SystemTime`
/// cannot hold every `u64` of seconds, nor a margin and grace added to one near its end.
pub const MAX_END_TIME: u64 = 253_402_300_799;

/// A job id that is safe to use as a single path component.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(String);

/// Why a job id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {scheduler} job id {shown}: {why}")]
pub struct JobIdError {
    pub scheduler: Scheduler,
    /// The offending value, escaped so that control characters cannot reach a log verbatim.
    pub shown: String,
    pub why: &'static str,
}

impl JobId {
    /// A job id that a scheduler module's `parse_job_id` has checked (each scheduler has its
    /// own rules: [`crate::scheduler`]). Crate-only, so no id reaches a path unchecked.
    pub(crate) fn checked(id: String) -> JobId {
        JobId(id)
    }

    /// The id as the scheduler prints it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the job's directory: the id with `[`/`]` mapped to `_`, so it is one plain
    /// path component of `[A-Za-z0-9._-]` that cannot be `.` or `..`.
    pub fn dir_name(&self) -> String {
        self.0.replace(['[', ']'], "_")
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The role a job asked for with `--aws-role`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRequest {
    /// `--aws-role=none`: opt out of any partition default.
    None,
    /// `--aws-role=NAME`: a role key of the site map (re-authorized on the node).
    Named(String),
}

impl RoleRequest {
    /// The `--aws-role` value this request came from.
    pub fn as_value(&self) -> &str {
        match self {
            RoleRequest::None => "none",
            RoleRequest::Named(name) => name,
        }
    }

    /// Interprets a raw `--aws-role` value; empty means "not requested".
    pub fn from_value(v: &str) -> Option<RoleRequest> {
        match v {
            "" => None,
            "none" => Some(RoleRequest::None),
            name => Some(RoleRequest::Named(name.to_string())),
        }
    }
}

/// One job on this node, as far as aws-role needs to know it.
#[derive(Debug, Clone)]
pub struct Job {
    pub scheduler: Scheduler,
    pub id: JobId,
    /// Array master id, when the job is an array task.
    pub array_job_id: Option<String>,
    /// Array task index, when the job is an array task.
    pub array_task_id: Option<u32>,
    pub user: String,
    pub uid: Uid,
    pub gid: Gid,
    /// Slurm partition or PBS queue.
    pub partition: Option<String>,
    pub account: Option<String>,
    pub cluster: Option<String>,
    pub restart_count: u32,
    /// When the job must end; `None` when unknown or unlimited.
    pub end_time: Option<SystemTime>,
    pub requested: Option<RoleRequest>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_names_round_trip() {
        for s in Scheduler::ALL {
            assert_eq!(Scheduler::from_name(s.name()), Some(s));
            assert_eq!(s.to_string(), s.name());
        }
        assert_eq!(Scheduler::from_name("torque"), None);
        assert_eq!(Scheduler::from_name("Slurm"), None);
        let e = "lsf\n".parse::<Scheduler>().unwrap_err();
        assert!(e.contains("slurm, pbs") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn role_request_values() {
        assert_eq!(RoleRequest::from_value(""), None);
        assert_eq!(RoleRequest::from_value("none"), Some(RoleRequest::None));
        for v in ["none", "ml-training"] {
            assert_eq!(RoleRequest::from_value(v).unwrap().as_value(), v);
        }
        assert_eq!(
            RoleRequest::from_value("ml-training"),
            Some(RoleRequest::Named("ml-training".into()))
        );
    }
}
