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
    crate::tls::warn_if_plain_http(t.config());
    let count = methods.len();
    let mut attempts = Vec::new();
    for (i, method) in methods.iter().enumerate() {
        let (outcome, api_path) = match try_method(t, method, i + 1 == count).await? {
            Tried::Accepted(login) => return Ok(login),
            Tried::Answered(outcome, api_path) => (outcome, api_path),
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

/// What trying one method came to.
enum Tried {
    /// Taken without asking the server (a lone static token).
    Accepted(Login),
    /// The server's answer, and the endpoint asked (for an error).
    Answered(Result<Login, ApiFailure>, String),
}

/// One method's login. A local problem (a token file, a JWT to fetch, a
/// missing client certificate) is a configuration error, not a rejection.
async fn try_method(t: &Transport, method: &Method<'_>, last: bool) -> Result<Tried, Error> {
    let login_path = |mount: &str| format!("auth/{mount}/login");
    Ok(match method {
        // Alone, a static token is checked by its first use; with a
        // fallback configured it is looked up first, so a rejected one
        // can fall through.
        Method::Token(token) if last => Tried::Accepted(supplied(token, false, None)),
        Method::Token(token) => Tried::Answered(
            api::lookup_self(t, token)
                .await
                .map(|info| supplied(token, true, info.time_left())),
            "auth/token/lookup-self".to_owned(),
        ),
        Method::AppRole {
            mount,
            role_id,
            secret_id,
        } => Tried::Answered(
            api::approle_login(t, mount, role_id.expose_secret(), secret_id.expose_secret())
                .await
                .map(|issued| from_issued(issued, "approle")),
            login_path(mount),
        ),
        Method::Kubernetes {
            mount,
            role,
            token_file,
        } => {
            let jwt = crate::input::read_token_file("VAULT_KUBE_TOKEN_FILE", token_file)?;
            Tried::Answered(
                api::kubernetes_login(t, mount, role, &jwt)
                    .await
                    .map(|issued| from_issued(issued, "kubernetes")),
                login_path(mount),
            )
        }
        Method::Jwt {
            mount,
            role,
            source,
        } => {
            // Read (or fetched) at each login: a CI token is short-lived.
            let jwt = source.token().await?;
            Tried::Answered(
                api::jwt_login(t, mount, role, jwt.expose_secret())
                    .await
                    .map(|issued| from_issued(issued, "jwt")),
                login_path(mount),
            )
        }
        Method::Cert { mount, role } => {
            check_client_cert(t, role.is_some())?;
            Tried::Answered(
                api::cert_login(t, mount, *role)
                    .await
                    .map(|issued| from_issued(issued, "cert")),
                login_path(mount),
            )
        }
    })
}

/// A token the user supplied: never renewed past what they asked for, nor revoked.
fn supplied(token: &SecretString, validated: bool, ttl: Option<Duration>) -> Login {
    Login {
        token: token.clone(),
        method: "token",
        validated,
        owned: false,
        renewable: false,
        ttl,
    }
}

/// Certificate login needs a client certificate; without one the server
/// could only refuse, so it is a configuration error naming the key that
/// asked for it.
fn check_client_cert(t: &Transport, by_role: bool) -> Result<(), Error> {
    if t.config().client_cert().is_some() {
        return Ok(());
    }
    Err(Error::config_kind(
        if by_role {
            crate::variables::VAULT_CERT_ROLE.name
        } else {
            crate::variables::VAULT_CERT_AUTH_PATH.name
        },
        crate::ConfigKind::Missing,
        "asks for certificate login, which needs a client certificate: \
         set VAULT_CLIENT_CERT and VAULT_CLIENT_KEY",
    ))
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
