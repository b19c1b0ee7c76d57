//! What the read cache gives: a warm cached read against a raw GET of the
//! same secret, the server requests a hot secret costs, and the memory
//! 10,000 cached secrets take, on a real OpenBao dev server.
//!
//! `cargo bench -p integration-tests --bench cache` prints the figures.
//! Targets (issue 16), checked at the end (the process fails when one is
//! missed):
//! - a warm cached `VaultClient::read()` is 100x or more faster than a raw
//!   GET (the median of paired rounds, each timing a cached read, two raw
//!   GETs and another cached read);
//! - 32 concurrent readers of one hot secret, TTL 1 s, for 10 s: at most 12
//!   server requests for that secret, counted in the audit log;
//! - 10,000 cached secrets of 1 KiB: under 64 MiB of resident memory growth;
//! - through an outage (issue 23: 16 readers on one AppRole client, TTL 2 s,
//!   a persistent server killed at 10 s, restarted at 15 s and unsealed at
//!   17 s): no read fails, none takes longer than 250 ms, and the readers'
//!   rate during the outage is at least half of their rate before it. The
//!   rates before, during and after, and the longest read, are printed.

// A benchmark stops at the first failure, like a test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use vault_secret::testing::DevVault;
use vault_secret::{KvVersion, VaultClient, cache::CacheOptions};

#[path = "common/paired.rs"]
mod paired;

#[path = "common/raw.rs"]
mod raw;

#[path = "common/memory.rs"]
mod memory;
use memory::resident;

/// Rounds of the paired measurement (two cached reads and two raw GETs in each).
const PAIRED_ROUNDS: usize = 1000;
const HOT_READERS: usize = 32;
const HOT_FOR: Duration = Duration::from_secs(10);
const SECRETS: usize = 10_000;
/// Requests in flight at once while writing and reading the many secrets.
const IN_FLIGHT: usize = 32;

const OUTAGE_READERS: usize = 16;
const OUTAGE_TTL: Duration = Duration::from_secs(2);
/// When the server is killed, restarted and unsealed, and the run ends.
const KILL_AT: Duration = Duration::from_secs(10);
const RESTART_AT: Duration = Duration::from_secs(15);
const UNSEAL_AT: Duration = Duration::from_secs(17);
const END_AT: Duration = Duration::from_secs(23);

/// The phases of the outage run, in order.
const PHASES: [&str; 4] = ["before", "during", "recovering", "after"];

/// What the readers of the outage run saw: reads per phase, failures, the
/// longest read.
#[derive(Default)]
struct OutageReads {
    per_phase: [AtomicU64; 4],
    failed: AtomicU64,
    longest_us: AtomicU64,
}

/// The outage run of issue 23 on a persistent server of its own; returns
/// the rates per phase (reads/s), the reads that failed and the longest read.
async fn outage() -> ([f64; 4], u64, Duration) {
    let vault = DevVault::builder().persistent().start().await.unwrap();
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(&format!("{mount}/app"), json!({"password": "p"}))
        .await;
    let policy = vault
        .policy(
            "bench-outage",
            &format!(r#"path "{mount}/data/app" {{ capabilities = ["read"] }}"#),
        )
        .await;
    let approle = vault.approle(&[&policy]).await;
    let client = VaultClient::builder()
        .env(vault.env_for(&approle))
        .cache(
            CacheOptions::new()
                .with_ttl(OUTAGE_TTL)
                .with_max_stale(Duration::from_secs(60)),
        )
        .build()
        .await
        .unwrap();
    let path = format!("{mount}/app#password");
    assert_eq!(client.read(&path).await.unwrap().expose_secret(), "p");
    let seen = Arc::new(OutageReads::default());
    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..OUTAGE_READERS)
        .map(|_| {
            let (client, path) = (client.clone(), path.clone());
            let (seen, phase, stop) = (seen.clone(), phase.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut counts, mut longest) = ([0u64; 4], 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let p = phase.load(Ordering::Relaxed);
                    let t = Instant::now();
                    if client.read(&path).await.is_err() {
                        seen.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    longest = longest.max(t.elapsed().as_micros() as u64);
                    counts[p] += 1;
                    // A hit never waits; let the other readers run.
                    tokio::task::yield_now().await;
                }
                for (total, n) in seen.per_phase.iter().zip(counts) {
                    total.fetch_add(n, Ordering::Relaxed);
                }
                seen.longest_us.fetch_max(longest, Ordering::Relaxed);
            })
        })
        .collect();
    let started = tokio::time::Instant::now();
    let mut ends = [Duration::ZERO; 4];
    tokio::time::sleep_until(started + KILL_AT).await;
    vault.kill();
    ends[0] = started.elapsed();
    phase.store(1, Ordering::Relaxed);
    tokio::time::sleep_until(started + RESTART_AT).await;
    vault.restart().await;
    tokio::time::sleep_until(started + UNSEAL_AT).await;
    vault.unseal().await;
    ends[1] = started.elapsed();
    phase.store(2, Ordering::Relaxed);
    // One TTL to come back fresh; "after" is what follows.
    tokio::time::sleep(OUTAGE_TTL).await;
    ends[2] = started.elapsed();
    phase.store(3, Ordering::Relaxed);
    tokio::time::sleep_until(started + END_AT).await;
    stop.store(true, Ordering::Relaxed);
    ends[3] = started.elapsed();
    for reader in readers {
        reader.await.unwrap();
    }
    let mut rates = [0.0; 4];
    let mut from = Duration::ZERO;
    for (i, end) in ends.iter().enumerate() {
        let n = seen.per_phase[i].load(Ordering::Relaxed);
        rates[i] = n as f64 / (*end - from).as_secs_f64();
        from = *end;
    }
    let stats = client.cache_stats().unwrap();
    println!("{:<44} {stats:?}", "");
    (
        rates,
        seen.failed.load(Ordering::Relaxed),
        Duration::from_micros(seen.longest_us.load(Ordering::Relaxed)),
    )
}

