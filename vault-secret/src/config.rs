//! Where Vault is and how to talk to it: address, namespace, TLS, timeout
//! and retries, read from the environment through an injectable [`Env`].
//! The HTTP client these settings make is built in [`crate::tls`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use secret_core::Env;
use url::Url;

use crate::error::ConfigKind;
use crate::error::Error;
use crate::input;
use crate::variables::{self as var, Variable};

/// The default request timeout, as Vault's CLI (`VAULT_CLIENT_TIMEOUT`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The default number of retries, as Vault's CLI (`VAULT_MAX_RETRIES`).
pub const DEFAULT_MAX_RETRIES: u32 = 2;

/// The largest answer read by default (KV reads, logins, leases, any
/// call): 4 MiB, far above any secret or login answer, and small enough that
/// a hostile one cannot cost much memory. [`VaultConfig::with_max_response_size`]
/// changes it.
pub const DEFAULT_MAX_RESPONSE_SIZE: usize = 4 * 1024 * 1024;

/// What a whole call (its retries and waits included) may take beyond one
/// request's timeout, unless [`VaultConfig::with_deadline`] says otherwise.
const RETRY_ALLOWANCE: Duration = Duration::from_secs(30);

/// The variables the address is read from, first set wins (as Vault's CLI:
/// a local agent or proxy, when named, takes the requests).
const ADDRESS_VARIABLES: [Variable; 3] = [
    var::VAULT_AGENT_ADDR,
    var::VAULT_ADDR,
    var::VAULT_ADDR_LOWERCASE,
];

/// How to reach a Vault server.
///
/// [`VaultConfig::from_env`] reads the variables [`crate::variables::ALL`]
/// declares (all but the credentials'):
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `VAULT_AGENT_ADDR`, else `VAULT_ADDR`, else `vault_addr` | the server's URL (`http` or `https`); the agent's, when set, takes the requests | none: an error naming them |
/// | `VAULT_NAMESPACE` | the namespace (Vault Enterprise, OpenBao) | none |
/// | `VAULT_CACERT` | a PEM file of CA certificates: the only roots trusted (the system's are then not) | the system's roots |
/// | `VAULT_CAPATH` | a directory of PEM CA certificates: the only roots trusted, with `VAULT_CACERT`'s | none |
/// | `VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY` | a PEM client certificate and key (both or neither) | none |
/// | `VAULT_SKIP_VERIFY` | `true` to skip TLS verification (never in production) | `false` |
/// | `VAULT_TLS_SERVER_NAME` | the name the server's certificate is verified against (and sent as SNI), when the address's host is not on it | the address's host |
/// | `VAULT_CLIENT_TIMEOUT` | request timeout: seconds, or `30s`, `2m`, `500ms` | 60 s |
/// | `VAULT_MAX_RETRIES` | retries of a call after a connection error, 412, 429 or 5xx (0: none) | 2 |
///
/// Each setting has a getter and a `with_` setter of the same name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VaultConfig {
    address: Url,
    address_variable: Option<&'static str>,
    namespace: Option<String>,
    ca_cert: Option<PathBuf>,
    ca_path: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
    skip_verify: bool,
    timeout: Duration,
    max_retries: u32,
    deadline: Option<Duration>,
    tls_server_name: Option<String>,
    max_response_size: usize,
}

impl VaultConfig {
    /// A configuration for `address`, with defaults for everything else.
    pub fn new(address: &str) -> Result<Self, Error> {
        Ok(Self::with_url(parse_address("address", address)?, None))
    }

    fn with_url(address: Url, address_variable: Option<&'static str>) -> Self {
        VaultConfig {
            address,
            address_variable,
            namespace: None,
            ca_cert: None,
            ca_path: None,
            client_cert: None,
            skip_verify: false,
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            deadline: None,
            tls_server_name: None,
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
        }
    }

    /// Reads the configuration from `env` (see the table above).
    pub fn from_env(env: &Env) -> Result<Self, Error> {
        let mut found = None;
        for variable in ADDRESS_VARIABLES {
            if let Some(value) = read(env, &variable)? {
                found = Some((variable.name, value));
                break;
            }
        }
        let (variable, raw) = found.ok_or(Error::MissingAddress)?;
        let mut config = Self::with_url(parse_address(variable, &raw)?, Some(variable));
        config.apply_env(env)?;
        Ok(config)
    }

