//! Is this compute node set up the way aws-role needs? `aws-role-prolog --check-node`, run
//! by an administrator as root: the role map, the base of the job directories, the
//! binaries that Slurm and the plugin run, whether an unprivileged user can reach the EC2
//! instance metadata service (IMDS, which hands out the node's own role), and Slurm's
//! `PrologFlags` and plugin stack.
//!
//! Each check has a probe, which looks at the system and records what it saw as plain data
//! ([`PathView`], [`Reach`], [`SlurmView`]), and a decision, a pure function from that
//! data to [`Finding`]s. Only the probes touch the system; the decisions are unit-tested.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid};

use crate::map::{MapError, RoleMap};
use crate::perms::writers;
pub mod site;

pub use crate::perms::{ancestor_problems, inspect, seen, Kind, Meta, PathView, Seen};
use crate::scheduler::slurm::{show_config_value, ScontrolError};

/// Where the plugin finds the prolog when its plugstack line has no `prolog=`.
pub const PLUGIN_PROLOG: &str = "/usr/libexec/aws-role/aws-role-prolog";
/// Where the plugin finds the epilog when its plugstack line has no `epilog=`.
pub const PLUGIN_EPILOG: &str = "/usr/libexec/aws-role/aws-role-epilog";
/// The plugin's file name, as a plugstack line names it.
pub const PLUGIN_SO: &str = "aws_role.so";

/// The instance metadata service, IPv4 and IPv6 (Nitro instances with IPv6 enabled).
pub const IMDS: [SocketAddr; 2] = [
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)), 80),
    SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
        80,
    ),
];
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
// The role map

const MAP: &str = "role map";

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

const BASE_DIR: &str = "base dir";

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

const BINARY: &str = "binary";

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

// ---------------------------------------------------------------------------------------
// IMDS

/// How a TCP connection attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Connected,
    /// Reset: nothing listens, or a firewall rejects with a TCP reset.
    Refused,
    /// No answer within the probe's timeout (a firewall that drops, or no such network).
    TimedOut,
    /// The local firewall dropped the connection (`EPERM`/`EACCES`).
    Blocked(Errno),
    /// No route, or an ICMP error such as "administratively prohibited".
    Unreachable(Errno),
    /// The address family is not available (IPv6 disabled).
    NoFamily,
    Failed(Errno),
}

impl Reach {
    fn describe(self) -> String {
        match self {
            Reach::Connected => "connected".into(),
            Reach::Refused => "refused".into(),
            Reach::TimedOut => format!(
                "no answer within {}",
                humantime::format_duration(IMDS_TIMEOUT)
            ),
            Reach::Blocked(e) => format!("blocked by this node's firewall ({})", e.desc()),
            Reach::Unreachable(e) => format!("unreachable ({})", e.desc()),
            Reach::NoFamily => "address family not available".into(),
            Reach::Failed(e) => format!("failed ({})", e.desc()),
        }
    }
}

/// Why a connection attempt could not be made at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot fork: {}", .0.desc())]
    Fork(Errno),
    #[error("the probe could not switch to uid {0}")]
    Privileges(u32),
    #[error("waiting for the probe: {}", .0.desc())]
    Wait(Errno),
    #[error("the probe was killed by {0}")]
    Killed(Signal),
    #[error("the probe did not finish")]
    Hung,
    #[error("the probe exited with the unknown status {0}")]
    Unknown(i32),
}

/// The probe's exit status for "no answer in time"; below it, an errno (0: connected).
const EXIT_TIMEOUT: i32 = 250;
/// The probe's exit status for "could not become the user".
const EXIT_PRIVILEGES: i32 = 251;

