//! `VaultSecret` reading KV v1 and v2 from a real server: versions, fields,
//! nested mounts, deleted and destroyed versions, not found, denied.

use serde_json::json;
use vault_secret::{Error, KvVersion, VaultSecret};

use crate::harness::{self, unique};
use crate::support::TestEnv;

async fn root_env() -> (std::sync::Arc<harness::Server>, TestEnv) {
    let server = harness::server().await;
    let env = TestEnv::new(&server).credentials(json!({"VAULT_TOKEN": server.root_token()}));
    (server, env)
}

#[tokio::test]
async fn reads_kv2_latest_and_given_versions() {
    let (server, env) = root_env().await;
    let admin = server.admin();
    let mount = unique("kv2");
    admin.mount_kv(&mount, 2).await;
    admin
        .kv2_put(&mount, "app/db", json!({"user": "u", "password": "p1"}))
        .await;
    admin
        .kv2_put(&mount, "app/db", json!({"user": "u", "password": "p2"}))
        .await;

    let latest = env.read(format!("{mount}/app/db")).await.unwrap();
    assert_eq!(
        latest.to_json().unwrap(),
        json!({"user": "u", "password": "p2"})
    );

    let v1 = env.read(format!("{mount}/app/db?version=1")).await.unwrap();
    assert_eq!(
        v1.to_json().unwrap(),
        json!({"user": "u", "password": "p1"})
    );
    let v2 = VaultSecret::new(format!("{mount}/app/db"))
        .version(2)
        .env(env.env())
        .run()
        .await
        .unwrap();
    assert_eq!(v2.field("password").unwrap().expose_secret(), "p2");

    let err = env
        .read(format!("{mount}/app/db?version=9"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("no version 9"), "{err}");
}

#[tokio::test]
async fn reads_the_default_secret_mount() {
    // The dev server's own `secret/` KV v2 mount, as in the README.
    let (server, env) = root_env().await;
    let path = unique("test");
    server
        .admin()
        .kv2_put("secret", &path, json!({"k": "v"}))
        .await;
    let value = env.read(format!("secret/{path}")).await.unwrap();
    assert_eq!(value.to_json().unwrap(), json!({"k": "v"}));
}

#[tokio::test]
async fn reads_kv1() {
    let (server, env) = root_env().await;
    let admin = server.admin();
    let mount = unique("kv1");
    admin.mount_kv(&mount, 1).await;
    admin
        .kv1_put(
            &mount,
            "app/db",
            json!({"password": "v1pass", "port": 5432}),
        )
        .await;

    let value = env.read(format!("{mount}/app/db")).await.unwrap();
    assert_eq!(
        value.to_json().unwrap(),
        json!({"password": "v1pass", "port": 5432})
    );
    let port = env.read(format!("{mount}/app/db#port")).await.unwrap();
    assert_eq!(port.deserialize::<u16>().unwrap(), 5432);

    let err = env
        .read(format!("{mount}/app/db?version=1"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("KV v1 engine, which has no versions"),
        "{err}"
    );
}

#[tokio::test]
async fn reads_a_nested_mount() {
    let (server, env) = root_env().await;
    let admin = server.admin();
    let team = unique("team");
    let mount = format!("{team}/kv");
    admin.mount_kv(&mount, 2).await;
    admin
        .kv2_put(&mount, "app/db", json!({"password": "nested"}))
        .await;
    // A KV v1 mount at the parent's first segment's sibling path must not confuse detection.
    let value = env.read(format!("{mount}/app/db#password")).await.unwrap();
    assert_eq!(value.expose_secret(), "nested");
    assert_eq!(
        value.name(),
        Some(format!("{mount}/app/db#password").as_str())
    );
}

#[tokio::test]
async fn field_reads_and_missing_fields() {
    let (server, env) = root_env().await;
    let mount = unique("kv2");
    server.admin().mount_kv(&mount, 2).await;
    server
        .admin()
        .kv2_put(&mount, "app", json!({"password": "pw", "nested": {"a": 1}}))
        .await;
    let pw = VaultSecret::new(format!("{mount}/app"))
        .field("password")
        .env(env.env())
        .run()
        .await
        .unwrap();
    assert_eq!(pw.expose_secret(), "pw");
    let nested = env.read(format!("{mount}/app#nested")).await.unwrap();
    assert_eq!(nested.to_json().unwrap(), json!({"a": 1}));
    let err = env.read(format!("{mount}/app#nope")).await.unwrap_err();
    assert!(
        matches!(&err, Error::FieldNotFound { field, .. } if field == "nope"),
        "{err}"
    );
    assert!(!err.to_string().contains("pw"), "{err}");
}

#[tokio::test]
async fn deleted_and_destroyed_versions_are_their_own_errors() {
    let (server, env) = root_env().await;
    let admin = server.admin();
    let mount = unique("kv2");
    admin.mount_kv(&mount, 2).await;
    for n in 1..=3 {
        admin.kv2_put(&mount, "app", json!({"n": n})).await;
    }
    admin.kv2_delete_versions(&mount, "app", &[2]).await;
    admin.kv2_destroy_versions(&mount, "app", &[1]).await;

    let err = env
        .read(format!("{mount}/app?version=2"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::VersionDeleted { version: 2, .. }),
        "{err}"
    );
    let err = env
        .read(format!("{mount}/app?version=1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::VersionDestroyed { version: 1, .. }),
        "{err}"
    );
    // Version 3 still reads; deleting the latest makes the plain read a deleted-version error.
    let v3 = env.read(format!("{mount}/app")).await.unwrap();
    assert_eq!(v3.to_json().unwrap(), json!({"n": 3}));
    admin.kv2_delete_latest(&mount, "app").await;
    let err = env.read(format!("{mount}/app")).await.unwrap_err();
    assert!(
        matches!(err, Error::VersionDeleted { version: 3, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn not_found_names_the_path() {
    let (server, env) = root_env().await;
    let mount = unique("kv2");
    server.admin().mount_kv(&mount, 2).await;
    let path = format!("{mount}/never/written");
    let err = env.read(&path).await.unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { path: p, .. } if *p == path),
        "{err}"
    );
    assert!(err.is_not_found());
    assert!(
        err.to_string()
            .starts_with(&format!("secret not found: `{path}`")),
        "{err}"
    );

    let kv1 = unique("kv1");
    server.admin().mount_kv(&kv1, 1).await;
    let err = env.read(format!("{kv1}/nothing")).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");

    let err = env
        .read(format!("{}/x", unique("nomount")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn permission_denied_names_the_policy_path() {
    let server = harness::server().await;
    let admin = server.admin();
    let mount = unique("kv2");
    admin.mount_kv(&mount, 2).await;
    admin.kv2_put(&mount, "allowed", json!({"a": "1"})).await;
    admin
        .kv2_put(&mount, "secret-one", json!({"a": "hunter2"}))
        .await;
    let policy = unique("only-allowed");
    admin
        .put_policy(
            &policy,
            &format!(r#"path "{mount}/data/allowed" {{ capabilities = ["read"] }}"#),
        )
        .await;
    let token = admin.create_token(&[&policy], Some("1h")).await;
    let env = TestEnv::new(&server).credentials(json!({"VAULT_TOKEN": token}));

    let ok = env.read(format!("{mount}/allowed")).await.unwrap();
    assert_eq!(ok.to_json().unwrap(), json!({"a": "1"}));
    let err = env.read(format!("{mount}/secret-one")).await.unwrap_err();
    match &err {
        Error::PermissionDenied {
            path, policy_paths, ..
        } => {
            assert_eq!(path, &format!("{mount}/secret-one"));
            assert_eq!(policy_paths, &[format!("{mount}/data/secret-one")]);
        }
        other => panic!("expected PermissionDenied, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.starts_with("access forbidden"), "{msg}");
    assert!(!msg.contains("hunter2") && !msg.contains(&token), "{msg}");
}

#[tokio::test]
async fn preflight_denied_falls_back_to_the_first_segment() {
    // A token with no capability under the mount cannot call the preflight;
    // the read must still be tried (first segment as mount) and report what
    // it would need for either KV version, not fail on the preflight.
    let server = harness::server().await;
    let admin = server.admin();
    let mount = unique("kv2");
    admin.mount_kv(&mount, 2).await;
    admin.kv2_put(&mount, "app", json!({"a": "1"})).await;
    let other = unique("elsewhere");
    admin
        .put_policy(&other, r#"path "cubbyhole/x" { capabilities = ["read"] }"#)
        .await;
    let token = admin.create_token(&[&other], Some("1h")).await;
    // The preflight is indeed denied for this token.
    let pre = admin
        .with_token(&token)
        .get(&format!("sys/internal/ui/mounts/{mount}/app"))
        .await;
    assert_eq!(pre.status, 403, "{}", pre.errors());

    let env = TestEnv::new(&server).credentials(json!({"VAULT_TOKEN": token}));
    let err = env.read(format!("{mount}/app")).await.unwrap_err();
    match &err {
        Error::PermissionDenied { policy_paths, .. } => {
            assert_eq!(
                policy_paths,
                &[format!("{mount}/data/app"), format!("{mount}/app")]
            );
        }
        other => panic!("expected PermissionDenied, got {other}"),
    }
}

#[tokio::test]
async fn explicit_kv_version_override() {
    let (server, env) = root_env().await;
    let mount = unique("kv1");
    server.admin().mount_kv(&mount, 1).await;
    server
        .admin()
        .kv1_put(&mount, "app", json!({"a": "1"}))
        .await;
    let value = VaultSecret::new(format!("{mount}/app"))
        .kv_version(KvVersion::V1)
        .env(env.env())
        .run()
        .await
        .unwrap();
    assert_eq!(value.to_json().unwrap(), json!({"a": "1"}));
    // Forcing the wrong version reads the KV v2 API path, where nothing is.
    let err = VaultSecret::new(format!("{mount}/app"))
        .kv_version(KvVersion::V2)
        .env(env.env())
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn path_that_is_a_mount_or_not_kv_is_an_error() {
    let (server, env) = root_env().await;
    let mount = unique("kv2");
    server.admin().mount_kv(&mount, 2).await;
    let team = format!("{}/kv", unique("team"));
    server.admin().mount_kv(&team, 2).await;
    let err = env.read(team.clone()).await.unwrap_err();
    assert!(err.to_string().contains("names the mount"), "{err}");
    let err = env.read("cubbyhole/x").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("`cubbyhole` secrets engine, not KV"),
        "{err}"
    );
}
