//! Which authentication methods are configured, and from where.
//!
//! # Precedence
//!
//! Credentials come from one place. The first of these that holds any is
//! used as a whole; every later one that also holds some is named (never its
//! values) in one WARN line, and the INFO line of a login names the method
//! and where its keys came from (`doctor` shows the same):
//!
//! | order | source | read when |
//! |---|---|---|
//! | 1 | the client builder's typed setters ([`token`](crate::ClientBuilder::token), [`approle`](crate::ClientBuilder::approle), ...) | any is called |
//! | 2 | the credentials secret from the process environment: `VAULT_CREDENTIALS`, then its compatibility name `PREFECT__CONTEXT__SECRETS__VAULT_CREDENTIALS` (or the chain given to [`ClientBuilder::chain`](crate::ClientBuilder::chain)) | always |
//! | 3 | the plain method variables: `VAULT_TOKEN` first, then AppRole's, Kubernetes', JWT's and certificate login's (see [`crate::variables`]) | no secret above |
//! | 4 | the config file's credentials secret: `[context.secrets] VAULT_CREDENTIALS` in `~/.prefect/config.toml` | no variable above is set (default chain only) |
//! | 5 | `~/.vault-token` (what `vault login` writes), as a token | nothing above configures any method |
//!
//! So an exported `VAULT_TOKEN` beats a config file, and AppRole variables
//! beat a developer's `~/.vault-token`. A credentials secret's name other
//! than `VAULT_CREDENTIALS` ([`ClientBuilder::credentials_secret`](crate::ClientBuilder::credentials_secret))
//! is looked up the same way under that name.
//!
//! Within the source used, the methods it configures completely are tried
//! in order: token, AppRole, Kubernetes, JWT, certificate.
//!
//! # Response-wrapped AppRole secret ids
//!
//! An orchestrator often hands a service its AppRole secret id
//! *response-wrapped*: a single-use token (`vault write -wrap-ttl=60s -f
//! auth/approle/role/NAME/secret-id`). Give that token as `VAULT_SECRET_ID`
//! and set `VAULT_SECRET_ID_WRAPPED=true` (a variable, or a key of the
//! credentials secret beside the others). The client then, at its first
//! login only:
//!
//! 1. asks `sys/wrapping/lookup` who created the token, and refuses it
//!    unopened unless it is AppRole's `auth/<mount>/role/<role>/secret-id`
//!    on the configured mount ([`Error::WrappedSecretId`] with
//!    [`WrappingKind::WrongCreationPath`](crate::WrappingKind::WrongCreationPath));
//! 2. unwraps it (`sys/wrapping/unwrap`) and keeps the secret id in memory
//!    for the logins after (renewals past the max TTL log in again).
//!
//! A token the server does not know (already unwrapped, expired) is
//! [`WrappingKind::InvalidOrUsed`](crate::WrappingKind::InvalidOrUsed), never
//! retried: if this process did not unwrap it, someone else did. So hold one
//! [`VaultClient`](crate::VaultClient) for the process's life; a second
//! client (another process, `doctor`) cannot use the same token again.
//!
//! ```no_run
//! # async fn run() -> Result<(), vault_secret::Error> {
//! // VAULT_ROLE_ID, VAULT_SECRET_ID=<wrapping token>, VAULT_SECRET_ID_WRAPPED=true
//! let vault = vault_secret::VaultClient::builder().build().await?;
//! let password = vault.read("secret/app/db#password").await?;
//! # drop(password);
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use secret_core::{Env, LocalContext, SecretChain, SecretValue};

use crate::error::{ConfigKind, Error, IncompleteMethod};
use crate::input;
use crate::jwt::{self, ActionsEndpoint};
use crate::variables::{self as var, DEFAULT_KUBE_TOKEN_FILE, Variable};

/// How errors about `~/.vault-token` name it.
const VAULT_TOKEN_FILE: &str = "~/.vault-token";

/// The keys of the credentials secret, each also read as the variable of
/// the same name when there is no secret.
const KEYS: [Variable; 15] = [
    var::VAULT_TOKEN,
    var::VAULT_ROLE_ID,
    var::VAULT_SECRET_ID,
    var::VAULT_SECRET_ID_WRAPPED,
    var::VAULT_APPROLE_PATH,
    var::VAULT_KUBE_AUTH_ROLE,
    var::VAULT_KUBE_AUTH_PATH,
    var::VAULT_KUBE_TOKEN_FILE,
    var::VAULT_JWT_ROLE,
    var::VAULT_JWT_PATH,
    var::VAULT_JWT,
    var::VAULT_JWT_FILE,
    var::VAULT_JWT_AUDIENCE,
    var::VAULT_CERT_ROLE,
    var::VAULT_CERT_AUTH_PATH,
];

/// The keys' names.
const KNOWN_KEYS: [&str; 15] = {
    let mut names = [""; 15];
    let mut i = 0;
    while i < KEYS.len() {
        names[i] = KEYS[i].name;
        i += 1;
    }
    names
};

/// Where the keys were taken from (one row of the precedence table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The client builder's typed setters.
    Builder,
    /// The credentials secret of this name, found `place` (in the variable
    /// `VAULT_CREDENTIALS`, in the config file...); it wins as a whole. The
    /// variables of the keys set beside it, which were not read.
    Secret {
        name: String,
        place: String,
        ignored: Vec<&'static str>,
    },
    /// The environment variables (no credentials secret exists), the token
    /// maybe from `~/.vault-token`.
    Environment { secret: String, token_file: bool },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Builder => f.write_str("the client builder"),
            Origin::Secret { name, place, .. } => write!(f, "the secret `{name}` ({place})"),
            Origin::Environment {
                token_file: true, ..
            } => f.write_str("the token file `~/.vault-token`"),
            Origin::Environment { .. } => f.write_str("the environment variables"),
        }
    }
}

/// The configured authentication material. `Debug` shows which keys are
/// present, never their values (they are `SecretString`s).
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    /// Where they came from, for messages ("the secret `VAULT_CREDENTIALS`").
    pub(crate) origin: String,
    /// Where the keys were looked for.
    pub(crate) keys_from: Origin,
    /// The lower-precedence sources that also held credentials, named (for
    /// the WARN line and `doctor`), never their values.
    pub(crate) ignored: Vec<String>,
    pub(crate) token: Option<SecretString>,
    pub(crate) role_id: Option<SecretString>,
    pub(crate) secret_id: Option<SecretString>,
    /// The secret id is a response-wrapping token to unwrap at first login
    /// (`VAULT_SECRET_ID_WRAPPED`).
    pub(crate) secret_id_wrapped: bool,
    pub(crate) approle_mount: String,
    pub(crate) kube_role: Option<String>,
    pub(crate) kube_mount: Option<String>,
    pub(crate) kube_token_file: PathBuf,
    pub(crate) jwt_role: Option<String>,
    pub(crate) jwt_mount: Option<String>,
    /// Checked for its shape when read.
    pub(crate) jwt: Option<SecretString>,
    pub(crate) jwt_file: Option<PathBuf>,
    pub(crate) jwt_audience: Option<String>,
    /// Read from the environment whatever the origin of the keys: the CI
    /// runner sets it, not the user.
    pub(crate) actions: Option<ActionsEndpoint>,
    pub(crate) cert_role: Option<String>,
    pub(crate) cert_mount: Option<String>,
}

