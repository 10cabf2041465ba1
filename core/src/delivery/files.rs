//! The files delivery: the job's credentials as files in its directory, and an AWS config
//! whose `credential_process` prints them. Every SDK and the CLI run that helper and refresh
//! by themselves before the `Expiration` it reports; tools that cannot run a helper read
//! the static keys of the `credentials` file ([`AWS_ROLE_CREDENTIALS_FILE`](Files::env)).

use std::path::Path;

use super::Delivery;
use crate::creds::Credentials;
use crate::map::RoleMap;
use crate::store::{JobDir, Reader, StoreError, CONFIG, CREDENTIALS_INI, CREDENTIALS_JSON};

/// `credentials.json` (what the helper prints), `credentials` (INI, static keys) and
/// `config` (region and `credential_process`), all the job user's, mode 0600.
pub struct Files;

impl Delivery for Files {
    fn write(
        &self,
        map: &RoleMap,
        dir: &JobDir,
        creds: &Credentials,
        user: Reader,
    ) -> Result<(), StoreError> {
        dir.write(CREDENTIALS_JSON, creds.to_process_json().as_bytes(), user)?;
        dir.write(CREDENTIALS_INI, creds.to_ini().as_bytes(), user)?;
        dir.write(CONFIG, config_file(map, dir).as_bytes(), user)
    }

    fn files(&self) -> &'static [&'static str] {
        &[CREDENTIALS_JSON, CREDENTIALS_INI, CONFIG]
    }

    fn env(&self, dir: &Path) -> Vec<(&'static str, String)> {
        let mut v = vec![
            // Every SDK runs the job's credential_process from here and refreshes by itself.
            ("AWS_CONFIG_FILE", dir.join(CONFIG).display().to_string()),
            // Nothing in ~/.aws/credentials may shadow the job's role.
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_string()),
            // Static keys, for tools that cannot run a credential_process.
            (
                "AWS_ROLE_CREDENTIALS_FILE",
                dir.join(CREDENTIALS_INI).display().to_string(),
            ),
            // The same keys where GDAL before 3.10 looks. Not AWS_CREDENTIAL_FILE (s3cmd's):
            // botocore reads it too and fails outright where the file is missing, as in
            // every container the job starts; and s3cmd asks IMDS even when it has it.
            (
                "CPL_AWS_CREDENTIALS_FILE",
                dir.join(CREDENTIALS_INI).display().to_string(),
            ),
            // A job with a role never falls through to the node's instance profile.
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            // Go SDK v1 reads credential_process from the config file only with this.
            ("AWS_SDK_LOAD_CONFIG", "1".to_string()),
        ];
        // Tools that ignore the config file would default to us-east-1.
        if let Some(region) = region_of(&dir.join(CONFIG)) {
            v.push(("AWS_REGION", region.clone()));
            v.push(("AWS_DEFAULT_REGION", region));
        }
        v
    }
}

/// The region the job's config file names (the map's `[sts] region` when it was written),
/// when it is a plain region name.
fn region_of(config: &Path) -> Option<String> {
    let ini = ini::Ini::load_from_file(config).ok()?;
    let region = ini.section(Some("default"))?.get("region")?;
    let plain = !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    plain.then(|| region.to_string())
}

/// The job's AWS config file: every SDK gets its credentials from our helper, which
/// prints the current credentials (refreshed on the node) with their expiry.
pub fn config_file(map: &RoleMap, dir: &JobDir) -> String {
    let mut ini = ini::Ini::new();
    ini.with_section(Some("default"))
        .set("region", map.sts.region.as_str())
        .set(
            "credential_process",
            format!(
                "{} {}",
                map.node.credential_helper.display(),
                dir.path().display()
            ),
        );
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = ini.write_to(&mut out);
    let text = String::from_utf8(out).unwrap_or_default();
    format!("# Written by aws-role for this job; it is replaced while the job runs.\n{text}")
}
