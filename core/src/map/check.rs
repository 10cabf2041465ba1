//! Checking a role map as written: the raw TOML (every field optional, with spans) becomes
//! a [`RoleMap`] or the list of every problem, each with its line and column.

use super::*;
use crate::text::shown;

/// Checks the map text `text`; `source` names it in messages ([`RoleMap::parse`]).
pub(super) fn parse(text: &str, source: &Path) -> Result<RoleMap, MapError> {
    let fail = |mut problems: Vec<Problem>| {
        problems.sort_by_key(|p| (p.line, p.column));
        MapError {
            file: source.to_path_buf(),
            problems,
        }
    };
    let raw: RawMap = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let (line, column) = e.span().map_or((0, 0), |s| position(text, s.start));
            return Err(fail(vec![Problem {
                line,
                column,
                message: one_line(e.message()),
            }]));
        }
    };
    let mut checker = Checker {
        text,
        problems: Vec::new(),
    };
    let map = checker.map(raw, source);
    match map {
        Some(map) if checker.problems.is_empty() => Ok(map),
        _ => {
            if checker.problems.is_empty() {
                checker.nowhere("internal error: the map was refused without a reason".into());
            }
            Err(fail(checker.problems))
        }
    }
}

// ---------------------------------------------------------------------------------------
// The file as written: every field optional so that missing ones are reported together
// with everything else, with spans for positions.

