//! The per-job credential directory on a node: `<base>/<jobid>/`.
//!
//! Layout and rules (the node's root writes, the job's user reads):
//! - `<base>` (default `/run/aws-role`): owned by us (root), mode 0711, so users can reach
//!   their own job's files but cannot list other jobs.
//! - `<base>/<jobid>/`: owned by us, 0711; the job's user cannot create, rename or delete
//!   anything in it.
//! - Files: all root's. The credential files and the failure record are 0640 with a
//!   POSIX ACL that lets the job's user read them ([`Reader`]): the user can neither change
//!   what they say nor grow them to fill the node's `/run`. The state record is 0600 root
//!   only, because root-side tools act on it.
//!
//! Every operation works on directory file descriptors (`openat`, `mkdirat`, `renameat`,
//! `unlinkat`) with `O_NOFOLLOW`: no path a user can influence, and no symlink, is ever
//! followed. Files are written under an exclusive temporary name, given their ACL,
//! `fsync`ed and renamed into place, so a reader sees the old file or the new one, never a part.
//!
//! Root-side writers (the prolog, the refresher, the epilog) serialize on an exclusive
//! `flock` of the job directory ([`JobDir::lock`]): the epilog never races a refresh into
//! leaving a file behind, and a refresh never overwrites what a requeued job's prolog wrote.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, Flock, FlockArg, OFlag, AT_FDCWD};
use nix::sys::stat::{fchmod, fstat, mkdirat, Mode, SFlag};
use nix::unistd::{fchown, geteuid, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::job::JobId;

/// credential_process JSON (`Version` 1 with `Expiration`).
pub const CREDENTIALS_JSON: &str = "credentials.json";
/// Static-key INI for tools that cannot run a credential_process.
pub const CREDENTIALS_INI: &str = "credentials";
/// AWS config file: `credential_process` and region.
pub const CONFIG: &str = "config";
/// Root-only record of what was provisioned (role, session, expiry).
pub const STATE: &str = "state.json";
/// The job user's record of why the job's role could not be provided.
pub const FAILURE: &str = "failure.json";

/// Largest record we read back; anything bigger is not ours.
const MAX_READ: u64 = 64 * 1024;

/// A filesystem problem, with the path it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {op} failed: {errno}")]
    Sys {
        path: PathBuf,
        op: &'static str,
        errno: Errno,
    },
    #[error("{path}: refusing to use it: {why}")]
    Unsafe { path: PathBuf, why: String },
    #[error("{path}: cannot write: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn sys<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(Errno) -> StoreError + 'a {
    move |errno| StoreError::Sys {
        path: path.to_path_buf(),
        op,
        errno,
    }
}

/// The credential store of one node.
#[derive(Debug, Clone)]
pub struct Store {
    base: PathBuf,
}

/// Who may read a written file besides root: the job's user.
///
/// The file stays root's (mode 0640 with a POSIX ACL `user:<uid>:r--` and an empty group
/// class), so the user can read it but never write, append to, truncate, chmod or grow
/// it: a job cannot fill the node's `/run` through its own credential files. Only the
/// owner of a file may change its mode or ACL, and root owns it. On a file system
/// without POSIX ACLs (tmpfs, ext4, xfs all have them) the file is the user's 0600
/// instead, with a warning; `--check-node` says so too.
#[derive(Debug, Clone, Copy)]
pub struct Reader {
    pub uid: Uid,
    /// Only for a file system without ACLs, where the file is then chowned to the user.
    pub gid: Gid,
}

