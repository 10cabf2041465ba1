//! `--check-node` checks of what a hostile user could exploit in the site's own set-up:
//! accounts Slurm does not vouch for, a base directory sharing `/run` with the system,
//! node keys others could read, and a plugin timeout above Slurm's. Each decision is a
//! pure function of what its probe saw.

use std::path::Path;

use super::{finding, Finding, Level};
use crate::job::Scheduler;
use crate::map::RoleMap;
use crate::scheduler::slurm::ScontrolError;

const ACCOUNTS: &str = "job accounts";
const BASE_MOUNT: &str = "base dir file system";
const NODE_KEYS: &str = "node credentials";
const TIMEOUT: &str = "Slurm PrologEpilogTimeout";

/// FAIL when a role depends on job accounts that Slurm does not enforce (such jobs are
/// refused); nothing when no role depends on accounts.
pub fn accounts_finding(
    map: &RoleMap,
    show_config: Option<&Result<String, ScontrolError>>,
) -> Option<Finding> {
    let roles = map.account_roles(Scheduler::Slurm);
    if roles.is_empty() {
        return None;
    }
    let which = format!(
        "role{} {} depend{} on job accounts (allow_accounts or {{account}})",
        if roles.len() == 1 { "" } else { "s" },
        roles.join(", "),
        if roles.len() == 1 { "s" } else { "" }
    );
    let verdict = match show_config {
        None => return Some(finding(Level::Warn, ACCOUNTS, format!("{which}, and scontrol is missing: the prolog will trust no account"))),
        Some(Err(e)) => {
            return Some(finding(
                Level::Warn,
                ACCOUNTS,
                format!("{which}, and Slurm's accounting settings cannot be read ({e}): the prolog trusts no account it cannot check"),
            ))
        }
        Some(Ok(out)) => crate::accounts::parse_show_config(out, std::time::SystemTime::now()),
    };
    Some(match verdict {
        Ok(v) => match v.doubt() {
            None => finding(
                Level::Ok,
                ACCOUNTS,
                format!("{which}; Slurm enforces them (AccountingStorageEnforce = {})", v.enforce),
            ),
            Some(doubt) => finding(
                Level::Fail,
                ACCOUNTS,
                format!("{which}, but {doubt}: jobs that would get a role through them are refused; add associations to AccountingStorageEnforce (with slurmdbd), or grant by user or group"),
            ),
        },
        Err(e) => finding(Level::Warn, ACCOUNTS, format!("{which}; {e}")),
    })
}

/// What the base directory sits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseMount {
    /// A tmpfs mounted exactly there, of this size in bytes.
    OwnTmpfs {
        bytes: u64,
    },
    /// A file system it shares with its parent (`/run` itself), or one that is no tmpfs.
    Shared {
        tmpfs: bool,
    },
    Missing,
    Error(String),
}

/// Looks at where `base` lives (statfs, and whether it is a mount point).
pub fn base_mount(base: &Path) -> BaseMount {
    use std::os::unix::fs::MetadataExt;
    let md = match std::fs::metadata(base) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BaseMount::Missing,
        Err(e) => return BaseMount::Error(e.to_string()),
    };
    let parent_dev = base
        .parent()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.dev());
    let fs = match nix::sys::statfs::statfs(base) {
        Ok(fs) => fs,
        Err(e) => return BaseMount::Error(e.to_string()),
    };
    let tmpfs = fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC;
    if tmpfs && parent_dev != Some(md.dev()) {
        BaseMount::OwnTmpfs {
            bytes: fs.blocks() * fs.block_size() as u64,
        }
    } else {
        BaseMount::Shared { tmpfs }
    }
}

/// WARN unless the base is a tmpfs of its own: otherwise what jobs leave there shares
/// space with `/run` (systemd, slurmd, every daemon's sockets and PID files).
pub fn base_mount_finding(base: &Path, seen: &BaseMount) -> Finding {
    let b = base.display();
    match seen {
        BaseMount::OwnTmpfs { bytes } => finding(
            Level::Ok,
            BASE_MOUNT,
            format!("{b} is a tmpfs of its own ({} MiB)", bytes / (1024 * 1024)),
        ),
        BaseMount::Shared { tmpfs } => finding(
            Level::Warn,
            BASE_MOUNT,
            format!(
                "{b} is not a file system of its own ({}): enable the package's aws-role-tmpfs.service (a size-limited tmpfs), so that nothing there can fill the node's /run",
                if *tmpfs { "it shares its parent's tmpfs" } else { "it is no tmpfs" }
            ),
        ),
        BaseMount::Missing => finding(
            Level::Warn,
            BASE_MOUNT,
            format!("{b} does not exist yet: enable the package's aws-role-tmpfs.service to put it on a size-limited tmpfs"),
        ),
        BaseMount::Error(e) => finding(Level::Warn, BASE_MOUNT, format!("cannot inspect {b}: {e}")),
    }
}

/// FAIL when the node's keys file can be read or replaced by anyone but root (the prolog
/// then refuses to use it), or is missing.
pub fn node_keys_finding(map: &RoleMap) -> Option<Finding> {
    let file = map.sts.credentials_file.as_deref()?;
    let f = file.display();
    Some(if !file.exists() {
        finding(
            Level::Fail,
            NODE_KEYS,
            format!("{f} does not exist: the prolog cannot call STS"),
        )
    } else {
        match crate::perms::secret_file_problems(file) {
            Some(p) => finding(
                Level::Fail,
                NODE_KEYS,
                format!("{f}: {p}: anyone who reads it can assume every job role; the prolog refuses to use it"),
            ),
            None => finding(Level::Ok, NODE_KEYS, format!("{f}: root's alone")),
        }
    })
}