    /// Reads everything but the address from `env`.
    pub(crate) fn apply_env(&mut self, env: &Env) -> Result<(), Error> {
        if let Some(ns) = read(env, &var::VAULT_NAMESPACE)? {
            self.namespace =
                input::namespace(&ns).map_err(|e| e.for_variable(var::VAULT_NAMESPACE.name))?;
        }
        self.ca_cert = read_path(env, &var::VAULT_CACERT)?;
        self.ca_path = read_path(env, &var::VAULT_CAPATH)?;
        let cert = read_path(env, &var::VAULT_CLIENT_CERT)?;
        let key = read_path(env, &var::VAULT_CLIENT_KEY)?;
        self.client_cert = client_pair(cert, key)?;
        if let Some(v) = read(env, &var::VAULT_SKIP_VERIFY)? {
            self.skip_verify =
                input::boolean(&v).map_err(|e| e.for_variable(var::VAULT_SKIP_VERIFY.name))?;
        }
        if let Some(v) = read(env, &var::VAULT_CLIENT_TIMEOUT)? {
            self.timeout =
                input::duration(&v).map_err(|e| e.for_variable(var::VAULT_CLIENT_TIMEOUT.name))?;
        }
        if let Some(v) = read(env, &var::VAULT_MAX_RETRIES)? {
            self.max_retries =
                input::retries(&v).map_err(|e| e.for_variable(var::VAULT_MAX_RETRIES.name))?;
        }
        if let Some(name) = read(env, &var::VAULT_TLS_SERVER_NAME)? {
            self.tls_server_name = Some(tls_server_name(&name)?);
        }
        Ok(())
    }

    /// This configuration with another address (its other settings kept).
    pub(crate) fn with_address(mut self, address: &str) -> Result<Self, Error> {
        self.address = parse_address("address", address)?;
        self.address_variable = None;
        Ok(self)
    }

    /// The server's URL.
    pub fn address(&self) -> &Url {
        &self.address
    }

