//! A three-node HA cluster ([`DevCluster`]: three raft servers from config
//! files on free ports): reads through a standby ride out leader
//! elections. It never skips: a cluster that cannot start fails the test
//! with the reason.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use secret_core::Env;
use serde_json::json;
use vault_secret::testing::DevCluster;
use vault_secret::{VaultClient, VaultSecret};

use crate::harness::unique;
use crate::support::{approle_credentials, read_policy};

/// Step-downs in the test, and the least time between two of them (closer
/// ones once left the cluster without a leader for over 15 s).
const STEP_DOWNS: usize = 5;
const STEP_DOWN_SPACING: Duration = Duration::from_secs(8);
/// How long a step-down may take to show a new leader in `sys/leader`.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Reads in the test (at least; they go on until the last election is over).
const READS: usize = 300;
const READ_PAUSE: Duration = Duration::from_millis(120);

/// What the step-down task saw.
#[derive(Debug, Default)]
struct Elections {
    /// (old leader, new leader, time until `sys/leader` named the new one).
    changes: Vec<(String, String, Duration)>,
    /// Step-downs after which no new leader showed in time.
    stuck: Vec<String>,
}

/// Steps the active node down `STEP_DOWNS` times, each after the previous
/// election is over and `STEP_DOWN_SPACING` after the previous step-down;
/// keeps `leader` up to date for the readers.
async fn step_downs(cluster: Arc<DevCluster>, leader: Arc<Mutex<String>>) -> Elections {
    let mut seen = Elections::default();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for _ in 0..STEP_DOWNS {
        let started = Instant::now();
        let old = match cluster.active_node().await {
            Ok(node) => node,
            Err(e) => {
                seen.stuck
                    .push(format!("no active node before a step-down: {e}"));
                break;
            }
        };
        let answer = cluster
            .admin(&old)
            .request(Method::PUT, "sys/step-down", None)
            .await;
        assert!(
            answer.is_success(),
            "PUT {old}/v1/sys/step-down: HTTP {} {}",
            answer.status,
            answer.errors()
        );
        let new = loop {
            match cluster.active_node().await {
                Ok(node) if node != old => break Some(node),
                _ if started.elapsed() > ELECTION_TIMEOUT => break None,
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        match new {
            Some(new) => {
                *leader.lock().unwrap_or_else(|p| p.into_inner()) = new.clone();
                seen.changes.push((old, new, started.elapsed()));
            }
            None => {
                seen.stuck.push(format!(
                    "{old} stepped down; no other node active within {ELECTION_TIMEOUT:?}"
                ));
                break;
            }
        }
        let next = started + STEP_DOWN_SPACING;
        tokio::time::sleep(next.saturating_duration_since(Instant::now())).await;
    }
    seen
}

/// One cold read through `node`: a session of its own (AppRole login),
/// the read, and the revocation of its token.
async fn read_through(
    node: &str,
    vars: &[(String, String)],
    path: &str,
    expected: &str,
) -> Result<(), String> {
    let mut vars = vars.to_vec();
    vars.push(("VAULT_ADDR".to_owned(), node.to_owned()));
    let session = VaultClient::builder()
        .env(Env::from_map(vars))
        .build()
        .await
        .map_err(|e| format!("session: {e}"))?;
    let read = VaultSecret::new(path).client(session.clone()).run().await;
    let revoked = session.shutdown().await;
    let value = read.map_err(|e| format!("read: {e}"))?;
    if value.expose_secret() != expected {
        return Err("read: a different value than was written".to_owned());
    }
    revoked.map_err(|e| format!("revoke: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_through_a_standby_ride_out_five_leader_elections() {
    let cluster = Arc::new(DevCluster::start().await.expect("a three-node cluster"));
    let first_leader = cluster.active_node().await.expect("an active node");
    let admin = cluster.admin(&first_leader);

    // A KV v2 mount of the test's own.
    let mount = unique("ha-kv");
    admin.mount_kv(&mount, 2).await;
    let password = unique("ha-password");
    admin
        .kv2_put(&mount, "app", json!({"password": password}))
        .await;
    let policy = read_policy(&admin, "ha-pol", &format!("{mount}/data/app")).await;
    // One secret id for every read (the default allows unlimited uses).
    let credentials = approle_credentials(&admin, "ha-approle", "reader", &[&policy]).await;
    let home = tempfile::tempdir().expect("temp home");
    let vars = vec![
        ("HOME".to_owned(), home.path().display().to_string()),
        ("VAULT_CREDENTIALS".to_owned(), credentials.to_string()),
    ];
    let path = format!("{mount}/app#password");
    // A fresh KV v2 mount answers 400 ("waiting for the primary to
    // upgrade") on a standby for a moment: wait until each serves it.
    for node in cluster.nodes() {
        let started = Instant::now();
        loop {
            let answer = cluster
                .admin(node)
                .try_request(Method::GET, &format!("{mount}/data/app"), None)
                .await;
            match answer {
                Ok(r) if r.is_success() => break,
                other if started.elapsed() > Duration::from_secs(30) => {
                    panic!("{node} does not serve the new mount: {other:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    // This thread runs the reads (block_on), so a thread-local subscriber
    // sees their retries.
    // The library's debug log, kept in memory to count its retries (never printed).
    let captured = crate::support::LogCapture::default();
    let writer = captured.clone();
    let _log = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    );
    let mut retried = 0usize;
    let mut retry_answers: std::collections::BTreeMap<String, usize> = Default::default();

    let leader = Arc::new(Mutex::new(first_leader.clone()));
    let stepper = tokio::spawn(step_downs(cluster.clone(), leader.clone()));
    let started = Instant::now();
    let mut reads = 0usize;
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    while reads < READS || !stepper.is_finished() {
        // A node that is not the active one, as last seen: round robin
        // over the other two.
        let active = leader.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let nodes = cluster.nodes();
        let standbys: Vec<&str> = nodes.into_iter().filter(|n| *n != active).collect();
        let node = standbys[reads % standbys.len()].to_owned();
        let t = Instant::now();
        let log_from = captured.len();
        let outcome = read_through(&node, &vars, &path, &password).await;
        let took = t.elapsed();
        slowest = slowest.max(took);
        let log = captured.since(log_from);
        let retries: Vec<&str> = log.lines().filter(|l| l.contains("retrying")).collect();
        if !retries.is_empty() {
            retried += 1;
        }
        for line in retries {
            // `failure=HTTP 503: no active ...`: the status, or the transport failure.
            let what = line
                .split("failure=")
                .nth(1)
                .map(|f| f.split(':').next().unwrap_or(f).to_owned())
                .unwrap_or_else(|| "?".to_owned());
            *retry_answers.entry(what).or_default() += 1;
        }
        if let Err(e) = outcome {
            let line = format!(
                "read {reads} at {:.1} s via {node} ({:.1} s): {e}",
                started.elapsed().as_secs_f64(),
                took.as_secs_f64()
            );
            eprintln!("{line}");
            failures.push(line);
        }
        reads += 1;
        tokio::time::sleep(READ_PAUSE).await;
    }
    let elections = stepper.await.expect("the step-down task");
    let duration = started.elapsed();
    eprintln!(
        "ha: {reads} reads in {:.1} s, {} failed, {retried} retried ({retry_answers:?}), \
         slowest {:.1} s; leader changes: {}",
        duration.as_secs_f64(),
        failures.len(),
        slowest.as_secs_f64(),
        elections
            .changes
            .iter()
            .map(|(old, new, t)| format!("{old} -> {new} in {:.1} s", t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );

    assert!(
        elections.stuck.is_empty(),
        "the cluster did not elect a new leader: {:?}\n{}",
        elections.stuck,
        cluster.log_errors()
    );
    assert_eq!(
        elections.changes.len(),
        STEP_DOWNS,
        "leader changes: {:?}",
        elections.changes
    );
    assert!(
        elections.changes.iter().all(|(old, new, _)| old != new),
        "a step-down left the same leader: {:?}",
        elections.changes
    );
    assert!(reads >= READS, "only {reads} reads");
    assert!(
        failures.is_empty(),
        "{} of {reads} reads through a standby failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
