//! Role session names: what CloudTrail shows for every call a job makes.
//!
//! A template such as `slurm-{job_id}-{task}` is checked once, when the site map is
//! loaded; rendering then always yields a name STS accepts (2–64 characters of
//! `[A-Za-z0-9_+=,.@-]`): values are sanitized, and when the name is too long the other
//! values are shortened first so that the job id survives.

use std::fmt;

use crate::job::Job;

/// STS `RoleSessionName` limits (`roleSessionNameType`).
pub const MIN_LEN: usize = 2;
pub const MAX_LEN: usize = 64;

/// Whether `c` is allowed in a session name (and in a SourceIdentity): `[\w+=,.@-]`.
pub fn is_sts_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

/// A placeholder usable in a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    JobId,
    ArrayJobId,
    Task,
    User,
    Partition,
    Account,
    Cluster,
    Restart,
}

impl Field {
    const ALL: [(&'static str, Field); 8] = [
        ("job_id", Field::JobId),
        ("array_job_id", Field::ArrayJobId),
        ("task", Field::Task),
        ("user", Field::User),
        ("partition", Field::Partition),
        ("account", Field::Account),
        ("cluster", Field::Cluster),
        ("restart", Field::Restart),
    ];

    fn from_name(name: &str) -> Option<Field> {
        Field::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    fn value(self, job: &Job) -> String {
        match self {
            Field::JobId => job.id.as_str().to_string(),
            Field::ArrayJobId => job
                .array_job_id
                .clone()
                .unwrap_or_else(|| job.id.as_str().to_string()),
            Field::Task => job.array_task_id.unwrap_or(0).to_string(),
            Field::User => job.user.clone(),
            Field::Partition => job.partition.clone().unwrap_or_default(),
            Field::Account => job.account.clone().unwrap_or_default(),
            Field::Cluster => job.cluster.clone().unwrap_or_default(),
            Field::Restart => job.restart_count.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

/// A checked session-name template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// Why a template was refused; `offset` is the byte offset inside the template string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} (at character {} of the template {template:?})", offset + 1)]
pub struct TemplateError {
    pub template: String,
    pub offset: usize,
    pub what: String,
}

impl Template {
    /// Parses a template. Literal text must already be valid in a session name, every
    /// placeholder must be one of `{job_id} {array_job_id} {task} {user} {partition}
    /// {account} {cluster} {restart}`, and `{job_id}` must appear so that every session
    /// can be traced back to its job.
    pub fn parse(template: &str) -> Result<Template, TemplateError> {
        let t = Template::parse_with(template, is_sts_char)?;
        let err = |offset: usize, what: String| TemplateError {
            template: template.to_string(),
            offset,
            what,
        };
        if !t.pieces.contains(&Piece::Field(Field::JobId)) {
            return Err(err(0, "the template must contain {job_id}".into()));
        }
        let fixed: usize = t
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.len(),
                Piece::Field(_) => 0,
            })
            .sum();
        // Leave room for a job id: Slurm's are up to 10 digits.
        if fixed + 10 > MAX_LEN {
            return Err(err(
                0,
                format!("its literal text is {fixed} characters long; with a job id it would not fit in {MAX_LEN}"),
            ));
        }
        Ok(t)
    }

    /// Whether the template puts the job's account (`{account}`) into what it renders.
    pub fn uses_account(&self) -> bool {
        self.pieces.contains(&Piece::Field(Field::Account))
    }

    /// Parses a value template (a SourceIdentity or a session tag value): the same
    /// placeholders, `{job_id}` optional, literal characters checked with `allowed`.
    pub fn parse_value(
        template: &str,
        allowed: fn(char) -> bool,
    ) -> Result<Template, TemplateError> {
        Template::parse_with(template, allowed)
    }

    /// Renders a value template (a SourceIdentity or a session tag value): each value is
    /// [`escape`]d, so two different users (or accounts, partitions) never render the same
    /// value, and nothing is cut: IAM policies decide on these values, and a cut one could
    /// be another user's. A value STS finds too long is refused by
    /// [`crate::sts::AssumeRequest::validate`] (feature `sts`), naming the template to shorten.
    pub fn render_value(&self, job: &Job, allowed: fn(char) -> bool) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f) => out.push_str(&escape(&f.value(job), allowed)),
            }
        }
        out
    }

    /// Renders a SourceIdentity: [`Template::render_value`] with STS's characters, padded
    /// with `=` to STS's minimum of 2 characters. A template may render shorter than its
    /// literal text promises (`{user}` for a one-letter user, `{account}` for a job
    /// without one), and STS refuses a SourceIdentity under 2 characters: the job would
    /// lose its role. A lone `=` at the end is no escape, so padding keeps values apart
    /// (`x` gives `x=`, `x_` stays `x_`).
    pub fn render_source_identity(&self, job: &Job) -> String {
        let mut id = self.render_value(job, is_sts_char);
        // Only ASCII survives is_sts_char, so bytes are characters.
        while id.len() < MIN_LEN {
            id.push('=');
        }
        id
    }

    fn parse_with(template: &str, allowed: fn(char) -> bool) -> Result<Template, TemplateError> {
        let err = |offset: usize, what: String| TemplateError {
            template: template.to_string(),
            offset,
            what,
        };
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = template.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' => {
                    let rest = &template[i + 1..];
                    let close = rest
                        .find('}')
                        .ok_or_else(|| err(i, "'{' without a closing '}'".into()))?;
                    let name = &rest[..close];
                    let field = Field::from_name(name).ok_or_else(|| {
                        let known: Vec<String> =
                            Field::ALL.iter().map(|(n, _)| format!("{{{n}}}")).collect();
                        err(
                            i,
                            format!("unknown placeholder {{{name}}}; known: {}", known.join(" ")),
                        )
                    })?;
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Field(field));
                    // Skip the name and the closing brace.
                    for _ in 0..=name.chars().count() {
                        chars.next();
                    }
                }
                '}' => return Err(err(i, "'}' without an opening '{'".into())),
                c if allowed(c) => text.push(c),
                c => return Err(err(i, format!("{c:?} is not allowed here"))),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template {
            source: template.to_string(),
            pieces,
        })
    }

    /// The template as written in the map.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Renders the session name for `job`; always 2–64 characters of `[\w+=,.@-]`.
    pub fn render(&self, job: &Job) -> String {
        let mut parts: Vec<(bool, String)> = self
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => (true, t.clone()),
                Piece::Field(f) => (*f == Field::JobId, sanitize(&f.value(job))),
            })
            .collect();
        // Too long: shorten the longest shortenable value one character at a time, so
        // literals and the job id stay whole (the template check leaves room for them).
        let mut total: usize = parts.iter().map(|(_, s)| s.len()).sum();
        while total > MAX_LEN {
            let longest = parts
                .iter_mut()
                .enumerate()
                .filter(|(_, (fixed, s))| !fixed && !s.is_empty())
                .max_by_key(|(_, (_, s))| s.len());
            match longest {
                Some((_, (_, s))) => {
                    s.pop();
                    total -= 1;
                }
                None => break,
            }
        }
        let mut name: String = parts.into_iter().map(|(_, s)| s).collect();
        // Only a pathological job id could still be too long: keep its end, where ids differ.
        if name.len() > MAX_LEN {
            name = name.split_off(name.len() - MAX_LEN);
        }
        while name.len() < MIN_LEN {
            name.push('_');
        }
        name
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Replaces every character STS would refuse with `-`: for session names, which hold the
/// job id and so never need to tell two users apart (and which people read in CloudTrail).
pub fn sanitize(value: &str) -> String {
    value
        .chars()
        .map(|c| if is_sts_char(c) { c } else { '-' })
        .collect()
}

