//! What the `vault-secret` end-to-end tests share: an environment for a server.

use std::path::PathBuf;

use secret_core::{Env, SecretValue};
use serde_json::Value;
use tempfile::TempDir;
use vault_secret::{Error, VaultSecret, VaultSession};

use crate::harness::Server;

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
    pub async fn session(&self) -> std::sync::Arc<VaultSession> {
        VaultSession::builder()
            .env(self.env())
            .connect()
            .await
            .expect("a session for the test environment")
    }

    /// The environment to hand to the library.
    pub fn env(&self) -> Env {
        Env::from_map(self.vars.clone())
    }
}
