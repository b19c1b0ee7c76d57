//! The figment provider and the config-rs source against a real dev server:
//! merge and join order, typed extraction, sync callers with and without a
//! runtime, config-rs's async source, absent, optional and denied secrets,
//! AppRole, and no token left behind by a load.

use config::{Config, ConfigError};
use figment::Figment;
use figment::providers::{Env as FigmentEnv, Format, Toml};
use secret_core::Env as SecretEnv;
use serde::Deserialize;
use serde_json::json;
use vault_secret::testing::{DevVault, Token};
use vault_secret::{Error, KvVersion, VaultClient, VaultConfigSource, VaultProvider};

#[derive(Debug, Deserialize)]
struct Settings {
    name: String,
    database: Database,
}

#[derive(Debug, Deserialize)]
struct Database {
    host: String,
    port: u16,
    user: String,
    password: String,
    tls: bool,
    pool: Pool,
}

#[derive(Debug, Deserialize)]
struct Pool {
    max: u32,
}

/// A KV v2 mount holding `<mount>/db` (typed values, a nested object) and a
/// policy reading anything in the mount (so an absent secret is not found,
/// not denied); returns the shared server, the mount and the policy.
async fn database_secret() -> (DevVault, String, String) {
    let vault = DevVault::shared().await.expect("the shared dev server");
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(
            &format!("{mount}/db"),
            json!({
                "user": "vault-user",
                "password": "vault-password",
                "port": 6543,
                "tls": true,
                "pool": {"max": 8}
            }),
        )
        .await;
    let policy = vault
        .policy(
            "adapters",
            &format!(r#"path "{mount}/data/*" {{ capabilities = ["read"] }}"#),
        )
        .await;
    (vault, mount, policy)
}

/// A TOML file with every setting (the Vault secret overrides some).
fn toml_file() -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    std::fs::write(
        file.path(),
        "name = \"billing\"\n\
         [database]\n\
         host = \"toml-host\"\n\
         port = 5432\n\
         user = \"toml-user\"\n\
         password = \"toml-password\"\n\
         tls = false\n\
         pool = { max = 2 }\n",
    )
    .expect("write the TOML file");
    file
}

/// figment's environment provider reads the process environment, which
/// tests do not change: `PATH` (always set) stands in as `database.host`.
fn env_host() -> (FigmentEnv, String) {
    let path = std::env::var("PATH").expect("PATH is set");
    let provider = FigmentEnv::raw()
        .only(&["PATH"])
        .map(|_| "database.host".into());
    (provider, path)
}

#[tokio::test]
async fn figment_merge_and_join_order_decide_whether_vault_wins() {
    let (vault, mount, policy) = database_secret().await;
    let login = vault.approle(&[&policy]).await;
    let toml = toml_file();
    let (env, host) = env_host();
    let provider = VaultProvider::new(format!("{mount}/db"))
        .nest("database")
        .env(vault.env_for(&login));

    // Merged last: Vault's values win over the file's; the environment's
    // host (merged after the file, absent from Vault) wins over the file's.
    let merged = Figment::from(Toml::file(toml.path()))
        .merge(env.clone())
        .merge(provider.clone());
    let settings: Settings = merged.extract().expect("merged settings");
    assert_eq!(settings.name, "billing");
    assert_eq!(settings.database.host, host);
    assert_eq!(settings.database.port, 6543);
    assert_eq!(settings.database.user, "vault-user");
    assert_eq!(settings.database.password, "vault-password");
    assert!(settings.database.tls);
    assert_eq!(settings.database.pool.max, 8);

    // Joined: the file's values stay; Vault only fills what is missing.
    let joined = Figment::from(Toml::file(toml.path()))
        .join(provider.clone())
        .join(env);
    let settings: Settings = joined.extract().expect("joined settings");
    assert_eq!(settings.database.host, "toml-host");
    assert_eq!(settings.database.port, 5432);
    assert_eq!(settings.database.user, "toml-user");
    assert!(!settings.database.tls);

    // Where a Vault value came from: the path and the address, no value.
    let metadata = merged
        .find_metadata("database.password")
        .expect("metadata for database.password");
    assert_eq!(metadata.name, "Vault");
    let source = metadata.source.as_ref().map(ToString::to_string);
    assert_eq!(
        source.as_deref(),
        Some(format!("`{mount}/db` at {}", vault.addr()).as_str())
    );
    // A type error on a Vault value points at Vault.
    let err = merged.extract_inner::<u8>("database.user").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("`{mount}/db`")), "{msg}");
    assert!(!msg.contains("vault-password"), "{msg}");
}

