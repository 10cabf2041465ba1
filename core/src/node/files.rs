//! The node's files: the role map, the base of the job directories, and the binaries
//! that Slurm, PBS and the plugin run as root.

use super::*;

pub(super) const MAP: &str = "role map";

/// OK with a summary, or one FAIL per problem (`file:line:column: message`).
pub fn map_findings(loaded: &Result<RoleMap, MapError>) -> Vec<Finding> {
    match loaded {
        Ok(map) => vec![finding(
            Level::Ok,
            MAP,
            format!(
                "{}: valid, {} role(s), {} partition default(s)",
                map.source.display(),
                map.roles.len(),
                map.partitions.len()
            ),
        )],
        Err(e) => e
            .to_string()
            .lines()
            .map(|line| finding(Level::Fail, MAP, line))
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Files and directories (inspected by crate::perms)

pub(super) const BASE_DIR: &str = "base dir";

/// The base of the job directories (`[node] base_dir`): a real directory, root's, that
/// nobody else can write to, under directories nobody else can write to; or missing under
/// a parent that exists (the prolog creates it, but not its parents).
pub fn base_dir_finding(view: &PathView) -> Finding {
    let base = view.path.display();
    // A sticky parent (`/tmp`) is judged below when the base is missing: then anyone could
    // create it first.
    let problems = ancestor_problems(&view.ancestors, true);
    if !problems.is_empty() {
        return finding(
            Level::Fail,
            BASE_DIR,
            format!(
                "{base}: {}: someone other than root could replace the job directories",
                problems.join("; ")
            ),
        );
    }
    match view.seen {
        Seen::Found(Meta {
            kind: Kind::Symlink,
            ..
        }) => finding(
            Level::Fail,
            BASE_DIR,
            format!("{base} is a symbolic link: the prolog refuses to follow it"),
        ),
        Seen::Found(Meta { kind, .. }) if kind != Kind::Dir => finding(
            Level::Fail,
            BASE_DIR,
            format!("{base} is not a directory"),
        ),
        Seen::Found(m) if m.uid != 0 => finding(
            Level::Fail,
            BASE_DIR,
            format!(
                "{base} is owned by uid {}, not root: the prolog refuses it, and that user could replace any job's credentials",
                m.uid
            ),
        ),
        Seen::Found(m) => match writers(m.mode) {
            Some(who) => finding(
                Level::Fail,
                BASE_DIR,
                format!(
                    "{base} is writable by {who} (mode {:04o}): the prolog refuses it",
                    m.mode
                ),
            ),
            None => finding(
                Level::Ok,
                BASE_DIR,
                format!("{base}: root, mode {:04o}", m.mode),
            ),
        },
        Seen::Error(e) => finding(
            Level::Fail,
            BASE_DIR,
            format!("cannot inspect {base}: {}", e.desc()),
        ),
        Seen::Missing => match view.ancestors.last() {
            Some((parent, Seen::Found(m))) if m.kind == Kind::Dir => {
                if writers(m.mode).is_some() {
                    finding(
                        Level::Warn,
                        BASE_DIR,
                        format!(
                            "{base} does not exist yet, and any user can create it first in {} (mode {:04o}); the prolog would then refuse it and jobs would get no credentials",
                            parent.display(),
                            m.mode
                        ),
                    )
                } else {
                    finding(
                        Level::Ok,
                        BASE_DIR,
                        format!("{base} does not exist yet; the first prolog creates it (root, 0711)"),
                    )
                }
            }
            Some((parent, _)) => finding(
                Level::Fail,
                BASE_DIR,
                format!(
                    "{base} does not exist, nor does {} (or it is not a directory): the prolog creates the base directory but not its parents",
                    parent.display()
                ),
            ),
            None => finding(Level::Fail, BASE_DIR, format!("{base} is not a usable path")),
        },
    }
}

pub(super) const BINARY: &str = "binary";

/// Who runs a binary, which decides what it must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunBy {
    /// Slurm, the plugin or PBS run it as root.
    Root,
    /// Every job's user runs it (the credential helper).
    Users,
}

/// A binary that something runs, and why it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    pub path: PathBuf,
    /// E.g. `the plugin's job_prolog`.
    pub why: String,
    pub run_by: RunBy,
}

