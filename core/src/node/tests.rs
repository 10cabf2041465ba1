//! The node checks' tests: each finding, from the files and commands a node really has.

use super::*;

fn dir(uid: u32, mode: u32) -> Seen {
    Seen::Found(Meta {
        kind: Kind::Dir,
        uid,
        mode,
    })
}
fn file(uid: u32, mode: u32) -> Seen {
    Seen::Found(Meta {
        kind: Kind::File,
        uid,
        mode,
    })
}
fn view(path: &str, seen: Seen, ancestors: &[(&str, Seen)]) -> PathView {
    PathView {
        path: path.into(),
        real: None,
        seen,
        ancestors: ancestors
            .iter()
            .map(|(p, s)| (PathBuf::from(p), *s))
            .collect(),
    }
}
fn levels(f: &[Finding]) -> Vec<Level> {
    f.iter().map(|f| f.level).collect()
}

#[test]
fn exit_code_is_the_worst_level_and_info_never_counts() {
    let f = |l| finding(l, "x", "y");
    assert_eq!(exit_code(&[f(Level::Ok), f(Level::Info)]), 0);
    assert_eq!(
        exit_code(&[f(Level::Ok), f(Level::Warn), f(Level::Info)]),
        1
    );
    assert_eq!(exit_code(&[f(Level::Fail), f(Level::Warn)]), 2);
    assert_eq!(exit_code(&[]), 0);
}

#[test]
fn render_prints_one_aligned_line_per_finding() {
    let out = render(&[
        finding(Level::Ok, "base dir", "/run/aws-role: root, mode 0711"),
        finding(
            Level::Warn,
            "Slurm plugin",
            "evil\nOK    forged: line\u{1b}[0m",
        ),
    ]);
    assert_eq!(
        out,
        "OK    base dir: /run/aws-role: root, mode 0711\n\
         WARN  Slurm plugin: evil\\nOK    forged: line\\u{1b}[0m\n"
    );
}

#[test]
fn a_bad_map_fails_with_one_positioned_line_per_problem() {
    let text = "[sts]\nregion = \"us-east-1\"\n\n[roles.x]\narn = \"nope\"\n\n[partitions.gpu]\ndefault_role = \"missing\"\n";
    let loaded = RoleMap::parse(text, Path::new("/etc/aws-role/role-map.toml"));
    let f = map_findings(&loaded);
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(f
        .iter()
        .all(|f| f.level == Level::Fail && f.check == "role map"));
    assert!(
        f[0].detail
            .starts_with("/etc/aws-role/role-map.toml:5:7: roles.x.arn "),
        "{f:?}"
    );
    assert!(
        f[1].detail
            .starts_with("/etc/aws-role/role-map.toml:8:16: partitions.gpu.default_role"),
        "{f:?}"
    );
    let good = RoleMap::parse(
        "[sts]\nregion = \"us-east-1\"\n[roles.a]\narn = \"arn:aws:iam::123456789012:role/a\"\nallow_users = [\"alice\"]\n",
        Path::new("/m.toml"),
    );
    let f = map_findings(&good);
    assert_eq!(levels(&f), [Level::Ok]);
    assert_eq!(
        f[0].detail,
        "/m.toml: valid, 1 role(s), 0 partition default(s)"
    );
}

const ROOT_DIRS: [(&str, Seen); 2] = [
    (
        "/",
        Seen::Found(Meta {
            kind: Kind::Dir,
            uid: 0,
            mode: 0o755,
        }),
    ),
    (
        "/run",
        Seen::Found(Meta {
            kind: Kind::Dir,
            uid: 0,
            mode: 0o755,
        }),
    ),
];

