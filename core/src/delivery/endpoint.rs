//! The endpoint delivery: the job's current credentials served by the node's
//! `aws-role-endpoint` in the container credentials provider format (what ECS tasks and EKS
//! Pod Identity use), for the tools that cannot run a `credential_process` (the Rust
//! `object_store` crate, GDAL, DuckDB's chain) and for containers, which see neither the
//! job's directory nor the helper. SDKs that have `credential_process` keep using it: the
//! config file comes before the container provider in every SDK's chain.
//!
//! The prolog writes a per-job secret ([`TOKEN_FILE`]: 256 random bits, hex, no trailing
//! newline, readable by the job's user only) once, and the job's URL ([`URL_FILE`]); the
//! endpoint answers only a caller that presents the token *and* whose socket belongs to
//! the job's user (see `crate::endpoint`).

use std::path::Path;

use super::Delivery;
use crate::creds::Credentials;
use crate::map::RoleMap;
use crate::store::{JobDir, Reader, StoreError};

/// The job's token for the endpoint: 64 hex digits, no newline (botocore refuses a token
/// file that ends in one).
pub const TOKEN_FILE: &str = "endpoint-token";
/// The job's endpoint URL, `http://ADDRESS/v1/credentials/<job directory name>`.
pub const URL_FILE: &str = "endpoint-url";
/// Where a job's credentials are served: this, then the job directory's name.
pub const PATH_PREFIX: &str = "/v1/credentials/";
/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// The endpoint's two files, the job user's.
pub struct Endpoint;

impl Delivery for Endpoint {
    fn write(
        &self,
        map: &RoleMap,
        dir: &JobDir,
        _creds: &Credentials,
        user: Reader,
    ) -> Result<(), StoreError> {
        if !map.endpoint.enabled {
            dir.remove(URL_FILE)?;
            return dir.remove(TOKEN_FILE);
        }
        // The token stays the job's for its whole life: refreshes keep it.
        if dir.read(TOKEN_FILE)?.is_none_or(|t| !is_token(&t)) {
            dir.write(TOKEN_FILE, new_token(dir.path())?.as_bytes(), user)?;
        }
        let name = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let url = format!("http://{}{PATH_PREFIX}{name}", map.endpoint.listen);
        dir.write(URL_FILE, url.as_bytes(), user)
    }

    fn files(&self) -> &'static [&'static str] {
        &[TOKEN_FILE, URL_FILE]
    }

    fn env(&self, dir: &Path) -> Vec<(&'static str, String)> {
        // Both files or no variable: a job provisioned with the endpoint turned off (or
        // by a version without it) keeps only credential_process.
        let read = |name| std::fs::read_to_string(dir.join(name)).ok();
        let (Some(url), Some(token)) = (read(URL_FILE), read(TOKEN_FILE)) else {
            return Vec::new();
        };
        if !is_token(token.as_bytes()) || !is_url(&url) {
            return Vec::new();
        }
        vec![
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", url),
            // AWS CLI v2 before 2.12, rclone and s5cmd read only the variable; the Rust
            // object_store crate reads only the file.
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", token),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                dir.join(TOKEN_FILE).display().to_string(),
            ),
        ]
    }
}

/// Whether `t` is a token as [`new_token`] makes them.
pub fn is_token(t: &[u8]) -> bool {
    t.len() == 2 * TOKEN_BYTES && t.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A URL as [`Endpoint::write`] writes it: nothing that could break an `export` line.
fn is_url(u: &str) -> bool {
    u.starts_with("http://")
        && u.len() < 512
        && u.bytes()
            .all(|b| b.is_ascii_graphic() && !b"'\"\\$`".contains(&b))
}

/// A fresh token from the kernel's CSPRNG.
fn new_token(dir: &Path) -> Result<String, StoreError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Io {
        path: dir.join(TOKEN_FILE),
        source: std::io::Error::other(format!("no random bytes for the token: {e}")),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