/// INFO when the plugin's `timeout=` will be lowered under Slurm's PrologEpilogTimeout
/// (it does so itself, [`crate::scheduler::slurm::plugin_limit_under`]); nothing when Slurm has none.
pub fn prolog_timeout_finding(show_config: &str, plugin_timeout: Option<u64>) -> Option<Finding> {
    let value = crate::scheduler::slurm::show_config_value(show_config, "PrologEpilogTimeout")?;
    let secs: u32 = value.parse().ok().filter(|&s| s > 0 && s < 65534)?;
    let ours = plugin_timeout.unwrap_or(crate::scheduler::slurm::PLUGIN_TIMEOUT.as_secs());
    let limit = crate::scheduler::slurm::plugin_limit_under(secs).as_secs();
    Some(if limit < ours {
        finding(
            Level::Info,
            TIMEOUT,
            format!("PrologEpilogTimeout={secs} is not above the plugin's timeout={ours}: the plugin ends a slow prolog after {limit} s, before Slurm would (Slurm drains the node when it does)"),
        )
    } else {
        finding(
            Level::Ok,
            TIMEOUT,
            format!("PrologEpilogTimeout={secs}, above the plugin's timeout={ours}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(roles: &str) -> RoleMap {
        RoleMap::parse(
            &format!("[sts]\nregion = \"us-east-1\"\n{roles}"),
            Path::new("t.toml"),
        )
        .unwrap()
    }

    #[test]
    fn accounts_slurm_does_not_enforce_fail_the_check() {
        let m = map("[roles.fin]\narn = \"arn:aws:iam::123456789012:role/fin\"\nallow_accounts = [\"finance\"]\n");
        let show = |e: &str| {
            Ok(format!("AccountingStorageEnforce = {e}\nAccountingStorageType = accounting_storage/slurmdbd\n"))
        };
        let f = accounts_finding(&m, Some(&show("none"))).unwrap();
        assert_eq!(f.level, Level::Fail, "{f:?}");
        assert!(
            f.detail.contains("role fin depends on job accounts"),
            "{f:?}"
        );
        assert_eq!(
            accounts_finding(&m, Some(&show("associations,limits")))
                .unwrap()
                .level,
            Level::Ok
        );
        assert_eq!(accounts_finding(&m, None).unwrap().level, Level::Warn);
        let plain =
            map("[roles.p]\narn = \"arn:aws:iam::123456789012:role/p\"\nallow_users = [\"a\"]\n");
        assert_eq!(accounts_finding(&plain, Some(&show("none"))), None);
        let tagged = map("[roles.t]\narn = \"arn:aws:iam::123456789012:role/t\"\nallow_users = [\"a\"]\ntags = { project = \"{account}\" }\n");
        assert_eq!(
            accounts_finding(&tagged, Some(&show("none")))
                .unwrap()
                .level,
            Level::Fail
        );
    }

    #[test]
    fn a_base_sharing_run_is_a_warning() {
        let base = Path::new("/run/aws-role");
        assert_eq!(
            base_mount_finding(base, &BaseMount::OwnTmpfs { bytes: 64 << 20 }).level,
            Level::Ok
        );
        for seen in [
            BaseMount::Shared { tmpfs: true },
            BaseMount::Shared { tmpfs: false },
            BaseMount::Missing,
        ] {
            let f = base_mount_finding(base, &seen);
            assert_eq!(f.level, Level::Warn, "{seen:?}");
            assert!(f.detail.contains("aws-role-tmpfs.service"), "{f:?}");
        }
        // The probe, on what this machine has: a fresh directory shares its parent's.
        let t = tempfile::tempdir().unwrap();
        assert!(matches!(
            base_mount(t.path()),
            BaseMount::Shared { .. } | BaseMount::OwnTmpfs { .. }
        ));
        assert_eq!(base_mount(&t.path().join("absent")), BaseMount::Missing);
    }

    #[test]
    fn node_keys_others_can_read_fail() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let keys = t.path().join("keys");
        std::fs::write(&keys, "[default]\n").unwrap();
        let m = map(&format!("credentials_file = \"{}\"\n", keys.display()));
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(node_keys_finding(&m).unwrap().level, Level::Fail);
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(node_keys_finding(&m).unwrap().level, Level::Ok);
        std::fs::remove_file(&keys).unwrap();
        assert_eq!(node_keys_finding(&m).unwrap().level, Level::Fail);
        assert_eq!(node_keys_finding(&map("")), None);
    }

    #[test]
    fn a_short_prolog_epilog_timeout_is_reported() {
        assert_eq!(
            prolog_timeout_finding("PrologFlags = Alloc\n", Some(30)),
            None
        );
        assert_eq!(
            prolog_timeout_finding("PrologEpilogTimeout = 65534\n", Some(30)),
            None
        );
        let f = prolog_timeout_finding("PrologEpilogTimeout = 20\n", Some(30)).unwrap();
        assert_eq!(f.level, Level::Info);
        assert!(f.detail.contains("after 18 s"), "{f:?}");
        assert_eq!(
            prolog_timeout_finding("PrologEpilogTimeout = 120\n", Some(30))
                .unwrap()
                .level,
            Level::Ok
        );
        // Exactly the plugin's rule (slurm::plugin_limit_under): under 11 s it allows
        // 10 s, under 20 s 18 s, so timeout=10 and timeout=18 are not lowered.
        for (secs, ours) in [(11, 10), (20, 18)] {
            let f = prolog_timeout_finding(&format!("PrologEpilogTimeout = {secs}\n"), Some(ours));
            assert_eq!(f.unwrap().level, Level::Ok, "{secs} {ours}");
        }
    }
}
