//! `VaultSecret`: read one secret, the way the workflow library's task did.

use std::sync::Arc;

use secret_core::{Env, SecretChain, SecretValue};

use crate::path::{SecretRef, parse_version};
use crate::{Error, KvVersion, VaultSession};

/// One secret in Vault: `VaultSecret::new("secret/test/path").run().await`.
///
/// `run` reads the address from `VAULT_ADDR` (else `vault_addr`), the
/// credentials from the `VAULT_CREDENTIALS` secret through the local chain
/// (else `VAULT_TOKEN`, else `~/.vault-token`), logs in (token, then AppRole,
/// then Kubernetes) and reads `<mount>/<path>` from a KV v1 or v2 engine,
/// whichever it is. The process's sessions are shared: the second secret
/// read with the same settings reuses the first one's login.
///
/// The path takes an optional KV v2 version and field:
/// `secret/app?version=3#password`.
#[derive(Debug, Clone)]
#[must_use]
pub struct VaultSecret {
    path: String,
    field: Option<String>,
    version: Option<u64>,
    kv_version: Option<KvVersion>,
    session: Option<Arc<VaultSession>>,
    builder: crate::SessionBuilder,
}

impl VaultSecret {
    /// The secret at `<mount>/<path>`.
    pub fn new(path: impl Into<String>) -> Self {
        VaultSecret {
            path: path.into(),
            field: None,
            version: None,
            kv_version: None,
            session: None,
            builder: VaultSession::builder(),
        }
    }

    /// Returns only this field of the secret (as `#field` in the path does).
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Reads this KV v2 version (as `?version=N` in the path does).
    pub fn version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    /// Skips KV version detection: the mount is this version.
    pub fn kv_version(mut self, version: KvVersion) -> Self {
        self.kv_version = Some(version);
        self
    }

    /// The name of the credentials secret (default `VAULT_CREDENTIALS`).
    pub fn credentials_secret(mut self, name: impl Into<String>) -> Self {
        self.builder = self.builder.credentials_secret(name);
        self
    }

    /// The chain the credentials secret is looked up in (default: local context, then environment).
    pub fn chain(mut self, chain: SecretChain) -> Self {
        self.builder = self.builder.chain(chain);
        self
    }

    /// Reads variables from `env` instead of the process environment.
    pub fn env(mut self, env: Env) -> Self {
        self.builder = self.builder.env(env);
        self
    }

    /// The server's address, instead of `VAULT_ADDR`/`vault_addr`.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.builder = self.builder.address(address);
        self
    }

    /// Uses this session (and its login) instead of resolving one.
    pub fn session(mut self, session: Arc<VaultSession>) -> Self {
        self.session = Some(session);
        self
    }

    /// Reads the secret: its key/value mapping as a JSON [`SecretValue`], or
    /// the one field asked for (a string field as text).
    pub async fn run(&self) -> Result<SecretValue, Error> {
        let mut secret_ref = SecretRef::parse(&self.path)?;
        if let Some(field) = &self.field {
            secret_ref.field = Some(field.clone());
        }
        if let Some(version) = self.version {
            parse_version(&version.to_string()).map_err(|reason| Error::InvalidPath {
                path: self.path.clone(),
                reason,
            })?;
            secret_ref.version = Some(version);
        }
        let session = match &self.session {
            Some(session) => session.clone(),
            None => self.builder.clone().connect().await?,
        };
        session.read_ref(&secret_ref, self.kv_version).await
    }

    /// [`run`](Self::run) for callers without an async runtime.
    ///
    /// Errors (rather than blocking a runtime's thread) when called from inside one.
    pub fn run_blocking(&self) -> Result<SecretValue, Error> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::config(
                "run_blocking",
                "called from inside an async runtime; use `run().await` there",
            ));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::config("run_blocking", format!("cannot start a runtime: {e}")))?;
        runtime.block_on(self.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error `secret` fails with.
    async fn failure(secret: VaultSecret) -> Error {
        secret.run().await.expect_err("the read should fail")
    }

    #[tokio::test]
    async fn bad_inputs_fail_before_any_network() {
        let env = Env::from_map([("VAULT_TOKEN", "t")]);
        let err = failure(VaultSecret::new("secret").env(env.clone())).await;
        assert!(matches!(err, Error::InvalidPath { .. }), "{err}");
        let err = failure(VaultSecret::new("secret/app").version(0).env(env.clone())).await;
        assert!(err.to_string().contains("versions start at 1"), "{err}");
        let err = failure(VaultSecret::new("secret/app").env(env)).await;
        assert!(matches!(err, Error::MissingAddress), "{err}");
    }

    #[tokio::test]
    async fn no_credentials_names_the_three_methods() {
        let env = Env::from_map([
            ("VAULT_ADDR", "http://127.0.0.1:1"),
            ("HOME", "/nonexistent"),
        ]);
        let err = failure(VaultSecret::new("secret/app").env(env)).await;
        let msg = err.to_string();
        assert!(matches!(err, Error::NoCredentials { .. }), "{msg}");
        for method in ["token:", "approle:", "kubernetes:"] {
            assert!(msg.contains(method), "{msg}");
        }
    }

    #[test]
    fn debug_never_shows_credentials_or_values() {
        let local = secret_core::LocalContext::builder()
            .secret(
                "VAULT_CREDENTIALS",
                SecretValue::text(r#"{"VAULT_TOKEN": "hunter2-in-chain"}"#),
            )
            .build()
            .unwrap();
        let secret = VaultSecret::new("secret/app#password")
            .env(Env::from_map([("VAULT_TOKEN", "hunter2-in-env")]))
            .chain(SecretChain::first_try("local", local));
        let shown = format!("{secret:?} {secret:#?}");
        assert!(shown.contains("secret/app#password"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[tokio::test]
    async fn run_blocking_inside_a_runtime_is_an_error_not_a_hang() {
        let err = VaultSecret::new("secret/app").run_blocking().unwrap_err();
        assert!(err.to_string().contains("run().await"), "{err}");
    }

    #[test]
    fn run_blocking_without_a_runtime_runs() {
        let env = Env::from_map([("VAULT_TOKEN", "t")]);
        let err = VaultSecret::new("secret/app")
            .env(env)
            .run_blocking()
            .unwrap_err();
        assert!(matches!(err, Error::MissingAddress), "{err}");
    }

    #[tokio::test]
    async fn unreachable_server_is_a_transport_error_naming_the_address() {
        // Port 1 on loopback refuses connections at once.
        let env = Env::from_map([
            ("VAULT_ADDR", "http://127.0.0.1:1"),
            ("VAULT_TOKEN", "hunter2"),
        ]);
        let err = failure(VaultSecret::new("secret/app").env(env)).await;
        let msg = err.to_string();
        assert!(matches!(err, Error::Transport { .. }), "{msg}");
        assert!(
            msg.contains("http://127.0.0.1:1") && !msg.contains("hunter2"),
            "{msg}"
        );
    }
}