/// A value (a user or group name as NSS gives it, an account, a partition) made of
/// characters `allowed` accepts, one to one: every other character, and `=` itself,
/// becomes `=` and two upper-case hex digits per UTF-8 byte (`EXAMPLE\alice` gives
/// `EXAMPLE=5Calice`, `domain users` as a SourceIdentity `domain=20users`). `=` is in
/// both of STS's character sets, and since it only ever starts an escape, different
/// values give different results: an IAM condition on `sts:SourceIdentity` or a
/// principal tag cannot be met by another user whose name differs only where STS is
/// strict. Names of the plain characters (`alice`, `alice@example.com`) are unchanged.
pub fn escape(value: &str, allowed: fn(char) -> bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if allowed(c) && c != '=' {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("={b:02X}"));
            }
        }
    }
    out
}

/// Whether `c` is allowed in a session tag key or value: `[\p{L}\p{Z}\p{N}_.:/=+\-@]`.
pub fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
}

/// Whether `name` is a session name (or SourceIdentity) STS accepts.
pub fn is_valid_name(name: &str) -> bool {
    (MIN_LEN..=MAX_LEN).contains(&name.len()) && name.chars().all(is_sts_char)
}

/// STS `ExternalId` limits (`externalIdType`): 2 to 1224 characters of `[\w+=,.@:/-]`.
pub const EXTERNAL_ID_MIN: usize = 2;
pub const EXTERNAL_ID_MAX: usize = 1224;

