//! The node's refresher: keeps every live job's credentials fresh and removes what jobs
//! left behind.
//!
//! It is one root daemon per node (`aws-role-refresher`, a systemd unit), not a process
//! per job:
//! - one process and one STS configuration for hundreds of jobs, instead of hundreds;
//! - it lives in no job's cgroup: a job step's end, its memory limit or its user's signals
//!   cannot kill it, and it never counts against a job's resources;
//! - its only state is the job directories, so a restart or crash loses nothing: it rescans
//!   and carries on, and the jobs' current credentials stay valid meanwhile;
//! - it can remove the directories of jobs whose epilog never ran, which a per-job process
//!   would have died with.
//!
//! Each pass reads every job's state record, asks [`refresh::plan`] when the credentials
//! must be replaced, refreshes those that are due (a few at a time), and backs off per job
//! after a failure (the credentials in place stay valid until they expire).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use crate::creds::rfc3339;
use crate::map::{MapError, RoleMap};
use crate::record::{FailureRecord, JobState};
use crate::refresh::{self, Plan, RefreshError, Refreshed, Times, Timing};
use crate::scheduler::Liveness;
use crate::store::{JobDir, Store, StoreError, FAILURE, STATE};

/// How long a failure record whose job never ended properly is kept.
pub const FAILURE_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// First and longest wait before retrying a failed refresh.
const RETRY_MIN: Duration = Duration::from_secs(15);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// What the refresher remembers about a job between passes (lost on restart, harmlessly).
#[derive(Debug)]
struct Tracker {
    /// The credentials this is about (a new prolog resets everything).
    issued: String,
    backoff: ExponentialBackoff,
    failures: u32,
    retry_at: Option<SystemTime>,
    /// Set after a failure that retrying cannot fix.
    stopped: bool,
}

impl Tracker {
    fn new(issued: &str) -> Tracker {
        Tracker {
            issued: issued.to_string(),
            backoff: ExponentialBuilder::new()
                .with_min_delay(RETRY_MIN)
                .with_max_delay(RETRY_MAX)
                .with_jitter()
                .without_max_times()
                .build(),
            failures: 0,
            retry_at: None,
            stopped: false,
        }
    }
}

/// The refresher's memory across passes.
#[derive(Debug, Default)]
pub struct Refresher {
    trackers: HashMap<String, Tracker>,
    /// The map of the last pass: a changed map gives stopped jobs another chance (a role
    /// granted again, a record problem fixed by hand).
    last_map: Option<Arc<RoleMap>>,
    /// Why accounts could not be trusted at the last pass ([`crate::accounts`]).
    last_doubt: Option<String>,
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Job directories with credentials.
    pub live: usize,
    pub refreshed: usize,
    pub failed: usize,
    /// Directories removed (job ended long ago, epilog never ran).
    pub removed: usize,
    /// Entries that could not be read (not a directory, not ours, a broken record):
    /// logged and passed over.
    pub skipped: usize,
    /// When the next pass has work to do, if before the next regular scan.
    pub next: Option<SystemTime>,
}

/// A job whose credentials are due.
struct Due {
    name: String,
    state: JobState,
}

impl Refresher {
    pub fn new() -> Refresher {
        Refresher::default()
    }

