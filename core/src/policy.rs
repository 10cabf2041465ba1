//! Which role a job gets, decided on the node as root from the site map.
//!
//! The requested name comes from `SPANK_AWS_ROLE`, which the user controls, so it is
//! re-authorized here against the map; the submit-time check in the plugin is only a
//! friendly early error. Every decision carries a reason that can be shown to the user.

use nix::unistd::{getgrouplist, Group, User};

use crate::job::{Job, RoleRequest};
use crate::map::{Role, RoleMap};
use crate::text::shown;

/// Who is asking, as far as the allow lists are concerned.
#[derive(Debug, Clone)]
pub struct Requester<'a> {
    pub user: &'a str,
    /// The groups the user is a member of ([`groups_of`]).
    pub groups: &'a [String],
    /// The job's account, as the scheduler reports it.
    pub account: Option<&'a str>,
    /// Why that account is only the user's word (`None`: the scheduler vouches for it; see
    /// [`crate::accounts`]). While there is doubt, `allow_accounts` grants nothing and no
    /// role that puts `{account}` into its session is given.
    pub account_doubt: Option<&'a str>,
}

/// What in a role's allow lists admitted a requester (said in the node's log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    User(String),
    Group(String),
    Account(String),
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Grant::User(u) => write!(f, "allowed by name for user {u}"),
            Grant::Group(g) => write!(f, "allowed for group {g}"),
            Grant::Account(a) => write!(f, "allowed for account {a}, which Slurm enforces"),
        }
    }
}

/// The outcome of authorization for one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The job gets `role` (a key of the map).
    Role { role: String, why: String },
    /// The job gets no AWS credentials from us; this is not an error.
    NoRole { why: String },
    /// The job asked for something it may not have: the job must fail, saying why.
    Denied { why: String },
}

impl Decision {
    /// The reason, worded for the user who submitted the job.
    pub fn reason(&self) -> &str {
        match self {
            Decision::Role { why, .. } | Decision::NoRole { why } | Decision::Denied { why } => why,
        }
    }
}

/// The partition (Slurm) or queue (PBS) default role for a job, if any.
pub fn default_role<'m>(map: &'m RoleMap, job: &Job) -> Option<(&'m str, String)> {
    crate::scheduler::of(job.scheduler).default_role(map, job.partition.as_deref())
}

/// Whether a Slurm job could get a role on this node: it names one with `--aws-role` (even
/// one it may not have: the prolog must then record why), or its partition has a default
/// it did not opt out of. When this is `false` the prolog would only clean up.
pub fn may_get_role(
    map: &RoleMap,
    partition: Option<&str>,
    requested: Option<&RoleRequest>,
) -> bool {
    match requested {
        Some(RoleRequest::Named(_)) => true,
        Some(RoleRequest::None) => false,
        None => partition.is_some_and(|p| map.partitions.contains_key(p)),
    }
}

/// Whether the prolog had to leave a record (credentials or a failure) for a Slurm job:
/// it names a role, or its partition has a default it did not opt out of
/// ([`may_get_role`]). Without a map (it does not load) only a named role counts. A job
/// that expects a record and finds none must fail rather than run without its role.
pub fn expects_record(
    map: Option<&RoleMap>,
    partition: Option<&str>,
    requested: Option<&RoleRequest>,
) -> bool {
    match map {
        Some(m) => may_get_role(m, partition, requested),
        None => matches!(requested, Some(RoleRequest::Named(_))),
    }
}

/// What in the allow lists of `role` admits `who`, if anything: the user's name, then a
/// group, then the account, which counts only while nobody doubts it.
pub fn grant(role: &Role, who: &Requester<'_>) -> Option<Grant> {
    if role.allow_users.iter().any(|u| u == who.user) {
        return Some(Grant::User(who.user.to_string()));
    }
    if let Some(g) = role.allow_groups.iter().find(|g| who.groups.contains(g)) {
        return Some(Grant::Group(g.clone()));
    }
    match (who.account, who.account_doubt) {
        (Some(a), None) if role.allow_accounts.iter().any(|x| x == a) => {
            Some(Grant::Account(a.to_string()))
        }
        _ => None,
    }
}

