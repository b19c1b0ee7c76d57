//! What `vault_secret::testing` costs a test suite: `DevVault::start()` to
//! ready, and the per-test cost of the shared server.
//!
//! `cargo bench -p integration-tests --bench dev_vault` prints the figures.
//! Target, checked at the end (the process fails when it is missed):
//! `DevVault::start()` returns a ready server in under 1 s (median).

// A benchmark stops at the first failure, like a test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::json;
use vault_secret::KvVersion;
use vault_secret::testing::DevVault;

const STARTS: usize = 7;
const REUSES: usize = 200;

fn summary(name: &str, mut times: Vec<Duration>) -> Duration {
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "{name:<52} median {:>9.3} ms   min {:>9.3} ms   max {:>9.3} ms   ({} runs)",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len()
    );
    median
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let mut start = Vec::new();
    let mut stop = Vec::new();
    for _ in 0..STARTS {
        let t = Instant::now();
        let vault = DevVault::start().await.unwrap();
        start.push(t.elapsed());
        let t = Instant::now();
        drop(vault);
        stop.push(t.elapsed());
    }
    let start_median = summary("DevVault::start() to ready", start);
    summary("dropping it (server stopped)", stop);

    let t = Instant::now();
    let first = DevVault::shared().await.unwrap();
    println!(
        "{:<52} {:>16.3} ms",
        "DevVault::shared(), first call (starts it)",
        t.elapsed().as_secs_f64() * 1e3
    );
    let mut reuse = Vec::new();
    for _ in 0..REUSES {
        let t = Instant::now();
        let vault = DevVault::shared().await.unwrap();
        reuse.push(t.elapsed());
        assert_eq!(vault.addr(), first.addr());
    }
    summary("DevVault::shared(), later calls (per test)", reuse);
    let mut per_test = Vec::new();
    for _ in 0..REUSES / 4 {
        let t = Instant::now();
        let vault = DevVault::shared().await.unwrap();
        let mount = vault.kv_mount(KvVersion::V2).await;
        vault
            .kv_put(&format!("{mount}/app"), json!({"k": "v"}))
            .await;
        per_test.push(t.elapsed());
    }
    summary(
        "shared() + kv_mount(V2) + kv_put (a test's set-up)",
        per_test,
    );

    let target = Duration::from_secs(1);
    if start_median >= target {
        eprintln!("MISSED: DevVault::start() median {start_median:?} >= {target:?}");
        std::process::exit(1);
    }
    println!("target met: DevVault::start() median under {target:?}");
}