    /// One pass over every job directory at time `now`.
    pub async fn pass(
        &mut self,
        map: &Arc<RoleMap>,
        store: &Store,
        now: SystemTime,
    ) -> Result<Report, StoreError> {
        // Whether Slurm still vouches for accounts, asked again before the prologs' cached
        // answer is half as old as they accept.
        let slurm_doubt =
            crate::accounts::slurm_doubt(map, store, now, crate::accounts::FRESH_FOR / 2);
        // A changed map or accounts answer gives stopped jobs another chance.
        if self.last_map.as_ref().is_some_and(|m| **m != **map) || self.last_doubt != slurm_doubt {
            for tracker in self.trackers.values_mut() {
                tracker.stopped = false;
            }
        }
        self.last_map = Some(Arc::clone(map));
        self.last_doubt.clone_from(&slurm_doubt);
        let t = Timing::of(map);
        let mut report = Report::default();
        let mut due = Vec::new();
        let scan = store.scan()?;
        let present: std::collections::HashSet<&str> =
            scan.names().iter().map(String::as_str).collect();
        self.trackers
            .retain(|name, _| present.contains(name.as_str()));
        for name in scan.names() {
            // One directory open at a time; an entry that cannot be read is logged and
            // skipped, never the end of the pass.
            let dir = match scan.open(name) {
                Ok(Some(d)) => d,
                Ok(None) => continue,
                Err(e) => {
                    report.skipped += 1;
                    tracing::warn!(job = %crate::text::one_line(name, 80), "skipped: {e}");
                    continue;
                }
            };
            let name = name.clone();
            let state = match dir.read_record::<JobState>(STATE) {
                Ok(Some(s)) => s,
                Ok(None) => {
                    if self.failure_expired(&dir, now) {
                        drop(dir);
                        report.removed +=
                            remove(store, &name, "its failure record is over 7 days old");
                    }
                    continue;
                }
                Err(e) => {
                    report.skipped += 1;
                    tracing::warn!("skipped: {e}");
                    continue;
                }
            };
            let times = match Times::of(&state) {
                Ok(t) => t,
                Err(e) => {
                    report.live += 1;
                    tracing::warn!(job = %name, "unusable state record: {e}");
                    continue;
                }
            };
            if let Some(limit) = times.limit(&t) {
                if now > limit + map.refresh.orphan_grace {
                    let why = format!(
                        "the job ended at {} (+ margin), over {} ago, and its epilog never ran",
                        rfc3339(limit - t.margin),
                        humantime::format_duration(map.refresh.orphan_grace)
                    );
                    report.removed += remove(store, &name, &why);
                    continue;
                }
            }
            report.live += 1;
            let tracker = self
                .trackers
                .entry(name.clone())
                .or_insert_with(|| Tracker::new(&state.issued));
            if tracker.issued != state.issued {
                *tracker = Tracker::new(&state.issued);
            }
            if tracker.stopped {
                continue;
            }
            let when = match refresh::plan(&t, &name, times.issued, times.expiration, times.end) {
                Plan::Covered => continue,
                Plan::At(at) => tracker.retry_at.map_or(at, |r| r.max(at)),
            };
            if when <= now {
                // Only the name: the directory is opened again when its refresh starts,
                // so a pass with thousands of jobs due holds `concurrency` descriptors.
                drop(dir);
                // A job without a known end (UNLIMITED) has no time after which it is an
                // orphan: before renewing it, ask Slurm whether it still runs.
                if times.end.is_none() {
                    if let Some(why) = ended(map, &state) {
                        report.live -= 1;
                        report.removed += remove(store, &name, &why);
                        continue;
                    }
                }
                due.push(Due { name, state });
            } else {
                report.next = Some(report.next.map_or(when, |n| n.min(when)));
            }
        }
        self.refresh_all(map, store, due, now, slurm_doubt, &mut report)
            .await;
        Ok(report)
    }

    /// Whether a directory without credentials holds only an old failure record.
    fn failure_expired(&self, dir: &JobDir, now: SystemTime) -> bool {
        let Ok(Some(record)) = dir.read_record::<FailureRecord>(FAILURE) else {
            return false;
        };
        humantime::parse_rfc3339(&record.time).is_ok_and(|t| now > t + FAILURE_KEEP)
    }

