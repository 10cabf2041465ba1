//! The prolog's work for one job, end to end.
//!
//! Provisioning never fails the node: every job-level problem (not allowed, STS down,
//! throttled past the deadline, bad map) becomes a failure record that the plugin turns
//! into a failed job with the reason in its output. Only a broken node (the store itself
//! unusable) is reported as an error, and even then the binaries exit 0.

use std::time::{Duration, SystemTime};

use crate::accounts;
use crate::creds::{rfc3339, Credentials};
use crate::job::{Job, JobId};
use crate::map::{Role, RoleMap};
use crate::policy::{self, Decision, Requester};
use crate::record::{FailureRecord, JobState};
use crate::session::is_tag_char;
use crate::store::{JobDir, Reader, Store, StoreError, FAILURE, STATE};
use crate::sts::{self, AssumeRequest};
use crate::walltime;
use nix::unistd::{Gid, Uid};

/// What the prolog did for a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Credentials are in place.
    Provisioned {
        role: String,
        session_name: String,
        duration: Duration,
        expiration: SystemTime,
    },
    /// The job gets no AWS role; nothing is written (earlier files are removed).
    NoRole { why: String },
    /// The job asked for a role it cannot have; a failure record says why.
    Failed { reason: String },
}

/// Builds the AssumeRole request for `job` and `role` (no network).
pub fn request(map: &RoleMap, job: &Job, role: &Role, now: SystemTime) -> AssumeRequest {
    let (_, template) = map.defaults.session_name_of(job.scheduler);
    AssumeRequest {
        role_arn: role.arn.clone(),
        session_name: template.render(job),
        duration: walltime::session_duration(
            job.end_time,
            now,
            map.defaults.margin,
            map.sts.min_session,
            role.cap(&map.defaults),
        ),
        source_identity: role
            .source_identity
            .as_ref()
            .map(|t| t.render_source_identity(job)),
        tags: role
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.render_value(job, is_tag_char)))
            .collect(),
        policy: role.session_policy.clone(),
        external_id: role.external_id.clone(),
        policy_arns: role.policy_arns.clone(),
        transitive_tag_keys: role.transitive_tag_keys.clone(),
    }
}

/// The prolog binary's work for job `id` whatever it was given: a map that may not have
/// loaded (the failure record then says so, and the administrators find the details in
/// the log), and the job as the scheduler described it, which may be unusable (`job`:
/// read only once, and only when needed). Asks the scheduler what it can still tell
/// ([`crate::scheduler::Driver::complete`]), then [`prolog`]. `Err` only when the store
/// is unusable.
pub async fn run(
    loaded: Result<&RoleMap, &crate::map::MapError>,
    store: &Store,
    id: &JobId,
    job: impl FnOnce() -> Result<Job, String>,
    now: SystemTime,
) -> Result<Outcome, StoreError> {
    let map = match loaded {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("{e}");
            let owner = job().ok().map(|j| owner(&j));
            return fail(
                store,
                id,
                owner,
                format!("the site's role map is invalid, so no role can be given (the administrators have the details in the node's log); {}", e.file.display()),
            );
        }
    };
    let mut job = match job() {
        Ok(j) => j,
        Err(why) => return fail(store, id, None, why),
    };
    crate::scheduler::of(job.scheduler).complete(map, &mut job);
    prolog(map, store, &job, now).await
}

