//! Self-tests of the harness: each piece works against the real server.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::harness::{
    self, KubeFixture, ServerOptions, ServiceAccount, dedicated_server, service_account_jwt, unique,
};

/// Whether a login answer's `auth` grants `policy`.
fn has_policy(auth: &Value, policy: &str) -> bool {
    auth["token_policies"]
        .as_array()
        .is_some_and(|policies| policies.iter().any(|p| p == policy))
}

#[test]
fn unique_names_differ_and_are_path_safe() {
    let names: Vec<String> = (0..1000).map(|_| unique("kv")).collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len());
    for name in &names {
        assert!(name.starts_with("kv-"), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}"
        );
    }
}

#[tokio::test]
async fn shared_server_is_shared_and_answers() {
    let a = harness::server().await;
    let b = harness::server().await;
    assert!(Arc::ptr_eq(&a, &b), "one server per test binary");
    let admin = a.admin();
    admin.get("sys/health").await.expect_ok("health");
    let me = admin
        .get("auth/token/lookup-self")
        .await
        .expect_ok("lookup-self");
    assert_eq!(me["data"]["policies"], json!(["root"]), "{me}");
}

#[tokio::test]
async fn kv_mounts_and_writes_read_back() {
    let admin = harness::server().await.admin();

    let v1 = unique("kv1");
    admin.mount_kv(&v1, 1).await;
    admin
        .kv1_put(&v1, "app/db", json!({"user": "u", "password": "p"}))
        .await;
    let read = admin
        .get(&format!("{v1}/app/db"))
        .await
        .expect_ok("read KV v1");
    assert_eq!(read["data"], json!({"user": "u", "password": "p"}));

    let v2 = format!("{}/kv", unique("team"));
    admin.mount_kv(&v2, 2).await;
    assert_eq!(admin.kv2_put(&v2, "app/db", json!({"a": "1"})).await, 1);
    assert_eq!(admin.kv2_put(&v2, "app/db", json!({"a": "2"})).await, 2);
    let read = admin
        .get(&format!("{v2}/data/app/db"))
        .await
        .expect_ok("read KV v2");
    assert_eq!(read["data"]["data"], json!({"a": "2"}));
    assert_eq!(read["data"]["metadata"]["version"], 2);
    let old = admin.kv2_get(&v2, "app/db", Some(1)).await;
    assert_eq!(old["data"], json!({"a": "1"}));

    for (mount, version) in [(&v1, "1"), (&v2, "2")] {
        let info = admin
            .get(&format!("sys/internal/ui/mounts/{mount}/app/db"))
            .await
            .expect_ok("mount info");
        assert_eq!(info["data"]["path"], format!("{mount}/"));
        assert_eq!(info["data"]["options"]["version"], version);
    }
}

#[tokio::test]
async fn kv2_delete_and_destroy_show_in_metadata() {
    let admin = harness::server().await.admin();
    let mount = unique("kv2");
    admin.mount_kv(&mount, 2).await;
    for n in 1..=4 {
        assert_eq!(admin.kv2_put(&mount, "s", json!({"n": n})).await, n);
    }
    admin.kv2_delete_versions(&mount, "s", &[1]).await;
    admin.kv2_destroy_versions(&mount, "s", &[2]).await;
    admin.kv2_delete_latest(&mount, "s").await;

    let meta = admin.kv2_metadata(&mount, "s").await;
    assert_eq!(meta["current_version"], 4, "{meta}");
    let versions = &meta["versions"];
    let deleted = |v: &str| versions[v]["deletion_time"] != "";
    let destroyed = |v: &str| versions[v]["destroyed"] == true;
    assert!(deleted("1") && !destroyed("1"), "{meta}");
    assert!(!deleted("2") && destroyed("2"), "{meta}");
    assert!(!deleted("3") && !destroyed("3"), "{meta}");
    assert!(deleted("4") && !destroyed("4"), "{meta}");

    assert_eq!(admin.get(&format!("{mount}/data/s")).await.status, 404);
    assert_eq!(
        admin.get(&format!("{mount}/data/s?version=2")).await.status,
        404
    );
    let v3 = admin.kv2_get(&mount, "s", Some(3)).await;
    assert_eq!(v3["data"], json!({"n": 3}));
}