impl Store {
    pub fn new(base: impl Into<PathBuf>) -> Store {
        Store { base: base.into() }
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Where a job's files live (for the variables that point the SDKs at them).
    pub fn job_path(&self, id: &JobId) -> PathBuf {
        self.base.join(id.dir_name())
    }

    /// Opens the base directory, creating it (0711) if needed, and checks that it is a real
    /// directory owned by us that nobody else can write to.
    fn open_base(&self, create: bool) -> Result<Option<OwnedFd>, StoreError> {
        let path = &self.base;
        // O_NOFOLLOW guards the last component only. Whoever can write to a directory above
        // the base can swap the whole tree under it, after we have written: such a base is
        // refused as a whole (`--check-node` reports the same problems).
        let problems =
            crate::perms::ancestor_problems(&crate::perms::inspect(path, false).ancestors, true);
        if !problems.is_empty() {
            return Err(StoreError::Unsafe {
                path: path.clone(),
                why: format!(
                    "{}: someone other than root could replace it",
                    problems.join("; ")
                ),
            });
        }
        if create {
            match mkdirat(AT_FDCWD, path, Mode::from_bits_truncate(0o711)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(sys(path, "mkdir")(e)),
            }
        }
        let fd = match openat(AT_FDCWD, path, dir_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if !create => return Ok(None),
            Err(e) => return Err(sys(path, "open")(e)),
        };
        check_dir(&fd, path)?;
        Ok(Some(fd))
    }

    /// The base directory itself (created if needed), for the node's own small records:
    /// names starting with `.`, which no [`Store::scan`] lists as a job.
    pub fn node_dir(&self) -> Result<JobDir, StoreError> {
        let fd = self.open_base(true)?.ok_or_else(|| StoreError::Unsafe {
            path: self.base.clone(),
            why: "it vanished while it was created".into(),
        })?;
        Ok(JobDir {
            fd,
            path: self.base.clone(),
        })
    }

    /// Opens a job's directory, creating it when `create` is set. `Ok(None)`: no such job.
    pub fn open_job(&self, id: &JobId, create: bool) -> Result<Option<JobDir>, StoreError> {
        let Some(base) = self.open_base(create)? else {
            return Ok(None);
        };
        self.open_in(&base, &id.dir_name(), create)
    }

    /// The job directories of this store, listed once, in name order, for tools that walk
    /// every job on the node (the refresher, `--status`). Nothing is opened yet: each
    /// directory is opened by [`Scan::open`] when its turn comes and closed when its
    /// [`JobDir`] is dropped, so a walk holds a bounded number of descriptors however many
    /// jobs there are (one per directory would pass the default limit of 1,024 with a few
    /// thousand failure records). Entries that are not names we create are left out.
    /// `Err` only when the base itself cannot be used.
    pub fn scan(&self) -> Result<Scan, StoreError> {
        let Some(base) = self.open_base(false)? else {
            return Ok(Scan {
                store: self.clone(),
                base: None,
                names: Vec::new(),
            });
        };
        let mut names = list(&base, &self.base)?;
        names.retain(|n| is_dir_name(n));
        names.sort();
        Ok(Scan {
            store: self.clone(),
            base: Some(base),
            names,
        })
    }

    /// Opens the job directory named `name` (an entry of [`Store::scan`]); `Ok(None)`
    /// when it is gone or is not a name we create.
    pub fn open_entry(&self, name: &str) -> Result<Option<JobDir>, StoreError> {
        if !is_dir_name(name) {
            return Ok(None);
        }
        let Some(base) = self.open_base(false)? else {
            return Ok(None);
        };
        self.open_in(&base, name, false)
    }

    fn open_in(
        &self,
        base: &OwnedFd,
        name: &str,
        create: bool,
    ) -> Result<Option<JobDir>, StoreError> {
        let path = self.base.join(name);
        if create {
            match mkdirat(base, name, Mode::from_bits_truncate(0o711)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(sys(&path, "mkdir")(e)),
            }
        }
        let fd = match openat(base, name, dir_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if !create => return Ok(None),
            Err(e) => return Err(sys(&path, "open")(e)),
        };
        check_dir(&fd, &path)?;
        // The umask may have narrowed the mode at mkdir; make it exactly what we document.
        fchmod(&fd, Mode::from_bits_truncate(0o711)).map_err(sys(&path, "chmod"))?;
        Ok(Some(JobDir { fd, path }))
    }

    /// Removes a job's directory and everything in it. Idempotent: a job with nothing on
    /// this node is not an error. Returns how many files were removed.
    pub fn remove_job(&self, id: &JobId) -> Result<usize, StoreError> {
        self.remove_entry(&id.dir_name())
    }

    /// [`Store::remove_job`] by directory name (an entry of [`Store::jobs`]). Waits for
    /// the directory's lock, so a refresh in progress finishes (or sees the job gone) first.
    pub fn remove_entry(&self, name: &str) -> Result<usize, StoreError> {
        if !is_dir_name(name) {
            return Ok(0);
        }
        let Some(base) = self.open_base(false)? else {
            return Ok(0);
        };
        let path = self.base.join(name);
        let fd = match openat(&base, name, dir_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(0),
            // Not a directory (or a symlink): only root can create entries here, but remove
            // whatever it is rather than leave it.
            Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => {
                unlinkat(&base, name, UnlinkatFlags::NoRemoveDir).map_err(sys(&path, "unlink"))?;
                return Ok(1);
            }
            Err(e) => return Err(sys(&path, "open")(e)),
        };
        // Held until the directory is gone: whoever waits on it next finds it removed.
        let fd = match Flock::lock(fd, FlockArg::LockExclusive) {
            Ok(locked) => locked,
            Err((_, e)) => return Err(sys(&path, "lock")(e)),
        };
        let names = list(&fd, &path)?;
        let mut removed = 0;
        for entry in &names {
            match unlinkat(&*fd, entry.as_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) => removed += 1,
                Err(Errno::ENOENT) => {}
                // A directory: we never create one, but an empty one must not block cleanup.
                Err(Errno::EISDIR) => unlinkat(&*fd, entry.as_str(), UnlinkatFlags::RemoveDir)
                    .map_err(sys(&path.join(entry), "rmdir"))?,
                Err(e) => return Err(sys(&path.join(entry), "unlink")(e)),
            }
        }
        match unlinkat(&base, name, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(removed),
            Err(e) => Err(sys(&path, "rmdir")(e)),
        }
    }
}