/// Where a JWT login takes its token, read again at each login.
#[derive(Debug)]
pub(crate) enum JwtSource<'a> {
    Inline(&'a SecretString),
    File(&'a PathBuf),
    /// A fresh token from GitHub Actions, for this audience (GitHub's default when `None`).
    Actions {
        endpoint: &'a ActionsEndpoint,
        audience: Option<&'a str>,
    },
}

impl JwtSource<'_> {
    /// The token, read or fetched now. A local problem (a missing file, a
    /// value that is not a JWT, an endpoint that fails) is a configuration
    /// error naming the variable, not a rejected login.
    pub(crate) async fn token(&self) -> Result<SecretString, Error> {
        match self {
            JwtSource::Inline(jwt) => Ok((*jwt).clone()),
            JwtSource::File(path) => {
                let name = var::VAULT_JWT_FILE.name;
                let text = input::read_token_file(name, path)?;
                jwt::checked(&text).map_err(|e| {
                    let shown = input::shown(&path.display().to_string());
                    Error::config_kind(
                        name,
                        e.kind,
                        format!("the content of the file `{shown}` {}", e.reason),
                    )
                })
            }
            JwtSource::Actions { endpoint, audience } => endpoint.fetch(*audience).await,
        }
    }
}

/// One authentication method with all its keys.
#[derive(Debug)]
pub(crate) enum Method<'a> {
    Token(&'a SecretString),
    AppRole {
        mount: &'a str,
        role_id: &'a SecretString,
        secret_id: &'a SecretString,
        /// `secret_id` is a response-wrapping token to unwrap first.
        wrapped: bool,
    },
    Kubernetes {
        mount: &'a str,
        role: &'a str,
        token_file: &'a PathBuf,
    },
    Jwt {
        mount: &'a str,
        role: &'a str,
        source: JwtSource<'a>,
    },
    /// TLS certificate login over the transport's client certificate; the
    /// role is optional (the server then tries every role of the mount).
    Cert {
        mount: &'a str,
        role: Option<&'a str>,
    },
}

impl Method<'_> {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Method::Token(_) => "token",
            Method::AppRole { .. } => "approle",
            Method::Kubernetes { .. } => "kubernetes",
            Method::Jwt { .. } => "jwt",
            Method::Cert { .. } => "cert",
        }
    }
}

impl Credentials {
    fn empty(origin: Origin) -> Self {
        Credentials {
            origin: origin.to_string(),
            keys_from: origin,
            ignored: Vec::new(),
            token: None,
            role_id: None,
            secret_id: None,
            secret_id_wrapped: false,
            approle_mount: "approle".into(),
            kube_role: None,
            kube_mount: None,
            kube_token_file: PathBuf::from(DEFAULT_KUBE_TOKEN_FILE),
            jwt_role: None,
            jwt_mount: None,
            jwt: None,
            jwt_file: None,
            jwt_audience: None,
            actions: None,
            cert_role: None,
            cert_mount: None,
        }
    }

    /// Reads the credentials from the first source of the precedence table
    /// (see the [module docs](self)) that holds any: the credentials secret
    /// `name` from `env` (or through `chain`, when the caller gave one), the
    /// method variables, the config file's secret (without a `chain`), then
    /// `~/.vault-token`. Later sources that also hold credentials are named
    /// in [`Credentials::ignored`] and one WARN line.
    ///
    /// Every value goes through [`input`]: trimmed, and refused (naming the
    /// variable, file or key, never the value) when it holds a control
    /// character or is too long, so none reaches a request that would panic on it.
    pub(crate) async fn load(
        chain: Option<&SecretChain>,
        name: &str,
        env: &Env,
    ) -> Result<Self, Error> {
        let set_variables = set_variables(env)?;
        // 2: the secret from the process environment (or the caller's chain).
        let (secret, place) = match chain {
            Some(chain) => (
                chain.get_optional(name).await?,
                "through the client's chain".to_owned(),
            ),
            None => env_secret(name, env)?,
        };
        // 4: the config file's secret, read whenever there is one (a
        // malformed file is an error whichever source wins).
        let file = match chain {
            Some(_) => None,
            None => config_file_secret(name, env).await?,
        };
        let token_file = token_file_path(env)?;
        let mut creds = if let Some(value) = secret {
            let mut creds = Self::from_secret(name, &value, place, &set_variables)?;
            if let Some((shown, _)) = &file {
                creds
                    .ignored
                    .push(format!("the secret `{name}` in `{shown}`"));
            }
            creds
        } else if !set_variables.is_empty() {
            // 3: the plain variables.
            let mut creds = Self::from_env(name, env, &set_variables)?;
            if let Some((shown, _)) = &file {
                creds
                    .ignored
                    .push(format!("the secret `{name}` in `{shown}`"));
            }
            creds
        } else if let Some((shown, value)) = &file {
            Self::from_secret(name, value, format!("in `{shown}`"), &[])?
        } else {
            // 5: `~/.vault-token`, only when nothing else configures a method.
            let mut creds = Self::from_env(name, env, &[])?;
            if let Some(path) = &token_file {
                creds.token = Some(read_token_file(path)?);
                creds.keys_from = Origin::Environment {
                    secret: name.to_owned(),
                    token_file: true,
                };
                creds.origin = creds.keys_from.to_string();
            }
            creds.actions = ActionsEndpoint::from_env(env)?;
            return Ok(creds);
        };
        if token_file.is_some() {
            creds.ignored.push(format!("`{VAULT_TOKEN_FILE}`"));
        }
        creds.actions = ActionsEndpoint::from_env(env)?;
        creds.warn_ignored();
        Ok(creds)
    }

    /// One WARN line naming what lost to the source used (names only),
    /// once per process for each such combination: `VaultSecret::run()`
    /// resolves again every second, and a service reading in a loop should
    /// not repeat it.
    fn warn_ignored(&self) {
        static WARNED: std::sync::Mutex<Vec<(String, Vec<String>)>> =
            std::sync::Mutex::new(Vec::new());
        if self.ignored.is_empty() {
            return;
        }
        {
            let mut warned = WARNED.lock().unwrap_or_else(|p| p.into_inner());
            let seen = (self.origin.clone(), self.ignored.clone());
            // Bounded: past a few dozen combinations, warn again rather than grow.
            if warned.contains(&seen) {
                return;
            }
            if warned.len() >= 64 {
                warned.clear();
            }
            warned.push(seen);
        }
        tracing::warn!(
            used = %self.origin,
            ignored = %self.ignored.join(", "),
            "credentials found in more than one place: using the first by precedence \
             (see vault_secret's `credentials` docs); the others are ignored"
        );
    }

