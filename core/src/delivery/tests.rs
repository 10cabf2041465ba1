//! The deliveries' tests: what a job's processes are told, by every front-end.

use super::*;

/// A job directory as the prolog leaves it (every delivery written, map region
/// eu-west-1, endpoint on), kept while the first value lives.
fn provisioned() -> (tempfile::TempDir, PathBuf) {
    use crate::testing::{me, temp_store};
    let (t, store) = temp_store();
    let map = RoleMap::parse("[sts]\nregion = \"eu-west-1\"\n", Path::new("/m.toml")).unwrap();
    let dir = store
        .open_job(&crate::testing::job("42").id, true)
        .unwrap()
        .unwrap();
    let creds = Credentials::new(
        "ASIAX".into(),
        crate::creds::Secret::new("k"),
        crate::creds::Secret::new("t"),
        std::time::SystemTime::now() + std::time::Duration::from_secs(600),
    )
    .unwrap();
    write(&map, &dir, &creds, me()).unwrap();
    let path = dir.path().to_path_buf();
    (t, path)
}

/// What a provisioned job is told: its config first, the endpoint's URL and token (the
/// same token as its file), the map's region, and the static-key paths for the tools that
/// read only those; the TaskProlog removes the shadows before setting any of it, so an
/// endpoint variable we set is not removed again.
#[test]
fn a_provisioned_job_gets_every_deliverys_variables_after_the_unsets() {
    let (_t, dir) = provisioned();
    let env: std::collections::BTreeMap<_, _> = environment(&dir, Some("r"), Some("s"))
        .into_iter()
        .collect();
    let token = std::fs::read_to_string(dir.join(endpoint::TOKEN_FILE)).unwrap();
    assert_eq!(env["AWS_CONTAINER_AUTHORIZATION_TOKEN"], token);
    assert_eq!(
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        "http://127.0.0.1:941/v1/credentials/42"
    );
    assert_eq!(env["AWS_REGION"], "eu-west-1");
    assert_eq!(env["AWS_DEFAULT_REGION"], "eu-west-1");
    assert_eq!(
        env["CPL_AWS_CREDENTIALS_FILE"],
        dir.join("credentials").display().to_string()
    );
    assert_eq!(env["AWS_ROLE_NAME"], "r");
    let lines = task_prolog_lines(&dir, None);
    let last_unset = lines.rfind("unset ").unwrap();
    let first_export = lines.find("export ").unwrap();
    assert!(last_unset < first_export, "{lines}");
    assert!(lines.contains("export AWS_CONTAINER_CREDENTIALS_FULL_URI=http://"));
}

/// A directory without the endpoint's files (turned off, or provisioned by a version
/// without it) gets no endpoint variable, and a token that is not one is not passed on.
#[test]
fn no_endpoint_variables_without_a_valid_token() {
    let (_t, dir) = provisioned();
    let names = |d: &Path| -> Vec<&'static str> {
        environment(d, None, None)
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    assert!(names(&dir).contains(&"AWS_CONTAINER_CREDENTIALS_FULL_URI"));
    // Root's test run may write it directly; the job's user cannot.
    std::fs::write(dir.join(endpoint::TOKEN_FILE), "not a token\n").unwrap();
    assert!(!names(&dir).contains(&"AWS_CONTAINER_CREDENTIALS_FULL_URI"));
    assert!(!names(Path::new("/x")).contains(&"AWS_CONTAINER_AUTHORIZATION_TOKEN"));
}