#[tokio::test]
async fn policy_tokens_are_limited_to_their_policy() {
    let admin = harness::server().await.admin();
    let mount = unique("kv2");
    admin.mount_kv(&mount, 2).await;
    admin.kv2_put(&mount, "allowed", json!({"k": "v"})).await;
    admin.kv2_put(&mount, "other", json!({"k": "v"})).await;
    let policy = unique("read-allowed");
    admin
        .put_policy(
            &policy,
            &format!("path \"{mount}/data/allowed\" {{ capabilities = [\"read\"] }}"),
        )
        .await;
    let token = admin.create_token(&[&policy], Some("10m")).await;
    let user = admin.with_token(&token);
    let me = user
        .get("auth/token/lookup-self")
        .await
        .expect_ok("lookup-self");
    assert!(
        me["data"]["ttl"].as_u64().is_some_and(|ttl| ttl <= 600),
        "{me}"
    );
    assert_eq!(user.get(&format!("{mount}/data/allowed")).await.status, 200);
    assert_eq!(user.get(&format!("{mount}/data/other")).await.status, 403);
}

#[tokio::test]
async fn approle_login_works_with_the_ids_and_fails_with_a_wrong_secret_id() {
    let admin = harness::server().await.admin();
    let auth_path = unique("approle");
    let policy = unique("approle-policy");
    admin
        .put_policy(&policy, "path \"sys/health\" { capabilities = [\"read\"] }")
        .await;
    admin.enable_auth(&auth_path, "approle").await;
    let (role_id, secret_id) = admin.approle_role(&auth_path, "app", &[&policy]).await;

    let login = format!("auth/{auth_path}/login");
    let ok = admin
        .post(&login, &json!({"role_id": role_id, "secret_id": secret_id}))
        .await
        .expect_ok("AppRole login");
    assert!(ok["auth"]["client_token"].is_string(), "{ok}");
    assert!(has_policy(&ok["auth"], &policy), "{ok}");

    let wrong = admin
        .post(
            &login,
            &json!({"role_id": role_id, "secret_id": "not-the-secret-id"}),
        )
        .await;
    assert!(!wrong.is_success(), "{wrong:?}");
    // OpenBao: 400 "invalid role or secret ID".
    assert!((400..500).contains(&wrong.status), "{wrong:?}");
    assert!(!wrong.errors().is_empty(), "{wrong:?}");

    let second = admin.approle_secret_id(&auth_path, "app").await;
    assert_ne!(second, secret_id);
    admin
        .post(&login, &json!({"role_id": role_id, "secret_id": second}))
        .await
        .expect_ok("AppRole login with a second secret id");
}

#[tokio::test]
async fn kubernetes_login_accepts_the_fixture_jwt_only() {
    let admin = harness::server().await.admin();
    let namespace = unique("ns");
    let fixture = KubeFixture::start(&namespace, "app").await;
    assert_eq!(
        std::fs::read_to_string(fixture.token_path()).expect("token file"),
        format!("{}\n", fixture.jwt())
    );
    let auth_path = unique("kubernetes");
    let policy = unique("kube-policy");
    admin
        .put_policy(&policy, "path \"sys/health\" { capabilities = [\"read\"] }")
        .await;
    fixture
        .configure(&admin, &auth_path, "app", &[&policy])
        .await;

    let login = format!("auth/{auth_path}/login");
    let ok = admin
        .post(&login, &json!({"role": "app", "jwt": fixture.jwt()}))
        .await
        .expect_ok("Kubernetes login with the fixture JWT");
    let auth = &ok["auth"];
    assert!(auth["client_token"].is_string(), "{ok}");
    assert!(has_policy(auth, &policy), "{ok}");
    assert_eq!(auth["metadata"]["service_account_name"], "app");
    assert_eq!(auth["metadata"]["service_account_namespace"], namespace);
    assert_eq!(
        auth["metadata"]["service_account_uid"],
        fixture.account().uid
    );

    // Same service account, but a token the fake API does not vouch for.
    let other = service_account_jwt(&ServiceAccount::new(&namespace, "app"));
    let denied = admin
        .post(&login, &json!({"role": "app", "jwt": other}))
        .await;
    assert_eq!(denied.status, 403, "{denied:?}");

    // Accepted, but for a service account the role is not bound to.
    let stranger = fixture
        .accept(&ServiceAccount::new(&namespace, "stranger"))
        .await;
    let denied = admin
        .post(&login, &json!({"role": "app", "jwt": stranger}))
        .await;
    assert_eq!(denied.status, 403, "{denied:?}");

    // A rotated token of the same service account logs in.
    let rotated = fixture.accept(fixture.account()).await;
    fixture.write_token(&rotated);
    assert_eq!(
        std::fs::read_to_string(fixture.token_path()).expect("token file"),
        format!("{rotated}\n")
    );
    admin
        .post(&login, &json!({"role": "app", "jwt": rotated}))
        .await
        .expect_ok("Kubernetes login with a rotated JWT");

    let reviewed = fixture.reviewed_tokens().await;
    assert!(reviewed.contains(&fixture.jwt().to_owned()));
    assert!(reviewed.contains(&other));
}

