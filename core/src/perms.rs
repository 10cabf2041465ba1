//! Who could change a file: `lstat` of a path and of every directory above it, and the
//! rules that say when someone other than root could replace or read what root trusts.
//! A leaf module: the store (its base directory), `--check-node` and the STS client (the
//! node's own keys file) all judge paths with it, so they agree.

use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// What kind of file `lstat` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

/// The parts of `lstat` that decide who can change a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub uid: u32,
    /// Permission bits, with setuid/setgid/sticky (`& 0o7777`).
    pub mode: u32,
}

/// What was found at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Missing,
    Found(Meta),
    Error(Errno),
}

/// A path, what is there, and the directories above it (from `/` down to its parent).
/// Whoever can write to one of those directories can replace what is below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathView {
    pub path: PathBuf,
    /// Where the path leads when symbolic links were followed and it differs.
    pub real: Option<PathBuf>,
    pub seen: Seen,
    pub ancestors: Vec<(PathBuf, Seen)>,
}

/// `lstat(path)`.
pub fn seen(path: &Path) -> Seen {
    use std::os::unix::fs::MetadataExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) => {
            let t = m.file_type();
            let kind = if t.is_dir() {
                Kind::Dir
            } else if t.is_file() {
                Kind::File
            } else if t.is_symlink() {
                Kind::Symlink
            } else {
                Kind::Other
            };
            Seen::Found(Meta {
                kind,
                uid: m.uid(),
                mode: m.mode() & 0o7777,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Seen::Missing,
        Err(e) => Seen::Error(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
    }
}

/// Looks at `path` and every directory above it. With `follow`, symbolic links in the path
/// itself are followed (a binary may be a link); without, a link is reported as one (the
/// store refuses a base directory that is a link). Either way the directories above are
/// those of the real location: the deepest that exists is resolved, and those below it
/// that do not exist are listed as missing.
pub fn inspect(path: &Path, follow: bool) -> PathView {
    let mut real = None;
    let mut target = path.to_path_buf();
    if follow {
        if let Ok(r) = path.canonicalize() {
            if r != path {
                real = Some(r.clone());
            }
            target = r;
        }
    }
    let mut missing = Vec::new();
    let mut existing = target.parent().map(Path::to_path_buf);
    while let Some(dir) = existing.clone() {
        if seen(&dir) != Seen::Missing {
            break;
        }
        existing = dir.parent().map(Path::to_path_buf);
        missing.push(dir);
    }
    let mut ancestors = Vec::new();
    if let Some(dir) = existing {
        let dir = dir.canonicalize().unwrap_or(dir);
        let mut chain: Vec<PathBuf> = dir.ancestors().map(Path::to_path_buf).collect();
        chain.reverse();
        ancestors.extend(chain.into_iter().map(|d| {
            let s = seen(&d);
            (d, s)
        }));
    }
    ancestors.extend(missing.into_iter().rev().map(|d| (d, Seen::Missing)));
    PathView {
        path: path.to_path_buf(),
        real,
        seen: seen(&target),
        ancestors,
    }
}

/// `group`, `others` or `group and others`, when `mode` lets them write.
pub(crate) fn writers(mode: u32) -> Option<&'static str> {
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => Some("group and others"),
        (true, false) => Some("group"),
        (false, true) => Some("others"),
        (false, false) => None,
    }
}

/// Why a directory above something root trusts would let someone else replace it. A
/// sticky directory writable by all (`/tmp`) is safe when `sticky_ok`: nobody else can
/// rename or remove root's entries in it. The store refuses a base directory for the same
/// reasons (`store::Store`), so that `--check-node` and the prolog agree.
pub fn ancestor_problems(ancestors: &[(PathBuf, Seen)], sticky_ok: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (dir, seen) in ancestors {
        match seen {
            Seen::Found(m) if m.uid != 0 && m.uid != nix::unistd::geteuid().as_raw() => {
                out.push(format!("{} is owned by uid {}", dir.display(), m.uid))
            }
            Seen::Found(m) => {
                if let Some(who) = writers(m.mode) {
                    let safe = sticky_ok && m.mode & 0o1000 != 0;
                    if !safe {
                        out.push(format!(
                            "{} is writable by {who} (mode {:04o})",
                            dir.display(),
                            m.mode
                        ));
                    }
                }
            }
            Seen::Error(e) => out.push(format!("cannot inspect {}: {}", dir.display(), e.desc())),
            Seen::Missing => {}
        }
    }
    out
}

/// Why the node's own keys file (`[sts] credentials_file`) must not be used: anyone but
/// root could read or change it, or replace it through a directory above it. `None` when
/// it is root's alone (a missing file is the caller's to report).
pub fn secret_file_problems(path: &Path) -> Option<String> {
    let view = inspect(path, true);
    // A sticky directory (/tmp) is fine: the file's own owner and mode are checked below.
    let mut problems = ancestor_problems(&view.ancestors, true);
    match view.seen {
        Seen::Found(m) if m.kind != Kind::File => problems.push("it is not a regular file".into()),
        Seen::Found(m) => {
            if m.uid != 0 && m.uid != nix::unistd::geteuid().as_raw() {
                problems.push(format!("it is owned by uid {}, not root", m.uid));
            }
            if m.mode & 0o077 != 0 {
                problems.push(format!(
                    "its mode {:04o} lets group or others read or write it (it must be 0600 or 0400)",
                    m.mode
                ));
            }
        }
        Seen::Missing => return None,
        Seen::Error(e) => problems.push(format!("cannot inspect it: {}", e.desc())),
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Before, `[sts] credentials_file` was used whatever its mode: a node key readable by
    /// every user (or replaceable through a writable directory) went unnoticed.
    #[test]
    fn the_nodes_keys_must_be_roots_alone() {
        let t = tempfile::tempdir().unwrap();
        let keys = t.path().join("node-credentials");
        std::fs::write(&keys, "[default]\n").unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(secret_file_problems(&keys), None);
        for (mode, what) in [
            (0o644, "mode 0644"),
            (0o640, "mode 0640"),
            (0o602, "mode 0602"),
        ] {
            std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(mode)).unwrap();
            let p = secret_file_problems(&keys).unwrap();
            assert!(p.contains(what), "{p}");
        }
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let p = secret_file_problems(&keys).unwrap();
        assert!(p.contains("is writable by group and others"), "{p}");
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(secret_file_problems(&t.path().join("absent")), None);
        assert!(secret_file_problems(t.path())
            .unwrap()
            .contains("not a regular file"));
    }
}
