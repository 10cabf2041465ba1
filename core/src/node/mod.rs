//! Is this compute node set up the way aws-role needs? `aws-role-prolog --check-node`, run
//! by an administrator as root: the role map, the base of the job directories, the
//! binaries that Slurm and the plugin run, whether an unprivileged user can reach the EC2
//! instance metadata service (IMDS, which hands out the node's own role), and Slurm's
//! `PrologFlags` and plugin stack.
//!
//! Each check has a probe, which looks at the system and records what it saw as plain data
//! ([`PathView`], [`Reach`], [`SlurmView`]), and a decision, a pure function from that
//! data to [`Finding`]s. Only the probes touch the system; the decisions are unit-tested.
//! One file per part of the node: `files.rs` (the map, the base dir, the binaries),
//! `imds.rs`, `slurm.rs` (PrologFlags, the plugin stack), `site.rs` (what the site's own
//! settings imply); this file holds the findings and [`check`], which runs them all.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid};

use crate::map::{MapError, RoleMap, IMDS_ADDRS};
use crate::perms::writers;
mod files;
mod imds;
pub mod site;
mod slurm;

pub use files::*;
pub use imds::*;
pub use slurm::*;

pub use crate::perms::{ancestor_problems, inspect, seen, Kind, Meta, PathView, Seen};
use crate::scheduler::slurm::{show_config_value, ScontrolError};

/// Where the plugin finds the prolog when its plugstack line has no `prolog=`.
pub const PLUGIN_PROLOG: &str = "/usr/libexec/aws-role/aws-role-prolog";
/// Where the plugin finds the epilog when its plugstack line has no `epilog=`.
pub const PLUGIN_EPILOG: &str = "/usr/libexec/aws-role/aws-role-epilog";
/// The plugin's file name, as a plugstack line names it.
pub const PLUGIN_SO: &str = "aws_role.so";

/// How long a connection to IMDS may take before it counts as not reachable. IMDS answers
/// in about a millisecond; a firewall that drops instead of rejecting costs this long.
pub const IMDS_TIMEOUT: Duration = Duration::from_secs(1);

const LOCKDOWN: &str = "see aws-role-imds-lockdown";

/// How bad a finding is. `--check-node` exits 2 with any `Fail`, else 1 with any `Warn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    /// Worth knowing, never a problem by itself.
    Info,
    Warn,
    Fail,
}

impl Level {
    pub fn label(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    /// What was checked, e.g. `base dir`.
    pub check: &'static str,
    pub detail: String,
}

fn finding(level: Level, check: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        level,
        check,
        detail: detail.into(),
    }
}

/// 2 if any check failed, else 1 if any warned, else 0.
pub fn exit_code(findings: &[Finding]) -> u8 {
    if findings.iter().any(|f| f.level == Level::Fail) {
        2
    } else if findings.iter().any(|f| f.level == Level::Warn) {
        1
    } else {
        0
    }
}

/// `OK    role map: ...`, one line per finding. Details quote files and other programs'
/// output, so control characters are escaped.
pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let _ = writeln!(
            out,
            "{:<4}  {}: {}",
            f.level.label(),
            f.check,
            crate::text::one_line(&f.detail, 1000)
        );
    }
    out
}

// ---------------------------------------------------------------------------------------
// All of it

/// What to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// The role map (`--config`).
    pub config: PathBuf,
    /// Overrides the map's `[node] base_dir` (`--base-dir`).
    pub base_dir: Option<PathBuf>,
    /// This program (`std::env::current_exe()`).
    pub exe: Option<PathBuf>,
    /// `$SLURM_CONF`, else `/etc/slurm/slurm.conf`.
    pub slurm_conf: PathBuf,
}

