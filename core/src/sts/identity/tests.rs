use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::map::NodeIdentity;

fn settings(file: &Path, profile: Option<&str>) -> StsSettings {
    StsSettings {
        region: "us-east-1".into(),
        endpoint: Some("http://127.0.0.1:1".into()),
        identity: NodeIdentity::CredentialsFile,
        credentials_file: Some(file.to_path_buf()),
        profile: profile.map(Into::into),
        imds_endpoint: None,
        timeout: Duration::from_secs(2),
        max_attempts: 1,
        min_session: crate::walltime::MIN_SESSION,
        proxy: ProxySetting::Direct,
        use_fips: false,
        use_dualstack: false,
        node_rate: None,
    }
}

/// A credentials file in a directory of its own, and an executable helper script beside it.
struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new(profile_file: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("credentials"), profile_file).unwrap();
        Node { dir }
    }

    fn file(&self) -> std::path::PathBuf {
        self.dir.path().join("credentials")
    }

    /// A `credential_process` profile that runs `script` (sh).
    fn with_helper(script: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("helper");
        std::fs::write(&helper, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(
            dir.path().join("credentials"),
            format!(
                "[default]\ncredential_process = {} --certificate /etc/pki/node.pem\n",
                helper.display()
            ),
        )
        .unwrap();
        Node { dir }
    }
}

async fn fetch(s: &StsSettings) -> Result<aws_credential_types::Credentials, StsError> {
    let http = crate::sts::http_client(crate::ca::trust_for(Some("http://x")), &s.proxy).unwrap();
    credentials(s, http, s.timeout).await
}

/// The description follows the profile file the way the SDK does: keys, a process, a
/// role on top of either, a role from a named credential source; and says which of them
/// make AssumeRole role chaining.
#[tokio::test]
async fn each_kind_of_profile_is_described() {
    let n = Node::new(
        "[default]\naws_access_key_id = AKIDNODE\naws_secret_access_key = s\n\
         [helper]\ncredential_process = /usr/bin/aws_signing_helper credential-process --private-key /etc/pki/k.pem\n\
         [broker]\nrole_arn = arn:aws:iam::111122223333:role/hpc-broker\nsource_profile = default\n\
         [broker2]\nrole_arn = arn:aws:iam::111122223333:role/second\nsource_profile = broker\n\
         [onec2]\nrole_arn = arn:aws:iam::111122223333:role/hpc-broker\ncredential_source = Ec2InstanceMetadata\n\
         [empty]\nregion = us-east-1\n\
         [dangling]\nrole_arn = arn:aws:iam::111122223333:role/x\n",
    );
    let d = |p: &'static str| {
        let s = settings(&n.file(), Some(p));
        async move { describe(&s).await }
    };
    let keys = d("default").await.unwrap();
    assert_eq!(
        keys.to_string(),
        "static keys (aws_access_key_id) of profile default"
    );
    assert_eq!(keys.role_chained(), Some(false));

    let helper = d("helper").await.unwrap();
    assert_eq!(
        helper.to_string(),
        "credential_process /usr/bin/aws_signing_helper of profile helper",
        "the program only: its arguments may name key files"
    );
    assert_eq!(helper.role_chained(), None);

    let broker = d("broker2").await.unwrap();
    assert_eq!(
        broker.to_string(),
        "role_arn arn:aws:iam::111122223333:role/second of profile broker2, from role_arn arn:aws:iam::111122223333:role/hpc-broker of profile broker, from static keys (aws_access_key_id) of profile default"
    );
    assert_eq!(broker.role_chained(), Some(true));

    let onec2 = d("onec2").await.unwrap();
    assert!(onec2
        .to_string()
        .ends_with("from credential_source Ec2InstanceMetadata"));
    assert_eq!(onec2.role_chained(), Some(true));

    let file = n.file().display().to_string();
    assert_eq!(
        d("empty").await.unwrap_err(),
        format!("{file}: profile empty has no credentials (aws_access_key_id, credential_process or role_arn)")
    );
    assert_eq!(
        d("dangling").await.unwrap_err(),
        format!("{file}: profile dangling has role_arn but no usable source_profile or credential_source")
    );
    assert_eq!(
        d("nosuch").await.unwrap_err(),
        format!("{file}: there is no profile nosuch")
    );
}

