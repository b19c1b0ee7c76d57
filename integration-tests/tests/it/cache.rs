//! The read cache (issue 16) against a real OpenBao: what the server says
//! about a secret or a token (403, 404) is never hidden, entries belong to
//! one client, values reach no log line nor `Debug`, `VaultSecret` and
//! `VaultSource` read through a caching client, and stale values carry a
//! service through a server killed and restarted mid-run at memory speed
//! (issue 23), a 403 ending them for its path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secret_core::SecretChain;
use serde_json::json;
use vault_secret::testing::{DevVault, TestCredentials};
use vault_secret::{Error, KvVersion, VaultClient, VaultSecret, VaultSource, cache::CacheOptions};

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
    // Past the TTL: the refresh meets a sealed server (transient) and
    // retries; past the refresh wait the value is served stale, and one
    // DEBUG line says so.
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
    // The bypassing read's; the stale read's refresh goes on in the
    // background past the refresh wait, through the transport's retries,
    // and may end after the unseal (no error) or before it; the refresh
    // ahead of expiry fails on a machine too slow to end it before the seal.
    assert!((1..=3).contains(&stats.errors), "{stats:?}");
    shown.push(format!("{stats:?} {client:?}"));

    // (The stale line above shows the capture works; spans of callsites
    // another test thread registered first may be missing from it.)
    let logs = capture.since(0);
    assert!(!logs.contains(CANARY), "the value is in a log line");
    for text in &shown {
        assert!(!text.contains(CANARY), "the value is in a Debug output");
    }
}

/// One read of an outage run: when it started (since the run's start),
/// how long it took, and what it returned.
#[derive(Debug, Clone, Copy)]
struct Read {
    at: Duration,
    took: Duration,
    outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Before,
    Changed,
    Failed,
}

/// The moments of an outage run, since its start.
#[derive(Debug, Default)]
struct Timeline {
    killed: Duration,
    /// Restarted, unsealed and the value changed; the path restored.
    back: Duration,
    end: Duration,
}

/// Reads per second among `reads` started in `from..to`.
fn rate(reads: &[Read], from: Duration, to: Duration) -> f64 {
    let n = reads.iter().filter(|r| r.at >= from && r.at < to).count();
    n as f64 / (to - from).as_secs_f64()
}

