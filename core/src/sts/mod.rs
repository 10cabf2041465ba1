//! AssumeRole against STS, with the node's own identity.
//!
//! Everything comes from the map's `[sts]` section, never from the process environment
//! (a Prolog has no PATH, HOME or `AWS_*`): region, endpoint, and the node's credentials
//! (a root-only credentials file, or else the default chain: instance profile and so on).
//! Throttling and transient failures are retried by the SDK's standard retry strategy
//! (exponential backoff with full jitter), all under one hard deadline; access errors are
//! not retried. When the deadline ends the retries, the error is the last attempt's own
//! failure (throttled, refused), not a bare "timeout". AWS's own limits are checked here before the call, because the test STS
//! (and the SDK) check almost nothing.
//!
//! [`identity`] is where the node's own credentials come from, the ones that sign these
//! calls; [`pace`] is the node's own rate (`[sts] node_rate`), whose slot each call takes
//! first.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_sts::config::SharedHttpClient;
use aws_sdk_sts::config::{ConfigBag, Intercept, Region, RuntimeComponents};
use aws_sdk_sts::error::{ConnectorError, ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_sdk_sts::types::{PolicyDescriptorType, Tag};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext};
use aws_smithy_http_client::Connector;
use aws_smithy_runtime_api::client::http::{http_client_fn, SharedHttpConnector};
use aws_smithy_types::timeout::TimeoutConfig;

use crate::ca;
use crate::creds::{rfc3339, Credentials, CredsError, Secret};
// STS's limits are the map's: it checks them when it is loaded.
use crate::map::{StsSettings, POLICY_ARNS_MAX, POLICY_MAX, TAGS_MAX};
use crate::proxy::ProxySetting;
use crate::session;
use crate::walltime::MAX_SESSION;
use identity::ROLE_CHAIN_MAX;

pub mod identity;
pub mod pace;

/// One AssumeRole call.
#[derive(Debug, Clone)]
pub struct AssumeRequest {
    pub role_arn: String,
    pub session_name: String,
    pub duration: Duration,
    pub source_identity: Option<String>,
    pub tags: Vec<(String, String)>,
    pub policy: Option<String>,
    /// `ExternalId` (cross-account roles); never put in a message.
    pub external_id: Option<String>,
    /// `PolicyArns`: managed session policies.
    pub policy_arns: Vec<String>,
    /// `TransitiveTagKeys`: keys of `tags`.
    pub transitive_tag_keys: Vec<String>,
}

/// Why no credentials came back. Messages are meant for the job's user and the node's
/// log; none contains a secret (STS error messages name ARNs, never keys, and a rejected
/// answer is described, never quoted).
#[derive(Debug, thiserror::Error)]
pub enum StsError {
    #[error("the request is outside AWS's limits: {0}")]
    Invalid(String),
    #[error("STS did not answer within {0:?} (after retries)")]
    Deadline(Duration),
    #[error("STS refused: {code}: {message}")]
    Denied { code: String, message: String },
    #[error("STS kept throttling the request until the retries ran out: {0}")]
    Throttled(String),
    /// The node's own credentials (the map's `credentials_file`, or the default chain)
    /// could not be loaded: no request was sent.
    #[error("STS was not called: this node's own AWS credentials are unusable: {0}")]
    NodeCredentials(String),
    /// The node's own rate (`[sts] node_rate`) had no slot before the deadline.
    #[error("STS was not called: {0}")]
    NodeRate(#[from] pace::PaceError),
    /// No connection (refused, no route, DNS): the reason in a few words.
    #[error("STS could not be reached: {0}")]
    Unreachable(String),
    /// An HTTP error that is neither a refusal nor throttling (a 500, a proxy's 502 page),
    /// as the last attempt got it.
    #[error("STS answered HTTP {status}{}", code_and_message(code.as_deref(), message))]
    Service {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// The call went through a proxy and failed where a proxy can fail it: no connection to
    /// the proxy, a tunnel it refused, a page of its own, or silence.
    #[error("through the proxy {proxy}: {source}")]
    Proxy {
        /// `scheme://host:port`, never its credentials.
        proxy: String,
        source: Box<StsError>,
    },
    /// The connection broke while the answer was coming in (a reset, an early close).
    #[error("the connection to STS broke while it answered: {0}")]
    Interrupted(String),
    #[error("STS sent a malformed answer: {0}")]
    Malformed(Unusable),
    /// An `Expiration` at or before this node's current time.
    #[error("STS returned credentials that had already expired (Expiration {expiration}); is this node's clock right?")]
    Expired { expiration: String },
    /// Real STS grants exactly the `DurationSeconds` asked for, or refuses: credentials that
    /// last less than half of it would expire under the job (or point at a skewed clock).
    #[error(
        "STS returned credentials that expire in {} s, far sooner than the {} s asked for; is this node's clock right?",
        remaining.as_secs(),
        requested.as_secs()
    )]
    TooShort {
        remaining: Duration,
        requested: Duration,
    },
}

/// What is wrong with an answer that came back complete at the HTTP level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// Not an AssumeRole response at all (not XML, or other XML).
    #[error("HTTP {status} with a body that is not an AssumeRole response")]
    NotAnAnswer { status: u16 },
    /// A required element is missing (the SDK fills it with an empty or zero default).
    #[error("it is incomplete (no {0}), as if cut short")]
    Incomplete(&'static str),
    /// The document stops before its end (the SDK would take a half element's text).
    #[error("it stops before </AssumeRoleResponse>, as if cut short")]
    Cut,
    #[error("an Expiration outside the representable range")]
    ExpirationRange,
    /// STS never issues more than asked for; much more means a broken or hostile peer.
    #[error("the credentials expire far later than requested")]
    TooLong,
    #[error("{0}")]
    Credentials(#[from] CredsError),
}

/// Refuses a success answer that is not a whole document.
///
/// The SDK's XML reader takes the text of an element that never closes: an answer cut
/// inside `<AccessKeyId>` (or any element that comes last) would give a truncated key and
/// otherwise plausible credentials. A whole answer ends with its root's closing tag.
#[derive(Debug)]
struct WholeAnswer;

/// The marker [`WholeAnswer`] fails an attempt with; [`classify`] finds it again.
#[derive(Debug, thiserror::Error)]
#[error("the answer stops before </AssumeRoleResponse>")]
struct CutAnswer;

impl Intercept for WholeAnswer {
    fn name(&self) -> &'static str {
        "aws-role::WholeAnswer"
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        // Only an answer the SDK took for a success: errors are classified on their own.
        if ctx.output_or_error().is_err() {
            return Ok(());
        }
        let body = ctx
            .response()
            .body()
            .bytes()
            .unwrap_or_default()
            .trim_ascii_end();
        // The two operations aws-role calls.
        if body.ends_with(b"</AssumeRoleResponse>")
            || body.ends_with(b"</GetCallerIdentityResponse>")
        {
            Ok(())
        } else {
            Err(Box::new(CutAnswer))
        }
    }
}

/// What the last finished attempt got, for when the deadline ends the retries.
///
/// The SDK reports only "timeout" when its operation deadline fires, even while it was
/// backing off after STS had answered `Throttling`, after the connection was refused, or
/// after an answer broke off.
/// A job's user should read that reason, not "did not answer". The slot is cleared when
/// an attempt starts, so an attempt the deadline cut off mid-flight leaves it empty (the
/// deadline then is the reason).
#[derive(Debug, Clone, Default)]
struct LastAttempt(Arc<Mutex<Option<StsError>>>);

impl LastAttempt {
    fn set(&self, why: Option<StsError>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = why;
    }