/// The job directories of a store at one moment (see [`Store::scan`]).
#[derive(Debug)]
pub struct Scan {
    store: Store,
    base: Option<OwnedFd>,
    names: Vec<String>,
}

impl Scan {
    /// The directory names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Opens one directory of the scan. `Ok(None)`: it was removed meanwhile. An `Err`
    /// concerns this entry alone (not a directory, not ours, …): callers log it and go on
    /// with the next one, so one odd entry never stops the walk.
    pub fn open(&self, name: &str) -> Result<Option<JobDir>, StoreError> {
        match &self.base {
            Some(base) => self.store.open_in(base, name, false),
            None => Ok(None),
        }
    }
}

/// An open job directory; all file operations are relative to its descriptor.
#[derive(Debug)]
pub struct JobDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// An exclusive hold on a job directory (see [`JobDir::lock`]); released on drop.
#[derive(Debug)]
pub struct DirLock(#[allow(dead_code)] Flock<OwnedFd>);

/// Whether `name` could be a job directory we created (see `JobId::dir_name`: every job
/// id starts with a digit). Names starting with `.` are the node's own files, never a job.
fn is_dir_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

static TEMP_COUNTER: AtomicU32 = AtomicU32::new(0);

impl JobDir {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the directory's exclusive lock (blocking), which the prolog, the refresher and
    /// the epilog hold while they change the directory. Released on drop. `Ok(None)`: the
    /// directory was removed (by the epilog) before the lock was ours.
    pub fn lock(&self) -> Result<Option<DirLock>, StoreError> {
        let dup = self.fd.try_clone().map_err(|source| StoreError::Io {
            path: self.path.clone(),
            source,
        })?;
        let lock = Flock::lock(dup, FlockArg::LockExclusive)
            .map_err(|(_, e)| sys(&self.path, "lock")(e))?;
        // A removed directory keeps working through its descriptor but has no links left;
        // anything written into it now would be lost, or worse, linger unseen.
        let st = fstat(&*lock).map_err(sys(&self.path, "stat"))?;
        if st.st_nlink == 0 {
            return Ok(None);
        }
        Ok(Some(DirLock(lock)))
    }

    /// Atomically replaces `name` with `contents`: ours, mode 0600, readable also by
    /// `reader` (see [`Reader`]) when that is somebody else.
    pub fn write(&self, name: &str, contents: &[u8], reader: Reader) -> Result<(), StoreError> {
        let target = self.path.join(name);
        let (tmp, file) = self.create_temp(name)?;
        let result = (|| {
            fchmod(&file, Mode::from_bits_truncate(0o600)).map_err(sys(&target, "chmod"))?;
            if reader.uid != geteuid() {
                grant_read(&file, &target, reader)?;
            }
            let mut f = File::from(file);
            let io = |source| StoreError::Io {
                path: target.clone(),
                source,
            };
            f.write_all(contents).map_err(io)?;
            f.sync_all().map_err(io)?;
            renameat(&self.fd, tmp.as_str(), &self.fd, name).map_err(sys(&target, "rename"))?;
            // Make the rename itself durable.
            nix::unistd::fsync(&self.fd).map_err(sys(&self.path, "fsync"))
        })();
        if result.is_err() {
            let _ = unlinkat(&self.fd, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        result
    }

    /// Creates a fresh temporary file with `O_EXCL|O_NOFOLLOW`, 0600, ours.
    fn create_temp(&self, name: &str) -> Result<(String, OwnedFd), StoreError> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        for _ in 0..16 {
            let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let tmp = format!(".{name}.{}.{n}.tmp", std::process::id());
            match openat(
                &self.fd,
                tmp.as_str(),
                flags,
                Mode::from_bits_truncate(0o600),
            ) {
                Ok(fd) => return Ok((tmp, fd)),
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(sys(&self.path.join(&tmp), "create")(e)),
            }
        }
        Err(StoreError::Unsafe {
            path: self.path.clone(),
            why: "could not find a free temporary name".into(),
        })
    }

    /// Removes `name` if present.
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        match unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(sys(&self.path.join(name), "unlink")(e)),
        }
    }

    /// Reads `name` if it exists and is a regular file (never through a symlink).
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path.join(name);
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = match openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(sys(&path, "open")(e)),
        };
        let st = fstat(&fd).map_err(sys(&path, "stat"))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Err(StoreError::Unsafe {
                path,
                why: "not a regular file".into(),
            });
        }
        let mut buf = Vec::new();
        File::from(fd)
            .take(MAX_READ)
            .read_to_end(&mut buf)
            .map_err(|source| StoreError::Io { path, source })?;
        Ok(Some(buf))
    }
}

