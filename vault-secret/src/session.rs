//! One connection to one Vault: HTTP client, credentials, and the login they
//! give, shared by every `VaultSecret` and source that use the same settings.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use secret_core::{Env, SecretChain, SecretValue};
use vaultrs::client::VaultClient;

use crate::credentials::{Credentials, DEFAULT_CREDENTIALS_SECRET};
use crate::kv::{self, KvVersion, MountCache, Preflight, Read};
use crate::path::SecretRef;
use crate::{AuthAttempt, Error, VaultConfig};

/// Log in again this long before the token's reported expiry.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// A connection to one Vault server with one set of credentials.
///
/// Log-in happens on first use and is reused until the token nears its
/// expiry or the server rejects it; then the session logs in again (one
/// login at a time). [`SessionBuilder::connect`] hands out the same session
/// for the same address, namespace, TLS settings and credentials, so a
/// process logs in once, however many secrets it reads.
pub struct VaultSession {
    config: VaultConfig,
    /// The HTTP client and the runtime it belongs to: a pooled connection
    /// lives on the runtime that opened it and dies with it, so a session used
    /// from another runtime (each `run_blocking`, each `#[tokio::test]`) gets
    /// a client of its own; the login is shared all the same.
    http: Mutex<Option<(Option<tokio::runtime::Id>, reqwest::Client)>>,
    credentials: Credentials,
    state: tokio::sync::Mutex<Option<Arc<Authed>>>,
}

impl fmt::Debug for VaultSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultSession")
            .field("address", &self.config.base())
            .field("namespace", &self.config.namespace_name())
            .field("credentials", &self.credentials.origin)
            .finish_non_exhaustive()
    }
}

/// A live token and where it came from.
#[derive(Debug)]
pub(crate) struct Authed {
    pub(crate) token: SecretString,
    pub(crate) method: &'static str,
    pub(crate) expires_at: Option<Instant>,
    validated: bool,
}

/// A vaultrs client for one request or a few. vaultrs keeps the token in
/// plain `String`s: wiped on drop here, and never shown by `Debug`.
pub(crate) struct TokenClient(pub(crate) VaultClient);

impl std::ops::Deref for TokenClient {
    type Target = VaultClient;
    fn deref(&self) -> &VaultClient {
        &self.0
    }
}

impl Drop for TokenClient {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0.settings.token);
        zeroize::Zeroize::zeroize(&mut self.0.middle.token);
    }
}

impl fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClient")
            .field("address", &self.0.settings.address.as_str())
            .finish_non_exhaustive()
    }
}

/// Builds (or finds) a [`VaultSession`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SessionBuilder {
    env: Env,
    chain: Option<SecretChain>,
    credentials_secret: String,
    address: Option<String>,
    config: Option<VaultConfig>,
    shared: bool,
}

impl Default for SessionBuilder {
    fn default() -> Self {
        SessionBuilder {
            env: Env::process(),
            chain: None,
            credentials_secret: DEFAULT_CREDENTIALS_SECRET.to_owned(),
            address: None,
            config: None,
            shared: true,
        }
    }
}

impl SessionBuilder {
    /// Reads variables from `env` instead of the process environment.
    pub fn env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// Looks the credentials secret up in `chain` (default: local context, then environment).
    pub fn chain(mut self, chain: SecretChain) -> Self {
        self.chain = Some(chain);
        self
    }

    /// The name of the credentials secret (default `VAULT_CREDENTIALS`).
    pub fn credentials_secret(mut self, name: impl Into<String>) -> Self {
        self.credentials_secret = name.into();
        self
    }

    /// The server's address, instead of `VAULT_ADDR`/`vault_addr`.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// A complete configuration, instead of reading one from the environment.
    pub fn config(mut self, config: VaultConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// A session of its own, not shared with the rest of the process.
    pub fn unshared(mut self) -> Self {
        self.shared = false;
        self
    }

    /// Resolves the configuration and the credentials, and returns the
    /// session for them (logging in happens on first use).
    pub async fn connect(self) -> Result<Arc<VaultSession>, Error> {
        let config = match (self.config, &self.address) {
            (Some(config), _) => config,
            (None, Some(address)) => {
                let mut config = VaultConfig::new(address)?;
                config.apply_env(&self.env)?;
                config
            }
            (None, None) => VaultConfig::from_env(&self.env)?,
        };
        let chain = match self.chain {
            Some(chain) => chain,
            None => SecretChain::local_then_env_with(self.env.clone())?,
        };
        let credentials = Credentials::load(&chain, &self.credentials_secret, &self.env).await?;
        credentials.methods()?;
        if !self.shared {
            return VaultSession::new(config, credentials).map(Arc::new);
        }
        let key = {
            static KEYS: OnceLock<RandomState> = OnceLock::new();
            let mut hasher = KEYS.get_or_init(RandomState::new).build_hasher();
            config.hash(&mut hasher);
            credentials.hash_into(&mut hasher);
            hasher.finish()
        };
        static SESSIONS: OnceLock<Mutex<HashMap<u64, Arc<VaultSession>>>> = OnceLock::new();
        let mut sessions = SESSIONS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(session) = sessions.get(&key) {
            return Ok(session.clone());
        }
        let session = Arc::new(VaultSession::new(config, credentials)?);
        sessions.insert(key, session.clone());
        Ok(session)
    }
}

/// What one read attempt came to.
enum Step {
    Done(SecretValue),
    TokenRejected,
}

impl VaultSession {
    /// A builder: environment, credentials chain and secret name, address.
    pub fn builder() -> SessionBuilder {
        SessionBuilder::default()
    }

