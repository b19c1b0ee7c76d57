//! Looking at a session's server, token and paths, for diagnosis (`vault-secret doctor`).

use std::collections::HashMap;
use std::time::Duration;

use rustify_derive::Endpoint;
use serde::Deserialize;

use crate::error::ApiFailure;
use crate::kv::{self, KvVersion, Preflight};
use crate::path::SecretRef;
use crate::{AuthAttempt, Error, VaultConfig, VaultSession};

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

#[derive(Endpoint)]
#[endpoint(path = "sys/health", response = "HealthResponse")]
struct HealthRequest {
    // Ask for 200 whatever the state, so the body is always there to read.
    #[endpoint(query)]
    standbyok: bool,
    #[endpoint(query)]
    sealedcode: u16,
    #[endpoint(query)]
    uninitcode: u16,
    #[endpoint(query)]
    perfstandbyok: bool,
}

#[derive(Debug, Deserialize)]
struct HealthResponse {
    initialized: bool,
    sealed: bool,
    #[serde(default)]
    standby: bool,
    #[serde(default)]
    version: Option<String>,
}

#[derive(Endpoint)]
#[endpoint(
    path = "sys/capabilities-self",
    method = "POST",
    response = "HashMap<String, Vec<String>>"
)]
struct CapabilitiesSelfRequest {
    paths: Vec<String>,
}

impl VaultConfig {
    /// The server's health (`sys/health`), before any credentials are looked at.
    pub async fn health(&self) -> Result<Health, Error> {
        health(self, &self.vault_client(self.http_client()?, "")).await
    }
}

async fn health(
    config: &VaultConfig,
    client: &vaultrs::client::VaultClient,
) -> Result<Health, Error> {
    let request = HealthRequest {
        standbyok: true,
        sealedcode: 200,
        uninitcode: 200,
        perfstandbyok: true,
    };
    let h = vaultrs::api::exec_with_no_result(client, request)
        .await
        .map_err(|e| ApiFailure::from_client(e).into_error(config.base(), "sys/health"))?;
    Ok(Health {
        initialized: h.initialized,
        sealed: h.sealed,
        standby: h.standby,
        version: h.version,
    })
}

impl VaultSession {
    /// The server's health; needs no token.
    pub async fn health(&self) -> Result<Health, Error> {
        health(self.config(), &*self.client("")?).await
    }

    /// Logs in if needed and looks the token up (`auth/token/lookup-self`).
    pub async fn token_info(&self) -> Result<TokenInfo, Error> {
        let authed = self.authed().await?;
        match vaultrs::token::lookup_self(&*self.authed_client(&authed)?).await {
            Ok(mut info) => {
                // The lookup's `id` is the token itself.
                zeroize::Zeroize::zeroize(&mut info.id);
                Ok(TokenInfo {
                    method: authed.method,
                    ttl: (info.ttl > 0).then(|| Duration::from_secs(info.ttl)),
                    renewable: info.renewable.unwrap_or(false),
                    policies: info.policies,
                })
            }
            Err(e) => {
                let failure = ApiFailure::from_client(e);
                if kv::token_rejected(&failure) {
                    return Err(Error::AuthFailed {
                        attempts: vec![AuthAttempt {
                            method: authed.method,
                            reason: "the server rejected the token (permission denied)".into(),
                        }],
                    });
                }
                Err(failure.into_error(self.config().base(), "auth/token/lookup-self"))
            }
        }
    }

    /// The mount and KV version of `path` (`<mount>/<path>`), as a read would find them.
    pub async fn mount_of(&self, path: &str) -> Result<MountReport, Error> {
        let r = SecretRef::parse(path)?;
        let authed = self.authed().await?;
        let preflight = kv::preflight(&*self.authed_client(&authed)?, &r.path)
            .await
            .map_err(|f| f.into_error(self.config().base(), "sys/internal/ui/mounts"))?;
        let (mount, kv_version, from_server) = match preflight {
            Preflight::Kv { mount, version } => (mount, Some(version), true),
            Preflight::NotKv { mount, kind } => {
                return Err(Error::InvalidPath {
                    path: r.path,
                    reason: format!("`{mount}` is a `{kind}` secrets engine, not KV"),
                });
            }
            Preflight::Unknown => (r.first_segment().to_owned(), None, false),
            Preflight::TokenRejected => {
                return Err(Error::AuthFailed {
                    attempts: vec![AuthAttempt {
                        method: authed.method,
                        reason: "the server rejected the token (permission denied)".into(),
                    }],
                });
            }
        };
        let rest = r.below(&mount).unwrap_or_default();
        let policy_paths = match kv_version {
            Some(version) => vec![version.policy_path(&mount, rest)],
            None => vec![
                KvVersion::V2.policy_path(&mount, rest),
                KvVersion::V1.policy_path(&mount, rest),
            ],
        };
        Ok(MountReport {
            mount,
            kv_version,
            from_server,
            policy_paths,
        })
    }

    /// The token's capabilities on an API path (`sys/capabilities-self`),
    /// such as `secret/data/app`.
    pub async fn capabilities(&self, api_path: &str) -> Result<Vec<String>, Error> {
        let authed = self.authed().await?;
        let request = CapabilitiesSelfRequest {
            paths: vec![api_path.to_owned()],
        };
        let mut answer = vaultrs::api::exec_with_result(&*self.authed_client(&authed)?, request)
            .await
            .map_err(|e| {
                ApiFailure::from_client(e).into_error(self.config().base(), "sys/capabilities-self")
            })?;
        Ok(answer
            .remove(api_path)
            .or_else(|| answer.remove("capabilities"))
            .unwrap_or_default())
    }
}
