//! The CA certificates an STS client trusts, loaded no more than its endpoint needs.
//!
//! The SDK's TLS layer asks rustls-native-certs for the system's CA certificates when a
//! client is built. Left to itself, that reads the distribution's CA bundle file *and* every
//! file of the certificate directories (`/etc/ssl/certs`: ~290 entries on Debian, each CA
//! a second time), and decodes them all with a constant-time base64 decoder: ~18 million
//! instructions, about 5 ms, in every prolog, a process that makes one call and exits. And
//! it did so even for a plain `http://` endpoint. So:
//!
//! - an `http://` endpoint (only ever a local emulator, in tests) gets no CA certificate at
//!   all ([`trust_for`]): no TLS connection is ever made to it;
//! - for an `https://` endpoint (real STS, a VPC endpoint), the binaries call
//!   [`use_bundle_file`] first, which points rustls-native-certs at the distribution's CA
//!   bundle file alone, the first of [`BUNDLES`] that exists: one file, no directory scan,
//!   about half the cost. `update-ca-certificates` (Debian, Ubuntu, SUSE) and
//!   `update-ca-trust` (RHEL and its rebuilds) put every CA the system trusts into that
//!   file; only a certificate dropped into the directory by hand (Debian's self-signed
//!   `ssl-cert-snakeoil.pem`, say) is no longer trusted.
//!
//! rustls-native-certs loads once per process and the SDK keeps what it loaded, so the
//! refresher, which builds a client per refresh, decodes the bundle once, as before. (The
//! SDK's other way in, PEM in a `TrustStore`, decodes the PEM again for every connector it
//! builds, twice per call: dearer than the directory scan.)

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use aws_smithy_http_client::tls::{TlsContext, TrustStore};

/// The CA bundle files distributions generate from their trust store, tried in this order:
/// the Linux list of openssl-probe, which rustls-native-certs itself tries first.
pub const BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Gentoo
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // RHEL 7+, Rocky, Alma, Fedora
    "/etc/pki/tls/certs/ca-bundle.crt",   // RHEL 6, older Fedora
    "/etc/ssl/ca-bundle.pem",             // openSUSE, SLES
    "/etc/pki/tls/cacert.pem",            // OpenELEC
    "/etc/ssl/cert.pem",                  // Alpine
    "/opt/etc/ssl/certs/ca-certificates.crt", // Entware
    "/etc/ssl/certs/cacert.pem",          // OpenHarmony
];

/// rustls-native-certs reads these two instead of searching when either is set.
const ENV_FILE: &str = "SSL_CERT_FILE";
const ENV_DIR: &str = "SSL_CERT_DIR";

/// Where the CA certificates for an https endpoint come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// `SSL_CERT_FILE`/`SSL_CERT_DIR` were already set: rustls-native-certs reads them.
    Environment,
    /// The distribution's CA bundle file alone.
    Bundle(PathBuf),
    /// No bundle file: rustls-native-certs searches its usual files and directories.
    Search,
}

/// The TLS context of a client for `endpoint` (`None`: the regional endpoint, https): no CA
/// certificate for plain `http://`, else the system's (see [`use_bundle_file`]).
pub fn trust_for(endpoint: Option<&str>) -> TlsContext {
    if endpoint.is_some_and(is_plain_http) {
        context(TrustStore::empty())
    } else {
        system()
    }
}

/// The TLS context with the system's CA certificates (for the default credential chain's
/// own https clients too).
pub fn system() -> TlsContext {
    context(TrustStore::default())
}

/// Whether `endpoint` is plain `http://` (the map accepts only lower-case schemes).
pub fn is_plain_http(endpoint: &str) -> bool {
    endpoint.starts_with("http://")
}

fn context(store: TrustStore) -> TlsContext {
    TlsContext::builder()
        .with_trust_store(store)
        .build()
        // Cannot fail in aws-smithy-http-client 1.x; the default context trusts the
        // system's CA certificates.
        .unwrap_or_default()
}

