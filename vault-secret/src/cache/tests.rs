//! The cache's rules, each on a clock moved by hand: no test sleeps or
//! depends on how fast it runs.

use super::*;
use futures_util::FutureExt;
use serde_json::json;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use tokio::sync::Semaphore;

/// A clock that moves only when told.
#[derive(Debug)]
struct ManualClock(Mutex<Instant>);

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(ManualClock(Mutex::new(Instant::now())))
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

const TTL: Duration = Duration::from_secs(60);

fn options() -> CacheOptions {
    CacheOptions::new()
        .with_ttl(TTL)
        .with_max_stale(Duration::from_secs(30))
        .with_refresh_ahead(Duration::from_secs(10))
        .with_version_ttl(Duration::from_secs(600))
}

fn cache(options: CacheOptions) -> (Cache, Arc<ManualClock>) {
    let clock = ManualClock::new();
    (Cache::with_clock(options, clock.clone()), clock)
}

fn key(path: &str) -> CacheKey {
    CacheKey::new(path, None)
}

/// Counts the loads made through it, each answering what it is given.
#[derive(Clone, Default)]
struct Loads(Arc<AtomicUsize>);

impl Loads {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn answer(
        &self,
        result: Result<Value, Error>,
    ) -> impl FnOnce() -> futures_util::future::Ready<Result<Value, Error>> + Send + 'static {
        let count = self.0.clone();
        move || {
            count.fetch_add(1, Ordering::SeqCst);
            futures_util::future::ready(result)
        }
    }

    fn value(
        &self,
        value: Value,
    ) -> impl FnOnce() -> futures_util::future::Ready<Result<Value, Error>> + Send + 'static {
        self.answer(Ok(value))
    }
}

/// The store's wiped values, as tests see them.
fn wiped(cache: &Cache) -> Vec<Value> {
    cache.inner.lock().store.wiped.clone()
}

// The errors of each kind. (Built in one place: fields added to the
// variants are added here only.)
fn transport() -> Error {
    Error::Transport {
        address: "http://127.0.0.1:8200".into(),
        kind: crate::error::TransportKind::Connect,
        reason: "connection refused".into(),
        source: None,
    }
}

fn sealed() -> Error {
    Error::Sealed {
        address: "http://127.0.0.1:8200".into(),
    }
}

fn server(status: u16, message: &str) -> Error {
    Error::Server {
        status,
        path: "secret/data/app".into(),
        errors: vec![message.into()],
        attempts: 3,
    }
}

fn permission_denied() -> Error {
    Error::PermissionDenied {
        path: "secret/app".into(),
        policy_paths: vec!["secret/data/app".into()],
        namespace: None,
        mount_guessed: false,
    }
}

fn not_found() -> Error {
    Error::NotFound {
        path: "secret/app".into(),
        detail: None,
        namespace: None,
    }
}

fn transient_errors() -> Vec<(&'static str, Error)> {
    vec![
        ("connection refused", transport()),
        (
            "timeout",
            Error::Transport {
                address: "http://127.0.0.1:8200".into(),
                kind: crate::error::TransportKind::Timeout,
                reason: "operation timed out".into(),
                source: None,
            },
        ),
        ("sealed", sealed()),
        ("500", server(500, "internal error")),
        ("502", server(502, "bad gateway")),
        (
            "503 election",
            server(503, "no active Vault instance found"),
        ),
        ("504", server(504, "gateway timeout")),
        ("307 standby", server(307, "redirect")),
    ]
}

fn permanent_errors() -> Vec<(&'static str, Error)> {
    vec![
        ("403", permission_denied()),
        ("404", not_found()),
        (
            "version deleted",
            Error::VersionDeleted {
                path: "secret/app".into(),
                version: 2,
                deleted_at: "2024-01-01T00:00:00Z".into(),
            },
        ),
        (
            "version destroyed",
            Error::VersionDestroyed {
                path: "secret/app".into(),
                version: 2,
            },
        ),
        (
            "login refused",
            Error::AuthFailed {
                attempts: vec![crate::error::AuthAttempt {
                    method: "approle",
                    reason: "invalid role or secret ID (HTTP 400)".into(),
                }],
            },
        ),
        ("400", server(400, "bad request")),
        ("429", server(429, "rate limited")),
    ]
}

