//! The site's role map: which AWS roles jobs may assume, and who may ask for which.
//!
//! The map is a TOML file (default [`DEFAULT_PATH`]) that the prolog reads as root; every key
//! is documented in `role-map.example.toml` at the root of the repository. Loading checks
//! everything once — unknown keys, ARNs, durations, templates, session policies, tags,
//! dangling role references — and reports *every* mistake with file, line and column, so an
//! administrator fixes the file in one pass and a node never discovers a bad map at job time.
//!
//! A role without any allow list is valid: nobody may request it, but it can still be the
//! default role of a partition or PBS queue.

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::job::Scheduler;
use crate::proxy::{is_no_proxy_rule, redacted, Proxy, ProxySetting};
use crate::session::{is_sts_char, is_tag_char, Template};
use crate::walltime::parse_human;

/// Where the prolog looks for the map unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/aws-role/role-map.toml";

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(8);
const TIMEOUT_MIN: Duration = Duration::from_secs(1);
const TIMEOUT_MAX: Duration = Duration::from_secs(120);
const DEFAULT_MAX_ATTEMPTS: u32 = 8;
const MAX_ATTEMPTS_MAX: i64 = 10;
/// Where job directories go when the map does not say (and when it cannot be read).
pub const DEFAULT_BASE_DIR: &str = "/run/aws-role";

/// Where job directories are: `override_dir` (a command-line override) if given, else the
/// map's `[node] base_dir`, else — with no usable map, so that cleanup and failure records
/// still land where jobs look — [`DEFAULT_BASE_DIR`].
pub fn base_dir(override_dir: Option<&Path>, map: Option<&RoleMap>) -> PathBuf {
    match (override_dir, map) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(m)) => m.node.base_dir.clone(),
        (None, None) => PathBuf::from(DEFAULT_BASE_DIR),
    }
}
const DEFAULT_CREDENTIAL_HELPER: &str = "/usr/libexec/aws-role/aws-role-credentials";
/// One hour: the role-chaining cap, the safe default when the node itself holds role credentials.
const DEFAULT_MAX_SESSION: Duration = Duration::from_secs(3600);
/// The shortest `DurationSeconds` real STS accepts (900 s): the default of `[sts]
/// min_session` and the only value allowed unless the endpoint is a local emulator.
pub const STS_MIN_SESSION: Duration = crate::walltime::MIN_SESSION;
/// The longest `DurationSeconds` STS accepts (12 h).
const SESSION_MAX: Duration = crate::walltime::MAX_SESSION;
/// `[sts] min_session` against a local STS emulator may go down to this.
const MIN_SESSION_FLOOR: Duration = Duration::from_secs(1);
const DEFAULT_MARGIN: Duration = Duration::from_secs(5 * 60);
const MARGIN_MAX: Duration = Duration::from_secs(3600);
const DEFAULT_SESSION_NAME: &str = "slurm-{job_id}-{task}";
const DEFAULT_PBS_SESSION_NAME: &str = "pbs-{job_id}";

/// `[refresh]` defaults and inclusive limits.
const DEFAULT_REFRESH_LEAD: Duration = Duration::from_secs(20 * 60);
const REFRESH_LEAD_MIN: Duration = Duration::from_secs(1);
const REFRESH_LEAD_MAX: Duration = Duration::from_secs(6 * 3600);
const DEFAULT_REFRESH_JITTER: Duration = Duration::from_secs(5 * 60);
const REFRESH_JITTER_MAX: Duration = Duration::from_secs(3600);
const DEFAULT_SCAN_INTERVAL: Duration = Duration::from_secs(30);
const SCAN_INTERVAL_MIN: Duration = Duration::from_secs(1);
const SCAN_INTERVAL_MAX: Duration = Duration::from_secs(10 * 60);
const DEFAULT_ORPHAN_GRACE: Duration = Duration::from_secs(3600);
const ORPHAN_GRACE_MAX: Duration = Duration::from_secs(30 * 86_400);
const DEFAULT_REFRESH_CONCURRENCY: u32 = 8;
const REFRESH_CONCURRENCY_MAX: i64 = 64;

/// `[slurm]` defaults and inclusive limits.
const DEFAULT_SCONTROL: &str = "/usr/bin/scontrol";
const DEFAULT_SCONTROL_TIMEOUT: Duration = Duration::from_secs(2);
const SCONTROL_TIMEOUT_MIN: Duration = Duration::from_millis(100);
const SCONTROL_TIMEOUT_MAX: Duration = Duration::from_secs(30);