    /// The variable the address came from (`VAULT_AGENT_ADDR`, `VAULT_ADDR`
    /// or `vault_addr`); `None` when it was given in code.
    pub fn address_variable(&self) -> Option<&'static str> {
        self.address_variable
    }

    /// The namespace, if any (`VAULT_NAMESPACE`).
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Sets the namespace (`None` for the root namespace).
    #[must_use]
    pub fn with_namespace(mut self, namespace: Option<&str>) -> Self {
        self.namespace = namespace
            .map(|ns| ns.trim().trim_matches('/').to_owned())
            .filter(|ns| !ns.is_empty());
        self
    }

    /// The CA certificate file trusted (`VAULT_CACERT`), if any.
    pub fn ca_cert(&self) -> Option<&Path> {
        self.ca_cert.as_deref()
    }

    /// Trusts the CA certificates in this PEM file (`VAULT_CACERT`).
    #[must_use]
    pub fn with_ca_cert(mut self, file: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(file.into());
        self
    }

    /// The CA certificate directory trusted (`VAULT_CAPATH`), if any.
    pub fn ca_path(&self) -> Option<&Path> {
        self.ca_path.as_deref()
    }

    /// Trusts the PEM CA certificates in this directory (`VAULT_CAPATH`).
    #[must_use]
    pub fn with_ca_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.ca_path = Some(dir.into());
        self
    }

    /// The client certificate and key files (`VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY`), if any.
    pub fn client_cert(&self) -> Option<(&Path, &Path)> {
        self.client_cert
            .as_ref()
            .map(|(cert, key)| (cert.as_path(), key.as_path()))
    }

    /// Presents this PEM client certificate and key (`VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY`).
    #[must_use]
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert.into(), key.into()));
        self
    }

    /// Whether TLS certificates go unverified (`VAULT_SKIP_VERIFY`).
    pub fn skip_verify(&self) -> bool {
        self.skip_verify
    }

    /// Skips (`true`) or makes TLS certificate verification (`VAULT_SKIP_VERIFY`; never in production).
    #[must_use]
    pub fn with_skip_verify(mut self, skip: bool) -> Self {
        self.skip_verify = skip;
        self
    }

    /// The name the server's certificate is verified against (`VAULT_TLS_SERVER_NAME`), if set.
    pub fn tls_server_name(&self) -> Option<&str> {
        self.tls_server_name.as_deref()
    }

    /// Verifies the server's certificate against `name` (`VAULT_TLS_SERVER_NAME`)
    /// rather than the address's host, which is still where requests connect.
    pub fn with_tls_server_name(mut self, name: &str) -> Result<Self, Error> {
        self.tls_server_name = Some(tls_server_name(name)?);
        Ok(self)
    }

    /// The request timeout (`VAULT_CLIENT_TIMEOUT`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets the request timeout (`VAULT_CLIENT_TIMEOUT`).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a failed call is retried (`VAULT_MAX_RETRIES`).
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// Sets how many times a failed call is retried (`VAULT_MAX_RETRIES`; 0 for none).
    #[must_use]
    pub fn with_max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The most a whole call may take, its retries and waits included
    /// (unless set: the request timeout plus 30 s).
    pub fn deadline(&self) -> Duration {
        self.deadline
            .unwrap_or_else(|| self.timeout.saturating_add(RETRY_ALLOWANCE))
    }

    /// Sets the most a whole call may take, its retries and waits included.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The largest answer read, in bytes (default
    /// [`DEFAULT_MAX_RESPONSE_SIZE`]); a larger one is a
    /// [`TransportKind::Body`](crate::TransportKind::Body) error.
    pub fn max_response_size(&self) -> usize {
        self.max_response_size
    }

    /// Sets the largest answer read, in bytes (a secret holding a large
    /// file may need more than the 4 MiB default).
    #[must_use]
    pub fn with_max_response_size(mut self, bytes: usize) -> Self {
        self.max_response_size = bytes;
        self
    }

    /// The base URL requests are sent to: the address, with its host
    /// replaced by the TLS server name when one is set (the connection
    /// still goes to the address's host: see [`crate::tls`]).
    pub(crate) fn request_base(&self) -> String {
        match (&self.tls_server_name, self.address.scheme()) {
            (Some(name), "https") => {
                let mut url = self.address.clone();
                if url.set_host(Some(name)).is_ok() {
                    return url.as_str().trim_end_matches('/').to_owned();
                }
                self.base().to_owned()
            }
            _ => self.base().to_owned(),
        }
    }

    /// The address as a string without a trailing slash, for messages and the client.
    pub(crate) fn base(&self) -> &str {
        self.address.as_str().trim_end_matches('/')
    }

    /// Checks what a builder may have set without checks (the namespace),
    /// so that nothing unusable reaches a request.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if let Some(ns) = &self.namespace {
            input::namespace(ns).map_err(|e| e.for_variable("namespace"))?;
        }
        Ok(())
    }
}

/// `variable`'s value, `None` when unset or blank.
fn read(env: &Env, variable: &Variable) -> Result<Option<String>, Error> {
    Ok(env.get(variable.name)?.filter(|v| !v.trim().is_empty()))
}

/// A file or directory path from `variable`, checked as [`input::file_path`].
fn read_path(env: &Env, variable: &Variable) -> Result<Option<PathBuf>, Error> {
    read(env, variable)?
        .map(|v| {
            input::file_path(&v)
                .map(PathBuf::from)
                .map_err(|e| e.for_variable(variable.name))
        })
        .transpose()
}

/// The client certificate and key: both or neither.
fn client_pair(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<Option<(PathBuf, PathBuf)>, Error> {
    let (cert_name, key_name) = (var::VAULT_CLIENT_CERT.name, var::VAULT_CLIENT_KEY.name);
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some((cert, key))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(Error::config_kind(
            key_name,
            ConfigKind::HalfPair,
            format!("must be set when {cert_name} is"),
        )),
        (None, Some(_)) => Err(Error::config_kind(
            cert_name,
            ConfigKind::HalfPair,
            format!("must be set when {key_name} is"),
        )),
    }
}

/// A DNS name to verify the server's certificate against.
fn tls_server_name(raw: &str) -> Result<String, Error> {
    let variable = var::VAULT_TLS_SERVER_NAME.name;
    let name = input::name("a server name", raw)
        .map_err(|e| e.for_variable(variable))?
        .to_ascii_lowercase();
    let valid = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !valid || name.len() > 253 {
        return Err(Error::config_kind(
            variable,
            ConfigKind::NotAName,
            format!(
                "`{}` is not a DNS name (letters, digits, dashes and dots, e.g. vault.example.com)",
                input::shown(&name)
            ),
        ));
    }
    Ok(name)
}