#[tokio::test]
async fn figment_puts_one_field_at_a_dotted_key_in_a_profile() {
    let (vault, mount, policy) = database_secret().await;
    let login = vault.token(&[&policy]).await;
    let figment = Figment::new()
        .merge(
            VaultProvider::new(format!("{mount}/db#password"))
                .at("database.password")
                .env(vault.env_for(&login)),
        )
        .merge(
            VaultProvider::new(format!("{mount}/db#port"))
                .nest("database")
                .profile("staging")
                .env(vault.env_for(&login)),
        );
    let password: String = figment.extract_inner("database.password").unwrap();
    assert_eq!(password, "vault-password");
    // The port went to the `staging` profile only.
    assert!(figment.extract_inner::<u16>("database.port").is_err());
    let staging = figment.select("staging");
    assert_eq!(staging.extract_inner::<u16>("database.port").unwrap(), 6543);
    // A global provider's values show in every profile.
    let global = Figment::new()
        .merge(
            VaultProvider::new(format!("{mount}/db#tls"))
                .profile(figment::Profile::Global)
                .env(vault.env_for(&login)),
        )
        .select("production");
    assert!(global.extract_inner::<bool>("tls").unwrap());
}

/// The figment and the config-rs reads of `<mount>/db` with `env`, run on
/// the calling thread (whatever runtime it has): the port each found.
fn read_both(env: &SecretEnv, mount: &str) -> (u16, u16) {
    let figment = Figment::new().merge(
        VaultProvider::new(format!("{mount}/db"))
            .nest("database")
            .env(env.clone()),
    );
    let from_figment = figment
        .extract_inner("database.port")
        .expect("figment's read");
    let config = Config::builder()
        .add_source(
            VaultConfigSource::new(format!("{mount}/db"))
                .nest("database")
                .env(env.clone()),
        )
        .build()
        .expect("config-rs's read");
    let from_config = config.get("database.port").expect("database.port");
    (from_figment, from_config)
}

#[test]
fn sync_reads_from_a_plain_main_without_a_runtime() {
    // Provisioning needs a runtime; the reads below run after it is gone.
    let (env, mount) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let (vault, mount, policy) = database_secret().await;
            let token = vault.token(&[&policy]).await;
            (vault.env_for(&token), mount)
        });
    assert!(tokio::runtime::Handle::try_current().is_err());
    assert_eq!(read_both(&env, &mount), (6543, 6543));
}

#[tokio::test(flavor = "current_thread")]
async fn sync_reads_from_inside_a_current_thread_runtime() {
    let (vault, mount, policy) = database_secret().await;
    let env = vault.env_for(&vault.token(&[&policy]).await);
    // Called straight from the runtime's only thread: no "runtime within a
    // runtime" panic, no deadlock.
    assert_eq!(read_both(&env, &mount), (6543, 6543));
    // And from a blocking thread of that runtime.
    let ports = tokio::task::spawn_blocking(move || read_both(&env, &mount))
        .await
        .unwrap();
    assert_eq!(ports, (6543, 6543));
}

