//! Checking one `[roles.NAME]` entry of the map as written: its ARN, allow lists, session
//! policies, SourceIdentity, tags and cross-account settings, each against IAM's and
//! STS's limits, with the position of every problem.

use super::check::{has_aws_prefix, literal_len, Checker, RawRole, Str};
use super::*;
use crate::session;
use crate::text::shown;

impl Checker<'_> {
    /// A list of `n` things where STS accepts at most `max`.
    fn at_most(&mut self, span: Range<usize>, what: &str, n: usize, max: usize, things: &str) {
        if n > max {
            self.at(
                span,
                format!("{what} has {n} {things}: STS accepts at most {max}"),
            );
        }
    }

    /// One `[roles.NAME]`; `partition` is the region's, when it has one: STS there can assume
    /// only roles (and attach only policies) of that partition.
    pub(super) fn role(
        &mut self,
        name: Str,
        raw: Spanned<RawRole>,
        min_session: Duration,
        partition: Option<&str>,
    ) -> Role {
        let span = raw.span();
        let raw = raw.into_inner();
        let key = name.get_ref();
        if key.eq_ignore_ascii_case("none") {
            self.at(
                name.span(),
                format!(
                    "role name {} is reserved: --aws-role=none means \"no role for this job\"; choose another name",
                    shown(key)
                ),
            );
        } else if !is_name(key) {
            self.at(
                name.span(),
                format!(
                    "role name {} is not valid: expected 1 to {NAME_MAX} characters of A-Z a-z 0-9 . _ -",
                    shown(key)
                ),
            );
        }
        let at = format!("roles.{key}");
        // The role's account, when its ARN is valid: its managed session policies must be there.
        let (arn, account) = match raw.arn {
            None => {
                self.at(
                    span,
                    format!(
                        "[{at}] has no arn: it is required, e.g. arn = \"arn:aws:iam::123456789012:role/NAME\""
                    ),
                );
                (String::new(), None)
            }
            Some(arn) => {
                let account = match check_arn(arn.get_ref()) {
                    Err(why) => {
                        self.at(
                            arn.span(),
                            format!(
                                "{at}.arn {} is not an IAM role ARN ({why}): expected arn:aws:iam::<12-digit account>:role/<name> ",
                                shown(arn.get_ref())
                            ),
                        );
                        None
                    }
                    Ok(account) => {
                        self.same_partition(&format!("{at}.arn"), &arn, partition);
                        Some(account.to_string())
                    }
                };
                (arn.into_inner(), account)
            }
        };
        // Users and groups as NSS gives them ([`is_nss_name`]); accounts as Slurm's.
        let nss = |kind: &str| {
            format!(
                "is not a {kind} name NSS could give: expected 1 to {NSS_NAME_MAX} bytes without control characters or ':', and no space at either end (names match exactly as NSS gives them: alice, alice@example.com, EXAMPLE\\alice, domain users)"
            )
        };
        let allow_users = self.names(
            &format!("{at}.allow_users"),
            raw.allow_users,
            is_nss_name,
            &nss("user"),
        );
        let allow_groups = self.names(
            &format!("{at}.allow_groups"),
            raw.allow_groups,
            is_nss_name,
            &nss("group"),
        );
        let allow_accounts = self.names(
            &format!("{at}.allow_accounts"),
            raw.allow_accounts,
            is_name,
            &format!(
                "is not a valid account name: expected 1 to {NAME_MAX} characters of A-Z a-z 0-9 . _ -"
            ),
        );
        let max_session = raw
            .max_session
            .map(|d| self.duration(&format!("{at}.max_session"), &d, min_session, SESSION_MAX));
        let session_policy = raw.session_policy.map(|p| {
            self.session_policy(&format!("{at}.session_policy"), &p);
            p.into_inner()
        });
        let source_identity = raw
            .source_identity
            .and_then(|s| self.source_identity(&format!("{at}.source_identity"), &s));
        let tags = raw
            .tags
            .map(|t| self.tags(&format!("{at}.tags"), t))
            .unwrap_or_default();
        let external_id = raw
            .external_id
            .and_then(|e| self.external_id(&format!("{at}.external_id"), e));
        let inline_len = session_policy.as_ref().map_or(0, |p| p.chars().count());
        let policy_arns = raw
            .policy_arns
            .map(|p| {
                self.policy_arns(
                    &format!("{at}.policy_arns"),
                    p,
                    account.as_deref(),
                    partition,
                    inline_len,
                )
            })
            .unwrap_or_default();
        let transitive_tag_keys = raw
            .transitive_tag_keys
            .map(|k| self.transitive_tag_keys(&format!("{at}.transitive_tag_keys"), k, &tags))
            .unwrap_or_default();
        Role {
            name: name.into_inner(),
            arn,
            allow_users,
            allow_groups,
            allow_accounts,
            max_session,
            session_policy,
            source_identity,
            tags,
            external_id,
            policy_arns,
            transitive_tag_keys,
        }
    }

    /// `external_id`: what the role's trust policy requires in `sts:ExternalId`. Never
    /// quoted in a message: a site may treat it as confidential.
    fn external_id(&mut self, what: &str, e: Str) -> Option<String> {
        let id = e.get_ref();
        if session::is_valid_external_id(id) {
            return Some(e.into_inner());
        }
        let len = id.chars().count();
        let message = if !(session::EXTERNAL_ID_MIN..=session::EXTERNAL_ID_MAX).contains(&len) {
            format!(
                "{what} is {len} characters long: STS accepts {} to {}",
                session::EXTERNAL_ID_MIN,
                session::EXTERNAL_ID_MAX
            )
        } else {
            let at = id
                .chars()
                .position(|c| !session::is_external_id_char(c))
                .unwrap_or_default();
            format!(
                "{what} has a character STS refuses at position {}: expected letters, digits and _ + = , . @ : / -",
                at + 1
            )
        };
        self.at(e.span(), message);
        None
    }

    /// Whether the valid ARN `arn` is in `partition` (the region's; `None`: not known);
    /// records the problem if not.
    fn same_partition(&mut self, what: &str, arn: &Str, partition: Option<&str>) -> bool {
        let theirs = arn.get_ref().split(':').nth(1).unwrap_or_default();
        match partition {
            Some(p) if p != theirs => {
                self.at(
                    arn.span(),
                    format!(
                        "{what}: {} is in partition {theirs}, but sts.region is in partition {p}: STS of one partition cannot use the roles or policies of another",
                        shown(arn.get_ref())
                    ),
                );
                false
            }
            _ => true,
        }
    }

    /// `policy_arns`: managed session policies, at most 10, of the role's own account (or
    /// AWS managed), sharing STS's 2048 characters of plain text with `session_policy`.
    fn policy_arns(
        &mut self,
        what: &str,
        raw: Spanned<Vec<Str>>,
        role_account: Option<&str>,
        partition: Option<&str>,
        inline_len: usize,
    ) -> Vec<String> {
        let span = raw.span();
        let raw = raw.into_inner();
        self.at_most(span.clone(), what, raw.len(), POLICY_ARNS_MAX, "policies");
        let mut out: Vec<String> = Vec::new();
        for a in raw {
            let arn = a.get_ref();
            match check_policy_arn(arn) {
                Err(why) => self.at(
                    a.span(),
                    format!(
                        "{what}: {} is not an IAM policy ARN ({why}): expected arn:aws:iam::<12-digit account>:policy/<name>, or arn:aws:iam::aws:policy/<name> for an AWS managed policy",
                        shown(arn)
                    ),
                ),
                Ok(account) if account != "aws" && role_account.is_some_and(|r| r != account) => self.at(
                    a.span(),
                    format!(
                        "{what}: {} is in account {account}, the role in {}: a managed session policy must be in the role's account (or AWS managed)",
                        shown(arn),
                        role_account.unwrap_or_default()
                    ),
                ),
                Ok(_) if out.contains(arn) => self.at(
                    a.span(),
                    format!("{what}: {} is listed twice", shown(arn)),
                ),
                Ok(_) => {
                    if self.same_partition(what, &a, partition) {
                        out.push(a.into_inner());
                    }
                }
            }
        }
        let total = inline_len + out.iter().map(|a| a.chars().count()).sum::<usize>();
        if total > POLICY_MAX {
            self.at(
                span,
                format!(
                    "{what} and session_policy are {total} characters of plain text together: STS accepts at most {POLICY_MAX}"
                ),
            );
        }
        out
    }

    /// `transitive_tag_keys`: keys of the role's `tags` that pass on to the sessions of
    /// roles this session assumes in turn.
    fn transitive_tag_keys(
        &mut self,
        what: &str,
        raw: Spanned<Vec<Str>>,
        tags: &[(String, Template)],
    ) -> Vec<String> {
        let span = raw.span();
        let raw = raw.into_inner();
        self.at_most(span, what, raw.len(), TAGS_MAX, "keys");
        let mut out: Vec<String> = Vec::new();
        for k in raw {
            let key = k.get_ref();
            let lower = key.to_lowercase();
            if !tags.iter().any(|(t, _)| t.to_lowercase() == lower) {
                let known: Vec<&str> = tags.iter().map(|(t, _)| t.as_str()).collect();
                self.at(
                    k.span(),
                    format!(
                        "{what}: {} is not a key of this role's tags ({}): only a session tag can be transitive",
                        shown(key),
                        if known.is_empty() { "it has none".to_string() } else { known.join(", ") }
                    ),
                );
            } else if out.iter().any(|o| o.to_lowercase() == lower) {
                self.at(k.span(), format!("{what}: {} is listed twice", shown(key)));
            } else {
                out.push(k.into_inner());
            }
        }
        out
    }

    /// The names of an allow list: each that `valid` refuses is reported as `{what}: "<name>"
    /// {wrong}`.
    fn names(
        &mut self,
        what: &str,
        raw: Vec<Str>,
        valid: fn(&str) -> bool,
        wrong: &str,
    ) -> Vec<String> {
        raw.into_iter()
            .map(|n| {
                if !valid(n.get_ref()) {
                    self.at(n.span(), format!("{what}: {} {wrong}", shown(n.get_ref())));
                }
                n.into_inner()
            })
            .collect()
    }

    fn session_policy(&mut self, what: &str, p: &Str) {
        let policy = p.get_ref();
        let len = policy.chars().count();
        let problem = if len > POLICY_MAX {
            Some(format!(
                "{what} is {len} characters long: STS accepts at most {POLICY_MAX}"
            ))
        } else {
            match serde_json::from_str::<serde_json::Value>(policy) {
                Err(e) => Some(format!(
                    "{what} {} is not valid JSON ({e}): expected an IAM policy document such as {{\"Version\": \"2012-10-17\", \"Statement\": [...]}}",
                    shown(policy)
                )),
                Ok(serde_json::Value::Object(o)) if o.contains_key("Statement") => None,
                Ok(serde_json::Value::Object(_)) => Some(format!(
                    "{what} {} has no \"Statement\": expected an IAM policy document such as {{\"Version\": \"2012-10-17\", \"Statement\": [...]}}",
                    shown(policy)
                )),
                Ok(_) => Some(format!(
                    "{what} {} is not a JSON object: expected an IAM policy document such as {{\"Version\": \"2012-10-17\", \"Statement\": [...]}}",
                    shown(policy)
                )),
            }
        };
        if let Some(message) = problem {
            self.at(p.span(), message);
        }
    }

    fn source_identity(&mut self, what: &str, s: &Str) -> Option<Template> {
        let value = s.get_ref();
        if has_aws_prefix(value) {
            self.at(
                s.span(),
                format!(
                    "{what} {} starts with \"aws:\", which AWS reserves",
                    shown(value)
                ),
            );
            return None;
        }
        match Template::parse_value(value, is_sts_char) {
            Err(e) => {
                self.at(s.span(), format!("{what}: {e}"));
                None
            }
            Ok(t) => {
                let literal = literal_len(value);
                if literal > SOURCE_IDENTITY_MAX {
                    self.at(
                        s.span(),
                        format!(
                            "{what} {}: its literal text is {literal} characters long; a SourceIdentity has at most {SOURCE_IDENTITY_MAX}",
                            shown(value)
                        ),
                    );
                    None
                } else if !value.contains('{') && literal < SOURCE_IDENTITY_MIN {
                    self.at(
                        s.span(),
                        format!(
                            "{what} {} is too short: a SourceIdentity has at least {SOURCE_IDENTITY_MIN} characters (e.g. \"{{user}}\")",
                            shown(value)
                        ),
                    );
                    None
                } else {
                    Some(t)
                }
            }
        }
    }

    fn tags(&mut self, what: &str, raw: Spanned<BTreeMap<Str, Str>>) -> Vec<(String, Template)> {
        let span = raw.span();
        let raw = raw.into_inner();
        self.at_most(span, what, raw.len(), TAGS_MAX, "tags");
        // STS treats tag keys case-insensitively: `Project` and `project` collide.
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut tags = Vec::new();
        for (key, value) in raw {
            let k = key.get_ref();
            let len = k.chars().count();
            if !(1..=TAG_KEY_MAX).contains(&len) || !k.chars().all(is_tag_char) {
                self.at(
                    key.span(),
                    format!(
                        "{what}: tag key {} is not valid: expected 1 to {TAG_KEY_MAX} letters, digits, spaces or _ . : / = + - @",
                        shown(k)
                    ),
                );
                continue;
            }
            if has_aws_prefix(k) {
                self.at(
                    key.span(),
                    format!(
                        "{what}: tag key {} starts with \"aws:\", which AWS reserves",
                        shown(k)
                    ),
                );
                continue;
            }
            if let Some(other) = seen.insert(k.to_lowercase(), k.clone()) {
                self.at(
                    key.span(),
                    format!(
                        "{what}: tag keys {} and {} differ only in case, which STS refuses",
                        shown(&other),
                        shown(k)
                    ),
                );
                continue;
            }
            let v = value.get_ref();
            match Template::parse_value(v, is_tag_char) {
                Err(e) => self.at(value.span(), format!("{what}.{k}: {e}")),
                Ok(t) => {
                    let literal = literal_len(v);
                    if literal > TAG_VALUE_MAX {
                        self.at(
                            value.span(),
                            format!(
                                "{what}.{k}: its literal text is {literal} characters long; a tag value has at most {TAG_VALUE_MAX}"
                            ),
                        );
                    } else {
                        tags.push((key.into_inner(), t));
                    }
                }
            }
        }
        tags
    }
}