/// Why a job step may not run, when it asks with `--aws-role` for something other than
/// the role its job has (`job_role`). A step always runs with its job's role: the node
/// assumes one role per job, at the job's start, and every step inherits the job's
/// environment; a step that silently ran with another role than it asked for would
/// mislead its user, and one that could switch would need its own authorization.
pub fn step_conflict(job_role: &str, step_asked: Option<&RoleRequest>) -> Option<String> {
    match step_asked {
        None => None,
        Some(RoleRequest::Named(n)) if n == job_role => None,
        Some(asked) => Some(format!(
            "a job step cannot change the job's AWS role: this job has role {job_role}, and this step asked for --aws-role={}; steps always run with the job's role (give --aws-role to sbatch or salloc)",
            crate::text::one_line(asked.as_value(), 80)
        )),
    }
}

/// Whether the allow lists of `role` admit `who` ([`grant`]).
pub fn allows(role: &Role, who: &Requester<'_>) -> bool {
    grant(role, who).is_some()
}

/// A role chosen for a job, unless its session would carry an account that nobody
/// vouches for (a tag-keyed IAM policy would then trust what the user typed).
fn given(map: &RoleMap, job: &Job, who: &Requester<'_>, role: &str, why: String) -> Decision {
    let placeholders = map.roles.get(role).map_or_else(Vec::new, |r| {
        r.account_placeholders(&map.defaults, job.scheduler)
    });
    match who.account_doubt {
        Some(doubt) if !placeholders.is_empty() => Decision::Denied {
            why: format!(
                "role {role} puts the job's account into its session ({}), but {doubt}; the administrators must enforce accounts or take {{account}} out",
                placeholders.join(", ")
            ),
        },
        _ => Decision::Role {
            role: role.to_string(),
            why,
        },
    }
}

/// Roles `who` may request by name in a job of `job`'s partition/queue (sorted).
pub fn requestable<'m>(map: &'m RoleMap, job: &Job, who: &Requester<'_>) -> Vec<&'m str> {
    let default = default_role(map, job).map(|(r, _)| r);
    map.roles
        .iter()
        .filter(|(name, role)| allows(role, who) || Some(name.as_str()) == default)
        .map(|(name, _)| name.as_str())
        .collect()
}

fn listing(names: &[&str]) -> String {
    let mut all: Vec<&str> = names.to_vec();
    all.push("none");
    all.join(", ")
}

/// Decides the role of `job` for `who`.
pub fn resolve(map: &RoleMap, job: &Job, who: &Requester<'_>) -> Decision {
    let default = default_role(map, job);
    match &job.requested {
        Some(RoleRequest::None) => Decision::NoRole {
            why: "the job opted out with --aws-role=none".into(),
        },
        Some(RoleRequest::Named(name)) => {
            let may = requestable(map, job, who);
            if name.starts_with("arn:") {
                return Decision::Denied {
                    why: format!(
                        "--aws-role takes a role name from the site's list, never an ARN; roles you may request: {}",
                        listing(&may)
                    ),
                };
            }
            let Some(role) = map.roles.get(name.as_str()) else {
                return Decision::Denied {
                    why: format!(
                        "there is no role named {} on this cluster; roles you may request: {}",
                        shown(name),
                        listing(&may)
                    ),
                };
            };
            if default.as_ref().is_some_and(|(d, _)| *d == name.as_str()) {
                let why = default.map(|(_, w)| w).unwrap_or_default();
                return given(
                    map,
                    job,
                    who,
                    name,
                    format!("requested with --aws-role; it is {why}"),
                );
            }
            if !role.has_allow_list() {
                return Decision::Denied {
                    why: format!(
                        "role {name} is only given as a partition or queue default, it cannot be requested; roles you may request: {}",
                        listing(&may)
                    ),
                };
            }
            match grant(role, who) {
                Some(g) => given(
                    map,
                    job,
                    who,
                    name,
                    format!("requested with --aws-role by user {}, {g}", who.user),
                ),
                // Said only to a user whose own account is in the list: nobody learns
                // which account would unlock which role.
                None => match (who.account, who.account_doubt) {
                    (Some(a), Some(doubt)) if role.allow_accounts.iter().any(|x| x == a) => {
                        Decision::Denied {
                            why: format!(
                                "role {name} is allowed for account {a}, but {doubt}, so accounts grant no role here; roles you may request: {}",
                                listing(&may)
                            ),
                        }
                    }
                    _ => Decision::Denied {
                        why: format!(
                            "user {} may not use role {name}; roles you may request: {}",
                            who.user,
                            listing(&may)
                        ),
                    },
                },
            }
        }
        None => match default {
            Some((role, why)) => given(map, job, who, role, why),
            None => Decision::NoRole {
                why: "the job did not ask for a role and its partition has no default".into(),
            },
        },
    }
}