#[tokio::test]
async fn config_async_source_extracts_typed_settings() {
    let (vault, mount, policy) = database_secret().await;
    let login = vault.approle(&[&policy]).await;
    let config = Config::builder()
        .set_default("name", "billing")
        .unwrap()
        .set_default("database.host", "default-host")
        .unwrap()
        .set_default("database.port", 5432)
        .unwrap()
        .add_async_source(
            VaultConfigSource::new(format!("{mount}/db"))
                .nest("database")
                .env(vault.env_for(&login)),
        )
        .build()
        .await
        .expect("the async build");
    let settings: Settings = config.clone().try_deserialize().expect("typed settings");
    assert_eq!(settings.name, "billing");
    assert_eq!(settings.database.host, "default-host");
    assert_eq!(settings.database.port, 6543);
    assert_eq!(settings.database.user, "vault-user");
    assert_eq!(settings.database.password, "vault-password");
    assert!(settings.database.tls);
    assert_eq!(settings.database.pool.max, 8);
    // Each value carries its origin (the path and the address), which
    // config-rs's errors name.
    let err = config.get::<u16>("database.user").unwrap_err().to_string();
    assert!(
        err.ends_with(&format!(
            "for key `database.user` in Vault `{mount}/db` at {}",
            vault.addr()
        )),
        "{err}"
    );
    assert!(!err.contains("vault-password"), "{err}");
}

/// The `vault_secret::Error` a config-rs failure wraps.
fn vault_error(err: &ConfigError) -> &Error {
    match err {
        ConfigError::Foreign(inner) => inner
            .downcast_ref::<Error>()
            .unwrap_or_else(|| panic!("not a vault_secret::Error: {err}")),
        other => panic!("not a foreign error: {other}"),
    }
}

#[tokio::test]
async fn absent_secrets_fail_unless_optional() {
    let (vault, mount, policy) = database_secret().await;
    let token = vault.token(&[&policy]).await;
    let missing = format!("{mount}/db#nope");

    // figment: required fails naming the path; optional adds nothing.
    let required = Figment::new().merge(VaultProvider::new(&missing).env(vault.env_for(&token)));
    let err = required.extract::<serde_json::Value>().unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("has no field `nope`"), "{msg}");
    assert_eq!(err.metadata.map(|m| m.name), Some("Vault".into()));
    let optional = Figment::from(Toml::string("kept = 1")).merge(
        VaultProvider::new(format!("{mount}/absent"))
            .optional()
            .env(vault.env_for(&token)),
    );
    assert_eq!(
        optional.extract::<serde_json::Value>().unwrap(),
        json!({"kept": 1})
    );

    // config-rs: the wrapped error is the crate's own, classified.
    let err = Config::builder()
        .add_async_source(
            VaultConfigSource::new(format!("{mount}/absent")).env(vault.env_for(&token)),
        )
        .build()
        .await
        .unwrap_err();
    assert!(matches!(vault_error(&err), Error::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("{mount}/absent")),
        "{err}"
    );
    let config = Config::builder()
        .set_default("kept", 1)
        .unwrap()
        .add_async_source(
            VaultConfigSource::new(&missing)
                .optional()
                .env(vault.env_for(&token)),
        )
        .build()
        .await
        .unwrap();
    assert_eq!(config.get::<i64>("kept").unwrap(), 1);
    assert!(config.get::<String>("nope").is_err());
}

#[tokio::test]
async fn a_denied_secret_fails_even_when_optional() {
    let (vault, mount, _policy) = database_secret().await;
    let stranger = vault.token(&[]).await;
    let path = format!("{mount}/db");

    let err = Figment::new()
        .merge(
            VaultProvider::new(&path)
                .optional()
                .env(vault.env_for(&stranger)),
        )
        .extract::<serde_json::Value>()
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("access forbidden: `{path}`")),
        "{msg}"
    );
    assert!(!msg.contains("vault-password"), "{msg}");

    let err = Config::builder()
        .add_source(
            VaultConfigSource::new(&path)
                .optional()
                .env(vault.env_for(&stranger)),
        )
        .build()
        .unwrap_err();
    assert!(
        matches!(vault_error(&err), Error::PermissionDenied { .. }),
        "{err}"
    );
    // Bad credentials are no absence either.
    let err = Config::builder()
        .add_source(
            VaultConfigSource::new(format!("{mount}/absent"))
                .optional()
                .env(vault.env_for(&Token::new("s.not-a-token"))),
        )
        .build()
        .unwrap_err();
    assert!(!vault_error(&err).is_not_found(), "{err}");
}