#[test]
fn base_dir_must_be_roots_and_closed_to_others() {
    let ok = base_dir_finding(&view("/run/aws-role", dir(0, 0o711), &ROOT_DIRS));
    assert_eq!(
        (ok.level, ok.detail.as_str()),
        (Level::Ok, "/run/aws-role: root, mode 0711")
    );
    for (seen, want) in [
        (dir(1000, 0o711), "owned by uid 1000, not root"),
        (dir(0, 0o731), "writable by group (mode 0731)"),
        (dir(0, 0o777), "writable by group and others (mode 0777)"),
        (dir(0, 0o1703), "writable by others (mode 1703)"),
        (
            Seen::Found(Meta {
                kind: Kind::Symlink,
                uid: 0,
                mode: 0o777,
            }),
            "is a symbolic link",
        ),
        (file(0, 0o600), "is not a directory"),
        (
            Seen::Error(Errno::EACCES),
            "cannot inspect /run/aws-role: Permission denied",
        ),
    ] {
        let f = base_dir_finding(&view("/run/aws-role", seen, &ROOT_DIRS));
        assert_eq!(f.level, Level::Fail, "{seen:?}");
        assert!(f.detail.contains(want), "{want:?} not in {:?}", f.detail);
    }
}

#[test]
fn base_dir_under_a_directory_others_control_fails() {
    let ancestors = [
        ROOT_DIRS[0],
        ("/home", dir(0, 0o755)),
        ("/home/alice", dir(1000, 0o755)),
    ];
    let f = base_dir_finding(&view("/home/alice/aws-role", dir(0, 0o711), &ancestors));
    assert_eq!(f.level, Level::Fail);
    assert!(
        f.detail.contains("/home/alice is owned by uid 1000"),
        "{}",
        f.detail
    );
    let ancestors = [ROOT_DIRS[0], ("/srv", dir(0, 0o775))];
    let f = base_dir_finding(&view("/srv/aws-role", dir(0, 0o711), &ancestors));
    assert_eq!(f.level, Level::Fail);
    assert!(
        f.detail.contains("/srv is writable by group (mode 0775)"),
        "{}",
        f.detail
    );
}

#[test]
fn a_missing_base_dir_is_fine_only_where_nobody_else_can_create_it() {
    let f = base_dir_finding(&view("/run/aws-role", Seen::Missing, &ROOT_DIRS));
    assert_eq!(f.level, Level::Ok, "{f:?}");
    assert!(f.detail.contains("the first prolog creates it"));
    // In /tmp a user can create it first; once root's, the sticky bit protects it.
    let tmp = [ROOT_DIRS[0], ("/tmp", dir(0, 0o1777))];
    let f = base_dir_finding(&view("/tmp/aws-role", Seen::Missing, &tmp));
    assert_eq!(f.level, Level::Warn, "{f:?}");
    assert!(f
        .detail
        .contains("any user can create it first in /tmp (mode 1777)"));
    let f = base_dir_finding(&view("/tmp/aws-role", dir(0, 0o711), &tmp));
    assert_eq!(f.level, Level::Ok, "{f:?}");
    // The store creates the base, not its parents.
    let f = base_dir_finding(&view(
        "/srv/x/aws-role",
        Seen::Missing,
        &[
            ROOT_DIRS[0],
            ("/srv", dir(0, 0o755)),
            ("/srv/x", Seen::Missing),
        ],
    ));
    assert_eq!(f.level, Level::Fail, "{f:?}");
    assert!(f.detail.contains("nor does /srv/x"), "{}", f.detail);
}

fn bin(path: &str, run_by: RunBy) -> Binary {
    Binary {
        path: path.into(),
        why: "the plugin's job_prolog".into(),
        run_by,
    }
}
const LIBEXEC: [(&str, Seen); 3] = [
    (
        "/",
        Seen::Found(Meta {
            kind: Kind::Dir,
            uid: 0,
            mode: 0o755,
        }),
    ),
    (
        "/usr",
        Seen::Found(Meta {
            kind: Kind::Dir,
            uid: 0,
            mode: 0o755,
        }),
    ),
    (
        "/usr/libexec",
        Seen::Found(Meta {
            kind: Kind::Dir,
            uid: 0,
            mode: 0o755,
        }),
    ),
];

