//! The node's own AWS identity: where the credentials that sign its STS calls come from
//! (`[sts] node_identity`), fetched within the call's deadline, and described for
//! `--check-config` and `--check-node`.
//!
//! The sources are the SDK's own providers, never re-implemented here: a profile of the
//! map's `credentials_file` (static keys, `credential_process`, or a `role_arn` with its
//! `source_profile` or `credential_source`), the instance profile over IMDSv2, or the SDK's
//! default chain. This module chooses and configures them, bounds them by the deadline,
//! keeps what expires for reuse, and says in words which one a node uses.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_sdk_sts::config::{Region, SharedHttpClient};
use aws_types::os_shim_internal::{Env, Fs};

use super::StsError;
use crate::map::{NodeIdentity, StsSettings, IMDS_ENDPOINT};
use crate::node::{Finding, Level};
use crate::proxy::ProxySetting;

/// STS allows a session of at most one hour to credentials that are themselves a role's
/// session ("role chaining"): an instance profile's, a `role_arn` profile's, IAM Roles
/// Anywhere's.
pub const ROLE_CHAIN_MAX: Duration = Duration::from_secs(3600);

/// Credentials that expire sooner than this are fetched anew rather than reused.
const REUSE_MARGIN: Duration = Duration::from_secs(10 * 60);

/// How many `source_profile` hops a description follows (the SDK refuses loops itself).
const HOPS_MAX: usize = 8;

/// Which source, in the words of a map and a profile file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `aws_access_key_id` in the profile: long-term keys (an IAM user's).
    StaticKeys { profile: String },
    /// `credential_process` in the profile; `program` is its first word only (the rest
    /// may name key files or tokens).
    Process { profile: String, program: String },
    /// `role_arn` in the profile: the node's call is itself an AssumeRole's session.
    RoleArn {
        profile: String,
        role_arn: String,
        from: Box<Source>,
    },
    /// `credential_source = <name>` under a `role_arn`.
    CredentialSource(String),
    /// An SSO or web-identity profile: the SDK's, undescribed here.
    Other { profile: String, what: &'static str },
    /// The instance profile, over IMDSv2 at this endpoint.
    InstanceProfile { endpoint: String },
    /// The SDK's default chain (environment, root's files, web identity, ECS, IMDS).
    DefaultChain,
}

