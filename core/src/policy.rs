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
            map.partitions
                .get(p)
                .map(|d| (d.default_role.as_str(), format!("the default role of partition {p}")))
        }),
        Scheduler::Pbs => match queue.and_then(|q| map.pbs.queues.get(q).map(|d| (q, d))) {
            Some((q, d)) => Some((d.default_role.as_str(), format!("the default role of queue {q}"))),
            None => map
                .pbs
                .default_role
                .as_deref()
                .map(|r| (r, "the site's default PBS role".to_string())),
        },
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
                    why: format!("requested with --aws-role and allowed for user {}", who.user),
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
    let cut: String = v.chars().take(80).collect();
    let q = format!("{cut:?}");
    if v.chars().count() > 80 {
        format!("{q}…")
    } else {
        q
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
