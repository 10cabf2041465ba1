//! `aws-role-sdk-whoami ENDPOINT [COUNT INTERVAL_SECS]`: what an ordinary aws-sdk-rust
//! program in a job sees. It configures nothing but the endpoint (the STS emulator) and
//! the HTTP client, and lets the SDK's default chain find the job's credentials. Prints
//! one line per call: `<arn> <user id>`; exits 1 on the first failed call.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(endpoint) = args.get(1) else {
        eprintln!("usage: aws-role-sdk-whoami ENDPOINT [COUNT INTERVAL_SECS]");
        std::process::exit(2);
    };
    let count: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let interval: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(endpoint)
        .load()
        .await;
    // One client for the whole run: a long-lived process must see refreshed keys.
    let sts = aws_sdk_sts::Client::new(&conf);
    for i in 0..count {
        match sts.get_caller_identity().send().await {
            Ok(out) => println!(
                "{} {}",
                out.arn().unwrap_or("?"),
                out.user_id().unwrap_or("?")
            ),
            Err(e) => {
                eprintln!(
                    "call {i} failed: {}",
                    aws_sdk_sts::error::DisplayErrorContext(&e)
                );
                std::process::exit(1);
            }
        }
        if i + 1 < count {
            tokio::time::sleep(Duration::from_secs(interval)).await;
        }
    }
}
