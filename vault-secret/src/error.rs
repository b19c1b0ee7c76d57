//! The crate's one error type, and the mapping of Vault's API failures into it.

use std::fmt;

/// Everything that can go wrong reading a secret from Vault.
///
/// Messages name variables, keys, paths and auth methods; they never hold a
/// token, a credential or a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// None of `VAULT_AGENT_ADDR`, `VAULT_ADDR` and `vault_addr` is set.
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
    #[error(
        "secret not found: `{path}`{}{}",
        Detail(detail),
        InNamespace(namespace)
    )]
    NotFound {
        /// The path as given.
        path: String,
        /// Where it looked, when useful (for example the API path read).
        detail: Option<String>,
        /// The namespace read in (`VAULT_NAMESPACE`), a possible cause.
        namespace: Option<String>,
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
        "access forbidden: `{path}` (the token needs `read` on {}){}",
        OneOf(policy_paths),
        InNamespace(namespace)
    )]
    PermissionDenied {
        /// The path as given.
        path: String,
        /// The policy path that would grant it; two (KV v2 first, then KV v1)
        /// when the KV version could not be found out.
        policy_paths: Vec<String>,
        /// The namespace read in (`VAULT_NAMESPACE`), a possible cause.
        namespace: Option<String>,
    },

    /// The server is sealed.
    #[error("Vault at {address} is sealed")]
    Sealed {
        /// The server's address.
        address: String,
    },

    /// The server answered with an error this crate has no better name for.
    #[error("Vault answered {status} for `{path}`{}: {}", AfterAttempts(*attempts), Errors(errors))]
    Server {
        /// The HTTP status.
        status: u16,
        /// The API path requested.
        path: String,
        /// The server's error strings (or what the answer was, when it had none).
        errors: Vec<String>,
        /// How many times the request was sent (retries included).
        attempts: u32,
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

struct AfterAttempts(u32);

impl fmt::Display for AfterAttempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 | 1 => Ok(()),
            n => write!(f, " (after {n} attempts)"),
        }
    }
}

struct InNamespace<'a>(&'a Option<String>);

impl fmt::Display for InNamespace<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ns) => write!(
                f,
                " in namespace `{ns}` (VAULT_NAMESPACE; check that it exists and is the one the secret lives in)"
            ),
            None => Ok(()),
        }
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
            namespace: None,
        };
        assert_eq!(
            one.to_string(),
            "access forbidden: `secret/app` (the token needs `read` on `secret/data/app`)"
        );
        let two = Error::PermissionDenied {
            path: "kv/app".into(),
            policy_paths: vec!["kv/data/app".into(), "kv/app".into()],
            namespace: Some("team".into()),
        };
        assert_eq!(
            two.to_string(),
            "access forbidden: `kv/app` (the token needs `read` on `kv/data/app` or `kv/app`) \
             in namespace `team` (VAULT_NAMESPACE; check that it exists and is the one the secret lives in)"
        );
    }
}