    /// Refreshes `due`, at most `[refresh] concurrency` at a time.
    async fn refresh_all(
        &mut self,
        map: &Arc<RoleMap>,
        store: &Store,
        due: Vec<Due>,
        now: SystemTime,
        slurm_doubt: Option<String>,
        report: &mut Report,
    ) {
        let limit = map.refresh.concurrency.max(1) as usize;
        let mut queue = due.into_iter();
        let mut running = tokio::task::JoinSet::new();
        let spawn = |running: &mut tokio::task::JoinSet<_>, d: Due| {
            let map = Arc::clone(map);
            let store = store.clone();
            let doubt = slurm_doubt.clone();
            running.spawn(async move {
                let dir = match store.open_entry(&d.name) {
                    Ok(Some(dir)) => dir,
                    // Removed since the scan (the epilog ran): nothing to refresh.
                    Ok(None) => return (d, None, Ok(Refreshed::Gone)),
                    Err(e) => return (d, None, Err(RefreshError::Store(e))),
                };
                let result = refresh::refresh(&map, &dir, &d.state, now, doubt.as_deref()).await;
                (d, Some(dir), result)
            });
        };
        for d in queue.by_ref().take(limit) {
            spawn(&mut running, d);
        }
        while let Some(joined) = running.join_next().await {
            if let Some(d) = queue.next() {
                spawn(&mut running, d);
            }
            let Ok((d, dir, result)) = joined else {
                // A refresh task panicked: nothing was written (writes are atomic); the job
                // is tried again next pass.
                tracing::error!("a refresh task failed unexpectedly");
                report.failed += 1;
                continue;
            };
            self.settle(d, dir.as_ref(), result, now, report);
        }
    }

    fn settle(
        &mut self,
        d: Due,
        dir: Option<&JobDir>,
        result: Result<Refreshed, RefreshError>,
        now: SystemTime,
        report: &mut Report,
    ) {
        let Some(tracker) = self.trackers.get_mut(&d.name) else {
            return;
        };
        let span = tracing::info_span!("job", id = %d.state.job_id);
        let _guard = span.enter();
        match result {
            Ok(Refreshed::Renewed {
                expiration,
                duration,
            }) => {
                report.refreshed += 1;
                tracing::info!(
                    role = %d.state.role,
                    session = %d.state.session_name,
                    "credentials refreshed: {} s, expire {}",
                    duration.as_secs(),
                    rfc3339(expiration)
                );
            }
            Ok(Refreshed::Gone) => tracing::info!("job ended during its refresh; nothing kept"),
            Ok(Refreshed::Superseded) => {
                tracing::info!(
                    "job was provisioned again during its refresh; keeping the newer credentials"
                )
            }
            Err(e) => {
                report.failed += 1;
                tracker.failures += 1;
                let message = e.to_string();
                if e.is_final() {
                    tracker.stopped = true;
                    tracing::warn!(
                        "refresh stopped: {message}; the current credentials expire {}",
                        d.state.expiration
                    );
                } else {
                    // Back off, but try more often as the credentials near expiry.
                    let left = humantime::parse_rfc3339(&d.state.expiration)
                        .ok()
                        .and_then(|e| e.duration_since(now).ok())
                        .unwrap_or_default();
                    let wait = tracker
                        .backoff
                        .next()
                        .unwrap_or(RETRY_MAX)
                        .min((left / 4).max(Duration::from_secs(1)));
                    tracker.retry_at = Some(now + wait);
                    report.next = Some(report.next.map_or(now + wait, |n| n.min(now + wait)));
                    tracing::warn!(
                        "refresh failed (attempt {}), next try in {} s; the current credentials stay valid until {}: {message}",
                        tracker.failures,
                        wait.as_secs(),
                        d.state.expiration
                    );
                }
                if let Some(Err(e)) =
                    dir.map(|dir| refresh::record_failure(dir, &d.state, &message, now))
                {
                    tracing::warn!("cannot note the failure in the state record: {e}");
                }
            }
        }
    }
}

