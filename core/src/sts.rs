//! AssumeRole against STS, with the node's own identity.
//!
//! Everything comes from the map's `[sts]` section, never from the process environment
//! (a Prolog has no PATH, HOME or `AWS_*`): region, endpoint, and the node's credentials
//! (a root-only credentials file, or else the default chain: instance profile and so on).
//! Throttling and transient failures are retried by the SDK's standard retry strategy
//! (exponential backoff with full jitter), all under one hard deadline; access errors are
//! not retried. AWS's own limits are checked here before the call, because the test STS
//! (and the SDK) check almost nothing.

use std::time::{Duration, SystemTime};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_sdk_sts::config::Region;
use aws_sdk_sts::config::SharedHttpClient;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::types::Tag;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext};
use aws_smithy_types::timeout::TimeoutConfig;

use crate::ca;
use crate::creds::{Credentials, CredsError, Secret};
use crate::map::StsSettings;
use crate::session;
use crate::walltime::MAX_SESSION;

/// Longest inline session policy STS accepts.
pub const MAX_POLICY_CHARS: usize = 2048;
/// Most session tags STS accepts.
pub const MAX_TAGS: usize = 50;

/// One AssumeRole call.
#[derive(Debug, Clone)]
pub struct AssumeRequest {
    pub role_arn: String,
    pub session_name: String,
    pub duration: Duration,
    pub source_identity: Option<String>,
    pub tags: Vec<(String, String)>,
    pub policy: Option<String>,
}

/// Why no credentials came back. Messages are meant for the job's user and the node's
/// log; none contains a secret (STS error messages name ARNs, never keys).
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
    #[error("STS could not be reached: {0}")]
    Unreachable(String),
    #[error("STS failed: {code}: {message}")]
    Service { code: String, message: String },
    #[error("STS answered with something unusable: {0}")]
    Malformed(String),
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
            if !session::is_valid_name(id) || id.starts_with("aws:") {
                return bad(format!(
                    "SourceIdentity {id:?} must be 2-64 characters of letters, digits and _+=,.@- and not start with aws:"
                ));
            }
        }
        if self.tags.len() > MAX_TAGS {
            return bad(format!(
                "{} session tags, at most {MAX_TAGS}",
                self.tags.len()
            ));
        }
        for (k, v) in &self.tags {
            let key_ok =
                (1..=128).contains(&k.chars().count()) && k.chars().all(session::is_tag_char);
            let value_ok = v.chars().count() <= 256 && v.chars().all(session::is_tag_char);
            if !key_ok || !value_ok {
                return bad(format!("session tag {k:?} = {v:?} breaks the tag rules"));
            }
        }
        if let Some(p) = &self.policy {
            if p.chars().count() > MAX_POLICY_CHARS {
                return bad(format!(
                    "session policy of {} characters, at most {MAX_POLICY_CHARS}",
                    p.chars().count()
                ));
            }
        }
        Ok(())
    }
}

/// An HTTP client, TLS by rustls with ring, trusting the CA certificates of `tls`.
fn http_client(tls: TlsContext) -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(tls)
        .build_https()
}

/// Builds an STS client from the map's settings only.
pub async fn client(settings: &StsSettings) -> aws_sdk_sts::Client {
    // An http:// endpoint (a local emulator) needs no CA certificate: loading them is most
    // of a prolog's own time (core/src/ca.rs).
    let http = http_client(ca::trust_for(settings.endpoint.as_deref()));
    let region = Region::new(settings.region.clone());
    let credentials = match &settings.credentials_file {
        Some(path) => {
            let files = EnvConfigFiles::builder()
                .with_file(EnvConfigFileKind::Credentials, path)
                .build();
            // The profile's own clients (a `role_arn` or `credential_source` in the file)
            // get our HTTP client too: without one they could only fail (and a debug
            // build's SDK asserts at once that they have one).
            let conf = ProviderConfig::without_region()
                .with_region(Some(region.clone()))
                .with_http_client(http.clone());
            let mut b = ProfileFileCredentialsProvider::builder()
                .configure(&conf)
                .profile_files(files);
            if let Some(p) = &settings.profile {
                b = b.profile_name(p);
            }
            SharedCredentialsProvider::new(b.build())
        }
        None => {
            // The chain's own clients (IMDS on EC2, SSO, web identity) need our HTTP client:
            // with the SDK's default client compiled out they would have none. SSO and web
            // identity are https whatever the STS endpoint is.
            let chain_http = match settings.endpoint.as_deref() {
                Some(e) if ca::is_plain_http(e) => http_client(ca::system()),
                _ => http.clone(),
            };
            let conf = ProviderConfig::without_region()
                .with_region(Some(region.clone()))
                .with_http_client(chain_http);
            let mut b = DefaultCredentialsChain::builder().configure(conf);
            if let Some(p) = &settings.profile {
                b = b.profile_name(p);
            }
            SharedCredentialsProvider::new(b.build().await)
        }
    };
    // Each attempt gets a share of the deadline, so a hung connection still leaves time
    // for a retry; the whole operation never outlives the deadline.
    let attempt = (settings.timeout / 2).max(Duration::from_millis(500));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(attempt.min(Duration::from_secs(3)))
        .operation_attempt_timeout(attempt)
        .operation_timeout(settings.timeout)
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
        .timeout_config(timeouts);
    if let Some(url) = &settings.endpoint {
        conf = conf.endpoint_url(url);
    }
    aws_sdk_sts::Client::from_conf(conf.build())
}

