//! How a job reaches its credentials: the deliveries, and what every front-end tells the
//! job's processes (the SPANK plugin's `spank_setenv`, the TaskProlog's `export` lines, the
//! PBS login snippet and launch hook, which repeat the lists and are tested against them).
//!
//! A [`Delivery`] writes what the job reads for fresh credentials (at the prolog and at
//! every refresh) and names the variables that point the job's SDKs at it: [`files::Files`]
//! (the credential files and a `credential_process` config, which every SDK reads first) and
//! [`endpoint::Endpoint`] (the node's credentials endpoint, for tools and containers that
//! cannot run the helper). Adding one is a module here and an entry in [`ALL`].
//!
//! The decisions a front-end takes from a job's directory live here too: what a task
//! prolog prints ([`task_prolog`]) and what a job step gets ([`step_role`]).

pub mod endpoint;
pub mod files;

use std::path::{Path, PathBuf};

use crate::creds::Credentials;
use crate::job::{JobId, RoleRequest};
use crate::map::RoleMap;
use crate::record::{FailureRecord, JobState};
use crate::store::{JobDir, Reader, Store, StoreError, FAILURE, STATE};

/// One way a job gets its credentials.
pub trait Delivery: Sync {
    /// Writes what the job reads for `creds` into its directory, readable by `user` only.
    /// Each file is replaced atomically; the caller holds the directory's lock.
    fn write(
        &self,
        map: &RoleMap,
        dir: &JobDir,
        creds: &Credentials,
        user: Reader,
    ) -> Result<(), StoreError>;

    /// The variables that point a job's processes at what [`Delivery::write`] wrote in
    /// `dir`.
    fn env(&self, dir: &Path) -> Vec<(&'static str, String)>;

    /// The names of the files [`Delivery::write`] writes, which a failure removes.
    fn files(&self) -> &'static [&'static str];
}

/// Every delivery, in the order they are written and their variables set.
pub const ALL: &[&dyn Delivery] = &[&files::Files, &endpoint::Endpoint];

/// The files of every delivery ([`Delivery::files`]).
pub fn files() -> impl Iterator<Item = &'static str> {
    ALL.iter().flat_map(|d| d.files().iter().copied())
}

/// Writes every delivery of `creds` for the job's user.
pub fn write(
    map: &RoleMap,
    dir: &JobDir,
    creds: &Credentials,
    user: Reader,
) -> Result<(), StoreError> {
    ALL.iter().try_for_each(|d| d.write(map, dir, creds, user))
}

/// Inherited variables that would shadow the job's role in the SDKs' lookup order
/// (static keys, other profiles, web identity, container and instance-metadata
/// endpoints). They are removed from every task of a job that has a role, *before* the
/// job's own variables ([`environment`]) are set: the endpoint delivery sets some of them.
pub const SHADOWING: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
];

/// Variables to set for a job whose credentials are in `dir`: every delivery's, then
/// `AWS_ROLE_NAME` and `AWS_ROLE_SESSION_NAME` when the caller knows them. Set them after
/// removing [`SHADOWING`].
pub fn environment(
    dir: &Path,
    role: Option<&str>,
    session: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = ALL.iter().flat_map(|d| d.env(dir)).collect();
    if let Some(r) = role {
        v.push(("AWS_ROLE_NAME", r.to_string()));
    }
    if let Some(s) = session {
        v.push(("AWS_ROLE_SESSION_NAME", s.to_string()));
    }
    v
}

/// TaskProlog output (`export NAME=value` / `unset NAME` lines, slurm.conf(5)) for a job
/// whose credentials are in `dir`, with its role and session names when its state record
/// gave them.
pub fn task_prolog_lines(dir: &Path, names: Option<(&str, &str)>) -> String {
    let mut out = String::new();
    for name in SHADOWING {
        out.push_str(&format!("unset {name}\n"));
    }
    for (name, value) in environment(dir, names.map(|n| n.0), names.map(|n| n.1)) {
        out.push_str(&format!("export {name}={value}\n"));
    }
    out
}

/// What a TaskProlog (running as the job's user) found in the job's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Missing,
    /// It exists but cannot be read (a record root wrote for an unknown user, a
    /// permission problem): the text says why.
    Unreadable(String),
    /// Its contents.
    Read(Vec<u8>),
}

impl Found {
    /// What reading `path` found.
    pub fn at(path: &Path) -> Found {
        match std::fs::read(path) {
            Ok(bytes) => Found::Read(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Found::Missing,
            Err(e) => Found::Unreadable(format!("{}: {e}", path.display())),
        }
    }
}

/// What the TaskProlog prints (its lines are read by slurmstepd) and whether it succeeds:
/// a job that should have a role and cannot get it fails, in every mode, with one `print`
/// line (escaped and cut: the reason may quote what STS or a user said).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskProlog {
    pub output: String,
    pub ok: bool,
}

