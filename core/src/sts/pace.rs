//! The node's own STS rate (`[sts] node_rate`): every process of the node that calls STS
//! (each prolog, the refresher, `--check-node`) takes the next free slot of one shared
//! schedule before its call, so a burst of jobs leaves the node as a steady stream at the
//! configured rate instead of a spike that STS's account-wide limit throttles, retry after
//! retry.
//!
//! The schedule is the generic cell rate algorithm (GCRA) over one small file, read and
//! written under `flock`: it holds the "theoretical arrival time" of the next call on the
//! system-wide monotonic clock (`CLOCK_MONOTONIC`, the same for every process, and immune
//! to changes of the wall clock). After a quiet second, up to `per_second` calls go at once;
//! beyond that they are spaced `1 / per_second` apart. A call whose slot would come after
//! its deadline takes none (it fails at once, saying why) and so does not delay the others.
//!
//! The file is root's, 0600, beside the job directories ([`crate::map::NodeRate`]); one
//! that anybody else could have written is refused rather than trusted.

use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use nix::time::{clock_gettime, ClockId};

/// Why a call got no slot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaceError {
    /// The next free slot is later than the call's deadline allows.
    #[error(
        "this node's STS rate ([sts] node_rate = {per_second} calls a second, shared by its prologs and refresher) has no free slot before the deadline: the next is in {} and about {ahead} calls of this node are ahead",
        humantime::format_duration(*wait)
    )]
    Full {
        per_second: u32,
        wait: Duration,
        ahead: u64,
    },
    /// The schedule's file cannot be used.
    #[error("this node's STS rate schedule {path} cannot be used: {why}")]
    File { path: String, why: String },
}

/// Reserves the next slot for one call; returns how long to wait for it (zero when the
/// node has been quiet). `budget` is the longest the call may wait.
pub fn reserve(file: &Path, per_second: u32, budget: Duration) -> Result<Duration, PaceError> {
    let bad = |why: String| PaceError::File {
        path: file.display().to_string(),
        why,
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(file)
        .map_err(|e| bad(e.to_string()))?;
    let meta = f.metadata().map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() || meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0
    {
        return Err(bad(format!(
            "it is not a file of this user's that only it can write (uid {}, mode {:o})",
            meta.uid(),
            meta.mode() & 0o7777
        )));
    }
    let mut f = Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| bad(e.to_string()))?;
    let mut text = String::new();
    f.read_to_string(&mut text)
        .map_err(|e| bad(e.to_string()))?;
    // An empty or unreadable schedule (a new file, a crash mid-write) is a quiet node.
    let stored: u128 = text.trim().parse().unwrap_or(0);
    let now = monotonic_ns().map_err(|e| bad(e.to_string()))?;
    let (wait, next) = gcra(stored, now, per_second);
    if wait > budget.as_nanos() {
        let interval = interval_ns(per_second);
        return Err(PaceError::Full {
            per_second,
            wait: Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX)),
            // The calls already scheduled between now and this call's slot.
            ahead: u64::try_from(wait / interval).unwrap_or(u64::MAX),
        });
    }
    f.rewind().map_err(|e| bad(e.to_string()))?;
    f.set_len(0).map_err(|e| bad(e.to_string()))?;
    f.write_all(format!("{next}\n").as_bytes())
        .map_err(|e| bad(e.to_string()))?;
    Ok(Duration::from_nanos(
        u64::try_from(wait).unwrap_or(u64::MAX),
    ))
}

fn interval_ns(per_second: u32) -> u128 {
    1_000_000_000 / u128::from(per_second.max(1))
}

/// GCRA with a burst of `per_second`: from the stored arrival time and now (both in ns),
/// how long this call waits and the arrival time to store.
fn gcra(stored: u128, now: u128, per_second: u32) -> (u128, u128) {
    let interval = interval_ns(per_second);
    let tolerance = interval * u128::from(per_second.max(1) - 1);
    let tat = stored.max(now);
    let send = now.max(tat.saturating_sub(tolerance));
    (send - now, tat + interval)
}

fn monotonic_ns() -> nix::Result<u128> {
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC)?;
    Ok(u128::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
        + u128::try_from(t.tv_nsec()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const S: u128 = 1_000_000_000;

    /// A quiet node lets a second's worth go at once, then spaces the rest evenly.
    #[test]
    fn a_burst_goes_at_once_then_the_rest_is_spaced() {
        let (mut stored, now) = (0, 100 * S);
        let waits: Vec<u128> = (0..7)
            .map(|_| {
                let (w, next) = gcra(stored, now, 4);
                stored = next;
                w
            })
            .collect();
        assert_eq!(waits, [0, 0, 0, 0, S / 4, S / 2, 3 * S / 4]);
        // A second later, four more slots have come free.
        let (w, _) = gcra(stored, now + S, 4);
        assert_eq!(w, 0);
        // Long after, the node is quiet again.
        let (w, next) = gcra(stored, now + 60 * S, 4);
        assert_eq!((w, next), (0, now + 60 * S + S / 4));
    }

    /// Processes share the file: slots are not handed out twice, a call that cannot be
    /// served in time takes no slot, and says how long and how many are ahead.
    #[test]
    fn the_file_is_the_schedule_and_a_late_slot_is_refused_without_taking_it() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("base.sts-rate");
        let budget = Duration::from_secs(2);
        let mut waits: Vec<Duration> = (0..10).map(|_| reserve(&f, 5, budget).unwrap()).collect();
        waits.sort();
        assert!(
            waits[..5].iter().all(|w| *w < Duration::from_millis(100)),
            "{waits:?}"
        );
        assert!(waits[9] > Duration::from_millis(900), "{waits:?}");
        let before = std::fs::read_to_string(&f).unwrap();
        let e = reserve(&f, 5, Duration::from_millis(100)).unwrap_err();
        assert!(
            matches!(e, PaceError::Full { per_second: 5, ahead, .. } if (4..=6).contains(&ahead)),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("this node's STS rate ([sts] node_rate = 5 calls a second"),
            "{e}"
        );
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            before,
            "a refused call took no slot"
        );
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    /// A schedule anybody else could have written is not trusted.
    #[test]
    fn a_writable_or_linked_schedule_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("base.sts-rate");
        std::fs::write(&f, "0\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = reserve(&f, 5, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("mode 666"), "{e}");
        let link = dir.path().join("link.sts-rate");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(matches!(
            reserve(&link, 5, Duration::from_secs(1)),
            Err(PaceError::File { .. })
        ));
    }
}
