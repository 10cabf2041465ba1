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

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheduler::Slurm => "slurm",
            Scheduler::Pbs => "pbs",
        })
    }
}

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

/// Longest PBS job id accepted (`<seq>[<idx>].<server fqdn>`); a path component must stay well below 255.
const PBS_ID_MAX: usize = 128;

impl JobId {
    /// A Slurm job id: 1 to 10 decimal digits, a non-zero `u32` (what Slurm issues).
    pub fn slurm(s: &str) -> Result<JobId, JobIdError> {
        let err = |why| JobIdError {
            scheduler: Scheduler::Slurm,
            shown: format!("{s:?}"),
            why,
        };
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("only digits are allowed"));
        }
        match s.parse::<u32>() {
            Ok(0) => Err(err("0 is not a job id")),
            Ok(n) => Ok(JobId(n.to_string())),
            Err(_) => Err(err("it is larger than any Slurm job id")),
        }
    }

    /// A PBS/Torque job id such as `1234.server.example.com` or `1234[5].server`.
    /// Allowed: ASCII letters, digits, `.`, `-`, `_`, and one `[digits]` array index after the
    /// sequence number. It must start with a digit and may not contain `..`.
    pub fn pbs(s: &str) -> Result<JobId, JobIdError> {
        let err = |why| JobIdError {
            scheduler: Scheduler::Pbs,
            shown: format!("{s:?}"),
            why,
        };
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if s.len() > PBS_ID_MAX {
            return Err(err("it is longer than 128 characters"));
        }
        if !s.as_bytes()[0].is_ascii_digit() {
            return Err(err("it must start with the job's sequence number"));
        }
        if s.contains("..") {
            return Err(err("it contains '..'"));
        }
        let ok_plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_');
        let (head, rest) = match s.find('[') {
            None => (s, ""),
            Some(i) => (&s[..i], &s[i..]),
        };
        if !head.bytes().all(ok_plain) {
            return Err(err(
                "only letters, digits, '.', '-', '_' and an array index '[n]' are allowed",
            ));
        }
        if !rest.is_empty() {
            let close = rest.find(']').ok_or_else(|| err("'[' without ']'"))?;
            let index = &rest[1..close];
            let tail = &rest[close + 1..];
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("the array index must be digits"));
            }
            if !tail.bytes().all(ok_plain) || !head.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("the array index must follow the sequence number"));
            }
        }
        Ok(JobId(s.to_string()))
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
    fn slurm_ids_are_digits_only() {
        assert_eq!(JobId::slurm("42").unwrap().as_str(), "42");
        assert_eq!(JobId::slurm("4294967295").unwrap().as_str(), "4294967295");
        for bad in [
            "",
            "0",
            "4294967296",
            "12a",
            "../1",
            "1/2",
            " 1",
            "1\n",
            "-1",
            "+1",
        ] {
            assert!(JobId::slurm(bad).is_err(), "{bad:?} accepted");
        }
        // Leading zeros are normalised so one job has one directory.
        assert_eq!(JobId::slurm("007").unwrap().as_str(), "7");
    }

    #[test]
    fn pbs_ids_accept_server_names_and_array_indices() {
        for ok in [
            "1234",
            "1234.server.example.com",
            "1234[5].server",
            "1234[]",
            "99.pbs-01_x",
        ] {
            let r = JobId::pbs(ok);
            if ok == "1234[]" {
                assert!(r.is_err());
            } else {
                assert!(r.is_ok(), "{ok:?} refused: {r:?}");
            }
        }
        assert_eq!(
            JobId::pbs("1234[5].server").unwrap().dir_name(),
            "1234_5_.server"
        );
    }

    #[test]
    fn pbs_ids_refuse_escapes_and_garbage() {
        let long = "1".repeat(300);
        for bad in [
            "",
            "../x",
            "1/2",
            "1..2",
            "x123",
            "1 2",
            "1\u{7}",
            "1[a]",
            "1[2",
            "1]2",
            "1[2][3]",
            long.as_str(),
        ] {
            assert!(JobId::pbs(bad).is_err(), "{bad:?} accepted");
        }
        let e = JobId::pbs("1\u{1b}[31m").unwrap_err().to_string();
        assert!(
            !e.contains('\u{1b}'),
            "control character reached the message: {e}"
        );
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
