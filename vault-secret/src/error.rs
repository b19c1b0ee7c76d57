//! The crate's one error type, and the mapping of Vault's API failures into it.

use std::fmt;

use secret_core::BoxError;

/// Everything that can go wrong reading or writing a secret in Vault.
///
/// Messages name variables, keys, paths and auth methods; they never hold a
/// token, a credential or a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// None of `VAULT_AGENT_ADDR`, `VAULT_ADDR` and `vault_addr` is set.
    #[error("no Vault address: set `VAULT_ADDR` (or the secret/variable `vault_addr`)")]
    MissingAddress,

    /// A setting (an environment variable, a file it names, or a builder
    /// option) has a bad value.
    #[error("invalid `{name}`: {reason}")]
    Config {
        /// The variable, file or option.
        name: String,
        /// What is wrong, to match on.
        kind: ConfigKind,
        /// What is wrong, in words (never the value when it is a credential).
        reason: String,
        /// The underlying error (an I/O or URL error), when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// The credentials secret exists but cannot be used.
    #[error("invalid credentials secret `{secret}`: {reason}")]
    Credentials {
        /// The secret's name (`VAULT_CREDENTIALS` by default).
        secret: String,
        /// The key at fault; `None` when the secret as a whole is (not a JSON mapping).
        key: Option<String>,
        /// What is wrong, to match on.
        kind: ConfigKind,
        /// What is wrong, in words (key names only).
        reason: String,
        /// The underlying error (the JSON syntax error), when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// No authentication method has all its keys.
    #[error("no usable Vault credentials: {looked_in}: {}", Incomplete(incomplete))]
    NoCredentials {
        /// Where the keys were looked for (the credentials secret, or the
        /// environment variables and `~/.vault-token`), in words.
        looked_in: String,
        /// Each method, in the order they are tried, and the keys it lacks.
        incomplete: Vec<IncompleteMethod>,
    },

    /// Every configured authentication method was tried and rejected.
    #[error("Vault authentication failed: {}", Attempts(attempts))]
    AuthFailed {
        /// Each method tried, in order, and the server's reason.
        attempts: Vec<AuthAttempt>,
    },

    /// The response-wrapped AppRole secret id (`VAULT_SECRET_ID_WRAPPED`)
    /// was refused before use, or could not be unwrapped. Never retried.
    #[error("the wrapped AppRole secret id in `VAULT_SECRET_ID` cannot be used: {}", WrappedReason(*kind, expected, found))]
    WrappedSecretId {
        /// What is wrong, to match on.
        kind: WrappingKind,
        /// The creation path an AppRole secret id's wrapping token has:
        /// `auth/<mount>/role/<role>/secret-id` (the role as the server
        /// names it, `<role>` when not known).
        expected: String,
        /// The creation path the server gave for the token, when it gave one.
        found: Option<String>,
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
    #[error("secret `{path}` has no field `{field}` ({})", Fields(available))]
    FieldNotFound {
        /// The path.
        path: String,
        /// The missing field.
        field: String,
        /// The fields the secret has, sorted (field names are not secret).
        available: Vec<String>,
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
        "access forbidden: `{path}` (the token needs `read` on {}){}{}",
        OneOf(policy_paths),
        InNamespace(namespace),
        Guessed(*mount_guessed, path)
    )]
    PermissionDenied {
        /// The path as given.
        path: String,
        /// The policy path that would grant it; two (KV v2 first, then KV v1)
        /// when the KV version could not be found out.
        policy_paths: Vec<String>,
        /// The namespace read in (`VAULT_NAMESPACE`), a possible cause.
        namespace: Option<String>,
        /// The mount was taken from the path's first segment because the
        /// token may not look mounts up: a misspelled mount looks like this.
        mount_guessed: bool,
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
        /// What failed, to match on.
        kind: TransportKind,
        /// What failed, in words (connection refused, timeout, TLS, bad response...).
        reason: String,
        /// The underlying error (`reqwest`'s), when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// A lookup through the secret chain failed.
    #[error(transparent)]
    Secret(#[from] secret_core::Error),

    // Writes: KV write, patch, delete and destroy.
    /// A check-and-set write met another version than the one it was given.
    #[error(
        "check-and-set conflict on `{path}`: {}{}",
        CasVersions(*expected, *current),
        LostAnswer(*answer_lost)
    )]
    CasMismatch {
        /// The path as given.
        path: String,
        /// The version the write expected to replace; `None` for "must not exist".
        expected: Option<u64>,
        /// The secret's current version, when the server told it.
        current: Option<u64>,
        /// An earlier attempt of this write lost its answer (timeout, reset)
        /// and was retried: that attempt may have made the version the
        /// retry conflicted with, so the write may have happened.
        answer_lost: bool,
    },

    /// The token may not write, patch or delete the path.
    #[error(
        "access forbidden: cannot {operation} `{path}` (the token needs {} on `{api_path}`){}",
        Capabilities(needed),
        InNamespace(namespace)
    )]
    WriteDenied {
        /// The path as given.
        path: String,
        /// What was attempted: `write`, `patch`, `delete`, `delete versions of`
        /// or `destroy versions of`.
        operation: &'static str,
        /// The capability the policy must grant on `api_path` (`create`,
        /// `update`, `patch` or `delete`); two when either would do.
        needed: Vec<&'static str>,
        /// The API (and policy) path requested, e.g. `secret/data/app`.
        api_path: String,
        /// The namespace written in (`VAULT_NAMESPACE`), a possible cause.
        namespace: Option<String>,
    },

    /// The operation needs KV v2 and the path is on a KV v1 engine.
    #[error("cannot {operation} `{path}`: `{mount}` is a KV v1 engine, which {reason}")]
    NeedsKvV2 {
        /// The path as given.
        path: String,
        /// The KV v1 mount.
        mount: String,
        /// What was attempted: `patch`, `check-and-set write`, `delete versions of`...
        operation: &'static str,
        /// Why KV v1 cannot do it, and what to do instead.
        reason: &'static str,
    },

    /// A write's answer was lost (a timeout, a connection cut after the
    /// request went out): the server may or may not have applied it.
    #[error(
        "`{path}`: the {operation} may or may not have happened (its answer was lost): \
         {source}; read the secret back before writing again"
    )]
    WriteUncertain {
        /// The path as given.
        path: String,
        /// What was attempted: `write`, `patch`...
        operation: &'static str,
        /// The transport failure that lost the answer.
        #[source]
        source: Box<Error>,
    },

    /// A write's input is unusable; found before any request was sent.
    #[error("cannot {operation} `{path}`: {reason}")]
    InvalidWrite {
        /// The path as given.
        path: String,
        /// What was attempted.
        operation: &'static str,
        /// What is wrong (key names, never values).
        reason: String,
    },
    // ----- leases (dynamic secrets) -----
    /// The path belongs to the other API: a KV path given to
    /// [`VaultClient::lease`](crate::VaultClient::lease), or a path of a
    /// non-KV engine (a dynamic, leased secret) given to
    /// [`VaultClient::read`](crate::VaultClient::read).
    #[error("invalid secret path `{path}`: {}", WrongEngineText(self))]
    WrongEngine {
        /// The path as given.
        path: String,
        /// The mount holding it, when the server said.
        mount: Option<String>,
        /// The engine's type (`kv`, `database`, `pki`...), when the server said.
        engine: Option<String>,
        /// The API that reads it.
        use_api: ReadApi,
    },

    /// The token may not issue, renew or revoke a lease.
    #[error(
        "access forbidden: `{path}` (the token needs `{capability}` on `{policy_path}`){}",
        InNamespace(namespace)
    )]
    LeaseDenied {
        /// The secret's path, or the lease id for a renewal or revocation.
        path: String,
        /// The capability needed (`read`, `update`).
        capability: &'static str,
        /// The policy path that would grant it (`database/creds/app`,
        /// `sys/leases/renew`, `sys/leases/revoke`).
        policy_path: String,
        /// The namespace read in (`VAULT_NAMESPACE`), a possible cause.
        namespace: Option<String>,
    },

    /// A leased secret could not be kept (its handle published
    /// [`LeaseEvent::Lost`](crate::lease::LeaseEvent::Lost)), or the handle is closed.
    #[error("lease of `{path}` lost ({kind}): {reason}")]
    LeaseLost {
        /// The secret's path.
        path: String,
        /// Why, to match on.
        kind: LeaseLostKind,
        /// Why, in words (never a value).
        reason: String,
    },
}