#[tokio::test]
async fn within_the_ttl_a_read_makes_no_request_and_after_it_one() {
    let (cache, clock) = cache(options());
    let loads = Loads::default();
    let a = key("secret/app");
    let v = cache.get(a.clone(), loads.value(json!({"p": "one"}))).await;
    assert_eq!(v.ok(), Some(json!({"p": "one"})));
    clock.advance(TTL - Duration::from_secs(11));
    let v = cache.get(a.clone(), loads.value(json!({"p": "two"}))).await;
    assert_eq!(v.ok(), Some(json!({"p": "one"})));
    assert_eq!(loads.count(), 1);
    clock.advance(Duration::from_secs(11));
    let v = cache.get(a, loads.value(json!({"p": "two"}))).await;
    assert_eq!(v.ok(), Some(json!({"p": "two"})), "expired at the TTL");
    assert_eq!(loads.count(), 2);
    assert_eq!(wiped(&cache), vec![json!({"p": ""})], "the expired value");
}

#[tokio::test]
async fn thirty_two_concurrent_misses_make_one_load() {
    let (cache, _clock) = cache(options());
    let loads = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let mut readers = Vec::new();
    for _ in 0..32 {
        let (cache, loads, gate) = (cache.clone(), loads.clone(), gate.clone());
        readers.push(tokio::spawn(async move {
            let load = move || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                // Held open until every reader has arrived.
                let _permit = gate.acquire().await;
                Ok(json!({"p": "shared"}))
            };
            cache.get(key("secret/hot"), load).await
        }));
    }
    while cache.stats().misses < 32 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(1);
    for reader in readers {
        let v = reader.await.expect("the reader task ends");
        assert_eq!(v.ok(), Some(json!({"p": "shared"})));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().misses, 32);
    assert_eq!(cache.stats().hits, 0);
}

#[tokio::test]
async fn refresh_ahead_makes_one_background_load_and_no_reader_waits() {
    let (cache, clock) = cache(options());
    let a = key("secret/hot");
    let first = Loads::default();
    cache
        .get(a.clone(), first.value(json!({"p": "old"})))
        .await
        .expect("first read");
    // Into the last 10 s of the TTL.
    clock.advance(TTL - Duration::from_secs(5));

    let loads = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    for _ in 0..20 {
        let (loads, gate) = (loads.clone(), gate.clone());
        let load = move || async move {
            loads.fetch_add(1, Ordering::SeqCst);
            let _permit = gate.acquire().await;
            Ok(json!({"p": "new"}))
        };
        // Ready at its first poll: the read never waits for the refresh.
        let v = cache
            .get(a.clone(), load)
            .now_or_never()
            .expect("a hit does not wait");
        assert_eq!(v.ok(), Some(json!({"p": "old"})));
        tokio::task::yield_now().await;
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "one background load");
    gate.add_permits(1);
    while cache.inner.lock().flights.contains_key(&a) {
        tokio::task::yield_now().await;
    }
    let again = Loads::default();
    let v = cache.get(a, again.value(json!({"p": "other"}))).await;
    assert_eq!(v.ok(), Some(json!({"p": "new"})), "the refreshed value");
    assert_eq!(again.count(), 0);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.refreshes), (21, 1, 1));
}

#[tokio::test]
async fn a_stale_value_is_served_on_each_transient_error() {
    for (kind, error) in transient_errors() {
        let (cache, clock) = cache(options());
        let loads = Loads::default();
        let a = key("secret/app");
        cache
            .get(a.clone(), loads.value(json!({"p": "kept"})))
            .await
            .expect("first read");
        clock.advance(TTL + Duration::from_secs(30));
        let v = cache.get(a.clone(), loads.answer(Err(error))).await;
        assert_eq!(v.ok(), Some(json!({"p": "kept"})), "{kind}");
        let stats = cache.stats();
        assert_eq!((stats.stale_served, stats.errors), (1, 1), "{kind}");
        assert_eq!(cache.len(), 1, "{kind}: the entry stays");
    }
}

#[tokio::test]
async fn past_max_staleness_the_transient_error_is_returned() {
    let (cache, clock) = cache(options());
    let loads = Loads::default();
    let a = key("secret/app");
    cache
        .get(a.clone(), loads.value(json!({"p": "old"})))
        .await
        .expect("first read");
    clock.advance(TTL + Duration::from_secs(31));
    let v = cache.get(a, loads.answer(Err(transport()))).await;
    assert!(matches!(v, Err(Error::Transport { .. })), "{v:?}");
    assert_eq!(cache.stats().stale_served, 0);
}

