//! The crate's one error type, and the mapping of Vault's API failures into it.

use std::fmt;

/// Everything that can go wrong reading a secret from Vault.
///
/// Messages name variables, keys, paths and auth methods; they never hold a
/// token, a credential or a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Neither `VAULT_ADDR` nor `vault_addr` is set.
    #[error("no Vault address: set `VAULT_ADDR` (or the secret/variable `vault_addr`)")]
    MissingAddress,

    /// A setting (an environment variable or a builder option) has a bad value.
    #[error("invalid `{name}`: {reason}")]
    Config {
        /// The variable or option.
        name: String,
        /// What is wrong with it (never its value when it is a credential).
        reason: String,
    },

    /// The credentials secret exists but cannot be used.
    #[error("invalid credentials secret `{secret}`: {reason}")]
    Credentials {
        /// The secret's name (`VAULT_CREDENTIALS` by default).
        secret: String,
        /// What is wrong with it (key names only).
        reason: String,
    },

    /// No authentication method has all its keys.
    #[error("no usable Vault credentials: {detail}")]
    NoCredentials {
        /// Each method and the keys it lacks.
        detail: String,
    },

    /// Every configured authentication method was tried and rejected.
    #[error("Vault authentication failed: {}", Attempts(attempts))]
    AuthFailed {
        /// Each method tried, in order, and the server's reason.
        attempts: Vec<AuthAttempt>,
    },

    /// The secret path is malformed.
    #[error("invalid secret path `{path}`: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No secret at the path (or no such version).
    #[error("secret not found: `{path}`{}", Detail(detail))]
    NotFound {
        /// The path as given.
        path: String,
        /// Where it looked, when useful (for example the API path read).
        detail: Option<String>,
    },

    /// The secret has no such field.
    #[error("secret `{path}` has no field `{field}`")]
    FieldNotFound {
        /// The path.
        path: String,
        /// The missing field.
        field: String,
    },

    /// The requested KV v2 version was soft-deleted (it can be undeleted).
    #[error("version {version} of secret `{path}` was deleted at {deleted_at}")]
    VersionDeleted {
        /// The path.
        path: String,
        /// The version.
        version: u64,
        /// When it was deleted (RFC 3339, as Vault reports it).
        deleted_at: String,
    },

    /// The requested KV v2 version was destroyed (its data is gone for good).
    #[error("version {version} of secret `{path}` was destroyed")]
    VersionDestroyed {
        /// The path.
        path: String,
        /// The version.
        version: u64,
    },

    /// The token may not read the path.
    #[error(
        "access forbidden: `{path}` (the token needs `read` on {})",
        OneOf(policy_paths)
    )]
    PermissionDenied {
        /// The path as given.
        path: String,
        /// The policy path that would grant it; two (KV v2 first, then KV v1)
        /// when the KV version could not be found out.
        policy_paths: Vec<String>,
    },

    /// The server is sealed.
    #[error("Vault at {address} is sealed")]
    Sealed {
        /// The server's address.
        address: String,
    },

    /// The server answered with an error this crate has no better name for.
    #[error("Vault answered {status} for `{path}`: {}", Errors(errors))]
    Server {
        /// The HTTP status.
        status: u16,
        /// The API path requested.
        path: String,
        /// The server's error strings.
        errors: Vec<String>,
    },

    /// The server could not be reached or its answer could not be read.
    #[error("cannot talk to Vault at {address}: {reason}")]
    Transport {
        /// The server's address.
        address: String,
        /// What failed (connection refused, timeout, TLS, bad response...).
        reason: String,
    },

    /// A lookup through the secret chain failed.
    #[error(transparent)]
    Secret(#[from] secret_core::Error),
}

impl Error {
    pub(crate) fn config(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// True for "no secret here" (not found, no such field) as opposed to a failure.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. } | Error::FieldNotFound { .. })
    }
}

/// One authentication method tried and what the server said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthAttempt {
    /// The method: `token`, `approle` or `kubernetes`.
    pub method: &'static str,
    /// The server's (or the local) reason; never a credential.
    pub reason: String,
}

