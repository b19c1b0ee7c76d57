//! What the `vault-secret` end-to-end tests share: an environment for a server.

use std::path::PathBuf;

use secret_core::{Env, SecretValue};
use serde_json::Value;
use tempfile::TempDir;
use vault_secret::{Error, VaultClient, VaultSecret};

use crate::harness::{Admin, Server, unique};

/// An isolated environment for the library: `VAULT_ADDR` of `server`, an
/// empty home directory (no `~/.vault-token`, no config file) and `vars`.
#[derive(Debug)]
pub struct TestEnv {
    vars: Vec<(String, String)>,
    home: TempDir,
}

impl TestEnv {
    /// `VAULT_ADDR` set to the server, nothing else.
    pub fn new(server: &Server) -> Self {
        let home = tempfile::tempdir().expect("temp home");
        let mut vars = vec![
            ("VAULT_ADDR".to_owned(), server.addr().to_owned()),
            ("HOME".to_owned(), home.path().display().to_string()),
        ];
        if let Some(ca) = server.ca_cert_path() {
            vars.push(("VAULT_CACERT".to_owned(), ca.display().to_string()));
        }
        TestEnv { vars, home }
    }

    /// Adds (or replaces) a variable.
    pub fn set(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.retain(|(n, _)| n != name);
        self.vars.push((name.to_owned(), value.into()));
        self
    }

    /// Removes a variable.
    pub fn unset(mut self, name: &str) -> Self {
        self.vars.retain(|(n, _)| n != name);
        self
    }

    /// Sets `PREFECT__CONTEXT__SECRETS__VAULT_CREDENTIALS` to this JSON mapping.
    pub fn credentials(self, creds: Value) -> Self {
        self.set(
            "PREFECT__CONTEXT__SECRETS__VAULT_CREDENTIALS",
            creds.to_string(),
        )
    }

    /// The home directory (empty unless a test writes to it).
    pub fn home(&self) -> PathBuf {
        self.home.path().to_owned()
    }

    /// Reads `path` with `VaultSecret` in this environment.
    pub async fn read(&self, path: impl Into<String>) -> Result<SecretValue, Error> {
        VaultSecret::new(path).env(self.env()).run().await
    }

    /// The shared session for this environment's settings and credentials.
    pub async fn session(&self) -> VaultClient {
        VaultClient::builder()
            .env(self.env())
            .build()
            .await
            .expect("a session for the test environment")
    }

    /// The environment to hand to the library.
    pub fn env(&self) -> Env {
        Env::from_map(self.vars.clone())
    }
}

/// Formatted log output kept in memory, for tests that read what the
/// library logged (hand `move || capture.clone()` to a `fmt` subscriber's
/// `with_writer`).
#[derive(Clone, Debug, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Everything captured so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many bytes were captured so far (a mark for [`since`](Self::since)).
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text captured from byte `from` on.
    pub fn since(&self, from: usize) -> String {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes[from.min(bytes.len())..]).into_owned()
    }
}

/// A new policy, named after `prefix`, that may read the API path
/// `api_path` (e.g. `kv/data/app`, or `kv/*`). Returns its name.
pub async fn read_policy(admin: &Admin, prefix: &str, api_path: &str) -> String {
    let policy = unique(prefix);
    admin
        .put_policy(
            &policy,
            &format!("path \"{api_path}\" {{ capabilities = [\"read\"] }}"),
        )
        .await;
    policy
}

/// An AppRole auth mount of its own (named after `prefix`) with role `role`
/// holding `policies`: the `VAULT_CREDENTIALS` mapping that logs in with it.
pub async fn approle_credentials(
    admin: &Admin,
    prefix: &str,
    role: &str,
    policies: &[&str],
) -> Value {
    let approle = unique(prefix);
    admin.enable_auth(&approle, "approle").await;
    let (role_id, secret_id) = admin.approle_role(&approle, role, policies).await;
    serde_json::json!({
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID": secret_id,
        "VAULT_APPROLE_PATH": approle,
    })
}

/// The accessors of every live token (`LIST auth/token/accessors`, with
/// `admin`'s root token), sorted: tests compare them before and after to
/// show that no token was left behind.
pub async fn live_tokens(admin: &Admin) -> Vec<String> {
    let body = admin
        .list("auth/token/accessors")
        .await
        .expect_ok("LIST auth/token/accessors");
    let mut keys: Vec<String> = body["data"]["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    keys
}
