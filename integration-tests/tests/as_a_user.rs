//! Tests written as a user of `vault-secret` would write them in their own
//! crate, with `vault-secret = { ..., features = ["testing"] }` in
//! `[dev-dependencies]`: only the public API, no project harness.
//!
//! `app` stands for the user's program: it reads its database settings from
//! Vault the way it would in production, through its environment.

use secret_core::{Env, SecretChain};
use serde_json::json;
use vault_secret::testing::{DevVault, MockVault};
use vault_secret::{KvVersion, VaultClient, VaultSource};

/// The user's code under test.
pub mod app {
    use secret_core::Env;
    use vault_secret::{Error, VaultSecret};

    /// `postgres://user:password@host/db` from the secret at `path`.
    pub async fn database_url(env: Env, path: &str) -> Result<String, Error> {
        let secret = VaultSecret::new(path).env(env).run().await?;
        let map = secret.to_mapping()?;
        let get = |key: &str| {
            map.get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        Ok(format!(
            "postgres://{}:{}@{}/billing",
            get("user"),
            get("password"),
            get("host")
        ))
    }
}

#[tokio::test]
async fn billing_builds_its_database_url_from_vault() {
    let vault = DevVault::shared().await.expect("a dev Vault");
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(
            &format!("{mount}/billing/db"),
            json!({"user": "billing", "password": "hunter2", "host": "db.internal"}),
        )
        .await;
    let policy = vault
        .policy(
            "billing",
            &format!(r#"path "{mount}/data/billing/*" {{ capabilities = ["read"] }}"#),
        )
        .await;
    let login = vault.approle(&[&policy]).await;

    let url = app::database_url(vault.env_for(&login), &format!("{mount}/billing/db"))
        .await
        .expect("the database URL");
    assert_eq!(url, "postgres://billing:hunter2@db.internal/billing");
}

#[tokio::test]
async fn billing_fails_clearly_without_access() {
    let vault = DevVault::shared().await.expect("a dev Vault");
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(&format!("{mount}/billing/db"), json!({"user": "u"}))
        .await;
    let nobody = vault.token(&[]).await;
    let err = app::database_url(vault.env_for(&nobody), &format!("{mount}/billing/db"))
        .await
        .expect_err("no policy, no secret");
    assert!(
        matches!(err, vault_secret::Error::PermissionDenied { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn settings_come_from_vault_after_the_local_context() {
    let vault = DevVault::shared().await.expect("a dev Vault");
    let mount = vault.kv_mount(KvVersion::V1).await;
    vault
        .kv_put(&format!("{mount}/billing/API_KEY"), json!({"value": "k-1"}))
        .await;
    let session = VaultClient::builder()
        .env(vault.env_for(&vault.root_token()))
        .build()
        .await
        .expect("a session");
    let chain = SecretChain::first_try(
        "env",
        secret_core::EnvironmentSource::new(Env::from_map([("OTHER", "x")])),
    )
    .or_else(
        "vault",
        VaultSource::under(format!("{mount}/billing")).client(session),
    );
    let key = chain.get("API_KEY").await.expect("API_KEY from Vault");
    assert_eq!(key.to_mapping().expect("a mapping")["value"], json!("k-1"));
}

#[tokio::test]
async fn every_test_of_the_binary_shares_one_server() {
    let a = DevVault::shared().await.expect("a dev Vault");
    let b = DevVault::shared().await.expect("a dev Vault");
    assert_eq!(a.addr(), b.addr());
    // Isolation comes from names, not servers.
    assert_ne!(
        a.kv_mount(KvVersion::V2).await,
        b.kv_mount(KvVersion::V2).await
    );
}

#[tokio::test]
async fn unit_test_with_the_mock_needs_no_server() {
    let vault = MockVault::start().await;
    vault
        .kv2(
            "secret/billing/db",
            json!({"user": "u", "password": "p", "host": "h"}),
        )
        .await;
    let url = app::database_url(vault.env_for(&vault.root_token()), "secret/billing/db")
        .await
        .expect("the database URL");
    assert_eq!(url, "postgres://u:p@h/billing");
    assert_eq!(
        vault
            .received()
            .await
            .iter()
            .filter(|r| r.path == "secret/data/billing/db")
            .count(),
        1
    );
}
