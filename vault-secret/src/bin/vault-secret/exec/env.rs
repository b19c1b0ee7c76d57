//! What the command gets: the variables made from the secrets, checked
//! against what the parent already has, and the credentials taken away.

use std::collections::BTreeMap;

use secret_core::SecretValue;
use zeroize::Zeroizing;

use crate::exit::{Exit, Failure};
use crate::vars;

/// `--secret NAME=PATH`.
#[derive(Debug, Clone)]
pub(crate) struct SecretVar {
    pub(crate) name: String,
    pub(crate) path: String,
}

/// `--secret-map PATH[=PREFIX]`.
#[derive(Debug, Clone)]
pub(crate) struct SecretMap {
    pub(crate) path: String,
    pub(crate) prefix: String,
}

pub(crate) fn parse_secret(arg: &str) -> Result<SecretVar, String> {
    let (name, path) = arg.split_once('=').ok_or_else(|| {
        "expected NAME=<mount>/<path>[#field], e.g. DB_PASS=secret/db#password".to_owned()
    })?;
    if !vars::is_env_name(name) {
        return Err(format!(
            "`{name}` is not a valid environment variable name ({})",
            vars::ENV_NAME_RULE
        ));
    }
    if path.trim().is_empty() {
        return Err(format!("no secret path after `{name}=`"));
    }
    Ok(SecretVar {
        name: name.to_owned(),
        path: path.to_owned(),
    })
}

pub(crate) fn parse_secret_map(arg: &str) -> Result<SecretMap, String> {
    let (path, prefix) = match arg.rsplit_once('=') {
        Some((path, prefix)) => (path, prefix),
        None => (arg, ""),
    };
    if !prefix.is_empty() && !vars::is_env_name(prefix) {
        return Err(format!(
            "prefix `{prefix}` cannot start a variable name ({})",
            vars::ENV_NAME_RULE
        ));
    }
    if path.trim().is_empty() {
        return Err("no secret path".to_owned());
    }
    Ok(SecretMap {
        path: path.to_owned(),
        prefix: prefix.to_owned(),
    })
}

/// The variables to set, each with the argument it came from (for messages).
pub(crate) type Vars = BTreeMap<String, (Zeroizing<String>, String)>;

/// What the command asked for, and how to turn the values read into its
/// variables. Kept by a watcher, which makes the variables anew from each
/// reading.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) secrets: Vec<SecretVar>,
    pub(crate) maps: Vec<SecretMap>,
    /// `--override`: a `--secret-map` may replace a variable the parent has.
    pub(crate) override_parent: bool,
    /// `--pass-credentials`.
    pub(crate) pass_credentials: bool,
}

/// One reading of every secret, ready for a command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// The variables to set.
    pub(crate) vars: Vars,
    /// Every text `--mask` hides: each variable's value and, in a JSON
    /// value, each string inside.
    pub(crate) masked: Vec<Zeroizing<String>>,
}

impl Request {
    /// The paths to read, in the order [`Request::snapshot`] takes their values.
    pub(crate) fn paths(&self) -> Vec<String> {
        self.secrets
            .iter()
            .map(|s| s.path.clone())
            .chain(self.maps.iter().map(|m| m.path.clone()))
            .collect()
    }

    /// The variables made from `values` (one per path of [`Request::paths`]),
    /// given whether the parent environment has a variable (`parent_has`).
    pub(crate) fn snapshot(
        &self,
        values: &[SecretValue],
        parent_has: &dyn Fn(&str) -> bool,
    ) -> Result<Snapshot, Failure> {
        let mut values = values.iter();
        let mut env = Vars::new();
        let mut masked = Vec::new();
        for (s, value) in self.secrets.iter().zip(values.by_ref()) {
            // A string field as it is; a mapping (or other JSON) as its JSON text.
            let text = Zeroizing::new(value.expose_secret().to_owned());
            add_masked(&mut masked, &text);
            insert(
                &mut env,
                s.name.clone(),
                text,
                format!("--secret {}=...", s.name),
            )?;
        }
        for (m, value) in self.maps.iter().zip(values) {
            let mut map = vars::secret_mapping(value, &m.path, "--secret-map")
                .map_err(|f| f.with_hint("use --secret NAME=PATH#field for one value"))?;
            let pairs = vars::mapping_vars(&m.path, &map, &m.prefix);
            vars::wipe_map(&mut map);
            for (name, text) in pairs? {
                if !self.override_parent && parent_has(&name) {
                    return Err(Failure::new(
                        Exit::Config,
                        format!(
                            "secret `{}` would set `{name}`, which this environment already \
                             has; --secret-map does not replace a variable",
                            m.path
                        ),
                    )
                    .with_hint(format!(
                        "give --override to replace it, a PREFIX (--secret-map '{}=APP_'), \
                         or set it on purpose with --secret {name}=PATH#key",
                        m.path
                    )));
                }
                add_masked(&mut masked, &text);
                insert(&mut env, name, text, format!("--secret-map {}", m.path))?;
            }
        }
        Ok(Snapshot { vars: env, masked })
    }

    /// The names to remove from the command's environment: every
    /// credential variable the library declares, unless `--pass-credentials`.
    /// A `--secret` of one of these names still sets it (it is set after).
    pub(crate) fn removed(&self) -> Vec<String> {
        if self.pass_credentials {
            return Vec::new();
        }
        vault_secret::variables::credentials(vault_secret::variables::DEFAULT_CREDENTIALS_SECRET)
    }
}