#[test]
fn binaries_must_be_roots_and_unwritable_by_others_all_the_way_up() {
    let p = "/usr/libexec/aws-role-prolog";
    let b = bin(p, RunBy::Root);
    let f = binary_finding(&b, &view(p, file(0, 0o755), &LIBEXEC));
    assert_eq!(
        (f.level, f.detail.as_str()),
        (
            Level::Ok,
            "/usr/libexec/aws-role-prolog (the plugin's job_prolog): root, mode 0755"
        )
    );
    // A PBS prologue is 0500: fine for what root runs.
    assert_eq!(
        binary_finding(&b, &view(p, file(0, 0o500), &LIBEXEC)).level,
        Level::Ok
    );
    for (seen, want) in [
        (file(1000, 0o755), "owned by uid 1000"),
        (file(0, 0o775), "writable by group"),
        (file(0, 0o757), "writable by others"),
        (dir(0, 0o755), "not a regular file"),
        (file(0, 0o644), "not executable"),
        (Seen::Missing, "does not exist"),
    ] {
        let f = binary_finding(&b, &view(p, seen, &LIBEXEC));
        assert_eq!(f.level, Level::Fail, "{seen:?}");
        assert!(f.detail.contains(want), "{want:?} not in {:?}", f.detail);
    }
    let mut up = LIBEXEC;
    up[2].1 = dir(0, 0o1777);
    // Sticky: others cannot rename or remove root's file.
    assert_eq!(
        binary_finding(&b, &view(p, file(0, 0o755), &up)).level,
        Level::Ok
    );
    up[2].1 = dir(0, 0o777);
    let f = binary_finding(&b, &view(p, file(0, 0o755), &up));
    assert_eq!(f.level, Level::Fail);
    assert!(
        f.detail
            .contains("/usr/libexec is writable by group and others"),
        "{}",
        f.detail
    );
}

#[test]
fn the_credential_helper_must_be_runnable_by_jobs() {
    let p = "/usr/libexec/aws-role-credentials";
    let f = binary_finding(&bin(p, RunBy::Users), &view(p, file(0, 0o700), &LIBEXEC));
    assert_eq!(f.level, Level::Fail);
    assert!(
        f.detail.contains("jobs' users cannot run it"),
        "{}",
        f.detail
    );
    let f = binary_finding(&bin(p, RunBy::Users), &view(p, file(0, 0o755), &LIBEXEC));
    assert_eq!(f.level, Level::Ok);
}

#[test]
fn a_linked_binary_shows_where_it_leads() {
    let mut v = view("/usr/bin/p", file(0, 0o755), &LIBEXEC);
    v.real = Some("/usr/libexec/p".into());
    let f = binary_finding(&bin("/usr/bin/p", RunBy::Root), &v);
    assert!(
        f.detail
            .starts_with("/usr/bin/p (the plugin's job_prolog) -> /usr/libexec/p: root"),
        "{}",
        f.detail
    );
}

fn plugin_line(prolog: Option<&str>) -> PluginLine {
    PluginLine {
        file: "/etc/slurm/plugstack.conf.d/aws-role.conf".into(),
        line: 1,
        required: true,
        so: "/usr/lib/slurm/aws_role.so".into(),
        config: None,
        prolog: prolog.map(PathBuf::from),
        epilog: None,
        timeout: None,
    }
}
fn paths(b: &[Binary]) -> Vec<String> {
    b.iter().map(|b| b.path.display().to_string()).collect()
}

