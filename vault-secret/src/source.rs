//! `VaultSource`: Vault as a source in a `secret-core` chain.

use secret_core::{Lookup, SecretFuture, SecretSource, SecretsFuture};

use crate::builder::ClientBuilder;
use crate::client::VaultClient;
use crate::defaults;
use crate::error::Error;
use crate::path::SecretRef;

/// Vault as a [`SecretSource`]: a secret name maps to a path, or to a field of one secret.
///
/// - [`VaultSource::under`]`("secret/apps")`: name `DB` reads `secret/apps/DB`
///   (its whole key/value mapping).
/// - [`VaultSource::fields_of`]`("secret/app/config")`: name `DB` is the field
///   `DB` of that one secret.
///
/// A missing secret or field is "not found" (the chain moves on); anything
/// else (unreachable, denied, bad credentials) is a failure that stops the chain.
#[derive(Debug, Clone)]
pub struct VaultSource {
    mode: Mode,
    client: Client,
}

#[derive(Debug, Clone)]
enum Mode {
    Under(String),
    FieldsOf(String),
}

#[derive(Debug, Clone)]
enum Client {
    Ready(VaultClient),
    Lazy(Box<Lazy>),
}

/// A client resolved on first use and kept: resolving reads the local
/// context and the credentials, which need not happen on every lookup.
#[derive(Debug, Clone)]
struct Lazy {
    builder: ClientBuilder,
    resolved: tokio::sync::OnceCell<VaultClient>,
}

impl Client {
    fn lazy(builder: ClientBuilder) -> Self {
        Client::Lazy(Box::new(Lazy {
            builder,
            resolved: tokio::sync::OnceCell::new(),
        }))
    }
}

impl VaultSource {
    /// Names map to secrets under `prefix`: `DB` reads `<prefix>/DB`.
    pub fn under(prefix: impl AsRef<str>) -> Self {
        VaultSource {
            mode: Mode::Under(prefix.as_ref().trim_matches('/').to_owned()),
            client: Client::lazy(VaultClient::builder()),
        }
    }

    /// Names map to the fields of the one secret at `path`.
    pub fn fields_of(path: impl AsRef<str>) -> Self {
        VaultSource {
            mode: Mode::FieldsOf(path.as_ref().to_owned()),
            client: Client::lazy(VaultClient::builder()),
        }
    }

    /// Reads with this client (and its login).
    #[must_use]
    pub fn client(mut self, client: VaultClient) -> Self {
        self.client = Client::Ready(client);
        self
    }

    /// Resolves a default client for this builder's settings on first use,
    /// as [`VaultSecret::run`](crate::VaultSecret::run) does (default: the
    /// process environment).
    #[must_use]
    pub fn builder(mut self, builder: ClientBuilder) -> Self {
        self.client = Client::lazy(builder);
        self
    }

    fn secret_ref(&self, name: &str) -> Result<SecretRef, Error> {
        let (path, field) = match &self.mode {
            Mode::Under(prefix) => (format!("{prefix}/{name}"), None),
            Mode::FieldsOf(path) => (path.clone(), Some(name.to_owned())),
        };
        let mut r = SecretRef::parse(&path)?;
        if r.field.is_some() && field.is_some() {
            return Err(Error::InvalidPath {
                path,
                reason: "a `fields_of` path cannot name a field itself".into(),
            });
        }
        if field.is_some() {
            r.field = field;
        } else if name.contains(['#', '?']) {
            return Err(Error::InvalidPath {
                path,
                reason: "a secret name cannot contain `#` or `?`".into(),
            });
        }
        Ok(r)
    }

    async fn resolved(&self) -> Result<VaultClient, Error> {
        Ok(match &self.client {
            Client::Ready(client) => client.clone(),
            Client::Lazy(lazy) => lazy
                .resolved
                .get_or_try_init(|| defaults::client_for(&lazy.builder))
                .await?
                .clone(),
        })
    }

    /// One lookup per name: names that land on one secret (the fields of a
    /// `fields_of` secret, or one name asked twice) read it once, and
    /// distinct secrets are read at the same time.
    async fn lookup_many(&self, names: &[&str]) -> Result<Vec<Lookup>, Error> {
        let refs = names
            .iter()
            .map(|name| self.secret_ref(name))
            .collect::<Result<Vec<_>, _>>()?;
        let each = self.resolved().await?.read_each(&refs).await?;
        Ok(each
            .into_iter()
            .map(|found| match found {
                Ok(value) => Lookup::Found(value),
                Err(why) => Lookup::NotFound(why),
            })
            .collect())
    }
}

impl SecretSource for VaultSource {
    fn resolve<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
        Box::pin(async move {
            let mut found = self
                .lookup_many(&[name])
                .await
                .map_err(|e| secret_core::Error::backend("vault", e))?;
            Ok(found
                .pop()
                .unwrap_or_else(|| Lookup::not_found("no answer")))
        })
    }

    fn resolve_many<'a>(&'a self, names: &'a [&'a str]) -> SecretsFuture<'a> {
        Box::pin(async move {
            self.lookup_many(names)
                .await
                .map_err(|e| secret_core::Error::backend("vault", e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secret_core::{Env, SecretChain, SecretValue};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the lookups of the credentials secret.
    #[derive(Debug, Default)]
    struct CountingCredentials(AtomicUsize);

    impl SecretSource for CountingCredentials {
        fn resolve<'a>(&'a self, _name: &'a str) -> SecretFuture<'a> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(Lookup::Found(SecretValue::text(r#"{"VAULT_TOKEN": "t"}"#))) })
        }
    }

    #[tokio::test]
    async fn the_client_is_resolved_once_not_per_lookup() {
        let credentials = Arc::new(CountingCredentials::default());
        let builder = VaultClient::builder()
            // Nothing listens on port 1: each lookup fails after the client is resolved.
            .env(Env::from_map([("VAULT_ADDR", "http://127.0.0.1:1")]))
            .chain(SecretChain::first_try("counting", credentials.clone()));
        let source = VaultSource::under("secret/apps").builder(builder);
        for name in ["A", "B", "C"] {
            assert!(source.resolve(name).await.is_err());
        }
        assert_eq!(credentials.0.load(Ordering::SeqCst), 1);
    }
}
