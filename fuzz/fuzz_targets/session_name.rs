//! Session-name templates and their rendering.
//!
//! Input: UTF-8 text, one field per line: template, job id, user, partition, account,
//! cluster, array job id, array task id, restart count. Missing lines are absent values;
//! a job id that is neither a Slurm nor a PBS id becomes Slurm job 1.
//!
//! Properties: a template error points at a character of the template; a rendered
//! session name always satisfies STS's `RoleSessionName` (2–64 characters of
//! `[\w+=,.@-]`), equals the plain substitution whenever that fits, and keeps the job id
//! whole whenever the template's fixed text and the id fit; a SourceIdentity and a tag
//! value are the template with every value escaped one to one (`=` and two hex digits
//! per UTF-8 byte of any character STS refuses, and of `=` itself; this target's own
//! escaping is the oracle), never cut, a SourceIdentity padded with `=` to 2 and valid
//! whenever it is at most 64 long.
#![no_main]

use aws_role::job::{Job, Scheduler};
use aws_role::session::{
    is_sts_char, is_tag_char, is_valid_name, sanitize, Template, MAX_LEN, MIN_LEN,
};
use libfuzzer_sys::fuzz_target;
use nix::unistd::{Gid, Uid};

fn job(lines: &[&str]) -> Job {
    let line = |i: usize| lines.get(i).copied();
    let opt = |i: usize| line(i).map(str::to_string);
    let raw_id = line(1).unwrap_or("1");
    let (scheduler, id) = match (aws_role::scheduler::slurm::parse_job_id(raw_id), aws_role::scheduler::pbs::parse_job_id(raw_id)) {
        (Ok(id), _) => (Scheduler::Slurm, id),
        (_, Ok(id)) => (Scheduler::Pbs, id),
        _ => (Scheduler::Slurm, aws_role::scheduler::slurm::parse_job_id("1").expect("1 is a job id")),
    };
    Job {
        scheduler,
        id,
        array_job_id: opt(6),
        array_task_id: line(7).and_then(|s| s.parse().ok()),
        user: line(2).unwrap_or("alice").to_string(),
        uid: Uid::from_raw(1000),
        gid: Gid::from_raw(1000),
        partition: opt(3),
        account: opt(4),
        cluster: opt(5),
        restart_count: line(8).and_then(|s| s.parse().ok()).unwrap_or(0),
        end_time: None,
        requested: None,
    }
}

/// The value a placeholder stands for, as the module documents it.
fn value(name: &str, job: &Job) -> String {
    match name {
        "job_id" => job.id.as_str().to_string(),
        "array_job_id" => job
            .array_job_id
            .clone()
            .unwrap_or_else(|| job.id.as_str().to_string()),
        "task" => job.array_task_id.unwrap_or(0).to_string(),
        "user" => job.user.clone(),
        "partition" => job.partition.clone().unwrap_or_default(),
        "account" => job.account.clone().unwrap_or_default(),
        "cluster" => job.cluster.clone().unwrap_or_default(),
        "restart" => job.restart_count.to_string(),
        other => panic!("a parsed template has an unknown placeholder {other:?}"),
    }
}

/// A parsed template's pieces: `(is_placeholder, text)`.
fn pieces(template: &str) -> Vec<(bool, &str)> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push((false, &rest[..open]));
        }
        let close = open
            + rest[open..]
                .find('}')
                .expect("a parsed template is balanced");
        out.push((true, &rest[open + 1..close]));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        out.push((false, rest));
    }
    out
}

/// Plain substitution, each value made safe with `allowed`.
fn substitute(template: &str, job: &Job, each: impl Fn(char) -> String) -> String {
    pieces(template)
        .into_iter()
        .map(|(field, text)| {
            if field {
                value(text, job).chars().map(&each).collect()
            } else {
                text.to_string()
            }
        })
        .collect()
}

/// A session name's values: what STS refuses becomes `-`.
fn dashed(c: char) -> String {
    if is_sts_char(c) { c.to_string() } else { "-".into() }
}

