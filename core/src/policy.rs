//! Which role a job gets, decided on the node as root from the site map.
//!
//! The requested name comes from `SPANK_AWS_ROLE`, which the user controls, so it is
//! re-authorized here against the map; the submit-time check in the plugin is only a
//! friendly early error. Every decision carries a reason that can be shown to the user.

use nix::unistd::{getgrouplist, Gid, Group};

use crate::job::{Job, RoleRequest, Scheduler};
use crate::map::{Role, RoleMap};

/// Who is asking, as far as the allow lists are concerned.
#[derive(Debug, Clone)]
pub struct Requester<'a> {
    pub user: &'a str,
    pub groups: &'a [String],
    pub account: Option<&'a str>,
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
    let queue = job.partition.as_deref();
    match job.scheduler {
        Scheduler::Slurm => queue.and_then(|p| {
            map.partitions.get(p).map(|d| {
                (
                    d.default_role.as_str(),
                    format!("the default role of partition {p}"),
                )
            })
        }),
        Scheduler::Pbs => match queue.and_then(|q| map.pbs.queues.get(q).map(|d| (q, d))) {
            Some((q, d)) => Some((
                d.default_role.as_str(),
                format!("the default role of queue {q}"),
            )),
            None => map
                .pbs
                .default_role
                .as_deref()
                .map(|r| (r, "the site's default PBS role".to_string())),
        },
    }
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

/// Whether the allow lists of `role` admit `who`.
pub fn allows(role: &Role, who: &Requester<'_>) -> bool {
    role.allow_users.iter().any(|u| u == who.user)
        || role.allow_groups.iter().any(|g| who.groups.contains(g))
        || who
            .account
            .is_some_and(|a| role.allow_accounts.iter().any(|x| x == a))
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
                return Decision::Role {
                    role: name.clone(),
                    why: format!("requested with --aws-role; it is {why}"),
                };
            }
            if !role.has_allow_list() {
                return Decision::Denied {
                    why: format!(
                        "role {name} is only given as a partition or queue default, it cannot be requested; roles you may request: {}",
                        listing(&may)
                    ),
                };
            }
            if allows(role, who) {
                Decision::Role {
                    role: name.clone(),
                    why: format!(
                        "requested with --aws-role and allowed for user {}",
                        who.user
                    ),
                }
            } else {
                Decision::Denied {
                    why: format!(
                        "user {} may not use role {name}; roles you may request: {}",
                        who.user,
                        listing(&may)
                    ),
                }
            }
        }
        None => match default {
            Some((role, why)) => Decision::Role {
                role: role.to_string(),
                why,
            },
            None => Decision::NoRole {
                why: "the job did not ask for a role and its partition has no default".into(),
            },
        },
    }
}

/// A user-supplied value, quoted and cut so it cannot flood or forge a message.
fn shown(v: &str) -> String {
    format!("\"{}\"", crate::text::one_line(v, 80))
}

/// Whether a job's groups can change a decision: only when some role's `allow_groups`
/// names a group. When none does, the node need not ask the group database (NSS: a module
/// to load, a directory service to ask), which the prolog would otherwise do for every job.
pub fn needs_groups(map: &RoleMap) -> bool {
    map.roles.values().any(|r| !r.allow_groups.is_empty())
}

/// The groups of `user` that `map` may look at: [`groups_of`] if it [`needs_groups`], else
/// none (without asking the group database).
pub fn groups_for(map: &RoleMap, user: &str, gid: Gid) -> Result<Vec<String>, nix::Error> {
    if needs_groups(map) {
        groups_of(user, gid)
    } else {
        Ok(Vec::new())
    }
}

/// Names of the groups `user` belongs to (primary `gid` included), from the system's
/// group database.
pub fn groups_of(user: &str, gid: Gid) -> Result<Vec<String>, nix::Error> {
    let cname = std::ffi::CString::new(user).map_err(|_| nix::Error::EINVAL)?;
    let gids = getgrouplist(&cname, gid)?;
    let mut names = Vec::with_capacity(gids.len());
    for g in gids {
        if let Some(group) = Group::from_gid(g)? {
            names.push(group.name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::tests::job;
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

    /// The plugin skips the prolog when `may_get_role` is false; that is only safe if
    /// `resolve` then says NoRole for every user, whatever their groups and account.
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
        j.scheduler = Scheduler::Pbs;
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
        };
        assert_eq!(role(&resolve(&m, &j, &who)), Some("hidden"));
    }

    #[test]
    fn groups_come_from_the_system() {
        let root = groups_of("root", Gid::from_raw(0)).unwrap();
        assert!(root.contains(&"root".to_string()), "{root:?}");
    }

    #[test]
    fn groups_are_looked_up_only_when_an_allow_list_names_one() {
        let m = map();
        assert!(needs_groups(&m));
        let root = groups_for(&m, "root", Gid::from_raw(0)).unwrap();
        assert!(root.contains(&"root".to_string()), "{root:?}");
        let without = RoleMap::parse(
            "[sts]\nregion = \"us-east-1\"\n[roles.ml]\narn = \"arn:aws:iam::123456789012:role/ml\"\nallow_users = [\"alice\"]\nallow_accounts = [\"proj-x\"]\n",
            Path::new("test.toml"),
        )
        .unwrap();
        assert!(!needs_groups(&without));
        // Not even asked: a user the system does not know has no groups to look up.
        assert_eq!(
            groups_for(&without, "no-such-user-aws-role", Gid::from_raw(4242)),
            Ok(vec![])
        );
        assert!(groups_for(&m, "bad\0name", Gid::from_raw(0)).is_err());
        assert!(groups_for(&without, "bad\0name", Gid::from_raw(0)).is_ok());
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
            };
            assert_eq!(role(&resolve(&without, &j, &who)), Some("ml"));
        }
    }
}