/// Points rustls-native-certs at the system's CA bundle file alone, by setting
/// `SSL_CERT_FILE` in this process's environment, unless `SSL_CERT_FILE` or `SSL_CERT_DIR`
/// is set already (the administrator's choice wins) or no bundle file exists (then it
/// searches as it always did). Returns where the certificates will come from.
///
/// It changes the environment, so call it while the process has a single thread: before
/// the async runtime is built, and before anything else could read the environment.
pub fn use_bundle_file() -> Roots {
    let roots = choose(
        std::env::var_os(ENV_FILE),
        std::env::var_os(ENV_DIR),
        BUNDLES,
    );
    if let Roots::Bundle(path) = &roots {
        std::env::set_var(ENV_FILE, path);
    }
    roots
}

/// [`use_bundle_file`]'s choice, given the two variables and the candidate bundles.
pub fn choose(file: Option<OsString>, dirs: Option<OsString>, candidates: &[&str]) -> Roots {
    // As rustls-native-certs reads them: any SSL_CERT_FILE, a non-empty SSL_CERT_DIR entry.
    let dirs_set =
        dirs.is_some_and(|d| std::env::split_paths(&d).any(|p| !p.as_os_str().is_empty()));
    if file.is_some() || dirs_set {
        return Roots::Environment;
    }
    candidates
        .iter()
        .map(Path::new)
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() > 0))
        .map_or(Roots::Search, |p| Roots::Bundle(p.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system_bundle() -> Option<&'static str> {
        BUNDLES.iter().copied().find(|p| Path::new(p).is_file())
    }

    #[test]
    fn only_plain_http_goes_without_ca_certificates() {
        assert!(is_plain_http("http://127.0.0.1:5059"));
        assert!(is_plain_http("http://[::1]/sts"));
        assert!(!is_plain_http("https://sts.us-east-1.amazonaws.com"));
        assert!(!is_plain_http("https://127.0.0.1:5059"));
    }

    #[test]
    fn the_environment_wins_then_the_first_bundle_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let real = dir.path().join("bundle.pem");
        std::fs::write(&real, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let missing = dir.path().join("missing.pem");
        let (e, r, m) = (
            empty.to_str().unwrap(),
            real.to_str().unwrap(),
            missing.to_str().unwrap(),
        );
        let d = dir.path().to_str().unwrap();
        assert_eq!(
            choose(None, None, &[m, e, d, r]),
            Roots::Bundle(real.clone())
        );
        assert_eq!(choose(None, None, &[m, e, d]), Roots::Search);
        assert_eq!(choose(None, None, &[]), Roots::Search);
        assert_eq!(choose(Some("/x".into()), None, &[r]), Roots::Environment);
        assert_eq!(choose(None, Some("/x".into()), &[r]), Roots::Environment);
        // An empty SSL_CERT_DIR is not set, for rustls-native-certs.
        assert_eq!(choose(None, Some("".into()), &[r]), Roots::Bundle(real));
    }

    /// What an https client on this machine (the test VMs: Debian 12) will trust: the
    /// distribution's bundle, from which rustls loads many CA certificates.
    #[test]
    fn the_system_bundle_has_ca_certificates_rustls_accepts() {
        let Some(bundle) = system_bundle() else {
            eprintln!("no CA bundle file on this machine: skipped");
            return;
        };
        assert_eq!(choose(None, None, BUNDLES), Roots::Bundle(bundle.into()));
        let loaded = rustls_native_certs::load_certs_from_paths(Some(Path::new(bundle)), None);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let mut roots = rustls::RootCertStore::empty();
        let (valid, invalid) = roots.add_parsable_certificates(loaded.certs);
        assert!(
            valid >= 50,
            "{bundle}: {valid} usable CA certificates, {invalid} not"
        );
    }
}