/// Runs the prolog for `job`: decide, assume, store. `Err` only when the store is unusable.
pub async fn prolog(
    map: &RoleMap,
    store: &Store,
    job: &Job,
    now: SystemTime,
) -> Result<Outcome, StoreError> {
    let groups = match policy::groups_for(map, &job.user) {
        Ok(g) => g,
        Err(e) => {
            return fail(
                store,
                &job.id,
                Some(owner(job)),
                format!("cannot look up the groups of user {}: {e}", job.user),
            );
        }
    };
    // Asked only when some role depends on accounts (cached on the node).
    let doubt = accounts::doubt_for(job, || {
        accounts::slurm_doubt(map, store, now, accounts::FRESH_FOR)
    });
    let who = Requester {
        user: &job.user,
        groups: &groups,
        account: job.account.as_deref(),
        account_doubt: doubt.as_deref(),
    };
    let role_name = match policy::resolve(map, job, &who) {
        Decision::NoRole { why } => {
            store.remove_job(&job.id)?;
            return Ok(Outcome::NoRole { why });
        }
        Decision::Denied { why } => return fail(store, &job.id, Some(owner(job)), why),
        Decision::Role { role, why } => {
            tracing::info!(role = %role, "role chosen: {why}");
            role
        }
    };
    let Some(role) = map.roles.get(&role_name) else {
        return fail(
            store,
            &job.id,
            Some(owner(job)),
            format!("role {role_name} vanished from the map"),
        );
    };
    let req = request(map, job, role, now);
    tracing::info!(
        role = %role_name,
        session = %req.session_name,
        duration_s = req.duration.as_secs(),
        "assuming role"
    );
    let creds = match sts::assume_role(&map.sts, &req).await {
        Ok(c) => c,
        Err(e) => {
            return fail(
                store,
                &job.id,
                Some(owner(job)),
                format!("could not assume role {role_name}: {e}"),
            )
        }
    };
    let vanished = || StoreError::Unsafe {
        path: store.job_path(&job.id),
        why: "the job directory vanished while it was created".into(),
    };
    let dir = store.open_job(&job.id, true)?.ok_or_else(vanished)?;
    let _lock = dir.lock()?.ok_or_else(vanished)?;
    let state = state_of(map, job, &role_name, role, &req, &creds, now);
    write_credentials(map, &dir, &creds, &state)?;
    dir.remove(FAILURE)?;
    Ok(Outcome::Provisioned {
        role: role_name,
        session_name: req.session_name,
        duration: req.duration,
        expiration: creds.expiration,
    })
}

/// The state record of freshly assumed credentials (no refresh yet).
pub fn state_of(
    map: &RoleMap,
    job: &Job,
    role_name: &str,
    role: &Role,
    req: &AssumeRequest,
    creds: &Credentials,
    now: SystemTime,
) -> JobState {
    JobState {
        job_id: job.id.to_string(),
        scheduler: job.scheduler.to_string(),
        user: job.user.clone(),
        uid: job.uid.as_raw(),
        gid: job.gid.as_raw(),
        role: role_name.to_string(),
        role_arn: role.arn.clone(),
        session_name: req.session_name.clone(),
        expiration: rfc3339(creds.expiration),
        end_time: job
            .end_time
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
        issued: rfc3339(now),
        region: map.sts.region.clone(),
        partition: job.partition.clone(),
        account: job.account.clone(),
        cluster: job.cluster.clone(),
        array_job_id: job.array_job_id.clone(),
        array_task_id: job.array_task_id,
        requested: job.requested.as_ref().map(|r| r.as_value().to_string()),
        restart_count: job.restart_count,
        refreshes: 0,
        last_error: None,
        last_error_time: None,
    }
}

/// Writes every delivery of the job's credentials ([`crate::delivery`], the job user's,
/// 0600) and its state record (root 0600, readable by the job's user).
/// Each file is replaced atomically; the state record goes last, so it never describes
/// credentials that are not there yet. The caller holds the directory's lock.
pub fn write_credentials(
    map: &RoleMap,
    dir: &JobDir,
    creds: &Credentials,
    state: &JobState,
) -> Result<(), StoreError> {
    let user = Reader {
        uid: Uid::from_raw(state.uid),
        gid: Gid::from_raw(state.gid),
    };
    crate::delivery::write(map, dir, creds, user)?;
    write_state(dir, state)
}

/// The job's state record: root's, readable also by the job's user (it holds no secret,
/// and the TaskProlog reads the job's role and session names from it).
pub fn write_state(dir: &JobDir, state: &JobState) -> Result<(), StoreError> {
    let user = Reader {
        uid: Uid::from_raw(state.uid),
        gid: Gid::from_raw(state.gid),
    };
    dir.write_record_as(STATE, state, user)
}

