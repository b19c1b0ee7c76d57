//! The resolver chain: named sources tried in order.

use std::borrow::Cow;
use std::sync::Arc;

use tracing::Instrument;

use crate::defaults::DefaultSecret;
use crate::env::Env;
use crate::env_var::EnvironmentSource;
use crate::error::{Attempt, Error, Outcome};
use crate::local::LocalContext;
use crate::source::{Lookup, SecretFuture, SecretSource, SecretsFuture};
use crate::value::SecretValue;

/// For each name: the value, if a source had it, and what every source
/// before that said.
type Found = Vec<(Option<SecretValue>, Vec<Attempt>)>;

/// An ordered list of named sources; the first that has the name wins.
///
/// "Not found" moves on to the next source. Any other failure stops the
/// chain with that error, unless the source was added with
/// [`or_else_optional`](Self::or_else_optional): then the failure is
/// recorded and the chain moves on. When every source misses, the
/// [`Error::NotFound`] lists each source and what it said.
///
/// ```
/// use secret_core::{Env, LocalContext, SecretChain, SecretValue, EnvironmentSource};
///
/// # tokio_test_block_on(async {
/// let local = LocalContext::builder().secret("A", SecretValue::text("1")).build().unwrap();
/// let env = EnvironmentSource::new(Env::from_map([("B", "2")]));
/// let chain = SecretChain::first_try("local", local).or_else("env", env);
/// assert_eq!(chain.get("B").await.unwrap().expose_secret(), "2");
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct SecretChain {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    name: Cow<'static, str>,
    source: Arc<dyn SecretSource>,
    optional: bool,
}

impl SecretChain {
    /// A chain with no sources (every lookup is "not found").
    pub fn empty() -> Self {
        SecretChain::default()
    }

    /// A chain whose first source is `source`.
    pub fn first_try(
        name: impl Into<Cow<'static, str>>,
        source: impl SecretSource + 'static,
    ) -> Self {
        SecretChain::empty().or_else(name, source)
    }

    /// Adds a source tried after the ones already there; its failures stop the chain.
    pub fn or_else(
        self,
        name: impl Into<Cow<'static, str>>,
        source: impl SecretSource + 'static,
    ) -> Self {
        self.push(name.into(), Arc::new(source), false)
    }

    /// Adds a source whose failures are recorded and skipped instead of stopping the chain.
    pub fn or_else_optional(
        self,
        name: impl Into<Cow<'static, str>>,
        source: impl SecretSource + 'static,
    ) -> Self {
        self.push(name.into(), Arc::new(source), true)
    }

    /// Adds an already shared source.
    pub fn or_else_shared(
        self,
        name: impl Into<Cow<'static, str>>,
        source: Arc<dyn SecretSource>,
        optional: bool,
    ) -> Self {
        self.push(name.into(), source, optional)
    }

    fn push(
        mut self,
        name: Cow<'static, str>,
        source: Arc<dyn SecretSource>,
        optional: bool,
    ) -> Self {
        self.entries.push(Entry {
            name,
            source,
            optional,
        });
        self
    }

    /// The default local chain: `local` ([`LocalContext::from_env`]) then
    /// `env` (a plain environment variable of the same name).
    pub fn local_then_env() -> Result<Self, Error> {
        Self::local_then_env_with(Env::process())
    }

    /// [`local_then_env`](Self::local_then_env) over a given environment.
    pub fn local_then_env_with(env: Env) -> Result<Self, Error> {
        let local = LocalContext::builder()
            .env(env.clone())
            .default_config_file()
            .build()?;
        Ok(SecretChain::first_try("local", local).or_else("env", EnvironmentSource::new(env)))
    }