/// A SourceIdentity's or tag's values, escaped one to one.
fn escaped(allowed: fn(char) -> bool) -> impl Fn(char) -> String {
    move |c| {
        if allowed(c) && c != '=' {
            c.to_string()
        } else {
            let mut buf = [0u8; 4];
            c.encode_utf8(&mut buf).bytes().map(|b| format!("={b:02X}")).collect()
        }
    }
}

fn check_error(template: &str, e: &aws_role::session::TemplateError) {
    assert_eq!(e.template, template);
    assert!(
        e.offset < template.len().max(1) && template.is_char_boundary(e.offset),
        "offset {} in {template:?}",
        e.offset
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("at character {}", e.offset + 1)),
        "{msg}"
    );
}

fn check_session_name(template: &str, job: &Job) {
    let t = match Template::parse(template) {
        Err(e) => return check_error(template, &e),
        Ok(t) => t,
    };
    assert_eq!(t.as_str(), template);
    assert!(template.contains("{job_id}"));
    let name = t.render(job);
    assert!(is_valid_name(&name), "{name:?} from {template:?}");
    assert_eq!(t.render(job), name, "rendering is deterministic");
    let plain = substitute(template, job, dashed);
    if (MIN_LEN..=MAX_LEN).contains(&plain.len()) {
        assert_eq!(name, plain, "{template:?} shortened a name that fits");
    } else if plain.len() > MAX_LEN {
        assert_eq!(name.len(), MAX_LEN, "{name:?}: shortened more than needed");
    } else {
        assert!(name.starts_with(&plain), "{name:?}: padded wrongly");
    }
    // The fixed part: literal text and every copy of the job id.
    let id = sanitize(job.id.as_str());
    let fixed: usize = pieces(template)
        .iter()
        .map(|&(field, text)| match (field, text) {
            (false, text) => text.len(),
            (true, "job_id") => id.len(),
            (true, _) => 0,
        })
        .sum();
    if fixed <= MAX_LEN {
        assert!(
            name.contains(&id),
            "{name:?} lost job id {id:?} ({template:?})"
        );
    }
    if job.scheduler == Scheduler::Slurm {
        // The template check leaves room for any Slurm id (at most 10 digits).
        assert!(
            name.contains(job.id.as_str()),
            "{name:?} lost the Slurm job id"
        );
    }
}

fn check_values(template: &str, job: &Job) {
    // A SourceIdentity, as the prolog renders it, from a template the map accepts: plain
    // text of 2 to 64 characters, or any text of at most 64 with placeholders.
    let literal = || -> usize {
        pieces(template)
            .iter()
            .filter(|(field, _)| !field)
            .map(|(_, text)| text.chars().count())
            .sum()
    };
    match Template::parse_value(template, is_sts_char) {
        Err(e) => check_error(template, &e),
        Ok(_) if literal() > MAX_LEN || (!template.contains('{') && literal() < MIN_LEN) => {}
        Ok(t) => {
            let si = t.render_source_identity(job);
            let mut plain = substitute(template, job, escaped(is_sts_char));
            while plain.len() < MIN_LEN {
                plain.push('=');
            }
            assert_eq!(si, plain, "SourceIdentity from {template:?}");
            // STS: SourceIdentity is 2 to 64 characters of [\w+=,.@-]; longer is refused
            // by the request's check, never cut.
            assert!(
                si.len() > MAX_LEN || is_valid_name(&si),
                "SourceIdentity {si:?} from {template:?}"
            );
        }
    }
    // A session tag value.
    match Template::parse_value(template, is_tag_char) {
        Err(e) => check_error(template, &e),
        Ok(t) => {
            let v = t.render_value(job, is_tag_char);
            assert!(v.chars().all(is_tag_char), "{v:?}");
            assert_eq!(v, substitute(template, job, escaped(is_tag_char)), "{template:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let template = lines[0];
    let job = job(&lines);
    check_session_name(template, &job);
    check_values(template, &job);
});