impl fmt::Display for AuthAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.method, self.reason)
    }
}

/// Writes `items` separated by `separator`, each through `each`.
fn join<T>(
    f: &mut fmt::Formatter<'_>,
    items: &[T],
    separator: &str,
    each: impl Fn(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        each(f, item)?;
    }
    Ok(())
}

struct Attempts<'a>(&'a [AuthAttempt]);

impl fmt::Display for Attempts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        join(f, self.0, "; ", |f, a| write!(f, "{a}"))
    }
}

struct Errors<'a>(&'a [String]);

impl fmt::Display for Errors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no error message");
        }
        // Vault wraps messages as "1 error occurred:\n\t* permission denied\n\n".
        join(f, self.0, "; ", |f, e| f.write_str(&tidy_server_message(e)))
    }
}

struct OneOf<'a>(&'a [String]);

impl fmt::Display for OneOf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        join(f, self.0, " or ", |f, p| write!(f, "`{p}`"))
    }
}

struct Detail<'a>(&'a Option<String>);

impl fmt::Display for Detail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => write!(f, " ({d})"),
            None => Ok(()),
        }
    }
}

/// Turns Vault's multi-error formatting into one line.
pub(crate) fn tidy_server_message(message: &str) -> String {
    let items: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.ends_with("error occurred:") && !l.ends_with("errors occurred:")
        })
        .map(|l| l.trim_start_matches("* "))
        .collect();
    if items.is_empty() {
        message.trim().to_owned()
    } else {
        items.join("; ")
    }
}

/// A failed API call, reduced to what the mapping needs.
#[derive(Debug)]
pub(crate) enum ApiFailure {
    /// The server answered with a non-success status.
    Status {
        code: u16,
        /// The `errors` array, when the body had one.
        errors: Option<Vec<String>>,
        /// The raw body when it had no `errors` array (KV v2 deleted/destroyed
        /// versions answer 404 with a full response). Never shown to users.
        body: Option<String>,
    },
    /// The request did not complete, or the answer could not be read.
    Transport(String),
}

impl ApiFailure {
    pub(crate) fn from_client(err: vaultrs::error::ClientError) -> Self {
        use rustify::errors::ClientError as Rest;
        use vaultrs::error::ClientError as C;
        match err {
            C::APIError { code, errors } => ApiFailure::Status {
                code,
                errors: Some(errors),
                body: None,
            },
            C::RestClientError {
                source: Rest::ServerResponseError { code, content },
            } => {
                let errors = content
                    .as_deref()
                    .and_then(|c| serde_json::from_str::<ErrorsBody>(c).ok())
                    .map(|b| b.errors);
                ApiFailure::Status {
                    code,
                    body: if errors.is_some() { None } else { content },
                    errors,
                }
            }
            // Display of these names the URL and the failure, never headers or bodies.
            C::RestClientError { source } => ApiFailure::Transport(describe_rest(&source)),
            C::ResponseEmptyError | C::ResponseDataEmptyError => {
                ApiFailure::Transport("the server's answer had no data".into())
            }
            other => ApiFailure::Transport(other.to_string()),
        }
    }

    /// Maps the failures every call shares (sealed, transport, other statuses).
    pub(crate) fn into_error(self, address: &str, api_path: &str) -> Error {
        match self {
            ApiFailure::Status {
                code: 503, errors, ..
            } if errors
                .as_ref()
                .is_some_and(|e| e.iter().any(|m| m.contains("sealed"))) =>
            {
                Error::Sealed {
                    address: address.to_owned(),
                }
            }
            // A standby without request forwarding, or a proxy: following it would
            // send the token to whatever host it names.
            ApiFailure::Status { code, .. } if (300..400).contains(&code) => Error::Server {
                status: code,
                path: api_path.to_owned(),
                errors: vec![
                    "the server answered with a redirect, which is not followed because the token \
                     would go along; point VAULT_ADDR at the server that answers itself (the active node)"
                        .into(),
                ],
            },
            ApiFailure::Status { code, errors, .. } => Error::Server {
                status: code,
                path: api_path.to_owned(),
                errors: errors.unwrap_or_default(),
            },
            ApiFailure::Transport(reason) => Error::Transport {
                address: address.to_owned(),
                reason,
            },
        }
    }

