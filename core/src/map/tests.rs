//! The role map's tests: every key, every refusal and its position.

use super::check::*;
use super::role::check_arn;
use super::*;
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../../role-map.example.toml");
const STS: &str = "[sts]\nregion = \"us-east-1\"\n";
const ARN_A: &str = "arn = \"arn:aws:iam::123456789012:role/a\"\n";

fn parse(text: &str) -> Result<RoleMap, MapError> {
    RoleMap::parse(text, Path::new("/etc/aws-role/site.toml"))
}

#[track_caller]
fn accepted(text: &str) -> RoleMap {
    match parse(text) {
        Ok(map) => map,
        Err(e) => panic!("refused:\n{e}\n--- text ---\n{text}"),
    }
}

#[track_caller]
fn refused(text: &str) -> MapError {
    match parse(text) {
        Ok(map) => panic!("accepted: {map:#?}\n--- text ---\n{text}"),
        Err(e) => {
            assert_eq!(e.file, Path::new("/etc/aws-role/site.toml"));
            e
        }
    }
}

/// Asserts the problems found, in order: (line, column, message fragment).
#[track_caller]
fn assert_problems(text: &str, expected: &[(usize, usize, &str)]) {
    let found = refused(text).problems;
    let got: Vec<(usize, usize)> = found.iter().map(|p| (p.line, p.column)).collect();
    let want: Vec<(usize, usize)> = expected.iter().map(|&(l, c, _)| (l, c)).collect();
    assert_eq!(got, want, "{found:#?}");
    for (p, (_, _, fragment)) in found.iter().zip(expected) {
        assert!(
            p.message.contains(fragment),
            "{:?} lacks {fragment:?}",
            p.message
        );
    }
}

/// humantime 2.4 panics on this duration (see walltime::HUMAN_MAX_DIGITS): the map
/// must name the key instead of crashing whoever loads it.
#[test]
fn a_duration_humantime_would_panic_on_is_a_problem_with_a_position() {
    assert_problems(
        &format!("{STS}timeout = \"18446744073709551615s 1000ms\"\n"),
        &[(
            3,
            11,
            "sts.timeout = \"18446744073709551615s 1000ms\" is not a duration",
        )],
    );
}

#[test]
fn the_documented_example_parses_to_what_it_documents() {
    let map = accepted(EXAMPLE);
    assert_eq!(map.sts.region, "us-east-1");
    assert_eq!(map.sts.endpoint, None);
    assert_eq!(map.sts.credentials_file, None);
    assert_eq!(map.sts.timeout, Duration::from_secs(8));
    assert_eq!(map.sts.max_attempts, 8);
    assert_eq!(map.sts.min_session, Duration::from_secs(900));
    assert_eq!(map.node.base_dir, Path::new("/run/aws-role"));
    assert_eq!(map.refresh.lead, Duration::from_secs(20 * 60));
    assert_eq!(map.refresh.jitter, Duration::from_secs(5 * 60));
    assert_eq!(map.refresh.scan_interval, Duration::from_secs(30));
    assert_eq!(map.refresh.orphan_grace, Duration::from_secs(3600));
    assert_eq!(map.refresh.concurrency, 8);
    assert!(!map.slurm.end_time_from_scontrol);
    assert_eq!(map.slurm.scontrol, Path::new("/usr/bin/scontrol"));
    assert_eq!(map.slurm.scontrol_timeout, Duration::from_secs(2));
    assert_eq!(map.defaults.max_session, Duration::from_secs(3600));
    assert_eq!(map.defaults.session_name.as_str(), "slurm-{job_id}-{task}");
    let names: Vec<&str> = map.roles.keys().map(String::as_str).collect();
    assert_eq!(names, ["analytics", "ml-training", "shared-readonly"]);
    let ml = &map.roles["ml-training"];
    assert_eq!(ml.name, "ml-training");
    assert_eq!(ml.allow_users, ["alice", "bob"]);
    assert_eq!(ml.allow_groups, ["ml"]);
    assert_eq!(ml.allow_accounts, ["proj-ml"]);
    assert_eq!(ml.cap(&map.defaults), Duration::from_secs(12 * 3600));
    let analytics = &map.roles["analytics"];
    assert_eq!(analytics.allow_groups, ["analysts"]);
    assert_eq!(analytics.cap(&map.defaults), Duration::from_secs(3600));
    assert!(analytics.has_allow_list());
    assert!(!map.roles["shared-readonly"].has_allow_list());
    assert_eq!(map.partitions["gpu"].default_role, "ml-training");
    assert_eq!(map.partitions["debug"].default_role, "shared-readonly");
    assert_eq!(map.pbs.default_role.as_deref(), Some("shared-readonly"));
    assert_eq!(map.pbs.queues["batch"].default_role, "shared-readonly");
}

/// The example with its commented-out optional settings uncommented, and how many
/// lines that changed.
fn uncommented_example() -> (String, usize) {
    const OPTIONAL: [&str; 17] = [
        "node_identity =",
        "node_rate =",
        "imds_endpoint =",
        "endpoint =",
        "use_fips =",
        "use_dualstack =",
        "proxy =",
        "no_proxy =",
        "credentials_file =",
        "profile =",
        "min_session =",
        "session_policy =",
        "source_identity =",
        "tags =",
        "transitive_tag_keys =",
        "policy_arns =",
        "external_id =",
    ];
    let mut text = String::new();
    let mut in_policy = false;
    let mut uncommented = 0;
    for line in EXAMPLE.lines() {
        match line.strip_prefix("# ") {
            Some(rest) if in_policy || OPTIONAL.iter().any(|k| rest.starts_with(k)) => {
                if rest.starts_with("session_policy =") {
                    in_policy = true;
                } else if rest == "'''" {
                    in_policy = false;
                }
                uncommented += 1;
                text.push_str(rest);
            }
            _ => text.push_str(line),
        }
        text.push('\n');
    }
    assert!(!in_policy, "unterminated session_policy in the example");
    (text, uncommented)
}

/// The map's man page, aws-role-map(5) (its `## [section]` headings and the `**key**
/// (default: …)` entries under them), names exactly the settings of role-map.example.toml:
/// a setting added to one and not the other fails.
#[test]
fn the_man_page_lists_exactly_the_examples_settings() {
    let (text, _) = uncommented_example();
    let value: toml::Table = text.parse().expect("the uncommented example is TOML");
    let mut example = std::collections::BTreeSet::new();
    for (section, body) in &value {
        let body = body.as_table().expect("top-level entries are tables");
        let named = |t: &toml::Table, prefix: &str, out: &mut std::collections::BTreeSet<_>| {
            for entry in t.values() {
                for key in entry.as_table().expect("a named table").keys() {
                    out.insert((format!("[{prefix}.NAME]"), key.clone()));
                }
            }
        };
        match section.as_str() {
            "roles" | "partitions" => named(body, section, &mut example),
            _ => {
                for (key, v) in body {
                    if section == "pbs" && key == "queues" {
                        named(
                            v.as_table().expect("[pbs.queues]"),
                            "pbs.queues",
                            &mut example,
                        );
                    } else {
                        example.insert((format!("[{section}]"), key.clone()));
                    }
                }
            }
        }
    }
    let page = include_str!("../../../docs/man/aws-role-map.5.md");
    let mut documented = std::collections::BTreeSet::new();
    let mut section = None;
    for line in page.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            section = h.starts_with('[').then(|| h.trim().to_string());
        } else if let (Some(sec), Some(rest)) = (&section, line.strip_prefix("**")) {
            if let Some((key, tail)) = rest.split_once("**") {
                if tail.starts_with(" (default: ") {
                    documented.insert((sec.clone(), key.to_string()));
                }
            }
        }
    }
    let missing: Vec<_> = example.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&example).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "aws-role-map(5): missing {missing:?}, not in the example {extra:?}"
    );
    assert!(example.len() > 30, "{example:?}");
}

/// The commented-out settings of the example are valid too, once uncommented.
#[test]
fn the_examples_optional_settings_are_valid_when_uncommented() {
    let (text, uncommented) = uncommented_example();
    assert!(uncommented >= 11, "{uncommented}");
    let map = accepted(&text);
    assert_eq!(
        map.sts.endpoint.as_deref(),
        Some("https://sts.us-east-1.amazonaws.com")
    );
    assert_eq!(
        map.sts.credentials_file.as_deref(),
        Some(Path::new("/etc/aws-role/node-credentials"))
    );
    assert_eq!(map.sts.profile.as_deref(), Some("hpc-node"));
    assert_eq!(map.sts.min_session, STS_MIN_SESSION);
    let ml = &map.roles["ml-training"];
    assert!(ml
        .session_policy
        .as_deref()
        .is_some_and(|p| p.contains("ml-data")));
    assert_eq!(
        ml.source_identity.as_ref().map(Template::as_str),
        Some("{user}")
    );
    let keys: Vec<&str> = ml.tags.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["job", "partition", "project", "user"]);
    assert_eq!(ml.transitive_tag_keys, ["project"]);
    assert_eq!(
        ml.policy_arns,
        ["arn:aws:iam::123456789012:policy/hpc/ml-data-read"]
    );
    assert_eq!(ml.external_id.as_deref(), Some("vendor-4711-hpc"));
}

/// The map the packages install as /etc/aws-role/role-map.toml.
const PACKAGED_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/role-map.toml");
/// The line after which the packaged map is the example with every setting commented out.
const PACKAGED_MARKER: &str =
    "# ---- below: role-map.example.toml with every setting commented out ----\n";