#[tokio::test]
async fn namespaces_isolate_their_mounts() {
    let admin = harness::server().await.admin();
    if !admin.namespaces_supported().await {
        // Only possible with VAULT_IT_EXTERNAL=1 and a Vault without them;
        // the harness's own OpenBao dev server has namespaces.
        eprintln!("server has no namespaces (HashiCorp Vault community edition?)");
        assert!(
            harness::server().await.is_external(),
            "dev server without namespaces"
        );
        return;
    }
    let namespace = unique("ns");
    admin.create_namespace(&namespace).await;
    let inside = admin.in_namespace(&namespace);
    let mount = unique("kv");
    inside.mount_kv(&mount, 2).await;
    assert_eq!(inside.kv2_put(&mount, "app", json!({"n": "1"})).await, 1);

    let read = inside
        .get(&format!("{mount}/data/app"))
        .await
        .expect_ok("read inside the namespace");
    assert_eq!(read["data"]["data"], json!({"n": "1"}));
    // The same secret through the root namespace, by full path.
    let read = admin
        .get(&format!("{namespace}/{mount}/data/app"))
        .await
        .expect_ok("read by namespaced path");
    assert_eq!(read["data"]["data"], json!({"n": "1"}));
    // The mount does not exist outside the namespace.
    assert_eq!(admin.get(&format!("{mount}/data/app")).await.status, 404);
}

#[tokio::test]
async fn tls_dedicated_server_answers_over_https_with_its_ca() {
    let server = dedicated_server(ServerOptions::tls()).await;
    assert!(
        server.addr().starts_with("https://127.0.0.1:"),
        "{}",
        server.addr()
    );
    let ca = server.ca_cert_path().expect("a TLS server has a CA file");
    assert!(
        ca.ends_with("vault-ca.pem") && ca.is_file(),
        "{}",
        ca.display()
    );
    let admin = server.admin();
    admin.get("sys/health").await.expect_ok("health over https");
    let mount = unique("kv");
    admin.mount_kv(&mount, 2).await;
    assert_eq!(admin.kv2_put(&mount, "s", json!({"k": "v"})).await, 1);

    // Without the CA the certificate is not trusted.
    let untrusting = reqwest::Client::builder()
        .tls_certs_only([])
        .build()
        .expect("client");
    let err = untrusting
        .get(format!("{}/v1/sys/health", server.addr()))
        .send()
        .await
        .expect_err("certificate must not be trusted without the CA");
    assert!(err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn dedicated_server_can_be_sealed_and_stopped() {
    let mut server = dedicated_server(ServerOptions::default()).await;
    let shared = harness::server().await;
    assert_ne!(server.addr(), shared.addr());
    let admin = server.admin();
    admin.seal().await;
    let health = admin.get("sys/health").await;
    assert_eq!(health.status, 503, "{health:?}");
    assert_eq!(health.body["sealed"], true);
    // The shared server is untouched.
    shared
        .admin()
        .get("sys/health")
        .await
        .expect_ok("shared health");

    let url = format!("{}/v1/sys/health", server.addr());
    server.stop();
    let err = reqwest::Client::new()
        .get(&url)
        .send()
        .await
        .expect_err("a stopped server does not answer");
    assert!(err.is_connect(), "{err:?}");
}
