//! [`ClientBuilder`]: a [`VaultClient`]'s settings and credentials, each
//! from a setter or else from the environment.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use secret_core::{Env, SecretChain, SecretValue};

use crate::cache::CacheOptions;
use crate::client::VaultClient;
use crate::config::VaultConfig;
use crate::credentials::Credentials;
use crate::error::Error;
use crate::lease::LeaseOptions;
use crate::variables::DEFAULT_CREDENTIALS_SECRET;

/// Builds a [`VaultClient`].
///
/// Every setting the environment can give has a setter; a setting not set
/// here is read from the environment ([`env`](Self::env), the process's by
/// default) as [`VaultConfig::from_env`] documents. Credentials set here
/// ([`token`](Self::token), [`approle`](Self::approle),
/// [`kubernetes`](Self::kubernetes), [`jwt`](Self::jwt),
/// [`cert_role`](Self::cert_role)) replace every other source as a whole;
/// without them, credentials come from the first source in the order the
/// [`credentials`](crate::credentials#precedence) module documents.
///
/// ```no_run
/// use vault_secret::VaultClient;
///
/// #[tokio::main]
/// async fn main() -> Result<(), vault_secret::Error> {
///     let vault = VaultClient::builder()
///         .address("https://vault.example.com:8200")
///         .ca_cert("/etc/ssl/vault-ca.pem")
///         .approle("my-role-id", "my-secret-id")
///         .build()
///         .await?;
///     let db = vault.read("secret/billing/db#password").await?;
///     println!("{} bytes", db.expose_secret().len());
///     vault.shutdown().await
/// }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    pub(crate) env: Env,
    pub(crate) chain: Option<SecretChain>,
    pub(crate) credentials_secret: String,
    /// Credentials given to the builder: key and value, as the credentials
    /// secret would hold them (so one parser checks both).
    typed: Vec<(&'static str, SecretString)>,
    pub(crate) config: Option<VaultConfig>,
    pub(crate) settings: Settings,
    /// How leases are kept (not a server setting: it never tells two
    /// clients apart).
    lease_options: Option<LeaseOptions>,
}

/// The settings given to the builder (each overrides its variable).
#[derive(Debug, Clone, Default, Hash)]
pub(crate) struct Settings {
    address: Option<String>,
    agent_address: Option<String>,
    namespace: Option<String>,
    ca_cert: Option<PathBuf>,
    ca_path: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
    skip_verify: Option<bool>,
    tls_server_name: Option<String>,
    timeout: Option<Duration>,
    deadline: Option<Duration>,
    max_retries: Option<u32>,
    max_response_size: Option<usize>,
    /// Not a server setting, but part of what makes two clients alike.
    pub(crate) cache: Option<CacheOptions>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            env: Env::process(),
            chain: None,
            credentials_secret: DEFAULT_CREDENTIALS_SECRET.to_owned(),
            typed: Vec::new(),
            config: None,
            settings: Settings::default(),
            lease_options: None,
        }
    }
}

// Here rather than in `client`: the client knows nothing of how it is built.
impl VaultClient {
    /// A builder: every setting the environment can give has a setter, and
    /// what is not set is read from the environment.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client for the process environment's settings and credentials.
    pub async fn from_env() -> Result<Self, Error> {
        Self::builder().build().await
    }
}

impl ClientBuilder {
    /// Reads variables from `env` instead of the process environment.
    pub fn env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// Looks the credentials secret up in `chain` instead of the process
    /// environment and the config file (it then comes before the method
    /// variables: see [`credentials`](crate::credentials#precedence)).
    pub fn chain(mut self, chain: SecretChain) -> Self {
        self.chain = Some(chain);
        self
    }

    /// The name of the credentials secret (default `VAULT_CREDENTIALS`).
    pub fn credentials_secret(mut self, name: impl Into<String>) -> Self {
        self.credentials_secret = name.into();
        self
    }

    /// Starts from this configuration instead of the environment's: no
    /// server setting is read from the environment. The setters of
    /// settings ([`address`](Self::address), [`namespace`](Self::namespace),
    /// ...) still apply over it, whether called before or after this one.
    pub fn config(mut self, config: VaultConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// The server's address (`VAULT_ADDR`).
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.settings.address = Some(address.into());
        self
    }

    /// A local Vault Agent or proxy that takes the requests (`VAULT_AGENT_ADDR`).
    pub fn agent_address(mut self, address: impl Into<String>) -> Self {
        self.settings.agent_address = Some(address.into());
        self
    }

