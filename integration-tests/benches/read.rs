//! What a read costs: `VaultSecret::run()` against a real OpenBao dev server,
//! next to the bare HTTP round trip of the same read.
//!
//! `cargo bench -p integration-tests --bench read` prints the figures.
//! Targets, checked at the end (the process fails when one is missed):
//! - a warm `VaultSecret::run()` (login and mount cached) adds under 1 ms
//!   (median) to the raw HTTP GET of the same secret;
//! - the median of paired ratios (each of 1000 rounds times `run()`, a raw
//!   GET with the same client settings and headers, another raw GET and
//!   another `run()`, and compares the sums) is at most 1.05;
//! - with 32 concurrent readers, `run()` keeps at least 0.98x the raw GET's
//!   throughput (the median ratio of 15 pairs of runs, alternating order);
//!
//! The raw GET (`common/raw.rs`) sends the headers the library sends, so the
//! ratios measure the library's own work, not a header the server handles.
//! - a warm read allocates under 256 KiB in all (counted with `dhat`);
//! - `VaultSecret::run_blocking()` from a plain thread, sequential, is at most
//!   1.10x a raw GET through an HTTP client (and a runtime) the thread holds
//!   (the median of 500 paired rounds): synchronous calls reuse the default
//!   client's runtime and connections rather than open one per call.

// A benchmark stops at the first failure, like a test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use secret_core::Env;
use serde_json::json;
use vault_secret::{VaultClient, VaultSecret};

#[path = "common/paired.rs"]
mod paired;

#[path = "common/raw.rs"]
mod raw;

#[path = "../tests/it/harness/mod.rs"]
#[allow(dead_code, unreachable_pub, unused_imports)]
mod harness;

// Forwards to the system allocator; counts only while a dhat profiler runs
// (the memory phase), so the timing phases are not slowed.
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const ROUNDS: usize = 500;
/// Rounds of the paired measurement (two run() and two raw GETs in each).
const PAIRED_ROUNDS: usize = 1000;
/// Pairs of throughput runs.
const THROUGHPUT_RUNS: usize = 15;

/// Paired rounds of `run_blocking()` against a raw GET.
const BLOCKING_ROUNDS: usize = 500;

/// `VaultSecret::run_blocking()` against a raw GET through an HTTP client and
/// a runtime held by the same plain thread: ABBA rounds as `paired::abba`,
/// timed from synchronous code. Returns the median ratio and each side's
/// median time.
async fn blocking_vs_raw(server: &harness::Server, env: &Env) -> (f64, Duration, Duration) {
    let url = format!("{}/v1/secret/data/bench/app", server.addr());
    let (token, env) = (server.root_token().to_owned(), env.clone());
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A plain thread (no runtime on it), as a synchronous program's main.
    std::thread::spawn(move || {
        let held = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let raw_get = raw::RawGet::new(url, &token);
        let raw_once = || held.block_on(raw_get.once());
        let secret = VaultSecret::new("secret/bench/app#user").env(env);
        let blocking_once = || {
            assert_eq!(secret.run_blocking().unwrap().expose_secret(), "u");
        };
        for _ in 0..20 {
            raw_once(); // warm-up
            blocking_once();
        }
        let time = |f: &dyn Fn()| {
            let t = Instant::now();
            f();
            t.elapsed()
        };
        let (mut ratios, mut a_times, mut b_times) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..BLOCKING_ROUNDS {
            let a1 = time(&blocking_once);
            let b1 = time(&raw_once);
            let b2 = time(&raw_once);
            let a2 = time(&blocking_once);
            ratios.push((a1 + a2).as_secs_f64() / (b1 + b2).as_secs_f64());
            a_times.extend([a1, a2]);
            b_times.extend([b1, b2]);
        }
        ratios.sort_by(f64::total_cmp);
        a_times.sort();
        b_times.sort();
        let _ = tx.send((
            ratios[BLOCKING_ROUNDS / 2],
            a_times[a_times.len() / 2],
            b_times[b_times.len() / 2],
        ));
    });
    rx.await.unwrap()
}

struct Figures {
    median: Duration,
    p99: Duration,
    bytes_per_op: u64,
}