/// 1 KiB of text that differs from secret to secret.
fn kib_of(i: usize) -> String {
    format!("{i:08}").repeat(128)
}

/// Reads `paths` on `client`, [`IN_FLIGHT`] at a time, checking each value.
async fn read_all(client: &VaultClient, paths: &[String]) {
    futures_util::stream::iter(paths.iter().enumerate())
        .for_each_concurrent(IN_FLIGHT, |(i, path)| async move {
            let v = client.read(path).await.unwrap();
            assert_eq!(v.expose_secret(), kib_of(i));
        })
        .await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let vault = DevVault::start().await.unwrap();
    let audit = vault.audit_requests().await;
    let mount = vault.kv_mount(KvVersion::V2).await;
    let root = vault.root_token();
    vault
        .kv_put(
            &format!("{mount}/bench/app"),
            json!({"user": "u", "password": "p"}),
        )
        .await;

    // --- A warm cached read against a raw GET, paired.
    let raw_get = raw::RawGet::new(
        format!("{}/v1/{mount}/data/bench/app", vault.addr()),
        root.expose_secret(),
    );
    let raw_once = || raw_get.once();
    let cached = VaultClient::builder()
        .env(vault.env_for(&root))
        .cache(CacheOptions::new())
        .build()
        .await
        .unwrap();
    let path = format!("{mount}/bench/app#user");
    let cached_once = || async {
        assert_eq!(cached.read(&path).await.unwrap().expose_secret(), "u");
    };
    for _ in 0..20 {
        raw_once().await; // warm-up
        cached_once().await;
    }
    let rounds = paired::abba(&cached_once, &raw_once, PAIRED_ROUNDS).await;
    let mut raw_times: Vec<Duration> = rounds.iter().flat_map(|r| r.b).collect();
    let mut cached_times: Vec<Duration> = rounds.iter().flat_map(|r| r.a).collect();
    // Raw over cached: how many times faster the cached read is.
    let mut speedups: Vec<f64> = rounds.iter().map(|r| 1.0 / r.ratio()).collect();
    for v in [&mut raw_times, &mut cached_times] {
        v.sort();
    }
    speedups.sort_by(f64::total_cmp);
    let speedup = speedups[PAIRED_ROUNDS / 2];
    let median = |v: &[Duration]| v[v.len() / 2].as_secs_f64() * 1e6;
    println!(
        "warm read of a 2-key KV v2 secret on a local OpenBao, {PAIRED_ROUNDS} paired rounds:"
    );
    println!(
        "{:<44} median {:>9.2} us   p99 {:>9.2} us",
        "raw HTTP GET (reqwest, keep-alive)",
        median(&raw_times),
        raw_times[raw_times.len() * 99 / 100].as_secs_f64() * 1e6
    );
    println!(
        "{:<44} median {:>9.2} us   p99 {:>9.2} us",
        "VaultClient::read(), cached",
        median(&cached_times),
        cached_times[cached_times.len() * 99 / 100].as_secs_f64() * 1e6
    );
    println!(
        "{:<44} {speedup:>9.0}x (median of paired rounds)",
        "raw GET / cached read"
    );

    // --- One hot secret, 32 readers, TTL 1 s, 10 s.
    vault
        .kv_put(&format!("{mount}/bench/hot"), json!({"k": "hot"}))
        .await;
    let hot = VaultClient::builder()
        .env(vault.env_for(&root))
        .cache(CacheOptions::new().with_ttl(Duration::from_secs(1)))
        .build()
        .await
        .unwrap();
    let hot_path = format!("{mount}/bench/hot#k");
    let mark = audit.mark().await;
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let readers: Vec<_> = (0..HOT_READERS)
        .map(|_| {
            let (hot, hot_path) = (hot.clone(), hot_path.clone());
            let (stop, reads, slowest) = (stop.clone(), reads.clone(), slowest.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    assert_eq!(hot.read(&hot_path).await.unwrap().expose_secret(), "hot");
                    slowest.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                    n += 1;
                    // A hit never waits; let the other readers run.
                    tokio::task::yield_now().await;
                }
                reads.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    tokio::time::sleep(HOT_FOR).await;
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    let elapsed = started.elapsed();
    let hot_requests = audit
        .count_since(&mark, &format!("{mount}/data/bench/hot"))
        .await;
    let reads = reads.load(Ordering::Relaxed);
    let stats = hot.cache_stats().unwrap();
    println!(
        "{:<44} {reads} reads in {:.1} s, {hot_requests} server requests, slowest read {:.3} ms",
        format!("{HOT_READERS} readers of one hot secret, TTL 1 s"),
        elapsed.as_secs_f64(),
        slowest.load(Ordering::Relaxed) as f64 / 1e3
    );
    println!("{:<44} {stats:?}", "");

    // --- 10,000 secrets of 1 KiB.
    let paths: Vec<String> = (0..SECRETS)
        .map(|i| format!("{mount}/many/s{i}#v"))
        .collect();
    let admin = vault.admin();
    futures_util::stream::iter(0..SECRETS)
        .for_each_concurrent(IN_FLIGHT, |i| {
            let admin = admin.clone();
            let mount = mount.clone();
            async move {
                admin
                    .kv2_put(&mount, &format!("many/s{i}"), json!({"v": kib_of(i)}))
                    .await;
            }
        })
        .await;
    // The same reads without a cache first: what reading costs (buffers,
    // pools, the allocator's high-water mark) is in the baseline, so the
    // growth is what keeping the values costs.
    let uncached = VaultClient::builder()
        .env(vault.env_for(&root))
        .build()
        .await
        .unwrap();
    read_all(&uncached, &paths).await;
    let many = VaultClient::builder()
        .env(vault.env_for(&root))
        .cache(CacheOptions::new().with_max_entries(SECRETS))
        .build()
        .await
        .unwrap();
    let before = resident();
    read_all(&many, &paths).await;
    let after = resident();
    let growth = after.saturating_sub(before);
    // All of them are held: a second pass is all hits.
    read_all(&many, &paths).await;
    let stats = many.cache_stats().unwrap();
    assert_eq!(
        (stats.misses, stats.hits),
        (SECRETS as u64, SECRETS as u64),
        "{stats:?}"
    );
    println!(
        "{:<44} {:.1} MiB resident growth ({:.0} B per secret; {:.1} -> {:.1} MiB)",
        format!("{SECRETS} cached secrets of 1 KiB"),
        growth as f64 / (1 << 20) as f64,
        growth as f64 / SECRETS as f64,
        before as f64 / (1 << 20) as f64,
        after as f64 / (1 << 20) as f64
    );

    // --- Through an outage.
    println!(
        "{OUTAGE_READERS} readers, TTL 2 s, server killed at 10 s, restarted at 15 s, unsealed at 17 s:"
    );
    let (rates, failed, longest) = outage().await;
    for (name, rate) in PHASES.iter().zip(rates) {
        println!("{:<44} {rate:>12.0} reads/s", format!("  {name}"));
    }
    println!(
        "{:<44} {failed} failed, longest read {:.1} ms",
        "",
        longest.as_secs_f64() * 1e3
    );

    let mut ok = true;
    let mut check = |what: String, pass: bool| {
        println!("{} {what}", if pass { "[ ok ]" } else { "[MISS]" });
        ok &= pass;
    };
    check(
        format!("cached read {speedup:.0}x faster than a raw GET (target >= 100x)"),
        speedup >= 100.0,
    );
    check(
        format!(
            "{hot_requests} server requests for a hot secret in 10 s at TTL 1 s (target <= 12)"
        ),
        hot_requests <= 12,
    );
    check(
        format!(
            "{SECRETS} cached secrets: {:.1} MiB resident growth (target < 64 MiB)",
            growth as f64 / (1 << 20) as f64
        ),
        growth < 64 << 20,
    );
    check(
        format!("outage: {failed} reads failed (target 0)"),
        failed == 0,
    );
    check(
        format!(
            "outage: longest read {:.1} ms (target <= 250 ms)",
            longest.as_secs_f64() * 1e3
        ),
        longest <= Duration::from_millis(250),
    );
    check(
        format!(
            "outage: {:.0} reads/s during against {:.0} before (target >= half)",
            rates[1], rates[0]
        ),
        rates[1] >= rates[0] / 2.0,
    );
    drop(vault);
    if !ok {
        std::process::exit(1);
    }
}
