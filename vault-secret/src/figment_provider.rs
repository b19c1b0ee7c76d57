//! Vault secrets in a figment `Figment` (feature `figment`).

use figment::value::{Dict, Empty, Map, Num, Tag, Value};
use figment::{Metadata, Profile, Provider};

use crate::adapter::SecretLoad;

/// A figment [`Provider`] that reads one Vault secret.
///
/// ```no_run
/// use figment::Figment;
/// use vault_secret::VaultProvider;
///
/// # fn demo() -> Result<(), figment::Error> {
/// let figment = Figment::new()
///     .merge(VaultProvider::new("secret/app"))                        // its keys at the top level
///     .merge(VaultProvider::new("secret/db").nest("database"))       // database.<key>
///     .merge(VaultProvider::new("secret/api#key").at("api.token"));   // one field at api.token
/// let port: u16 = figment.extract_inner("database.port")?;
/// # Ok(()) }
/// ```
///
/// - Values keep their JSON types (a number stays a number, an object is a
///   dict), so they extract into `u16`, `bool` or nested structs; a field
///   stored as text stays a string.
/// - The data goes to the [`Profile::Default`] profile unless
///   [`profile`](Self::profile) says otherwise (e.g. [`Profile::Global`]).
/// - [`Metadata`] names the secret's path and the server's address (never a
///   value), so figment's "value came from" and its errors point at Vault.
/// - A Vault failure is a [`figment::Error`] with the message of the
///   [`vault_secret::Error`](crate::Error) (the path and what went wrong,
///   never a value) and this provider's metadata. An absent secret or field
///   is an error unless the provider is [`optional`](Self::optional); even
///   then a denial, an unreachable server or bad credentials are errors.
///
/// Each [`data`](Provider::data) call is one read: with a client of its own
/// resolved from the environment like every other read of this crate
/// (`VAULT_ADDR`, `VAULT_CREDENTIALS`: token, AppRole or Kubernetes; TLS,
/// namespace, retries), whose token is revoked once the read is over; or
/// with the caller's [`client`](Self::client), left as it is. It works
/// from a plain `fn main` and from inside an async runtime alike. With the
/// caller's client the read runs on that client's own runtime, so
/// repeated calls reuse its connections; a one-shot client's read runs on a
/// runtime of its own (on a thread of its own inside an async runtime,
/// rather than block a runtime's worker).
///
/// A dynamic secret (a path outside KV, such as `database/creds/app`) is
/// refused with [`Error::WrongEngine`](crate::Error::WrongEngine) naming
/// [`VaultClient::lease`](crate::VaultClient::lease): a configuration is
/// loaded once, and credentials whose lease nobody renews, or that die with
/// the load's token, would be revoked under the service without a word.
/// Issue them with `lease` and keep the handle.
#[derive(Debug, Clone)]
#[must_use]
pub struct VaultProvider {
    load: SecretLoad,
    profile: Profile,
}

impl VaultProvider {
    /// The secret at `<mount>/<path>[?version=N][#field]`: a whole secret's
    /// keys go to the top level, a field goes under its own name.
    pub fn new(path: impl AsRef<str>) -> Self {
        VaultProvider {
            load: SecretLoad::new(path.as_ref().to_owned()),
            profile: Profile::Default,
        }
    }

    crate::adapter::load_setters!();

    /// The profile the data goes to (default [`Profile::Default`];
    /// [`Profile::Global`] overrides every profile).
    pub fn profile(mut self, profile: impl Into<Profile>) -> Self {
        self.profile = profile.into();
        self
    }
}

impl Provider for VaultProvider {
    fn metadata(&self) -> Metadata {
        Metadata::from("Vault", figment::Source::Custom(self.load.origin()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let tree = self.load.load_blocking().map_err(|e| {
            let mut error = figment::Error::from(e.to_string());
            error.metadata = Some(self.metadata());
            error.profile = Some(self.profile.clone());
            error
        })?;
        let dict = tree
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| (key, figment_value(value)))
            .collect();
        Ok(self.profile.collect(dict))
    }
}

/// A JSON value as figment's, moving its strings rather than copying them.
fn figment_value(value: serde_json::Value) -> Value {
    let tag = Tag::Default;
    match value {
        serde_json::Value::Null => Value::Empty(tag, Empty::None),
        serde_json::Value::Bool(b) => Value::Bool(tag, b),
        serde_json::Value::Number(n) => {
            let num = if let Some(u) = n.as_u64() {
                Num::U64(u)
            } else if let Some(i) = n.as_i64() {
                Num::I64(i)
            } else {
                Num::F64(n.as_f64().unwrap_or(f64::NAN))
            };
            Value::Num(tag, num)
        }
        serde_json::Value::String(s) => Value::String(tag, s),
        serde_json::Value::Array(items) => {
            Value::Array(tag, items.into_iter().map(figment_value).collect())
        }
        serde_json::Value::Object(map) => Value::Dict(
            tag,
            map.into_iter()
                .map(|(k, v)| (k, figment_value(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use secret_core::Env;

    use super::*;

    #[test]
    fn json_types_are_kept() {
        let value = figment_value(serde_json::json!({
            "port": 5432, "offset": -3, "ratio": 0.5, "tls": true,
            "name": "db", "none": null, "hosts": ["a", "b"], "pool": {"max": 8}
        }));
        let dict = value.into_dict().unwrap();
        assert_eq!(dict["port"].to_u128(), Some(5432));
        assert_eq!(dict["offset"].to_i128(), Some(-3));
        assert_eq!(dict["ratio"].to_f64(), Some(0.5));
        assert_eq!(dict["tls"].to_bool(), Some(true));
        assert_eq!(dict["name"].as_str(), Some("db"));
        assert!(matches!(dict["none"], Value::Empty(_, Empty::None)));
        assert_eq!(dict["hosts"].as_array().map(<[Value]>::len), Some(2));
        assert_eq!(
            dict["pool"].find_ref("max").and_then(Value::to_u128),
            Some(8)
        );
    }

    #[test]
    fn a_failure_is_a_figment_error_with_the_message_and_the_metadata() {
        // No address: fails before any request.
        let provider = VaultProvider::new("secret/db#password")
            .env(Env::from_map([("VAULT_TOKEN", "hunter2")]))
            .profile(Profile::Global);
        let err = provider.data().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} in `secret/db#password` Vault",
                crate::error::Error::MissingAddress
            )
        );
        assert_eq!(err.metadata.map(|m| m.name), Some("Vault".into()));
        assert_eq!(err.profile, Some(Profile::Global));
        let shown = format!("{provider:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn metadata_names_the_path_and_the_address() {
        let provider = VaultProvider::new("secret/db").env(Env::from_map([
            ("VAULT_ADDR", "https://vault.example:8200"),
            ("VAULT_TOKEN", "hunter2"),
        ]));
        let metadata = provider.metadata();
        assert_eq!(metadata.name, "Vault");
        assert_eq!(
            metadata.source.map(|s| s.to_string()).as_deref(),
            Some("`secret/db` at https://vault.example:8200")
        );
    }
}
