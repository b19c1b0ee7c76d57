//! Servers with integrated (raft) storage from a config file: the
//! persistent server ([`DevVaultBuilder::persistent`](super::DevVaultBuilder::persistent)),
//! which survives SIGKILL and restarts, and the nodes of a
//! [`DevCluster`](super::DevCluster).

use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::admin::{Admin, Method};
use super::error::{TestingError, TestingErrorKind};
use super::health::{NotReady, wait_for_health};
use super::launch::{AUDIT_CONFIG, LaunchPlan, READY_TIMEOUT, binary, is_openbao, launch, write};
use super::state::{Kind, Launched, Relaunch, ServerInner, ServerOptions};

/// The config of one raft node listening on `port` (plain http), its
/// cluster listener on `port + 1`, its data under `work_dir/raft`; a node
/// that is not the first joins the one at `join` (its API address).
pub(crate) fn node_args(
    bin: &Path,
    port: u16,
    work_dir: &Path,
    node_id: &str,
    join: Option<&str>,
) -> Result<Vec<String>, TestingError> {
    let data = work_dir.join("raft");
    std::fs::create_dir(&data).map_err(|e| {
        TestingError::caused(
            TestingErrorKind::Start,
            format!("cannot create {}", data.display()),
            e,
        )
    })?;
    let retry_join = join
        .map(|leader| format!("  retry_join {{\n    leader_api_addr = \"{leader}\"\n  }}\n"))
        .unwrap_or_default();
    let mut config = format!(
        r#"storage "raft" {{
  path = "{data}"
  node_id = "{node_id}"
{retry_join}}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
cluster_addr = "https://127.0.0.1:{cluster}"
"#,
        data = data.display(),
        cluster = port + 1,
    );
    if is_openbao(bin) {
        config.push_str(AUDIT_CONFIG);
    }
    let path = work_dir.join("raft.hcl");
    write(&path, &config)?;
    Ok(vec![format!("-config={}", path.display())])
}

/// `sys/init` with one key share: the unseal key and the root token.
pub(crate) async fn initialise(addr: &str) -> Result<(SecretString, SecretString), TestingError> {
    let answer = Admin::new(addr, "", None)
        .try_request(
            Method::PUT,
            "sys/init",
            Some(&json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await
        .map_err(|e| TestingError::new(TestingErrorKind::Start, e))?;
    let key = answer.body["keys"][0].as_str();
    let root = answer.body["root_token"].as_str();
    match (answer.is_success(), key, root) {
        (true, Some(key), Some(root)) => Ok((
            SecretString::from(key.to_owned()),
            SecretString::from(root.to_owned()),
        )),
        // The body of a refusal holds errors only, never a key.
        _ => Err(TestingError::new(
            TestingErrorKind::Start,
            format!(
                "PUT {addr}/v1/sys/init: HTTP {} {}",
                answer.status,
                answer.errors()
            ),
        )),
    }
}

/// Unseals the node at `addr` and waits until `sys/health` says `ready`.
pub(crate) async fn unseal(
    addr: &str,
    key: &SecretString,
    ready: impl Fn(u16) -> bool,
) -> Result<(), TestingError> {
    let answer = Admin::new(addr, "", None)
        .try_request(
            Method::PUT,
            "sys/unseal",
            Some(&json!({"key": key.expose_secret()})),
        )
        .await
        .map_err(|e| TestingError::new(TestingErrorKind::Start, e))?;
    if !answer.is_success() {
        return Err(TestingError::new(
            TestingErrorKind::Start,
            format!(
                "PUT {addr}/v1/sys/unseal: HTTP {} {}",
                answer.status,
                answer.errors()
            ),
        ));
    }
    wait_for_health(addr, None, ready, READY_TIMEOUT, None)
        .await
        .map(drop)
        .map_err(|e| {
            let why = match e {
                NotReady::TimedOut(last) => last,
                NotReady::Exited(status) => status.to_string(),
            };
            TestingError::new(
                TestingErrorKind::Start,
                format!("{addr} after unsealing: {why}"),
            )
        })
}

/// Launches one raft node (any `sys/health` answer will do: it starts
/// uninitialised or sealed).
pub(crate) async fn launch_node(
    bin: &Path,
    node_id: &str,
    join: Option<&str>,
) -> Result<Launched, TestingError> {
    let args = |port: u16, work_dir: &Path| node_args(bin, port, work_dir, node_id, join);
    launch(&LaunchPlan {
        bin,
        tls: false,
        args: &args,
        ready: &|_| true,
    })
    .await
}

/// A one-node raft server, initialised and unsealed.
pub(crate) async fn start_persistent(options: &ServerOptions) -> Result<ServerInner, TestingError> {
    if options.tls || !options.args.is_empty() {
        return Err(TestingError::new(
            TestingErrorKind::Start,
            "DevVault::builder().persistent() serves plain http from its own config: \
             tls() and arg() do not apply to it",
        ));
    }
    let bin = binary(options)?;
    let launched = launch_node(&bin, "n1", None).await?;
    let with_output = |e: TestingError| {
        e.with_context(format_args!(
            "--- server output ---\n{}",
            launched.process.log()
        ))
    };
    let (key, root_token) = initialise(&launched.addr).await.map_err(with_output)?;
    unseal(&launched.addr, &key, |status| status == 200)
        .await
        .map_err(with_output)?;
    let relaunch = Relaunch {
        bin,
        args: launched.args.clone(),
    };
    Ok(ServerInner::started(
        launched,
        root_token,
        Some(key),
        Kind::Persistent,
        Some(relaunch),
    ))
}

/// How long a restarted server has to answer at all (it comes back sealed).
pub(crate) const RESTART_TIMEOUT: Duration = READY_TIMEOUT;
