//! Where Vault is and how to talk to it: address, namespace, TLS and timeout,
//! read from the environment through an injectable [`Env`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use secret_core::Env;
use url::Url;

use crate::Error;
use crate::input;

/// The default request timeout, as Vault's CLI (`VAULT_CLIENT_TIMEOUT`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest request timeout `VAULT_CLIENT_TIMEOUT` may set: a day.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// How to reach a Vault server.
///
/// [`VaultConfig::from_env`] reads:
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `VAULT_ADDR`, else `vault_addr` | the server's URL (`http` or `https`) | none: an error naming both |
/// | `VAULT_NAMESPACE` | the namespace (Vault Enterprise, OpenBao) | none |
/// | `VAULT_CACERT` | a PEM file of CA certificates to trust | the system's roots |
/// | `VAULT_CAPATH` | a directory of PEM CA certificates to trust | none |
/// | `VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY` | a PEM client certificate and key (both or neither) | none |
/// | `VAULT_SKIP_VERIFY` | `true` to skip TLS verification (never in production) | `false` |
/// | `VAULT_CLIENT_TIMEOUT` | request timeout: seconds, or `30s`, `2m`, `500ms` | 60 s |
/// | `VAULT_AGENT_ADDR` | a local Vault Agent or proxy; when set, requests go there instead of `VAULT_ADDR` | none |
/// | `VAULT_TLS_SERVER_NAME` | the name the server's certificate is verified against (and sent as SNI), when the address's host is not on it | the address's host |
/// | `VAULT_MAX_RETRIES` | retries of a call after a connection error, 412, 429 or 5xx (0: none) | 2 |
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VaultConfig {
    address: Url,
    namespace: Option<String>,
    ca_cert: Option<PathBuf>,
    ca_path: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
    skip_verify: bool,
    timeout: Duration,
    max_retries: u32,
    deadline: Option<Duration>,
    tls_server_name: Option<String>,
}

/// The default number of retries, as Vault's CLI (`VAULT_MAX_RETRIES`).
pub const DEFAULT_MAX_RETRIES: u32 = 2;

/// What a whole call (its retries and waits included) may take beyond one
/// request's timeout, unless [`VaultConfig::deadline`] says otherwise.
const RETRY_ALLOWANCE: Duration = Duration::from_secs(30);

impl VaultConfig {
    /// A configuration for `address`, with defaults for everything else.
    pub fn new(address: &str) -> Result<Self, Error> {
        Ok(Self::with_address(parse_address("address", address)?))
    }

    fn with_address(address: Url) -> Self {
        VaultConfig {
            address,
            namespace: None,
            ca_cert: None,
            ca_path: None,
            client_cert: None,
            skip_verify: false,
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            deadline: None,
            tls_server_name: None,
        }
    }