    fn take(&self) -> Option<StsError> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl Intercept for LastAttempt {
    fn name(&self) -> &'static str {
        "aws-role::LastAttempt"
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.set(None);
        Ok(())
    }

    fn read_after_attempt(
        &self,
        ctx: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let why = match ctx.output_or_error() {
            Some(Err(e)) => {
                if let Some(c) = e.as_connector_error().filter(|c| !c.is_timeout()) {
                    Some(unreachable(c))
                } else if let (Some(op), Some(resp)) = (
                    e.as_operation_error()
                        .and_then(|op| op.downcast_ref::<AssumeRoleError>()),
                    ctx.response(),
                ) {
                    let status = resp.status().as_u16();
                    // A success status the SDK could not decode is classified in full
                    // by `classify`; only STS's own error answers are kept here.
                    (!(200..300).contains(&status))
                        .then(|| service_error(status, op.code(), op.message().unwrap_or("")))
                } else if e.is_response_error() {
                    Some(interrupted(std::error::Error::source(e)))
                } else {
                    None
                }
            }
            _ => None,
        };
        self.set(why);
        Ok(())
    }
}

/// " (Code): message", leaving out what STS did not say.
fn code_and_message(code: Option<&str>, message: &str) -> String {
    match (code, message.is_empty()) {
        (Some(c), true) => format!(" ({c})"),
        (Some(c), false) => format!(" ({c}): {message}"),
        (None, true) => String::new(),
        (None, false) => format!(": {message}"),
    }
}

impl AssumeRequest {
    /// Checks the request against STS's documented limits; `min_session` is STS's
    /// [`crate::walltime::MIN_SESSION`] except against a local emulator (`[sts] min_session`).
    pub fn validate(&self, min_session: Duration) -> Result<(), StsError> {
        let bad = |m: String| Err(StsError::Invalid(m));
        if !session::is_valid_name(&self.session_name) {
            return bad(format!(
                "session name {:?} must be 2-64 characters of letters, digits and _+=,.@-",
                self.session_name
            ));
        }
        if self.duration < min_session || self.duration > MAX_SESSION {
            return bad(format!(
                "duration {} s must be between {} and {} s",
                self.duration.as_secs(),
                min_session.as_secs(),
                MAX_SESSION.as_secs()
            ));
        }
        if let Some(id) = &self.source_identity {
            if id.len() > session::MAX_LEN && id.chars().all(session::is_sts_char) {
                return bad(format!(
                    "the SourceIdentity for this job, {id:?}, is {} characters and STS accepts at most {}: it is not cut, since a cut one could be another user's; the administrators can shorten the role's source_identity template",
                    id.len(),
                    session::MAX_LEN
                ));
            }
            if !session::is_valid_name(id) || id.starts_with("aws:") {
                return bad(format!(
                    "SourceIdentity {id:?} must be 2-64 characters of letters, digits and _+=,.@- and not start with aws:"
                ));
            }
        }
        if self.tags.len() > TAGS_MAX {
            return bad(format!(
                "{} session tags, at most {TAGS_MAX}",
                self.tags.len()
            ));
        }
        for (k, v) in &self.tags {
            let key_ok =
                (1..=128).contains(&k.chars().count()) && k.chars().all(session::is_tag_char);
            let value_ok = v.chars().count() <= 256 && v.chars().all(session::is_tag_char);
            if key_ok && !value_ok && v.chars().all(session::is_tag_char) {
                return bad(format!(
                    "session tag {k:?} would be {} characters for this job and STS accepts at most 256: it is not cut, since a cut one could be another user's; the administrators can shorten the tag's template",
                    v.chars().count()
                ));
            }
            if !key_ok || !value_ok {
                return bad(format!("session tag {k:?} = {v:?} breaks the tag rules"));
            }
        }
        // STS counts the inline policy and the managed policies' ARNs together.
        let plain = self.policy.as_ref().map_or(0, |p| p.chars().count())
            + self
                .policy_arns
                .iter()
                .map(|a| a.chars().count())
                .sum::<usize>();
        if plain > POLICY_MAX {
            return bad(format!(
                "session policies of {plain} characters (inline policy and managed policy ARNs), at most {POLICY_MAX}"
            ));
        }
        if self.policy_arns.len() > POLICY_ARNS_MAX {
            return bad(format!(
                "{} managed session policies, at most {POLICY_ARNS_MAX}",
                self.policy_arns.len()
            ));
        }
        if let Some(a) = self.policy_arns.iter().find(|a| !a.starts_with("arn:")) {
            return bad(format!("managed session policy {a:?} is not an ARN"));
        }
        if self
            .external_id
            .as_deref()
            .is_some_and(|e| !session::is_valid_external_id(e))
        {
            return bad(format!(
                "the ExternalId must be {} to {} characters of letters, digits and _+=,.@:/-",
                session::EXTERNAL_ID_MIN,
                session::EXTERNAL_ID_MAX
            ));
        }
        for k in &self.transitive_tag_keys {
            if !self
                .tags
                .iter()
                .any(|(t, _)| t.to_lowercase() == k.to_lowercase())
            {
                return bad(format!(
                    "transitive tag key {k:?} is not a key of the session's tags"
                ));
            }
        }
        Ok(())
    }
}

/// An HTTP client, TLS by rustls with ring, trusting the CA certificates of `tls`, through
/// `proxy` when it names one.
pub(crate) fn http_client(
    tls: TlsContext,
    proxy: &ProxySetting,
) -> Result<SharedHttpClient, StsError> {
    let Some(proxy) = proxy.sdk_config().map_err(StsError::Invalid)? else {
        return Ok(aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .tls_context(tls)
            .build_https());
    };
    // The SDK's client builder has no proxy setting; its connector builder has. A client
    // asks for its connector once per attempt, with the same settings: built once, kept.
    let built: Arc<OnceLock<SharedHttpConnector>> = Arc::default();
    Ok(http_client_fn(move |settings, components| {
        built
            .get_or_init(|| {
                let mut b = Connector::builder().proxy_config(proxy.clone());
                b.set_connector_settings(Some(settings.clone()));
                b.set_sleep_impl(components.sleep_impl());
                SharedHttpConnector::new(
                    b.tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                        .tls_context(tls.clone())
                        .build(),
                )
            })
            .clone()
    }))
}

/// Builds an STS client from the map's settings only; `last` learns each attempt's outcome.
async fn client(settings: &StsSettings, last: LastAttempt) -> Result<Client, StsError> {
    // An http:// endpoint (a local emulator) needs no CA certificate: loading them is most
    // of a prolog's own time (core/src/ca.rs).
    let http = http_client(ca::trust_for(settings.endpoint.as_deref()), &settings.proxy)?;
    let region = Region::new(settings.region.clone());
    // The node's own credentials first, within the deadline: a source that hangs (a
    // credential_process, an IMDS that drops packets) is named as such, and what is left
    // of the deadline is the call's.
    let started = std::time::Instant::now();
    let node = identity::credentials(settings, http.clone(), settings.timeout).await?;
    // Then this node's slot, if it paces its calls: the wait is the deadline's too, and a
    // slot later than the deadline allows is refused at once (with a second left for the
    // call itself).
    if let Some(rate) = &settings.node_rate {
        let budget = settings.slot_budget().saturating_sub(started.elapsed());
        let wait = pace::reserve(&rate.file, rate.per_second, budget)?;
        if !wait.is_zero() {
            tracing::debug!(?wait, "waiting for this node's STS slot");
            tokio::time::sleep(wait).await;
        }
    }
    let left = settings
        .timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(500));
    let chained = node.session_token().is_some();
    let credentials = SharedCredentialsProvider::new(node);
    // Each attempt gets a share of the deadline, so a hung connection still leaves time
    // for a retry; the whole operation never outlives the deadline.
    let attempt = (left / 2).max(Duration::from_millis(500));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(attempt.min(Duration::from_secs(3)))
        .operation_attempt_timeout(attempt)
        .operation_timeout(left)
        .build();
    let retry = RetryConfig::standard()
        .with_max_attempts(settings.max_attempts)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(2));
    let mut conf = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(credentials)
        .http_client(http)
        .retry_config(retry)
        .timeout_config(timeouts)
        .interceptor(WholeAnswer)
        .interceptor(last);
    if let Some(url) = &settings.endpoint {
        conf = conf.endpoint_url(url);
    }
    // The SDK's endpoint rules pick the host for these (the map refuses them beside an
    // endpoint URL).
    conf = conf
        .use_fips(settings.use_fips)
        .use_dual_stack(settings.use_dualstack);
    Ok(Client {
        sts: aws_sdk_sts::Client::from_conf(conf.build()),
        chained,
        left,
    })
}