/// IAM and STS limits.
const ARN_MAX: usize = 2048;
const IAM_ROLE_NAME_MAX: usize = 64;
const NAME_MAX: usize = 64;
/// The longest user or group name accepted: Linux's `LOGIN_NAME_MAX` (256 with its NUL).
pub const NSS_NAME_MAX: usize = 255;
const QUEUE_NAME_MAX: usize = 128;
/// Plain text of the inline session policy and the managed policies' ARNs together.
pub(crate) const POLICY_MAX: usize = 2048;
/// Managed session policies (`PolicyArns`) of one AssumeRole.
pub(crate) const POLICY_ARNS_MAX: usize = 10;
const IAM_POLICY_NAME_MAX: usize = 128;
const SOURCE_IDENTITY_MIN: usize = 2;
const SOURCE_IDENTITY_MAX: usize = 64;
pub(crate) const TAGS_MAX: usize = 50;
const TAG_KEY_MAX: usize = 128;
const TAG_VALUE_MAX: usize = 256;

/// The whole site map, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMap {
    /// The file it came from (for messages).
    pub source: PathBuf,
    pub sts: StsSettings,
    pub node: NodeSettings,
    /// `[refresh]`; its defaults when the file has no such table.
    pub refresh: RefreshSettings,
    /// `[slurm]`; its defaults when the file has no such table.
    pub slurm: SlurmSettings,
    /// `[endpoint]`; its defaults when the file has no such table.
    pub endpoint: EndpointSettings,
    pub defaults: Defaults,
    /// Key: the role name users pass to `--aws-role`.
    pub roles: BTreeMap<String, Role>,
    /// `[partitions.NAME]`: the role a Slurm job in that partition gets when it asks for none.
    pub partitions: BTreeMap<String, QueueDefault>,
    pub pbs: PbsSettings,
}

/// `[sts]`: how the node talks to STS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsSettings {
    pub region: String,
    /// An `http://` or `https://` URL; `None` = the regional STS endpoint.
    pub endpoint: Option<String>,
    /// `node_identity`: where the node's own credentials come from.
    pub identity: NodeIdentity,
    /// An absolute path (only with [`NodeIdentity::CredentialsFile`]): static keys, a
    /// `credential_process`, or a `role_arn` with its `source_profile` or `credential_source`.
    pub credentials_file: Option<PathBuf>,
    pub profile: Option<String>,
    /// `imds_endpoint`: the instance-metadata service, `http://<ip>[:port]`; `None` = AWS's
    /// own addresses ([`IMDS_ENDPOINT`], and `http://[fd00:ec2::254]` for `--check-node`).
    /// Tests set a loopback emulator here, so nothing probes the real link-local address.
    pub imds_endpoint: Option<String>,
    /// The whole call's deadline, every attempt, retry and backoff included; 1 s to 120 s,
    /// default 8 s.
    pub timeout: Duration,
    /// 1 to 10, default 5.
    pub max_attempts: u32,
    /// The shortest session ever asked for, and the lower bound of every `max_session`;
    /// default 15 min ([`STS_MIN_SESSION`], the least real STS accepts). Only a local STS
    /// emulator (an `endpoint` on `127.0.0.1`, `localhost` or `[::1]`) allows less, down to 1 s.
    pub min_session: Duration,
    /// `proxy` and `no_proxy`: the proxy of every STS call (never of IMDS).
    pub proxy: ProxySetting,
    /// `use_fips`: the region's FIPS endpoint, chosen by the SDK's endpoint rules (only
    /// without `endpoint`); default false.
    pub use_fips: bool,
    /// `use_dualstack`: the region's dual-stack (IPv4 and IPv6) endpoint, likewise.
    pub use_dualstack: bool,
    /// `node_rate`: at most this many STS calls a second leave this node (its prologs,
    /// the refresher and `--check-node` together); `None` = no limit of the node's own.
    pub node_rate: Option<NodeRate>,
}

/// `[sts] node_rate`: the node's share of the account's STS rate, and the file its
/// processes keep their shared schedule in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRate {
    /// Calls a second, 1 to [`NODE_RATE_MAX`]; as many may go at once after a quiet second.
    pub per_second: u32,
    /// Beside `[node] base_dir`: `<base_dir>.sts-rate` (root's, 0600).
    pub file: PathBuf,
}

