//! Whether a job's account is the scheduler's word, or only its user's.
//!
//! Slurm checks the account a job names (`sbatch --account`) against the user's
//! associations only when `AccountingStorageEnforce` includes `associations` (which
//! `limits`, `qos`, `wckeys` and `safe` imply, slurm.conf(5)) and accounting goes to slurmdbd. Anywhere else the
//! account is whatever the user typed: granting a role by account (`allow_accounts`), or
//! putting `{account}` into a session name, SourceIdentity or tag (which IAM policies key
//! on), would then let any user pick the role or forge the tag. PBS (OpenPBS, PBS Pro,
//! Torque) never checks `qsub -A` against anything the node can see, so under PBS the
//! account is never trusted.
//!
//! The node asks `scontrol show config` and keeps the answer for [`FRESH_FOR`] in
//! `<base>/.slurm-accounts.json` (root 0600), so a burst of prologs asks slurmctld once;
//! the refresher asks again before the answer is half that old. A node that cannot ask
//! trusts no account. Nothing is asked when no role depends on accounts.

use std::time::{Duration, SystemTime};

use crate::creds::rfc3339;
use crate::job::{Job, Scheduler};
use crate::map::RoleMap;
use crate::store::Store;

/// The node's cached answer, in the store's base directory (never a job directory).
pub const CACHE: &str = ".slurm-accounts.json";
/// How long a cached answer is used by the prolog.
pub const FRESH_FOR: Duration = Duration::from_secs(300);

/// What Slurm said about accounting.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// `AccountingStorageEnforce`, as scontrol printed it.
    pub enforce: String,
    /// `AccountingStorageType`.
    pub storage: String,
    /// RFC 3339: when it was asked.
    pub checked: String,
}

impl Verdict {
    /// Whether Slurm rejects a job whose account is not one of its user's associations.
    pub fn enforced(&self) -> bool {
        let implies_associations = self
            .enforce
            .split(',')
            .map(|w| w.trim().to_ascii_lowercase())
            .any(|w| {
                matches!(
                    w.as_str(),
                    "associations" | "limits" | "qos" | "safe" | "wckeys" | "all"
                )
            });
        implies_associations && self.storage.trim() == "accounting_storage/slurmdbd"
    }

    /// `None` when accounts can be trusted, else why not (worded for the job's output).
    pub fn doubt(&self) -> Option<String> {
        if self.enforced() {
            return None;
        }
        Some(format!(
            "this cluster's Slurm does not enforce accounts (AccountingStorageEnforce = {}, AccountingStorageType = {}), so a job's account is whatever its user typed",
            crate::text::one_line(&self.enforce, 80),
            crate::text::one_line(&self.storage, 80)
        ))
    }
}

/// Reads the accounting settings out of `scontrol show config` output.
pub fn parse_show_config(text: &str, checked: SystemTime) -> Result<Verdict, String> {
    let value = |key| crate::scheduler::slurm::show_config_value(text, key).map(str::to_string);
    let enforce = value("AccountingStorageEnforce")
        .ok_or("scontrol show config printed no AccountingStorageEnforce")?;
    let storage = value("AccountingStorageType").unwrap_or_default();
    Ok(Verdict {
        enforce,
        storage,
        checked: rfc3339(checked),
    })
}

/// Slurm's verdict: the cached one if younger than `fresh_for`, else asked anew (and
/// cached; a cache that cannot be written is only logged).
pub fn slurm_verdict(
    map: &RoleMap,
    store: &Store,
    now: SystemTime,
    fresh_for: Duration,
) -> Result<Verdict, String> {
    let dir = store.node_dir().map_err(|e| e.to_string());
    if let Ok(dir) = &dir {
        if let Ok(Some(v)) = dir.read_record::<Verdict>(CACHE) {
            let age = humantime::parse_rfc3339(&v.checked)
                .ok()
                .and_then(|t| now.duration_since(t).ok());
            if age.is_some_and(|a| a < fresh_for) {
                return Ok(v);
            }
        }
    }
    let out = crate::scheduler::slurm::run_scontrol(
        &map.slurm.scontrol,
        &["show", "config"],
        map.slurm.scontrol_timeout,
    )
    .map_err(|e| e.to_string())?;
    let verdict = parse_show_config(&out, now)?;
    match &dir {
        Ok(dir) => {
            if let Err(e) = dir.write_record(CACHE, &verdict) {
                tracing::warn!("cannot keep Slurm's accounting settings: {e}");
            }
        }
        Err(e) => tracing::warn!("cannot keep Slurm's accounting settings: {e}"),
    }
    Ok(verdict)
}

