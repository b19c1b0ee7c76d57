//! The one place input is checked before any request.
//!
//! Every value that comes from the environment, the credentials secret, a
//! token file or the command line goes through here, with the same rules
//! whatever its source: surrounding whitespace is trimmed; control
//! characters (below U+0020, U+007F and the C1 range) are refused in tokens,
//! role and secret ids, namespaces, mounts and names; lengths are bounded;
//! files are read with a size limit. A refusal names the variable or key and
//! says what is wrong, never what the value is: a control character cannot
//! travel in an HTTP header (some HTTP stacks panic on one), and a message
//! must not show a credential.

use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;
use secret_core::file::{FileError, read_regular};
use zeroize::Zeroizing;

use crate::error::ConfigKind;
use crate::error::Error;

/// The longest token, role id or secret id accepted (Vault's service tokens
/// are about 100 bytes, batch tokens a few hundred).
pub(crate) const MAX_CREDENTIAL_LEN: usize = 16 * 1024;

/// The longest namespace, mount or role name accepted.
pub(crate) const MAX_NAME_LEN: usize = 1024;

/// The longest secret reference (`<mount>/<path>[?version=N][#field]`)
/// accepted; percent-encoded it stays well under the 64 KiB an HTTP URI can hold.
pub(crate) const MAX_PATH_LEN: usize = 4096;

/// The longest server address accepted.
pub(crate) const MAX_ADDRESS_LEN: usize = 2048;

/// The largest token file (a Kubernetes service-account JWT is 1-2 KiB).
pub(crate) const MAX_TOKEN_FILE_LEN: u64 = 64 * 1024;

/// The largest certificate or key file.
pub(crate) const MAX_PEM_FILE_LEN: u64 = 4 * 1024 * 1024;

/// How much of a non-secret value (a path, an address) a message shows.
const SHOWN_CHARS: usize = 120;

/// Why a value was refused: a phrase that follows the value's name ("is
/// empty", "contains a tab ..."), never the value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub(crate) kind: ConfigKind,
    pub(crate) reason: String,
}

impl Invalid {
    pub(crate) fn new(kind: ConfigKind, reason: impl Into<String>) -> Self {
        Invalid {
            kind,
            reason: reason.into(),
        }
    }

    /// The error for an environment variable, file or option `name`.
    pub(crate) fn for_variable(self, name: &str) -> Error {
        Error::config_kind(name, self.kind, self.reason)
    }

    /// The error for key `key` of the credentials secret `secret`.
    pub(crate) fn for_key(self, secret: &str, key: &str) -> Error {
        Error::Credentials {
            secret: secret.to_owned(),
            key: Some(key.to_owned()),
            kind: self.kind,
            reason: format!("key `{key}` {}", self.reason),
            source: None,
        }
    }
}

/// What a control character is, for messages (the character, never its neighbours).
fn describe(c: char) -> String {
    match c {
        '\n' => "a line feed (\\n)".into(),
        '\r' => "a carriage return (\\r)".into(),
        '\t' => "a tab (\\t)".into(),
        '\0' => "a NUL byte".into(),
        '\u{7f}' => "a DEL character".into(),
        c => format!("the control character U+{:04X}", u32::from(c)),
    }
}

/// `raw` trimmed, refused when empty, longer than `max` bytes or holding a
/// control character. `what` names the kind of value ("a token").
fn checked<'a>(what: &str, raw: &'a str, max: usize) -> Result<&'a str, Invalid> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(Invalid::new(ConfigKind::Empty, "is empty"));
    }
    if value.len() > max {
        return Err(Invalid::new(
            ConfigKind::TooLong,
            format!(
                "is {} bytes long; {what} of more than {max} bytes is refused",
                value.len()
            ),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(Invalid::new(
            ConfigKind::ControlCharacter,
            format!(
                "contains {}, which {what} cannot hold (look for a stray line break or \
                 a second line where the value was pasted or templated)",
                describe(c)
            ),
        ));
    }
    Ok(value)
}

/// A token, role id or secret id: trimmed, non-empty, no control character,
/// at most [`MAX_CREDENTIAL_LEN`] bytes. `what` is "a token", "a role id"...
pub(crate) fn credential(what: &str, raw: &str) -> Result<SecretString, Invalid> {
    checked(what, raw, MAX_CREDENTIAL_LEN).map(|v| SecretString::from(v.to_owned()))
}

/// A token from variable (or file) `name`; the error names it, never the value.
pub(crate) fn token(name: &str, raw: &str) -> Result<SecretString, Error> {
    credential("a token", raw).map_err(|e| e.for_variable(name))
}

/// A value sent as an HTTP header: trimmed, non-empty, no control character,
/// at most `max` bytes.
pub(crate) fn header_value<'a>(what: &str, raw: &'a str, max: usize) -> Result<&'a str, Invalid> {
    checked(what, raw, max)
}