/// The highest `node_rate` accepted (calls a second).
pub const NODE_RATE_MAX: u32 = 10_000;
/// What a call paced by `node_rate` keeps of its deadline for itself: a slot later than
/// the deadline less this is refused.
pub const NODE_RATE_CALL_TIME: Duration = Duration::from_secs(1);

/// The instance-metadata service's IPv4 address, as an endpoint URL.
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// Its IPv6 address (Nitro instances with IPv6 enabled).
pub const IMDS_ENDPOINT_V6: &str = "http://[fd00:ec2::254]";
/// The instance metadata service, IPv4 and IPv6 (Nitro instances with IPv6 enabled), as
/// `--check-node` probes it unless `imds_endpoint` names another address.
pub const IMDS_ADDRS: [std::net::SocketAddr; 2] = [
    std::net::SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 169, 254)),
        80,
    ),
    std::net::SocketAddr::new(
        std::net::IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
        80,
    ),
];

/// `[sts] node_identity`: where the node finds the credentials it calls STS with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeIdentity {
    /// `credentials-file`: a profile of `credentials_file` (the default when it is set).
    CredentialsFile,
    /// `instance-profile`: the EC2 instance's role, from IMDSv2 at `imds_endpoint`.
    InstanceProfile,
    /// `default-chain`: the SDK's default chain, as root's environment and files give it
    /// (the default without `credentials_file`).
    DefaultChain,
}

impl NodeIdentity {
    pub const ALL: [NodeIdentity; 3] = [
        NodeIdentity::CredentialsFile,
        NodeIdentity::InstanceProfile,
        NodeIdentity::DefaultChain,
    ];

    /// Its name in the map.
    pub fn name(self) -> &'static str {
        match self {
            NodeIdentity::CredentialsFile => "credentials-file",
            NodeIdentity::InstanceProfile => "instance-profile",
            NodeIdentity::DefaultChain => "default-chain",
        }
    }
}

impl StsSettings {
    /// How long a call paced by `node_rate` may wait for its slot: the deadline less
    /// [`NODE_RATE_CALL_TIME`], kept for the call itself.
    pub fn slot_budget(&self) -> Duration {
        self.timeout.saturating_sub(NODE_RATE_CALL_TIME)
    }

    /// The instance-metadata endpoint the node's credentials and `--check-node` use.
    pub fn imds(&self) -> &str {
        self.imds_endpoint.as_deref().unwrap_or(IMDS_ENDPOINT)
    }

    /// The addresses `--check-node` probes for IMDS: `imds_endpoint`'s alone when the map
    /// sets it (a test's emulator), else AWS's IPv4 and IPv6 addresses.
    pub fn imds_addrs(&self) -> Vec<std::net::SocketAddr> {
        let Some(url) = &self.imds_endpoint else {
            return IMDS_ADDRS.to_vec();
        };
        let authority = url.trim_start_matches("http://").trim_end_matches('/');
        authority
            .parse::<std::net::SocketAddr>()
            .ok()
            .or_else(|| {
                let ip = authority.trim_start_matches('[').trim_end_matches(']');
                ip.parse().ok().map(|ip| std::net::SocketAddr::new(ip, 80))
            })
            .into_iter()
            .collect()
    }
}

/// `[node]`: where things live on a compute node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSettings {
    /// Absolute; default `/run/aws-role`.
    pub base_dir: PathBuf,
    /// Absolute; default `/usr/libexec/aws-role/aws-role-credentials`.
    pub credential_helper: PathBuf,
    /// Whether the site intends jobs to reach the instance metadata service (and with it
    /// the node's own role); default false, and `--check-node` FAILs when they can.
    pub jobs_may_reach_imds: bool,
}

/// `[refresh]`: how the refresher renews the credentials of running jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshSettings {
    /// Refresh a job's credentials this long before they expire; 1 s to 6 h, default 20 min.
    pub lead: Duration,
    /// A per-job spread on top of `lead`: a job is refreshed between `lead` and
    /// `lead + jitter` before expiry; 0 to 1 h, default 5 min.
    pub jitter: Duration,
    /// How often the job directories are rescanned; 1 s to 10 min, default 30 s.
    pub scan_interval: Duration,
    /// A job directory whose job ended (end time + margin) longer ago than this is removed
    /// (its epilog never ran); 0 to 30 days, default 1 h.
    pub orphan_grace: Duration,
    /// The most AssumeRole calls in flight at once; 1 to 64, default 8.
    pub concurrency: u32,
}