    /// Reads the configuration from `env` (see the table above).
    pub fn from_env(env: &Env) -> Result<Self, Error> {
        // As Vault's CLI: a local agent or proxy, when named, takes the requests.
        let (variable, raw) = ["VAULT_AGENT_ADDR", "VAULT_ADDR", "vault_addr"]
            .into_iter()
            .find_map(|v| match env.get(v) {
                Ok(Some(value)) if !value.trim().is_empty() => Some(Ok((v, value))),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .transpose()?
            .ok_or(Error::MissingAddress)?;
        let mut config = Self::with_address(parse_address(variable, &raw)?);
        config.apply_env(env)?;
        Ok(config)
    }

    /// Reads everything but the address from `env`.
    pub(crate) fn apply_env(&mut self, env: &Env) -> Result<(), Error> {
        let get = |name: &str| -> Result<Option<String>, Error> {
            Ok(env.get(name)?.filter(|v| !v.trim().is_empty()))
        };
        if let Some(ns) = get("VAULT_NAMESPACE")? {
            self.namespace =
                input::namespace(&ns).map_err(|e| e.for_variable("VAULT_NAMESPACE"))?;
        }
        let path = |name: &str| -> Result<Option<PathBuf>, Error> {
            get(name)?
                .map(|v| {
                    input::file_path(&v)
                        .map(PathBuf::from)
                        .map_err(|e| e.for_variable(name))
                })
                .transpose()
        };
        self.ca_cert = path("VAULT_CACERT")?;
        self.ca_path = path("VAULT_CAPATH")?;
        self.client_cert = match (path("VAULT_CLIENT_CERT")?, path("VAULT_CLIENT_KEY")?) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::config(
                    "VAULT_CLIENT_KEY",
                    "must be set when VAULT_CLIENT_CERT is",
                ));
            }
            (None, Some(_)) => {
                return Err(Error::config(
                    "VAULT_CLIENT_CERT",
                    "must be set when VAULT_CLIENT_KEY is",
                ));
            }
        };
        if let Some(v) = get("VAULT_SKIP_VERIFY")? {
            self.skip_verify = parse_bool("VAULT_SKIP_VERIFY", &v)?;
        }
        if let Some(v) = get("VAULT_CLIENT_TIMEOUT")? {
            self.timeout = parse_duration("VAULT_CLIENT_TIMEOUT", &v)?;
        }
        if let Some(v) = get("VAULT_MAX_RETRIES")? {
            self.max_retries = v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= 100)
                .ok_or_else(|| {
                    Error::config(
                        "VAULT_MAX_RETRIES",
                        format!("`{}` is not a number of retries from 0 to 100", v.trim()),
                    )
                })?;
        }
        if let Some(name) = get("VAULT_TLS_SERVER_NAME")? {
            self.tls_server_name = Some(tls_server_name(&name)?);
        }
        Ok(())
    }

    /// Sets the namespace (`None` for the root namespace).
    #[must_use]
    pub fn namespace(mut self, namespace: Option<&str>) -> Self {
        self.namespace = namespace
            .map(normalize_namespace)
            .filter(|ns| !ns.is_empty());
        self
    }

    /// Trusts the CA certificates in this PEM file.
    #[must_use]
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(path.into());
        self
    }

    /// Trusts the PEM CA certificates in this directory.
    #[must_use]
    pub fn ca_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.ca_path = Some(dir.into());
        self
    }

    /// Presents this PEM client certificate and key.
    #[must_use]
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some((cert.into(), key.into()));
        self
    }

    /// Skips TLS verification (never in production).
    #[must_use]
    pub fn skip_verify(mut self, skip: bool) -> Self {
        self.skip_verify = skip;
        self
    }

    /// Sets the request timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many times a failed call is retried (`VAULT_MAX_RETRIES`; 0 for none).
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets the most a whole call may take, its retries and waits included
    /// (default: the request timeout plus 30 s).
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// How many times a failed call is retried.
    pub fn retries(&self) -> u32 {
        self.max_retries
    }

    /// The most a whole call may take, its retries and waits included.
    pub fn call_deadline(&self) -> Duration {
        self.deadline
            .unwrap_or_else(|| self.timeout.saturating_add(RETRY_ALLOWANCE))
    }

    /// Verifies the server's certificate against `name` (`VAULT_TLS_SERVER_NAME`)
    /// rather than the address's host, which is still where requests connect.
    pub fn tls_server_name(mut self, name: &str) -> Result<Self, Error> {
        self.tls_server_name = Some(tls_server_name(name)?);
        Ok(self)
    }

    /// The base URL requests are sent to: the address, with its host
    /// replaced by the TLS server name when one is set (the connection
    /// still goes to the address's host: see [`ServerName`]).
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

    /// The server's URL.
    pub fn address(&self) -> &Url {
        &self.address
    }

    /// The namespace, if any.
    pub fn namespace_name(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Whether TLS certificates go unverified (`VAULT_SKIP_VERIFY`).
    pub fn tls_skip_verify(&self) -> bool {
        self.skip_verify
    }

    /// The CA certificate file trusted (`VAULT_CACERT`), if any.
    pub fn ca_cert_file(&self) -> Option<&std::path::Path> {
        self.ca_cert.as_deref()
    }

    /// The CA certificate directory trusted (`VAULT_CAPATH`), if any.
    pub fn ca_cert_dir(&self) -> Option<&std::path::Path> {
        self.ca_path.as_deref()
    }

    /// The address as a string without a trailing slash, for messages and the client.
    pub(crate) fn base(&self) -> &str {
        self.address.as_str().trim_end_matches('/')
    }

    /// The request timeout (`VAULT_CLIENT_TIMEOUT`).
    pub fn request_timeout(&self) -> Duration {
        self.timeout
    }

    /// Checks what a builder may have set without checks (the namespace),
    /// so that nothing unusable reaches a request.
    fn check(&self) -> Result<(), Error> {
        if let Some(ns) = &self.namespace {
            input::namespace(ns).map_err(|e| e.for_variable("namespace"))?;
        }
        Ok(())
    }

    /// The HTTP client: the configured TLS, the timeout, and no redirects,
    /// because reqwest would resend `X-Vault-Token` to whatever host a
    /// redirect names.
    pub(crate) fn http_client(&self) -> Result<reqwest::Client, Error> {
        self.check()?;
        let mut builder = reqwest::Client::builder()
            .tls_backend_rustls()
            .redirect(reqwest::redirect::Policy::none())
            // The per-request timeout is the transport's (capped by the call's deadline).
            .connect_timeout(self.timeout.min(Duration::from_secs(10)));
        if self.address.scheme() == "http" {
            // Plain HTTP needs no roots; loading them can fail on minimal systems (reqwest#2988).
            builder = builder.tls_certs_only(Vec::new());
        } else {
            if let (Some(name), Some(host)) = (&self.tls_server_name, self.address.host_str()) {
                // Requests name the server by `name` (so TLS verifies and
                // sends it as SNI); this resolver connects them to the
                // address's own host.
                builder = builder.dns_resolver(ServerName {
                    name: name.clone(),
                    host: host
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_owned(),
                });
            }
            builder = builder.tls_danger_accept_invalid_certs(self.skip_verify);
            for (variable, file) in self.ca_files()? {
                let pem = input::read_file(variable, &file, input::MAX_PEM_FILE_LEN)?;
                let shown = input::shown(&file.display().to_string());
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    Error::config(
                        variable,
                        format!("`{shown}` is not a PEM certificate bundle: {}", chain(&e)),
                    )
                })?;
                if certs.is_empty() {
                    return Err(Error::config(
                        variable,
                        format!("`{shown}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
                    ));
                }
                builder = builder.tls_certs_merge(certs);
            }
            if let Some((cert, key)) = &self.client_cert {
                builder = builder.identity(client_identity(cert, key)?);
            }
        }
        builder.build().map_err(|e| {
            let (name, what) = match &self.client_cert {
                Some(_) => (
                    "VAULT_CLIENT_CERT",
                    "the client certificate and key cannot be used together",
                ),
                None => ("TLS", "cannot build the HTTP client"),
            };
            Error::config(name, format!("{what}: {}", chain(&e)))
        })
    }

    fn ca_files(&self) -> Result<Vec<(&'static str, PathBuf)>, Error> {
        let mut files = Vec::new();
        if let Some(file) = &self.ca_cert {
            files.push(("VAULT_CACERT", file.clone()));
        }
        if let Some(dir) = &self.ca_path {
            let shown = input::shown(&dir.display().to_string());
            let fail = |reason: String| Error::config("VAULT_CAPATH", reason);
            let entries = std::fs::read_dir(dir).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    fail(format!("the directory `{shown}` does not exist"))
                }
                std::io::ErrorKind::NotADirectory => fail(format!(
                    "`{shown}` is not a directory (a single CA file goes in VAULT_CACERT)"
                )),
                _ => fail(format!("cannot read the directory `{shown}`: {e}")),
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            if found.is_empty() {
                return Err(fail(format!(
                    "the directory `{shown}` holds no certificate files"
                )));
            }
            found.sort();
            files.extend(found.into_iter().map(|p| ("VAULT_CAPATH", p)));
        }
        Ok(files)
    }
}