const BEFORE: &str = "before the outage";
const CHANGED: &str = "changed during the outage";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_readers_read_through_an_outage_at_memory_speed() {
    let vault = DevVault::builder()
        .persistent()
        .start()
        .await
        .expect("a persistent server");
    let mount = vault.kv_mount(KvVersion::V2).await;
    let secret = format!("{mount}/app");
    vault.kv_put(&secret, json!({"password": BEFORE})).await;
    let policy = vault
        .policy("outage", &read_policy(&format!("{mount}/data/app")))
        .await;
    let approle = vault.approle(&[&policy]).await;
    let path = format!("{secret}#password");
    // The client reaches the server through a path the test can cut, so the
    // value can be changed after the restart before the client sees the
    // server again: what it reads then is what the server holds.
    let proxy = crate::proxy::Proxy::start(vault.addr());
    let ttl = Duration::from_secs(1);
    let client = VaultClient::builder()
        .env(vault.env_for(&approle))
        .address(proxy.addr())
        .cache(
            CacheOptions::new()
                .with_ttl(ttl)
                .with_max_stale(Duration::from_secs(60)),
        )
        .build()
        .await
        .expect("a caching client");
    // An uncached client straight to the server: its reads still fail, in
    // bounded time and with a named error, through the retry schedule.
    let uncached = VaultClient::builder()
        .env(vault.env_for(&approle))
        .build()
        .await
        .unwrap();
    assert_eq!(text(&client, &path).await.unwrap(), BEFORE);
    assert_eq!(text(&uncached, &path).await.unwrap(), BEFORE);

    let start = tokio::time::Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let (client, path, stop) = (client.clone(), path.clone(), stop.clone());
            tokio::spawn(async move {
                let mut reads = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let at = start.elapsed();
                    let outcome = match text(&client, &path).await.as_deref() {
                        Ok(BEFORE) => Outcome::Before,
                        Ok(CHANGED) => Outcome::Changed,
                        Ok(other) => panic!("an unexpected value of {} bytes", other.len()),
                        Err(_) => Outcome::Failed,
                    };
                    let took = start.elapsed() - at;
                    reads.push(Read { at, took, outcome });
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                reads
            })
        })
        .collect();
    let mut timeline = Timeline::default();
    let run = async {
        // Long enough for a refresh ahead of expiry before the crash.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        vault.kill();
        timeline.killed = start.elapsed();
        // Down past the TTL: every read past it would need the server.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let failed_at = tokio::time::Instant::now();
        let down = uncached.read(&path).await;
        let took = failed_at.elapsed();
        assert!(
            matches!(&down, Err(Error::Transport { address, .. }) if address == vault.addr()),
            "{down:?}"
        );
        // Two retries, 125-250 ms and 250-500 ms apart: not cut short.
        assert!(took >= Duration::from_millis(375), "{took:?}");
        vault.restart().await; // sealed until unsealed
        tokio::time::sleep(Duration::from_millis(500)).await;
        proxy.cut();
        vault.unseal().await;
        vault.kv_put(&secret, json!({"password": CHANGED})).await;
        timeline.back = start.elapsed();
        proxy.restore();
        tokio::time::sleep(ttl * 2).await;
        timeline.end = start.elapsed();
    };
    tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the outage run ends within 90 s");
    stop.store(true, Ordering::Relaxed);
    let mut reads = Vec::new();
    for reader in readers {
        let mine = tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .expect("a reader ends")
            .expect("a reader's reads are right");
        reads.extend(mine);
    }
    let stats = client.cache_stats().unwrap();

    let failed = reads
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .count();
    assert_eq!(failed, 0, "{} reads, {stats:?}", reads.len());
    let longest = reads.iter().map(|r| r.took).max().unwrap();
    let slowest = reads.iter().max_by_key(|r| r.took).unwrap();
    assert!(
        longest <= Duration::from_millis(250),
        "the longest read took {longest:?}: {slowest:?} in {timeline:?}"
    );
    let before = rate(&reads, Duration::from_millis(200), timeline.killed);
    let during = rate(&reads, timeline.killed, timeline.back);
    assert!(
        during >= before / 2.0,
        "{during:.0} reads/s during the outage, {before:.0} before"
    );
    assert!(stats.stale_served > 0, "{stats:?}");
    // Within one TTL of the server's return, every read has the value
    // changed while it was away, and some read had it before.
    let fresh_from = timeline.back + ttl;
    let late: Vec<&Read> = reads
        .iter()
        .filter(|r| r.at >= fresh_from && r.outcome != Outcome::Changed)
        .collect();
    assert!(late.is_empty(), "old values after {fresh_from:?}: {late:?}");
    assert!(
        reads
            .iter()
            .any(|r| r.at >= timeline.back && r.outcome == Outcome::Changed),
        "the changed value was never read"
    );
    eprintln!(
        "outage {timeline:?}: {} reads, 0 failed, {before:.0} reads/s before, {during:.0} \
         during, longest {longest:?}; {stats:?}; {} connections",
        reads.len(),
        proxy.accepted()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_after_the_outage_ends_stale_serving_for_that_path() {
    let vault = DevVault::builder()
        .persistent()
        .start()
        .await
        .expect("a persistent server");
    let mount = vault.kv_mount(KvVersion::V2).await;
    let (revoked, kept) = (format!("{mount}/revoked"), format!("{mount}/kept"));
    vault.kv_put(&revoked, json!({"k": "revoked-value"})).await;
    vault.kv_put(&kept, json!({"k": "kept-value"})).await;
    let both = format!(
        "{}\n{}",
        read_policy(&format!("{mount}/data/revoked")),
        read_policy(&format!("{mount}/data/kept"))
    );
    let policy = vault.policy("stale-403", &both).await;
    let approle = vault.approle(&[&policy]).await;
    let proxy = crate::proxy::Proxy::start(vault.addr());
    let ttl = Duration::from_millis(300);
    let client = VaultClient::builder()
        .env(vault.env_for(&approle))
        .address(proxy.addr())
        .cache(no_refresh_ahead(ttl))
        .build()
        .await
        .expect("a caching client");
    let (revoked_k, kept_k) = (format!("{revoked}#k"), format!("{kept}#k"));
    assert_eq!(text(&client, &revoked_k).await.unwrap(), "revoked-value");
    assert_eq!(text(&client, &kept_k).await.unwrap(), "kept-value");

    vault.kill();
    tokio::time::sleep(ttl * 2).await;
    // The stale period: both served, from memory.
    for _ in 0..10 {
        assert_eq!(text(&client, &revoked_k).await.unwrap(), "revoked-value");
        assert_eq!(text(&client, &kept_k).await.unwrap(), "kept-value");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stale = client.cache_stats().unwrap().stale_served;
    assert!(stale >= 10, "{stale}");

    // Back, with a policy that no longer grants `revoked`, before the
    // client can see the server again.
    vault.restart().await;
    proxy.cut();
    vault.unseal().await;
    vault
        .admin()
        .put_policy(&policy, &read_policy(&format!("{mount}/data/kept")))
        .await;
    proxy.restore();
    let back = tokio::time::Instant::now();
    let denied_after = loop {
        match text(&client, &revoked_k).await {
            Err(Error::PermissionDenied { .. }) => break back.elapsed(),
            Ok(v) => assert_eq!(v, "revoked-value"),
            Err(e) => panic!("{e}"),
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "still served stale"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // Once denied, denied: the cached value is gone.
    for _ in 0..10 {
        let v = text(&client, &revoked_k).await;
        assert!(matches!(v, Err(Error::PermissionDenied { .. })), "{v:?}");
    }
    assert_eq!(text(&client, &kept_k).await.unwrap(), "kept-value");
    eprintln!("403 seen {denied_after:?} after the path was restored");
}
