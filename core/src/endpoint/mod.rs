//! The node-local credentials endpoint: what `aws-role-endpoint` answers a request for a
//! job's credentials (the container credentials provider protocol of ECS tasks and EKS
//! Pod Identity: `GET` on `AWS_CONTAINER_CREDENTIALS_FULL_URI` with the token in
//! `Authorization`), decided from the job's directory alone. The HTTP server, the
//! connection limits and the time-outs are the daemon's; this module is what it decides,
//! so that it can be tested and fuzzed without a socket.
//!
//! A job's credentials go only to a caller that passes two independent checks: its socket
//! belongs to the job's user ([`peer::uid_of`], from the kernel) and it presents the job's
//! token ([`crate::delivery::endpoint::TOKEN_FILE`], compared in constant time). A job
//! that ended has no directory, hence nothing to serve. Nothing secret is in a refusal or
//! in [`Answer::log`].

#[cfg(feature = "endpoint")]
pub mod peer;

use std::time::SystemTime;

use subtle::ConstantTimeEq;

use crate::creds::{rfc3339, Credentials};
use crate::delivery::endpoint::{is_token, PATH_PREFIX, TOKEN_FILE};
use crate::record::JobState;
use crate::store::{Store, CREDENTIALS_JSON, STATE};

/// What the daemon was asked, as far as the decision needs it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target as sent (path and any query).
    pub target: &'a str,
    /// The `Authorization` header's value, when there is exactly one.
    pub authorization: Option<&'a [u8]>,
    /// Whether the request has a body (a `Content-Length` above 0 or chunked).
    pub has_body: bool,
}

/// The answer: an HTTP status, a JSON body, and a line for the daemon's log.
#[derive(Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// For 200, the job's credentials: never log it.
    pub body: String,
    /// What the daemon logs about this request: no secret, no token.
    pub log: String,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

/// The container provider's document (what botocore's `ContainerProvider`, the Rust
/// SDK's `EcsCredentialsProvider` and `object_store` read).
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Document<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: String,
    role_arn: &'a str,
}

/// A refusal the caller reads: botocore shows `code` and `message`.
fn refuse(status: u16, code: &str, message: &str, log: String) -> Answer {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    Answer { status, body, log }
}

/// What the endpoint answers `req` from `caller` (the uid owning the caller's socket, or
/// why it is unknown), for the jobs in `store`, at `now`.
pub fn answer(
    store: &Store,
    req: &Request<'_>,
    caller: Result<u32, String>,
    now: SystemTime,
) -> Answer {
    if req.method != "GET" {
        return refuse(
            405,
            "MethodNotAllowed",
            "only GET is served",
            format!("refused: method {}", crate::text::shown(req.method)),
        );
    }
    if req.has_body {
        return refuse(
            400,
            "BadRequest",
            "a credentials request has no body",
            "refused: a request with a body".into(),
        );
    }
    let Some(name) = req.target.strip_prefix(PATH_PREFIX) else {
        return refuse(
            404,
            "NotFound",
            "no such path: job credentials are under /v1/credentials/",
            format!("refused: path {}", crate::text::shown(req.target)),
        );
    };
    let job = crate::text::shown(name);
    let uid = match caller {
        Ok(uid) => uid,
        Err(why) => {
            return refuse(
                403,
                "AccessDenied",
                "the caller's user cannot be told",
                format!("job {job}: refused: the caller's uid is unknown: {why}"),
            )
        }
    };
    let Some(token) = req.authorization else {
        return refuse(
            401,
            "Unauthorized",
            "no Authorization token: AWS_CONTAINER_AUTHORIZATION_TOKEN is not set",
            format!("job {job}: refused uid {uid}: no token"),
        );
    };
    let gone = |log: String| {
        refuse(
            404,
            "NoSuchJob",
            "this node has no credentials for this job: it has ended, or it has no AWS role",
            log,
        )
    };
    let dir = match store.open_entry(name) {
        Ok(Some(d)) => d,
        Ok(None) => return gone(format!("job {job}: refused uid {uid}: no such job")),
        Err(e) => return internal(format!("job {job}: {e}")),
    };
    let state = match dir.read_record::<JobState>(STATE) {
        Ok(Some(s)) => s,
        Ok(None) => return gone(format!("job {job}: refused uid {uid}: no state record")),
        Err(e) => return internal(format!("job {job}: {e}")),
    };
    if state.uid != uid {
        return refuse(
            403,
            "AccessDenied",
            "this job belongs to another user",
            format!(
                "job {job}: refused uid {uid}: the job is uid {}'s",
                state.uid
            ),
        );
    }
    let expected = match dir.read(TOKEN_FILE) {
        Ok(Some(t)) if is_token(&t) => t,
        Ok(_) => {
            return refuse(
                403,
                "AccessDenied",
                "this job was not given the endpoint",
                format!("job {job}: refused uid {uid}: the job has no endpoint token"),
            )
        }
        Err(e) => return internal(format!("job {job}: {e}")),
    };
    // Same length and contents, in time independent of where they differ.
    if !bool::from(token.ct_eq(&expected[..])) {
        return refuse(
            403,
            "AccessDenied",
            "the token is not this job's",
            format!("job {job}: refused uid {uid}: wrong token"),
        );
    }
    let creds = match dir
        .read(CREDENTIALS_JSON)
        .map_err(|e| e.to_string())
        .and_then(|b| b.ok_or_else(|| "no credentials file".to_string()))
        .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8".to_string()))
        .and_then(|t| Credentials::from_process_json(&t).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => return internal(format!("job {job}: {CREDENTIALS_JSON}: {e}")),
    };
    if creds.remaining(now).is_zero() {
        return refuse(
            503,
            "Expired",
            "this job's credentials have expired and were not renewed; the administrators find why in the refresher's log",
            format!("job {job}: uid {uid}: the credentials expired at {}", rfc3339(creds.expiration)),
        );
    }
    let doc = Document {
        access_key_id: &creds.access_key_id,
        secret_access_key: creds.secret_access_key.expose(),
        token: creds.session_token.expose(),
        expiration: rfc3339(creds.expiration),
        role_arn: &state.role_arn,
    };
    Answer {
        status: 200,
        body: serde_json::to_string(&doc).unwrap_or_default(),
        log: format!(
            "job {job}: credentials to uid {uid} (role {}, expire {})",
            state.role,
            rfc3339(creds.expiration)
        ),
    }
}

fn internal(log: String) -> Answer {
    refuse(
        500,
        "InternalError",
        "this job's credentials cannot be read on this node; the administrators find why in the endpoint's log",
        log,
    )
}

#[cfg(test)]
mod tests;