fn reach_from_exit(code: i32, uid: Option<Uid>) -> Result<Reach, ProbeError> {
    Ok(match code {
        0 => Reach::Connected,
        EXIT_TIMEOUT => Reach::TimedOut,
        EXIT_PRIVILEGES => {
            return Err(ProbeError::Privileges(uid.map_or(0, Uid::as_raw)));
        }
        c if (1..EXIT_TIMEOUT).contains(&c) => match Errno::from_raw(c) {
            Errno::ECONNREFUSED | Errno::ECONNRESET => Reach::Refused,
            Errno::ETIMEDOUT => Reach::TimedOut,
            e @ (Errno::EPERM | Errno::EACCES) => Reach::Blocked(e),
            e @ (Errno::ENETUNREACH | Errno::EHOSTUNREACH | Errno::EADDRNOTAVAIL) => {
                Reach::Unreachable(e)
            }
            Errno::EAFNOSUPPORT => Reach::NoFamily,
            e => Reach::Failed(e),
        },
        c => return Err(ProbeError::Unknown(c)),
    })
}

/// Tries a TCP connection to each target, each from its own child process running as `who`
/// (uid, gid; `None`: as this process), all at once; a child gives up after `timeout`.
///
/// Why fork and not re-run this program as `nobody` (`/proc/self/exe` with a hidden flag):
/// a PBS prologue is installed root-only (0500), which `nobody` cannot execute. Forking
/// is sound here even if this process had other threads (a tokio runtime, the test
/// harness): the child only makes async-signal-safe system calls on data prepared before
/// the fork (setgroups, setgid, setuid, socket, connect, poll, getsockopt, close, _exit),
/// never allocates, takes no lock and cannot panic; see fork(2) and signal-safety(7).
// The one place outside the plugin's FFI that needs `unsafe` (the workspace denies it).
#[allow(unsafe_code)]
pub fn probe_connect(
    targets: &[SocketAddr],
    who: Option<(Uid, Gid)>,
    timeout: Duration,
) -> Vec<Result<Reach, ProbeError>> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    use nix::unistd::{fork, ForkResult};

    let poll_timeout =
        nix::poll::PollTimeout::try_from(timeout).unwrap_or(nix::poll::PollTimeout::MAX);
    let mut children = Vec::new();
    for target in targets {
        let addr = nix::sys::socket::SockaddrStorage::from(*target);
        let family = match target {
            SocketAddr::V4(_) => nix::sys::socket::AddressFamily::Inet,
            SocketAddr::V6(_) => nix::sys::socket::AddressFamily::Inet6,
        };
        // SAFETY: see the function's comment: the child runs only `connect_as`, which makes
        // async-signal-safe calls on `addr`, `family`, `who` and `poll_timeout` (all plain
        // data on this stack), and leaves with `_exit`, never returning or unwinding.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                let code = connect_as(&addr, family, who, poll_timeout);
                // SAFETY: _exit is async-signal-safe and ends the child at once, without
                // running the parent's atexit handlers or flushing its stdio buffers.
                unsafe { nix::libc::_exit(code) }
            }
            Ok(ForkResult::Parent { child }) => children.push(Ok(child)),
            Err(e) => children.push(Err(ProbeError::Fork(e))),
        }
    }
    // The children time out on their own; this only guards against one that hangs anyway.
    let deadline = Instant::now() + timeout + Duration::from_secs(3);
    children
        .into_iter()
        .map(|child| {
            let pid = child?;
            loop {
                match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(_, code)) => {
                        return reach_from_exit(code, who.map(|w| w.0))
                    }
                    Ok(WaitStatus::Signaled(_, sig, _)) => return Err(ProbeError::Killed(sig)),
                    Ok(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Ok(_) => {
                        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                        let _ = waitpid(pid, None);
                        return Err(ProbeError::Hung);
                    }
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(ProbeError::Wait(e)),
                }
            }
        })
        .collect()
}