pub(super) type Str = Spanned<String>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMap {
    sts: Option<Spanned<RawSts>>,
    node: Option<RawNode>,
    refresh: Option<RawRefresh>,
    slurm: Option<RawSlurm>,
    endpoint: Option<RawEndpoint>,
    defaults: Option<RawDefaults>,
    #[serde(default)]
    roles: BTreeMap<Str, Spanned<RawRole>>,
    #[serde(default)]
    partitions: BTreeMap<Str, Spanned<RawQueue>>,
    pbs: Option<RawPbs>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSts {
    region: Option<Str>,
    endpoint: Option<Str>,
    node_identity: Option<Str>,
    credentials_file: Option<Str>,
    profile: Option<Str>,
    imds_endpoint: Option<Str>,
    timeout: Option<Str>,
    max_attempts: Option<Spanned<i64>>,
    min_session: Option<Str>,
    proxy: Option<Str>,
    no_proxy: Option<Spanned<Vec<Str>>>,
    use_fips: Option<Spanned<bool>>,
    use_dualstack: Option<Spanned<bool>>,
    node_rate: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNode {
    base_dir: Option<Str>,
    credential_helper: Option<Str>,
    jobs_may_reach_imds: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRefresh {
    lead: Option<Str>,
    jitter: Option<Str>,
    scan_interval: Option<Str>,
    orphan_grace: Option<Str>,
    concurrency: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSlurm {
    end_time_from_scontrol: Option<bool>,
    scontrol: Option<Str>,
    scontrol_timeout: Option<Str>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    enabled: Option<bool>,
    listen: Option<Str>,
    max_connections: Option<Spanned<i64>>,
    max_connections_per_user: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    max_session: Option<Str>,
    margin: Option<Str>,
    session_name: Option<Str>,
    pbs_session_name: Option<Str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRole {
    pub(super) arn: Option<Str>,
    #[serde(default)]
    pub(super) allow_users: Vec<Str>,
    #[serde(default)]
    pub(super) allow_groups: Vec<Str>,
    #[serde(default)]
    pub(super) allow_accounts: Vec<Str>,
    pub(super) max_session: Option<Str>,
    pub(super) session_policy: Option<Str>,
    pub(super) source_identity: Option<Str>,
    pub(super) tags: Option<Spanned<BTreeMap<Str, Str>>>,
    pub(super) external_id: Option<Str>,
    pub(super) policy_arns: Option<Spanned<Vec<Str>>>,
    pub(super) transitive_tag_keys: Option<Spanned<Vec<Str>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    default_role: Option<Str>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPbs {
    default_role: Option<Str>,
    #[serde(default)]
    queues: BTreeMap<Str, Spanned<RawQueue>>,
}

// ---------------------------------------------------------------------------------------
// Validation: each check records its problem and carries on with a stand-in value, so that
// one run reports everything. A map with any problem is never returned.

pub(super) struct Checker<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    pub(super) fn at(&mut self, span: Range<usize>, message: String) {
        let (line, column) = position(self.text, span.start);
        self.problems.push(Problem {
            line,
            column,
            message: one_line(&message),
        });
    }

    fn nowhere(&mut self, message: String) {
        self.problems.push(Problem {
            line: 0,
            column: 0,
            message: one_line(&message),
        });
    }

    fn map(&mut self, raw: RawMap, source: &Path) -> Option<RoleMap> {
        let mut sts = self.sts(raw.sts);
        // Empty (not known) when the region was refused: its problem is reported already.
        let partition = crate::partition::of_region(&sts.region);
        let node = self.node(raw.node.unwrap_or_default());
        if let Some(rate) = &mut sts.node_rate {
            // Beside the job directories, not among them: as safe as their parent is.
            let mut file = node.base_dir.clone().into_os_string();
            file.push(".sts-rate");
            rate.file = PathBuf::from(file);
        }
        let refresh = self.refresh(raw.refresh.unwrap_or_default());
        let slurm = self.slurm(raw.slurm.unwrap_or_default());
        let endpoint = self.endpoint(raw.endpoint.unwrap_or_default());
        // Session caps may go down to sts.min_session: 15 min unless STS is a local emulator.
        let defaults = self.defaults(raw.defaults.unwrap_or_default(), sts.min_session);
        // References are checked against every role the file declares, even ones with
        // mistakes of their own, so that one mistake is not reported twice.
        let declared: Vec<String> = raw.roles.keys().map(|k| k.get_ref().clone()).collect();
        let mut roles = BTreeMap::new();
        for (name, role) in raw.roles {
            let role = self.role(name, role, sts.min_session, partition);
            roles.insert(role.name.clone(), role);
        }
        let partitions = self.queues("partitions", raw.partitions, &declared);
        let pbs = self.pbs(raw.pbs.unwrap_or_default(), &declared);
        Some(RoleMap {
            source: source.to_path_buf(),
            sts,
            node,
            refresh,
            slurm,
            endpoint,
            defaults: defaults?,
            roles,
            partitions,
            pbs,
        })
    }

    fn sts(&mut self, raw: Option<Spanned<RawSts>>) -> StsSettings {
        let mut sts = StsSettings {
            region: String::new(),
            endpoint: None,
            identity: NodeIdentity::DefaultChain,
            credentials_file: None,
            profile: None,
            imds_endpoint: None,
            timeout: DEFAULT_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            min_session: STS_MIN_SESSION,
            proxy: ProxySetting::Direct,
            use_fips: false,
            use_dualstack: false,
            node_rate: None,
        };
        let Some(raw) = raw else {
            self.nowhere(
                "there is no [sts] table: it is required, with at least the region, e.g. [sts] region = \"us-east-1\""
                    .into(),
            );
            return sts;
        };
        let span = raw.span();
        let raw = raw.into_inner();
        match raw.region {
            None => self.at(
                span,
                "[sts] has no region: it is required (the STS region, e.g. region = \"us-east-1\")"
                    .into(),
            ),
            Some(region) => {
                if is_region(region.get_ref())
                    && crate::partition::of_region(region.get_ref()).is_none()
                {
                    self.at(
                        region.span(),
                        format!(
                            "sts.region {} is in no AWS partition aws-role knows ({}): a region like \"us-east-1\", \"us-gov-west-1\", \"cn-north-1\" or \"eusc-de-east-1\"",
                            shown(region.get_ref()),
                            crate::partition::names()
                        ),
                    );
                } else if !is_region(region.get_ref()) {
                    self.at(
                        region.span(),
                        format!(
                            "sts.region {} is not an AWS region: expected a name like \"us-east-1\", \"cn-north-1\" or \"us-gov-west-1\"",
                            shown(region.get_ref())
                        ),
                    );
                }
                sts.region = region.into_inner();
            }
        }
        if let Some(endpoint) = raw.endpoint {
            if !is_http_url(endpoint.get_ref()) {
                self.at(
                    endpoint.span(),
                    format!(
                        "sts.endpoint {} is not an http(s) URL: expected e.g. \"https://sts.us-east-1.amazonaws.com\"",
                        shown(endpoint.get_ref())
                    ),
                );
            } else if endpoint.get_ref().starts_with("http://")
                && !is_loopback_url(endpoint.get_ref())
            {
                // The answer carries the job's secret keys, the request the node's signature.
                self.at(
                    endpoint.span(),
                    format!(
                        "sts.endpoint {} is plain http to a host other than this one: the node's signed requests and the jobs' secret keys would cross the network unencrypted; use https (plain http is only for a local STS emulator on 127.0.0.1, localhost or [::1])",
                        shown(endpoint.get_ref())
                    ),
                );
            }
            sts.endpoint = Some(endpoint.into_inner());
        }
        sts.credentials_file = raw
            .credentials_file
            .map(|p| self.absolute_path("sts.credentials_file", p));
        if let Some(profile) = raw.profile {
            let p = profile.get_ref();
            if p.is_empty()
                || p.chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '[' || c == ']')
            {
                self.at(
                    profile.span(),
                    format!(
                        "sts.profile {} is not a profile name: expected a non-empty name without spaces or brackets",
                        shown(p)
                    ),
                );
            }
            sts.profile = Some(profile.into_inner());
        }
        self.node_identity(&mut sts, raw.node_identity);
        if let Some(url) = raw.imds_endpoint {
            match imds_endpoint(url.get_ref()) {
                Ok(()) => sts.imds_endpoint = Some(url.into_inner()),
                Err(why) => self.at(
                    url.span(),
                    format!(
                        "sts.imds_endpoint {} {why}: expected \"{IMDS_ENDPOINT}\", \"{IMDS_ENDPOINT_V6}\" or, for tests, an emulator on loopback such as \"http://127.0.0.1:8089\"",
                        shown(url.get_ref())
                    ),
                ),
            }
        }
        if let Some(t) = raw.timeout {
            sts.timeout = self.duration("sts.timeout", &t, TIMEOUT_MIN, TIMEOUT_MAX);
        }
        if let Some(n) = raw.max_attempts {
            match u32::try_from(*n.get_ref()) {
                Ok(v) if (1..=MAX_ATTEMPTS_MAX).contains(n.get_ref()) => sts.max_attempts = v,
                _ => self.at(
                    n.span(),
                    format!(
                        "sts.max_attempts = {} is out of range: expected 1 to {MAX_ATTEMPTS_MAX}",
                        n.get_ref()
                    ),
                ),
            }
        }
        if let Some(n) = raw.node_rate {
            match u32::try_from(*n.get_ref()) {
                Ok(v) if (1..=NODE_RATE_MAX).contains(&v) => {
                    sts.node_rate = Some(NodeRate {
                        per_second: v,
                        // Set beside [node] base_dir once that is read (see `map`).
                        file: PathBuf::new(),
                    })
                }
                _ => self.at(
                    n.span(),
                    format!(
                        "sts.node_rate = {} is out of range: expected 1 to {NODE_RATE_MAX} STS calls a second for this node",
                        n.get_ref()
                    ),
                ),
            }
        }
        if let Some(m) = raw.min_session {
            if let Some(v) =
                self.checked_duration("sts.min_session", &m, MIN_SESSION_FLOOR, STS_MIN_SESSION)
            {
                let emulator = sts.endpoint.as_deref().is_some_and(is_loopback_url);
                if v < STS_MIN_SESSION && !emulator {
                    self.at(
                        m.span(),
                        format!(
                            "sts.min_session = {} is below {}: real STS refuses DurationSeconds below {}; the setting is only for tests against a local STS emulator (sts.endpoint on 127.0.0.1, localhost or [::1])",
                            shown(m.get_ref()),
                            dur(STS_MIN_SESSION),
                            STS_MIN_SESSION.as_secs()
                        ),
                    );
                } else {
                    sts.min_session = v;
                }
            }
        }
        sts.proxy = self.proxy(raw.proxy, raw.no_proxy);
        for (name, switch, out) in [
            ("use_fips", raw.use_fips, &mut sts.use_fips),
            ("use_dualstack", raw.use_dualstack, &mut sts.use_dualstack),
        ] {
            let Some(switch) = switch else { continue };
            if *switch.get_ref() && sts.endpoint.is_some() {
                self.at(
                    switch.span(),
                    format!(
                        "sts.{name} = true with sts.endpoint: the SDK's endpoint rules choose the FIPS or dual-stack endpoint of the region only when no endpoint URL is given; drop endpoint, or write the URL you want there and drop {name}"
                    ),
                );
            }
            *out = *switch.get_ref();
        }
        sts
    }

    /// `node_identity`, and whether `credentials_file` and `profile` agree with it.
    fn node_identity(&mut self, sts: &mut StsSettings, raw: Option<Str>) {
        let file = sts.credentials_file.is_some();
        let Some(raw) = raw else {
            sts.identity = if file {
                NodeIdentity::CredentialsFile
            } else {
                NodeIdentity::DefaultChain
            };
            return;
        };
        let Some(identity) = NodeIdentity::ALL
            .into_iter()
            .find(|i| i.name() == raw.get_ref())
        else {
            let names: Vec<_> = NodeIdentity::ALL.iter().map(|i| i.name()).collect();
            self.at(
                raw.span(),
                format!(
                    "sts.node_identity {} is not an identity source aws-role knows: expected one of {}",
                    shown(raw.get_ref()),
                    names.join(", ")
                ),
            );
            return;
        };
        sts.identity = identity;
        let problem = match identity {
            NodeIdentity::CredentialsFile if !file => {
                Some("needs sts.credentials_file, the file that holds the node's profile")
            }
            NodeIdentity::InstanceProfile if file || sts.profile.is_some() => Some(
                "takes no sts.credentials_file or sts.profile: the instance's role comes from IMDS alone; drop them, or use node_identity = \"credentials-file\" with credential_source = Ec2InstanceMetadata in the profile",
            ),
            NodeIdentity::DefaultChain if file => Some(
                "takes no sts.credentials_file: the default chain reads root's own files; drop it, or use node_identity = \"credentials-file\"",
            ),
            _ => None,
        };
        if let Some(problem) = problem {
            self.at(
                raw.span(),
                format!("sts.node_identity = {} {problem}", shown(identity.name())),
            );
        }
    }

    /// `proxy` and `no_proxy`. A message never quotes the user name or password of a proxy URL.
    fn proxy(&mut self, url: Option<Str>, no_proxy: Option<Spanned<Vec<Str>>>) -> ProxySetting {
        let mut rules = Vec::new();
        let no_proxy_span = no_proxy.as_ref().map(Spanned::span);
        for rule in no_proxy.map(Spanned::into_inner).unwrap_or_default() {
            if is_no_proxy_rule(rule.get_ref()) {
                rules.push(rule.into_inner());
            } else {
                self.at(
                    rule.span(),
                    format!(
                        "sts.no_proxy: {} is not a host, domain, IP address or CIDR block (one per string, e.g. [\".example.com\", \"10.0.0.0/8\"])",
                        shown(rule.get_ref())
                    ),
                );
            }
        }
        let Some(url) = url else {
            if let Some(span) = no_proxy_span {
                self.at(span, "sts.no_proxy is set but sts.proxy is not: name the proxy, e.g. proxy = \"http://proxy.example.com:3128\"".into());
            }
            return ProxySetting::Direct;
        };
        match Proxy::parse(url.get_ref(), rules) {
            Ok(p) => ProxySetting::Map(p),
            Err(why) => {
                self.at(
                    url.span(),
                    format!(
                        "sts.proxy {} is not a proxy URL: {why}; expected e.g. \"http://proxy.example.com:3128\"",
                        shown(&redacted(url.get_ref()))
                    ),
                );
                ProxySetting::Direct
            }
        }
    }

    fn refresh(&mut self, raw: RawRefresh) -> RefreshSettings {
        let mut refresh = RefreshSettings::default();
        if let Some(d) = raw.lead {
            refresh.lead = self.duration("refresh.lead", &d, REFRESH_LEAD_MIN, REFRESH_LEAD_MAX);
        }
        if let Some(d) = raw.jitter {
            refresh.jitter =
                self.duration("refresh.jitter", &d, Duration::ZERO, REFRESH_JITTER_MAX);
        }
        if let Some(d) = raw.scan_interval {
            refresh.scan_interval = self.duration(
                "refresh.scan_interval",
                &d,
                SCAN_INTERVAL_MIN,
                SCAN_INTERVAL_MAX,
            );
        }
        if let Some(d) = raw.orphan_grace {
            refresh.orphan_grace =
                self.duration("refresh.orphan_grace", &d, Duration::ZERO, ORPHAN_GRACE_MAX);
        }
        if let Some(n) = raw.concurrency {
            match u32::try_from(*n.get_ref()) {
                Ok(v) if (1..=REFRESH_CONCURRENCY_MAX).contains(n.get_ref()) => {
                    refresh.concurrency = v;
                }
                _ => self.at(
                    n.span(),
                    format!(
                        "refresh.concurrency = {} is out of range: expected 1 to {REFRESH_CONCURRENCY_MAX}",
                        n.get_ref()
                    ),
                ),
            }
        }
        refresh
    }

    fn slurm(&mut self, raw: RawSlurm) -> SlurmSettings {
        let mut slurm = SlurmSettings::default();
        if let Some(b) = raw.end_time_from_scontrol {
            slurm.end_time_from_scontrol = b;
        }
        if let Some(p) = raw.scontrol {
            slurm.scontrol = self.absolute_path("slurm.scontrol", p);
        }
        if let Some(d) = raw.scontrol_timeout {
            slurm.scontrol_timeout = self.duration(
                "slurm.scontrol_timeout",
                &d,
                SCONTROL_TIMEOUT_MIN,
                SCONTROL_TIMEOUT_MAX,
            );
        }
        slurm
    }

    fn endpoint(&mut self, raw: RawEndpoint) -> EndpointSettings {
        let mut endpoint = EndpointSettings::default();
        if let Some(b) = raw.enabled {
            endpoint.enabled = b;
        }
        if let Some(l) = raw.listen {
            match l.get_ref().parse::<std::net::SocketAddr>() {
                Err(_) => self.at(
                    l.span(),
                    format!(
                        "endpoint.listen = {} is not an address and port: expected e.g. \"{DEFAULT_ENDPOINT_LISTEN}\" or \"[::1]:941\"",
                        shown(l.get_ref())
                    ),
                ),
                Ok(a) if !is_sdk_http_address(a.ip()) => self.at(
                    l.span(),
                    format!(
                        "endpoint.listen = {} is not an address the AWS SDKs accept for a plain-http credentials endpoint: expected a loopback address (127.0.0.0/8, ::1) or 169.254.170.2, 169.254.170.23, fd00:ec2::23",
                        shown(l.get_ref())
                    ),
                ),
                Ok(a) if a.port() == 0 || a.port() >= 1024 => self.at(
                    l.span(),
                    format!(
                        "endpoint.listen = {} has port {}: expected a port from 1 to 1023, which only root can bind, so that no user can take it first and answer other jobs with credentials of their own",
                        shown(l.get_ref()),
                        a.port()
                    ),
                ),
                Ok(a) => endpoint.listen = a,
            }
        }
        let mut count = |what: &str, n: Option<Spanned<i64>>, into: &mut u32| {
            if let Some(n) = n {
                match u32::try_from(*n.get_ref()) {
                    Ok(v) if (1..=ENDPOINT_CONNECTIONS_MAX).contains(n.get_ref()) => *into = v,
                    _ => self.at(
                        n.span(),
                        format!(
                            "{what} = {} is out of range: expected 1 to {ENDPOINT_CONNECTIONS_MAX}",
                            n.get_ref()
                        ),
                    ),
                }
            }
        };
        count(
            "endpoint.max_connections",
            raw.max_connections,
            &mut endpoint.max_connections,
        );
        count(
            "endpoint.max_connections_per_user",
            raw.max_connections_per_user,
            &mut endpoint.max_connections_per_user,
        );
        endpoint
    }

    fn node(&mut self, raw: RawNode) -> NodeSettings {
        NodeSettings {
            base_dir: raw.base_dir.map_or_else(
                || PathBuf::from(DEFAULT_BASE_DIR),
                |p| self.absolute_path("node.base_dir", p),
            ),
            credential_helper: raw.credential_helper.map_or_else(
                || PathBuf::from(DEFAULT_CREDENTIAL_HELPER),
                |p| self.absolute_path("node.credential_helper", p),
            ),
            jobs_may_reach_imds: raw.jobs_may_reach_imds.unwrap_or(false),
        }
    }

    fn defaults(&mut self, raw: RawDefaults, min_session: Duration) -> Option<Defaults> {
        let max_session = raw.max_session.map_or(DEFAULT_MAX_SESSION, |d| {
            self.duration("defaults.max_session", &d, min_session, SESSION_MAX)
        });
        let margin = raw.margin.map_or(DEFAULT_MARGIN, |d| {
            self.duration("defaults.margin", &d, Duration::ZERO, MARGIN_MAX)
        });
        let session_name = self.session_name(
            "defaults.session_name",
            raw.session_name,
            DEFAULT_SESSION_NAME,
        );
        let pbs_session_name = self.session_name(
            "defaults.pbs_session_name",
            raw.pbs_session_name,
            DEFAULT_PBS_SESSION_NAME,
        );
        Some(Defaults {
            max_session,
            margin,
            session_name: session_name?,
            pbs_session_name: pbs_session_name?,
        })
    }

    fn session_name(&mut self, what: &str, raw: Option<Str>, default: &str) -> Option<Template> {
        match raw {
            Some(t) => match Template::parse(t.get_ref()) {
                Ok(template) => Some(template),
                Err(e) => {
                    self.at(t.span(), format!("{what}: {e}"));
                    None
                }
            },
            None => match Template::parse(default) {
                Ok(template) => Some(template),
                Err(e) => {
                    self.nowhere(format!(
                        "internal error: the built-in {what} is refused: {e}"
                    ));
                    None
                }
            },
        }
    }

    fn queues(
        &mut self,
        what: &str,
        raw: BTreeMap<Str, Spanned<RawQueue>>,
        roles: &[String],
    ) -> BTreeMap<String, QueueDefault> {
        let mut out = BTreeMap::new();
        for (name, q) in raw {
            let n = name.get_ref();
            let len = n.chars().count();
            if !(1..=QUEUE_NAME_MAX).contains(&len)
                || n.chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == ',')
            {
                self.at(
                    name.span(),
                    format!(
                        "{what}: {} cannot be a partition or queue name: expected 1 to {QUEUE_NAME_MAX} characters without spaces or commas",
                        shown(n)
                    ),
                );
            }
            let at = format!("{what}.{n}");
            let span = q.span();
            match q.into_inner().default_role {
                None => self.at(
                    span,
                    format!("[{at}] has no default_role: it is required (the name of a role of this map)"),
                ),
                Some(role) => {
                    let default_role = self.reference(&format!("{at}.default_role"), role, roles);
                    out.insert(name.into_inner(), QueueDefault { default_role });
                }
            }
        }
        out
    }

    fn pbs(&mut self, raw: RawPbs, roles: &[String]) -> PbsSettings {
        PbsSettings {
            default_role: raw
                .default_role
                .map(|r| self.reference("pbs.default_role", r, roles)),
            queues: self.queues("pbs.queues", raw.queues, roles),
        }
    }

    fn reference(&mut self, what: &str, role: Str, roles: &[String]) -> String {
        if !roles.iter().any(|r| r == role.get_ref()) {
            let known = if roles.is_empty() {
                "the map defines no roles".to_string()
            } else {
                format!("roles: {}", roles.join(", "))
            };
            self.at(
                role.span(),
                format!(
                    "{what} = {} names no role of this map (dangling reference); {known}",
                    shown(role.get_ref())
                ),
            );
        }
        role.into_inner()
    }

    /// A duration from `min` to `max`, both included; `min` stands in for a bad one.
    pub(super) fn duration(
        &mut self,
        what: &str,
        d: &Str,
        min: Duration,
        max: Duration,
    ) -> Duration {
        self.checked_duration(what, d, min, max).unwrap_or(min)
    }

    /// The same, `None` when it was refused (and the problem recorded).
    fn checked_duration(
        &mut self,
        what: &str,
        d: &Str,
        min: Duration,
        max: Duration,
    ) -> Option<Duration> {
        let value = d.get_ref();
        match parse_human(value) {
            Err(e) => {
                self.at(
                    d.span(),
                    format!("{what} = {} is not a duration: {e}", shown(value)),
                );
                None
            }
            Ok(v) if v < min || v > max => {
                self.at(
                    d.span(),
                    format!(
                        "{what} = {} is out of range: expected {} to {}",
                        shown(value),
                        dur(min),
                        dur(max)
                    ),
                );
                None
            }
            Ok(v) => Some(v),
        }
    }

    fn absolute_path(&mut self, what: &str, p: Str) -> PathBuf {
        let path = p.get_ref();
        if !path.starts_with('/') || path.contains('\0') {
            self.at(
                p.span(),
                format!(
                    "{what} {} is not an absolute path: expected a path starting with /",
                    shown(path)
                ),
            );
        }
        PathBuf::from(p.into_inner())
    }
}

// ---------------------------------------------------------------------------------------
// Small checks, written by hand.

/// An AWS region name: `[a-z]{2,4}(-[a-z]+)+-[0-9]+` (`us-east-1`, `us-gov-west-1`, and
/// the European Sovereign Cloud's `eusc-de-east-1`).
pub(super) fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return false;
    };
    (2..=4).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && !middle.is_empty()
        && middle
            .iter()
            .all(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
}

pub(super) fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            !rest.is_empty() && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// `Err(why)` unless `s` is `http://<IP address>[:port]` with no path: the instance-metadata
/// service is plain HTTP on the node's own link (`169.254.169.254`, `fd00:ec2::254`), or a
/// test's emulator on loopback; anywhere else its answer, the node's own credentials, would
/// cross a network unencrypted.
fn imds_endpoint(s: &str) -> Result<(), &'static str> {
    let Some(authority) = s.strip_prefix("http://") else {
        return Err("is not an http:// URL (the instance-metadata service speaks plain HTTP)");
    };
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    let addr: std::net::IpAddr =
        match authority.parse::<std::net::SocketAddr>() {
            Ok(a) if a.port() != 0 => a.ip(),
            Ok(_) => return Err("has port 0"),
            Err(_) => match authority
                .strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(authority)
                .parse()
            {
                Ok(ip) => ip,
                Err(_) => return Err(
                    "is not http:// and an IP address with an optional port, and nothing after it",
                ),
            },
        };
    let imds: [std::net::IpAddr; 2] = [
        std::net::Ipv4Addr::new(169, 254, 169, 254).into(),
        std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254).into(),
    ];
    if imds.contains(&addr) || addr.is_loopback() {
        Ok(())
    } else {
        Err("is neither the instance-metadata service's address nor loopback")
    }
}