/// The extended attribute that holds a file's access ACL.
const ACL_XATTR: &str = "system.posix_acl_access";

/// The value of [`ACL_XATTR`] for "the owner reads and writes, `reader` reads, nobody
/// else anything". Its layout is the kernel's (`include/uapi/linux/posix_acl_xattr.h`):
/// a little-endian u32 version (2), then one entry per tag in ascending tag order, each
/// a u16 tag, a u16 permission set and a u32 id (the uid for `ACL_USER`, else -1). The
/// mask is `r--`, so the group class gets nothing that the named user does not.
/// No crate sets an ACL on an open descriptor (exacl and posix-acl take paths, which
/// would reopen a name a user might race); tests read it back with the real `getfacl`.
fn read_acl(reader: Uid) -> Vec<u8> {
    const VERSION: u32 = 2;
    const USER_OBJ: u16 = 0x01;
    const USER: u16 = 0x02;
    const GROUP_OBJ: u16 = 0x04;
    const MASK: u16 = 0x10;
    const OTHER: u16 = 0x20;
    const READ: u16 = 4;
    const WRITE: u16 = 2;
    const NO_ID: u32 = u32::MAX;
    let entries = [
        (USER_OBJ, READ | WRITE, NO_ID),
        (USER, READ, reader.as_raw()),
        (GROUP_OBJ, 0, NO_ID),
        (MASK, READ, NO_ID),
        (OTHER, 0, NO_ID),
    ];
    let mut value = VERSION.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        value.extend(tag.to_le_bytes());
        value.extend(perm.to_le_bytes());
        value.extend(id.to_le_bytes());
    }
    value
}

static NO_ACL_WARNED: std::sync::Once = std::sync::Once::new();