#[test]
fn the_binaries_checked_are_those_that_run() {
    let exe = Path::new("/opt/ar/aws-role-prolog");
    // The plugin: its prolog= and its default epilog.
    let p = plugin_line(Some("/opt/ar/aws-role-prolog"));
    let b = binaries(Some(exe), Some(&p), None, None);
    assert_eq!(paths(&b), ["/opt/ar/aws-role-prolog", PLUGIN_EPILOG]);
    assert_eq!(b[0].why, "this program");
    // Prolog-only mode: slurm.conf names them; the TaskProlog runs as the job's user.
    let conf = "Prolog=/usr/libexec/aws-role/aws-role-prolog\n#Epilog=/old\nEpilog=/usr/libexec/aws-role/aws-role-epilog\nTaskProlog=/usr/libexec/aws-role/aws-role-prolog\nPrologFlags=Alloc\n";
    let b = binaries(Some(exe), None, Some(conf), None);
    assert_eq!(
        paths(&b),
        [
            "/opt/ar/aws-role-prolog",
            "/usr/libexec/aws-role/aws-role-prolog",
            "/usr/libexec/aws-role/aws-role-epilog"
        ]
    );
    assert_eq!(b[1].why, "slurm.conf Prolog=");
    // Nothing names them (PBS, or not configured yet): the epilog next to this program.
    let b = binaries(Some(exe), None, Some("PrologFlags=Alloc\n"), None);
    assert_eq!(
        paths(&b),
        ["/opt/ar/aws-role-prolog", "/opt/ar/aws-role-epilog"]
    );
    // The map's credential helper, run by every job.
    let map = RoleMap::parse(
        "[sts]\nregion = \"us-east-1\"\n[node]\ncredential_helper = \"/opt/ar/aws-role-credentials\"\n",
        Path::new("/m.toml"),
    )
    .unwrap();
    let b = binaries(None, None, None, Some(&map));
    assert_eq!(paths(&b), ["/opt/ar/aws-role-credentials"]);
    assert_eq!(b[0].run_by, RunBy::Users);
}

fn imds(results: [Result<Reach, ProbeError>; 2]) -> Vec<(SocketAddr, Result<Reach, ProbeError>)> {
    IMDS_ADDRS.iter().copied().zip(results).collect()
}

#[test]
fn an_unprivileged_user_reaching_imds_fails_unless_the_map_says_it_is_intended() {
    let reached = imds([Ok(Reach::Connected), Ok(Reach::NoFamily)]);
    let f = imds_user_finding("user nobody (uid 65534)", &reached, false);
    assert_eq!(f.level, Level::Fail);
    assert_eq!(
        f.detail,
        "user nobody (uid 65534) connected to 169.254.169.254:80: jobs can reach the instance metadata service and could use the node's instance role; see aws-role-imds-lockdown, or set [node] jobs_may_reach_imds = true if this is intended"
    );
    let f = imds_user_finding("user nobody (uid 65534)", &reached, true);
    assert_eq!(f.level, Level::Info);
    assert!(
        f.detail
            .ends_with("as [node] jobs_may_reach_imds = true says the site intends"),
        "{}",
        f.detail
    );
    let f = imds_user_finding(
        "nobody",
        &imds([Ok(Reach::Refused), Ok(Reach::Connected)]),
        false,
    );
    assert_eq!(f.level, Level::Fail);
    assert!(
        f.detail.contains("connected to [fd00:ec2::254]:80"),
        "{}",
        f.detail
    );
}

#[test]
fn imds_refused_unreachable_or_silent_is_ok_and_says_which() {
    let f = imds_user_finding(
        "nobody",
        &imds([
            Ok(Reach::Refused),
            Ok(Reach::Unreachable(Errno::ENETUNREACH)),
        ]),
        false,
    );
    assert_eq!(f.level, Level::Ok);
    assert_eq!(
        f.detail,
        "nobody cannot connect: 169.254.169.254:80 refused, [fd00:ec2::254]:80 unreachable (Network is unreachable)"
    );
    let f = imds_user_finding(
        "nobody",
        &imds([Ok(Reach::TimedOut), Ok(Reach::Blocked(Errno::EPERM))]),
        false,
    );
    assert_eq!(f.level, Level::Ok);
    assert!(
        f.detail.contains("169.254.169.254:80 no answer within 1s"),
        "{}",
        f.detail
    );
    assert!(
        f.detail
            .contains("blocked by this node's firewall (Operation not permitted)"),
        "{}",
        f.detail
    );
}

#[test]
fn an_untested_imds_is_a_warning_not_an_ok() {
    let f = imds_user_finding(
        "nobody",
        &imds([Err(ProbeError::Privileges(65534)), Ok(Reach::Refused)]),
        false,
    );
    assert_eq!(f.level, Level::Warn);
    assert!(f.detail.starts_with("could not test what nobody reaches: 169.254.169.254:80 not tested (the probe could not switch to uid 65534)"), "{}", f.detail);
}

