//! A client the caller owns, on a real server: two clients in one process
//! share nothing (tokens, mount knowledge); `shutdown()` revokes a token
//! the client obtained and never one the caller supplied.

use serde::Deserialize;
use serde_json::json;
use vault_secret::testing::DevVault;
use vault_secret::{Error, KvVersion, VaultClient};

use crate::support::live_tokens;

/// A client built with typed AppRole credentials for a new role holding `policy`.
async fn approle_client(vault: &DevVault, policy: &str) -> VaultClient {
    let login = vault.approle(&[policy]).await;
    VaultClient::builder()
        .env(vault.env_for(&vault.root_token()))
        .approle(login.role_id(), login.secret_id())
        .approle_mount(login.mount())
        .build()
        .await
        .expect("a client")
}

#[tokio::test]
async fn two_clients_share_no_token_nor_mount_cache_and_shutdown_revokes_only_their_own() {
    let vault = DevVault::start().await.expect("a dev server");
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(&format!("{mount}/a"), json!({"who": "a"}))
        .await;
    vault
        .kv_put(&format!("{mount}/b"), json!({"who": "b"}))
        .await;
    let pa = vault
        .policy(
            "a",
            &format!(r#"path "{mount}/data/a" {{ capabilities = ["read"] }}"#),
        )
        .await;
    let pb = vault
        .policy(
            "b",
            &format!(r#"path "{mount}/data/b" {{ capabilities = ["read"] }}"#),
        )
        .await;
    let before = live_tokens(&vault.admin()).await;
    let a = approle_client(&vault, &pa).await;
    let b = approle_client(&vault, &pb).await;
    let audit = vault.audit_requests().await;
    let mark = audit.mark().await;

    // Different tokens: each reads only what its own policy allows.
    let who = |c: VaultClient, path: String| async move { c.read(&path).await };
    let a_reads_a = who(a.clone(), format!("{mount}/a#who"))
        .await
        .expect("a reads a");
    assert_eq!(a_reads_a.expose_secret(), "a");
    let b_reads_a = who(b.clone(), format!("{mount}/a#who")).await;
    assert!(
        matches!(b_reads_a, Err(Error::PermissionDenied { .. })),
        "{b_reads_a:?}"
    );
    assert_eq!(
        who(b.clone(), format!("{mount}/b#who"))
            .await
            .expect("b reads b")
            .expose_secret(),
        "b"
    );
    let (ia, ib) = (
        a.inspect().token_info().await.unwrap(),
        b.inspect().token_info().await.unwrap(),
    );
    assert!(
        ia.policies.contains(&pa) && !ia.policies.contains(&pb),
        "{ia:?}"
    );
    assert!(
        ib.policies.contains(&pb) && !ib.policies.contains(&pa),
        "{ib:?}"
    );
    let during = live_tokens(&vault.admin()).await;
    assert_eq!(during.len(), before.len() + 2, "one login per client");

    // Separate mount caches: each client asked where the mount is, once.
    let preflights = audit
        .requests_since(&mark)
        .await
        .into_iter()
        .filter(|r| r.path.starts_with("sys/internal/ui/mounts/"))
        .count();
    assert_eq!(preflights, 2, "one preflight per client, none shared");

    // A clone shares its client's state: no new login, no new preflight.
    let mark = audit.mark().await;
    let clone = a.clone();
    clone
        .read(&format!("{mount}/a"))
        .await
        .expect("the clone reads");
    let seen: Vec<String> = audit
        .requests_since(&mark)
        .await
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(seen, [format!("{mount}/data/a")], "{seen:?}");

    // shutdown() revokes the obtained tokens, checked on the server.
    a.shutdown().await.expect("a's token revoked");
    b.shutdown().await.expect("b's token revoked");
    assert_eq!(live_tokens(&vault.admin()).await, before);
    // The next use logs in again.
    assert_eq!(
        clone
            .read(&format!("{mount}/a#who"))
            .await
            .expect("a new login")
            .expose_secret(),
        "a"
    );
    clone.shutdown().await.expect("revoked again");
}

#[tokio::test]
async fn shutdown_leaves_a_supplied_token_alone() {
    let vault = DevVault::shared().await.expect("a dev server");
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(&format!("{mount}/app"), json!({"k": "v"}))
        .await;
    let policy = vault
        .policy(
            "supplied",
            &format!(r#"path "{mount}/data/app" {{ capabilities = ["read"] }}"#),
        )
        .await;
    let token = vault.token(&[&policy]).await;
    let client = VaultClient::builder()
        .env(vault.env_for(&vault.root_token()))
        .token(token.expose_secret())
        .build()
        .await
        .expect("a client");
    client.read(&format!("{mount}/app")).await.expect("a read");
    client.shutdown().await.expect("nothing to revoke");
    // Another client with the same token still reads: it was not revoked.
    let again = VaultClient::builder()
        .env(vault.env_for(&token))
        .build()
        .await
        .expect("a client");
    assert_eq!(
        again
            .read(&format!("{mount}/app#k"))
            .await
            .expect("the token still works")
            .expose_secret(),
        "v"
    );
}

#[tokio::test]
async fn typed_reads_name_the_secret_and_field_never_the_value() {
    #[derive(Deserialize)]
    struct Db {
        user: String,
        port: u16,
        password: secrecy::SecretString,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)] // Only its failure to deserialize is looked at.
    struct Strict {
        port: bool,
    }
    let vault = DevVault::shared().await.expect("a dev server");
    let mount = vault.kv_mount(KvVersion::V2).await;
    vault
        .kv_put(
            &format!("{mount}/db"),
            json!({"user": "app", "port": 5432, "password": "hunter2"}),
        )
        .await;
    let client = VaultClient::builder()
        .env(vault.env_for(&vault.root_token()))
        .build()
        .await
        .expect("a client");
    let db: Db = client.read_as(&format!("{mount}/db")).await.expect("a Db");
    assert_eq!((db.user.as_str(), db.port), ("app", 5432));
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&db.password),
        "hunter2"
    );
    assert!(!format!("{:?}", db.password).contains("hunter2"));
    let err = client
        .read_as::<Strict>(&format!("{mount}/db"))
        .await
        .expect_err("port is not a boolean");
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains(&format!("{mount}/db")) && shown.contains("port"),
        "{shown}"
    );
    assert!(
        !shown.contains("5432") && !shown.contains("hunter2"),
        "{shown}"
    );
    let via_secret: Db = vault_secret::VaultSecret::new(format!("{mount}/db"))
        .client(client)
        .read_as()
        .await
        .expect("a Db through VaultSecret");
    assert_eq!(via_secret.port, 5432);
}
