//! Reading a job from the environment Slurm gives a Prolog/Epilog (and the plugin's
//! `job_prolog`): `SLURM_JOB_*` variables set by slurmd, and `SPANK_AWS_ROLE`, which the
//! plugin sets at submit time and which is therefore user-controlled.

use std::time::{Duration, SystemTime};

use nix::unistd::{Gid, Uid, User};

use crate::job::{Job, JobId, JobIdError, RoleRequest, Scheduler};

/// The job-control variable the plugin sets with `spank_job_control_setenv("AWS_ROLE")`.
pub const ROLE_VAR: &str = "SPANK_AWS_ROLE";

/// What Slurm did not give us, or gave us wrong.
#[derive(Debug, thiserror::Error)]
pub enum SlurmEnvError {
    #[error("{0} is not set (is this running as a Slurm Prolog/Epilog?)")]
    Missing(&'static str),
    #[error("{name} is {value:?}, which is not {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error(transparent)]
    JobId(#[from] JobIdError),
    #[error(
        "SLURM_JOB_UID {uid} is user {actual:?} on this node, but SLURM_JOB_USER is {claimed:?}"
    )]
    UserMismatch {
        uid: u32,
        claimed: String,
        actual: String,
    },
    #[error("SLURM_JOB_UID {0} is not a user on this node")]
    NoSuchUser(u32),
    #[error("cannot look up uid {uid}: {errno}")]
    Lookup { uid: u32, errno: nix::Error },
}

/// Values the plugin learned with `slurm_load_job()` and passes on the command line,
/// because the Slurm 22.05 Prolog environment lacks them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra {
    /// Job end time in seconds since the epoch.
    pub end_time: Option<u64>,
    pub array_job_id: Option<u32>,
    pub array_task_id: Option<u32>,
}

/// Only the job id, for the epilog (which must work even when nothing else is usable).
pub fn job_id(env: impl Fn(&str) -> Option<String>) -> Result<JobId, SlurmEnvError> {
    let id = env("SLURM_JOB_ID").ok_or(SlurmEnvError::Missing("SLURM_JOB_ID"))?;
    Ok(JobId::slurm(&id)?)
}

