//! What a read costs: `VaultSecret::run()` against a real OpenBao dev server,
//! next to the bare HTTP round trip of the same read.
//!
//! `cargo bench -p integration-tests` prints the figures. Targets, checked
//! at the end (the process fails when one is missed):
//! - a warm `VaultSecret::run()` (login and mount cached) adds under 1 ms
//!   (median) to the raw HTTP GET of the same secret;
//! - a warm read allocates under 256 KiB in all (counted with `dhat`).

// A benchmark stops at the first failure, like a test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use secret_core::Env;
use serde_json::json;
use vault_secret::{VaultSecret, VaultSession};

#[path = "../tests/it/harness/mod.rs"]
#[allow(dead_code, unreachable_pub, unused_imports)]
mod harness;

// Forwards to the system allocator; counts only while a dhat profiler runs
// (the memory phase), so the timing phases are not slowed.
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const ROUNDS: usize = 500;

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

    let http = reqwest::Client::new();
    let url = format!("{}/v1/secret/data/bench/app", server.addr());
    let raw = measure(|| {
        let request = http.get(&url).header("X-Vault-Token", server.root_token());
        async move {
            let body: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            assert_eq!(body["data"]["data"]["user"], "u");
        }
    })
    .await;

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

    let session = VaultSession::builder()
        .env(env.clone())
        .connect()
        .await
        .unwrap();
    let held = measure(|| {
        let session = session.clone();
        async move {
            assert_eq!(
                session
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
    row("VaultSession::read() on a held session", &held);
    println!(
        "{:<44} {:>9.3} ms (credentials, preflight, read)",
        "first VaultSecret::run() (cold)",
        cold.as_secs_f64() * 1e3
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
        format!(
            "warm run() allocates {} B per read (target < 256 KiB)",
            warm.bytes_per_op
        ),
        warm.bytes_per_op < 256 * 1024,
    );
    drop(server);
    if !ok {
        std::process::exit(1);
    }
}