    /// The credentials secret's value, from wherever it was found; the
    /// variables set beside it are named as ignored.
    fn from_secret(
        name: &str,
        value: &SecretValue,
        place: String,
        set_variables: &[&'static str],
    ) -> Result<Self, Error> {
        let mut creds = Self::from_mapping(name, value)?;
        creds.keys_from = Origin::Secret {
            name: name.to_owned(),
            place,
            ignored: set_variables.to_vec(),
        };
        creds.origin = creds.keys_from.to_string();
        creds
            .ignored
            .extend(set_variables.iter().map(|v| format!("`{v}`")));
        Ok(creds)
    }

    /// The typed credentials of the client builder, given as the mapping
    /// the credentials secret would hold (so one parser checks both).
    pub(crate) fn from_builder(value: &SecretValue, env: &Env) -> Result<Self, Error> {
        let mut creds = Self::from_mapping(BUILDER_ORIGIN, value)?;
        creds.keys_from = Origin::Builder;
        creds.origin = creds.keys_from.to_string();
        // The CI runner's endpoint comes from the environment whatever sets the role.
        creds.actions = ActionsEndpoint::from_env(env)?;
        Ok(creds)
    }

    /// Every key's value, through `get` (the credentials mapping's keys or
    /// the variables of the same names), checked the same way whatever the
    /// source; `named` turns a refusal into an error naming the key or the
    /// variable.
    fn read_keys(
        &mut self,
        mut get: impl FnMut(&'static Variable) -> Result<Option<zeroize::Zeroizing<String>>, Error>,
        named: impl Fn(&'static str, input::Invalid) -> Error,
    ) -> Result<(), Error> {
        for (v, what, slot) in [
            (&var::VAULT_TOKEN, "a token", &mut self.token),
            (&var::VAULT_ROLE_ID, "a role id", &mut self.role_id),
            (&var::VAULT_SECRET_ID, "a secret id", &mut self.secret_id),
        ] {
            *slot = get(v)?
                .map(|raw| input::credential(what, &raw).map_err(|e| named(v.name, e)))
                .transpose()?;
        }
        let role = |v: &'static Variable, raw: &str| {
            input::name("a role name", raw)
                .map(str::to_owned)
                .map_err(|e| named(v.name, e))
        };
        let mount =
            |v: &'static Variable, raw: &str| input::mount(raw).map_err(|e| named(v.name, e));
        let file = |v: &'static Variable, raw: &str| {
            input::file_path(raw)
                .map(PathBuf::from)
                .map_err(|e| named(v.name, e))
        };
        // AppRole's and Kubernetes' settings, then the CI methods'.
        if let Some(raw) = get(&var::VAULT_SECRET_ID_WRAPPED)? {
            self.secret_id_wrapped = input::name("a boolean", &raw)
                .and_then(input::boolean)
                .map_err(|e| named(var::VAULT_SECRET_ID_WRAPPED.name, e))?;
        }
        if let Some(raw) = get(&var::VAULT_APPROLE_PATH)? {
            self.approle_mount = mount(&var::VAULT_APPROLE_PATH, &raw)?;
        }
        self.kube_role = get(&var::VAULT_KUBE_AUTH_ROLE)?
            .map(|raw| role(&var::VAULT_KUBE_AUTH_ROLE, &raw))
            .transpose()?;
        self.kube_mount = get(&var::VAULT_KUBE_AUTH_PATH)?
            .map(|raw| mount(&var::VAULT_KUBE_AUTH_PATH, &raw))
            .transpose()?;
        if let Some(raw) = get(&var::VAULT_KUBE_TOKEN_FILE)? {
            self.kube_token_file = file(&var::VAULT_KUBE_TOKEN_FILE, &raw)?;
        }
        for (v, slot) in [
            (&var::VAULT_JWT_ROLE, &mut self.jwt_role),
            (&var::VAULT_CERT_ROLE, &mut self.cert_role),
            (&var::VAULT_JWT_AUDIENCE, &mut self.jwt_audience),
        ] {
            *slot = get(v)?.map(|raw| role(v, &raw)).transpose()?;
        }
        for (v, slot) in [
            (&var::VAULT_JWT_PATH, &mut self.jwt_mount),
            (&var::VAULT_CERT_AUTH_PATH, &mut self.cert_mount),
        ] {
            *slot = get(v)?.map(|raw| mount(v, &raw)).transpose()?;
        }
        self.jwt = get(&var::VAULT_JWT)?
            .map(|raw| jwt::checked(&raw).map_err(|e| named(var::VAULT_JWT.name, e)))
            .transpose()?;
        self.jwt_file = get(&var::VAULT_JWT_FILE)?
            .map(|raw| file(&var::VAULT_JWT_FILE, &raw))
            .transpose()?;
        Ok(())
    }

    /// The keys from the variables of the same names (`set` names those set).
    fn from_env(secret: &str, env: &Env, set: &[&'static str]) -> Result<Self, Error> {
        let mut creds = Credentials::empty(Origin::Environment {
            secret: secret.to_owned(),
            token_file: false,
        });
        creds.read_keys(|v| read_variable(env, v), |name, e| e.for_variable(name))?;
        let set: Vec<String> = set.iter().map(|v| format!("`{v}`")).collect();
        creds.origin = match set.len() {
            0 => "nowhere".to_owned(),
            1 => format!("the environment variable {}", set[0]),
            _ => format!("the environment variables {}", set.join(", ")),
        };
        Ok(creds)
    }

    /// Parses the credentials mapping; errors name the secret and key, never a value.
    pub(crate) fn from_mapping(
        name: &str,
        value: &secret_core::SecretValue,
    ) -> Result<Self, Error> {
        let invalid = |kind, source: Option<secret_core::BoxError>| Error::Credentials {
            secret: name.to_owned(),
            key: None,
            kind,
            reason: r#"it must be a JSON mapping, such as {"VAULT_TOKEN": "..."}"#.into(),
            source,
        };
        // A syntax error never quotes the text (a type error could), so it
        // can be the source; the shape is checked apart.
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(value.expose_secret()) {
            return Err(invalid(ConfigKind::NotAMapping, Some(Box::new(e))));
        }
        let mut map = value
            .to_mapping()
            .map_err(|_| invalid(ConfigKind::NotAMapping, None))?;
        let parsed = Self::from_map(name, &mut map);
        // Wipe what is left of the parsed mapping, whatever happened.
        map.values_mut().for_each(secret_core::zeroize_json);
        parsed
    }

    fn from_map(
        name: &str,
        map: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, Error> {
        // Each value, trimmed; a non-string or an empty string is an error naming the key.
        let mut take = |key: &str| -> Result<Option<zeroize::Zeroizing<String>>, Error> {
            match map.remove(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => {
                    let s = zeroize::Zeroizing::new(s);
                    if s.trim().is_empty() {
                        return Err(
                            input::Invalid::new(ConfigKind::Empty, "is empty").for_key(name, key)
                        );
                    }
                    Ok(Some(s))
                }
                Some(mut other) => {
                    secret_core::zeroize_json(&mut other);
                    Err(
                        input::Invalid::new(ConfigKind::NotAString, "must be a string")
                            .for_key(name, key),
                    )
                }
            }
        };
        let mut creds = Credentials::empty(Origin::Secret {
            name: name.to_owned(),
            place: String::new(),
            ignored: Vec::new(),
        });
        creds.read_keys(|v| take(v.name), |key, e| e.for_key(name, key))?;
        let unknown: Vec<&String> = map
            .keys()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
            .collect();
        if !unknown.is_empty() {
            tracing::warn!(secret = name, keys = ?unknown, "ignoring unknown keys in the credentials secret");
        }
        Ok(creds)
    }

    /// The complete methods, in the order they are tried: token, AppRole,
    /// Kubernetes, JWT, certificate. With none, the error names the methods
    /// and the keys each lacks.
    pub(crate) fn methods(&self) -> Result<Vec<Method<'_>>, Error> {
        let found = [
            self.token_method(),
            self.approle_method(),
            self.kube_method(),
            self.jwt_method(),
            self.cert_method(),
        ];
        let mut methods = Vec::with_capacity(found.len());
        let mut incomplete = Vec::with_capacity(found.len());
        for method in found {
            match method {
                Ok(method) => methods.push(method),
                Err(lacks) => incomplete.push(lacks),
            }
        }
        if methods.is_empty() {
            return Err(Error::NoCredentials {
                looked_in: self.looked_in(),
                incomplete,
            });
        }
        Ok(methods)
    }

    fn token_method(&self) -> Result<Method<'_>, IncompleteMethod> {
        match &self.token {
            Some(token) => Ok(Method::Token(token)),
            None => Err(IncompleteMethod::new("token", &[], &["VAULT_TOKEN"])),
        }
    }

    fn approle_method(&self) -> Result<Method<'_>, IncompleteMethod> {
        const ROLE: &str = "VAULT_ROLE_ID";
        const SECRET: &str = "VAULT_SECRET_ID";
        match (&self.role_id, &self.secret_id) {
            (Some(role_id), Some(secret_id)) => Ok(Method::AppRole {
                mount: &self.approle_mount,
                role_id,
                secret_id,
                wrapped: self.secret_id_wrapped,
            }),
            (Some(_), None) => Err(IncompleteMethod::new("approle", &[ROLE], &[SECRET])),
            (None, Some(_)) => Err(IncompleteMethod::new("approle", &[SECRET], &[ROLE])),
            (None, None) => Err(IncompleteMethod::new("approle", &[], &[ROLE, SECRET])),
        }
    }

