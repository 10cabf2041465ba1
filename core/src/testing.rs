//! What the library's unit tests share: a job, a state record, a store in a temporary
//! directory and the identity the tests run as. Compiled for tests only.
#![allow(clippy::unwrap_used)]

use nix::unistd::{Gid, Uid};

use crate::job::{Job, Scheduler};
use crate::record::JobState;
use crate::store::{Reader, Store};

/// Slurm job `id` of alice (uid/gid 1001) in partition debug of cluster lab, asking for
/// nothing, without an end.
pub(crate) fn job(id: &str) -> Job {
    Job {
        scheduler: Scheduler::Slurm,
        id: crate::scheduler::slurm::parse_job_id(id).unwrap(),
        array_job_id: None,
        array_task_id: None,
        user: "alice".into(),
        uid: Uid::from_raw(1001),
        gid: Gid::from_raw(1001),
        partition: Some("debug".into()),
        account: None,
        cluster: Some("lab".into()),
        restart_count: 0,
        end_time: None,
        requested: None,
    }
}

/// A state record for tests: job 42 of `user` (uid/gid given), role demo, no end time.
pub(crate) fn sample_state(user: &str, uid: u32, gid: u32) -> JobState {
    JobState {
        job_id: "42".into(),
        scheduler: "slurm".into(),
        user: user.into(),
        uid,
        gid,
        role: "demo".into(),
        role_arn: "arn:aws:iam::123456789012:role/demo".into(),
        session_name: "slurm-42-0".into(),
        expiration: "2027-01-15T08:00:00Z".into(),
        end_time: None,
        issued: "2027-01-15T07:00:00Z".into(),
        region: "us-east-1".into(),
        partition: None,
        account: None,
        cluster: None,
        array_job_id: None,
        array_task_id: None,
        requested: Some("demo".into()),
        restart_count: 0,
        refreshes: 0,
        last_error: None,
        last_error_time: None,
    }
}

/// Who the tests run as, as a reader of the files they write.
pub(crate) fn me() -> Reader {
    Reader {
        uid: nix::unistd::geteuid(),
        gid: nix::unistd::getegid(),
    }
}

/// A store under a fresh temporary directory (kept while the first value lives).
pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let t = tempfile::tempdir().unwrap();
    let s = Store::new(t.path().join("aws-role"));
    (t, s)
}

/// A runtime like the binaries' (one thread), for the async parts.
#[cfg(feature = "sts")]
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
