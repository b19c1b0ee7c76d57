//! A client's token and its lifetime: log in once (concurrent first uses
//! share the login), renew at two thirds of the TTL, log in again near the
//! max TTL or when the server rejects the token, revoke on request.
//!
//! Apart from requests and reads, as Vault's Go client keeps its
//! `LifetimeWatcher` apart: [`Tokens`] decides *which* token a request
//! carries; `kv` and `inspect` decide what the request is.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::api;
use crate::auth::{self, Login};
use crate::credentials::Credentials;
use crate::error::{AuthAttempt, Error};
use crate::transport::Transport;

/// Log in again this long before the token's expiry (at most a third of its TTL).
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// A live token, where it came from and its lease.
#[derive(Debug)]
pub(crate) struct Authed {
    pub(crate) token: SecretString,
    pub(crate) method: &'static str,
    /// False for a static token used without checking it first.
    validated: bool,
    /// Obtained by this client's login (so renewed and revoked by it),
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
    /// Which login of this client gave it (from 1): leases issued under it
    /// die with it.
    generation: u64,
}

impl Authed {
    fn from_login(login: Login, generation: u64) -> Self {
        Authed {
            generation,
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

    /// Which login of this client gave the token.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    fn expires_at(&self) -> Option<Instant> {
        self.ttl.map(|ttl| self.since + ttl)
    }

    /// Time to log in again: the lease ends within the margin.
    fn stale(&self, now: Instant) -> bool {
        self.expires_at()
            .is_some_and(|end| now + self.margin >= end)
    }

    /// Time to renew: two thirds of the lease have passed.
    fn renewal_due(&self, now: Instant) -> bool {
        self.owned
            && self.renewable
            && !self.exhausted
            && self.ttl.is_some_and(|ttl| now >= self.since + ttl * 2 / 3)
    }

    /// This token after a renewal that answered `outcome`: a renewal that
    /// failed or no longer extends the lease marks it exhausted, so the
    /// next use near the end logs in again.
    fn renewed(&self, outcome: Result<api::Lease, String>) -> Authed {
        let mut next = Authed {
            token: self.token.clone(),
            method: self.method,
            validated: self.validated,
            owned: self.owned,
            renewable: self.renewable,
            since: self.since,
            ttl: self.ttl,
            exhausted: true,
            margin: self.margin,
            generation: self.generation,
        };
        match outcome {
            Ok(lease) => {
                let now = Instant::now();
                let extended = match (lease.ttl.map(|ttl| now + ttl), self.expires_at()) {
                    (Some(new), Some(old)) => new > old + Duration::from_secs(1),
                    _ => false,
                };
                tracing::debug!(method = self.method, extended, "token renewed");
                if let Some(ttl) = lease.ttl {
                    next.since = now;
                    next.ttl = Some(ttl);
                }
                next.exhausted = !extended;
                next.renewable = lease.renewable || extended;
            }
            Err(failure) => {
                tracing::debug!(method = self.method, %failure, "renewal failed; will log in again");
            }
        }
        next
    }
}

/// The current token's lifetime, as leases issued under it need it: they
/// die with the token, so they are issued anew under the next one before
/// it ends. Published by [`Tokens`] on each login and renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TokenLife {
    /// Which login gave the token (0: none yet).
    pub(crate) generation: u64,
    /// When it ends unless renewed; `None` when it never expires (or the
    /// server did not say).
    pub(crate) expires_at: Option<Instant>,
    /// When the next renewal that extends it is due; `None` when it will
    /// not be extended (a token the user supplied, not renewable, or its
    /// max TTL reached).
    pub(crate) renewal_due: Option<Instant>,
    /// How long before its end the client logs in again by itself.
    pub(crate) margin: Duration,
}

impl TokenLife {
    fn of(authed: &Authed) -> Self {
        let extends = authed.owned && authed.renewable && !authed.exhausted;
        TokenLife {
            generation: authed.generation,
            expires_at: authed.expires_at(),
            renewal_due: authed
                .ttl
                .filter(|_| extends)
                .map(|ttl| authed.since + ttl * 2 / 3),
            margin: authed.margin,
        }
    }
}

/// What one attempt with one token came to.
pub(crate) enum Attempt<T> {
    Done(T),
    /// The server rejected the token itself.
    TokenRejected,
}

