//! The HTTP(S) proxy the node's calls to STS go through.
//!
//! On-premises compute nodes usually reach the internet only through a proxy. The map says
//! which (`[sts] proxy` and `no_proxy`); a daemon whose environment the administrators set
//! (the refresher's systemd unit) may use the standard variables instead when the map names
//! none ([`ProxySetting::Environment`]). The prolog and epilog never read proxy variables:
//! Slurm gives a Prolog no environment, and nothing a job sets may steer the node's own
//! calls.
//!
//! Parsing is the `http` crate's (the URI type the SDK's client takes), and which requests go through the proxy is decided by
//! hyper-util's matcher, the one the SDK's HTTP client uses, so a message says "through the
//! proxy" exactly when a request went through it. A user name and password in the URL
//! (`http://user:pass@host:3128`) are sent to the proxy as `Proxy-Authorization: Basic` and
//! shown nowhere: not in messages, not in `Debug`, not by `--check-config`.
//!
//! The instance-metadata service is link-local and never behind a proxy: its addresses are
//! always bypassed ([`IMDS_HOSTS`]), and the default chain's metadata client has an HTTP
//! client without a proxy (`sts/identity.rs`).

use std::fmt;

use http::Uri;

/// Hosts a proxy is never used for: IMDS (IPv4, IPv6) and the ECS/EKS container
/// credentials address, all on the node's own link.
pub const IMDS_HOSTS: &[&str] = &["169.254.169.254", "fd00:ec2::254", "169.254.170.2"];

/// The map's proxy: an `http://` or `https://` URL, with the hosts that bypass it.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    url: Uri,
    no_proxy: Vec<String>,
}

/// Why a proxy URL was refused; never quotes a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyUrlError {
    #[error("it is not a URL ({0})")]
    NotUrl(String),
    #[error("it has no scheme: write http://host:port (or https://)")]
    NoScheme,
    #[error("its scheme is {0:?}: a proxy for STS is http:// or https:// (CONNECT carries the TLS to STS)")]
    Scheme(String),
    #[error("it has no host")]
    NoHost,
    #[error(
        "it has a path, query or fragment: a proxy URL is scheme://[user:password@]host[:port]"
    )]
    Path,
}

impl Proxy {
    /// `url` as written in the map, `no_proxy` its bypass rules (each already checked by
    /// [`is_no_proxy_rule`]).
    pub fn parse(url: &str, no_proxy: Vec<String>) -> Result<Proxy, ProxyUrlError> {
        // http's URI drops a fragment without a word.
        if url.contains('#') {
            return Err(ProxyUrlError::Path);
        }
        let url: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| ProxyUrlError::NotUrl(e.to_string()))?;
        match url.scheme_str() {
            None => return Err(ProxyUrlError::NoScheme),
            Some("http" | "https") => {}
            Some(other) => return Err(ProxyUrlError::Scheme(other.to_string())),
        }
        if url.host().is_none_or(str::is_empty) {
            return Err(ProxyUrlError::NoHost);
        }
        // http's URI takes a port it cannot read (99999) as no port at all.
        let host_port = url
            .authority()
            .and_then(|a| a.as_str().rsplit('@').next())
            .unwrap_or_default();
        let after_host = host_port.rsplit_once(']').map_or(host_port, |(_, p)| p);
        if after_host.contains(':') && url.port_u16().is_none_or(|p| p == 0) {
            return Err(ProxyUrlError::NotUrl("the port is not 1 to 65535".into()));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(ProxyUrlError::Path);
        }
        Ok(Proxy { url, no_proxy })
    }

    /// `scheme://host:port`, never the user name or password.
    pub fn shown(&self) -> String {
        let scheme = self.url.scheme_str().unwrap_or("http");
        let host = self.url.host().unwrap_or_default();
        let port = self
            .url
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        format!("{scheme}://{host}:{port}")
    }

    /// Whether the URL carries a user name or password (for `--check-config`: "set, not shown").
    pub fn has_credentials(&self) -> bool {
        self.url
            .authority()
            .is_some_and(|a| a.as_str().contains('@'))
    }

    /// The map's bypass rules, without the ones always added ([`IMDS_HOSTS`]).
    pub fn no_proxy(&self) -> &[String] {
        &self.no_proxy
    }

    /// The bypass rules the HTTP client gets: the map's and [`IMDS_HOSTS`], comma-separated.
    pub fn no_proxy_rules(&self) -> String {
        let mut rules: Vec<&str> = self.no_proxy.iter().map(String::as_str).collect();
        rules.extend(IMDS_HOSTS);
        rules.join(",")
    }

    /// The URL with its credentials, for the HTTP client alone.
    #[cfg(any(feature = "sts", test))]
    pub(crate) fn secret_url(&self) -> String {
        self.url.to_string()
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.shown())
            .field("credentials", &self.has_credentials())
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