/// The example with every active line commented out, except the one setting a map
/// cannot load without (`[sts] region`).
fn commented_out(example: &str) -> String {
    let mut out = String::new();
    for line in example.lines() {
        if line.is_empty()
            || line.starts_with('#')
            || line == "[sts]"
            || line.starts_with("region = ")
        {
            out.push_str(line);
        } else {
            out.push_str("# ");
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[test]
fn the_packaged_map_loads_and_gives_no_role_to_anybody() {
    let text = std::fs::read_to_string(PACKAGED_PATH).unwrap();
    let map = accepted(&text);
    assert!(map.roles.is_empty(), "{:?}", map.roles.keys());
    assert!(map.partitions.is_empty());
    assert_eq!(map.pbs.default_role, None);
    assert!(map.pbs.queues.is_empty());
    // Everything else is at its documented default.
    assert_eq!(map.node.base_dir, Path::new(DEFAULT_BASE_DIR));
    assert_eq!(map.sts.endpoint, None);
    assert_eq!(map.sts.credentials_file, None);
    assert!(map.summary().contains("roles (0):"), "{}", map.summary());
}

/// The packaged map is the documented example, commented out, so the two never drift.
/// After changing the example, regenerate it with
/// `AWS_ROLE_REGENERATE_PACKAGED_MAP=1 cargo test -p aws-role-core packaged`.
#[test]
fn the_packaged_map_is_the_example_commented_out() {
    let text = std::fs::read_to_string(PACKAGED_PATH).unwrap();
    let (header, body) = text
        .split_once(PACKAGED_MARKER)
        .unwrap_or_else(|| panic!("{PACKAGED_PATH} lacks the line {PACKAGED_MARKER:?}"));
    for line in header.lines() {
        assert!(
            line.is_empty() || line.starts_with('#'),
            "{PACKAGED_PATH}: only comments may come before the example: {line:?}"
        );
    }
    let expected = commented_out(EXAMPLE);
    if body != expected {
        if std::env::var_os("AWS_ROLE_REGENERATE_PACKAGED_MAP").is_some() {
            std::fs::write(
                PACKAGED_PATH,
                format!("{header}{PACKAGED_MARKER}{expected}"),
            )
            .unwrap();
            return;
        }
        panic!(
            "{PACKAGED_PATH} is not role-map.example.toml commented out; regenerate it with \
             AWS_ROLE_REGENERATE_PACKAGED_MAP=1 cargo test -p aws-role-core packaged"
        );
    }
    // Only the region is active: commenting out is what keeps every role away.
    let active: Vec<&str> = body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(active, ["[sts]", "region = \"us-east-1\""]);
}

#[test]
fn omitted_settings_get_their_documented_defaults() {
    let map = accepted(STS);
    assert_eq!(map.source, Path::new("/etc/aws-role/site.toml"));
    assert_eq!(map.sts.region, "us-east-1");
    assert_eq!(map.sts.endpoint, None);
    assert_eq!(map.sts.profile, None);
    assert_eq!(map.sts.timeout, Duration::from_secs(8));
    assert_eq!(map.sts.max_attempts, 8);
    assert_eq!(map.sts.min_session, Duration::from_secs(900));
    assert_eq!(map.node.base_dir, Path::new("/run/aws-role"));
    assert_eq!(
        map.node.credential_helper,
        Path::new("/usr/libexec/aws-role/aws-role-credentials")
    );
    assert_eq!(map.defaults.max_session, Duration::from_secs(3600));
    assert_eq!(map.defaults.margin, Duration::from_secs(300));
    assert_eq!(map.defaults.session_name.as_str(), "slurm-{job_id}-{task}");
    assert_eq!(map.defaults.pbs_session_name.as_str(), "pbs-{job_id}");
    assert!(map.roles.is_empty() && map.partitions.is_empty());
    assert_eq!(map.pbs.default_role, None);
    assert!(map.pbs.queues.is_empty());
}

#[test]
fn limits_are_inclusive() {
    let map = accepted(&format!(
        "{STS}timeout = \"120s\"\nmax_attempts = 10\n[defaults]\nmax_session = \"15m\"\nmargin = \"0s\"\n\
         [roles.a]\n{ARN_A}max_session = \"12h\"\n[roles.b]\n{ARN_A}max_session = \"15m\"\n"
    ));
    assert_eq!(map.sts.timeout, Duration::from_secs(120));
    assert_eq!(map.sts.max_attempts, 10);
    assert_eq!(map.defaults.max_session, Duration::from_secs(900));
    assert_eq!(map.defaults.margin, Duration::ZERO);
    assert_eq!(
        map.roles["a"].max_session,
        Some(Duration::from_secs(12 * 3600))
    );
    assert_eq!(map.roles["b"].max_session, Some(Duration::from_secs(900)));
    let map = accepted(&format!(
        "{STS}timeout = \"1s\"\nmax_attempts = 1\n[defaults]\nmax_session = \"12h\"\nmargin = \"1h\"\n"
    ));
    assert_eq!(map.sts.timeout, Duration::from_secs(1));
    assert_eq!(map.sts.max_attempts, 1);
    assert_eq!(map.defaults.max_session, Duration::from_secs(12 * 3600));
    assert_eq!(map.defaults.margin, Duration::from_secs(3600));
}

#[test]
fn without_refresh_and_slurm_tables_their_documented_defaults_apply() {
    let want_refresh = RefreshSettings {
        lead: Duration::from_secs(20 * 60),
        jitter: Duration::from_secs(5 * 60),
        scan_interval: Duration::from_secs(30),
        orphan_grace: Duration::from_secs(3600),
        concurrency: 8,
    };
    let want_slurm = SlurmSettings {
        end_time_from_scontrol: false,
        scontrol: PathBuf::from("/usr/bin/scontrol"),
        scontrol_timeout: Duration::from_secs(2),
    };
    let map = accepted(STS);
    assert_eq!(map.refresh, want_refresh);
    assert_eq!(map.slurm, want_slurm);
    assert_eq!(RefreshSettings::default(), want_refresh);
    assert_eq!(SlurmSettings::default(), want_slurm);
    // Empty tables, and tables setting only some keys, default the rest.
    let map = accepted(&format!("{STS}[refresh]\n[slurm]\n"));
    assert_eq!((map.refresh, map.slurm), (want_refresh, want_slurm));
    let map = accepted(&format!(
        "{STS}[refresh]\nlead = \"30m\"\n[slurm]\nend_time_from_scontrol = true\n"
    ));
    assert_eq!(map.refresh.lead, Duration::from_secs(30 * 60));
    assert_eq!(map.refresh.jitter, Duration::from_secs(5 * 60));
    assert_eq!(map.refresh.concurrency, 8);
    assert!(map.slurm.end_time_from_scontrol);
    assert_eq!(map.slurm.scontrol, Path::new("/usr/bin/scontrol"));
    assert_eq!(map.slurm.scontrol_timeout, Duration::from_secs(2));
}

#[test]
fn refresh_and_slurm_limits_are_inclusive() {
    let map = accepted(&format!(
        "{STS}[refresh]\nlead = \"1s\"\njitter = \"0s\"\nscan_interval = \"1s\"\norphan_grace = \"0s\"\n\
         concurrency = 1\n[slurm]\nend_time_from_scontrol = true\nscontrol = \"/opt/slurm/bin/scontrol\"\n\
         scontrol_timeout = \"100ms\"\n"
    ));
    assert_eq!(
        map.refresh,
        RefreshSettings {
            lead: Duration::from_secs(1),
            jitter: Duration::ZERO,
            scan_interval: Duration::from_secs(1),
            orphan_grace: Duration::ZERO,
            concurrency: 1,
        }
    );
    assert_eq!(
        map.slurm,
        SlurmSettings {
            end_time_from_scontrol: true,
            scontrol: PathBuf::from("/opt/slurm/bin/scontrol"),
            scontrol_timeout: Duration::from_millis(100),
        }
    );
    let map = accepted(&format!(
        "{STS}[refresh]\nlead = \"6h\"\njitter = \"1h\"\nscan_interval = \"10m\"\norphan_grace = \"30d\"\n\
         concurrency = 64\n[slurm]\nscontrol_timeout = \"30s\"\n"
    ));
    assert_eq!(
        map.refresh,
        RefreshSettings {
            lead: Duration::from_secs(6 * 3600),
            jitter: Duration::from_secs(3600),
            scan_interval: Duration::from_secs(600),
            orphan_grace: Duration::from_secs(30 * 86_400),
            concurrency: 64,
        }
    );
    assert_eq!(map.slurm.scontrol_timeout, Duration::from_secs(30));
    // min_session: 15m is allowed anywhere, 1s against a local emulator.
    let map = accepted(&format!("{STS}min_session = \"15m\"\n"));
    assert_eq!(map.sts.min_session, Duration::from_secs(900));
    let map = accepted(&format!(
        "{STS}endpoint = \"https://sts.us-east-1.amazonaws.com\"\nmin_session = \"900s\"\n"
    ));
    assert_eq!(map.sts.min_session, Duration::from_secs(900));
    let map = accepted(&format!(
        "{STS}endpoint = \"http://127.0.0.1:5059\"\nmin_session = \"1s\"\n"
    ));
    assert_eq!(map.sts.min_session, Duration::from_secs(1));
}

#[test]
fn refresh_and_slurm_values_out_of_range_are_refused_where_they_are() {
    let text = format!(
        "{STS}[refresh]\nlead = \"0s\"\njitter = \"61m\"\nscan_interval = \"11m\"\norphan_grace = \"31d\"\n\
         concurrency = 0\n[slurm]\nscontrol = \"scontrol\"\nscontrol_timeout = \"99ms\"\n"
    );
    assert_problems(
        &text,
        &[
            (
                4,
                8,
                "refresh.lead = \"0s\" is out of range: expected 1s to 6h",
            ),
            (
                5,
                10,
                "refresh.jitter = \"61m\" is out of range: expected 0s to 1h",
            ),
            (
                6,
                17,
                "refresh.scan_interval = \"11m\" is out of range: expected 1s to 10m",
            ),
            (
                7,
                16,
                "refresh.orphan_grace = \"31d\" is out of range: expected 0s to 30days",
            ),
            (
                8,
                15,
                "refresh.concurrency = 0 is out of range: expected 1 to 64",
            ),
            (
                10,
                12,
                "slurm.scontrol \"scontrol\" is not an absolute path",
            ),
            (
                11,
                20,
                "slurm.scontrol_timeout = \"99ms\" is out of range: expected 100ms to 30s",
            ),
        ],
    );
    let text = format!(
        "{STS}[slurm]\nscontrol_timeout = \"31s\"\n[refresh]\nscan_interval = \"0s\"\n\
         lead = \"6h 1s\"\nconcurrency = 65\njitter = \"soon\"\n"
    );
    assert_problems(
        &text,
        &[
            (4, 20, "slurm.scontrol_timeout = \"31s\" is out of range"),
            (6, 17, "refresh.scan_interval = \"0s\" is out of range"),
            (7, 8, "refresh.lead = \"6h 1s\" is out of range"),
            (8, 15, "refresh.concurrency = 65 is out of range"),
            (9, 10, "refresh.jitter = \"soon\" is not a duration"),
        ],
    );
    assert_problems(
        &format!("{STS}[refresh]\nconcurrency = -4294967288\n"),
        &[(4, 15, "refresh.concurrency = -4294967288 is out of range")],
    );
}

#[test]
fn refresh_and_slurm_values_of_the_wrong_type_have_their_position() {
    assert_problems(
        &format!("{STS}[refresh]\nlead = 1200\n"),
        &[(4, 8, "invalid type: integer `1200`, expected a string")],
    );
    assert_problems(
        &format!("{STS}[refresh]\nconcurrency = \"8\"\n"),
        &[(4, 15, "invalid type: string \"8\"")],
    );
    assert_problems(
        &format!("{STS}[refresh]\nconcurrency = 8.5\n"),
        &[(4, 15, "invalid type: floating point")],
    );
    assert_problems(
        &format!("{STS}[slurm]\nend_time_from_scontrol = \"yes\"\n"),
        &[(4, 26, "invalid type: string \"yes\", expected a boolean")],
    );
    assert_problems(
        &format!("{STS}[slurm]\nscontrol_timeout = 2\n"),
        &[(4, 20, "invalid type: integer `2`")],
    );
    assert_problems(
        &format!("{STS}min_session = 900\n"),
        &[(3, 15, "invalid type: integer `900`")],
    );
    assert_problems(
        &format!("slurm = true\n{STS}"),
        &[(1, 9, "invalid type: boolean `true`")],
    );
}

#[test]
fn min_session_below_15m_is_only_for_a_local_emulator() {
    let refusal =
        "sts.min_session = \"20s\" is below 15m: real STS refuses DurationSeconds below 900; \
                   the setting is only for tests against a local STS emulator";
    // No endpoint: real STS.
    assert_problems(
        &format!("{STS}min_session = \"20s\"\n"),
        &[(3, 15, refusal)],
    );
    for endpoint in [
        "https://sts.us-east-1.amazonaws.com",
        "https://vpce-0123-abcd.sts.us-east-1.vpce.amazonaws.com",
        "http://127.0.0.2:5059",
        "http://127.0.0.1.nip.io:5059",
        "http://localhost.example.com",
        "http://localhost@sts.example.com",
        "http://[::2]:5059",
        "ftp://127.0.0.1",
    ] {
        let text = format!("{STS}endpoint = \"{endpoint}\"\nmin_session = \"20s\"\n");
        let found = refused(&text).problems;
        let ours: Vec<&Problem> = found
            .iter()
            .filter(|p| p.message.starts_with("sts.min_session"))
            .collect();
        assert_eq!(ours.len(), 1, "{endpoint}: {found:#?}");
        assert_eq!((ours[0].line, ours[0].column), (4, 15), "{endpoint}");
        assert!(ours[0].message.contains(refusal), "{:?}", ours[0].message);
    }
    for (endpoint, min) in [
        ("http://127.0.0.1:5059", "20s"),
        ("http://localhost", "20s"),
        ("https://localhost:8443/sts/", "14m 59s"),
        ("http://[::1]:5059", "1s"),
    ] {
        let map = accepted(&format!(
            "{STS}endpoint = \"{endpoint}\"\nmin_session = \"{min}\"\n"
        ));
        assert_eq!(map.sts.min_session, parse_human(min).unwrap(), "{endpoint}");
        assert!(
            map.summary().contains(&format!(
                "sessions of at least {}",
                dur(map.sts.min_session)
            )),
            "{}",
            map.summary()
        );
    }
    // Never above what real STS accepts as its floor, never 0, even with an emulator.
    assert_problems(
        &format!("{STS}endpoint = \"http://127.0.0.1:5059\"\nmin_session = \"16m\"\n"),
        &[(
            4,
            15,
            "sts.min_session = \"16m\" is out of range: expected 1s to 15m",
        )],
    );
    assert_problems(
        &format!("{STS}min_session = \"16m\"\n"),
        &[(3, 15, "expected 1s to 15m")],
    );
    assert_problems(
        &format!("{STS}endpoint = \"http://localhost\"\nmin_session = \"0s\"\n"),
        &[(4, 15, "expected 1s to 15m")],
    );
    // A bad value is reported once, not also as "below 15m".
    assert_problems(
        &format!("{STS}min_session = \"a while\"\n"),
        &[(3, 15, "sts.min_session = \"a while\" is not a duration")],
    );
}

#[test]
fn loopback_url_rules() {
    for good in [
        "http://127.0.0.1",
        "http://127.0.0.1:5059",
        "https://127.0.0.1:5059/",
        "http://localhost",
        "http://localhost/sts?x=1",
        "http://localhost:65535",
        "http://[::1]",
        "https://[::1]:443/path",
        "http://127.0.0.1#frag",
    ] {
        assert!(is_loopback_url(good), "{good}");
    }
    for bad in [
        "",
        "127.0.0.1",
        "localhost:5059",
        "ftp://localhost",
        "HTTP://localhost",
        "http://",
        "http://127.0.0.1:",
        "http://127.0.0.1:65536",
        "http://127.0.0.1:123456",
        "http://127.0.0.1:50x9",
        "http://127.0.0.1.evil.example",
        "http://127.0.0.10",
        "http://localhost.",
        "http://localhostx",
        "http://LOCALHOST",
        "http://user@localhost",
        "http://localhost@evil.example",
        "http://[::1].evil.example",
        "http://[::1]:",
        "http://::1",
        "http://0.0.0.0",
        "http://sts.amazonaws.com/127.0.0.1",
        "http://localhost :5059",
    ] {
        assert!(!is_loopback_url(bad), "{bad:?}");
    }
}

#[test]
fn session_caps_may_go_down_to_min_session() {
    let emulator = "[sts]\nregion = \"us-east-1\"\nendpoint = \"http://127.0.0.1:5059\"\n";
    // With the default floor, 60 s is refused.
    assert_problems(
        &format!(
            "{STS}[defaults]\nmax_session = \"60s\"\n[roles.a]\n{ARN_A}max_session = \"60s\"\n"
        ),
        &[
            (
                4,
                15,
                "defaults.max_session = \"60s\" is out of range: expected 15m to 12h",
            ),
            (
                7,
                15,
                "roles.a.max_session = \"60s\" is out of range: expected 15m to 12h",
            ),
        ],
    );
    // ... even with an emulator, unless min_session says so.
    assert_problems(
        &format!("{emulator}[roles.a]\n{ARN_A}max_session = \"60s\"\n"),
        &[(6, 15, "expected 15m to 12h")],
    );
    let map = accepted(&format!(
        "{emulator}min_session = \"20s\"\n[defaults]\nmax_session = \"60s\"\n\
         [roles.a]\n{ARN_A}max_session = \"60s\"\n[roles.b]\n{ARN_A}max_session = \"20s\"\n[roles.c]\n{ARN_A}"
    ));
    assert_eq!(map.sts.min_session, Duration::from_secs(20));
    assert_eq!(map.defaults.max_session, Duration::from_secs(60));
    assert_eq!(map.roles["a"].max_session, Some(Duration::from_secs(60)));
    assert_eq!(map.roles["b"].max_session, Some(Duration::from_secs(20)));
    assert_eq!(map.roles["c"].cap(&map.defaults), Duration::from_secs(60));
    // Below min_session, or above 12h, is still refused, with the bound in the message.
    assert_problems(
        &format!(
            "{emulator}min_session = \"20s\"\n[defaults]\nmax_session = \"10s\"\n\
             [roles.a]\n{ARN_A}max_session = \"19s\"\n[roles.b]\n{ARN_A}max_session = \"12h 1s\"\n"
        ),
        &[
            (
                6,
                15,
                "defaults.max_session = \"10s\" is out of range: expected 20s to 12h",
            ),
            (
                9,
                15,
                "roles.a.max_session = \"19s\" is out of range: expected 20s to 12h",
            ),
            (
                12,
                15,
                "roles.b.max_session = \"12h 1s\" is out of range: expected 20s to 12h",
            ),
        ],
    );
    // A refused min_session does not lower the floor: the caps are refused too.
    assert_problems(
        &format!("{STS}min_session = \"20s\"\n[roles.a]\n{ARN_A}max_session = \"60s\"\n"),
        &[
            (3, 15, "sts.min_session = \"20s\" is below 15m"),
            (
                6,
                15,
                "roles.a.max_session = \"60s\" is out of range: expected 15m to 12h",
            ),
        ],
    );
}

#[test]
fn a_role_without_allow_list_is_valid() {
    let map = accepted(&format!(
        "{STS}[roles.a]\n{ARN_A}[partitions.debug]\ndefault_role = \"a\"\n"
    ));
    let role = &map.roles["a"];
    assert!(!role.has_allow_list());
    assert_eq!(role.cap(&map.defaults), Duration::from_secs(3600));
    assert_eq!(map.partitions["debug"].default_role, "a");
    let map = accepted(&format!(
        "{STS}[roles.a]\n{ARN_A}allow_accounts = [\"p\"]\n"
    ));
    assert!(map.roles["a"].has_allow_list());
}

#[test]
fn a_syntax_error_has_its_position() {
    assert_problems(
        "[sts]\nregion = \"us-east-1\"\n\n[roles.a\narn = \"x\"\n",
        &[(4, 9, "unclosed table")],
    );
    assert_problems(
        "[sts]\nregion = us-east-1\n",
        &[(2, 10, "string values must be quoted")],
    );
}

#[test]
fn unknown_keys_are_refused_with_their_position() {
    assert_problems(
        "[sts]\nregion = \"us-east-1\"\nregoin = \"us-east-2\"\n",
        &[(3, 1, "unknown field `regoin`")],
    );
    assert_problems(
        &format!("{STS}[partition.gpu]\ndefault_role = \"a\"\n"),
        &[(3, 2, "unknown field `partition`")],
    );
    assert_problems(
        &format!("{STS}[roles.a]\n{ARN_A}allow_user = [\"alice\"]\n"),
        &[(5, 1, "unknown field `allow_user`")],
    );
    assert_problems(
        &format!("{STS}[roles.a]\n{ARN_A}[pbs.queues.batch]\n  default-role = \"a\"\n"),
        &[(6, 3, "unknown field `default-role`")],
    );
    assert_problems(
        &format!("{STS}[node]\nbase = \"/run/x\"\n"),
        &[(4, 1, "unknown field `base`")],
    );
    assert_problems(
        &format!("{STS}[defaults]\nmargn = \"1m\"\n"),
        &[(4, 1, "unknown field `margn`")],
    );
    assert_problems(
        &format!("{STS}[refresh]\nlead = \"20m\"\nleed = \"20m\"\n"),
        &[(5, 1, "unknown field `leed`")],
    );
    assert_problems(
        &format!("{STS}[refresh]\n  min_session = \"15m\"\n"),
        &[(4, 3, "unknown field `min_session`")],
    );
    assert_problems(
        &format!("{STS}[slurm]\nscontrol_path = \"/usr/bin/scontrol\"\n"),
        &[(4, 1, "unknown field `scontrol_path`")],
    );
    assert_problems(
        &format!("{STS}min_sesion = \"20s\"\n"),
        &[(3, 1, "unknown field `min_sesion`")],
    );
    assert_problems(
        &format!("{STS}[refresher]\nlead = \"20m\"\n"),
        &[(3, 2, "unknown field `refresher`")],
    );
}

#[test]
fn a_value_of_the_wrong_type_has_its_position() {
    assert_problems(
        &format!("{STS}[roles.a]\n{ARN_A}allow_users = \"alice\"\n"),
        &[(5, 15, "invalid type: string \"alice\"")],
    );
    assert_problems(
        &format!("{STS}max_attempts = \"5\"\n"),
        &[(3, 16, "invalid type")],
    );
}

#[test]
fn a_bad_arn_is_refused_where_it_is() {
    assert_problems(
        "[sts]\nregion = \"us-east-1\"\n\n[roles.ml]\nallow_users = [\"alice\"]\nmax_session = \"2h\"\narn = \"arn:aws:iam::12345:role/x\"\n",
        &[(
            7,
            7,
            "roles.ml.arn \"arn:aws:iam::12345:role/x\" is not an IAM role ARN (the account id \"12345\" is not 12 digits)",
        )],
    );
    assert_problems(
        &format!("{STS}[roles.a]\nallow_users = [\"alice\"]\n"),
        &[(3, 1, "[roles.a] has no arn")],
    );
}

#[test]
fn arn_rules() {
    let name64 = "n".repeat(64);
    for good in [
        "arn:aws:iam::123456789012:role/a".to_string(),
        "arn:aws-cn:iam::123456789012:role/path/to/My+Role=,.@-_".to_string(),
        "arn:aws-us-gov:iam::000000000000:role/x".to_string(),
        "arn:aws-iso-b:iam::123456789012:role/x".to_string(),
        "arn:aws-eusc:iam::123456789012:role/x".to_string(),
        format!("arn:aws:iam::123456789012:role/p/{name64}"),
    ] {
        assert_eq!(check_arn(&good).map(|_| ()), Ok(()), "{good}");
    }
    let long_name = format!("arn:aws:iam::123456789012:role/{name64}n");
    let long = format!("arn:aws:iam::123456789012:role/{}x", "p/".repeat(1100));
    let cases = [
        ("", "six"),
        ("arn:aws:iam::123456789012", "six"),
        ("urn:aws:iam::123456789012:role/a", "\"arn:\""),
        (
            "arn:aws-moon:iam::123456789012:role/a",
            "unknown partition \"aws-moon\" (known: aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc)",
        ),
        ("arn:aws:s3::123456789012:role/a", "not \"iam\""),
        ("arn:aws:iam:us-east-1:123456789012:role/a", "no region"),
        ("arn:aws:iam::12345678901:role/a", "not 12 digits"),
        ("arn:aws:iam::12345678901a:role/a", "not 12 digits"),
        ("arn:aws:iam::123456789012:user/alice", "\"role/\""),
        ("arn:aws:iam::123456789012:role/", "1 to 64"),
        ("arn:aws:iam::123456789012:role/path/", "1 to 64"),
        ("arn:aws:iam::123456789012:role/a b", "' ' is not allowed"),
        ("arn:aws:iam::123456789012:role/a:b", "':' is not allowed"),
        ("arn:aws:iam::123456789012:role/é", "'é' is not allowed"),
        (long_name.as_str(), "1 to 64"),
        (long.as_str(), "at most 2048"),
    ];
    for (bad, fragment) in cases {
        match check_arn(bad) {
            Ok(_) => panic!("{bad:?} accepted"),
            Err(why) => assert!(
                why.contains(fragment),
                "{bad:?}: {why:?} lacks {fragment:?}"
            ),
        }
    }
}

#[test]
fn durations_must_parse_and_be_in_range() {
    let text = format!(
        "{STS}timeout = \"0s\"\n[defaults]\nmax_session = \"10m\"\nmargin = \"2h\"\n[roles.a]\n{ARN_A}max_session = \"13h\"\n\
         [roles.b]\n{ARN_A}max_session = \"1 fortnight\"\n"
    );
    assert_problems(
        &text,
        &[
            (
                3,
                11,
                "sts.timeout = \"0s\" is out of range: expected 1s to 2m",
            ),
            (
                5,
                15,
                "defaults.max_session = \"10m\" is out of range: expected 15m to 12h",
            ),
            (
                6,
                10,
                "defaults.margin = \"2h\" is out of range: expected 0s to 1h",
            ),
            (9, 15, "roles.a.max_session = \"13h\" is out of range"),
            (
                12,
                15,
                "roles.b.max_session = \"1 fortnight\" is not a duration",
            ),
        ],
    );
    assert_problems(
        &format!("{STS}timeout = \"121s\"\n"),
        &[(3, 11, "out of range")],
    );
    assert_problems(
        &format!("{STS}[defaults]\nmax_session = \"3600\"\n"),
        &[(4, 15, "is not a duration")],
    );
}

#[test]
fn max_attempts_must_be_1_to_10() {
    assert_problems(
        &format!("{STS}max_attempts = 0\n"),
        &[(
            3,
            16,
            "sts.max_attempts = 0 is out of range: expected 1 to 10",
        )],
    );
    assert_problems(&format!("{STS}max_attempts = 11\n"), &[(3, 16, "= 11 ")]);
    assert_problems(
        &format!("{STS}max_attempts = -4294967295\n"),
        &[(3, 16, "= -4294967295 ")],
    );
}

/// `node_rate`: 1 to 10,000 calls a second, its schedule beside the job directories, and
/// said by `--check-config`.
#[test]
fn node_rate_is_checked_and_its_file_sits_beside_the_base_dir() {
    assert_problems(
        &format!("{STS}node_rate = 0\n"),
        &[(
            3,
            13,
            "sts.node_rate = 0 is out of range: expected 1 to 10000 STS calls a second for this node",
        )],
    );
    assert_problems(&format!("{STS}node_rate = 10001\n"), &[(3, 13, "= 10001 ")]);
    let map = RoleMap::parse(
        &format!("{STS}node_rate = 40\n[node]\nbase_dir = \"/run/aws-role\"\n[roles.a]\n{ARN_A}"),
        Path::new("t.toml"),
    )
    .unwrap();
    let rate = map.sts.node_rate.as_ref().unwrap();
    assert_eq!(
        (rate.per_second, rate.file.as_path()),
        (40, Path::new("/run/aws-role.sts-rate"))
    );
    assert!(map.summary().contains(
        "node rate: at most 40 STS calls a second from this node (its prologs, refresher and --check-node together), scheduled in /run/aws-role.sts-rate\n"
    ));
    let plain = RoleMap::parse(&format!("{STS}[roles.a]\n{ARN_A}"), Path::new("t.toml")).unwrap();
    assert_eq!(plain.sts.node_rate, None);
    assert!(plain.summary().contains("node rate: none"));
}

#[test]
fn role_names_are_checked_and_none_is_reserved() {
    let long = "r".repeat(65);
    let text = format!(
        "{STS}[roles.none]\n{ARN_A}[roles.\"ml training\"]\n{ARN_A}[roles.NONE]\n{ARN_A}[roles.{long}]\n{ARN_A}[roles.\"\"]\n{ARN_A}"
    );
    assert_problems(
        &text,
        &[
            (3, 8, "role name \"none\" is reserved"),
            (
                5,
                8,
                "role name \"ml training\" is not valid: expected 1 to 64 characters",
            ),
            (7, 8, "role name \"NONE\" is reserved"),
            (9, 8, "is not valid"),
            (11, 8, "role name \"\" is not valid"),
        ],
    );
    let map = accepted(&format!("{STS}[roles.\"Ok.name_-9\"]\n{ARN_A}"));
    assert!(map.roles.contains_key("Ok.name_-9"));
}

#[test]
fn default_roles_must_exist() {
    let text = format!(
        "{STS}[roles.ml]\n{ARN_A}[partitions.gpu]\ndefault_role = \"ml-training\"\n\
         [partitions.cpu]\n[pbs]\ndefault_role = \"none\"\n[pbs.queues.batch]\ndefault_role = \"ML\"\n\
         [pbs.queues.ok]\ndefault_role = \"ml\"\n"
    );
    assert_problems(
        &text,
        &[
            (
                6,
                16,
                "partitions.gpu.default_role = \"ml-training\" names no role of this map (dangling reference); roles: ml",
            ),
            (7, 1, "[partitions.cpu] has no default_role"),
            (9, 16, "pbs.default_role = \"none\" names no role"),
            (11, 16, "pbs.queues.batch.default_role = \"ML\" names no role"),
        ],
    );
    assert_problems(
        &format!("{STS}[partitions.gpu]\ndefault_role = \"a\"\n"),
        &[(4, 16, "the map defines no roles")],
    );
    assert_problems(
        &format!("{STS}[roles.a]\n{ARN_A}[partitions.\"gpu a\"]\ndefault_role = \"a\"\n"),
        &[(5, 13, "\"gpu a\" cannot be a partition or queue name")],
    );
}

#[test]
fn a_reference_to_a_role_with_its_own_mistake_is_not_reported_twice() {
    assert_problems(
        &format!("{STS}[roles.a]\narn = \"bad\"\n[partitions.p]\ndefault_role = \"a\"\n"),
        &[(4, 7, "roles.a.arn \"bad\"")],
    );
}

#[test]
fn allow_list_names_are_checked() {
    let text = format!(
        "{STS}[roles.ml]\n{ARN_A}allow_users = [\"alice\", \"bob:smith\"]\nallow_groups = [\"\", \"ml\"]\n\
         allow_accounts = [\"proj$ml\"]\n"
    );
    assert_problems(
        &text,
        &[
            (
                5,
                25,
                "roles.ml.allow_users: \"bob:smith\" is not a user name NSS could give",
            ),
            (
                6,
                17,
                "roles.ml.allow_groups: \"\" is not a group name NSS could give",
            ),
            (7, 19, "\"proj$ml\" is not a valid account name"),
        ],
    );
    let long = "u".repeat(256);
    assert_problems(
        &format!("{STS}[roles.ml]\n{ARN_A}allow_users = [\"{long}\"]\n"),
        &[(5, 16, "1 to 255 bytes")],
    );
    for (bad, col) in [
        ("\\nroot", 16),
        (" alice", 16),
        ("alice ", 16),
        ("a\\tb", 16),
    ] {
        assert_problems(
            &format!("{STS}[roles.ml]\n{ARN_A}allow_users = [\"{bad}\"]\n"),
            &[(5, col, "is not a user name NSS could give")],
        );
    }
}

/// SSSD and winbind names (fully qualified, domain\\user, with spaces) are names like any
/// other, kept byte for byte: matching is exact.
#[test]
fn directory_service_names_are_accepted_as_nss_gives_them() {
    let text = format!(
        "{STS}[roles.ml]\n{ARN_A}allow_users = [\"alice@example.com\", 'EXAMPLE\\alice', \"{u}\"]\n\
         allow_groups = [\"domain users\", \"ml@example.com\"]\n",
        u = "j\u{fc}rgen"
    );
    let map = RoleMap::parse(&text, Path::new("t.toml")).unwrap();
    let role = &map.roles["ml"];
    assert_eq!(
        role.allow_users,
        ["alice@example.com", "EXAMPLE\\alice", "j\u{fc}rgen"]
    );
    assert_eq!(role.allow_groups, ["domain users", "ml@example.com"]);
}

#[test]
fn session_name_templates_are_checked() {
    assert_problems(
        &format!(
            "{STS}[defaults]\nsession_name = \"slurm-{{jobid}}\"\npbs_session_name = \"pbs-{{user}}\"\n"
        ),
        &[
            (4, 16, "defaults.session_name: unknown placeholder {jobid}"),
            (5, 20, "defaults.pbs_session_name: the template must contain {job_id}"),
        ],
    );
    let map = accepted(&format!(
        "{STS}[defaults]\nsession_name = \"{{cluster}}.{{job_id}}\"\n"
    ));
    assert_eq!(map.defaults.session_name.as_str(), "{cluster}.{job_id}");
}

#[test]
fn session_policies_are_checked() {
    let long = format!("{{\"Statement\": [], \"x\": \"{}\"}}", "p".repeat(2048));
    let text = format!(
        "{STS}[roles.a]\n{ARN_A}session_policy = '{{\"Version\": \"2012-10-17\"}}'\n\
         [roles.b]\n{ARN_A}session_policy = \"[1, 2]\"\n\
         [roles.c]\n{ARN_A}session_policy = \"{{not json\"\n\
         [roles.d]\n{ARN_A}session_policy = '{long}'\n"
    );
    assert_problems(
        &text,
        &[
            (
                5,
                18,
                "roles.a.session_policy \"{\\\"Version\\\": \\\"2012-10-17\\\"}\" has no \"Statement\"",
            ),
            (8, 18, "roles.b.session_policy \"[1, 2]\" is not a JSON object"),
            (11, 18, "roles.c.session_policy \"{not json\" is not valid JSON"),
            (14, 18, "roles.d.session_policy is 2074 characters long: STS accepts at most 2048"),
        ],
    );
    let policy = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}"#;
    let map = accepted(&format!(
        "{STS}[roles.a]\n{ARN_A}session_policy = '{policy}'\n"
    ));
    assert_eq!(map.roles["a"].session_policy.as_deref(), Some(policy));
}

#[test]
fn source_identity_is_checked() {
    let long = "x".repeat(65);
    let text = format!(
        "{STS}[roles.a]\n{ARN_A}source_identity = \"AWS:{{user}}\"\n\
         [roles.b]\n{ARN_A}source_identity = \"{{user}}!\"\n\
         [roles.c]\n{ARN_A}source_identity = \"x\"\n\
         [roles.d]\n{ARN_A}source_identity = \"{long}{{user}}\"\n"
    );
    assert_problems(
        &text,
        &[
            (
                5,
                19,
                "roles.a.source_identity \"AWS:{user}\" starts with \"aws:\"",
            ),
            (8, 19, "roles.b.source_identity: '!' is not allowed here"),
            (11, 19, "roles.c.source_identity \"x\" is too short"),
            (
                14,
                19,
                "literal text is 65 characters long; a SourceIdentity has at most 64",
            ),
        ],
    );
    let map = accepted(&format!(
        "{STS}[roles.a]\n{ARN_A}source_identity = \"hpc-{{user}}\"\n"
    ));
    let si = map.roles["a"].source_identity.clone();
    assert_eq!(si.as_ref().map(Template::as_str), Some("hpc-{user}"));
}

#[test]
fn tags_are_checked() {
    let text = format!(
        "{STS}[roles.a]\n{ARN_A}tags = {{ \"aws:user\" = \"{{user}}\", \"bad!key\" = \"x\", job = \"{{jobid}}\", Project = \"p\", project = \"q\" }}\n"
    );
    assert_problems(
        &text,
        &[
            (
                5,
                10,
                "roles.a.tags: tag key \"aws:user\" starts with \"aws:\"",
            ),
            (5, 33, "tag key \"bad!key\" is not valid"),
            (5, 56, "roles.a.tags.job: unknown placeholder {jobid}"),
            (
                5,
                82,
                "tag keys \"Project\" and \"project\" differ only in case",
            ),
        ],
    );
    let many: String = (0..51).map(|i| format!("k{i} = \"v\"\n")).collect();
    assert_problems(
        &format!("{STS}[roles.a]\n{ARN_A}[roles.a.tags]\n{many}"),
        &[(5, 1, "roles.a.tags has 51 tags: STS accepts at most 50")],
    );
    let text = format!(
        "{STS}[roles.a]\n{ARN_A}[roles.a.tags]\n{} = \"v\"\nlong = \"{}\"\nok = \"{{user}} at {{cluster}}\"\n",
        "k".repeat(129),
        "v".repeat(257)
    );
    assert_problems(
        &text,
        &[
            (6, 1, "tag key \"kkkk"),
            (
                7,
                8,
                "roles.a.tags.long: its literal text is 257 characters long; a tag value has at most 256",
            ),
        ],
    );
    let fifty: String = (0..50).map(|i| format!("k{i} = \"{{user}}\"\n")).collect();
    let map = accepted(&format!("{STS}[roles.a]\n{ARN_A}[roles.a.tags]\n{fifty}"));
    assert_eq!(map.roles["a"].tags.len(), 50);
    let map = accepted(&format!(
        "{STS}[roles.a]\n{ARN_A}tags = {{ \"Cost Center\" = \"hpc/{{account}}\", user = \"{{user}}\" }}\n"
    ));
    let tags: Vec<(&str, &str)> = map.roles["a"]
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(tags, [("Cost Center", "hpc/{account}"), ("user", "{user}")]);
}

#[test]
fn endpoint_and_paths_are_checked() {
    let text = "[sts]\nregion = \"us-east-1\"\nendpoint = \"sts.amazonaws.com\"\n\
                credentials_file = \"etc/aws-role/creds\"\nprofile = \"my profile\"\n[node]\n\
                base_dir = \"run/aws-role\"\ncredential_helper = \"aws-role-credentials\"\n";
    assert_problems(
        text,
        &[
            (
                3,
                12,
                "sts.endpoint \"sts.amazonaws.com\" is not an http(s) URL",
            ),
            (
                4,
                20,
                "sts.credentials_file \"etc/aws-role/creds\" is not an absolute path",
            ),
            (5, 11, "sts.profile \"my profile\" is not a profile name"),
            (
                7,
                12,
                "node.base_dir \"run/aws-role\" is not an absolute path",
            ),
            (
                8,
                21,
                "node.credential_helper \"aws-role-credentials\" is not an absolute path",
            ),
        ],
    );
    assert_problems(
        &format!("{STS}endpoint = \"https://\"\n"),
        &[(3, 12, "http(s) URL")],
    );
    let map = accepted(&format!(
        "{STS}endpoint = \"http://127.0.0.1:5000\"\n[node]\nbase_dir = \"/tmp/aws-role\"\n"
    ));
    assert_eq!(map.sts.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
    // Plain http only to this host: before, any host was accepted, and the jobs'
    // secret keys crossed the network in clear text.
    for remote in [
        "http://sts.us-east-1.amazonaws.com",
        "http://10.0.0.5:5000",
        "http://127.0.0.1.evil.example",
        "http://localhost@evil.example",
    ] {
        assert_problems(
            &format!("{STS}endpoint = \"{remote}\"\n"),
            &[(3, 12, "is plain http to a host other than this one")],
        );
    }
    for local in [
        "http://localhost:5000",
        "http://[::1]:5000/",
        "https://10.0.0.5:5000",
    ] {
        accepted(&format!("{STS}endpoint = \"{local}\"\n"));
    }
    assert_eq!(map.node.base_dir, Path::new("/tmp/aws-role"));
}

#[test]
fn the_region_is_required_and_checked() {
    assert_problems(
        &format!("[roles.a]\n{ARN_A}"),
        &[(0, 0, "there is no [sts] table")],
    );
    assert_problems(
        "\n[sts]\ntimeout = \"8s\"\n",
        &[(2, 1, "[sts] has no region")],
    );
    assert_problems(
        "[sts]\nregion = \"US-East-1\"\n",
        &[(2, 10, "sts.region \"US-East-1\" is not an AWS region")],
    );
}

#[test]
fn region_rules() {
    for good in [
        "us-east-1",
        "cn-north-1",
        "us-gov-west-1",
        "ap-southeast-2",
        "eu-central-1",
        "us-isob-east-1",
        "eusc-de-east-1",
    ] {
        assert!(is_region(good), "{good}");
    }
    for bad in [
        "",
        "us",
        "us-east",
        "useast1",
        "us-east-",
        "us--east-1",
        "-us-east-1",
        "us-east-1a",
        "u-east-1",
        "us-east-1-",
        "US-EAST-1",
        "us-east-one",
        "abcde-x-1",
        "us_east_1",
        "us-éast-1",
        "us-1",
    ] {
        assert!(!is_region(bad), "{bad:?}");
    }
}

#[test]
fn every_mistake_is_reported_in_file_order() {
    let text = "[partitions.gpu]\n\
                default_role = \"ml-trainig\"\n\
                \n\
                [sts]\n\
                region = \"us-east\"\n\
                \n\
                [roles.ml-training]\n\
                arn = \"arn:aws:iam::123456789012:role/\"\n\
                allow_users = [\"alice\", \"b:b\"]\n\
                max_session = \"90\"\n";
    let shown = refused(text).to_string();
    let lines: Vec<&str> = shown.lines().collect();
    let prefixes = [
        "/etc/aws-role/site.toml:2:16: partitions.gpu.default_role = \"ml-trainig\"",
        "/etc/aws-role/site.toml:5:10: sts.region",
        "/etc/aws-role/site.toml:8:7: roles.ml-training.arn",
        "/etc/aws-role/site.toml:9:25: roles.ml-training.allow_users",
        "/etc/aws-role/site.toml:10:15: roles.ml-training.max_session",
    ];
    assert_eq!(lines.len(), prefixes.len(), "{shown}");
    for (line, prefix) in lines.iter().zip(prefixes) {
        assert!(
            line.starts_with(prefix),
            "{line:?} does not start with {prefix:?}"
        );
    }
}

#[test]
fn control_characters_cannot_break_the_one_line_per_problem_format() {
    let e = refused("[sts]\nregion = \"us-east-1\"\n\"a\\nb\" = 1\n");
    assert_eq!(e.problems.len(), 1);
    assert!(!e.problems[0].message.contains('\n'), "{:?}", e.problems[0]);
    assert!(
        e.problems[0].message.contains("a\\nb"),
        "{:?}",
        e.problems[0]
    );
    assert_eq!(e.to_string().lines().count(), 1);
    let e = refused("[sts]\nregion = \"us-\\u001b[31m-1\"\n");
    assert!(
        !e.problems[0].message.contains('\u{1b}'),
        "{:?}",
        e.problems
    );
}

#[test]
fn columns_count_characters() {
    assert_problems(
        &format!("{STS}[roles.a]\n{ARN_A}tags = {{ \"ü\" = \"{{nope}}\" }}\n"),
        &[(5, 16, "unknown placeholder {nope}")],
    );
    let text = "ab\ncdé\nf";
    let at = |o| position(text, o);
    assert_eq!(at(0), (1, 1));
    assert_eq!(at(2), (1, 3));
    assert_eq!(at(3), (2, 1));
    assert_eq!(at(5), (2, 3));
    assert_eq!(at(6), (2, 3));
    assert_eq!(at(7), (2, 4));
    assert_eq!(at(8), (3, 1));
    assert_eq!(at(100), (3, 2));
    assert_eq!(position("", 3), (1, 1));
}

#[test]
fn an_unreadable_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let e = RoleMap::load(&path).unwrap_err();
    assert_eq!(e.file, path);
    assert_eq!(e.problems.len(), 1);
    assert_eq!((e.problems[0].line, e.problems[0].column), (0, 0));
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{}: cannot read: ", path.display())),
        "{shown}"
    );
    assert!(shown.contains("No such file"), "{shown}");
    // A directory is not a map either.
    let e = RoleMap::load(dir.path()).unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{}: cannot read: ", dir.path().display())),
        "{shown}"
    );
}