    /// The names of the sources, in order.
    pub fn source_names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_ref())
    }

    /// Looks `name` up; the value comes back named after the secret.
    pub async fn get(&self, name: &str) -> Result<SecretValue, Error> {
        match self.lookup(name).await? {
            (Some(value), _) => Ok(value),
            (None, attempts) => Err(Error::NotFound {
                name: name.to_owned(),
                attempts,
            }),
        }
    }

    /// Looks `name` up, giving `None` rather than an error when no source has it.
    pub async fn get_optional(&self, name: &str) -> Result<Option<SecretValue>, Error> {
        Ok(self.lookup(name).await?.0)
    }

    /// Loads a typed default secret (such as [`AwsCredentials`](crate::AwsCredentials))
    /// by its well-known name.
    pub async fn load<T: DefaultSecret>(&self) -> Result<T, Error> {
        T::from_secret(&self.get(T::NAME).await?)
    }

    /// Looks several names up at once, each source asked once for the names
    /// still missing ([`SecretSource::resolve_many`]: a backend can read
    /// names that land on one remote secret once). The values come back in
    /// the order asked; the first name no source has is the error.
    pub async fn get_many(&self, names: &[&str]) -> Result<Vec<SecretValue>, Error> {
        self.lookup_many(names)
            .await?
            .into_iter()
            .zip(names)
            .map(|((value, attempts), name)| {
                value.ok_or_else(|| Error::NotFound {
                    name: (*name).to_owned(),
                    attempts,
                })
            })
            .collect()
    }

    async fn lookup(&self, name: &str) -> Result<(Option<SecretValue>, Vec<Attempt>), Error> {
        let mut found = self.lookup_many(&[name]).await?;
        Ok(found.pop().unwrap_or((None, Vec::new())))
    }

    async fn lookup_many(&self, names: &[&str]) -> Result<Found, Error> {
        if names.iter().any(|n| n.is_empty()) {
            return Err(Error::InvalidName {
                name: String::new(),
                reason: "it is empty",
            });
        }
        let mut found: Found = names.iter().map(|_| (None, Vec::new())).collect();
        for entry in &self.entries {
            let pending: Vec<usize> = (0..names.len()).filter(|&i| found[i].0.is_none()).collect();
            if pending.is_empty() {
                break;
            }
            let asked: Vec<&str> = pending.iter().map(|&i| names[i]).collect();
            let span =
                tracing::debug_span!("secret_source", source = %entry.name, secrets = ?asked);
            let result = entry
                .source
                .resolve_many(&asked)
                .instrument(span.clone())
                .await;
            let _enter = span.enter();
            let lookups = match result {
                Ok(lookups) if lookups.len() == pending.len() => lookups,
                Ok(lookups) => {
                    return Err(Error::backend(
                        entry.name.to_string(),
                        std::io::Error::other(format!(
                            "asked for {} secrets, it answered {}",
                            pending.len(),
                            lookups.len()
                        )),
                    ));
                }
                Err(error) if entry.optional => {
                    tracing::warn!(%error, "optional source failed; skipped");
                    for &i in &pending {
                        found[i].1.push(Attempt {
                            source: entry.name.to_string(),
                            outcome: Outcome::Skipped(error.to_string()),
                        });
                    }
                    continue;
                }
                Err(error) => {
                    tracing::debug!(%error, "failed");
                    return Err(error);
                }
            };
            for (i, lookup) in pending.into_iter().zip(lookups) {
                match lookup {
                    Lookup::Found(value) => {
                        tracing::debug!(secret = names[i], "found");
                        found[i].0 = Some(value.with_name(names[i]));
                    }
                    Lookup::NotFound(detail) => {
                        tracing::debug!(secret = names[i], %detail, "not found");
                        found[i].1.push(Attempt {
                            source: entry.name.to_string(),
                            outcome: Outcome::NotFound(detail),
                        });
                    }
                }
            }
        }
        Ok(found)
    }
}

impl SecretSource for SecretChain {
    fn resolve<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
        Box::pin(async move { Ok(as_lookup(self.lookup(name).await?)) })
    }

    fn resolve_many<'a>(&'a self, names: &'a [&'a str]) -> SecretsFuture<'a> {
        Box::pin(async move {
            Ok(self
                .lookup_many(names)
                .await?
                .into_iter()
                .map(as_lookup)
                .collect())
        })
    }
}