/// Which proxy the node's STS calls use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ProxySetting {
    /// Straight to STS (the map names no proxy).
    #[default]
    Direct,
    /// The map's `[sts] proxy`; it wins over any variable.
    Map(Proxy),
    /// `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (upper or lower case) of
    /// the process's environment, as curl reads them; only a daemon that chooses to
    /// ([`ProxySetting::or_environment`]).
    Environment,
}

impl ProxySetting {
    /// This setting, or the environment's proxy variables when the map names no proxy.
    pub fn or_environment(self) -> ProxySetting {
        match self {
            ProxySetting::Direct => ProxySetting::Environment,
            other => other,
        }
    }
}

/// A proxy URL as written, for a message about it: what comes before an `@` (a user name and
/// password) is left out.
pub fn redacted(raw: &str) -> String {
    match raw.rsplit_once('@') {
        Some((before, after)) => {
            let scheme = before.split_once("://").map_or("", |(s, _)| s);
            if scheme.is_empty() {
                format!("…@{after}")
            } else {
                format!("{scheme}://…@{after}")
            }
        }
        None => raw.to_string(),
    }
}

/// Whether `rule` is one `no_proxy` entry as curl and hyper-util read them: a host name or
/// domain (`.example.com` or `example.com` covers its subdomains), an IP address, a CIDR
/// block, or `*` (every host).
pub fn is_no_proxy_rule(rule: &str) -> bool {
    !rule.is_empty()
        && rule.len() <= 253
        && rule
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '/' | '*'))
}

#[cfg(feature = "sts")]
mod route {
    use super::*;
    use aws_smithy_http_client::proxy::ProxyConfig;
    use hyper_util::client::proxy::matcher::Matcher;

    impl ProxySetting {
        /// The SDK HTTP client's proxy configuration; `Err` (never a silent direct call)
        /// if the SDK refuses a URL the map accepted.
        pub(crate) fn sdk_config(&self) -> Result<Option<ProxyConfig>, String> {
            match self {
                ProxySetting::Direct => Ok(None),
                // `all`: the proxy carries http:// (a test emulator) as well as https://
                // (CONNECT).
                ProxySetting::Map(p) => match ProxyConfig::all(p.secret_url()) {
                    Ok(c) => Ok(Some(c.no_proxy(p.no_proxy_rules()))),
                    Err(_) => Err(format!(
                        "the HTTP client does not take the proxy URL {}",
                        p.shown()
                    )),
                },
                ProxySetting::Environment => Ok(Some(ProxyConfig::from_env())),
            }
        }

