//! The read pipeline, counted on a real server's audit log: one login, each
//! distinct path read once, concurrent first reads under one mount sharing
//! one mount preflight.

use serde_json::json;
use vault_secret::testing::DevVault;
use vault_secret::{KvVersion, VaultClient};

use crate::cli_binary::{ThreeSecrets, binary};

/// `exec` with `A=secret/test/path#password B=secret/test/path#user
/// C=kv1/test/path#password`: 2 preflights and 2 reads, no more.
#[tokio::test]
async fn exec_with_three_secrets_makes_at_most_four_requests() {
    let vault = DevVault::start().await.expect("a dev server");
    let secrets = ThreeSecrets::provision(&vault).await;
    let (v2, v1) = (&secrets.v2, &secrets.v1);
    let audit = vault.audit_requests().await;
    let before = audit.mark().await;
    let output = vault
        .command(binary(), &vault.root_token())
        .args(secrets.exec_args())
        .args(["--", "sh", "-c", r#"test "$A/$B/$C" = "p2/u2/p1""#])
        .output()
        .expect("the CLI runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let paths: Vec<String> = audit
        .requests_since(&before)
        .await
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert!(paths.len() <= 4, "{paths:?}");
    let preflights = paths
        .iter()
        .filter(|p| p.starts_with("sys/internal/ui/mounts/"))
        .count();
    assert_eq!(preflights, 2, "{paths:?}");
    assert_eq!(
        paths
            .iter()
            .filter(|p| **p == format!("{v2}/data/test/path"))
            .count(),
        1,
        "{paths:?}"
    );
    assert_eq!(
        paths
            .iter()
            .filter(|p| **p == format!("{v1}/test/path"))
            .count(),
        1,
        "{paths:?}"
    );
}

/// Five secrets under one new mount, read at once: one preflight, five reads.
#[tokio::test]
async fn concurrent_first_reads_under_one_mount_share_one_preflight() {
    let vault = DevVault::start().await.expect("a dev server");
    let mount = vault.kv_mount(KvVersion::V2).await;
    let paths: Vec<String> = (0..5).map(|i| format!("{mount}/app{i}#k")).collect();
    for (i, _) in paths.iter().enumerate() {
        vault
            .kv_put(&format!("{mount}/app{i}"), json!({"k": format!("v{i}")}))
            .await;
    }
    let session = VaultClient::builder()
        .env(vault.env_for(&vault.root_token()))
        .build()
        .await
        .expect("a session");
    let audit = vault.audit_requests().await;
    let before = audit.mark().await;
    let values = session.read_many(&paths).await.expect("the reads");
    let shown: Vec<&str> = values.iter().map(|v| v.expose_secret()).collect();
    assert_eq!(shown, ["v0", "v1", "v2", "v3", "v4"]);
    let seen: Vec<String> = audit
        .requests_since(&before)
        .await
        .into_iter()
        .map(|r| r.path)
        .collect();
    let preflights = seen
        .iter()
        .filter(|p| p.starts_with("sys/internal/ui/mounts/"))
        .count();
    assert_eq!(preflights, 1, "{seen:?}");
    assert_eq!(
        seen.iter()
            .filter(|p| p.starts_with(&format!("{mount}/data/")))
            .count(),
        5,
        "{seen:?}"
    );
}