/// Whether the parent (this process) has the variable `name`.
pub(crate) fn parent_has(name: &str) -> bool {
    std::env::var_os(name).is_some()
}

/// `text`, and each string inside it when it is JSON, into `masked`.
fn add_masked(masked: &mut Vec<Zeroizing<String>>, text: &str) {
    masked.push(Zeroizing::new(text.to_owned()));
    if !text.starts_with(['{', '[']) {
        return;
    }
    if let Ok(mut json) = serde_json::from_str::<serde_json::Value>(text) {
        strings_in(&json, masked);
        secret_core::zeroize_json(&mut json);
    }
}

fn strings_in(json: &serde_json::Value, out: &mut Vec<Zeroizing<String>>) {
    match json {
        serde_json::Value::String(s) => out.push(Zeroizing::new(s.clone())),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

fn insert(
    vars: &mut Vars,
    name: String,
    value: Zeroizing<String>,
    origin: String,
) -> Result<(), Failure> {
    vars::check_no_nul(&name, &value)?;
    if let Some((_, earlier)) = vars.get(&name) {
        return Err(Failure::new(
            Exit::Config,
            format!("variable `{name}` would be set twice: by {earlier} and by {origin}"),
        )
        .with_hint("use a different NAME or a --secret-map PREFIX"));
    }
    vars.insert(name, (value, origin));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_args() {
        let s = parse_secret("DB_PASS=secret/db#pass=word").unwrap();
        assert_eq!(
            (s.name.as_str(), s.path.as_str()),
            ("DB_PASS", "secret/db#pass=word")
        );
        assert!(parse_secret("secret/db").is_err());
        assert!(parse_secret("DB-PASS=secret/db").is_err());
        assert!(parse_secret("DB=").is_err());
    }

    #[test]
    fn secret_map_args() {
        let m = parse_secret_map("secret/db=DB_").unwrap();
        assert_eq!((m.path.as_str(), m.prefix.as_str()), ("secret/db", "DB_"));
        let m = parse_secret_map("secret/db").unwrap();
        assert_eq!((m.path.as_str(), m.prefix.as_str()), ("secret/db", ""));
        let m = parse_secret_map("secret/a=b=").unwrap();
        assert_eq!((m.path.as_str(), m.prefix.as_str()), ("secret/a=b", ""));
        assert!(parse_secret_map("secret/db=1X").is_err());
    }

    #[test]
    fn a_variable_set_twice_is_an_error_naming_both() {
        let mut v = Vars::new();
        insert(
            &mut v,
            "A".into(),
            Zeroizing::new("1".into()),
            "first".into(),
        )
        .unwrap();
        match insert(
            &mut v,
            "A".into(),
            Zeroizing::new("2".into()),
            "second".into(),
        ) {
            Err(Failure::Error { message, .. }) => {
                assert!(
                    message.contains("first") && message.contains("second"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    fn request(override_parent: bool) -> Request {
        Request {
            secrets: vec![parse_secret("ONE=s/one#f").unwrap()],
            maps: vec![parse_secret_map("s/db").unwrap()],
            override_parent,
            pass_credentials: false,
        }
    }

    fn values() -> Vec<SecretValue> {
        vec![
            SecretValue::text("first-value"),
            SecretValue::json(
                serde_json::json!({"USER": "admin", "NESTED": {"k": "inner-secret"}}),
            ),
        ]
    }

    #[test]
    fn a_snapshot_sets_every_variable_and_masks_values_and_strings_inside() {
        let snap = request(false).snapshot(&values(), &|_| false).unwrap();
        let names: Vec<&str> = snap.vars.keys().map(String::as_str).collect();
        assert_eq!(names, ["NESTED", "ONE", "USER"]);
        let masked: Vec<&str> = snap.masked.iter().map(|m| m.as_str()).collect();
        for want in [
            "first-value",
            "admin",
            "inner-secret",
            r#"{"k":"inner-secret"}"#,
        ] {
            assert!(masked.contains(&want), "{want} in {masked:?}");
        }
    }

    #[test]
    fn a_secret_map_does_not_replace_a_parent_variable_without_override() {
        let parent = |name: &str| name == "USER";
        match request(false).snapshot(&values(), &parent) {
            Err(Failure::Error {
                exit,
                message,
                hint,
            }) => {
                assert_eq!(exit, Exit::Config);
                assert!(
                    message.contains("`s/db`") && message.contains("`USER`"),
                    "{message}"
                );
                assert!(!message.contains("admin"), "{message}");
                assert!(hint.unwrap_or_default().contains("--override"));
            }
            other => panic!("{other:?}"),
        }
        assert!(request(true).snapshot(&values(), &parent).is_ok());
        // A --secret sets a variable the parent has on purpose.
        let one = |name: &str| name == "ONE";
        assert!(request(false).snapshot(&values(), &one).is_ok());
    }

    #[test]
    fn credentials_are_removed_unless_passed() {
        let mut r = request(false);
        let removed = r.removed();
        for name in [
            "VAULT_TOKEN",
            "VAULT_ROLE_ID",
            "VAULT_SECRET_ID",
            "VAULT_JWT",
        ] {
            assert!(removed.iter().any(|n| n == name), "{name}");
        }
        r.pass_credentials = true;
        assert!(r.removed().is_empty());
    }
}
