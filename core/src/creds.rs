//! Temporary AWS credentials and the file formats the SDKs read them from.
//!
//! The secret parts live in [`Secret`], whose `Debug` prints `[redacted]` and which has no
//! `Display`: a secret cannot reach a log line or an error message by accident.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// A secret string. Read it only where it is written to its 0600 file.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for the credential files only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// One set of temporary credentials for a job's role session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    pub expiration: SystemTime,
}

/// Why credentials (from STS or from a job's file) were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredsError {
    #[error("the {0} has characters that are not allowed in AWS credentials")]
    BadCharacters(&'static str),
    #[error("the {0} is empty")]
    Empty(&'static str),
    #[error("the credentials are not valid credential_process JSON: {0}")]
    BadJson(String),
    #[error("unsupported credential_process Version {0} (expected 1)")]
    BadVersion(u32),
    #[error("the Expiration {0:?} is not an RFC 3339 time")]
    BadExpiration(String),
}

/// The credential_process output format (AWS SDKs & Tools reference, "process credentials").
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessJson {
    version: u32,
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expiration: String,
}

/// Credential values end up in INI and JSON files; refuse anything but the characters AWS
/// uses (base64 and key-id alphabets), so no value can inject a line or a key.
fn check(what: &'static str, v: &str) -> Result<(), CredsError> {
    if v.is_empty() {
        return Err(CredsError::Empty(what));
    }
    if v.len() > 4096
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return Err(CredsError::BadCharacters(what));
    }
    Ok(())
}

impl Credentials {
    /// Builds credentials after checking every value's alphabet.
    pub fn new(
        access_key_id: String,
        secret_access_key: Secret,
        session_token: Secret,
        expiration: SystemTime,
    ) -> Result<Credentials, CredsError> {
        check("access key id", &access_key_id)?;
        check("secret access key", secret_access_key.expose())?;
        check("session token", session_token.expose())?;
        Ok(Credentials {
            access_key_id,
            secret_access_key,
            session_token,
            expiration,
        })
    }

    /// The JSON a `credential_process` prints: `Version` 1 and an RFC 3339 `Expiration`,
    /// so every SDK refreshes before the credentials expire.
    pub fn to_process_json(&self) -> String {
        let j = ProcessJson {
            version: 1,
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.expose().to_string(),
            session_token: self.session_token.expose().to_string(),
            expiration: rfc3339(self.expiration),
        };
        // Serializing a struct of strings cannot fail.
        serde_json::to_string_pretty(&j).unwrap_or_default() + "\n"
    }

    /// Reads a credential_process JSON document back (the helper and the refresher do).
    pub fn from_process_json(text: &str) -> Result<Credentials, CredsError> {
        let j: ProcessJson =
            serde_json::from_str(text).map_err(|e| CredsError::BadJson(e.to_string()))?;
        if j.version != 1 {
            return Err(CredsError::BadVersion(j.version));
        }
        let expiration = humantime::parse_rfc3339(&j.expiration)
            .map_err(|_| CredsError::BadExpiration(j.expiration.clone()))?;
        Credentials::new(
            j.access_key_id,
            Secret(j.secret_access_key),
            Secret(j.session_token),
            expiration,
        )
    }

    /// A static-key shared credentials file (`[default]` profile) for tools that cannot run
    /// a credential_process. Such tools never refresh: they see new keys only when restarted.
    pub fn to_ini(&self) -> String {
        let mut ini = ini::Ini::new();
        ini.with_section(Some("default"))
            .set("aws_access_key_id", self.access_key_id.as_str())
            .set("aws_secret_access_key", self.secret_access_key.expose())
            .set("aws_session_token", self.session_token.expose());
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = ini.write_to(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Time left before expiry (zero when already expired).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expiration.duration_since(now).unwrap_or_default()
    }
}

/// RFC 3339 in UTC with whole seconds, e.g. `2026-11-21T20:12:06Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Credentials {
        Credentials::new(
            "ASIAEXAMPLE0000000000".into(),
            Secret::new("c2VjcmV0/c2VjcmV0+c2VjcmV0="),
            Secret::new("VE9LRU4vVE9LRU4rVE9LRU49PQ=="),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_300_000),
        )
        .unwrap()
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = sample();
        let shown = format!("{c:?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(!shown.contains("VE9LRU4"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn process_json_round_trips_with_version_and_expiration() {
        let c = sample();
        let text = c.to_process_json();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["Version"], 1);
        assert_eq!(v["Expiration"], "2026-11-21T22:26:40Z");
        assert_eq!(Credentials::from_process_json(&text).unwrap(), c);
    }

    #[test]
    fn ini_has_the_default_profile() {
        let ini = sample().to_ini();
        assert!(ini.starts_with("[default]"), "{ini}");
        assert!(
            ini.contains("aws_access_key_id=ASIAEXAMPLE0000000000"),
            "{ini}"
        );
        assert!(
            ini.contains("aws_session_token=VE9LRU4vVE9LRU4rVE9LRU49PQ=="),
            "{ini}"
        );
    }

    #[test]
    fn values_that_could_inject_are_refused() {
        let t = SystemTime::now();
        for bad in ["a\nb", "a b", "a\"b", "a]b", ""] {
            assert!(Credentials::new(bad.into(), Secret::new("x"), Secret::new("y"), t).is_err());
            assert!(Credentials::new("A".into(), Secret::new(bad), Secret::new("y"), t).is_err());
            assert!(Credentials::new("A".into(), Secret::new("x"), Secret::new(bad), t).is_err());
        }
        let bad_version = sample()
            .to_process_json()
            .replace("\"Version\": 1", "\"Version\": 2");
        assert_eq!(
            Credentials::from_process_json(&bad_version),
            Err(CredsError::BadVersion(2))
        );
    }
}
