//! [`VaultClient`]: one server, one set of credentials, and the state that
//! goes with them (the token and its lifetime, the mounts learned), owned
//! by the caller.

use std::fmt;
use std::sync::Arc;

use futures_util::StreamExt as _;
use secret_core::SecretValue;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

use crate::batch;
use crate::blocking::ClientRuntime;
use crate::cache::{Cache, CacheKey};
use crate::cache::{CacheOptions, CacheStats};
use crate::config::VaultConfig;
use crate::credentials::Credentials;
use crate::error::Error;
use crate::kv::{self, KvContext};
use crate::kv_write::{self, Cas, Op, VersionMetadata, Versioned, WriteData, Written};
use crate::lease::{self, IssueRequest, LeaseContext, LeaseOptions, LeaseRegistry, LeasedSecret};
use crate::mounts::{KvVersion, MountCache};
use crate::path::SecretRef;
use crate::token::{TokenLife, Tokens};
use crate::transport::Transport;

/// A Vault client a service builds once and holds.
///
/// It owns its HTTP transport (connection pool, retries, timeouts), its
/// token and the token's lifetime, and what it learned about mounts; and,
/// from its first synchronous call (`VaultSecret::run_blocking`, figment,
/// config-rs), a runtime of its own that runs those calls on the same
/// connections (driven by the calling thread, or by a thread of its own
/// between calls) and stops when the client is dropped.
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
/// supplied (`VAULT_TOKEN`, [`ClientBuilder::token`](crate::ClientBuilder::token)) is never renewed nor
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
    /// Where synchronous calls run, started by the first one.
    runtime: ClientRuntime,
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
            .field("credentials", &self.inner.tokens.credentials().origin)
            .field("cache", &self.inner.cache.as_ref().map(Cache::options))
            .finish_non_exhaustive()
    }
}

impl VaultClient {
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
                runtime: ClientRuntime::default(),
                leases: LeaseRegistry::default(),
                lease_options: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The server settings.
    pub fn config(&self) -> &VaultConfig {
        self.inner.transport.config()
    }