/// The credentials a client logs in with and the token it holds.
///
/// Renewal is lazy: it happens on the first use after two thirds of the
/// lease, not on a timer, so an idle client makes no requests.
#[derive(Debug)]
pub(crate) struct Tokens {
    credentials: Credentials,
    /// One login or renewal at a time: concurrent first uses wait for it.
    state: tokio::sync::Mutex<Option<Arc<Authed>>>,
    /// The AppRole secret id unwrapped at the first login, when it was
    /// given response-wrapped (the wrapping token works only once).
    unwrapped: tokio::sync::Mutex<Option<SecretString>>,
    /// The current token's lifetime, for the leases issued under it.
    life: tokio::sync::watch::Sender<TokenLife>,
    /// Tokens replaced while leases issued under them may still be in use:
    /// left to run out rather than revoked (which would revoke those
    /// leases at once), and revoked by [`revoke`](Self::revoke).
    retired: std::sync::Mutex<Vec<Arc<Authed>>>,
    logins: std::sync::atomic::AtomicU64,
}

impl Tokens {
    pub(crate) fn new(credentials: Credentials) -> Self {
        Tokens {
            credentials,
            state: tokio::sync::Mutex::new(None),
            unwrapped: tokio::sync::Mutex::new(None),
            life: tokio::sync::watch::Sender::new(TokenLife::default()),
            retired: std::sync::Mutex::new(Vec::new()),
            logins: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(crate) fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The current token: logging in when there is none or it is about to
    /// expire, renewing it when two thirds of its lease have passed.
    pub(crate) async fn current(&self, t: &Transport) -> Result<Arc<Authed>, Error> {
        let mut state = self.state.lock().await;
        if let Some(authed) = state.as_ref() {
            if authed.renewal_due(Instant::now()) {
                let outcome = api::renew_self(t, &authed.token, authed.ttl)
                    .await
                    .map_err(|f| f.to_string());
                let renewed = Arc::new(authed.renewed(outcome));
                self.life.send_replace(TokenLife::of(&renewed));
                *state = Some(renewed);
            }
            if let Some(authed) = state.as_ref()
                && !authed.stale(Instant::now())
            {
                return Ok(authed.clone());
            }
        }
        let old = state.take();
        let authed = self.login(t).await?;
        if let Some(old) = old.filter(|o| o.owned) {
            self.retire(t, old).await;
        }
        *state = Some(authed.clone());
        Ok(authed)
    }

    /// Logs in and publishes the new token's lifetime.
    async fn login(&self, t: &Transport) -> Result<Arc<Authed>, Error> {
        let login = {
            // Callers hold the state's lock: one login at a time.
            let mut unwrapped = self.unwrapped.lock().await;
            auth::login(t, &self.credentials, &mut unwrapped).await?
        };
        tracing::info!(
            method = login.method,
            keys_from = %self.credentials.origin,
            "logged in"
        );
        let generation = self
            .logins
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let authed = Arc::new(Authed::from_login(login, generation));
        self.life.send_replace(TokenLife::of(&authed));
        Ok(authed)
    }

    /// A replaced token: revoked at once, unless leases may live under it
    /// (someone watches the token's lifetime), which a revocation would end
    /// before they are replaced; then it is kept for [`revoke`](Self::revoke).
    async fn retire(&self, t: &Transport, old: Arc<Authed>) {
        if self.life.receiver_count() > 0 {
            let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            retired.retain(|r| r.expires_at().is_none_or(|end| end > now));
            retired.push(old);
            return;
        }
        // Its lease is nearly over: revoke it rather than leave it behind.
        if let Err(e) = api::revoke_self(t, &old.token).await {
            tracing::debug!(failure = %e, "could not revoke the replaced token");
        }
    }

    /// The lifetime of the current token, and of each next one.
    pub(crate) fn life(&self) -> tokio::sync::watch::Receiver<TokenLife> {
        self.life.subscribe()
    }

    /// Logs in again now if the current token is still login `generation`
    /// (leases are to be issued anew under a token that outlives them),
    /// keeping the old token until it runs out; else the current token.
    pub(crate) async fn replace(&self, t: &Transport, generation: u64) -> Result<(), Error> {
        let mut state = self.state.lock().await;
        if state.as_ref().is_some_and(|a| a.generation != generation) {
            return Ok(());
        }
        let authed = self.login(t).await?;
        if let Some(old) = state.take().filter(|o| o.owned) {
            self.retire(t, old).await;
        }
        *state = Some(authed);
        Ok(())
    }

    /// Revokes the token obtained by logging in (`auth/token/revoke-self`);
    /// the next use logs in again. A token the user supplied is left alone.
    pub(crate) async fn revoke(&self, t: &Transport) -> Result<(), Error> {
        let retired = std::mem::take(&mut *self.retired.lock().unwrap_or_else(|p| p.into_inner()));
        for old in retired {
            if let Err(e) = api::revoke_self(t, &old.token).await {
                tracing::debug!(failure = %e, "could not revoke a replaced token");
            }
        }
        let Some(authed) = self.state.lock().await.take() else {
            return Ok(());
        };
        if !authed.owned {
            return Ok(());
        }
        match api::revoke_self(t, &authed.token).await {
            Ok(()) => {
                tracing::debug!(method = authed.method, "token revoked");
                Ok(())
            }
            // Already expired or revoked: nothing is left behind.
            Err(f) if matches!(f.status(), Some(401 | 403)) => Ok(()),
            Err(f) => Err(f.into_error(t.address(), "auth/token/revoke-self")),
        }
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

    /// Runs `attempt` with the current token; when the server rejects the
    /// token (revoked or expired since login), logs in again once and runs
    /// it once more.
    pub(crate) async fn with_token<T, F, Fut>(&self, t: &Transport, attempt: F) -> Result<T, Error>
    where
        F: Fn(Arc<Authed>) -> Fut,
        Fut: Future<Output = Result<Attempt<T>, Error>>,
    {
        let authed = self.current(t).await?;
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
        let authed = self.current(t).await?;
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

/// Whether the server still takes `token` (`lookup-self`): asked only after
/// a 403, to tell a rejected token from a policy denial without reading the
/// message's wording (Vault versions, proxies and other servers differ).
pub(crate) async fn is_accepted(t: &Transport, token: &SecretString) -> Result<bool, Error> {
    match api::lookup_self(t, token).await {
        Ok(_) => Ok(true),
        Err(f) if matches!(f.status(), Some(401 | 403)) => Ok(false),
        // A server without the endpoint: the 403 was about the path.
        Err(f) if matches!(f.status(), Some(404 | 405)) => Ok(true),
        Err(f) => Err(f.into_error(t.address(), "auth/token/lookup-self")),
    }
}

fn rejected(method: &'static str, reason: &str) -> Error {
    Error::AuthFailed {
        attempts: vec![AuthAttempt {
            method,
            reason: reason.into(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(ttl: u64, age: u64, owned: bool, renewable: bool) -> Authed {
        let mut authed = Authed::from_login(
            Login {
                token: SecretString::from("t"),
                method: "approle",
                validated: true,
                owned,
                renewable,
                ttl: Some(Duration::from_secs(ttl)),
            },
            1,
        );
        authed.since = Instant::now() - Duration::from_secs(age);
        authed
    }

    #[test]
    fn debug_is_pinned_and_never_shows_the_token() {
        let authed = Authed::from_login(
            Login {
                token: SecretString::from("hunter2"),
                method: "approle",
                validated: true,
                owned: true,
                renewable: true,
                ttl: Some(Duration::from_secs(60)),
            },
            1,
        );
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

    #[test]
    fn a_renewal_that_does_not_extend_the_lease_exhausts_it() {
        let authed = lease(60, 41, true, true);
        let extended = authed.renewed(Ok(api::Lease {
            ttl: Some(Duration::from_secs(60)),
            renewable: true,
        }));
        assert!(!extended.exhausted && extended.ttl == Some(Duration::from_secs(60)));
        // The max TTL is near: the server gives back less than is left.
        let capped = authed.renewed(Ok(api::Lease {
            ttl: Some(Duration::from_secs(5)),
            renewable: true,
        }));
        assert!(capped.exhausted);
        let failed = authed.renewed(Err("HTTP 500".into()));
        assert!(failed.exhausted && failed.since == authed.since);
    }
}
