//! An opt-in read cache, one per client: warm reads without a request, one
//! request per TTL for a hot secret, and stale values through outages.
//!
//! Off by default: every read asks the server. A service that reads the
//! same secrets over and over, and wants them through a server restart,
//! turns it on for the client it holds:
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use vault_secret::{CacheOptions, VaultClient};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), vault_secret::Error> {
//!     let vault = VaultClient::builder()
//!         .cache(
//!             CacheOptions::new()
//!                 .with_ttl(Duration::from_secs(60))
//!                 .with_max_stale(Duration::from_secs(300)),
//!         )
//!         .build()
//!         .await?;
//!
//!     let password = vault.read("secret/billing/db#password").await?; // asks the server
//!     let user = vault.read("secret/billing/db#user").await?; // from the cache: no request
//!     println!("{} and {} bytes", password.expose_secret().len(), user.expose_secret().len());
//!
//!     vault.read_fresh("secret/billing/db").await?; // bypasses the cache, refreshes the entry
//!     vault.invalidate("secret/billing/db"); // every cached version of that path
//!     vault.invalidate_all();
//!     if let Some(stats) = vault.cache_stats() {
//!         println!("{} hits, {} misses, {} stale", stats.hits, stats.misses, stats.stale_served);
//!     }
//!     Ok(())
//! }
//! ```
//!
//! A client made with a cache reads each secret through it. The cache keeps
//! a secret's data (before a `#field` is picked, so `#user` and `#password`
//! share one entry) under its path and, for `?version=N`, its version.
//! Its entries belong to that one client (address, namespace, credentials):
//! two clients never share one, clones of a client do, and a value is
//! cached only after the server returned it to the client's token.
//! `VaultSecret::new(path).client(c)` and `VaultSource::under(prefix).client(c)`
//! read through `c`'s cache. The `vault-secret` CLI does not cache: each
//! run is one read.
//!
//! # Defaults
//!
//! | Option ([`CacheOptions`]) | Default |
//! |---|---|
//! | [`with_ttl`](CacheOptions::with_ttl): how long a value is served without asking | 5 min |
//! | [`with_max_entries`](CacheOptions::with_max_entries) | 1,024 (least recently used out first, zeroized) |
//! | [`with_max_stale`](CacheOptions::with_max_stale): how long past its TTL a value may be served on a transient failure | 5 min |
//! | [`with_refresh_ahead`](CacheOptions::with_refresh_ahead): the last part of the TTL in which one read starts a background refresh | a twentieth of the TTL (at most half of it) |
//! | [`with_version_ttl`](CacheOptions::with_version_ttl): the TTL of an explicit version (`?version=N`) | 1 h |
//!
//! # Semantics
//!
//! - **Within the TTL** a read gets the cached value without a request.
//! - **One request per key at a time**: concurrent reads of a value not
//!   cached share one request and its answer. (An error is not shared: when
//!   that request fails, each waiting read makes its own, so every caller
//!   gets its own error with its full detail.)
//! - **Refresh-ahead**: in the last part of the TTL, one read starts a single
//!   background refresh while every read keeps getting the cached value, so
//!   a hot secret never makes a reader wait after its first read.
//! - **Stale if error**: when refreshing a value fails with a *transient*
//!   error (the server unreachable or timing out, a 5xx answer, sealed, a
//!   standby during a leader election) and the value is at most the max
//!   staleness past its TTL, that value is served, counted in
//!   [`CacheStats::stale_served`], and logged at DEBUG with its path and age
//!   (never the value).
//! - **An explicit version** (`?version=N`) cannot change, so it is refreshed
//!   only once per its own, longer TTL; that refresh is what finds out it
//!   was deleted or destroyed.
//! - **Control**: invalidating a path drops every version of it; a read can
//!   bypass the cache, which replaces the entry with the server's answer.
//!   [`CacheStats`] counts hits, misses, refreshes, stale values served and
//!   errors.
//!
//! # What is never cached or hidden
//!
//! - A **403 or 404** (permission denied, not found, a version deleted or
//!   destroyed) or a failed login drops the entry and is returned: a revoked
//!   permission or a deleted secret is never hidden by a cached value. So
//!   does any other error that is not transient (a 400, a bad path).
//! - Errors are never cached: the next read asks again.
//! - A bypassing read that fails returns its error, never a cached value.
//! - Values leaving the cache (evicted, expired, invalidated or replaced) are
//!   zeroized; no `Debug` output shows one.
//!
//! Tested against a real OpenBao in `integration-tests/tests/it/cache.rs`,
//! among them 16 readers at a 1 s TTL and a 60 s max staleness through a
//! server killed with SIGKILL, restarted and unsealed mid-run, with no
//! failed read (the same run without a cache fails reads, which shows the
//! run reached the outage). Its figures are in
//! `integration-tests/benches/README.md`.

mod options;
mod store;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

use crate::Error;
pub use options::{CacheOptions, CacheStats};
pub(crate) use store::CacheKey;
use store::Store;

/// Where the cache reads the time; tests move it by hand, so no test of a
/// TTL sleeps.
pub(crate) trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real, monotonic clock.
#[derive(Debug)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A read cache (see the [module docs](self)); cloning gives another handle
/// to the same entries.
#[derive(Clone)]
pub(crate) struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    options: CacheOptions,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    hits: AtomicU64,
    misses: AtomicU64,
    refreshes: AtomicU64,
    stale_served: AtomicU64,
    errors: AtomicU64,
}

