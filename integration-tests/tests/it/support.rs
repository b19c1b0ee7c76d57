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
    pub async fn read(&self, path: impl AsRef<str>) -> Result<SecretValue, Error> {
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

pub use crate::log_capture::LogCapture;

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
