//! The positional arguments of a PBS/Torque prologue and epilogue.
//!
//! Input: UTF-8 text, one field per line: the `--queue` option (empty: none), then the
//! arguments (`jobid user group ...`). `root root` resolves on any machine, so seeds use it.
//!
//! Properties: a prologue is accepted only with 3 or 7+ arguments and yields exactly what
//! they say (id, user, queue, account, end = now + walltime, array index); an epilogue is
//! accepted exactly when its first argument is a valid PBS job id; a resource list's
//! walltime is the one `walltime=` item's value; every error is one line without control
//! characters, and short unless it quotes a job id.
#![no_main]

use std::time::{Duration, SystemTime};

use aws_role::job::Scheduler;
use aws_role::scheduler::pbs::{epilogue, prologue, prologue_form, walltime_of, Form, PbsArgsError};
use aws_role::walltime::parse_pbs;
use libfuzzer_sys::fuzz_target;

fn check_message(e: &PbsArgsError) {
    let msg = e.to_string();
    assert!(
        !msg.chars().any(char::is_control),
        "control character in {msg:?}"
    );
    // A value is shown escaped and cut to 80 characters (at most 10 bytes each once
    // escaped); only a job id error quotes the whole id.
    if !matches!(e, PbsArgsError::JobId(_)) {
        assert!(msg.len() <= 1_200, "{} bytes: {msg:?}", msg.len());
    }
}

fn check_walltime(list: &str) {
    match walltime_of(list, 5) {
        Ok(None) => assert!(
            list.is_empty() || !list.split(',').any(|i| i.starts_with("walltime=")),
            "walltime in {list:?} ignored"
        ),
        Ok(Some(d)) => {
            let values: Vec<&str> = list
                .split(',')
                .filter_map(|i| i.strip_prefix("walltime="))
                .collect();
            assert_eq!(values.len(), 1, "{list:?}");
            assert_eq!(parse_pbs(values[0]), Ok(d), "{list:?}");
        }
        Err(e) => {
            check_message(&e);
            assert!(e.to_string().contains("argument 5 (resource_list)"), "{e}");
        }
    }
}

fn check_prologue(args: &[String], queue: Option<&str>, now: SystemTime) {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let job = match prologue(args, queue, now) {
        Err(e) => {
            check_message(&e);
            if prologue_form(args.len()).is_none() {
                assert!(
                    matches!(e, PbsArgsError::PrologueArgCount(n) if n == args.len()),
                    "{e}"
                );
            }
            return;
        }
        Ok(job) => job,
    };
    let form = prologue_form(args.len()).expect("accepted with a valid count");
    assert_eq!(job.scheduler, Scheduler::Pbs);
    assert_eq!(job.id, aws_role::scheduler::pbs::parse_job_id(arg(0)).expect("a valid id"));
    assert_eq!(job.user, arg(1));
    assert_eq!(job.cluster, None);
    assert_eq!(job.requested, None);
    let queue = queue.filter(|q| !q.is_empty()).map(str::to_string);
    let (partition, account, end) = match form {
        Form::OpenPbs => (queue, None, None),
        Form::Torque => (
            Some(arg(5).to_string()).filter(|q| !q.is_empty()).or(queue),
            Some(arg(6).to_string()).filter(|a| !a.is_empty() && a != "null"),
            walltime_of(arg(4), 5)
                .expect("accepted, so its resource list is")
                .and_then(|w| now.checked_add(w)),
        ),
    };
    assert_eq!(job.partition, partition);
    assert_eq!(job.account, account);
    assert_eq!(job.end_time, end);
    for v in [&job.partition, &job.account].into_iter().flatten() {
        assert!(v.len() <= 256, "{v:?}");
        assert!(
            !v.chars().any(|c| c.is_control() || c.is_whitespace()),
            "{v:?}"
        );
    }
    // `1234[5].server`: task 5 of `1234[].server`; an index too large for a u32 is no task.
    let array = arg(0).split_once('[').and_then(|(head, rest)| {
        let (index, tail) = rest.split_once(']')?;
        Some((format!("{head}[]{tail}"), index.parse::<u32>().ok()?))
    });
    assert_eq!(
        (job.array_job_id.clone(), job.array_task_id),
        array.map_or((None, None), |(m, i)| (Some(m), Some(i))),
        "{:?}",
        arg(0)
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let queue = lines.next().filter(|q| !q.is_empty());
    let args: Vec<String> = lines.map(str::to_string).collect();
    for now in [
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        // Near the end of SystemTime: now + walltime must not overflow.
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::MAX / 4),
    ] {
        check_prologue(&args, queue, now);
    }
    match epilogue(&args) {
        Ok(id) => assert_eq!(Some(id.as_str()), args.first().map(String::as_str)),
        Err(e) => {
            check_message(&e);
            assert!(args.first().is_none_or(|a| aws_role::scheduler::pbs::parse_job_id(a).is_err()));
        }
    }
    for a in &args {
        check_walltime(a);
    }
});