#[test]
fn load_reads_the_file_and_names_it_in_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("role-map.toml");
    std::fs::write(&path, EXAMPLE).unwrap();
    let map = RoleMap::load(&path).unwrap();
    assert_eq!(map.source, path);
    assert_eq!(map.roles.len(), 3);
    std::fs::write(&path, "[sts]\nregion = \"mars-1\"\n").unwrap();
    let e = RoleMap::load(&path).unwrap_err();
    assert_eq!(e.file, path);
    let expected = format!("{}:2:10: sts.region \"mars-1\"", path.display());
    assert!(e.to_string().starts_with(&expected), "{e}");
}

#[test]
fn summary_lists_roles_who_may_use_them_and_defaults() {
    let s = accepted(EXAMPLE).summary();
    for expected in [
        "ml-training: arn:aws:iam::123456789012:role/hpc/ml-training\n    cap 12h\n",
        "may be requested by: users alice, bob; groups ml; accounts proj-ml",
        "analytics: arn:aws:iam::123456789012:role/hpc-analytics\n    cap 1h (default)\n",
        "may be requested by: groups analysts",
        "shared-readonly: arn:aws:iam::123456789012:role/hpc-shared-readonly",
        "may be requested by: nobody (partition/queue default only)",
        "default of: partition debug, PBS queue batch, other PBS queues",
        "gpu -> ml-training",
        "debug -> shared-readonly",
        "batch -> shared-readonly",
        "any other or unknown queue -> shared-readonly",
        "sts: region us-east-1, regional endpoint, node credentials from the default chain",
        "at most 8 attempts, sessions of at least 15m\n",
        "refresh: 20m to 25m before expiry, job directories rescanned every 30s, at most 8 AssumeRole calls at once\n",
        "  directories of jobs that ended over 1h ago (end time + margin) are removed\n",
        "slurm: a Prolog= not told the job's end time does not ask scontrol (end_time_from_scontrol = false)\n",
        "jobs must not reach IMDS\n",
        "endpoint: jobs get http://127.0.0.1:941/v1/credentials/<job> and a token (aws-role-endpoint), at most 1024 connections, 64 per user\n",
    ] {
        assert!(s.contains(expected), "summary lacks {expected:?}:\n{s}");
    }
    assert!(!s.contains("warning"), "{s}");
    let s = accepted(&format!(
        "{STS}endpoint = \"http://127.0.0.1:5000\"\n[roles.orphan]\n{ARN_A}source_identity = \"{{user}}\"\ntags = {{ job = \"{{job_id}}\" }}\n"
    ))
    .summary();
    for expected in [
        "orphan: arn:aws:iam::123456789012:role/a",
        "endpoint http://127.0.0.1:5000,",
        "warning: no allow list and not the default of any partition or queue",
        "source identity: {user}",
        "session tags: job={job_id}",
        "any other or unknown queue -> no role",
    ] {
        assert!(s.contains(expected), "summary lacks {expected:?}:\n{s}");
    }
    let s = accepted(&format!(
        "{STS}[refresh]\nlead = \"30m\"\njitter = \"0s\"\nscan_interval = \"1m\"\norphan_grace = \"2d\"\n\
         concurrency = 3\n[slurm]\nend_time_from_scontrol = true\nscontrol = \"/opt/slurm/bin/scontrol\"\n\
         scontrol_timeout = \"500ms\"\n"
    ))
    .summary();
    for expected in [
        "refresh: 30m before expiry, job directories rescanned every 1m, at most 3 AssumeRole calls at once\n",
        "over 2days ago",
        "slurm: a Prolog= not told the job's end time asks /opt/slurm/bin/scontrol show job (timeout 500ms)\n",
    ] {
        assert!(s.contains(expected), "summary lacks {expected:?}:\n{s}");
    }
}