    /// Whether `self` and `other` are clones of one client (share its state).
    pub fn shares_state_with(&self, other: &VaultClient) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The HTTP transport (for the diagnostics in `inspect`).
    pub(crate) fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// The token and its lifetime.
    pub(crate) fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    /// Runs `call` to completion from synchronous code, on this client's
    /// own runtime (started by the first such call, stopped with the
    /// client), so that every synchronous call reuses its connections. See
    /// [`crate::blocking`].
    pub(crate) fn block_on<T, F>(&self, call: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, Error>> + Send + 'static,
    {
        self.inner.runtime.run(call)
    }

    /// How many clones of this client exist (the default-client map evicts
    /// only clients nobody else holds).
    pub(crate) fn holders(&self) -> usize {
        Arc::strong_count(&self.inner)
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
    ///
    /// Like every method here that takes a path, it takes anything that is a
    /// `str` (`&str`, `String`, `&String`).
    pub async fn read(&self, path: impl AsRef<str>) -> Result<SecretValue, Error> {
        self.read_ref(&SecretRef::parse(path.as_ref())?, None).await
    }

    /// Reads a secret (or one field of it) straight into `T`. A missing or
    /// mistyped field is an error naming the secret and the field, never
    /// the value; `secrecy::SecretString` fields stay redacted.
    pub async fn read_as<T: DeserializeOwned>(&self, path: impl AsRef<str>) -> Result<T, Error> {
        Ok(self.read(path).await?.deserialize()?)
    }

    /// Reads several secrets (each `<mount>/<path>[?version=N][#field]`), in
    /// the order given: one login, each distinct path read once, up to
    /// eight distinct paths at the same time. The first failure (in the
    /// order given) is the error.
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
        // Built first: a lazy map here trips the compiler's `Send` check.
        let reads: Vec<_> = paths.iter().map(|r| self.read_whole(r, kv)).collect();
        let reads = futures_util::stream::iter(reads)
            .buffered(batch::MAX_CONCURRENT_READS)
            .collect()
            .await;
        batch::values(refs, reads, &index)
    }

    /// For a source: each reference's value, or why it is not there; any
    /// other failure is the error.
    pub(crate) async fn read_each(
        &self,
        refs: &[SecretRef],
    ) -> Result<Vec<Result<SecretValue, String>>, Error> {
        let (paths, index) = batch::distinct(refs);
        // Built first: a lazy map here trips the compiler's `Send` check.
        let reads: Vec<_> = paths.iter().map(|r| self.read_whole(r, None)).collect();
        let reads = futures_util::stream::iter(reads)
            .buffered(batch::MAX_CONCURRENT_READS)
            .collect()
            .await;
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
    pub async fn read_fresh(&self, path: impl AsRef<str>) -> Result<SecretValue, Error> {
        let r = SecretRef::parse(path.as_ref())?;
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

    /// The current version of the KV v2 secret at `path` (`<mount>/<path>`;
    /// a `?version=` or `#field` is ignored), from its metadata, which holds
    /// no value: a cheap way to tell that a secret changed. `None` when the
    /// mount is KV v1 or of unknown version, nothing is there, or the token
    /// may not read `<mount>/metadata/<path>`: read the value then.
    pub async fn kv_current_version(&self, path: &str) -> Result<Option<u64>, Error> {
        let r = SecretRef::parse(path)?;
        let inner = &*self.inner;
        let namespace = self.config().namespace();
        inner
            .tokens
            .with_token(&inner.transport, |authed| {
                let r = &r;
                async move {
                    let cx = KvContext {
                        transport: &inner.transport,
                        token: &authed.token,
                        mounts: &inner.mounts,
                        namespace,
                    };
                    kv::current_version(&cx, r).await
                }
            })
            .await
    }

    /// Drops every cached version of `path` (`<mount>/<path>`, without
    /// `?version` or `#field`): the next read asks the server.
    pub fn invalidate(&self, path: impl AsRef<str>) {
        if let Some(cache) = &self.inner.cache {
            cache.invalidate(path.as_ref().trim_matches('/'));
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

    // Writes: KV write, patch, delete and destroy, and the versioned read
    // check-and-set needs. Each drops the path from the read cache, so this
    // client's next read of it sees the change.

    /// Writes `data` as the whole key/value mapping at `<mount>/<path>`
    /// (KV v1 or v2, found as reads find it); on KV v2 a new version, whose
    /// number comes back. The values are never logged.
    ///
    /// ```no_run
    /// # async fn f(vault: vault_secret::VaultClient) -> Result<(), vault_secret::Error> {
    /// let written = vault
    ///     .write("secret/app/db", &serde_json::json!({"user": "app", "password": "..."}))
    ///     .await?;
    /// println!("version {:?}", written.version);
    /// # Ok(()) }
    /// ```
    pub async fn write(
        &self,
        path: impl AsRef<str>,
        data: &dyn WriteData,
    ) -> Result<Written, Error> {
        let path = path.as_ref();
        self.write_op(path, Op::Write(None), data).await
    }

    /// [`write`](Self::write) with check-and-set (KV v2): it applies only
    /// if the secret is at the version `cas` names (or, with
    /// [`Cas::MustNotExist`], does not exist yet); otherwise nothing changes
    /// and the error is [`Error::CasMismatch`].
    ///
    /// ```no_run
    /// # async fn f(vault: vault_secret::VaultClient) -> Result<(), vault_secret::Error> {
    /// use vault_secret::Cas;
    /// let current = vault.read_versioned("secret/app/db").await?;
    /// let version = current.metadata.map(|m| m.version).unwrap_or_default();
    /// let new = serde_json::json!({"password": "rotated"});
    /// match vault.write_cas("secret/app/db", &new, Cas::Version(version)).await {
    ///     Err(vault_secret::Error::CasMismatch { .. }) => println!("someone else wrote first"),
    ///     other => println!("version {:?}", other?.version),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn write_cas(
        &self,
        path: impl AsRef<str>,
        data: &dyn WriteData,
        cas: Cas,
    ) -> Result<Written, Error> {
        let path = path.as_ref();
        self.write_op(path, Op::Write(Some(cas)), data).await
    }

    /// Merges `partial` into the secret's latest version (KV v2, a JSON
    /// merge patch: keys given replace, a `null` removes a key, the others
    /// stay), making a new version. KV v1 has no atomic merge: the error is
    /// [`Error::NeedsKvV2`], never a read-modify-write behind your back.
    pub async fn patch(
        &self,
        path: impl AsRef<str>,
        partial: &dyn WriteData,
    ) -> Result<Written, Error> {
        let path = path.as_ref();
        self.write_op(path, Op::Patch(None), partial).await
    }

    /// [`patch`](Self::patch) with check-and-set on the version patched.
    pub async fn patch_cas(
        &self,
        path: impl AsRef<str>,
        partial: &dyn WriteData,
        cas: Cas,
    ) -> Result<Written, Error> {
        let path = path.as_ref();
        self.write_op(path, Op::Patch(Some(cas)), partial).await
    }

    /// Deletes the secret: on KV v2 its latest version (soft: it can be
    /// undeleted, and a read of it gives [`Error::VersionDeleted`]); on KV v1
    /// the secret itself.
    pub async fn delete(&self, path: impl AsRef<str>) -> Result<(), Error> {
        let path = path.as_ref();
        let r = kv_write::write_ref(path, Op::Delete)?;
        let inner = &*self.inner;
        let outcome = inner
            .tokens
            .with_token(&inner.transport, |authed| {
                let r = &r;
                async move {
                    let cx = self.kv_context(&authed.token);
                    kv_write::Writer {
                        cx: &cx,
                        r,
                        op: Op::Delete,
                    }
                    .delete()
                    .await
                }
            })
            .instrument(tracing::debug_span!("vault_delete", path = %r.path))
            .await;
        self.invalidate(&r.path);
        outcome
    }

    /// Soft-deletes these KV v2 versions (they can be undeleted).
    pub async fn delete_versions(
        &self,
        path: impl AsRef<str>,
        versions: &[u64],
    ) -> Result<(), Error> {
        let path = path.as_ref();
        self.versions_op(path, Op::DeleteVersions, versions).await
    }

    /// Destroys these KV v2 versions: their data is gone for good, and a
    /// read of one gives [`Error::VersionDestroyed`].
    pub async fn destroy_versions(
        &self,
        path: impl AsRef<str>,
        versions: &[u64],
    ) -> Result<(), Error> {
        let path = path.as_ref();
        self.versions_op(path, Op::DestroyVersions, versions).await
    }

    /// Reads `<mount>/<path>[?version=N][#field]` from the server (never
    /// from the cache) with its KV v2 version's metadata (version, times,
    /// custom metadata): the version a check-and-set write needs.
    pub async fn read_versioned(&self, path: impl AsRef<str>) -> Result<Versioned, Error> {
        let path = path.as_ref();
        let r = SecretRef::parse(path)?;
        let inner = &*self.inner;
        let (mut data, metadata) = inner
            .tokens
            .with_token(&inner.transport, |authed| {
                let r = &r;
                async move {
                    let cx = self.kv_context(&authed.token);
                    kv::read_versioned(&cx, r, None, true).await
                }
            })
            .instrument(tracing::debug_span!("vault_read", path = %r.path))
            .await?;
        let value = batch::select(&r, &data);
        secret_core::zeroize_json(&mut data);
        Ok(Versioned {
            value: value?,
            metadata: metadata.and_then(VersionMetadata::from_data),
        })
    }

    async fn write_op(&self, path: &str, op: Op, data: &dyn WriteData) -> Result<Written, Error> {
        let r = kv_write::write_ref(path, op)?;
        let mapping = kv_write::mapping(&r, op, data)?;
        let inner = &*self.inner;
        let outcome = inner
            .tokens
            .with_token(&inner.transport, |authed| {
                let (r, mapping) = (&r, &mapping);
                async move {
                    let cx = self.kv_context(&authed.token);
                    kv_write::Writer { cx: &cx, r, op }.write(mapping).await
                }
            })
            .instrument(tracing::debug_span!("vault_write", path = %r.path, op = op.name()))
            .await;
        // Whatever the outcome (a lost answer may have applied it).
        self.invalidate(&r.path);
        outcome
    }

    async fn versions_op(&self, path: &str, op: Op, versions: &[u64]) -> Result<(), Error> {
        let r = kv_write::write_ref(path, op)?;
        kv_write::versions(&r, op, versions)?;
        let inner = &*self.inner;
        let outcome = inner
            .tokens
            .with_token(&inner.transport, |authed| {
                let r = &r;
                async move {
                    let cx = self.kv_context(&authed.token);
                    kv_write::Writer { cx: &cx, r, op }.versions(versions).await
                }
            })
            .instrument(tracing::debug_span!("vault_versions", path = %r.path, op = op.name()))
            .await;
        self.invalidate(&r.path);
        outcome
    }

    fn kv_context<'a>(&'a self, token: &'a secrecy::SecretString) -> KvContext<'a> {
        KvContext {
            transport: &self.inner.transport,
            token,
            mounts: &self.inner.mounts,
            namespace: self.config().namespace(),
        }
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

    /// The lease options of this client ([`ClientBuilder::lease_options`](crate::ClientBuilder::lease_options)).
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
