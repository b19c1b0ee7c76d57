//! [`VaultClient`]: one server, one set of credentials, and the state that
//! goes with them (the token and its lifetime, the mounts learned), owned
//! by the caller.

use std::fmt;
use std::sync::Arc;

use secret_core::SecretValue;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

use crate::builder::ClientBuilder;
use crate::cache::{Cache, CacheKey};
use crate::credentials::Credentials;
use crate::inspect::{self, Health, TokenInfo};
use crate::kv::{self, KvContext};
use crate::lease::{self, IssueRequest, LeaseContext, LeaseOptions, LeaseRegistry, LeasedSecret};
use crate::mounts::{self, KvVersion, MountCache, MountReport};
use crate::path::SecretRef;
use crate::token::{Attempt, TokenLife, Tokens};
use crate::transport::Transport;
use crate::{CacheOptions, CacheStats, Error, VaultConfig, batch};

/// A Vault client a service builds once and holds.
///
/// It owns its HTTP transport (connection pool, retries, timeouts), its
/// token and the token's lifetime, and what it learned about mounts.
/// Clones are cheap and share all of it (an `Arc` inside): clone a client
/// into each task or request handler rather than building one per use.
/// Two clients built separately share nothing, not even a login.
///
/// ```no_run
/// use vault_secret::VaultClient;
///
/// #[tokio::main]
/// async fn main() -> Result<(), vault_secret::Error> {
///     // VAULT_ADDR and VAULT_CREDENTIALS (or VAULT_TOKEN, or the AppRole
///     // variables) come from the environment; setters override them.
///     let vault = VaultClient::builder().namespace("team").build().await?;
///
///     // At start-up...
///     let db = vault.read("secret/billing/db").await?;
///     println!("{} keys", db.to_mapping()?.len());
///
///     // ...and later, from any task: clones share the login.
///     let worker = vault.clone();
///     let password = tokio::spawn(async move { worker.read("secret/billing/db#password").await })
///         .await
///         .expect("the task")?;
///     println!("{} bytes", password.expose_secret().len());
///
///     // On SIGTERM (here: at the end), revoke the token the client logged in with.
///     vault.shutdown().await
/// }
/// ```
///
/// # The token's lifetime
///
/// The client logs in on first use (concurrent first uses share one
/// login). A renewable token it obtained is renewed (`auth/token/renew-self`)
/// on the first use after two thirds of its TTL have passed: renewal is
/// lazy, so an idle client makes no requests and its token may expire
/// while idle, in which case the next use logs in again. Once renewal no
/// longer extends the lease (its max TTL), the client logs in again shortly
/// before it ends and revokes the old token. A token the server rejects
/// mid-run (revoked, expired) leads to one fresh login and one retry.
///
/// [`shutdown`](Self::shutdown) revokes a token the client obtained by
/// logging in. Dropping the last clone without it leaves that token on the
/// server until its TTL runs out: nothing is revoked behind the caller's
/// back, whatever runtime is (or is not) running. A token the caller
/// supplied (`VAULT_TOKEN`, [`ClientBuilder::token`]) is never renewed nor
/// revoked.
#[derive(Clone)]
pub struct VaultClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    tokens: Tokens,
    mounts: MountCache,
    /// Reads go through it when the builder turned it on.
    cache: Option<Cache>,
    /// The leases this client keeps, closed by `shutdown`.
    leases: LeaseRegistry,
    /// Set by the builder; the defaults otherwise.
    lease_options: std::sync::OnceLock<LeaseOptions>,
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClient")
            .field("address", &self.config().base())
            .field("namespace", &self.config().namespace())
            .field("credentials", &self.credentials_origin())
            .field("cache", &self.inner.cache.as_ref().map(Cache::options))
            .finish_non_exhaustive()
    }
}

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

    pub(crate) fn new(
        config: VaultConfig,
        credentials: Credentials,
        cache: Option<CacheOptions>,
    ) -> Result<Self, Error> {
        Ok(VaultClient {
            inner: Arc::new(Inner {
                transport: Transport::new(config)?,
                tokens: Tokens::new(credentials),
                mounts: MountCache::default(),
                cache: cache.map(Cache::new),
                leases: LeaseRegistry::default(),
                lease_options: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The server settings.
    pub fn config(&self) -> &VaultConfig {
        self.inner.transport.config()
    }

    /// Where the credentials came from (a secret's name, `VAULT_TOKEN`, a
    /// file, the builder), for messages.
    pub fn credentials_origin(&self) -> &str {
        &self.inner.tokens.credentials().origin
    }

    /// The authentication methods the credentials configure completely, in
    /// the order they are tried (`token`, `approle`, `kubernetes`, `jwt`, `cert`).
    pub fn auth_methods(&self) -> Vec<&'static str> {
        self.inner
            .tokens
            .credentials()
            .methods()
            .map(|methods| methods.iter().map(|m| m.name()).collect())
            .unwrap_or_default()
    }

    /// The `exp` and `aud` claims of the JWT the `jwt` method would log in
    /// with now (read from its file, or fetched from GitHub Actions), decoded
    /// without verification; `None` when no JWT method is configured.
    pub async fn jwt_claims(&self) -> Result<Option<crate::JwtClaims>, Error> {
        self.inner.tokens.credentials().jwt_claims().await
    }

    /// Whether `self` and `other` are clones of one client (share its state).
    pub fn shares_state_with(&self, other: &VaultClient) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// How many clones of this client exist (the default-client map evicts
    /// only clients nobody else holds).
    pub(crate) fn holders(&self) -> usize {
        Arc::strong_count(&self.inner)
    }

    /// Logs in if needed and says which method gave the token.
    ///
    /// A static token that is the only method configured is not checked
    /// here (its first use checks it); [`token_info`](Self::token_info) does.
    pub async fn login(&self) -> Result<&'static str, Error> {
        let t = &self.inner.transport;
        Ok(self.inner.tokens.current(t).await?.method)
    }

    /// Revokes every lease this client holds ([`lease`](Self::lease)), then
    /// the token it obtained by logging in (`auth/token/revoke-self`), for
    /// a service that shuts down: neither outlives the process. Every clone
    /// sees it; a later read logs in again. A token the caller supplied is
    /// left alone. When a lease cannot be revoked, the token is still
    /// revoked (which revokes the leases issued under it) and the lease's
    /// error is returned.
    pub async fn shutdown(&self) -> Result<(), Error> {
        let leases = self.inner.leases.close_all().await;
        self.inner.tokens.revoke(&self.inner.transport).await?;
        leases
    }

    /// Reads `<mount>/<path>[?version=N][#field]`: the key/value mapping, or one field.
    pub async fn read(&self, path: &str) -> Result<SecretValue, Error> {
        self.read_ref(&SecretRef::parse(path)?, None).await
    }

    /// Reads a secret (or one field of it) straight into `T`. A missing or
    /// mistyped field is an error naming the secret and the field, never
    /// the value; `secrecy::SecretString` fields stay redacted.
    pub async fn read_as<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        Ok(self.read(path).await?.deserialize()?)
    }

    /// Reads several secrets (each `<mount>/<path>[?version=N][#field]`), in
    /// the order given: one login, each distinct path read once, distinct
    /// paths read at the same time. The first failure (in the order given)
    /// is the error.
    pub async fn read_many<S: AsRef<str>>(&self, paths: &[S]) -> Result<Vec<SecretValue>, Error> {
        let refs = paths
            .iter()
            .map(|p| SecretRef::parse(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        self.read_refs(&refs, None).await
    }

    /// [`read_many`](Self::read_many) for parsed references.
    pub(crate) async fn read_refs(
        &self,
        refs: &[SecretRef],
        kv: Option<KvVersion>,
    ) -> Result<Vec<SecretValue>, Error> {
        let (paths, index) = batch::distinct(refs);
        let reads =
            futures_util::future::join_all(paths.iter().map(|r| self.read_whole(r, kv))).await;
        batch::values(refs, reads, &index)
    }

    /// For a source: each reference's value, or why it is not there; any
    /// other failure is the error.
    pub(crate) async fn read_each(
        &self,
        refs: &[SecretRef],
    ) -> Result<Vec<Result<SecretValue, String>>, Error> {
        let (paths, index) = batch::distinct(refs);
        let reads =
            futures_util::future::join_all(paths.iter().map(|r| self.read_whole(r, None))).await;
        batch::each(refs, reads, &index)
    }

    pub(crate) async fn read_ref(
        &self,
        r: &SecretRef,
        kv: Option<KvVersion>,
    ) -> Result<SecretValue, Error> {
        let mut data = self.read_whole(r, kv).await?;
        let value = batch::select(r, &data);
        secret_core::zeroize_json(&mut data);
        value
    }

    /// The whole key/value mapping at `r`'s path (its field, if any, aside):
    /// through the cache when the client has one.
    async fn read_whole(&self, r: &SecretRef, kv: Option<KvVersion>) -> Result<Value, Error> {
        let Some(cache) = &self.inner.cache else {
            return self.read_server(r, kv).await;
        };
        let (client, whole) = (self.clone(), r.clone());
        cache
            .get(CacheKey::new(&r.path, r.version), move || async move {
                client.read_server(&whole, kv).await
            })
            .await
    }

    /// Reads `path` from the server even when a cached value is fresh, and
    /// caches the answer in its place (a 403 or 404 drops the entry). Without
    /// a cache, the same as [`read`](Self::read).
    pub async fn read_fresh(&self, path: &str) -> Result<SecretValue, Error> {
        let r = SecretRef::parse(path)?;
        let mut data = match &self.inner.cache {
            Some(cache) => {
                let key = CacheKey::new(&r.path, r.version);
                cache.reload(key, || self.read_server(&r, None)).await?
            }
            None => self.read_server(&r, None).await?,
        };
        let value = batch::select(&r, &data);
        secret_core::zeroize_json(&mut data);
        value
    }

    /// Drops every cached version of `path` (`<mount>/<path>`, without
    /// `?version` or `#field`): the next read asks the server.
    pub fn invalidate(&self, path: &str) {
        if let Some(cache) = &self.inner.cache {
            cache.invalidate(path.trim_matches('/'));
        }
    }

    /// Drops every cached value.
    pub fn invalidate_all(&self) {
        if let Some(cache) = &self.inner.cache {
            cache.invalidate_all();
        }
    }

    /// The read cache's counters (hits, misses, refreshes, stale values
    /// served, errors); `None` when the client does not cache.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.inner.cache.as_ref().map(Cache::stats)
    }

    /// The whole key/value mapping at `r`'s path, from the server.
    async fn read_server(&self, r: &SecretRef, kv: Option<KvVersion>) -> Result<Value, Error> {
        let span = tracing::debug_span!("vault_read", path = %r.path);
        let inner = &*self.inner;
        let namespace = self.config().namespace();
        inner
            .tokens
            .with_token(&inner.transport, |authed| async move {
                let cx = KvContext {
                    transport: &inner.transport,
                    token: &authed.token,
                    mounts: &inner.mounts,
                    namespace,
                };
                kv::read(&cx, r, kv).await
            })
            .instrument(span)
            .await
    }

    /// The mount and KV version of `path` (`<mount>/<path>`), as a read would find them.
    pub async fn mount_of(&self, path: &str) -> Result<MountReport, Error> {
        let r = SecretRef::parse(path)?;
        let inner = &*self.inner;
        let preflight = inner
            .tokens
            .with_token(&inner.transport, |authed| {
                let r = &r;
                async move {
                    Ok(
                        match mounts::preflight(&inner.transport, &authed.token, r).await? {
                            mounts::Preflight::TokenRejected => Attempt::TokenRejected,
                            other => Attempt::Done(other),
                        },
                    )
                }
            })
            .await?;
        mounts::report(&r, preflight)
    }

    /// The server's health (`sys/health`); needs no token.
    pub async fn health(&self) -> Result<Health, Error> {
        inspect::health(&self.inner.transport).await
    }

    /// Logs in if needed and looks the token up (`auth/token/lookup-self`).
    pub async fn token_info(&self) -> Result<TokenInfo, Error> {
        let t = &self.inner.transport;
        self.inner
            .tokens
            .with_token(
                t,
                |authed| async move { inspect::token_info(t, &authed).await },
            )
            .await
    }

    /// The token's capabilities on an API path (`sys/capabilities-self`),
    /// such as `secret/data/app`.
    pub async fn capabilities(&self, api_path: &str) -> Result<Vec<String>, Error> {
        let t = &self.inner.transport;
        let authed = self.inner.tokens.current(t).await?;
        inspect::capabilities(t, &authed.token, api_path).await
    }

    // ----- leases: dynamic secrets (see `crate::lease`) -----

    /// Issues the secret at `path` (`<mount>/<path>[#field]`) with a read,
    /// as engines that issue on a read do (`database/creds/<role>`,
    /// `aws/creds/<role>`), and keeps its lease: renewed, replaced before
    /// it ends, revoked when the last handle drops or at
    /// [`shutdown`](Self::shutdown). See [`crate::lease`].
    ///
    /// A KV path is refused ([`Error::WrongEngine`], naming `read`); a 403
    /// names the capability and path needed ([`Error::LeaseDenied`]).
    pub async fn lease(&self, path: impl AsRef<str>) -> Result<LeasedSecret, Error> {
        let request = IssueRequest {
            secret: SecretRef::parse(path.as_ref())?,
            body: None,
        };
        self.start_lease(request).await
    }

    /// [`lease`](Self::lease) for engines that issue on a write: `body` (a
    /// JSON object, such as `{"common_name": "app.example.com"}` for
    /// `pki/issue/<role>`) is written to `path`, and written again for each
    /// replacement.
    pub async fn lease_with(
        &self,
        path: impl AsRef<str>,
        body: impl serde::Serialize,
    ) -> Result<LeasedSecret, Error> {
        let path = path.as_ref();
        let body = serde_json::to_vec(&body).map_err(|e| Error::InvalidPath {
            path: path.to_owned(),
            reason: format!("the body cannot be written as JSON (at line {})", e.line()),
        })?;
        if !body.starts_with(b"{") {
            return Err(Error::InvalidPath {
                path: path.to_owned(),
                reason: "the body to write must be a JSON object".into(),
            });
        }
        let request = IssueRequest {
            secret: SecretRef::parse(path)?,
            body: Some(zeroize::Zeroizing::new(body)),
        };
        self.start_lease(request).await
    }

    async fn start_lease(&self, request: IssueRequest) -> Result<LeasedSecret, Error> {
        let span = tracing::debug_span!("vault_lease", path = %request.secret.path);
        let options = self.lease_options();
        lease::start(self.clone(), &self.inner.leases, request, options)
            .instrument(span)
            .await
    }

    /// The lease options of this client ([`ClientBuilder::lease_options`]).
    pub fn lease_options(&self) -> LeaseOptions {
        self.inner.lease_options.get().copied().unwrap_or_default()
    }

    /// How many leases this client keeps now.
    pub fn leases_held(&self) -> usize {
        self.inner.leases.len()
    }

    /// Sets the lease options, once, as the builder builds the client.
    pub(crate) fn set_lease_options(&self, options: LeaseOptions) {
        let _ = self.inner.lease_options.set(options);
    }

    /// How many mounts this client has learned (tests of its state).
    #[cfg(test)]
    pub(crate) fn mounts_known(&self) -> usize {
        self.inner.mounts.len()
    }
}

/// The client wires its token to its leases: the keeper sees the token's
/// lifetime and may ask for a new login, and nothing below knows of leases.
impl lease::Backend for VaultClient {
    fn context(&self) -> LeaseContext<'_> {
        LeaseContext {
            transport: &self.inner.transport,
            tokens: &self.inner.tokens,
            namespace: self.config().namespace(),
        }
    }

    fn token_life(&self) -> tokio::sync::watch::Receiver<TokenLife> {
        self.inner.tokens.life()
    }

    async fn touch_token(&self) -> Result<(), Error> {
        self.inner
            .tokens
            .current(&self.inner.transport)
            .await
            .map(drop)
    }

    async fn replace_token(&self, generation: u64) -> Result<(), Error> {
        self.inner
            .tokens
            .replace(&self.inner.transport, generation)
            .await
    }
}

#[cfg(test)]
mod tests {
    use secret_core::Env;

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
        let client = VaultClient::builder().env(env()).build().await.unwrap();
        assert_eq!(
            format!("{client:?}"),
            "VaultClient { address: \"http://127.0.0.1:8200\", namespace: None, \
             credentials: \"the environment variable `VAULT_TOKEN`\", cache: None, .. }"
        );
    }

    #[tokio::test]
    async fn clones_share_state_and_separate_builds_do_not() {
        let a = VaultClient::builder().env(env()).build().await.unwrap();
        let b = VaultClient::builder().env(env()).build().await.unwrap();
        let a2 = a.clone();
        assert!(a.shares_state_with(&a2) && !a.shares_state_with(&b));
        a.inner.mounts.insert("kv", KvVersion::V1);
        assert_eq!((a2.mounts_known(), b.mounts_known()), (1, 0));
        assert_eq!(a.holders(), 2);
    }
}