/// Lets `reader` read `file` (ours, 0600) through an ACL; where the file system has no
/// ACLs, gives the file to `reader` instead (see [`Reader`]).
fn grant_read(file: &OwnedFd, target: &Path, reader: Reader) -> Result<(), StoreError> {
    match rustix::fs::fsetxattr(
        file,
        ACL_XATTR,
        &read_acl(reader.uid),
        rustix::fs::XattrFlags::empty(),
    ) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::OPNOTSUPP => {
            NO_ACL_WARNED.call_once(|| {
                tracing::warn!(
                    "{}: the file system has no POSIX ACLs: job files are given to the job's user, who could then grow them; mount the base on a tmpfs of its own",
                    target.display()
                )
            });
            fchown(file, Some(reader.uid), Some(reader.gid)).map_err(sys(target, "chown"))
        }
        Err(e) => Err(sys(target, "set the read ACL of")(Errno::from_raw(
            e.raw_os_error(),
        ))),
    }
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// A directory we write credentials into must be ours and writable by nobody else.
fn check_dir(fd: &impl AsFd, path: &Path) -> Result<(), StoreError> {
    let st = fstat(fd).map_err(sys(path, "stat"))?;
    let unsafe_dir = |why: String| StoreError::Unsafe {
        path: path.to_path_buf(),
        why,
    };
    if st.st_uid != geteuid().as_raw() {
        return Err(unsafe_dir(format!(
            "it is owned by uid {}, not by uid {}",
            st.st_uid,
            geteuid()
        )));
    }
    if st.st_mode & 0o022 != 0 {
        return Err(unsafe_dir(format!(
            "mode {:o} lets group or others write to it",
            st.st_mode & 0o7777
        )));
    }
    Ok(())
}

