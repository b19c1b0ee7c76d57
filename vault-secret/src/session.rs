//! One connection to one Vault with one set of credentials: the login it
//! gives and that token's lifetime (renewal, a new login, revocation),
//! shared by every `VaultSecret` and source that use the same settings.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use secret_core::{Env, SecretChain};

use crate::api;
use crate::auth::{self, Login};
use crate::credentials::{Credentials, DEFAULT_CREDENTIALS_SECRET};
use crate::transport::Transport;
use crate::{AuthAttempt, Error, VaultConfig};

/// Log in again this long before the token's expiry (at most a third of its TTL).
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// The variables resolving a session's configuration and credentials reads
/// (besides the credentials secret's own, through the chain). A test checks
/// that `config` and `credentials` read no other.
#[cfg(test)]
const RESOLUTION_INPUTS: [&str; 14] = [
    "VAULT_AGENT_ADDR",
    "VAULT_ADDR",
    "vault_addr",
    "VAULT_NAMESPACE",
    "VAULT_CACERT",
    "VAULT_CAPATH",
    "VAULT_CLIENT_CERT",
    "VAULT_CLIENT_KEY",
    "VAULT_SKIP_VERIFY",
    "VAULT_CLIENT_TIMEOUT",
    "VAULT_MAX_RETRIES",
    "VAULT_TLS_SERVER_NAME",
    "VAULT_TOKEN",
    "HOME",
];

/// How long settings resolved from unchanged variables are reused. Files
/// resolution reads (`~/.prefect/config.toml`, `~/.vault-token`) are read
/// again after this; a changed variable is seen at once.
const RESOLVED_FOR: Duration = Duration::from_secs(1);

/// How many sessions the process-wide registry keeps; past that, the least
/// recently used ones nobody else holds are dropped (their tokens revoked).
const REGISTRY_CAPACITY: usize = 32;

/// A connection to one Vault server with one set of credentials.
///
/// Log-in happens on first use. A renewable token the session obtained is
/// renewed (`auth/token/renew-self`) once two thirds of its TTL have passed,
/// until renewal no longer extends it (its max TTL); then the session logs
/// in again shortly before it expires. A token the server rejects mid-run
/// (revoked, expired) leads to one fresh login and one retry of the request.
/// [`revoke`](Self::revoke) revokes a token the session obtained by login; a
/// token the user supplied is never renewed nor revoked.
///
/// [`SessionBuilder::connect`] hands out the same session for the same
/// address, namespace, TLS settings and credentials, so a process logs in
/// once, however many secrets it reads.
pub struct VaultSession {
    transport: Transport,
    /// Where mounts are cached: the address and the namespace.
    scope: Scope,
    credentials: Credentials,
    state: tokio::sync::Mutex<Option<Arc<Authed>>>,
}

impl fmt::Debug for VaultSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultSession")
            .field("address", &self.config().base())
            .field("namespace", &self.config().namespace())
            .field("credentials", &self.credentials.origin)
            .finish_non_exhaustive()
    }
}

/// A live token, where it came from and its lease.
#[derive(Debug)]
pub(crate) struct Authed {
    pub(crate) token: SecretString,
    pub(crate) method: &'static str,
    /// False for a static token used without checking it first.
    validated: bool,
    /// Obtained by this session's login (so renewed and revoked by it),
    /// rather than supplied by the user.
    owned: bool,
    renewable: bool,
    /// When the lease below started (login or last renewal).
    since: Instant,
    /// The lease; `None` for a token that never expires or whose TTL is unknown.
    ttl: Option<Duration>,
    /// Renewal no longer extends the lease (its max TTL is near).
    exhausted: bool,
    /// How long before the lease ends to log in again: 10 s, or a third of
    /// the login's TTL for a shorter one. Fixed at login, so a last renewal
    /// that returns only a sliver of time does not shrink it.
    margin: Duration,
}

impl Authed {
    fn from_login(login: Login) -> Self {
        Authed {
            token: login.token,
            method: login.method,
            validated: login.validated,
            owned: login.owned,
            renewable: login.renewable,
            since: Instant::now(),
            margin: login
                .ttl
                .map_or(EXPIRY_MARGIN, |ttl| EXPIRY_MARGIN.min(ttl / 3)),
            ttl: login.ttl,
            exhausted: false,
        }
    }