/// An `http://` or `https://` URL whose host is exactly `127.0.0.1`, `localhost` or
/// `[::1]`, with an optional port and path: a local STS emulator, never real STS.
pub(super) fn is_loopback_url(s: &str) -> bool {
    if !is_http_url(s) {
        return false;
    }
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or_default();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let port = ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .find_map(|host| authority.strip_prefix(host));
    match port {
        Some("") => true,
        Some(p) => p.strip_prefix(':').is_some_and(|digits| {
            (1..=5).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && digits.parse::<u16>().is_ok()
        }),
        None => false,
    }
}

/// Role, user, group and account names: 1 to 64 characters of `[A-Za-z0-9._-]`.
pub(crate) fn is_name(s: &str) -> bool {
    (1..=NAME_MAX).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// User and group names as the node's NSS gives them: local ones (`alice`) and a
/// directory service's (SSSD's `alice@example.com`, winbind's `EXAMPLE\alice`, `domain
/// users`), matched exactly, byte for byte. Refused: an empty name or one over
/// [`NSS_NAME_MAX`] bytes, a control character (a newline would forge a log line), `:`
/// (the field separator of passwd and group: no database gives it), and a space at
/// either end (a typo that could never match).
pub fn is_nss_name(s: &str) -> bool {
    (1..=NSS_NAME_MAX).contains(&s.len())
        && !s.chars().any(|c| c.is_control() || c == ':')
        && s.trim() == s
}

pub(super) fn has_aws_prefix(s: &str) -> bool {
    s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
}

/// Characters of a (parsed, hence well-formed) template outside its placeholders.
pub(super) fn literal_len(template: &str) -> usize {
    let mut inside = false;
    let mut n = 0;
    for c in template.chars() {
        match c {
            '{' => inside = true,
            '}' => inside = false,
            _ if !inside => n += 1,
            _ => {}
        }
    }
    n
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(super) fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Keeps a message on one line whatever the file contained.
pub(super) fn one_line(s: &str) -> String {
    crate::text::one_line(s, usize::MAX)
}