/// An STS client signed with the node's credentials.
struct Client {
    sts: aws_sdk_sts::Client,
    /// The node's credentials are a session (a role's, as a rule): AssumeRole is then role
    /// chaining, which STS caps at [`ROLE_CHAIN_MAX`].
    chained: bool,
    /// What is left of the deadline once the node's credentials came.
    left: Duration,
}

/// The endpoint URL the node's STS calls go to: the map's `endpoint`, or what the SDK's
/// endpoint rules give for its region, `use_fips` and `use_dualstack` (the regional
/// endpoint, never the global one); `Err` when the rules give none (FIPS where the
/// partition has no FIPS endpoint, say), with the SDK's reason.
pub async fn resolved_endpoint(settings: &StsSettings) -> Result<String, String> {
    use aws_sdk_sts::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    if let Some(url) = &settings.endpoint {
        return Ok(url.clone());
    }
    let params = Params::builder()
        .region(settings.region.clone())
        .use_fips(settings.use_fips)
        .use_dual_stack(settings.use_dualstack)
        .use_global_endpoint(false)
        .build()
        .map_err(|e| e.to_string())?;
    DefaultResolver::new()
        .resolve_endpoint(&params)
        .await
        .map(|e| e.url().to_string())
        .map_err(|e| e.to_string())
}

/// Assumes the role; returns checked credentials.
pub async fn assume_role(
    settings: &StsSettings,
    req: &AssumeRequest,
) -> Result<Credentials, StsError> {
    req.validate(settings.min_session)?;
    // The node's own keys: anyone who can read them can assume every job role, and anyone
    // who can replace them decides whose identity the node uses.
    if let Some(problems) = settings
        .credentials_file
        .as_deref()
        .and_then(|f| crate::perms::secret_file_problems(f).map(|p| (f, p)))
    {
        return Err(StsError::NodeCredentials(format!(
            "{} is not root's alone ({}); the administrators must make it root's 0600 in a directory only root can write",
            problems.0.display(),
            problems.1
        )));
    }
    // Where the call goes, for a message that names the proxy on the way.
    let target = resolved_endpoint(settings).await.unwrap_or_default();
    let last = LastAttempt::default();
    let client = client(settings, last.clone())
        .await
        .map_err(|e| through_proxy(settings, &target, e))?;
    // Role chaining: STS refuses more than an hour, whatever the role's own maximum.
    let duration = if client.chained {
        req.duration.min(ROLE_CHAIN_MAX)
    } else {
        req.duration
    };
    let mut call = client
        .sts
        .assume_role()
        .role_arn(&req.role_arn)
        .role_session_name(&req.session_name)
        .duration_seconds(duration.as_secs() as i32);
    if let Some(id) = &req.source_identity {
        call = call.source_identity(id);
    }
    for (k, v) in &req.tags {
        let tag = Tag::builder()
            .key(k)
            .value(v)
            .build()
            .map_err(|e| StsError::Invalid(e.to_string()))?;
        call = call.tags(tag);
    }
    if let Some(p) = &req.policy {
        call = call.policy(p);
    }
    if let Some(id) = &req.external_id {
        call = call.external_id(id);
    }
    for arn in &req.policy_arns {
        call = call.policy_arns(PolicyDescriptorType::builder().arn(arn).build());
    }
    for k in &req.transitive_tag_keys {
        call = call.transitive_tag_keys(k);
    }
    let out = bounded(settings, &target, &client, &last, call.send()).await?;
    let c = out
        .credentials
        .ok_or(StsError::Malformed(Unusable::Incomplete("Credentials")))?;
    checked(c, duration, SystemTime::now())
}

/// Who the node is to STS: `GetCallerIdentity` with the node's own credentials, as
/// `--check-node` asks it. Returns the caller's ARN.
pub async fn caller_identity(settings: &StsSettings) -> Result<String, StsError> {
    let target = resolved_endpoint(settings).await.unwrap_or_default();
    let last = LastAttempt::default();
    let client = client(settings, last.clone())
        .await
        .map_err(|e| through_proxy(settings, &target, e))?;
    let call = client.sts.get_caller_identity().send();
    let out = bounded(settings, &target, &client, &last, call).await?;
    Ok(out.arn.unwrap_or_default())
}

/// A call's outcome within what is left of the deadline, as an [`StsError`] that names the
/// last attempt's own failure and the proxy on the way.
async fn bounded<T, E>(
    settings: &StsSettings,
    target: &str,
    client: &Client,
    last: &LastAttempt,
    call: impl std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, StsError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    // Belt and braces: the SDK's operation timeout should fire first.
    let hard = client.left + Duration::from_secs(1);
    let out = match tokio::time::timeout(hard, call).await {
        Err(_) => Err(StsError::Deadline(settings.timeout)),
        Ok(r) => r.map_err(|e| classify(e, settings.timeout)),
    };
    // The deadline ran out between attempts: the last attempt's own failure is the reason.
    match out {
        Err(StsError::Deadline(d)) => Err(last.take().unwrap_or(StsError::Deadline(d))),
        other => other,
    }
    .map_err(|e| through_proxy(settings, target, e))
}

/// `e`, named with the proxy the call went through when the failure can be the proxy's
/// (STS's own answers, and what failed before any request, are left as they are).
fn through_proxy(settings: &StsSettings, target: &str, e: StsError) -> StsError {
    let proxy_may_have_failed = match &e {
        StsError::Unreachable(_) | StsError::Deadline(_) | StsError::Interrupted(_) => true,
        // A page of the proxy's own (407, 502, 503), not an STS error document.
        StsError::Service { code: None, .. } => true,
        _ => false,
    };
    // hyper-util's tunnel errors are not public types; their words are pinned by the tests.
    let e = match e {
        StsError::Unreachable(r) if r.ends_with("tunnel error: unsuccessful") => StsError::Unreachable(
            "the proxy refused to open a tunnel to it (its answer to CONNECT was not 200: its access rules, or STS unreachable from the proxy)".into(),
        ),
        StsError::Unreachable(r) if r.ends_with("tunnel error: proxy authorization required") => {
            StsError::Unreachable(
                "the proxy wants a user name and password (407): put them in sts.proxy, http://user:password@host:port".into(),
            )
        }
        other => other,
    };
    match settings.proxy.via(target) {
        Some(proxy) if proxy_may_have_failed => StsError::Proxy {
            proxy,
            source: Box::new(e),
        },
        _ => e,
    }
}