/// Which client method reads a path (in [`Error::WrongEngine`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadApi {
    /// [`VaultClient::read`](crate::VaultClient::read): KV v1 and v2.
    Read,
    /// [`VaultClient::lease`](crate::VaultClient::lease) (or `lease_with`
    /// for engines that issue on a write): dynamic secrets with a lease.
    Lease,
}

/// Why a lease ended before its handle was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LeaseLostKind {
    /// The server refused (HTTP 403): the policy no longer allows the path.
    Denied,
    /// The lease, the role or the path is gone (revoked, deleted).
    NotFound,
    /// The lease ran out before it could be renewed or replaced (an outage
    /// longer than the lease).
    Expired,
    /// The handle was closed ([`LeasedSecret::close`](crate::lease::LeasedSecret::close),
    /// [`VaultClient::shutdown`](crate::VaultClient::shutdown)).
    Closed,
}

impl fmt::Display for LeaseLostKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LeaseLostKind::Denied => "denied",
            LeaseLostKind::NotFound => "not found",
            LeaseLostKind::Expired => "expired",
            LeaseLostKind::Closed => "closed",
        })
    }
}

struct WrongEngineText<'a>(&'a Error);

impl fmt::Display for WrongEngineText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Error::WrongEngine {
            mount,
            engine,
            use_api,
            ..
        } = self.0
        else {
            return Ok(());
        };
        match (use_api, mount, engine) {
            (ReadApi::Lease, Some(mount), Some(engine)) => write!(
                f,
                "`{mount}` is a `{engine}` secrets engine, not KV: for a dynamic secret (issued \
                 with a lease) use `VaultClient::lease` (or `lease_with` for an engine that \
                 issues on a write, such as `pki/issue/<role>`)"
            ),
            (ReadApi::Lease, ..) => f.write_str(
                "not a KV secret: use `VaultClient::lease` for a dynamic secret with a lease",
            ),
            (ReadApi::Read, Some(mount), Some(engine)) => write!(
                f,
                "`{mount}` is a `{engine}` secrets engine whose answers carry no lease: read it \
                 with `VaultClient::read`"
            ),
            (ReadApi::Read, ..) => f.write_str(
                "the answer carries no lease (a KV secret?): read it with `VaultClient::read`",
            ),
        }
    }
}