impl Source {
    /// Whether the node's credentials are a role's session, so that AssumeRole is role
    /// chaining and capped at [`ROLE_CHAIN_MAX`]; `None` when only the credentials tell
    /// (a `credential_process` may print either kind).
    pub fn role_chained(&self) -> Option<bool> {
        match self {
            Source::StaticKeys { .. } => Some(false),
            Source::RoleArn { .. } | Source::InstanceProfile { .. } => Some(true),
            Source::CredentialSource(s) if s == "Ec2InstanceMetadata" || s == "EcsContainer" => {
                Some(true)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::StaticKeys { profile } => {
                write!(f, "static keys (aws_access_key_id) of profile {profile}")
            }
            Source::Process { profile, program } => {
                write!(f, "credential_process {program} of profile {profile}")
            }
            Source::RoleArn {
                profile,
                role_arn,
                from,
            } => write!(f, "role_arn {role_arn} of profile {profile}, from {from}"),
            Source::CredentialSource(s) => write!(f, "credential_source {s}"),
            Source::Other { profile, what } => write!(f, "{what} of profile {profile}"),
            Source::InstanceProfile { endpoint } => {
                write!(f, "the instance profile, over IMDSv2 at {endpoint}")
            }
            Source::DefaultChain => write!(f, "the SDK's default chain"),
        }
    }
}

/// The node's source as the map and its credentials file say; `Err` names the file and
/// what is wrong with it (unreadable, no such profile, a profile with no credentials).
pub async fn describe(sts: &StsSettings) -> Result<Source, String> {
    match sts.identity {
        NodeIdentity::InstanceProfile => Ok(Source::InstanceProfile {
            endpoint: sts.imds().to_string(),
        }),
        NodeIdentity::DefaultChain => Ok(Source::DefaultChain),
        NodeIdentity::CredentialsFile => {
            let Some(path) = &sts.credentials_file else {
                return Err("node_identity = \"credentials-file\" without credentials_file".into());
            };
            let files = EnvConfigFiles::builder()
                .with_file(EnvConfigFileKind::Credentials, path)
                .build();
            let selected = sts.profile.clone().map(Cow::Owned);
            // An empty environment: the prolog has none, and AWS_PROFILE must not choose.
            let set =
                aws_config::profile::load(&Fs::real(), &Env::from_slice(&[]), &files, selected)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            let mut name = set.selected_profile().to_string();
            let mut chain: Vec<(String, String)> = Vec::new();
            let base = loop {
                let Some(p) = set.get_profile(&name) else {
                    return Err(format!("{}: there is no profile {name}", path.display()));
                };
                if let Some(arn) = p.get("role_arn") {
                    chain.push((name.clone(), arn.to_string()));
                    if let Some(s) = p.get("credential_source") {
                        break Source::CredentialSource(s.to_string());
                    }
                    match p.get("source_profile") {
                        Some(next) if next != name && chain.len() < HOPS_MAX => {
                            name = next.to_string();
                            continue;
                        }
                        // `source_profile` naming itself: its own keys are the base.
                        Some(next) if next == name && p.get("aws_access_key_id").is_some() => {
                            break Source::StaticKeys { profile: name };
                        }
                        _ => {
                            return Err(format!(
                                "{}: profile {name} has role_arn but no usable source_profile or credential_source",
                                path.display()
                            ))
                        }
                    }
                }
                if p.get("aws_access_key_id").is_some() {
                    break Source::StaticKeys { profile: name };
                }
                if let Some(cmd) = p.get("credential_process") {
                    let program = cmd.split_whitespace().next().unwrap_or_default();
                    break Source::Process {
                        profile: name,
                        program: crate::text::one_line(program, 200),
                    };
                }
                if p.get("sso_session").is_some() || p.get("sso_start_url").is_some() {
                    break Source::Other {
                        profile: name,
                        what: "SSO",
                    };
                }
                if p.get("web_identity_token_file").is_some() {
                    break Source::Other {
                        profile: name,
                        what: "web identity",
                    };
                }
                return Err(format!(
                    "{}: profile {name} has no credentials (aws_access_key_id, credential_process or role_arn)",
                    path.display()
                ));
            };
            Ok(chain
                .into_iter()
                .rev()
                .fold(base, |from, (profile, role_arn)| Source::RoleArn {
                    profile,
                    role_arn,
                    from: Box::new(from),
                }))
        }
    }
}

/// What `--check-config` says of the node's identity, in a line or two.
pub fn summary(sts: &StsSettings, source: &Result<Source, String>) -> String {
    let place = match (&sts.credentials_file, sts.identity) {
        (Some(f), NodeIdentity::CredentialsFile) => format!(" in {}", f.display()),
        _ => String::new(),
    };
    match source {
        Err(why) => format!("node identity: cannot be described: {why}"),
        Ok(s) => {
            let cap = match s.role_chained() {
                Some(true) => "; that is role chaining, so STS gives each job a session of at most 1 h (the refresher renews it)".to_string(),
                Some(false) => String::new(),
                None => "; if it gives a role's session (IAM Roles Anywhere does), STS caps each job's session at 1 h (the refresher renews it)".to_string(),
            };
            format!("node identity: {s}{place}{cap}")
        }
    }
}

/// `--check-node`'s findings: which source the node uses, and whether it works (a real
/// `GetCallerIdentity` with it); then, when the node is a role's session, the 1-h cap
/// that implies.
pub async fn findings(sts: &StsSettings) -> Vec<Finding> {
    const CHECK: &str = "node identity";
    let line = |level, detail: String| Finding {
        level,
        check: CHECK,
        detail,
    };
    let source = match describe(sts).await {
        Ok(s) => s,
        Err(why) => return vec![line(Level::Fail, why)],
    };
    let place = match (&sts.credentials_file, sts.identity) {
        (Some(f), NodeIdentity::CredentialsFile) => format!(" in {}", f.display()),
        _ => String::new(),
    };
    let arn = match super::caller_identity(sts).await {
        Ok(arn) => arn,
        Err(e) => return vec![line(Level::Fail, format!("{source}{place}: {e}"))],
    };
    let mut out = vec![line(
        Level::Ok,
        format!("{source}{place}: works, STS says this node is {arn}"),
    )];
    // The caller's ARN settles what the configuration cannot (a credential_process).
    if source.role_chained() == Some(true) || arn.contains(":assumed-role/") {
        out.push(Finding {
            level: Level::Info,
            check: "role chaining",
            detail: "the node is a role's session, so STS gives each job a session of at most 1 h; the refresher renews it (jobs need it running, or no job longer than 1 h)".into(),
        });
    }
    out
}

/// The node's credentials: from the cache while they last, else from the source, all
/// within `deadline`. The error names the source.
pub(crate) async fn credentials(
    sts: &StsSettings,
    http: SharedHttpClient,
    deadline: Duration,
) -> Result<aws_credential_types::Credentials, StsError> {
    let key = cache_key(sts);
    if let Some(c) = cached(&key) {
        return Ok(c);
    }
    let started = Instant::now();
    // One fetch at a time: the refresher's jobs share what the first one gets (a helper
    // is run once, not once per job), and while it runs, any child of this process that
    // was not there before is the source's (see `stop_new_children`).
    let _one = match tokio::time::timeout(deadline, FETCH.lock()).await {
        Ok(guard) => guard,
        Err(_) => {
            return Err(StsError::NodeCredentials(format!(
                "another fetch of them did not end within {} (sts.timeout); the source is {}",
                humantime::format_duration(deadline),
                what(sts)
            )))
        }
    };
    if let Some(c) = cached(&key) {
        return Ok(c);
    }
    let configured = deadline;
    let deadline = deadline.saturating_sub(started.elapsed());
    let before = children();
    let provider = provider(sts, http).await?;
    let got = match tokio::time::timeout(deadline, provider.provide_credentials()).await {
        Err(_) => {
            let stopped = stop_new_children(&before);
            Err(format!(
                "they did not come within {} (sts.timeout){}; the source is {}",
                humantime::format_duration(configured),
                match stopped {
                    0 => String::new(),
                    n => format!(", so the source's processes were killed ({n})"),
                },
                what(sts)
            ))
        }
        Ok(Err(e)) => Err(format!(
            "{}: {}",
            what(sts),
            crate::text::one_line(&super::chain(&e), 400)
        )),
        Ok(Ok(c)) => Ok(c),
    };
    let c = got.map_err(StsError::NodeCredentials)?;
    tracing::debug!(took = ?started.elapsed(), "node credentials fetched");
    if c.expiry().is_some() {
        *CACHE.lock().unwrap_or_else(PoisonError::into_inner) = Some((key, c.clone()));
    }
    Ok(c)
}

/// Serialises fetches of the node's credentials within a process.
static FETCH: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// This process's children now, from `/proc` (every `/proc/PID/stat` whose parent is us).
fn children() -> Vec<i32> {
    children_of(std::process::id() as i32)
}

fn children_of(parent: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| parent_of(*pid) == Some(parent))
        .collect()
}