/// Entry names of a directory, without `.` and `..`.
fn list(fd: &OwnedFd, path: &Path) -> Result<Vec<String>, StoreError> {
    let dup = fd.try_clone().map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut dir = Dir::from_fd(dup).map_err(sys(path, "opendir"))?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(sys(path, "readdir"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::pbs::parse_job_id as pbs_id;
    use crate::scheduler::slurm::parse_job_id as slurm_id;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use crate::testing::{me, temp_store as store};

    #[test]
    fn creates_private_dirs_and_0600_files() {
        let (_t, s) = store();
        let id = slurm_id("42").unwrap();
        let d = s.open_job(&id, true).unwrap().unwrap();
        d.write(CREDENTIALS_JSON, b"{}", me()).unwrap();
        let base = std::fs::metadata(s.base()).unwrap();
        assert_eq!(base.permissions().mode() & 0o7777, 0o711);
        let job = std::fs::metadata(s.job_path(&id)).unwrap();
        assert_eq!(job.permissions().mode() & 0o7777, 0o711);
        let f = std::fs::metadata(s.job_path(&id).join(CREDENTIALS_JSON)).unwrap();
        assert_eq!(f.permissions().mode() & 0o7777, 0o600);
        assert_eq!(f.uid(), geteuid().as_raw());
        assert_eq!(d.read(CREDENTIALS_JSON).unwrap().unwrap(), b"{}");
    }

    /// The job's user reads its files but cannot write, append to, truncate or chmod
    /// them. Before, they were the user's 0600, and a job could append until the node's
    /// `/run` was full (and every other job's prolog and refresh failed with ENOSPC).
    #[test]
    fn the_jobs_user_reads_its_files_and_cannot_grow_them() {
        if !geteuid().is_root() {
            eprintln!("needs root (another uid must read); run as root, as CI does");
            return;
        }
        use std::os::unix::process::CommandExt;
        let (t, s) = store();
        // The test tree is root's 0700: let others reach the job directory.
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let id = slurm_id("43").unwrap();
        let d = s.open_job(&id, true).unwrap().unwrap();
        let nobody = Reader {
            uid: Uid::from_raw(65534),
            gid: Gid::from_raw(65534),
        };
        d.write(CREDENTIALS_JSON, b"{\"secret\": 1}", nobody)
            .unwrap();
        let path = s.job_path(&id).join(CREDENTIALS_JSON);
        let md = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (md.uid(), md.mode() & 0o7777),
            (0, 0o640),
            "root's, group class = mask r--"
        );
        let as_nobody = |script: &str| {
            std::process::Command::new("/bin/sh")
                .args(["-c", script, "sh", path.to_str().unwrap()])
                .uid(65534)
                .gid(65534)
                .output()
                .unwrap()
        };
        let read = as_nobody("cat \"$1\"");
        assert!(read.status.success(), "{read:?}");
        assert_eq!(read.stdout, b"{\"secret\": 1}");
        for attempt in ["echo more >> \"$1\"", ": > \"$1\"", "chmod 0666 \"$1\""] {
            let o = as_nobody(attempt);
            assert!(!o.status.success(), "{attempt}: {o:?}");
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"secret\": 1}");
        // Another uid reads nothing.
        let other = std::process::Command::new("/bin/cat")
            .arg(&path)
            .uid(65533)
            .gid(65533)
            .output()
            .unwrap();
        assert!(!other.status.success(), "{other:?}");
        // What the real getfacl says (when installed).
        if let Ok(o) = std::process::Command::new("getfacl")
            .args(["-cn"])
            .arg(&path)
            .output()
        {
            let text = String::from_utf8_lossy(&o.stdout);
            for line in [
                "user::rw-",
                "user:65534:r--",
                "group::---",
                "mask::r--",
                "other::---",
            ] {
                assert!(text.lines().any(|l| l == line), "{line} in {text}");
            }
        }
    }

    #[test]
    fn rewrite_replaces_whole_file_and_leaves_no_temp() {
        let (_t, s) = store();
        let id = slurm_id("7").unwrap();
        let d = s.open_job(&id, true).unwrap().unwrap();
        d.write(CONFIG, b"first version, longer", me()).unwrap();
        d.write(CONFIG, b"second", me()).unwrap();
        assert_eq!(d.read(CONFIG).unwrap().unwrap(), b"second");
        let names = list(&d.fd, d.path()).unwrap();
        assert_eq!(names, vec![CONFIG.to_string()]);
    }

    #[test]
    fn symlinks_are_never_followed() {
        let (t, s) = store();
        let id = slurm_id("9").unwrap();
        let d = s.open_job(&id, true).unwrap().unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        std::os::unix::fs::symlink(&victim, s.job_path(&id).join(STATE)).unwrap();
        // Reading through the link is refused...
        assert!(d.read(STATE).is_err());
        // ...and writing replaces the link itself, never the file it points to.
        d.write(STATE, b"new", me()).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        // A symlinked job directory is refused too.
        let other = slurm_id("10").unwrap();
        std::os::unix::fs::symlink(t.path(), s.job_path(&other)).unwrap();
        assert!(s.open_job(&other, true).is_err());
        // Removal unlinks the link, not the directory it points to.
        assert_eq!(s.remove_job(&other).unwrap(), 1);
        assert!(victim.exists());
    }

    #[test]
    fn a_base_under_a_directory_others_can_write_is_refused() {
        // Others could rename the base's parent and put their own tree in its place.
        let (t, _) = store();
        let parent = t.path().join("open");
        std::fs::create_dir(&parent).unwrap();
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o777)).unwrap();
        let s = Store::new(parent.join("jobs"));
        let e = s.open_job(&slurm_id("1").unwrap(), true).unwrap_err();
        assert!(
            e.to_string()
                .contains("is writable by group and others (mode 0777)"),
            "{e}"
        );
        assert!(!parent.join("jobs").exists(), "nothing is created under it");
        // A sticky one (/tmp) is safe: nobody else can rename root's entries in it.
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(s.open_job(&slurm_id("1").unwrap(), true).unwrap().is_some());
    }

    #[test]
    fn a_base_under_another_users_directory_is_refused() {
        if !geteuid().is_root() {
            eprintln!("needs root (chown); run as root, as CI does");
            return;
        }
        let (t, _) = store();
        let theirs = t.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let s = Store::new(theirs.join("jobs"));
        let e = s.open_job(&slurm_id("1").unwrap(), true).unwrap_err();
        assert!(e.to_string().contains("is owned by uid 65534"), "{e}");
    }

    #[test]
    fn a_writable_base_is_refused() {
        let (_t, s) = store();
        std::fs::create_dir(s.base()).unwrap();
        std::fs::set_permissions(s.base(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = s.open_job(&slurm_id("1").unwrap(), true).unwrap_err();
        assert!(e.to_string().contains("lets group or others write"), "{e}");
    }

    #[test]
    fn removal_waits_for_a_writer_and_a_late_writer_sees_the_job_gone() {
        let (_t, s) = store();
        let id = slurm_id("77").unwrap();
        let dir = s.open_job(&id, true).unwrap().unwrap();
        let lock = dir.lock().unwrap().expect("a live directory can be locked");
        let remover = {
            let s = s.clone();
            let id = id.clone();
            std::thread::spawn(move || s.remove_job(&id).unwrap())
        };
        // While the lock is held the epilog must wait, so this write is never lost in a
        // half-removed directory.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!remover.is_finished(), "removal did not wait for the lock");
        dir.write("credentials.json", b"{}", me()).unwrap();
        drop(lock);
        assert_eq!(remover.join().unwrap(), 1);
        assert!(!s.job_path(&id).exists());
        // A writer that comes after the removal is told, instead of writing into nowhere.
        assert!(dir.lock().unwrap().is_none());
    }

    #[test]
    fn entries_are_opened_only_by_names_we_create() {
        let (_t, s) = store();
        let id = pbs_id("12[3].srv").unwrap();
        s.open_job(&id, true).unwrap().unwrap();
        // Something root put there by hand, with a name no job id maps to.
        std::fs::create_dir(s.base().join("not a job")).unwrap();
        let scan = s.scan().unwrap();
        assert_eq!(scan.names(), ["12_3_.srv"]);
        for bad in ["", ".", "..", "../aws-role", "a/b", "x\n", "not a job"] {
            assert_eq!(s.remove_entry(bad).unwrap(), 0, "{bad:?}");
        }
        assert!(s.base().join("not a job").exists());
    }

    #[test]
    fn removal_is_complete_and_idempotent() {
        let (_t, s) = store();
        let id = slurm_id("5").unwrap();
        assert_eq!(s.remove_job(&id).unwrap(), 0, "nothing there yet");
        let d = s.open_job(&id, true).unwrap().unwrap();
        for n in [CREDENTIALS_JSON, CREDENTIALS_INI, CONFIG, STATE] {
            d.write(n, b"x", me()).unwrap();
        }
        assert_eq!(s.remove_job(&id).unwrap(), 4);
        assert!(!s.job_path(&id).exists());
        assert_eq!(s.remove_job(&id).unwrap(), 0);
        assert!(s.scan().unwrap().names().is_empty());
    }
}

/// A record that could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: not a valid record: {why}")]
    Invalid { path: PathBuf, why: String },
}

