//! The site's role map (TOML), as `RoleMap::parse` checks it.
//!
//! Properties: a refused map gives at least one problem, sorted by position, each on one
//! line; every problem carries a line:column inside the text, except a missing `[sts]`
//! table, which has no place in the file; the message shows one line per problem. An
//! accepted map is within every documented bound, its references resolve, parsing it again
//! gives the same map, and its templates render names STS accepts.
#![no_main]

use std::path::Path;
use std::time::Duration;

use aws_role::job::{Job, JobId, Scheduler};
use aws_role::map::{MapError, RoleMap};
use aws_role::session::is_valid_name;
use aws_role::walltime::{MAX_SESSION, MIN_SESSION};
use libfuzzer_sys::fuzz_target;
use nix::unistd::{Gid, Uid};

const SOURCE: &str = "/etc/aws-role/fuzz.toml";

/// The only problems a text can have without a position: the file lacks something.
const NOWHERE: &[&str] = &["there is no [sts] table"];

fn check_error(e: &MapError, text: &str) {
    assert_eq!(e.file, Path::new(SOURCE));
    assert!(!e.problems.is_empty(), "refused without a problem");
    let lines: Vec<&str> = text.split('\n').collect();
    for w in e.problems.windows(2) {
        assert!(
            (w[0].line, w[0].column) <= (w[1].line, w[1].column),
            "not in file order: {:?}",
            e.problems
        );
    }
    for p in &e.problems {
        assert!(!p.message.is_empty());
        assert!(
            !p.message.chars().any(char::is_control),
            "control character in {:?}",
            p.message
        );
        if p.line == 0 {
            assert_eq!(p.column, 0, "{p:?}");
            assert!(
                NOWHERE.iter().any(|m| p.message.starts_with(m)),
                "a problem without line:column: {p:?}"
            );
        } else {
            assert!(p.line <= lines.len(), "{p:?} past the end of {text:?}");
            let width = lines[p.line - 1].chars().count();
            assert!(
                p.column >= 1 && p.column <= width + 1,
                "{p:?}: line {} has {width} characters",
                p.line
            );
        }
    }
    let shown = e.to_string();
    assert_eq!(shown.lines().count(), e.problems.len(), "{shown}");
    for (line, p) in shown.lines().zip(&e.problems) {
        let prefix = if p.line == 0 {
            format!("{SOURCE}: ")
        } else {
            format!("{SOURCE}:{}:{}: ", p.line, p.column)
        };
        assert!(line.starts_with(&prefix), "{line:?} lacks {prefix:?}");
    }
}

fn job(scheduler: Scheduler, id: JobId) -> Job {
    Job {
        scheduler,
        id,
        array_job_id: None,
        array_task_id: Some(3),
        user: "a".into(),
        uid: Uid::from_raw(1000),
        gid: Gid::from_raw(1000),
        partition: Some("p".repeat(70)),
        account: None,
        cluster: Some("cluster x/ü".into()),
        restart_count: 1,
        end_time: None,
        requested: None,
    }
}

fn check_map(map: &RoleMap, text: &str) {
    let within = |d: Duration, lo: Duration, hi: Duration, what: &str| {
        assert!(d >= lo && d <= hi, "{what} = {d:?} not in {lo:?}..={hi:?}");
    };
    let s = &map.sts;
    assert!(!s.region.is_empty());
    assert!((1..=10).contains(&s.max_attempts), "{}", s.max_attempts);
    within(
        s.timeout,
        Duration::from_secs(1),
        Duration::from_secs(120),
        "sts.timeout",
    );
    within(
        s.min_session,
        Duration::from_secs(1),
        MIN_SESSION,
        "sts.min_session",
    );
    if s.min_session < MIN_SESSION {
        let e = s.endpoint.as_deref().unwrap_or_default();
        assert!(
            [
                "http://127.0.0.1",
                "http://localhost",
                "http://[::1]",
                "https://127.0.0.1",
                "https://localhost",
                "https://[::1]"
            ]
            .iter()
            .any(|p| e.starts_with(p)),
            "min_session below 15 min with endpoint {e:?}"
        );
    }
    for p in [
        &map.node.base_dir,
        &map.node.credential_helper,
        &map.slurm.scontrol,
    ] {
        assert!(p.is_absolute(), "{p:?}");
    }
    let d = &map.defaults;
    within(
        d.max_session,
        s.min_session,
        MAX_SESSION,
        "defaults.max_session",
    );
    within(
        d.margin,
        Duration::ZERO,
        Duration::from_secs(3600),
        "defaults.margin",
    );
    let r = &map.refresh;
    within(
        r.lead,
        Duration::from_secs(1),
        Duration::from_secs(6 * 3600),
        "refresh.lead",
    );
    within(
        r.jitter,
        Duration::ZERO,
        Duration::from_secs(3600),
        "refresh.jitter",
    );
    within(
        r.scan_interval,
        Duration::from_secs(1),
        Duration::from_secs(600),
        "refresh.scan_interval",
    );
    within(
        r.orphan_grace,
        Duration::ZERO,
        Duration::from_secs(30 * 86_400),
        "refresh.orphan_grace",
    );
    assert!((1..=64).contains(&r.concurrency));
    let slurm_job = job(
        Scheduler::Slurm,
        aws_role::scheduler::slurm::parse_job_id("4294967295").expect("a Slurm id"),
    );
    let pbs_job = job(
        Scheduler::Pbs,
        aws_role::scheduler::pbs::parse_job_id("12[3].pbs-server.example.com").expect("a PBS id"),
    );
    for (t, j) in [
        (&d.session_name, &slurm_job),
        (&d.pbs_session_name, &pbs_job),
    ] {
        let name = t.render(j);
        assert!(is_valid_name(&name), "{name:?} from {t}");
        assert!(
            name.contains(&j.id.as_str().replace(['[', ']'], "-")),
            "{name:?} from {t}"
        );
    }
    for (key, role) in &map.roles {
        assert_eq!(key, &role.name);
        assert!(!key.eq_ignore_ascii_case("none"));
        assert!(role.arn.starts_with("arn:aws"), "{}", role.arn);
        within(role.cap(d), s.min_session, MAX_SESSION, "a role's cap");
        assert!(role.tags.len() <= 50);
        if let Some(si) = &role.source_identity {
            for j in [&slurm_job, &pbs_job] {
                let v = si.render_source_identity(j);
                assert!(is_valid_name(&v), "SourceIdentity {v:?} from {si}");
            }
        }
    }
    let queues = map.partitions.values().chain(map.pbs.queues.values());
    for q in queues {
        assert!(
            map.roles.contains_key(&q.default_role),
            "{}",
            q.default_role
        );
    }
    if let Some(r) = &map.pbs.default_role {
        assert!(map.roles.contains_key(r), "{r}");
    }
    assert!(map.summary().starts_with(&format!("role map {SOURCE}\n")));
    let again = RoleMap::parse(text, Path::new(SOURCE)).expect("accepted once, accepted twice");
    assert_eq!(&again, map);
}

fuzz_target!(|data: &[u8]| {
    // The prolog reads the map with read_to_string: text that is not UTF-8 never gets here.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match RoleMap::parse(text, Path::new(SOURCE)) {
        Ok(map) => check_map(&map, text),
        Err(e) => check_error(&e, text),
    }
});