#[tokio::test]
async fn a_403_or_404_is_returned_and_drops_the_entry() {
    for (kind, error) in permanent_errors() {
        let (cache, clock) = cache(options());
        let loads = Loads::default();
        let a = key("secret/app");
        cache
            .get(a.clone(), loads.value(json!({"p": "gone"})))
            .await
            .expect("first read");
        clock.advance(TTL);
        let expected = std::mem::discriminant(&error);
        let v = cache.get(a.clone(), loads.answer(Err(error))).await;
        let e = v.expect_err(kind);
        assert_eq!(std::mem::discriminant(&e), expected, "{kind}");
        assert_eq!(cache.len(), 0, "{kind}: dropped");
        assert_eq!(wiped(&cache), vec![json!({"p": ""})], "{kind}");
        assert_eq!(cache.stats().stale_served, 0, "{kind}");
    }
}

#[tokio::test]
async fn a_refresh_ahead_answered_403_drops_the_entry() {
    let (cache, clock) = cache(options());
    let loads = Loads::default();
    let a = key("secret/app");
    cache
        .get(a.clone(), loads.value(json!({"p": "revoked"})))
        .await
        .expect("first read");
    clock.advance(TTL - Duration::from_secs(1));
    let v = cache
        .get(a.clone(), loads.answer(Err(permission_denied())))
        .await;
    assert!(v.is_ok(), "still within its TTL");
    while cache.inner.lock().flights.contains_key(&a) {
        tokio::task::yield_now().await;
    }
    assert_eq!(cache.len(), 0, "the background 403 dropped it");
    let v = cache.get(a, loads.answer(Err(permission_denied()))).await;
    assert!(matches!(v, Err(Error::PermissionDenied { .. })), "{v:?}");
}

#[tokio::test]
async fn an_explicit_version_lives_longer_and_a_deletion_drops_it() {
    let (cache, clock) = cache(options());
    let loads = Loads::default();
    let pinned = CacheKey::new("secret/app", Some(3));
    let latest = key("secret/app");
    cache
        .get(pinned.clone(), loads.value(json!({"p": "v3"})))
        .await
        .expect("pinned");
    cache
        .get(latest.clone(), loads.value(json!({"p": "v4"})))
        .await
        .expect("latest");
    clock.advance(TTL * 2);
    let v = cache
        .get(pinned.clone(), loads.value(json!({"p": "x"})))
        .await;
    assert_eq!(
        v.ok(),
        Some(json!({"p": "v3"})),
        "the version is still cached"
    );
    let v = cache.get(latest, loads.value(json!({"p": "v5"}))).await;
    assert_eq!(v.ok(), Some(json!({"p": "v5"})), "the latest expired");
    assert_eq!(loads.count(), 3);

    clock.advance(Duration::from_secs(600));
    let destroyed = Error::VersionDestroyed {
        path: "secret/app".into(),
        version: 3,
    };
    let v = cache
        .get(pinned.clone(), loads.answer(Err(destroyed)))
        .await;
    assert!(matches!(v, Err(Error::VersionDestroyed { .. })), "{v:?}");
    assert!(cache.inner.lock().store.peek(&pinned).is_none());
}

#[tokio::test]
async fn the_least_recently_used_is_evicted_and_wiped() {
    let (cache, _clock) = cache(options().with_max_entries(2));
    let loads = Loads::default();
    for (path, p) in [("s/a", "a"), ("s/b", "b")] {
        cache
            .get(key(path), loads.value(json!({ "p": p })))
            .await
            .expect("read");
    }
    cache
        .get(key("s/a"), loads.value(json!({"p": "a2"})))
        .await
        .expect("hit");
    cache
        .get(key("s/c"), loads.value(json!({"p": "c"})))
        .await
        .expect("read");
    assert_eq!(cache.len(), 2);
    assert_eq!(wiped(&cache), vec![json!({"p": ""})], "b went, wiped");
    let v = cache.get(key("s/a"), loads.value(json!({"p": "a3"}))).await;
    assert_eq!(v.ok(), Some(json!({"p": "a"})), "a stayed");
    assert_eq!(loads.count(), 3);
}