/// A name (a role, a Kubernetes auth role): trimmed, non-empty, no control
/// character, at most [`MAX_NAME_LEN`] bytes.
pub(crate) fn name<'a>(what: &str, raw: &'a str) -> Result<&'a str, Invalid> {
    checked(what, raw, MAX_NAME_LEN)
}

/// A namespace: whitespace and slashes trimmed from its ends; `None` when
/// nothing is left (the root namespace). Refused with a control character,
/// an empty segment (`a//b`) or more than [`MAX_NAME_LEN`] bytes.
pub(crate) fn namespace(raw: &str) -> Result<Option<String>, Invalid> {
    let trimmed = raw.trim().trim_matches('/');
    if trimmed.is_empty() {
        return Ok(None);
    }
    let value = header_value("a namespace", trimmed, MAX_NAME_LEN)?;
    if value.split('/').any(|s| s.trim().is_empty()) {
        return Err(Invalid::new(
            ConfigKind::NotAName,
            "has an empty segment (`//`); nested namespaces are written `parent/child`",
        ));
    }
    Ok(Some(value.to_owned()))
}

/// An auth mount (`approle`, `kubernetes`, `team/k8s`): whitespace and
/// slashes trimmed from its ends; segments non-empty and not `.` or `..`;
/// no control character, `?` or `#`.
pub(crate) fn mount(raw: &str) -> Result<String, Invalid> {
    let value = checked("a mount", raw.trim().trim_matches('/'), MAX_NAME_LEN)?;
    for segment in value.split('/') {
        match segment.trim() {
            "" => {
                return Err(Invalid::new(
                    ConfigKind::NotAName,
                    "has an empty segment (`//`)",
                ));
            }
            "." | ".." => {
                return Err(Invalid::new(
                    ConfigKind::NotAName,
                    "has a `.` or `..` segment",
                ));
            }
            _ => {}
        }
    }
    if value.contains(['?', '#']) {
        return Err(Invalid::new(
            ConfigKind::NotAName,
            "contains `?` or `#`, which a mount path cannot",
        ));
    }
    Ok(value.to_owned())
}

/// The longest request timeout `VAULT_CLIENT_TIMEOUT` may set: a day.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The most retries `VAULT_MAX_RETRIES` may ask for.
const MAX_RETRIES: u32 = 100;

/// Go's `strconv.ParseBool`, as Vault reads its boolean variables.
pub(crate) fn boolean(raw: &str) -> Result<bool, Invalid> {
    match raw.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(Invalid::new(
            ConfigKind::NotABoolean,
            format!("`{}` is not a boolean (use true or false)", shown(other)),
        )),
    }
}