#[test]
fn task_prolog_points_at_the_job_and_clears_shadows() {
    let t = task_prolog_lines(Path::new("/run/aws-role/42"), None);
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

/// The values that are the same for every job (the others are paths in its directory or
/// read from its files), which the PBS copies must spell exactly.
const CONSTANT: &[&str] = &["/dev/null", "true", "1"];

/// The OpenPBS launch hook (Python) repeats the lists too: every shadowing name must
/// be in its SHADOWING tuple, and every exported name and fixed value in its exports.
#[test]
fn pbs_launch_hook_matches_the_lists() {
    let hook = include_str!("../../../packaging/pbs/aws_role_launch_hook.py");
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
    let (_t, dir) = provisioned();
    for (name, value) in environment(&dir, None, None) {
        let quoted = format!("(\"{name}\", ");
        assert!(hook.contains(&quoted), "the hook does not set {name}");
        if CONSTANT.contains(&value.as_str()) {
            assert!(
                hook.contains(&format!("{quoted}\"{value}\")")),
                "the hook sets {name} to something other than {value:?}"
            );
        }
    }
}

/// The PBS login snippet cannot call this module, so it repeats the lists: it must
/// unset every shadowing variable and export every variable `environment` sets.
#[test]
fn pbs_profile_snippet_matches_the_lists() {
    let snippet = include_str!("../../../packaging/pbs/aws-role.sh");
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
    let (_t, dir) = provisioned();
    for (name, value) in environment(&dir, None, None) {
        assert!(words.contains(&name), "the snippet does not set {name}");
        let export_list = code.rsplit_once("export AWS_CONFIG_FILE").map(|(_, r)| r);
        assert!(
            name == "AWS_CONFIG_FILE"
                || export_list.is_some_and(|r| r
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|w| w == name)),
            "the snippet does not export {name}"
        );
        if CONSTANT.contains(&value.as_str()) {
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
    let t = task_prolog(dir, Found::Missing, config.clone(), Found::Missing, true);
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
        Found::Missing,
        true,
    );
    assert_eq!(
        (t.ok, t.output.as_str()),
        (false, "print aws-role: STS could not be reached\n")
    );
    let denied = Found::Unreadable("failure.json: Permission denied".into());
    for expected in [true, false] {
        let t = task_prolog(
            dir,
            denied.clone(),
            Found::Missing,
            Found::Missing,
            expected,
        );
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
        Found::Missing,
        false,
    );
    assert!(!t.ok, "{t:?}");
    let t = task_prolog(dir, Found::Missing, Found::Missing, Found::Missing, true);
    assert!(
        !t.ok
            && t.output
                .contains("neither credentials nor a failure record"),
        "{t:?}"
    );
    // A job that could get no role and has nothing: fine, and silent.
    assert_eq!(
        task_prolog(dir, Found::Missing, Found::Missing, Found::Missing, false),
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
        task_prolog(Path::new("/x"), long, Found::Missing, Found::Missing, true)
            .output
            .len()
            < 1100
    );
}

mod step {
    use super::super::*;
    use crate::testing::{me, sample_state, temp_store};

    fn id(n: &str) -> JobId {
        crate::scheduler::slurm::parse_job_id(n).unwrap()
    }

    fn named(r: &str) -> Option<RoleRequest> {
        Some(RoleRequest::Named(r.into()))
    }

    /// Job 42 of the test's own uid, with role demo, provisioned in a fresh store.
    fn provisioned() -> (tempfile::TempDir, Store, JobState) {
        let (t, store) = temp_store();
        let state = sample_state("alice", me().uid.as_raw(), me().gid.as_raw());
        let dir = store.open_job(&id("42"), true).unwrap().unwrap();
        dir.write_record(STATE, &state).unwrap();
        (t, store, state)
    }

    #[test]
    fn without_a_record_only_a_job_that_expected_one_fails() {
        let (_t, store) = temp_store();
        let (role, note) = step_role(&store, &id("42"), None, named("demo").as_ref(), true);
        assert_eq!(
            role,
            StepRole::Failed {
                reason: NO_RECORD.into()
            }
        );
        assert!(
            matches!(&note, Some(Note::Error(l)) if l.contains("has no record of it")),
            "{note:?}"
        );
        assert_eq!(
            step_role(&store, &id("42"), None, None, false),
            (StepRole::Nothing, None)
        );
        // An empty directory (a prolog killed before writing) is the same.
        store.open_job(&id("42"), true).unwrap().unwrap();
        assert_eq!(
            step_role(&store, &id("42"), None, None, true).0,
            StepRole::Failed {
                reason: NO_RECORD.into()
            }
        );
        assert_eq!(
            step_role(&store, &id("42"), None, None, false),
            (StepRole::Nothing, None)
        );
    }

    #[test]
    fn a_provisioned_job_gets_its_role_in_every_step_that_asks_for_it_or_nothing() {
        let (_t, store, state) = provisioned();
        let uid = Some(state.uid);
        for asked in [None, named("demo")] {
            let (role, note) = step_role(&store, &id("42"), uid, asked.as_ref(), true);
            assert_eq!(
                role,
                StepRole::Role {
                    dir: store.job_path(&id("42")),
                    role: "demo".into(),
                    session: state.session_name.clone(),
                }
            );
            assert_eq!(note, None);
        }
        // A step that asks for another role is refused, not given the job's.
        let (role, note) = step_role(&store, &id("42"), uid, named("other").as_ref(), true);
        assert!(matches!(role, StepRole::Failed { .. }), "{role:?}");
        assert!(matches!(note, Some(Note::Info(_))), "{note:?}");
    }

    #[test]
    fn a_record_of_another_job_or_user_is_not_believed() {
        let (_t, store, state) = provisioned();
        let (role, note) = step_role(&store, &id("42"), Some(state.uid + 1), None, true);
        assert!(
            matches!(&role, StepRole::Failed { reason } if reason.contains("cannot be read")),
            "{role:?}"
        );
        assert!(
            matches!(&note, Some(Note::Error(l)) if l.contains("not this job")),
            "{note:?}"
        );
        let dir = store.open_job(&id("42"), false).unwrap().unwrap();
        let other = JobState {
            job_id: "43".into(),
            ..state
        };
        dir.write_record(STATE, &other).unwrap();
        assert!(matches!(
            step_role(&store, &id("42"), None, None, false).0,
            StepRole::Failed { .. }
        ));
        // A damaged record fails the step even of a job that expected nothing.
        dir.write(STATE, b"{not json", me()).unwrap();
        assert!(matches!(
            step_role(&store, &id("42"), None, None, false).0,
            StepRole::Failed { .. }
        ));
    }

    #[test]
    fn a_failure_record_fails_the_step_with_its_reason() {
        let (_t, store) = temp_store();
        let dir = store.open_job(&id("42"), true).unwrap().unwrap();
        let f = FailureRecord {
            job_id: "42".into(),
            reason: "role demo is not allowed for user alice".into(),
            time: "2027-01-15T07:00:00Z".into(),
        };
        dir.write_record(FAILURE, &f).unwrap();
        assert_eq!(
            step_role(&store, &id("42"), None, None, false),
            (
                StepRole::Failed {
                    reason: f.reason.clone()
                },
                None
            )
        );
    }
}

/// In Prolog-only mode the TaskProlog is the only one to export the role and session names
/// (the README promised them in every mode): it reads them from the job's state record, and
/// leaves them out when the record is missing, broken or carries a name unsafe on a line.
#[test]
fn the_task_prolog_exports_the_role_and_session_names_from_the_state_record() {
    let dir = Path::new("/run/aws-role/7");
    let config = Found::Read(b"[default]".to_vec());
    let state = crate::testing::sample_state("alice", 1000, 1000);
    let record = |s: &crate::record::JobState| Found::Read(serde_json::to_vec(s).unwrap());
    let t = task_prolog(dir, Found::Missing, config.clone(), record(&state), true);
    assert!(t.ok, "{t:?}");
    assert!(
        t.output
            .contains(&format!("export AWS_ROLE_NAME={}\n", state.role)),
        "{}",
        t.output
    );
    assert!(
        t.output.contains(&format!(
            "export AWS_ROLE_SESSION_NAME={}\n",
            state.session_name
        )),
        "{}",
        t.output
    );
    for missing in [Found::Missing, Found::Read(b"{not json".to_vec())] {
        let t = task_prolog(dir, Found::Missing, config.clone(), missing, true);
        assert!(t.ok && !t.output.contains("AWS_ROLE_NAME"), "{t:?}");
    }
    let mut evil = state.clone();
    evil.role = "x\nexport AWS_PROFILE=evil".into();
    let t = task_prolog(dir, Found::Missing, config, record(&evil), true);
    assert!(
        !t.output.contains("AWS_ROLE_NAME") && !t.output.contains("evil"),
        "{}",
        t.output
    );
}