    fn kube_method(&self) -> Result<Method<'_>, IncompleteMethod> {
        const ROLE: &str = "VAULT_KUBE_AUTH_ROLE";
        match (&self.kube_role, &self.kube_mount) {
            (Some(role), mount) => Ok(Method::Kubernetes {
                mount: mount.as_deref().unwrap_or("kubernetes"),
                role,
                token_file: &self.kube_token_file,
            }),
            (None, Some(_)) => Err(IncompleteMethod::new(
                "kubernetes",
                &["VAULT_KUBE_AUTH_PATH"],
                &[ROLE],
            )),
            (None, None) => Err(IncompleteMethod::new("kubernetes", &[], &[ROLE])),
        }
    }

    fn jwt_method(&self) -> Result<Method<'_>, IncompleteMethod> {
        const ROLE: &str = "VAULT_JWT_ROLE";
        // The inline token wins over the file; the Actions endpoint serves
        // only when neither is given.
        let source = match (&self.jwt, &self.jwt_file, &self.actions) {
            (Some(jwt), _, _) => Some(JwtSource::Inline(jwt)),
            (None, Some(file), _) => Some(JwtSource::File(file)),
            (None, None, Some(endpoint)) => Some(JwtSource::Actions {
                endpoint,
                audience: self.jwt_audience.as_deref(),
            }),
            (None, None, None) => None,
        };
        let given_token: &[&'static str] = match (&self.jwt, &self.jwt_file) {
            (Some(_), _) => &["VAULT_JWT"],
            (None, Some(_)) => &["VAULT_JWT_FILE"],
            (None, None) => &[],
        };
        match (&self.jwt_role, source) {
            (Some(role), Some(source)) => Ok(Method::Jwt {
                mount: self.jwt_mount.as_deref().unwrap_or("jwt"),
                role,
                source,
            }),
            // Outside GitHub Actions (with `id-token: write`), a token must be given.
            (Some(_), None) => {
                Err(
                    IncompleteMethod::new("jwt", &[ROLE], &["VAULT_JWT", "VAULT_JWT_FILE"])
                        .any_of(),
                )
            }
            (None, _) => Err(IncompleteMethod::new("jwt", given_token, &[ROLE])),
        }
    }

    fn cert_method(&self) -> Result<Method<'_>, IncompleteMethod> {
        // Opt-in only: a client certificate for the listener alone does not log in.
        if self.cert_role.is_none() && self.cert_mount.is_none() {
            return Err(IncompleteMethod::new(
                "cert",
                &[],
                &["VAULT_CERT_ROLE", "VAULT_CERT_AUTH_PATH"],
            )
            .any_of());
        }
        Ok(Method::Cert {
            mount: self.cert_mount.as_deref().unwrap_or("cert"),
            role: self.cert_role.as_deref(),
        })
    }

    /// The claims of the JWT the JWT method would log in with now (read
    /// from its file or fetched from GitHub Actions), for `doctor`; `None`
    /// without a JWT method or when the payload does not decode.
    pub(crate) async fn jwt_claims(&self) -> Result<Option<jwt::JwtClaims>, Error> {
        for method in self.methods()? {
            if let Method::Jwt { source, .. } = method {
                return Ok(jwt::JwtClaims::decode(&source.token().await?));
            }
        }
        Ok(None)
    }

    /// Where the keys were looked for, for messages.
    fn looked_in(&self) -> String {
        match &self.keys_from {
            Origin::Builder => "looked in the client builder's credentials".to_owned(),
            Origin::Secret { name, ignored, .. } if ignored.is_empty() => {
                format!("looked in the secret `{name}`")
            }
            Origin::Secret { name, ignored, .. } => format!(
                "looked in the secret `{name}`, which wins as a whole: the variables {} \
                 are set but not read",
                ignored
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Origin::Environment { secret, .. } => {
                // Lower sources that were set but not read, as their keys
                // may be the ones missing.
                let skipped: Vec<&String> = self
                    .ignored
                    .iter()
                    .filter(|s| !s.contains("~/.vault-token"))
                    .collect();
                let also = match skipped.is_empty() {
                    true => String::new(),
                    false => format!(
                        "; not read, as lower in precedence: {}",
                        skipped
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                format!(
                    "looked in the environment variables and `~/.vault-token` (there is no \
                     secret `{secret}` in the environment){also}"
                )
            }
        }
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
            secret(&self.jwt),
            self.actions
                .as_ref()
                .map(|a| (a.url.as_str(), a.request_token.expose_secret())),
        )
            .hash(hasher);
        (
            &self.jwt_role,
            &self.jwt_mount,
            &self.jwt_file,
            &self.jwt_audience,
            &self.cert_role,
            &self.cert_mount,
        )
            .hash(hasher);
        (
            self.secret_id_wrapped,
            &self.approle_mount,
            &self.kube_role,
            &self.kube_mount,
            &self.kube_token_file,
        )
            .hash(hasher);
    }
}

/// How errors about the builder's typed credentials name their origin.
const BUILDER_ORIGIN: &str = "the client builder";

/// A variable's value, `None` when unset or blank (wiped on drop).
fn read_variable(env: &Env, v: &Variable) -> Result<Option<zeroize::Zeroizing<String>>, Error> {
    Ok(env
        .get(v.name)?
        .map(zeroize::Zeroizing::new)
        .filter(|t| !t.trim().is_empty()))
}

/// The names of the key variables set (not blank), in the keys' order.
fn set_variables(env: &Env) -> Result<Vec<&'static str>, Error> {
    let mut set = Vec::new();
    for key in KEYS {
        if read_variable(env, &key)?.is_some() {
            set.push(key.name);
        }
    }
    Ok(set)
}

