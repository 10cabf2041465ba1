//! What every test client configures, and nothing more: the endpoint (the emulator) and
//! the HTTP client; the SDK's default chain finds the job's credentials by itself, as in
//! any researcher's program.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// The SDK configuration of a program in a job, against `endpoint`.
pub async fn job_config(endpoint: &str) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(endpoint)
        .load()
        .await
}