/// Runs every probe and returns every finding, in a fixed order.
pub fn check(opts: &Options) -> Vec<Finding> {
    let loaded = RoleMap::load(&opts.config);
    let mut out = map_findings(&loaded);
    let map = loaded.as_ref().ok();

    let base = crate::map::base_dir(opts.base_dir.as_deref(), map);
    out.push(base_dir_finding(&inspect(&base, false)));

    let scontrol = map.map_or_else(
        || crate::map::SlurmSettings::default().scontrol,
        |m| m.slurm.scontrol.clone(),
    );
    let timeout = map.map_or_else(
        || crate::map::SlurmSettings::default().scontrol_timeout,
        |m| m.slurm.scontrol_timeout,
    );
    let slurm_conf_text = std::fs::read_to_string(&opts.slurm_conf);
    let plugstack = read_plugstack(&plugstack_path(
        &opts.slurm_conf,
        slurm_conf_text.as_deref().ok(),
    ));
    let show_config = scontrol
        .exists()
        .then(|| crate::scheduler::slurm::run_scontrol(&scontrol, &["show", "config"], timeout));
    let slurm = SlurmView {
        scontrol,
        show_config,
        slurm_conf: opts.slurm_conf.clone(),
        slurm_conf_text,
        plugstack,
    };
    let plugin = if slurm.present() {
        find_plugin(&slurm.plugstack)
    } else {
        None
    };

    for b in binaries(
        opts.exe.as_deref(),
        plugin.as_ref(),
        slurm.slurm_conf_text.as_deref().ok(),
        map,
    ) {
        out.push(binary_finding(&b, &inspect(&b.path, true)));
    }

    out.extend(imds_findings(map));
    out.extend(slurm_findings(&slurm, plugin.as_ref(), &opts.config));
    out.push(site::base_mount_finding(&base, &site::base_mount(&base)));
    if let Some(map) = map {
        out.extend(site::node_keys_finding(map));
        if slurm.present() {
            out.extend(site::accounts_finding(map, slurm.show_config.as_ref()));
        }
    }
    if let Some(Ok(show)) = &slurm.show_config {
        out.extend(site::prolog_timeout_finding(
            show,
            plugin.as_ref().and_then(|p| p.timeout),
        ));
    }
    out
}

/// As root: `nobody`'s reach (FAIL if it connects and the map does not say jobs may) and
/// root's (information). Otherwise: this user's reach, since it is itself unprivileged.
fn imds_findings(map: Option<&RoleMap>) -> Vec<Finding> {
    let intended = map.is_some_and(|m| m.node.jobs_may_reach_imds);
    let addrs = map.map_or_else(|| IMDS_ADDRS.to_vec(), |m| m.sts.imds_addrs());
    let pair =
        |results: Vec<Result<Reach, ProbeError>>| -> Vec<(SocketAddr, Result<Reach, ProbeError>)> {
            addrs.iter().copied().zip(results).collect()
        };
    let me = nix::unistd::geteuid();
    if !me.is_root() {
        let who = format!("uid {me} (this user)");
        return vec![imds_user_finding(
            &who,
            &pair(probe_connect(&addrs, None, IMDS_TIMEOUT)),
            intended,
        )];
    }
    let user = match nix::unistd::User::from_name("nobody") {
        Ok(Some(u)) => {
            let who = format!("user nobody (uid {})", u.uid);
            imds_user_finding(
                &who,
                &pair(probe_connect(&addrs, Some((u.uid, u.gid)), IMDS_TIMEOUT)),
                intended,
            )
        }
        Ok(None) => finding(
            Level::Warn,
            IMDS_USER,
            "not tested: there is no user named nobody to test as",
        ),
        Err(e) => finding(
            Level::Warn,
            IMDS_USER,
            format!("not tested: cannot look up the user nobody: {}", e.desc()),
        ),
    };
    let root = imds_root_finding(
        &pair(probe_connect(&addrs, None, IMDS_TIMEOUT)),
        map.and_then(|m| m.sts.credentials_file.as_deref()),
    );
    vec![user, root]
}

#[cfg(test)]
mod tests;
