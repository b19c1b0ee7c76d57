//! The `VAULT_CREDENTIALS` secret: which authentication methods are configured.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use secret_core::{Env, SecretChain};

use crate::Error;

/// The default name of the credentials secret.
pub const DEFAULT_CREDENTIALS_SECRET: &str = "VAULT_CREDENTIALS";

/// The default Kubernetes service-account token file.
pub const DEFAULT_KUBE_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

const KNOWN_KEYS: [&str; 7] = [
    "VAULT_TOKEN",
    "VAULT_ROLE_ID",
    "VAULT_SECRET_ID",
    "VAULT_APPROLE_PATH",
    "VAULT_KUBE_AUTH_ROLE",
    "VAULT_KUBE_AUTH_PATH",
    "VAULT_KUBE_TOKEN_FILE",
];

/// The configured authentication material. `Debug` shows which keys are
/// present, never their values (they are `SecretString`s).
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    /// Where they came from, for messages: a secret's name, `VAULT_TOKEN` or `~/.vault-token`.
    pub(crate) origin: String,
    pub(crate) token: Option<SecretString>,
    pub(crate) role_id: Option<SecretString>,
    pub(crate) secret_id: Option<SecretString>,
    pub(crate) approle_mount: String,
    pub(crate) kube_role: Option<String>,
    pub(crate) kube_mount: Option<String>,
    pub(crate) kube_token_file: PathBuf,
}

/// One authentication method with all its keys.
#[derive(Debug)]
pub(crate) enum Method<'a> {
    Token(&'a SecretString),
    AppRole {
        mount: &'a str,
        role_id: &'a SecretString,
        secret_id: &'a SecretString,
    },
    Kubernetes {
        mount: &'a str,
        role: &'a str,
        token_file: &'a PathBuf,
    },
}

impl Method<'_> {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Method::Token(_) => "token",
            Method::AppRole { .. } => "approle",
            Method::Kubernetes { .. } => "kubernetes",
        }
    }
}

impl Credentials {
    fn empty(origin: impl Into<String>) -> Self {
        Credentials {
            origin: origin.into(),
            token: None,
            role_id: None,
            secret_id: None,
            approle_mount: "approle".into(),
            kube_role: None,
            kube_mount: None,
            kube_token_file: PathBuf::from(DEFAULT_KUBE_TOKEN_FILE),
        }
    }

    /// Reads the credentials secret `name` through `chain`; where no source
    /// has it, falls back to `VAULT_TOKEN`, then `~/.vault-token`, as Vault's CLI does.
    pub(crate) async fn load(chain: &SecretChain, name: &str, env: &Env) -> Result<Self, Error> {
        if let Some(value) = chain.get_optional(name).await? {
            return Self::from_mapping(name, &value);
        }
        if let Some(token) = env
            .get("VAULT_TOKEN")?
            .map(zeroize::Zeroizing::new)
            .filter(|t| !t.trim().is_empty())
        {
            let mut creds = Credentials::empty("the environment variable `VAULT_TOKEN`");
            creds.token = Some(SecretString::from(token.trim().to_owned()));
            return Ok(creds);
        }
        if let Some(home) = env.get("HOME")?.filter(|h| !h.is_empty()) {
            let file = PathBuf::from(home).join(".vault-token");
            match tokio::fs::read_to_string(&file).await {
                Ok(text) => {
                    let text = zeroize::Zeroizing::new(text);
                    if !text.trim().is_empty() {
                        let mut creds =
                            Credentials::empty(format!("the token file `{}`", file.display()));
                        creds.token = Some(SecretString::from(text.trim().to_owned()));
                        return Ok(creds);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::config(
                        "~/.vault-token",
                        format!("cannot read `{}`: {e}", file.display()),
                    ));
                }
            }
        }
        Ok(Credentials::empty(format!(
            "nowhere (no secret `{name}`, no `VAULT_TOKEN`, no `~/.vault-token`)"
        )))
    }