impl Default for RefreshSettings {
    /// The documented defaults, i.e. what a map without `[refresh]` gets.
    fn default() -> Self {
        RefreshSettings {
            lead: DEFAULT_REFRESH_LEAD,
            jitter: DEFAULT_REFRESH_JITTER,
            scan_interval: DEFAULT_SCAN_INTERVAL,
            orphan_grace: DEFAULT_ORPHAN_GRACE,
            concurrency: DEFAULT_REFRESH_CONCURRENCY,
        }
    }
}

/// `[slurm]`: Slurm specifics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmSettings {
    /// Whether a Slurm `Prolog=` (without the SPANK plugin) on a Slurm that does not give
    /// the prolog the job's end time (22.05) asks `scontrol show job` for it; default false.
    pub end_time_from_scontrol: bool,
    /// Absolute; default `/usr/bin/scontrol`.
    pub scontrol: PathBuf,
    /// How long `scontrol` may take; 100 ms to 30 s, default 2 s.
    pub scontrol_timeout: Duration,
}

impl Default for SlurmSettings {
    /// The documented defaults, i.e. what a map without `[slurm]` gets.
    fn default() -> Self {
        SlurmSettings {
            end_time_from_scontrol: false,
            scontrol: PathBuf::from(DEFAULT_SCONTROL),
            scontrol_timeout: DEFAULT_SCONTROL_TIMEOUT,
        }
    }
}

/// `[endpoint]`: the node-local credentials endpoint (`aws-role-endpoint`), which serves
/// each job its current credentials in the container-provider format for the tools that
/// cannot run a `credential_process`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSettings {
    /// Whether jobs are given the endpoint's variables (and a token); default true.
    pub enabled: bool,
    /// Where it listens: a loopback address or an ECS/EKS link-local one, on a port below
    /// 1024 (which no unprivileged user can take first); default [`DEFAULT_ENDPOINT_LISTEN`].
    pub listen: std::net::SocketAddr,
    /// The most connections open at once; 1 to 65536, default 1024.
    pub max_connections: u32,
    /// The most connections one user may have open at once; 1 to 65536, default 64.
    pub max_connections_per_user: u32,
}

/// `[endpoint] listen` unless the map says otherwise.
pub const DEFAULT_ENDPOINT_LISTEN: &str = "127.0.0.1:941";
const DEFAULT_ENDPOINT_CONNECTIONS: u32 = 1024;
const DEFAULT_ENDPOINT_CONNECTIONS_PER_USER: u32 = 64;
const ENDPOINT_CONNECTIONS_MAX: i64 = 65536;

impl Default for EndpointSettings {
    /// The documented defaults, i.e. what a map without `[endpoint]` gets.
    fn default() -> Self {
        EndpointSettings {
            enabled: true,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 941)),
            max_connections: DEFAULT_ENDPOINT_CONNECTIONS,
            max_connections_per_user: DEFAULT_ENDPOINT_CONNECTIONS_PER_USER,
        }
    }
}

/// Whether the AWS SDKs accept a plain-http container credentials endpoint on `ip`:
/// loopback, or the ECS (169.254.170.2) and EKS Pod Identity (169.254.170.23,
/// fd00:ec2::23) link-local addresses.
pub fn is_sdk_http_address(ip: std::net::IpAddr) -> bool {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    ip.is_loopback()
        || ip == IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2))
        || ip == IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23))
        || ip == IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23))
}

/// `[defaults]`: what applies to every role unless the role says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// Session cap of roles without their own `max_session`; `sts.min_session` (15 min
    /// unless testing against a local emulator) to 12 h, default 1 h.
    pub max_session: Duration,
    /// Added to the job's remaining time; 0 to 1 h, default 5 min.
    pub margin: Duration,
    /// Default `slurm-{job_id}-{task}`.
    pub session_name: Template,
    /// Default `pbs-{job_id}`.
    pub pbs_session_name: Template,
}

impl Defaults {
    /// The session name template of `scheduler`'s jobs, and the key that sets it.
    pub fn session_name_of(&self, scheduler: Scheduler) -> (&'static str, &Template) {
        match scheduler {
            Scheduler::Slurm => ("defaults.session_name", &self.session_name),
            Scheduler::Pbs => ("defaults.pbs_session_name", &self.pbs_session_name),
        }
    }
}

