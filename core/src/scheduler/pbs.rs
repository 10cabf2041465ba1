//! Reading a job from the arguments PBS gives a prologue/epilogue (Torque, OpenPBS/PBS Pro).
//!
//! PBS runs `mom_priv/prologue` and `epilogue` as root with an **empty environment**,
//! stdin `/dev/null`, and everything it knows about the job as positional arguments:
//!
//! | script | form | arguments |
//! |---|---|---|
//! | prologue | Torque | `jobid user group jobname resource_list queue account [script] [hosts]` |
//! | prologue | OpenPBS/PBS Pro | `jobid user group` |
//! | epilogue | both | `jobid user group jobname session_id resource_list resources_used queue account exit_code …` |
//!
//! Which prologue form it is follows from the argument count (3: OpenPBS, 7 or more:
//! Torque). Several arguments are user-controlled (job name, account, resource values), so
//! everything is validated before it is used, and an error names the argument and shows
//! its value escaped. Nothing here panics, whatever the input.

use std::time::{Duration, SystemTime};

use nix::unistd::{Group, User};

use super::{Driver, Liveness, PrologInput, PrologJob};
use crate::job::{Job, JobId, JobIdError, Scheduler};
use crate::map::RoleMap;
use crate::text::shown;
use crate::walltime::{self, WalltimeError};

/// Why PBS accounts are never trusted.
pub const ACCOUNT_DOUBT: &str =
    "PBS does not check the account a job names (qsub -A), so it is whatever its user typed";

/// PBS's [`Driver`] (Torque, OpenPBS, PBS Pro).
pub struct Pbs;

impl Driver for Pbs {
    fn scheduler(&self) -> Scheduler {
        Scheduler::Pbs
    }

    fn parse_job_id(&self, raw: &str) -> Result<JobId, JobIdError> {
        parse_job_id(raw)
    }

    /// The job from the prologue's arguments ([`prologue`]), all read at once: arguments
    /// that are not what PBS passes (hostile job ids, malformed resource lists) are refused
    /// before anything is written.
    fn prolog_job<'a>(&self, input: PrologInput<'a>) -> Result<PrologJob<'a>, String> {
        let job = prologue(input.args, input.queue, input.now).map_err(|e| e.to_string())?;
        Ok(PrologJob {
            id: job.id.clone(),
            job: Box::new(move || Ok(job)),
        })
    }

    /// Argument 1 ([`epilogue`]); PBS runs an epilogue with an empty environment.
    fn epilog_job_id(
        &self,
        args: &[String],
        _env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<JobId, String> {
        epilogue(args).map_err(|e| e.to_string())
    }

    /// Nothing to add: the prologue's arguments carry all PBS tells.
    fn complete(&self, _map: &RoleMap, _job: &mut Job) {}

    /// `[pbs.queues.NAME] default_role`, else `[pbs] default_role`.
    fn default_role<'m>(&self, map: &'m RoleMap, queue: Option<&str>) -> Option<(&'m str, String)> {
        match queue.and_then(|q| map.pbs.queues.get(q).map(|d| (q, d))) {
            Some((q, d)) => Some((
                d.default_role.as_str(),
                format!("the default role of queue {q}"),
            )),
            None => map
                .pbs
                .default_role
                .as_deref()
                .map(|r| (r, "the site's default PBS role".to_string())),
        }
    }

    /// Not asked: the epilogue removes every job's credentials.
    fn liveness(&self, _map: &RoleMap, _id: &JobId) -> Option<Liveness> {
        None
    }

    fn fixed_account_doubt(&self) -> Option<&'static str> {
        Some(ACCOUNT_DOUBT)
    }
}

/// Longest PBS job id accepted (`<seq>[<idx>].<server fqdn>`); a path component must stay well below 255.
const PBS_ID_MAX: usize = 128;

/// Which calling convention a prologue was run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `jobid user group jobname resource_list queue account [script] [hosts]`.
    Torque,
    /// `jobid user group`.
    OpenPbs,
}

