//! Looking at a server and a token, for diagnosis (`vault-secret doctor`):
//! health, what the token is, and what it may do.

use std::time::Duration;

use secrecy::SecretString;

use crate::api;
use crate::token::{Attempt, Authed};
use crate::transport::Transport;
use crate::{Error, VaultConfig};

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

/// What the server says about a client's token (never the token itself).
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

impl VaultConfig {
    /// The server's health (`sys/health`), before any credentials are looked at.
    pub async fn health(&self) -> Result<Health, Error> {
        health(&Transport::new(self.clone())?).await
    }
}

/// `sys/health` is root-only: sent without the namespace header, which
/// servers answer 400 inside a namespace.
pub(crate) async fn health(t: &Transport) -> Result<Health, Error> {
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

/// Looks `authed`'s token up (`auth/token/lookup-self`).
pub(crate) async fn token_info(
    t: &Transport,
    authed: &Authed,
) -> Result<Attempt<TokenInfo>, Error> {
    match api::lookup_self(t, &authed.token).await {
        Ok(info) => Ok(Attempt::Done(TokenInfo {
            method: authed.method,
            ttl: info.time_left(),
            renewable: info.renewable.unwrap_or(false),
            policies: info.policies.unwrap_or_default(),
        })),
        Err(f) if matches!(f.status(), Some(401 | 403)) => Ok(Attempt::TokenRejected),
        Err(f) => Err(f.into_error(t.address(), "auth/token/lookup-self")),
    }
}

/// The token's capabilities on an API path (`sys/capabilities-self`).
pub(crate) async fn capabilities(
    t: &Transport,
    token: &SecretString,
    api_path: &str,
) -> Result<Vec<String>, Error> {
    api::capabilities_self(t, token, api_path)
        .await
        .map_err(|f| f.into_error(t.address(), "sys/capabilities-self"))
}
