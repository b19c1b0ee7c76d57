//! The read cache (issue 16) against a real OpenBao: what the server says
//! about a secret or a token (403, 404) is never hidden, entries belong to
//! one client, values reach no log line nor `Debug`, `VaultSecret` and
//! `VaultSource` read through a caching client, and stale values carry a
//! service through a server killed and restarted mid-run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use secret_core::SecretChain;
use serde_json::json;
use vault_secret::testing::{DevVault, TestCredentials};
use vault_secret::{CacheOptions, Error, KvVersion, VaultClient, VaultSecret, VaultSource};

fn read_policy(api_path: &str) -> String {
    format!(r#"path "{api_path}" {{ capabilities = ["read"] }}"#)
}

/// Options where nothing refreshes behind a test's back and an outage
/// would be bridged for a minute: a 403 or 404 seen as stale would show.
fn no_refresh_ahead(ttl: Duration) -> CacheOptions {
    CacheOptions::new()
        .with_ttl(ttl)
        .with_refresh_ahead(Duration::ZERO)
        .with_max_stale(Duration::from_secs(60))
}

async fn caching_client(
    vault: &DevVault,
    credentials: &dyn TestCredentials,
    options: CacheOptions,
) -> VaultClient {
    VaultClient::builder()
        .env(vault.env_for(credentials))
        .cache(options)
        .build()
        .await
        .expect("a caching client")
}

async fn text(client: &VaultClient, path: &str) -> Result<String, Error> {
    client
        .read(path)
        .await
        .map(|v| v.expose_secret().to_owned())
}

#[tokio::test]
async fn a_403_after_a_policy_change_is_returned_not_masked() {
    let vault = DevVault::shared().await.unwrap();
    let mount = vault.kv_mount(KvVersion::V2).await;
    let path = format!("{mount}/app");
    let field = format!("{path}#password");
    vault.kv_put(&path, json!({"password": "granted"})).await;
    let policy = vault
        .policy("cache-403", &read_policy(&format!("{mount}/data/app")))
        .await;
    let token = vault.token(&[&policy]).await;
    // Three clients of the one token: each shows the revocation its own way.
    let fresh = caching_client(&vault, &token, no_refresh_ahead(Duration::from_secs(30))).await;
    let invalidated =
        caching_client(&vault, &token, no_refresh_ahead(Duration::from_secs(30))).await;
    let expiring =
        caching_client(&vault, &token, no_refresh_ahead(Duration::from_millis(300))).await;
    for client in [&fresh, &invalidated, &expiring] {
        assert_eq!(text(client, &field).await.unwrap(), "granted");
    }

    // The policy no longer grants the path.
    vault
        .admin()
        .put_policy(&policy, &read_policy(&format!("{mount}/data/elsewhere")))
        .await;

    // Within its TTL a value is served from the cache, by design.
    assert_eq!(text(&fresh, &field).await.unwrap(), "granted");
    // A bypassing read shows the 403 at once, and drops the entry.
    let denied = fresh.read_fresh(&field).await;
    assert!(
        matches!(denied, Err(Error::PermissionDenied { .. })),
        "{denied:?}"
    );
    let denied = text(&fresh, &field).await;
    assert!(
        matches!(denied, Err(Error::PermissionDenied { .. })),
        "{denied:?}"
    );

    // So does a read after `invalidate`.
    invalidated.invalidate(&path);
    let denied = text(&invalidated, &field).await;
    assert!(
        matches!(denied, Err(Error::PermissionDenied { .. })),
        "{denied:?}"
    );

    // And the first read past the TTL: the refresh's 403 is returned, though
    // a minute of staleness would be allowed on a transient failure.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let denied = text(&expiring, &field).await;
    assert!(
        matches!(denied, Err(Error::PermissionDenied { .. })),
        "{denied:?}"
    );
    for client in [&fresh, &invalidated, &expiring] {
        let stats = client.cache_stats().unwrap();
        assert_eq!(stats.stale_served, 0, "{stats:?}");
    }
    // The 403 is not cached either: a grant is seen at the next read.
    vault
        .admin()
        .put_policy(&policy, &read_policy(&format!("{mount}/data/app")))
        .await;
    assert_eq!(text(&expiring, &field).await.unwrap(), "granted");
}

#[tokio::test]
async fn a_deleted_secret_is_returned_as_not_found_not_served_stale() {
    let vault = DevVault::shared().await.unwrap();
    let mount = vault.kv_mount(KvVersion::V2).await;
    let soft = format!("{mount}/soft");
    let gone = format!("{mount}/gone");
    let pinned = format!("{mount}/pinned");
    vault.kv_put(&soft, json!({"k": "soft-deleted"})).await;
    vault.kv_put(&gone, json!({"k": "metadata-deleted"})).await;
    vault.kv_put(&pinned, json!({"k": "version-one"})).await;
    let root = vault.root_token();
    let expiring =
        caching_client(&vault, &root, no_refresh_ahead(Duration::from_millis(300))).await;
    let held = caching_client(&vault, &root, no_refresh_ahead(Duration::from_secs(30))).await;
    let pinned_one = format!("{pinned}?version=1#k");
    for client in [&expiring, &held] {
        assert_eq!(
            text(client, &format!("{soft}#k")).await.unwrap(),
            "soft-deleted"
        );
        assert_eq!(
            text(client, &format!("{gone}#k")).await.unwrap(),
            "metadata-deleted"
        );
        assert_eq!(text(client, &pinned_one).await.unwrap(), "version-one");
    }

    vault.kv_delete_latest(&soft).await;
    vault
        .admin()
        .delete(&format!("{mount}/metadata/gone"))
        .await
        .expect_ok("delete the metadata");
    vault.kv_destroy_versions(&pinned, &[1]).await;

    // Past the TTL: the refresh's answer, not the cached value.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let v = text(&expiring, &soft).await;
    assert!(matches!(v, Err(Error::VersionDeleted { .. })), "{v:?}");
    let v = text(&expiring, &gone).await;
    assert!(matches!(v, Err(Error::NotFound { .. })), "{v:?}");
    // An explicit version lives for its own (longer) TTL; a bypassing read
    // finds it destroyed, and drops it.
    assert_eq!(text(&expiring, &pinned_one).await.unwrap(), "version-one");
    let v = expiring.read_fresh(&pinned_one).await;
    assert!(matches!(v, Err(Error::VersionDestroyed { .. })), "{v:?}");
    let v = text(&expiring, &pinned_one).await;
    assert!(matches!(v, Err(Error::VersionDestroyed { .. })), "{v:?}");

    // Invalidated within the TTL: seen at once.
    held.invalidate_all();
    let v = text(&held, &soft).await;
    assert!(matches!(v, Err(Error::VersionDeleted { .. })), "{v:?}");
    let v = text(&held, &gone).await;
    assert!(matches!(v, Err(Error::NotFound { .. })), "{v:?}");
    for client in [&expiring, &held] {
        assert_eq!(client.cache_stats().unwrap().stale_served, 0);
    }
}

#[tokio::test]
async fn two_clients_never_see_each_others_entries() {
    let vault = DevVault::shared().await.unwrap();
    let mount = vault.kv_mount(KvVersion::V2).await;
    let secret = format!("{mount}/app");
    let path = format!("{secret}#k");
    vault.kv_put(&secret, json!({"k": "one"})).await;
    let policy = vault
        .policy("cache-scope", &read_policy(&format!("{mount}/data/app")))
        .await;
    let allowed = vault.token(&[&policy]).await;
    let denied = vault.token(&[]).await;
    let options = CacheOptions::new().with_ttl(Duration::from_secs(300));
    let a = caching_client(&vault, &allowed, options.clone()).await;
    let same_token = caching_client(&vault, &allowed, options.clone()).await;
    let other_token = caching_client(&vault, &denied, options.clone()).await;

    assert_eq!(text(&a, &path).await.unwrap(), "one");
    // A token without the grant gets the server's 403, not `a`'s value.
    let v = text(&other_token, &path).await;
    assert!(matches!(v, Err(Error::PermissionDenied { .. })), "{v:?}");

    vault.kv_put(&secret, json!({"k": "two"})).await;
    // `a` holds its value; a client of the same token and settings, built
    // apart, asks the server.
    assert_eq!(text(&a, &path).await.unwrap(), "one");
    assert_eq!(text(&same_token, &path).await.unwrap(), "two");
    // Clones do share: they are one client.
    assert_eq!(text(&a.clone(), &path).await.unwrap(), "one");

    let (sa, ss, so) = (
        a.cache_stats().unwrap(),
        same_token.cache_stats().unwrap(),
        other_token.cache_stats().unwrap(),
    );
    assert_eq!((sa.hits, sa.misses), (2, 1), "{sa:?}");
    assert_eq!((ss.hits, ss.misses), (0, 1), "{ss:?}");
    assert_eq!((so.hits, so.misses, so.errors), (0, 1, 1), "{so:?}");
}

#[tokio::test]
async fn vault_secret_and_vault_source_read_through_a_caching_client() {
    let vault = DevVault::shared().await.unwrap();
    let audit = vault.audit_requests().await;
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(&format!("{mount}/apps/DB"), json!({"password": "db-pw"}))
        .await;
    vault
        .kv_put(
            &format!("{mount}/config"),
            json!({"USER": "u", "HOST": "h"}),
        )
        .await;
    let client = caching_client(&vault, &vault.root_token(), CacheOptions::new()).await;
    let reads_of = |rest: &str| format!("{mount}/data/{rest}");

    let mark = audit.mark().await;
    for _ in 0..3 {
        let v = VaultSecret::new(format!("{mount}/apps/DB#password"))
            .client(client.clone())
            .run()
            .await
            .unwrap();
        assert_eq!(v.expose_secret(), "db-pw");
    }
    assert_eq!(audit.count_since(&mark, &reads_of("apps/DB")).await, 1);

    // A chain's source: names under a prefix, and fields of one secret.
    let chain = SecretChain::first_try(
        "vault",
        VaultSource::under(format!("{mount}/apps")).client(client.clone()),
    )
    .or_else(
        "config",
        VaultSource::fields_of(format!("{mount}/config")).client(client.clone()),
    );
    for _ in 0..2 {
        let db = chain.get("DB").await.unwrap();
        assert_eq!(db.field("password").unwrap().expose_secret(), "db-pw");
        assert_eq!(chain.get("USER").await.unwrap().expose_secret(), "u");
        assert_eq!(chain.get("HOST").await.unwrap().expose_secret(), "h");
    }
    assert_eq!(audit.count_since(&mark, &reads_of("apps/DB")).await, 1);
    assert_eq!(audit.count_since(&mark, &reads_of("config")).await, 1);

    // A bypassing read and a read after `invalidate` each ask once more.
    let v = client.read_fresh(&format!("{mount}/config#USER")).await;
    assert_eq!(v.unwrap().expose_secret(), "u");
    client.invalidate(format!("{mount}/apps/DB"));
    let v = VaultSecret::new(format!("{mount}/apps/DB#password"))
        .client(client.clone())
        .run()
        .await;
    assert_eq!(v.unwrap().expose_secret(), "db-pw");
    assert_eq!(audit.count_since(&mark, &reads_of("apps/DB")).await, 2);
    assert_eq!(audit.count_since(&mark, &reads_of("config")).await, 2);

    // Misses: DB, config, DB after `invalidate`, and `apps/USER` and
    // `apps/HOST` in each round (the chain asks `apps` first; a 404 is
    // never cached). Hits: 2 VaultSecret reads, DB twice and config 3
    // times through the chain.
    let s = client.cache_stats().unwrap();
    assert_eq!(s.refreshes, 1, "{s:?}");
    assert_eq!(s.misses, 3 + 4, "{s:?}");
    assert_eq!(s.errors, 4, "{s:?}");
    assert_eq!(s.hits, 2 + 2 + 3, "{s:?}");
    assert_eq!(s.stale_served, 0, "{s:?}");
}

const CANARY: &str = "cache-canary-value-3d9e";

#[tokio::test]
async fn no_value_in_logs_or_debug_and_a_stale_read_logs_its_path_and_age() {
    // A current-thread runtime: the subscriber covers every await, the
    // background refresh's task included.
    let (capture, _guard) = crate::support::LogCapture::trace_everything();

    // A server of the test's own: it is sealed mid-test.
    let vault = DevVault::start().await.expect("a dev Vault");
    let mount = vault.kv_mount(KvVersion::V2).await;
    let secret = format!("{mount}/app");
    let path = format!("{secret}#password");
    vault.kv_put(&secret, json!({"password": CANARY})).await;
    let options = CacheOptions::new()
        .with_ttl(Duration::from_millis(300))
        .with_refresh_ahead(Duration::from_millis(150))
        .with_max_stale(Duration::from_secs(60));
    let client = caching_client(&vault, &vault.root_token(), options).await;
    let mut shown = Vec::new();

    assert_eq!(text(&client, &path).await.unwrap(), CANARY); // miss
    assert_eq!(text(&client, &path).await.unwrap(), CANARY); // hit
    // In the refresh-ahead window: a hit, and one background refresh.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(text(&client, &path).await.unwrap(), CANARY);
    assert_eq!(client.cache_stats().unwrap().refreshes, 1);
    // Time for the background refresh (a loopback round trip) to end.
    tokio::time::sleep(Duration::from_millis(50)).await;
    shown.push(format!("{client:?} {client:#?}"));

    vault.seal().await;
    let mark = capture.len();
    // Past the TTL: the refresh fails (sealed, transient), the value is
    // served stale and one DEBUG line says so.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stale = client.read(&path).await.unwrap();
    assert_eq!(stale.expose_secret(), CANARY);
    shown.push(format!("{stale:?} {stale:#?}"));
    let logged = capture.since(mark);
    let lines: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("serving a stale cached secret"))
        .collect();
    assert_eq!(lines.len(), 1, "{logged}");
    let line = lines[0];
    assert!(line.contains("DEBUG"), "{line}");
    assert!(line.contains(&format!("path={secret}")), "{line}");
    let age_ms: u64 = line
        .split("age_ms=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no age in {line}"));
    assert!((300..60_000).contains(&age_ms), "{line}");

    // A bypassing read returns the outage's error, never the cached value.
    let sealed = client.read_fresh(&path).await;
    assert!(matches!(sealed, Err(Error::Sealed { .. })), "{sealed:?}");
    if let Err(e) = &sealed {
        shown.push(format!("{e:?} {e:#?} {e}"));
    }
    vault.unseal().await;
    assert_eq!(
        client.read_fresh(&path).await.unwrap().expose_secret(),
        CANARY
    );

    let stats = client.cache_stats().unwrap();
    assert_eq!((stats.hits, stats.misses), (2, 2), "{stats:?}");
    assert_eq!((stats.refreshes, stats.stale_served), (3, 1), "{stats:?}");
    // The stale read's and the bypassing read's (and the background
    // refresh's, on a machine too slow to end it before the seal).
    assert!((2..=3).contains(&stats.errors), "{stats:?}");
    shown.push(format!("{stats:?} {client:?}"));

    // (The stale line above shows the capture works; spans of callsites
    // another test thread registered first may be missing from it.)
    let logs = capture.since(0);
    assert!(!logs.contains(CANARY), "the value is in a log line");
    for text in &shown {
        assert!(!text.contains(CANARY), "the value is in a Debug output");
    }
}