struct State {
    store: Store,
    /// The load under way for each key, which readers of that key wait for.
    flights: HashMap<CacheKey, Pending>,
    /// Numbers each load, in the order they start.
    seq: u64,
    /// The last load number started before the last invalidation: the
    /// answers of loads up to it are returned but not stored, since they
    /// may predate what the invalidation was for.
    invalidated_at: u64,
    /// When dead entries (past TTL and max staleness) are next wiped.
    next_sweep: Instant,
}

impl State {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// A load under way: its number and where its outcome will be.
struct Pending {
    seq: u64,
    outcome: watch::Receiver<Option<Shared>>,
}

/// What a load ended with, as the reads that waited for it get it.
enum Shared {
    Fresh(Value),
    Stale {
        value: Value,
        age: Duration,
    },
    /// The load failed; each waiting read makes its own.
    Failed,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Shared::Fresh(value) | Shared::Stale { value, .. } = self {
            secret_core::zeroize_json(value);
        }
    }
}

/// What a load ended with, for the read that made it.
enum Reply {
    Fresh(Value),
    Stale {
        value: Value,
        age: Duration,
        error: Error,
    },
    Failed(Error),
}

impl Reply {
    fn share(&self) -> Shared {
        match self {
            Reply::Fresh(value) => Shared::Fresh(value.clone()),
            Reply::Stale { value, age, .. } => Shared::Stale {
                value: value.clone(),
                age: *age,
            },
            Reply::Failed(_) => Shared::Failed,
        }
    }
}

/// What a read found under the lock.
enum Found {
    Hit(Value),
    HitAndRefresh(Value, Flight),
    Wait(watch::Receiver<Option<Shared>>),
    Lead(Flight),
}

/// The load a read (or a background refresh) makes on behalf of every
/// reader of its key. Dropped without [`finish`](Self::finish) (its read was
/// cancelled), its waiters make their own loads.
struct Flight {
    inner: Arc<Inner>,
    key: CacheKey,
    seq: u64,
    outcome: watch::Sender<Option<Shared>>,
}

impl Flight {
    fn finish(self, outcome: Shared) {
        self.outcome.send_replace(Some(outcome));
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        // Only its own registration: an invalidation may have let a newer
        // load take the key.
        if state
            .flights
            .get(&self.key)
            .is_some_and(|pending| pending.seq == self.seq)
        {
            state.flights.remove(&self.key);
        }
    }
}

impl Cache {
    /// An empty cache with these options, on the system clock.
    pub(crate) fn new(options: CacheOptions) -> Self {
        Self::with_clock(options, Arc::new(SystemClock))
    }