/// `[roles.NAME]`: one role jobs may assume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub arn: String,
    pub allow_users: Vec<String>,
    pub allow_groups: Vec<String>,
    pub allow_accounts: Vec<String>,
    /// `sts.min_session` (15 min unless testing against a local emulator) to 12 h;
    /// `None` = `defaults.max_session`.
    pub max_session: Option<Duration>,
    /// An inline session policy (a JSON object with a `Statement`).
    pub session_policy: Option<String>,
    pub source_identity: Option<Template>,
    /// Session tags, key → value template, in key order.
    pub tags: Vec<(String, Template)>,
    /// What the role's trust policy requires in `sts:ExternalId` (cross-account roles).
    pub external_id: Option<String>,
    /// Managed session policies (`PolicyArns`): IAM policy ARNs, at most 10.
    pub policy_arns: Vec<String>,
    /// Keys of `tags` that stay on the sessions of roles this session assumes in turn.
    pub transitive_tag_keys: Vec<String>,
}

/// `[partitions.NAME]` and `[pbs.queues.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDefault {
    pub default_role: String,
}

/// `[pbs]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PbsSettings {
    /// Fallback when the queue is unknown (the OpenPBS prologue is not told the queue) or
    /// has no entry in `queues`.
    pub default_role: Option<String>,
    /// `[pbs.queues.NAME]`.
    pub queues: BTreeMap<String, QueueDefault>,
}

impl Role {
    /// Whether anybody may request this role; without an allow list it is only usable as a
    /// partition or queue default.
    pub fn has_allow_list(&self) -> bool {
        !(self.allow_users.is_empty()
            && self.allow_groups.is_empty()
            && self.allow_accounts.is_empty())
    }

    /// Where this role's session would carry the job's account (`{account}`): in its
    /// SourceIdentity or session tags, or in the session name of `scheduler`'s jobs.
    pub fn account_placeholders(
        &self,
        defaults: &Defaults,
        scheduler: Scheduler,
    ) -> Vec<&'static str> {
        let (key, name) = defaults.session_name_of(scheduler);
        let mut at = Vec::new();
        if name.uses_account() {
            at.push(key);
        }
        if self
            .source_identity
            .as_ref()
            .is_some_and(|t| t.uses_account())
        {
            at.push("source_identity");
        }
        if self.tags.iter().any(|(_, t)| t.uses_account()) {
            at.push("tags");
        }
        at
    }

    /// The longest session this role may get: its own `max_session`, else the default.
    pub fn cap(&self, defaults: &Defaults) -> Duration {
        self.max_session.unwrap_or(defaults.max_session)
    }
}

/// Why a map was refused: every problem found, in file order.
#[derive(Debug, thiserror::Error)]
pub struct MapError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

/// One mistake in the map. `line` and `column` are 1-based; both are 0 when there is no
/// position (the file could not be read, or something is missing altogether).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for MapError {
    /// One line per problem: `{file}:{line}:{column}: {message}`, or `{file}: {message}`
    /// when the problem has no position.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if p.line == 0 {
                write!(f, "{}: {}", self.file.display(), p.message)?;
            } else {
                write!(
                    f,
                    "{}:{}:{}: {}",
                    self.file.display(),
                    p.line,
                    p.column,
                    p.message
                )?;
            }
        }
        Ok(())
    }
}

impl RoleMap {
    /// Reads and checks the map at `path`.
    pub fn load(path: &Path) -> Result<RoleMap, MapError> {
        match std::fs::read_to_string(path) {
            Ok(text) => RoleMap::parse(&text, path),
            Err(e) => Err(MapError {
                file: path.to_path_buf(),
                problems: vec![Problem {
                    line: 0,
                    column: 0,
                    message: one_line(&format!("cannot read: {e}")),
                }],
            }),
        }
    }

    /// Checks the map text `text`; `source` names it in messages.
    pub fn parse(text: &str, source: &Path) -> Result<RoleMap, MapError> {
        check::parse(text, source)
    }