/// Checks an IAM role ARN: `arn:<partition>:iam::<12 digits>:role/<path/name>`, the
/// partition one of [`crate::partition::PARTITIONS`]; returns its account.
pub(super) fn check_arn(arn: &str) -> Result<&str, String> {
    iam_resource(arn, "role", false, IAM_ROLE_NAME_MAX)
}

/// An IAM managed policy ARN (`arn:aws:iam::<account>:policy/<path/name>`, the account
/// `aws` for AWS managed policies); returns its account.
pub(super) fn check_policy_arn(arn: &str) -> Result<&str, String> {
    iam_resource(arn, "policy", true, IAM_POLICY_NAME_MAX)
}

/// An IAM ARN of a `kind` (`role`, `policy`) whose name is at most `max` characters, in an
/// account of 12 digits (or `aws` where `aws_managed`); returns the account.
fn iam_resource<'a>(
    arn: &'a str,
    kind: &str,
    aws_managed: bool,
    max: usize,
) -> Result<&'a str, String> {
    let (account, resource) = iam_arn(arn)?;
    let digits = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    if !(digits || aws_managed && account == "aws") {
        let expected = if aws_managed {
            "neither 12 digits nor \"aws\""
        } else {
            "not 12 digits"
        };
        return Err(format!("the account id {} is {expected}", shown(account)));
    }
    let Some(path_name) = resource
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return Err(format!(
            "the resource {} does not start with \"{kind}/\"",
            shown(resource)
        ));
    };
    iam_path_name(path_name, kind, max)?;
    Ok(account)
}

