//! Logging in: token, then AppRole, then Kubernetes, falling through on rejection.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use crate::credentials::{Credentials, Method};
use crate::error::ApiFailure;
use crate::session::TokenClient;
use crate::{AuthAttempt, Error, VaultConfig};

/// A token obtained from (or validated by) one method.
#[derive(Debug)]
pub(crate) struct Login {
    pub(crate) token: SecretString,
    pub(crate) method: &'static str,
    /// When the token stops working, when the server said.
    pub(crate) expires_at: Option<Instant>,
    /// False for a static token used without checking it first.
    pub(crate) validated: bool,
}

/// Tries each complete method in order. A method the server rejects (4xx)
/// passes to the next; a transport or server failure stops at once.
pub(crate) async fn login(
    config: &VaultConfig,
    client_for: &(dyn Fn(&str) -> Result<TokenClient, Error> + Sync),
    credentials: &Credentials,
) -> Result<Login, Error> {
    let methods = credentials.methods()?;
    let count = methods.len();
    let mut attempts = Vec::new();
    for (i, method) in methods.iter().enumerate() {
        let last = i + 1 == count;
        let outcome = match method {
            // Alone, a static token is checked by its first use; with a
            // fallback configured it is looked up first, so a rejected one
            // can fall through.
            Method::Token(token) if last => {
                return Ok(Login {
                    token: (*token).clone(),
                    method: "token",
                    expires_at: None,
                    validated: false,
                });
            }
            Method::Token(token) => {
                let client = client_for(token.expose_secret())?;
                vaultrs::token::lookup_self(&*client)
                    .await
                    .map(|info| Login {
                        token: (*token).clone(),
                        method: "token",
                        expires_at: expiry(info.ttl),
                        validated: true,
                    })
                    .map_err(|e| {
                        (
                            ApiFailure::from_client(e),
                            "auth/token/lookup-self".to_owned(),
                        )
                    })
            }
            Method::AppRole {
                mount,
                role_id,
                secret_id,
            } => vaultrs::auth::approle::login(
                &*client_for("")?,
                mount,
                role_id.expose_secret(),
                secret_id.expose_secret(),
            )
            .await
            .map(|auth| from_auth(auth, "approle"))
            .map_err(|e| (ApiFailure::from_client(e), format!("auth/{mount}/login"))),
            Method::Kubernetes {
                mount,
                role,
                token_file,
            } => {
                // A local problem with the file is a configuration error, not a rejection.
                let jwt = crate::input::read_token_file("VAULT_KUBE_TOKEN_FILE", token_file)?;
                vaultrs::auth::kubernetes::login(&*client_for("")?, mount, role, &jwt)
                    .await
                    .map(|auth| from_auth(auth, "kubernetes"))
                    .map_err(|e| (ApiFailure::from_client(e), format!("auth/{mount}/login")))
            }
        };
        match outcome {
            Ok(login) => {
                tracing::debug!(method = method.name(), "logged in");
                return Ok(login);
            }
            Err((failure, _)) if is_rejection(&failure) => {
                tracing::debug!(method = method.name(), reason = %failure.reason(), "rejected");
                attempts.push(AuthAttempt {
                    method: method.name(),
                    reason: failure.reason(),
                });
            }
            Err((failure, api_path)) => return Err(failure.into_error(config.base(), &api_path)),
        }
    }
    Err(Error::AuthFailed { attempts })
}

/// The server turned the credentials down (as opposed to being unreachable or failing).
fn is_rejection(failure: &ApiFailure) -> bool {
    matches!(failure.status(), Some(code) if (400..500).contains(&code) && code != 412 && code != 429)
}

fn from_auth(auth: vaultrs::api::AuthInfo, method: &'static str) -> Login {
    Login {
        expires_at: expiry(auth.lease_duration),
        // Moved, not copied: the token's only copy is now zeroized on drop.
        token: SecretString::from(auth.client_token),
        method,
        validated: true,
    }
}

fn expiry(ttl_seconds: u64) -> Option<Instant> {
    (ttl_seconds > 0).then(|| Instant::now() + Duration::from_secs(ttl_seconds))
}
