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
//! use vault_secret::{VaultClient, cache::CacheOptions};
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
//! | [`with_refresh_wait`](CacheOptions::with_refresh_wait): how long a read past its TTL waits for its refresh before it is served the cached value | 100 ms |
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
//! - **Stale while the server is away**: past the TTL, and at most the max
//!   staleness past it, a value can still be served:
//!   - a read whose value needs a refresh waits for that refresh at most
//!     [`refresh_wait`](CacheOptions::refresh_wait) (100 ms, counted from the
//!     refresh's start), then gets the cached value while the refresh goes
//!     on in the background;
//!   - when a refresh fails with a *transient* error (the server
//!     unreachable or timing out, a 5xx answer, sealed, a standby during a
//!     leader election), the reads that waited for it get the cached value,
//!     and the server is taken to be **away**: from then on, every read of
//!     every entry of this client past its TTL is served the cached value
//!     at once, without a request;
//!   - while it is away, one background refresh at a time (the *probe*)
//!     asks the server again, started by a read once the gap since the last
//!     probe is over: 250 ms, doubling with each failed probe up to 5 s, and
//!     at most half the TTL;
//!   - the first answer from the server (a value, or a 403 or 404) ends it:
//!     reads past their TTL refresh again.
//!
//!   Each value served stale is counted in [`CacheStats::stale_served`] and
//!   logged at DEBUG with its path and age (never the value); the failure
//!   that made the server away is logged once, at DEBUG.
//! - **An explicit version** (`?version=N`) cannot change, so it is refreshed
//!   only once per its own, longer TTL; that refresh is what finds out it
//!   was deleted or destroyed.
//! - **Control**: invalidating a path drops every version of it; a read can
//!   bypass the cache, which replaces the entry with the server's answer.
//!   [`CacheStats`] counts hits, misses, refreshes, stale values served and
//!   errors.
//!
//! # An outage, step by step
//!
//! A client with a TTL of 2 s, many readers of one secret, the server
//! killed at 10 s, restarted (sealed) at 15 s and unsealed at 17 s:
//!
//! | Time | The server | A read |
//! |---|---|---|
//! | before 10 s | answers | a hit; a refresh ahead of expiry every 1.9 s, nobody waiting |
//! | 10 s | killed | still a hit: the value is within its TTL |
//! | 11.9 s | down | still a hit; the refresh ahead of expiry starts, and retries |
//! | 12 s | down | past the TTL: served at once, stale (the refresh under way started more than the refresh wait ago) |
//! | about 12.5 s | down | the refresh fails after its retries: the server is away |
//! | 12 s to 17 s | down, then sealed | served at once, stale; a probe every 0.25, 0.5, 1, 1, 1 s ... fails |
//! | 17 s | unsealed | the next probe gets the value: fresh reads resume |
//! | after | answers | hits within the TTL; a value changed meanwhile is read within about one TTL |
//!
//! Had the outage begun past the refresh-ahead window, the first read past
//! the TTL would have waited at most the refresh wait (100 ms), then been
//! served stale while its refresh failed in the background. No read ever
//! waits for the transport's retries; a read of a secret not cached (or
//! past the max staleness) still asks the server, and fails as a client
//! without a cache would, with the error naming the server and the path.
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
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

use crate::error::Error;
pub use options::{CacheOptions, CacheStats};
pub(crate) use store::CacheKey;
use store::Store;

/// The first gap between two probes of a server that is away; it doubles
/// with each failed probe.
const FIRST_PROBE_GAP: Duration = Duration::from_millis(250);
/// The longest gap between two probes (before the TTL cap, see [`probe_gap`]).
const MAX_PROBE_GAP: Duration = Duration::from_secs(5);

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
    /// Set while the server is away: since a load failed with a transient
    /// error, and until a load gets an answer.
    away: Option<Away>,
}

