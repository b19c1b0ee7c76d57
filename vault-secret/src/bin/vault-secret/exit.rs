//! Exit codes, and turning a failure into one `vault-secret: <error>` line
//! on stderr plus, where there is one, a `hint: ...` line.

use std::process::ExitCode;

use vault_secret::variables as var;
use vault_secret::{ConfigKind, Error, TransportKind};

/// The exit-code table, shown after `--help`.
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success; for exec, the command's own exit code (128+N when signal N killed it)
  1    doctor found a failing check (or an unexpected local failure)
  2    usage: bad arguments
  3    configuration: no or bad VAULT_ADDR, a bad setting or credentials secret,
       no credentials, a bad secret path, keys that cannot be variable names;
       a local problem (a token, certificate or key file missing, empty,
       unreadable or a directory; a value too long; a control character in a
       token or namespace)
  4    authentication: every configured method was rejected
  5    not found: no secret, field or version at the path (or it was deleted or destroyed)
  6    permission denied: the token's policies do not allow the read (or the
       write or delete: the message names the capability)
  7    server or network: unreachable, TLS failure, sealed, or an unexpected answer;
       a write whose answer was lost (it may or may not have happened)
  8    put --cas: check-and-set conflict (the secret is at another version, or
       exists where --cas 0 wanted none); nothing was written
  70   internal error: a bug in the tool (it stopped on a panic); nothing about
       the input is printed, so please report the command that caused it
  126  exec: the command could not be started (not executable, its interpreter
       missing, a value too large for the environment)
  127  exec: the command was not found";

/// What the process exits with when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// `doctor` found a failing check, or something this table has no better code for.
    Other = 1,
    /// Bad arguments (clap's own code).
    Usage = 2,
    /// Address, settings, credentials secret, path.
    Config = 3,
    /// Every authentication method was rejected.
    Auth = 4,
    /// No secret, field or version.
    NotFound = 5,
    /// The token may not read the path.
    Denied = 6,
    /// Unreachable, sealed, or an unexpected server answer.
    Server = 7,
    /// A check-and-set write met another version.
    CasConflict = 8,
    /// A bug: the tool panicked (EX_SOFTWARE of `sysexits.h`).
    Internal = 70,
    /// `exec`: the command exists but could not be started.
    CannotRun = 126,
    /// `exec`: no such command.
    CommandNotFound = 127,
}

impl Exit {
    /// The process exit status.
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    /// The code for a library error.
    pub(crate) fn of(error: &Error) -> Exit {
        match error {
            Error::MissingAddress
            | Error::Config { .. }
            | Error::Credentials { .. }
            | Error::NoCredentials { .. }
            | Error::InvalidPath { .. }
            | Error::InvalidWrite { .. }
            | Error::NeedsKvV2 { .. }
            | Error::WrongEngine { .. }
            // The credentials lookup through the local context failed
            // (a malformed config file, a variable that is not UTF-8).
            | Error::Secret(_) => Exit::Config,
            Error::AuthFailed { .. } | Error::WrappedSecretId { .. } => Exit::Auth,
            Error::NotFound { .. }
            | Error::FieldNotFound { .. }
            | Error::VersionDeleted { .. }
            | Error::VersionDestroyed { .. } => Exit::NotFound,
            Error::PermissionDenied { .. } | Error::WriteDenied { .. } | Error::LeaseDenied { .. } => {
                Exit::Denied
            }
            Error::Sealed { .. }
            | Error::Server { .. }
            | Error::Transport { .. }
            | Error::WriteUncertain { .. }
            | Error::LeaseLost { .. } => Exit::Server,
            Error::CasMismatch { .. } => Exit::CasConflict,
            // A variant added to the library after this table was written.
            _ => Exit::Other,
        }
    }
}

/// Why a command failed: a usage error (shown by clap), or a message, an
/// exit code and maybe a hint. Messages never hold a token or a secret value.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad arguments found after parsing (exit 2).
    Usage(Box<clap::Error>),
    /// Anything else.
    Error {
        /// The exit code.
        exit: Exit,
        /// One line, without the `vault-secret: ` prefix.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
}

