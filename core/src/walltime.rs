//! Job time limits (Slurm `--time`, PBS/Torque `walltime=`, human durations
//! from the site map) and the AssumeRole session length derived from them.
//!
//! Every parser here is total: any `&str` yields `Ok` or `Err`, never a panic,
//! and all arithmetic is checked.

use std::time::{Duration, SystemTime};

/// Shortest session AssumeRole accepts (`DurationSeconds` = 900).
pub const MIN_SESSION: Duration = Duration::from_secs(900);
/// Longest session AssumeRole accepts (`DurationSeconds` = 43200, 12 h).
pub const MAX_SESSION: Duration = Duration::from_secs(43_200);

/// Sanity bound on parsed scheduler time limits: 200 years (365-day years).
/// Anything longer is a typo or garbage, so it is an error. It is above
/// `u32::MAX` seconds (~136 years) so that every `u32` PBS walltime parses.
const MAX_LIMIT_YEARS: u64 = 200;
/// The sanity bound in seconds: no parsed limit is longer.
pub const MAX_LIMIT_SECS: u64 = MAX_LIMIT_YEARS * 365 * 86_400;

const SLURM_FORMS: &str = "minutes, minutes:seconds, hours:minutes:seconds, days-hours, \
    days-hours:minutes or days-hours:minutes:seconds, or UNLIMITED";
const PBS_FORMS: &str = "seconds, MM:SS, HH:MM:SS or DD:HH:MM:SS \
    (the last field may have a fraction, e.g. 01:00:00.5)";
const HUMAN_FORMS: &str = "a duration such as 90m, 12h or 1h 30m";

/// A job's time limit as the scheduler states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walltime {
    /// No time limit (`UNLIMITED`, `INFINITE`, `-1` or zero for Slurm).
    Unlimited,
    /// A time limit of this length (never zero when it comes from [`parse_slurm`]).
    Limited(Duration),
}

/// Why a time limit or duration could not be parsed. The message quotes the
/// offending value and says which forms are accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalltimeError {
    /// Not one of Slurm's `--time` forms.
    #[error("invalid Slurm time limit {value:?}: expected {forms}", forms = SLURM_FORMS)]
    Slurm {
        /// The rejected input.
        value: String,
    },
    /// A negative Slurm time limit other than `-1`.
    #[error(
        "invalid Slurm time limit {value:?}: negative values are not accepted \
         (only -1, which means UNLIMITED); expected {forms}",
        forms = SLURM_FORMS
    )]
    SlurmNegative {
        /// The rejected input.
        value: String,
    },
    /// Not one of the PBS/Torque `walltime=` forms.
    #[error("invalid PBS walltime {value:?}: expected {forms}", forms = PBS_FORMS)]
    Pbs {
        /// The rejected input.
        value: String,
    },
    /// Well-formed, but longer than the sanity bound (or overflowing).
    #[error(
        "{what} {value:?} is too long: at most {years} years are accepted",
        years = MAX_LIMIT_YEARS
    )]
    TooLong {
        /// What was being parsed, e.g. `"Slurm time limit"` or `"PBS walltime"`.
        what: &'static str,
        /// The rejected input.
        value: String,
    },
    /// Rejected by humantime; `reason` is humantime's own message.
    #[error("invalid duration {value:?}: {reason}; expected {forms}", forms = HUMAN_FORMS)]
    Human {
        /// The rejected input.
        value: String,
        /// humantime's error text.
        reason: String,
    },
}

/// Internal failure of a number or a sum, turned into a [`WalltimeError`]
/// by the caller, which knows the input and the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bad {
    Syntax,
    TooLong,
}