/// Whether a job's groups can change a decision: only when some role's `allow_groups`
/// names a group. When none does, the node need not ask the group database (NSS: a module
/// to load, a directory service to ask), which the prolog would otherwise do for every job.
pub fn needs_groups(map: &RoleMap) -> bool {
    map.roles.values().any(|r| !r.allow_groups.is_empty())
}

/// The groups of `user` that `map` may look at: [`groups_of`] if it [`needs_groups`], else
/// none (without asking the group database).
pub fn groups_for(map: &RoleMap, user: &str) -> Result<Vec<String>, nix::Error> {
    if needs_groups(map) {
        groups_of(user)
    } else {
        Ok(Vec::new())
    }
}

/// Names of the groups `user` is a member of, from the system's user and group databases:
/// the primary group of its passwd entry and every group that lists it.
///
/// Never the gid a job or a process runs with: that is the gid of whoever submitted, which
/// can be a group the user has left (a shell started with `sg`/`newgrp` keeps it) or one
/// root chose; it proves nothing about membership. PBS's group argument is checked
/// against the same membership ([`crate::scheduler::pbs`]).
pub fn groups_of(user: &str) -> Result<Vec<String>, nix::Error> {
    let entry = User::from_name(user)?.ok_or(nix::Error::ENOENT)?;
    let cname = std::ffi::CString::new(user).map_err(|_| nix::Error::EINVAL)?;
    let gids = getgrouplist(&cname, entry.gid)?;
    let mut names = Vec::with_capacity(gids.len());
    for g in gids {
        if let Some(group) = Group::from_gid(g)? {
            names.push(group.name);
        }
    }
    Ok(names)
}

/// Whether NSS knows a name: `Ok(false)` when it answers that there is none.
pub type Lookup = fn(&str) -> Result<bool, nix::Error>;

/// `getpwnam` through NSS: files, SSSD, winbind, whatever nsswitch.conf says.
pub fn user_exists(name: &str) -> Result<bool, nix::Error> {
    User::from_name(name).map(|u| u.is_some())
}

/// `getgrnam` through NSS.
pub fn group_exists(name: &str) -> Result<bool, nix::Error> {
    Group::from_name(name).map(|g| g.is_some())
}

