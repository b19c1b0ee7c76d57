//! A three-node HA cluster on free ports, for failover tests.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use secret_core::Env;
use serde_json::json;

use super::admin::{Admin, Method};
use super::binary::{default_venv_dirs, find_server_binary};
use super::credentials::Token;
use super::error::{TestingError, TestingErrorKind};
use super::raft::{initialise, launch_node, unseal};
use super::state::Launched;

/// Three OpenBao (or Vault) servers with integrated (raft) storage, each
/// from its own config file on free loopback ports (plain http), joined into
/// one HA cluster, initialised and unsealed: one active node, two standbys.
/// Every node stops when the value drops, and in any case when the test
/// process exits (the same watchdog as [`DevVault`](super::DevVault)).
/// `Debug` never shows the root token.
///
/// Standbys forward requests to the active node; `PUT sys/step-down` on the
/// active node ([`DevCluster::admin`]) hands leadership to another.
pub struct DevCluster {
    nodes: Vec<Launched>,
    root_token: SecretString,
}

impl fmt::Debug for DevCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCluster")
            .field("nodes", &self.nodes())
            .finish_non_exhaustive()
    }
}

impl DevCluster {
    /// Starts the three nodes (the binary is found as
    /// [`DevVault::start`](super::DevVault::start) finds it), initialises the
    /// first, unseals it, then unseals the two others, which join it; returns
    /// once the first is active and all three are voters.
    pub async fn start() -> Result<DevCluster, TestingError> {
        let env = Env::process();
        let bin = find_server_binary(&env, &default_venv_dirs(&env))?;
        let first = launch_node(&bin, "n1", None).await?;
        let with_output = |e: TestingError, node: &Launched| {
            e.with_context(format_args!(
                "--- output of {} ---\n{}",
                node.addr,
                node.process.log()
            ))
        };
        let (key, root_token) = initialise(&first.addr)
            .await
            .map_err(|e| with_output(e, &first))?;
        unseal(&first.addr, &key, |status| status == 200)
            .await
            .map_err(|e| with_output(e, &first))?;
        let mut nodes = vec![first];
        for id in ["n2", "n3"] {
            let node = launch_node(&bin, id, Some(&nodes[0].addr)).await?;
            // A standby answers 429 once it has joined and unsealed.
            unseal(&node.addr, &key, |status| status == 429)
                .await
                .map_err(|e| with_output(e, &node))?;
            nodes.push(node);
        }
        let cluster = DevCluster { nodes, root_token };
        cluster.wait_for_voters().await?;
        Ok(cluster)
    }

    /// Waits until all three nodes vote: a node joins as a non-voter and
    /// autopilot promotes it after a stabilisation time; a step-down before
    /// that leaves no node that can take over.
    async fn wait_for_voters(&self) -> Result<(), TestingError> {
        let leader = self.admin(&self.nodes[0].addr);
        let autopilot = json!({"server_stabilization_time": "1s", "cleanup_dead_servers": false});
        let _ = leader
            .try_request(
                Method::PUT,
                "sys/storage/raft/autopilot/configuration",
                Some(&autopilot),
            )
            .await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = leader
                .try_request(Method::GET, "sys/storage/raft/configuration", None)
                .await;
            let voters = match &answer {
                Ok(r) => r.body["data"]["config"]["servers"]
                    .as_array()
                    .map_or(0, |s| s.iter().filter(|s| s["voter"] == true).count()),
                Err(_) => 0,
            };
            if voters == self.nodes.len() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let said = match answer {
                    Ok(r) => format!("HTTP {} {}", r.status, r.body),
                    Err(e) => e,
                };
                return Err(TestingError::new(
                    TestingErrorKind::Start,
                    format!(
                        "the cluster has {voters} voters after 60 s; raft configuration: {said}"
                    ),
                )
                .with_context(self.log_errors()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The nodes' API addresses, e.g. `http://127.0.0.1:38211`.
    pub fn nodes(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.addr.as_str()).collect()
    }

    /// The cluster's root token.
    pub fn root_token(&self) -> Token {
        Token::new(self.root_token.expose_secret())
    }

    /// An admin client with the root token, talking to `node` (one of
    /// [`nodes`](Self::nodes)).
    pub fn admin(&self, node: &str) -> Admin {
        Admin::new(node, self.root_token.expose_secret(), None::<&Path>)
    }

    /// The node that says it is the active one (`GET sys/leader`,
    /// `is_self`), or what each node said when none does.
    pub async fn active_node(&self) -> Result<String, String> {
        let mut said = Vec::new();
        for node in self.nodes() {
            match self
                .admin(node)
                .try_request(Method::GET, "sys/leader", None)
                .await
            {
                Ok(r) if r.is_success() && r.body["is_self"] == true => return Ok(node.to_owned()),
                Ok(r) if r.is_success() => {
                    said.push(format!("{node}: leader {}", r.body["leader_address"]));
                }
                Ok(r) => said.push(format!("{node}: HTTP {} {}", r.status, r.errors())),
                Err(e) => said.push(format!("{node}: {e}")),
            }
        }
        Err(said.join("; "))
    }

    /// The error lines of every node's output (the output of a raft server
    /// holds no token or key: the harness initialised it through the API).
    pub fn log_errors(&self) -> String {
        let mut lines = Vec::new();
        for node in &self.nodes {
            let log = node.process.log();
            let errors: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("[ERROR]") || l.starts_with("Error"))
                .collect();
            for line in &errors[errors.len().saturating_sub(10)..] {
                lines.push(format!("{}: {line}", node.addr));
            }
        }
        lines.join("\n")
    }
}