/// The forked child: becomes `who`, connects, and returns its exit status (0 connected,
/// an errno, [`EXIT_TIMEOUT`] or [`EXIT_PRIVILEGES`]). Only async-signal-safe calls.
fn connect_as(
    addr: &nix::sys::socket::SockaddrStorage,
    family: nix::sys::socket::AddressFamily,
    who: Option<(Uid, Gid)>,
    timeout: nix::poll::PollTimeout,
) -> i32 {
    use std::os::fd::{AsFd, AsRawFd};

    use nix::poll::{poll, PollFd, PollFlags};
    use nix::sys::socket::{connect, getsockopt, socket, sockopt, SockFlag, SockType};
    use nix::unistd::{geteuid, getuid, setgid, setgroups, setuid};

    if let Some((uid, gid)) = who {
        // Supplementary groups first: after setuid we could no longer drop them.
        let dropped = setgroups(&[gid]).is_ok()
            && setgid(gid).is_ok()
            && setuid(uid).is_ok()
            && getuid() == uid
            && geteuid() == uid;
        if !dropped {
            return EXIT_PRIVILEGES;
        }
    }
    let fd = match socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    ) {
        Ok(fd) => fd,
        Err(e) => return e as i32,
    };
    match connect(fd.as_raw_fd(), addr) {
        Ok(()) => return 0,
        Err(Errno::EINPROGRESS) => {}
        Err(e) => return e as i32,
    }
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
    match poll(&mut fds, timeout) {
        Ok(0) => EXIT_TIMEOUT,
        Ok(_) => match getsockopt(&fd, sockopt::SocketError) {
            Ok(err) => err,
            Err(e) => e as i32,
        },
        Err(e) => e as i32,
    }
}

const IMDS_USER: &str = "IMDS from an unprivileged user";
const IMDS_ROOT: &str = "IMDS from root";