/// Assumes the role; returns checked credentials.
pub async fn assume_role(
    settings: &StsSettings,
    req: &AssumeRequest,
) -> Result<Credentials, StsError> {
    req.validate(settings.min_session)?;
    let client = client(settings).await;
    let mut call = client
        .assume_role()
        .role_arn(&req.role_arn)
        .role_session_name(&req.session_name)
        .duration_seconds(req.duration.as_secs() as i32);
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
    // Belt and braces: the SDK's operation timeout should fire first.
    let hard = settings.timeout + Duration::from_secs(1);
    let out = match tokio::time::timeout(hard, call.send()).await {
        Err(_) => return Err(StsError::Deadline(settings.timeout)),
        Ok(r) => r.map_err(|e| classify(e, settings.timeout))?,
    };
    let c = out
        .credentials
        .ok_or_else(|| StsError::Malformed("no Credentials in the response".into()))?;
    let expiration = SystemTime::try_from(c.expiration)
        .map_err(|_| StsError::Malformed("an Expiration outside the representable range".into()))?;
    let now = SystemTime::now();
    if expiration <= now {
        return Err(StsError::Malformed(
            "the credentials had already expired".into(),
        ));
    }
    // STS never issues more than asked for; much more means a broken or hostile peer.
    if expiration > now + req.duration + Duration::from_secs(600) {
        return Err(StsError::Malformed(
            "the credentials expire far later than requested".into(),
        ));
    }
    Credentials::new(
        c.access_key_id,
        Secret::new(c.secret_access_key),
        Secret::new(c.session_token),
        expiration,
    )
    .map_err(|e: CredsError| StsError::Malformed(e.to_string()))
}

fn classify<E, R>(e: SdkError<E, R>, deadline: Duration) -> StsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e {
        SdkError::TimeoutError(_) => StsError::Deadline(deadline),
        SdkError::DispatchFailure(d) => {
            if d.is_timeout() {
                StsError::Deadline(deadline)
            } else {
                StsError::Unreachable(chain(d.as_connector_error()))
            }
        }
        SdkError::ConstructionFailure(c) => StsError::Unreachable(format!("{c:?}")),
        SdkError::ResponseError(r) => {
            StsError::Malformed(format!("{r:?}").chars().take(300).collect())
        }
        SdkError::ServiceError(s) => {
            let err = s.err();
            let code = err.code().unwrap_or("UnknownError").to_string();
            let message = err.message().unwrap_or("").to_string();
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
                _ => StsError::Service { code, message },
            }
        }
        other => StsError::Unreachable(other.to_string()),
    }
}

/// An error and its sources on one line (the connector's own Display is terse).
fn chain(e: Option<&aws_sdk_sts::error::ConnectorError>) -> String {
    let Some(e) = e else {
        return "dispatch failure".into();
    };
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
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
    use crate::walltime::MIN_SESSION;

    fn req() -> AssumeRequest {
        AssumeRequest {
            role_arn: "arn:aws:iam::123456789012:role/x".into(),
            session_name: "slurm-42-0".into(),
            duration: Duration::from_secs(3600),
            source_identity: None,
            tags: vec![],
            policy: None,
        }
    }

    fn settings(endpoint: Option<&str>, credentials: &std::path::Path) -> StsSettings {
        StsSettings {
            region: "us-east-1".into(),
            endpoint: endpoint.map(Into::into),
            credentials_file: Some(credentials.to_path_buf()),
            profile: None,
            timeout: Duration::from_secs(2),
            max_attempts: 1,
            min_session: MIN_SESSION,
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
            let c = client(&settings(endpoint, creds.path())).await;
            assert!(c.config().http_client().is_some(), "{endpoint:?}");
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
    }
}
