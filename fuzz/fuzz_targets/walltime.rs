//! Slurm `--time`, PBS `walltime=` and the map's human durations.
//!
//! Properties: each parser agrees with a small reference parser written here in 128-bit
//! arithmetic (so it cannot overflow), an error quotes the input, `TooLong` only for
//! well-formed input, every `Ok` is within the 200-year bound and round-trips through the
//! canonical forms, and the AssumeRole duration derived from it stays within STS's bounds.
#![no_main]

use std::time::{Duration, SystemTime};

use aws_role::walltime::{
    parse_human, parse_pbs, parse_slurm, session_duration, Walltime, WalltimeError, MAX_LIMIT_SECS,
    MAX_SESSION, MIN_SESSION,
};
use libfuzzer_sys::fuzz_target;

/// What the reference parsers say: a number of seconds, or why not.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    Secs(u128),
    Syntax,
}

/// ASCII digits as a saturating u128 (every field that overflows u64 is over the bound).
fn num(s: &str) -> Option<u128> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u128, |n, b| {
        n.saturating_mul(10).saturating_add(u128::from(b - b'0'))
    }))
}

fn sum(parts: &[(u128, u128)]) -> u128 {
    parts
        .iter()
        .fold(0u128, |s, &(v, u)| s.saturating_add(v.saturating_mul(u)))
}

/// libslurm's forms, as documented on `parse_slurm` (without the sign and the keywords).
fn ref_slurm(s: &str) -> Want {
    let (days, rest) = match s.split_once('-') {
        Some((d, rest)) => match num(d) {
            Some(d) => (Some(d), rest),
            None => return Want::Syntax,
        },
        None => (None, s),
    };
    let f: Vec<&str> = rest.split(':').collect();
    let Some(v) = f.iter().map(|x| num(x)).collect::<Option<Vec<u128>>>() else {
        return Want::Syntax;
    };
    let secs = match (days, v.as_slice()) {
        (Some(d), [h]) => sum(&[(d, 86_400), (*h, 3_600)]),
        (Some(d), [h, m]) => sum(&[(d, 86_400), (*h, 3_600), (*m, 60)]),
        (d, [h, m, s]) => sum(&[(d.unwrap_or(0), 86_400), (*h, 3_600), (*m, 60), (*s, 1)]),
        (None, [m]) => sum(&[(*m, 60)]),
        (None, [m, s]) => sum(&[(*m, 60), (*s, 1)]),
        _ => return Want::Syntax,
    };
    Want::Secs(secs)
}

/// PBS: seconds, MM:SS, HH:MM:SS, DD:HH:MM:SS, the last field with an optional fraction
/// that rounds up.
fn ref_pbs(s: &str) -> Want {
    let f: Vec<&str> = s.split(':').collect();
    if f.len() > 4 {
        return Want::Syntax;
    }
    let (last, init) = f.split_last().expect("split yields at least one field");
    let (whole, up) = match last.split_once('.') {
        None => (*last, 0),
        Some((w, frac)) => {
            if num(frac).is_none() {
                return Want::Syntax;
            }
            (w, u128::from(frac.bytes().any(|b| b != b'0')))
        }
    };
    let Some(mut v) = init.iter().map(|x| num(x)).collect::<Option<Vec<u128>>>() else {
        return Want::Syntax;
    };
    let Some(w) = num(whole) else {
        return Want::Syntax;
    };
    v.push(w.saturating_add(up));
    let units = [86_400u128, 3_600, 60, 1];
    let units = &units[4 - v.len()..];
    Want::Secs(sum(&v
        .iter()
        .copied()
        .zip(units.iter().copied())
        .collect::<Vec<_>>()))
}

