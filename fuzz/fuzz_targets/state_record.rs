//! The records read back from a job directory: `state.json` (root's) and `failure.json`
//! (the job user's), and what the refresher, `--status` and a refresh do with them.
//!
//! Input: the file's bytes (`JobDir::read_record` reads at most 64 KiB of anything).
//!
//! Properties: decoding never panics; a decoded record written back (as `write_record`
//! does) decodes to the same record; the job and times taken from a state record never
//! panic, and any times accepted leave room for the refresher's arithmetic (end + margin +
//! orphan grace); the refresh plan never falls before the credentials were issued; the
//! `--status` table shows one line per record and no control character.
#![no_main]

use std::time::{Duration, SystemTime};

use aws_role::job::Scheduler;
use aws_role::record::job_of;
use aws_role::refresh::{plan, Plan, Times, Timing};
use aws_role::status::{render, Entry};
use aws_role::record::{FailureRecord, JobState};
use aws_role::store::parse_record;
use libfuzzer_sys::fuzz_target;

/// The widest timing a valid map allows, and the defaults.
const TIMINGS: [Timing; 2] = [
    Timing {
        lead: Duration::from_secs(6 * 3600),
        jitter: Duration::from_secs(3600),
        margin: Duration::from_secs(3600),
        floor: Duration::from_secs(1),
    },
    Timing {
        lead: Duration::from_secs(20 * 60),
        jitter: Duration::from_secs(5 * 60),
        margin: Duration::from_secs(5 * 60),
        floor: Duration::from_secs(900),
    },
];
/// `[refresh] orphan_grace` at its largest.
const MAX_ORPHAN_GRACE: Duration = Duration::from_secs(30 * 86_400);

fn check_table(entry: Entry) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let table = render(&[entry], now);
    assert_eq!(table.lines().count(), 2, "{table:?}");
    assert!(
        !table.chars().any(|c| c.is_control() && c != '\n'),
        "{table:?}"
    );
}

fn check_state(state: JobState) {
    let text = serde_json::to_string_pretty(&state).expect("a record serializes");
    let back: JobState = parse_record(text.as_bytes()).expect("a written record reads back");
    assert_eq!(back, state);
    if let Ok(job) = job_of(&state) {
        let id = match job.scheduler {
            // Slurm ids are normalised (`007` is job 7).
            Scheduler::Slurm => state.job_id.parse::<u32>().expect("a u32").to_string(),
            Scheduler::Pbs => state.job_id.clone(),
        };
        assert_eq!(job.id.as_str(), id);
        assert_eq!(job.user, state.user);
        assert_eq!(
            job.end_time,
            Times::of(&state).ok().and_then(|t| t.end).or(job.end_time)
        );
    }
    if let Ok(times) = Times::of(&state) {
        for t in &TIMINGS {
            if let Some(limit) = times.limit(t) {
                // The refresher removes a job whose limit is over orphan_grace ago.
                assert!(limit.checked_add(MAX_ORPHAN_GRACE).is_some());
            }
            match plan(t, &state.job_id, times.issued, times.expiration, times.end) {
                Plan::Covered => assert!(times.limit(t).is_some()),
                Plan::At(at) => assert!(at >= times.issued, "refresh before issue"),
            }
        }
    }
    check_table(Entry::Live {
        dir: state.job_id.clone(),
        state: Box::new(state),
    });
}

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = parse_record::<JobState>(data) {
        check_state(state);
    }
    if let Ok(failure) = parse_record::<FailureRecord>(data) {
        let text = serde_json::to_string_pretty(&failure).expect("a record serializes");
        let back: FailureRecord = parse_record(text.as_bytes()).expect("reads back");
        assert_eq!(back, failure);
        check_table(Entry::Failed {
            dir: failure.job_id.clone(),
            failure,
        });
    }
});