/// Why a job without a known end is over, if Slurm says so (it no longer knows the job,
/// or the job ended); `None` while it runs, and when Slurm cannot be asked (slurmctld
/// down): then it is refreshed as before, and asked again at its next refresh. PBS jobs
/// are not asked (their epilogue removes them).
fn ended(map: &RoleMap, state: &JobState) -> Option<String> {
    let (scheduler, id) = crate::record::job_id_of(state).ok()?;
    match crate::scheduler::of(scheduler).liveness(map, &id)? {
        Liveness::Gone(why) => Some(format!(
            "{why}; it has no end time, and its epilog never ran here"
        )),
        Liveness::Alive => None,
        Liveness::Unknown(why) => {
            tracing::warn!(job = %id, "cannot ask {scheduler} whether the job still runs ({why}); refreshing it");
            None
        }
    }
}

/// Removes a job directory, logging why; the number removed (0 or 1).
fn remove(store: &Store, name: &str, why: &str) -> usize {
    match store.remove_entry(name) {
        Ok(_) => {
            tracing::info!(job = %name, "removed: {why}");
            1
        }
        Err(e) => {
            tracing::warn!(job = %name, "cannot remove: {e}");
            0
        }
    }
}

/// The role map a long-running daemon works with: re-read every pass; a broken edit keeps
/// the last valid map in use and is reported once, not every pass.
#[derive(Default)]
pub struct MapKeeper {
    good: Option<Arc<RoleMap>>,
    last_error: Option<String>,
}

/// What changed when the map was read again, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapNews {
    /// It loads again after a broken edit.
    ValidAgain,
    /// It is broken in a new way: the message, and whether an earlier valid map is kept.
    Broken { error: String, kept: bool },
}

impl MapKeeper {
    /// Reads the map at `path` again and logs what changed; the map to work with, if any.
    pub fn load(&mut self, path: &std::path::Path) -> Option<Arc<RoleMap>> {
        match self.take(RoleMap::load(path)) {
            Some(MapNews::ValidAgain) => tracing::info!("{}: valid again", path.display()),
            Some(MapNews::Broken { error, kept: true }) => {
                tracing::error!("{error}; keeping the last valid map")
            }
            Some(MapNews::Broken { error, kept: false }) => {
                tracing::error!("{error}; nothing can be refreshed")
            }
            None => {}
        }
        self.current()
    }

    /// Takes the result of reading the map again: what changed, if anything worth saying.
    ///
    /// A map that names no proxy leaves the refresher to the standard proxy variables of its
    /// environment (its systemd unit's, which only the administrators set); the map's
    /// `[sts] proxy` wins over them.
    pub fn take(&mut self, loaded: Result<RoleMap, MapError>) -> Option<MapNews> {
        match loaded {
            Ok(mut m) => {
                m.sts.proxy = std::mem::take(&mut m.sts.proxy).or_environment();
                self.good = Some(Arc::new(m));
                self.last_error.take().map(|_| MapNews::ValidAgain)
            }
            Err(e) => {
                let error = e.to_string();
                if self.last_error.as_deref() == Some(&error) {
                    return None;
                }
                self.last_error = Some(error.clone());
                Some(MapNews::Broken {
                    error,
                    kept: self.good.is_some(),
                })
            }
        }
    }

