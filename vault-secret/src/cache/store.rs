//! The entries: a map bounded by least-recent use, whose every way out
//! (eviction, expiry, invalidation, replacement) zeroizes the value.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What an entry is cached under: a secret's path and, for a KV v2 read of
/// an explicit version, that version. A field (`#field`) is not part of it:
/// fields are picked from the cached secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    /// The secret's path, as the client normalises it (`secret/app/db`).
    pub(crate) path: String,
    /// The explicit KV v2 version (`?version=N`), if any.
    pub(crate) version: Option<u64>,
}

impl CacheKey {
    /// The key of `path`, at `version` when one was asked for.
    pub(crate) fn new(path: impl Into<String>, version: Option<u64>) -> Self {
        CacheKey {
            path: path.into(),
            version,
        }
    }
}

/// One cached value. Not `Debug`: nothing prints it.
pub(super) struct Entry {
    pub(super) value: Value,
    /// When the server's answer was settled into the cache.
    pub(super) loaded_at: Instant,
    /// The load that produced it (see `State::next_seq`): an older load's
    /// answer never replaces a newer one.
    pub(super) seq: u64,
    /// Its place in the least-recently-used order.
    used: u64,
}

impl Entry {
    pub(super) fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.loaded_at)
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // Every path out of the store wipes through `Store::discard` too; this
        // covers the store itself being dropped.
        secret_core::zeroize_json(&mut self.value);
    }
}

/// The entries and their least-recently-used order.
#[derive(Default)]
pub(super) struct Store {
    entries: HashMap<CacheKey, Entry>,
    /// `used` tick -> key; the first is the least recently used.
    order: BTreeMap<u64, CacheKey>,
    tick: u64,
    /// Tests see each discarded value after it was wiped.
    #[cfg(test)]
    pub(super) wiped: Vec<Value>,
}

impl Store {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn peek(&self, key: &CacheKey) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// The entry, marked as the most recently used.
    pub(super) fn touch(&mut self, key: &CacheKey) -> Option<&Entry> {
        let entry = self.entries.get_mut(key)?;
        self.tick += 1;
        if let Some(k) = self.order.remove(&entry.used) {
            self.order.insert(self.tick, k);
        }
        entry.used = self.tick;
        Some(entry)
    }

    /// Stores `value` under `key` (wiping the value it replaces), then drops
    /// the least recently used entries beyond `max_entries`.
    pub(super) fn insert(
        &mut self,
        key: CacheKey,
        value: Value,
        loaded_at: Instant,
        seq: u64,
        max_entries: usize,
    ) {
        self.remove(&key);
        self.tick += 1;
        self.order.insert(self.tick, key.clone());
        self.entries.insert(
            key,
            Entry {
                value,
                loaded_at,
                seq,
                used: self.tick,
            },
        );
        while self.entries.len() > max_entries {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(entry) = self.entries.remove(&oldest) {
                self.discard(entry);
            }
        }
    }

    pub(super) fn remove(&mut self, key: &CacheKey) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&entry.used);
            self.discard(entry);
        }
    }

    /// Removes every entry whose key `doomed` says to.
    pub(super) fn remove_where(&mut self, mut doomed: impl FnMut(&CacheKey, &Entry) -> bool) {
        let keys: Vec<CacheKey> = self
            .entries
            .iter()
            .filter(|(k, e)| doomed(k, e))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.remove(&key);
        }
    }

    fn discard(&mut self, mut entry: Entry) {
        secret_core::zeroize_json(&mut entry.value);
        #[cfg(test)]
        self.wiped.push(std::mem::take(&mut entry.value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(path: &str) -> CacheKey {
        CacheKey::new(path, None)
    }

    #[test]
    fn the_least_recently_used_goes_first_and_is_wiped() {
        let now = Instant::now();
        let mut store = Store::default();
        store.insert(key("s/a"), json!({"p": "aaa"}), now, 1, 2);
        store.insert(key("s/b"), json!({"p": "bbb"}), now, 2, 2);
        assert!(store.touch(&key("s/a")).is_some());
        store.insert(key("s/c"), json!({"p": "ccc"}), now, 3, 2);
        assert_eq!(store.len(), 2);
        assert!(store.peek(&key("s/b")).is_none());
        assert!(store.peek(&key("s/a")).is_some());
        assert!(store.peek(&key("s/c")).is_some());
        assert_eq!(store.wiped, vec![json!({"p": ""})]);
        assert_eq!(store.order.len(), 2, "the order follows the entries");
    }

    #[test]
    fn a_replaced_or_removed_value_is_wiped() {
        let now = Instant::now();
        let mut store = Store::default();
        store.insert(key("s/a"), json!({"p": "old", "n": ["x"]}), now, 1, 10);
        store.insert(key("s/a"), json!({"p": "new"}), now, 2, 10);
        store.remove(&key("s/a"));
        assert_eq!(
            store.wiped,
            vec![json!({"p": "", "n": [""]}), json!({"p": ""})]
        );
        assert_eq!(store.len(), 0);
        assert!(store.order.is_empty());
    }

    #[test]
    fn zero_entries_keeps_nothing() {
        let mut store = Store::default();
        store.insert(key("s/a"), json!({"p": "x"}), Instant::now(), 1, 0);
        assert_eq!(store.len(), 0);
        assert_eq!(store.wiped, vec![json!({"p": ""})]);
    }
}