    fn expires_at(&self) -> Option<Instant> {
        self.ttl.map(|ttl| self.since + ttl)
    }

    /// Time to log in again: the lease ends within the margin.
    fn stale(&self, now: Instant) -> bool {
        match (self.expires_at(), self.ttl) {
            (Some(end), Some(_)) => now + self.margin >= end,
            _ => false,
        }
    }

    /// Time to renew: two thirds of the lease have passed.
    fn renewal_due(&self, now: Instant) -> bool {
        self.owned
            && self.renewable
            && !self.exhausted
            && self.ttl.is_some_and(|ttl| now >= self.since + ttl * 2 / 3)
    }
}

/// A server address and namespace: the scope a session's mount knowledge
/// (kept by `kv`) belongs to.
pub(crate) type Scope = (String, String);

/// What one attempt with one token came to.
pub(crate) enum Attempt<T> {
    Done(T),
    /// The server rejected the token itself.
    TokenRejected,
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
    ///
    /// With the default chain and configuration, a shared session resolved
    /// in the last second from the same variables is returned without
    /// resolving again: a changed variable is seen at once, and the files
    /// resolution reads (`~/.prefect/config.toml`, `~/.vault-token`) are
    /// read again once that second is over.
    pub async fn connect(self) -> Result<Arc<VaultSession>, Error> {
        // Settings resolved a moment ago from the same inputs are reused:
        // each `VaultSecret::run()` resolves, and most resolve alike.
        let fingerprint = self.fingerprint();
        if let Some(session) = fingerprint.and_then(|f| Resolved::global().get(f)) {
            return Ok(session);
        }
        let session = self.resolve().await?;
        if let Some(f) = fingerprint {
            Resolved::global().put(f, &session);
        }
        Ok(session)
    }

    /// A hash of everything resolution reads from the environment, for the
    /// default chain and configuration of a shared session; `None` when it
    /// cannot be told (a chain or configuration of the caller's own, an
    /// unshared session, a variable that is not UTF-8).
    fn fingerprint(&self) -> Option<u64> {
        if self.chain.is_some() || self.config.is_some() || !self.shared {
            return None;
        }
        static KEYS: OnceLock<RandomState> = OnceLock::new();
        let mut hasher = KEYS.get_or_init(RandomState::new).build_hasher();
        self.credentials_secret.hash(&mut hasher);
        self.address.hash(&mut hasher);
        let through_chain = [
            format!(
                "{}{}",
                secret_core::DEFAULT_ENV_PREFIX,
                self.credentials_secret
            ),
            self.credentials_secret.clone(),
        ];
        for name in crate::variables::resolution()
            .map(|v| v.name)
            .chain(through_chain.iter().map(String::as_str))
        {
            name.hash(&mut hasher);
            self.env.get(name).ok()?.hash(&mut hasher);
        }
        Some(hasher.finish())
    }