#[tokio::test]
async fn invalidate_drops_every_version_of_a_path() {
    let (cache, _clock) = cache(options());
    let loads = Loads::default();
    for k in [
        key("secret/app"),
        CacheKey::new("secret/app", Some(1)),
        key("secret/other"),
    ] {
        cache
            .get(k, loads.value(json!({"p": "s"})))
            .await
            .expect("read");
    }
    cache.invalidate("secret/app");
    assert_eq!(cache.len(), 1);
    assert_eq!(wiped(&cache).len(), 2);
    let v = cache
        .get(key("secret/app"), loads.value(json!({"p": "t"})))
        .await;
    assert_eq!(v.ok(), Some(json!({"p": "t"})), "read again");
    cache.invalidate_all();
    assert_eq!(cache.len(), 0);
    assert!(wiped(&cache).iter().all(|v| v == &json!({"p": ""})));
}

#[tokio::test]
async fn a_load_started_before_an_invalidation_is_not_stored() {
    let (cache, _clock) = cache(options());
    let gate = Arc::new(Semaphore::new(0));
    let g = gate.clone();
    let slow = tokio::spawn({
        let cache = cache.clone();
        async move {
            let load = move || async move {
                let _permit = g.acquire().await;
                Ok(json!({"p": "before rotation"}))
            };
            cache.get(key("secret/app"), load).await
        }
    });
    while cache.stats().misses < 1 {
        tokio::task::yield_now().await;
    }
    cache.invalidate("secret/app");
    gate.add_permits(1);
    let v = slow.await.expect("the reader ends");
    assert_eq!(v.ok(), Some(json!({"p": "before rotation"})), "returned");
    assert_eq!(cache.len(), 0, "but not stored");
}

#[tokio::test]
async fn a_bypassing_read_replaces_the_entry_and_never_serves_stale() {
    let (cache, _clock) = cache(options());
    let loads = Loads::default();
    let a = key("secret/app");
    cache
        .get(a.clone(), loads.value(json!({"p": "old"})))
        .await
        .expect("read");
    let v = cache
        .reload(a.clone(), loads.value(json!({"p": "new"})))
        .await;
    assert_eq!(v.ok(), Some(json!({"p": "new"})));
    assert_eq!(wiped(&cache), vec![json!({"p": ""})], "the replaced value");
    let v = cache
        .reload(a.clone(), loads.answer(Err(transport())))
        .await;
    assert!(matches!(v, Err(Error::Transport { .. })), "{v:?}");
    let v = cache.get(a, loads.value(json!({"p": "x"}))).await;
    assert_eq!(v.ok(), Some(json!({"p": "new"})), "kept for plain reads");
    let stats = cache.stats();
    assert_eq!((stats.refreshes, stats.stale_served), (2, 0));
}

#[tokio::test]
async fn when_the_shared_load_fails_each_waiter_gets_its_own_error() {
    let (cache, _clock) = cache(options());
    let loads = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (cache, loads, gate) = (cache.clone(), loads.clone(), gate.clone());
        readers.push(tokio::spawn(async move {
            let load = move || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                let _permit = gate.acquire().await;
                Err(not_found())
            };
            cache.get(key("secret/missing"), load).await
        }));
    }
    while cache.stats().misses < 4 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(4);
    for reader in readers {
        let v = reader.await.expect("the reader ends");
        assert!(matches!(v, Err(Error::NotFound { .. })), "{v:?}");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 4);
    assert_eq!(cache.len(), 0, "errors are not cached");
}

#[tokio::test]
async fn waiters_of_a_cancelled_read_load_themselves() {
    let (cache, _clock) = cache(options());
    let never = Arc::new(Semaphore::new(0));
    let n = never.clone();
    let leader = tokio::spawn({
        let cache = cache.clone();
        async move {
            let load = move || async move {
                let _permit = n.acquire().await;
                Ok(json!({"p": "never"}))
            };
            cache.get(key("secret/app"), load).await
        }
    });
    while cache.stats().misses < 1 {
        tokio::task::yield_now().await;
    }
    let loads = Loads::default();
    let waiter = tokio::spawn({
        let (cache, load) = (cache.clone(), loads.value(json!({"p": "own"})));
        async move { cache.get(key("secret/app"), load).await }
    });
    while cache.stats().misses < 2 {
        tokio::task::yield_now().await;
    }
    leader.abort();
    let v = waiter.await.expect("the waiter ends");
    assert_eq!(v.ok(), Some(json!({"p": "own"})));
    assert_eq!(loads.count(), 1);
}