/// `--check-config`'s warnings: the allow lists' names this node's NSS does not know, or
/// could not look up. Warnings, not errors: a name may exist only on compute nodes (a
/// login node joined to another domain, a directory that is down). Each says where, and
/// that names match exactly as NSS gives them (SSSD with `use_fully_qualified_names` gives
/// `alice@example.com`, not `alice`).
pub fn unknown_names(map: &RoleMap, users: Lookup, groups: Lookup) -> Vec<String> {
    let mut out = Vec::new();
    for (role_name, role) in &map.roles {
        for (list, kind, names, lookup) in [
            ("allow_users", "user", &role.allow_users, users),
            ("allow_groups", "group", &role.allow_groups, groups),
        ] {
            for n in names {
                let why = match lookup(n) {
                    Ok(true) => continue,
                    Ok(false) => format!("is no {kind} this node's NSS knows"),
                    Err(e) => format!("could not be looked up in NSS ({e})"),
                };
                out.push(format!(
                    "roles.{role_name}.{list}: {} {why}; names match exactly as NSS gives them on the compute nodes (a {kind} that exists only there is fine)",
                    shown(n)
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::job;
    use std::path::Path;

    const MAP: &str = r#"
[sts]
region = "us-east-1"

[roles.ml]
arn = "arn:aws:iam::123456789012:role/ml"
allow_users = ["alice"]
allow_groups = ["ml"]

[roles.acct]
arn = "arn:aws:iam::123456789012:role/acct"
allow_accounts = ["proj-x"]

[roles.shared]
arn = "arn:aws:iam::123456789012:role/shared"

[roles.hidden]
arn = "arn:aws:iam::123456789012:role/hidden"

[partitions.gpu]
default_role = "shared"

[pbs]
default_role = "hidden"

[pbs.queues.batch]
default_role = "shared"
"#;

    fn map() -> RoleMap {
        RoleMap::parse(MAP, Path::new("test.toml")).unwrap()
    }

    fn decide(
        user: &str,
        groups: &[&str],
        account: Option<&str>,
        partition: &str,
        req: Option<&str>,
    ) -> Decision {
        let mut j = job("42");
        j.user = user.into();
        j.partition = Some(partition.into());
        j.account = account.map(Into::into);
        j.requested = req.and_then(RoleRequest::from_value);
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let who = Requester {
            user,
            groups: &groups,
            account,
            account_doubt: None,
        };
        resolve(&map(), &j, &who)
    }

    fn role(d: &Decision) -> Option<&str> {
        match d {
            Decision::Role { role, .. } => Some(role),
            _ => None,
        }
    }

    /// (user, groups, account, partition, request, expected): the expected role, "NONE"
    /// for no role, "DENY" for a refusal.
    type Case<'a> = (
        &'a str,
        &'a [&'a str],
        Option<&'a str>,
        &'a str,
        Option<&'a str>,
        &'a str,
    );

    /// Directory-service names match exactly as NSS gives them: not by case, not by the
    /// short name, not with the domain in another form.
    #[test]
    fn directory_names_match_exactly() {
        let map = RoleMap::parse(
            "[sts]\nregion = \"us-east-1\"\n[roles.ad]\narn = \"arn:aws:iam::123456789012:role/ad\"\nallow_users = [\"alice@example.com\", 'EXAMPLE\\carol']\nallow_groups = [\"domain users\"]\n",
            Path::new("t.toml"),
        )
        .unwrap();
        for (user, groups, expected) in [
            ("alice@example.com", &[][..], true),
            ("EXAMPLE\\carol", &[], true),
            ("bob@example.com", &["domain users"][..], true),
            ("alice", &[], false),
            ("Alice@example.com", &[], false),
            ("alice@EXAMPLE.COM", &[], false),
            ("EXAMPLE\\Carol", &[], false),
            ("carol", &[], false),
            (
                "bob@example.com",
                &["Domain Users", "domain_users", "domain"],
                false,
            ),
        ] {
            let mut j = job("42");
            j.user = user.into();
            j.requested = RoleRequest::from_value("ad");
            let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            let who = Requester {
                user,
                groups: &groups,
                account: None,
                account_doubt: None,
            };
            let got = resolve(&map, &j, &who);
            assert_eq!(
                role(&got) == Some("ad"),
                expected,
                "{user} {groups:?}: {got:?}"
            );
        }
    }

    /// `--check-config` warns of names NSS does not know, and of a lookup that failed, by
    /// role and list; names it knows give nothing.
    #[test]
    fn names_nss_does_not_know_are_warned_of() {
        let map = RoleMap::parse(
            "[sts]\nregion = \"us-east-1\"\n[roles.ad]\narn = \"arn:aws:iam::123456789012:role/ad\"\nallow_users = [\"root\", \"nobody@example.com\"]\nallow_groups = [\"domain users\", \"root\"]\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let users: Lookup = |n| Ok(n == "root");
        let groups: Lookup = |n| {
            if n == "root" {
                Ok(true)
            } else {
                Err(nix::Error::EAGAIN)
            }
        };
        let w = unknown_names(&map, users, groups);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with(
                "roles.ad.allow_users: \"nobody@example.com\" is no user this node's NSS knows;"
            ),
            "{w:?}"
        );
        assert!(
            w[1].starts_with(
                "roles.ad.allow_groups: \"domain users\" could not be looked up in NSS (EAGAIN"
            ),
            "{w:?}"
        );
        // The real lookups: root exists everywhere, this name nowhere.
        assert_eq!(user_exists("root"), Ok(true));
        assert_eq!(group_exists("root"), Ok(true));
        assert_eq!(user_exists("no such user@example.invalid"), Ok(false));
    }

    /// The plugin skips the prolog when `may_get_role` is false; that is only safe if
    /// `resolve` then says NoRole for every user, whatever their groups and account.
    #[test]
    fn a_job_expects_a_record_when_it_names_a_role_or_its_partition_has_a_default() {
        let map = RoleMap::parse(
            "[sts]\nregion = \"us-east-1\"\n[roles.demo]\narn = \"arn:aws:iam::123456789012:role/demo\"\n[partitions.gpu]\ndefault_role = \"demo\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let named = RoleRequest::Named("demo".into());
        for map in [Some(&map), None] {
            assert!(expects_record(map, None, Some(&named)));
            assert!(expects_record(map, Some("gpu"), Some(&named)));
            assert!(!expects_record(map, Some("gpu"), Some(&RoleRequest::None)));
            assert!(!expects_record(map, Some("cpu"), None));
        }
        // The partition default counts only when the map says there is one.
        assert!(expects_record(Some(&map), Some("gpu"), None));
        assert!(!expects_record(None, Some("gpu"), None));
    }

    #[test]
    fn may_get_role_is_false_only_when_every_requester_gets_no_role() {
        let who: [(&str, &[&str], Option<&str>); 4] = [
            ("alice", &[], None),
            ("bob", &["ml"], None),
            ("carol", &[], Some("proj-x")),
            ("mallory", &[], None),
        ];
        let mut skipped = 0;
        for partition in ["gpu", "debug", ""] {
            for req in [
                None,
                Some("none"),
                Some("ml"),
                Some("shared"),
                Some("nosuch"),
                Some("arn:aws:iam::1:role/x"),
            ] {
                let request = req.and_then(RoleRequest::from_value);
                let part = Some(partition).filter(|p| !p.is_empty());
                if may_get_role(&map(), part, request.as_ref()) {
                    continue;
                }
                skipped += 1;
                for (user, groups, account) in who {
                    let d = decide(user, groups, account, partition, req);
                    assert!(
                        matches!(d, Decision::NoRole { .. }),
                        "skipped {partition:?}/{req:?} but {user} gets {d:?}"
                    );
                }
            }
        }
        // gpu+none, debug+{no request, none}, no partition+{no request, none}.
        assert_eq!(skipped, 5);
    }

    #[test]
    fn authorization_matrix() {
        let cases: &[Case] = &[
            // allowed by user name, by group, by account
            ("alice", &[], None, "debug", Some("ml"), "ml"),
            ("carol", &["ml"], None, "debug", Some("ml"), "ml"),
            ("dave", &[], Some("proj-x"), "debug", Some("acct"), "acct"),
            // not on any list
            ("bob", &["analysts"], None, "debug", Some("ml"), "DENY"),
            ("bob", &[], Some("proj-y"), "debug", Some("acct"), "DENY"),
            // a group name is not a user name and vice versa
            ("ml", &[], None, "debug", Some("acct"), "DENY"),
            // unknown role, ARN, odd characters
            ("alice", &[], None, "debug", Some("nope"), "DENY"),
            (
                "alice",
                &[],
                None,
                "debug",
                Some("arn:aws:iam::123456789012:role/ml"),
                "DENY",
            ),
            ("alice", &[], None, "debug", Some("ml\n"), "DENY"),
            // a role without allow list is only a default...
            ("alice", &[], None, "debug", Some("shared"), "DENY"),
            ("alice", &[], None, "debug", Some("hidden"), "DENY"),
            // ...which every job in that partition gets, asked or not
            ("bob", &[], None, "gpu", None, "shared"),
            ("bob", &[], None, "gpu", Some("shared"), "shared"),
            // an explicit allowed request beats the default; none opts out
            ("alice", &[], None, "gpu", Some("ml"), "ml"),
            ("alice", &[], None, "gpu", Some("none"), "NONE"),
            ("bob", &[], None, "gpu", Some("ml"), "DENY"),
            // nothing asked, no default
            ("alice", &[], None, "debug", None, "NONE"),
        ];
        for (user, groups, account, part, req, want) in cases {
            let d = decide(user, groups, *account, part, *req);
            let got = match &d {
                Decision::Role { role, .. } => role.as_str(),
                Decision::NoRole { .. } => "NONE",
                Decision::Denied { .. } => "DENY",
            };
            assert_eq!(
                got, *want,
                "{user} {groups:?} {account:?} {part} {req:?}: {d:?}"
            );
            assert!(!d.reason().is_empty());
        }
    }

    #[test]
    fn denials_list_what_the_user_may_request() {
        let d = decide("alice", &[], None, "gpu", Some("acct"));
        assert_eq!(
            d.reason(),
            "user alice may not use role acct; roles you may request: ml, shared, none"
        );
        let d = decide("bob", &[], None, "debug", Some("arn:aws:iam::1:role/x"));
        assert!(
            d.reason()
                .contains("never an ARN; roles you may request: none"),
            "{d:?}"
        );
    }

    #[test]
    fn hostile_names_are_quoted_and_cut_in_messages() {
        let long = format!("{}\u{1b}[2J", "x".repeat(500));
        let d = decide("alice", &[], None, "debug", Some(&long));
        assert!(!d.reason().contains('\u{1b}'), "{d:?}");
        assert!(d.reason().len() < 300, "{}", d.reason().len());
    }

    #[test]
    fn pbs_queue_defaults_fall_back_to_the_site_default() {
        let m = map();
        let mut j = job("42");
        j.scheduler = crate::job::Scheduler::Pbs;
        j.partition = Some("batch".into());
        assert_eq!(default_role(&m, &j).map(|(r, _)| r), Some("shared"));
        j.partition = Some("other".into());
        assert_eq!(default_role(&m, &j).map(|(r, _)| r), Some("hidden"));
        j.partition = None;
        assert_eq!(default_role(&m, &j).map(|(r, _)| r), Some("hidden"));
        let who = Requester {
            user: "x",
            groups: &[],
            account: None,
            account_doubt: None,
        };
        assert_eq!(role(&resolve(&m, &j, &who)), Some("hidden"));
    }

    #[test]
    fn groups_come_from_the_system() {
        let root = groups_of("root").unwrap();
        assert!(root.contains(&"root".to_string()), "{root:?}");
        assert_eq!(groups_of("no-such-user-aws-role"), Err(nix::Error::ENOENT));
    }

    /// Membership, not the gid a job runs with: a job started with the gid of a group its
    /// user is not in (kept from `sg`, or set by root) gets nothing through that group.
    /// Before, `groups_of(user, job_gid)` put the job's gid into the list and the role
    /// below was granted.
    #[test]
    fn a_jobs_gid_is_not_membership() {
        let me = User::from_uid(nix::unistd::geteuid()).unwrap().unwrap();
        let mine = groups_of(&me.name).unwrap();
        let Some(other) = (1..65535)
            .filter_map(|g| {
                Group::from_gid(nix::unistd::Gid::from_raw(g))
                    .ok()
                    .flatten()
            })
            .find(|g| !mine.contains(&g.name) && is_plain(&g.name))
        else {
            eprintln!(
                "skipped: every group on this machine is one of {}'s",
                me.name
            );
            return;
        };
        let text = format!(
            "[sts]\nregion = \"us-east-1\"\n[roles.ml]\narn = \"arn:aws:iam::123456789012:role/ml\"\nallow_groups = [\"{}\"]\n",
            other.name
        );
        let m = RoleMap::parse(&text, Path::new("test.toml")).unwrap();
        let mut j = job("42");
        j.user = me.name.clone();
        j.gid = other.gid;
        j.requested = RoleRequest::from_value("ml");
        let groups = groups_for(&m, &j.user).unwrap();
        assert!(!groups.contains(&other.name), "{groups:?}");
        let who = Requester {
            user: &j.user,
            groups: &groups,
            account: None,
            account_doubt: None,
        };
        assert!(
            matches!(resolve(&m, &j, &who), Decision::Denied { .. }),
            "group {} granted through the job's gid alone",
            other.name
        );
    }

    fn is_plain(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    }

    #[test]
    fn groups_are_looked_up_only_when_an_allow_list_names_one() {
        let m = map();
        assert!(needs_groups(&m));
        let root = groups_for(&m, "root").unwrap();
        assert!(root.contains(&"root".to_string()), "{root:?}");
        let without = RoleMap::parse(
            "[sts]\nregion = \"us-east-1\"\n[roles.ml]\narn = \"arn:aws:iam::123456789012:role/ml\"\nallow_users = [\"alice\"]\nallow_accounts = [\"proj-x\"]\n",
            Path::new("test.toml"),
        )
        .unwrap();
        assert!(!needs_groups(&without));
        // Not even asked: a user the system does not know has no groups to look up.
        assert_eq!(groups_for(&without, "no-such-user-aws-role"), Ok(vec![]));
        assert!(groups_for(&m, "bad\0name").is_err());
        assert!(groups_for(&without, "bad\0name").is_ok());
        // Without groups in the map, the decision is the same with or without them.
        let mut j = job("42");
        j.user = "alice".into();
        j.requested = RoleRequest::from_value("ml");
        let with = ["ml".to_string()];
        for groups in [&with[..], &[]] {
            let who = Requester {
                user: "alice",
                groups,
                account: None,
                account_doubt: None,
            };
            assert_eq!(role(&resolve(&without, &j, &who)), Some("ml"));
        }
    }

    const ACCOUNT_MAP: &str = r#"
[sts]
region = "us-east-1"
[roles.finance]
arn = "arn:aws:iam::123456789012:role/finance"
allow_accounts = ["finance"]
[roles.tagged]
arn = "arn:aws:iam::123456789012:role/tagged"
allow_users = ["alice"]
tags = { project = "{account}" }
[roles.plain]
arn = "arn:aws:iam::123456789012:role/plain"
allow_users = ["alice"]
"#;

    /// Before, `SLURM_JOB_ACCOUNT=finance` (any `sbatch --account` on a cluster that does
    /// not enforce associations) gave alice role finance, and its text went into the
    /// session tags. While the account is in doubt it grants nothing and no role puts it
    /// into a session; once Slurm vouches for it, both work, and the reason says which
    /// list granted the role.
    #[test]
    fn an_account_nobody_vouches_for_grants_nothing() {
        let m = RoleMap::parse(ACCOUNT_MAP, Path::new("t.toml")).unwrap();
        let mut j = job("42");
        j.user = "alice".into();
        j.account = Some("finance".into());
        let doubt = "this cluster's Slurm does not enforce accounts";
        let ask = |j: &Job, doubt: Option<&str>| {
            resolve(
                &m,
                j,
                &Requester {
                    user: "alice",
                    groups: &[],
                    account: j.account.as_deref(),
                    account_doubt: doubt,
                },
            )
        };
        j.requested = RoleRequest::from_value("finance");
        let d = ask(&j, Some(doubt));
        assert!(matches!(d, Decision::Denied { .. }), "{d:?}");
        assert!(d.reason().contains("accounts grant no role here"), "{d:?}");
        assert!(d.reason().contains(doubt), "{d:?}");
        let d = ask(&j, None);
        assert_eq!(role(&d), Some("finance"));
        assert!(d.reason().contains("allowed for account finance"), "{d:?}");
        // A user whose account is not in the list is not told which one is.
        j.account = Some("physics".into());
        let d = ask(&j, Some(doubt));
        assert!(!d.reason().contains("finance is allowed"), "{d:?}");
        assert!(
            d.reason()
                .starts_with("user alice may not use role finance"),
            "{d:?}"
        );
        // {account} in a tag: refused while in doubt, whoever the user is.
        j.requested = RoleRequest::from_value("tagged");
        let d = ask(&j, Some(doubt));
        assert!(matches!(d, Decision::Denied { .. }), "{d:?}");
        assert!(
            d.reason()
                .contains("puts the job's account into its session (tags)"),
            "{d:?}"
        );
        assert_eq!(role(&ask(&j, None)), Some("tagged"));
        // Roles that do not look at accounts are untouched by the doubt.
        j.requested = RoleRequest::from_value("plain");
        let d = ask(&j, Some(doubt));
        assert_eq!(role(&d), Some("plain"));
        assert!(
            d.reason().contains("allowed by name for user alice"),
            "{d:?}"
        );
    }

    /// Before, `srun --aws-role=analytics` inside a job with role demo was only checked
    /// for permission, then ran with demo without a word.
    #[test]
    fn a_step_cannot_change_the_jobs_role() {
        let ask = |v: &str| RoleRequest::from_value(v);
        assert_eq!(step_conflict("demo", None), None);
        assert_eq!(step_conflict("demo", ask("demo").as_ref()), None);
        let why = step_conflict("demo", ask("analytics").as_ref()).unwrap();
        assert!(
            why.contains("this job has role demo, and this step asked for --aws-role=analytics"),
            "{why}"
        );
        assert!(step_conflict("demo", ask("none").as_ref()).is_some());
        let odd = step_conflict("demo", ask("x\u{1b}[2J").as_ref()).unwrap_or_default();
        assert!(!odd.contains('\u{1b}'), "{odd}");
    }
}