    /// The namespace (`VAULT_NAMESPACE`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.settings.namespace = Some(namespace.into());
        self
    }

    /// A PEM file of CA certificates to trust (`VAULT_CACERT`).
    pub fn ca_cert(mut self, file: impl Into<PathBuf>) -> Self {
        self.settings.ca_cert = Some(file.into());
        self
    }

    /// A directory of PEM CA certificates to trust (`VAULT_CAPATH`).
    pub fn ca_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.settings.ca_path = Some(dir.into());
        self
    }

    /// A PEM client certificate and its key (`VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY`).
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.settings.client_cert = Some((cert.into(), key.into()));
        self
    }

    /// Skips TLS verification (`VAULT_SKIP_VERIFY`; never in production).
    pub fn skip_verify(mut self, skip: bool) -> Self {
        self.settings.skip_verify = Some(skip);
        self
    }

    /// The name the server's certificate is checked against (`VAULT_TLS_SERVER_NAME`).
    pub fn tls_server_name(mut self, name: impl Into<String>) -> Self {
        self.settings.tls_server_name = Some(name.into());
        self
    }

    /// Each request's timeout (`VAULT_CLIENT_TIMEOUT`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = Some(timeout);
        self
    }

    /// The most a whole call may take, its retries and waits included
    /// (default: the timeout plus 30 s).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.settings.deadline = Some(deadline);
        self
    }

    /// Retries of a call after a connection error, 412, 429 or 5xx
    /// (`VAULT_MAX_RETRIES`; 0 for none).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.settings.max_retries = Some(retries);
        self
    }

    /// The largest answer read, in bytes (default
    /// [`DEFAULT_MAX_RESPONSE_SIZE`](crate::DEFAULT_MAX_RESPONSE_SIZE), 4 MiB).
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.settings.max_response_size = Some(bytes);
        self
    }

    /// Caches reads (off by default): see [`CacheOptions`] for the TTL,
    /// size, staleness and refresh-ahead, and what is never cached.
    pub fn cache(mut self, options: CacheOptions) -> Self {
        self.settings.cache = Some(options);
        self
    }

    /// How the client keeps the leases of dynamic secrets
    /// ([`VaultClient::lease`]): renewal fraction, rotation lead, grace
    /// period for old credentials. See [`LeaseOptions`] for the defaults.
    pub fn lease_options(mut self, options: LeaseOptions) -> Self {
        self.lease_options = Some(options);
        self
    }

    fn credential(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.typed.retain(|(k, _)| *k != key);
        self.typed.push((key, SecretString::from(value.into())));
        self
    }

    /// Logs in with this token (never renewed nor revoked by the client).
    pub fn token(self, token: impl Into<String>) -> Self {
        self.credential("VAULT_TOKEN", token)
    }

    /// Logs in with AppRole (mount `approle` unless [`approle_mount`](Self::approle_mount) says otherwise).
    pub fn approle(mut self, role_id: impl Into<String>, secret_id: impl Into<String>) -> Self {
        self.typed.retain(|(k, _)| *k != "VAULT_SECRET_ID_WRAPPED");
        self.credential("VAULT_ROLE_ID", role_id)
            .credential("VAULT_SECRET_ID", secret_id)
    }

    /// Logs in with AppRole, the secret id given response-wrapped: the
    /// single-use `wrapping_token` is checked and unwrapped at the first
    /// login (see [`credentials`](crate::credentials#response-wrapped-approle-secret-ids)).
    pub fn approle_wrapped(
        self,
        role_id: impl Into<String>,
        wrapping_token: impl Into<String>,
    ) -> Self {
        self.approle(role_id, wrapping_token)
            .credential("VAULT_SECRET_ID_WRAPPED", "true")
    }

    /// The AppRole auth mount (default `approle`).
    pub fn approle_mount(self, mount: impl Into<String>) -> Self {
        self.credential("VAULT_APPROLE_PATH", mount)
    }

    /// Logs in with this Kubernetes role (the pod's service-account token
    /// unless [`kubernetes_token_file`](Self::kubernetes_token_file) says otherwise).
    pub fn kubernetes(self, role: impl Into<String>) -> Self {
        self.credential("VAULT_KUBE_AUTH_ROLE", role)
    }

    /// The Kubernetes auth mount (default `kubernetes`).
    pub fn kubernetes_mount(self, mount: impl Into<String>) -> Self {
        self.credential("VAULT_KUBE_AUTH_PATH", mount)
    }

    /// The service-account token file for Kubernetes login.
    pub fn kubernetes_token_file(self, file: impl Into<String>) -> Self {
        self.credential("VAULT_KUBE_TOKEN_FILE", file)
    }

    /// Logs in with this JWT role and token (e.g. a GitLab CI `id_tokens`
    /// token), at mount `jwt` unless [`jwt_mount`](Self::jwt_mount) says otherwise.
    pub fn jwt(self, role: impl Into<String>, token: impl Into<String>) -> Self {
        self.credential("VAULT_JWT_ROLE", role)
            .credential("VAULT_JWT", token)
    }

    /// Logs in with this JWT role, the token from [`jwt_file`](Self::jwt_file)
    /// or, in GitHub Actions, fetched fresh from its OIDC endpoint at each login.
    pub fn jwt_role(self, role: impl Into<String>) -> Self {
        self.credential("VAULT_JWT_ROLE", role)
    }

    /// The file holding the JWT (read again at each login).
    pub fn jwt_file(self, file: impl Into<String>) -> Self {
        self.credential("VAULT_JWT_FILE", file)
    }

    /// The JWT auth mount (default `jwt`).
    pub fn jwt_mount(self, mount: impl Into<String>) -> Self {
        self.credential("VAULT_JWT_PATH", mount)
    }

    /// The audience asked of GitHub Actions' token endpoint (default:
    /// GitHub's, `https://github.com/<owner>`).
    pub fn jwt_audience(self, audience: impl Into<String>) -> Self {
        self.credential("VAULT_JWT_AUDIENCE", audience)
    }

    /// Logs in with the client certificate ([`client_cert`](Self::client_cert))
    /// through this TLS certificate role, tried after every other method.
    pub fn cert_role(self, role: impl Into<String>) -> Self {
        self.credential("VAULT_CERT_ROLE", role)
    }

    /// Logs in with the client certificate at this TLS certificate auth
    /// mount (default `cert`; setting it turns certificate login on).
    pub fn cert_mount(self, mount: impl Into<String>) -> Self {
        self.credential("VAULT_CERT_AUTH_PATH", mount)
    }

    /// Whether credentials were given to the builder.
    pub(crate) fn has_typed_credentials(&self) -> bool {
        !self.typed.is_empty()
    }

    /// Resolves the configuration and the credentials, and builds the
    /// client (logging in happens on first use).
    pub async fn build(self) -> Result<VaultClient, Error> {
        let (config, credentials) = self.resolve().await?;
        let client = VaultClient::new(config, credentials, self.settings.cache)?;
        if let Some(options) = self.lease_options {
            client.set_lease_options(options);
        }
        Ok(client)
    }

    /// The server settings alone (no credentials are looked at).
    pub(crate) fn server_config(&self) -> Result<VaultConfig, Error> {
        self.settings.apply(self.config.as_ref(), &self.env)
    }

    /// The server settings and the credentials, checked (at least one
    /// login method complete) but not yet used.
    pub(crate) async fn resolve(&self) -> Result<(VaultConfig, Credentials), Error> {
        let config = self.server_config()?;
        let credentials = if self.typed.is_empty() {
            Credentials::load(self.chain.as_ref(), &self.credentials_secret, &self.env).await?
        } else {
            let map = self
                .typed
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(v.expose_secret())))
                .collect();
            Credentials::from_builder(&SecretValue::json(map), &self.env)?
        };
        credentials.methods()?;
        Ok((config, credentials))
    }
}