fn outcomes(results: &[(SocketAddr, Result<Reach, ProbeError>)]) -> String {
    results
        .iter()
        .map(|(addr, r)| match r {
            Ok(reach) => format!("{addr} {}", reach.describe()),
            Err(e) => format!("{addr} not tested ({e})"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// WARN when `who` (an unprivileged user) connected to IMDS, or could not be tested; OK
/// when every address was refused, unreachable or silent.
pub fn imds_user_finding(
    who: &str,
    results: &[(SocketAddr, Result<Reach, ProbeError>)],
) -> Finding {
    let connected: Vec<String> = results
        .iter()
        .filter(|(_, r)| *r == Ok(Reach::Connected))
        .map(|(a, _)| a.to_string())
        .collect();
    if !connected.is_empty() {
        return finding(
            Level::Warn,
            IMDS_USER,
            format!(
                "{who} connected to {}: jobs can reach the instance metadata service and could use the node's instance role; {LOCKDOWN}",
                connected.join(" and ")
            ),
        );
    }
    if results.iter().any(|(_, r)| r.is_err()) {
        return finding(
            Level::Warn,
            IMDS_USER,
            format!("could not test what {who} reaches: {}", outcomes(results)),
        );
    }
    finding(
        Level::Ok,
        IMDS_USER,
        format!("{who} cannot connect: {}", outcomes(results)),
    )
}

/// Information only: root needs IMDS only when the node's identity comes from it (the
/// default chain on EC2, without `[sts] credentials_file`).
pub fn imds_root_finding(
    results: &[(SocketAddr, Result<Reach, ProbeError>)],
    credentials_file: Option<&Path>,
) -> Finding {
    let any = results.iter().any(|(_, r)| *r == Ok(Reach::Connected));
    let why = match (any, credentials_file) {
        (_, Some(f)) => format!(
            "the node's identity comes from [sts] credentials_file {}",
            f.display()
        ),
        (true, None) => "the prolog's default credential chain can use the instance role".into(),
        (false, None) => {
            "the prolog's default credential chain must find the node's identity elsewhere (environment, root's ~/.aws), or set [sts] credentials_file".into()
        }
    };
    finding(
        Level::Info,
        IMDS_ROOT,
        format!("{}; {why}", outcomes(results)),
    )
}

// ---------------------------------------------------------------------------------------
// Slurm

const SLURM: &str = "Slurm";
const PROLOG_FLAGS: &str = "Slurm PrologFlags";
const PLUGIN: &str = "Slurm plugin";

/// The flags of `PrologFlags` in `scontrol show config` output (`(null)`: none); `None`
/// when the output has no such line.
pub fn prolog_flags(output: &str) -> Option<Vec<String>> {
    let v = show_config_value(output, "PrologFlags")?;
    if v == "(null)" {
        return Some(Vec::new());
    }
    Some(
        v.split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(String::from)
            .collect(),
    )
}

/// OK when the prolog runs at allocation: `Alloc`, or a flag that implies it (`Contain`;
/// `X11` and `RunInJob` imply `Contain`). WARN otherwise, or when the flags are unknown.
pub fn prolog_flags_finding(show_config: &Result<String, ScontrolError>) -> Finding {
    let output = match show_config {
        Ok(o) => o,
        Err(e) => {
            return finding(
                Level::Warn,
                PROLOG_FLAGS,
                format!("cannot read PrologFlags: {e}"),
            )
        }
    };
    let Some(flags) = prolog_flags(output) else {
        return finding(
            Level::Warn,
            PROLOG_FLAGS,
            "cannot read PrologFlags: `scontrol show config` printed no PrologFlags line",
        );
    };
    let shown = if flags.is_empty() {
        "(null)".to_string()
    } else {
        flags.join(",")
    };
    let at_alloc = flags.iter().any(|f| {
        ["Alloc", "Contain", "X11", "RunInJob"]
            .iter()
            .any(|a| f.eq_ignore_ascii_case(a))
    });
    if at_alloc {
        finding(Level::Ok, PROLOG_FLAGS, format!("PrologFlags={shown}"))
    } else {
        finding(
            Level::Warn,
            PROLOG_FLAGS,
            format!(
                "PrologFlags={shown}: without Alloc (or Contain) the prolog runs on a node only when the job's first step starts there, so the other nodes of a multi-node batch job get credentials only once srun starts a step on them, and processes started there otherwise get none; set PrologFlags=Alloc in slurm.conf"
            ),
        )
    }
}

/// The values of `key` (case-insensitive) in slurm.conf-style text: `Key=value` tokens,
/// comments (`#` to the end of the line) ignored. Included files are not followed.
pub fn conf_values(text: &str, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        for token in line.split_whitespace() {
            if let Some((k, v)) = token.split_once('=') {
                if k.eq_ignore_ascii_case(key) && !v.is_empty() {
                    out.push(v.to_string());
                }
            }
        }
    }
    out
}

/// The plugstack file slurm.conf names (`PlugStackConfig=`), else `plugstack.conf` next to it.
pub fn plugstack_path(slurm_conf: &Path, text: Option<&str>) -> PathBuf {
    text.and_then(|t| conf_values(t, "PlugStackConfig").pop())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            slurm_conf
                .parent()
                .unwrap_or(Path::new("/"))
                .join("plugstack.conf")
        })
}

/// The `include PATTERN` lines of a plugstack file.
pub fn plugstack_includes(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let first = words.next()?;
            if first.eq_ignore_ascii_case("include") {
                words.next().map(String::from)
            } else {
                None
            }
        })
        .collect()
}

/// Shell-style matching of one file name: `*` any run of characters, `?` any one.
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// A plugstack file and its text.
#[derive(Debug)]
pub struct ConfFile {
    pub path: PathBuf,
    pub text: Result<String, std::io::Error>,
}

/// The aws-role line of a plugin stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLine {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// `required` (else `optional`).
    pub required: bool,
    pub so: String,
    pub config: Option<PathBuf>,
    pub prolog: Option<PathBuf>,
    pub epilog: Option<PathBuf>,
    /// `timeout=` in seconds, when given as a number.
    pub timeout: Option<u64>,
}