        /// The proxy a request to `target` goes through (`scheme://host:port`, never its
        /// credentials), or `None` when it goes straight there.
        pub fn via(&self, target: &str) -> Option<String> {
            let matcher = match self {
                ProxySetting::Direct => return None,
                ProxySetting::Map(p) => Matcher::builder()
                    .all(p.secret_url())
                    .no(p.no_proxy_rules())
                    .build(),
                ProxySetting::Environment => Matcher::from_env(),
            };
            let uri: http::Uri = target.parse().ok()?;
            let intercept = matcher.intercept(&uri)?;
            // hyper-util keeps the credentials apart from the URI.
            let u = intercept.uri();
            let scheme = u.scheme_str().unwrap_or("http");
            let host = u.host()?;
            let port = u
                .port_u16()
                .unwrap_or(if scheme == "https" { 443 } else { 80 });
            Some(format!("{scheme}://{host}:{port}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_url_is_http_or_https_with_a_host_and_nothing_after_it() {
        for good in [
            "http://proxy.example.com:3128",
            "http://proxy.example.com:3128/",
            "https://proxy.example.com",
            "http://10.0.0.1:8080",
            "http://[fd00::1]:3128",
            "http://user:p%40ss@proxy:3128",
        ] {
            assert!(Proxy::parse(good, vec![]).is_ok(), "{good}");
        }
        let bad = |u: &str| Proxy::parse(u, vec![]).err();
        assert!(
            matches!(bad("socks5://proxy:1080"), Some(ProxyUrlError::Scheme(s)) if s == "socks5")
        );
        assert!(matches!(bad("ftp://proxy"), Some(ProxyUrlError::Scheme(_))));
        assert!(matches!(bad("proxy:3128"), Some(ProxyUrlError::NoScheme)));
        assert!(matches!(
            bad("proxy.example.com"),
            Some(ProxyUrlError::NoScheme)
        ));
        assert!(matches!(
            bad("http://proxy:3128/#x"),
            Some(ProxyUrlError::Path)
        ));
        assert!(matches!(
            bad("http://pro xy:3128"),
            Some(ProxyUrlError::NotUrl(_))
        ));
        assert!(matches!(
            bad("http://proxy:3128/path"),
            Some(ProxyUrlError::Path)
        ));
        assert!(matches!(
            bad("http://proxy:3128/?a=b"),
            Some(ProxyUrlError::Path)
        ));
        assert!(matches!(
            bad("http://proxy:99999"),
            Some(ProxyUrlError::NotUrl(_))
        ));
        assert!(matches!(bad("http://"), Some(ProxyUrlError::NotUrl(_))));
        assert!(matches!(
            bad("http://proxy:0"),
            Some(ProxyUrlError::NotUrl(_))
        ));
        assert!(matches!(
            bad("http://[fd00::1]:x"),
            Some(ProxyUrlError::NotUrl(_))
        ));
    }

    #[test]
    fn a_proxys_password_is_never_shown() {
        let p = Proxy::parse("http://alice:s3cr3t-pw@proxy.example.com:3128", vec![]).unwrap();
        assert!(p.has_credentials());
        assert_eq!(p.shown(), "http://proxy.example.com:3128");
        assert_eq!(p.to_string(), "http://proxy.example.com:3128");
        for text in [format!("{p:?}"), p.to_string()] {
            assert!(!text.contains("s3cr3t"), "{text}");
            assert!(!text.contains("alice"), "{text}");
        }
        // The HTTP client alone gets them.
        assert!(p.secret_url().contains("alice:s3cr3t-pw@"));
        // A value that did not parse is shown without what comes before the '@'.
        assert_eq!(
            redacted("socks5://alice:s3cr3t@proxy:1080"),
            "socks5://…@proxy:1080"
        );
        assert_eq!(redacted("alice:s3cr3t@proxy:1080"), "…@proxy:1080");
        assert_eq!(redacted("http://proxy:3128"), "http://proxy:3128");
        let plain = Proxy::parse("https://proxy", vec![]).unwrap();
        assert!(!plain.has_credentials());
        assert_eq!(plain.shown(), "https://proxy:443");
        assert_eq!(
            Proxy::parse("http://[fd00::1]", vec![]).unwrap().shown(),
            "http://[fd00::1]:80"
        );
        assert_eq!(
            Proxy::parse("http://[fd00::1]", vec![]).unwrap().shown(),
            "http://[fd00::1]:80"
        );
    }

    #[test]
    fn imds_always_bypasses_the_proxy() {
        let p = Proxy::parse("http://proxy:3128", vec![".internal".into()]).unwrap();
        assert_eq!(
            p.no_proxy_rules(),
            ".internal,169.254.169.254,fd00:ec2::254,169.254.170.2"
        );
        assert_eq!(p.no_proxy(), [".internal".to_string()]);
    }

    #[test]
    fn no_proxy_rules_are_hosts_addresses_or_blocks() {
        for good in [
            "*",
            ".example.com",
            "example.com",
            "10.0.0.0/8",
            "fd00::/8",
            "host-1",
        ] {
            assert!(is_no_proxy_rule(good), "{good}");
        }
        for bad in ["", "a b", "a,b", "host\n", "ex@mple"] {
            assert!(!is_no_proxy_rule(bad), "{bad:?}");
        }
    }

    #[cfg(feature = "sts")]
    #[test]
    fn the_route_is_the_matchers_own() {
        let p = ProxySetting::Map(
            Proxy::parse(
                "http://u:pw@proxy.example.com:3128",
                vec![".internal".into(), "10.0.0.0/8".into()],
            )
            .unwrap(),
        );
        let through = Some("http://proxy.example.com:3128".to_string());
        assert_eq!(p.via("https://sts.us-east-1.amazonaws.com"), through);
        assert_eq!(p.via("http://127.0.0.1:5000"), through);
        assert_eq!(p.via("https://sts.vpce.internal"), None);
        assert_eq!(p.via("https://10.1.2.3"), None);
        assert_eq!(p.via("http://169.254.169.254/latest/api/token"), None);
        assert_eq!(p.via("http://[fd00:ec2::254]/latest/api/token"), None);
        assert_eq!(ProxySetting::Direct.via("https://sts.amazonaws.com"), None);
        assert!(matches!(p.sdk_config(), Ok(Some(_))));
        assert!(matches!(ProxySetting::Direct.sdk_config(), Ok(None)));
        assert_eq!(
            ProxySetting::Direct.or_environment(),
            ProxySetting::Environment
        );
        assert_eq!(p.clone().or_environment(), p);
    }
}