#[test]
fn problems_without_a_position_show_only_the_file() {
    let e = MapError {
        file: PathBuf::from("/x.toml"),
        problems: vec![
            Problem {
                line: 0,
                column: 0,
                message: "a".into(),
            },
            Problem {
                line: 3,
                column: 4,
                message: "b".into(),
            },
        ],
    };
    assert_eq!(e.to_string(), "/x.toml: a\n/x.toml:3:4: b");
}

proptest! {
    #[test]
    fn parse_never_panics_on_any_text(text in "\\PC{0,300}") {
        if let Err(e) = parse(&text) {
            prop_assert!(!e.problems.is_empty());
            prop_assert_eq!(e.to_string().lines().count(), e.problems.len());
        }
    }

    #[test]
    fn parse_never_panics_on_near_maps(pieces in prop::collection::vec(prop::sample::select(vec![
        "[sts]\n", "region = ", "\"us-east-1\"", "[roles.a]\n", "[roles.none]\n", "arn = ",
        "\"arn:aws:iam::123456789012:role/a\"", "\n", "{", "}", "tags = ", " = ", "\"{user}\"",
        "max_session = ", "\"1h\"", "\"99h\"", "[partitions.p]\n", "default_role = ", "\"a\"", "'",
        "\"", "é", "#", "[pbs.queues.q]\n", "source_identity = ", "session_policy = ", "[", "]",
        "allow_users = ", "[\"x\", \"y z\"]", "0", "\\u0000", "timeout = ", "max_attempts = ",
        "[refresh]\n", "lead = ", "concurrency = ", "[slurm]\n", "scontrol = ", "true",
        "min_session = ", "\"20s\"", "endpoint = ", "\"http://localhost\"",
    ]), 0..60)) {
        let text = pieces.concat();
        match parse(&text) {
            Ok(map) => {
                prop_assert!(is_region(&map.sts.region));
                prop_assert!(!map.summary().is_empty());
            }
            Err(e) => {
                prop_assert!(!e.problems.is_empty());
                prop_assert_eq!(e.to_string().lines().count(), e.problems.len());
                for p in &e.problems {
                    prop_assert!(p.line <= text.lines().count() + 1, "{:?}", p);
                }
            }
        }
    }
}