/// The credentials secret `name` from the process environment: the
/// variable of that name, else its compatibility name; and where it was.
fn env_secret(name: &str, env: &Env) -> Result<(Option<SecretValue>, String), Error> {
    let compat = format!("{}{name}", secret_core::DEFAULT_ENV_PREFIX);
    for variable in [name, compat.as_str()] {
        if let Some(text) = env.get(variable)?.filter(|t| !t.trim().is_empty()) {
            return Ok((
                Some(SecretValue::text(text)),
                format!("in the variable `{variable}`"),
            ));
        }
    }
    Ok((None, String::new()))
}

/// The config file's (`~/.prefect/config.toml`) credentials secret, and the
/// file as shown, when `HOME` is set and the file holds the secret.
async fn config_file_secret(name: &str, env: &Env) -> Result<Option<(String, SecretValue)>, Error> {
    let Some(home) = env.get(var::HOME.name)?.filter(|h| !h.trim().is_empty()) else {
        return Ok(None);
    };
    let file = Path::new(&home).join(secret_core::DEFAULT_CONFIG_FILE);
    let local = LocalContext::builder().config_file(&file).build()?;
    let chain = SecretChain::first_try("config file", local);
    Ok(chain
        .get_optional(name)
        .await?
        .map(|value| (input::shown(&file.display().to_string()), value)))
}

/// `~/.vault-token`, when `HOME` is set and something is at that path
/// (what it is, is checked when read).
fn token_file_path(env: &Env) -> Result<Option<PathBuf>, Error> {
    let Some(home) = env.get(var::HOME.name)?.filter(|h| !h.trim().is_empty()) else {
        return Ok(None);
    };
    let file = PathBuf::from(home).join(".vault-token");
    Ok(std::fs::symlink_metadata(&file).is_ok().then_some(file))
}