/// Whether `s` is a non-empty run of ASCII digits (no sign, no spaces).
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A non-empty run of ASCII digits as `u64` (no sign, no spaces: `u64::from_str`
/// alone would accept a leading `+`).
fn digits(s: &str) -> Result<u64, Bad> {
    if !is_digits(s) {
        return Err(Bad::Syntax);
    }
    // Only digits, so the only possible failure is overflow.
    s.parse::<u64>().map_err(|_| Bad::TooLong)
}

/// `Σ value × unit` with checked arithmetic and the sanity bound.
fn total(parts: &[(u64, u64)]) -> Result<u64, Bad> {
    let mut sum: u64 = 0;
    for &(value, unit) in parts {
        sum = value
            .checked_mul(unit)
            .and_then(|v| sum.checked_add(v))
            .ok_or(Bad::TooLong)?;
    }
    if sum > MAX_LIMIT_SECS {
        return Err(Bad::TooLong);
    }
    Ok(sum)
}

/// Splits `s` on `sep` into at most `N` fields; `None` if there are more.
fn split_at_most<const N: usize>(s: &str, sep: char) -> Option<([&str; N], usize)> {
    let mut out = [""; N];
    let mut n = 0;
    for field in s.split(sep) {
        *out.get_mut(n)? = field;
        n += 1;
    }
    Some((out, n))
}

fn slurm_secs(s: &str) -> Result<u64, Bad> {
    let (days, rest) = match s.split_once('-') {
        Some((d, rest)) => (Some(d), rest),
        None => (None, s),
    };
    let (f, n) = split_at_most::<3>(rest, ':').ok_or(Bad::Syntax)?;
    let (h, m, sec) = match (days, n, f) {
        // days-hours[:minutes[:seconds]]
        (Some(_), 1, [h, _, _]) => (h, "0", "0"),
        (Some(_), 2, [h, m, _]) => (h, m, "0"),
        // hours:minutes:seconds, with or without days
        (_, 3, [h, m, sec]) => (h, m, sec),
        // minutes[:seconds]
        (None, 1, [m, _, _]) => ("0", m, "0"),
        (None, 2, [m, sec, _]) => ("0", m, sec),
        _ => return Err(Bad::Syntax),
    };
    let days = days.unwrap_or("0");
    // Form before size: a malformed limit is a syntax error even when one of its fields
    // is also too large. A second '-' or any other stray character ends up in a field.
    if ![days, h, m, sec].iter().all(|f| is_digits(f)) {
        return Err(Bad::Syntax);
    }
    total(&[
        (digits(days)?, 86_400),
        (digits(h)?, 3_600),
        (digits(m)?, 60),
        (digits(sec)?, 1),
    ])
}

/// Parses a Slurm time limit (`--time`, `TimeLimit=`), as libslurm's
/// `slurm_time_str2secs` does: a bare number is **minutes**; `minutes:seconds`,
/// `hours:minutes:seconds`, `days-hours`, `days-hours:minutes`,
/// `days-hours:minutes:seconds`. Fields are not range-checked (`1:90` is 150 s).
/// `-1`, `INFINITE` and `UNLIMITED` (any case) and any limit that adds up to
/// zero (Slurm: "a time limit of zero requests that no time limit be imposed")
/// are [`Walltime::Unlimited`]. No surrounding whitespace is allowed.
///
/// Deliberate deviation: libslurm turns `-5` into -432000 s (minus five days);
/// we reject every negative value except `-1`.
pub fn parse_slurm(s: &str) -> Result<Walltime, WalltimeError> {
    if ["-1", "INFINITE", "UNLIMITED"]
        .iter()
        .any(|w| s.eq_ignore_ascii_case(w))
    {
        return Ok(Walltime::Unlimited);
    }
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    match (negative, slurm_secs(body)) {
        (_, Err(Bad::Syntax)) => Err(WalltimeError::Slurm {
            value: s.to_owned(),
        }),
        // Well-formed after the sign: say why it is refused.
        (true, _) => Err(WalltimeError::SlurmNegative {
            value: s.to_owned(),
        }),
        (false, Ok(0)) => Ok(Walltime::Unlimited),
        (false, Ok(secs)) => Ok(Walltime::Limited(Duration::from_secs(secs))),
        (false, Err(Bad::TooLong)) => Err(WalltimeError::TooLong {
            what: "Slurm time limit",
            value: s.to_owned(),
        }),
    }
}

/// `DIGITS[.DIGITS]` as whole seconds, a non-zero fraction rounding up.
fn seconds_rounded_up(s: &str) -> Result<u64, Bad> {
    match s.split_once('.') {
        None => digits(s),
        Some((whole, frac)) => {
            let whole = digits(whole)?;
            if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Bad::Syntax);
            }
            if frac.bytes().any(|b| b != b'0') {
                whole.checked_add(1).ok_or(Bad::TooLong)
            } else {
                Ok(whole)
            }
        }
    }
}