/// Why the PBS arguments were refused.
#[derive(Debug, thiserror::Error)]
pub enum PbsArgsError {
    #[error("a PBS prologue gets 3 arguments (OpenPBS: jobid user group) or 7 to 9 (Torque: jobid user group jobname resource_list queue account [script] [hosts]), not {0}")]
    PrologueArgCount(usize),
    #[error("a PBS epilogue gets the job id as its first argument, but it got no arguments")]
    EpilogueArgCount,
    #[error("{what} is {shown}: {why}")]
    Invalid {
        /// `argument N (name)`, or `--queue`.
        what: String,
        /// The offending value, escaped and cut.
        shown: String,
        why: String,
    },
    #[error(transparent)]
    JobId(#[from] JobIdError),
    #[error("argument 2 (user) {shown} is not a user on this node")]
    NoSuchUser { shown: String },
    #[error("argument 3 (group) {shown} is not a group on this node")]
    NoSuchGroup { shown: String },
    #[error("cannot look up {what} {shown}: {errno}")]
    Lookup {
        what: &'static str,
        shown: String,
        errno: nix::Error,
    },
    #[error("argument 3 (group) {group} is not a group of user {user}")]
    GroupMismatch { user: String, group: String },
    #[error("argument {position} (resource_list) {shown} is malformed: {why}")]
    ResourceList {
        position: usize,
        shown: String,
        why: String,
    },
    #[error("argument {position} (resource_list): {source}")]
    Walltime {
        position: usize,
        source: WalltimeError,
    },
}

/// How a message names argument `position` (1-based; 0 is the `--queue` option).
fn what(position: usize, name: &str) -> String {
    match position {
        0 => name.to_string(),
        p => format!("argument {p} ({name})"),
    }
}

/// A PBS/Torque job id such as `1234.server.example.com` or `1234[5].server`.
/// Allowed: ASCII letters, digits, `.`, `-`, `_`, and one `[digits]` array index after the
/// sequence number. It must start with a digit and may not contain `..`.
pub fn parse_job_id(s: &str) -> Result<JobId, JobIdError> {
    let err = |why| JobIdError {
        scheduler: Scheduler::Pbs,
        shown: shown(s),
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
    Ok(JobId::checked(s.to_string()))
}

/// The prologue form for `n` arguments, if it is one.
pub fn prologue_form(n: usize) -> Option<Form> {
    match n {
        3 => Some(Form::OpenPbs),
        // Torque 4.x passes 7, 6.x adds the script (8), 6.x/9.x the host list (9); tolerate
        // later additions at the end.
        n if n >= 7 => Some(Form::Torque),
        _ => None,
    }
}

/// The job id of a prologue or epilogue (argument 1), validated; usable before anything else.
pub fn job_id(args: &[String]) -> Result<JobId, PbsArgsError> {
    let id = args.first().ok_or(PbsArgsError::EpilogueArgCount)?;
    Ok(parse_job_id(id)?)
}

/// The epilogue's job id. Torque and OpenPBS both pass it first (of 10 or more); the
/// rest is not needed to clean up, so an epilogue works even for a user deleted meanwhile.
pub fn epilogue(args: &[String]) -> Result<JobId, PbsArgsError> {
    job_id(args)
}

/// Builds the job from a prologue's arguments.
///
/// `queue` is used when the arguments carry none (OpenPBS; `--queue`); a Torque queue in
/// the arguments wins. The walltime in the resource list sets the end time (`now` +
/// walltime); without one the end is unknown and the role's cap applies.
pub fn prologue(
    args: &[String],
    queue: Option<&str>,
    now: SystemTime,
) -> Result<Job, PbsArgsError> {
    let form = prologue_form(args.len()).ok_or(PbsArgsError::PrologueArgCount(args.len()))?;
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let id = parse_job_id(arg(0))?;
    let (user, uid, gid) = user_and_group(arg(1), arg(2))?;
    let (partition, account, end_time) = match form {
        Form::OpenPbs => (
            name_arg(queue.unwrap_or_default(), 0, "--queue")?,
            None,
            None,
        ),
        Form::Torque => {
            let walltime = walltime_of(arg(4), 5)?;
            let account = match arg(6) {
                "null" => None,
                a => name_arg(a, 7, "account")?,
            };
            let queue = match name_arg(arg(5), 6, "queue")? {
                Some(q) => Some(q),
                None => name_arg(queue.unwrap_or_default(), 0, "--queue")?,
            };
            (queue, account, walltime.and_then(|w| now.checked_add(w)))
        }
    };
    let (array_job_id, array_task_id) = array_parts(id.as_str());
    Ok(Job {
        scheduler: Scheduler::Pbs,
        id,
        array_job_id,
        array_task_id,
        user,
        uid,
        gid,
        partition,
        account,
        cluster: None,
        restart_count: 0,
        end_time,
        requested: None,
    })
}

/// `1234[5].server` → (`1234[].server`, 5); `None`s for a plain job.
fn array_parts(id: &str) -> (Option<String>, Option<u32>) {
    let Some((head, rest)) = id.split_once('[') else {
        return (None, None);
    };
    let Some((index, tail)) = rest.split_once(']') else {
        return (None, None);
    };
    match index.parse::<u32>() {
        Ok(i) => (Some(format!("{head}[]{tail}")), Some(i)),
        Err(_) => (None, None),
    }
}

/// A queue or account: empty → `None`; otherwise printable, no spaces, at most 256 bytes.
fn name_arg(
    value: &str,
    position: usize,
    name: &'static str,
) -> Result<Option<String>, PbsArgsError> {
    if value.is_empty() {
        return Ok(None);
    }
    let why = if value.len() > 256 {
        Some("it is longer than 256 bytes")
    } else if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("it contains spaces or control characters")
    } else {
        None
    };
    match why {
        Some(why) => Err(PbsArgsError::Invalid {
            what: what(position, name),
            shown: shown(value),
            why: why.into(),
        }),
        None => Ok(Some(value.to_string())),
    }
}

/// Resolves the job's user and checks its group: (name, uid, gid of the job's group).
fn user_and_group(
    user: &str,
    group: &str,
) -> Result<(String, nix::unistd::Uid, nix::unistd::Gid), PbsArgsError> {
    // Names as NSS gives them (SSSD's alice@example.com, winbind's EXAMPLE\alice): the
    // lookups below decide, exactly; only what no user database can hold is refused first.
    if !crate::map::is_nss_name(user) {
        return Err(PbsArgsError::Invalid {
            what: what(2, "user"),
            shown: shown(user),
            why: "not a user name NSS could give".into(),
        });
    }
    if !crate::map::is_nss_name(group) {
        return Err(PbsArgsError::Invalid {
            what: what(3, "group"),
            shown: shown(group),
            why: "not a group name NSS could give".into(),
        });
    }
    let u = User::from_name(user)
        .map_err(|errno| PbsArgsError::Lookup {
            what: "user",
            shown: shown(user),
            errno,
        })?
        .ok_or_else(|| PbsArgsError::NoSuchUser { shown: shown(user) })?;
    let g = Group::from_name(group)
        .map_err(|errno| PbsArgsError::Lookup {
            what: "group",
            shown: shown(group),
            errno,
        })?
        .ok_or_else(|| PbsArgsError::NoSuchGroup {
            shown: shown(group),
        })?;
    // The job's group is the user's primary group or one the user is a member of
    // (`qsub -W group_list=`); anything else did not come from PBS. Membership as
    // initgroups sees it: a directory's group need not list its members in getgrnam.
    let member = || {
        std::ffi::CString::new(u.name.as_str())
            .ok()
            .and_then(|c| nix::unistd::getgrouplist(&c, u.gid).ok())
            .is_some_and(|gids| gids.contains(&g.gid))
    };
    if g.gid != u.gid && !member() {
        return Err(PbsArgsError::GroupMismatch {
            user: u.name,
            group: g.name,
        });
    }
    Ok((u.name, u.uid, g.gid))
}

/// The walltime in a resource list (`name=value,name=value`), checked for form.
/// An empty list means no resources were requested.
pub fn walltime_of(list: &str, position: usize) -> Result<Option<Duration>, PbsArgsError> {
    let bad = |why: &str| PbsArgsError::ResourceList {
        position,
        shown: shown(list),
        why: why.into(),
    };
    if list.is_empty() {
        return Ok(None);
    }
    if list.len() > 4096 {
        return Err(bad("it is longer than 4096 bytes"));
    }
    if list.chars().any(|c| c.is_control()) {
        return Err(bad("it contains control characters"));
    }
    let mut walltime = None;
    for item in list.split(',') {
        // Values may contain '=' themselves (`select=1:ncpus=2`): split at the first.
        let Some((name, value)) = item.split_once('=') else {
            return Err(bad("every item must be name=value"));
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(bad(
                "a resource name must be letters, digits, '_', '.', '-'",
            ));
        }
        if name == "walltime" {
            if walltime.is_some() {
                return Err(bad("walltime is given twice"));
            }
            walltime = Some(
                walltime::parse_pbs(value)
                    .map_err(|source| PbsArgsError::Walltime { position, source })?,
            );
        }
    }
    Ok(walltime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbs_ids_accept_server_names_and_array_indices() {
        for ok in [
            "1234",
            "1234.server.example.com",
            "1234[5].server",
            "1234[]",
            "99.pbs-01_x",
        ] {
            let r = parse_job_id(ok);
            if ok == "1234[]" {
                assert!(r.is_err());
            } else {
                assert!(r.is_ok(), "{ok:?} refused: {r:?}");
            }
        }
        assert_eq!(
            parse_job_id("1234[5].server").unwrap().dir_name(),
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
            assert!(parse_job_id(bad).is_err(), "{bad:?} accepted");
        }
        let e = parse_job_id("1\u{1b}[31m").unwrap_err().to_string();
        assert!(
            !e.contains('\u{1b}'),
            "control character reached the message: {e}"
        );
    }

    use proptest::prelude::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }
    fn torque(
        id: &str,
        user: &str,
        group: &str,
        list: &str,
        queue: &str,
        acct: &str,
    ) -> Vec<String> {
        args(&[id, user, group, "myjob", list, queue, acct])
    }

    #[test]
    fn forms_by_count() {
        assert_eq!(prologue_form(3), Some(Form::OpenPbs));
        for n in 7..=11 {
            assert_eq!(prologue_form(n), Some(Form::Torque));
        }
        for n in [0, 1, 2, 4, 5, 6] {
            assert_eq!(prologue_form(n), None, "{n}");
        }
    }

    #[test]
    fn torque_prologue() {
        let a = torque(
            "1234.server.example.com",
            "root",
            "root",
            "neednodes=1:ppn=2,nodes=1:ppn=2,walltime=01:30:00",
            "batch",
            "proj-7",
        );
        let j = prologue(&a, None, now()).unwrap();
        assert_eq!(j.scheduler, Scheduler::Pbs);
        assert_eq!(j.id.as_str(), "1234.server.example.com");
        assert_eq!(j.user, "root");
        assert_eq!(j.uid.as_raw(), 0);
        assert_eq!(j.gid.as_raw(), 0);
        assert_eq!(j.partition.as_deref(), Some("batch"));
        assert_eq!(j.account.as_deref(), Some("proj-7"));
        assert_eq!(j.end_time, Some(now() + Duration::from_secs(5400)));
        assert_eq!(j.array_task_id, None);
        assert_eq!(j.requested, None);
        // With script and host list (Torque 6.x), "null" account, no walltime.
        let mut a = torque("7[3].srv", "root", "root", "nodes=1", "q", "null");
        a.push("/var/spool/torque/mom_priv/jobs/7.SC".into());
        a.push("node1,node2".into());
        let j = prologue(&a, Some("ignored"), now()).unwrap();
        assert_eq!(j.account, None);
        assert_eq!(j.partition.as_deref(), Some("q"));
        assert_eq!(j.end_time, None);
        assert_eq!(j.array_job_id.as_deref(), Some("7[].srv"));
        assert_eq!(j.array_task_id, Some(3));
        // Empty account, empty resource list, empty queue falls back to --queue.
        let j = prologue(
            &torque("8", "root", "root", "", "", ""),
            Some("batch"),
            now(),
        )
        .unwrap();
        assert_eq!(j.account, None);
        assert_eq!(j.end_time, None);
        assert_eq!(j.partition.as_deref(), Some("batch"));
    }

    #[test]
    fn openpbs_prologue_uses_the_queue_option() {
        let j = prologue(&args(&["55.pbs", "root", "root"]), None, now()).unwrap();
        assert_eq!(j.partition, None);
        assert_eq!(j.end_time, None);
        assert_eq!(j.account, None);
        let j = prologue(&args(&["55.pbs", "root", "root"]), Some("gpu"), now()).unwrap();
        assert_eq!(j.partition.as_deref(), Some("gpu"));
        let e = prologue(&args(&["55.pbs", "root", "root"]), Some("a b"), now()).unwrap_err();
        assert!(e.to_string().contains("--queue"), "{e}");
    }

    #[test]
    fn walltime_forms() {
        let w = |s: &str| walltime_of(s, 5).unwrap();
        assert_eq!(w("walltime=3600"), Some(Duration::from_secs(3600)));
        assert_eq!(w("walltime=1:00:00:00"), Some(Duration::from_secs(86_400)));
        assert_eq!(
            w("select=1:ncpus=2:mem=4gb,walltime=00:10:00"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(w("nodes=1"), None);
        assert_eq!(w(""), None);
        for bad in [
            "walltime",
            "walltime=",
            "walltime=abc",
            "walltime=1:00:00,walltime=2:00:00",
            "nodes=1,,walltime=1:00:00",
            "=1",
            "no de=1",
            "walltime=1:00:00,",
            "walltime=1:00:00\n",
            "walltime=99999999999:00:00:00",
        ] {
            let e = walltime_of(bad, 5).unwrap_err();
            let m = e.to_string();
            assert!(m.contains("argument 5 (resource_list)"), "{bad:?}: {m}");
            assert!(!m.contains('\n'), "{bad:?}: {m}");
        }
    }

    #[test]
    fn errors_name_the_argument_and_escape_the_value() {
        let e = prologue(&args(&["1", "root"]), None, now()).unwrap_err();
        assert!(matches!(e, PbsArgsError::PrologueArgCount(2)), "{e}");
        let e = prologue(&args(&["../x", "root", "root"]), None, now()).unwrap_err();
        assert!(e.to_string().contains("invalid pbs job id \"../x\""), "{e}");
        let e = prologue(&args(&["1", "ro\u{1b}[31mot", "root"]), None, now()).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("argument 2 (user)") && !m.contains('\u{1b}'),
            "{m}"
        );
        let e = prologue(&args(&["1", "nosuchuser-aws-role", "root"]), None, now()).unwrap_err();
        assert!(matches!(e, PbsArgsError::NoSuchUser { .. }), "{e}");
        let e = prologue(&args(&["1", "root", "nosuchgroup-aws-role"]), None, now()).unwrap_err();
        assert!(matches!(e, PbsArgsError::NoSuchGroup { .. }), "{e}");
        let e = prologue(&args(&["1", "root", "-x"]), None, now()).unwrap_err();
        assert!(e.to_string().contains("argument 3 (group)"), "{e}");
        let e = prologue(&args(&["1", "root", "ro:ot"]), None, now()).unwrap_err();
        assert!(
            e.to_string()
                .contains("argument 3 (group) is \"ro:ot\": not a group name NSS could give"),
            "{e}"
        );
        // A directory's name is looked up as it is, not refused for its form.
        let e = prologue(
            &args(&["1", "alice@example.invalid", "domain users"]),
            None,
            now(),
        )
        .unwrap_err();
        assert!(matches!(e, PbsArgsError::NoSuchUser { .. }), "{e}");
        let e = prologue(
            &torque("1", "root", "root", "walltime=x", "q", ""),
            None,
            now(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("argument 5 (resource_list)"), "{e}");
        let e = prologue(&torque("1", "root", "root", "", "q\u{7}", ""), None, now()).unwrap_err();
        assert!(
            e.to_string().contains("argument 6 (queue) is \"q\\u{7}\""),
            "{e}"
        );
        let e = prologue(&torque("1", "root", "root", "", "q", "a b"), None, now()).unwrap_err();
        assert!(e.to_string().contains("argument 7 (account)"), "{e}");
        let long = "x".repeat(300);
        let e = prologue(&torque("1", "root", "root", &long, "q", ""), None, now()).unwrap_err();
        assert!(e.to_string().len() < 300, "{e}");
    }

    #[test]
    fn group_must_be_the_users() {
        // Find a group root is not in and that is not root's primary group.
        let other = ["nogroup", "daemon", "bin", "sys", "users"]
            .into_iter()
            .find(|g| {
                Group::from_name(g)
                    .ok()
                    .flatten()
                    .is_some_and(|g| g.gid.as_raw() != 0 && !g.mem.iter().any(|m| m == "root"))
            });
        let Some(other) = other else {
            panic!("no suitable group on this machine")
        };
        let e = prologue(&args(&["1", "root", other]), None, now()).unwrap_err();
        assert!(matches!(e, PbsArgsError::GroupMismatch { .. }), "{e}");
    }

    #[test]
    fn epilogue_needs_only_a_valid_id() {
        let a = args(&[
            "1234[5].server",
            "alice",
            "alice",
            "job",
            "4242",
            "walltime=01:00:00",
            "cput=00:00:01,walltime=00:00:05",
            "batch",
            "null",
            "0",
        ]);
        assert_eq!(epilogue(&a).unwrap().as_str(), "1234[5].server");
        assert!(matches!(epilogue(&[]), Err(PbsArgsError::EpilogueArgCount)));
        for bad in ["", "../x", "1/2", "1\u{7}"] {
            assert!(epilogue(&args(&[bad, "alice"])).is_err(), "{bad:?}");
        }
        assert!(epilogue(&args(&[&"1".repeat(300)])).is_err());
    }

    #[test]
    fn array_parts_of_ids() {
        assert_eq!(array_parts("12"), (None, None));
        assert_eq!(array_parts("12[3]"), (Some("12[]".into()), Some(3)));
        assert_eq!(array_parts("12[99999999999].s"), (None, None));
    }

    proptest! {
        #[test]
        fn never_panics(v in proptest::collection::vec(".{0,40}", 0..12), q in proptest::option::of(".{0,10}")) {
            let _ = prologue(&v, q.as_deref(), now());
            let _ = epilogue(&v);
            if let Some(first) = v.first() {
                let _ = walltime_of(first, 5);
            }
        }

        #[test]
        fn never_panics_on_plausible_shapes(
            id in "[0-9\\[\\]./a-z]{0,12}",
            list in "(walltime|nodes|=|,|[0-9:.]){0,30}",
            queue in "[a-z\u{0}-\u{1f} ]{0,6}",
            late in proptest::bool::ANY,
        ) {
            let a = torque(&id, "root", "root", &list, &queue, "null");
            let far = if late { SystemTime::UNIX_EPOCH + Duration::from_secs(u64::MAX / 4) } else { now() };
            let _ = prologue(&a, None, far);
        }
    }
}
