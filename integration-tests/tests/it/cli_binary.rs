//! The `vault-secret` CLI binary the end-to-end tests (and the CLI
//! benchmark) run: `VAULT_SECRET_BIN`, else built once with cargo.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

/// The tool's binary, built on first use.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BINARY.get_or_init(build_binary) {
        Ok(path) => path,
        Err(message) => panic!("{message}"),
    }
}

fn build_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("VAULT_SECRET_BIN").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("VAULT_SECRET_BIN={} is not a file", path.display()))
        };
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cargo = std::process::Command::new(env!("CARGO"));
    cargo
        .args([
            "build",
            "--package",
            "vault-secret",
            "--bin",
            "vault-secret",
        ])
        .args([
            "--features",
            "cli",
            "--message-format=json",
            "--manifest-path",
        ])
        .arg(&manifest);
    if !cfg!(debug_assertions) {
        cargo.arg("--release");
    }
    let output = cargo
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run cargo to build the vault-secret CLI: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the vault-secret CLI failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "vault-secret")
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo built the vault-secret CLI but named no executable".to_owned())
}

/// How long one run of the tool may take before a test fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the tool with `args` and only the variables `vars` (stdin empty,
/// output captured), killed if it outlives [`RUN_TIMEOUT`].
pub async fn run<A, K, V>(
    args: &[A],
    vars: impl IntoIterator<Item = (K, V)>,
) -> Result<Output, String>
where
    A: AsRef<OsStr>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut command = tokio::process::Command::new(binary());
    command
        .args(args)
        .env_clear()
        .envs(vars)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .map_err(|_| format!("ran longer than {RUN_TIMEOUT:?}"))?
        .map_err(|e| format!("cannot run the binary: {e}"))
}

/// The issue's `exec` example: a KV v2 secret with `password` and `user`
/// and a KV v1 secret with `password`, each at `<mount>/test/path` under
/// fresh mounts (values `p2`, `u2`, `p1`).
#[derive(Debug)]
pub struct ThreeSecrets {
    /// The KV v2 mount.
    pub v2: String,
    /// The KV v1 mount.
    pub v1: String,
}

impl ThreeSecrets {
    /// Provisions the secrets on `vault`.
    pub async fn provision(vault: &vault_secret::testing::DevVault) -> ThreeSecrets {
        use vault_secret::KvVersion;
        let v2 = vault.kv_mount(KvVersion::V2).await;
        let v1 = vault.kv_mount(KvVersion::V1).await;
        vault
            .kv_put(
                &format!("{v2}/test/path"),
                serde_json::json!({"password": "p2", "user": "u2"}),
            )
            .await;
        vault
            .kv_put(
                &format!("{v1}/test/path"),
                serde_json::json!({"password": "p1"}),
            )
            .await;
        ThreeSecrets { v2, v1 }
    }

    /// `exec --secret A=<v2>/test/path#password --secret B=<v2>/test/path#user
    /// --secret C=<v1>/test/path#password` (the command to follow).
    pub fn exec_args(&self) -> Vec<String> {
        let (v2, v1) = (&self.v2, &self.v1);
        vec![
            "exec".to_owned(),
            "--secret".to_owned(),
            format!("A={v2}/test/path#password"),
            "--secret".to_owned(),
            format!("B={v2}/test/path#user"),
            "--secret".to_owned(),
            format!("C={v1}/test/path#password"),
        ]
    }
}