#[test]
fn roots_reach_is_information_only() {
    let f = imds_root_finding(&imds([Ok(Reach::Connected), Ok(Reach::NoFamily)]), None);
    assert_eq!(f.level, Level::Info);
    assert!(
        f.detail
            .contains("default credential chain can use the instance role"),
        "{}",
        f.detail
    );
    let f = imds_root_finding(&imds([Ok(Reach::TimedOut), Ok(Reach::NoFamily)]), None);
    assert_eq!(f.level, Level::Info);
    assert!(
        f.detail.contains("must find the node's identity elsewhere"),
        "{}",
        f.detail
    );
    let f = imds_root_finding(
        &imds([Ok(Reach::TimedOut), Ok(Reach::NoFamily)]),
        Some(Path::new("/etc/aws-role/node")),
    );
    assert!(
        f.detail
            .ends_with("comes from [sts] credentials_file /etc/aws-role/node"),
        "{}",
        f.detail
    );
}

#[test]
fn probe_exit_statuses_decode() {
    assert_eq!(reach_from_exit(0, None), Ok(Reach::Connected));
    assert_eq!(
        reach_from_exit(Errno::ECONNREFUSED as i32, None),
        Ok(Reach::Refused)
    );
    assert_eq!(
        reach_from_exit(Errno::EPERM as i32, None),
        Ok(Reach::Blocked(Errno::EPERM))
    );
    assert_eq!(
        reach_from_exit(Errno::EHOSTUNREACH as i32, None),
        Ok(Reach::Unreachable(Errno::EHOSTUNREACH))
    );
    assert_eq!(
        reach_from_exit(Errno::EAFNOSUPPORT as i32, None),
        Ok(Reach::NoFamily)
    );
    assert_eq!(reach_from_exit(EXIT_TIMEOUT, None), Ok(Reach::TimedOut));
    assert_eq!(
        reach_from_exit(EXIT_PRIVILEGES, Some(Uid::from_raw(65534))),
        Err(ProbeError::Privileges(65534))
    );
    assert_eq!(reach_from_exit(255, None), Err(ProbeError::Unknown(255)));
}

#[test]
fn the_probe_tells_connected_from_refused_and_drops_privileges() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let r = probe_connect(&[open, closed], None, Duration::from_secs(5));
    assert_eq!(r, [Ok(Reach::Connected), Ok(Reach::Refused)]);
    // As another user: only root may switch, and a failed switch is never a result.
    let nobody = (Uid::from_raw(65534), Gid::from_raw(65534));
    let r = probe_connect(&[open], Some(nobody), Duration::from_secs(5));
    if nix::unistd::geteuid().is_root() {
        assert_eq!(r, [Ok(Reach::Connected)]);
    } else {
        assert_eq!(r, [Err(ProbeError::Privileges(65534))]);
    }
}

// Lines as `scontrol show config` prints them (Slurm 22.05, this project's test node).
const SHOW_CONFIG: &str = "Configuration data as of 2026-11-22T00:01:32\n\
    Epilog                  = (null)\n\
    PlugStackConfig         = (null)\n\
    Prolog                  = (null)\n\
    PrologEpilogTimeout     = 65534\n\
    PrologSlurmctld         = (null)\n\
    PrologFlags             = Alloc,Contain\n\
    SlurmctldParameters     = enable_configless,idle_on_node_suspend\n\
    Slurmctld(primary) at node1 is UP\n";

#[test]
fn prolog_flags_come_from_their_own_line() {
    assert_eq!(
        prolog_flags(SHOW_CONFIG),
        Some(vec!["Alloc".into(), "Contain".into()])
    );
    let null = SHOW_CONFIG.replace("Alloc,Contain", "(null)");
    assert_eq!(prolog_flags(&null), Some(vec![]));
    assert_eq!(
        prolog_flags("PrologFlags             = Alloc\n"),
        Some(vec!["Alloc".into()])
    );
    assert_eq!(prolog_flags("PrologSlurmctld         = (null)\n"), None);
    assert_eq!(show_config_value(SHOW_CONFIG, "Prolog"), Some("(null)"));
    assert_eq!(
        show_config_value(SHOW_CONFIG, "PrologEpilogTimeout"),
        Some("65534")
    );
}

