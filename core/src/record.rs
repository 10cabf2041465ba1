//! The records a job's directory holds besides its credentials: `state.json` (root's: what
//! the refresher, the status listing and the plugin need to know of a provisioned job) and
//! `failure.json` (the job user's: why the job got no role). Neither ever holds a secret.
//! [`crate::store`] writes and reads them; this module says what they contain.

use std::time::{Duration, SystemTime};

use nix::unistd::{Gid, Uid};

use crate::job::{Job, JobId, RoleRequest, Scheduler, MAX_END_TIME};

/// The root-only record of a provisioned job (`state.json`): what the refresher, the
/// status listing and the plugin need, and never a secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobState {
    pub job_id: String,
    pub scheduler: String,
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub role: String,
    pub role_arn: String,
    pub session_name: String,
    /// RFC 3339.
    pub expiration: String,
    /// Seconds since the epoch, when the job has a known end.
    pub end_time: Option<u64>,
    /// RFC 3339 time of the last successful AssumeRole.
    pub issued: String,
    pub region: String,
    // What the refresher needs to ask again exactly as the prolog did (and to re-authorize
    // the job against the current map).
    pub partition: Option<String>,
    pub account: Option<String>,
    pub cluster: Option<String>,
    pub array_job_id: Option<String>,
    pub array_task_id: Option<u32>,
    /// The raw `--aws-role` value (`none`, a role name), when the job asked.
    pub requested: Option<String>,
    pub restart_count: u32,
    /// How many times the refresher replaced the credentials.
    #[serde(default)]
    pub refreshes: u32,
    /// The last refresh failure (no secret in it) and when it happened (RFC 3339); cleared
    /// by the next success.
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub last_error_time: Option<String>,
}

/// The record of a job whose role could not be provided (`failure.json`, the job user's).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRecord {
    pub job_id: String,
    /// Worded for the job's user; contains no secret.
    pub reason: String,
    /// RFC 3339.
    pub time: String,
}

/// A state record's `end_time` as a time; an error past [`MAX_END_TIME`].
pub(crate) fn end_time(state: &JobState) -> Result<Option<SystemTime>, String> {
    match state.end_time {
        Some(s) if s > MAX_END_TIME => Err(format!(
            "end_time {s} is after the year 9999 (at most {MAX_END_TIME})"
        )),
        end => Ok(end.map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))),
    }
}

/// The scheduler and the job id a state record names, each checked by its rules.
pub fn job_id_of(state: &JobState) -> Result<(Scheduler, JobId), String> {
    let scheduler = Scheduler::from_name(&state.scheduler)
        .ok_or_else(|| format!("unknown scheduler {:?}", state.scheduler))?;
    let id = crate::scheduler::parse_job_id(scheduler, &state.job_id).map_err(|e| e.to_string())?;
    Ok((scheduler, id))
}

/// The job a state record describes, as the prolog saw it.
pub fn job_of(state: &JobState) -> Result<Job, String> {
    let (scheduler, id) = job_id_of(state)?;
    let end_time = end_time(state)?;
    Ok(Job {
        scheduler,
        id,
        array_job_id: state.array_job_id.clone(),
        array_task_id: state.array_task_id,
        user: state.user.clone(),
        uid: Uid::from_raw(state.uid),
        gid: Gid::from_raw(state.gid),
        partition: state.partition.clone(),
        account: state.account.clone(),
        cluster: state.cluster.clone(),
        restart_count: state.restart_count,
        end_time,
        requested: state.requested.as_deref().and_then(RoleRequest::from_value),
    })
}