#[tokio::test]
async fn the_summary_names_the_source_and_the_one_hour_cap() {
    let n = Node::new(
        "[b]\nrole_arn = arn:aws:iam::111122223333:role/hpc-broker\nsource_profile = k\n[k]\naws_access_key_id = A\naws_secret_access_key = s\n",
    );
    let s = settings(&n.file(), Some("b"));
    let line = summary(&s, &describe(&s).await);
    assert!(
        line.starts_with("node identity: role_arn arn:aws:iam::111122223333:role/hpc-broker of profile b, from static keys"),
        "{line}"
    );
    assert!(
        line.contains(&format!(" in {}", n.file().display())),
        "{line}"
    );
    assert!(
        line.contains("role chaining, so STS gives each job a session of at most 1 h"),
        "{line}"
    );

    let mut ip = settings(&n.file(), None);
    ip.identity = NodeIdentity::InstanceProfile;
    ip.credentials_file = None;
    ip.imds_endpoint = Some("http://127.0.0.1:8089".into());
    assert_eq!(
        summary(&ip, &describe(&ip).await),
        "node identity: the instance profile, over IMDSv2 at http://127.0.0.1:8089; that is role chaining, so STS gives each job a session of at most 1 h (the refresher renews it)"
    );
}

/// A `credential_process` that prints credentials gives them, session token and expiry
/// included, and they are kept for the next call (the helper runs once).
#[tokio::test]
async fn a_credential_process_that_prints_credentials_gives_them_once() {
    let n = Node::with_helper(
        r#"echo run >> "$(dirname "$0")/runs"
exp=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
printf '{"Version": 1, "AccessKeyId": "ASIANODEPROCESS00000", "SecretAccessKey": "process-secret", "SessionToken": "process-token", "Expiration": "%s"}' "$exp""#,
    );
    let s = settings(&n.file(), None);
    let c = fetch(&s).await.unwrap();
    assert_eq!(c.access_key_id(), "ASIANODEPROCESS00000");
    assert_eq!(c.session_token(), Some("process-token"));
    assert!(c.expiry().is_some());
    let again = fetch(&s).await.unwrap();
    assert_eq!(again.access_key_id(), "ASIANODEPROCESS00000");
    let runs = std::fs::read_to_string(n.dir.path().join("runs")).unwrap();
    assert_eq!(runs.lines().count(), 1, "the second call reused them");
}

/// A helper that fails, prints garbage or hangs: an error that names the source and says
/// what happened, never a secret and never a wait past the deadline.
#[tokio::test]
async fn a_failing_garbled_or_hung_credential_process_is_named_within_the_deadline() {
    let fails = Node::with_helper("echo 'no certificate at /etc/pki/node.pem' >&2; exit 3");
    let e = fetch(&settings(&fails.file(), None)).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, StsError::NodeCredentials(_)), "{e:?}");
    assert!(
        text.starts_with(&format!(
            "STS was not called: this node's own AWS credentials are unusable: profile default of {}: ",
            fails.file().display()
        )),
        "{text}"
    );
    assert!(text.contains("exit status: 3"), "{text}");
    assert!(
        text.contains("no certificate at /etc/pki/node.pem"),
        "{text}"
    );

    let garbage = Node::with_helper("echo 'AccessKeyId=ASIA SecretAccessKey=leaked-secret'");
    let text = fetch(&settings(&garbage.file(), None))
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("could not parse response"), "{text}");
    assert!(
        !text.contains("leaked-secret"),
        "what it printed is not quoted: {text}"
    );

    let incomplete = Node::with_helper(r#"echo '{"Version": 1, "AccessKeyId": "ASIAX"}'"#);
    let text = fetch(&settings(&incomplete.file(), None))
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("SecretAccessKey"), "{text}");

    let hangs = Node::with_helper("exec sleep 30");
    let started = Instant::now();
    let e = fetch(&settings(&hangs.file(), None)).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "gave up at the 2-s deadline, not when the helper ended: {:?}",
        started.elapsed()
    );
    assert_eq!(
        e.to_string(),
        format!(
            "STS was not called: this node's own AWS credentials are unusable: they did not come within 2s (sts.timeout); the source is profile default of {}",
            hangs.file().display()
        )
    );
}

/// The instance profile with nothing listening at the map's IMDS address: an error that
/// names it (the address is a closed loopback port, never the real service).
#[tokio::test]
async fn an_unreachable_instance_profile_is_named() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut s = settings(Path::new("/nonexistent"), None);
    s.identity = NodeIdentity::InstanceProfile;
    s.credentials_file = None;
    s.imds_endpoint = Some(url.clone());
    let text = fetch(&s).await.unwrap_err().to_string();
    assert!(
        text.starts_with(&format!(
            "STS was not called: this node's own AWS credentials are unusable: the instance profile (IMDSv2 at {url})"
        )),
        "{text}"
    );
}
