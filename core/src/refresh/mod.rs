//! Keeping a long job's credentials valid until it ends, and not a moment longer.
//!
//! STS caps a session (1 h when the node itself holds role credentials: role chaining), so
//! a job that runs longer needs new credentials before the old ones expire. The node's
//! refresher (see [`crate::refresher`]) replaces them in the job's directory; processes
//! already running pick them up because their SDKs get credentials through
//! `credential_process`, which they run again shortly before the `Expiration` it reported.
//!
//! When ([`plan`]): between `lead` and `lead + jitter` before the credentials expire — so
//! before botocore's refresh window (15 then 10 min) with the default 20 min lead — but
//! never earlier than half-way through a session, so that short sessions are not
//! refreshed in a loop; and early enough that the last session can end exactly at the
//! job's end + margin without going below STS's shortest session. Once the credentials
//! reach the job's end + margin, nothing is refreshed: a job's identity never outlives it.
//!
//! How ([`refresh`]): the same request the prolog made (same session name, tags and
//! source identity; the duration for the time left), after re-authorizing the job against
//! the current map — a role taken away from a user stops being refreshed.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, SystemTime};

use crate::map::RoleMap;
use crate::record::JobState;
use crate::walltime;

/// The timing rules of refreshes, from the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Refresh at least this long before expiry.
    pub lead: Duration,
    /// Spread refreshes of jobs that started together over this much more.
    pub jitter: Duration,
    /// The job's credentials should last until its end plus this.
    pub margin: Duration,
    /// The shortest session STS grants.
    pub floor: Duration,
}

impl Timing {
    pub fn of(map: &RoleMap) -> Timing {
        Timing {
            lead: map.refresh.lead,
            jitter: map.refresh.jitter,
            margin: map.defaults.margin,
            floor: map.sts.min_session,
        }
    }
}

/// What to do next about one job's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The credentials already last until the job's end + margin: nothing more to do.
    Covered,
    /// Replace them at this time.
    At(SystemTime),
}

/// When the credentials issued at `issued` and expiring at `expiration` should be replaced,
/// for a job ending at `end` (`None`: no known end, refreshed for as long as it runs).
/// `key` (the job's directory name) picks the job's jitter, so that a restarted refresher
/// keeps the same schedule and jobs that started together do not refresh together.
pub fn plan(
    t: &Timing,
    key: &str,
    issued: SystemTime,
    expiration: SystemTime,
    end: Option<SystemTime>,
) -> Plan {
    let limit = end.map(|e| e + t.margin);
    if limit.is_some_and(|l| expiration >= l) {
        return Plan::Covered;
    }
    let session = expiration.duration_since(issued).unwrap_or_default();
    let before = (t.lead + jitter(t.jitter, key, issued)).min(session / 2);
    let mut at = expiration.checked_sub(before).unwrap_or(issued);
    if let Some(l) = limit {
        // The last session must not be shorter than STS allows, or it would outlive the job.
        if let Some(last_start) = l.checked_sub(t.floor) {
            at = at.min(last_start);
        }
    }
    Plan::At(at.max(issued))
}

/// A stable pseudo-random share of `spread` for this job and session.
fn jitter(spread: Duration, key: &str, issued: SystemTime) -> Duration {
    let secs = spread.as_secs();
    if secs == 0 {
        return Duration::ZERO;
    }
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    issued
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        .hash(&mut h);
    Duration::from_secs(h.finish() % (secs + 1))
}

/// One set of credentials in a job's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub issued: SystemTime,
    pub expiration: SystemTime,
}

/// Every AssumeRole a job starting at `start` and ending at `end` makes over its life, if
/// every call succeeds on time: the prolog's, then each refresh the [`plan`] asks for.
/// Jobs without a known end are followed until `horizon`. Used by the tests' table and by
/// the benchmark that prints STS calls per job.
pub fn lifetime(
    t: &Timing,
    key: &str,
    cap: Duration,
    start: SystemTime,
    end: Option<SystemTime>,
    horizon: SystemTime,
) -> Vec<Session> {
    let mut out = Vec::new();
    let mut now = start;
    loop {
        let d = walltime::session_duration(end, now, t.margin, t.floor, cap);
        let s = Session {
            issued: now,
            expiration: now + d,
        };
        out.push(s);
        match plan(t, key, s.issued, s.expiration, end) {
            Plan::Covered => return out,
            Plan::At(at) if at >= horizon || at <= now => return out,
            Plan::At(at) => now = at,
        }
    }
}

