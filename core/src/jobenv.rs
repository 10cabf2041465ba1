//! The environment a job with a role gets, in one place for every front-end (the SPANK
//! plugin's `spank_setenv`, the TaskProlog's `export` lines, the PBS login snippet).

use std::path::Path;

use crate::store::{CONFIG, CREDENTIALS_INI};

/// Inherited variables that would shadow the job's role in the SDKs' lookup order
/// (static keys, other profiles, web identity, container and instance-metadata
/// endpoints). They are removed from every task of a job that has a role.
pub const SHADOWING: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
];

/// Variables to set for a job whose credentials are in `dir`. `role` and `session` are
/// included when the caller knows them.
pub fn exports(
    dir: &Path,
    role: Option<&str>,
    session: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut v = vec![
        // Every SDK runs the job's credential_process from here and refreshes by itself.
        ("AWS_CONFIG_FILE", dir.join(CONFIG).display().to_string()),
        // Nothing in ~/.aws/credentials may shadow the job's role.
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_string()),
        // Static keys, for tools that cannot run a credential_process.
        (
            "AWS_ROLE_CREDENTIALS_FILE",
            dir.join(CREDENTIALS_INI).display().to_string(),
        ),
        // A job with a role never falls through to the node's instance profile.
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        // Go SDK v1 reads credential_process from the config file only with this.
        ("AWS_SDK_LOAD_CONFIG", "1".to_string()),
    ];
    if let Some(r) = role {
        v.push(("AWS_ROLE_NAME", r.to_string()));
    }
    if let Some(s) = session {
        v.push(("AWS_ROLE_SESSION_NAME", s.to_string()));
    }
    v
}

/// TaskProlog output (`export NAME=value` / `unset NAME` lines, slurm.conf(5)) for a job
/// whose credentials are in `dir`.
pub fn task_prolog_lines(dir: &Path) -> String {
    let mut out = String::new();
    for name in SHADOWING {
        out.push_str(&format!("unset {name}\n"));
    }
    for (name, value) in exports(dir, None, None) {
        out.push_str(&format!("export {name}={value}\n"));
    }
    out
}

/// What a TaskProlog (running as the job's user) found in the job's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Missing,
    /// It exists but cannot be read (a record root wrote for an unknown user, a
    /// permission problem): the text says why.
    Unreadable(String),
    /// Its contents.
    Read(Vec<u8>),
}

impl Found {
    /// What reading `path` found.
    pub fn at(path: &Path) -> Found {
        match std::fs::read(path) {
            Ok(bytes) => Found::Read(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Found::Missing,
            Err(e) => Found::Unreadable(format!("{}: {e}", path.display())),
        }
    }
}

/// What the TaskProlog prints (its lines are read by slurmstepd) and whether it succeeds:
/// a job that should have a role and cannot get it fails, in every mode, with one `print`
/// line (escaped and cut: the reason may quote what STS or a user said).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskProlog {
    pub output: String,
    pub ok: bool,
}

