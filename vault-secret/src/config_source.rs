//! Vault secrets in a config-rs `Config` (feature `config`).

use std::future::Future;
use std::pin::Pin;

use config::{ConfigError, Map, Value, ValueKind};

use crate::adapter::SecretLoad;

/// A config-rs source that reads one Vault secret: [`config::AsyncSource`]
/// for `ConfigBuilder::<AsyncState>::add_async_source`, and
/// [`config::Source`] for the synchronous builder.
///
/// ```no_run
/// use config::Config;
/// use vault_secret::VaultConfigSource;
///
/// # async fn demo() -> Result<(), config::ConfigError> {
/// let settings = Config::builder()
///     .add_async_source(VaultConfigSource::new("secret/db").nest("database")) // database.<key>
///     .add_async_source(VaultConfigSource::new("secret/api#key").at("api.token"))
///     .build()
///     .await?;
/// let port: u16 = settings.get("database.port")?;
/// # Ok(()) }
/// ```
///
/// - Values keep their JSON types (a number stays a number, an object a
///   table); each carries its origin: the secret's path and the server's
///   address, never a value.
/// - A Vault failure is [`ConfigError::Foreign`] wrapping the
///   [`vault_secret::Error`](crate::Error) itself (downcast it to match on
///   its kind). An absent secret or field is an error unless the source is
///   [`optional`](Self::optional); even then a denial, an unreachable server
///   or bad credentials are errors.
/// - config-rs reads each top-level key as a path expression, so a key of
///   the secret holding a `.` or `[` lands nested.
///
/// Each collect is one read: with a client of its own resolved from the
/// environment like every other read of this crate (`VAULT_ADDR`,
/// `VAULT_CREDENTIALS`: token, AppRole or Kubernetes; TLS, namespace,
/// retries), whose token is revoked once the read is over; or with the
/// caller's [`client`](Self::client), left as it is. The synchronous
/// [`Source::collect`](config::Source::collect) works from a plain
/// `fn main` and from inside an async runtime alike. With the caller's
/// client the read runs on that client's own runtime, so repeated
/// collects reuse its connections; a one-shot client's read runs on a
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
pub struct VaultConfigSource {
    load: SecretLoad,
}

impl VaultConfigSource {
    /// The secret at `<mount>/<path>[?version=N][#field]`: a whole secret's
    /// keys go to the top level, a field goes under its own name.
    pub fn new(path: impl AsRef<str>) -> Self {
        VaultConfigSource {
            load: SecretLoad::new(path.as_ref().to_owned()),
        }
    }

    crate::adapter::load_setters!();

    /// The loaded tree as config-rs values, each with its origin.
    fn convert(
        &self,
        loaded: Result<Option<serde_json::Map<String, serde_json::Value>>, crate::error::Error>,
    ) -> Result<Map<String, Value>, ConfigError> {
        let tree = loaded.map_err(|e| ConfigError::Foreign(Box::new(e)))?;
        let origin = format!("Vault {}", self.load.origin());
        Ok(tree
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| (key, config_value(value, &origin)))
            .collect())
    }
}

impl config::Source for VaultConfigSource {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, ConfigError> {
        self.convert(self.load.load_blocking())
    }
}

// `AsyncSource` is declared with `#[async_trait]`; this is the signature the
// macro expands to, written out rather than taking the macro crate on.
impl config::AsyncSource for VaultConfigSource {
    fn collect<'life0, 'async_trait>(
        &'life0 self,
    ) -> Pin<Box<dyn Future<Output = Result<Map<String, Value>, ConfigError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { self.convert(self.load.load().await) })
    }
}

/// A JSON value as config-rs's, with `origin`, moving its strings rather
/// than copying them.
fn config_value(value: serde_json::Value, origin: &String) -> Value {
    let kind = match value {
        serde_json::Value::Null => ValueKind::Nil,
        serde_json::Value::Bool(b) => ValueKind::Boolean(b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                ValueKind::U64(u)
            } else if let Some(i) = n.as_i64() {
                ValueKind::I64(i)
            } else {
                ValueKind::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => ValueKind::String(s),
        serde_json::Value::Array(items) => {
            ValueKind::Array(items.into_iter().map(|v| config_value(v, origin)).collect())
        }
        serde_json::Value::Object(map) => ValueKind::Table(
            map.into_iter()
                .map(|(k, v)| (k, config_value(v, origin)))
                .collect(),
        ),
    };
    Value::new(Some(origin), kind)
}

#[cfg(test)]
mod tests {
    use secret_core::Env;

    use super::*;

    #[test]
    fn json_types_and_the_origin_are_kept() {
        let origin = "Vault `secret/db` at http://127.0.0.1:8200".to_owned();
        let value = config_value(
            serde_json::json!({"port": 5432, "tls": true, "ratio": 0.5, "pool": {"max": 8}}),
            &origin,
        );
        assert_eq!(value.origin(), Some(origin.as_str()));
        let table = value.into_table().unwrap();
        assert_eq!(table["port"].kind, ValueKind::U64(5432));
        assert_eq!(table["tls"].kind, ValueKind::Boolean(true));
        assert_eq!(table["ratio"].kind, ValueKind::Float(0.5));
        let pool = table["pool"].clone().into_table().unwrap();
        assert_eq!(pool["max"].origin(), Some(origin.as_str()));
    }

    #[test]
    fn a_failure_wraps_the_crates_error() {
        let source =
            VaultConfigSource::new("secret/db").env(Env::from_map([("VAULT_TOKEN", "hunter2")]));
        let err = config::Source::collect(&source).unwrap_err();
        assert_eq!(
            err.to_string(),
            crate::error::Error::MissingAddress.to_string()
        );
        let ConfigError::Foreign(inner) = err else {
            panic!("not a foreign error: {err}");
        };
        assert!(matches!(
            inner.downcast_ref::<crate::error::Error>(),
            Some(crate::error::Error::MissingAddress)
        ));
        assert!(!format!("{source:?}").contains("hunter2"));
    }
}