fn as_lookup((value, attempts): (Option<SecretValue>, Vec<Attempt>)) -> Lookup {
    match value {
        Some(value) => Lookup::Found(value),
        None => Lookup::NotFound(
            attempts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct Counting {
        value: Option<&'static str>,
        fail: bool,
        calls: AtomicUsize,
    }

    impl SecretSource for Counting {
        fn resolve<'a>(&'a self, _name: &'a str) -> SecretFuture<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if self.fail {
                    return Err(Error::backend("test", std::io::Error::other("unreachable")));
                }
                Ok(match self.value {
                    Some(v) => Lookup::Found(SecretValue::text(v)),
                    None => Lookup::not_found("empty"),
                })
            })
        }
    }

    fn found(v: &'static str) -> Arc<Counting> {
        Arc::new(Counting {
            value: Some(v),
            ..Default::default()
        })
    }
    fn missing() -> Arc<Counting> {
        Arc::new(Counting::default())
    }
    fn failing() -> Arc<Counting> {
        Arc::new(Counting {
            fail: true,
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn first_hit_wins_and_later_sources_are_not_asked() {
        let (a, b, c) = (missing(), found("b"), found("c"));
        let chain = SecretChain::first_try("a", a.clone())
            .or_else("b", b.clone())
            .or_else("c", c.clone());
        let v = chain.get("X").await.unwrap();
        assert_eq!(v.expose_secret(), "b");
        assert_eq!(v.name(), Some("X"));
        assert_eq!(a.calls.load(Ordering::SeqCst), 1);
        assert_eq!(c.calls.load(Ordering::SeqCst), 0);
    }

    /// Records every batch it is asked for; has the names in `has`.
    #[derive(Debug, Default)]
    struct Batching {
        has: Vec<&'static str>,
        batches: std::sync::Mutex<Vec<Vec<String>>>,
    }

    impl SecretSource for Batching {
        fn resolve<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
            Box::pin(async move {
                Ok(match self.has.contains(&name) {
                    true => Lookup::Found(SecretValue::text(format!("v-{name}"))),
                    false => Lookup::not_found("no"),
                })
            })
        }

        fn resolve_many<'a>(&'a self, names: &'a [&'a str]) -> SecretsFuture<'a> {
            self.batches
                .lock()
                .unwrap()
                .push(names.iter().map(|n| (*n).to_owned()).collect());
            Box::pin(async move {
                let mut out = Vec::new();
                for name in names {
                    out.push(self.resolve(name).await?);
                }
                Ok(out)
            })
        }
    }

    #[tokio::test]
    async fn get_many_asks_each_source_once_for_the_names_still_missing() {
        let first = Arc::new(Batching {
            has: vec!["A"],
            ..Default::default()
        });
        let second = Arc::new(Batching {
            has: vec!["B", "C"],
            ..Default::default()
        });
        let chain =
            SecretChain::first_try("first", first.clone()).or_else("second", second.clone());
        let values = chain.get_many(&["C", "A", "B"]).await.unwrap();
        let shown: Vec<&str> = values.iter().map(|v| v.expose_secret()).collect();
        assert_eq!(shown, ["v-C", "v-A", "v-B"]);
        assert_eq!(values[0].name(), Some("C"));
        assert_eq!(*first.batches.lock().unwrap(), vec![vec!["C", "A", "B"]]);
        assert_eq!(*second.batches.lock().unwrap(), vec![vec!["C", "B"]]);

        let err = chain.get_many(&["A", "Z"]).await.unwrap_err();
        assert!(
            matches!(&err, Error::NotFound { name, attempts } if name == "Z" && attempts.len() == 2),
            "{err}"
        );
    }

    #[tokio::test]
    async fn get_many_through_plain_sources_and_failures() {
        let chain = SecretChain::first_try("a", found("x"));
        let values = chain.get_many(&["P", "Q"]).await.unwrap();
        assert_eq!(values.len(), 2);
        assert_eq!(values[1].name(), Some("Q"));
        let failing_chain = SecretChain::first_try("bad", failing()).or_else("a", found("x"));
        assert!(failing_chain.get_many(&["P"]).await.is_err());
        let optional = SecretChain::first_try("a", missing()).or_else_optional("bad", failing());
        let err = optional.get_many(&["P"]).await.unwrap_err();
        assert!(err.to_string().contains("bad"), "{err}");
        assert!(chain.get_many(&["P", ""]).await.is_err());
    }

    #[tokio::test]
    async fn failure_stops_the_chain() {
        let after = found("late");
        let chain = SecretChain::first_try("a", missing())
            .or_else("bad", failing())
            .or_else("c", after.clone());
        let err = chain.get("X").await.unwrap_err();
        assert!(matches!(err, Error::Backend { .. }), "{err}");
        assert_eq!(after.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn optional_failure_is_recorded_and_skipped() {
        let chain = SecretChain::first_try("bad", failing()).or_else_optional("bad2", failing());
        // A non-optional failure still stops it...
        assert!(matches!(
            chain.get("X").await.unwrap_err(),
            Error::Backend { .. }
        ));
        // ...an optional one is recorded.
        let chain = SecretChain::empty()
            .or_else_optional("opt", failing())
            .or_else("miss", missing());
        let err = chain.get("X").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret `X` not found (tried: opt: failed, skipped as optional (test: unreachable); miss: not found (empty))"
        );
        let chain2 = SecretChain::empty()
            .or_else_optional("opt", failing())
            .or_else("hit", found("v"));
        assert_eq!(chain2.get("X").await.unwrap().expose_secret(), "v");
    }

    #[tokio::test]
    async fn all_miss_lists_every_source() {
        let chain = SecretChain::first_try("one", missing()).or_else("two", missing());
        match chain.get("X").await.unwrap_err() {
            Error::NotFound { name, attempts } => {
                assert_eq!(name, "X");
                let sources: Vec<_> = attempts.iter().map(|a| a.source.as_str()).collect();
                assert_eq!(sources, ["one", "two"]);
            }
            other => panic!("unexpected {other}"),
        }
        assert_eq!(
            chain.get_optional("X").await.unwrap().map(|v| v.kind()),
            None
        );
    }

    #[tokio::test]
    async fn empty_name_is_rejected_before_any_source() {
        let a = found("a");
        let chain = SecretChain::first_try("a", a.clone());
        assert!(matches!(
            chain.get("").await.unwrap_err(),
            Error::InvalidName { .. }
        ));
        assert_eq!(a.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn chain_is_itself_a_source_and_works_as_dyn() {
        let inner = SecretChain::first_try("a", found("v"));
        let outer: Arc<dyn SecretSource> = Arc::new(SecretChain::first_try("inner", inner));
        let shared = SecretChain::empty().or_else_shared("outer", outer, false);
        assert_eq!(shared.get("X").await.unwrap().expose_secret(), "v");
        assert_eq!(shared.source_names().collect::<Vec<_>>(), ["outer"]);
        let miss = SecretChain::first_try("m", missing());
        assert!(
            matches!(miss.resolve("X").await.unwrap(), Lookup::NotFound(d) if d == "m: not found (empty)")
        );
    }

    #[tokio::test]
    async fn default_chain_is_local_then_env() {
        let env = Env::from_map([
            ("PREFECT__CONTEXT__SECRETS__A", "from-local"),
            ("A", "from-env"),
            ("B", "env-only"),
            ("HOME", "/nonexistent-home-for-test"),
        ]);
        let chain = SecretChain::local_then_env_with(env).unwrap();
        assert_eq!(chain.source_names().collect::<Vec<_>>(), ["local", "env"]);
        assert_eq!(chain.get("A").await.unwrap().expose_secret(), "from-local");
        assert_eq!(chain.get("B").await.unwrap().expose_secret(), "env-only");
    }
}