/// The example maps the README and aws-role-map(5) show are valid maps.
#[test]
fn the_documented_example_maps_are_valid() {
    let blocks = |text: &str, fence: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut cur: Option<String> = None;
        for line in text.lines() {
            match &mut cur {
                None if line.trim_end() == fence => cur = Some(String::new()),
                Some(b) if line.trim_end() == "```" => {
                    out.push(std::mem::take(b));
                    cur = None;
                }
                Some(b) => {
                    b.push_str(line);
                    b.push('\n');
                }
                None => {}
            }
        }
        out
    };
    let readme = blocks(include_str!("../../../README.md"), "```toml");
    let page: Vec<String> = blocks(include_str!("../../../docs/man/aws-role-map.5.md"), "```")
        .into_iter()
        .filter(|b| b.contains("[sts]"))
        .collect();
    assert_eq!((readme.len(), page.len()), (1, 1), "one example in each");
    for text in readme.iter().chain(&page) {
        if let Err(e) = parse(text) {
            panic!("{e}\n{text}");
        }
    }
}

/// `[endpoint]`: its defaults (the documented string and the value agree), the addresses
/// the SDKs accept over plain http, and every refusal at its position: an address another
/// host could reach, a port any user could take first, a value that is no address, counts
/// out of range.
#[test]
fn endpoint_settings_and_their_refusals() {
    let head = "[sts]\nregion = \"us-east-1\"\n[endpoint]\n";
    let d = accepted("[sts]\nregion = \"us-east-1\"\n").endpoint;
    assert!(d.enabled);
    assert_eq!(d.listen.to_string(), DEFAULT_ENDPOINT_LISTEN);
    for ok in [
        "127.0.0.1:80",
        "127.0.1.1:941",
        "[::1]:941",
        "169.254.170.2:80",
        "169.254.170.23:80",
        "[fd00:ec2::23]:80",
    ] {
        let m = accepted(&format!("{head}listen = \"{ok}\"\n"));
        assert_eq!(m.endpoint.listen.to_string(), ok);
    }
    assert!(
        !accepted(&format!("{head}enabled = false\n"))
            .endpoint
            .enabled
    );
    assert_problems(
        &format!("{head}listen = \"0.0.0.0:941\"\nmax_connections = 0\n"),
        &[
            (4, 10, "not an address the AWS SDKs accept"),
            (5, 19, "out of range"),
        ],
    );
    assert_problems(
        &format!("{head}listen = \"127.0.0.1:8080\"\nmax_connections_per_user = 65537\n"),
        &[(4, 10, "only root can bind"), (5, 28, "out of range")],
    );
    assert_problems(
        &format!("{head}listen = \"localhost\"\n"),
        &[(4, 10, "not an address and port")],
    );
    assert_problems(
        &format!("{head}listen = \"10.0.0.5:941\"\n"),
        &[(4, 10, "loopback")],
    );
}

