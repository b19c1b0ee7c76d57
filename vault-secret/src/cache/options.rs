//! The cache's settings and its counters.

use std::time::Duration;

/// The settings of a client's read cache, builder-style
/// (`CacheOptions::new().with_ttl(..)`); see the [module docs](crate::cache)
/// for what each one means.
///
/// The defaults take AWS's Secrets Manager caching clients as anchors
/// (1,024 entries; a 1 h TTL) and depart from them where Vault differs:
///
/// | Option | Default | Why |
/// |---|---|---|
/// | [`ttl`](Self::ttl) | 5 min | a rotated value, a revoked policy or a deleted secret is seen at the next refresh; a Vault read is a cheap request, not a billed call as in AWS (1 h) |
/// | [`max_entries`](Self::max_entries) | 1,024 | as AWS's Java, Python and Go clients |
/// | [`max_stale`](Self::max_stale) | 5 min | bridges a restart, an unseal or a leader election; stale values are served only while the server is away or slow, never over a 403 or 404 |
/// | [`refresh_ahead`](Self::refresh_ahead) | a twentieth of the TTL | about one request per TTL for a hot secret (a refresh every 0.95 TTL), none of its readers waiting |
/// | [`version_ttl`](Self::version_ttl) | 1 h | an explicit KV v2 version never changes; its refresh only finds out whether it was deleted |
/// | [`refresh_wait`](Self::refresh_wait) | 100 ms | a few round trips to a healthy server, far below a connect timeout; past it a read is served the cached value while the refresh goes on |
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheOptions {
    ttl: Duration,
    max_entries: usize,
    max_stale: Duration,
    refresh_ahead: Option<Duration>,
    version_ttl: Duration,
    refresh_wait: Duration,
}

impl CacheOptions {
    /// The default [`ttl`](Self::ttl): 5 minutes.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
    /// The default [`max_entries`](Self::max_entries): 1,024.
    pub const DEFAULT_MAX_ENTRIES: usize = 1024;
    /// The default [`max_stale`](Self::max_stale): 5 minutes.
    pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(5 * 60);
    /// The default [`version_ttl`](Self::version_ttl): 1 hour.
    pub const DEFAULT_VERSION_TTL: Duration = Duration::from_secs(60 * 60);
    /// The default [`refresh_wait`](Self::refresh_wait): 100 milliseconds.
    pub const DEFAULT_REFRESH_WAIT: Duration = Duration::from_millis(100);

    /// The defaults (see the table above).
    pub fn new() -> Self {
        CacheOptions {
            ttl: Self::DEFAULT_TTL,
            max_entries: Self::DEFAULT_MAX_ENTRIES,
            max_stale: Self::DEFAULT_MAX_STALE,
            refresh_ahead: None,
            version_ttl: Self::DEFAULT_VERSION_TTL,
            refresh_wait: Self::DEFAULT_REFRESH_WAIT,
        }
    }

    /// How long a value read without an explicit version is served without
    /// asking the server again. Zero caches nothing for longer than a read,
    /// yet concurrent reads still share one request and stale values are
    /// still served on outages.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The TTL of a value read without an explicit version.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How many values are kept; past it the least recently used is
    /// dropped (and zeroized). Zero keeps none.
    pub fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// How many values are kept.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// How long past its TTL a value may still be served when refreshing it
    /// fails with a transient error (the server unreachable, timing out,
    /// answering 5xx, sealed, or electing a leader), while the server is
    /// away after such a failure, or while a refresh takes longer than
    /// [`refresh_wait`](Self::refresh_wait). Zero turns stale values off
    /// (and with them the refresh wait: a read waits for its refresh).
    pub fn with_max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// How long past its TTL a value may be served on a transient failure.
    pub fn max_stale(&self) -> Duration {
        self.max_stale
    }

    /// The last part of the TTL in which a read starts one background
    /// refresh while every reader keeps getting the cached value. Capped at
    /// half the TTL, so a hot secret costs at most about two requests per
    /// TTL; zero turns refresh-ahead off.
    pub fn with_refresh_ahead(mut self, refresh_ahead: Duration) -> Self {
        self.refresh_ahead = Some(refresh_ahead);
        self
    }

    /// The refresh-ahead window of a value read without an explicit
    /// version: the one set (at most half the [`ttl`](Self::ttl)), by
    /// default a twentieth of the TTL.
    pub fn refresh_ahead(&self) -> Duration {
        self.window(self.ttl)
    }