/// The versions of a [`Error::CasMismatch`], in words.
struct CasVersions(Option<u64>, Option<u64>);

impl fmt::Display for CasVersions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "the write expected version {v}")?,
            None => f.write_str("the write expected no secret there")?,
        }
        match self.1 {
            Some(0) | None if self.0.is_none() => f.write_str(", but one exists"),
            Some(current) => write!(f, ", the current version is {current}"),
            None => f.write_str(", but the current version is another"),
        }
    }
}

/// What a [`Error::CasMismatch`] adds when an earlier attempt lost its answer.
struct LostAnswer(bool);

impl fmt::Display for LostAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 {
            f.write_str(
                "; an earlier attempt of this write lost its answer and may have made that \
                 version itself, so the write may have happened: read the secret back",
            )?;
        }
        Ok(())
    }
}

/// The capabilities of a [`Error::WriteDenied`]: `` `update` `` or `` `create` or `update` ``.
struct Capabilities<'a>(&'a [&'static str]);

impl fmt::Display for Capabilities<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        join(f, self.0, " or ", |f, c| write!(f, "`{c}`"))
    }
}

/// What is wrong with a setting or a key of the credentials secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigKind {
    /// Not set where it is needed.
    Missing,
    /// Set, but empty (or only whitespace).
    Empty,
    /// Holds a control character (a line break, a tab, NUL...).
    ControlCharacter,
    /// Longer than accepted.
    TooLong,
    /// Not a number.
    NotANumber,
    /// A number or duration outside the accepted range.
    OutOfRange,
    /// Not a boolean (`true`, `false`, `1`, `0`...).
    NotABoolean,
    /// Not a duration (`30`, `30s`, `2m`, `500ms`).
    NotADuration,
    /// Not a usable `http(s)` URL (or one with user info, a query...).
    NotAUrl,
    /// Not a name of the expected form (a DNS name, a mount, a namespace).
    NotAName,
    /// The file it names does not exist.
    FileMissing,
    /// It names a directory where a file is expected.
    IsADirectory,
    /// It names something that is not a directory where one is expected.
    NotADirectory,
    /// It names a FIFO, a device or a socket where a regular file is expected.
    NotARegularFile,
    /// The file or directory cannot be read (permissions, I/O).
    Unreadable,
    /// The file is larger than accepted.
    TooLarge,
    /// The file is not UTF-8 text.
    NotUtf8,
    /// The file holds no usable PEM certificate or key.
    NotPem,
    /// One half of a pair is set without the other (client certificate and key).
    HalfPair,
    /// A value of the wrong JSON type (a number where a string is expected).
    NotAString,
    /// The credentials secret is not a JSON mapping.
    NotAMapping,
    /// Anything else (the message says what).
    Invalid,
}