/// Which binaries to check: this program; those the plugin's plugstack line (or its
/// defaults) and slurm.conf's `Prolog=`/`Epilog=`/`TaskProlog=` run; when neither names
/// one, the epilog installed next to this program; and the map's credential helper.
pub fn binaries(
    exe: Option<&Path>,
    plugin: Option<&PluginLine>,
    slurm_conf: Option<&str>,
    map: Option<&RoleMap>,
) -> Vec<Binary> {
    let mut out: Vec<Binary> = Vec::new();
    let mut add = |path: PathBuf, why: String, run_by: RunBy| {
        if !out.iter().any(|b| b.path == path) {
            out.push(Binary { path, why, run_by });
        }
    };
    if let Some(exe) = exe {
        add(exe.to_path_buf(), "this program".into(), RunBy::Root);
    }
    let mut named = false;
    if let Some(p) = plugin {
        let prolog = p.prolog.clone().unwrap_or_else(|| PLUGIN_PROLOG.into());
        let epilog = p.epilog.clone().unwrap_or_else(|| PLUGIN_EPILOG.into());
        add(prolog, "the plugin's job_prolog".into(), RunBy::Root);
        add(epilog, "the plugin's job_epilog".into(), RunBy::Root);
        named = true;
    }
    if let Some(conf) = slurm_conf {
        for key in ["Prolog", "Epilog", "TaskProlog"] {
            for v in conf_values(conf, key) {
                if v.contains("aws-role") {
                    let run_by = if key == "TaskProlog" {
                        RunBy::Users
                    } else {
                        RunBy::Root
                    };
                    add(PathBuf::from(v), format!("slurm.conf {key}="), run_by);
                    named = true;
                }
            }
        }
    }
    if !named {
        if let Some(dir) = exe.and_then(Path::parent) {
            add(
                dir.join("aws-role-epilog"),
                "the epilog next to this program".into(),
                RunBy::Root,
            );
        }
    }
    if let Some(m) = map {
        add(
            m.node.credential_helper.clone(),
            "[node] credential_helper, run by every job".into(),
            RunBy::Users,
        );
    }
    out
}

/// A binary must be a regular file that only root can change, in directories only root can
/// change: whoever can change it runs code as root, or as every job's user. One that job
/// users run must be executable by them.
pub fn binary_finding(b: &Binary, view: &PathView) -> Finding {
    let mut name = format!("{} ({})", view.path.display(), b.why);
    if let Some(real) = &view.real {
        let _ = write!(name, " -> {}", real.display());
    }
    let meta = match view.seen {
        Seen::Missing => return finding(Level::Fail, BINARY, format!("{name} does not exist")),
        Seen::Error(e) => {
            return finding(
                Level::Fail,
                BINARY,
                format!("{name}: cannot inspect it: {}", e.desc()),
            )
        }
        Seen::Found(m) => m,
    };
    let mut problems = Vec::new();
    if meta.kind != Kind::File {
        problems.push("it is not a regular file".to_string());
    }
    if meta.uid != 0 {
        problems.push(format!("it is owned by uid {}", meta.uid));
    }
    if let Some(who) = writers(meta.mode) {
        problems.push(format!("it is writable by {who}"));
    }
    problems.extend(ancestor_problems(&view.ancestors, true));
    if !problems.is_empty() {
        return finding(
            Level::Fail,
            BINARY,
            format!(
                "{name}: {}: whoever can change it runs code as root or as other users",
                problems.join("; ")
            ),
        );
    }
    if b.run_by == RunBy::Users && meta.mode & 0o001 == 0 {
        return finding(
            Level::Fail,
            BINARY,
            format!("{name}: mode {:04o}: jobs' users cannot run it", meta.mode),
        );
    }
    if meta.mode & 0o100 == 0 {
        return finding(
            Level::Fail,
            BINARY,
            format!("{name}: mode {:04o}: not executable", meta.mode),
        );
    }
    finding(
        Level::Ok,
        BINARY,
        format!("{name}: root, mode {:04o}", meta.mode),
    )
}
