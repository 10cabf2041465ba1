//! The endpoint's decisions: each refusal, and the one answer with credentials.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;
use crate::creds::Secret;
use crate::map::RoleMap;
use crate::store::JobDir;
use crate::testing::{me, sample_state, temp_store};

const MAP: &str = "[sts]\nregion = \"eu-west-1\"\n";

fn creds(expire_in: Duration) -> Credentials {
    Credentials::new(
        "ASIAJOB42".into(),
        Secret::new("s3cretKEY"),
        Secret::new("sessionTOKEN"),
        SystemTime::now() + expire_in,
    )
    .unwrap()
}

/// Job 42 of the test's own uid, provisioned by every delivery.
fn provisioned(store: &Store) -> (JobDir, String) {
    let map = RoleMap::parse(MAP, Path::new("/m.toml")).unwrap();
    let dir = store
        .open_job(&crate::testing::job("42").id, true)
        .unwrap()
        .unwrap();
    dir.write_record(
        STATE,
        &sample_state("me", me().uid.as_raw(), me().gid.as_raw()),
    )
    .unwrap();
    crate::delivery::write(&map, &dir, &creds(Duration::from_secs(3600)), me()).unwrap();
    let token = String::from_utf8(dir.read(TOKEN_FILE).unwrap().unwrap()).unwrap();
    (dir, token)
}

fn get<'a>(token: Option<&'a str>) -> Request<'a> {
    Request {
        method: "GET",
        target: "/v1/credentials/42",
        authorization: token.map(str::as_bytes),
        has_body: false,
    }
}

/// The job's user with the job's token gets its credentials in the container format;
/// its log line holds neither the token nor a secret.
#[test]
fn the_jobs_user_with_its_token_gets_the_credentials() {
    let (_t, store) = temp_store();
    let (_dir, token) = provisioned(&store);
    let a = answer(
        &store,
        &get(Some(&token)),
        Ok(me().uid.as_raw()),
        SystemTime::now(),
    );
    assert_eq!(a.status, 200, "{a:?}");
    let doc: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(doc["AccessKeyId"], "ASIAJOB42");
    assert_eq!(doc["SecretAccessKey"], "s3cretKEY");
    assert_eq!(doc["Token"], "sessionTOKEN");
    assert!(humantime::parse_rfc3339(doc["Expiration"].as_str().unwrap()).is_ok());
    for secret in [token.as_str(), "s3cretKEY", "sessionTOKEN"] {
        assert!(!a.log.contains(secret), "{}", a.log);
    }
}

/// Every way to ask wrongly is refused, with its own status, and no refusal carries a
/// credential: another uid with the right token, the right uid with a wrong, shorter,
/// longer or missing token, an unknown caller, another path, a job that ended, a method
/// or a body that a credentials request never has.
#[test]
fn every_wrong_request_is_refused_without_credentials() {
    let (_t, store) = temp_store();
    let (_dir, token) = provisioned(&store);
    let uid = me().uid.as_raw();
    let now = SystemTime::now();
    let mut wrong = token.clone().into_bytes();
    wrong[63] = if wrong[63] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    let longer = format!("{token}0");
    let cases: Vec<(&str, Request, Result<u32, String>, u16)> = vec![
        ("another user", get(Some(&token)), Ok(uid + 1), 403),
        (
            "root is not the job's user",
            get(Some(&token)),
            Ok(0).filter_ok(uid),
            403,
        ),
        ("a wrong token", get(Some(&wrong)), Ok(uid), 403),
        (
            "a prefix of the token",
            get(Some(&token[..32])),
            Ok(uid),
            403,
        ),
        ("the token and more", get(Some(&longer)), Ok(uid), 403),
        ("no token", get(None), Ok(uid), 401),
        ("unknown caller", get(Some(&token)), Err("gone".into()), 403),
        (
            "another path",
            Request {
                target: "/latest/meta-data/",
                ..get(Some(&token))
            },
            Ok(uid),
            404,
        ),
        (
            "a job that is not here",
            Request {
                target: "/v1/credentials/43",
                ..get(Some(&token))
            },
            Ok(uid),
            404,
        ),
        (
            "a path out of the store",
            Request {
                target: "/v1/credentials/../42",
                ..get(Some(&token))
            },
            Ok(uid),
            404,
        ),
        (
            "POST",
            Request {
                method: "POST",
                ..get(Some(&token))
            },
            Ok(uid),
            405,
        ),
        (
            "a body",
            Request {
                has_body: true,
                ..get(Some(&token))
            },
            Ok(uid),
            400,
        ),
    ];
    for (what, req, caller, status) in cases {
        let a = answer(&store, &req, caller, now);
        assert_eq!(a.status, status, "{what}: {a:?}");
        assert!(
            !a.body.contains("s3cretKEY") && !a.body.contains("ASIA"),
            "{what}"
        );
        assert!(!a.log.contains(&token), "{what}: {}", a.log);
        let doc: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        assert!(doc["message"].is_string(), "{what}: {}", a.body);
    }
}

/// Helps the table above say "root" without a special case in the code.
trait FilterOk {
    fn filter_ok(self, not: u32) -> Self;
}
impl FilterOk for Result<u32, String> {
    fn filter_ok(self, not: u32) -> Self {
        // When the tests run as root, "root" is the job's user: use another uid then.
        match self {
            Ok(0) if not == 0 => Ok(65534),
            other => other,
        }
    }
}

/// After the epilog removed the job, the same caller and token get nothing; expired
/// credentials are refused, not served.
#[test]
fn an_ended_job_or_expired_credentials_get_nothing() {
    let (_t, store) = temp_store();
    let (dir, token) = provisioned(&store);
    let uid = me().uid.as_raw();
    let later = SystemTime::now() + Duration::from_secs(7200);
    assert_eq!(
        answer(&store, &get(Some(&token)), Ok(uid), later).status,
        503
    );
    drop(dir);
    store.remove_job(&crate::testing::job("42").id).unwrap();
    let a = answer(&store, &get(Some(&token)), Ok(uid), SystemTime::now());
    assert_eq!(a.status, 404, "{a:?}");
}

/// The token survives a refresh (the files are written again) and a job with the
/// endpoint turned off has no token: it is refused even with a guessed one.
#[test]
fn the_token_is_kept_across_refreshes_and_absent_when_turned_off() {
    let (_t, store) = temp_store();
    let (dir, token) = provisioned(&store);
    let map = RoleMap::parse(MAP, Path::new("/m.toml")).unwrap();
    crate::delivery::write(&map, &dir, &creds(Duration::from_secs(3600)), me()).unwrap();
    assert_eq!(dir.read(TOKEN_FILE).unwrap().unwrap(), token.as_bytes());
    let off = RoleMap::parse(
        &format!("{MAP}[endpoint]\nenabled = false\n"),
        Path::new("/m.toml"),
    )
    .unwrap();
    crate::delivery::write(&off, &dir, &creds(Duration::from_secs(3600)), me()).unwrap();
    assert!(dir.read(TOKEN_FILE).unwrap().is_none());
    let a = answer(
        &store,
        &get(Some(&token)),
        Ok(me().uid.as_raw()),
        SystemTime::now(),
    );
    assert_eq!(a.status, 403, "{a:?}");
}