    /// Parses the credentials mapping; errors name the secret and key, never a value.
    pub(crate) fn from_mapping(
        name: &str,
        value: &secret_core::SecretValue,
    ) -> Result<Self, Error> {
        let invalid = |reason: String| Error::Credentials {
            secret: name.to_owned(),
            reason,
        };
        let mut map = value.to_mapping().map_err(|_| {
            invalid(r#"it must be a JSON mapping, such as {"VAULT_TOKEN": "..."}"#.into())
        })?;
        let mut take = |key: &str| -> Result<Option<SecretString>, Error> {
            match map.remove(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) if s.trim().is_empty() => {
                    Err(invalid(format!("key `{key}` is empty")))
                }
                Some(serde_json::Value::String(s)) => Ok(Some(SecretString::from(s))),
                Some(_) => Err(invalid(format!("key `{key}` must be a string"))),
            }
        };
        let mut creds = Credentials::empty(format!("the secret `{name}`"));
        creds.token = take("VAULT_TOKEN")?;
        creds.role_id = take("VAULT_ROLE_ID")?;
        creds.secret_id = take("VAULT_SECRET_ID")?;
        let plain = |s: SecretString| s.expose_secret().trim().trim_matches('/').to_owned();
        if let Some(mount) = take("VAULT_APPROLE_PATH")? {
            creds.approle_mount = plain(mount);
        }
        creds.kube_role =
            take("VAULT_KUBE_AUTH_ROLE")?.map(|s| s.expose_secret().trim().to_owned());
        creds.kube_mount = take("VAULT_KUBE_AUTH_PATH")?.map(plain);
        if let Some(file) = take("VAULT_KUBE_TOKEN_FILE")? {
            creds.kube_token_file = PathBuf::from(file.expose_secret().trim());
        }
        let unknown: Vec<&String> = map
            .keys()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
            .collect();
        if !unknown.is_empty() {
            tracing::warn!(secret = name, keys = ?unknown, "ignoring unknown keys in the credentials secret");
        }
        // Wipe what is left of the parsed mapping.
        map.values_mut().for_each(secret_core::zeroize_json);
        Ok(creds)
    }