/// The TaskProlog's decision for a job whose directory is `dir`. `state`: the job's state
/// record (readable by the job's user), for the role and session names it exports.
/// `expected`: whether the job could get a role at all (a partition default,
/// [`crate::policy::may_get_role`]): then finding nothing is a failure too, not a job
/// without a role.
pub fn task_prolog(
    dir: &Path,
    failure: Found,
    config: Found,
    state: Found,
    expected: bool,
) -> TaskProlog {
    let fail = |reason: &str| TaskProlog {
        output: format!("print aws-role: {}\n", crate::text::one_line(reason, 1000)),
        ok: false,
    };
    match failure {
        Found::Read(bytes) => {
            let reason = crate::store::parse_record::<crate::record::FailureRecord>(&bytes)
                .map(|r| r.reason)
                .unwrap_or_else(|_| "the job's AWS role could not be given".into());
            return fail(&reason);
        }
        Found::Unreadable(why) => {
            return fail(&format!(
            "the job's AWS role could not be given, and its failure record cannot be read ({why})"
        ))
        }
        Found::Missing => {}
    }
    match config {
        Found::Read(_) => {
            // Names only from a record that parses and whose names pass the rules they were
            // made by (the map's for role names, STS's for session names): safe on a line.
            let state = match state {
                Found::Read(bytes) => {
                    crate::store::parse_record::<crate::record::JobState>(&bytes).ok()
                }
                _ => None,
            };
            let names = state.as_ref().and_then(|s| {
                (crate::map::is_name(&s.role) && crate::session::is_valid_name(&s.session_name))
                    .then_some((s.role.as_str(), s.session_name.as_str()))
            });
            TaskProlog {
                output: task_prolog_lines(dir, names),
                ok: true,
            }
        }
        Found::Unreadable(why) => fail(&format!(
            "this job's AWS credentials on this node cannot be read ({why})"
        )),
        Found::Missing if expected => fail(
            "this job should have an AWS role, but this node has neither credentials nor a failure record for it; the administrators find why in the node's log",
        ),
        Found::Missing => TaskProlog {
            output: String::new(),
            ok: true,
        },
    }
}

/// What a job that asked for a role reads when the node has nothing for it: either only a
/// step asked (the prolog runs once per job, for the role given at submission), or the
/// prolog could not write even its failure record (a full or read-only file system, a
/// prolog killed at its time limit).
pub const NO_RECORD: &str = "this job asked for an AWS role, but this node has neither credentials nor a failure record for it: give --aws-role to sbatch/salloc, not to a later srun; otherwise the node could not write them, and the administrators find why in its log";

/// What a job step gets from the node (the plugin's remote `init_post_opt`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StepRole {
    /// No record: the job has no AWS role from us (or this is not a job step).
    #[default]
    Nothing,
    /// Credentials are on this node.
    Role {
        dir: PathBuf,
        role: String,
        session: String,
    },
    /// The node could not provide the job's role; the job must fail, saying why.
    Failed { reason: String },
}

/// A line for the node's log that comes with a [`StepRole`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Error(String),
    Info(String),
}

/// What step of job `id` (of uid `job_uid`, when Slurm says) gets, from what the node's
/// store holds. `requested`: what this step asked for (srun's own `--aws-role`, or the
/// batch step's sbatch value). `expects_record`: whether the prolog had to leave a record
/// for this job ([`crate::policy::expects_record`]); only such jobs fail without one.
pub fn step_role(
    store: &Store,
    id: &JobId,
    job_uid: Option<u32>,
    requested: Option<&RoleRequest>,
    expects_record: bool,
) -> (StepRole, Option<Note>) {
    let unreadable = |what: String| {
        (
            StepRole::Failed {
                reason: "this job's AWS credentials on this node cannot be read; the administrators find the details in the node's log".into(),
            },
            Some(Note::Error(format!("job {id}: {what}"))),
        )
    };
    let dir = match store.open_job(id, false) {
        Ok(Some(d)) => d,
        // The job must not run believing it has its role.
        Ok(None) if expects_record => {
            return (
                StepRole::Failed {
                    reason: NO_RECORD.into(),
                },
                Some(Note::Error(format!(
                    "job {id}: it asked for an AWS role, but {} has no record of it",
                    store.job_path(id).display()
                ))),
            )
        }
        Ok(None) => return (StepRole::Nothing, None),
        // Only fail jobs that could get a role; others may not need one.
        Err(e) if expects_record => return unreadable(e.to_string()),
        Err(e) => {
            return (
                StepRole::Nothing,
                Some(Note::Error(format!("job {id}: {e}"))),
            )
        }
    };
    match (
        dir.read_record::<JobState>(STATE),
        dir.read_record::<FailureRecord>(FAILURE),
    ) {
        (Ok(Some(st)), _) => {
            if st.job_id != id.as_str() || job_uid.is_some_and(|u| u != st.uid) {
                return unreadable(format!(
                    "{} describes job {} of uid {}, not this job (uid {job_uid:?})",
                    dir.path().join(STATE).display(),
                    st.job_id,
                    st.uid
                ));
            }
            if let Some(reason) = crate::policy::step_conflict(&st.role, requested) {
                let note = Note::Info(format!("job {id}: step refused: {reason}"));
                return (StepRole::Failed { reason }, Some(note));
            }
            (
                StepRole::Role {
                    dir: dir.path().to_path_buf(),
                    role: st.role,
                    session: st.session_name,
                },
                None,
            )
        }
        (Ok(None), Ok(Some(f))) => (StepRole::Failed { reason: f.reason }, None),
        (Ok(None), Ok(None)) if expects_record => (
            StepRole::Failed {
                reason: NO_RECORD.into(),
            },
            None,
        ),
        (Ok(None), Ok(None)) => (StepRole::Nothing, None),
        (Err(e), _) | (_, Err(e)) => unreadable(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