/// The fields every IAM ARN has: `arn:<partition>:iam::<account>:<resource>`, at most
/// [`ARN_MAX`] characters; returns the account and the resource.
fn iam_arn(arn: &str) -> Result<(&str, &str), String> {
    if arn.len() > ARN_MAX {
        return Err(format!(
            "it is {} characters long, at most {ARN_MAX} are allowed",
            arn.len()
        ));
    }
    let mut fields = arn.splitn(6, ':');
    let (Some(prefix), Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err("it does not have the six ':'-separated fields of an ARN".into());
    };
    if prefix != "arn" {
        return Err("it does not start with \"arn:\"".into());
    }
    if !crate::partition::is_known(partition) {
        return Err(format!(
            "unknown partition {} (known: {})",
            shown(partition),
            crate::partition::names()
        ));
    }
    if service != "iam" {
        return Err(format!("the service is {}, not \"iam\"", shown(service)));
    }
    if !region.is_empty() {
        return Err(format!("IAM ARNs have no region, found {}", shown(region)));
    }
    Ok((account, resource))
}

/// An IAM path and name (`a/b/name`): IAM's characters, the name 1 to `max` long.
fn iam_path_name(path_name: &str, kind: &str, max: usize) -> Result<(), String> {
    if let Some(c) = path_name.chars().find(|&c| !is_role_path_char(c)) {
        return Err(format!("{c:?} is not allowed in a {kind} path or name"));
    }
    let name = path_name.rsplit('/').next().unwrap_or_default();
    if name.is_empty() || name.len() > max {
        return Err(format!(
            "the {kind} name {} is not 1 to {max} characters",
            shown(name)
        ));
    }
    Ok(())
}

/// `[\w+=,.@/-]`: what IAM allows in role paths and names.
pub(super) fn is_role_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '/' | '-')
}
