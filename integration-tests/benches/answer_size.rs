//! What the largest accepted answer costs in memory (issue 25, finding 7).
//!
//! `cargo bench -p integration-tests --bench answer_size` prints the peak
//! resident memory (`VmHWM`) one read adds, for answers just under the 4 MiB
//! default cap ([`vault_secret::DEFAULT_MAX_RESPONSE_SIZE`]):
//! - a KV v2 secret of one long string, on a real OpenBao dev server;
//! - an answer of small JSON numbers (the shape that costs the most once
//!   parsed, about 30 times its size), from a stand-in: OpenBao itself
//!   refuses to store such a secret ("high complexity"), but a hostile or
//!   misconfigured server may send one. Before the cap, 32 MiB of it cost
//!   about 1 GB;
//!
//! then that an answer just over the cap is refused and adds next to nothing.

// A benchmark stops at the first failure, like a test.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use serde_json::{Value, json};
use vault_secret::testing::{DevVault, MockAnswer, MockVault};
use vault_secret::{DEFAULT_MAX_RESPONSE_SIZE, Error, KvVersion, TransportKind, VaultClient};

#[path = "common/memory.rs"]
mod memory;
use memory::{resident, status};

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Reads `path` on `client` and prints what the read added to the peak
/// resident memory; `Err` when the read failed.
async fn measure(what: &str, client: &VaultClient, path: &str) -> Result<(), Error> {
    // Resets the peak (`VmHWM`) to the current resident size (Linux 4.0+).
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let rss = resident();
    let started = Instant::now();
    let outcome = client.read(path).await;
    let took = started.elapsed();
    let size = outcome.as_ref().map(|v| v.expose_secret().len()).ok();
    let added = status("VmHWM").saturating_sub(rss);
    let read = match size {
        Some(size) => format!("read ({:.2} MiB of JSON)", mib(size as u64)),
        None => "refused".to_owned(),
    };
    println!(
        "{what:<52} {read} in {:>5.0} ms, peak resident memory +{:>6.1} MiB",
        took.as_secs_f64() * 1000.0,
        mib(added),
    );
    outcome.map(|_| ())
}

fn assert_too_large(outcome: Result<(), Error>) {
    let err = outcome.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportKind::Body,
                ..
            }
        ),
        "{err}"
    );
}

/// KV v2's answer to a read of `data`, as OpenBao shapes it.
fn kv2_answer(data: Value) -> Value {
    json!({
        "request_id": "bench", "lease_id": "", "renewable": false, "lease_duration": 0,
        "data": {"data": data, "metadata": {"version": 1, "destroyed": false,
                 "deletion_time": "", "created_time": "2026-01-01T00:00:00Z"}},
        "wrap_info": null, "warnings": null, "auth": null
    })
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // KV v2's envelope and metadata take a few hundred bytes.
        let under = DEFAULT_MAX_RESPONSE_SIZE - 4096;
        let over = DEFAULT_MAX_RESPONSE_SIZE + 4096;

        let vault = DevVault::start().await.expect("a dev OpenBao server");
        let mount = vault.kv_mount(KvVersion::V2).await;
        for (name, len) in [("largest", under), ("too-large", over)] {
            let blob = "x".repeat(len - 32);
            vault
                .kv_put(&format!("{mount}/{name}"), json!({ "blob": blob }))
                .await;
        }
        let client = VaultClient::builder()
            .env(vault.env_for(&vault.root_token()))
            .build()
            .await
            .unwrap();
        // Log in and learn the mount first: only the read is measured.
        client
            .inspect()
            .mount_of(&format!("{mount}/largest"))
            .await
            .unwrap();
        measure(
            "OpenBao: one string, just under the cap",
            &client,
            &format!("{mount}/largest"),
        )
        .await
        .unwrap();
        assert_too_large(
            measure(
                "OpenBao: one string, just over the cap",
                &client,
                &format!("{mount}/too-large"),
            )
            .await,
        );
        client.shutdown().await.unwrap();

        let mock = MockVault::start().await;
        for (name, len) in [("numbers/largest", under), ("numbers/too-large", over)] {
            // `0,` is two bytes.
            mock.kv2(name, json!({})).await;
            let answer = kv2_answer(json!({ "numbers": vec![0u8; len / 2 - 128] }));
            mock.answer(
                &name.replacen('/', "/data/", 1),
                MockAnswer::json(200, answer),
            )
            .await;
        }
        let client = VaultClient::builder()
            .env(mock.env_for(&mock.root_token()))
            .max_retries(0)
            .build()
            .await
            .unwrap();
        client.inspect().mount_of("numbers/largest").await.unwrap();
        measure(
            "stand-in: small numbers, just under the cap",
            &client,
            "numbers/largest",
        )
        .await
        .unwrap();
        assert_too_large(
            measure(
                "stand-in: small numbers, just over the cap",
                &client,
                "numbers/too-large",
            )
            .await,
        );
    });
}