fn check_slurm(s: &str) {
    let got = parse_slurm(s);
    if let Err(e) = &got {
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("{s:?}")),
            "{msg} does not quote {s:?}"
        );
    }
    let keyword = ["-1", "INFINITE", "UNLIMITED"]
        .iter()
        .any(|w| s.eq_ignore_ascii_case(w));
    if keyword {
        assert_eq!(got, Ok(Walltime::Unlimited), "{s:?}");
        return;
    }
    let value = s.to_owned();
    let (negative, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let want = match (negative, ref_slurm(body)) {
        (_, Want::Syntax) => Err(WalltimeError::Slurm { value }),
        (true, Want::Secs(_)) => Err(WalltimeError::SlurmNegative { value }),
        (false, Want::Secs(0)) => Ok(Walltime::Unlimited),
        (false, Want::Secs(n)) if n <= u128::from(MAX_LIMIT_SECS) => Ok(Walltime::Limited(
            Duration::from_secs(u64::try_from(n).expect("within the bound")),
        )),
        (false, Want::Secs(_)) => Err(WalltimeError::TooLong {
            what: "Slurm time limit",
            value,
        }),
    };
    assert_eq!(got, want, "parse_slurm({s:?})");
    if let Ok(Walltime::Limited(d)) = got {
        let t = d.as_secs();
        assert!(t > 0 && t <= MAX_LIMIT_SECS);
        // The forms Slurm prints round-trip.
        let (days, h, m, sec) = (t / 86_400, t % 86_400 / 3_600, t % 3_600 / 60, t % 60);
        for form in [
            format!("{days}-{h:02}:{m:02}:{sec:02}"),
            format!("{}:{m:02}:{sec:02}", t / 3_600),
            format!("{}:{sec:02}", t / 60),
        ] {
            assert_eq!(parse_slurm(&form), got, "{form:?} from {s:?}");
        }
        check_session(d);
    }
}

fn check_pbs(s: &str) {
    let got = parse_pbs(s);
    let value = s.to_owned();
    let want = match ref_pbs(s) {
        Want::Syntax => Err(WalltimeError::Pbs { value }),
        Want::Secs(n) if n <= u128::from(MAX_LIMIT_SECS) => Ok(Duration::from_secs(
            u64::try_from(n).expect("within the bound"),
        )),
        Want::Secs(_) => Err(WalltimeError::TooLong {
            what: "PBS walltime",
            value,
        }),
    };
    assert_eq!(got, want, "parse_pbs({s:?})");
    match got {
        Ok(d) => {
            let t = d.as_secs();
            assert_eq!(d.subsec_nanos(), 0);
            let (days, h, m, sec) = (t / 86_400, t % 86_400 / 3_600, t % 3_600 / 60, t % 60);
            for form in [
                t.to_string(),
                format!("{days:02}:{h:02}:{m:02}:{sec:02}"),
                format!("{}:{m:02}:{sec:02}", t / 3_600),
                format!("{}:{sec:02}", t / 60),
            ] {
                assert_eq!(parse_pbs(&form), Ok(d), "{form:?} from {s:?}");
            }
            check_session(d);
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("{s:?}")),
                "{msg} does not quote {s:?}"
            );
        }
    }
}

/// A job of length `d` starting now: whatever the margin and cap, STS gets a whole number
/// of seconds within its bounds, and a later end never gets a shorter session.
fn check_session(d: Duration) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let end = now.checked_add(d);
    for (margin, cap) in [
        (Duration::ZERO, MAX_SESSION),
        (Duration::from_secs(300), Duration::from_secs(3_600)),
        (Duration::MAX, Duration::MAX),
    ] {
        let r = session_duration(end, now, margin, MIN_SESSION, cap);
        assert!((MIN_SESSION..=MAX_SESSION).contains(&r), "{r:?}");
        assert_eq!(r.subsec_nanos(), 0);
        let shorter = session_duration(now.checked_add(d / 2), now, margin, MIN_SESSION, cap);
        assert!(shorter <= r, "{shorter:?} > {r:?} for {d:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    check_slurm(s);
    check_pbs(s);
    match parse_human(s) {
        Ok(d) => {
            // The map checks every human duration against its own bounds; any parsed value
            // must be comparable and usable as a cap.
            let r = session_duration(None, SystemTime::UNIX_EPOCH, d, MIN_SESSION, d);
            assert!((MIN_SESSION..=MAX_SESSION).contains(&r));
        }
        Err(e) => assert!(
            matches!(&e, WalltimeError::Human { value, .. } if value == s),
            "{e:?}"
        ),
    }
});