    /// Reads the configuration and the credentials, and finds or makes the session.
    async fn resolve(self) -> Result<Arc<VaultSession>, Error> {
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
        Registry::global()
            .get_or_insert(key, || VaultSession::new(config, credentials).map(Arc::new))
    }
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
        let scope = (
            config.base().to_owned(),
            config.namespace().unwrap_or_default().to_owned(),
        );
        Ok(VaultSession {
            scope,
            transport: Transport::new(config)?,
            credentials,
            state: tokio::sync::Mutex::new(None),
        })
    }

    /// The server settings.
    pub fn config(&self) -> &VaultConfig {
        self.transport.config()
    }

    /// Where the credentials came from (a secret's name, `VAULT_TOKEN`, a file), for messages.
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

    /// Revokes the token this session obtained by logging in
    /// (`auth/token/revoke-self`), so it does not outlive the process; the
    /// next use logs in again. A token the user supplied is left alone.
    pub async fn revoke(&self) -> Result<(), Error> {
        let Some(authed) = self.state.lock().await.take() else {
            return Ok(());
        };
        if !authed.owned {
            return Ok(());
        }
        match api::revoke_self(&self.transport, &authed.token).await {
            Ok(()) => {
                tracing::debug!(method = authed.method, "token revoked");
                Ok(())
            }
            // Already expired or revoked: nothing is left behind.
            Err(f) if matches!(f.status(), Some(401 | 403)) => Ok(()),
            Err(f) => Err(f.into_error(self.transport.address(), "auth/token/revoke-self")),
        }
    }

    /// Revokes the tokens every shared session (from [`SessionBuilder::connect`])
    /// obtained by logging in, for services that shut down cleanly. Returns
    /// the first failure, after trying them all.
    pub async fn revoke_all_shared() -> Result<(), Error> {
        let mut first = Ok(());
        for session in Registry::global().all() {
            let outcome = session.revoke().await;
            if first.is_ok() {
                first = outcome;
            }
        }
        first
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The namespace, for messages that mention it as a possible cause.
    pub(crate) fn namespace(&self) -> Option<String> {
        self.config().namespace().map(str::to_owned)
    }

    /// Where mounts are cached: the address and the namespace.
    pub(crate) fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The current login: logging in when there is none or it is about to
    /// expire, renewing it when two thirds of its lease have passed.
    pub(crate) async fn authed(&self) -> Result<Arc<Authed>, Error> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        if let Some(authed) = state.as_ref() {
            if authed.renewal_due(now) {
                let renewed = self.renew(authed).await;
                *state = Some(Arc::new(renewed));
            }
            if let Some(authed) = state.as_ref()
                && !authed.stale(Instant::now())
            {
                return Ok(authed.clone());
            }
        }
        let old = state.take();
        let login = auth::login(&self.transport, &self.credentials).await?;
        if let Some(old) = old.filter(|o| o.owned) {
            // Its lease is nearly over: revoke it rather than leave it behind.
            if let Err(e) = api::revoke_self(&self.transport, &old.token).await {
                tracing::debug!(failure = %e, "could not revoke the replaced token");
            }
        }
        let authed = Arc::new(Authed::from_login(login));
        *state = Some(authed.clone());
        Ok(authed)
    }

    /// Renews `authed`'s lease; a renewal that fails or no longer extends it
    /// marks it exhausted, so the session logs in again before it expires.
    async fn renew(&self, authed: &Authed) -> Authed {
        let outcome = api::renew_self(&self.transport, &authed.token, authed.ttl).await;
        let old_end = authed.expires_at();
        let mut next = Authed {
            token: authed.token.clone(),
            method: authed.method,
            validated: authed.validated,
            owned: authed.owned,
            renewable: authed.renewable,
            since: authed.since,
            ttl: authed.ttl,
            exhausted: true,
            margin: authed.margin,
        };
        match outcome {
            Ok(lease) => {
                let now = Instant::now();
                let new_end = lease.ttl.map(|ttl| now + ttl);
                let extended = match (new_end, old_end) {
                    (Some(new), Some(old)) => new > old + Duration::from_secs(1),
                    _ => false,
                };
                tracing::debug!(method = authed.method, extended, "token renewed");
                if let Some(ttl) = lease.ttl {
                    next.since = now;
                    next.ttl = Some(ttl);
                }
                next.exhausted = !extended;
                next.renewable = lease.renewable || extended;
            }
            Err(failure) => {
                tracing::debug!(method = authed.method, %failure, "renewal failed; will log in again");
            }
        }
        next
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

    /// Whether the server still takes `authed`'s token (`lookup-self`): asked
    /// only after a 403, to tell a rejected token from a policy denial.
    pub(crate) async fn token_is_good(&self, authed: &Authed) -> Result<bool, Error> {
        match api::lookup_self(&self.transport, &authed.token).await {
            Ok(_) => Ok(true),
            Err(f) if matches!(f.status(), Some(401 | 403)) => Ok(false),
            // A server without the endpoint: the 403 was about the path.
            Err(f) if matches!(f.status(), Some(404 | 405)) => Ok(true),
            Err(f) => Err(f.into_error(self.transport.address(), "auth/token/lookup-self")),
        }
    }

    /// Runs `attempt` with the current token; when the server rejects the
    /// token (revoked or expired since login), logs in again once and
    /// runs it once more.
    pub(crate) async fn with_token<T, F, Fut>(&self, attempt: F) -> Result<T, Error>
    where
        F: Fn(Arc<Authed>) -> Fut,
        Fut: Future<Output = Result<Attempt<T>, Error>>,
    {
        let authed = self.authed().await?;
        if let Attempt::Done(value) = attempt(authed.clone()).await? {
            return Ok(value);
        }
        if !authed.validated {
            return Err(rejected(
                "token",
                "the server rejected the token (permission denied)",
            ));
        }
        tracing::debug!(method = authed.method, "token rejected; logging in again");
        self.invalidate(&authed).await;
        let authed = self.authed().await?;
        match attempt(authed.clone()).await? {
            Attempt::Done(value) => Ok(value),
            Attempt::TokenRejected => Err(rejected(
                authed.method,
                "the server refused a freshly issued token (permission denied, and \
                 `auth/token/lookup-self` refused too); if the role's tokens lack the \
                 `default` policy, a policy that does not allow the read looks like this",
            )),
        }
    }
}

