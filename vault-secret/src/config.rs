//! Where Vault is and how to talk to it: address, namespace, TLS and timeout,
//! read from the environment through an injectable [`Env`].

use std::path::PathBuf;
use std::time::Duration;

use secret_core::Env;
use url::Url;

use crate::Error;

/// The default request timeout, as Vault's CLI (`VAULT_CLIENT_TIMEOUT`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

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
        }
    }

    /// Reads the configuration from `env` (see the table above).
    pub fn from_env(env: &Env) -> Result<Self, Error> {
        let (variable, raw) = ["VAULT_ADDR", "vault_addr"]
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
            self.namespace = Some(normalize_namespace(&ns));
        }
        self.ca_cert = get("VAULT_CACERT")?.map(PathBuf::from);
        self.ca_path = get("VAULT_CAPATH")?.map(PathBuf::from);
        self.client_cert = match (get("VAULT_CLIENT_CERT")?, get("VAULT_CLIENT_KEY")?) {
            (Some(cert), Some(key)) => Some((cert.into(), key.into())),
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
        if get("VAULT_TLS_SERVER_NAME")?.is_some() {
            return Err(Error::config(
                "VAULT_TLS_SERVER_NAME",
                "is not supported yet; unset it and use an address whose host matches the certificate",
            ));
        }
        Ok(())
    }

    /// Sets the namespace (`None` for the root namespace).
    #[must_use]
    pub fn namespace(mut self, namespace: Option<&str>) -> Self {
        self.namespace = namespace.map(normalize_namespace);
        self
    }

    /// Trusts the CA certificates in this PEM file.
    #[must_use]
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(path.into());
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

    /// The HTTP client: the configured TLS, the timeout, and no redirects,
    /// because reqwest would resend `X-Vault-Token` to whatever host a
    /// redirect names.
    pub(crate) fn http_client(&self) -> Result<reqwest::Client, Error> {
        let mut builder = reqwest::Client::builder()
            .tls_backend_rustls()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)));
        if self.address.scheme() == "http" {
            // Plain HTTP needs no roots; loading them can fail on minimal systems (reqwest#2988).
            builder = builder.tls_certs_only(Vec::new());
        } else {
            builder = builder.tls_danger_accept_invalid_certs(self.skip_verify);
            for (variable, file) in self.ca_files()? {
                let pem = std::fs::read(&file).map_err(|e| {
                    Error::config(variable, format!("cannot read `{}`: {e}", file.display()))
                })?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    Error::config(
                        variable,
                        format!("`{}` is not a PEM certificate bundle: {e}", file.display()),
                    )
                })?;
                if certs.is_empty() {
                    return Err(Error::config(
                        variable,
                        format!("`{}` holds no PEM certificate", file.display()),
                    ));
                }
                builder = builder.tls_certs_merge(certs);
            }
            if let Some((cert, key)) = &self.client_cert {
                let mut pem = zeroize::Zeroizing::new(read_file("VAULT_CLIENT_CERT", cert)?);
                pem.push(b'\n');
                pem.extend_from_slice(&zeroize::Zeroizing::new(read_file(
                    "VAULT_CLIENT_KEY",
                    key,
                )?));
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    Error::config(
                        "VAULT_CLIENT_CERT",
                        format!("not a usable PEM certificate and key: {e}"),
                    )
                })?;
                builder = builder.identity(identity);
            }
        }
        builder
            .build()
            .map_err(|e| Error::config("TLS", format!("cannot build the HTTP client: {e}")))
    }

    fn ca_files(&self) -> Result<Vec<(&'static str, PathBuf)>, Error> {
        let mut files = Vec::new();
        if let Some(file) = &self.ca_cert {
            files.push(("VAULT_CACERT", file.clone()));
        }
        if let Some(dir) = &self.ca_path {
            let entries = std::fs::read_dir(dir).map_err(|e| {
                Error::config(
                    "VAULT_CAPATH",
                    format!("cannot read directory `{}`: {e}", dir.display()),
                )
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            found.sort();
            files.extend(found.into_iter().map(|p| ("VAULT_CAPATH", p)));
        }
        Ok(files)
    }
}

fn read_file(variable: &str, path: &PathBuf) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::config(variable, format!("cannot read `{}`: {e}", path.display())))
}

fn normalize_namespace(ns: &str) -> String {
    ns.trim().trim_matches('/').to_owned()
}

/// An `http(s)` URL with a host; the error names the variable (the URL is not secret).
pub(crate) fn parse_address(variable: &str, raw: &str) -> Result<Url, Error> {
    let raw = raw.trim();
    let url = Url::parse(raw).map_err(|e| {
        Error::config(
            variable,
            format!("`{raw}` is not a URL ({e}); expected e.g. https://vault.example.com:8200"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::config(
            variable,
            format!(
                "scheme `{}` is not supported; use http or https",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::config(variable, format!("`{raw}` has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(
            variable,
            "must not carry a user name or password",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config(
            variable,
            format!("`{raw}` must not have a query or fragment"),
        ));
    }
    Ok(url)
}

/// Go's `strconv.ParseBool`, as Vault reads its boolean variables.
fn parse_bool(variable: &str, raw: &str) -> Result<bool, Error> {
    match raw.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(Error::config(
            variable,
            format!("`{other}` is not a boolean (use true or false)"),
        )),
    }
}

/// Seconds (`30`) or a number with a unit (`500ms`, `30s`, `2m`, `1h`); must be positive.
pub(crate) fn parse_duration(variable: &str, raw: &str) -> Result<Duration, Error> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let bad = || {
        Error::config(
            variable,
            format!("`{raw}` is not a duration (use e.g. 30, 30s, 2m or 500ms)"),
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
    if !(seconds > 0.0 && seconds.is_finite() && seconds < 1e9) {
        return Err(Error::config(
            variable,
            format!("`{raw}` must be a positive duration"),
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
            ("VAULT_TLS_SERVER_NAME", "vault"),
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