/// The client certificate and key, each checked on its own first so that a
/// message names the file at fault rather than saying "builder error".
fn client_identity(cert: &Path, key: &Path) -> Result<reqwest::Identity, Error> {
    let cert_pem = input::read_file("VAULT_CLIENT_CERT", cert, input::MAX_PEM_FILE_LEN)?;
    let key_pem = input::read_file("VAULT_CLIENT_KEY", key, input::MAX_PEM_FILE_LEN)?;
    let shown_cert = input::shown(&cert.display().to_string());
    let shown_key = input::shown(&key.display().to_string());
    match reqwest::Certificate::from_pem_bundle(&cert_pem) {
        Ok(certs) if !certs.is_empty() => {}
        _ => {
            return Err(Error::config(
                "VAULT_CLIENT_CERT",
                format!("`{shown_cert}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
            ));
        }
    }
    let has_key = key_pem
        .windows(b"PRIVATE KEY-----".len())
        .any(|w| w == b"PRIVATE KEY-----");
    if !has_key {
        return Err(Error::config(
            "VAULT_CLIENT_KEY",
            format!("`{shown_key}` holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)"),
        ));
    }
    let mut pem = zeroize::Zeroizing::new(Vec::with_capacity(cert_pem.len() + key_pem.len() + 1));
    pem.extend_from_slice(&cert_pem);
    pem.push(b'\n');
    pem.extend_from_slice(&key_pem);
    reqwest::Identity::from_pem(&pem).map_err(|e| {
        Error::config(
            "VAULT_CLIENT_KEY",
            format!(
                "`{shown_key}` and the certificate `{shown_cert}` are not a usable pair: {}",
                chain(&e)
            ),
        )
    })
}

/// An error and its sources on one line ("builder error" alone says nothing).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Resolves the TLS server name to the address's host; any other name as usual.
#[derive(Debug)]
struct ServerName {
    name: String,
    host: String,
}

impl reqwest::dns::Resolve for ServerName {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let target = if name.as_str().eq_ignore_ascii_case(&self.name) {
            self.host.clone()
        } else {
            name.as_str().to_owned()
        };
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((target.as_str(), 0))
                .await?
                .collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A DNS name to verify the server's certificate against.
fn tls_server_name(raw: &str) -> Result<String, Error> {
    let name = input::name("a server name", raw)
        .map_err(|e| e.for_variable("VAULT_TLS_SERVER_NAME"))?
        .to_ascii_lowercase();
    let valid = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !valid || name.len() > 253 {
        return Err(Error::config(
            "VAULT_TLS_SERVER_NAME",
            format!(
                "`{}` is not a DNS name (letters, digits, dashes and dots, e.g. vault.example.com)",
                input::shown(&name)
            ),
        ));
    }
    Ok(name)
}

fn normalize_namespace(ns: &str) -> String {
    ns.trim().trim_matches('/').to_owned()
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
    let fail = |reason: String| Error::config(variable, reason);
    if !raw.contains("://") {
        return Err(fail(format!(
            "`{}` does not start with http:// or https://; {EXAMPLE}",
            shown()
        )));
    }
    let mut url = Url::parse(raw)
        .map_err(|e| fail(format!("`{}` is not a URL ({e}); {EXAMPLE}", shown())))?;
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
    let path = url.path().trim_end_matches('/').to_owned();
    if path.contains('@') {
        // `http://user:pa/ss@host`: a password with a `/` parses as a path.
        return Err(fail(
            "has `@` after the host: a user name or password? give credentials in \
             VAULT_TOKEN or the credentials secret, never in the address"
                .into(),
        ));
    }
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

/// Go's `strconv.ParseBool`, as Vault reads its boolean variables.
fn parse_bool(variable: &str, raw: &str) -> Result<bool, Error> {
    match raw.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(Error::config(
            variable,
            format!(
                "`{}` is not a boolean (use true or false)",
                input::shown(other)
            ),
        )),
    }
}

/// Seconds (`30`) or a number with a unit (`500ms`, `30s`, `2m`, `1h`); must be positive.
pub(crate) fn parse_duration(variable: &str, raw: &str) -> Result<Duration, Error> {
    let raw = raw.trim();
    let shown = input::shown(raw);
    let split = raw
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let bad = || {
        Error::config(
            variable,
            format!("`{shown}` is not a duration (use e.g. 30, 30s, 2m or 500ms)"),
        )
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if seconds <= 0.0 {
        return Err(Error::config(
            variable,
            format!("`{shown}` must be a positive duration"),
        ));
    }
    if seconds > MAX_TIMEOUT.as_secs_f64() {
        return Err(Error::config(
            variable,
            format!(
                "`{shown}` is longer than the longest accepted, {}h",
                MAX_TIMEOUT.as_secs() / 3600
            ),
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_map(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
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
        assert_eq!(c.namespace_name(), Some("team"));
        assert!(c.skip_verify);
        assert_eq!(c.request_timeout(), Duration::from_secs(120));
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
        assert_eq!(c.namespace_name(), Some("team/app"));
        // A builder takes any string; the check comes before any request.
        let c = VaultConfig::new("http://v:8200")
            .unwrap()
            .namespace(Some("te\tam"));
        assert!(c.http_client().unwrap_err().to_string().contains("tab"));
        let c = VaultConfig::new("http://v:8200")
            .unwrap()
            .namespace(Some("/"));
        assert_eq!(c.namespace_name(), None);
    }

    #[test]
    fn timeouts_are_bounded_with_a_message_for_each_side() {
        assert!(
            parse_duration("x", "0")
                .unwrap_err()
                .to_string()
                .contains("positive")
        );
        let msg = parse_duration("x", "99999999999").unwrap_err().to_string();
        assert!(msg.contains("longest accepted, 24h"), "{msg}");
        assert_eq!(
            parse_duration("x", "24h").unwrap(),
            Duration::from_secs(86_400)
        );
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
                .http_client()
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
            .tls_server_name("vault.example.com")
            .unwrap();
        assert_eq!(plain.request_base(), "http://10.0.0.5:8200");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("x", "30").unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse_duration("x", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert!(parse_duration("x", "-1").is_err());
        assert!(parse_duration("x", "1d").is_err());
    }

    #[test]
    fn missing_ca_file_is_an_error_naming_the_variable() {
        let c = VaultConfig::new("https://v:8200")
            .unwrap()
            .ca_cert("/nonexistent/ca.pem");
        let err = c.http_client().unwrap_err();
        assert!(
            err.to_string().starts_with("invalid `VAULT_CACERT`"),
            "{err}"
        );
    }
}