    /// The last valid map.
    pub fn current(&self) -> Option<Arc<RoleMap>> {
        self.good.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::slurm::parse_job_id as slurm_id;
    use std::path::Path;

    /// A map whose STS endpoint refuses connections at once (nothing listens on port 9),
    /// and whose scontrol does not exist (Slurm cannot be asked).
    fn map(allowed: &str, base: &Path) -> Arc<RoleMap> {
        map_with_scontrol(allowed, base, Path::new("/nonexistent/scontrol"))
    }

    fn map_with_scontrol(allowed: &str, base: &Path, scontrol: &Path) -> Arc<RoleMap> {
        let text = format!(
            "[sts]\nregion = \"us-east-1\"\nendpoint = \"http://127.0.0.1:9\"\ntimeout = \"1s\"\nmax_attempts = 1\n\
             [slurm]\nscontrol = \"{}\"\n\
             [node]\nbase_dir = \"{}\"\n\
             [roles.demo]\narn = \"arn:aws:iam::123456789012:role/demo\"\nallow_users = [\"{allowed}\"]\n",
            scontrol.display(),
            base.display()
        );
        Arc::new(RoleMap::parse(&text, Path::new("t.toml")).unwrap())
    }

    /// Job 42 of the user running the tests, half-way through a 1-h session and due.
    fn due_state(user: &nix::unistd::User, now: SystemTime) -> JobState {
        JobState {
            expiration: rfc3339(now + Duration::from_secs(60)),
            issued: rfc3339(now - Duration::from_secs(3000)),
            ..crate::testing::sample_state(&user.name, user.uid.as_raw(), user.gid.as_raw())
        }
    }

    fn me() -> nix::unistd::User {
        nix::unistd::User::from_uid(nix::unistd::geteuid())
            .unwrap()
            .unwrap()
    }

    use crate::testing::runtime;

    #[test]
    fn a_broken_map_keeps_the_last_valid_one_and_is_reported_once() {
        let parse = |text: &str| RoleMap::parse(text, Path::new("/etc/aws-role/role-map.toml"));
        let valid = "[sts]\nregion = \"us-east-1\"\n";
        let broken = "[sts]\nregion = 1\n";
        let mut k = MapKeeper::default();
        // Broken from the start: said, and nothing to work with.
        assert!(matches!(
            k.take(parse(broken)),
            Some(MapNews::Broken { kept: false, .. })
        ));
        assert!(k.current().is_none());
        assert_eq!(
            k.take(parse(broken)),
            None,
            "the same error twice is said once"
        );
        assert_eq!(k.take(parse(valid)), Some(MapNews::ValidAgain));
        let first = k.current().unwrap();
        assert_eq!(k.take(parse(valid)), None);
        // A broken edit: said once, and the valid map stays in use.
        let news = k.take(parse(broken));
        assert!(
            matches!(&news, Some(MapNews::Broken { kept: true, error }) if error.contains("role-map.toml")),
            "{news:?}"
        );
        assert_eq!(k.take(parse(broken)), None);
        assert_eq!(k.current().unwrap().sts.region, first.sts.region);
        // Broken differently: said again.
        assert!(k.take(parse("[sts]\n")).is_some());
        assert_eq!(k.take(parse(valid)), Some(MapNews::ValidAgain));
    }

    #[test]
    fn a_revoked_job_is_left_alone_until_the_map_changes() {
        let me = me();
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().join("base"));
        let now = SystemTime::now();
        let dir = store
            .open_job(&slurm_id("42").unwrap(), true)
            .unwrap()
            .unwrap();
        dir.write_record(STATE, &due_state(&me, now)).unwrap();
        let rt = runtime();
        let mut r = Refresher::new();
        let revoked = map("somebody-else", store.base());
        let report = rt.block_on(r.pass(&revoked, &store, now)).unwrap();
        assert_eq!((report.live, report.failed), (1, 1), "{report:?}");
        let state: JobState = dir.read_record(STATE).unwrap().unwrap();
        assert!(
            state
                .last_error
                .as_deref()
                .unwrap()
                .contains("no longer authorized"),
            "{state:?}"
        );
        // Same map: the job is not tried again (no log flood, no STS call).
        let again = map("somebody-else", store.base());
        let report = rt.block_on(r.pass(&again, &store, now)).unwrap();
        assert_eq!((report.live, report.failed), (1, 0), "{report:?}");
        // The role granted again: the refresh is attempted (and fails only because nothing
        // answers on the endpoint), and is retried with backoff, not stopped.
        let granted = map(&me.name, store.base());
        let report = rt.block_on(r.pass(&granted, &store, now)).unwrap();
        assert_eq!((report.live, report.failed), (1, 1), "{report:?}");
        let state: JobState = dir.read_record(STATE).unwrap().unwrap();
        assert!(
            state.last_error.as_deref().unwrap().contains("STS"),
            "{state:?}"
        );
        assert!(report.next.is_some_and(|n| n > now), "{report:?}");
    }