/// The parent in `/proc/PID/stat`: the field after the command name, which is in
/// parentheses and may itself hold `)` and spaces (so the last `)` ends it).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Kills, with SIGKILL, every child of this process that `before` does not list, and
/// everything those started; returns how many processes were signalled.
///
/// The SDK runs a `credential_process` as `sh -c COMMAND` and, when its future is dropped
/// at the deadline, abandons the child without killing it: a hung helper (and anything
/// it started) would outlive the prolog, and pile up in the refresher, once per try.
/// Which children are the helper's follows from how the binaries run: a current-thread
/// runtime, fetches serialised by [`FETCH`], and every other child (scontrol) run and
/// waited for synchronously, so none of those can be alive while this code runs. A
/// helper that detaches itself (double fork, `setsid`) is out of reach.
///
/// Not in this crate's unit tests, whose threads start children of their own at any
/// moment (`core/tests/hung_helper.rs` proves it in a process of its own).
fn stop_new_children(before: &[i32]) -> usize {
    if cfg!(test) {
        return 0;
    }
    let mut doomed: Vec<i32> = children()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    let mut i = 0;
    while i < doomed.len() {
        let below = children_of(doomed[i]);
        doomed.extend(below);
        i += 1;
    }
    for pid in &doomed {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    if !doomed.is_empty() {
        tracing::warn!(
            killed = doomed.len(),
            "the node's credentials source did not answer in time; killed what it started"
        );
    }
    doomed.len()
}

/// The source in a few words, for an error (no file is read to say it).
fn what(sts: &StsSettings) -> String {
    match (sts.identity, &sts.credentials_file) {
        (NodeIdentity::CredentialsFile, Some(f)) => format!(
            "profile {} of {}",
            sts.profile.as_deref().unwrap_or("default"),
            f.display()
        ),
        (NodeIdentity::InstanceProfile, _) => {
            format!("the instance profile (IMDSv2 at {})", sts.imds())
        }
        _ => "the SDK's default chain".into(),
    }
}

/// Credentials that expire, kept for reuse by later calls of this process (the
/// refresher's): an instance profile, a `credential_process` or a broker role is asked
/// once an hour or so, not once a job. Keys that never expire are read anew each time, so
/// a rotated file takes effect at once.
static CACHE: Mutex<Option<(String, aws_credential_types::Credentials)>> = Mutex::new(None);

fn cache_key(sts: &StsSettings) -> String {
    format!(
        "{:?}|{:?}|{:?}|{}|{}|{:?}|{}|{}",
        sts.identity,
        sts.credentials_file,
        sts.profile,
        sts.imds(),
        sts.region,
        sts.endpoint,
        sts.use_fips,
        sts.use_dualstack
    )
}

fn cached(key: &str) -> Option<aws_credential_types::Credentials> {
    let guard = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let (k, c) = guard.as_ref()?;
    let fresh = c
        .expiry()
        .is_some_and(|e| e > SystemTime::now() + REUSE_MARGIN);
    (k == key && fresh).then(|| c.clone())
}

/// An IMDSv2 client for the map's endpoint, never through a proxy (the service is on the
/// node's own link).
fn imds_client(sts: &StsSettings, direct: &ProviderConfig) -> aws_config::imds::Client {
    let b = aws_config::imds::Client::builder().configure(direct);
    match b.endpoint(sts.imds()) {
        Ok(b) => b.build(),
        // The map checked the URL; were it still refused, the SDK's default is
        // 169.254.169.254, which is what an unset imds_endpoint means anyway.
        Err(_) => aws_config::imds::Client::builder()
            .configure(direct)
            .build(),
    }
}

/// The SDK's provider for the map's source. `http` carries STS calls (through the proxy,
/// if any); `direct` carries the instance-metadata service's.
async fn provider(
    sts: &StsSettings,
    http: SharedHttpClient,
) -> Result<SharedCredentialsProvider, StsError> {
    let direct = ProviderConfig::without_region().with_http_client(super::http_client(
        crate::ca::trust_for(Some(IMDS_ENDPOINT)),
        &ProxySetting::Direct,
    )?);
    let imds = || {
        ImdsCredentialsProvider::builder()
            .configure(&direct)
            .imds_client(imds_client(sts, &direct))
            .build()
    };
    let region = Region::new(sts.region.clone());
    // The providers' own STS calls (a profile's role_arn, web identity) get our HTTP
    // client, region and endpoint switches: without a client they could only fail (and a
    // debug build's SDK asserts at once that they have one).
    let conf = ProviderConfig::without_region()
        .with_region(Some(region))
        .with_http_client(http.clone())
        .with_use_fips(Some(sts.use_fips))
        .with_use_dual_stack(Some(sts.use_dualstack));
    match (sts.identity, &sts.credentials_file) {
        (NodeIdentity::CredentialsFile, Some(path)) => {
            let files = EnvConfigFiles::builder()
                .with_file(EnvConfigFileKind::Credentials, path)
                .build();
            let mut b = ProfileFileCredentialsProvider::builder()
                .configure(&conf)
                .profile_files(files)
                .with_custom_provider("Ec2InstanceMetadata", imds());
            if let Some(p) = &sts.profile {
                b = b.profile_name(p);
            }
            Ok(SharedCredentialsProvider::new(b.build()))
        }
        (NodeIdentity::InstanceProfile, _) => Ok(SharedCredentialsProvider::new(imds())),
        _ => {
            // SSO and web identity are https whatever the STS endpoint is: a plain-http
            // emulator's client has no CA certificates to trust.
            let conf = match sts.endpoint.as_deref() {
                Some(e) if crate::ca::is_plain_http(e) => {
                    conf.with_http_client(super::http_client(crate::ca::system(), &sts.proxy)?)
                }
                _ => conf,
            };
            let mut b = DefaultCredentialsChain::builder()
                .configure(conf)
                .imds_client(imds_client(sts, &direct));
            if let Some(p) = &sts.profile {
                b = b.profile_name(p);
            }
            Ok(SharedCredentialsProvider::new(b.build().await))
        }
    }
}

#[cfg(test)]
mod tests;