pub(crate) fn rejected(method: &'static str, reason: &str) -> Error {
    Error::AuthFailed {
        attempts: vec![AuthAttempt {
            method,
            reason: reason.into(),
        }],
    }
}

/// Sessions resolved in the last [`RESOLVED_FOR`], by the fingerprint of
/// their inputs. Weak: the registry decides how long a session lives.
#[derive(Debug, Default)]
struct Resolved {
    entries: Mutex<HashMap<u64, (std::sync::Weak<VaultSession>, Instant)>>,
}

impl Resolved {
    fn global() -> &'static Resolved {
        static RESOLVED: OnceLock<Resolved> = OnceLock::new();
        RESOLVED.get_or_init(Resolved::default)
    }

    fn get(&self, fingerprint: u64) -> Option<Arc<VaultSession>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (session, at) = entries.get(&fingerprint)?;
        (at.elapsed() < RESOLVED_FOR).then(|| session.upgrade())?
    }

    fn put(&self, fingerprint: u64, session: &Arc<VaultSession>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= REGISTRY_CAPACITY * 2 {
            entries.retain(|_, (_, at)| at.elapsed() < RESOLVED_FOR);
        }
        entries.insert(fingerprint, (Arc::downgrade(session), Instant::now()));
    }
}

/// The process-wide sessions, by a hash of their settings and credentials.
#[derive(Debug, Default)]
struct Registry {
    /// Each session and when it was last handed out.
    sessions: Mutex<HashMap<u64, (Arc<VaultSession>, Instant)>>,
}