/// The credentials of an AssumeRole answer, if they are complete and usable for a session
/// of `requested` starting around `now`.
///
/// The SDK fills a missing required element with a default (an empty string, an
/// `Expiration` at the Unix epoch), so an answer cut short parses: such defaults are
/// reported as missing, not as credentials that expired in 1970.
fn checked(
    c: aws_sdk_sts::types::Credentials,
    requested: Duration,
    now: SystemTime,
) -> Result<Credentials, StsError> {
    let missing = |what| Err(StsError::Malformed(Unusable::Incomplete(what)));
    if c.access_key_id.is_empty() {
        return missing("AccessKeyId");
    }
    if c.secret_access_key.is_empty() {
        return missing("SecretAccessKey");
    }
    if c.session_token.is_empty() {
        return missing("SessionToken");
    }
    if c.expiration.secs() == 0 && c.expiration.subsec_nanos() == 0 {
        return missing("Expiration");
    }
    let expiration = SystemTime::try_from(c.expiration)
        .map_err(|_| StsError::Malformed(Unusable::ExpirationRange))?;
    let remaining = match expiration.duration_since(now) {
        Ok(left) if !left.is_zero() => left,
        _ => {
            return Err(StsError::Expired {
                expiration: rfc3339(expiration),
            })
        }
    };
    if remaining < requested / 2 {
        return Err(StsError::TooShort {
            remaining,
            requested,
        });
    }
    if remaining > requested + Duration::from_secs(600) {
        return Err(StsError::Malformed(Unusable::TooLong));
    }
    Credentials::new(
        c.access_key_id,
        Secret::new(c.secret_access_key),
        Secret::new(c.session_token),
        expiration,
    )
    .map_err(|e| StsError::Malformed(e.into()))
}

fn classify<E>(e: SdkError<E, HttpResponse>, deadline: Duration) -> StsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    // What went wrong under the SDK's own error (the HTTP or I/O error, the decoder's).
    let source = std::error::Error::source(&e);
    match &e {
        SdkError::TimeoutError(_) => StsError::Deadline(deadline),
        SdkError::DispatchFailure(_) if find_source::<CredentialsError>(source).is_some() => {
            StsError::NodeCredentials(
                find_source::<CredentialsError>(source)
                    .map(chain)
                    .unwrap_or_default(),
            )
        }
        SdkError::DispatchFailure(d) => {
            if d.is_timeout() {
                StsError::Deadline(deadline)
            } else {
                d.as_connector_error().map_or_else(
                    || StsError::Unreachable("dispatch failure".to_string()),
                    unreachable,
                )
            }
        }
        SdkError::ConstructionFailure(c) => StsError::Unreachable(format!("{c:?}")),
        SdkError::ResponseError(_) if find_source::<CutAnswer>(source).is_some() => {
            StsError::Malformed(Unusable::Cut)
        }
        // The answer's body could not be read (a decoding failure is a ServiceError).
        SdkError::ResponseError(_) => interrupted(source),
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            let err = s.err();
            // A success status the SDK could not decode: not STS's answer at all.
            if (200..300).contains(&status) {
                return StsError::Malformed(Unusable::NotAnAnswer { status });
            }
            service_error(status, err.code(), err.message().unwrap_or(""))
        }
        other => StsError::Unreachable(other.to_string()),
    }
}

/// No connection (refused, reset before an answer, no route): the reason in a few words.
fn unreachable(c: &ConnectorError) -> StsError {
    StsError::Unreachable(io_reason(c).unwrap_or_else(|| chain(c)))
}

/// The answer broke off while it was read; `source` is what broke it.
fn interrupted(source: Option<&(dyn std::error::Error + 'static)>) -> StsError {
    StsError::Interrupted(
        source
            .map(|e| io_reason(e).unwrap_or_else(|| chain(e)))
            .unwrap_or_else(|| "the answer could not be read".into()),
    )
}

/// STS's error answer with HTTP `status`, by its error code.
///
/// What the peer said is untrusted text (a proxy's error page, a forged answer): it is
/// escaped and cut here, once, so it reaches no log, record or job output raw.
fn service_error(status: u16, code: Option<&str>, message: &str) -> StsError {
    let message = crate::text::one_line(message, 300);
    let Some(code) = code.map(|c| crate::text::one_line(c, 64)) else {
        return StsError::Service {
            status,
            code: None,
            message,
        };
    };
    match code.as_str() {
        "AccessDenied"
        | "AccessDeniedException"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "RegionDisabledException" => StsError::Denied { code, message },
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => {
            StsError::Throttled(message)
        }
        _ => StsError::Service {
            status,
            code: Some(code),
            message,
        },
    }
}

/// The I/O error behind `e`, in a few words ("connection refused"), if there is one: the
/// layers above it (hyper, the connector) add nothing a reader needs.
fn io_reason(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            let words = match io.kind() {
                K::ConnectionRefused => "connection refused".to_string(),
                K::ConnectionReset => "connection reset by peer".to_string(),
                K::ConnectionAborted => "connection aborted".to_string(),
                K::UnexpectedEof => "the connection closed early".to_string(),
                K::BrokenPipe => "broken pipe".to_string(),
                K::HostUnreachable => "no route to host".to_string(),
                K::NetworkUnreachable => "network unreachable".to_string(),
                _ => return Some(chain(err)),
            };
            return Some(words);
        }
        cur = err.source();
    }
    None
}

/// `e` or the first of its sources that is a `T`.
fn find_source<'e, T: std::error::Error + 'static>(
    e: Option<&'e (dyn std::error::Error + 'static)>,
) -> Option<&'e (dyn std::error::Error + 'static)> {
    let mut cur = e;
    while let Some(err) = cur {
        if err.is::<T>() {
            return Some(err);
        }
        cur = err.source();
    }
    None
}