/// The token in `~/.vault-token`.
fn read_token_file(file: &Path) -> Result<SecretString, Error> {
    let text = input::read_token_file(VAULT_TOKEN_FILE, file)?;
    input::token(VAULT_TOKEN_FILE, &text)
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

    const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2lnbmF0dXJl";

    #[test]
    fn jwt_and_cert_come_last_and_cert_only_when_asked_for() {
        let c = parse(&format!(
            r#"{{"VAULT_TOKEN":"t","VAULT_KUBE_AUTH_ROLE":"k","VAULT_JWT_ROLE":"ci",
                "VAULT_JWT":"{JWT}","VAULT_CERT_ROLE":"web"}}"#
        ))
        .unwrap();
        let names: Vec<_> = c.methods().unwrap().iter().map(Method::name).collect();
        assert_eq!(names, ["token", "kubernetes", "jwt", "cert"]);
        match &c.methods().unwrap()[2..] {
            [
                Method::Jwt {
                    mount,
                    role,
                    source: JwtSource::Inline(_),
                },
                Method::Cert {
                    mount: cert_mount,
                    role: Some("web"),
                },
            ] => assert_eq!((*mount, *role, *cert_mount), ("jwt", "ci", "cert")),
            other => panic!("{other:?}"),
        }
        // The mount alone turns certificate login on too; nothing else does.
        let c = parse(r#"{"VAULT_CERT_AUTH_PATH":"tls-auth"}"#).unwrap();
        assert!(matches!(
            &c.methods().unwrap()[..],
            [Method::Cert {
                mount: "tls-auth",
                role: None
            }]
        ));
        let err = parse(r#"{"VAULT_JWT_ROLE":"ci"}"#)
            .unwrap()
            .methods()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("jwt: partial, `VAULT_JWT_ROLE` given without"),
            "{err}"
        );
        assert!(
            err.contains("cert: `VAULT_CERT_ROLE` or `VAULT_CERT_AUTH_PATH` missing"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_jwt_that_is_not_three_parts_names_its_key_or_variable() {
        let err = parse(r#"{"VAULT_JWT_ROLE":"ci","VAULT_JWT":"hunter2.x"}"#).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("key `VAULT_JWT` is not a JWT"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        let env = Env::from_map([("VAULT_JWT_ROLE", "ci"), ("VAULT_JWT", "hunter2")]);
        let err = Credentials::load(None, "VAULT_CREDENTIALS", &env)
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("`VAULT_JWT`") && msg.contains("is not a JWT"),
            "{msg}"
        );
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[tokio::test]
    async fn github_actions_serves_a_role_without_a_token_and_the_inline_token_wins() {
        let env = Env::from_map([
            ("VAULT_JWT_ROLE", "ci"),
            ("VAULT_JWT_AUDIENCE", "vault"),
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                "http://127.0.0.1:1/token?api-version=2.0",
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-hunter2"),
        ]);
        let c = Credentials::load(None, "VAULT_CREDENTIALS", &env)
            .await
            .unwrap();
        let methods = c.methods().unwrap();
        assert!(
            matches!(
                &methods[..],
                [Method::Jwt {
                    source: JwtSource::Actions {
                        audience: Some("vault"),
                        ..
                    },
                    ..
                }]
            ),
            "{methods:?}"
        );
        let shown = format!("{c:?} {methods:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let c = parse(&format!(
            r#"{{"VAULT_JWT_ROLE":"ci","VAULT_JWT":"{JWT}","VAULT_JWT_FILE":"/f"}}"#
        ))
        .unwrap();
        assert!(matches!(
            &c.methods().unwrap()[..],
            [Method::Jwt {
                source: JwtSource::Inline(_),
                ..
            }]
        ));
        let shown = format!("{c:?}");
        assert!(!shown.contains(JWT), "{shown}");
    }

    #[tokio::test]
    async fn an_empty_or_missing_jwt_file_is_a_configuration_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jwt");
        let path = file.clone();
        let source = JwtSource::File(&path);
        let err = source.token().await.unwrap_err();
        assert!(
            matches!(&err, Error::Config { name, kind: ConfigKind::FileMissing, .. } if name == "VAULT_JWT_FILE"),
            "{err:?}"
        );
        std::fs::write(&file, "\n").unwrap();
        let err = source.token().await.unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
        std::fs::write(&file, "hunter2\n").unwrap();
        let msg = source.token().await.unwrap_err().to_string();
        assert!(
            msg.contains("VAULT_JWT_FILE") && msg.contains("is not a JWT"),
            "{msg}"
        );
        assert!(!msg.contains("hunter2"), "{msg}");
        std::fs::write(&file, format!("{JWT}\n")).unwrap();
        assert_eq!(source.token().await.unwrap().expose_secret(), JWT);
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
    fn what_is_missing_is_data_in_the_order_methods_are_tried() {
        let err = parse(r#"{"VAULT_SECRET_ID":"s","VAULT_JWT":"a.b.c"}"#)
            .unwrap()
            .methods()
            .unwrap_err();
        let Error::NoCredentials { incomplete, .. } = &err else {
            panic!("{err}");
        };
        let shown: Vec<(&str, &[&str], &[&str], bool)> = incomplete
            .iter()
            .map(|m| (m.method, &m.given[..], &m.missing[..], m.any_of))
            .collect();
        assert_eq!(
            shown,
            [
                ("token", &[][..], &["VAULT_TOKEN"][..], false),
                ("approle", &["VAULT_SECRET_ID"], &["VAULT_ROLE_ID"], false),
                ("kubernetes", &[], &["VAULT_KUBE_AUTH_ROLE"], false),
                ("jwt", &["VAULT_JWT"], &["VAULT_JWT_ROLE"], false),
                (
                    "cert",
                    &[],
                    &["VAULT_CERT_ROLE", "VAULT_CERT_AUTH_PATH"],
                    true
                ),
            ]
        );
        let text = err.to_string();
        assert!(
            text.contains("cert: `VAULT_CERT_ROLE` or `VAULT_CERT_AUTH_PATH` missing"),
            "{text}"
        );
        assert!(
            text.contains("jwt: partial, `VAULT_JWT` given without `VAULT_JWT_ROLE`"),
            "{text}"
        );
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
    fn every_value_is_trimmed() {
        let c = parse(
            r#"{"VAULT_TOKEN":"root\n","VAULT_ROLE_ID":" r\r\n","VAULT_SECRET_ID":"\ts ",
                "VAULT_APPROLE_PATH":" approle/ \n","VAULT_KUBE_AUTH_ROLE":"k\n",
                "VAULT_KUBE_AUTH_PATH":"k8s\n","VAULT_KUBE_TOKEN_FILE":"/tmp/t\n"}"#,
        )
        .unwrap();
        assert_eq!(c.token.unwrap().expose_secret(), "root");
        assert_eq!(c.role_id.unwrap().expose_secret(), "r");
        assert_eq!(c.secret_id.unwrap().expose_secret(), "s");
        assert_eq!(c.approle_mount, "approle");
        assert_eq!(c.kube_role.as_deref(), Some("k"));
        assert_eq!(c.kube_mount.as_deref(), Some("k8s"));
        assert_eq!(c.kube_token_file.to_str(), Some("/tmp/t"));
    }

    #[test]
    fn control_characters_inside_any_key_name_the_key_never_the_value() {
        for key in KNOWN_KEYS {
            for (bad, phrase) in [
                // JSON escapes: the parsed value holds the character itself.
                (r"hunter\n2", "line feed"),
                (r"hunter\r\n2", "carriage return"),
                (r"hunter\t2", "tab"),
                (r"hunter\u00002", "NUL"),
                (r"hunter\u007f2", "DEL"),
            ] {
                let err = parse(&format!(r#"{{"{key}": "{bad}"}}"#)).unwrap_err();
                let msg = err.to_string();
                assert!(matches!(err, Error::Credentials { .. }), "{msg}");
                assert!(msg.contains(&format!("key `{key}`")), "{msg}");
                assert!(msg.contains(phrase), "{key} {bad}: {msg}");
                assert!(!msg.contains("hunter"), "{msg}");
            }
        }
    }

    #[tokio::test]
    async fn the_token_variable_and_file_follow_the_same_rules() {
        let env = Env::from_map([("VAULT_TOKEN", "hunter\n2")]);
        let err = Credentials::load(None, "VAULT_CREDENTIALS", &env)
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("invalid `VAULT_TOKEN`"), "{msg}");
        assert!(!msg.contains("hunter"), "{msg}");

        let home = tempfile::tempdir().unwrap();
        let env = Env::from_map([("HOME", home.path().as_os_str().to_owned())]);
        for (content, phrase) in [
            (&b"hunter2\nsecond-line\n"[..], "line feed"),
            (b"", "is empty"),
            (b"hunter\x002", "NUL"),
        ] {
            std::fs::write(home.path().join(".vault-token"), content).unwrap();
            let err = Credentials::load(None, "VAULT_CREDENTIALS", &env)
                .await
                .unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with("invalid `~/.vault-token`"), "{msg}");
            assert!(msg.contains(phrase), "{content:?}: {msg}");
            assert!(!msg.contains("hunter"), "{msg}");
        }
        std::fs::remove_file(home.path().join(".vault-token")).unwrap();
        std::fs::create_dir(home.path().join(".vault-token")).unwrap();
        let err = Credentials::load(None, "VAULT_CREDENTIALS", &env)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
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
        let env = Env::from_map([("VAULT_TOKEN", " tok\n")]);
        let c = Credentials::load(None, "VAULT_CREDENTIALS", &env)
            .await
            .unwrap();
        assert_eq!(c.token.unwrap().expose_secret(), "tok");

        std::fs::write(home.path().join(".vault-token"), "filetok\n").unwrap();
        let env = Env::from_map([("HOME", home.path().as_os_str().to_owned())]);
        let c = Credentials::load(None, "VAULT_CREDENTIALS", &env)
            .await
            .unwrap();
        assert_eq!(c.token.unwrap().expose_secret(), "filetok");

        let env = Env::from_map([("HOME", "/nonexistent-home")]);
        let err = Credentials::load(None, "VAULT_CREDENTIALS", &env)
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
    async fn every_method_reads_its_keys_from_variables_without_a_secret() {
        let env = Env::from_map([
            ("VAULT_ROLE_ID", " r\n"),
            ("VAULT_SECRET_ID", "s"),
            ("VAULT_APPROLE_PATH", "/ar/"),
            ("VAULT_KUBE_AUTH_ROLE", "k"),
            ("VAULT_KUBE_AUTH_PATH", "k8s"),
            ("VAULT_KUBE_TOKEN_FILE", "/tmp/t"),
        ]);
        let c = Credentials::load(None, "VAULT_CREDENTIALS", &env)
            .await
            .unwrap();
        match &c.methods().unwrap()[..] {
            [
                Method::AppRole { mount, role_id, .. },
                Method::Kubernetes {
                    mount: km,
                    role,
                    token_file,
                },
            ] => {
                assert_eq!((*mount, role_id.expose_secret()), ("ar", "r"));
                assert_eq!((*km, *role), ("k8s", "k"));
                assert_eq!(token_file.to_str(), Some("/tmp/t"));
            }
            other => panic!("{other:?}"),
        }
        let env = Env::from_map([("VAULT_ROLE_ID", "r\n2")]);
        let err = Credentials::load(None, "VAULT_CREDENTIALS", &env)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config { name, .. } if name == "VAULT_ROLE_ID"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_incomplete_method_says_where_its_keys_were_looked_for() {
        let env = Env::from_map([("VAULT_SECRET_ID", "s"), ("HOME", "/nonexistent")]);
        let err = Credentials::load(None, "VAULT_CREDENTIALS", &env)
            .await
            .unwrap()
            .methods()
            .unwrap_err()
            .to_string();
        assert!(err.contains("looked in the environment variables"), "{err}");
        assert!(
            err.contains("`VAULT_SECRET_ID` given without `VAULT_ROLE_ID`"),
            "{err}"
        );

        let local = LocalContext::builder()
            .secret(
                "VAULT_CREDENTIALS",
                SecretValue::text(r#"{"VAULT_ROLE_ID":"r"}"#),
            )
            .build()
            .unwrap();
        let chain = Some(SecretChain::first_try("local", local));
        let err = Credentials::load(chain.as_ref(), "VAULT_CREDENTIALS", &env)
            .await
            .unwrap()
            .methods()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("looked in the secret `VAULT_CREDENTIALS`"),
            "{err}"
        );
        assert!(
            err.contains("`VAULT_SECRET_ID` are set but not read"),
            "{err}"
        );
    }

    #[test]
    fn a_secret_that_is_not_json_keeps_the_syntax_error_as_source() {
        let err = parse("not json").unwrap_err();
        assert!(matches!(
            err,
            Error::Credentials {
                kind: ConfigKind::NotAMapping,
                key: None,
                ..
            }
        ));
        let source = std::error::Error::source(&err).expect("a source");
        assert!(
            source.downcast_ref::<serde_json::Error>().is_some(),
            "{source:?}"
        );
    }

    /// A scratch home with `~/.vault-token` and/or a config file holding
    /// the credentials secret.
    fn home(token_file: Option<&str>, config_token: Option<&str>) -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap();
        if let Some(token) = token_file {
            std::fs::write(home.path().join(".vault-token"), token).unwrap();
        }
        if let Some(token) = config_token {
            std::fs::create_dir(home.path().join(".prefect")).unwrap();
            std::fs::write(
                home.path().join(".prefect/config.toml"),
                format!(
                    "[context.secrets]\nVAULT_CREDENTIALS = '{{\"VAULT_TOKEN\": \"{token}\"}}'\n"
                ),
            )
            .unwrap();
        }
        home
    }

    async fn load(home: &tempfile::TempDir, vars: &[(&str, &str)]) -> Credentials {
        let mut all: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        all.push(("HOME".into(), home.path().display().to_string()));
        Credentials::load(None, "VAULT_CREDENTIALS", &Env::from_map(all))
            .await
            .unwrap()
    }

    fn method_names(c: &Credentials) -> Vec<&'static str> {
        c.methods().unwrap().iter().map(Method::name).collect()
    }

    #[tokio::test]
    async fn the_token_file_is_read_only_when_nothing_else_configures_a_method() {
        let home = home(Some("file-root-token\n"), None);
        let c = load(&home, &[("VAULT_ROLE_ID", "r"), ("VAULT_SECRET_ID", "s")]).await;
        assert_eq!(method_names(&c), ["approle"]);
        assert!(c.token.is_none());
        assert_eq!(c.ignored, ["`~/.vault-token`"]);
        // Even a half-configured method keeps the file out (and says so).
        let c = load(&home, &[("VAULT_SECRET_ID", "s")]).await;
        assert!(c.token.is_none());
        assert!(c.methods().is_err());
        let c = load(&home, &[]).await;
        assert_eq!(c.token.unwrap().expose_secret(), "file-root-token");
        assert_eq!(c.origin, "the token file `~/.vault-token`");
        assert!(c.ignored.is_empty());
    }

    #[tokio::test]
    async fn exported_variables_beat_the_config_file_and_the_env_secret_beats_both() {
        let home = home(Some("file-token"), Some("config-token"));
        let c = load(&home, &[("VAULT_TOKEN", "exported")]).await;
        assert_eq!(c.token.as_ref().unwrap().expose_secret(), "exported");
        assert_eq!(c.origin, "the environment variable `VAULT_TOKEN`");
        let shown = home
            .path()
            .join(".prefect/config.toml")
            .display()
            .to_string();
        assert_eq!(
            c.ignored,
            [
                format!("the secret `VAULT_CREDENTIALS` in `{shown}`"),
                "`~/.vault-token`".to_owned()
            ]
        );
        let c = load(&home, &[]).await;
        assert_eq!(c.token.as_ref().unwrap().expose_secret(), "config-token");
        assert_eq!(
            c.origin,
            format!("the secret `VAULT_CREDENTIALS` (in `{shown}`)")
        );
        assert_eq!(c.ignored, ["`~/.vault-token`"]);
        for name in [
            "VAULT_CREDENTIALS",
            "PREFECT__CONTEXT__SECRETS__VAULT_CREDENTIALS",
        ] {
            let c = load(
                &home,
                &[
                    (name, r#"{"VAULT_TOKEN":"env-secret"}"#),
                    ("VAULT_TOKEN", "exported"),
                ],
            )
            .await;
            assert_eq!(c.token.as_ref().unwrap().expose_secret(), "env-secret");
            assert_eq!(
                c.origin,
                format!("the secret `VAULT_CREDENTIALS` (in the variable `{name}`)")
            );
            assert_eq!(c.ignored.len(), 3, "{:?}", c.ignored);
            assert_eq!(c.ignored[0], "`VAULT_TOKEN`");
            let shown = format!("{:?} {c:?}", c.ignored);
            for value in ["exported", "config-token", "file-token", "env-secret"] {
                assert!(!shown.contains(value), "{shown}");
            }
        }
    }

    #[tokio::test]
    async fn a_half_method_in_the_variables_names_the_config_file_it_hides() {
        let home = home(None, Some("config-token"));
        let c = load(&home, &[("VAULT_APPROLE_PATH", "ar")]).await;
        let err = c.methods().unwrap_err().to_string();
        assert!(
            err.contains("not read, as lower in precedence: the secret `VAULT_CREDENTIALS` in `"),
            "{err}"
        );
        assert!(!err.contains("config-token"), "{err}");
    }

    #[tokio::test]
    async fn the_wrapped_flag_is_a_boolean_key_and_variable() {
        let c = parse(
            r#"{"VAULT_ROLE_ID":"r","VAULT_SECRET_ID":"w","VAULT_SECRET_ID_WRAPPED":"true"}"#,
        )
        .unwrap();
        assert!(c.secret_id_wrapped);
        let home = home(None, None);
        let c = load(&home, &[("VAULT_ROLE_ID", "r"), ("VAULT_SECRET_ID", "w")]).await;
        assert!(!c.secret_id_wrapped);
        let c = load(
            &home,
            &[
                ("VAULT_ROLE_ID", "r"),
                ("VAULT_SECRET_ID", "w"),
                ("VAULT_SECRET_ID_WRAPPED", "1"),
            ],
        )
        .await;
        assert!(c.secret_id_wrapped);
        let err = Credentials::load(
            None,
            "VAULT_CREDENTIALS",
            &Env::from_map([("VAULT_SECRET_ID_WRAPPED", "yes please")]),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, Error::Config { name, kind: ConfigKind::NotABoolean, .. } if name == "VAULT_SECRET_ID_WRAPPED"),
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
        let chain = Some(SecretChain::first_try("local", local));
        let env = Env::from_map([("VAULT_TOKEN", "from-env")]);
        let c = Credentials::load(chain.as_ref(), "CREDS", &env)
            .await
            .unwrap();
        assert_eq!(c.token.unwrap().expose_secret(), "from-secret");
        assert_eq!(c.origin, "the secret `CREDS` (through the client's chain)");
        let err = Credentials::load(
            chain.as_ref(),
            "CREDS",
            &Env::from_map([("VAULT_ROLE_ID", "r")]),
        )
        .await
        .unwrap();
        assert!(err.methods().is_ok(), "the secret's token is used");
    }
}

/// Property tests of the credentials parser: any text, and any mapping of
/// the known keys to any JSON, gives credentials or a typed error, never a
/// panic; no error, `Debug` output or method list shows a credential (every
/// token, role id and secret id generated holds a marker).
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;
    use secret_core::SecretValue;
    use serde_json::{Value, json};

    use super::*;
    use crate::transport::proptests::{MARK, json, text};

    const CREDENTIAL_KEYS: [&str; 3] = ["VAULT_TOKEN", "VAULT_ROLE_ID", "VAULT_SECRET_ID"];

    /// A credential's value: the marker inside arbitrary text, or any JSON
    /// with the marker in its strings.
    fn credential() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => (text(6), text(6)).prop_map(|(a, b)| Value::String(format!("{a}{MARK}{b}"))),
            // Well formed, with whitespace around it to trim.
            4 => (clean(), clean(), padding(), padding())
                .prop_map(|(a, b, p, q)| Value::String(format!("{p}{a}{MARK}{b}{q}"))),
            1 => (text(4), 1usize..3).prop_map(|(a, n)| {
                // Past the length limit.
                Value::String(format!("{a}{MARK}{}", "x".repeat(input::MAX_CREDENTIAL_LEN * n)))
            }),
            1 => json().prop_map(|v| json!([MARK, v])),
            1 => Just(json!({ "nested": MARK })),
        ]
    }

    /// Letters, digits, dashes and dots.
    fn clean() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!['a', 'Z', '0', '-', '.', '_']),
            0..8,
        )
        .prop_map(String::from_iter)
    }

    fn padding() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["", " ", "\n", "\r\n", "\t "]).prop_map(str::to_owned)
    }

    /// Any value for the other keys (mounts, role, file): text or JSON.
    fn setting() -> impl Strategy<Value = Value> {
        prop_oneof![
            3 => text(12).prop_map(Value::String),
            3 => (padding(), clean(), padding()).prop_map(|(p, c, q)| Value::String(format!("{p}x{c}{q}"))),
            // Without the marker: a role or mount name is not a credential and may be shown.
            1 => json().prop_filter("no marker", |v| !v.to_string().contains(MARK)),
        ]
    }

    fn mapping() -> impl Strategy<Value = serde_json::Map<String, Value>> {
        let credentials =
            CREDENTIAL_KEYS.map(|key| prop::option::of(credential()).prop_map(move |v| (key, v)));
        let settings = [
            "VAULT_APPROLE_PATH",
            "VAULT_KUBE_AUTH_ROLE",
            "VAULT_KUBE_AUTH_PATH",
            "VAULT_KUBE_TOKEN_FILE",
        ]
        .map(|key| prop::option::of(setting()).prop_map(move |v| (key, v)));
        let unknown = prop::collection::vec((text(8), setting()), 0..3);
        (credentials, settings, unknown).prop_map(|(credentials, settings, unknown)| {
            let mut map: serde_json::Map<String, Value> = unknown
                .into_iter()
                .filter(|(k, _)| !KNOWN_KEYS.contains(&k.as_str()))
                .collect();
            for (key, value) in credentials.into_iter().chain(settings) {
                if let Some(value) = value {
                    map.insert(key.to_owned(), value);
                }
            }
            map
        })
    }

    /// Parses `raw` and checks that nothing shown holds the marker.
    fn check(raw: &str) -> Result<Option<Credentials>, TestCaseError> {
        match Credentials::from_mapping("VAULT_CREDENTIALS", &SecretValue::text(raw)) {
            Ok(creds) => {
                let methods = creds.methods();
                let shown = format!("{creds:?}\n{methods:?}");
                prop_assert!(!shown.contains(MARK), "{}", shown);
                if let Err(e) = &methods {
                    prop_assert!(matches!(e, Error::NoCredentials { .. }), "{:?}", e);
                    let message = e.to_string();
                    prop_assert!(!message.contains(MARK), "{}", message);
                }
                Ok(Some(creds))
            }
            Err(e) => {
                let message = format!("{e}\n{e:?}");
                prop_assert!(matches!(e, Error::Credentials { .. }), "{}", message);
                prop_assert!(message.contains("`VAULT_CREDENTIALS`"), "{}", message);
                prop_assert!(!message.contains(MARK), "{}", message);
                Ok(None)
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_text_is_credentials_or_a_credentials_error(raw in prop_oneof![
            text(40),
            (text(8), text(8)).prop_map(|(a, b)| format!("{a}{MARK}{b}")),
            json().prop_map(|v| v.to_string()),
        ]) {
            check(&raw)?;
        }

        #[test]
        fn any_mapping_of_the_keys_never_shows_a_credential(map in mapping()) {
            let raw = Value::Object(map.clone()).to_string();
            let Some(creds) = check(&raw)? else {
                return Ok(());
            };
            // What parsed is the trimmed value itself, for each credential key.
            for (key, got) in [
                ("VAULT_TOKEN", &creds.token),
                ("VAULT_ROLE_ID", &creds.role_id),
                ("VAULT_SECRET_ID", &creds.secret_id),
            ] {
                match map.get(key) {
                    Some(Value::String(s)) => {
                        prop_assert_eq!(got.as_ref().map(|g| g.expose_secret()), Some(s.trim()));
                    }
                    Some(Value::Null) | None => prop_assert!(got.is_none()),
                    Some(_) => prop_assert!(false, "{} accepted a value that is not a string", key),
                }
            }
        }
    }
}