    /// The complete methods, in the order they are tried: token, AppRole, Kubernetes.
    /// With none, the error names the three methods and the keys each lacks.
    pub(crate) fn methods(&self) -> Result<Vec<Method<'_>>, Error> {
        let mut methods = Vec::with_capacity(3);
        let mut missing = Vec::with_capacity(3);
        match &self.token {
            Some(token) => methods.push(Method::Token(token)),
            None => missing.push("token: `VAULT_TOKEN` missing".to_owned()),
        }
        match (&self.role_id, &self.secret_id) {
            (Some(role_id), Some(secret_id)) => methods.push(Method::AppRole {
                mount: &self.approle_mount,
                role_id,
                secret_id,
            }),
            (Some(_), None) => missing
                .push("approle: partial, `VAULT_ROLE_ID` given without `VAULT_SECRET_ID`".into()),
            (None, Some(_)) => missing
                .push("approle: partial, `VAULT_SECRET_ID` given without `VAULT_ROLE_ID`".into()),
            (None, None) => {
                missing.push("approle: `VAULT_ROLE_ID` and `VAULT_SECRET_ID` missing".into())
            }
        }
        match (&self.kube_role, &self.kube_mount) {
            (Some(role), mount) => methods.push(Method::Kubernetes {
                mount: mount.as_deref().unwrap_or("kubernetes"),
                role,
                token_file: &self.kube_token_file,
            }),
            (None, Some(_)) => missing.push(
                "kubernetes: partial, `VAULT_KUBE_AUTH_PATH` given without `VAULT_KUBE_AUTH_ROLE`"
                    .into(),
            ),
            (None, None) => missing.push("kubernetes: `VAULT_KUBE_AUTH_ROLE` missing".into()),
        }
        if methods.is_empty() {
            return Err(Error::NoCredentials {
                detail: format!(
                    "credentials read from {}; {}",
                    self.origin,
                    missing.join("; ")
                ),
            });
        }
        Ok(methods)
    }

    /// Feeds everything that identifies these credentials into `hasher`
    /// (to share one login per process; the hash never leaves memory).
    pub(crate) fn hash_into(&self, hasher: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        let secret = |s: &Option<SecretString>| s.as_ref().map(|s| s.expose_secret().to_owned());
        (
            secret(&self.token),
            secret(&self.role_id),
            secret(&self.secret_id),
        )
            .hash(hasher);
        (
            &self.approle_mount,
            &self.kube_role,
            &self.kube_mount,
            &self.kube_token_file,
        )
            .hash(hasher);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secret_core::{LocalContext, SecretValue};

    fn parse(json: &str) -> Result<Credentials, Error> {
        Credentials::from_mapping("VAULT_CREDENTIALS", &SecretValue::text(json))
    }

    #[test]
    fn methods_in_order() {
        let c = parse(r#"{"VAULT_TOKEN":"t","VAULT_ROLE_ID":"r","VAULT_SECRET_ID":"s","VAULT_KUBE_AUTH_ROLE":"k"}"#).unwrap();
        let names: Vec<_> = c.methods().unwrap().iter().map(Method::name).collect();
        assert_eq!(names, ["token", "approle", "kubernetes"]);
    }

    #[test]
    fn custom_mounts_and_token_file() {
        let c = parse(
            r#"{"VAULT_ROLE_ID":"r","VAULT_SECRET_ID":"s","VAULT_APPROLE_PATH":"/my-approle/",
                "VAULT_KUBE_AUTH_ROLE":"k","VAULT_KUBE_AUTH_PATH":"k8s","VAULT_KUBE_TOKEN_FILE":"/tmp/t"}"#,
        )
        .unwrap();
        match &c.methods().unwrap()[..] {
            [
                Method::AppRole { mount, .. },
                Method::Kubernetes {
                    mount: km,
                    token_file,
                    ..
                },
            ] => {
                assert_eq!(*mount, "my-approle");
                assert_eq!(*km, "k8s");
                assert_eq!(token_file.to_str(), Some("/tmp/t"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn none_names_all_three_and_partials() {
        let err = parse(r#"{"VAULT_ROLE_ID":"hunter2"}"#)
            .unwrap()
            .methods()
            .unwrap_err()
            .to_string();
        assert!(err.contains("token: `VAULT_TOKEN` missing"), "{err}");
        assert!(
            err.contains("approle: partial, `VAULT_ROLE_ID` given without `VAULT_SECRET_ID`"),
            "{err}"
        );
        assert!(
            err.contains("kubernetes: `VAULT_KUBE_AUTH_ROLE` missing"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn bad_shapes_name_the_secret_never_the_value() {
        for bad in [
            "hunter2",
            "[\"hunter2\"]",
            r#"{"VAULT_TOKEN": 5}"#,
            r#"{"VAULT_TOKEN": ""}"#,
        ] {
            let err = parse(bad).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::Credentials { .. }), "{msg}");
            assert!(
                msg.contains("`VAULT_CREDENTIALS`") && !msg.contains("hunter2"),
                "{msg}"
            );
        }
    }

    #[test]
    fn debug_shows_no_values() {
        let c =
            parse(r#"{"VAULT_TOKEN":"hunter2","VAULT_ROLE_ID":"r0le","VAULT_SECRET_ID":"s3cret"}"#)
                .unwrap();
        let shown = format!("{c:?}");
        for v in ["hunter2", "r0le", "s3cret"] {
            assert!(!shown.contains(v), "{shown}");
        }
    }

    #[tokio::test]
    async fn fallback_to_vault_token_then_token_file() {
        let home = tempfile::tempdir().unwrap();
        let chain = SecretChain::empty();
        let env = Env::from_map([("VAULT_TOKEN", " tok\n")]);
        let c = Credentials::load(&chain, "VAULT_CREDENTIALS", &env)
            .await
            .unwrap();
        assert_eq!(c.token.unwrap().expose_secret(), "tok");

        std::fs::write(home.path().join(".vault-token"), "filetok\n").unwrap();
        let env = Env::from_map([("HOME", home.path().as_os_str().to_owned())]);
        let c = Credentials::load(&chain, "VAULT_CREDENTIALS", &env)
            .await
            .unwrap();
        assert_eq!(c.token.unwrap().expose_secret(), "filetok");

        let env = Env::from_map([("HOME", "/nonexistent-home")]);
        let err = Credentials::load(&chain, "VAULT_CREDENTIALS", &env)
            .await
            .unwrap()
            .methods()
            .unwrap_err();
        assert!(
            err.to_string().contains("no secret `VAULT_CREDENTIALS`"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn secret_wins_over_vault_token() {
        let local = LocalContext::builder()
            .secret(
                "CREDS",
                SecretValue::text(r#"{"VAULT_TOKEN":"from-secret"}"#),
            )
            .build()
            .unwrap();
        let chain = SecretChain::first_try("local", local);
        let env = Env::from_map([("VAULT_TOKEN", "from-env")]);
        let c = Credentials::load(&chain, "CREDS", &env).await.unwrap();
        assert_eq!(c.token.unwrap().expose_secret(), "from-secret");
        assert_eq!(c.origin, "the secret `CREDS`");
    }
}
