//! The default clients behind [`VaultSecret::run`](crate::VaultSecret::run)
//! and [`VaultSource`](crate::VaultSource) when no client is given: the one
//! piece of process-wide state in the crate.
//!
//! - One client per distinct settings and credentials (address, namespace,
//!   TLS, timeouts, and the credentials themselves), so a process that reads
//!   many secrets with the same environment logs in once.
//! - At most [`CAPACITY`] clients. Past that, the least recently used one
//!   that nobody else holds a clone of is dropped, and the token it obtained
//!   by logging in is revoked on a thread of its own (with its own runtime),
//!   the same whatever runtime the caller runs, or none. A process that
//!   exits before that revocation finishes leaves the token to its TTL.
//! - `run()` resolves its settings on each call, so a changed variable is
//!   seen at once; to keep that cheap, the client resolved from the same
//!   variables in the last [`RESOLVED_FOR`] is reused without resolving
//!   again (the files resolution reads, `~/.vault-token` and the local
//!   context's config file, are read again after that).
//! - [`shutdown_default_clients`] revokes every default client's token, for a service that
//!   used `run()` and shuts down cleanly (the CLI does this before it exits).
//!
//! A service that holds a [`VaultClient`] of its own does not touch this map.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::builder::ClientBuilder;
use crate::client::VaultClient;
use crate::error::Error;

/// How many default clients the process keeps.
pub(crate) const CAPACITY: usize = 32;

/// How long settings resolved from unchanged variables are reused.
pub(crate) const RESOLVED_FOR: Duration = Duration::from_secs(1);

/// The map and the key of its hashes.
#[derive(Default)]
struct Defaults {
    /// Hashes with a process-random key: nothing outside the process can predict them.
    keys: RandomState,
    clients: Mutex<Clients>,
}

#[derive(Default)]
struct Clients {
    /// Each client, by a hash of its settings and credentials, and when it was last handed out.
    by_settings: HashMap<u64, (VaultClient, Instant)>,
    /// Clients recently resolved, by the fingerprint of the variables resolution read.
    recent: HashMap<u64, (u64, Instant)>,
}

fn defaults() -> &'static Defaults {
    static DEFAULTS: OnceLock<Defaults> = OnceLock::new();
    DEFAULTS.get_or_init(Defaults::default)
}

fn lock() -> std::sync::MutexGuard<'static, Clients> {
    defaults().clients.lock().unwrap_or_else(|p| p.into_inner())
}

/// The default client for `builder`'s settings and credentials.
pub(crate) async fn client_for(builder: &ClientBuilder) -> Result<VaultClient, Error> {
    let fingerprint = fingerprint(builder);
    if let Some(client) = fingerprint.and_then(|f| lock().recent(f)) {
        return Ok(client);
    }
    let (config, credentials) = builder.resolve().await?;
    let key = {
        let mut hasher = defaults().keys.build_hasher();
        config.hash(&mut hasher);
        credentials.hash_into(&mut hasher);
        builder.settings.cache.hash(&mut hasher);
        hasher.finish()
    };
    let mut clients = lock();
    let client = match clients.by_settings.get_mut(&key) {
        Some((client, used)) => {
            *used = Instant::now();
            client.clone()
        }
        None => {
            let client = VaultClient::new(config, credentials, builder.settings.cache.clone())?;
            clients
                .by_settings
                .insert(key, (client.clone(), Instant::now()));
            clients.evict();
            client
        }
    };
    if let Some(f) = fingerprint {
        clients.remember(f, key);
    }
    Ok(client)
}

/// [`client_for`] from synchronous code: the client resolved from the same
/// variables in the last [`RESOLVED_FOR`] without a runtime, else a
/// resolution on a runtime of its own (see [`crate::blocking::run`]).
pub(crate) fn client_for_blocking(builder: &ClientBuilder) -> Result<VaultClient, Error> {
    if let Some(client) = fingerprint(builder).and_then(|f| lock().recent(f)) {
        return Ok(client);
    }
    crate::blocking::run(|| client_for(builder))
}