    #[test]
    fn a_job_ended_long_ago_is_removed() {
        let me = me();
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().join("base"));
        let now = SystemTime::now();
        let id = slurm_id("42").unwrap();
        let dir = store.open_job(&id, true).unwrap().unwrap();
        let mut state = due_state(&me, now);
        // Ended 2 h ago (+ 5 min margin), grace 1 h.
        state.end_time = Some(
            (now - Duration::from_secs(7200))
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        );
        dir.write_record(STATE, &state).unwrap();
        let rt = runtime();
        let m = map(&me.name, store.base());
        let report = rt.block_on(Refresher::new().pass(&m, &store, now)).unwrap();
        assert_eq!((report.live, report.removed, report.failed), (0, 1, 0));
        assert!(!store.job_path(&id).exists());
    }

    #[test]
    fn odd_entries_are_skipped_and_the_rest_still_refreshed() {
        use std::os::unix::fs::PermissionsExt;
        let me = me();
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().join("base"));
        let now = SystemTime::now();
        // Sorted first and last around the odd ones, so the walk must pass them.
        for id in ["10", "99"] {
            let dir = store
                .open_job(&slurm_id(id).unwrap(), true)
                .unwrap()
                .unwrap();
            dir.write_record(STATE, &due_state(&me, now)).unwrap();
        }
        let base = store.base();
        std::fs::write(base.join("20"), "a file where a directory should be").unwrap();
        std::fs::create_dir(base.join("30")).unwrap();
        std::fs::set_permissions(base.join("30"), std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::create_dir(base.join("40")).unwrap();
        std::fs::write(base.join("40").join(STATE), "{not json").unwrap();
        std::fs::create_dir_all(base.join("50").join(STATE)).unwrap();
        let rt = runtime();
        let m = map(&me.name, base);
        let report = rt
            .block_on(Refresher::new().pass(&m, &store, now))
            .expect("odd entries must not end the pass");
        // Both real jobs were tried (and failed only because nothing answers on port 9).
        assert_eq!((report.live, report.failed), (2, 2), "{report:?}");
        assert_eq!(report.skipped, 4, "{report:?}");
        let listed = crate::status::list(&store).expect("odd entries must not end --status");
        assert_eq!(listed.len(), 6, "{listed:?}");
    }

    /// Before, a job without an end time was refreshed for as long as its directory
    /// existed, and never removed. Now Slurm is asked before each of its refreshes: a job
    /// it no longer knows (or that ended) is removed; one it runs, or an unanswered
    /// question, is refreshed.
    #[test]
    fn a_job_without_an_end_is_removed_once_slurm_forgets_it() {
        use std::os::unix::fs::PermissionsExt;
        let me = me();
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().join("base"));
        let now = SystemTime::now();
        let scontrol = |name: &str, script: &str| {
            let p = tmp.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        };
        let forgot = scontrol(
            "forgot",
            "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1",
        );
        let running = scontrol("running", "echo \"JobId=$3 JobState=RUNNING\"");
        let id = slurm_id("42").unwrap();
        let dir = store.open_job(&id, true).unwrap().unwrap();
        dir.write_record(STATE, &due_state(&me, now)).unwrap();
        let rt = runtime();
        // Running: refreshed (and failing only because nothing answers on port 9).
        let m = map_with_scontrol(&me.name, store.base(), &running);
        let report = rt.block_on(Refresher::new().pass(&m, &store, now)).unwrap();
        assert_eq!(
            (report.live, report.failed, report.removed),
            (1, 1, 0),
            "{report:?}"
        );
        // Forgotten: removed, not refreshed.
        let m = map_with_scontrol(&me.name, store.base(), &forgot);
        let report = rt.block_on(Refresher::new().pass(&m, &store, now)).unwrap();
        assert_eq!(
            (report.live, report.failed, report.removed),
            (0, 0, 1),
            "{report:?}"
        );
        assert!(!store.job_path(&id).exists());
    }
}
