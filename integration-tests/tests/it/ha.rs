//! A three-node HA cluster (`bao server -dev -dev-three-node`): reads
//! through a standby ride out leader elections.
//!
//! The cluster listens on the fixed ports 8200-8202 (TLS, its own CA), so
//! the test checks they are free first and skips, saying why, when they are
//! not. It runs in a process group of its own, with its data, TLS files and
//! home directory in a temporary directory, and is stopped when the guard
//! drops, a panic included (and when the test process dies: the launcher
//! stops it when its standard input reaches end of file).

use std::fs::File;
use std::io::Read as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use secret_core::Env;
use serde_json::{Value, json};
use tempfile::TempDir;
use vault_secret::{VaultClient, VaultSecret};

use crate::harness::{Admin, unique};
use crate::support::{approle_credentials, read_policy};

/// The API ports `-dev-three-node` always uses.
const PORTS: [u16; 3] = [8200, 8201, 8202];

/// Step-downs in the test, and the least time between two of them (closer
/// ones once left the cluster without a leader for over 15 s).
const STEP_DOWNS: usize = 5;
const STEP_DOWN_SPACING: Duration = Duration::from_secs(8);
/// How long a step-down may take to show a new leader in `sys/leader`.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Reads in the test (at least; they go on until the last election is over).
const READS: usize = 300;
const READ_PAUSE: Duration = Duration::from_millis(120);

/// Runs the server and stops it when standard input reaches end of file
/// (same scheme as the harness's launcher).
const LAUNCHER: &str = r#"
exec 3<&0
"$BAO_IT_BIN" server "$@" </dev/null 3<&- &
server=$!
(read -r _ignored <&3; kill "$server" 2>/dev/null) &
watcher=$!
exec 3<&-
wait "$server"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// A running `-dev-three-node` cluster; stopped on drop.
struct Cluster {
    child: Child,
    keep_alive: Option<ChildStdin>,
    /// Node API addresses, `https://127.0.0.1:8200` etc.
    nodes: Vec<String>,
    ca_cert: PathBuf,
    log: PathBuf,
    // Last: removed after the server stopped.
    dir: TempDir,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("pid", &self.child.id())
            .field("nodes", &self.nodes)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// Why there is no cluster.
enum NoCluster {
    /// Something else holds the fixed ports: skip.
    PortsTaken(String),
    Failed(String),
}

impl Cluster {
    async fn start() -> Result<Cluster, NoCluster> {
        if let Some(port) = PORTS
            .iter()
            .find(|p| TcpListener::bind(("127.0.0.1", **p)).is_err())
        {
            return Err(NoCluster::PortsTaken(format!("port {port} is in use")));
        }
        let bao =
            vault_secret::testing::server_binary().map_err(|e| NoCluster::Failed(e.to_string()))?;
        let dir = tempfile::Builder::new()
            .prefix("bao-it-ha-")
            .tempdir()
            .map_err(|e| NoCluster::Failed(format!("temp dir: {e}")))?;
        let log_path = dir.path().join("server.log");
        let cluster_json = dir.path().join("cluster.json");
        let log = File::create(&log_path).map_err(|e| NoCluster::Failed(e.to_string()))?;
        let err_log = log
            .try_clone()
            .map_err(|e| NoCluster::Failed(e.to_string()))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(LAUNCHER)
            .arg("bao-it-ha-launcher")
            .args([
                "-dev",
                "-dev-three-node",
                "-dev-root-token-id=root",
                "-dev-no-store-token",
            ])
            .arg(format!("-dev-cluster-json={}", cluster_json.display()))
            .env("BAO_IT_BIN", &bao)
            // The TLS files and the nodes' data go under TMPDIR.
            .env("TMPDIR", dir.path())
            .env("HOME", dir.path())
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_DEV_LISTEN_ADDRESS")
            .env_remove("VAULT_DEV_LISTEN_ADDRESS")
            .env_remove("BAO_DEV_ROOT_TOKEN_ID")
            .env_remove("VAULT_DEV_ROOT_TOKEN_ID")
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| NoCluster::Failed(format!("cannot start {}: {e}", bao.display())))?;
        let keep_alive = child.stdin.take();
        let mut cluster = Cluster {
            child,
            keep_alive,
            nodes: Vec::new(),
            ca_cert: PathBuf::new(),
            log: log_path,
            dir,
        };
        cluster.wait_until_ready(&cluster_json).await?;
        Ok(cluster)
    }