/// Builds the job from Prolog variables (looked up with `env`) plus what the plugin passed.
pub fn job_from_env(
    env: impl Fn(&str) -> Option<String>,
    extra: Extra,
) -> Result<Job, SlurmEnvError> {
    let id = job_id(&env)?;
    let number =
        |name: &'static str, expected: &'static str| -> Result<Option<u64>, SlurmEnvError> {
            match env(name) {
                None => Ok(None),
                Some(v) => v
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| SlurmEnvError::Invalid {
                        name,
                        value: v,
                        expected,
                    }),
            }
        };
    let uid = number("SLURM_JOB_UID", "a uid")?.ok_or(SlurmEnvError::Missing("SLURM_JOB_UID"))?;
    let uid = u32::try_from(uid).map_err(|_| SlurmEnvError::Invalid {
        name: "SLURM_JOB_UID",
        value: uid.to_string(),
        expected: "a uid",
    })?;
    let user = User::from_uid(Uid::from_raw(uid))
        .map_err(|errno| SlurmEnvError::Lookup { uid, errno })?
        .ok_or(SlurmEnvError::NoSuchUser(uid))?;
    if let Some(claimed) = env("SLURM_JOB_USER") {
        if claimed != user.name {
            return Err(SlurmEnvError::UserMismatch {
                uid,
                claimed,
                actual: user.name,
            });
        }
    }
    let gid = match number("SLURM_JOB_GID", "a gid")? {
        Some(g) => Gid::from_raw(u32::try_from(g).map_err(|_| SlurmEnvError::Invalid {
            name: "SLURM_JOB_GID",
            value: g.to_string(),
            expected: "a gid",
        })?),
        None => user.gid,
    };
    let restart_count = number("SLURM_JOB_RESTART_COUNT", "a count")?.unwrap_or(0);
    // Slurm >= 23.02 gives the end time itself; on 22.05 only the plugin can.
    let end = match number("SLURM_JOB_END_TIME", "seconds since the epoch")? {
        Some(t) => Some(t),
        None => extra.end_time,
    };
    let non_empty = |name| env(name).filter(|v| !v.is_empty());
    Ok(Job {
        scheduler: Scheduler::Slurm,
        id,
        array_job_id: extra.array_job_id.map(|a| a.to_string()),
        array_task_id: extra.array_task_id,
        user: user.name,
        uid: user.uid,
        gid,
        partition: non_empty("SLURM_JOB_PARTITION"),
        account: non_empty("SLURM_JOB_ACCOUNT"),
        cluster: non_empty("SLURM_CLUSTER_NAME"),
        restart_count: u32::try_from(restart_count).unwrap_or(u32::MAX),
        end_time: end.map(|t| SystemTime::UNIX_EPOCH + Duration::from_secs(t)),
        requested: env(ROLE_VAR).and_then(|v| RoleRequest::from_value(&v)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn reads_a_prolog_environment() {
        let e = env(&[
            ("SLURM_JOB_ID", "42"),
            ("SLURM_JOB_UID", "0"),
            ("SLURM_JOB_USER", "root"),
            ("SLURM_JOB_GID", "0"),
            ("SLURM_JOB_PARTITION", "gpu"),
            ("SLURM_CLUSTER_NAME", "lab"),
            ("SLURM_JOB_RESTART_COUNT", "2"),
            ("SLURM_JOB_END_TIME", "1795296949"),
            ("SPANK_AWS_ROLE", "ml-training"),
        ]);
        let j = job_from_env(e, Extra::default()).unwrap();
        assert_eq!(j.id.as_str(), "42");
        assert_eq!(j.user, "root");
        assert_eq!(j.partition.as_deref(), Some("gpu"));
        assert_eq!(j.account, None);
        assert_eq!(j.restart_count, 2);
        assert_eq!(
            j.end_time,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_296_949))
        );
        assert_eq!(j.requested, Some(RoleRequest::Named("ml-training".into())));
    }

    #[test]
    fn plugin_values_fill_what_22_05_lacks_but_never_override_slurm() {
        let base = [("SLURM_JOB_ID", "8"), ("SLURM_JOB_UID", "0")];
        let extra = Extra {
            end_time: Some(100),
            array_job_id: Some(5),
            array_task_id: Some(0),
        };
        let j = job_from_env(env(&base), extra).unwrap();
        assert_eq!(
            j.end_time,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(100))
        );
        assert_eq!(j.array_task_id, Some(0));
        assert_eq!(j.array_job_id.as_deref(), Some("5"));
        let mut with_end = base.to_vec();
        with_end.push(("SLURM_JOB_END_TIME", "200"));
        let j = job_from_env(env(&with_end), extra).unwrap();
        assert_eq!(
            j.end_time,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(200))
        );
    }

    #[test]
    fn bad_or_missing_values_name_the_variable() {
        let e = job_from_env(env(&[("SLURM_JOB_UID", "0")]), Extra::default()).unwrap_err();
        assert!(e.to_string().contains("SLURM_JOB_ID is not set"), "{e}");
        let e = job_from_env(
            env(&[("SLURM_JOB_ID", "../1"), ("SLURM_JOB_UID", "0")]),
            Extra::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("invalid slurm job id \"../1\""),
            "{e}"
        );
        let e = job_from_env(
            env(&[("SLURM_JOB_ID", "1"), ("SLURM_JOB_UID", "x")]),
            Extra::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("SLURM_JOB_UID is \"x\""), "{e}");
        let e = job_from_env(
            env(&[
                ("SLURM_JOB_ID", "1"),
                ("SLURM_JOB_UID", "0"),
                ("SLURM_JOB_USER", "mallory"),
            ]),
            Extra::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"mallory\""), "{e}");
        let e = job_from_env(
            env(&[("SLURM_JOB_ID", "1"), ("SLURM_JOB_UID", "3999999999")]),
            Extra::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a user"), "{e}");
    }
}