impl State {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// The server is away: values past their TTL are served at once, and one
/// background refresh at a time (the probe) asks the server again.
struct Away {
    /// Probes failed in a row (the failure that began it counts as one).
    failures: u32,
    /// When the next probe may start (on the cache's clock).
    next_probe: Instant,
    /// The load probing now, by its number.
    probe: Option<u64>,
}

/// A load under way: its number, when it started (on the runtime's clock:
/// it bounds real waits), and where its outcome will be.
struct Pending {
    seq: u64,
    started: tokio::time::Instant,
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
    Stale { value: Value, age: Duration },
    Failed(Error),
}

impl Reply {
    fn share(&self) -> Shared {
        match self {
            Reply::Fresh(value) => Shared::Fresh(value.clone()),
            Reply::Stale { value, age } => Shared::Stale {
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
    /// Past its TTL while the server is away: served at once, and maybe
    /// the probe to start.
    Stale {
        value: Value,
        age: Duration,
        probe: Option<Flight>,
    },
    /// Past its TTL, within max staleness, a refresh under way: wait for it
    /// until `until`, then take the cached value.
    WaitOrStale {
        outcome: watch::Receiver<Option<Shared>>,
        until: tokio::time::Instant,
    },
    /// As [`Found::WaitOrStale`], this read making the refresh.
    LeadOrStale(Flight),
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
    started: tokio::time::Instant,
    outcome: watch::Sender<Option<Shared>>,
}

impl Flight {
    fn finish(self, outcome: Shared) {
        self.outcome.send_replace(Some(outcome));
    }

    /// Settles `result` (see [`Inner::settle`]) and shares it with the
    /// waiting reads; the reply is the caller's.
    fn settle(self, result: Result<Value, Error>) -> Reply {
        let reply = self.inner.settle(&self.key, self.seq, result, true);
        self.finish(reply.share());
        reply
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
        // A probe cancelled before it settled lets the next read probe.
        if let Some(away) = &mut state.away
            && away.probe == Some(self.seq)
        {
            away.probe = None;
        }
    }
}

/// A load's future, boxed so a read that stops waiting for it can hand it
/// to a background task.
type Load = Pin<Box<dyn Future<Output = Result<Value, Error>> + Send>>;

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
                    away: None,
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

    /// Reads `key` through the cache (see the module docs for the rules):
    /// the cached value within its TTL (and, near its end, one background
    /// refresh through `load`); past it, the answer of `load` (shared with
    /// concurrent reads of the key), or the cached value within the max
    /// staleness when the server is away, the refresh fails transiently or
    /// takes longer than the refresh wait.
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
            Found::Stale { value, age, probe } => {
                if let Some(flight) = probe {
                    self.refresh_in_background(flight, load);
                }
                self.inner.count_stale(&key, age);
                Ok(value)
            }
            Found::LeadOrStale(flight) => self.lead_or_stale(flight, Box::pin(load())).await,
            Found::Lead(flight) => {
                let result = load().await;
                let reply = flight.settle(result);
                self.inner.deliver(&key, reply)
            }
            Found::WaitOrStale { outcome, until } => {
                self.wait(key, outcome, Some(until), load).await
            }
            Found::Wait(outcome) => self.wait(key, outcome, None, load).await,
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

    /// Whether the server is taken to be away (a load failed transiently
    /// and none got an answer since).
    #[cfg(test)]
    fn is_away(&self) -> bool {
        self.inner.lock().away.is_some()
    }

    /// Looks `key` up, counting the hit or miss, and registers the load this
    /// read is to make, if any.
    fn find(&self, key: &CacheKey) -> Found {
        let inner = &self.inner;
        let options = &inner.options;
        let now = inner.clock.now();
        let mut guard = inner.lock();
        let state = &mut *guard;
        if now >= state.next_sweep {
            sweep(state, options, now);
        }
        let ttl = options.lifetime(key.version);
        let age = state.store.touch(key).map(|entry| entry.age(now));
        // Copied only for a read that returns it now: a copy is a value
        // to wipe.
        let value = |state: &State| {
            state
                .store
                .peek(key)
                .map(|entry| entry.value.clone())
                .unwrap_or_default()
        };
        if let Some(age) = age {
            if age < ttl {
                let value = value(state);
                inner.hits.fetch_add(1, Ordering::Relaxed);
                let due = age >= ttl - options.window(ttl);
                if due && let Some(flight) = self.start_refresh(state, key, now) {
                    return Found::HitAndRefresh(value, flight);
                }
                return Found::Hit(value);
            }
            if !options.max_stale().is_zero() && age <= ttl + options.max_stale() {
                if state.away.is_some() {
                    let value = value(state);
                    let probe = self.start_refresh(state, key, now);
                    return Found::Stale { value, age, probe };
                }
                inner.misses.fetch_add(1, Ordering::Relaxed);
                let wait = options.refresh_wait();
                return match state.flights.get(key) {
                    Some(pending) => Found::WaitOrStale {
                        outcome: pending.outcome.clone(),
                        until: pending.started + wait,
                    },
                    None => Found::LeadOrStale(self.start_flight(state, key)),
                };
            }
        }
        // No value, or one past max staleness: a miss like any other.
        inner.misses.fetch_add(1, Ordering::Relaxed);
        match state.flights.get(key) {
            Some(pending) => Found::Wait(pending.outcome.clone()),
            None => Found::Lead(self.start_flight(state, key)),
        }
    }

    /// The background refresh of a value still served, when one may start:
    /// none under way for the key, and, while the server is away, the
    /// probe's turn (none probing, and its gap over).
    fn start_refresh(&self, state: &mut State, key: &CacheKey, now: Instant) -> Option<Flight> {
        if state.flights.contains_key(key) {
            return None;
        }
        if let Some(away) = &state.away
            && (away.probe.is_some() || now < away.next_probe)
        {
            return None;
        }
        self.inner.refreshes.fetch_add(1, Ordering::Relaxed);
        let flight = self.start_flight(state, key);
        if let Some(away) = &mut state.away {
            away.probe = Some(flight.seq);
        }
        Some(flight)
    }

    fn start_flight(&self, state: &mut State, key: &CacheKey) -> Flight {
        let (outcome, rx) = watch::channel(None);
        let seq = state.next_seq();
        let started = tokio::time::Instant::now();
        state.flights.insert(
            key.clone(),
            Pending {
                seq,
                started,
                outcome: rx,
            },
        );
        Flight {
            inner: self.inner.clone(),
            key: key.clone(),
            seq,
            started,
            outcome,
        }
    }

    /// Leads the refresh of a value past its TTL: its answer if it comes
    /// within the refresh wait; else the cached value, the refresh going on
    /// in the background.
    async fn lead_or_stale(&self, flight: Flight, mut load: Load) -> Result<Value, Error> {
        let until = flight.started + self.inner.options.refresh_wait();
        let key = flight.key.clone();
        // Outside a runtime nothing could finish the refresh: wait for it.
        let result = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => match tokio::time::timeout_at(until, &mut load).await {
                Ok(result) => result,
                Err(_elapsed) => match self.inner.servable(&key) {
                    Some((value, age)) => {
                        runtime.spawn(async move {
                            let result = load.await;
                            let key = flight.key.clone();
                            dispose(&key, flight.settle(result));
                        });
                        self.inner.count_stale(&key, age);
                        return Ok(value);
                    }
                    // Invalidated or evicted meanwhile: nothing to serve.
                    None => load.await,
                },
            },
            Err(_) => load.await,
        };
        let reply = flight.settle(result);
        self.inner.deliver(&key, reply)
    }

    /// Waits for the load under way for `key`: its value; the cached value
    /// once `until` passes (when one is still within max staleness); or,
    /// when it failed or was cancelled, a load of this read's own.
    async fn wait<F, Fut>(
        &self,
        key: CacheKey,
        mut outcome: watch::Receiver<Option<Shared>>,
        until: Option<tokio::time::Instant>,
        load: F,
    ) -> Result<Value, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Value, Error>>,
    {
        if let Some(until) = until {
            let ended = tokio::time::timeout_at(until, outcome.wait_for(Option::is_some)).await;
            if ended.is_err()
                && let Some((value, age)) = self.inner.servable(&key)
            {
                self.inner.count_stale(&key, age);
                return Ok(value);
            }
        }
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
                self.inner.count_stale(&key, age);
                Ok(value)
            }
            None => self.load_alone(key, load).await,
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
            let key = flight.key.clone();
            dispose(&key, flight.settle(result));
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

/// The reply of a refresh no read waits for: a value is wiped, a failure
/// logged (without a value: errors never hold one).
fn dispose(key: &CacheKey, reply: Reply) {
    match reply {
        Reply::Fresh(mut value) | Reply::Stale { mut value, .. } => {
            secret_core::zeroize_json(&mut value);
        }
        Reply::Failed(error) => tracing::debug!(
            path = %key.path,
            version = ?key.version,
            %error,
            "refreshing a cached secret in the background failed"
        ),
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements that cannot panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached value of `key` and its age, when it is within max
    /// staleness.
    fn servable(&self, key: &CacheKey) -> Option<(Value, Duration)> {
        let now = self.clock.now();
        let state = self.lock();
        let entry = state.store.peek(key)?;
        let age = entry.age(now);
        let limit = self.options.lifetime(key.version) + self.options.max_stale();
        (!self.options.max_stale().is_zero() && age <= limit).then(|| (entry.value.clone(), age))
    }

    /// Stores a load's answer, or judges its failure: a transient one serves
    /// the cached value when `stale_allowed` and it is within max staleness;
    /// any other drops the entry. Either way it tells whether the server is
    /// away: a transient failure says so (a failed probe puts the next one
    /// off), any answer says it is back.
    fn settle(
        &self,
        key: &CacheKey,
        seq: u64,
        result: Result<Value, Error>,
        stale_allowed: bool,
    ) -> Reply {
        let now = self.clock.now();
        let mut guard = self.lock();
        let state = &mut *guard;
        let transient = result.as_ref().err().is_some_and(is_transient);
        self.track_away(state, seq, transient, now, &result);
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
                if !transient {
                    state.store.remove(key);
                    return Reply::Failed(error);
                }
                let limit = self.options.lifetime(key.version) + self.options.max_stale();
                let max_stale = self.options.max_stale();
                match state.store.peek(key) {
                    Some(entry)
                        if stale_allowed && !max_stale.is_zero() && entry.age(now) <= limit =>
                    {
                        Reply::Stale {
                            value: entry.value.clone(),
                            age: entry.age(now),
                        }
                    }
                    _ => Reply::Failed(error),
                }
            }
        }
    }

    /// Enters, extends or ends the server's absence after load `seq`.
    fn track_away(
        &self,
        state: &mut State,
        seq: u64,
        transient: bool,
        now: Instant,
        result: &Result<Value, Error>,
    ) {
        let ttl = self.options.ttl();
        match (&mut state.away, transient) {
            (None, true) => {
                if let Err(error) = result {
                    tracing::debug!(%error, "a load failed with a transient error: serving \
                        cached values at once while the server is away");
                }
                state.away = Some(Away {
                    failures: 1,
                    next_probe: now + probe_gap(1, ttl),
                    probe: None,
                });
            }
            (Some(away), true) if away.probe == Some(seq) => {
                away.failures += 1;
                away.next_probe = now + probe_gap(away.failures, ttl);
                away.probe = None;
            }
            // Another load that failed while away: the probe decides.
            (Some(_), true) | (None, false) => {}
            (Some(_), false) => {
                tracing::debug!("the server answered again: fresh reads resume");
                state.away = None;
            }
        }
    }

    fn deliver(&self, key: &CacheKey, reply: Reply) -> Result<Value, Error> {
        match reply {
            Reply::Fresh(value) => Ok(value),
            Reply::Stale { value, age } => {
                self.count_stale(key, age);
                Ok(value)
            }
            Reply::Failed(error) => Err(error),
        }
    }

    /// Counts a stale value served and says so at DEBUG: its path and age,
    /// nothing else.
    fn count_stale(&self, key: &CacheKey, age: Duration) {
        self.stale_served.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            path = %key.path,
            version = ?key.version,
            age_ms = age.as_millis() as u64,
            "serving a stale cached secret"
        );
    }
}

/// The gap before probe `failures + 1` of a server that is away: 250 ms
/// doubling up to 5 s, and at most half the TTL, so a value changed while
/// the server was away is read within about one TTL of its return.
fn probe_gap(failures: u32, ttl: Duration) -> Duration {
    FIRST_PROBE_GAP
        .saturating_mul(1 << failures.saturating_sub(1).min(8))
        .min(MAX_PROBE_GAP)
        .min(ttl / 2)
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