#[test]
fn prolog_flags_without_alloc_warn() {
    for (flags, level) in [
        ("Alloc", Level::Ok),
        ("Alloc,Contain", Level::Ok),
        ("Contain", Level::Ok),
        ("Alloc,Contain,X11", Level::Ok),
        ("(null)", Level::Warn),
        ("Serial,NoHold", Level::Warn),
    ] {
        let out = format!("PrologFlags             = {flags}\n");
        let f = prolog_flags_finding(&Ok(out));
        assert_eq!(f.level, level, "{flags}");
        assert!(
            f.detail.starts_with(&format!("PrologFlags={flags}")),
            "{}",
            f.detail
        );
    }
    let f = prolog_flags_finding(&Ok("PrologFlags             = (null)\n".into()));
    assert!(
        f.detail
            .contains("the prolog runs on a node only when the job's first step starts there"),
        "{}",
        f.detail
    );
    let f = prolog_flags_finding(&Err(ScontrolError::Timeout {
        path: "/usr/bin/scontrol".into(),
        timeout: Duration::from_secs(2),
    }));
    assert_eq!(f.level, Level::Warn);
    assert_eq!(
        f.detail,
        "cannot read PrologFlags: /usr/bin/scontrol did not answer within 2s"
    );
    let f = prolog_flags_finding(&Ok("slurm_load_ctl_conf error\n".into()));
    assert_eq!(f.level, Level::Warn);
}

#[test]
fn slurm_conf_values_ignore_comments_and_case() {
    let conf = "# Prolog=/commented\nprolog=/a/aws-role-prolog # trailing\nNodeName=n1 CPUs=2 State=UNKNOWN\nPlugStackConfig=/etc/slurm/stack.conf\n";
    assert_eq!(conf_values(conf, "Prolog"), ["/a/aws-role-prolog"]);
    assert_eq!(conf_values(conf, "CPUs"), ["2"]);
    assert!(conf_values(conf, "Epilog").is_empty());
    assert_eq!(
        plugstack_path(Path::new("/etc/slurm/slurm.conf"), Some(conf)),
        Path::new("/etc/slurm/stack.conf")
    );
    assert_eq!(
        plugstack_path(Path::new("/etc/slurm/slurm.conf"), Some("")),
        Path::new("/etc/slurm/plugstack.conf")
    );
    assert_eq!(
        plugstack_path(Path::new("/etc/slurm/slurm.conf"), None),
        Path::new("/etc/slurm/plugstack.conf")
    );
}

#[test]
fn wildcards_match_like_the_shell() {
    for (p, n, want) in [
        ("*.conf", "aws-role.conf", true),
        ("*.conf", "aws-role.conf.bak", false),
        ("*.conf", ".conf", true),
        ("a?c", "abc", true),
        ("a?c", "ac", false),
        ("*", "", true),
        ("*x*y", "axbxy", true),
        ("*x*y", "axbx", false),
        ("exact", "exact", true),
    ] {
        assert_eq!(wildcard(p, n), want, "{p} vs {n}");
    }
    assert_eq!(
        plugstack_includes(
            "include /etc/slurm/plugstack.conf.d/*.conf\n# include /x\nrequired a.so\n"
        ),
        ["/etc/slurm/plugstack.conf.d/*.conf"]
    );
}

fn conf(path: &str, text: &str) -> ConfFile {
    ConfFile {
        path: path.into(),
        text: Ok(text.into()),
    }
}

