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
}