#[test]
fn summary_says_when_the_endpoint_is_off_and_jobs_may_reach_imds() {
    let s = accepted(&format!(
        "{STS}[node]\njobs_may_reach_imds = true\n[endpoint]\nenabled = false\n"
    ))
    .summary();
    assert!(
        s.contains("jobs may (jobs_may_reach_imds = true) reach IMDS\n"),
        "{s}"
    );
    assert!(
        s.contains("endpoint: off (enabled = false): jobs get no endpoint variable\n"),
        "{s}"
    );
}

/// `external_id`, `policy_arns` and `transitive_tag_keys`: STS's limits, each refusal where
/// it is written, and the ExternalId never quoted.
#[test]
fn cross_account_settings_are_checked() {
    let policies: Vec<String> = (0..11)
        .map(|i| format!("\"arn:aws:iam::123456789012:policy/p{i}\""))
        .collect();
    let text = format!(
        "{STS}[roles.a]\n{ARN_A}external_id = \"x\"\n\
         [roles.b]\n{ARN_A}external_id = \"secret vendor id\"\n\
         [roles.c]\n{ARN_A}policy_arns = [{}]\n\
         [roles.d]\n{ARN_A}policy_arns = [\"arn:aws:iam::123456789012:role/r\", \"arn:aws:iam::999999999999:policy/p\", \"arn:aws:iam::aws:policy/ReadOnlyAccess\", \"arn:aws:iam::aws:policy/ReadOnlyAccess\"]\n\
         [roles.e]\n{ARN_A}tags = {{ Project = \"x1\" }}\ntransitive_tag_keys = [\"project\", \"cost\", \"PROJECT\"]\n",
        policies.join(", ")
    );
    assert_problems(
        &text,
        &[
            (
                5,
                15,
                "roles.a.external_id is 1 characters long: STS accepts 2 to 1224",
            ),
            (
                8,
                15,
                "roles.b.external_id has a character STS refuses at position 7",
            ),
            (
                11,
                15,
                "roles.c.policy_arns has 11 policies: STS accepts at most 10",
            ),
            (14, 16, "does not start with \"policy/\""),
            (
                14,
                52,
                "is in account 999999999999, the role in 123456789012",
            ),
            (
                14,
                132,
                "\"arn:aws:iam::aws:policy/ReadOnlyAccess\" is listed twice",
            ),
            (
                18,
                35,
                "roles.e.transitive_tag_keys: \"cost\" is not a key of this role's tags (Project)",
            ),
            (18, 43, "\"PROJECT\" is listed twice"),
        ],
    );
    let e = refused(&text);
    assert!(
        !e.to_string().contains("secret vendor id"),
        "the ExternalId is quoted: {e}"
    );
    // The ARNs share STS's 2048 characters with the inline policy.
    let policy = format!("{{\"Statement\": [], \"x\": \"{}\"}}", "p".repeat(2000));
    assert_problems(
        &format!(
            "{STS}[roles.a]\n{ARN_A}session_policy = '{policy}'\npolicy_arns = [\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]\n"
        ),
        &[(6, 15, "roles.a.policy_arns and session_policy are 2064 characters of plain text together")],
    );
    let map = accepted(&format!(
        "{STS}[roles.a]\n{ARN_A}external_id = \"vendor:4711/x\"\n\
         policy_arns = [\"arn:aws:iam::123456789012:policy/lab/read\", \"arn:aws:iam::aws:policy/ReadOnlyAccess\"]\n\
         tags = {{ project = \"{{account}}\" }}\ntransitive_tag_keys = [\"project\"]\n"
    ));
    let a = &map.roles["a"];
    assert_eq!(a.external_id.as_deref(), Some("vendor:4711/x"));
    assert_eq!(a.policy_arns.len(), 2);
    assert_eq!(a.transitive_tag_keys, ["project"]);
    let summary = map.summary();
    assert!(
        summary.contains("external id: set (13 characters; not shown)"),
        "{summary}"
    );
    assert!(!summary.contains("vendor:4711"), "{summary}");
    assert!(
        summary.contains("transitive tag keys: project"),
        "{summary}"
    );
    assert!(
        summary.contains("managed session policies: arn:aws:iam::123456789012:policy/lab/read, "),
        "{summary}"
    );
}