#[tokio::test]
async fn a_concurrent_stale_answer_is_shared_and_counted_per_reader() {
    let (cache, clock) = cache(options());
    let loads = Loads::default();
    let a = key("secret/app");
    cache
        .get(a.clone(), loads.value(json!({"p": "kept"})))
        .await
        .expect("read");
    clock.advance(TTL + Duration::from_secs(1));
    let gate = Arc::new(Semaphore::new(0));
    let failing = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..8 {
        let (cache, gate, failing, a) = (cache.clone(), gate.clone(), failing.clone(), a.clone());
        readers.push(tokio::spawn(async move {
            let load = move || async move {
                failing.fetch_add(1, Ordering::SeqCst);
                let _permit = gate.acquire().await;
                Err(sealed())
            };
            cache.get(a, load).await
        }));
    }
    while cache.stats().misses < 9 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(1);
    for reader in readers {
        let v = reader.await.expect("the reader ends");
        assert_eq!(v.ok(), Some(json!({"p": "kept"})));
    }
    assert_eq!(failing.load(Ordering::SeqCst), 1, "one request");
    let stats = cache.stats();
    assert_eq!((stats.stale_served, stats.errors), (8, 1));
}

#[tokio::test]
async fn dead_entries_are_swept_and_wiped() {
    let (cache, clock) = cache(options());
    let loads = Loads::default();
    cache
        .get(key("s/old"), loads.value(json!({"p": "old"})))
        .await
        .expect("read");
    clock.advance(TTL + Duration::from_secs(31));
    cache
        .get(key("s/new"), loads.value(json!({"p": "new"})))
        .await
        .expect("read");
    assert_eq!(cache.len(), 1, "the old one is past TTL and max staleness");
    assert_eq!(wiped(&cache), vec![json!({"p": ""})]);
}

#[tokio::test]
async fn counters_add_up() {
    let (cache, clock) = cache(options());
    let loads = Loads::default();
    let a = key("secret/app");
    let _ = cache.get(a.clone(), loads.value(json!({"p": "1"}))).await; // miss
    let _ = cache.get(a.clone(), loads.value(json!({"p": "2"}))).await; // hit
    clock.advance(TTL);
    let _ = cache.get(a.clone(), loads.answer(Err(transport()))).await; // miss, error, stale
    let _ = cache.get(key("s/b"), loads.answer(Err(transport()))).await; // miss, error
    let _ = cache.reload(a, loads.value(json!({"p": "3"}))).await; // refresh
    assert_eq!(
        cache.stats(),
        CacheStats {
            hits: 1,
            misses: 3,
            refreshes: 1,
            stale_served: 1,
            errors: 2,
        }
    );
}

#[tokio::test]
async fn debug_shows_no_value() {
    let (cache, _clock) = cache(options());
    let loads = Loads::default();
    cache
        .get(
            key("secret/app"),
            loads.value(json!({"password": "hunter2-canary"})),
        )
        .await
        .expect("read");
    let shown = format!("{cache:?}");
    assert!(!shown.contains("hunter2-canary"), "{shown}");
    assert!(shown.contains("entries: 1"), "{shown}");
}

#[test]
fn only_transient_errors_are_transient() {
    for (kind, error) in transient_errors() {
        assert!(is_transient(&error), "{kind}");
    }
    for (kind, error) in permanent_errors() {
        assert!(!is_transient(&error), "{kind}");
    }
}