/// Whether `c` is allowed in an `ExternalId`.
pub fn is_external_id_char(c: char) -> bool {
    is_sts_char(c) || c == ':' || c == '/'
}

/// Whether `id` is an `ExternalId` STS accepts.
pub fn is_valid_external_id(id: &str) -> bool {
    (EXTERNAL_ID_MIN..=EXTERNAL_ID_MAX).contains(&id.len()) && id.chars().all(is_external_id_char)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::job;
    use proptest::prelude::*;

    /// aws-role-map(5) lists every placeholder a template may use, and no other.
    #[test]
    fn the_man_page_names_every_placeholder() {
        let page = include_str!("../../docs/man/aws-role-map.5.md");
        for (name, _) in Field::ALL {
            assert!(
                page.contains(&format!("**{{{name}}}**")),
                "{{{name}}} is not in aws-role-map(5)"
            );
        }
        let named: std::collections::BTreeSet<&str> = page
            .split("**{")
            .skip(1)
            .filter_map(|r| r.split_once("}**").map(|(n, _)| n))
            .collect();
        assert_eq!(
            named.len(),
            Field::ALL.len(),
            "aws-role-map(5) names others: {named:?}"
        );
    }

    #[test]
    fn default_template_names_job_and_task() {
        let t = Template::parse("slurm-{job_id}-{task}").unwrap();
        let mut j = job("42");
        assert_eq!(t.render(&j), "slurm-42-0");
        j.array_task_id = Some(7);
        j.array_job_id = Some("40".into());
        assert_eq!(t.render(&j), "slurm-42-7");
        let t =
            Template::parse("{cluster}.{array_job_id}_{task}@{user}.r{restart}.{job_id}").unwrap();
        assert_eq!(t.render(&j), "lab.40_7@alice.r0.42");
    }

    #[test]
    fn bad_templates_say_where() {
        let e = Template::parse("slurm-{jobid}").unwrap_err();
        assert_eq!(e.offset, 6);
        assert!(e.what.contains("unknown placeholder {jobid}"), "{e}");
        assert!(Template::parse("slurm {job_id}")
            .unwrap_err()
            .what
            .contains("' '"));
        assert!(Template::parse_value("{user} x", is_tag_char).is_ok());
        assert!(Template::parse_value("{user}!", is_tag_char).is_err());
        assert_eq!(Template::parse("x-{job_id").unwrap_err().offset, 2);
        assert_eq!(Template::parse("x}{job_id}").unwrap_err().offset, 1);
        assert!(Template::parse("slurm-{task}")
            .unwrap_err()
            .what
            .contains("{job_id}"));
        assert!(Template::parse(&format!("{}{{job_id}}", "a".repeat(60))).is_err());
    }

    #[test]
    fn odd_values_are_sanitized_and_long_ones_shortened_keeping_the_job_id() {
        let t = Template::parse("{user}-{partition}-{job_id}").unwrap();
        let mut j = job("4294967295");
        j.user = "dr strange/ü".into();
        j.partition = Some("p".repeat(100));
        let name = t.render(&j);
        assert!(is_valid_name(&name), "{name}");
        assert!(name.ends_with("-4294967295"), "{name}");
        assert!(name.starts_with("dr-strange--"), "{name}");
        assert_eq!(name.len(), MAX_LEN);
    }

    /// Found by the `session_name` fuzz target
    /// (fuzz/regressions/session_name/source-identity-one-letter-user): a map may say
    /// `source_identity = "{user}"`, and a one-letter user (or `{account}` for a job with
    /// none) rendered a SourceIdentity STS refuses, so the job got no role.
    #[test]
    fn short_source_identities_are_padded_to_the_sts_minimum() {
        let mut j = job("7");
        j.user = "x".into();
        let user = Template::parse_value("{user}", is_sts_char).unwrap();
        assert_eq!(user.render_source_identity(&j), "x=");
        let account = Template::parse_value("{account}", is_sts_char).unwrap();
        assert_eq!(account.render_source_identity(&j), "==");
        j.user = "x_".into();
        assert_eq!(
            user.render_source_identity(&j),
            "x_",
            "padding is no character a name has"
        );
        j.user = "alice".into();
        assert_eq!(user.render_source_identity(&j), "alice");
        for id in [
            user.render_source_identity(&j),
            account.render_source_identity(&j),
        ] {
            assert!(is_valid_name(&id), "{id:?}");
        }
    }

    /// Directory-service names (SSSD, winbind) as NSS gives them: plain ones stay as they
    /// are, the others are escaped one to one, so names that differ only where STS is
    /// strict never meet in a SourceIdentity or a tag; too long is left long (the
    /// request's check refuses it) rather than cut into another user's.
    #[test]
    fn directory_names_are_escaped_one_to_one_and_never_cut() {
        let si = Template::parse_value("{user}", is_sts_char).unwrap();
        let tag = Template::parse_value("{user}", is_tag_char).unwrap();
        let name = Template::parse("{user}-{job_id}").unwrap();
        let mut j = job("42");
        let mut seen = std::collections::BTreeSet::new();
        for (user, source_identity, tag_value, session) in [
            (
                "alice@example.com",
                "alice@example.com",
                "alice@example.com",
                "alice@example.com-42",
            ),
            (
                "EXAMPLE\\alice",
                "EXAMPLE=5Calice",
                "EXAMPLE=5Calice",
                "EXAMPLE-alice-42",
            ),
            (
                "EXAMPLE-alice",
                "EXAMPLE-alice",
                "EXAMPLE-alice",
                "EXAMPLE-alice-42",
            ),
            (
                "domain users",
                "domain=20users",
                "domain users",
                "domain-users-42",
            ),
            ("a=b", "a=3Db", "a=3Db", "a=b-42"),
            ("a=3Db", "a=3D3Db", "a=3D3Db", "a=3Db-42"),
            ("jürgen", "j=C3=BCrgen", "jürgen", "j-rgen-42"),
        ] {
            j.user = user.into();
            assert_eq!(si.render_source_identity(&j), source_identity, "{user}");
            assert_eq!(tag.render_value(&j, is_tag_char), tag_value, "{user}");
            assert_eq!(name.render(&j), session, "{user}");
            assert!(is_valid_name(source_identity));
            assert!(
                seen.insert(source_identity),
                "{user} meets another user's SourceIdentity"
            );
        }
        j.user = "u".repeat(100);
        assert_eq!(si.render_source_identity(&j).len(), 100, "not cut");
    }

    proptest! {
        #[test]
        fn rendered_names_always_satisfy_sts(user in ".{0,100}", part in ".{0,100}", acct in ".{0,80}", id in 1u32.., task in proptest::option::of(any::<u32>())) {
            let t = Template::parse("{user}.{partition}.{account}-{job_id}-{task}").unwrap();
            let mut j = job(&id.to_string());
            j.user = user; j.partition = Some(part); j.account = Some(acct); j.array_task_id = task;
            let name = t.render(&j);
            prop_assert!(is_valid_name(&name), "{:?}", name);
            prop_assert!(name.contains(&format!("-{id}-")), "{:?}", name);
        }

        #[test]
        fn escaping_is_one_to_one(a in ".{0,12}", b in ".{0,12}") {
            for allowed in [is_sts_char as fn(char) -> bool, is_tag_char] {
                let (x, y) = (escape(&a, allowed), escape(&b, allowed));
                prop_assert!(x.chars().all(allowed) && y.chars().all(allowed));
                prop_assert_eq!(x == y, a == b, "{:?} {:?} -> {:?} {:?}", a, b, x, y);
            }
        }

        #[test]
        fn parse_never_panics(s in ".{0,120}") {
            let _ = Template::parse(&s);
        }
    }
}
