//! The crate's one error type.

use std::fmt;
use std::path::PathBuf;

/// A boxed error from a backend (Vault, a cloud store, ...), carried through the chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while resolving or reading a secret.
///
/// No variant ever holds a secret value: messages name secrets, variables,
/// files and fields, never their content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No source in the chain had the secret.
    #[error("secret `{name}` not found (tried: {})", Attempts(attempts))]
    NotFound {
        /// The secret's name.
        name: String,
        /// Each source tried, in order, and what it said.
        attempts: Vec<Attempt>,
    },

    /// The secret name cannot be looked up.
    #[error("invalid secret name `{name}`: {reason}")]
    InvalidName {
        /// The name as given (names are not secret).
        name: String,
        /// Why it is rejected.
        reason: &'static str,
    },

    /// An environment variable holds bytes that are not UTF-8.
    #[error("environment variable `{variable}` is not valid UTF-8")]
    NonUtf8Variable {
        /// The variable's name.
        variable: String,
    },

    /// A required environment variable is not set.
    #[error("environment variable `{variable}` is not set")]
    MissingVariable {
        /// The variable's name.
        variable: String,
    },

    /// An environment variable's text does not parse as the requested type.
    #[error("environment variable `{variable}` cannot be read as {cast}: {reason}")]
    Cast {
        /// The variable's name.
        variable: String,
        /// The requested type.
        cast: crate::env_var::Cast,
        /// Why it does not parse (never the text itself).
        reason: String,
    },

    /// The local config file could not be read.
    #[error("cannot read config file `{}`: {error}", path.display())]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        error: std::io::Error,
    },

    /// The local config file is not a regular file (a FIFO, a device, a
    /// socket), or is larger than accepted: it is not read.
    #[error("cannot read config file `{}`: it is {what}", path.display())]
    ConfigUnusable {
        /// The file.
        path: PathBuf,
        /// What it is instead ("a FIFO (named pipe)", "a device", "larger than 1048576 bytes"...).
        what: String,
    },

    /// The local config file is not valid TOML or has the wrong shape.
    #[error("config file `{}` is malformed at line {line}: {message}", path.display())]
    ConfigMalformed {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the problem (1 when the parser gave no position).
        line: usize,
        /// The parser's message.
        message: String,
    },

    /// A secret's value does not have the shape the caller asked for.
    #[error(
        "secret `{secret}` cannot be read as {target}{}: {detail}",
        AtPath(path)
    )]
    Shape {
        /// The secret's name (`<unnamed>` for a value not obtained through a source).
        secret: String,
        /// What it was read as (a type name or a description such as "a JSON mapping").
        target: String,
        /// Where in the value the problem is (`None` for the whole value).
        path: Option<String>,
        /// What is wrong, without any part of the value.
        detail: String,
    },

    /// A required field of a structured secret is missing.
    #[error("secret `{secret}` is missing required field `{field}`")]
    MissingField {
        /// The secret's name.
        secret: String,
        /// The missing field.
        field: String,
    },

    /// A field of a structured secret has the wrong type or an invalid value.
    #[error("secret `{secret}` has an invalid field `{field}`: {reason}")]
    InvalidField {
        /// The secret's name.
        secret: String,
        /// The field.
        field: String,
        /// What is wrong, without the value.
        reason: String,
    },

    /// A backend source failed (unreachable, permission denied, bad credentials, ...).
    ///
    /// The backend's own error is kept as the `source()` so callers can downcast it.
    #[error("{backend}: {error}")]
    Backend {
        /// The backend's name (for example `vault`).
        backend: String,
        /// The backend's error.
        #[source]
        error: BoxError,
    },
}

impl Error {
    /// Wraps a backend's error.
    pub fn backend(backend: impl Into<String>, error: impl Into<BoxError>) -> Self {
        Error::Backend {
            backend: backend.into(),
            error: error.into(),
        }
    }

    /// True when the error means "no source had it" rather than a failure.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

/// One source tried by a chain that did not produce the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The source's name in the chain.
    pub source: String,
    /// What happened there.
    pub outcome: Outcome,
}

/// Why a source in a chain did not produce the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The source does not have it; the text says where it looked.
    NotFound(String),
    /// The source was optional and failed; the text is its error message.
    Skipped(String),
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::NotFound(why) => write!(f, "{}: not found ({why})", self.source),
            Outcome::Skipped(why) => {
                write!(f, "{}: failed, skipped as optional ({why})", self.source)
            }
        }
    }
}

struct Attempts<'a>(&'a [Attempt]);

impl fmt::Display for Attempts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no sources");
        }
        for (i, attempt) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{attempt}")?;
        }
        Ok(())
    }
}

struct AtPath<'a>(&'a Option<String>);

impl fmt::Display for AtPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(path) => write!(f, " at `{path}`"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_lists_every_attempt_in_order() {
        let err = Error::NotFound {
            name: "DB".into(),
            attempts: vec![
                Attempt {
                    source: "local".into(),
                    outcome: Outcome::NotFound("no local secret".into()),
                },
                Attempt {
                    source: "vault".into(),
                    outcome: Outcome::Skipped("connection refused".into()),
                },
            ],
        };
        assert_eq!(
            err.to_string(),
            "secret `DB` not found (tried: local: not found (no local secret); \
             vault: failed, skipped as optional (connection refused))"
        );
        assert!(err.is_not_found());
    }

    #[test]
    fn empty_chain_says_so() {
        let err = Error::NotFound {
            name: "X".into(),
            attempts: vec![],
        };
        assert_eq!(err.to_string(), "secret `X` not found (tried: no sources)");
    }

    #[test]
    fn backend_error_keeps_its_source() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let err = Error::backend("vault", io);
        assert_eq!(err.to_string(), "vault: denied");
        let source = std::error::Error::source(&err).expect("has a source");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
        assert!(!err.is_not_found());
    }
}
