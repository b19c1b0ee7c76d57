//! Looking at a server and a client's login, for diagnosis (`vault-secret
//! doctor`), apart from the reads: [`VaultClient::inspect`] gives an
//! [`Inspector`] with the server's health, where the credentials came from
//! and which methods they configure, the token's details and capabilities,
//! and the mount a path is on.
//!
//! ```no_run
//! use vault_secret::VaultClient;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), vault_secret::Error> {
//!     let vault = VaultClient::from_env().await?;
//!     let inspect = vault.inspect();
//!     println!("sealed: {}", inspect.health().await?.sealed);
//!     println!("methods: {:?} (from {})", inspect.auth_methods(), inspect.credentials_origin());
//!     let token = inspect.token_info().await?;
//!     println!("{} token, policies {:?}", token.method, token.policies);
//!     let mount = inspect.mount_of("secret/app").await?;
//!     println!("mount {:?}", mount);
//!     Ok(())
//! }
//! ```

use std::time::Duration;

use secrecy::SecretString;

use crate::api;
use crate::client::VaultClient;
use crate::config::VaultConfig;
use crate::error::Error;
use crate::jwt::JwtClaims;
use crate::mounts::{self, MountReport};
use crate::path::SecretRef;
use crate::token::{Attempt, Authed};
use crate::transport::Transport;

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

/// A client's diagnostics: [`VaultClient::inspect`]. Each call goes through
/// the client (its transport, and its login where one is needed).
#[derive(Debug, Clone, Copy)]
pub struct Inspector<'a> {
    client: &'a VaultClient,
}

// Here rather than in `client`: the diagnostics use the client, not the reverse.
impl VaultClient {
    /// The client's diagnostics (health, login, token, capabilities,
    /// mounts), kept apart from its reads.
    pub fn inspect(&self) -> Inspector<'_> {
        Inspector { client: self }
    }
}

impl Inspector<'_> {
    /// The server's health (`sys/health`); needs no token.
    pub async fn health(&self) -> Result<Health, Error> {
        health(self.client.transport()).await
    }

    /// Where the credentials came from (a secret's name, `VAULT_TOKEN`, a
    /// file, the builder), for messages.
    pub fn credentials_origin(&self) -> &str {
        &self.client.tokens().credentials().origin
    }

    /// Whether AppRole's secret id was given response-wrapped
    /// (`VAULT_SECRET_ID_WRAPPED`): the wrapping token works once, so only
    /// this client's first login can use it (a second client with the same
    /// token finds it used; `doctor` does not log in with it).
    pub fn uses_wrapped_secret_id(&self) -> bool {
        let credentials = self.client.tokens().credentials();
        credentials.secret_id_wrapped && credentials.secret_id.is_some()
    }

    /// The lower-precedence places that also held credentials and were
    /// ignored (named, e.g. "`~/.vault-token`"; see
    /// [`credentials`](crate::credentials#precedence)).
    pub fn ignored_credentials(&self) -> &[String] {
        &self.client.tokens().credentials().ignored
    }

    /// The authentication methods the credentials configure completely, in
    /// the order they are tried (`token`, `approle`, `kubernetes`, `jwt`, `cert`).
    pub fn auth_methods(&self) -> Vec<&'static str> {
        self.client
            .tokens()
            .credentials()
            .methods()
            .map(|methods| methods.iter().map(|m| m.name()).collect())
            .unwrap_or_default()
    }

    /// The `exp` and `aud` claims of the JWT the `jwt` method would log in
    /// with now (read from its file, or fetched from GitHub Actions), decoded
    /// without verification; `None` when no JWT method is configured.
    pub async fn jwt_claims(&self) -> Result<Option<JwtClaims>, Error> {
        self.client.tokens().credentials().jwt_claims().await
    }

    /// Logs in if needed and says which method gave the token.
    ///
    /// A static token that is the only method configured is not checked
    /// here (its first use checks it); [`token_info`](Self::token_info) does.
    pub async fn login(&self) -> Result<&'static str, Error> {
        let t = self.client.transport();
        Ok(self.client.tokens().current(t).await?.method)
    }

    /// Logs in if needed and looks the token up (`auth/token/lookup-self`).
    pub async fn token_info(&self) -> Result<TokenInfo, Error> {
        let t = self.client.transport();
        self.client
            .tokens()
            .with_token(t, |authed| async move { token_info(t, &authed).await })
            .await
    }

    /// The token's capabilities on an API path (`sys/capabilities-self`),
    /// such as `secret/data/app`.
    pub async fn capabilities(&self, api_path: impl AsRef<str>) -> Result<Vec<String>, Error> {
        let t = self.client.transport();
        let authed = self.client.tokens().current(t).await?;
        capabilities(t, &authed.token, api_path.as_ref()).await
    }

    /// The mount and KV version of `path` (`<mount>/<path>`), as a read would find them.
    pub async fn mount_of(&self, path: impl AsRef<str>) -> Result<MountReport, Error> {
        let r = SecretRef::parse(path.as_ref())?;
        let t = self.client.transport();
        let preflight = self
            .client
            .tokens()
            .with_token(t, |authed| {
                let r = &r;
                async move {
                    Ok(match mounts::preflight(t, &authed.token, r).await? {
                        mounts::Preflight::TokenRejected => Attempt::TokenRejected,
                        other => Attempt::Done(other),
                    })
                }
            })
            .await?;
        mounts::report(&r, preflight)
    }
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

#[cfg(test)]
mod tests {
    use secret_core::Env;

    use super::*;

    #[tokio::test]
    async fn the_inspector_reports_the_credentials_without_a_request() {
        let env = Env::from_map([
            ("VAULT_ADDR", "http://127.0.0.1:1"),
            ("VAULT_TOKEN", "hunter2"),
            ("VAULT_ROLE_ID", "role"),
            ("VAULT_SECRET_ID", "secret"),
            ("HOME", "/nonexistent-home"),
        ]);
        let client = VaultClient::builder().env(env).build().await.unwrap();
        let inspect = client.inspect();
        assert_eq!(inspect.auth_methods(), ["token", "approle"]);
        assert_eq!(
            inspect.credentials_origin(),
            "the environment variables `VAULT_TOKEN`, `VAULT_ROLE_ID`, `VAULT_SECRET_ID`"
        );
        assert!(inspect.jwt_claims().await.unwrap().is_none());
        // Nothing listens on port 1: a diagnostic that needs the server says
        // so, naming the address and never the token.
        let err = inspect.health().await.unwrap_err().to_string();
        assert!(
            err.contains("127.0.0.1:1") && !err.contains("hunter2"),
            "{err}"
        );
        let err = inspect.mount_of("no-mount").await.unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{err}");
    }
}
