//! Renewing a job's credentials (feature `sts`): the same request the prolog made, after
//! re-authorizing the job against the current map; [`super::plan`] says when.

use super::*;
use crate::creds::rfc3339;
use crate::job::Job;
use crate::policy::{self, Decision, Requester};
use crate::provision;
use crate::record::job_of;
use crate::store::{JobDir, StoreError, STATE};
use crate::sts::{self, StsError};

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    /// New credentials are in place.
    Renewed {
        expiration: SystemTime,
        duration: Duration,
    },
    /// The epilog removed the job meanwhile; nothing was written.
    Gone,
    /// The prolog of a requeued job wrote newer credentials meanwhile; nothing was written.
    Superseded,
}

/// Why a job's credentials were not refreshed. No message contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("the job's state record is unusable: {0}")]
    Record(String),
    /// The map no longer gives this job its role: refreshing stops.
    #[error("no longer authorized: {0}")]
    Revoked(String),
    /// So close to the job's end that any new session would outlive it: refreshing stops.
    #[error("the job ends in less than the shortest STS session; its credentials stay until they expire")]
    TooLate,
    #[error("cannot look up the groups of user {user}: {why}")]
    Lookup { user: String, why: String },
    #[error(transparent)]
    Sts(#[from] StsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RefreshError {
    /// Whether trying again later can help.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            RefreshError::Record(_) | RefreshError::Revoked(_) | RefreshError::TooLate
        )
    }
}

/// Replaces the credentials of the job `state` describes (read from `dir`) with new
/// ones, unless the job was removed or re-provisioned while STS answered.
/// `slurm_doubt`: why Slurm jobs' accounts cannot be trusted now
/// ([`crate::accounts::slurm_doubt`], asked once per pass).
pub async fn refresh(
    map: &RoleMap,
    dir: &JobDir,
    state: &JobState,
    now: SystemTime,
    slurm_doubt: Option<&str>,
) -> Result<Refreshed, RefreshError> {
    let job = job_of(state).map_err(RefreshError::Record)?;
    let t = Timing::of(map);
    let times = Times::of(state).map_err(RefreshError::Record)?;
    if times
        .limit(&t)
        .is_some_and(|l| l.duration_since(now).unwrap_or_default() < t.floor)
    {
        return Err(RefreshError::TooLate);
    }
    let role = authorized(map, &job, state, slurm_doubt)?;
    let req = provision::request(map, &job, role, now);
    let creds = sts::assume_role(&map.sts, &req).await?;
    let Some(_lock) = dir.lock()? else {
        return Ok(Refreshed::Gone);
    };
    let current = match dir.read_record::<JobState>(STATE) {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(Refreshed::Gone),
        Err(e) => return Err(RefreshError::Record(e.to_string())),
    };
    if current.issued != state.issued || current.session_name != state.session_name {
        return Ok(Refreshed::Superseded);
    }
    let mut next = provision::state_of(map, &job, &state.role, role, &req, &creds, now);
    next.refreshes = current.refreshes.saturating_add(1);
    provision::write_credentials(map, dir, &creds, &next)?;
    Ok(Refreshed::Renewed {
        expiration: creds.expiration,
        duration: req.duration,
    })
}

/// The job's role, if the current map still gives it to the job, under the same ARN.
fn authorized<'m>(
    map: &'m RoleMap,
    job: &Job,
    state: &JobState,
    slurm_doubt: Option<&str>,
) -> Result<&'m crate::map::Role, RefreshError> {
    let doubt = crate::accounts::doubt_for(job, || slurm_doubt.map(str::to_string));
    let groups = policy::groups_for(map, &job.user).map_err(|e| RefreshError::Lookup {
        user: job.user.clone(),
        why: e.to_string(),
    })?;
    let who = Requester {
        user: &job.user,
        groups: &groups,
        account: job.account.as_deref(),
        account_doubt: doubt.as_deref(),
    };
    match policy::resolve(map, job, &who) {
        Decision::Role { role, .. } if role == state.role => {}
        Decision::Role { role, .. } => {
            return Err(RefreshError::Revoked(format!(
                "the role map now gives this job role {role} instead of {}",
                state.role
            )))
        }
        Decision::NoRole { why } | Decision::Denied { why } => {
            return Err(RefreshError::Revoked(why))
        }
    }
    match map.roles.get(&state.role) {
        Some(r) if r.arn == state.role_arn => Ok(r),
        Some(_) => Err(RefreshError::Revoked(format!(
            "role {} now names another IAM role than {}",
            state.role, state.role_arn
        ))),
        None => Err(RefreshError::Revoked(format!(
            "role {} is no longer in the map",
            state.role
        ))),
    }
}

/// Notes a failed refresh in the job's state record (for `--status`), unless the job
/// was removed or re-provisioned meanwhile. The credentials themselves stay as they are.
pub fn record_failure(
    dir: &JobDir,
    state: &JobState,
    error: &str,
    now: SystemTime,
) -> Result<(), StoreError> {
    let Some(_lock) = dir.lock()? else {
        return Ok(());
    };
    let Ok(Some(mut current)) = dir.read_record::<JobState>(STATE) else {
        return Ok(());
    };
    if current.issued != state.issued {
        return Ok(());
    }
    current.last_error = Some(error.to_string());
    current.last_error_time = Some(rfc3339(now));
    crate::provision::write_state(dir, &current)
}