/// The longest failure reason kept (characters).
pub const REASON_MAX: usize = 1000;

/// The job's user, who may read the job's credential files and failure record.
pub fn owner(job: &Job) -> Reader {
    Reader {
        uid: job.uid,
        gid: job.gid,
    }
}

/// Records why the job gets no credentials, removing any it had (a requeued job).
///
/// The failure record belongs to the job's user (0600), so that user-side tools (a
/// TaskProlog, a PBS login snippet) can show the reason; what it says only ever affects
/// that user's own job. `owner` is `None` when the job's user is not known (then root).
pub fn fail(
    store: &Store,
    id: &JobId,
    owner: Option<Reader>,
    reason: String,
) -> Result<Outcome, StoreError> {
    // The reason may quote STS, a user's value or a file: one line, escaped and cut, in
    // the record and the log alike (the record is shown in job output and MOM logs).
    let reason = crate::text::one_line(&reason, REASON_MAX);
    tracing::warn!("job will fail: {reason}");
    let Some(dir) = store.open_job(id, true)? else {
        return Ok(Outcome::Failed { reason });
    };
    let Some(_lock) = dir.lock()? else {
        return Ok(Outcome::Failed { reason });
    };
    for name in crate::delivery::files().chain([STATE]) {
        dir.remove(name)?;
    }
    let record = FailureRecord {
        job_id: id.to_string(),
        reason: reason.clone(),
        time: rfc3339(SystemTime::now()),
    };
    match owner {
        Some(o) => dir.write_record_as(FAILURE, &record, o)?,
        None => dir.write_record(FAILURE, &record)?,
    }
    Ok(Outcome::Failed { reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::slurm::parse_job_id as slurm_id;
    use crate::testing::job;
    use std::path::Path;

    const MAP: &str = r#"
[sts]
region = "us-east-1"
[roles.short]
arn = "arn:aws:iam::123456789012:role/short"
allow_users = ["alice"]
[roles.long]
arn = "arn:aws:iam::123456789012:role/long"
allow_users = ["alice"]
max_session = "12h"
source_identity = "{user}"
tags = { "slurm:job" = "{job_id}", "slurm:partition" = "{partition}" }
"#;

    /// The prolog binary's paths that need no STS: a map that does not load, a job the
    /// scheduler described badly, a job without a role. Each leaves what the job needs to
    /// fail with a reason, or nothing.
    #[test]
    fn the_prolog_records_why_when_the_map_or_the_job_is_unusable() {
        use crate::testing::{me, runtime, temp_store};
        let rt = runtime();
        let (_t, store) = temp_store();
        let map = RoleMap::parse(MAP, Path::new("/etc/aws-role/role-map.toml")).unwrap();
        let broken = RoleMap::parse(
            "[sts]\nregion = 1\n",
            Path::new("/etc/aws-role/role-map.toml"),
        );
        let mut j = job("5");
        (j.uid, j.gid) = (me().uid, me().gid);
        let read_failure = |id: &JobId| {
            let dir = store.open_job(id, false).unwrap().unwrap();
            dir.read_record::<FailureRecord>(FAILURE).unwrap().unwrap()
        };

        // A broken map: the job fails, saying so without the details.
        let out = rt
            .block_on(run(
                broken.as_ref().map(|_| &map),
                &store,
                &j.id,
                || Ok(j.clone()),
                SystemTime::now(),
            ))
            .unwrap();
        assert!(matches!(out, Outcome::Failed { .. }), "{out:?}");
        let f = read_failure(&j.id);
        assert!(
            f.reason.contains("role map is invalid") && f.reason.ends_with("role-map.toml"),
            "{f:?}"
        );
        assert!(
            !f.reason.contains("region"),
            "the details are for the log: {f:?}"
        );

        // A job the scheduler described badly: its reason is recorded.
        let id = slurm_id("6").unwrap();
        let out = rt
            .block_on(run(
                Ok(&map),
                &store,
                &id,
                || Err("SLURM_JOB_UID is missing".into()),
                SystemTime::now(),
            ))
            .unwrap();
        assert_eq!(
            out,
            Outcome::Failed {
                reason: "SLURM_JOB_UID is missing".into()
            }
        );
        assert_eq!(read_failure(&id).reason, "SLURM_JOB_UID is missing");

        // A job that asks for nothing in a partition without a default: no role, no files,
        // and the scheduler is not asked anything.
        let id = slurm_id("7").unwrap();
        let mut quiet = j.clone();
        quiet.id = id.clone();
        let out = rt
            .block_on(run(Ok(&map), &store, &id, || Ok(quiet), SystemTime::now()))
            .unwrap();
        assert!(matches!(out, Outcome::NoRole { .. }), "{out:?}");
        assert!(store.open_job(&id, false).unwrap().is_none_or(|d| {
            d.read(STATE).unwrap().is_none() && d.read(FAILURE).unwrap().is_none()
        }));
    }

    #[test]
    fn request_follows_the_job_and_the_role_cap() {
        let map = RoleMap::parse(MAP, Path::new("t.toml")).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut j = job("42");
        j.array_task_id = Some(7);
        let hour = Duration::from_secs(3600);
        // (job length, role) -> seconds asked for
        let cases = [
            (Some(Duration::from_secs(600)), "short", 900), // 10-min job: STS floor
            (Some(3 * hour), "short", 3600),                // 3 h job, default 1 h cap
            (Some(3 * hour), "long", 3 * 3600 + 300),       // 3 h job, 12 h cap: end + margin
            (Some(48 * hour), "long", 43_200),              // 2-day job: 12 h cap
            (None, "long", 43_200),                         // UNLIMITED: the cap
            (Some(365 * 24 * hour), "short", 3600),         // UNLIMITED as Slurm reports it
        ];
        for (len, role, want) in cases {
            j.end_time = len.map(|l| now + l);
            let r = request(&map, &j, &map.roles[role], now);
            assert_eq!(r.duration.as_secs(), want, "{len:?} {role}");
            assert_eq!(r.session_name, "slurm-42-7");
            r.validate(walltime::MIN_SESSION).unwrap();
        }
        let r = request(&map, &j, &map.roles["long"], now);
        assert_eq!(r.source_identity.as_deref(), Some("alice"));
        assert!(
            r.tags.contains(&("slurm:job".into(), "42".into())),
            "{:?}",
            r.tags
        );
        assert!(
            r.tags.contains(&("slurm:partition".into(), "debug".into())),
            "{:?}",
            r.tags
        );
        assert_eq!(
            request(&map, &j, &map.roles["short"], now).source_identity,
            None
        );
        // A one-letter user: `{user}` alone would be a SourceIdentity STS refuses.
        j.user = "x".into();
        let r = request(&map, &j, &map.roles["long"], now);
        assert_eq!(r.source_identity.as_deref(), Some("x="));
        r.validate(walltime::MIN_SESSION).unwrap();
    }

    /// Every failure reason is stored and logged as one escaped, bounded line.
    #[test]
    fn failure_reasons_are_one_bounded_line() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().join("base"));
        let id = slurm_id("61").unwrap();
        let reason = format!("STS said \u{1b}]0;owned\u{7}\r\nok{}", "y".repeat(5000));
        let Outcome::Failed { reason } = fail(&store, &id, None, reason).unwrap() else {
            panic!("not a failure")
        };
        assert!(
            !reason.contains(['\r', '\n', '\u{1b}', '\u{7}']),
            "{reason:?}"
        );
        assert!(reason.chars().count() <= REASON_MAX + 1);
        let dir = store.open_job(&id, false).unwrap().unwrap();
        let record: FailureRecord = dir.read_record(FAILURE).unwrap().unwrap();
        assert_eq!(record.reason, reason);
    }
}