#[test]
fn the_plugin_line_is_found_with_its_arguments() {
    let files = [
        conf("/etc/slurm/plugstack.conf", "include /etc/slurm/plugstack.conf.d/*.conf\n"),
        conf("/etc/slurm/plugstack.conf.d/a.conf", "# required /old/aws_role.so\noptional /usr/lib/slurm/other.so\n"),
        conf(
            "/etc/slurm/plugstack.conf.d/aws-role.conf",
            "\nrequired /usr/lib/slurm/aws_role.so config=/etc/ar.toml prolog=/opt/p epilog=/opt/e timeout=30\n",
        ),
    ];
    let p = find_plugin(&files).unwrap();
    assert_eq!(
        p,
        PluginLine {
            file: "/etc/slurm/plugstack.conf.d/aws-role.conf".into(),
            line: 2,
            required: true,
            so: "/usr/lib/slurm/aws_role.so".into(),
            config: Some("/etc/ar.toml".into()),
            prolog: Some("/opt/p".into()),
            epilog: Some("/opt/e".into()),
            timeout: Some(30),
        }
    );
    assert_eq!(find_plugin(&files[..2]), None);
    let p = find_plugin(&[conf("/s", "optional aws_role.so\n")]).unwrap();
    assert!(!p.required);
    assert_eq!(
        find_plugin(&[conf("/s", "required /x/not_aws_role.so\n")]),
        None
    );
}

fn slurm_view(conf_text: Option<&str>, stack: &[(&str, &str)], show: Option<&str>) -> SlurmView {
    SlurmView {
        scontrol: "/usr/bin/scontrol".into(),
        show_config: show.map(|s| Ok(s.to_string())),
        slurm_conf: "/etc/slurm/slurm.conf".into(),
        slurm_conf_text: conf_text
            .map(String::from)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound)),
        plugstack: stack.iter().map(|(p, t)| conf(p, t)).collect(),
    }
}

#[test]
fn without_slurm_the_slurm_checks_are_skipped() {
    let v = slurm_view(None, &[], None);
    let f = slurm_findings(&v, None, Path::new(crate::map::DEFAULT_PATH));
    assert_eq!(levels(&f), [Level::Info]);
    assert!(f[0].detail.contains("not a Slurm node"), "{}", f[0].detail);
}

#[test]
fn the_plugin_or_prolog_only_mode_must_be_configured() {
    let map = Path::new(crate::map::DEFAULT_PATH);
    let flags = Some("PrologFlags             = Alloc\n");
    let stack = [(
        "/etc/slurm/plugstack.conf",
        "required /usr/lib/slurm/aws_role.so\n",
    )];
    let v = slurm_view(Some(""), &stack, flags);
    let p = find_plugin(&v.plugstack);
    let f = slurm_findings(&v, p.as_ref(), map);
    assert_eq!(levels(&f), [Level::Ok, Level::Ok], "{f:?}");
    assert_eq!(
        f[1].detail,
        "/etc/slurm/plugstack.conf:1: required /usr/lib/slurm/aws_role.so"
    );
    // Checking another map than the plugin reads is worth saying.
    let f = slurm_findings(&v, p.as_ref(), Path::new("/tmp/other.toml"));
    assert_eq!(levels(&f), [Level::Ok, Level::Ok, Level::Info], "{f:?}");
    // `optional` lets refused jobs be queued.
    let v = slurm_view(
        Some(""),
        &[("/etc/slurm/plugstack.conf", "optional aws_role.so\n")],
        flags,
    );
    let f = slurm_findings(&v, find_plugin(&v.plugstack).as_ref(), map);
    assert_eq!(levels(&f), [Level::Ok, Level::Warn], "{f:?}");
    // Prolog-only mode needs the TaskProlog for the jobs' environment.
    let both = "Prolog=/usr/libexec/aws-role/aws-role-prolog\nTaskProlog=/usr/libexec/aws-role/aws-role-prolog\n";
    let v = slurm_view(Some(both), &[], flags);
    let f = slurm_findings(&v, None, map);
    assert_eq!(levels(&f), [Level::Ok, Level::Ok], "{f:?}");
    assert!(f[1].detail.contains("Prolog-only mode"), "{}", f[1].detail);
    let v = slurm_view(
        Some("Prolog=/usr/libexec/aws-role/aws-role-prolog\n"),
        &[],
        flags,
    );
    let f = slurm_findings(&v, None, map);
    assert_eq!(levels(&f), [Level::Ok, Level::Warn], "{f:?}");
    assert!(
        f[1].detail
            .contains("TaskProlog= does not run aws-role-prolog"),
        "{}",
        f[1].detail
    );
    // Neither: Slurm does not run aws-role.
    let v = slurm_view(
        Some("Prolog=/etc/slurm/site-prolog\n"),
        &[("/etc/slurm/plugstack.conf", "")],
        flags,
    );
    let f = slurm_findings(&v, None, map);
    assert_eq!(levels(&f), [Level::Ok, Level::Warn], "{f:?}");
    assert!(
        f[1].detail.starts_with("Slurm does not run aws-role here"),
        "{}",
        f[1].detail
    );
    // scontrol configured but missing: PrologFlags unknown.
    let v = slurm_view(Some(""), &stack, None);
    let f = slurm_findings(&v, find_plugin(&v.plugstack).as_ref(), map);
    assert_eq!(levels(&f), [Level::Warn, Level::Ok], "{f:?}");
}

