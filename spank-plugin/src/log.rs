//! Logging through Slurm's own log functions (slurmd/slurmstepd log, or the user's
//! terminal for sbatch/srun), every line prefixed with `aws-role: `.
//!
//! The plugin installs no tracing subscriber: everything it says goes through here.

/// How important a message is; maps onto Slurm's levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Info,
    Verbose,
    Debug,
}

/// The prefix of every line the plugin logs (and of the error a failed job prints).
pub const PREFIX: &str = "aws-role: ";

/// `msg` with the prefix, unless it already has it.
pub fn prefixed(msg: &str) -> String {
    if msg.starts_with(PREFIX) {
        msg.to_string()
    } else {
        format!("{PREFIX}{msg}")
    }
}

#[cfg(not(test))]
pub fn log(level: Level, msg: &str) {
    use slurm_spank::{spank_log, LogLevel};
    let level = match level {
        Level::Error => LogLevel::Error,
        Level::Info => LogLevel::Info,
        Level::Verbose => LogLevel::Verbose,
        Level::Debug => LogLevel::Debug,
    };
    // slurm-spank passes the text as the argument of a "%s" format, so a '%' in a
    // message cannot be misread as a conversion.
    spank_log(level, &prefixed(msg));
}

/// Unit tests run outside Slurm, where the slurm_* log symbols do not exist.
#[cfg(test)]
pub fn log(level: Level, msg: &str) {
    eprintln!("[{level:?}] {}", prefixed(msg));
}

pub fn error(msg: &str) {
    log(Level::Error, msg);
}

pub fn info(msg: &str) {
    log(Level::Info, msg);
}

pub fn verbose(msg: &str) {
    log(Level::Verbose, msg);
}

pub fn debug(msg: &str) {
    log(Level::Debug, msg);
}

/// Makes untrusted text (a child's output, a user's value) safe for a one-line log entry.
pub use aws_role::text::one_line as sanitize;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_added_once() {
        assert_eq!(prefixed("x"), "aws-role: x");
        assert_eq!(prefixed("aws-role: x"), "aws-role: x");
    }
}
