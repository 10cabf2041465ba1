//! `aws-role-sdk-whoami ENDPOINT [COUNT INTERVAL_SECS]`: what an ordinary aws-sdk-rust
//! program in a job sees. It configures nothing but the endpoint (the STS emulator) and
//! the HTTP client, and lets the SDK's default chain find the job's credentials. Prints
//! one line per call: `<arn> <user id> <access key id>`, the key id read from the signed
//! request the client actually sent (so a long-running client shows when the SDK itself
//! switched to refreshed credentials); exits 1 on the first failed call.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sts::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sts::config::{ConfigBag, Intercept, RuntimeComponents};

/// Remembers the access key id in the last request's SigV4 `Authorization` header.
#[derive(Debug, Default, Clone)]
struct KeyId(Arc<Mutex<String>>);

impl Intercept for KeyId {
    fn name(&self) -> &'static str {
        "KeyId"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_sts::error::BoxError> {
        let auth = context
            .request()
            .headers()
            .get("authorization")
            .unwrap_or_default();
        // `AWS4-HMAC-SHA256 Credential=AKID/date/region/sts/aws4_request, ...`
        let key = auth
            .split("Credential=")
            .nth(1)
            .and_then(|c| c.split('/').next())
            .unwrap_or("?");
        if let Ok(mut k) = self.0.lock() {
            *k = key.to_string();
        }
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(endpoint) = args.get(1) else {
        eprintln!("usage: aws-role-sdk-whoami ENDPOINT [COUNT INTERVAL_SECS]");
        std::process::exit(2);
    };
    let count: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let interval: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let conf = aws_role_test_sdk_client::job_config(endpoint).await;
    let key = KeyId::default();
    // One client for the whole run: a long-lived process must see refreshed keys.
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&conf)
            .interceptor(key.clone())
            .build(),
    );
    for i in 0..count {
        match sts.get_caller_identity().send().await {
            Ok(out) => println!(
                "{} {} {}",
                out.arn().unwrap_or("?"),
                out.user_id().unwrap_or("?"),
                key.0.lock().map(|k| k.clone()).unwrap_or_default()
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