/// The first `required|optional .../aws_role.so [args]` line in `files`.
pub fn find_plugin(files: &[ConfFile]) -> Option<PluginLine> {
    for f in files {
        let Ok(text) = &f.text else { continue };
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(kind), Some(so)) = (words.next(), words.next()) else {
                continue;
            };
            let required = kind.eq_ignore_ascii_case("required");
            if !(required || kind.eq_ignore_ascii_case("optional")) {
                continue;
            }
            if Path::new(so).file_name() != Some(PLUGIN_SO.as_ref()) {
                continue;
            }
            let mut p = PluginLine {
                file: f.path.clone(),
                line: n + 1,
                required,
                so: so.to_string(),
                config: None,
                prolog: None,
                epilog: None,
                timeout: None,
            };
            for arg in words {
                match arg.split_once('=') {
                    Some(("config", v)) => p.config = Some(v.into()),
                    Some(("prolog", v)) => p.prolog = Some(v.into()),
                    Some(("epilog", v)) => p.epilog = Some(v.into()),
                    Some(("timeout", v)) => p.timeout = v.parse().ok(),
                    _ => {}
                }
            }
            return Some(p);
        }
    }
    None
}

/// What the node's Slurm configuration looks like.
#[derive(Debug)]
pub struct SlurmView {
    /// The map's `[slurm] scontrol`.
    pub scontrol: PathBuf,
    /// `scontrol show config`; `None` when `scontrol` is not there.
    pub show_config: Option<Result<String, ScontrolError>>,
    /// `$SLURM_CONF`, else `/etc/slurm/slurm.conf`.
    pub slurm_conf: PathBuf,
    pub slurm_conf_text: Result<String, std::io::Error>,
    /// The plugstack file and every file it includes, in order.
    pub plugstack: Vec<ConfFile>,
}