/// How many tokens are live on `vault`.
async fn token_count(vault: &DevVault) -> usize {
    crate::support::live_tokens(&vault.admin()).await.len()
}

#[tokio::test]
async fn a_load_leaves_no_token_and_a_callers_session_is_left_alone() {
    // A server of its own: other tests make tokens on the shared one.
    let vault = DevVault::start().await.expect("a dev server");
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(&format!("{mount}/db"), json!({"port": 6543}))
        .await;
    let policy = vault
        .policy(
            "adapters",
            &format!(r#"path "{mount}/data/db" {{ capabilities = ["read"] }}"#),
        )
        .await;
    let login = vault.approle(&[&policy]).await;
    let before = token_count(&vault).await;

    // Each load logs in with AppRole and revokes its token when done.
    let path = format!("{mount}/db");
    let figment = Figment::new().merge(VaultProvider::new(&path).env(vault.env_for(&login)));
    assert_eq!(figment.extract_inner::<u16>("port").unwrap(), 6543);
    let config = Config::builder()
        .add_source(VaultConfigSource::new(&path).env(vault.env_for(&login)))
        .build()
        .unwrap();
    assert_eq!(config.get::<u16>("port").unwrap(), 6543);
    let config = Config::builder()
        .add_async_source(VaultConfigSource::new(&path).env(vault.env_for(&login)))
        .build()
        .await
        .unwrap();
    assert_eq!(config.get::<u16>("port").unwrap(), 6543);
    assert_eq!(token_count(&vault).await, before, "a load left a token");

    // A session the caller holds keeps its token after the load.
    let session = VaultClient::builder()
        .env(vault.env_for(&login))
        .build()
        .await
        .unwrap();
    let figment = Figment::new().merge(VaultProvider::new(&path).client(session.clone()));
    assert_eq!(figment.extract_inner::<u16>("port").unwrap(), 6543);
    assert_eq!(token_count(&vault).await, before + 1);
    session.shutdown().await.unwrap();
    assert_eq!(token_count(&vault).await, before);
}

/// Values written as text (`bao kv put secret/db port=6543 tls=true`
/// stores `"6543"` and `"true"`), as the crate docs describe: figment's
/// `extract()` refuses them for a `u16` and a `bool`, `extract_lossy()`
/// parses them, and config-rs converts them on its own.
#[tokio::test]
async fn text_values_extract_with_figments_extract_lossy_and_config_rs() {
    #[derive(Debug, Deserialize)]
    struct Db {
        port: u16,
        tls: bool,
    }

    let vault = DevVault::shared().await.expect("the shared dev server");
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(
            &format!("{mount}/db"),
            json!({"port": "6543", "tls": "true"}),
        )
        .await;
    let policy = vault
        .policy(
            "text-values",
            &format!(r#"path "{mount}/data/*" {{ capabilities = ["read"] }}"#),
        )
        .await;
    let login = vault.approle(&[&policy]).await;
    let env = vault.env_for(&login);

    let figment = Figment::from(VaultProvider::new(format!("{mount}/db")).env(env.clone()));
    let strict = figment.extract::<Db>();
    assert!(strict.is_err(), "extract() took text for a u16: {strict:?}");
    let db: Db = figment.extract_lossy().expect("extract_lossy parses text");
    assert_eq!(db.port, 6543);
    assert!(db.tls);

    let config = Config::builder()
        .add_async_source(VaultConfigSource::new(format!("{mount}/db")).env(env))
        .build()
        .await
        .expect("the config");
    let db: Db = config.try_deserialize().expect("config-rs converts text");
    assert_eq!(db.port, 6543);
    assert!(db.tls);
}
