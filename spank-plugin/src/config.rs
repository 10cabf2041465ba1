//! The plugin's arguments from its plugstack.conf line:
//!
//! ```text
//! required /usr/lib/slurm/aws_role.so config=/etc/aws-role/role-map.toml \
//!     [prolog=/usr/libexec/aws-role/aws-role-prolog] [epilog=/usr/libexec/aws-role/aws-role-epilog] [timeout=30]
//! ```
//!
//! A bad or unknown argument never stops Slurm: it is reported and the default is used.

use std::path::PathBuf;
use std::time::Duration;

use aws_role::text::shown;

pub const DEFAULT_CONFIG: &str = aws_role::map::DEFAULT_PATH;
pub const DEFAULT_PROLOG: &str = aws_role::node::PLUGIN_PROLOG;
pub const DEFAULT_EPILOG: &str = aws_role::node::PLUGIN_EPILOG;
pub const DEFAULT_TIMEOUT: Duration = aws_role::scheduler::slurm::PLUGIN_TIMEOUT;
/// Longest accepted `timeout=`: a job_prolog that hangs longer only delays the job.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The settings given on the plugstack line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The site's role map.
    pub map: PathBuf,
    /// Binary run by job_prolog.
    pub prolog: PathBuf,
    /// Binary run by job_epilog.
    pub epilog: PathBuf,
    /// How long the prolog/epilog binary may run before its process group is killed.
    pub timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            map: PathBuf::from(DEFAULT_CONFIG),
            prolog: PathBuf::from(DEFAULT_PROLOG),
            epilog: PathBuf::from(DEFAULT_EPILOG),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl Config {
    /// The configuration with its `timeout` brought under Slurm's `PrologEpilogTimeout`
    /// (`slurm`, seconds; `None`: Slurm waits for ever), by
    /// [`aws_role::scheduler::slurm::plugin_limit_under`]. The second value says so when the timeout
    /// was lowered.
    pub fn within_slurm(mut self, slurm: Option<u32>) -> (Config, Option<String>) {
        let Some(limit) = slurm else {
            return (self, None);
        };
        let ours = aws_role::scheduler::slurm::plugin_limit_under(limit);
        if ours >= self.timeout {
            return (self, None);
        }
        let note = format!(
            "timeout={} is not below Slurm's PrologEpilogTimeout={limit}; using {} s so that the plugin, not Slurm, ends a slow prolog (Slurm would drain the node)",
            self.timeout.as_secs(),
            ours.as_secs()
        );
        self.timeout = ours;
        (self, Some(note))
    }

    /// Parses the plugin arguments; the second value lists what was wrong with them
    /// (each problem already worded for the log).
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> (Config, Vec<String>) {
        let mut cfg = Config::default();
        let mut problems = Vec::new();
        for arg in args {
            let Some((key, value)) = arg.split_once('=') else {
                problems.push(format!(
                    "ignoring unknown plugin argument {} (expected config=, prolog=, epilog= or timeout=)",
                    shown(arg)
                ));
                continue;
            };
            match key {
                "config" | "prolog" | "epilog" => {
                    let path = PathBuf::from(value);
                    if !path.is_absolute() {
                        problems.push(format!(
                            "ignoring plugin argument {key}={}: the path must be absolute",
                            shown(value)
                        ));
                        continue;
                    }
                    match key {
                        "config" => cfg.map = path,
                        "prolog" => cfg.prolog = path,
                        _ => cfg.epilog = path,
                    }
                }
                "timeout" => match value.parse::<u64>() {
                    Ok(secs) if secs >= 1 && Duration::from_secs(secs) <= MAX_TIMEOUT => {
                        cfg.timeout = Duration::from_secs(secs)
                    }
                    _ => problems.push(format!(
                        "ignoring plugin argument timeout={}: expected whole seconds from 1 to {}; using {}",
                        shown(value),
                        MAX_TIMEOUT.as_secs(),
                        DEFAULT_TIMEOUT.as_secs()
                    )),
                },
                _ => problems.push(format!(
                    "ignoring unknown plugin argument {} (expected config=, prolog=, epilog= or timeout=)",
                    shown(arg)
                )),
            }
        }
        (cfg, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_arguments() {
        let (c, p) = Config::parse([]);
        assert_eq!(c, Config::default());
        assert!(p.is_empty());
        assert_eq!(
            c.prolog,
            PathBuf::from("/usr/libexec/aws-role/aws-role-prolog")
        );
        assert_eq!(c.timeout, Duration::from_secs(30));
    }

    #[test]
    fn all_arguments() {
        let (c, p) = Config::parse([
            "config=/etc/x.toml",
            "prolog=/opt/p",
            "epilog=/opt/e",
            "timeout=5",
        ]);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.map, PathBuf::from("/etc/x.toml"));
        assert_eq!(c.prolog, PathBuf::from("/opt/p"));
        assert_eq!(c.epilog, PathBuf::from("/opt/e"));
        assert_eq!(c.timeout, Duration::from_secs(5));
    }

    #[test]
    fn bad_arguments_are_reported_and_ignored() {
        let (c, p) = Config::parse([
            "verbose",
            "color=blue",
            "prolog=relative/p",
            "timeout=0",
            "timeout=abc",
            "timeout=99999",
        ]);
        assert_eq!(c, Config::default());
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(p[0].contains("\"verbose\""), "{}", p[0]);
        assert!(p[2].contains("absolute"), "{}", p[2]);
    }

    /// Before, `timeout=30` applied whatever Slurm's PrologEpilogTimeout was: with a
    /// shorter one, Slurm killed the job_prolog first and drained the node.
    #[test]
    fn the_timeout_stays_under_slurms() {
        let secs = |c: &Config| c.timeout.as_secs();
        let (c, note) = Config::default().within_slurm(None);
        assert_eq!((secs(&c), note), (30, None));
        let (c, note) = Config::default().within_slurm(Some(300));
        assert_eq!((secs(&c), note), (30, None));
        let (c, note) = Config::default().within_slurm(Some(20));
        assert_eq!(secs(&c), 18);
        assert!(note.unwrap().contains("PrologEpilogTimeout=20"));
        assert_eq!(secs(&Config::default().within_slurm(Some(5)).0), 4);
        assert_eq!(secs(&Config::default().within_slurm(Some(1)).0), 1);
        assert_eq!(secs(&Config::default().within_slurm(Some(32)).0), 29);
    }
}
