//! The read pipeline as a user of the CLI sees it: the wall time of
//! `vault-secret exec` with three secrets (two paths under two mounts, one
//! path read for two fields) next to a single `vault-secret get`, against a
//! real OpenBao dev server.
//!
//! `cargo bench -p integration-tests --bench cli` prints the figures.
//! Target, checked at the end (the process fails when it is missed): the
//! median of paired ratios `exec / get` is at most 1.3 (exec logs in once,
//! reads each distinct path once and distinct paths at the same time).

// A benchmark stops at the first failure, like a test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::json;
use vault_secret::KvVersion;
use vault_secret::testing::DevVault;

#[path = "../tests/it/cli_binary.rs"]
#[allow(dead_code, unreachable_pub)]
mod cli_binary;

const ROUNDS: usize = 40;

fn timed(mut command: std::process::Command) -> Duration {
    let started = Instant::now();
    let output = command.output().unwrap();
    let took = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    took
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let binary = cli_binary::binary();
    let vault = DevVault::start().await.unwrap();
    let v2 = vault.kv_mount(KvVersion::V2).await;
    let v1 = vault.kv_mount(KvVersion::V1).await;
    vault
        .kv_put(
            &format!("{v2}/test/path"),
            json!({"password": "p2", "user": "u2"}),
        )
        .await;
    vault
        .kv_put(&format!("{v1}/test/path"), json!({"password": "p1"}))
        .await;
    let token = vault.root_token();
    let get = || {
        let mut c = vault.command(binary, &token);
        c.args(["get", &format!("{v2}/test/path")]);
        c
    };
    let exec = || {
        let mut c = vault.command(binary, &token);
        c.args([
            "exec",
            "--secret",
            &format!("A={v2}/test/path#password"),
            "--secret",
            &format!("B={v2}/test/path#user"),
            "--secret",
            &format!("C={v1}/test/path#password"),
            "--",
            "true",
        ]);
        c
    };
    for _ in 0..3 {
        timed(get());
        timed(exec());
    }
    let mut ratios = Vec::with_capacity(ROUNDS);
    let mut gets = Vec::with_capacity(ROUNDS);
    let mut execs = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        let (g, e) = if i % 2 == 0 {
            let g = timed(get());
            (g, timed(exec()))
        } else {
            let e = timed(exec());
            (timed(get()), e)
        };
        gets.push(g.as_secs_f64() * 1e3);
        execs.push(e.as_secs_f64() * 1e3);
        ratios.push(e.as_secs_f64() / g.as_secs_f64());
    }
    // What starting the command itself costs, with nothing read.
    let bare: Vec<f64> = (0..ROUNDS)
        .map(|_| timed(std::process::Command::new("true")).as_secs_f64() * 1e3)
        .collect();
    let ratio = median(ratios);
    println!("CLI wall time on a local OpenBao, {ROUNDS} paired rounds (after 3 warm-up pairs):");
    println!(
        "{:<58} median {:>8.2} ms",
        "vault-secret get <path>",
        median(gets)
    );
    println!(
        "{:<58} median {:>8.2} ms",
        "vault-secret exec (3 secrets, 2 paths, 2 mounts) -- true",
        median(execs)
    );
    println!(
        "{:<58} median {:>8.2} ms",
        "`true` started on its own (exec's share of the difference)",
        median(bare)
    );
    let pass = ratio <= 1.3;
    println!(
        "{} exec / get paired median {ratio:.3} (target <= 1.3)",
        if pass { "[ ok ]" } else { "[MISS]" }
    );
    drop(vault);
    if !pass {
        std::process::exit(1);
    }
}