/// Revokes the tokens the default clients behind
/// [`VaultSecret::run`](crate::VaultSecret::run) and
/// [`VaultSource`](crate::VaultSource) obtained by logging in, for a service
/// that used them and shuts down cleanly. Returns the first failure, after
/// trying them all. A [`VaultClient`] of the caller's own is not touched.
pub async fn shutdown_default_clients() -> Result<(), Error> {
    let all: Vec<VaultClient> = lock()
        .by_settings
        .values()
        .map(|(c, _)| c.clone())
        .collect();
    let mut first = Ok(());
    for client in all {
        let outcome = client.shutdown().await;
        if first.is_ok() {
            first = outcome;
        }
    }
    first
}

impl Clients {
    fn recent(&mut self, fingerprint: u64) -> Option<VaultClient> {
        let (key, at) = self.recent.get(&fingerprint)?;
        if at.elapsed() >= RESOLVED_FOR {
            return None;
        }
        let (client, used) = self.by_settings.get_mut(key)?;
        *used = Instant::now();
        Some(client.clone())
    }

    fn remember(&mut self, fingerprint: u64, key: u64) {
        if self.recent.len() >= CAPACITY * 2 {
            self.recent.retain(|_, (_, at)| at.elapsed() < RESOLVED_FOR);
        }
        self.recent.insert(fingerprint, (key, Instant::now()));
    }

    /// Drops the least recently used clients nobody holds until at most
    /// [`CAPACITY`] remain, revoking their tokens off the caller's runtime.
    fn evict(&mut self) {
        while self.by_settings.len() > CAPACITY {
            let Some(oldest) = self
                .by_settings
                .iter()
                .filter(|(_, (c, _))| c.holders() == 1)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
            else {
                return;
            };
            if let Some((evicted, _)) = self.by_settings.remove(&oldest) {
                revoke_detached(evicted);
            }
        }
    }
}

/// Revokes `client`'s token on a thread with a runtime of its own, so it
/// happens the same way inside any runtime or none.
fn revoke_detached(client: VaultClient) {
    let spawned = std::thread::Builder::new()
        .name("vault-secret-revoke".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(runtime) => {
                    if let Err(e) = runtime.block_on(client.shutdown()) {
                        tracing::debug!(error = %e, "could not revoke an evicted client's token");
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "no runtime to revoke an evicted client's token")
                }
            }
        });
    if let Err(e) = spawned {
        tracing::debug!(error = %e, "no thread to revoke an evicted client's token");
    }
}

/// A hash of everything resolution reads from the environment (the
/// variables [`crate::variables`] declares for it, and the credentials
/// secret's own names), for a builder that reads only the environment;
/// `None` when it cannot be told (a chain or configuration of the caller's
/// own, typed credentials).
///
/// Each variable that is set is hashed on its own and the hashes added up,
/// so the order they are visited in does not matter. This runs on every
/// `run()`, so it copies no value it need not.
fn fingerprint(builder: &ClientBuilder) -> Option<u64> {
    if builder.chain.is_some() || builder.config.is_some() || builder.has_typed_credentials() {
        return None;
    }
    let keys = &defaults().keys;
    let secret = builder.credentials_secret.as_str();
    // The default secret's names are declared; another name's are added.
    let other_secret = (secret != crate::variables::DEFAULT_CREDENTIALS_SECRET).then(|| {
        [
            secret.to_owned(),
            format!("{}{secret}", secret_core::DEFAULT_ENV_PREFIX),
        ]
    });
    let names = crate::variables::resolution()
        .map(|v| v.name)
        .chain(other_secret.iter().flatten().map(String::as_str));
    let mut sum = keys.hash_one((secret, &builder.settings));
    builder.env.for_each_of(names, |name, value| {
        sum = sum.wrapping_add(keys.hash_one((name, value)));
    });
    Some(sum)
}

#[cfg(test)]
mod tests {
    use secret_core::Env;

    use super::*;

    fn builder(token: &str) -> ClientBuilder {
        VaultClient::builder().env(Env::from_map([
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", token),
            ("HOME", "/nonexistent-home"),
        ]))
    }

