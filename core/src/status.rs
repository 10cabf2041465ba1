//! What a node holds: every job directory with its role, session, expiry, last refresh and
//! last error (`aws-role-prolog --status`). Read from the records only — never a secret.

use std::time::{Duration, SystemTime};

use crate::record::{FailureRecord, JobState};
use crate::store::{Store, StoreError, FAILURE, STATE};

/// One job directory, as far as its records tell.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// The job has credentials.
    Live { dir: String, state: Box<JobState> },
    /// The job's role could not be given.
    Failed { dir: String, failure: FailureRecord },
    /// Neither record (a prolog in progress), or one that cannot be read.
    Other { dir: String, note: String },
}

/// Every job directory under the store, in name order.
pub fn list(store: &Store) -> Result<Vec<Entry>, StoreError> {
    let scan = store.scan()?;
    let mut out = Vec::with_capacity(scan.names().len());
    for dir in scan.names() {
        let dir = dir.clone();
        // One directory open at a time; one that cannot be opened is listed with why.
        let jd = match scan.open(&dir) {
            Ok(Some(jd)) => jd,
            Ok(None) => continue,
            Err(e) => {
                out.push(Entry::Other {
                    dir,
                    note: e.to_string(),
                });
                continue;
            }
        };
        let entry = match jd.read_record::<JobState>(STATE) {
            Ok(Some(state)) => Entry::Live {
                dir,
                state: Box::new(state),
            },
            Err(e) => Entry::Other {
                dir,
                note: e.to_string(),
            },
            Ok(None) => match jd.read_record::<FailureRecord>(FAILURE) {
                Ok(Some(failure)) => Entry::Failed { dir, failure },
                Ok(None) => Entry::Other {
                    dir,
                    note: "no records (a prolog may be running)".into(),
                },
                Err(e) => Entry::Other {
                    dir,
                    note: e.to_string(),
                },
            },
        };
        out.push(entry);
    }
    Ok(out)
}

/// A table for people: one line per job directory.
pub fn render(entries: &[Entry], now: SystemTime) -> String {
    let mut rows = vec![[
        "JOB",
        "USER",
        "ROLE",
        "SESSION",
        "EXPIRES",
        "LAST REFRESH",
        "REFRESHES",
        "LAST ERROR",
    ]
    .map(String::from)];
    for e in entries {
        rows.push(match e {
            Entry::Live { state, .. } => [
                state.job_id.clone(),
                state.user.clone(),
                state.role.clone(),
                state.session_name.clone(),
                relative(&state.expiration, now),
                relative(&state.issued, now),
                state.refreshes.to_string(),
                match (&state.last_error, &state.last_error_time) {
                    (Some(e), Some(t)) => format!("{} ({})", e, relative(t, now)),
                    (Some(e), None) => e.clone(),
                    _ => "-".into(),
                },
            ],
            Entry::Failed { failure, .. } => blank(
                &failure.job_id,
                &format!("no credentials: {}", failure.reason),
            ),
            Entry::Other { dir, note } => blank(dir, note),
        });
    }
    // Records are ours, but a reason may quote what a user typed.
    for r in rows.iter_mut() {
        for cell in r.iter_mut() {
            *cell = crate::text::one_line(cell, 200);
        }
    }
    let mut widths = [0usize; 8];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A row with only the job and a note.
fn blank(job: &str, note: &str) -> [String; 8] {
    let mut row: [String; 8] = std::array::from_fn(|_| "-".to_string());
    row[0] = job.to_string();
    row[7] = note.to_string();
    row
}

/// `2026-11-21T10:00:00Z (in 35m)` / `(12s ago)`.
fn relative(rfc3339: &str, now: SystemTime) -> String {
    let Ok(t) = humantime::parse_rfc3339(rfc3339) else {
        return rfc3339.to_string();
    };
    let round = |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
    match t.duration_since(now) {
        Ok(ahead) => format!("{rfc3339} (in {})", round(ahead)),
        Err(e) => format!("{rfc3339} ({} ago)", round(e.duration())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> JobState {
        JobState {
            refreshes: 3,
            last_error: Some("STS could not be reached".into()),
            last_error_time: Some("2027-01-15T07:40:00Z".into()),
            ..crate::testing::sample_state("alice", 1001, 1001)
        }
    }

    #[test]
    fn the_table_shows_each_job_on_one_line() {
        let now = humantime::parse_rfc3339("2027-01-15T07:45:00Z").unwrap();
        let entries = [
            Entry::Live {
                dir: "42".into(),
                state: Box::new(state()),
            },
            Entry::Failed {
                dir: "43".into(),
                failure: FailureRecord {
                    job_id: "43".into(),
                    reason: "not allowed\n\u{1b}[31mforged line".into(),
                    time: "2027-01-15T07:00:00Z".into(),
                },
            },
            Entry::Other {
                dir: "44".into(),
                note: "no records (a prolog may be running)".into(),
            },
        ];
        let table = render(&entries, now);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("JOB"));
        for want in [
            "alice",
            "demo",
            "slurm-42-0",
            "2027-01-15T08:00:00Z (in 15m)",
            "2027-01-15T07:00:00Z (45m ago)",
            "STS could not be reached (2027-01-15T07:40:00Z (5m ago))",
        ] {
            assert!(lines[1].contains(want), "{want:?} not in {:?}", lines[1]);
        }
        assert!(
            lines[2].contains("no credentials: not allowed\\n"),
            "{:?}",
            lines[2]
        );
        assert!(!table.contains('\u{1b}'));
        assert!(lines[3].starts_with("44"));
    }
}