/// `[sts] proxy` and `no_proxy`: an http(s) URL with a host and nothing after it, bypass
/// rules that are hosts, domains, addresses or blocks; every refusal at its position, and
/// neither a refusal nor the summary ever quotes the proxy's password.
#[test]
fn the_proxy_is_an_http_url_and_its_password_is_never_shown() {
    let map = accepted(&format!(
        "[sts]\nregion = \"us-east-1\"\nproxy = \"http://svc-hpc:pr0xy-pw@proxy.example.com:3128\"\nno_proxy = [\".internal\", \"10.0.0.0/8\"]\n[roles.a]\n{ARN_A}"
    ));
    let ProxySetting::Map(p) = &map.sts.proxy else {
        panic!("no proxy: {:?}", map.sts.proxy);
    };
    assert_eq!(p.shown(), "http://proxy.example.com:3128");
    assert_eq!(p.no_proxy(), [".internal", "10.0.0.0/8"]);
    let summary = map.summary();
    assert!(
        summary.contains("proxy: http://proxy.example.com:3128 (user name and password: set, not shown) for every STS call"),
        "{summary}"
    );
    assert!(
        summary.contains("bypassed for .internal, 10.0.0.0/8 and the instance-metadata addresses"),
        "{summary}"
    );
    for text in [summary, format!("{map:?}")] {
        assert!(
            !text.contains("pr0xy-pw") && !text.contains("svc-hpc"),
            "{text}"
        );
    }
    assert_eq!(
        accepted(&format!("{STS}[roles.a]\n{ARN_A}")).sts.proxy,
        ProxySetting::Direct
    );

    let text = format!(
        "[sts]\nregion = \"us-east-1\"\nproxy = \"socks5://svc:pr0xy-pw@proxy:1080\"\nno_proxy = [\"ok.example\", \"a b\", \"\"]\n[roles.a]\n{ARN_A}"
    );
    assert_problems(
        &text,
        &[
            (
                3,
                9,
                "sts.proxy \"socks5://…@proxy:1080\" is not a proxy URL: its scheme is \"socks5\"",
            ),
            (
                4,
                27,
                "sts.no_proxy: \"a b\" is not a host, domain, IP address or CIDR block",
            ),
            (4, 34, "sts.no_proxy: \"\" is not a host"),
        ],
    );
    assert!(!refused(&text).to_string().contains("pr0xy-pw"));
    assert_problems(
        &format!("{STS}proxy = \"http://proxy:3128/cgi\"\n[roles.a]\n{ARN_A}"),
        &[(3, 9, "it has a path, query or fragment")],
    );
    assert_problems(
        &format!("{STS}proxy = \"proxy.example.com:3128\"\n[roles.a]\n{ARN_A}"),
        &[(3, 9, "it has no scheme: write http://host:port")],
    );
    assert_problems(
        &format!("{STS}no_proxy = [\".internal\"]\n[roles.a]\n{ARN_A}"),
        &[(3, 12, "sts.no_proxy is set but sts.proxy is not")],
    );
}

