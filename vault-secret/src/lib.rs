//! Read secrets from HashiCorp Vault (or OpenBao): KV v1 and v2, any mount;
//! token, AppRole and Kubernetes authentication; a client a service holds,
//! a one-liner, and adapters for secret-core chains, figment and config-rs.
//!
//! ```no_run
//! use vault_secret::VaultClient;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), vault_secret::Error> {
//!     // VAULT_ADDR=https://vault.example.com:8200
//!     // VAULT_ROLE_ID=... VAULT_SECRET_ID=...  (or VAULT_TOKEN, or
//!     // VAULT_CREDENTIALS='{"VAULT_ROLE_ID": "...", "VAULT_SECRET_ID": "..."}')
//!     let vault = VaultClient::from_env().await?; // build once, clone freely
//!     let mapping = vault.read("secret/test/path").await?.to_mapping()?;
//!     let password = vault.read("secret/test/path#password").await?;
//!     println!("{} keys, {} bytes", mapping.len(), password.expose_secret().len());
//!     vault.shutdown().await // revokes the token it logged in with
//! }
//! ```
//!
//! - [`VaultClient`]: one server, one login and its state, built once and
//!   held by a service; [`VaultClient::builder`] has a setter for every
//!   setting and typed credentials (`.token(..)`, `.approle(..)`,
//!   `.kubernetes(..)`), and `.cache(..)` turns on the [read cache](cache).
//! - [`VaultSecret`], the one-liner (`VaultSecret::new("secret/test/path").run().await`,
//!   or `run_blocking()`): settings from the environment on each call.
//! - [`VaultSource`]: Vault as a [`secret_core::SecretSource`], to put in a
//!   [`SecretChain`](secret_core::SecretChain) after the local context.
//! - `VaultProvider` (feature `figment`) and `VaultConfigSource` (feature
//!   `config`): secrets in a figment `Figment` or a config-rs `Config`.
//! - [`VaultClient::lease`]: dynamic secrets (database credentials, PKI
//!   certificates) whose [`lease`] the client renews, replaces before
//!   it ends and revokes at shutdown.
//! - [`VaultConfig`]: the address, namespace, TLS and timeouts;
//!   [`variables`] lists every environment variable read.
//! - `testing` (feature `testing`): a throwaway dev server and a mock for
//!   your own tests.
//!
//! # Credentials
//!
//! Each method's keys come from the variables of the same names, or all of
//! them from one variable, `VAULT_CREDENTIALS`, holding a JSON mapping of
//! those keys (it wins as a whole when it exists; it is looked up through
//! the local chain, name configurable), or from the builder's typed
//! setters. Methods are tried in this order; the first whose keys are all
//! present is used, and when the server rejects it the next configured one
//! is tried:
//!
//! 1. token: `VAULT_TOKEN` (as a variable, else `~/.vault-token`);
//! 2. AppRole: `VAULT_ROLE_ID`, `VAULT_SECRET_ID` (mount `VAULT_APPROLE_PATH`, default `approle`);
//! 3. Kubernetes: `VAULT_KUBE_AUTH_ROLE`, `VAULT_KUBE_AUTH_PATH` (mount, default
//!    `kubernetes`), `VAULT_KUBE_TOKEN_FILE` (default the pod's service-account token).
//!
//! # Behaviour under failure
//!
//! Connection errors, 412, 429 (honouring `Retry-After`) and 500/502/503/504
//! are retried `VAULT_MAX_RETRIES` times (default 2) with jittered backoff;
//! the answers a standby gives during a leader election are retried for up
//! to 15 s; each request is bounded by `VAULT_CLIENT_TIMEOUT` and each call
//! by a deadline. A token obtained by login is renewed at two thirds of its
//! TTL and replaced by a new login near its max TTL; [`VaultClient::shutdown`]
//! revokes it. A token the user supplied is never renewed nor revoked.
//! Answers are parsed only as far as each call needs, so older Vault
//! versions, Vault-compatible servers and proxies that leave envelope
//! fields out are read alike.

// Layers, each using only those above it in this list: config, input,
// credentials -> transport -> api -> auth -> token -> mounts, kv, inspect
// -> client, builder -> defaults -> secret, source, the adapters (and the
// CLI on top).
// What the figment and config-rs adapters share.
#[cfg(any(feature = "figment", feature = "config"))]
mod adapter;
mod api;
mod auth;
mod batch;
mod blocking;
mod builder;
pub mod cache;
mod client;
mod config;
#[cfg(feature = "config")]
mod config_source;
mod credentials;
mod defaults;
mod error;
mod failure;
#[cfg(feature = "figment")]
mod figment_provider;
mod input;
mod inspect;
mod jwt;
mod kv;
pub mod lease;
mod mounts;
mod path;
mod secret;
mod source;
// Testing code that reads Vault: a dev server and a mock (documented inside).
#[cfg(feature = "testing")]
pub mod testing;
mod tls;
mod token;
mod transport;
pub mod variables;

pub use builder::ClientBuilder;
pub use cache::{CacheOptions, CacheStats};
pub use client::VaultClient;
pub use config::{DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, VaultConfig};
#[cfg(feature = "config")]
pub use config_source::VaultConfigSource;
pub use credentials::{DEFAULT_CREDENTIALS_SECRET, DEFAULT_KUBE_TOKEN_FILE};
pub use error::{
    AuthAttempt, Cause, ConfigKind, Error, IncompleteMethod, LeaseLostKind, ReadApi, TransportKind,
};
#[cfg(feature = "figment")]
pub use figment_provider::VaultProvider;
pub use inspect::{Health, TokenInfo};
pub use jwt::JwtClaims;
pub use lease::{LeaseEvent, LeaseInfo, LeaseLost, LeaseOptions, LeasedSecret};
pub use mounts::{KvVersion, MountReport};
pub use secret::VaultSecret;
pub use source::VaultSource;

/// The README's examples, compiled as doc tests so they stay true (with
/// the adapters' features, whose examples need them; CI runs every feature).
#[cfg(all(doctest, feature = "figment", feature = "config", feature = "testing"))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