#[test]
fn includes_are_followed_in_name_order() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    std::fs::create_dir(root.join("plugstack.conf.d")).unwrap();
    std::fs::write(
        root.join("plugstack.conf"),
        "include plugstack.conf.d/*.conf\ninclude missing.conf\n",
    )
    .unwrap();
    std::fs::write(
        root.join("plugstack.conf.d/b.conf"),
        "required /x/aws_role.so\n",
    )
    .unwrap();
    std::fs::write(
        root.join("plugstack.conf.d/a.conf"),
        "optional /x/other.so\n",
    )
    .unwrap();
    std::fs::write(
        root.join("plugstack.conf.d/c.conf.off"),
        "optional /x/aws_role.so\n",
    )
    .unwrap();
    let files = read_plugstack(&root.join("plugstack.conf"));
    let names: Vec<_> = files
        .iter()
        .map(|f| f.path.strip_prefix(root).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "plugstack.conf",
            "plugstack.conf.d/a.conf",
            "plugstack.conf.d/b.conf",
            "missing.conf"
        ]
    );
    assert!(files[3].text.is_err());
    let p = find_plugin(&files).unwrap();
    assert!(p.required && p.file.ends_with("b.conf"), "{p:?}");
}

#[test]
fn inspect_walks_the_real_directories_above_a_path() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let root = d.path().canonicalize().unwrap();
    std::fs::create_dir(root.join("real")).unwrap();
    std::fs::write(root.join("real/bin"), "").unwrap();
    std::fs::set_permissions(
        root.join("real/bin"),
        std::fs::Permissions::from_mode(0o751),
    )
    .unwrap();
    std::os::unix::fs::symlink(root.join("real"), root.join("link")).unwrap();
    let v = inspect(&root.join("link/bin"), true);
    assert_eq!(v.real.as_deref(), Some(root.join("real/bin").as_path()));
    assert!(
        matches!(
            v.seen,
            Seen::Found(Meta {
                kind: Kind::File,
                mode: 0o751,
                ..
            })
        ),
        "{v:?}"
    );
    let dirs: Vec<_> = v.ancestors.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(dirs.first().map(PathBuf::as_path), Some(Path::new("/")));
    assert_eq!(dirs.last(), Some(&root.join("real")));
    // Not followed: the link itself is what is seen.
    let v = inspect(&root.join("link"), false);
    assert!(
        matches!(
            v.seen,
            Seen::Found(Meta {
                kind: Kind::Symlink,
                ..
            })
        ),
        "{v:?}"
    );
    // Missing directories are listed under the deepest one that exists.
    let v = inspect(&root.join("x/y/base"), false);
    assert_eq!(v.seen, Seen::Missing);
    let tail: Vec<_> = v
        .ancestors
        .iter()
        .rev()
        .take(3)
        .map(|(p, s)| (p.clone(), *s == Seen::Missing))
        .collect();
    assert_eq!(
        tail,
        [
            (root.join("x/y"), true),
            (root.join("x"), true),
            (root.clone(), false)
        ]
    );
}