/// An `http(s)` URL with a host and maybe a path prefix (a Vault behind a
/// reverse proxy at `https://proxy/vault`; requests go to `<address>/v1/...`,
/// as Vault's own client sends them), and nothing else: no user info, query
/// or fragment. A trailing `/v1`, the API prefix users often copy, is
/// dropped. The error names the variable; it shows the address only without
/// user info and query, which may hold credentials.
pub(crate) fn parse_address(variable: &str, raw: &str) -> Result<Url, Error> {
    const EXAMPLE: &str = "expected e.g. https://vault.example.com:8200";
    let raw = input::header_value("an address", raw, input::MAX_ADDRESS_LEN)
        .map_err(|e| e.for_variable(variable))?;
    // Built only for an error message.
    let shown = || input::shown_address(raw);
    let fail = |reason: String| Error::config_kind(variable, ConfigKind::NotAUrl, reason);
    if !raw.contains("://") {
        return Err(fail(format!(
            "`{}` does not start with http:// or https://; {EXAMPLE}",
            shown()
        )));
    }
    let mut url = Url::parse(raw)
        .map_err(|e| fail(format!("`{}` is not a URL ({e}); {EXAMPLE}", shown())).caused_by(e))?;
    check_url_parts(&url, fail, shown)?;
    let path = url.path().trim_end_matches('/').to_owned();
    // Vault's CLI users write the API prefix in; requests add it themselves.
    let prefix = match path.strip_suffix("/v1") {
        Some(prefix) => {
            tracing::debug!(variable, "dropping `/v1` at the end of the address");
            prefix
        }
        None => path.as_str(),
    };
    url.set_path(if prefix.is_empty() { "/" } else { prefix });
    match (url.scheme(), url.port()) {
        ("http", Some(443)) => Err(fail(format!(
            "`{}` is plain http on port 443, the HTTPS port; use https://",
            shown()
        ))),
        ("https", Some(80)) => Err(fail(format!(
            "`{}` is https on port 80, the plain-HTTP port; use http:// or the TLS port",
            shown()
        ))),
        _ => Ok(url),
    }
}