    /// How long a value read at an explicit KV v2 version (`?version=N`) is
    /// served without asking the server again. The value cannot change; the
    /// refresh finds out whether the version was deleted or destroyed (which
    /// drops it), so this can be much longer than [`ttl`](Self::ttl).
    pub fn with_version_ttl(mut self, version_ttl: Duration) -> Self {
        self.version_ttl = version_ttl;
        self
    }

    /// The TTL of a value read at an explicit version.
    pub fn version_ttl(&self) -> Duration {
        self.version_ttl
    }

    /// How long a read of a value past its TTL waits for the refresh of that
    /// value before it is served the cached value (when that is at most
    /// [`max_stale`](Self::max_stale) past its TTL) while the refresh goes
    /// on in the background. Keep it below the connect timeout: it is what
    /// a read may lose to a server that stopped answering, before the
    /// refresh has failed. Zero serves the cached value at once whenever a
    /// refresh is needed.
    pub fn with_refresh_wait(mut self, refresh_wait: Duration) -> Self {
        self.refresh_wait = refresh_wait;
        self
    }

    /// How long a read past its TTL waits for the refresh before it is
    /// served the cached value.
    pub fn refresh_wait(&self) -> Duration {
        self.refresh_wait
    }

    /// The TTL of a key: [`version_ttl`](Self::version_ttl) when it names a
    /// version.
    pub(super) fn lifetime(&self, version: Option<u64>) -> Duration {
        match version {
            Some(_) => self.version_ttl,
            None => self.ttl,
        }
    }

    /// The refresh-ahead window for a TTL (a key's [`lifetime`](Self::lifetime)).
    pub(super) fn window(&self, ttl: Duration) -> Duration {
        // A twentieth: a hot secret is refreshed every 0.95 TTL (a tenth
        // allows up to 12 requests in 10 s at a 1 s TTL, the most issue 16
        // allows, with no margin), and the window still dwarfs a round trip
        // (50 ms at 1 s, 15 s at the default 5 min).
        self.refresh_ahead.unwrap_or(ttl / 20).min(ttl / 2)
    }
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// The cache's counters since it was made, a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads answered from the cache within the TTL, without waiting.
    pub hits: u64,
    /// Reads that found no value within its TTL and waited for a load
    /// (their own or a concurrent one).
    pub misses: u64,
    /// Loads that replaced a value readers were still getting: background
    /// refreshes ahead of expiry and reads that bypassed the cache.
    pub refreshes: u64,
    /// Reads answered with a value past its TTL: refreshing it failed with
    /// a transient error, the server was away (a refresh of the client had
    /// failed so, and no probe had got an answer since), or the refresh took
    /// longer than [`refresh_wait`](CacheOptions::refresh_wait). A read
    /// served at once while the server is away counts here only, not as a
    /// hit or a miss.
    pub stale_served: u64,
    /// Loads that failed (each load once, however many readers shared it).
    pub errors: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let o = CacheOptions::default();
        assert_eq!(o.ttl(), Duration::from_secs(300));
        assert_eq!(o.max_entries(), 1024);
        assert_eq!(o.max_stale(), Duration::from_secs(300));
        assert_eq!(o.refresh_ahead(), Duration::from_secs(15));
        assert_eq!(o.version_ttl(), Duration::from_secs(3600));
        assert_eq!(o.window(o.version_ttl()), Duration::from_secs(180));
        assert_eq!(o.refresh_wait(), Duration::from_millis(100));
    }

    #[test]
    fn refresh_ahead_is_capped_at_half_the_ttl() {
        let o = CacheOptions::new()
            .with_ttl(Duration::from_secs(10))
            .with_refresh_ahead(Duration::from_secs(60));
        assert_eq!(o.refresh_ahead(), Duration::from_secs(5));
        let o = o.with_refresh_ahead(Duration::from_secs(2));
        assert_eq!(o.refresh_ahead(), Duration::from_secs(2));
        assert_eq!(
            o.with_refresh_ahead(Duration::ZERO).refresh_ahead(),
            Duration::ZERO
        );
    }

    #[test]
    fn a_version_has_its_own_lifetime() {
        let o = CacheOptions::new()
            .with_ttl(Duration::from_secs(1))
            .with_version_ttl(Duration::from_secs(100));
        assert_eq!(o.lifetime(None), Duration::from_secs(1));
        assert_eq!(o.lifetime(Some(3)), Duration::from_secs(100));
    }
}