    async fn wait_until_ready(&mut self, cluster_json: &std::path::Path) -> Result<(), NoCluster> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::from("no cluster definition yet");
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let errors = self.log_errors();
                return Err(if errors.contains("address already in use") {
                    NoCluster::PortsTaken(errors)
                } else {
                    NoCluster::Failed(format!("the cluster exited early ({status}):\n{errors}"))
                });
            }
            if self.nodes.is_empty()
                && let Ok(text) = std::fs::read_to_string(cluster_json)
                && let Ok(def) = serde_json::from_str::<Value>(&text)
            {
                let nodes: Vec<String> = def["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n["api_address"].as_str().map(str::to_owned))
                    .collect();
                if let (3, Some(ca)) = (nodes.len(), def["ca_cert_path"].as_str()) {
                    self.nodes = nodes;
                    self.ca_cert = PathBuf::from(ca);
                }
            }
            if !self.nodes.is_empty() {
                match self.active_node().await {
                    Ok(_) => return Ok(()),
                    Err(e) => last = e,
                }
            }
            if Instant::now() >= deadline {
                return Err(NoCluster::Failed(format!(
                    "no active node within 60 s; last: {last}\n{}",
                    self.log_errors()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn admin(&self, node: &str) -> Admin {
        Admin::new(node, "root", Some(&self.ca_cert))
    }

    /// The node that says it is active (`sys/leader` `is_self`), asking
    /// each; an error naming what each said when none does.
    async fn active_node(&self) -> Result<String, String> {
        let mut said = Vec::new();
        for node in &self.nodes {
            match self.leader_of(node).await {
                Ok((true, _)) => return Ok(node.clone()),
                Ok((false, leader)) => said.push(format!("{node}: leader {leader:?}")),
                Err(e) => said.push(format!("{node}: {e}")),
            }
        }
        Err(said.join("; "))
    }

    /// `GET sys/leader` (unauthenticated) on `node`: whether it is the
    /// active node, and the leader address it names. An error (rather than
    /// the admin client's panic) when the node does not answer.
    async fn leader_of(&self, node: &str) -> Result<(bool, String), String> {
        let url = format!("{node}/v1/sys/leader");
        let pem = std::fs::read(&self.ca_cert).map_err(|e| format!("read the CA: {e}"))?;
        let ca = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("the CA: {e}"))?;
        let client = reqwest::Client::builder()
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let answer = client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = answer.status();
        let body: Value = answer
            .json()
            .await
            .map_err(|e| format!("GET {url}: HTTP {status}, body: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status} {}", body["errors"]));
        }
        Ok((
            body["is_self"].as_bool().unwrap_or(false),
            body["leader_address"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ))
    }

    /// The server's error lines (the log also holds the unseal keys and the
    /// root token of this throwaway cluster: never shown whole).
    fn log_errors(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("[ERROR]") || l.starts_with("Error") || l.contains("error:"))
            .collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Closing the pipe makes the launcher stop the server.
        self.keep_alive.take();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Last resort: the whole process group (launcher and server).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
async fn step_downs(cluster: Arc<Cluster>, leader: Arc<Mutex<String>>) -> Elections {
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
    let cluster = match Cluster::start().await {
        Ok(cluster) => Arc::new(cluster),
        Err(NoCluster::PortsTaken(why)) => {
            eprintln!(
                "SKIPPED reads_through_a_standby_ride_out_five_leader_elections: the \
                 three-node cluster needs the fixed ports 8200-8202 ({why})"
            );
            return;
        }
        Err(NoCluster::Failed(why)) => panic!("three-node cluster: {why}"),
    };
    let first_leader = cluster.active_node().await.expect("an active node");
    let admin = cluster.admin(&first_leader);

    // `secret/` is KV v1 on this cluster: a KV v2 mount of the test's own.
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
        (
            "VAULT_CACERT".to_owned(),
            cluster.ca_cert.display().to_string(),
        ),
        (
            "PREFECT__CONTEXT__SECRETS__VAULT_CREDENTIALS".to_owned(),
            credentials.to_string(),
        ),
    ];
    let path = format!("{mount}/app#password");

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
        let standbys: Vec<&String> = cluster.nodes.iter().filter(|n| **n != active).collect();
        let node = standbys[reads % standbys.len()].clone();
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
