//! Environment variables made from secrets: valid names, the text a JSON
//! value becomes, and quoting for a POSIX shell.

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::exit::{Exit, Failure};

/// Whether `name` can be a shell variable name: an ASCII letter or `_`, then
/// letters, digits and `_`.
pub(crate) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The rule [`is_env_name`] checks, for messages.
pub(crate) const ENV_NAME_RULE: &str = "letters, digits and `_`, not starting with a digit";

/// Variables that change what a command runs or how it loads (the program
/// search path, the dynamic loader, shell start-up files, interpreters'
/// options and module paths, git's hooks and the home directory): a
/// secret's keys may not set them, since whoever may write the secret
/// would choose what runs. Names ending in `*` are prefixes.
pub(crate) const DANGEROUS_NAMES: &[&str] = &[
    "PATH",
    "LD_*",
    "DYLD_*",
    "BASH_ENV",
    "ENV",
    "IFS",
    "PS4",
    "SHELLOPTS",
    "NODE_OPTIONS",
    "PYTHON*",
    "PERL5*",
    "RUBYOPT",
    "JAVA_TOOL_OPTIONS",
    "GIT_*",
    "HOME",
];

/// Whether `name` is one of [`DANGEROUS_NAMES`].
pub(crate) fn is_dangerous(name: &str) -> bool {
    DANGEROUS_NAMES.iter().any(|d| match d.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == *d,
    })
}

