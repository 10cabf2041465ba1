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
}