/// Whether `s` is `DIGITS[.DIGITS]`.
fn is_seconds(s: &str) -> bool {
    match s.split_once('.') {
        None => is_digits(s),
        Some((whole, frac)) => is_digits(whole) && is_digits(frac),
    }
}

fn pbs_secs(s: &str) -> Result<u64, Bad> {
    let (f, n) = split_at_most::<4>(s, ':').ok_or(Bad::Syntax)?;
    // Form before size, as in `slurm_secs`: only the last field may have a fraction.
    let well_formed = f
        .get(..n)
        .and_then(<[&str]>::split_last)
        .is_some_and(|(last, init)| is_seconds(last) && init.iter().all(|x| is_digits(x)));
    if !well_formed {
        return Err(Bad::Syntax);
    }
    match (n, f) {
        (1, [sec, _, _, _]) => total(&[(seconds_rounded_up(sec)?, 1)]),
        (2, [m, sec, _, _]) => total(&[(digits(m)?, 60), (seconds_rounded_up(sec)?, 1)]),
        (3, [h, m, sec, _]) => total(&[
            (digits(h)?, 3_600),
            (digits(m)?, 60),
            (seconds_rounded_up(sec)?, 1),
        ]),
        (4, [d, h, m, sec]) => total(&[
            (digits(d)?, 86_400),
            (digits(h)?, 3_600),
            (digits(m)?, 60),
            (seconds_rounded_up(sec)?, 1),
        ]),
        _ => Err(Bad::Syntax),
    }
}

/// Parses a PBS/Torque `walltime=`: a bare number is **seconds** (unlike
/// Slurm), or `MM:SS`, `HH:MM:SS`, `DD:HH:MM:SS`. The last field may carry a
/// fraction, rounded up to the next whole second (`01:00:00.5` is 3601 s).
/// Fields are not range-checked. Rejects empty input, whitespace, signs, empty
/// fields, more than four fields, and anything over the sanity bound.
pub fn parse_pbs(s: &str) -> Result<Duration, WalltimeError> {
    match pbs_secs(s) {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(Bad::Syntax) => Err(WalltimeError::Pbs {
            value: s.to_owned(),
        }),
        Err(Bad::TooLong) => Err(WalltimeError::TooLong {
            what: "PBS walltime",
            value: s.to_owned(),
        }),
    }
}

/// The most ASCII digits a human duration may have, all numbers together.
///
/// humantime 2.4 panics instead of failing when a sum reaches `u64::MAX` seconds with an
/// exact carry of nanoseconds (`"18446744073709551615s 1000ms"`; chronotope/humantime#66,
/// found by the `walltime` fuzz target). Numbers made of at most 11 digits in all add up
/// to less than 10^11 + 11, which even in years (31 557 600 s, humantime's longest unit)
/// stays far below `u64::MAX` seconds, so humantime never gets there. No duration the map
/// accepts needs more (the longest is 30 days).
pub const HUMAN_MAX_DIGITS: usize = 11;

/// Parses a human duration from the site map with humantime (`90m`, `12h`,
/// `1h 30m`). Beware humantime's units: `1M` is one *month*, `1m` one minute.
/// More than [`HUMAN_MAX_DIGITS`] digits in all are refused.
pub fn parse_human(s: &str) -> Result<Duration, WalltimeError> {
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    if digits > HUMAN_MAX_DIGITS {
        return Err(WalltimeError::Human {
            value: s.to_owned(),
            reason: format!("it has {digits} digits, at most {HUMAN_MAX_DIGITS} are accepted"),
        });
    }
    humantime::parse_duration(s).map_err(|e| WalltimeError::Human {
        value: s.to_owned(),
        reason: e.to_string(),
    })
}

