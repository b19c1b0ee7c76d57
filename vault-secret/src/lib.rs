//! Read secrets from HashiCorp Vault (or OpenBao): KV v1 and v2, any mount;
//! token, AppRole, Kubernetes, JWT (GitHub Actions, GitLab CI) and TLS
//! certificate authentication; a client a service holds, a one-liner, and
//! adapters for secret-core chains, figment and config-rs.
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
//!   `.kubernetes(..)`, `.jwt(..)`, `.cert_role(..)`), and `.cache(..)`
//!   turns on the [read cache](cache); [`VaultClient::inspect`] holds the
//!   diagnostics (health, login, token, capabilities, mounts).
//! - [`VaultSecret`], the one-liner (`VaultSecret::new("secret/test/path").run().await`,
//!   or `run_blocking()`): settings from the environment on each call;
//!   `.set(&mapping)` writes the secret.
//! - Writes on [`VaultClient`]: [`write`](VaultClient::write) (with
//!   check-and-set: [`write_cas`](VaultClient::write_cas) and [`Cas`]),
//!   [`patch`](VaultClient::patch) (KV v2), [`delete`](VaultClient::delete),
//!   [`delete_versions`](VaultClient::delete_versions),
//!   [`destroy_versions`](VaultClient::destroy_versions), and
//!   [`read_versioned`](VaultClient::read_versioned) for the version a
//!   check-and-set needs. A write is retried only where it cannot have been
//!   applied; a lost answer is reported as [`Error::WriteUncertain`].
//! - [`VaultSource`]: Vault as a [`secret_core::SecretSource`], to put in a
//!   [`SecretChain`](secret_core::SecretChain) after the local context.
//! - `VaultProvider` (feature `figment`) and `VaultConfigSource` (feature
//!   `config`): secrets in a figment `Figment` or a config-rs `Config`
//!   ([below](#figment-and-config-rs)).
//! - [`VaultClient::lease`]: dynamic secrets (database credentials, PKI
//!   certificates) whose [`lease`] the client renews, replaces before
//!   it ends and revokes at shutdown.
//! - [`VaultConfig`]: the address, namespace, TLS and timeouts;
//!   [`variables`] lists every environment variable read.
//! - `testing` (feature `testing`): a throwaway dev server and a mock for
//!   your own tests; its module docs are the reference.
//! - [`secret_core`], re-exported: the value, environment and chain types
//!   in this crate's signatures.
//!
//! # Paths
//!
//! A secret is `<mount>/<path>[?version=N][#field]`: `secret/billing/db`
//! (the key/value mapping), `secret/billing/db#password` (one field),
//! `secret/billing/db?version=1` (a KV v2 version). The mount and its KV
//! version are found with `sys/internal/ui/mounts`, as Vault's CLI does, so
//! nested mounts (`team/kv/app`) work; where a least-privilege token may
//! not ask, or an older server lacks the endpoint, the first segment is
//! taken as the mount and the read finds the version.
//!
//! # The client and its token
//!
//! [`VaultClient`] owns its HTTP transport, its token and the token's
//! lifetime, and its cache of mounts; clones are cheap and share them, and
//! two clients built separately share nothing. It logs in on first use,
//! renews a token it obtained at two thirds of its TTL (lazily, on the next
//! use), logs in again near the max TTL or when the server rejects the
//! token, and [`shutdown`](VaultClient::shutdown) revokes that token;
//! dropping the client leaves it to expire. A token you supply is never
//! renewed nor revoked. [`read_as`](VaultClient::read_as) deserializes a
//! secret (or one field) into your type, naming the secret and the field,
//! never the value, on a mismatch; [`read_many`](VaultClient::read_many)
//! logs in once and reads each distinct path once, distinct paths at the
//! same time.
//!
//! [`VaultSecret::run`] reads the settings from the environment on every
//! call (a changed variable is seen at once). Calls with the same settings
//! share a default client, so the login is reused: that bounded map (32
//! clients; past that, the least recently used one nobody holds is dropped
//! and its token revoked) is the crate's one piece of process-wide state,
//! and [`shutdown_default_clients`] revokes their tokens.
//!
//! # Credentials
//!
//! Give the credentials in one of three forms (where several sources hold
//! some, the first in the [`credentials`] module's precedence table wins as
//! a whole, and what lost is named in a WARN line):
//!
//! - each key as an environment variable of its own name (`VAULT_TOKEN`, or
//!   `VAULT_ROLE_ID` and `VAULT_SECRET_ID`, `VAULT_KUBE_AUTH_ROLE`,
//!   `VAULT_JWT_ROLE`, `VAULT_CERT_ROLE`), the token falling back to
//!   `~/.vault-token` as for Vault's CLI when no method is configured
//!   anywhere;
//! - all of them in one variable, `VAULT_CREDENTIALS='{"VAULT_TOKEN": "..."}'`,
//!   a JSON mapping of the same keys. When it exists it wins as a whole:
//!   none of the key variables is read. It is looked up through the local
//!   context (name configurable with `ClientBuilder::credentials_secret`);
//! - in code, with the [`ClientBuilder`]'s typed setters (`.token(..)`,
//!   `.approle(role_id, secret_id)`, `.kubernetes(role)`, `.jwt(role, token)`,
//!   `.cert_role(..)`, and their mounts), which replace the other two forms
//!   as a whole.
//!
//! | method (tried in this order) | keys (in the secret, or as variables) |
//! |---|---|
//! | token | `VAULT_TOKEN` (as a variable, else `~/.vault-token`) |
//! | AppRole | `VAULT_ROLE_ID`, `VAULT_SECRET_ID`; mount `VAULT_APPROLE_PATH` (default `approle`) |
//! | Kubernetes | `VAULT_KUBE_AUTH_ROLE`; mount `VAULT_KUBE_AUTH_PATH` (default `kubernetes`); `VAULT_KUBE_TOKEN_FILE` (default the pod's service-account token, trailing whitespace trimmed) |
//! | JWT (CI: GitHub Actions, GitLab) | `VAULT_JWT_ROLE`; mount `VAULT_JWT_PATH` (default `jwt`); the token inline `VAULT_JWT`, else from the file `VAULT_JWT_FILE` (read again at each login), else, in GitHub Actions, a fresh token from the runner's endpoint at each login, for the audience `VAULT_JWT_AUDIENCE` (default: GitHub's, `https://github.com/<owner>`) |
//! | TLS certificate | only when asked for: `VAULT_CERT_ROLE` (the role), or `VAULT_CERT_AUTH_PATH` (the mount, default `cert`); the certificate is the one `VAULT_CLIENT_CERT`/`VAULT_CLIENT_KEY` configure. A client certificate alone (mTLS to the listener) does not log in with it |
//!
//! The first method whose keys are all present is tried; a method the
//! server rejects (a 4xx) falls through to the next one configured. A local
//! problem with one (its token file missing or empty, a `VAULT_JWT` that is
//! not three dot-separated base64url parts, the Actions endpoint
//! unreachable, certificate login asked for without `VAULT_CLIENT_CERT`) is
//! a configuration error naming the key, not a failed login. With no
//! complete method the error says where the keys were looked for, names
//! the methods and the keys each lacks (a role id without a secret id is a
//! partial set), never a value.
//!
//! In GitHub Actions the job needs `permissions: id-token: write`,
//! `VAULT_ADDR` and `VAULT_JWT_ROLE`: the token is fetched from the runner
//! at each login, so nothing is stored as a CI secret. In GitLab CI, name
//! an `id_tokens` entry `VAULT_JWT` (its `aud` is the role's
//! `bound_audiences`) and set `VAULT_JWT_ROLE`.
//!
//! ## Input checks
//!
//! Every input is checked before any request, with the same rules whatever
//! its source (the credentials secret, a variable, `~/.vault-token`, a
//! builder setter, the command line). A refusal is a configuration error
//! that names the variable, key or file and says what is wrong, never what
//! the value is:
//!
//! | input | trimmed | refused |
//! |---|---|---|
//! | tokens, role and secret ids (key, variable or `~/.vault-token`) | surrounding whitespace | empty; a control character inside; more than 16 KiB |
//! | `VAULT_NAMESPACE` | whitespace, then `/` at either end (`/` alone is the root namespace) | a control character; an empty segment (`a//b`); more than 1 KiB |
//! | auth mounts (`VAULT_APPROLE_PATH`, `VAULT_KUBE_AUTH_PATH`, `VAULT_JWT_PATH`, `VAULT_CERT_AUTH_PATH`) | whitespace, then `/` at either end | empty; a control character; `?`, `#`, an empty, `.` or `..` segment |
//! | roles (`VAULT_KUBE_AUTH_ROLE`, `VAULT_JWT_ROLE`, `VAULT_JWT_AUDIENCE`, `VAULT_CERT_ROLE`) | whitespace | empty; a control character; more than 1 KiB |
//! | `VAULT_JWT`, the `VAULT_JWT_FILE` content, the Actions endpoint's answer | surrounding whitespace | as a token; not three dot-separated base64url parts |
//! | token files (`VAULT_KUBE_TOKEN_FILE`, `VAULT_JWT_FILE`, `~/.vault-token`) | the content's surrounding whitespace | missing (`~/.vault-token` only when it exists), a directory, unreadable, empty, over 64 KiB, not UTF-8, a control character inside |
//! | `VAULT_CACERT`, `VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY` (https only) | the path's whitespace | missing, a directory, unreadable, empty, over 4 MiB, no PEM certificate (key: no PEM private key) |
//! | `VAULT_CAPATH` (https only) | the path's whitespace | missing, not a directory, no file in it |
//! | `VAULT_ADDR`, `vault_addr`, `VAULT_AGENT_ADDR` | whitespace; a trailing `/v1` is dropped; any other path is kept as a reverse proxy's prefix | a control character; over 2 KiB; not an `http(s)` URL; no host; user info; a query or fragment; `http` on port 443 or `https` on port 80 |
//! | `VAULT_TLS_SERVER_NAME` | whitespace; lowercased | a control character; not a DNS name |
//! | `VAULT_MAX_RETRIES` | whitespace | not a whole number from 0 to 100 |
//! | `VAULT_CLIENT_TIMEOUT` | whitespace | not a number with an optional `ms`/`s`/`m`/`h`; zero; over 24h |
//! | a secret path | `/` at either end | a control character anywhere; over 4096 bytes; an empty, `.` or `..` segment (the message shows it escaped and cut short) |
//!
//! # Errors
//!
//! [`Error`] is one `#[non_exhaustive]` enum: `NotFound`, `FieldNotFound`,
//! `VersionDeleted`, `VersionDestroyed`, `PermissionDenied` (naming the
//! policy path needed, e.g. `secret/data/app`), `AuthFailed` (each method
//! and the server's reason), `Sealed`, `Transport`, `Server` (status,
//! endpoint, the server's messages, attempts made), and configuration
//! errors naming the variable or key. With `VAULT_NAMESPACE` set, not-found
//! and permission errors name the namespace as a possible cause. A 403 is
//! told apart by asking the server (`auth/token/lookup-self`): a token the
//! server still takes is a policy denial, one it rejects is an
//! authentication failure. None carries a token or a secret value.
//!
//! # Figment and config-rs
//!
//! `VaultProvider` (feature `figment`) is a `figment::Provider` and
//! `VaultConfigSource` (feature `config`) a `config::AsyncSource` and
//! `config::Source`, each for one secret, with the same choices:
//!
//! - Where values land: `new("secret/app")` puts the secret's keys at the
//!   top level, `.nest("database")` under `database.`, a field
//!   (`secret/db#password`) under its own name or exactly where
//!   `.at("database.password")` says.
//! - Merge order decides, as for any provider: figment's `.merge(vault)`
//!   after a file and the environment makes Vault win, `.join(vault)` lets
//!   the earlier values stand.
//! - Values keep their JSON types, so a number stored as a number extracts
//!   into a `u16`. Values written with the Vault CLI are text: `bao kv put
//!   secret/db port=6543 tls=true` stores `"6543"` and `"true"`, which
//!   figment's `extract()` refuses for a `u16` or `bool`; use
//!   `figment.extract_lossy()`, which parses such strings (config-rs
//!   converts them itself). figment's and config-rs's own type errors quote
//!   the offending value, so extract secrets into fields of the right type.
//! - Metadata and origins name the secret's path and the server's address,
//!   never a value. An absent secret or field fails unless `.optional()`;
//!   an optional one still fails when denied, unreachable or the
//!   credentials are bad.
//! - Each load builds a client the way every read here does (or takes
//!   `.one_shot(..)` settings) and revokes the token it logged in with once
//!   the load is over; `.client(vault)` reads with your client and leaves
//!   it alone. The synchronous entry points work from a plain `fn main` and
//!   from inside a runtime, even a current-thread one (the read then runs
//!   on a thread of its own).
//!
//! # TLS
//!
//! The TLS stack is a feature: `rustls` (the default: rustls with the
//! aws-lc-rs provider), `rustls-ring` (rustls with ring, no C build of
//! aws-lc), or `native-tls` (the platform's library and trust store, such as
//! OpenSSL, which corporate proxies often rely on). One is needed; to pick
//! another than the default, turn default features off:
//!
//! ```toml
//! vault-secret = { version = "0.1", default-features = false, features = ["cli", "native-tls"] }
//! ```
//!
//! When several are on, `rustls` wins, then `rustls-ring`, then `native-tls`.
//! With `rustls-ring`, ring is installed as rustls' process-wide default
//! provider unless the program installed one first. An `https` address
//! whose port speaks plain HTTP is told apart ([`TransportKind::NotTls`])
//! with rustls only; native-tls reports it as a TLS failure.
//!
//! # Behaviour under failure
//!
//! Every rule here has a test against a mock fault or a real server
//! (`integration-tests/tests/it/faults.rs`, `ha.rs`, `lifecycle.rs`).
//!
//! - **Retries**, as Vault's own Go client decides them: a connection error
//!   (refused, reset, closed before an answer, a timeout), 412, 429, 500,
//!   502, 503 and 504 are retried, for every call (reads, mount lookups,
//!   logins, renewals); no other 4xx is. `VAULT_MAX_RETRIES` retries
//!   (default 2, so 3 attempts; 0 turns them off). The wait before retry N
//!   is 250 ms doubling to at most 2 s, drawn from its upper half (jitter);
//!   a 429's `Retry-After` is honoured, as seconds or an HTTP date, within
//!   the call's deadline. The final error names the last status or cause,
//!   the endpoint and the attempts made.
//! - **Writes** (write, patch, delete, destroy) are retried only where they
//!   cannot have been applied: no connection, 412, 429, sealed, an
//!   election. A lost answer is [`Error::WriteUncertain`]; a check-and-set
//!   retried after a lost answer says a conflict may be its own.
//! - **Leader elections**: the answers a standby gives while an HA cluster
//!   elects a leader (503 `no active Vault instance found`, 500 `local node
//!   not active but active cluster node not found`) are retried on the same
//!   address for up to 15 s on top of the counted retries. A 307/308 is
//!   followed once, and only to the active node the cluster names in
//!   `sys/leader` (the token goes nowhere else); a redirect anywhere else
//!   fails at once.
//! - **Time**: `VAULT_CLIENT_TIMEOUT` bounds each request (default 60 s;
//!   connecting, at most 10 s); a whole call, retries and waits included,
//!   ends within that timeout plus 30 s ([`VaultConfig::with_deadline`]
//!   changes it). A server that never answers is an error naming the
//!   timeout, never a hang.
//! - **Sealed**: a 503 saying the server is sealed is retried like any 503,
//!   then is [`Error::Sealed`].
//! - **Tokens**: a token the client obtained is renewed with
//!   `auth/token/renew-self` once two thirds of its TTL have passed, until
//!   renewal no longer extends it; then the client logs in again shortly
//!   before it expires and revokes the token it replaces. A token the server
//!   rejects mid-run leads to one fresh login and one retry of the request.
//! - **Other servers**: answers are parsed only as far as the caller needs
//!   (`data` for a read, `auth.client_token` for a login), so `request_id`,
//!   `lease_id`, `warnings` and the like may be missing. Error bodies as
//!   `{"errors": [...]}`, `{"error": "..."}`, empty, or not JSON at all (a
//!   proxy's HTML page, named by status and content type, never echoed)
//!   give the same typed errors.
//! - **Logs**: expected outcomes (a 404 a chain moves past, a mount lookup
//!   the token may not make, a retry) log at DEBUG in the library's own
//!   spans; the library logs nothing at WARN or ERROR (a failed call is its
//!   error, returned once). No log line or `Debug` output holds a token,
//!   secret id, JWT or secret value.
//!
//! # Layers
//!
//! For contributors: the modules, lowest first. A module imports only from
//! its own layer or lower ones, always from the module that defines a name
//! (`crate::error::Error`, never the re-export `crate::Error`), and no two
//! modules import each other; `scripts/check-layers.sh` checks this list
//! against the code (CI runs it).
//!
//! 1. `error`, `variables`
//! 2. `input`, `failure`, `blocking`, `cache`
//! 3. `path`, `config`
//! 4. `batch`, `jwt`, `tls`
//! 5. `credentials`
//! 6. `transport`
//! 7. `api`
//! 8. `auth`
//! 9. `token`
//! 10. `mounts`
//! 11. `kv`, `kv_write`, `lease`
//! 12. `client`
//! 13. `builder`, `inspect`
//! 14. `defaults`
//! 15. `secret`, `source`, `adapter`
//! 16. `figment_provider`, `config_source`, `testing`
//!
//! The CLI (`src/bin/vault-secret`) sits on top and uses the crate by name.

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
pub mod credentials;
mod defaults;
mod error;
mod failure;
#[cfg(feature = "figment")]
mod figment_provider;
mod input;
mod inspect;
mod jwt;
mod kv;
mod kv_write;
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
pub use client::VaultClient;
pub use config::{DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, VaultConfig};
#[cfg(feature = "config")]
pub use config_source::VaultConfigSource;
pub use defaults::shutdown_default_clients;
pub use error::{
    AuthAttempt, ConfigKind, Error, IncompleteMethod, LeaseLostKind, ReadApi, TransportKind,
    WrappingKind,
};
#[cfg(feature = "figment")]
pub use figment_provider::VaultProvider;
pub use inspect::{Health, Inspector, TokenInfo};
pub use jwt::JwtClaims;
pub use kv_write::{Cas, VersionMetadata, Versioned, WriteData, Written};
pub use mounts::{KvVersion, MountReport};
pub use secret::VaultSecret;
pub use source::VaultSource;

/// Re-exported so callers can name the types in this crate's signatures
/// ([`SecretValue`](secret_core::SecretValue), [`Env`](secret_core::Env),
/// [`SecretChain`](secret_core::SecretChain), ...) without a second
/// dependency to keep in step.
pub use secret_core;

/// The README's examples, compiled as doc tests so they stay true (with
/// the adapters' features, whose examples need them; CI runs every feature).
#[cfg(all(doctest, feature = "figment", feature = "config", feature = "testing"))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
