//! Whether the EC2 instance metadata service (which hands out the node's own role) can be
//! reached, from an unprivileged user and from root: a probe that forks one child per
//! target, and the findings.

use super::*;

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
pub(super) const EXIT_TIMEOUT: i32 = 250;
/// The probe's exit status for "could not become the user".
pub(super) const EXIT_PRIVILEGES: i32 = 251;

pub(super) fn reach_from_exit(code: i32, uid: Option<Uid>) -> Result<Reach, ProbeError> {
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
pub(super) fn connect_as(
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

pub(super) const IMDS_USER: &str = "IMDS from an unprivileged user";
pub(super) const IMDS_ROOT: &str = "IMDS from root";

pub(super) fn outcomes(results: &[(SocketAddr, Result<Reach, ProbeError>)]) -> String {
    results
        .iter()
        .map(|(addr, r)| match r {
            Ok(reach) => format!("{addr} {}", reach.describe()),
            Err(e) => format!("{addr} not tested ({e})"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// FAIL when `who` (an unprivileged user) connected to IMDS, unless the map says jobs may
/// (`[node] jobs_may_reach_imds`, then information); WARN when it could not be tested; OK
/// when every address was refused, unreachable or silent.
pub fn imds_user_finding(
    who: &str,
    results: &[(SocketAddr, Result<Reach, ProbeError>)],
    intended: bool,
) -> Finding {
    let connected: Vec<String> = results
        .iter()
        .filter(|(_, r)| *r == Ok(Reach::Connected))
        .map(|(a, _)| a.to_string())
        .collect();
    if !connected.is_empty() {
        let what = format!(
            "{who} connected to {}: jobs can reach the instance metadata service and could use the node's instance role",
            connected.join(" and ")
        );
        return if intended {
            finding(
                Level::Info,
                IMDS_USER,
                format!("{what}, as [node] jobs_may_reach_imds = true says the site intends"),
            )
        } else {
            finding(
                Level::Fail,
                IMDS_USER,
                format!("{what}; {LOCKDOWN}, or set [node] jobs_may_reach_imds = true if this is intended"),
            )
        };
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