/// An error and its sources on one line (the connector's own Display is terse).
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::NodeIdentity;
    use crate::walltime::MIN_SESSION;

    fn req() -> AssumeRequest {
        AssumeRequest {
            role_arn: "arn:aws:iam::123456789012:role/x".into(),
            session_name: "slurm-42-0".into(),
            duration: Duration::from_secs(3600),
            source_identity: None,
            tags: vec![],
            policy: None,
            external_id: None,
            policy_arns: vec![],
            transitive_tag_keys: vec![],
        }
    }

    fn settings(endpoint: Option<&str>, credentials: &std::path::Path) -> StsSettings {
        StsSettings {
            region: "us-east-1".into(),
            endpoint: endpoint.map(Into::into),
            identity: NodeIdentity::CredentialsFile,
            credentials_file: Some(credentials.to_path_buf()),
            profile: None,
            imds_endpoint: None,
            timeout: Duration::from_secs(2),
            max_attempts: 1,
            min_session: MIN_SESSION,
            proxy: ProxySetting::Direct,
            use_fips: false,
            use_dualstack: false,
            node_rate: None,
        }
    }

    fn node_credentials() -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            f.path(),
            "[default]\naws_access_key_id = AKIDNODE000000000000\naws_secret_access_key = s\n",
        )
        .unwrap();
        f
    }

    /// Building a client builds its TLS configuration, trust store included, and the SDK
    /// panics on a CA certificate it cannot parse: every kind of endpoint must get through.
    #[tokio::test]
    async fn every_endpoint_gets_a_client() {
        let creds = node_credentials();
        for endpoint in [
            None,
            Some("https://sts.us-east-1.amazonaws.com"),
            Some("http://127.0.0.1:5059"),
        ] {
            let c = client(&settings(endpoint, creds.path()), LastAttempt::default())
                .await
                .unwrap();
            assert!(c.sts.config().http_client().is_some(), "{endpoint:?}");
        }
    }

    /// An https endpoint goes through TLS with the system's trust store: a peer that is not a
    /// TLS server is a connection failure, not a panic and not a plain-text request.
    #[tokio::test]
    async fn an_https_endpoint_speaks_tls() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let peer = std::thread::spawn(move || {
            // Never hang the test run: give up after 20 s.
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            let mut conn = loop {
                match listener.accept() {
                    Ok((conn, _)) => break conn,
                    Err(_) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(e) => panic!("no connection: {e}"),
                }
            };
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut hello = [0u8; 5];
            std::io::Read::read_exact(&mut conn, &mut hello).unwrap();
            let _ = std::io::Write::write_all(&mut conn, b"HTTP/1.1 400 Bad Request\r\n\r\n");
            hello
        });
        let creds = node_credentials();
        let endpoint = format!("https://127.0.0.1:{port}");
        let err = assume_role(&settings(Some(&endpoint), creds.path()), &req())
            .await
            .unwrap_err();
        assert!(matches!(err, StsError::Unreachable(_)), "{err:?}");
        // A TLS handshake record (22), TLS 1.x.
        let hello = peer.join().unwrap();
        assert_eq!(&hello[..2], &[22, 3], "{hello:?}");
    }

    #[test]
    fn aws_limits_are_enforced_before_the_call() {
        assert!(req().validate(MIN_SESSION).is_ok());
        let mut r = req();
        r.session_name = "x".into();
        assert!(r.validate(MIN_SESSION).is_err());
        let mut r = req();
        r.duration = Duration::from_secs(899);
        assert!(r.validate(MIN_SESSION).is_err());
        let mut r = req();
        r.duration = Duration::from_secs(43_201);
        assert!(r.validate(MIN_SESSION).is_err());
        let mut r = req();
        r.source_identity = Some("aws:alice".into());
        assert!(r.validate(MIN_SESSION).is_err());
        let mut r = req();
        r.policy = Some("x".repeat(2049));
        assert!(r
            .validate(MIN_SESSION)
            .unwrap_err()
            .to_string()
            .contains("2049"));
        let mut r = req();
        r.tags = (0..51).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(r.validate(MIN_SESSION).is_err());
        let mut r = req();
        r.tags = vec![("bad\nkey".into(), "v".into())];
        assert!(r.validate(MIN_SESSION).is_err());
        // A long directory name's SourceIdentity or tag is refused whole, not cut.
        let mut r = req();
        r.source_identity = Some("a".repeat(65));
        let e = r.validate(MIN_SESSION).unwrap_err().to_string();
        assert!(e.contains("65 characters") && e.contains("not cut"), "{e}");
        let mut r = req();
        r.tags = vec![("user".into(), "u".repeat(257))];
        let e = r.validate(MIN_SESSION).unwrap_err().to_string();
        assert!(e.contains("257 characters") && e.contains("not cut"), "{e}");
    }

    /// STS's limits on the cross-account parameters, checked before any call; the
    /// ExternalId is never quoted in the message.
    #[test]
    fn cross_account_limits() {
        let invalid = |r: &AssumeRequest| match r.validate(MIN_SESSION) {
            Err(StsError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        let mut r = req();
        r.external_id = Some("x".into());
        let m = invalid(&r);
        assert!(m.contains("2 to 1224"), "{m}");
        r.external_id = Some("has space".into());
        assert!(!invalid(&r).contains("has space"));
        r.external_id = Some("e".repeat(1224));
        assert!(r.validate(MIN_SESSION).is_ok());
        r.external_id = Some("e".repeat(1225));
        invalid(&r);

        let mut r = req();
        r.policy_arns = (0..11)
            .map(|i| format!("arn:aws:iam::123456789012:policy/p{i}"))
            .collect();
        assert!(invalid(&r).contains("11 managed session policies"));
        r.policy_arns.truncate(10);
        assert!(r.validate(MIN_SESSION).is_ok());
        // The inline policy and the ARNs share 2048 characters.
        r.policy = Some(format!(
            "{{\"Statement\":[],\"x\":\"{}\"}}",
            "y".repeat(1700)
        ));
        assert!(invalid(&r).contains("inline policy and managed policy ARNs"));

        let mut r = req();
        r.tags = vec![("Project".into(), "p".into())];
        r.transitive_tag_keys = vec!["project".into()];
        assert!(r.validate(MIN_SESSION).is_ok(), "keys match without case");
        r.transitive_tag_keys = vec!["cost".into()];
        assert!(invalid(&r).contains("not a key of the session's tags"));
    }

    fn sdk_creds(
        key: &str,
        expiration: aws_smithy_types::DateTime,
    ) -> aws_sdk_sts::types::Credentials {
        aws_sdk_sts::types::Credentials::builder()
            .access_key_id(key)
            .secret_access_key(SECRET)
            .session_token("VE9LRU4vVE9LRU4rVE9LRU49PQ==")
            .expiration(expiration)
            .build()
            .unwrap()
    }

    const SECRET: &str = "c2VjcmV0/c2VjcmV0+c2VjcmV0=";
    const HOUR: Duration = Duration::from_secs(3600);

    fn at(t: SystemTime) -> aws_smithy_types::DateTime {
        aws_smithy_types::DateTime::from(t)
    }

    #[test]
    fn only_complete_credentials_for_the_session_asked_for_are_taken() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let key = "ASIAEXAMPLE0000000000";
        let c = checked(sdk_creds(key, at(now + HOUR)), HOUR, now).unwrap();
        assert_eq!(c.expiration, now + HOUR);
        // STS answering a bit later than asked (clock skew, the call's own time) is fine.
        assert!(checked(
            sdk_creds(key, at(now + HOUR - Duration::from_secs(300))),
            HOUR,
            now
        )
        .is_ok());

        let cases: [(aws_sdk_sts::types::Credentials, &str); 6] = [
            // What the SDK makes of an answer cut short: defaults, not credentials from 1970.
            (
                sdk_creds(key, aws_smithy_types::DateTime::from_secs(0)),
                "incomplete (no Expiration)",
            ),
            (sdk_creds("", at(now + HOUR)), "incomplete (no AccessKeyId)"),
            (
                sdk_creds(key, at(now - Duration::from_secs(1))),
                "had already expired (Expiration 2027-01-15T07:59:59Z)",
            ),
            (sdk_creds(key, at(now)), "had already expired"),
            (
                sdk_creds(key, at(now + Duration::from_secs(30))),
                "expire in 30 s, far sooner than the 3600 s asked for",
            ),
            (
                sdk_creds(key, at(now + 2 * HOUR)),
                "far later than requested",
            ),
        ];
        for (c, want) in cases {
            let e = checked(c, HOUR, now).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains(SECRET), "{e}");
        }
        let mut bad = sdk_creds(key, at(now + HOUR));
        bad.secret_access_key = "a\nb".into();
        let e = checked(bad, HOUR, now).unwrap_err();
        assert!(
            matches!(e, StsError::Malformed(Unusable::Credentials(_))),
            "{e}"
        );
    }

    #[test]
    fn http_errors_name_their_status_and_leave_out_what_sts_did_not_say() {
        let e = StsError::Service {
            status: 500,
            code: Some("InternalFailure".into()),
            message: String::new(),
        };
        assert_eq!(e.to_string(), "STS answered HTTP 500 (InternalFailure)");
        let e = StsError::Service {
            status: 502,
            code: None,
            message: String::new(),
        };
        assert_eq!(e.to_string(), "STS answered HTTP 502");
        let e = StsError::Service {
            status: 400,
            code: Some("ValidationError".into()),
            message: "too long".into(),
        };
        assert_eq!(
            e.to_string(),
            "STS answered HTTP 400 (ValidationError): too long"
        );
    }

    /// What a canned peer does with the one request it gets.
    enum Peer {
        /// Sends these bytes, then closes.
        Say(String),
        /// Sends these bytes, then resets the connection.
        Reset(String),
        /// Never answers (the connection stays open).
        Silent,
    }

    /// A one-request HTTP peer on a free loopback port; returns its URL.
    fn peer(p: Peer) -> String {
        peer_for_all(vec![p]).0
    }

    /// A loopback HTTP peer for any number of requests: the i-th gets `answers[i]`, the last
    /// one over and over. Returns its URL and how many requests it has read.
    fn peer_for_all(answers: Vec<Peer>) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::Write;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let _ = read_request(&mut s);
                let i = seen.fetch_add(1, Ordering::SeqCst);
                match &answers[i.min(answers.len() - 1)] {
                    Peer::Say(out) => {
                        let _ = s.write_all(out.as_bytes());
                    }
                    Peer::Reset(out) => {
                        let _ = s.write_all(out.as_bytes());
                        let linger = nix::libc::linger {
                            l_onoff: 1,
                            l_linger: 0,
                        };
                        nix::sys::socket::setsockopt(
                            &s,
                            nix::sys::socket::sockopt::Linger,
                            &linger,
                        )
                        .unwrap();
                    }
                    Peer::Silent => held.push(s),
                }
            }
        });
        (url, count)
    }

    /// A loopback URL nothing listens on (the port was bound and released).
    fn refused_url() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    }

    /// Reads a whole request: answering early makes the client see a reset.
    fn read_request(s: &mut std::net::TcpStream) -> String {
        use std::io::Read;
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).unwrap_or(0);
            req.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&req).to_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if req.len() >= end + 4 + len {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        String::from_utf8_lossy(&req).into_owned()
    }

    /// A one-request peer that answers `out` and keeps the request it read, as sent.
    fn recording_peer(out: String) -> (String, Arc<std::sync::Mutex<String>>) {
        use std::io::Write;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let got = Arc::new(std::sync::Mutex::new(String::new()));
        let keep = got.clone();
        std::thread::spawn(move || {
            if let Some(Ok(mut s)) = l.incoming().next() {
                *keep.lock().unwrap() = read_request(&mut s);
                let _ = s.write_all(out.as_bytes());
            }
        });
        (url, got)
    }

    fn http(status: &str, body: &str) -> String {
        format!("HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
    }

    fn answer(expiration: SystemTime) -> String {
        format!(
            r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>ASIAEXAMPLE0000000000</AccessKeyId><SecretAccessKey>{SECRET}</SecretAccessKey><SessionToken>VE9LRU4vVE9LRU4rVE9LRU49PQ==</SessionToken><Expiration>{}</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:slurm-42-0</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/x/slurm-42-0</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>"#,
            rfc3339(expiration)
        )
    }

    async fn assume_at(url: String) -> Result<Credentials, StsError> {
        assume_with(url, &req()).await
    }

    async fn assume_with(url: String, r: &AssumeRequest) -> Result<Credentials, StsError> {
        assume_via(url, ProxySetting::Direct, r).await
    }

    async fn assume_via(
        url: String,
        proxy: ProxySetting,
        r: &AssumeRequest,
    ) -> Result<Credentials, StsError> {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("node-credentials");
        std::fs::write(&creds, "[default]\naws_access_key_id = AKIDNODE000000000000\naws_secret_access_key = nodesecret\n").unwrap();
        // Root's alone, as assume_role requires of the node's keys.
        std::fs::set_permissions(&creds, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let settings = StsSettings {
            region: "us-east-1".into(),
            endpoint: Some(url),
            identity: NodeIdentity::CredentialsFile,
            credentials_file: Some(creds),
            profile: None,
            imds_endpoint: None,
            timeout: Duration::from_secs(5),
            max_attempts: 1,
            min_session: MIN_SESSION,
            proxy,
            use_fips: false,
            use_dualstack: false,
            node_rate: None,
        };
        assume_role(&settings, r).await
    }

    /// The cross-account parameters reach STS under the Query API's names, every one of
    /// them: `ExternalId`, `PolicyArns.member.N.arn`, `TransitiveTagKeys.member.N`.
    #[tokio::test]
    async fn external_id_policy_arns_and_transitive_keys_are_on_the_wire() {
        let (url, got) = recording_peer(http("200 OK", &answer(SystemTime::now() + HOUR)));
        let mut r = req();
        r.external_id = Some("vendor:4711/x".into());
        r.policy_arns = vec![
            "arn:aws:iam::123456789012:policy/lab/read-bucket".into(),
            "arn:aws:iam::aws:policy/ReadOnlyAccess".into(),
        ];
        r.tags = vec![
            ("project".into(), "p1".into()),
            ("cost".into(), "c9".into()),
        ];
        r.transitive_tag_keys = vec!["project".into()];
        assume_with(url, &r).await.unwrap();
        let sent = got.lock().unwrap().clone();
        let body = sent.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Action"), Some("AssumeRole"), "{body}");
        assert_eq!(get("ExternalId"), Some("vendor:4711/x"), "{body}");
        assert_eq!(
            get("PolicyArns.member.1.arn"),
            Some("arn:aws:iam::123456789012:policy/lab/read-bucket")
        );
        assert_eq!(
            get("PolicyArns.member.2.arn"),
            Some("arn:aws:iam::aws:policy/ReadOnlyAccess")
        );
        assert_eq!(get("TransitiveTagKeys.member.1"), Some("project"));
        assert_eq!(get("TransitiveTagKeys.member.2"), None);
        assert_eq!(get("Tags.member.1.Key"), Some("project"));
    }

    /// Node credentials that are a session (here keys with a session token, as an
    /// instance profile, a broker role or IAM Roles Anywhere give): the AssumeRole on the
    /// wire asks for at most 3600 s, STS's cap on role chaining, however long the job; with
    /// long-term keys the job's own duration goes out.
    #[tokio::test]
    async fn a_session_as_the_nodes_identity_asks_for_at_most_an_hour() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = req();
        r.duration = Duration::from_secs(4 * 3600);
        for (file, want, lasts) in [
            (
                "aws_access_key_id = ASIANODE\naws_secret_access_key = s\naws_session_token = t\n",
                "3600",
                HOUR,
            ),
            (
                "aws_access_key_id = AKIDNODE\naws_secret_access_key = s\n",
                "14400",
                4 * HOUR,
            ),
        ] {
            let creds = dir.path().join("node");
            std::fs::write(&creds, format!("[default]\n{file}")).unwrap();
            std::fs::set_permissions(&creds, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            let (url, got) = recording_peer(http("200 OK", &answer(SystemTime::now() + lasts)));
            assume_role(&settings(Some(&url), &creds), &r)
                .await
                .unwrap();
            let sent = got.lock().unwrap().clone();
            let body = sent.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
                .into_owned()
                .collect();
            let duration = form
                .iter()
                .find(|(n, _)| n == "DurationSeconds")
                .map(|(_, v)| v.as_str());
            assert_eq!(duration, Some(want), "{file}");
        }
    }

    fn map_proxy(url: &str, no_proxy: &[&str]) -> ProxySetting {
        ProxySetting::Map(
            crate::proxy::Proxy::parse(url, no_proxy.iter().map(|r| r.to_string()).collect())
                .unwrap(),
        )
    }

    /// With a proxy, an http:// endpoint (a test emulator) is asked through it in absolute
    /// form, with the proxy's credentials as Basic authentication; straight to the endpoint
    /// would have been refused.
    #[tokio::test]
    async fn a_proxy_carries_the_call_with_its_credentials() {
        let (proxy, got) = recording_peer(http("200 OK", &answer(SystemTime::now() + HOUR)));
        let proxy = proxy.replace("http://", "http://svc-hpc:pr0xy-pw@");
        let endpoint = refused_url();
        assume_via(endpoint.clone(), map_proxy(&proxy, &[]), &req())
            .await
            .unwrap();
        let sent = got.lock().unwrap().clone();
        assert!(
            sent.starts_with(&format!("POST {endpoint}/ HTTP/1.1\r\n")),
            "{sent}"
        );
        // base64("svc-hpc:pr0xy-pw")
        assert!(
            sent.contains("proxy-authorization: Basic c3ZjLWhwYzpwcjB4eS1wdw=="),
            "{sent}"
        );
    }

    /// An https endpoint is reached through a CONNECT tunnel (the proxy sees the host name,
    /// never the request); a proxy that refuses the tunnel, or is not there, is named.
    #[tokio::test]
    async fn an_https_call_tunnels_and_a_failing_proxy_is_named() {
        let (proxy, got) =
            recording_peer("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".into());
        let endpoint = "https://sts.aws-role.invalid".to_string();
        let e = assume_via(endpoint, map_proxy(&proxy, &[]), &req())
            .await
            .unwrap_err();
        let sent = got.lock().unwrap().clone();
        assert!(
            sent.starts_with("CONNECT sts.aws-role.invalid:443 HTTP/1.1\r\n"),
            "{sent}"
        );
        let shown = proxy.clone();
        assert!(
            matches!(&e, StsError::Proxy { proxy, .. } if *proxy == shown),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!("through the proxy {proxy}: STS could not be reached: the proxy refused to open a tunnel to it (its answer to CONNECT was not 200: its access rules, or STS unreachable from the proxy)")
        );
        let (proxy, _) = recording_peer(
            "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n".into(),
        );
        let e = assume_via(
            "https://sts.aws-role.invalid".into(),
            map_proxy(&proxy, &[]),
            &req(),
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string().ends_with("STS could not be reached: the proxy wants a user name and password (407): put them in sts.proxy, http://user:password@host:port"),
            "{e}"
        );
        let dead = refused_url();
        let e = assume_via(refused_url(), map_proxy(&dead, &[]), &req())
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("through the proxy {dead}: STS could not be reached: connection refused")
        );
    }

    fn regional(region: &str, fips: bool, dualstack: bool) -> StsSettings {
        let mut s = settings(None, std::path::Path::new("/nonexistent"));
        s.region = region.into();
        s.use_fips = fips;
        s.use_dualstack = dualstack;
        s
    }

    /// `use_fips` and `use_dualstack` resolve, by the SDK's own endpoint rules, to the
    /// endpoints AWS documents for STS (docs.aws.amazon.com/general/latest/gr/sts.html and
    /// the FIPS and dual-stack endpoint pages).
    #[tokio::test]
    async fn fips_and_dualstack_are_the_documented_endpoints() {
        for (region, fips, dual, url) in [
            (
                "us-east-1",
                false,
                false,
                "https://sts.us-east-1.amazonaws.com",
            ),
            (
                "us-east-1",
                true,
                false,
                "https://sts-fips.us-east-1.amazonaws.com",
            ),
            ("us-east-1", false, true, "https://sts.us-east-1.api.aws"),
            (
                "us-east-1",
                true,
                true,
                "https://sts-fips.us-east-1.api.aws",
            ),
            (
                "us-west-2",
                true,
                false,
                "https://sts-fips.us-west-2.amazonaws.com",
            ),
            (
                "eu-west-1",
                false,
                false,
                "https://sts.eu-west-1.amazonaws.com",
            ),
            // GovCloud's regional STS endpoints are FIPS endpoints already.
            (
                "us-gov-west-1",
                false,
                false,
                "https://sts.us-gov-west-1.amazonaws.com",
            ),
            (
                "us-gov-west-1",
                true,
                false,
                "https://sts.us-gov-west-1.amazonaws.com",
            ),
            (
                "cn-north-1",
                false,
                false,
                "https://sts.cn-north-1.amazonaws.com.cn",
            ),
            (
                "cn-north-1",
                false,
                true,
                "https://sts.cn-north-1.api.amazonwebservices.com.cn",
            ),
        ] {
            assert_eq!(
                resolved_endpoint(&regional(region, fips, dual))
                    .await
                    .as_deref(),
                Ok(url),
                "{region} fips={fips} dualstack={dual}"
            );
        }
        // The map's endpoint is used as written.
        let mut s = regional("us-east-1", false, false);
        s.endpoint = Some("https://sts.vpce.internal".into());
        assert_eq!(
            resolved_endpoint(&s).await.as_deref(),
            Ok("https://sts.vpce.internal")
        );
    }

    /// aws-role's partition table agrees with the SDK's: the endpoint of each partition's
    /// region is under that partition's DNS suffix (AWS's partitions.json).
    #[tokio::test]
    async fn the_partition_table_is_the_sdks() {
        let suffix = |p: &str| match p {
            "aws" | "aws-us-gov" => "amazonaws.com",
            "aws-cn" => "amazonaws.com.cn",
            "aws-iso" => "c2s.ic.gov",
            "aws-iso-b" => "sc2s.sgov.gov",
            "aws-iso-e" => "cloud.adc-e.uk",
            "aws-iso-f" => "csp.hci.ic.gov",
            "aws-eusc" => "amazonaws.eu",
            other => panic!("no suffix for {other}"),
        };
        for &(partition, region) in crate::partition::PARTITIONS {
            let url = resolved_endpoint(&regional(region, false, false))
                .await
                .unwrap();
            assert_eq!(url, format!("https://sts.{region}.{}", suffix(partition)));
        }
    }

    /// The client itself goes where the rules say: through a recording proxy, a FIPS
    /// dual-stack client's CONNECT names sts-fips.us-east-1.api.aws.
    #[tokio::test]
    async fn the_client_calls_the_resolved_fips_endpoint() {
        let (proxy, got) =
            recording_peer("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".into());
        let creds = node_credentials();
        let mut s = settings(None, creds.path());
        s.use_fips = true;
        s.use_dualstack = true;
        s.proxy = map_proxy(&proxy, &[]);
        let e = assume_role(&s, &req()).await.unwrap_err();
        assert!(matches!(e, StsError::Proxy { .. }), "{e:?}");
        let sent = got.lock().unwrap().clone();
        assert!(
            sent.starts_with("CONNECT sts-fips.us-east-1.api.aws:443 HTTP/1.1\r\n"),
            "{sent}"
        );
    }

    /// `no_proxy` sends a call straight to its endpoint, the proxy unused.
    #[tokio::test]
    async fn no_proxy_hosts_are_called_directly() {
        let (endpoint, got) = recording_peer(http("200 OK", &answer(SystemTime::now() + HOUR)));
        assume_via(endpoint, map_proxy(&refused_url(), &["127.0.0.1"]), &req())
            .await
            .unwrap();
        assert!(got.lock().unwrap().starts_with("POST / HTTP/1.1"));
    }

    /// Without them, none of the three is sent (an empty ExternalId would be refused).
    #[tokio::test]
    async fn no_cross_account_parameters_unless_the_map_has_them() {
        let (url, got) = recording_peer(http("200 OK", &answer(SystemTime::now() + HOUR)));
        assume_with(url, &req()).await.unwrap();
        let sent = got.lock().unwrap().clone();
        for name in ["ExternalId", "PolicyArns", "TransitiveTagKeys"] {
            assert!(!sent.contains(name), "{name} in {sent}");
        }
    }

    /// Every way a peer can fail gives its own typed error with a plain message, and no
    /// message quotes the answer (nor so the secret in it).
    #[tokio::test]
    async fn every_broken_answer_is_named_plainly() {
        let now = SystemTime::now();
        let good = answer(now + HOUR);
        let refused = refused_url();
        let ok = |body: &str| Peer::Say(http("200 OK", body));
        let half = &good[..good.len() / 2];
        // Cut inside the session token, as the fault proxy's `truncated` cuts moto's
        // answer: the SDK would take the partial token and a default Expiration.
        let in_token = &good[..good.find("<SessionToken>").unwrap() + 20];
        // Cut inside the element that comes last (real STS need not keep moto's order):
        // the SDK would take the key id's first characters for the key id.
        let key = "<AccessKeyId>ASIAEXAMPLE0000000000</AccessKeyId>";
        let key_last = good.replacen(key, "", 1).replacen(
            "</Credentials>",
            &format!("{key}</Credentials>"),
            1,
        );
        let in_key = &key_last[..key_last.find("</AccessKeyId>").unwrap() - 8];
        // The whole length announced, half of it sent.
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
            good.len()
        );
        let error_500 =
            "<ErrorResponse><Error><Code>InternalFailure</Code></Error></ErrorResponse>";
        let cut =
            "STS sent a malformed answer: it stops before </AssumeRoleResponse>, as if cut short";
        let cases = [
            (refused, "STS could not be reached: connection refused"),
            (
                peer(Peer::Say(http("500 Internal Server Error", error_500))),
                "STS answered HTTP 500 (InternalFailure)",
            ),
            (
                peer(Peer::Say(http("502 Bad Gateway", "<html>bad gateway</html>"))),
                "STS answered HTTP 502",
            ),
            (
                peer(ok("this is not XML {")),
                "STS sent a malformed answer: HTTP 200 with a body that is not an AssumeRole response",
            ),
            (peer(ok(in_token)), cut),
            (peer(ok(in_key)), cut),
            (
                peer(Peer::Reset(format!("{head}{half}"))),
                "the connection to STS broke while it answered: connection reset by peer",
            ),
            (
                peer(Peer::Say(format!("{head}{half}"))),
                "the connection to STS broke while it answered",
            ),
            (
                peer(ok(&answer(now - HOUR))),
                "STS returned credentials that had already expired",
            ),
            (
                peer(ok(&answer(now + Duration::from_secs(60)))),
                "far sooner than the 3600 s asked for",
            ),
        ];
        for (url, want) in cases {
            let e = assume_at(url).await.unwrap_err().to_string();
            assert!(e.contains(want), "wanted {want:?}, got {e:?}");
            assert!(!e.contains(SECRET), "{e}");
            assert!(!e.contains("nodesecret"), "{e}");
        }
        let c = assume_at(peer(ok(&good))).await.unwrap();
        assert_eq!(c.access_key_id, "ASIAEXAMPLE0000000000");
    }

    /// The SDK says only "timeout" when the deadline ends its retries. When the attempts
    /// before it all failed for one reason (throttled, refused), that reason is the one
    /// reported; an attempt the deadline cut off mid-flight leaves "did not answer".
    #[tokio::test]
    async fn a_deadline_during_the_retries_names_the_last_attempts_failure() {
        use std::sync::atomic::Ordering;
        let node = node_credentials();
        let throttled = http(
            "400 Bad Request",
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>",
        );
        let at = |url: &str, timeout: u64| StsSettings {
            timeout: Duration::from_secs(timeout),
            max_attempts: 10,
            ..settings(Some(url), node.path())
        };

        // Throttled every time: the backoffs (0.2 s doubling to 2 s) outlast a 1-s deadline
        // long before 10 attempts.
        let (url, calls) = peer_for_all(vec![Peer::Say(throttled.clone())]);
        let e = assume_role(&at(&url, 1), &req()).await.unwrap_err();
        let n = calls.load(Ordering::SeqCst);
        assert!(
            (1..10).contains(&n),
            "the deadline, not max_attempts, ended it: {n} calls"
        );
        assert!(matches!(e, StsError::Throttled(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "STS kept throttling the request until the retries ran out: Rate exceeded"
        );

        // Refused every time.
        let refused = refused_url();
        let t0 = std::time::Instant::now();
        let e = assume_role(&at(&refused, 1), &req()).await.unwrap_err();
        assert!(
            t0.elapsed() >= Duration::from_millis(900),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(
            e.to_string(),
            "STS could not be reached: connection refused"
        );

        // Every answer broken off by a reset after half its body.
        let good = answer(SystemTime::now() + HOUR);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
            good.len()
        );
        let (url, calls) = peer_for_all(vec![Peer::Reset(format!(
            "{head}{}",
            &good[..good.len() / 2]
        ))]);
        let e = assume_role(&at(&url, 1), &req()).await.unwrap_err();
        let n = calls.load(Ordering::SeqCst);
        assert!((1..10).contains(&n), "the deadline ended it: {n} calls");
        assert_eq!(
            e.to_string(),
            "the connection to STS broke while it answered: connection reset by peer"
        );

        // Throttled once, then no answer: the deadline falls inside an attempt.
        let (url, calls) = peer_for_all(vec![Peer::Say(throttled), Peer::Silent]);
        let e = assume_role(&at(&url, 2), &req()).await.unwrap_err();
        assert!(calls.load(Ordering::SeqCst) >= 2);
        assert!(matches!(e, StsError::Deadline(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "STS did not answer within 2s (after retries)"
        );
    }

    #[tokio::test]
    async fn unusable_node_credentials_are_not_called_unreachable() {
        let settings = StsSettings {
            region: "us-east-1".into(),
            endpoint: Some("http://127.0.0.1:1".into()),
            identity: NodeIdentity::CredentialsFile,
            credentials_file: Some("/nonexistent/aws-role-test/credentials".into()),
            profile: None,
            imds_endpoint: None,
            timeout: Duration::from_secs(5),
            max_attempts: 1,
            min_session: MIN_SESSION,
            proxy: ProxySetting::Direct,
            use_fips: false,
            use_dualstack: false,
            node_rate: None,
        };
        let e = assume_role(&settings, &req()).await.unwrap_err();
        assert!(matches!(e, StsError::NodeCredentials(_)), "{e:?}");
        let e = e.to_string();
        assert!(
            e.starts_with("STS was not called: this node's own AWS credentials are unusable: "),
            "{e}"
        );
        assert!(e.contains("/nonexistent/aws-role-test/credentials"), "{e}");
    }

    /// Before, what an STS (or a proxy pretending to be one) put in its error message went
    /// raw into failure records, the node's log and the job's output.
    #[test]
    fn a_peers_error_text_is_escaped_and_cut() {
        let forged = format!(
            "denied\r\u{1b}[2K\nslurmstepd: all good{}",
            "x".repeat(10_000)
        );
        for e in [
            service_error(403, Some("AccessDenied"), &forged),
            service_error(400, Some("Throttling"), &forged),
            service_error(502, None, &forged),
            service_error(500, Some("Odd\ncode"), &forged),
        ] {
            let text = e.to_string();
            assert!(!text.contains(['\r', '\n', '\u{1b}']), "{text:?}");
            assert!(text.chars().count() < 450, "{}", text.len());
        }
    }
}
