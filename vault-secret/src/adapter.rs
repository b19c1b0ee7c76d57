//! What the figment provider and the config-rs source share: the secret to
//! read, where its values land in the configuration tree, and the one-shot
//! load (a client of its own, shut down afterwards, or the caller's).
//!
//! The user-facing rules (where values land, merge order, text values and
//! `extract_lossy`, errors, sync callers inside a runtime) are in the crate
//! docs' "Figment and config-rs" section; each adapter's type docs hold
//! its own example.

use secret_core::{Env, SecretValue, ValueKind};
use serde_json::{Map, Value};

use crate::builder::ClientBuilder;
use crate::client::VaultClient;
use crate::error::Error;
use crate::path::SecretRef;

/// The setters both adapters have, each forwarding to their [`SecretLoad`]
/// (a type with a `load: SecretLoad` field).
macro_rules! load_setters {
    () => {
        /// Nests the values in the dotted key `key` (`database` gives
        /// `database.<key>` for each key of the secret, or `database.<field>`).
        pub fn nest(mut self, key: impl Into<String>) -> Self {
            self.load.nest(key.into());
            self
        }

        /// Puts the value itself (the field, or the whole secret as a
        /// mapping) at the dotted key `key` (`secret/db#password` at
        /// `database.password`).
        pub fn at(mut self, key: impl Into<String>) -> Self {
            self.load.at(key.into());
            self
        }

        /// An absent secret or field contributes nothing instead of failing
        /// (other failures still fail: a denied secret is not an absent one).
        pub fn optional(mut self) -> Self {
            self.load.optional();
            self
        }

        /// Reads variables from `env` instead of the process environment.
        pub fn env(mut self, env: secret_core::Env) -> Self {
            self.load.env(env);
            self
        }

        /// Reads with this client (and its login), which is left as it is.
        pub fn client(mut self, client: $crate::client::VaultClient) -> Self {
            self.load.client(client);
            self
        }

        /// Loads with a one-shot client built from this builder's settings
        /// and credentials (the environment for the rest), whose token is
        /// revoked once the load is over. (Unlike `VaultSecret::builder`,
        /// which keeps a shared default client.)
        pub fn one_shot(mut self, builder: $crate::builder::ClientBuilder) -> Self {
            self.load.one_shot(builder);
            self
        }
    };
}
pub(crate) use load_setters;

/// One secret and where its values go.
#[derive(Debug, Clone)]
pub(crate) struct SecretLoad {
    path: String,
    place: Place,
    optional: bool,
    builder: ClientBuilder,
    client: Option<VaultClient>,
}

/// Where the values land.
#[derive(Debug, Clone)]
enum Place {
    /// A whole secret's keys at the top level; a field under its own name.
    Root,
    /// As [`Place::Root`], nested in this dotted key.
    Nested(String),
    /// The value (the whole mapping, or the field) at this dotted key.
    At(String),
}

impl SecretLoad {
    pub(crate) fn new(path: String) -> Self {
        SecretLoad {
            path,
            place: Place::Root,
            optional: false,
            builder: VaultClient::builder(),
            client: None,
        }
    }

    pub(crate) fn nest(&mut self, key: String) {
        self.place = Place::Nested(key);
    }

    pub(crate) fn at(&mut self, key: String) {
        self.place = Place::At(key);
    }

    pub(crate) fn optional(&mut self) {
        self.optional = true;
    }

    pub(crate) fn env(&mut self, env: Env) {
        self.builder = self.builder.clone().env(env);
    }

    pub(crate) fn one_shot(&mut self, builder: ClientBuilder) {
        self.builder = builder;
    }

    pub(crate) fn client(&mut self, client: VaultClient) {
        self.client = Some(client);
    }

    /// The secret's path as given, escaped for messages.
    pub(crate) fn path(&self) -> String {
        self.path.escape_debug().to_string()
    }

    /// The server's address: the caller's client's, else the one the
    /// builder and the environment name (`None` when they name none or a
    /// bad one; the load then fails with the reason).
    pub(crate) fn address(&self) -> Option<String> {
        match &self.client {
            Some(client) => Some(client.config().base().to_owned()),
            None => self
                .builder
                .server_config()
                .ok()
                .map(|config| config.base().to_owned()),
        }
    }

    /// Where the values come from, for the libraries' provenance: the path
    /// and the address, never a value.
    pub(crate) fn origin(&self) -> String {
        match self.address() {
            Some(address) => format!("`{}` at {address}", self.path()),
            None => format!("`{}`", self.path()),
        }
    }

    /// [`load`](Self::load) from synchronous code, inside a runtime or not:
    /// on the caller's client's own runtime (reusing its connections), or,
    /// for a one-shot client, on a runtime for the call.
    pub(crate) fn load_blocking(&self) -> Result<Option<Map<String, Value>>, Error> {
        match &self.client {
            Some(client) => {
                let load = self.clone();
                client.block_on(async move { load.load().await })
            }
            None => crate::blocking::run(|| self.load()),
        }
    }