    #[tokio::test]
    async fn same_settings_share_one_client_and_others_do_not() {
        let a = client_for(&builder("shared-a")).await.unwrap();
        let b = client_for(&builder("shared-a")).await.unwrap();
        assert!(a.shares_state_with(&b));
        let c = client_for(&builder("shared-c")).await.unwrap();
        assert!(!a.shares_state_with(&c));
        let own = builder("shared-a").build().await.unwrap();
        assert!(!a.shares_state_with(&own));
    }

    #[tokio::test]
    async fn the_map_is_bounded_and_keeps_clients_someone_holds() {
        let held = client_for(&builder("held")).await.unwrap();
        for i in 0..CAPACITY + 8 {
            client_for(&builder(&format!("token-{i}"))).await.unwrap();
        }
        assert!(lock().by_settings.len() <= CAPACITY);
        let again = client_for(&builder("held")).await.unwrap();
        assert!(held.shares_state_with(&again), "a held client was dropped");
    }

    #[test]
    fn the_fingerprint_sees_every_declared_variable_and_nothing_else() {
        let base = [("VAULT_ADDR", "http://127.0.0.1:8200")];
        let of = |extra: &[(&str, &str)]| {
            let vars = base.iter().chain(extra).map(|(k, v)| (*k, *v));
            fingerprint(&VaultClient::builder().env(Env::from_map(vars)))
                .expect("a builder that reads only the environment")
        };
        let plain = of(&[]);
        for v in crate::variables::resolution().filter(|v| v.name != "VAULT_ADDR") {
            assert_ne!(
                of(&[(v.name, "x")]),
                plain,
                "`{}` is not in the fingerprint",
                v.name
            );
        }
        // A variable resolution does not read leaves it as it is.
        assert_eq!(of(&[("UNRELATED_VARIABLE", "x")]), plain);
        // The order variables are listed in does not matter.
        assert_eq!(
            of(&[("VAULT_TOKEN", "t"), ("VAULT_NAMESPACE", "n")]),
            of(&[("VAULT_NAMESPACE", "n"), ("VAULT_TOKEN", "t")])
        );
        // Another credentials secret's names count for a builder that uses it.
        let named = |vars: &[(&str, &str)]| {
            let vars = base.iter().chain(vars).map(|(k, v)| (*k, *v));
            fingerprint(
                &VaultClient::builder()
                    .env(Env::from_map(vars))
                    .credentials_secret("TEAM_VAULT"),
            )
        };
        assert_ne!(named(&[("TEAM_VAULT", "{}")]), named(&[]));
    }

    #[tokio::test]
    async fn resolved_settings_are_reused_briefly_and_files_read_again_after() {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join(".prefect");
        std::fs::create_dir(&config).unwrap();
        let write = |token: &str| {
            std::fs::write(
                config.join("config.toml"),
                format!(
                    "[context.secrets]\nVAULT_CREDENTIALS = '{{\"VAULT_TOKEN\": \"{token}\"}}'\n"
                ),
            )
            .unwrap();
        };
        let home_dir = home.path().to_str().unwrap();
        let env = Env::from_map([("VAULT_ADDR", "http://127.0.0.1:8200"), ("HOME", home_dir)]);
        write("first-file-token");
        let a = client_for(&VaultClient::builder().env(env.clone()))
            .await
            .unwrap();
        write("second-file-token");
        let b = client_for(&VaultClient::builder().env(env.clone()))
            .await
            .unwrap();
        assert!(a.shares_state_with(&b), "resolved again within the second");
        // A changed variable is seen at once.
        let other = Env::from_map([
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_NAMESPACE", "team"),
            ("HOME", home_dir),
        ]);
        let c = client_for(&VaultClient::builder().env(other))
            .await
            .unwrap();
        assert!(!a.shares_state_with(&c));
        // The file is read again once the second is over.
        tokio::time::sleep(RESOLVED_FOR + Duration::from_millis(100)).await;
        let d = client_for(&VaultClient::builder().env(env)).await.unwrap();
        assert!(
            !a.shares_state_with(&d),
            "the changed file was not read again"
        );
    }
}