/// Seconds (`30`) or a number with a unit (`500ms`, `30s`, `2m`, `1h`);
/// positive, at most a day.
pub(crate) fn duration(raw: &str) -> Result<Duration, Invalid> {
    let raw = raw.trim();
    let shown = shown(raw);
    let split = raw
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let bad = || {
        Invalid::new(
            ConfigKind::NotADuration,
            format!("`{shown}` is not a duration (use e.g. 30, 30s, 2m or 500ms)"),
        )
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if seconds <= 0.0 {
        return Err(Invalid::new(
            ConfigKind::OutOfRange,
            format!("`{shown}` must be a positive duration"),
        ));
    }
    if seconds > MAX_TIMEOUT.as_secs_f64() {
        return Err(Invalid::new(
            ConfigKind::OutOfRange,
            format!(
                "`{shown}` is longer than the longest accepted, {}h",
                MAX_TIMEOUT.as_secs() / 3600
            ),
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A number of retries, from 0 to [`MAX_RETRIES`].
pub(crate) fn retries(raw: &str) -> Result<u32, Invalid> {
    let raw = raw.trim();
    let reason = || {
        format!(
            "`{}` is not a number of retries from 0 to {MAX_RETRIES}",
            shown(raw)
        )
    };
    match raw.parse::<u64>() {
        Ok(n) if n <= u64::from(MAX_RETRIES) => Ok(n as u32),
        Ok(_) => Err(Invalid::new(ConfigKind::OutOfRange, reason())),
        Err(_) => Err(Invalid::new(ConfigKind::NotANumber, reason())),
    }
}

/// A file path given in a variable or key: trimmed, non-empty, no control character.
pub(crate) fn file_path(raw: &str) -> Result<&str, Invalid> {
    checked("a file path", raw, MAX_PATH_LEN)
}

/// Reads the file `path` named by `variable`, at most `max` bytes. A file
/// that is missing, a directory, not a regular file (a FIFO, a device, a
/// socket), unreadable, empty (or only whitespace) or too large is a
/// configuration error naming the variable and the file.
///
/// The file is opened without blocking (a FIFO with no writer would hang
/// an ordinary open) and what was opened is checked with `fstat`, so a
/// file swapped between a check and the open cannot slip through.
pub(crate) fn read_file(
    variable: &str,
    path: &Path,
    max: u64,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let shown = shown(&path.display().to_string());
    let fail = |kind, reason: String| Error::config_kind(variable, kind, reason);
    let io = |e: std::io::Error| io_error(variable, &format!("the file `{shown}`"), e);
    let content = read_regular(path, max).map_err(|e| match e {
        FileError::Io(e) => io(e),
        FileError::Directory => fail(
            ConfigKind::IsADirectory,
            format!("`{shown}` is a directory; it must name a file"),
        ),
        FileError::NotRegular(kind) => fail(
            ConfigKind::NotARegularFile,
            format!("`{shown}` is {kind}, not a regular file"),
        ),
        FileError::TooLarge { max } => fail(
            ConfigKind::TooLarge,
            format!(
                "the file `{shown}` is larger than {max} bytes, too large for what it should hold"
            ),
        ),
        other => fail(ConfigKind::NotARegularFile, format!("`{shown}`: {other:?}")),
    })?;
    if content.iter().all(u8::is_ascii_whitespace) {
        return Err(fail(
            ConfigKind::Empty,
            format!("the file `{shown}` is empty"),
        ));
    }
    Ok(content)
}

/// The error for an I/O failure on `what` ("the file `x`", "the directory
/// `x`") named by `variable`, keeping the I/O error as its source.
pub(crate) fn io_error(variable: &str, what: &str, e: std::io::Error) -> Error {
    let (kind, reason) = match e.kind() {
        std::io::ErrorKind::NotFound => (ConfigKind::FileMissing, format!("{what} does not exist")),
        std::io::ErrorKind::PermissionDenied => (
            ConfigKind::Unreadable,
            format!("{what} cannot be read (permission denied)"),
        ),
        std::io::ErrorKind::NotADirectory => (
            ConfigKind::NotADirectory,
            format!("{what} is not a directory"),
        ),
        _ => (
            ConfigKind::Unreadable,
            format!("{what} cannot be read: {e}"),
        ),
    };
    Error::config_kind(variable, kind, reason).caused_by(e)
}

/// Reads a token file (`~/.vault-token`, a Kubernetes service-account
/// token): [`read_file`]'s checks, then UTF-8 text, trimmed, one line with
/// no control character. Errors name `variable`, never the content.
pub(crate) fn read_token_file(variable: &str, path: &Path) -> Result<Zeroizing<String>, Error> {
    let bytes = read_file(variable, path, MAX_TOKEN_FILE_LEN)?;
    let shown = shown(&path.display().to_string());
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Error::config_kind(
            variable,
            ConfigKind::NotUtf8,
            format!("the file `{shown}` is not text (it is not valid UTF-8)"),
        )
    })?;
    let token = checked("a token file", text, MAX_CREDENTIAL_LEN * 4).map_err(|e| {
        Error::config_kind(
            variable,
            e.kind,
            format!("the content of the file `{shown}` {}", e.reason),
        )
    })?;
    Ok(Zeroizing::new(token.to_owned()))
}

/// A non-secret value (a path, a file name) as a message shows it: control
/// characters escaped, at most [`SHOWN_CHARS`] characters, then `…`.
pub(crate) fn shown(raw: &str) -> String {
    let mut out = String::new();
    for (i, c) in raw.chars().enumerate() {
        if i == SHOWN_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Text from a server (an error message, a version) as a terminal may be
/// shown it: every control character but those in `keep` escaped (`\u{1b}`
/// for ESC), so no escape sequence reaches the terminal. Not cut short.
pub(crate) fn escape_controls(raw: &str, keep: &[char]) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_control() && !keep.contains(&c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// An address as a message may show it, whether or not it parses: without
/// user info (`user:password@`), query (`?token=...`) or fragment, each
/// replaced by `…`, then as [`shown`].
pub(crate) fn shown_address(raw: &str) -> String {
    let raw = raw.trim();
    let authority_start = raw.find("://").map_or(0, |i| i + 3);
    let (scheme, rest) = raw.split_at(authority_start);
    let query = rest.find(['?', '#']).unwrap_or(rest.len());
    let mut out = String::with_capacity(raw.len() + 4);
    out.push_str(scheme);
    match rest.rfind('@') {
        // `u:pa?ss@host` or `host/?token=a@b`: what follows the `@` may be
        // the host or part of the query; show neither.
        Some(at) if query < at => out.push('…'),
        // Everything up to the last `@` may be user info, even past a `/`.
        Some(at) => {
            out.push_str("…@");
            out.push_str(&rest[at + 1..query]);
        }
        None => out.push_str(&rest[..query]),
    }
    if query < rest.len() && !out.ends_with('…') {
        out.push('…');
    }
    shown(&out)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn tokens_are_trimmed() {
        for raw in ["root", " root", "root\n", "\troot\r\n", "root \n"] {
            assert_eq!(token("VAULT_TOKEN", raw).unwrap().expose_secret(), "root");
        }
    }

    #[test]
    fn control_characters_inside_are_refused_by_name_never_by_value() {
        for (raw, named) in [
            ("hunter\n2", "line feed"),
            ("hunter\r\n2", "carriage return"),
            ("hunter\t2", "tab"),
            ("hunter\u{0}2", "NUL"),
            ("hunter2\u{0}", "NUL"),
            ("hunter\u{7f}2", "DEL"),
            ("hunter\u{1b}2", "U+001B"),
            ("hunter\u{85}2", "U+0085"),
        ] {
            let err = token("VAULT_TOKEN", raw).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(&err, Error::Config { name, .. } if name == "VAULT_TOKEN"),
                "{msg}"
            );
            assert!(msg.contains(named), "{raw:?}: {msg}");
            assert!(!msg.contains("hunter"), "{msg}");
        }
    }

    #[test]
    fn empty_and_too_long_are_refused() {
        assert!(
            token("T", " \n ")
                .unwrap_err()
                .to_string()
                .contains("is empty")
        );
        let long = "a".repeat(MAX_CREDENTIAL_LEN + 1);
        let msg = token("T", &long).unwrap_err().to_string();
        assert!(msg.contains("bytes long"), "{msg}");
        assert!(!msg.contains("aaaa"), "{msg}");
    }

    #[test]
    fn values_are_refused_with_their_kind() {
        assert_eq!(boolean("maybe").unwrap_err().kind, ConfigKind::NotABoolean);
        assert_eq!(duration("soon").unwrap_err().kind, ConfigKind::NotADuration);
        assert_eq!(duration("0").unwrap_err().kind, ConfigKind::OutOfRange);
        assert_eq!(retries("x").unwrap_err().kind, ConfigKind::NotANumber);
        assert_eq!(retries("101").unwrap_err().kind, ConfigKind::OutOfRange);
        assert_eq!(retries(" 7 ").unwrap(), 7);
        assert_eq!(
            token("T", "").unwrap_err().to_string(),
            "invalid `T`: is empty"
        );
        assert!(matches!(
            token("T", "a\nb").unwrap_err(),
            Error::Config {
                kind: ConfigKind::ControlCharacter,
                ..
            }
        ));
    }

    #[test]
    fn io_failures_keep_the_io_error_as_source() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_file("VAULT_CACERT", &dir.path().join("nope"), 10).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Config {
                    kind: ConfigKind::FileMissing,
                    ..
                }
            ),
            "{err}"
        );
        let source = std::error::Error::source(&err).expect("a source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn namespaces() {
        assert_eq!(
            namespace(" /team/app/ \n").unwrap().as_deref(),
            Some("team/app")
        );
        assert_eq!(namespace(" / ").unwrap(), None);
        assert!(
            namespace("te\nam")
                .unwrap_err()
                .reason
                .contains("line feed")
        );
        assert!(
            namespace("a//b")
                .unwrap_err()
                .reason
                .contains("empty segment")
        );
        assert!(namespace(&"n".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn mounts() {
        assert_eq!(mount(" /my-approle/ ").unwrap(), "my-approle");
        assert_eq!(mount("team/k8s").unwrap(), "team/k8s");
        for bad in ["", "/", "a//b", "a/../b", "a?b", "ap\tprole", "a\u{0}"] {
            assert!(mount(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn token_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        let read = |content: &[u8]| {
            std::fs::write(&file, content).unwrap();
            read_token_file("VAULT_KUBE_TOKEN_FILE", &file)
        };
        assert_eq!(read(b"jwt.x.y\n").unwrap().as_str(), "jwt.x.y");
        for (content, phrase) in [
            (&b""[..], "is empty"),
            (b" \n\t", "is empty"),
            (b"line1\nline2", "line feed"),
            (b"\xff\xfe", "not valid UTF-8"),
        ] {
            let msg = read(content).unwrap_err().to_string();
            assert!(msg.starts_with("invalid `VAULT_KUBE_TOKEN_FILE`"), "{msg}");
            assert!(msg.contains(phrase), "{content:?}: {msg}");
            assert!(!msg.contains("line1"), "{msg}");
        }
        let missing = read_token_file("V", &dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().contains("does not exist"), "{missing}");
        let directory = read_token_file("V", dir.path()).unwrap_err();
        assert!(
            directory.to_string().contains("is a directory"),
            "{directory}"
        );
        std::fs::write(&file, vec![b'a'; MAX_TOKEN_FILE_LEN as usize + 1]).unwrap();
        let large = read_token_file("V", &file).unwrap_err();
        assert!(large.to_string().contains("larger than"), "{large}");
    }

    /// A FIFO with no writer (an ordinary open would wait for one forever)
    /// and a symlink to `/dev/zero` (endless) are refused at once, by name.
    #[cfg(unix)]
    #[test]
    fn fifos_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("token-fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
            0,
        )
        .unwrap();
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let started = std::time::Instant::now();
        for (path, phrase) in [(&fifo, "a FIFO"), (&zero, "a device")] {
            for err in [
                read_token_file("VAULT_JWT_FILE", path).unwrap_err(),
                read_file("VAULT_CACERT", path, MAX_PEM_FILE_LEN).unwrap_err(),
            ] {
                assert!(
                    matches!(
                        &err,
                        Error::Config {
                            kind: ConfigKind::NotARegularFile,
                            ..
                        }
                    ),
                    "{err:?}"
                );
                let msg = err.to_string();
                assert!(
                    msg.contains(phrase) && msg.contains("not a regular file"),
                    "{msg}"
                );
            }
        }
        let msg = read_token_file("VAULT_JWT_FILE", &fifo)
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("invalid `VAULT_JWT_FILE`"), "{msg}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn shown_values_are_escaped_and_cut() {
        assert_eq!(shown("a\nb"), "a\\nb");
        let long = "x".repeat(1000);
        assert_eq!(shown(&long).chars().count(), SHOWN_CHARS + 1);
    }

    #[test]
    fn server_text_has_its_escape_sequences_escaped() {
        let hostile = "v1\u{1b}]0;pwned\u{7}\u{1b}[2J\r\u{9b}31m\nnext\tline";
        let out = escape_controls(hostile, &['\n']);
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        assert_eq!(
            out,
            "v1\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\r\\u{9b}31m\nnext\\tline"
        );
        assert_eq!(escape_controls("plain text", &[]), "plain text");
    }

    #[test]
    fn shown_addresses_hold_no_user_info_or_query() {
        for (raw, expected) in [
            ("http://u:hunter2@host:8200/x", "http://…@host:8200/x"),
            ("http://host:8200/?token=hunter2", "http://host:8200/…"),
            ("http://host#hunter2", "http://host…"),
            ("u:hunter2@host:8200", "…@host:8200"),
            ("http://a@b:hunter2@host", "http://…@host"),
            ("http:// u:hunter2@bad host", "http://…@bad host"),
            ("localhost:8200", "localhost:8200"),
            ("http://u:hunter2/x@host", "http://…@host"),
            ("http://u:p@host/a@b", "http://…@b"),
            ("http://u:hun?ter2@host", "http://…"),
            ("http://u:hun#ter2@host?q", "http://…"),
            ("http://host/?token=@hunter2", "http://…"),
            ("http://u:p@host/?token=hunter2", "http://…@host/…"),
        ] {
            assert_eq!(shown_address(raw), expected, "{raw}");
        }
    }
}