/// Refuses a scheme other than `http(s)`, no host, user info, a query or
/// fragment, and an `@` in the path.
fn check_url_parts(
    url: &Url,
    fail: impl Fn(String) -> Error,
    shown: impl Fn() -> String,
) -> Result<(), Error> {
    const EXAMPLE: &str = "expected e.g. https://vault.example.com:8200";
    if !matches!(url.scheme(), "http" | "https") {
        return Err(fail(format!(
            "`{}` does not start with http:// or https://; {EXAMPLE}",
            shown()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(fail(format!("`{}` has no host; {EXAMPLE}", shown())));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(fail(
            "must not carry a user name or password (`user:password@`); give credentials \
             in VAULT_TOKEN or the credentials secret"
                .into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(fail(format!(
            "`{}` must not have a query (`?...`) or fragment (`#...`)",
            shown()
        )));
    }
    if url.path().contains('@') {
        // `http://user:pa/ss@host`: a password with a `/` parses as a path.
        return Err(fail(
            "has `@` after the host: a user name or password? give credentials in \
             VAULT_TOKEN or the credentials secret, never in the address"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    impl VaultConfig {
        fn http_client_for_test(&self) -> Result<reqwest::Client, Error> {
            crate::tls::http_client(self)
        }
    }

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_map(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn the_config_remembers_which_variable_gave_the_address() {
        for (vars, from) in [
            (
                &[("VAULT_ADDR", "http://a:1"), ("vault_addr", "http://b:1")][..],
                "VAULT_ADDR",
            ),
            (
                &[("VAULT_ADDR", " "), ("vault_addr", "http://b:1")],
                "vault_addr",
            ),
            (
                &[
                    ("VAULT_ADDR", "http://a:1"),
                    ("VAULT_AGENT_ADDR", "http://c:1"),
                ],
                "VAULT_AGENT_ADDR",
            ),
        ] {
            let c = VaultConfig::from_env(&env(vars)).unwrap();
            assert_eq!(c.address_variable(), Some(from), "{vars:?}");
        }
        assert_eq!(
            VaultConfig::new("http://a:1").unwrap().address_variable(),
            None
        );
    }

    #[test]
    fn a_url_error_is_the_source_and_kinds_name_what_is_wrong() {
        let err = VaultConfig::new("http://[::1").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Config {
                    kind: ConfigKind::NotAUrl,
                    ..
                }
            ),
            "{err}"
        );
        let source = std::error::Error::source(&err).expect("a source");
        assert!(
            source.downcast_ref::<url::ParseError>().is_some(),
            "{source:?}"
        );
        let half = VaultConfig::from_env(&env(&[
            ("VAULT_ADDR", "https://v:1"),
            ("VAULT_CLIENT_CERT", "/c.pem"),
        ]))
        .unwrap_err();
        assert!(
            matches!(
                half,
                Error::Config {
                    kind: ConfigKind::HalfPair,
                    ..
                }
            ),
            "{half}"
        );
    }

    #[test]
    fn every_setting_has_a_setter_named_like_its_getter() {
        let c = VaultConfig::new("https://v:1")
            .unwrap()
            .with_namespace(Some("team"))
            .with_ca_cert("/ca.pem")
            .with_ca_path(PathBuf::from("/cas"))
            .with_client_cert("/c.pem", "/k.pem")
            .with_skip_verify(true)
            .with_timeout(Duration::from_secs(5))
            .with_max_retries(0)
            .with_deadline(Duration::from_secs(9))
            .with_tls_server_name("vault.example.com")
            .unwrap();
        assert_eq!(c.namespace(), Some("team"));
        assert_eq!(c.ca_cert(), Some(Path::new("/ca.pem")));
        assert_eq!(c.ca_path(), Some(Path::new("/cas")));
        assert_eq!(
            c.client_cert(),
            Some((Path::new("/c.pem"), Path::new("/k.pem")))
        );
        assert!(c.skip_verify());
        assert_eq!(c.timeout(), Duration::from_secs(5));
        assert_eq!(c.max_retries(), 0);
        assert_eq!(c.deadline(), Duration::from_secs(9));
        assert_eq!(c.tls_server_name(), Some("vault.example.com"));
    }

    #[test]
    fn vault_addr_wins_over_lowercase() {
        let c = VaultConfig::from_env(&env(&[
            ("VAULT_ADDR", "http://a:8200"),
            ("vault_addr", "http://b:8200"),
        ]))
        .unwrap();
        assert_eq!(c.address().host_str(), Some("a"));
        let c = VaultConfig::from_env(&env(&[("vault_addr", "http://b:8200")])).unwrap();
        assert_eq!(c.address().host_str(), Some("b"));
        let c = VaultConfig::from_env(&env(&[("VAULT_ADDR", ""), ("vault_addr", "http://b:8200")]))
            .unwrap();
        assert_eq!(c.address().host_str(), Some("b"));
    }

    #[test]
    fn missing_address_names_both_variables() {
        let err = VaultConfig::from_env(&env(&[])).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::MissingAddress));
        assert!(
            msg.contains("VAULT_ADDR") && msg.contains("vault_addr"),
            "{msg}"
        );
    }

    #[test]
    fn malformed_address_names_the_variable() {
        for bad in [
            "not a url",
            "ftp://x",
            "http://",
            "http://u:p@host",
            "http://h?x=1",
        ] {
            let err = VaultConfig::from_env(&env(&[("vault_addr", bad)])).unwrap_err();
            assert!(
                matches!(&err, Error::Config { name, .. } if name == "vault_addr"),
                "{bad}: {err}"
            );
        }
        let err = VaultConfig::from_env(&env(&[("VAULT_ADDR", "localhost:8200")])).unwrap_err();
        assert!(err.to_string().starts_with("invalid `VAULT_ADDR`"), "{err}");
    }

    #[test]
    fn optional_variables_are_read() {
        let c = VaultConfig::from_env(&env(&[
            ("VAULT_ADDR", "https://v:8200"),
            ("VAULT_NAMESPACE", "/team/"),
            ("VAULT_SKIP_VERIFY", "true"),
            ("VAULT_CLIENT_TIMEOUT", "2m"),
        ]))
        .unwrap();
        assert_eq!(c.namespace(), Some("team"));
        assert!(c.skip_verify);
        assert_eq!(c.timeout(), Duration::from_secs(120));
    }

    #[test]
    fn bad_optional_variables_are_named() {
        let base = ("VAULT_ADDR", "https://v:8200");
        for (var, value) in [
            ("VAULT_SKIP_VERIFY", "maybe"),
            ("VAULT_CLIENT_TIMEOUT", "soon"),
            ("VAULT_CLIENT_TIMEOUT", "0"),
            ("VAULT_CLIENT_CERT", "/c.pem"),
            ("VAULT_TLS_SERVER_NAME", "not a name"),
            ("VAULT_TLS_SERVER_NAME", "va\nult"),
            ("VAULT_TLS_SERVER_NAME", "a..b"),
        ] {
            let err = VaultConfig::from_env(&env(&[base, (var, value)])).unwrap_err();
            let named = match &err {
                Error::Config { name, .. } => name.clone(),
                other => panic!("{other}"),
            };
            assert!(named.starts_with("VAULT_"), "{var}: {err}");
        }
    }

    #[test]
    fn addresses_never_echo_user_info_or_query() {
        for bad in [
            "http://admin:hunter2@vault:8200",
            "http://vault:8200/?token=hunter2",
            "http://vault:8200#hunter2",
            "admin:hunter2@vault:8200",
            "http://admin:hunter2@bad host:8200",
            "http://admin:hunter2@vault:notaport?token=hunter2",
            "ftp://admin:hunter2@vault",
        ] {
            let err = VaultConfig::from_env(&env(&[("VAULT_ADDR", bad)])).unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with("invalid `VAULT_ADDR`"), "{bad}: {msg}");
            assert!(!msg.contains("hunter2"), "{bad}: {msg}");
        }
    }

    #[test]
    fn an_api_prefix_is_dropped_and_a_proxy_path_kept() {
        for ok in ["http://v:8200/v1", "http://v:8200/v1/", "http://v:8200/"] {
            let c = VaultConfig::new(ok).unwrap();
            assert_eq!(c.base(), "http://v:8200", "{ok}");
        }
        for proxied in ["http://p/vault", "http://p/vault/", "http://p/vault/v1"] {
            let c = VaultConfig::new(proxied).unwrap();
            assert_eq!(c.base(), "http://p/vault", "{proxied}");
        }
        // A password holding `/` turns the rest into a path: refused, not shown.
        let err = VaultConfig::new("http://u:/ss-hunter2@v:8200").unwrap_err();
        assert!(err.to_string().contains("`@` after the host"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn odd_addresses_are_configuration_errors() {
        let long = format!("http://{}.example", "a".repeat(5000));
        for (bad, phrase) in [
            ("http://127.0.0.1:443", "port 443"),
            ("https://127.0.0.1:80", "port 80"),
            ("http://vault\n:8200", "line feed"),
            ("http://vault:8200\u{0}", "NUL"),
            (long.as_str(), "bytes long"),
            ("localhost:8200", "http://"),
        ] {
            let err = VaultConfig::new(bad).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::Config { .. }), "{msg}");
            assert!(msg.contains(phrase), "{bad:?}: {msg}");
            assert!(msg.len() < 500, "{msg}");
        }
    }

    #[test]
    fn namespaces_are_checked_from_the_environment_and_the_builder() {
        let err = VaultConfig::from_env(&env(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_NAMESPACE", "team\nsecret-ish"),
        ]))
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("invalid `VAULT_NAMESPACE`"), "{msg}");
        assert!(
            msg.contains("line feed") && !msg.contains("secret-ish"),
            "{msg}"
        );
        let c = VaultConfig::from_env(&env(&[
            ("VAULT_ADDR", "http://v:8200"),
            ("VAULT_NAMESPACE", " team/app \r\n"),
        ]))
        .unwrap();
        assert_eq!(c.namespace(), Some("team/app"));
        // A builder takes any string; the check comes before any request.
        let c = VaultConfig::new("http://v:8200")
            .unwrap()
            .with_namespace(Some("te\tam"));
        assert!(
            c.http_client_for_test()
                .unwrap_err()
                .to_string()
                .contains("tab")
        );
        let c = VaultConfig::new("http://v:8200")
            .unwrap()
            .with_namespace(Some("/"));
        assert_eq!(c.namespace(), None);
    }

    #[test]
    fn timeouts_are_bounded_with_a_message_for_each_side() {
        assert!(
            input::duration("0")
                .unwrap_err()
                .reason
                .contains("positive")
        );
        let msg = input::duration("99999999999").unwrap_err().reason;
        assert!(msg.contains("longest accepted, 24h"), "{msg}");
        assert_eq!(input::duration("24h").unwrap(), Duration::from_secs(86_400));
    }

    #[test]
    fn tls_files_are_named_when_missing_empty_or_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let missing = dir.path().join("missing.pem");
        let d = dir.path().display().to_string();
        let (e, g, m) = (
            empty.display().to_string(),
            garbage.display().to_string(),
            missing.display().to_string(),
        );
        for (vars, name, phrase) in [
            (
                vec![("VAULT_CACERT", m.as_str())],
                "VAULT_CACERT",
                "does not exist",
            ),
            (
                vec![("VAULT_CACERT", e.as_str())],
                "VAULT_CACERT",
                "is empty",
            ),
            (
                vec![("VAULT_CACERT", d.as_str())],
                "VAULT_CACERT",
                "is a directory",
            ),
            (
                vec![("VAULT_CACERT", g.as_str())],
                "VAULT_CACERT",
                "no PEM certificate",
            ),
            (
                vec![("VAULT_CAPATH", m.as_str())],
                "VAULT_CAPATH",
                "does not exist",
            ),
            (
                vec![("VAULT_CAPATH", e.as_str())],
                "VAULT_CAPATH",
                "not a directory",
            ),
            (
                vec![
                    ("VAULT_CLIENT_CERT", g.as_str()),
                    ("VAULT_CLIENT_KEY", g.as_str()),
                ],
                "VAULT_CLIENT_CERT",
                "no PEM certificate",
            ),
            (
                vec![
                    ("VAULT_CLIENT_CERT", m.as_str()),
                    ("VAULT_CLIENT_KEY", g.as_str()),
                ],
                "VAULT_CLIENT_CERT",
                "does not exist",
            ),
        ] {
            let mut all = vec![("VAULT_ADDR", "https://v:8200")];
            all.extend(vars.iter().copied());
            let err = VaultConfig::from_env(&env(&all))
                .unwrap()
                .http_client_for_test()
                .unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(&err, Error::Config { name: n, .. } if n == name),
                "{vars:?}: {msg}"
            );
            assert!(msg.contains(phrase), "{vars:?}: {msg}");
        }
    }

    #[test]
    fn the_agent_address_wins_and_the_server_name_replaces_the_host_of_requests() {
        let c = VaultConfig::from_env(&env(&[
            ("VAULT_ADDR", "https://10.0.0.5:8200"),
            ("VAULT_AGENT_ADDR", "http://127.0.0.1:8100"),
        ]))
        .unwrap();
        assert_eq!(c.base(), "http://127.0.0.1:8100");
        let c = VaultConfig::from_env(&env(&[
            ("VAULT_ADDR", "https://10.0.0.5:8200"),
            ("VAULT_TLS_SERVER_NAME", "Vault.Example.com"),
        ]))
        .unwrap();
        assert_eq!(c.base(), "https://10.0.0.5:8200");
        assert_eq!(c.request_base(), "https://vault.example.com:8200");
        let plain = VaultConfig::new("http://10.0.0.5:8200")
            .unwrap()
            .with_tls_server_name("vault.example.com")
            .unwrap();
        assert_eq!(plain.request_base(), "http://10.0.0.5:8200");
    }

    #[test]
    fn durations() {
        assert_eq!(input::duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(
            input::duration("500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert!(input::duration("-1").is_err());
        assert!(input::duration("1d").is_err());
    }

    #[test]
    fn missing_ca_file_is_an_error_naming_the_variable() {
        let c = VaultConfig::new("https://v:8200")
            .unwrap()
            .with_ca_cert("/nonexistent/ca.pem");
        let err = c.http_client_for_test().unwrap_err();
        assert!(
            err.to_string().starts_with("invalid `VAULT_CACERT`"),
            "{err}"
        );
    }
}