/// Keeps each event's fields as `name=value` text.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for Events {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                self.0 += &format!("{}={value:?} ", field.name());
            }
        }
        let mut fields = Fields(format!("{} ", event.metadata().level()));
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(fields.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn serving_stale_logs_the_path_and_age_at_debug_never_the_value() {
    let events = Events::default();
    let _default = tracing::subscriber::set_default(events.clone());
    let (cache, clock) = cache(options());
    let loads = Loads::default();
    let a = key("secret/app");
    cache
        .get(
            a.clone(),
            loads.value(json!({"password": "hunter2-canary"})),
        )
        .await
        .expect("read");
    clock.advance(TTL + Duration::from_secs(2));
    let v = cache.get(a, loads.answer(Err(transport()))).await;
    assert!(v.is_ok());
    let logged = events
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let stale: Vec<&String> = logged
        .iter()
        .filter(|l| l.contains("serving a stale cached secret"))
        .collect();
    assert_eq!(stale.len(), 1, "{logged:?}");
    let line = stale[0];
    assert!(line.starts_with("DEBUG "), "{line}");
    assert!(line.contains("path=secret/app"), "{line}");
    assert!(line.contains("age_ms=62000"), "{line}");
    // The path and age only: the reason is logged once, when the server
    // goes away.
    assert!(!line.contains("connection refused"), "{line}");
    for line in &logged {
        assert!(line.starts_with("DEBUG "), "{line}");
        assert!(!line.contains("hunter2"), "{line}");
    }
}

/// A load that waits for a permit of `gate`, then answers `result`.
fn gated(
    gate: &Arc<Semaphore>,
    loads: &Loads,
    result: Result<Value, Error>,
) -> impl FnOnce() -> Pin<Box<dyn Future<Output = Result<Value, Error>> + Send>> + Send + 'static {
    let (gate, count) = (gate.clone(), loads.0.clone());
    move || {
        count.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let _permit = gate.acquire().await;
            result
        })
    }
}

#[tokio::test]
async fn once_a_refresh_failed_every_entry_is_served_stale_at_once_and_one_probe_runs() {
    let (cache, clock) = cache(options());
    let loads = Loads::default();
    let (a, b) = (key("secret/a"), key("secret/b"));
    for k in [&a, &b] {
        cache
            .get(k.clone(), loads.value(json!({"p": k.path.clone()})))
            .await
            .expect("first read");
    }
    clock.advance(TTL + Duration::from_secs(1));
    // The refresh of `a` fails: stale, and the server is away.
    let v = cache.get(a.clone(), loads.answer(Err(transport()))).await;
    assert_eq!(v.ok(), Some(json!({"p": "secret/a"})));
    assert!(cache.is_away());
    assert_eq!(loads.count(), 3);
    // `b` is served at once, without a request: the probe's gap is not over.
    let gate = Arc::new(Semaphore::new(0));
    let v = cache
        .get(b.clone(), gated(&gate, &loads, Ok(json!({"p": "x"}))))
        .await;
    assert_eq!(v.ok(), Some(json!({"p": "secret/b"})));
    assert_eq!(
        loads.count(),
        3,
        "no request before the probe's gap is over"
    );
    // After it, one read starts the probe and every read is served at once.
    clock.advance(FIRST_PROBE_GAP);
    for k in [&b, &a, &b] {
        let v = cache
            .get(k.clone(), gated(&gate, &loads, Err(transport())))
            .await;
        assert_eq!(v.ok(), Some(json!({"p": k.path.clone()})));
        tokio::task::yield_now().await;
    }
    assert_eq!(loads.count(), 4, "one probe at a time");
    // The probe fails: the next waits twice as long.
    gate.add_permits(1);
    while cache
        .inner
        .lock()
        .away
        .as_ref()
        .is_some_and(|a| a.probe.is_some())
    {
        tokio::task::yield_now().await;
    }
    clock.advance(FIRST_PROBE_GAP);
    let v = cache
        .get(a.clone(), loads.value(json!({"p": "new-a"})))
        .await;
    assert_eq!(v.ok(), Some(json!({"p": "secret/a"})));
    assert_eq!(loads.count(), 4, "the second gap is twice the first");
    clock.advance(FIRST_PROBE_GAP);
    // The probe succeeds: fresh reads resume.
    let v = cache
        .get(a.clone(), loads.value(json!({"p": "new-a"})))
        .await;
    assert_eq!(v.ok(), Some(json!({"p": "secret/a"})));
    while cache.is_away() {
        tokio::task::yield_now().await;
    }
    assert_eq!(loads.count(), 5);
    let v = cache
        .get(a.clone(), loads.value(json!({"p": "newer"})))
        .await;
    assert_eq!(v.ok(), Some(json!({"p": "new-a"})), "fresh from the probe");
    let v = cache
        .get(b.clone(), loads.value(json!({"p": "new-b"})))
        .await;
    assert_eq!(v.ok(), Some(json!({"p": "new-b"})), "b refreshed at once");
    let stats = cache.stats();
    assert_eq!(stats.stale_served, 7, "{stats:?}");
    assert_eq!(stats.errors, 2, "{stats:?}");
}