/// The text a JSON value becomes in a variable: a string as it is, anything
/// else (number, boolean, list, mapping, null) as compact JSON.
pub(crate) fn env_text(value: &Value) -> Zeroizing<String> {
    Zeroizing::new(match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// `text` in single quotes for a POSIX shell; a `'` inside becomes `'\''`.
/// Everything else, newlines included, is literal inside single quotes.
pub(crate) fn shell_quote(text: &str) -> Zeroizing<String> {
    let mut quoted = Zeroizing::new(String::with_capacity(text.len() + 2));
    quoted.push('\'');
    for c in text.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

/// One variable per key of `map`, named `prefix` + key, in key order.
///
/// A key that is not a valid name (with the prefix) or a value holding a NUL
/// byte (no environment variable can) is an error naming the secret and the
/// key, never the value.
pub(crate) fn mapping_vars(
    secret: &str,
    map: &Map<String, Value>,
    prefix: &str,
) -> Result<Vec<(String, Zeroizing<String>)>, Failure> {
    let mut vars = Vec::with_capacity(map.len());
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        let name = format!("{prefix}{key}");
        if !is_env_name(&name) {
            return Err(Failure::new(
                Exit::Config,
                format!(
                    "secret `{secret}` has the key `{key}`, and `{name}` is not a valid \
                     environment variable name ({ENV_NAME_RULE})"
                ),
            )
            .with_hint(format!(
                "read that key on its own instead: --secret NAME='{secret}#{key}' for exec, \
                 or `vault-secret get '{secret}#{key}'`"
            )));
        }
        if is_dangerous(&name) {
            return Err(Failure::new(
                Exit::Config,
                format!(
                    "secret `{secret}` has the key `{key}`, which would set `{name}`: a \
                     variable that changes what a command runs or loads, so a secret's keys \
                     may not set it"
                ),
            )
            .with_hint(format!(
                "to set it on purpose, name it yourself: --secret {name}='{secret}#{key}' \
                 for exec; or give exec a --secret-map PREFIX"
            )));
        }
        let text = env_text(&map[key]);
        check_no_nul(&name, &text)?;
        vars.push((name, text));
    }
    Ok(vars)
}

/// An error when `text` (the value of variable `name`) holds a NUL byte.
pub(crate) fn check_no_nul(name: &str, text: &str) -> Result<(), Failure> {
    if text.contains('\0') {
        return Err(Failure::new(
            Exit::Config,
            format!(
                "the value for `{name}` contains a NUL byte, which an environment variable cannot hold"
            ),
        ));
    }
    Ok(())
}

/// A secret's key/value mapping, or a configuration failure saying that
/// `what` needs one (a string field is never read as a mapping).
pub(crate) fn secret_mapping(
    value: &secret_core::SecretValue,
    path: &str,
    what: &str,
) -> Result<Map<String, Value>, Failure> {
    match value.kind() {
        secret_core::ValueKind::Json => value.to_mapping().ok(),
        secret_core::ValueKind::Text => None,
    }
    .ok_or_else(|| {
        Failure::new(
            Exit::Config,
            format!("secret `{path}` is not a key/value mapping; {what} needs one"),
        )
    })
}

/// Zeroizes every string of a parsed mapping before it is dropped.
pub(crate) fn wipe_map(map: &mut Map<String, Value>) {
    map.values_mut().for_each(secret_core::zeroize_json);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["A", "_", "DB_PASS", "a1", "_9"] {
            assert!(is_env_name(ok), "{ok}");
        }
        for bad in ["", "1A", "DB-PASS", "a b", "é", "A=B"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }

    #[test]
    fn quoting_survives_a_real_shell() {
        let nasty = "it's $HOME `id` \"q\" \\ \n second line; rm -rf /";
        let script = format!("X={}; printf '%s' \"$X\"", &*shell_quote(nasty));
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), nasty);
    }

    #[test]
    fn mapping_vars_prefix_sort_and_reject_bad_keys_without_the_value() {
        let map: Map<String, Value> =
            serde_json::from_str(r#"{"b":"2","a":1,"c":{"x":true}}"#).unwrap();
        let vars = mapping_vars("s/p", &map, "APP_").unwrap();
        let shown: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            shown,
            [("APP_a", "1"), ("APP_b", "2"), ("APP_c", r#"{"x":true}"#)]
        );
        let map: Map<String, Value> = serde_json::from_str(r#"{"db-pass":"hunter2"}"#).unwrap();
        match mapping_vars("s/p", &map, "") {
            Err(Failure::Error { exit, message, .. }) => {
                assert_eq!(exit, Exit::Config);
                assert!(message.contains("`db-pass`"), "{message}");
                assert!(!message.contains("hunter2"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dangerous_names_are_refused_naming_secret_and_key_never_the_value() {
        for bad in [
            "PATH",
            "LD_PRELOAD",
            "DYLD_INSERT_LIBRARIES",
            "BASH_ENV",
            "ENV",
            "IFS",
            "PS4",
            "SHELLOPTS",
            "NODE_OPTIONS",
            "PYTHONPATH",
            "PERL5OPT",
            "RUBYOPT",
            "JAVA_TOOL_OPTIONS",
            "GIT_SSH_COMMAND",
            "HOME",
        ] {
            assert!(is_dangerous(bad), "{bad}");
            let map: Map<String, Value> =
                serde_json::from_value(serde_json::json!({ bad: "/tmp/evil" })).unwrap();
            match mapping_vars("secret/db", &map, "") {
                Err(Failure::Error {
                    exit,
                    message,
                    hint,
                }) => {
                    assert_eq!(exit, Exit::Config);
                    assert!(message.contains("`secret/db`"), "{message}");
                    assert!(message.contains(&format!("`{bad}`")), "{message}");
                    assert!(!message.contains("/tmp/evil"), "{message}");
                    let hint = hint.unwrap_or_default();
                    assert!(
                        hint.contains(&format!("--secret {bad}='secret/db#{bad}'")),
                        "{hint}"
                    );
                }
                other => panic!("{bad}: {other:?}"),
            }
            // Behind a prefix the name is harmless.
            assert!(mapping_vars("secret/db", &map, "APP_").is_ok(), "{bad}");
        }
        for fine in [
            "PATHS",
            "MY_PATH",
            "HOMEDIR",
            "ENVIRONMENT",
            "LDAP_URL",
            "GITHUB_TOKEN",
        ] {
            assert!(!is_dangerous(fine), "{fine}");
        }
    }

    #[test]
    fn nul_bytes_are_refused() {
        assert!(check_no_nul("X", "a\0b").is_err());
        assert!(check_no_nul("X", "ab").is_ok());
    }
}