    /// The session for the process environment's settings.
    pub async fn from_env() -> Result<Arc<Self>, Error> {
        Self::builder().connect().await
    }

    fn new(config: VaultConfig, credentials: Credentials) -> Result<Self, Error> {
        // Built once now so bad TLS settings fail here, not on first use.
        let http = config.http_client()?;
        Ok(VaultSession {
            http: Mutex::new(Some((current_runtime(), http))),
            config,
            credentials,
            state: tokio::sync::Mutex::new(None),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &VaultConfig {
        &self.config
    }

    /// Where the credentials came from (a secret's name, `VAULT_TOKEN`, ...), never their values.
    pub fn credentials_origin(&self) -> &str {
        &self.credentials.origin
    }

    /// The authentication methods the credentials configure completely, in
    /// the order they are tried (`token`, `approle`, `kubernetes`).
    pub fn auth_methods(&self) -> Vec<&'static str> {
        self.credentials
            .methods()
            .map(|methods| methods.iter().map(|m| m.name()).collect())
            .unwrap_or_default()
    }

    /// Logs in if needed and says which method gave the token.
    ///
    /// A static token that is the only method configured is not checked
    /// here (its first use checks it); [`token_info`](Self::token_info) does.
    pub async fn login(&self) -> Result<&'static str, Error> {
        Ok(self.authed().await?.method)
    }

    /// Reads `<mount>/<path>[?version=N][#field]`: the key/value mapping, or one field.
    pub async fn read(&self, path: &str) -> Result<SecretValue, Error> {
        self.read_ref(&SecretRef::parse(path)?, None).await
    }

    /// The HTTP client for the runtime this runs on.
    fn http(&self) -> Result<reqwest::Client, Error> {
        let runtime = current_runtime();
        let mut slot = self.http.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((owner, client)) = slot.as_ref()
            && *owner == runtime
        {
            return Ok(client.clone());
        }
        let client = self.config.http_client()?;
        *slot = Some((runtime, client.clone()));
        Ok(client)
    }

    /// A vaultrs client sending `token` (none when empty).
    pub(crate) fn client(&self, token: &str) -> Result<TokenClient, Error> {
        Ok(self.config.vault_client(self.http()?, token))
    }

    /// A client sending the session's current token.
    pub(crate) fn authed_client(&self, authed: &Authed) -> Result<TokenClient, Error> {
        self.client(authed.token.expose_secret())
    }

    /// The current login, logging in when there is none or it is about to expire.
    pub(crate) async fn authed(&self) -> Result<Arc<Authed>, Error> {
        let mut state = self.state.lock().await;
        if let Some(authed) = state.as_ref() {
            let fresh = authed
                .expires_at
                .is_none_or(|t| Instant::now() + EXPIRY_MARGIN < t);
            if fresh {
                return Ok(authed.clone());
            }
        }
        let login =
            crate::auth::login(&self.config, &|t| self.client(t), &self.credentials).await?;
        let authed = Arc::new(Authed {
            token: login.token,
            method: login.method,
            expires_at: login.expires_at,
            validated: login.validated,
        });
        *state = Some(authed.clone());
        Ok(authed)
    }

    /// Drops `stale` so the next use logs in again (unless another task already did).
    async fn invalidate(&self, stale: &Arc<Authed>) {
        let mut state = self.state.lock().await;
        if state
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, stale))
        {
            *state = None;
        }
    }

    pub(crate) async fn read_ref(
        &self,
        r: &SecretRef,
        kv: Option<KvVersion>,
    ) -> Result<SecretValue, Error> {
        use tracing::Instrument;
        let span = tracing::debug_span!("vault_read", path = %r.path);
        self.read_ref_inner(r, kv).instrument(span).await
    }

