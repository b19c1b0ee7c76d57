//! `VaultSecret`: read (or set) one secret with settings from the
//! environment, the design's one-liner.

use secret_core::{Env, SecretValue};
use serde::de::DeserializeOwned;

use crate::builder::ClientBuilder;
use crate::client::VaultClient;
use crate::defaults;
use crate::error::Error;
use crate::kv_write::{WriteData, Written};
use crate::mounts::KvVersion;
use crate::path::{SecretRef, parse_version};

/// One secret in Vault: `VaultSecret::new("secret/test/path").run().await`.
///
/// `run` reads the address from `VAULT_ADDR` (else `vault_addr`), the
/// credentials from the `VAULT_CREDENTIALS` secret (a variable holding a
/// JSON mapping; else `VAULT_TOKEN` or the AppRole / Kubernetes variables,
/// else `~/.vault-token`), logs in (token, then AppRole, then Kubernetes)
/// and reads `<mount>/<path>` from a KV v1 or v2 engine, whichever it is.
/// Settings are read on every call, so a changed variable is seen at once;
/// the login is not: calls with the same settings share a default client
/// (see [`shutdown_default_clients`](crate::shutdown_default_clients)). A service that reads
/// secrets over its lifetime holds a [`VaultClient`] instead and passes it
/// with [`client`](Self::client).
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
    client: Option<VaultClient>,
    builder: ClientBuilder,
}

impl VaultSecret {
    /// The secret at `<mount>/<path>`.
    pub fn new(path: impl AsRef<str>) -> Self {
        VaultSecret {
            path: path.as_ref().to_owned(),
            field: None,
            version: None,
            kv_version: None,
            client: None,
            builder: VaultClient::builder(),
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

    /// Reads variables from `env` instead of the process environment.
    pub fn env(mut self, env: Env) -> Self {
        self.builder = self.builder.env(env);
        self
    }

    /// Resolves the client with this builder's settings and credentials
    /// (and the environment for the rest) instead of the environment alone:
    /// the shared default client for those settings, kept after the read
    /// (the adapters' `one_shot` instead builds a client for one load).
    pub fn builder(mut self, builder: ClientBuilder) -> Self {
        self.builder = builder;
        self
    }

    /// Reads with this client (and its login) instead of a default one.
    pub fn client(mut self, client: VaultClient) -> Self {
        self.client = Some(client);
        self
    }

    /// Reads the secret: its key/value mapping as a JSON [`SecretValue`], or
    /// the one field asked for (a string field as text).
    pub async fn run(&self) -> Result<SecretValue, Error> {
        let r = self.secret_ref()?;
        let client = match &self.client {
            Some(client) => client.clone(),
            None => defaults::client_for(&self.builder).await?,
        };
        client.read_ref(&r, self.kv_version).await
    }

    /// Reads the secret (or its field) straight into `T`; a missing or
    /// mistyped field is an error naming the secret and the field, never
    /// the value.
    pub async fn read_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(self.run().await?.deserialize()?)
    }

    fn secret_ref(&self) -> Result<SecretRef, Error> {
        let mut r = SecretRef::parse(&self.path)?;
        if let Some(field) = &self.field {
            r.field = Some(field.clone());
        }
        if let Some(version) = self.version {
            parse_version(&version.to_string()).map_err(|reason| Error::InvalidPath {
                path: self.path.clone(),
                reason,
            })?;
            r.version = Some(version);
        }
        Ok(r)
    }

    /// [`run`](Self::run) from synchronous code: a plain `fn main`, a
    /// thread of a `spawn_blocking` call, or a library callback.
    ///
    /// The read runs on the client's own runtime (the
    /// [`client`](Self::client) given, else the default client for these
    /// settings), started by the first synchronous call and stopped with the
    /// client: a plain thread drives it for the call, elsewhere its own
    /// thread runs the call while this one waits. Every call reuses the
    /// client's connections. It works from any thread and never deadlocks,
    /// but inside an async task it holds that task's thread for the read:
    /// use `run().await` there.
    pub fn run_blocking(&self) -> Result<SecretValue, Error> {
        let r = self.secret_ref()?;
        let client = match &self.client {
            Some(client) => client.clone(),
            None => defaults::client_for_blocking(&self.builder)?,
        };
        let (reader, kv) = (client.clone(), self.kv_version);
        client.block_on(async move { reader.read_ref(&r, kv).await })
    }

    /// Writes `data` as the secret's whole key/value mapping, the
    /// one-liner's other half: `VaultSecret::new("secret/app").set(&data).await`.
    /// KV v1 or v2, found as `run` finds it; on KV v2 a new version, whose
    /// number comes back. Settings and the login are as for
    /// [`run`](Self::run); the values are never logged. A `field` or
    /// `version` set on this value is refused: a write replaces the whole
    /// mapping (use [`VaultClient::patch`] to change some keys).
    ///
    /// ```no_run
    /// use vault_secret::VaultSecret;
    ///
    /// # async fn f() -> Result<(), vault_secret::Error> {
    /// let seed = serde_json::json!({"user": "app", "password": "s3cr3t"});
    /// let written = VaultSecret::new("secret/app/db").set(&seed).await?;
    /// println!("version {:?}", written.version);
    /// # Ok(()) }
    /// ```
    pub async fn set(&self, data: &dyn WriteData) -> Result<Written, Error> {
        if self.field.is_some() || self.version.is_some() {
            return Err(Error::InvalidWrite {
                path: self.path.clone(),
                operation: "write",
                reason: "a write replaces the whole mapping: drop `.field(..)` and `.version(..)`"
                    .into(),
            });
        }
        let client = match &self.client {
            Some(client) => client.clone(),
            None => defaults::client_for(&self.builder).await?,
        };
        client.write(&self.path, data).await
    }

    /// [`set`](Self::set) from synchronous code (as [`run_blocking`](Self::run_blocking)).
    pub fn set_blocking(&self, data: &dyn WriteData) -> Result<Written, Error> {
        crate::blocking::run(|| self.set(data))
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
        let secret = VaultSecret::new("secret/app#password").builder(
            VaultClient::builder()
                .env(Env::from_map([("VAULT_TOKEN", "hunter2-in-env")]))
                .chain(secret_core::SecretChain::first_try("local", local)),
        );
        let shown = format!("{secret:?} {secret:#?}");
        assert!(shown.contains("secret/app#password"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn run_blocking_inside_a_runtime_runs_and_does_not_hang() {
        let env = Env::from_map([("VAULT_TOKEN", "t")]);
        let secret = VaultSecret::new("secret/app").env(env);
        // In the async task itself, and on a spawn_blocking thread.
        let err = secret.run_blocking().unwrap_err();
        assert!(matches!(err, Error::MissingAddress), "{err}");
        let err = tokio::task::spawn_blocking(move || secret.run_blocking())
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, Error::MissingAddress), "{err}");
    }

    #[tokio::test]
    async fn set_refuses_a_field_or_version_before_any_network() {
        let env = Env::from_map([("VAULT_TOKEN", "t")]);
        let data = serde_json::json!({"k": "hunter2"});
        let err = VaultSecret::new("secret/app")
            .field("k")
            .env(env.clone())
            .set(&data)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidWrite { .. }), "{err}");
        // Settings are resolved as for `run`: no address is the first failure.
        let err = VaultSecret::new("secret/app")
            .env(env)
            .set(&data)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::MissingAddress), "{err}");
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