/// Why [`plan_summary`] has no plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no role named {0:?}")]
    NoRole(String),
    #[error(transparent)]
    Limit(walltime::WalltimeError),
}

/// `aws-role-refresher --plan`: the STS calls of the life of one job with time limit
/// `limit` (Slurm forms such as `7-00:00:00` or `UNLIMITED`, or `90m`, `7d`) under `map`,
/// with the session cap of `role` (else the map's default cap), as one line. An unlimited
/// job is followed for a year, which is when Slurm reports its end.
pub fn plan_summary(
    map: &RoleMap,
    role: Option<&str>,
    limit: &str,
    now: SystemTime,
) -> Result<String, PlanError> {
    Ok(Life::of(map, role, limit, now)?.to_string())
}

/// One job's life as `--plan` sees it: its time limit, session cap, timing and calls.
struct Life<'a> {
    limit: &'a str,
    length: Duration,
    cap: Duration,
    timing: Timing,
    calls: u64,
}

impl<'a> Life<'a> {
    fn of(
        map: &RoleMap,
        role: Option<&str>,
        limit: &'a str,
        now: SystemTime,
    ) -> Result<Life<'a>, PlanError> {
        use walltime::{parse_human, parse_slurm, Walltime};
        let cap = match role {
            None => map.defaults.max_session,
            Some(name) => map
                .roles
                .get(name)
                .map(|r| r.cap(&map.defaults))
                .ok_or_else(|| PlanError::NoRole(name.to_string()))?,
        };
        let year = Duration::from_secs(365 * 24 * 3600);
        let length = match parse_slurm(limit).or_else(|_| parse_human(limit).map(Walltime::Limited))
        {
            Ok(Walltime::Limited(d)) => d,
            Ok(Walltime::Unlimited) => year,
            Err(e) => return Err(PlanError::Limit(e)),
        };
        let timing = Timing::of(map);
        let end = now + length;
        let life = lifetime(&timing, "plan", cap, now, Some(end), end + year);
        Ok(Life {
            limit,
            length,
            cap,
            timing,
            calls: life.len() as u64,
        })
    }
}

impl fmt::Display for Life<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let human = |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
        write!(
            f,
            "time limit {} ({} s), session cap {}, lead {} + jitter up to {}, margin {}: {} AssumeRole calls (1 + {} refreshes)",
            self.limit,
            self.length.as_secs(),
            human(self.cap),
            human(self.timing.lead),
            human(self.timing.jitter),
            human(self.timing.margin),
            self.calls,
            self.calls.saturating_sub(1),
        )
    }
}

/// `aws-role-refresher --plan LIMIT --nodes-per-job N --jobs-per-day J`: what a site's job
/// mix asks of the account's STS rate. Each node of a job makes the calls of
/// [`plan_summary`] (its prolog, then the refresher's renewals), so a day of `jobs` such jobs
/// makes `jobs × nodes × calls`; the starts come in bursts (a job array, the scheduler's
/// pass after an outage), and a burst of B node starts is served within `[sts] timeout`
/// only if the account allows B / timeout calls a second.
pub fn site_summary(
    map: &RoleMap,
    role: Option<&str>,
    limit: &str,
    nodes_per_job: u64,
    jobs_per_day: u64,
    now: SystemTime,
) -> Result<String, PlanError> {
    let one = Life::of(map, role, limit, now)?;
    let node_starts = jobs_per_day.saturating_mul(nodes_per_job);
    let per_day = node_starts.saturating_mul(one.calls);
    let pace = match &map.sts.node_rate {
        Some(r) => format!(
            "; node_rate = {} lets one node start {} jobs within the deadline",
            r.per_second,
            (f64::from(r.per_second) * map.sts.slot_budget().as_secs_f64()).floor()
        ),
        None => String::new(),
    };
    Ok(format!(
        "{one}\nsite: {jobs_per_day} such jobs a day on {nodes_per_job} nodes each = {node_starts} node starts: {per_day} AssumeRole calls a day, {:.2} a second on average ({:.2} for starts, {:.2} for refreshes); a burst of B node starts at once needs an account rate of at least B / {} a second (the [sts] timeout){pace}",
        per_day as f64 / 86_400.0,
        node_starts as f64 / 86_400.0,
        (per_day - node_starts) as f64 / 86_400.0,
        humantime::format_duration(map.sts.timeout),
    ))
}

/// The times in a state record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub issued: SystemTime,
    pub expiration: SystemTime,
    pub end: Option<SystemTime>,
}