/// Why a response-wrapped secret id was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WrappingKind {
    /// The server does not know the wrapping token: already unwrapped,
    /// expired or never issued. If this client did not unwrap it, someone
    /// else may have: treat the secret id as intercepted.
    InvalidOrUsed,
    /// The token wraps the answer of another endpoint than AppRole's
    /// secret-id (it could carry anything): refused, not unwrapped.
    WrongCreationPath,
}

struct WrappedReason<'a>(WrappingKind, &'a str, &'a Option<String>);

impl fmt::Display for WrappedReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let WrappedReason(kind, expected, found) = self;
        match kind {
            WrappingKind::InvalidOrUsed => write!(
                f,
                "the server does not know its wrapping token (already unwrapped, expired or \
                 never issued); if this process did not unwrap it, it may have been \
                 intercepted: revoke the role's secret ids and issue a new wrapped one"
            ),
            WrappingKind::WrongCreationPath => write!(
                f,
                "its wrapping token was created by `{}`, not `{expected}`, so it is refused \
                 unopened (a token wrapping something else may have been substituted)",
                found.as_deref().unwrap_or("an unknown path")
            ),
        }
    }
}

/// What failed between this process and the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// No connection (refused, unreachable, DNS).
    Connect,
    /// No answer within the request timeout or the call's deadline.
    Timeout,
    /// The TLS handshake failed (an unknown CA, a name mismatch...).
    Tls,
    /// An `https://` address whose port speaks plain HTTP.
    NotTls,
    /// The answer could not be read (cut short, larger than accepted).
    Body,
    /// The request could not be built or sent for a local reason.
    Request,
    /// Anything else (the message says what).
    Other,
}

impl Error {
    /// A bad setting of no more precise kind.
    pub(crate) fn config(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::config_kind(name, ConfigKind::Invalid, reason)
    }

    /// A bad setting of kind `kind`.
    pub(crate) fn config_kind(
        name: impl Into<String>,
        kind: ConfigKind,
        reason: impl Into<String>,
    ) -> Self {
        Error::Config {
            name: name.into(),
            kind,
            reason: reason.into(),
            source: None,
        }
    }

    /// Attaches `cause` as the `source()` of a `Config`, `Credentials` or
    /// `Transport` error (any other variant is returned as it is).
    pub(crate) fn caused_by(mut self, cause: impl Into<BoxError>) -> Self {
        if let Error::Config { source, .. }
        | Error::Credentials { source, .. }
        | Error::Transport { source, .. } = &mut self
        {
            *source = Some(cause.into());
        }
        self
    }

    /// The mount a [`PermissionDenied`](Error::PermissionDenied) guessed
    /// (the path's first segment), when it was guessed.
    pub fn guessed_mount(&self) -> Option<&str> {
        match self {
            Error::PermissionDenied {
                path,
                mount_guessed: true,
                ..
            } => Some(first_segment(path)),
            _ => None,
        }
    }

    /// True for "no secret here" (not found, no such field) as opposed to a failure.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. } | Error::FieldNotFound { .. })
    }
}

/// An authentication method whose keys are not all there.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IncompleteMethod {
    /// The method: `token`, `approle`, `kubernetes`, `jwt` or `cert`.
    pub method: &'static str,
    /// Its keys that were given (a partial set when not empty).
    pub given: Vec<&'static str>,
    /// Its keys that are missing.
    pub missing: Vec<&'static str>,
    /// Whether any one of `missing` would do (`VAULT_JWT` or `VAULT_JWT_FILE`)
    /// rather than all of them.
    pub any_of: bool,
}