    async fn read_ref_inner(
        &self,
        r: &SecretRef,
        kv: Option<KvVersion>,
    ) -> Result<SecretValue, Error> {
        let authed = self.authed().await?;
        if let Step::Done(value) = self.read_with(&authed, r, kv).await? {
            return Ok(value);
        }
        if !authed.validated {
            return Err(Error::AuthFailed {
                attempts: vec![AuthAttempt {
                    method: "token",
                    reason: "the server rejected the token (permission denied)".into(),
                }],
            });
        }
        // The token expired or was revoked since login: log in again, once.
        tracing::debug!(method = authed.method, "token rejected; logging in again");
        self.invalidate(&authed).await;
        let authed = self.authed().await?;
        match self.read_with(&authed, r, kv).await? {
            Step::Done(value) => Ok(value),
            Step::TokenRejected => Err(Error::AuthFailed {
                attempts: vec![AuthAttempt {
                    method: authed.method,
                    reason: "the server rejected a freshly issued token (permission denied)".into(),
                }],
            }),
        }
    }

    fn scope(&self) -> kv::Scope {
        (
            self.config.base().to_owned(),
            self.config.namespace_name().unwrap_or_default().to_owned(),
        )
    }

    async fn read_with(
        &self,
        authed: &Authed,
        r: &SecretRef,
        kv: Option<KvVersion>,
    ) -> Result<Step, Error> {
        let client = &self.authed_client(authed)?;
        let scope = self.scope();
        let cache = MountCache::global();
        let (mount, detected) = match cache.find(&scope, &r.path) {
            Some((mount, version)) => (mount, Some(version)),
            None => match kv::preflight(client, &r.path)
                .await
                .map_err(|f| f.into_error(self.config.base(), "sys/internal/ui/mounts"))?
            {
                Preflight::Kv { mount, version } => {
                    cache.insert(scope.clone(), &mount, version);
                    (mount, Some(version))
                }
                Preflight::NotKv { mount, kind } => {
                    return Err(invalid_path(
                        r,
                        format!("`{mount}` is a `{kind}` secrets engine, not KV"),
                    ));
                }
                // Least privilege: the first segment is the mount, the read finds the version.
                Preflight::Unknown => (r.first_segment().to_owned(), None),
                Preflight::TokenRejected => return Ok(Step::TokenRejected),
            },
        };
        let rest = r.below(&mount).ok_or_else(|| {
            invalid_path(
                r,
                format!("it names the mount `{mount}` itself, not a secret in it"),
            )
        })?;
        let base = self.config.base();
        let fail = |api: String| move |f: crate::error::ApiFailure| f.into_error(base, &api);
        match kv.or(detected) {
            Some(KvVersion::V1) => {
                if r.version.is_some() {
                    return Err(invalid_path(
                        r,
                        format!("`{mount}` is a KV v1 engine, which has no versions"),
                    ));
                }
                let read = kv::read_v1(client, &mount, rest)
                    .await
                    .map_err(fail(format!("{mount}/{rest}")))?;
                if matches!(read, Read::WrongApiForV2) && kv.is_none() {
                    // The cached version was stale: the mount is KV v2 now.
                    cache.insert(scope, &mount, KvVersion::V2);
                    let read = kv::read_v2(client, &mount, rest, r.version)
                        .await
                        .map_err(fail(KvVersion::V2.policy_path(&mount, rest)))?;
                    return self.finish(r, &mount, rest, KvVersion::V2, read);
                }
                self.finish(r, &mount, rest, KvVersion::V1, read)
            }
            Some(KvVersion::V2) => {
                let read = kv::read_v2(client, &mount, rest, r.version)
                    .await
                    .map_err(fail(KvVersion::V2.policy_path(&mount, rest)))?;
                self.finish(r, &mount, rest, KvVersion::V2, read)
            }
            None => {
                let v2 = kv::read_v2(client, &mount, rest, r.version)
                    .await
                    .map_err(fail(KvVersion::V2.policy_path(&mount, rest)))?;
                match v2 {
                    Read::Found(_) | Read::Deleted { .. } | Read::Destroyed { .. } => {
                        cache.insert(scope, &mount, KvVersion::V2);
                        self.finish(r, &mount, rest, KvVersion::V2, v2)
                    }
                    Read::TokenRejected => Ok(Step::TokenRejected),
                    Read::Missing { no_mount: true } => {
                        self.finish(r, &mount, rest, KvVersion::V2, v2)
                    }
                    Read::Missing { .. } | Read::Denied | Read::WrongApiForV2 => {
                        let v2_denied = matches!(v2, Read::Denied);
                        let v1 = kv::read_v1(client, &mount, rest)
                            .await
                            .map_err(fail(format!("{mount}/{rest}")))?;
                        match v1 {
                            Read::Found(_) => {
                                if r.version.is_some() {
                                    return Err(invalid_path(
                                        r,
                                        format!(
                                            "`{mount}` is a KV v1 engine, which has no versions"
                                        ),
                                    ));
                                }
                                cache.insert(scope, &mount, KvVersion::V1);
                                self.finish(r, &mount, rest, KvVersion::V1, v1)
                            }
                            Read::WrongApiForV2 => {
                                cache.insert(scope, &mount, KvVersion::V2);
                                self.finish(r, &mount, rest, KvVersion::V2, v2)
                            }
                            Read::Denied if v2_denied => Err(Error::PermissionDenied {
                                path: r.path.clone(),
                                policy_paths: vec![
                                    KvVersion::V2.policy_path(&mount, rest),
                                    KvVersion::V1.policy_path(&mount, rest),
                                ],
                            }),
                            _ => self.finish(r, &mount, rest, KvVersion::V1, v1),
                        }
                    }
                }
            }
        }
    }