impl Registry {
    fn global() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(Registry::default)
    }

    fn get_or_insert(
        &self,
        key: u64,
        make: impl FnOnce() -> Result<Arc<VaultSession>, Error>,
    ) -> Result<Arc<VaultSession>, Error> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((session, used)) = sessions.get_mut(&key) {
            *used = Instant::now();
            return Ok(session.clone());
        }
        let session = make()?;
        sessions.insert(key, (session.clone(), Instant::now()));
        while sessions.len() > REGISTRY_CAPACITY {
            // The least recently used session nobody else holds.
            let Some(oldest) = sessions
                .iter()
                .filter(|(_, (s, _))| Arc::strong_count(s) == 1)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some((evicted, _)) = sessions.remove(&oldest)
                && let Ok(runtime) = tokio::runtime::Handle::try_current()
            {
                runtime.spawn(async move {
                    let _ = evicted.revoke().await;
                });
            }
        }
        Ok(session)
    }

    fn all(&self) -> Vec<Arc<VaultSession>> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.values().map(|(s, _)| s.clone()).collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
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
        let authed = Authed::from_login(Login {
            token: SecretString::from("hunter2"),
            method: "approle",
            validated: true,
            owned: true,
            renewable: true,
            ttl: Some(Duration::from_secs(60)),
        });
        let shown = format!("{authed:?}");
        assert!(
            shown.starts_with(
                "Authed { token: SecretBox<str>([REDACTED]), method: \"approle\", validated: true, \
                 owned: true, renewable: true, since: Instant"
            ),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    fn lease(ttl: u64, age: u64, owned: bool, renewable: bool) -> Authed {
        let mut authed = Authed::from_login(Login {
            token: SecretString::from("t"),
            method: "approle",
            validated: true,
            owned,
            renewable,
            ttl: Some(Duration::from_secs(ttl)),
        });
        authed.since = Instant::now() - Duration::from_secs(age);
        authed
    }

    #[test]
    fn renewal_at_two_thirds_and_a_new_login_near_the_end() {
        let now = Instant::now();
        assert!(!lease(60, 30, true, true).renewal_due(now));
        assert!(lease(60, 41, true, true).renewal_due(now));
        // Never for a token the user supplied, nor a non-renewable one.
        assert!(!lease(60, 41, false, true).renewal_due(now));
        assert!(!lease(60, 41, true, false).renewal_due(now));
        let mut exhausted = lease(60, 41, true, true);
        exhausted.exhausted = true;
        assert!(!exhausted.renewal_due(now));
        // Stale within 10 s of the end, or a third of a short lease.
        assert!(!lease(60, 49, true, true).stale(now));
        assert!(lease(60, 51, true, true).stale(now));
        assert!(!lease(6, 3, true, true).stale(now));
        assert!(lease(6, 5, true, true).stale(now));
        // A last renewal that leaves 1 s of a 6 s lease: log in again now,
        // not in the last third of that second.
        let mut short = lease(6, 0, true, true);
        short.ttl = Some(Duration::from_secs(1));
        assert!(short.stale(now));
    }

    /// The shared session for a local address and `token`.
    async fn shared_with_token(token: &str) -> Arc<VaultSession> {
        VaultSession::builder()
            .env(Env::from_map([
                ("VAULT_ADDR", "http://127.0.0.1:8200"),
                ("VAULT_TOKEN", token),
            ]))
            .connect()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_registry_is_bounded_and_keeps_sessions_someone_holds() {
        let held = shared_with_token("held").await;
        for i in 0..REGISTRY_CAPACITY + 8 {
            shared_with_token(&format!("token-{i}")).await;
        }
        assert!(Registry::global().len() <= REGISTRY_CAPACITY);
        let again = shared_with_token("held").await;
        assert!(Arc::ptr_eq(&held, &again), "a held session was dropped");
    }

    #[test]
    fn resolution_reads_no_variable_the_fingerprint_misses() {
        // Every variable name `config` and `credentials` read through their
        // `get`/`path` helpers or `env.get` must be a resolution input.
        for source in [include_str!("config.rs"), include_str!("credentials.rs")] {
            for opener in [
                "get(\"",
                "path(\"",
                "env.get(\"",
                "env\n            .get(\"",
            ] {
                for (at, _) in source.match_indices(opener) {
                    let rest = &source[at + opener.len()..];
                    let name = &rest[..rest.find('"').unwrap_or(0)];
                    assert!(
                        RESOLUTION_INPUTS.contains(&name),
                        "`{name}` is read during resolution but not in RESOLUTION_INPUTS"
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn resolved_settings_are_reused_briefly_and_files_read_again_after() {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join(".prefect");
        std::fs::create_dir(&config).unwrap();
        let write = |token: &str| {
            std::fs::write(
                config.join("config.toml"),
                format!(
                    "[context.secrets]\nVAULT_CREDENTIALS = '{{\"VAULT_TOKEN\": \"{token}\"}}'\n"
                ),
            )
            .unwrap();
        };
        let env = Env::from_map([
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("HOME", home.path().to_str().unwrap()),
        ]);
        write("first-file-token");
        let a = VaultSession::builder()
            .env(env.clone())
            .connect()
            .await
            .unwrap();
        write("second-file-token");
        let b = VaultSession::builder()
            .env(env.clone())
            .connect()
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b), "resolved again within the second");
        // A changed variable is seen at once.
        let other = Env::from_map([
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_NAMESPACE", "team"),
            ("HOME", home.path().to_str().unwrap()),
        ]);
        let c = VaultSession::builder().env(other).connect().await.unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        // The file is read again once the second is over.
        tokio::time::sleep(RESOLVED_FOR + Duration::from_millis(100)).await;
        let d = VaultSession::builder().env(env).connect().await.unwrap();
        assert!(!Arc::ptr_eq(&a, &d), "the changed file was not read again");
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