impl SlurmView {
    /// Whether Slurm is installed here at all.
    pub fn present(&self) -> bool {
        self.show_config.is_some()
            || !matches!(&self.slurm_conf_text, Err(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// PrologFlags, and whether Slurm runs aws-role: the plugin in the plugstack (OK; WARN if
/// `optional`), else `Prolog=` naming aws-role-prolog (Prolog-only mode: OK with
/// `TaskProlog=` too, which gives jobs their environment, else WARN), else WARN.
pub fn slurm_findings(
    view: &SlurmView,
    plugin: Option<&PluginLine>,
    map_path: &Path,
) -> Vec<Finding> {
    if !view.present() {
        return vec![finding(
            Level::Info,
            SLURM,
            format!(
                "neither {} nor {} exists: not a Slurm node, Slurm checks skipped",
                view.scontrol.display(),
                view.slurm_conf.display()
            ),
        )];
    }
    let mut out = Vec::new();
    out.push(match &view.show_config {
        Some(r) => prolog_flags_finding(r),
        None => finding(
            Level::Warn,
            PROLOG_FLAGS,
            format!(
                "cannot read PrologFlags: {} does not exist (the map's [slurm] scontrol names it)",
                view.scontrol.display()
            ),
        ),
    });
    let conf = view.slurm_conf_text.as_deref().ok();
    let names_prolog = |key: &str| {
        conf.map(|c| conf_values(c, key))
            .unwrap_or_default()
            .into_iter()
            .find(|v| v.contains("aws-role-prolog"))
    };
    let stack = view.plugstack.first().map_or_else(
        || "the plugstack".to_string(),
        |f| f.path.display().to_string(),
    );
    for (i, f) in view.plugstack.iter().enumerate() {
        if let Err(e) = &f.text {
            // No plugstack file at all is common (no plugins) and is said below.
            if i > 0 || e.kind() != std::io::ErrorKind::NotFound {
                out.push(finding(
                    Level::Warn,
                    PLUGIN,
                    format!("cannot read {}: {e}", f.path.display()),
                ));
            }
        }
    }
    match plugin {
        Some(p) => {
            let at = format!("{}:{}", p.file.display(), p.line);
            out.push(if p.required {
                finding(Level::Ok, PLUGIN, format!("{at}: required {}", p.so))
            } else {
                finding(
                    Level::Warn,
                    PLUGIN,
                    format!(
                        "{at}: optional {}: a job whose --aws-role is refused at submit is queued anyway and fails at its first task; use `required`",
                        p.so
                    ),
                )
            });
            let config = p.config.as_deref().unwrap_or(Path::new(crate::map::DEFAULT_PATH));
            if config != map_path {
                out.push(finding(
                    Level::Info,
                    PLUGIN,
                    format!(
                        "the plugin reads the role map {}; this check read {}",
                        config.display(),
                        map_path.display()
                    ),
                ));
            }
        }
        None => match (names_prolog("Prolog"), &view.slurm_conf_text) {
            (Some(prolog), _) => out.push(match names_prolog("TaskProlog") {
                Some(_) => finding(
                    Level::Ok,
                    PLUGIN,
                    format!("no {PLUGIN_SO} in {stack}; Prolog-only mode (Prolog={prolog}, TaskProlog= too)"),
                ),
                None => finding(
                    Level::Warn,
                    PLUGIN,
                    format!(
                        "no {PLUGIN_SO} in {stack} and Prolog={prolog}, but TaskProlog= does not run aws-role-prolog: jobs get credentials but not the environment that points at them"
                    ),
                ),
            }),
            (None, Err(e)) => out.push(finding(
                Level::Warn,
                PLUGIN,
                format!(
                    "no {PLUGIN_SO} in {stack}, and {} cannot be read ({e}) to look for Prolog=",
                    view.slurm_conf.display()
                ),
            )),
            (None, Ok(_)) => out.push(finding(
                Level::Warn,
                PLUGIN,
                format!(
                    "Slurm does not run aws-role here: no {PLUGIN_SO} line in {stack} (or the files it includes), and Prolog= in {} does not name aws-role-prolog",
                    view.slurm_conf.display()
                ),
            )),
        },
    }
    out
}

/// Reads the plugstack file and what it includes (`include DIR/*.conf`: wildcards in the
/// last component only; relative paths from the including file's directory), at most
/// four levels deep.
pub fn read_plugstack(path: &Path) -> Vec<ConfFile> {
    let mut out = Vec::new();
    read_conf(path, 0, &mut out);
    out
}

fn read_conf(path: &Path, depth: usize, out: &mut Vec<ConfFile>) {
    if depth > 4 || out.iter().any(|f| f.path == path) {
        return;
    }
    let text = std::fs::read_to_string(path);
    let includes = text.as_deref().map(plugstack_includes).unwrap_or_default();
    out.push(ConfFile {
        path: path.to_path_buf(),
        text,
    });
    let here = path.parent().unwrap_or(Path::new("/"));
    for pattern in includes {
        let pattern = here.join(pattern);
        let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
            continue;
        };
        let name = name.to_string_lossy();
        if !name.contains(['*', '?']) {
            read_conf(&pattern, depth + 1, out);
            continue;
        }
        let mut matches: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| wildcard(&name, &e.file_name().to_string_lossy()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        matches.sort();
        for m in matches {
            read_conf(&m, depth + 1, out);
        }
    }
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

/// As root: `nobody`'s reach (WARN if it connects) and root's (information). Otherwise:
/// this user's reach, since it is itself unprivileged.
fn imds_findings(map: Option<&RoleMap>) -> Vec<Finding> {
    let pair =
        |results: Vec<Result<Reach, ProbeError>>| -> Vec<(SocketAddr, Result<Reach, ProbeError>)> {
            IMDS.iter().copied().zip(results).collect()
        };
    let me = nix::unistd::geteuid();
    if !me.is_root() {
        let who = format!("uid {me} (this user)");
        return vec![imds_user_finding(
            &who,
            &pair(probe_connect(&IMDS, None, IMDS_TIMEOUT)),
        )];
    }
    let user = match nix::unistd::User::from_name("nobody") {
        Ok(Some(u)) => {
            let who = format!("user nobody (uid {})", u.uid);
            imds_user_finding(
                &who,
                &pair(probe_connect(&IMDS, Some((u.uid, u.gid)), IMDS_TIMEOUT)),
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
        &pair(probe_connect(&IMDS, None, IMDS_TIMEOUT)),
        map.and_then(|m| m.sts.credentials_file.as_deref()),
    );
    vec![user, root]
}

#[cfg(test)]
mod tests;