    /// An empty cache reading the time from `clock`.
    pub(crate) fn with_clock(options: CacheOptions, clock: Arc<dyn Clock>) -> Self {
        let now = clock.now();
        Cache {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    store: Store::default(),
                    flights: HashMap::new(),
                    seq: 0,
                    invalidated_at: 0,
                    next_sweep: now + sweep_interval(&options),
                }),
                options,
                clock,
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                refreshes: AtomicU64::new(0),
                stale_served: AtomicU64::new(0),
                errors: AtomicU64::new(0),
            }),
        }
    }

    /// The options it was made with.
    pub(crate) fn options(&self) -> &CacheOptions {
        &self.inner.options
    }

    /// Reads `key` through the cache: the cached value within its TTL (and,
    /// near its end, one background refresh through `load`), else the answer
    /// of `load` (shared with concurrent reads of the key), else, on a
    /// transient failure, a value at most the max staleness past its TTL.
    pub(crate) async fn get<F, Fut>(&self, key: CacheKey, load: F) -> Result<Value, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Value, Error>> + Send + 'static,
    {
        let found = self.find(&key);
        match found {
            Found::Hit(value) => Ok(value),
            Found::HitAndRefresh(value, flight) => {
                self.refresh_in_background(flight, load);
                Ok(value)
            }
            Found::Lead(flight) => {
                let result = load().await;
                let reply = self.inner.settle(&flight.key, flight.seq, result, true);
                flight.finish(reply.share());
                self.inner.deliver(&key, reply)
            }
            Found::Wait(mut outcome) => {
                let shared = match outcome.wait_for(Option::is_some).await {
                    Ok(shared) => match shared.as_ref() {
                        Some(Shared::Fresh(value)) => Some(Ok(value.clone())),
                        Some(Shared::Stale { value, age }) => Some(Err((value.clone(), *age))),
                        Some(Shared::Failed) | None => None,
                    },
                    // The leading read was cancelled before its load ended.
                    Err(_) => None,
                };
                drop(outcome);
                match shared {
                    Some(Ok(value)) => Ok(value),
                    Some(Err((value, age))) => {
                        self.inner.count_stale(&key, age, None);
                        Ok(value)
                    }
                    None => self.load_alone(key, load).await,
                }
            }
        }
    }

    /// Reads `key` from the server through `load`, bypassing the cached
    /// value, and stores the answer in its place. A failure is returned,
    /// never a cached value; a 403 or 404 drops the entry.
    pub(crate) async fn reload<F, Fut>(&self, key: CacheKey, load: F) -> Result<Value, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Value, Error>>,
    {
        let seq = self.inner.lock().next_seq();
        self.inner.refreshes.fetch_add(1, Ordering::Relaxed);
        let result = load().await;
        let reply = self.inner.settle(&key, seq, result, false);
        self.inner.deliver(&key, reply)
    }

    /// Drops every cached version of `path` (as the keys spell it); the next
    /// read of it asks the server.
    pub(crate) fn invalidate(&self, path: &str) {
        let mut state = self.inner.lock();
        state.invalidated_at = state.seq;
        state.store.remove_where(|key, _| key.path == path);
        state.flights.retain(|key, _| key.path != path);
    }

    /// Drops every cached value.
    pub(crate) fn invalidate_all(&self) {
        let mut state = self.inner.lock();
        state.invalidated_at = state.seq;
        state.store.remove_where(|_, _| true);
        state.flights.clear();
    }

    /// The counters so far.
    pub(crate) fn stats(&self) -> CacheStats {
        let inner = &self.inner;
        CacheStats {
            hits: inner.hits.load(Ordering::Relaxed),
            misses: inner.misses.load(Ordering::Relaxed),
            refreshes: inner.refreshes.load(Ordering::Relaxed),
            stale_served: inner.stale_served.load(Ordering::Relaxed),
            errors: inner.errors.load(Ordering::Relaxed),
        }
    }

    /// How many values it holds.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().store.len()
    }

    /// Looks `key` up, counting the hit or miss, and registers the load this
    /// read is to make, if any.
    fn find(&self, key: &CacheKey) -> Found {
        let inner = &self.inner;
        let now = inner.clock.now();
        let mut guard = inner.lock();
        let state = &mut *guard;
        if now >= state.next_sweep {
            sweep(state, &inner.options, now);
        }
        let ttl = inner.options.lifetime(key.version);
        if let Some(entry) = state.store.touch(key) {
            let age = entry.age(now);
            if age < ttl {
                let value = entry.value.clone();
                inner.hits.fetch_add(1, Ordering::Relaxed);
                let due = age >= ttl - inner.options.window(ttl);
                if due && !state.flights.contains_key(key) {
                    inner.refreshes.fetch_add(1, Ordering::Relaxed);
                    return Found::HitAndRefresh(value, self.start_flight(state, key));
                }
                return Found::Hit(value);
            }
        }
        inner.misses.fetch_add(1, Ordering::Relaxed);
        match state.flights.get(key) {
            Some(pending) => Found::Wait(pending.outcome.clone()),
            None => Found::Lead(self.start_flight(state, key)),
        }
    }

    fn start_flight(&self, state: &mut State, key: &CacheKey) -> Flight {
        let (outcome, rx) = watch::channel(None);
        let seq = state.next_seq();
        state
            .flights
            .insert(key.clone(), Pending { seq, outcome: rx });
        Flight {
            inner: self.inner.clone(),
            key: key.clone(),
            seq,
            outcome,
        }
    }

    fn refresh_in_background<F, Fut>(&self, flight: Flight, load: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Value, Error>> + Send + 'static,
    {
        // Outside a runtime the flight is dropped: the value then expires
        // and the next read loads it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let result = load().await;
            let reply = flight.inner.settle(&flight.key, flight.seq, result, true);
            let shared = reply.share();
            match reply {
                Reply::Fresh(mut value) | Reply::Stale { mut value, .. } => {
                    secret_core::zeroize_json(&mut value);
                }
                Reply::Failed(error) => tracing::debug!(
                    path = %flight.key.path,
                    version = ?flight.key.version,
                    %error,
                    "refreshing a cached secret ahead of its expiry failed"
                ),
            }
            flight.finish(shared);
        });
    }

    /// A load of this read's own, after the one it waited for failed.
    async fn load_alone<F, Fut>(&self, key: CacheKey, load: F) -> Result<Value, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Value, Error>>,
    {
        let seq = self.inner.lock().next_seq();
        let result = load().await;
        let reply = self.inner.settle(&key, seq, result, true);
        self.inner.deliver(&key, reply)
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements that cannot panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores a load's answer, or judges its failure: a transient one serves
    /// the cached value when `stale_allowed` and it is within max staleness;
    /// any other drops the entry.
    fn settle(
        &self,
        key: &CacheKey,
        seq: u64,
        result: Result<Value, Error>,
        stale_allowed: bool,
    ) -> Reply {
        let now = self.clock.now();
        let mut state = self.lock();
        match result {
            Ok(value) => {
                let newer = state.store.peek(key).is_none_or(|e| e.seq < seq);
                if seq > state.invalidated_at && newer {
                    let max = self.options.max_entries();
                    state
                        .store
                        .insert(key.clone(), value.clone(), now, seq, max);
                }
                Reply::Fresh(value)
            }
            Err(error) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                if !is_transient(&error) {
                    state.store.remove(key);
                    return Reply::Failed(error);
                }
                let limit = self.options.lifetime(key.version) + self.options.max_stale();
                match state.store.peek(key) {
                    Some(entry) if stale_allowed && entry.age(now) <= limit => Reply::Stale {
                        value: entry.value.clone(),
                        age: entry.age(now),
                        error,
                    },
                    _ => Reply::Failed(error),
                }
            }
        }
    }

    fn deliver(&self, key: &CacheKey, reply: Reply) -> Result<Value, Error> {
        match reply {
            Reply::Fresh(value) => Ok(value),
            Reply::Stale { value, age, error } => {
                self.count_stale(key, age, Some(&error));
                Ok(value)
            }
            Reply::Failed(error) => Err(error),
        }
    }

    fn count_stale(&self, key: &CacheKey, age: Duration, error: Option<&Error>) {
        self.stale_served.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            path = %key.path,
            version = ?key.version,
            age_ms = age.as_millis() as u64,
            error = error.map(tracing::field::display),
            "serving a stale cached secret: refreshing it failed with a transient error"
        );
    }
}

/// Wipes the entries past their TTL and max staleness, which nothing may
/// serve any more; done at most once per [`sweep_interval`] so a read does
/// not scan the map each time.
fn sweep(state: &mut State, options: &CacheOptions, now: Instant) {
    state.next_sweep = now + sweep_interval(options);
    state.store.remove_where(|key, entry| {
        entry.age(now) > options.lifetime(key.version) + options.max_stale()
    });
}

fn sweep_interval(options: &CacheOptions) -> Duration {
    options.ttl().max(Duration::from_secs(1))
}

/// The failures a cached value may be served through: the server
/// unreachable or timing out, sealed, failing (5xx: an election's 500 and 503
/// among them), or a standby redirecting during an election (307/308, as
/// `transport` classifies them). Anything else, 403 and 404 first, is an
/// answer about the secret or the token and is never hidden.
fn is_transient(error: &Error) -> bool {
    match error {
        Error::Transport { .. } | Error::Sealed { .. } => true,
        Error::Server { status, .. } => *status >= 500 || matches!(status, 307 | 308),
        _ => false,
    }
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("options", &self.inner.options)
            .field("entries", &self.len())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