impl Settings {
    /// The builder's settings over `base`, else over the configuration
    /// from `env`: one path, so no setting silently undoes another.
    fn apply(&self, base: Option<&VaultConfig>, env: &Env) -> Result<VaultConfig, Error> {
        let address = self.agent_address.as_ref().or(self.address.as_ref());
        let mut config = match (address, base) {
            (Some(address), Some(base)) => base.clone().with_address(address)?,
            (Some(address), None) => {
                let mut config = VaultConfig::new(address)?;
                config.apply_env(env)?;
                config
            }
            (None, Some(base)) => base.clone(),
            (None, None) => VaultConfig::from_env(env)?,
        };
        if let Some(ns) = &self.namespace {
            config = config.with_namespace(Some(ns));
        }
        if let Some(file) = &self.ca_cert {
            config = config.with_ca_cert(file);
        }
        if let Some(dir) = &self.ca_path {
            config = config.with_ca_path(dir);
        }
        if let Some((cert, key)) = &self.client_cert {
            config = config.with_client_cert(cert, key);
        }
        if let Some(skip) = self.skip_verify {
            config = config.with_skip_verify(skip);
        }
        if let Some(name) = &self.tls_server_name {
            config = config.with_tls_server_name(name)?;
        }
        if let Some(timeout) = self.timeout {
            config = config.with_timeout(timeout);
        }
        if let Some(deadline) = self.deadline {
            config = config.with_deadline(deadline);
        }
        if let Some(retries) = self.max_retries {
            config = config.with_max_retries(retries);
        }
        if let Some(bytes) = self.max_response_size {
            config = config.with_max_response_size(bytes);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn setters_override_the_environment() {
        let env = Env::from_map([
            ("VAULT_ADDR", "http://from-env:8200"),
            ("VAULT_NAMESPACE", "env-team"),
            ("VAULT_TOKEN", "env-token"),
            ("VAULT_MAX_RETRIES", "7"),
        ]);
        let (config, credentials) = VaultClient::builder()
            .env(env.clone())
            .address("http://from-builder:8200")
            .namespace("team")
            .max_retries(0)
            .timeout(Duration::from_secs(3))
            .approle("role", "secret")
            .approle_mount("ci-approle")
            .resolve()
            .await
            .unwrap();
        assert_eq!(config.address().host_str(), Some("from-builder"));
        assert_eq!(config.namespace(), Some("team"));
        assert_eq!(config.max_retries(), 0);
        assert_eq!(config.timeout(), Duration::from_secs(3));
        // Typed credentials replace the environment's as a whole.
        let methods: Vec<_> = credentials
            .methods()
            .unwrap()
            .iter()
            .map(|m| m.name())
            .collect();
        assert_eq!(methods, ["approle"]);
        assert_eq!(credentials.approle_mount, "ci-approle");
        // What is not set comes from the environment.
        let (config, _) = VaultClient::builder().env(env).resolve().await.unwrap();
        assert_eq!(config.namespace(), Some("env-team"));
        assert_eq!(config.max_retries(), 7);
    }

    #[tokio::test]
    async fn a_wrapped_secret_id_can_be_given_to_the_builder() {
        let env = Env::from_map([("VAULT_ADDR", "http://v:8200")]);
        let (_, credentials) = VaultClient::builder()
            .env(env.clone())
            .approle_wrapped("role", "wrapping-token")
            .resolve()
            .await
            .unwrap();
        assert!(credentials.secret_id_wrapped);
        let (_, credentials) = VaultClient::builder()
            .env(env)
            .approle_wrapped("role", "wrapping-token")
            .approle("role", "plain")
            .resolve()
            .await
            .unwrap();
        assert!(!credentials.secret_id_wrapped);
    }

    #[tokio::test]
    async fn a_config_and_the_setters_compose_in_any_order() {
        let env = Env::from_map([
            ("VAULT_ADDR", "http://from-env:8200"),
            ("VAULT_NAMESPACE", "env-team"),
            ("VAULT_MAX_RETRIES", "7"),
        ]);
        let base = VaultConfig::new("http://from-config:8200")
            .unwrap()
            .with_timeout(Duration::from_secs(9));
        let before = VaultClient::builder()
            .env(env.clone())
            .namespace("team")
            .config(base.clone())
            .server_config()
            .unwrap();
        let after = VaultClient::builder()
            .env(env.clone())
            .config(base.clone())
            .namespace("team")
            .server_config()
            .unwrap();
        assert_eq!(before, after);
        assert_eq!(after.namespace(), Some("team"));
        assert_eq!(after.address().host_str(), Some("from-config"));
        assert_eq!(after.timeout(), Duration::from_secs(9));
        // Nothing of the server settings comes from the environment.
        assert_eq!(after.max_retries(), crate::config::DEFAULT_MAX_RETRIES);
        let moved = VaultClient::builder()
            .env(env)
            .address("https://from-setter:8200")
            .config(base)
            .server_config()
            .unwrap();
        assert_eq!(moved.address().as_str(), "https://from-setter:8200/");
        assert_eq!(moved.timeout(), Duration::from_secs(9));
        let err = VaultClient::builder()
            .address("ftp://nope")
            .config(VaultConfig::new("http://v:8200").unwrap())
            .server_config()
            .unwrap_err();
        assert!(err.to_string().contains("address"), "{err}");
    }

    #[tokio::test]
    async fn typed_credentials_are_checked_like_the_secret_and_never_shown() {
        let env = Env::from_map([("VAULT_ADDR", "http://v:8200")]);
        let builder = VaultClient::builder()
            .env(env.clone())
            .token("hunter2\nsecond-line");
        let shown = format!("{builder:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let err = builder.build().await.unwrap_err().to_string();
        assert!(
            err.contains("VAULT_TOKEN") && err.contains("line feed"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        let err = VaultClient::builder()
            .env(env)
            .approle("role-only", "")
            .build()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("VAULT_SECRET_ID"), "{err}");
        assert!(!err.contains("role-only"), "{err}");
    }
}