#[tokio::test]
async fn a_read_past_its_ttl_waits_at_most_the_refresh_wait() {
    let wait = Duration::from_millis(50);
    let (cache, clock) = cache(options().with_refresh_wait(wait));
    let loads = Loads::default();
    let a = key("secret/a");
    cache
        .get(a.clone(), loads.value(json!({"p": "old"})))
        .await
        .expect("first read");
    clock.advance(TTL);
    let gate = Arc::new(Semaphore::new(0));
    let started = std::time::Instant::now();
    let v = cache
        .get(a.clone(), gated(&gate, &loads, Ok(json!({"p": "new"}))))
        .await;
    let waited = started.elapsed();
    assert_eq!(v.ok(), Some(json!({"p": "old"})));
    assert!(waited >= wait && waited < wait * 10, "{waited:?}");
    // Past the refresh's wait, a read is served at once.
    let started = std::time::Instant::now();
    let v = cache.get(a.clone(), loads.value(json!({"p": "own"}))).await;
    assert_eq!(v.ok(), Some(json!({"p": "old"})));
    assert!(started.elapsed() < wait, "{:?}", started.elapsed());
    assert!(!cache.is_away(), "slow is not away");
    // The refresh went on in the background; its answer is the next read's.
    gate.add_permits(1);
    while cache.inner.lock().flights.contains_key(&a) {
        tokio::task::yield_now().await;
    }
    let v = cache.get(a.clone(), loads.value(json!({"p": "own"}))).await;
    assert_eq!(v.ok(), Some(json!({"p": "new"})));
    assert_eq!(loads.count(), 2);
    assert_eq!(cache.stats().stale_served, 2);
}

#[tokio::test]
async fn a_refresh_answered_in_time_is_the_reads_answer() {
    let (cache, clock) = cache(options());
    let loads = Loads::default();
    let a = key("secret/a");
    cache
        .get(a.clone(), loads.value(json!({"p": "old"})))
        .await
        .expect("first read");
    clock.advance(TTL);
    let v = cache.get(a.clone(), loads.value(json!({"p": "new"}))).await;
    assert_eq!(v.ok(), Some(json!({"p": "new"})));
    let v = cache.get(a, loads.answer(Err(not_found()))).await;
    assert_eq!(v.ok(), Some(json!({"p": "new"})), "within the TTL again");
    assert_eq!(cache.stats().stale_served, 0);
}

#[tokio::test]
async fn a_403_from_the_probe_ends_stale_serving_for_its_path() {
    let (cache, clock) = cache(options());
    let loads = Loads::default();
    let (a, b) = (key("secret/a"), key("secret/b"));
    for k in [&a, &b] {
        cache
            .get(k.clone(), loads.value(json!({"p": "kept"})))
            .await
            .expect("first read");
    }
    clock.advance(TTL + Duration::from_secs(1));
    let v = cache.get(a.clone(), loads.answer(Err(sealed()))).await;
    assert_eq!(v.ok(), Some(json!({"p": "kept"})));
    assert!(cache.is_away());
    // The server is back, and the policy no longer grants `a`: the probe's
    // 403 drops it, and says the server answers.
    clock.advance(FIRST_PROBE_GAP);
    let v = cache
        .get(a.clone(), loads.answer(Err(permission_denied())))
        .await;
    assert_eq!(v.ok(), Some(json!({"p": "kept"})), "the probe runs behind");
    while cache.is_away() {
        tokio::task::yield_now().await;
    }
    let v = cache
        .get(a.clone(), loads.answer(Err(permission_denied())))
        .await;
    assert!(matches!(v, Err(Error::PermissionDenied { .. })), "{v:?}");
    let v = cache.get(b, loads.value(json!({"p": "fresh"}))).await;
    assert_eq!(v.ok(), Some(json!({"p": "fresh"})));
}

#[test]
fn probes_back_off_to_five_seconds_and_half_the_ttl() {
    let ttl = Duration::from_secs(300);
    let gaps: Vec<u128> = (1..=7).map(|n| probe_gap(n, ttl).as_millis()).collect();
    assert_eq!(gaps, [250, 500, 1000, 2000, 4000, 5000, 5000]);
    assert_eq!(probe_gap(u32::MAX, ttl), MAX_PROBE_GAP);
    assert_eq!(
        probe_gap(3, Duration::from_secs(1)),
        Duration::from_millis(500)
    );
}