/// The TaskProlog's decision for a job whose directory is `dir`. `expected`: whether the
/// job could get a role at all (a partition default, [`crate::policy::may_get_role`]):
/// then finding nothing is a failure too, not a job without a role.
pub fn task_prolog(dir: &Path, failure: Found, config: Found, expected: bool) -> TaskProlog {
    let fail = |reason: &str| TaskProlog {
        output: format!("print aws-role: {}\n", crate::text::one_line(reason, 1000)),
        ok: false,
    };
    match failure {
        Found::Read(bytes) => {
            let reason = crate::store::parse_record::<crate::record::FailureRecord>(&bytes)
                .map(|r| r.reason)
                .unwrap_or_else(|_| "the job's AWS role could not be given".into());
            return fail(&reason);
        }
        Found::Unreadable(why) => {
            return fail(&format!(
            "the job's AWS role could not be given, and its failure record cannot be read ({why})"
        ))
        }
        Found::Missing => {}
    }
    match config {
        Found::Read(_) => TaskProlog {
            output: task_prolog_lines(dir),
            ok: true,
        },
        Found::Unreadable(why) => fail(&format!(
            "this job's AWS credentials on this node cannot be read ({why})"
        )),
        Found::Missing if expected => fail(
            "this job should have an AWS role, but this node has neither credentials nor a failure record for it; the administrators find why in the node's log",
        ),
        Found::Missing => TaskProlog {
            output: String::new(),
            ok: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_we_set_is_also_removed() {
        for (name, _) in exports(Path::new("/x"), Some("r"), Some("s")) {
            assert!(!SHADOWING.contains(&name), "{name}");
        }
    }

    #[test]
    fn task_prolog_points_at_the_job_and_clears_shadows() {
        let t = task_prolog_lines(Path::new("/run/aws-role/42"));
        assert!(
            t.contains("export AWS_CONFIG_FILE=/run/aws-role/42/config\n"),
            "{t}"
        );
        assert!(
            t.contains("export AWS_SHARED_CREDENTIALS_FILE=/dev/null\n"),
            "{t}"
        );
        assert!(t.contains("unset AWS_ACCESS_KEY_ID\n"), "{t}");
        assert!(t.contains("unset AWS_PROFILE\n"), "{t}");
        // unset lines come first, so nothing set here is removed again.
        assert!(t.find("unset").unwrap() < t.find("export").unwrap());
    }

    /// The OpenPBS launch hook (Python) repeats the lists too: every shadowing name must
    /// be in its SHADOWING tuple, and every exported name and fixed value in its exports.
    #[test]
    fn pbs_launch_hook_matches_the_lists() {
        let hook = include_str!("../../packaging/pbs/aws_role_launch_hook.py");
        let shadowing = hook
            .split_once("SHADOWING = (")
            .and_then(|(_, r)| r.split_once(')'))
            .map(|(tuple, _)| tuple)
            .expect("the hook defines a SHADOWING tuple");
        for name in SHADOWING {
            assert!(
                shadowing.contains(&format!("\"{name}\"")),
                "the hook does not remove {name}"
            );
        }
        for (name, value) in exports(Path::new("/x"), None, None) {
            let quoted = format!("(\"{name}\", ");
            assert!(hook.contains(&quoted), "the hook does not set {name}");
            if !value.starts_with("/x/") {
                assert!(
                    hook.contains(&format!("{quoted}\"{value}\")")),
                    "the hook sets {name} to something other than {value:?}"
                );
            }
        }
    }

    /// The PBS login snippet cannot call this module, so it repeats the lists: it must
    /// unset every shadowing variable and export every variable `exports` sets.
    #[test]
    fn pbs_profile_snippet_matches_the_lists() {
        let snippet = include_str!("../../packaging/pbs/aws-role.sh");
        // Only the shell code counts, not the comments.
        let code: String = snippet
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let words: Vec<&str> = code
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .collect();
        let unset_at = code
            .find("unset AWS_")
            .expect("the snippet unsets variables");
        let unset_block = &code[unset_at..];
        let unset_words: Vec<&str> = unset_block
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .take_while(|w| *w != "AWS_CONFIG_FILE")
            .collect();
        for name in SHADOWING {
            assert!(
                unset_words.contains(name),
                "the snippet does not unset {name}"
            );
        }
        for (name, value) in exports(Path::new("/x"), None, None) {
            assert!(words.contains(&name), "the snippet does not set {name}");
            let export_list = code.rsplit_once("export AWS_CONFIG_FILE").map(|(_, r)| r);
            assert!(
                name == "AWS_CONFIG_FILE"
                    || export_list.is_some_and(|r| r
                        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .any(|w| w == name)),
                "the snippet does not export {name}"
            );
            if !value.starts_with("/x/") {
                assert!(
                    code.contains(&format!("{name}={value}\n")),
                    "the snippet does not set {name}={value}"
                );
            }
        }
        // The job-specific paths end in the same file names.
        assert!(code.contains("AWS_CONFIG_FILE=\"$aws_role_dir/config\""));
        assert!(code.contains("AWS_ROLE_CREDENTIALS_FILE=\"$aws_role_dir/credentials\""));
    }

    fn failure(reason: &str) -> Found {
        Found::Read(
            format!(
                "{{\"job_id\": \"1\", \"reason\": {reason:?}, \"time\": \"2026-01-01T00:00:00Z\"}}"
            )
            .into_bytes(),
        )
    }

    /// Before, a failure record the user could not read (root's, written when the job's
    /// user was not known) was taken for "no record", and the job ran without its role and
    /// without a word; so did a job whose expected files were missing.
    #[test]
    fn a_job_that_cannot_get_its_role_fails_whatever_it_finds() {
        let dir = Path::new("/run/aws-role/7");
        let config = Found::Read(b"[default]".to_vec());
        let t = task_prolog(dir, Found::Missing, config.clone(), true);
        assert!(
            t.ok && t
                .output
                .contains("export AWS_CONFIG_FILE=/run/aws-role/7/config"),
            "{t:?}"
        );
        let t = task_prolog(
            dir,
            failure("STS could not be reached"),
            config.clone(),
            true,
        );
        assert_eq!(
            (t.ok, t.output.as_str()),
            (false, "print aws-role: STS could not be reached\n")
        );
        let denied = Found::Unreadable("failure.json: Permission denied".into());
        for expected in [true, false] {
            let t = task_prolog(dir, denied.clone(), Found::Missing, expected);
            assert!(
                !t.ok
                    && t.output
                        .contains("cannot be read (failure.json: Permission denied)"),
                "{t:?}"
            );
        }
        let t = task_prolog(
            dir,
            Found::Missing,
            Found::Unreadable("config: EACCES".into()),
            false,
        );
        assert!(!t.ok, "{t:?}");
        let t = task_prolog(dir, Found::Missing, Found::Missing, true);
        assert!(
            !t.ok
                && t.output
                    .contains("neither credentials nor a failure record"),
            "{t:?}"
        );
        // A job that could get no role and has nothing: fine, and silent.
        assert_eq!(
            task_prolog(dir, Found::Missing, Found::Missing, false),
            TaskProlog {
                output: String::new(),
                ok: true
            }
        );
    }

    /// The reason may quote STS or a user: one line, no terminal escapes, no carriage
    /// return that would let it overwrite what the job's output shows.
    #[test]
    fn a_failure_reason_cannot_forge_lines_or_escape_to_the_terminal() {
        let t = task_prolog(
            Path::new("/x"),
            failure("denied\r\u{1b}[2Kall good\nexport AWS_PROFILE=evil"),
            Found::Missing,
            true,
        );
        assert_eq!(t.output.lines().count(), 1, "{t:?}");
        assert!(
            !t.output.contains('\r') && !t.output.contains('\u{1b}'),
            "{t:?}"
        );
        let long = failure(&"x".repeat(5000));
        assert!(
            task_prolog(Path::new("/x"), long, Found::Missing, true)
                .output
                .len()
                < 1100
        );
    }
}
