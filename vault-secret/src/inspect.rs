//! Looking at a session's server, token and paths, for diagnosis (`vault-secret doctor`).

use std::time::Duration;

use crate::api;
use crate::session::Attempt;
use crate::transport::Transport;
use crate::{Error, KvVersion, VaultConfig, VaultSession};

/// The server's state, from `sys/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// Whether the server is initialized.
    pub initialized: bool,
    /// Whether it is sealed.
    pub sealed: bool,
    /// Whether this node is a standby.
    pub standby: bool,
    /// The server's version, when it says.
    pub version: Option<String>,
}

/// What the server says about the session's token (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenInfo {
    /// The method that gave the token: `token`, `approle` or `kubernetes`.
    pub method: &'static str,
    /// Time left; `None` for a token that never expires (such as a root token).
    pub ttl: Option<Duration>,
    /// Whether the token can be renewed.
    pub renewable: bool,
    /// The token's policies.
    pub policies: Vec<String>,
}

/// Where a path's secret lives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MountReport {
    /// The mount (no trailing slash), as the server reported or, when it
    /// would not say, the first segment of the path.
    pub mount: String,
    /// The KV version, when the server said.
    pub kv_version: Option<KvVersion>,
    /// False when the token may not call the preflight (`sys/internal/ui/mounts`).
    pub from_server: bool,
    /// The policy path reading the secret needs (for KV v2 `<mount>/data/<path>`);
    /// two (KV v2 first, then KV v1) when the KV version is unknown.
    pub policy_paths: Vec<String>,
}

impl VaultConfig {
    /// The server's health (`sys/health`), before any credentials are looked at.
    pub async fn health(&self) -> Result<Health, Error> {
        health(&Transport::new(self.clone())?).await
    }
}

/// `sys/health` is root-only: sent without the namespace header, which
/// servers answer 400 inside a namespace.
async fn health(t: &Transport) -> Result<Health, Error> {
    let h = api::health(t)
        .await
        .map_err(|f| f.into_error(t.address(), "sys/health"))?;
    Ok(Health {
        initialized: h.initialized.unwrap_or(true),
        sealed: h.sealed.unwrap_or(false),
        standby: h.standby.unwrap_or(false),
        version: h.version,
    })
}

impl VaultSession {
    /// The server's health; needs no token.
    pub async fn health(&self) -> Result<Health, Error> {
        health(self.transport()).await
    }

    /// Logs in if needed and looks the token up (`auth/token/lookup-self`).
    pub async fn token_info(&self) -> Result<TokenInfo, Error> {
        self.with_token(|authed| async move {
            match api::lookup_self(self.transport(), &authed.token).await {
                Ok(info) => Ok(Attempt::Done(TokenInfo {
                    method: authed.method,
                    ttl: info
                        .ttl
                        .and_then(|s| u64::try_from(s).ok())
                        .filter(|s| *s > 0)
                        .map(Duration::from_secs),
                    renewable: info.renewable.unwrap_or(false),
                    policies: info.policies.unwrap_or_default(),
                })),
                Err(f) if matches!(f.status(), Some(401 | 403)) => Ok(Attempt::TokenRejected),
                Err(f) => Err(f.into_error(self.transport().address(), "auth/token/lookup-self")),
            }
        })
        .await
    }

    /// The token's capabilities on an API path (`sys/capabilities-self`),
    /// such as `secret/data/app`.
    pub async fn capabilities(&self, api_path: &str) -> Result<Vec<String>, Error> {
        let authed = self.authed().await?;
        api::capabilities_self(self.transport(), &authed.token, api_path)
            .await
            .map_err(|f| f.into_error(self.transport().address(), "sys/capabilities-self"))
    }
}