impl Failure {
    /// A failure with no hint.
    pub(crate) fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure::Error {
            exit,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub(crate) fn with_hint(self, hint: impl Into<String>) -> Self {
        match self {
            Failure::Error { exit, message, .. } => Failure::Error {
                exit,
                message,
                hint: Some(hint.into()),
            },
            usage => usage,
        }
    }

    /// A usage error (exit 2) of `subcommand`, formatted by clap like its own.
    pub(crate) fn usage(
        subcommand: &str,
        kind: clap::error::ErrorKind,
        message: impl std::fmt::Display,
    ) -> Self {
        let mut command = crate::command();
        // Building fills in the subcommands' full names for the usage line.
        command.build();
        let error = match command.find_subcommand_mut(subcommand) {
            Some(sub) => sub.error(kind, message),
            None => command.error(kind, message),
        };
        Failure::Usage(Box::new(error))
    }

    /// Prints the failure to stderr and gives the exit code.
    pub(crate) fn report(self) -> ExitCode {
        match self {
            Failure::Usage(error) => {
                // clap prints its own `error: ...` block and usage line.
                let _ = error.print();
                ExitCode::from(Exit::Usage.code())
            }
            Failure::Error {
                exit,
                message,
                hint,
            } => {
                eprintln!("vault-secret: {}", one_line(&message));
                if let Some(hint) = hint {
                    eprintln!("hint: {}", one_line(&hint));
                }
                ExitCode::from(exit.code())
            }
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let mut hint = hint(&error);
        if matches!(error, Error::AuthFailed { .. } | Error::Transport { .. }) {
            hint = hint.map(|h| format!("{h}; `vault-secret doctor` checks each step"));
        }
        Failure::Error {
            exit: Exit::of(&error),
            hint,
            message: error.to_string(),
        }
    }
}

/// What to do about a library error, when there is something useful to
/// say; decided from the variant and its kind and names, never its text.
pub(crate) fn hint(error: &Error) -> Option<String> {
    Some(match error {
        Error::MissingAddress => {
            "export VAULT_ADDR=https://vault.example.com:8200 (your server's URL)".into()
        }
        Error::Config { name, kind, .. } => return config_hint(name, *kind),
        Error::Credentials {
            secret,
            key: Some(key),
            kind,
            ..
        } => match kind {
            ConfigKind::NotAString => {
                format!("the key `{key}` of the secret `{secret}` must be a JSON string")
            }
            _ => format!(
                "fix the key `{key}` in the secret `{secret}`: values are trimmed, and may \
                 not hold control characters (a line break inside, a tab, NUL)"
            ),
        },
        Error::Credentials { secret, .. } => {
            format!(
                "{secret} must be a JSON mapping, e.g. export {secret}='{{\"VAULT_TOKEN\":\"...\"}}'"
            )
        }
        Error::NoCredentials { .. } => "export VAULT_TOKEN=<token>; or VAULT_ROLE_ID and \
             VAULT_SECRET_ID for AppRole; or VAULT_KUBE_AUTH_ROLE for Kubernetes; or all in \
             one variable: export VAULT_CREDENTIALS='{\"VAULT_TOKEN\":\"...\"}'"
            .into(),
        Error::AuthFailed { .. } => "the server turned the credentials down: check them \
             (an expired or revoked token, a wrong role or secret id, a missing auth mount)"
            .into(),
        Error::InvalidPath { .. } => {
            "a path is <mount>/<path>[?version=N][#field], e.g. secret/app#password".into()
        }
        Error::FieldNotFound { available, .. } if available.is_empty() => {
            "the secret has no fields; drop the `#field` to see it whole".into()
        }
        Error::FieldNotFound { available, .. } => {
            format!("use one of its fields after `#`: {}", available.join(", "))
        }
        Error::VersionDeleted { path, version, .. } => {
            format!("it can be restored: vault kv undelete -versions={version} {path}")
        }
        Error::PermissionDenied { policy_paths, .. } => match error.guessed_mount() {
            Some(mount) => format!(
                "the mount `{mount}/` was guessed, as the token may not look mounts up; if its \
                 name is misspelled, fix the path (`vault secrets list` shows the mounts); \
                 otherwise {}",
                policy_hint(policy_paths)
            ),
            None => policy_hint(policy_paths),
        },
        Error::Sealed { .. } => "unseal it: vault operator unseal (or bao operator unseal)".into(),
        Error::CasMismatch { path, .. } => format!(
            "read the current version (vault-secret get --with-metadata {path}), then put again \
             with --cas <that version>"
        ),
        Error::WriteUncertain { path, .. } => {
            format!("read it back before writing again: vault-secret get --with-metadata {path}")
        }
        Error::WriteDenied {
            api_path, needed, ..
        } => format!(
            "the token's policies need path \"{api_path}\" {{ capabilities = [{}] }}",
            needed
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Error::Transport { kind, .. } => transport_hint(*kind),
        _ => return None,
    })
}

/// What to do about a failure to talk to the server, by its kind.
fn transport_hint(kind: TransportKind) -> String {
    match kind {
        TransportKind::NotTls => "this port speaks plain HTTP: use http:// in VAULT_ADDR \
             (or the port of the HTTPS listener)"
            .into(),
        TransportKind::Tls => {
            "for a server with a private CA, export VAULT_CACERT=/path/to/ca.pem; \
             if its certificate names another host, export VAULT_TLS_SERVER_NAME=<that name>"
                .into()
        }
        TransportKind::Timeout => "the server did not answer in time: check that it is up, or \
             raise VAULT_CLIENT_TIMEOUT"
            .into(),
        _ => "check VAULT_ADDR and that the server is up".into(),
    }
}

/// Whether `name` is one of the variables the address is read from.
pub(crate) fn is_address_variable(name: &str) -> bool {
    [
        var::VAULT_AGENT_ADDR,
        var::VAULT_ADDR,
        var::VAULT_ADDR_LOWERCASE,
    ]
    .iter()
    .any(|v| v.name == name)
}

/// What to do about a bad setting, by the variable (or file, or option) it
/// names and what is wrong with it.
fn config_hint(name: &str, kind: ConfigKind) -> Option<String> {
    if is_address_variable(name) {
        return Some(format!(
            "{name} must be an http(s) URL, e.g. https://vault.example.com:8200"
        ));
    }
    if kind == ConfigKind::HalfPair {
        return Some(format!(
            "set both {} and {}, or neither",
            var::VAULT_CLIENT_CERT.name,
            var::VAULT_CLIENT_KEY.name
        ));
    }
    Some(match name {
        "VAULT_TOKEN" | "~/.vault-token" => format!(
            "{name} must hold the token alone, on one line, with no control characters; \
             write it again from the token itself"
        ),
        "VAULT_NAMESPACE" | "namespace" => "a namespace is a name such as `team` or \
             `team/app`, with no control characters; unset VAULT_NAMESPACE for the root namespace"
            .into(),
        "VAULT_KUBE_TOKEN_FILE" => format!(
            "VAULT_KUBE_TOKEN_FILE must name a readable, non-empty service-account token \
             file; the default is {} inside a pod",
            vault_secret::variables::DEFAULT_KUBE_TOKEN_FILE
        ),
        "VAULT_CACERT" | "VAULT_CLIENT_CERT" | "VAULT_CLIENT_KEY" => {
            format!("{name} must name a readable PEM file")
        }
        "VAULT_CAPATH" => "VAULT_CAPATH must name a directory of PEM CA files".into(),
        "VAULT_CLIENT_TIMEOUT" => {
            "VAULT_CLIENT_TIMEOUT takes seconds or a unit, e.g. 30, 30s, 2m (at most 24h)".into()
        }
        "VAULT_MAX_RETRIES" => "VAULT_MAX_RETRIES takes a whole number from 0 to 100".into(),
        "VAULT_SKIP_VERIFY" => "VAULT_SKIP_VERIFY takes true or false".into(),
        "VAULT_ROLE_ID" | "VAULT_SECRET_ID" => {
            format!("{name} must hold the id alone, on one line, with no control characters")
        }
        _ => return None,
    })
}

/// The policy stanza(s) that would allow reading the paths of a
/// `PermissionDenied` (two when the KV version is unknown: either will do).
pub(crate) fn policy_hint(policy_paths: &[String]) -> String {
    let stanzas: Vec<String> = policy_paths.iter().map(|p| policy_stanza(p)).collect();
    format!("the token's policies need {}", stanzas.join("  or  "))
}

/// `path "<p>" { capabilities = ["read"] }`.
pub(crate) fn policy_stanza(path: &str) -> String {
    format!("path \"{path}\" {{ capabilities = [\"read\"] }}")
}

/// Keeps a message on one line, whatever a server put in it, with any
/// other control character escaped (no escape sequence reaches the terminal).
fn one_line(text: &str) -> String {
    let joined = text
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    crate::output::escaped(&joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_the_terminal_on_one_line_without_escape_sequences() {
        let shown = one_line("denied\u{1b}]0;pwned\u{7}\r\n\u{1b}[2Jagain");
        assert_eq!(shown, "denied\\u{1b}]0;pwned\\u{7}; \\u{1b}[2Jagain");
    }

    #[test]
    fn every_library_error_has_its_code() {
        let cases = [
            (Error::MissingAddress, 3),
            (
                Error::NoCredentials {
                    looked_in: String::new(),
                    incomplete: Vec::new(),
                },
                3,
            ),
            (Error::AuthFailed { attempts: vec![] }, 4),
            (
                Error::NotFound {
                    path: "a/b".into(),
                    detail: None,
                    namespace: None,
                },
                5,
            ),
            (
                Error::VersionDestroyed {
                    path: "a/b".into(),
                    version: 1,
                },
                5,
            ),
            (
                Error::PermissionDenied {
                    path: "a/b".into(),
                    policy_paths: vec!["a/data/b".into()],
                    namespace: None,
                    mount_guessed: false,
                },
                6,
            ),
            (
                Error::Sealed {
                    address: "http://x".into(),
                },
                7,
            ),
            (
                Error::CasMismatch {
                    path: "a/b".into(),
                    expected: Some(1),
                    current: Some(2),
                    answer_lost: false,
                },
                8,
            ),
            (
                Error::WriteDenied {
                    path: "a/b".into(),
                    operation: "write",
                    needed: vec!["update"],
                    api_path: "a/data/b".into(),
                    namespace: None,
                },
                6,
            ),
            (
                Error::InvalidWrite {
                    path: "a/b".into(),
                    operation: "write",
                    reason: "a key is empty".into(),
                },
                3,
            ),
            (
                Error::Transport {
                    address: "http://x".into(),
                    kind: TransportKind::Connect,
                    reason: "refused".into(),
                    source: None,
                },
                7,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(Exit::of(&error).code(), code, "{error}");
        }
    }

    #[test]
    fn permission_hints_name_the_policy_paths() {
        assert_eq!(
            policy_hint(&["secret/data/app".into()]),
            r#"the token's policies need path "secret/data/app" { capabilities = ["read"] }"#
        );
        assert_eq!(
            policy_hint(&["kv/data/app".into(), "kv/app".into()]),
            r#"the token's policies need path "kv/data/app" { capabilities = ["read"] }  or  path "kv/app" { capabilities = ["read"] }"#
        );
    }

    #[test]
    fn transport_hints_follow_the_kind() {
        let https_to_http = hint(&Error::Transport {
            address: "https://x:8200".into(),
            kind: TransportKind::NotTls,
            reason: String::new(),
            source: None,
        })
        .unwrap();
        assert!(https_to_http.contains("use http://"), "{https_to_http}");
        assert!(!https_to_http.contains("VAULT_CACERT"), "{https_to_http}");
    }

    #[test]
    fn messages_are_one_line() {
        assert_eq!(one_line("a\n\t* b\r\n\n"), "a; * b");
    }
}