/// Seconds AssumeRole should ask for: clamp(end - now + margin, floor, cap), where cap itself is
/// first clamped into floor..=MAX_SESSION. `end == None` means no known end (unlimited): returns the cap.
/// An end already in the past yields the floor. Never panics (no overflow on huge values).
///
/// `floor` is STS's [`MIN_SESSION`] except against a local STS emulator (`[sts]
/// min_session`, which lets tests watch many refreshes in minutes); it is kept within
/// 1 s..=MIN_SESSION.
///
/// The result is always a whole number of seconds (a partial second rounds up,
/// then the clamp applies), so `as_secs()` loses nothing.
pub fn session_duration(
    end: Option<SystemTime>,
    now: SystemTime,
    margin: Duration,
    floor: Duration,
    cap: Duration,
) -> Duration {
    let floor = floor.clamp(Duration::from_secs(1), MIN_SESSION);
    let cap = cap.clamp(floor, MAX_SESSION).as_secs();
    let min = floor.as_secs();
    let Some(end) = end else {
        return Duration::from_secs(cap);
    };
    let Ok(remaining) = end.duration_since(now) else {
        return Duration::from_secs(min);
    };
    let wanted = remaining.saturating_add(margin);
    let mut secs = wanted.as_secs();
    if wanted.subsec_nanos() > 0 {
        secs = secs.saturating_add(1);
    }
    Duration::from_secs(secs.clamp(min, cap))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: u64 = 3_600;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// The golden table measured from libslurm's `slurm_time_str2secs`, with
    /// our mapping: `None` = error, `Some(Unlimited)`, `Some(Limited(secs))`.
    #[test]
    fn slurm_golden_table() {
        use Walltime::{Limited, Unlimited};
        let table: &[(&str, Option<Walltime>)] = &[
            // libslurm returns 0 here; Slurm treats a zero limit as "no limit".
            ("0", Some(Unlimited)),
            ("1", Some(Limited(secs(60)))),
            ("90", Some(Limited(secs(5_400)))),
            ("1:30", Some(Limited(secs(90)))),
            ("60:00", Some(Limited(secs(3_600)))),
            ("36:00", Some(Limited(secs(2_160)))), // 36 minutes, not 36 hours
            ("1:00:00", Some(Limited(secs(3_600)))),
            ("01:00:00", Some(Limited(secs(3_600)))),
            ("100:00:00", Some(Limited(secs(360_000)))),
            ("1-0", Some(Limited(secs(86_400)))),
            ("2-12", Some(Limited(secs(216_000)))),
            ("2-12:30", Some(Limited(secs(217_800)))),
            ("2-12:30:15", Some(Limited(secs(217_815)))),
            ("1-00:00:00", Some(Limited(secs(86_400)))),
            ("0-0:0:1", Some(Limited(secs(1)))),
            ("1:90", Some(Limited(secs(150)))), // no range check
            ("UNLIMITED", Some(Unlimited)),
            ("unlimited", Some(Unlimited)),
            ("INFINITE", Some(Unlimited)),
            ("-1", Some(Unlimited)),
            ("1h", None),
            ("1.5", None),
            ("1:2:3:4", None),
            ("1-2-3", None),
            ("1:2-3", None),
            (":30", None),
            ("1:", None),
            ("", None),
            (" 5", None),
            ("5 ", None),
        ];
        for &(input, want) in table {
            let got = parse_slurm(input);
            match want {
                Some(w) => assert_eq!(got, Ok(w), "parse_slurm({input:?})"),
                None => assert!(
                    matches!(got, Err(WalltimeError::Slurm { ref value }) if value == input),
                    "parse_slurm({input:?}) = {got:?}, want a Slurm format error"
                ),
            }
        }
    }

    #[test]
    fn slurm_more_cases() {
        use Walltime::{Limited, Unlimited};
        let table: &[(&str, Option<Walltime>)] = &[
            ("Infinite", Some(Unlimited)),
            ("uNlImItEd", Some(Unlimited)),
            // Every zero total is "no limit", not a zero-length job.
            ("0:00", Some(Unlimited)),
            ("0-0", Some(Unlimited)),
            ("00-00:00:00", Some(Unlimited)),
            ("0:00:01", Some(Limited(secs(1)))),
            ("1-2:3:4", Some(Limited(secs(86_400 + 2 * H + 3 * 60 + 4)))),
            ("1440", Some(Limited(secs(86_400)))),
            ("-", None),
            ("5-", None),
            ("-5-", None),
            ("--5", None),
            ("1--2", None),
            ("1-:30", None),
            ("1::2", None),
            ("1-2:3:4:5", None),
            ("+5", None),
            ("5\n", None),
            ("٣", None), // non-ASCII digit
            ("1_000", None),
            ("UNLIMITED ", None),
            ("INF", None),
        ];
        for &(input, want) in table {
            let got = parse_slurm(input);
            match want {
                Some(w) => assert_eq!(got, Ok(w), "parse_slurm({input:?})"),
                None => assert!(
                    matches!(got, Err(WalltimeError::Slurm { ref value }) if value == input),
                    "parse_slurm({input:?}) = {got:?}, want a Slurm format error"
                ),
            }
        }
    }

    /// Deliberate deviation from libslurm, which parses `-5` as minus five
    /// days (-432000 s). Only `-1` is accepted, meaning UNLIMITED.
    #[test]
    fn slurm_rejects_negative_other_than_minus_one() {
        for input in [
            "-5",
            "-0",
            "-01",
            "-2",
            "-1-0",
            "-1:00",
            "-99999999999999999999",
        ] {
            assert_eq!(
                parse_slurm(input),
                Err(WalltimeError::SlurmNegative {
                    value: input.to_owned()
                }),
                "{input:?}"
            );
        }
        let msg = parse_slurm("-5").unwrap_err().to_string();
        assert!(msg.contains("\"-5\"") && msg.contains("negative"), "{msg}");
        assert_eq!(parse_slurm("-1"), Ok(Walltime::Unlimited));
    }

    #[test]
    fn slurm_overflow_and_bound() {
        // The bound itself is accepted, one second more is not.
        let max_days = MAX_LIMIT_SECS / 86_400;
        assert_eq!(
            parse_slurm(&format!("{max_days}-0")),
            Ok(Walltime::Limited(secs(MAX_LIMIT_SECS)))
        );
        for input in [
            format!("{max_days}-0:0:1"),
            "18446744073709551615".to_owned(), // u64::MAX minutes
            "18446744073709551616".to_owned(), // u64::MAX + 1
            "99999999999999999999999999-0".to_owned(), // not even a u64
            "1-18446744073709551615:0:0".to_owned(), // overflows in the multiply
            "1:18446744073709551615:18446744073709551615".to_owned(),
        ] {
            assert_eq!(
                parse_slurm(&input),
                Err(WalltimeError::TooLong {
                    what: "Slurm time limit",
                    value: input.clone()
                }),
                "{input:?}"
            );
        }
    }

    /// Found by the `walltime` fuzz target
    /// (fuzz/regressions/walltime/slurm-overflowing-field-in-malformed-limit): a field too
    /// large for a u64 was evaluated before the rest was checked for form, so a malformed
    /// limit was reported as "too long" (or, after a '-', as "negative") instead of as a
    /// format error naming the accepted forms.
    #[test]
    fn malformed_limits_are_format_errors_even_with_a_huge_field() {
        let huge = "99999999999999999999999";
        for input in [
            "088888888888888888888888-1:".to_owned(),
            format!("{huge}-x"),
            format!("{huge}-1:2:3:4"),
            format!("1:{huge}:x"),
            format!("{huge}:1h"),
        ] {
            assert_eq!(
                parse_slurm(&input),
                Err(WalltimeError::Slurm {
                    value: input.clone()
                }),
                "{input:?}"
            );
        }
        // After a sign: the body is malformed, so it is a format error, not "negative".
        let input = format!("-{huge}-x");
        assert_eq!(
            parse_slurm(&input),
            Err(WalltimeError::Slurm { value: input })
        );
        for input in [
            format!("{huge}:x"),
            format!("1:{huge}:1.x"),
            format!("{huge}.5:00"),
            format!("{huge}:1:2:3:4"),
        ] {
            assert_eq!(
                parse_pbs(&input),
                Err(WalltimeError::Pbs {
                    value: input.clone()
                }),
                "{input:?}"
            );
        }
        // Well-formed and huge is still "too long".
        assert!(matches!(
            parse_slurm(&format!("{huge}-1")),
            Err(WalltimeError::TooLong { .. })
        ));
        assert!(matches!(
            parse_pbs(&format!("{huge}:00")),
            Err(WalltimeError::TooLong { .. })
        ));
    }

    #[test]
    fn slurm_error_message_names_value_and_forms() {
        assert_eq!(
            parse_slurm("1h").unwrap_err().to_string(),
            "invalid Slurm time limit \"1h\": expected minutes, minutes:seconds, \
             hours:minutes:seconds, days-hours, days-hours:minutes or \
             days-hours:minutes:seconds, or UNLIMITED"
        );
    }

    #[test]
    fn pbs_table() {
        let table: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("1", Some(1)), // seconds, unlike Slurm
            ("3600", Some(3_600)),
            ("30:00", Some(1_800)),
            ("1:30", Some(90)),
            ("1:90", Some(150)), // no range check
            ("01:00:00", Some(3_600)),
            ("100:00:00", Some(360_000)),
            ("12:34:56", Some(12 * H + 34 * 60 + 56)),
            ("1:00:00:00", Some(86_400)),
            ("02:03:04:05", Some(2 * 86_400 + 3 * H + 4 * 60 + 5)),
            ("01:00:00.5", Some(3_601)),
            ("01:00:00.0", Some(3_600)),
            ("01:00:00.000", Some(3_600)),
            ("00:00:00.000000000001", Some(1)),
            ("1.5", Some(2)),
            ("10:59.9", Some(660)),
            ("", None),
            (" ", None),
            (" 60", None),
            ("60 ", None),
            ("\t60", None),
            ("+60", None),
            ("-60", None),
            ("-1", None),
            ("1:2:3:4:5", None),
            ("1::2", None),
            (":30", None),
            ("30:", None),
            (":", None),
            ("1h", None),
            ("1.5:00", None), // a fraction only on the last field
            ("1.", None),
            (".5", None),
            ("1.5.5", None),
            ("1.-5", None),
            ("1,5", None),
            ("٣", None),
            ("1-00:00:00", None), // Slurm syntax, not PBS
            ("UNLIMITED", None),
        ];
        for &(input, want) in table {
            let got = parse_pbs(input);
            match want {
                Some(w) => assert_eq!(got, Ok(secs(w)), "parse_pbs({input:?})"),
                None => assert!(
                    matches!(got, Err(WalltimeError::Pbs { ref value }) if value == input),
                    "parse_pbs({input:?}) = {got:?}, want a PBS format error"
                ),
            }
        }
    }

    #[test]
    fn pbs_overflow_and_bound() {
        assert_eq!(
            parse_pbs(&MAX_LIMIT_SECS.to_string()),
            Ok(secs(MAX_LIMIT_SECS))
        );
        assert_eq!(parse_pbs(&u32::MAX.to_string()), Ok(secs(u32::MAX.into())));
        for input in [
            (MAX_LIMIT_SECS + 1).to_string(),
            format!("{}.5", MAX_LIMIT_SECS),
            "18446744073709551615".to_owned(),
            "18446744073709551615.5".to_owned(), // overflow in the round-up
            "18446744073709551616".to_owned(),
            "99999999999:00:00:00".to_owned(),
            "213503982334602:00:00:00".to_owned(), // overflows in the multiply
        ] {
            assert_eq!(
                parse_pbs(&input),
                Err(WalltimeError::TooLong {
                    what: "PBS walltime",
                    value: input.clone()
                }),
                "{input:?}"
            );
        }
    }

    #[test]
    fn pbs_error_message_names_value_and_forms() {
        let msg = parse_pbs("1h").unwrap_err().to_string();
        assert!(
            msg.starts_with("invalid PBS walltime \"1h\": expected "),
            "{msg}"
        );
        assert!(
            msg.contains("HH:MM:SS") && msg.contains("DD:HH:MM:SS"),
            "{msg}"
        );
        let msg = parse_pbs("99999999999:00:00:00").unwrap_err().to_string();
        assert!(
            msg.contains("\"99999999999:00:00:00\"") && msg.contains("200 years"),
            "{msg}"
        );
    }

    #[test]
    fn human_durations() {
        let table: &[(&str, u64)] = &[
            ("1h", H),
            ("90m", 90 * 60),
            ("12h", 12 * H),
            ("1h 30m", H + 30 * 60),
            ("15min", 900),
            ("2days", 2 * 86_400),
            ("0", 0),
            ("1m", 60),
            // The trap: capital M is a month (30.44 days), not a minute.
            ("1M", 2_630_016),
        ];
        for &(input, want) in table {
            assert_eq!(parse_human(input), Ok(secs(want)), "parse_human({input:?})");
        }
    }

    #[test]
    fn human_errors_keep_humantime_text() {
        for input in ["", "1x", "h", "1h30", "-1h", "1.5ns"] {
            let Err(humantime_err) = humantime::parse_duration(input) else {
                panic!("humantime unexpectedly accepted {input:?}");
            };
            let err = parse_human(input).unwrap_err();
            assert_eq!(
                err,
                WalltimeError::Human {
                    value: input.to_owned(),
                    reason: humantime_err.to_string()
                }
            );
            let msg = err.to_string();
            assert!(msg.contains(&format!("{input:?}")), "{msg}");
            assert!(msg.contains(&humantime_err.to_string()), "{msg}");
            assert!(msg.contains("1h 30m"), "{msg}");
        }
    }

    /// Found by the `walltime` fuzz target
    /// (fuzz/regressions/walltime/human-u64-max-seconds-exact-nanosecond-carry): humantime
    /// 2.4 panics ("overflow in Duration::new") when its sum reaches u64::MAX seconds with
    /// exactly 1 s of nanoseconds to carry, so a map with such a duration crashed every
    /// prolog, the refresher and `--check-config` instead of naming the key.
    #[test]
    fn human_durations_humantime_would_panic_on_are_refused() {
        for input in [
            "000m18446744073709551615s1000ms1000ms",
            "18446744073709551615s 1000ms",
            "18446744073709551615s 999999999ns 1ns",
            "99999999999999999999999y",
            "1 2 3 4 5 6 7 8 9 0 1 2s",
        ] {
            let err = parse_human(input).unwrap_err();
            let WalltimeError::Human {
                ref value,
                ref reason,
            } = err
            else {
                panic!("{err:?}");
            };
            assert_eq!(value, input);
            assert!(reason.contains("at most 11 are accepted"), "{reason}");
            assert!(err.to_string().contains(&format!("{input:?}")), "{err}");
        }
        // Eleven digits, the most numbers of any unit can add up to, still parse.
        assert_eq!(
            parse_human("99999999999ns"),
            Ok(Duration::new(99, 999_999_999))
        );
        assert_eq!(
            parse_human("99999999999y"),
            Ok(secs(99_999_999_999 * 31_557_600))
        );
        assert_eq!(
            parse_human("1h 30m 15s 500ms"),
            Ok(Duration::from_millis(5_415_500))
        );
    }

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + secs(1_700_000_000)
    }

    #[test]
    fn session_duration_cases() {
        let now = t0();
        let margin = secs(2 * 60);
        let at = |d: u64| Some(now + secs(d));
        let cases: &[(&str, Option<SystemTime>, Duration, u64)] = &[
            (
                "10-min job hits the 900 s floor",
                at(600),
                secs(12 * H),
                900,
            ),
            ("3 h job, 1 h cap", at(3 * H), secs(H), H),
            ("3 h job, 12 h cap", at(3 * H), secs(12 * H), 3 * H + 2 * 60),
            ("2-day job, 12 h cap", at(2 * 86_400), secs(12 * H), 43_200),
            ("unlimited gets the cap", None, secs(4 * H), 4 * H),
            ("unlimited, cap 13 h", None, secs(13 * H), 43_200),
            ("cap 13 h", at(2 * 86_400), secs(13 * H), 43_200),
            ("unlimited, cap 5 min", None, secs(5 * 60), 900),
            ("cap 5 min", at(3 * H), secs(5 * 60), 900),
            ("end in the past", Some(now - secs(60)), secs(12 * H), 900),
            (
                "end long past",
                Some(SystemTime::UNIX_EPOCH),
                secs(12 * H),
                900,
            ),
            ("end now: just the margin", Some(now), secs(12 * H), 900),
        ];
        for &(name, end, cap, want) in cases {
            assert_eq!(
                session_duration(end, now, margin, MIN_SESSION, cap),
                secs(want),
                "{name}"
            );
        }
        // End now with a larger margin: margin alone counts.
        assert_eq!(
            session_duration(Some(now), now, secs(2 * H), MIN_SESSION, secs(12 * H)),
            secs(2 * H)
        );
    }

    #[test]
    fn session_duration_rounds_partial_seconds_up() {
        let now = t0();
        let end = now + Duration::from_millis(3_600_001);
        assert_eq!(
            session_duration(Some(end), now, Duration::ZERO, MIN_SESSION, secs(12 * H)),
            secs(3_601)
        );
        // A cap with a fraction still yields whole seconds within bounds.
        let cap = Duration::from_millis(3_600_500);
        assert_eq!(
            session_duration(
                Some(now + secs(5 * H)),
                now,
                Duration::ZERO,
                MIN_SESSION,
                cap
            ),
            secs(3_600)
        );
    }

    #[test]
    fn session_duration_huge_values_do_not_overflow() {
        let now = t0();
        let far = now.checked_add(secs(u64::MAX / 4));
        assert!(
            far.is_some(),
            "platform SystemTime cannot hold the test value"
        );
        assert_eq!(
            session_duration(far, now, Duration::MAX, MIN_SESSION, Duration::MAX),
            MAX_SESSION
        );
        assert_eq!(
            session_duration(Some(now), now, Duration::MAX, MIN_SESSION, Duration::ZERO),
            MIN_SESSION
        );
        assert_eq!(
            session_duration(None, now, Duration::MAX, MIN_SESSION, Duration::MAX),
            MAX_SESSION
        );
    }

    fn any_time() -> impl Strategy<Value = SystemTime> {
        (0u64..4_000_000_000, 0u32..1_000_000_000)
            .prop_map(|(s, n)| SystemTime::UNIX_EPOCH + Duration::new(s, n))
    }

    fn any_duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (0u64..200_000, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            Just(Duration::ZERO),
            Just(Duration::MAX),
        ]
    }

    proptest! {
        #[test]
        fn slurm_never_panics(s in any::<String>()) {
            let _ = parse_slurm(&s);
        }

        #[test]
        fn slurm_never_panics_on_near_misses(s in "[0-9:.+ -]{0,24}|(?i)(infinite|unlimited)") {
            // Well-formed or not, a Limited result is never zero.
            if let Ok(Walltime::Limited(d)) = parse_slurm(&s) {
                prop_assert!(d > Duration::ZERO);
            }
        }

        #[test]
        fn slurm_days_hours_minutes_seconds(
            d in 0u64..40_000, h in 0u64..100, m in 0u64..100, s in 0u64..100,
        ) {
            let want = d * 86_400 + h * 3_600 + m * 60 + s;
            let want = if want == 0 {
                Walltime::Unlimited
            } else {
                Walltime::Limited(Duration::from_secs(want))
            };
            prop_assert_eq!(parse_slurm(&format!("{d}-{h}:{m}:{s}")), Ok(want));
            // Zero-padded the way Slurm prints limits.
            prop_assert_eq!(parse_slurm(&format!("{d}-{h:02}:{m:02}:{s:02}")), Ok(want));
        }

        #[test]
        fn pbs_never_panics(s in any::<String>()) {
            let _ = parse_pbs(&s);
        }

        #[test]
        fn pbs_integer_is_seconds(n in any::<u32>()) {
            prop_assert_eq!(parse_pbs(&n.to_string()), Ok(Duration::from_secs(n.into())));
        }

        #[test]
        fn human_never_panics(s in any::<String>()) {
            let _ = parse_human(&s);
        }

        #[test]
        fn session_within_bounds_and_monotone_in_end(
            now in any_time(),
            a in any_time(),
            b in any_time(),
            margin in any_duration(),
            cap in any_duration(),
        ) {
            let (early, late) = if a <= b { (a, b) } else { (b, a) };
            let r_early = session_duration(Some(early), now, margin, MIN_SESSION, cap);
            let r_late = session_duration(Some(late), now, margin, MIN_SESSION, cap);
            let r_none = session_duration(None, now, margin, MIN_SESSION, cap);
            for r in [r_early, r_late, r_none] {
                prop_assert!((MIN_SESSION..=MAX_SESSION).contains(&r), "{:?}", r);
                prop_assert_eq!(r.subsec_nanos(), 0);
            }
            prop_assert!(r_early <= r_late, "{:?} > {:?}", r_early, r_late);
            // No known end is never shorter than a known one.
            prop_assert!(r_late <= r_none);
        }
    }
}