impl JobDir {
    /// Writes a record as JSON, root-only.
    pub fn write_record<T: serde::Serialize>(
        &self,
        name: &str,
        record: &T,
    ) -> Result<(), StoreError> {
        let root = Reader {
            uid: geteuid(),
            gid: nix::unistd::getegid(),
        };
        self.write_record_as(name, record, root)
    }

    /// Writes a record as JSON, readable also by `reader` ([`JobDir::write`]).
    pub fn write_record_as<T: serde::Serialize>(
        &self,
        name: &str,
        record: &T,
        owner: Reader,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string_pretty(record).map_err(|e| StoreError::Io {
            path: self.path.join(name),
            source: std::io::Error::other(e),
        })?;
        self.write(name, format!("{text}\n").as_bytes(), owner)
    }

    /// Reads a record written by [`JobDir::write_record`]; `Ok(None)` when absent.
    pub fn read_record<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, RecordError> {
        let Some(bytes) = self.read(name)? else {
            return Ok(None);
        };
        parse_record(&bytes)
            .map(Some)
            .map_err(|why| RecordError::Invalid {
                path: self.path.join(name),
                why,
            })
    }
}

/// Decodes the bytes of a record as [`JobDir::read_record`] does (whatever the file holds:
/// at most 64 KiB of anything); the error is serde_json's message. Public for the fuzz
/// targets (`fuzz/fuzz_targets/state_record.rs`).
pub fn parse_record<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}