/// What the readers of an outage run saw.
#[derive(Debug, Default)]
struct Outage {
    reads: AtomicU64,
    failed: AtomicU64,
}

/// 16 readers of `path` on `client` (each read paced by 5 ms) while the
/// server is killed, restarted and unsealed; bounded at a minute.
async fn read_through_an_outage(vault: &DevVault, client: &VaultClient, path: &str) -> Arc<Outage> {
    let outage = Arc::new(Outage::default());
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let (client, path) = (client.clone(), path.to_owned());
            let (outage, stop) = (outage.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match client.read(&path).await {
                        Ok(v) => assert_eq!(v.expose_secret(), "through the outage"),
                        Err(_) => {
                            outage.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    outage.reads.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    let run = async {
        // Long enough for one refresh at least before the crash.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        vault.kill();
        // Down past the 1 s TTL: every read past it needs the server.
        tokio::time::sleep(Duration::from_millis(2000)).await;
        vault.restart().await; // sealed until unsealed
        tokio::time::sleep(Duration::from_millis(500)).await;
        vault.unseal().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the outage run ends within a minute");
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .expect("a reader ends")
            .expect("a reader's reads are right");
    }
    outage
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_readers_read_through_a_server_killed_and_restarted() {
    let vault = DevVault::builder()
        .persistent()
        .start()
        .await
        .expect("a persistent server");
    let mount = vault.kv_mount(KvVersion::V2).await;
    let secret = format!("{mount}/app");
    vault
        .kv_put(&secret, json!({"password": "through the outage"}))
        .await;
    let policy = vault
        .policy("outage", &read_policy(&format!("{mount}/data/app")))
        .await;
    let approle = vault.approle(&[&policy]).await;
    let path = format!("{secret}#password");

    let options = CacheOptions::new()
        .with_ttl(Duration::from_secs(1))
        .with_max_stale(Duration::from_secs(60));
    let cached = caching_client(&vault, &approle, options).await;
    let with_cache = read_through_an_outage(&vault, &cached, &path).await;
    let stats = cached.cache_stats().unwrap();
    let (reads, failed) = (
        with_cache.reads.load(Ordering::Relaxed),
        with_cache.failed.load(Ordering::Relaxed),
    );
    assert_eq!(failed, 0, "{reads} reads, {stats:?}");
    assert!(stats.stale_served > 0, "{stats:?}");
    assert!(stats.errors > 0, "the outage reached the cache: {stats:?}");
    // After the unseal the value is fresh again: read within the TTL
    // without an error.
    assert!(stats.hits > stats.stale_served, "{stats:?}");

    // The same run without the cache: the outage shows.
    let uncached = VaultClient::builder()
        .env(vault.env_for(&approle))
        .build()
        .await
        .unwrap();
    let without = read_through_an_outage(&vault, &uncached, &path).await;
    let failed = without.failed.load(Ordering::Relaxed);
    assert!(failed > 0, "no read failed: the run missed the outage");
    eprintln!(
        "outage: with the cache {reads} reads, 0 failed, {} stale ({stats:?}); \
         without it {} reads, {failed} failed",
        stats.stale_served,
        without.reads.load(Ordering::Relaxed)
    );
}