    /// The server's reason, one line, for auth attempts.
    pub(crate) fn reason(&self) -> String {
        match self {
            ApiFailure::Status { code, errors, .. } => {
                let text = Errors(errors.as_deref().unwrap_or_default()).to_string();
                format!("{text} (HTTP {code})")
            }
            ApiFailure::Transport(reason) => reason.clone(),
        }
    }

    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            ApiFailure::Status { code, .. } => Some(*code),
            ApiFailure::Transport(_) => None,
        }
    }
}

#[derive(serde::Deserialize)]
struct ErrorsBody {
    errors: Vec<String>,
}

fn describe_rest(err: &rustify::errors::ClientError) -> String {
    use std::error::Error as _;
    // The chain holds the useful part (connection refused, timed out, certificate...).
    let mut source = err.source();
    let mut text = match source {
        Some(s) => {
            source = s.source();
            s.to_string()
        }
        None => err.to_string(),
    };
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_are_tidied() {
        assert_eq!(
            tidy_server_message("1 error occurred:\n\t* permission denied\n\n"),
            "permission denied"
        );
        assert_eq!(
            tidy_server_message("invalid role or secret ID"),
            "invalid role or secret ID"
        );
    }

    #[test]
    fn auth_failed_lists_attempts() {
        let e = Error::AuthFailed {
            attempts: vec![
                AuthAttempt {
                    method: "token",
                    reason: "permission denied (HTTP 403)".into(),
                },
                AuthAttempt {
                    method: "approle",
                    reason: "invalid role or secret ID (HTTP 400)".into(),
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "Vault authentication failed: token: permission denied (HTTP 403); \
             approle: invalid role or secret ID (HTTP 400)"
        );
    }

    #[test]
    fn permission_denied_names_each_policy_path() {
        let one = Error::PermissionDenied {
            path: "secret/app".into(),
            policy_paths: vec!["secret/data/app".into()],
        };
        assert_eq!(
            one.to_string(),
            "access forbidden: `secret/app` (the token needs `read` on `secret/data/app`)"
        );
        let two = Error::PermissionDenied {
            path: "kv/app".into(),
            policy_paths: vec!["kv/data/app".into(), "kv/app".into()],
        };
        assert_eq!(
            two.to_string(),
            "access forbidden: `kv/app` (the token needs `read` on `kv/data/app` or `kv/app`)"
        );
    }

    #[test]
    fn a_redirect_says_why_it_was_not_followed() {
        let f = ApiFailure::Status {
            code: 307,
            errors: None,
            body: Some(String::new()),
        };
        let e = f.into_error("http://standby:8200", "secret/data/a");
        assert!(matches!(e, Error::Server { status: 307, .. }), "{e}");
        assert!(
            e.to_string().contains("redirect, which is not followed"),
            "{e}"
        );
    }

    #[test]
    fn sealed_is_recognised() {
        let f = ApiFailure::Status {
            code: 503,
            errors: Some(vec!["Vault is sealed".into()]),
            body: None,
        };
        assert!(matches!(
            f.into_error("http://x", "secret/data/a"),
            Error::Sealed { .. }
        ));
    }

    #[test]
    fn body_without_errors_is_kept_but_body_with_errors_is_not() {
        let with_errors = vaultrs::error::ClientError::RestClientError {
            source: rustify::errors::ClientError::ServerResponseError {
                code: 500,
                content: Some(r#"{"errors":["boom"]}"#.into()),
            },
        };
        match ApiFailure::from_client(with_errors) {
            ApiFailure::Status { code, errors, body } => {
                assert_eq!(
                    (code, errors, body),
                    (500, Some(vec!["boom".to_owned()]), None)
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