    /// Turns a read's outcome into the value (or field) or the matching error.
    fn finish(
        &self,
        r: &SecretRef,
        mount: &str,
        rest: &str,
        version: KvVersion,
        read: Read,
    ) -> Result<Step, Error> {
        match read {
            Read::Found(data) => {
                if !data.is_object() {
                    return Err(Error::Server {
                        status: 200,
                        path: version.policy_path(mount, rest),
                        errors: vec!["the secret's data is not a key/value mapping".into()],
                    });
                }
                let value = SecretValue::json(data).with_name(r.path.as_str());
                match &r.field {
                    None => Ok(Step::Done(value)),
                    Some(field) => match value.field(field) {
                        Ok(v) => Ok(Step::Done(v)),
                        Err(secret_core::Error::MissingField { .. }) => Err(Error::FieldNotFound {
                            path: r.path.clone(),
                            field: field.clone(),
                        }),
                        Err(other) => Err(other.into()),
                    },
                }
            }
            Read::Missing { no_mount } => Err(Error::NotFound {
                path: r.path.clone(),
                detail: Some(if no_mount {
                    format!("no secrets engine is mounted at `{mount}`")
                } else {
                    match (version, r.version) {
                        (KvVersion::V2, Some(n)) => {
                            format!("no version {n} at `{}`", version.policy_path(mount, rest))
                        }
                        _ => format!("nothing at `{}`", version.policy_path(mount, rest)),
                    }
                }),
            }),
            Read::Deleted {
                version,
                deleted_at,
            } => Err(Error::VersionDeleted {
                path: r.path.clone(),
                version,
                deleted_at,
            }),
            Read::Destroyed { version } => Err(Error::VersionDestroyed {
                path: r.path.clone(),
                version,
            }),
            Read::Denied => Err(Error::PermissionDenied {
                path: r.path.clone(),
                policy_paths: vec![version.policy_path(mount, rest)],
            }),
            Read::WrongApiForV2 => Err(Error::Config {
                name: "kv_version".into(),
                reason: format!("`{mount}` is a KV v2 engine, but KV v1 was requested"),
            }),
            Read::TokenRejected => Ok(Step::TokenRejected),
        }
    }
}

fn current_runtime() -> Option<tokio::runtime::Id> {
    tokio::runtime::Handle::try_current().ok().map(|h| h.id())
}

fn invalid_path(r: &SecretRef, reason: String) -> Error {
    Error::InvalidPath {
        path: r.path.clone(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::from_map([
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "hunter2"),
            ("HOME", "/nonexistent-home"),
        ])
    }

    #[tokio::test]
    async fn debug_is_pinned_and_never_shows_the_token() {
        let session = VaultSession::builder()
            .env(env())
            .unshared()
            .connect()
            .await
            .unwrap();
        assert_eq!(
            format!("{session:?}"),
            "VaultSession { address: \"http://127.0.0.1:8200\", namespace: None, \
             credentials: \"the environment variable `VAULT_TOKEN`\", .. }"
        );
        let authed = Authed {
            token: SecretString::from("hunter2"),
            method: "token",
            expires_at: None,
            validated: false,
        };
        assert_eq!(
            format!("{authed:?}"),
            "Authed { token: SecretBox<str>([REDACTED]), method: \"token\", expires_at: None, validated: false }"
        );
        let client = session.client("hunter2").unwrap();
        assert_eq!(
            format!("{client:?}"),
            "TokenClient { address: \"http://127.0.0.1:8200/\", .. }"
        );
    }

    #[tokio::test]
    async fn same_settings_share_one_session_and_others_do_not() {
        let a = VaultSession::builder().env(env()).connect().await.unwrap();
        let b = VaultSession::builder().env(env()).connect().await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let other_token = Env::from_map([
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "other"),
            ("HOME", "/nonexistent-home"),
        ]);
        let c = VaultSession::builder()
            .env(other_token)
            .connect()
            .await
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        let unshared = VaultSession::builder()
            .env(env())
            .unshared()
            .connect()
            .await
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &unshared));
    }
}
