//! The credentials endpoint's request handling, as the daemon runs it: raw bytes from a
//! client through hyper's HTTP/1 parser into `aws_role_endpoint::serve_connection` and
//! `aws_role::endpoint::answer`, against a store holding one provisioned job whose user
//! is the caller.
//!
//! Input: whatever a client sends on the connection (then it closes its half).
//!
//! Properties: nothing panics or hangs; the job's credentials (its secret key) appear in
//! the output only when the input carries the job's token; every answer is HTTP/1.x (hyper
//! answers an HTTP/1.0 request in kind).
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use aws_role::creds::{Credentials, Secret};
use aws_role::delivery::endpoint::TOKEN_FILE;
use aws_role::map::RoleMap;
use aws_role::record::JobState;
use aws_role::store::{Reader, Store, STATE};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "fuzzSECRETkey0123456789";

struct Setup {
    store: Arc<Store>,
    token: Vec<u8>,
    uid: u32,
    rt: tokio::runtime::Runtime,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("aws-role-fuzz-endpoint-{}", std::process::id()));
        let store = Store::new(base);
        let me = Reader {
            uid: nix::unistd::geteuid(),
            gid: nix::unistd::getegid(),
        };
        let id = aws_role::scheduler::slurm::parse_job_id("42").unwrap();
        let dir = store.open_job(&id, true).unwrap().unwrap();
        let state = JobState {
            job_id: "42".into(),
            scheduler: "slurm".into(),
            user: "me".into(),
            uid: me.uid.as_raw(),
            gid: me.gid.as_raw(),
            role: "demo".into(),
            role_arn: "arn:aws:iam::123456789012:role/demo".into(),
            session_name: "slurm-42-0".into(),
            expiration: "2099-01-01T00:00:00Z".into(),
            end_time: None,
            issued: "2026-01-01T00:00:00Z".into(),
            region: "us-east-1".into(),
            partition: None,
            account: None,
            cluster: None,
            array_job_id: None,
            array_task_id: None,
            requested: Some("demo".into()),
            restart_count: 0,
            refreshes: 0,
            last_error: None,
            last_error_time: None,
        };
        dir.write_record(STATE, &state).unwrap();
        let map = RoleMap::parse("[sts]\nregion = \"us-east-1\"\n", std::path::Path::new("/m")).unwrap();
        let creds = Credentials::new(
            "ASIAFUZZ".into(),
            Secret::new(SECRET),
            Secret::new("fuzzSESSION"),
            SystemTime::now() + Duration::from_secs(86_400),
        )
        .unwrap();
        aws_role::delivery::write(&map, &dir, &creds, me).unwrap();
        let token = dir.read(TOKEN_FILE).unwrap().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Setup {
            store: Arc::new(store),
            token,
            uid: me.uid.as_raw(),
            rt,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    // The seeds name the token as "@TOKEN@": replace it so the fuzzer reaches the 200 path.
    let data = replace(data, b"@TOKEN@", &s.token);
    let out = s.rt.block_on(async {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let serve = aws_role_endpoint::serve_connection(
            server,
            s.store.clone(),
            Ok(s.uid),
            "127.0.0.1:1".parse().unwrap(),
        );
        let talk = async {
            let _ = client.write_all(&data).await;
            let _ = client.shutdown().await;
            let mut out = Vec::new();
            let _ = client.read_to_end(&mut out).await;
            out
        };
        let ((), out) = tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(serve, talk) })
            .await
            .expect("a closed connection is answered and ended in time");
        out
    });
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    if has(&out, SECRET.as_bytes()) {
        assert!(has(&data, &s.token), "credentials without the token");
    }
    assert!(out.is_empty() || out.starts_with(b"HTTP/1."), "{:?}", String::from_utf8_lossy(&out[..out.len().min(64)]));
});

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}