    /// The roles whose decisions or sessions for jobs of `scheduler` depend on a job's
    /// account: an `allow_accounts` list, or `{account}` in the session name,
    /// SourceIdentity or a tag. Only when there are some must the node find out whether the
    /// scheduler vouches for accounts.
    pub fn account_roles(&self, scheduler: Scheduler) -> Vec<&str> {
        self.roles
            .iter()
            .filter(|(_, r)| {
                !r.allow_accounts.is_empty()
                    || !r.account_placeholders(&self.defaults, scheduler).is_empty()
            })
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// A human summary for `aws-role-prolog --check-config`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_summary(&mut out);
        out
    }

    fn write_summary(&self, out: &mut String) -> fmt::Result {
        let d = &self.defaults;
        writeln!(out, "role map {}", self.source.display())?;
        let endpoint = self.sts.endpoint.as_ref().map_or_else(
            || match (self.sts.use_fips, self.sts.use_dualstack) {
                (false, false) => "regional endpoint".to_string(),
                (true, false) => "regional FIPS endpoint".to_string(),
                (false, true) => "regional dual-stack endpoint".to_string(),
                (true, true) => "regional FIPS dual-stack endpoint".to_string(),
            },
            |e| format!("endpoint {e}"),
        );
        let creds = match (
            self.sts.identity,
            &self.sts.credentials_file,
            &self.sts.profile,
        ) {
            (NodeIdentity::CredentialsFile, Some(file), Some(p)) => {
                format!("{} (profile {p})", file.display())
            }
            (NodeIdentity::CredentialsFile, Some(file), None) => file.display().to_string(),
            (NodeIdentity::InstanceProfile, ..) => {
                format!("the instance profile (IMDSv2 at {})", self.sts.imds())
            }
            (_, _, Some(p)) => format!("the default chain (profile {p})"),
            (..) => "the default chain".to_string(),
        };
        writeln!(
            out,
            "sts: region {}, {endpoint}, node credentials from {creds}, deadline {} for all attempts, at most {} attempts, sessions of at least {}",
            self.sts.region,
            dur(self.sts.timeout),
            self.sts.max_attempts,
            dur(self.sts.min_session)
        )?;
        match &self.sts.proxy {
            ProxySetting::Direct => writeln!(
                out,
                "proxy: none (the prolog calls STS directly; the refresher uses HTTPS_PROXY/NO_PROXY if its environment has them)"
            )?,
            ProxySetting::Map(p) => writeln!(
                out,
                "proxy: {p}{} for every STS call (also the refresher's; proxy variables are ignored), bypassed for {}the instance-metadata addresses",
                if p.has_credentials() {
                    " (user name and password: set, not shown)"
                } else {
                    ""
                },
                if p.no_proxy().is_empty() {
                    String::new()
                } else {
                    format!("{} and ", p.no_proxy().join(", "))
                }
            )?,
            ProxySetting::Environment => writeln!(out, "proxy: from the environment")?,
        }
        match &self.sts.node_rate {
            None => writeln!(
                out,
                "node rate: none (each job's first STS call goes out at once; [sts] node_rate paces a node)"
            )?,
            Some(r) => writeln!(
                out,
                "node rate: at most {} STS calls a second from this node (its prologs, refresher and --check-node together), scheduled in {}",
                r.per_second,
                r.file.display()
            )?,
        }
        writeln!(
            out,
            "node: job directories under {}, credential helper {}, jobs {} reach IMDS",
            self.node.base_dir.display(),
            self.node.credential_helper.display(),
            if self.node.jobs_may_reach_imds {
                "may (jobs_may_reach_imds = true)"
            } else {
                "must not"
            }
        )?;
        let e = &self.endpoint;
        if e.enabled {
            writeln!(
                out,
                "endpoint: jobs get http://{}/v1/credentials/<job> and a token (aws-role-endpoint), at most {} connections, {} per user",
                e.listen, e.max_connections, e.max_connections_per_user
            )?;
        } else {
            writeln!(
                out,
                "endpoint: off (enabled = false): jobs get no endpoint variable"
            )?;
        }
        let r = &self.refresh;
        let when = if r.jitter.is_zero() {
            dur(r.lead).to_string()
        } else {
            format!("{} to {}", dur(r.lead), dur(r.lead + r.jitter))
        };
        writeln!(
            out,
            "refresh: {when} before expiry, job directories rescanned every {}, at most {} AssumeRole calls at once",
            dur(r.scan_interval),
            r.concurrency
        )?;
        writeln!(
            out,
            "  directories of jobs that ended over {} ago (end time + margin) are removed",
            dur(r.orphan_grace)
        )?;
        if self.slurm.end_time_from_scontrol {
            writeln!(
                out,
                "slurm: a Prolog= not told the job's end time asks {} show job (timeout {})",
                self.slurm.scontrol.display(),
                dur(self.slurm.scontrol_timeout)
            )?;
        } else {
            writeln!(
                out,
                "slurm: a Prolog= not told the job's end time does not ask scontrol (end_time_from_scontrol = false)"
            )?;
        }
        writeln!(
            out,
            "defaults: session cap {}, margin {}, session names {} (Slurm) and {} (PBS)",
            dur(d.max_session),
            dur(d.margin),
            d.session_name,
            d.pbs_session_name
        )?;
        writeln!(out, "roles ({}):", self.roles.len())?;
        for role in self.roles.values() {
            writeln!(out, "  {}: {}", role.name, role.arn)?;
            let own = if role.max_session.is_some() {
                ""
            } else {
                " (default)"
            };
            writeln!(out, "    cap {}{own}", dur(role.cap(d)))?;
            if role.has_allow_list() {
                let mut who = Vec::new();
                for (kind, list) in [
                    ("users", &role.allow_users),
                    ("groups", &role.allow_groups),
                    ("accounts", &role.allow_accounts),
                ] {
                    if !list.is_empty() {
                        who.push(format!("{kind} {}", list.join(", ")));
                    }
                }
                writeln!(out, "    may be requested by: {}", who.join("; "))?;
            } else {
                writeln!(
                    out,
                    "    may be requested by: nobody (partition/queue default only)"
                )?;
            }
            let uses = self.default_of(&role.name);
            if !uses.is_empty() {
                writeln!(out, "    default of: {}", uses.join(", "))?;
            } else if !role.has_allow_list() {
                writeln!(
                    out,
                    "    warning: no allow list and not the default of any partition or queue: no job can get it"
                )?;
            }
            if let Some(policy) = &role.session_policy {
                writeln!(
                    out,
                    "    session policy: {} characters",
                    policy.chars().count()
                )?;
            }
            if let Some(si) = &role.source_identity {
                writeln!(out, "    source identity: {si}")?;
            }
            if !role.tags.is_empty() {
                let tags: Vec<String> = role.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                writeln!(out, "    session tags: {}", tags.join(", "))?;
            }
            if !role.transitive_tag_keys.is_empty() {
                writeln!(
                    out,
                    "    transitive tag keys: {}",
                    role.transitive_tag_keys.join(", ")
                )?;
            }
            if !role.policy_arns.is_empty() {
                writeln!(
                    out,
                    "    managed session policies: {}",
                    role.policy_arns.join(", ")
                )?;
            }
            if let Some(id) = &role.external_id {
                writeln!(
                    out,
                    "    external id: set ({} characters; not shown)",
                    id.chars().count()
                )?;
            }
        }
        writeln!(out, "partition defaults:")?;
        if self.partitions.is_empty() {
            writeln!(out, "  (none)")?;
        }
        for (name, q) in &self.partitions {
            writeln!(out, "  {name} -> {}", q.default_role)?;
        }
        writeln!(out, "PBS queue defaults:")?;
        for (name, q) in &self.pbs.queues {
            writeln!(out, "  {name} -> {}", q.default_role)?;
        }
        match &self.pbs.default_role {
            Some(r) => writeln!(out, "  any other or unknown queue -> {r}")?,
            None => writeln!(out, "  any other or unknown queue -> no role")?,
        }
        Ok(())
    }

    /// Where `role` is a default, for the summary.
    fn default_of(&self, role: &str) -> Vec<String> {
        let mut uses: Vec<String> = self
            .partitions
            .iter()
            .filter(|(_, q)| q.default_role == role)
            .map(|(name, _)| format!("partition {name}"))
            .collect();
        uses.extend(
            self.pbs
                .queues
                .iter()
                .filter(|(_, q)| q.default_role == role)
                .map(|(name, _)| format!("PBS queue {name}")),
        );
        if self.pbs.default_role.as_deref() == Some(role) {
            uses.push("other PBS queues".into());
        }
        uses
    }
}

fn dur(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

mod check;
mod role;
pub(crate) use check::is_name;
pub use check::is_nss_name;
use check::one_line;

#[cfg(test)]
mod tests;