async fn measure<F, Fut>(mut op: F) -> Figures
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..20 {
        op().await; // warm-up
    }
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        op().await;
        times.push(start.elapsed());
    }
    times.sort();
    // Memory: a separate, shorter phase under the (slower) counting profiler.
    const MEMORY_ROUNDS: u64 = 50;
    let profiler = dhat::Profiler::builder().testing().build();
    let before = dhat::HeapStats::get().total_bytes;
    for _ in 0..MEMORY_ROUNDS {
        op().await;
    }
    let bytes = dhat::HeapStats::get().total_bytes - before;
    drop(profiler);
    Figures {
        median: times[ROUNDS / 2],
        p99: times[ROUNDS * 99 / 100],
        bytes_per_op: bytes / MEMORY_ROUNDS,
    }
}

const READERS: usize = 32;
const READS_EACH: usize = 60;

/// Reads per second with [`READERS`] concurrent readers of [`READS_EACH`] reads each.
async fn throughput<F, Fut>(op: &F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    let readers = (0..READERS).map(|_| async {
        for _ in 0..READS_EACH {
            op().await;
        }
    });
    futures_util::future::join_all(readers).await;
    (READERS * READS_EACH) as f64 / started.elapsed().as_secs_f64()
}

/// The ratios of `a`'s time to `b`'s over [`PAIRED_ROUNDS`] ABBA rounds.
async fn abba<A, AF, B, BF>(a: &A, b: &B) -> Vec<f64>
where
    A: Fn() -> AF,
    AF: std::future::Future<Output = ()>,
    B: Fn() -> BF,
    BF: std::future::Future<Output = ()>,
{
    paired::abba(a, b, PAIRED_ROUNDS)
        .await
        .iter()
        .map(paired::Round::ratio)
        .collect()
}

