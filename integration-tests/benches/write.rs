//! What a write costs: `VaultClient::write()` against a real OpenBao dev
//! server, next to a raw POST of the same body.
//!
//! `cargo bench -p integration-tests --bench write` prints the figures.
//! Target, checked at the end (the process fails when it is missed): the
//! median of paired ratios (each of 500 rounds times a `write()`, a raw
//! POST with the same client settings and headers, another raw POST and
//! another `write()`, and compares the sums) is at most 1.05, sequential.

// A benchmark stops at the first failure, like a test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use secret_core::Env;
use serde_json::json;
use vault_secret::VaultClient;

#[path = "common/paired.rs"]
mod paired;

#[path = "common/raw.rs"]
#[allow(dead_code)] // The GET baseline is the read benchmarks'.
mod raw;

#[path = "../tests/it/harness/mod.rs"]
#[allow(dead_code, unreachable_pub, unused_imports)]
mod harness;

/// Rounds of the paired measurement (two writes and two raw POSTs in each).
const PAIRED_ROUNDS: usize = 500;

/// The median of `times`.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let server = harness::dedicated_server(harness::ServerOptions::default()).await;
    let env = Env::from_map([
        ("VAULT_ADDR", server.addr()),
        ("VAULT_TOKEN", server.root_token()),
        ("HOME", "/nonexistent-home"),
    ]);
    let data = json!({"user": "u", "password": "bench-password", "port": "5432"});
    let raw_post = raw::RawPost::new(
        format!("{}/v1/secret/data/bench/write", server.addr()),
        server.root_token(),
        &json!({ "data": data }),
    );
    let client = VaultClient::builder().env(env).build().await.unwrap();

    let cold_start = Instant::now();
    client.write("secret/bench/write", &data).await.unwrap();
    let cold = cold_start.elapsed();
    for _ in 0..20 {
        raw_post.once().await; // warm-up
        client.write("secret/bench/write", &data).await.unwrap();
    }

    let raw_once = || raw_post.once();
    let write_once = || {
        let (client, data) = (client.clone(), &data);
        async move {
            let written = client.write("secret/bench/write", data).await.unwrap();
            assert!(written.version.is_some());
        }
    };
    let rounds = paired::abba(&write_once, &raw_once, PAIRED_ROUNDS).await;
    let mut ratios: Vec<f64> = rounds.iter().map(paired::Round::ratio).collect();
    ratios.sort_by(f64::total_cmp);
    let paired = ratios[PAIRED_ROUNDS / 2];
    let write_median = median(rounds.iter().flat_map(|r| r.a).collect());
    let raw_median = median(rounds.iter().flat_map(|r| r.b).collect());

    println!(
        "write of a 3-key KV v2 secret on a local OpenBao, {PAIRED_ROUNDS} paired rounds \
         (after 20 warm-up writes each):"
    );
    println!(
        "{:<44} median {:>9.3} ms",
        "raw HTTP POST (reqwest, keep-alive)",
        raw_median.as_secs_f64() * 1e3
    );
    println!(
        "{:<44} median {:>9.3} ms",
        "VaultClient::write() on a held client",
        write_median.as_secs_f64() * 1e3
    );
    println!(
        "{:<44} {:>9.3} ms (preflight, write)",
        "first write() (cold)",
        cold.as_secs_f64() * 1e3
    );
    println!(
        "{:<44} {paired:>9.3} (median of {PAIRED_ROUNDS} paired rounds)",
        "write() / raw POST, sequential"
    );
    let pass = paired <= 1.05;
    println!(
        "{} write() / raw POST paired median {paired:.3} (target <= 1.05)",
        if pass { "[ ok ]" } else { "[MISS]" }
    );
    drop(server);
    if !pass {
        std::process::exit(1);
    }
}
