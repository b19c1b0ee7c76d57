//! Logging in: token, then AppRole, Kubernetes, JWT and TLS certificate,
//! falling through on rejection.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::api;
use crate::credentials::{Credentials, Method};
use crate::transport::{ApiFailure, Transport};
use crate::{AuthAttempt, Error};

/// A token obtained from (or validated by) one method.
#[derive(Debug)]
pub(crate) struct Login {
    pub(crate) token: SecretString,
    pub(crate) method: &'static str,
    /// False for a static token used without checking it first.
    pub(crate) validated: bool,
    /// Issued by this login (AppRole, Kubernetes, JWT, certificate), as
    /// opposed to supplied by the user.
    pub(crate) owned: bool,
    pub(crate) renewable: bool,
    /// The lease the server gave; `None` when it never expires or did not say.
    pub(crate) ttl: Option<Duration>,
}

/// Tries each complete method in order. A method the server rejects (4xx)
/// passes to the next; a transport or server failure stops at once.
pub(crate) async fn login(t: &Transport, credentials: &Credentials) -> Result<Login, Error> {
    let methods = credentials.methods()?;
    let count = methods.len();
    let mut attempts = Vec::new();
    for (i, method) in methods.iter().enumerate() {
        let last = i + 1 == count;
        let (outcome, api_path) = match method {
            // Alone, a static token is checked by its first use; with a
            // fallback configured it is looked up first, so a rejected one
            // can fall through.
            Method::Token(token) if last => {
                return Ok(Login {
                    token: (*token).clone(),
                    method: "token",
                    validated: false,
                    owned: false,
                    renewable: false,
                    ttl: None,
                });
            }
            Method::Token(token) => (
                api::lookup_self(t, token).await.map(|info| Login {
                    token: (*token).clone(),
                    method: "token",
                    validated: true,
                    owned: false,
                    // Never renewed past what the user asked for.
                    renewable: false,
                    ttl: info.time_left(),
                }),
                "auth/token/lookup-self".to_owned(),
            ),
            Method::AppRole {
                mount,
                role_id,
                secret_id,
            } => (
                api::approle_login(t, mount, role_id.expose_secret(), secret_id.expose_secret())
                    .await
                    .map(|issued| from_issued(issued, "approle")),
                format!("auth/{mount}/login"),
            ),
            Method::Kubernetes {
                mount,
                role,
                token_file,
            } => {
                // A local problem with the file is a configuration error, not a rejection.
                let jwt = crate::input::read_token_file("VAULT_KUBE_TOKEN_FILE", token_file)?;
                (
                    api::kubernetes_login(t, mount, role, &jwt)
                        .await
                        .map(|issued| from_issued(issued, "kubernetes")),
                    format!("auth/{mount}/login"),
                )
            }
            Method::Jwt {
                mount,
                role,
                source,
            } => {
                // Read (or fetched) at each login: a CI token is short-lived.
                let jwt = source.token().await?;
                (
                    api::jwt_login(t, mount, role, jwt.expose_secret())
                        .await
                        .map(|issued| from_issued(issued, "jwt")),
                    format!("auth/{mount}/login"),
                )
            }
            Method::Cert { mount, role } => {
                // Without a client certificate the server could only refuse.
                if t.config().client_cert().is_none() {
                    return Err(Error::config_kind(
                        if role.is_some() {
                            crate::variables::VAULT_CERT_ROLE.name
                        } else {
                            crate::variables::VAULT_CERT_AUTH_PATH.name
                        },
                        crate::ConfigKind::Missing,
                        "asks for certificate login, which needs a client certificate: \
                         set VAULT_CLIENT_CERT and VAULT_CLIENT_KEY",
                    ));
                }
                (
                    api::cert_login(t, mount, *role)
                        .await
                        .map(|issued| from_issued(issued, "cert")),
                    format!("auth/{mount}/login"),
                )
            }
        };
        match outcome {
            Ok(login) => {
                tracing::debug!(method = method.name(), "logged in");
                return Ok(login);
            }
            Err(failure) if is_rejection(&failure) => {
                tracing::debug!(method = method.name(), reason = %failure.reason(), "rejected");
                attempts.push(AuthAttempt {
                    method: method.name(),
                    reason: failure.reason(),
                });
            }
            Err(failure) => return Err(failure.into_error(t.address(), &api_path)),
        }
    }
    Err(Error::AuthFailed { attempts })
}

/// The server turned the credentials down (as opposed to being unreachable,
/// failing, or answering something that is not a login).
fn is_rejection(failure: &ApiFailure) -> bool {
    matches!(failure.status(), Some(code) if (400..500).contains(&code) && code != 412 && code != 429)
}

fn from_issued(issued: api::Issued, method: &'static str) -> Login {
    Login {
        token: issued.token,
        method,
        validated: true,
        owned: true,
        renewable: issued.renewable,
        ttl: issued.ttl,
    }
}