    /// Reads the secret and places its values: the tree to add at the top
    /// level, or `None` for an optional secret that is absent.
    pub(crate) async fn load(&self) -> Result<Option<Map<String, Value>>, Error> {
        let secret_ref = SecretRef::parse(&self.path)?;
        let keys = match &self.place {
            Place::Root => Vec::new(),
            Place::Nested(key) | Place::At(key) => dotted(key, &self.path)?,
        };
        let value = match self.read().await {
            Ok(value) => value,
            Err(e) if self.optional && e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let (mut keys, value) = match (&self.place, secret_ref.field) {
            (Place::At(_), _) => (keys, json_of(&value, true)?),
            (_, Some(field)) => {
                let mut keys = keys;
                keys.push(field);
                (keys, json_of(&value, true)?)
            }
            (_, None) => (keys, json_of(&value, false)?),
        };
        let mut tree = value;
        while let Some(key) = keys.pop() {
            tree = Value::Object(Map::from_iter([(key, tree)]));
        }
        match tree {
            Value::Object(map) => Ok(Some(map)),
            // A whole secret is a mapping; anything else was placed above.
            _ => Err(Error::config(
                self.path(),
                "the secret is not a key/value mapping",
            )),
        }
    }

    /// Reads with the caller's client, or with one of its own whose token
    /// (when it logged in) is revoked once the read is over.
    async fn read(&self) -> Result<SecretValue, Error> {
        if let Some(client) = &self.client {
            return client.read(&self.path).await;
        }
        let client = self.builder.clone().build().await?;
        let outcome = client.read(&self.path).await;
        if let Err(e) = client.shutdown().await {
            // The read's outcome is what the caller asked for; the token
            // expires with its TTL.
            tracing::debug!(failure = %e, "could not revoke the adapter's token");
        }
        outcome
    }
}

/// The segments of a dotted key (`database.password`); a trailing dot is
/// allowed (`database.`), an empty segment is an error naming the key.
fn dotted(key: &str, path: &str) -> Result<Vec<String>, Error> {
    let trimmed = key.strip_suffix('.').unwrap_or(key);
    let segments: Vec<String> = trimmed.split('.').map(str::to_owned).collect();
    if segments.iter().any(|s| s.trim().is_empty()) {
        return Err(Error::config(
            key.escape_debug().to_string(),
            format!(
                "not a dotted key (an empty segment) for the secret `{}`",
                path.escape_debug()
            ),
        ));
    }
    Ok(segments)
}

/// A value read as JSON: a field's text stays text (even when it looks like
/// JSON), structured values keep their types.
fn json_of(value: &SecretValue, field: bool) -> Result<Value, Error> {
    if field && value.kind() == ValueKind::Text {
        return Ok(Value::String(value.expose_secret().to_owned()));
    }
    Ok(value.to_json()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_keys() {
        assert_eq!(dotted("database", "p").unwrap(), ["database"]);
        assert_eq!(dotted("database.", "p").unwrap(), ["database"]);
        assert_eq!(dotted("a.b", "p").unwrap(), ["a", "b"]);
        for bad in ["", ".", "a..b", ".a", "a. .b"] {
            let err = dotted(bad, "secret/db").unwrap_err().to_string();
            assert!(err.contains("secret/db"), "{err}");
        }
    }

    #[test]
    fn a_field_stays_text_and_structure_keeps_its_types() {
        let text = SecretValue::text(r#"{"looks": "like json"}"#);
        assert_eq!(
            json_of(&text, true).unwrap(),
            Value::String(r#"{"looks": "like json"}"#.into())
        );
        let number = SecretValue::json(serde_json::json!(5432));
        assert_eq!(json_of(&number, true).unwrap(), serde_json::json!(5432));
        let whole = SecretValue::json(serde_json::json!({"port": 5432, "tls": true}));
        assert_eq!(
            json_of(&whole, false).unwrap(),
            serde_json::json!({"port": 5432, "tls": true})
        );
    }

    #[test]
    fn the_origin_names_the_path_and_address_and_no_value() {
        let mut load = SecretLoad::new("secret/db#password".into());
        load.env(Env::from_map([
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "hunter2"),
        ]));
        assert_eq!(
            load.origin(),
            "`secret/db#password` at http://127.0.0.1:8200"
        );
        load.env(Env::from_map([("VAULT_TOKEN", "hunter2")]));
        assert_eq!(load.origin(), "`secret/db#password`");
        assert!(!format!("{load:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn a_bad_key_or_path_fails_before_any_request() {
        let env = Env::from_map([("VAULT_ADDR", "http://127.0.0.1:1"), ("VAULT_TOKEN", "t")]);
        let mut load = SecretLoad::new("secret/db".into());
        load.env(env.clone());
        load.nest("a..b".into());
        let err = load.load().await.unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err}");
        let mut load = SecretLoad::new("secret".into());
        load.env(env);
        load.optional();
        let err = load.load().await.unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{err}");
    }
}