/// Every partition's region is accepted with that partition's role and policy ARNs, and
/// refused with another's, by name; a region of no known partition is refused by name.
#[test]
fn region_and_arns_agree_on_the_partition() {
    for &(partition, region) in crate::partition::PARTITIONS {
        accepted(&format!(
            "[sts]\nregion = \"{region}\"\n[roles.a]\narn = \"arn:{partition}:iam::123456789012:role/a\"\npolicy_arns = [\"arn:{partition}:iam::aws:policy/ReadOnlyAccess\"]\n"
        ));
    }
    assert_problems(
        "[sts]\nregion = \"us-gov-west-1\"\n[roles.a]\narn = \"arn:aws:iam::123456789012:role/a\"\npolicy_arns = [\"arn:aws-cn:iam::aws:policy/ReadOnlyAccess\"]\n",
        &[
            (4, 7, "roles.a.arn: \"arn:aws:iam::123456789012:role/a\" is in partition aws, but sts.region is in partition aws-us-gov"),
            (5, 16, "roles.a.policy_arns: \"arn:aws-cn:iam::aws:policy/ReadOnlyAccess\" is in partition aws-cn, but sts.region is in partition aws-us-gov"),
        ],
    );
    assert_problems(
        &format!("[sts]\nregion = \"xx-east-1\"\n[roles.a]\n{ARN_A}"),
        &[(2, 10, "sts.region \"xx-east-1\" is in no AWS partition aws-role knows (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc)")],
    );
}

/// `use_fips` and `use_dualstack` choose among the region's endpoints, so they are refused
/// beside an `endpoint` URL (which the SDK would use as written); the summary says which.
#[test]
fn fips_and_dualstack_are_switches_of_the_regional_endpoint() {
    let map = accepted(&format!(
        "{STS}use_fips = true\nuse_dualstack = true\n[roles.a]\n{ARN_A}"
    ));
    assert!(map.sts.use_fips && map.sts.use_dualstack);
    assert!(
        map.summary().contains("regional FIPS dual-stack endpoint"),
        "{}",
        map.summary()
    );
    let plain = accepted(&format!("{STS}[roles.a]\n{ARN_A}"));
    assert!(!plain.sts.use_fips && !plain.sts.use_dualstack);
    assert_problems(
        &format!("{STS}endpoint = \"https://sts.vpce.internal\"\nuse_fips = true\nuse_dualstack = false\n[roles.a]\n{ARN_A}"),
        &[(4, 12, "sts.use_fips = true with sts.endpoint: the SDK's endpoint rules choose")],
    );
    assert_problems(
        &format!("{STS}use_fips = \"yes\"\n[roles.a]\n{ARN_A}"),
        &[(3, 12, "invalid type: string \"yes\", expected a boolean")],
    );
}

/// `node_identity` picks the source, or follows from `credentials_file`; a name it does not
/// know, or a source that contradicts the other keys, is refused where it is written.
#[test]
fn node_identity_names_a_known_source_that_agrees_with_the_other_keys() {
    let sts = "[sts]\nregion = \"us-east-1\"\n";
    let m = parse(sts).unwrap();
    assert_eq!(m.sts.identity, NodeIdentity::DefaultChain);
    let m = parse(&format!("{sts}credentials_file = \"/etc/aws-role/node\"\n")).unwrap();
    assert_eq!(m.sts.identity, NodeIdentity::CredentialsFile);
    let m = parse(&format!(
        "{sts}node_identity = \"instance-profile\"\nimds_endpoint = \"http://127.0.0.1:8089\"\n"
    ))
    .unwrap();
    assert_eq!(m.sts.identity, NodeIdentity::InstanceProfile);
    assert_eq!(m.sts.imds(), "http://127.0.0.1:8089");
    assert_eq!(
        m.sts.imds_addrs(),
        ["127.0.0.1:8089".parse::<std::net::SocketAddr>().unwrap()]
    );
    assert!(m
        .summary()
        .contains("node credentials from the instance profile (IMDSv2 at http://127.0.0.1:8089)"));
    let m = parse(sts).unwrap();
    assert_eq!(m.sts.imds(), "http://169.254.169.254");
    assert_eq!(m.sts.imds_addrs().len(), 2, "IPv4 and IPv6");

    assert_problems(
        &format!("{sts}node_identity = \"roles-anywhere\"\n"),
        &[(
            3,
            17,
            "sts.node_identity \"roles-anywhere\" is not an identity source aws-role knows: expected one of credentials-file, instance-profile, default-chain",
        )],
    );
    assert_problems(
        &format!("{sts}node_identity = \"credentials-file\"\n"),
        &[(3, 17, "needs sts.credentials_file")],
    );
    assert_problems(
        &format!("{sts}credentials_file = \"/etc/aws-role/node\"\nnode_identity = \"instance-profile\"\n"),
        &[(4, 17, "takes no sts.credentials_file or sts.profile")],
    );
    assert_problems(
        &format!(
            "{sts}credentials_file = \"/etc/aws-role/node\"\nnode_identity = \"default-chain\"\n"
        ),
        &[(4, 17, "takes no sts.credentials_file")],
    );
}

/// The instance-metadata endpoint is plain HTTP to an IP address: the service's own, or
/// loopback for a test's emulator; nothing else, so the node's credentials never cross a
/// network unencrypted.
#[test]
fn imds_endpoint_is_the_service_or_loopback() {
    let sts = "[sts]\nregion = \"us-east-1\"\n";
    for ok in [
        "http://169.254.169.254",
        "http://169.254.169.254/",
        "http://[fd00:ec2::254]",
        "http://127.0.0.1:8089",
        "http://[::1]:8089",
    ] {
        let m = parse(&format!("{sts}imds_endpoint = \"{ok}\"\n"))
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(m.sts.imds_addrs().len(), 1, "{ok}");
    }
    for (bad, why) in [
        ("https://169.254.169.254", "is not an http:// URL"),
        (
            "http://imds.example.com",
            "is not http:// and an IP address",
        ),
        (
            "http://10.0.0.5",
            "is neither the instance-metadata service's address nor loopback",
        ),
        ("http://127.0.0.1:0", "has port 0"),
        (
            "http://127.0.0.1:8089/latest",
            "is not http:// and an IP address",
        ),
    ] {
        assert_problems(
            &format!("{sts}imds_endpoint = \"{bad}\"\n"),
            &[(3, 17, &format!("sts.imds_endpoint \"{bad}\" {why}"))],
        );
    }
}
