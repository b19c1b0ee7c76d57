//! Vault in a `secret-core` chain: local context first, then Vault.

use secret_core::{Error as CoreError, LocalContext, Outcome, SecretChain, SecretValue};
use serde_json::json;
use vault_secret::VaultSource;

use crate::harness::{self, unique};
use crate::support::TestEnv;

#[tokio::test]
async fn local_context_before_vault() {
    let server = harness::server().await;
    let prefix = unique("apps");
    let admin = server.admin();
    admin
        .kv2_put(
            "secret",
            &format!("{prefix}/API_KEY"),
            json!({"key": "from-vault"}),
        )
        .await;
    admin
        .kv2_put("secret", &format!("{prefix}/DB"), json!({"pw": "vault-db"}))
        .await;
    let env = TestEnv::new(&server).credentials(json!({"VAULT_TOKEN": server.root_token()}));
    let session = env.session().await;

    let local = LocalContext::builder()
        .secret("DB", SecretValue::text("local-db"))
        .build()
        .unwrap();
    let chain = SecretChain::first_try("local", local).or_else(
        "vault",
        VaultSource::under(format!("secret/{prefix}")).client(session),
    );

    // Local wins for DB; Vault serves API_KEY.
    assert_eq!(chain.get("DB").await.unwrap().expose_secret(), "local-db");
    let api = chain.get("API_KEY").await.unwrap();
    assert_eq!(api.field("key").unwrap().expose_secret(), "from-vault");
    // Missing everywhere: not-found from both, named.
    match chain.get("MISSING").await.unwrap_err() {
        CoreError::NotFound { attempts, .. } => {
            let sources: Vec<_> = attempts.iter().map(|a| a.source.as_str()).collect();
            assert_eq!(sources, ["local", "vault"]);
            assert!(matches!(&attempts[1].outcome, Outcome::NotFound(d) if d.contains("MISSING")));
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn vault_source_conforms() {
    let server = harness::server().await;
    let path = unique("conf");
    server
        .admin()
        .kv2_put("secret", &path, json!({"PRESENT": "conformance-value-1"}))
        .await;
    let env = TestEnv::new(&server).credentials(json!({"VAULT_TOKEN": server.root_token()}));
    let session = env.session().await;
    let source = VaultSource::fields_of(format!("secret/{path}")).client(session);
    secret_core::testing::run_conformance(&source, "PRESENT", "conformance-value-1", "ABSENT")
        .await;
}

#[tokio::test]
async fn a_vault_failure_stops_the_chain_unless_optional() {
    let server = harness::server().await;
    let env = TestEnv::new(&server).credentials(json!({"VAULT_TOKEN": "s.bad-token"}));
    let session = env.session().await;
    let later = LocalContext::builder()
        .secret("X", SecretValue::text("later"))
        .build()
        .unwrap();

    let strict = SecretChain::first_try(
        "vault",
        VaultSource::under("secret/apps").client(session.clone()),
    )
    .or_else("later", later.clone());
    let err = strict.get("X").await.unwrap_err();
    assert!(matches!(err, CoreError::Backend { .. }), "{err}");

    let lenient = SecretChain::empty()
        .or_else_optional("vault", VaultSource::under("secret/apps").client(session))
        .or_else("later", later);
    assert_eq!(lenient.get("X").await.unwrap().expose_secret(), "later");
}

/// `get_many` through a chain: the local context answers what it has, and
/// the fields Vault serves from one secret cost one read, counted in the
/// server's audit log.
#[tokio::test]
async fn get_many_reads_a_shared_vault_secret_once() {
    use vault_secret::KvVersion;
    use vault_secret::testing::DevVault;
    let vault = DevVault::shared().await.expect("the shared dev server");
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(
            &format!("{mount}/db"),
            json!({"user": "u", "password": "p", "host": "h"}),
        )
        .await;
    let local = LocalContext::builder()
        .secret("host", SecretValue::text("local-host"))
        .build()
        .unwrap();
    let chain = SecretChain::first_try("local", local).or_else(
        "vault",
        VaultSource::fields_of(format!("{mount}/db"))
            .builder(vault_secret::VaultClient::builder().env(vault.env_for(&vault.root_token()))),
    );
    let audit = vault.audit_requests().await;
    let before = audit.mark().await;
    let values = chain.get_many(&["user", "host", "password"]).await.unwrap();
    let shown: Vec<&str> = values.iter().map(|v| v.expose_secret()).collect();
    assert_eq!(shown, ["u", "local-host", "p"]);
    assert_eq!(
        audit
            .count_since(&before, &format!("{mount}/data/db"))
            .await,
        1,
        "{:?}",
        audit.requests_since(&before).await
    );
    // A field the secret lacks is "not found" in Vault, named in the error.
    let err = chain.get_many(&["user", "nope"]).await.unwrap_err();
    assert!(
        matches!(&err, CoreError::NotFound { name, .. } if name == "nope"),
        "{err}"
    );
}