fn row(name: &str, f: &Figures) {
    println!(
        "{name:<44} median {:>9.3} ms   p99 {:>9.3} ms   {:>8} B allocated/op",
        f.median.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        f.bytes_per_op
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let server = harness::dedicated_server(harness::ServerOptions::default()).await;
    let admin = server.admin();
    admin
        .kv2_put("secret", "bench/app", json!({"user": "u", "password": "p"}))
        .await;
    let env = Env::from_map([
        ("VAULT_ADDR", server.addr()),
        ("VAULT_TOKEN", server.root_token()),
        ("HOME", "/nonexistent-home"),
    ]);

    let raw_get = raw::RawGet::new(
        format!("{}/v1/secret/data/bench/app", server.addr()),
        server.root_token(),
    );
    let raw = measure(|| raw_get.once()).await;

    let cold_start = Instant::now();
    let first = VaultSecret::new("secret/bench/app")
        .env(env.clone())
        .run()
        .await
        .unwrap();
    let cold = cold_start.elapsed();
    assert_eq!(first.field("user").unwrap().expose_secret(), "u");

    let warm = measure(|| {
        let secret = VaultSecret::new("secret/bench/app#user").env(env.clone());
        async move {
            assert_eq!(secret.run().await.unwrap().expose_secret(), "u");
        }
    })
    .await;

    let client = VaultClient::builder()
        .env(env.clone())
        .build()
        .await
        .unwrap();
    let held = measure(|| {
        let client = client.clone();
        async move {
            assert_eq!(
                client
                    .read("secret/bench/app#user")
                    .await
                    .unwrap()
                    .expose_secret(),
                "u"
            );
        }
    })
    .await;

    println!(
        "read of a 2-key KV v2 secret on a local OpenBao {ROUNDS} times (after 20 warm-up reads):"
    );
    row("raw HTTP GET (reqwest, keep-alive)", &raw);
    row("VaultSecret::new(..).run() (warm)", &warm);
    row("VaultClient::read() on a held client", &held);
    println!(
        "{:<44} {:>9.3} ms (credentials, preflight, read)",
        "first VaultSecret::run() (cold)",
        cold.as_secs_f64() * 1e3
    );

    // Paired: each round times both, in alternating order, so drift in the
    // machine's load hits both alike.
    let raw_once = || raw_get.once();
    let run_once = || {
        let secret = VaultSecret::new("secret/bench/app#user").env(env.clone());
        async move {
            assert_eq!(secret.run().await.unwrap().expose_secret(), "u");
        }
    };
    // Each round times run(), raw, raw, run() (ABBA): the first request of
    // a pair and a drift within the round weigh on both sides alike.
    let mut ratios = abba(&run_once, &raw_once).await;
    // The same for a client the caller holds (no per-call resolution).
    let held_once = || {
        let client = client.clone();
        async move {
            let value = client.read("secret/bench/app#user").await.unwrap();
            assert_eq!(value.expose_secret(), "u");
        }
    };
    let mut held_ratios = abba(&held_once, &raw_once).await;
    held_ratios.sort_by(f64::total_cmp);
    let held_paired = held_ratios[PAIRED_ROUNDS / 2];
    ratios.sort_by(f64::total_cmp);
    let paired = ratios[PAIRED_ROUNDS / 2];

    // Throughput with 32 concurrent readers, each doing READS_EACH reads:
    // THROUGHPUT_RUNS pairs of runs, in alternating order, the median of
    // their ratios.
    let mut raw_rates = Vec::new();
    let mut run_rates = Vec::new();
    let mut rate_ratios = Vec::new();
    for i in 0..THROUGHPUT_RUNS {
        let (raw_rate, run_rate) = if i % 2 == 0 {
            let raw_rate = throughput(&raw_once).await;
            (raw_rate, throughput(&run_once).await)
        } else {
            let run_rate = throughput(&run_once).await;
            (throughput(&raw_once).await, run_rate)
        };
        raw_rates.push(raw_rate);
        run_rates.push(run_rate);
        rate_ratios.push(run_rate / raw_rate);
    }
    for v in [&mut raw_rates, &mut run_rates, &mut rate_ratios] {
        v.sort_by(f64::total_cmp);
    }
    let middle = THROUGHPUT_RUNS / 2;
    let (raw_rate, run_rate, rate_ratio) =
        (raw_rates[middle], run_rates[middle], rate_ratios[middle]);
    println!(
        "{:<44} {paired:>9.3} (median of {PAIRED_ROUNDS} paired rounds)",
        "run() / raw GET, sequential"
    );
    println!(
        "{:<44} {held_paired:>9.3} (median of {PAIRED_ROUNDS} paired rounds)",
        "VaultClient::read() / raw GET, sequential"
    );
    println!(
        "{:<44} raw {raw_rate:>8.0} reads/s   run() {run_rate:>8.0} reads/s   ratio {rate_ratio:.3}",
        format!("32 concurrent readers (median of {THROUGHPUT_RUNS})")
    );

    let (blocking_paired, blocking_median, raw_sync_median) = blocking_vs_raw(&server, &env).await;
    println!(
        "{:<44} median {:>9.3} ms   raw GET {:>9.3} ms   ratio {blocking_paired:.3} (median of {BLOCKING_ROUNDS} paired rounds)",
        "run_blocking(), plain thread, sequential",
        blocking_median.as_secs_f64() * 1e3,
        raw_sync_median.as_secs_f64() * 1e3,
    );

    let overhead = warm.median.saturating_sub(raw.median);
    let mut ok = true;
    let mut check = |what: String, pass: bool| {
        println!("{} {what}", if pass { "[ ok ]" } else { "[MISS]" });
        ok &= pass;
    };
    check(
        format!(
            "warm run() overhead over raw HTTP: {:.3} ms (target < 1 ms)",
            overhead.as_secs_f64() * 1e3
        ),
        overhead < Duration::from_millis(1),
    );
    check(
        format!("run() / raw GET paired median {paired:.3} (target <= 1.05)"),
        paired <= 1.05,
    );
    check(
        format!(
            "32 concurrent readers: run() at {rate_ratio:.3}x the raw throughput (target >= 0.98)"
        ),
        rate_ratio >= 0.98,
    );
    check(
        format!(
            "warm run() allocates {} B per read (target < 256 KiB)",
            warm.bytes_per_op
        ),
        warm.bytes_per_op < 256 * 1024,
    );
    check(
        format!(
            "run_blocking() / raw GET from a plain thread, paired median {blocking_paired:.3} (target <= 1.10)"
        ),
        blocking_paired <= 1.10,
    );
    drop(server);
    if !ok {
        std::process::exit(1);
    }
}