impl IncompleteMethod {
    pub(crate) fn new(
        method: &'static str,
        given: &[&'static str],
        missing: &[&'static str],
    ) -> Self {
        IncompleteMethod {
            method,
            given: given.to_vec(),
            missing: missing.to_vec(),
            any_of: false,
        }
    }

    /// Any one of the missing keys would do.
    pub(crate) fn any_of(mut self) -> Self {
        self.any_of = true;
        self
    }
}

impl fmt::Display for IncompleteMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = |f: &mut fmt::Formatter<'_>, keys: &[&str], joiner: &str| {
            join(f, keys, joiner, |f, k| write!(f, "`{k}`"))
        };
        let joiner = if self.any_of { " or " } else { " and " };
        write!(f, "{}: ", self.method)?;
        if self.given.is_empty() {
            keys(f, &self.missing, joiner)?;
            return f.write_str(" missing");
        }
        f.write_str("partial, ")?;
        keys(f, &self.given, " and ")?;
        f.write_str(" given without ")?;
        keys(f, &self.missing, joiner)
    }
}

struct Incomplete<'a>(&'a [IncompleteMethod]);

impl fmt::Display for Incomplete<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        join(f, self.0, "; ", |f, m| write!(f, "{m}"))
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

struct Fields<'a>(&'a [String]);

impl fmt::Display for Fields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("it has no fields");
        }
        f.write_str("fields: ")?;
        join(f, self.0, ", ", |f, k| f.write_str(k))
    }
}

/// The mount part of a `PermissionDenied` message, when it was guessed.
struct Guessed<'a>(bool, &'a str);

impl fmt::Display for Guessed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0 {
            return Ok(());
        }
        write!(
            f,
            "; the mount `{}/` was guessed from the path (the token may not look mounts up): \
             if its name is misspelled, the secret is elsewhere",
            first_segment(self.1)
        )
    }
}

/// A path's first segment: the mount guessed when the token may not look mounts up.
fn first_segment(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

/// An error and its sources on one line, each source once (a source whose
/// text is already there is skipped): "builder error" alone says nothing.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    for cause in causes(error).skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// `error` and every error under it. An `io::Error` that wraps another error
/// yields that error too (its own `source()` skips it), so a TLS error
/// inside a connection's I/O error is found.
pub(crate) fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    let mut next = Some(error);
    std::iter::from_fn(move || {
        let current = next?;
        let inner = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|e| e as &(dyn std::error::Error + 'static));
        next = inner.or_else(|| current.source());
        Some(current)
    })
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
    fn a_missing_field_lists_the_fields_there_are() {
        let e = Error::FieldNotFound {
            path: "secret/app".into(),
            field: "pasword".into(),
            available: vec!["password".into(), "user".into()],
        };
        assert_eq!(
            e.to_string(),
            "secret `secret/app` has no field `pasword` (fields: password, user)"
        );
    }

    #[test]
    fn a_guessed_mount_is_named_as_a_possible_misspelling() {
        let e = Error::PermissionDenied {
            path: "secrets/test/path".into(),
            policy_paths: vec!["secrets/data/test/path".into(), "secrets/test/path".into()],
            namespace: None,
            mount_guessed: true,
        };
        assert_eq!(e.guessed_mount(), Some("secrets"));
        let text = e.to_string();
        assert!(
            text.contains("the mount `secrets/` was guessed")
                && text.contains("if its name is misspelled"),
            "{text}"
        );
    }

    #[test]
    fn the_chain_walker_sees_an_error_inside_an_io_error() {
        #[derive(Debug, thiserror::Error)]
        #[error("inner")]
        struct Inner;
        let io = std::io::Error::other(Inner);
        let found: Vec<String> = causes(&io).map(|e| e.to_string()).collect();
        assert_eq!(found, ["inner", "inner"]);
        assert!(causes(&io).any(|e| e.downcast_ref::<Inner>().is_some()));
        assert_eq!(chain(&io), "inner");
    }

    #[test]
    fn permission_denied_names_each_policy_path() {
        let one = Error::PermissionDenied {
            path: "secret/app".into(),
            policy_paths: vec!["secret/data/app".into()],
            namespace: None,
            mount_guessed: false,
        };
        assert_eq!(
            one.to_string(),
            "access forbidden: `secret/app` (the token needs `read` on `secret/data/app`)"
        );
        let two = Error::PermissionDenied {
            path: "kv/app".into(),
            policy_paths: vec!["kv/data/app".into(), "kv/app".into()],
            namespace: Some("team".into()),
            mount_guessed: false,
        };
        assert_eq!(
            two.to_string(),
            "access forbidden: `kv/app` (the token needs `read` on `kv/data/app` or `kv/app`) \
             in namespace `team` (VAULT_NAMESPACE; check that it exists and is the one the secret lives in)"
        );
    }
}
