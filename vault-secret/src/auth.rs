//! Logging in: token, then AppRole, Kubernetes, JWT and TLS certificate,
//! falling through on rejection.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::api;
use crate::credentials::{Credentials, Method};
use crate::error::{AuthAttempt, Error, WrappingKind};
use crate::transport::{ApiFailure, Transport};

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
/// `unwrapped` keeps a response-wrapped AppRole secret id once unwrapped,
/// for the logins after the first.
pub(crate) async fn login(
    t: &Transport,
    credentials: &Credentials,
    unwrapped: &mut Option<SecretString>,
) -> Result<Login, Error> {
    let methods = credentials.methods()?;
    crate::tls::warn_if_plain_http(t.config());
    let count = methods.len();
    let mut attempts = Vec::new();
    for (i, method) in methods.iter().enumerate() {
        let (outcome, api_path) = match try_method(t, method, i + 1 == count, unwrapped).await? {
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
async fn try_method(
    t: &Transport,
    method: &Method<'_>,
    last: bool,
    unwrapped: &mut Option<SecretString>,
) -> Result<Tried, Error> {
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
            wrapped,
        } => {
            let secret_id = match (wrapped, unwrapped.as_ref()) {
                (false, _) => (*secret_id).clone(),
                (true, Some(done)) => done.clone(),
                (true, None) => {
                    let done = unwrap_secret_id(t, mount, secret_id).await?;
                    *unwrapped = Some(done.clone());
                    done
                }
            };
            Tried::Answered(
                api::approle_login(t, mount, role_id.expose_secret(), secret_id.expose_secret())
                    .await
                    .map(|issued| from_issued(issued, "approle")),
                login_path(mount),
            )
        }
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

/// The AppRole secret id a wrapping token holds, unwrapped once. First
/// `sys/wrapping/lookup` must show that AppRole's `secret-id` endpoint on
/// `mount` created it; any other creation path is refused unopened. A token
/// the server does not know (used, expired) is not retried: it may have
/// been intercepted.
async fn unwrap_secret_id(
    t: &Transport,
    mount: &str,
    wrapping_token: &SecretString,
) -> Result<SecretString, Error> {
    let expected = format!("auth/{mount}/role/<role>/secret-id");
    let refused = |kind, found: Option<String>| Error::WrappedSecretId {
        kind,
        expected: expected.clone(),
        found,
    };
    let unknown = |failure: &ApiFailure| matches!(failure.status(), Some(400 | 403 | 404));
    let info = match api::wrapping_lookup(t, wrapping_token).await {
        Ok(info) => info,
        Err(f) if unknown(&f) => return Err(refused(WrappingKind::InvalidOrUsed, None)),
        Err(f) => return Err(f.into_error(t.address(), "sys/wrapping/lookup")),
    };
    if !is_secret_id_path(&info.creation_path, mount) {
        let found = crate::input::shown(&info.creation_path);
        return Err(refused(WrappingKind::WrongCreationPath, Some(found)));
    }
    match api::unwrap_secret_id(t, wrapping_token).await {
        Ok(secret_id) => {
            tracing::debug!(mount, "unwrapped the AppRole secret id");
            Ok(secret_id)
        }
        // Looked up a moment ago, gone now: someone else unwrapped it.
        Err(f) if unknown(&f) => Err(refused(WrappingKind::InvalidOrUsed, None)),
        Err(f) => Err(f.into_error(t.address(), "sys/wrapping/unwrap")),
    }
}

/// `auth/<mount>/role/<one segment>/secret-id`: where AppRole issues secret ids.
fn is_secret_id_path(path: &str, mount: &str) -> bool {
    path.trim_matches('/')
        .strip_prefix("auth/")
        .and_then(|rest| rest.strip_prefix(mount))
        .and_then(|rest| rest.strip_prefix("/role/"))
        .and_then(|rest| rest.strip_suffix("/secret-id"))
        .is_some_and(|role| !role.is_empty() && !role.contains('/'))
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
        crate::error::ConfigKind::Missing,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_approles_secret_id_endpoint_on_the_mount_is_accepted() {
        for (path, ok) in [
            ("auth/approle/role/app/secret-id", true),
            ("auth/team/approle/role/app/secret-id", false),
            ("auth/approle/role/app/custom-secret-id", false),
            ("auth/approle/role//secret-id", false),
            ("auth/approle/role/a/b/secret-id", false),
            ("auth/approle2/role/app/secret-id", false),
            ("sys/wrapping/wrap", false),
            ("", false),
        ] {
            assert_eq!(is_secret_id_path(path, "approle"), ok, "{path}");
        }
        assert!(is_secret_id_path(
            "auth/team/approle/role/app/secret-id",
            "team/approle"
        ));
    }
}