impl Times {
    pub fn of(state: &JobState) -> Result<Times, String> {
        let time = |what: &str, v: &str| {
            humantime::parse_rfc3339(v).map_err(|e| format!("{what} {v:?}: {e}"))
        };
        Ok(Times {
            issued: time("issued", &state.issued)?,
            expiration: time("expiration", &state.expiration)?,
            end: crate::record::end_time(state)?,
        })
    }

    /// The job's end plus margin: nothing may be valid after it.
    pub fn limit(&self, t: &Timing) -> Option<SystemTime> {
        self.end.map(|e| e + t.margin)
    }
}

#[cfg(feature = "sts")]
mod renew;
#[cfg(feature = "sts")]
pub use self::renew::{record_failure, refresh, RefreshError, Refreshed};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{RoleRequest, MAX_END_TIME};
    use crate::record::job_of;

    const M: u64 = 60;
    const H: u64 = 3600;
    const D: u64 = 24 * H;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    fn timing(lead: u64, jitter: u64) -> Timing {
        Timing {
            lead: Duration::from_secs(lead),
            jitter: Duration::from_secs(jitter),
            margin: Duration::from_secs(5 * M),
            floor: Duration::from_secs(15 * M),
        }
    }

    /// Checks what must hold for every job: no gap between sessions, every replacement
    /// at least `lead` before the previous expiry (before any SDK's refresh window), no
    /// session below the floor or above the cap, and nothing valid past end + margin
    /// (except the floor's own minimum for jobs shorter than it).
    fn check_life(t: &Timing, cap: u64, len: Option<u64>, life: &[Session]) {
        let end = len.map(at);
        for w in life.windows(2) {
            let (a, b) = (w[0], w[1]);
            assert!(b.issued < a.expiration, "gap: {w:?}");
            let ahead = a.expiration.duration_since(b.issued).unwrap();
            let session = a.expiration.duration_since(a.issued).unwrap();
            assert!(
                ahead >= t.lead.min(session / 2),
                "refreshed only {ahead:?} before expiry"
            );
        }
        for s in life {
            let d = s.expiration.duration_since(s.issued).unwrap();
            assert!(d >= t.floor && d <= Duration::from_secs(cap), "{d:?}");
        }
        let last = life.last().unwrap();
        if let Some(end) = end {
            let limit = end + t.margin;
            let first = life[0];
            if first.expiration > limit {
                assert_eq!(
                    life.len(),
                    1,
                    "a job shorter than the floor is never refreshed"
                );
            } else {
                assert_eq!(
                    last.expiration, limit,
                    "the last session ends at end + margin"
                );
            }
        }
    }

    #[test]
    fn sts_calls_over_a_jobs_life_follow_the_table() {
        // (job length, role cap) -> AssumeRole calls (1 + refreshes), lead 20 min, no jitter.
        // A refresh every cap - lead = 40 min for a 1 h cap, 11 h 40 min for a 12 h cap;
        // calls = 1 + ceil((length + margin - cap) / (cap - lead)).
        let t = timing(20 * M, 0);
        let unlimited = 365 * D;
        let cases = [
            (Some(10 * M), H, 1),               // 10-min job: one 15-min session (the floor)
            (Some(10 * M), 12 * H, 1),          //   whatever the cap
            (Some(3 * H), H, 5),                // 3-h job, 1 h cap: ceil(125/40) = 4 refreshes
            (Some(3 * H), 12 * H, 1),           // 3-h job, 12 h cap: one 3 h 5 min session
            (Some(2 * D), H, 72),               // 2-day job: ceil(2825/40) = 71 refreshes
            (Some(2 * D), 12 * H, 5),           // ceil(2165/700) = 4 refreshes
            (Some(unlimited), H, 1 + 13_139),   // UNLIMITED (365 d): ceil(525545/40)
            (Some(unlimited), 12 * H, 1 + 750), // ceil(524885/700)
        ];
        for (len, cap, calls) in cases {
            let life = lifetime(
                &t,
                "42",
                Duration::from_secs(cap),
                at(0),
                len.map(at),
                at(400 * D),
            );
            assert_eq!(life.len(), calls, "job {len:?} s, cap {cap} s");
            check_life(&t, cap, len, &life);
        }
    }

    #[test]
    fn a_job_without_known_end_is_refreshed_until_the_horizon() {
        let t = timing(20 * M, 0);
        let life = lifetime(&t, "7", Duration::from_secs(H), at(0), None, at(D));
        // Every 40 min for a day: sessions start at 0, 40, ..., 1400 min.
        assert_eq!(life.len(), 36);
        check_life(&t, H, None, &life);
    }

    #[test]
    fn jitter_spreads_jobs_but_keeps_every_guarantee() {
        let t = timing(20 * M, 5 * M);
        let mut firsts = std::collections::BTreeSet::new();
        for job in 0..50 {
            let key = job.to_string();
            let life = lifetime(
                &t,
                &key,
                Duration::from_secs(H),
                at(0),
                Some(at(3 * H)),
                at(D),
            );
            check_life(&t, H, Some(3 * H), &life);
            firsts.insert(life[1].issued);
            // The same job and session always get the same time (a restarted refresher
            // keeps the schedule).
            assert_eq!(
                life,
                lifetime(
                    &t,
                    &key,
                    Duration::from_secs(H),
                    at(0),
                    Some(at(3 * H)),
                    at(D)
                )
            );
        }
        assert!(
            firsts.len() > 10,
            "50 jobs refreshed at only {} times",
            firsts.len()
        );
        for first in firsts {
            let before = at(H).duration_since(first).unwrap();
            assert!(before >= 20 * Duration::from_secs(M) && before <= 25 * Duration::from_secs(M));
        }
    }

    #[test]
    fn a_lead_longer_than_the_session_does_not_refresh_in_a_loop() {
        // 15-min sessions and a 20-min lead: a refresh every half session (7.5 min), then
        // one that ends exactly at end + margin (2 h 5 min): 15 + 1 calls.
        let t = timing(20 * M, 0);
        let life = lifetime(
            &t,
            "1",
            Duration::from_secs(15 * M),
            at(0),
            Some(at(2 * H)),
            at(D),
        );
        check_life(&t, 15 * M, Some(2 * H), &life);
        assert_eq!(life.len(), 16);
        for w in life.windows(2) {
            assert!(w[1].issued.duration_since(w[0].issued).unwrap() >= Duration::from_secs(5 * M));
        }
    }

    #[test]
    fn a_short_lead_refreshes_early_enough_for_the_last_session() {
        // Lead 1 min, job ends at 1 h 5 min (+ 5 min margin = 1 h 10 min). Refreshing 1 min
        // before the 1 h expiry would leave an 11-min session, below STS's 15: the refresh
        // comes at 55 min instead, for exactly 15 min.
        let t = timing(M, 0);
        let life = lifetime(
            &t,
            "1",
            Duration::from_secs(H),
            at(0),
            Some(at(H + 5 * M)),
            at(D),
        );
        check_life(&t, H, Some(H + 5 * M), &life);
        assert_eq!(life.len(), 2);
        assert_eq!(life[1].issued, at(55 * M));
    }

    #[test]
    fn plan_cases() {
        let t = timing(20 * M, 0);
        // Credentials reaching end + margin: nothing to do.
        assert_eq!(
            plan(&t, "1", at(0), at(H), Some(at(H - 5 * M))),
            Plan::Covered
        );
        assert_eq!(
            plan(&t, "1", at(0), at(H), Some(at(H))),
            Plan::At(at(40 * M))
        );
        // No end: refreshed.
        assert_eq!(plan(&t, "1", at(0), at(H), None), Plan::At(at(40 * M)));
        // Expiry before issue (clock jump, corrupt record): refresh now rather than never.
        assert_eq!(plan(&t, "1", at(H), at(0), None), Plan::At(at(H)));
    }

    #[test]
    fn the_plan_counts_the_calls_of_a_jobs_life() {
        let map = RoleMap::parse(
            "[sts]\nregion = \"us-east-1\"\n[roles.long]\narn = \"arn:aws:iam::123456789012:role/long\"\nmax_session = \"12h\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let now = at(0);
        // 1 h sessions (the default cap) over 2 h 5 min: the prolog's call and refreshes.
        let line = plan_summary(&map, None, "02:00:00", now).unwrap();
        assert!(
            line.starts_with("time limit 02:00:00 (7200 s), session cap 1h,"),
            "{line}"
        );
        let calls = |l: &str| -> usize {
            l.split(": ")
                .last()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let short = calls(&line);
        assert!(short >= 2, "{line}");
        // A 12 h cap makes fewer calls for the same job, and a job within one session one.
        assert!(calls(&plan_summary(&map, Some("long"), "2h", now).unwrap()) < short);
        assert_eq!(calls(&plan_summary(&map, None, "30", now).unwrap()), 1);
        // A week-long and an unlimited job end (a year away), they are not followed forever.
        assert!(calls(&plan_summary(&map, None, "7-00:00:00", now).unwrap()) > short);
        assert!(calls(&plan_summary(&map, None, "UNLIMITED", now).unwrap()) > short);
        let e = plan_summary(&map, Some("nope\u{1b}"), "2h", now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no role named") && !e.contains('\u{1b}'), "{e}");
        assert!(plan_summary(&map, None, "two hours", now).is_err());
    }

    /// The site's rate: every node of every job makes a job's calls; a day's worth, per
    /// second, split into starts and refreshes; and what node_rate lets a node start.
    #[test]
    fn the_site_plan_multiplies_a_jobs_calls_by_its_nodes_and_the_days_jobs() {
        let map = RoleMap::parse(
            "[sts]\nregion = \"us-east-1\"\nnode_rate = 20\n[roles.a]\narn = \"arn:aws:iam::123456789012:role/a\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let calls = Life::of(&map, None, "04:00:00", at(0)).unwrap().calls;
        assert!((4..=7).contains(&calls), "{calls}");
        let text = site_summary(&map, None, "04:00:00", 16, 5400, at(0)).unwrap();
        let site = text.lines().nth(1).unwrap();
        let per_day = 16 * 5400 * calls;
        assert!(
            site.starts_with(&format!(
                "site: 5400 such jobs a day on 16 nodes each = 86400 node starts: {per_day} AssumeRole calls a day, {:.2} a second on average (1.00 for starts, {:.2} for refreshes);",
                per_day as f64 / 86_400.0,
                (per_day - 86_400) as f64 / 86_400.0
            )),
            "{site}"
        );
        assert!(
            site.ends_with("needs an account rate of at least B / 8s a second (the [sts] timeout); node_rate = 20 lets one node start 140 jobs within the deadline"),
            "{site}"
        );
    }

    #[test]
    fn state_records_give_back_the_job() {
        use crate::testing::job;
        let mut j = job("42");
        j.array_task_id = Some(3);
        j.array_job_id = Some("40".into());
        j.requested = Some(RoleRequest::Named("demo".into()));
        j.end_time = Some(at(H));
        j.restart_count = 2;
        let state = JobState {
            session_name: "slurm-42-3".into(),
            expiration: crate::creds::rfc3339(at(H)),
            end_time: Some(1_800_000_000 + H),
            issued: crate::creds::rfc3339(at(0)),
            partition: j.partition.clone(),
            account: j.account.clone(),
            cluster: j.cluster.clone(),
            array_job_id: j.array_job_id.clone(),
            array_task_id: j.array_task_id,
            restart_count: 2,
            ..crate::testing::sample_state(&j.user, j.uid.as_raw(), j.gid.as_raw())
        };
        let back = job_of(&state).unwrap();
        assert_eq!(format!("{back:?}"), format!("{j:?}"));
        let times = Times::of(&state).unwrap();
        assert_eq!(
            (times.issued, times.expiration, times.end),
            (at(0), at(H), Some(at(H)))
        );
        let mut bad = state.clone();
        bad.job_id = "../1".into();
        assert!(job_of(&bad).is_err());
        bad = state;
        bad.scheduler = "lsf".into();
        assert!(job_of(&bad).unwrap_err().contains("lsf"));
    }

    /// Found by the `state_record` fuzz target
    /// (fuzz/regressions/state_record/end-time-past-systemtime): an `end_time` beyond what
    /// `SystemTime` holds (any u64 above i64::MAX seconds here) panicked in `job_of` and
    /// `Times::of`, so one damaged state.json crashed the refresher on every scan; one just
    /// below that overflowed later, adding the margin and the orphan grace.
    #[test]
    fn end_times_past_the_year_9999_are_refused_not_a_panic() {
        let mut state = crate::testing::sample_state("alice", 1001, 1001);
        for bad in [
            MAX_END_TIME + 1,
            i64::MAX as u64,
            i64::MAX as u64 + 1,
            u64::MAX,
        ] {
            state.end_time = Some(bad);
            let e = Times::of(&state).unwrap_err();
            assert!(e.contains("end_time") && e.contains("9999"), "{e}");
            assert!(job_of(&state).unwrap_err().contains("end_time"));
        }
        // The last accepted end leaves room for the largest margin and orphan grace.
        state.end_time = Some(MAX_END_TIME);
        let end = Times::of(&state).unwrap().end.unwrap();
        assert_eq!(job_of(&state).unwrap().end_time, Some(end));
        let t = Timing {
            lead: Duration::from_secs(6 * H),
            jitter: Duration::from_secs(H),
            margin: Duration::from_secs(H),
            floor: Duration::from_secs(1),
        };
        let limit = Times::of(&state).unwrap().limit(&t).unwrap();
        assert!(limit
            .checked_add(Duration::from_secs(30 * 86_400))
            .is_some());
    }
}