/// Why Slurm jobs' accounts cannot be trusted on this node, `None` when they can (or when
/// no role of `map` depends on accounts, and nothing is asked).
pub fn slurm_doubt(
    map: &RoleMap,
    store: &Store,
    now: SystemTime,
    fresh_for: Duration,
) -> Option<String> {
    if map.account_roles(Scheduler::Slurm).is_empty() {
        return None;
    }
    match slurm_verdict(map, store, now, fresh_for) {
        Ok(v) => v.doubt(),
        Err(e) => Some(format!(
            "the node could not ask Slurm whether it enforces accounts ({}), so it trusts no account",
            crate::text::one_line(&e, 200)
        )),
    }
}

/// The doubt about `job`'s account: its scheduler's own when it never vouches for accounts
/// (PBS), else what asking finds (`ask`: Slurm's [`slurm_doubt`]).
pub fn doubt_for(job: &Job, ask: impl FnOnce() -> Option<String>) -> Option<String> {
    match crate::scheduler::of(job.scheduler).fixed_account_doubt() {
        Some(doubt) => Some(doubt.to_string()),
        None => ask(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(enforce: &str, storage: &str) -> Verdict {
        let text = format!(
            "Configuration data as of 2026-12-02T10:00:00\nAccountingStorageBackupHost = (null)\nAccountingStorageEnforce = {enforce}\nAccountingStorageHost   = db\nAccountingStorageType   = {storage}\nAccountingStorageUser   = N/A\n"
        );
        parse_show_config(&text, SystemTime::UNIX_EPOCH).unwrap()
    }

    #[test]
    fn only_enforced_associations_with_slurmdbd_are_trusted() {
        let dbd = "accounting_storage/slurmdbd";
        for trusted in [
            "associations",
            "associations,limits",
            "limits,qos,safe",
            "qos",
            "safe",
            "wckeys",
            "ASSOCIATIONS",
        ] {
            assert!(verdict(trusted, dbd).enforced(), "{trusted}");
            assert_eq!(verdict(trusted, dbd).doubt(), None);
        }
        for doubtful in [
            "none",
            "nojobs",
            "nosteps",
            "nojobs,nosteps",
            "",
            "associationsX",
        ] {
            let v = verdict(doubtful, dbd);
            assert!(!v.enforced(), "{doubtful}");
            assert!(
                v.doubt().unwrap().contains("does not enforce accounts"),
                "{doubtful}"
            );
        }
        // Enforcement needs the accounting database.
        assert!(!verdict("associations", "accounting_storage/none").enforced());
        assert!(!verdict("associations", "(null)").enforced());
    }

    #[test]
    fn output_without_the_setting_is_an_error() {
        let e =
            parse_show_config("AccountingStorageType = x\n", SystemTime::UNIX_EPOCH).unwrap_err();
        assert!(e.contains("AccountingStorageEnforce"), "{e}");
    }

    /// A fresh cached answer is used without asking scontrol (the map names a scontrol
    /// that does not exist); a stale one is not, and an unanswerable node trusts nothing.
    #[test]
    fn the_cache_is_used_while_fresh_and_a_failed_question_means_doubt() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().join("base"));
        let text = "[sts]\nregion = \"us-east-1\"\n[slurm]\nscontrol = \"/nonexistent/scontrol\"\n[roles.fin]\narn = \"arn:aws:iam::123456789012:role/fin\"\nallow_accounts = [\"finance\"]\n";
        let map = RoleMap::parse(text, std::path::Path::new("t.toml")).unwrap();
        let now = SystemTime::now();
        let fresh = Verdict {
            checked: rfc3339(now - Duration::from_secs(10)),
            ..verdict("associations", "accounting_storage/slurmdbd")
        };
        store
            .node_dir()
            .unwrap()
            .write_record(CACHE, &fresh)
            .unwrap();
        assert_eq!(slurm_doubt(&map, &store, now, FRESH_FOR), None);
        let later = now + FRESH_FOR;
        let doubt = slurm_doubt(&map, &store, later, FRESH_FOR).unwrap();
        assert!(doubt.contains("could not ask Slurm"), "{doubt}");
        // The cache is no job: a scan of the store does not list it.
        assert!(store.scan().unwrap().names().is_empty());
    }
}
